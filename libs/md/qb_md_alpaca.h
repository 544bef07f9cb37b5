/* qb_md_alpaca.h — Alpaca Market Data v2 stock bars as a qb_md_source_t.
 *
 * Request: GET {base}/v2/stocks/{symbol}/bars?timeframe=&start=&end=&limit=
 * &adjustment=raw|all&sort=asc[&feed=][&page_token=] with the headers
 * APCA-API-KEY-ID and APCA-API-SECRET-KEY; pages are followed through
 * next_page_token until it is null. Response: {"bars":[{"t":RFC 3339,"o",
 * "h","l","c","v","n","vw"}],"symbol","next_page_token"}; "bars" may be
 * null (no data). end is sent only when req->to is set (Alpaca's end is
 * inclusive; bars outside [from, to) are dropped here).
 *
 * Timeframes: 1m 5m 15m 30m 1h 4h 1d 1w -> 1Min 5Min 15Min 30Min 1Hour
 * 4Hour 1Day 1Week. Intraday bars keep Alpaca's "t" (the bar's open time).
 * 1d and 1w bars, which Alpaca stamps at midnight America/New_York, are
 * re-stamped 00:00 UTC of that New York date (see qb_md_source.h).
 *
 * Pages. Each page is parsed whole before anything of it reaches the sink:
 *   - an envelope or a value that breaks the documented format (body not
 *     JSON, "bars" not an array, an item not an object, "o" not a number,
 *     "t" not an RFC 3339 time, next_page_token not a string, the same
 *     token twice) -> QB_ERR_PARSE "alpaca page 2 item 5: 'o' is not a
 *     number", and nothing of that page is delivered (earlier pages were);
 *   - an item missing a required field (t o h l c v), or whose number does
 *     not fit a qb_dec_t, is reported to sink->reject as
 *     where "alpaca page N item M", reason "missing 'h'" (N and M count
 *     from 1) and skipped; the rest of the page is delivered.
 * HTTP errors come from qb_http (NOT_FOUND for 404, INVALID for other 4xx
 * with Alpaca's "message", UNAVAILABLE/TIMEOUT after the retries).
 *
 * Configuration (environment, read by the constructor):
 *   QB_ALPACA_KEY_ID, QB_ALPACA_SECRET_KEY  required, secret (never logged)
 *   QB_ALPACA_RATE_PER_MIN                  default 200 (Alpaca's free plan)
 *   QB_ALPACA_FEED                          "iex", "sip", ...; default unset:
 *                                           the account's default feed
 * Options given in code win over the environment.
 *
 * Ownership: the returned source is freed with qb_md_source_destroy().
 * Threads: a source is used by one thread at a time (it owns a qb_http_t). */
#ifndef QB_MD_ALPACA_H
#define QB_MD_ALPACA_H

#include <stddef.h>

#include "core/qb_err.h"
#include "http/qb_http.h"
#include "md/qb_md_source.h"

#define QB_MD_ALPACA_DEFAULT_URL "https://data.alpaca.markets"

typedef struct qb_md_alpaca_opts_s {
    const char *feed;     /* NULL: QB_ALPACA_FEED, else not sent */
    int page_limit;       /* limit= per page; 0: 10000 (Alpaca's maximum) */
    double rate_per_min;  /* 0: QB_ALPACA_RATE_PER_MIN (default 200) */
    /* Time-outs, retries, back-off, body cap (qb_http_opts_t); source,
     * base_url and rate fields are ignored. Zero fields take qb_http's
     * defaults. */
    qb_http_opts_t http;
} qb_md_alpaca_opts_t;

/* base_url NULL or "" -> QB_MD_ALPACA_DEFAULT_URL; opts may be NULL.
 * Errors (NULL returned, errstr set): QB_ERR_CONFIG naming the variable
 * ("QB_ALPACA_KEY_ID: required but not set ..."), QB_ERR_INVALID, NOMEM. */
qb_md_source_t *qb_md_alpaca_source_new(const char *base_url,
                                        const qb_md_alpaca_opts_t *opts,
                                        char *errstr, size_t errstr_size);

/* "1d" -> "1Day" etc.; NULL for a timeframe Alpaca does not have. */
const char *qb_md_alpaca_timeframe(const char *timeframe);

#endif
