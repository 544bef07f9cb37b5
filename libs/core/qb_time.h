/* qb_time.h — UTC instants as int64 nanoseconds since the Unix epoch.
 *
 * Why: every Quantbus message stamps times as "ns since epoch UTC" (see
 * proto/qb/v1/common.proto), bars are bucketed by UTC day and minute, and
 * vendor feeds send ISO-8601 text. This module converts between the two
 * without libc's timezone state (no TZ, no localtime, no mktime): the
 * calendar arithmetic is the proleptic Gregorian calendar computed directly
 * (days-from-civil and civil-from-days after Howard Hinnant's algorithms),
 * so it is thread-safe, locale-free and correct before 1970.
 *
 * Range: an int64 of nanoseconds spans 1677-09-21T00:12:43.145224192Z ..
 * 2262-04-11T23:47:16.854775807Z. Parsing accepts instants whose UTC year is
 * 1678..2261, the whole years inside that span; qb_time_format prints any
 * qb_time_t (so text for the first and last partial years formats but does
 * not parse back: QB_ERR_RANGE).
 *
 * Leap seconds do not exist here (like Unix time): ":60" is rejected.
 *
 * Ownership: none; plain values and caller-owned buffers. Pointer arguments
 * must not be NULL (errstr may be NULL). */
#ifndef QB_TIME_H
#define QB_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

typedef int64_t qb_time_t; /* ns since 1970-01-01T00:00:00Z */

#define QB_NS_PER_US 1000LL
#define QB_NS_PER_MS 1000000LL
#define QB_NS_PER_SEC 1000000000LL
#define QB_NS_PER_MIN (60 * QB_NS_PER_SEC)
#define QB_NS_PER_HOUR (3600 * QB_NS_PER_SEC)
#define QB_NS_PER_DAY (86400 * QB_NS_PER_SEC)

#define QB_TIME_YEAR_MIN 1678
#define QB_TIME_YEAR_MAX 2261
/* A buffer of this size holds any qb_time_format text
 * ("2262-04-11T23:47:16.854775807Z" is 30 characters) plus its NUL. */
#define QB_TIME_STRLEN 32

/* Broken-down UTC time. */
typedef struct qb_civil_s {
    int year;  /* e.g. 2024 */
    int month; /* 1..12 */
    int day;   /* 1..31 */
    int hour;  /* 0..23 */
    int min;   /* 0..59 */
    int sec;   /* 0..59 */
    int nsec;  /* 0..999999999 */
} qb_civil_t;

/* Wall clock (CLOCK_REALTIME): for timestamps. May jump. */
qb_time_t qb_time_now(void);
/* CLOCK_MONOTONIC in ns: for measuring durations only; not an instant. */
int64_t qb_time_mono_ns(void);

/* Parse ISO-8601 / RFC 3339 text of exactly `len` bytes (not necessarily
 * NUL-terminated; nothing past s[len-1] is read):
 *   YYYY-MM-DD                         midnight UTC
 *   YYYY-MM-DD(T|t| )hh:mm:ss[.f][off] seconds are required
 * .f is 1..9 digits of fractional seconds; off is Z or z, ±hh:mm or ±hhmm
 * (hh 00..23, mm 00..59); no offset means UTC.
 *   QB_ERR_PARSE  malformed, or a field out of its range (month 1..12, day
 *                 within the month incl. leap years, hour 0..23, minute
 *                 0..59, second 0..59: leap second 60 is rejected)
 *   QB_ERR_RANGE  the instant's UTC year is outside 1678..2261
 * *out is written only on success. */
qb_err_t qb_time_parse(const char *s, size_t len, qb_time_t *out);
/* The same, with a message in errstr, e.g.
 * "day 29 out of range for 2023-02". */
qb_err_t qb_time_parse_ex(const char *s, size_t len, qb_time_t *out,
                          char *errstr, size_t errstr_size);

/* "2024-01-02T03:04:05Z", with the fraction only when non-zero, trimmed to
 * 3, 6 or 9 digits: "...05.120Z", "...05.000001Z", "...05.123456789Z".
 * Writes at most cap-1 characters and a NUL when cap > 0. Returns the length
 * of the full text, like snprintf. */
size_t qb_time_format(qb_time_t t, char *buf, size_t cap);

/* Civil <-> instant. qb_time_from_civil validates like qb_time_parse
 * (QB_ERR_PARSE for a bad field, QB_ERR_RANGE for the year). */
void qb_time_to_civil(qb_time_t t, qb_civil_t *c);
qb_err_t qb_time_from_civil(const qb_civil_t *c, qb_time_t *out);

/* Days since 1970-01-01 of a proleptic Gregorian date (negative before),
 * and back. Valid for any year an int can hold. */
int64_t qb_time_days_from_civil(int year, int month, int day);
void qb_time_civil_from_days(int64_t days, int *year, int *month, int *day);
int qb_time_is_leap_year(int year);
/* 28..31; 0 for a month outside 1..12. */
int qb_time_days_in_month(int year, int month);

/* Unix seconds / milliseconds / microseconds -> qb_time_t; QB_ERR_RANGE
 * when the result does not fit in int64 ns. */
qb_err_t qb_time_from_unix_s(int64_t s, qb_time_t *out);
qb_err_t qb_time_from_unix_ms(int64_t ms, qb_time_t *out);
qb_err_t qb_time_from_unix_us(int64_t us, qb_time_t *out);
/* qb_time_t -> whole Unix seconds / milliseconds, rounded toward -infinity
 * (-1 ns is second -1, not 0). */
int64_t qb_time_to_unix_s(qb_time_t t);
int64_t qb_time_to_unix_ms(qb_time_t t);

/* Round down to a multiple of unit_ns counted from the epoch (toward
 * -infinity, also before 1970): the start of t's bucket for bars of that
 * length. Note that weeks counted from the epoch start on Thursdays.
 * QB_ERR_INVALID when unit_ns <= 0, QB_ERR_RANGE when the result is before
 * the earliest qb_time_t. */
qb_err_t qb_time_floor(qb_time_t t, int64_t unit_ns, qb_time_t *out);
/* Midnight UTC of t's day: qb_time_floor(t, QB_NS_PER_DAY, out). */
qb_err_t qb_time_trunc_day(qb_time_t t, qb_time_t *out);
/* Day of the week of t in UTC: 0 = Sunday .. 6 = Saturday. */
int qb_time_weekday(qb_time_t t);

#endif
