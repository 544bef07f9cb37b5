/* qb_md_actions_csv.c — corporate actions CSV reader; see qb_md_actions_csv.h.
 *
 * Action files are small (a line per split or dividend: a few hundred for a
 * century of quarterly dividends), so the file is read whole and parsed line
 * by line, and a duplicate is found by scanning what was accepted so far,
 * which also gives the line of the first occurrence for the message. */
#include "md/qb_md_actions_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"

#define ACSV_MAX_FILE (64u << 20)

typedef struct acsv_s {
    const char *name;
    qb_md_action_t *a;
    int64_t *line;
    size_t n, cap, rejected;
    qb_md_actions_reject_cb reject;
    void *opaque;
} acsv_t;

typedef struct field_s {
    const char *b;
    size_t len;
} field_t;

static void acsv_reject(acsv_t *c, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void acsv_reject(acsv_t *c, int64_t line, const char *fmt, ...) {
    c->rejected++;
    if (!c->reject) return;
    char where[1100], reason[600];
    snprintf(where, sizeof where, "%s:%lld", c->name, (long long)line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->reject(c->opaque, where, reason);
}

/* Split [b, e) on ',' into at most max fields, trimmed and unquoted.
 * Returns the number of fields (which may exceed max: counted, not kept). */
static int split_fields(const char *b, const char *e, field_t *f, int max) {
    int n = 0;
    const char *p = b;
    for (;;) {
        const char *q = p;
        while (q < e && *q != ',') q++;
        const char *fb = p, *fe = q;
        while (fb < fe && (*fb == ' ' || *fb == '\t')) fb++;
        while (fe > fb && (fe[-1] == ' ' || fe[-1] == '\t')) fe--;
        if (fe - fb >= 2 && *fb == '"' && fe[-1] == '"') {
            fb++;
            fe--;
        }
        if (n < max) {
            f[n].b = fb;
            f[n].len = (size_t)(fe - fb);
        }
        n++;
        if (q >= e) break;
        p = q + 1;
    }
    return n;
}

static int parse_date(const field_t *f, qb_time_t *out) {
    if (f->len != 10) return -1;
    return qb_time_parse(f->b, f->len, out) == QB_OK ? 0 : -1;
}

static qb_err_t acsv_push(acsv_t *c, const qb_md_action_t *a, int64_t line) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        qb_md_action_t *na = realloc(c->a, nc * sizeof(*na));
        if (!na) return QB_ERR_NOMEM;
        c->a = na;
        int64_t *nl = realloc(c->line, nc * sizeof(*nl));
        if (!nl) return QB_ERR_NOMEM;
        c->line = nl;
        c->cap = nc;
    }
    c->a[c->n] = *a;
    c->line[c->n] = line;
    c->n++;
    return QB_OK;
}

static qb_err_t acsv_line(acsv_t *c, const char *b, const char *e, int64_t line, int *first) {
    field_t f[3];
    int nf = split_fields(b, e, f, 3);
    qb_md_action_t a;
    memset(&a, 0, sizeof a);
    if (*first) {
        *first = 0;
        if (parse_date(&f[0], &a.ex_date) != 0) return QB_OK; /* header */
    }
    if (nf != 3) {
        acsv_reject(c, line, "column_count: %d column%s, want 3 (date,kind,value)", nf, nf == 1 ? "" : "s");
        return QB_OK;
    }
    if (parse_date(&f[0], &a.ex_date) != 0) {
        acsv_reject(c, line, "bad_time: '%.*s' is not a date (YYYY-MM-DD)", (int)f[0].len, f[0].b);
        return QB_OK;
    }
    if (f[1].len == 5 && strncasecmp(f[1].b, "split", 5) == 0) {
        a.kind = QB_MD_ACTION_SPLIT;
        char v[64], m[300];
        if (f[2].len >= sizeof v) {
            acsv_reject(c, line, "bad_ratio: split ratio too long");
            return QB_OK;
        }
        memcpy(v, f[2].b, f[2].len);
        v[f[2].len] = '\0';
        if (qb_md_split_parse(v, &a.num, &a.den, m, sizeof m) != QB_OK) {
            acsv_reject(c, line, "bad_ratio: %s", m);
            return QB_OK;
        }
    } else if (f[1].len == 8 && strncasecmp(f[1].b, "dividend", 8) == 0) {
        a.kind = QB_MD_ACTION_DIVIDEND;
        qb_err_t e2 = qb_dec_parse(f[2].b, f[2].len, &a.amount);
        if (e2 != QB_OK || a.amount < 0) {
            acsv_reject(c, line, "bad_amount: dividend '%.*s' is not a decimal >= 0 with at most 8 decimals",
                        (int)f[2].len, f[2].b);
            return QB_OK;
        }
    } else {
        acsv_reject(c, line, "bad_kind: '%.*s' (want split or dividend)", (int)f[1].len, f[1].b);
        return QB_OK;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->a[i].ex_date == a.ex_date && c->a[i].kind == a.kind) {
            acsv_reject(c, line, "duplicate: %s on %.10s already on line %lld",
                        a.kind == QB_MD_ACTION_SPLIT ? "split" : "dividend", f[0].b,
                        (long long)c->line[i]);
            return QB_OK;
        }
    return acsv_push(c, &a, line);
}

qb_err_t qb_md_actions_csv_parse(const char *name, const char *data, size_t len,
                                 qb_md_action_t **out, int64_t **lines, size_t *n,
                                 size_t *rejected, qb_md_actions_reject_cb reject,
                                 void *opaque, char *errstr, size_t errstr_size) {
    if (!out || !n || (len && !data))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "actions csv: bad argument");
    *out = NULL;
    *n = 0;
    if (lines) *lines = NULL;
    if (rejected) *rejected = 0;
    acsv_t c;
    memset(&c, 0, sizeof c);
    c.name = name ? name : "";
    c.reject = reject;
    c.opaque = opaque;
    const char *p = data, *end = data + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    int64_t line = 0;
    int first = 1;
    qb_err_t err = QB_OK;
    while (p < end && !err) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *b = p, *e = le;
        if (e > b && e[-1] == '\r') e--;
        p = nl ? nl + 1 : end;
        while (b < e && (*b == ' ' || *b == '\t')) b++;
        if (b == e || *b == '#') continue;
        err = acsv_line(&c, b, e, line, &first);
    }
    if (err) {
        free(c.a);
        free(c.line);
        return qb_err_set(errstr, errstr_size, err, "actions csv %s: out of memory", c.name);
    }
    if (c.n == 0) {
        free(c.a);
        free(c.line);
        c.a = NULL;
        c.line = NULL;
    }
    *out = c.a;
    *n = c.n;
    if (lines) *lines = c.line;
    else free(c.line);
    if (rejected) *rejected = c.rejected;
    return QB_OK;
}

qb_err_t qb_md_actions_csv_read(const char *path, qb_md_action_t **out, int64_t **lines,
                                size_t *n, size_t *rejected, qb_md_actions_reject_cb reject,
                                void *opaque, char *errstr, size_t errstr_size) {
    if (!path) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "actions csv: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return qb_err_set(errstr, errstr_size, QB_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    qb_err_t err = QB_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= ACSV_MAX_FILE) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_IO, "%s: larger than %u MiB", path,
                                 ACSV_MAX_FILE >> 20);
                break;
            }
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) err = qb_err_set(errstr, errstr_size, QB_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!err) err = qb_md_actions_csv_parse(path, buf, len, out, lines, n, rejected, reject, opaque,
                                            errstr, errstr_size);
    free(buf);
    return err;
}
