/* qb_reader.h — read a topic without a consumer group: every partition
 * assigned directly, from the beginning or from the end, nothing committed.
 * For tools (`qbctl tail`), tests and inspection of dead-letter topics; a
 * service that must not lose messages uses a group consumer (qb_bus.h).
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
