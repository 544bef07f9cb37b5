/* qb_md_csv.c — the CSV source: a streaming line reader, a field splitter
 * with quotes, header detection, and fast paths for the common number and
 * date shapes (falling back to libs/core's full parsers). See qb_md_csv.h.
 *
 * Depends on libs/core and qb_md_source only, so the fuzz target can compile
 * it with libs/core alone. Memory: one read buffer (1 MiB), one batch of
 * bars and their line numbers, one scratch line for unquoting; nothing grows
 * with the file. */
#include "md/qb_md_csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"

#define MD_CSV_READ (1u << 20)   /* read(2) buffer */
#define MD_CSV_LINE_MAX 65536u   /* longer lines are rejected */
#define MD_CSV_MAXF 64           /* fields kept per line (more are counted) */

static const char *const md_csv_colname[QB_MD_CSV_NCOLS] = {"time", "open", "high",
                                                            "low", "close", "volume"};
static const char *const md_yahoo_names[QB_MD_CSV_NCOLS] = {"Date", "Open", "High",
                                                            "Low", "Close", "Volume"};
static const int md_yahoo_index[QB_MD_CSV_NCOLS] = {0, 1, 2, 3, 4, 6};

typedef struct md_field_s {
    const char *p;
    size_t len;
} md_field_t;

typedef struct md_csv_s {
    qb_md_source_t base;
    char *name;
    const char *mem; /* buffer source, or NULL for a file */
    size_t memlen;
    qb_md_csv_format_t format;
    qb_md_csv_time_t tfmt;
    char delim;
    char *names[QB_MD_CSV_NCOLS]; /* owned copies; NULL = by index */
    int index[QB_MD_CSV_NCOLS];
    size_t batch;

    /* fetch state */
    const qb_md_request_t *req;
    const qb_md_sink_t *sink;
    int daily;
    qb_time_t from, to;
    int col[QB_MD_CSV_NCOLS]; /* resolved column indexes (-1 = none) */
    int need;                 /* columns a line must have */
    int seen_first;
    int skipping;             /* inside an over-long line */
    int64_t lineno;
    qb_bar_t tmpl;
    qb_bar_t *bars;
    int64_t *lines;
    size_t nb;
    int delivering;           /* inside sink->bars */
    char *scratch;            /* unquoted field text */
    md_field_t f[MD_CSV_MAXF];
    qb_err_t err;             /* first fatal error */
    char *errstr;
    size_t errstr_size;
} md_csv_t;

static const qb_md_source_ops_t md_csv_ops;

/* ---- small helpers --------------------------------------------------------- */

/* Printable, bounded copy of a field for messages. */
static void md_show(const char *p, size_t len, char *out, size_t cap) {
    size_t o = 0, i = 0, max = cap - 4;
    for (; i < len && o < max; i++) {
        unsigned char ch = (unsigned char)p[i];
        out[o++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    if (i < len) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
}

static void md_reject(md_csv_t *c, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void md_reject(md_csv_t *c, int64_t line, const char *fmt, ...) {
    if (!c->sink->reject) return;
    char where[512], reason[512];
    snprintf(where, sizeof where, "%s:%lld", c->name, (long long)line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->sink->reject(c->sink->opaque, where, reason);
}

/* Plain decimal "[-+]d{1,10}[.d{0,8}]" or "[-+].d{1,8}" without a call;
 * 0 when the text is anything else (the caller falls back). */
static int md_dec_fast(const char *s, size_t len, qb_dec_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    int64_t ip = 0;
    size_t id = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++id > 10) return 0;
        ip = ip * 10 + (s[i++] - '0');
    }
    int64_t fp = 0;
    size_t fd = 0;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (++fd > 8) return 0;
            fp = fp * 10 + (s[i++] - '0');
        }
    }
    if (i != len || id + fd == 0) return 0;
    static const int64_t pow10[9] = {100000000, 10000000, 1000000, 100000, 10000,
                                     1000,      100,      10,      1};
    int64_t v = ip * QB_DEC_SCALE + fp * pow10[fd];
    *out = neg ? -v : v;
    return 1;
}

static int md_is_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static int md_num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* "YYYY-MM-DD" -> midnight UTC. */
static qb_err_t md_parse_date(const char *s, size_t len, qb_time_t *out) {
    if (len != 10 || s[4] != '-' || s[7] != '-' || !md_is_digits(s, 4) ||
        !md_is_digits(s + 5, 2) || !md_is_digits(s + 8, 2))
        return QB_ERR_PARSE;
    int y = md_num2(s) * 100 + md_num2(s + 2), m = md_num2(s + 5), d = md_num2(s + 8);
    if (m < 1 || m > 12 || d < 1 || d > qb_time_days_in_month(y, m)) return QB_ERR_PARSE;
    if (y < QB_TIME_YEAR_MIN || y > QB_TIME_YEAR_MAX) return QB_ERR_RANGE;
    *out = qb_time_days_from_civil(y, m, d) * QB_NS_PER_DAY;
    return QB_OK;
}

static qb_err_t md_parse_int(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == len || len - i > 18 || !md_is_digits(s + i, len - i)) return QB_ERR_PARSE;
    int64_t v = 0;
    for (; i < len; i++) v = v * 10 + (s[i] - '0');
    *out = neg ? -v : v;
    return QB_OK;
}

/* Parse the time field per the format; on failure write a reason (without
 * the code) into why. */
static qb_err_t md_parse_time(md_csv_t *c, const char *s, size_t len, qb_time_t *out,
                              char *why, size_t cap) {
    qb_err_t err;
    int64_t v;
    switch (c->tfmt) {
    case QB_MD_CSV_TIME_DATE:
        err = md_parse_date(s, len, out);
        if (err == QB_ERR_RANGE) snprintf(why, cap, "year outside %d..%d", QB_TIME_YEAR_MIN, QB_TIME_YEAR_MAX);
        else if (err) snprintf(why, cap, "is not a date YYYY-MM-DD");
        return err;
    case QB_MD_CSV_TIME_ISO: {
        int has_off = len > 10 && (s[len - 1] == 'Z' || s[len - 1] == 'z');
        for (size_t i = 11; !has_off && i < len; i++)
            if (s[i] == '+' || s[i] == '-') has_off = 1;
        char e[160];
        err = qb_time_parse_ex(s, len, out, e, sizeof e);
        if (err) {
            snprintf(why, cap, "is not an ISO-8601 timestamp (%s)", e);
            return err;
        }
        if (!has_off) {
            snprintf(why, cap, "has no UTC offset (Z or +hh:mm): local times are ambiguous");
            return QB_ERR_PARSE;
        }
        if (c->daily) return md_parse_date(s, 10, out); /* the local session date */
        return QB_OK;
    }
    case QB_MD_CSV_TIME_UNIX_S:
    case QB_MD_CSV_TIME_UNIX_MS:
        if (md_parse_int(s, len, &v) != QB_OK) {
            snprintf(why, cap, "is not an integer %s", c->tfmt == QB_MD_CSV_TIME_UNIX_S ? "of seconds" : "of milliseconds");
            return QB_ERR_PARSE;
        }
        err = c->tfmt == QB_MD_CSV_TIME_UNIX_S ? qb_time_from_unix_s(v, out)
                                               : qb_time_from_unix_ms(v, out);
        if (!err && c->daily) err = qb_time_floor(*out, QB_NS_PER_DAY, out);
        if (err) snprintf(why, cap, "is out of the representable range");
        return err ? QB_ERR_RANGE : QB_OK;
    }
    snprintf(why, cap, "unknown time format");
    return QB_ERR_INVALID;
}

/* Split a line into c->f[]; returns the number of fields, or -1 (bad quote,
 * reported). Quoted fields are unquoted into c->scratch. */
static int md_split(md_csv_t *c, const char *p, size_t len, int64_t line) {
    int nf = 0;
    size_t i = 0;
    char *sc = c->scratch;
    for (;;) {
        const char *start;
        size_t flen;
        while (i < len && p[i] == ' ') i++;
        if (i < len && p[i] == '"') {
            i++;
            start = sc;
            int closed = 0;
            while (i < len) {
                if (p[i] == '"') {
                    if (i + 1 < len && p[i + 1] == '"') {
                        *sc++ = '"';
                        i += 2;
                        continue;
                    }
                    closed = 1;
                    i++;
                    break;
                }
                *sc++ = p[i++];
            }
            flen = (size_t)(sc - start);
            if (!closed) {
                md_reject(c, line, "bad_quote: field %d: unterminated quoted field", nf + 1);
                return -1;
            }
            while (i < len && p[i] == ' ') i++;
            if (i < len && p[i] != c->delim) {
                md_reject(c, line, "bad_quote: field %d: text after the closing quote", nf + 1);
                return -1;
            }
        } else {
            start = p + i;
            const char *d = memchr(start, c->delim, len - i);
            size_t end = d ? (size_t)(d - p) : len;
            flen = end - i;
            i = end;
            while (flen > 0 && start[flen - 1] == ' ') flen--;
        }
        if (nf < MD_CSV_MAXF) {
            c->f[nf].p = start;
            c->f[nf].len = flen;
        }
        nf++;
        if (i >= len) break;
        i++; /* the delimiter */
    }
    return nf;
}

static int md_name_eq(const md_field_t *f, const char *name) {
    size_t n = strlen(name);
    return f->len == n && strncasecmp(f->p, name, n) == 0;
}

/* First line: decide header or data, resolve names. 1 = it was a header,
 * 0 = data, -1 = fatal (c->err set). */
static int md_header(md_csv_t *c, int nf, int64_t line) {
    int byname = 0;
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++)
        if (c->names[k]) byname = 1;
    int tcol = c->index[QB_MD_CSV_COL_TIME];
    int is_header = 1;
    if (!byname || c->format == QB_MD_CSV_YAHOO) {
        qb_time_t t;
        char why[200];
        if (tcol < nf && tcol < MD_CSV_MAXF &&
            md_parse_time(c, c->f[tcol].p, c->f[tcol].len, &t, why, sizeof why) == QB_OK)
            is_header = 0;
    }
    if (!is_header) {
        for (int k = 0; k < QB_MD_CSV_NCOLS; k++) c->col[k] = c->index[k];
        return 0;
    }
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++) {
        if (!c->names[k]) {
            c->col[k] = c->index[k];
            continue;
        }
        c->col[k] = -1;
        for (int j = 0; j < nf && j < MD_CSV_MAXF; j++) {
            if (md_name_eq(&c->f[j], c->names[k])) {
                c->col[k] = j;
                break;
            }
        }
        if (c->col[k] < 0) {
            c->err = qb_err_set(c->errstr, c->errstr_size, QB_ERR_PARSE,
                                "%s:%lld: header has no column \"%s\" (%s)", c->name,
                                (long long)line, c->names[k], md_csv_colname[k]);
            return -1;
        }
    }
    return 1;
}

static qb_err_t md_flush(md_csv_t *c) {
    if (c->nb == 0) return QB_OK;
    c->delivering = 1;
    qb_err_t err = c->sink->bars(c->sink->opaque, c->bars, c->nb, c->errstr, c->errstr_size);
    c->delivering = 0;
    c->nb = 0;
    return err;
}

/* Parse one value column k into *out; 0 when rejected (reported). */
static int md_value(md_csv_t *c, int k, int64_t line, qb_dec_t *out) {
    const md_field_t *f = &c->f[c->col[k]];
    const char *colname = c->format == QB_MD_CSV_YAHOO ? md_yahoo_names[k] : md_csv_colname[k];
    if (md_dec_fast(f->p, f->len, out)) return 1;
    if (f->len == 0) {
        md_reject(c, line, "missing_value: column %s (%d) is empty", colname, c->col[k] + 1);
        return 0;
    }
    if (f->len == 4 && strncasecmp(f->p, "null", 4) == 0) {
        md_reject(c, line, "null_value: column %s (%d) is null%s", colname, c->col[k] + 1,
                  c->format == QB_MD_CSV_YAHOO ? " (Yahoo writes null for a day without data)" : "");
        return 0;
    }
    qb_err_t err = qb_dec_parse_round(f->p, f->len, out, QB_ROUND_HALF_EVEN);
    if (err == QB_OK) return 1;
    char v[48];
    md_show(f->p, f->len, v, sizeof v);
    md_reject(c, line, "bad_number: column %s (%d): '%s' %s", colname, c->col[k] + 1, v,
              err == QB_ERR_OVERFLOW ? "is out of range" : "is not a decimal number");
    return 0;
}

/* One physical line (without its '\n'). */
static void md_line(md_csv_t *c, const char *p, size_t len, int64_t line) {
    if (len && p[len - 1] == '\r') len--;
    if (!c->seen_first && len >= 3 && (unsigned char)p[0] == 0xEF &&
        (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) {
        p += 3;
        len -= 3;
    }
    size_t blank = 0;
    while (blank < len && (p[blank] == ' ' || p[blank] == '\t')) blank++;
    if (blank == len) return;
    int nf = md_split(c, p, len, line);
    if (nf < 0) {
        if (!c->seen_first) { /* a broken first line: resolve by index */
            c->seen_first = 1;
            for (int k = 0; k < QB_MD_CSV_NCOLS; k++) {
                c->col[k] = c->index[k];
                if (c->col[k] < 0 && k != QB_MD_CSV_COL_VOLUME)
                    c->err = qb_err_set(c->errstr, c->errstr_size, QB_ERR_PARSE,
                                        "%s:%lld: the header line is malformed; cannot find "
                                        "column \"%s\"", c->name, (long long)line,
                                        c->names[k] ? c->names[k] : md_csv_colname[k]);
            }
        }
        return;
    }
    if (!c->seen_first) {
        c->seen_first = 1;
        int h = md_header(c, nf, line);
        if (h != 0) return; /* header line, or fatal */
    }
    if (!c->need) {
        for (int k = 0; k < QB_MD_CSV_NCOLS; k++)
            if (c->col[k] + 1 > c->need) c->need = c->col[k] + 1;
        if (c->need > MD_CSV_MAXF) c->need = MD_CSV_MAXF + 1; /* never satisfiable */
    }
    if (nf < c->need || c->need > MD_CSV_MAXF) {
        md_reject(c, line, "column_count: %d column%s, need at least %d", nf, nf == 1 ? "" : "s",
                  c->need);
        return;
    }
    qb_bar_t *b = &c->bars[c->nb];
    const md_field_t *tf = &c->f[c->col[QB_MD_CSV_COL_TIME]];
    char why[200];
    qb_time_t ts;
    if (tf->len == 0) {
        md_reject(c, line, "missing_value: column %s (%d) is empty",
                  c->format == QB_MD_CSV_YAHOO ? "Date" : "time", c->col[QB_MD_CSV_COL_TIME] + 1);
        return;
    }
    if (md_parse_time(c, tf->p, tf->len, &ts, why, sizeof why) != QB_OK) {
        char v[48];
        md_show(tf->p, tf->len, v, sizeof v);
        md_reject(c, line, "bad_time: column %s (%d): '%s' %s",
                  c->format == QB_MD_CSV_YAHOO ? "Date" : "time", c->col[QB_MD_CSV_COL_TIME] + 1,
                  v, why);
        return;
    }
    qb_dec_t v[5] = {0, 0, 0, 0, 0};
    for (int k = QB_MD_CSV_COL_OPEN; k < QB_MD_CSV_NCOLS; k++) {
        if (c->col[k] < 0) continue;
        if (!md_value(c, k, line, &v[k - 1])) return;
    }
    if (ts < c->from || (c->to && ts >= c->to)) return;
    *b = c->tmpl;
    b->ts = ts;
    b->open = v[0];
    b->high = v[1];
    b->low = v[2];
    b->close = v[3];
    b->volume = v[4];
    c->lines[c->nb] = line;
    if (++c->nb == c->batch) c->err = md_flush(c);
}

/* Process the complete lines of data[0..len); with eof the last, unended
 * line too. Returns how many bytes were consumed. */
static size_t md_scan(md_csv_t *c, const char *data, size_t len, int eof) {
    size_t pos = 0;
    while (pos < len && !c->err) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl && !eof) break;
        size_t l = nl ? (size_t)(nl - (data + pos)) : len - pos;
        if (c->skipping) {
            c->skipping = 0;
        } else {
            c->lineno++;
            if (l > MD_CSV_LINE_MAX)
                md_reject(c, c->lineno, "line_too_long: %zu bytes, at most %u", l, MD_CSV_LINE_MAX);
            else
                md_line(c, data + pos, l, c->lineno);
        }
        pos += l + (nl ? 1 : 0);
    }
    return pos;
}

static qb_err_t md_csv_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                             const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    md_csv_t *c = (md_csv_t *)src;
    int64_t tfns;
    if (qb_timeframe_parse(req->timeframe, &tfns) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv %s: unknown timeframe \"%s\"",
                          c->name, req->timeframe);
    memset(&c->tmpl, 0, sizeof c->tmpl);
    if (qb_symbol_set(&c->tmpl.symbol, req->symbol, errstr, errstr_size) != QB_OK)
        return QB_ERR_INVALID;
    snprintf(c->tmpl.timeframe, sizeof c->tmpl.timeframe, "%s", req->timeframe);
    c->req = req;
    c->sink = sink;
    c->daily = tfns >= QB_NS_PER_DAY;
    c->from = req->from ? req->from : INT64_MIN;
    c->to = req->to;
    c->seen_first = c->skipping = 0;
    c->need = 0;
    c->lineno = 0;
    c->nb = 0;
    c->err = QB_OK;
    c->errstr = errstr;
    c->errstr_size = errstr_size;
    c->bars = malloc(sizeof(qb_bar_t) * c->batch);
    c->lines = malloc(sizeof(int64_t) * c->batch);
    c->scratch = malloc(MD_CSV_LINE_MAX + 1);
    char *buf = NULL;
    int fd = -1;
    qb_err_t err = QB_OK;
    if (!c->bars || !c->lines || !c->scratch) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "csv: out of memory");
        goto out;
    }
    if (c->mem) {
        md_scan(c, c->mem, c->memlen, 1);
    } else {
        fd = open(c->name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_IO, "csv: cannot open %s: %s", c->name,
                             strerror(errno));
            goto out;
        }
        buf = malloc(MD_CSV_READ);
        if (!buf) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "csv: out of memory");
            goto out;
        }
        size_t have = 0;
        for (;;) {
            ssize_t r = read(fd, buf + have, MD_CSV_READ - have);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_IO, "csv: reading %s: %s", c->name,
                                 strerror(errno));
                goto out;
            }
            have += (size_t)r;
            size_t used = md_scan(c, buf, have, r == 0);
            if (c->err || r == 0) break;
            memmove(buf, buf + used, have - used);
            have -= used;
            if (have > MD_CSV_LINE_MAX && !c->skipping) {
                c->lineno++;
                md_reject(c, c->lineno, "line_too_long: more than %u bytes", MD_CSV_LINE_MAX);
                c->skipping = 1;
                have = 0;
            } else if (c->skipping && have > 0) {
                have = 0; /* still inside the over-long line */
            }
        }
    }
    if (!c->err) c->err = md_flush(c);
    err = c->err;
out:
    if (fd >= 0) close(fd);
    free(buf);
    free(c->bars);
    free(c->lines);
    free(c->scratch);
    c->bars = NULL;
    c->lines = NULL;
    c->scratch = NULL;
    c->nb = 0;
    return err;
}

static void md_csv_destroy(qb_md_source_t *src) {
    md_csv_t *c = (md_csv_t *)src;
    free(c->name);
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++) free(c->names[k]);
    free(c);
}

static const qb_md_source_ops_t md_csv_ops = {"csv", md_csv_fetch, md_csv_destroy};

static md_csv_t *md_csv_make(const char *name, const qb_md_csv_opts_t *opts, char *errstr,
                             size_t errstr_size) {
    qb_md_csv_opts_t def;
    memset(&def, 0, sizeof def);
    if (!opts) opts = &def;
    if (!name) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: no path");
        return NULL;
    }
    if (opts->format != QB_MD_CSV_YAHOO && opts->format != QB_MD_CSV_GENERIC) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: unknown format %d", (int)opts->format);
        return NULL;
    }
    if (opts->time_format < QB_MD_CSV_TIME_DATE || opts->time_format > QB_MD_CSV_TIME_UNIX_MS) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: unknown time format %d",
                   (int)opts->time_format);
        return NULL;
    }
    char d = opts->delimiter ? opts->delimiter : ',';
    if (d == '"' || d == '\n' || d == '\r' || d == ' ') {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: delimiter cannot be quote, space or newline");
        return NULL;
    }
    md_csv_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "csv: out of memory");
        return NULL;
    }
    c->base.ops = &md_csv_ops;
    c->format = opts->format;
    c->delim = d;
    c->batch = opts->batch ? opts->batch : 8192;
    if (c->format == QB_MD_CSV_YAHOO) {
        c->tfmt = QB_MD_CSV_TIME_DATE;
        for (int k = 0; k < QB_MD_CSV_NCOLS; k++) {
            c->names[k] = strdup(md_yahoo_names[k]);
            c->index[k] = md_yahoo_index[k];
            if (!c->names[k]) goto nomem;
        }
        return c;
    }
    c->tfmt = opts->time_format;
    int any = 0;
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++)
        if (opts->names[k] || opts->index[k]) any = 1;
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++) {
        if (opts->names[k]) {
            if (!opts->names[k][0]) {
                qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: empty name for column %s",
                           md_csv_colname[k]);
                md_csv_destroy(&c->base);
                return NULL;
            }
            if (!(c->names[k] = strdup(opts->names[k]))) goto nomem;
            c->index[k] = -1;
        } else {
            c->index[k] = any ? opts->index[k] : k;
            if (c->index[k] < 0 && k != QB_MD_CSV_COL_VOLUME) {
                qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "csv: column %s has a negative index", md_csv_colname[k]);
                md_csv_destroy(&c->base);
                return NULL;
            }
            if (c->index[k] < 0) c->index[k] = -1;
            if (c->index[k] >= MD_CSV_MAXF) {
                qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: column %s index %d >= %d",
                           md_csv_colname[k], c->index[k], MD_CSV_MAXF);
                md_csv_destroy(&c->base);
                return NULL;
            }
        }
    }
    /* The time column decides header detection: by name needs a header. */
    return c;
nomem:
    md_csv_destroy(&c->base);
    qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "csv: out of memory");
    return NULL;
}

qb_md_source_t *qb_md_csv_source_new(const char *path, const qb_md_csv_opts_t *opts,
                                     char *errstr, size_t errstr_size) {
    md_csv_t *c = md_csv_make(path, opts, errstr, errstr_size);
    return c ? &c->base : NULL;
}

qb_md_source_t *qb_md_csv_source_new_buffer(const char *name, const char *data, size_t len,
                                            const qb_md_csv_opts_t *opts, char *errstr,
                                            size_t errstr_size) {
    if (!data && len) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "csv: NULL buffer");
        return NULL;
    }
    md_csv_t *c = md_csv_make(name, opts, errstr, errstr_size);
    if (!c) return NULL;
    c->mem = data ? data : "";
    c->memlen = len;
    return &c->base;
}

int64_t qb_md_csv_line_of(const qb_md_source_t *src, size_t i) {
    if (!src || src->ops != &md_csv_ops) return 0;
    const md_csv_t *c = (const md_csv_t *)src;
    if (!c->delivering || i >= c->nb) return 0;
    return c->lines[i];
}

const char *qb_md_csv_path(const qb_md_source_t *src) {
    if (!src || src->ops != &md_csv_ops) return "";
    return ((const md_csv_t *)src)->name;
}

qb_err_t qb_md_csv_parse_columns(char *spec, qb_md_csv_opts_t *opts, char *errstr,
                                 size_t errstr_size) {
    if (!spec || !opts) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "columns: NULL");
    char *items[QB_MD_CSV_NCOLS + 1];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(spec, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == QB_MD_CSV_NCOLS + 1) break;
        items[n++] = t;
    }
    if (n < 5 || n > QB_MD_CSV_NCOLS)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "columns: want 5 or 6 entries (time,open,high,low,close[,volume]), got %d", n);
    int keyed = strchr(items[0], '=') != NULL;
    const char *val[QB_MD_CSV_NCOLS] = {0};
    for (int i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        if ((eq != NULL) != keyed)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "columns: mix of key=value and positional entries");
        int k = i;
        const char *v = items[i];
        if (keyed) {
            *eq = '\0';
            v = eq + 1;
            for (k = 0; k < QB_MD_CSV_NCOLS; k++)
                if (strcasecmp(items[i], md_csv_colname[k]) == 0) break;
            if (k == QB_MD_CSV_NCOLS)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "columns: unknown key \"%s\" (time, open, high, low, close, volume)",
                                  items[i]);
        }
        if (!*v) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "columns: empty entry for %s", md_csv_colname[k]);
        val[k] = v;
    }
    for (int k = 0; k < QB_MD_CSV_NCOLS; k++) {
        opts->names[k] = NULL;
        opts->index[k] = -1;
        if (!val[k]) {
            if (k != QB_MD_CSV_COL_VOLUME)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "columns: %s is missing",
                                  md_csv_colname[k]);
            continue;
        }
        if (md_is_digits(val[k], strlen(val[k])) && strlen(val[k]) < 4) opts->index[k] = atoi(val[k]);
        else opts->names[k] = val[k];
    }
    return QB_OK;
}

qb_err_t qb_md_csv_opts_parse(const char *format, char *columns, const char *time_format,
                              qb_md_csv_opts_t *o, char *errstr, size_t errstr_size) {
    memset(o, 0, sizeof *o);
    int has_cols = columns && *columns, has_tf = time_format && *time_format;
    if (!format || !*format || strcmp(format, "yahoo") == 0) {
        o->format = QB_MD_CSV_YAHOO;
        if (has_cols || has_tf)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "columns and time format need the generic format");
        return QB_OK;
    }
    if (strcmp(format, "generic") != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "format: '%.32s' is not yahoo or generic", format);
    o->format = QB_MD_CSV_GENERIC;
    if (has_cols) {
        qb_err_t e = qb_md_csv_parse_columns(columns, o, errstr, errstr_size);
        if (e != QB_OK) return e;
    }
    if (!has_tf || strcmp(time_format, "date") == 0) o->time_format = QB_MD_CSV_TIME_DATE;
    else if (strcmp(time_format, "iso") == 0) o->time_format = QB_MD_CSV_TIME_ISO;
    else if (strcmp(time_format, "unix_s") == 0) o->time_format = QB_MD_CSV_TIME_UNIX_S;
    else if (strcmp(time_format, "unix_ms") == 0) o->time_format = QB_MD_CSV_TIME_UNIX_MS;
    else
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "time format: '%.32s' is not date, iso, unix_s or unix_ms",
                          time_format);
    return QB_OK;
}
