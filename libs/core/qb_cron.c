/* qb_cron.c — 5-field cron expressions: parse into bit sets, then search
 * forward field by field in local wall-clock time, converting each
 * candidate to UTC through the caller's zone functions. The DST rules
 * (skipped -> first valid minute after, repeated -> first occurrence only)
 * are implemented in qb_cron_next; see qb_cron.h. */
#include "core/qb_cron.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* How far qb_cron_next searches before giving up (Feb 29 needs 8 years). */
#define CRON_SEARCH_YEARS 30
/* Longest run of skipped local minutes we step over (a whole skipped day,
 * as Samoa's 2011-12-30, is 1440). */
#define CRON_GAP_MINUTES (3 * 1440)

typedef struct field_spec_s {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i; NULL = none */
} field_spec_t;

static const char *const MONTH_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const WDAY_NAMES[] = {"SUN", "MON", "TUE", "WED", "THU",
                                         "FRI", "SAT", NULL};

static const field_spec_t FIELDS[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, MONTH_NAMES},
    {"day-of-week", 0, 7, WDAY_NAMES},
};

/* One value: decimal digits or (for month/day-of-week) a 3-letter name.
 * Consumes it from *p. */
static qb_err_t parse_value(const field_spec_t *f, const char **p, const char *end, int *out,
                            char *errstr, size_t errstr_size) {
    const char *s = *p;
    const char *q = s;
    if (q < end && isdigit((unsigned char)*q)) {
        long v = 0;
        while (q < end && isdigit((unsigned char)*q)) {
            if (v < 1000) v = v * 10 + (*q - '0');
            q++;
        }
        if (v < f->min || v > f->max)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: %.*s out of range %d-%d",
                              f->name, (int)(q - s), s, f->min, f->max);
        *out = (int)v;
        *p = q;
        return QB_OK;
    }
    while (q < end && isalpha((unsigned char)*q)) q++;
    if (q == s)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: bad value '%.*s'", f->name,
                          (int)(end - s), s);
    if (!f->names)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "%s: names are not allowed ('%.*s')", f->name, (int)(q - s), s);
    for (int i = 0; f->names[i]; i++) {
        if (q - s == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->min + i;
            *p = q;
            return QB_OK;
        }
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: unknown name '%.*s'", f->name,
                      (int)(q - s), s);
}

/* One comma-separated item [*|a|a-b][/step] in [s, end) into *bits. */
static qb_err_t parse_item(const field_spec_t *f, const char *s, const char *end, uint64_t *bits,
                           char *errstr, size_t errstr_size) {
    if (s == end)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: empty item in list", f->name);
    const char *p = s;
    int lo, hi, step = 1, has_range = 0;
    if (*p == '*') {
        lo = f->min;
        hi = f->max;
        p++;
        has_range = 1;
    } else {
        qb_err_t e = parse_value(f, &p, end, &lo, errstr, errstr_size);
        if (e != QB_OK) return e;
        hi = lo;
        if (p < end && *p == '-') {
            p++;
            e = parse_value(f, &p, end, &hi, errstr, errstr_size);
            if (e != QB_OK) return e;
            if (hi < lo)
                return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                  "%s: range %.*s has start after end", f->name, (int)(p - s),
                                  s);
            has_range = 1;
        }
    }
    if (p < end && *p == '/') {
        const char *st = ++p;
        long v = 0;
        while (p < end && isdigit((unsigned char)*p)) {
            if (v < 1000) v = v * 10 + (*p - '0');
            p++;
        }
        if (p == st || v < 1 || v > f->max - f->min + 1 || p != end)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: bad step '%.*s' in '%.*s' (1-%d)", f->name,
                              (int)(end - st), st, (int)(end - s), s, f->max - f->min + 1);
        step = (int)v;
        if (!has_range) hi = f->max; /* "a/s" = a-MAX/s */
    }
    if (p != end)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: bad item '%.*s'", f->name,
                          (int)(end - s), s);
    for (int v = lo; v <= hi; v += step) *bits |= 1ULL << v;
    return QB_OK;
}

static qb_err_t parse_field(const field_spec_t *f, const char *s, const char *end,
                            uint64_t *bits, uint8_t *star, char *errstr, size_t errstr_size) {
    *bits = 0;
    *star = (s < end && *s == '*');
    const char *p = s;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *ie = c ? c : end;
        qb_err_t e = parse_item(f, p, ie, bits, errstr, errstr_size);
        if (e != QB_OK) return e;
        if (!c) break;
        p = c + 1;
    }
    return QB_OK;
}

static const struct {
    const char *name, *expr;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

qb_err_t qb_cron_parse(const char *expr, qb_cron_t *out, char *errstr, size_t errstr_size) {
    if (!expr) return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "empty cron expression");
    size_t len = strlen(expr);
    if (len > QB_CRON_EXPR_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "cron expression longer than %d characters", QB_CRON_EXPR_MAX);
    const char *s = expr, *e = expr + len;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if (s == e) return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "empty cron expression");
    if (*s == '@') {
        for (size_t i = 0; i < sizeof MACROS / sizeof MACROS[0]; i++)
            if ((size_t)(e - s) == strlen(MACROS[i].name) &&
                strncasecmp(s, MACROS[i].name, (size_t)(e - s)) == 0)
                return qb_cron_parse(MACROS[i].expr, out, errstr, errstr_size);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "unknown shorthand '%.*s' (@yearly, @annually, @monthly, @weekly, "
                          "@daily, @midnight, @hourly)",
                          (int)(e - s), s);
    }
    const char *fs[6], *fe[6];
    int n = 0;
    const char *p = s;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t')) p++;
        if (p == e) break;
        const char *q = p;
        while (q < e && *q != ' ' && *q != '\t') q++;
        if (n < 6) {
            fs[n] = p;
            fe[n] = q;
        }
        n++;
        p = q;
    }
    if (n != 5)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "expected 5 fields (minute hour day-of-month month day-of-week), "
                          "got %d in '%.*s'",
                          n, (int)(e - s), s);
    qb_cron_t c;
    memset(&c, 0, sizeof c);
    uint64_t bits[5];
    uint8_t star[5];
    for (int i = 0; i < 5; i++) {
        qb_err_t err = parse_field(&FIELDS[i], fs[i], fe[i], &bits[i], &star[i], errstr,
                                   errstr_size);
        if (err != QB_OK) return err;
    }
    c.minutes = bits[0];
    c.hours = (uint32_t)bits[1];
    c.mdays = (uint32_t)bits[2];
    c.months = (uint16_t)bits[3];
    uint64_t w = bits[4];
    if (w & (1ULL << 7)) w = (w & ~(1ULL << 7)) | 1ULL; /* 7 = Sunday */
    c.wdays = (uint8_t)w;
    c.mday_star = star[2];
    c.wday_star = star[4];

    /* With AND semantics (one day field unrestricted) some listed day must
     * exist in some listed month, or the expression never fires. */
    if (c.mday_star || c.wday_star) {
        static const int max_mday[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int possible = 0;
        for (int m = 1; m <= 12 && !possible; m++)
            if (c.months & (1u << m))
                for (int d = 1; d <= max_mday[m]; d++)
                    if (c.mdays & (1u << d)) {
                        possible = 1;
                        break;
                    }
        if (!possible)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "day-of-month: '%.*s' never occurs in month '%.*s'",
                              (int)(fe[2] - fs[2]), fs[2], (int)(fe[3] - fs[3]), fs[3]);
    }
    *out = c;
    return QB_OK;
}

static int weekday_of(int y, int m, int d) {
    int64_t days = qb_time_days_from_civil(y, m, d);
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int day_matches(const qb_cron_t *c, int y, int m, int d) {
    int dom = (c->mdays >> d) & 1u;
    int dow = (c->wdays >> weekday_of(y, m, d)) & 1u;
    return (c->mday_star || c->wday_star) ? (dom && dow) : (dom || dow);
}

int qb_cron_matches(const qb_cron_t *cron, const qb_civil_t *l) {
    return ((cron->months >> l->month) & 1u) && day_matches(cron, l->year, l->month, l->day) &&
           ((cron->hours >> l->hour) & 1u) && ((cron->minutes >> l->min) & 1ULL);
}

/* Civil carries (the fields below the one advanced are reset by callers). */
static void next_month(qb_civil_t *c) {
    c->day = 1;
    c->hour = 0;
    c->min = 0;
    if (++c->month > 12) {
        c->month = 1;
        c->year++;
    }
}
static void next_day(qb_civil_t *c) {
    c->hour = 0;
    c->min = 0;
    if (++c->day > qb_time_days_in_month(c->year, c->month)) {
        next_month(c);
        return;
    }
}
static void next_hour(qb_civil_t *c) {
    c->min = 0;
    if (++c->hour > 23) next_day(c);
}
static void next_minute(qb_civil_t *c) {
    if (++c->min > 59) next_hour(c);
}

/* Advance *c to the first matching local minute at or after it. */
static qb_err_t search(const qb_cron_t *cr, qb_civil_t *c, int year_limit) {
    while (c->year <= year_limit) {
        if (!((cr->months >> c->month) & 1u)) {
            next_month(c);
        } else if (!day_matches(cr, c->year, c->month, c->day)) {
            next_day(c);
        } else if (!((cr->hours >> c->hour) & 1u)) {
            next_hour(c);
        } else if (!((cr->minutes >> c->min) & 1ULL)) {
            next_minute(c);
        } else {
            return QB_OK;
        }
    }
    return QB_ERR_NOT_FOUND;
}

static qb_err_t utc_to_local(void *ctx, qb_time_t t, qb_civil_t *l) {
    qb_time_to_civil(t, l);
    return QB_OK;
}
static qb_err_t utc_from_local(void *ctx, const qb_civil_t *l, qb_time_t *out) {
    return qb_time_from_civil(l, out);
}
static const qb_cron_zone_t UTC_ZONE = {utc_to_local, utc_from_local, NULL};

static int same_minute(const qb_civil_t *a, const qb_civil_t *b) {
    return a->year == b->year && a->month == b->month && a->day == b->day &&
           a->hour == b->hour && a->min == b->min;
}

/* Local minute `l` -> UTC: 1 and *t if that wall time exists, else 0. */
static int exists(const qb_cron_zone_t *z, const qb_civil_t *l, qb_time_t *t) {
    qb_time_t u;
    qb_civil_t back;
    if (z->from_local(z->ctx, l, &u) != QB_OK) return 0;
    if (z->to_local(z->ctx, u, &back) != QB_OK) return 0;
    if (!same_minute(&back, l)) return 0;
    *t = u;
    return 1;
}

qb_err_t qb_cron_next(const qb_cron_t *cron, const qb_cron_zone_t *zone, qb_time_t after,
                      qb_time_t *next, char *errstr, size_t errstr_size) {
    const qb_cron_zone_t *z = zone ? zone : &UTC_ZONE;
    qb_civil_t c;
    qb_err_t e = z->to_local(z->ctx, after, &c);
    if (e != QB_OK)
        return qb_err_set(errstr, errstr_size, e, "cron: cannot convert %lld ns to local time",
                          (long long)after);
    c.sec = 0;
    c.nsec = 0;
    next_minute(&c);
    int year_limit = c.year + CRON_SEARCH_YEARS;
    for (;;) {
        if (search(cron, &c, year_limit) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                              "cron: no firing within %d years", CRON_SEARCH_YEARS);
        qb_time_t t;
        if (!exists(z, &c, &t)) {
            /* Skipped by a spring-forward transition: the first local minute
             * after it that exists. */
            qb_civil_t g = c;
            int found = 0;
            for (int i = 0; i < CRON_GAP_MINUTES && !found; i++) {
                next_minute(&g);
                found = exists(z, &g, &t);
            }
            if (!found)
                return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                                  "cron: local time %04d-%02d-%02d %02d:%02d cannot be "
                                  "converted to UTC",
                                  c.year, c.month, c.day, c.hour, c.min);
        }
        /* A repeated wall time converts to its FIRST occurrence; if that is
         * not after `after`, we are in the second pass: it already fired. */
        if (t > after) {
            *next = t;
            return QB_OK;
        }
        next_minute(&c);
    }
}

qb_err_t qb_cron_next_expr(const char *expr, const qb_cron_zone_t *zone, qb_time_t after,
                           qb_time_t *next, char *errstr, size_t errstr_size) {
    qb_cron_t c;
    qb_err_t e = qb_cron_parse(expr, &c, errstr, errstr_size);
    if (e != QB_OK) return e;
    return qb_cron_next(&c, zone, after, next, errstr, errstr_size);
}
