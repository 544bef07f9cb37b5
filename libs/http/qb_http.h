/* qb_http.h — a small HTTP client for vendor APIs, over libcurl.
 *
 * Why: every market-data vendor (Alpaca, Polygon, Yahoo, Coinbase, FRED) is a
 * JSON-over-HTTPS API with the same needs: a base URL, API keys that must
 * never reach a log, time-outs, retries that back off politely, a per-vendor
 * rate limit, and errors that say what the vendor said. One handle per
 * source holds all of that; an adapter only builds paths and parses bodies.
 *
 * Request life (qb_http_get / qb_http_get_url):
 *   1. the URL is base_url + path + "?" + params (each name and value
 *      percent-encoded per RFC 3986: only A-Z a-z 0-9 - . _ ~ stay as is),
 *      then the handle's secret params (e.g. Polygon's apiKey);
 *   2. the token bucket is asked for a token; when empty the call sleeps
 *      (nanosleep, in slices that watch opts.cancel) until one is due;
 *   3. GET with the default headers, connect and total time-outs, and the
 *      body capped at opts.max_body bytes;
 *   4. 2xx -> QB_OK. Network errors, time-outs, 408, 429 and 5xx are retried up to
 *      opts.max_attempts attempts in all: the wait is Retry-After when the
 *      response carries one (delta-seconds or an HTTP-date), capped at
 *      opts.retry_after_max_ms, else exponential back-off with full jitter:
 *      uniform in [0, min(backoff_max_ms, backoff_base_ms * 2^(retry-1))].
 *      Every attempt takes its own rate-limit token.
 *   Errors (errstr says source, method, redacted URL, status and the vendor's
 *   message — the "message"/"error" string of a JSON body, else a printable
 *   snippet of the body):
 *     QB_ERR_NOT_FOUND    404 (not retried)
 *     QB_ERR_INVALID      any other 4xx (but 408 and 429, which are retried)
 *                         or an unexpected 1xx/3xx (redirects are not
 *                         followed: keys stay on base_url), not retried; or
 *                         a bad argument (a URL outside base_url, ...)
 *     QB_ERR_RANGE        the body exceeded opts.max_body (not retried)
 *     QB_ERR_TIMEOUT      the last attempt timed out (after the retries)
 *     QB_ERR_UNAVAILABLE  429/5xx/network error still failing after
 *                         max_attempts (with the last status or curl reason),
 *                         or the wait was cancelled
 *     QB_ERR_NOMEM
 *   On NOT_FOUND and INVALID from a status, *resp is still filled (status,
 *   body, headers) so the caller can look closer; on every other error it is
 *   empty. Always qb_http_resp_free() it.
 *
 * Secrets. Header values and query params added with `secret` set are sent
 * but never written anywhere: log lines and error messages show the URL with
 * secret params as "***", and every text this module produces is passed
 * through qb_http_redact(), which also masks a secret value wherever else it
 * shows up (say, echoed in a vendor's error body). Secrets are wiped from
 * memory on destroy.
 *
 * Logging: debug line per attempt (method, redacted URL, status, ms), warn
 * line per retry. Metrics (source must be a plain word: [A-Za-z0-9_-]):
 *   qb_http_requests_total{source,code}  one per attempt; code is the HTTP
 *                                        status, or "error" (network) or
 *                                        "timeout"
 *   qb_http_retries_total{source}        one per retry
 *   qb_http_request_seconds{source}      attempt latency (histogram)
 *
 * Threads. A handle is NOT thread-safe: one thread uses it at a time (it
 * owns a curl easy handle, its connection cache and the token bucket). The
 * rate limit is per handle, so a process should have one handle per vendor
 * account; a service that fetches a vendor from several threads either
 * serialises them on one handle or divides the rate between handles.
 * curl_global_init runs exactly once per process (pthread_once) on the first
 * qb_http_new(); curl_global_cleanup is never called (it is not safe while
 * other libraries, e.g. librdkafka's OIDC, may use curl).
 *
 * Ownership: qb_http_new copies every string it is given; qb_http_destroy
 * frees the handle (NULL is a no-op). Response bodies and headers belong to
 * the qb_http_resp_t and are freed by qb_http_resp_free (also on a zeroed or
 * already freed struct). */
#ifndef QB_HTTP_H
#define QB_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

typedef struct qb_http_s qb_http_t;

/* Zero means "the default" for every numeric field. */
typedef struct qb_http_opts_s {
    const char *source;          /* label for logs/metrics, e.g. "alpaca"; required */
    const char *base_url;        /* e.g. "https://data.alpaca.markets"; required;
                                    a trailing '/' is dropped */
    long connect_timeout_ms;     /* default 5000 */
    long timeout_ms;             /* whole attempt incl. body; default 30000 */
    int max_attempts;            /* attempts in all (1 = no retry); default 5 */
    int64_t backoff_base_ms;     /* first back-off cap; default 500 */
    int64_t backoff_max_ms;      /* back-off cap; default 30000 */
    int64_t retry_after_max_ms;  /* Retry-After is capped at this; default 60000 */
    double rate_per_sec;         /* token refill rate; 0 = no rate limit */
    double rate_burst;           /* bucket size (tokens); default 1: evenly spaced */
    size_t max_body;             /* response body cap in bytes; default 64 MiB */
    const char *user_agent;      /* default "quantbus/1" */
    /* When non-NULL and *cancel becomes non-zero (e.g. a signal handler's
     * flag), waits for the rate limit or a retry stop within ~100 ms and the
     * call returns QB_ERR_UNAVAILABLE "cancelled". */
    const volatile sig_atomic_t *cancel;
} qb_http_opts_t;

/* A query parameter; value NULL sends "name" alone. Not copied. */
typedef struct qb_http_param_s {
    const char *name;
    const char *value;
} qb_http_param_t;

/* The outcome of one call (the last attempt's). */
typedef struct qb_http_resp_s {
    long status;           /* HTTP status; 0 when there was no response */
    char *body;            /* NUL-terminated (binary-safe with body_len); never
                              NULL after a call that returned QB_OK */
    size_t body_len;
    char *headers;         /* raw header block of the final response */
    int attempts;          /* attempts made (1 + retries) */
    int64_t retry_after_ms;/* parsed Retry-After of the last response, or -1 */
} qb_http_resp_t;

/* NULL and QB_ERR_INVALID/QB_ERR_NOMEM in errstr on bad options. */
qb_http_t *qb_http_new(const qb_http_opts_t *opts, char *errstr, size_t errstr_size);
/* NULL is a no-op. Secrets are zeroed before they are freed. */
void qb_http_destroy(qb_http_t *h);

/* Add a header sent with every request ("APCA-API-KEY-ID", key). With secret
 * non-zero its value is redacted everywhere. name must be a token (no ':',
 * CR, LF) and value must not contain CR/LF: else QB_ERR_INVALID. */
qb_err_t qb_http_add_header(qb_http_t *h, const char *name, const char *value,
                            int secret, char *errstr, size_t errstr_size);
/* Add a query parameter appended to every request, after the call's own
 * params (Polygon's "apiKey"; its next_url needs it again). */
qb_err_t qb_http_add_param(qb_http_t *h, const char *name, const char *value,
                           int secret, char *errstr, size_t errstr_size);

/* GET base_url + path (path starts with '/', already encoded: build segments
 * with qb_http_url_encode) with params. See the top of this file. */
qb_err_t qb_http_get(qb_http_t *h, const char *path, const qb_http_param_t *params,
                     size_t nparams, qb_http_resp_t *resp, char *errstr,
                     size_t errstr_size);
/* GET an absolute URL a vendor returned (a next-page link), plus params and
 * the handle's own params. The URL must lie under base_url (same scheme,
 * host and port, then '/' or '?'), so keys never go to another host: else
 * QB_ERR_INVALID. */
qb_err_t qb_http_get_url(qb_http_t *h, const char *url, const qb_http_param_t *params,
                         size_t nparams, qb_http_resp_t *resp, char *errstr,
                         size_t errstr_size);

/* Value of a response header (case-insensitive name, first occurrence,
 * surrounding blanks trimmed) copied into buf; 1 if found, else 0. */
int qb_http_resp_header(const qb_http_resp_t *resp, const char *name, char *buf,
                        size_t cap);
void qb_http_resp_free(qb_http_resp_t *resp);

/* Replace every occurrence of every secret value of h in the NUL-terminated
 * buf (of capacity cap) with "***", in place; the result is truncated to
 * cap-1 characters if it would grow (secrets shorter than 3 characters). */
void qb_http_redact(const qb_http_t *h, char *buf, size_t cap);

/* The handle's source label and base URL (never NULL). */
const char *qb_http_source(const qb_http_t *h);
const char *qb_http_base_url(const qb_http_t *h);

/* ---- pure helpers (unit-tested in tests/unit/test_http_backoff.c) ------ */

/* Percent-encode s (RFC 3986 unreserved characters kept) into buf. Returns
 * the full length like snprintf (>= cap means truncated). */
size_t qb_http_url_encode(const char *s, char *buf, size_t cap);

/* Full-jitter back-off before retry number `retry` (1 = the first retry):
 * rnd mapped uniformly onto [0, min(max_ms, base_ms * 2^(retry-1))]. Never
 * overflows (the doubling stops at max_ms). Returns 0 when base_ms <= 0. */
int64_t qb_http_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, uint64_t rnd);

/* Parse a Retry-After value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", IMF-fixdate; the obsolete RFC 850 and
 * asctime forms too). A date is turned into a delay from now_unix_s (0 if
 * already past). Returns 1 and *out_ms on success, 0 when malformed. */
int qb_http_parse_retry_after(const char *value, int64_t now_unix_s, int64_t *out_ms);

/* The wait before retry `retry`: min(retry_after_ms, retry_after_max_ms)
 * when retry_after_ms >= 0, else qb_http_backoff_ms(...). */
int64_t qb_http_retry_delay_ms(int retry, int64_t retry_after_ms,
                               int64_t retry_after_max_ms, int64_t base_ms,
                               int64_t max_ms, uint64_t rnd);

/* Token bucket, as a plain value so its arithmetic can be tested with a
 * fake clock. capacity tokens at most, refilled at rate_per_sec. */
typedef struct qb_http_bucket_s {
    double rate_per_sec; /* <= 0: unlimited */
    double capacity;     /* >= 1 */
    double tokens;       /* may go negative: tokens reserved ahead */
    int64_t last_ns;     /* monotonic time of the last refill */
} qb_http_bucket_t;

/* Start full at now_ns. capacity < 1 is taken as 1. */
void qb_http_bucket_init(qb_http_bucket_t *b, double rate_per_sec, double capacity,
                         int64_t now_ns);
/* Take one token at now_ns (a reservation): returns how many ns the caller
 * must wait before its request may go (0 = now). Callers that always wait
 * the returned time get at most `capacity` requests in any window plus
 * rate_per_sec per second after. */
int64_t qb_http_bucket_take(qb_http_bucket_t *b, int64_t now_ns);

#endif
