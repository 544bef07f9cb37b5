/* qb_risk_check.h — from a signal or an order request to a decision: sizing
 * glue over libs/portfolio's rules, the target-position arithmetic of a
 * signal, the deterministic order id, and the pre-trade checks with their
 * reason codes. Pure: no I/O, no clock (the caller passes `now`), so every
 * rule is unit-tested on crafted portfolios.
 *
 * ---- Sizing (qb_risk_size): |target position| for a LONG/SHORT signal ----
 *   signal target_weight present  percent_equity at that weight (the
 *                                 strategy's own hint wins)
 *   FIXED_FRACTIONAL (default)    equity x SIZING_FRACTION / d, d = the
 *                                 signal's stop distance, else
 *                                 SIZING_ATR_MULTIPLE x ATR; neither ->
 *                                 NO_SIZING_DATA (qb_sizing_fixed_fractional)
 *   PERCENT_EQUITY                equity x SIZING_FRACTION / price
 *   VOL_TARGET                    weight = SIZING_VOL_TARGET / annualised
 *                                 volatility of the symbol (capped at 1),
 *                                 then percent_equity; unknown volatility ->
 *                                 NO_SIZING_DATA
 *   FIXED_QTY                     SIZING_FIXED_QTY
 * Every rule rounds DOWN to the symbol's LOT_SIZE (libs/portfolio).
 *
 * ---- Signal -> order (qb_risk_signal_order) ----
 * The signal says the wanted position: target = +size (LONG), -size
 * (SHORT), 0 (FLAT). The order is target - current, current = position +
 * open orders' signed leaves, rounded toward zero to the lot (a FLAT closes
 * exactly). A SHORT on an account without shorting targets 0. Nothing to
 * trade -> NOTHING_TO_TRADE (a rejection, so the signal is answered).
 *
 * ---- Checks (qb_risk_check), in this order; the first failure decides ----
 *   1 KILL_SWITCH        account halted, or the platform-wide kill switch
 *   2 DAILY_LOSS_PAUSE   account paused and now < paused_until (0: until
 *                        RESUME)
 *   3 INVALID_ORDER      qty <= 0 or not a lot multiple, a LIMIT/STOP
 *                        without its price
 *   4 NO_MARKET_PRICE    no price to value the order with
 *   5 PRICE_SANITY       limit/stop price farther than MAX_PRICE_DEVIATION
 *                        (fraction) from the last bar's close
 *   6 RATE_LIMIT         approved orders in the last minute + 1 >
 *                        MAX_ORDERS_PER_MINUTE
 *   7 MAX_OPEN_ORDERS    open orders + 1 > MAX_OPEN_ORDERS
 *   8 ORDER_SIZE         qty > MAX_ORDER_QTY or notional >
 *                        MAX_ORDER_NOTIONAL (per symbol or account)
 * Only for an order that ADDS exposure (|projected position| grows, or it
 * flips; projected = position + open orders + this order) — an order that
 * only reduces a position is never blocked by an exposure limit:
 *   9 SHORT_NOT_ALLOWED  it would open or grow a short on a cash account
 *  10 MAX_POSITION       |projected| > MAX_POSITION_QTY or its value >
 *                        MAX_POSITION_NOTIONAL
 *  11 MAX_POSITIONS      it opens a symbol and the non-flat symbols would
 *                        exceed MAX_POSITIONS
 *  12 MAX_RISK_PER_TRADE added qty x stop distance > MAX_RISK_PER_TRADE x
 *                        equity; no stop distance known: the whole price
 *                        is the distance (conservative)
 *  13 CAPITAL_DEPLOYED   gross value after / equity > MAX_CAPITAL_DEPLOYED
 *  14 GROSS_EXPOSURE     gross after > MAX_GROSS_EXPOSURE, or gross / equity
 *                        > MAX_LEVERAGE
 *  15 SECTOR_EXPOSURE    sum |value| of the symbol's sector / equity > limit
 *                        (sector unknown: not checked)
 *  16 ASSET_CLASS_EXPOSURE  the same per asset class
 *  17 CORRELATED_EXPOSURE   (|v_s| + sum over other symbols of
 *                        max(0, rho_is x sgn(v_s) x v_i)) / equity > limit,
 *                        v signed projected values, rho the rolling
 *                        correlation (unknown: 1, conservative)
 *  18 INSUFFICIENT_FUNDS ceil(margin x notional of the added qty) + fee >
 *                        excess equity - what open orders reserve; equity
 *                        <= 0 refuses everything that adds exposure
 * A pre-trade limit passes AT its value and fails just above it. Values are
 * exact decimals; only correlations are doubles.
 *
 * Ownership: plain values; the context's pointers are borrowed for the call.
 */
#ifndef QB_RISK_CHECK_H
#define QB_RISK_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "portfolio/qb_commission.h"
#include "portfolio/qb_portfolio.h"
#include "risk/qb_risk_limits.h"

/* Reason codes: the numbers are proto qb.v1.ReasonCode's. */
/*   name                    num  limit kind concerned (0 none)      text */
#define QB_RISK_REASON_MAP(X)                                                                  \
    X(NONE,                   0, 0,                               "approved")                   \
    X(DAILY_LOSS_PAUSE,       2, QB_RISK_LIMIT_MAX_DAILY_LOSS,    "trading paused: daily loss") \
    X(KILL_SWITCH,            3, 0,                               "kill switch on")             \
    X(INSUFFICIENT_FUNDS,     4, 0,                               "not enough buying power")    \
    X(INVALID_ORDER,          5, 0,                               "malformed order")            \
    X(UNKNOWN_SYMBOL,         6, 0,                               "unknown symbol")             \
    X(DUPLICATE,              9, 0,                               "duplicate order id")         \
    X(INTERNAL_ERROR,        15, 0,                               "internal error")             \
    X(MAX_RISK_PER_TRADE,    16, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, "risk per trade")            \
    X(CAPITAL_DEPLOYED,      17, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED, "capital deployed")        \
    X(MAX_POSITIONS,         18, QB_RISK_LIMIT_MAX_POSITIONS,     "concurrent positions")       \
    X(MAX_POSITION,          19, QB_RISK_LIMIT_MAX_POSITION_QTY,  "position size")              \
    X(SECTOR_EXPOSURE,       20, QB_RISK_LIMIT_MAX_SECTOR_EXPOSURE, "sector exposure")          \
    X(ASSET_CLASS_EXPOSURE,  21, QB_RISK_LIMIT_MAX_ASSET_CLASS_EXPOSURE, "asset-class exposure") \
    X(CORRELATED_EXPOSURE,   22, QB_RISK_LIMIT_MAX_CORRELATED_EXPOSURE, "correlated exposure")  \
    X(RATE_LIMIT,            23, QB_RISK_LIMIT_MAX_ORDERS_PER_MINUTE, "order rate")             \
    X(PRICE_SANITY,          24, QB_RISK_LIMIT_MAX_PRICE_DEVIATION, "price far from market")   \
    X(ORDER_SIZE,            25, QB_RISK_LIMIT_MAX_ORDER_QTY,     "order size")                 \
    X(NO_MARKET_PRICE,       26, 0,                               "no market price")            \
    X(NOTHING_TO_TRADE,      27, 0,                               "position already at target") \
    X(SHORT_NOT_ALLOWED,     28, 0,                               "short selling not allowed")  \
    X(GROSS_EXPOSURE,        29, QB_RISK_LIMIT_MAX_GROSS_EXPOSURE, "gross exposure / leverage") \
    X(MAX_OPEN_ORDERS,       30, QB_RISK_LIMIT_MAX_OPEN_ORDERS,   "open orders")                \
    X(NO_SIZING_DATA,        31, 0,                               "cannot size: no stop, ATR or volatility")

typedef enum qb_risk_reason_e {
#define QB__RISK_REASON_ENUM(name, num, lim, text) QB_RISK_REASON_##name = num,
    QB_RISK_REASON_MAP(QB__RISK_REASON_ENUM)
#undef QB__RISK_REASON_ENUM
} qb_risk_reason_t;

/* "MAX_POSITION" ...; "UNKNOWN". And the short text above. */
const char *qb_risk_reason_name(qb_risk_reason_t r);
const char *qb_risk_reason_str(qb_risk_reason_t r);

/* Trading state of an account. */
typedef enum qb_risk_status_e {
    QB_RISK_ACTIVE = 1, /* trading */
    QB_RISK_PAUSED = 2, /* daily loss: no new orders until paused_until or RESUME */
    QB_RISK_HALTED = 3  /* kill switch (manual or max drawdown): until RESUME */
} qb_risk_status_t;
const char *qb_risk_status_name(qb_risk_status_t s); /* "ACTIVE" ...; "UNKNOWN" */
qb_err_t qb_risk_status_parse(const char *s, qb_risk_status_t *out);

/* Everything the checks read about the account. */
typedef struct qb_risk_ctx_s {
    const qb_portfolio_t *pf;        /* positions, marks, cash, equity, margin rules */
    const qb_risk_limits_t *limits;
    qb_risk_status_t status;
    qb_time_t paused_until;          /* PAUSED until then; 0 = until RESUME */
    int global_halt;                 /* platform-wide kill switch */
    qb_time_t now;
    const qb_dec_t *open_qty;        /* per portfolio symbol id: signed leaves of open orders */
    size_t nopen_qty;                /* entries in open_qty (0: none) */
    uint32_t open_orders;            /* open orders of the account */
    qb_dec_t open_reserved;          /* buying power held by open orders (>= 0) */
    uint32_t orders_last_minute;     /* approved in the last 60 s */
    const qb_commission_t *comm;     /* fee model; NULL = none */
    qb_dec_t last_close;             /* of the order's symbol, last bar; 0 unknown */
    /* Symbol metadata by portfolio id; any may be NULL (unknown). */
    const char *(*sector)(void *opaque, uint32_t id);
    const char *(*asset_class)(void *opaque, uint32_t id);
    double (*corr)(void *opaque, uint32_t a, uint32_t b); /* NAN unknown */
    void *opaque;
} qb_risk_ctx_t;

typedef struct qb_risk_order_s {
    uint32_t sym;            /* portfolio symbol id (the caller adds it) */
    qb_side_t side;
    qb_order_type_t type;
    qb_dec_t qty;            /* > 0, a multiple of lot */
    qb_dec_t lot;            /* > 0 */
    qb_dec_t limit_price;    /* LIMIT / STOP_LIMIT */
    qb_dec_t stop_price;     /* STOP / STOP_LIMIT */
    qb_dec_t price;          /* what the order is valued at (0: limit, else last close) */
    qb_dec_t stop_distance;  /* per unit, for risk per trade; 0 unknown */
} qb_risk_order_t;

typedef struct qb_risk_result_s {
    qb_risk_reason_t reason; /* NONE = approved */
    int limit;               /* limit kind concerned; 0 none */
    qb_dec_t observed;       /* in the limit's unit */
    qb_dec_t limit_value;
    qb_dec_t price;          /* the valuation price used */
    char text[320];          /* human text of the decision */
} qb_risk_result_t;

void qb_risk_check(const qb_risk_ctx_t *c, const qb_risk_order_t *o, qb_risk_result_t *r);

/* ---- sizing ---- */
typedef struct qb_risk_size_in_s {
    qb_dec_t equity;         /* account equity */
    qb_dec_t price;          /* reference price, > 0 */
    qb_dec_t stop_distance;  /* the signal's, per unit; 0 none */
    qb_dec_t atr;            /* ATR of the symbol; 0 unknown */
    double ann_vol;          /* annualised volatility; NAN or <= 0 unknown */
    int has_weight;          /* the signal's target_weight */
    double weight;
    qb_dec_t lot;            /* LOT_SIZE in force for the symbol */
} qb_risk_size_in_t;

/* |target| into *qty (>= 0, a lot multiple) and the per-unit stop distance
 * used (0 when the rule has none) into *dist. NONE, NO_SIZING_DATA or
 * INVALID_ORDER (bad price / overflow) with text. */
qb_risk_reason_t qb_risk_size(const qb_risk_limits_t *l, const qb_risk_size_in_t *in,
                              qb_dec_t *qty, qb_dec_t *dist, char *text, size_t text_size);

/* Signal direction as in proto (1 LONG, 2 SHORT, 3 FLAT). */
#define QB_RISK_DIR_LONG 1
#define QB_RISK_DIR_SHORT 2
#define QB_RISK_DIR_FLAT 3

/* The order that moves `current` (position + open orders, signed) to the
 * signal's target (see above). NONE with side and qty, NOTHING_TO_TRADE,
 * SHORT_NOT_ALLOWED (SHORT on a flat account without shorting) or
 * INVALID_ORDER (bad direction). */
qb_risk_reason_t qb_risk_signal_order(int direction, qb_dec_t current, qb_dec_t size,
                                      qb_dec_t lot, int allow_short, qb_side_t *side,
                                      qb_dec_t *qty);

/* Namespace of order ids (fixed, never to change). */
#define QB_RISK_ORDER_NS "5b0a7c1e-3f2d-4e8a-9c61-2d7e4b8f0a93"
/* order_id = UUID v5(QB_RISK_ORDER_NS, cause_id "|" leg): the same signal
 * or intent always gives the same order id. leg 1 = a single order. */
void qb_risk_order_id(const char *cause_id, int leg, char out[QB_UUID_STRLEN]);

#endif
