/* qb_svc.h — the skeleton every Quantbus service binary is built on.
 *
 * A service's main.c is short:
 *
 *     static const qb_cfg_entry_t my_table[] = { ... , {0} };
 *     static my_cfg_t cfg;
 *     int main(int argc, char **argv) {
 *         int rc;
 *         qb_svc_t *svc = qb_svc_new(&(qb_svc_def_t){
 *             .name = "qb-data", .about = "...", .admin_port = 9101,
 *             .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG,
 *             .table = my_table, .cfg = &cfg}, argc, argv, &rc);
 *         if (!svc) return rc;               // --help, or bad config
 *         ... wire bus, store, modules ...
 *         while (qb_svc_running(svc)) ...;   // or qb_consumer_run(c, qb_svc_flag(svc))
 *         qb_svc_destroy(svc);
 *     }
 *
 * qb_svc_new: parses --help / --version, loads the common config table
 * (QB_KAFKA_BROKERS, QB_PG_DSN, QB_REDIS_URL, QB_ADMIN_PORT, QB_LOG_LEVEL
 * ...) plus the service's own table, starts JSON logging, installs SIGTERM /
 * SIGINT handlers that only flip the running flag, and starts the admin HTTP
 * server (libmicrohttpd, own thread):
 *   GET /healthz   200 {"status":"ok"} while the process is alive
 *   GET /readyz    200 when every dependency the service needs answers,
 *                  else 503; the JSON body names each dependency and why it
 *                  is missing: {"ready":false,"checks":{"postgres":"...",...}}
 *   GET /metrics   Prometheus text format 0.0.4 (qb_metrics registry +
 *                  process metrics)
 * Dependency probes run every QB_PROBE_INTERVAL_MS on a background thread,
 * with their own connections, so /readyz never blocks on a dead dependency.
 *
 * Ownership: the svc owns the admin server, the probe thread and their
 * connections; qb_svc_destroy() stops and frees all of them. The service's
 * cfg struct stays the caller's. */
#ifndef QB_SVC_H
#define QB_SVC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_config.h"
#include "core/qb_err.h"
#include "store/qb_store.h"

#define QB_VERSION "0.1.0"

#define QB_SVC_NEEDS_BUS 0x1
#define QB_SVC_NEEDS_PG 0x2
#define QB_SVC_NEEDS_REDIS 0x4

/* Settings every service shares (the "common" config section). */
typedef struct qb_svc_common_s {
    const char *kafka_brokers; /* QB_KAFKA_BROKERS */
    const char *pg_dsn;        /* QB_PG_DSN */
    const char *redis_url;     /* QB_REDIS_URL */
    const char *admin_bind;    /* QB_ADMIN_BIND */
    int64_t admin_port;        /* QB_ADMIN_PORT; 0 = any free port */
    const char *log_level;     /* QB_LOG_LEVEL */
    const char *sql_dir;       /* QB_SQL_DIR */
    int64_t probe_interval_ms; /* QB_PROBE_INTERVAL_MS */
    int64_t shutdown_timeout_ms; /* QB_SHUTDOWN_TIMEOUT_MS */
} qb_svc_common_t;

typedef struct qb_svc_def_s {
    const char *name;          /* binary / service name, e.g. "qb-risk" */
    const char *about;         /* one paragraph for --help */
    int admin_port;            /* default QB_ADMIN_PORT (0 = any) */
    int needs;                 /* QB_SVC_NEEDS_* : probed by /readyz */
    const qb_cfg_entry_t *table; /* the service's own config table or NULL */
    void *cfg;                 /* the struct that table fills */
} qb_svc_def_t;

typedef struct qb_svc_s qb_svc_t;

/* Start the skeleton. Returns NULL when the process should exit with
 * *exit_code: 0 after --help/--version, 2 on a bad configuration (the
 * message naming the variable is printed on stderr), 1 when the admin port
 * cannot be bound. */
qb_svc_t *qb_svc_new(const qb_svc_def_t *def, int argc, char **argv,
                     int *exit_code);

/* Stop the admin server and probes, free everything. NULL is a no-op. */
void qb_svc_destroy(qb_svc_t *svc);

const qb_svc_common_t *qb_svc_common(const qb_svc_t *svc);
const char *qb_svc_name(const qb_svc_t *svc);

/* 1 until SIGTERM/SIGINT (or qb_svc_stop). The flag pointer is for loops
 * such as qb_consumer_run(c, qb_svc_flag(svc)). */
int qb_svc_running(const qb_svc_t *svc);
volatile sig_atomic_t *qb_svc_flag(qb_svc_t *svc);
void qb_svc_stop(qb_svc_t *svc);

/* The port the admin server listens on (useful when QB_ADMIN_PORT=0). */
int qb_svc_admin_port(const qb_svc_t *svc);

/* An extra readiness check, run on the probe thread. Returns QB_OK when the
 * thing it checks is usable; else fills errstr with why. */
typedef qb_err_t (*qb_svc_probe_cb)(void *opaque, char *errstr, size_t errstr_size);
void qb_svc_add_probe(qb_svc_t *svc, const char *name, qb_svc_probe_cb cb,
                      void *opaque);

/* An extra admin endpoint (e.g. qb-bus's broker controls): requests whose
 * method is `method` and whose path starts with `prefix` go to cb, which
 * sets *status and returns a malloc'd JSON body (NULL: empty). The request
 * body is ignored. At most 8 per service; register before serving traffic
 * (the admin server reads the table without a lock). cb runs on the admin
 * server's thread. */
typedef char *(*qb_svc_admin_cb)(void *opaque, const char *method, const char *url,
                                 int *status);
qb_err_t qb_svc_add_admin_route(qb_svc_t *svc, const char *method, const char *prefix,
                                qb_svc_admin_cb cb, void *opaque);

/* The migrations step every service with a database does at start: adds the
 * "migrations" readiness probe (not ready until they are applied) and, when
 * `apply` is set, applies the migrations of QB_SQL_DIR through `store`,
 * retrying every 500 ms while PostgreSQL is away (logged once) until they
 * are applied or the service is told to stop. With `apply` 0 the probe is
 * ready at once (another process migrates). Returns QB_OK, or the
 * non-retriable error of a broken migration (logged). */
qb_err_t qb_svc_migrate(qb_svc_t *svc, qb_store_t *store, int apply);

/* Run every probe now (normally the probe thread does it). Returns 1 when
 * all pass. */
int qb_svc_check_ready(qb_svc_t *svc);

#endif
