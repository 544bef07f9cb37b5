/* qb_sizing.h — position sizing rules as pure functions: how many units to
 * trade for a signal.
 *
 * Why: the backtest engine sizes orders, the risk service re-sizes and
 * checks them live, and both must agree to the unit; so the rules are here,
 * free of any engine or portfolio state (the caller passes equity, prices
 * and money in).
 *
 * Every rule returns a quantity that is a whole multiple of `lot` (> 0:
 * 1 for shares, 0.0001 for a crypto lot...), rounded DOWN (never more than
 * the rule allows), and 0 when nothing fits (zero or negative equity or
 * money). All arithmetic is exact (__int128) until that one rounding.
 *
 *   fixed_qty         floor_lot(qty)
 *   percent_equity    floor_lot(equity x fraction / price)
 *                     (fraction 0.10 = put 10% of equity in the position)
 *   fixed_fractional  floor_lot(equity x risk_fraction / |entry - stop|)
 *                     (risk 1% of equity, risk_fraction 0.01, between the
 *                     entry and the signal's protective stop)
 *   all_in            the largest q = k x lot with
 *                       ceil(margin x notional(q)) + fee(q, notional(q)) <= money
 *                     where notional(q) = q x price rounded half-even to 1e-8
 *                     (what a fill moves in cash, qb_portfolio.h) and fee is
 *                     the commission model (qb_commission.h). With margin 1
 *                     and money = cash it is "the most that cash covers
 *                     including commission". The engine applies it AT THE
 *                     FILL, with the fill price (qb_sim.h, QB_SIM_ALL_IN).
 *
 * Errors: QB_ERR_INVALID for lot <= 0, price / margin <= 0, a negative
 * fraction or qty, entry == stop, or a bad commission model;
 * QB_ERR_OVERFLOW when the quantity does not fit in qb_dec_t. *out is
 * written only on success. Ownership: none. */
#ifndef QB_SIZING_H
#define QB_SIZING_H

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "portfolio/qb_commission.h"

typedef enum qb_sizing_kind_e {
    QB_SIZING_FIXED_QTY = 1,        /* value = quantity */
    QB_SIZING_PERCENT_EQUITY = 2,   /* value = fraction of equity */
    QB_SIZING_FIXED_FRACTIONAL = 3, /* value = fraction of equity at risk */
    QB_SIZING_ALL_IN = 4            /* value unused */
} qb_sizing_kind_t;

/* "FIXED_QTY", "PERCENT_EQUITY", "FIXED_FRACTIONAL", "ALL_IN"; "UNKNOWN". */
const char *qb_sizing_kind_name(qb_sizing_kind_t k);
/* Inverse of _name, case-insensitive. QB_ERR_PARSE when unknown. */
qb_err_t qb_sizing_kind_parse(const char *s, qb_sizing_kind_t *out);

qb_err_t qb_sizing_fixed_qty(qb_dec_t qty, qb_dec_t lot, qb_dec_t *out);

qb_err_t qb_sizing_percent_equity(qb_dec_t equity, qb_dec_t fraction,
                                  qb_dec_t price, qb_dec_t lot, qb_dec_t *out);

qb_err_t qb_sizing_fixed_fractional(qb_dec_t equity, qb_dec_t risk_fraction,
                                    qb_dec_t entry, qb_dec_t stop, qb_dec_t lot,
                                    qb_dec_t *out);

/* comm may be NULL (no commission). */
qb_err_t qb_sizing_all_in(qb_dec_t money, qb_dec_t price, qb_dec_t margin,
                          const qb_commission_t *comm, qb_dec_t lot,
                          qb_dec_t *out);

/* The cost all_in compares with money, for one q: ceil(margin x
 * notional(q)) + fee. Exposed for tests and for the risk service's
 * explanations. */
qb_err_t qb_sizing_cost(qb_dec_t qty, qb_dec_t price, qb_dec_t margin,
                        const qb_commission_t *comm, qb_dec_t *out);

#endif
