/* qb_cal.h — exchange calendars: which dates are sessions, when each
 * session opens and closes (UTC), which bar open times a timeframe should
 * have over a range, and which of them are missing from storage (the gaps
 * that incremental ingest fetches and `qbctl data gaps SYMBOL` prints).
 *
 * Calendars (qb_cal_get by name):
 *   "XNYS"  US equities, New York Stock Exchange. Sessions 09:30-16:00
 *           America/New_York (DST from tzdata, see qb_tz.h), Monday to
 *           Friday, except the full holidays
 *             New Year's Day (Jan 1), Martin Luther King Jr. Day (3rd Monday
 *             of January), Washington's Birthday / Presidents' Day (3rd
 *             Monday of February), Good Friday (2 days before Gregorian
 *             Easter), Memorial Day (last Monday of May), Juneteenth
 *             (June 19, from 2022), Independence Day (July 4), Labor Day
 *             (1st Monday of September), Thanksgiving (4th Thursday of
 *             November), Christmas (Dec 25);
 *           a fixed-date holiday on a Saturday is observed the Friday
 *           before, except New Year's Day (Dec 31, the end of the yearly
 *           accounting period, stays a session: 2021-12-31 traded); on a
 *           Sunday it is observed the Monday after.
 *           Early closes at 13:00: the day after Thanksgiving; Dec 24 when
 *           it is a weekday and not itself a holiday; July 3 when it is
 *           Monday..Thursday (i.e. July 3 and July 4 are both weekdays; when
 *           July 4 is a Saturday, July 3 is the holiday and July 2 is a
 *           normal day).
 *           Unscheduled closures are a table (qb_cal.c): 2001-09-11..14
 *           (September 11), 2004-06-11 (President Reagan), 2007-01-02
 *           (President Ford), 2012-10-29/30 (Hurricane Sandy), 2018-12-05
 *           (President G. H. W. Bush), 2025-01-09 (President Carter).
 *           NOT modelled: unscheduled early closes, late opens and
 *           intraday halts (weather, technical incidents, moments of
 *           silence); rules before 2001 (the holiday set and the early
 *           close customs differed: e.g. Dec 24 and July 3 half days were
 *           not always given); closures announced after this code was
 *           written: add them to the table; extended-hours trading.
 *   "24x7"  crypto: every minute of every day. A "session" is a UTC day
 *           [00:00, 24:00) UTC; bars are aligned to the Unix epoch (plain
 *           UTC multiples of the bar length).
 *
 * Dates: a qb_cal_date_t is a civil date counted in days since 1970-01-01
 * (so date 19790 is 2024-03-08). The session date is the exchange-local
 * date; qb_cal_date_to_time(d) is 00:00 UTC of that date, which is how a
 * 1d bar is stamped (md/qb_md_source.h).
 *
 * Bars (qb_cal_bars, qb_cal_gaps): for a bar length tf < 1 day, a session's
 * bars open at open, open + tf, ... while < close; the last one may be
 * truncated by the close (a 1h bar of an NYSE day opens 09:30, ..., 15:30,
 * the last covering 15:30-16:00; on an early close 12:30-13:00). For
 * "24x7" bars open at every multiple of tf since the epoch. For tf = 1 day
 * there is one bar per session date, stamped 00:00 UTC of that date. Other
 * lengths (1w, or tf > 1 day) are QB_ERR_INVALID. Ranges are [from, to) on
 * bar OPEN times, in UTC ns.
 *
 * Ownership and threads: calendars are process-wide, immutable once made,
 * never freed; qb_cal_get is thread-safe and so is everything else here.
 * Output arrays are caller-owned. */
#ifndef QB_CAL_H
#define QB_CAL_H

#include <stddef.h>
#include <stdint.h>

#include "cal/qb_tz.h"
#include "core/qb_err.h"
#include "core/qb_time.h"

typedef int32_t qb_cal_date_t; /* days since 1970-01-01 */

typedef struct qb_cal_s qb_cal_t;

/* One trading session. */
typedef struct qb_cal_session_s {
    qb_cal_date_t date; /* exchange-local date */
    qb_time_t open;     /* UTC ns, inclusive */
    qb_time_t close;    /* UTC ns, exclusive */
    int early_close;    /* 1 when the close is earlier than usual */
} qb_cal_session_t;

/* One run of missing bars, merged: every expected bar open time between
 * first and last (inclusive) is missing, and no expected bar between them
 * is present; nights, weekends and holidays inside do not break a gap. */
typedef struct qb_cal_gap_s {
    qb_time_t from;  /* open time of the first missing bar */
    qb_time_t to;    /* end of the last missing bar (its open + tf, or the
                        session close when truncated; for 1d its stamp +
                        1 day): [from, to) is a fetch request that covers
                        exactly the missing bars */
    size_t nbars;    /* missing bars in the span */
} qb_cal_gap_t;

/* ---- dates -------------------------------------------------------------- */

qb_cal_date_t qb_cal_date(int year, int month, int day);
void qb_cal_date_ymd(qb_cal_date_t d, int *year, int *month, int *day);
/* 0 = Sunday .. 6 = Saturday. */
int qb_cal_date_weekday(qb_cal_date_t d);
/* 00:00 UTC of the date (the stamp of a 1d bar). */
qb_time_t qb_cal_date_to_time(qb_cal_date_t d);
/* "YYYY-MM-DD" exactly (validated); QB_ERR_PARSE otherwise. */
qb_err_t qb_cal_date_parse(const char *s, qb_cal_date_t *out);
/* "YYYY-MM-DD" into buf (11 bytes with the NUL). Returns buf. */
char *qb_cal_date_format(qb_cal_date_t d, char *buf, size_t cap);

/* Gregorian (Western) Easter Sunday of `year` (Anonymous Gregorian
 * algorithm, a.k.a. Meeus/Jones/Butcher), for years >= 1583. */
qb_cal_date_t qb_cal_easter(int year);

/* ---- calendars ---------------------------------------------------------- */

/* "XNYS" (also "NYSE") or "24x7" (also "CRYPTO"). Loads the time zone on
 * first use. QB_ERR_NOT_FOUND for an unknown calendar; the time zone's
 * errors (e.g. QB_ERR_NOT_FOUND without tzdata) with its message. */
qb_err_t qb_cal_get(const char *name, const qb_cal_t **out, char *errstr,
                    size_t errstr_size);

const char *qb_cal_name(const qb_cal_t *cal);  /* "XNYS", "24x7" */
const qb_tz_t *qb_cal_tz(const qb_cal_t *cal); /* the exchange's zone */
/* 1 for a calendar without closures (24x7): bars on the epoch grid. */
int qb_cal_is_continuous(const qb_cal_t *cal);

/* The exchange-local date of instant t. */
qb_cal_date_t qb_cal_date_of(const qb_cal_t *cal, qb_time_t t);

/* 1 if the date is a trading session, else 0. */
int qb_cal_is_session(const qb_cal_t *cal, qb_cal_date_t d);

/* Why d is not a session although it is a weekday: "Good Friday",
 * "Christmas Day (observed)", "National Day of Mourning for President
 * Carter", ... NULL for a session, a weekend day, or a continuous calendar. */
const char *qb_cal_holiday_name(const qb_cal_t *cal, qb_cal_date_t d);

/* The session on date d: QB_ERR_NOT_FOUND when d is not a session,
 * QB_ERR_RANGE for a date outside 1678-01-02..2261-12-30 (the span of
 * qb_time_t; bars and gaps are clipped to it too). */
qb_err_t qb_cal_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out);

/* The first session strictly after / the last strictly before date d.
 * QB_ERR_NOT_FOUND when none within 30 days (cannot happen for XNYS). */
qb_err_t qb_cal_next_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out);
qb_err_t qb_cal_prev_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out);

/* The session containing instant t ([open, close)): QB_ERR_NOT_FOUND when
 * the market is closed at t. */
qb_err_t qb_cal_session_at(const qb_cal_t *cal, qb_time_t t, qb_cal_session_t *out);

/* Sessions with from <= date <= to (both inclusive), in order: writes the
 * first min(total, cap) into out (out may be NULL when cap == 0) and
 * returns the total, like snprintf. */
size_t qb_cal_sessions(const qb_cal_t *cal, qb_cal_date_t from, qb_cal_date_t to,
                       qb_cal_session_t *out, size_t cap);

/* Iteration without an array: it = qb_cal_iter(cal, from, to); while
 * (qb_cal_iter_next(&it, &s)) ... Dates inclusive as above. */
typedef struct qb_cal_iter_s {
    const qb_cal_t *cal;
    qb_cal_date_t next, last;
} qb_cal_iter_t;
qb_cal_iter_t qb_cal_iter(const qb_cal_t *cal, qb_cal_date_t from, qb_cal_date_t to);
int qb_cal_iter_next(qb_cal_iter_t *it, qb_cal_session_t *out);

/* Expected bar open times for bars of tf_ns over [from, to) (see "Bars"
 * above): writes the first min(total, cap) into out and sets *total.
 * QB_ERR_INVALID for an unsupported tf_ns or from > to. */
qb_err_t qb_cal_bars(const qb_cal_t *cal, int64_t tf_ns, qb_time_t from, qb_time_t to,
                     qb_time_t *out, size_t cap, size_t *total, char *errstr,
                     size_t errstr_size);

/* Missing bars: the expected bars of tf_ns over [from, to) that are not in
 * have[0..n) (bar open times, ascending; duplicates allowed; times that are
 * not expected bar times — extended hours, holidays, off-grid — are
 * ignored). Writes the first min(total, cap) merged gaps into out, in
 * order, and sets *total; *missing (may be NULL) gets the number of missing
 * bars. QB_ERR_INVALID when have is not sorted, for a bad tf or range. */
qb_err_t qb_cal_gaps(const qb_cal_t *cal, int64_t tf_ns, const qb_time_t *have, size_t n,
                     qb_time_t from, qb_time_t to, qb_cal_gap_t *out, size_t cap,
                     size_t *total, size_t *missing, char *errstr, size_t errstr_size);

#endif
