/* it_md_outbox.c — the publish outbox (libs/md/qb_md_outbox.h) against the
 * real PostgreSQL (own migrated database per test).
 *
 * What is asserted:
 *   - a loader process that dies (SIGKILL, its own) after committing a
 *     batch with outbox but before publishing leaves exactly one outbox row
 *     with the batch's range; a drain in another session hands out exactly
 *     the batch's bars (every field) with its source, then the row is gone
 *     and a second drain does nothing;
 *   - a row a LIVE loader holds (committed, not yet done) is skipped by
 *     another session's drain, and drained once its loader's session ends;
 *   - qb_md_ingest with outbox: a publish hook that succeeds leaves no row;
 *     one that fails leaves its batch's row, which the same session's drain
 *     then re-publishes;
 *   - a drain whose callback fails keeps the row (nothing lost).
 */
#include "qb_test_assert.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "md/qb_md_ingest.h"
#include "md/qb_md_outbox.h"
#include "md/qb_md_store.h"
#include "md/qb_md_synth.h"
#include "qb_test.h"
#include "qb_test_md.h"

static char E[2048];

typedef qb_test_md_db_t fx_t;

#define T0 (1704186000LL * QB_NS_PER_SEC) /* 2024-01-02T09:00:00Z */
#define MIN (60LL * QB_NS_PER_SEC)

static void mkbars(qb_bar_t *b, size_t n, qb_time_t t0, int64_t k0) {
    memset(b, 0, n * sizeof *b);
    for (size_t i = 0; i < n; i++) {
        int64_t k = k0 + (int64_t)i;
        snprintf(b[i].symbol.s, sizeof b[i].symbol.s, "OBX");
        snprintf(b[i].timeframe, sizeof b[i].timeframe, "1m");
        b[i].ts = t0 + (qb_time_t)i * MIN;
        b[i].low = (100 + k % 37) * QB_DEC_SCALE + 12345678;
        b[i].open = b[i].low + (k % 5) * 1000000;
        b[i].close = b[i].low + (k % 7) * 1000000;
        b[i].high = b[i].low + 9000000 + k;
        b[i].volume = 1000 + k;
    }
}

typedef struct got_s {
    qb_bar_t bars[4096];
    size_t n;
    int calls;
    char source[64];
    int fail; /* return this error instead */
} got_t;

static qb_err_t collect(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                        char *errstr, size_t errstr_size) {
    got_t *g = opaque;
    g->calls++;
    if (g->fail) return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "bus down (test)");
    for (size_t i = 0; i < n && g->n < 4096; i++) g->bars[g->n++] = bars[i];
    snprintf(g->source, sizeof g->source, "%s", source);
    return QB_OK;
}

static int64_t pending(qb_store_t *s) {
    int64_t n = -1;
    OK(qb_md_outbox_pending(s, &n, E, sizeof E));
    return n;
}

static int32_t asset(qb_store_t *s, const char *sym) {
    int32_t id = 0;
    OK(qb_md_asset_get_or_create(s, sym, "equity", &id, E, sizeof E));
    return id;
}

static void same_bars(const qb_bar_t *want, const qb_bar_t *got, size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].ts, want[i].ts);
        assert_int_equal(got[i].open, want[i].open);
        assert_int_equal(got[i].high, want[i].high);
        assert_int_equal(got[i].low, want[i].low);
        assert_int_equal(got[i].close, want[i].close);
        assert_int_equal(got[i].volume, want[i].volume);
        assert_string_equal(got[i].symbol.s, "OBX");
        assert_string_equal(got[i].timeframe, "1m");
    }
}

static void test_crash_after_commit(void **state) {
    fx_t *f = *state;
    int32_t aid = asset(f->s, "OBX");
    static qb_bar_t b[500];
    mkbars(b, 500, T0, 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The loader: its own session, commit with outbox, then die before
         * any publish. */
        char e[512];
        qb_store_t *s = qb_store_new(f->dsn, e, sizeof e);
        qb_md_load_result_t r;
        if (!s || qb_md_store_load_bars_ex(s, aid, "1m", "crashy", b, NULL, 500, 0, 1, &r, e,
                                           sizeof e) != QB_OK)
            _exit(3);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(pending(f->s), 1);

    static got_t g;
    memset(&g, 0, sizeof g);
    qb_md_outbox_stats_t os;
    /* The killed session's lock may take a moment to go: retry briefly. */
    for (int i = 0; i < 50; i++) {
        OK(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E));
        if (os.batches) break;
        usleep(100 * 1000);
    }
    assert_int_equal(os.batches, 1);
    assert_int_equal(os.bars, 500);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.n, 500);
    assert_string_equal(g.source, "crashy");
    same_bars(b, g.bars, 500);
    assert_int_equal(pending(f->s), 0);
    OK(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E));
    assert_int_equal(os.batches, 0);
    assert_int_equal(g.calls, 1);
}

static void test_live_loader_is_skipped(void **state) {
    fx_t *f = *state;
    int32_t aid = asset(f->s, "OBX");
    static qb_bar_t b[100];
    mkbars(b, 100, T0 + 1000 * MIN, 7);
    qb_store_t *loader = qb_store_new(f->dsn, E, sizeof E);
    assert_non_null(loader);
    qb_md_load_result_t r;
    OK(qb_md_store_load_bars_ex(loader, aid, "1m", "live", b, NULL, 100, 0, 1, &r, E, sizeof E));
    assert_true(r.outbox_id > 0);
    assert_int_equal(r.loaded, 100);

    static got_t g;
    memset(&g, 0, sizeof g);
    qb_md_outbox_stats_t os;
    OK(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E));
    assert_int_equal(os.batches, 0); /* its loader is alive */
    assert_int_equal(g.calls, 0);
    assert_int_equal(pending(f->s), 1);

    /* The loader goes away without publishing: now it is drained. */
    qb_store_destroy(loader);
    for (int i = 0; i < 50 && !os.batches; i++) {
        OK(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E));
        if (!os.batches) usleep(100 * 1000);
    }
    assert_int_equal(os.batches, 1);
    assert_int_equal(g.n, 100);
    same_bars(b, g.bars, 100);
    assert_int_equal(pending(f->s), 0);

    /* A loader that finishes (done) leaves nothing. */
    loader = qb_store_new(f->dsn, E, sizeof E);
    assert_non_null(loader);
    mkbars(b, 100, T0 + 5000 * MIN, 9);
    OK(qb_md_store_load_bars_ex(loader, aid, "1m", "live", b, NULL, 100, 0, 1, &r, E, sizeof E));
    assert_int_equal(pending(f->s), 1);
    OK(qb_md_outbox_done(loader, r.outbox_id, E, sizeof E));
    assert_int_equal(pending(f->s), 0);
    qb_store_destroy(loader);
}

typedef struct hook_s {
    int calls, fail_at;
} hook_t;

static qb_err_t hook(void *opaque, const qb_bar_t *bars, const uint16_t *flags, size_t n,
                     char *errstr, size_t errstr_size) {
    hook_t *h = opaque;
    (void)bars;
    (void)flags;
    (void)n;
    if (++h->calls == h->fail_at)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "bus down (test)");
    return QB_OK;
}

static void test_ingest_outbox(void **state) {
    fx_t *f = *state;
    qb_md_synth_opts_t so;
    qb_md_synth_opts_default(&so, 7);
    qb_md_source_t *src = qb_md_synth_source_new(&so, E, sizeof E);
    assert_non_null(src);
    qb_md_request_t req = {.symbol = "OBI", .timeframe = "1m", .from = T0,
                           .to = T0 + 3000 * MIN};
    hook_t h = {0, 0};
    qb_md_ingest_opts_t io = {.batch_size = 1000, .committed_cb = hook, .outbox = 1,
                              .opaque = &h};
    qb_md_ingest_result_t res;
    OK(qb_md_ingest(f->s, src, &req, &io, &res, E, sizeof E));
    assert_int_equal(h.calls, 3);
    assert_int_equal(pending(f->s), 0);

    /* The second batch's publish fails: the run stops, its row stays. */
    h = (hook_t){0, 2};
    req.from = T0 + 3000 * MIN;
    req.to = T0 + 6000 * MIN;
    assert_int_equal(qb_md_ingest(f->s, src, &req, &io, &res, E, sizeof E),
                     QB_ERR_UNAVAILABLE);
    assert_int_equal(h.calls, 2);
    assert_int_equal(pending(f->s), 1);
    /* The same session (it holds the lock) drains it. */
    static got_t g;
    memset(&g, 0, sizeof g);
    g.fail = 1; /* first the publish fails again: nothing lost */
    qb_md_outbox_stats_t os;
    assert_int_equal(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E),
                     QB_ERR_UNAVAILABLE);
    assert_int_equal(pending(f->s), 1);
    g.fail = 0;
    OK(qb_md_outbox_drain(f->s, collect, &g, 0, &os, E, sizeof E));
    assert_int_equal(os.batches, 1);
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.bars[0].ts, T0 + 4000 * MIN);
    assert_int_equal(g.bars[999].ts, T0 + 4999 * MIN);
    assert_int_equal(pending(f->s), 0);
    qb_md_source_destroy(src);
}

int main(void) {
    qb_log_init("it-md-outbox", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_after_commit, qb_test_md_db_setup,
                                        qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_live_loader_is_skipped, qb_test_md_db_setup,
                                        qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_outbox, qb_test_md_db_setup,
                                        qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests_name("md_outbox", tests, NULL, NULL);
}
