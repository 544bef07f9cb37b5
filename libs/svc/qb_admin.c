/* qb_admin.c — admin endpoints over libmicrohttpd; see qb_admin.h.
 *
 *   GET /healthz  -> 200 {"status":"ok","service":...}
 *   GET /readyz   -> 200/503 with each dependency's state (qb_svc probes)
 *   GET /metrics  -> 200 Prometheus text 0.0.4: the qb_metrics registry,
 *                    then process_* metrics read from /proc and getrusage
 * Anything else is 404 (or 405 for a method other than GET/HEAD) with a JSON
 * error body. */
#include "svc/qb_admin.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "svc/qb_svc.h"

struct qb_admin_s {
    struct MHD_Daemon *d;
    struct qb_svc_s *svc;
    int port;
    double start_time;
    qb_counter_t *requests;
};

static enum MHD_Result qb_admin_reply(struct MHD_Connection *conn, unsigned status,
                                      const char *ctype, char *body /* freed */) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        body ? strlen(body) : 0, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                 : MHD_RESPMEM_PERSISTENT);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char *qb_admin_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *qb_admin_strdupf(const char *fmt, ...) {
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* Append process_* metrics (names per the Prometheus client conventions). */
static char *qb_admin_metrics_body(qb_admin_t *a) {
    char *reg = qb_metrics_render();
    if (!reg) return NULL;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    long rss_pages = 0, vsz_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &vsz_pages, &rss_pages) != 2) rss_pages = vsz_pages = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    char *out = qb_admin_strdupf(
        "%s"
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %ld\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
        reg, cpu, rss_pages * page, vsz_pages * page, a->start_time);
    free(reg);
    return out;
}

static enum MHD_Result qb_admin_handle(void *cls, struct MHD_Connection *conn,
                                       const char *url, const char *method,
                                       const char *version, const char *upload_data,
                                       size_t *upload_data_size, void **con_cls) {
    qb_admin_t *a = cls;
    (void)version; (void)upload_data; (void)con_cls;
    if (*upload_data_size) { *upload_data_size = 0; return MHD_YES; }
    qb_counter_inc(a->requests);
    int st = 0;
    char *sbody = NULL;
    if (qb_svc_admin_dispatch(a->svc, method, url, &st, &sbody))
        return qb_admin_reply(conn, (unsigned)st, "application/json", sbody);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return qb_admin_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                              qb_admin_strdupf("{\"error\":{\"code\":\"method_not_allowed\","
                                               "\"message\":\"only GET and HEAD\"}}\n"));
    if (strcmp(url, "/healthz") == 0)
        return qb_admin_reply(conn, MHD_HTTP_OK, "application/json",
                              qb_admin_strdupf("{\"status\":\"ok\",\"service\":\"%s\"}\n",
                                               qb_svc_name(a->svc)));
    if (strcmp(url, "/readyz") == 0) {
        char *body = NULL;
        int ready = qb_svc_ready_json(a->svc, &body);
        return qb_admin_reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                              "application/json", body);
    }
    if (strcmp(url, "/metrics") == 0) {
        char *body = qb_admin_metrics_body(a);
        if (!body)
            return qb_admin_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                                  NULL);
        return qb_admin_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                              body);
    }
    char path[128] = "";
    size_t pos = 0;
    qb_json_escape_append(path, sizeof(path), &pos, url);
    return qb_admin_reply(conn, MHD_HTTP_NOT_FOUND, "application/json",
                          qb_admin_strdupf("{\"error\":{\"code\":\"not_found\",\"message\":"
                                           "\"no such endpoint: %s (try /healthz, /readyz, "
                                           "/metrics)\"}}\n", path));
}

static void qb_admin_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    QB_WARN("admin http: %s", msg);
}

qb_admin_t *qb_admin_start(struct qb_svc_s *svc, const char *bind_addr, int port,
                           char *errstr, size_t errstr_size) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                   "QB_ADMIN_BIND=%s: not an IPv4 address", bind_addr);
        return NULL;
    }
    qb_admin_t *a = calloc(1, sizeof(*a));
    if (!a) { qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory"); return NULL; }
    a->svc = svc;
    a->start_time = (double)time(NULL);
    a->requests = qb_metrics_counter("qb_admin_requests_total",
                                     "HTTP requests served by the admin port", NULL);
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, qb_admin_handle, a,
                            MHD_OPTION_EXTERNAL_LOGGER, qb_admin_mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    if (!a->d) {
        free(a);
        qb_err_set(errstr, errstr_size, QB_ERR_IO,
                   "cannot listen on %s:%d (QB_ADMIN_PORT in use?)", bind_addr, port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : port;
    return a;
}

int qb_admin_port(const qb_admin_t *a) { return a ? a->port : 0; }

void qb_admin_stop(qb_admin_t *a) {
    if (!a) return;
    MHD_stop_daemon(a->d);
    free(a);
}
