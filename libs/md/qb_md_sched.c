/* qb_md_sched.c — scheduled ingest jobs over md.ingest_jobs,
 * md.ingest_job_deps and md.ingest_job_runs (sql/0003_md_jobs.sql).
 *
 * Owns: the tz-aware cron wrapper (qb_cron over qb_tz), slot arithmetic
 * (next slot, latest slot <= now for the catch-up), job validation and
 * CRUD with the cycle check, the due list with its dependency rules, the
 * claim transaction and the run life cycle. The rules themselves are
 * documented in qb_md_sched.h; this file follows them. */
#include "md/qb_md_sched.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cal/qb_tz.h"
#include "core/qb_log.h"
#include "core/qb_types.h"

/* pg_advisory_xact_lock key serializing changes of the job graph. */
#define SCHED_GRAPH_LOCK "7160136102"
#define TICK_MAX_ROUNDS 64

/* ---- cron in a zone ------------------------------------------------------ */

static qb_err_t tz_to_local(void *ctx, qb_time_t t, qb_civil_t *l) {
    qb_tz_local_t x;
    qb_err_t e = qb_tz_to_local((const qb_tz_t *)ctx, t, &x);
    if (e == QB_OK) *l = x.civil;
    return e;
}

static qb_err_t tz_from_local(void *ctx, const qb_civil_t *l, qb_time_t *out) {
    return qb_tz_from_local((const qb_tz_t *)ctx, l, QB_TZ_COMPATIBLE, out, NULL, 0);
}

/* A parsed schedule: cron + zone, or an interval. */
typedef struct sched_s {
    int is_cron;
    qb_cron_t cron;
    qb_cron_zone_t zone;
    int64_t iv_ns;
} sched_t;

static qb_err_t sched_init(sched_t *sc, const char *cron, const char *tz_name,
                           int64_t interval_s, char *errstr, size_t errstr_size) {
    memset(sc, 0, sizeof *sc);
    if (cron && *cron) {
        char msg[256];
        qb_err_t e = qb_cron_parse(cron, &sc->cron, msg, sizeof msg);
        if (e != QB_OK) return qb_err_set(errstr, errstr_size, e, "cron: %s", msg);
        const qb_tz_t *tz = NULL;
        e = qb_tz_get(tz_name && *tz_name ? tz_name : "UTC", &tz, msg, sizeof msg);
        if (e != QB_OK) return qb_err_set(errstr, errstr_size, e, "time_zone: %s", msg);
        sc->is_cron = 1;
        sc->zone.to_local = tz_to_local;
        sc->zone.from_local = tz_from_local;
        sc->zone.ctx = (void *)tz;
        return QB_OK;
    }
    if (interval_s <= 0 || interval_s > INT64_MAX / QB_NS_PER_SEC)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "interval_seconds: %" PRId64 " out of range", interval_s);
    sc->iv_ns = interval_s * QB_NS_PER_SEC;
    return QB_OK;
}

/* First slot strictly after `after`. */
static qb_err_t sched_next(const sched_t *sc, qb_time_t after, qb_time_t *out, char *errstr,
                           size_t errstr_size) {
    if (sc->is_cron) return qb_cron_next(&sc->cron, &sc->zone, after, out, errstr, errstr_size);
    qb_time_t f;
    qb_err_t e = qb_time_floor(after, sc->iv_ns, &f);
    if (e != QB_OK || f > INT64_MAX - sc->iv_ns)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "interval slot out of range");
    *out = f + sc->iv_ns;
    return QB_OK;
}

/* The latest slot in [nr, now] (nr <= now). When the schedule has none
 * there (nr is not one of its slots: the schedule changed), nr itself.
 * Searches back from now in growing windows so a minute job after a long
 * downtime costs one day of slots, not the whole downtime. */
static qb_err_t sched_latest(const sched_t *sc, qb_time_t nr, qb_time_t now, qb_time_t *out,
                             char *errstr, size_t errstr_size) {
    if (!sc->is_cron) {
        qb_time_t f;
        qb_err_t e = qb_time_floor(now, sc->iv_ns, &f);
        if (e != QB_OK) return qb_err_set(errstr, errstr_size, e, "interval slot out of range");
        *out = f >= nr ? f : nr;
        return QB_OK;
    }
    int64_t w = QB_NS_PER_DAY;
    for (;;) {
        qb_time_t start = now - w;
        int full = 0;
        if (w > 40 * 366 * QB_NS_PER_DAY || start <= nr - 1) {
            start = nr - 1;
            full = 1;
        }
        qb_time_t t;
        qb_err_t e = sched_next(sc, start, &t, errstr, errstr_size);
        if (e != QB_OK && e != QB_ERR_NOT_FOUND) return e;
        if (e == QB_OK && t <= now) {
            for (;;) {
                qb_time_t n;
                e = sched_next(sc, t, &n, errstr, errstr_size);
                if (e == QB_ERR_NOT_FOUND || (e == QB_OK && n > now)) break;
                if (e != QB_OK) return e;
                t = n;
            }
            *out = t;
            return QB_OK;
        }
        if (full) {
            *out = nr;
            return QB_OK;
        }
        w *= 8;
    }
}

qb_err_t qb_md_sched_cron_next(const char *expr, const char *tz_name, qb_time_t after,
                               qb_time_t *next, char *errstr, size_t errstr_size) {
    qb_cron_t c;
    qb_err_t e = qb_cron_parse(expr, &c, errstr, errstr_size);
    if (e != QB_OK) return e;
    const qb_tz_t *tz = NULL;
    e = qb_tz_get(tz_name && *tz_name ? tz_name : "UTC", &tz, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_cron_zone_t z = {tz_to_local, tz_from_local, (void *)tz};
    return qb_cron_next(&c, &z, after, next, errstr, errstr_size);
}

/* ---- small helpers ------------------------------------------------------- */

static int charset_ok(const char *s, size_t max, const char *extra, int lower_only) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (lower_only ? (islower(c) || isdigit(c)) : isalnum(c)) continue;
        if (!strchr(extra, c) || c == '\0') return 0;
    }
    return 1;
}

static char *xstrdup(const char *s) {
    return s ? strdup(s) : NULL;
}

static void ts_txt(qb_time_t t, char buf[QB_TIME_STRLEN]) {
    qb_time_format(t, buf, QB_TIME_STRLEN);
}

/* "{\"A\",\"B\"}" from names already checked against a charset without
 * quotes, backslashes or commas. malloc'd. */
static char *pg_text_array(const char *const *v, size_t n) {
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += strlen(v[i]) + 3;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t pos = 0;
    out[pos++] = '{';
    for (size_t i = 0; i < n; i++) {
        pos += (size_t)snprintf(out + pos, cap - pos, "%s\"%s\"", i ? "," : "", v[i]);
    }
    out[pos++] = '}';
    out[pos] = '\0';
    return out;
}

/* Split "a,b,c" ("" = none) into a malloc'd array of malloc'd strings. */
static qb_err_t split_list(const char *s, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!s || !*s) return QB_OK;
    size_t cnt = 1;
    for (const char *p = s; *p; p++)
        if (*p == ',') cnt++;
    char **v = calloc(cnt, sizeof *v);
    if (!v) return QB_ERR_NOMEM;
    const char *p = s;
    for (size_t i = 0; i < cnt; i++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        v[i] = strndup(p, len);
        if (!v[i]) {
            for (size_t k = 0; k < i; k++) free(v[k]);
            free(v);
            return QB_ERR_NOMEM;
        }
        p = c ? c + 1 : p + len;
    }
    *out = v;
    *n = cnt;
    return QB_OK;
}

static void free_list(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void qb_md_job_free(qb_md_job_t *j) {
    if (!j) return;
    free(j->name);
    free(j->source);
    free(j->timeframe);
    free(j->cron);
    free(j->time_zone);
    free(j->options);
    free_list(j->symbols, j->nsymbols);
    free_list(j->depends_on, j->ndepends);
    free(j);
}

/* "30d", "12h", "90m", "3600s" -> seconds. */
static int parse_duration(const char *s, int64_t *secs) {
    int64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        if (v > 100000000) return 0;
        p++;
    }
    int64_t mul;
    switch (*p) {
    case 'd': mul = 86400; break;
    case 'h': mul = 3600; break;
    case 'm': mul = 60; break;
    case 's': mul = 1; break;
    default: return 0;
    }
    if (p[1] != '\0' || v == 0 || v * mul > 200LL * 366 * 86400) return 0;
    *secs = v * mul;
    return 1;
}

static qb_err_t parse_lookback(const char *s, qb_md_lookback_t *kind, int64_t *secs,
                               char *errstr, size_t errstr_size) {
    static const char SLB[] = "since_last_bar";
    *secs = 0;
    if (!s || !*s || strcmp(s, SLB) == 0) {
        *kind = QB_MD_LOOKBACK_SINCE_LAST_BAR;
        return QB_OK;
    }
    if (strncmp(s, SLB, sizeof SLB - 1) == 0 && s[sizeof SLB - 1] == ':' &&
        parse_duration(s + sizeof SLB, secs)) {
        *kind = QB_MD_LOOKBACK_SINCE_LAST_BAR;
        return QB_OK;
    }
    if (parse_duration(s, secs)) {
        *kind = QB_MD_LOOKBACK_DURATION;
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                      "lookback: bad value '%.64s' (want <N>d|h|m|s, since_last_bar or "
                      "since_last_bar:<N>d|h|m|s)",
                      s);
}

/* ---- validation ---------------------------------------------------------- */

static const char *json_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* options: a JSON object of string values with the keys its source takes
 * (csv: path, format, columns, time_format; synthetic: seed); for "csv" a
 * path, a known format and time format. */
static qb_err_t validate_options(const qb_md_job_spec_t *sp, char *errstr, size_t errstr_size) {
    int is_csv = strcmp(sp->source, "csv") == 0;
    int is_synth = strcmp(sp->source, "synthetic") == 0 || strcmp(sp->source, "synth") == 0;
    int is_resample = strcmp(sp->source, "resample") == 0;
    if (!sp->options || !*sp->options) {
        if (is_csv)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "path: required for source \"csv\"");
        return QB_OK;
    }
    cJSON *o = cJSON_Parse(sp->options);
    qb_err_t e = QB_OK;
    if (!cJSON_IsObject(o)) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "options: not a JSON object");
        goto out;
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        int known = is_csv ? (strcmp(it->string, "path") == 0 ||
                              strcmp(it->string, "format") == 0 ||
                              strcmp(it->string, "columns") == 0 ||
                              strcmp(it->string, "time_format") == 0)
                    : is_synth  ? strcmp(it->string, "seed") == 0
                    : is_resample ? (strcmp(it->string, "from_timeframe") == 0 ||
                                     strcmp(it->string, "calendar") == 0)
                                  : 0;
        if (!known) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "options: \"%.40s\" is not an option of source \"%s\" (csv: path, "
                           "format, columns, time_format; synthetic: seed; resample: "
                           "from_timeframe, calendar)",
                           it->string, sp->source);
            goto out;
        }
        if (!cJSON_IsString(it) || strlen(it->valuestring) > 4000) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: must be a string",
                           it->string);
            goto out;
        }
    }
    if (is_csv) {
        const char *path = json_str(o, "path"), *fmt = json_str(o, "format"),
                   *tf = json_str(o, "time_format");
        if (!path || !*path)
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "path: required for source \"csv\"");
        else if (fmt && *fmt && strcmp(fmt, "yahoo") != 0 && strcmp(fmt, "generic") != 0)
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "csv_format: '%.32s' is not yahoo or generic", fmt);
        else if (tf && *tf && strcmp(tf, "date") != 0 && strcmp(tf, "iso") != 0 &&
                 strcmp(tf, "unix_s") != 0 && strcmp(tf, "unix_ms") != 0)
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "csv_time_format: '%.32s' is not date, iso, unix_s or unix_ms", tf);
    }
out:
    cJSON_Delete(o);
    return e;
}

#define NAME_EXTRA "_.-"
#define SYMBOL_EXTRA "._^=/:-"

qb_err_t qb_md_job_validate(const qb_md_job_spec_t *sp, char *errstr, size_t errstr_size) {
    if (!sp) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "no job spec");
    if (!charset_ok(sp->name, QB_MD_JOB_NAME_MAX, NAME_EXTRA, 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "name: '%.80s' must be 1-%d of letters, digits, '_', '.', '-'",
                          sp->name ? sp->name : "", QB_MD_JOB_NAME_MAX);
    if (!charset_ok(sp->source, 31, "_", 1))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "source: '%.80s' must be 1-31 of a-z, 0-9, '_'",
                          sp->source ? sp->source : "");
    if (sp->nsymbols == 0 || !sp->symbols)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "symbols: at least one required");
    for (size_t i = 0; i < sp->nsymbols; i++)
        if (!charset_ok(sp->symbols[i], QB_SYMBOL_MAX, SYMBOL_EXTRA, 0))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "symbols[%zu]: bad symbol '%.80s'", i,
                              sp->symbols[i] ? sp->symbols[i] : "");
    int64_t tf;
    if (!sp->timeframe || qb_timeframe_parse(sp->timeframe, &tf) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "timeframe: unknown '%.32s' (1m 5m 15m 30m 1h 4h 1d 1w)",
                          sp->timeframe ? sp->timeframe : "");
    int has_cron = sp->cron && *sp->cron;
    if (has_cron && sp->interval_seconds != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "schedule: give cron or interval_seconds, not both");
    if (!has_cron && sp->interval_seconds == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "schedule: cron or interval_seconds required");
    if (!has_cron && sp->time_zone && *sp->time_zone)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "time_zone: only with cron (interval slots are UTC)");
    if (!has_cron && (sp->interval_seconds < 0 || sp->interval_seconds > 3660LL * 86400))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "interval_seconds: %" PRId64 " out of range 1-%lld",
                          sp->interval_seconds, 3660LL * 86400);
    sched_t sc;
    qb_err_t e = sched_init(&sc, sp->cron, sp->time_zone, sp->interval_seconds, errstr,
                            errstr_size);
    if (e != QB_OK) return QB_ERR_INVALID;
    qb_md_lookback_t k;
    int64_t secs;
    if (parse_lookback(sp->lookback, &k, &secs, errstr, errstr_size) != QB_OK)
        return QB_ERR_INVALID;
    if (sp->ndepends && !sp->depends_on)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "depends_on: NULL list");
    if ((sp->range_from != 0) != (sp->range_to != 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "range: give both range_from and range_to, or neither");
    if (sp->range_from && sp->range_to <= sp->range_from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "range: range_to must be after range_from");
    if ((e = validate_options(sp, errstr, errstr_size)) != QB_OK) return e;
    for (size_t i = 0; i < sp->ndepends; i++) {
        if (!charset_ok(sp->depends_on[i], QB_MD_JOB_NAME_MAX, NAME_EXTRA, 0))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "depends_on[%zu]: bad job name '%.80s'", i,
                              sp->depends_on[i] ? sp->depends_on[i] : "");
        if (strcmp(sp->depends_on[i], sp->name) == 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "depends_on: job '%s' cannot depend on itself", sp->name);
    }
    return QB_OK;
}

/* ---- reading jobs -------------------------------------------------------- */

#define US(c) "(extract(epoch FROM " c ") * 1000000)::bigint"
#define JOB_COLS                                                                           \
    "j.id, j.name, j.source, array_to_string(j.symbols, ','), j.timeframe, j.cron, "       \
    "j.time_zone, coalesce(j.interval_seconds, 0), j.lookback_kind, "                      \
    "coalesce(j.lookback_seconds, 0), j.enabled, " US("j.last_run_at") ", "                \
    US("j.next_run_at") ", " US("j.run_requested_at") ", "                                 \
    "(SELECT coalesce(string_agg(d.name, ',' ORDER BY d.name), '') "                       \
    "   FROM md.ingest_job_deps x JOIN md.ingest_jobs d ON d.id = x.depends_on "           \
    "  WHERE x.job_id = j.id), " US("j.range_from") ", " US("j.range_to") ", j.options::text"
#define JOB_NCOLS 18

static qb_time_t col_us(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return 0;
    return (qb_time_t)strtoll(PQgetvalue(r, row, col), NULL, 10) * QB_NS_PER_US;
}

static qb_md_job_t *job_from_row(const PGresult *r, int row) {
    qb_md_job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    j->name = xstrdup(PQgetvalue(r, row, 1));
    j->source = xstrdup(PQgetvalue(r, row, 2));
    int ok = split_list(PQgetvalue(r, row, 3), &j->symbols, &j->nsymbols) == QB_OK;
    j->timeframe = xstrdup(PQgetvalue(r, row, 4));
    if (!PQgetisnull(r, row, 5)) j->cron = xstrdup(PQgetvalue(r, row, 5));
    if (!PQgetisnull(r, row, 6)) j->time_zone = xstrdup(PQgetvalue(r, row, 6));
    j->interval_seconds = strtoll(PQgetvalue(r, row, 7), NULL, 10);
    j->lookback_kind = strcmp(PQgetvalue(r, row, 8), "duration") == 0
                           ? QB_MD_LOOKBACK_DURATION
                           : QB_MD_LOOKBACK_SINCE_LAST_BAR;
    j->lookback_seconds = strtoll(PQgetvalue(r, row, 9), NULL, 10);
    j->enabled = PQgetvalue(r, row, 10)[0] == 't';
    j->last_run_at = col_us(r, row, 11);
    j->next_run_at = col_us(r, row, 12);
    j->run_requested_at = col_us(r, row, 13);
    ok = ok && split_list(PQgetvalue(r, row, 14), &j->depends_on, &j->ndepends) == QB_OK;
    j->range_from = col_us(r, row, 15);
    j->range_to = col_us(r, row, 16);
    j->options = xstrdup(PQgetvalue(r, row, 17));
    if (!ok || !j->name || !j->source || !j->timeframe || !j->options || (!PQgetisnull(r, row, 5) && !j->cron) ||
        (!PQgetisnull(r, row, 6) && !j->time_zone)) {
        qb_md_job_free(j);
        return NULL;
    }
    return j;
}

qb_err_t qb_md_job_get(qb_store_t *s, const char *name, qb_md_job_t **out, char *errstr,
                       size_t errstr_size) {
    *out = NULL;
    const char *p[1] = {name};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, "SELECT " JOB_COLS " FROM md.ingest_jobs j WHERE j.name = $1",
                                1, p, &r, errstr, errstr_size);
    if (e != QB_OK) return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no ingest job named '%.80s'",
                          name ? name : "");
    }
    *out = job_from_row(r, 0);
    PQclear(r);
    return *out ? QB_OK : qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
}

static qb_err_t job_sched(const qb_md_job_t *j, sched_t *sc, char *errstr, size_t errstr_size) {
    qb_err_t e = sched_init(sc, j->cron, j->time_zone, j->interval_seconds, errstr, errstr_size);
    if (e != QB_OK)
        return qb_err_set(errstr, errstr_size, e, "job '%s': stored schedule unusable", j->name);
    return QB_OK;
}

/* ---- writing jobs -------------------------------------------------------- */

typedef enum { WRITE_ADD, WRITE_UPDATE, WRITE_UPSERT } write_mode_t;

static qb_err_t rollback_with(qb_store_t *s, qb_err_t e) {
    qb_store_rollback(s, NULL, 0);
    return e;
}

/* 1 when `target` is reachable from `from` over edges (a[i] -> b[i]). */
static int reaches(const int64_t *a, const int64_t *b, size_t n, int64_t from, int64_t target) {
    int64_t *stack = malloc((n + 1) * sizeof *stack);
    unsigned char *seen = calloc(n + 1, 1); /* per edge: followed */
    if (!stack || !seen) {
        free(stack);
        free(seen);
        return 1; /* be safe: refuse */
    }
    size_t top = 0;
    stack[top++] = from;
    int found = 0;
    while (top && !found) {
        int64_t v = stack[--top];
        if (v == target) {
            found = 1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (!seen[i] && a[i] == v) {
                seen[i] = 1;
                stack[top++] = b[i];
            }
    }
    free(stack);
    free(seen);
    return found;
}

static qb_err_t job_write(qb_store_t *s, const qb_md_job_spec_t *sp, qb_time_t now,
                          write_mode_t mode, int64_t *id_out, char *errstr,
                          size_t errstr_size) {
    qb_err_t e = qb_md_job_validate(sp, errstr, errstr_size);
    if (e != QB_OK) return e;
    int has_cron = sp->cron && *sp->cron;
    const char *tz = has_cron ? (sp->time_zone && *sp->time_zone ? sp->time_zone : "UTC") : NULL;
    sched_t sc;
    e = sched_init(&sc, sp->cron, tz, sp->interval_seconds, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_time_t next;
    e = sched_next(&sc, now, &next, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_md_lookback_t lk;
    int64_t lsecs;
    if ((e = parse_lookback(sp->lookback, &lk, &lsecs, errstr, errstr_size)) != QB_OK) return e;

    char *symbols = pg_text_array(sp->symbols, sp->nsymbols);
    char *deps = pg_text_array(sp->depends_on, sp->ndepends);
    if (!symbols || !deps) {
        free(symbols);
        free(deps);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    char iv[24], ls[24], next_t[QB_TIME_STRLEN], rf[QB_TIME_STRLEN], rt[QB_TIME_STRLEN];
    const char *rf_p = NULL, *rt_p = NULL;
    const char *opts = sp->options && *sp->options ? sp->options : "{}";
    if (sp->range_from) {
        ts_txt(sp->range_from, rf);
        ts_txt(sp->range_to, rt);
        rf_p = rf;
        rt_p = rt;
    }
    snprintf(iv, sizeof iv, "%" PRId64, sp->interval_seconds);
    snprintf(ls, sizeof ls, "%" PRId64, lsecs);
    ts_txt(next, next_t);
    PGresult *r = NULL;
    int64_t id = 0;
    int64_t *ea = NULL, *eb = NULL;

    if ((e = qb_store_begin(s, errstr, errstr_size)) != QB_OK) goto out;
    if ((e = qb_store_exec(s, "SELECT pg_advisory_xact_lock(" SCHED_GRAPH_LOCK ")", errstr,
                           errstr_size)) != QB_OK)
        goto fail;
    {
        const char *p[1] = {sp->name};
        e = qb_store_query(s,
                           "SELECT id, coalesce(cron, ''), coalesce(time_zone, ''), "
                           "coalesce(interval_seconds, 0) FROM md.ingest_jobs WHERE name = $1 "
                           "FOR UPDATE",
                           1, p, &r, errstr, errstr_size);
        if (e != QB_OK) goto fail;
    }
    int exists = PQntuples(r) > 0;
    int sched_changed = 1;
    if (exists) {
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        sched_changed = strcmp(PQgetvalue(r, 0, 1), has_cron ? sp->cron : "") != 0 ||
                        strcmp(PQgetvalue(r, 0, 2), tz ? tz : "") != 0 ||
                        strtoll(PQgetvalue(r, 0, 3), NULL, 10) != sp->interval_seconds;
    }
    PQclear(r);
    r = NULL;
    if (exists && mode == WRITE_ADD) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT, "ingest job '%s' already exists",
                       sp->name);
        goto fail;
    }
    if (!exists && mode == WRITE_UPDATE) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no ingest job named '%s'",
                       sp->name);
        goto fail;
    }
    /* Resolve dependency names. */
    int64_t *dep_ids = NULL;
    size_t ndeps = 0;
    {
        const char *p[1] = {deps};
        e = qb_store_query(s, "SELECT name, id FROM md.ingest_jobs WHERE name = ANY($1::text[])",
                           1, p, &r, errstr, errstr_size);
        if (e != QB_OK) goto fail;
        for (size_t i = 0; i < sp->ndepends; i++) {
            int found = 0;
            for (int k = 0; k < PQntuples(r); k++)
                if (strcmp(PQgetvalue(r, k, 0), sp->depends_on[i]) == 0) found = 1;
            if (!found) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                               "depends_on: no ingest job named '%s'", sp->depends_on[i]);
                goto fail;
            }
        }
        ndeps = (size_t)PQntuples(r);
        dep_ids = calloc(ndeps + 1, sizeof *dep_ids);
        if (!dep_ids) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t k = 0; k < ndeps; k++) dep_ids[k] = strtoll(PQgetvalue(r, (int)k, 1), NULL, 10);
        PQclear(r);
        r = NULL;
    }
    const char *lkind = lk == QB_MD_LOOKBACK_DURATION ? "duration" : "since_last_bar";
    const char *lsecs_p = lsecs > 0 ? ls : NULL;
    if (exists) {
        char idt[24];
        snprintf(idt, sizeof idt, "%" PRId64, id);
        const char *p[14] = {idt,  sp->source, symbols, sp->timeframe, has_cron ? sp->cron : NULL,
                             tz,   has_cron ? NULL : iv, lkind, lsecs_p, next_t,
                             sched_changed ? "t" : "f", rf_p, rt_p, opts};
        e = qb_store_query(s,
                           "UPDATE md.ingest_jobs SET source = $2, symbols = $3::text[], "
                           "timeframe = $4, cron = $5, time_zone = $6, "
                           "interval_seconds = $7::bigint, lookback_kind = $8, "
                           "lookback_seconds = $9::bigint, "
                           "next_run_at = CASE WHEN $11::boolean THEN $10::timestamptz "
                           "ELSE next_run_at END, range_from = $12::timestamptz, "
                           "range_to = $13::timestamptz, options = $14::jsonb, "
                           "updated_at = now() WHERE id = $1::bigint",
                           14, p, NULL, errstr, errstr_size);
    } else {
        const char *p[13] = {sp->name, sp->source, symbols, sp->timeframe, has_cron ? sp->cron : NULL,
                             tz,       has_cron ? NULL : iv, lkind, lsecs_p, next_t,
                             rf_p,     rt_p,     opts};
        e = qb_store_query(s,
                           "INSERT INTO md.ingest_jobs (name, source, symbols, timeframe, cron, "
                           "time_zone, interval_seconds, lookback_kind, lookback_seconds, "
                           "next_run_at, range_from, range_to, options) VALUES ($1, $2, "
                           "$3::text[], $4, $5, $6, $7::bigint, $8, $9::bigint, $10::timestamptz, "
                           "$11::timestamptz, $12::timestamptz, $13::jsonb) RETURNING id",
                           13, p, &r, errstr, errstr_size);
        if (e == QB_OK) {
            id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
            r = NULL;
        }
    }
    if (e != QB_OK) {
        free(dep_ids);
        goto fail;
    }
    /* Cycle check over the graph as it will be. */
    if (ndeps) {
        char idt[24];
        snprintf(idt, sizeof idt, "%" PRId64, id);
        const char *p[1] = {idt};
        e = qb_store_query(s,
                           "SELECT job_id, depends_on FROM md.ingest_job_deps "
                           "WHERE job_id <> $1::bigint",
                           1, p, &r, errstr, errstr_size);
        if (e != QB_OK) {
            free(dep_ids);
            goto fail;
        }
        size_t ne = (size_t)PQntuples(r);
        ea = calloc(ne + ndeps + 1, sizeof *ea);
        eb = calloc(ne + ndeps + 1, sizeof *eb);
        if (!ea || !eb) {
            free(dep_ids);
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t k = 0; k < ne; k++) {
            ea[k] = strtoll(PQgetvalue(r, (int)k, 0), NULL, 10);
            eb[k] = strtoll(PQgetvalue(r, (int)k, 1), NULL, 10);
        }
        PQclear(r);
        r = NULL;
        for (size_t k = 0; k < ndeps; k++) {
            if (reaches(ea, eb, ne, dep_ids[k], id)) {
                free(dep_ids);
                e = qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                               "depends_on: a dependency of '%s' already depends on it "
                               "(directly or through other jobs): cycle refused",
                               sp->name);
                goto fail;
            }
        }
    }
    {
        char idt[24];
        snprintf(idt, sizeof idt, "%" PRId64, id);
        const char *p[2] = {idt, deps};
        e = qb_store_query(s, "DELETE FROM md.ingest_job_deps WHERE job_id = $1::bigint", 1, p,
                           NULL, errstr, errstr_size);
        if (e == QB_OK && ndeps)
            e = qb_store_query(s,
                               "INSERT INTO md.ingest_job_deps (job_id, depends_on) "
                               "SELECT $1::bigint, id FROM md.ingest_jobs "
                               "WHERE name = ANY($2::text[])",
                               2, p, NULL, errstr, errstr_size);
    }
    free(dep_ids);
    if (e != QB_OK) goto fail;
    e = qb_store_commit(s, errstr, errstr_size);
    if (e == QB_OK && id_out) *id_out = id;
    goto out;
fail:
    PQclear(r);
    r = NULL;
    rollback_with(s, e);
out:
    free(ea);
    free(eb);
    free(symbols);
    free(deps);
    return e;
}

qb_err_t qb_md_job_add(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now, int64_t *id,
                       char *errstr, size_t errstr_size) {
    return job_write(s, spec, now, WRITE_ADD, id, errstr, errstr_size);
}
qb_err_t qb_md_job_update(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now,
                          char *errstr, size_t errstr_size) {
    return job_write(s, spec, now, WRITE_UPDATE, NULL, errstr, errstr_size);
}
qb_err_t qb_md_job_upsert(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now,
                          int64_t *id, char *errstr, size_t errstr_size) {
    return job_write(s, spec, now, WRITE_UPSERT, id, errstr, errstr_size);
}

/* Run a one-row-or-none UPDATE by name; QB_ERR_NOT_FOUND when no row. */
static qb_err_t update_by_name(qb_store_t *s, const char *sql, int np, const char *const *p,
                               char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, sql, np, p, &r, errstr, errstr_size);
    if (e != QB_OK) return e;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no ingest job named '%.80s'",
                          p[0] ? p[0] : "");
    return QB_OK;
}

qb_err_t qb_md_job_pause(qb_store_t *s, const char *name, char *errstr, size_t errstr_size) {
    const char *p[1] = {name};
    return update_by_name(s,
                          "UPDATE md.ingest_jobs SET enabled = false, updated_at = now() "
                          "WHERE name = $1",
                          1, p, errstr, errstr_size);
}

qb_err_t qb_md_job_resume(qb_store_t *s, const char *name, qb_time_t now, char *errstr,
                          size_t errstr_size) {
    qb_md_job_t *j = NULL;
    qb_err_t e = qb_md_job_get(s, name, &j, errstr, errstr_size);
    if (e != QB_OK) return e;
    if (j->enabled) {
        qb_md_job_free(j);
        return QB_OK;
    }
    sched_t sc;
    qb_time_t next;
    e = job_sched(j, &sc, errstr, errstr_size);
    if (e == QB_OK) e = sched_next(&sc, now, &next, errstr, errstr_size);
    qb_md_job_free(j);
    if (e != QB_OK) return e;
    char nt[QB_TIME_STRLEN];
    ts_txt(next, nt);
    const char *p[2] = {name, nt};
    /* "AND NOT enabled": a concurrent resume already did it; keep its slot. */
    PGresult *r = NULL;
    e = qb_store_query(s,
                       "UPDATE md.ingest_jobs SET enabled = true, next_run_at = $2, "
                       "updated_at = now() WHERE name = $1 AND NOT enabled",
                       2, p, &r, errstr, errstr_size);
    PQclear(r);
    return e;
}

qb_err_t qb_md_job_run_now(qb_store_t *s, const char *name, qb_time_t now, char *errstr,
                           size_t errstr_size) {
    char nt[QB_TIME_STRLEN];
    ts_txt(now, nt);
    const char *p[2] = {name, nt};
    return update_by_name(s,
                          "UPDATE md.ingest_jobs SET run_requested_at = "
                          "coalesce(run_requested_at, $2::timestamptz), updated_at = now() "
                          "WHERE name = $1",
                          2, p, errstr, errstr_size);
}

qb_err_t qb_md_job_delete(qb_store_t *s, const char *name, char *errstr, size_t errstr_size) {
    const char *p[1] = {name};
    PGresult *r = NULL;
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (e != QB_OK) return e;
    e = qb_store_exec(s, "SELECT pg_advisory_xact_lock(" SCHED_GRAPH_LOCK ")", errstr,
                      errstr_size);
    if (e == QB_OK)
        e = qb_store_query(s,
                           "SELECT (SELECT string_agg(d.name, ', ' ORDER BY d.name) "
                           "   FROM md.ingest_job_deps x JOIN md.ingest_jobs d ON d.id = x.job_id"
                           "  WHERE x.depends_on = j.id) FROM md.ingest_jobs j WHERE j.name = $1",
                           1, p, &r, errstr, errstr_size);
    if (e != QB_OK) return rollback_with(s, e);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return rollback_with(s, qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                                           "no ingest job named '%.80s'", name ? name : ""));
    }
    if (!PQgetisnull(r, 0, 0)) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                       "ingest job '%s' is a dependency of %s: change or delete them first", name,
                       PQgetvalue(r, 0, 0));
        PQclear(r);
        return rollback_with(s, e);
    }
    PQclear(r);
    e = qb_store_query(s, "DELETE FROM md.ingest_jobs WHERE name = $1", 1, p, NULL, errstr,
                       errstr_size);
    if (e != QB_OK) return rollback_with(s, e);
    return qb_store_commit(s, errstr, errstr_size);
}

/* ---- runs ---------------------------------------------------------------- */

const char *qb_md_trigger_name(qb_md_trigger_t t) {
    switch (t) {
    case QB_MD_TRIGGER_SCHEDULE: return "schedule";
    case QB_MD_TRIGGER_CATCH_UP: return "catch_up";
    case QB_MD_TRIGGER_MANUAL: return "manual";
    }
    return "?";
}

const char *qb_md_run_status_name(qb_md_run_status_t st) {
    switch (st) {
    case QB_MD_RUN_RUNNING: return "running";
    case QB_MD_RUN_SUCCEEDED: return "succeeded";
    case QB_MD_RUN_FAILED: return "failed";
    case QB_MD_RUN_SKIPPED: return "skipped";
    }
    return "?";
}

/* The claim transaction (see CLAIMING in the header). status RUNNING for a
 * real run, SKIPPED (with error) for a slot given up because a dependency
 * failed. */
static qb_err_t claim(qb_store_t *s, const qb_md_job_t *j, qb_time_t slot, qb_md_trigger_t trig,
                      qb_md_run_status_t status, const char *owner, qb_time_t now,
                      int64_t lease_ns, const char *error, int64_t *run_id, char *errstr,
                      size_t errstr_size) {
    char idt[24], slot_t[QB_TIME_STRLEN], now_t[QB_TIME_STRLEN], next_t[QB_TIME_STRLEN],
        lease_t[QB_TIME_STRLEN];
    snprintf(idt, sizeof idt, "%" PRId64, j->id);
    ts_txt(slot, slot_t);
    ts_txt(now, now_t);
    if (lease_ns <= 0) lease_ns = QB_MD_SCHED_LEASE_DEFAULT;
    ts_txt(now + lease_ns, lease_t);
    int running = status == QB_MD_RUN_RUNNING;
    qb_time_t next = 0;
    if (trig != QB_MD_TRIGGER_MANUAL) {
        sched_t sc;
        qb_err_t e = job_sched(j, &sc, errstr, errstr_size);
        if (e == QB_OK) e = sched_next(&sc, slot, &next, errstr, errstr_size);
        if (e != QB_OK) return e;
        ts_txt(next, next_t);
    }
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (e != QB_OK) return e;
    PGresult *r = NULL;
    if (trig == QB_MD_TRIGGER_MANUAL) {
        const char *p[3] = {idt, running ? now_t : NULL, slot_t};
        e = qb_store_query(s,
                           "UPDATE md.ingest_jobs SET run_requested_at = NULL, "
                           "last_run_at = coalesce($2::timestamptz, last_run_at), "
                           "updated_at = now() WHERE id = $1::bigint AND "
                           "run_requested_at = $3::timestamptz",
                           3, p, &r, errstr, errstr_size);
    } else {
        const char *p[4] = {idt, next_t, running ? now_t : NULL, slot_t};
        e = qb_store_query(s,
                           "UPDATE md.ingest_jobs SET next_run_at = $2::timestamptz, "
                           "last_run_at = coalesce($3::timestamptz, last_run_at), "
                           "run_requested_at = NULL, updated_at = now() "
                           "WHERE id = $1::bigint AND enabled AND next_run_at <= $4::timestamptz",
                           4, p, &r, errstr, errstr_size);
    }
    if (e != QB_OK) return rollback_with(s, e);
    int updated = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!updated)
        return rollback_with(s, qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                                           "job '%s' slot %s: already claimed, or the job "
                                           "changed or was paused",
                                           j->name, slot_t));
    {
        const char *p[9] = {idt,
                            slot_t,
                            qb_md_trigger_name(trig),
                            qb_md_run_status_name(status),
                            owner ? owner : "",
                            now_t,
                            running ? lease_t : NULL,
                            running ? NULL : now_t,
                            error};
        e = qb_store_query(s,
                           "INSERT INTO md.ingest_job_runs (job_id, scheduled_for, trigger, "
                           "status, claimed_by, started_at, lease_until, finished_at, error) "
                           "VALUES ($1::bigint, $2::timestamptz, $3, $4, $5, $6::timestamptz, "
                           "$7::timestamptz, $8::timestamptz, $9) ON CONFLICT DO NOTHING "
                           "RETURNING id",
                           9, p, &r, errstr, errstr_size);
    }
    if (e != QB_OK) return rollback_with(s, e);
    if (PQntuples(r) == 0) {
        PQclear(r);
        if (trig == QB_MD_TRIGGER_MANUAL) {
            /* The instant collides with a run that already exists and is not
             * running: the request is served by it; consume the request. */
            const char *p[2] = {idt, slot_t};
            e = qb_store_query(s,
                               "SELECT 1 FROM md.ingest_job_runs WHERE job_id = $1::bigint AND "
                               "scheduled_for = $2::timestamptz AND status <> 'running'",
                               2, p, &r, errstr, errstr_size);
            if (e != QB_OK) return rollback_with(s, e);
            int served = PQntuples(r) > 0;
            PQclear(r);
            if (served && (e = qb_store_commit(s, errstr, errstr_size)) != QB_OK) return e;
            if (!served) qb_store_rollback(s, NULL, 0);
        } else {
            qb_store_rollback(s, NULL, 0);
        }
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                          "job '%s' slot %s: a run of the job is still running, or this slot "
                          "already has a run",
                          j->name, slot_t);
    }
    int64_t rid = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    e = qb_store_commit(s, errstr, errstr_size);
    if (e != QB_OK) return e;
    if (run_id) *run_id = rid;
    return QB_OK;
}

qb_err_t qb_md_sched_claim(qb_store_t *s, const qb_md_due_t *d, const char *owner, qb_time_t now,
                           int64_t lease_ns, int64_t *run_id, char *errstr,
                           size_t errstr_size) {
    if (!d || !d->job) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "no due entry");
    if (d->waiting)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "job '%s' is waiting for '%s'", d->job->name, d->waiting_on);
    return claim(s, d->job, d->scheduled_for, d->trigger, QB_MD_RUN_RUNNING, owner, now, lease_ns,
                 NULL, run_id, errstr, errstr_size);
}

/* Set the status of a running run; QB_ERR_STATE / NOT_FOUND otherwise. */
static qb_err_t update_running(qb_store_t *s, int64_t run_id, const char *sql, int np,
                               const char **p, char *errstr, size_t errstr_size) {
    char idt[24];
    snprintf(idt, sizeof idt, "%" PRId64, run_id);
    p[0] = idt;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, sql, np, p, &r, errstr, errstr_size);
    if (e != QB_OK) return e;
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n) return QB_OK;
    const char *q[1] = {idt};
    e = qb_store_query(s, "SELECT status, coalesce(error, '') FROM md.ingest_job_runs "
                          "WHERE id = $1::bigint",
                       1, q, &r, errstr, errstr_size);
    if (e != QB_OK) return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no run %" PRId64, run_id);
    }
    e = qb_err_set(errstr, errstr_size, QB_ERR_STATE, "run %" PRId64 " is no longer running (%s%s%.200s)",
                   run_id, PQgetvalue(r, 0, 0), *PQgetvalue(r, 0, 1) ? ": " : "",
                   PQgetvalue(r, 0, 1));
    PQclear(r);
    return e;
}

qb_err_t qb_md_sched_heartbeat(qb_store_t *s, int64_t run_id, qb_time_t now, int64_t lease_ns,
                               char *errstr, size_t errstr_size) {
    char lt[QB_TIME_STRLEN];
    ts_txt(now + (lease_ns > 0 ? lease_ns : QB_MD_SCHED_LEASE_DEFAULT), lt);
    const char *p[2] = {NULL, lt};
    return update_running(s, run_id,
                          "UPDATE md.ingest_job_runs SET lease_until = $2::timestamptz "
                          "WHERE id = $1::bigint AND status = 'running'",
                          2, p, errstr, errstr_size);
}

qb_err_t qb_md_sched_finish(qb_store_t *s, int64_t run_id, qb_md_run_status_t status,
                            int64_t rows, const char *error, const int64_t *ids, size_t nids,
                            qb_time_t now, char *errstr, size_t errstr_size) {
    if (status == QB_MD_RUN_RUNNING || status > QB_MD_RUN_SKIPPED)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "finish: bad status %d",
                          (int)status);
    size_t cap = 3 + nids * 21;
    char *arr = malloc(cap);
    if (!arr) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    size_t pos = 0;
    arr[pos++] = '{';
    for (size_t i = 0; i < nids; i++)
        pos += (size_t)snprintf(arr + pos, cap - pos, "%s%" PRId64, i ? "," : "", ids[i]);
    arr[pos++] = '}';
    arr[pos] = '\0';
    char rt[24], nt[QB_TIME_STRLEN];
    snprintf(rt, sizeof rt, "%" PRId64, rows);
    ts_txt(now, nt);
    const char *p[6] = {NULL, qb_md_run_status_name(status), nt, rt,
                        error && *error ? error : NULL, arr};
    qb_err_t e = update_running(s, run_id,
                                "UPDATE md.ingest_job_runs SET status = $2, "
                                "finished_at = $3::timestamptz, rows = $4::bigint, error = $5, "
                                "ingest_log_ids = $6::bigint[], lease_until = NULL "
                                "WHERE id = $1::bigint AND status = 'running'",
                                6, p, errstr, errstr_size);
    free(arr);
    return e;
}

/* ---- due ----------------------------------------------------------------- */

void qb_md_due_list_free(qb_md_due_list_t *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) qb_md_job_free(l->items[i].job);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

typedef struct due_sort_s {
    qb_md_due_t d;
    int depth;
} due_sort_t;

static int due_cmp(const void *a, const void *b) {
    const due_sort_t *x = a, *y = b;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    return strcmp(x->d.job->name, y->d.job->name);
}

/* Dependency state of job j for slot: 0 ready, 1 waiting (name in
 * waiting_on), 2 skip (reason in why). */
static qb_err_t dep_state(qb_store_t *s, const qb_md_job_t *j, qb_time_t slot, int *state,
                          char *waiting_on, size_t wcap, char *why, size_t why_cap,
                          char *errstr, size_t errstr_size) {
    char idt[24], st[QB_TIME_STRLEN];
    snprintf(idt, sizeof idt, "%" PRId64, j->id);
    ts_txt(slot, st);
    const char *p[2] = {idt, st};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(
        s,
        "SELECT d.name, d.next_run_at > $2::timestamptz, "
        "  (SELECT r.status FROM md.ingest_job_runs r WHERE r.job_id = d.id "
        "     AND r.trigger <> 'manual' AND r.scheduled_for <= $2::timestamptz "
        "   ORDER BY r.scheduled_for DESC LIMIT 1) "
        "FROM md.ingest_job_deps x JOIN md.ingest_jobs d ON d.id = x.depends_on "
        "WHERE x.job_id = $1::bigint ORDER BY d.name",
        2, p, &r, errstr, errstr_size);
    if (e != QB_OK) return e;
    *state = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        int passed = PQgetvalue(r, i, 1)[0] == 't';
        const char *status = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
        if (!passed || (status && strcmp(status, "running") == 0)) {
            if (*state == 0) {
                *state = 1;
                snprintf(waiting_on, wcap, "%s", name);
            }
        } else if (!status) {
            *state = 2;
            snprintf(why, why_cap, "dependency '%s' has no run at or before %s", name, st);
            break;
        } else if (strcmp(status, "succeeded") != 0) {
            *state = 2;
            snprintf(why, why_cap, "dependency '%s' %s for slot %s", name, status, st);
            break;
        }
    }
    PQclear(r);
    return QB_OK;
}

/* Length of the longest dependency chain below job `id` (edges a[i] ->
 * b[i], a DAG): level k holds the jobs at the end of a k-edge chain, and
 * the last non-empty level is the depth. */
static int job_depth(const int64_t *a, const int64_t *b, size_t n, int64_t id) {
    int64_t *level = malloc((n + 1) * sizeof *level);
    int64_t *next = malloc((n + 1) * sizeof *next);
    int depth = 0;
    size_t nl = 0;
    if (level && next) level[nl++] = id;
    while (nl && depth <= (int)n) {
        size_t nn = 0;
        for (size_t x = 0; x < nl; x++)
            for (size_t k = 0; k < n; k++) {
                if (a[k] != level[x]) continue;
                int dup = 0;
                for (size_t q = 0; q < nn && !dup; q++) dup = next[q] == b[k];
                if (!dup) next[nn++] = b[k];
            }
        if (!nn) break;
        depth++;
        memcpy(level, next, nn * sizeof *level);
        nl = nn;
    }
    free(level);
    free(next);
    return depth;
}

qb_err_t qb_md_sched_due(qb_store_t *s, qb_time_t now, qb_md_due_list_t *out, char *errstr,
                         size_t errstr_size) {
    out->items = NULL;
    out->n = 0;
    char nt[QB_TIME_STRLEN];
    ts_txt(now, nt);
    const char *p[1] = {nt};
    /* Abandoned runs. */
    qb_err_t e = qb_store_query(
        s,
        "UPDATE md.ingest_job_runs SET status = 'failed', finished_at = $1::timestamptz, "
        "lease_until = NULL, error = 'lease expired at ' || lease_until::text || "
        "' (claimed by ' || claimed_by || '): the replica stopped or lost the database' "
        "WHERE status = 'running' AND lease_until < $1::timestamptz",
        1, p, NULL, errstr, errstr_size);
    if (e != QB_OK) return e;

    /* Depth of every job in the dependency graph (longest chain below it). */
    PGresult *r = NULL;
    e = qb_store_query(s, "SELECT job_id, depends_on FROM md.ingest_job_deps", 0, NULL, &r,
                       errstr, errstr_size);
    if (e != QB_OK) return e;
    size_t ne = (size_t)PQntuples(r);
    int64_t *ea = calloc(ne + 1, sizeof *ea), *eb = calloc(ne + 1, sizeof *eb);
    if (!ea || !eb) {
        PQclear(r);
        free(ea);
        free(eb);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < ne; i++) {
        ea[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        eb[i] = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
    }
    PQclear(r);

    e = qb_store_query(s,
                       "SELECT " JOB_COLS " FROM md.ingest_jobs j WHERE "
                       "(j.enabled AND j.next_run_at <= $1::timestamptz) OR "
                       "j.run_requested_at IS NOT NULL",
                       1, p, &r, errstr, errstr_size);
    if (e != QB_OK) {
        free(ea);
        free(eb);
        return e;
    }
    /* Load and order first (dependencies before dependents), then decide:
     * a dependency's skip is then visible to its dependents in this call. */
    int nj = PQntuples(r);
    due_sort_t *v = calloc((size_t)nj + 1, sizeof *v);
    size_t n = 0;
    if (!v) e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nj && e == QB_OK; i++) {
        qb_md_job_t *j = job_from_row(r, i);
        if (!j) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            break;
        }
        memset(&v[n], 0, sizeof v[n]);
        v[n].d.job = j;
        v[n].depth = job_depth(ea, eb, ne, j->id);
        n++;
    }
    PQclear(r);
    free(ea);
    free(eb);
    if (e == QB_OK) qsort(v, n, sizeof *v, due_cmp);
    size_t kept = 0, i = 0;
    for (; i < n && e == QB_OK; i++) {
        due_sort_t *d = &v[i];
        qb_md_job_t *j = d->d.job;
        int keep = 1;
        if (j->enabled && j->next_run_at <= now) {
            sched_t sc;
            qb_time_t slot = 0;
            e = job_sched(j, &sc, errstr, errstr_size);
            if (e == QB_OK) e = sched_latest(&sc, j->next_run_at, now, &slot, errstr, errstr_size);
            if (e != QB_OK) {
                /* One unusable job (zone file removed...) must not stop the
                 * others: log it and leave it out. */
                QB_WARN("ingest job '%s' left out by the scheduler: %s", j->name, errstr);
                e = QB_OK;
                keep = 0;
            } else {
                d->d.scheduled_for = slot;
                d->d.trigger =
                    slot == j->next_run_at ? QB_MD_TRIGGER_SCHEDULE : QB_MD_TRIGGER_CATCH_UP;
                int state = 0;
                char why[256] = "";
                e = dep_state(s, j, slot, &state, d->d.waiting_on, sizeof d->d.waiting_on, why,
                              sizeof why, errstr, errstr_size);
                if (e == QB_OK && state == 2) {
                    char msg[256];
                    qb_err_t ce = claim(s, j, slot, d->d.trigger, QB_MD_RUN_SKIPPED, "scheduler",
                                        now, 0, why, NULL, msg, sizeof msg);
                    if (ce != QB_OK && ce != QB_ERR_CONFLICT)
                        e = qb_err_set(errstr, errstr_size, ce, "%s", msg);
                    else if (ce == QB_OK)
                        QB_INFO("ingest job '%s' skipped: %s", j->name, why);
                    keep = 0;
                }
                d->d.waiting = state == 1;
            }
        } else {
            d->d.scheduled_for = j->run_requested_at;
            d->d.trigger = QB_MD_TRIGGER_MANUAL;
        }
        if (keep) {
            v[kept++] = *d;
        } else {
            qb_md_job_free(j);
        }
    }
    if (e != QB_OK) {
        /* v[0..kept) were moved down, v[kept..i) are stale copies or were
         * freed, v[i..n) were not looked at. */
        for (size_t k = 0; k < kept; k++) qb_md_job_free(v[k].d.job);
        for (size_t k = i; k < n; k++) qb_md_job_free(v[k].d.job);
        free(v);
        return e;
    }
    n = kept;
    out->items = calloc(n + 1, sizeof *out->items);
    if (!out->items) {
        for (size_t k = 0; k < n; k++) qb_md_job_free(v[k].d.job);
        free(v);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < n; k++) out->items[k] = v[k].d;
    out->n = n;
    free(v);
    return QB_OK;
}

/* ---- tick ---------------------------------------------------------------- */

qb_err_t qb_md_run_add_log(qb_md_run_t *run, int64_t ingest_log_id, int64_t rows) {
    if (run->n_ingest_log_ids == run->cap_ingest_log_ids) {
        size_t cap = run->cap_ingest_log_ids ? run->cap_ingest_log_ids * 2 : 8;
        int64_t *v = realloc(run->ingest_log_ids, cap * sizeof *v);
        if (!v) return QB_ERR_NOMEM;
        run->ingest_log_ids = v;
        run->cap_ingest_log_ids = cap;
    }
    run->ingest_log_ids[run->n_ingest_log_ids++] = ingest_log_id;
    run->rows += rows;
    return QB_OK;
}

qb_err_t qb_md_sched_tick(qb_store_t *s, qb_time_t now, const char *owner, int64_t lease_ns,
                          qb_md_sched_run_cb cb, void *opaque, qb_md_tick_stats_t *stats,
                          char *errstr, size_t errstr_size) {
    qb_md_tick_stats_t st;
    memset(&st, 0, sizeof st);
    qb_err_t e = QB_OK;
    qb_time_t clock = now;
    for (int round = 0; round < TICK_MAX_ROUNDS; round++) {
        qb_md_due_list_t due;
        e = qb_md_sched_due(s, clock, &due, errstr, errstr_size);
        if (e != QB_OK) break;
        int ran = 0;
        st.waiting = 0;
        for (size_t i = 0; i < due.n && e == QB_OK; i++) {
            qb_md_due_t *d = &due.items[i];
            if (d->waiting) {
                st.waiting++;
                continue;
            }
            int64_t run_id = 0;
            char msg[512];
            qb_err_t ce = qb_md_sched_claim(s, d, owner, clock, lease_ns, &run_id, msg, sizeof msg);
            if (ce == QB_ERR_CONFLICT) {
                st.lost++;
                continue;
            }
            if (ce != QB_OK) {
                e = qb_err_set(errstr, errstr_size, ce, "%s", msg);
                break;
            }
            st.claimed++;
            ran = 1;
            qb_md_run_t run;
            memset(&run, 0, sizeof run);
            run.run_id = run_id;
            run.job = d->job;
            run.scheduled_for = d->scheduled_for;
            run.trigger = d->trigger;
            int64_t t0 = qb_time_mono_ns();
            msg[0] = '\0';
            qb_err_t re = cb(opaque, s, &run, msg, sizeof msg);
            if (qb_store_in_transaction(s)) qb_store_rollback(s, NULL, 0); /* callback's leftover */
            clock += qb_time_mono_ns() - t0;
            if (re != QB_OK && !msg[0]) snprintf(msg, sizeof msg, "%s", qb_err_str(re));
            char fmsg[512];
            qb_err_t fe = qb_md_sched_finish(
                s, run_id, re == QB_OK ? QB_MD_RUN_SUCCEEDED : QB_MD_RUN_FAILED, run.rows,
                re == QB_OK ? NULL : msg, run.ingest_log_ids, run.n_ingest_log_ids, clock, fmsg,
                sizeof fmsg);
            free(run.ingest_log_ids);
            if (re == QB_OK)
                st.succeeded++;
            else {
                st.failed++;
                QB_WARN("ingest job '%s' run %" PRId64 " failed: %s", d->job->name, run_id, msg);
            }
            if (fe == QB_ERR_STATE) {
                QB_WARN("ingest job '%s': %s", d->job->name, fmsg);
            } else if (fe != QB_OK) {
                e = qb_err_set(errstr, errstr_size, fe, "%s", fmsg);
            }
        }
        qb_md_due_list_free(&due);
        if (!ran) break;
    }
    if (stats) *stats = st;
    return e;
}

/* ---- range and commands -------------------------------------------------- */

void qb_md_sched_range(const qb_md_job_t *j, qb_time_t slot, qb_time_t last_bar_ts,
                       qb_time_t *from, qb_time_t *to) {
    if (j->range_from && j->range_to) {
        *from = j->range_from;
        *to = j->range_to;
        return;
    }
    *to = slot;
    qb_time_t back = j->lookback_seconds > 0 ? slot - j->lookback_seconds * QB_NS_PER_SEC : 0;
    if (j->lookback_kind == QB_MD_LOOKBACK_DURATION)
        *from = back;
    else
        *from = last_bar_ts > 0 ? last_bar_ts : back;
    if (*from > *to) *from = *to;
}

static qb_err_t command_range(const Qb__V1__Command__IngestJobParams *ij,
                              qb_md_job_spec_t *sp, char *errstr, size_t errstr_size) {
    const char *f = ij->range_from ? ij->range_from : "", *t = ij->range_to ? ij->range_to : "";
    if (!*f && !*t) return QB_OK;
    if (!*f || !*t)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "range: give both range_from and range_to, or neither");
    if (qb_time_parse(f, strlen(f), &sp->range_from) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "range_from: '%.40s' is not an ISO 8601 date or time", f);
    if (qb_time_parse(t, strlen(t), &sp->range_to) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "range_to: '%.40s' is not an ISO 8601 date or time", t);
    return QB_OK;
}

/* The csv fields of the params as an options object (only those set). */
static char *command_options(const Qb__V1__Command__IngestJobParams *ij) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    struct { const char *k, *v; } kv[] = {{"path", ij->path},
                                          {"format", ij->csv_format},
                                          {"columns", ij->csv_columns},
                                          {"time_format", ij->csv_time_format}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (kv[i].v && *kv[i].v && !cJSON_AddStringToObject(o, kv[i].k, kv[i].v)) {
            cJSON_Delete(o);
            return NULL;
        }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

qb_err_t qb_md_sched_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, qb_time_t now,
                                   char *errstr, size_t errstr_size) {
    if (!cmd) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "no command");
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_UPSERT:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_PAUSE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RESUME:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_DELETE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RUN_NOW: break;
    default: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(&qb__v1__command_kind__descriptor, cmd->kind);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "command %s: kind %s is not an ingest job command",
                          cmd->command_id ? cmd->command_id : "", ev ? ev->name : "(unknown)");
    }
    }
    const char *target = cmd->target ? cmd->target : "";
    if (*target && strcmp(target, "qb-data") != 0 && strcmp(target, "*") != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "command %s: target '%.64s' is not qb-data",
                          cmd->command_id ? cmd->command_id : "", target);
    const Qb__V1__Command__IngestJobParams *ij =
        cmd->params_case == QB__V1__COMMAND__PARAMS_INGEST_JOB ? cmd->ingest_job : NULL;
    if (!ij)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "command %s: params.ingest_job is required",
                          cmd->command_id ? cmd->command_id : "");
    if (!ij->name || !*ij->name)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "ingest_job.name: required");
    qb_err_t e;
    char msg[512];
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_UPSERT: {
        qb_md_job_spec_t sp;
        memset(&sp, 0, sizeof sp);
        sp.name = ij->name;
        sp.source = ij->source;
        sp.symbols = (const char *const *)ij->symbols;
        sp.nsymbols = ij->n_symbols;
        sp.timeframe = ij->timeframe;
        sp.cron = ij->cron;
        sp.time_zone = ij->time_zone;
        sp.interval_seconds = ij->interval_seconds;
        sp.lookback = ij->lookback;
        sp.depends_on = (const char *const *)ij->depends_on;
        sp.ndepends = ij->n_depends_on;
        e = command_range(ij, &sp, msg, sizeof msg);
        char *opts = NULL;
        if (e == QB_OK && !(opts = command_options(ij))) {
            e = QB_ERR_NOMEM;
            snprintf(msg, sizeof msg, "out of memory");
        }
        sp.options = opts;
        if (e == QB_OK) e = qb_md_job_upsert(s, &sp, now, NULL, msg, sizeof msg);
        free(opts);
        break;
    }
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_PAUSE:
        e = qb_md_job_pause(s, ij->name, msg, sizeof msg);
        break;
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RESUME:
        e = qb_md_job_resume(s, ij->name, now, msg, sizeof msg);
        break;
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_DELETE:
        e = qb_md_job_delete(s, ij->name, msg, sizeof msg);
        break;
    default:
        e = qb_md_job_run_now(s, ij->name, now, msg, sizeof msg);
        break;
    }
    if (e != QB_OK) {
        /* Spec errors name the field; prefix them with the message path. */
        int spec = e == QB_ERR_INVALID;
        return qb_err_set(errstr, errstr_size, e, "%s%s", spec ? "ingest_job." : "", msg);
    }
    return QB_OK;
}
