/* qb_ta_ma.h — SMA and EMA as inline state machines: the one definition of
 * both.
 *
 * Why: the simple and exponential moving averages are the building blocks
 * of many indicators (sma, ema, and the SMAs / EMAs inside bbands, stoch,
 * stochf, stochrsi, macd, trix, keltner, ...) and the whole of the most
 * common strategies (sma_cross, ema_cross), which step them on every bar of
 * every backtest. Through qb_ta_update a step costs a call through the kind
 * table, a switch over MA types and the generic bookkeeping (NaN before the
 * lookback, last outputs) - several times the arithmetic. So the arithmetic
 * lives here, inline, and is used by libs/ta's indicators (qb_ta_kinds.c)
 * AND by callers that step an sma/ema instance's state directly
 * (qb_ta_sma_state / qb_ta_ema_state in qb_ta.h; libs/strategy does). One
 * code path: a value stepped here is bitwise the value qb_ta_update gives,
 * and both are TA-Lib's (tests/unit/test_ta.c checks them against its
 * fixtures).
 *
 * Arithmetic, in TA-Lib's order of operations:
 *   SMA (TA_INT_SMA)  total += x; out = total / p; total -= oldest of the
 *                     window (x of p-1 steps ago). NaN for the first p-1
 *                     inputs (lookback p-1).
 *   EMA (TA_INT_EMA)  inputs before `start` are ignored; the seed is the sum
 *                     of inputs start..start+p-1 divided by p; then
 *                     prev = ((x - prev) * k) + prev with k = 2 / (p + 1).
 *                     NaN before the seed (lookback start + p-1). MACD seeds
 *                     its fast EMA late (start = slow - fast); everything
 *                     else uses start 0.
 *
 * Ownership: the SMA's ring (p doubles) is the caller's (libs/ta allocates
 * it with the instance); the structs are plain values otherwise. */
#ifndef QB_TA_MA_H
#define QB_TA_MA_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- SMA ------------------------------------------------------------------ */

typedef struct qb_ta_sma_s {
    double *ring; /* the last p inputs; slot of the i-th input is i % p */
    double total; /* running sum of the window */
    int p, pos;   /* period; next slot to write (= the oldest input) */
    int64_t n;    /* inputs seen */
} qb_ta_sma_t;

/* ring: p >= 1 zeroed doubles, owned by the caller. */
static inline void qb_ta_sma_init(qb_ta_sma_t *s, double *ring, int p) {
    s->ring = ring;
    s->total = 0;
    s->p = p;
    s->pos = 0;
    s->n = 0;
}

/* The step itself, on the state's fields passed one by one (so a run over
 * many inputs keeps them in registers): feed x, return the SMA of the last
 * p inputs, NaN for the first p-1. */
static inline double qb_ta_sma_step(double *ring, int p, int *pos, double *total, int64_t *n,
                                    double x) {
    ring[*pos] = x;
    if (++*pos == p) *pos = 0;
    *total += x;
    if ((*n)++ < p - 1) return NAN;
    double v = *total / p;
    *total -= ring[*pos]; /* the oldest of the window */
    return v;
}

/* Feed x; the SMA of the last p inputs, NaN for the first p-1. */
static inline double qb_ta_sma_update(qb_ta_sma_t *s, double x) {
    return qb_ta_sma_step(s->ring, s->p, &s->pos, &s->total, &s->n, x);
}

/* Feed x[0..n-1] in order, out[k] = what qb_ta_sma_update(s, x[k]) returns.
 * The same operations in the same order, in two passes: the running sums
 * (a dependency chain of adds) first, then the divisions, which do not
 * depend on each other and go two at a time (IEEE division is correctly
 * rounded whatever the vector width: the same bits). */
typedef double qb_ta_v2d __attribute__((vector_size(16)));
static inline void qb_ta_sma_run(qb_ta_sma_t *s, const double *x, double *out, size_t n) {
    double *ring = s->ring, total = s->total;
    const int p = s->p;
    int pos = s->pos;
    int64_t cnt = s->n;
    for (size_t k = 0; k < n; k++) {
        ring[pos] = x[k];
        if (++pos == p) pos = 0;
        total += x[k];
        if (cnt++ < p - 1) {
            out[k] = NAN;
        } else {
            out[k] = total; /* divided below */
            total -= ring[pos];
        }
    }
    const double dp = (double)p;
    const qb_ta_v2d vp = {dp, dp};
    size_t k = 0;
    for (; k + 2 <= n; k += 2) {
        qb_ta_v2d v;
        memcpy(&v, &out[k], sizeof v);
        v = v / vp;
        memcpy(&out[k], &v, sizeof v);
    }
    for (; k < n; k++) out[k] = out[k] / dp;
    s->total = total;
    s->pos = pos;
    s->n = cnt;
}

/* qb_ta_sma_run on two SMAs of the same inputs at once (a and b distinct):
 * each running sum is a chain of dependent adds (latency bound), so one
 * loop over both overlaps the two chains. Each SMA's operations are the
 * ones qb_ta_sma_run does, in the same order: the same bits. */
static inline void qb_ta_sma_run2(qb_ta_sma_t *a, qb_ta_sma_t *b, const double *x,
                                  double *out_a, double *out_b, size_t n) {
    double *ra = a->ring, *rb = b->ring, ta = a->total, tb = b->total;
    const int pa = a->p, pb = b->p;
    int qa = a->pos, qb = b->pos;
    int64_t ca = a->n, cb = b->n;
    size_t k1 = 0; /* the bars done by the steady loop */
    if (ca >= pa - 1 && cb >= pb - 1) { /* both past the lookback: no NaN to test for */
        for (size_t k = 0; k < n; k++) {
            const double v = x[k];
            ra[qa] = v;
            rb[qb] = v;
            if (++qa == pa) qa = 0;
            if (++qb == pb) qb = 0;
            ta += v;
            tb += v;
            out_a[k] = ta;
            ta -= ra[qa];
            out_b[k] = tb;
            tb -= rb[qb];
        }
        ca += (int64_t)n;
        cb += (int64_t)n;
        k1 = n;
    }
    for (size_t k = k1; k < n; k++) {
        const double v = x[k];
        ra[qa] = v;
        rb[qb] = v;
        if (++qa == pa) qa = 0;
        if (++qb == pb) qb = 0;
        ta += v;
        tb += v;
        if (ca++ < pa - 1) {
            out_a[k] = NAN;
        } else {
            out_a[k] = ta;
            ta -= ra[qa];
        }
        if (cb++ < pb - 1) {
            out_b[k] = NAN;
        } else {
            out_b[k] = tb;
            tb -= rb[qb];
        }
    }
    const qb_ta_v2d va = {(double)pa, (double)pa}, vb = {(double)pb, (double)pb};
    size_t k = 0;
    for (; k + 2 <= n; k += 2) {
        qb_ta_v2d u, w;
        memcpy(&u, &out_a[k], sizeof u);
        memcpy(&w, &out_b[k], sizeof w);
        u = u / va;
        w = w / vb;
        memcpy(&out_a[k], &u, sizeof u);
        memcpy(&out_b[k], &w, sizeof w);
    }
    for (; k < n; k++) {
        out_a[k] = out_a[k] / (double)pa;
        out_b[k] = out_b[k] / (double)pb;
    }
    a->total = ta;
    a->pos = qa;
    a->n = ca;
    b->total = tb;
    b->pos = qb;
    b->n = cb;
}

/* ---- EMA ------------------------------------------------------------------ */

typedef struct qb_ta_ema_s {
    double k, sum, prev; /* smoothing 2/(p+1); seed sum; last value */
    int p;
    int64_t n, start;    /* inputs seen; first input used */
} qb_ta_ema_t;

static inline void qb_ta_ema_init(qb_ta_ema_t *e, int p, int64_t start) {
    e->k = (double)2.0 / ((double)(p + 1)); /* TA-Lib's PER_TO_K */
    e->sum = e->prev = 0;
    e->p = p;
    e->n = 0;
    e->start = start;
}

/* The step on the state's fields (see qb_ta_sma_step): feed x, return the
 * EMA, NaN before the seed. */
static inline double qb_ta_ema_step(double k, int p, int64_t start, double *sum, double *prev,
                                    int64_t *cnt, double x) {
    int64_t n = (*cnt)++;
    if (n < start) return NAN;
    n -= start;
    if (n < p - 1) {
        *sum += x;
        return NAN;
    }
    if (n == p - 1) {
        *sum += x;
        *prev = *sum / p;
        return *prev;
    }
    *prev = ((x - *prev) * k) + *prev;
    return *prev;
}

/* Feed x; the EMA, NaN before the seed. */
static inline double qb_ta_ema_update(qb_ta_ema_t *e, double x) {
    return qb_ta_ema_step(e->k, e->p, e->start, &e->sum, &e->prev, &e->n, x);
}

/* Feed x[0..n-1] in order, out[k] = what qb_ta_ema_update(e, x[k]) returns. */
static inline void qb_ta_ema_run(qb_ta_ema_t *e, const double *x, double *out, size_t n) {
    double sum = e->sum, prev = e->prev;
    int64_t cnt = e->n;
    for (size_t k = 0; k < n; k++)
        out[k] = qb_ta_ema_step(e->k, e->p, e->start, &sum, &prev, &cnt, x[k]);
    e->sum = sum;
    e->prev = prev;
    e->n = cnt;
}

#endif
