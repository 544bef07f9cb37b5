/* it_bus_ack_mark.c — what qb-features' flush without waiting relies on,
 * against the harness's qb-bus:
 *   - the producer's delivery watermark (qb_producer_track_delivery):
 *     sent_seq counts what was queued, done_seq reaches it once every
 *     report came, with no failure counted; off by default (both 0);
 *   - taken offsets (qb_consumer_pending_take / qb_consumer_store_taken):
 *     200 Bars on a fresh topic, the deferred offsets of the first 120 are
 *     taken while handling the 121st and stored only after all 200 were
 *     handled; the 80 later ones stay pending and are not committed at
 *     close: a second consumer of the group gets exactly those 80. */
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
#include "qb/v1/market.pb-c.h"
#include "qb_test.h"

#define N 200
#define STORED 120

static char E[1024];

typedef struct seen_s {
    unsigned char ids[N];
    int n;
    int store_at; /* store pending after this many; 0 = never */
    qb_consumer_t *c;
    int revokes, revoked_parts;
    qb_offsets_t *taken;
} seen_t;

static qb_err_t handler(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    seen_t *s = opaque;
    const Qb__V1__Bar *b = (const Qb__V1__Bar *)m->msg;
    int id = atoi(b->header->event_id + 2);
    if (id < 0 || id >= N) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "bad id");
    s->ids[id]++;
    s->n++;
    /* Called inside the handler, a store covers the records handled before
     * this one (this one is handled when the handler returns). */
    if (s->store_at && s->n == s->store_at + 1) {
        s->taken = qb_consumer_pending_take(s->c);
        assert_non_null(s->taken);
        assert_int_equal(qb_consumer_pending(s->c), 0);
    }
    return QB_OK;
}

static void on_revoke(void *opaque, const void *parts) {
    seen_t *s = opaque;
    s->revokes++;
    s->revoked_parts += qb_consumer_revoked_count(parts);
    for (int i = 0; i < qb_consumer_revoked_count(parts); i++) {
        assert_non_null(qb_consumer_revoked_topic(parts, i));
        assert_true(qb_consumer_revoked_partition(parts, i) >= 0);
    }
}

static void poll_until(qb_consumer_t *c, seen_t *s, int want, int ms) {
    int64_t deadline = qb_test_now_ms() + ms;
    while (s->n < want && qb_test_now_ms() < deadline) qb_consumer_poll(c, 100);
}

static void test_delivery_mark(void **state) {
    (void)state;
    char topic[128];
    qb_test_unique(topic, sizeof(topic), "it-ackmark");
    assert_true(qb_test_topic_partitions(topic) > 1);
    assert_non_null(qb_topics_add(topic, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));
    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    assert_non_null(p);
    assert_int_equal(qb_producer_sent_seq(p), 0); /* off: no marks */
    assert_int_equal(qb_producer_track_delivery(p), QB_OK);
    for (int i = 0; i < 500; i++) {
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        Qb__V1__Bar b = QB__V1__BAR__INIT;
        char id[32], key[8];
        snprintf(id, sizeof(id), "m-%d", i);
        snprintf(key, sizeof(key), "K%d", i % 7);
        h.event_id = id;
        b.header = &h;
        b.symbol = key;
        assert_int_equal(qb_producer_send_msg(p, topic, key, strlen(key), &b.base, NULL), QB_OK);
    }
    assert_int_equal(qb_producer_sent_seq(p), 500);
    assert_true(qb_producer_done_seq(p) <= 500);
    int64_t deadline = qb_test_now_ms() + 20000;
    while (qb_producer_done_seq(p) < 500 && qb_test_now_ms() < deadline) qb_producer_poll(p, 50);
    assert_int_equal(qb_producer_done_seq(p), 500);
    assert_int_equal(qb_producer_failures(p), 0);
    assert_int_equal(qb_producer_outq_len(p), 0);
    qb_producer_destroy(p);
}

static void test_taken_offsets(void **state) {
    (void)state;
    char topic[128], group[128];
    qb_test_unique(topic, sizeof(topic), "it-taken");
    qb_test_unique(group, sizeof(group), "it-taken-g");
    assert_true(qb_test_topic_partitions(topic) > 1);
    assert_non_null(qb_topics_add(topic, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));
    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        Qb__V1__Bar b = QB__V1__BAR__INIT;
        char id[32], key[8];
        snprintf(id, sizeof(id), "d-%d", i);
        snprintf(key, sizeof(key), "K%d", i % 7);
        h.event_id = id;
        b.header = &h;
        b.symbol = key;
        assert_int_equal(qb_producer_send_msg(p, topic, key, strlen(key), &b.base, NULL), QB_OK);
    }
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    qb_producer_destroy(p);

    const char *topics[] = {topic};
    setenv("QB_KAFKA_AUTO_COMMIT_INTERVAL_MS", "100", 1);
    static seen_t a;
    memset(&a, 0, sizeof a);
    a.store_at = STORED;
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, handler, &a, E, sizeof(E));
    assert_non_null(c);
    a.c = c;
    qb_consumer_set_deferred_store(c, 1);
    qb_consumer_set_revoke_cb(c, on_revoke, &a);
    assert_null(qb_consumer_pending_take(c)); /* nothing handled yet */
    poll_until(c, &a, N, 30000);
    assert_int_equal(a.n, N);
    assert_true(qb_consumer_pending(c) > 0); /* the last 80 wait */
    /* the first 120 become durable only now, after the 80 were handled */
    assert_int_equal(qb_consumer_store_taken(c, a.taken), QB_OK);
    assert_int_equal(qb_consumer_store_taken(c, NULL), QB_OK);
    qb_offsets_free(NULL);
    assert_true(qb_consumer_pending(c) > 0);
    for (int i = 0; i < 5; i++) qb_consumer_poll(c, 100);
    assert_int_equal(qb_consumer_close(c), QB_OK);
    qb_consumer_destroy(c);

    static seen_t b;
    memset(&b, 0, sizeof b);
    c = qb_consumer_new(group, topics, 1, handler, &b, E, sizeof(E));
    assert_non_null(c);
    poll_until(c, &b, N - STORED, 30000);
    for (int i = 0; i < 10; i++) qb_consumer_poll(c, 100); /* nothing more comes */
    unsetenv("QB_KAFKA_AUTO_COMMIT_INTERVAL_MS");
    assert_int_equal(b.n, N - STORED);
    int again = 0;
    for (int i = 0; i < N; i++) {
        assert_true(b.ids[i] <= 1);
        if (b.ids[i]) again++;
    }
    assert_int_equal(again, N - STORED);
    qb_consumer_destroy(c);
}

int main(void) {
    qb_log_init("it-bus-ack-mark", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_delivery_mark),
                                       cmocka_unit_test(test_taken_offsets)};
    return cmocka_run_group_tests_name("bus_ack_mark", tests, NULL, NULL);
}
