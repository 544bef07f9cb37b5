/* test_cal.c — qb_cal: the NYSE holidays of 2024, 2025 and 2026 exactly as
 * the exchange publishes them (written out by hand below, not derived from
 * the rules under test), early closes 2024-2026, observed-holiday edge
 * cases of other years, session times in UTC across the DST switch weeks,
 * sessions per year, next/previous session, expected bar times per
 * timeframe, gaps on a hand-built series, and the 24x7 calendar. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal/qb_cal.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[256];

static qb_time_t T(const char *iso) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(iso, strlen(iso), &t), QB_OK);
    return t;
}

static qb_cal_date_t D(const char *s) {
    qb_cal_date_t d = 0;
    assert_int_equal(qb_cal_date_parse(s, &d), QB_OK);
    return d;
}

static const qb_cal_t *nyse(void) {
    const qb_cal_t *c = NULL;
    OK(qb_cal_get("XNYS", &c, E, sizeof E));
    return c;
}

static const qb_cal_t *crypto(void) {
    const qb_cal_t *c = NULL;
    OK(qb_cal_get("24x7", &c, E, sizeof E));
    return c;
}

static void assert_time(qb_time_t got, const char *want) {
    char buf[QB_TIME_STRLEN];
    qb_time_format(got, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* ---- published NYSE calendar -------------------------------------------- */

/* Full closures on weekdays, as NYSE publishes them. */
static const char *holidays_2024[] = {"2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29",
                                      "2024-05-27", "2024-06-19", "2024-07-04", "2024-09-02",
                                      "2024-11-28", "2024-12-25", NULL};
static const char *holidays_2025[] = {"2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17",
                                      "2025-04-18", "2025-05-26", "2025-06-19", "2025-07-04",
                                      "2025-09-01", "2025-11-27", "2025-12-25", NULL};
static const char *holidays_2026[] = {"2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03",
                                      "2026-05-25", "2026-06-19", "2026-07-03", "2026-09-07",
                                      "2026-11-26", "2026-12-25", NULL};
/* Early closes (13:00 New York). */
static const char *early_2024[] = {"2024-07-03", "2024-11-29", "2024-12-24", NULL};
static const char *early_2025[] = {"2025-07-03", "2025-11-28", "2025-12-24", NULL};
static const char *early_2026[] = {"2026-11-27", "2026-12-24", NULL};

static int in_list(const char **list, qb_cal_date_t d) {
    for (; *list; list++)
        if (D(*list) == d) return 1;
    return 0;
}

static void check_year(int year, const char **holidays, const char **early, size_t nsessions) {
    const qb_cal_t *c = nyse();
    char buf[16];
    size_t sessions = 0;
    for (qb_cal_date_t d = qb_cal_date(year, 1, 1); d <= qb_cal_date(year, 12, 31); d++) {
        int wd = qb_cal_date_weekday(d);
        int want = wd != 0 && wd != 6 && !in_list(holidays, d);
        if (qb_cal_is_session(c, d) != want)
            fail_msg("%s: is_session %d, published %d", qb_cal_date_format(d, buf, sizeof buf),
                     !want, want);
        const char *name = qb_cal_holiday_name(c, d);
        if ((name != NULL) != (wd != 0 && wd != 6 && !want))
            fail_msg("%s: holiday name %s", qb_cal_date_format(d, buf, sizeof buf),
                     name ? name : "NULL");
        qb_cal_session_t s;
        if (!want) {
            assert_int_equal(qb_cal_session(c, d, &s), QB_ERR_NOT_FOUND);
            continue;
        }
        sessions++;
        assert_int_equal(qb_cal_session(c, d, &s), QB_OK);
        assert_int_equal(s.date, d);
        int is_early = in_list(early, d);
        if (s.early_close != is_early)
            fail_msg("%s: early_close %d, published %d", qb_cal_date_format(d, buf, sizeof buf),
                     s.early_close, is_early);
        /* 09:30 local and 16:00 (or 13:00) local: 6.5 h (3.5 h) apart. */
        assert_int_equal(s.close - s.open, (is_early ? 210 : 390) * QB_NS_PER_MIN);
        qb_tz_local_t l;
        assert_int_equal(qb_tz_to_local(qb_cal_tz(c), s.open, &l), QB_OK);
        assert_int_equal(l.civil.hour * 60 + l.civil.min, 9 * 60 + 30);
        assert_int_equal(qb_cal_date(l.civil.year, l.civil.month, l.civil.day), d);
    }
    for (const char **e = early; *e; e++) assert_true(qb_cal_is_session(c, D(*e)));
    assert_int_equal(sessions, nsessions);
    assert_int_equal(qb_cal_sessions(c, qb_cal_date(year, 1, 1), qb_cal_date(year, 12, 31),
                                     NULL, 0),
                     nsessions);
}

static void test_nyse_2024(void **state) { check_year(2024, holidays_2024, early_2024, 252); }
static void test_nyse_2025(void **state) { check_year(2025, holidays_2025, early_2025, 250); }
static void test_nyse_2026(void **state) { check_year(2026, holidays_2026, early_2026, 251); }

static void test_holiday_names(void **state) {
    const qb_cal_t *c = nyse();
    static const struct { const char *date, *name; } v[] = {
        {"2024-03-29", "Good Friday"},
        {"2024-01-15", "Martin Luther King Jr. Day"},
        {"2024-02-19", "Washington's Birthday"},
        {"2024-11-28", "Thanksgiving Day"},
        {"2025-01-09", "National Day of Mourning for President Carter"},
        {"2026-07-03", "Independence Day (observed)"},
        {"2021-12-24", "Christmas Day (observed)"}, /* Christmas on a Saturday */
        {"2022-12-26", "Christmas Day (observed)"}, /* on a Sunday */
        {"2023-01-02", "New Year's Day (observed)"}, /* Jan 1 2023 a Sunday */
        {"2027-06-18", "Juneteenth National Independence Day (observed)"},
        {"2022-06-20", "Juneteenth National Independence Day (observed)"},
        {"2021-07-05", "Independence Day (observed)"},
        {"2018-12-05", "National Day of Mourning for President George H. W. Bush"},
        {"2012-10-29", "Hurricane Sandy"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *got = qb_cal_holiday_name(c, D(v[i].date));
        if (!got || strcmp(got, v[i].name) != 0)
            fail_msg("%s: %s, want %s", v[i].date, got ? got : "NULL", v[i].name);
        assert_false(qb_cal_is_session(c, D(v[i].date)));
    }
    /* Sessions the rules must leave open. */
    static const char *open[] = {
        "2021-12-31", /* New Year's Day 2022 is a Saturday: not observed on Dec 31 */
        "2021-06-18", /* before Juneteenth became an NYSE holiday (2022) */
        "2015-07-02", /* July 4 on a Saturday: July 3 closed, July 2 a full day */
        "2022-07-01", /* July 4 on a Monday: the Friday before is a full day */
        "2023-07-03", /* early close, but a session */
        "2022-12-23", /* Christmas on a Sunday: Friday the 23rd is a full day */
    };
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        if (!qb_cal_is_session(c, D(open[i]))) fail_msg("%s should be a session", open[i]);
        assert_null(qb_cal_holiday_name(c, D(open[i])));
    }
    qb_cal_session_t s;
    OK(qb_cal_session(c, D("2015-07-02"), &s));
    assert_false(s.early_close);
    OK(qb_cal_session(c, D("2022-07-01"), &s));
    assert_false(s.early_close);
    OK(qb_cal_session(c, D("2023-07-03"), &s));
    assert_true(s.early_close);
    OK(qb_cal_session(c, D("2022-12-23"), &s));
    assert_false(s.early_close);
    OK(qb_cal_session(c, D("2021-12-31"), &s));
    assert_false(s.early_close);
    /* Weekends have no holiday name. */
    assert_null(qb_cal_holiday_name(c, D("2024-03-30")));
    assert_false(qb_cal_is_session(c, D("2024-03-30")));
}

static void test_easter(void **state) {
    static const struct { int y; const char *easter; } v[] = {
        {1818, "1818-03-22"}, /* the earliest possible date */
        {1943, "1943-04-25"}, /* the latest possible date */
        {2000, "2000-04-23"}, {2008, "2008-03-23"}, {2011, "2011-04-24"},
        {2019, "2019-04-21"}, {2024, "2024-03-31"}, {2025, "2025-04-20"},
        {2026, "2026-04-05"}, {2027, "2027-03-28"}, {2038, "2038-04-25"},
    };
    char buf[16];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_string_equal(qb_cal_date_format(qb_cal_easter(v[i].y), buf, sizeof buf),
                            v[i].easter);
    /* Always a Sunday between March 22 and April 25. */
    for (int y = 1583; y < 2300; y++) {
        qb_cal_date_t e = qb_cal_easter(y);
        assert_int_equal(qb_cal_date_weekday(e), 0);
        assert_true(e >= qb_cal_date(y, 3, 22) && e <= qb_cal_date(y, 4, 25));
    }
}

/* ---- session times -------------------------------------------------------- */

static void check_session(const char *date, const char *open, const char *close, int early) {
    qb_cal_session_t s;
    OK(qb_cal_session(nyse(), D(date), &s));
    assert_time(s.open, open);
    assert_time(s.close, close);
    assert_int_equal(s.early_close, early);
}

static void test_session_times_dst(void **state) {
    /* DST starts Sunday 2024-03-10: EST (UTC-5) before, EDT (UTC-4) after. */
    check_session("2024-03-08", "2024-03-08T14:30:00Z", "2024-03-08T21:00:00Z", 0);
    check_session("2024-03-11", "2024-03-11T13:30:00Z", "2024-03-11T20:00:00Z", 0);
    /* DST ends Sunday 2024-11-03. */
    check_session("2024-11-01", "2024-11-01T13:30:00Z", "2024-11-01T20:00:00Z", 0);
    check_session("2024-11-04", "2024-11-04T14:30:00Z", "2024-11-04T21:00:00Z", 0);
    check_session("2025-03-07", "2025-03-07T14:30:00Z", "2025-03-07T21:00:00Z", 0);
    check_session("2025-03-10", "2025-03-10T13:30:00Z", "2025-03-10T20:00:00Z", 0);
    check_session("2025-10-31", "2025-10-31T13:30:00Z", "2025-10-31T20:00:00Z", 0);
    check_session("2025-11-03", "2025-11-03T14:30:00Z", "2025-11-03T21:00:00Z", 0);
    check_session("2026-03-06", "2026-03-06T14:30:00Z", "2026-03-06T21:00:00Z", 0);
    check_session("2026-03-09", "2026-03-09T13:30:00Z", "2026-03-09T20:00:00Z", 0);
    check_session("2026-10-30", "2026-10-30T13:30:00Z", "2026-10-30T20:00:00Z", 0);
    check_session("2026-11-02", "2026-11-02T14:30:00Z", "2026-11-02T21:00:00Z", 0);
    /* Early closes: 13:00 EDT = 17:00Z in July, 13:00 EST = 18:00Z. */
    check_session("2024-07-03", "2024-07-03T13:30:00Z", "2024-07-03T17:00:00Z", 1);
    check_session("2024-11-29", "2024-11-29T14:30:00Z", "2024-11-29T18:00:00Z", 1);
    check_session("2024-12-24", "2024-12-24T14:30:00Z", "2024-12-24T18:00:00Z", 1);
    check_session("2026-12-24", "2026-12-24T14:30:00Z", "2026-12-24T18:00:00Z", 1);

    const qb_cal_t *c = nyse();
    qb_cal_session_t s;
    OK(qb_cal_session_at(c, T("2024-03-11T13:30:00Z"), &s));
    assert_int_equal(s.date, D("2024-03-11"));
    OK(qb_cal_session_at(c, T("2024-03-11T19:59:59.999999999Z"), &s));
    assert_int_equal(qb_cal_session_at(c, T("2024-03-11T13:29:59Z"), &s), QB_ERR_NOT_FOUND);
    assert_int_equal(qb_cal_session_at(c, T("2024-03-11T20:00:00Z"), &s), QB_ERR_NOT_FOUND);
    assert_int_equal(qb_cal_session_at(c, T("2024-03-29T15:00:00Z"), &s), QB_ERR_NOT_FOUND);
    /* The local date: 03:00Z on the 11th is still the 10th in New York. */
    assert_int_equal(qb_cal_date_of(c, T("2024-03-11T03:00:00Z")), D("2024-03-10"));
    assert_int_equal(qb_cal_date_of(c, T("2024-03-11T04:00:00Z")), D("2024-03-11"));
    assert_int_equal(qb_cal_date_of(c, T("2024-01-02T04:59:59Z")), D("2024-01-01"));
}

static void test_next_prev_iter(void **state) {
    const qb_cal_t *c = nyse();
    qb_cal_session_t s;
    OK(qb_cal_next_session(c, D("2024-03-28"), &s)); /* over Good Friday + weekend */
    assert_int_equal(s.date, D("2024-04-01"));
    OK(qb_cal_prev_session(c, D("2024-04-01"), &s));
    assert_int_equal(s.date, D("2024-03-28"));
    OK(qb_cal_next_session(c, D("2025-01-08"), &s)); /* over the Carter closure */
    assert_int_equal(s.date, D("2025-01-10"));
    OK(qb_cal_prev_session(c, D("2024-01-02"), &s)); /* over New Year's Day */
    assert_int_equal(s.date, D("2023-12-29"));
    OK(qb_cal_next_session(c, D("2024-03-30"), &s)); /* from a non-session day */
    assert_int_equal(s.date, D("2024-04-01"));

    /* The iterator and the array agree; the array truncates like snprintf. */
    qb_cal_session_t arr[40];
    size_t n = qb_cal_sessions(c, D("2024-11-01"), D("2024-12-31"), arr, 40);
    assert_int_equal(n, 41); /* Nov: 20 (Thanksgiving), Dec: 21 (Christmas) */
    qb_cal_iter_t it = qb_cal_iter(c, D("2024-11-01"), D("2024-12-31"));
    size_t k = 0;
    while (qb_cal_iter_next(&it, &s)) {
        if (k < 40) {
            assert_int_equal(s.date, arr[k].date);
            assert_int_equal(s.open, arr[k].open);
            assert_int_equal(s.close, arr[k].close);
        }
        k++;
    }
    assert_int_equal(k, 41);
    assert_int_equal(arr[0].date, D("2024-11-01"));
    assert_int_equal(qb_cal_sessions(c, D("2024-03-29"), D("2024-03-31"), NULL, 0), 0);
    assert_int_equal(qb_cal_sessions(c, D("2024-03-05"), D("2024-03-04"), NULL, 0), 0);
}

/* ---- bars ------------------------------------------------------------------ */

static size_t bars(const qb_cal_t *c, int64_t tf, const char *from, const char *to,
                   qb_time_t *out, size_t cap) {
    size_t total = 0;
    OK(qb_cal_bars(c, tf, T(from), T(to), out, cap, &total, E, sizeof E));
    return total;
}

static void test_expected_bars(void **state) {
    const qb_cal_t *c = nyse();
    qb_time_t b[16];
    /* 1h on a full day (EST): 09:30 .. 15:30 local, the last one truncated. */
    assert_int_equal(bars(c, QB_NS_PER_HOUR, "2024-03-08", "2024-03-09", b, 16), 7);
    assert_time(b[0], "2024-03-08T14:30:00Z");
    assert_time(b[6], "2024-03-08T20:30:00Z");
    /* 1h on an early close: 09:30, 10:30, 11:30, 12:30 (12:30-13:00). */
    assert_int_equal(bars(c, QB_NS_PER_HOUR, "2024-11-29", "2024-11-30", b, 16), 4);
    assert_time(b[3], "2024-11-29T17:30:00Z");
    /* 1m: 390 a day, 210 on an early close; a whole year. */
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-03-11", "2024-03-12", NULL, 0), 390);
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-12-24", "2024-12-25", NULL, 0), 210);
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-01-01", "2025-01-01", NULL, 0),
                     249 * 390 + 3 * 210);
    assert_int_equal(bars(c, 5 * QB_NS_PER_MIN, "2024-01-01", "2025-01-01", NULL, 0),
                     249 * 78 + 3 * 42);
    /* The range cuts bars by open time: [14:45Z, 16:30Z) holds 15:30Z only
     * of the 1h grid, and 14:45..16:29 of the 1m grid. */
    assert_int_equal(bars(c, QB_NS_PER_HOUR, "2024-03-08T14:45:00Z", "2024-03-08T16:30:00Z",
                          b, 16),
                     1);
    assert_time(b[0], "2024-03-08T15:30:00Z");
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-03-08T14:45:00Z", "2024-03-08T16:30:00Z",
                          NULL, 0),
                     105);
    /* 1d: one bar per session, stamped 00:00 UTC; Good Friday week. */
    assert_int_equal(bars(c, QB_NS_PER_DAY, "2024-03-25", "2024-04-01", b, 16), 4);
    assert_time(b[0], "2024-03-25T00:00:00Z");
    assert_time(b[3], "2024-03-28T00:00:00Z");
    assert_int_equal(bars(c, QB_NS_PER_DAY, "2024-01-01", "2025-01-01", NULL, 0), 252);
    /* Truncation like snprintf. */
    assert_int_equal(bars(c, QB_NS_PER_HOUR, "2024-03-04", "2024-03-09", b, 3), 35);
    assert_time(b[2], "2024-03-04T16:30:00Z");
    /* Errors. */
    size_t total;
    ERR(QB_ERR_INVALID, qb_cal_bars(c, 7 * QB_NS_PER_DAY, 0, T("2024-01-01"), NULL, 0, &total,
                                    E, sizeof E));
    ERR(QB_ERR_INVALID, qb_cal_bars(c, 0, 0, 1, NULL, 0, &total, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_cal_bars(c, QB_NS_PER_MIN, 10, 5, NULL, 0, &total, E, sizeof E));
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-03-08", "2024-03-08", NULL, 0), 0);
    /* The ends of qb_time_t: ranges are clipped, dates refused. */
    qb_cal_session_t s;
    assert_int_equal(qb_cal_session(c, qb_cal_date(2262, 1, 2), &s), QB_ERR_RANGE);
    assert_int_equal(qb_cal_session(c, qb_cal_date(1677, 12, 31), &s), QB_ERR_RANGE);
    OK(qb_cal_session(c, qb_cal_date(2261, 12, 30), &s)); /* a Monday */
    OK(qb_cal_bars(c, QB_NS_PER_DAY, T("2261-12-01"), INT64_MAX, NULL, 0, &total, E, sizeof E));
    assert_int_equal(total, 20); /* Dec 1..30 2261: 21 weekdays, Christmas a Wednesday */
    OK(qb_cal_bars(c, QB_NS_PER_HOUR, INT64_MIN, T("1678-01-05"), NULL, 0, &total, E, sizeof E));
    assert_int_equal(total, 7 * 2); /* from Jan 2 (a Sunday): Mon 3, Tue 4 */
    OK(qb_cal_bars(crypto(), QB_NS_PER_DAY, T("2261-12-29"), INT64_MAX, NULL, 0, &total, E,
                   sizeof E));
    assert_int_equal(total, 2); /* Dec 29 and 30 */
}

static void test_crypto(void **state) {
    const qb_cal_t *c = crypto();
    const qb_cal_t *c2 = NULL;
    OK(qb_cal_get("crypto", &c2, E, sizeof E));
    assert_ptr_equal(c, c2);
    assert_string_equal(qb_cal_name(c), "24x7");
    assert_true(qb_cal_is_continuous(c));
    for (qb_cal_date_t d = D("2024-12-20"); d < D("2025-01-05"); d++) {
        assert_true(qb_cal_is_session(c, d));
        assert_null(qb_cal_holiday_name(c, d));
    }
    qb_cal_session_t s;
    OK(qb_cal_session(c, D("2024-12-25"), &s));
    assert_time(s.open, "2024-12-25T00:00:00Z");
    assert_time(s.close, "2024-12-26T00:00:00Z");
    OK(qb_cal_next_session(c, D("2024-12-31"), &s));
    assert_int_equal(s.date, D("2025-01-01"));
    assert_int_equal(qb_cal_sessions(c, D("2024-01-01"), D("2024-12-31"), NULL, 0), 366);
    qb_time_t b[30];
    assert_int_equal(bars(c, QB_NS_PER_HOUR, "2024-03-10", "2024-03-11", b, 30), 24);
    assert_time(b[0], "2024-03-10T00:00:00Z");
    assert_time(b[23], "2024-03-10T23:00:00Z");
    assert_int_equal(bars(c, QB_NS_PER_MIN, "2024-01-01", "2025-01-01", NULL, 0), 366 * 1440);
    assert_int_equal(bars(c, QB_NS_PER_DAY, "2024-01-01T12:00:00Z", "2024-01-08", b, 30), 6);
    assert_time(b[0], "2024-01-02T00:00:00Z");
    /* Plain UTC alignment: a 4h bar grid from the epoch. */
    assert_int_equal(bars(c, 4 * QB_NS_PER_HOUR, "2024-01-01T01:00:00Z", "2024-01-02", b, 30), 5);
    assert_time(b[0], "2024-01-01T04:00:00Z");
}

/* ---- gaps ------------------------------------------------------------------ */

static void test_gaps_hand_built(void **state) {
    const qb_cal_t *c = nyse();
    /* 1h bars, [2024-03-28, 2024-04-03): Thu Mar 28 (EDT, 13:30Z..19:30Z),
     * Good Friday, the weekend, Mon Apr 1, Tue Apr 2: 21 expected bars.
     * Stored: Mar 28 without 15:30Z and 16:30Z and without the last bar
     * 19:30Z; Apr 1 without the first bar 13:30Z; nothing of Apr 2; plus
     * two times that are not expected bars (pre-market, Good Friday). */
    const char *stored[] = {
        "2024-03-28T12:00:00Z", /* pre-market: ignored */
        "2024-03-28T13:30:00Z", "2024-03-28T14:30:00Z", "2024-03-28T17:30:00Z",
        "2024-03-28T18:30:00Z",
        "2024-03-29T14:30:00Z", /* Good Friday: ignored */
        "2024-04-01T14:30:00Z", "2024-04-01T15:30:00Z", "2024-04-01T16:30:00Z",
        "2024-04-01T17:30:00Z", "2024-04-01T18:30:00Z", "2024-04-01T19:30:00Z",
        "2024-04-01T19:30:00Z", /* a duplicate is harmless */
    };
    size_t n = sizeof stored / sizeof stored[0];
    qb_time_t have[16];
    for (size_t i = 0; i < n; i++) have[i] = T(stored[i]);
    qb_cal_gap_t g[8];
    size_t total = 0, missing = 0;
    OK(qb_cal_gaps(c, QB_NS_PER_HOUR, have, n, T("2024-03-28"), T("2024-04-03"), g, 8, &total,
                   &missing, E, sizeof E));
    assert_int_equal(total, 3);
    assert_int_equal(missing, 2 + 2 + 7);
    assert_time(g[0].from, "2024-03-28T15:30:00Z");
    assert_time(g[0].to, "2024-03-28T17:30:00Z");
    assert_int_equal(g[0].nbars, 2);
    /* The truncated last bar of Thursday and Monday's first bar merge over
     * the holiday and the weekend into one span. */
    assert_time(g[1].from, "2024-03-28T19:30:00Z");
    assert_time(g[1].to, "2024-04-01T14:30:00Z");
    assert_int_equal(g[1].nbars, 2);
    assert_time(g[2].from, "2024-04-02T13:30:00Z");
    assert_time(g[2].to, "2024-04-02T20:00:00Z"); /* the session close */
    assert_int_equal(g[2].nbars, 7);

    /* cap smaller than the number of gaps: the first ones, total exact. */
    qb_cal_gap_t one;
    OK(qb_cal_gaps(c, QB_NS_PER_HOUR, have, n, T("2024-03-28"), T("2024-04-03"), &one, 1,
                   &total, NULL, E, sizeof E));
    assert_int_equal(total, 3);
    assert_time(one.from, "2024-03-28T15:30:00Z");

    /* Nothing stored: one gap over everything; all stored: none. */
    OK(qb_cal_gaps(c, QB_NS_PER_HOUR, NULL, 0, T("2024-03-28"), T("2024-04-03"), g, 8, &total,
                   &missing, E, sizeof E));
    assert_int_equal(total, 1);
    assert_int_equal(missing, 21);
    assert_time(g[0].from, "2024-03-28T13:30:00Z");
    assert_time(g[0].to, "2024-04-02T20:00:00Z");
    qb_time_t all[21];
    size_t nall = 0;
    OK(qb_cal_bars(c, QB_NS_PER_HOUR, T("2024-03-28"), T("2024-04-03"), all, 21, &nall, E,
                   sizeof E));
    assert_int_equal(nall, 21);
    OK(qb_cal_gaps(c, QB_NS_PER_HOUR, all, nall, T("2024-03-28"), T("2024-04-03"), g, 8, &total,
                   &missing, E, sizeof E));
    assert_int_equal(total, 0);
    assert_int_equal(missing, 0);

    /* Unsorted input is refused. */
    qb_time_t bad[2] = {T("2024-04-01T14:30:00Z"), T("2024-04-01T13:30:00Z")};
    ERR(QB_ERR_INVALID, qb_cal_gaps(c, QB_NS_PER_HOUR, bad, 2, T("2024-03-28"), T("2024-04-03"),
                                    g, 8, &total, NULL, E, sizeof E));
    assert_non_null(strstr(E, "sorted"));
}

static void test_gaps_daily(void **state) {
    const qb_cal_t *c = nyse();
    /* January 2024 daily bars (21 sessions: Jan 1 and MLK Jan 15 closed),
     * stored without Jan 2 and without Jan 16-17. */
    qb_time_t have[32];
    size_t n = 0;
    qb_cal_iter_t it = qb_cal_iter(c, D("2024-01-01"), D("2024-01-31"));
    qb_cal_session_t s;
    while (qb_cal_iter_next(&it, &s))
        if (s.date != D("2024-01-02") && s.date != D("2024-01-16") && s.date != D("2024-01-17"))
            have[n++] = qb_cal_date_to_time(s.date);
    assert_int_equal(n, 18);
    qb_cal_gap_t g[4];
    size_t total, missing;
    OK(qb_cal_gaps(c, QB_NS_PER_DAY, have, n, T("2024-01-01"), T("2024-02-01"), g, 4, &total,
                   &missing, E, sizeof E));
    assert_int_equal(total, 2);
    assert_int_equal(missing, 3);
    assert_time(g[0].from, "2024-01-02T00:00:00Z");
    assert_time(g[0].to, "2024-01-03T00:00:00Z");
    assert_time(g[1].from, "2024-01-16T00:00:00Z");
    assert_time(g[1].to, "2024-01-18T00:00:00Z");
    assert_int_equal(g[1].nbars, 2);

    /* 24x7 1m: a day with minutes 00:10..00:14 and 23:59 missing. */
    const qb_cal_t *cc = crypto();
    qb_time_t *mins = malloc(1440 * sizeof *mins);
    assert_non_null(mins);
    size_t m = 0;
    qb_time_t day = T("2024-02-29");
    for (int i = 0; i < 1440; i++)
        if (!(i >= 10 && i < 15) && i != 1439) mins[m++] = day + i * QB_NS_PER_MIN;
    OK(qb_cal_gaps(cc, QB_NS_PER_MIN, mins, m, day, day + QB_NS_PER_DAY, g, 4, &total,
                   &missing, E, sizeof E));
    assert_int_equal(total, 2);
    assert_int_equal(missing, 6);
    assert_time(g[0].from, "2024-02-29T00:10:00Z");
    assert_time(g[0].to, "2024-02-29T00:15:00Z");
    assert_time(g[1].from, "2024-02-29T23:59:00Z");
    assert_time(g[1].to, "2024-03-01T00:00:00Z");
    free(mins);
}

static void test_dates_and_lookup(void **state) {
    char buf[16];
    assert_int_equal(D("1970-01-01"), 0);
    assert_int_equal(D("2024-03-08"), 19790);
    assert_string_equal(qb_cal_date_format(19790, buf, sizeof buf), "2024-03-08");
    assert_string_equal(qb_cal_date_format(-1, buf, sizeof buf), "1969-12-31");
    assert_int_equal(qb_cal_date_weekday(D("2024-03-08")), 5);
    assert_int_equal(qb_cal_date_weekday(D("1969-12-28")), 0);
    assert_int_equal(qb_cal_date_to_time(D("2024-03-08")), T("2024-03-08T00:00:00Z"));
    qb_cal_date_t d;
    assert_int_equal(qb_cal_date_parse("2024-02-30", &d), QB_ERR_PARSE);
    assert_int_equal(qb_cal_date_parse("2024-03-08T00:00:00Z", &d), QB_ERR_PARSE);
    assert_int_equal(qb_cal_date_parse("", &d), QB_ERR_PARSE);

    const qb_cal_t *c = NULL, *c2 = NULL;
    OK(qb_cal_get("NYSE", &c, E, sizeof E));
    OK(qb_cal_get("xnys", &c2, E, sizeof E));
    assert_ptr_equal(c, c2);
    assert_string_equal(qb_cal_name(c), "XNYS");
    assert_string_equal(qb_tz_name(qb_cal_tz(c)), "America/New_York");
    assert_false(qb_cal_is_continuous(c));
    ERR(QB_ERR_NOT_FOUND, qb_cal_get("XLON", &c, E, sizeof E));
    assert_non_null(strstr(E, "XLON"));
    ERR(QB_ERR_NOT_FOUND, qb_cal_get(NULL, &c, E, sizeof E));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nyse_2024),
        cmocka_unit_test(test_nyse_2025),
        cmocka_unit_test(test_nyse_2026),
        cmocka_unit_test(test_holiday_names),
        cmocka_unit_test(test_easter),
        cmocka_unit_test(test_session_times_dst),
        cmocka_unit_test(test_next_prev_iter),
        cmocka_unit_test(test_expected_bars),
        cmocka_unit_test(test_crypto),
        cmocka_unit_test(test_gaps_hand_built),
        cmocka_unit_test(test_gaps_daily),
        cmocka_unit_test(test_dates_and_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
