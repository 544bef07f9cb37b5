/* bench_ta.c — how fast libs/ta is: M bars/s of every indicator kind (default
 * parameters, plus a few common other ones) in batch form over 1 M bars of a
 * seeded random walk, and of the streaming form (qb_ta_update per bar) for a
 * few. Each figure is the best of 3 runs. Prints a table; there is no
 * pass/fail. Usage: bench_ta [bars] (default 1000000). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/qb_time.h"
#include "ta/qb_ta.h"

#define RUNS 3

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(bench_rand(s) >> 11) / 9007199254740992.0; }

static int64_t *T;
static double *O, *H, *L, *C, *V;
static double *OUT[QB_TA_MAX_OUTPUTS];
static volatile double sink;

static void setup(size_t n) {
    T = malloc(n * sizeof *T);
    O = malloc(n * sizeof *O);
    H = malloc(n * sizeof *H);
    L = malloc(n * sizeof *L);
    C = malloc(n * sizeof *C);
    V = malloc(n * sizeof *V);
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) OUT[k] = malloc(n * sizeof(double));
    if (!T || !O || !H || !L || !C || !V || !OUT[0] || !OUT[1] || !OUT[2]) {
        fprintf(stderr, "bench_ta: out of memory\n");
        exit(1);
    }
    uint64_t s = 20240917;
    double p = 100;
    for (size_t i = 0; i < n; i++) {
        O[i] = p;
        p *= exp((uniform(&s) - 0.5) * 0.02);
        C[i] = p;
        H[i] = fmax(O[i], C[i]) * (1 + uniform(&s) * 0.005);
        L[i] = fmin(O[i], C[i]) * (1 - uniform(&s) * 0.005);
        V[i] = 1000 + floor(uniform(&s) * 100000);
        T[i] = (int64_t)i * 60 * INT64_C(1000000000);
    }
}

/* M bars/s of the batch form, best of RUNS. */
static double bench_batch(qb_ta_t *ta, size_t n) {
    qb_ta_series_t in = {T, O, H, L, C, V};
    double best = 1e300;
    char err[256];
    for (int r = 0; r < RUNS; r++) {
        int64_t t0 = qb_time_mono_ns();
        if (qb_ta_batch(ta, &in, n, OUT, err, sizeof err) != QB_OK) {
            fprintf(stderr, "bench_ta: %s\n", err);
            exit(1);
        }
        double s = (double)(qb_time_mono_ns() - t0) / 1e9;
        if (s < best) best = s;
        sink = OUT[0][n - 1];
    }
    return (double)n / best / 1e6;
}

static double bench_stream(qb_ta_t *ta, size_t n) {
    double best = 1e300, o[QB_TA_MAX_OUTPUTS], acc = 0;
    for (int r = 0; r < RUNS; r++) {
        qb_ta_reset(ta);
        int64_t t0 = qb_time_mono_ns();
        for (size_t i = 0; i < n; i++) {
            qb_ta_bar_t b = {T[i], O[i], H[i], L[i], C[i], V[i]};
            qb_ta_update(ta, &b, o);
            acc += o[0];
        }
        double s = (double)(qb_time_mono_ns() - t0) / 1e9;
        if (s < best) best = s;
    }
    sink = acc;
    return (double)n / best / 1e6;
}

static qb_ta_t *make(const char *spec) {
    qb_ta_t *ta;
    char err[256];
    if (qb_ta_new(spec, &ta, err, sizeof err) != QB_OK) {
        fprintf(stderr, "bench_ta: %s\n", err);
        exit(1);
    }
    return ta;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    if (n < 1000) n = 1000;
    setup(n);
    printf("libs/ta: %zu bars (seeded random walk), best of %d runs, batch form\n", n, RUNS);
    printf("%-22s %8s %12s\n", "indicator", "lookback", "M bars/s");
    static const char *extra[] = {"sma:200", "ema:200", "bbands:20:2:2", "stoch:14:3:3",
                                  "stochrsi:14:14:3", "cci:20", "aroon:25", "vwap:20"};
    int nk = qb_ta_kind_count(), ne = (int)(sizeof extra / sizeof extra[0]);
    for (int i = 0; i < nk + ne; i++) {
        const char *spec = i < nk ? qb_ta_kind_info(i)->name : extra[i - nk];
        qb_ta_t *ta = make(spec);
        double mbs = bench_batch(ta, n);
        printf("%-22s %8d %12.1f\n", qb_ta_spec(ta), qb_ta_lookback(ta), mbs);
        qb_ta_destroy(ta);
    }
    static const char *streamed[] = {"sma:30", "ema:30", "rsi:14", "macd:12:26:9",
                                     "bbands:20:2:2", "atr:14", "adx:14", "stoch:14:3:3"};
    printf("\nstreaming form (qb_ta_update per bar)\n");
    printf("%-22s %12s\n", "indicator", "M bars/s");
    for (size_t i = 0; i < sizeof streamed / sizeof streamed[0]; i++) {
        qb_ta_t *ta = make(streamed[i]);
        printf("%-22s %12.1f\n", qb_ta_spec(ta), bench_stream(ta, n));
        qb_ta_destroy(ta);
    }
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) free(OUT[k]);
    free(T);
    free(O);
    free(H);
    free(L);
    free(C);
    free(V);
    return 0;
}
