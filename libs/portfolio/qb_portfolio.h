/* qb_portfolio.h — exact accounting of one account: cash, per-symbol
 * positions (long and short) with average cost and realised P&L, marks,
 * commissions, equity and a margin requirement.
 *
 * Why: the backtest engine, the risk service and the paper broker keep the
 * same books, so a backtest and a paper run over the same fills show the
 * same cash to the 1e-8. Positions are core's qb_position_t, updated by
 * qb_position_apply_fill (avg cost, realised P&L net of commissions, flips);
 * this module adds cash, marks, market value, margin and a symbol table.
 *
 * Symbols are small integer ids 0, 1, 2, ... in the order they are added
 * (qb_portfolio_symbol); per-symbol state lives in arrays indexed by id, so
 * the per-bar path (qb_portfolio_mark) is a few loads, one multiply and
 * adds, with no allocation and no lookup.
 *
 * Accounting rules (all amounts qb_dec_t, 1e-8; s = +1 BUY, -1 SELL):
 *   notional  = qty x price, rounded half-even to 1e-8 (exact for whole
 *               quantities and prices of up to 8 decimals)
 *   a fill    cash -= s x notional + commission              (exactly that)
 *             position per qb_position_apply_fill
 *   mark      the last price given for the symbol (qb_portfolio_mark; a
 *             fill in a symbol never marked before marks it at the fill
 *             price; otherwise fills do not move the mark)
 *   market value mv_i = qty_i x mark_i rounded half-even (negative short)
 *   equity    = cash + sum of mv_i        (kept incrementally, O(1) to read)
 *   unrealised_i = qty_i x (mark_i - avg_cost_i), rounded half-even
 *   realised_i   = qb_position_t.realized_pnl (net of commissions)
 * So equity - initial cash - deposits = sum realised + sum unrealised up to
 * the rounding of avg_cost (at most half a 1e-8 per unit per opening fill):
 * cash and equity are exact, the split into realised and unrealised is
 * avg-cost attribution.
 *
 * Margin (an initial-margin rule, checked before fills that add risk):
 *   used margin = ceil(margin_long x sum of long mv)
 *               + ceil(margin_short x |sum of short mv|)
 *   excess      = equity - used margin
 *   buying power = max(0, excess) / margin_long (rounded down)
 * margin_long = 1 is a cash account (a buy needs cash >= notional +
 * commission); 0.5 is Reg T 2:1. margin_short = 0.5 is Reg T's 150% on a
 * short (proceeds + 50%); 1 asks equity equal to the short value. A fill is
 * accepted (qb_portfolio_check_fill) when, with the account as it would be
 * after the fill (marks unchanged), equity >= used margin; a fill that
 * only reduces a position (no flip) is always accepted, even in a margin
 * deficit. With allow_short off, a SELL larger than the long position is
 * refused. There are no margin calls, borrow fees or interest here: the
 * risk service decides what to do with a deficit (qb_portfolio_excess < 0).
 *
 * Ownership: qb_portfolio_new makes a portfolio, qb_portfolio_destroy frees
 * it (NULL is a no-op). Positions returned by qb_portfolio_position are
 * borrowed and valid until the next call that adds a symbol. Not
 * thread-safe: one portfolio per thread. */
#ifndef QB_PORTFOLIO_H
#define QB_PORTFOLIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_types.h"
#include "portfolio/qb_commission.h"

/* Why an order or a fill is refused. 0 is "not refused". */
/*        name                       value description */
#define QB_PF_REJECT_MAP(X)                                                    \
    X(NONE,                      0, "accepted")                                \
    X(INVALID_QTY,               1, "quantity must be > 0")                    \
    X(INVALID_PRICE,             2, "limit/stop price missing, not > 0, or "   \
                                    "given for an order type without one")     \
    X(INVALID_ORDER,             3, "unknown side, order type or time in "     \
                                    "force")                                   \
    X(UNKNOWN_SYMBOL,            4, "unknown symbol id")                       \
    X(SHORT_NOT_ALLOWED,         5, "the sell would open or increase a short " \
                                    "and short selling is off")                \
    X(INSUFFICIENT_BUYING_POWER, 6, "equity after the fill would not cover "   \
                                    "the margin requirement")                  \
    X(OVERFLOW,                  7, "an amount leaves the decimal range")

typedef enum qb_pf_reject_e {
#define QB__PF_REJECT_ENUM(name, val, desc) QB_PF_REJECT_##name = val,
    QB_PF_REJECT_MAP(QB__PF_REJECT_ENUM)
#undef QB__PF_REJECT_ENUM
} qb_pf_reject_t;

/* "INSUFFICIENT_BUYING_POWER" etc.; "UNKNOWN" for a bad value. */
const char *qb_pf_reject_name(qb_pf_reject_t r);
/* The description above; never NULL. */
const char *qb_pf_reject_str(qb_pf_reject_t r);

typedef struct qb_portfolio_s qb_portfolio_t;

typedef struct qb_portfolio_config_s {
    char account[QB_ACCOUNT_MAX + 1]; /* copied into every position; may be "" */
    qb_dec_t initial_cash;            /* >= 0 */
    qb_dec_t margin_long;             /* > 0; 1 = cash account */
    qb_dec_t margin_short;            /* > 0 */
    int allow_short;                  /* 0: sells never exceed the long qty */
} qb_portfolio_config_t;

/* Defaults: account "", initial_cash 100000, margin_long 1, margin_short 1,
 * allow_short 0 (a cash account). */
void qb_portfolio_config_default(qb_portfolio_config_t *cfg);

/* QB_ERR_INVALID with a message for a bad config, QB_ERR_NOMEM. */
qb_err_t qb_portfolio_new(const qb_portfolio_config_t *cfg, qb_portfolio_t **out,
                          char *errstr, size_t errstr_size);
void qb_portfolio_destroy(qb_portfolio_t *pf);

/* ---- symbols ------------------------------------------------------------ */

/* The id of `name` (validated and upper-cased like qb_symbol_set), added
 * with a flat position if new. QB_ERR_INVALID for a bad symbol, QB_ERR_NOMEM,
 * QB_ERR_RANGE past 2^31 symbols. */
qb_err_t qb_portfolio_symbol(qb_portfolio_t *pf, const char *name, uint32_t *id,
                             char *errstr, size_t errstr_size);
/* Look up without adding: QB_OK or QB_ERR_NOT_FOUND. */
qb_err_t qb_portfolio_symbol_find(const qb_portfolio_t *pf, const char *name,
                                  uint32_t *id);
size_t qb_portfolio_nsymbols(const qb_portfolio_t *pf);
/* The symbol text of id; "" for an unknown id. */
const char *qb_portfolio_symbol_name(const qb_portfolio_t *pf, uint32_t id);

/* ---- the per-bar path --------------------------------------------------- */

/* Mark symbol `id` at `price` (> 0) and revalue its position. QB_ERR_INVALID
 * for a bad id or price, QB_ERR_OVERFLOW when a value leaves the range
 * (nothing changes then). */
qb_err_t qb_portfolio_mark(qb_portfolio_t *pf, uint32_t id, qb_dec_t price);

/* qb_portfolio_mark when the position is open, nothing at all when it is
 * flat (the mark stays): for a caller that revalues its open positions
 * every bar and does not want a branch on "is it open" (unpredictable over
 * many symbols) - flat or not, the same few instructions. */
qb_err_t qb_portfolio_mark_open(qb_portfolio_t *pf, uint32_t id, qb_dec_t price);

/* ---- fills -------------------------------------------------------------- */

/* Book one fill exactly as the rules above; no margin check (a broker's
 * fill is a fact: check first with qb_portfolio_check_fill when you decide).
 * commission may be negative (a rebate). QB_ERR_INVALID with a message for
 * a bad id, side, qty <= 0 or price <= 0; QB_ERR_OVERFLOW. Nothing changes
 * on error. */
qb_err_t qb_portfolio_apply_fill(qb_portfolio_t *pf, uint32_t id, qb_side_t side,
                                 qb_dec_t qty, qb_dec_t price, qb_dec_t commission,
                                 char *errstr, size_t errstr_size);
/* The same for a core fill (its symbol is added when new). */
qb_err_t qb_portfolio_apply(qb_portfolio_t *pf, const qb_fill_t *fill, char *errstr,
                            size_t errstr_size);

/* Would this fill be accepted by the short and margin rules?
 * QB_PF_REJECT_NONE, _UNKNOWN_SYMBOL, _INVALID_QTY, _INVALID_PRICE,
 * _SHORT_NOT_ALLOWED, _INSUFFICIENT_BUYING_POWER or _OVERFLOW. */
qb_pf_reject_t qb_portfolio_check_fill(const qb_portfolio_t *pf, uint32_t id,
                                       qb_side_t side, qb_dec_t qty, qb_dec_t price,
                                       qb_dec_t commission);

/* The largest quantity one fill on `side` at `price` may have so that
 * qb_portfolio_check_fill accepts it, with the fee from `comm` (NULL: none):
 *  - a SELL without allow_short: the whole long position (0 when flat or
 *    short);
 *  - otherwise: any opposite position is closed and the new exposure is
 *    the largest whole number of lots that the margin rule allows (the
 *    answer is |opposite position| + k x lot). Assumes, as holds for
 *    prices near the mark, that a larger fill never needs less margin.
 * *qty is 0 when nothing fits. QB_ERR_INVALID for bad arguments. */
qb_err_t qb_portfolio_max_qty(const qb_portfolio_t *pf, uint32_t id, qb_side_t side,
                              qb_dec_t price, const qb_commission_t *comm,
                              qb_dec_t lot, qb_dec_t *qty);

/* Cash in (amount > 0) or out (< 0); counted in qb_portfolio_deposits.
 * QB_ERR_OVERFLOW. */
qb_err_t qb_portfolio_deposit(qb_portfolio_t *pf, qb_dec_t amount);

/* ---- reading ------------------------------------------------------------ */

qb_dec_t qb_portfolio_cash(const qb_portfolio_t *pf);
qb_dec_t qb_portfolio_equity(const qb_portfolio_t *pf);       /* cash + long + short */
qb_dec_t qb_portfolio_long_value(const qb_portfolio_t *pf);   /* sum mv > 0, >= 0 */
qb_dec_t qb_portfolio_short_value(const qb_portfolio_t *pf);  /* sum mv < 0, <= 0 */
qb_dec_t qb_portfolio_margin_used(const qb_portfolio_t *pf);
qb_dec_t qb_portfolio_excess(const qb_portfolio_t *pf);       /* equity - used */
qb_dec_t qb_portfolio_buying_power(const qb_portfolio_t *pf);
qb_dec_t qb_portfolio_initial_cash(const qb_portfolio_t *pf);
qb_dec_t qb_portfolio_deposits(const qb_portfolio_t *pf);     /* net, after initial */
qb_dec_t qb_portfolio_realized(const qb_portfolio_t *pf);     /* sum, net of fees */
qb_dec_t qb_portfolio_unrealized(const qb_portfolio_t *pf);   /* sum over symbols */
qb_dec_t qb_portfolio_commissions(const qb_portfolio_t *pf);  /* sum paid */
uint64_t qb_portfolio_fills(const qb_portfolio_t *pf);        /* fills booked */
const qb_portfolio_config_t *qb_portfolio_config(const qb_portfolio_t *pf);

/* Per symbol; an unknown id gives NULL / 0. */
const qb_position_t *qb_portfolio_position(const qb_portfolio_t *pf, uint32_t id);
qb_dec_t qb_portfolio_qty(const qb_portfolio_t *pf, uint32_t id);
qb_dec_t qb_portfolio_mark_price(const qb_portfolio_t *pf, uint32_t id); /* 0: never */
qb_dec_t qb_portfolio_market_value(const qb_portfolio_t *pf, uint32_t id);
qb_dec_t qb_portfolio_unrealized_of(const qb_portfolio_t *pf, uint32_t id);
qb_dec_t qb_portfolio_commission_of(const qb_portfolio_t *pf, uint32_t id);

#endif
