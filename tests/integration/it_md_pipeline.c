/* it_md_pipeline.c — qb_md_ingest's pipeline (libs/md/qb_md_ingest.h: a
 * run of several batches loads them on a loader thread with its own
 * connection) against the real PostgreSQL (own migrated database per test).
 *
 * What is asserted, with small batches so that a run has many:
 *   - every batch is committed before its hook runs: the hook, reading
 *     through the caller's store, sees every bar of its batch and nothing
 *     of the next; hooks come in time order, each bar exactly once; the
 *     counts of the result; re-importing the same range stores nothing new
 *     and hands every bar to the hook again;
 *   - a hook that fails stops the run with its error and the next batch
 *     (loaded meanwhile) is rolled back: stored = the batches up to the
 *     failed one, whose outbox row stays and, the run over, another
 *     session's drain re-publishes it;
 *   - a source that fails mid-run: the run returns its error, the batch
 *     committed meanwhile is still handed to the hook (nothing stored
 *     without being published), the bars after it are not stored.
 */
#include "qb_test_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int64_t count_bars(qb_store_t *s, const char *symbol) {
    const char *p[1] = {symbol};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT count(*) FROM md.bars b JOIN md.assets a USING (asset_id)"
                                " WHERE a.symbol = $1",
                                1, p, &r, E, sizeof E);
    if (e) fail_msg("count: %s", E);
    int64_t n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static int64_t pending(qb_store_t *s) {
    int64_t n = -1;
    OK(qb_md_outbox_pending(s, &n, E, sizeof E));
    return n;
}

typedef struct hook_s {
    qb_store_t *s;
    const char *symbol;
    int calls, fail_at;
    int64_t published;
    qb_time_t last_ts;
    int bad; /* a check inside the hook failed (asserted after the run) */
} hook_t;

static qb_err_t hook(void *opaque, const qb_bar_t *bars, const uint16_t *flags, size_t n,
                     char *errstr, size_t errstr_size) {
    hook_t *h = opaque;
    (void)flags;
    h->calls++;
    for (size_t i = 0; i < n; i++) {
        if (bars[i].ts <= h->last_ts) h->bad = 1; /* time order, each bar once */
        h->last_ts = bars[i].ts;
    }
    h->published += (int64_t)n;
    /* committed before the hook: exactly what was published so far (on a
     * first import) is visible to another session */
    if (h->s && count_bars(h->s, h->symbol) != h->published) h->bad = 2;
    if (h->calls == h->fail_at)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "bus down (test)");
    return QB_OK;
}

typedef struct drained_s {
    size_t n;
    qb_time_t first, last;
} drained_t;

static qb_err_t on_drain(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                         char *errstr, size_t errstr_size) {
    drained_t *d = opaque;
    (void)source;
    (void)errstr;
    (void)errstr_size;
    if (n && !d->n) d->first = bars[0].ts;
    if (n) d->last = bars[n - 1].ts;
    d->n += n;
    return QB_OK;
}

static qb_md_source_t *synth(void) {
    qb_md_synth_opts_t so;
    qb_md_synth_opts_default(&so, 11);
    qb_md_source_t *src = qb_md_synth_source_new(&so, E, sizeof E);
    assert_non_null(src);
    return src;
}

static void test_hooks_see_committed_batches(void **state) {
    fx_t *f = *state;
    qb_md_source_t *src = synth();
    qb_md_request_t req = {.symbol = "PIPE", .timeframe = "1m", .from = T0,
                           .to = T0 + 5200 * MIN};
    hook_t h = {.s = f->s, .symbol = "PIPE"};
    qb_md_ingest_opts_t io = {.batch_size = 500, .committed_cb = hook, .outbox = 1,
                              .opaque = &h};
    qb_md_ingest_result_t res;
    OK(qb_md_ingest(f->s, src, &req, &io, &res, E, sizeof E));
    assert_int_equal(h.bad, 0);
    assert_int_equal(h.calls, 11);
    assert_int_equal(h.published, 5200);
    assert_int_equal(h.last_ts, T0 + 5199 * MIN);
    assert_int_equal(res.rows_loaded, 5200);
    assert_int_equal(res.rows_duplicate, 0);
    assert_int_equal(res.batches, 11);
    assert_int_equal(count_bars(f->s, "PIPE"), 5200);
    assert_int_equal(pending(f->s), 0);

    /* again: one copy, every bar re-published */
    h = (hook_t){0};
    OK(qb_md_ingest(f->s, src, &req, &io, &res, E, sizeof E));
    assert_int_equal(h.bad, 0);
    assert_int_equal(h.calls, 11);
    assert_int_equal(h.published, 5200);
    assert_int_equal(res.rows_loaded, 0);
    assert_int_equal(res.rows_duplicate, 5200);
    assert_int_equal(count_bars(f->s, "PIPE"), 5200);
    assert_int_equal(pending(f->s), 0);
    qb_md_source_destroy(src);
}

static void test_hook_failure_rolls_back_next(void **state) {
    fx_t *f = *state;
    qb_md_source_t *src = synth();
    qb_md_request_t req = {.symbol = "PIPF", .timeframe = "1m", .from = T0,
                           .to = T0 + 5000 * MIN};
    hook_t h = {.s = f->s, .symbol = "PIPF", .fail_at = 3};
    qb_md_ingest_opts_t io = {.batch_size = 500, .committed_cb = hook, .outbox = 1,
                              .opaque = &h};
    qb_md_ingest_result_t res;
    assert_int_equal(qb_md_ingest(f->s, src, &req, &io, &res, E, sizeof E),
                     QB_ERR_UNAVAILABLE);
    assert_non_null(strstr(E, "bus down"));
    assert_int_equal(h.bad, 0);
    assert_int_equal(h.calls, 3);
    /* batches 1-3 stored (3 failed to publish), batch 4 rolled back */
    assert_int_equal(count_bars(f->s, "PIPF"), 1500);
    assert_int_equal(res.rows_loaded, 1500);
    assert_int_equal(pending(f->s), 1);
    /* the run is over: another session drains batch 3 */
    qb_store_t *other = qb_store_new(f->dsn, E, sizeof E);
    assert_non_null(other);
    drained_t d = {0};
    qb_md_outbox_stats_t st;
    OK(qb_md_outbox_drain(other, on_drain, &d, 0, &st, E, sizeof E));
    assert_int_equal(st.batches, 1);
    assert_int_equal(d.n, 500);
    assert_int_equal(d.first, T0 + 1000 * MIN);
    assert_int_equal(d.last, T0 + 1499 * MIN);
    assert_int_equal(pending(f->s), 0);
    qb_store_destroy(other);
    qb_md_source_destroy(src);
}

/* ---- a source that fails after `after` bars ---------------------------------- */

typedef struct failing_s {
    qb_md_source_t base;
    qb_md_source_t *inner;
    const qb_md_sink_t *outer;
    size_t after, sent;
} failing_t;

static qb_err_t failing_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                             size_t errstr_size) {
    failing_t *fs = opaque;
    if (fs->sent + n > fs->after) n = fs->after - fs->sent;
    qb_err_t e = n ? fs->outer->bars(fs->outer->opaque, bars, n, errstr, errstr_size) : QB_OK;
    if (e) return e;
    fs->sent += n;
    if (fs->sent == fs->after)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "vendor down (test)");
    return QB_OK;
}

static qb_err_t failing_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                              const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    failing_t *fs = (failing_t *)src;
    fs->outer = sink;
    qb_md_sink_t mine = {failing_bars, sink->reject, fs};
    return qb_md_fetch(fs->inner, req, &mine, errstr, errstr_size);
}

static void failing_destroy(qb_md_source_t *src) { (void)src; }

static const qb_md_source_ops_t failing_ops = {"synthetic", failing_fetch, failing_destroy};

static void test_source_failure_publishes_committed(void **state) {
    fx_t *f = *state;
    failing_t fs = {{&failing_ops, 0}, synth(), NULL, 1700, 0};
    qb_md_request_t req = {.symbol = "PIPS", .timeframe = "1m", .from = T0,
                           .to = T0 + 5000 * MIN};
    hook_t h = {.s = f->s, .symbol = "PIPS"};
    qb_md_ingest_opts_t io = {.batch_size = 500, .committed_cb = hook, .outbox = 1,
                              .opaque = &h};
    qb_md_ingest_result_t res;
    assert_int_equal(qb_md_ingest(f->s, &fs.base, &req, &io, &res, E, sizeof E),
                     QB_ERR_UNAVAILABLE);
    assert_non_null(strstr(E, "vendor down"));
    assert_int_equal(h.bad, 0);
    /* 3 full batches stored and published; the 200 bars after them dropped */
    assert_int_equal(h.calls, 3);
    assert_int_equal(h.published, 1500);
    assert_int_equal(count_bars(f->s, "PIPS"), 1500);
    assert_int_equal(res.rows_loaded, 1500);
    assert_int_equal(res.batches, 3);
    assert_int_equal(pending(f->s), 0);
    qb_md_source_destroy(fs.inner);
}

int main(void) {
    qb_log_init("it-md-pipeline", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hooks_see_committed_batches, qb_test_md_db_setup,
                                        qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_hook_failure_rolls_back_next, qb_test_md_db_setup,
                                        qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_source_failure_publishes_committed,
                                        qb_test_md_db_setup, qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests_name("md_pipeline", tests, NULL, NULL);
}
