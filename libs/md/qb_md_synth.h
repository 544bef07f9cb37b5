/* qb_md_synth.h — a seeded synthetic bar generator behind the source
 * interface (qb_md_source.h), for demos, tests and benchmarks.
 *
 * Model, per symbol: geometric Brownian motion of the log price with
 *   - drift `mu` and volatility `sigma` (annualised; a year is 252 days of
 *     `bars_per_day` bars for intraday timeframes, 252 bars for 1d);
 *   - two volatility regimes, calm (sigma) and stressed (sigma *
 *     regime_mult), switching as a Markov chain with per-bar probabilities
 *     p_enter_stress and p_exit_stress;
 *   - jumps: each bar has probability jump_prob of a jump whose log size is
 *     normal(0, jump_sigma).
 * Each bar is simulated in `substeps` Brownian sub-steps, so high and low are
 * the extremes of the path inside the bar (and open/close lie within them).
 * Prices are rounded to `tick` (default 0.01) and never fall below one tick;
 * volume is lognormal around `volume_mean`, rounded to whole units and
 * larger in the stressed regime.
 *
 * Determinism: the random stream is a counter-based hash of (seed, symbol,
 * bar index), so the same request with the same options gives bit-identical
 * bars, on any machine; different symbols are independent. Each request's
 * path starts at `start_price` at `from` (ranges are not stitched: fetch
 * [a,c) at once rather than [a,b) and [b,c) when continuity matters).
 *
 * Timestamps: every multiple of the timeframe in [from, to); 1d bars at 00:00
 * UTC (the session-date convention of qb_md_source.h). With
 * weekdays_only, Saturday and Sunday (UTC) are skipped. */
#ifndef QB_MD_SYNTH_H
#define QB_MD_SYNTH_H

#include <stdint.h>

#include "md/qb_md_source.h"

typedef struct qb_md_synth_opts_s {
    uint64_t seed;
    double start_price;    /* > 0; default 100 */
    double mu;             /* annual drift of the log price; default 0.05 */
    double sigma;          /* annual volatility, calm regime; default 0.20 */
    double regime_mult;    /* stressed sigma = sigma * regime_mult; default 3 */
    double p_enter_stress; /* per bar; default 0.002 */
    double p_exit_stress;  /* per bar; default 0.05 */
    double jump_prob;      /* per bar; default 0.001 */
    double jump_sigma;     /* std dev of the log jump; default 0.05 */
    double volume_mean;    /* mean volume per bar; default 1e6 */
    double tick;           /* price grid; default 0.01 */
    int substeps;          /* Brownian sub-steps per bar; default 8 (1..64) */
    int bars_per_day;      /* intraday bars per trading day, for annualising;
                              0 = 390 minutes' worth of the timeframe */
    int weekdays_only;     /* skip Saturdays and Sundays */
} qb_md_synth_opts_t;

/* The defaults above with the given seed. */
void qb_md_synth_opts_default(qb_md_synth_opts_t *o, uint64_t seed);

/* A new generator (options copied). NULL with errstr on bad options
 * (naming the field). Free with qb_md_source_destroy(). */
qb_md_source_t *qb_md_synth_source_new(const qb_md_synth_opts_t *opts, char *errstr,
                                       size_t errstr_size);

#endif
