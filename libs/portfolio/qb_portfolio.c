/* qb_portfolio.c — the account books of qb_portfolio.h.
 *
 * Layout: per-symbol state is split by temperature. hot[id] holds what the
 * per-bar path touches (qty, mark, market value: 24 bytes); pos[id] is
 * core's qb_position_t, touched only by fills; fee[id] the commissions.
 * long_mv / short_mv are the running sums of positive / negative market
 * values, so equity and margin are O(1). A symbol name -> id hash (open
 * addressing, id + 1 in the slot, 0 empty) serves qb_portfolio_symbol. */
#include "portfolio/qb_portfolio.h"

#include <stdlib.h>
#include <string.h>

#include "portfolio/qb_pf_int.h"
#include "portfolio/qb_sizing.h"

static const char *const qb_pf_reject_names[] = {
#define QB__PF_REJECT_NAME(name, val, desc) [val] = #name,
    QB_PF_REJECT_MAP(QB__PF_REJECT_NAME)
#undef QB__PF_REJECT_NAME
};
static const char *const qb_pf_reject_descs[] = {
#define QB__PF_REJECT_DESC(name, val, desc) [val] = desc,
    QB_PF_REJECT_MAP(QB__PF_REJECT_DESC)
#undef QB__PF_REJECT_DESC
};
#define QB_PF_NREJECT (sizeof qb_pf_reject_names / sizeof qb_pf_reject_names[0])

const char *qb_pf_reject_name(qb_pf_reject_t r) {
    return (unsigned)r < QB_PF_NREJECT ? qb_pf_reject_names[r] : "UNKNOWN";
}
const char *qb_pf_reject_str(qb_pf_reject_t r) {
    return (unsigned)r < QB_PF_NREJECT ? qb_pf_reject_descs[r] : "unknown reason";
}

typedef struct qb_pf_hot_s {
    qb_dec_t qty;  /* == pos[id].qty */
    qb_dec_t mark; /* 0 until marked or filled */
    qb_dec_t mv;   /* qty x mark, rounded half-even */
    int64_t units; /* qty in whole units when it is whole (0 when flat),
                      else QB_PF_FRAC: mark's exact product is then one
                      64-bit multiply, with no branch on flat or not */
} qb_pf_hot_t;
#define QB_PF_FRAC INT64_MIN /* |qty / 1e8| < 2^37: never a whole count */

struct qb_portfolio_s {
    qb_portfolio_config_t cfg;
    qb_dec_t cash, long_mv, short_mv;
    qb_dec_t deposits, realized, commissions;
    uint64_t fills;
    uint32_t n, cap;
    qb_pf_hot_t *hot;
    qb_position_t *pos;
    qb_dec_t *fee;
    uint32_t *ht; /* id + 1, 0 = empty */
    uint32_t ht_cap; /* power of two, > 2n */
};

void qb_portfolio_config_default(qb_portfolio_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->initial_cash = 100000 * QB_DEC_SCALE;
    cfg->margin_long = QB_DEC_SCALE;
    cfg->margin_short = QB_DEC_SCALE;
}

qb_err_t qb_portfolio_new(const qb_portfolio_config_t *cfg, qb_portfolio_t **out,
                          char *errstr, size_t errstr_size) {
    const char *bad = cfg->initial_cash < 0   ? "initial_cash is negative"
                      : cfg->margin_long <= 0 ? "margin_long must be > 0"
                      : cfg->margin_short <= 0 ? "margin_short must be > 0"
                      : memchr(cfg->account, '\0', sizeof cfg->account) == NULL
                          ? "account is not NUL-terminated"
                          : NULL;
    if (bad) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "portfolio: %s", bad);
    qb_portfolio_t *pf = calloc(1, sizeof *pf);
    if (!pf) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "portfolio: out of memory");
    pf->cfg = *cfg;
    pf->cfg.allow_short = cfg->allow_short != 0;
    pf->cash = cfg->initial_cash;
    *out = pf;
    return QB_OK;
}

void qb_portfolio_destroy(qb_portfolio_t *pf) {
    if (!pf) return;
    free(pf->hot);
    free(pf->pos);
    free(pf->fee);
    free(pf->ht);
    free(pf);
}

/* ---- symbols -------------------------------------------------------------- */

static uint32_t qb_pf_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot holding `sym`, or the empty slot where it would go. */
static uint32_t qb_pf_slot(const qb_portfolio_t *pf, const qb_symbol_t *sym) {
    uint32_t mask = pf->ht_cap - 1, i = qb_pf_hash(sym->s) & mask;
    while (pf->ht[i] != 0 && !qb_symbol_eq(&pf->pos[pf->ht[i] - 1].symbol, sym))
        i = (i + 1) & mask;
    return i;
}

static int qb_pf_rehash(qb_portfolio_t *pf, uint32_t cap) {
    uint32_t *ht = calloc(cap, sizeof *ht);
    if (!ht) return 0;
    free(pf->ht);
    pf->ht = ht;
    pf->ht_cap = cap;
    for (uint32_t id = 0; id < pf->n; id++) pf->ht[qb_pf_slot(pf, &pf->pos[id].symbol)] = id + 1;
    return 1;
}

static int qb_pf_grow(qb_portfolio_t *pf) {
    uint32_t cap = pf->cap ? pf->cap * 2 : 16;
    qb_pf_hot_t *hot = realloc(pf->hot, cap * sizeof *hot);
    if (!hot) return 0;
    pf->hot = hot;
    qb_position_t *pos = realloc(pf->pos, cap * sizeof *pos);
    if (!pos) return 0;
    pf->pos = pos;
    qb_dec_t *fee = realloc(pf->fee, cap * sizeof *fee);
    if (!fee) return 0;
    pf->fee = fee;
    pf->cap = cap;
    return 1;
}

qb_err_t qb_portfolio_symbol_find(const qb_portfolio_t *pf, const char *name,
                                  uint32_t *id) {
    qb_symbol_t sym;
    if (pf->n == 0 || qb_symbol_set(&sym, name, NULL, 0) != QB_OK) return QB_ERR_NOT_FOUND;
    uint32_t slot = pf->ht[qb_pf_slot(pf, &sym)];
    if (slot == 0) return QB_ERR_NOT_FOUND;
    *id = slot - 1;
    return QB_OK;
}

qb_err_t qb_portfolio_symbol(qb_portfolio_t *pf, const char *name, uint32_t *id,
                             char *errstr, size_t errstr_size) {
    qb_symbol_t sym;
    qb_err_t err = qb_symbol_set(&sym, name, errstr, errstr_size);
    if (err != QB_OK) return err;
    if (pf->n > 0) {
        uint32_t slot = pf->ht[qb_pf_slot(pf, &sym)];
        if (slot != 0) {
            *id = slot - 1;
            return QB_OK;
        }
    }
    if (pf->n >= (UINT32_C(1) << 31))
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "portfolio: too many symbols");
    if ((pf->n == pf->cap && !qb_pf_grow(pf)) ||
        ((pf->n + 1) * 2 > pf->ht_cap && !qb_pf_rehash(pf, pf->ht_cap ? pf->ht_cap * 2 : 64)))
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "portfolio: out of memory");
    uint32_t i = pf->n;
    pf->hot[i] = (qb_pf_hot_t){0};
    memset(&pf->pos[i], 0, sizeof pf->pos[i]);
    memcpy(pf->pos[i].account, pf->cfg.account, sizeof pf->pos[i].account);
    pf->pos[i].symbol = sym;
    pf->fee[i] = 0;
    pf->n++;
    pf->ht[qb_pf_slot(pf, &sym)] = i + 1;
    *id = i;
    return QB_OK;
}

size_t qb_portfolio_nsymbols(const qb_portfolio_t *pf) { return pf->n; }

const char *qb_portfolio_symbol_name(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? pf->pos[id].symbol.s : "";
}

/* ---- totals ----------------------------------------------------------------- */

/* cash + long + short fits (so qb_portfolio_equity cannot overflow). */
static int qb_pf_equity_fits(qb_dec_t cash, qb_dec_t lmv, qb_dec_t smv) {
    qb_dec_t e;
    return qb_pf_fit((qb_dec_wide_t)cash + lmv + smv, &e);
}

/* ceil(a / 1e8) for a >= 0: a 64-bit division by the constant when a fits
 * (a multiply), not the 128-bit library call. */
static inline qb_dec_wide_t qb_pf_ceil_scale(qb_dec_wide_t a) {
    if ((a >> 64) == 0) {
        const uint64_t u = (uint64_t)a;
        return (qb_dec_wide_t)(u / QB_DEC_SCALE + (u % QB_DEC_SCALE != 0));
    }
    return (a + QB_DEC_SCALE - 1) / QB_DEC_SCALE;
}

/* ceil(ml x long) + ceil(ms x |short|), in wide units (cannot overflow). */
static qb_dec_wide_t qb_pf_used_wide(const qb_portfolio_config_t *c, qb_dec_t lmv,
                                     qb_dec_t smv) {
    /* ceil of a non-negative quotient; a margin of 1 (a cash account) is
     * the value itself */
    qb_dec_wide_t a = c->margin_long == QB_DEC_SCALE
                          ? lmv
                          : qb_pf_ceil_scale((qb_dec_wide_t)c->margin_long * lmv);
    qb_dec_wide_t b = c->margin_short == QB_DEC_SCALE
                          ? -(qb_dec_wide_t)smv
                          : qb_pf_ceil_scale(-(qb_dec_wide_t)c->margin_short * smv);
    return a + b;
}

/* ---- the per-bar path --------------------------------------------------------- */

/* The position h (qty q != 0) is now worth mv at price: the side's total
 * and the mark follow, or QB_ERR_OVERFLOW and nothing changes. */
static inline qb_err_t qb_pf_mark_mv(qb_portfolio_t *pf, qb_pf_hot_t *h, qb_dec_t q,
                                     qb_dec_t mv, qb_dec_t price) {
    /* mv and h->mv have the qty's sign: the difference cannot overflow */
    const qb_dec_t d = mv - h->mv;
    /* cash + long + short fits (every update keeps it so), hence its
     * wrapping 64-bit sum is exact; the new total is that plus d */
    qb_dec_t side, eq = (qb_dec_t)((uint64_t)pf->cash + (uint64_t)pf->long_mv +
                                   (uint64_t)pf->short_mv);
    if (__builtin_add_overflow(q > 0 ? pf->long_mv : pf->short_mv, d, &side) ||
        __builtin_add_overflow(eq, d, &eq))
        return QB_ERR_OVERFLOW;
    if (q > 0) pf->long_mv = side;
    else pf->short_mv = side;
    h->mv = mv;
    h->mark = price;
    return QB_OK;
}

/* A fractional quantity: the general product (kept out of the per-bar
 * path, which then needs no stack frame). */
static __attribute__((noinline)) qb_err_t qb_pf_mark_frac(qb_portfolio_t *pf, qb_pf_hot_t *h,
                                                          qb_dec_t price) {
    qb_dec_t mv;
    if (!qb_pf_mul(h->qty, price, &mv)) return QB_ERR_OVERFLOW;
    return qb_pf_mark_mv(pf, h, h->qty, mv, price);
}

qb_err_t qb_portfolio_mark(qb_portfolio_t *pf, uint32_t id, qb_dec_t price) {
    if (id >= pf->n || price <= 0) return QB_ERR_INVALID;
    qb_pf_hot_t *h = &pf->hot[id];
    const qb_dec_t q = h->qty;
    if (q == 0) {
        h->mark = price;
        return QB_OK;
    }
    if (h->units == QB_PF_FRAC) return qb_pf_mark_frac(pf, h, price);
    /* = qb_pf_mul(q, price, &mv): units x price overflows iff it does */
    qb_dec_t mv;
    if (__builtin_mul_overflow(h->units, price, &mv)) return QB_ERR_OVERFLOW;
    return qb_pf_mark_mv(pf, h, q, mv, price);
}

qb_err_t qb_portfolio_mark_open(qb_portfolio_t *pf, uint32_t id, qb_dec_t price) {
    if (id >= pf->n || price <= 0) return QB_ERR_INVALID;
    qb_pf_hot_t *h = &pf->hot[id];
    const qb_dec_t q = h->qty;
    /* flat: units 0, mv 0, so d is 0 and nothing below changes but the
     * mark, which is kept by a mask (no branch on q) */
    const int64_t units = h->units;
    if (units == QB_PF_FRAC) return qb_pf_mark_frac(pf, h, price);
    qb_dec_t mv, lmv, smv, eq;
    /* every overflow test is folded into one branch, taken only on error;
     * both totals are stored (one of them unchanged): a store through a
     * pointer chosen by q would be slower (its address is known late) */
    int ovf = __builtin_mul_overflow(units, price, &mv);
    const qb_dec_t d = mv - h->mv; /* same signs (or both 0): no overflow */
    const qb_dec_t dl = q > 0 ? d : 0, ds = d - dl;
    eq = (qb_dec_t)((uint64_t)pf->cash + (uint64_t)pf->long_mv + (uint64_t)pf->short_mv);
    ovf |= __builtin_add_overflow(pf->long_mv, dl, &lmv);
    ovf |= __builtin_add_overflow(pf->short_mv, ds, &smv);
    ovf |= __builtin_add_overflow(eq, d, &eq);
    if (ovf) return QB_ERR_OVERFLOW;
    const uint64_t open = -(uint64_t)(q != 0);
    pf->long_mv = lmv;
    pf->short_mv = smv;
    h->mv = mv;
    h->mark = (qb_dec_t)(((uint64_t)price & open) | ((uint64_t)h->mark & ~open));
    return QB_OK;
}

/* ---- fills ---------------------------------------------------------------------- */

/* The account after a fill, computed without changing anything. */
typedef struct qb_pf_after_s {
    qb_dec_t cash, qty, mv, lmv, smv;
} qb_pf_after_t;

static qb_pf_reject_t qb_pf_after(const qb_portfolio_t *pf, uint32_t id, int s,
                                  qb_dec_t qty, qb_dec_t price, qb_dec_t commission,
                                  qb_pf_after_t *a) {
    const qb_pf_hot_t *h = &pf->hot[id];
    qb_dec_t notional;
    if (!qb_pf_mul(qty, price, &notional) ||
        !qb_pf_fit((qb_dec_wide_t)pf->cash - (qb_dec_wide_t)s * notional - commission,
                   &a->cash) ||
        !qb_pf_fit((qb_dec_wide_t)h->qty + (qb_dec_wide_t)s * qty, &a->qty))
        return QB_PF_REJECT_OVERFLOW;
    qb_dec_t mark = h->mark > 0 ? h->mark : price;
    a->mv = 0;
    if (a->qty != 0 && !qb_pf_mul(a->qty, mark, &a->mv)) return QB_PF_REJECT_OVERFLOW;
    qb_dec_wide_t lmv = pf->long_mv, smv = pf->short_mv;
    if (h->qty > 0) lmv -= h->mv;
    else smv -= h->mv;
    if (a->qty > 0) lmv += a->mv;
    else smv += a->mv;
    if (!qb_pf_fit(lmv, &a->lmv) || !qb_pf_fit(smv, &a->smv) ||
        !qb_pf_equity_fits(a->cash, a->lmv, a->smv))
        return QB_PF_REJECT_OVERFLOW;
    return QB_PF_REJECT_NONE;
}

static qb_pf_reject_t qb_pf_check_args(const qb_portfolio_t *pf, uint32_t id,
                                       qb_side_t side, qb_dec_t qty, qb_dec_t price) {
    if (id >= pf->n) return QB_PF_REJECT_UNKNOWN_SYMBOL;
    if (qb_side_sign(side) == 0) return QB_PF_REJECT_INVALID_ORDER;
    if (qty <= 0) return QB_PF_REJECT_INVALID_QTY;
    if (price <= 0) return QB_PF_REJECT_INVALID_PRICE;
    return QB_PF_REJECT_NONE;
}

/* The booking of a fill whose arguments passed qb_pf_check_args: the
 * position (core's qb_position_apply_fill), then the account as a (NULL:
 * qb_pf_after failed) - all or nothing. */
static qb_err_t qb_pf_book(qb_portfolio_t *pf, uint32_t id, qb_side_t side, qb_dec_t qty,
                           qb_dec_t price, qb_dec_t commission, const qb_pf_after_t *a,
                           char *errstr, size_t errstr_size) {
    qb_dec_t realized, fees, fee;
    qb_position_t next = pf->pos[id];
    qb_fill_t f;
    memset(&f, 0, sizeof f);
    f.symbol = next.symbol;
    f.side = side;
    f.qty = qty;
    f.price = price;
    f.commission = commission;
    qb_err_t err = qb_position_apply_fill(&next, &f, errstr, errstr_size);
    if (err != QB_OK) return err;
    if (!a ||
        !qb_pf_fit((qb_dec_wide_t)pf->realized + next.realized_pnl -
                       pf->pos[id].realized_pnl,
                   &realized) ||
        !qb_pf_fit((qb_dec_wide_t)pf->commissions + commission, &fees) ||
        !qb_pf_fit((qb_dec_wide_t)pf->fee[id] + commission, &fee))
        return qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                          "portfolio fill %s: amount out of range", next.symbol.s);
    QB_ASSERT(next.qty == a->qty);
    qb_pf_hot_t *h = &pf->hot[id];
    if (h->mark <= 0) h->mark = price;
    h->qty = a->qty;
    h->units = a->qty % QB_DEC_SCALE == 0 ? a->qty / QB_DEC_SCALE : QB_PF_FRAC;
    h->mv = a->mv;
    pf->cash = a->cash;
    pf->long_mv = a->lmv;
    pf->short_mv = a->smv;
    pf->pos[id] = next;
    pf->realized = realized;
    pf->commissions = fees;
    pf->fee[id] = fee;
    pf->fills++;
    return QB_OK;
}

qb_err_t qb_portfolio_apply_fill(qb_portfolio_t *pf, uint32_t id, qb_side_t side,
                                 qb_dec_t qty, qb_dec_t price, qb_dec_t commission,
                                 char *errstr, size_t errstr_size) {
    qb_pf_reject_t r = qb_pf_check_args(pf, id, side, qty, price);
    if (r != QB_PF_REJECT_NONE)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "portfolio fill %s (id %u): %s",
                          qb_portfolio_symbol_name(pf, id), id, qb_pf_reject_str(r));
    qb_pf_after_t a;
    int ok = qb_pf_after(pf, id, qb_side_sign(side), qty, price, commission, &a) ==
             QB_PF_REJECT_NONE;
    return qb_pf_book(pf, id, side, qty, price, commission, ok ? &a : NULL, errstr,
                      errstr_size);
}

qb_err_t qb_portfolio_apply(qb_portfolio_t *pf, const qb_fill_t *fill, char *errstr,
                            size_t errstr_size) {
    uint32_t id;
    qb_err_t err = qb_portfolio_symbol(pf, fill->symbol.s, &id, errstr, errstr_size);
    if (err != QB_OK) return err;
    return qb_portfolio_apply_fill(pf, id, fill->side, fill->qty, fill->price,
                                   fill->commission, errstr, errstr_size);
}

/* qb_portfolio_check_fill's rules on the account after (a) the fill. */
static qb_pf_reject_t qb_pf_check_after(const qb_portfolio_t *pf, uint32_t id, int s,
                                        const qb_pf_after_t *a) {
    qb_dec_t q0 = pf->hot[id].qty;
    if (s < 0 && a->qty < 0 && !pf->cfg.allow_short) return QB_PF_REJECT_SHORT_NOT_ALLOWED;
    /* only reducing, not flipping: always allowed */
    if ((q0 > 0 && s < 0 && a->qty >= 0) || (q0 < 0 && s > 0 && a->qty <= 0))
        return QB_PF_REJECT_NONE;
    qb_dec_wide_t equity = (qb_dec_wide_t)a->cash + a->lmv + a->smv;
    return equity >= qb_pf_used_wide(&pf->cfg, a->lmv, a->smv)
               ? QB_PF_REJECT_NONE
               : QB_PF_REJECT_INSUFFICIENT_BUYING_POWER;
}

qb_pf_reject_t qb_portfolio_check_fill(const qb_portfolio_t *pf, uint32_t id,
                                       qb_side_t side, qb_dec_t qty, qb_dec_t price,
                                       qb_dec_t commission) {
    qb_pf_reject_t r = qb_pf_check_args(pf, id, side, qty, price);
    if (r != QB_PF_REJECT_NONE) return r;
    int s = qb_side_sign(side);
    qb_pf_after_t a;
    r = qb_pf_after(pf, id, s, qty, price, commission, &a);
    if (r != QB_PF_REJECT_NONE) return r;
    return qb_pf_check_after(pf, id, s, &a);
}

qb_pf_reject_t qb_pf_fill(qb_portfolio_t *pf, uint32_t id, qb_side_t side, qb_dec_t qty,
                          qb_dec_t price, qb_dec_t commission) {
    qb_pf_reject_t r = qb_pf_check_args(pf, id, side, qty, price);
    if (r != QB_PF_REJECT_NONE) return r;
    int s = qb_side_sign(side);
    qb_pf_after_t a;
    r = qb_pf_after(pf, id, s, qty, price, commission, &a);
    if (r == QB_PF_REJECT_NONE) r = qb_pf_check_after(pf, id, s, &a);
    if (r != QB_PF_REJECT_NONE) return r;
    return qb_pf_book(pf, id, side, qty, price, commission, &a, NULL, 0) == QB_OK
               ? QB_PF_REJECT_NONE
               : QB_PF_REJECT_OVERFLOW;
}

typedef struct qb_pf_max_ctx_s {
    const qb_portfolio_t *pf;
    const qb_commission_t *comm;
    uint32_t id;
    qb_side_t side;
    qb_dec_t cover, lot, price;
} qb_pf_max_ctx_t;

/* cover + k lots passes qb_portfolio_check_fill with its fee */
static int qb_pf_max_fits(int64_t k, void *arg) {
    const qb_pf_max_ctx_t *c = arg;
    qb_dec_t q, notional, fee = 0;
    if (__builtin_mul_overflow(k, c->lot, &q) || __builtin_add_overflow(q, c->cover, &q))
        return 0;
    if (q == 0) return 1;
    if (!qb_pf_mul(q, c->price, &notional)) return 0;
    if (c->comm && qb_commission_calc(c->comm, q, notional, &fee) != QB_OK) return 0;
    return qb_portfolio_check_fill(c->pf, c->id, c->side, q, c->price, fee) ==
           QB_PF_REJECT_NONE;
}

qb_err_t qb_portfolio_max_qty(const qb_portfolio_t *pf, uint32_t id, qb_side_t side,
                              qb_dec_t price, const qb_commission_t *comm,
                              qb_dec_t lot, qb_dec_t *qty) {
    int s = qb_side_sign(side);
    if (id >= pf->n || s == 0 || price <= 0 || lot <= 0 ||
        (comm && qb_commission_validate(comm, NULL, 0) != QB_OK))
        return QB_ERR_INVALID;
    const qb_pf_hot_t *h = &pf->hot[id];
    if (s < 0 && !pf->cfg.allow_short) {
        *qty = h->qty > 0 ? h->qty : 0;
        return QB_OK;
    }
    /* an opposite position is closed first */
    qb_dec_t cover = (h->qty > 0 && s < 0) || (h->qty < 0 && s > 0) ? h->qty : 0;
    if (cover < 0) cover = -cover;
    /* Guess: the excess plus the margin the cover frees, spent at the
     * side's margin rate (qb_sizing_all_in); the exact check decides. */
    qb_dec_t margin = s > 0 ? pf->cfg.margin_long : pf->cfg.margin_short, money, guess = 0;
    qb_dec_wide_t freed = 0;
    if (cover != 0) {
        qb_dec_t m_old = h->qty > 0 ? pf->cfg.margin_long : pf->cfg.margin_short;
        qb_dec_wide_t amv = h->mv < 0 ? -(qb_dec_wide_t)h->mv : h->mv;
        freed = (qb_dec_wide_t)m_old * amv / QB_DEC_SCALE;
    }
    if (!qb_pf_fit((qb_dec_wide_t)qb_portfolio_excess(pf) + freed, &money)) money = INT64_MAX;
    if (qb_sizing_all_in(money, price, margin, comm, lot, &guess) != QB_OK) guess = 0;
    qb_pf_max_ctx_t c = {pf, comm, id, side, cover, lot, price};
    int64_t k = qb_pf_search_max(guess / lot, qb_pf_max_fits, &c);
    *qty = cover + k * lot; /* it fitted: no overflow */
    return QB_OK;
}

qb_err_t qb_portfolio_deposit(qb_portfolio_t *pf, qb_dec_t amount) {
    qb_dec_t cash, dep;
    if (!qb_pf_fit((qb_dec_wide_t)pf->cash + amount, &cash) ||
        !qb_pf_fit((qb_dec_wide_t)pf->deposits + amount, &dep) ||
        !qb_pf_equity_fits(cash, pf->long_mv, pf->short_mv))
        return QB_ERR_OVERFLOW;
    pf->cash = cash;
    pf->deposits = dep;
    return QB_OK;
}

/* ---- reading ------------------------------------------------------------------------ */

qb_dec_t qb_portfolio_cash(const qb_portfolio_t *pf) { return pf->cash; }
qb_dec_t qb_portfolio_equity(const qb_portfolio_t *pf) {
    return pf->cash + pf->long_mv + pf->short_mv; /* kept in range by every update */
}
qb_dec_t qb_portfolio_long_value(const qb_portfolio_t *pf) { return pf->long_mv; }
qb_dec_t qb_portfolio_short_value(const qb_portfolio_t *pf) { return pf->short_mv; }

qb_dec_t qb_portfolio_margin_used(const qb_portfolio_t *pf) {
    qb_dec_t u;
    return qb_pf_fit(qb_pf_used_wide(&pf->cfg, pf->long_mv, pf->short_mv), &u) ? u
                                                                                 : QB_DEC_MAX;
}

qb_dec_t qb_portfolio_excess(const qb_portfolio_t *pf) {
    qb_dec_wide_t e = (qb_dec_wide_t)qb_portfolio_equity(pf) -
                      qb_pf_used_wide(&pf->cfg, pf->long_mv, pf->short_mv);
    return e < INT64_MIN ? INT64_MIN : (qb_dec_t)e;
}

qb_dec_t qb_portfolio_buying_power(const qb_portfolio_t *pf) {
    qb_dec_t ex = qb_portfolio_excess(pf), bp;
    if (ex <= 0) return 0;
    return qb_dec_div(ex, pf->cfg.margin_long, &bp, QB_ROUND_FLOOR) == QB_OK ? bp
                                                                             : QB_DEC_MAX;
}

qb_dec_t qb_portfolio_initial_cash(const qb_portfolio_t *pf) { return pf->cfg.initial_cash; }
qb_dec_t qb_portfolio_deposits(const qb_portfolio_t *pf) { return pf->deposits; }
qb_dec_t qb_portfolio_realized(const qb_portfolio_t *pf) { return pf->realized; }
qb_dec_t qb_portfolio_commissions(const qb_portfolio_t *pf) { return pf->commissions; }
uint64_t qb_portfolio_fills(const qb_portfolio_t *pf) { return pf->fills; }
const qb_portfolio_config_t *qb_portfolio_config(const qb_portfolio_t *pf) {
    return &pf->cfg;
}

const qb_position_t *qb_portfolio_position(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? &pf->pos[id] : NULL;
}
qb_dec_t qb_portfolio_qty(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? pf->hot[id].qty : 0;
}
qb_dec_t qb_portfolio_mark_price(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? pf->hot[id].mark : 0;
}
qb_dec_t qb_portfolio_market_value(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? pf->hot[id].mv : 0;
}
qb_dec_t qb_portfolio_commission_of(const qb_portfolio_t *pf, uint32_t id) {
    return id < pf->n ? pf->fee[id] : 0;
}

qb_dec_t qb_portfolio_unrealized_of(const qb_portfolio_t *pf, uint32_t id) {
    if (id >= pf->n || pf->hot[id].qty == 0) return 0;
    const qb_pf_hot_t *h = &pf->hot[id];
    qb_dec_t u;
    qb_dec_wide_t diff = (qb_dec_wide_t)h->mark - pf->pos[id].avg_cost;
    /* |qty| <= 2^63 and |diff| < 2^64: the product fits in 127 bits */
    if (qb_dec_div_wide(diff * h->qty, QB_DEC_SCALE, &u, QB_ROUND_HALF_EVEN) != QB_OK)
        return diff > 0 ? QB_DEC_MAX : QB_DEC_MIN;
    return u;
}

qb_dec_t qb_portfolio_unrealized(const qb_portfolio_t *pf) {
    qb_dec_wide_t sum = 0;
    for (uint32_t id = 0; id < pf->n; id++) sum += qb_portfolio_unrealized_of(pf, id);
    qb_dec_t u;
    return qb_pf_fit(sum, &u) ? u : sum > 0 ? QB_DEC_MAX : QB_DEC_MIN;
}
