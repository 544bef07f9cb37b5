/* qb_md_coinbase.h — Coinbase Exchange candles (crypto bars) as a
 * qb_md_source_t.
 *
 * Request: GET {base}/products/{product_id}/candles?granularity=&start=&end=
 * — public, no key; product ids like "BTC-USD"; start/end are RFC 3339.
 * Response: a JSON array of candles [time, low, high, open, close, volume]
 * (time in Unix seconds, the bucket's open), NEWEST FIRST; buckets without
 * trades are absent. At most 300 candles per request (Coinbase rejects a
 * range that would hold more), and candles may precede `start`. Errors are
 * {"message": "..."} with 404 for an unknown product (-> QB_ERR_NOT_FOUND)
 * and 400 otherwise (-> QB_ERR_INVALID).
 *
 * Timeframes: 1m 5m 15m 1h 1d -> granularity 60 300 900 3600 86400.
 * Coinbase's 21600 (6 h) has no platform timeframe, and 30m/4h/1w no
 * Coinbase granularity: QB_ERR_INVALID.
 *
 * Paging. Coinbase has no cursor, so [from, to) is walked forward in
 * windows of 300 candles: the first window starts at the first bucket
 * open >= from; window k covers [w, w + 300 * granularity) (cut at `to`,
 * which defaults to now), sent as start=w, end=window end. Only candles
 * inside the window (and inside [from, to)) are kept, so each bar comes
 * from exactly one window. An empty window is skipped (no data yet, or no
 * trades). Each non-empty window is one sink batch, OLDEST FIRST (the
 * response is sorted by time; a repeated time is rejected as a duplicate).
 *
 * 24x7: every bucket is kept as Coinbase stamps it; daily candles already
 * open at 00:00 UTC, which is the platform's daily stamp.
 *
 * Each response is parsed whole before anything of it reaches the sink:
 *   - body not a JSON array, a candle that is not an array of at least 6
 *     elements, a field that is neither a number nor null, a time that is
 *     not integer seconds -> QB_ERR_PARSE "coinbase window 2 item 5: 'open'
 *     is not a number" (items count from 1 in response order), nothing of
 *     that window delivered (earlier windows were);
 *   - a null field or a value that does not fit a qb_dec_t ->
 *     sink->reject("coinbase window 2 item 5", "null volume").
 * Prices: the JSON double -> shortest round-trip text -> qb_dec_parse_round
 * half-even (see qb_md_alpaca.c).
 *
 * Configuration (environment, read by the constructor):
 *   QB_COINBASE_RATE_PER_SEC  default 10 (Coinbase's public limit)
 *
 * Ownership and threads: as qb_md_alpaca.h. */
#ifndef QB_MD_COINBASE_H
#define QB_MD_COINBASE_H

#include <stddef.h>

#include "core/qb_err.h"
#include "http/qb_http.h"
#include "md/qb_md_source.h"

#define QB_MD_COINBASE_DEFAULT_URL "https://api.exchange.coinbase.com"
#define QB_MD_COINBASE_MAX_CANDLES 300

typedef struct qb_md_coinbase_opts_s {
    double rate_per_sec; /* 0: QB_COINBASE_RATE_PER_SEC (default 10) */
    int window_candles;  /* candles per request, 1..300; 0: 300 */
    qb_http_opts_t http; /* as in qb_md_alpaca_opts_t */
} qb_md_coinbase_opts_t;

/* base_url NULL or "" -> QB_MD_COINBASE_DEFAULT_URL; opts may be NULL.
 * NULL with errstr on error (QB_ERR_CONFIG, QB_ERR_INVALID, NOMEM). */
qb_md_source_t *qb_md_coinbase_source_new(const char *base_url,
                                          const qb_md_coinbase_opts_t *opts,
                                          char *errstr, size_t errstr_size);

/* "1h" -> 3600 etc.; 0 for a timeframe Coinbase does not have. */
int qb_md_coinbase_granularity(const char *timeframe);

#endif
