/* test_cron.c — qb_cron: parse errors name the field and the value; names,
 * steps, 7 = Sunday, shorthands; next-fire times worked out by hand
 * (calendars of 2024: 2024-01-01 and 2024-07-01 are Mondays, 2024-09-01 a
 * Sunday; US DST 2024: 2024-03-10 02:00 EST -> 03:00 EDT, 2024-11-03 02:00
 * EDT -> 01:00 EST; UK 2024-03-31 01:00 GMT -> 02:00 BST) in UTC,
 * America/New_York and Europe/London across both transitions; the
 * day-of-month / day-of-week OR rule; month ends; Feb 29 across 2100; and a
 * property test: in UTC, the answer equals a minute-by-minute scan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal/qb_tz.h"
#include "core/qb_cron.h"
#include "md/qb_md_sched.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[512];

static qb_time_t T(const char *iso) {
    qb_time_t t = 0;
    if (qb_time_parse(iso, strlen(iso), &t) != QB_OK) fail_msg("bad time %s", iso);
    return t;
}

/* qb_cron_zone_t over qb_tz, as qb_md_sched.c builds it. */
static qb_err_t z_to(void *ctx, qb_time_t t, qb_civil_t *l) {
    qb_tz_local_t x;
    qb_err_t e = qb_tz_to_local(ctx, t, &x);
    if (e == QB_OK) *l = x.civil;
    return e;
}
static qb_err_t z_from(void *ctx, const qb_civil_t *l, qb_time_t *out) {
    return qb_tz_from_local(ctx, l, QB_TZ_COMPATIBLE, out, NULL, 0);
}
static qb_cron_zone_t zone(const char *name) {
    const qb_tz_t *tz = NULL;
    OK(qb_tz_get(name, &tz, E, sizeof E));
    qb_cron_zone_t z = {z_to, z_from, (void *)tz};
    return z;
}

/* next(expr, zone, after) must be want; checked through both the core API
 * with a zone adapter and qb_md_sched_cron_next. */
static void check_next(const char *expr, const char *tz, const char *after, const char *want) {
    qb_cron_t c;
    OK(qb_cron_parse(expr, &c, E, sizeof E));
    qb_cron_zone_t z = zone(tz ? tz : "UTC");
    qb_time_t got = 0, got2 = 0;
    OK(qb_cron_next(&c, tz ? &z : NULL, T(after), &got, E, sizeof E));
    OK(qb_md_sched_cron_next(expr, tz, T(after), &got2, E, sizeof E));
    char g[QB_TIME_STRLEN], g2[QB_TIME_STRLEN];
    qb_time_format(got, g, sizeof g);
    qb_time_format(got2, g2, sizeof g2);
    if (got != T(want) || got2 != got)
        fail_msg("'%s' in %s after %s: got %s (sched %s), want %s", expr, tz ? tz : "UTC", after,
                 g, g2, want);
}

/* A chain of firings: each after the previous. */
static void check_chain(const char *expr, const char *tz, const char *after,
                        const char *const *want, size_t n) {
    const char *prev = after;
    for (size_t i = 0; i < n; i++) {
        check_next(expr, tz, prev, want[i]);
        prev = want[i];
    }
}

static void check_parse_error(const char *expr, const char *want1, const char *want2) {
    qb_cron_t c;
    ERR(QB_ERR_PARSE, qb_cron_parse(expr, &c, E, sizeof E));
    if (!strstr(E, want1) || (want2 && !strstr(E, want2)))
        fail_msg("'%s': error '%s' should contain '%s' and '%s'", expr, E, want1,
                 want2 ? want2 : "");
}

static void test_parse_errors(void **state) {
    check_parse_error("* * * *", "expected 5 fields", "got 4");
    check_parse_error("* * * * * *", "expected 5 fields", "got 6");
    check_parse_error("", "empty", NULL);
    check_parse_error("60 * * * *", "minute", "60 out of range 0-59");
    check_parse_error("* 24 * * *", "hour", "24 out of range 0-23");
    check_parse_error("* * 0 * *", "day-of-month", "0 out of range 1-31");
    check_parse_error("* * 32 * *", "day-of-month", "32");
    check_parse_error("* * * 13 *", "month", "13 out of range 1-12");
    check_parse_error("* * * * 8", "day-of-week", "8 out of range 0-7");
    check_parse_error("* * * FOO *", "month", "unknown name 'FOO'");
    check_parse_error("* * * * FRX", "day-of-week", "unknown name 'FRX'");
    check_parse_error("MON * * * *", "minute", "names are not allowed ('MON')");
    check_parse_error("5-3 * * * *", "minute", "range 5-3 has start after end");
    check_parse_error("* * * * FRI-MON", "day-of-week", "range FRI-MON");
    check_parse_error("*/0 * * * *", "minute", "bad step");
    check_parse_error("* */25 * * *", "hour", "bad step");
    check_parse_error("1,,2 * * * *", "minute", "empty item");
    check_parse_error("1-2-3 * * * *", "minute", "bad item '1-2-3'");
    check_parse_error("* * * * 1-", "day-of-week", "bad value");
    check_parse_error("@reboot", "unknown shorthand '@reboot'", NULL);
    check_parse_error("0 0 30 2 *", "day-of-month", "never occurs in month '2'");
    check_parse_error("0 0 31 APR,JUN *", "day-of-month", "'31'");
}

static void test_parse_values(void **state) {
    qb_cron_t c;
    OK(qb_cron_parse("5/15 */6 1-31/10 jan-MAR,Dec sun,7", &c, E, sizeof E));
    assert_true(c.minutes == ((1ULL << 5) | (1ULL << 20) | (1ULL << 35) | (1ULL << 50)));
    assert_int_equal(c.hours, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    assert_int_equal(c.mdays, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    assert_int_equal(c.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
    assert_int_equal(c.wdays, 1u); /* SUN and 7 are both Sunday */
    assert_false(c.mday_star);
    assert_false(c.wday_star);
    OK(qb_cron_parse("  0\t0  *  *  5-7 ", &c, E, sizeof E)); /* blanks, 5-7 = FRI..SUN */
    assert_int_equal(c.wdays, (1u << 5) | (1u << 6) | 1u);
    assert_true(c.mday_star);
    /* Shorthands equal their expansion. */
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@HOURLY", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        qb_cron_t a, b;
        OK(qb_cron_parse(pairs[i][0], &a, E, sizeof E));
        OK(qb_cron_parse(pairs[i][1], &b, E, sizeof E));
        assert_memory_equal(&a, &b, sizeof a);
    }
    /* Feb 29 alone is accepted (leap years); so is day 31 with a weekday
     * (OR rule: the weekdays still fire). */
    OK(qb_cron_parse("0 0 29 2 *", &c, E, sizeof E));
    OK(qb_cron_parse("0 0 31 2 1", &c, E, sizeof E));
}

static void test_every_15_minutes(void **state) {
    static const char *const w[] = {"2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z",
                                    "2024-01-01T00:45:00Z", "2024-01-01T01:00:00Z"};
    check_chain("*/15 * * * *", NULL, "2024-01-01T00:07:30Z", w, 4);
    check_next("*/15 * * * *", NULL, "2024-12-31T23:50:00Z", "2025-01-01T00:00:00Z");
    /* Exactly on a slot: strictly after. */
    check_next("*/15 * * * *", NULL, "2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z");
    check_next("*/15 * * * *", NULL, "2024-01-01T00:14:59.999Z", "2024-01-01T00:15:00Z");
    /* In New York on an ordinary day: whole local quarters = whole UTC ones. */
    check_next("*/15 * * * *", "America/New_York", "2024-06-03T14:01:00Z",
               "2024-06-03T14:15:00Z");
}

static void test_weekdays_new_york_dst(void **state) {
    /* Spring: Thu 03-07 -> Fri 03-08 09:00 EST (14:00Z) -> Mon 03-11 09:00
     * EDT (13:00Z). */
    static const char *const spring[] = {"2024-03-08T14:00:00Z", "2024-03-11T13:00:00Z",
                                         "2024-03-12T13:00:00Z"};
    check_chain("0 9 * * 1-5", "America/New_York", "2024-03-07T15:00:00Z", spring, 3);
    /* Autumn: Thu 10-31 -> Fri 11-01 09:00 EDT (13:00Z) -> Mon 11-04 09:00
     * EST (14:00Z). */
    static const char *const autumn[] = {"2024-11-01T13:00:00Z", "2024-11-04T14:00:00Z",
                                         "2024-11-05T14:00:00Z"};
    check_chain("0 9 * * MON-FRI", "America/New_York", "2024-10-31T14:00:00Z", autumn, 3);
}

static void test_skipped_and_repeated_hours(void **state) {
    const char *ny = "America/New_York";
    /* 02:00 does not exist on 2024-03-10: fires at the first valid minute
     * after, 03:00 EDT = 07:00Z; the next day 02:00 EDT = 06:00Z. */
    static const char *const sk[] = {"2024-03-09T07:00:00Z", "2024-03-10T07:00:00Z",
                                     "2024-03-11T06:00:00Z"};
    check_chain("0 2 * * *", ny, "2024-03-08T08:00:00Z", sk, 3);
    check_next("30 2 * * *", ny, "2024-03-10T05:00:00Z", "2024-03-10T07:00:00Z");
    /* Every skipped quarter collapses into one firing at 03:00 EDT. */
    static const char *const q[] = {"2024-03-10T07:00:00Z", "2024-03-10T07:15:00Z"};
    check_chain("*/15 * * * *", ny, "2024-03-10T06:45:00Z", q, 2);
    check_next("*/15 2 * * *", ny, "2024-03-10T06:45:00Z", "2024-03-10T07:00:00Z");
    check_next("*/15 2 * * *", ny, "2024-03-10T07:00:00Z", "2024-03-11T06:00:00Z");

    /* 2024-11-03: 01:00-01:59 happens twice (EDT 05:00Z.., EST 06:00Z..).
     * 02:00 happens once, at 02:00 EST = 07:00Z. */
    static const char *const fb[] = {"2024-11-02T06:00:00Z", "2024-11-03T07:00:00Z",
                                     "2024-11-04T07:00:00Z"};
    check_chain("0 2 * * *", ny, "2024-11-01T12:00:00Z", fb, 3);
    /* 01:30 fires once, at its first occurrence (EDT). */
    static const char *const rep[] = {"2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"};
    check_chain("30 1 * * *", ny, "2024-11-02T12:00:00Z", rep, 2);
    /* Asked during the second pass: 01:30 already fired. */
    check_next("30 1 * * *", ny, "2024-11-03T06:10:00Z", "2024-11-04T06:30:00Z");
    /* Every 15 minutes: the repeated hour's second pass is silent. */
    static const char *const q2[] = {"2024-11-03T05:30:00Z", "2024-11-03T05:45:00Z",
                                     "2024-11-03T07:00:00Z", "2024-11-03T07:15:00Z"};
    check_chain("*/15 * * * *", ny, "2024-11-03T05:15:00Z", q2, 4);
    check_next("*/15 * * * *", ny, "2024-11-03T06:10:00Z", "2024-11-03T07:00:00Z");
    /* London: 01:30 skipped on 2024-03-31 -> 02:00 BST = 01:00Z. */
    check_next("30 1 * * *", "Europe/London", "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z");
    check_next("30 1 * * *", "Europe/London", "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z");
}

static void test_dom_dow_or_rule(void **state) {
    /* 13th OR Friday, from Sunday 2024-09-01. */
    static const char *const w[] = {"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z",
                                    "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z",
                                    "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z",
                                    "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z"};
    check_chain("0 0 13 * 5", NULL, "2024-09-01T00:00:00Z", w, 8);
    /* Only one restricted: the other does not count. */
    check_next("0 0 13 * *", NULL, "2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z");
    check_next("0 0 * * FRI", NULL, "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z");
    /* "*\/2" counts as unrestricted (Vixie cron): odd days that are
     * Mondays: 2024-07-01 (Mon), then 07-15, 07-29. */
    static const char *const w2[] = {"2024-07-01T00:00:00Z", "2024-07-15T00:00:00Z",
                                     "2024-07-29T00:00:00Z"};
    check_chain("0 0 */2 * 1", NULL, "2024-06-30T00:00:00Z", w2, 3);
}

static void test_month_ends_and_leap_day(void **state) {
    check_next("@monthly", NULL, "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z");
    check_next("@monthly", NULL, "2024-02-29T23:59:00Z", "2024-03-01T00:00:00Z");
    check_next("@monthly", NULL, "2024-12-15T00:00:00Z", "2025-01-01T00:00:00Z");
    /* Midnight New York on the 1st: EDT on 11-01 (04:00Z), EST on 12-01. */
    check_next("@monthly", "America/New_York", "2024-10-31T12:00:00Z", "2024-11-01T04:00:00Z");
    check_next("@monthly", "America/New_York", "2024-11-01T04:00:00Z", "2024-12-01T05:00:00Z");
    /* The 31st skips the short months. */
    static const char *const d31[] = {"2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z",
                                      "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z"};
    check_chain("0 0 31 * *", NULL, "2024-01-31T00:00:00Z", d31, 4);
    check_next("@yearly", NULL, "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z");
    check_next("@weekly", NULL, "2024-09-01T00:00:00Z", "2024-09-08T00:00:00Z");
    check_next("@hourly", NULL, "2024-09-01T00:59:59Z", "2024-09-01T01:00:00Z");
    /* Feb 29: the next leap year; 2100 is not one. */
    check_next("0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
    check_next("0 0 29 2 *", NULL, "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z");
    check_next("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
}

static void test_errors_of_next(void **state) {
    qb_time_t t;
    ERR(QB_ERR_PARSE, qb_md_sched_cron_next("61 * * * *", "UTC", 0, &t, E, sizeof E));
    assert_non_null(strstr(E, "minute"));
    ERR(QB_ERR_NOT_FOUND, qb_md_sched_cron_next("* * * * *", "Mars/Olympus", 0, &t, E, sizeof E));
    /* Near the end of the qb_time_t range nothing can be found. */
    qb_cron_t c;
    OK(qb_cron_parse("0 0 29 2 *", &c, E, sizeof E));
    qb_err_t e = qb_cron_next(&c, NULL, T("2261-03-01T00:00:00Z"), &t, E, sizeof E);
    assert_true(e != QB_OK);
}

/* In UTC the result equals a minute-by-minute scan (random expressions). */
static void test_property_scan(void **state) {
    uint64_t seed = qb_test_seed("test_cron");
    for (int it = 0; it < 60; it++) {
        char expr[128];
        uint64_t r = qb_test_rand(&seed);
        static const char *const mins[] = {"*", "0", "*/7", "5,35", "10-20/3", "59"};
        static const char *const hours[] = {"*", "3", "*/5", "9-17", "0,12,23"};
        static const char *const doms[] = {"*", "1", "15", "28-31", "*/10", "13"};
        static const char *const mons[] = {"*", "*", "2", "JAN-MAR", "*/4", "12"};
        static const char *const dows[] = {"*", "5", "1-5", "SAT,SUN", "*/3"};
        snprintf(expr, sizeof expr, "%s %s %s %s %s", mins[r % 6], hours[(r >> 8) % 5],
                 doms[(r >> 16) % 6], mons[(r >> 24) % 6], dows[(r >> 32) % 5]);
        qb_cron_t c;
        if (qb_cron_parse(expr, &c, E, sizeof E) != QB_OK) fail_msg("%s: %s", expr, E);
        qb_time_t after = T("2023-01-01T00:00:00Z") +
                          (qb_time_t)(qb_test_rand(&seed) % (3ULL * 365 * 86400)) * QB_NS_PER_SEC;
        qb_time_t got;
        OK(qb_cron_next(&c, NULL, after, &got, E, sizeof E));
        qb_time_t m = (after / QB_NS_PER_MIN + 1) * QB_NS_PER_MIN;
        for (; m < got; m += QB_NS_PER_MIN) {
            qb_civil_t cv;
            qb_time_to_civil(m, &cv);
            if (qb_cron_matches(&c, &cv)) fail_msg("'%s' matches %lld before %lld", expr,
                                                   (long long)m, (long long)got);
        }
        qb_civil_t cv;
        qb_time_to_civil(got, &cv);
        assert_true(qb_cron_matches(&c, &cv));
        assert_int_equal(got % QB_NS_PER_MIN, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_every_15_minutes),
        cmocka_unit_test(test_weekdays_new_york_dst),
        cmocka_unit_test(test_skipped_and_repeated_hours),
        cmocka_unit_test(test_dom_dow_or_rule),
        cmocka_unit_test(test_month_ends_and_leap_day),
        cmocka_unit_test(test_errors_of_next),
        cmocka_unit_test(test_property_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
