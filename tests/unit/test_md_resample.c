/* test_md_resample.c — qb_md_resample against bars computed by hand: an
 * NYSE 1m series across an hour boundary and into the session close
 * (2024-03-08, EST: 09:30 local = 14:30Z, close 16:00 = 21:00Z) resampled to
 * 5m, 1h, 2h and 1d with exact OHLCV (decimal volumes); when each output
 * bar is emitted; extended-hours and weekend input; the next session and
 * an early close; 24x7 day and year boundaries; and every input error,
 * after which the stream must be unaffected. */
#include <stdio.h>
#include <string.h>

#include "md/qb_md_resample.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[256];

static qb_time_t T(const char *iso) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(iso, strlen(iso), &t), QB_OK);
    return t;
}

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    assert_int_equal(qb_dec_parse(s, strlen(s), &v), QB_OK);
    return v;
}

static qb_bar_t bar(const char *sym, const char *tf, const char *ts, const char *o,
                    const char *h, const char *l, const char *c, const char *v) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(qb_symbol_set(&b.symbol, sym, NULL, 0), QB_OK);
    snprintf(b.timeframe, sizeof b.timeframe, "%s", tf);
    b.ts = T(ts);
    b.open = D(o);
    b.high = D(h);
    b.low = D(l);
    b.close = D(c);
    b.volume = D(v);
    return b;
}

/* got must be exactly this bar. */
static void expect(const qb_bar_t *got, const char *sym, const char *tf, const char *ts,
                   const char *o, const char *h, const char *l, const char *c, const char *v) {
    qb_bar_t w = bar(sym, tf, ts, o, h, l, c, v);
    char g[5][QB_DEC_STRLEN], ww[5][QB_DEC_STRLEN], gts[QB_TIME_STRLEN];
    qb_dec_t gv[5] = {got->open, got->high, got->low, got->close, got->volume};
    qb_dec_t wv[5] = {w.open, w.high, w.low, w.close, w.volume};
    for (int i = 0; i < 5; i++) {
        qb_dec_format(gv[i], g[i], sizeof g[i]);
        qb_dec_format(wv[i], ww[i], sizeof ww[i]);
    }
    qb_time_format(got->ts, gts, sizeof gts);
    if (strcmp(got->symbol.s, sym) || strcmp(got->timeframe, tf) || got->ts != w.ts ||
        memcmp(gv, wv, sizeof gv) != 0)
        fail_msg("got %s %s %s O %s H %s L %s C %s V %s\nwant %s %s %s O %s H %s L %s C %s V %s",
                 got->symbol.s, got->timeframe, gts, g[0], g[1], g[2], g[3], g[4], sym, tf, ts,
                 ww[0], ww[1], ww[2], ww[3], ww[4]);
}

static const qb_cal_t *nyse(void) {
    const qb_cal_t *c = NULL;
    OK(qb_cal_get("XNYS", &c, E, sizeof E));
    return c;
}

/* The hand-written 1m series of 2024-03-08 (local time in comments). */
#define NSERIES 7
static void series(qb_bar_t s[NSERIES]) {
    s[0] = bar("AAPL", "1m", "2024-03-08T14:30:00Z", "99", "99.5", "98.5", "99.2", "500");     /* 09:30 */
    s[1] = bar("AAPL", "1m", "2024-03-08T15:28:00Z", "100", "100.5", "99.9", "100.2", "1000.5"); /* 10:28 */
    s[2] = bar("AAPL", "1m", "2024-03-08T15:29:00Z", "100.2", "101", "100.1", "100.8", "200.25"); /* 10:29 */
    s[3] = bar("AAPL", "1m", "2024-03-08T15:30:00Z", "100.8", "100.9", "100", "100.05", "300"); /* 10:30 */
    s[4] = bar("AAPL", "1m", "2024-03-08T15:31:00Z", "100.05", "100.06", "99.5", "99.6", "0.00000001"); /* 10:31 */
    s[5] = bar("AAPL", "1m", "2024-03-08T20:58:00Z", "101", "101.5", "100.9", "101.4", "1234.56789"); /* 15:58 */
    s[6] = bar("AAPL", "1m", "2024-03-08T20:59:00Z", "101.4", "102", "101.3", "101.9", "10"); /* 15:59 */
}

/* Push the series one bar at a time; emitted[i] = bars out of push i. */
static size_t run(qb_md_resampler_t *rs, const qb_bar_t *in, size_t n, size_t *emitted,
                  qb_bar_t *out) {
    size_t total = 0, k;
    for (size_t i = 0; i < n; i++) {
        OK(qb_md_resampler_push(rs, &in[i], &out[total], &k, E, sizeof E));
        emitted[i] = k;
        total += k;
    }
    qb_md_resampler_flush(rs, &out[total], &k);
    emitted[n] = k;
    return total + k;
}

static void test_nyse_1h(void **state) {
    qb_bar_t s[NSERIES], out[16];
    size_t em[NSERIES + 1];
    series(s);
    qb_md_resampler_t *rs = NULL;
    OK(qb_md_resampler_new(nyse(), "AAPL", "1m", "1h", 0, &rs, E, sizeof E));
    assert_int_equal(run(rs, s, NSERIES, em, out), 3);
    /* 09:30-10:30: completed by the 10:29 bar itself (it ends at 10:30). */
    size_t want_em[NSERIES + 1] = {0, 0, 1, 0, 0, 1, 1, 0};
    assert_memory_equal(em, want_em, sizeof em);
    expect(&out[0], "AAPL", "1h", "2024-03-08T14:30:00Z", "99", "101", "98.5", "100.8", "1700.75");
    expect(&out[1], "AAPL", "1h", "2024-03-08T15:30:00Z", "100.8", "100.9", "99.5", "99.6",
           "300.00000001");
    /* 15:30-16:00, truncated by the close, completed by the 15:59 bar. */
    expect(&out[2], "AAPL", "1h", "2024-03-08T20:30:00Z", "101", "102", "100.9", "101.9",
           "1244.56789");
    assert_int_equal(qb_md_resampler_skipped(rs), 0);
    qb_md_resampler_destroy(rs);

    /* The batch helper gives the same bars. */
    qb_bar_t bout[NSERIES];
    size_t n = 0;
    OK(qb_md_resample(nyse(), "1m", "1h", 0, s, NSERIES, bout, NSERIES, &n, E, sizeof E));
    assert_int_equal(n, 3);
    assert_memory_equal(bout, out, 3 * sizeof out[0]);
    /* 2h buckets: 09:30-11:30 and 15:30-16:00. */
    OK(qb_md_resample(nyse(), "1m", "2h", 0, s, NSERIES, bout, NSERIES, &n, E, sizeof E));
    assert_int_equal(n, 2);
    expect(&bout[0], "AAPL", "2h", "2024-03-08T14:30:00Z", "99", "101", "98.5", "99.6",
           "2000.75000001");
    expect(&bout[1], "AAPL", "2h", "2024-03-08T20:30:00Z", "101", "102", "100.9", "101.9",
           "1244.56789");
}

static void test_nyse_5m_and_1d(void **state) {
    qb_bar_t s[NSERIES], out[16];
    size_t em[NSERIES + 1];
    series(s);
    qb_md_resampler_t *rs = NULL;
    OK(qb_md_resampler_new(nyse(), "AAPL", "1m", "5m", 0, &rs, E, sizeof E));
    assert_int_equal(run(rs, s, NSERIES, em, out), 4);
    size_t want5[NSERIES + 1] = {0, 1, 1, 0, 0, 1, 1, 0};
    assert_memory_equal(em, want5, sizeof em);
    expect(&out[0], "AAPL", "5m", "2024-03-08T14:30:00Z", "99", "99.5", "98.5", "99.2", "500");
    expect(&out[1], "AAPL", "5m", "2024-03-08T15:25:00Z", "100", "101", "99.9", "100.8", "1200.75");
    expect(&out[2], "AAPL", "5m", "2024-03-08T15:30:00Z", "100.8", "100.9", "99.5", "99.6",
           "300.00000001");
    expect(&out[3], "AAPL", "5m", "2024-03-08T20:55:00Z", "101", "102", "100.9", "101.9",
           "1244.56789");
    qb_md_resampler_destroy(rs);

    /* 1d: the whole session, stamped 00:00 UTC of the session date,
     * completed by the last minute of the session. */
    OK(qb_md_resampler_new(nyse(), "AAPL", "1m", "1d", 0, &rs, E, sizeof E));
    assert_int_equal(run(rs, s, NSERIES, em, out), 1);
    assert_int_equal(em[NSERIES - 1], 1);
    expect(&out[0], "AAPL", "1d", "2024-03-08T00:00:00Z", "99", "102", "98.5", "101.9",
           "3245.31789001");
    qb_md_resampler_destroy(rs);
}

/* One push can complete two bars: a pending bucket is closed by a later
 * bar that also finishes its own bucket. */
static void test_two_outputs(void **state) {
    qb_md_resampler_t *rs = NULL;
    qb_bar_t out[QB_MD_RESAMPLE_MAX_OUT];
    size_t k;
    OK(qb_md_resampler_new(nyse(), "AAPL", "1m", "5m", 0, &rs, E, sizeof E));
    qb_bar_t a = bar("AAPL", "1m", "2024-03-08T15:28:00Z", "10", "11", "9", "10.5", "1");
    qb_bar_t b = bar("AAPL", "1m", "2024-03-08T15:34:00Z", "12", "13", "12", "12.5", "2");
    OK(qb_md_resampler_push(rs, &a, out, &k, E, sizeof E));
    assert_int_equal(k, 0);
    OK(qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_int_equal(k, 2);
    expect(&out[0], "AAPL", "5m", "2024-03-08T15:25:00Z", "10", "11", "9", "10.5", "1");
    expect(&out[1], "AAPL", "5m", "2024-03-08T15:30:00Z", "12", "13", "12", "12.5", "2");
    qb_md_resampler_flush(rs, out, &k);
    assert_int_equal(k, 0);
    qb_md_resampler_destroy(rs);
}

/* Pre-market, after-hours and weekend bars are skipped (counted), or
 * refused in strict mode; the next session and an early close. */
static void test_sessions(void **state) {
    qb_bar_t in[] = {
        bar("SPY", "1m", "2024-03-08T13:00:00Z", "5", "5", "5", "5", "7"),     /* 08:00 pre-market */
        bar("SPY", "1m", "2024-03-08T20:59:00Z", "10", "11", "9", "10", "1"),  /* 15:59 */
        bar("SPY", "1m", "2024-03-08T21:00:00Z", "50", "50", "50", "50", "9"), /* 16:00 after-hours */
        bar("SPY", "1m", "2024-03-09T15:00:00Z", "50", "50", "50", "50", "9"), /* Saturday */
        /* Monday 2024-03-11 after the DST switch: open 09:30 EDT = 13:30Z. */
        bar("SPY", "1m", "2024-03-11T13:30:00Z", "20", "21", "19", "20.5", "2"),
        bar("SPY", "1m", "2024-03-11T14:29:00Z", "20.5", "22", "20", "21", "3"),
        bar("SPY", "1m", "2024-03-11T14:30:00Z", "21", "21", "21", "21", "4"),
        /* Friday 2024-11-29, early close 13:00 EST = 18:00Z. */
        bar("SPY", "1m", "2024-11-29T17:30:00Z", "30", "31", "29", "30", "5"),
        bar("SPY", "1m", "2024-11-29T17:59:00Z", "30", "32", "30", "31", "6"),
    };
    size_t n = sizeof in / sizeof in[0];
    qb_md_resampler_t *rs = NULL;
    qb_bar_t out[16];
    size_t em[16];
    OK(qb_md_resampler_new(nyse(), "SPY", "1m", "1h", 0, &rs, E, sizeof E));
    assert_int_equal(run(rs, in, n, em, out), 4);
    assert_int_equal(qb_md_resampler_skipped(rs), 3);
    expect(&out[0], "SPY", "1h", "2024-03-08T20:30:00Z", "10", "11", "9", "10", "1");
    expect(&out[1], "SPY", "1h", "2024-03-11T13:30:00Z", "20", "22", "19", "21", "5");
    expect(&out[2], "SPY", "1h", "2024-03-11T14:30:00Z", "21", "21", "21", "21", "4");
    /* 12:30-13:00, the truncated last hour of the early close. */
    expect(&out[3], "SPY", "1h", "2024-11-29T17:30:00Z", "30", "32", "29", "31", "11");
    qb_md_resampler_destroy(rs);

    size_t nout = 0;
    OK(qb_md_resample(nyse(), "1m", "1d", 0, in, n, out, 16, &nout, E, sizeof E));
    assert_int_equal(nout, 3);
    expect(&out[0], "SPY", "1d", "2024-03-08T00:00:00Z", "10", "11", "9", "10", "1");
    expect(&out[1], "SPY", "1d", "2024-03-11T00:00:00Z", "20", "22", "19", "21", "9");
    expect(&out[2], "SPY", "1d", "2024-11-29T00:00:00Z", "30", "32", "29", "31", "11");

    ERR(QB_ERR_INVALID, qb_md_resample(nyse(), "1m", "1d", QB_MD_RESAMPLE_STRICT, in, n, out,
                                       16, &nout, E, sizeof E));
    assert_non_null(strstr(E, "input bar 0"));
    assert_non_null(strstr(E, "outside the XNYS sessions"));
}

static void test_crypto_day_boundaries(void **state) {
    const qb_cal_t *c = NULL;
    OK(qb_cal_get("24x7", &c, E, sizeof E));
    qb_bar_t in[] = {
        bar("BTC-USD", "1m", "2024-12-31T23:58:00Z", "93000", "93100.5", "92900", "93050", "1.25"),
        bar("BTC-USD", "1m", "2024-12-31T23:59:00Z", "93050", "93200", "93000", "93150.25", "0.5"),
        bar("BTC-USD", "1m", "2025-01-01T00:00:00Z", "93150.25", "93160", "92800", "92900", "2.00000001"),
        bar("BTC-USD", "1m", "2025-01-01T00:01:00Z", "92900", "93000", "92850", "92990", "3"),
    };
    size_t em[8];
    qb_bar_t out[8];
    qb_md_resampler_t *rs = NULL;
    OK(qb_md_resampler_new(c, "BTC-USD", "1m", "1d", 0, &rs, E, sizeof E));
    assert_int_equal(run(rs, in, 4, em, out), 2);
    size_t want[5] = {0, 1, 0, 0, 1}; /* 23:59 closes the UTC day; flush the last */
    assert_memory_equal(em, want, sizeof want);
    expect(&out[0], "BTC-USD", "1d", "2024-12-31T00:00:00Z", "93000", "93200", "92900",
           "93150.25", "1.75");
    expect(&out[1], "BTC-USD", "1d", "2025-01-01T00:00:00Z", "93150.25", "93160", "92800",
           "92990", "5.00000001");
    qb_md_resampler_destroy(rs);

    /* 4h and 1h: plain UTC multiples; no calendar behaves the same. */
    size_t n = 0;
    OK(qb_md_resample(c, "1m", "4h", 0, in, 4, out, 8, &n, E, sizeof E));
    assert_int_equal(n, 2);
    expect(&out[0], "BTC-USD", "4h", "2024-12-31T20:00:00Z", "93000", "93200", "92900",
           "93150.25", "1.75");
    expect(&out[1], "BTC-USD", "4h", "2025-01-01T00:00:00Z", "93150.25", "93160", "92800",
           "92990", "5.00000001");
    qb_bar_t out2[8];
    OK(qb_md_resample(NULL, "1m", "4h", 0, in, 4, out2, 8, &n, E, sizeof E));
    assert_int_equal(n, 2);
    assert_memory_equal(out, out2, 2 * sizeof out[0]);
    /* A 24x7 Sunday during the NYSE DST switch is an ordinary day. */
    qb_bar_t sun[] = {
        bar("ETH-USD", "5m", "2024-03-10T06:55:00Z", "3900", "3910", "3890", "3905", "1"),
        bar("ETH-USD", "5m", "2024-03-10T07:00:00Z", "3905", "3920", "3900", "3915", "2"),
    };
    OK(qb_md_resample(c, "5m", "1h", 0, sun, 2, out, 8, &n, E, sizeof E));
    assert_int_equal(n, 2);
    expect(&out[0], "ETH-USD", "1h", "2024-03-10T06:00:00Z", "3900", "3910", "3890", "3905", "1");
    expect(&out[1], "ETH-USD", "1h", "2024-03-10T07:00:00Z", "3905", "3920", "3900", "3915", "2");
}

static void test_errors(void **state) {
    qb_md_resampler_t *rs = NULL;
    qb_bar_t out[QB_MD_RESAMPLE_MAX_OUT];
    size_t k = 99;
    OK(qb_md_resampler_new(nyse(), "AAPL", "1m", "1h", 0, &rs, E, sizeof E));
    qb_bar_t a = bar("AAPL", "1m", "2024-03-08T14:30:00Z", "10", "11", "9", "10", "1");
    OK(qb_md_resampler_push(rs, &a, out, &k, E, sizeof E));
    assert_int_equal(k, 0);

    qb_bar_t b = bar("MSFT", "1m", "2024-03-08T14:31:00Z", "10", "99", "1", "10", "1");
    ERR(QB_ERR_INVALID, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_non_null(strstr(E, "another symbol MSFT"));
    b = bar("AAPL", "5m", "2024-03-08T14:35:00Z", "10", "99", "1", "10", "1");
    ERR(QB_ERR_INVALID, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_non_null(strstr(E, "timeframe 5m, expected 1m"));
    b = bar("AAPL", "1m", "2024-03-08T14:30:00Z", "10", "99", "1", "10", "1");
    ERR(QB_ERR_INVALID, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_non_null(strstr(E, "duplicate"));
    b = bar("AAPL", "1m", "2024-03-08T14:29:00Z", "10", "99", "1", "10", "1");
    ERR(QB_ERR_INVALID, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_non_null(strstr(E, "out of order"));
    b = bar("AAPL", "1m", "2024-03-08T14:31:30Z", "10", "99", "1", "10", "1");
    ERR(QB_ERR_INVALID, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_non_null(strstr(E, "off the 1m grid"));
    assert_int_equal(k, 0);
    b = bar("AAPL", "1m", "2024-03-08T14:31:00Z", "10", "99", "1", "10", "0");
    b.volume = QB_DEC_MAX;
    ERR(QB_ERR_OVERFLOW, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    b = bar("AAPL", "1m", "2024-03-08T14:31:00Z", "10", "99", "1", "10", "1");
    b.ts = INT64_MAX - 1;
    ERR(QB_ERR_RANGE, qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));

    /* None of that touched the pending bar. */
    b = bar("AAPL", "1m", "2024-03-08T15:29:00Z", "10", "12", "10", "11.5", "2.5");
    OK(qb_md_resampler_push(rs, &b, out, &k, E, sizeof E));
    assert_int_equal(k, 1);
    expect(&out[0], "AAPL", "1h", "2024-03-08T14:30:00Z", "10", "12", "9", "11.5", "3.5");
    qb_md_resampler_destroy(rs);
    qb_md_resampler_destroy(NULL);

    /* Bad construction. */
    static const struct { const char *in, *out; qb_err_t err; } bad[] = {
        {"1m", "1w", QB_ERR_PARSE},  {"1m", "0m", QB_ERR_PARSE},   {"1m", "m", QB_ERR_PARSE},
        {"1m", "25h", QB_ERR_PARSE}, {"1m", "2d", QB_ERR_PARSE},   {"1x", "1h", QB_ERR_PARSE},
        {"1m", "1m", QB_ERR_INVALID}, {"5m", "1m", QB_ERR_INVALID}, {"7m", "1h", QB_ERR_INVALID},
        {"1d", "1d", QB_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs = NULL;
        qb_err_t err = qb_md_resampler_new(nyse(), "AAPL", bad[i].in, bad[i].out, 0, &rs, E,
                                           sizeof E);
        if (err != bad[i].err)
            fail_msg("%s -> %s: %s, want %s", bad[i].in, bad[i].out, qb_err_name(err),
                     qb_err_name(bad[i].err));
        assert_null(rs);
    }
    ERR(QB_ERR_INVALID, qb_md_resampler_new(nyse(), "bad symbol", "1m", "1h", 0, &rs, E,
                                            sizeof E));
    /* 7m -> 1d is fine with sessions (each 7m bar is inside one session)
     * but not for plain UTC days (1440 is not a multiple of 7). */
    OK(qb_md_resampler_new(nyse(), "AAPL", "7m", "1d", 0, &rs, E, sizeof E));
    qb_md_resampler_destroy(rs);
    ERR(QB_ERR_INVALID, qb_md_resampler_new(NULL, "AAPL", "7m", "1d", 0, &rs, E, sizeof E));
    /* 30m -> 1h: buckets start at the session open, so the 10:00 and
     * 10:30 bars belong to different hours. */
    OK(qb_md_resampler_new(nyse(), "AAPL", "30m", "1h", 0, &rs, E, sizeof E));
    qb_md_resampler_destroy(rs);

    /* Batch: the error names the input index; too small an output. */
    qb_bar_t in[3], o[3];
    in[0] = bar("AAPL", "1m", "2024-03-08T14:30:00Z", "10", "11", "9", "10", "1");
    in[1] = bar("AAPL", "1m", "2024-03-08T15:30:00Z", "10", "11", "9", "10", "1");
    in[2] = bar("AAPL", "1m", "2024-03-08T15:00:00Z", "10", "11", "9", "10", "1");
    size_t n = 0;
    ERR(QB_ERR_INVALID, qb_md_resample(nyse(), "1m", "5m", 0, in, 3, o, 3, &n, E, sizeof E));
    assert_non_null(strstr(E, "input bar 2"));
    ERR(QB_ERR_RANGE, qb_md_resample(nyse(), "1m", "5m", 0, in, 2, o, 1, &n, E, sizeof E));
    OK(qb_md_resample(nyse(), "1m", "5m", 0, in, 0, o, 0, &n, E, sizeof E));
    assert_int_equal(n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nyse_1h),
        cmocka_unit_test(test_nyse_5m_and_1d),
        cmocka_unit_test(test_two_outputs),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_crypto_day_boundaries),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
