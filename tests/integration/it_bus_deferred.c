/* it_bus_deferred.c — deferred offset storing (qb_consumer_set_deferred_store)
 * against the harness's qb-bus.
 *
 * What is asserted: 200 Bars (ids d-0..d-199) on a fresh 4-partition topic;
 * a deferred consumer handles all 200 but makes only the first 120 "durable"
 * (qb_consumer_store_pending while handling the 121st), then closes: its revoke
 * callback runs at close with every partition it had, before the commit.
 * A second consumer of the same group then gets exactly the 80 records
 * handled after the last store (ids handled-but-not-stored), none of the
 * 120 stored ones. Auto-commit stays on: it commits only stored offsets. */
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
    if (s->store_at && s->n == s->store_at + 1)
        assert_int_equal(qb_consumer_store_pending(s->c), QB_OK);
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

static void test_deferred_store(void **state) {
    (void)state;
    char topic[128], group[128];
    qb_test_unique(topic, sizeof(topic), "it-defer");
    qb_test_unique(group, sizeof(group), "it-defer-g");
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
    poll_until(c, &a, N, 30000);
    assert_int_equal(a.n, N);
    assert_true(qb_consumer_pending(c) > 0); /* the last 80 wait */
    /* Let auto-commit run a few times: it must not commit the pending ones. */
    for (int i = 0; i < 5; i++) qb_consumer_poll(c, 100);
    assert_int_equal(qb_consumer_close(c), QB_OK);
    assert_true(a.revokes >= 1);
    assert_true(a.revoked_parts >= 1);
    qb_consumer_destroy(c);

    static seen_t b;
    memset(&b, 0, sizeof b);
    c = qb_consumer_new(group, topics, 1, handler, &b, E, sizeof(E));
    assert_non_null(c);
    poll_until(c, &b, N - STORED, 30000);
    for (int i = 0; i < 10; i++) qb_consumer_poll(c, 100); /* nothing more comes */
    unsetenv("QB_KAFKA_AUTO_COMMIT_INTERVAL_MS");
    /* Exactly what was handled after the last store came again. */
    assert_int_equal(b.n, N - STORED);
    /* Which ids those are depends on the partition interleaving; each of
     * them was handled once before, and none twice now. */
    int again = 0;
    for (int i = 0; i < N; i++) {
        assert_true(b.ids[i] <= 1);
        if (b.ids[i]) again++;
    }
    assert_int_equal(again, N - STORED);
    qb_consumer_destroy(c);
}

int main(void) {
    qb_log_init("it-bus-deferred", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_deferred_store)};
    return cmocka_run_group_tests_name("bus_deferred", tests, NULL, NULL);
}
