/* qb_fake_hook.c — see qb_fake_hook.h. Owns the MHD daemon and the list of
 * recorded requests (behind a mutex: the test thread reads while the server
 * thread appends). */
#include "qb_fake_hook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "qb_test.h"

struct qb_hook_s {
    struct MHD_Daemon *d;
    qb_hook_cb handler;
    void *opaque;
    char url[64];
    pthread_mutex_t mu;
    qb_hook_req_t **reqs;
    size_t n, cap;
};

static char *qb_hook_dup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) abort();
    return d;
}

static enum MHD_Result qb_hook_collect(void *cls, enum MHD_ValueKind kind, const char *k,
                                       const char *v) {
    (void)kind;
    qb_hook_req_t *r = cls;
    if (r->nheaders < QB_HOOK_MAX_HEADERS) {
        r->headers[r->nheaders].name = qb_hook_dup(k);
        r->headers[r->nheaders].value = qb_hook_dup(v);
        r->nheaders++;
    }
    return MHD_YES;
}

static void qb_hook_free_req(qb_hook_req_t *r) {
    if (!r) return;
    free(r->method);
    free(r->path);
    free(r->body);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r);
}

static enum MHD_Result qb_hook_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls) {
    (void)version;
    qb_hook_t *h = cls;
    qb_hook_req_t *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) abort();
        r->method = qb_hook_dup(method);
        r->path = qb_hook_dup(url);
        r->body = qb_hook_dup("");
        MHD_get_connection_values(conn, MHD_HEADER_KIND, qb_hook_collect, r);
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        char *nb = realloc(r->body, r->body_len + *upload_data_size + 1);
        if (!nb) abort();
        memcpy(nb + r->body_len, upload_data, *upload_data_size);
        r->body = nb;
        r->body_len += *upload_data_size;
        r->body[r->body_len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    r->at_ms = qb_test_now_ms();
    qb_hook_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    snprintf(resp.body, sizeof resp.body, "{}");
    if (h->handler) h->handler(h->opaque, r, &resp);
    if (resp.delay_ms > 0) usleep((useconds_t)resp.delay_ms * 1000);
    r->status = resp.status;
    *req_cls = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 32;
        h->reqs = realloc(h->reqs, h->cap * sizeof *h->reqs);
        if (!h->reqs) abort();
    }
    r->index = h->n;
    h->reqs[h->n++] = r;
    pthread_mutex_unlock(&h->mu);
    struct MHD_Response *mr = MHD_create_response_from_buffer(strlen(resp.body), resp.body,
                                                              MHD_RESPMEM_MUST_COPY);
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", "application/json");
    if (resp.retry_after[0]) MHD_add_response_header(mr, "Retry-After", resp.retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void qb_hook_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    if (req_cls && *req_cls) { /* aborted before it was answered */
        qb_hook_free_req(*req_cls);
        *req_cls = NULL;
    }
}

qb_hook_t *qb_hook_start(qb_hook_cb handler, void *opaque) {
    qb_hook_t *h = calloc(1, sizeof *h);
    if (!h) fail_msg("qb_hook_start: out of memory");
    h->handler = handler;
    h->opaque = opaque;
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
                            NULL, NULL, qb_hook_handle, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, qb_hook_completed,
                            h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!h->d) fail_msg("qb_hook_start: MHD_start_daemon failed");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%u", (unsigned)info->port);
    return h;
}

void qb_hook_stop(qb_hook_t *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    for (size_t i = 0; i < h->n; i++) qb_hook_free_req(h->reqs[i]);
    free(h->reqs);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const char *qb_hook_url(const qb_hook_t *h) { return h->url; }

size_t qb_hook_count(qb_hook_t *h) {
    pthread_mutex_lock(&h->mu);
    size_t n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

const qb_hook_req_t *qb_hook_request(qb_hook_t *h, size_t i) {
    pthread_mutex_lock(&h->mu);
    const qb_hook_req_t *r = i < h->n ? h->reqs[i] : NULL;
    pthread_mutex_unlock(&h->mu);
    return r;
}

const char *qb_hook_header(const qb_hook_req_t *r, const char *name) {
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}
