/* qb_md_outbox.h — the publish outbox of stored bars (md.publish_outbox,
 * sql/0004_md_outbox_jobs.sql): what makes "stored in PostgreSQL" imply
 * "published on md.bars", even across a kill -9.
 *
 *   load (qb_md_store_load_bars_ex, outbox = 1)   one transaction: the bars
 *        + an outbox row for the batch, session-locked by the loader;
 *   publish the batch, flush the producer;
 *   qb_md_outbox_done(id)                         delete the row, unlock.
 *
 * A loader that dies between commit and done leaves its row; its session
 * (and lock) die with it. qb_md_outbox_drain, run by qb-data at start and
 * on every scheduler tick, takes each unlocked row (FOR UPDATE SKIP LOCKED,
 * so replicas share the work), reads the batch's bars back from md.bars and
 * hands them to a publish callback, then deletes the row. Re-publishing is
 * safe: bar event ids are deterministic (qb_md_publish.h), consumers
 * de-duplicate. A row whose publish failed in a live loader stays locked
 * by that loader's session and is retried by that loader's own drain, or
 * by any drain once that session ends (qb_md_ingest closes its pipeline's
 * loader connection when the run returns). */
#ifndef QB_MD_OUTBOX_H
#define QB_MD_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_types.h"
#include "store/qb_store.h"

/* The batch `id` is on the bus: delete its row and release its lock. */
qb_err_t qb_md_outbox_done(qb_store_t *s, int64_t id, char *errstr, size_t errstr_size);

/* Release the session lock on `id` without deleting the row (a failed
 * load; errors ignored). */
void qb_md_outbox_unlock(qb_store_t *s, int64_t id);

/* Publish bars[0..n) (time order, one symbol and timeframe) of a batch
 * left in the outbox; `source` is the batch's. QB_OK = on the bus
 * (flushed). */
typedef qb_err_t (*qb_md_outbox_publish_cb)(void *opaque, const qb_bar_t *bars, size_t n,
                                            const char *source, char *errstr,
                                            size_t errstr_size);

typedef struct qb_md_outbox_stats_s {
    int64_t batches; /* rows re-published and deleted */
    int64_t bars;    /* bars handed to the callback */
} qb_md_outbox_stats_t;

/* Re-publish up to max_batches (<= 0: all) outbox rows no live loader
 * holds, oldest first, one transaction per row. A callback error stops the
 * drain with that error (the row stays). stats may be NULL. The caller
 * must not be inside a transaction. */
qb_err_t qb_md_outbox_drain(qb_store_t *s, qb_md_outbox_publish_cb cb, void *opaque,
                            int max_batches, qb_md_outbox_stats_t *stats, char *errstr,
                            size_t errstr_size);

/* Rows in the outbox now (locked or not), for metrics and tests. */
qb_err_t qb_md_outbox_pending(qb_store_t *s, int64_t *n, char *errstr, size_t errstr_size);

#endif
