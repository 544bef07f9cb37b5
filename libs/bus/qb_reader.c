/* qb_reader.c — group-less topic reader; see qb_reader.h. Owns one
 * librdkafka consumer handle (assign, never subscribe/commit), the current
 * message and its decoded form, and for a reader opened at a time
 * (qb_reader_new_since) the per-partition high watermarks read at open and
 * the next offset to read, which say when the scan has caught up. */
#include "bus/qb_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus_int.h"
#include "proto/qb_proto.h"

struct qb_reader_s {
    rd_kafka_t *rk;
    char *topic;
    rd_kafka_message_t *cur;
    ProtobufCMessage *decoded;
    char type[128];
    char trace[64];
    char hdrbuf[256];
    char decode_err[256];
    int npart;
    int64_t *hw;   /* qb_reader_new_since: high watermark per partition at open */
    int64_t *next; /* ... and the next offset to read (>= hw: caught up) */
    int64_t backlog;
};

static void qb_reader_release_current(qb_reader_t *r) {
    if (r->decoded) protobuf_c_message_free_unpacked(r->decoded, NULL);
    r->decoded = NULL;
    if (r->cur) rd_kafka_message_destroy(r->cur);
    r->cur = NULL;
}

/* Partition count of `topic`, from a metadata request for ALL topics: asking
 * for one topic by name would make qb-bus (and brokers with
 * auto.create.topics.enable) create it, so a typo would leave a topic. */
static int qb_reader_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                qb_err_t *code, char *errstr, size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        *code = qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "metadata for %s: %s",
                           topic, rd_kafka_err2str(err));
        return -1;
    }
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
            n = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (n <= 0) {
        *code = qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "topic %s does not exist",
                           topic);
        return -1;
    }
    return n;
}

/* The handle and the topic's partition count; nothing assigned yet. */
static qb_reader_t *qb_reader_open(const char *topic, int timeout_ms, qb_err_t *code,
                                   char *errstr, size_t errstr_size) {
    *code = QB_ERR_KAFKA;
    char group[64];
    /* A group id is required by librdkafka's consumer even when nothing is
     * committed; assign() never joins it. */
    snprintf(group, sizeof(group), "qb-reader-%d", (int)getpid());
    rd_kafka_conf_t *conf = qb__bus_conf_new(QB_BUS_KIND_CONSUMER, NULL, group, errstr,
                                             errstr_size);
    if (!conf) return NULL;
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
    qb_reader_t *r = calloc(1, sizeof(*r));
    if (!r) { rd_kafka_conf_destroy(conf); return NULL; }
    char kerr[512];
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!r->rk) {
        rd_kafka_conf_destroy(conf);
        free(r);
        qb_err_set(errstr, errstr_size, QB_ERR_KAFKA, "consumer: %s", kerr);
        return NULL;
    }
    r->topic = strdup(qb_topic_resolve(topic));
    r->npart = qb_reader_partitions(r->rk, r->topic, timeout_ms, code, errstr, errstr_size);
    if (r->npart < 0) { qb_reader_destroy(r); return NULL; }
    return r;
}

/* Assign every partition at start[i]; frees nothing. */
static qb_reader_t *qb_reader_assign(qb_reader_t *r, const int64_t *start, char *errstr,
                                     size_t errstr_size) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->npart);
    for (int i = 0; i < r->npart; i++)
        rd_kafka_topic_partition_list_add(parts, r->topic, i)->offset = start[i];
    rd_kafka_resp_err_t err = rd_kafka_assign(r->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        qb_err_set(errstr, errstr_size, QB_ERR_KAFKA, "assign %s: %s", r->topic,
                   rd_kafka_err2str(err));
        qb_reader_destroy(r);
        return NULL;
    }
    return r;
}

qb_reader_t *qb_reader_new(const char *topic, int from_beginning, int timeout_ms,
                           char *errstr, size_t errstr_size) {
    qb_err_t code;
    qb_reader_t *r = qb_reader_open(topic, timeout_ms, &code, errstr, errstr_size);
    if (!r) return NULL;
    int64_t *start = malloc((size_t)r->npart * sizeof(*start));
    if (!start) {
        qb_reader_destroy(r);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < r->npart; i++)
        start[i] = from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    r = qb_reader_assign(r, start, errstr, errstr_size);
    free(start);
    return r;
}

/* Kafka timestamp of the first message at or after `offset` of partition p,
 * read by assigning that one partition there; QB_ERR_TIMEOUT when none came
 * within timeout_ms. */
static qb_err_t qb_reader_probe(qb_reader_t *r, int32_t p, int64_t offset, int timeout_ms,
                                int64_t *ts) {
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, r->topic, p)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(r->rk, one);
    rd_kafka_topic_partition_list_destroy(one);
    if (err) return qb__bus_err(err);
    qb_err_t e = QB_ERR_TIMEOUT;
    int64_t deadline = qb__bus_mono_ms() + timeout_ms;
    for (int64_t left; (left = deadline - qb__bus_mono_ms()) >= 0;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, (int)left);
        if (!m) break;
        int mine = !m->err && m->partition == p && m->offset >= offset;
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) e = QB_ERR_KAFKA;
        if (mine) {
            *ts = rd_kafka_message_timestamp(m, NULL);
            e = QB_OK;
        }
        rd_kafka_message_destroy(m);
        if (mine || e == QB_ERR_KAFKA) break;
    }
    rd_kafka_assign(r->rk, NULL);
    return e;
}

/* First offset in [lo, hw) whose message's timestamp is >= since_ms, when
 * the last one (hw - 1) is: a binary search, probing one message per step
 * (log2(hw - lo) probes). A probe that fails ends the search where it
 * stands: an earlier start reads more, never less. */
static int64_t qb_reader_search(qb_reader_t *r, int32_t p, int64_t lo, int64_t hw,
                                int64_t since_ms, int timeout_ms) {
    int64_t a = lo, b = hw - 1;
    while (a < b) {
        int64_t mid = a + (b - a) / 2, ts = -1;
        if (qb_reader_probe(r, p, mid, timeout_ms, &ts) != QB_OK) break;
        if (ts >= since_ms) b = mid;
        else a = mid + 1;
    }
    return a;
}

qb_reader_t *qb_reader_new_since(const char *topic, int64_t since_ms, int timeout_ms,
                                 qb_err_t *code, char *errstr, size_t errstr_size) {
    qb_err_t dummy;
    if (!code) code = &dummy;
    qb_reader_t *r = qb_reader_open(topic, timeout_ms, code, errstr, errstr_size);
    if (!r) return NULL;
    *code = QB_ERR_UNAVAILABLE;
    size_t n = (size_t)r->npart;
    int64_t *lo = calloc(n, sizeof(*lo));
    r->hw = calloc(n, sizeof(*r->hw));
    r->next = calloc(n, sizeof(*r->next));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(r->npart);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!lo || !r->hw || !r->next) {
        *code = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < r->npart; i++) {
        err = rd_kafka_query_watermark_offsets(r->rk, r->topic, i, &lo[i], &r->hw[i],
                                               timeout_ms);
        if (err) {
            qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "watermarks of %s [%d]: %s",
                       r->topic, i, rd_kafka_err2str(err));
            goto fail;
        }
        rd_kafka_topic_partition_list_add(parts, r->topic, i)->offset = since_ms;
    }
    if (since_ms > 0) {
        err = rd_kafka_offsets_for_times(r->rk, parts, timeout_ms);
        for (int i = 0; !err && i < parts->cnt; i++) err = parts->elems[i].err;
        if (err) {
            qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "offsets of %s at %lld: %s",
                       r->topic, (long long)since_ms, rd_kafka_err2str(err));
            goto fail;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        int64_t off = since_ms > 0 ? parts->elems[i].offset : lo[p], ts = -1;
        /* "None that new": checked against the last message. When it cannot
         * be read (e.g. the last offset is a transaction marker), search:
         * a search that cannot probe starts early, never late. */
        if (off < 0 && r->hw[p] > lo[p] &&
            (qb_reader_probe(r, p, r->hw[p] - 1, timeout_ms, &ts) != QB_OK || ts >= since_ms))
            off = qb_reader_search(r, p, lo[p], r->hw[p], since_ms, timeout_ms);
        if (off < 0 || off > r->hw[p]) off = r->hw[p]; /* nothing that new: the end */
        if (off < lo[p]) off = lo[p];
        r->next[p] = off;
        r->backlog += r->hw[p] - off;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    free(lo);
    *code = QB_ERR_KAFKA;
    if ((r = qb_reader_assign(r, r->next, errstr, errstr_size))) *code = QB_OK;
    return r;
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    free(lo);
    qb_reader_destroy(r);
    return NULL;
}

int qb_reader_caught_up(qb_reader_t *r) {
    if (!r || !r->hw) return 0;
    rd_kafka_topic_partition_list_t *behind = NULL;
    for (int i = 0; i < r->npart; i++) {
        if (r->next[i] >= r->hw[i]) continue;
        if (!behind) behind = rd_kafka_topic_partition_list_new(r->npart);
        rd_kafka_topic_partition_list_add(behind, r->topic, i);
    }
    if (!behind) return 1;
    /* The consumer's position also moves past what is never delivered
     * (transaction markers, compacted-away offsets). */
    int done = 0;
    if (!rd_kafka_position(r->rk, behind)) {
        done = 1;
        for (int i = 0; i < behind->cnt; i++) {
            int32_t p = behind->elems[i].partition;
            if (behind->elems[i].offset > r->next[p]) r->next[p] = behind->elems[i].offset;
            if (r->next[p] < r->hw[p]) done = 0;
        }
    }
    rd_kafka_topic_partition_list_destroy(behind);
    return done;
}

int64_t qb_reader_backlog(const qb_reader_t *r) { return r ? r->backlog : 0; }

static const char *qb_reader_hdr(rd_kafka_message_t *m, const char *name, char *buf,
                                 size_t cap) {
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) || !h) return NULL;
    if (rd_kafka_header_get_last(h, name, &v, &n)) return NULL;
    if (n >= cap) n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

qb_err_t qb_reader_next(qb_reader_t *r, int timeout_ms, qb_bus_msg_t *out,
                        const char **decode_err) {
    qb_reader_release_current(r);
    int64_t deadline = qb__bus_mono_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - qb__bus_mono_ms());
        if (left < 0) return QB_ERR_TIMEOUT;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, left);
        if (!m) return QB_ERR_TIMEOUT;
        if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
            rd_kafka_message_destroy(m);
            if (fatal) return QB_ERR_KAFKA;
            continue; /* transient (partition EOF, broker down): keep waiting */
        }
        r->cur = m;
        if (r->next && m->partition >= 0 && m->partition < r->npart &&
            m->offset + 1 > r->next[m->partition])
            r->next[m->partition] = m->offset + 1;
        break;
    }
    rd_kafka_message_t *m = r->cur;
    memset(out, 0, sizeof(*out));
    out->topic = rd_kafka_topic_name(m->rkt);
    out->partition = m->partition;
    out->offset = m->offset;
    out->key = m->key;
    out->key_len = m->key_len;
    out->payload = m->payload;
    out->len = m->len;
    out->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    const char *type = qb_reader_hdr(m, "qb-type", r->type, sizeof(r->type));
    if (!type) {
        const qb_topic_t *t = qb_topic_find(r->topic);
        snprintf(r->type, sizeof(r->type), "%s", t ? t->msg_type : "");
        type = r->type;
    }
    out->type = type;
    const char *trace = qb_reader_hdr(m, "qb-trace-id", r->trace, sizeof(r->trace));
    out->trace_id = trace ? trace : "";
    char pbuf[32];
    const char *pns = qb_reader_hdr(m, "qb-produced-ns", pbuf, sizeof(pbuf));
    out->produced_ns = pns ? strtoll(pns, NULL, 10) : 0;
    const char *ons = qb_reader_hdr(m, "qb-origin-ns", pbuf, sizeof(pbuf));
    out->origin_ns = ons ? strtoll(ons, NULL, 10) : 0;
    if (out->origin_ns <= 0) out->origin_ns = out->produced_ns;

    const ProtobufCMessageDescriptor *d = qb_proto_find(type);
    r->decode_err[0] = '\0';
    if (!d) {
        snprintf(r->decode_err, sizeof(r->decode_err), "unknown message type '%s'", type);
    } else {
        r->decoded = protobuf_c_message_unpack(d, NULL, m->len, m->payload);
        if (!r->decoded)
            snprintf(r->decode_err, sizeof(r->decode_err), "payload is not a valid %s", type);
    }
    out->msg = r->decoded;
    if (decode_err) *decode_err = r->decoded ? NULL : r->decode_err;
    return QB_OK;
}

const char *qb_reader_header(qb_reader_t *r, const char *name) {
    if (!r || !r->cur) return NULL;
    return qb_reader_hdr(r->cur, name, r->hdrbuf, sizeof(r->hdrbuf));
}

void qb_reader_destroy(qb_reader_t *r) {
    if (!r) return;
    qb_reader_release_current(r);
    if (r->rk) {
        rd_kafka_assign(r->rk, NULL);
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->topic);
    free(r->hw);
    free(r->next);
    free(r);
}

int qb_bus_partition_count(const char *topic, int timeout_ms, char *errstr,
                           size_t errstr_size) {
    rd_kafka_conf_t *conf = qb__bus_conf_new(QB_BUS_KIND_PING, NULL, NULL, errstr,
                                             errstr_size);
    if (!conf) return -1;
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        qb_err_set(errstr, errstr_size, QB_ERR_KAFKA, "client: %s", kerr);
        return -1;
    }
    qb_err_t code;
    int n = qb_reader_partitions(rk, qb_topic_resolve(topic), timeout_ms, &code, errstr,
                                 errstr_size);
    rd_kafka_destroy(rk);
    return n;
}
