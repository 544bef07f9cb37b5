/* qb_sim.h — the broker simulator: working orders per symbol matched
 * against bars (qb_fill_model.h), priced with slippage and commission
 * (qb_commission.h), checked by the short and margin rules and booked into
 * a portfolio (qb_portfolio.h). The backtest engine drives it bar by bar;
 * the paper broker drives it with live bars.
 *
 * Driving it. For each bar of a symbol, in time order:
 *   1. qb_sim_on_bar(sim, id, &bar): expires DAY orders of an earlier day,
 *      matches the symbol's working orders against the bar (oldest first),
 *      then marks the portfolio at the bar's close;
 *   2. the strategy looks at the bar and calls qb_sim_submit / _cancel;
 *   3. the caller reads qb_sim_events and clears them (qb_sim_events_clear).
 * An order is matched against the NEXT bar given for its symbol: nothing
 * submitted after a bar can fill inside that bar's range (no look-ahead).
 * A symbol without working orders costs one branch and a mark per bar.
 *
 * Fill timing (config.timing):
 *   NEXT_OPEN (default)  a MARKET order fills at the open of the symbol's
 *       next bar; LIMIT / STOP / STOP_LIMIT orders are matched against the
 *       next bar's range by the rules of qb_fill_model.h.
 *   CLOSE  an order submitted after bar t is first matched at bar t's close
 *       (qb_fill_match_price with P = C): a MARKET order fills at C, a
 *       LIMIT when C is at or better than its limit, a STOP triggers when C
 *       is at or through its stop. What does not fill there (or everything,
 *       before the symbol's first bar) works against later bars exactly
 *       like NEXT_OPEN.
 * While matching a bar the symbol is marked at the bar's open first (the
 * price at which the bar's fills happen), then at its close.
 *
 * Slippage and ticks: qb_fill_slip with config.slippage_bps and
 * config.tick; LIMIT and triggered STOP_LIMIT fills are capped at the limit.
 *
 * Volume cap (config.volume_cap = f > 0): one bar fills at most
 * floor_lot(f x bar volume) units of the symbol, shared by its orders in
 * order of age; what does not fit stays working (a triggered STOP as a
 * MARKET order, filling at later opens) and fills on later bars: partial
 * fills, status PARTIALLY_FILLED. A bar with volume 0 fills nothing.
 * In CLOSE timing the submission bar's unused allowance is available.
 *
 * Commission: config.commission per order (qb_commission.h): each fill
 * pays fee(cumulative qty, cumulative notional) - fee already paid, so a
 * per-trade fee and the minimum are paid once per order.
 *
 * Time in force:
 *   GTC  works until filled or canceled.
 *   DAY  works for the trading day of the first bar it is matched against
 *        (for CLOSE timing, the submission bar's day); it EXPIRES when a bar
 *        of a later day arrives for its symbol (reported with that bar's
 *        ts). An order submitted after the day's last bar is thus good for
 *        the next day, as at a broker after the close. The day of a bar is
 *        config.day_fn(bar.ts) (NULL: the UTC date; pass an exchange
 *        calendar's session date for markets whose day crosses 00:00 UTC).
 *   IOC  matched against its first bar (or the close, in CLOSE timing);
 *        the unfilled rest is CANCELED.
 *   FOK  like IOC, but fills only when the whole quantity fits (volume
 *        cap); else CANCELED without any fill.
 *
 * Checks. At submission (nothing is booked): symbol, side, type, time in
 * force, qty > 0, the prices the type needs (> 0) and no others; a SELL
 * larger than the long position without allow_short; and the margin rule
 * (qb_portfolio_check_fill) at an estimated price: the limit (LIMIT,
 * STOP_LIMIT), the stop (STOP) or the last mark / close (MARKET; no check
 * before the first price), slipped, with its commission. Other working
 * orders are not reserved against. A refused order gets no id: the call
 * returns QB_ERR_INVALID with the reason in errstr and a REJECTED event
 * (order_id 0, the request's tag). At each fill the short and margin rules
 * are checked again with the real price and fee (marks as they are then);
 * a fill they refuse ends the order: REJECTED if nothing had filled, else
 * CANCELED, with the reason. A fill that only reduces a position is never
 * refused.
 *
 * ALL_IN (flags QB_SIM_ALL_IN, qty 0): sized at its first fill, with the
 * fill price, as the largest quantity the portfolio allows
 * (qb_portfolio_max_qty with config.commission and config.lot: with a cash
 * account, the largest whole number of lots that cash covers including the
 * commission; a SELL without allow_short sells the whole long position);
 * REJECTED with INSUFFICIENT_BUYING_POWER (or SHORT_NOT_ALLOWED) when that
 * is 0. Not checked at submission.
 *
 * Order ids are unique non-zero integers, deterministic for a given call
 * sequence; the caller's own id goes in `tag`, echoed in every event.
 *
 * Ownership: qb_sim_new borrows the portfolio (it must outlive the sim and
 * be changed only through the sim while orders work, or the checks see
 * stale state); qb_sim_destroy frees the sim (NULL is a no-op), not the
 * portfolio. The event array is the sim's, valid until the next call.
 * Memory: orders and events live in arrays that grow on demand and are
 * reused; the per-bar path never allocates. If an event cannot be stored
 * (out of memory) what it reports still happened (a fill is booked); the
 * call returns QB_ERR_NOMEM. Not thread-safe. */
#ifndef QB_SIM_H
#define QB_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_types.h"
#include "portfolio/qb_commission.h"
#include "portfolio/qb_fill_model.h"
#include "portfolio/qb_portfolio.h"

typedef struct qb_sim_s qb_sim_t;

/* The trading day of a bar starting at ts (any int64 that changes when the
 * day does). */
typedef int64_t (*qb_sim_day_fn)(qb_time_t ts, void *ctx);

typedef struct qb_sim_config_s {
    qb_fill_timing_t timing;     /* default NEXT_OPEN */
    qb_dec_t slippage_bps;       /* [0, 10000); default 0 */
    qb_dec_t tick;               /* >= 0; 0 = no price grid (default) */
    qb_dec_t volume_cap;         /* >= 0 fraction of bar volume; 0 = none */
    qb_dec_t lot;                /* > 0; ALL_IN and cap granularity; default 1 */
    qb_commission_t commission;  /* default NONE */
    qb_sim_day_fn day_fn;        /* NULL: UTC date */
    void *day_ctx;
} qb_sim_config_t;

void qb_sim_config_default(qb_sim_config_t *cfg);

/* QB_ERR_INVALID with a message naming a bad field; QB_ERR_NOMEM. */
qb_err_t qb_sim_new(const qb_sim_config_t *cfg, qb_portfolio_t *pf, qb_sim_t **out,
                    char *errstr, size_t errstr_size);
void qb_sim_destroy(qb_sim_t *sim);
qb_portfolio_t *qb_sim_portfolio(const qb_sim_t *sim);

/* ---- orders ------------------------------------------------------------- */

#define QB_SIM_ALL_IN 0x1u /* qty 0: sized at the first fill (above) */

typedef struct qb_sim_order_s {
    uint32_t sym;         /* qb_portfolio_symbol id */
    qb_side_t side;
    qb_order_type_t type;
    qb_tif_t tif;
    qb_dec_t qty;         /* > 0; 0 with QB_SIM_ALL_IN */
    qb_dec_t limit_price; /* LIMIT, STOP_LIMIT: > 0; else 0 */
    qb_dec_t stop_price;  /* STOP, STOP_LIMIT: > 0; else 0 */
    uint32_t flags;       /* QB_SIM_ALL_IN */
    uint64_t tag;         /* the caller's, echoed in events */
} qb_sim_order_t;

/* Submit an order at time ts (used for events it causes at once). QB_OK
 * and *id when accepted (in CLOSE timing it may have filled, or been
 * refused at the fill, already: see the events). QB_ERR_INVALID when
 * refused at submission: *id = 0, a REJECTED event, and errstr says why,
 * e.g. "order AAPL BUY 100 MARKET: INSUFFICIENT_BUYING_POWER: equity after
 * the fill would not cover the margin requirement". QB_ERR_NOMEM (no slot
 * for the order, or an event lost: see Memory above). */
qb_err_t qb_sim_submit(qb_sim_t *sim, const qb_sim_order_t *req, qb_time_t ts,
                       uint64_t *id, char *errstr, size_t errstr_size);

/* Cancel a working order (a CANCELED event). QB_ERR_NOT_FOUND when the id
 * is unknown or the order is no longer working. */
qb_err_t qb_sim_cancel(qb_sim_t *sim, uint64_t id, qb_time_t ts);
/* Cancel every working order (kill switch); returns how many. */
size_t qb_sim_cancel_all(qb_sim_t *sim, qb_time_t ts);

typedef struct qb_sim_order_info_s {
    uint64_t id, tag;
    uint32_t sym;
    qb_side_t side;
    qb_order_type_t type;
    qb_tif_t tif;
    qb_order_status_t status; /* ACCEPTED or PARTIALLY_FILLED */
    qb_dec_t qty;             /* 0: an ALL_IN order not sized yet */
    qb_dec_t filled_qty;
    qb_dec_t avg_fill_price;  /* notional / filled, half-even; 0 if none */
    qb_dec_t limit_price, stop_price;
    qb_dec_t commission;      /* paid so far */
    int triggered;            /* STOP / STOP_LIMIT */
    qb_time_t created_ts;
} qb_sim_order_info_t;

/* A working order. QB_ERR_NOT_FOUND otherwise. */
qb_err_t qb_sim_order_get(const qb_sim_t *sim, uint64_t id, qb_sim_order_info_t *out);
/* Working orders of one symbol / of all. */
size_t qb_sim_open_orders(const qb_sim_t *sim, uint32_t sym);
size_t qb_sim_open_total(const qb_sim_t *sim);
/* The ts of the last bar given for `sym`; 0 before its first (or unknown). */
qb_time_t qb_sim_last_bar_ts(const qb_sim_t *sim, uint32_t sym);

/* ---- bars --------------------------------------------------------------- */

/* One bar of symbol `sym` (steps above). QB_ERR_INVALID with a message in
 * qb_sim_last_error for an unknown id, a bar not after the symbol's
 * previous one, or (when orders are matched) an invalid bar; nothing
 * changes then. QB_ERR_OVERFLOW when the mark does not fit. */
qb_err_t qb_sim_on_bar(qb_sim_t *sim, uint32_t sym, const qb_pf_bar_t *bar);
const char *qb_sim_last_error(const qb_sim_t *sim);

/* ---- events ------------------------------------------------------------- */

typedef enum qb_sim_event_kind_e {
    QB_SIM_EV_FILL = 1,     /* an execution (status PARTIALLY_FILLED/FILLED) */
    QB_SIM_EV_REJECTED = 2, /* refused, nothing filled */
    QB_SIM_EV_CANCELED = 3, /* canceled: by the caller, IOC/FOK, or a check
                               after partial fills (reason says which) */
    QB_SIM_EV_EXPIRED = 4   /* DAY order past its day */
} qb_sim_event_kind_t;

/* "FILL", "REJECTED", "CANCELED", "EXPIRED"; "UNKNOWN". */
const char *qb_sim_event_kind_name(qb_sim_event_kind_t k);

typedef struct qb_sim_event_s {
    qb_sim_event_kind_t kind;
    qb_order_status_t status; /* the order's status after the event */
    qb_pf_reject_t reason;    /* why refused / canceled by a check; else NONE */
    uint32_t sym;
    qb_side_t side;
    qb_order_type_t type;
    uint64_t order_id;        /* 0: refused at submission */
    uint64_t tag;
    qb_time_t ts;             /* the bar's ts, or the call's ts */
    qb_dec_t qty;             /* FILL: this fill; else what is left unfilled */
    qb_dec_t price;           /* FILL: the fill price (after slippage) */
    qb_dec_t ref_price;       /* FILL: the price before slippage */
    qb_dec_t commission;      /* FILL: fee of this fill */
    qb_dec_t slippage;        /* FILL: qty x |price - ref_price|, half-even */
    qb_dec_t order_qty;       /* the order's qty (ALL_IN: as sized) */
    qb_dec_t filled_qty;      /* the order's cumulative fill after the event */
    qb_dec_t cash;            /* portfolio cash after the event */
    qb_dec_t position;        /* the symbol's position after the event */
} qb_sim_event_t;

/* The events since the last clear, oldest first. */
const qb_sim_event_t *qb_sim_events(const qb_sim_t *sim, size_t *n);
void qb_sim_events_clear(qb_sim_t *sim);

#endif
