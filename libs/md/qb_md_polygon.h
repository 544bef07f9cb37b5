/* qb_md_polygon.h — Polygon.io aggregates (stock bars) as a qb_md_source_t.
 *
 * Request: GET {base}/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/
 * {from}/{to}?adjusted=true|false&sort=asc&limit=&apiKey=KEY. from/to are
 * dates (YYYY-MM-DD, UTC date of req->from and of req->to - 1 ns) for 1d/1w
 * and Unix milliseconds for intraday; Polygon's `to` is inclusive, so bars
 * outside [from, to) are dropped here. A missing req->to means now.
 * Pages are followed through next_url (which must lie under the base URL;
 * the apiKey is appended again, as Polygon requires) until it is absent.
 * Response: {"ticker","status":"OK"|"DELAYED","resultsCount","results":
 * [{"t":ms,"o","h","l","c","v","vw","n"}],"next_url"}; "results" is absent
 * when there is no data (resultsCount 0).
 *
 * Timeframes: 1m 5m 15m 30m 1h 4h 1d 1w -> 1/minute 5/minute 15/minute
 * 30/minute 1/hour 4/hour 1/day 1/week. Intraday bars keep "t" (the window
 * start). 1d and 1w bars, stamped at midnight America/New_York by Polygon,
 * are re-stamped 00:00 UTC of that New York date (+12 h, truncate to the
 * UTC day; see qb_md_alpaca.c for why that is exact).
 *
 * Pages are parsed whole before anything reaches the sink, with the rules
 * of qb_md_alpaca.h: a broken envelope or field -> QB_ERR_PARSE "polygon
 * page 2 item 4: 'o' is not a number" and nothing of that page delivered; a
 * record missing t/o/h/l/c/v -> sink->reject("polygon page N item M",
 * "missing 'v'"). A body with "status":"ERROR" (or NOT_AUTHORIZED) is
 * QB_ERR_INVALID with Polygon's "error"/"message".
 *
 * Configuration (environment, read by the constructor):
 *   QB_POLYGON_API_KEY       required, secret (sent as apiKey, never logged)
 *   QB_POLYGON_RATE_PER_MIN  default 5 (the free plan)
 *
 * Ownership and threads: as qb_md_alpaca.h. */
#ifndef QB_MD_POLYGON_H
#define QB_MD_POLYGON_H

#include <stddef.h>

#include "core/qb_err.h"
#include "http/qb_http.h"
#include "md/qb_md_source.h"

#define QB_MD_POLYGON_DEFAULT_URL "https://api.polygon.io"

typedef struct qb_md_polygon_opts_s {
    int page_limit;      /* limit= per page; 0: 50000 (Polygon's maximum) */
    double rate_per_min; /* 0: QB_POLYGON_RATE_PER_MIN (default 5) */
    qb_http_opts_t http; /* as in qb_md_alpaca_opts_t */
} qb_md_polygon_opts_t;

/* base_url NULL or "" -> QB_MD_POLYGON_DEFAULT_URL; opts may be NULL.
 * NULL with errstr on error (QB_ERR_CONFIG naming the variable). */
qb_md_source_t *qb_md_polygon_source_new(const char *base_url,
                                         const qb_md_polygon_opts_t *opts,
                                         char *errstr, size_t errstr_size);

/* "4h" -> multiplier 4, timespan "hour"; QB_ERR_INVALID when unsupported. */
qb_err_t qb_md_polygon_timeframe(const char *timeframe, int *multiplier,
                                 const char **timespan);

#endif
