/* it_bus_dlq.c — libs/bus consumer error paths against the harness's qb-bus
 * (QB_KAFKA_BROKERS).
 *
 * What is asserted:
 *   poison: garbage bytes typed qb.v1.Bar, a valid Bar typed qb.v1.Order,
 *     garbage with no headers at all, and a valid Bar whose handler returns
 *     the non-retriable QB_ERR_INVALID all land in <topic>.dlq — read back
 *     with a plain librdkafka consumer: same key, same payload byte for byte,
 *     original headers kept, qb-error / qb-error-code / qb-source-topic /
 *     -partition / -offset right — and the consumer carries on: the valid
 *     Bars produced AFTER the poison, on the same partition, are each
 *     handled exactly once, in order; the commit on close (auto-commit is
 *     off for this consumer) covers the poison; the metrics count it all
 *     (in, out, errors, dlq, latency) and the lag gauge comes from the
 *     librdkafka statistics.
 *   retry: a handler failing twice with QB_ERR_UNAVAILABLE gets the same
 *     message (same offset) a third time, succeeds once, nothing is
 *     dead-lettered, the messages after it wait for it and are handled once.
 *   config: QB_KAFKA_CLIENT_ID=foo is accepted; QB_KAFKA_NOT_A_PROP=1 and a
 *     bad value fail creation naming the variable; unregistered topics and
 *     wrong message types are refused; qb_bus_ping up and down.
 *
 * Topics: fresh names (qb_test_unique) that the mock cluster auto-creates
 * (4 partitions) on a metadata request, made up front so consumers never
 * subscribe to a missing topic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "bus/qb_bus.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "qb/v1/market.pb-c.h"
#include "qb_test.h"

static char E[1024];

/* ---- helpers ------------------------------------------------------------- */

static rd_kafka_t *raw_new(rd_kafka_type_t type, const char *group) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", qb_test_env("QB_KAFKA_BROKERS"), err,
                      sizeof(err));
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", err, sizeof(err));
    if (group) {
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) fail_msg("rd_kafka_new: %s", err);
    return rk;
}

/* Make the mock cluster auto-create `topic` (metadata request from a
 * producer-type client) and return its partition count. */
/* Packed Bar with the given event id (malloc'd, *len set). */
static uint8_t *bar_pack(const char *event_id, size_t *len) {
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    Qb__V1__Bar b = QB__V1__BAR__INIT;
    h.event_id = (char *)event_id;
    h.producer = "it_bus_dlq";
    h.schema_version = 1;
    b.header = &h;
    b.symbol = "AAPL";
    b.timeframe = "1m";
    b.ts = 1700000000000000000LL;
    b.open = b.high = b.low = b.close = 12345000000LL;
    b.volume = 100000000;
    b.source = "test";
    *len = qb__v1__bar__get_packed_size(&b);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    qb__v1__bar__pack(&b, buf);
    return buf;
}

typedef struct sent_s {
    int32_t partition;
    int64_t offset;
    int done;
} sent_t;

static void raw_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    sent_t *s = m->_private;
    if (!s) return;
    s->done = m->err ? -1 : 1;
    s->partition = m->partition;
    s->offset = m->offset;
}

static rd_kafka_t *raw_producer(void) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", qb_test_env("QB_KAFKA_BROKERS"), err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(conf, raw_dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) fail_msg("rd_kafka_new: %s", err);
    return rk;
}

/* Produce one raw record (headers: NULL-terminated name/value pairs) and
 * wait for its delivery report. */
static void raw_send(rd_kafka_t *rk, const char *topic, const char *key, const void *val,
                     size_t len, const char *const *hdr_pairs, sent_t *s) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    for (; hdr_pairs && hdr_pairs[0]; hdr_pairs += 2)
        rd_kafka_header_add(h, hdr_pairs[0], -1, hdr_pairs[1], -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
    if (err) fail_msg("producev: %s", rd_kafka_err2str(err));
    rd_kafka_flush(rk, 10000);
    if (s->done != 1) fail_msg("raw message to %s not delivered", topic);
}

static const char *hdr(const rd_kafka_message_t *m, const char *name, char *buf,
                       size_t cap) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n))
        return NULL;
    if (n >= cap) n = cap - 1;
    memcpy(buf, v ? v : "", v ? n : 0);
    buf[v ? n : 0] = '\0';
    return buf;
}

/* Committed offset of group/topic/partition (-1001 when none). */
static int64_t committed(const char *group, const char *topic, int32_t partition) {
    rd_kafka_t *rk = raw_new(RD_KAFKA_CONSUMER, group);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 10000);
    int64_t off = err ? -2 : l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

/* ---- poison -> DLQ ------------------------------------------------------- */

#define N_VALID 20

typedef struct poison_state_s {
    int ok[N_VALID];
    int64_t ok_offset[N_VALID];
    int order_ok;       /* 0 once a valid bar came out of order */
    int last_ok;
    int rejected_calls;
    int other_calls;
} poison_state_t;

static qb_err_t poison_handler(const qb_bus_msg_t *m, void *opaque, char *errstr,
                               size_t errstr_size) {
    poison_state_t *st = opaque;
    const Qb__V1__Bar *b = (const Qb__V1__Bar *)m->msg;
    assert_string_equal(m->type, "qb.v1.Bar");
    assert_non_null(b->header);
    if (strcmp(b->header->event_id, "reject-me") == 0) {
        st->rejected_calls++;
        snprintf(errstr, errstr_size, "rejected by test");
        return QB_ERR_INVALID;
    }
    int i;
    if (sscanf(b->header->event_id, "ok-%d", &i) == 1 && i >= 0 && i < N_VALID) {
        if (i != st->last_ok + 1) st->order_ok = 0;
        st->last_ok = i;
        st->ok[i]++;
        st->ok_offset[i] = m->offset;
        return QB_OK;
    }
    st->other_calls++;
    return QB_OK;
}

static void test_poison_goes_to_dlq_and_partition_moves_on(void **state) {
    (void)state;
    char topic[128], dlq[140], group[128];
    qb_test_unique(topic, sizeof(topic), "it-dlq");
    qb_test_unique(group, sizeof(group), "it-dlq-g");
    snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
    qb_test_topic_partitions(topic);
    int dlq_parts = qb_test_topic_partitions(dlq);
    assert_non_null(qb_topics_add(topic, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));

    /* Poison first, valid bars after, all with one key: one partition. */
    static const uint8_t garbage[] = {0x0f, 0xde, 0xad, 0xbe, 0xef, 0x07, 0xff, 0xff};
    assert_null(protobuf_c_message_unpack(&qb__v1__bar__descriptor, NULL, sizeof(garbage),
                                          garbage)); /* really undecodable */
    size_t wrong_len, rej_len;
    uint8_t *wrong = bar_pack("wrong-type", &wrong_len);
    uint8_t *rej = bar_pack("reject-me", &rej_len);
    const char *h_garbage[] = {"qb-type", "qb.v1.Bar", "x-test", "g1", NULL};
    const char *h_wrong[] = {"qb-type", "qb.v1.Order", "qb-trace-id", "abc123", NULL};
    const char *h_bar[] = {"qb-type", "qb.v1.Bar", NULL};
    sent_t sent[4 + N_VALID];
    memset(sent, 0, sizeof(sent));
    rd_kafka_t *rp = raw_producer();
    raw_send(rp, topic, "K", garbage, sizeof(garbage), h_garbage, &sent[0]);
    raw_send(rp, topic, "K", wrong, wrong_len, h_wrong, &sent[1]);
    raw_send(rp, topic, "K", garbage, sizeof(garbage), NULL, &sent[2]);
    raw_send(rp, topic, "K", rej, rej_len, h_bar, &sent[3]);
    rd_kafka_destroy(rp);

    /* Valid bars through our producer (after the poison: same key). */
    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    assert_non_null(p);
    for (int i = 0; i < N_VALID; i++) {
        char id[32];
        size_t n;
        snprintf(id, sizeof(id), "ok-%d", i);
        uint8_t *buf = bar_pack(id, &n);
        assert_int_equal(qb_producer_send(p, topic, "K", 1, "qb.v1.Bar", buf, n,
                                          "0123456789abcdef0123456789abcdef"),
                         QB_OK);
        free(buf);
    }
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    qb_producer_destroy(p);

    poison_state_t st;
    memset(&st, 0, sizeof(st));
    st.order_ok = 1;
    st.last_ok = -1;
    const char *topics[] = {topic};
    /* No auto-commit during the test: the committed offset checked below
     * can only come from the commit on close. */
    setenv("QB_KAFKA_AUTO_COMMIT_INTERVAL_MS", "600000", 1);
    setenv("QB_KAFKA_STATISTICS_INTERVAL_MS", "100", 1); /* lag gauge, soon */
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, poison_handler, &st, E, sizeof(E));
    unsetenv("QB_KAFKA_AUTO_COMMIT_INTERVAL_MS");
    unsetenv("QB_KAFKA_STATISTICS_INTERVAL_MS");
    if (!c) fail_msg("qb_consumer_new: %s", E);
    int64_t t0 = qb_test_now_ms(), deadline = t0 + 60000;
    int handled = 0;
    while (handled < N_VALID && qb_test_now_ms() < deadline) {
        qb_consumer_poll(c, 100);
        handled = 0;
        for (int i = 0; i < N_VALID; i++) handled += st.ok[i] > 0;
    }
    if (handled < N_VALID)
        fail_msg("only %d of %d valid bars handled in 60 s after the poison", handled,
                 N_VALID);
    print_message("consumed poison + %d bars in %lld ms\n", N_VALID,
                  (long long)(qb_test_now_ms() - t0));
    /* Give a duplicate a chance to show up and the statistics (lag gauge)
     * a chance to arrive, then leave (commits). */
    char lag_want[300];
    snprintf(lag_want, sizeof(lag_want), "qb_bus_consumer_lag{topic=\"%s\",partition=\"%d\"} 0\n",
             topic, (int)sent[0].partition);
    int lag_seen = 0;
    for (int64_t t = qb_test_now_ms() + 5000; !lag_seen && qb_test_now_ms() < t;) {
        qb_consumer_poll(c, 50);
        char *txt = qb_metrics_render();
        lag_seen = txt && strstr(txt, lag_want);
        free(txt);
    }
    if (!lag_seen) fail_msg("no consumer lag gauge \"%s\" within 5 s", lag_want);
    assert_int_equal(qb_consumer_close(c), QB_OK);
    qb_consumer_destroy(c);

    for (int i = 0; i < N_VALID; i++) {
        if (st.ok[i] != 1) fail_msg("bar ok-%d handled %d times, want 1", i, st.ok[i]);
        assert_true(st.ok_offset[i] > sent[3].offset);
    }
    assert_true(st.order_ok);
    assert_int_equal(st.rejected_calls, 1);
    assert_int_equal(st.other_calls, 0);

    /* Everything, poison included, is committed (by the close). */
    int64_t last = st.ok_offset[N_VALID - 1];
    assert_int_equal(committed(group, topic, sent[0].partition), last + 1);

    /* Read the DLQ back with a plain consumer. */
    rd_kafka_t *rc = raw_new(RD_KAFKA_CONSUMER, "it-dlq-reader");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(dlq_parts);
    for (int i = 0; i < dlq_parts; i++)
        rd_kafka_topic_partition_list_add(l, dlq, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rc, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int seen[4] = {0, 0, 0, 0}, got = 0;
    deadline = qb_test_now_ms() + 20000;
    while (got < 4 && qb_test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rc, 200);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        char b1[512], b2[64], b3[256], b4[32], b5[32], b6[64];
        const char *err_txt = hdr(m, "qb-error", b1, sizeof(b1));
        const char *code = hdr(m, "qb-error-code", b2, sizeof(b2));
        const char *src = hdr(m, "qb-source-topic", b3, sizeof(b3));
        const char *spart = hdr(m, "qb-source-partition", b4, sizeof(b4));
        const char *soff = hdr(m, "qb-source-offset", b5, sizeof(b5));
        assert_non_null(err_txt);
        assert_true(strlen(err_txt) > 0);
        assert_non_null(code);
        assert_non_null(src);
        assert_string_equal(src, topic);
        assert_non_null(spart);
        assert_non_null(soff);
        assert_int_equal(m->key_len, 1);
        assert_memory_equal(m->key, "K", 1);
        int64_t off = strtoll(soff, NULL, 10);
        assert_int_equal(strtol(spart, NULL, 10), sent[0].partition);
        int which = -1;
        for (int i = 0; i < 4; i++)
            if (sent[i].offset == off) which = i;
        if (which < 0) fail_msg("DLQ message with unexpected source offset %s", soff);
        seen[which]++;
        got++;
        print_message("dlq: offset %s code %s: %s\n", soff, code, err_txt);
        switch (which) {
        case 0: /* garbage typed as a Bar */
            assert_string_equal(code, "DECODE");
            assert_int_equal(m->len, sizeof(garbage));
            assert_memory_equal(m->payload, garbage, sizeof(garbage));
            assert_non_null(hdr(m, "x-test", b6, sizeof(b6)));
            assert_string_equal(b6, "g1");
            assert_string_equal(hdr(m, "qb-type", b6, sizeof(b6)), "qb.v1.Bar");
            break;
        case 1: /* a Bar typed as an Order */
            assert_string_equal(code, "DECODE");
            assert_non_null(strstr(err_txt, "qb.v1.Order"));
            assert_int_equal(m->len, wrong_len);
            assert_memory_equal(m->payload, wrong, wrong_len);
            assert_string_equal(hdr(m, "qb-trace-id", b6, sizeof(b6)), "abc123");
            break;
        case 2: /* garbage, no headers */
            assert_string_equal(code, "DECODE");
            assert_non_null(strstr(err_txt, "qb-type"));
            assert_null(hdr(m, "qb-type", b6, sizeof(b6)));
            assert_memory_equal(m->payload, garbage, sizeof(garbage));
            break;
        case 3: /* handler said INVALID */
            assert_string_equal(code, "INVALID");
            assert_string_equal(err_txt, "rejected by test");
            assert_int_equal(m->len, rej_len);
            assert_memory_equal(m->payload, rej, rej_len);
            break;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rc);
    rd_kafka_destroy(rc);
    if (got != 4) fail_msg("DLQ %s holds %d of the 4 poison messages after 20 s", dlq, got);
    for (int i = 0; i < 4; i++) assert_int_equal(seen[i], 1);

    /* Metrics. */
    char *metrics = qb_metrics_render();
    char want[300];
    snprintf(want, sizeof(want), "qb_bus_dlq_total{topic=\"%s\"} 4", topic);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    snprintf(want, sizeof(want), "qb_bus_messages_in_total{topic=\"%s\"} %d", topic,
             4 + N_VALID);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    snprintf(want, sizeof(want), "qb_bus_messages_out_total{topic=\"%s\"} %d", topic, N_VALID);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    snprintf(want, sizeof(want), "qb_bus_messages_out_total{topic=\"%s\"} 4", dlq);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    /* Only our producer's 20 bars carry qb-produced-ns. */
    snprintf(want, sizeof(want), "qb_bus_latency_seconds_count{topic=\"%s\"} %d", topic,
             N_VALID);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    snprintf(want, sizeof(want), "qb_bus_errors_total{topic=\"%s\"} 4", topic);
    if (!strstr(metrics, want)) fail_msg("metrics lack %s", want);
    free(metrics);
    free(wrong);
    free(rej);
}

/* ---- retriable errors are retried ---------------------------------------- */

#define N_RETRY 10 /* ids 0..9, id 3 is the flaky one */

typedef struct retry_state_s {
    int calls[N_RETRY];
    int ok[N_RETRY];
    int64_t offsets[N_RETRY][4];
    int64_t fail_at_ms[2];
    int64_t success_at_ms;
    int order[N_RETRY * 4];
    int norder;
} retry_state_t;

static qb_err_t retry_handler(const qb_bus_msg_t *m, void *opaque, char *errstr,
                              size_t errstr_size) {
    retry_state_t *st = opaque;
    const Qb__V1__Bar *b = (const Qb__V1__Bar *)m->msg;
    int i = -1;
    if (sscanf(b->header->event_id, "r-%d", &i) != 1 || i < 0 || i >= N_RETRY)
        return QB_OK;
    if (st->calls[i] < 4) st->offsets[i][st->calls[i]] = m->offset;
    st->calls[i]++;
    if (i == 3 && st->calls[i] <= 2) {
        st->fail_at_ms[st->calls[i] - 1] = qb_test_now_ms();
        snprintf(errstr, errstr_size, "database down (test)");
        return QB_ERR_UNAVAILABLE;
    }
    if (i == 3) st->success_at_ms = qb_test_now_ms();
    st->ok[i]++;
    st->order[st->norder++] = i;
    return QB_OK;
}

static void test_retriable_error_is_retried_not_dead_lettered(void **state) {
    (void)state;
    char topic[128], dlq[140], group[128];
    qb_test_unique(topic, sizeof(topic), "it-retry");
    qb_test_unique(group, sizeof(group), "it-retry-g");
    snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
    qb_test_topic_partitions(topic);
    int dlq_parts = qb_test_topic_partitions(dlq);
    assert_non_null(qb_topics_add(topic, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));

    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    assert_non_null(p);
    for (int i = 0; i < N_RETRY; i++) {
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        Qb__V1__Bar b = QB__V1__BAR__INIT;
        char id[32];
        snprintf(id, sizeof(id), "r-%d", i);
        h.event_id = id;
        b.header = &h;
        b.symbol = "MSFT";
        assert_int_equal(qb_producer_send_msg(p, topic, "MSFT", 4, &b.base, NULL), QB_OK);
    }
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    qb_producer_destroy(p);

    retry_state_t st;
    memset(&st, 0, sizeof(st));
    const char *topics[] = {topic};
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, retry_handler, &st, E, sizeof(E));
    if (!c) fail_msg("qb_consumer_new: %s", E);
    qb_consumer_set_retry_backoff(c, 50, 400);
    int64_t deadline = qb_test_now_ms() + 60000;
    while (st.norder < N_RETRY && qb_test_now_ms() < deadline) qb_consumer_poll(c, 100);
    for (int i = 0; i < 10; i++) qb_consumer_poll(c, 20); /* no stray redelivery */
    assert_int_equal(qb_consumer_close(c), QB_OK);
    qb_consumer_destroy(c);

    if (st.norder < N_RETRY) fail_msg("only %d of %d handled in 60 s", st.norder, N_RETRY);
    assert_int_equal(st.calls[3], 3);
    assert_int_equal(st.ok[3], 1);
    assert_int_equal(st.offsets[3][0], st.offsets[3][1]);
    assert_int_equal(st.offsets[3][0], st.offsets[3][2]);
    assert_true(st.fail_at_ms[1] - st.fail_at_ms[0] >= 45);     /* back-off 50 ms */
    assert_true(st.success_at_ms - st.fail_at_ms[1] >= 90);     /* then 100 ms */
    for (int i = 0; i < N_RETRY; i++) {
        if (i != 3 && (st.calls[i] != 1 || st.ok[i] != 1))
            fail_msg("r-%d: %d calls, %d ok; want 1 and 1", i, st.calls[i], st.ok[i]);
        assert_int_equal(st.order[i], i); /* nothing overtook the flaky one */
    }
    print_message("flaky message retried at +%lld ms and +%lld ms\n",
                  (long long)(st.fail_at_ms[1] - st.fail_at_ms[0]),
                  (long long)(st.success_at_ms - st.fail_at_ms[1]));

    /* Nothing dead-lettered. */
    rd_kafka_t *rk = raw_new(RD_KAFKA_PRODUCER, NULL);
    for (int i = 0; i < dlq_parts; i++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, dlq, i, &lo, &hi, 5000), 0);
        if (hi != 0) fail_msg("%s [%d] holds %lld message(s)", dlq, i, (long long)hi);
    }
    rd_kafka_destroy(rk);
}

/* ---- configuration ------------------------------------------------------- */

static qb_err_t nop_handler(const qb_bus_msg_t *m, void *opaque, char *errstr,
                            size_t errstr_size) {
    (void)m;
    (void)opaque;
    (void)errstr;
    (void)errstr_size;
    return QB_OK;
}

static void test_kafka_env_pass_through(void **state) {
    (void)state;
    const char *topics[] = {"md.bars"};
    char group[128];
    qb_test_unique(group, sizeof(group), "it-cfg-g");

    setenv("QB_KAFKA_CLIENT_ID", "foo", 1);
    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    if (!p) fail_msg("QB_KAFKA_CLIENT_ID=foo refused: %s", E);
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, nop_handler, NULL, E, sizeof(E));
    if (!c) fail_msg("QB_KAFKA_CLIENT_ID=foo refused by the consumer: %s", E);
    qb_consumer_destroy(c);
    /* A registry topic refuses another message type. */
    assert_int_equal(qb_producer_send(p, "md.bars", "X", 1, "qb.v1.Order", "x", 1, ""),
                     QB_ERR_INVALID);
    qb_producer_destroy(p);
    unsetenv("QB_KAFKA_CLIENT_ID");

    setenv("QB_KAFKA_NOT_A_PROP", "1", 1);
    E[0] = '\0';
    assert_null(qb_producer_new(E, sizeof(E)));
    if (!strstr(E, "QB_KAFKA_NOT_A_PROP")) fail_msg("error does not name the variable: %s", E);
    E[0] = '\0';
    assert_null(qb_consumer_new(group, topics, 1, nop_handler, NULL, E, sizeof(E)));
    if (!strstr(E, "QB_KAFKA_NOT_A_PROP")) fail_msg("error does not name the variable: %s", E);
    unsetenv("QB_KAFKA_NOT_A_PROP");

    setenv("QB_KAFKA_FETCH_WAIT_MAX_MS", "soon", 1);
    E[0] = '\0';
    assert_null(qb_consumer_new(group, topics, 1, nop_handler, NULL, E, sizeof(E)));
    if (!strstr(E, "QB_KAFKA_FETCH_WAIT_MAX_MS")) fail_msg("error does not name the variable: %s", E);
    unsetenv("QB_KAFKA_FETCH_WAIT_MAX_MS");

    /* A secret's value never appears in an error. */
    setenv("QB_KAFKA_SASL_PASSWORD", "hunter2", 1);
    setenv("QB_KAFKA_NOT_A_PROP2", "1", 1);
    assert_null(qb_producer_new(E, sizeof(E)));
    assert_null(strstr(E, "hunter2"));
    unsetenv("QB_KAFKA_NOT_A_PROP2");
    unsetenv("QB_KAFKA_SASL_PASSWORD");

    /* Unregistered topic. */
    const char *unknown[] = {"no-such-topic-in-registry"};
    assert_null(qb_consumer_new(group, unknown, 1, nop_handler, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "no-such-topic-in-registry"));

    /* Readiness probe. */
    assert_int_equal(qb_bus_ping(NULL, 5000, E, sizeof(E)), QB_OK);
    int64_t t0 = qb_test_now_ms();
    assert_int_equal(qb_bus_ping("127.0.0.1:1", 500, E, sizeof(E)), QB_ERR_UNAVAILABLE);
    assert_true(qb_test_now_ms() - t0 < 5000);
}

int main(void) {
    qb_log_init("it_bus_dlq", QB_LOG_WARN);
    const char *lv = getenv("QB_LOG_LEVEL");
    if (lv && qb_log_level_parse(lv) >= 0) qb_log_set_level((qb_log_level_t)qb_log_level_parse(lv));
    qb_test_env("QB_KAFKA_BROKERS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_goes_to_dlq_and_partition_moves_on),
        cmocka_unit_test(test_retriable_error_is_retried_not_dead_lettered),
        cmocka_unit_test(test_kafka_env_pass_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
