/* test_walkforward.c — parameter search (qb_search.h) and walk-forward
 * (qb_wf.h): window layouts worked by hand (rolling, anchored, a
 * remainder, a step longer than the OOS, calendar months), the grid order
 * and the params merge, random search reproducible by seed, best-parameter
 * selection with min_trades, ties and lower-is-better metrics, a proof
 * that the OOS aggregate is made of OOS bars only (an in-sample part that
 * makes a fortune must not show), the stitching formula recomputed by hand,
 * exact JSON round trips of the units, and the aggregator fed in shuffled
 * order with repeats giving the very bytes of the one-process run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test_assert.h"

#include "backtest/qb_backtest.h"
#include "backtest/qb_mc.h"
#include "backtest/qb_search.h"
#include "backtest/qb_wf.h"

static char E[1024];

#define DAY (86400LL * 1000000000LL)
#define T0 1704067200000000000LL /* 2024-01-01 00:00 UTC */

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    if (qb_dec_parse(s, strlen(s), &v) != QB_OK) fail_msg("bad literal %s", s);
    return v;
}

/* One symbol, bars with O=H=L=C = closes[i], one a day from t0. */
static qb_bt_data_t *data_of(const double *closes, size_t n, qb_time_t t0) {
    qb_bt_data_t *d = NULL;
    uint32_t id;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    OK(qb_bt_data_symbol(d, "AAA", &id, E, sizeof E));
    for (size_t i = 0; i < n; i++) {
        qb_dec_t c;
        OK(qb_dec_from_double(closes[i], &c, QB_ROUND_HALF_EVEN));
        qb_pf_bar_t b = {t0 + (qb_time_t)i * DAY, c, c, c, c, D("1000000")};
        OK(qb_bt_data_append(d, id, &b, 1, E, sizeof E));
    }
    OK(qb_bt_data_finalize(d, E, sizeof E));
    return d;
}

static qb_bt_data_t *flat_data(size_t n, qb_time_t t0) {
    double *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) c[i] = 10;
    qb_bt_data_t *d = data_of(c, n, t0);
    free(c);
    return d;
}

/* A reproducible random walk with swings (so crossovers trade). */
static qb_bt_data_t *walk_data(size_t n) {
    double *c = malloc(n * sizeof *c);
    qb_mc_rng_t r;
    qb_mc_rng_seed(&r, 7);
    double x = 100;
    for (size_t i = 0; i < n; i++) {
        x *= 1 + (qb_mc_rng_double(&r) - 0.48) * 0.06;
        c[i] = floor(x * 100) / 100;
    }
    qb_bt_data_t *d = data_of(c, n, T0);
    free(c);
    return d;
}

static void base_cfg(qb_bt_config_t *cfg, const char *params) {
    qb_bt_config_default(cfg);
    OK(qb_bt_config_add_strategy(cfg, "sma_cross", params, "", E, sizeof E));
}

static void spec_steps(qb_wf_spec_t *sp, const char *mode, const char *is, const char *oos,
                       const char *step) {
    qb_wf_spec_default(sp);
    OK(qb_wf_spec_set(sp, "mode", mode, E, sizeof E));
    OK(qb_wf_spec_set(sp, "is", is, E, sizeof E));
    OK(qb_wf_spec_set(sp, "oos", oos, E, sizeof E));
    if (step) OK(qb_wf_spec_set(sp, "step", step, E, sizeof E));
}

static void expect_windows(const qb_wf_plan_t *p, const size_t (*want)[4], size_t n) {
    assert_int_equal(qb_wf_plan_nwindows(p), n);
    for (size_t i = 0; i < n; i++) {
        const qb_wf_window_t *w = qb_wf_plan_window(p, (uint32_t)i);
        if (w->is_begin != want[i][0] || w->is_end != want[i][1] || w->oos_begin != want[i][1] ||
            w->oos_end != want[i][2] || w->partial != (int)want[i][3])
            fail_msg("window %zu: IS [%zu,%zu) OOS [%zu,%zu) partial %d; want IS [%zu,%zu) OOS "
                     "[%zu,%zu) partial %zu",
                     i, w->is_begin, w->is_end, w->oos_begin, w->oos_end, w->partial, want[i][0],
                     want[i][1], want[i][1], want[i][2], want[i][3]);
    }
}

/* ---- window layouts, worked by hand ------------------------------------------------------- */

static void test_layout_steps(void **state) {
    (void)state;
    qb_bt_data_t *d = flat_data(11, T0);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "{\"fast\":1,\"slow\":2}");
    qb_wf_spec_t sp;
    qb_wf_plan_t *p = NULL;

    /* N = 11, is 4, oos 2, rolling: IS [0,4) [2,6) [4,8) [6,10); OOS [4,6) [6,8) [8,10)
     * and the remainder [10,11). */
    spec_steps(&sp, "rolling", "4", "2", NULL);
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {{0, 4, 6, 0}, {2, 6, 8, 0}, {4, 8, 10, 0}, {6, 10, 11, 1}};
        expect_windows(p, want, 4);
    }
    /* the run windows: [ts of first IS step, ts of OOS start), OOS to the next step or last+1ns */
    const qb_wf_window_t *w1 = qb_wf_plan_window(p, 1), *w3 = qb_wf_plan_window(p, 3);
    assert_true(w1->is_from == T0 + 2 * DAY && w1->is_to == T0 + 6 * DAY);
    assert_true(w1->oos_from == T0 + 6 * DAY && w1->oos_to == T0 + 8 * DAY);
    assert_true(w3->oos_from == T0 + 10 * DAY && w3->oos_to == T0 + 10 * DAY + 1);
    assert_int_equal(qb_wf_plan_ncombos(p), 1);
    assert_int_equal(qb_wf_plan_nunits(p), 8);
    qb_wf_plan_destroy(p);

    /* anchored: the same OOS, IS from 0 */
    spec_steps(&sp, "anchored", "4", "2", NULL);
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {{0, 4, 6, 0}, {0, 6, 8, 0}, {0, 8, 10, 0}, {0, 10, 11, 1}};
        expect_windows(p, want, 4);
    }
    qb_wf_plan_destroy(p);

    /* no partial window: the last step is not traded */
    spec_steps(&sp, "rolling", "4", "2", NULL);
    OK(qb_wf_spec_set(&sp, "partial_last", "false", E, sizeof E));
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {{0, 4, 6, 0}, {2, 6, 8, 0}, {4, 8, 10, 0}};
        expect_windows(p, want, 3);
    }
    qb_wf_plan_destroy(p);

    /* step 3 > oos 2: a gap of one step between OOS windows (6 is not traded) */
    spec_steps(&sp, "rolling", "4", "2", "3");
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {{0, 4, 6, 0}, {3, 7, 9, 0}, {6, 10, 11, 1}};
        expect_windows(p, want, 3);
    }
    qb_wf_plan_destroy(p);

    /* the region is base [from, to): steps 2..9 (8 steps) -> region indexes */
    spec_steps(&sp, "rolling", "4", "2", NULL);
    OK(qb_bt_config_set(&cfg, "from", "2024-01-03", E, sizeof E));
    OK(qb_bt_config_set(&cfg, "to", "2024-01-11", E, sizeof E));
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {{0, 4, 6, 0}, {2, 6, 8, 0}};
        expect_windows(p, want, 2);
    }
    size_t ns;
    const qb_time_t *st = qb_wf_plan_steps(p, &ns);
    assert_int_equal(ns, 8);
    assert_true(st[0] == T0 + 2 * DAY);
    assert_true(qb_wf_plan_window(p, 1)->oos_to == T0 + 9 * DAY + 1);
    qb_wf_plan_destroy(p);
    base_cfg(&cfg, "{\"fast\":1,\"slow\":2}");

    /* errors: step < oos; nothing fits; mixed units */
    spec_steps(&sp, "rolling", "4", "2", "1");
    ERR(QB_ERR_INVALID, qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    assert_non_null(strstr(E, "step"));
    spec_steps(&sp, "rolling", "11", "2", NULL);
    ERR(QB_ERR_INVALID, qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    assert_non_null(strstr(E, "11 time steps"));
    qb_wf_spec_default(&sp);
    OK(qb_wf_spec_set(&sp, "is", "4", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_wf_spec_set(&sp, "oos", "2mo", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_wf_spec_set(&sp, "oos", "2x", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_wf_spec_set(&sp, "objective", "sharp", E, sizeof E));
    assert_non_null(strstr(E, "calmar"));
    ERR(QB_ERR_NOT_FOUND, qb_wf_spec_set(&sp, "windows", "3", E, sizeof E));
    qb_bt_data_destroy(d);
}

static void test_layout_time(void **state) {
    (void)state;
    /* daily bars 2024-01-01 .. 2024-06-15 (167 days: Jan 31, Feb 29, Mar 31, Apr 30,
     * May 31, Jun 15). Mar 1 = step 60, Apr 1 = 91, May 1 = 121, Jun 1 = 152. */
    qb_bt_data_t *d = flat_data(167, T0);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "{\"fast\":1,\"slow\":2}");
    qb_wf_spec_t sp;
    qb_wf_plan_t *p = NULL;
    spec_steps(&sp, "rolling", "2mo", "1mo", NULL);
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    {
        static const size_t want[][4] = {
            {0, 60, 91, 0}, {31, 91, 121, 0}, {60, 121, 152, 0}, {91, 152, 167, 1}};
        expect_windows(p, want, 4);
    }
    char buf[4096];
    qb_wf_spec_json(&sp, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"is\":\"2mo\""));
    assert_non_null(strstr(buf, "\"unit\":\"time\""));
    qb_wf_plan_destroy(p);

    spec_steps(&sp, "anchored", "60d", "4w", NULL);
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    { /* 60d -> step 60; OOS 28 days each: [60,88) [88,116) [116,144) [144,167) */
        static const size_t want[][4] = {
            {0, 60, 88, 0}, {0, 88, 116, 0}, {0, 116, 144, 0}, {0, 144, 167, 1}};
        expect_windows(p, want, 4);
    }
    qb_wf_plan_destroy(p);
    qb_bt_data_destroy(d);

    /* calendar months clamp: from Jan 31, +1mo = Feb 29 (2024), +2mo = Mar 31 */
    d = flat_data(100, T0 + 30 * DAY); /* Jan 31 .. */
    spec_steps(&sp, "rolling", "1mo", "1mo", NULL);
    OK(qb_wf_plan_new(d, &cfg, NULL, &sp, &p, E, sizeof E));
    const qb_wf_window_t *w0 = qb_wf_plan_window(p, 0);
    assert_true(w0->is_to == T0 + (31 + 28) * DAY);     /* 2024-02-29 */
    assert_true(w0->oos_to == T0 + (31 + 29 + 30) * DAY); /* 2024-03-31 */
    qb_wf_plan_destroy(p);
    qb_bt_data_destroy(d);
}

/* ---- the space -------------------------------------------------------------------------------- */

static void test_space_grid_and_random(void **state) {
    (void)state;
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_parse(s, " fast = 5,10 ; slow=30:50:20; set.slippage_bps=0,2.5", E, sizeof E));
    assert_int_equal(qb_search_nparams(s), 3);
    assert_int_equal(qb_search_grid_size(s), 8);
    assert_string_equal(qb_search_value(s, 1, 1), "50");
    uint32_t idx[3];
    OK(qb_search_combo(s, 3, idx)); /* mixed radix, last parameter fastest: 3 = 0,1,1 */
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    assert_int_equal(idx[2], 1);
    char buf[512];
    qb_search_combo_json(s, 3, buf, sizeof buf);
    assert_string_equal(buf, "{\"fast\":5,\"slow\":50,\"set.slippage_bps\":\"2.5\"}");
    /* apply: base params keep their order, the grid's keys replace or append */
    qb_bt_config_t base, out;
    base_cfg(&base, "{\"allow_short\":true,\"fast\":3}");
    OK(qb_search_apply(s, 5, &base, &out, E, sizeof E)); /* 5 = 1,0,1: fast 10 slow 30 slip 2.5 */
    assert_string_equal(out.strategies[0].params, "{\"allow_short\":true,\"fast\":10,\"slow\":30}");
    assert_true(out.slippage_bps == D("2.5"));
    ERR(QB_ERR_RANGE, qb_search_apply(s, 8, &base, &out, E, sizeof E));

    /* errors name the parameter */
    ERR(QB_ERR_INVALID, qb_search_add(s, "fast", "1", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_search_add(s, "set.nope", "1", E, sizeof E));
    assert_non_null(strstr(E, "nope"));
    ERR(QB_ERR_INVALID, qb_search_add(s, "x", "5:1:1", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_search_add(s, "x", "1,,2", E, sizeof E));
    qb_search_destroy(s);

    /* random search: n distinct grid points, the same for the same seed */
    qb_search_t *a = NULL, *b = NULL, *c = NULL;
    const char *sp = "p1=1:10:1;p2=1:10:1;p3=1:10:1"; /* 1000 points */
    OK(qb_search_new(&a));
    OK(qb_search_new(&b));
    OK(qb_search_new(&c));
    OK(qb_search_parse(a, sp, E, sizeof E));
    OK(qb_search_parse(b, sp, E, sizeof E));
    OK(qb_search_parse(c, sp, E, sizeof E));
    OK(qb_search_sample(a, 50, 42, E, sizeof E));
    OK(qb_search_sample(b, 50, 42, E, sizeof E));
    OK(qb_search_sample(c, 50, 43, E, sizeof E));
    assert_int_equal(qb_search_ncombos(a), 50);
    assert_int_equal(qb_search_seed(a), 42);
    int differs = 0;
    for (uint64_t i = 0; i < 50; i++) {
        uint64_t g = qb_search_grid_index(a, i);
        assert_true(g < 1000);
        assert_true(g == qb_search_grid_index(b, i));
        if (g != qb_search_grid_index(c, i)) differs = 1;
        for (uint64_t j = 0; j < i; j++) assert_true(g != qb_search_grid_index(a, j));
    }
    assert_true(differs);
    ERR(QB_ERR_STATE, qb_search_add(a, "p4", "1", E, sizeof E));
    ERR(QB_ERR_STATE, qb_search_sample(a, 5, 1, E, sizeof E));
    /* a clone keeps the sample */
    qb_search_t *ac = NULL;
    OK(qb_search_clone(a, &ac));
    for (uint64_t i = 0; i < 50; i++)
        assert_true(qb_search_grid_index(ac, i) == qb_search_grid_index(a, i));
    qb_search_destroy(ac);
    qb_search_destroy(a);
    qb_search_destroy(b);
    qb_search_destroy(c);
    /* n >= grid: the whole grid in grid order */
    OK(qb_search_new(&a));
    OK(qb_search_parse(a, "p=1,2,3", E, sizeof E));
    OK(qb_search_sample(a, 10, 9, E, sizeof E));
    assert_int_equal(qb_search_ncombos(a), 3);
    assert_int_equal(qb_search_grid_index(a, 2), 2);
    qb_search_destroy(a);
}

/* ---- selection: min_trades, ties, direction --------------------------------------------------- */

static qb_search_score_t mk_score(uint64_t combo, int valid, int64_t trades, double sharpe,
                                  double dd) {
    qb_search_score_t s;
    memset(&s, 0, sizeof s);
    s.combo = combo;
    s.valid = valid;
    s.trades = trades;
    s.metrics.sharpe = sharpe;
    s.metrics.max_dd_pct = dd;
    s.metrics.trades_closed = trades;
    return s;
}

static void test_selection(void **state) {
    (void)state;
    qb_bt_data_t *d = flat_data(12, T0);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "{\"slow\":5}");
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_add(s, "fast", "1,2,3,4,5", E, sizeof E));
    qb_wf_spec_t sp;
    spec_steps(&sp, "rolling", "4", "4", NULL);
    OK(qb_wf_spec_set(&sp, "min_trades", "2", E, sizeof E));
    qb_wf_plan_t *p = NULL;
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    assert_int_equal(qb_wf_plan_nwindows(p), 2);
    qb_wf_agg_t *a = NULL;
    OK(qb_wf_agg_new(p, &a));
    /* window 0: c0 best sharpe but 1 trade (< min 2); c1 and c2 tie at 1.5 -> the lower
     * index c1; c3 invalid; c4 NaN sharpe (never eligible) */
    qb_search_score_t w0[5] = {mk_score(0, 1, 1, 2.0, 0.1), mk_score(1, 1, 3, 1.5, 0.3),
                               mk_score(2, 1, 5, 1.5, 0.2), mk_score(3, 0, 0, 9.0, 0),
                               mk_score(4, 1, 9, NAN, 0.0)};
    /* deliver out of order, in two calls, with a repeat */
    OK(qb_wf_agg_add_is(a, 0, &w0[2], 3, E, sizeof E));
    int64_t combo = 99;
    assert_int_equal(qb_wf_agg_selected(a, 0, &combo, NULL), 0);
    assert_int_equal(combo, 99);
    OK(qb_wf_agg_add_is(a, 0, &w0[0], 2, E, sizeof E));
    OK(qb_wf_agg_add_is(a, 0, &w0[1], 1, E, sizeof E));
    qb_search_score_t best;
    assert_int_equal(qb_wf_agg_selected(a, 0, &combo, &best), 1);
    assert_int_equal(combo, 1);
    assert_true(best.eligible && best.objective == 1.5);
    /* window 1: nothing has 2 trades -> not traded */
    qb_search_score_t w1[5] = {mk_score(0, 1, 1, 3.0, 0), mk_score(1, 1, 0, 1.0, 0),
                               mk_score(2, 0, 0, 0, 0), mk_score(3, 1, 1, 5, 0),
                               mk_score(4, 1, 1, 4, 0)};
    OK(qb_wf_agg_add_is(a, 1, w1, 5, E, sizeof E));
    assert_int_equal(qb_wf_agg_selected(a, 1, &combo, &best), 1);
    assert_int_equal(combo, -1);
    /* a bad combination index is refused and nothing of the call is kept */
    qb_search_score_t bad[2] = {mk_score(0, 1, 1, 1, 0), mk_score(5, 1, 1, 1, 0)};
    ERR(QB_ERR_RANGE, qb_wf_agg_add_is(a, 0, bad, 2, E, sizeof E));
    /* units due: the OOS of window 0 only */
    qb_wf_unit_t u[4];
    assert_int_equal(qb_wf_agg_next(a, 0, u, 4), 1);
    assert_int_equal(u[0].kind, QB_WF_UNIT_OOS);
    assert_int_equal(u[0].window, 0);
    assert_int_equal(u[0].combo, 1);
    uint64_t total, done = qb_wf_agg_done(a, &total);
    assert_int_equal(total, 12);
    assert_int_equal(done, 11); /* 10 IS + window 1's OOS (not traded) */
    qb_wf_oos_t *o = NULL;
    ERR(QB_ERR_RANGE, qb_wf_eval_oos(p, d, 0, 99, &o, E, sizeof E));
    OK(qb_wf_eval_oos(p, d, 0, 2, &o, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_wf_agg_add_oos(a, o, E, sizeof E)); /* not the selection */
    qb_wf_oos_destroy(o);
    qb_wf_result_t *r = NULL;
    ERR(QB_ERR_STATE, qb_wf_agg_finish(a, &r, E, sizeof E));
    assert_non_null(strstr(E, "window 0"));
    OK(qb_wf_eval_oos(p, d, 0, 1, &o, E, sizeof E));
    OK(qb_wf_agg_add_oos(a, o, E, sizeof E));
    OK(qb_wf_agg_add_oos(a, o, E, sizeof E)); /* a repeat is ignored */
    qb_wf_oos_destroy(o);
    assert_true(qb_wf_agg_complete(a));
    OK(qb_wf_agg_finish(a, &r, E, sizeof E));
    assert_int_equal(qb_wf_result_window(r, 0)->combo, 1);
    assert_int_equal(qb_wf_result_window(r, 1)->combo, -1);
    assert_int_equal(qb_wf_result_window(r, 0)->eligible, 2);
    assert_int_equal(qb_wf_result_window(r, 0)->valid, 4);
    size_t n;
    qb_wf_result_equity(r, &n);
    assert_int_equal(n, 8); /* 4 + 4 OOS steps; the untraded window is flat cash */
    qb_wf_result_destroy(r);
    qb_wf_agg_destroy(a);
    qb_wf_plan_destroy(p);

    /* a lower-is-better objective picks the smallest drawdown */
    OK(qb_wf_spec_set(&sp, "objective", "max_dd_pct", E, sizeof E));
    OK(qb_wf_spec_set(&sp, "min_trades", "0", E, sizeof E));
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    OK(qb_wf_agg_new(p, &a));
    OK(qb_wf_agg_add_is(a, 0, w0, 5, E, sizeof E));
    assert_int_equal(qb_wf_agg_selected(a, 0, &combo, NULL), 1);
    assert_int_equal(combo, 4); /* dd 0.0 (sharpe NaN does not matter here) */
    qb_wf_agg_destroy(a);
    qb_wf_plan_destroy(p);

    /* qb_search_rank: eligible by objective, ties by index, then valid, then invalid */
    qb_search_objective_t ob;
    OK(qb_search_objective_set(&ob, "sharpe", 2, E, sizeof E));
    qb_search_score_t v[5];
    memcpy(v, w0, sizeof v);
    for (int i = 0; i < 5; i++) qb_search_score_finish(&v[i], &ob);
    qb_search_rank(&ob, v, 5);
    uint64_t order[5] = {1, 2, 0, 4, 3};
    for (int i = 0; i < 5; i++) assert_int_equal(v[i].combo, order[i]);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

/* ---- the OOS aggregate is made of OOS bars only ------------------------------------------------- */

static void test_oos_only_oos_bars(void **state) {
    (void)state;
    /* 40 days: the first 20 (in-sample of window 0) zig-zag up from 10 to ~1000, a long
     * crossover strategy makes a fortune there; the last 20 are flat at the last IS close.
     * Nothing of the IS fortune may reach the aggregate, which must be flat cash. */
    double c[40];
    double x = 10;
    for (int i = 0; i < 20; i++) {
        x = i % 2 ? x * 0.9 : x * 1.7;
        c[i] = floor(x * 100) / 100;
    }
    for (int i = 20; i < 40; i++) c[i] = c[19];
    qb_bt_data_t *d = data_of(c, 40, T0);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "{\"slow\":2}");
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_add(s, "fast", "1", E, sizeof E));
    qb_wf_spec_t sp;
    spec_steps(&sp, "anchored", "20", "10", NULL);
    OK(qb_wf_spec_set(&sp, "objective", "total_return", E, sizeof E));
    qb_wf_plan_t *p = NULL;
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    assert_int_equal(qb_wf_plan_nwindows(p), 2);
    qb_wf_result_t *r = NULL;
    OK(qb_wf_run(p, d, 1, NULL, NULL, &r, E, sizeof E));
    const qb_wf_window_result_t *w0 = qb_wf_result_window(r, 0);
    assert_int_equal(w0->combo, 0);
    assert_true(w0->is_best.metrics.total_return > 5); /* the IS fortune is real: > +500% */
    const qb_bt_metrics_t *m = qb_wf_result_metrics(r);
    assert_true(m->total_return == 0);
    assert_true(m->final_equity == cfg.cash);
    assert_int_equal(m->bars, 20);
    assert_int_equal(m->trades_closed + m->trades_open, 0);
    size_t n;
    const qb_bt_point_t *pt = qb_wf_result_equity(r, &n);
    assert_int_equal(n, 20);
    for (size_t i = 0; i < n; i++) {
        assert_true(pt[i].ts == T0 + (qb_time_t)(20 + i) * DAY); /* OOS steps only */
        assert_true(pt[i].equity == cfg.cash);
    }
    assert_true(m->first_ts == T0 + 20 * DAY);
    qb_wf_result_destroy(r);
    qb_wf_plan_destroy(p);

    /* The mirror: the OOS part alone made the data; a fortune OOS, flat IS */
    for (int i = 0; i < 20; i++) c[i] = 10;
    x = 10;
    for (int i = 20; i < 40; i++) {
        x = i % 2 ? x * 0.9 : x * 1.7;
        c[i] = floor(x * 100) / 100;
    }
    qb_bt_data_destroy(d);
    d = data_of(c, 40, T0);
    spec_steps(&sp, "anchored", "20", "20", NULL);
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    OK(qb_wf_run(p, d, 1, NULL, NULL, &r, E, sizeof E));
    /* one window: the aggregate equals that OOS run (scale 1) */
    qb_bt_config_t one = cfg;
    OK(qb_bt_config_set(&one, "from", "2024-01-21", E, sizeof E));
    snprintf(one.strategies[0].params, sizeof one.strategies[0].params, "{\"slow\":2,\"fast\":1}");
    one.benchmark = 0;
    qb_bt_result_t *br = NULL;
    OK(qb_bt_run(d, &one, &br, E, sizeof E));
    const qb_bt_metrics_t *bm = qb_bt_result_metrics(br);
    m = qb_wf_result_metrics(r);
    assert_true(m->final_equity == bm->final_equity);
    assert_true(m->sharpe == bm->sharpe);
    assert_true(m->max_dd_pct == bm->max_dd_pct);
    assert_true(m->traded_notional == bm->traded_notional);
    assert_true(bm->total_return > 1);
    /* the open trade at the end is counted closed (cut) in the aggregate */
    assert_int_equal(m->trades_open, 0);
    assert_int_equal(m->trades_closed, bm->trades_closed + bm->trades_open);
    qb_bt_result_destroy(br);
    qb_wf_result_destroy(r);
    qb_wf_plan_destroy(p);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

/* ---- stitching, by hand ------------------------------------------------------------------------ */

static void test_stitching(void **state) {
    (void)state;
    qb_bt_data_t *d = walk_data(300);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "");
    OK(qb_bt_config_set(&cfg, "commission", "per_trade:1", E, sizeof E));
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_parse(s, "fast=1:4:1;slow=5:20:5", E, sizeof E));
    qb_wf_spec_t sp;
    spec_steps(&sp, "rolling", "60", "30", NULL);
    qb_wf_plan_t *p = NULL;
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    assert_int_equal(qb_wf_plan_nwindows(p), 8);
    qb_wf_result_t *r = NULL;
    OK(qb_wf_run(p, d, 2, NULL, NULL, &r, E, sizeof E));

    /* Recompute: S_0 = C; each window's OOS curve E -> E x S_k / C (half-even);
     * metrics through the same accumulator. */
    const qb_dec_t C = cfg.cash;
    qb_dec_t S = C;
    qb_bt_acc_t acc;
    qb_bt_acc_init(&acc, C, 252);
    size_t n, k = 0, ntr;
    const qb_bt_point_t *pt = qb_wf_result_equity(r, &n);
    const qb_wf_trade_t *tr = qb_wf_result_trades(r, &ntr);
    size_t ti = 0;
    int traded = 0, cut = 0;
    for (uint32_t w = 0; w < qb_wf_plan_nwindows(p); w++) {
        const qb_wf_window_result_t *wr = qb_wf_result_window(r, w);
        assert_true(wr->start_equity == S);
        if (wr->combo < 0) {
            k += wr->win.oos_end - wr->win.oos_begin;
            continue;
        }
        traded++;
        qb_wf_oos_t *o = NULL;
        OK(qb_wf_eval_oos(p, d, w, (uint64_t)wr->combo, &o, E, sizeof E));
        size_t on, otn;
        const qb_bt_point_t *op = qb_wf_oos_equity(o, &on);
        const qb_bt_trade_t *ot = qb_wf_oos_trades(o, &otn);
        qb_dec_t Sk = S;
        for (size_t i = 0; i < on; i++, k++) {
            qb_dec_t want;
            OK(qb_dec_div_wide((qb_dec_wide_t)op[i].equity * Sk, C, &want, QB_ROUND_HALF_EVEN));
            assert_true(pt[k].ts == op[i].ts);
            assert_true(pt[k].equity == want);
            qb_dec_t lv, sv;
            OK(qb_dec_div_wide((qb_dec_wide_t)op[i].long_value * Sk, C, &lv, QB_ROUND_HALF_EVEN));
            OK(qb_dec_div_wide((qb_dec_wide_t)op[i].short_value * Sk, C, &sv, QB_ROUND_HALF_EVEN));
            qb_bt_acc_step(&acc, op[i].ts, want, lv - sv,
                           op[i].long_value != 0 || op[i].short_value != 0);
            S = want;
        }
        qb_dec_t nt;
        OK(qb_dec_div_wide((qb_dec_wide_t)qb_wf_oos_metrics(o)->traded_notional * Sk, C, &nt,
                           QB_ROUND_HALF_EVEN));
        qb_bt_acc_notional(&acc, nt);
        for (size_t i = 0; i < otn; i++, ti++) {
            qb_dec_t sp2;
            OK(qb_dec_div_wide((qb_dec_wide_t)ot[i].net_pnl * Sk, C, &sp2, QB_ROUND_HALF_EVEN));
            assert_true(tr[ti].scaled_pnl == sp2);
            assert_int_equal(tr[ti].window, w);
            assert_int_equal(tr[ti].cut, ot[i].open);
            cut += ot[i].open;
            qb_bt_acc_trade(&acc, sp2, ot[i].bars, 0);
        }
        assert_true(wr->end_equity == S);
        qb_wf_oos_destroy(o);
    }
    assert_int_equal(k, n);
    assert_int_equal(ti, ntr);
    assert_true(traded >= 4);
    assert_true(ntr > 10);
    qb_bt_metrics_t want;
    qb_bt_acc_finish(&acc, &want);
    assert_memory_equal(&want, qb_wf_result_metrics(r), sizeof want);
    assert_int_equal(qb_wf_result_metrics(r)->trades_open, 0);
    assert_int_equal(qb_wf_result_metrics(r)->bars, 240);
    (void)cut;

    /* stability, recomputed from the windows' selections */
    size_t np = qb_wf_result_nparams(r);
    assert_int_equal(np, 2);
    const qb_search_t *sp_ = qb_wf_plan_space(p);
    for (size_t q = 0; q < np; q++) {
        const qb_wf_stability_t *st = qb_wf_result_stability(r, q);
        double sum = 0, vals[16];
        uint32_t nsel = 0, changes = 0, prev = UINT32_MAX;
        for (uint32_t w = 0; w < qb_wf_result_nwindows(r); w++) {
            int64_t c = qb_wf_result_window(r, w)->combo;
            if (c < 0) continue;
            uint32_t idx[2];
            OK(qb_search_combo(sp_, (uint64_t)c, idx));
            if (prev != UINT32_MAX && idx[q] != prev) changes++;
            prev = idx[q];
            vals[nsel++] = atof(qb_search_value(sp_, q, idx[q]));
            sum += vals[nsel - 1];
        }
        double mean = sum / nsel, ss = 0;
        for (uint32_t i = 0; i < nsel; i++) ss += (vals[i] - mean) * (vals[i] - mean);
        assert_int_equal(st->selected, nsel);
        assert_int_equal(st->changes, changes);
        assert_true(st->numeric);
        assert_true(fabs(st->mean - mean) < 1e-12);
        assert_true(fabs(st->stdev - sqrt(ss / nsel)) < 1e-12);
        assert_true(fabs(st->cv - sqrt(ss / nsel) / mean) < 1e-12);
    }
    qb_wf_result_destroy(r);
    qb_wf_plan_destroy(p);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

/* ---- exact JSON of the units -------------------------------------------------------------------- */

static void test_unit_json_roundtrip(void **state) {
    (void)state;
    qb_bt_data_t *d = walk_data(200);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "");
    OK(qb_bt_config_set(&cfg, "commission", "percent:0.1", E, sizeof E));
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_parse(s, "fast=2,3;slow=10,1", E, sizeof E)); /* slow 1 is refused */
    qb_wf_spec_t sp;
    spec_steps(&sp, "rolling", "100", "100", NULL);
    OK(qb_wf_spec_set(&sp, "objective", "profit_factor", E, sizeof E));
    qb_wf_plan_t *p = NULL;
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    qb_search_score_t sc[4];
    OK(qb_wf_eval_is(p, d, 0, 0, 4, sc, E, sizeof E));
    assert_false(sc[1].valid);
    assert_non_null(strstr(sc[1].error, "slow"));
    assert_true(sc[0].valid && sc[0].trades > 0);
    for (int i = 0; i < 4; i++) {
        char a[QB_SEARCH_SCORE_JSON_MAX], b[QB_SEARCH_SCORE_JSON_MAX];
        size_t na = qb_search_score_json(&sc[i], a, sizeof a);
        assert_true(na < sizeof a);
        qb_search_score_t back;
        OK(qb_search_score_parse(a, na, &back, E, sizeof E));
        qb_search_score_json(&back, b, sizeof b);
        assert_string_equal(a, b);
        assert_memory_equal(&back.metrics, &sc[i].metrics, sizeof back.metrics);
        assert_true(back.combo == sc[i].combo && back.trades == sc[i].trades);
    }
    ERR(QB_ERR_PARSE, qb_search_score_parse("{\"combo\":1}", 11, &sc[0], E, sizeof E));
    qb_wf_oos_t *o = NULL, *o2 = NULL;
    OK(qb_wf_eval_oos(p, d, 0, 0, &o, E, sizeof E));
    char *j = qb_wf_oos_to_json(o);
    assert_non_null(j);
    OK(qb_wf_oos_parse(j, strlen(j), &o2, E, sizeof E));
    char *j2 = qb_wf_oos_to_json(o2);
    if (strcmp(j, j2)) {
        size_t at = 0;
        while (j[at] == j2[at]) at++;
        fail_msg("OOS JSON differs at %zu: ...%.60s vs ...%.60s", at, j + (at > 20 ? at - 20 : 0),
                 j2 + (at > 20 ? at - 20 : 0));
    }
    size_t n1, n2;
    const qb_bt_point_t *p1 = qb_wf_oos_equity(o, &n1), *p2 = qb_wf_oos_equity(o2, &n2);
    assert_int_equal(n1, 100);
    assert_int_equal(n1, n2);
    assert_memory_equal(p1, p2, n1 * sizeof *p1);
    const qb_bt_trade_t *t1 = qb_wf_oos_trades(o, &n1), *t2 = qb_wf_oos_trades(o2, &n2);
    assert_int_equal(n1, n2);
    assert_true(n1 > 0);
    assert_memory_equal(t1, t2, n1 * sizeof *t1);
    assert_memory_equal(qb_wf_oos_metrics(o), qb_wf_oos_metrics(o2), sizeof(qb_bt_metrics_t));
    ERR(QB_ERR_PARSE, qb_wf_oos_parse("{\"window\":0}", 12, &o2 /* untouched */, E, sizeof E));
    free(j);
    free(j2);
    qb_wf_oos_destroy(o);
    qb_wf_oos_destroy(o2);
    /* an OOS unit of a refused combination is an error; data not the plan's too */
    ERR(QB_ERR_INVALID, qb_wf_eval_oos(p, d, 0, 1, &o, E, sizeof E));
    qb_bt_data_t *other = walk_data(150);
    ERR(QB_ERR_INVALID, qb_wf_eval_is(p, other, 0, 0, 1, sc, E, sizeof E));
    qb_bt_data_destroy(other);
    qb_wf_plan_destroy(p);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

/* ---- order independence ------------------------------------------------------------------------- */

static char *result_text(const qb_wf_result_t *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    OK(qb_wf_result_json(r, QB_WF_JSON_EQUITY | QB_WF_JSON_TRADES, f));
    fclose(f);
    return buf;
}

static void test_order_independence(void **state) {
    (void)state;
    qb_bt_data_t *d = walk_data(400);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "");
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_parse(s, "fast=1:5:1;slow=6:30:6", E, sizeof E));
    qb_wf_spec_t sp;
    spec_steps(&sp, "anchored", "80", "40", "50");
    OK(qb_wf_spec_set(&sp, "objective", "calmar", E, sizeof E));
    OK(qb_wf_spec_set(&sp, "min_trades", "2", E, sizeof E));
    qb_wf_plan_t *p = NULL;
    OK(qb_wf_plan_new(d, &cfg, s, &sp, &p, E, sizeof E));
    size_t nw = qb_wf_plan_nwindows(p);
    uint64_t nc = qb_wf_plan_ncombos(p);
    assert_int_equal(nc, 25);
    assert_true(nw >= 6);

    qb_wf_result_t *r1 = NULL, *r2 = NULL;
    OK(qb_wf_run(p, d, 1, NULL, NULL, &r1, E, sizeof E));
    OK(qb_wf_run(p, d, 2, NULL, NULL, &r2, E, sizeof E));
    char *t1 = result_text(r1), *t2 = result_text(r2);
    assert_string_equal(t1, t2);

    /* every IS unit as JSON text (what crosses a process boundary), then shuffled */
    size_t nu = nw * nc;
    char **msg = calloc(nu, sizeof *msg);
    uint32_t *mw = calloc(nu, sizeof *mw);
    for (uint32_t w = 0; w < nw; w++) {
        qb_search_score_t sc[25];
        OK(qb_wf_eval_is(p, d, w, 0, nc, sc, E, sizeof E));
        for (uint64_t c = 0; c < nc; c++) {
            msg[w * nc + c] = malloc(QB_SEARCH_SCORE_JSON_MAX);
            qb_search_score_json(&sc[c], msg[w * nc + c], QB_SEARCH_SCORE_JSON_MAX);
            mw[w * nc + c] = w;
        }
    }
    for (uint64_t seed = 1; seed <= 3; seed++) {
        qb_mc_rng_t rng;
        qb_mc_rng_seed(&rng, seed);
        size_t *ord = malloc(nu * sizeof *ord);
        for (size_t i = 0; i < nu; i++) ord[i] = i;
        for (size_t i = nu; i > 1; i--) {
            size_t j = (size_t)qb_mc_rng_below(&rng, i);
            size_t t = ord[i - 1];
            ord[i - 1] = ord[j];
            ord[j] = t;
        }
        qb_wf_agg_t *a = NULL;
        OK(qb_wf_agg_new(p, &a));
        for (size_t i = 0; i < nu; i++) {
            size_t m = ord[i];
            qb_search_score_t sc;
            OK(qb_search_score_parse(msg[m], strlen(msg[m]), &sc, E, sizeof E));
            OK(qb_wf_agg_add_is(a, mw[m], &sc, 1, E, sizeof E));
            if (i % 7 == 0) OK(qb_wf_agg_add_is(a, mw[m], &sc, 1, E, sizeof E)); /* a repeat */
            /* OOS units as soon as due, through JSON, in reverse window order */
            qb_wf_unit_t u[64];
            size_t due = qb_wf_agg_next(a, 4, u, 64);
            for (size_t k = due < 64 ? due : 64; k-- > 0;) {
                if (u[k].kind != QB_WF_UNIT_OOS) continue;
                qb_wf_oos_t *o = NULL, *o2 = NULL;
                OK(qb_wf_eval_oos(p, d, u[k].window, u[k].combo, &o, E, sizeof E));
                char *j = qb_wf_oos_to_json(o);
                OK(qb_wf_oos_parse(j, strlen(j), &o2, E, sizeof E));
                OK(qb_wf_agg_add_oos(a, o2, E, sizeof E));
                free(j);
                qb_wf_oos_destroy(o);
                qb_wf_oos_destroy(o2);
            }
        }
        assert_true(qb_wf_agg_complete(a));
        assert_int_equal(qb_wf_agg_next(a, 4, NULL, 0), 0);
        qb_wf_result_t *r3 = NULL;
        OK(qb_wf_agg_finish(a, &r3, E, sizeof E));
        char *t3 = result_text(r3);
        assert_string_equal(t1, t3);
        free(t3);
        qb_wf_result_destroy(r3);
        qb_wf_agg_destroy(a);
        free(ord);
    }
    for (size_t i = 0; i < nu; i++) free(msg[i]);
    free(msg);
    free(mw);
    /* the JSON says what it should */
    assert_non_null(strstr(t1, "\"stability\""));
    assert_non_null(strstr(t1, "\"objective\":\"calmar\""));
    assert_non_null(strstr(t1, "\"mode\":\"anchored\""));
    free(t1);
    free(t2);
    qb_wf_result_destroy(r1);
    qb_wf_result_destroy(r2);
    qb_wf_plan_destroy(p);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

/* ---- search on one period ----------------------------------------------------------------------- */

static int count_progress(uint64_t done, uint64_t total, void *ctx) {
    uint64_t *last = ctx;
    if (done > total) fail_msg("progress %llu > %llu", (unsigned long long)done,
                               (unsigned long long)total);
    *last = done;
    return 0;
}

static int cancel_progress(uint64_t done, uint64_t total, void *ctx) {
    (void)done;
    (void)total;
    (void)ctx;
    return 1;
}

static void test_search_run(void **state) {
    (void)state;
    qb_bt_data_t *d = walk_data(300);
    qb_bt_config_t cfg;
    base_cfg(&cfg, "");
    qb_search_t *s = NULL;
    OK(qb_search_new(&s));
    OK(qb_search_parse(s, "fast=1:6:1;slow=5:30:5", E, sizeof E));
    OK(qb_search_sample(s, 20, 1234, E, sizeof E));
    qb_search_objective_t o;
    OK(qb_search_objective_set(&o, "sharpe", 1, E, sizeof E));
    qb_search_score_t *a = NULL, *b = NULL;
    size_t na, nb;
    uint64_t last = 0;
    OK(qb_search_run(d, &cfg, s, &o, 1, count_progress, &last, &a, &na, E, sizeof E));
    assert_int_equal(last, 20);
    OK(qb_search_run(d, &cfg, s, &o, 3, NULL, NULL, &b, &nb, E, sizeof E));
    assert_int_equal(na, 20);
    assert_memory_equal(a, b, na * sizeof *a);
    for (size_t i = 1; i < na; i++) assert_true(qb_search_cmp(&o, &a[i - 1], &a[i]) < 0);
    /* the best one, evaluated alone, gives the same score */
    qb_search_score_t one;
    OK(qb_search_eval(d, &cfg, s, a[0].combo, 0, 0, &o, &one, E, sizeof E));
    assert_memory_equal(&one, &a[0], sizeof one);
    /* a cancel stops the run */
    free(b);
    ERR(QB_ERR_STATE, qb_search_run(d, &cfg, s, &o, 2, cancel_progress, NULL, &b, &nb, E,
                                    sizeof E));
    assert_non_null(strstr(E, "canceled"));
    free(a);
    qb_search_destroy(s);
    qb_bt_data_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_steps),
        cmocka_unit_test(test_layout_time),
        cmocka_unit_test(test_space_grid_and_random),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_oos_only_oos_bars),
        cmocka_unit_test(test_stitching),
        cmocka_unit_test(test_unit_json_roundtrip),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_search_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
