/* qb_ta.h — technical indicators: TA-Lib-compatible batch and streaming.
 *
 * Why: strategies (libs/strategy) update indicators one bar at a time as
 * bars arrive, while research, backtests and `qbctl ta` compute them over
 * whole arrays. If those were two implementations they would drift apart.
 * Here every indicator is ONE streaming state machine (create from
 * parameters, update with one bar, reset); the batch form runs exactly that
 * update over the arrays. So a streamed value is bitwise equal to the batch
 * value of the same bar, and both equal TA-Lib's output (startIdx 0, default
 * unstable period 0, default compatibility) to within 1e-9 relative.
 *
 * Specs. An indicator instance is made from a spec string:
 *     name[:param[:param...]]      e.g. "rsi:14", "macd:12:26:9", "sar"
 * Parameters are positional in TA-Lib's order; trailing ones may be omitted
 * and take TA-Lib's defaults ("rsi" = "rsi:14", "bbands" = "bbands:5:2:2").
 * Names are case-insensitive. Integer parameters must be written as
 * integers. Moving-average types are fixed to SMA where TA-Lib's default is
 * SMA (stoch, stochf, stochrsi); bbands and ppo take an optional trailing
 * TA-Lib MA type: 0 = SMA (the default), 1 = EMA, 2 = WMA, 3 = DEMA,
 * 4 = TEMA, 5 = TRIMA, 6 = KAMA (TA-Lib's 7 MAMA and 8 T3 are refused).
 * Parameter ranges are TA-Lib's (most periods >= 2, atr/roc/mom/correl/
 * stoch periods >= 1, at most 100000), except where TA-Lib accepts a value
 * but returns misaligned or unnormalised output, which is refused here:
 * macd signal 1, trix 1, natr 1 (all need >= 2). plus_di:1 / minus_di:1
 * are accepted and return TA-Lib's period-1 form, DM/TR (not x100).
 * Invalid parameters are an error naming the parameter:
 *     "rsi: period must be >= 2, got 1"
 *     "macd: slow (12) must be > fast (26)"
 *     "foo: unknown indicator"
 * The list of indicators, their syntax and defaults (qb_ta_info): see the
 * table at the end of this comment.
 *
 * Inputs. Every update takes a whole bar (qb_ta_bar_t); an indicator reads
 * the fields it needs (qb_ta_inputs): single-series indicators read close,
 * range-based ones high/low/close, volume-based ones volume, vwap may read
 * time. correl reads the pair (high, low), TA-Lib's convention for CORREL
 * of two series; to correlate any two series x and y, pass x as high and y
 * as low (or use qb_ta_correl_batch).
 *
 * Outputs. An indicator has 1..QB_TA_MAX_OUTPUTS outputs (macd: macd,
 * signal, hist). Output k of bar i is NaN for i < lookback (TA-Lib's
 * TA_xxx_Lookback, i.e. the first valid index) and a number from then on
 * (it can still be NaN/inf if the INPUT holds NaN/inf, or where noted).
 * Column names (qb_ta_column): "rsi:14" for a single-output indicator,
 * "macd:12:26:9.signal" for one output of several; the spec part is the
 * canonical spec (qb_ta_spec) with defaults filled in.
 *
 * Indicators (TA-Lib name in capitals; defaults shown; "hlc" = reads high,
 * low, close; otherwise close only unless noted)
 *   sma:30 ema:30 wma:30 dema:30 tema:30 trima:30   moving averages
 *   kama:30                 Kaufman adaptive MA (fast 2 / slow 30 fixed as TA-Lib)
 *   rsi:14                  RSI, Wilder smoothing seeded as TA-Lib
 *   macd:12:26:9            outputs macd, signal, hist (EMAs; slow > fast; the
 *                           fast EMA is seeded at bar slow-1 with the mean of
 *                           closes slow-fast..slow-1, as TA-Lib does)
 *   bbands:5:2:2[:matype]   outputs upper, middle, lower; population stddev
 *   atr:14 natr:14 trange   hlc
 *   stoch:5:3:3             fastk, slowk, slowd periods (SMA); outputs slowk,
 *                           slowd; hlc
 *   stochf:5:3              fastk, fastd periods (SMA); outputs fastk, fastd
 *   stochrsi:14:5:3         rsi period, fastk, fastd (SMA); outputs fastk, fastd
 *   adx:14 plus_di:14 minus_di:14                   hlc
 *   cci:14 willr:14         hlc
 *   roc:10 mom:10 stddev:5:1 trix:30 cmo:14
 *   ppo:12:26[:matype]      ((fast MA - slow MA) / slow MA) * 100 (slow > fast)
 *   mfi:14 ad adosc:3:10    hlc + volume (adosc: slow > fast); obv reads
 *                           close + volume
 *   aroon:14                outputs down, up; reads high, low
 *   sar:0.02:0.2            acceleration, maximum; reads high, low
 *   ultosc:7:14:28          hlc
 *   correl:30               Pearson correlation of (high, low) over N bars
 * Not in TA-Lib (formulas; population statistics unless noted):
 *   vwap:N:reset            typical price tp = (high+low+close)/3;
 *                           vwap = sum(tp*volume)/sum(volume) over the last N
 *                           bars (N = 0, the default: every bar since the
 *                           start, or since the last reset). reset = 1 (default
 *                           0) restarts the cumulative sum when the UTC date
 *                           of bar.time changes (intraday sessions); only with
 *                           N = 0. Lookback N-1 (0 when N = 0). NaN when the
 *                           window's volume sum is 0.
 *   zscore:20               (close - mean) / sd over the last N closes
 *                           (current included), mean and sd as STDDEV:N:1;
 *                           0 when sd is 0. Lookback N-1.
 *   logret:1                ln(close[t] / close[t-N]). Lookback N.
 *   rvol:20:252             realised volatility: sample standard deviation
 *                           (divisor N-1) of the last N one-bar log returns,
 *                           times sqrt(annualisation) (second parameter; 1 =
 *                           not annualised). N >= 2. Lookback N.
 *   donchian:20             upper = highest high, lower = lowest low of the
 *                           last N bars (current included), middle = (upper +
 *                           lower) / 2. Outputs upper, middle, lower.
 *                           Lookback N-1.
 *   keltner:20:2[:atr]      middle = EMA(close, N) (TA-Lib EMA), upper/lower =
 *                           middle +/- mult * ATR(atr) (TA-Lib ATR; atr period
 *                           defaults to N). Outputs upper, middle, lower.
 *                           Lookback max(N-1, atr).
 *
 * Cost: an update is O(1), except: sliding min/max (stoch, stochf,
 * stochrsi, willr, aroon, donchian) use a monotonic deque, amortised O(1)
 * (one update can pop up to N entries); cci is O(period) per bar, because
 * its mean absolute deviation is recomputed over the window in TA-Lib's
 * order (that is what makes it match TA-Lib bit for bit). No allocation
 * after qb_ta_new: buffers are sized at creation.
 *
 * Ownership: qb_ta_new returns an instance freed by qb_ta_destroy (NULL is a
 * no-op). Strings returned by qb_ta_spec / qb_ta_name / qb_ta_output_name
 * are owned by the instance (or static) and live until destroy. Series
 * arrays and output arrays are the caller's. Not thread-safe: one instance
 * per stream; different instances are independent. */
#ifndef QB_TA_H
#define QB_TA_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

#define QB_TA_MAX_OUTPUTS 3 /* outputs of one indicator (bbands, macd, ...) */
#define QB_TA_MAX_PARAMS 4  /* parameters of one indicator */
#define QB_TA_SPEC_MAX 96   /* characters of a canonical spec, NUL included */
#define QB_TA_COLUMN_MAX 112 /* characters of a column name, NUL included */

/* Input fields an indicator reads (qb_ta_inputs), as a bit set. */
#define QB_TA_IN_OPEN 0x01
#define QB_TA_IN_HIGH 0x02
#define QB_TA_IN_LOW 0x04
#define QB_TA_IN_CLOSE 0x08
#define QB_TA_IN_VOLUME 0x10
#define QB_TA_IN_TIME 0x20 /* only vwap with reset = 1 */

/* One bar, plain doubles. time is qb_time_t (ns since the epoch, UTC); only
 * vwap with reset reads it. Fields an indicator does not read may hold
 * anything. */
typedef struct qb_ta_bar_s {
    int64_t time;
    double open, high, low, close, volume;
} qb_ta_bar_t;

/* Column arrays for the batch form, each of n elements, oldest first. An
 * array the indicator does not read may be NULL. */
typedef struct qb_ta_series_s {
    const int64_t *time;
    const double *open, *high, *low, *close, *volume;
} qb_ta_series_t;

/* Static description of one indicator kind (for --help and listings). */
typedef struct qb_ta_info_s {
    const char *name;    /* "macd" */
    const char *syntax;  /* "macd[:fast=12[:slow=26[:signal=9]]]" */
    const char *outputs; /* "macd,signal,hist"; "" for one output */
    const char *summary; /* one line */
} qb_ta_info_t;

/* Opaque indicator instance: parameters, state and ring buffers. */
typedef struct qb_ta_s qb_ta_t;

/* ---- indicator kinds -------------------------------------------------- */

/* Number of indicator kinds, and the i-th (0 <= i < count; NULL outside).
 * The table is static: pointers are valid forever. */
int qb_ta_kind_count(void);
const qb_ta_info_t *qb_ta_kind_info(int i);

/* ---- lifecycle -------------------------------------------------------- */

/* Parse `spec` (see the top of this file) and create an instance in its
 * initial state. On success *out is set and must be freed with
 * qb_ta_destroy. Errors (*out untouched): QB_ERR_PARSE for bad syntax or a
 * non-numeric parameter, QB_ERR_NOT_FOUND for an unknown name, QB_ERR_RANGE
 * or QB_ERR_INVALID for a parameter out of range or inconsistent
 * parameters (slow <= fast), QB_ERR_NOMEM; errstr names the indicator and
 * the parameter. */
qb_err_t qb_ta_new(const char *spec, qb_ta_t **out, char *errstr, size_t errstr_size);

/* Free an instance. NULL is a no-op. */
void qb_ta_destroy(qb_ta_t *ta);

/* Back to the initial state (as just created): the next update is bar 0. */
void qb_ta_reset(qb_ta_t *ta);

/* ---- description of an instance --------------------------------------- */

/* Lower-case kind name, e.g. "macd". */
const char *qb_ta_name(const qb_ta_t *ta);
/* Canonical spec with every default filled in, e.g. "rsi" -> "rsi:14",
 * "bbands:20" -> "bbands:20:2:2". Optional trailing parameters (the MA type
 * of bbands/ppo, keltner's ATR period) appear only when given and not the
 * default. Doubles print as %.10g ("sar:0.02:0.2"). */
const char *qb_ta_spec(const qb_ta_t *ta);
/* Number of outputs, 1..QB_TA_MAX_OUTPUTS. */
int qb_ta_num_outputs(const qb_ta_t *ta);
/* Name of output i ("signal"); "" for a single-output indicator; NULL when
 * i is out of range. */
const char *qb_ta_output_name(const qb_ta_t *ta, int i);
/* Column name of output i into buf: "rsi:14" or "macd:12:26:9.signal".
 * Returns the full length like snprintf (buf may be NULL when cap is 0);
 * QB_TA_COLUMN_MAX always suffices. Returns 0 (and writes "") when i is out
 * of range. */
size_t qb_ta_column(const qb_ta_t *ta, int i, char *buf, size_t cap);
/* TA-Lib's lookback: the index of the first bar with valid outputs. */
int qb_ta_lookback(const qb_ta_t *ta);
/* The QB_TA_IN_* fields the indicator reads. */
unsigned qb_ta_inputs(const qb_ta_t *ta);

/* ---- streaming -------------------------------------------------------- */

/* Feed the next bar. Writes qb_ta_num_outputs values to out (out may be
 * NULL when only qb_ta_value is used): NaN while fewer than lookback+1 bars
 * have been seen. Returns 1 when the outputs are valid (bar index >=
 * lookback), else 0. O(1) amortised, no allocation. */
int qb_ta_update(qb_ta_t *ta, const qb_ta_bar_t *bar, double *out);

/* ---- inline fast path (sma, ema) ------------------------------------------ */

/* The state of a plain "sma:N" / "ema:N" instance (NULL for any other kind,
 * or NULL ta): the struct qb_ta_update steps, defined in qb_ta_ma.h with
 * its inline update. qb_ta_sma_update(qb_ta_sma_state(ta), bar.close) is
 * qb_ta_update(ta, &bar, out) without the call through the kind table and
 * the bookkeeping: the returned value is bitwise out[0] (NaN before the
 * lookback), but the instance's qb_ta_value / qb_ta_ready / qb_ta_bars do
 * not follow - the caller keeps the outputs. Do not mix the two ways on one
 * instance between resets. The pointer lives as long as the instance;
 * qb_ta_reset resets the state it points to. */
struct qb_ta_sma_s;
struct qb_ta_ema_s;
struct qb_ta_sma_s *qb_ta_sma_state(qb_ta_t *ta);
struct qb_ta_ema_s *qb_ta_ema_state(qb_ta_t *ta);

/* Output i of the last update (NaN before any valid bar or i out of range). */
double qb_ta_value(const qb_ta_t *ta, int i);
/* 1 when the last update produced valid outputs. */
int qb_ta_ready(const qb_ta_t *ta);
/* Bars fed since creation or the last reset. */
int64_t qb_ta_bars(const qb_ta_t *ta);

/* ---- batch ------------------------------------------------------------ */

/* Reset, then run the streaming update over bars 0..n-1 of `in`, writing
 * output k of bar i to out[k][i] (out holds qb_ta_num_outputs arrays of n
 * doubles each; an out[k] may be NULL to skip that output). Afterwards the
 * instance holds the state after bar n-1, so streaming can continue with
 * bar n. QB_ERR_INVALID (nothing computed) when an input the indicator
 * reads is NULL. */
qb_err_t qb_ta_batch(qb_ta_t *ta, const qb_ta_series_t *in, size_t n, double *const *out,
                     char *errstr, size_t errstr_size);

/* One-shot: qb_ta_new(spec) + qb_ta_batch + qb_ta_destroy. */
qb_err_t qb_ta_batch_spec(const char *spec, const qb_ta_series_t *in, size_t n,
                          double *const *out, char *errstr, size_t errstr_size);

/* ---- typed one-shot helpers (same code as the spec forms) -------------- */

/* Single-series moving averages and oscillators over x[0..n-1] into
 * out[0..n-1]; NaN before the lookback. Errors as qb_ta_new. */
qb_err_t qb_ta_sma_batch(const double *x, size_t n, int period, double *out);
qb_err_t qb_ta_ema_batch(const double *x, size_t n, int period, double *out);
qb_err_t qb_ta_wma_batch(const double *x, size_t n, int period, double *out);
qb_err_t qb_ta_rsi_batch(const double *x, size_t n, int period, double *out);
qb_err_t qb_ta_stddev_batch(const double *x, size_t n, int period, double nbdev,
                            double *out);
/* MACD (outputs macd, signal, hist) and Bollinger bands (upper, middle,
 * lower, SMA middle) over x. */
qb_err_t qb_ta_macd_batch(const double *x, size_t n, int fast, int slow, int signal,
                          double *macd, double *sig, double *hist);
qb_err_t qb_ta_bbands_batch(const double *x, size_t n, int period, double nbdevup,
                            double nbdevdn, double *upper, double *middle, double *lower);
/* ATR over high/low/close. */
qb_err_t qb_ta_atr_batch(const double *high, const double *low, const double *close,
                         size_t n, int period, double *out);
/* Pearson correlation of x and y over `period` bars (TA-Lib CORREL). */
qb_err_t qb_ta_correl_batch(const double *x, const double *y, size_t n, int period,
                            double *out);

#endif
