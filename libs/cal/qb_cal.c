/* qb_cal.c — the exchange calendars of qb_cal.h.
 *
 * A calendar is a static definition (zone, regular hours, a function that
 * says why a weekday is closed and one that says whether it closes early)
 * plus the zone pointer resolved on first qb_cal_get. Everything else —
 * session times, iteration, expected bars, gaps — is generic over that
 * definition, so a new exchange is one table entry and two rule functions.
 *
 * Holiday rules are computed, not listed, so they hold for any year; the
 * only list is the table of unscheduled closures. The tests compare the
 * result with the dates NYSE publishes for 2024-2026. */
#include "cal/qb_cal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- dates -------------------------------------------------------------- */

qb_cal_date_t qb_cal_date(int year, int month, int day) {
    return (qb_cal_date_t)qb_time_days_from_civil(year, month, day);
}

void qb_cal_date_ymd(qb_cal_date_t d, int *year, int *month, int *day) {
    qb_time_civil_from_days(d, year, month, day);
}

int qb_cal_date_weekday(qb_cal_date_t d) {
    return (int)((((int64_t)d % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

qb_time_t qb_cal_date_to_time(qb_cal_date_t d) { return (qb_time_t)d * QB_NS_PER_DAY; }

qb_err_t qb_cal_date_parse(const char *s, qb_cal_date_t *out) {
    qb_time_t t;
    if (!s || strlen(s) != 10 || qb_time_parse(s, 10, &t) != QB_OK) return QB_ERR_PARSE;
    *out = (qb_cal_date_t)(t / QB_NS_PER_DAY - (t % QB_NS_PER_DAY < 0));
    return QB_OK;
}

char *qb_cal_date_format(qb_cal_date_t d, char *buf, size_t cap) {
    int y, m, dd;
    qb_cal_date_ymd(d, &y, &m, &dd);
    snprintf(buf, cap, "%04d-%02d-%02d", y, m, dd);
    return buf;
}

qb_cal_date_t qb_cal_easter(int year) {
    /* Anonymous Gregorian algorithm: a is the year's place in the 19-year
     * Metonic cycle, h locates the Paschal full moon (epact with the solar
     * and lunar century corrections f, g), l the days to the next Sunday. */
    int a = year % 19, b = year / 100, c = year % 100;
    int d = b / 4, e = b % 4;
    int f = (b + 8) / 25, g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * m + 114) / 31;
    int day = (h + l - 7 * m + 114) % 31 + 1;
    return qb_cal_date(year, month, day);
}

/* The n-th (1..5) weekday wd (0 = Sunday) of a month; n = -1: the last. */
static qb_cal_date_t qb_cal_nth_weekday(int y, int m, int wd, int n) {
    if (n < 0) {
        qb_cal_date_t last = qb_cal_date(y, m, qb_time_days_in_month(y, m));
        return last - (qb_cal_date_weekday(last) - wd + 7) % 7;
    }
    qb_cal_date_t first = qb_cal_date(y, m, 1);
    return first + (wd - qb_cal_date_weekday(first) + 7) % 7 + 7 * (n - 1);
}

/* ---- NYSE ------------------------------------------------------------- */

/* Unscheduled full-day closures (NYSE announcements). */
static const struct {
    int y, m, d;
    const char *why;
} qb_xnys_closures[] = {
    {2001, 9, 11, "September 11 attacks"},
    {2001, 9, 12, "September 11 attacks"},
    {2001, 9, 13, "September 11 attacks"},
    {2001, 9, 14, "September 11 attacks"},
    {2004, 6, 11, "National Day of Mourning for President Reagan"},
    {2007, 1, 2, "National Day of Mourning for President Ford"},
    {2012, 10, 29, "Hurricane Sandy"},
    {2012, 10, 30, "Hurricane Sandy"},
    {2018, 12, 5, "National Day of Mourning for President George H. W. Bush"},
    {2025, 1, 9, "National Day of Mourning for President Carter"},
};

/* Fixed-date holidays: month, day, first year, whether a Saturday is
 * observed on the Friday before (not for New Year's Day: NYSE does not
 * close on Dec 31). */
static const struct {
    int m, d, since, sat_to_fri;
    const char *name, *observed;
} qb_xnys_fixed[] = {
    {1, 1, 0, 0, "New Year's Day", "New Year's Day (observed)"},
    {6, 19, 2022, 1, "Juneteenth National Independence Day",
     "Juneteenth National Independence Day (observed)"},
    {7, 4, 0, 1, "Independence Day", "Independence Day (observed)"},
    {12, 25, 0, 1, "Christmas Day", "Christmas Day (observed)"},
};

/* Why the weekday d is closed, or NULL when it is a session. */
static const char *qb_xnys_closed(qb_cal_date_t d) {
    int y, m, dd;
    qb_cal_date_ymd(d, &y, &m, &dd);
    for (size_t i = 0; i < sizeof qb_xnys_closures / sizeof qb_xnys_closures[0]; i++)
        if (qb_xnys_closures[i].y == y && qb_xnys_closures[i].m == m &&
            qb_xnys_closures[i].d == dd)
            return qb_xnys_closures[i].why;
    for (size_t i = 0; i < sizeof qb_xnys_fixed / sizeof qb_xnys_fixed[0]; i++) {
        if (y < qb_xnys_fixed[i].since) continue;
        qb_cal_date_t h = qb_cal_date(y, qb_xnys_fixed[i].m, qb_xnys_fixed[i].d);
        int wd = qb_cal_date_weekday(h);
        if (h == d) return qb_xnys_fixed[i].name; /* d is a weekday */
        if (wd == 0 && d == h + 1) return qb_xnys_fixed[i].observed;
        if (wd == 6 && qb_xnys_fixed[i].sat_to_fri && d == h - 1)
            return qb_xnys_fixed[i].observed;
    }
    if (m == 1 && d == qb_cal_nth_weekday(y, 1, 1, 3)) return "Martin Luther King Jr. Day";
    if (m == 2 && d == qb_cal_nth_weekday(y, 2, 1, 3)) return "Washington's Birthday";
    if ((m == 3 || m == 4) && d == qb_cal_easter(y) - 2) return "Good Friday";
    if (m == 5 && d == qb_cal_nth_weekday(y, 5, 1, -1)) return "Memorial Day";
    if (m == 9 && d == qb_cal_nth_weekday(y, 9, 1, 1)) return "Labor Day";
    if (m == 11 && d == qb_cal_nth_weekday(y, 11, 4, 4)) return "Thanksgiving Day";
    return NULL;
}

/* 1 when the session d (already known to be one) closes at 13:00. */
static int qb_xnys_early(qb_cal_date_t d) {
    int y, m, dd;
    qb_cal_date_ymd(d, &y, &m, &dd);
    int wd = qb_cal_date_weekday(d);
    if (m == 11 && d == qb_cal_nth_weekday(y, 11, 4, 4) + 1) return 1; /* after Thanksgiving */
    if (m == 12 && dd == 24) return 1; /* a weekday session, so not the observed Christmas */
    if (m == 7 && dd == 3 && wd >= 1 && wd <= 4) return 1; /* July 4 is Tue..Fri */
    return 0;
}

/* ---- calendar definitions ----------------------------------------------- */

typedef struct qb_cal_def_s {
    const char *name, *alias, *tz_name;
    int continuous;            /* every day a session 00:00-24:00 local */
    int open_min, close_min;   /* local minutes after midnight */
    int early_close_min;
    const char *(*closed)(qb_cal_date_t d); /* weekdays only */
    int (*early)(qb_cal_date_t d);
} qb_cal_def_t;

struct qb_cal_s {
    const qb_cal_def_t *def;
    const qb_tz_t *tz; /* set once under qb_cal_lock */
};

static const qb_cal_def_t qb_cal_defs[] = {
    {"XNYS", "NYSE", "America/New_York", 0, 9 * 60 + 30, 16 * 60, 13 * 60,
     qb_xnys_closed, qb_xnys_early},
    {"24x7", "CRYPTO", "UTC", 1, 0, 24 * 60, 24 * 60, NULL, NULL},
};
#define QB_CAL_NDEFS (sizeof qb_cal_defs / sizeof qb_cal_defs[0])

static qb_cal_t qb_cal_objs[QB_CAL_NDEFS];
static pthread_mutex_t qb_cal_lock = PTHREAD_MUTEX_INITIALIZER;

qb_err_t qb_cal_get(const char *name, const qb_cal_t **out, char *errstr, size_t n) {
    for (size_t i = 0; name && i < QB_CAL_NDEFS; i++) {
        if (strcasecmp(name, qb_cal_defs[i].name) != 0 &&
            strcasecmp(name, qb_cal_defs[i].alias) != 0)
            continue;
        qb_err_t err = QB_OK;
        pthread_mutex_lock(&qb_cal_lock);
        if (!qb_cal_objs[i].tz) {
            const qb_tz_t *tz;
            err = qb_tz_get(qb_cal_defs[i].tz_name, &tz, errstr, n);
            if (!err) {
                qb_cal_objs[i].def = &qb_cal_defs[i];
                qb_cal_objs[i].tz = tz;
            }
        }
        pthread_mutex_unlock(&qb_cal_lock);
        if (!err) *out = &qb_cal_objs[i];
        return err;
    }
    return qb_err_set(errstr, n, QB_ERR_NOT_FOUND,
                      "unknown calendar \"%s\" (known: XNYS, 24x7)", name ? name : "(null)");
}

const char *qb_cal_name(const qb_cal_t *cal) { return cal->def->name; }
const qb_tz_t *qb_cal_tz(const qb_cal_t *cal) { return cal->tz; }
int qb_cal_is_continuous(const qb_cal_t *cal) { return cal->def->continuous; }

qb_cal_date_t qb_cal_date_of(const qb_cal_t *cal, qb_time_t t) {
    int64_t secs = t / QB_NS_PER_SEC - (t % QB_NS_PER_SEC < 0);
    secs += qb_tz_offset_at(cal->tz, t);
    return (qb_cal_date_t)(secs / 86400 - (secs % 86400 < 0));
}

const char *qb_cal_holiday_name(const qb_cal_t *cal, qb_cal_date_t d) {
    int wd = qb_cal_date_weekday(d);
    if (cal->def->continuous || wd == 0 || wd == 6) return NULL;
    return cal->def->closed(d);
}

int qb_cal_is_session(const qb_cal_t *cal, qb_cal_date_t d) {
    if (cal->def->continuous) return 1;
    int wd = qb_cal_date_weekday(d);
    return wd != 0 && wd != 6 && cal->def->closed(d) == NULL;
}

/* Local date d at `min` minutes after midnight -> UTC. Skipped/repeated
 * wall times resolve as QB_TZ_COMPATIBLE (no exchange opens in one). */
static qb_time_t qb_cal_local(const qb_cal_t *cal, qb_cal_date_t d, int min) {
    qb_civil_t c = {0};
    qb_time_t t = 0;
    qb_cal_date_ymd(d, &c.year, &c.month, &c.day);
    if (min >= 24 * 60) { /* midnight at the end of the day */
        qb_cal_date_ymd(d + 1, &c.year, &c.month, &c.day);
        min -= 24 * 60;
    }
    c.hour = min / 60;
    c.min = min % 60;
    qb_err_t err = qb_tz_from_local(cal->tz, &c, QB_TZ_COMPATIBLE, &t, NULL, 0);
    QB_ASSERT(err == QB_OK); /* dates come from qb_time_t: always in range */
    return t;
}

/* Dates whose local times convert to a qb_time_t whatever the zone. */
#define QB_CAL_DATE_MIN (-106649) /* 1678-01-02 */
#define QB_CAL_DATE_MAX 106649    /* 2261-12-30 */

qb_err_t qb_cal_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out) {
    if (d < QB_CAL_DATE_MIN || d > QB_CAL_DATE_MAX) return QB_ERR_RANGE;
    if (!qb_cal_is_session(cal, d)) return QB_ERR_NOT_FOUND;
    const qb_cal_def_t *def = cal->def;
    int early = def->early && def->early(d);
    out->date = d;
    out->open = qb_cal_local(cal, d, def->open_min);
    out->close = qb_cal_local(cal, d, early ? def->early_close_min : def->close_min);
    out->early_close = early;
    return QB_OK;
}

qb_err_t qb_cal_next_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out) {
    for (int i = 1; i <= 30; i++)
        if (qb_cal_session(cal, d + i, out) == QB_OK) return QB_OK;
    return QB_ERR_NOT_FOUND;
}

qb_err_t qb_cal_prev_session(const qb_cal_t *cal, qb_cal_date_t d, qb_cal_session_t *out) {
    for (int i = 1; i <= 30; i++)
        if (qb_cal_session(cal, d - i, out) == QB_OK) return QB_OK;
    return QB_ERR_NOT_FOUND;
}

qb_err_t qb_cal_session_at(const qb_cal_t *cal, qb_time_t t, qb_cal_session_t *out) {
    qb_cal_session_t s;
    if (qb_cal_session(cal, qb_cal_date_of(cal, t), &s) != QB_OK) return QB_ERR_NOT_FOUND;
    if (t < s.open || t >= s.close) return QB_ERR_NOT_FOUND;
    *out = s;
    return QB_OK;
}

qb_cal_iter_t qb_cal_iter(const qb_cal_t *cal, qb_cal_date_t from, qb_cal_date_t to) {
    qb_cal_iter_t it = {cal, from, to};
    return it;
}

int qb_cal_iter_next(qb_cal_iter_t *it, qb_cal_session_t *out) {
    while (it->next <= it->last) {
        qb_cal_date_t d = it->next++;
        if (qb_cal_session(it->cal, d, out) == QB_OK) return 1;
    }
    return 0;
}

size_t qb_cal_sessions(const qb_cal_t *cal, qb_cal_date_t from, qb_cal_date_t to,
                       qb_cal_session_t *out, size_t cap) {
    qb_cal_iter_t it = qb_cal_iter(cal, from, to);
    qb_cal_session_t s;
    size_t total = 0;
    while (qb_cal_iter_next(&it, &s)) {
        if (total < cap) out[total] = s;
        total++;
    }
    return total;
}

/* ---- expected bars ------------------------------------------------------ */

/* Walks the expected bars of one timeframe over [from, to) in order. */
typedef struct qb_cal_walk_s {
    const qb_cal_t *cal;
    int64_t tf;
    qb_time_t from, to;
    int mode;            /* 0 epoch grid, 1 intraday in sessions, 2 daily */
    qb_time_t cur;       /* next bar open (modes 0, 1) */
    qb_cal_date_t date;  /* next date to look at (modes 1, 2) */
    qb_cal_session_t s;  /* current session (mode 1) */
    int in_session;
} qb_cal_walk_t;

static qb_err_t qb_cal_walk_init(qb_cal_walk_t *w, const qb_cal_t *cal, int64_t tf,
                                 qb_time_t from, qb_time_t to, char *errstr, size_t n) {
    if (tf <= 0 || tf > QB_NS_PER_DAY)
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "%s: unsupported bar length %lld ns (must be 1 day or less)",
                          cal->def->name, (long long)tf);
    if (from > to)
        return qb_err_set(errstr, n, QB_ERR_INVALID, "%s: range from > to", cal->def->name);
    /* Keep every date and bar time inside the qb_time_t span. */
    qb_time_t lo = qb_cal_date_to_time(QB_CAL_DATE_MIN), hi = qb_cal_date_to_time(QB_CAL_DATE_MAX + 1);
    if (from < lo) from = lo;
    if (to > hi) to = hi;
    if (from > to) from = to;
    memset(w, 0, sizeof *w);
    w->cal = cal;
    w->tf = tf;
    w->from = from;
    w->to = to;
    if (cal->def->continuous) {
        w->mode = 0;
        qb_time_t q = from / tf - (from % tf < 0); /* floor, then up to >= from */
        w->cur = q * tf;
        if (w->cur < from) w->cur += tf;
    } else if (tf == QB_NS_PER_DAY) {
        w->mode = 2;
        w->date = (qb_cal_date_t)(from / QB_NS_PER_DAY - (from % QB_NS_PER_DAY < 0));
        if (qb_cal_date_to_time(w->date) < from) w->date++;
    } else {
        w->mode = 1;
        w->date = qb_cal_date_of(cal, from) - 1;
    }
    return QB_OK;
}

/* Next expected bar: 1 with its open and end, or 0 when done. */
static int qb_cal_walk_next(qb_cal_walk_t *w, qb_time_t *open, qb_time_t *end) {
    if (w->mode == 0) {
        if (w->cur >= w->to) return 0;
        *open = w->cur;
        *end = w->cur + w->tf;
        w->cur += w->tf;
        return 1;
    }
    if (w->mode == 2) {
        for (;;) {
            qb_time_t stamp = qb_cal_date_to_time(w->date);
            if (stamp >= w->to) return 0;
            int ok = qb_cal_is_session(w->cal, w->date);
            w->date++;
            if (ok) {
                *open = stamp;
                *end = stamp + QB_NS_PER_DAY;
                return 1;
            }
        }
    }
    for (;;) {
        if (w->in_session && w->cur < w->s.close) {
            if (w->cur >= w->to) return 0;
            *open = w->cur;
            *end = w->cur + w->tf < w->s.close ? w->cur + w->tf : w->s.close;
            w->cur += w->tf;
            return 1;
        }
        w->in_session = 0;
        if (qb_cal_session(w->cal, w->date, &w->s) == QB_OK) {
            if (w->s.open >= w->to) return 0;
            w->in_session = 1;
            w->cur = w->s.open;
            if (w->cur < w->from) /* first bar at or after from */
                w->cur += (w->from - w->cur + w->tf - 1) / w->tf * w->tf;
        } else if (qb_cal_date_to_time(w->date) - QB_NS_PER_DAY >= w->to) {
            return 0; /* a run of closed days past the end */
        }
        w->date++;
    }
}

qb_err_t qb_cal_bars(const qb_cal_t *cal, int64_t tf_ns, qb_time_t from, qb_time_t to,
                     qb_time_t *out, size_t cap, size_t *total, char *errstr, size_t n) {
    qb_cal_walk_t w;
    qb_err_t err = qb_cal_walk_init(&w, cal, tf_ns, from, to, errstr, n);
    if (err) return err;
    qb_time_t o, e;
    size_t k = 0;
    while (qb_cal_walk_next(&w, &o, &e)) {
        if (k < cap) out[k] = o;
        k++;
    }
    *total = k;
    return QB_OK;
}

qb_err_t qb_cal_gaps(const qb_cal_t *cal, int64_t tf_ns, const qb_time_t *have, size_t n,
                     qb_time_t from, qb_time_t to, qb_cal_gap_t *out, size_t cap,
                     size_t *total, size_t *missing, char *errstr, size_t errstr_size) {
    qb_cal_walk_t w;
    qb_err_t err = qb_cal_walk_init(&w, cal, tf_ns, from, to, errstr, errstr_size);
    if (err) return err;
    for (size_t i = 1; i < n; i++)
        if (have[i] < have[i - 1])
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "gaps: stored bar times are not sorted (index %zu)", i);
    size_t j = 0, ngaps = 0, nmiss = 0;
    int open_gap = 0;
    qb_cal_gap_t g = {0};
    qb_time_t o, e;
    while (qb_cal_walk_next(&w, &o, &e)) {
        while (j < n && have[j] < o) j++;
        if (j < n && have[j] == o) {
            if (open_gap) {
                if (ngaps < cap) out[ngaps] = g;
                ngaps++;
                open_gap = 0;
            }
            continue;
        }
        nmiss++;
        if (!open_gap) {
            open_gap = 1;
            g.from = o;
            g.nbars = 0;
        }
        g.to = e;
        g.nbars++;
    }
    if (open_gap) {
        if (ngaps < cap) out[ngaps] = g;
        ngaps++;
    }
    *total = ngaps;
    if (missing) *missing = nmiss;
    return QB_OK;
}
