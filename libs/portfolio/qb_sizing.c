/* qb_sizing.c — the sizing rules of qb_sizing.h. The ratio rules are one
 * exact __int128 floor division; all_in searches the largest lot count
 * whose exact cost fits (cost grows with the quantity). */
#include "portfolio/qb_sizing.h"

#include <strings.h>

#include "portfolio/qb_pf_int.h"

static const char *const qb_sizing_names[] = {
    [QB_SIZING_FIXED_QTY] = "FIXED_QTY", [QB_SIZING_PERCENT_EQUITY] = "PERCENT_EQUITY",
    [QB_SIZING_FIXED_FRACTIONAL] = "FIXED_FRACTIONAL", [QB_SIZING_ALL_IN] = "ALL_IN"};

const char *qb_sizing_kind_name(qb_sizing_kind_t k) {
    return k >= QB_SIZING_FIXED_QTY && k <= QB_SIZING_ALL_IN ? qb_sizing_names[k]
                                                             : "UNKNOWN";
}

qb_err_t qb_sizing_kind_parse(const char *s, qb_sizing_kind_t *out) {
    for (int k = QB_SIZING_FIXED_QTY; k <= QB_SIZING_ALL_IN; k++)
        if (strcasecmp(s, qb_sizing_names[k]) == 0) {
            *out = (qb_sizing_kind_t)k;
            return QB_OK;
        }
    return QB_ERR_PARSE;
}

/* floor(num / den) lots of `lot`, num >= 0, den > 0, as a quantity. */
static qb_err_t qb_sizing_lots(qb_dec_wide_t num, qb_dec_wide_t den, qb_dec_t lot,
                               qb_dec_t *out) {
    qb_dec_wide_t lots = 0;
    if (num > 0) /* 64-bit operands (the usual amounts): the 64-bit division */
        lots = (num >> 64) == 0 && (den >> 64) == 0 ? (qb_dec_wide_t)((uint64_t)num / (uint64_t)den)
                                                    : num / den;
    if (lots > INT64_MAX / lot) return QB_ERR_OVERFLOW;
    *out = (qb_dec_t)lots * lot;
    return QB_OK;
}

qb_err_t qb_sizing_fixed_qty(qb_dec_t qty, qb_dec_t lot, qb_dec_t *out) {
    if (lot <= 0 || qty < 0) return QB_ERR_INVALID;
    *out = qty / lot * lot;
    return QB_OK;
}

qb_err_t qb_sizing_percent_equity(qb_dec_t equity, qb_dec_t fraction,
                                  qb_dec_t price, qb_dec_t lot, qb_dec_t *out) {
    if (lot <= 0 || price <= 0 || fraction < 0) return QB_ERR_INVALID;
    /* qty_raw = equity_raw x fraction_raw / price_raw (the 1e8s cancel) */
    return qb_sizing_lots((qb_dec_wide_t)equity * fraction, (qb_dec_wide_t)price * lot,
                          lot, out);
}

qb_err_t qb_sizing_fixed_fractional(qb_dec_t equity, qb_dec_t risk_fraction,
                                    qb_dec_t entry, qb_dec_t stop, qb_dec_t lot,
                                    qb_dec_t *out) {
    if (lot <= 0 || entry <= 0 || stop <= 0 || risk_fraction < 0 || entry == stop)
        return QB_ERR_INVALID;
    qb_dec_wide_t dist = (qb_dec_wide_t)entry - stop;
    if (dist < 0) dist = -dist;
    return qb_sizing_lots((qb_dec_wide_t)equity * risk_fraction, dist * lot, lot, out);
}

qb_err_t qb_sizing_cost(qb_dec_t qty, qb_dec_t price, qb_dec_t margin,
                        const qb_commission_t *comm, qb_dec_t *out) {
    qb_dec_t notional, req, fee = 0, sum;
    qb_err_t err = qb_dec_mul(qty, price, &notional, QB_ROUND_HALF_EVEN);
    if (err == QB_OK) err = qb_dec_mul(margin, notional, &req, QB_ROUND_CEIL);
    if (err == QB_OK && comm) err = qb_commission_calc(comm, qty, notional, &fee);
    if (err != QB_OK) return err;
    if (__builtin_add_overflow(req, fee, &sum)) return QB_ERR_OVERFLOW;
    *out = sum;
    return QB_OK;
}

int64_t qb_pf_search_max(int64_t est, qb_pf_fits_fn fits, void *ctx) {
    int64_t lo = 0, hi;
    if (est < 1) est = 1;
    if (fits(est, ctx)) {
        lo = est;
        int64_t step = 1;
        for (;;) {
            if (lo > INT64_MAX - step) return lo; /* the predicate's range ends */
            if (!fits(lo + step, ctx)) {
                hi = lo + step;
                break;
            }
            lo += step;
            if (step < INT64_MAX / 2) step *= 2;
        }
    } else {
        hi = est;
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (fits(mid, ctx)) lo = mid;
        else hi = mid;
    }
    return lo;
}

typedef struct qb_sizing_ctx_s {
    qb_dec_t lot, price, margin, money;
    const qb_commission_t *comm;
} qb_sizing_ctx_t;

/* cost(k lots) <= money; an overflowing quantity or cost does not fit. */
static int qb_sizing_fits(int64_t k, void *arg) {
    const qb_sizing_ctx_t *c = arg;
    qb_dec_t q, cost;
    if (__builtin_mul_overflow(k, c->lot, &q)) return 0;
    if (qb_sizing_cost(q, c->price, c->margin, c->comm, &cost) != QB_OK) return 0;
    return cost <= c->money;
}

qb_err_t qb_sizing_all_in(qb_dec_t money, qb_dec_t price, qb_dec_t margin,
                          const qb_commission_t *comm, qb_dec_t lot,
                          qb_dec_t *out) {
    if (lot <= 0 || price <= 0 || margin <= 0) return QB_ERR_INVALID;
    if (comm && qb_commission_validate(comm, NULL, 0) != QB_OK) return QB_ERR_INVALID;
    if (money <= 0) {
        *out = 0;
        return QB_OK;
    }
    /* A first guess from doubles (cost is about fixed + q x unit); the
     * exact predicate decides. */
    double unit = qb_dec_to_double(margin) * qb_dec_to_double(price), fixed = 0;
    if (comm && comm->kind == QB_COMMISSION_PER_SHARE) unit += qb_dec_to_double(comm->rate);
    if (comm && comm->kind == QB_COMMISSION_PERCENT)
        unit += qb_dec_to_double(comm->rate) * qb_dec_to_double(price);
    if (comm && comm->kind == QB_COMMISSION_PER_TRADE) fixed = qb_dec_to_double(comm->rate);
    double guess = (qb_dec_to_double(money) - fixed) / unit / qb_dec_to_double(lot);
    int64_t est = guess < 1 ? 1 : guess > 9e18 ? (int64_t)9e18 : (int64_t)guess;
    qb_sizing_ctx_t c = {lot, price, margin, money, comm};
    *out = qb_pf_search_max(est, qb_sizing_fits, &c) * lot; /* it fitted: no overflow */
    return QB_OK;
}
