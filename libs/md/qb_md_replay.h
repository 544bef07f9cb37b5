/* qb_md_replay.h — replay of stored bars: read md.bars back for a set of
 * symbols (or all of them), one timeframe and a time range, merge them into
 * ONE global time order and hand them out — to the bus (md.bars, through
 * qb_md_publish_bars, so event ids are those of the original publish), to a
 * callback, or to a qb_md_sink_t as the "replay" source — as fast as
 * possible or paced at N x the speed of bar time. It lets the live pipeline
 * (indicators, strategies, risk) run on history.
 *
 * Order. Bars come out sorted by (ts, symbol): a k-way merge of one cursor
 * per symbol (a binary heap keyed by the cursor's current bar), ties at the
 * same open time broken by symbol (byte order). Per symbol the sequence is
 * exactly the stored one (every stored bar of the range, once, in time
 * order, every field as stored; Bar.source is the stored md.bars.source).
 *
 * Memory. Nothing is loaded whole. Each cursor reads its symbol in pages of
 * at most `chunk_rows` rows with keyset pagination on (asset_id, timeframe,
 * ts) — "ts > last ts read ORDER BY ts LIMIT chunk_rows", served by the
 * primary key, never OFFSET — and holds one page at a time (the libpq
 * result, parsed one row at a time). So memory is bounded by
 * symbols x chunk_rows rows whatever the range: the automatic chunk size
 * (QB_MD_REPLAY_ROW_BUDGET rows shared by all symbols, between
 * QB_MD_REPLAY_CHUNK_MIN and QB_MD_REPLAY_CHUNK_MAX per symbol) keeps years
 * of minute bars across thousands of symbols within a few tens of MB. A
 * page shorter than chunk_rows ends its cursor without another query.
 *
 * Pacing. speed <= 0 (QB_MD_REPLAY_MAX_SPEED): as fast as possible.
 * speed = N > 0: the bar with open time ts is handed out at
 *     start + (ts - ts_first) / N
 * on CLOCK_MONOTONIC, where start is when the first bar went out. Deadlines
 * are absolute, so sleeping late or a slow query never accumulates drift: a
 * replay that fell behind hands out every bar already due at once (one
 * batch) and is back on schedule. Bars are handed out in batches of at
 * most batch_bars; when paced, everything due is handed out before each
 * sleep, so a bar is never held back past its deadline. Gaps in bar time
 * (nights, weekends) are slept through at the same speed.
 *
 * Cancel. opts.cancel (may be NULL) is checked before each bar and at least
 * every 50 ms while sleeping; when it reads non-zero the run stops after
 * handing out the bars already batched and returns QB_OK with
 * stats.canceled = 1 (qb_md_replay_publish flushes them first).
 *
 * Threads and handles: a replay borrows the caller's qb_store_t (not
 * thread-safe, one per thread: see qb_store.h) for its whole run; the
 * producer (thread-safe) and cache are borrowed too. Create with
 * qb_md_replay_new, run any number of times (each run starts over),
 * free with qb_md_replay_destroy (NULL is a no-op). Bars passed to
 * callbacks are valid during the call only. */
#ifndef QB_MD_REPLAY_H
#define QB_MD_REPLAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "md/qb_md_source.h"
#include "store/qb_store.h"

#define QB_MD_REPLAY_MAX_SPEED 0.0          /* speed: as fast as possible */
#define QB_MD_REPLAY_ROW_BUDGET (1u << 18)  /* rows held by all cursors (auto) */
#define QB_MD_REPLAY_CHUNK_MIN 16u          /* per symbol and query (auto) */
#define QB_MD_REPLAY_CHUNK_MAX 8192u
#define QB_MD_REPLAY_BATCH 1024u            /* default bars per batch */
#define QB_MD_REPLAY_FLUSH_BARS 65536       /* publish: flush the producer every ... */
#define QB_MD_REPLAY_FLUSH_MS 1000          /* ... so many bars or so many ms */

/* Progress: bars handed out so far and the open time of the last one.
 * Called after every batch and once at the end. */
typedef void (*qb_md_replay_progress_cb)(void *opaque, int64_t bars_done,
                                         qb_time_t bar_ts);

/* Where bars go (qb_md_replay_run): bars[0..n) in global (ts, symbol)
 * order, all with the same stored `source`. A non-OK return stops the run
 * with that error (errstr filled by the callback). */
typedef qb_err_t (*qb_md_replay_emit_cb)(void *opaque, const qb_bar_t *bars, size_t n,
                                         const char *source, char *errstr,
                                         size_t errstr_size);

typedef struct qb_md_replay_opts_s {
    /* Symbols to replay (validated and upper-cased like qb_symbol_set;
     * duplicates ignored). NULL / 0: every asset that has bars of the
     * timeframe in the range. A symbol not in md.assets is QB_ERR_NOT_FOUND;
     * one without bars in the range simply contributes none. Copied. */
    const char *const *symbols;
    size_t nsymbols;
    const char *timeframe;  /* required: "1m" ... "1d", "1w" (copied) */
    qb_time_t from, to;     /* bar open time in [from, to); 0 = unbounded */
    double speed;           /* N x bar time; <= 0: as fast as possible */
    size_t chunk_rows;      /* rows per query per symbol; 0 = automatic */
    size_t batch_bars;      /* max bars per batch; 0 = QB_MD_REPLAY_BATCH */
    const volatile sig_atomic_t *cancel; /* stop when *cancel != 0; may be NULL */
    qb_md_replay_progress_cb progress;   /* may be NULL */
    void *progress_opaque;
} qb_md_replay_opts_t;

typedef struct qb_md_replay_stats_s {
    int64_t bars;               /* handed out (published) by the last run */
    int64_t symbols;            /* symbols with a cursor (asked for or found) */
    int64_t queries;            /* page queries */
    int64_t rows_fetched;       /* rows those queries returned */
    int64_t max_rows_per_query; /* never above chunk_rows */
    size_t chunk_rows;          /* the chunk size used (automatic or given) */
    qb_time_t first_ts, last_ts;/* open times of the first and last bar (0: none) */
    int64_t elapsed_ns;         /* wall time of the run (monotonic) */
    int64_t max_late_ns;        /* paced: worst lateness of a bar vs its deadline */
    int canceled;               /* 1 when stopped by opts.cancel */
} qb_md_replay_stats_t;

typedef struct qb_md_replay_s qb_md_replay_t;

/* Validate and copy opts (no I/O). `store` is borrowed for the replay's
 * life. QB_ERR_INVALID with a message for a bad symbol, timeframe, range
 * (to <= from when both set) or speed (NaN/inf). */
qb_err_t qb_md_replay_new(qb_store_t *store, const qb_md_replay_opts_t *opts,
                          qb_md_replay_t **out, char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void qb_md_replay_destroy(qb_md_replay_t *r);

/* Run the replay once from the start, handing batches to emit. Errors: the
 * store's (QB_ERR_UNAVAILABLE, QB_ERR_DB ...), QB_ERR_NOT_FOUND for an
 * unknown symbol or a missing md schema, or what emit returned. Stats of
 * the run (also on error: what was done) via qb_md_replay_stats. */
qb_err_t qb_md_replay_run(qb_md_replay_t *r, qb_md_replay_emit_cb emit, void *opaque,
                          char *errstr, size_t errstr_size);

/* Run the replay onto md.bars with qb_md_publish_bars (key = symbol,
 * deterministic event ids, header.producer = `producer`, Bar.source = the
 * stored source). cache (may be NULL) gets each symbol's newest bar once
 * per batch (its script never replaces a newer bar, so replaying history
 * leaves the live latest alone). The producer is polled every batch,
 * flushed every QB_MD_REPLAY_FLUSH_BARS bars or QB_MD_REPLAY_FLUSH_MS, and
 * at the end — also after a cancel or an error, so what was handed out is
 * delivered or reported: QB_ERR_KAFKA / QB_ERR_TIMEOUT from the flush. */
qb_err_t qb_md_replay_publish(qb_md_replay_t *r, qb_producer_t *producer,
                              qb_cache_t *cache, const char *producer_name,
                              char *errstr, size_t errstr_size);

/* Stats of the last (or current) run. */
void qb_md_replay_stats(const qb_md_replay_t *r, qb_md_replay_stats_t *out);

/* ---- as a source ----------------------------------------------------------
 * The "replay" source (qb_md_source.h): fetch(req) hands the stored bars of
 * req->symbol / req->timeframe over [req->from, req->to) to the sink in
 * batches (pages of the keyset read), paced at `speed` (<= 0: as fast as
 * possible), stopping early (QB_OK) when *cancel becomes non-zero. An
 * unknown symbol is QB_ERR_NOT_FOUND. `store` and `cancel` are borrowed;
 * free with qb_md_source_destroy. NULL with errstr on bad arguments. */
qb_md_source_t *qb_md_replay_source_new(qb_store_t *store, double speed,
                                        const volatile sig_atomic_t *cancel,
                                        char *errstr, size_t errstr_size);

#endif
