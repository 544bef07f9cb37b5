/* qb_pf_int.h — helpers shared by the files of libs/portfolio; not part of
 * its interface. */
#ifndef QB_PF_INT_H
#define QB_PF_INT_H

#include <stdint.h>

#include "core/qb_decimal.h"
#include "portfolio/qb_portfolio.h"

/* 1 when w fits in a qb_dec_t (and stores it), else 0. */
static inline int qb_pf_fit(qb_dec_wide_t w, qb_dec_t *out) {
    const qb_dec_t v = (qb_dec_t)w; /* GCC: modulo 2^64; equal back iff it fits */
    if ((qb_dec_wide_t)v != w) return 0;
    *out = v;
    return 1;
}

/* q x p rounded half-even to 1e-8; 0 on overflow. Whole quantities (the
 * common case) take one 64-bit multiply instead of a 128-bit division. */
static inline int qb_pf_mul(qb_dec_t q, qb_dec_t p, qb_dec_t *out) {
    if (q % QB_DEC_SCALE == 0) return !__builtin_mul_overflow(q / QB_DEC_SCALE, p, out);
    return qb_dec_mul(q, p, out, QB_ROUND_HALF_EVEN) == QB_OK;
}

/* qb_portfolio_check_fill, then (accepted) qb_portfolio_apply_fill, with
 * the account-after computed once: what the simulator does on every fill.
 * QB_PF_REJECT_OVERFLOW when the booking fails; nothing changes unless
 * QB_PF_REJECT_NONE. */
qb_pf_reject_t qb_pf_fill(qb_portfolio_t *pf, uint32_t id, qb_side_t side, qb_dec_t qty,
                          qb_dec_t price, qb_dec_t commission);

/* The largest k >= 0 with fits(k), for a predicate that holds at 0 and,
 * once false, stays false for larger k. Starts from the guess `est`:
 * gallops up from it when it fits, bisects below it when not. At most
 * about 2 x 63 calls. */
typedef int (*qb_pf_fits_fn)(int64_t k, void *ctx);
int64_t qb_pf_search_max(int64_t est, qb_pf_fits_fn fits, void *ctx);

#endif
