/* it_md_vendors.c — the Alpaca and Polygon adapters (libs/md/qb_md_alpaca,
 * qb_md_polygon) and the HTTP client under them (libs/http/qb_http), each
 * against a fake server (tests/support/qb_fake_http) that speaks the
 * vendor's documented request and response formats:
 *   - 3 pages followed by page_token / next_url, every bar once and in
 *     order; the request parameters and their URL encoding; auth headers and
 *     apiKey sent (also on next_url) and never in any log line or error;
 *   - 429 + Retry-After: 1 then success (>= 1 s, exactly one retry);
 *     500 twice then success; 500 forever -> UNAVAILABLE after N attempts;
 *     a server that does not answer in time -> TIMEOUT;
 *   - a malformed body -> PARSE naming vendor, page and field, nothing of
 *     that page delivered; a record missing a field -> reject with its
 *     position, the rest delivered;
 *   - 404 -> NOT_FOUND (not retried); other 4xx -> INVALID with the
 *     vendor's message; a next_url to another host is refused;
 *   - daily bars re-stamped at the New York session date 00:00 UTC, across
 *     both 2024 DST changes; exact decimal prices and volumes;
 *   - the rate limit: N requests take at least (N-1)/rate;
 *   - a missing key -> a CONFIG error naming the variable.
 * No stack needed: everything runs in this process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "http/qb_http.h"
#include "md/qb_md_alpaca.h"
#include "md/qb_md_polygon.h"
#include "md/qb_md_source.h"
#include "qb_fake_http.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[1024];

/* Keys with characters that need URL encoding ('/', '+'). */
#define ALPACA_KEY "AKFAKEKEYID7Q2"
#define ALPACA_SECRET "sEcReT/alpaca+9xyzQ"
#define POLYGON_KEY "pOlYkEy_abc/123+zZ"
#define POLYGON_KEY_ENC "pOlYkEy_abc%2F123%2BzZ"

enum vendor { ALPACA, POLYGON };
enum scenario {
    S_PAGES,      /* 3 pages of 4 one-minute bars */
    S_429,        /* 429 Retry-After: 1, then one page */
    S_500_TWICE,  /* 500, 500, then one page */
    S_500_ALWAYS,
    S_MALFORMED,  /* page 1 good, page 2 truncated JSON */
    S_BAD_FIELD,  /* page 1 item 2 has "o":"abc" */
    S_MISSING,    /* page 1 item 2 lacks h (alpaca) / v (polygon) */
    S_404,
    S_400,
    S_SLOW,       /* sleeps 1.5 s before answering */
    S_DAILY,      /* daily bars across DST */
    S_DECIMAL,    /* one bar with awkward numbers */
    S_EVIL_NEXT,  /* polygon next_url to another host */
    S_ECHO,       /* 400 whose message echoes the key */
};

typedef struct fake_s {
    enum vendor vendor;
    enum scenario sc;
    char base[64];
    int auth_failures;
} fake_t;

/* 2024-01-02T14:30:00Z, the first bar of the paged scenarios */
#define T0_S 1704205800LL

static void bar_json(qb_fake_resp_t *r, const fake_t *f, int i, const char *skip) {
    int64_t ts = T0_S + 60LL * i;
    char t[QB_TIME_STRLEN];
    qb_time_format(ts * QB_NS_PER_SEC, t, sizeof(t));
    qb_fake_resp_printf(r, "{");
    if (strcmp(skip, "t") != 0) {
        if (f->vendor == ALPACA) qb_fake_resp_printf(r, "\"t\":\"%s\",", t);
        else qb_fake_resp_printf(r, "\"t\":%lld,", (long long)ts * 1000);
    }
    if (strcmp(skip, "h") != 0) qb_fake_resp_printf(r, "\"h\":%d.75,", 101 + i);
    qb_fake_resp_printf(r, "\"o\":%d.25,\"l\":%d.5,\"c\":%d.5,", 100 + i, 99 + i, 100 + i);
    if (strcmp(skip, "v") != 0) qb_fake_resp_printf(r, "\"v\":%d,", 1000 + i);
    qb_fake_resp_printf(r, "\"n\":12,\"vw\":%d.3333333333}", 100 + i);
}

/* One page of `n` bars starting at bar `first`; next is the token/URL
 * suffix of the following page or NULL. */
static void page_json(qb_fake_resp_t *r, const fake_t *f, int first, int n, const char *next,
                      int skip_item, const char *skip) {
    if (f->vendor == ALPACA)
        qb_fake_resp_printf(r, "{\"bars\":[");
    else
        qb_fake_resp_printf(r, "{\"ticker\":\"AAPL\",\"queryCount\":%d,\"resultsCount\":%d,"
                               "\"adjusted\":false,\"results\":[", n, n);
    for (int i = 0; i < n; i++) {
        if (i) qb_fake_resp_printf(r, ",");
        bar_json(r, f, first + i, i + 1 == skip_item ? skip : "");
    }
    if (f->vendor == ALPACA) {
        if (next) qb_fake_resp_printf(r, "],\"symbol\":\"AAPL\",\"next_page_token\":\"%s\"}", next);
        else qb_fake_resp_printf(r, "],\"symbol\":\"AAPL\",\"next_page_token\":null}");
    } else {
        qb_fake_resp_printf(r, "],\"status\":\"OK\",\"request_id\":\"abc\"");
        /* next_url as Polygon sends it: absolute, with a cursor, no apiKey */
        if (next) qb_fake_resp_printf(r, ",\"next_url\":\"%s/v2/aggs/ticker/AAPL/range/1/minute/"
                                      "1704205800000/1704206519999?cursor=%s\"", f->base, next);
        qb_fake_resp_printf(r, "}");
    }
}

static int page_of(const fake_t *f, const qb_fake_req_t *req) {
    const char *tok = qb_fake_req_arg(req, f->vendor == ALPACA ? "page_token" : "cursor");
    if (!tok) return 0;
    if (strcmp(tok, f->vendor == ALPACA ? "tok1" : "c1") == 0) return 1;
    if (strcmp(tok, f->vendor == ALPACA ? "tok2" : "c2") == 0) return 2;
    return -1;
}

static void error_json(qb_fake_resp_t *r, const fake_t *f, int status, const char *msg) {
    r->status = status;
    if (f->vendor == ALPACA) qb_fake_resp_printf(r, "{\"code\":%d00,\"message\":\"%s\"}", status, msg);
    else qb_fake_resp_printf(r, "{\"status\":\"ERROR\",\"request_id\":\"x\",\"error\":\"%s\"}", msg);
}

static void handler(void *opaque, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    fake_t *f = opaque;
    if (f->vendor == ALPACA) {
        const char *k = qb_fake_req_header(req, "APCA-API-KEY-ID");
        const char *s = qb_fake_req_header(req, "APCA-API-SECRET-KEY");
        if (!k || !s || strcmp(k, ALPACA_KEY) || strcmp(s, ALPACA_SECRET)) {
            f->auth_failures++;
            error_json(r, f, 403, "forbidden");
            return;
        }
    } else {
        const char *k = qb_fake_req_arg(req, "apiKey");
        if (!k || strcmp(k, POLYGON_KEY)) {
            f->auth_failures++;
            error_json(r, f, 401, "Unknown API Key");
            return;
        }
    }
    const char *nexts[2][3] = {{"tok1", "tok2", NULL}, {"c1", "c2", NULL}};
    int pg = page_of(f, req);
    if (pg < 0) { error_json(r, f, 400, "bad page token"); return; }
    switch (f->sc) {
    case S_PAGES:
        page_json(r, f, pg * 4, 4, nexts[f->vendor][pg], 0, "");
        return;
    case S_429:
        if (req->index == 0) {
            qb_fake_resp_header(r, "Retry-After", "1");
            error_json(r, f, 429, "too many requests");
            return;
        }
        page_json(r, f, 0, 4, NULL, 0, "");
        return;
    case S_500_TWICE:
        if (req->index < 2) { error_json(r, f, 500, "internal error"); return; }
        page_json(r, f, 0, 4, NULL, 0, "");
        return;
    case S_500_ALWAYS:
        error_json(r, f, 500, "internal error");
        return;
    case S_MALFORMED:
        if (pg == 0) { page_json(r, f, 0, 4, nexts[f->vendor][0], 0, ""); return; }
        qb_fake_resp_printf(r, "{\"bars\":[{\"t\":\"2024-01-02T14:34:00Z\",\"o\":1");
        return;
    case S_BAD_FIELD:
        if (f->vendor == ALPACA)
            qb_fake_resp_printf(r, "{\"bars\":[{\"t\":\"2024-01-02T14:30:00Z\",\"o\":1,\"h\":2,\"l\":1,"
                                   "\"c\":2,\"v\":5},{\"t\":\"2024-01-02T14:31:00Z\",\"o\":\"abc\","
                                   "\"h\":2,\"l\":1,\"c\":2,\"v\":5}],\"symbol\":\"AAPL\","
                                   "\"next_page_token\":null}");
        else
            qb_fake_resp_printf(r, "{\"ticker\":\"AAPL\",\"status\":\"OK\",\"resultsCount\":2,"
                                   "\"results\":[{\"t\":1704205800000,\"o\":1,\"h\":2,\"l\":1,\"c\":2,"
                                   "\"v\":5},{\"t\":1704205860000,\"o\":\"abc\",\"h\":2,\"l\":1,"
                                   "\"c\":2,\"v\":5}]}");
        return;
    case S_MISSING:
        page_json(r, f, 0, 4, NULL, 2, f->vendor == ALPACA ? "h" : "v");
        return;
    case S_404:
        error_json(r, f, 404, "symbol not found");
        return;
    case S_400:
        error_json(r, f, 400, "invalid timeframe");
        return;
    case S_SLOW:
        usleep(1500 * 1000);
        page_json(r, f, 0, 1, NULL, 0, "");
        return;
    case S_DAILY: {
        /* midnight New York: EST (05:00Z) before 2024-03-10 and after
         * 2024-11-03, EDT (04:00Z) between */
        static const char *stamps[] = {"2024-03-08T05:00:00Z", "2024-03-11T04:00:00Z",
                                       "2024-11-01T04:00:00Z", "2024-11-04T05:00:00Z"};
        qb_fake_resp_printf(r, f->vendor == ALPACA ? "{\"bars\":[" : "{\"ticker\":\"AAPL\","
                               "\"status\":\"OK\",\"resultsCount\":4,\"results\":[");
        for (int i = 0; i < 4; i++) {
            qb_time_t t;
            qb_time_parse(stamps[i], strlen(stamps[i]), &t);
            if (f->vendor == ALPACA) qb_fake_resp_printf(r, "%s{\"t\":\"%s\"", i ? "," : "", stamps[i]);
            else qb_fake_resp_printf(r, "%s{\"t\":%lld", i ? "," : "", (long long)(t / QB_NS_PER_MS));
            qb_fake_resp_printf(r, ",\"o\":10,\"h\":11,\"l\":9,\"c\":10.5,\"v\":100}");
        }
        qb_fake_resp_printf(r, f->vendor == ALPACA ? "],\"symbol\":\"AAPL\",\"next_page_token\":null}"
                                                   : "]}");
        return;
    }
    case S_DECIMAL:
        if (f->vendor == ALPACA)
            qb_fake_resp_printf(r, "{\"bars\":[{\"t\":\"2024-01-02T14:30:00Z\",\"o\":187.4321,"
                                   "\"h\":187.99999999,\"l\":0.1,\"c\":187.43215,\"v\":70281868,"
                                   "\"n\":1,\"vw\":187.4}],\"symbol\":\"AAPL\",\"next_page_token\":null}");
        else
            qb_fake_resp_printf(r, "{\"ticker\":\"AAPL\",\"status\":\"OK\",\"resultsCount\":1,"
                                   "\"results\":[{\"t\":1704205800000,\"o\":187.4321,"
                                   "\"h\":187.99999999,\"l\":0.1,\"c\":187.43215,"
                                   "\"v\":7.0281868e+07,\"vw\":187.4,\"n\":1}]}");
        return;
    case S_ECHO:
        error_json(r, f, 400, f->vendor == ALPACA ? "bad key " ALPACA_KEY : "bad key " POLYGON_KEY);
        return;
    case S_EVIL_NEXT:
        qb_fake_resp_printf(r, "{\"ticker\":\"AAPL\",\"status\":\"OK\",\"resultsCount\":0,"
                               "\"next_url\":\"http://evil.example/v2/aggs?cursor=x\"}");
        return;
    }
}

/* ---- sink ------------------------------------------------------------------ */

typedef struct sink_s {
    qb_bar_t bars[64];
    size_t n;
    int calls;
    char rejects[8][128];
    int nrej;
} sink_t;

static qb_err_t sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                          size_t errstr_size) {
    sink_t *s = opaque;
    s->calls++;
    for (size_t i = 0; i < n; i++) {
        if (s->n >= 64) return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "sink full");
        s->bars[s->n++] = bars[i];
    }
    return QB_OK;
}

static void sink_reject(void *opaque, const char *where, const char *reason) {
    sink_t *s = opaque;
    if (s->nrej < 8) snprintf(s->rejects[s->nrej++], 128, "%s: %s", where, reason);
}

/* ---- fixtures --------------------------------------------------------------- */

typedef struct env_s {
    fake_t fake;
    qb_fake_http_t *srv;
    qb_md_source_t *src;
    sink_t sink;
    qb_md_sink_t qsink;
} env_t;

/* A source of `vendor` against a fresh fake in scenario sc. Fast by default:
 * 60000 requests/min, 20 ms back-off base; rate_per_min < 0 means "take it
 * from the environment". */
static env_t *env_new(enum vendor v, enum scenario sc, int max_attempts, double rate_per_min,
                      long timeout_ms) {
    env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->fake.vendor = v;
    e->fake.sc = sc;
    e->srv = qb_fake_http_start(handler, &e->fake);
    snprintf(e->fake.base, sizeof(e->fake.base), "%s", qb_fake_http_url(e->srv));
    qb_http_opts_t ho = {.max_attempts = max_attempts, .backoff_base_ms = 20,
                         .backoff_max_ms = 200, .timeout_ms = timeout_ms};
    double rate = rate_per_min < 0 ? 0 : rate_per_min ? rate_per_min : 60000;
    if (v == ALPACA) {
        qb_md_alpaca_opts_t o = {.rate_per_min = rate, .http = ho};
        e->src = qb_md_alpaca_source_new(qb_fake_http_url(e->srv), &o, E, sizeof(E));
    } else {
        qb_md_polygon_opts_t o = {.rate_per_min = rate, .http = ho};
        e->src = qb_md_polygon_source_new(qb_fake_http_url(e->srv), &o, E, sizeof(E));
    }
    if (!e->src) fail_msg("source: %s", E);
    e->qsink = (qb_md_sink_t){sink_bars, sink_reject, &e->sink};
    return e;
}

static void env_free(env_t *e) {
    if (!e) return;
    qb_md_source_destroy(e->src);
    qb_fake_http_stop(e->srv);
    free(e);
}

static qb_err_t env_fetch(env_t *e, const char *tf, qb_time_t from, qb_time_t to) {
    qb_md_request_t req = {.symbol = "aapl", .timeframe = tf, .from = from, .to = to};
    E[0] = '\0';
    return qb_md_fetch(e->src, &req, &e->qsink, E, sizeof(E));
}

static qb_err_t env_fetch_minutes(env_t *e, int minutes) {
    return env_fetch(e, "1m", T0_S * QB_NS_PER_SEC, (T0_S + 60LL * minutes) * QB_NS_PER_SEC);
}

static uint64_t retries(const char *source) {
    char lab[64];
    snprintf(lab, sizeof(lab), "source=\"%s\"", source);
    return qb_counter_get(qb_metrics_counter("qb_http_retries_total", "", lab));
}

/* Bars 0..n-1 of the paged scenarios, exactly, in order. */
static void check_bars(const sink_t *s, int n) {
    assert_int_equal(s->n, n);
    for (int i = 0; i < n; i++) {
        const qb_bar_t *b = &s->bars[i];
        assert_string_equal(b->symbol.s, "AAPL");
        assert_string_equal(b->timeframe, "1m");
        assert_int_equal(b->ts, (T0_S + 60LL * i) * QB_NS_PER_SEC);
        assert_int_equal(b->open, (100 + i) * QB_DEC_SCALE + 25000000);
        assert_int_equal(b->high, (101 + i) * QB_DEC_SCALE + 75000000);
        assert_int_equal(b->low, (99 + i) * QB_DEC_SCALE + 50000000);
        assert_int_equal(b->close, (100 + i) * QB_DEC_SCALE + 50000000);
        assert_int_equal(b->volume, (1000 + i) * QB_DEC_SCALE);
    }
}

static void assert_no_secrets(const char *text) {
    static const char *secrets[] = {ALPACA_KEY, ALPACA_SECRET, POLYGON_KEY, POLYGON_KEY_ENC,
                                    "sEcReT%2Falpaca"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(text, secrets[i])) fail_msg("secret %s leaked into: %.400s", secrets[i], text);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_alpaca_pages(void **state) {
    (void)state;
    env_t *e = env_new(ALPACA, S_PAGES, 0, 0, 0);
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch_minutes(e, 12);
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level(QB_LOG_WARN);
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    check_bars(&e->sink, 12);
    assert_int_equal(e->sink.calls, 3); /* one batch per page */
    assert_int_equal(e->sink.nrej, 0);
    assert_int_equal(qb_fake_http_count(e->srv), 3);
    assert_int_equal(e->fake.auth_failures, 0);
    const char *want_tok[] = {NULL, "tok1", "tok2"};
    for (size_t i = 0; i < 3; i++) {
        const qb_fake_req_t *r = qb_fake_http_request(e->srv, i);
        assert_string_equal(r->method, "GET");
        assert_string_equal(r->path, "/v2/stocks/AAPL/bars");
        assert_string_equal(qb_fake_req_arg(r, "timeframe"), "1Min");
        assert_string_equal(qb_fake_req_arg(r, "start"), "2024-01-02T14:30:00Z");
        assert_string_equal(qb_fake_req_arg(r, "end"), "2024-01-02T14:42:00Z");
        assert_string_equal(qb_fake_req_arg(r, "adjustment"), "raw");
        assert_string_equal(qb_fake_req_arg(r, "sort"), "asc");
        assert_string_equal(qb_fake_req_arg(r, "limit"), "10000");
        assert_string_equal(qb_fake_req_header(r, "APCA-API-KEY-ID"), ALPACA_KEY);
        assert_string_equal(qb_fake_req_header(r, "APCA-API-SECRET-KEY"), ALPACA_SECRET);
        if (want_tok[i]) assert_string_equal(qb_fake_req_arg(r, "page_token"), want_tok[i]);
        else assert_null(qb_fake_req_arg(r, "page_token"));
        /* the query is percent-encoded on the wire */
        assert_non_null(strstr(r->target, "start=2024-01-02T14%3A30%3A00Z"));
    }
    /* the requests were logged (at debug) — without the keys */
    assert_non_null(strstr(log, "/v2/stocks/AAPL/bars"));
    assert_no_secrets(log);
    env_free(e);
}

static void test_polygon_pages(void **state) {
    (void)state;
    env_t *e = env_new(POLYGON, S_PAGES, 0, 0, 0);
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch_minutes(e, 12);
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level(QB_LOG_WARN);
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    check_bars(&e->sink, 12);
    assert_int_equal(e->sink.calls, 3);
    assert_int_equal(qb_fake_http_count(e->srv), 3);
    assert_int_equal(e->fake.auth_failures, 0);
    const qb_fake_req_t *r = qb_fake_http_request(e->srv, 0);
    /* to is exclusive for us, inclusive for Polygon: last ms before 14:42 */
    assert_string_equal(r->path, "/v2/aggs/ticker/AAPL/range/1/minute/1704205800000/1704206519999");
    assert_string_equal(qb_fake_req_arg(r, "adjusted"), "false");
    assert_string_equal(qb_fake_req_arg(r, "sort"), "asc");
    assert_string_equal(qb_fake_req_arg(r, "limit"), "50000");
    assert_null(qb_fake_req_arg(r, "cursor"));
    for (size_t i = 0; i < 3; i++) {
        r = qb_fake_http_request(e->srv, i);
        /* apiKey on every request, next_url ones included, encoded on the wire */
        assert_string_equal(qb_fake_req_arg(r, "apiKey"), POLYGON_KEY);
        assert_non_null(strstr(r->target, "apiKey=" POLYGON_KEY_ENC));
    }
    assert_string_equal(qb_fake_req_arg(qb_fake_http_request(e->srv, 1), "cursor"), "c1");
    assert_string_equal(qb_fake_req_arg(qb_fake_http_request(e->srv, 2), "cursor"), "c2");
    assert_non_null(strstr(log, "apiKey=***")); /* URLs were logged, redacted */
    assert_no_secrets(log);
    env_free(e);
}

static void run_429(enum vendor v) {
    const char *name = v == ALPACA ? "alpaca" : "polygon";
    env_t *e = env_new(v, S_429, 0, 0, 0);
    uint64_t r0 = retries(name);
    qb_test_capture_stderr_start();
    int64_t t0 = qb_test_now_ms();
    qb_err_t err = env_fetch_minutes(e, 4);
    int64_t ms = qb_test_now_ms() - t0;
    char *log = qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    check_bars(&e->sink, 4);
    assert_int_equal(qb_fake_http_count(e->srv), 2);
    assert_int_equal(retries(name) - r0, 1);
    if (ms < 1000) fail_msg("Retry-After: 1 not honoured: %lld ms", (long long)ms);
    assert_true(ms < 5000);
    const qb_fake_req_t *a = qb_fake_http_request(e->srv, 0), *b = qb_fake_http_request(e->srv, 1);
    assert_true(b->at_ms - a->at_ms >= 990);
    assert_non_null(strstr(log, "429")); /* the retry was logged */
    assert_no_secrets(log);
    env_free(e);
}

static void test_429_retry_after(void **state) {
    (void)state;
    run_429(ALPACA);
    run_429(POLYGON);
}

static void test_500_twice(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        const char *name = v == ALPACA ? "alpaca" : "polygon";
        env_t *e = env_new((enum vendor)v, S_500_TWICE, 4, 0, 0);
        uint64_t r0 = retries(name);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 4);
        char *log = qb_test_capture_stderr_stop();
        if (err) fail_msg("%s fetch: %s: %s", name, qb_err_name(err), E);
        check_bars(&e->sink, 4);
        assert_int_equal(qb_fake_http_count(e->srv), 3);
        assert_int_equal(retries(name) - r0, 2);
        assert_no_secrets(log);
        env_free(e);
    }
}

static void test_500_always(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_500_ALWAYS, 3, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 4);
        char *log = qb_test_capture_stderr_stop();
        print_message("%s\n%s", E, log);
        assert_int_equal(err, QB_ERR_UNAVAILABLE);
        assert_int_equal(qb_fake_http_count(e->srv), 3);
        assert_int_equal(e->sink.n, 0);
        /* the last status and the vendor's words */
        assert_non_null(strstr(E, "HTTP 500"));
        assert_non_null(strstr(E, "internal error"));
        assert_non_null(strstr(E, "3 attempts"));
        assert_no_secrets(E);
        assert_no_secrets(log);
        env_free(e);
    }
}

static void test_timeout(void **state) {
    (void)state;
    env_t *e = env_new(ALPACA, S_SLOW, 1, 0, 300);
    qb_test_capture_stderr_start();
    int64_t t0 = qb_test_now_ms();
    qb_err_t err = env_fetch_minutes(e, 1);
    int64_t ms = qb_test_now_ms() - t0;
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_TIMEOUT);
    assert_true(ms < 1400);
    assert_int_equal(e->sink.n, 0);
    assert_no_secrets(E);
    env_free(e);
}

static void test_malformed_body(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_MALFORMED, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 12);
        qb_test_capture_stderr_stop();
        print_message("%s\n", E);
        assert_int_equal(err, QB_ERR_PARSE);
        char want[64];
        snprintf(want, sizeof(want), "%s page 2", v == ALPACA ? "alpaca" : "polygon");
        if (!strstr(E, want)) fail_msg("error does not say '%s': %s", want, E);
        /* page 1 went through, nothing of page 2 did */
        check_bars(&e->sink, 4);
        assert_int_equal(e->sink.calls, 1);
        assert_int_equal(qb_fake_http_count(e->srv), 2); /* a parse error is not retried */
        env_free(e);
    }
    /* a field of the wrong type: the whole page is refused, naming the field */
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_BAD_FIELD, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 12);
        qb_test_capture_stderr_stop();
        assert_int_equal(err, QB_ERR_PARSE);
        char want[64];
        snprintf(want, sizeof(want), "%s page 1 item 2: 'o'", v == ALPACA ? "alpaca" : "polygon");
        if (!strstr(E, want)) fail_msg("error does not say '%s': %s", want, E);
        assert_int_equal(e->sink.n, 0);
        assert_int_equal(e->sink.calls, 0);
        assert_int_equal(e->sink.nrej, 0);
        env_free(e);
    }
}

static void test_missing_field(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_MISSING, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 4);
        qb_test_capture_stderr_stop();
        if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
        assert_int_equal(e->sink.nrej, 1);
        assert_string_equal(e->sink.rejects[0], v == ALPACA ? "alpaca page 1 item 2: missing 'h'"
                                                            : "polygon page 1 item 2: missing 'v'");
        /* the other three delivered */
        assert_int_equal(e->sink.n, 3);
        assert_int_equal(e->sink.bars[0].ts, T0_S * QB_NS_PER_SEC);
        assert_int_equal(e->sink.bars[1].ts, (T0_S + 120) * QB_NS_PER_SEC);
        assert_int_equal(e->sink.bars[2].ts, (T0_S + 180) * QB_NS_PER_SEC);
        env_free(e);
    }
}

static void test_not_found_and_invalid(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_404, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 4);
        qb_test_capture_stderr_stop();
        assert_int_equal(err, QB_ERR_NOT_FOUND);
        assert_non_null(strstr(E, "symbol not found"));
        assert_int_equal(qb_fake_http_count(e->srv), 1); /* not retried */
        assert_no_secrets(E);
        env_free(e);

        e = env_new((enum vendor)v, S_400, 0, 0, 0);
        qb_test_capture_stderr_start();
        err = env_fetch_minutes(e, 4);
        qb_test_capture_stderr_stop();
        assert_int_equal(err, QB_ERR_INVALID);
        assert_non_null(strstr(E, "HTTP 400: invalid timeframe"));
        assert_int_equal(qb_fake_http_count(e->srv), 1);
        assert_no_secrets(E);
        env_free(e);

        /* a vendor that echoes the key in its error: masked */
        e = env_new((enum vendor)v, S_ECHO, 0, 0, 0);
        qb_log_set_level(QB_LOG_DEBUG);
        qb_test_capture_stderr_start();
        err = env_fetch_minutes(e, 4);
        char *log = qb_test_capture_stderr_stop();
        qb_log_set_level(QB_LOG_WARN);
        assert_int_equal(err, QB_ERR_INVALID);
        assert_non_null(strstr(E, "bad key ***"));
        assert_no_secrets(E);
        assert_no_secrets(log);
        env_free(e);
    }
    /* Polygon: a next_url to another host is not followed (the key would go there) */
    env_t *e = env_new(POLYGON, S_EVIL_NEXT, 0, 0, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch_minutes(e, 4);
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_INVALID);
    assert_non_null(strstr(E, "evil.example"));
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    env_free(e);
    /* an unknown timeframe never reaches the vendor */
    e = env_new(ALPACA, S_PAGES, 0, 0, 0);
    ERR(QB_ERR_INVALID, env_fetch(e, "2m", T0_S * QB_NS_PER_SEC, (T0_S + 60) * QB_NS_PER_SEC));
    assert_int_equal(qb_fake_http_count(e->srv), 0);
    env_free(e);
}

static void test_daily_dst(void **state) {
    (void)state;
    static const char *want[] = {"2024-03-08", "2024-03-11", "2024-11-01", "2024-11-04"};
    qb_time_t from, to;
    OK(qb_time_parse("2024-03-01", 10, &from));
    OK(qb_time_parse("2024-12-01", 10, &to));
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_DAILY, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch(e, "1d", from, to);
        qb_test_capture_stderr_stop();
        if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
        assert_int_equal(e->sink.n, 4);
        for (int i = 0; i < 4; i++) {
            qb_time_t d;
            OK(qb_time_parse(want[i], 10, &d));
            char got[QB_TIME_STRLEN];
            qb_time_format(e->sink.bars[i].ts, got, sizeof(got));
            if (e->sink.bars[i].ts != d) fail_msg("bar %d: %s, want %sT00:00:00Z", i, got, want[i]);
            assert_int_equal(e->sink.bars[i].ts % QB_NS_PER_DAY, 0);
            assert_string_equal(e->sink.bars[i].timeframe, "1d");
        }
        const qb_fake_req_t *r = qb_fake_http_request(e->srv, 0);
        if (v == ALPACA) {
            assert_string_equal(qb_fake_req_arg(r, "timeframe"), "1Day");
        } else {
            /* dates for daily aggregates; to is the last day inside [from, to) */
            assert_string_equal(r->path, "/v2/aggs/ticker/AAPL/range/1/day/2024-03-01/2024-11-30");
        }
        env_free(e);
    }
}

static void test_decimal_exact(void **state) {
    (void)state;
    for (int v = ALPACA; v <= POLYGON; v++) {
        env_t *e = env_new((enum vendor)v, S_DECIMAL, 0, 0, 0);
        qb_test_capture_stderr_start();
        qb_err_t err = env_fetch_minutes(e, 1);
        qb_test_capture_stderr_stop();
        if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
        assert_int_equal(e->sink.n, 1);
        const qb_bar_t *b = &e->sink.bars[0];
        assert_int_equal(b->open, 18743210000LL);  /* 187.4321, not ...09999 */
        assert_int_equal(b->high, 18799999999LL);  /* 187.99999999: all 8 decimals kept */
        assert_int_equal(b->low, 10000000LL);      /* 0.1 */
        assert_int_equal(b->close, 18743215000LL); /* 187.43215 */
        assert_int_equal(b->volume, 7028186800000000LL); /* 70281868 (Polygon: 7.0281868e+07) */
        env_free(e);
    }
}

static void run_rate(enum vendor v) {
    /* 300 per minute = one request every 200 ms, from the environment */
    setenv(v == ALPACA ? "QB_ALPACA_RATE_PER_MIN" : "QB_POLYGON_RATE_PER_MIN", "300", 1);
    env_t *e = env_new(v, S_PAGES, 0, -1, 0);
    unsetenv(v == ALPACA ? "QB_ALPACA_RATE_PER_MIN" : "QB_POLYGON_RATE_PER_MIN");
    qb_test_capture_stderr_start();
    int64_t t0 = qb_test_now_ms();
    qb_err_t err = env_fetch_minutes(e, 12);
    int64_t ms = qb_test_now_ms() - t0;
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    check_bars(&e->sink, 12);
    /* 3 requests: the first at once, the third not before 400 ms (the
     * bucket's promise, independent of connection set-up time, which can
     * delay the first's arrival and so shorten a gap); the gaps roughly
     * even (as in it_md_vendors2.c) */
    if (ms < 400) fail_msg("3 requests at 300/min took only %lld ms", (long long)ms);
    assert_true(ms < 3000);
    int64_t third = qb_fake_http_request(e->srv, 2)->at_ms - t0;
    if (third < 395) fail_msg("3 requests at 300/min within %lld ms", (long long)third);
    for (size_t i = 1; i < 3; i++) {
        int64_t gap = qb_fake_http_request(e->srv, i)->at_ms - qb_fake_http_request(e->srv, i - 1)->at_ms;
        if (gap < 150) fail_msg("requests %zu and %zu only %lld ms apart", i - 1, i, (long long)gap);
    }
    env_free(e);
}

static void test_rate_limit(void **state) {
    (void)state;
    run_rate(ALPACA);
    run_rate(POLYGON);
}

static void test_missing_key(void **state) {
    (void)state;
    unsetenv("QB_ALPACA_SECRET_KEY");
    E[0] = '\0';
    assert_null(qb_md_alpaca_source_new("http://127.0.0.1:1", NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "QB_ALPACA_SECRET_KEY"));
    setenv("QB_ALPACA_SECRET_KEY", ALPACA_SECRET, 1);
    unsetenv("QB_POLYGON_API_KEY");
    E[0] = '\0';
    assert_null(qb_md_polygon_source_new(NULL, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "QB_POLYGON_API_KEY"));
    setenv("QB_POLYGON_API_KEY", "", 1); /* set but empty is missing too */
    assert_null(qb_md_polygon_source_new(NULL, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "QB_POLYGON_API_KEY"));
    setenv("QB_POLYGON_API_KEY", POLYGON_KEY, 1);
    /* defaults: the vendors' real base URLs (nothing is sent here) */
    qb_md_source_t *s = qb_md_polygon_source_new(NULL, NULL, E, sizeof(E));
    assert_non_null(s);
    assert_string_equal(qb_md_source_name(s), "polygon");
    qb_md_source_destroy(s);
    s = qb_md_alpaca_source_new("", NULL, E, sizeof(E));
    assert_non_null(s);
    assert_string_equal(qb_md_source_name(s), "alpaca");
    qb_md_source_destroy(s);
}

/* ---- the HTTP client on its own ------------------------------------------------ */

static void echo_handler(void *opaque, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    int *dates = opaque; /* /date requests so far */
    if (strcmp(req->path, "/big") == 0) {
        for (int i = 0; i < 100; i++) qb_fake_resp_printf(r, "0123456789");
        return;
    }
    if (strcmp(req->path, "/date") == 0 && (*dates)++ == 0) {
        /* Retry-After as an HTTP-date in the past: retry at once */
        qb_fake_resp_header(r, "Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT");
        r->status = 503;
        return;
    }
    r->content_type = "text/plain";
    qb_fake_resp_header(r, "X-Echo", "yes");
    qb_fake_resp_printf(r, "%s", req->target);
}

static void test_http_client(void **state) {
    (void)state;
    int dates = 0;
    qb_fake_http_t *srv = qb_fake_http_start(echo_handler, &dates);
    qb_http_opts_t o = {.source = "test", .base_url = qb_fake_http_url(srv), .max_body = 500,
                        .backoff_base_ms = 5000};
    qb_http_t *h = qb_http_new(&o, E, sizeof(E));
    assert_non_null(h);
    OK(qb_http_add_param(h, "token", "t o/k", 1, E, sizeof(E)));
    /* names and values with reserved and non-ASCII characters round-trip */
    const char *odd = "a b&c=d+e/f?g#h%i\xc3\xa9";
    qb_http_param_t p[] = {{"q", odd}, {"k&y", "1"}, {"flag", NULL}};
    qb_http_resp_t r;
    OK(qb_http_get(h, "/echo", p, 3, &r, E, sizeof(E)));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.body, "/echo?q=a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25i%C3%A9&k%26y=1&flag&token=t%20o%2Fk");
    char v[32];
    assert_true(qb_http_resp_header(&r, "x-echo", v, sizeof(v)));
    assert_string_equal(v, "yes");
    assert_false(qb_http_resp_header(&r, "X-Missing", v, sizeof(v)));
    qb_http_resp_free(&r);
    const qb_fake_req_t *req = qb_fake_http_request(srv, 0);
    assert_string_equal(qb_fake_req_arg(req, "q"), odd);
    assert_string_equal(qb_fake_req_arg(req, "k&y"), "1");
    assert_string_equal(qb_fake_req_arg(req, "token"), "t o/k");
    /* the body cap */
    ERR(QB_ERR_RANGE, qb_http_get(h, "/big", NULL, 0, &r, E, sizeof(E)));
    assert_non_null(strstr(E, "larger than 500 bytes"));
    assert_null(r.body);
    /* a past HTTP-date Retry-After means "now", not the 5 s back-off */
    int64_t t0 = qb_test_now_ms();
    qb_test_capture_stderr_start();
    qb_err_t err = qb_http_get(h, "/date", NULL, 0, &r, E, sizeof(E));
    qb_test_capture_stderr_stop();
    if (err) fail_msg("%s", E);
    assert_int_equal(r.attempts, 2);
    assert_true(qb_test_now_ms() - t0 < 2000);
    qb_http_resp_free(&r);
    /* nothing listening: UNAVAILABLE with curl's reason, after the attempts */
    int port = qb_test_free_port();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    qb_http_t *h2 = qb_http_new(&(qb_http_opts_t){.source = "test", .base_url = url,
                                                   .max_attempts = 2, .backoff_base_ms = 10},
                                E, sizeof(E));
    assert_non_null(h2);
    qb_test_capture_stderr_start();
    err = qb_http_get(h2, "/x", NULL, 0, &r, E, sizeof(E));
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_UNAVAILABLE);
    assert_non_null(strstr(E, "2 attempts"));
    qb_http_destroy(h2);
    qb_http_destroy(h);
    qb_fake_http_stop(srv);
}

int main(void) {
    setenv("QB_ALPACA_KEY_ID", ALPACA_KEY, 1);
    setenv("QB_ALPACA_SECRET_KEY", ALPACA_SECRET, 1);
    setenv("QB_POLYGON_API_KEY", POLYGON_KEY, 1);
    unsetenv("QB_ALPACA_RATE_PER_MIN");
    unsetenv("QB_POLYGON_RATE_PER_MIN");
    unsetenv("QB_ALPACA_FEED");
    qb_log_init("it_md_vendors", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_alpaca_pages, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_polygon_pages, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_429_retry_after, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_500_twice, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_500_always, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_timeout, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_malformed_body, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_missing_field, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_not_found_and_invalid, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_daily_dst, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_decimal_exact, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_rate_limit, qb_test_capture_stderr_teardown),
        cmocka_unit_test(test_missing_key),
        cmocka_unit_test_teardown(test_http_client, qb_test_capture_stderr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
