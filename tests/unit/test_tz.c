/* test_tz.c — qb_tz: DST transitions of America/New_York (2024, 2025, 2026
 * from the table, 2040 and 2100 from the POSIX footer past the table end),
 * Europe/London and UTC; local -> UTC in the skipped and the repeated hour
 * under every rule; the footer rule evaluated alone against the file's
 * table for 30 years (north and south); round trips; the cache across
 * threads; a missing zone, bad names, bad POSIX strings and corrupt files
 * (bad magic, truncated data, truncated footer, empty).
 *
 * Expected transition instants are the US rule (2nd Sunday of March, 1st
 * Sunday of November, at 02:00 local) and the EU rule (last Sunday of
 * March / October at 01:00 UTC) worked out by hand; they agree with
 * Python's zoneinfo on the same tzdata. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cal/qb_tz.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[256];

static qb_time_t T(const char *iso) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(iso, strlen(iso), &t), QB_OK);
    return t;
}

static const qb_tz_t *Z(const char *name) {
    const qb_tz_t *tz = NULL;
    OK(qb_tz_get(name, &tz, E, sizeof E));
    return tz;
}

/* Local time at t must be the wall clock `wall` ("YYYY-MM-DD hh:mm:ss"),
 * with the offset, DST flag and abbreviation given. */
static void check_local(const qb_tz_t *tz, const char *utc, const char *wall,
                        int32_t off, int dst, const char *abbr) {
    qb_tz_local_t l;
    assert_int_equal(qb_tz_to_local(tz, T(utc), &l), QB_OK);
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", l.civil.year, l.civil.month,
             l.civil.day, l.civil.hour, l.civil.min, l.civil.sec);
    if (strcmp(buf, wall) != 0 || l.utc_offset != off || l.is_dst != dst ||
        strcmp(l.abbr, abbr) != 0)
        fail_msg("%s at %s: got %s off %d dst %d %s, want %s off %d dst %d %s",
                 qb_tz_name(tz), utc, buf, l.utc_offset, l.is_dst, l.abbr, wall, off, dst,
                 abbr);
}

/* The second before and the instant of a transition. */
static void check_switch(const qb_tz_t *tz, const char *before, const char *at,
                         const char *wall_before, const char *wall_at, int32_t off_before,
                         int32_t off_at, const char *abbr_before, const char *abbr_at) {
    check_local(tz, before, wall_before, off_before, off_before > off_at, abbr_before);
    check_local(tz, at, wall_at, off_at, off_at > off_before, abbr_at);
}

static void test_new_york_table(void **state) {
    const qb_tz_t *ny = Z("America/New_York");
    assert_string_equal(qb_tz_name(ny), "America/New_York");
    assert_string_equal(qb_tz_posix_rule(ny), "EST5EDT,M3.2.0,M11.1.0");
    check_switch(ny, "2024-03-10T06:59:59Z", "2024-03-10T07:00:00Z", "2024-03-10 01:59:59",
                 "2024-03-10 03:00:00", -18000, -14400, "EST", "EDT");
    check_switch(ny, "2024-11-03T05:59:59Z", "2024-11-03T06:00:00Z", "2024-11-03 01:59:59",
                 "2024-11-03 01:00:00", -14400, -18000, "EDT", "EST");
    check_switch(ny, "2025-03-09T06:59:59Z", "2025-03-09T07:00:00Z", "2025-03-09 01:59:59",
                 "2025-03-09 03:00:00", -18000, -14400, "EST", "EDT");
    check_switch(ny, "2025-11-02T05:59:59Z", "2025-11-02T06:00:00Z", "2025-11-02 01:59:59",
                 "2025-11-02 01:00:00", -14400, -18000, "EDT", "EST");
    check_switch(ny, "2026-03-08T06:59:59Z", "2026-03-08T07:00:00Z", "2026-03-08 01:59:59",
                 "2026-03-08 03:00:00", -18000, -14400, "EST", "EDT");
    check_switch(ny, "2026-11-01T05:59:59Z", "2026-11-01T06:00:00Z", "2026-11-01 01:59:59",
                 "2026-11-01 01:00:00", -14400, -18000, "EDT", "EST");
    /* Sub-second precision is carried through. */
    qb_tz_local_t l;
    assert_int_equal(qb_tz_to_local(ny, T("2024-03-10T06:59:59.999999999Z"), &l), QB_OK);
    assert_int_equal(l.civil.nsec, 999999999);
    assert_int_equal(l.utc_offset, -18000);
    /* Old history from the table: US war time (EWT) in 1942-1945, and LMT
     * before 1883 (type 0: -4:56:02). */
    check_local(ny, "1943-06-01T12:00:00Z", "1943-06-01 08:00:00", -14400, 1, "EWT");
    check_local(ny, "1850-01-01T12:00:00Z", "1850-01-01 07:03:58", -17762, 0, "LMT");
}

static void test_new_york_footer(void **state) {
    const qb_tz_t *ny = Z("America/New_York");
    /* Debian's fat files end the table in 2037: these come from the rule. */
    assert_true(qb_tz_transition_count(ny) > 0);
    assert_true(qb_tz_last_transition(ny) < T("2040-01-01T00:00:00Z"));
    check_switch(ny, "2040-03-11T06:59:59Z", "2040-03-11T07:00:00Z", "2040-03-11 01:59:59",
                 "2040-03-11 03:00:00", -18000, -14400, "EST", "EDT");
    check_switch(ny, "2040-11-04T05:59:59Z", "2040-11-04T06:00:00Z", "2040-11-04 01:59:59",
                 "2040-11-04 01:00:00", -14400, -18000, "EDT", "EST");
    check_switch(ny, "2100-03-14T06:59:59Z", "2100-03-14T07:00:00Z", "2100-03-14 01:59:59",
                 "2100-03-14 03:00:00", -18000, -14400, "EST", "EDT");
    check_switch(ny, "2100-11-07T05:59:59Z", "2100-11-07T06:00:00Z", "2100-11-07 01:59:59",
                 "2100-11-07 01:00:00", -14400, -18000, "EDT", "EST");
    /* Around the new year the rule year is the local year. */
    check_local(ny, "2041-01-01T03:00:00Z", "2040-12-31 22:00:00", -18000, 0, "EST");
}

static void test_london_utc(void **state) {
    const qb_tz_t *lon = Z("Europe/London");
    assert_string_equal(qb_tz_posix_rule(lon), "GMT0BST,M3.5.0/1,M10.5.0");
    check_switch(lon, "2024-03-31T00:59:59Z", "2024-03-31T01:00:00Z", "2024-03-31 00:59:59",
                 "2024-03-31 02:00:00", 0, 3600, "GMT", "BST");
    check_switch(lon, "2024-10-27T00:59:59Z", "2024-10-27T01:00:00Z", "2024-10-27 01:59:59",
                 "2024-10-27 01:00:00", 3600, 0, "BST", "GMT");
    check_switch(lon, "2025-03-30T00:59:59Z", "2025-03-30T01:00:00Z", "2025-03-30 00:59:59",
                 "2025-03-30 02:00:00", 0, 3600, "GMT", "BST");
    check_switch(lon, "2040-10-28T00:59:59Z", "2040-10-28T01:00:00Z", "2040-10-28 01:59:59",
                 "2040-10-28 01:00:00", 3600, 0, "BST", "GMT");
    /* 1968-1971: British Standard Time, +1 all year (table, isdst 0). */
    check_local(lon, "1970-01-01T00:00:00Z", "1970-01-01 01:00:00", 3600, 0, "BST");

    const qb_tz_t *utc = Z("UTC");
    assert_string_equal(qb_tz_name(utc), "UTC");
    check_local(utc, "2024-03-10T07:00:00Z", "2024-03-10 07:00:00", 0, 0, "UTC");
    check_local(utc, "2100-07-01T12:34:56Z", "2100-07-01 12:34:56", 0, 0, "UTC");
    check_local(utc, "1900-01-01T00:00:00Z", "1900-01-01 00:00:00", 0, 0, "UTC");
    assert_int_equal(qb_tz_offset_at(utc, T("2024-06-01T00:00:00Z")), 0);
}

static qb_time_t from_local(const qb_tz_t *tz, int y, int mo, int d, int h, int mi,
                            qb_tz_disamb_t rule, qb_err_t want) {
    qb_civil_t c = {y, mo, d, h, mi, 0, 0};
    qb_time_t t = 0;
    ERR(want, qb_tz_from_local(tz, &c, rule, &t, E, sizeof E));
    return t;
}

static void test_from_local(void **state) {
    const qb_tz_t *ny = Z("America/New_York");
    /* Ordinary times. */
    assert_int_equal(from_local(ny, 2024, 1, 2, 9, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2024-01-02T14:30:00Z"));
    assert_int_equal(from_local(ny, 2024, 7, 1, 9, 30, QB_TZ_REJECT, QB_OK),
                     T("2024-07-01T13:30:00Z"));
    /* Skipped: 2024-03-10 02:30 does not exist. */
    assert_int_equal(from_local(ny, 2024, 3, 10, 2, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2024-03-10T07:30:00Z")); /* = 03:30 EDT */
    assert_int_equal(from_local(ny, 2024, 3, 10, 2, 30, QB_TZ_LATER, QB_OK),
                     T("2024-03-10T07:30:00Z"));
    assert_int_equal(from_local(ny, 2024, 3, 10, 2, 30, QB_TZ_EARLIER, QB_OK),
                     T("2024-03-10T06:30:00Z")); /* = 01:30 EST */
    from_local(ny, 2024, 3, 10, 2, 30, QB_TZ_REJECT, QB_ERR_RANGE);
    assert_non_null(strstr(E, "does not exist"));
    /* The edges of the gap: 01:59 EST and 03:00 EDT are real. */
    assert_int_equal(from_local(ny, 2024, 3, 10, 1, 59, QB_TZ_REJECT, QB_OK),
                     T("2024-03-10T06:59:00Z"));
    assert_int_equal(from_local(ny, 2024, 3, 10, 3, 0, QB_TZ_REJECT, QB_OK),
                     T("2024-03-10T07:00:00Z"));
    /* Repeated: 2024-11-03 01:30 happens at 05:30Z (EDT) and 06:30Z (EST). */
    assert_int_equal(from_local(ny, 2024, 11, 3, 1, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2024-11-03T05:30:00Z"));
    assert_int_equal(from_local(ny, 2024, 11, 3, 1, 30, QB_TZ_EARLIER, QB_OK),
                     T("2024-11-03T05:30:00Z"));
    assert_int_equal(from_local(ny, 2024, 11, 3, 1, 30, QB_TZ_LATER, QB_OK),
                     T("2024-11-03T06:30:00Z"));
    from_local(ny, 2024, 11, 3, 1, 30, QB_TZ_REJECT, QB_ERR_RANGE);
    assert_non_null(strstr(E, "ambiguous"));
    assert_int_equal(from_local(ny, 2024, 11, 3, 2, 0, QB_TZ_REJECT, QB_OK),
                     T("2024-11-03T07:00:00Z"));
    /* Past the table: footer. */
    assert_int_equal(from_local(ny, 2040, 3, 11, 2, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2040-03-11T07:30:00Z"));
    assert_int_equal(from_local(ny, 2040, 11, 4, 1, 30, QB_TZ_LATER, QB_OK),
                     T("2040-11-04T06:30:00Z"));
    /* London: 2024-03-31 01:30 skipped, 2024-10-27 01:30 repeated. */
    const qb_tz_t *lon = Z("Europe/London");
    assert_int_equal(from_local(lon, 2024, 3, 31, 1, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2024-03-31T01:30:00Z"));
    assert_int_equal(from_local(lon, 2024, 10, 27, 1, 30, QB_TZ_COMPATIBLE, QB_OK),
                     T("2024-10-27T00:30:00Z"));
    /* Bad fields and rule. */
    from_local(ny, 2024, 2, 30, 9, 30, QB_TZ_COMPATIBLE, QB_ERR_PARSE);
    from_local(ny, 2024, 1, 2, 24, 0, QB_TZ_COMPATIBLE, QB_ERR_PARSE);
    from_local(ny, 2024, 1, 2, 9, 30, (qb_tz_disamb_t)9, QB_ERR_INVALID);
    /* Nanoseconds are kept. */
    qb_civil_t c = {2024, 7, 1, 9, 30, 0, 123};
    qb_time_t t;
    OK(qb_tz_from_local(ny, &c, QB_TZ_COMPATIBLE, &t, E, sizeof E));
    assert_int_equal(t, T("2024-07-01T13:30:00.000000123Z"));
}

/* Every hour of 2008..2037: the footer rule alone must give the same
 * offset as the file's transition table (Debian's "fat" files list every
 * transition up to 2037; with "slim" files this degrades to comparing the
 * rule with itself after the last rule change). */
static void compare_rule_with_table(const char *zone, const char *spec) {
    const qb_tz_t *file = Z(zone);
    qb_tz_t *rule = NULL;
    OK(qb_tz_from_posix(spec, &rule, E, sizeof E));
    assert_int_equal(qb_tz_transition_count(rule), 0);
    qb_time_t t0 = T("2008-01-01T00:00:00Z"), t1 = T("2037-01-01T00:00:00Z");
    int changes = 0;
    int32_t prev = qb_tz_offset_at(file, t0);
    for (qb_time_t t = t0; t < t1; t += QB_NS_PER_HOUR) {
        int32_t a = qb_tz_offset_at(file, t), b = qb_tz_offset_at(rule, t);
        if (a != b) {
            char buf[QB_TIME_STRLEN];
            qb_time_format(t, buf, sizeof buf);
            fail_msg("%s vs \"%s\" at %s: %d != %d", zone, spec, buf, a, b);
        }
        changes += a != prev;
        prev = a;
    }
    assert_int_equal(changes, 2 * 29); /* two switches a year */
    qb_tz_destroy(rule);
}

static void test_posix_rules(void **state) {
    compare_rule_with_table("America/New_York", "EST5EDT,M3.2.0,M11.1.0");
    compare_rule_with_table("Europe/London", "GMT0BST,M3.5.0/1,M10.5.0");
    /* Southern hemisphere: DST across the new year. */
    compare_rule_with_table("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3");

    qb_tz_t *tz = NULL;
    /* Julian-day forms and an explicit DST offset: "J60" is March 1 even in
     * a leap year, "59" (zero-based, Feb 29 counted) is Feb 29 in 2024. */
    OK(qb_tz_from_posix("<+03>-3<+0430>-4:30,J60/0,J300/0", &tz, E, sizeof E));
    assert_int_equal(qb_tz_offset_at(tz, T("2024-02-29T12:00:00Z")), 3 * 3600);
    assert_int_equal(qb_tz_offset_at(tz, T("2024-03-01T12:00:00Z")), 4 * 3600 + 1800);
    qb_tz_destroy(tz);
    OK(qb_tz_from_posix("XXX0YYY,59/0,60/0", &tz, E, sizeof E));
    assert_int_equal(qb_tz_offset_at(tz, T("2024-02-28T12:00:00Z")), 0);
    assert_int_equal(qb_tz_offset_at(tz, T("2024-02-29T12:00:00Z")), 3600);
    assert_int_equal(qb_tz_offset_at(tz, T("2024-03-01T12:00:00Z")), 0);
    qb_tz_destroy(tz);
    /* No DST at all; DST without rules uses the US rules. */
    OK(qb_tz_from_posix("<+0530>-5:30", &tz, E, sizeof E));
    assert_int_equal(qb_tz_offset_at(tz, T("2024-07-01T00:00:00Z")), 19800);
    qb_tz_destroy(tz);
    OK(qb_tz_from_posix("CST6CDT", &tz, E, sizeof E));
    assert_int_equal(qb_tz_offset_at(tz, T("2024-03-10T07:59:59Z")), -21600);
    assert_int_equal(qb_tz_offset_at(tz, T("2024-03-10T08:00:00Z")), -18000);
    qb_tz_destroy(tz);

    static const char *bad[] = {"", "EST", "5EST", "ES5", "EST5EDT,M13.1.0,M11.1.0",
                                "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0",
                                "EST5EDT,M3.2.0", "EST5EDT,J0,J100", "EST5EDT,M3.2.0/200,M11.1.0",
                                "EST25", "EST5x", "<+03-3", "EST5EDT,M3.2.0,M11.1.0,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tz = NULL;
        qb_err_t err = qb_tz_from_posix(bad[i], &tz, E, sizeof E);
        if (err != QB_ERR_PARSE) fail_msg("\"%s\" -> %s", bad[i], qb_err_name(err));
        assert_null(tz);
        assert_non_null(strstr(E, "TZ string"));
    }
}

/* For random instants: to_local, then back with EARLIER and LATER; one of
 * them is the instant (both when the wall time is unique). */
static void test_round_trip(void **state) {
    uint64_t rng = qb_test_seed("test_tz_round_trip");
    const char *zones[] = {"America/New_York", "Europe/London", "Australia/Sydney", "UTC"};
    qb_time_t lo = T("1900-01-01T00:00:00Z"), hi = T("2200-01-01T00:00:00Z");
    for (size_t z = 0; z < 4; z++) {
        const qb_tz_t *tz = Z(zones[z]);
        for (int i = 0; i < 20000; i++) {
            qb_time_t t = (qb_time_t)((uint64_t)lo + qb_test_rand(&rng) % ((uint64_t)hi - (uint64_t)lo));
            qb_tz_local_t l;
            qb_time_t e = 0, la = 0;
            assert_int_equal(qb_tz_to_local(tz, t, &l), QB_OK);
            OK(qb_tz_from_local(tz, &l.civil, QB_TZ_EARLIER, &e, E, sizeof E));
            OK(qb_tz_from_local(tz, &l.civil, QB_TZ_LATER, &la, E, sizeof E));
            if (t != e && t != la) fail_msg("%s: round trip of %lld", zones[z], (long long)t);
        }
    }
}

static void *thread_get(void *arg) {
    const qb_tz_t *tz = NULL;
    char err[128];
    for (int i = 0; i < 200; i++) {
        if (qb_tz_get((const char *)arg, &tz, err, sizeof err) != QB_OK) return NULL;
        if (qb_tz_offset_at(tz, 1720000000LL * QB_NS_PER_SEC) == 99) return NULL;
    }
    return (void *)tz;
}

static void test_cache_threads(void **state) {
    pthread_t th[6];
    const char *names[] = {"Asia/Tokyo", "Europe/Paris"};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_get, (void *)names[i % 2]), 0);
    void *got[6];
    for (int i = 0; i < 6; i++) assert_int_equal(pthread_join(th[i], &got[i]), 0);
    for (int i = 0; i < 6; i++) {
        assert_non_null(got[i]);
        assert_ptr_equal(got[i], got[i % 2]);
    }
    assert_ptr_equal(Z("Asia/Tokyo"), got[0]);
    assert_int_equal(qb_tz_offset_at(Z("Asia/Tokyo"), T("2024-07-01T00:00:00Z")), 9 * 3600);
    assert_ptr_equal(Z("America/New_York"), Z("America/New_York"));
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_errors(void **state) {
    const qb_tz_t *tz = NULL;
    ERR(QB_ERR_NOT_FOUND, qb_tz_get("Nowhere/Atlantis", &tz, E, sizeof E));
    assert_non_null(strstr(E, "/usr/share/zoneinfo/Nowhere/Atlantis"));
    assert_non_null(strstr(E, "tzdata"));
    static const char *bad_names[] = {"", "../etc/passwd", "/etc/passwd", "America/",
                                      "America//New_York", "America/New York",
                                      "America/./New_York"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        ERR(QB_ERR_INVALID, qb_tz_get(bad_names[i], &tz, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_tz_get(NULL, &tz, E, sizeof E));
    /* A directory is not a zone. */
    qb_err_t err = qb_tz_get("America", &tz, E, sizeof E);
    assert_true(err == QB_ERR_IO || err == QB_ERR_PARSE);

    /* Corrupt files: bad magic, truncated, a transition to a missing type. */
    FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
    assert_non_null(f);
    static unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 1000);
    char path[64];
    snprintf(path, sizeof path, "/tmp/qb_test_tz_%d", (int)getpid());
    qb_tz_t *z = NULL;
    write_file(path, buf, len); /* intact copy loads */
    OK(qb_tz_load_file(path, "copy", &z, E, sizeof E));
    assert_int_equal(qb_tz_offset_at(z, T("2024-07-01T00:00:00Z")), -14400);
    qb_tz_destroy(z);
    write_file(path, buf, 600);
    ERR(QB_ERR_PARSE, qb_tz_load_file(path, "cut", &z, E, sizeof E));
    assert_non_null(strstr(E, "truncated"));
    write_file(path, buf, len - 3); /* footer cut */
    ERR(QB_ERR_PARSE, qb_tz_load_file(path, "cut", &z, E, sizeof E));
    buf[0] = 'X';
    write_file(path, buf, len);
    ERR(QB_ERR_PARSE, qb_tz_load_file(path, "magic", &z, E, sizeof E));
    assert_non_null(strstr(E, "not a TZif"));
    write_file(path, "", 0);
    ERR(QB_ERR_PARSE, qb_tz_load_file(path, "empty", &z, E, sizeof E));
    unlink(path);
    ERR(QB_ERR_NOT_FOUND, qb_tz_load_file(path, "gone", &z, E, sizeof E));
    qb_tz_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_york_table),
        cmocka_unit_test(test_new_york_footer),
        cmocka_unit_test(test_london_utc),
        cmocka_unit_test(test_from_local),
        cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
