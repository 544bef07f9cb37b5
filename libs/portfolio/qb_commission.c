/* qb_commission.c — the commission models of qb_commission.h. One exact
 * __int128 product, one rounding, then the minimum. */
#include "portfolio/qb_commission.h"

#include <stdint.h>
#include <strings.h>

static const char *const qb_commission_names[] = {
    [QB_COMMISSION_NONE] = "NONE", [QB_COMMISSION_PER_TRADE] = "PER_TRADE",
    [QB_COMMISSION_PER_SHARE] = "PER_SHARE", [QB_COMMISSION_PERCENT] = "PERCENT"};

static int qb_commission_kind_ok(qb_commission_kind_t k) {
    return k >= QB_COMMISSION_NONE && k <= QB_COMMISSION_PERCENT;
}

const char *qb_commission_kind_name(qb_commission_kind_t k) {
    return qb_commission_kind_ok(k) ? qb_commission_names[k] : "UNKNOWN";
}

qb_err_t qb_commission_kind_parse(const char *s, qb_commission_kind_t *out) {
    for (int k = QB_COMMISSION_NONE; k <= QB_COMMISSION_PERCENT; k++)
        if (strcasecmp(s, qb_commission_names[k]) == 0) {
            *out = (qb_commission_kind_t)k;
            return QB_OK;
        }
    return QB_ERR_PARSE;
}

qb_commission_t qb_commission_none(void) {
    return (qb_commission_t){.kind = QB_COMMISSION_NONE};
}
qb_commission_t qb_commission_per_trade(qb_dec_t fee) {
    return (qb_commission_t){.kind = QB_COMMISSION_PER_TRADE, .rate = fee};
}
qb_commission_t qb_commission_per_share(qb_dec_t per_unit, qb_dec_t minimum) {
    return (qb_commission_t){
        .kind = QB_COMMISSION_PER_SHARE, .rate = per_unit, .minimum = minimum};
}
qb_commission_t qb_commission_percent(qb_dec_t fraction, qb_dec_t minimum) {
    return (qb_commission_t){
        .kind = QB_COMMISSION_PERCENT, .rate = fraction, .minimum = minimum};
}

qb_err_t qb_commission_validate(const qb_commission_t *m, char *errstr,
                                size_t errstr_size) {
    if (!qb_commission_kind_ok(m->kind))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "commission: unknown kind %d", (int)m->kind);
    const char *bad = m->rate < 0      ? "rate"
                      : m->minimum < 0 ? "minimum"
                      : m->step < 0    ? "step"
                                       : NULL;
    if (bad)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "commission %s: %s is negative",
                          qb_commission_kind_name(m->kind), bad);
    return QB_OK;
}

qb_err_t qb_commission_calc(const qb_commission_t *m, qb_dec_t qty,
                            qb_dec_t notional, qb_dec_t *fee) {
    if (!qb_commission_kind_ok(m->kind) || m->rate < 0 || m->minimum < 0 ||
        m->step < 0 || qty < 0 || notional < 0)
        return QB_ERR_INVALID;
    if (qty == 0 || m->kind == QB_COMMISSION_NONE) {
        *fee = 0;
        return QB_OK;
    }
    /* exact fee in 1e-16 units */
    qb_dec_wide_t exact;
    switch (m->kind) {
    case QB_COMMISSION_PER_TRADE: exact = (qb_dec_wide_t)m->rate * QB_DEC_SCALE; break;
    case QB_COMMISSION_PER_SHARE: exact = (qb_dec_wide_t)m->rate * qty; break;
    default: exact = (qb_dec_wide_t)m->rate * notional; break;
    }
    qb_dec_t step = m->step > 0 ? m->step : 1, steps, f;
    const qb_dec_wide_t den = (qb_dec_wide_t)step * QB_DEC_SCALE;
    if ((exact >> 64) == 0 && (den >> 64) == 0) {
        /* 0 <= exact < 2^64 (everyday fees): qb_dec_div_wide's HALF_UP on
         * 64-bit operands - up when the remainder is at least half */
        const uint64_t a = (uint64_t)exact, b = (uint64_t)den;
        uint64_t q = a / b;
        const uint64_t rem = a % b;
        if (rem >= b - rem) q++;
        if (q > INT64_MAX) return QB_ERR_OVERFLOW;
        steps = (qb_dec_t)q;
    } else {
        qb_err_t err = qb_dec_div_wide(exact, den, &steps, QB_ROUND_HALF_UP);
        if (err != QB_OK) return err;
    }
    if (__builtin_mul_overflow(steps, step, &f)) return QB_ERR_OVERFLOW;
    *fee = f < m->minimum ? m->minimum : f;
    return QB_OK;
}
