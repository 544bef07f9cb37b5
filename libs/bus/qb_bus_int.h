/* qb_bus_int.h — internals shared by qb_bus.c, qb_producer.c and
 * qb_consumer.c. Not part of the public API: nothing outside libs/bus
 * includes it. */
#ifndef QB_BUS_INT_H
#define QB_BUS_INT_H

#include <librdkafka/rdkafka.h>

#include "bus/qb_bus.h"

typedef enum qb_bus_kind_e {
    QB_BUS_KIND_PRODUCER,
    QB_BUS_KIND_CONSUMER,
    QB_BUS_KIND_PING /* short-lived metadata client */
} qb_bus_kind_t;

/* A librdkafka configuration: defaults for `kind`, then every QB_KAFKA_*
 * variable, then the forced settings. brokers NULL -> QB_KAFKA_BROKERS.
 * group_id is used for QB_BUS_KIND_CONSUMER only. Sets the log and error
 * callbacks. NULL on error (errstr names the variable). The caller owns the
 * result until rd_kafka_new() succeeds. */
rd_kafka_conf_t *qb__bus_conf_new(qb_bus_kind_t kind, const char *brokers,
                                  const char *group_id, char *errstr,
                                  size_t errstr_size);

/* CLOCK_REALTIME / CLOCK_MONOTONIC helpers. */
int64_t qb__bus_realtime_ns(void);
int64_t qb__bus_mono_ms(void);

/* Map a librdkafka error to a qb_err_t. */
qb_err_t qb__bus_err(rd_kafka_resp_err_t err);

/* Queue a message with ready-made headers (ownership of hdrs passes to this
 * function, success or not). The payload is copied. Used for the DLQ. */
qb_err_t qb__producer_send_hdrs(qb_producer_t *p, const char *topic, const void *key,
                                size_t keylen, const void *payload, size_t len,
                                rd_kafka_headers_t *hdrs);

/* Drop everything queued or in flight (their failures are not counted):
 * after a DLQ write that was not acknowledged in time, so the retry does
 * not find the stale copy still waiting. */
void qb__producer_purge(qb_producer_t *p);

#endif
