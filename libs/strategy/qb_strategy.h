/* qb_strategy.h — trading strategies: create one by name from JSON
 * parameters, feed it bars one at a time, get a signal when the position it
 * wants changes.
 *
 * Why: qb-features (live) and qb-backtest (history) must make the same
 * decisions on the same bars. Both drive this one interface; nothing here
 * knows about Kafka, PostgreSQL or the clock, so a strategy's decisions are
 * a pure function of the bars it has seen (and of a restored state, see
 * below). How to write a new strategy: qb_strategy_kind.h.
 *
 * ---- Model --------------------------------------------------------------
 * One instance trades ONE series: one symbol at one timeframe. A caller
 * with several symbols makes one instance per symbol (instances are
 * independent and cheap: a few indicator ring buffers). The instance does
 * not check the bar's symbol; routing is the caller's job. The signal
 * copies symbol and timeframe from the bar that caused it.
 *
 * An instance holds a POSITION INTENT: +1 long, 0 flat, -1 short (starts
 * flat). On every bar it runs its rules, which say which position it wants
 * now. When that differs from the intent, the intent changes and
 * qb_strategy_on_bar emits ONE signal (direction = the new intent); when it
 * does not, nothing is emitted. So a signal means "enter long", "exit to
 * flat" or "go short" (from long directly, when the rules say so), never
 * "still long". A long-only instance (allow_short false, the default)
 * never wants -1: where a rule below says "short", long-only means "flat".
 *
 * Rules run only once every indicator of the instance has a valid value:
 * for the first qb_strategy_warmup_bars(s) bars nothing can be emitted.
 * A bar whose ts is not after the previous bar's ts is ignored (returns
 * QB_ERR_STATE, nothing changes): a re-delivered bar must not move the
 * indicators twice.
 *
 * Bars are not validated here (qb_bar_validate is for ingest); a bar with
 * NaN-producing or absurd prices just gives absurd indicator values.
 *
 * Prices: the bar's fixed-point prices are converted to double exactly as
 * qb_dec_to_double does, and indicators (libs/ta, TA-Lib compatible) run on
 * doubles. Comparisons are strict unless a rule says otherwise.
 *
 * ---- Parameters ---------------------------------------------------------
 * A JSON object; NULL or "" means {} (every default). Unknown keys,
 * duplicate keys, wrong types and out-of-range values are errors naming
 * the field:
 *     "sma_cross.fast: must be an integer >= 1, got 0"
 *     "sma_cross: slow (5) must be > fast (10)"
 *     "sma_cross: unknown parameter \"fsat\" (known: fast, slow, allow_short,
 *      stop_atr, atr_period, target_weight)"
 * Integers must be JSON numbers with no fractional part, booleans JSON
 * true/false. Periods are 1..100000 or 2..100000 (as libs/ta accepts them).
 *
 * Common to every kind:
 *   allow_short   bool, default false. false: long-only (exits go flat).
 *   stop_atr      number >= 0, default 0 = no stop. > 0: LONG and SHORT
 *                 signals carry stop_distance = stop_atr x ATR(atr_period)
 *                 of the signal bar (rounded half-even to 1e-8); FLAT
 *                 signals carry 0. ATR's lookback counts in the warm-up.
 *   atr_period    integer 1..100000, default 14 (used only with stop_atr).
 *   target_weight number 0..1, default 0 = no sizing hint. > 0: LONG and
 *                 SHORT signals carry has_target_weight = 1 and this weight
 *                 (fraction of equity); FLAT signals never do.
 *
 * ---- Built-in kinds (registry names) -------------------------------------
 * "Crossover" (sma_cross, ema_cross, macd_momentum): with d = a - b on each
 * bar, a crosses ABOVE b on a bar where d > 0 and d < 0 at the last earlier
 * bar where d != 0; crosses BELOW is the mirror image. Bars with d == 0 do
 * not reset that memory (10 < 11, then 11 == 11, then 12 > 11 is a cross
 * above, on the third bar). The memory starts on the first bar on which
 * every indicator of the instance is valid; that bar is never a cross.
 *
 * Confidence: the single-rule kinds always say 1 (one rule has no degrees
 * of agreement; risk sizes by its own rules or target_weight);
 * basic_signals says how many of its three votes agree.
 *
 * sma_cross {fast: 10, slow: 30}        fast >= 1, slow >= 2, slow > fast
 *   a = SMA(fast) of close (fast = 1: the close itself), b = SMA(slow).
 *   a crosses above b -> LONG. a crosses below b -> SHORT (allow_short) or
 *   FLAT (long-only). Confidence 1. Warm-up: slow bars.
 * ema_cross {fast: 12, slow: 26}        as sma_cross with TA-Lib EMAs
 *   (SMA-seeded; fast = 1: the close). Warm-up: slow bars.
 * macd_momentum {fast: 12, slow: 26, signal: 9}   fast, slow >= 2, signal
 *   >= 1, slow > fast. a = MACD line, b = its signal line (TA-Lib MACD).
 *   Crosses above -> LONG; crosses below -> SHORT or FLAT. Confidence 1.
 *   Warm-up: slow + signal - 1 bars.
 * rsi_reversion {period: 14, oversold: 30, overbought: 70}   period >= 2,
 *   0 <= oversold < overbought <= 100. Levels, not crossings:
 *     RSI < oversold   -> LONG (from flat or short)
 *     RSI > overbought -> SHORT (allow_short) / FLAT (long-only; so a long
 *                         position exits there)
 *   otherwise keep. Confidence 1. Warm-up: period bars. Note TA-Lib's RSI
 *   is 0 when the window holds no change at all (flat prices): oversold.
 * bollinger_reversion {period: 20, nbdev: 2}   period >= 2, nbdev in
 *   [1e-6, 100].
 *   Bands = TA-Lib BBANDS(period, nbdev, nbdev, SMA) of close. In order:
 *     close < lower                 -> LONG
 *     close > upper, allow_short    -> SHORT
 *     long and close >= middle      -> FLAT
 *     short and close <= middle     -> FLAT
 *   otherwise keep. Confidence 1. Warm-up: period - 1 bars.
 * bollinger_breakout {period: 20, nbdev: 2}   as above. In order:
 *     close > upper                 -> LONG
 *     close < lower, allow_short    -> SHORT
 *     long and close < middle       -> FLAT
 *     short and close > middle      -> FLAT
 *   otherwise keep. Confidence 1. Warm-up: period - 1 bars.
 * donchian_breakout {entry: 20, exit: 10}   entry, exit >= 2. Channels of
 *   the PREVIOUS bars (the current bar is excluded): HH(n) / LL(n) =
 *   highest high / lowest low of the n bars before this one. In order:
 *     close > HH(entry)             -> LONG
 *     close < LL(entry), allow_short -> SHORT
 *     long and close < LL(exit)     -> FLAT
 *     short and close > HH(exit)    -> FLAT
 *   otherwise keep. Confidence 1. Warm-up: max(entry, exit) bars.
 * basic_signals {rsi: 14, oversold: 30, overbought: 70, fast: 10, slow: 30,
 *   macd_fast: 12, macd_slow: 26, macd_signal: 9, min_votes: 2}
 *   Three votes per bar, each +1 (long), -1 (short) or 0:
 *     RSI(rsi):           < oversold +1, > overbought -1, else 0
 *     SMA(fast)/SMA(slow): fast > slow +1, fast < slow -1, equal 0
 *     MACD:               macd > signal +1, macd < signal -1, equal 0
 *   L = number of +1 votes, S = number of -1 votes (S counts only with
 *   allow_short). Wanted: LONG if L >= min_votes and L > S; SHORT if S >=
 *   min_votes and S > L; else FLAT — recomputed each bar, so the first
 *   decision may already be LONG. Confidence = share of the three that
 *   agree: L/3 for LONG, S/3 for SHORT, (3 - max(L, S))/3 for FLAT.
 *   min_votes 1..3; slow > fast (fast >= 1: 1 = the close), macd_slow >
 *   macd_fast. Warm-up: max(slow - 1, macd_slow + macd_signal - 2, rsi).
 *
 * Warm-up (qb_strategy_warmup_bars) is the largest lookback of the
 * instance's indicators, + 1 for the crossover kinds and donchian_breakout
 * (they compare with the previous bar); the numbers above follow from the
 * TA-Lib lookbacks. With stop_atr > 0, ATR's lookback (atr_period) counts
 * too: decisions wait until the stop can be computed.
 *
 * ---- Restart: warm-up, save and restore ----------------------------------
 * Indicator state is never saved: it is rebuilt by replaying bars. The
 * DECISION state is small and is saved as JSON (qb_strategy_save): the
 * position intent, the crossover memory of the crossover kinds, the number
 * of bars seen and the ts of the last one. To resume after bar T:
 *   1. qb_strategy_new with the same kind and parameters;
 *   2. feed the bars up to and including T through qb_strategy_warmup
 *      (at least qb_strategy_warmup_bars(s) of them, more for EMA-, RSI-,
 *      MACD- and ATR-based kinds, whose indicators remember every bar: a
 *      replay from a later start gives values that differ by an amount
 *      that decays with each bar; replay from the original start to get
 *      bit-identical values);
 *   3. qb_strategy_restore with the state saved after T;
 *   4. feed live bars (after T) through qb_strategy_on_bar.
 * qb_strategy_warmup updates indicators and the crossover memory but never
 * changes the position intent and never emits, so steps 2 and 3 may also
 * be swapped. Without a saved state, step 2 alone starts the strategy flat
 * with warm indicators.
 *
 * ---- Ownership ----------------------------------------------------------
 * qb_strategy_new returns an instance freed by qb_strategy_destroy (NULL is
 * a no-op). Strings returned by accessors are owned by the instance (or
 * static) and live until destroy. Signals and state buffers are the
 * caller's. No allocation after qb_strategy_new: on_bar is a few indicator
 * updates and comparisons; the reason text is formatted only when a signal
 * is emitted. Not thread-safe: one thread per instance; different
 * instances are independent. */
#ifndef QB_STRATEGY_H
#define QB_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "core/qb_uuid.h"

#define QB_SIGNAL_REASON_MAX 128 /* bytes of qb_signal_t.reason, NUL included */
#define QB_STRATEGY_STATE_MAX 512 /* a saved state of a built-in always fits */

/* Signal direction; the numbers are proto qb.v1.SignalDirection's. */
typedef enum qb_signal_dir_e {
    QB_SIGNAL_LONG = 1,  /* hold a long position */
    QB_SIGNAL_SHORT = 2, /* hold a short position */
    QB_SIGNAL_FLAT = 3   /* hold nothing: close what is open */
} qb_signal_dir_t;

/* "LONG", "SHORT", "FLAT"; "UNKNOWN" for another value. */
const char *qb_signal_dir_name(qb_signal_dir_t d);
/* The direction of a position intent: +1 LONG, -1 SHORT, 0 FLAT. */
qb_signal_dir_t qb_signal_dir_of(int position);

/* One decision (proto qb.v1.Signal without the ids, account and header).
 * Plain value: copy with `=`. */
typedef struct qb_signal_s {
    qb_symbol_t symbol;                   /* the bar's */
    char timeframe[QB_TIMEFRAME_MAX + 1]; /* the bar's */
    qb_time_t bar_ts;                     /* the bar's ts (its open time) */
    qb_signal_dir_t direction;            /* the new position intent */
    double confidence;                    /* 0..1 */
    int has_target_weight;                /* 1: target_weight is set */
    double target_weight;                 /* 0..1 of equity, in direction */
    qb_dec_t stop_distance;               /* price units, >= 0; 0 = none */
    qb_dec_t reference_price;             /* the bar's close */
    char reason[QB_SIGNAL_REASON_MAX];    /* e.g. "sma:10 crossed above sma:30 (...)" */
} qb_signal_t;

/* Opaque strategy instance. */
typedef struct qb_strategy_s qb_strategy_t;
/* A strategy kind (one row of the registry); see qb_strategy_kind.h. */
typedef struct qb_strategy_kind_s qb_strategy_kind_t;

/* ---- registry ----------------------------------------------------------- */

/* Number of kinds, and the i-th (NULL outside 0..count-1). Static. */
int qb_strategy_kind_count(void);
const qb_strategy_kind_t *qb_strategy_kind_at(int i);
/* The kind with this exact name, or NULL. */
const qb_strategy_kind_t *qb_strategy_kind_find(const char *name);
/* Its registry name ("sma_cross") and one-line summary. */
const char *qb_strategy_kind_name(const qb_strategy_kind_t *k);
const char *qb_strategy_kind_summary(const qb_strategy_kind_t *k);

/* ---- lifecycle ---------------------------------------------------------- */

/* Create an instance of `kind` from JSON parameters (see the top of this
 * file; NULL or "" = defaults). On success *out is set; free it with
 * qb_strategy_destroy. Errors (*out untouched, errstr says which field):
 * QB_ERR_NOT_FOUND unknown kind (the message lists the known ones),
 * QB_ERR_PARSE params are not a JSON object, QB_ERR_INVALID a bad
 * parameter, QB_ERR_NOMEM. */
qb_err_t qb_strategy_new(const char *kind, const char *params_json, qb_strategy_t **out,
                         char *errstr, size_t errstr_size);

/* Free an instance. NULL is a no-op. */
void qb_strategy_destroy(qb_strategy_t *s);

/* Back to the state just after qb_strategy_new: flat, no bars seen. */
void qb_strategy_reset(qb_strategy_t *s);

/* ---- bars --------------------------------------------------------------- */

/* Feed the next bar. Returns 1 and fills *sig when the position intent
 * changed on this bar; 0 when nothing is emitted (*sig untouched);
 * QB_ERR_STATE when bar->ts is not after the last bar's ts (the bar is
 * ignored). sig must not be NULL. */
int qb_strategy_on_bar(qb_strategy_t *s, const qb_bar_t *bar, qb_signal_t *sig);

/* qb_strategy_on_bar over n bars of the symbol in a row, for engines that
 * hold bars as columns (the backtest): the same code, bar by bar, without a
 * call per bar. Bar k is *bar (its symbol and timeframe) with ts = ts[k]
 * and open, high, low, close, volume = px[0][k] .. px[4][k] (columns, as
 * the backtest stores them: the close, all most rules read, is one
 * contiguous array). *bar is overwritten (it ends as the last bar fed).
 * The signal of bar k goes to
 * sigs[j] with at[j] = k, j counting up from 0 (room for n each). Returns
 * the number of signals (n < 2^31), or QB_ERR_STATE (< 0, nothing fed)
 * when a ts is not after the previous one. When every indicator of the
 * instance is a plain SMA / EMA of the close (sma_cross, ema_cross), the
 * indicators run over the bars column-wise first, then the rules: bar by
 * bar, or over the whole chunk through the kind's on_columns when it has
 * one (qb_strategy_kind.h). The same values and signals, fewer
 * instructions per bar. */
int qb_strategy_on_bars(qb_strategy_t *s, qb_bar_t *bar, const qb_time_t *ts,
                        const qb_dec_t *const px[5], size_t n, qb_signal_t *sigs,
                        uint32_t *at);

/* Feed a bar from history to warm the instance up: like on_bar, but the
 * position intent never changes and nothing is emitted. Returns 0, or
 * QB_ERR_STATE as on_bar. */
int qb_strategy_warmup(qb_strategy_t *s, const qb_bar_t *bar);

/* on = 0: signals carry an empty reason; everything else is unchanged.
 * For callers that do not keep reasons (backtest sweeps): formatting one
 * costs about as much as a hundred bars without a signal. Default on. */
void qb_strategy_set_reasons(qb_strategy_t *s, int on);

/* Tell the strategy about a fill of an order it caused. Built-ins ignore
 * fills (their decisions depend on bars only); QB_OK. */
qb_err_t qb_strategy_on_fill(qb_strategy_t *s, const qb_fill_t *fill);

/* ---- description and state ---------------------------------------------- */

/* The kind, and the canonical parameters: every parameter with defaults
 * filled in, as one line of JSON in the kind's table order, e.g.
 * {"fast":10,"slow":30,"allow_short":false,"stop_atr":0,"atr_period":14,
 * "target_weight":0}. Passing it back to qb_strategy_new gives an equal
 * instance. */
const qb_strategy_kind_t *qb_strategy_kind(const qb_strategy_t *s);
const char *qb_strategy_params(const qb_strategy_t *s);

/* Bars an instance must see before the first bar on which it can emit:
 * the largest lookback of its indicators, + 1 for rules that compare with
 * the previous bar (crossovers, Donchian). The per-kind values are listed
 * at the top of this file. */
int qb_strategy_warmup_bars(const qb_strategy_t *s);

/* The position intent: +1 long, 0 flat, -1 short. */
int qb_strategy_position(const qb_strategy_t *s);
/* Bars fed (on_bar and warmup, stale ones not counted) since creation or
 * reset, and the ts of the last one (0 before any). */
int64_t qb_strategy_bars(const qb_strategy_t *s);
qb_time_t qb_strategy_last_ts(const qb_strategy_t *s);

/* The indicator values the strategy computes, for publishing (FeatureSet):
 * count, column name of value i (libs/ta's qb_ta_column: "sma:10",
 * "macd:12:26:9.signal"; NULL outside 0..count-1) and its value as of the
 * last bar (NaN while warming up or outside the range). */
int qb_strategy_num_values(const qb_strategy_t *s);
const char *qb_strategy_value_name(const qb_strategy_t *s, int i);
double qb_strategy_value(const qb_strategy_t *s, int i);

/* The decision state as one line of JSON, e.g.
 * {"kind":"sma_cross","bars":250,"last_ts":1704205800000000000,
 *  "position":1,"last_sign":1}
 * Written like snprintf: at most cap-1 characters and a NUL when cap > 0;
 * returns the full length (>= cap means truncated). QB_STRATEGY_STATE_MAX
 * always suffices for the built-ins. */
size_t qb_strategy_save(const qb_strategy_t *s, char *buf, size_t cap);

/* Restore a state written by qb_strategy_save (see "Restart" above).
 * Errors (nothing changed): QB_ERR_PARSE not a JSON object; QB_ERR_INVALID
 * another kind, an unknown key, a missing "position" or a value out of
 * range; QB_ERR_STATE the instance has already seen bars and the last one
 * is not the bar the state was saved after (its "last_ts"). Keys of the
 * kind's own state that are absent keep their initial values. A short
 * position restored into a long-only instance (allow_short changed) is
 * kept; the next bar on which the rules run emits FLAT for it. */
qb_err_t qb_strategy_restore(qb_strategy_t *s, const char *json, char *errstr,
                             size_t errstr_size);

/* ---- signal ids --------------------------------------------------------- */

/* Namespace of signal ids (a fixed random UUID, never to change). */
#define QB_STRATEGY_SIGNAL_NS "a1a8e05e-7c7e-4438-9b7c-fb859be94d87"

/* The deterministic signal id (proto Signal.signal_id): the UUID v5 in
 * QB_STRATEGY_SIGNAL_NS of the text
 *     strategy_id "|" account "|" symbol "|" timeframe "|" bar_ts
 * with bar_ts in decimal ns, e.g. "sma_cross-aapl-1d|paper-1|AAPL|1d|
 * 1704153600000000000" (account may be NULL, meaning ""). The same strategy
 * deciding on the same bar for the same account always gets the same id,
 * so a replayed signal is recognised and never becomes a second order.
 * QB_ERR_INVALID (out = "") when strategy_id is NULL or empty, symbol or
 * timeframe is NULL, or a string contains '|' (ids would be ambiguous). */
qb_err_t qb_strategy_signal_id(const char *strategy_id, const char *account,
                               const char *symbol, const char *timeframe, qb_time_t bar_ts,
                               char out[QB_UUID_STRLEN]);

#endif
