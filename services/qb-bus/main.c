/* qb-bus — the embedded Kafka-protocol broker for one machine.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h): N in-process brokers
 * that speak the real Kafka protocol on loopback, so every Quantbus service
 * and any Kafka client (kcat, confluent-kafka-python ...) can use it with an
 * ordinary bootstrap list. At start it creates every topic of the registry
 * (libs/bus/qb_topics.h) and its "<topic>.dlq" with QB_TOPIC_PARTITIONS
 * partitions, plus the QB_BUS_EXTRA_TOPICS, then prints the bootstrap list as
 * one line on stdout and writes it to QB_BUS_BOOTSTRAP_FILE (tmp + rename,
 * so a reader never sees half a line). SIGTERM or SIGINT stops it cleanly
 * (exit 0); the bootstrap file is removed on the way out.
 *
 * LIMITS — this is a development and test broker, not Kafka:
 *   - in memory only: everything is lost when the process exits;
 *   - retention is about 5 MiB per partition (librdkafka's mock keeps the
 *     newest message sets only): a consumer lagging further behind silently
 *     loses the older messages;
 *   - ports are random on every start (read the bootstrap file);
 *   - one process, one machine, loopback only; "replication" is simulated;
 *   - the mock cannot create topics through the admin API (CreateTopics):
 *     topics exist because qb-bus creates them here. A produce or metadata
 *     request for an unknown topic DOES auto-create it, with the mock's
 *     default partition count (4) — use QB_BUS_EXTRA_TOPICS when the count
 *     matters.
 * Production runs real Apache Kafka (docker-compose.yml, deploy/k8s) with
 * the same topic names and partition counts.
 *
 * Fault injection (for chaos tests; on the admin port, loopback by default):
 *   POST /brokers/{id}/down   the broker stops answering (its connections
 *                             are closed, leadership stays: clients retry)
 *   POST /brokers/{id}/up     it answers again
 * ids are 1..QB_BUS_BROKERS; answers {"broker":id,"state":"down"|"up"};
 * a bad id or action is a 404 naming it.
 *
 * Owns: the mock cluster and the librdkafka handle that hosts it, and the
 * bootstrap file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "core/qb_config.h"
#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "svc/qb_svc.h"

typedef struct qb_bus_cfg_s {
    int64_t brokers;
    int64_t partitions;
    const char *prefix;
    const char *bootstrap_file;
    const char *extra_topics;
} qb_bus_cfg_t;

static const qb_cfg_entry_t qb_bus_cfg_entries[] = {
    {"bus.brokers", "QB_BUS_BROKERS", QB_CFG_INT, "3", 1, 16,
     offsetof(qb_bus_cfg_t, brokers), 0, "number of mock brokers"},
    {"topic.partitions", "QB_TOPIC_PARTITIONS", QB_CFG_INT, "6", 1, 10000,
     offsetof(qb_bus_cfg_t, partitions), 0,
     "partitions of every registry topic and its .dlq"},
    {"topic.prefix", "QB_TOPIC_PREFIX", QB_CFG_STRING, "", 1, 0,
     offsetof(qb_bus_cfg_t, prefix), 0,
     "prefix of every registry topic name (isolation, multi-tenant)"},
    {"bus.bootstrap_file", "QB_BUS_BOOTSTRAP_FILE", QB_CFG_STRING, "run/bus.bootstrap", 1,
     4096, offsetof(qb_bus_cfg_t, bootstrap_file), 0,
     "file that receives the bootstrap list (written atomically)"},
    {"bus.extra_topics", "QB_BUS_EXTRA_TOPICS", QB_CFG_STRING, "", 1, 0,
     offsetof(qb_bus_cfg_t, extra_topics), 0,
     "more topics, comma list name[:partitions]; each gets a .dlq too"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

static void qb_bus_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                          const char *buf) {
    (void)rk;
    /* The hosting handle never connects anywhere: that warning is noise. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers")) level = 7;
    qb_log_level_t lv = level <= 3 ? QB_LOG_ERROR : level == 4 ? QB_LOG_WARN
                        : level <= 6 ? QB_LOG_INFO : QB_LOG_DEBUG;
    QB_LOG(lv, "rdkafka %s: %s", fac, buf);
}

/* mkdir -p of the directory part of `path`. */
static int qb_bus_mkdirs(const char *path) {
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

static qb_err_t qb_bus_write_bootstrap(const char *path, const char *bootstraps,
                                       char *errstr, size_t errstr_size) {
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if (qb_bus_mkdirs(path))
        return qb_err_set(errstr, errstr_size, QB_ERR_IO,
                          "QB_BUS_BOOTSTRAP_FILE=%s: cannot create its directory: %s",
                          path, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_IO, "QB_BUS_BOOTSTRAP_FILE=%s: %s: %s",
                          path, tmp, strerror(errno));
    size_t n = strlen(bootstraps);
    int ok = write(fd, bootstraps, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok) saved = errno;
        unlink(tmp);
        return qb_err_set(errstr, errstr_size, QB_ERR_IO,
                          "QB_BUS_BOOTSTRAP_FILE=%s: cannot write: %s", path,
                          strerror(saved));
    }
    return QB_OK;
}

typedef struct qb_bus_ctl_s {
    rd_kafka_mock_cluster_t *mc;
    int brokers;
    qb_gauge_t *down;
    pthread_mutex_t mu;
    unsigned char *is_down; /* [1..brokers] */
} qb_bus_ctl_t;

/* POST /brokers/{id}/down|up */
static char *qb_bus_broker_ctl(void *opaque, const char *method, const char *url, int *status) {
    (void)method;
    qb_bus_ctl_t *ctl = opaque;
    int id = 0, n = 0;
    char action[8] = "";
    char *body = malloc(256);
    if (!body) return NULL;
    if (sscanf(url, "/brokers/%d/%7[a-z]%n", &id, action, &n) != 2 || url[n] != '\0' ||
        id < 1 || id > ctl->brokers || (strcmp(action, "down") && strcmp(action, "up"))) {
        *status = 404;
        snprintf(body, 256,
                 "{\"error\":{\"code\":\"not_found\",\"message\":\"use POST "
                 "/brokers/{1..%d}/down or /up\"}}\n",
                 ctl->brokers);
        return body;
    }
    int down = !strcmp(action, "down");
    rd_kafka_resp_err_t e = down ? rd_kafka_mock_broker_set_down(ctl->mc, id)
                                 : rd_kafka_mock_broker_set_up(ctl->mc, id);
    if (e) {
        *status = 500;
        snprintf(body, 256, "{\"error\":{\"code\":\"internal\",\"message\":\"%s\"}}\n",
                 rd_kafka_err2str(e));
        return body;
    }
    QB_WARN("broker %d set %s (admin request)", id, action);
    pthread_mutex_lock(&ctl->mu);
    ctl->is_down[id] = (unsigned char)down;
    int ndown = 0;
    for (int i = 1; i <= ctl->brokers; i++) ndown += ctl->is_down[i];
    pthread_mutex_unlock(&ctl->mu);
    qb_gauge_set(ctl->down, ndown);
    *status = 200;
    snprintf(body, 256, "{\"broker\":%d,\"state\":\"%s\"}\n", id, action);
    return body;
}

static qb_err_t qb_bus_create(rd_kafka_mock_cluster_t *mc, const char *name, int parts,
                              int rf, char *errstr, size_t errstr_size) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, rf);
    if (err)
        return qb_err_set(errstr, errstr_size, QB_ERR_KAFKA, "cannot create topic %s: %s",
                          name, rd_kafka_err2str(err));
    QB_DEBUG("created topic %s with %d partitions", name, parts);
    return QB_OK;
}

typedef struct qb_bus_extra_s {
    char name[250];
    int partitions;
} qb_bus_extra_t;

/* Parse QB_BUS_EXTRA_TOPICS ("a,b:12") into a malloc'd array (caller frees)
 * before anything starts, so a typo fails fast with the variable named. */
static qb_err_t qb_bus_parse_extras(const char *spec, int def_parts, qb_bus_extra_t **out,
                                    int *count, char *errstr, size_t errstr_size) {
    char *copy = strdup(spec), *save = NULL;
    qb_bus_extra_t *list = calloc(strlen(spec) / 2 + 1, sizeof(*list));
    qb_err_t err = QB_OK;
    int n = 0;
    if (!copy || !list) {
        free(copy);
        free(list);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (char *tok = strtok_r(copy, ",", &save); tok && !err;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        if (!*tok) continue;
        int parts = def_parts;
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = '\0';
            char *pe;
            long v = strtol(colon + 1, &pe, 10);
            if (pe == colon + 1 || *pe || v < 1 || v > 10000) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                                 "QB_BUS_EXTRA_TOPICS: \"%s:%s\": partitions must be "
                                 "an integer between 1 and 10000", tok, colon + 1);
                break;
            }
            parts = (int)v;
        }
        if (!qb_topic_name_valid(tok) || strlen(tok) > 245) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                             "QB_BUS_EXTRA_TOPICS: \"%s\" is not a valid topic name "
                             "(letters, digits, '.', '_', '-'; at most 245)", tok);
            break;
        }
        snprintf(list[n].name, sizeof(list[n].name), "%s", tok);
        list[n++].partitions = parts;
    }
    free(copy);
    if (err) {
        free(list);
        return err;
    }
    *out = list;
    *count = n;
    return QB_OK;
}

/* /readyz: the brokers answer a metadata request on their bootstrap list. */
static qb_err_t qb_bus_probe(void *opaque, char *errstr, size_t errstr_size) {
    return qb_bus_ping((const char *)opaque, 1000, errstr, errstr_size);
}

int main(int argc, char **argv) {
    static qb_bus_cfg_t cfg;
    static const char about[] =
        "The embedded Kafka-protocol broker for one machine (librdkafka mock\n"
        "cluster): creates every registry topic and its .dlq, prints the bootstrap\n"
        "list and writes it to QB_BUS_BOOTSTRAP_FILE, runs until SIGTERM/SIGINT.\n"
        "In memory only, ~5 MiB kept per partition, random ports: production uses\n"
        "real Kafka. Admin port: /healthz, /readyz (brokers answer), /metrics.";
    char errstr[512];
    int rc = 0;
    qb_svc_t *svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-bus", .about = about,
                                              .admin_port = 0, .needs = 0,
                                              .table = qb_bus_cfg_entries, .cfg = &cfg},
                               argc, argv, &rc);
    if (!svc) return rc;
    if (qb_topics_init(errstr, sizeof(errstr))) {
        QB_ERROR("%s", errstr);
        qb_svc_destroy(svc);
        return 2;
    }
    qb_bus_extra_t *extras = NULL;
    int nextras = 0;
    if (qb_bus_parse_extras(cfg.extra_topics, (int)cfg.partitions, &extras, &nextras,
                            errstr, sizeof(errstr))) {
        QB_ERROR("%s", errstr);
        qb_svc_destroy(svc);
        return 2;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, qb_bus_log_cb);
    rd_kafka_conf_set(conf, "client.id", "qb-bus", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        QB_ERROR("cannot create the librdkafka handle: %s", errstr);
        free(extras);
        qb_svc_destroy(svc);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)cfg.brokers);
    if (!mc) {
        QB_ERROR("cannot start the mock cluster with %d brokers", (int)cfg.brokers);
        rd_kafka_destroy(rk);
        free(extras);
        qb_svc_destroy(svc);
        return 1;
    }
    int rf = cfg.brokers < 3 ? (int)cfg.brokers : 3;
    int ntopics = 0;
    qb_err_t err = QB_OK;
    for (size_t i = 0; i < qb_topics_count() && !err; i++) {
        const qb_topic_t *t = qb_topics_at(i);
        if (!qb_topics_type_find(t->msg_type))
            QB_WARN("topic %s carries %s, a type unknown to libs/proto: consumers of it "
                    "will refuse to start", t->name, t->msg_type);
        err = qb_bus_create(mc, t->name, t->partitions, rf, errstr, sizeof(errstr));
        if (!err) err = qb_bus_create(mc, t->dlq, t->partitions, rf, errstr, sizeof(errstr));
        if (!err) ntopics += 2;
    }
    /* Extra topics get a .dlq too, unless they are one. */
    for (int i = 0; i < nextras && !err; i++) {
        const char *name = extras[i].name;
        size_t len = strlen(name);
        err = qb_bus_create(mc, name, extras[i].partitions, rf, errstr, sizeof(errstr));
        if (!err) ntopics++;
        if (!err && !(len > 4 && strcmp(name + len - 4, ".dlq") == 0)) {
            char dlq[256];
            snprintf(dlq, sizeof(dlq), "%s.dlq", name);
            err = qb_bus_create(mc, dlq, extras[i].partitions, rf, errstr, sizeof(errstr));
            if (!err) ntopics++;
        }
    }
    free(extras);
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (!err) err = qb_bus_write_bootstrap(cfg.bootstrap_file, bootstraps, errstr,
                                           sizeof(errstr));
    if (err) {
        QB_ERROR("%s", errstr);
        rc = err == QB_ERR_CONFIG ? 2 : 1;
    } else {
        qb_gauge_set(qb_metrics_gauge("qb_bus_mock_brokers", "brokers in the mock cluster",
                                      NULL), (double)cfg.brokers);
        qb_gauge_set(qb_metrics_gauge("qb_bus_mock_topics",
                                      "topics created at start (registry, DLQs, extras)", NULL),
                     (double)ntopics);
        qb_svc_add_probe(svc, "brokers", qb_bus_probe, (void *)bootstraps);
        static qb_bus_ctl_t ctl;
        static unsigned char is_down[17]; /* QB_BUS_BROKERS <= 16 */
        pthread_mutex_init(&ctl.mu, NULL);
        ctl.is_down = is_down;
        ctl.mc = mc;
        ctl.brokers = (int)cfg.brokers;
        ctl.down = qb_metrics_gauge("qb_bus_mock_brokers_down",
                                    "brokers set down through the admin port", NULL);
        qb_svc_add_admin_route(svc, "POST", "/brokers/", qb_bus_broker_ctl, &ctl);
        printf("%s\n", bootstraps);
        fflush(stdout);
        QB_INFO("qb-bus ready: %d brokers, %d topics, bootstrap %s (also in %s), admin port %d",
                (int)cfg.brokers, ntopics, bootstraps, cfg.bootstrap_file,
                qb_svc_admin_port(svc));
        while (qb_svc_running(svc)) usleep(50 * 1000);
        QB_INFO("qb-bus stopping");
        unlink(cfg.bootstrap_file);
    }

    /* The probe thread uses the bootstrap string: stop it first. */
    qb_svc_destroy(svc);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (rd_kafka_wait_destroyed(5000) != 0) QB_WARN("librdkafka did not shut down in 5 s");
    return rc;
}
