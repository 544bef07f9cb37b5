/* qb_topics.c — the topic registry; see qb_topics.h.
 *
 * Owns: the table of built-in topics (static, names built once from the
 * environment), a linked list of topics added at run time (never freed: they
 * live as long as the process, like the built-ins).
 *
 * Message descriptors come from the protobuf type registry of libs/proto
 * (qb_proto_find), which links every generated qb.v1 message.
 */
#include "bus/qb_topics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/qb_proto.h"

#define QB_TOPIC_NAME_MAX 249 /* Kafka's limit */

typedef struct qb_topic_def_s {
    const char *base, *key, *msg_type;
} qb_topic_def_t;

/* The architecture's topics table (docs: /work/shared/ARCHITECTURE.md). */
static const qb_topic_def_t qb_topic_defs[QB_TOPIC__BUILTIN_COUNT] = {
    [QB_TOPIC_MD_BARS] = {"md.bars", "symbol", "qb.v1.Bar"},
    [QB_TOPIC_FEATURES] = {"features", "symbol", "qb.v1.FeatureSet"},
    [QB_TOPIC_SIGNALS] = {"signals", "account", "qb.v1.Signal"},
    [QB_TOPIC_ORDERS_INTENTS] = {"orders.intents", "account", "qb.v1.OrderRequest"},
    [QB_TOPIC_ORDERS] = {"orders", "account", "qb.v1.Order"},
    [QB_TOPIC_EXEC_REPORTS] = {"exec.reports", "account", "qb.v1.ExecutionReport"},
    [QB_TOPIC_RISK_EVENTS] = {"risk.events", "account", "qb.v1.RiskEvent"},
    [QB_TOPIC_CONTROL] = {"control", "target", "qb.v1.Command"},
    [QB_TOPIC_BACKTEST_REQUESTS] = {"backtest.requests", "run id", "qb.v1.BacktestRequest"},
    [QB_TOPIC_BACKTEST_EVENTS] = {"backtest.events", "run id", "qb.v1.BacktestEvent"},
    [QB_TOPIC_NOTIFICATIONS] = {"notifications", "user", "qb.v1.Notification"},
};

/* One registry entry: the public value plus the storage its strings point
 * into. */
typedef struct qb_topic_ent_s {
    qb_topic_t pub;
    struct qb_topic_ent_s *next; /* added topics only */
    char name[QB_TOPIC_NAME_MAX + 1];
    char dlq[QB_TOPIC_NAME_MAX + 5];
    char *owned_base, *owned_key, *owned_type; /* added topics only */
} qb_topic_ent_t;


static pthread_mutex_t qb_topics_lock = PTHREAD_MUTEX_INITIALIZER;
static int qb_topics_inited;           /* under lock */
static qb_err_t qb_topics_init_err;    /* under lock */
static char qb_topics_init_msg[256];   /* under lock */
static int qb_topics_default_partitions = 6;
static qb_topic_ent_t qb_topics_builtin[QB_TOPIC__BUILTIN_COUNT];
static qb_topic_ent_t *qb_topics_extra_head, *qb_topics_extra_tail;
static size_t qb_topics_extra_n;

int qb_topic_name_valid(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > QB_TOPIC_NAME_MAX) return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Called with the lock held. */
static qb_err_t qb_topics_init_locked(void) {
    if (qb_topics_inited) return qb_topics_init_err;
    qb_topics_inited = 1;

    const char *prefix = getenv("QB_TOPIC_PREFIX");
    const char *parts = getenv("QB_TOPIC_PARTITIONS");
    if (!prefix) prefix = "";
    if (parts && *parts) {
        char *end;
        errno = 0;
        long v = strtol(parts, &end, 10);
        if (errno || end == parts || *end || v < 1 || v > 10000) {
            qb_topics_init_err = qb_err_set(qb_topics_init_msg, sizeof(qb_topics_init_msg),
                                            QB_ERR_CONFIG,
                                            "QB_TOPIC_PARTITIONS=%s: must be an integer "
                                            "between 1 and 10000", parts);
            return qb_topics_init_err;
        }
        qb_topics_default_partitions = (int)v;
    }
    if (*prefix) {
        char probe[QB_TOPIC_NAME_MAX + 64];
        snprintf(probe, sizeof(probe), "%sbacktest.requests.dlq", prefix);
        if (!qb_topic_name_valid(prefix) || !qb_topic_name_valid(probe)) {
            qb_topics_init_err = qb_err_set(qb_topics_init_msg, sizeof(qb_topics_init_msg),
                                            QB_ERR_CONFIG,
                                            "QB_TOPIC_PREFIX=%.64s: only letters, digits, "
                                            "'.', '_' and '-', at most %d characters "
                                            "with the longest topic name",
                                            prefix, QB_TOPIC_NAME_MAX);
            return qb_topics_init_err;
        }
    }
    for (int i = 0; i < QB_TOPIC__BUILTIN_COUNT; i++) {
        qb_topic_ent_t *e = &qb_topics_builtin[i];
        snprintf(e->name, sizeof(e->name), "%s%s", prefix, qb_topic_defs[i].base);
        snprintf(e->dlq, sizeof(e->dlq), "%s%s.dlq", prefix, qb_topic_defs[i].base);
        e->pub.id = (qb_topic_id_t)i;
        e->pub.base = qb_topic_defs[i].base;
        e->pub.name = e->name;
        e->pub.dlq = e->dlq;
        e->pub.key = qb_topic_defs[i].key;
        e->pub.msg_type = qb_topic_defs[i].msg_type;
        e->pub.partitions = qb_topics_default_partitions;
    }
    qb_topics_init_err = QB_OK;
    return QB_OK;
}

qb_err_t qb_topics_init(char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&qb_topics_lock);
    qb_err_t err = qb_topics_init_locked();
    if (err && errstr && errstr_size)
        snprintf(errstr, errstr_size, "%s", qb_topics_init_msg);
    pthread_mutex_unlock(&qb_topics_lock);
    return err;
}

static int qb_topics_ready(void) { return qb_topics_init(NULL, 0) == QB_OK; }

const qb_topic_t *qb_topic_get(qb_topic_id_t id) {
    if ((int)id < 0 || id >= QB_TOPIC__BUILTIN_COUNT || !qb_topics_ready()) return NULL;
    return &qb_topics_builtin[id].pub;
}

static const qb_topic_t *qb_topic_find_locked(const char *name) {
    for (int i = 0; i < QB_TOPIC__BUILTIN_COUNT; i++) {
        const qb_topic_ent_t *e = &qb_topics_builtin[i];
        if (strcmp(e->name, name) == 0 || strcmp(e->pub.base, name) == 0) return &e->pub;
    }
    for (const qb_topic_ent_t *e = qb_topics_extra_head; e; e = e->next)
        if (strcmp(e->name, name) == 0) return &e->pub;
    return NULL;
}

const qb_topic_t *qb_topic_find(const char *name) {
    if (!name || !qb_topics_ready()) return NULL;
    pthread_mutex_lock(&qb_topics_lock);
    const qb_topic_t *t = qb_topic_find_locked(name);
    pthread_mutex_unlock(&qb_topics_lock);
    return t;
}

const char *qb_topic_resolve(const char *name) {
    if (!name) return NULL;
    const qb_topic_t *t = qb_topic_find(name);
    if (t) return t->name;
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".dlq") == 0 && n - 4 <= QB_TOPIC_NAME_MAX) {
        char src[QB_TOPIC_NAME_MAX + 1];
        memcpy(src, name, n - 4);
        src[n - 4] = '\0';
        t = qb_topic_find(src);
        if (t) return t->dlq;
    }
    return name;
}

size_t qb_topics_count(void) {
    if (!qb_topics_ready()) return 0;
    pthread_mutex_lock(&qb_topics_lock);
    size_t n = QB_TOPIC__BUILTIN_COUNT + qb_topics_extra_n;
    pthread_mutex_unlock(&qb_topics_lock);
    return n;
}

const qb_topic_t *qb_topics_at(size_t i) {
    if (!qb_topics_ready()) return NULL;
    if (i < QB_TOPIC__BUILTIN_COUNT) return &qb_topics_builtin[i].pub;
    pthread_mutex_lock(&qb_topics_lock);
    const qb_topic_ent_t *e = qb_topics_extra_head;
    for (i -= QB_TOPIC__BUILTIN_COUNT; e && i > 0; i--) e = e->next;
    pthread_mutex_unlock(&qb_topics_lock);
    return e ? &e->pub : NULL;
}

const qb_topic_t *qb_topics_add(const char *name, const char *msg_type,
                                const char *key_doc, int partitions,
                                char *errstr, size_t errstr_size) {
    if (qb_topics_init(errstr, errstr_size)) return NULL;
    if (!qb_topic_name_valid(name) || strlen(name) + 4 > QB_TOPIC_NAME_MAX) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "topic name \"%.64s\": 1..%d characters of letters, digits, "
                   "'.', '_', '-'", name ? name : "(null)", QB_TOPIC_NAME_MAX - 4);
        return NULL;
    }
    if (!msg_type || !*msg_type) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "topic %s: no message type", name);
        return NULL;
    }
    pthread_mutex_lock(&qb_topics_lock);
    const qb_topic_t *old = qb_topic_find_locked(name);
    if (old) {
        int same = strcmp(old->msg_type, msg_type) == 0;
        pthread_mutex_unlock(&qb_topics_lock);
        if (!same)
            qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                       "topic %s is registered with %s, not %s", name, old->msg_type,
                       msg_type);
        return same ? old : NULL;
    }
    qb_topic_ent_t *e = calloc(1, sizeof(*e));
    if (e) {
        e->owned_base = strdup(name);
        e->owned_type = strdup(msg_type);
        e->owned_key = strdup(key_doc ? key_doc : "");
    }
    if (!e || !e->owned_base || !e->owned_type || !e->owned_key) {
        pthread_mutex_unlock(&qb_topics_lock);
        if (e) {
            free(e->owned_base);
            free(e->owned_type);
            free(e->owned_key);
            free(e);
        }
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "topic %s: out of memory", name);
        return NULL;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->dlq, sizeof(e->dlq), "%s.dlq", name);
    e->pub.id = QB_TOPIC_EXTRA;
    e->pub.base = e->owned_base;
    e->pub.name = e->name;
    e->pub.dlq = e->dlq;
    e->pub.key = e->owned_key;
    e->pub.msg_type = e->owned_type;
    e->pub.partitions = partitions > 0 ? partitions : qb_topics_default_partitions;
    if (qb_topics_extra_tail) qb_topics_extra_tail->next = e;
    else qb_topics_extra_head = e;
    qb_topics_extra_tail = e;
    qb_topics_extra_n++;
    pthread_mutex_unlock(&qb_topics_lock);
    return &e->pub;
}

const ProtobufCMessageDescriptor *qb_topics_type_find(const char *full_name) {
    /* Full names only: qb_proto_find would also take "Bar". */
    if (!full_name || !strchr(full_name, '.')) return NULL;
    return qb_proto_find(full_name);
}
