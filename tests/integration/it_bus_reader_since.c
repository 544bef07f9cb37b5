/* it_bus_reader_since.c — qb_reader_new_since / qb_reader_caught_up against
 * the harness's qb-bus (librdkafka's mock cluster, which has no timestamp
 * lookup: the reader's binary search finds the start offsets).
 *
 * On a fresh topic: batch A (1200 messages over every partition), a pause,
 * a time T, a pause, batch B (700). Asserted:
 *  - before anything is written the topic does not exist: NULL, code
 *    QB_ERR_NOT_FOUND;
 *  - a reader since T reads exactly batch B (every message of B once, none
 *    of A), its backlog is B's size, and caught_up turns 1 once B is read
 *    (not before: it was 0 at open);
 *  - since 0 reads A and B; since T + 1 h is caught up at once (backlog 0);
 *  - a qb_reader_new() reader is never "caught up" (no watermarks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "qb/v1/market.pb-c.h"
#include "qb_test.h"

#define NA 1200
#define NB 700

static char TOPIC[64];

static void send_batch(qb_producer_t *p, char tag, int n) {
    for (int i = 0; i < n; i++) {
        char id[32], key[16];
        snprintf(id, sizeof id, "%c-%d", tag, i);
        snprintf(key, sizeof key, "k%d", i);
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        Qb__V1__Bar b = QB__V1__BAR__INIT;
        h.event_id = id;
        b.header = &h;
        b.symbol = "RS";
        b.timeframe = "1m";
        b.ts = i;
        assert_int_equal(qb_producer_send_msg(p, TOPIC, key, strlen(key), &b.base, ""), QB_OK);
    }
    assert_int_equal(qb_producer_flush(p, 30000), QB_OK);
}

/* Read until caught up; count the messages of batch A and of batch B (each
 * B index at most once). */
static void read_all(qb_reader_t *r, int *na, int *nb, int *nb_twice) {
    static unsigned char seen[NB];
    memset(seen, 0, sizeof seen);
    *na = *nb = *nb_twice = 0;
    int64_t deadline = qb_time_mono_ns() + 60 * QB_NS_PER_SEC;
    while (!qb_reader_caught_up(r)) {
        assert_true(qb_time_mono_ns() < deadline);
        qb_bus_msg_t m;
        qb_err_t e = qb_reader_next(r, 1000, &m, NULL);
        if (e == QB_ERR_TIMEOUT) continue;
        assert_int_equal(e, QB_OK);
        assert_non_null(m.msg);
        const Qb__V1__Bar *b = (const Qb__V1__Bar *)m.msg;
        assert_non_null(b->header);
        const char *id = b->header->event_id;
        if (id[0] == 'A') (*na)++;
        else {
            int i = atoi(id + 2);
            assert_true(i >= 0 && i < NB);
            if (seen[i]++) (*nb_twice)++;
            else (*nb)++;
        }
    }
}

static void test_since(void **state) {
    (void)state;
    char err[512];
    qb_test_unique(TOPIC, sizeof TOPIC, "it-reader-since");
    qb_err_t code = QB_OK;
    assert_null(qb_reader_new_since(TOPIC, 1, 5000, &code, err, sizeof err));
    assert_int_equal(code, QB_ERR_NOT_FOUND);

    qb_producer_t *p = qb_producer_new(err, sizeof err);
    assert_non_null(p);
    send_batch(p, 'A', NA);
    usleep(1200 * 1000);
    int64_t t = qb_time_now() / QB_NS_PER_MS;
    usleep(1200 * 1000);
    send_batch(p, 'B', NB);
    qb_producer_destroy(p);

    qb_reader_t *r = qb_reader_new_since(TOPIC, t, 10000, &code, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(code, QB_OK);
    assert_int_equal(qb_reader_backlog(r), NB);
    assert_int_equal(qb_reader_caught_up(r), 0);
    int na, nb, twice;
    read_all(r, &na, &nb, &twice);
    assert_int_equal(na, 0);
    assert_int_equal(nb, NB);
    assert_int_equal(twice, 0);
    qb_reader_destroy(r);

    r = qb_reader_new_since(TOPIC, 0, 10000, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(qb_reader_backlog(r), NA + NB);
    read_all(r, &na, &nb, &twice);
    assert_int_equal(na, NA);
    assert_int_equal(nb, NB);
    qb_reader_destroy(r);

    r = qb_reader_new_since(TOPIC, t + 3600 * 1000, 10000, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(qb_reader_backlog(r), 0);
    assert_int_equal(qb_reader_caught_up(r), 1);
    qb_reader_destroy(r);

    r = qb_reader_new(TOPIC, 1, 10000, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(qb_reader_caught_up(r), 0);
    assert_int_equal(qb_reader_backlog(r), 0);
    qb_reader_destroy(r);
}

int main(void) {
    qb_log_init("it-bus-reader-since", QB_LOG_WARN);
    (void)qb_test_env("QB_KAFKA_BROKERS");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_since)};
    return cmocka_run_group_tests_name("bus_reader_since", tests, NULL, NULL);
}
