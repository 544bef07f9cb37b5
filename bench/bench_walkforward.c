/* bench_walkforward.c — walk-forward, search and Monte Carlo speed.
 *   1. walk-forward: 10 symbols x 5000 daily bars (a random walk), sma_cross
 *      grid fast 5..30 x slow 40..200 (30 combinations), IS 1000 / OOS 250
 *      rolling (16 windows: 480 IS runs + 16 OOS runs), on 1 and 2 threads:
 *      units/s and bars simulated per second (IS + OOS bars, not warm-up);
 *   2. the aggregator alone: 1,000,000 IS scores added (window x combo),
 *      shuffled order: scores/s;
 *   3. Monte Carlo: 100,000 paths x 250 trades, 1 and 2 threads: paths/s.
 * Numbers only; no pass/fail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_mc.h"
#include "backtest/qb_search.h"
#include "backtest/qb_wf.h"
#include "core/qb_time.h"

#define NSYM 10
#define NBARS 5000

static double secs_since(int64_t t0) { return (double)(qb_time_mono_ns() - t0) / 1e9; }

int main(void) {
    char e[512];
    qb_bt_data_t *d = NULL;
    if (qb_bt_data_new("1d", &d, e, sizeof e)) return 1;
    qb_mc_rng_t r;
    qb_mc_rng_seed(&r, 42);
    for (int s = 0; s < NSYM; s++) {
        char name[16];
        snprintf(name, sizeof name, "S%02d", s);
        uint32_t id;
        if (qb_bt_data_symbol(d, name, &id, e, sizeof e)) return 1;
        double p = 50 + s;
        for (int i = 0; i < NBARS; i++) {
            p *= 1 + (qb_mc_rng_double(&r) - 0.495) * 0.04;
            qb_dec_t c;
            qb_dec_from_double(p, &c, QB_ROUND_HALF_EVEN);
            qb_pf_bar_t b = {1000000000LL * 86400 * (10957 + i), c, c, c, c, 100000000000LL};
            if (qb_bt_data_append(d, id, &b, 1, e, sizeof e)) return 1;
        }
    }
    if (qb_bt_data_finalize(d, e, sizeof e)) return 1;
    qb_bt_config_t cfg;
    qb_bt_config_default(&cfg);
    qb_bt_config_set(&cfg, "sizing", "percent_equity", e, sizeof e);
    qb_bt_config_set(&cfg, "sizing_value", "0.1", e, sizeof e);
    qb_bt_config_set(&cfg, "commission", "percent:0.05", e, sizeof e);
    qb_bt_config_add_strategy(&cfg, "sma_cross", "", "", e, sizeof e);
    qb_search_t *s = NULL;
    qb_search_new(&s);
    if (qb_search_parse(s, "fast=5:30:5;slow=40:200:40", e, sizeof e)) return 1;
    qb_wf_spec_t sp;
    qb_wf_spec_default(&sp);
    qb_wf_spec_set(&sp, "is", "1000", e, sizeof e);
    qb_wf_spec_set(&sp, "oos", "250", e, sizeof e);
    qb_wf_plan_t *p = NULL;
    if (qb_wf_plan_new(d, &cfg, s, &sp, &p, e, sizeof e)) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    uint64_t bars = 0;
    for (uint32_t w = 0; w < qb_wf_plan_nwindows(p); w++) {
        const qb_wf_window_t *x = qb_wf_plan_window(p, w);
        bars += (uint64_t)(x->is_end - x->is_begin) * NSYM * qb_wf_plan_ncombos(p) +
                (uint64_t)(x->oos_end - x->oos_begin) * NSYM;
    }
    printf("walk-forward: %zu windows x %llu combinations, %d symbols x %d bars\n",
           qb_wf_plan_nwindows(p), (unsigned long long)qb_wf_plan_ncombos(p), NSYM, NBARS);
    for (int th = 1; th <= 2; th++) {
        qb_wf_result_t *res = NULL;
        int64_t t0 = qb_time_mono_ns();
        if (qb_wf_run(p, d, th, NULL, NULL, &res, e, sizeof e)) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        double t = secs_since(t0);
        printf("  %d thread%s: %.2f s, %.0f units/s, %.1f M bars/s simulated (sharpe %.3f)\n", th,
               th > 1 ? "s" : " ", t, (double)qb_wf_plan_nunits(p) / t, (double)bars / t / 1e6,
               qb_wf_result_metrics(res)->sharpe);
        qb_wf_result_destroy(res);
    }
    qb_wf_plan_destroy(p);
    qb_search_destroy(s);

    /* the aggregator alone: 1000 combos x 1000 windows */
    {
        qb_search_t *s2 = NULL;
        qb_search_new(&s2);
        qb_search_parse(s2, "fast=1:1000:1", e, sizeof e);
        qb_wf_spec_default(&sp);
        qb_wf_spec_set(&sp, "is", "4", e, sizeof e);
        qb_wf_spec_set(&sp, "oos", "1", e, sizeof e);
        qb_wf_plan_t *p2 = NULL;
        if (qb_wf_plan_new(d, &cfg, s2, &sp, &p2, e, sizeof e)) return 1;
        uint32_t nw = (uint32_t)qb_wf_plan_nwindows(p2);
        if (nw > 1000) nw = 1000;
        qb_wf_agg_t *a = NULL;
        qb_wf_agg_new(p2, &a);
        uint64_t n = (uint64_t)nw * 1000;
        uint64_t *ord = malloc(n * sizeof *ord);
        for (uint64_t i = 0; i < n; i++) ord[i] = i;
        for (uint64_t i = n; i > 1; i--) {
            uint64_t j = qb_mc_rng_below(&r, i), t = ord[i - 1];
            ord[i - 1] = ord[j];
            ord[j] = t;
        }
        qb_search_score_t sc;
        memset(&sc, 0, sizeof sc);
        sc.valid = 1;
        sc.trades = 5;
        int64_t t0 = qb_time_mono_ns();
        for (uint64_t i = 0; i < n; i++) {
            sc.combo = ord[i] % 1000;
            sc.metrics.sharpe = (double)(ord[i] * 2654435761u % 1000) / 100;
            qb_wf_agg_add_is(a, (uint32_t)(ord[i] / 1000), &sc, 1, e, sizeof e);
        }
        double t = secs_since(t0);
        printf("aggregator: %llu IS scores in shuffled order: %.0f M scores/s\n",
               (unsigned long long)n, (double)n / t / 1e6);
        free(ord);
        qb_wf_agg_destroy(a);
        qb_wf_plan_destroy(p2);
        qb_search_destroy(s2);
    }

    /* Monte Carlo */
    double ret[250];
    for (int i = 0; i < 250; i++) ret[i] = (qb_mc_rng_double(&r) - 0.45) * 0.1;
    for (int th = 1; th <= 2; th++) {
        qb_mc_config_t c;
        qb_mc_config_default(&c);
        c.paths = 100000;
        c.seed = 1;
        c.threads = th;
        qb_mc_result_t m;
        int64_t t0 = qb_time_mono_ns();
        if (qb_mc_run(ret, 250, &c, &m, e, sizeof e)) return 1;
        double t = secs_since(t0);
        printf("monte carlo: 100000 paths x 250 trades, %d thread%s: %.3f s, %.2f M paths/s "
               "(%.0f M trades/s); P(ruin 50%%) %.3f\n",
               th, th > 1 ? "s" : " ", t, 1e5 / t / 1e6, 2.5e7 / t / 1e6, m.prob_ruin);
        qb_mc_result_free(&m);
    }
    qb_bt_data_destroy(d);
    return 0;
}
