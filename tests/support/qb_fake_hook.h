/* qb_fake_hook.h — an HTTP receiver for tests of outgoing webhooks (POST
 * bodies kept), in the test process.
 *
 * Why a second fake server: tests/support/qb_fake_http answers GETs of
 * vendor APIs and does not keep request bodies; a webhook test needs the
 * body (to check an HMAC signature over it) and to answer with chosen
 * statuses, Retry-After or after a delay (a slow or failing endpoint).
 *
 * Runs libmicrohttpd on 127.0.0.1, a port the kernel picks, one server
 * thread: handlers run one at a time. For every complete request the
 * server records a qb_hook_req_t (method, path, headers, body, the status it
 * answered), then calls the handler, which fills a qb_hook_resp_t (status
 * 200 and "{}" unless set; delay_ms sleeps before answering).
 *
 * Ownership: qb_hook_start returns a server freed by qb_hook_stop (NULL is
 * a no-op), which frees every record. Records from qb_hook_request stay
 * valid until stop. */
#ifndef QB_FAKE_HOOK_H
#define QB_FAKE_HOOK_H

#include <stddef.h>
#include <stdint.h>

#define QB_HOOK_MAX_HEADERS 40

typedef struct qb_hook_req_s {
    size_t index;
    char *method;
    char *path;
    char *body; /* NUL-terminated */
    size_t body_len;
    struct { char *name, *value; } headers[QB_HOOK_MAX_HEADERS];
    size_t nheaders;
    int status; /* what the server answered */
    int64_t at_ms;
} qb_hook_req_t;

typedef struct qb_hook_resp_s {
    int status;            /* default 200 */
    char body[1024];       /* default "{}" */
    char retry_after[32];  /* Retry-After header when non-empty */
    int delay_ms;          /* sleep before answering */
} qb_hook_resp_t;

typedef void (*qb_hook_cb)(void *opaque, const qb_hook_req_t *req, qb_hook_resp_t *resp);

typedef struct qb_hook_s qb_hook_t;

/* Fails the running cmocka test on error. */
qb_hook_t *qb_hook_start(qb_hook_cb handler, void *opaque);
void qb_hook_stop(qb_hook_t *h);
/* "http://127.0.0.1:<port>" (owned by the server). */
const char *qb_hook_url(const qb_hook_t *h);
size_t qb_hook_count(qb_hook_t *h);
/* The i-th request (NULL when i >= count). */
const qb_hook_req_t *qb_hook_request(qb_hook_t *h, size_t i);
/* Header value (case-insensitive), or NULL. */
const char *qb_hook_header(const qb_hook_req_t *r, const char *name);

#endif
