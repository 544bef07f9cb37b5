/* qb_types.h — the trading domain's plain value types: symbols, sides,
 * order types, time in force, order status and its state machine, bars,
 * orders, fills and positions.
 *
 * Why: every service speaks about the same few things, and the rules about
 * them (which symbols are legal, which order status may follow which, what a
 * fill does to a position) must be written once. These are plain value
 * structs: fixed-size arrays instead of pointers, so a struct can be copied
 * with `=`, put in an array or a message, and nothing is ever freed. All
 * money, prices and quantities are qb_dec_t (exact, 1e-8), all times
 * qb_time_t (ns UTC).
 *
 * Enums start at 1: 0 is never a valid value, so a zeroed struct is
 * detectably unset (its name is "UNKNOWN"). Every enum has _name() (the
 * upper-case name, "UNKNOWN" for a bad value) and _parse() (the name,
 * case-insensitive; QB_ERR_PARSE otherwise).
 *
 * Ownership: none. Functions read and write caller-owned structs; errstr
 * may be NULL; other pointers must not be NULL. */
#ifndef QB_TYPES_H
#define QB_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"

/* ---- symbol ------------------------------------------------------------- */

#define QB_SYMBOL_MAX 31 /* characters, NUL not included */

/* An instrument symbol, e.g. "AAPL", "BTC-USD", "BRK.B", "ES=F", "^GSPC":
 * 1..31 characters of A-Z 0-9 . - / _ ^ =, NUL-terminated. */
typedef struct qb_symbol_s {
    char s[QB_SYMBOL_MAX + 1];
} qb_symbol_t;

/* Validate and store a NUL-terminated symbol, upper-casing letters ("aapl"
 * becomes "AAPL"). QB_ERR_INVALID with a message when empty, too long or
 * containing another character; *sym is untouched then. */
qb_err_t qb_symbol_set(qb_symbol_t *sym, const char *s, char *errstr,
                       size_t errstr_size);
/* The same for `len` bytes that need not be NUL-terminated. */
qb_err_t qb_symbol_set_len(qb_symbol_t *sym, const char *s, size_t len,
                           char *errstr, size_t errstr_size);
/* 1 when equal, else 0. */
int qb_symbol_eq(const qb_symbol_t *a, const qb_symbol_t *b);

/* ---- enums -------------------------------------------------------------- */

typedef enum qb_side_e {
    QB_SIDE_BUY = 1, /* buy: increases the position */
    QB_SIDE_SELL = 2 /* sell: decreases it (or opens/increases a short) */
} qb_side_t;

typedef enum qb_order_type_e {
    QB_ORDER_TYPE_MARKET = 1,    /* at the best available price */
    QB_ORDER_TYPE_LIMIT = 2,     /* at limit_price or better */
    QB_ORDER_TYPE_STOP = 3,      /* becomes MARKET when stop_price trades */
    QB_ORDER_TYPE_STOP_LIMIT = 4 /* becomes LIMIT when stop_price trades */
} qb_order_type_t;

typedef enum qb_tif_e {
    QB_TIF_DAY = 1, /* expires at the end of the trading day */
    QB_TIF_GTC = 2, /* good till canceled */
    QB_TIF_IOC = 3, /* immediate or cancel: fill what you can now */
    QB_TIF_FOK = 4  /* fill or kill: all now or nothing */
} qb_tif_t;

/* Order life cycle; see qb_order_transition_ok for the legal moves. */
typedef enum qb_order_status_e {
    QB_ORDER_STATUS_NEW = 1,              /* created, not yet sent */
    QB_ORDER_STATUS_SUBMITTED = 2,        /* sent to the broker, no answer yet */
    QB_ORDER_STATUS_ACCEPTED = 3,         /* acknowledged, working */
    QB_ORDER_STATUS_PARTIALLY_FILLED = 4, /* some quantity filled, rest working */
    QB_ORDER_STATUS_FILLED = 5,           /* terminal: completely filled */
    QB_ORDER_STATUS_CANCELED = 6,         /* terminal: canceled (maybe after partial fills) */
    QB_ORDER_STATUS_REJECTED = 7,         /* terminal: refused by risk or the broker */
    QB_ORDER_STATUS_EXPIRED = 8           /* terminal: time in force ran out */
} qb_order_status_t;

const char *qb_side_name(qb_side_t v);
qb_err_t qb_side_parse(const char *s, qb_side_t *out);
const char *qb_order_type_name(qb_order_type_t v);
qb_err_t qb_order_type_parse(const char *s, qb_order_type_t *out);
const char *qb_tif_name(qb_tif_t v);
qb_err_t qb_tif_parse(const char *s, qb_tif_t *out);
const char *qb_order_status_name(qb_order_status_t v);
qb_err_t qb_order_status_parse(const char *s, qb_order_status_t *out);

/* +1 for BUY, -1 for SELL, 0 for an invalid value. */
int qb_side_sign(qb_side_t side);

/* 1 for FILLED, CANCELED, REJECTED and EXPIRED, else 0. */
int qb_order_status_is_terminal(qb_order_status_t s);

/* 1 if an order may move from `from` to `to`:
 *   NEW              -> SUBMITTED | REJECTED | CANCELED
 *   SUBMITTED        -> ACCEPTED | REJECTED | CANCELED | FILLED |
 *                       PARTIALLY_FILLED | EXPIRED
 *   ACCEPTED         -> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED |
 *                       REJECTED
 *   PARTIALLY_FILLED -> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
 *   terminal states  -> nothing
 * Staying in place is illegal except PARTIALLY_FILLED -> PARTIALLY_FILLED
 * (another partial fill). Invalid values give 0. */
int qb_order_transition_ok(qb_order_status_t from, qb_order_status_t to);

/* ---- timeframes --------------------------------------------------------- */

/* "1m" "5m" "15m" "30m" "1h" "4h" "1d" "1w" (exact, case-sensitive: "1M"
 * would be a month) -> bar length in ns. QB_ERR_PARSE otherwise. */
qb_err_t qb_timeframe_parse(const char *s, int64_t *ns);

/* ---- bar ---------------------------------------------------------------- */

#define QB_TIMEFRAME_MAX 7 /* characters, NUL not included */

/* One OHLCV bar (proto qb.v1.Bar). */
typedef struct qb_bar_s {
    qb_symbol_t symbol;
    char timeframe[QB_TIMEFRAME_MAX + 1]; /* "1m", "1d", ... */
    qb_time_t ts;                         /* open time of the bar */
    qb_dec_t open, high, low, close;      /* prices, > 0 */
    qb_dec_t volume;                      /* >= 0 */
} qb_bar_t;

/* QB_OK, or QB_ERR_INVALID with a message naming the first problem and the
 * bar, e.g. "bar AAPL 1m 2024-01-02T14:30:00Z: high 10.5 < low 11". Checks:
 * symbol set, timeframe known, every price > 0, high >= low, open and close
 * within [low, high], volume >= 0. */
qb_err_t qb_bar_validate(const qb_bar_t *bar, char *errstr, size_t errstr_size);

/* ---- order, fill, position ---------------------------------------------- */

#define QB_ACCOUNT_MAX 63 /* characters, NUL not included */
#define QB_FILL_ID_MAX 63 /* broker execution ids are not always UUIDs */

typedef struct qb_order_s {
    char id[QB_UUID_STRLEN];              /* UUID text */
    char account[QB_ACCOUNT_MAX + 1];
    qb_symbol_t symbol;
    qb_side_t side;
    qb_order_type_t type;
    qb_tif_t tif;
    qb_dec_t qty;            /* ordered quantity, > 0 */
    qb_dec_t limit_price;    /* LIMIT and STOP_LIMIT; else 0 */
    qb_dec_t stop_price;     /* STOP and STOP_LIMIT; else 0 */
    qb_dec_t filled_qty;     /* 0 .. qty */
    qb_dec_t avg_fill_price; /* volume-weighted; 0 while nothing filled */
    qb_order_status_t status;
    qb_time_t created_ts;
    qb_time_t updated_ts;
} qb_order_t;

typedef struct qb_fill_s {
    char order_id[QB_UUID_STRLEN];
    char fill_id[QB_FILL_ID_MAX + 1];
    qb_symbol_t symbol;
    qb_side_t side;
    qb_dec_t qty;        /* > 0 */
    qb_dec_t price;      /* > 0 */
    qb_dec_t commission; /* fees paid; negative for a rebate */
    qb_time_t ts;        /* execution time */
} qb_fill_t;

typedef struct qb_position_s {
    char account[QB_ACCOUNT_MAX + 1];
    qb_symbol_t symbol;   /* empty until the first fill sets it */
    qb_dec_t qty;         /* signed: > 0 long, < 0 short, 0 flat */
    qb_dec_t avg_cost;    /* average entry price of the open qty; 0 when flat */
    qb_dec_t realized_pnl; /* closed P&L net of all commissions */
} qb_position_t;

/* Apply one fill to a position with exact decimal math:
 *  - opening or adding: avg_cost becomes the quantity-weighted average of
 *    the old cost and the fill price, computed exactly and rounded once
 *    (half-even) to 1e-8;
 *  - reducing or closing: realized_pnl += (price - avg_cost) × closed qty
 *    for a long, (avg_cost - price) × closed qty for a short, rounded
 *    half-even to 1e-8; avg_cost is unchanged (0 once flat);
 *  - flipping (a fill larger than the position): the old position closes
 *    as above and the rest opens the other way with avg_cost = price;
 *  - every fill's commission is subtracted from realized_pnl.
 * QB_ERR_INVALID with a message for a bad fill (side, qty <= 0, price <= 0,
 * a symbol different from the position's); QB_ERR_OVERFLOW if a number
 * leaves the qb_dec_t range. On error *pos is unchanged. */
qb_err_t qb_position_apply_fill(qb_position_t *pos, const qb_fill_t *fill,
                                char *errstr, size_t errstr_size);

#endif
