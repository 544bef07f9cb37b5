/* test_md_synth.c — the synthetic generator: deterministic, valid bars on
 * the timeframe grid, and the statistics it promises (volatility, regimes,
 * jumps) within tolerances that a wrong model would miss. */
#include "qb_test_assert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_synth.h"

typedef struct {
    qb_bar_t *v;
    size_t n, cap;
    int batches;
    int fail_after; /* return an error from this batch on (0 = never) */
} collect_t;

static qb_err_t collect_bars(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    collect_t *c = opaque;
    if (c->fail_after && ++c->batches >= c->fail_after)
        return qb_err_set(e, el, QB_ERR_IO, "sink full");
    if (c->n + n > c->cap) {
        c->cap = (c->n + n) * 2;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    memcpy(c->v + c->n, bars, n * sizeof(*bars));
    c->n += n;
    return QB_OK;
}

static collect_t fetch(const qb_md_synth_opts_t *o, const char *sym, const char *tf,
                       const char *from, const char *to) {
    char err[256];
    collect_t c = {0};
    qb_md_request_t req = {.symbol = sym, .timeframe = tf};
    assert_int_equal(qb_time_parse(from, strlen(from), &req.from), QB_OK);
    assert_int_equal(qb_time_parse(to, strlen(to), &req.to), QB_OK);
    qb_md_source_t *s = qb_md_synth_source_new(o, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(qb_md_source_name(s), "synthetic");
    qb_md_sink_t sink = {collect_bars, NULL, &c};
    qb_err_t e = qb_md_fetch(s, &req, &sink, err, sizeof(err));
    if (e) fail_msg("fetch: %s", err);
    qb_md_source_destroy(s);
    return c;
}

static void test_deterministic_and_valid(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 42);
    collect_t a = fetch(&o, "AAA", "1m", "2024-01-02T00:00:00Z", "2024-01-09T00:00:00Z");
    collect_t b = fetch(&o, "AAA", "1m", "2024-01-02T00:00:00Z", "2024-01-09T00:00:00Z");
    assert_int_equal(a.n, 7 * 1440);
    assert_int_equal(b.n, a.n);
    assert_memory_equal(a.v, b.v, a.n * sizeof(*a.v));
    char err[256];
    for (size_t i = 0; i < a.n; i++) {
        if (qb_bar_validate(&a.v[i], err, sizeof(err))) fail_msg("bar %zu: %s", i, err);
        assert_int_equal(a.v[i].ts % QB_NS_PER_MIN, 0);
        if (i) assert_int_equal(a.v[i].ts - a.v[i - 1].ts, QB_NS_PER_MIN);
        assert_int_equal(a.v[i].open % 1000000, 0); /* on the 0.01 tick */
        assert_int_equal(a.v[i].low % 1000000, 0);
    }
    assert_int_equal(a.v[0].open, 10000000000LL); /* starts at 100.00 */

    qb_md_synth_opts_t o2;
    qb_md_synth_opts_default(&o2, 43);
    collect_t c = fetch(&o2, "AAA", "1m", "2024-01-02T00:00:00Z", "2024-01-09T00:00:00Z");
    collect_t d = fetch(&o, "BBB", "1m", "2024-01-02T00:00:00Z", "2024-01-09T00:00:00Z");
    assert_true(memcmp(&a.v[100].close, &c.v[100].close, sizeof(qb_dec_t)) != 0 ||
                a.v[200].close != c.v[200].close);
    assert_true(a.v[100].close != d.v[100].close || a.v[200].close != d.v[200].close);
    free(a.v); free(b.v); free(c.v); free(d.v);
}

static void test_daily_grid_and_weekdays(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 7);
    o.weekdays_only = 1;
    /* 2024-01-01 (Mon) .. 2024-01-15 (Mon, excluded): 10 weekdays. */
    collect_t a = fetch(&o, "SPY", "1d", "2024-01-01", "2024-01-15");
    assert_int_equal(a.n, 10);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.v[i].ts % QB_NS_PER_DAY, 0);
        int wd = qb_time_weekday(a.v[i].ts);
        assert_true(wd >= 1 && wd <= 5);
        assert_string_equal(a.v[i].timeframe, "1d");
        assert_string_equal(a.v[i].symbol.s, "SPY");
    }
    /* A start off the grid begins at the next grid point. */
    collect_t b = fetch(&o, "SPY", "1h", "2024-01-02T10:30:00Z", "2024-01-02T13:00:00Z");
    assert_int_equal(b.n, 2); /* 11:00, 12:00 */
    char txt[40];
    qb_time_format(b.v[0].ts, txt, sizeof(txt));
    assert_string_equal(txt, "2024-01-02T11:00:00Z");
    free(a.v); free(b.v);
}

/* Pooled close-to-close log returns of `nsym` independent 10-year daily
 * paths (short paths keep the price far from the tick, so rounding does not
 * add noise). Returns the annualised stdev; *big counts |r| > big_sd. */
static double pooled_vol(const qb_md_synth_opts_t *o, int nsym, int *big, double big_sd,
                         size_t *nret) {
    double sum = 0, sum2 = 0;
    size_t n = 0;
    if (big) *big = 0;
    for (int k = 0; k < nsym; k++) {
        char sym[16];
        snprintf(sym, sizeof(sym), "S%d", k);
        collect_t c = fetch(o, sym, "1d", "2000-01-01", "2010-01-01");
        for (size_t i = 1; i < c.n; i++) {
            double r = log(qb_dec_to_double(c.v[i].close) / qb_dec_to_double(c.v[i - 1].close));
            sum += r;
            sum2 += r * r;
            n++;
            if (big && fabs(r) > big_sd) (*big)++;
        }
        free(c.v);
    }
    *nret = n;
    return sqrt((sum2 - sum * sum / (double)n) / (double)(n - 1) * 252);
}

static void test_statistics(void **state) {
    (void)state;
    size_t n;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 2024);
    o.p_enter_stress = 0;
    o.jump_prob = 0;
    o.start_price = 1000;
    /* ~146k daily returns, calm regime only: vol within 2% of 0.20 (the
     * estimate's own standard error is ~0.2%). */
    double v = pooled_vol(&o, 40, NULL, 0, &n);
    assert_true(n > 140000);
    if (!(v > 0.196 && v < 0.204)) fail_msg("calm vol %f, want 0.20", v);

    /* Regimes: stressed 1/6 of the time at 3x: variance mix 5/6*1 + 1/6*9. */
    o.p_enter_stress = 0.01;
    o.p_exit_stress = 0.05;
    double vr = pooled_vol(&o, 40, NULL, 0, &n);
    double expect = 0.20 * sqrt(5.0 / 6.0 + 9.0 / 6.0);
    if (!(vr > expect * 0.9 && vr < expect * 1.1)) fail_msg("regime vol %f, want %f", vr, expect);

    /* Jumps: 1% of bars jump with sd 0.2, far beyond the daily sd 0.0126:
     * P(|N(0,0.2)| > 0.0756) = 0.705, so ~0.7% of returns exceed 6 sd. */
    o.p_enter_stress = 0;
    o.jump_prob = 0.01;
    o.jump_sigma = 0.2;
    int big = 0;
    pooled_vol(&o, 40, &big, 0.0126 * 6, &n);
    double share = (double)big / (double)n;
    if (!(share > 0.006 && share < 0.008)) fail_msg("jump share %f, want ~0.007", share);
}

static void test_errors(void **state) {
    (void)state;
    char err[256];
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 1);
    o.sigma = -1;
    assert_null(qb_md_synth_source_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "sigma"));
    qb_md_synth_opts_default(&o, 1);
    o.substeps = 0;
    assert_null(qb_md_synth_source_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "substeps"));

    qb_md_synth_opts_default(&o, 1);
    qb_md_source_t *s = qb_md_synth_source_new(&o, err, sizeof(err));
    collect_t c = {0};
    qb_md_sink_t sink = {collect_bars, NULL, &c};
    qb_md_request_t req = {.symbol = "AAA", .timeframe = "7m", .from = 0, .to = QB_NS_PER_DAY};
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_ERR_INVALID);
    assert_non_null(strstr(err, "7m"));
    req.timeframe = "1m";
    req.symbol = "bad symbol!";
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_ERR_INVALID);
    req.symbol = "AAA";
    req.to = 0;
    req.from = 5;
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_ERR_INVALID);
    /* A sink error stops the fetch and is returned. */
    req.from = 0;
    req.to = 10 * QB_NS_PER_DAY;
    c.fail_after = 2;
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_ERR_IO);
    assert_string_equal(err, "sink full");
    assert_int_equal(c.n, 4096); /* the first batch only */
    free(c.v);
    qb_md_source_destroy(s);
    qb_md_source_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_valid),
        cmocka_unit_test(test_daily_grid_and_weekdays),
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("md_synth", tests, NULL, NULL);
}
