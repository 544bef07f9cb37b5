/* api.h — the inside of qb-api, the HTTP gateway: what every route handler
 * sees.
 *
 * A route is one row of the route table (api_routes.c): method, path
 * pattern with {placeholders}, the least role allowed, the query parameters
 * it accepts (type, bounds, required), the JSON body it accepts (a JSON
 * Schema text, checked by the handler's api_body_* calls and published in
 * the OpenAPI document), the success status, and the handler. The server
 * (api_http.c) does everything common before a handler runs:
 *   - matches the route (404 / 405 with the allowed methods otherwise);
 *   - authenticates (X-API-Key, or Authorization: Bearer <JWT access token>,
 *     or for /stream only ?access_token=) and authorises by role (401 / 403);
 *   - takes a token from the caller's rate-limit bucket in Redis (429 with
 *     Retry-After);
 *   - refuses a body over QB_API_MAX_BODY (413), a body that is not JSON on
 *     a JSON route (400 / 415);
 *   - validates every query parameter against the table: an unknown one or a
 *     bad value is a 400 naming the parameter ("field").
 * The handler then reads parameters (api_param, api_q_*), the body
 * (api_body_*), runs its queries on a pooled read-only PostgreSQL
 * connection (api_pg_ro) or sends to Kafka (api_send_*), and answers with
 * api_json / api_error. Connections checked out during a request are given
 * back when it ends.
 *
 * Errors always have the body {"error": {"code", "message", "field"}}:
 * code is a short machine word (bad_request, unauthorized, forbidden,
 * not_found, method_not_allowed, conflict, payload_too_large,
 * unsupported_media_type, rate_limited, unavailable, internal), field names
 * the offending parameter or body path or is null.
 *
 * Threads: libmicrohttpd runs one thread per connection, so handlers may
 * block (PostgreSQL, the bus); shared state is the pools (mutex + condvar),
 * the SSE hub (api_sse.c) and the metrics (atomics). */
#ifndef QB_API_H
#define QB_API_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "auth/qb_auth.h"
#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "core/qb_err.h"
#include "core/qb_metrics.h"
#include "store/qb_store.h"

typedef struct api_s api_t;
typedef struct api_req_s api_req_t;
typedef struct api_route_s api_route_t;

/* ---- configuration (QB_API_*) -------------------------------------------------- */
typedef struct api_cfg_s {
    const char *bind;         /* QB_API_BIND */
    int64_t port;             /* QB_API_PORT (0 = any free port, logged) */
    const char *jwt_secrets;  /* QB_API_JWT_SECRETS "kid:secret,..." first signs */
    const char *admin_password; /* QB_API_ADMIN_PASSWORD: bootstrap user admin */
    const char *cors_origins; /* QB_API_CORS_ORIGINS comma list, "*" = any */
    const char *static_dir;   /* QB_API_STATIC_DIR: the dashboard */
    const char *tls_cert;     /* QB_API_TLS_CERT (PEM file) */
    const char *tls_key;      /* QB_API_TLS_KEY (PEM file) */
    int64_t max_body;         /* QB_API_MAX_BODY bytes */
    int64_t max_conns;        /* QB_API_MAX_CONNECTIONS */
    int64_t http_threads;     /* QB_API_HTTP_THREADS: event-loop threads (epoll each) */
    int64_t handler_threads;  /* QB_API_HANDLER_THREADS: threads running blocking handlers */
    int64_t pg_pool;          /* QB_API_PG_POOL connections (read-only role) */
    int64_t redis_pool;       /* QB_API_REDIS_POOL connections */
    int64_t access_ttl_s;     /* QB_API_ACCESS_TTL_S */
    int64_t refresh_ttl_s;    /* QB_API_REFRESH_TTL_S */
    double rate_per_s;        /* QB_API_RATE_PER_S per principal */
    double rate_burst;        /* QB_API_RATE_BURST */
    int rate_fail_open;       /* QB_API_RATE_FAIL_OPEN */
    int64_t pbkdf2_iter;      /* QB_API_PBKDF2_ITER */
    int64_t key_cache_ms;     /* QB_API_KEY_CACHE_MS */
    int64_t sse_buffer;       /* QB_API_SSE_BUFFER events kept for resume */
    int64_t sse_heartbeat_ms; /* QB_API_SSE_HEARTBEAT_MS */
    int64_t sse_max_clients;  /* QB_API_SSE_MAX_CLIENTS */
    int64_t conn_timeout_s;   /* QB_API_CONN_TIMEOUT_S idle connections closed */
    const char *default_account; /* QB_API_DEFAULT_ACCOUNT */
    int migrate;              /* QB_API_MIGRATE */
} api_cfg_t;

/* ---- the principal of a request ---------------------------------------------------- */
typedef struct api_who_s {
    qb_role_t role;      /* QB_ROLE_NONE when anonymous */
    char user_id[64];    /* api.users.user_id (uuid text) */
    char name[64];       /* user name */
    char key_id[40];     /* api key id when authenticated by a key, else "" */
    char via[8];         /* "key", "jwt" or "" */
} api_who_t;

/* ---- route table -------------------------------------------------------------------- */
typedef enum {
    API_P_STRING = 0, /* any text up to max (default 200) bytes */
    API_P_INT,        /* integer in [min, max] */
    API_P_TIME,       /* RFC 3339 / ISO date / integer ns since the epoch */
    API_P_BOOL,       /* true/false/1/0 */
    API_P_ENUM,       /* one of `values` ("a|b|c") */
    API_P_LIST,       /* comma-separated list of up to max items, each up to 64 bytes */
    API_P_SYMBOL      /* [A-Za-z0-9._:/^=-]{1,32}, upper-cased */
} api_ptype_t;

typedef struct api_qparam_s {
    const char *name;
    api_ptype_t type;
    int required;
    int64_t min, max;   /* INT bounds; STRING/LIST max length/items (0 = default) */
    const char *values; /* ENUM choices "a|b|c" */
    const char *desc;
} api_qparam_t;

typedef void (*api_handler_fn)(api_req_t *r);

#define API_MAX_QPARAMS 12
struct api_route_s {
    const char *method;    /* GET POST PUT PATCH DELETE */
    const char *path;      /* "/api/v1/market/quote/{symbol}" */
    qb_role_t min_role;    /* QB_ROLE_NONE = public (no credentials needed) */
    api_handler_fn fn;
    const char *tag;       /* OpenAPI tag: market, features, ... */
    const char *summary;   /* one line */
    int status;            /* success status: 200, 201, 202, 204 */
    const char *body_schema; /* JSON Schema of the request body, or NULL */
    const char *resp_schema; /* JSON Schema of the success body, or NULL = generic object */
    api_qparam_t q[API_MAX_QPARAMS]; /* terminated by name == NULL */
    int flags;             /* API_R_* */
};
#define API_R_STREAM 0x1   /* SSE: access_token query parameter accepted */
#define API_R_NO_RATE 0x2  /* not rate limited (login: limited per address instead) */
#define API_R_RAW 0x4      /* handler answers with a non-JSON body (HTML, CSV) */
#define API_R_INLINE 0x8   /* quick handler (memory, Redis): runs on the HTTP event-loop
                            * thread itself; every other route is handed to a handler
                            * thread while its connection is suspended (api_http.c) */
#define API_R_LIMIT_WITH_REDIS 0x10 /* read-only route whose handler calls api_redis_cmd:
                            * the rate-limit bucket goes in the same Redis round trip as the
                            * handler's first command (checked after the handler when it
                            * sent none, its answer then replaced by the 429) */

const api_route_t *api_routes(size_t *n);

/* Path placeholders may also carry a type: {symbol} is API_P_SYMBOL, {id} a
 * UUID, {run_id} a UUID, {name} a STRING; checked before the handler. */

/* ---- the request ---------------------------------------------------------------------- */
struct api_req_s {
    api_t *api;
    const api_route_t *route;
    const char *method;
    const char *url;              /* path only */
    void *conn;                   /* struct MHD_Connection * */
    api_who_t who;
    const char *pvals[6];         /* path placeholder values, in order */
    const char *pnames[6];
    int npath;
    char *body;                   /* NUL-terminated copy of the upload */
    size_t body_len;
    cJSON *json;                  /* parsed body (object) or NULL */
    /* response */
    int status;
    char *resp;                   /* malloc'd */
    size_t resp_len;
    const char *ctype;
    char location[256];
    char extra_hdr[2][2][128];    /* extra response headers (name, value) */
    int nextra;
    /* resources checked out for this request, returned at its end */
    qb_store_t *pg_ro, *pg_rw;
    qb_cache_t *redis;
    char errbuf[512];
    int rl_pending;               /* API_R_LIMIT_WITH_REDIS: bucket not checked yet */
    char rl_key[128];
    /* SSE (route flag API_R_STREAM): the handler fills this and the server
     * streams instead of sending resp */
    void *stream;
};

/* path placeholder by name ("symbol"); NULL if the route has none */
const char *api_param(const api_req_t *r, const char *name);

/* Validated query parameters (the server checked them against the table).
 * api_q_str: NULL when absent. api_q_int/time/bool: def when absent. */
const char *api_q_str(api_req_t *r, const char *name);
int64_t api_q_int(api_req_t *r, const char *name, int64_t def);
int64_t api_q_time(api_req_t *r, const char *name, int64_t def); /* ns */
int api_q_bool(api_req_t *r, const char *name, int def);

/* ---- answers --------------------------------------------------------------------------- */
/* JSON answer; takes ownership of `body` (may be NULL for 204). */
void api_json(api_req_t *r, int status, cJSON *body);
/* JSON answer from text (copied). */
void api_json_text(api_req_t *r, int status, const char *json, size_t len);
/* Error answer {"error":{"code","message","field"}}; printf-style message. */
void api_error(api_req_t *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Any other body (HTML report, CSV); copied. */
void api_raw(api_req_t *r, int status, const char *ctype, const char *body, size_t len);
void api_header(api_req_t *r, const char *name, const char *value);
/* The standard code word of a status. */
const char *api_code_of(int status);

/* ---- the JSON body -------------------------------------------------------------------- */
/* Every body field reader returns 0 and leaves a 400 naming the field in the
 * response when the field is wrong, so a handler can `if (!ok) return;`.
 * api_body_only: refuses any member not in the NULL-terminated list. */
int api_body_only(api_req_t *r, const char *const *allowed);
int api_body_str(api_req_t *r, const char *field, int required, size_t maxlen,
                 const char **out);
int api_body_int(api_req_t *r, const char *field, int required, int64_t min, int64_t max,
                 int64_t *out);
int api_body_num(api_req_t *r, const char *field, int required, double min, double max,
                 double *out);
int api_body_bool(api_req_t *r, const char *field, int required, int *out);
/* A decimal (JSON number or string, at most 8 decimals) as fixed point x1e8. */
int api_body_dec(api_req_t *r, const char *field, int required, int64_t min, int64_t *out);
int api_body_enum(api_req_t *r, const char *field, int required, const char *values,
                  const char **out);
int api_body_time(api_req_t *r, const char *field, int required, int64_t *out_ns);
/* the member itself (any JSON type), NULL when absent */
cJSON *api_body_get(api_req_t *r, const char *field);

/* ---- PostgreSQL --------------------------------------------------------------------- */
/* A pooled connection for the request: read-only role (SET ROLE
 * qb_api_reader, default_transaction_read_only) or the read-write one for
 * the api schema. NULL with a 503 answered when the pool is exhausted for
 * too long or PostgreSQL is away. */
qb_store_t *api_pg_ro(api_req_t *r);
qb_store_t *api_pg_rw(api_req_t *r);
/* Run `sql` with text params on the read-only connection and answer:
 *   api_rows:  200 {"items":[row,...]} (+ "next_cursor" when `limit` rows
 *              came back and cursor_col is set: the value of that column
 *              of the last row, opaque to the client)
 *   api_row:   200 with the single row, or 404 `notfound` when none.
 * Rows become JSON objects by column type: numeric -> number (exact text),
 * int2/int4/int8/float -> number (int8 beyond 2^53 -> string), bool,
 * json/jsonb -> as is, timestamptz -> RFC 3339 UTC, NULL -> null, anything
 * else -> string. Returns 0 after answering an error. */
int api_rows(api_req_t *r, const char *sql, int n, const char *const *params, int64_t limit,
             const char *cursor_col);
int api_row(api_req_t *r, const char *sql, int n, const char *const *params,
            const char *notfound);
/* Query on the read-only connection; NULL after answering 503/500. */
PGresult *api_query(api_req_t *r, const char *sql, int n, const char *const *params);
PGresult *api_query_rw(api_req_t *r, const char *sql, int n, const char *const *params);
/* The same as a prepared statement `name` (prepared once per pooled
 * connection; PostgreSQL then reuses its plan): for hot routes. */
PGresult *api_query_named(api_req_t *r, const char *name, const char *sql, int n,
                          const char *const *params);
cJSON *api_pg_row_json(const PGresult *res, int row);
cJSON *api_pg_rows_json(const PGresult *res);

/* Cursors: opaque base64url text of the last row's sort key. */
void api_cursor_encode(const char *plain, char *out, size_t out_size);
int api_cursor_decode(api_req_t *r, const char *cursor, char *out, size_t out_size);

/* ---- Redis ------------------------------------------------------------------------------ */
qb_cache_t *api_redis(api_req_t *r); /* NULL when the pool is exhausted (no answer set) */
/* One command on the request's Redis connection (as qb_cache_command_argv),
 * with the pending rate-limit check of an API_R_LIMIT_WITH_REDIS route sent
 * in the same round trip. When the bucket refuses (or the limiter fails
 * closed) the answer is already set (429 / 503), *reply is NULL and
 * QB_ERR_RANGE is returned: the handler returns without answering. */
qb_err_t api_redis_cmd(api_req_t *r, int argc, const char **argv, redisReply **reply,
                       char *errstr, size_t errstr_size);

/* ---- Kafka ------------------------------------------------------------------------------- */
/* Publish and wait for the broker's acknowledgement (up to 5 s): a 202 the
 * handler gives afterwards means the request is durable on the bus. On
 * failure answers 503 and returns 0. The message's header is filled here
 * (event id, times, producer qb-api, trace id) when `hdr` is non-NULL. */
int api_send(api_req_t *r, const char *topic, const char *key, const ProtobufCMessage *m);
/* A control Command to cmd->target, the service's binary name ("qb-risk",
 * "qb-features", "qb-execution", "qb-notify", "qb-data") or "*" for all (a
 * service ignores commands for another target); fills header, command id
 * (returned in id_out, 37 bytes) and issued_by. */
struct Qb__V1__Command;
int api_send_command(api_req_t *r, struct Qb__V1__Command *cmd, char *id_out);

/* ---- shared state ------------------------------------------------------------------------ */
const api_cfg_t *api_cfg(const api_t *a);
const qb_jwt_keys_t *api_jwt_keys(const api_t *a);
int api_pbkdf2_iter(const api_t *a);
int64_t api_now_ns(void);
/* Write an admin action to api.audit (who, action, target, detail). */
void api_audit(api_req_t *r, const char *action, const char *target, cJSON *detail);

qb_producer_t *api_producer(api_t *a);
/* Give back what a request checked out and free its buffers. */
void api_req_release(api_req_t *r);
/* Forget every cached API key (after a revocation on this replica). */
void api_keycache_drop_all(api_t *a);

/* ---- OpenAPI -------------------------------------------------------------------------------- */
char *api_openapi_json(void); /* malloc'd document generated from the route table */

/* ---- the server -------------------------------------------------------------------------- */
api_t *api_new(const api_cfg_t *cfg, const char *pg_dsn, const char *redis_url, char *errstr,
               size_t errstr_size);
qb_err_t api_start(api_t *a, char *errstr, size_t errstr_size);
int api_port(const api_t *a);
void api_destroy(api_t *a);
/* bootstrap: create user admin with QB_API_ADMIN_PASSWORD when no user exists */
qb_err_t api_bootstrap(api_t *a, char *errstr, size_t errstr_size);

/* ---- SSE hub (api_sse.c) ----------------------------------------------------------------- */
typedef struct api_hub_s api_hub_t;
api_hub_t *api_hub_new(const api_cfg_t *cfg, char *errstr, size_t errstr_size);
void api_hub_stop(api_hub_t *h); /* streams end; readers stop */
void api_hub_destroy(api_hub_t *h);
api_hub_t *api_hub(api_t *a);
/* the MHD response of a stream request (api_http.c calls it for API_R_STREAM) */
void *api_sse_response(api_req_t *r, const char *topics, const char *symbols,
                       const char *last_event_id);

/* ---- handlers (one file per domain) ------------------------------------------------------- */
#define API_H(name) void name(api_req_t *r)
/* auth + admin: api_users.c */
API_H(h_login); API_H(h_refresh); API_H(h_logout); API_H(h_me);
API_H(h_users_list); API_H(h_users_create); API_H(h_users_update);
API_H(h_keys_list); API_H(h_keys_create); API_H(h_keys_revoke);
API_H(h_audit_list);
/* system: api_http.c */
API_H(h_openapi); API_H(h_health);
/* stream: api_sse.c */
API_H(h_stream);

#endif
