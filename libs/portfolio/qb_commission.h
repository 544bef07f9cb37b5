/* qb_commission.h — commission models: per trade, per share, percent of
 * value, each with a minimum, computed exactly.
 *
 * Why: the backtest engine, the paper broker and the risk service must
 * charge the same fee for the same execution, so the rule lives here once.
 *
 * A model is a plain value (qb_commission_t). The fee for an execution of
 * `qty` units worth `notional` (both >= 0; the caller computes notional as
 * qty x price rounded half-even to 1e-8, see qb_portfolio.h):
 *   NONE       0
 *   PER_TRADE  rate                      (a fixed fee per order)
 *   PER_SHARE  rate x qty                (rate is money per unit)
 *   PERCENT    rate x notional           (rate is a FRACTION: 0.001 = 0.1%
 *                                          = 10 bps)
 * The exact value is rounded ONCE, half-up (5 goes up: fee schedules round
 * like that), to a multiple of `step` (0.01 = cents; 0 = 1e-8, i.e. the
 * exact value to 8 decimals), then raised to `minimum` when below it.
 * qty == 0 costs nothing (no minimum for no trade).
 *
 * Partial fills: a model prices a whole ORDER. The fee of one fill of an
 * order is fee(cumulative qty and notional after the fill) - fee already
 * charged to the order (qb_sim.h does this), so a per-trade fee and the
 * minimum are charged once per order, and the fees of an order's fills add
 * up to the fee of one fill of the same total.
 *
 * Ownership: none (plain values). Pointers must not be NULL; errstr may be. */
#ifndef QB_COMMISSION_H
#define QB_COMMISSION_H

#include <stddef.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"

typedef enum qb_commission_kind_e {
    QB_COMMISSION_NONE = 1,      /* free */
    QB_COMMISSION_PER_TRADE = 2, /* rate per order */
    QB_COMMISSION_PER_SHARE = 3, /* rate per unit */
    QB_COMMISSION_PERCENT = 4    /* rate x notional, rate a fraction */
} qb_commission_kind_t;

typedef struct qb_commission_s {
    qb_commission_kind_t kind;
    qb_dec_t rate;    /* >= 0; meaning per kind (above) */
    qb_dec_t minimum; /* >= 0; per order; 0 = none */
    qb_dec_t step;    /* >= 0; fee rounding increment; 0 = 1e-8 */
} qb_commission_t;

/* "NONE", "PER_TRADE", "PER_SHARE", "PERCENT"; "UNKNOWN" otherwise. */
const char *qb_commission_kind_name(qb_commission_kind_t k);
/* Inverse of _name, case-insensitive. QB_ERR_PARSE when unknown. */
qb_err_t qb_commission_kind_parse(const char *s, qb_commission_kind_t *out);

/* Ready-made models (rate, minimum, step exactly as given). */
qb_commission_t qb_commission_none(void);
qb_commission_t qb_commission_per_trade(qb_dec_t fee);
qb_commission_t qb_commission_per_share(qb_dec_t per_unit, qb_dec_t minimum);
qb_commission_t qb_commission_percent(qb_dec_t fraction, qb_dec_t minimum);

/* QB_ERR_INVALID with a message naming the field when the kind is unknown
 * or rate, minimum or step is negative. */
qb_err_t qb_commission_validate(const qb_commission_t *m, char *errstr,
                                size_t errstr_size);

/* The fee (>= 0) for an execution of qty units worth notional. QB_ERR_INVALID
 * for an invalid model or a negative qty / notional, QB_ERR_OVERFLOW when
 * the fee does not fit. *fee is written only on success. */
qb_err_t qb_commission_calc(const qb_commission_t *m, qb_dec_t qty,
                            qb_dec_t notional, qb_dec_t *fee);

#endif
