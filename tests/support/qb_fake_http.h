/* qb_fake_http.h — a tiny HTTP server for tests of vendor adapters.
 *
 * Why: vendor adapters are tested against local servers that speak the
 * vendor's documented request and response formats (pagination, 429, 500,
 * malformed bodies) — never the real vendor. This one runs on libmicrohttpd
 * inside the test process, on one thread of its own, on 127.0.0.1 and a
 * port the kernel picks (so parallel tests never collide).
 *
 * The test registers one handler. For every request the server records a
 * qb_fake_req_t (method, path, raw request target, decoded query args,
 * headers, arrival time, index), calls the handler on the server thread,
 * and sends what the handler put into the qb_fake_resp_t (status 200,
 * "application/json" and an empty body unless set). Handlers run one at a
 * time (one server thread), so a handler may keep plain state in its
 * opaque pointer as long as the test only reads it after the calls it
 * waits for have returned.
 *
 * Ownership: qb_fake_http_start returns a server freed by qb_fake_http_stop
 * (NULL is a no-op), which also frees every recorded request. Pointers from
 * qb_fake_http_request stay valid until stop or qb_fake_http_clear. */
#ifndef QB_FAKE_HTTP_H
#define QB_FAKE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define QB_FAKE_MAX_KV 48

typedef struct qb_fake_kv_s {
    char *name;
    char *value; /* "" when the arg had no value */
} qb_fake_kv_t;

typedef struct qb_fake_req_s {
    size_t index;        /* 0 for the first request the server saw */
    char *method;        /* "GET" */
    char *path;          /* decoded path, without the query: "/v2/stocks/AAPL/bars" */
    char *target;        /* raw request target as sent: "/v2/...?a=1%3A2" */
    qb_fake_kv_t args[QB_FAKE_MAX_KV];    /* decoded query args, in order */
    size_t nargs;
    qb_fake_kv_t headers[QB_FAKE_MAX_KV]; /* request headers, in order */
    size_t nheaders;
    int64_t at_ms;       /* qb_test_now_ms() on arrival */
} qb_fake_req_t;

#define QB_FAKE_MAX_RESP_HEADERS 8

typedef struct qb_fake_resp_s {
    int status;          /* default 200 */
    const char *content_type; /* default "application/json"; copied by the server */
    char *body;          /* malloc'd (qb_fake_resp_printf); freed by the server */
    size_t body_len;
    struct { char name[64]; char value[256]; } headers[QB_FAKE_MAX_RESP_HEADERS];
    size_t nheaders;
} qb_fake_resp_t;

typedef void (*qb_fake_handler_cb)(void *opaque, const qb_fake_req_t *req,
                                   qb_fake_resp_t *resp);

typedef struct qb_fake_http_s qb_fake_http_t;

/* Start on 127.0.0.1, a free port. Fails the running cmocka test on error. */
qb_fake_http_t *qb_fake_http_start(qb_fake_handler_cb handler, void *opaque);
void qb_fake_http_stop(qb_fake_http_t *srv);

int qb_fake_http_port(const qb_fake_http_t *srv);
/* "http://127.0.0.1:<port>" (owned by the server). */
const char *qb_fake_http_url(const qb_fake_http_t *srv);

/* Requests recorded so far, and the i-th (NULL when i >= count). */
size_t qb_fake_http_count(qb_fake_http_t *srv);
const qb_fake_req_t *qb_fake_http_request(qb_fake_http_t *srv, size_t i);
/* Forget the recorded requests (indexes restart at 0). */
void qb_fake_http_clear(qb_fake_http_t *srv);

/* Decoded query arg / header (case-insensitive name) of a request, or NULL. */
const char *qb_fake_req_arg(const qb_fake_req_t *req, const char *name);
const char *qb_fake_req_header(const qb_fake_req_t *req, const char *name);

/* Response helpers for handlers. printf appends to the body. */
void qb_fake_resp_printf(qb_fake_resp_t *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void qb_fake_resp_header(qb_fake_resp_t *resp, const char *name, const char *value);

#endif
