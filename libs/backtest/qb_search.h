/* qb_search.h — parameter search: a parameter space (grid, or a seeded
 * random sample of it), an objective, the evaluation of ONE parameter
 * combination over one period, and the ranking of scores.
 *
 * Why a module of its own: grid search on one period (this file) and
 * walk-forward (qb_wf.h: the same search per in-sample window) share the
 * space, the evaluation and the ranking, and a service splits the work into
 * one unit per combination (or per range of combinations) computed by any
 * replica: qb_search_eval is a pure function of (data, base config, space,
 * combination index, objective), its result (qb_search_score_t) is a plain
 * fixed-size value with an exact JSON form, and the ranking is a total
 * order, so the ranked list does not depend on the order scores arrive in.
 *
 * ---- The space ---------------------------------------------------------------
 * An ordered list of parameters, each with an ordered list of values (text):
 *   name        a strategy parameter of strategy entry 0 of the base config
 *               ("fast", "stop_atr", "allow_short"), or "set.NAME" = a
 *               backtest setting qb_bt_config_set takes ("set.slippage_bps",
 *               "set.sizing_value", "set.stop_exits").
 *   values      "5,10,20"          a list, used as written;
 *               "10:50:10"         an inclusive range lo:hi:step (10 20 30 40
 *                                  50), exact decimal arithmetic, step > 0,
 *                                  lo <= hi; values printed shortest
 *                                  ("0.5", "10");
 *               "true,false", "\"x\"" any JSON value for a strategy
 *                                  parameter: a value that is not valid JSON
 *                                  is taken as a JSON string. Values cannot
 *                                  contain ',' or ';'.
 *   Several at once: qb_search_parse("fast=5:20:5;slow=30,50;set.lot=1").
 * A strategy parameter's value is put into the params JSON object of entry
 * 0 (replacing the key when the base params have it, else appended; the
 * other keys keep their base order). A "set." value goes through
 * qb_bt_config_set.
 *
 * GRID ORDER: combination index c in [0, grid size) is a mixed-radix number
 * whose digits are the value indexes, the FIRST parameter most significant
 * (nested loops in the order the parameters were added, the last one
 * innermost). fast=5,10; slow=30,50 -> c0 {5,30}, c1 {5,50}, c2 {10,30},
 * c3 {10,50}.
 *
 * RANDOM SEARCH (qb_search_sample): n DISTINCT grid points drawn uniformly
 * without replacement by the seeded generator of qb_mc.h (qb_mc_rng_t,
 * splitmix64-seeded xoshiro256**); combination c is then the c-th draw (its
 * grid index: qb_search_grid_index). The same space and (n, seed) give the
 * same combinations on any machine. n >= grid size takes the whole grid in
 * grid order. After sampling, the space is frozen (qb_search_add ->
 * QB_ERR_STATE).
 *
 * A combination the strategy or the config refuses (sma_cross with slow <=
 * fast, a bad setting value) is not an error of the search: its score has
 * valid = 0 and the message, and it is never selected.
 *
 * ---- Objective and ranking ---------------------------------------------------------------
 * The objective is one metric of qb_bt_metrics.h by name ("sharpe",
 * "total_return", "calmar", "cagr", "sortino", "profit_factor",
 * "max_dd_pct" ...) with its direction (qb_bt_metric_higher_is_better),
 * plus min_trades: a combination is ELIGIBLE when valid, its trades
 * (closed + open round trips of the run) >= min_trades, and its metric is
 * not NaN. RANKING (qb_search_cmp), best first:
 *   1. eligible before not eligible;
 *   2. among eligible: the better objective (higher, or lower for the
 *      lower-is-better metrics); INFINITY (profit_factor with no loss)
 *      ranks above any finite value; +0 and -0 are equal;
 *   3. ties (equal objective, exactly): the LOWER combination index;
 *   4. among not eligible: valid before invalid, then lower index.
 * A total order: the best of a set, and the sorted list, are the same
 * whatever order the scores come in.
 *
 * ---- Evaluation --------------------------------------------------------------------------
 * qb_search_eval runs qb_bt_run on the base config with the combination
 * applied, over [from, to) (arguments; 0 = the config's own), with
 * benchmark, fills and signals off (they do not change the metrics) and no
 * progress callback. The score keeps every metric of the run.
 *
 * ---- Ownership and threads ---------------------------------------------------------------
 * qb_search_new / qb_search_destroy (NULL no-op), qb_search_clone. A space
 * is not modified by evaluation: any number of threads may evaluate
 * combinations of one space at once (each with its own score). Strings
 * returned by accessors belong to the space. */
#ifndef QB_SEARCH_H
#define QB_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_metrics.h"
#include "core/qb_err.h"

#define QB_SEARCH_MAX_PARAMS 16
#define QB_SEARCH_MAX_VALUES 10000     /* values of one parameter */
#define QB_SEARCH_MAX_COMBOS 100000000ULL /* grid size (1e8) */
#define QB_SEARCH_NAME_MAX 63
#define QB_SEARCH_ERROR_MAX 160

/* ======================================================================== */
/* The parameter space                                                       */
/* ======================================================================== */

typedef struct qb_search_s qb_search_t;

/* An empty space (grid size 1: the base config alone). QB_ERR_NOMEM. */
qb_err_t qb_search_new(qb_search_t **out);
void qb_search_destroy(qb_search_t *s);
/* A deep copy (sample included). QB_ERR_NOMEM. */
qb_err_t qb_search_clone(const qb_search_t *s, qb_search_t **out);

/* Add a parameter (see "The space"). QB_ERR_INVALID for a bad name or
 * values (message names the parameter), a name given twice, too many
 * parameters or values, or a grid larger than QB_SEARCH_MAX_COMBOS;
 * QB_ERR_STATE after qb_search_sample; QB_ERR_NOMEM. */
qb_err_t qb_search_add(qb_search_t *s, const char *name, const char *values, char *errstr,
                       size_t errstr_size);

/* Add every "name=values" of a ';'-separated list (whitespace around items
 * ignored). Stops at the first error. */
qb_err_t qb_search_parse(qb_search_t *s, const char *spec, char *errstr, size_t errstr_size);

/* Random search: keep n distinct grid points drawn with `seed` (see
 * "Random search"). n >= 1. Once only (QB_ERR_STATE the second time). */
qb_err_t qb_search_sample(qb_search_t *s, uint64_t n, uint64_t seed, char *errstr,
                          size_t errstr_size);

/* Reading. */
size_t qb_search_nparams(const qb_search_t *s);
const char *qb_search_param_name(const qb_search_t *s, size_t p); /* "" bad p */
size_t qb_search_nvalues(const qb_search_t *s, size_t p);
const char *qb_search_value(const qb_search_t *s, size_t p, size_t v); /* "" bad */
uint64_t qb_search_grid_size(const qb_search_t *s);   /* product of nvalues */
uint64_t qb_search_ncombos(const qb_search_t *s);     /* grid size, or n sampled */
int qb_search_is_sampled(const qb_search_t *s);
uint64_t qb_search_seed(const qb_search_t *s);        /* 0 unless sampled */
/* The grid index of combination c (c itself for a grid). UINT64_MAX for a
 * bad c. */
uint64_t qb_search_grid_index(const qb_search_t *s, uint64_t c);
/* The value index of each parameter for combination c (idx has
 * nparams entries). QB_ERR_RANGE for a bad c. */
qb_err_t qb_search_combo(const qb_search_t *s, uint64_t c, uint32_t *idx);
/* Combination c as a JSON object {"fast":10,"set.slippage_bps":"5"}
 * (strategy parameters as their JSON value, settings as JSON strings).
 * snprintf-like: the full length. 0 and "" for a bad c. */
size_t qb_search_combo_json(const qb_search_t *s, uint64_t c, char *buf, size_t cap);

/* The base config with combination c applied, into *out (a plain copy).
 * QB_ERR_INVALID when a setting refuses the value or entry 0's params are
 * not a JSON object or become too long (message names the parameter);
 * QB_ERR_RANGE for a bad c; QB_ERR_STATE when the space has strategy
 * parameters and the base config no strategy. */
qb_err_t qb_search_apply(const qb_search_t *s, uint64_t c, const qb_bt_config_t *base,
                         qb_bt_config_t *out, char *errstr, size_t errstr_size);

/* ======================================================================== */
/* Objective, scores, ranking                                                */
/* ======================================================================== */

typedef struct qb_search_objective_s {
    char metric[32];     /* a name of qb_bt_metric_names(); default "sharpe" */
    int higher;          /* 1 higher is better, 0 lower (set by _set) */
    int64_t min_trades;  /* >= 0; default 0 */
} qb_search_objective_t;

/* Sharpe, higher, min_trades 0. */
void qb_search_objective_default(qb_search_objective_t *o);
/* Set the metric (and its direction) and min_trades. QB_ERR_INVALID for
 * an unknown metric (the message lists the names) or min_trades < 0. */
qb_err_t qb_search_objective_set(qb_search_objective_t *o, const char *metric,
                                 int64_t min_trades, char *errstr, size_t errstr_size);

/* The result of one evaluation: a plain fixed-size value (copy with =). */
typedef struct qb_search_score_s {
    uint64_t combo;       /* combination index in the space */
    int valid;            /* 0: refused by the strategy/config (error says why) */
    int eligible;         /* valid, trades >= min_trades, objective not NaN */
    char error[QB_SEARCH_ERROR_MAX];
    int64_t trades;       /* closed + open round trips */
    double objective;     /* the objective metric's value; NaN when !valid */
    qb_bt_metrics_t metrics; /* zeros when !valid */
} qb_search_score_t;

/* Fill eligible and objective from metrics/valid/trades (qb_search_eval
 * does it; for callers that build scores themselves). */
void qb_search_score_finish(qb_search_score_t *sc, const qb_search_objective_t *o);

/* Evaluate combination c over [from, to) (0 = the base config's from /
 * to). QB_OK with sc->valid = 0 when the combination is refused; another
 * error only when the run itself failed (QB_ERR_NOMEM, QB_ERR_STATE for
 * data not finalized, QB_ERR_RANGE bad c, QB_ERR_OVERFLOW) — a service
 * retries those. */
qb_err_t qb_search_eval(const qb_bt_data_t *data, const qb_bt_config_t *base,
                        const qb_search_t *s, uint64_t c, qb_time_t from, qb_time_t to,
                        const qb_search_objective_t *o, qb_search_score_t *sc, char *errstr,
                        size_t errstr_size);

/* The ranking order under objective o (see "Objective and ranking"):
 * < 0 when a ranks before b, 0 only for the same combination index. The
 * scores' eligible/objective must come from o (qb_search_score_finish). */
int qb_search_cmp(const qb_search_objective_t *o, const qb_search_score_t *a,
                  const qb_search_score_t *b);
/* Sort scores best first. */
void qb_search_rank(const qb_search_objective_t *o, qb_search_score_t *scores, size_t n);

/* A score as one JSON object with every field, exact: doubles with 17
 * significant digits (null for NaN, "inf"/"-inf" strings for infinities),
 * money as exact decimal strings, times as strings of ns (as the
 * project's proto JSON writes int64), counts as numbers:
 *   {"combo":3,"valid":true,"eligible":true,"error":"","trades":12,
 *    "objective":1.2345678901234567,"metrics":{"bars":250,...}}
 * snprintf-like. qb_search_score_parse reads it back bit for bit
 * (QB_ERR_PARSE naming the field). Made for moving scores between
 * processes (sub-jobs of a service). */
size_t qb_search_score_json(const qb_search_score_t *sc, char *buf, size_t cap);
qb_err_t qb_search_score_parse(const char *json, size_t len, qb_search_score_t *out,
                               char *errstr, size_t errstr_size);
#define QB_SEARCH_SCORE_JSON_MAX 4096 /* a score's JSON always fits */

/* The metrics alone in the same exact form ({"bars":250,"sharpe":1.2...,
 * "first_ts":"1704153600000000000","final_equity":"101234.5"}; every
 * field of qb_bt_metrics_t), and back. For qb_wf.h's OOS results and any
 * process boundary; qb_bt_metrics_json is the display form. */
size_t qb_search_metrics_json(const qb_bt_metrics_t *m, char *buf, size_t cap);
qb_err_t qb_search_metrics_parse(const char *json, size_t len, qb_bt_metrics_t *out,
                                 char *errstr, size_t errstr_size);
/* The same from an already parsed cJSON object (for library code that
 * parses a larger document; cJSON's own printer is not exact, so a
 * subtree must not be re-printed and re-parsed). */
struct cJSON;
qb_err_t qb_search_metrics_from_cjson(const struct cJSON *obj, qb_bt_metrics_t *out,
                                      char *errstr, size_t errstr_size);

/* ======================================================================== */
/* All in one (one period)                                                   */
/* ======================================================================== */

/* Progress of the multi-unit runs here and in qb_wf.h: units done, total;
 * return nonzero to cancel (the run then fails with QB_ERR_STATE,
 * "canceled"). Called from the caller's thread only. */
typedef int (*qb_search_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/* Run task(i) for i in [0, ntasks) on `threads` threads (<= 1: this
 * thread), each task once; stop handing out tasks after the first error
 * or a cancel. progress(done, ntasks) runs on the caller's thread (every
 * ~100 ms and at the end with several threads, after each task with one).
 * The error returned is that of the LOWEST failed task index, with its
 * message. Tasks must be independent (they may run in any order). The
 * walk-forward and search runs are built on it. */
typedef qb_err_t (*qb_search_task_fn)(uint64_t i, void *ctx, char *errstr,
                                      size_t errstr_size);
qb_err_t qb_search_parallel(uint64_t ntasks, int threads, qb_search_task_fn task, void *ctx,
                            qb_search_progress_fn progress, void *progress_ctx,
                            char *errstr, size_t errstr_size);

/* Evaluate every combination of the space over the base config's [from,
 * to) on `threads` threads (<= 1: this thread), and rank. *out (malloc'd,
 * qb_search_ncombos entries, best first) is the caller's to free(). The
 * ranked list is identical for any thread count. */
qb_err_t qb_search_run(const qb_bt_data_t *data, const qb_bt_config_t *base,
                       const qb_search_t *s, const qb_search_objective_t *o, int threads,
                       qb_search_progress_fn progress, void *progress_ctx,
                       qb_search_score_t **out, size_t *n, char *errstr, size_t errstr_size);

#endif
