/* qb_md_store.h — qb-data's access to the md schema (sql/0002_md.sql) over
 * a qb_store handle: assets, bulk bar loads, reading bars back, the ingest
 * log, economic observations and corporate actions.
 *
 * Bulk load (qb_md_store_load_bars), in ONE transaction:
 *   1. md.bars_ensure_partitions(min ts, max ts) creates missing yearly
 *      partitions (called only when one is missing: it serialises its
 *      callers until they commit);
 *   2. under a per-asset advisory lock (loaders of one asset take turns),
 *      one index probe: is any bar of this asset/timeframe stored in
 *      [min, max]?
 *   3. no (new history, the common case): binary COPY of the batch straight
 *      into md.bars (COPY's multi-row inserts cost well under half of an
 *      INSERT ... SELECT per row). So bars within one call must have
 *      distinct timestamps (the validator guarantees it; a duplicate fails
 *      the load with QB_ERR_CONFLICT);
 *   4. yes: binary COPY into a session temp table md_stage (created once per
 *      connection, ON COMMIT DELETE ROWS; ts as integer microseconds, values
 *      fixed-point bigint x 1e8); staged rows whose key exists with ANY price
 *      (open/high/low/close) differing by more than `tolerance` (relative to
 *      the stored price; default 0.5%) are recorded in md.bar_conflicts (once
 *      per distinct incoming bar), whatever the source; the stored bar stays;
 *      then INSERT ... SELECT ... ON CONFLICT (asset_id, timeframe, ts) DO
 *      NOTHING: loading the same data twice leaves one copy.
 * A failure rolls the whole batch back. The caller must not be inside a
 * transaction.
 *
 * Handles: functions take the caller's qb_store_t (one per thread, see
 * qb_store.h). Errors: those of qb_store (QB_ERR_UNAVAILABLE retriable,
 * QB_ERR_DB ...), QB_ERR_INVALID for bad arguments, QB_ERR_NOT_FOUND when the
 * md schema is missing (run `qbctl migrate`). Memory handed out (read_bars)
 * is malloc'd and freed by the caller with free(). */
#ifndef QB_MD_STORE_H
#define QB_MD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_types.h"
#include "store/qb_store.h"

#define QB_MD_CONFLICT_TOLERANCE 0.005 /* 0.5% */

/* QB_OK when the md tables of 0002_md.sql exist; QB_ERR_NOT_FOUND with
 * "md schema is missing: run `qbctl migrate` first" otherwise. */
qb_err_t qb_md_store_check_schema(qb_store_t *s, char *errstr, size_t errstr_size);

/* asset_id of `symbol` (validated and upper-cased like qb_symbol_set),
 * creating it with `asset_class` (equity, etf, crypto, fx, future,
 * economic) when new. An existing asset keeps its class. */
qb_err_t qb_md_asset_get_or_create(qb_store_t *s, const char *symbol,
                                   const char *asset_class, int32_t *asset_id,
                                   char *errstr, size_t errstr_size);

typedef struct qb_md_load_result_s {
    int64_t staged;     /* bars sent */
    int64_t loaded;     /* new rows in md.bars */
    int64_t duplicates; /* staged - loaded: key already stored */
    int64_t conflicts;  /* duplicates whose prices differ beyond the tolerance */
    int64_t outbox_id;  /* with outbox: the batch's md.publish_outbox row */
} qb_md_load_result_t;

/* Load bars[0..n) (their symbol/timeframe fields are ignored: asset_id and
 * timeframe say where) with flags[i] (may be NULL: 0) and `source` in one
 * transaction, as described above. tolerance <= 0 means the default.
 * res (required) is filled on success. n == 0 is a no-op. */
qb_err_t qb_md_store_load_bars(qb_store_t *s, int32_t asset_id, const char *timeframe,
                               const char *source, const qb_bar_t *bars,
                               const uint16_t *flags, size_t n, double tolerance,
                               qb_md_load_result_t *res, char *errstr, size_t errstr_size);

/* The same, and with `outbox` also, in the same transaction, a row of
 * md.publish_outbox for the batch (asset, timeframe, [min ts, max ts],
 * source) whose id goes to res->outbox_id, locked for this session (see
 * sql/0004_md_outbox_jobs.sql and qb_md_outbox.h): once the batch is
 * published, qb_md_outbox_done(s, id). Until then a crash of this process
 * leaves the row for qb_md_outbox_drain to re-publish. */
qb_err_t qb_md_store_load_bars_ex(qb_store_t *s, int32_t asset_id, const char *timeframe,
                                  const char *source, const qb_bar_t *bars,
                                  const uint16_t *flags, size_t n, double tolerance,
                                  int outbox, qb_md_load_result_t *res, char *errstr,
                                  size_t errstr_size);

/* qb_md_store_load_bars_ex in two steps, for a loader that decides after
 * the work whether to keep it (qb_md_ingest's pipeline commits a batch
 * only once the previous one is published): _prepare does everything but
 * the COMMIT and leaves the transaction open, res filled as a commit would
 * (on error it rolled back, as load_bars_ex does); _finish then commits
 * (commit = 1; res->duplicates set) or rolls back (commit = 0, or a failed
 * COMMIT: res zeroed, the outbox row's lock released). n == 0 begins
 * nothing and _finish is then a no-op. Nothing else may run on `s` in
 * between. */
qb_err_t qb_md_store_load_bars_prepare(qb_store_t *s, int32_t asset_id, const char *timeframe,
                                       const char *source, const qb_bar_t *bars,
                                       const uint16_t *flags, size_t n, double tolerance,
                                       int outbox, qb_md_load_result_t *res, char *errstr,
                                       size_t errstr_size);
qb_err_t qb_md_store_load_bars_finish(qb_store_t *s, int commit, qb_md_load_result_t *res,
                                      char *errstr, size_t errstr_size);

/* Bars of symbol/timeframe with ts in [from, to) in time order (from == 0:
 * no lower bound; to == 0: no upper bound) into a malloc'd array *out (NULL
 * when none) and, if flags is non-NULL, a parallel malloc'd array of flags.
 * An unknown symbol gives 0 bars. */
qb_err_t qb_md_store_read_bars(qb_store_t *s, const char *symbol, const char *timeframe,
                               qb_time_t from, qb_time_t to, qb_bar_t **out,
                               uint16_t **flags, size_t *n, char *errstr, size_t errstr_size);

/* ---- ingest log ------------------------------------------------------------ */

/* Insert a running md.ingest_log row (started_at = now) and return its id.
 * from/to 0 are stored as NULL. */
qb_err_t qb_md_ingest_log_begin(qb_store_t *s, const char *job, const char *source,
                                const char *symbol, const char *timeframe, qb_time_t from,
                                qb_time_t to, int64_t *id, char *errstr, size_t errstr_size);

typedef struct qb_md_ingest_log_s {
    int64_t rows_in, rows_loaded, rows_duplicate, rows_rejected, rows_outlier, conflicts;
    const char *rejects_json; /* JSON object {"reason": count}; NULL = {} */
    int64_t duration_ms;
    const char *error;        /* NULL on success */
} qb_md_ingest_log_t;

/* Complete row `id` (finished_at = now). */
qb_err_t qb_md_ingest_log_finish(qb_store_t *s, int64_t id, const qb_md_ingest_log_t *log,
                                 char *errstr, size_t errstr_size);

/* ---- economic observations and corporate actions --------------------------- */

typedef struct qb_md_observation_s {
    qb_time_t date; /* 00:00 UTC of the observation date */
    qb_dec_t value;
} qb_md_observation_t;

/* Upsert observations of `series` (a revised value replaces the stored
 * one) in one transaction. */
qb_err_t qb_md_store_put_observations(qb_store_t *s, const char *series, const char *source,
                                      const qb_md_observation_t *obs, size_t n,
                                      char *errstr, size_t errstr_size);

typedef enum qb_md_action_kind_e {
    QB_MD_ACTION_SPLIT = 1,   /* value = ratio new/old shares (2 for 2-for-1) */
    QB_MD_ACTION_DIVIDEND = 2 /* value = cash amount per share */
} qb_md_action_kind_t;

/* Upsert one corporate action (key asset, ex_date, kind). */
qb_err_t qb_md_store_put_corporate_action(qb_store_t *s, int32_t asset_id, qb_time_t ex_date,
                                          qb_md_action_kind_t kind, qb_dec_t value,
                                          const char *source, char *errstr,
                                          size_t errstr_size);

/* Open time (ns UTC) of the newest stored bar of symbol/timeframe in *out;
 * 0 when there is none (or the symbol is unknown). */
qb_err_t qb_md_store_last_bar_ts(qb_store_t *s, const char *symbol, const char *timeframe,
                                 qb_time_t *out, char *errstr, size_t errstr_size);

#endif
