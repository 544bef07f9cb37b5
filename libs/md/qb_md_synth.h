/* qb_md_synth.h — a seeded synthetic bar generator behind the source
 * interface (qb_md_source.h), for demos, tests and benchmarks.
 *
 * STITCHABLE: the bar of (options incl. seed, symbol, timeframe, open time t)
 * is a pure function of those. Any request returns, for the times it covers,
 * exactly the bars (bitwise equal qb_bar_t) that any other request covering
 * them returns: fetching [a,c) equals fetching [a,b) then [b,c), a bar
 * fetched alone equals the same bar out of a long fetch. So scheduled
 * "since the last bar" jobs and backfills of holes join their neighbours
 * without a jump or a conflict.
 *
 * Model, per symbol: geometric Brownian motion of the log price on a model
 * clock where every calendar day (weekends included) is 1/252 of a year,
 *   - drift `mu` and volatility `sigma` (annualised on that clock: daily log
 *     returns have stdev sigma/sqrt(252), weekly sigma*sqrt(7/252), 1m bars
 *     sigma/sqrt(252*1440));
 *   - two volatility regimes, calm (sigma) and stressed (sigma *
 *     regime_mult), switching as a Markov chain with per-DAY probabilities
 *     p_enter_stress and p_exit_stress (the regime is constant over a day);
 *   - jumps: each day has probability jump_prob of a jump whose log size is
 *     normal(0, jump_sigma), at a time of day drawn uniformly; in intraday
 *     bars it shows up in the one bar containing that time.
 *
 * Construction, in two levels:
 *   1. The SKELETON: the log price at 00:00 UTC of every day since the origin
 *      QB_MD_SYNTH_ORIGIN (1900-01-01T00:00Z; requests starting earlier are
 *      refused with QB_ERR_RANGE). The regime chain is drawn as alternating
 *      geometric sojourns and the jumps as geometric gaps, both iterated from
 *      the origin (a few hundred draws to reach today with the defaults, one
 *      per switch or jump, not one per day). The Brownian part is two
 *      Gaussian random walks, one per regime, indexed by the number of calm
 *      (stressed) days so far; each walk is built as a dyadic Brownian-bridge
 *      tree over 2^18 days, so any day's value costs 18 draws and a run of
 *      days costs about one draw per day. The skeleton is then pinned so the
 *      price at QB_MD_SYNTH_PIN (2000-01-01T00:00Z) is `start_price`; the path
 *      runs both ways from there.
 *   2. BARS. Daily bars run from one day's skeleton point to the next; a 1w
 *      bar (aligned like every timeframe to multiples of its length from the
 *      epoch: Thursdays) spans 7 of them. Intraday bars (m = 1 day /
 *      timeframe per day) follow a discrete Brownian bridge from the day's
 *      skeleton point to the next day's, drawn forward from 00:00; a request
 *      starting mid-day redraws the day from 00:00 (at most one day of bars).
 *      So closes at 00:00 UTC agree across timeframes: the 1m, 1h and 1d
 *      paths of a symbol meet at every midnight.
 *   Within a bar, high and low are the extremes of a Brownian bridge of
 *   `substeps` sub-steps between its open and close (incl. the bar's jump,
 *   if any, at its time); for 1w, of each of its days. A bar opens at the
 *   previous bar's close (the same log price, so the same rounded price).
 *   weekdays_only only drops bars: the rest equal those of the all-days path,
 *   so Monday opens at Saturday 00:00's price (the weekend's move is a gap).
 *
 * Randomness: counter-based (splitmix64 hashes keyed by seed, symbol, what
 * is drawn and its absolute index: sojourn or jump number, tree node, bar
 * number since the origin), never a running stream, which is what makes
 * stitching exact. Different symbols and seeds are independent paths.
 *
 * Prices are rounded to the nearest `tick` (default 0.01) and never fall
 * below one tick; volume is lognormal around `volume_mean`, rounded to whole
 * units, twice as large on stressed days.
 *
 * Cost: a request pays the skeleton walk from the origin to its first day
 * (~10 us with the defaults; more with very frequent switches or jumps, up to
 * a few ms when they are near 1 per day) plus up to one day of intraday bars
 * before its first bar; then about one normal draw per bar and sub-step.
 *
 * Timestamps: every multiple of the timeframe in [from, to); 1d bars at 00:00
 * UTC (the session-date convention of qb_md_source.h), 1w on Thursdays. With
 * weekdays_only, bars opening on Saturday or Sunday (UTC) are skipped. */
#ifndef QB_MD_SYNTH_H
#define QB_MD_SYNTH_H

#include <stdint.h>

#include "md/qb_md_source.h"

/* 1900-01-01T00:00:00Z: the skeleton starts here; earlier ranges are refused. */
#define QB_MD_SYNTH_ORIGIN (-2208988800LL * QB_NS_PER_SEC)
/* 2000-01-01T00:00:00Z: the price here is start_price. */
#define QB_MD_SYNTH_PIN (946684800LL * QB_NS_PER_SEC)

typedef struct qb_md_synth_opts_s {
    uint64_t seed;
    double start_price;    /* price at QB_MD_SYNTH_PIN, > 0; default 100 */
    double mu;             /* annual drift of the log price; default 0.05 */
    double sigma;          /* annual volatility, calm regime; default 0.20 */
    double regime_mult;    /* stressed sigma = sigma * regime_mult; default 3 */
    double p_enter_stress; /* per day; default 0.002 */
    double p_exit_stress;  /* per day; default 0.05 */
    double jump_prob;      /* per day; default 0.001 */
    double jump_sigma;     /* std dev of the log jump; default 0.05 */
    double volume_mean;    /* mean volume per bar; default 1e6 */
    double tick;           /* price grid; default 0.01 */
    int substeps;          /* Brownian sub-steps per bar (per day for 1w) for
                              high/low; default 8 (1..64) */
    int bars_per_day;      /* unused since bars are stitched to a daily
                              skeleton (a day's variance is sigma^2/252,
                              spread evenly over all of its bars); kept so
                              callers compile, still must be >= 0 */
    int weekdays_only;     /* skip bars opening on Saturdays and Sundays */
} qb_md_synth_opts_t;

/* The defaults above with the given seed. */
void qb_md_synth_opts_default(qb_md_synth_opts_t *o, uint64_t seed);

/* A new generator (options copied). NULL with errstr on bad options
 * (naming the field). Free with qb_md_source_destroy().
 * Fetch errors: QB_ERR_INVALID (unknown timeframe, bad symbol, no range
 * end), QB_ERR_RANGE (range starts before QB_MD_SYNTH_ORIGIN), QB_ERR_OVERFLOW
 * (a price or volume left the decimal range: drift or volatility too large
 * for the range), QB_ERR_NOMEM, or what the sink returned. */
qb_md_source_t *qb_md_synth_source_new(const qb_md_synth_opts_t *opts, char *errstr,
                                       size_t errstr_size);

#endif
