/* test_md_synth.c — the synthetic generator: deterministic, valid bars on
 * the timeframe grid, stitchable (a bar does not depend on the request that
 * produced it: split ranges, single bars and long fetches agree bitwise;
 * each bar opens at the previous close; timeframes meet at midnight), and the
 * statistics it promises (volatility, regimes, jumps) within tolerances that
 * a wrong model would miss. */
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

static collect_t fetch_ns(const qb_md_synth_opts_t *o, const char *sym, const char *tf,
                          qb_time_t from, qb_time_t to) {
    char err[256];
    collect_t c = {0};
    qb_md_request_t req = {.symbol = sym, .timeframe = tf, .from = from, .to = to};
    qb_md_source_t *s = qb_md_synth_source_new(o, err, sizeof(err));
    assert_non_null(s);
    qb_md_sink_t sink = {collect_bars, NULL, &c};
    qb_err_t e = qb_md_fetch(s, &req, &sink, err, sizeof(err));
    if (e) fail_msg("fetch %s %s: %s", sym, tf, err);
    qb_md_source_destroy(s);
    return c;
}

static qb_time_t ts_of(const char *text) {
    qb_time_t t;
    assert_int_equal(qb_time_parse(text, strlen(text), &t), QB_OK);
    return t;
}

/* Bitwise equal bar arrays, naming the first difference. */
static void assert_same_bars(const qb_bar_t *a, size_t na, const qb_bar_t *b, size_t nb,
                             const char *what) {
    if (na != nb) fail_msg("%s: %zu bars vs %zu", what, na, nb);
    for (size_t i = 0; i < na; i++) {
        if (memcmp(&a[i], &b[i], sizeof(*a)) != 0) {
            char t1[QB_TIME_STRLEN], t2[QB_TIME_STRLEN];
            qb_time_format(a[i].ts, t1, sizeof(t1));
            qb_time_format(b[i].ts, t2, sizeof(t2));
            fail_msg("%s: bar %zu differs (%s o%lld c%lld vs %s o%lld c%lld)", what, i, t1,
                     (long long)a[i].open, (long long)a[i].close, t2, (long long)b[i].open,
                     (long long)b[i].close);
        }
    }
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
    /* start_price is the price at the pin, 2000-01-01T00:00Z, whatever the
     * timeframe and wherever the request starts. */
    collect_t p1 = fetch(&o, "AAA", "1d", "1999-12-30", "2000-01-03");
    collect_t p2 = fetch(&o, "AAA", "1m", "2000-01-01T00:00:00Z", "2000-01-01T00:01:00Z");
    assert_int_equal(p1.n, 4);
    assert_int_equal(p1.v[2].ts, QB_MD_SYNTH_PIN);
    assert_int_equal(p1.v[2].open, 10000000000LL); /* 100.00 */
    assert_int_equal(p1.v[1].close, 10000000000LL);
    assert_int_equal(p2.n, 1);
    assert_int_equal(p2.v[0].open, 10000000000LL);
    free(p1.v); free(p2.v);

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

/* Ranges per timeframe: [a, c) with a split point b that is not on a day
 * (nor, for intraday, on the timeframe's grid) and that crosses the pin or
 * skeleton windows where it can. */
typedef struct {
    const char *tf, *a, *b, *c;
} split_case_t;

static const split_case_t split_cases[] = {
    {"1m", "2024-01-02T03:17:00Z", "2024-01-04T13:37:29Z", "2024-01-09T00:00:00Z"},
    {"1m", "1999-12-30T23:58:00Z", "2000-01-01T00:00:30Z", "2000-01-01T02:00:00Z"},
    {"5m", "2023-12-29T10:00:00Z", "2024-01-01T13:37:00Z", "2024-01-12T00:00:00Z"},
    {"15m", "2020-02-27T00:00:00Z", "2020-03-01T07:07:00Z", "2020-03-05T00:00:00Z"},
    {"1h", "2021-06-01T05:00:00Z", "2021-07-13T13:37:00Z", "2021-09-01T00:00:00Z"},
    {"4h", "1990-01-01T00:00:00Z", "2001-03-03T13:37:00Z", "2003-01-01T00:00:00Z"},
    {"1d", "1995-03-01T00:00:00Z", "2010-06-15T13:37:00Z", "2024-01-01T00:00:00Z"},
    {"1d", "1900-01-01T00:00:00Z", "1900-01-02T00:00:00Z", "1905-01-01T00:00:00Z"},
    {"1w", "1980-01-01T00:00:00Z", "2001-05-05T13:37:00Z", "2024-01-01T00:00:00Z"},
};

static void check_split(const qb_md_synth_opts_t *o, const char *sym, const split_case_t *k) {
    qb_time_t a = ts_of(k->a), b = ts_of(k->b), c = ts_of(k->c);
    collect_t all = fetch_ns(o, sym, k->tf, a, c);
    collect_t left = fetch_ns(o, sym, k->tf, a, b);
    collect_t right = fetch_ns(o, sym, k->tf, b, c);
    assert_true(all.n > 0);
    char what[128];
    snprintf(what, sizeof(what), "%s %s [%s, %s) + [%s, %s)", sym, k->tf, k->a, k->b, k->b, k->c);
    assert_same_bars(all.v, left.n, left.v, left.n, what);
    assert_same_bars(all.v + left.n, all.n - left.n, right.v, right.n, what);

    /* And in many pieces at pseudo-random cuts. */
    collect_t parts = {0};
    uint64_t lcg = 12345;
    qb_time_t from = a;
    while (from < c) {
        lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(lcg >> 11) / 9007199254740992.0; /* [0, 1) */
        qb_time_t to = from + (qb_time_t)(u * (double)((c - a) / 5)) + 1;
        if (to > c) to = c;
        collect_t p = fetch_ns(o, sym, k->tf, from, to);
        if (p.n) collect_bars(&parts, p.v, p.n, NULL, 0);
        free(p.v);
        from = to;
    }
    snprintf(what, sizeof(what), "%s %s [%s, %s) in pieces", sym, k->tf, k->a, k->c);
    assert_same_bars(all.v, all.n, parts.v, parts.n, what);
    free(all.v); free(left.v); free(right.v); free(parts.v);
}

static void test_stitch_split_ranges(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 42);
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++)
        check_split(&o, "AAA", &split_cases[i]);
    /* Weekdays only, busy regimes and jumps, no sub-steps, another tick. */
    qb_md_synth_opts_default(&o, 9);
    o.weekdays_only = 1;
    o.p_enter_stress = 0.3;
    o.p_exit_stress = 0.3;
    o.jump_prob = 0.5;
    o.substeps = 1;
    o.tick = 0.05;
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++)
        check_split(&o, "BTC-USD", &split_cases[i]);
}

static void test_stitch_single_bar(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 5);
    o.jump_prob = 0.2; /* jump bars too */
    static const char *tfs[] = {"1m", "5m", "30m", "1h", "4h", "1d", "1w"};
    for (size_t k = 0; k < sizeof(tfs) / sizeof(tfs[0]); k++) {
        int64_t step;
        assert_int_equal(qb_timeframe_parse(tfs[k], &step), QB_OK);
        qb_time_t a = ts_of("2015-03-02T00:00:00Z");
        collect_t all = fetch_ns(&o, "XYZ", tfs[k], a, a + 3000 * step);
        assert_int_equal(all.n, 3000);
        for (size_t i = 0; i < all.n; i += (i < 3 || i > all.n - 4) ? 1 : 97) {
            collect_t one = fetch_ns(&o, "XYZ", tfs[k], all.v[i].ts, all.v[i].ts + step);
            char what[64];
            snprintf(what, sizeof(what), "%s bar %zu alone", tfs[k], i);
            assert_same_bars(&all.v[i], 1, one.v, one.n, what);
            /* A request starting inside the bar's interval but off the grid
             * starts at the next bar. */
            collect_t off = fetch_ns(&o, "XYZ", tfs[k], all.v[i].ts + 1, all.v[i].ts + 2 * step);
            if (i + 1 < all.n) assert_same_bars(&all.v[i + 1], 1, off.v, off.n, what);
            free(one.v); free(off.v);
        }
        free(all.v);
    }
}

static void test_continuity_and_timeframes(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 77);
    o.jump_prob = 0.3;
    o.p_enter_stress = 0.05;
    char err[256];
    static const char *tfs[] = {"1m", "5m", "15m", "1h", "4h", "1d", "1w"};
    collect_t d1 = fetch(&o, "CONT", "1d", "2022-01-01", "2022-03-01");
    assert_int_equal(d1.n, 59);
    for (size_t k = 0; k < sizeof(tfs) / sizeof(tfs[0]); k++) {
        collect_t c = fetch(&o, "CONT", tfs[k], "2022-01-06", "2022-02-24");
        assert_true(c.n > 5);
        for (size_t i = 0; i < c.n; i++) {
            if (qb_bar_validate(&c.v[i], err, sizeof(err))) fail_msg("%s: %s", tfs[k], err);
            if (i && c.v[i].open != c.v[i - 1].close)
                fail_msg("%s bar %zu opens at %lld, previous close %lld", tfs[k], i,
                         (long long)c.v[i].open, (long long)c.v[i - 1].close);
        }
        /* Every timeframe passes through the daily close at each midnight. */
        for (size_t i = 0; i < c.n; i++) {
            qb_time_t end = 0;
            int64_t step;
            assert_int_equal(qb_timeframe_parse(tfs[k], &step), QB_OK);
            end = c.v[i].ts + step;
            if (end % QB_NS_PER_DAY) continue;
            size_t j = (size_t)((end - QB_NS_PER_DAY - d1.v[0].ts) / QB_NS_PER_DAY);
            assert_true(j < d1.n);
            if (c.v[i].close != d1.v[j].close)
                fail_msg("%s close at midnight %zu: %lld vs 1d %lld", tfs[k], i,
                         (long long)c.v[i].close, (long long)d1.v[j].close);
        }
        free(c.v);
    }
    /* weekdays_only only drops bars: the rest are those of the all-days
     * path (so Monday opens at Saturday 00:00's price: the weekend's move
     * is a gap). */
    o.weekdays_only = 1;
    collect_t w = fetch(&o, "CONT", "1d", "2022-01-01", "2022-03-01");
    for (size_t i = 0; i < w.n; i++) {
        size_t j = (size_t)((w.v[i].ts - d1.v[0].ts) / QB_NS_PER_DAY);
        assert_same_bars(&w.v[i], 1, &d1.v[j], 1, "weekday bar = same bar of all days");
    }
    free(w.v);
    free(d1.v);
}

static void test_symbols_and_seeds_differ(void **state) {
    (void)state;
    qb_md_synth_opts_t o, o2;
    qb_md_synth_opts_default(&o, 42);
    qb_md_synth_opts_default(&o2, 43);
    static const char *tfs[] = {"1m", "1d"};
    static const char *ranges[][2] = {{"2024-03-04", "2024-03-06"}, {"1990-01-01", "2030-01-01"}};
    for (int k = 0; k < 2; k++) {
        collect_t a = fetch(&o, "AAA", tfs[k], ranges[k][0], ranges[k][1]);
        collect_t b = fetch(&o, "AAB", tfs[k], ranges[k][0], ranges[k][1]);
        collect_t c = fetch(&o2, "AAA", tfs[k], ranges[k][0], ranges[k][1]);
        assert_int_equal(a.n, b.n);
        assert_int_equal(a.n, c.n);
        size_t same_b = 0, same_c = 0;
        for (size_t i = 0; i < a.n; i++) {
            same_b += a.v[i].close == b.v[i].close;
            same_c += a.v[i].close == c.v[i].close;
        }
        /* Independent paths rarely meet on the same tick. */
        if (same_b * 20 > a.n || same_c * 20 > a.n)
            fail_msg("%s: %zu / %zu closes equal across symbols, %zu across seeds", tfs[k],
                     same_b, a.n, same_c);
        free(a.v); free(b.v); free(c.v);
    }
}

static void test_long_ranges(void **state) {
    (void)state;
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 3);
    char err[256];
    /* 40 years of daily bars for a few symbols: valid, positive, moving. */
    for (int k = 0; k < 8; k++) {
        char sym[16];
        snprintf(sym, sizeof(sym), "L%d", k);
        collect_t c = fetch(&o, sym, "1d", "1990-01-01", "2030-01-01");
        assert_int_equal(c.n, 14610);
        qb_dec_t lo = c.v[0].low, hi = c.v[0].high;
        for (size_t i = 0; i < c.n; i++) {
            if (qb_bar_validate(&c.v[i], err, sizeof(err))) fail_msg("%s", err);
            assert_true(c.v[i].low >= 1000000); /* >= one tick */
            if (c.v[i].low < lo) lo = c.v[i].low;
            if (c.v[i].high > hi) hi = c.v[i].high;
        }
        assert_true(hi > lo * 2); /* 40 years at 20% vol do move */
        free(c.v);
    }
    /* From the origin, 200 years, busy options. */
    o.jump_prob = 0.05;
    o.p_enter_stress = 0.05;
    collect_t c = fetch(&o, "OLD", "1d", "1900-01-01", "2100-01-01");
    assert_int_equal(c.n, 73049);
    for (size_t i = 0; i < c.n; i++)
        if (qb_bar_validate(&c.v[i], err, sizeof(err))) fail_msg("%s", err);
    free(c.v);
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
    /* The path begins at 1900-01-01T00:00Z. */
    req.from = QB_MD_SYNTH_ORIGIN - 1;
    req.to = QB_MD_SYNTH_ORIGIN + QB_NS_PER_DAY;
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_ERR_RANGE);
    assert_non_null(strstr(err, "1900-01-01"));
    req.from = QB_MD_SYNTH_ORIGIN;
    assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_OK);
    assert_int_equal(c.n, 1440);
    c.n = 0;
    /* Up to the end of time (2262-04-11T23:47:16Z), weekdays only too: no
     * overflow (UBSan would abort). */
    qb_md_synth_opts_t o2 = o;
    o2.weekdays_only = 1;
    qb_md_source_t *s2 = qb_md_synth_source_new(&o2, err, sizeof(err));
    static const char *tfs[] = {"1m", "4h", "1d", "1w"};
    for (int w = 0; w < 2; w++)
        for (size_t k = 0; k < sizeof(tfs) / sizeof(tfs[0]); k++) {
            qb_md_request_t end = {.symbol = "AAA", .timeframe = tfs[k],
                                   .from = INT64_MAX - 30 * QB_NS_PER_DAY, .to = INT64_MAX};
            c.n = 0;
            assert_int_equal(qb_md_fetch(w ? s2 : s, &end, &sink, err, sizeof(err)), QB_OK);
            assert_true(c.n > 0);
            assert_true(c.v[c.n - 1].ts > INT64_MAX - 7 * QB_NS_PER_DAY);
        }
    qb_md_source_destroy(s2);
    c.n = 0;
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
        cmocka_unit_test(test_stitch_split_ranges),
        cmocka_unit_test(test_stitch_single_bar),
        cmocka_unit_test(test_continuity_and_timeframes),
        cmocka_unit_test(test_symbols_and_seeds_differ),
        cmocka_unit_test(test_long_ranges),
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("md_synth", tests, NULL, NULL);
}
