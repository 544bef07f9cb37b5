/* qb_md_yahoo.h — Yahoo Finance chart JSON (bars, splits, dividends) as a
 * qb_md_source_t.
 *
 * Request: GET {base}/v8/finance/chart/{symbol}?period1=&period2=&interval=
 * &includePrePost=false[&events=div,splits] — period1/period2 are Unix
 * seconds; no key. Response:
 *   {"chart":{"result":[{"meta":{"symbol","exchangeTimezoneName",
 *     "gmtoffset","instrumentType",...},
 *     "timestamp":[s,...],
 *     "events":{"dividends":{"<s>":{"amount","date"}},
 *               "splits":{"<s>":{"date","numerator","denominator",
 *                                "splitRatio"}}},
 *     "indicators":{"quote":[{"open":[],"high":[],"low":[],"close":[],
 *                             "volume":[]}],"adjclose":[...]}}],
 *   "error":null}}
 * The quote arrays run parallel to "timestamp" and hold null where Yahoo
 * has no value. With no data in the range "timestamp" is absent. Errors
 * come as {"chart":{"result":null,"error":{"code","description"}}}, with
 * HTTP 404 and code "Not Found" for an unknown symbol (-> QB_ERR_NOT_FOUND),
 * 400/422 otherwise (-> QB_ERR_INVALID); both carry Yahoo's description.
 *
 * Timeframes: 1m 5m 15m 30m 1h 1d -> interval 1m 5m 15m 30m 60m 1d (4h and
 * 1w have no Yahoo equivalent: QB_ERR_INVALID). Yahoo caps the span of one
 * intraday request, so [from, to) is walked in windows: 7 days for 1m, 60
 * days for 5m/15m/30m, 730 days for 1h; 1d is one request. (Yahoo also
 * keeps only the last ~30 days of 1m and ~60 days of 5m-30m data.)
 *
 * Stamps. Intraday bars keep Yahoo's timestamp (the bar's open). A daily bar
 * is stamped by Yahoo at the session's open (09:30 New York = 14:30Z or
 * 13:30Z) and is re-stamped 00:00 UTC of its exchange-local date: the
 * offset comes from libs/cal's tzdata for meta.exchangeTimezoneName (DST
 * correct), falling back to meta.gmtoffset (a warning) when the zone is
 * unknown. For daily bars period1/period2 are widened by a day so sessions
 * of zones far from UTC are not cut off; bars are then kept when their
 * stamp lies in [from, to).
 *
 * Prices are open/high/low/close of indicators.quote[0], never adjclose.
 * NOTE: Yahoo's quote prices are already adjusted for SPLITS (not for
 * dividends) — bars before a split are not the prices traded then. Requests
 * with req->adjusted are refused (QB_ERR_INVALID): adjusted series are
 * computed on read from the stored corporate actions.
 *
 * Each response is parsed whole before anything of it reaches the sink:
 *   - a broken envelope or field (body not JSON, no chart/result, an array
 *     whose length differs from "timestamp", a value that is neither a
 *     number nor null, a timestamp that is not integer seconds, a 'symbol'
 *     other than asked) -> QB_ERR_PARSE naming the position, e.g.
 *     "yahoo item 5: 'open' is not a number" or "yahoo: body is not JSON
 *     (error at byte 57 of 60)"; nothing of that response is delivered
 *     (earlier windows were);
 *   - an item with a null value (Yahoo's "no trade") or a value that does
 *     not fit a qb_dec_t goes to sink->reject: where "yahoo item 17"
 *     ("yahoo window 2 item 17" after the first window; items count from
 *     1 in the response), reason "null close" (every null field listed:
 *     "null open, high, low, close, volume").
 *
 * Corporate actions (qb_md_yahoo_fetch_actions): one interval=1d request
 * with events=div,splits over [from, to) (widened as for daily bars);
 * every dividend and split is returned with its ex-date as the session
 * date 00:00 UTC (as above), a split's ratio = numerator / denominator
 * (8 decimals, half-even: 3-for-2 is 1.5, 1-for-3 is 0.33333333), a
 * dividend's amount per share. A malformed event is QB_ERR_PARSE (nothing
 * returned). Yahoo's dividend amounts are split-adjusted like its prices.
 *
 * Configuration (environment, read by the constructor):
 *   QB_YAHOO_RATE_PER_MIN  default 60 (Yahoo publishes no limit; be polite)
 * Options given in code win over the environment.
 *
 * Ownership: the source is freed with qb_md_source_destroy(); arrays from
 * qb_md_yahoo_fetch_actions are malloc'd and freed by the caller with
 * free(). Threads: a source is used by one thread at a time. */
#ifndef QB_MD_YAHOO_H
#define QB_MD_YAHOO_H

#include <stddef.h>

#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "http/qb_http.h"
#include "md/qb_md_source.h"
#include "md/qb_md_store.h"
#include "store/qb_store.h"

#define QB_MD_YAHOO_DEFAULT_URL "https://query1.finance.yahoo.com"

typedef struct qb_md_yahoo_opts_s {
    double rate_per_min; /* 0: QB_YAHOO_RATE_PER_MIN (default 60) */
    qb_http_opts_t http; /* as in qb_md_alpaca_opts_t */
} qb_md_yahoo_opts_t;

/* base_url NULL or "" -> QB_MD_YAHOO_DEFAULT_URL; opts may be NULL.
 * NULL with errstr on error (QB_ERR_CONFIG naming the variable,
 * QB_ERR_INVALID, QB_ERR_NOMEM). */
qb_md_source_t *qb_md_yahoo_source_new(const char *base_url, const qb_md_yahoo_opts_t *opts,
                                       char *errstr, size_t errstr_size);

/* "1h" -> "60m" etc.; NULL for a timeframe Yahoo does not have. */
const char *qb_md_yahoo_interval(const char *timeframe);

/* One split or dividend. */
typedef struct qb_md_yahoo_action_s {
    qb_time_t ex_date;        /* 00:00 UTC of the exchange-local ex date */
    qb_md_action_kind_t kind; /* QB_MD_ACTION_SPLIT or QB_MD_ACTION_DIVIDEND */
    qb_dec_t value;           /* split: numerator/denominator; dividend: amount */
    qb_dec_t numerator;       /* splits: as Yahoo sends them; 0 for dividends */
    qb_dec_t denominator;
} qb_md_yahoo_action_t;

/* Splits and dividends of `symbol` with ex-date in [from, to) (to 0: now),
 * sorted by ex_date then kind (split first), into *out (malloc'd, NULL when
 * none; the caller frees) and *n. `asset_class` (may be NULL; capacity
 * 16) receives the platform class of meta.instrumentType: EQUITY ->
 * "equity", ETF -> "etf", CRYPTOCURRENCY -> "crypto", CURRENCY -> "fx",
 * FUTURE -> "future", anything else -> "equity". src must be a Yahoo
 * source (else QB_ERR_INVALID). Errors as qb_md_fetch. */
qb_err_t qb_md_yahoo_fetch_actions(qb_md_source_t *src, const char *symbol, qb_time_t from,
                                   qb_time_t to, qb_md_yahoo_action_t **out, size_t *n,
                                   char *asset_class, char *errstr, size_t errstr_size);

/* Fetch the actions as above and store them (source "yahoo") in ONE
 * transaction with qb_md_store_put_corporate_action — upserts, so running
 * it twice leaves one row per (asset, ex_date, kind). The asset is created
 * when new, with `asset_class` (NULL: from meta.instrumentType, see
 * above). *splits / *dividends (may be NULL) receive the counts stored.
 * Nothing is stored when the fetch fails. The caller must not be inside a
 * transaction. */
qb_err_t qb_md_yahoo_ingest_actions(qb_md_source_t *src, qb_store_t *store, const char *symbol,
                                    qb_time_t from, qb_time_t to, const char *asset_class,
                                    size_t *splits, size_t *dividends, char *errstr,
                                    size_t errstr_size);

#endif
