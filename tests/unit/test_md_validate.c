/* test_md_validate.c — libs/md/qb_md_validate: every rule rejects its case
 * with its reason code and message (and is counted); a good bar passes; an
 * outlier return is flagged and kept while ordinary noise is not; the state
 * (last timestamp, return window) carries across batches; intraday grid;
 * reason names round-trip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_validate.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[512];

typedef struct rej_s {
    qb_md_reason_t reason[64];
    size_t index[64];
    char msg[64][256];
    size_t n;
} rej_t;

static void on_reject(void *opaque, const qb_bar_t *bar, size_t index, qb_md_reason_t reason,
                      const char *message) {
    rej_t *r = opaque;
    if (r->n < 64) {
        r->reason[r->n] = reason;
        r->index[r->n] = index;
        snprintf(r->msg[r->n], 256, "%s", message);
    }
    r->n++;
}

#define DAY QB_NS_PER_DAY
#define P(x) ((qb_dec_t)((x) * 100000000.0 + ((x) >= 0 ? 0.5 : -0.5)))

static qb_bar_t bar(qb_time_t ts, double o, double h, double l, double c, double v) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    qb_symbol_set(&b.symbol, "TEST", NULL, 0);
    strcpy(b.timeframe, "1d");
    b.ts = ts;
    b.open = P(o);
    b.high = P(h);
    b.low = P(l);
    b.close = P(c);
    b.volume = P(v);
    return b;
}

/* One bar after a good one through a fresh validator: its reason or COUNT. */
static qb_md_reason_t check_one(qb_bar_t b, char *msg, size_t cap) {
    qb_md_validator_t *v = qb_md_validator_new("1d", NULL, E, sizeof E);
    assert_non_null(v);
    qb_bar_t bars[2] = {bar(19000 * DAY, 10, 11, 9, 10, 100), b};
    uint16_t flags[2];
    size_t kept = 0;
    rej_t r;
    memset(&r, 0, sizeof r);
    qb_md_validate_batch(v, bars, 2, flags, &kept, on_reject, &r);
    int64_t counts[QB_MD_REASON_COUNT], acc = 0, out = 0;
    qb_md_validator_counts(v, counts, &acc, &out);
    qb_md_validator_destroy(v);
    if (r.n == 0) {
        assert_int_equal(kept, 2);
        assert_int_equal(acc, 2);
        return QB_MD_REASON_COUNT;
    }
    assert_int_equal(r.n, 1);
    assert_int_equal(r.index[0], 1);
    assert_int_equal(kept, 1);
    assert_int_equal(acc, 1);
    assert_int_equal(counts[r.reason[0]], 1);
    snprintf(msg, cap, "%s", r.msg[0]);
    return r.reason[0];
}

static void expect(qb_bar_t b, qb_md_reason_t want, const char *msg_part) {
    char msg[256] = "";
    qb_md_reason_t got = check_one(b, msg, sizeof msg);
    if (got != want)
        fail_msg("want %s, got %s (%s)", qb_md_reason_name(want),
                 got == QB_MD_REASON_COUNT ? "accepted" : qb_md_reason_name(got), msg);
    if (msg_part && !strstr(msg, msg_part)) fail_msg("message \"%s\" lacks \"%s\"", msg, msg_part);
}

static void test_each_rule(void **state) {
    const qb_time_t t = 19001 * DAY;
    expect(bar(t, 10, 11, 9, 10.5, 0), QB_MD_REASON_COUNT, NULL);
    expect(bar(t + 3600 * QB_NS_PER_SEC, 10, 11, 9, 10, 1), QB_MD_REASON_OFF_GRID, "not on the 1d grid");
    expect(bar(19000 * DAY, 10, 11, 9, 10, 1), QB_MD_REASON_DUPLICATE_TS, "repeats");
    expect(bar(18999 * DAY, 10, 11, 9, 10, 1), QB_MD_REASON_NON_INCREASING_TS, "before the previous");
    expect(bar(t, 0, 11, 9, 10, 1), QB_MD_REASON_NONPOSITIVE_PRICE, "open 0 is not positive");
    expect(bar(t, 10, 11, -9, 10, 1), QB_MD_REASON_NONPOSITIVE_PRICE, "low -9 is not positive");
    expect(bar(t, 10, 9, 11, 10, 1), QB_MD_REASON_HIGH_BELOW_LOW, "high 9 < low 11");
    expect(bar(t, 12, 11, 9, 10, 1), QB_MD_REASON_OPEN_OUTSIDE_RANGE, "open 12 outside [low 9, high 11]");
    expect(bar(t, 10, 11, 9, 8.5, 1), QB_MD_REASON_CLOSE_OUTSIDE_RANGE, "close 8.5 outside");
    expect(bar(t, 10, 11, 9, 10, -1), QB_MD_REASON_NEGATIVE_VOLUME, "volume -1 is negative");
}

static void test_intraday_grid_and_bad_timeframe(void **state) {
    qb_md_validator_t *v = qb_md_validator_new("5m", NULL, E, sizeof E);
    assert_non_null(v);
    qb_time_t t0 = 19000 * DAY + 9 * QB_NS_PER_HOUR;
    qb_bar_t bars[3] = {bar(t0, 1, 1, 1, 1, 1), bar(t0 + 5 * QB_NS_PER_MIN, 1, 1, 1, 1, 1),
                        bar(t0 + 11 * QB_NS_PER_MIN, 1, 1, 1, 1, 1)};
    uint16_t flags[3];
    size_t kept;
    rej_t r;
    memset(&r, 0, sizeof r);
    qb_md_validate_batch(v, bars, 3, flags, &kept, on_reject, &r);
    assert_int_equal(kept, 2);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], QB_MD_REASON_OFF_GRID);
    assert_int_equal(r.index[0], 2);
    qb_md_validator_destroy(v);
    assert_null(qb_md_validator_new("2d", NULL, E, sizeof E));
    qb_md_validator_destroy(NULL);
}

/* Deterministic small returns: close_i = 100 * exp(sum of +-0.5%..1%). */
static void noise_series(qb_bar_t *bars, int n, qb_time_t t0, double *last) {
    double c = *last;
    uint64_t st = 42;
    for (int i = 0; i < n; i++) {
        double r = ((double)(qb_test_rand(&st) % 2001) / 1000.0 - 1.0) * 0.01;
        c *= exp(r);
        bars[i] = bar(t0 + i * DAY, c, c * 1.01, c * 0.99, c, 1000);
    }
    *last = c;
}

static void test_outlier_flagged_and_state_across_batches(void **state) {
    qb_md_validator_t *v = qb_md_validator_new("1d", NULL, E, sizeof E);
    assert_non_null(v);
    static qb_bar_t bars[100];
    uint16_t flags[100];
    size_t kept;
    double last = 100;
    noise_series(bars, 60, 19000 * DAY, &last);
    qb_md_validate_batch(v, bars, 60, flags, &kept, NULL, NULL);
    assert_int_equal(kept, 60);
    for (int i = 0; i < 60; i++) assert_int_equal(flags[i], 0);

    /* next batch: the duplicate of the previous batch's last bar is rejected
     * (state carried), then a x3 jump is flagged but kept, then noise */
    qb_time_t t = 19060 * DAY;
    bars[0] = bar(19059 * DAY, last, last, last, last, 1);
    double j = last * 3;
    bars[1] = bar(t, j, j * 1.01, j * 0.99, j, 1);
    double l2 = j;
    noise_series(bars + 2, 10, t + DAY, &l2);
    rej_t r;
    memset(&r, 0, sizeof r);
    qb_md_validate_batch(v, bars, 12, flags, &kept, on_reject, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.reason[0], QB_MD_REASON_DUPLICATE_TS);
    assert_int_equal(kept, 11);
    assert_int_equal(bars[0].ts, t); /* compacted: the jump bar is first */
    assert_int_equal(flags[0], QB_MD_FLAG_OUTLIER);
    for (size_t i = 1; i < kept; i++) assert_int_equal(flags[i], 0);
    int64_t counts[QB_MD_REASON_COUNT], acc, out;
    qb_md_validator_counts(v, counts, &acc, &out);
    assert_int_equal(acc, 71);
    assert_int_equal(out, 1);
    assert_int_equal(counts[QB_MD_REASON_DUPLICATE_TS], 1);
    qb_md_validator_destroy(v);
}

static void test_outlier_needs_min_periods_and_threshold(void **state) {
    /* a jump before min_periods returns is not flagged */
    qb_md_validate_opts_t o = {.window = 10, .min_periods = 5, .threshold = 4.0};
    qb_md_validator_t *v = qb_md_validator_new("1d", &o, E, sizeof E);
    static qb_bar_t bars[40];
    uint16_t flags[40];
    size_t kept;
    double last = 50;
    noise_series(bars, 3, 19000 * DAY, &last);
    bars[3] = bar(19003 * DAY, last * 2, last * 2, last * 2, last * 2, 1);
    qb_md_validate_batch(v, bars, 4, flags, &kept, NULL, NULL);
    assert_int_equal(kept, 4);
    assert_int_equal(flags[3], 0);
    qb_md_validator_destroy(v);
    /* a flat series (MAD 0) flags nothing */
    v = qb_md_validator_new("1d", NULL, E, sizeof E);
    for (int i = 0; i < 30; i++) bars[i] = bar((19000 + i) * DAY, 5, 5, 5, 5, 1);
    bars[30] = bar(19030 * DAY, 50, 50, 50, 50, 1);
    qb_md_validate_batch(v, bars, 31, flags, &kept, NULL, NULL);
    assert_int_equal(kept, 31);
    assert_int_equal(flags[30], 0);
    qb_md_validator_destroy(v);
}

static void test_reason_names(void **state) {
    for (int i = 0; i < QB_MD_REASON_COUNT; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s: detail", qb_md_reason_name((qb_md_reason_t)i));
        assert_int_equal(qb_md_reason_parse(buf), i);
    }
    assert_string_equal(qb_md_reason_name(QB_MD_REASON_HIGH_BELOW_LOW), "high_below_low");
    assert_int_equal(qb_md_reason_parse("whatever: x"), QB_MD_REASON_OTHER);
    assert_int_equal(qb_md_reason_parse("bad_time"), QB_MD_REASON_BAD_TIME);
    assert_string_equal(qb_md_reason_name(QB_MD_REASON_COUNT), "other");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_rule),
        cmocka_unit_test(test_intraday_grid_and_bad_timeframe),
        cmocka_unit_test(test_outlier_flagged_and_state_across_batches),
        cmocka_unit_test(test_outlier_needs_min_periods_and_threshold),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
