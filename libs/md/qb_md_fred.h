/* qb_md_fred.h — FRED (Federal Reserve Economic Data) series observations.
 *
 * Why not a qb_md_source_t: an economic series is one value per date
 * (monthly, weekly, daily ...), not OHLCV bars; it goes to md.observations
 * (qb_md_store_put_observations), not md.bars. So FRED has its own handle
 * with the same habits as the bar adapters (qb_http, rate limit, pages
 * parsed whole, rejects reported with their position).
 *
 * Request: GET {base}/fred/series/observations?series_id=&file_type=json
 * &observation_start=YYYY-MM-DD&observation_end=YYYY-MM-DD&sort_order=asc
 * &limit=&offset=&api_key=KEY. Response: {"realtime_start","realtime_end",
 * "observation_start","observation_end","units","output_type","file_type",
 * "order_by","sort_order","count":N,"offset":O,"limit":L,
 * "observations":[{"realtime_start","realtime_end","date":"YYYY-MM-DD",
 * "value":"3.7"}]} — values are TEXT, "." where FRED has no value.
 * Errors: {"error_code":400,"error_message":"Bad Request.  The series does
 * not exist."} -> QB_ERR_NOT_FOUND for "does not exist", QB_ERR_INVALID
 * otherwise (a bad key, a bad parameter), with FRED's message.
 *
 * Range. [from, to) in ns UTC, from 0: no lower bound (FRED's first date),
 * to 0: no upper bound. Observation dates are 00:00 UTC; a date d is kept
 * when from <= d < to (observation_start/end are the first/last such
 * dates; FRED's bounds are inclusive).
 *
 * Pages: offset = 0, limit = page_limit (FRED's maximum 100000), then
 * offset += items until offset >= count or a page is empty. Each page is
 * parsed whole before any of it reaches the callback:
 *   - a body that is not the documented object, "observations" not an
 *     array, an item that is not an object, "date" not a YYYY-MM-DD date,
 *     "value" not a string, "count"/"offset" not numbers -> QB_ERR_PARSE
 *     "fred page 2 item 5: 'date' is not a date", nothing of that page
 *     delivered (earlier pages were);
 *   - value "." (no value for that date) -> skipped, counted in
 *     stats->missing and reported to sink->reject with where "fred page 1
 *     item 3" and reason "2020-04-01: no value ('.')"; a value that is not
 *     a decimal (or does not fit a qb_dec_t) likewise, counted in
 *     stats->rejected. Values are parsed from FRED's text, so they are
 *     exact (more than 8 decimals: rounded half-even).
 *
 * Configuration (environment, read by qb_md_fred_new):
 *   QB_FRED_API_KEY       required, secret (sent as api_key, never logged)
 *   QB_FRED_RATE_PER_MIN  default 120 (FRED's documented limit)
 *
 * Ownership: qb_md_fred_new returns a handle freed by qb_md_fred_destroy
 * (NULL is a no-op). Observations passed to the callback are valid during
 * the call only. Threads: one thread at a time per handle. */
#ifndef QB_MD_FRED_H
#define QB_MD_FRED_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_time.h"
#include "http/qb_http.h"
#include "md/qb_md_store.h"
#include "store/qb_store.h"

#define QB_MD_FRED_DEFAULT_URL "https://api.stlouisfed.org"
#define QB_MD_FRED_MAX_LIMIT 100000

typedef struct qb_md_fred_s qb_md_fred_t;

typedef struct qb_md_fred_opts_s {
    int page_limit;      /* limit= per page, 1..100000; 0: 100000 */
    double rate_per_min; /* 0: QB_FRED_RATE_PER_MIN (default 120) */
    qb_http_opts_t http; /* as in qb_md_alpaca_opts_t */
} qb_md_fred_opts_t;

/* base_url NULL or "" -> QB_MD_FRED_DEFAULT_URL; opts may be NULL.
 * NULL with errstr on error: QB_ERR_CONFIG naming QB_FRED_API_KEY when it
 * is unset or empty, QB_ERR_INVALID, QB_ERR_NOMEM. */
qb_md_fred_t *qb_md_fred_new(const char *base_url, const qb_md_fred_opts_t *opts,
                             char *errstr, size_t errstr_size);
void qb_md_fred_destroy(qb_md_fred_t *f);

/* Where observations go. `obs` gets each page's kept observations in date
 * order (n >= 1); a non-OK return stops the fetch with that error.
 * `reject` (may be NULL) is told about every skipped item. */
typedef struct qb_md_fred_sink_s {
    qb_err_t (*obs)(void *opaque, const qb_md_observation_t *obs, size_t n, char *errstr,
                    size_t errstr_size);
    void (*reject)(void *opaque, const char *where, const char *reason);
    void *opaque;
} qb_md_fred_sink_t;

typedef struct qb_md_fred_stats_s {
    int64_t pages;     /* responses parsed */
    int64_t delivered; /* observations passed to sink->obs (or stored) */
    int64_t missing;   /* "." values skipped */
    int64_t rejected;  /* other values skipped (not a decimal) */
    int64_t count;     /* FRED's "count" of the last page */
} qb_md_fred_stats_t;

/* Observations of `series_id` (letters, digits, '_'; up to 64; sent
 * upper-cased) with date in [from, to). stats (may be NULL) is filled, also
 * on error (counts so far). Errors: QB_ERR_INVALID (bad series id / range
 * or FRED said 400), QB_ERR_NOT_FOUND (unknown series), QB_ERR_PARSE,
 * QB_ERR_UNAVAILABLE/TIMEOUT (after qb_http's retries), or the sink's. */
qb_err_t qb_md_fred_fetch_observations(qb_md_fred_t *f, const char *series_id, qb_time_t from,
                                       qb_time_t to, const qb_md_fred_sink_t *sink,
                                       qb_md_fred_stats_t *stats, char *errstr,
                                       size_t errstr_size);

/* Fetch as above and, when the WHOLE fetch succeeded, upsert every
 * observation into md.observations (series = the upper-cased id, source
 * "fred") in one transaction: a failed fetch stores nothing, and a revised
 * value replaces the stored one. `reject` (may be NULL) receives the skipped
 * items as in the sink. The caller must not be inside a transaction. */
qb_err_t qb_md_fred_ingest(qb_md_fred_t *f, qb_store_t *store, const char *series_id,
                           qb_time_t from, qb_time_t to,
                           void (*reject)(void *opaque, const char *where, const char *reason),
                           void *opaque, qb_md_fred_stats_t *stats, char *errstr,
                           size_t errstr_size);

#endif
