/* test_time.c — qb_time: fixed vectors (checked against Python's datetime),
 * the calendar over every day of 800 years, random format/parse round trips
 * with and without UTC offsets, and rejection of invalid or truncated text
 * with a message. Seeded; QB_TEST_SEED repeats a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_time.h"
#include "qb_test.h"

#define ITERS 100000
#define SENTINEL ((qb_time_t)0x5a5a5a5a5a5a5a5aLL)
/* 1678-01-01T00:00:00Z and 2262-01-01T00:00:00Z: the parseable span. */
#define T_LO (-9214560000000000000LL)
#define T_HI 9214646400000000000LL

static uint64_t rng;

static uint64_t rnd(void) { return qb_test_rand(&rng); }

static qb_err_t parse_s(const char *s, qb_time_t *t) {
    return qb_time_parse(s, strlen(s), t);
}

static void test_known_vectors(void **state) {
    static const struct { const char *s; qb_time_t t; } v[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01", 0},
        {"2000-02-29T00:00:00Z", 951782400000000000LL},
        {"2024-01-02", 1704153600000000000LL},
        {"2024-01-02T03:04:05Z", 1704164645000000000LL},
        {"2024-01-02 03:04:05", 1704164645000000000LL},
        {"2024-01-02t03:04:05z", 1704164645000000000LL},
        {"2024-01-02T03:04:05.5Z", 1704164645500000000LL},
        {"2024-01-02T03:04:05.123456789Z", 1704164645123456789LL},
        {"2024-01-02T03:04:05.000000001Z", 1704164645000000001LL},
        {"1969-12-31T23:59:59.999999999Z", -1},
        {"1969-07-20T20:17:40Z", -14182940000000000LL},
        {"1900-03-01", -2203891200000000000LL},
        {"2100-02-28T12:00:00Z", 4107499200000000000LL},
        {"1678-01-01T00:00:00Z", T_LO},
        {"2261-12-31T23:59:59Z", 9214646399000000000LL},
        {"2261-12-31T23:59:59.999999999Z", T_HI - 1},
        /* offsets: all the same instant as 2024-01-02T03:04:05Z */
        {"2024-01-02T08:34:05+05:30", 1704164645000000000LL},
        {"2024-01-02T08:34:05+0530", 1704164645000000000LL},
        {"2024-01-01T23:04:05-04:00", 1704164645000000000LL},
        {"2024-01-01T23:04:05-0400", 1704164645000000000LL},
        {"2024-01-02T03:04:05+00:00", 1704164645000000000LL},
        {"2024-01-02T03:04:05-00:00", 1704164645000000000LL},
        {"2024-01-03T03:03:05+23:59", 1704164645000000000LL},
        /* the offset moves the UTC year into range */
        {"1677-12-31T23:00:00-01:00", T_LO},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qb_time_t t = SENTINEL;
        char err[128] = "";
        qb_err_t rc = qb_time_parse_ex(v[i].s, strlen(v[i].s), &t, err, sizeof err);
        if (rc != QB_OK || t != v[i].t)
            fail_msg("parse \"%s\": %s (%s) %lld, want %lld", v[i].s,
                     qb_err_name(rc), err, (long long)t, (long long)v[i].t);
    }
}

static void test_format_vectors(void **state) {
    static const struct { qb_time_t t; const char *s; } v[] = {
        {0, "1970-01-01T00:00:00Z"},
        {-1, "1969-12-31T23:59:59.999999999Z"},
        {1, "1970-01-01T00:00:00.000000001Z"},
        {1000, "1970-01-01T00:00:00.000001Z"},
        {1500, "1970-01-01T00:00:00.000001500Z"},
        {1000000, "1970-01-01T00:00:00.001Z"},
        {120000000, "1970-01-01T00:00:00.120Z"},
        {-1000000000, "1969-12-31T23:59:59Z"},
        {951782400000000000LL, "2000-02-29T00:00:00Z"},
        {1704164645123456789LL, "2024-01-02T03:04:05.123456789Z"},
        {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
        {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
    };
    char buf[QB_TIME_STRLEN];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = qb_time_format(v[i].t, buf, sizeof buf);
        assert_string_equal(buf, v[i].s);
        assert_int_equal(n, strlen(v[i].s));
    }
    assert_int_equal(qb_time_format(0, buf, 5), 20);
    assert_string_equal(buf, "1970");
    assert_int_equal(qb_time_format(0, NULL, 0), 20);
}

/* A random instant in the parseable span; a third of them whole seconds,
 * milliseconds or microseconds so every fraction width is exercised. */
static qb_time_t rnd_time(void) {
    qb_time_t t = (qb_time_t)((uint64_t)T_LO + rnd() % ((uint64_t)T_HI - (uint64_t)T_LO));
    static const int64_t units[] = {1, 1, 1, QB_NS_PER_US, QB_NS_PER_MS, QB_NS_PER_SEC};
    int64_t u = units[rnd() % 6];
    t -= ((t % u) + u) % u;
    return t < T_LO ? T_LO : t;
}

static void test_roundtrip_property(void **state) {
    char buf[QB_TIME_STRLEN];
    for (int i = 0; i < ITERS; i++) {
        qb_time_t t = rnd_time(), p = SENTINEL;
        size_t n = qb_time_format(t, buf, sizeof buf);
        if (qb_time_parse(buf, n, &p) != QB_OK || p != t)
            fail_msg("%lld -> %s -> %lld", (long long)t, buf, (long long)p);
    }
}

/* Write t as local time at a random offset; parsing gives t back. */
static void test_offset_roundtrip_property(void **state) {
    char buf[QB_TIME_STRLEN], text[48];
    for (int i = 0; i < ITERS; i++) {
        qb_time_t t = rnd_time(), p = SENTINEL;
        int off_min = (int)(rnd() % (2 * 1439 + 1)) - 1439; /* -23:59..+23:59 */
        int a = off_min < 0 ? -off_min : off_min;
        size_t n = qb_time_format(t + off_min * QB_NS_PER_MIN, buf, sizeof buf);
        buf[n - 1] = '\0'; /* drop the Z */
        if (rnd() & 1) buf[10] = ' ';
        snprintf(text, sizeof text, (rnd() & 1) ? "%s%c%02d:%02d" : "%s%c%02d%02d",
                 buf, off_min < 0 ? '-' : '+', a / 60, a % 60);
        qb_err_t err = parse_s(text, &p);
        if (err != QB_OK || p != t)
            fail_msg("%s: %s %lld, want %lld", text, qb_err_name(err), (long long)p,
                     (long long)t);
    }
}

/* Every day from 1600 to 2400: days <-> civil agree and advance by one. */
static void test_calendar_every_day(void **state) {
    int64_t first = qb_time_days_from_civil(1600, 1, 1);
    int64_t last = qb_time_days_from_civil(2400, 12, 31);
    int py = 1599, pm = 12, pd = 31;
    for (int64_t d = first; d <= last; d++) {
        int y, m, dd;
        qb_time_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(qb_time_days_from_civil(y, m, dd), d);
        if (dd == pd + 1) {
            assert_true(y == py && m == pm);
        } else {
            assert_int_equal(dd, 1);
            assert_int_equal(pd, qb_time_days_in_month(py, pm));
            assert_true((m == pm + 1 && y == py) || (m == 1 && pm == 12 && y == py + 1));
        }
        py = y, pm = m, pd = dd;
    }
    assert_int_equal(qb_time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(qb_time_days_from_civil(2400, 1, 1) - qb_time_days_from_civil(2000, 1, 1),
                     146097);
    assert_int_equal(qb_time_days_in_month(1900, 2), 28);
    assert_int_equal(qb_time_days_in_month(2000, 2), 29);
    assert_int_equal(qb_time_days_in_month(2024, 2), 29);
    assert_int_equal(qb_time_days_in_month(2023, 2), 28);
    assert_int_equal(qb_time_days_in_month(2023, 13), 0);
}

static void test_invalid_inputs(void **state) {
    static const struct { const char *s; qb_err_t err; const char *msg; } v[] = {
        {"2023-02-29", QB_ERR_PARSE, "day 29 out of range for 2023-02"},
        {"1900-02-29", QB_ERR_PARSE, "day 29"},
        {"2024-04-31", QB_ERR_PARSE, "day 31"},
        {"2024-01-00", QB_ERR_PARSE, "day 0"},
        {"2024-13-01", QB_ERR_PARSE, "month 13 out of range"},
        {"2024-00-10", QB_ERR_PARSE, "month 0"},
        {"2024-01-02T24:00:00Z", QB_ERR_PARSE, "hour 24 out of range"},
        {"2024-01-02T23:60:00Z", QB_ERR_PARSE, "minute 60"},
        {"2024-01-02T23:59:60Z", QB_ERR_PARSE, "leap second"},
        {"2024-01-02T23:59:61Z", QB_ERR_PARSE, "second 61"},
        {"2024-01-02T03:04:05+24:00", QB_ERR_PARSE, "offset"},
        {"2024-01-02T03:04:05+05:60", QB_ERR_PARSE, "offset"},
        {"2024-01-02T03:04:05.1234567891Z", QB_ERR_PARSE, "more than 9"},
        {"2024-01-02T03:04:05.Z", QB_ERR_PARSE, "digits after '.'"},
        {"2024-01-02T03:04Z", QB_ERR_PARSE, "hh:mm:ss"},
        {"2024-01-02T3:04:05Z", QB_ERR_PARSE, "hh:mm:ss"},
        {"2024-01-02X03:04:05Z", QB_ERR_PARSE, "'T'"},
        {"2024-01-02Z", QB_ERR_PARSE, "'T'"},
        {"2024-01-02T03:04:05ZZ", QB_ERR_PARSE, "unexpected character"},
        {"2024-01-02T03:04:05 Z", QB_ERR_PARSE, "Z, +hh:mm"},
        {"2024-01-02T03:04:05+05", QB_ERR_PARSE, "Z, +hh:mm"},
        {"2024-01-02T03:04:05+5:30", QB_ERR_PARSE, "Z, +hh:mm"},
        {"2024-1-02", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"24-01-02", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"12024-01-02", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"2024/01/02", QB_ERR_PARSE, "YYYY-MM-DD"},
        {" 2024-01-02", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"2024-01-02 ", QB_ERR_PARSE, "hh:mm:ss"},
        {"", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"garbage", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"1704164645", QB_ERR_PARSE, "YYYY-MM-DD"},
        {"1677-12-31T23:59:59Z", QB_ERR_RANGE, "1678..2261"},
        {"2262-01-01", QB_ERR_RANGE, "1678..2261"},
        {"1678-01-01T00:00:00+00:01", QB_ERR_RANGE, "1678..2261"},
        {"2261-12-31T23:30:00-01:00", QB_ERR_RANGE, "1678..2261"},
        {"0000-01-01", QB_ERR_RANGE, "1678..2261"},
        {"9999-12-31T23:59:59Z", QB_ERR_RANGE, "1678..2261"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qb_time_t t = SENTINEL;
        char err[128] = "";
        qb_err_t rc = qb_time_parse_ex(v[i].s, strlen(v[i].s), &t, err, sizeof err);
        if (rc != v[i].err || t != SENTINEL || !strstr(err, v[i].msg))
            fail_msg("parse \"%s\": %s \"%s\", want %s \"%s\"", v[i].s,
                     qb_err_name(rc), err, qb_err_name(v[i].err), v[i].msg);
        assert_int_equal(parse_s(v[i].s, &t), v[i].err); /* no errstr: same */
    }
}

/* Every prefix of a full timestamp, as an exact-size heap copy (ASan sees
 * any read past len): only the complete forms parse. */
static void check_prefixes(const char *full, const int *ok_lens, size_t n_ok) {
    size_t len = strlen(full);
    for (size_t n = 0; n <= len; n++) {
        char *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, full, n);
        qb_time_t t;
        int want_ok = 0;
        for (size_t k = 0; k < n_ok; k++) want_ok |= (size_t)ok_lens[k] == n;
        qb_err_t err = qb_time_parse(p, n, &t);
        free(p);
        if ((err == QB_OK) != want_ok)
            fail_msg("prefix %zu of %s: %s", n, full, qb_err_name(err));
    }
}

static void test_truncated_prefixes(void **state) {
    static const int a[] = {10, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 35};
    check_prefixes("2024-01-02T03:04:05.123456789+05:30", a, sizeof a / sizeof a[0]);
    static const int b[] = {10, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 34};
    check_prefixes("2024-01-02T03:04:05.123456789-0530", b, sizeof b / sizeof b[0]);
    static const int c[] = {10, 19, 20};
    check_prefixes("2024-01-02 03:04:05Z", c, sizeof c / sizeof c[0]);
    qb_time_t t;
    assert_int_equal(qb_time_parse("2024-01-02T03:04:05Zjunk", 20, &t), QB_OK);
    assert_int_equal(t, 1704164645000000000LL);
}

static void test_civil(void **state) {
    qb_civil_t c;
    qb_time_to_civil(-1, &c);
    assert_int_equal(c.year, 1969);
    assert_int_equal(c.month, 12);
    assert_int_equal(c.day, 31);
    assert_int_equal(c.hour, 23);
    assert_int_equal(c.min, 59);
    assert_int_equal(c.sec, 59);
    assert_int_equal(c.nsec, 999999999);
    qb_civil_t d = {2000, 2, 29, 0, 0, 0, 0};
    qb_time_t t = SENTINEL;
    assert_int_equal(qb_time_from_civil(&d, &t), QB_OK);
    assert_int_equal(t, 951782400000000000LL);
    qb_civil_t bad[] = {{2001, 2, 29, 0, 0, 0, 0}, {2000, 1, 1, 0, 0, 0, -1},
                        {2000, 1, 1, 0, 0, 0, 1000000000}, {2000, 1, 1, -1, 0, 0, 0},
                        {2000, 1, 1, 0, 0, 60, 0}};
    t = SENTINEL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(qb_time_from_civil(&bad[i], &t), QB_ERR_PARSE);
    qb_civil_t far = {3000, 1, 1, 0, 0, 0, 0};
    assert_int_equal(qb_time_from_civil(&far, &t), QB_ERR_RANGE);
    assert_int_equal(t, SENTINEL);
}

static void test_unix_conversions(void **state) {
    qb_time_t t = SENTINEL;
    assert_int_equal(qb_time_from_unix_s(1704164645, &t), QB_OK);
    assert_int_equal(t, 1704164645000000000LL);
    assert_int_equal(qb_time_from_unix_ms(-1, &t), QB_OK);
    assert_int_equal(t, -1000000);
    assert_int_equal(qb_time_from_unix_us(1704164645123456LL, &t), QB_OK);
    assert_int_equal(t, 1704164645123456000LL);
    t = SENTINEL;
    assert_int_equal(qb_time_from_unix_s(9223372037LL, &t), QB_ERR_RANGE);
    assert_int_equal(qb_time_from_unix_ms(INT64_MIN / 1000, &t), QB_ERR_RANGE);
    assert_int_equal(qb_time_from_unix_us(INT64_MAX, &t), QB_ERR_RANGE);
    assert_int_equal(t, SENTINEL);
    assert_int_equal(qb_time_to_unix_s(-1), -1);
    assert_int_equal(qb_time_to_unix_s(1999999999), 1);
    assert_int_equal(qb_time_to_unix_ms(-1), -1);
    assert_int_equal(qb_time_to_unix_ms(INT64_MIN), -9223372036855LL);
}

static void test_floor_trunc_weekday(void **state) {
    qb_time_t t = SENTINEL;
    assert_int_equal(qb_time_trunc_day(1704164645123456789LL, &t), QB_OK);
    assert_int_equal(t, 1704153600000000000LL);
    assert_int_equal(qb_time_trunc_day(-1, &t), QB_OK);
    assert_int_equal(t, -QB_NS_PER_DAY);
    assert_int_equal(qb_time_floor(1704164645123456789LL, 5 * QB_NS_PER_MIN, &t), QB_OK);
    assert_int_equal(t, 1704164400000000000LL); /* 03:00:00 */
    assert_int_equal(qb_time_floor(-1, QB_NS_PER_MIN, &t), QB_OK);
    assert_int_equal(t, -QB_NS_PER_MIN);
    t = SENTINEL;
    assert_int_equal(qb_time_trunc_day(INT64_MIN, &t), QB_ERR_RANGE);
    assert_int_equal(qb_time_floor(5, 0, &t), QB_ERR_INVALID);
    assert_int_equal(qb_time_floor(5, -1, &t), QB_ERR_INVALID);
    assert_int_equal(t, SENTINEL);
    assert_int_equal(qb_time_floor(INT64_MAX, 1, &t), QB_OK);
    assert_int_equal(t, INT64_MAX);
    assert_int_equal(qb_time_weekday(0), 4);                      /* Thursday */
    assert_int_equal(qb_time_weekday(-1), 3);                     /* Wednesday */
    assert_int_equal(qb_time_weekday(1704067200000000000LL), 1);  /* 2024-01-01 Mon */
    assert_int_equal(qb_time_weekday(951782400000000000LL), 2);   /* 2000-02-29 Tue */
    for (int i = 0; i < ITERS; i++) { /* property: floor is the bucket start */
        qb_time_t x = rnd_time(), f;
        int64_t unit = (int64_t)(1 + rnd() % (uint64_t)(7 * QB_NS_PER_DAY));
        assert_int_equal(qb_time_floor(x, unit, &f), QB_OK);
        assert_true(f <= x && x - f < unit);
        assert_int_equal(((f % unit) + unit) % unit, 0);
    }
}

static void test_clocks(void **state) {
    qb_time_t now = qb_time_now();
    assert_true(now > 1704067200000000000LL);  /* after 2024-01-01 */
    assert_true(now < 4102444800000000000LL);  /* before 2100-01-01 */
    int64_t a = qb_time_mono_ns(), b = qb_time_mono_ns();
    assert_true(a > 0 && b >= a);
}

static int group_setup(void **state) {
    rng = qb_test_seed("test_time");
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_format_vectors),
        cmocka_unit_test(test_roundtrip_property),
        cmocka_unit_test(test_offset_roundtrip_property),
        cmocka_unit_test(test_calendar_every_day),
        cmocka_unit_test(test_invalid_inputs),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_unix_conversions),
        cmocka_unit_test(test_floor_trunc_weekday),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests_name("time", tests, group_setup, NULL);
}
