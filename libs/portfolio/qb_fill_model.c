/* qb_fill_model.c — the bar-matching and slippage rules documented in
 * qb_fill_model.h. SELL is computed as the mirror of BUY. */
#include "portfolio/qb_fill_model.h"

#include <stdint.h>
#include <strings.h>

const char *qb_fill_timing_name(qb_fill_timing_t t) {
    return t == QB_FILL_NEXT_OPEN ? "NEXT_OPEN" : t == QB_FILL_CLOSE ? "CLOSE" : "UNKNOWN";
}

qb_err_t qb_fill_timing_parse(const char *s, qb_fill_timing_t *out) {
    if (strcasecmp(s, "NEXT_OPEN") == 0) *out = QB_FILL_NEXT_OPEN;
    else if (strcasecmp(s, "CLOSE") == 0) *out = QB_FILL_CLOSE;
    else return QB_ERR_PARSE;
    return QB_OK;
}

qb_err_t qb_pf_bar_validate(const qb_pf_bar_t *b, char *errstr, size_t n) {
    char o[QB_DEC_STRLEN], h[QB_DEC_STRLEN], l[QB_DEC_STRLEN], c[QB_DEC_STRLEN];
    if (b->open > 0 && b->high > 0 && b->low > 0 && b->close > 0 && b->low <= b->open &&
        b->open <= b->high && b->low <= b->close && b->close <= b->high && b->volume >= 0)
        return QB_OK;
    qb_dec_format(b->open, o, sizeof o);
    qb_dec_format(b->high, h, sizeof h);
    qb_dec_format(b->low, l, sizeof l);
    qb_dec_format(b->close, c, sizeof c);
    return qb_err_set(errstr, n, QB_ERR_INVALID,
                      "bad bar at %lld: O %s H %s L %s C %s (need prices > 0, "
                      "L <= O,C <= H, volume >= 0)",
                      (long long)b->ts, o, h, l, c);
}

/* BUY-side limit on a bar: fills when L <= Lp at min(O, Lp). */
static int qb_fill_limit_buy(qb_dec_t lp, qb_dec_t o, qb_dec_t l, qb_dec_t *ref) {
    if (l > lp) return 0;
    *ref = o < lp ? o : lp;
    return 1;
}

/* The BUY rules on a bar given as (O, H, L). The SELL rules are these on
 * the negated bar (-O, -L, -H) with negated prices, which turns every
 * comparison and min/max around. */
static int qb_fill_match_buy(qb_order_type_t type, qb_dec_t lp, qb_dec_t sp,
                             int *triggered, qb_dec_t o, qb_dec_t h, qb_dec_t l,
                             qb_dec_t *ref) {
    switch (type) {
    case QB_ORDER_TYPE_MARKET:
        *ref = o;
        return 1;
    case QB_ORDER_TYPE_LIMIT: return qb_fill_limit_buy(lp, o, l, ref);
    case QB_ORDER_TYPE_STOP:
        if (*triggered) {
            *ref = o;
            return 1;
        }
        if (h < sp) return 0;
        *triggered = 1;
        *ref = o > sp ? o : sp;
        return 1;
    case QB_ORDER_TYPE_STOP_LIMIT:
        if (*triggered || o >= sp) {
            *triggered = 1;
            return qb_fill_limit_buy(lp, o, l, ref);
        }
        if (h < sp) return 0;
        *triggered = 1; /* inside the bar */
        if (lp < sp) return 0;
        *ref = sp;
        return 1;
    }
    return 0;
}

int qb_fill_match(qb_side_t side, qb_order_type_t type, qb_dec_t limit,
                  qb_dec_t stop, int *triggered, const qb_pf_bar_t *bar,
                  qb_dec_t *ref) {
    if (side == QB_SIDE_BUY)
        return qb_fill_match_buy(type, limit, stop, triggered, bar->open, bar->high,
                                 bar->low, ref);
    qb_dec_t r;
    if (!qb_fill_match_buy(type, -limit, -stop, triggered, -bar->open, -bar->low,
                           -bar->high, &r))
        return 0;
    *ref = -r;
    return 1;
}

int qb_fill_match_price(qb_side_t side, qb_order_type_t type, qb_dec_t limit,
                        qb_dec_t stop, int *triggered, qb_dec_t price,
                        qb_dec_t *ref) {
    qb_pf_bar_t b = {.open = price, .high = price, .low = price, .close = price};
    return qb_fill_match(side, type, limit, stop, triggered, &b, ref);
}

qb_err_t qb_fill_slip(qb_side_t side, qb_dec_t ref, qb_dec_t bps, qb_dec_t tick,
                      qb_dec_t limit, qb_dec_t *out) {
    const qb_dec_t ten_k = 10000 * QB_DEC_SCALE;
    if (ref <= 0 || bps < 0 || bps >= ten_k || tick < 0 || limit < 0 ||
        (side != QB_SIDE_BUY && side != QB_SIDE_SELL))
        return QB_ERR_INVALID;
    int buy = side == QB_SIDE_BUY;
    qb_dec_t p, rb;
    qb_err_t err;
    /* ref x (10000 +- bps) / 10000, in raw units: ref_raw x factor_raw / (1e4 x 1e8),
     * rounded against the trader. As ref_raw x 1e12 divides exactly, that is
     * ref +- ceil(ref_raw x bps_raw / 1e12): one 64-bit division when the
     * product fits (everyday prices and slippage), else the wide one. */
    if (!__builtin_mul_overflow(ref, bps, &rb)) {
        const uint64_t u = (uint64_t)rb, t = (uint64_t)ten_k;
        const qb_dec_t c = (qb_dec_t)(u / t + (u % t != 0)); /* <= ref */
        err = buy ? (__builtin_add_overflow(ref, c, &p) ? QB_ERR_OVERFLOW : QB_OK) : QB_OK;
        if (!buy) p = ref - c;
    } else {
        err = qb_dec_div_wide((qb_dec_wide_t)ref * (buy ? ten_k + bps : ten_k - bps),
                              (qb_dec_wide_t)ten_k, &p, buy ? QB_ROUND_CEIL : QB_ROUND_FLOOR);
    }
    if (err == QB_OK && tick > 0)
        err = qb_dec_quantize(p, tick, buy ? QB_ROUND_CEIL : QB_ROUND_FLOOR, &p);
    if (err != QB_OK) return err;
    if (p <= 0) p = tick > 0 ? tick : 1;
    if (limit > 0) {
        if (buy && p > limit) p = limit;
        if (!buy && p < limit) p = limit;
    }
    *out = p;
    return QB_OK;
}
