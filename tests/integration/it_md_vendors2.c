/* it_md_vendors2.c — the Yahoo Finance, Coinbase Exchange and FRED adapters
 * (libs/md/qb_md_yahoo, qb_md_coinbase, qb_md_fred), each against a fake
 * server (tests/support/qb_fake_http) speaking the vendor's documented
 * request and response formats:
 *   - Yahoo: daily bars of an America/New_York exchange across both 2024
 *     DST changes re-stamped at the session date 00:00 UTC (including
 *     stamps at local midnight, which a fixed gmtoffset would get wrong);
 *     null entries rejected with their position; intraday walked in
 *     7-day windows; exact decimals; chart.error 404 -> NOT_FOUND;
 *     malformed bodies; splits and dividends stored in md.corporate_actions
 *     (idempotent);
 *   - Coinbase: 700 one-minute candles walked in windows of 300, each
 *     response newest-first with a candle before start and one at end,
 *     delivered oldest-first exactly once; the fake refuses > 300 candles;
 *     daily candles at 00:00 UTC; null fields rejected; unsupported
 *     timeframes refused before any request; rate limit;
 *   - FRED: offset paging (limit 4 over 10 observations); "." skipped and
 *     counted with its date; exact values; unknown series -> NOT_FOUND;
 *     observations stored in md.observations (exact, idempotent, nothing
 *     stored when a page is malformed); the key never in a log or error
 *     (also when FRED echoes it); a missing key names QB_FRED_API_KEY;
 *   - all three: 429 + Retry-After: 1 retried exactly once; a malformed
 *     body -> PARSE naming vendor and position, nothing of it delivered.
 * Needs QB_PG_DSN (scripts/test.sh) for the storage tests. */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "md/qb_md_coinbase.h"
#include "md/qb_md_fred.h"
#include "md/qb_md_source.h"
#include "md/qb_md_store.h"
#include "md/qb_md_yahoo.h"
#include "qb_fake_http.h"
#include "qb_test.h"
#include "qb_test_assert.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

static char E[2048];

/* A key with characters that need URL encoding. */
#define FRED_KEY "fReDkEy0123/abc+def4567890abcdef"
#define FRED_KEY_ENC "fReDkEy0123%2Fabc%2Bdef4567890abcdef"

enum vendor { YAHOO, COINBASE, FRED };
enum scenario {
    S_OK,        /* the vendor's normal data for the request */
    S_429,       /* 429 Retry-After: 1 first, then S_OK */
    S_MALFORMED, /* truncated JSON (Coinbase, FRED: on the 2nd request) */
    S_BAD_FIELD, /* a value of the wrong type */
    S_SHORT,     /* Yahoo: a quote array shorter than "timestamp" */
    S_UNKNOWN,   /* unknown symbol / series */
    S_NULLS,     /* Yahoo nulls, Coinbase null volume */
    S_DECIMAL,   /* awkward numbers */
    S_ECHO,      /* FRED: an error that echoes the key */
};

typedef struct fake_s {
    enum vendor vendor;
    enum scenario sc;
    int auth_failures;
    int too_many; /* Coinbase: requests for more than 300 candles */
} fake_t;

/* ---- Yahoo ---------------------------------------------------------------------- */

typedef struct ybar_s {
    int64_t t; /* Unix seconds */
    const char *o, *h, *l, *c, *v; /* JSON text; "null" allowed */
} ybar_t;

static int64_t unix_of(const char *iso) {
    qb_time_t t;
    if (qb_time_parse(iso, strlen(iso), &t) != QB_OK) fail_msg("bad time %s", iso);
    return qb_time_to_unix_s(t);
}

static void yahoo_json(qb_fake_resp_t *r, const ybar_t *b, int n, const char *events) {
    qb_fake_resp_printf(r, "{\"chart\":{\"result\":[{\"meta\":{\"currency\":\"USD\",\"symbol\":\"AAPL\","
                           "\"exchangeName\":\"NMS\",\"instrumentType\":\"EQUITY\","
                           "\"firstTradeDate\":345479400,\"gmtoffset\":-18000,\"timezone\":\"EST\","
                           "\"exchangeTimezoneName\":\"America/New_York\",\"dataGranularity\":\"1d\"}");
    if (n >= 0) {
        qb_fake_resp_printf(r, ",\"timestamp\":[");
        for (int i = 0; i < n; i++) qb_fake_resp_printf(r, "%s%lld", i ? "," : "", (long long)b[i].t);
        qb_fake_resp_printf(r, "]");
    }
    if (events) qb_fake_resp_printf(r, ",\"events\":%s", events);
    qb_fake_resp_printf(r, ",\"indicators\":{\"quote\":[{");
    if (n >= 0) {
        static const char *names[] = {"open", "high", "low", "close", "volume"};
        for (int k = 0; k < 5; k++) {
            qb_fake_resp_printf(r, "%s\"%s\":[", k ? "," : "", names[k]);
            for (int i = 0; i < n; i++) {
                const char *v = k == 0 ? b[i].o : k == 1 ? b[i].h : k == 2 ? b[i].l
                              : k == 3 ? b[i].c : b[i].v;
                qb_fake_resp_printf(r, "%s%s", i ? "," : "", v);
            }
            qb_fake_resp_printf(r, "]");
        }
    }
    qb_fake_resp_printf(r, "}],\"adjclose\":[{\"adjclose\":[]}]}}],\"error\":null}}");
}

#define YAHOO_EVENTS                                                                             \
    "{\"dividends\":{\"1715347800\":{\"amount\":0.25,\"date\":1715347800},"                       \
    "\"1691726400\":{\"amount\":0.24,\"date\":1691726400},"                                       \
    "\"1199284200\":{\"amount\":9.99,\"date\":1199284200}},"                                      \
    "\"splits\":{\"1598880600\":{\"date\":1598880600,\"numerator\":4,\"denominator\":1,"          \
    "\"splitRatio\":\"4:1\"},\"1402320600\":{\"date\":1402320600,\"numerator\":3,"                \
    "\"denominator\":2,\"splitRatio\":\"3:2\"},\"1700000000\":{\"date\":1700000000,"              \
    "\"numerator\":1,\"denominator\":3,\"splitRatio\":\"1:3\"}}}"

static void yahoo_handler(fake_t *f, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    if (f->sc == S_429 && req->index == 0) {
        r->status = 429;
        qb_fake_resp_header(r, "Retry-After", "1");
        qb_fake_resp_printf(r, "Too Many Requests\r\n");
        return;
    }
    if (f->sc == S_UNKNOWN) {
        r->status = 404;
        qb_fake_resp_printf(r, "{\"chart\":{\"result\":null,\"error\":{\"code\":\"Not Found\","
                               "\"description\":\"No data found, symbol may be delisted\"}}}");
        return;
    }
    if (f->sc == S_MALFORMED) {
        qb_fake_resp_printf(r, "{\"chart\":{\"result\":[{\"meta\":{\"symbol\":\"AAPL\"},\"timestamp\":[17");
        return;
    }
    const char *interval = qb_fake_req_arg(req, "interval");
    const char *p1s = qb_fake_req_arg(req, "period1"), *p2s = qb_fake_req_arg(req, "period2");
    if (!interval || !p1s || !p2s) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"chart\":{\"result\":null,\"error\":{\"code\":\"Bad Request\","
                               "\"description\":\"missing parameters\"}}}");
        return;
    }
    int64_t p1 = atoll(p1s), p2 = atoll(p2s);
    if (qb_fake_req_arg(req, "events")) { /* corporate actions */
        ybar_t b[1] = {{unix_of("2024-05-10T13:30:00Z"), "182.35", "184.77", "182.31", "183.05", "50759500"}};
        yahoo_json(r, b, 1, YAHOO_EVENTS);
        return;
    }
    if (strcmp(interval, "1m") == 0) {
        /* two bars at period1 and one at period2 (the next window's) */
        int second = req->index > 0;
        ybar_t b[3] = {{p1, "10", "11", "9", "10.5", "100"},
                       {p1 + 60, "10", "11", "9", "10.5", second ? "null" : "200"},
                       {p2, "10", "11", "9", "10.5", "300"}};
        yahoo_json(r, b, 3, NULL);
        return;
    }
    switch (f->sc) {
    case S_NULLS: {
        ybar_t b[20];
        for (int i = 0; i < 20; i++)
            b[i] = (ybar_t){unix_of("2024-01-02T14:30:00Z") + 86400LL * i, "10", "11", "9", "10.5", "1000"};
        b[2] = (ybar_t){b[2].t, "null", "null", "null", "null", "null"}; /* item 3 */
        b[16].c = "null";                                               /* item 17 */
        yahoo_json(r, b, 20, NULL);
        return;
    }
    case S_BAD_FIELD: {
        ybar_t b[2] = {{unix_of("2024-01-02T14:30:00Z"), "10", "11", "9", "10.5", "1000"},
                       {unix_of("2024-01-03T14:30:00Z"), "\"abc\"", "11", "9", "10.5", "1000"}};
        yahoo_json(r, b, 2, NULL);
        return;
    }
    case S_SHORT:
        qb_fake_resp_printf(r, "{\"chart\":{\"result\":[{\"meta\":{\"symbol\":\"AAPL\","
                               "\"exchangeTimezoneName\":\"America/New_York\"},\"timestamp\":"
                               "[1704205800,1704292200,1704378600,1704465000],\"indicators\":{\"quote\":"
                               "[{\"open\":[1,2,3,4],\"high\":[1,2,3,4],\"low\":[1,2,3,4],\"close\":"
                               "[1,2,3],\"volume\":[1,2,3,4]}]}}],\"error\":null}}");
        return;
    case S_DECIMAL: {
        ybar_t b[1] = {{unix_of("2024-01-02T14:30:00Z"), "187.4321", "187.99999999", "0.1", "187.43215",
                        "70281868"}};
        yahoo_json(r, b, 1, NULL);
        return;
    }
    default: {
        /* Daily, New York: stamps at the 09:30 open (14:30Z in EST, 13:30Z in
         * EDT) and at local midnight (as Yahoo does for some instruments),
         * plus one session before the request (02-29) to be dropped. */
        ybar_t b[5] = {{unix_of("2024-02-29T14:30:00Z"), "1", "1", "1", "1", "1"},
                       {unix_of("2024-03-08T14:30:00Z"), "10", "11", "9", "10.5", "100"},
                       {unix_of("2024-03-11T04:00:00Z"), "10", "11", "9", "10.5", "100"},
                       {unix_of("2024-11-01T13:30:00Z"), "10", "11", "9", "10.5", "100"},
                       {unix_of("2024-11-04T05:00:00Z"), "10", "11", "9", "10.5", "100"}};
        (void)p2;
        yahoo_json(r, b, 5, NULL);
        return;
    }
    }
}

/* ---- Coinbase ---------------------------------------------------------------------- */

/* 2024-01-02T00:00:00Z; minute candles i = 0..709 exist except i % 97 == 5. */
#define CB_T0 1704153600LL
#define CB_N 710

static void coinbase_handler(fake_t *f, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    if (f->sc == S_429 && req->index == 0) {
        r->status = 429;
        qb_fake_resp_header(r, "Retry-After", "1");
        qb_fake_resp_printf(r, "{\"message\":\"Public rate limit exceeded\"}");
        return;
    }
    if (f->sc == S_UNKNOWN) {
        r->status = 404;
        qb_fake_resp_printf(r, "{\"message\":\"NotFound\"}");
        return;
    }
    if (f->sc == S_MALFORMED && req->index == 1) {
        qb_fake_resp_printf(r, "[[1704171600,40290.01,40305.62");
        return;
    }
    const char *gs = qb_fake_req_arg(req, "granularity"), *ss = qb_fake_req_arg(req, "start"),
               *es = qb_fake_req_arg(req, "end");
    qb_time_t st, en;
    if (!gs || !ss || !es || qb_time_parse(ss, strlen(ss), &st) || qb_time_parse(es, strlen(es), &en)) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"message\":\"invalid start/end/granularity\"}");
        return;
    }
    int64_t g = atoll(gs), s = qb_time_to_unix_s(st), e = qb_time_to_unix_s(en);
    if (g != 60 && g != 300 && g != 900 && g != 3600 && g != 21600 && g != 86400) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"message\":\"Unsupported granularity\"}");
        return;
    }
    if ((e - s) / g > 300) {
        f->too_many++;
        r->status = 400;
        qb_fake_resp_printf(r, "{\"message\":\"granularity too small for the requested time range. "
                               "Count of aggregations requested exceeds 300\"}");
        return;
    }
    qb_fake_resp_printf(r, "[");
    int first = 1;
    /* newest first; end inclusive; one candle before start */
    for (int64_t t = e; t >= s - g; t -= g) {
        int64_t i = (t - CB_T0) / g;
        if (t < CB_T0 || i >= CB_N || i % 97 == 5) continue;
        if (f->sc == S_DECIMAL)
            qb_fake_resp_printf(r, "%s[%lld,0.1,187.99999999,187.4321,187.43215,7.0281868e+07]",
                                first ? "" : ",", (long long)t);
        else
            qb_fake_resp_printf(r, "%s[%lld,%lld.01,%lld.62,%lld.12,%lld.99,%s]", first ? "" : ",",
                                (long long)t, 39990 + (long long)i, 40005 + (long long)i,
                                40000 + (long long)i, 40001 + (long long)i,
                                f->sc == S_NULLS && i == 1 ? "null" : "1.23456789");
        first = 0;
    }
    qb_fake_resp_printf(r, "]");
}

/* ---- FRED ------------------------------------------------------------------------- */

static const struct {
    const char *date, *value;
} fred_obs[10] = {{"2020-01-01", "3.5"},   {"2020-02-01", "3.6"},   {"2020-03-01", "."},
                  {"2020-04-01", "14.7"},  {"2020-05-01", "-0.25"}, {"2020-06-01", "123456.12345678"},
                  {"2020-07-01", "0.1"},   {"2020-08-01", "8.4"},   {"2020-09-01", "7.9"},
                  {"2020-10-01", "6.9"}};

static void fred_handler(fake_t *f, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    const char *k = qb_fake_req_arg(req, "api_key");
    if (!k || strcmp(k, FRED_KEY) != 0) {
        f->auth_failures++;
        r->status = 400;
        qb_fake_resp_printf(r, "{\"error_code\":400,\"error_message\":\"Bad Request.  The value for "
                               "variable api_key is not registered.\"}");
        return;
    }
    if (f->sc == S_429 && req->index == 0) {
        r->status = 429;
        qb_fake_resp_header(r, "Retry-After", "1");
        qb_fake_resp_printf(r, "{\"error_code\":429,\"error_message\":\"Too Many Requests.  "
                               "Exceeded Rate Limit\"}");
        return;
    }
    if (f->sc == S_UNKNOWN) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"error_code\":400,\"error_message\":\"Bad Request.  The series "
                               "does not exist.\"}");
        return;
    }
    if (f->sc == S_ECHO) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"error_code\":400,\"error_message\":\"Bad Request.  api_key %s "
                               "has expired.\"}", FRED_KEY);
        return;
    }
    if (f->sc == S_MALFORMED && req->index == 1) {
        qb_fake_resp_printf(r, "{\"count\":10,\"offset\":4,\"limit\":4,\"observations\":[{\"date\":");
        return;
    }
    const char *ft = qb_fake_req_arg(req, "file_type"), *sid = qb_fake_req_arg(req, "series_id");
    const char *ls = qb_fake_req_arg(req, "limit"), *os = qb_fake_req_arg(req, "offset");
    if (!ft || strcmp(ft, "json") || !sid || !ls || !os) {
        r->status = 400;
        qb_fake_resp_printf(r, "{\"error_code\":400,\"error_message\":\"Bad Request.  missing "
                               "parameter\"}");
        return;
    }
    int limit = atoi(ls), off = atoi(os);
    qb_fake_resp_printf(r, "{\"realtime_start\":\"2024-06-01\",\"realtime_end\":\"2024-06-01\","
                           "\"observation_start\":\"2020-01-01\",\"observation_end\":\"2020-10-31\","
                           "\"units\":\"lin\",\"output_type\":1,\"file_type\":\"json\",\"order_by\":"
                           "\"observation_date\",\"sort_order\":\"asc\",\"count\":10,\"offset\":%d,"
                           "\"limit\":%d,\"observations\":[", off, limit);
    for (int i = off; i < 10 && i < off + limit; i++) {
        const char *v = fred_obs[i].value;
        int bad = f->sc == S_BAD_FIELD && i == 1;
        qb_fake_resp_printf(r, "%s{\"realtime_start\":\"2024-06-01\",\"realtime_end\":\"2024-06-01\","
                               "\"date\":\"%s\",\"value\":%s%s%s}", i > off ? "," : "",
                            fred_obs[i].date, bad ? "" : "\"", bad ? "3.6" : v, bad ? "" : "\"");
    }
    qb_fake_resp_printf(r, "]}");
}

static void handler(void *opaque, const qb_fake_req_t *req, qb_fake_resp_t *r) {
    fake_t *f = opaque;
    if (f->vendor == YAHOO) yahoo_handler(f, req, r);
    else if (f->vendor == COINBASE) coinbase_handler(f, req, r);
    else fred_handler(f, req, r);
}

/* ---- sinks -------------------------------------------------------------------------- */

typedef struct sink_s {
    qb_bar_t *bars;
    size_t n, cap;
    int calls;
    char rejects[16][160];
    int nrej;
    qb_md_observation_t obs[32];
    size_t nobs;
} sink_t;

static qb_err_t sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                          size_t errstr_size) {
    sink_t *s = opaque;
    s->calls++;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->bars = realloc(s->bars, s->cap * sizeof(*s->bars));
        if (!s->bars) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "oom");
    }
    memcpy(s->bars + s->n, bars, n * sizeof(*bars));
    s->n += n;
    return QB_OK;
}

static void sink_reject(void *opaque, const char *where, const char *reason) {
    sink_t *s = opaque;
    if (s->nrej < 16) snprintf(s->rejects[s->nrej++], 160, "%s: %s", where, reason);
}

static qb_err_t sink_obs(void *opaque, const qb_md_observation_t *obs, size_t n, char *errstr,
                         size_t errstr_size) {
    sink_t *s = opaque;
    s->calls++;
    for (size_t i = 0; i < n; i++) {
        if (s->nobs >= 32) return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "sink full");
        s->obs[s->nobs++] = obs[i];
    }
    return QB_OK;
}

/* ---- fixtures ------------------------------------------------------------------------ */

typedef struct env_s {
    fake_t fake;
    qb_fake_http_t *srv;
    qb_md_source_t *src; /* Yahoo, Coinbase */
    qb_md_fred_t *fred;  /* FRED */
    sink_t sink;
    qb_md_sink_t qsink;
} env_t;

/* A client of `v` against a fresh fake in scenario sc: fast (no rate limit
 * unless rate < 0: from the environment; 20 ms back-off base). */
static env_t *env_new(enum vendor v, enum scenario sc, double rate) {
    env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->fake.vendor = v;
    e->fake.sc = sc;
    e->srv = qb_fake_http_start(handler, &e->fake);
    qb_http_opts_t ho = {.backoff_base_ms = 20, .backoff_max_ms = 200, .max_attempts = 3};
    const char *url = qb_fake_http_url(e->srv);
    if (v == YAHOO) {
        qb_md_yahoo_opts_t o = {.rate_per_min = rate < 0 ? 0 : 600000, .http = ho};
        e->src = qb_md_yahoo_source_new(url, &o, E, sizeof(E));
    } else if (v == COINBASE) {
        qb_md_coinbase_opts_t o = {.rate_per_sec = rate < 0 ? 0 : 10000, .http = ho};
        e->src = qb_md_coinbase_source_new(url, &o, E, sizeof(E));
    } else {
        qb_md_fred_opts_t o = {.page_limit = 4, .rate_per_min = rate < 0 ? 0 : 600000, .http = ho};
        e->fred = qb_md_fred_new(url, &o, E, sizeof(E));
    }
    if (!e->src && !e->fred) fail_msg("client: %s", E);
    e->qsink = (qb_md_sink_t){sink_bars, sink_reject, &e->sink};
    return e;
}

static void env_free(env_t *e) {
    if (!e) return;
    qb_md_source_destroy(e->src);
    qb_md_fred_destroy(e->fred);
    qb_fake_http_stop(e->srv);
    free(e->sink.bars);
    free(e);
}

static qb_time_t at(const char *iso) {
    qb_time_t t;
    if (qb_time_parse(iso, strlen(iso), &t) != QB_OK) fail_msg("bad time %s", iso);
    return t;
}

static qb_err_t env_fetch(env_t *e, const char *symbol, const char *tf, qb_time_t from,
                          qb_time_t to) {
    qb_md_request_t req = {.symbol = symbol, .timeframe = tf, .from = from, .to = to};
    E[0] = '\0';
    return qb_md_fetch(e->src, &req, &e->qsink, E, sizeof(E));
}

static qb_err_t env_fred(env_t *e, const char *series) {
    qb_md_fred_sink_t s = {sink_obs, sink_reject, &e->sink};
    E[0] = '\0';
    return qb_md_fred_fetch_observations(e->fred, series, at("2020-01-01"), at("2020-11-01"), &s,
                                         NULL, E, sizeof(E));
}

static uint64_t retries(const char *source) {
    char lab[64];
    snprintf(lab, sizeof(lab), "source=\"%s\"", source);
    return qb_counter_get(qb_metrics_counter("qb_http_retries_total", "", lab));
}

static void assert_no_secrets(const char *text) {
    static const char *secrets[] = {FRED_KEY, FRED_KEY_ENC, "fReDkEy0123"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(text, secrets[i])) fail_msg("secret %s leaked into: %.400s", secrets[i], text);
}

static void assert_bar(const qb_bar_t *b, const char *sym, const char *tf, qb_time_t ts,
                       qb_dec_t o, qb_dec_t h, qb_dec_t l, qb_dec_t c, qb_dec_t v) {
    char got[QB_TIME_STRLEN], want[QB_TIME_STRLEN];
    qb_time_format(b->ts, got, sizeof(got));
    qb_time_format(ts, want, sizeof(want));
    if (b->ts != ts) fail_msg("bar at %s, want %s", got, want);
    assert_string_equal(b->symbol.s, sym);
    assert_string_equal(b->timeframe, tf);
    assert_int_equal(b->open, o);
    assert_int_equal(b->high, h);
    assert_int_equal(b->low, l);
    assert_int_equal(b->close, c);
    assert_int_equal(b->volume, v);
}

#define D(x) ((qb_dec_t)((x) * QB_DEC_SCALE))

/* A fresh migrated database (QB_PG_DSN, QB_ROOT/sql). */
typedef struct db_s {
    char *dsn;
    qb_store_t *s;
} db_t;

static void db_open(db_t *db) {
    db->dsn = qb_test_db_create();
    db->s = qb_store_new(db->dsn, E, sizeof(E));
    if (!db->s) fail_msg("store: %s", E);
    const char *root = getenv("QB_ROOT");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/sql", root && *root ? root : ".");
    int applied = 0;
    OK(qb_migrate_apply(db->s, dir, &applied, E, sizeof(E)));
}

static void db_close(db_t *db) {
    qb_store_destroy(db->s);
    qb_test_db_drop(db->dsn);
}

static const char *scalar(qb_store_t *s, const char *sql) {
    static char v[4096];
    PGresult *r = NULL;
    OK(qb_store_query(s, sql, 0, NULL, &r, E, sizeof(E)));
    assert_int_equal(PQntuples(r), 1);
    snprintf(v, sizeof(v), "%s", PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* ---- Yahoo tests ---------------------------------------------------------------------- */

static void test_yahoo_daily_dst(void **state) {
    (void)state;
    env_t *e = env_new(YAHOO, S_OK, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "aapl", "1d", at("2024-03-01"), at("2024-12-01"));
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    static const char *want[] = {"2024-03-08", "2024-03-11", "2024-11-01", "2024-11-04"};
    assert_int_equal(e->sink.n, 4);
    assert_int_equal(e->sink.calls, 1);
    for (int i = 0; i < 4; i++) {
        assert_bar(&e->sink.bars[i], "AAPL", "1d", at(want[i]), D(10), D(11), D(9), D(10.5), D(100));
        assert_int_equal(e->sink.bars[i].ts % QB_NS_PER_DAY, 0);
    }
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    const qb_fake_req_t *r = qb_fake_http_request(e->srv, 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->path, "/v8/finance/chart/AAPL");
    assert_string_equal(qb_fake_req_arg(r, "interval"), "1d");
    /* widened by a day each side */
    assert_int_equal(atoll(qb_fake_req_arg(r, "period1")), unix_of("2024-02-29T00:00:00Z"));
    assert_int_equal(atoll(qb_fake_req_arg(r, "period2")), unix_of("2024-12-02T00:00:00Z"));
    assert_string_equal(qb_fake_req_arg(r, "includePrePost"), "false");
    assert_null(qb_fake_req_arg(r, "events"));
    env_free(e);
}

static void test_yahoo_nulls(void **state) {
    (void)state;
    env_t *e = env_new(YAHOO, S_NULLS, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "AAPL", "1d", at("2024-01-01"), at("2024-02-01"));
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 18);
    assert_int_equal(e->sink.nrej, 2);
    assert_string_equal(e->sink.rejects[0], "yahoo item 3: null open, high, low, close, volume");
    assert_string_equal(e->sink.rejects[1], "yahoo item 17: null close");
    /* the others in order, stamped at their dates */
    assert_int_equal(e->sink.bars[0].ts, at("2024-01-02"));
    assert_int_equal(e->sink.bars[2].ts, at("2024-01-05")); /* item 4 */
    assert_int_equal(e->sink.bars[17].ts, at("2024-01-21")); /* item 20 */
    env_free(e);
}

static void test_yahoo_intraday_windows(void **state) {
    (void)state;
    env_t *e = env_new(YAHOO, S_OK, 0);
    qb_time_t from = at("2024-01-02T14:30:00Z"), to = from + 8 * QB_NS_PER_DAY;
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "AAPL", "1m", from, to);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    /* two requests: 7 days, then 1 day */
    assert_int_equal(qb_fake_http_count(e->srv), 2);
    const qb_fake_req_t *r0 = qb_fake_http_request(e->srv, 0), *r1 = qb_fake_http_request(e->srv, 1);
    int64_t f = qb_time_to_unix_s(from);
    assert_string_equal(qb_fake_req_arg(r0, "interval"), "1m");
    assert_int_equal(atoll(qb_fake_req_arg(r0, "period1")), f);
    assert_int_equal(atoll(qb_fake_req_arg(r0, "period2")), f + 7 * 86400);
    assert_int_equal(atoll(qb_fake_req_arg(r1, "period1")), f + 7 * 86400);
    assert_int_equal(atoll(qb_fake_req_arg(r1, "period2")), f + 8 * 86400);
    /* window 1: its two bars (the one at period2 belongs to window 2);
     * window 2: the first bar, the second rejected, the one at `to` dropped */
    assert_int_equal(e->sink.n, 3);
    assert_int_equal(e->sink.calls, 2);
    assert_int_equal(e->sink.bars[0].ts, from);
    assert_int_equal(e->sink.bars[1].ts, from + QB_NS_PER_MIN);
    assert_int_equal(e->sink.bars[2].ts, from + 7 * QB_NS_PER_DAY);
    assert_int_equal(e->sink.bars[2].volume, D(100));
    assert_int_equal(e->sink.nrej, 1);
    assert_string_equal(e->sink.rejects[0], "yahoo window 2 item 2: null volume");
    /* 4h, 1w and adjusted requests are refused before any request */
    ERR(QB_ERR_INVALID, env_fetch(e, "AAPL", "4h", from, to));
    ERR(QB_ERR_INVALID, env_fetch(e, "AAPL", "1w", from, to));
    qb_md_request_t adj = {.symbol = "AAPL", .timeframe = "1d", .from = from, .to = to, .adjusted = 1};
    ERR(QB_ERR_INVALID, qb_md_fetch(e->src, &adj, &e->qsink, E, sizeof(E)));
    assert_int_equal(qb_fake_http_count(e->srv), 2);
    assert_string_equal(qb_md_yahoo_interval("1h"), "60m");
    env_free(e);
}

static void test_yahoo_errors(void **state) {
    (void)state;
    /* unknown symbol: 404 with chart.error */
    env_t *e = env_new(YAHOO, S_UNKNOWN, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "ZZZZNOPE", "1d", at("2024-01-01"), at("2024-02-01"));
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_NOT_FOUND);
    if (!strstr(E, "No data found, symbol may be delisted")) fail_msg("%s", E);
    assert_non_null(strstr(E, "ZZZZNOPE"));
    assert_int_equal(qb_fake_http_count(e->srv), 1); /* not retried */
    env_free(e);
    /* malformed bodies: PARSE with the position, nothing delivered */
    static const struct {
        enum scenario sc;
        const char *want;
    } cases[] = {{S_MALFORMED, "yahoo: body is not JSON (error at byte"},
                 {S_BAD_FIELD, "yahoo item 2: 'open' is not a number"},
                 {S_SHORT, "yahoo: 'close' has 3 values for 4 timestamps"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e = env_new(YAHOO, cases[i].sc, 0);
        qb_test_capture_stderr_start();
        err = env_fetch(e, "AAPL", "1d", at("2024-01-01"), at("2024-02-01"));
        qb_test_capture_stderr_stop();
        assert_int_equal(err, QB_ERR_PARSE);
        if (!strstr(E, cases[i].want)) fail_msg("error does not say '%s': %s", cases[i].want, E);
        assert_int_equal(e->sink.n, 0);
        assert_int_equal(e->sink.calls, 0);
        assert_int_equal(e->sink.nrej, 0);
        assert_int_equal(qb_fake_http_count(e->srv), 1); /* a parse error is not retried */
        env_free(e);
    }
}

static void test_yahoo_decimal(void **state) {
    (void)state;
    env_t *e = env_new(YAHOO, S_DECIMAL, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "AAPL", "1d", at("2024-01-01"), at("2024-02-01"));
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 1);
    assert_bar(&e->sink.bars[0], "AAPL", "1d", at("2024-01-02"), 18743210000LL, 18799999999LL,
               10000000LL, 18743215000LL, 7028186800000000LL);
    env_free(e);
}

static void test_yahoo_actions(void **state) {
    (void)state;
    db_t db;
    db_open(&db);
    env_t *e = env_new(YAHOO, S_OK, 0);
    /* the actions as returned: sorted, session dates, ratios, filtered */
    qb_md_yahoo_action_t *a = NULL;
    size_t n = 0;
    char cls[16] = "";
    qb_test_capture_stderr_start();
    qb_err_t err = qb_md_yahoo_fetch_actions(e->src, "AAPL", at("2010-01-01"), at("2025-01-01"), &a,
                                             &n, cls, E, sizeof(E));
    qb_test_capture_stderr_stop();
    if (err) fail_msg("actions: %s: %s", qb_err_name(err), E);
    assert_string_equal(cls, "equity");
    assert_int_equal(n, 5); /* the 2008 dividend is outside the range */
    assert_int_equal(a[0].ex_date, at("2014-06-09"));
    assert_int_equal(a[0].kind, QB_MD_ACTION_SPLIT);
    assert_int_equal(a[0].value, D(1.5));
    assert_int_equal(a[0].numerator, D(3));
    assert_int_equal(a[0].denominator, D(2));
    assert_int_equal(a[1].ex_date, at("2020-08-31"));
    assert_int_equal(a[1].value, D(4));
    /* 2023-08-11T04:00Z is local midnight (EDT): the 11th, not the 10th */
    assert_int_equal(a[2].ex_date, at("2023-08-11"));
    assert_int_equal(a[2].kind, QB_MD_ACTION_DIVIDEND);
    assert_int_equal(a[2].value, D(0.24));
    /* 1700000000 = 2023-11-14T22:13:20Z = 17:13 New York: the 14th */
    assert_int_equal(a[3].ex_date, at("2023-11-14"));
    assert_int_equal(a[3].value, 33333333LL); /* 1/3, 8 decimals half-even */
    assert_int_equal(a[4].ex_date, at("2024-05-10"));
    assert_int_equal(a[4].value, D(0.25));
    free(a);
    const qb_fake_req_t *r = qb_fake_http_request(e->srv, 0);
    assert_string_equal(qb_fake_req_arg(r, "events"), "div,splits");
    assert_string_equal(qb_fake_req_arg(r, "interval"), "1d");

    /* stored, twice: one row per (asset, ex_date, kind) */
    for (int run = 0; run < 2; run++) {
        size_t ns = 0, nd = 0;
        qb_test_capture_stderr_start();
        err = qb_md_yahoo_ingest_actions(e->src, db.s, "aapl", at("2010-01-01"), at("2025-01-01"),
                                         NULL, &ns, &nd, E, sizeof(E));
        qb_test_capture_stderr_stop();
        if (err) fail_msg("ingest: %s: %s", qb_err_name(err), E);
        assert_int_equal(ns, 3);
        assert_int_equal(nd, 2);
    }
    assert_string_equal(
        scalar(db.s, "SELECT string_agg(ex_date || ' ' || kind || ' ' || coalesce(ratio::text, '-')"
                     " || ' ' || coalesce(amount::text, '-') || ' ' || source, '; '"
                     " ORDER BY ex_date, kind) FROM md.corporate_actions c JOIN md.assets a"
                     " USING (asset_id) WHERE a.symbol = 'AAPL'"),
        "2014-06-09 split 1.5 - yahoo; 2020-08-31 split 4 - yahoo; 2023-08-11 dividend - 0.24 yahoo;"
        " 2023-11-14 split 0.33333333 - yahoo; 2024-05-10 dividend - 0.25 yahoo");
    assert_string_equal(scalar(db.s, "SELECT asset_class FROM md.assets WHERE symbol = 'AAPL'"),
                        "equity");
    /* only a Yahoo source will do */
    qb_md_source_t *cb = qb_md_coinbase_source_new("http://127.0.0.1:1", NULL, E, sizeof(E));
    assert_non_null(cb);
    ERR(QB_ERR_INVALID, qb_md_yahoo_fetch_actions(cb, "AAPL", 0, 0, &a, &n, NULL, E, sizeof(E)));
    qb_md_source_destroy(cb);
    env_free(e);
    db_close(&db);
}

/* ---- Coinbase tests ---------------------------------------------------------------------- */

static void check_coinbase_minutes(const sink_t *s) {
    size_t k = 0;
    for (int64_t i = 0; i < 700; i++) {
        if (i % 97 == 5) continue;
        if (k >= s->n) fail_msg("only %zu bars", s->n);
        const qb_bar_t *b = &s->bars[k++];
        assert_bar(b, "BTC-USD", "1m", (CB_T0 + 60 * i) * QB_NS_PER_SEC,
                   (40000 + i) * QB_DEC_SCALE + 12000000, (40005 + i) * QB_DEC_SCALE + 62000000,
                   (39990 + i) * QB_DEC_SCALE + 1000000, (40001 + i) * QB_DEC_SCALE + 99000000,
                   123456789LL);
    }
    assert_int_equal(s->n, k);
}

static void test_coinbase_windows(void **state) {
    (void)state;
    env_t *e = env_new(COINBASE, S_OK, 0);
    qb_time_t from = CB_T0 * QB_NS_PER_SEC, to = (CB_T0 + 700 * 60) * QB_NS_PER_SEC;
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "btc-usd", "1m", from, to);
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level(QB_LOG_WARN);
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    /* 700 minutes minus 8 without trades, oldest first, each once */
    assert_int_equal(e->sink.n, 692);
    check_coinbase_minutes(&e->sink);
    assert_int_equal(e->sink.calls, 3); /* one batch per window */
    assert_int_equal(e->sink.nrej, 0);
    assert_int_equal(e->fake.too_many, 0);
    assert_int_equal(qb_fake_http_count(e->srv), 3);
    static const char *starts[] = {"2024-01-02T00:00:00Z", "2024-01-02T05:00:00Z", "2024-01-02T10:00:00Z"};
    static const char *ends[] = {"2024-01-02T05:00:00Z", "2024-01-02T10:00:00Z", "2024-01-02T11:40:00Z"};
    for (size_t i = 0; i < 3; i++) {
        const qb_fake_req_t *r = qb_fake_http_request(e->srv, i);
        assert_string_equal(r->path, "/products/BTC-USD/candles");
        assert_string_equal(qb_fake_req_arg(r, "granularity"), "60");
        assert_string_equal(qb_fake_req_arg(r, "start"), starts[i]);
        assert_string_equal(qb_fake_req_arg(r, "end"), ends[i]);
    }
    assert_non_null(strstr(log, "/products/BTC-USD/candles"));
    env_free(e);

    /* a from inside a bucket starts at the next bucket */
    e = env_new(COINBASE, S_OK, 0);
    qb_test_capture_stderr_start();
    err = env_fetch(e, "BTC-USD", "1m", from + 30 * QB_NS_PER_SEC, from + 5 * QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 4);
    assert_int_equal(e->sink.bars[0].ts, from + QB_NS_PER_MIN);
    assert_string_equal(qb_fake_req_arg(qb_fake_http_request(e->srv, 0), "start"),
                        "2024-01-02T00:01:00Z");
    env_free(e);
}

static void test_coinbase_daily_and_timeframes(void **state) {
    (void)state;
    env_t *e = env_new(COINBASE, S_OK, 0);
    qb_time_t from = CB_T0 * QB_NS_PER_SEC;
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "BTC-USD", "1d", from, from + 3 * QB_NS_PER_DAY);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(e->sink.bars[i].ts, from + i * QB_NS_PER_DAY); /* 00:00 UTC, 24x7 */
        assert_string_equal(e->sink.bars[i].timeframe, "1d");
        assert_int_equal(e->sink.bars[i].open, (40000 + i) * QB_DEC_SCALE + 12000000);
    }
    assert_string_equal(qb_fake_req_arg(qb_fake_http_request(e->srv, 0), "granularity"), "86400");
    /* no platform timeframe for 6 h; no Coinbase granularity for 30m/4h/1w */
    ERR(QB_ERR_INVALID, env_fetch(e, "BTC-USD", "6h", from, from + QB_NS_PER_DAY));
    ERR(QB_ERR_INVALID, env_fetch(e, "BTC-USD", "30m", from, from + QB_NS_PER_DAY));
    ERR(QB_ERR_INVALID, env_fetch(e, "BTC-USD", "4h", from, from + QB_NS_PER_DAY));
    assert_non_null(strstr(E, "1m 5m 15m 1h 1d"));
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    assert_int_equal(qb_md_coinbase_granularity("15m"), 900);
    assert_int_equal(qb_md_coinbase_granularity("1h"), 3600);
    env_free(e);
}

static void test_coinbase_errors(void **state) {
    (void)state;
    qb_time_t from = CB_T0 * QB_NS_PER_SEC;
    /* unknown product */
    env_t *e = env_new(COINBASE, S_UNKNOWN, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fetch(e, "NOPE-USD", "1m", from, from + 10 * QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_NOT_FOUND);
    assert_non_null(strstr(E, "NotFound"));
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    env_free(e);
    /* window 2 malformed: window 1 delivered, nothing of window 2 */
    e = env_new(COINBASE, S_MALFORMED, 0);
    qb_test_capture_stderr_start();
    err = env_fetch(e, "BTC-USD", "1m", from, from + 700 * QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_PARSE);
    if (!strstr(E, "coinbase window 2: body is not JSON (error at byte")) fail_msg("%s", E);
    assert_int_equal(e->sink.calls, 1);
    assert_int_equal(e->sink.n, 296);
    assert_int_equal(e->sink.bars[295].ts, from + 299 * QB_NS_PER_MIN);
    assert_int_equal(qb_fake_http_count(e->srv), 2);
    env_free(e);
    /* a null volume: rejected with its position, the rest delivered */
    e = env_new(COINBASE, S_NULLS, 0);
    qb_test_capture_stderr_start();
    err = env_fetch(e, "BTC-USD", "1m", from, from + 4 * QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 3);
    assert_int_equal(e->sink.nrej, 1);
    /* the response is newest first: minutes 4(end), 3, 2, 1, 0 -> minute 1 is item 4 */
    assert_string_equal(e->sink.rejects[0], "coinbase window 1 item 4: null volume");
    env_free(e);
    /* exact decimals, including an exponent volume */
    e = env_new(COINBASE, S_DECIMAL, 0);
    qb_test_capture_stderr_start();
    err = env_fetch(e, "BTC-USD", "1m", from, from + QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(e->sink.n, 1);
    assert_bar(&e->sink.bars[0], "BTC-USD", "1m", from, 18743210000LL, 18799999999LL, 10000000LL,
               18743215000LL, 7028186800000000LL);
    env_free(e);
}

static void test_coinbase_rate_limit(void **state) {
    (void)state;
    setenv("QB_COINBASE_RATE_PER_SEC", "5", 1); /* one request every 200 ms */
    env_t *e = env_new(COINBASE, S_OK, -1);
    unsetenv("QB_COINBASE_RATE_PER_SEC");
    qb_time_t from = CB_T0 * QB_NS_PER_SEC;
    qb_test_capture_stderr_start();
    int64_t t0 = qb_test_now_ms();
    qb_err_t err = env_fetch(e, "BTC-USD", "1m", from, from + 700 * QB_NS_PER_MIN);
    qb_test_capture_stderr_stop();
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    assert_int_equal(qb_fake_http_count(e->srv), 3);
    /* the first at once, the third not before 400 ms (the bucket's promise,
     * independent of connection set-up time); the gaps roughly even */
    int64_t third = qb_fake_http_request(e->srv, 2)->at_ms - t0;
    if (third < 395) fail_msg("3 requests at 5/s within %lld ms", (long long)third);
    for (size_t i = 1; i < 3; i++) {
        int64_t gap = qb_fake_http_request(e->srv, i)->at_ms - qb_fake_http_request(e->srv, i - 1)->at_ms;
        if (gap < 150) fail_msg("requests %zu and %zu only %lld ms apart", i - 1, i, (long long)gap);
    }
    env_free(e);
}

/* ---- FRED tests -------------------------------------------------------------------------- */

static void test_fred_pages(void **state) {
    (void)state;
    env_t *e = env_new(FRED, S_OK, 0);
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    qb_md_fred_sink_t s = {sink_obs, sink_reject, &e->sink};
    qb_md_fred_stats_t st;
    E[0] = '\0';
    qb_err_t err = qb_md_fred_fetch_observations(e->fred, "unrate", at("2020-01-01"),
                                                 at("2020-11-01"), &s, &st, E, sizeof(E));
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level(QB_LOG_WARN);
    if (err) fail_msg("fetch: %s: %s", qb_err_name(err), E);
    /* offsets 0, 4, 8 with limit 4 over count 10 */
    assert_int_equal(qb_fake_http_count(e->srv), 3);
    assert_int_equal(e->fake.auth_failures, 0);
    static const char *offs[] = {"0", "4", "8"};
    for (size_t i = 0; i < 3; i++) {
        const qb_fake_req_t *r = qb_fake_http_request(e->srv, i);
        assert_string_equal(r->path, "/fred/series/observations");
        assert_string_equal(qb_fake_req_arg(r, "series_id"), "UNRATE");
        assert_string_equal(qb_fake_req_arg(r, "file_type"), "json");
        assert_string_equal(qb_fake_req_arg(r, "observation_start"), "2020-01-01");
        assert_string_equal(qb_fake_req_arg(r, "observation_end"), "2020-10-31");
        assert_string_equal(qb_fake_req_arg(r, "limit"), "4");
        assert_string_equal(qb_fake_req_arg(r, "offset"), offs[i]);
        assert_string_equal(qb_fake_req_arg(r, "api_key"), FRED_KEY);
        assert_non_null(strstr(r->target, "api_key=" FRED_KEY_ENC));
    }
    assert_int_equal(e->sink.calls, 3);
    assert_int_equal(e->sink.nobs, 9);
    assert_int_equal(st.pages, 3);
    assert_int_equal(st.delivered, 9);
    assert_int_equal(st.missing, 1);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.count, 10);
    assert_int_equal(e->sink.nrej, 1);
    assert_string_equal(e->sink.rejects[0], "fred page 1 item 3: 2020-03-01: no value ('.')");
    /* exact values, dates at 00:00 UTC, in order */
    size_t k = 0;
    for (size_t i = 0; i < 10; i++) {
        if (strcmp(fred_obs[i].value, ".") == 0) continue;
        qb_dec_t want;
        OK(qb_dec_parse(fred_obs[i].value, strlen(fred_obs[i].value), &want));
        assert_int_equal(e->sink.obs[k].date, at(fred_obs[i].date));
        assert_int_equal(e->sink.obs[k].value, want);
        k++;
    }
    assert_int_equal(e->sink.obs[4].value, 12345612345678LL); /* 123456.12345678 */
    assert_int_equal(e->sink.obs[3].value, -25000000LL);      /* -0.25 */
    /* requests were logged at debug, with the key masked */
    assert_non_null(strstr(log, "api_key=***"));
    assert_no_secrets(log);
    assert_no_secrets(E);
    env_free(e);
}

static void test_fred_errors(void **state) {
    (void)state;
    /* unknown series: FRED's 400 "does not exist" -> NOT_FOUND */
    env_t *e = env_new(FRED, S_UNKNOWN, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = env_fred(e, "NOSUCHSERIES");
    char *log = qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_NOT_FOUND);
    if (!strstr(E, "The series does not exist")) fail_msg("%s", E);
    assert_non_null(strstr(E, "NOSUCHSERIES"));
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    assert_no_secrets(E);
    assert_no_secrets(log);
    env_free(e);
    /* FRED echoing the key in its message: masked */
    e = env_new(FRED, S_ECHO, 0);
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    err = env_fred(e, "UNRATE");
    log = qb_test_capture_stderr_stop();
    qb_log_set_level(QB_LOG_WARN);
    assert_int_equal(err, QB_ERR_INVALID);
    if (!strstr(E, "api_key *** has expired")) fail_msg("%s", E);
    assert_no_secrets(E);
    assert_no_secrets(log);
    env_free(e);
    /* page 2 malformed: page 1 delivered, nothing of page 2 */
    e = env_new(FRED, S_MALFORMED, 0);
    qb_test_capture_stderr_start();
    err = env_fred(e, "UNRATE");
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_PARSE);
    if (!strstr(E, "fred page 2: body is not JSON (error at byte")) fail_msg("%s", E);
    assert_int_equal(e->sink.calls, 1);
    assert_int_equal(e->sink.nobs, 3);
    env_free(e);
    /* a number where FRED sends text: the page is refused, naming the item */
    e = env_new(FRED, S_BAD_FIELD, 0);
    qb_test_capture_stderr_start();
    err = env_fred(e, "UNRATE");
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_PARSE);
    if (!strstr(E, "fred page 1 item 2: 'value' is not a string")) fail_msg("%s", E);
    assert_int_equal(e->sink.calls, 0);
    assert_int_equal(e->sink.nrej, 0);
    /* bad ids never reach FRED */
    ERR(QB_ERR_INVALID, env_fred(e, "UN RATE"));
    ERR(QB_ERR_INVALID, env_fred(e, ""));
    assert_int_equal(qb_fake_http_count(e->srv), 1);
    env_free(e);
}

static void test_fred_ingest(void **state) {
    (void)state;
    db_t db;
    db_open(&db);
    env_t *e = env_new(FRED, S_OK, 0);
    for (int run = 0; run < 2; run++) {
        qb_md_fred_stats_t st;
        qb_test_capture_stderr_start();
        E[0] = '\0';
        qb_err_t err = qb_md_fred_ingest(e->fred, db.s, "UNRATE", at("2020-01-01"), at("2020-11-01"),
                                         sink_reject, &e->sink, &st, E, sizeof(E));
        char *log = qb_test_capture_stderr_stop();
        if (err) fail_msg("ingest: %s: %s", qb_err_name(err), E);
        assert_int_equal(st.delivered, 9);
        assert_int_equal(st.missing, 1);
        assert_no_secrets(log);
    }
    /* the skipped "." reached the caller's reject callback, once per run */
    assert_int_equal(e->sink.nrej, 2);
    assert_string_equal(e->sink.rejects[1], "fred page 1 item 3: 2020-03-01: no value ('.')");
    assert_string_equal(scalar(db.s, "SELECT count(*) FROM md.observations"), "9");
    assert_string_equal(
        scalar(db.s, "SELECT string_agg(date || '=' || value::text, ' ' ORDER BY date)"
                     " FROM md.observations WHERE series = 'UNRATE' AND source = 'fred'"),
        "2020-01-01=3.5 2020-02-01=3.6 2020-04-01=14.7 2020-05-01=-0.25"
        " 2020-06-01=123456.12345678 2020-07-01=0.1 2020-08-01=8.4 2020-09-01=7.9 2020-10-01=6.9");
    env_free(e);
    /* a malformed page 2: nothing of the series stored */
    e = env_new(FRED, S_MALFORMED, 0);
    qb_test_capture_stderr_start();
    qb_err_t err = qb_md_fred_ingest(e->fred, db.s, "CPIAUCSL", at("2020-01-01"), at("2020-11-01"),
                                     NULL, NULL, NULL, E, sizeof(E));
    qb_test_capture_stderr_stop();
    assert_int_equal(err, QB_ERR_PARSE);
    assert_string_equal(scalar(db.s, "SELECT count(*) FROM md.observations WHERE series = 'CPIAUCSL'"),
                        "0");
    env_free(e);
    db_close(&db);
}

static void test_fred_missing_key(void **state) {
    (void)state;
    unsetenv("QB_FRED_API_KEY");
    E[0] = '\0';
    assert_null(qb_md_fred_new("http://127.0.0.1:1", NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "QB_FRED_API_KEY"));
    setenv("QB_FRED_API_KEY", "", 1); /* set but empty is missing too */
    assert_null(qb_md_fred_new(NULL, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "QB_FRED_API_KEY"));
    setenv("QB_FRED_API_KEY", FRED_KEY, 1);
    qb_md_fred_t *f = qb_md_fred_new(NULL, NULL, E, sizeof(E));
    assert_non_null(f);
    qb_md_fred_destroy(f);
    qb_md_fred_destroy(NULL);
    /* the keyless vendors need nothing; default URLs */
    qb_md_source_t *s = qb_md_yahoo_source_new(NULL, NULL, E, sizeof(E));
    assert_non_null(s);
    assert_string_equal(qb_md_source_name(s), "yahoo");
    qb_md_source_destroy(s);
    s = qb_md_coinbase_source_new("", NULL, E, sizeof(E));
    assert_non_null(s);
    assert_string_equal(qb_md_source_name(s), "coinbase");
    qb_md_source_destroy(s);
}

/* ---- 429 + Retry-After, all three ------------------------------------------------------- */

static void test_429_retry_after(void **state) {
    (void)state;
    static const char *names[] = {"yahoo", "coinbase", "fred"};
    for (int v = YAHOO; v <= FRED; v++) {
        env_t *e = env_new((enum vendor)v, S_429, 0);
        uint64_t r0 = retries(names[v]);
        qb_test_capture_stderr_start();
        int64_t t0 = qb_test_now_ms();
        qb_err_t err;
        if (v == YAHOO) err = env_fetch(e, "AAPL", "1d", at("2024-03-01"), at("2024-12-01"));
        else if (v == COINBASE)
            err = env_fetch(e, "BTC-USD", "1m", CB_T0 * QB_NS_PER_SEC, (CB_T0 + 240) * QB_NS_PER_SEC);
        else err = env_fred(e, "UNRATE");
        int64_t ms = qb_test_now_ms() - t0;
        char *log = qb_test_capture_stderr_stop();
        if (err) fail_msg("%s: %s: %s", names[v], qb_err_name(err), E);
        size_t want_requests = v == FRED ? 4 : 2; /* FRED: the retry, then pages 2 and 3 */
        assert_int_equal(qb_fake_http_count(e->srv), want_requests);
        assert_int_equal(retries(names[v]) - r0, 1);
        if (ms < 1000) fail_msg("%s: Retry-After: 1 not honoured: %lld ms", names[v], (long long)ms);
        assert_true(ms < 5000);
        const qb_fake_req_t *a = qb_fake_http_request(e->srv, 0), *b = qb_fake_http_request(e->srv, 1);
        assert_true(b->at_ms - a->at_ms >= 990);
        assert_non_null(strstr(log, "429"));
        assert_no_secrets(log);
        if (v == YAHOO) assert_int_equal(e->sink.n, 4);
        else if (v == COINBASE) assert_int_equal(e->sink.n, 4);
        else assert_int_equal(e->sink.nobs, 9);
        env_free(e);
    }
}

int main(void) {
    setenv("QB_FRED_API_KEY", FRED_KEY, 1);
    unsetenv("QB_FRED_RATE_PER_MIN");
    unsetenv("QB_YAHOO_RATE_PER_MIN");
    unsetenv("QB_COINBASE_RATE_PER_SEC");
    qb_log_init("it_md_vendors2", QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_yahoo_daily_dst, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_yahoo_nulls, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_yahoo_intraday_windows, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_yahoo_errors, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_yahoo_decimal, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_yahoo_actions, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_coinbase_windows, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_coinbase_daily_and_timeframes, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_coinbase_errors, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_coinbase_rate_limit, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_fred_pages, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_fred_errors, qb_test_capture_stderr_teardown),
        cmocka_unit_test_teardown(test_fred_ingest, qb_test_capture_stderr_teardown),
        cmocka_unit_test(test_fred_missing_key),
        cmocka_unit_test_teardown(test_429_retry_after, qb_test_capture_stderr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
