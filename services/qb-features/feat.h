/* feat.h — qb-features' modules, shared by its files.
 *
 *   feat_engine.c  per-series state (symbol + timeframe): the feature
 *                  indicators (libs/ta) and the strategy instances
 *                  (libs/strategy) on it; one bar in -> values + signals out.
 *                  No I/O: history and outputs go through the caller.
 *   feat_store.c   PostgreSQL: the strategies table, warm-up history from
 *                  md.bars, saved decision states, the batched writes of
 *                  features / signals / states, control commands.
 *   feat_dedup.c   after a restart or an assignment, the ids already on
 *                  `features` / `signals` that a replay would send again
 *                  (read back from the topics): not sent twice.
 *   main.c         config, consumer (md.bars + control), producer, Redis,
 *                  the flush cadence.
 */
#ifndef QB_FEATURES_FEAT_H
#define QB_FEATURES_FEAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_types.h"
#include "store/qb_store.h"
#include "strategy/qb_strategy.h"
#include "ta/qb_ta.h"

#define FEAT_MAX_INDICATORS 64
#define FEAT_MAX_VALUES 192   /* indicator outputs of one series */
#define FEAT_ID_MAX 100       /* strategy id characters */
#define FEAT_ACCOUNT_MAX 64

/* ---- strategies table --------------------------------------------------- */

/* One row of features.strategies (enabled ones only are loaded). */
typedef struct feat_sdef_s {
    char id[FEAT_ID_MAX + 1];
    char account[FEAT_ACCOUNT_MAX + 1];
    char kind[64];
    char *params;     /* JSON text */
    char timeframe[QB_TIMEFRAME_MAX + 1];
    char **symbols;   /* upper-case */
    size_t nsymbols;
    int64_t change_seq;
} feat_sdef_t;

void feat_sdefs_free(feat_sdef_t *v, size_t n);

/* ---- engine ------------------------------------------------------------- */

typedef struct feat_engine_s feat_engine_t;

/* One strategy instance on one series. */
typedef struct feat_inst_s {
    char id[FEAT_ID_MAX + 1];
    char account[FEAT_ACCOUNT_MAX + 1];
    int64_t change_seq;
    qb_strategy_t *s;
    int dirty; /* state changed since the last save */
} feat_inst_t;

typedef struct feat_series_s {
    char symbol[QB_SYMBOL_MAX + 1];
    char timeframe[QB_TIMEFRAME_MAX + 1];
    int32_t partition;     /* md.bars partition it came from */
    qb_time_t last_ts;     /* newest bar applied (0: none) */
    int64_t bars;          /* bars applied, warm-up included */
    qb_ta_t *ta[FEAT_MAX_INDICATORS];
    int nta;
    double vals[FEAT_MAX_VALUES]; /* outputs of the last bar */
    int nvals;
    feat_inst_t *inst;
    size_t ninst;
    uint64_t inst_gen;     /* engine generation the instances match */
    int dirty;             /* features changed since the last Redis write */
} feat_series_t;

/* Parse the feature indicator list ("rsi:14,macd:12:26:9,...") once; the
 * engine creates instances of them for every series. */
feat_engine_t *feat_engine_new(const char *indicators, char *errstr, size_t errstr_size);
void feat_engine_destroy(feat_engine_t *e);

/* Column names of the feature values (for every series the same): n and
 * the i-th. */
int feat_engine_num_values(const feat_engine_t *e);
const char *feat_engine_value_name(const feat_engine_t *e, int i);

/* The enabled strategy definitions; the engine takes ownership of v.
 * Bumps the generation: each series re-syncs its instances at its next bar
 * (feat_series_sync), keeping those whose (id, change_seq) is unchanged. */
void feat_engine_set_strategies(feat_engine_t *e, feat_sdef_t *v, size_t n);

/* The series, or NULL. */
feat_series_t *feat_engine_find(feat_engine_t *e, const char *symbol, const char *tf);
/* A new series (indicators made, no instances yet). NULL on memory. */
feat_series_t *feat_engine_add(feat_engine_t *e, const char *symbol, const char *tf,
                               int32_t partition);
/* Drop every series that came from `partition` (revoked). */
int feat_engine_drop_partition(feat_engine_t *e, int32_t partition);
/* Forget one series (its next bar warms it up again). */
void feat_engine_remove(feat_engine_t *e, feat_series_t *s);
/* Drop every series. */
void feat_engine_clear(feat_engine_t *e);
size_t feat_engine_count(const feat_engine_t *e);
/* Visit every series. */
void feat_engine_each(feat_engine_t *e, void (*fn)(feat_series_t *, void *), void *opaque);

/* Warm the series' indicators with one history bar (no outputs). */
void feat_series_warm(feat_series_t *s, const qb_bar_t *bar);

/* A history source for new strategy instances: the stored bars of the
 * series before `before` (oldest first, at most the warm-up limit). */
typedef qb_err_t (*feat_history_cb)(void *opaque, const feat_series_t *s, qb_time_t before,
                                    qb_bar_t **bars, size_t *n, char *errstr,
                                    size_t errstr_size);
/* A saved decision state of (strategy id, symbol) with its change_seq, or
 * *json = NULL. *json is malloc'd. */
typedef qb_err_t (*feat_state_cb)(void *opaque, const char *strategy_id, const char *symbol,
                                  int64_t *change_seq, char **json, char *errstr,
                                  size_t errstr_size);

/* Bring the series' strategy instances in line with the engine's
 * definitions before applying the bar at `before`: drop the ones no longer
 * defined (or changed), create the missing ones, warm them with the
 * history before `before` and restore their saved state when it was saved
 * for the same change_seq after exactly the last history bar. */
qb_err_t feat_series_sync(feat_engine_t *e, feat_series_t *s, qb_time_t before,
                          feat_history_cb history, feat_state_cb state, void *opaque,
                          char *errstr, size_t errstr_size);

/* Apply one bar: indicators, then every instance. For each emitted signal
 * on_signal(opaque, inst, sig) is called. Returns 1 applied, 0 skipped (not
 * after last_ts: a re-delivered bar). */
int feat_series_apply(feat_series_t *s, const qb_bar_t *bar,
                      void (*on_signal)(void *opaque, feat_inst_t *inst,
                                        const qb_signal_t *sig),
                      void *opaque);

/* ---- read-back of our own output (feat_dedup.c) --------------------------- */

typedef struct feat_dedup_s feat_dedup_t;
typedef enum feat_dedup_kind_e { FEAT_DEDUP_FEATURES = 1, FEAT_DEDUP_SIGNALS = 2 } feat_dedup_kind_t;

/* margin_ms: how far before a replayed bar's Kafka timestamp the topics are
 * read back (clock skew, out-of-order timestamps). NULL on memory. */
feat_dedup_t *feat_dedup_new(int64_t margin_ms);
void feat_dedup_destroy(feat_dedup_t *d); /* NULL: no-op */
/* A bar of md.bars `partition` arrived (any bar, before anything else). */
void feat_dedup_note(feat_dedup_t *d, int32_t partition);
/* `partition` was revoked: its next bars are a new assignment. */
void feat_dedup_forget(feat_dedup_t *d, int32_t partition);
/* Before a bar of `partition` (Kafka timestamp bar_ts_ms, <= 0 unknown)
 * produces anything: read the topics back if this assignment of the
 * partition is not covered yet. A retriable error (bus unreachable) or
 * QB_ERR_NOMEM: nothing may be sent for the bar yet. */
qb_err_t feat_dedup_prepare(feat_dedup_t *d, int32_t partition, int64_t bar_ts_ms,
                            char *errstr, size_t errstr_size);
/* 1 when `id` is on its topic already (read back): do not send it again. */
int feat_dedup_sent(feat_dedup_t *d, feat_dedup_kind_t kind, const char *id);

#endif
