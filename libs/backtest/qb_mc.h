/* qb_mc.h — Monte Carlo of a trade list: bootstrap of trade returns into N
 * equity paths; the distribution of the final return and of the maximum
 * drawdown, and the probability of ruin. Also the one seeded random
 * generator of the backtest library (random search uses it too).
 *
 * Why: a backtest (or the stitched out-of-sample trades of a walk-forward)
 * is one ordering of one sample of trades; resampling them shows how much
 * of its return and drawdown is luck of the order and of the sample.
 *
 * ---- Model -------------------------------------------------------------------
 * Input: n trade returns r_1..r_n, each a fraction of the ACCOUNT equity
 * the trade was made with (qb_mc_returns_from_trades: net P&L / equity
 * before the trade's entry step; or the trade's own return_pct on its
 * notional). Path i (i = 0..N-1) draws L = trades_per_path (default n)
 * returns uniformly WITH replacement (a bootstrap) and compounds them from
 * E_0 = 1:
 *     E_j = E_{j-1} x (1 + x_j)      (j = 1..L; E_j below 0 is clamped to
 *                                      0 and stays there: all is lost)
 *   final return  E_L - 1
 *   max drawdown  max over j of (P_j - E_j) / P_j, P_j = max(E_0..E_j)
 *                 (a fraction >= 0; E_0 counts as a peak, so a first losing
 *                 trade is a drawdown)
 *   ruin          the path touches E_j <= ruin_level for some j (level as a
 *                 fraction of the start: 0.5 = half the money lost at any
 *                 point, not only at the end); prob_ruin = ruined paths / N.
 *   prob_loss     share of paths with final return < 0.
 * Overlapping trades (several symbols at once) are compounded one after
 * another, which is an approximation of their joint effect.
 *
 * ---- Reproducibility ------------------------------------------------------------
 * Path i has its OWN generator, seeded from (seed, i) (qb_mc_rng_seed_stream),
 * so path i is the same for any number of threads and any N > i, and
 * qb_mc_path recomputes one path alone. The generator: xoshiro256** seeded
 * through splitmix64; integers in [0, n) by Lemire's multiply-shift with
 * rejection (unbiased). Same seed, same inputs -> same numbers on any
 * machine (IEEE doubles, no libm calls in a path).
 *
 * ---- Statistics ------------------------------------------------------------------
 * Per quantity (final return, max drawdown): mean, stdev (population), min,
 * max and the quantiles at p = 1, 5, 10, 25, 50, 75, 90, 95, 99 %, by
 * linear interpolation between order statistics (numpy's default, R type
 * 7): with sorted x_0..x_{N-1}, h = (N - 1) p, q = x_floor(h) + (h -
 * floor(h)) (x_floor(h)+1 - x_floor(h)).
 *
 * ---- Ownership -----------------------------------------------------------------------
 * qb_mc_run fills a plain result; with keep_paths its two arrays are
 * malloc'd and freed by qb_mc_result_free (which also zeroes them).
 * Reentrant; no global state. */
#ifndef QB_MC_H
#define QB_MC_H

#include <stddef.h>
#include <stdint.h>

#include "backtest/qb_backtest.h"
#include "core/qb_err.h"

/* ---- generator ------------------------------------------------------------ */

typedef struct qb_mc_rng_s {
    uint64_t s[4];
} qb_mc_rng_t;

/* Seed with splitmix64(seed) x 4. */
void qb_mc_rng_seed(qb_mc_rng_t *r, uint64_t seed);
/* An independent stream: seed mixed with the stream number. */
void qb_mc_rng_seed_stream(qb_mc_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t qb_mc_rng_next(qb_mc_rng_t *r);
/* Uniform in [0, n), n >= 1 (0 for n == 0). */
uint64_t qb_mc_rng_below(qb_mc_rng_t *r, uint64_t n);
/* Uniform double in [0, 1) (53 bits). */
double qb_mc_rng_double(qb_mc_rng_t *r);

/* ---- inputs ------------------------------------------------------------------ */

typedef enum qb_mc_basis_e {
    QB_MC_EQUITY = 0,  /* net_pnl / equity before the trade's entry step */
    QB_MC_NOTIONAL = 1 /* the trade's return_pct (net_pnl / entry notional) */
} qb_mc_basis_t;

/* Returns of trades (open ones included unless closed_only) into out[]
 * (cap entries; returns how many trades qualify). EQUITY basis: the
 * equity is the curve point of the last step before entry_ts (initial
 * when none: `initial`); a trade whose equity is <= 0 is skipped.
 * equity may be NULL only for the NOTIONAL basis. */
size_t qb_mc_returns_from_trades(const qb_bt_trade_t *trades, size_t ntrades,
                                 const qb_bt_point_t *equity, size_t npoints,
                                 qb_dec_t initial, qb_mc_basis_t basis, int closed_only,
                                 double *out, size_t cap);

/* ---- run -------------------------------------------------------------------------- */

typedef struct qb_mc_config_s {
    uint64_t paths;           /* N >= 1; default 10000; at most 1e8 */
    uint64_t seed;            /* default 0 (callers print what they used) */
    uint64_t trades_per_path; /* L; 0 = n (default) */
    double ruin_level;        /* (0, 1]; default 0.5 */
    int keep_paths;           /* 1: keep each path's final return and max dd */
    int threads;              /* <= 1: this thread */
} qb_mc_config_t;

void qb_mc_config_default(qb_mc_config_t *c);

#define QB_MC_NQ 9
/* The quantile probabilities, in order: 0.01 0.05 0.10 0.25 0.50 0.75
 * 0.90 0.95 0.99. */
extern const double qb_mc_qprob[QB_MC_NQ];

typedef struct qb_mc_dist_s {
    double mean, stdev, min, max;
    double q[QB_MC_NQ];       /* at qb_mc_qprob */
} qb_mc_dist_t;

typedef struct qb_mc_result_s {
    uint64_t paths, trades_per_path, ninput;
    uint64_t seed;
    double ruin_level;
    qb_mc_dist_t final_return;
    qb_mc_dist_t max_dd;
    double prob_ruin;         /* ruined paths / N */
    double prob_loss;         /* final return < 0 */
    uint64_t ruined;
    double *path_final;       /* keep_paths: [paths], else NULL */
    double *path_max_dd;
} qb_mc_result_t;

/* Run the bootstrap. QB_ERR_INVALID for n == 0, a bad config, or a
 * non-finite return (message names its index); QB_ERR_NOMEM. The result
 * is the same for any thread count. */
qb_err_t qb_mc_run(const double *returns, size_t n, const qb_mc_config_t *cfg,
                   qb_mc_result_t *out, char *errstr, size_t errstr_size);
void qb_mc_result_free(qb_mc_result_t *r);

/* Path i alone (the same numbers qb_mc_run gets for it): final return,
 * max drawdown, ruined (0/1). */
void qb_mc_path(const double *returns, size_t n, uint64_t seed, uint64_t i, uint64_t len,
                double ruin_level, double *final_return, double *max_dd, int *ruined);

/* Quantile p of sorted x[n] (type 7, above). n >= 1. */
double qb_mc_quantile(const double *sorted, size_t n, double p);

/* The result as JSON {"paths":N,"trades_per_path":L,"input_trades":n,
 * "seed":S,"ruin_level":x,"prob_ruin":..,"prob_loss":..,
 * "final_return":{"mean","stdev","min","max","p1","p5",...,"p99"},
 * "max_dd":{...}}. snprintf-like. */
size_t qb_mc_result_json(const qb_mc_result_t *r, char *buf, size_t cap);

#endif
