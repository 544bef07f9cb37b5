/* qb_fill_model.h — when and at what price a working order fills against a
 * bar, and what slippage does to that price. Pure functions: the broker
 * simulator (qb_sim.h) and the paper broker call the same rules.
 *
 * Prices: O, H, L, C are the bar's open, high, low and close. The
 * "reference price" is the price the rules below give BEFORE slippage.
 *
 * Matching one order against one bar (qb_fill_match), BUY side; SELL is the
 * mirror image (swap H and L, >= and <=, max and min):
 *   MARKET      fills at O.
 *   LIMIT  Lp   fills when L <= Lp, at min(O, Lp): a bar that opens at or
 *               below the limit (a gap through it) fills at the better open
 *               price; otherwise the price must have traded down to Lp, and
 *               it fills at Lp. A touch (L == Lp) fills. This is
 *               backtrader's rule (LEAN's differs only on the touch).
 *   STOP   Sp   triggers when H >= Sp and then fills at max(O, Sp): a bar
 *               that opens at or above the stop (a gap through it) fills at
 *               the worse open price; otherwise at Sp. Once triggered it is a
 *               MARKET order (a remainder left by the volume cap fills at the
 *               open of later bars).
 *   STOP_LIMIT  Sp, Lp: triggers like STOP. Triggered at the open (O >= Sp),
 *               it is a LIMIT Lp for the whole bar. Triggered inside the bar
 *               (O < Sp <= H), the path after the trigger is unknown, so it
 *               fills on that bar only if Lp >= Sp, at Sp (the price when it
 *               triggered); with Lp < Sp it waits, as a LIMIT, for later
 *               bars. Once triggered it stays a LIMIT order.
 * A reference price is always inside [L, H] or equal to the order's limit
 * or stop price on the range's edge, so it is a price that traded.
 *
 * qb_fill_match_price matches against a single traded price P (a bar with
 * O = H = L = C = P): used for the "fill at this bar's close" timing.
 *
 * Slippage (qb_fill_slip): always against the trader, in basis points of
 * the reference price (bps 5 = 0.05%):
 *   BUY   ref x (1 + bps/10000), rounded UP (ceil) to 1e-8, then up to the
 *         next multiple of tick when tick > 0;
 *   SELL  ref x (1 - bps/10000), rounded DOWN (floor) to 1e-8, then down to
 *         a multiple of tick (but never below one tick / 1e-8).
 *   A LIMIT order (and a triggered STOP_LIMIT) never fills beyond its
 *   limit: the slipped price is capped at Lp (BUY min, SELL max).
 * So with tick > 0 every fill price that is not capped by a limit is on the
 * tick grid. Slippage is not capped by the bar's range: it models cost
 * (spread, impact), not a traded price. bps must be in [0, 10000).
 *
 * Ownership: none. Pointers must not be NULL. */
#ifndef QB_FILL_MODEL_H
#define QB_FILL_MODEL_H

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"

/* One OHLCV bar of one symbol, without the symbol text: the per-bar path
 * names symbols by small integer ids (qb_portfolio_symbol). */
typedef struct qb_pf_bar_s {
    qb_time_t ts; /* open time of the bar, ns UTC */
    qb_dec_t open, high, low, close;
    qb_dec_t volume; /* >= 0 */
} qb_pf_bar_t;

/* When a market order submitted while processing bar t fills. */
typedef enum qb_fill_timing_e {
    QB_FILL_NEXT_OPEN = 1, /* at the open of the symbol's next bar (default) */
    QB_FILL_CLOSE = 2      /* at the close of bar t itself ("cheat on close") */
} qb_fill_timing_t;

/* "NEXT_OPEN", "CLOSE"; "UNKNOWN" otherwise / case-insensitive parse. */
const char *qb_fill_timing_name(qb_fill_timing_t t);
qb_err_t qb_fill_timing_parse(const char *s, qb_fill_timing_t *out);

/* QB_OK, or QB_ERR_INVALID with a message: every price > 0, L <= O, C <= H,
 * volume >= 0. */
qb_err_t qb_pf_bar_validate(const qb_pf_bar_t *bar, char *errstr,
                            size_t errstr_size);

/* Apply the rules above to a working order (side, type, limit, stop) and
 * its trigger state (*triggered: 0 until a STOP / STOP_LIMIT triggers; set
 * here, kept by the caller). Returns 1 and *ref when the order fills on
 * this bar, 0 when it does not (the bar is assumed valid). */
int qb_fill_match(qb_side_t side, qb_order_type_t type, qb_dec_t limit,
                  qb_dec_t stop, int *triggered, const qb_pf_bar_t *bar,
                  qb_dec_t *ref);
int qb_fill_match_price(qb_side_t side, qb_order_type_t type, qb_dec_t limit,
                        qb_dec_t stop, int *triggered, qb_dec_t price,
                        qb_dec_t *ref);

/* The fill price for `ref` after slippage (bps >= 0 and < 10000; tick >= 0,
 * 0 = none; limit > 0 caps it as above, 0 = no cap). QB_ERR_INVALID for a
 * bad argument, QB_ERR_OVERFLOW out of range. */
qb_err_t qb_fill_slip(qb_side_t side, qb_dec_t ref, qb_dec_t bps, qb_dec_t tick,
                      qb_dec_t limit, qb_dec_t *out);

#endif
