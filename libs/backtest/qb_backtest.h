/* qb_backtest.h — the backtest engine: bars of many symbols in memory, one
 * portfolio, strategies of libs/strategy (or a given list of signals),
 * sizing rules, the broker simulator of libs/portfolio, equity per time
 * step, round-trip trades, metrics (qb_bt_metrics.h), a benchmark, and JSON
 * and HTML reports.
 *
 * Why: qb-backtest, walk-forward, grid search and Monte Carlo all run this
 * one engine, and it runs the code the live path runs (libs/strategy for
 * decisions, qb_sizing for sizes, qb_sim / qb_portfolio for fills and
 * books), so a backtest and a paper run over the same bars decide and fill
 * alike. Nothing here knows about Kafka, PostgreSQL or the clock.
 *
 * ---- Objects ---------------------------------------------------------------
 *   qb_bt_data_t    the bars: symbols (small ids 0, 1, ... in the order they
 *                   are added), one timeframe, bars appended per symbol.
 *                   Fill it, finalize it (time order, compact layout: see
 *                   "Speed"), then it is read-only: many runs (threads) may
 *                   share one.
 *   qb_bt_config_t  a plain value (copy with =): strategies, account,
 *                   execution, sizing, window, metrics options.
 *   qb_bt_run()     one backtest -> qb_bt_result_t (opaque): metrics,
 *                   equity curve, trades, fills, signals, counters.
 *
 * ---- Time order (multi-symbol) -------------------------------------------
 * A TIME STEP is one distinct bar timestamp over all symbols (a symbol
 * without a bar at that ts just does not take part). Steps run in ts order;
 * inside a step:
 *   1. every bar of the step, in symbol-id order, goes to the simulator
 *      (qb_sim_on_bar): working orders of the symbol are matched against it
 *      (NEXT_OPEN fills at its open, limits/stops on its range), then the
 *      symbol is marked at its close;
 *   2. every bar of the step, in symbol-id order, goes to the symbol's
 *      strategy (or the given signals of that symbol and ts are taken); each
 *      signal becomes orders at once (below); in CLOSE timing they fill at
 *      this bar's close right there, so a later symbol of the same step
 *      already sees the cash they moved;
 *   3. equity is marked: one point of the equity curve per step, after
 *      everything of the step (all closes marked, CLOSE fills booked).
 * So no decision sees a later bar, and all bars of a timestamp are in before
 * equity is marked.
 *
 * ---- Fill timing -----------------------------------------------------------
 * A signal on bar t of a symbol fills (MARKET orders):
 *   NEXT_OPEN  at the open of the symbol's next bar (t+1), slipped;
 *   CLOSE      at bar t's close, slipped.
 * LIMIT / STOP / STOP_LIMIT orders follow qb_fill_model.h / qb_sim.h.
 * Slippage (bps against the trader), tick, volume cap (partial fills) and
 * commission per order are the simulator's (qb_sim.h, qb_commission.h).
 *
 * ---- Signals to orders (the "execution path") -----------------------------
 * The strategy's signal (qb_strategy.h) says which position is wanted: LONG,
 * SHORT or FLAT. With long_only, SHORT means FLAT (and the account cannot
 * sell short). Built-in strategies emit SHORT only with "allow_short": true
 * in their params. For a signal on symbol s:
 *   a. every working order of s is canceled (unfilled entries, remainders of
 *      partial fills, protective stops);
 *   b. if the wanted direction differs from the sign of the position (0
 *      counts as FLAT), an EXIT order closes the whole position: MARKET,
 *      GTC, qty = |position|;
 *   c. if the wanted direction is LONG or SHORT and the position is not
 *      already that way, an ENTRY order opens it (after the exit, in the
 *      same bar: the simulator matches a symbol's orders oldest first):
 *      type entry_type (MARKET, or LIMIT at ref x (1 -/+ limit_offset_bps /
 *      10000) for BUY/SELL, rounded away from the market (BUY down, SELL
 *      up) to 1e-8 and to the tick; ref = the signal's reference price,
 *      the bar's close, or that close when the signal carries none), time in
 *      force entry_tif, quantity by the sizing rule:
 *        ALL_IN            QB_SIM_ALL_IN: sized AT THE FILL with the fill
 *                          price: the largest whole number of lots that
 *                          cash (buying power with margin) covers including
 *                          the commission (qb_sizing.h, qb_sim.h);
 *        FIXED_QTY         sizing_value units;
 *        PERCENT_EQUITY    equity x f / ref, f = the signal's target_weight
 *                          when it has one and use_target_weight is on,
 *                          else sizing_value;
 *        FIXED_FRACTIONAL  equity x sizing_value / stop_distance (the
 *                          signal's; a signal without a stop is skipped,
 *                          counted in signals_skipped);
 *      with equity = the portfolio's equity at the decision (step 2
 *      above) and the result rounded down to lots (qb_sizing.h). A size of 0
 *      skips the entry (signals_skipped). A LONG while long (or SHORT while
 *      short) changes nothing: no pyramiding, no re-sizing;
 *   d. protective stops (stop_exits on): when an entry fills and its signal
 *      carried stop_distance d > 0, a GTC STOP exit order for the whole
 *      position is placed at avg entry price -/+ d (long/short; rounded
 *      away from the market to the tick), replaced after each further entry
 *      fill; with stop_limit_bps > 0 it is a STOP_LIMIT whose limit is that
 *      far beyond the stop. Like any order it is matched from the next bar
 *      of the symbol on (NEXT_OPEN: the bar after the entry's fill bar; in
 *      CLOSE timing first at the close of the bar it is placed on), so the
 *      bar of an open fill cannot stop it out. When it fills the position is
 *      flat while the strategy still wants it: nothing is re-entered until
 *      the strategy's next signal.
 * Orders the simulator refuses (buying power, shorting) are counted
 * (orders_rejected) and the run goes on; they are not errors.
 * Order tags (qb_sim_order_t.tag, qb_bt_fill_t.tag): the index of the
 * signal (0-based, in the order signals were taken) x 4 + role
 * (QB_BT_ROLE_*).
 *
 * A list of signals (qb_bt_run_signals: "the live path": what qb-features
 * publishes, or what the strategies emitted in an earlier run,
 * qb_bt_result_signals) goes through exactly the same a-d path instead of
 * running strategies; a signal is taken at the bar of its symbol whose ts
 * equals its bar_ts (step 2). Same bars + same signals = same fills and
 * trades as the run that produced them.
 *
 * ---- Window, warm-up and the end -------------------------------------------
 * Only steps with from <= ts < to trade (0 = unbounded). Bars before `from`
 * warm the strategies up (qb_strategy_warmup: indicators only, no signals,
 * no orders): warmup_bars < 0 feeds every earlier bar of the symbol (the
 * indicators are then bit-identical to a run from the data's start), N >= 0
 * the last N. The curve and metrics start at the first step >= from, from
 * initial cash. At the end nothing is closed: trades still open are
 * reported with open = 1, marked at the symbol's last close (net_pnl =
 * realised so far + unrealised, after the entry commissions, without an
 * exit commission); working orders are left unfilled (counted in
 * orders_working_at_end).
 *
 * ---- Round trips (qb_bt_trade_t) ---------------------------------------------
 * A trade starts when a fill moves a symbol's position from 0 and ends when
 * it is back to 0; a fill that crosses 0 ends one trade and starts another
 * with the rest. qty = total quantity entered (sum of fills adding to the
 * position), entry_price / exit_price = the quantity-weighted average of
 * the adding / reducing fills (half-even to 1e-8), commission = every fee
 * of the trade's fills, net_pnl = the money the trade made, exactly: sum of
 * SELL notionals - sum of BUY notionals - every commission of its fills
 * (notional = qty x price half-even, as the portfolio books it), so the
 * closed trades' net_pnl add up to the cash they moved; a fill crossing 0
 * is split between the two trades in proportion to quantity (half-even,
 * the parts adding up to the fill). It equals the position's realised P&L
 * (qb_position_t) up to qb_portfolio.h's avg-cost rounding.
 * return_pct = net_pnl / (qty x entry_price).
 *
 * ---- Benchmark ----------------------------------------------------------------
 * Equal-weight buy-and-hold of the same symbols with the same commission
 * model: each of the n symbols that has a bar in the window gets initial
 * cash / n (exact, half-even); at the close of its first bar in the window
 * it buys the largest whole number of lots that share covers including the
 * commission (qb_sizing_all_in, margin 1, no slippage), and holds to the end;
 * what is left of a share stays cash. Its equity (cash + qty x close) is
 * marked at every step like the strategy's (qb_bt_point_t.benchmark) and
 * gets its own metrics (qb_bt_result_benchmark; no trades).
 *
 * ---- Bars per year -------------------------------------------------------------
 * bars_per_year > 0 is used as given; 0 takes it from the data's timeframe
 * with qb_bt_bars_per_year(timeframe, twenty_four_seven): 1d = 252 and
 * 1m = 252 x 390 for equities (regular session), 365 and 525600 for 24x7
 * markets (crypto). Bars outside the regular session (extended hours) are
 * counted as steps all the same.
 *
 * ---- Speed ------------------------------------------------------------------------
 * Per bar: the simulator (a branch and a mark when the symbol has no
 * working order), the strategy's on_bar (reason texts off unless
 * cfg.reasons), no allocation. Per step: one equity point and the online
 * metrics (qb_bt_metrics.h). Equity points are kept per step, not per
 * symbol-bar. Finalize stores the bars in blocks of steps (about 2000
 * bars), symbol by symbol inside a block; a run takes a block at a time:
 * first every strategy runs over its symbol's bars of the block (one
 * instance at a time, so its state stays in cache), its signals parked at
 * their bars, then the accounting walks the block in time order (steps
 * 1-3 above) and takes each signal at its bar. This gives exactly the
 * decisions of calling on_bar in time order, because a strategy decides
 * from its own bars only (qb_strategy.h; qb_strategy_on_fill is not
 * called: the built-ins ignore fills). A symbol that is flat and has no
 * working order is handed to the simulator only when a signal comes for it
 * (the simulator would just note the bar and mark a zero position: the
 * same state, a call saved). Memory: about 60 bytes per bar (prices 40, ts
 * 8, indexes 12) once finalized; finalize's peak stays near that (the
 * per-symbol arrays are released as they are copied).
 *
 * ---- Ownership and threads --------------------------------------------------------
 * qb_bt_data_new / qb_bt_data_destroy, qb_bt_run* / qb_bt_result_destroy;
 * destroy(NULL) is a no-op. A finalized data set is never modified: any
 * number of threads may run backtests on it at once, each with its own
 * config and result. A result owns copies of everything it reports (symbol
 * names included), so it outlives the data. Arrays returned by accessors
 * belong to the result and live until its destroy. The config's strings are
 * arrays inside it (a plain value). */
#ifndef QB_BACKTEST_H
#define QB_BACKTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backtest/qb_bt_metrics.h"
#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "portfolio/qb_commission.h"
#include "portfolio/qb_fill_model.h"
#include "portfolio/qb_sizing.h"
#include "strategy/qb_strategy.h"

/* ======================================================================== */
/* Data                                                                      */
/* ======================================================================== */

typedef struct qb_bt_data_s qb_bt_data_t;

/* An empty data set for bars of `timeframe` ("1m" ... "1w", or NULL / "" =
 * unknown: runs then need cfg.bars_per_year > 0). QB_ERR_INVALID for an
 * unknown timeframe, QB_ERR_NOMEM. */
qb_err_t qb_bt_data_new(const char *timeframe, qb_bt_data_t **out, char *errstr,
                        size_t errstr_size);
void qb_bt_data_destroy(qb_bt_data_t *d);

/* The id of symbol `name` (validated and upper-cased like qb_symbol_set),
 * added when new. Ids are 0, 1, 2 ... in order of addition, and that is the
 * order of symbols inside a time step. QB_ERR_INVALID for a bad symbol,
 * QB_ERR_STATE after finalize, QB_ERR_NOMEM. */
qb_err_t qb_bt_data_symbol(qb_bt_data_t *d, const char *name, uint32_t *id,
                           char *errstr, size_t errstr_size);

/* Room for n more bars of symbol id (optional; append grows as needed). */
qb_err_t qb_bt_data_reserve(qb_bt_data_t *d, uint32_t id, size_t n);

/* Append bars of symbol id, oldest first, each after the symbol's last one
 * and valid (qb_pf_bar_validate). QB_ERR_INVALID with a message naming the
 * symbol, the index and the problem (nothing of this call is kept then),
 * QB_ERR_STATE after finalize, QB_ERR_NOMEM. */
qb_err_t qb_bt_data_append(qb_bt_data_t *d, uint32_t id, const qb_pf_bar_t *bars,
                           size_t n, char *errstr, size_t errstr_size);

/* The same for core bars, each routed by its symbol (added when new). Bars
 * of different symbols may be interleaved; per symbol they must ascend.
 * The bars' timeframe must be the data's (when the data has one). */
qb_err_t qb_bt_data_append_bars(qb_bt_data_t *d, const qb_bar_t *bars, size_t n,
                                char *errstr, size_t errstr_size);

/* Build the merged time order (steps). After this the data is read-only
 * and runs may use it. Idempotent. QB_ERR_INVALID when there is no bar at
 * all, QB_ERR_NOMEM. */
qb_err_t qb_bt_data_finalize(qb_bt_data_t *d, char *errstr, size_t errstr_size);

/* Reading (valid any time; step functions after finalize). */
const char *qb_bt_data_timeframe(const qb_bt_data_t *d);        /* "" = unknown */
size_t qb_bt_data_nsymbols(const qb_bt_data_t *d);
const char *qb_bt_data_symbol_name(const qb_bt_data_t *d, uint32_t id); /* "" bad id */
qb_err_t qb_bt_data_symbol_find(const qb_bt_data_t *d, const char *name, uint32_t *id);
size_t qb_bt_data_nbars(const qb_bt_data_t *d, uint32_t id);    /* 0 bad id */
size_t qb_bt_data_total_bars(const qb_bt_data_t *d);
/* Bar i (0-based) of symbol id: QB_ERR_RANGE out of range. */
qb_err_t qb_bt_data_bar(const qb_bt_data_t *d, uint32_t id, size_t i, qb_pf_bar_t *out);
/* The distinct timestamps (steps), ascending; *n their count. NULL before
 * finalize. For splitting windows (walk-forward) by time. */
const qb_time_t *qb_bt_data_steps(const qb_bt_data_t *d, size_t *n);

/* ======================================================================== */
/* Config                                                                    */
/* ======================================================================== */

#define QB_BT_MAX_STRATEGIES 8
#define QB_BT_KIND_MAX 31       /* characters of a strategy kind name */
#define QB_BT_PARAMS_MAX 1023   /* characters of a params JSON */
#define QB_BT_SYMBOLS_MAX 2047  /* characters of a symbol list */

/* A strategy kind with its parameters for a set of symbols: one instance per
 * symbol. `symbols` is a comma-separated list ("AAPL,MSFT"; names are
 * upper-cased), or "" = every symbol of the data that no other entry names.
 * A symbol named by two entries is an error; a symbol no entry covers is
 * not traded (but is in the benchmark). */
typedef struct qb_bt_strategy_s {
    char kind[QB_BT_KIND_MAX + 1];      /* registry name: "sma_cross" */
    char params[QB_BT_PARAMS_MAX + 1];  /* JSON object; "" = defaults */
    char symbols[QB_BT_SYMBOLS_MAX + 1];
} qb_bt_strategy_t;

/* Order roles (low 2 bits of an order's tag). */
typedef enum qb_bt_role_e {
    QB_BT_ROLE_EXIT = 0,  /* closes the position for a signal */
    QB_BT_ROLE_ENTRY = 1, /* opens it, sized */
    QB_BT_ROLE_STOP = 2   /* protective stop */
} qb_bt_role_t;

/* "EXIT", "ENTRY", "STOP"; "UNKNOWN". */
const char *qb_bt_role_name(qb_bt_role_t r);

/* Progress: called every cfg.progress_every steps and at the end with the
 * steps done and the total; return nonzero to stop the run (qb_bt_run then
 * fails with QB_ERR_STATE, "canceled"). */
typedef int (*qb_bt_progress_fn)(uint64_t done, uint64_t total, void *ctx);

typedef struct qb_bt_config_s {
    /* strategies (not used by qb_bt_run_signals) */
    qb_bt_strategy_t strategies[QB_BT_MAX_STRATEGIES];
    int nstrategies;
    int reasons;               /* 1: signals keep reason texts (slower); default 0 */

    /* account (qb_portfolio.h) */
    qb_dec_t cash;             /* initial cash > 0; default 100000 */
    int long_only;             /* 1: SHORT = FLAT and no short selling; default 0 */
    qb_dec_t margin_long;      /* > 0; default 1 (cash account) */
    qb_dec_t margin_short;     /* > 0; default 1 */

    /* execution (qb_sim.h) */
    qb_fill_timing_t fill;     /* default QB_FILL_NEXT_OPEN */
    qb_commission_t commission; /* default none */
    qb_dec_t slippage_bps;     /* [0, 10000); default 0 */
    qb_dec_t tick;             /* >= 0; default 0 (no grid) */
    qb_dec_t volume_cap;       /* >= 0 fraction of bar volume; 0 = none (default) */
    qb_dec_t lot;              /* > 0; default 1 */

    /* orders (see "Signals to orders") */
    qb_order_type_t entry_type; /* MARKET (default) or LIMIT */
    qb_dec_t limit_offset_bps; /* LIMIT entries; >= 0; default 0 */
    qb_tif_t entry_tif;        /* default GTC */
    int stop_exits;            /* 1: protective stops from stop_distance; default 0 */
    qb_dec_t stop_limit_bps;   /* > 0: stops are STOP_LIMIT; default 0 */

    /* sizing (qb_sizing.h) */
    qb_sizing_kind_t sizing;   /* default ALL_IN */
    qb_dec_t sizing_value;     /* FIXED_QTY: units; PERCENT_EQUITY: fraction;
                                  FIXED_FRACTIONAL: fraction at risk */
    int use_target_weight;     /* PERCENT_EQUITY: a signal's weight wins; default 1 */

    /* window */
    qb_time_t from, to;        /* [from, to); 0 = unbounded */
    int64_t warmup_bars;       /* < 0: all bars before from (default); N: last N */

    /* metrics */
    double bars_per_year;      /* > 0 as given; 0 = from the timeframe (default) */
    int twenty_four_seven;     /* for bars_per_year: 1 = 24x7 market; default 0 */
    int benchmark;             /* 1 (default): compute the benchmark */

    /* what the result keeps (the equity curve and trades always) */
    int keep_fills;            /* 1 (default): every fill */
    int keep_signals;          /* 1: every signal taken; default 0 */

    /* progress */
    qb_bt_progress_fn progress; /* NULL: none */
    void *progress_ctx;
    uint64_t progress_every;   /* steps; 0 = 4096 */
} qb_bt_config_t;

/* The defaults above, no strategy. */
void qb_bt_config_default(qb_bt_config_t *cfg);

/* Add a strategy entry (copied). QB_ERR_RANGE when the table is full or a
 * string too long, QB_ERR_INVALID for an empty kind. The kind and params are
 * checked by qb_bt_run (qb_strategy_new's messages). */
qb_err_t qb_bt_config_add_strategy(qb_bt_config_t *cfg, const char *kind,
                                   const char *params_json, const char *symbols,
                                   char *errstr, size_t errstr_size);

/* Set one field from text, as the CLI, the service and grid search take
 * them. Names and values:
 *   cash N | long_only true/false | margin_long N | margin_short N |
 *   fill next_open/close | commission none / per_trade:FEE / per_share:RATE[:MIN] /
 *   percent:PCT[:MIN] (PCT in percent: percent:0.1 = 0.1% = 10 bps) |
 *   commission_step N | slippage_bps N | tick N | volume_cap F | lot N |
 *   entry_type market/limit | limit_offset_bps N | entry_tif day/gtc/ioc/fok |
 *   stop_exits true/false | stop_limit_bps N |
 *   sizing all_in/fixed_qty/percent_equity/fixed_fractional | sizing_value N |
 *   use_target_weight true/false | from ISO / to ISO (or "" = unbounded) |
 *   warmup_bars N (-1 = all) | bars_per_year N | calendar equity/24x7 |
 *   benchmark true/false | reasons true/false | keep_fills true/false |
 *   keep_signals true/false
 * Decimals are exact (qb_dec_parse). QB_ERR_NOT_FOUND for an unknown name,
 * QB_ERR_INVALID for a bad value (message names the field). */
qb_err_t qb_bt_config_set(qb_bt_config_t *cfg, const char *name, const char *value,
                          char *errstr, size_t errstr_size);

/* Check everything that does not need the data (ranges, enums, commission
 * model, that the sizing value fits the rule). qb_bt_run calls it too. */
qb_err_t qb_bt_config_validate(const qb_bt_config_t *cfg, char *errstr,
                               size_t errstr_size);

/* The config as one JSON object (every field, strategies as an array of
 * {kind, params, symbols}; no progress callback). snprintf-like: returns
 * the full length. */
size_t qb_bt_config_json(const qb_bt_config_t *cfg, char *buf, size_t cap);

/* ======================================================================== */
/* Running                                                                   */
/* ======================================================================== */

typedef struct qb_bt_result_s qb_bt_result_t;

/* Run the config's strategies over the finalized data. On success *out is
 * a result to free with qb_bt_result_destroy. Errors (*out untouched):
 * QB_ERR_INVALID bad config (the message names the field; a bad strategy
 * kind or parameter gives qb_strategy_new's message with the symbol),
 * QB_ERR_STATE data not finalized, or canceled by the progress callback,
 * QB_ERR_OVERFLOW an amount leaves the decimal range, QB_ERR_NOMEM. */
qb_err_t qb_bt_run(const qb_bt_data_t *data, const qb_bt_config_t *cfg,
                   qb_bt_result_t **out, char *errstr, size_t errstr_size);

/* The same with a list of signals instead of strategies (see "Signals to
 * orders"): in any order (taken in (bar_ts, symbol id) order, ties in the
 * given order); each must name a symbol of the data and the ts of one of
 * its bars, else QB_ERR_INVALID naming the signal. Signals before `from`
 * or at/after `to` are ignored. cfg.strategies are not used. */
qb_err_t qb_bt_run_signals(const qb_bt_data_t *data, const qb_bt_config_t *cfg,
                           const qb_signal_t *signals, size_t nsignals,
                           qb_bt_result_t **out, char *errstr, size_t errstr_size);

void qb_bt_result_destroy(qb_bt_result_t *r);

/* ======================================================================== */
/* Results                                                                   */
/* ======================================================================== */

/* One point of the equity curve: after time step ts. */
typedef struct qb_bt_point_s {
    qb_time_t ts;
    qb_dec_t equity;      /* cash + long value + short value */
    qb_dec_t cash;
    qb_dec_t long_value;  /* >= 0 */
    qb_dec_t short_value; /* <= 0 */
    qb_dec_t benchmark;   /* benchmark equity (0 without benchmark) */
} qb_bt_point_t;

/* One round trip (see "Round trips"). */
typedef struct qb_bt_trade_s {
    uint32_t sym;          /* data symbol id; name: qb_bt_result_symbol */
    int dir;               /* +1 long, -1 short */
    int open;              /* 1: still open at the end (exit = last close) */
    qb_time_t entry_ts;    /* ts of the first fill */
    qb_time_t exit_ts;     /* ts of the closing fill; open: the last bar */
    qb_dec_t qty;          /* total entered, > 0 */
    qb_dec_t entry_price;  /* avg of adding fills */
    qb_dec_t exit_price;   /* avg of reducing fills; open: last close */
    qb_dec_t commission;   /* all fees of the trade */
    qb_dec_t net_pnl;      /* after both sides' commissions */
    double return_pct;     /* net_pnl / (qty x entry_price) */
    int64_t bars;          /* bars of the symbol from entry to exit */
    uint32_t fills;        /* fills in the trade */
} qb_bt_trade_t;

/* One execution (when cfg.keep_fills). */
typedef struct qb_bt_fill_s {
    qb_time_t ts;          /* the bar's ts */
    uint32_t sym;
    qb_side_t side;
    qb_order_type_t type;
    uint64_t tag;          /* signal index x 4 + role */
    qb_dec_t qty, price;   /* price after slippage */
    qb_dec_t commission, slippage;
    qb_dec_t cash_after, position_after;
} qb_bt_fill_t;

/* Counters of one run. */
typedef struct qb_bt_counts_s {
    uint64_t bars;                /* bars given to the simulator (in the window) */
    uint64_t warmup_bars;         /* bars fed to qb_strategy_warmup */
    uint64_t steps;               /* time steps = equity points */
    uint64_t signals;             /* signals taken */
    uint64_t signals_skipped;     /* no order: size 0, no stop for fixed_fractional */
    uint64_t orders;              /* orders submitted */
    uint64_t orders_rejected;     /* refused at submission or at a fill */
    uint64_t orders_canceled;     /* by a new signal, IOC/FOK rests, checks */
    uint64_t orders_expired;      /* DAY orders */
    uint64_t orders_working_at_end;
    uint64_t fills;
    uint64_t partial_fills;       /* fills that left the order working */
    qb_dec_t commissions;         /* sum of fees */
    qb_dec_t slippage;            /* sum of slippage cost */
} qb_bt_counts_t;

const qb_bt_metrics_t *qb_bt_result_metrics(const qb_bt_result_t *r);
/* The benchmark's metrics; NULL when cfg.benchmark was 0. */
const qb_bt_metrics_t *qb_bt_result_benchmark(const qb_bt_result_t *r);
const qb_bt_counts_t *qb_bt_result_counts(const qb_bt_result_t *r);
/* The equity curve, one point per step in the window. */
const qb_bt_point_t *qb_bt_result_equity(const qb_bt_result_t *r, size_t *n);
/* Round trips, ordered by exit (closed, by exit fill; then the open ones by
 * symbol id). */
const qb_bt_trade_t *qb_bt_result_trades(const qb_bt_result_t *r, size_t *n);
/* Fills in execution order (NULL, *n = 0 unless cfg.keep_fills). */
const qb_bt_fill_t *qb_bt_result_fills(const qb_bt_result_t *r, size_t *n);
/* Signals taken, in the order taken (NULL, *n = 0 unless cfg.keep_signals).
 * Feeding them to qb_bt_run_signals with the same config and data gives the
 * same fills and trades. */
const qb_signal_t *qb_bt_result_signals(const qb_bt_result_t *r, size_t *n);
/* Symbol names of the run (copies of the data's), and their count. */
const char *qb_bt_result_symbol(const qb_bt_result_t *r, uint32_t sym);
size_t qb_bt_result_nsymbols(const qb_bt_result_t *r);
/* The config the run used (a copy; progress fields cleared). */
const qb_bt_config_t *qb_bt_result_config(const qb_bt_result_t *r);
/* Final cash, and the final position of a symbol (0 for a bad id). */
qb_dec_t qb_bt_result_cash(const qb_bt_result_t *r);
qb_dec_t qb_bt_result_position(const qb_bt_result_t *r, uint32_t sym);

/* ======================================================================== */
/* Reports                                                                   */
/* ======================================================================== */

#define QB_BT_JSON_EQUITY 0x1u /* include the equity curve */
#define QB_BT_JSON_TRADES 0x2u /* include the trades */
#define QB_BT_JSON_FILLS 0x4u  /* include the fills */

/* The report as one JSON object:
 *   {"config": {...qb_bt_config_json...}, "symbols": [...],
 *    "metrics": {...qb_bt_metrics_json...}, "benchmark": {...} | null,
 *    "counts": {...}, "final_cash": "...",
 *    "equity": [[ts_iso, equity, benchmark], ...]      (QB_BT_JSON_EQUITY)
 *    "trades": [{symbol, dir, open, entry_ts, exit_ts, qty, entry_price,
 *                exit_price, commission, net_pnl, return_pct, bars}, ...]
 *    "fills": [...]}                                   (QB_BT_JSON_FILLS)
 * Money and prices as JSON numbers with the exact 8-decimal value; times as
 * ISO-8601 UTC. QB_ERR_IO when writing fails. */
qb_err_t qb_bt_report_json(const qb_bt_result_t *r, unsigned flags, FILE *f);

/* A self-contained HTML page (no script, no external resource): title,
 * plain-English summary lines ("Max drawdown 15.2%: at the worst point you
 * would have been down this much from the peak."), the metrics table
 * beside the benchmark's, inline SVG charts of equity vs benchmark and of
 * the drawdown, a monthly returns table (years x months, from the equity at
 * each month's last step), and the trade list (the first 2000 rows; the
 * count says how many more). title NULL = "Backtest". QB_ERR_IO. */
qb_err_t qb_bt_report_html(const qb_bt_result_t *r, const char *title, FILE *f);

#endif
