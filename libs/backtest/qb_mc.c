/* qb_mc.c — the seeded generator (xoshiro256** through splitmix64) and the
 * Monte Carlo bootstrap of trade returns. The model, the statistics and
 * the reproducibility rules are in qb_mc.h. Each path has its own
 * generator stream, so a path's numbers do not depend on the thread that
 * computes it; the statistics are computed afterwards in path order. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backtest/qb_bt_int.h"
#include "backtest/qb_mc.h"

/* ---- generator ------------------------------------------------------------------------- */

static uint64_t qb_mc_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qb_mc_rng_seed(qb_mc_rng_t *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = qb_mc_splitmix(&x);
}

void qb_mc_rng_seed_stream(qb_mc_rng_t *r, uint64_t seed, uint64_t stream) {
    /* splitmix of the seed, then the stream times an odd constant (a
     * bijection of the stream number) added: distinct streams of one seed
     * start splitmix at distinct points. */
    uint64_t x = seed;
    uint64_t base = qb_mc_splitmix(&x);
    qb_mc_rng_seed(r, base + stream * 0xd1b54a32d192ed03ULL);
}

static inline uint64_t qb_mc_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t qb_mc_rng_next(qb_mc_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = qb_mc_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = qb_mc_rotl(s[3], 45);
    return result;
}

uint64_t qb_mc_rng_below(qb_mc_rng_t *r, uint64_t n) {
    if (n == 0) return 0;
    __extension__ typedef unsigned __int128 u128;
    uint64_t x = qb_mc_rng_next(r);
    u128 m = (u128)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = (0 - n) % n; /* 2^64 mod n */
        while (l < t) {
            x = qb_mc_rng_next(r);
            m = (u128)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double qb_mc_rng_double(qb_mc_rng_t *r) {
    return (double)(qb_mc_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- inputs ---------------------------------------------------------------------------- */

size_t qb_mc_returns_from_trades(const qb_bt_trade_t *trades, size_t ntrades,
                                 const qb_bt_point_t *equity, size_t npoints,
                                 qb_dec_t initial, qb_mc_basis_t basis, int closed_only,
                                 double *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < ntrades; i++) {
        const qb_bt_trade_t *t = &trades[i];
        if (closed_only && t->open) continue;
        double x;
        if (basis == QB_MC_NOTIONAL) {
            x = t->return_pct;
        } else {
            /* the last point with ts < entry_ts */
            size_t lo = 0, hi = equity ? npoints : 0;
            while (lo < hi) {
                size_t m = lo + (hi - lo) / 2;
                if (equity[m].ts < t->entry_ts) lo = m + 1;
                else hi = m;
            }
            qb_dec_t e = lo ? equity[lo - 1].equity : initial;
            if (e <= 0) continue;
            x = (double)t->net_pnl / (double)e;
        }
        if (k < cap) out[k] = x;
        k++;
    }
    return k;
}

/* ---- run ------------------------------------------------------------------------------- */

const double qb_mc_qprob[QB_MC_NQ] = {0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99};

void qb_mc_config_default(qb_mc_config_t *c) {
    memset(c, 0, sizeof *c);
    c->paths = 10000;
    c->ruin_level = 0.5;
}

void qb_mc_path(const double *returns, size_t n, uint64_t seed, uint64_t i, uint64_t len,
                double ruin_level, double *final_return, double *max_dd, int *ruined) {
    qb_mc_rng_t r;
    qb_mc_rng_seed_stream(&r, seed, i);
    double e = 1.0, peak = 1.0, dd = 0.0;
    int ru = 0;
    for (uint64_t j = 0; j < len; j++) {
        double x = returns[qb_mc_rng_below(&r, n)];
        e = e * (1.0 + x);
        if (!(e > 0)) e = 0.0; /* all is lost, and stays lost */
        if (e > peak) {
            peak = e;
        } else {
            double d = (peak - e) / peak;
            if (d > dd) dd = d;
        }
        if (e <= ruin_level) ru = 1;
    }
    *final_return = e - 1.0;
    *max_dd = dd;
    *ruined = ru;
}

double qb_mc_quantile(const double *x, size_t n, double p) {
    if (n == 0) return 0;
    if (p <= 0) return x[0];
    if (p >= 1) return x[n - 1];
    double h = (double)(n - 1) * p;
    size_t k = (size_t)floor(h);
    if (k + 1 >= n) return x[n - 1];
    return x[k] + (h - (double)k) * (x[k + 1] - x[k]);
}

typedef struct qb_mc_job_s {
    const double *ret;
    size_t n;
    uint64_t seed, len, paths;
    double level;
    double *fin, *dd;
    unsigned char *ruin;
    uint64_t next; /* atomic */
} qb_mc_job_t;

#define QB_MC_CHUNK 1024

static void *qb_mc_worker(void *arg) {
    qb_mc_job_t *j = arg;
    for (;;) {
        uint64_t a = __atomic_fetch_add(&j->next, QB_MC_CHUNK, __ATOMIC_RELAXED);
        if (a >= j->paths) break;
        uint64_t b = a + QB_MC_CHUNK < j->paths ? a + QB_MC_CHUNK : j->paths;
        for (uint64_t i = a; i < b; i++) {
            int ru;
            qb_mc_path(j->ret, j->n, j->seed, i, j->len, j->level, &j->fin[i], &j->dd[i], &ru);
            j->ruin[i] = (unsigned char)ru;
        }
    }
    return NULL;
}

static int qb_mc_dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Statistics of v[n]; sorts a copy in tmp. */
static void qb_mc_dist(const double *v, size_t n, double *tmp, qb_mc_dist_t *d) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    d->mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (v[i] - d->mean) * (v[i] - d->mean);
    d->stdev = sqrt(ss / (double)n);
    memcpy(tmp, v, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, qb_mc_dcmp);
    d->min = tmp[0];
    d->max = tmp[n - 1];
    for (int k = 0; k < QB_MC_NQ; k++) d->q[k] = qb_mc_quantile(tmp, n, qb_mc_qprob[k]);
}

qb_err_t qb_mc_run(const double *returns, size_t n, const qb_mc_config_t *cfg,
                   qb_mc_result_t *out, char *errstr, size_t errstr_size) {
    if (n == 0) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "monte carlo: no trades");
    if (cfg->paths < 1 || cfg->paths > 100000000ULL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "monte carlo: paths must be 1..100000000");
    if (!(cfg->ruin_level > 0 && cfg->ruin_level <= 1))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "monte carlo: ruin_level must be in (0, 1]");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(returns[i]))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "monte carlo: trade return %zu is not a finite number", i);
    uint64_t len = cfg->trades_per_path ? cfg->trades_per_path : n;
    if (len > 100000000ULL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "monte carlo: trades_per_path must be <= 100000000");
    qb_mc_job_t j = {returns, n, cfg->seed, len, cfg->paths, cfg->ruin_level, NULL, NULL, NULL, 0};
    size_t np = (size_t)cfg->paths;
    j.fin = malloc(np * sizeof(double));
    j.dd = malloc(np * sizeof(double));
    j.ruin = malloc(np);
    double *tmp = malloc(np * sizeof(double));
    if (!j.fin || !j.dd || !j.ruin || !tmp) {
        free(j.fin);
        free(j.dd);
        free(j.ruin);
        free(tmp);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "monte carlo: out of memory");
    }
    int nt = cfg->threads > 1 ? cfg->threads : 1;
    if (nt > 256) nt = 256;
    pthread_t th[256];
    int started = 0;
    for (int t = 1; t < nt; t++)
        if (pthread_create(&th[started], NULL, qb_mc_worker, &j) == 0) started++;
    qb_mc_worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);

    memset(out, 0, sizeof *out);
    out->paths = cfg->paths;
    out->trades_per_path = len;
    out->ninput = n;
    out->seed = cfg->seed;
    out->ruin_level = cfg->ruin_level;
    uint64_t ruined = 0, lost = 0;
    for (size_t i = 0; i < np; i++) {
        ruined += j.ruin[i];
        lost += j.fin[i] < 0;
    }
    out->ruined = ruined;
    out->prob_ruin = (double)ruined / (double)np;
    out->prob_loss = (double)lost / (double)np;
    qb_mc_dist(j.fin, np, tmp, &out->final_return);
    qb_mc_dist(j.dd, np, tmp, &out->max_dd);
    free(tmp);
    free(j.ruin);
    if (cfg->keep_paths) {
        out->path_final = j.fin;
        out->path_max_dd = j.dd;
    } else {
        free(j.fin);
        free(j.dd);
    }
    return QB_OK;
}

void qb_mc_result_free(qb_mc_result_t *r) {
    if (!r) return;
    free(r->path_final);
    free(r->path_max_dd);
    r->path_final = r->path_max_dd = NULL;
}

static void qb_mc_dist_json(qb_bt_sb_t *sb, const char *key, const qb_mc_dist_t *d) {
    static const char *const qn[QB_MC_NQ] = {"p1", "p5", "p10", "p25", "p50",
                                             "p75", "p90", "p95", "p99"};
    qb_bt_sb_printf(sb, ",\"%s\":{\"mean\":", key);
    qb_bt_sb_double(sb, d->mean);
    qb_bt_sb_printf(sb, ",\"stdev\":");
    qb_bt_sb_double(sb, d->stdev);
    qb_bt_sb_printf(sb, ",\"min\":");
    qb_bt_sb_double(sb, d->min);
    qb_bt_sb_printf(sb, ",\"max\":");
    qb_bt_sb_double(sb, d->max);
    for (int k = 0; k < QB_MC_NQ; k++) {
        qb_bt_sb_printf(sb, ",\"%s\":", qn[k]);
        qb_bt_sb_double(sb, d->q[k]);
    }
    qb_bt_sb_printf(sb, "}");
}

size_t qb_mc_result_json(const qb_mc_result_t *r, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_bt_sb_printf(&sb,
                    "{\"paths\":%llu,\"trades_per_path\":%llu,\"input_trades\":%llu,"
                    "\"seed\":%llu,\"ruin_level\":",
                    (unsigned long long)r->paths, (unsigned long long)r->trades_per_path,
                    (unsigned long long)r->ninput, (unsigned long long)r->seed);
    qb_bt_sb_double(&sb, r->ruin_level);
    qb_bt_sb_printf(&sb, ",\"prob_ruin\":");
    qb_bt_sb_double(&sb, r->prob_ruin);
    qb_bt_sb_printf(&sb, ",\"prob_loss\":");
    qb_bt_sb_double(&sb, r->prob_loss);
    qb_mc_dist_json(&sb, "final_return", &r->final_return);
    qb_mc_dist_json(&sb, "max_dd", &r->max_dd);
    qb_bt_sb_printf(&sb, "}");
    return sb.len;
}
