/* it_md_replay.c — replay of stored bars (libs/md/qb_md_replay.h) against
 * the real PostgreSQL (own migrated database per test) and the real bus.
 *
 * What is asserted:
 *   - three symbols with interleaving (and partly equal) bar times, two
 *     stored sources: the replay hands out exactly the (ts, symbol) merge
 *     of the stored bars, page after page (tiny chunks so every cursor
 *     reads several pages), with the stored source of each bar; a [from,
 *     to) replay gives exactly the subset; "all symbols" finds the three;
 *   - published onto md.bars and read back with a plain reader (filtering
 *     this test's unique symbols): per symbol EXACTLY the stored sequence,
 *     every field, event ids = qb_md_bar_event_id, Bar.source as stored;
 *     within each partition the reader sees the global (ts, symbol) order;
 *   - pacing: 10 minutes of bar time at 1200x takes >= 0.45 s and no bar
 *     leaves before its deadline (lower bounds only); cancel stops a run;
 *   - 200k bars of 4 symbols: every bar once, in global order, no query
 *     returns more than the chunk size (memory bounded by chunk x symbols);
 *   - the "replay" source and the errors (unknown symbol, bad options). */
#include "qb_test_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_replay.h"
#include "md/qb_md_store.h"
#include "proto/qb_proto.h"
#include "qb_test.h"
#include "qb_test_md.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

static char E[2048];

#define T0 (1704186000LL * QB_NS_PER_SEC) /* 2024-01-02T09:00:00Z */

typedef qb_test_md_db_t fx_t; /* a fresh migrated database */

/* Symbols unique to this process (md.bars is shared by the whole suite). */
static void unique_prefix(char *buf, size_t cap, char tag) {
    char u[64];
    qb_test_unique(u, sizeof u, "r");
    snprintf(buf, cap, "RPL%d%c%c", (int)getpid() % 100000, tag,
             'A' + (int)((unsigned char)u[strlen(u) - 1] % 26));
}

static qb_bar_t mkbar(const char *sym, const char *tf, qb_time_t ts, int64_t k) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.symbol.s, sizeof b.symbol.s, "%s", sym);
    snprintf(b.timeframe, sizeof b.timeframe, "%s", tf);
    b.ts = ts;
    b.low = (100 + k % 37) * QB_DEC_SCALE + 12345678;
    b.open = b.low + (k % 5) * 1000000;
    b.close = b.low + (k % 7) * 1000000;
    b.high = b.low + 9000000 + k;
    b.volume = (1000 + k) * QB_DEC_SCALE + 5;
    return b;
}

static void store_bars(qb_store_t *s, const char *sym, const char *source, const qb_bar_t *b,
                       size_t n) {
    int32_t id;
    OK(qb_md_asset_get_or_create(s, sym, "equity", &id, E, sizeof E));
    qb_md_load_result_t res;
    OK(qb_md_store_load_bars(s, id, b[0].timeframe, source, b, NULL, n, 0, &res, E, sizeof E));
    assert_int_equal(res.loaded, (int64_t)n);
}

/* What the replay handed out, with sources and batch times. */
typedef struct rec_s {
    qb_bar_t *v;
    char (*src)[16];
    int64_t *mono; /* when each bar was handed out */
    size_t n, cap;
} rec_t;

static qb_err_t rec_emit(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                         char *errstr, size_t errstr_size) {
    rec_t *r = opaque;
    (void)errstr;
    (void)errstr_size;
    int64_t now = qb_time_mono_ns();
    if (r->n + n > r->cap) {
        r->cap = (r->n + n) * 2;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
        r->src = realloc(r->src, r->cap * sizeof(*r->src));
        r->mono = realloc(r->mono, r->cap * sizeof(*r->mono));
    }
    for (size_t i = 0; i < n; i++) {
        r->v[r->n] = bars[i];
        snprintf(r->src[r->n], sizeof r->src[0], "%s", source);
        r->mono[r->n] = now;
        r->n++;
    }
    return QB_OK;
}

static void rec_free(rec_t *r) {
    free(r->v);
    free(r->src);
    free(r->mono);
    memset(r, 0, sizeof *r);
}

static int bar_order(const qb_bar_t *a, const qb_bar_t *b) {
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return strcmp(a->symbol.s, b->symbol.s);
}

static int bar_cmp_qsort(const void *a, const void *b) { return bar_order(a, b); }

/* Three symbols: A every minute (60), B every 2 minutes (30, same times as
 * A: ties), C at minutes 1, 4, 7, ... (20); C stored by another source. */
typedef struct set3_s {
    char sym[3][32];
    qb_bar_t *all; /* every stored bar in (ts, symbol) order */
    size_t n;
} set3_t;

static void make_set3(qb_store_t *s, set3_t *st) {
    char prefix[24];
    unique_prefix(prefix, sizeof prefix, 'M');
    qb_bar_t b[3][60];
    size_t nb[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) snprintf(st->sym[k], sizeof st->sym[k], "%s%c", prefix, 'A' + k);
    for (int m = 0; m < 60; m++) {
        qb_time_t ts = T0 + m * QB_NS_PER_MIN;
        b[0][nb[0]] = mkbar(st->sym[0], "1m", ts, m);
        nb[0]++;
        if (m % 2 == 0) {
            b[1][nb[1]] = mkbar(st->sym[1], "1m", ts, 100 + m);
            nb[1]++;
        }
        if (m % 3 == 1) {
            b[2][nb[2]] = mkbar(st->sym[2], "1m", ts, 200 + m);
            nb[2]++;
        }
    }
    store_bars(s, st->sym[0], "csv", b[0], nb[0]);
    store_bars(s, st->sym[1], "csv", b[1], nb[1]);
    store_bars(s, st->sym[2], "alpaca", b[2], nb[2]);
    st->n = nb[0] + nb[1] + nb[2];
    assert_int_equal(st->n, 110);
    st->all = calloc(st->n, sizeof(*st->all));
    size_t j = 0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < nb[k]; i++) st->all[j++] = b[k][i];
    qsort(st->all, st->n, sizeof(*st->all), bar_cmp_qsort);
}

static void test_merge_order_exact(void **state) {
    fx_t *f = *state;
    set3_t st;
    make_set3(f->s, &st);
    const char *syms[3] = {st.sym[2], st.sym[0], st.sym[1]}; /* any order */
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.symbols = syms;
    o.nsymbols = 3;
    o.timeframe = "1m";
    o.chunk_rows = 7; /* several pages per symbol, page ends everywhere */
    o.batch_bars = 5;
    qb_md_replay_t *r = NULL;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    rec_t rec = {0};
    OK(qb_md_replay_run(r, rec_emit, &rec, E, sizeof E));
    assert_int_equal(rec.n, st.n);
    for (size_t i = 0; i < st.n; i++) {
        assert_memory_equal(&rec.v[i], &st.all[i], sizeof(qb_bar_t));
        int is_c = strcmp(st.all[i].symbol.s, st.sym[2]) == 0;
        assert_string_equal(rec.src[i], is_c ? "alpaca" : "csv");
    }
    qb_md_replay_stats_t s;
    qb_md_replay_stats(r, &s);
    assert_int_equal(s.bars, (int64_t)st.n);
    assert_int_equal(s.symbols, 3);
    assert_int_equal(s.chunk_rows, 7);
    assert_true(s.max_rows_per_query <= 7);
    assert_int_equal(s.rows_fetched, (int64_t)st.n);
    /* 60/7 -> 9 pages (the last short), 30/7 -> 5, 20/7 -> 3. */
    assert_int_equal(s.queries, 9 + 5 + 3);
    assert_int_equal(s.first_ts, T0);
    assert_int_equal(s.last_ts, T0 + 59 * QB_NS_PER_MIN);
    assert_int_equal(s.canceled, 0);

    /* Run again (starts over), [from, to) subset, all symbols. */
    rec_free(&rec);
    qb_md_replay_destroy(r);
    memset(&o, 0, sizeof o);
    o.timeframe = "1m";
    o.from = T0 + 10 * QB_NS_PER_MIN;
    o.to = T0 + 20 * QB_NS_PER_MIN;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    OK(qb_md_replay_run(r, rec_emit, &rec, E, sizeof E));
    size_t j = 0;
    for (size_t i = 0; i < st.n; i++) {
        if (st.all[i].ts < o.from || st.all[i].ts >= o.to) continue;
        assert_true(j < rec.n);
        assert_memory_equal(&rec.v[j], &st.all[i], sizeof(qb_bar_t));
        j++;
    }
    assert_int_equal(j, rec.n);
    assert_int_equal(rec.n, 10 + 5 + 4); /* A 10..19, B 10..18 even, C 10, 13, 16, 19 */
    qb_md_replay_stats(r, &s);
    assert_int_equal(s.symbols, 3);
    rec_free(&rec);
    OK(qb_md_replay_run(r, rec_emit, &rec, E, sizeof E));
    assert_int_equal(rec.n, 19);
    rec_free(&rec);
    qb_md_replay_destroy(r);
    free(st.all);
}

/* Read this test's bars back from md.bars (shared topic: filter by prefix). */
typedef struct got_s {
    qb_bar_t bar;
    char id[37];
    char source[16];
    int32_t partition;
} got_t;

/* Reads until `want` bars came, then 1.5 s more for any extra (got has
 * room for want + 1). */
static size_t read_back(const char *prefix, size_t want, got_t *got) {
    char err[256];
    qb_reader_t *rd = qb_reader_new("md.bars", 1, 10000, err, sizeof err);
    if (!rd) fail_msg("reader: %s", err);
    size_t n = 0;
    int64_t deadline = qb_test_now_ms() + 30000;
    while (n <= want && qb_test_now_ms() < deadline) {
        qb_bus_msg_t m;
        if (qb_reader_next(rd, 500, &m, NULL) != QB_OK || !m.msg) continue;
        const Qb__V1__Bar *b = (const Qb__V1__Bar *)m.msg;
        if (strncmp(b->symbol, prefix, strlen(prefix)) != 0) continue;
        got_t *g = &got[n++];
        if (n == want) deadline = qb_test_now_ms() + 1500;
        memset(g, 0, sizeof *g);
        snprintf(g->bar.symbol.s, sizeof g->bar.symbol.s, "%s", b->symbol);
        snprintf(g->bar.timeframe, sizeof g->bar.timeframe, "%s", b->timeframe);
        g->bar.ts = b->ts;
        g->bar.open = b->open;
        g->bar.high = b->high;
        g->bar.low = b->low;
        g->bar.close = b->close;
        g->bar.volume = b->volume;
        snprintf(g->id, sizeof g->id, "%s", b->header->event_id);
        snprintf(g->source, sizeof g->source, "%s", b->source);
        g->partition = m.partition;
        assert_int_equal(b->header->event_time, b->ts);
        assert_string_equal(b->header->producer, "it-md-replay");
        assert_int_equal(m.key_len, strlen(b->symbol));
        assert_memory_equal(m.key, b->symbol, m.key_len);
    }
    qb_reader_destroy(rd);
    return n;
}

static void test_publish_stored_sequence(void **state) {
    fx_t *f = *state;
    set3_t st;
    make_set3(f->s, &st);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s", st.sym[0]);
    prefix[strlen(prefix) - 1] = '\0'; /* the common prefix of the three */
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.timeframe = "1m"; /* all symbols: this database has only these three */
    o.chunk_rows = 8;
    o.batch_bars = 16;
    qb_md_replay_t *r = NULL;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    char err[512];
    qb_producer_t *p = qb_producer_new(err, sizeof err);
    assert_non_null(p);
    qb_cache_t *cache = qb_cache_new(qb_test_env("QB_REDIS_URL"), err, sizeof err);
    assert_non_null(cache);
    OK(qb_md_replay_publish(r, p, cache, "it-md-replay", E, sizeof E));
    qb_md_replay_stats_t s;
    qb_md_replay_stats(r, &s);
    assert_int_equal(s.bars, (int64_t)st.n);

    got_t *got = calloc(st.n + 1, sizeof(*got));
    size_t n = read_back(prefix, st.n, got);
    assert_int_equal(n, st.n);
    /* Per symbol: exactly the stored sequence (qb_md_store_read_bars). */
    for (int k = 0; k < 3; k++) {
        qb_bar_t *stored = NULL;
        size_t ns = 0;
        OK(qb_md_store_read_bars(f->s, st.sym[k], "1m", 0, 0, &stored, NULL, &ns, E, sizeof E));
        size_t gi = 0;
        for (size_t i = 0; i < ns; i++) {
            while (gi < n && strcmp(got[gi].bar.symbol.s, st.sym[k]) != 0) gi++;
            assert_true(gi < n);
            assert_memory_equal(&got[gi].bar, &stored[i], sizeof(qb_bar_t));
            char want[37];
            qb_md_bar_event_id(&stored[i], want);
            assert_string_equal(got[gi].id, want);
            assert_string_equal(got[gi].source, k == 2 ? "alpaca" : "csv");
            gi++;
        }
        for (gi++; gi < n; gi++) assert_string_not_equal(got[gi].bar.symbol.s, st.sym[k]);
        free(stored);
    }
    /* The merge order as the bus keeps it: within each partition the reader
     * sees (ts, symbol) non-decreasing. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (got[j].partition == got[i].partition) {
                assert_true(bar_order(&got[i].bar, &got[j].bar) < 0);
                break;
            }
    /* Redis: each symbol's newest bar. */
    for (int k = 0; k < 3; k++) {
        char key[96], buf[64], want[32];
        size_t len = 0;
        snprintf(key, sizeof key, "qb:md:last:%s:1m", st.sym[k]);
        OK(qb_cache_hget(cache, key, "ts", buf, sizeof buf, &len, E, sizeof E));
        qb_time_t last = T0 + (k == 0 ? 59 : k == 1 ? 58 : 58) * QB_NS_PER_MIN;
        snprintf(want, sizeof want, "%lld", (long long)last);
        assert_string_equal(buf, want);
    }
    free(got);
    qb_cache_destroy(cache);
    qb_producer_destroy(p);
    qb_md_replay_destroy(r);
    free(st.all);
}

static void cancel_on_progress(void *opaque, int64_t done, qb_time_t ts) {
    (void)done;
    (void)ts;
    *(volatile sig_atomic_t *)opaque = 1;
}

static void test_pacing_and_cancel(void **state) {
    fx_t *f = *state;
    char sym[32];
    unique_prefix(sym, sizeof sym, 'P');
    qb_bar_t b[11];
    for (int m = 0; m <= 10; m++) b[m] = mkbar(sym, "1m", T0 + m * QB_NS_PER_MIN, m);
    store_bars(f->s, sym, "csv", b, 11);
    const char *syms[1] = {sym};
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.symbols = syms;
    o.nsymbols = 1;
    o.timeframe = "1m";
    o.speed = 1200; /* 10 minutes of bar time -> 0.5 s */
    qb_md_replay_t *r = NULL;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    rec_t rec = {0};
    int64_t t0 = qb_test_now_ms();
    OK(qb_md_replay_run(r, rec_emit, &rec, E, sizeof E));
    int64_t took = qb_test_now_ms() - t0;
    assert_int_equal(rec.n, 11);
    assert_true(took >= 450);
    /* No bar before its deadline: 50 ms of wall time per minute of bars. */
    for (size_t i = 1; i < rec.n; i++)
        assert_true(rec.mono[i] - rec.mono[0] >= (int64_t)i * 50 * QB_NS_PER_MS - QB_NS_PER_MS);
    qb_md_replay_stats_t s;
    qb_md_replay_stats(r, &s);
    assert_true(s.elapsed_ns >= 450 * QB_NS_PER_MS);
    rec_free(&rec);
    qb_md_replay_destroy(r);

    /* Cancel: a slow replay (10 s of wall time per bar) stopped from the
     * progress callback of its first batch; it was sleeping then. */
    static volatile sig_atomic_t cancel;
    cancel = 0;
    o.speed = 6;
    o.cancel = &cancel;
    o.progress = cancel_on_progress;
    o.progress_opaque = (void *)&cancel;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    OK(qb_md_replay_run(r, rec_emit, &rec, E, sizeof E));
    qb_md_replay_stats(r, &s);
    assert_int_equal(s.canceled, 1);
    assert_int_equal(rec.n, 1);
    assert_int_equal(s.bars, 1);
    rec_free(&rec);
    qb_md_replay_destroy(r);
}

/* Counts and checks order without keeping the bars. */
typedef struct big_s {
    qb_bar_t prev;
    int64_t n, per[4];
    char sym[4][32];
    int bad_order;
} big_t;

static qb_err_t big_emit(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                         char *errstr, size_t errstr_size) {
    big_t *g = opaque;
    (void)source;
    (void)errstr;
    (void)errstr_size;
    for (size_t i = 0; i < n; i++) {
        if (g->n > 0 && bar_order(&g->prev, &bars[i]) >= 0) g->bad_order++;
        for (int k = 0; k < 4; k++)
            if (strcmp(bars[i].symbol.s, g->sym[k]) == 0) g->per[k]++;
        g->prev = bars[i];
        g->n++;
    }
    return QB_OK;
}

static void test_large_bounded(void **state) {
    fx_t *f = *state;
    enum { PER = 50000, CHUNK = 1000 };
    char prefix[24];
    unique_prefix(prefix, sizeof prefix, 'L');
    big_t g;
    memset(&g, 0, sizeof g);
    qb_bar_t *b = calloc(PER, sizeof(*b));
    for (int k = 0; k < 4; k++) {
        snprintf(g.sym[k], sizeof g.sym[k], "%s%c", prefix, 'A' + k);
        /* Symbol k starts k minutes later, steps 1..4 minutes: interleaved,
         * spanning several yearly partitions for the slow ones. */
        for (int i = 0; i < PER; i++)
            b[i] = mkbar(g.sym[k], "1m", T0 + ((int64_t)k + (int64_t)i * (k + 1) * 11) * QB_NS_PER_MIN, i);
        store_bars(f->s, g.sym[k], "synthetic", b, PER);
    }
    free(b);
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.timeframe = "1m";
    o.chunk_rows = CHUNK;
    qb_md_replay_t *r = NULL;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    OK(qb_md_replay_run(r, big_emit, &g, E, sizeof E));
    assert_int_equal(g.n, 4 * PER);
    assert_int_equal(g.bad_order, 0);
    for (int k = 0; k < 4; k++) assert_int_equal(g.per[k], PER);
    qb_md_replay_stats_t s;
    qb_md_replay_stats(r, &s);
    assert_int_equal(s.bars, 4 * PER);
    assert_int_equal(s.rows_fetched, 4 * PER);
    assert_int_equal(s.max_rows_per_query, CHUNK);
    /* 50 full pages per symbol, then one empty page to learn the end. */
    assert_int_equal(s.queries, 4 * (PER / CHUNK + 1));
    fprintf(stderr, "replayed %lld bars in %.3f s (%lld queries)\n", (long long)s.bars,
            (double)s.elapsed_ns / 1e9, (long long)s.queries);
    qb_md_replay_destroy(r);

    /* The automatic chunk: the row budget shared by the 4 symbols, capped. */
    memset(&g.per, 0, sizeof g.per);
    g.n = 0;
    o.chunk_rows = 0;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    OK(qb_md_replay_run(r, big_emit, &g, E, sizeof E));
    qb_md_replay_stats(r, &s);
    assert_int_equal(g.n, 4 * PER);
    assert_int_equal(g.bad_order, 0);
    assert_int_equal(s.chunk_rows, QB_MD_REPLAY_CHUNK_MAX);
    assert_true(s.max_rows_per_query <= (int64_t)QB_MD_REPLAY_CHUNK_MAX);
    qb_md_replay_destroy(r);
}

typedef struct sinkrec_s {
    qb_bar_t v[64];
    size_t n;
    int batches;
} sinkrec_t;

static qb_err_t sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                          size_t errstr_size) {
    sinkrec_t *r = opaque;
    (void)errstr;
    (void)errstr_size;
    for (size_t i = 0; i < n && r->n < 64; i++) r->v[r->n++] = bars[i];
    r->batches++;
    return QB_OK;
}

static void test_source_and_errors(void **state) {
    fx_t *f = *state;
    set3_t st;
    make_set3(f->s, &st);
    qb_md_source_t *src = qb_md_replay_source_new(f->s, 0, NULL, E, sizeof E);
    assert_non_null(src);
    assert_string_equal(qb_md_source_name(src), "replay");
    sinkrec_t rec;
    memset(&rec, 0, sizeof rec);
    qb_md_sink_t sink = {sink_bars, NULL, &rec};
    qb_md_request_t req = {st.sym[1], "1m", T0, T0 + 30 * QB_NS_PER_MIN, 0};
    OK(qb_md_fetch(src, &req, &sink, E, sizeof E));
    assert_int_equal(rec.n, 15);
    qb_bar_t *stored = NULL;
    size_t ns = 0;
    OK(qb_md_store_read_bars(f->s, st.sym[1], "1m", req.from, req.to, &stored, NULL, &ns, E,
                             sizeof E));
    assert_int_equal(ns, 15);
    assert_memory_equal(rec.v, stored, ns * sizeof(qb_bar_t));
    free(stored);
    req.symbol = "NOSUCHSYM";
    ERR(QB_ERR_NOT_FOUND, qb_md_fetch(src, &req, &sink, E, sizeof E));
    qb_md_source_destroy(src);

    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    const char *syms[2] = {st.sym[0], "NOPE1"};
    o.symbols = syms;
    o.nsymbols = 2;
    o.timeframe = "1m";
    qb_md_replay_t *r = NULL;
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    rec_t rr = {0};
    ERR(QB_ERR_NOT_FOUND, qb_md_replay_run(r, rec_emit, &rr, E, sizeof E));
    assert_non_null(strstr(E, "NOPE1"));
    assert_int_equal(rr.n, 0);
    qb_md_replay_destroy(r);
    /* A known symbol without bars of the timeframe contributes nothing. */
    o.symbols = syms;
    o.nsymbols = 1;
    o.timeframe = "1d";
    OK(qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    OK(qb_md_replay_run(r, rec_emit, &rr, E, sizeof E));
    assert_int_equal(rr.n, 0);
    qb_md_replay_destroy(r);
    /* Bad options. */
    o.timeframe = "2d";
    ERR(QB_ERR_INVALID, qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    o.timeframe = "1m";
    o.from = T0;
    o.to = T0;
    ERR(QB_ERR_INVALID, qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    o.to = 0;
    syms[0] = "bad sym";
    ERR(QB_ERR_INVALID, qb_md_replay_new(f->s, &o, &r, E, sizeof E));
    assert_null(r);
    qb_md_replay_destroy(NULL);
    free(st.all);
}

int main(void) {
    qb_log_init("it-md-replay", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_order_exact, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_publish_stored_sequence, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_pacing_and_cancel, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_large_bounded, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_source_and_errors, qb_test_md_db_setup, qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests_name("md_replay", tests, NULL, NULL);
}
