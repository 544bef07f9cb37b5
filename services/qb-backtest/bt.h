/* bt.h — qb-backtest's modules (see main.c for the service as a whole):
 *   bt_job.c    a BacktestRequest -> what to run (config, walk-forward spec,
 *               search space, objective), pure: no I/O;
 *   bt_bars.c   the bars of a run from md.bars (binary COPY, own
 *               connection);
 *   bt_db.c     the backtest schema (sql/0008_backtest.sql): runs, units,
 *               results;
 *   bt_work.c   the handlers: one-run backtests, splitting walk-forward and
 *               grid runs into units, evaluating units, aggregating, events,
 *               the outbox sweep and the progress heartbeat.
 * Ownership is written at each function. Nothing here is thread-safe: the
 * service is one thread (the consumer loop). */
#ifndef QB_BACKTEST_SVC_BT_H
#define QB_BACKTEST_SVC_BT_H

#include <stddef.h>
#include <stdint.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_search.h"
#include "backtest/qb_wf.h"
#include "bus/qb_bus.h"
#include "core/qb_err.h"
#include "qb/v1/backtest.pb-c.h"
#include "store/qb_store.h"

#define BT_RUN_ID_MAX 100
#define BT_UNIT_MAX 64

/* ======================================================================== */
/* bt_job.c                                                                  */
/* ======================================================================== */

typedef enum bt_kind_e {
    BT_KIND_BACKTEST = 0, /* one run, computed by the replica that takes it */
    BT_KIND_WF = 1,       /* walk-forward: split into IS and OOS units */
    BT_KIND_GRID = 2      /* grid / random search: split into ranges of combinations */
} bt_kind_t;

/* "backtest", "walk_forward", "grid" (the runs.kind values). */
const char *bt_kind_name(bt_kind_t k);

/* What a request asks for. bt_job_free releases what bt_job_from_request
 * allocated (cfg, space, symbols); a zeroed job may be freed. */
typedef struct bt_job_s {
    bt_kind_t kind;
    char run_id[BT_RUN_ID_MAX + 1];
    char timeframe[16];
    char **symbols;              /* upper-cased, in request order */
    size_t nsymbols;
    qb_time_t from, to;          /* bars loaded: [from, to); 0 = unbounded */
    qb_bt_config_t *cfg;         /* the base config (malloc'd) */
    qb_search_t *space;          /* WF / grid; NULL for a backtest */
    qb_wf_spec_t spec;           /* WF */
    qb_search_objective_t obj;   /* WF / grid */
    uint32_t wf_windows;         /* WF: windows asked for; 0 = as many as fit */
} bt_job_t;

/* Validate the request and build the job. QB_ERR_INVALID with a message
 * naming the field for bad input (the run fails and the request is
 * dead-lettered), QB_ERR_NOMEM. On error the job holds nothing. */
qb_err_t bt_job_from_request(const Qb__V1__BacktestRequest *rq, bt_job_t *j, char *errstr,
                             size_t errstr_size);
void bt_job_free(bt_job_t *j);

/* After the bars are loaded (d finalized): an unbounded end becomes the
 * last bar + 1 ns (so every replica of a split run reads the same bars),
 * and a walk-forward asked for N windows gets its region cut to them. */
void bt_job_resolve(bt_job_t *j, const qb_bt_data_t *d);

/* FNV-1a 64 of a grid run's plan: config JSON, objective, combinations,
 * time steps and bars per symbol. (Walk-forward: qb_wf_plan_fingerprint.) */
uint64_t bt_job_grid_fingerprint(const bt_job_t *j, const qb_bt_data_t *d);

/* ======================================================================== */
/* bt_bars.c                                                                 */
/* ======================================================================== */

typedef struct bt_bars_s bt_bars_t;

/* A loader with `threads` libpq connections of its own (made at the first
 * load), one thread each while loading. NULL on QB_ERR_NOMEM. */
bt_bars_t *bt_bars_new(const char *dsn, int threads);
void bt_bars_destroy(bt_bars_t *b);

/* Called between symbols while loading (progress heartbeat). */
typedef void (*bt_bars_tick_fn)(void *ctx);

/* The bars of the job's symbols and timeframe over [from, to) into a new,
 * finalized data set (*out, the caller destroys it), symbol ids in the
 * job's order. QB_ERR_INVALID: a symbol md.assets does not know, no bar at
 * all, more than max_bars; QB_ERR_UNAVAILABLE / QB_ERR_DB: PostgreSQL
 * (retriable). */
qb_err_t bt_bars_load(bt_bars_t *b, const bt_job_t *j, int64_t max_bars, bt_bars_tick_fn tick,
                      void *tick_ctx, qb_bt_data_t **out, char *errstr, size_t errstr_size);

/* ======================================================================== */
/* bt_db.c                                                                   */
/* ======================================================================== */

typedef struct bt_run_row_s {
    char kind[16];
    char status[16];
    char fingerprint[24];
    int final_sent;
    int64_t units_total, units_done;
    double progress, progress_sent;
} bt_run_row_t;

/* QB_ERR_NOT_FOUND when the run is not stored. */
qb_err_t bt_db_run_get(qb_store_t *s, const char *run_id, int lock, bt_run_row_t *row,
                       char *errstr, size_t errstr_size);

/* Insert the run as running (ON CONFLICT DO NOTHING); *inserted 0 when it
 * existed. request: the protobuf bytes to keep. */
qb_err_t bt_db_run_insert(qb_store_t *s, const bt_job_t *j, const uint8_t *request, size_t len,
                          const char *fingerprint, int64_t units_total, int64_t bars,
                          const char *worker, int *inserted, char *errstr, size_t errstr_size);

/* The run failed with `error` (inserted as failed when it is not stored:
 * a request refused before it was planned). A finished run stays
 * finished. */
qb_err_t bt_db_run_fail(qb_store_t *s, const char *run_id, const char *kind,
                        const uint8_t *request, size_t len, const char *error, char *errstr,
                        size_t errstr_size);

/* Progress of a running run (and that its event was sent now). */
qb_err_t bt_db_run_progress(qb_store_t *s, const char *run_id, double progress, int sent,
                            char *errstr, size_t errstr_size);

/* One unit row. */
typedef struct bt_unit_s {
    char name[BT_UNIT_MAX];     /* "is/3/0-16", "oos/3/5", "grid/0-16" */
    char kind[8];               /* "is", "oos", "grid" */
    uint32_t window;
    uint64_t c0, c1;
} bt_unit_t;

/* Name a unit from its parts. */
void bt_unit_make(bt_unit_t *u, const char *kind, uint32_t window, uint64_t c0, uint64_t c1);

/* Insert units as issued and unpublished; the names of the rows that were
 * new go to *fresh (malloc'd array of indexes into u; the caller frees it),
 * *nfresh their count. */
qb_err_t bt_db_units_issue(qb_store_t *s, const char *run_id, const bt_unit_t *u, size_t n,
                           size_t **fresh, size_t *nfresh, char *errstr, size_t errstr_size);

/* Mark units published. */
qb_err_t bt_db_units_published(qb_store_t *s, const char *run_id, const bt_unit_t *u,
                               const size_t *idx, size_t n, char *errstr, size_t errstr_size);

/* 1 when the unit's result is stored. */
qb_err_t bt_db_unit_done(qb_store_t *s, const char *run_id, const char *unit, int *done,
                         char *errstr, size_t errstr_size);

/* Store a unit's result (first writer wins). */
qb_err_t bt_db_unit_store(qb_store_t *s, const char *run_id, const bt_unit_t *u,
                          const char *result, const char *worker, int64_t eval_ms,
                          char *errstr, size_t errstr_size);

/* Results stored after done_seq `after`, in done_seq order: calls fn per
 * row; *last gets the highest done_seq seen. */
typedef qb_err_t (*bt_db_result_fn)(void *ctx, const char *kind, uint32_t window,
                                    const char *result, size_t len, char *errstr,
                                    size_t errstr_size);
qb_err_t bt_db_unit_results(qb_store_t *s, const char *run_id, int64_t after, int64_t *last,
                            bt_db_result_fn fn, void *ctx, char *errstr, size_t errstr_size);

/* Grid: done combinations and the total. */
qb_err_t bt_db_grid_count(qb_store_t *s, const char *run_id, int64_t *done_combos,
                          int64_t *done_units, char *errstr, size_t errstr_size);

/* Results: delete what a run has (a retried finish), then write. */
qb_err_t bt_db_results_clear(qb_store_t *s, const char *run_id, char *errstr,
                             size_t errstr_size);
qb_err_t bt_db_metrics(qb_store_t *s, const char *run_id, const qb_bt_metrics_t *m,
                       qb_dec_t commission, const char *params, const qb_bt_metrics_t *bench,
                       const char *summary, char *errstr, size_t errstr_size);
qb_err_t bt_db_equity(qb_store_t *s, const char *run_id, const qb_bt_point_t *p, size_t n,
                      char *errstr, size_t errstr_size);
qb_err_t bt_db_trades_bt(qb_store_t *s, const char *run_id, const qb_bt_result_t *r,
                         char *errstr, size_t errstr_size);
qb_err_t bt_db_trades_wf(qb_store_t *s, const char *run_id, const qb_wf_result_t *r,
                         char *errstr, size_t errstr_size);
qb_err_t bt_db_windows(qb_store_t *s, const char *run_id, const qb_wf_result_t *r,
                       char *errstr, size_t errstr_size);
qb_err_t bt_db_scores(qb_store_t *s, const char *run_id, const qb_search_t *space,
                      const qb_search_score_t *ranked, size_t n, char *errstr,
                      size_t errstr_size);
/* Mark the run finished (units_done = units_total, progress 1). */
qb_err_t bt_db_run_finish(qb_store_t *s, const char *run_id, int64_t load_ms, int64_t run_ms,
                          char *errstr, size_t errstr_size);
qb_err_t bt_db_run_units(qb_store_t *s, const char *run_id, int64_t done, double progress,
                         char *errstr, size_t errstr_size);

/* The final event's content of a finished or failed run. */
typedef struct bt_final_s {
    char status[16];
    char kind[16];
    int has_metrics;
    qb_bt_metrics_t m;
    qb_dec_t commission;
    char *params;   /* malloc'd ("" when none) */
    char *error;    /* malloc'd ("" when none) */
    int64_t bars, units_done, units_total;
} bt_final_t;
qb_err_t bt_db_final(qb_store_t *s, const char *run_id, bt_final_t *f, char *errstr,
                     size_t errstr_size);
void bt_final_free(bt_final_t *f);
qb_err_t bt_db_final_sent(qb_store_t *s, const char *run_id, char *errstr, size_t errstr_size);

/* ======================================================================== */
/* bt_work.c                                                                 */
/* ======================================================================== */

typedef struct bt_work_cfg_s {
    const char *group;        /* the consumer group (parts carry it) */
    int64_t batch;            /* combinations per IS / grid unit */
    int64_t cache_runs;       /* data sets kept in memory */
    int64_t progress_ms;      /* progress event at least this often */
    int64_t resend_ms;        /* unpublished units / final events re-sent after */
    int64_t max_bars;         /* refuse runs with more bars */
    int64_t load_threads;     /* connections reading bars in parallel */
} bt_work_cfg_t;

typedef struct bt_work_s bt_work_t;

/* The worker over the caller's store, producer (both outlive it) and a
 * loader of its own made from dsn. NULL on QB_ERR_NOMEM. */
bt_work_t *bt_work_new(const bt_work_cfg_t *cfg, qb_store_t *store, qb_producer_t *producer,
                       const char *dsn);
void bt_work_destroy(bt_work_t *w);

/* The consumer's handler for backtest.requests (opaque = the worker). */
qb_err_t bt_work_handle(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size);

/* Housekeeping, called from the loop (does its own pacing): re-sends
 * units and final events left unsent, publishes progress heartbeats. */
void bt_work_tick(bt_work_t *w);

#endif
