/* it_md_publish.c — bars onto md.bars on the real bus and into the real
 * Redis: per-symbol order and exact fields as read back by a plain reader,
 * deterministic event ids (a re-publish repeats them), Redis holds each
 * symbol's newest bar and an older replay does not overwrite it, and a dead
 * Redis never fails the publish. */
#include "qb_test_assert.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_uuid.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_synth.h"
#include "proto/qb_proto.h"
#include "qb_test.h"

typedef struct { qb_bar_t *v; size_t n, cap; } vec_t;

static qb_err_t collect(void *opaque, const qb_bar_t *b, size_t n, char *e, size_t el) {
    vec_t *v = opaque;
    (void)e; (void)el;
    if (v->n + n > v->cap) {
        v->cap = (v->n + n) * 2;
        v->v = realloc(v->v, v->cap * sizeof(*b));
    }
    memcpy(v->v + v->n, b, n * sizeof(*b));
    v->n += n;
    return QB_OK;
}

/* 3 symbols x 200 one-minute bars, symbol after symbol. */
static vec_t make_bars(const char *prefix) {
    char err[256], sym[32];
    vec_t v = {0};
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 99);
    qb_md_source_t *s = qb_md_synth_source_new(&o, err, sizeof(err));
    qb_md_sink_t sink = {collect, NULL, &v};
    for (int k = 0; k < 3; k++) {
        snprintf(sym, sizeof(sym), "%s%d", prefix, k);
        qb_md_request_t req = {.symbol = sym, .timeframe = "1m",
                               .from = 1704186000LL * QB_NS_PER_SEC};
        req.to = req.from + 200 * QB_NS_PER_MIN;
        assert_int_equal(qb_md_fetch(s, &req, &sink, err, sizeof(err)), QB_OK);
    }
    qb_md_source_destroy(s);
    return v;
}

static void unique_prefix(char *buf, size_t cap) {
    char u[64];
    qb_test_unique(u, sizeof(u), "p");
    /* Symbols allow upper-case letters and digits: keep pid and counter. */
    snprintf(buf, cap, "PUB%d%c", (int)getpid() % 100000, 'A' + (int)(u[strlen(u) - 1] % 26));
}

static void read_back(const char *prefix, size_t want, qb_bar_t *got, char (*ids)[37]) {
    char err[256];
    qb_reader_t *r = qb_reader_new("md.bars", 1, 10000, err, sizeof(err));
    if (!r) fail_msg("reader: %s", err);
    size_t n = 0;
    int64_t deadline = qb_test_now_ms() + 30000;
    while (n < want && qb_test_now_ms() < deadline) {
        qb_bus_msg_t m;
        if (qb_reader_next(r, 500, &m, NULL) != QB_OK || !m.msg) continue;
        const Qb__V1__Bar *b = (const Qb__V1__Bar *)m.msg;
        if (strncmp(b->symbol, prefix, strlen(prefix)) != 0) continue;
        assert_int_equal(m.key_len, strlen(b->symbol));
        assert_memory_equal(m.key, b->symbol, m.key_len);
        qb_bar_t *g = &got[n];
        memset(g, 0, sizeof(*g));
        snprintf(g->symbol.s, sizeof(g->symbol.s), "%s", b->symbol);
        snprintf(g->timeframe, sizeof(g->timeframe), "%s", b->timeframe);
        g->ts = b->ts;
        g->open = b->open; g->high = b->high; g->low = b->low; g->close = b->close;
        g->volume = b->volume;
        assert_string_equal(b->source, "synthetic");
        assert_int_equal(b->header->event_time, b->ts);
        assert_string_equal(b->header->producer, "it-md-publish");
        snprintf(ids[n], 37, "%s", b->header->event_id);
        n++;
    }
    qb_reader_destroy(r);
    if (n != want) fail_msg("read %zu of %zu bars back", n, want);
}

/* Sort read-back bars by (symbol, arrival) to compare per-symbol order:
 * partitions interleave symbols, but each symbol's bars keep their order. */
static void test_publish_order_fields_ids(void **state) {
    (void)state;
    char prefix[32], err[512];
    unique_prefix(prefix, sizeof(prefix));
    vec_t v = make_bars(prefix);
    assert_int_equal(v.n, 600);
    qb_producer_t *p = qb_producer_new(err, sizeof(err));
    assert_non_null(p);
    qb_cache_t *cache = qb_cache_new(qb_test_env("QB_REDIS_URL"), err, sizeof(err));
    assert_non_null(cache);
    assert_int_equal(qb_md_publish_bars(p, cache, v.v, v.n, "synthetic", "it-md-publish",
                                        err, sizeof(err)), QB_OK);
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);

    qb_bar_t *got = calloc(v.n, sizeof(*got));
    char(*ids)[37] = calloc(v.n, 37);
    read_back(prefix, v.n, got, ids);
    /* Per symbol: exactly the published sequence, in order. */
    for (int k = 0; k < 3; k++) {
        size_t gi = 0;
        for (size_t i = 0; i < v.n; i++) {
            if (strcmp(v.v[i].symbol.s, v.v[k * 200].symbol.s) != 0) continue;
            while (gi < v.n && strcmp(got[gi].symbol.s, v.v[i].symbol.s) != 0) gi++;
            assert_true(gi < v.n);
            assert_memory_equal(&got[gi], &v.v[i], sizeof(qb_bar_t));
            char want_id[37];
            qb_md_bar_event_id(&v.v[i], want_id);
            assert_string_equal(ids[gi], want_id);
            gi++;
        }
    }
    /* Event ids are v5 UUIDs, distinct per bar. */
    assert_true(qb_uuid_valid(ids[0]));
    assert_int_equal(ids[0][14], '5');
    assert_string_not_equal(ids[0], ids[1]);

    /* Redis has each symbol's last bar. */
    for (int k = 0; k < 3; k++) {
        const qb_bar_t *last = &v.v[k * 200 + 199];
        char key[96], buf[64], want[40];
        snprintf(key, sizeof(key), "qb:md:last:%s:1m", last->symbol.s);
        size_t len = 0;
        assert_int_equal(qb_cache_hget(cache, key, "close", buf, sizeof(buf), &len, err, sizeof(err)), QB_OK);
        qb_dec_format(last->close, want, sizeof(want));
        assert_string_equal(buf, want);
        snprintf(want, sizeof(want), "%lld", (long long)last->ts);
        assert_int_equal(qb_cache_hget(cache, key, "ts", buf, sizeof(buf), &len, err, sizeof(err)), QB_OK);
        assert_string_equal(buf, want);
    }
    /* Re-publishing an OLDER bar does not replace the newest in Redis. */
    assert_int_equal(qb_md_publish_bars(p, cache, &v.v[0], 1, "synthetic", "it-md-publish",
                                        err, sizeof(err)), QB_OK);
    char key[96], buf[64], want[40];
    size_t len = 0;
    snprintf(key, sizeof(key), "qb:md:last:%s:1m", v.v[0].symbol.s);
    assert_int_equal(qb_cache_hget(cache, key, "ts", buf, sizeof(buf), &len, err, sizeof(err)), QB_OK);
    snprintf(want, sizeof(want), "%lld", (long long)v.v[199].ts);
    assert_string_equal(buf, want);
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);

    qb_cache_destroy(cache);
    qb_producer_destroy(p);
    free(got); free(ids); free(v.v);
}

static void test_dead_redis_never_fails_publish(void **state) {
    (void)state;
    char prefix[32], err[512], url[64];
    unique_prefix(prefix, sizeof(prefix));
    prefix[strlen(prefix) - 1] = 'Z';
    vec_t v = make_bars(prefix);
    qb_producer_t *p = qb_producer_new(err, sizeof(err));
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", qb_test_free_port());
    qb_cache_t *dead = qb_cache_new(url, err, sizeof(err));
    assert_non_null(dead);
    qb_test_capture_stderr_start();
    qb_err_t e = qb_md_publish_bars(p, dead, v.v, v.n, "synthetic", "it-md-publish", err,
                                    sizeof(err));
    char *log = qb_test_capture_stderr_stop();
    assert_int_equal(e, QB_OK);
    assert_non_null(strstr(log, "latest bar not cached in Redis"));
    assert_int_equal(qb_producer_flush(p, 10000), QB_OK);
    qb_bar_t *got = calloc(v.n, sizeof(*got));
    char(*ids)[37] = calloc(v.n, 37);
    read_back(prefix, v.n, got, ids);
    qb_cache_destroy(dead);
    qb_producer_destroy(p);
    free(got); free(ids); free(v.v);
}

int main(void) {
    qb_log_init("it-md-publish", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_order_fields_ids),
        cmocka_unit_test_teardown(test_dead_redis_never_fails_publish,
                                  qb_test_capture_stderr_teardown),
    };
    return cmocka_run_group_tests_name("md_publish", tests, NULL, NULL);
}
