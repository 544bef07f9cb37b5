/* qb_producer.c — the idempotent producer; see qb_bus.h.
 *
 * Owns: the librdkafka handle and a small cache of the topics sent to
 * (resolved Kafka name, librdkafka topic handle, expected message type,
 * metric pointers), one entry per name the caller used, freed by
 * qb_producer_destroy(). Entries never change once made, so the last one
 * used is also kept in an atomic pointer and a sender on the same topic
 * finds it without the lock. Each queued message carries its cache entry as
 * per-message opaque, so the delivery report callback counts it under the
 * right topic without a lookup. With delivery tracking on
 * (qb_producer_track_delivery) the opaque is a small malloc'd qb_pmsg_t
 * (entry + sequence number) freed by the report, and a ring of done flags
 * gives the watermark qb_producer_done_seq().
 *
 * Payloads are copied by librdkafka (RD_KAFKA_MSG_F_COPY: one allocation
 * for the message and its payload). send_msg packs a message of up to
 * QB_PRODUCER_STACK_PACK bytes on the stack and lets librdkafka copy it;
 * a larger one into a malloc'd buffer handed over with RD_KAFKA_MSG_F_FREE.
 * Headers are created here and owned by librdkafka once producev()
 * succeeds; on failure they are destroyed here. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/qb_bus_int.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"

#define QB_PRODUCER_QFULL_MS 10000  /* give up on a full queue after this */
#define QB_PRODUCER_DESTROY_FLUSH_MS 5000
#define QB_PRODUCER_STACK_PACK 1024 /* send_msg packs up to this on the stack */

typedef struct qb_ptopic_s {
    struct qb_ptopic_s *next;
    char *asked;        /* the name the caller passed */
    char *kname;        /* the Kafka topic name */
    char *expect_type;  /* the registry's type, NULL for ad-hoc and DLQ topics */
    rd_kafka_topic_t *rkt;
    qb_counter_t *out, *err;
} qb_ptopic_t;

struct qb_producer_s {
    rd_kafka_t *rk;
    pthread_mutex_t lock;    /* topics, last_err */
    qb_ptopic_t *topics;
    _Atomic(qb_ptopic_t *) last; /* the entry used last (never freed before destroy) */
    _Atomic uint64_t failed; /* delivery failures since the last flush */
    _Atomic uint64_t failed_total;
    char last_err[256];
    /* delivery tracking (opt-in) */
    int track;
    pthread_mutex_t ack_lock;
    uint8_t *ack_ring;       /* done flags of sequences [ack_low, ack_next) */
    uint64_t ack_next, ack_low;
};

#define QB_PRODUCER_ACK_RING (1u << 20) /* messages in flight at most (tracked) */

typedef struct qb_pmsg_s {
    qb_ptopic_t *t;
    uint64_t seq;
} qb_pmsg_t;

/* Sequence seq has its report (or will never get one): advance the mark. */
static void qb_producer_ack_done(qb_producer_t *p, uint64_t seq) {
    pthread_mutex_lock(&p->ack_lock);
    p->ack_ring[seq & (QB_PRODUCER_ACK_RING - 1)] = 1;
    while (p->ack_low < p->ack_next && p->ack_ring[p->ack_low & (QB_PRODUCER_ACK_RING - 1)]) {
        p->ack_ring[p->ack_low & (QB_PRODUCER_ACK_RING - 1)] = 0;
        p->ack_low++;
    }
    pthread_mutex_unlock(&p->ack_lock);
}

static void qb_producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                              void *opaque) {
    (void)rk;
    qb_producer_t *p = opaque;
    qb_ptopic_t *t = rkm->_private;
    uint64_t seq = 0;
    int tracked = p->track && t;
    if (tracked) {
        qb_pmsg_t *pm = rkm->_private;
        t = pm->t;
        seq = pm->seq;
        free(pm);
    }
    if (!rkm->err) {
        if (t) qb_counter_inc(t->out);
        if (tracked) qb_producer_ack_done(p, seq);
        return;
    }
    if (t) qb_counter_inc(t->err);
    atomic_fetch_add(&p->failed, 1);
    uint64_t n = atomic_fetch_add(&p->failed_total, 1) + 1;
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?";
    pthread_mutex_lock(&p->lock);
    snprintf(p->last_err, sizeof(p->last_err), "%s [%d]: %s", topic,
             (int)rkm->partition, rd_kafka_err2str(rkm->err));
    pthread_mutex_unlock(&p->lock);
    if (n <= 10 || n % 1000 == 0)
        QB_ERROR("delivery to %s failed: %s (%" PRIu64 " failures so far)", topic,
                 rd_kafka_err2str(rkm->err), n);
    if (tracked) qb_producer_ack_done(p, seq); /* after the failure is counted */
}

qb_producer_t *qb_producer_new(char *errstr, size_t errstr_size) {
    char rerr[512];
    if (qb_topics_init(errstr, errstr_size)) return NULL;
    qb_producer_t *p = calloc(1, sizeof(*p));
    if (!p) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "producer: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    rd_kafka_conf_t *conf = qb__bus_conf_new(QB_BUS_KIND_PRODUCER, NULL, NULL, errstr,
                                             errstr_size);
    if (!conf) goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, qb_producer_dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof(rerr));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                   "cannot create Kafka producer: %s (check the QB_KAFKA_* settings)",
                   rerr);
        goto fail;
    }
    return p;
fail:
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
}

/* The cache entry for `topic`, created on first use. NULL on no memory. */
static qb_ptopic_t *qb_producer_topic(qb_producer_t *p, const char *topic) {
    qb_ptopic_t *last = atomic_load_explicit(&p->last, memory_order_acquire);
    if (last && strcmp(last->asked, topic) == 0) return last;
    pthread_mutex_lock(&p->lock);
    qb_ptopic_t *t;
    for (t = p->topics; t; t = t->next)
        if (strcmp(t->asked, topic) == 0) break;
    if (!t && (t = calloc(1, sizeof(*t)))) {
        const qb_topic_t *reg = qb_topic_find(topic);
        const char *kname = qb_topic_resolve(topic);
        char labels[300];
        t->asked = strdup(topic);
        t->kname = strdup(kname);
        t->expect_type = reg ? strdup(reg->msg_type) : NULL;
        /* NULL (a name librdkafka refuses): producev by name reports why */
        t->rkt = t->kname ? rd_kafka_topic_new(p->rk, t->kname, NULL) : NULL;
        if (!t->asked || !t->kname || (reg && !t->expect_type)) {
            if (t->rkt) rd_kafka_topic_destroy(t->rkt);
            free(t->asked);
            free(t->kname);
            free(t->expect_type);
            free(t);
            t = NULL;
        } else {
            snprintf(labels, sizeof(labels), "topic=\"%s\"", kname);
            t->out = qb_metrics_counter("qb_bus_messages_out_total",
                                        "Messages delivered to Kafka", labels);
            t->err = qb_metrics_counter("qb_bus_errors_total",
                                        "Kafka delivery, decode and handler errors",
                                        labels);
            t->next = p->topics;
            p->topics = t;
        }
    }
    if (t) atomic_store_explicit(&p->last, t, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    return t;
}

/* producev with bounded retries on a full queue. Takes ownership of hdrs;
 * with RD_KAFKA_MSG_F_FREE, ownership of payload passes only on success.
 * ts_ms: the message's Kafka timestamp (CreateTime), 0 = librdkafka reads
 * the clock. */
static qb_err_t qb_producer_produce(qb_producer_t *p, qb_ptopic_t *t, const void *key,
                                    size_t keylen, void *payload, size_t len,
                                    int msgflags, rd_kafka_headers_t *hdrs, int64_t ts_ms) {
    int64_t deadline = 0;
    rd_kafka_resp_err_t err;
    void *mop = t;
    qb_pmsg_t *pm = NULL;
    if (p->track) {
        if (!(pm = malloc(sizeof(*pm)))) {
            rd_kafka_headers_destroy(hdrs);
            return QB_ERR_NOMEM;
        }
        pm->t = t;
        for (;;) {
            pthread_mutex_lock(&p->ack_lock);
            int room = p->ack_next - p->ack_low < QB_PRODUCER_ACK_RING;
            if (room) pm->seq = p->ack_next++;
            pthread_mutex_unlock(&p->ack_lock);
            if (room) break;
            rd_kafka_poll(p->rk, 10); /* a ring of reports outstanding: serve some */
        }
        mop = pm;
    }
    for (;;) {
        if (t->rkt)
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(t->rkt),
                                    RD_KAFKA_V_KEY(key, key ? keylen : 0),
                                    RD_KAFKA_V_VALUE(payload, len),
                                    RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(mop),
                                    RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(t->kname),
                                    RD_KAFKA_V_KEY(key, key ? keylen : 0),
                                    RD_KAFKA_V_VALUE(payload, len),
                                    RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(mop),
                                    RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        int64_t now = qb__bus_mono_ms();
        if (!deadline) deadline = now + QB_PRODUCER_QFULL_MS;
        else if (now >= deadline) break;
        rd_kafka_poll(p->rk, 10); /* serve delivery reports: frees queue room */
    }
    if (!err) {
        rd_kafka_poll(p->rk, 0);
        return QB_OK;
    }
    rd_kafka_headers_destroy(hdrs);
    if (pm) { /* never queued: no report will come */
        qb_producer_ack_done(p, pm->seq);
        free(pm);
    }
    qb_counter_inc(t->err);
    QB_ERROR("cannot queue message for %s: %s", t->kname, rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? QB_ERR_UNAVAILABLE : qb__bus_err(err);
}

/* Decimal text of v (>= 0 as CLOCK_REALTIME is) at the end of buf[24];
 * returns where it starts. */
static const char *qb_producer_ns_text(int64_t v, char buf[24]) {
    char *o = buf + 23;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    *o = '\0';
    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--o = '-';
    return o;
}

/* now_ns: CLOCK_REALTIME, also the message's Kafka timestamp. The origin is
 * the thread's (set by the consumer around a handler), else now_ns. */
static rd_kafka_headers_t *qb_producer_headers(const char *msg_type, const char *trace_id,
                                               int64_t now_ns) {
    char buf[24], obuf[24];
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    if (!trace_id) trace_id = qb_log_trace();
    int64_t origin = qb_bus_origin();
    const char *ns = qb_producer_ns_text(now_ns, buf);
    const char *ons = origin > 0 ? qb_producer_ns_text(origin, obuf) : ns;
    const char *oend = origin > 0 ? obuf + 23 : buf + 23;
    rd_kafka_header_add(h, "qb-type", 7, msg_type, -1);
    if (trace_id && *trace_id) rd_kafka_header_add(h, "qb-trace-id", 11, trace_id, -1);
    rd_kafka_header_add(h, "qb-produced-ns", 14, ns, (ssize_t)(buf + 23 - ns));
    rd_kafka_header_add(h, "qb-origin-ns", 12, ons, (ssize_t)(oend - ons));
    return h;
}

static qb_err_t qb_producer_check(qb_producer_t *p, const char *topic,
                                  const char *msg_type, qb_ptopic_t **tp) {
    if (!p || !topic || !*topic || !msg_type || !*msg_type) {
        QB_ERROR("qb_producer_send: producer, topic and message type are required");
        return QB_ERR_INVALID;
    }
    qb_ptopic_t *t = qb_producer_topic(p, topic);
    if (!t) return QB_ERR_NOMEM;
    if (t->expect_type && strcmp(t->expect_type, msg_type) != 0) {
        qb_counter_inc(t->err);
        QB_ERROR("refusing to send %s on %s: the topic carries %s", msg_type, t->kname,
                 t->expect_type);
        return QB_ERR_INVALID;
    }
    *tp = t;
    return QB_OK;
}

qb_err_t qb_producer_send(qb_producer_t *p, const char *topic, const void *key,
                          size_t keylen, const char *msg_type, const void *payload,
                          size_t len, const char *trace_id) {
    qb_ptopic_t *t;
    qb_err_t err = qb_producer_check(p, topic, msg_type, &t);
    if (err) return err;
    int64_t now = qb__bus_realtime_ns();
    return qb_producer_produce(p, t, key, keylen, (void *)payload, payload ? len : 0,
                               RD_KAFKA_MSG_F_COPY, qb_producer_headers(msg_type, trace_id, now),
                               now / 1000000);
}

qb_err_t qb_producer_send_msg(qb_producer_t *p, const char *topic, const void *key,
                              size_t keylen, const ProtobufCMessage *msg,
                              const char *trace_id) {
    if (!msg || !msg->descriptor) {
        QB_ERROR("qb_producer_send_msg: no message");
        return QB_ERR_INVALID;
    }
    const char *type = msg->descriptor->name;
    qb_ptopic_t *t;
    qb_err_t err = qb_producer_check(p, topic, type, &t);
    if (err) return err;
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t stack[QB_PRODUCER_STACK_PACK];
    uint8_t *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return QB_ERR_NOMEM;
    size_t packed = protobuf_c_message_pack(msg, buf);
    QB_ASSERT(packed == n);
    int64_t now = qb__bus_realtime_ns();
    err = qb_producer_produce(p, t, key, keylen, buf, n,
                              buf == stack ? RD_KAFKA_MSG_F_COPY : RD_KAFKA_MSG_F_FREE,
                              qb_producer_headers(type, trace_id, now), now / 1000000);
    if (err && buf != stack) free(buf);
    return err;
}

qb_err_t qb__producer_send_hdrs(qb_producer_t *p, const char *topic, const void *key,
                                size_t keylen, const void *payload, size_t len,
                                rd_kafka_headers_t *hdrs) {
    qb_ptopic_t *t = qb_producer_topic(p, topic);
    if (!t) {
        rd_kafka_headers_destroy(hdrs);
        return QB_ERR_NOMEM;
    }
    return qb_producer_produce(p, t, key, keylen, (void *)payload, payload ? len : 0,
                               RD_KAFKA_MSG_F_COPY, hdrs, 0);
}

void qb__producer_purge(qb_producer_t *p) {
    if (!p) return;
    rd_kafka_resp_err_t err =
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (err) QB_WARN("purge: %s", rd_kafka_err2str(err));
    rd_kafka_flush(p->rk, 1000); /* serve the purged messages' reports */
    atomic_store(&p->failed, 0);
}

int qb_producer_poll(qb_producer_t *p, int timeout_ms) {
    return p ? rd_kafka_poll(p->rk, timeout_ms) : 0;
}

int qb_producer_outq_len(qb_producer_t *p) { return p ? rd_kafka_outq_len(p->rk) : 0; }

qb_err_t qb_producer_track_delivery(qb_producer_t *p) {
    if (!p) return QB_ERR_INVALID;
    if (p->track) return QB_OK;
    if (!(p->ack_ring = calloc(QB_PRODUCER_ACK_RING, 1))) return QB_ERR_NOMEM;
    pthread_mutex_init(&p->ack_lock, NULL);
    p->track = 1;
    return QB_OK;
}

uint64_t qb_producer_sent_seq(qb_producer_t *p) {
    if (!p || !p->track) return 0;
    pthread_mutex_lock(&p->ack_lock);
    uint64_t v = p->ack_next;
    pthread_mutex_unlock(&p->ack_lock);
    return v;
}

uint64_t qb_producer_done_seq(qb_producer_t *p) {
    if (!p || !p->track) return 0;
    pthread_mutex_lock(&p->ack_lock);
    uint64_t v = p->ack_low;
    pthread_mutex_unlock(&p->ack_lock);
    return v;
}

uint64_t qb_producer_failures(qb_producer_t *p) { return p ? atomic_load(&p->failed_total) : 0; }

qb_err_t qb_producer_flush(qb_producer_t *p, int timeout_ms) {
    if (!p) return QB_ERR_INVALID;
    rd_kafka_resp_err_t ferr = rd_kafka_flush(p->rk, timeout_ms);
    uint64_t failed = atomic_exchange(&p->failed, 0);
    if (failed) {
        char last[256];
        pthread_mutex_lock(&p->lock);
        snprintf(last, sizeof(last), "%s", p->last_err);
        pthread_mutex_unlock(&p->lock);
        QB_ERROR("%" PRIu64 " message(s) failed delivery since the last flush; last: %s",
                 failed, last);
        return QB_ERR_KAFKA;
    }
    if (ferr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        QB_ERROR("flush: %d message(s) still undelivered after %d ms",
                 rd_kafka_outq_len(p->rk), timeout_ms);
        return QB_ERR_TIMEOUT;
    }
    return QB_OK;
}

void qb_producer_destroy(qb_producer_t *p) {
    if (!p) return;
    rd_kafka_flush(p->rk, QB_PRODUCER_DESTROY_FLUSH_MS);
    int left = rd_kafka_outq_len(p->rk);
    if (left > 0)
        QB_ERROR("producer closing with %d message(s) undelivered after %d ms: lost",
                 left, QB_PRODUCER_DESTROY_FLUSH_MS);
    uint64_t failed = atomic_load(&p->failed);
    if (failed)
        QB_ERROR("producer closing: %" PRIu64 " delivery failure(s) since the last flush",
                 failed);
    for (qb_ptopic_t *t = p->topics; t; t = t->next)
        if (t->rkt) rd_kafka_topic_destroy(t->rkt);
    rd_kafka_destroy(p->rk);
    if (p->track) {
        free(p->ack_ring);
        pthread_mutex_destroy(&p->ack_lock);
    }
    for (qb_ptopic_t *t = p->topics, *next; t; t = next) {
        next = t->next;
        free(t->asked);
        free(t->kname);
        free(t->expect_type);
        free(t);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}
