/* qb_md_synth.c — the synthetic bar generator; see qb_md_synth.h for the
 * model and why every bar is a pure function of (options, symbol,
 * timeframe, time). Owns only its options; a fetch owns its scratch (bar
 * batch, skeleton window, bridge tables) and frees it before returning.
 *
 * Layout: random numbers (counter-based, never a running stream), day
 * arithmetic, then the skeleton (regime sojourns, jumps, the two dyadic
 * walks, the window of day points), then the bars (intraday bridge, sub-step
 * bridge, rounding).
 *
 * Bitwise stitching rests on one rule: every double that reaches a bar is
 * computed by one code path from inputs that do not depend on the request
 * (absolute day, bar and node indices; iterators always run from the
 * origin). Skipped intraday bars at the start of a day go through the same
 * loop as emitted ones. */
#include "md/qb_md_synth.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_decimal.h"

#define QB_SYNTH_BATCH 4096               /* bars per sink call */
#define QB_SYNTH_WINDOW 1024              /* skeleton days per window, at most */
#define QB_SYNTH_DEPTH 18                 /* walk trees span 2^18 days: 1900..2617 */
#define QB_SYNTH_NEVER ((int64_t)1 << 40) /* a sojourn or gap that never ends, days */
#define QB_SYNTH_DT (1.0 / 252.0)         /* model years per calendar day */
#define QB_SYNTH_MAX_PER_DAY 1440         /* bars per day of the finest timeframe */
#define QB_SYNTH_ORIGIN_DAY (QB_MD_SYNTH_ORIGIN / QB_NS_PER_DAY) /* -25567, from the epoch */

/* What a hash draws; part of the key so draws never collide. */
enum {
    QB_SYNTH_TAG_REGIME = 1,
    QB_SYNTH_TAG_JUMP = 2,
    QB_SYNTH_TAG_WALK_CALM = 3,
    QB_SYNTH_TAG_WALK_STRESS = 4,
    QB_SYNTH_TAG_BAR = 5,
};

typedef struct qb_md_synth_s {
    qb_md_source_t base;
    qb_md_synth_opts_t o;
    qb_dec_t tick;
} qb_md_synth_t;

void qb_md_synth_opts_default(qb_md_synth_opts_t *o, uint64_t seed) {
    memset(o, 0, sizeof(*o));
    o->seed = seed;
    o->start_price = 100.0;
    o->mu = 0.05;
    o->sigma = 0.20;
    o->regime_mult = 3.0;
    o->p_enter_stress = 0.002;
    o->p_exit_stress = 0.05;
    o->jump_prob = 0.001;
    o->jump_sigma = 0.05;
    o->volume_mean = 1e6;
    o->tick = 0.01;
    o->substeps = 8;
}

/* ---- random numbers ------------------------------------------------------ */

static uint64_t qb_synth_mix(uint64_t z) { /* splitmix64 finaliser */
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s; } qb_synth_rng_t;

/* The draws of item `index` under `key`: a short stream of its own. */
static qb_synth_rng_t qb_synth_stream(uint64_t key, uint64_t index) {
    qb_synth_rng_t r = {qb_synth_mix(key + index * 0xd1b54a32d192ed03ULL)};
    return r;
}

static uint64_t qb_synth_subkey(uint64_t key, uint64_t tag) {
    return qb_synth_mix(key ^ (tag * 0xa0761d6478bd642fULL));
}

static double qb_synth_uniform(qb_synth_rng_t *r) { /* (0, 1) */
    r->s = qb_synth_mix(r->s);
    return ((double)(r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Box-Muller, both values. Every normal is drawn through here (a lone one
 * too), so no value depends on whether cos/sin became sincos. */
static void qb_synth_normal2(qb_synth_rng_t *r, double *z0, double *z1) {
    double u1 = qb_synth_uniform(r), u2 = qb_synth_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    *z0 = rad * cos(th);
    *z1 = rad * sin(th);
}

/* Days to the next event of per-day probability p, on {1, 2, ...}, by the
 * inverse CDF; lq = log1p(-p). QB_SYNTH_NEVER when p == 0 (or tiny). */
static int64_t qb_synth_geometric(double u, double lq) {
    if (!(lq < 0)) return QB_SYNTH_NEVER;
    double k = floor(log(u) / lq);
    return k >= (double)QB_SYNTH_NEVER ? QB_SYNTH_NEVER : 1 + (int64_t)k;
}

static uint64_t qb_synth_hash_str(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ---- days ------------------------------------------------------------------ */

/* Days since the origin of t >= QB_MD_SYNTH_ORIGIN, and back (t - origin
 * itself would overflow after 2192). */
static int64_t qb_synth_day(qb_time_t t) {
    int64_t e = t >= 0 ? t / QB_NS_PER_DAY : -((-(t + 1)) / QB_NS_PER_DAY) - 1;
    return e - QB_SYNTH_ORIGIN_DAY;
}

static qb_time_t qb_synth_day_start(int64_t d) { return (d + QB_SYNTH_ORIGIN_DAY) * QB_NS_PER_DAY; }

/* t + step, saturating at the end of time (2262) instead of overflowing. */
static qb_time_t qb_synth_add(qb_time_t t, int64_t step) {
    return t > INT64_MAX - step ? INT64_MAX : t + step;
}

static int qb_synth_weekend(int64_t day) { /* day 0 = 1900-01-01, a Monday */
    int wd = (int)((day + 1) % 7);            /* 0 = Sunday */
    return wd == 0 || wd == 6;
}

/* ---- skeleton: regimes ----------------------------------------------------
 * Alternating sojourns from the origin, calm first; sojourn i lasts
 * geometric(p_leave) days, drawn from hash (REGIME, i). Equivalent to the
 * per-day Markov chain, at one draw per switch. Days are counted from the
 * origin. */

typedef struct {
    uint64_t key;
    double lq[2];       /* log1p(-p_leave) in calm, stressed */
    uint64_t index;     /* of the current sojourn */
    int stressed;       /* its regime */
    int64_t start, end; /* its days [start, end) */
    int64_t before[2];  /* calm, stressed days before start */
} qb_synth_regime_t;

static void qb_synth_regime_draw(qb_synth_regime_t *rg) {
    qb_synth_rng_t r = qb_synth_stream(rg->key, rg->index);
    rg->end = rg->start + qb_synth_geometric(qb_synth_uniform(&r), rg->lq[rg->stressed]);
}

static void qb_synth_regime_init(qb_synth_regime_t *rg, uint64_t key, const qb_md_synth_opts_t *o) {
    memset(rg, 0, sizeof(*rg));
    rg->key = key;
    rg->lq[0] = log1p(-o->p_enter_stress);
    rg->lq[1] = log1p(-o->p_exit_stress);
    qb_synth_regime_draw(rg);
}

/* Move to the sojourn holding `day` (never backwards). */
static void qb_synth_regime_advance(qb_synth_regime_t *rg, int64_t day) {
    while (rg->end <= day) {
        rg->before[rg->stressed] += rg->end - rg->start;
        rg->start = rg->end;
        rg->stressed = !rg->stressed;
        rg->index++;
        qb_synth_regime_draw(rg);
    }
}

/* ---- skeleton: jumps ------------------------------------------------------
 * Jump i comes geometric(jump_prob) days after jump i-1 (the first on day
 * geometric - 1), with log size normal(0, jump_sigma) and time of day
 * uniform, all from hash (JUMP, i). At most one per day: a Bernoulli per day. */

typedef struct {
    uint64_t key;
    double lq, jsig;
    uint64_t index; /* of the next jump */
    int64_t day;    /* its day */
    double size;    /* its log size */
    double frac;    /* its time of day, [0, 1) */
    double sum;     /* sum of the jumps on days before `day`, in order */
} qb_synth_jumps_t;

static void qb_synth_jumps_draw(qb_synth_jumps_t *jp, int64_t prev_day) {
    qb_synth_rng_t r = qb_synth_stream(jp->key, jp->index);
    double z0, z1;
    jp->day = prev_day + qb_synth_geometric(qb_synth_uniform(&r), jp->lq);
    qb_synth_normal2(&r, &z0, &z1);
    jp->size = jp->jsig * z0;
    jp->frac = qb_synth_uniform(&r);
}

static void qb_synth_jumps_init(qb_synth_jumps_t *jp, uint64_t key, const qb_md_synth_opts_t *o) {
    memset(jp, 0, sizeof(*jp));
    jp->key = key;
    jp->lq = log1p(-o->jump_prob);
    jp->jsig = o->jump_sigma;
    qb_synth_jumps_draw(jp, -1);
}

/* Make `day` the first day whose jump is not yet in sum (never backwards). */
static void qb_synth_jumps_advance(qb_synth_jumps_t *jp, int64_t day) {
    while (jp->day < day) {
        jp->sum += jp->size;
        jp->index++;
        qb_synth_jumps_draw(jp, jp->day);
    }
}

/* ---- skeleton: walks -------------------------------------------------------
 * A Gaussian random walk W(n), n = 0 .. 2^DEPTH, unit steps, W(0) = 0, built
 * top-down: W(2^DEPTH) = 2^(DEPTH/2) z, and the midpoint m of a node [a, b]
 * (b - a = 2^j) is (W(a) + W(b)) / 2 + sqrt(2^j) / 2 * z, z from hash (node
 * a, j) — the exact conditional law. A node's value depends only on its
 * ancestors, so any range of it is the same whoever asks. */

typedef struct {
    uint64_t key;
    const double *sd; /* [j]: sd of the midpoint of a node of length 2^j */
    int64_t lo, hi;   /* fill out[n - lo] for n in [lo, hi] */
    double *out;
} qb_synth_walk_t;

static void qb_synth_walk_node(const qb_synth_walk_t *w, int64_t a, int j, double wa, double wb) {
    if (j == 0) {
        if (a >= w->lo) w->out[a - w->lo] = wa;
        if (a + 1 <= w->hi) w->out[a + 1 - w->lo] = wb;
        return;
    }
    int64_t m = a + ((int64_t)1 << (j - 1));
    qb_synth_rng_t r = qb_synth_stream(w->key, ((uint64_t)a << 5) | (uint64_t)j);
    double z0, z1;
    qb_synth_normal2(&r, &z0, &z1);
    double wm = 0.5 * (wa + wb) + w->sd[j] * z0;
    if (m >= w->lo) qb_synth_walk_node(w, a, j - 1, wa, wm);
    if (m <= w->hi) qb_synth_walk_node(w, m, j - 1, wm, wb);
}

static void qb_synth_walk_fill(uint64_t key, const double *sd, int64_t lo, int64_t hi, double *out) {
    QB_ASSERT(lo >= 0 && lo <= hi && hi <= ((int64_t)1 << QB_SYNTH_DEPTH));
    qb_synth_walk_t w = {key, sd, lo, hi, out};
    qb_synth_rng_t r = qb_synth_stream(key, (uint64_t)1 << 40); /* the root */
    double z0, z1;
    qb_synth_normal2(&r, &z0, &z1);
    qb_synth_walk_node(&w, 0, QB_SYNTH_DEPTH, 0.0, 2.0 * sd[QB_SYNTH_DEPTH] * z0);
}

/* ---- skeleton: the window of day points ------------------------------------
 * Log price at 00:00 of day k (days since the origin):
 *   base + drift_c n_c + drift_s n_s + sd_c Wc(n_c) + sd_s Ws(n_s) + J(k)
 * with n_c, n_s the calm and stressed days before k and J(k) the jumps
 * before k; base pins QB_MD_SYNTH_PIN to log(start_price). A fetch keeps a
 * window of days [lo, lo + n]; windows only move forward. */

typedef struct {
    int64_t nc, ns; /* calm, stressed days before this day */
    double cum;     /* jumps before this day */
    double a;       /* log price at 00:00 */
    double jump;    /* log jump during the day (0: none) */
    double jfrac;   /* its time of day, [0, 1) */
    int stressed;   /* regime during the day */
} qb_synth_day_t;

typedef struct {
    uint64_t key_calm, key_stress;
    double drift[2], dsd[2]; /* per day, calm / stressed */
    double tree_sd[QB_SYNTH_DEPTH + 1];
    double base;
    qb_synth_regime_t rg;
    qb_synth_jumps_t jp;
    int64_t pos;      /* iterators are at this day: windows start here or later */
    int64_t lo, n;    /* window: day[i] is day lo + i, i = 0..n */
    qb_synth_day_t *day; /* QB_SYNTH_WINDOW + 1 */
    double *wc, *ws;     /* QB_SYNTH_WINDOW + 1 each */
} qb_synth_skel_t;

static void qb_synth_skel_fill(qb_synth_skel_t *sk, int64_t d0, int64_t n) {
    QB_ASSERT(d0 >= sk->pos && n >= 0 && n <= QB_SYNTH_WINDOW);
    QB_ASSERT(d0 + n < ((int64_t)1 << QB_SYNTH_DEPTH));
    for (int64_t i = 0; i <= n; i++) {
        int64_t k = d0 + i;
        qb_synth_regime_advance(&sk->rg, k);
        qb_synth_jumps_advance(&sk->jp, k);
        qb_synth_day_t *dy = &sk->day[i];
        int s = sk->rg.stressed;
        dy->nc = sk->rg.before[0] + (s ? 0 : k - sk->rg.start);
        dy->ns = sk->rg.before[1] + (s ? k - sk->rg.start : 0);
        dy->cum = sk->jp.sum;
        dy->stressed = s;
        dy->jump = sk->jp.day == k ? sk->jp.size : 0.0;
        dy->jfrac = sk->jp.frac;
    }
    int64_t nc0 = sk->day[0].nc, ns0 = sk->day[0].ns;
    qb_synth_walk_fill(sk->key_calm, sk->tree_sd, nc0, sk->day[n].nc, sk->wc);
    qb_synth_walk_fill(sk->key_stress, sk->tree_sd, ns0, sk->day[n].ns, sk->ws);
    for (int64_t i = 0; i <= n; i++) {
        qb_synth_day_t *dy = &sk->day[i];
        double x = sk->drift[0] * (double)dy->nc + sk->drift[1] * (double)dy->ns +
                   sk->dsd[0] * sk->wc[dy->nc - nc0] + sk->dsd[1] * sk->ws[dy->ns - ns0] + dy->cum;
        dy->a = sk->base + x;
    }
    sk->pos = d0 + n;
    sk->lo = d0;
    sk->n = n;
}

/* Set up for a fetch whose first day is `first` (>= 0). */
static void qb_synth_skel_init(qb_synth_skel_t *sk, const qb_md_synth_opts_t *o, uint64_t key,
                               int64_t first) {
    sk->key_calm = qb_synth_subkey(key, QB_SYNTH_TAG_WALK_CALM);
    sk->key_stress = qb_synth_subkey(key, QB_SYNTH_TAG_WALK_STRESS);
    double sig[2] = {o->sigma, o->sigma * o->regime_mult};
    for (int s = 0; s < 2; s++) {
        sk->drift[s] = (o->mu - 0.5 * sig[s] * sig[s]) * QB_SYNTH_DT;
        sk->dsd[s] = sig[s] * sqrt(QB_SYNTH_DT);
    }
    for (int j = 0; j <= QB_SYNTH_DEPTH; j++) sk->tree_sd[j] = 0.5 * sqrt(ldexp(1.0, j));
    qb_synth_regime_init(&sk->rg, qb_synth_subkey(key, QB_SYNTH_TAG_REGIME), o);
    qb_synth_jumps_init(&sk->jp, qb_synth_subkey(key, QB_SYNTH_TAG_JUMP), o);
    sk->pos = 0;

    /* The pin: X(pin) with base 0, then restart the iterators if the fetch
     * begins before it. */
    int64_t pin = qb_synth_day(QB_MD_SYNTH_PIN);
    qb_synth_regime_t rg0 = sk->rg;
    qb_synth_jumps_t jp0 = sk->jp;
    sk->base = 0.0;
    qb_synth_skel_fill(sk, pin, 0);
    sk->base = log(o->start_price) - sk->day[0].a;
    if (first < pin) {
        sk->rg = rg0;
        sk->jp = jp0;
        sk->pos = 0;
    }
    sk->lo = 0;
    sk->n = -1; /* empty */
}

/* Make days [d, d + need] available; `last` is the last day the fetch will
 * need, `q` the days per bar (windows stay a multiple of it, so the next bar
 * starts where the window ends). */
static void qb_synth_skel_need(qb_synth_skel_t *sk, int64_t d, int64_t need, int64_t last, int64_t q) {
    if (d >= sk->lo && d + need <= sk->lo + sk->n) return;
    int64_t n = last - d;
    if (n > QB_SYNTH_WINDOW) n = QB_SYNTH_WINDOW;
    n -= n % q;
    if (n < need) n = need;
    qb_synth_skel_fill(sk, d, n);
}

/* ---- bars ------------------------------------------------------------------ */

typedef struct {
    const qb_md_synth_t *g;
    const qb_md_sink_t *sink;
    char *errstr;
    size_t errstr_size;
    qb_bar_t tmpl; /* symbol and timeframe set */
    qb_bar_t *batch;
    size_t nb;
    double tick_d;
    qb_dec_t last_l_dec; /* price of last_l, reused as the next open */
    double last_l;
    int have_last;
    int substeps;
    double sub_inv[65], sub_cf[65]; /* sub-step bridge: 1/(S-k+1), sqrt((S-k)/(S-k+1)) */
    double inv_sqrt_sub;
    double day_inv[QB_SYNTH_MAX_PER_DAY], day_cf[QB_SYNTH_MAX_PER_DAY]; /* intraday bridge */
} qb_synth_run_t;

static qb_err_t qb_synth_price(const qb_synth_run_t *run, double p, qb_dec_t *out) {
    double k = nearbyint(p / run->tick_d);
    if (!(k < 9.2e18)) return QB_ERR_OVERFLOW; /* also NaN */
    int64_t ki = (int64_t)k;
    qb_dec_t tick = run->g->tick;
    if (ki > QB_DEC_MAX / tick) return QB_ERR_OVERFLOW;
    *out = ki < 1 ? tick : ki * tick;
    return QB_OK;
}

/* Interior points of a Brownian bridge of S sub-steps from l0 to l1 (log
 * prices; per sub-step sd `sd`), with a jump of `jump` at fraction `jf` of
 * the interval already in l1; widens [*lo, *hi]. */
static void qb_synth_subbridge(const qb_synth_run_t *run, qb_synth_rng_t *r, double l0, double l1,
                               double sd, double jump, double jf, double *lo, double *hi) {
    int S = run->substeps;
    double target = l1 - jump, y = l0, jat = jf * S;
    for (int k = 1; k < S; k += 2) {
        double z[2];
        qb_synth_normal2(r, &z[0], &z[1]);
        for (int h = 0; h < 2 && k + h < S; h++) {
            int kk = k + h;
            y += (target - y) * run->sub_inv[kk] + sd * run->sub_cf[kk] * z[h];
            double v = (double)kk > jat ? y + jump : y;
            if (v > *hi) *hi = v;
            if (v < *lo) *lo = v;
        }
    }
}

static qb_err_t qb_synth_flush(qb_synth_run_t *run) {
    qb_err_t err = QB_OK;
    if (run->nb) err = run->sink->bars(run->sink->opaque, run->batch, run->nb, run->errstr,
                                       run->errstr_size);
    run->nb = 0;
    return err;
}

/* One bar from log open, close and interior extremes. */
static qb_err_t qb_synth_emit(qb_synth_run_t *run, qb_time_t t, double lopen, double lclose,
                              double llo, double lhi, double zvol, int stressed) {
    const qb_md_synth_opts_t *o = &run->g->o;
    qb_bar_t *b = &run->batch[run->nb];
    *b = run->tmpl;
    b->ts = t;
    qb_dec_t ph = 0, pl = 0;
    qb_err_t err = QB_OK;
    if (run->have_last && lopen == run->last_l) b->open = run->last_l_dec;
    else err = qb_synth_price(run, exp(lopen), &b->open);
    if (!err) err = qb_synth_price(run, exp(lclose), &b->close);
    /* Interior extremes only matter beyond open and close. */
    if (!err && lhi > lopen && lhi > lclose) err = qb_synth_price(run, exp(lhi), &ph);
    if (!err && llo < lopen && llo < lclose) err = qb_synth_price(run, exp(llo), &pl);
    double vol = o->volume_mean * exp(0.5 * zvol - 0.125) * (stressed ? 2.0 : 1.0);
    if (!err && !(vol < 9e10)) err = QB_ERR_OVERFLOW;
    if (err)
        return qb_err_set(run->errstr, run->errstr_size, err,
                          "synthetic %s: price left the decimal range "
                          "(drift/volatility too large for the range)", b->symbol.s);
    b->volume = (qb_dec_t)floor(vol + 0.5) * QB_DEC_SCALE;
    qb_dec_t oc_hi = b->open > b->close ? b->open : b->close;
    qb_dec_t oc_lo = b->open < b->close ? b->open : b->close;
    b->high = ph > oc_hi ? ph : oc_hi;
    b->low = pl && pl < oc_lo ? pl : oc_lo;
    run->last_l = lclose;
    run->last_l_dec = b->close;
    run->have_last = 1;
    if (++run->nb == QB_SYNTH_BATCH) return qb_synth_flush(run);
    return QB_OK;
}

/* Intraday: bars [t0, to) of `step` < 1 day. */
static qb_err_t qb_synth_intraday(qb_synth_run_t *run, qb_synth_skel_t *sk, uint64_t key_bar,
                                  int64_t step, qb_time_t t0, qb_time_t to) {
    const qb_md_synth_opts_t *o = &run->g->o;
    int64_t m = QB_NS_PER_DAY / step;
    for (int64_t i = 0; i < m; i++) {
        run->day_inv[i] = 1.0 / (double)(m - i);
        run->day_cf[i] = sqrt((double)(m - i - 1) / (double)(m - i));
    }
    double inv_sqrt_m = 1.0 / sqrt((double)m);
    int64_t last = qb_synth_day(to - 1) + 1;
    int64_t cur = -1, bi = 0, jbar = 0;
    double a0 = 0, a1 = 0, x = 0, l = 0, target = 0, sdb = 0, jump = 0, jf = 0;
    int stressed = 0;
    qb_err_t err = QB_OK;
    for (qb_time_t t = t0; t < to && !err; t = qb_synth_add(t, step)) {
        int64_t d = qb_synth_day(t);
        qb_time_t dstart = qb_synth_day_start(d);
        if (o->weekdays_only && qb_synth_weekend(d)) {
            t = qb_synth_add(dstart, QB_NS_PER_DAY) - step; /* next day */
            continue;
        }
        if (d != cur) {
            qb_synth_skel_need(sk, d, 1, last, 1);
            const qb_synth_day_t *dy = &sk->day[d - sk->lo];
            cur = d;
            a0 = dy->a;
            a1 = dy[1].a;
            jump = dy->jump;
            jbar = m; /* no jump */
            if (jump != 0.0) {
                double pos = dy->jfrac * (double)m;
                jbar = (int64_t)pos;
                if (jbar > m - 1) jbar = m - 1;
                jf = pos - (double)jbar;
            }
            stressed = dy->stressed;
            sdb = sk->dsd[stressed] * inv_sqrt_m;
            target = a1 - a0 - jump;
            x = 0;
            l = a0;
            bi = 0;
        }
        int64_t i = (t - dstart) / step;
        /* Bars bi .. i: the ones before i are only stepped over. */
        for (;; bi++) {
            qb_synth_rng_t r = qb_synth_stream(key_bar, (uint64_t)(d * m + bi));
            double zc, zv, lnext;
            qb_synth_normal2(&r, &zc, &zv);
            if (bi + 1 == m) {
                lnext = a1;
            } else {
                x += (target - x) * run->day_inv[bi] + sdb * run->day_cf[bi] * zc;
                lnext = a0 + x + (bi >= jbar ? jump : 0.0);
            }
            if (bi == i) {
                double bj = bi == jbar ? jump : 0.0;
                double lo = HUGE_VAL, hi = -HUGE_VAL;
                qb_synth_subbridge(run, &r, l, lnext, sdb * run->inv_sqrt_sub, bj, jf, &lo, &hi);
                err = qb_synth_emit(run, t, l, lnext, lo, hi, zv, stressed);
                l = lnext;
                bi++;
                break;
            }
            l = lnext;
        }
    }
    return err;
}

/* Daily and weekly: bars [t0, to) of `step`, a multiple of 1 day. */
static qb_err_t qb_synth_days(qb_synth_run_t *run, qb_synth_skel_t *sk, uint64_t key_bar,
                              int64_t step, qb_time_t t0, qb_time_t to) {
    const qb_md_synth_opts_t *o = &run->g->o;
    int64_t q = step / QB_NS_PER_DAY;
    qb_err_t err = QB_OK;
    int64_t last = qb_synth_day(to - 1) + q; /* at most */
    for (qb_time_t t = t0; t < to && !err; t = qb_synth_add(t, step)) {
        int64_t d = qb_synth_day(t);
        if (o->weekdays_only && qb_synth_weekend(d)) continue;
        qb_synth_skel_need(sk, d, q, last, q);
        const qb_synth_day_t *dy = &sk->day[d - sk->lo];
        double lo = HUGE_VAL, hi = -HUGE_VAL, zv = 0;
        for (int64_t j = 0; j < q; j++) {
            qb_synth_rng_t r = qb_synth_stream(key_bar, (uint64_t)(d + j));
            double z0, z1;
            qb_synth_normal2(&r, &z0, &z1);
            if (j == 0) zv = z0;
            else {
                if (dy[j].a > hi) hi = dy[j].a;
                if (dy[j].a < lo) lo = dy[j].a;
            }
            qb_synth_subbridge(run, &r, dy[j].a, dy[j + 1].a,
                               sk->dsd[dy[j].stressed] * run->inv_sqrt_sub, dy[j].jump,
                               dy[j].jfrac, &lo, &hi);
        }
        err = qb_synth_emit(run, t, dy[0].a, dy[q].a, lo, hi, zv, dy[0].stressed);
    }
    return err;
}

static qb_err_t qb_synth_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                               const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_synth_t *g = (qb_md_synth_t *)src;
    const qb_md_synth_opts_t *o = &g->o;
    int64_t step;
    qb_symbol_t sym;
    if (qb_timeframe_parse(req->timeframe, &step) != QB_OK ||
        (step < QB_NS_PER_DAY ? QB_NS_PER_DAY % step : step % QB_NS_PER_DAY) != 0 ||
        QB_NS_PER_DAY / step > QB_SYNTH_MAX_PER_DAY)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "synthetic: unknown timeframe '%s'", req->timeframe);
    if (qb_symbol_set(&sym, req->symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    if (!req->to)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "synthetic: a range end is required");
    if (req->from < QB_MD_SYNTH_ORIGIN)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "synthetic: range starts before 1900-01-01T00:00:00Z, "
                          "where the generator's path begins");

    qb_time_t t0;
    if (qb_time_floor(req->from, step, &t0) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "synthetic: bad range start");
    if (t0 < req->from) t0 = qb_synth_add(t0, step);
    if (t0 >= req->to) return QB_OK;

    qb_synth_run_t *run = calloc(1, sizeof(*run));
    qb_synth_skel_t sk;
    memset(&sk, 0, sizeof(sk));
    if (run) {
        run->batch = malloc(QB_SYNTH_BATCH * sizeof(*run->batch));
        sk.day = malloc((QB_SYNTH_WINDOW + 1) * sizeof(*sk.day));
        sk.wc = malloc((QB_SYNTH_WINDOW + 1) * sizeof(*sk.wc));
        sk.ws = malloc((QB_SYNTH_WINDOW + 1) * sizeof(*sk.ws));
    }
    qb_err_t err = QB_OK;
    if (!run || !run->batch || !sk.day || !sk.wc || !sk.ws) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto out;
    }
    run->g = g;
    run->sink = sink;
    run->errstr = errstr;
    run->errstr_size = errstr_size;
    run->tmpl.symbol = sym;
    snprintf(run->tmpl.timeframe, sizeof(run->tmpl.timeframe), "%s", req->timeframe);
    run->tick_d = o->tick;
    run->substeps = o->substeps;
    for (int k = 1; k <= o->substeps; k++) {
        run->sub_inv[k] = 1.0 / (double)(o->substeps - k + 1);
        run->sub_cf[k] = sqrt((double)(o->substeps - k) / (double)(o->substeps - k + 1));
    }
    run->inv_sqrt_sub = 1.0 / sqrt((double)o->substeps);

    uint64_t key = qb_synth_mix(o->seed ^ qb_synth_hash_str(sym.s));
    uint64_t key_bar = qb_synth_mix(qb_synth_subkey(key, QB_SYNTH_TAG_BAR) + (uint64_t)step);
    qb_synth_skel_init(&sk, o, key, qb_synth_day(t0));
    err = step < QB_NS_PER_DAY ? qb_synth_intraday(run, &sk, key_bar, step, t0, req->to)
                               : qb_synth_days(run, &sk, key_bar, step, t0, req->to);
    if (!err) err = qb_synth_flush(run);
out:
    if (run) free(run->batch);
    free(run);
    free(sk.day);
    free(sk.wc);
    free(sk.ws);
    return err;
}

static void qb_synth_destroy(qb_md_source_t *src) { free(src); }

static const qb_md_source_ops_t qb_synth_ops = {"synthetic", qb_synth_fetch, qb_synth_destroy};

qb_md_source_t *qb_md_synth_source_new(const qb_md_synth_opts_t *o, char *errstr,
                                       size_t errstr_size) {
    const char *bad = NULL;
    if (!(o->start_price > 0 && o->start_price < 1e9)) bad = "start_price (0 < p < 1e9)";
    else if (!(o->sigma >= 0 && o->sigma <= 10)) bad = "sigma (0..10)";
    else if (!(o->regime_mult >= 1 && o->regime_mult <= 20)) bad = "regime_mult (1..20)";
    else if (!(o->p_enter_stress >= 0 && o->p_enter_stress <= 1)) bad = "p_enter_stress (0..1)";
    else if (!(o->p_exit_stress >= 0 && o->p_exit_stress <= 1)) bad = "p_exit_stress (0..1)";
    else if (!(o->jump_prob >= 0 && o->jump_prob <= 1)) bad = "jump_prob (0..1)";
    else if (!(o->jump_sigma >= 0 && o->jump_sigma <= 2)) bad = "jump_sigma (0..2)";
    else if (!(o->mu >= -5 && o->mu <= 5)) bad = "mu (-5..5)";
    else if (!(o->volume_mean >= 0 && o->volume_mean <= 1e12)) bad = "volume_mean (0..1e12)";
    else if (!(o->tick >= 1e-8 && o->tick <= 1000)) bad = "tick (1e-8..1000)";
    else if (o->substeps < 1 || o->substeps > 64) bad = "substeps (1..64)";
    else if (o->bars_per_day < 0) bad = "bars_per_day (>= 0)";
    if (bad) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "synthetic: bad option %s", bad);
        return NULL;
    }
    qb_md_synth_t *g = calloc(1, sizeof(*g));
    if (!g) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->base.ops = &qb_synth_ops;
    g->o = *o;
    if (qb_dec_from_double(o->tick, &g->tick, QB_ROUND_HALF_EVEN) != QB_OK || g->tick <= 0) {
        free(g);
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "synthetic: bad option tick");
        return NULL;
    }
    return &g->base;
}
