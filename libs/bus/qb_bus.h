/* qb_bus.h — Kafka producer and consumer for Quantbus services, over
 * librdkafka. Handles are opaque; every message is protobuf (protobuf-c)
 * and carries its type in Kafka headers, so any client can decode it.
 *
 * ---- Configuration (both handles, read from the environment) -------------
 *   QB_KAFKA_BROKERS        -> bootstrap.servers (required)
 *   QB_KAFKA_<PROP>=value   -> librdkafka property <prop>, lower-cased with
 *                              '_' turned into '.', e.g.
 *                              QB_KAFKA_SECURITY_PROTOCOL=SASL_SSL,
 *                              QB_KAFKA_SASL_MECHANISMS=PLAIN,
 *                              QB_KAFKA_SSL_CA_LOCATION=/etc/ssl/ca.pem.
 *                              (QB_KAFKA_LOG_LEVEL reaches "log_level": a
 *                              name librdkafka does not know with dots is
 *                              retried with underscores.)
 * An unknown property or a bad value fails creation with a message naming
 * the variable. Values of secret properties (anything with "password",
 * "secret", "ssl.key", "oauthbearer.config" in its name) are never logged or
 * put in an error message. Each applied variable is logged at info.
 *
 * Defaults, tuned for latency on one machine, all overridable by env:
 *   both      client.id=quantbus, socket.nagle.disable=true
 *   producer  linger.ms=1, enable.idempotence=true (forced: see below)
 *   consumer  fetch.wait.max.ms=5, auto.offset.reset=earliest,
 *             session.timeout.ms=10000, heartbeat.interval.ms=1000,
 *             auto.commit.interval.ms=1000, statistics.interval.ms=5000
 * On a real Kafka cluster raise fetch.wait.max.ms (e.g. 100): Kafka answers a
 * fetch as soon as data arrives, so a small value only adds requests; the
 * mock cluster of qb-bus instead always waits the full fetch.wait.max.ms
 * when it has nothing, which is why the default is small.
 * Forced, whatever the environment says (logged as a warning if set):
 *   producer  enable.idempotence=true (architecture rule)
 *   consumer  group.id=<argument>, enable.auto.offset.store=false,
 *             enable.auto.commit=true (the commit strategy below relies on
 *             both).
 *
 * ---- Kafka headers on every message --------------------------------------
 *   qb-type         protobuf full name, e.g. "qb.v1.Bar"
 *   qb-trace-id     trace id (omitted when there is none)
 *   qb-produced-ns  producer's CLOCK_REALTIME at send, ns, decimal text
 *   qb-origin-ns    CLOCK_REALTIME, ns, decimal text, at which the event that
 *                   caused this message entered the platform (a bar's
 *                   publication, an operator's command): the calling
 *                   thread's origin (qb_bus_origin() below) when set, else
 *                   the message's own qb-produced-ns. The consumer sets the
 *                   thread's origin from the incoming message around each
 *                   handler, so every send from a handler carries the
 *                   origin of what it handles, hop after hop, with no code
 *                   in the services: bar -> signal -> order -> report
 *                   latency is now - qb-origin-ns at any hop. A send made
 *                   outside a handler (a batch flushed later, an outbox
 *                   drained after a restart) starts a new origin unless the
 *                   caller sets the one it kept (qb_bus_set_origin).
 * Dead-lettered messages keep the original key, payload and headers and get:
 *   qb-error         the reason, human text
 *   qb-error-code    qb_err_name() of the error, e.g. "DECODE", "INVALID"
 *   qb-source-topic, qb-source-partition, qb-source-offset (decimal text)
 *   qb-source-group  the consumer group that gave up on it
 *
 * ---- Metrics (qb_metrics) -------------------------------------------------
 *   qb_bus_messages_out_total{topic}   delivered (acknowledged) by the broker
 *   qb_bus_messages_in_total{topic}    received by a consumer
 *   qb_bus_errors_total{topic}         failed deliveries, decode failures,
 *                                      handler errors (retriable or not)
 *   qb_bus_dlq_total{topic}            messages of <topic> dead-lettered
 *   qb_bus_consumer_lag{topic,partition}  gauge, from librdkafka statistics
 *                                      (every statistics.interval.ms); set to
 *                                      0 when the partition is revoked
 *   qb_bus_latency_seconds{topic}      histogram: consumer receive time minus
 *                                      qb-produced-ns (needs synced clocks
 *                                      across hosts)
 */
#ifndef QB_BUS_H
#define QB_BUS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "bus/qb_topics.h"
#include "core/qb_err.h"

/* ======================================================================= *
 * Producer
 * ======================================================================= */

/* Idempotent producer. Thread-safe: any number of threads may send through
 * one producer. Delivery reports are served by every send (non-blocking),
 * qb_producer_poll() and qb_producer_flush(); a service that sends rarely
 * should call qb_producer_poll(p, 0) from its loop now and then so failures
 * are counted and logged promptly. */
typedef struct qb_producer_s qb_producer_t;

/* Create from the environment (see above). NULL on error with errstr set,
 * e.g. "QB_KAFKA_NOT_A_PROP=1: No such configuration property: ...". Does
 * not wait for a connection. Free with qb_producer_destroy(). */
qb_producer_t *qb_producer_new(char *errstr, size_t errstr_size);

/* Queue one message. `topic` is resolved with qb_topic_resolve() (so
 * "md.bars" gets QB_TOPIC_PREFIX); for a registry topic `msg_type` must be
 * the topic's message type or QB_ERR_INVALID is returned. key may be NULL;
 * payload is copied (the caller keeps ownership of key and payload).
 * trace_id: NULL means the calling thread's log-context trace id
 * (qb_log_trace(), set by the consumer around each handler, so replies keep
 * the trace); "" means no trace header.
 * When librdkafka's queue is full, serves delivery reports and retries for
 * up to 10 s, then gives up with QB_ERR_UNAVAILABLE.
 * QB_OK means queued, not delivered: delivery failures are counted and
 * reported by qb_producer_flush(). */
qb_err_t qb_producer_send(qb_producer_t *p, const char *topic, const void *key,
                          size_t keylen, const char *msg_type, const void *payload,
                          size_t len, const char *trace_id);

/* Pack `msg` with protobuf-c and send it with msg->descriptor->name as its
 * type. Same contract as qb_producer_send; `msg` stays the caller's. */
qb_err_t qb_producer_send_msg(qb_producer_t *p, const char *topic, const void *key,
                              size_t keylen, const ProtobufCMessage *msg,
                              const char *trace_id);

/* Serve delivery reports, waiting up to timeout_ms for one. Returns how many
 * events were served. */
int qb_producer_poll(qb_producer_t *p, int timeout_ms);

/* Wait up to timeout_ms until every queued message is delivered or failed.
 * QB_OK when nothing remains and no delivery failed since the previous
 * flush; QB_ERR_KAFKA when some failed (count and last reason logged);
 * QB_ERR_TIMEOUT when messages remain. Resets the failure count. */
qb_err_t qb_producer_flush(qb_producer_t *p, int timeout_ms);

/* Messages queued or in flight right now. */
int qb_producer_outq_len(qb_producer_t *p);

/* Delivery watermark, for a service that makes a batch durable while it
 * goes on sending (qb-features): opt in before the first send (allocates a
 * 1 MiB ring; sends then wait when 2^20 reports are outstanding). Every
 * message queued gets the next sequence number: qb_producer_sent_seq() is
 * how many were queued so far, qb_producer_done_seq() the n such that each
 * of the first n has had its delivery report (delivered, failed, or never
 * queued); a failure is counted in qb_producer_failures() (monotonic)
 * before the mark passes it. Reports are served by qb_producer_poll() and
 * sends, as always. */
qb_err_t qb_producer_track_delivery(qb_producer_t *p);
uint64_t qb_producer_sent_seq(qb_producer_t *p);
uint64_t qb_producer_done_seq(qb_producer_t *p);
uint64_t qb_producer_failures(qb_producer_t *p);

/* Flush (up to 5 s; what remains is logged as lost) and free.
 * qb_producer_destroy(NULL) does nothing. */
void qb_producer_destroy(qb_producer_t *p);

/* ======================================================================= *
 * Consumer
 * ======================================================================= */

/* One consumed message as the handler sees it. Everything in it — strings,
 * key, payload and the decoded message — is owned by the consumer and valid
 * only during the handler call: copy what you keep. The consumer frees the
 * decoded message (protobuf_c_message_free_unpacked) after the handler
 * returns; the handler must not free it. */
typedef struct qb_bus_msg_s {
    const char *topic;        /* Kafka topic name */
    int32_t partition;
    int64_t offset;
    const void *key;          /* NULL when the record has no key */
    size_t key_len;
    const void *payload;      /* raw protobuf bytes (may be NULL if len 0) */
    size_t len;
    const char *type;         /* qb-type header, e.g. "qb.v1.Bar" */
    const char *trace_id;     /* qb-trace-id header, "" when absent */
    int64_t produced_ns;      /* qb-produced-ns header, 0 when absent */
    int64_t timestamp_ms;     /* Kafka record timestamp, -1 when absent */
    /* The payload decoded as the topic's registered type; cast it, e.g.
     * (const Qb__V1__Bar *)m->msg. Never NULL in a handler call. */
    const ProtobufCMessage *msg;
    int64_t origin_ns;        /* qb-origin-ns header; produced_ns when absent */
} qb_bus_msg_t;

/* The handler. Return:
 *   QB_OK            handled: the effect is durable (e.g. DB committed). Only
 *                    now is the offset stored for commit.
 *   a retriable error (qb_err_is_retriable: QB_ERR_UNAVAILABLE, QB_ERR_DB,
 *                    QB_ERR_TIMEOUT, ...): the SAME message is delivered
 *                    again after a back-off (100 ms doubling to 5 s by
 *                    default), forever; the partition waits (paused), the
 *                    other partitions go on.
 *   any other error: the message is dead-lettered to the topic's DLQ with
 *                    errstr (or qb_err_str(err) when errstr is empty) as
 *                    qb-error, then its offset is stored and the partition
 *                    moves on.
 * errstr/errstr_size: a buffer for the reason (may be left empty).
 * Runs on the thread that calls qb_consumer_poll(), with the log context set
 * to topic, partition, offset and trace_id (cleared after the call) and the
 * thread's bus origin set to m->origin_ns (restored after the call). */
typedef qb_err_t (*qb_consumer_handler_cb)(const qb_bus_msg_t *m, void *opaque,
                                           char *errstr, size_t errstr_size);

/* A consumer-group member subscribed to `topics`. Not thread-safe: one
 * thread polls it (librdkafka's examples/consumer.c lifecycle).
 *
 * COMMIT STRATEGY (at-least-once, never ahead of the handler):
 *   enable.auto.offset.store=false + enable.auto.commit=true. The offset of
 *   a message is stored (rd_kafka_offset_store) only after its handler
 *   returned QB_OK, or after it was dead-lettered AND the DLQ write was
 *   acknowledged by the broker. librdkafka's auto-commit (every
 *   auto.commit.interval.ms, 1 s) commits only stored offsets, so a
 *   committed offset never covers a message that was not handled. On
 *   partition revoke the stored offsets are committed synchronously before
 *   the partitions are given up; qb_consumer_close() commits BEFORE
 *   leaving the group, then revokes (committing anything newer) and leaves;
 *   librdkafka waits for those commits before it sends LeaveGroup. A crash loses at most ~1 s of commits: those
 *   messages are delivered again (handlers must be idempotent: architecture
 *   rule). Why not commitSync per message: one broker round trip per
 *   message caps a partition at a few thousand msg/s; storing is a memory
 *   write.
 *   A commit can fail (qb-bus's mock cluster refuses every commit while its
 *   group rebalances; real Kafka accepts them while preparing one). So the
 *   consumer remembers, per partition, the offset after the last message IT
 *   handled; when a partition is assigned (back) to it and the group's
 *   committed offset is behind that, it starts there instead — and stores
 *   it for the next commit — rather than handling those messages again.
 *   Safe: every offset below it was handled by this consumer.
 *
 * REBALANCING: a rebalance_cb handles both protocols. The default assignor
 *   (range,roundrobin) is EAGER: all partitions are revoked (after a
 *   synchronous commit) and reassigned. Setting
 *   QB_KAFKA_PARTITION_ASSIGNMENT_STRATEGY=cooperative-sticky switches to
 *   incremental (cooperative) rebalancing, handled by the same callback.
 *   A lost assignment (session timed out) is not committed.
 *
 * `topics`: n names, each a registry topic (base or Kafka name; see
 * qb_topics.h, qb_topics_add for extra ones) whose message type has a
 * descriptor linked in; otherwise creation fails saying which. The strings
 * are copied. `handler` is required; `opaque` is passed to it untouched.
 * NULL on error with errstr set. Free with qb_consumer_destroy(). */
typedef struct qb_consumer_s qb_consumer_t;
qb_consumer_t *qb_consumer_new(const char *group_id, const char *const *topics,
                               size_t n, qb_consumer_handler_cb handler,
                               void *opaque, char *errstr, size_t errstr_size);

/* Retry back-off for retriable handler errors: first delay initial_ms,
 * doubling up to max_ms (defaults 100 and 5000). */
void qb_consumer_set_retry_backoff(qb_consumer_t *c, int initial_ms, int max_ms);

/* Deferred offsets, for handlers that batch their effects (a COPY every few
 * thousand records): with on = 1, a record handled OK (or dead-lettered)
 * is NOT stored for commit at once; its offset waits until the application
 * has made the batch durable and calls qb_consumer_store_pending(). So a
 * committed offset still never covers a record whose effect could be lost.
 * Set before the first poll. */
void qb_consumer_set_deferred_store(qb_consumer_t *c, int on);

/* Store every deferred offset (the latest per partition) for the next
 * commit. Called from inside a handler it covers the records handled
 * before the current one. QB_OK, or the error of storing (partitions no longer assigned are
 * skipped and logged: their records go to the next owner again). */
qb_err_t qb_consumer_store_pending(qb_consumer_t *c);

/* Partitions with deferred offsets not yet stored. */
size_t qb_consumer_pending(const qb_consumer_t *c);

/* The deferred offsets as they stand now, taken out (NULL when none or out
 * of memory, then they stay pending): for a batch written while the
 * consumer goes on (its later records are not in it). Store them with
 * qb_consumer_store_taken() once the batch's effects are durable (same
 * contract as qb_consumer_store_pending; it frees `o`), or drop them with
 * qb_offsets_free() (their records are handled again after a restart).
 * Offsets of partitions revoked meanwhile are skipped and logged. */
typedef struct qb_offsets_s qb_offsets_t;
qb_offsets_t *qb_consumer_pending_take(qb_consumer_t *c);
qb_err_t qb_consumer_store_taken(qb_consumer_t *c, qb_offsets_t *o);
void qb_offsets_free(qb_offsets_t *o);

/* Called inside a rebalance (and at close) when partitions are taken away,
 * BEFORE the consumer commits: flush and qb_consumer_store_pending() here so
 * the work done on them is committed; drop per-partition state. Deferred
 * offsets still pending afterwards on those partitions are forgotten (the
 * next owner handles those records again). `parts` is librdkafka's
 * rd_kafka_topic_partition_list_t (opaque here: see qb_consumer_revoked_*). */
typedef void (*qb_consumer_revoke_cb)(void *opaque, const void *parts);
void qb_consumer_set_revoke_cb(qb_consumer_t *c, qb_consumer_revoke_cb cb, void *opaque);

/* The revoked partitions passed to a revoke callback: how many, and the
 * topic (Kafka name) and partition number of the i-th. */
int qb_consumer_revoked_count(const void *parts);
const char *qb_consumer_revoked_topic(const void *parts, int i);
int32_t qb_consumer_revoked_partition(const void *parts, int i);

/* Wait up to timeout_ms for one message and deal with it (handle, dead-letter
 * or schedule its retry); also serves rebalances, statistics and errors.
 * Returns QB_OK when a message was dealt with, QB_ERR_TIMEOUT when none came,
 * QB_ERR_KAFKA when the consumer failed fatally (close and destroy it).
 * Handler errors are never returned: they are retried or dead-lettered. */
qb_err_t qb_consumer_poll(qb_consumer_t *c, int timeout_ms);

/* Poll until *running becomes 0 (flip it from a signal handler), then
 * qb_consumer_close(). Returns QB_OK, or QB_ERR_KAFKA after a fatal error
 * (the consumer is closed either way). */
qb_err_t qb_consumer_run(qb_consumer_t *c, volatile sig_atomic_t *running);

/* Commit what was handled, leave the group (partitions are reassigned to
 * the other members at once) and stop. Bounded: gives up after 5 s (e.g.
 * the coordinator is gone; returns QB_ERR_TIMEOUT, what was not committed
 * is delivered again later), so SIGTERM handling stays quick. Idempotent.
 * After close only qb_consumer_destroy() may be called. */
qb_err_t qb_consumer_close(qb_consumer_t *c);

/* Close if needed and free. qb_consumer_destroy(NULL) does nothing. */
void qb_consumer_destroy(qb_consumer_t *c);

/* ======================================================================= *
 * Origin (qb-origin-ns)
 * ======================================================================= */

/* The calling thread's origin time (CLOCK_REALTIME ns; 0 = none): what the
 * next send from this thread writes as qb-origin-ns. Set by the consumer
 * around each handler (see qb_consumer_handler_cb). */
int64_t qb_bus_origin(void);

/* Set the calling thread's origin (0 clears it: the next send starts a new
 * origin, its own produced time). For code that sends outside the handler
 * that received the cause, e.g. a batch flushed later: keep m->origin_ns
 * with the staged item, and around its send
 *     int64_t was = qb_bus_origin(); qb_bus_set_origin(kept);
 *     qb_producer_send(...); qb_bus_set_origin(was);
 * Returns the previous value. */
int64_t qb_bus_set_origin(int64_t origin_ns);

/* ======================================================================= *
 * Readiness
 * ======================================================================= */

/* Ask the cluster for metadata: QB_OK when a broker answered within
 * timeout_ms, QB_ERR_UNAVAILABLE (with errstr) otherwise. brokers: a
 * bootstrap list, or NULL for QB_KAFKA_BROKERS; the other QB_KAFKA_*
 * settings (security ...) apply. Creates and destroys a short-lived client:
 * meant for /readyz, not for a hot path. */
qb_err_t qb_bus_ping(const char *brokers, int timeout_ms, char *errstr,
                     size_t errstr_size);

#endif
