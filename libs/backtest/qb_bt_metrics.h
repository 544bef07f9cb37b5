/* qb_bt_metrics.h — performance metrics of an equity curve and of a list of
 * round-trip trades, computed online (one pass, O(1) memory), plus metric
 * lookup by name (objective functions of grid search and walk-forward).
 *
 * Why a module of its own: the backtest engine (qb_backtest.h) fills these
 * for one run, and walk-forward / Monte Carlo / grid search compute the
 * same numbers over stitched or resampled curves; one definition, written
 * down here, keeps them equal.
 *
 * ---- Conventions ----------------------------------------------------------
 * Equity is marked at each TIME STEP (all bars of one timestamp, every
 * symbol, see qb_backtest.h), after everything that happened in it. With
 * E_0 the initial equity (cash at the start) and E_1..E_N the equity after
 * each step:
 *   return per step   r_i = E_i / E_{i-1} - 1       (i = 1..N; every step
 *                     from the start counts, warm-up and flat ones included:
 *                     a flat step has r = 0). If E_{i-1} <= 0 the return is
 *                     (E_i - E_{i-1}) / |E_{i-1}|, or 0 when E_{i-1} == 0.
 *   mean, stdev       arithmetic mean and POPULATION standard deviation
 *                     (divide by N) of r_1..r_N, by Welford's online update.
 *   bars per year     B: given, or from the timeframe (qb_bt_bars_per_year).
 *   sharpe            mean / stdev x sqrt(B); risk-free rate 0; 0 when
 *                     stdev == 0.
 *   sortino           mean / DD x sqrt(B) with the downside deviation
 *                     DD = sqrt(sum over ALL N steps of min(r_i, 0)^2 / N)
 *                     (target 0); 0 when DD == 0.
 *   volatility        stdev x sqrt(B) (annualised).
 *   years             N / B (the curve's length in years by the same count
 *                     Sharpe uses; for 1d NYSE bars about calendar years).
 *   total_return      E_N / E_0 - 1.
 *   cagr              (E_N / E_0)^(1 / years) - 1; -1 when E_N <= 0; 0 when
 *                     N == 0.
 *   max drawdown      peak P_i = max(E_0..E_i). dd_money_i = P_i - E_i,
 *                     dd_pct_i = dd_money_i / P_i (a fraction: 0.15 = 15%;
 *                     positive numbers). max_dd_pct and max_dd_money are the
 *                     maxima over i, each on its own (they can come from
 *                     different points: a 10% fall from 200k is more money
 *                     than a 20% fall from 50k). max_dd_peak_ts /
 *                     max_dd_trough_ts belong to max_dd_pct. max_dd_bars: the
 *                     longest run of steps below a previous peak.
 *   calmar            cagr / max_dd_pct; 0 when max_dd_pct == 0.
 *   exposure          share of the N steps that ended with any position
 *                     open (0..1).
 *   avg_gross_exposure mean over the N steps of (long value + |short
 *                     value|) / E_i (steps with E_i <= 0 count 0).
 *   turnover          sum of |fill notional| (qty x price, both sides) /
 *                     average equity (mean of E_1..E_N); turnover_annual =
 *                     turnover / years.
 * Trades are ROUND TRIPS (qb_bt_trade_t in qb_backtest.h: flat -> position
 * -> flat, net P&L after both sides' commissions). Over CLOSED trades:
 *   won               net_pnl > 0;  lost  net_pnl <= 0 (won + lost ==
 *                     trades_closed; a break-even trade is not a win).
 *   win_rate          won / trades_closed (0 with no closed trade).
 *   gross_profit      sum of net_pnl > 0; gross_loss = sum of net_pnl < 0
 *                     (<= 0).
 *   profit_factor     gross_profit / |gross_loss|; INFINITY when there is a
 *                     profit and no loss (the JSON writer prints null); 0
 *                     with neither.
 *   avg_win, avg_loss mean net_pnl of the won / lost trades (avg_loss <= 0).
 *   expectancy        mean net_pnl per closed trade
 *                     (= win_rate x avg_win + (1 - win_rate) x avg_loss).
 *   largest_win / largest_loss, avg_trade_bars (bars of the symbol held).
 * Open trades are counted in trades_open and never in won / lost.
 *
 * Online use: qb_bt_acc_init, then qb_bt_acc_step per step in time order,
 * qb_bt_acc_trade per closed or open trade, qb_bt_acc_notional per fill,
 * then qb_bt_acc_finish (any number of times; it does not change the
 * accumulator). The accumulator is a plain value (copyable); its fields are
 * private to this module.
 *
 * Ownership: none; plain values. Not thread-safe per accumulator;
 * different accumulators are independent. */
#ifndef QB_BT_METRICS_H
#define QB_BT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"

/* Every number the conventions above define. */
typedef struct qb_bt_metrics_s {
    /* the equity curve */
    int64_t bars;              /* N: time steps (returns) */
    double bars_per_year;      /* B */
    double years;              /* N / B */
    qb_time_t first_ts, last_ts; /* ts of step 1 and step N; 0 when N == 0 */
    qb_dec_t initial_equity;   /* E_0 */
    qb_dec_t final_equity;     /* E_N (E_0 when N == 0) */
    qb_dec_t net_profit;       /* E_N - E_0 */
    double total_return;
    double cagr;
    double mean_return;        /* per step */
    double stdev_return;       /* per step, population */
    double volatility;         /* annualised */
    double sharpe;
    double sortino;
    double calmar;
    double max_dd_pct;         /* fraction of the peak, >= 0 */
    qb_dec_t max_dd_money;     /* >= 0 */
    qb_time_t max_dd_peak_ts;  /* of max_dd_pct; 0 = the start (E_0) */
    qb_time_t max_dd_trough_ts;
    int64_t max_dd_bars;       /* longest time under water, in steps */
    double exposure;           /* 0..1 */
    double avg_gross_exposure;
    double turnover;
    double turnover_annual;
    qb_dec_t traded_notional;  /* sum of |fill notional| */
    /* round trips */
    int64_t trades_closed, trades_open, won, lost;
    double win_rate;
    qb_dec_t gross_profit;     /* >= 0 */
    qb_dec_t gross_loss;       /* <= 0 */
    double profit_factor;      /* INFINITY possible, see above */
    double avg_win, avg_loss, expectancy;
    qb_dec_t largest_win, largest_loss; /* 0 when none; largest_loss <= 0 */
    double avg_trade_bars;
    qb_dec_t open_pnl;         /* sum of net_pnl of the open trades */
} qb_bt_metrics_t;

/* The online accumulator (fields private; see the top of the file). */
typedef struct qb_bt_acc_s {
    qb_dec_t e0, prev, peak, last, max_dd_money;
    double bpy;
    int64_t n, n_pos, under, max_under;
    double mean, m2, down2, gross_sum, eq_sum, max_dd_pct;
    qb_time_t first_ts, last_ts, peak_ts, dd_peak_ts, dd_trough_ts;
    qb_dec_wide_t notional;
    int64_t closed, open, won, lost, bars_sum;
    qb_dec_wide_t gp, gl, open_pnl;
    qb_dec_t best, worst;
} qb_bt_acc_t;

/* Start a curve at initial equity e0 (> 0 for meaningful ratios) with
 * bars_per_year B (> 0). */
void qb_bt_acc_init(qb_bt_acc_t *a, qb_dec_t e0, double bars_per_year);

/* One time step: its ts, equity after it, gross exposure (long value +
 * |short value|, >= 0) and whether any position is open after it. */
void qb_bt_acc_step(qb_bt_acc_t *a, qb_time_t ts, qb_dec_t equity, qb_dec_t gross,
                    int has_position);

/* One fill's |notional| (turnover). */
void qb_bt_acc_notional(qb_bt_acc_t *a, qb_dec_t notional);

/* One round trip: net P&L, bars held, open (1) or closed (0). */
void qb_bt_acc_trade(qb_bt_acc_t *a, qb_dec_t net_pnl, int64_t bars, int open);

/* The metrics so far (m fully written). */
void qb_bt_acc_finish(const qb_bt_acc_t *a, qb_bt_metrics_t *m);

/* Bars per year for Sharpe and CAGR from a timeframe ("1m" ... "1w", as
 * qb_timeframe_parse) and the market's hours:
 *   equity (twenty_four_seven = 0): NYSE regular session, 252 days of
 *     6.5 hours: 1m 98280 (252 x 390), 5m 19656, 15m 6552, 30m 3276,
 *     1h 1764 (7 session-aligned bars a day: 09:30 ... 15:30, the last
 *     one half an hour, as qb_md_resample makes them), 4h 504 (2 a day),
 *     1d 252, 1w 52;
 *   24x7 (crypto; twenty_four_seven = 1): 365 days of 24 hours: 1m
 *     525600, 5m 105120, 15m 35040, 30m 17520, 1h 8760, 4h 2190, 1d 365,
 *     1w 365/7.
 * Other whole multiples of a minute: equity 98280 / minutes (for bars that
 * divide the 390-minute session; others are approximate), 24x7 525600 /
 * minutes. QB_ERR_PARSE for an unknown timeframe. */
qb_err_t qb_bt_bars_per_year(const char *timeframe, int twenty_four_seven, double *out);

/* ---- by name ------------------------------------------------------------- */

/* The metric names usable below, NULL-terminated, static:
 * "total_return", "cagr", "sharpe", "sortino", "calmar", "volatility",
 * "max_dd_pct", "max_dd_money", "max_dd_bars", "exposure",
 * "avg_gross_exposure", "turnover", "turnover_annual", "final_equity",
 * "net_profit", "trades_closed", "trades_open", "won", "lost", "win_rate",
 * "profit_factor", "avg_win", "avg_loss", "expectancy", "gross_profit",
 * "gross_loss", "largest_win", "largest_loss", "avg_trade_bars",
 * "mean_return", "stdev_return", "bars", "years". */
const char *const *qb_bt_metric_names(void);

/* The metric `name` as a double (money as units, e.g. 1234.5).
 * QB_ERR_NOT_FOUND (with *out untouched) for an unknown name. */
qb_err_t qb_bt_metric_value(const qb_bt_metrics_t *m, const char *name, double *out);

/* 1 when a larger value is better (sharpe, cagr...), 0 when smaller is
 * better (max_dd_pct, max_dd_money, max_dd_bars, volatility, turnover,
 * turnover_annual, lost, stdev_return), -1 for an unknown name. For
 * objective functions: maximise value x (higher ? 1 : -1). */
int qb_bt_metric_higher_is_better(const char *name);

/* The metrics as one JSON object (keys = the names above plus first_ts /
 * last_ts as ISO-8601 text and max_dd_peak_ts / max_dd_trough_ts; money as
 * JSON numbers with up to 8 decimals, exactly the qb_dec_t; INFINITY and
 * NaN as null). Written like snprintf: at most cap-1 characters and a NUL
 * when cap > 0; returns the full length. */
size_t qb_bt_metrics_json(const qb_bt_metrics_t *m, char *buf, size_t cap);

#endif
