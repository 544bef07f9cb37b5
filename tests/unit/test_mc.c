/* test_mc.c — Monte Carlo bootstrap (qb_mc.h): the generator (reproducible,
 * unbiased integers), quantiles (numpy's type 7) by hand, one path
 * recomputed draw by draw, the statistics of a tiny trade list against the
 * exact distribution enumerated by brute force, every statistic against a
 * brute-force recomputation from the kept paths, ruin and total loss,
 * independence from the thread count, and trade returns on the equity
 * before entry. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test_assert.h"

#include "backtest/qb_mc.h"

static char E[512];

static void test_rng(void **state) {
    (void)state;
    qb_mc_rng_t a, b, c;
    qb_mc_rng_seed(&a, 42);
    qb_mc_rng_seed(&b, 42);
    qb_mc_rng_seed(&c, 43);
    int diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = qb_mc_rng_next(&a);
        assert_true(x == qb_mc_rng_next(&b));
        if (x != qb_mc_rng_next(&c)) diff = 1;
    }
    assert_true(diff);
    /* streams of one seed differ */
    qb_mc_rng_seed_stream(&a, 1, 0);
    qb_mc_rng_seed_stream(&b, 1, 1);
    assert_true(qb_mc_rng_next(&a) != qb_mc_rng_next(&b));
    /* below(n): in range, about uniform (3 buckets, 300k draws: 5 sigma ~ 0.4%) */
    uint64_t cnt[3] = {0, 0, 0};
    qb_mc_rng_seed(&a, 7);
    for (int i = 0; i < 300000; i++) {
        uint64_t x = qb_mc_rng_below(&a, 3);
        assert_true(x < 3);
        cnt[x]++;
    }
    for (int k = 0; k < 3; k++) assert_true(fabs((double)cnt[k] / 300000 - 1.0 / 3) < 0.004);
    assert_int_equal(qb_mc_rng_below(&a, 1), 0);
    assert_int_equal(qb_mc_rng_below(&a, 0), 0);
    for (int i = 0; i < 1000; i++) {
        double x = qb_mc_rng_double(&a);
        assert_true(x >= 0 && x < 1);
    }
}

static void test_quantile(void **state) {
    (void)state;
    const double x[4] = {1, 2, 3, 4};
    /* h = 3p: p .5 -> 1.5 -> 2.5; p .25 -> .75 -> 1.75; p .99 -> 2.97 -> 3.97 */
    assert_true(fabs(qb_mc_quantile(x, 4, 0.5) - 2.5) < 1e-12);
    assert_true(fabs(qb_mc_quantile(x, 4, 0.25) - 1.75) < 1e-12);
    assert_true(fabs(qb_mc_quantile(x, 4, 0.99) - 3.97) < 1e-12);
    assert_true(qb_mc_quantile(x, 4, 0) == 1 && qb_mc_quantile(x, 4, 1) == 4);
    const double one[1] = {5};
    assert_true(qb_mc_quantile(one, 1, 0.3) == 5);
}

/* Path i by hand: the stream of (seed, i), draws below(n), compounding. */
static void test_one_path_by_hand(void **state) {
    (void)state;
    const double r[3] = {0.10, -0.20, 0.05};
    for (uint64_t i = 0; i < 20; i++) {
        qb_mc_rng_t g;
        qb_mc_rng_seed_stream(&g, 99, i);
        double e = 1, peak = 1, dd = 0;
        int ruined = 0;
        for (int j = 0; j < 6; j++) {
            e *= 1 + r[qb_mc_rng_below(&g, 3)];
            if (e > peak) peak = e;
            if ((peak - e) / peak > dd) dd = (peak - e) / peak;
            if (e <= 0.7) ruined = 1;
        }
        double f, m;
        int ru;
        qb_mc_path(r, 3, 99, i, 6, 0.7, &f, &m, &ru);
        assert_true(f == e - 1);
        assert_true(m == dd);
        assert_int_equal(ru, ruined);
    }
}

/* Two trades, two per path: four equally likely paths, worked by hand:
 *   (+10%, +10%)  E 1.1, 1.21     final +0.21    dd 0
 *   (+10%, -5%)   E 1.1, 1.045    final +0.045   dd 0.05 (from 1.1)
 *   (-5%, +10%)   E 0.95, 1.045   final +0.045   dd 0.05 (from 1)
 *   (-5%, -5%)    E 0.95, 0.9025  final -0.0975  dd 0.0975
 * mean final 0.050625, P(loss) 0.25; ruin level 0.92: only the last (0.9025) -> 0.25;
 * median final 0.045; mean dd 0.049375. */
static void test_tiny_list_vs_exact(void **state) {
    (void)state;
    const double r[2] = {0.10, -0.05};
    qb_mc_config_t c;
    qb_mc_config_default(&c);
    c.paths = 400000;
    c.seed = 2024;
    c.ruin_level = 0.92;
    c.threads = 2;
    qb_mc_result_t res;
    OK(qb_mc_run(r, 2, &c, &res, E, sizeof E));
    assert_int_equal(res.trades_per_path, 2);
    assert_int_equal(res.ninput, 2);
    /* 400k paths: the s.e. of a share near .25 is 0.0007; of the mean final 0.00017 */
    assert_true(fabs(res.final_return.mean - 0.050625) < 0.001);
    assert_true(fabs(res.prob_loss - 0.25) < 0.004);
    assert_true(fabs(res.prob_ruin - 0.25) < 0.004);
    assert_true(fabs(res.max_dd.mean - 0.049375) < 0.0005);
    assert_true(fabs(res.final_return.q[4] - 0.045) < 1e-12); /* the median is a path value */
    assert_true(fabs(res.final_return.min - -0.0975) < 1e-12);
    assert_true(fabs(res.final_return.max - 0.21) < 1e-12);
    assert_true(fabs(res.max_dd.max - 0.0975) < 1e-12);
    assert_true(res.max_dd.min == 0);
    /* exact stdev of the four-point distribution */
    double v[4] = {0.21, 0.045, 0.045, -0.0975}, mu = 0.050625, ss = 0;
    for (int i = 0; i < 4; i++) ss += (v[i] - mu) * (v[i] - mu);
    assert_true(fabs(res.final_return.stdev - sqrt(ss / 4)) < 0.001);
    qb_mc_result_free(&res);
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Every statistic recomputed by brute force from the kept paths, and each
 * kept path equal to qb_mc_path; thread counts give the same bytes. */
static void test_brute_force_stats_and_threads(void **state) {
    (void)state;
    const double r[5] = {0.03, -0.02, 0.015, -0.06, 0.04};
    qb_mc_config_t c;
    qb_mc_config_default(&c);
    c.paths = 5001;
    c.seed = 77;
    c.trades_per_path = 12;
    c.ruin_level = 0.9;
    c.keep_paths = 1;
    qb_mc_result_t a, b;
    OK(qb_mc_run(r, 5, &c, &a, E, sizeof E));
    c.threads = 3;
    OK(qb_mc_run(r, 5, &c, &b, E, sizeof E));
    assert_memory_equal(&a.final_return, &b.final_return, sizeof a.final_return);
    assert_memory_equal(&a.max_dd, &b.max_dd, sizeof a.max_dd);
    assert_true(a.prob_ruin == b.prob_ruin && a.prob_loss == b.prob_loss);
    assert_memory_equal(a.path_final, b.path_final, 5001 * sizeof(double));

    double *f = malloc(5001 * sizeof *f), *dd = malloc(5001 * sizeof *dd);
    double sum = 0;
    uint64_t ruined = 0, lost = 0;
    for (uint64_t i = 0; i < 5001; i++) {
        int ru;
        qb_mc_path(r, 5, 77, i, 12, 0.9, &f[i], &dd[i], &ru);
        assert_true(f[i] == a.path_final[i]);
        assert_true(dd[i] == a.path_max_dd[i]);
        ruined += (uint64_t)ru;
        lost += f[i] < 0;
        sum += f[i];
    }
    assert_int_equal(a.ruined, ruined);
    assert_true(a.prob_ruin == (double)ruined / 5001);
    assert_true(a.prob_loss == (double)lost / 5001);
    assert_true(a.final_return.mean == sum / 5001);
    qsort(f, 5001, sizeof *f, dcmp);
    qsort(dd, 5001, sizeof *dd, dcmp);
    for (int k = 0; k < QB_MC_NQ; k++) {
        /* type 7 by hand */
        double h = 5000 * qb_mc_qprob[k];
        size_t lo = (size_t)floor(h);
        double want = lo + 1 < 5001 ? f[lo] + (h - lo) * (f[lo + 1] - f[lo]) : f[lo];
        assert_true(a.final_return.q[k] == want);
        want = lo + 1 < 5001 ? dd[lo] + (h - lo) * (dd[lo + 1] - dd[lo]) : dd[lo];
        assert_true(a.max_dd.q[k] == want);
    }
    assert_true(a.final_return.min == f[0] && a.final_return.max == f[5000]);
    /* a different seed moves things; the same seed repeats */
    qb_mc_result_t d2;
    c.seed = 78;
    c.keep_paths = 0;
    OK(qb_mc_run(r, 5, &c, &d2, E, sizeof E));
    assert_true(d2.final_return.mean != a.final_return.mean);
    assert_null(d2.path_final);
    char buf[2048];
    size_t n = qb_mc_result_json(&a, buf, sizeof buf);
    assert_true(n < sizeof buf);
    assert_non_null(strstr(buf, "\"seed\":77"));
    assert_non_null(strstr(buf, "\"p50\":"));
    free(f);
    free(dd);
    qb_mc_result_free(&a);
    qb_mc_result_free(&b);
    qb_mc_result_free(&d2);
}

static void test_ruin_and_errors(void **state) {
    (void)state;
    /* a -150% trade loses everything: equity clamps at 0 and stays */
    const double r[1] = {-1.5};
    qb_mc_config_t c;
    qb_mc_config_default(&c);
    c.paths = 10;
    c.trades_per_path = 3;
    qb_mc_result_t res;
    OK(qb_mc_run(r, 1, &c, &res, E, sizeof E));
    assert_true(res.final_return.max == -1);
    assert_true(res.max_dd.min == 1);
    assert_true(res.prob_ruin == 1);
    /* errors */
    ERR(QB_ERR_INVALID, qb_mc_run(r, 0, &c, &res, E, sizeof E));
    const double bad[2] = {0.1, NAN};
    ERR(QB_ERR_INVALID, qb_mc_run(bad, 2, &c, &res, E, sizeof E));
    assert_non_null(strstr(E, "1"));
    c.ruin_level = 0;
    ERR(QB_ERR_INVALID, qb_mc_run(r, 1, &c, &res, E, sizeof E));
    c.ruin_level = 0.5;
    c.paths = 0;
    ERR(QB_ERR_INVALID, qb_mc_run(r, 1, &c, &res, E, sizeof E));
}

static void test_returns_from_trades(void **state) {
    (void)state;
    const qb_time_t D = 86400LL * 1000000000LL;
    qb_bt_point_t eq[3];
    memset(eq, 0, sizeof eq);
    eq[0].ts = 1 * D;
    eq[0].equity = 100000LL * QB_DEC_SCALE;
    eq[1].ts = 2 * D;
    eq[1].equity = 110000LL * QB_DEC_SCALE;
    eq[2].ts = 3 * D;
    eq[2].equity = 99000LL * QB_DEC_SCALE;
    qb_bt_trade_t t[3];
    memset(t, 0, sizeof t);
    t[0].entry_ts = 1 * D; /* nothing before: initial 50000 */
    t[0].net_pnl = 5000LL * QB_DEC_SCALE;
    t[0].return_pct = 0.2;
    t[1].entry_ts = 3 * D; /* the point before: 110000 */
    t[1].net_pnl = -11000LL * QB_DEC_SCALE;
    t[1].return_pct = -0.3;
    t[2].entry_ts = 3 * D;
    t[2].open = 1;
    t[2].net_pnl = 1100LL * QB_DEC_SCALE;
    double out[3];
    size_t n = qb_mc_returns_from_trades(t, 3, eq, 3, 50000LL * QB_DEC_SCALE, QB_MC_EQUITY, 0,
                                         out, 3);
    assert_int_equal(n, 3);
    assert_true(fabs(out[0] - 0.1) < 1e-15);
    assert_true(fabs(out[1] - -0.1) < 1e-15);
    assert_true(fabs(out[2] - 0.01) < 1e-15);
    n = qb_mc_returns_from_trades(t, 3, NULL, 0, 0, QB_MC_NOTIONAL, 1, out, 3);
    assert_int_equal(n, 2);
    assert_true(out[0] == 0.2 && out[1] == -0.3);
    /* cap smaller than the count: the count is still returned */
    assert_int_equal(qb_mc_returns_from_trades(t, 3, NULL, 0, 0, QB_MC_NOTIONAL, 0, out, 1), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_one_path_by_hand),
        cmocka_unit_test(test_tiny_list_vs_exact),
        cmocka_unit_test(test_brute_force_stats_and_threads),
        cmocka_unit_test(test_ruin_and_errors),
        cmocka_unit_test(test_returns_from_trades),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
