/* qb_svc.c — service skeleton: config, logging, signals, probes; see
 * qb_svc.h. The admin HTTP server lives in qb_admin.c.
 *
 * Threads: the service's own threads; the admin server's thread
 * (libmicrohttpd); the probe thread here, which owns its own PostgreSQL,
 * Redis and Kafka connections so that a probe never touches a handle the
 * service uses. Probe results are strings guarded by `lock`. */
#include "svc/qb_svc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"
#include "svc/qb_admin.h"

#define QB_SVC_MAX_PROBES 16

typedef struct {
    char name[32];
    qb_svc_probe_cb cb;
    void *opaque;
    int ok;           /* last result */
    int ran;          /* has run at least once */
    char why[256];    /* last failure reason */
} qb_svc_probe_t;

struct qb_svc_s {
    qb_svc_def_t def;
    qb_svc_common_t common;
    qb_admin_t *admin;

    pthread_mutex_t lock;      /* guards probes[] results, stopping */
    pthread_mutex_t run_lock;  /* one probe run at a time: the probe
                                  connections are not thread-safe */
    pthread_cond_t cond;
    pthread_t probe_thread;
    int probe_thread_started;
    int stopping;
    qb_svc_probe_t probes[QB_SVC_MAX_PROBES];
    int nprobes;

    qb_store_t *probe_store; /* probe thread's own connections */
    qb_cache_t *probe_cache;
    qb_gauge_t *ready_gauge;
    volatile int migrated; /* qb_svc_migrate done (or not asked for) */
    struct {
        const char *method, *prefix;
        qb_svc_admin_cb cb;
        void *opaque;
    } routes[8];
    int nroutes; /* published with a release store after the entry is written */
};

/* Signal handlers may only flip this flag (one service per process). */
static volatile sig_atomic_t qb_svc_run_flag = 1;

static void qb_svc_on_signal(int sig) {
    (void)sig;
    qb_svc_run_flag = 0;
}

#define QB_COMMON_OFF(f) offsetof(qb_svc_common_t, f)
static const qb_cfg_entry_t qb_svc_common_table[] = {
    {"kafka.brokers", "QB_KAFKA_BROKERS", QB_CFG_STRING, "127.0.0.1:9092", 1, 4096,
     QB_COMMON_OFF(kafka_brokers), 0,
     "Kafka bootstrap servers (host:port,...); `make run` sets it to qb-bus's list"},
    {"pg.dsn", "QB_PG_DSN", QB_CFG_STRING, "host=127.0.0.1 port=5432 user=postgres dbname=quantbus",
     0, 4096, QB_COMMON_OFF(pg_dsn), QB_CFG_SECRET,
     "PostgreSQL connection string (libpq key=value or postgresql:// URI)"},
    {"redis.url", "QB_REDIS_URL", QB_CFG_STRING, "redis://127.0.0.1:6379/0", 0, 4096,
     QB_COMMON_OFF(redis_url), QB_CFG_SECRET, "Redis URL redis://[:password@]host:port[/db]"},
    {"admin.bind", "QB_ADMIN_BIND", QB_CFG_STRING, "0.0.0.0", 1, 64,
     QB_COMMON_OFF(admin_bind), 0, "address the admin HTTP server binds to"},
    {"admin.port", "QB_ADMIN_PORT", QB_CFG_INT, NULL /* per service */, 0, 65535,
     QB_COMMON_OFF(admin_port), 0, "admin HTTP port (/healthz, /readyz, /metrics); 0 = any free port"},
    {"log.level", "QB_LOG_LEVEL", QB_CFG_STRING, "info", 1, 16, QB_COMMON_OFF(log_level), 0,
     "log level: debug, info, warn, error, off"},
    {"sql.dir", "QB_SQL_DIR", QB_CFG_STRING, "sql", 1, 4096, QB_COMMON_OFF(sql_dir), 0,
     "directory holding the numbered SQL migrations"},
    {"probe.interval_ms", "QB_PROBE_INTERVAL_MS", QB_CFG_INT, "2000", 100, 600000,
     QB_COMMON_OFF(probe_interval_ms), 0, "how often /readyz dependency probes run"},
    {"shutdown.timeout_ms", "QB_SHUTDOWN_TIMEOUT_MS", QB_CFG_INT, "10000", 100, 600000,
     QB_COMMON_OFF(shutdown_timeout_ms), 0, "time allowed to finish in-flight work on SIGTERM"},
    {0},
};

static int qb_svc_argv_has(int argc, char **argv, const char *a, const char *b) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], a) == 0 || (b && strcmp(argv[i], b) == 0)) return 1;
    return 0;
}

/* ---- built-in probes --------------------------------------------------- */

static qb_err_t qb_svc_probe_bus(void *opaque, char *errstr, size_t len) {
    qb_svc_t *svc = opaque;
    return qb_bus_ping(svc->common.kafka_brokers, 1000, errstr, len);
}

static qb_err_t qb_svc_probe_pg(void *opaque, char *errstr, size_t len) {
    qb_svc_t *svc = opaque;
    if (!svc->probe_store) {
        svc->probe_store = qb_store_new(svc->common.pg_dsn, errstr, len);
        if (!svc->probe_store) return QB_ERR_CONFIG;
    }
    return qb_store_ping(svc->probe_store, errstr, len);
}

static qb_err_t qb_svc_probe_redis(void *opaque, char *errstr, size_t len) {
    qb_svc_t *svc = opaque;
    if (!svc->probe_cache) {
        svc->probe_cache = qb_cache_new(svc->common.redis_url, errstr, len);
        if (!svc->probe_cache) return QB_ERR_CONFIG;
    }
    return qb_cache_ping(svc->probe_cache, errstr, len);
}

/* ---- probes ------------------------------------------------------------ */

void qb_svc_add_probe(qb_svc_t *svc, const char *name, qb_svc_probe_cb cb,
                      void *opaque) {
    pthread_mutex_lock(&svc->lock);
    QB_ASSERT(svc->nprobes < QB_SVC_MAX_PROBES);
    qb_svc_probe_t *p = &svc->probes[svc->nprobes++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->cb = cb;
    p->opaque = opaque;
    snprintf(p->why, sizeof(p->why), "not checked yet");
    pthread_mutex_unlock(&svc->lock);
}

int qb_svc_check_ready(qb_svc_t *svc) {
    int all = 1, n;
    pthread_mutex_lock(&svc->run_lock);
    pthread_mutex_lock(&svc->lock);
    n = svc->nprobes;
    pthread_mutex_unlock(&svc->lock);
    for (int i = 0; i < n; i++) {
        char why[256] = "";
        /* Probes run unlocked: they may block up to their own time-out. */
        qb_err_t err = svc->probes[i].cb(svc->probes[i].opaque, why, sizeof(why));
        pthread_mutex_lock(&svc->lock);
        qb_svc_probe_t *p = &svc->probes[i];
        if (err == QB_OK) {
            if (p->ran && !p->ok) QB_INFO("dependency %s is back", p->name);
            p->ok = 1;
            p->why[0] = '\0';
        } else {
            if (!p->ran || p->ok) QB_WARN("dependency %s unavailable: %s", p->name, why);
            p->ok = 0;
            snprintf(p->why, sizeof(p->why), "%s", why[0] ? why : qb_err_str(err));
            all = 0;
        }
        p->ran = 1;
        pthread_mutex_unlock(&svc->lock);
    }
    qb_gauge_set(svc->ready_gauge, all ? 1.0 : 0.0);
    pthread_mutex_unlock(&svc->run_lock);
    return all;
}

qb_err_t qb_svc_add_admin_route(qb_svc_t *svc, const char *method, const char *prefix,
                                qb_svc_admin_cb cb, void *opaque) {
    if (!svc || !method || !prefix || !cb) return QB_ERR_INVALID;
    int n = svc->nroutes;
    if (n >= (int)(sizeof svc->routes / sizeof svc->routes[0])) return QB_ERR_RANGE;
    svc->routes[n].method = method;
    svc->routes[n].prefix = prefix;
    svc->routes[n].cb = cb;
    svc->routes[n].opaque = opaque;
    __atomic_store_n(&svc->nroutes, n + 1, __ATOMIC_RELEASE);
    return QB_OK;
}

/* An admin request for a route added with qb_svc_add_admin_route: 1 when
 * one took it (*status, *body set). */
int qb_svc_admin_dispatch(qb_svc_t *svc, const char *method, const char *url, int *status,
                          char **body);
int qb_svc_admin_dispatch(qb_svc_t *svc, const char *method, const char *url, int *status,
                          char **body) {
    int n = __atomic_load_n(&svc->nroutes, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) {
        if (strcmp(svc->routes[i].method, method) ||
            strncmp(url, svc->routes[i].prefix, strlen(svc->routes[i].prefix)))
            continue;
        *status = 500;
        *body = svc->routes[i].cb(svc->routes[i].opaque, method, url, status);
        return 1;
    }
    return 0;
}

/* JSON body for /readyz; returns 1 when ready. Caller frees *body. */
int qb_svc_ready_json(qb_svc_t *svc, char **body);
int qb_svc_ready_json(qb_svc_t *svc, char **body) {
    size_t cap = 256 + (size_t)QB_SVC_MAX_PROBES * 600, pos = 0;
    char *b = malloc(cap);
    int ready = 1;
    if (!b) { *body = NULL; return 0; }
    pthread_mutex_lock(&svc->lock);
    for (int i = 0; i < svc->nprobes; i++)
        if (!svc->probes[i].ok) ready = 0;
    pos += (size_t)snprintf(b, cap, "{\"ready\":%s,\"service\":\"%s\",\"checks\":{",
                            ready ? "true" : "false", svc->def.name);
    for (int i = 0; i < svc->nprobes; i++) {
        qb_svc_probe_t *p = &svc->probes[i];
        pos += (size_t)snprintf(b + pos, cap - pos, "%s\"%s\":\"", i ? "," : "", p->name);
        qb_json_escape_append(b, cap, &pos, p->ok ? "ok" : p->why);
        pos += (size_t)snprintf(b + pos, cap - pos, "\"");
    }
    snprintf(b + pos, cap - pos, "}}\n");
    pthread_mutex_unlock(&svc->lock);
    *body = b;
    return ready;
}

static void *qb_svc_probe_main(void *arg) {
    qb_svc_t *svc = arg;
    qb_log_init(svc->def.name, (qb_log_level_t)qb_log_level_current);
    pthread_mutex_lock(&svc->lock);
    while (!svc->stopping) {
        pthread_mutex_unlock(&svc->lock);
        qb_svc_check_ready(svc);
        pthread_mutex_lock(&svc->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (svc->common.probe_interval_ms % 1000) * 1000000;
        until.tv_sec += svc->common.probe_interval_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        if (!svc->stopping) pthread_cond_timedwait(&svc->cond, &svc->lock, &until);
    }
    pthread_mutex_unlock(&svc->lock);
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

qb_svc_t *qb_svc_new(const qb_svc_def_t *def, int argc, char **argv,
                     int *exit_code) {
    char err[512];
    char port_def[16];
    qb_cfg_entry_t common[sizeof(qb_svc_common_table) / sizeof(qb_svc_common_table[0])];
    qb_svc_t *svc = calloc(1, sizeof(*svc));
    if (!svc) { *exit_code = 1; return NULL; }
    svc->def = *def;

    /* Only the common settings this service uses: --help lists nothing it
     * ignores. QB_SQL_DIR goes with PostgreSQL. */
    size_t nc = 0;
    snprintf(port_def, sizeof(port_def), "%d", def->admin_port);
    for (const qb_cfg_entry_t *e = qb_svc_common_table; e->name; e++) {
        if (!(def->needs & QB_SVC_NEEDS_BUS) && strcmp(e->env, "QB_KAFKA_BROKERS") == 0) continue;
        if (!(def->needs & QB_SVC_NEEDS_PG) && (strcmp(e->env, "QB_PG_DSN") == 0 ||
                                                strcmp(e->env, "QB_SQL_DIR") == 0)) continue;
        if (!(def->needs & QB_SVC_NEEDS_REDIS) && strcmp(e->env, "QB_REDIS_URL") == 0) continue;
        common[nc] = *e;
        if (strcmp(e->env, "QB_ADMIN_PORT") == 0) common[nc].def = port_def;
        nc++;
    }
    memset(&common[nc], 0, sizeof(common[nc]));

    qb_cfg_section_t sections[2] = {{"common", common, &svc->common},
                                    {def->name, def->table, def->cfg}};
    int nsec = def->table ? 2 : 1;

    if (qb_svc_argv_has(argc, argv, "--help", "-h")) {
        qb_config_help(stdout, def->name, def->about, sections, nsec);
        free(svc);
        *exit_code = 0;
        return NULL;
    }
    if (qb_svc_argv_has(argc, argv, "--version", NULL)) {
        printf("%s %s\n", def->name, QB_VERSION);
        free(svc);
        *exit_code = 0;
        return NULL;
    }
    if (qb_config_load(sections, nsec, err, sizeof(err)) != QB_OK) {
        fprintf(stderr, "%s: configuration error: %s\n(see %s --help)\n", def->name,
                err, def->name);
        free(svc);
        *exit_code = 2;
        return NULL;
    }
    int lvl = qb_log_level_parse(svc->common.log_level);
    if (lvl < 0) {
        fprintf(stderr, "%s: configuration error: QB_LOG_LEVEL=%s: must be one of "
                        "debug, info, warn, error, off\n", def->name, svc->common.log_level);
        free(svc);
        *exit_code = 2;
        return NULL;
    }
    qb_log_init(def->name, (qb_log_level_t)lvl);
    qb_config_log(sections, nsec);

    pthread_mutex_init(&svc->lock, NULL);
    pthread_mutex_init(&svc->run_lock, NULL);
    pthread_cond_init(&svc->cond, NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = qb_svc_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    qb_svc_run_flag = 1;

    char labels[128];
    snprintf(labels, sizeof(labels), "service=\"%s\",version=\"%s\"", def->name, QB_VERSION);
    qb_gauge_set(qb_metrics_gauge("qb_build_info", "build information", labels), 1.0);
    svc->ready_gauge = qb_metrics_gauge("qb_ready", "1 when every dependency answers", NULL);

    if (def->needs & QB_SVC_NEEDS_BUS) qb_svc_add_probe(svc, "kafka", qb_svc_probe_bus, svc);
    if (def->needs & QB_SVC_NEEDS_PG) qb_svc_add_probe(svc, "postgres", qb_svc_probe_pg, svc);
    if (def->needs & QB_SVC_NEEDS_REDIS) qb_svc_add_probe(svc, "redis", qb_svc_probe_redis, svc);

    svc->admin = qb_admin_start(svc, svc->common.admin_bind, (int)svc->common.admin_port,
                                err, sizeof(err));
    if (!svc->admin) {
        QB_ERROR("admin server: %s", err);
        qb_svc_destroy(svc);
        *exit_code = 1;
        return NULL;
    }
    if (pthread_create(&svc->probe_thread, NULL, qb_svc_probe_main, svc) == 0)
        svc->probe_thread_started = 1;
    QB_INFO("%s %s started; admin on %s:%d", def->name, QB_VERSION, svc->common.admin_bind,
            qb_admin_port(svc->admin));
    *exit_code = 0;
    return svc;
}

void qb_svc_destroy(qb_svc_t *svc) {
    if (!svc) return;
    pthread_mutex_lock(&svc->lock);
    svc->stopping = 1;
    pthread_cond_broadcast(&svc->cond);
    pthread_mutex_unlock(&svc->lock);
    if (svc->probe_thread_started) pthread_join(svc->probe_thread, NULL);
    qb_admin_stop(svc->admin);
    qb_store_destroy(svc->probe_store);
    qb_cache_destroy(svc->probe_cache);
    pthread_cond_destroy(&svc->cond);
    pthread_mutex_destroy(&svc->lock);
    pthread_mutex_destroy(&svc->run_lock);
    QB_INFO("%s stopped", svc->def.name);
    free(svc);
}

const qb_svc_common_t *qb_svc_common(const qb_svc_t *svc) { return &svc->common; }
const char *qb_svc_name(const qb_svc_t *svc) { return svc->def.name; }
int qb_svc_running(const qb_svc_t *svc) { (void)svc; return qb_svc_run_flag != 0; }
volatile sig_atomic_t *qb_svc_flag(qb_svc_t *svc) { (void)svc; return &qb_svc_run_flag; }
void qb_svc_stop(qb_svc_t *svc) { (void)svc; qb_svc_run_flag = 0; }
int qb_svc_admin_port(const qb_svc_t *svc) { return qb_admin_port(svc->admin); }

/* ---- migrations ------------------------------------------------------------ */

static qb_err_t qb_svc_probe_migrated(void *opaque, char *errstr, size_t errstr_size) {
    const qb_svc_t *svc = opaque;
    if (svc->migrated) return QB_OK;
    return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "migrations not applied yet");
}

qb_err_t qb_svc_migrate(qb_svc_t *svc, qb_store_t *store, int apply) {
    svc->migrated = !apply;
    qb_svc_add_probe(svc, "migrations", qb_svc_probe_migrated, svc);
    if (!apply) return QB_OK;
    const char *dir = svc->common.sql_dir;
    char errstr[1024];
    int logged = 0;
    while (qb_svc_running(svc)) {
        int applied = 0;
        qb_err_t e = qb_migrate_apply(store, dir, &applied, errstr, sizeof errstr);
        if (!e) {
            QB_INFO("migrations of %s: %d applied", dir, applied);
            svc->migrated = 1;
            return QB_OK;
        }
        if (!qb_err_is_retriable(e)) {
            QB_ERROR("migrations of %s: %s", dir, errstr);
            return e;
        }
        if (!logged++) QB_WARN("migrations of %s: %s (retrying)", dir, errstr);
        usleep(500 * 1000);
    }
    return QB_OK;
}
