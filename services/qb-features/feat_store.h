/* feat_store.h — qb-features and PostgreSQL (sql/0005_features.sql; md.bars
 * read for warm-up). A qb_store_t is used by one thread: the consumer thread
 * has one (reads, commands), the writer thread another (feat_batch_flush). */
#ifndef QB_FEATURES_FEAT_STORE_H
#define QB_FEATURES_FEAT_STORE_H

#include "feat.h"
#include "qb/v1/control.pb-c.h"

/* max(change_seq) of features.strategies (0 when empty). */
qb_err_t feat_store_strategies_seq(qb_store_t *s, int64_t *seq, char *errstr,
                                   size_t errstr_size);

/* The enabled strategies (malloc'd array, feat_sdefs_free). */
qb_err_t feat_store_strategies(qb_store_t *s, feat_sdef_t **out, size_t *n, char *errstr,
                               size_t errstr_size);

/* Up to `limit` stored bars of symbol/tf with ts < before, oldest first
 * (malloc'd; NULL when none). Prices as stored (fixed-point). */
qb_err_t feat_store_history(qb_store_t *s, const char *symbol, const char *tf,
                            qb_time_t before, int64_t limit, qb_bar_t **out, size_t *n,
                            char *errstr, size_t errstr_size);

/* The newest bar time of symbol/tf in features.features (0: none): how far
 * this deployment's effects are durable for the series. */
qb_err_t feat_store_durable(qb_store_t *s, const char *symbol, const char *tf, qb_time_t *ts,
                            char *errstr, size_t errstr_size);

/* The saved decision state of (strategy, symbol): *json malloc'd, NULL when
 * none. */
qb_err_t feat_store_state(qb_store_t *s, const char *strategy_id, const char *symbol,
                          int64_t *change_seq, char **json, char *errstr, size_t errstr_size);

/* Apply a STRATEGY_* command: SET_PARAMS creates or replaces an instance
 * (validated by creating it: the strategy's own message on a bad
 * parameter), ENABLE / DISABLE switch an existing one. QB_ERR_INVALID /
 * QB_ERR_NOT_FOUND (non-retriable: dead-lettered) with a message. */
qb_err_t feat_store_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, char *errstr,
                                  size_t errstr_size);

/* ---- the batch of effects ------------------------------------------------ */

typedef struct feat_batch_s feat_batch_t;

feat_batch_t *feat_batch_new(void);
void feat_batch_free(feat_batch_t *b);
/* Rows staged (features + signals). */
size_t feat_batch_rows(const feat_batch_t *b);

/* Stage the feature row of a series' last bar (values JSON built from the
 * engine's column names, NaN left out). */
qb_err_t feat_batch_feature(feat_batch_t *b, const feat_engine_t *e, const feat_series_t *s);
/* Stage a signal. */
qb_err_t feat_batch_signal(feat_batch_t *b, const char *signal_id, const feat_inst_t *in,
                           const qb_signal_t *sig);
/* Stage the decision state of an instance (after the series' last bar). */
qb_err_t feat_batch_state(feat_batch_t *b, const feat_inst_t *in, const feat_series_t *s);

/* Write everything staged in ONE transaction (COPY for features, ON
 * CONFLICT DO NOTHING / DO UPDATE so a replay changes nothing) and empty
 * the batch. On error nothing is written and the batch is kept. */
qb_err_t feat_batch_flush(feat_batch_t *b, qb_store_t *s, char *errstr, size_t errstr_size);

/* The JSON object of a series' valid values ({"rsi:14": 55.1, ...}) into a
 * malloc'd string (shortest round-trip numbers). */
char *feat_values_json(const feat_engine_t *e, const feat_series_t *s);

#endif
