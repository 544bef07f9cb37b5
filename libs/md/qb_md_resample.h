/* qb_md_resample.h — build longer bars from stored shorter ones: 1m -> 5m,
 * 15m, 30m, 1h, 1d, or any multiple, session-aware for an exchange
 * calendar (cal/qb_cal.h).
 *
 * Buckets. With a calendar that has sessions (XNYS):
 *   - an intraday output bar of length T starts at the session open and
 *     every T after it: an NYSE 1h bar covers 09:30-10:30, ..., and the
 *     last one 15:30-16:00 (truncated by the close; 12:30-13:00 on an early
 *     close). It is stamped with its start (UTC ns).
 *   - a 1d bar covers one whole session and is stamped 00:00 UTC of the
 *     session date (md/qb_md_source.h).
 *   - input bars outside every session (extended hours, a holiday) are
 *     skipped and counted (qb_md_resampler_skipped), or rejected with
 *     QB_MD_RESAMPLE_STRICT.
 * With a continuous calendar (24x7) or cal == NULL, buckets are plain UTC
 * multiples of T since the epoch (a 1d bar is the UTC day 00:00-24:00).
 *
 * Values: open = the first input bar's open, high = max of highs, low = min
 * of lows, close = the last input bar's close, volume = the exact decimal
 * sum (QB_ERR_OVERFLOW past the qb_dec_t range). A bucket without input
 * bars produces no output bar (nothing is invented for a missing minute).
 * Output bars carry the input symbol and the output timeframe text.
 *
 * Streaming: push input bars in time order; a push returns the bars it
 * completed (0, 1 or 2 of them, see QB_MD_RESAMPLE_MAX_OUT): a bucket is
 * complete when a bar of a later bucket arrives, or as soon as an input bar
 * ends at the bucket's end (the 10:29 1m bar completes the 09:30 1h bar at
 * once; the 15:59 bar completes the day). qb_md_resampler_flush emits the
 * last, possibly partial, bucket at the end of the input.
 *
 * Input is checked: the symbol must be the resampler's, the timeframe the
 * input timeframe given at creation, times strictly increasing and on the
 * input grid (a multiple of the input length from the session open, or from
 * the epoch for 24x7); otherwise QB_ERR_INVALID with a message naming the
 * bar, and the resampler state is unchanged (the bad bar is not used).
 * Prices are not re-validated (qb_md_validate did that before storage).
 *
 * Ownership: a resampler is made by qb_md_resampler_new and freed by
 * qb_md_resampler_destroy (NULL is a no-op); the calendar is borrowed
 * (calendars live forever). Not thread-safe: one resampler per stream. */
#ifndef QB_MD_RESAMPLE_H
#define QB_MD_RESAMPLE_H

#include <stddef.h>

#include "cal/qb_cal.h"
#include "core/qb_err.h"
#include "core/qb_types.h"

#define QB_MD_RESAMPLE_MAX_OUT 2 /* bars one push can complete */

#define QB_MD_RESAMPLE_STRICT 0x1 /* input outside sessions is an error */

typedef struct qb_md_resampler_s qb_md_resampler_t;

/* Parse an output timeframe: "<n>m" (n minutes), "<n>h" (n hours) with a
 * length of at most one day, or "1d". Used for both arguments of
 * qb_md_resampler_new. QB_ERR_PARSE otherwise. */
qb_err_t qb_md_resample_tf_parse(const char *tf, int64_t *ns);

/* A resampler for `symbol` from bars of in_tf (e.g. "1m") to out_tf (e.g.
 * "1h"). in_tf must be shorter than one day; for intraday output out_tf
 * must be a multiple of in_tf. cal may be NULL (plain UTC buckets).
 * QB_ERR_INVALID / QB_ERR_PARSE with a message otherwise. */
qb_err_t qb_md_resampler_new(const qb_cal_t *cal, const char *symbol, const char *in_tf,
                             const char *out_tf, int flags, qb_md_resampler_t **out,
                             char *errstr, size_t errstr_size);
void qb_md_resampler_destroy(qb_md_resampler_t *rs);

/* Feed one input bar. Completed bars are written to out[0..*n_out)
 * (*n_out is 0 on error). */
qb_err_t qb_md_resampler_push(qb_md_resampler_t *rs, const qb_bar_t *bar,
                              qb_bar_t out[QB_MD_RESAMPLE_MAX_OUT], size_t *n_out,
                              char *errstr, size_t errstr_size);

/* End of input: the pending bucket, if any, goes to *out and *n_out = 1;
 * else *n_out = 0. The resampler can then take later bars again. */
void qb_md_resampler_flush(qb_md_resampler_t *rs, qb_bar_t *out, size_t *n_out);

/* Input bars skipped because they were outside every session. */
size_t qb_md_resampler_skipped(const qb_md_resampler_t *rs);

/* Batch: resample in[0..n) (one symbol: in[0]'s) and flush. Writes at most
 * cap bars (cap >= n is always enough) and sets *n_out; QB_ERR_RANGE when
 * more would be produced. Errors as push, with the input index. */
qb_err_t qb_md_resample(const qb_cal_t *cal, const char *in_tf, const char *out_tf,
                        int flags, const qb_bar_t *in, size_t n, qb_bar_t *out,
                        size_t cap, size_t *n_out, char *errstr, size_t errstr_size);

#endif
