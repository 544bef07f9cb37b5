/* api_http.c — the gateway's HTTP server: libmicrohttpd, the route table,
 * authentication, authorisation, rate limits, CORS, request validation, the
 * dashboard's static files and per-route metrics. See api.h for what a
 * handler may rely on.
 *
 * Threads: QB_API_HTTP_THREADS event loops (libmicrohttpd's epoll thread
 * pool, each serving its share of the connections; default two per core, as
 * an inline handler waits for its Redis answer on the loop) parse requests
 * and send answers; nothing slower than Redis runs there. A route flagged
 * API_R_INLINE
 * (quotes, health, the OpenAPI document, opening a stream: memory and
 * Redis only) is answered on the event loop itself. Every other request is
 * handed to one of QB_API_HANDLER_THREADS handler threads (a FIFO queue)
 * with its connection suspended (MHD_suspend_connection), so a PostgreSQL
 * query, a Kafka acknowledgement or a 600k-round password hash holds up
 * only its own request; the handler thread resumes the connection and the
 * event loop sends the answer. Open streams are suspended while they have
 * nothing to send (api_sse.c), so they cost no thread.
 *
 * Request life: the access handler is called (1) with the headers: a
 * request context is made; (2..n) with chunks of the body: appended up to
 * QB_API_MAX_BODY, the rest counted and dropped (413 at the end); (last)
 * with no data: dispatch (route, auth, limits, validation, handler) and
 * the response is queued. The completion callback gives back what the
 * request checked out (PostgreSQL, Redis) and frees the context.
 *
 * Credentials, in order: X-API-Key: qbk_...; Authorization: Bearer <JWT
 * access token>; Authorization: ApiKey qbk_...; for stream routes also the
 * access_token query parameter (EventSource cannot set headers). A key is
 * looked up by the SHA-256 of its text in api.api_keys (revoked, expired
 * and disabled-user keys refused); a verified key is cached in memory for
 * QB_API_KEY_CACHE_MS, so a revocation takes effect on other replicas
 * within that time (at once on the replica that revoked it). A JWT is
 * verified by signature (HS256, key id = kid), expiry and type "access";
 * its role is the one it was issued with. Anything presented and wrong is
 * a 401 even on a public route, so a client never silently runs anonymous.
 *
 * Rate limit: one token bucket per principal (API key id, else user id,
 * else the client address) in Redis (qb_ratelimit_take: atomic Lua), rate
 * QB_API_RATE_PER_S and burst QB_API_RATE_BURST. Checked before the
 * handler, except on read-only routes flagged API_R_LIMIT_WITH_REDIS (the
 * quotes), whose handler's first Redis command carries the bucket's in the
 * same round trip (api_redis_cmd: one round trip per quote, not two). 429 with Retry-After
 * (seconds, rounded up) and X-RateLimit-Remaining. Redis unreachable:
 * allowed when QB_API_RATE_FAIL_OPEN (default; counted in
 * qb_api_ratelimit_unavailable_total), else 503. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_pool.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"

/* ---- key cache: sha256 of a key -> principal, for QB_API_KEY_CACHE_MS ----- */
#define KC_SLOTS 1024
typedef struct kc_ent_s {
    char hash[65];
    api_who_t who;
    int64_t until_ms;
} kc_ent_t;

typedef struct route_metrics_s {
    qb_counter_t *req[6]; /* by status class 1xx..5xx (index 1..5), [0] unused */
    qb_hist_t *lat;
} route_metrics_t;

struct api_s {
    api_cfg_t cfg;
    char *dsn_ro, *dsn_rw, *redis_url;
    api_pool_t *pg_ro, *pg_rw, *redis;
    qb_producer_t *prod;
    qb_jwt_keys_t *keys;
    struct MHD_Daemon *d;
    int port;
    api_hub_t *hub;
    pthread_mutex_t kc_mu;
    kc_ent_t *kc;
    char **cors;
    int ncors, cors_any;
    char static_root[PATH_MAX];
    const api_route_t *routes;
    size_t nroutes;
    route_metrics_t *rm;
    route_metrics_t other; /* 404, static files, preflight */
    qb_counter_t *rl_refused, *rl_unavail, *auth_fail, *conn_timeouts;
    char *tls_cert_pem, *tls_key_pem;
    /* handler threads and their queue */
    pthread_t *hth;
    int nhth;
    pthread_mutex_t jq_mu;
    pthread_cond_t jq_cv;
    struct req_ctx_s *jq_head, *jq_tail;
    int jq_stop;
    qb_gauge_t *jq_len;
};

enum { RQ_NEW, RQ_QUEUED, RQ_DONE };

typedef struct req_ctx_s {
    api_req_t r;
    int phase;           /* RQ_*: a handed-off request is RQ_DONE when its answer is ready */
    struct req_ctx_s *jq_next;
    size_t dropped;      /* body bytes over the limit */
    int64_t start_ns;
    route_metrics_t *rm;
    char pbuf[1024];     /* path placeholder values and names */
} req_ctx_t;

int64_t api_now_ns(void) { return (int64_t)qb_time_now(); }
const api_cfg_t *api_cfg(const api_t *a) { return &a->cfg; }
const qb_jwt_keys_t *api_jwt_keys(const api_t *a) { return a->keys; }
int api_pbkdf2_iter(const api_t *a) { return (int)a->cfg.pbkdf2_iter; }
api_hub_t *api_hub(api_t *a) { return a->hub; }
int api_port(const api_t *a) { return a->port; }

/* ---- answers ------------------------------------------------------------------- */
const char *api_code_of(int status) {
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 422: return "unprocessable";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return status >= 500 ? "internal" : "error";
    }
}

static void set_body(api_req_t *r, int status, char *body, size_t len, const char *ctype) {
    free(r->resp);
    r->status = status;
    r->resp = body;
    r->resp_len = len;
    r->ctype = ctype;
}

void api_json(api_req_t *r, int status, cJSON *body) {
    if (!body) {
        set_body(r, status, NULL, 0, "application/json");
        return;
    }
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    set_body(r, status, s, strlen(s), "application/json");
}

void api_json_text(api_req_t *r, int status, const char *json, size_t len) {
    char *s = malloc(len + 1);
    if (!s) {
        set_body(r, 500, NULL, 0, "application/json");
        return;
    }
    memcpy(s, json, len);
    s[len] = 0;
    set_body(r, status, s, len, "application/json");
}

void api_raw(api_req_t *r, int status, const char *ctype, const char *body, size_t len) {
    char *s = malloc(len + 1);
    if (!s) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    memcpy(s, body, len);
    s[len] = 0;
    set_body(r, status, s, len, ctype);
}

void api_error(api_req_t *r, int status, const char *field, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", api_code_of(status));
    cJSON_AddStringToObject(e, "message", msg);
    if (field)
        cJSON_AddStringToObject(e, "field", field);
    else
        cJSON_AddNullToObject(e, "field");
    api_json(r, status, o);
}

void api_header(api_req_t *r, const char *name, const char *value) {
    if (r->nextra >= 2) return;
    snprintf(r->extra_hdr[r->nextra][0], sizeof r->extra_hdr[0][0], "%s", name);
    snprintf(r->extra_hdr[r->nextra][1], sizeof r->extra_hdr[0][1], "%s", value);
    r->nextra++;
}

const char *api_param(const api_req_t *r, const char *name) {
    for (int i = 0; i < r->npath; i++)
        if (!strcmp(r->pnames[i], name)) return r->pvals[i];
    return NULL;
}

/* ---- query parameters -------------------------------------------------------------- */
const char *api_q_str(api_req_t *r, const char *name) {
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v && *v ? v : NULL;
}

int64_t api_q_int(api_req_t *r, const char *name, int64_t def) {
    const char *v = api_q_str(r, name);
    return v ? strtoll(v, NULL, 10) : def;
}

static int parse_time_text(const char *v, int64_t *out) {
    size_t n = strlen(v);
    if (n == 0) return -1;
    int digits = 1;
    for (size_t i = (v[0] == '-'); i < n; i++)
        if (!isdigit((unsigned char)v[i])) digits = 0;
    if (digits && n > 10) { /* ns since the epoch */
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (errno) return -1;
        *out = x;
        return 0;
    }
    qb_time_t t;
    if (qb_time_parse(v, n, &t) != QB_OK) return -1;
    *out = (int64_t)t;
    return 0;
}

int64_t api_q_time(api_req_t *r, const char *name, int64_t def) {
    const char *v = api_q_str(r, name);
    int64_t t;
    return v && !parse_time_text(v, &t) ? t : def;
}

static int bool_text(const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "1")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0")) *out = 0;
    else return -1;
    return 0;
}

int api_q_bool(api_req_t *r, const char *name, int def) {
    const char *v = api_q_str(r, name);
    int b;
    return v && !bool_text(v, &b) ? b : def;
}

static int symbol_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("._:/^=-", c)) return 0;
    }
    return 1;
}

static int enum_has(const char *values, const char *v) {
    size_t n = strlen(v);
    const char *p = values;
    while (p && *p) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Check one value against its declaration; 0 = ok, else a 400 is set. */
static int check_qvalue(api_req_t *r, const api_qparam_t *q, const char *v) {
    int64_t x;
    int b;
    switch (q->type) {
    case API_P_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            api_error(r, 400, q->name, "%s: expected an integer, got '%.40s'", q->name, v);
            return -1;
        }
        if (ll < q->min || ll > q->max) {
            api_error(r, 400, q->name, "%s: %lld is out of range [%lld, %lld]", q->name, ll,
                      (long long)q->min, (long long)q->max);
            return -1;
        }
        return 0;
    }
    case API_P_TIME:
        if (parse_time_text(v, &x)) {
            api_error(r, 400, q->name,
                      "%s: expected an RFC 3339 time, a date (YYYY-MM-DD) or nanoseconds since "
                      "the epoch, got '%.40s'",
                      q->name, v);
            return -1;
        }
        return 0;
    case API_P_BOOL:
        if (bool_text(v, &b)) {
            api_error(r, 400, q->name, "%s: expected true or false, got '%.40s'", q->name, v);
            return -1;
        }
        return 0;
    case API_P_ENUM:
        if (!enum_has(q->values, v)) {
            api_error(r, 400, q->name, "%s: expected one of %s, got '%.40s'", q->name, q->values,
                      v);
            return -1;
        }
        return 0;
    case API_P_SYMBOL:
        if (!symbol_ok(v)) {
            api_error(r, 400, q->name, "%s: '%.40s' is not a symbol", q->name, v);
            return -1;
        }
        return 0;
    case API_P_LIST: {
        int64_t max = q->max ? q->max : 100, items = 1;
        for (const char *p = v; *p; p++) items += *p == ',';
        if (items > max) {
            api_error(r, 400, q->name, "%s: at most %lld items", q->name, (long long)max);
            return -1;
        }
        const char *p = v;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == 0 || len > 64) {
                api_error(r, 400, q->name, "%s: empty or over-long item", q->name);
                return -1;
            }
            p = e ? e + 1 : p + len;
        }
        return 0;
    }
    case API_P_STRING:
    default:
        if ((int64_t)strlen(v) > (q->max ? q->max : 200)) {
            api_error(r, 400, q->name, "%s: longer than %lld bytes", q->name,
                      (long long)(q->max ? q->max : 200));
            return -1;
        }
        return 0;
    }
}

typedef struct qscan_s {
    api_req_t *r;
    int bad;
} qscan_t;

static enum MHD_Result qscan_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
    (void)kind;
    qscan_t *s = cls;
    if (s->bad) return MHD_NO;
    const api_route_t *rt = s->r->route;
    if ((rt->flags & API_R_STREAM) && !strcmp(key, "access_token")) return MHD_YES;
    for (int i = 0; i < API_MAX_QPARAMS && rt->q[i].name; i++) {
        if (strcmp(rt->q[i].name, key)) continue;
        if (!value || !*value) {
            if (rt->q[i].required) {
                api_error(s->r, 400, key, "%s: must not be empty", key);
                s->bad = 1;
            }
            return s->bad ? MHD_NO : MHD_YES;
        }
        if (check_qvalue(s->r, &rt->q[i], value)) s->bad = 1;
        return s->bad ? MHD_NO : MHD_YES;
    }
    api_error(s->r, 400, key, "unknown query parameter '%.60s'", key);
    s->bad = 1;
    return MHD_NO;
}

static int check_query(api_req_t *r) {
    qscan_t s = {r, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, qscan_cb, &s);
    if (s.bad) return -1;
    for (int i = 0; i < API_MAX_QPARAMS && r->route->q[i].name; i++)
        if (r->route->q[i].required && !api_q_str(r, r->route->q[i].name)) {
            api_error(r, 400, r->route->q[i].name, "%s: required", r->route->q[i].name);
            return -1;
        }
    return 0;
}

/* ---- the route table: matching ---------------------------------------------------------- */
/* Does `path` match `pat`? Fills the placeholders. */
static int route_match(const char *pat, const char *path, api_req_t *r, char *store,
                       size_t store_size) {
    int np = 0;
    size_t used = 0;
    const char *p = pat, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/') return 0;
        p++;
        u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
        if (pl > 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || np >= 6) return 0;
            if (r && used + ul + pl + 2 > store_size) return 0;
            if (r) {
                char *val = store + used;
                memcpy(val, u, ul);
                val[ul] = 0;
                used += ul + 1;
                char *nm = store + used;
                memcpy(nm, p + 1, pl - 2);
                nm[pl - 2] = 0;
                used += pl - 1;
                r->pvals[np] = val;
                r->pnames[np] = nm;
            }
            np++;
        } else if (pl != ul || strncmp(p, u, pl)) {
            return 0;
        }
        p += pl;
        u += ul;
    }
    if (*p || (*u && strcmp(u, "/"))) return 0;
    if (r) r->npath = np;
    return 1;
}

/* Percent-decode a path segment in place (MHD gives the path undecoded). */
static void pct_decode(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char h[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

static int check_path_params(api_req_t *r) {
    for (int i = 0; i < r->npath; i++) {
        char *v = (char *)r->pvals[i];
        pct_decode(v);
        const char *n = r->pnames[i];
        if (!strcmp(n, "symbol")) {
            if (!symbol_ok(v)) {
                api_error(r, 400, n, "'%.40s' is not a symbol", v);
                return -1;
            }
            for (char *c = v; *c; c++) *c = (char)toupper((unsigned char)*c);
        } else if (!strcmp(n, "id") || (strlen(n) > 3 && !strcmp(n + strlen(n) - 3, "_id"))) {
            if (!qb_uuid_valid(v)) {
                api_error(r, 400, n, "%s: '%.40s' is not a UUID", n, v);
                return -1;
            }
        } else if (strlen(v) > 200 || !*v) {
            api_error(r, 400, n, "%s: empty or longer than 200 bytes", n);
            return -1;
        }
    }
    return 0;
}

/* ---- authentication ---------------------------------------------------------------------- */
static int kc_slot(const char *hash) { return (int)(strtoul(hash + 56, NULL, 16) % KC_SLOTS); }

void api_keycache_drop_all(api_t *a) {
    pthread_mutex_lock(&a->kc_mu);
    memset(a->kc, 0, sizeof(kc_ent_t) * KC_SLOTS);
    pthread_mutex_unlock(&a->kc_mu);
}

static int auth_key(api_req_t *r, const char *key) {
    api_t *a = r->api;
    if (!qb_auth_apikey_wellformed(key)) {
        api_error(r, 401, NULL, "malformed API key");
        return -1;
    }
    char hash[65];
    qb_auth_sha256_hex(key, strlen(key), hash);
    int64_t now_ms = api_now_ns() / 1000000;
    int slot = kc_slot(hash);
    pthread_mutex_lock(&a->kc_mu);
    kc_ent_t *e = &a->kc[slot];
    if (!strcmp(e->hash, hash) && e->until_ms > now_ms) {
        r->who = e->who;
        pthread_mutex_unlock(&a->kc_mu);
        return 0;
    }
    pthread_mutex_unlock(&a->kc_mu);
    const char *p[] = {hash};
    PGresult *res = api_query_rw(
        r,
        "SELECT k.key_id::text, u.user_id::text, u.name, k.role FROM api.api_keys k "
        "JOIN api.users u USING (user_id) WHERE k.hash = $1 AND k.revoked_at IS NULL "
        "AND (k.expires_at IS NULL OR k.expires_at > now()) AND NOT u.disabled",
        1, p);
    if (!res) return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 401, NULL, "unknown or revoked API key");
        return -1;
    }
    api_who_t w = {0};
    snprintf(w.key_id, sizeof w.key_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(w.user_id, sizeof w.user_id, "%s", PQgetvalue(res, 0, 1));
    snprintf(w.name, sizeof w.name, "%s", PQgetvalue(res, 0, 2));
    w.role = qb_role_parse(PQgetvalue(res, 0, 3));
    snprintf(w.via, sizeof w.via, "key");
    PQclear(res);
    /* last_used_at, at most once a minute per key */
    const char *u[] = {w.key_id};
    PGresult *ur = api_query_rw(r,
                                "UPDATE api.api_keys SET last_used_at = now() WHERE key_id = $1 "
                                "AND (last_used_at IS NULL OR last_used_at < now() - interval "
                                "'1 minute')",
                                1, u);
    if (ur) PQclear(ur);
    pthread_mutex_lock(&a->kc_mu);
    snprintf(e->hash, sizeof e->hash, "%s", hash);
    e->who = w;
    e->until_ms = now_ms + a->cfg.key_cache_ms;
    pthread_mutex_unlock(&a->kc_mu);
    r->who = w;
    return 0;
}

static int auth_jwt(api_req_t *r, const char *tok) {
    qb_jwt_claims_t c;
    char err[256];
    if (qb_jwt_verify(r->api->keys, tok, api_now_ns() / 1000000000, &c, err, sizeof err) !=
        QB_OK) {
        api_error(r, 401, NULL, "invalid access token: %s", err);
        return -1;
    }
    if (strcmp(c.typ, "access")) {
        api_error(r, 401, NULL, "invalid access token: a %s token cannot be used here", c.typ);
        return -1;
    }
    memset(&r->who, 0, sizeof r->who);
    r->who.role = qb_role_parse(c.role);
    snprintf(r->who.user_id, sizeof r->who.user_id, "%s", c.sub);
    snprintf(r->who.name, sizeof r->who.name, "%s", c.name);
    snprintf(r->who.via, sizeof r->who.via, "jwt");
    if (r->who.role == QB_ROLE_NONE) {
        api_error(r, 401, NULL, "invalid access token: unknown role");
        return -1;
    }
    return 0;
}

/* 0: authenticated or anonymous; -1: answered 401. */
static int authenticate(api_req_t *r) {
    const char *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-API-Key");
    const char *authz =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    int rc = 0;
    if (key) {
        rc = auth_key(r, key);
    } else if (authz) {
        if (!strncasecmp(authz, "Bearer ", 7)) {
            const char *t = authz + 7;
            while (*t == ' ') t++;
            rc = !strncmp(t, "qbk_", 4) ? auth_key(r, t) : auth_jwt(r, t);
        } else if (!strncasecmp(authz, "ApiKey ", 7)) {
            rc = auth_key(r, authz + 7);
        } else {
            api_error(r, 401, NULL, "unsupported Authorization scheme (use Bearer or ApiKey)");
            rc = -1;
        }
    } else if (r->route && (r->route->flags & API_R_STREAM)) {
        const char *t = api_q_str(r, "access_token");
        if (t) rc = !strncmp(t, "qbk_", 4) ? auth_key(r, t) : auth_jwt(r, t);
    }
    if (rc) qb_counter_inc(r->api->auth_fail);
    return rc;
}

/* ---- rate limit -------------------------------------------------------------------------- */
static void rl_key(api_req_t *r, const char *client_ip) {
    if (r->who.key_id[0])
        snprintf(r->rl_key, sizeof r->rl_key, "qb:api:rl:key:%s", r->who.key_id);
    else if (r->who.user_id[0])
        snprintf(r->rl_key, sizeof r->rl_key, "qb:api:rl:user:%s", r->who.user_id);
    else
        snprintf(r->rl_key, sizeof r->rl_key, "qb:api:rl:ip:%s", client_ip);
}

/* The bucket's verdict (e: how asking it went) -> 0 go on, -1 answered. */
static int rl_verdict(api_req_t *r, qb_err_t e, int allowed, int64_t retry_ms, double remaining) {
    api_t *a = r->api;
    if (e != QB_OK) {
        qb_counter_inc(a->rl_unavail);
        if (a->cfg.rate_fail_open) return 0;
        api_error(r, 503, NULL, "rate limiter unavailable (Redis): try again");
        return -1;
    }
    char rem[32];
    snprintf(rem, sizeof rem, "%lld", (long long)remaining);
    if (!allowed) {
        qb_counter_inc(a->rl_refused);
        char ra[32];
        snprintf(ra, sizeof ra, "%lld", (long long)((retry_ms + 999) / 1000));
        r->nextra = 0;
        r->location[0] = 0;
        api_error(r, 429, NULL, "rate limit exceeded: %.0f requests per second, burst %.0f",
                  a->cfg.rate_per_s, a->cfg.rate_burst);
        api_header(r, "Retry-After", ra);
        api_header(r, "X-RateLimit-Remaining", "0");
        return -1;
    }
    api_header(r, "X-RateLimit-Remaining", rem);
    return 0;
}

/* Take a token on its own round trip (r->rl_key set). */
static int rate_limit_now(api_req_t *r) {
    api_t *a = r->api;
    r->rl_pending = 0;
    qb_cache_t *c = api_redis(r);
    int allowed = 1;
    int64_t retry_ms = 0;
    double remaining = 0;
    char err[256];
    qb_err_t e = c ? qb_ratelimit_take(c, r->rl_key, a->cfg.rate_per_s, a->cfg.rate_burst,
                                       api_now_ns() / 1000000, &allowed, &retry_ms, &remaining,
                                       err, sizeof err)
                   : QB_ERR_UNAVAILABLE;
    return rl_verdict(r, e, allowed, retry_ms, remaining);
}

qb_err_t api_redis_cmd(api_req_t *r, int argc, const char **argv, redisReply **reply,
                       char *errstr, size_t errstr_size) {
    *reply = NULL;
    qb_cache_t *c = api_redis(r);
    if (!c)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "no Redis connection free");
    api_t *a = r->api;
    qb_ratelimit_cmd_t rc;
    if (!r->rl_pending || qb_ratelimit_cmd(&rc, r->rl_key, a->cfg.rate_per_s, a->cfg.rate_burst,
                                           api_now_ns() / 1000000, errstr,
                                           errstr_size) != QB_OK)
        return qb_cache_command_argv(c, argc, argv, NULL, reply, errstr, errstr_size);
    qb_cache_cmd_t cmds[2] = {rc.cmd, {argc, argv, NULL}};
    redisReply *reps[2];
    qb_err_t e = qb_cache_pipeline(c, 2, cmds, reps, errstr, errstr_size);
    if (e != QB_OK) return e; /* still pending: checked after the handler */
    r->rl_pending = 0;
    int allowed = 1;
    int64_t retry_ms = 0;
    double remaining = 0;
    char err[256];
    qb_err_t le = qb_ratelimit_reply(reps[0], &allowed, &retry_ms, &remaining, err, sizeof err);
    freeReplyObject(reps[0]);
    if (le == QB_ERR_NOT_FOUND) /* NOSCRIPT: Redis restarted; EVAL loads the script */
        le = qb_ratelimit_take(c, r->rl_key, a->cfg.rate_per_s, a->cfg.rate_burst,
                               api_now_ns() / 1000000, &allowed, &retry_ms, &remaining, err,
                               sizeof err);
    if (rl_verdict(r, le, allowed, retry_ms, remaining)) {
        freeReplyObject(reps[1]);
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "rate limited");
    }
    if (reps[1]->type == REDIS_REPLY_ERROR) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_REDIS, "redis %s: %.*s", argv[0],
                       (int)reps[1]->len, reps[1]->str);
        freeReplyObject(reps[1]);
        return e;
    }
    *reply = reps[1];
    return QB_OK;
}

/* ---- body --------------------------------------------------------------------------------- */
static int parse_body(api_req_t *r) {
    if (!r->route->body_schema) {
        if (r->body_len) {
            api_error(r, 400, NULL, "this route takes no request body");
            return -1;
        }
        return 0;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "application/json", 16)) {
        api_error(r, 415, NULL, "Content-Type must be application/json");
        return -1;
    }
    if (!r->body_len) {
        api_error(r, 400, NULL, "a JSON object body is required");
        return -1;
    }
    if (strlen(r->body) != r->body_len) {
        api_error(r, 400, NULL, "body holds a NUL byte");
        return -1;
    }
    const char *end = NULL;
    r->json = cJSON_ParseWithOpts(r->body, &end, 1);
    if (!r->json) {
        const char *ep = cJSON_GetErrorPtr();
        api_error(r, 400, NULL, "body is not valid JSON (near byte %ld)",
                  ep && ep >= r->body ? (long)(ep - r->body) : 0L);
        return -1;
    }
    if (!cJSON_IsObject(r->json)) {
        api_error(r, 400, NULL, "body must be a JSON object");
        return -1;
    }
    return 0;
}

/* ---- static files (the dashboard) ------------------------------------------------------- */
static const char *mime_of(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    static const char *const m[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},          {".svg", "image/svg+xml"},
        {".png", "image/png"},                  {".ico", "image/x-icon"},
        {".map", "application/json"},           {".txt", "text/plain; charset=utf-8"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(dot, m[i][0])) return m[i][1];
    return "application/octet-stream";
}

static struct MHD_Response *static_file(api_t *a, const char *url, unsigned *status,
                                        const char **ctype) {
    if (!a->static_root[0]) return NULL;
    char want[PATH_MAX], real[PATH_MAX];
    if (!strcmp(url, "/")) url = "/index.html";
    if (strstr(url, "..") || snprintf(want, sizeof want, "%s%s", a->static_root, url) >=
                                 (int)sizeof want)
        return NULL;
    if (!realpath(want, real)) return NULL;
    size_t rl = strlen(a->static_root);
    if (strncmp(real, a->static_root, rl) || (real[rl] != '/' && real[rl] != 0)) return NULL;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return NULL;
    }
    *status = 200;
    *ctype = mime_of(real);
    return resp;
}

/* ---- CORS ----------------------------------------------------------------------------------- */
static const char *cors_allowed(api_t *a, const char *origin) {
    if (!origin) return NULL;
    if (a->cors_any) return origin;
    for (int i = 0; i < a->ncors; i++)
        if (!strcmp(a->cors[i], origin)) return origin;
    return NULL;
}

/* ---- dispatch ------------------------------------------------------------------------------ */
static const char *client_ip(struct MHD_Connection *c, char *buf, size_t n) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                      (socklen_t)n);
    }
    return buf;
}

/* Find the route (r->route stays NULL, the answer 404 or 405, when none). */
static void route_find(req_ctx_t *x) {
    api_req_t *r = &x->r;
    api_t *a = r->api;
    size_t nroutes = a->nroutes;
    const api_route_t *match = NULL;
    char allow[128] = "";
    for (size_t i = 0; i < nroutes; i++) {
        if (!route_match(a->routes[i].path, r->url, NULL, NULL, 0)) continue;
        if (!strcmp(a->routes[i].method, r->method)) {
            match = &a->routes[i];
            x->rm = &a->rm[i];
            route_match(match->path, r->url, r, x->pbuf, sizeof x->pbuf);
            break;
        }
        size_t l = strlen(allow);
        snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", a->routes[i].method);
    }
    if (!match) {
        if (allow[0]) {
            api_error(r, 405, NULL, "method %s not allowed on %s (allowed: %s)", r->method,
                      r->url, allow);
            api_header(r, "Allow", allow);
        } else {
            api_error(r, 404, NULL, "no route %s %s", r->method, r->url);
        }
        return;
    }
    r->route = match;
}

/* Everything after routing: credentials, role, rate limit, parameters,
 * body, the handler. */
static void dispatch(req_ctx_t *x) {
    api_req_t *r = &x->r;
    api_t *a = r->api;
    const api_route_t *match = r->route;
    if (!match) return; /* route_find answered */
    char ip[64];
    client_ip(r->conn, ip, sizeof ip);
    if (x->dropped) {
        api_error(r, 413, NULL, "request body larger than %lld bytes",
                  (long long)a->cfg.max_body);
        return;
    }
    if (authenticate(r)) return;
    if (match->min_role != QB_ROLE_NONE) {
        if (r->who.role == QB_ROLE_NONE) {
            api_error(r, 401, NULL,
                      "credentials required: X-API-Key or Authorization: Bearer <token>");
            api_header(r, "WWW-Authenticate", "Bearer realm=\"quantbus\"");
            return;
        }
        if (r->who.role < match->min_role) {
            api_error(r, 403, NULL, "role %s may not %s %s (needs %s)", qb_role_name(r->who.role),
                      r->method, match->path, qb_role_name(match->min_role));
            return;
        }
    }
    if (!(match->flags & API_R_NO_RATE) && a->cfg.rate_per_s > 0) {
        rl_key(r, ip);
        r->rl_pending = 1;
        if (!(match->flags & API_R_LIMIT_WITH_REDIS) && rate_limit_now(r)) return;
    }
    if (check_path_params(r) || check_query(r) || parse_body(r)) {
        if (r->rl_pending) rate_limit_now(r); /* a refusal replaces the 400 */
        return;
    }
    r->status = 0;
    match->fn(r);
    if (r->rl_pending) rate_limit_now(r); /* the handler sent nothing to Redis */
    if (!r->status && !r->stream) api_error(r, 500, NULL, "handler gave no answer");
}

/* ---- handler threads ------------------------------------------------------------------------ */
static void *handler_main(void *arg) {
    api_t *a = arg;
    pthread_mutex_lock(&a->jq_mu);
    for (;;) {
        while (!a->jq_head && !a->jq_stop) pthread_cond_wait(&a->jq_cv, &a->jq_mu);
        req_ctx_t *x = a->jq_head;
        if (!x) break; /* stopping and drained */
        a->jq_head = x->jq_next;
        if (!a->jq_head) a->jq_tail = NULL;
        pthread_mutex_unlock(&a->jq_mu);
        qb_gauge_add(a->jq_len, -1);
        dispatch(x);
        x->phase = RQ_DONE;
        MHD_resume_connection(x->r.conn); /* the event loop calls handle() again */
        pthread_mutex_lock(&a->jq_mu);
    }
    pthread_mutex_unlock(&a->jq_mu);
    return NULL;
}

/* Hand x to a handler thread, its connection suspended meanwhile. 0 when the
 * threads are stopping (the caller runs the request itself). */
static int handoff(api_t *a, req_ctx_t *x) {
    pthread_mutex_lock(&a->jq_mu);
    if (a->jq_stop || !a->nhth) {
        pthread_mutex_unlock(&a->jq_mu);
        return 0;
    }
    MHD_suspend_connection(x->r.conn); /* before a thread can resume it */
    x->phase = RQ_QUEUED;
    x->jq_next = NULL;
    if (a->jq_tail)
        a->jq_tail->jq_next = x;
    else
        a->jq_head = x;
    a->jq_tail = x;
    pthread_cond_signal(&a->jq_cv);
    pthread_mutex_unlock(&a->jq_mu);
    qb_gauge_add(a->jq_len, 1);
    return 1;
}

static void add_common_headers(api_t *a, struct MHD_Response *resp, struct MHD_Connection *conn,
                               const char *ctype) {
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *ok = cors_allowed(a, origin);
    if (ok) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", ok);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Location, Retry-After, X-RateLimit-Remaining");
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    api_t *a = cls;
    req_ctx_t *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        x->r.api = a;
        x->r.conn = conn;
        x->r.method = method;
        x->r.url = url;
        x->start_ns = qb_time_mono_ns();
        x->rm = &a->other;
        *con_cls = x;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (x->dropped || x->r.body_len + n > (size_t)a->cfg.max_body) {
            x->dropped += n;
        } else {
            char *nb = realloc(x->r.body, x->r.body_len + n + 1);
            if (!nb) return MHD_NO;
            memcpy(nb + x->r.body_len, upload, n);
            x->r.body = nb;
            x->r.body_len += n;
            nb[x->r.body_len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    api_req_t *r = &x->r;
    struct MHD_Response *resp = NULL;
    unsigned status = 200;
    const char *ctype = NULL;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!strcmp(method, "OPTIONS")) { /* CORS preflight */
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        status = cors_allowed(a, origin) ? 204 : 403;
        if (status == 204) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                    "GET, POST, PUT, PATCH, DELETE, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, X-API-Key, Last-Event-ID");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        add_common_headers(a, resp, conn, NULL);
    } else if (strncmp(url, "/api/", 5) && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        resp = static_file(a, url, &status, &ctype);
        if (resp) {
            add_common_headers(a, resp, conn, ctype);
            MHD_add_response_header(resp, "Cache-Control", "no-cache");
        }
    }
    if (!resp) {
        if (x->phase == RQ_QUEUED) return MHD_YES; /* not expected: still with its thread */
        if (x->phase == RQ_NEW) {
            route_find(x);
            if (r->route && !(r->route->flags & API_R_INLINE) && handoff(a, x))
                return MHD_YES;
            dispatch(x);
        }
        if (r->stream) {
            resp = r->stream;
            status = 200;
            add_common_headers(a, resp, conn, "text/event-stream");
            MHD_add_response_header(resp, "Cache-Control", "no-store");
            MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        } else {
            resp = MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (void *)"",
                                                   r->resp ? MHD_RESPMEM_MUST_FREE
                                                           : MHD_RESPMEM_PERSISTENT);
            if (!resp) return MHD_NO;
            r->resp = NULL; /* owned by the response now */
            status = (unsigned)r->status;
            add_common_headers(a, resp, conn, r->ctype ? r->ctype : "application/json");
            MHD_add_response_header(resp, "Cache-Control", "no-store");
            for (int i = 0; i < r->nextra; i++)
                MHD_add_response_header(resp, r->extra_hdr[i][0], r->extra_hdr[i][1]);
            if (r->location[0]) MHD_add_response_header(resp, "Location", r->location);
        }
    }
    x->r.status = (int)status;
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void api_req_release(api_req_t *r) {
    api_t *a = r->api;
    if (r->pg_ro) api_pool_put(a->pg_ro, r->pg_ro);
    if (r->pg_rw) {
        if (qb_store_in_transaction(r->pg_rw)) qb_store_rollback(r->pg_rw, NULL, 0);
        api_pool_put(a->pg_rw, r->pg_rw);
    }
    if (r->redis) api_pool_put(a->redis, r->redis);
    cJSON_Delete(r->json);
    free(r->body);
    free(r->resp);
    r->pg_ro = r->pg_rw = NULL;
    r->redis = NULL;
    r->json = NULL;
    r->body = r->resp = NULL;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)conn;
    api_t *a = cls;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) qb_counter_inc(a->conn_timeouts);
    req_ctx_t *x = *con_cls;
    if (!x) return;
    int cls_i = x->r.status / 100;
    if (cls_i >= 1 && cls_i <= 5) qb_counter_inc(x->rm->req[cls_i]);
    qb_hist_observe(x->rm->lat, (double)(qb_time_mono_ns() - x->start_ns) / 1e9);
    api_req_release(&x->r);
    free(x);
    *con_cls = NULL;
}

/* ---- pools ---------------------------------------------------------------------------------- */
static void *make_pg_ro(void *o) {
    api_t *a = o;
    char err[256];
    return qb_store_new(a->dsn_ro, err, sizeof err);
}
static void *make_pg_rw(void *o) {
    api_t *a = o;
    char err[256];
    return qb_store_new(a->dsn_rw, err, sizeof err);
}
static void *make_redis(void *o) {
    api_t *a = o;
    char err[256];
    return qb_cache_new(a->redis_url, err, sizeof err);
}
static void free_pg(void *p) { qb_store_destroy(p); }
static void free_redis(void *p) { qb_cache_destroy(p); }

qb_store_t *api_pg_ro(api_req_t *r) {
    if (!r->pg_ro) r->pg_ro = api_pool_get(r->api->pg_ro, 3000);
    if (!r->pg_ro) api_error(r, 503, NULL, "database busy: no connection free, try again");
    return r->pg_ro;
}

qb_store_t *api_pg_rw(api_req_t *r) {
    if (!r->pg_rw) r->pg_rw = api_pool_get(r->api->pg_rw, 3000);
    if (!r->pg_rw) api_error(r, 503, NULL, "database busy: no connection free, try again");
    return r->pg_rw;
}

qb_cache_t *api_redis(api_req_t *r) {
    if (!r->redis) r->redis = api_pool_get(r->api->redis, 2000);
    return r->redis;
}

/* The DSN with the session settings of a pool appended (libpq `options`). */
static char *dsn_with(const char *dsn, const char *opts, char *errstr, size_t errstr_size) {
    char *perr = NULL;
    PQconninfoOption *o = PQconninfoParse(dsn, &perr);
    if (!o) {
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "QB_PG_DSN: %s", perr ? perr : "bad");
        PQfreemem(perr);
        return NULL;
    }
    size_t cap = strlen(dsn) * 2 + strlen(opts) + 256, len = 0;
    char *out = calloc(1, cap);
    const char *prev_opts = "";
    for (PQconninfoOption *p = o; out && p->keyword; p++) {
        if (!p->val) continue;
        if (!strcmp(p->keyword, "options")) {
            prev_opts = p->val;
            continue;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s='", p->keyword);
        for (const char *c = p->val; *c && len + 4 < cap; c++) {
            if (*c == '\'' || *c == '\\') out[len++] = '\\';
            out[len++] = *c;
        }
        len += (size_t)snprintf(out + len, cap - len, "' ");
    }
    if (out) {
        len += (size_t)snprintf(out + len, cap - len, "options='%s %s'", prev_opts, opts);
        /* options values are free of quotes: we built them */
    }
    PQconninfoFree(o);
    if (!out) qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    return out;
}

/* ---- life --------------------------------------------------------------------------------- */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    QB_DEBUG("http: %s", buf);
}

static char *read_file(const char *path, char *errstr, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        qb_err_set(errstr, n, QB_ERR_CONFIG, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, k;
    char tmp[8192];
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (len + k + 1 > cap) {
            cap = (len + k + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        memcpy(buf + len, tmp, k);
        len += k;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

api_t *api_new(const api_cfg_t *cfg, const char *pg_dsn, const char *redis_url, char *errstr,
               size_t errstr_size) {
    api_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    pthread_mutex_init(&a->kc_mu, NULL);
    pthread_mutex_init(&a->jq_mu, NULL);
    pthread_cond_init(&a->jq_cv, NULL);
    a->kc = calloc(KC_SLOTS, sizeof(kc_ent_t));
    a->redis_url = strdup(redis_url ? redis_url : "");
    a->dsn_ro = dsn_with(pg_dsn, "-c role=qb_api_reader -c default_transaction_read_only=on "
                                 "-c statement_timeout=10000 -c TimeZone=UTC",
                         errstr, errstr_size);
    a->dsn_rw = dsn_with(pg_dsn, "-c statement_timeout=10000 -c TimeZone=UTC", errstr,
                         errstr_size);
    if (!a->kc || !a->dsn_ro || !a->dsn_rw || !a->redis_url) goto fail;
    a->keys = qb_jwt_keys_parse(cfg->jwt_secrets, errstr, errstr_size);
    if (!a->keys) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "QB_API_JWT_SECRETS: %s", errstr);
        snprintf(errstr, errstr_size, "%s", tmp);
        goto fail;
    }
    a->pg_ro = api_pool_new((int)cfg->pg_pool, make_pg_ro, free_pg, a, "postgres_ro");
    a->pg_rw = api_pool_new(4, make_pg_rw, free_pg, a, "postgres_rw");
    a->redis = api_pool_new((int)cfg->redis_pool, make_redis, free_redis, a, "redis");
    if (!a->pg_ro || !a->pg_rw || !a->redis) goto fail;
    if (!(a->prod = qb_producer_new(errstr, errstr_size))) goto fail;
    /* CORS allow-list */
    if (cfg->cors_origins && *cfg->cors_origins) {
        char *dup = strdup(cfg->cors_origins), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            if (!strcmp(t, "*")) a->cors_any = 1;
            char **nc = realloc(a->cors, sizeof(char *) * (size_t)(a->ncors + 1));
            if (!nc) break;
            a->cors = nc;
            a->cors[a->ncors++] = strdup(t);
        }
        free(dup);
    }
    if (cfg->static_dir && *cfg->static_dir) {
        if (!realpath(cfg->static_dir, a->static_root)) {
            QB_WARN("QB_API_STATIC_DIR=%s: %s; the dashboard is not served", cfg->static_dir,
                    strerror(errno));
            a->static_root[0] = 0;
        }
    }
    if (cfg->tls_cert && *cfg->tls_cert) {
        if (!(a->tls_cert_pem = read_file(cfg->tls_cert, errstr, errstr_size))) goto fail;
        if (!cfg->tls_key || !*cfg->tls_key) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "QB_API_TLS_CERT is set but QB_API_TLS_KEY is not");
            goto fail;
        }
        if (!(a->tls_key_pem = read_file(cfg->tls_key, errstr, errstr_size))) goto fail;
    }
    a->routes = api_routes(&a->nroutes);
    a->rm = calloc(a->nroutes, sizeof(route_metrics_t));
    if (!a->rm) goto fail;
    for (size_t i = 0; i <= a->nroutes; i++) {
        route_metrics_t *m = i < a->nroutes ? &a->rm[i] : &a->other;
        char lab[320];
        const char *rt = i < a->nroutes ? a->routes[i].path : "other";
        const char *me = i < a->nroutes ? a->routes[i].method : "any";
        for (int c = 1; c <= 5; c++) {
            snprintf(lab, sizeof lab, "method=\"%s\",route=\"%s\",code=\"%dxx\"", me, rt, c);
            m->req[c] = qb_metrics_counter("qb_api_requests_total",
                                           "HTTP requests answered, by route and status class",
                                           lab);
        }
        snprintf(lab, sizeof lab, "method=\"%s\",route=\"%s\"", me, rt);
        m->lat = qb_metrics_histogram("qb_api_request_duration_seconds",
                                      "Time from request to queued response, by route", lab);
    }
    a->rl_refused = qb_metrics_counter("qb_api_ratelimit_refused_total",
                                       "Requests refused with 429 by the rate limiter", NULL);
    a->rl_unavail = qb_metrics_counter(
        "qb_api_ratelimit_unavailable_total",
        "Requests the rate limiter could not check (Redis unreachable)", NULL);
    a->auth_fail = qb_metrics_counter("qb_api_auth_failures_total",
                                      "Requests with wrong credentials (401)", NULL);
    a->conn_timeouts = qb_metrics_counter(
        "qb_api_connections_timed_out_total",
        "Connections closed for making no progress (QB_API_CONN_TIMEOUT_S), stalled streams too",
        NULL);
    a->jq_len = qb_metrics_gauge("qb_api_handler_queue",
                                 "Requests waiting for a handler thread", NULL);
    if (!(a->hub = api_hub_new(cfg, errstr, errstr_size))) goto fail;
    return a;
fail:
    api_destroy(a);
    return NULL;
}

qb_err_t api_start(api_t *a, char *errstr, size_t errstr_size) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)a->cfg.port);
    if (inet_pton(AF_INET, a->cfg.bind, &sa.sin_addr) != 1)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "QB_API_BIND=%s: not an IPv4 address", a->cfg.bind);
    a->hth = calloc((size_t)a->cfg.handler_threads, sizeof *a->hth);
    if (!a->hth) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "handler threads: out of memory");
    for (int i = 0; i < (int)a->cfg.handler_threads; i++) {
        if (pthread_create(&a->hth[i], NULL, handler_main, a) != 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_IO, "cannot start handler thread %d", i);
        a->nhth++;
    }
    if (a->cfg.http_threads <= 0) { /* auto: two per core */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        a->cfg.http_threads = nc > 0 ? (nc * 2 > 64 ? 64 : nc * 2) : 4;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (a->tls_cert_pem) flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, a},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)a->cfg.conn_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)a->cfg.max_conns, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)a->cfg.http_threads, NULL},
        {a->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, a->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key_pem},
        {MHD_OPTION_END, 0, NULL}};
    a->d = MHD_start_daemon(flags, (uint16_t)a->cfg.port, NULL, NULL, handle, a,
                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (!a->d)
        return qb_err_set(errstr, errstr_size, QB_ERR_IO,
                          "cannot listen on %s:%lld (QB_API_PORT in use?%s)", a->cfg.bind,
                          (long long)a->cfg.port,
                          a->tls_cert_pem ? " or a bad TLS certificate/key" : "");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : (int)a->cfg.port;
    return QB_OK;
}

void api_destroy(api_t *a) {
    if (!a) return;
    api_hub_stop(a->hub); /* open streams are resumed and end */
    /* handler threads finish what is queued (resuming each connection),
     * then exit; a request arriving meanwhile runs on its event loop */
    pthread_mutex_lock(&a->jq_mu);
    a->jq_stop = 1;
    pthread_cond_broadcast(&a->jq_cv);
    pthread_mutex_unlock(&a->jq_mu);
    for (int i = 0; i < a->nhth; i++) pthread_join(a->hth[i], NULL);
    free(a->hth);
    if (a->d) MHD_stop_daemon(a->d); /* no connection is left suspended */
    api_hub_destroy(a->hub);
    if (a->prod && qb_producer_flush(a->prod, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_producer_destroy(a->prod);
    api_pool_destroy(a->pg_ro);
    api_pool_destroy(a->pg_rw);
    api_pool_destroy(a->redis);
    qb_jwt_keys_free(a->keys);
    for (int i = 0; i < a->ncors; i++) free(a->cors[i]);
    free(a->cors);
    free(a->kc);
    free(a->rm);
    free(a->dsn_ro);
    free(a->dsn_rw);
    free(a->redis_url);
    free(a->tls_cert_pem);
    free(a->tls_key_pem);
    pthread_mutex_destroy(&a->kc_mu);
    pthread_mutex_destroy(&a->jq_mu);
    pthread_cond_destroy(&a->jq_cv);
    free(a);
}

qb_producer_t *api_producer(api_t *a) { return a->prod; }
