/* test_md_adjust.c — qb_md_adjust against values computed by hand (the
 * arithmetic is written next to each expectation), the split-ratio parsers,
 * and the corporate-actions CSV reader.
 *
 * Conventions under test (qb_md_adjust.h): bars before an ex-date (open
 * time < ex-date 00:00 UTC) are adjusted, bars on/after it are not; SPLIT
 * divides prices by the product of later split ratios (new/old) and
 * multiplies volume by it; TOTAL also multiplies prices by
 * f = (C - D) / C per later dividend (C = raw close before the ex-date);
 * every value is the exact result rounded once, half-even, to 1e-8. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_actions_csv.h"
#include "md/qb_md_adjust.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[512];

static qb_time_t T(const char *day) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(day, strlen(day), &t), QB_OK);
    return t;
}

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    assert_int_equal(qb_dec_parse(s, strlen(s), &v), QB_OK);
    return v;
}

static qb_bar_t bar(const char *day, const char *o, const char *h, const char *l, const char *c,
                    const char *v) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(qb_symbol_set(&b.symbol, "TEST", NULL, 0), QB_OK);
    snprintf(b.timeframe, sizeof b.timeframe, "1d");
    b.ts = T(day);
    b.open = D(o);
    b.high = D(h);
    b.low = D(l);
    b.close = D(c);
    b.volume = D(v);
    return b;
}

static qb_md_action_t split(const char *day, int64_t num, int64_t den) {
    qb_md_action_t a;
    memset(&a, 0, sizeof a);
    a.ex_date = T(day);
    a.kind = QB_MD_ACTION_SPLIT;
    a.num = num;
    a.den = den;
    return a;
}

static qb_md_action_t dividend(const char *day, const char *amount) {
    qb_md_action_t a;
    memset(&a, 0, sizeof a);
    a.ex_date = T(day);
    a.kind = QB_MD_ACTION_DIVIDEND;
    a.amount = D(amount);
    return a;
}

/* got must be exactly o/h/l/c/v (decimal text) at its own ts. */
static void expect(const qb_bar_t *got, const char *day, const char *o, const char *h,
                   const char *l, const char *c, const char *v) {
    qb_dec_t gv[5] = {got->open, got->high, got->low, got->close, got->volume};
    qb_dec_t wv[5] = {D(o), D(h), D(l), D(c), D(v)};
    char g[5][QB_DEC_STRLEN];
    for (int i = 0; i < 5; i++) qb_dec_format(gv[i], g[i], sizeof g[i]);
    if (got->ts != T(day) || memcmp(gv, wv, sizeof gv) != 0 || strcmp(got->symbol.s, "TEST") ||
        strcmp(got->timeframe, "1d"))
        fail_msg("%s: got O %s H %s L %s C %s V %s, want O %s H %s L %s C %s V %s", day, g[0],
                 g[1], g[2], g[3], g[4], o, h, l, c, v);
}

static void expect_same(const qb_bar_t *got, const qb_bar_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof got[i]) != 0) fail_msg("bar %zu changed", i);
}

/* ---- splits ---------------------------------------------------------------- */

static void bars_2to1(qb_bar_t *b) {
    b[0] = bar("2024-01-02", "100", "104", "98", "102", "1000");
    b[1] = bar("2024-01-03", "102", "106", "101", "105", "1201");
    /* ex-date 2024-01-04: price halves */
    b[2] = bar("2024-01-04", "52.5", "53", "51.25", "52", "2500");
    b[3] = bar("2024-01-05", "52", "54", "51.75", "53.5", "2200");
}

static void test_split_2for1(void **state) {
    qb_bar_t b[4], o[4];
    bars_2to1(b);
    qb_md_action_t a = split("2024-01-04", 2, 1);
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    /* before the ex-date: prices / 2, volume * 2 */
    expect(&o[0], "2024-01-02", "50", "52", "49", "51", "2000");     /* 100/2 104/2 98/2 102/2; 1000*2 */
    expect(&o[1], "2024-01-03", "51", "53", "50.5", "52.5", "2402"); /* 102/2 106/2 101/2 105/2; 1201*2 */
    /* on and after: unchanged (the latest bar is the anchor) */
    expect(&o[2], "2024-01-04", "52.5", "53", "51.25", "52", "2500");
    expect(&o[3], "2024-01-05", "52", "54", "51.75", "53.5", "2200");
    assert_int_equal(st.splits_applied, 1);
    assert_int_equal(st.outside, 0);

    /* TOTAL with no dividend is the same; RAW is the input */
    qb_bar_t t[4];
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_TOTAL, t, NULL, E, sizeof E));
    expect_same(t, o, 4);
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_RAW, t, &st, E, sizeof E));
    expect_same(t, b, 4);
    assert_int_equal(st.splits_applied, 0);

    /* in place */
    qb_bar_t ip[4];
    memcpy(ip, b, sizeof ip);
    OK(qb_md_adjust(ip, 4, &a, 1, QB_MD_ADJ_SPLIT, ip, NULL, E, sizeof E));
    expect_same(ip, o, 4);
}

/* 3-for-2 on 01-03, then a 1-for-10 reverse split on 01-05. */
static void bars_3to2_1to10(qb_bar_t *b) {
    b[0] = bar("2024-01-02", "30", "30.5", "29.5", "30.01", "1001");
    b[1] = bar("2024-01-03", "20", "21", "19.5", "20.5", "1500"); /* after 3:2 */
    b[2] = bar("2024-01-04", "20.5", "21", "20", "20.75", "1505");
    b[3] = bar("2024-01-05", "207", "210", "205", "205", "150"); /* after 1:10 */
    b[4] = bar("2024-01-08", "205", "212", "204", "210", "160");
}

static void expect_3to2_1to10(const qb_bar_t *o) {
    /* 01-02 is before both: cumulative ratio 3/2 * 1/10 = 3/20 = 0.15;
     * price / (3/20) = price * 20/3, volume * 3/20.
     *   30    * 20/3 = 200
     *   30.5  * 20/3 = 610/3 = 203.3333333333.. -> 203.33333333
     *   29.5  * 20/3 = 590/3 = 196.6666666666.. -> 196.66666667
     *   30.01 * 20/3 = 600.2/3 = 200.0666666666.. -> 200.06666667
     *   1001  * 3/20 = 150.15 (exact) */
    expect(&o[0], "2024-01-02", "200", "203.33333333", "196.66666667", "200.06666667", "150.15");
    /* 01-03 and 01-04 are before the 1:10 only: price * 10, volume / 10 */
    expect(&o[1], "2024-01-03", "200", "210", "195", "205", "150");
    expect(&o[2], "2024-01-04", "205", "210", "200", "207.5", "150.5");
    expect(&o[3], "2024-01-05", "207", "210", "205", "205", "150");
    expect(&o[4], "2024-01-08", "205", "212", "204", "210", "160");
}

static void test_split_3for2_then_reverse(void **state) {
    qb_bar_t b[5], o[5];
    bars_3to2_1to10(b);
    qb_md_action_t a[2] = {split("2024-01-03", 3, 2), split("2024-01-05", 1, 10)};
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 5, a, 2, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    expect_3to2_1to10(o);
    assert_int_equal(st.splits_applied, 2);
}

static void test_unsorted_actions(void **state) {
    qb_bar_t b[5], o[5];
    bars_3to2_1to10(b);
    qb_md_action_t a[2] = {split("2024-01-05", 1, 10), split("2024-01-03", 3, 2)};
    qb_md_action_t keep[2];
    memcpy(keep, a, sizeof a);
    OK(qb_md_adjust(b, 5, a, 2, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    expect_3to2_1to10(o);
    assert_memory_equal(a, keep, sizeof a); /* the caller's array is not sorted in place */
}

static void test_reverse_1for3_inexact(void **state) {
    /* 1-for-3: ratio 1/3, so price before * 3 exactly and volume / 3:
     *   100 / 3 = 33.333333333.. -> 33.33333333; 101 / 3 = 33.6666666.. -> 33.66666667 */
    qb_bar_t b[2] = {bar("2024-01-02", "1", "1.1", "0.95", "1.05", "100"),
                     bar("2024-01-03", "3.1", "3.2", "3", "3.15", "40")};
    qb_bar_t o[2];
    qb_md_action_t a = split("2024-01-03", 1, 3);
    OK(qb_md_adjust(b, 2, &a, 1, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    expect(&o[0], "2024-01-02", "3", "3.3", "2.85", "3.15", "33.33333333");
    b[0].volume = D("101");
    OK(qb_md_adjust(b, 2, &a, 1, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    expect(&o[0], "2024-01-02", "3", "3.3", "2.85", "3.15", "33.66666667");
}

static void test_rounding_half_even(void **state) {
    /* 2:1 of 0.00000001 is 0.000000005, a tie -> 0 (even); of 0.00000003
     * it is 0.000000015 -> 0.00000002 (even); volume 0.00000001 * 2 exact. */
    qb_bar_t b[2] = {bar("2024-01-02", "0.00000003", "0.00000003", "0.00000001", "0.00000001", "0.00000001"),
                     bar("2024-01-03", "1", "1", "1", "1", "1")};
    qb_bar_t o[2];
    qb_md_action_t a = split("2024-01-03", 2, 1);
    OK(qb_md_adjust(b, 2, &a, 1, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    expect(&o[0], "2024-01-02", "0.00000002", "0.00000002", "0", "0", "0.00000002");
}

/* ---- dividends -------------------------------------------------------------- */

static void test_dividend_factor(void **state) {
    qb_bar_t b[4] = {bar("2024-01-02", "48", "49.5", "47.5", "49", "1000"),
                     bar("2024-01-03", "49", "50.5", "48.75", "50", "1100"),
                     /* ex-date 01-04: $0.50 on the previous close $50 */
                     bar("2024-01-04", "49.5", "50", "49.25", "49.75", "900"),
                     bar("2024-01-05", "49.75", "50.5", "49.5", "50.25", "950")};
    qb_bar_t o[4];
    qb_md_action_t a = dividend("2024-01-04", "0.5");
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    /* f = 1 - 0.50/50 = 0.99 for every bar before 01-04; volume unchanged
     *   48*.99 = 47.52   49.5*.99 = 49.005   47.5*.99 = 47.025   49*.99 = 48.51
     *   49*.99 = 48.51   50.5*.99 = 49.995   48.75*.99 = 48.2625 50*.99 = 49.5 */
    expect(&o[0], "2024-01-02", "47.52", "49.005", "47.025", "48.51", "1000");
    expect(&o[1], "2024-01-03", "48.51", "49.995", "48.2625", "49.5", "1100");
    expect(&o[2], "2024-01-04", "49.5", "50", "49.25", "49.75", "900");
    expect(&o[3], "2024-01-05", "49.75", "50.5", "49.5", "50.25", "950");
    assert_int_equal(st.dividends_applied, 1);
    assert_int_equal(st.div_no_prev_close, 0);
    /* SPLIT ignores dividends entirely (not even counted) */
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.dividends_applied + st.outside + st.div_no_prev_close, 0);
}

static void test_dividend_inexact_factor(void **state) {
    /* $0.24 on a previous close of $36.36: f = 36.12/36.36 = 0.99339933..
     * 36 * 36.12 / 36.36 = 1300.32 / 36.36 = 35.762376237.. -> 35.76237624
     * 36.36 * f = 36.12 exactly (the previous close lands on close - D) */
    qb_bar_t b[2] = {bar("2024-01-02", "36", "36.36", "36", "36.36", "10"),
                     bar("2024-01-03", "36.12", "36.2", "36", "36.1", "10")};
    qb_bar_t o[2];
    qb_md_action_t a = dividend("2024-01-03", "0.24");
    OK(qb_md_adjust(b, 2, &a, 1, QB_MD_ADJ_TOTAL, o, NULL, E, sizeof E));
    expect(&o[0], "2024-01-02", "35.76237624", "36.12", "35.76237624", "36.12", "10");
}

static void test_split_and_dividends_combined(void **state) {
    qb_bar_t b[4] = {bar("2024-01-02", "100", "100", "100", "100", "10"),
                     /* ex 01-03: dividend 0.50 on close 100 -> f1 = 0.995 */
                     bar("2024-01-03", "101", "101", "101", "101", "10"),
                     /* ex 01-04: split 2:1 */
                     bar("2024-01-04", "51", "51", "51", "51", "20"),
                     /* ex 01-05: dividend 0.51 on close 51 -> f2 = 1 - 0.51/51 = 0.99 */
                     bar("2024-01-05", "50.5", "50.5", "50.5", "50.5", "20")};
    qb_bar_t o[4];
    qb_md_action_t a[3] = {dividend("2024-01-05", "0.51"), split("2024-01-04", 2, 1),
                           dividend("2024-01-03", "0.5")};
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 4, a, 3, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    /* 01-02: 100 * 0.995 * 0.99 / 2 = 49.2525; volume 10 * 2 = 20
     * 01-03: 101 * 0.99 / 2 = 49.995;           volume 20
     * 01-04: 51 * 0.99 = 50.49;                 volume 20 */
    expect(&o[0], "2024-01-02", "49.2525", "49.2525", "49.2525", "49.2525", "20");
    expect(&o[1], "2024-01-03", "49.995", "49.995", "49.995", "49.995", "20");
    expect(&o[2], "2024-01-04", "50.49", "50.49", "50.49", "50.49", "20");
    expect(&o[3], "2024-01-05", "50.5", "50.5", "50.5", "50.5", "20");
    assert_int_equal(st.splits_applied, 1);
    assert_int_equal(st.dividends_applied, 2);
    /* split-only view of the same data: 01-02 100/2 = 50, 01-03 101/2 = 50.5 */
    OK(qb_md_adjust(b, 4, a, 3, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    expect(&o[0], "2024-01-02", "50", "50", "50", "50", "20");
    expect(&o[1], "2024-01-03", "50.5", "50.5", "50.5", "50.5", "20");
    expect(&o[2], "2024-01-04", "51", "51", "51", "51", "20");
    assert_int_equal(st.splits_applied, 1);
    assert_int_equal(st.dividends_applied, 0);
}

/* ---- edges -------------------------------------------------------------------- */

static void test_split_on_first_and_last_bar(void **state) {
    qb_bar_t b[4], o[4];
    bars_2to1(b);
    qb_md_adjust_stats_t st;
    /* on the first bar: nothing before it, nothing changes */
    qb_md_action_t a = split("2024-01-02", 2, 1);
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.outside, 1);
    assert_int_equal(st.splits_applied, 0);
    /* on the last bar: every other bar halves; the last is the anchor */
    a = split("2024-01-05", 2, 1);
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_SPLIT, o, &st, E, sizeof E));
    expect(&o[0], "2024-01-02", "50", "52", "49", "51", "2000");
    expect(&o[1], "2024-01-03", "51", "53", "50.5", "52.5", "2402");
    expect(&o[2], "2024-01-04", "26.25", "26.5", "25.625", "26", "5000");
    expect(&o[3], "2024-01-05", "52", "54", "51.75", "53.5", "2200");
    assert_int_equal(st.splits_applied, 1);
}

static void test_actions_outside_range(void **state) {
    qb_bar_t b[4], o[4];
    bars_2to1(b);
    qb_md_action_t a[4] = {split("2023-12-01", 2, 1), dividend("2023-12-29", "1"),
                           split("2024-01-08", 3, 1), dividend("2024-02-01", "1")};
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 4, a, 4, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.outside, 4);
    assert_int_equal(st.div_no_prev_close, 0);
    /* no bars at all: everything is outside */
    OK(qb_md_adjust(NULL, 0, a, 4, QB_MD_ADJ_TOTAL, NULL, &st, E, sizeof E));
    assert_int_equal(st.outside, 4);
}

static void test_dividend_without_previous_close(void **state) {
    qb_bar_t b[4], o[4];
    bars_2to1(b);
    qb_md_action_t a = dividend("2024-01-02", "0.5"); /* the first bar's day */
    qb_md_adjust_stats_t st;
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.div_no_prev_close, 1);
    assert_int_equal(st.dividends_applied, 0);
    /* an amount >= the previous close (102) would make f <= 0: skipped */
    a = dividend("2024-01-03", "102");
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.div_too_large, 1);
    /* a zero dividend is a factor of 1 */
    a = dividend("2024-01-03", "0");
    OK(qb_md_adjust(b, 4, &a, 1, QB_MD_ADJ_TOTAL, o, &st, E, sizeof E));
    expect_same(o, b, 4);
    assert_int_equal(st.dividends_applied, 1);
}

static void test_errors(void **state) {
    qb_bar_t b[4], o[4];
    bars_2to1(b);
    qb_md_action_t dup[3] = {split("2024-01-04", 2, 1), dividend("2024-01-04", "0.1"),
                             split("2024-01-04", 3, 1)};
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, dup, 3, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    assert_non_null(strstr(E, "duplicate split on 2024-01-04"));
    /* duplicates are errors in every mode, RAW too */
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, dup, 3, QB_MD_ADJ_RAW, o, NULL, E, sizeof E));
    /* a split and a dividend on the same day are fine */
    OK(qb_md_adjust(b, 4, dup, 2, QB_MD_ADJ_TOTAL, o, NULL, E, sizeof E));

    qb_md_action_t bad = split("2024-01-04", 0, 1);
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, &bad, 1, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    bad = dividend("2024-01-04", "1");
    bad.amount = -1;
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, &bad, 1, QB_MD_ADJ_TOTAL, o, NULL, E, sizeof E));
    bad.kind = (qb_md_action_kind_t)7;
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, &bad, 1, QB_MD_ADJ_TOTAL, o, NULL, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_md_adjust(b, 4, NULL, 0, (qb_md_adjust_mode_t)9, o, NULL, E, sizeof E));

    qb_bar_t unsorted[4];
    memcpy(unsorted, b, sizeof b);
    unsorted[2].ts = unsorted[1].ts;
    ERR(QB_ERR_INVALID, qb_md_adjust(unsorted, 4, NULL, 0, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));

    /* ratio products are bounded: 1e9:1 twice is 1e18 */
    qb_md_action_t big[2] = {split("2024-01-03", QB_MD_SPLIT_MAX, 1), split("2024-01-04", QB_MD_SPLIT_MAX, 1)};
    ERR(QB_ERR_OVERFLOW, qb_md_adjust(b, 4, big, 2, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
    /* a volume that no longer fits in qb_dec_t */
    qb_md_action_t one = split("2024-01-04", QB_MD_SPLIT_MAX, 1);
    ERR(QB_ERR_OVERFLOW, qb_md_adjust(b, 4, &one, 1, QB_MD_ADJ_SPLIT, o, NULL, E, sizeof E));
}

/* ---- parsers ---------------------------------------------------------------- */

static void want_split(const char *s, int64_t n, int64_t d) {
    int64_t gn = 0, gd = 0;
    OK(qb_md_split_parse(s, &gn, &gd, E, sizeof E));
    if (gn != n || gd != d) fail_msg("'%s' -> %lld/%lld, want %lld/%lld", s, (long long)gn, (long long)gd,
                                     (long long)n, (long long)d);
}

static void want_decimal(const char *s, int64_t n, int64_t d) {
    int64_t gn = 0, gd = 0;
    OK(qb_md_split_from_decimal(s, &gn, &gd, E, sizeof E));
    if (gn != n || gd != d) fail_msg("'%s' -> %lld/%lld, want %lld/%lld", s, (long long)gn, (long long)gd,
                                     (long long)n, (long long)d);
}

static void test_split_parse(void **state) {
    int64_t n, d;
    want_split("2:1", 2, 1);
    want_split("3:2", 3, 2);
    want_split("1:10", 1, 10);
    want_split("4:2", 2, 1); /* reduced */
    want_split("3-for-2", 3, 2);
    want_split("3 for 2", 3, 2);
    want_split("1-FOR-10", 1, 10);
    want_split("3/2", 3, 2);
    want_split(" 2 : 1 ", 2, 1);
    want_split("2", 2, 1);
    want_split("1.5", 3, 2);
    want_split("0.1", 1, 10);
    want_split("1.25", 5, 4);
    const char *bad[] = {"", "x", "0:1", "2:0", "2:", ":1", "-2", "0", "2:1:1", "3-for", "for-2", "2-to-1",
                         "1e3", "12345678901:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (qb_md_split_parse(bad[i], &n, &d, E, sizeof E) == QB_OK)
            fail_msg("'%s' accepted as %lld/%lld", bad[i], (long long)n, (long long)d);
    ERR(QB_ERR_RANGE, qb_md_split_parse("2000000000:1", &n, &d, E, sizeof E));

    /* numeric text as PostgreSQL gives it back */
    want_decimal("2", 2, 1);
    want_decimal("1.5000000000000000", 3, 2);
    want_decimal("0.10000000000000000000", 1, 10);
    want_decimal("0.33333333333333333333", 1, 3);
    want_decimal("0.66666666666666666667", 2, 3);
    want_decimal("1.33333333333333333333", 4, 3);
    want_decimal("0.3333333333333", 1, 3);            /* 13 decimals: denominators <= 1e6 */
    want_decimal("0.33333333", 33333333, 100000000); /* 8 decimals: taken as written */
    want_decimal("1.00000000100000000100", 1000000000, 999999999);
    ERR(QB_ERR_RANGE, qb_md_split_from_decimal("3.14159265358979323846", &n, &d, E, sizeof E));
    ERR(QB_ERR_RANGE, qb_md_split_from_decimal("0", &n, &d, E, sizeof E));
    ERR(QB_ERR_RANGE, qb_md_split_from_decimal("0.333333333333333333333", &n, &d, E, sizeof E));
    ERR(QB_ERR_PARSE, qb_md_split_from_decimal("abc", &n, &d, E, sizeof E));
    ERR(QB_ERR_PARSE, qb_md_split_from_decimal(".", &n, &d, E, sizeof E));
    ERR(QB_ERR_PARSE, qb_md_split_from_decimal("-2", &n, &d, E, sizeof E));

    char buf[32];
    assert_int_equal(qb_md_split_format(3, 2, buf, sizeof buf), 3);
    assert_string_equal(buf, "3:2");

    qb_md_adjust_mode_t m;
    OK(qb_md_adjust_mode_parse("Split", &m));
    assert_int_equal(m, QB_MD_ADJ_SPLIT);
    OK(qb_md_adjust_mode_parse("total", &m));
    assert_string_equal(qb_md_adjust_mode_name(m), "total");
    ERR(QB_ERR_PARSE, qb_md_adjust_mode_parse("adjusted", &m));
}

/* ---- CSV ------------------------------------------------------------------- */

typedef struct rej_s {
    char lines[16][700];
    int n;
} rej_t;

static void on_reject(void *opaque, const char *where, const char *reason) {
    rej_t *r = opaque;
    if (r->n < 16) snprintf(r->lines[r->n], sizeof r->lines[0], "%s: %s", where, reason);
    r->n++;
}

static void test_actions_csv(void **state) {
    static const char csv[] =
        "\xEF\xBB\xBF" "date,kind,value\r\n"    /* 1 header */
        "2000-06-27,split,2:1\r\n"            /* 2 */
        "\n"                                  /* 3 */
        "# a comment\n"                       /* 4 */
        "2007-09-11, Split ,\"3-for-2\"\n"    /* 5 */
        "2012-11-20,dividend,0.075\n"         /* 6 */
        "2012-11-20,split,1:10\n"             /* 7: same day, other kind: fine */
        "2001-09-17,split\n"                  /* 8 column_count */
        "2001-02-30,split,2:1\n"              /* 9 bad_time */
        "2001-09-17,merger,2:1\n"             /* 10 bad_kind */
        "2001-09-17,split,2-to-1\n"           /* 11 bad_ratio */
        "2001-09-17,dividend,-0.5\n"          /* 12 bad_amount */
        "2001-09-17,dividend,0.123456789\n"   /* 13 bad_amount */
        "2000-06-27,split,2:1\n"              /* 14 duplicate of 2 */
        "2013-02-26,dividend,.075";           /* 15, no final newline */
    qb_md_action_t *a = NULL;
    int64_t *ln = NULL;
    size_t n = 0, rejected = 0;
    rej_t r;
    memset(&r, 0, sizeof r);
    OK(qb_md_actions_csv_parse("a.csv", csv, sizeof csv - 1, &a, &ln, &n, &rejected, on_reject, &r, E,
                               sizeof E));
    assert_int_equal(n, 5);
    assert_int_equal(rejected, 7);
    assert_int_equal(r.n, 7);
    const int64_t want_lines[5] = {2, 5, 6, 7, 15};
    for (size_t i = 0; i < 5; i++) assert_int_equal(ln[i], want_lines[i]);
    assert_int_equal(a[0].ex_date, T("2000-06-27"));
    assert_int_equal(a[0].kind, QB_MD_ACTION_SPLIT);
    assert_true(a[0].num == 2 && a[0].den == 1);
    assert_true(a[1].kind == QB_MD_ACTION_SPLIT && a[1].num == 3 && a[1].den == 2);
    assert_true(a[2].kind == QB_MD_ACTION_DIVIDEND && a[2].amount == D("0.075"));
    assert_true(a[3].kind == QB_MD_ACTION_SPLIT && a[3].num == 1 && a[3].den == 10);
    assert_true(a[4].kind == QB_MD_ACTION_DIVIDEND && a[4].amount == D("0.075"));
    const char *want[7] = {"a.csv:8: column_count: 2 columns, want 3 (date,kind,value)",
                           "a.csv:9: bad_time: '2001-02-30' is not a date (YYYY-MM-DD)",
                           "a.csv:10: bad_kind: 'merger' (want split or dividend)",
                           "a.csv:11: bad_ratio: split ratio '2-to-1'",
                           "a.csv:12: bad_amount: dividend '-0.5'",
                           "a.csv:13: bad_amount: dividend '0.123456789'",
                           "a.csv:14: duplicate: split on 2000-06-27 already on line 2"};
    for (int i = 0; i < 7; i++)
        if (strncmp(r.lines[i], want[i], strlen(want[i])) != 0)
            fail_msg("reject %d: got '%s', want '%s...'", i, r.lines[i], want[i]);
    free(a);
    free(ln);

    /* no header, nothing else */
    memset(&r, 0, sizeof r);
    OK(qb_md_actions_csv_parse("b.csv", "2024-01-02,dividend,1\n", 22, &a, NULL, &n, NULL, on_reject, &r, E,
                               sizeof E));
    assert_int_equal(n, 1);
    free(a);
    OK(qb_md_actions_csv_parse("c.csv", "", 0, &a, NULL, &n, NULL, NULL, NULL, E, sizeof E));
    assert_int_equal(n, 0);
    assert_null(a);
    ERR(QB_ERR_IO, qb_md_actions_csv_read("/nonexistent/actions.csv", &a, NULL, &n, NULL, NULL, NULL, E,
                                          sizeof E));
    assert_non_null(strstr(E, "/nonexistent/actions.csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_2for1),
        cmocka_unit_test(test_split_3for2_then_reverse),
        cmocka_unit_test(test_unsorted_actions),
        cmocka_unit_test(test_reverse_1for3_inexact),
        cmocka_unit_test(test_rounding_half_even),
        cmocka_unit_test(test_dividend_factor),
        cmocka_unit_test(test_dividend_inexact_factor),
        cmocka_unit_test(test_split_and_dividends_combined),
        cmocka_unit_test(test_split_on_first_and_last_bar),
        cmocka_unit_test(test_actions_outside_range),
        cmocka_unit_test(test_dividend_without_previous_close),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_split_parse),
        cmocka_unit_test(test_actions_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
