/* qb_time.c — UTC nanosecond time: clocks, ISO-8601 parse/format and the
 * calendar arithmetic behind them; see qb_time.h. Owns nothing.
 *
 * All division here rounds toward -infinity (qb_divmod_floor), so instants
 * before 1970 land in the right second and day. */
#include "core/qb_time.h"

#include <string.h>
#include <time.h>

/* ---- calendar ----------------------------------------------------------- */

/* q = floor(a / b), r = a - q*b in [0, b), for b > 0; never overflows. */
static void qb_divmod_floor(int64_t a, int64_t b, int64_t *q, int64_t *r) {
    int64_t qq = a / b, rr = a % b;
    if (rr < 0) {
        rr += b;
        qq--;
    }
    *q = qq;
    *r = rr;
}

int qb_time_is_leap_year(int year) {
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

int qb_time_days_in_month(int year, int month) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12) return 0;
    return days[month - 1] + (month == 2 && qb_time_is_leap_year(year));
}

/* Hinnant's days_from_civil: count in 400-year eras of 146097 days, with
 * years starting on March 1 so the leap day is the last day of a year. */
int64_t qb_time_days_from_civil(int year, int month, int day) {
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                         /* [0, 399] */
    int64_t mp = (month + 9) % 12;                       /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + day - 1;          /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
    return era * 146097 + doe - 719468; /* 719468: 0000-03-01 .. 1970-01-01 */
}

/* Hinnant's civil_from_days, the inverse of the above. */
void qb_time_civil_from_days(int64_t days, int *year, int *month, int *day) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

void qb_time_to_civil(qb_time_t t, qb_civil_t *c) {
    int64_t secs, nsec, days, sod;
    qb_divmod_floor(t, QB_NS_PER_SEC, &secs, &nsec);
    qb_divmod_floor(secs, 86400, &days, &sod);
    qb_time_civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (int)(sod / 3600);
    c->min = (int)(sod / 60 % 60);
    c->sec = (int)(sod % 60);
    c->nsec = (int)nsec;
}

/* Check every field; messages name the field and its allowed range. */
static qb_err_t qb_civil_check(const qb_civil_t *c, char *errstr, size_t n) {
    if (c->month < 1 || c->month > 12)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "month %d out of range 1..12",
                          c->month);
    if (c->day < 1 || c->day > qb_time_days_in_month(c->year, c->month))
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "day %d out of range for %04d-%02d", c->day, c->year,
                          c->month);
    if (c->hour < 0 || c->hour > 23)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "hour %d out of range 0..23",
                          c->hour);
    if (c->min < 0 || c->min > 59)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "minute %d out of range 0..59", c->min);
    if (c->sec == 60)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "leap second :60 is not supported");
    if (c->sec < 0 || c->sec > 59)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "second %d out of range 0..59", c->sec);
    if (c->nsec < 0 || c->nsec > 999999999)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "nanosecond %d out of range", c->nsec);
    return QB_OK;
}

/* The instant of civil time c at UTC offset off_sec (local = UTC + off). */
static qb_err_t qb_civil_to_time(const qb_civil_t *c, int off_sec,
                                 qb_time_t *out, char *errstr, size_t n) {
    qb_err_t err = qb_civil_check(c, errstr, n);
    if (err != QB_OK) return err;
    int64_t secs = qb_time_days_from_civil(c->year, c->month, c->day) * 86400 +
                   c->hour * 3600 + c->min * 60 + c->sec - off_sec;
    int64_t lo = qb_time_days_from_civil(QB_TIME_YEAR_MIN, 1, 1) * 86400;
    int64_t hi = qb_time_days_from_civil(QB_TIME_YEAR_MAX + 1, 1, 1) * 86400;
    if (secs < lo || secs >= hi)
        return qb_err_set(errstr, n, QB_ERR_RANGE,
                          "instant outside the years %d..%d UTC",
                          QB_TIME_YEAR_MIN, QB_TIME_YEAR_MAX);
    *out = secs * QB_NS_PER_SEC + c->nsec;
    return QB_OK;
}

qb_err_t qb_time_from_civil(const qb_civil_t *c, qb_time_t *out) {
    return qb_civil_to_time(c, 0, out, NULL, 0);
}

/* ---- clocks ----------------------------------------------------------------- */

static int64_t qb_clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * QB_NS_PER_SEC + ts.tv_nsec;
}

qb_time_t qb_time_now(void) { return qb_clock_ns(CLOCK_REALTIME); }

int64_t qb_time_mono_ns(void) { return qb_clock_ns(CLOCK_MONOTONIC); }

/* ---- parsing ---------------------------------------------------------------- */

typedef struct qb_tparse_s {
    const char *s;
    size_t len, i;
} qb_tparse_t;

static int qb_tp_peek(const qb_tparse_t *p) {
    return p->i < p->len ? (unsigned char)p->s[p->i] : -1;
}

/* Consume c if it is next. */
static int qb_tp_lit(qb_tparse_t *p, char c) {
    if (qb_tp_peek(p) != (unsigned char)c) return 0;
    p->i++;
    return 1;
}

/* Exactly ndigits decimal digits. */
static int qb_tp_num(qb_tparse_t *p, int ndigits, int *out) {
    int v = 0;
    for (int k = 0; k < ndigits; k++) {
        int c = qb_tp_peek(p);
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
        p->i++;
    }
    *out = v;
    return 1;
}

static qb_err_t qb_tp_date(qb_tparse_t *p, qb_civil_t *c, char *errstr,
                           size_t n) {
    if (qb_tp_num(p, 4, &c->year) && qb_tp_lit(p, '-') &&
        qb_tp_num(p, 2, &c->month) && qb_tp_lit(p, '-') &&
        qb_tp_num(p, 2, &c->day))
        return QB_OK;
    return qb_err_set(errstr, n, QB_ERR_PARSE, "expected YYYY-MM-DD at offset %zu",
                      p->i);
}

/* ".f" with 1..9 digits, scaled to nanoseconds. */
static qb_err_t qb_tp_frac(qb_tparse_t *p, qb_civil_t *c, char *errstr,
                           size_t n) {
    int digits = 0, v = 0, d;
    while ((d = qb_tp_peek(p)) >= '0' && d <= '9') {
        if (++digits > 9)
            return qb_err_set(errstr, n, QB_ERR_PARSE,
                              "more than 9 fractional digits");
        v = v * 10 + (d - '0');
        p->i++;
    }
    if (digits == 0)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "expected digits after '.' at offset %zu", p->i);
    for (; digits < 9; digits++) v *= 10;
    c->nsec = v;
    return QB_OK;
}

static qb_err_t qb_tp_time(qb_tparse_t *p, qb_civil_t *c, char *errstr,
                           size_t n) {
    if (!qb_tp_lit(p, 'T') && !qb_tp_lit(p, 't') && !qb_tp_lit(p, ' '))
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "expected 'T' or ' ' after the date at offset %zu",
                          p->i);
    if (!(qb_tp_num(p, 2, &c->hour) && qb_tp_lit(p, ':') &&
          qb_tp_num(p, 2, &c->min) && qb_tp_lit(p, ':') &&
          qb_tp_num(p, 2, &c->sec)))
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "expected hh:mm:ss at offset %zu", p->i);
    if (qb_tp_lit(p, '.')) return qb_tp_frac(p, c, errstr, n);
    return QB_OK;
}

/* "Z", "z", "±hh:mm" or "±hhmm" -> seconds east of UTC. */
static qb_err_t qb_tp_offset(qb_tparse_t *p, int *off_sec, char *errstr,
                             size_t n) {
    if (qb_tp_lit(p, 'Z') || qb_tp_lit(p, 'z')) return QB_OK;
    int sign = qb_tp_peek(p) == '-' ? -1 : 1;
    int hh = 0, mm = 0;
    int ok = qb_tp_lit(p, '+') || qb_tp_lit(p, '-');
    ok = ok && qb_tp_num(p, 2, &hh);
    if (ok) qb_tp_lit(p, ':'); /* optional: "+05:30" and "+0530" */
    ok = ok && qb_tp_num(p, 2, &mm);
    if (!ok)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "expected Z, +hh:mm or +hhmm at offset %zu", p->i);
    if (hh > 23 || mm > 59)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "UTC offset %02d:%02d out of range", hh, mm);
    *off_sec = sign * (hh * 3600 + mm * 60);
    return QB_OK;
}

qb_err_t qb_time_parse_ex(const char *s, size_t len, qb_time_t *out,
                          char *errstr, size_t errstr_size) {
    qb_tparse_t p = {s, len, 0};
    qb_civil_t c = {0};
    int off_sec = 0;
    qb_err_t err = qb_tp_date(&p, &c, errstr, errstr_size);
    if (err == QB_OK && p.i < len) err = qb_tp_time(&p, &c, errstr, errstr_size);
    if (err == QB_OK && p.i < len)
        err = qb_tp_offset(&p, &off_sec, errstr, errstr_size);
    if (err == QB_OK && p.i < len)
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                         "unexpected character at offset %zu", p.i);
    if (err != QB_OK) return err;
    return qb_civil_to_time(&c, off_sec, out, errstr, errstr_size);
}

qb_err_t qb_time_parse(const char *s, size_t len, qb_time_t *out) {
    return qb_time_parse_ex(s, len, out, NULL, 0);
}

/* ---- formatting ------------------------------------------------------------- */

/* Exactly width digits of v (v >= 0), zero-padded; returns the end. */
static char *qb_put_num(char *p, int64_t v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* ".fff", ".ffffff" or ".fffffffff": the fewest of those that is exact. */
static char *qb_put_frac(char *p, int nsec) {
    if (nsec == 0) return p;
    *p++ = '.';
    if (nsec % 1000000 == 0) return qb_put_num(p, nsec / 1000000, 3);
    if (nsec % 1000 == 0) return qb_put_num(p, nsec / 1000, 6);
    return qb_put_num(p, nsec, 9);
}

size_t qb_time_format(qb_time_t t, char *buf, size_t cap) {
    char tmp[QB_TIME_STRLEN];
    qb_civil_t c;
    qb_time_to_civil(t, &c);
    char *p = qb_put_num(tmp, c.year, 4);
    *p++ = '-';
    p = qb_put_num(p, c.month, 2);
    *p++ = '-';
    p = qb_put_num(p, c.day, 2);
    *p++ = 'T';
    p = qb_put_num(p, c.hour, 2);
    *p++ = ':';
    p = qb_put_num(p, c.min, 2);
    *p++ = ':';
    p = qb_put_num(p, c.sec, 2);
    p = qb_put_frac(p, c.nsec);
    *p++ = 'Z';
    size_t len = (size_t)(p - tmp);
    if (cap > 0) {
        size_t k = len < cap ? len : cap - 1;
        memcpy(buf, tmp, k);
        buf[k] = '\0';
    }
    return len;
}

/* ---- conversions ------------------------------------------------------------ */

static qb_err_t qb_time_scale(int64_t v, int64_t ns_per, qb_time_t *out) {
    qb_time_t r;
    if (__builtin_mul_overflow(v, ns_per, &r)) return QB_ERR_RANGE;
    *out = r;
    return QB_OK;
}

qb_err_t qb_time_from_unix_s(int64_t s, qb_time_t *out) {
    return qb_time_scale(s, QB_NS_PER_SEC, out);
}

qb_err_t qb_time_from_unix_ms(int64_t ms, qb_time_t *out) {
    return qb_time_scale(ms, QB_NS_PER_MS, out);
}

qb_err_t qb_time_from_unix_us(int64_t us, qb_time_t *out) {
    return qb_time_scale(us, QB_NS_PER_US, out);
}

int64_t qb_time_to_unix_s(qb_time_t t) {
    int64_t q, r;
    qb_divmod_floor(t, QB_NS_PER_SEC, &q, &r);
    return q;
}

int64_t qb_time_to_unix_ms(qb_time_t t) {
    int64_t q, r;
    qb_divmod_floor(t, QB_NS_PER_MS, &q, &r);
    return q;
}

qb_err_t qb_time_floor(qb_time_t t, int64_t unit_ns, qb_time_t *out) {
    int64_t q, r;
    qb_time_t res;
    if (unit_ns <= 0) return QB_ERR_INVALID;
    qb_divmod_floor(t, unit_ns, &q, &r);
    if (__builtin_sub_overflow(t, r, &res)) return QB_ERR_RANGE;
    *out = res;
    return QB_OK;
}

qb_err_t qb_time_trunc_day(qb_time_t t, qb_time_t *out) {
    return qb_time_floor(t, QB_NS_PER_DAY, out);
}

int qb_time_weekday(qb_time_t t) {
    int64_t days, ns;
    qb_divmod_floor(t, QB_NS_PER_DAY, &days, &ns);
    return (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
}
