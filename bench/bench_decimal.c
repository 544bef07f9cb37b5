/* bench_decimal.c — how fast the qb_decimal hot paths are: ns per parse,
 * parse with rounding, format, fixed format, add, mul and div, over 1024
 * price-like inputs cycled so branch predictors cannot memorise one value.
 * Prints numbers only; there is no pass/fail. */
#include <stdint.h>
#include <stdio.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"

#define NVAL 1024
#define OPS 4000000

static qb_dec_t vals[NVAL];
static char texts[NVAL][QB_DEC_STRLEN];
static size_t lens[NVAL];
static char vendor[NVAL][48]; /* 12 decimals, like some vendor feeds */
static size_t vendor_lens[NVAL];
static volatile int64_t sink;

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Prices 0.01 .. 100000 with 2 to 8 decimals, quantities alike. */
static void bench_setup(void) {
    uint64_t s = 42;
    for (int i = 0; i < NVAL; i++) {
        int decimals = 2 + (int)(bench_rand(&s) % 7);
        int64_t step = 1;
        for (int k = decimals; k < QB_DEC_DIGITS; k++) step *= 10;
        int64_t raw = (int64_t)(bench_rand(&s) % (100000ULL * QB_DEC_SCALE)) + 1000000;
        vals[i] = raw / step * step;
        if (vals[i] == 0) vals[i] = QB_DEC_SCALE;
        lens[i] = qb_dec_format(vals[i], texts[i], sizeof texts[i]);
        char fixed[QB_DEC_STRLEN];
        qb_dec_format_fixed(vals[i], 8, fixed, sizeof fixed);
        vendor_lens[i] = (size_t)snprintf(vendor[i], sizeof vendor[i], "%s%04u", fixed,
                                          (unsigned)(bench_rand(&s) % 10000));
    }
}

static void report(const char *name, int64_t t0) {
    double ns = (double)(qb_time_mono_ns() - t0) / OPS;
    printf("  %-28s %7.1f ns/op\n", name, ns);
}

static void bench_text(void) {
    int64_t t0 = qb_time_mono_ns();
    qb_dec_t v, acc = 0;
    for (int i = 0; i < OPS; i++) {
        int k = i & (NVAL - 1);
        qb_dec_parse(texts[k], lens[k], &v);
        acc += v;
    }
    report("qb_dec_parse", t0);
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) {
        int k = i & (NVAL - 1);
        qb_dec_parse_round(vendor[k], vendor_lens[k], &v, QB_ROUND_HALF_EVEN);
        acc += v;
    }
    report("qb_dec_parse_round (12 dp)", t0);
    char buf[QB_DEC_STRLEN];
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) acc += (int64_t)qb_dec_format(vals[i & (NVAL - 1)], buf, sizeof buf);
    report("qb_dec_format", t0);
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++)
        acc += (int64_t)qb_dec_format_fixed(vals[i & (NVAL - 1)], 2, buf, sizeof buf);
    report("qb_dec_format_fixed (2 dp)", t0);
    sink = acc;
}

static void bench_arith(void) {
    qb_dec_t r, acc = 0;
    int64_t t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) {
        qb_dec_add(vals[i & (NVAL - 1)], vals[(i + 1) & (NVAL - 1)], &r);
        acc += r;
    }
    report("qb_dec_add", t0);
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) {
        qb_dec_mul(vals[i & (NVAL - 1)], vals[(i + 7) & (NVAL - 1)], &r, QB_ROUND_HALF_EVEN);
        acc += r;
    }
    report("qb_dec_mul (price x qty)", t0);
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) {
        qb_dec_div(vals[i & (NVAL - 1)], vals[(i + 7) & (NVAL - 1)], &r, QB_ROUND_HALF_EVEN);
        acc += r;
    }
    report("qb_dec_div", t0);
    t0 = qb_time_mono_ns();
    for (int i = 0; i < OPS; i++) {
        qb_dec_round_to(vals[i & (NVAL - 1)], 2, QB_ROUND_HALF_EVEN, &r);
        acc += r;
    }
    report("qb_dec_round_to (2 dp)", t0);
    sink = acc;
}

int main(void) {
    bench_setup();
    printf("bench_decimal: %d ops each, %d distinct values\n", OPS, NVAL);
    bench_text();
    bench_arith();
    return 0;
}
