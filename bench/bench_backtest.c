/* bench_backtest.c — the backtest engine's speed: SMA(10)/SMA(30) crossover
 * (sma_cross, long-only, percent_equity 1% per position, 0.05% commission,
 * 2 bps slippage, next-open fills) with full accounting (portfolio, broker
 * simulator, round trips), the equity curve per step, the benchmark and the
 * metrics, on 100 symbols x 98,000 one-minute bars held in memory, one
 * thread. Prints bars/s (best and median of 3 runs), where the time goes
 * (the strategies alone over the same bars, one instance at a time; the
 * engine with no signal at all: bars, benchmark, equity, metrics) and the
 * peak RSS. Goal: >= 40 M bars/s. Numbers only; no pass/fail. The random
 * walk makes sma_cross 10/30 trade often (a signal every ~25 bars), so the
 * order path (sizing, simulator, fills, round trips) is part of the
 * number. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backtest/qb_backtest.h"
#include "core/qb_time.h"
#include "strategy/qb_strategy.h"

#define NSYM 100
#define NBARS 98000
#define ROUNDS 3

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

int main(void) {
    char e[512];
    qb_bt_data_t *d = NULL;
    if (qb_bt_data_new("1m", &d, e, sizeof e)) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    qb_pf_bar_t *bars = malloc(NBARS * sizeof *bars);
    if (!bars) return 1;
    uint64_t st = 42;
    for (int s = 0; s < NSYM; s++) {
        char name[16];
        snprintf(name, sizeof name, "S%03d", s);
        uint32_t id;
        if (qb_bt_data_symbol(d, name, &id, e, sizeof e)) return 1;
        int64_t p = (50 + s) * QB_DEC_SCALE;
        for (int i = 0; i < NBARS; i++) {
            qb_pf_bar_t *b = &bars[i];
            b->ts = 1704067200000000000LL + (int64_t)i * 60000000000LL;
            int64_t o = p;
            p += ((int64_t)(bench_rand(&st) % 201) - 100) * 200000; /* +-0.20 */
            if (p < 5 * QB_DEC_SCALE) p = 5 * QB_DEC_SCALE;
            b->open = o;
            b->close = p;
            b->high = (o > p ? o : p) + 5000000;
            b->low = (o < p ? o : p) - 5000000;
            b->volume = 10000 * QB_DEC_SCALE;
        }
        if (qb_bt_data_append(d, id, bars, NBARS, e, sizeof e)) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
    }
    free(bars);
    int64_t t0 = qb_time_mono_ns();
    if (qb_bt_data_finalize(d, e, sizeof e)) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    double fin = (double)(qb_time_mono_ns() - t0) / 1e9;
    double total = (double)NSYM * NBARS;
    printf("backtest engine, %d symbols x %d 1m bars = %.1f M bars in memory (finalize %.2f s)\n",
           NSYM, NBARS, total / 1e6, fin);

    qb_bt_config_t cfg;
    qb_bt_config_default(&cfg);
    cfg.long_only = 1;
    cfg.sizing = QB_SIZING_PERCENT_EQUITY;
    cfg.sizing_value = QB_DEC_SCALE / 100; /* 1% */
    cfg.commission = qb_commission_percent(50000, 0); /* 0.05% */
    cfg.slippage_bps = 2 * QB_DEC_SCALE;
    cfg.cash = 1000000 * QB_DEC_SCALE;
    cfg.keep_fills = 0;
    if (qb_bt_config_add_strategy(&cfg, "sma_cross", "{\"fast\":10,\"slow\":30}", "", e,
                                  sizeof e))
        return 1;

    double rate[ROUNDS];
    qb_bt_result_t *res = NULL;
    for (int r = 0; r < ROUNDS; r++) {
        qb_bt_result_destroy(res);
        res = NULL;
        t0 = qb_time_mono_ns();
        if (qb_bt_run(d, &cfg, &res, e, sizeof e)) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        rate[r] = total / ((double)(qb_time_mono_ns() - t0) / 1e9);
    }
    qsort(rate, ROUNDS, sizeof rate[0], dcmp);
    const qb_bt_metrics_t *m = qb_bt_result_metrics(res);
    const qb_bt_counts_t *c = qb_bt_result_counts(res);
    printf("  sma_cross 10/30, full accounting + metrics: %6.1f M bars/s best, %6.1f M median "
           "(%.1f ns/bar; goal >= 40 M bars/s)\n",
           rate[ROUNDS - 1] / 1e6, rate[ROUNDS / 2] / 1e6, 1e9 / rate[ROUNDS - 1]);
    printf("    %llu signals, %llu fills, %lld trades closed, %lld open, final equity %.2f, "
           "sharpe %.3f, max dd %.2f%%\n",
           (unsigned long long)c->signals, (unsigned long long)c->fills,
           (long long)m->trades_closed, (long long)m->trades_open,
           (double)m->final_equity / 1e8, m->sharpe, m->max_dd_pct * 100);
    qb_bt_result_destroy(res);

    /* where the time goes: the engine without strategies (no signals) */
    double best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        t0 = qb_time_mono_ns();
        if (qb_bt_run_signals(d, &cfg, NULL, 0, &res, e, sizeof e)) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        double x = total / ((double)(qb_time_mono_ns() - t0) / 1e9);
        if (x > best) best = x;
        qb_bt_result_destroy(res);
    }
    printf("  engine without strategies and signals (every symbol flat: bars, benchmark, equity, "
           "metrics): %6.1f M bars/s (%.1f ns/bar)\n",
           best / 1e6, 1e9 / best);

    /* and the strategies alone over the same bars, symbol by symbol (the
     * order of the engine's run-ahead): the floor the engine builds on */
    best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        long nsig = 0;
        int64_t spent = 0;
        for (uint32_t k = 0; k < NSYM; k++) {
            qb_strategy_t *s = NULL;
            if (qb_strategy_new("sma_cross", "{\"fast\":10,\"slow\":30}", &s, e, sizeof e))
                return 1;
            qb_strategy_set_reasons(s, 0);
            qb_bar_t bar;
            memset(&bar, 0, sizeof bar);
            t0 = qb_time_mono_ns();
            for (size_t i = 0; i < NBARS; i++) {
                qb_pf_bar_t b;
                qb_bt_data_bar(d, k, i, &b);
                bar.ts = b.ts;
                bar.open = b.open;
                bar.high = b.high;
                bar.low = b.low;
                bar.close = b.close;
                bar.volume = b.volume;
                qb_signal_t sig;
                nsig += qb_strategy_on_bar(s, &bar, &sig) == 1;
            }
            spent += qb_time_mono_ns() - t0;
            qb_strategy_destroy(s);
        }
        double x = total / ((double)spent / 1e9);
        if (x > best) best = x;
        if (nsig < 0) return 1;
    }
    printf("  sma_cross alone over the same bars (one instance at a time): %6.1f M bars/s "
           "(%.1f ns/bar)\n",
           best / 1e6, 1e9 / best);
    printf("  peak RSS %ld MiB (the bars: %.0f MiB = 40 B of prices + 8 B of time + 4 B of "
           "index per bar; every block is dense: no time-order index)\n",
           peak_rss_mib(), total * 52 / 1048576.0);
    qb_bt_data_destroy(d);
    return 0;
}
