/* qb_tz.c — TZif reader, POSIX TZ rules and UTC <-> local conversion; see
 * qb_tz.h for the file format and the rules for skipped/repeated times.
 *
 * A zone owns its transition table, its local time types and its parsed
 * footer rule, all in one struct plus two arrays, freed together by
 * qb_tz_destroy. Cached zones (qb_tz_get) sit on a singly linked list
 * guarded by one mutex and live until the process exits.
 *
 * Everything inside works in whole Unix seconds (int64); the nanoseconds of
 * an instant are carried through unchanged. */
#include "cal/qb_tz.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QB_TZ_FILE_MAX (1 << 20) /* real TZif files are a few KiB */
#define QB_TZ_SPEC_MAX 127       /* characters of a POSIX TZ string */

typedef struct qb_tz_type_s {
    int32_t utoff; /* seconds east of UTC */
    int isdst;
    char abbr[QB_TZ_ABBR_MAX + 1];
} qb_tz_type_t;

/* One end of DST in a POSIX rule. */
typedef struct qb_tz_rule_s {
    char kind;    /* 'M' (Mm.w.d), 'J' (Jn, 1..365 no Feb 29), 'N' (n, 0..365) */
    int m, w, d;  /* for 'M' */
    int n;        /* for 'J' and 'N' */
    int32_t time; /* local seconds after midnight, may be negative or > 24h */
} qb_tz_rule_t;

typedef struct qb_tz_posix_s {
    int present;
    int has_dst;
    qb_tz_type_t std, dst;
    qb_tz_rule_t start, end;
    char text[QB_TZ_SPEC_MAX + 1];
} qb_tz_posix_t;

struct qb_tz_s {
    char name[QB_TZ_NAME_MAX + 1 + 64]; /* room for a POSIX string name */
    int64_t *trans;  /* ntrans ascending transition times, Unix seconds */
    uint8_t *idx;    /* ntrans indices into types */
    size_t ntrans;
    qb_tz_type_t *types;
    size_t ntypes;
    qb_tz_posix_t posix;
    struct qb_tz_s *next; /* cache list */
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t qb_tz_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b < 0) q--;
    return q;
}

static int qb_tz_weekday(int64_t days) { /* 0 = Sunday; 1970-01-01 Thursday */
    return (int)(((days % 7) + 11) % 7);
}

/* ---- POSIX TZ strings --------------------------------------------------- */

static int qb_tz_isalpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
static int qb_tz_isdigit(char c) { return c >= '0' && c <= '9'; }

/* Abbreviation: 3+ letters, or <...> of letters, digits, '+' and '-'. */
static int qb_tz_parse_name(const char **pp, char *abbr) {
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        p++;
        while (*p && *p != '>') {
            if (!qb_tz_isalpha(*p) && !qb_tz_isdigit(*p) && *p != '+' && *p != '-')
                return -1;
            if (n < QB_TZ_ABBR_MAX) abbr[n++] = *p;
            p++;
        }
        if (*p != '>') return -1;
        p++;
    } else {
        while (qb_tz_isalpha(*p)) {
            if (n < QB_TZ_ABBR_MAX) abbr[n++] = *p;
            p++;
        }
    }
    if (n < 3) return -1;
    abbr[n] = '\0';
    *pp = p;
    return 0;
}

/* [+|-]h[h[h]][:mm[:ss]] -> signed seconds; hours up to max_h. */
static int qb_tz_parse_hms(const char **pp, int max_h, int32_t *out) {
    const char *p = *pp;
    int sign = 1, h = 0, m = 0, s = 0, nd = 0;
    if (*p == '+' || *p == '-') sign = (*p++ == '-') ? -1 : 1;
    while (qb_tz_isdigit(*p) && nd < 3) h = h * 10 + (*p++ - '0'), nd++;
    if (nd == 0 || h > max_h || qb_tz_isdigit(*p)) return -1;
    if (*p == ':') {
        p++;
        if (!qb_tz_isdigit(p[0]) || !qb_tz_isdigit(p[1])) return -1;
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (m > 59) return -1;
        if (*p == ':') {
            p++;
            if (!qb_tz_isdigit(p[0]) || !qb_tz_isdigit(p[1])) return -1;
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
            if (s > 59) return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return 0;
}

static int qb_tz_parse_num(const char **pp, int lo, int hi, int *out) {
    const char *p = *pp;
    int v = 0, nd = 0;
    while (qb_tz_isdigit(*p) && nd < 4) v = v * 10 + (*p++ - '0'), nd++;
    if (nd == 0 || v < lo || v > hi) return -1;
    *out = v;
    *pp = p;
    return 0;
}

static int qb_tz_parse_rule(const char **pp, qb_tz_rule_t *r) {
    const char *p = *pp;
    memset(r, 0, sizeof *r);
    if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (qb_tz_parse_num(&p, 1, 12, &r->m) || *p++ != '.' ||
            qb_tz_parse_num(&p, 1, 5, &r->w) || *p++ != '.' ||
            qb_tz_parse_num(&p, 0, 6, &r->d))
            return -1;
    } else if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (qb_tz_parse_num(&p, 1, 365, &r->n)) return -1;
    } else {
        r->kind = 'N';
        if (qb_tz_parse_num(&p, 0, 365, &r->n)) return -1;
    }
    r->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (qb_tz_parse_hms(&p, 167, &r->time)) return -1;
    }
    *pp = p;
    return 0;
}

static qb_err_t qb_tz_parse_posix(const char *spec, qb_tz_posix_t *px,
                                  char *errstr, size_t n) {
    const char *p = spec;
    int32_t off;
    memset(px, 0, sizeof *px);
    if (strlen(spec) > QB_TZ_SPEC_MAX)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "TZ string too long");
    snprintf(px->text, sizeof px->text, "%s", spec);
    if (qb_tz_parse_name(&p, px->std.abbr))
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "TZ string \"%s\": bad standard time name", spec);
    if (qb_tz_parse_hms(&p, 24, &off))
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "TZ string \"%s\": bad standard offset", spec);
    px->std.utoff = -off;
    px->std.isdst = 0;
    if (*p) {
        if (qb_tz_parse_name(&p, px->dst.abbr))
            return qb_err_set(errstr, n, QB_ERR_PARSE,
                              "TZ string \"%s\": bad DST name at \"%s\"", spec, p);
        px->has_dst = 1;
        px->dst.isdst = 1;
        px->dst.utoff = px->std.utoff + 3600;
        if (*p && *p != ',') {
            if (qb_tz_parse_hms(&p, 24, &off))
                return qb_err_set(errstr, n, QB_ERR_PARSE,
                                  "TZ string \"%s\": bad DST offset", spec);
            px->dst.utoff = -off;
        }
        if (*p == ',') {
            p++;
            if (qb_tz_parse_rule(&p, &px->start) || *p++ != ',' ||
                qb_tz_parse_rule(&p, &px->end))
                return qb_err_set(errstr, n, QB_ERR_PARSE,
                                  "TZ string \"%s\": bad DST rule", spec);
        } else {
            /* POSIX leaves the default to the implementation; tzcode uses
             * the US rules. */
            px->start = (qb_tz_rule_t){'M', 3, 2, 0, 0, 2 * 3600};
            px->end = (qb_tz_rule_t){'M', 11, 1, 0, 0, 2 * 3600};
        }
    }
    if (*p)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "TZ string \"%s\": trailing text \"%s\"", spec, p);
    px->present = 1;
    return QB_OK;
}

/* Day (since the epoch) on which rule r falls in year y. */
static int64_t qb_tz_rule_day(const qb_tz_rule_t *r, int y) {
    int64_t jan1 = qb_time_days_from_civil(y, 1, 1);
    if (r->kind == 'J') /* 1..365, Feb 29 is never counted */
        return jan1 + r->n - 1 + (qb_time_is_leap_year(y) && r->n >= 60);
    if (r->kind == 'N') return jan1 + r->n;
    int64_t first = qb_time_days_from_civil(y, r->m, 1);
    int dom = 1 + (r->d - qb_tz_weekday(first) + 7) % 7 + (r->w - 1) * 7;
    while (dom > qb_time_days_in_month(y, r->m)) dom -= 7; /* week 5 = last */
    return first + dom - 1;
}

static const qb_tz_type_t *qb_tz_posix_eval(const qb_tz_posix_t *px, int64_t secs) {
    if (!px->has_dst) return &px->std;
    int y, mo, d;
    /* The rule's year is the local (standard time) year. */
    qb_time_civil_from_days(qb_tz_floor_div(secs + px->std.utoff, 86400), &y, &mo, &d);
    int64_t start = qb_tz_rule_day(&px->start, y) * 86400 + px->start.time - px->std.utoff;
    int64_t end = qb_tz_rule_day(&px->end, y) * 86400 + px->end.time - px->dst.utoff;
    int dst;
    if (start < end) /* northern hemisphere: DST inside the year */
        dst = secs >= start && secs < end;
    else /* southern: DST across the new year */
        dst = !(secs >= end && secs < start);
    return dst ? &px->dst : &px->std;
}

/* ---- lookup ------------------------------------------------------------- */

static const qb_tz_type_t *qb_tz_type_at(const qb_tz_t *tz, int64_t secs) {
    if (tz->ntrans == 0)
        return tz->posix.present ? qb_tz_posix_eval(&tz->posix, secs) : &tz->types[0];
    if (secs < tz->trans[0]) return &tz->types[0];
    if (secs > tz->trans[tz->ntrans - 1] && tz->posix.present)
        return qb_tz_posix_eval(&tz->posix, secs);
    size_t lo = 0, hi = tz->ntrans; /* last i with trans[i] <= secs */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= secs) lo = mid;
        else hi = mid;
    }
    return &tz->types[tz->idx[lo]];
}

int32_t qb_tz_offset_at(const qb_tz_t *tz, qb_time_t t) {
    return qb_tz_type_at(tz, qb_tz_floor_div(t, QB_NS_PER_SEC))->utoff;
}

qb_err_t qb_tz_to_local(const qb_tz_t *tz, qb_time_t t, qb_tz_local_t *out) {
    const qb_tz_type_t *ty = qb_tz_type_at(tz, qb_tz_floor_div(t, QB_NS_PER_SEC));
    qb_time_t lt;
    if (__builtin_add_overflow(t, (int64_t)ty->utoff * QB_NS_PER_SEC, &lt))
        return QB_ERR_RANGE;
    qb_time_to_civil(lt, &out->civil);
    out->utc_offset = ty->utoff;
    out->is_dst = ty->isdst;
    memcpy(out->abbr, ty->abbr, sizeof out->abbr);
    return QB_OK;
}

qb_err_t qb_tz_from_local(const qb_tz_t *tz, const qb_civil_t *local,
                          qb_tz_disamb_t rule, qb_time_t *out, char *errstr,
                          size_t n) {
    qb_time_t lns;
    qb_err_t err;
    if ((unsigned)rule > QB_TZ_REJECT)
        return qb_err_set(errstr, n, QB_ERR_INVALID, "bad disambiguation rule %d", (int)rule);
    qb_civil_t c = *local;
    int nsec = c.nsec;
    c.nsec = 0;
    if ((err = qb_time_from_civil(&c, &lns)) != QB_OK || nsec < 0 || nsec > 999999999)
        return qb_err_set(errstr, n, err ? err : QB_ERR_PARSE,
                          "bad local time %04d-%02d-%02d %02d:%02d:%02d.%09d",
                          c.year, c.month, c.day, c.hour, c.min, c.sec, nsec);
    int64_t L = lns / QB_NS_PER_SEC; /* exact: nsec was cleared */
    /* The offsets in force a day either side bracket any single transition. */
    int32_t oa = qb_tz_type_at(tz, L - 86400)->utoff;
    int32_t ob = qb_tz_type_at(tz, L + 86400)->utoff;
    int64_t ta = L - oa, tb = L - ob, res;
    int va = qb_tz_type_at(tz, ta)->utoff == oa;
    int vb = qb_tz_type_at(tz, tb)->utoff == ob;
    if (oa == ob || (va != vb)) {
        if (va) res = ta;
        else if (vb) res = tb;
        else { /* two transitions within two days: take the one at L - o */
            int32_t oc = qb_tz_type_at(tz, L - oa)->utoff;
            res = L - oc;
            if (qb_tz_type_at(tz, res)->utoff != oc)
                return qb_err_set(errstr, n, QB_ERR_RANGE,
                                  "%s: cannot resolve local time", tz->name);
        }
    } else {
        int skipped = !va; /* else repeated: both valid */
        if (rule == QB_TZ_REJECT)
            return qb_err_set(errstr, n, QB_ERR_RANGE,
                              "%s: local time %04d-%02d-%02d %02d:%02d:%02d %s",
                              tz->name, c.year, c.month, c.day, c.hour, c.min,
                              c.sec, skipped ? "does not exist (skipped)" : "is ambiguous (repeated)");
        int64_t early = ta < tb ? ta : tb, late = ta < tb ? tb : ta;
        if (rule == QB_TZ_EARLIER) res = early;
        else if (rule == QB_TZ_LATER) res = late;
        else res = skipped ? late : early; /* COMPATIBLE */
    }
    qb_time_t r;
    if (__builtin_mul_overflow(res, QB_NS_PER_SEC, &r) || __builtin_add_overflow(r, nsec, &r))
        return qb_err_set(errstr, n, QB_ERR_RANGE, "%s: local time out of range", tz->name);
    *out = r;
    return QB_OK;
}

/* ---- TZif --------------------------------------------------------------- */

static uint32_t qb_tz_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t qb_tz_be64(const uint8_t *p) {
    return (int64_t)((uint64_t)qb_tz_be32(p) << 32 | qb_tz_be32(p + 4));
}

typedef struct qb_tz_hdr_s {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} qb_tz_hdr_t;

static int qb_tz_read_hdr(const uint8_t *b, size_t len, size_t off, qb_tz_hdr_t *h) {
    if (len < off + 44 || memcmp(b + off, "TZif", 4) != 0) return -1;
    const uint8_t *c = b + off + 20;
    h->isutcnt = qb_tz_be32(c);
    h->isstdcnt = qb_tz_be32(c + 4);
    h->leapcnt = qb_tz_be32(c + 8);
    h->timecnt = qb_tz_be32(c + 12);
    h->typecnt = qb_tz_be32(c + 16);
    h->charcnt = qb_tz_be32(c + 20);
    /* Bounds keep every size computation below far from overflow. */
    if (h->timecnt > 100000 || h->typecnt > 256 || h->charcnt > 65536 ||
        h->leapcnt > 100000 || h->isutcnt > 256 || h->isstdcnt > 256)
        return -1;
    return 0;
}

static size_t qb_tz_block_size(const qb_tz_hdr_t *h, size_t tsize) {
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 +
           h->charcnt + (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static qb_err_t qb_tz_parse_tzif(qb_tz_t *tz, const uint8_t *b, size_t len,
                                 const char *path, char *errstr, size_t n) {
    qb_tz_hdr_t h;
    size_t tsize = 4, off = 44;
    if (qb_tz_read_hdr(b, len, 0, &h))
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: not a TZif file (bad header)", path);
    size_t v1size = qb_tz_block_size(&h, 4);
    int version = b[4] == 0 ? 1 : b[4] - '0';
    if (version < 1 || version > 9)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: unknown TZif version", path);
    if (len < 44 + v1size)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: truncated TZif data", path);
    if (version >= 2) {
        if (qb_tz_read_hdr(b, len, 44 + v1size, &h))
            return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: bad second TZif header", path);
        tsize = 8;
        off = 44 + v1size + 44;
    }
    size_t bsize = qb_tz_block_size(&h, tsize);
    if (len < off + bsize)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: truncated TZif data", path);
    if (h.leapcnt)
        return qb_err_set(errstr, n, QB_ERR_PARSE,
                          "%s: leap-second zones (\"right/\") are not supported", path);
    if (h.typecnt == 0)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: no local time types", path);
    const uint8_t *pt = b + off;
    const uint8_t *pi = pt + (size_t)h.timecnt * tsize;
    const uint8_t *py = pi + h.timecnt;
    const uint8_t *pc = py + (size_t)h.typecnt * 6;

    tz->ntrans = h.timecnt;
    tz->ntypes = h.typecnt;
    tz->trans = calloc(h.timecnt ? h.timecnt : 1, sizeof *tz->trans);
    tz->idx = calloc(h.timecnt ? h.timecnt : 1, 1);
    tz->types = calloc(h.typecnt, sizeof *tz->types);
    if (!tz->trans || !tz->idx || !tz->types)
        return qb_err_set(errstr, n, QB_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < h.timecnt; i++) {
        tz->trans[i] = tsize == 8 ? qb_tz_be64(pt + i * 8) : (int32_t)qb_tz_be32(pt + i * 4);
        tz->idx[i] = pi[i];
        if (pi[i] >= h.typecnt || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return qb_err_set(errstr, n, QB_ERR_PARSE,
                              "%s: bad transition %zu (type or order)", path, i);
    }
    for (size_t i = 0; i < h.typecnt; i++) {
        const uint8_t *p = py + i * 6;
        int32_t utoff = (int32_t)qb_tz_be32(p);
        if (utoff < -25 * 3600 || utoff > 26 * 3600 || p[4] > 1 ||
            (h.charcnt && p[5] >= h.charcnt))
            return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: bad local time type %zu", path, i);
        tz->types[i].utoff = utoff;
        tz->types[i].isdst = p[4];
        if (h.charcnt) {
            size_t j = 0;
            for (size_t k = p[5]; k < h.charcnt && pc[k] && j < QB_TZ_ABBR_MAX; k++)
                tz->types[i].abbr[j++] = (char)pc[k];
            tz->types[i].abbr[j] = '\0';
        }
    }
    if (version >= 2) { /* footer: "\n" TZ string "\n" */
        size_t fo = off + bsize;
        if (fo < len && b[fo] == '\n') {
            size_t e = fo + 1;
            while (e < len && b[e] != '\n') e++;
            if (e >= len)
                return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: unterminated TZ footer", path);
            size_t flen = e - fo - 1;
            if (flen > 0) {
                char spec[QB_TZ_SPEC_MAX + 1];
                if (flen > QB_TZ_SPEC_MAX)
                    return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: TZ footer too long", path);
                memcpy(spec, b + fo + 1, flen);
                spec[flen] = '\0';
                char sub[160];
                qb_err_t err = qb_tz_parse_posix(spec, &tz->posix, sub, sizeof sub);
                if (err) return qb_err_set(errstr, n, err, "%s: footer: %s", path, sub);
            }
        }
    }
    return QB_OK;
}

void qb_tz_destroy(qb_tz_t *tz) {
    if (!tz) return;
    free(tz->trans);
    free(tz->idx);
    free(tz->types);
    free(tz);
}

qb_err_t qb_tz_load_file(const char *path, const char *name, qb_tz_t **out,
                         char *errstr, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return qb_err_set(errstr, n, QB_ERR_NOT_FOUND,
                              "time zone file %s not found (is the package tzdata installed?)",
                              path);
        return qb_err_set(errstr, n, QB_ERR_IO, "%s: %s", path, strerror(e));
    }
    uint8_t *buf = malloc(QB_TZ_FILE_MAX);
    qb_tz_t *tz = calloc(1, sizeof *tz);
    qb_err_t err = QB_OK;
    if (!buf || !tz) {
        err = qb_err_set(errstr, n, QB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t len = fread(buf, 1, QB_TZ_FILE_MAX, f);
    if (ferror(f)) {
        err = qb_err_set(errstr, n, QB_ERR_IO, "%s: read error (a directory?)", path);
        goto done;
    }
    if (len == QB_TZ_FILE_MAX) {
        err = qb_err_set(errstr, n, QB_ERR_PARSE, "%s: too large for a TZif file", path);
        goto done;
    }
    snprintf(tz->name, sizeof tz->name, "%s", name ? name : path);
    err = qb_tz_parse_tzif(tz, buf, len, path, errstr, n);
done:
    fclose(f);
    free(buf);
    if (err) {
        qb_tz_destroy(tz);
        return err;
    }
    *out = tz;
    return QB_OK;
}

qb_err_t qb_tz_from_posix(const char *spec, qb_tz_t **out, char *errstr, size_t n) {
    qb_tz_t *tz = calloc(1, sizeof *tz);
    if (!tz) return qb_err_set(errstr, n, QB_ERR_NOMEM, "out of memory");
    qb_err_t err = qb_tz_parse_posix(spec, &tz->posix, errstr, n);
    if (err) {
        free(tz);
        return err;
    }
    tz->types = calloc(1, sizeof *tz->types);
    if (!tz->types) {
        free(tz);
        return qb_err_set(errstr, n, QB_ERR_NOMEM, "out of memory");
    }
    tz->types[0] = tz->posix.std;
    tz->ntypes = 1;
    snprintf(tz->name, sizeof tz->name, "%s", spec);
    *out = tz;
    return QB_OK;
}

const char *qb_tz_name(const qb_tz_t *tz) { return tz->name; }
const char *qb_tz_posix_rule(const qb_tz_t *tz) {
    return tz->posix.present ? tz->posix.text : "";
}
size_t qb_tz_transition_count(const qb_tz_t *tz) { return tz->ntrans; }
qb_time_t qb_tz_last_transition(const qb_tz_t *tz) {
    return tz->ntrans ? tz->trans[tz->ntrans - 1] * QB_NS_PER_SEC : 0;
}

/* ---- cache -------------------------------------------------------------- */

static pthread_mutex_t qb_tz_lock = PTHREAD_MUTEX_INITIALIZER;
static qb_tz_t *qb_tz_cache;

static int qb_tz_name_ok(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > QB_TZ_NAME_MAX || name[0] == '/' || name[len - 1] == '/')
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!qb_tz_isalpha(c) && !qb_tz_isdigit(c) && c != '/' && c != '_' &&
            c != '-' && c != '+')
            return 0;
        if (c == '/' && p[1] == '/') return 0;
    }
    return 1;
}

qb_err_t qb_tz_get(const char *name, const qb_tz_t **out, char *errstr, size_t n) {
    if (!name || !qb_tz_name_ok(name))
        return qb_err_set(errstr, n, QB_ERR_INVALID, "bad time zone name \"%s\"",
                          name ? name : "(null)");
    qb_err_t err = QB_OK;
    pthread_mutex_lock(&qb_tz_lock);
    qb_tz_t *tz;
    for (tz = qb_tz_cache; tz; tz = tz->next)
        if (strcmp(tz->name, name) == 0) break;
    if (!tz) {
        char path[sizeof QB_TZ_DIR + QB_TZ_NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", QB_TZ_DIR, name);
        err = qb_tz_load_file(path, name, &tz, errstr, n);
        if (err == QB_ERR_NOT_FOUND && (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC"))) {
            err = qb_tz_from_posix("UTC0", &tz, errstr, n);
            if (!err) snprintf(tz->name, sizeof tz->name, "%s", name);
        }
        if (!err) {
            tz->next = qb_tz_cache;
            qb_tz_cache = tz;
        }
    }
    pthread_mutex_unlock(&qb_tz_lock);
    if (!err) *out = tz;
    return err;
}
