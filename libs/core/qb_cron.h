/* qb_cron.h — standard 5-field cron expressions, evaluated in a time zone.
 *
 * Why: qb-data's scheduled ingest jobs (libs/md/qb_md_sched.h) say when they
 * run the way operators already write it: "0 18 * * 1-5" in
 * America/New_York. This module parses such an expression into a plain
 * value and finds the next instant it fires after a given instant.
 *
 * Syntax: "minute hour day-of-month month day-of-week", fields separated by
 * blanks (spaces or tabs).
 *   field          values   names
 *   minute         0-59
 *   hour           0-23
 *   day-of-month   1-31
 *   month          1-12     JAN-DEC (any case)
 *   day-of-week    0-7      SUN-SAT (any case); 0 and 7 are both Sunday
 * Each field is a comma-separated list of items; an item is "*", a value,
 * a range "a-b" (a <= b; "FRI-SUN" is written "FRI-SAT,SUN" or "5-7"), and
 * any of these with a step "/s" (s >= 1): "*\/15", "1-31/2", and "a/s"
 * meaning "a-MAX/s" ("5/15" = 5,20,35,50).
 * Shorthands: @yearly (@annually) "0 0 1 1 *", @monthly "0 0 1 * *",
 * @weekly "0 0 * * 0", @daily (@midnight) "0 0 * * *", @hourly "0 * * * *".
 * @reboot and other words are refused.
 *
 * Day matching (the classic Vixie cron rule): when both day-of-month and
 * day-of-week are restricted, a day matches if EITHER matches ("0 0 13 * 5"
 * fires on every 13th and on every Friday); when one of them is
 * unrestricted only the other one counts. As in Vixie cron and cronie, a
 * field counts as unrestricted when it begins with "*" (so "*\/2" in
 * day-of-month is unrestricted for this rule, though it only matches odd
 * days).
 *
 * A day-of-month that exists in none of the listed months ("0 0 30 2 *",
 * "0 0 31 4,6 *") is refused at parse time, unless day-of-week is
 * restricted too (then the weekdays still fire). Feb 29 is accepted: it
 * fires in leap years only (the next one may be 8 years away: 2096 ->
 * 2104).
 *
 * Errors name the field and the value: "day-of-week: unknown name 'FRX'",
 * "minute: 60 out of range 0-59", "hour: range 5-3 has start after end",
 * "expected 5 fields (minute hour day-of-month month day-of-week), got 4".
 *
 * Time zones and DST (qb_cron_next): the fields are matched against LOCAL
 * wall-clock time of the zone the caller passes (qb_cron_zone_t, two
 * functions; NULL = UTC). libs/core cannot depend on libs/cal, so the
 * tz-aware wrapper over qb_tz lives in libs/md/qb_md_sched.c
 * (qb_md_sched_cron_next). Rules:
 *   - A wall time skipped by a spring-forward transition fires at the first
 *     valid local minute after it: "30 2 * * *" in America/New_York on
 *     2024-03-10 (02:00 -> 03:00) fires at 03:00 EDT (07:00Z). Several
 *     skipped times collapse into that one firing ("*\/15 2 * * *" fires
 *     once at 03:00 that day).
 *   - A wall time repeated by a fall-back transition fires ONCE, at its
 *     first occurrence: "30 1 * * *" on 2024-11-03 fires at 01:30 EDT
 *     (05:30Z), not again at 01:30 EST (06:30Z). This holds for every
 *     expression, so "*\/15 * * * *" fires at 01:00..01:45 EDT and next at
 *     02:00 EST (07:00Z): no firing during the repeated hour's second pass.
 *     A job that must run at a fixed elapsed interval whatever the clock
 *     says should use an interval schedule instead of cron.
 * Seconds and fractions of `after` are ignored for matching; a result is
 * always a whole local minute (whole UTC minute for zones with whole-minute
 * offsets) strictly after `after`.
 *
 * Ownership: none. qb_cron_t is a plain value (bit sets), copy it freely.
 * Thread-safe: pure functions. */
#ifndef QB_CRON_H
#define QB_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_time.h"

#define QB_CRON_EXPR_MAX 255 /* characters of an expression we accept */

/* A parsed expression. Bit i of a set = value i matches. */
typedef struct qb_cron_s {
    uint64_t minutes; /* bits 0..59 */
    uint32_t hours;   /* bits 0..23 */
    uint32_t mdays;   /* bits 1..31 */
    uint16_t months;  /* bits 1..12 */
    uint8_t wdays;    /* bits 0..6, 0 = Sunday (7 is folded into 0) */
    uint8_t mday_star; /* day-of-month field began with '*' */
    uint8_t wday_star; /* day-of-week field began with '*' */
} qb_cron_t;

/* Conversion between UTC and the wall clock of one zone. Both functions
 * must be pure; ctx is passed back unchanged.
 *   to_local    UTC instant -> local wall clock (civil fields).
 *   from_local  local wall clock -> UTC. For a repeated wall time it must
 *               give the EARLIER instant; for a wall time that does not
 *               exist it may return any instant or an error (qb_cron
 *               detects a skipped time by converting back with to_local).
 * For qb_tz: qb_tz_to_local and qb_tz_from_local(..., QB_TZ_COMPATIBLE),
 * as qb_md_sched_cron_next does. */
typedef struct qb_cron_zone_s {
    qb_err_t (*to_local)(void *ctx, qb_time_t t, qb_civil_t *local);
    qb_err_t (*from_local)(void *ctx, const qb_civil_t *local, qb_time_t *out);
    void *ctx;
} qb_cron_zone_t;

/* Parse `expr` (see the top of this file). *out is written only on success.
 * QB_ERR_PARSE with a message naming the field and value. */
qb_err_t qb_cron_parse(const char *expr, qb_cron_t *out, char *errstr,
                       size_t errstr_size);

/* 1 when the local wall-clock minute `local` (seconds ignored) matches. */
int qb_cron_matches(const qb_cron_t *cron, const qb_civil_t *local);

/* The first instant strictly after `after` at which `cron` fires in `zone`
 * (NULL = UTC), following the DST rules above. *next is written only on
 * success. Errors: QB_ERR_NOT_FOUND when nothing fires within 30 years
 * after `after` (cannot happen for an expression qb_cron_parse accepted,
 * except near the end of the qb_time_t range); QB_ERR_RANGE outside the
 * qb_time_t range; the zone's own errors. */
qb_err_t qb_cron_next(const qb_cron_t *cron, const qb_cron_zone_t *zone,
                      qb_time_t after, qb_time_t *next, char *errstr,
                      size_t errstr_size);

/* Parse and evaluate in one call. */
qb_err_t qb_cron_next_expr(const char *expr, const qb_cron_zone_t *zone,
                           qb_time_t after, qb_time_t *next, char *errstr,
                           size_t errstr_size);

#endif
