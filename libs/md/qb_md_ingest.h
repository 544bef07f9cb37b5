/* qb_md_ingest.h — the ingest pipeline: fetch -> validate -> store.
 *
 * qb_md_ingest() runs one request (one symbol and timeframe) through a
 * source (qb_md_source.h):
 *   1. md.ingest_log row begun (job, source, symbol, timeframe, range);
 *   2. asset get-or-create (opts->asset_class);
 *   3. each batch the source delivers is validated at once
 *      (qb_md_validate.h, one validator for the whole run, so ordering and
 *      outlier state carry across batches); rejects — the source's own and
 *      the validator's — are counted per reason code and passed to
 *      opts->reject_cb with where = "FILE:LINE" for CSV sources (via
 *      qb_md_csv_line_of) or "SOURCE SYMBOL TIMEFRAME TS" otherwise;
 *   4. accepted bars accumulate up to opts->batch_size and are then loaded
 *      with qb_md_store_load_bars (one transaction per batch; idempotent);
 *   5. after each COMMITTED batch, opts->committed_cb (the publish hook, see
 *      below) is called;
 *   6. the ingest_log row is completed with counts, rejects_by_reason
 *      ({"high_below_low": 2, ...}), duration and error.
 * A failure stops the run: batches committed before stay (re-running is
 * safe: loads are idempotent), the log row records the error.
 *
 * PIPELINE: a run that fills a first batch loads its batches on a loader
 * thread with a second connection to the same database (qb_store_new_like
 * of `store`; one more connection while the run lasts), so that the server
 * loading batch k overlaps this thread publishing batch k-1 and fetching
 * and validating batch k+1. Batch k is COMMITTED only after the hook of
 * batch k-1 returned QB_OK (it is rolled back otherwise), so what is stored
 * and published, and in what order, is as if one thread did load, commit,
 * hook, load, commit, hook ... If the source fails, the batch already
 * committed is still handed to the hook. A run of a single (partial) batch,
 * or one whose loader cannot start, runs on `store` on the calling thread.
 *
 * PUBLISH HOOK (committed_cb): called with every accepted bar of the batch
 * just committed — including bars that were already stored (duplicates), so
 * a re-run after a crash between commit and publish re-publishes them
 * (consumers are idempotent by event id) — with their flags, in time order.
 * Bars are valid during the call only. A non-OK return stops the run with
 * that error (the batch stays committed; the caller decides whether to
 * retry the run). Nothing is published by this module. The hook always
 * runs on the calling thread, and `store` is free while it runs (the
 * loader has its own connection). With opts->outbox
 * the batch is also recorded in md.publish_outbox in its load transaction
 * and the record removed once the hook returned QB_OK: a kill -9 between
 * commit and publish no longer depends on the run being re-run. The row is
 * locked by the session that loaded it (the loader's in a pipelined run):
 * a row whose hook failed is therefore free for any drain once the run has
 * returned.
 *
 * Ownership: nothing is retained after the call; `store` and `source`
 * remain the caller's. */
#ifndef QB_MD_INGEST_H
#define QB_MD_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "md/qb_md_source.h"
#include "md/qb_md_store.h"
#include "md/qb_md_validate.h"
#include "store/qb_store.h"

typedef qb_err_t (*qb_md_committed_cb)(void *opaque, const qb_bar_t *bars,
                                       const uint16_t *flags, size_t n, char *errstr,
                                       size_t errstr_size);

typedef struct qb_md_ingest_opts_s {
    const char *job;          /* md.ingest_log.job; NULL = "import" */
    const char *source_name;  /* md.bars.source / ingest_log.source;
                                 NULL = qb_md_source_name(source) */
    const char *asset_class;  /* for a new asset; NULL = "equity" */
    size_t batch_size;        /* bars per store transaction; 0 = 65536 */
    double conflict_tolerance;/* 0 = QB_MD_CONFLICT_TOLERANCE (0.5%) */
    qb_md_validate_opts_t validate;
    /* Every rejected record: where ("FILE:LINE") and reason ("code: ...").
     * May be NULL. */
    void (*reject_cb)(void *opaque, const char *where, const char *reason);
    qb_md_committed_cb committed_cb; /* publish hook; may be NULL */
    /* With committed_cb: each batch also gets a row in md.publish_outbox in
     * its load transaction, deleted after committed_cb returns QB_OK, so a
     * crash in between leaves it for qb_md_outbox_drain (qb_md_outbox.h). */
    int outbox;
    void *opaque;             /* for both callbacks */
} qb_md_ingest_opts_t;

typedef struct qb_md_ingest_result_s {
    int64_t ingest_id;      /* md.ingest_log.id (0 if the row could not be made) */
    int64_t rows_in;        /* records the source produced (bars + its rejects) */
    int64_t rows_loaded;    /* new rows in md.bars */
    int64_t rows_duplicate; /* accepted bars already stored */
    int64_t rows_rejected;  /* source rejects + validation rejects */
    int64_t rows_outlier;   /* accepted, flagged as outliers */
    int64_t conflicts;      /* duplicates differing beyond the tolerance */
    int64_t batches;        /* committed store batches */
    int64_t duration_ms;
    int64_t rejects_by_reason[QB_MD_REASON_COUNT];
} qb_md_ingest_result_t;

/* Run `req` from `source` into `store`. opts may be NULL; result is
 * required and filled also on error (counts so far). */
qb_err_t qb_md_ingest(qb_store_t *store, qb_md_source_t *source, const qb_md_request_t *req,
                      const qb_md_ingest_opts_t *opts, qb_md_ingest_result_t *result,
                      char *errstr, size_t errstr_size);

/* {"reason": count, ...} of the non-zero counts, into buf; returns buf. */
char *qb_md_rejects_json(const int64_t *counts, char *buf, size_t cap);

#endif
