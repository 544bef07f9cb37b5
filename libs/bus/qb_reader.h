/* qb_reader.h — read a topic without a consumer group: every partition
 * assigned directly, from the beginning, from the end or from a wall-clock
 * time, nothing committed. For tools (`qbctl tail`), tests, inspection of
 * dead-letter topics and services that read their own output back before
 * sending it again (qb-features, qb-execution: "was this id already
 * sent?"); a service that must not lose messages uses a group consumer
 * (qb_bus.h).
 *
 * Configuration comes from the environment exactly as for qb_bus.h
 * (QB_KAFKA_BROKERS, QB_KAFKA_<PROP>). Not thread-safe: one thread reads. */
#ifndef QB_READER_H
#define QB_READER_H

#include <stddef.h>
#include <stdint.h>

#include "bus/qb_bus.h"

typedef struct qb_reader_s qb_reader_t;

/* Open `topic` (resolved with qb_topic_resolve, so "md.bars" and
 * "md.bars.dlq" work) on all its partitions, starting at the oldest retained
 * message (from_beginning) or at the end. Waits up to timeout_ms for the
 * topic's metadata. NULL with errstr set when the topic does not exist or
 * the cluster cannot be reached. Free with qb_reader_destroy(). */
qb_reader_t *qb_reader_new(const char *topic, int from_beginning, int timeout_ms,
                           char *errstr, size_t errstr_size);

/* Open `topic` on all its partitions, each starting at its first message
 * whose Kafka timestamp is >= since_ms (ms since the epoch); a partition
 * with nothing that new starts at its end. since_ms <= 0: from the oldest
 * retained message. The high watermark of every partition is read at open:
 * qb_reader_caught_up() then says when everything that was on the topic at
 * open has been read, so a scan stops when it is done instead of waiting
 * for a timeout.
 * The start offsets come from the broker's timestamp lookup
 * (rd_kafka_offsets_for_times). qb-bus (librdkafka's mock cluster) does not
 * implement it (it answers "none" for every partition), so an answer of
 * "none" for a partition whose last message IS that new is not believed:
 * the offset is then found by a binary search over the partition's offsets
 * (reading one message per probe), which assumes timestamps grow with
 * offsets (CreateTime of producers with synced clocks: give since_ms a
 * margin). All network waits are bounded by timeout_ms each. NULL on
 * error with errstr set and *code (if code is not NULL) saying which:
 * QB_ERR_NOT_FOUND when the topic does not exist (so holds nothing),
 * QB_ERR_UNAVAILABLE when the cluster did not answer, QB_ERR_KAFKA or
 * QB_ERR_NOMEM otherwise; QB_OK on success. */
qb_reader_t *qb_reader_new_since(const char *topic, int64_t since_ms, int timeout_ms,
                                 qb_err_t *code, char *errstr, size_t errstr_size);

/* 1 when every partition of a qb_reader_new_since() reader has been read up
 * to the high watermark it had at open (messages produced since may follow),
 * else 0. Always 0 for a qb_reader_new() reader (no watermarks read). */
int qb_reader_caught_up(qb_reader_t *r);

/* Messages a qb_reader_new_since() reader had to read at open (sum over the
 * partitions of high watermark - start offset); 0 for qb_reader_new(). */
int64_t qb_reader_backlog(const qb_reader_t *r);

/* Wait up to timeout_ms for the next message. On QB_OK *out describes it;
 * its pointers stay valid until the next qb_reader_next() or destroy.
 * out->msg is the payload decoded with the type of its qb-type header (or
 * of the topic's registry type when the header is missing), NULL when it
 * cannot be decoded (then *decode_err, if non-NULL, says why).
 * QB_ERR_TIMEOUT when none came; QB_ERR_KAFKA on a fatal consumer error. */
qb_err_t qb_reader_next(qb_reader_t *r, int timeout_ms, qb_bus_msg_t *out,
                        const char **decode_err);

/* Look up a Kafka header of the current message; NULL if absent. The
 * string is valid until the next qb_reader_next(). */
const char *qb_reader_header(qb_reader_t *r, const char *name);

/* Free. NULL is a no-op. */
void qb_reader_destroy(qb_reader_t *r);

/* Partitions of `topic` as the cluster reports them; -1 with errstr when
 * the topic is unknown or the cluster does not answer in timeout_ms. */
int qb_bus_partition_count(const char *topic, int timeout_ms, char *errstr,
                           size_t errstr_size);

#endif
