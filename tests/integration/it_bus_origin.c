/* it_bus_origin.c — the qb-origin-ns header (qb_bus.h "Origin") against the
 * harness's qb-bus: the time an event entered the platform, carried from
 * hop to hop by libs/bus without code in the services.
 *
 * What is asserted, on two fresh topics IN and OUT:
 *  - a first producer (no thread origin) writes qb-origin-ns equal to its
 *    own qb-produced-ns; a thread with qb_bus_set_origin(X) writes X;
 *  - a message without the header (an older producer: written here with
 *    raw librdkafka) is handed over with origin_ns = its qb-produced-ns;
 *  - the consumer gives the handler m->origin_ns and sets the thread's
 *    origin to it around the handler (qb_bus_origin() inside == m->origin_ns,
 *    the value from before the poll restored after it);
 *  - every message the handler sends to OUT (consume -> send) carries the
 *    incoming origin, not its own produced time, which comes later; a send
 *    from another thread during the handler does not (the origin is the
 *    thread's: it starts a new one);
 *  - a qb_reader (group-less) reports the same origin_ns and header. */
#include <pthread.h>
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
#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "qb/v1/market.pb-c.h"
#include "qb_test.h"

#define SET_ORIGIN 1600000000123456789LL /* an origin set by hand (2020-09-13) */
#define OLD_PRODUCED 1600000000000000042LL /* qb-produced-ns of the header-less one */

static char E[1024];

static void bar_init(Qb__V1__Bar *b, Qb__V1__Header *h, const char *id) {
    qb__v1__header__init(h);
    qb__v1__bar__init(b);
    h->event_id = (char *)id;
    b->header = h;
    b->symbol = "ORIG";
    b->timeframe = "1m";
}

/* The header-less message of an older producer: qb-type and qb-produced-ns
 * only, written with librdkafka directly. */
static void send_old(const char *topic) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", qb_test_env("QB_KAFKA_BROKERS"), err,
                      sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    Qb__V1__Header h;
    Qb__V1__Bar b;
    bar_init(&b, &h, "old");
    uint8_t buf[256];
    size_t n = protobuf_c_message_pack(&b.base, buf);
    rd_kafka_headers_t *hd = rd_kafka_headers_new(2);
    char ns[32];
    snprintf(ns, sizeof ns, "%lld", (long long)OLD_PRODUCED);
    rd_kafka_header_add(hd, "qb-type", -1, "qb.v1.Bar", -1);
    rd_kafka_header_add(hd, "qb-produced-ns", -1, ns, -1);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("ORIG", 4),
                                       RD_KAFKA_V_VALUE(buf, n),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(hd), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

typedef struct fwd_s {
    qb_producer_t *p;
    const char *out;
    int n;
    int64_t origin[3]; /* as the handler saw them: new, set, old */
    int64_t thread_origin[3];
} fwd_t;

typedef struct side_s {
    qb_producer_t *p;
    const char *out;
    qb_err_t err;
} side_t;

/* A send from another thread while the handler runs. */
static void *side_send(void *arg) {
    side_t *s = arg;
    Qb__V1__Header h;
    Qb__V1__Bar b;
    bar_init(&b, &h, "side");
    s->err = qb_producer_send_msg(s->p, s->out, "ORIG", 4, &b.base, NULL);
    return NULL;
}

static qb_err_t handler(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    fwd_t *f = opaque;
    const Qb__V1__Bar *in = (const Qb__V1__Bar *)m->msg;
    const char *id = in->header && in->header->event_id ? in->header->event_id : "";
    int k = strcmp(id, "new") == 0 ? 0 : strcmp(id, "set") == 0 ? 1 : strcmp(id, "old") == 0 ? 2
                                                                                           : -1;
    assert_true(k >= 0);
    f->origin[k] = m->origin_ns;
    f->thread_origin[k] = qb_bus_origin();
    /* consume -> send: the forwarded copy is named fwd-<id> */
    char fid[32];
    snprintf(fid, sizeof fid, "fwd-%s", id);
    Qb__V1__Header h;
    Qb__V1__Bar b;
    bar_init(&b, &h, fid);
    usleep(2000); /* the copy's produced time is clearly after the origin */
    assert_int_equal(qb_producer_send_msg(f->p, f->out, "ORIG", 4, &b.base, NULL), QB_OK);
    if (k == 0) {
        side_t s = {f->p, f->out, QB_ERR_INVALID};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, side_send, &s), 0);
        pthread_join(th, NULL);
        assert_int_equal(s.err, QB_OK);
    }
    f->n++;
    return QB_OK;
}

static void test_origin_carried(void **state) {
    (void)state;
    char in[128], out[128], group[128];
    qb_test_unique(in, sizeof(in), "it-origin-in");
    qb_test_unique(out, sizeof(out), "it-origin-out");
    qb_test_unique(group, sizeof(group), "it-origin-g");
    assert_true(qb_test_topic_partitions(in) >= 1);
    assert_true(qb_test_topic_partitions(out) >= 1);
    assert_non_null(qb_topics_add(in, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));
    assert_non_null(qb_topics_add(out, "qb.v1.Bar", "symbol", 0, E, sizeof(E)));
    qb_producer_t *p = qb_producer_new(E, sizeof(E));
    assert_non_null(p);

    /* 1. the first producer: origin = its produced time; 2. a set origin */
    assert_int_equal(qb_bus_origin(), 0);
    Qb__V1__Header h;
    Qb__V1__Bar b;
    bar_init(&b, &h, "new");
    assert_int_equal(qb_producer_send_msg(p, in, "ORIG", 4, &b.base, NULL), QB_OK);
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    assert_int_equal(qb_bus_set_origin(SET_ORIGIN), 0);
    bar_init(&b, &h, "set");
    assert_int_equal(qb_producer_send_msg(p, in, "ORIG", 4, &b.base, NULL), QB_OK);
    assert_int_equal(qb_bus_set_origin(0), SET_ORIGIN);
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    /* 3. an older producer's message without the header */
    send_old(in);

    /* what is on IN, read group-less */
    qb_reader_t *r = qb_reader_new(in, 1, 10000, E, sizeof(E));
    assert_non_null(r);
    int64_t want[3] = {0, SET_ORIGIN, OLD_PRODUCED};
    int got = 0;
    for (int i = 0; i < 100 && got < 3; i++) {
        qb_bus_msg_t m;
        if (qb_reader_next(r, 100, &m, NULL) != QB_OK) continue;
        const Qb__V1__Bar *x = (const Qb__V1__Bar *)m.msg;
        assert_non_null(x);
        const char *id = x->header->event_id;
        const char *hdr = qb_reader_header(r, "qb-origin-ns");
        if (strcmp(id, "new") == 0) {
            assert_true(m.produced_ns > 0);
            assert_true(m.origin_ns == m.produced_ns);
            assert_non_null(hdr);
            assert_true(strtoll(hdr, NULL, 10) == m.produced_ns);
            want[0] = m.origin_ns;
        } else if (strcmp(id, "set") == 0) {
            assert_true(m.origin_ns == SET_ORIGIN);
            assert_true(m.produced_ns > SET_ORIGIN);
        } else {
            assert_string_equal(id, "old");
            assert_null(hdr);
            assert_true(m.origin_ns == OLD_PRODUCED);
        }
        got++;
    }
    assert_int_equal(got, 3);
    qb_reader_destroy(r);

    /* consume -> send */
    static fwd_t f;
    memset(&f, 0, sizeof f);
    f.p = p;
    f.out = out;
    const char *topics[] = {in};
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, handler, &f, E, sizeof(E));
    assert_non_null(c);
    qb_bus_set_origin(7); /* the poller's own value survives the handlers */
    int64_t deadline = qb_test_now_ms() + 30000;
    while (f.n < 3 && qb_test_now_ms() < deadline) qb_consumer_poll(c, 100);
    assert_int_equal(f.n, 3);
    assert_int_equal(qb_bus_set_origin(0), 7);
    for (int k = 0; k < 3; k++) {
        assert_true(f.origin[k] == want[k]);
        assert_true(f.thread_origin[k] == want[k]);
    }
    qb_consumer_destroy(c);
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);

    /* what the handler sent carries the incoming origin */
    r = qb_reader_new(out, 1, 10000, E, sizeof(E));
    assert_non_null(r);
    got = 0;
    int side = 0;
    for (int i = 0; i < 100 && got + side < 4; i++) {
        qb_bus_msg_t m;
        if (qb_reader_next(r, 100, &m, NULL) != QB_OK) continue;
        const Qb__V1__Bar *x = (const Qb__V1__Bar *)m.msg;
        assert_non_null(x);
        const char *id = x->header->event_id;
        const char *hdr = qb_reader_header(r, "qb-origin-ns");
        assert_non_null(hdr);
        assert_true(strtoll(hdr, NULL, 10) == m.origin_ns);
        if (strcmp(id, "side") == 0) { /* another thread: a new origin */
            assert_true(m.origin_ns == m.produced_ns);
            assert_true(m.origin_ns > want[0]);
            side++;
            continue;
        }
        int k = strcmp(id, "fwd-new") == 0 ? 0 : strcmp(id, "fwd-set") == 0 ? 1 : 2;
        if (k == 2) assert_string_equal(id, "fwd-old");
        assert_true(m.origin_ns == want[k]);
        assert_true(m.produced_ns > m.origin_ns);
        got++;
    }
    assert_int_equal(got, 3);
    assert_int_equal(side, 1);
    qb_reader_destroy(r);
    qb_producer_destroy(p);
}

int main(void) {
    qb_log_init("it-bus-origin", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_origin_carried)};
    return cmocka_run_group_tests_name("bus_origin", tests, NULL, NULL);
}
