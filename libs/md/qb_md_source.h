/* qb_md_source.h — the one interface every market-data source implements:
 * CSV files, vendors (Alpaca, Polygon, Yahoo, Coinbase, FRED), the synthetic
 * generator, and replay from storage.
 *
 * A source fetches the bars of one symbol and timeframe over a time range
 * and hands them to a sink in batches (a vendor page, a chunk of a file),
 * oldest first. It does its own paging, retries and rate limiting. It does
 * NOT validate bars beyond what it must to build them (qb_md_validate does,
 * downstream), but it reports what it could not turn into a bar at all — a
 * CSV row that does not parse, a vendor record missing a field — through the
 * sink's reject callback with where it came from ("file.csv:17",
 * "polygon page 3 item 12"), so nothing is dropped silently.
 *
 * Conventions (docs/ARCHITECTURE.md, "Market data"):
 *   - bar.ts is the bar's OPEN time, ns since the epoch, UTC;
 *   - a daily ("1d") bar is stamped 00:00 UTC of its session date (the
 *     exchange-local trading date), whatever the vendor sends (Alpaca and
 *     Polygon send midnight America/New_York): so two sources of the same day
 *     agree, and the grid check is ts % 1 day == 0;
 *   - prices and volume are exact decimals (qb_dec_t); vendor JSON doubles
 *     are converted with qb_dec_parse_round on their text, half-even;
 *   - bars are raw (unadjusted) unless the request asks otherwise.
 *
 * Ownership: a source is created by its adapter's constructor (e.g.
 * qb_md_csv_source_new) and freed with qb_md_source_destroy(). Bars passed
 * to the sink are valid during the call only. */
#ifndef QB_MD_SOURCE_H
#define QB_MD_SOURCE_H

#include <stddef.h>

#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"

/* What to fetch: bars of `symbol` with open time in [from, to). */
typedef struct qb_md_request_s {
    const char *symbol;    /* as the platform writes it, e.g. "AAPL", "BTC-USD" */
    const char *timeframe; /* "1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w" */
    qb_time_t from;        /* inclusive, ns UTC */
    qb_time_t to;          /* exclusive, ns UTC; 0 = up to now */
    int adjusted;          /* 1: ask the vendor for split/dividend-adjusted
                              bars (only where it can); 0 (default): raw */
} qb_md_request_t;

/* Where a source delivers. `bars` is called with batches in time order; a
 * non-OK return stops the fetch, which returns that error. `reject` (may be
 * NULL) is told about every record that could not become a bar. */
typedef struct qb_md_sink_s {
    qb_err_t (*bars)(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                     size_t errstr_size);
    void (*reject)(void *opaque, const char *where, const char *reason);
    void *opaque;
} qb_md_sink_t;

typedef struct qb_md_source_s qb_md_source_t;

/* The adapter's functions. Implementations live in libs/md/qb_md_<name>.c. */
typedef struct qb_md_source_ops_s {
    const char *name; /* "csv", "alpaca", "polygon", "yahoo", "coinbase", "fred",
                         "synthetic", "replay" */
    qb_err_t (*fetch)(qb_md_source_t *src, const qb_md_request_t *req,
                      const qb_md_sink_t *sink, char *errstr, size_t errstr_size);
    void (*destroy)(qb_md_source_t *src);
} qb_md_source_ops_t;

/* Every adapter's state struct starts with this. */
struct qb_md_source_s {
    const qb_md_source_ops_t *ops;
    /* Grid the bar times are on when it is not the timeframe's (0): the
     * resample source's session-aligned bars (an NYSE 1h bar opens at
     * 09:30) are on the input timeframe's grid. The ingest validates
     * against it. */
    int64_t grid_ns;
};

/* Fetch req into sink. Errors: QB_ERR_INVALID (bad request), QB_ERR_NOT_FOUND
 * (unknown symbol at the vendor), QB_ERR_UNAVAILABLE (vendor down after the
 * retries), QB_ERR_PARSE (a response that is not what the vendor documents:
 * nothing of that page reached the sink), or what the sink returned. */
qb_err_t qb_md_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                     const qb_md_sink_t *sink, char *errstr, size_t errstr_size);
const char *qb_md_source_name(const qb_md_source_t *src);
/* NULL is a no-op. */
void qb_md_source_destroy(qb_md_source_t *src);

#endif
