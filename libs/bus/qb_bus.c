/* qb_bus.c — what the producer and the consumer share: librdkafka
 * configuration from the environment (defaults, QB_KAFKA_* pass-through,
 * forced settings), log and error callbacks, error mapping, clocks, the
 * thread's origin time (qb_bus_origin) and the readiness probe
 * qb_bus_ping(). Owns nothing long-lived. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/qb_bus_int.h"
#include "core/qb_log.h"

extern char **environ;

#define QB_KAFKA_ENV "QB_KAFKA_"

int64_t qb__bus_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The thread's origin (qb_bus.h): a plain thread-local, read at every send. */
static _Thread_local int64_t qb__bus_origin_ns;

int64_t qb_bus_origin(void) { return qb__bus_origin_ns; }

int64_t qb_bus_set_origin(int64_t origin_ns) {
    int64_t was = qb__bus_origin_ns;
    qb__bus_origin_ns = origin_ns > 0 ? origin_ns : 0;
    return was;
}

int64_t qb__bus_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

qb_err_t qb__bus_err(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return QB_OK;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: return QB_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE: return QB_ERR_UNAVAILABLE;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG: return QB_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return QB_ERR_NOT_FOUND;
    default: return QB_ERR_KAFKA;
    }
}

/* librdkafka's log lines, as our JSON lines (syslog levels). */
static void qb__bus_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                           const char *buf) {
    qb_log_level_t lv = level <= 3 ? QB_LOG_ERROR
                        : level == 4 ? QB_LOG_WARN
                        : level <= 6 ? QB_LOG_INFO
                                     : QB_LOG_DEBUG;
    QB_LOG(lv, "rdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

/* The readiness probe's client: a failed probe is reported once by the
 * caller, not as librdkafka's per-connection errors. */
static void qb__bus_quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                                 const char *buf) {
    (void)level;
    QB_DEBUG("rdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void qb__bus_quiet_error_cb(rd_kafka_t *rk, int err, const char *reason,
                                   void *opaque) {
    (void)opaque;
    QB_DEBUG("kafka error on %s: %s: %s", rd_kafka_name(rk),
             rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void qb__bus_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        QB_ERROR("kafka FATAL error on %s: %s: %s", rd_kafka_name(rk),
                 rd_kafka_err2name(ferr), fatal);
        return;
    }
    QB_WARN("kafka error on %s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Properties whose values never appear in logs or errors. */
static int qb__bus_prop_secret(const char *prop) {
    static const char *const marks[] = {"password", "secret", "ssl.key", "ssl_key",
                                        "oauthbearer.config", "sasl.jaas", "token"};
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (strstr(prop, marks[i])) return 1;
    return 0;
}

typedef struct qb__bus_kv_s {
    const char *key, *value;
} qb__bus_kv_t;

static const qb__bus_kv_t qb__bus_defaults_common[] = {
    {"client.id", "quantbus"},
    {"socket.nagle.disable", "true"},
    {NULL, NULL},
};
static const qb__bus_kv_t qb__bus_defaults_producer[] = {
    {"linger.ms", "1"},
    {NULL, NULL},
};
static const qb__bus_kv_t qb__bus_defaults_consumer[] = {
    {"fetch.wait.max.ms", "5"},
    {"auto.offset.reset", "earliest"},
    {"session.timeout.ms", "10000"},
    {"heartbeat.interval.ms", "1000"},
    {"auto.commit.interval.ms", "1000"},
    {"statistics.interval.ms", "5000"},
    {"enable.partition.eof", "false"},
    {NULL, NULL},
};
/* Forced after the environment: the delivery guarantees depend on them. */
static const char *const qb__bus_forced_producer[] = {"enable.idempotence", NULL};
static const char *const qb__bus_forced_consumer[] = {
    "group.id", "enable.auto.offset.store", "enable.auto.commit", NULL};

static int qb__bus_in(const char *const *list, const char *s) {
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

static qb_err_t qb__bus_set_list(rd_kafka_conf_t *conf, const qb__bus_kv_t *kv,
                                 char *errstr, size_t errstr_size) {
    char rerr[512];
    for (; kv->key; kv++)
        if (rd_kafka_conf_set(conf, kv->key, kv->value, rerr, sizeof(rerr)) !=
            RD_KAFKA_CONF_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL,
                              "default %s=%s rejected by librdkafka: %s", kv->key,
                              kv->value, rerr);
    return QB_OK;
}

/* Apply one QB_KAFKA_<PROP>=value. */
static qb_err_t qb__bus_apply_env(rd_kafka_conf_t *conf, qb_bus_kind_t kind,
                                  const char *entry, char *errstr,
                                  size_t errstr_size) {
    const char *eq = strchr(entry, '=');
    if (!eq) return QB_OK;
    size_t namelen = (size_t)(eq - entry);
    const char *value = eq + 1;
    char var[256], prop[256], rerr[512];
    if (namelen >= sizeof(var)) namelen = sizeof(var) - 1;
    memcpy(var, entry, namelen);
    var[namelen] = '\0';
    if (strcmp(var, "QB_KAFKA_BROKERS") == 0) return QB_OK; /* handled apart */

    size_t plen = namelen - strlen(QB_KAFKA_ENV);
    if (plen == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "%s: no librdkafka property after QB_KAFKA_", var);
    for (size_t i = 0; i < plen; i++) {
        char ch = var[strlen(QB_KAFKA_ENV) + i];
        prop[i] = ch == '_' ? '.' : (char)tolower((unsigned char)ch);
    }
    prop[plen] = '\0';
    int secret = qb__bus_prop_secret(prop);

    const char *const *forced = kind == QB_BUS_KIND_CONSUMER ? qb__bus_forced_consumer
                                : kind == QB_BUS_KIND_PRODUCER ? qb__bus_forced_producer
                                                               : NULL;
    if (forced && qb__bus_in(forced, prop)) {
        QB_WARN("%s ignored: %s is set by the bus (delivery guarantees depend on it)",
                var, prop);
        return QB_OK;
    }

    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, prop, value, rerr, sizeof(rerr));
    if (r == RD_KAFKA_CONF_UNKNOWN && strchr(prop, '.')) {
        /* A few librdkafka names use '_' (log_level): try that spelling. */
        char alt[256];
        snprintf(alt, sizeof(alt), "%s", prop);
        for (char *p = alt; *p; p++)
            if (*p == '.') *p = '_';
        char rerr2[512];
        if (rd_kafka_conf_set(conf, alt, value, rerr2, sizeof(rerr2)) == RD_KAFKA_CONF_OK) {
            snprintf(prop, sizeof(prop), "%s", alt);
            r = RD_KAFKA_CONF_OK;
        }
    }
    if (r == RD_KAFKA_CONF_UNKNOWN)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "%s: librdkafka has no property \"%s\" (%s)", var, prop, rerr);
    if (r != RD_KAFKA_CONF_OK) {
        if (secret)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "%s=***: invalid value for librdkafka property \"%s\"",
                              var, prop);
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "%s=%s: %s", var, value,
                          rerr);
    }
    QB_LOG(kind == QB_BUS_KIND_PING ? QB_LOG_DEBUG : QB_LOG_INFO,
           "kafka config %s=%s (from %s)", prop, secret ? "***" : value, var);
    return QB_OK;
}

rd_kafka_conf_t *qb__bus_conf_new(qb_bus_kind_t kind, const char *brokers,
                                  const char *group_id, char *errstr,
                                  size_t errstr_size) {
    char rerr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "rd_kafka_conf_new failed");
        return NULL;
    }
    if (qb__bus_set_list(conf, qb__bus_defaults_common, errstr, errstr_size) ||
        (kind == QB_BUS_KIND_PRODUCER &&
         qb__bus_set_list(conf, qb__bus_defaults_producer, errstr, errstr_size)) ||
        (kind == QB_BUS_KIND_CONSUMER &&
         qb__bus_set_list(conf, qb__bus_defaults_consumer, errstr, errstr_size)))
        goto fail;

    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, QB_KAFKA_ENV, strlen(QB_KAFKA_ENV)) != 0) continue;
        if (qb__bus_apply_env(conf, kind, *e, errstr, errstr_size)) goto fail;
    }

    if (!brokers || !*brokers) brokers = getenv("QB_KAFKA_BROKERS");
    if (brokers && *brokers) {
        if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, rerr, sizeof(rerr)) !=
            RD_KAFKA_CONF_OK) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "QB_KAFKA_BROKERS=%s: %s",
                       brokers, rerr);
            goto fail;
        }
    } else {
        size_t n = sizeof(rerr);
        if (rd_kafka_conf_get(conf, "bootstrap.servers", rerr, &n) != RD_KAFKA_CONF_OK ||
            !rerr[0]) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "QB_KAFKA_BROKERS: required but not set (Kafka bootstrap list, "
                       "host:port[,host:port...])");
            goto fail;
        }
    }

    if (kind == QB_BUS_KIND_PRODUCER) {
        if (rd_kafka_conf_set(conf, "enable.idempotence", "true", rerr, sizeof(rerr)))
            goto forced_fail;
    } else if (kind == QB_BUS_KIND_CONSUMER) {
        if (!group_id || !*group_id) {
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "consumer needs a group id");
            goto fail;
        }
        if (rd_kafka_conf_set(conf, "group.id", group_id, rerr, sizeof(rerr)) ||
            rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", rerr,
                              sizeof(rerr)) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "true", rerr, sizeof(rerr)))
            goto forced_fail;
    }
    rd_kafka_conf_set_log_cb(conf, kind == QB_BUS_KIND_PING ? qb__bus_quiet_log_cb
                                                            : qb__bus_log_cb);
    rd_kafka_conf_set_error_cb(conf, kind == QB_BUS_KIND_PING ? qb__bus_quiet_error_cb
                                                              : qb__bus_error_cb);
    return conf;

forced_fail:
    qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "librdkafka: %s", rerr);
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

qb_err_t qb_bus_ping(const char *brokers, int timeout_ms, char *errstr,
                     size_t errstr_size) {
    char rerr[512];
    rd_kafka_conf_t *conf = qb__bus_conf_new(QB_BUS_KIND_PING, brokers, NULL, errstr,
                                             errstr_size);
    if (!conf) return QB_ERR_CONFIG;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof(rerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "cannot create Kafka client: %s", rerr);
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    qb_err_t ret = QB_OK;
    const char *shown = brokers && *brokers ? brokers : getenv("QB_KAFKA_BROKERS");
    if (err)
        ret = qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                         "Kafka at %s: no metadata within %d ms: %s",
                         shown ? shown : "(bootstrap.servers)", timeout_ms,
                         rd_kafka_err2str(err));
    else if (md->broker_cnt < 1)
        ret = qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                         "Kafka answered with no brokers");
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return ret;
}
