/* qb_ta_kinds.c — every indicator, defined once as a streaming state
 * machine (see qb_ta_int.h for the contract and qb_ta.h for the list).
 *
 * Matching TA-Lib. Each update reproduces the arithmetic of TA-Lib's batch
 * code (ta_func/ta_*.c, default compatibility, unstable period 0, startIdx
 * 0) in the same order of operations: running sums are added to before
 * the trailing value is subtracted where TA-Lib does so, Wilder smoothing
 * is `prev *= n-1; prev += x; prev /= n` where TA-Lib writes it that way,
 * EMAs are seeded with the plain sum of the first `period` inputs divided
 * by period, thresholds use TA-Lib's TA_IS_ZERO (|v| < 1e-14). So the
 * results are normally bitwise equal to TA-Lib's; the bar is 1e-9 relative.
 *
 * Building blocks at the top (ring buffer, SMA, EMA, WMA, TRIMA, KAMA, a
 * generic MA by TA-Lib MA type, variance, Wilder gain/loss, sliding
 * min/max), then one section per indicator: state struct, init, update,
 * and finally the kind table.
 *
 * Sliding min/max: a monotonic deque (amortised O(1)) that keeps the most
 * recent index among equal extremes, which is what TA-Lib's AROON picks
 * (its rescans use <= and >=); STOCH/WILLR/Donchian only need the value. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ta/qb_ta_int.h"
#include "ta/qb_ta_ma.h"

#define TA_EPS 0.00000000000001 /* TA-Lib's TA_EPSILON */
#define TA_IS_ZERO(v) ((-TA_EPS < (v)) && ((v) < TA_EPS))
#define TA_IS_ZERO_OR_NEG(v) ((v) < TA_EPS)
#define PER_TO_K(per) ((double)2.0 / ((double)((per) + 1)))

/* ======================================================================
 * Building blocks
 * ====================================================================== */

/* Ring of the last `cap` values. Slot of the i-th push is i % cap (CCI
 * relies on this memory order, as TA-Lib's circular buffer). */
typedef struct ring_s {
    double *v;
    int cap, pos; /* pos: next slot to write */
} ring_t;

static void ring_init(qb_ta_t *ta, ring_t *r, int cap) {
    r->v = ta_alloc(ta, (size_t)cap);
    r->cap = cap;
    r->pos = 0;
}
static inline void ring_push(ring_t *r, double x) {
    r->v[r->pos] = x;
    if (++r->pos == r->cap) r->pos = 0;
}
/* Value pushed k pushes ago (0 = the latest); k < cap. */
static inline double ring_ago(const ring_t *r, int k) {
    int i = r->pos - 1 - k;
    if (i < 0) i += r->cap;
    return r->v[i];
}

/* ---- SMA (TA_INT_SMA) and EMA (TA_INT_EMA): qb_ta_ma.h ----
 * The inline definitions shared with callers that step an sma/ema
 * instance directly (qb_ta_sma_state / qb_ta_ema_state). */
typedef qb_ta_sma_t sma_t;
typedef qb_ta_ema_t ema_t;

static void sma_init(qb_ta_t *ta, sma_t *s, int p) {
    qb_ta_sma_init(s, ta_alloc(ta, (size_t)p), p);
}
#define sma_update qb_ta_sma_update
#define ema_init qb_ta_ema_init
#define ema_update qb_ta_ema_update

/* ---- WMA (TA_WMA) ---- */
typedef struct wma_s {
    ring_t r;
    double sum, sub, trailing;
    int p, divider;
    int64_t n;
} wma_t;

static void wma_init(qb_ta_t *ta, wma_t *w, int p) {
    ring_init(ta, &w->r, p);
    w->sum = w->sub = w->trailing = 0;
    w->p = p;
    w->divider = (p * (p + 1)) >> 1;
    w->n = 0;
}
static inline double wma_update(wma_t *w, double x) {
    ring_push(&w->r, x);
    int64_t n = w->n++;
    if (n < w->p - 1) {
        w->sub += x;
        w->sum += x * (double)(n + 1);
        return NAN;
    }
    w->sub += x;
    w->sub -= w->trailing;
    w->sum += x * w->p;
    w->trailing = ring_ago(&w->r, w->p - 1);
    double v = w->sum / w->divider;
    w->sum -= w->sub;
    return v;
}

/* ---- TRIMA (TA_TRIMA: the numerator/numeratorSub/numeratorAdd walk) ---- */
typedef struct trima_s {
    ring_t r; /* last p+1 inputs */
    double num, sub, add, factor;
    int p, m;
    int64_t n;
} trima_t;

static void trima_init(qb_ta_t *ta, trima_t *s, int p) {
    ring_init(ta, &s->r, p + 1);
    s->p = p;
    s->m = p >> 1;
    s->factor = (p % 2 == 1) ? 1.0 / ((double)(s->m + 1) * (s->m + 1))
                             : 1.0 / ((double)s->m * (s->m + 1));
    s->num = s->sub = s->add = 0;
    s->n = 0;
}
static double trima_update(trima_t *s, double x) {
    ring_push(&s->r, x);
    int64_t n = s->n++;
    int p = s->p, m = s->m;
    if (n < p - 1) return NAN;
    if (n == p - 1) {
        /* Window x[0..p-1] is ring_ago(p-1 .. 0). Odd: sub over the middle
         * m down to 0, add over m+1..p-1; even: sub over m-1 down to 0. */
        int mid = (p % 2 == 1) ? m : m - 1;
        s->num = s->sub = s->add = 0;
        for (int i = mid; i >= 0; i--) {
            s->sub += ring_ago(&s->r, p - 1 - i);
            s->num += s->sub;
        }
        for (int i = mid + 1; i <= p - 1; i++) {
            s->add += ring_ago(&s->r, p - 1 - i);
            s->num += s->add;
        }
        return s->num * s->factor;
    }
    double old = ring_ago(&s->r, p), mid = ring_ago(&s->r, m);
    s->num -= s->sub;
    s->sub -= old;
    s->sub += mid;
    if (p % 2 == 1) {
        s->num += s->add;
        s->add -= mid;
    } else {
        s->add -= mid;
        s->num += s->add;
    }
    s->add += x;
    s->num += x;
    return s->num * s->factor;
}

/* ---- KAMA (TA_KAMA: fast 2, slow 30) ---- */
typedef struct kama_s {
    ring_t r; /* last p+1 inputs */
    double sum_roc1, prev, trailing;
    int p;
    int64_t n;
} kama_t;

static void kama_init(qb_ta_t *ta, kama_t *s, int p) {
    ring_init(ta, &s->r, p + 1);
    s->sum_roc1 = s->prev = s->trailing = 0;
    s->p = p;
    s->n = 0;
}
static double kama_sc(double sum_roc1, double period_roc) {
    const double const_max = 2.0 / (30.0 + 1.0);
    const double const_diff = 2.0 / (2.0 + 1.0) - const_max;
    double t;
    if ((sum_roc1 <= period_roc) || TA_IS_ZERO(sum_roc1)) t = 1.0;
    else t = fabs(period_roc / sum_roc1);
    t = (t * const_diff) + const_max;
    return t * t;
}
static double kama_update(kama_t *s, double x) {
    ring_push(&s->r, x);
    int64_t n = s->n++;
    int p = s->p;
    if (n == 0) return NAN;
    double prevx = ring_ago(&s->r, 1);
    if (n < p) {
        s->sum_roc1 += fabs(prevx - x);
        return NAN;
    }
    double trail = ring_ago(&s->r, p);
    double period_roc = x - trail;
    if (n == p) {
        s->sum_roc1 += fabs(prevx - x);
        s->prev = prevx;
    } else {
        s->sum_roc1 -= fabs(s->trailing - trail);
        s->sum_roc1 += fabs(x - prevx);
    }
    s->trailing = trail;
    double sc = kama_sc(s->sum_roc1, period_roc);
    s->prev = ((x - s->prev) * sc) + s->prev;
    return s->prev;
}

/* ---- generic MA by TA-Lib MA type (TA_MA with startIdx 0) ---- */
enum { MA_SMA = 0, MA_EMA = 1, MA_WMA = 2, MA_DEMA = 3, MA_TEMA = 4, MA_TRIMA = 5,
       MA_KAMA = 6, MA_NTYPES = 7 };

typedef struct ma_s {
    int type;
    union {
        sma_t sma;
        ema_t ema[3]; /* EMA, DEMA, TEMA */
        wma_t wma;
        trima_t trima;
        kama_t kama;
    } u;
} ma_t;

static int ma_lookback(int type, int p) {
    switch (type) {
    case MA_DEMA: return 2 * (p - 1);
    case MA_TEMA: return 3 * (p - 1);
    case MA_KAMA: return p;
    default: return p - 1;
    }
}
static void ma_init(qb_ta_t *ta, ma_t *m, int type, int p) {
    m->type = type;
    switch (type) {
    case MA_SMA: sma_init(ta, &m->u.sma, p); break;
    case MA_WMA: wma_init(ta, &m->u.wma, p); break;
    case MA_TRIMA: trima_init(ta, &m->u.trima, p); break;
    case MA_KAMA: kama_init(ta, &m->u.kama, p); break;
    default:
        for (int i = 0; i < 3; i++) ema_init(&m->u.ema[i], p, 0);
    }
}
static double ma_update(ma_t *m, double x) {
    double e1, e2;
    switch (m->type) {
    case MA_SMA: return sma_update(&m->u.sma, x);
    case MA_EMA: return ema_update(&m->u.ema[0], x);
    case MA_WMA: return wma_update(&m->u.wma, x);
    case MA_TRIMA: return trima_update(&m->u.trima, x);
    case MA_KAMA: return kama_update(&m->u.kama, x);
    case MA_DEMA:
        e1 = ema_update(&m->u.ema[0], x);
        if (m->u.ema[0].n < m->u.ema[0].p) return NAN;
        e2 = ema_update(&m->u.ema[1], e1);
        return (2.0 * e1) - e2;
    default: /* TEMA */
        e1 = ema_update(&m->u.ema[0], x);
        if (m->u.ema[0].n < m->u.ema[0].p) return NAN;
        e2 = ema_update(&m->u.ema[1], e1);
        if (m->u.ema[1].n < m->u.ema[1].p) return NAN;
        return ema_update(&m->u.ema[2], e2) + ((3.0 * e1) - (3.0 * e2));
    }
}

/* ---- variance over a window (TA_INT_VAR), starting at input `start` ---- */
typedef struct var_s {
    ring_t r;
    double t1, t2, mean; /* mean: of the last full window */
    int p;
    int64_t n, start;
} var_t;

static void var_init(qb_ta_t *ta, var_t *v, int p, int64_t start) {
    ring_init(ta, &v->r, p);
    v->t1 = v->t2 = v->mean = 0;
    v->p = p;
    v->n = 0;
    v->start = start;
}
static inline double var_update(var_t *v, double x) {
    int64_t n = v->n++;
    if (n < v->start) return NAN;
    n -= v->start;
    ring_push(&v->r, x);
    v->t1 += x;
    v->t2 += x * x;
    if (n < v->p - 1) return NAN;
    double m1 = v->t1 / v->p, m2 = v->t2 / v->p;
    double old = ring_ago(&v->r, v->p - 1);
    v->t1 -= old;
    v->t2 -= old * old;
    v->mean = m1;
    return m2 - m1 * m1;
}

/* ---- Wilder-smoothed average gain and loss (RSI, CMO) ---- */
typedef struct gl_s {
    double prev, gain, loss;
    int p;
    int64_t n;
} gl_t;

/* Returns 1 once gain/loss hold a value (from input p on). */
static inline int gl_update(gl_t *g, double x) {
    int64_t n = g->n++;
    if (n == 0) {
        g->prev = x;
        g->gain = g->loss = 0;
        return 0;
    }
    double d = x - g->prev;
    g->prev = x;
    if (n <= g->p) {
        if (d < 0) g->loss -= d;
        else g->gain += d;
        if (n < g->p) return 0;
        g->loss /= g->p;
        g->gain /= g->p;
        return 1;
    }
    g->loss *= (g->p - 1);
    g->gain *= (g->p - 1);
    if (d < 0) g->loss -= d;
    else g->gain += d;
    g->loss /= g->p;
    g->gain /= g->p;
    return 1;
}

/* ---- sliding extreme over the last w inputs (monotonic deque) ---- */
typedef struct mono_s {
    double *v; /* values, capacity w */
    double *ix; /* their input indexes (as double: exact below 2^53) */
    int w, head, len;
    int is_max;
    int64_t n;
} mono_t;

static void mono_init(qb_ta_t *ta, mono_t *m, int w, int is_max) {
    m->v = ta_alloc(ta, (size_t)w);
    m->ix = ta_alloc(ta, (size_t)w);
    m->w = w;
    m->head = m->len = 0;
    m->is_max = is_max;
    m->n = 0;
}
/* Push input x; afterwards the front is the extreme of the last w inputs,
 * the most recent one among equals. */
static inline void mono_push(mono_t *m, double x) {
    int64_t i = m->n++;
    /* drop the front when it left the window */
    if (m->len && m->ix[m->head] <= (double)(i - m->w)) {
        if (++m->head == m->w) m->head = 0;
        m->len--;
    }
    /* drop from the back everything x beats or equals */
    while (m->len) {
        int b = m->head + m->len - 1;
        if (b >= m->w) b -= m->w;
        if (m->is_max ? (m->v[b] <= x) : (m->v[b] >= x)) m->len--;
        else break;
    }
    int s = m->head + m->len;
    if (s >= m->w) s -= m->w;
    m->v[s] = x;
    m->ix[s] = (double)i;
    m->len++;
}
static inline double mono_value(const mono_t *m) { return m->v[m->head]; }
static inline int64_t mono_index(const mono_t *m) { return (int64_t)m->ix[m->head]; }

/* True range of a bar given the previous close (TA_TRANGE order). */
static inline double true_range(double h, double l, double yc) {
    double g = h - l, v;
    v = fabs(yc - h);
    if (v > g) g = v;
    v = fabs(yc - l);
    if (v > g) g = v;
    return g;
}

/* ---- Wilder ATR (TA_ATR) ---- */
typedef struct atr_s {
    double prev_close, sum, atr;
    int p;
    int64_t n;
} atr_t;

static void atr_init(atr_t *a, int p) {
    memset(a, 0, sizeof *a);
    a->p = p;
}
/* Returns 1 once a->atr holds a value (from bar p on). */
static inline int atr_update(atr_t *a, const qb_ta_bar_t *b) {
    int64_t n = a->n++;
    double yc = a->prev_close;
    a->prev_close = b->close;
    if (n == 0) return 0;
    double tr = true_range(b->high, b->low, yc);
    if (n < a->p) {
        a->sum += tr;
        return 0;
    }
    if (n == a->p) {
        a->sum += tr;
        a->atr = a->sum / a->p;
        return 1;
    }
    a->atr *= a->p - 1;
    a->atr += tr;
    a->atr /= a->p;
    return 1;
}

#define ST(type) type *s = (type *)ta->st
#define P(i) (ta->ip[i])
#define PD(i) (ta->p[i])

/* ======================================================================
 * Indicators
 * ====================================================================== */

/* ---- sma ema wma dema tema trima kama: one MA each ---- */
typedef struct ma_state_s {
    ma_t ma;
} ma_state_t;

static qb_err_t ma_kind_init(qb_ta_t *ta, int type) {
    ST(ma_state_t);
    ma_init(ta, &s->ma, type, P(0));
    ta->lookback = ma_lookback(type, P(0));
    return QB_OK;
}
static void ma_kind_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ma_state_t);
    out[0] = ma_update(&s->ma, b->close);
}
#define MA_KIND_INIT(NAME, TYPE)                                                   \
    static qb_err_t k_##NAME##_init(qb_ta_t *ta, char *e, size_t n) {               \
        (void)e;                                                                   \
        (void)n;                                                                   \
        return ma_kind_init(ta, TYPE);                                             \
    }
/* sma and ema step their one MA directly (no switch over MA types): the
 * same inline code as a caller stepping qb_ta_sma_state / qb_ta_ema_state. */
static void k_sma_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ma_state_t);
    out[0] = qb_ta_sma_update(&s->ma.u.sma, b->close);
}
static void k_ema_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ma_state_t);
    out[0] = qb_ta_ema_update(&s->ma.u.ema[0], b->close);
}

qb_ta_sma_t *qb_ta_sma_state(qb_ta_t *ta) {
    return ta && ta->kind->update == k_sma_update ? &((ma_state_t *)ta->st)->ma.u.sma : NULL;
}
qb_ta_ema_t *qb_ta_ema_state(qb_ta_t *ta) {
    return ta && ta->kind->update == k_ema_update ? &((ma_state_t *)ta->st)->ma.u.ema[0] : NULL;
}

MA_KIND_INIT(sma, MA_SMA)
MA_KIND_INIT(ema, MA_EMA)
MA_KIND_INIT(wma, MA_WMA)
MA_KIND_INIT(dema, MA_DEMA)
MA_KIND_INIT(tema, MA_TEMA)
MA_KIND_INIT(trima, MA_TRIMA)
MA_KIND_INIT(kama, MA_KAMA)

/* ---- rsi, cmo ---- */
typedef struct gl_state_s {
    gl_t gl;
} gl_state_t;

static qb_err_t rsi_init(qb_ta_t *ta, char *e, size_t n) {
    ST(gl_state_t);
    s->gl.p = P(0);
    ta->lookback = P(0);
    return QB_OK;
}
static void rsi_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(gl_state_t);
    if (!gl_update(&s->gl, b->close)) return;
    double sum = s->gl.gain + s->gl.loss;
    out[0] = !TA_IS_ZERO(sum) ? 100.0 * (s->gl.gain / sum) : 0.0;
}
static void cmo_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(gl_state_t);
    if (!gl_update(&s->gl, b->close)) return;
    double sum = s->gl.gain + s->gl.loss;
    out[0] = !TA_IS_ZERO(sum) ? 100.0 * ((s->gl.gain - s->gl.loss) / sum) : 0.0;
}

/* ---- macd ---- */
typedef struct macd_state_s {
    ema_t fast, slow, signal;
    int64_t n, first; /* first: bar of the first macd value (slow-1) */
} macd_state_t;

static qb_err_t macd_init(qb_ta_t *ta, char *e, size_t n) {
    ST(macd_state_t);
    int fast = P(0), slow = P(1), sig = P(2);
    if (slow <= fast)
        return qb_err_set(e, n, QB_ERR_INVALID, "macd: slow (%d) must be > fast (%d)", slow,
                          fast);
    /* TA_MACD starts both EMAs at the same index (startIdx - signal
     * lookback): with startIdx 0 the slow EMA is seeded over bars
     * 0..slow-1 and the fast EMA over bars slow-fast..slow-1, so the MACD
     * line starts at bar slow-1. (TA-Lib swaps slow < fast; we refuse.) */
    ema_init(&s->slow, slow, 0);
    ema_init(&s->fast, fast, slow - fast);
    ema_init(&s->signal, sig, 0);
    s->first = slow - 1;
    ta->lookback = (slow - 1) + (sig - 1);
    return QB_OK;
}
static void macd_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(macd_state_t);
    double sl = ema_update(&s->slow, b->close);
    double fa = ema_update(&s->fast, b->close);
    if (s->n++ < s->first) return;
    double m = fa - sl;
    double sg = ema_update(&s->signal, m);
    out[0] = m;
    out[1] = sg;
    out[2] = m - sg;
}

/* ---- bbands ---- */
typedef struct bbands_state_s {
    ma_t ma;
    sma_t sq;  /* SMA type: running sum of squares (INT_stddev_using_precalc_ma) */
    var_t var; /* other types: TA_STDDEV from the MA's first output */
} bbands_state_t;

static qb_err_t bbands_init(qb_ta_t *ta, char *e, size_t n) {
    ST(bbands_state_t);
    int p = P(0), type = P(3);
    ma_init(ta, &s->ma, type, p);
    ta->lookback = ma_lookback(type, p);
    if (type == MA_SMA) sma_init(ta, &s->sq, p);
    else var_init(ta, &s->var, p, ta->lookback - (p - 1));
    return QB_OK;
}
static void bbands_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(bbands_state_t);
    double x = b->close, mid = ma_update(&s->ma, x), sd;
    if (s->ma.type == MA_SMA) {
        /* meanValue2 = sum(x^2)/p (sum kept as TA-Lib: add, then drop the
         * oldest), minus the SMA squared */
        double m2 = sma_update(&s->sq, x * x);
        if (isnan(m2)) return;
        m2 -= mid * mid;
        sd = !TA_IS_ZERO_OR_NEG(m2) ? sqrt(m2) : 0.0;
    } else {
        double v = var_update(&s->var, x);
        if (isnan(v)) return;
        sd = !TA_IS_ZERO_OR_NEG(v) ? sqrt(v) : 0.0;
    }
    out[0] = mid + sd * PD(1);
    out[1] = mid;
    out[2] = mid - sd * PD(2);
}

/* ---- atr, natr, trange ---- */
typedef struct atr_state_s {
    atr_t atr;
} atr_state_t;

static qb_err_t atr_kind_init(qb_ta_t *ta, char *e, size_t n) {
    ST(atr_state_t);
    atr_init(&s->atr, P(0));
    ta->lookback = P(0);
    return QB_OK;
}
static void atr_update_k(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(atr_state_t);
    if (atr_update(&s->atr, b)) out[0] = s->atr.atr;
}
static void natr_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(atr_state_t);
    if (!atr_update(&s->atr, b)) return;
    out[0] = !TA_IS_ZERO(b->close) ? (s->atr.atr / b->close) * 100.0 : 0.0;
}

typedef struct trange_state_s {
    double prev_close;
    int64_t n;
} trange_state_t;

static qb_err_t trange_init(qb_ta_t *ta, char *e, size_t n) {
    ta->lookback = 1;
    return QB_OK;
}
static void trange_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(trange_state_t);
    if (s->n++ > 0) out[0] = true_range(b->high, b->low, s->prev_close);
    s->prev_close = b->close;
}

/* ---- fast %K shared by stoch, stochf, stochrsi ---- */
typedef struct fastk_s {
    mono_t hi, lo;
    int p;
    int64_t n;
} fastk_t;

static void fastk_init(qb_ta_t *ta, fastk_t *k, int p) {
    mono_init(ta, &k->hi, p, 1);
    mono_init(ta, &k->lo, p, 0);
    k->p = p;
    k->n = 0;
}
/* NaN until p inputs have been seen. */
static inline double fastk_update(fastk_t *k, double h, double l, double c) {
    mono_push(&k->lo, l);
    mono_push(&k->hi, h);
    if (k->n++ < k->p - 1) return NAN;
    double lowest = mono_value(&k->lo), highest = mono_value(&k->hi);
    double diff = (highest - lowest) / 100.0;
    return diff != 0.0 ? (c - lowest) / diff : 0.0;
}

typedef struct stoch_state_s {
    gl_t gl; /* stochrsi only */
    fastk_t k;
    sma_t s1, s2;
} stoch_state_t;

static qb_err_t stoch_init(qb_ta_t *ta, char *e, size_t n) {
    ST(stoch_state_t);
    fastk_init(ta, &s->k, P(0));
    sma_init(ta, &s->s1, P(1));
    sma_init(ta, &s->s2, P(2));
    ta->lookback = (P(0) - 1) + (P(1) - 1) + (P(2) - 1);
    return QB_OK;
}
static void stoch_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(stoch_state_t);
    double k = fastk_update(&s->k, b->high, b->low, b->close);
    if (s->k.n < s->k.p) return;
    double slowk = sma_update(&s->s1, k);
    if (s->s1.n < s->s1.p) return;
    out[1] = sma_update(&s->s2, slowk);
    out[0] = slowk;
}

static qb_err_t stochf_init(qb_ta_t *ta, char *e, size_t n) {
    ST(stoch_state_t);
    fastk_init(ta, &s->k, P(0));
    sma_init(ta, &s->s1, P(1));
    ta->lookback = (P(0) - 1) + (P(1) - 1);
    return QB_OK;
}
static void stochf_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(stoch_state_t);
    double k = fastk_update(&s->k, b->high, b->low, b->close);
    if (s->k.n < s->k.p) return;
    out[0] = k;
    out[1] = sma_update(&s->s1, k);
}

static qb_err_t stochrsi_init(qb_ta_t *ta, char *e, size_t n) {
    ST(stoch_state_t);
    s->gl.p = P(0);
    fastk_init(ta, &s->k, P(1));
    sma_init(ta, &s->s1, P(2));
    ta->lookback = P(0) + (P(1) - 1) + (P(2) - 1);
    return QB_OK;
}
static void stochrsi_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(stoch_state_t);
    if (!gl_update(&s->gl, b->close)) return;
    double sum = s->gl.gain + s->gl.loss;
    double rsi = !TA_IS_ZERO(sum) ? 100.0 * (s->gl.gain / sum) : 0.0;
    double k = fastk_update(&s->k, rsi, rsi, rsi);
    if (s->k.n < s->k.p) return;
    out[0] = k;
    out[1] = sma_update(&s->s1, k);
}

/* ---- directional movement: adx, plus_di, minus_di ---- */
typedef struct dm_state_s {
    double ph, pl, pc;      /* previous high, low, close */
    double pdm, mdm, tr;    /* smoothed +DM, -DM, TR */
    double sum_dx, adx;
    int p;
    int64_t n;
} dm_state_t;

static qb_err_t dm_init(qb_ta_t *ta, char *e, size_t n) {
    ST(dm_state_t);
    s->p = P(0);
    return QB_OK;
}
static qb_err_t adx_init(qb_ta_t *ta, char *e, size_t n) {
    ta->lookback = 2 * P(0) - 1;
    return dm_init(ta, e, n);
}
static qb_err_t di_init(qb_ta_t *ta, char *e, size_t n) {
    ta->lookback = P(0) > 1 ? P(0) : 1;
    return dm_init(ta, e, n);
}

static void adx_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(dm_state_t);
    int64_t n = s->n++;
    int p = s->p;
    if (n == 0) {
        s->ph = b->high;
        s->pl = b->low;
        s->pc = b->close;
        return;
    }
    double diffp = b->high - s->ph, diffm = s->pl - b->low;
    s->ph = b->high;
    s->pl = b->low;
    double tr = true_range(s->ph, s->pl, s->pc);
    s->pc = b->close;
    if (n < p) { /* bars 1..p-1: plain sums */
        if ((diffm > 0) && (diffp < diffm)) s->mdm += diffm;
        else if ((diffp > 0) && (diffp > diffm)) s->pdm += diffp;
        s->tr += tr;
        return;
    }
    s->mdm -= s->mdm / p;
    s->pdm -= s->pdm / p;
    if ((diffm > 0) && (diffp < diffm)) s->mdm += diffm;
    else if ((diffp > 0) && (diffp > diffm)) s->pdm += diffp;
    s->tr = s->tr - (s->tr / p) + tr;
    int have_dx = 0;
    double dx = 0;
    if (!TA_IS_ZERO(s->tr)) {
        double mdi = 100.0 * (s->mdm / s->tr), pdi = 100.0 * (s->pdm / s->tr);
        double sum = mdi + pdi;
        if (!TA_IS_ZERO(sum)) {
            dx = 100.0 * (fabs(mdi - pdi) / sum);
            have_dx = 1;
        }
    }
    if (n < 2 * p - 1) { /* bars p..2p-2: sum the DX */
        if (have_dx) s->sum_dx += dx;
        return;
    }
    if (n == 2 * p - 1) {
        if (have_dx) s->sum_dx += dx;
        s->adx = s->sum_dx / p;
    } else if (have_dx) {
        s->adx = ((s->adx * (p - 1)) + dx) / p;
    }
    out[0] = s->adx;
}

/* plus = 1: PLUS_DI, 0: MINUS_DI */
static inline void di_step(dm_state_t *s, const qb_ta_bar_t *b, int plus, double *out) {
    int64_t n = s->n++;
    int p = s->p;
    if (n == 0) {
        s->ph = b->high;
        s->pl = b->low;
        s->pc = b->close;
        return;
    }
    double diffp = b->high - s->ph, diffm = s->pl - b->low;
    s->ph = b->high;
    s->pl = b->low;
    double tr = true_range(s->ph, s->pl, s->pc);
    s->pc = b->close;
    int is_dm = plus ? ((diffp > 0) && (diffp > diffm)) : ((diffm > 0) && (diffp < diffm));
    double d = plus ? diffp : diffm;
    if (p <= 1) { /* TA-Lib's period-1 form: DM/TR, not scaled by 100 */
        out[0] = (is_dm && !TA_IS_ZERO(tr)) ? d / tr : 0.0;
        return;
    }
    if (n < p) {
        if (is_dm) s->pdm += d;
        s->tr += tr;
        return;
    }
    if (is_dm) s->pdm = s->pdm - (s->pdm / p) + d;
    else s->pdm = s->pdm - (s->pdm / p);
    s->tr = s->tr - (s->tr / p) + tr;
    out[0] = !TA_IS_ZERO(s->tr) ? 100.0 * (s->pdm / s->tr) : 0.0;
}
static void plus_di_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    di_step((dm_state_t *)ta->st, b, 1, out);
}
static void minus_di_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    di_step((dm_state_t *)ta->st, b, 0, out);
}

/* ---- cci: O(period) per bar (mean absolute deviation over the window) ---- */
typedef struct cci_state_s {
    ring_t r;
    int p;
    int64_t n;
} cci_state_t;

static qb_err_t cci_init(qb_ta_t *ta, char *e, size_t n) {
    ST(cci_state_t);
    ring_init(ta, &s->r, P(0));
    s->p = P(0);
    ta->lookback = P(0) - 1;
    return QB_OK;
}
static void cci_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(cci_state_t);
    double last = (b->high + b->low + b->close) / 3;
    ring_push(&s->r, last);
    if (s->n++ < s->p - 1) return;
    int p = s->p;
    const double *v = s->r.v;
    double avg = 0;
    for (int j = 0; j < p; j++) avg += v[j]; /* memory order, as TA-Lib */
    avg /= p;
    double md = 0;
    for (int j = 0; j < p; j++) md += fabs(v[j] - avg);
    double d = last - avg;
    out[0] = (d != 0.0 && md != 0.0) ? d / (0.015 * (md / p)) : 0.0;
}

/* ---- roc, mom, logret: against the input `period` bars ago ---- */
typedef struct lag_state_s {
    ring_t r;
    int p;
    int64_t n;
} lag_state_t;

static qb_err_t lag_init(qb_ta_t *ta, char *e, size_t n) {
    ST(lag_state_t);
    ring_init(ta, &s->r, P(0) + 1);
    s->p = P(0);
    ta->lookback = P(0);
    return QB_OK;
}
static inline int lag_step(lag_state_t *s, double x, double *old) {
    ring_push(&s->r, x);
    if (s->n++ < s->p) return 0;
    *old = ring_ago(&s->r, s->p);
    return 1;
}
static void roc_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(lag_state_t);
    double old;
    if (lag_step(s, b->close, &old))
        out[0] = old != 0.0 ? ((b->close / old) - 1.0) * 100.0 : 0.0;
}
static void mom_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(lag_state_t);
    double old;
    if (lag_step(s, b->close, &old)) out[0] = b->close - old;
}
static void logret_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(lag_state_t);
    double old;
    if (lag_step(s, b->close, &old)) out[0] = log(b->close / old);
}

/* ---- willr, donchian, aroon: sliding extremes ---- */
typedef struct ext_state_s {
    mono_t hi, lo;
    int p;
    int64_t n;
} ext_state_t;

static qb_err_t willr_init(qb_ta_t *ta, char *e, size_t n) {
    ST(ext_state_t);
    mono_init(ta, &s->hi, P(0), 1);
    mono_init(ta, &s->lo, P(0), 0);
    s->p = P(0);
    ta->lookback = P(0) - 1;
    return QB_OK;
}
static void willr_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ext_state_t);
    mono_push(&s->lo, b->low);
    mono_push(&s->hi, b->high);
    if (s->n++ < s->p - 1) return;
    double hi = mono_value(&s->hi), lo = mono_value(&s->lo);
    double diff = (hi - lo) / (-100.0);
    out[0] = diff != 0.0 ? (hi - b->close) / diff : 0.0;
}
static void donchian_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ext_state_t);
    mono_push(&s->lo, b->low);
    mono_push(&s->hi, b->high);
    if (s->n++ < s->p - 1) return;
    double hi = mono_value(&s->hi), lo = mono_value(&s->lo);
    out[0] = hi;
    out[1] = (hi + lo) / 2.0;
    out[2] = lo;
}
static qb_err_t aroon_init(qb_ta_t *ta, char *e, size_t n) {
    ST(ext_state_t);
    mono_init(ta, &s->hi, P(0) + 1, 1); /* window: the bar and p before it */
    mono_init(ta, &s->lo, P(0) + 1, 0);
    s->p = P(0);
    ta->lookback = P(0);
    return QB_OK;
}
static void aroon_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ext_state_t);
    mono_push(&s->lo, b->low);
    mono_push(&s->hi, b->high);
    int64_t t = s->n++;
    if (t < s->p) return;
    double factor = (double)100.0 / (double)s->p;
    out[0] = factor * (double)(s->p - (t - mono_index(&s->lo)));
    out[1] = factor * (double)(s->p - (t - mono_index(&s->hi)));
}

/* ---- mfi ---- */
typedef struct mfi_state_s {
    ring_t pos, neg;
    double pos_sum, neg_sum, prev_tp;
    int p;
    int64_t n;
} mfi_state_t;

static qb_err_t mfi_init(qb_ta_t *ta, char *e, size_t n) {
    ST(mfi_state_t);
    ring_init(ta, &s->pos, P(0));
    ring_init(ta, &s->neg, P(0));
    s->p = P(0);
    ta->lookback = P(0);
    return QB_OK;
}
static void mfi_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(mfi_state_t);
    int64_t n = s->n++;
    double tp = (b->high + b->low + b->close) / 3.0;
    if (n == 0) {
        s->prev_tp = tp;
        return;
    }
    if (n > s->p) { /* drop the flow leaving the window (slot about to be reused) */
        s->pos_sum -= s->pos.v[s->pos.pos];
        s->neg_sum -= s->neg.v[s->neg.pos];
    }
    double d = tp - s->prev_tp;
    s->prev_tp = tp;
    double mf = tp * b->volume;
    double pf = 0.0, nf = 0.0;
    if (d < 0) {
        nf = mf;
        s->neg_sum += mf;
    } else if (d > 0) {
        pf = mf;
        s->pos_sum += mf;
    }
    ring_push(&s->pos, pf);
    ring_push(&s->neg, nf);
    if (n < s->p) return;
    double sum = s->pos_sum + s->neg_sum;
    out[0] = sum < 1.0 ? 0.0 : 100.0 * (s->pos_sum / sum);
}

/* ---- obv, ad, adosc ---- */
typedef struct vol_state_s {
    double obv, prev, ad, fast, slow, kf, ks;
    int64_t n;
} vol_state_t;

static qb_err_t zero_lookback_init(qb_ta_t *ta, char *e, size_t n) {
    ta->lookback = 0;
    return QB_OK;
}
static void obv_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(vol_state_t);
    if (s->n++ == 0) s->obv = b->volume;
    else if (b->close > s->prev) s->obv += b->volume;
    else if (b->close < s->prev) s->obv -= b->volume;
    s->prev = b->close;
    out[0] = s->obv;
}
static inline double ad_step(double ad, const qb_ta_bar_t *b) {
    double h = b->high, l = b->low, c = b->close, r = h - l;
    if (r > 0.0) ad += (((c - l) - (h - c)) / r) * b->volume;
    return ad;
}
static void ad_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(vol_state_t);
    s->ad = ad_step(s->ad, b);
    out[0] = s->ad;
}
static qb_err_t adosc_init(qb_ta_t *ta, char *e, size_t n) {
    ST(vol_state_t);
    int fast = P(0), slow = P(1);
    if (slow <= fast)
        return qb_err_set(e, n, QB_ERR_INVALID, "adosc: slow (%d) must be > fast (%d)", slow,
                          fast);
    s->kf = PER_TO_K(fast);
    s->ks = PER_TO_K(slow);
    ta->lookback = slow - 1;
    return QB_OK;
}
static void adosc_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(vol_state_t);
    s->ad = ad_step(s->ad, b);
    if (s->n++ == 0) {
        s->fast = s->slow = s->ad;
    } else {
        s->fast = (s->kf * s->ad) + ((1.0 - s->kf) * s->fast);
        s->slow = (s->ks * s->ad) + ((1.0 - s->ks) * s->slow);
    }
    out[0] = s->fast - s->slow;
}

/* ---- sar ---- */
typedef struct sar_state_s {
    double af, ep, sar, new_high, new_low, h0, l0;
    int is_long;
    int64_t n;
} sar_state_t;

static qb_err_t sar_init(qb_ta_t *ta, char *e, size_t n) {
    ST(sar_state_t);
    if (PD(0) > PD(1))
        return qb_err_set(e, n, QB_ERR_INVALID,
                          "sar: acceleration (%g) must be <= maximum (%g)", PD(0), PD(1));
    s->af = PD(0);
    ta->lookback = 1;
    return QB_OK;
}
static void sar_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(sar_state_t);
    double acc = PD(0), max = PD(1);
    int64_t n = s->n++;
    if (n == 0) {
        s->h0 = b->high;
        s->l0 = b->low;
        return;
    }
    if (n == 1) { /* direction from MINUS_DM of the first pair */
        double diffp = b->high - s->h0, diffm = s->l0 - b->low;
        double mdm = ((diffm > 0) && (diffp < diffm)) ? diffm : 0.0;
        s->is_long = mdm > 0 ? 0 : 1;
        if (s->is_long) {
            s->ep = b->high;
            s->sar = s->l0;
        } else {
            s->ep = b->low;
            s->sar = s->h0;
        }
        s->new_low = b->low;
        s->new_high = b->high;
    }
    double prev_low = s->new_low, prev_high = s->new_high;
    double nl = b->low, nh = b->high, sar = s->sar;
    s->new_low = nl;
    s->new_high = nh;
    if (s->is_long) {
        if (nl <= sar) { /* switch to short */
            s->is_long = 0;
            sar = s->ep;
            if (sar < prev_high) sar = prev_high;
            if (sar < nh) sar = nh;
            out[0] = sar;
            s->af = acc;
            s->ep = nl;
            sar = sar + s->af * (s->ep - sar);
            if (sar < prev_high) sar = prev_high;
            if (sar < nh) sar = nh;
        } else {
            out[0] = sar;
            if (nh > s->ep) {
                s->ep = nh;
                s->af += acc;
                if (s->af > max) s->af = max;
            }
            sar = sar + s->af * (s->ep - sar);
            if (sar > prev_low) sar = prev_low;
            if (sar > nl) sar = nl;
        }
    } else {
        if (nh >= sar) { /* switch to long */
            s->is_long = 1;
            sar = s->ep;
            if (sar > prev_low) sar = prev_low;
            if (sar > nl) sar = nl;
            out[0] = sar;
            s->af = acc;
            s->ep = nh;
            sar = sar + s->af * (s->ep - sar);
            if (sar > prev_low) sar = prev_low;
            if (sar > nl) sar = nl;
        } else {
            out[0] = sar;
            if (nl < s->ep) {
                s->ep = nl;
                s->af += acc;
                if (s->af > max) s->af = max;
            }
            sar = sar + s->af * (s->ep - sar);
            if (sar < prev_high) sar = prev_high;
            if (sar < nh) sar = nh;
        }
    }
    s->sar = sar;
}

/* ---- ultosc ---- */
typedef struct ultosc_state_s {
    ring_t a, b; /* close - true low, true range, per bar (from bar 1) */
    double at[3], bt[3];
    int per[3]; /* sorted: per[0] shortest, per[2] longest */
    double prev_close;
    int64_t n;
} ultosc_state_t;

static qb_err_t ultosc_init(qb_ta_t *ta, char *e, size_t n) {
    ST(ultosc_state_t);
    int p[3] = {P(0), P(1), P(2)};
    /* TA-Lib sorts the periods: weight 4 for the shortest, 1 for the longest */
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (p[j] < p[i]) {
                int t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
    memcpy(s->per, p, sizeof p);
    ring_init(ta, &s->a, p[2]);
    ring_init(ta, &s->b, p[2]);
    ta->lookback = p[2];
    return QB_OK;
}
static void ultosc_update(qb_ta_t *ta, const qb_ta_bar_t *bar, double *out) {
    ST(ultosc_state_t);
    int64_t t = s->n++;
    double yc = s->prev_close;
    s->prev_close = bar->close;
    if (t == 0) return;
    double tl = bar->low < yc ? bar->low : yc;
    double a = bar->close - tl, b = true_range(bar->high, bar->low, yc);
    ring_push(&s->a, a);
    ring_push(&s->b, b);
    int longest = s->per[2];
    for (int k = 0; k < 3; k++)
        if (t >= longest - s->per[k] + 1) {
            s->at[k] += a;
            s->bt[k] += b;
        }
    if (t < longest) return;
    double o = 0.0;
    if (!TA_IS_ZERO(s->bt[0])) o += 4.0 * (s->at[0] / s->bt[0]);
    if (!TA_IS_ZERO(s->bt[1])) o += 2.0 * (s->at[1] / s->bt[1]);
    if (!TA_IS_ZERO(s->bt[2])) o += s->at[2] / s->bt[2];
    for (int k = 0; k < 3; k++) {
        s->at[k] -= ring_ago(&s->a, s->per[k] - 1);
        s->bt[k] -= ring_ago(&s->b, s->per[k] - 1);
    }
    out[0] = 100.0 * (o / 7.0);
}

/* ---- trix ---- */
typedef struct trix_state_s {
    ema_t e[3];
    double prev;
    int have_prev;
} trix_state_t;

static qb_err_t trix_init(qb_ta_t *ta, char *e, size_t n) {
    ST(trix_state_t);
    for (int i = 0; i < 3; i++) ema_init(&s->e[i], P(0), 0);
    ta->lookback = 3 * (P(0) - 1) + 1;
    return QB_OK;
}
static void trix_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(trix_state_t);
    double v = b->close;
    for (int i = 0; i < 3; i++) {
        v = ema_update(&s->e[i], v);
        if (s->e[i].n < s->e[i].p) return;
    }
    if (s->have_prev) out[0] = s->prev != 0.0 ? ((v / s->prev) - 1.0) * 100.0 : 0.0;
    s->prev = v;
    s->have_prev = 1;
}

/* ---- ppo ---- */
typedef struct ppo_state_s {
    ma_t fast, slow;
} ppo_state_t;

static qb_err_t ppo_init(qb_ta_t *ta, char *e, size_t n) {
    ST(ppo_state_t);
    int fast = P(0), slow = P(1), type = P(2);
    if (slow <= fast)
        return qb_err_set(e, n, QB_ERR_INVALID, "ppo: slow (%d) must be > fast (%d)", slow,
                          fast);
    ma_init(ta, &s->fast, type, fast);
    ma_init(ta, &s->slow, type, slow);
    ta->lookback = ma_lookback(type, slow);
    return QB_OK;
}
static void ppo_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(ppo_state_t);
    double f = ma_update(&s->fast, b->close), sl = ma_update(&s->slow, b->close);
    out[0] = !TA_IS_ZERO(sl) ? ((f - sl) / sl) * 100.0 : 0.0;
}

/* ---- stddev, zscore ---- */
typedef struct sd_state_s {
    var_t var;
} sd_state_t;

static qb_err_t sd_init(qb_ta_t *ta, char *e, size_t n) {
    ST(sd_state_t);
    var_init(ta, &s->var, P(0), 0);
    ta->lookback = P(0) - 1;
    return QB_OK;
}
static void stddev_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(sd_state_t);
    double v = var_update(&s->var, b->close);
    if (isnan(v)) return;
    out[0] = !TA_IS_ZERO_OR_NEG(v) ? sqrt(v) * PD(1) : 0.0;
}
static void zscore_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(sd_state_t);
    double v = var_update(&s->var, b->close);
    if (isnan(v)) return;
    double sd = !TA_IS_ZERO_OR_NEG(v) ? sqrt(v) : 0.0;
    out[0] = sd != 0.0 ? (b->close - s->var.mean) / sd : 0.0;
}

/* ---- correl (TA_CORREL over high, low) ---- */
typedef struct correl_state_s {
    ring_t x, y;
    double sx, sy, sxy, sx2, sy2;
    int p;
    int64_t n;
} correl_state_t;

static qb_err_t correl_init(qb_ta_t *ta, char *e, size_t n) {
    ST(correl_state_t);
    ring_init(ta, &s->x, P(0) + 1);
    ring_init(ta, &s->y, P(0) + 1);
    s->p = P(0);
    ta->lookback = P(0) - 1;
    return QB_OK;
}
static void correl_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(correl_state_t);
    double x = b->high, y = b->low;
    int64_t n = s->n++;
    int p = s->p;
    ring_push(&s->x, x);
    ring_push(&s->y, y);
    if (n >= p) { /* TA-Lib drops the trailing pair before adding the new one */
        double tx = ring_ago(&s->x, p), ty = ring_ago(&s->y, p);
        s->sx -= tx;
        s->sx2 -= tx * tx;
        s->sxy -= tx * ty;
        s->sy -= ty;
        s->sy2 -= ty * ty;
    }
    s->sx += x;
    s->sx2 += x * x;
    s->sxy += x * y;
    s->sy += y;
    s->sy2 += y * y;
    if (n < p - 1) return;
    double t = (s->sx2 - ((s->sx * s->sx) / p)) * (s->sy2 - ((s->sy * s->sy) / p));
    out[0] = !TA_IS_ZERO_OR_NEG(t) ? (s->sxy - ((s->sx * s->sy) / p)) / sqrt(t) : 0.0;
}

/* ---- vwap (not in TA-Lib) ---- */
typedef struct vwap_state_s {
    ring_t pv, v;
    double spv, sv;
    int p, reset;
    int64_t n, day;
} vwap_state_t;

static qb_err_t vwap_init(qb_ta_t *ta, char *e, size_t n) {
    ST(vwap_state_t);
    s->p = P(0);
    s->reset = P(1);
    if (s->reset && s->p != 0)
        return qb_err_set(e, n, QB_ERR_INVALID,
                          "vwap: reset=1 needs period 0 (cumulative), got period %d", s->p);
    if (s->p > 0) {
        ring_init(ta, &s->pv, s->p);
        ring_init(ta, &s->v, s->p);
    }
    s->day = INT64_MIN;
    ta->lookback = s->p > 0 ? s->p - 1 : 0;
    if (s->reset) ta->inputs |= QB_TA_IN_TIME;
    return QB_OK;
}
static void vwap_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(vwap_state_t);
    double tp = (b->high + b->low + b->close) / 3.0, pv = tp * b->volume;
    int64_t n = s->n++;
    if (s->p > 0) {
        if (n >= s->p) { /* drop the bar leaving the window, then add */
            s->spv -= s->pv.v[s->pv.pos];
            s->sv -= s->v.v[s->v.pos];
        }
        ring_push(&s->pv, pv);
        ring_push(&s->v, b->volume);
    } else if (s->reset) {
        const int64_t day_ns = INT64_C(86400000000000);
        int64_t d = b->time / day_ns - (b->time % day_ns < 0);
        if (d != s->day) s->spv = s->sv = 0;
        s->day = d;
    }
    s->spv += pv;
    s->sv += b->volume;
    out[0] = s->sv != 0.0 ? s->spv / s->sv : NAN;
}

/* ---- rvol (not in TA-Lib) ---- */
typedef struct rvol_state_s {
    ring_t r;
    double s1, s2, prev;
    int p;
    int64_t n;
} rvol_state_t;

static qb_err_t rvol_init(qb_ta_t *ta, char *e, size_t n) {
    ST(rvol_state_t);
    ring_init(ta, &s->r, P(0));
    s->p = P(0);
    ta->lookback = P(0);
    return QB_OK;
}
static void rvol_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(rvol_state_t);
    int64_t n = s->n++;
    double prev = s->prev;
    s->prev = b->close;
    if (n == 0) return;
    double r = log(b->close / prev);
    if (n > s->p) { /* drop the return leaving the window */
        double o = s->r.v[s->r.pos];
        s->s1 -= o;
        s->s2 -= o * o;
    }
    ring_push(&s->r, r);
    s->s1 += r;
    s->s2 += r * r;
    if (n < s->p) return;
    double var = (s->s2 - (s->s1 * s->s1) / s->p) / (s->p - 1);
    out[0] = var > 0 ? sqrt(var * PD(1)) : 0.0;
}

/* ---- keltner (not in TA-Lib) ---- */
typedef struct keltner_state_s {
    ema_t ema;
    atr_t atr;
} keltner_state_t;

static qb_err_t keltner_init(qb_ta_t *ta, char *e, size_t n) {
    ST(keltner_state_t);
    int p = P(0), ap = P(2) ? P(2) : P(0);
    ema_init(&s->ema, p, 0);
    atr_init(&s->atr, ap);
    ta->lookback = (p - 1) > ap ? (p - 1) : ap;
    return QB_OK;
}
static void keltner_update(qb_ta_t *ta, const qb_ta_bar_t *b, double *out) {
    ST(keltner_state_t);
    double mid = ema_update(&s->ema, b->close);
    if (!atr_update(&s->atr, b)) return;
    double w = PD(1) * s->atr.atr;
    out[0] = mid + w;
    out[1] = mid;
    out[2] = mid - w;
}

/* ======================================================================
 * The table
 * ====================================================================== */

#define HLC (QB_TA_IN_HIGH | QB_TA_IN_LOW | QB_TA_IN_CLOSE)
#define C QB_TA_IN_CLOSE
#define HL (QB_TA_IN_HIGH | QB_TA_IN_LOW)
#define V QB_TA_IN_VOLUME
#define PMAX 100000
#define PERIOD(def, min) {"period", 1, def, min, PMAX}
#define MATYPE {"matype", 1, 0, 0, MA_NTYPES - 1}
#define K(nm, syn, outs_s, sum, np, nc, prm, no, outs, in, stt, ini, upd)                      \
    {{nm, syn, outs_s, sum}, np, nc, prm, no, outs, in, sizeof(stt), ini, upd}
#define PARAMS(...) {__VA_ARGS__}
#define OUTS(...) {__VA_ARGS__}
#define ONE OUTS(NULL)
#define BANDS OUTS("upper", "middle", "lower")

const ta_kind_t ta_kinds[] = {
    K("sma", "sma[:period=30]", "", "simple moving average (SMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_sma_init, k_sma_update),
    K("ema", "ema[:period=30]", "", "exponential moving average, SMA-seeded (EMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_ema_init, k_ema_update),
    K("wma", "wma[:period=30]", "", "linearly weighted moving average (WMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_wma_init, ma_kind_update),
    K("dema", "dema[:period=30]", "", "double EMA: 2*EMA - EMA(EMA) (DEMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_dema_init, ma_kind_update),
    K("tema", "tema[:period=30]", "", "triple EMA (TEMA)", 1, 1, PARAMS(PERIOD(30, 2)), 1, ONE,
      C, ma_state_t, k_tema_init, ma_kind_update),
    K("trima", "trima[:period=30]", "", "triangular moving average (TRIMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_trima_init, ma_kind_update),
    K("kama", "kama[:period=30]", "", "Kaufman adaptive moving average (KAMA)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, ma_state_t, k_kama_init, ma_kind_update),
    K("rsi", "rsi[:period=14]", "", "relative strength index, Wilder (RSI)", 1, 1,
      PARAMS(PERIOD(14, 2)), 1, ONE, C, gl_state_t, rsi_init, rsi_update),
    K("macd", "macd[:fast=12[:slow=26[:signal=9]]]", "macd,signal,hist",
      "moving average convergence/divergence (MACD)", 3, 3,
      PARAMS({"fast", 1, 12, 2, PMAX}, {"slow", 1, 26, 2, PMAX}, {"signal", 1, 9, 2, PMAX}), 3,
      OUTS("macd", "signal", "hist"), C, macd_state_t, macd_init, macd_update),
    K("bbands", "bbands[:period=5[:nbdevup=2[:nbdevdn=2[:matype=0]]]]", "upper,middle,lower",
      "Bollinger bands, population stddev (BBANDS)", 4, 3,
      PARAMS(PERIOD(5, 2), {"nbdevup", 0, 2, -3e37, 3e37}, {"nbdevdn", 0, 2, -3e37, 3e37},
             MATYPE),
      3, BANDS, C, bbands_state_t, bbands_init, bbands_update),
    K("atr", "atr[:period=14]", "", "average true range, Wilder (ATR)", 1, 1,
      PARAMS(PERIOD(14, 1)), 1, ONE, HLC, atr_state_t, atr_kind_init, atr_update_k),
    K("natr", "natr[:period=14]", "", "normalized ATR: 100*ATR/close (NATR)", 1, 1,
      PARAMS(PERIOD(14, 2)), 1, ONE, HLC, atr_state_t, atr_kind_init, natr_update),
    K("trange", "trange", "", "true range (TRANGE)", 0, 0, PARAMS({0}), 1, ONE, HLC,
      trange_state_t, trange_init, trange_update),
    K("stoch", "stoch[:fastk=5[:slowk=3[:slowd=3]]]", "slowk,slowd",
      "stochastic, SMA smoothing (STOCH)", 3, 3,
      PARAMS({"fastk", 1, 5, 1, PMAX}, {"slowk", 1, 3, 1, PMAX}, {"slowd", 1, 3, 1, PMAX}), 2,
      OUTS("slowk", "slowd"), HLC, stoch_state_t, stoch_init, stoch_update),
    K("stochf", "stochf[:fastk=5[:fastd=3]]", "fastk,fastd", "fast stochastic, SMA (STOCHF)",
      2, 2, PARAMS({"fastk", 1, 5, 1, PMAX}, {"fastd", 1, 3, 1, PMAX}), 2,
      OUTS("fastk", "fastd"), HLC, stoch_state_t, stochf_init, stochf_update),
    K("stochrsi", "stochrsi[:period=14[:fastk=5[:fastd=3]]]", "fastk,fastd",
      "stochastic RSI, SMA (STOCHRSI)", 3, 3,
      PARAMS(PERIOD(14, 2), {"fastk", 1, 5, 1, PMAX}, {"fastd", 1, 3, 1, PMAX}), 2,
      OUTS("fastk", "fastd"), C, stoch_state_t, stochrsi_init, stochrsi_update),
    K("adx", "adx[:period=14]", "", "average directional index (ADX)", 1, 1,
      PARAMS(PERIOD(14, 2)), 1, ONE, HLC, dm_state_t, adx_init, adx_update),
    K("plus_di", "plus_di[:period=14]", "", "plus directional indicator (PLUS_DI)", 1, 1,
      PARAMS(PERIOD(14, 1)), 1, ONE, HLC, dm_state_t, di_init, plus_di_update),
    K("minus_di", "minus_di[:period=14]", "", "minus directional indicator (MINUS_DI)", 1, 1,
      PARAMS(PERIOD(14, 1)), 1, ONE, HLC, dm_state_t, di_init, minus_di_update),
    K("cci", "cci[:period=14]", "", "commodity channel index (CCI)", 1, 1,
      PARAMS(PERIOD(14, 2)), 1, ONE, HLC, cci_state_t, cci_init, cci_update),
    K("roc", "roc[:period=10]", "", "rate of change: 100*(close/close[-n] - 1) (ROC)", 1, 1,
      PARAMS(PERIOD(10, 1)), 1, ONE, C, lag_state_t, lag_init, roc_update),
    K("mom", "mom[:period=10]", "", "momentum: close - close[-n] (MOM)", 1, 1,
      PARAMS(PERIOD(10, 1)), 1, ONE, C, lag_state_t, lag_init, mom_update),
    K("willr", "willr[:period=14]", "", "Williams' %R (WILLR)", 1, 1, PARAMS(PERIOD(14, 2)), 1,
      ONE, HLC, ext_state_t, willr_init, willr_update),
    K("mfi", "mfi[:period=14]", "", "money flow index (MFI)", 1, 1, PARAMS(PERIOD(14, 2)), 1,
      ONE, HLC | V, mfi_state_t, mfi_init, mfi_update),
    K("obv", "obv", "", "on balance volume (OBV)", 0, 0, PARAMS({0}), 1, ONE, C | V,
      vol_state_t, zero_lookback_init, obv_update),
    K("ad", "ad", "", "Chaikin accumulation/distribution line (AD)", 0, 0, PARAMS({0}), 1, ONE,
      HLC | V, vol_state_t, zero_lookback_init, ad_update),
    K("adosc", "adosc[:fast=3[:slow=10]]", "", "Chaikin A/D oscillator (ADOSC)", 2, 2,
      PARAMS({"fast", 1, 3, 2, PMAX}, {"slow", 1, 10, 2, PMAX}), 1, ONE, HLC | V, vol_state_t,
      adosc_init, adosc_update),
    K("aroon", "aroon[:period=14]", "down,up", "Aroon down and up (AROON)", 1, 1,
      PARAMS(PERIOD(14, 2)), 2, OUTS("down", "up"), HL, ext_state_t, aroon_init, aroon_update),
    K("sar", "sar[:acceleration=0.02[:maximum=0.2]]", "", "parabolic SAR (SAR)", 2, 2,
      PARAMS({"acceleration", 0, 0.02, 0, 3e37}, {"maximum", 0, 0.2, 0, 3e37}), 1, ONE, HL,
      sar_state_t, sar_init, sar_update),
    K("stddev", "stddev[:period=5[:nbdev=1]]", "", "population standard deviation (STDDEV)", 2,
      2, PARAMS(PERIOD(5, 2), {"nbdev", 0, 1, -3e37, 3e37}), 1, ONE, C, sd_state_t, sd_init,
      stddev_update),
    K("ultosc", "ultosc[:period1=7[:period2=14[:period3=28]]]", "",
      "ultimate oscillator (ULTOSC)", 3, 3,
      PARAMS({"period1", 1, 7, 1, PMAX}, {"period2", 1, 14, 1, PMAX},
             {"period3", 1, 28, 1, PMAX}),
      1, ONE, HLC, ultosc_state_t, ultosc_init, ultosc_update),
    K("trix", "trix[:period=30]", "", "1-bar ROC of a triple EMA (TRIX)", 1, 1,
      PARAMS(PERIOD(30, 2)), 1, ONE, C, trix_state_t, trix_init, trix_update),
    K("ppo", "ppo[:fast=12[:slow=26[:matype=0]]]", "",
      "percentage price oscillator (PPO)", 3, 2,
      PARAMS({"fast", 1, 12, 2, PMAX}, {"slow", 1, 26, 2, PMAX}, MATYPE), 1, ONE, C,
      ppo_state_t, ppo_init, ppo_update),
    K("cmo", "cmo[:period=14]", "", "Chande momentum oscillator, Wilder (CMO)", 1, 1,
      PARAMS(PERIOD(14, 2)), 1, ONE, C, gl_state_t, rsi_init, cmo_update),
    K("correl", "correl[:period=30]", "", "Pearson correlation of high and low (CORREL)", 1, 1,
      PARAMS(PERIOD(30, 1)), 1, ONE, HL, correl_state_t, correl_init, correl_update),
    K("vwap", "vwap[:period=0[:reset=0]]", "",
      "volume-weighted typical price, cumulative or rolling", 2, 1,
      PARAMS({"period", 1, 0, 0, PMAX}, {"reset", 1, 0, 0, 1}), 1, ONE, HLC | V, vwap_state_t,
      vwap_init, vwap_update),
    K("zscore", "zscore[:period=20]", "", "(close - mean) / population stddev", 1, 1,
      PARAMS(PERIOD(20, 2)), 1, ONE, C, sd_state_t, sd_init, zscore_update),
    K("logret", "logret[:period=1]", "", "log return ln(close/close[-n])", 1, 1,
      PARAMS(PERIOD(1, 1)), 1, ONE, C, lag_state_t, lag_init, logret_update),
    K("rvol", "rvol[:period=20[:annualization=252]]", "",
      "sample stddev of 1-bar log returns * sqrt(annualization)", 2, 2,
      PARAMS(PERIOD(20, 2), {"annualization", 0, 252, 1e-300, 3e37}), 1, ONE, C, rvol_state_t,
      rvol_init, rvol_update),
    K("donchian", "donchian[:period=20]", "upper,middle,lower",
      "highest high, midpoint, lowest low", 1, 1, PARAMS(PERIOD(20, 1)), 3, BANDS, HL,
      ext_state_t, willr_init, donchian_update),
    K("keltner", "keltner[:period=20[:mult=2[:atr=period]]]", "upper,middle,lower",
      "EMA(close) +/- mult * ATR", 3, 2,
      PARAMS(PERIOD(20, 2), {"mult", 0, 2, -3e37, 3e37}, {"atr", 1, 0, 0, PMAX}), 3, BANDS, HLC,
      keltner_state_t, keltner_init, keltner_update),
};

const int ta_nkinds = (int)(sizeof ta_kinds / sizeof ta_kinds[0]);
