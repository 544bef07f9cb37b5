/* api_util.c — what handlers share: strict JSON body readers, PostgreSQL
 * rows to JSON, cursors, publishing with acknowledgement, the admin audit
 * trail. See api.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "proto/qb_proto.h"
#include "qb/v1/control.pb-c.h"

/* ---- body ------------------------------------------------------------------------------ */
cJSON *api_body_get(api_req_t *r, const char *field) {
    return r->json ? cJSON_GetObjectItemCaseSensitive(r->json, field) : NULL;
}

int api_body_only(api_req_t *r, const char *const *allowed) {
    if (!r->json) return 1;
    for (cJSON *m = r->json->child; m; m = m->next) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(allowed[i], m->string)) ok = 1;
        if (!ok) {
            api_error(r, 400, m->string, "unknown field '%.60s'", m->string);
            return 0;
        }
    }
    return 1;
}

/* absent (or null): 1 with *present 0; wrong: 0 with a 400 set */
static int body_member(api_req_t *r, const char *field, int required, cJSON **out) {
    cJSON *m = api_body_get(r, field);
    if (!m || cJSON_IsNull(m)) {
        if (required) {
            api_error(r, 400, field, "%s: required", field);
            return 0;
        }
        *out = NULL;
        return 1;
    }
    *out = m;
    return 1;
}

int api_body_str(api_req_t *r, const char *field, int required, size_t maxlen,
                 const char **out) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    if (!cJSON_IsString(m)) {
        api_error(r, 400, field, "%s: expected a string", field);
        return 0;
    }
    size_t n = strlen(m->valuestring);
    if (n > maxlen) {
        api_error(r, 400, field, "%s: longer than %zu bytes", field, maxlen);
        return 0;
    }
    if (required && n == 0) {
        api_error(r, 400, field, "%s: must not be empty", field);
        return 0;
    }
    *out = m->valuestring;
    return 1;
}

int api_body_int(api_req_t *r, const char *field, int required, int64_t min, int64_t max,
                 int64_t *out) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    int64_t v;
    if (cJSON_IsNumber(m)) {
        double d = m->valuedouble;
        if (d != floor(d) || fabs(d) >= 9007199254740992.0) {
            api_error(r, 400, field, "%s: expected an integer (send large ones as strings)",
                      field);
            return 0;
        }
        v = (int64_t)d;
    } else if (cJSON_IsString(m)) {
        char *end;
        errno = 0;
        long long ll = strtoll(m->valuestring, &end, 10);
        if (errno || end == m->valuestring || *end) {
            api_error(r, 400, field, "%s: expected an integer", field);
            return 0;
        }
        v = ll;
    } else {
        api_error(r, 400, field, "%s: expected an integer", field);
        return 0;
    }
    if (v < min || v > max) {
        api_error(r, 400, field, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                  field, v, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int api_body_num(api_req_t *r, const char *field, int required, double min, double max,
                 double *out) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble)) {
        api_error(r, 400, field, "%s: expected a number", field);
        return 0;
    }
    if (m->valuedouble < min || m->valuedouble > max) {
        api_error(r, 400, field, "%s: %g is out of range [%g, %g]", field, m->valuedouble, min,
                  max);
        return 0;
    }
    *out = m->valuedouble;
    return 1;
}

int api_body_bool(api_req_t *r, const char *field, int required, int *out) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    if (!cJSON_IsBool(m)) {
        api_error(r, 400, field, "%s: expected true or false", field);
        return 0;
    }
    *out = cJSON_IsTrue(m);
    return 1;
}

int api_body_dec(api_req_t *r, const char *field, int required, int64_t min, int64_t *out) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    char buf[64];
    if (cJSON_IsString(m)) {
        snprintf(buf, sizeof buf, "%s", m->valuestring);
    } else if (cJSON_IsNumber(m) && isfinite(m->valuedouble)) {
        /* the number's own text is not kept by cJSON: print the shortest
         * text that reads back to it, which is what the client wrote for
         * any decimal with up to 15 significant digits */
        snprintf(buf, sizeof buf, "%.15g", m->valuedouble);
    } else {
        api_error(r, 400, field, "%s: expected a decimal number", field);
        return 0;
    }
    qb_dec_t d;
    if (qb_dec_parse(buf, strlen(buf), &d) != QB_OK) {
        api_error(r, 400, field,
                  "%s: '%.40s' is not a decimal with at most 8 decimals within range", field,
                  buf);
        return 0;
    }
    if (d < min) {
        api_error(r, 400, field, "%s: must be at least %.8f", field, (double)min / 1e8);
        return 0;
    }
    *out = d;
    return 1;
}

int api_body_enum(api_req_t *r, const char *field, int required, const char *values,
                  const char **out) {
    const char *s = NULL;
    if (!api_body_str(r, field, required, 64, &s)) return 0;
    if (!s) return 1;
    size_t n = strlen(s);
    for (const char *p = values; p && *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) {
            *out = s;
            return 1;
        }
        p = e ? e + 1 : NULL;
    }
    api_error(r, 400, field, "%s: expected one of %s, got '%.40s'", field, values, s);
    return 0;
}

int api_body_time(api_req_t *r, const char *field, int required, int64_t *out_ns) {
    cJSON *m;
    if (!body_member(r, field, required, &m)) return 0;
    if (!m) return 1;
    if (cJSON_IsString(m)) {
        qb_time_t t;
        char err[160];
        if (qb_time_parse_ex(m->valuestring, strlen(m->valuestring), &t, err, sizeof err) ==
            QB_OK) {
            *out_ns = (int64_t)t;
            return 1;
        }
        api_error(r, 400, field, "%s: %s", field, err);
        return 0;
    }
    api_error(r, 400, field, "%s: expected an RFC 3339 time or a date (YYYY-MM-DD)", field);
    return 0;
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_JSON 114
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184
#define OID_NUMERIC 1700
#define OID_JSONB 3802

static cJSON *pg_value(const PGresult *res, int row, int col) {
    if (PQgetisnull(res, row, col)) return cJSON_CreateNull();
    const char *v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case OID_BOOL:
        return cJSON_CreateBool(v[0] == 't');
    case OID_INT2:
    case OID_INT4:
        return cJSON_CreateNumber((double)strtol(v, NULL, 10));
    case OID_INT8: {
        long long x = strtoll(v, NULL, 10);
        if (llabs(x) < (1LL << 53)) return cJSON_CreateNumber((double)x);
        return cJSON_CreateString(v);
    }
    case OID_FLOAT4:
    case OID_FLOAT8:
        if (!strcmp(v, "NaN") || strstr(v, "Infinity")) return cJSON_CreateNull();
        return cJSON_CreateRaw(v);
    case OID_NUMERIC:
        if (!strcmp(v, "NaN")) return cJSON_CreateNull();
        return cJSON_CreateRaw(v); /* exact decimal text is a valid JSON number */
    case OID_JSON:
    case OID_JSONB:
        return cJSON_CreateRaw(v);
    case OID_TIMESTAMPTZ: {
        /* TimeZone=UTC, DateStyle ISO: "2024-01-02 03:04:05.123+00" */
        char buf[48];
        size_t n = strlen(v);
        if (n > 3 && n < sizeof buf && !strcmp(v + n - 3, "+00")) {
            memcpy(buf, v, n - 3);
            buf[n - 3] = 'Z';
            buf[n - 2] = 0;
            char *sp = strchr(buf, ' ');
            if (sp) *sp = 'T';
            return cJSON_CreateString(buf);
        }
        return cJSON_CreateString(v);
    }
    default:
        return cJSON_CreateString(v);
    }
}

cJSON *api_pg_row_json(const PGresult *res, int row) {
    cJSON *o = cJSON_CreateObject();
    int nf = PQnfields(res);
    for (int c = 0; c < nf; c++) cJSON_AddItemToObject(o, PQfname(res, c), pg_value(res, row, c));
    return o;
}

cJSON *api_pg_rows_json(const PGresult *res) {
    cJSON *a = cJSON_CreateArray();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, api_pg_row_json(res, i));
    return a;
}

static PGresult *query_on(api_req_t *r, qb_store_t *st, const char *name, const char *sql,
                          int n, const char *const *params) {
    if (!st) return NULL;
    PGresult *res = NULL;
    char err[512];
    qb_err_t e;
    if (name) {
        e = qb_store_prepare(st, name, sql, n);
        if (e == QB_OK) e = qb_store_exec_prepared(st, name, n, params, &res, err, sizeof err);
        else snprintf(err, sizeof err, "statement %s registered with other text", name);
    } else {
        e = qb_store_query(st, sql, n, params, &res, err, sizeof err);
    }
    if (e == QB_OK) return res;
    const char *state = qb_store_last_sqlstate(st);
    if (!state) state = "";
    if (!strcmp(state, "42P01") || !strcmp(state, "3F000")) /* schema not migrated yet */
        api_error(r, 503, NULL, "the data is not there yet (schema missing: %s)", err);
    else if (!strcmp(state, "57014"))
        api_error(r, 504, NULL, "query took too long");
    else if (!strncmp(state, "22", 2))
        api_error(r, 400, NULL, "bad value: %s", err);
    else if (!*state || !strncmp(state, "08", 2) || !strncmp(state, "57P", 3) ||
             !strncmp(state, "53", 2))
        api_error(r, 503, NULL, "database unavailable: try again"); /* connection, shutdown, resources */
    else {
        QB_ERROR("query failed (%s): %s", state, err);
        api_error(r, 500, NULL, "database error");
    }
    return NULL;
}

PGresult *api_query(api_req_t *r, const char *sql, int n, const char *const *params) {
    return query_on(r, api_pg_ro(r), NULL, sql, n, params);
}

PGresult *api_query_named(api_req_t *r, const char *name, const char *sql, int n,
                          const char *const *params) {
    return query_on(r, api_pg_ro(r), name, sql, n, params);
}

PGresult *api_query_rw(api_req_t *r, const char *sql, int n, const char *const *params) {
    return query_on(r, api_pg_rw(r), NULL, sql, n, params);
}

int api_rows(api_req_t *r, const char *sql, int n, const char *const *params, int64_t limit,
             const char *cursor_col) {
    PGresult *res = api_query(r, sql, n, params);
    if (!res) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", api_pg_rows_json(res));
    int rows = PQntuples(res);
    if (cursor_col && limit > 0 && rows == limit) {
        int c = PQfnumber(res, cursor_col);
        if (c >= 0) {
            char cur[512];
            api_cursor_encode(PQgetvalue(res, rows - 1, c), cur, sizeof cur);
            cJSON_AddStringToObject(o, "next_cursor", cur);
        }
    }
    if (!cJSON_GetObjectItem(o, "next_cursor")) cJSON_AddNullToObject(o, "next_cursor");
    PQclear(res);
    api_json(r, 200, o);
    return 1;
}

int api_row(api_req_t *r, const char *sql, int n, const char *const *params,
            const char *notfound) {
    PGresult *res = api_query(r, sql, n, params);
    if (!res) return 0;
    if (PQntuples(res) == 0) {
        PQclear(res);
        api_error(r, 404, NULL, "%s", notfound ? notfound : "not found");
        return 0;
    }
    cJSON *o = api_pg_row_json(res, 0);
    PQclear(res);
    api_json(r, 200, o);
    return 1;
}

/* ---- cursors ------------------------------------------------------------------------------------ */
void api_cursor_encode(const char *plain, char *out, size_t out_size) {
    size_t n = 0;
    if (qb_b64url_encode(plain, strlen(plain), out, out_size, &n) != QB_OK && out_size)
        out[0] = 0;
}

int api_cursor_decode(api_req_t *r, const char *cursor, char *out, size_t out_size) {
    size_t n = 0;
    if (qb_b64url_decode(cursor, strlen(cursor), out, out_size - 1, &n) != QB_OK) {
        api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
        return 0;
    }
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!isprint((unsigned char)out[i])) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return 0;
        }
    return 1;
}

/* ---- Kafka ---------------------------------------------------------------------------------------- */
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;

int api_send(api_req_t *r, const char *topic, const char *key, const ProtobufCMessage *m) {
    qb_producer_t *p = api_producer(r->api);
    /* one writer at a time: the flush below waits for this message (and any
     * other queued), and its failure count is then ours */
    pthread_mutex_lock(&send_mu);
    qb_err_t e = qb_producer_send_msg(p, topic, key, key ? strlen(key) : 0, m, "");
    if (e == QB_OK) e = qb_producer_flush(p, 5000);
    pthread_mutex_unlock(&send_mu);
    if (e != QB_OK) {
        QB_WARN("publish to %s failed: %s", topic, qb_err_str(e));
        api_error(r, 503, NULL, "the message bus did not acknowledge the request (%s): retry",
                  qb_err_name(e));
        return 0;
    }
    return 1;
}

int api_send_command(api_req_t *r, Qb__V1__Command *cmd, char *id_out) {
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qb-api", 0, NULL);
    cmd->header = &h.pb;
    char id[QB_UUID_STRLEN];
    qb_uuid_v4(id);
    cmd->command_id = id;
    char by[128];
    snprintf(by, sizeof by, "%s%s%s", r->who.name, r->who.key_id[0] ? " key " : "",
             r->who.key_id);
    cmd->issued_by = by;
    int ok = api_send(r, "control", cmd->target, &cmd->base);
    if (ok && id_out) memcpy(id_out, id, QB_UUID_STRLEN);
    cmd->header = NULL;
    cmd->command_id = NULL;
    cmd->issued_by = NULL;
    return ok;
}

/* ---- audit ------------------------------------------------------------------------------------------ */
void api_audit(api_req_t *r, const char *action, const char *target, cJSON *detail) {
    /* an audit failure is logged, never answered: keep the handler's answer */
    int keep_status = r->status;
    char *keep_resp = r->resp;
    size_t keep_len = r->resp_len;
    const char *keep_ctype = r->ctype;
    r->resp = NULL;
    char *d = detail ? cJSON_PrintUnformatted(detail) : NULL;
    cJSON_Delete(detail);
    const char *p[] = {r->who.user_id[0] ? r->who.user_id : NULL, r->who.name,
                       r->who.key_id[0] ? r->who.key_id : NULL, action, target ? target : "",
                       d ? d : "{}"};
    PGresult *res = api_query_rw(
        r,
        "INSERT INTO api.audit (user_id, actor, key_id, action, target, detail) "
        "VALUES ($1::uuid, $2, $3::uuid, $4, $5, $6::jsonb)",
        6, p);
    if (res)
        PQclear(res);
    else
        QB_ERROR("audit: could not record %s %s", action, target ? target : "");
    free(d);
    free(r->resp);
    r->status = keep_status;
    r->resp = keep_resp;
    r->resp_len = keep_len;
    r->ctype = keep_ctype;
}
