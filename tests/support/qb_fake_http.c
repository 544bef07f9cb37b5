/* qb_fake_http.c — see qb_fake_http.h.
 *
 * libmicrohttpd runs one internal polling thread. The URI log callback is
 * the first thing MHD calls for a request: it copies the raw request target
 * (with its still-encoded query) into the connection's request pointer; the
 * access handler moves it into the recorded request, calls the test's
 * handler and queues its response on that first call (bodies of requests
 * are not needed by any vendor fake and are ignored). Recorded requests are
 * individually allocated and indexed by a pointer array under a mutex, so
 * the pointers handed to the test stay put while the array grows. */
#include "qb_fake_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "qb_test.h"
#include "qb_test_assert.h"

struct qb_fake_http_s {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    qb_fake_handler_cb handler;
    void *opaque;
    pthread_mutex_t mu;
    qb_fake_req_t **reqs;
    size_t nreqs, cap;
};

static char *qb_fake_strdup(const char *s) {
    char *c = strdup(s ? s : "");
    if (!c) abort();
    return c;
}

static void qb_fake_req_free(qb_fake_req_t *r) {
    if (!r) return;
    free(r->method);
    free(r->path);
    free(r->target);
    for (size_t i = 0; i < r->nargs; i++) { free(r->args[i].name); free(r->args[i].value); }
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r);
}

static void *qb_fake_uri_log(void *cls, const char *uri, struct MHD_Connection *con) {
    (void)cls;
    (void)con;
    return qb_fake_strdup(uri);
}

static void qb_fake_completed(void *cls, struct MHD_Connection *con, void **req_cls,
                              enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)con;
    (void)toe;
    free(*req_cls);
    *req_cls = NULL;
}

static enum MHD_Result qb_fake_collect_arg(void *cls, enum MHD_ValueKind kind,
                                           const char *key, const char *value) {
    (void)kind;
    qb_fake_req_t *r = cls;
    if (r->nargs < QB_FAKE_MAX_KV) {
        r->args[r->nargs].name = qb_fake_strdup(key);
        r->args[r->nargs].value = qb_fake_strdup(value);
        r->nargs++;
    }
    return MHD_YES;
}

static enum MHD_Result qb_fake_collect_header(void *cls, enum MHD_ValueKind kind,
                                              const char *key, const char *value) {
    (void)kind;
    qb_fake_req_t *r = cls;
    if (r->nheaders < QB_FAKE_MAX_KV) {
        r->headers[r->nheaders].name = qb_fake_strdup(key);
        r->headers[r->nheaders].value = qb_fake_strdup(value);
        r->nheaders++;
    }
    return MHD_YES;
}

static enum MHD_Result qb_fake_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls) {
    (void)version;
    (void)upload_data;
    qb_fake_http_t *srv = cls;
    if (*req_cls == NULL) { /* a later call for a request already answered */
        *upload_data_size = 0;
        return MHD_YES;
    }
    qb_fake_req_t *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->method = qb_fake_strdup(method);
    r->path = qb_fake_strdup(url);
    r->target = *req_cls; /* ownership moves to the record */
    *req_cls = NULL;
    r->at_ms = qb_test_now_ms();
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, qb_fake_collect_arg, r);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, qb_fake_collect_header, r);
    pthread_mutex_lock(&srv->mu);
    if (srv->nreqs == srv->cap) {
        srv->cap = srv->cap ? srv->cap * 2 : 16;
        srv->reqs = realloc(srv->reqs, srv->cap * sizeof(*srv->reqs));
        if (!srv->reqs) abort();
    }
    r->index = srv->nreqs;
    srv->reqs[srv->nreqs++] = r;
    pthread_mutex_unlock(&srv->mu);

    qb_fake_resp_t resp;
    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    if (srv->handler) srv->handler(srv->opaque, r, &resp);
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        resp.body_len, resp.body ? resp.body : (void *)"", MHD_RESPMEM_MUST_COPY);
    free(resp.body);
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, "Content-Type",
                            resp.content_type ? resp.content_type : "application/json");
    for (size_t i = 0; i < resp.nheaders; i++)
        MHD_add_response_header(mr, resp.headers[i].name, resp.headers[i].value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, mr);
    MHD_destroy_response(mr);
    return ret;
}

qb_fake_http_t *qb_fake_http_start(qb_fake_handler_cb handler, void *opaque) {
    qb_fake_http_t *srv = calloc(1, sizeof(*srv));
    assert_non_null(srv);
    srv->handler = handler;
    srv->opaque = opaque;
    pthread_mutex_init(&srv->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0; /* the kernel picks a free one */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, qb_fake_handle, srv,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_URI_LOG_CALLBACK, qb_fake_uri_log, srv,
                              MHD_OPTION_NOTIFY_COMPLETED, qb_fake_completed, srv,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_END);
    if (!srv->d) {
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        fail_msg("qb_fake_http_start: MHD_start_daemon failed");
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    srv->port = info->port;
    snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%d", srv->port);
    return srv;
}

void qb_fake_http_clear(qb_fake_http_t *srv) {
    if (!srv) return;
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < srv->nreqs; i++) qb_fake_req_free(srv->reqs[i]);
    srv->nreqs = 0;
    pthread_mutex_unlock(&srv->mu);
}

void qb_fake_http_stop(qb_fake_http_t *srv) {
    if (!srv) return;
    MHD_stop_daemon(srv->d);
    qb_fake_http_clear(srv);
    free(srv->reqs);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

int qb_fake_http_port(const qb_fake_http_t *srv) { return srv ? srv->port : 0; }
const char *qb_fake_http_url(const qb_fake_http_t *srv) { return srv ? srv->url : ""; }

size_t qb_fake_http_count(qb_fake_http_t *srv) {
    pthread_mutex_lock(&srv->mu);
    size_t n = srv->nreqs;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

const qb_fake_req_t *qb_fake_http_request(qb_fake_http_t *srv, size_t i) {
    pthread_mutex_lock(&srv->mu);
    const qb_fake_req_t *r = i < srv->nreqs ? srv->reqs[i] : NULL;
    pthread_mutex_unlock(&srv->mu);
    return r;
}

const char *qb_fake_req_arg(const qb_fake_req_t *req, const char *name) {
    for (size_t i = 0; req && i < req->nargs; i++)
        if (strcmp(req->args[i].name, name) == 0) return req->args[i].value;
    return NULL;
}

const char *qb_fake_req_header(const qb_fake_req_t *req, const char *name) {
    for (size_t i = 0; req && i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

void qb_fake_resp_printf(qb_fake_resp_t *resp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) abort();
    char *nb = realloc(resp->body, resp->body_len + (size_t)n + 1);
    if (!nb) abort();
    va_start(ap, fmt);
    vsnprintf(nb + resp->body_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp->body = nb;
    resp->body_len += (size_t)n;
}

void qb_fake_resp_header(qb_fake_resp_t *resp, const char *name, const char *value) {
    if (resp->nheaders >= QB_FAKE_MAX_RESP_HEADERS) abort();
    snprintf(resp->headers[resp->nheaders].name, sizeof(resp->headers[0].name), "%s", name);
    snprintf(resp->headers[resp->nheaders].value, sizeof(resp->headers[0].value), "%s", value);
    resp->nheaders++;
}
