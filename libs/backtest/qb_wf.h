/* qb_wf.h — walk-forward optimisation: windows of in-sample (IS) and
 * out-of-sample (OOS) time steps, a parameter search per IS window
 * (qb_search.h), the best combination of each window run on the OOS window
 * that follows, and the OOS runs stitched into one equity curve with the
 * metrics of qb_bt_metrics.h, trades, and parameter stability.
 *
 * Why the pieces (plan / unit / aggregator): qb-backtest splits a
 * walk-forward into SUB-JOBS that replicas compute independently and
 * aggregates the results as they arrive; the final result must equal a
 * one-process run whatever the order. So:
 *   1. PLAN (qb_wf_plan_new): a pure function of (data steps, base config,
 *      space, spec) that lays out the windows (by index, 0..) and the
 *      combinations (by index, qb_search.h's order). Every replica that
 *      has the same data builds the same plan; qb_wf_plan_fingerprint
 *      tells them apart cheaply.
 *   2. UNITS: (IS, window w, combination c) -> a qb_search_score_t (plain
 *      fixed-size value, exact JSON), computed by qb_wf_eval_is for a
 *      range of combinations at once; (OOS, window w, combination c) -> a
 *      qb_wf_oos_t (the OOS window's equity curve, trades and metrics,
 *      exact JSON), computed by qb_wf_eval_oos. Both are pure functions of
 *      (plan, data, ids): any replica, any time, same bytes.
 *   3. AGGREGATOR (qb_wf_agg_*): takes IS scores and OOS results in any
 *      order, any number of times (a duplicate is ignored), keeps per
 *      window only the best score so far (a total order, qb_search_cmp:
 *      the max of a set does not depend on the order) and a bitmap of the
 *      combinations seen. Once every IS score of window w is in, the
 *      window's selection is known (qb_wf_agg_selected) and its OOS unit
 *      becomes due; qb_wf_agg_next lists the units due. qb_wf_agg_finish,
 *      when everything is in, stitches the OOS results in window order.
 *   4. LOCAL RUN (qb_wf_run): the same pieces on N threads in one process
 *      (what `qbctl walkforward` uses). Its result equals any distributed
 *      run of the same plan, bit for bit.
 * A typical service: coordinator builds the plan, sends "IS w, combos
 * [a, b)" jobs (qb_wf_eval_is), feeds the scores to the aggregator, sends
 * "OOS w, c" for each window as soon as it is selected, feeds those, and
 * finishes. Memory of the aggregator: windows x combos bits + one score per
 * window + the OOS results.
 *
 * ---- Windows (qb_wf_spec_t) ---------------------------------------------------
 * The REGION is the data's time steps (qb_bt_data_steps) with base.from <=
 * ts < base.to (0 = unbounded); its steps are numbered 0..N-1 here. Lengths
 * are in time steps (unit "steps", the default: a step is one distinct bar
 * timestamp over all symbols, qb_backtest.h) or in time (unit "time"):
 *   steps  window k (k = 0, 1, ...), with S = step (default: oos):
 *            rolling   IS  = [k*S, k*S + is)
 *            anchored  IS  = [0,   k*S + is)
 *            both      OOS = [k*S + is, k*S + is + oos)
 *          windows are laid out from the START of the region; a window
 *          exists while its OOS start < N. The last OOS window is cut at
 *          N (a "remainder" window shorter than oos) when partial_last is
 *          on (default); off, only full OOS windows are kept and the
 *          remaining steps are not traded.
 *          Example, N = 11, is = 4, oos = 2, step 2, rolling:
 *            w0 IS [0,4)  OOS [4,6);  w1 IS [2,6)  OOS [6,8);
 *            w2 IS [4,8)  OOS [8,10); w3 IS [6,10) OOS [10,11) (remainder)
 *          anchored: the same OOS, IS [0,4) [0,6) [0,8) [0,10).
 *   time   the same formulas on TIMES from t0 = the first step's ts, with
 *          lengths like "2y", "6mo", "90d", "4w", "12h", "30m" (y and mo
 *          are calendar months: t0 + 6mo is the same day-of-month six
 *          months later, clamped to the month's end; d/w/h/m are fixed
 *          ns); each boundary time b maps to the first step with ts >= b;
 *          a window is kept while its OOS start time < the last step's ts
 *          + 1ns, and skipped when its IS or its OOS holds no step (a gap
 *          in the data). Lengths cannot mix units (all steps or all time).
 * step >= oos is required (overlapping OOS windows cannot be stitched);
 * step > oos leaves steps between OOS windows untraded (not in the
 * aggregate). Each window's IS run is qb_bt_run with from = ts of its
 * first IS step, to = ts of its OOS start step (the OOS run: from = that,
 * to = ts of the step after its last, or last ts + 1 ns at the end of the
 * data); bars before `from` only warm the strategies up (base.warmup_bars,
 * default all): no OOS run trades or marks an IS bar, so the OOS aggregate
 * is made of OOS bars only.
 *
 * ---- Selection ----------------------------------------------------------------------
 * Per window: the best IS score by qb_search_cmp (objective, min_trades,
 * ties to the lower combination index). When no combination of the window
 * is eligible, the window is NOT TRADED: it has no selection (combo -1),
 * no OOS unit, and the stitched equity stays flat (cash) over its OOS
 * steps, which still count as steps (zero returns) in the aggregate.
 *
 * ---- Stitching the OOS runs -------------------------------------------------------------
 * Each OOS window is run on its own with FRESH capital (base.cash) and
 * starts flat; so OOS units are independent (no unit waits for another
 * window's OOS). The aggregate CHAINS RETURNS: with C = base.cash,
 * S_0 = C, and window k starting at stitched equity S_k, each point of
 * window k's curve becomes
 *     stitched = E * S_k / C        (exact 128-bit, half-even to 1e-8)
 * i.e. its returns step by step are the window's own; S_{k+1} is the
 * stitched value of window k's last point. This is compounding (each
 * window re-invests what the previous ended with) except for what does not
 * scale with capital (lot rounding, fixed_qty sizing, per-trade
 * commission minimums). Gross exposure, turnover notionals and trade P&L
 * are scaled by the same factor S_k / C; trade prices, quantities and
 * return_pct are the window's own.
 * POSITIONS AT A WINDOW END: the engine does not close them; a position
 * still open at the end of an OOS window is marked at the window's last
 * close (qb_backtest.h "the end"), and the next window starts flat with
 * that marked equity — as if it were closed at that close with no exit
 * commission or slippage. Such trades are counted as CLOSED in the
 * aggregate (won / lost by their marked net P&L) and flagged `cut`; the
 * aggregate has no open trade. Working orders at a window end are dropped.
 * The aggregate metrics (qb_bt_metrics.h, the same accumulator a backtest
 * uses) run over the stitched points of every window in order, E_0 = C,
 * bars per year as the base config's run gives it.
 *
 * ---- Parameter stability ---------------------------------------------------------------
 * Over the windows that have a selection (in window order), per
 * parameter: the value chosen in each window; distinct = how many
 * different values were chosen; changes = how many times the value differs
 * from the previous selected window's; mode = the value chosen most often
 * (ties: the one first in the value list) and mode_share = its count /
 * selected windows; when every value of the parameter is a number: mean,
 * stdev (population), cv = stdev / |mean| (0 when mean == 0), min, max of
 * the chosen values. For the whole set: set_changes = windows whose
 * combination differs from the previous selected window's, and
 * distinct_sets. Also per window the IS objective of the selection and the
 * OOS objective of its run (same metric), and their means over windows
 * (walk-forward efficiency = oos mean / is mean, 0 when is mean == 0).
 *
 * ---- Ownership and threads ---------------------------------------------------------------
 * _new/_destroy pairs, destroy(NULL) a no-op. A plan copies what it needs
 * (config, space, spec, the region's step times, symbol names): it does
 * not point at the data and outlives it. Plans are read-only after _new:
 * evaluation functions may run on any number of threads at once. The data
 * given to an eval must be the one the plan was made from (same region
 * steps; checked: QB_ERR_INVALID otherwise). An aggregator points at its
 * plan (which must outlive it) and is not thread-safe (one thread feeds
 * it). A result owns copies of everything. */
#ifndef QB_WF_H
#define QB_WF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_metrics.h"
#include "backtest/qb_search.h"
#include "core/qb_err.h"

/* ======================================================================== */
/* Spec                                                                      */
/* ======================================================================== */

typedef enum qb_wf_mode_e {
    QB_WF_ROLLING = 0, /* IS of fixed length moves with the window */
    QB_WF_ANCHORED = 1 /* IS always starts at the region's start */
} qb_wf_mode_t;

/* A length: steps (unit steps), or months + ns (unit time). */
typedef struct qb_wf_len_s {
    int64_t steps;
    int32_t months;
    int64_t ns;
} qb_wf_len_t;

typedef struct qb_wf_spec_s {
    qb_wf_mode_t mode;        /* default rolling */
    int by_time;              /* 0: lengths in steps (default); 1: in time */
    qb_wf_len_t is_len;       /* > 0; required */
    qb_wf_len_t oos_len;      /* > 0; required */
    qb_wf_len_t step;         /* 0 = oos_len; must be >= oos_len */
    int partial_last;         /* 1 (default): keep a shorter last OOS window */
    qb_search_objective_t objective; /* default sharpe, min_trades 0 */
} qb_wf_spec_t;

void qb_wf_spec_default(qb_wf_spec_t *sp);

/* Set one field from text (CLI, service):
 *   mode rolling|anchored | is L | oos L | step L | partial_last true|false |
 *   objective METRIC | min_trades N
 * L: "250" (steps) or a duration "2y" "6mo" "90d" "4w" "12h" "30m" (time);
 * the first length set fixes the unit, a length in the other unit is then
 * QB_ERR_INVALID. QB_ERR_NOT_FOUND for an unknown name, QB_ERR_INVALID for
 * a bad value (message names the field). */
qb_err_t qb_wf_spec_set(qb_wf_spec_t *sp, const char *name, const char *value,
                        char *errstr, size_t errstr_size);

/* Lengths > 0, step 0 or >= oos, same unit, objective known. */
qb_err_t qb_wf_spec_validate(const qb_wf_spec_t *sp, char *errstr, size_t errstr_size);

/* The spec as JSON {"mode":"rolling","unit":"steps","is":250,"oos":50,
 * "step":50,"partial_last":true,"objective":"sharpe","min_trades":5}
 * (time lengths as text "6mo", "90d", "1mo+3600000000000ns" when mixed).
 * snprintf-like. */
size_t qb_wf_spec_json(const qb_wf_spec_t *sp, char *buf, size_t cap);

/* ======================================================================== */
/* Plan                                                                      */
/* ======================================================================== */

/* One window: step indexes into the REGION ([begin, end)) and the run
 * windows [from, to) they give (see "Windows"). */
typedef struct qb_wf_window_s {
    uint32_t index;
    size_t is_begin, is_end;    /* is_end == oos_begin */
    size_t oos_begin, oos_end;
    qb_time_t is_from, is_to;   /* is_to == oos_from */
    qb_time_t oos_from, oos_to;
    int partial;                /* 1: OOS shorter than oos_len (the remainder) */
} qb_wf_window_t;

typedef struct qb_wf_plan_s qb_wf_plan_t;

/* Lay out the windows over the finalized data. base: the backtest config
 * (its strategies, account, execution, window = the region; progress
 * callback ignored); space: copied (NULL = one combination, the base
 * config). QB_ERR_INVALID for a bad spec or config, or when not one window
 * fits (the message says how many steps the region has and how many the
 * first window needs); QB_ERR_STATE data not finalized; QB_ERR_NOMEM. */
qb_err_t qb_wf_plan_new(const qb_bt_data_t *data, const qb_bt_config_t *base,
                        const qb_search_t *space, const qb_wf_spec_t *spec,
                        qb_wf_plan_t **out, char *errstr, size_t errstr_size);
void qb_wf_plan_destroy(qb_wf_plan_t *p);

size_t qb_wf_plan_nwindows(const qb_wf_plan_t *p);
const qb_wf_window_t *qb_wf_plan_window(const qb_wf_plan_t *p, uint32_t w); /* NULL bad w */
uint64_t qb_wf_plan_ncombos(const qb_wf_plan_t *p);
const qb_search_t *qb_wf_plan_space(const qb_wf_plan_t *p);
const qb_wf_spec_t *qb_wf_plan_spec(const qb_wf_plan_t *p);
const qb_bt_config_t *qb_wf_plan_config(const qb_wf_plan_t *p);
/* The region's step times (N of them). */
const qb_time_t *qb_wf_plan_steps(const qb_wf_plan_t *p, size_t *n);
/* Units in all: windows x combos (IS) + windows (OOS, at most). */
uint64_t qb_wf_plan_nunits(const qb_wf_plan_t *p);
/* FNV-1a 64 of everything that decides results: config JSON, spec, space
 * (values and sample), region steps, windows. Equal plans, equal
 * fingerprints: replicas compare it with the coordinator's. */
uint64_t qb_wf_plan_fingerprint(const qb_wf_plan_t *p);
/* The layout as JSON: {"fingerprint":"hex","steps":N,"combos":M,
 * "windows":[{"index":0,"is":[b,e],"oos":[b,e],"is_from":ISO,...}]}.
 * snprintf-like. */
size_t qb_wf_plan_json(const qb_wf_plan_t *p, char *buf, size_t cap);

/* ======================================================================== */
/* Units                                                                     */
/* ======================================================================== */

typedef enum qb_wf_unit_kind_e {
    QB_WF_UNIT_IS = 0,  /* one window's IS evaluation of combinations */
    QB_WF_UNIT_OOS = 1  /* one window's OOS run of its selection */
} qb_wf_unit_kind_t;

/* The id of a unit of work (plain value). For IS, [combo, combo_end) is a
 * range of combinations (one unit per combination: combo_end = combo + 1);
 * for OOS, combo is the window's selection and combo_end = combo + 1. */
typedef struct qb_wf_unit_s {
    qb_wf_unit_kind_t kind;
    uint32_t window;
    uint64_t combo, combo_end;
} qb_wf_unit_t;

/* IS: evaluate combinations [c0, c1) of window w over its IS run window;
 * scores[c1 - c0] written in combination order (score.combo set). Errors
 * as qb_search_eval (a refused combination is a score, not an error);
 * QB_ERR_RANGE for a bad w or range, QB_ERR_INVALID when the data is not
 * the plan's. */
qb_err_t qb_wf_eval_is(const qb_wf_plan_t *p, const qb_bt_data_t *data, uint32_t w,
                       uint64_t c0, uint64_t c1, qb_search_score_t *scores, char *errstr,
                       size_t errstr_size);

/* The OOS run of combination c in window w (fresh capital; see
 * "Stitching"). */
typedef struct qb_wf_oos_s qb_wf_oos_t;

/* OOS: run combination c over window w's OOS run window. QB_ERR_INVALID
 * when the combination is refused (it cannot be a selection) or the data
 * is not the plan's; other errors as qb_bt_run. */
qb_err_t qb_wf_eval_oos(const qb_wf_plan_t *p, const qb_bt_data_t *data, uint32_t w,
                        uint64_t c, qb_wf_oos_t **out, char *errstr, size_t errstr_size);
void qb_wf_oos_destroy(qb_wf_oos_t *r);

uint32_t qb_wf_oos_window(const qb_wf_oos_t *r);
uint64_t qb_wf_oos_combo(const qb_wf_oos_t *r);
/* The window's own metrics (fresh capital, its steps only). */
const qb_bt_metrics_t *qb_wf_oos_metrics(const qb_wf_oos_t *r);
/* Its curve (ts, equity, cash, long and short value; benchmark 0) and its
 * trades (the engine's, open ones flagged open). */
const qb_bt_point_t *qb_wf_oos_equity(const qb_wf_oos_t *r, size_t *n);
const qb_bt_trade_t *qb_wf_oos_trades(const qb_wf_oos_t *r, size_t *n);

/* The OOS result as exact JSON (one object: window, combo, metrics,
 * points as [ts_ns, equity, cash, long, short] with decimals as exact
 * text, trades as objects); malloc'd, NUL-terminated, the caller free()s
 * it; NULL on QB_ERR_NOMEM. qb_wf_oos_parse reads it back bit for bit
 * (QB_ERR_PARSE naming the field). */
char *qb_wf_oos_to_json(const qb_wf_oos_t *r);
qb_err_t qb_wf_oos_parse(const char *json, size_t len, qb_wf_oos_t **out, char *errstr,
                         size_t errstr_size);

/* ======================================================================== */
/* Aggregator                                                                */
/* ======================================================================== */

typedef struct qb_wf_agg_s qb_wf_agg_t;

/* p must outlive the aggregator. QB_ERR_NOMEM. */
qb_err_t qb_wf_agg_new(const qb_wf_plan_t *p, qb_wf_agg_t **out);
void qb_wf_agg_destroy(qb_wf_agg_t *a);

/* IS scores of window w (each names its combination; any subset, any
 * order, repeats ignored). The aggregator recomputes `eligible` from the
 * plan's objective (a score made elsewhere cannot disagree).
 * QB_ERR_RANGE for a bad window or combination (nothing of the call is
 * kept then). */
qb_err_t qb_wf_agg_add_is(qb_wf_agg_t *a, uint32_t w, const qb_search_score_t *scores,
                          size_t n, char *errstr, size_t errstr_size);

/* 1 when every IS score of window w is in: *combo = the selection, or -1
 * when the window is not traded (no eligible combination); *best (may be
 * NULL) = its score. 0 before (outputs untouched); -1 bad w. */
int qb_wf_agg_selected(const qb_wf_agg_t *a, uint32_t w, int64_t *combo,
                       qb_search_score_t *best);

/* The OOS result of window w (copied; r may be destroyed after). It must
 * be for the window's selection: QB_ERR_STATE before the selection is
 * known, QB_ERR_INVALID for another combination or a window that is not
 * traded, or a curve whose steps are not the window's OOS steps. A repeat
 * is ignored. */
qb_err_t qb_wf_agg_add_oos(qb_wf_agg_t *a, const qb_wf_oos_t *r, char *errstr,
                           size_t errstr_size);

/* Units due now, in a fixed order (OOS units of selected windows first,
 * by window; then IS, by window, each window's missing combinations as
 * ranges of at most batch combinations; batch 0 = 64): up to cap written
 * to units; returns how many are due in all. A unit stays due until its
 * result is added (a service re-sends what it lost). */
size_t qb_wf_agg_next(const qb_wf_agg_t *a, uint64_t batch, qb_wf_unit_t *units,
                      size_t cap);

/* Units whose results are in (IS combinations + OOS windows, and windows
 * not traded count as their OOS unit done), and the total
 * (qb_wf_plan_nunits). */
uint64_t qb_wf_agg_done(const qb_wf_agg_t *a, uint64_t *total);
int qb_wf_agg_complete(const qb_wf_agg_t *a);

/* ======================================================================== */
/* Result                                                                    */
/* ======================================================================== */

typedef struct qb_wf_result_s qb_wf_result_t;

/* Everything in: the result (see "Stitching", "Parameter stability").
 * QB_ERR_STATE when a unit is missing (the message names the first),
 * QB_ERR_OVERFLOW when stitched equity leaves the decimal range,
 * QB_ERR_NOMEM. The aggregator can be finished more than once. */
qb_err_t qb_wf_agg_finish(const qb_wf_agg_t *a, qb_wf_result_t **out, char *errstr,
                          size_t errstr_size);
void qb_wf_result_destroy(qb_wf_result_t *r);

typedef struct qb_wf_window_result_s {
    qb_wf_window_t win;
    int64_t combo;              /* the selection; -1 = not traded */
    uint64_t valid, eligible;   /* IS combinations refused / eligible */
    qb_search_score_t is_best;  /* the selection's IS score (combo -1: the
                                   best non-eligible, for reference) */
    qb_bt_metrics_t oos;        /* its OOS run alone, fresh capital (zeros
                                   when not traded) */
    double oos_objective;       /* the objective metric of that run */
    int64_t oos_trades;
    qb_dec_t start_equity, end_equity; /* stitched, at its OOS start / end */
    double scale;               /* start_equity / cash */
} qb_wf_window_result_t;

/* An aggregated OOS trade: the engine's trade, its window, whether the
 * window end cut it, and its P&L scaled into the stitched curve. */
typedef struct qb_wf_trade_s {
    qb_bt_trade_t t;            /* as the window's run reported it */
    uint32_t window;
    int cut;                    /* 1: open at its window's end (marked there) */
    qb_dec_t scaled_pnl;        /* t.net_pnl x scale, half-even */
} qb_wf_trade_t;

typedef struct qb_wf_stability_s {
    const char *name;           /* the parameter */
    uint32_t selected;          /* windows with a selection */
    uint32_t distinct, changes;
    const char *mode;           /* "" when no window is selected */
    double mode_share;
    int numeric;                /* 1: every value of the parameter is a number */
    double mean, stdev, cv, min, max; /* numeric only, else 0 */
} qb_wf_stability_t;

size_t qb_wf_result_nwindows(const qb_wf_result_t *r);
const qb_wf_window_result_t *qb_wf_result_window(const qb_wf_result_t *r, uint32_t w);
/* Metrics of the stitched OOS curve. */
const qb_bt_metrics_t *qb_wf_result_metrics(const qb_wf_result_t *r);
/* The stitched curve (one point per OOS step of every window, in order;
 * benchmark 0). */
const qb_bt_point_t *qb_wf_result_equity(const qb_wf_result_t *r, size_t *n);
const qb_wf_trade_t *qb_wf_result_trades(const qb_wf_result_t *r, size_t *n);
const char *qb_wf_result_symbol(const qb_wf_result_t *r, uint32_t sym);
/* Stability per parameter (qb_search_nparams of them). */
size_t qb_wf_result_nparams(const qb_wf_result_t *r);
const qb_wf_stability_t *qb_wf_result_stability(const qb_wf_result_t *r, size_t p);
uint32_t qb_wf_result_set_changes(const qb_wf_result_t *r);
uint32_t qb_wf_result_distinct_sets(const qb_wf_result_t *r);
/* Mean IS objective of the selections, mean OOS objective, efficiency. */
void qb_wf_result_objectives(const qb_wf_result_t *r, double *is_mean, double *oos_mean,
                             double *efficiency);
/* The combination JSON of window w's selection ("null" when not traded). */
size_t qb_wf_result_combo_json(const qb_wf_result_t *r, uint32_t w, char *buf, size_t cap);

#define QB_WF_JSON_EQUITY 0x1u /* include the stitched curve */
#define QB_WF_JSON_TRADES 0x2u /* include the trades */

/* The result as one JSON object:
 *   {"plan": {"fingerprint","steps","combos","nwindows","bars_per_year"},
 *    "spec": {...qb_wf_spec_json...}, "config": {...qb_bt_config_json...},
 *    "space": {"params":[{"name":..,"values":[..]}], "grid_size":G,
 *              "combos":M, "sampled":bool, "seed":S},
 *    "metrics": {...qb_bt_metrics_json of the stitched curve...},
 *    "windows": [{"index", "is_steps":[b,e], "oos_steps":[b,e], "is_from",
 *                 "is_to", "oos_from", "oos_to", "partial", "combo" (null
 *                 = not traded), "params", "valid", "eligible",
 *                 "is_objective", "is_trades", "oos_objective",
 *                 "oos_trades", "oos_return", "start_equity",
 *                 "end_equity"}],
 *    "stability": {"params":[{name, distinct, changes, mode, mode_share,
 *                  numeric, mean, stdev, cv, min, max, values:[per window]}],
 *                  "set_changes", "distinct_sets", "is_objective_mean",
 *                  "oos_objective_mean", "efficiency"},
 *    "equity": [[ts_iso, equity], ...]                (QB_WF_JSON_EQUITY)
 *    "trades": [{window, symbol, dir, cut, entry_ts, exit_ts, qty,
 *                entry_price, exit_price, net_pnl, scaled_pnl,
 *                return_pct, bars}, ...]}             (QB_WF_JSON_TRADES)
 * QB_ERR_IO when writing fails. */
qb_err_t qb_wf_result_json(const qb_wf_result_t *r, unsigned flags, FILE *f);

/* ======================================================================== */
/* All in one                                                                */
/* ======================================================================== */

/* The plan on `threads` threads (<= 1: this thread) through the same
 * units and aggregator; progress as qb_search_progress_fn over units
 * (qb_wf_agg_done). Same result for any thread count. */
qb_err_t qb_wf_run(const qb_wf_plan_t *p, const qb_bt_data_t *data, int threads,
                   qb_search_progress_fn progress, void *progress_ctx,
                   qb_wf_result_t **out, char *errstr, size_t errstr_size);

#endif
