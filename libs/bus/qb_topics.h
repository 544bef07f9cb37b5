/* qb_topics.h — THE topic registry: every Kafka topic of the architecture,
 * what its key means, which protobuf message it carries, how many partitions
 * it is created with, and the name of its dead-letter topic.
 *
 * Every binary (services, qb-bus, qbctl, tests, benches) asks this registry
 * for topic names instead of spelling them, so a prefix or a partition count
 * changes in one place:
 *
 *   QB_TOPIC_PREFIX      prepended to every built-in topic name (and so to its
 *                        DLQ), e.g. "tenant-a." -> "tenant-a.md.bars"; for
 *                        isolation on a shared or multi-tenant cluster.
 *                        Letters, digits, '.', '_' and '-' only. Default "".
 *   QB_TOPIC_PARTITIONS  partitions of every built-in topic and its DLQ when
 *                        it is created (qb-bus; qbctl on real Kafka).
 *                        1..10000, default 6.
 *
 * Each built-in topic has a dead-letter topic "<name>.dlq" with the same key
 * and partition count; it carries the poison message as it arrived plus
 * error headers (see qb_bus.h).
 *
 * Message types are protobuf full names ("qb.v1.Bar"). The registry maps a
 * full name to its protobuf-c descriptor so the consumer can decode a topic
 * without knowing its C type: every qb.v1 message comes from libs/proto's
 * type registry (qb_proto_find).
 *
 * Ownership: the registry owns every qb_topic_t and every string in it; they
 * live until the process exits. Callers never free them.
 *
 * Threads: the lookups are thread-safe. qb_topics_add() is thread-safe
 * too, but meant for start-up,
 * before producers and consumers are created. */
#ifndef QB_TOPICS_H
#define QB_TOPICS_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "core/qb_err.h"

/* The built-in topics, in the order of the architecture's topics table. */
typedef enum qb_topic_id_e {
    QB_TOPIC_MD_BARS = 0,        /* md.bars           key symbol  Bar */
    QB_TOPIC_FEATURES,           /* features          key symbol  FeatureSet */
    QB_TOPIC_SIGNALS,            /* signals           key account Signal */
    QB_TOPIC_ORDERS_INTENTS,     /* orders.intents    key account OrderRequest */
    QB_TOPIC_ORDERS,             /* orders            key account Order */
    QB_TOPIC_EXEC_REPORTS,       /* exec.reports      key account ExecutionReport */
    QB_TOPIC_RISK_EVENTS,        /* risk.events       key account RiskEvent */
    QB_TOPIC_CONTROL,            /* control           key target  Command */
    QB_TOPIC_BACKTEST_REQUESTS,  /* backtest.requests key run id  BacktestRequest */
    QB_TOPIC_BACKTEST_EVENTS,    /* backtest.events   key run id  BacktestEvent */
    QB_TOPIC_NOTIFICATIONS,      /* notifications     key user    Notification */
    QB_TOPIC__BUILTIN_COUNT,
    QB_TOPIC_EXTRA = -1          /* added at run time with qb_topics_add() */
} qb_topic_id_t;

/* A topic as the registry knows it: a plain value, read-only for callers. */
typedef struct qb_topic_s {
    qb_topic_id_t id;       /* QB_TOPIC_EXTRA for qb_topics_add() topics */
    const char *base;       /* name without prefix, e.g. "md.bars" */
    const char *name;       /* the Kafka topic name: prefix + base */
    const char *dlq;        /* its dead-letter topic: name + ".dlq" */
    const char *key;        /* what the record key holds, e.g. "symbol" */
    const char *msg_type;   /* protobuf full name, e.g. "qb.v1.Bar" */
    int partitions;         /* partitions at creation */
} qb_topic_t;

/* Read QB_TOPIC_PREFIX and QB_TOPIC_PARTITIONS and build the names. Called
 * implicitly by every function below; call it yourself to get the error: on
 * a bad value returns QB_ERR_CONFIG naming the variable (and keeps failing;
 * the lookups then return NULL). Idempotent; the environment is read once. */
qb_err_t qb_topics_init(char *errstr, size_t errstr_size);

/* Built-in topic by id; NULL for an out-of-range id or a failed init. */
const qb_topic_t *qb_topic_get(qb_topic_id_t id);

/* Topic by Kafka name ("tenant-a.md.bars") or, for built-in topics, by base
 * name ("md.bars"). NULL when unknown. DLQ names are not topics of their own
 * here: qb_topic_find("md.bars.dlq") is NULL (use qb_topic_resolve). */
const qb_topic_t *qb_topic_find(const char *name);

/* The Kafka name to use for `name`: a registry topic's name when `name` is
 * its base or full name, its DLQ name when `name` is "<base or name>.dlq",
 * else `name` itself (an ad-hoc topic). Never NULL for a non-NULL name. */
const char *qb_topic_resolve(const char *name);

/* Iteration: built-in topics first (in qb_topic_id_t order), then the added
 * ones. qb_topics_at(i) is NULL for i >= qb_topics_count(). */
size_t qb_topics_count(void);
const qb_topic_t *qb_topics_at(size_t i);

/* Register an extra topic (a test topic, a tool's topic) that carries
 * `msg_type`. `name` is the literal Kafka name (no prefix applied); its DLQ
 * is name + ".dlq"; key_doc may be NULL; partitions <= 0 means the default.
 * Copies the strings. Returns the new entry, or the existing one when `name`
 * is already registered with the same type; NULL (with errstr) on a bad name,
 * a type clash or no memory. */
const qb_topic_t *qb_topics_add(const char *name, const char *msg_type,
                                const char *key_doc, int partitions,
                                char *errstr, size_t errstr_size);

/* Message types. qb_topics_type_find("qb.v1.Bar") returns the protobuf-c
 * descriptor for a full name from libs/proto's registry, or NULL when
 * unknown (short names like "Bar" are not accepted here). */
const ProtobufCMessageDescriptor *qb_topics_type_find(const char *full_name);

/* Check a topic name: 1..249 characters of [A-Za-z0-9._-]. */
int qb_topic_name_valid(const char *name);

#endif
