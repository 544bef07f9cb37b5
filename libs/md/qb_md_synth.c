/* qb_md_synth.c — the synthetic bar generator; see qb_md_synth.h for the
 * model. Owns only its options. Random numbers come from splitmix64 keyed by
 * (seed, symbol hash, bar index), so a bar's randomness does not depend on
 * how the range was batched. */
#include "md/qb_md_synth.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_decimal.h"

#define QB_SYNTH_BATCH 4096

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

static uint64_t qb_synth_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s; } qb_synth_rng_t;

static double qb_synth_uniform(qb_synth_rng_t *r) { /* (0, 1) */
    r->s = qb_synth_mix(r->s);
    return ((double)(r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double qb_synth_normal(qb_synth_rng_t *r) { /* Box-Muller, one value */
    double u1 = qb_synth_uniform(r), u2 = qb_synth_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t qb_synth_hash_str(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ---- generation ---------------------------------------------------------- */

static qb_err_t qb_synth_price(const qb_md_synth_t *g, double p, qb_dec_t *out) {
    qb_dec_t d;
    qb_err_t err = qb_dec_from_double(p, &d, QB_ROUND_HALF_EVEN);
    if (!err) err = qb_dec_quantize(d, g->tick, QB_ROUND_HALF_EVEN, &d);
    if (err) return err;
    *out = d < g->tick ? g->tick : d;
    return QB_OK;
}

static qb_dec_t qb_dec_max(qb_dec_t a, qb_dec_t b) { return a > b ? a : b; }
static qb_dec_t qb_dec_min(qb_dec_t a, qb_dec_t b) { return a < b ? a : b; }

static qb_err_t qb_synth_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                               const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_synth_t *g = (qb_md_synth_t *)src;
    const qb_md_synth_opts_t *o = &g->o;
    int64_t step;
    qb_symbol_t sym;
    if (qb_timeframe_parse(req->timeframe, &step) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "synthetic: unknown timeframe '%s'", req->timeframe);
    if (qb_symbol_set(&sym, req->symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    if (!req->to)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "synthetic: a range end is required");

    /* Years per bar, for annualised drift and volatility. */
    int bars_per_day = o->bars_per_day;
    if (step < QB_NS_PER_DAY && bars_per_day <= 0) {
        int64_t per = (390 * QB_NS_PER_MIN) / step;
        bars_per_day = per > 0 ? (int)per : 1;
    }
    double dt = step >= 7 * QB_NS_PER_DAY   ? 5.0 / 252.0
                : step >= QB_NS_PER_DAY     ? 1.0 / 252.0
                                            : 1.0 / (252.0 * bars_per_day);
    double sub_dt = dt / o->substeps;

    qb_time_t t;
    if (qb_time_floor(req->from, step, &t) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "synthetic: bad range start");
    if (t < req->from) t += step;

    qb_bar_t *batch = malloc(QB_SYNTH_BATCH * sizeof(*batch));
    if (!batch) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    uint64_t key = qb_synth_mix(o->seed ^ qb_synth_hash_str(sym.s));
    double logp = log(o->start_price);
    int stressed = 0;
    size_t n = 0;
    uint64_t index = 0;
    qb_err_t err = QB_OK;

    for (; t < req->to && !err; t += step, index++) {
        if (o->weekdays_only) {
            int wd = qb_time_weekday(t);
            if (wd == 0 || wd == 6) continue;
        }
        qb_synth_rng_t r = {qb_synth_mix(key + index * 0xd1b54a32d192ed03ULL)};
        double sig = stressed ? o->sigma * o->regime_mult : o->sigma;
        if (qb_synth_uniform(&r) < o->jump_prob) logp += o->jump_sigma * qb_synth_normal(&r);
        double open = exp(logp), hi = open, lo = open;
        for (int k = 0; k < o->substeps; k++) {
            logp += (o->mu - 0.5 * sig * sig) * sub_dt + sig * sqrt(sub_dt) * qb_synth_normal(&r);
            double p = exp(logp);
            if (p > hi) hi = p;
            if (p < lo) lo = p;
        }
        double close = exp(logp);
        double vol = o->volume_mean * exp(0.5 * qb_synth_normal(&r) - 0.125) * (stressed ? 2.0 : 1.0);
        if (qb_synth_uniform(&r) < (stressed ? o->p_exit_stress : o->p_enter_stress))
            stressed = !stressed;

        qb_bar_t *b = &batch[n];
        memset(b, 0, sizeof(*b));
        b->symbol = sym;
        snprintf(b->timeframe, sizeof(b->timeframe), "%s", req->timeframe);
        b->ts = t;
        qb_dec_t ph, pl;
        err = qb_synth_price(g, open, &b->open);
        if (!err) err = qb_synth_price(g, close, &b->close);
        if (!err) err = qb_synth_price(g, hi, &ph);
        if (!err) err = qb_synth_price(g, lo, &pl);
        if (!err) err = qb_dec_from_double(floor(vol + 0.5), &b->volume, QB_ROUND_HALF_EVEN);
        if (err) {
            qb_err_set(errstr, errstr_size, err, "synthetic %s: price left the decimal range "
                       "(drift/volatility too large for the range)", sym.s);
            break;
        }
        b->high = qb_dec_max(ph, qb_dec_max(b->open, b->close));
        b->low = qb_dec_min(pl, qb_dec_min(b->open, b->close));
        if (++n == QB_SYNTH_BATCH) {
            err = sink->bars(sink->opaque, batch, n, errstr, errstr_size);
            n = 0;
        }
    }
    if (!err && n) err = sink->bars(sink->opaque, batch, n, errstr, errstr_size);
    free(batch);
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
