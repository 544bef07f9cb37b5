/* qb_consumer.c — the consumer-group member; see qb_bus.h for the contract
 * and the commit strategy.
 *
 * One message at a time, on the polling thread:
 *   poll -> headers -> decode with the topic's registered descriptor ->
 *   handler -> OK:            store offset (auto-commit commits it later)
 *              retriable:     pause the partition, seek it back to this
 *                             message, resume after a back-off: the same
 *                             message comes again, the other partitions go on
 *              other / decode: write to <topic>.dlq, wait for the broker's
 *                             ack, then store the offset
 *
 * Owns: the librdkafka handle, a copy of the group id, the subscribed topic
 * table (registry entry + descriptor + metric pointers), the list of
 * partitions waiting for a retry, the per-partition "handled up to" table
 * (see qb_bus.h: resuming after a failed commit), and a producer for the
 * DLQ (created on first use). The decoded message given to the handler is
 * freed here right after the handler returns. Metrics: per topic messages
 * in, errors, DLQ writes, latency; per partition the lag and whether it is
 * assigned (qb_bus_assigned_partitions, set on rebalance).
 *
 * Retry and pause: librdkafka resumes a paused partition from the position
 * of the last message handed to the application, unless it was sought: so
 * the order is pause, then seek to the failed offset, later resume (the
 * librdkafka maintainers' recipe). Messages of a paused partition that were
 * already queued are dropped here (they come again after the seek). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bus/qb_bus_int.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"

#define QB_CONSUMER_DLQ_ACK_MS 10000 /* wait this long for the DLQ write */
#define QB_CONSUMER_SEEK_MS 2000
#define QB_CONSUMER_CLOSE_MS 5000    /* bound on leaving the group */

typedef struct qb_ctopic_s {
    const qb_topic_t *t;
    const ProtobufCMessageDescriptor *desc;
    qb_counter_t *in, *err, *dlq;
    qb_hist_t *lat;
} qb_ctopic_t;

/* A partition whose current message failed with a retriable error. */
typedef struct qb_retry_s {
    const qb_ctopic_t *ct;
    int32_t partition;
    int64_t offset;      /* the message to deliver again */
    int attempts;        /* failed attempts of that offset so far */
    int paused;          /* 1 while waiting for resume_at */
    int64_t resume_at;   /* monotonic ms */
} qb_retry_t;

/* Deferred mode: the next offset to store once the caller says its effects
 * are durable (qb_consumer_store_pending). */
typedef struct qb_pending_s {
    const qb_ctopic_t *ct;
    int32_t partition;
    int64_t next;
} qb_pending_t;

/* The next offset after what THIS consumer handled on a partition. */
typedef struct qb_handled_s {
    const qb_ctopic_t *ct;
    int32_t partition;
    int64_t next;
} qb_handled_t;

struct qb_consumer_s {
    rd_kafka_t *rk;
    char *group;
    qb_ctopic_t *topics;
    size_t ntopics;
    qb_consumer_handler_cb handler;
    void *opaque;
    qb_retry_t *retries;
    size_t nretries, capretries;
    int backoff_initial_ms, backoff_max_ms;
    qb_handled_t *handled;
    size_t nhandled, caphandled, lasthandled;
    qb_producer_t *dlq;
    int deferred;          /* qb_consumer_set_deferred_store */
    qb_pending_t *pending; /* deferred offsets, one per partition */
    size_t npending, cappending;
    qb_consumer_revoke_cb revoke_cb;
    void *revoke_opaque;
    int closed;
    int closing;          /* inside qb_consumer_close() */
    int close_incomplete; /* close gave up: destroy must not close again */
    int fatal;
};

/* ---- small helpers ------------------------------------------------------ */

static const qb_ctopic_t *qb_consumer_ctopic(const qb_consumer_t *c, const char *name) {
    for (size_t i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i].t->name, name) == 0) return &c->topics[i];
    return NULL;
}

static qb_retry_t *qb_consumer_retry_find(qb_consumer_t *c, const qb_ctopic_t *ct,
                                          int32_t partition) {
    for (size_t i = 0; i < c->nretries; i++)
        if (c->retries[i].ct == ct && c->retries[i].partition == partition)
            return &c->retries[i];
    return NULL;
}

static void qb_consumer_retry_remove(qb_consumer_t *c, qb_retry_t *r) {
    size_t i = (size_t)(r - c->retries);
    c->retries[i] = c->retries[--c->nretries];
}

static qb_handled_t *qb_consumer_handled_find(qb_consumer_t *c, const qb_ctopic_t *ct,
                                              int32_t partition) {
    if (c->lasthandled < c->nhandled && c->handled[c->lasthandled].ct == ct &&
        c->handled[c->lasthandled].partition == partition)
        return &c->handled[c->lasthandled];
    for (size_t i = 0; i < c->nhandled; i++)
        if (c->handled[i].ct == ct && c->handled[i].partition == partition) {
            c->lasthandled = i;
            return &c->handled[i];
        }
    return NULL;
}

static void qb_consumer_handled_note(qb_consumer_t *c, const qb_ctopic_t *ct,
                                     int32_t partition, int64_t next) {
    qb_handled_t *h = qb_consumer_handled_find(c, ct, partition);
    if (!h) {
        if (c->nhandled == c->caphandled) {
            size_t cap = c->caphandled ? c->caphandled * 2 : 16;
            qb_handled_t *nh = realloc(c->handled, cap * sizeof(*nh));
            if (!nh) return; /* only an optimisation: fine to forget */
            c->handled = nh;
            c->caphandled = cap;
        }
        h = &c->handled[c->nhandled++];
        h->ct = ct;
        h->partition = partition;
    }
    h->next = next;
}

/* Partitions coming (back) to us: where the group's committed offset is
 * behind what this consumer itself handled there (its last commit failed,
 * e.g. refused during a rebalance), start after what we handled instead of
 * handling it again. Safe: every offset below `next` was handled here.
 * Returns the partitions whose start moved (to be stored for commit once
 * assigned), or NULL. */
static rd_kafka_topic_partition_list_t *
qb_consumer_resume_handled(qb_consumer_t *c, rd_kafka_topic_partition_list_t *parts) {
    int any = 0;
    for (int i = 0; i < parts->cnt && !any; i++) {
        const qb_ctopic_t *ct = qb_consumer_ctopic(c, parts->elems[i].topic);
        any = ct && qb_consumer_handled_find(c, ct, parts->elems[i].partition);
    }
    if (!any) return NULL;
    rd_kafka_topic_partition_list_t *moved = NULL;
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(c->rk, q, 5000);
    for (int i = 0; !err && i < q->cnt; i++) {
        const qb_ctopic_t *ct = qb_consumer_ctopic(c, q->elems[i].topic);
        qb_handled_t *h = ct ? qb_consumer_handled_find(c, ct, q->elems[i].partition) : NULL;
        if (!h || q->elems[i].err || h->next <= q->elems[i].offset) continue;
        QB_INFO("%s [%d]: group committed %" PRId64 " but this consumer handled up to %" PRId64
                ": resuming there", q->elems[i].topic, (int)q->elems[i].partition,
                q->elems[i].offset, h->next);
        parts->elems[i].offset = h->next;
        if (!moved) moved = rd_kafka_topic_partition_list_new(parts->cnt);
        rd_kafka_topic_partition_list_add(moved, q->elems[i].topic, q->elems[i].partition)
            ->offset = h->next;
    }
    if (err) QB_WARN("cannot read committed offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(q);
    return moved;
}

/* Copy header `name` as a NUL-terminated string; "" when absent. */
static void qb_consumer_header(rd_kafka_headers_t *hdrs, const char *name, char *out,
                               size_t cap) {
    const void *v = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &n) || !v) return;
    if (n >= cap) n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static void qb_consumer_lag_gauge(const char *topic, const char *partition, double v) {
    char labels[320];
    snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%s\"", topic, partition);
    qb_gauge_set(qb_metrics_gauge("qb_bus_consumer_lag",
                                  "Messages between the partition end and the "
                                  "consumer's stored offset",
                                  labels),
                 v);
}

/* qb_bus_assigned_partitions{group,topic,partition}: 1 while this consumer
 * owns the partition, 0 after it was revoked; set in the rebalance callback
 * only (rare), so the poll path pays nothing. Summed over replicas it shows
 * how a group split the partitions. */
static void qb_consumer_assigned_gauge(const qb_consumer_t *c,
                                       const rd_kafka_topic_partition_list_t *parts,
                                       double v) {
    for (int i = 0; i < parts->cnt; i++) {
        char labels[400];
        snprintf(labels, sizeof(labels), "group=\"%s\",topic=\"%s\",partition=\"%d\"",
                 c->group, parts->elems[i].topic, (int)parts->elems[i].partition);
        qb_gauge_set(qb_metrics_gauge("qb_bus_assigned_partitions",
                                      "1 while this consumer is assigned the partition "
                                      "(its group's split), 0 after revocation",
                                      labels),
                     v);
    }
}

/* ---- callbacks ---------------------------------------------------------- */

/* librdkafka statistics JSON -> qb_bus_consumer_lag{topic,partition}. */
static int qb_consumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    (void)opaque;
    cJSON *root = cJSON_ParseWithLength(json, len);
    cJSON *topics = root ? cJSON_GetObjectItemCaseSensitive(root, "topics") : NULL;
    cJSON *t, *p;
    cJSON_ArrayForEach(t, topics) {
        cJSON *parts = cJSON_GetObjectItemCaseSensitive(t, "partitions");
        cJSON_ArrayForEach(p, parts) {
            if (!p->string || strcmp(p->string, "-1") == 0) continue;
            cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag_stored");
            if (!cJSON_IsNumber(lag)) lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag");
            if (!cJSON_IsNumber(lag) || lag->valuedouble < 0) continue;
            qb_consumer_lag_gauge(t->string, p->string, lag->valuedouble);
        }
    }
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

static void qb_consumer_log_parts(const char *what,
                                  const rd_kafka_topic_partition_list_t *parts) {
    char buf[1024];
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && pos + 1 < sizeof(buf); i++) {
        int w = snprintf(buf + pos, sizeof(buf) - pos, "%s%s[%d]", i ? " " : "",
                         parts->elems[i].topic, (int)parts->elems[i].partition);
        if (w < 0) break;
        pos += (size_t)w;
    }
    QB_INFO("%s %d partition(s): %s", what, parts->cnt, buf);
}

static void qb_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *parts,
                                     void *opaque) {
    qb_consumer_t *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        qb_consumer_log_parts("assigned", parts);
        rd_kafka_topic_partition_list_t *moved = qb_consumer_resume_handled(c, parts);
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else aerr = rd_kafka_assign(rk, parts);
        if (moved && !error && !aerr) { /* commit what we had handled there */
            rd_kafka_resp_err_t serr = rd_kafka_offsets_store(rk, moved);
            if (serr) QB_WARN("cannot store resumed offsets: %s", rd_kafka_err2str(serr));
        }
        if (moved) rd_kafka_topic_partition_list_destroy(moved);
        if (!error && !aerr) qb_consumer_assigned_gauge(c, parts, 1);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            QB_ERROR("rebalance error: %s", rd_kafka_err2str(err));
        qb_consumer_log_parts("revoked", parts);
        /* Let the application make its effects durable (and store them)
         * before the commit; then forget what it left pending there: those
         * records go to the next owner again. */
        if (c->revoke_cb) c->revoke_cb(c->revoke_opaque, parts);
        for (int i = 0; i < parts->cnt; i++)
            for (size_t k = 0; k < c->npending;) {
                if (c->pending[k].partition == parts->elems[i].partition &&
                    strcmp(c->pending[k].ct->t->name, parts->elems[i].topic) == 0)
                    c->pending[k] = c->pending[--c->npending];
                else
                    k++;
            }
        if (rd_kafka_assignment_lost(rk)) {
            QB_WARN("assignment lost (session timed out?): not committing");
        } else {
            /* Commit what was handled before the partitions go elsewhere:
             * synchronously, except while closing (bounded there; librdkafka
             * still waits for the commit before leaving). */
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, c->closing);
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                QB_WARN("commit on revoke failed: %s", rd_kafka_err2str(cerr));
        }
        for (int i = 0; i < parts->cnt; i++) {
            const qb_ctopic_t *ct = qb_consumer_ctopic(c, parts->elems[i].topic);
            qb_retry_t *r = ct ? qb_consumer_retry_find(c, ct, parts->elems[i].partition)
                               : NULL;
            if (r) qb_consumer_retry_remove(c, r);
            char pbuf[16];
            snprintf(pbuf, sizeof(pbuf), "%d", (int)parts->elems[i].partition);
            qb_consumer_lag_gauge(parts->elems[i].topic, pbuf, 0);
        }
        qb_consumer_assigned_gauge(c, parts, 0);
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        QB_ERROR("incremental assignment change failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        QB_ERROR("assignment change failed: %s", rd_kafka_err2str(aerr));
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

qb_consumer_t *qb_consumer_new(const char *group_id, const char *const *topics,
                               size_t n, qb_consumer_handler_cb handler,
                               void *opaque, char *errstr, size_t errstr_size) {
    char rerr[512];
    if (qb_topics_init(errstr, errstr_size)) return NULL;
    if (!group_id || !*group_id || !topics || n == 0 || !handler) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "consumer: group id, at least one topic and a handler are required");
        return NULL;
    }
    qb_consumer_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->group = strdup(group_id)) ||
        !(c->topics = calloc(n, sizeof(*c->topics)))) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "consumer: out of memory");
        goto fail;
    }
    c->handler = handler;
    c->opaque = opaque;
    c->backoff_initial_ms = 100;
    c->backoff_max_ms = 5000;

    for (size_t i = 0; i < n; i++) {
        const qb_topic_t *t = qb_topic_find(topics[i]);
        if (!t) {
            qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                       "topic %s is not in the topic registry (qb_topics.h; extra "
                       "topics need qb_topics_add)", topics[i] ? topics[i] : "(null)");
            goto fail;
        }
        if (qb_consumer_ctopic(c, t->name)) continue; /* listed twice */
        const ProtobufCMessageDescriptor *d = qb_topics_type_find(t->msg_type);
        if (!d) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "topic %s carries %s, a message type libs/proto does not know "
                       "(add it to proto/qb/v1 and the registry in qb_proto.c)",
                       t->name, t->msg_type);
            goto fail;
        }
        qb_ctopic_t *ct = &c->topics[c->ntopics++];
        char labels[300];
        snprintf(labels, sizeof(labels), "topic=\"%s\"", t->name);
        ct->t = t;
        ct->desc = d;
        ct->in = qb_metrics_counter("qb_bus_messages_in_total",
                                    "Messages received from Kafka", labels);
        ct->err = qb_metrics_counter("qb_bus_errors_total",
                                     "Kafka delivery, decode and handler errors", labels);
        ct->dlq = qb_metrics_counter("qb_bus_dlq_total",
                                     "Messages sent to the dead-letter topic", labels);
        ct->lat = qb_metrics_histogram("qb_bus_latency_seconds",
                                       "Produce to consume latency (qb-produced-ns)",
                                       labels);
    }

    rd_kafka_conf_t *conf = qb__bus_conf_new(QB_BUS_KIND_CONSUMER, NULL, group_id,
                                             errstr, errstr_size);
    if (!conf) goto fail;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, qb_consumer_rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, qb_consumer_stats_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof(rerr));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                   "cannot create Kafka consumer: %s (check the QB_KAFKA_* settings)",
                   rerr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk); /* one queue: consumer_poll serves all */

    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new((int)c->ntopics);
    for (size_t i = 0; i < c->ntopics; i++)
        rd_kafka_topic_partition_list_add(sub, c->topics[i].t->name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        qb_err_set(errstr, errstr_size, QB_ERR_KAFKA, "subscribe failed: %s",
                   rd_kafka_err2str(serr));
        goto fail;
    }
    QB_INFO("consumer %s: group %s, %zu topic(s), first %s", rd_kafka_name(c->rk),
            group_id, c->ntopics, c->topics[0].t->name);
    return c;
fail:
    if (c) {
        if (c->rk) {
            c->closed = 1;
            rd_kafka_consumer_close(c->rk);
            rd_kafka_destroy(c->rk);
        }
        free(c->topics);
        free(c->group);
        free(c);
    }
    return NULL;
}

void qb_consumer_set_retry_backoff(qb_consumer_t *c, int initial_ms, int max_ms) {
    if (!c) return;
    c->backoff_initial_ms = initial_ms > 0 ? initial_ms : 1;
    c->backoff_max_ms = max_ms >= c->backoff_initial_ms ? max_ms : c->backoff_initial_ms;
}

qb_err_t qb_consumer_close(qb_consumer_t *c) {
    if (!c) return QB_ERR_INVALID;
    if (c->closed) return QB_OK;
    c->closed = 1;
    c->closing = 1; /* the rebalance callback commits asynchronously now */
    /* Commit first, while the group is (most likely) stable: once we leave,
     * the group rebalances, and a broker may refuse commits during a
     * rebalance (the mock cluster of qb-bus always does). Asynchronous:
     * librdkafka waits for commits in flight before it leaves the group, and
     * the wait below is bounded even when the coordinator is gone. */
    if (!c->fatal) {
        rd_kafka_resp_err_t cerr = rd_kafka_commit(c->rk, NULL, 1 /* async */);
        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            QB_WARN("commit on close failed: %s", rd_kafka_err2str(cerr));
    }
    /* Unsubscribe first and serve the revoke it causes with the ordinary
     * poll (the rebalance callback commits anything newer), so the close
     * below finds nothing assigned and no rebalance in flight: librdkafka
     * 2.0.2 can abort ("rd_kafka_cgrp_terminated: assert:
     * !rd_kafka_assignment_in_progress") when a rebalance is still going on
     * as the group terminates. Records fetched meanwhile are not handled
     * (not stored: they go to the next owner). Bounded by
     * QB_CONSUMER_CLOSE_MS like the rest. */
    int64_t unsub_deadline = qb__bus_mono_ms() + QB_CONSUMER_CLOSE_MS;
    if (!c->fatal && rd_kafka_unsubscribe(c->rk) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        while (qb__bus_mono_ms() < unsub_deadline) {
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 50);
            if (rkm) {
                rd_kafka_message_destroy(rkm);
                continue;
            }
            rd_kafka_topic_partition_list_t *a = NULL;
            int empty = rd_kafka_assignment(c->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                        a && a->cnt == 0;
            if (a) rd_kafka_topic_partition_list_destroy(a);
            if (empty) break;
        }
    }
    /* Leave the group; served here, for at most QB_CONSUMER_CLOSE_MS. */
    qb_err_t ret = QB_OK;
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(c->rk, q);
    if (error) {
        QB_WARN("consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        ret = QB_ERR_KAFKA;
    } else {
        int64_t deadline = qb__bus_mono_ms() + QB_CONSUMER_CLOSE_MS;
        /* Served as events, not with rd_kafka_queue_poll_callback: records
         * fetched before the close still arrive on this queue, and the
         * callback server aborts on an op it cannot hand to a callback
         * ("rd_kafka_q_serve: assert: res != RD_KAFKA_OP_RES_PASS", seen
         * under ASan timing). The rebalance callback still runs; records that
         * come as events are dropped unhandled (not stored: the next owner
         * gets them). */
        while (!rd_kafka_consumer_closed(c->rk) && qb__bus_mono_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (!ev) continue;
            /* A rebalance comes as an event here: run our callback on it. */
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                qb_consumer_rebalance_cb(c->rk, rd_kafka_event_error(ev),
                                         rd_kafka_event_topic_partition_list(ev), c);
            rd_kafka_event_destroy(ev);
        }
        if (!rd_kafka_consumer_closed(c->rk)) {
            QB_WARN("consumer close: group %s not left after %d ms (coordinator "
                    "unreachable?): giving up; what was not committed will be "
                    "delivered again", c->group, QB_CONSUMER_CLOSE_MS);
            c->close_incomplete = 1;
            ret = QB_ERR_TIMEOUT;
        } else {
            QB_INFO("consumer %s left group %s", rd_kafka_name(c->rk), c->group);
        }
    }
    rd_kafka_queue_destroy(q);
    c->closing = 0;
    qb_producer_destroy(c->dlq);
    c->dlq = NULL;
    return ret;
}

void qb_consumer_destroy(qb_consumer_t *c) {
    if (!c) return;
    qb_consumer_close(c);
    /* A close that timed out must not be retried (and block) by destroy. */
    rd_kafka_destroy_flags(c->rk, c->close_incomplete ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE
                                                      : 0);
    free(c->retries);
    free(c->handled);
    free(c->pending);
    free(c->topics);
    free(c->group);
    free(c);
}

/* ---- one message -------------------------------------------------------- */

static void qb_consumer_defer(qb_consumer_t *c, const qb_ctopic_t *ct, int32_t partition,
                              int64_t next) {
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].ct == ct && c->pending[i].partition == partition) {
            c->pending[i].next = next;
            return;
        }
    if (c->npending == c->cappending) {
        size_t cap = c->cappending ? c->cappending * 2 : 16;
        qb_pending_t *np = realloc(c->pending, cap * sizeof(*np));
        if (!np) {
            QB_WARN("out of memory: offset %" PRId64 " not stored (handled again later)",
                    next - 1);
            return;
        }
        c->pending = np;
        c->cappending = cap;
    }
    c->pending[c->npending++] = (qb_pending_t){ct, partition, next};
}

static void qb_consumer_store(qb_consumer_t *c, const qb_ctopic_t *ct,
                              const rd_kafka_message_t *rkm) {
    if (c->deferred) {
        qb_consumer_defer(c, ct, rkm->partition, rkm->offset + 1);
        return;
    }
    /* Stores offset + 1: the next message to read, what Kafka commits. */
    rd_kafka_resp_err_t err = rd_kafka_offset_store(rkm->rkt, rkm->partition, rkm->offset);
    if (err)
        QB_WARN("cannot store offset %" PRId64 ": %s (partition no longer assigned?)",
                rkm->offset, rd_kafka_err2str(err));
    else
        qb_consumer_handled_note(c, ct, rkm->partition, rkm->offset + 1);
}

/* Pause the partition and rewind it to this message; resume after back-off. */
static void qb_consumer_schedule_retry(qb_consumer_t *c, const qb_ctopic_t *ct,
                                       const rd_kafka_message_t *rkm, qb_err_t why) {
    qb_retry_t *r = qb_consumer_retry_find(c, ct, rkm->partition);
    if (!r) {
        if (c->nretries == c->capretries) {
            size_t cap = c->capretries ? c->capretries * 2 : 8;
            qb_retry_t *nr = realloc(c->retries, cap * sizeof(*nr));
            QB_ASSERT(nr != NULL); /* a few dozen bytes: nothing sane to do */
            c->retries = nr;
            c->capretries = cap;
        }
        r = &c->retries[c->nretries++];
        memset(r, 0, sizeof(*r));
        r->ct = ct;
        r->partition = rkm->partition;
    }
    if (r->offset != rkm->offset) r->attempts = 0;
    r->offset = rkm->offset;
    r->attempts++;
    int64_t delay = c->backoff_initial_ms;
    for (int i = 1; i < r->attempts && delay < c->backoff_max_ms; i++) delay *= 2;
    if (delay > c->backoff_max_ms) delay = c->backoff_max_ms;

    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ct->t->name, rkm->partition)->offset = rkm->offset;
    rd_kafka_resp_err_t perr = rd_kafka_pause_partitions(c->rk, l);
    rd_kafka_error_t *serr = rd_kafka_seek_partitions(c->rk, l, QB_CONSUMER_SEEK_MS);
    if (perr || l->elems[0].err)
        QB_ERROR("cannot pause/seek for retry: %s",
                 rd_kafka_err2str(perr ? perr : l->elems[0].err));
    if (serr) {
        QB_ERROR("seek for retry failed: %s", rd_kafka_error_string(serr));
        rd_kafka_error_destroy(serr);
    }
    rd_kafka_topic_partition_list_destroy(l);
    r->paused = 1;
    r->resume_at = qb__bus_mono_ms() + delay;
    QB_WARN("retriable error %s (attempt %d): retrying offset %" PRId64 " in %" PRId64
            " ms", qb_err_name(why), r->attempts, rkm->offset, delay);
}

/* Resume partitions whose back-off is over; returns ms until the next one is
 * due (or -1 when none waits). */
static int64_t qb_consumer_resume_due(qb_consumer_t *c) {
    int64_t now = qb__bus_mono_ms(), next = -1;
    for (size_t i = 0; i < c->nretries; i++) {
        qb_retry_t *r = &c->retries[i];
        if (!r->paused) continue;
        if (r->resume_at <= now) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, r->ct->t->name, r->partition);
            rd_kafka_resp_err_t err = rd_kafka_resume_partitions(c->rk, l);
            if (err || l->elems[0].err)
                QB_ERROR("cannot resume %s [%d]: %s", r->ct->t->name, (int)r->partition,
                         rd_kafka_err2str(err ? err : l->elems[0].err));
            rd_kafka_topic_partition_list_destroy(l);
            r->paused = 0;
        } else if (next < 0 || r->resume_at - now < next) {
            next = r->resume_at - now;
        }
    }
    return next;
}

/* Write the message to the topic's DLQ and wait for the broker's ack. */
static qb_err_t qb_consumer_dead_letter(qb_consumer_t *c, const qb_ctopic_t *ct,
                                        const rd_kafka_message_t *rkm, qb_err_t code,
                                        const char *reason) {
    char errstr[512], num[32];
    if (!c->dlq) {
        c->dlq = qb_producer_new(errstr, sizeof(errstr));
        if (!c->dlq) {
            QB_ERROR("cannot create the DLQ producer: %s", errstr);
            return QB_ERR_UNAVAILABLE;
        }
    }
    rd_kafka_headers_t *orig = NULL, *h;
    if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "qb-error", -1, reason, -1);
    rd_kafka_header_add(h, "qb-error-code", -1, qb_err_name(code), -1);
    rd_kafka_header_add(h, "qb-source-topic", -1, ct->t->name, -1);
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    rd_kafka_header_add(h, "qb-source-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, rkm->offset);
    rd_kafka_header_add(h, "qb-source-offset", -1, num, -1);
    rd_kafka_header_add(h, "qb-source-group", -1, c->group, -1);
    qb_err_t err = qb__producer_send_hdrs(c->dlq, ct->t->dlq, rkm->key, rkm->key_len,
                                          rkm->payload, rkm->len, h);
    if (!err) err = qb_producer_flush(c->dlq, QB_CONSUMER_DLQ_ACK_MS);
    if (err) {
        qb__producer_purge(c->dlq); /* the retry sends it afresh */
        QB_ERROR("cannot write offset %" PRId64 " to %s: %s", rkm->offset, ct->t->dlq,
                 qb_err_str(err));
        return err;
    }
    qb_counter_inc(ct->dlq);
    QB_WARN("dead-lettered offset %" PRId64 " to %s: %s: %s", rkm->offset, ct->t->dlq,
            qb_err_name(code), reason);
    return QB_OK;
}

static void qb_consumer_process(qb_consumer_t *c, rd_kafka_message_t *rkm) {
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    const qb_ctopic_t *ct = qb_consumer_ctopic(c, tname);
    if (!ct) { /* cannot happen: we subscribe to our topics only */
        QB_ERROR("message from unexpected topic %s: skipped", tname);
        return;
    }
    qb_retry_t *r = qb_consumer_retry_find(c, ct, rkm->partition);
    if (r && r->paused) return; /* prefetched before the pause: comes again */
    if (r && rkm->offset != r->offset)
        QB_WARN("%s [%d]: expected offset %" PRId64 " again after retry, got %" PRId64,
                tname, (int)rkm->partition, r->offset, rkm->offset);

    char type[128], trace[64], produced[32], origin[32], reason[512];
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs)) hdrs = NULL;
    qb_consumer_header(hdrs, "qb-type", type, sizeof(type));
    qb_consumer_header(hdrs, "qb-trace-id", trace, sizeof(trace));
    qb_consumer_header(hdrs, "qb-produced-ns", produced, sizeof(produced));
    qb_consumer_header(hdrs, "qb-origin-ns", origin, sizeof(origin));
    int64_t produced_ns = strtoll(produced, NULL, 10);
    int64_t origin_ns = strtoll(origin, NULL, 10);
    if (origin_ns <= 0) origin_ns = produced_ns > 0 ? produced_ns : 0;

    qb_counter_inc(ct->in);
    if (produced_ns > 0) {
        double lat = (double)(qb__bus_realtime_ns() - produced_ns) / 1e9;
        qb_hist_observe(ct->lat, lat > 0 ? lat : 0);
    }
    qb_log_ctx_set("topic", tname);
    qb_log_ctx_set_int("partition", rkm->partition);
    qb_log_ctx_set_int("offset", rkm->offset);
    if (trace[0]) qb_log_set_trace(trace);

    qb_err_t code = QB_OK;
    reason[0] = '\0';
    ProtobufCMessage *msg = NULL;
    if (!type[0]) {
        code = QB_ERR_DECODE;
        snprintf(reason, sizeof(reason), "no qb-type header (topic %s carries %s)", tname,
                 ct->t->msg_type);
    } else if (strcmp(type, ct->t->msg_type) != 0) {
        code = QB_ERR_DECODE;
        snprintf(reason, sizeof(reason), "qb-type is %s but topic %s carries %s", type,
                 tname, ct->t->msg_type);
    } else if (!(msg = protobuf_c_message_unpack(ct->desc, NULL, rkm->len,
                                                 rkm->payload))) {
        code = QB_ERR_DECODE;
        snprintf(reason, sizeof(reason), "cannot unpack %zu bytes as %s", rkm->len,
                 ct->t->msg_type);
    } else {
        qb_bus_msg_t m = {
            .topic = tname,
            .partition = rkm->partition,
            .offset = rkm->offset,
            .key = rkm->key,
            .key_len = rkm->key_len,
            .payload = rkm->payload,
            .len = rkm->len,
            .type = type,
            .trace_id = trace,
            .produced_ns = produced_ns,
            .timestamp_ms = rd_kafka_message_timestamp(rkm, NULL),
            .msg = msg,
            .origin_ns = origin_ns,
        };
        /* sends from the handler carry this message's origin (qb_bus.h) */
        int64_t was = qb_bus_set_origin(origin_ns);
        code = c->handler(&m, c->opaque, reason, sizeof(reason));
        qb_bus_set_origin(was);
        protobuf_c_message_free_unpacked(msg, NULL);
        if (code != QB_OK && !reason[0])
            snprintf(reason, sizeof(reason), "%s", qb_err_str(code));
        reason[sizeof(reason) - 1] = '\0';
    }

    if (code == QB_OK) {
        qb_consumer_store(c, ct, rkm);
        if (r) qb_consumer_retry_remove(c, r);
    } else if (qb_err_is_retriable(code)) {
        qb_counter_inc(ct->err);
        QB_WARN("handler failed: %s: %s", qb_err_name(code), reason);
        qb_consumer_schedule_retry(c, ct, rkm, code);
    } else {
        qb_counter_inc(ct->err);
        if (qb_consumer_dead_letter(c, ct, rkm, code, reason) == QB_OK) {
            qb_consumer_store(c, ct, rkm);
            r = qb_consumer_retry_find(c, ct, rkm->partition);
            if (r) qb_consumer_retry_remove(c, r);
        } else {
            /* Never skip a message we could not park: try again later. */
            qb_consumer_schedule_retry(c, ct, rkm, QB_ERR_UNAVAILABLE);
        }
    }
    qb_log_ctx_clear();
}

void qb_consumer_set_deferred_store(qb_consumer_t *c, int on) {
    if (c) c->deferred = on ? 1 : 0;
}

void qb_consumer_set_revoke_cb(qb_consumer_t *c, qb_consumer_revoke_cb cb, void *opaque) {
    if (!c) return;
    c->revoke_cb = cb;
    c->revoke_opaque = opaque;
}

/* Store the offsets of v[0..n) (deferred ones, now durable). */
static qb_err_t qb_consumer_store_list(qb_consumer_t *c, const qb_pending_t *v, size_t n) {
    if (n == 0) return QB_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, v[i].ct->t->name, v[i].partition)->offset =
            v[i].next;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    qb_err_t ret = QB_OK;
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].err) {
            /* No longer assigned: the next owner handles those again. */
            QB_WARN("cannot store offset %" PRId64 " of %s [%d]: %s", l->elems[i].offset,
                    l->elems[i].topic, (int)l->elems[i].partition,
                    rd_kafka_err2str(l->elems[i].err));
            continue;
        }
        qb_consumer_handled_note(c, v[i].ct, v[i].partition, v[i].next);
    }
    if (err && err != RD_KAFKA_RESP_ERR__STATE) ret = qb__bus_err(err);
    rd_kafka_topic_partition_list_destroy(l);
    return ret;
}

qb_err_t qb_consumer_store_pending(qb_consumer_t *c) {
    if (!c || c->npending == 0) return QB_OK;
    qb_err_t ret = qb_consumer_store_list(c, c->pending, c->npending);
    c->npending = 0;
    return ret;
}

struct qb_offsets_s {
    size_t n;
    qb_pending_t v[];
};

qb_offsets_t *qb_consumer_pending_take(qb_consumer_t *c) {
    if (!c || c->npending == 0) return NULL;
    qb_offsets_t *o = malloc(sizeof(*o) + c->npending * sizeof(o->v[0]));
    if (!o) return NULL;
    o->n = c->npending;
    memcpy(o->v, c->pending, c->npending * sizeof(o->v[0]));
    c->npending = 0;
    return o;
}

qb_err_t qb_consumer_store_taken(qb_consumer_t *c, qb_offsets_t *o) {
    if (!o) return QB_OK;
    qb_err_t ret = c ? qb_consumer_store_list(c, o->v, o->n) : QB_ERR_INVALID;
    free(o);
    return ret;
}

void qb_offsets_free(qb_offsets_t *o) { free(o); }

size_t qb_consumer_pending(const qb_consumer_t *c) { return c ? c->npending : 0; }

qb_err_t qb_consumer_poll(qb_consumer_t *c, int timeout_ms) {
    if (!c || c->closed) return QB_ERR_INVALID;
    if (c->fatal) return QB_ERR_KAFKA;
    int64_t deadline = qb__bus_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t next = qb_consumer_resume_due(c);
        int64_t left = deadline - qb__bus_mono_ms();
        if (left < 0) left = 0;
        int wait = (int)(next >= 0 && next < left ? next : left);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, wait);
        if (rkm) {
            if (rkm->err) {
                char fatal[512];
                rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
                if (ferr) {
                    QB_ERROR("consumer fatal error: %s: %s", rd_kafka_err2name(ferr), fatal);
                    c->fatal = 1;
                    rd_kafka_message_destroy(rkm);
                    return QB_ERR_KAFKA;
                }
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    QB_WARN("consumer error%s%s: %s",
                            rkm->rkt ? " on " : "", rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "",
                            rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
            } else {
                const qb_ctopic_t *ct = qb_consumer_ctopic(c, rd_kafka_topic_name(rkm->rkt));
                qb_retry_t *r = ct ? qb_consumer_retry_find(c, ct, rkm->partition) : NULL;
                int dropped = r && r->paused;
                qb_consumer_process(c, rkm);
                rd_kafka_message_destroy(rkm);
                if (!dropped) return QB_OK;
            }
        }
        if (qb__bus_mono_ms() >= deadline) return QB_ERR_TIMEOUT;
    }
}

qb_err_t qb_consumer_run(qb_consumer_t *c, volatile sig_atomic_t *running) {
    if (!c || !running) return QB_ERR_INVALID;
    qb_err_t ret = QB_OK;
    while (*running) {
        qb_err_t err = qb_consumer_poll(c, 100);
        if (err == QB_ERR_KAFKA || err == QB_ERR_INVALID) {
            ret = err;
            break;
        }
    }
    qb_err_t cerr = qb_consumer_close(c);
    return ret ? ret : cerr;
}

int qb_consumer_revoked_count(const void *parts) {
    return parts ? ((const rd_kafka_topic_partition_list_t *)parts)->cnt : 0;
}

const char *qb_consumer_revoked_topic(const void *parts, int i) {
    const rd_kafka_topic_partition_list_t *l = parts;
    return l && i >= 0 && i < l->cnt ? l->elems[i].topic : NULL;
}

int32_t qb_consumer_revoked_partition(const void *parts, int i) {
    const rd_kafka_topic_partition_list_t *l = parts;
    return l && i >= 0 && i < l->cnt ? l->elems[i].partition : -1;
}
