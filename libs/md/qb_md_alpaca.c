/* qb_md_alpaca.c — Alpaca Market Data v2 stock bars; see qb_md_alpaca.h.
 *
 * The source owns a qb_http_t (keys as secret headers, the rate limit) and
 * copies of its options. fetch() walks the pages; alpaca_page() turns one
 * response body into an array of bars (or a QB_ERR_PARSE) before the sink
 * sees any of it.
 *
 * Numbers. cJSON keeps only a double, not the text: a price becomes a
 * qb_dec_t through qb_md_vendor_dec (qb_md_vendor.h), exact for every
 * vendor text of up to 15 significant digits: 187.4321 becomes
 * 18743210000, never 18743209999.
 *
 * Daily dates. Alpaca stamps 1Day/1Week bars at 00:00 America/New_York,
 * which is 04:00Z (EDT, UTC-4) or 05:00Z (EST, UTC-5) of the same date.
 * Adding 12 h and truncating to the UTC day therefore yields the New York
 * date without a time-zone database, and stays right for a vendor that
 * stamps 00:00Z instead (any stamp within 12 h of that date's 00:00Z maps
 * to it). Full zone handling lives in libs/cal. */
#include "md/qb_md_alpaca.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_types.h"
#include "md/qb_md_vendor.h"

typedef struct qb_md_alpaca_s {
    qb_md_source_t base; /* first: the interface */
    qb_http_t *http;
    char *feed;          /* NULL: not sent */
    int page_limit;
} qb_md_alpaca_t;

typedef struct qb_alpaca_cfg_s {
    const char *key_id;
    const char *secret_key;
    double rate_per_min;
    const char *feed;
} qb_alpaca_cfg_t;

static const qb_cfg_entry_t qb_alpaca_cfg_table[] = {
    {"alpaca.key_id", "QB_ALPACA_KEY_ID", QB_CFG_STRING, NULL, 1, 256,
     offsetof(qb_alpaca_cfg_t, key_id), QB_CFG_SECRET | QB_CFG_REQUIRED,
     "Alpaca API key id (header APCA-API-KEY-ID)"},
    {"alpaca.secret_key", "QB_ALPACA_SECRET_KEY", QB_CFG_STRING, NULL, 1, 256,
     offsetof(qb_alpaca_cfg_t, secret_key), QB_CFG_SECRET | QB_CFG_REQUIRED,
     "Alpaca API secret key (header APCA-API-SECRET-KEY)"},
    {"alpaca.rate_per_min", "QB_ALPACA_RATE_PER_MIN", QB_CFG_DOUBLE, "200", 0.01, 1e6,
     offsetof(qb_alpaca_cfg_t, rate_per_min), 0,
     "Alpaca requests per minute (token bucket, evenly spaced)"},
    {"alpaca.feed", "QB_ALPACA_FEED", QB_CFG_STRING, "", 1, 0,
     offsetof(qb_alpaca_cfg_t, feed), 0,
     "Alpaca data feed (iex, sip, ...); empty: the account's default"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL}};

static const struct {
    const char *tf, *vendor;
} qb_alpaca_tfs[] = {{"1m", "1Min"},   {"5m", "5Min"},   {"15m", "15Min"}, {"30m", "30Min"},
                     {"1h", "1Hour"},  {"4h", "4Hour"},  {"1d", "1Day"},   {"1w", "1Week"}};

const char *qb_md_alpaca_timeframe(const char *timeframe) {
    for (size_t i = 0; timeframe && i < sizeof(qb_alpaca_tfs) / sizeof(qb_alpaca_tfs[0]); i++)
        if (strcmp(timeframe, qb_alpaca_tfs[i].tf) == 0) return qb_alpaca_tfs[i].vendor;
    return NULL;
}

/* ---- fetch ------------------------------------------------------------------ */

typedef struct qb_alpaca_page_s {
    qb_bar_t *bars;
    size_t n;
    char *next; /* next_page_token, malloc'd, or NULL */
} qb_alpaca_page_t;

static void qb_alpaca_page_free(qb_alpaca_page_t *p) {
    free(p->bars);
    free(p->next);
    memset(p, 0, sizeof(*p));
}

static const char *const qb_alpaca_fields[] = {"t", "o", "h", "l", "c", "v"};

/* Parse one body into pg: QB_OK, or QB_ERR_PARSE with nothing kept and
 * nothing reported. The page's rejects reach sink->reject only once the
 * whole page has parsed. */
static qb_err_t qb_alpaca_page(const char *body, size_t len, int page, const qb_bar_t *tmpl,
                               int daily, qb_time_t from, qb_time_t to, const qb_md_sink_t *sink,
                               qb_alpaca_page_t *pg, size_t *rejected, char *errstr,
                               size_t errstr_size) {
    memset(pg, 0, sizeof(*pg));
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "alpaca page %d: body is not a JSON object (%zu bytes)", page, len);
    }
    qb_err_t err = QB_OK;
    cJSON *sym = cJSON_GetObjectItemCaseSensitive(root, "symbol");
    if (sym && !cJSON_IsNull(sym) &&
        (!cJSON_IsString(sym) || strcasecmp(sym->valuestring, tmpl->symbol.s) != 0)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                         "alpaca page %d: 'symbol' is %s, asked for %s", page,
                         cJSON_IsString(sym) ? sym->valuestring : "not a string", tmpl->symbol.s);
        goto done;
    }
    cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_page_token");
    if (next && !cJSON_IsNull(next)) {
        if (!cJSON_IsString(next) || !*next->valuestring) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "alpaca page %d: 'next_page_token' is not a string", page);
            goto done;
        }
        pg->next = strdup(next->valuestring);
        if (!pg->next) { err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory"); goto done; }
    }
    cJSON *bars = cJSON_GetObjectItemCaseSensitive(root, "bars");
    if (!bars || cJSON_IsNull(bars)) goto done; /* no data in range */
    if (!cJSON_IsArray(bars)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "alpaca page %d: 'bars' is not an array",
                         page);
        goto done;
    }
    int count = cJSON_GetArraySize(bars);
    if (count > 0) {
        pg->bars = malloc((size_t)count * sizeof(qb_bar_t));
        if (!pg->bars) { err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory"); goto done; }
    }
    /* Rejects are collected and only reported once the page is known good,
     * so a page that fails as a whole reports nothing but its error. */
    qb_md_vendor_rejects_t rej = {NULL, 0};
    int item = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, bars) {
        item++;
        if (!cJSON_IsObject(it)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "alpaca page %d item %d: not an object", page, item);
            break;
        }
        cJSON *f[6];
        const char *missing = NULL;
        for (int k = 0; k < 6; k++) {
            f[k] = cJSON_GetObjectItemCaseSensitive(it, qb_alpaca_fields[k]);
            if ((!f[k] || cJSON_IsNull(f[k])) && !missing) missing = qb_alpaca_fields[k];
        }
        char why[96] = "";
        qb_bar_t b = *tmpl;
        for (int k = 0; k < 6 && !err; k++) {
            if (!f[k] || cJSON_IsNull(f[k])) continue;
            if (k == 0) {
                if (!cJSON_IsString(f[0]) ||
                    qb_time_parse(f[0]->valuestring, strlen(f[0]->valuestring), &b.ts) != QB_OK)
                    err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                     "alpaca page %d item %d: 't' is not an RFC 3339 time",
                                     page, item);
                continue;
            }
            qb_dec_t *dst = k == 1 ? &b.open : k == 2 ? &b.high : k == 3 ? &b.low
                          : k == 4 ? &b.close : &b.volume;
            if (!cJSON_IsNumber(f[k])) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                 "alpaca page %d item %d: '%s' is not a number", page, item,
                                 qb_alpaca_fields[k]);
                continue;
            }
            qb_md_vendor_dec_field(f[k], qb_alpaca_fields[k], dst, why, sizeof(why));
        }
        if (err) break;
        if (missing) snprintf(why, sizeof(why), "missing '%s'", missing);
        if (why[0]) {
            char where[48];
            snprintf(where, sizeof(where), "alpaca page %d item %d", page, item);
            if ((err = qb_md_vendor_reject(&rej, where, why, errstr, errstr_size))) break;
            continue;
        }
        if (daily) {
            qb_time_t d;
            if (qb_time_floor(b.ts + 12 * QB_NS_PER_HOUR, QB_NS_PER_DAY, &d) == QB_OK) b.ts = d;
        }
        if (b.ts < from || b.ts >= to) continue; /* outside the request */
        pg->bars[pg->n++] = b;
    }
    if (!err) {
        qb_md_vendor_rejects_deliver(&rej, sink->reject, sink->opaque);
        *rejected += rej.n;
    }
    qb_md_vendor_rejects_free(&rej);
done:
    cJSON_Delete(root);
    if (err) qb_alpaca_page_free(pg);
    return err;
}

static qb_err_t qb_alpaca_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                                const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_alpaca_t *a = (qb_md_alpaca_t *)src;
    const char *tf = qb_md_alpaca_timeframe(req->timeframe);
    if (!tf)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alpaca: timeframe '%s' not supported (1m 5m 15m 30m 1h 4h 1d 1w)",
                          req->timeframe);
    qb_bar_t tmpl;
    qb_err_t terr = qb_md_vendor_bar_tmpl(&tmpl, "alpaca", req->symbol, req->timeframe, errstr,
                                          errstr_size);
    if (terr) return terr;
    int daily = strcmp(req->timeframe, "1d") == 0 || strcmp(req->timeframe, "1w") == 0;
    qb_time_t to = req->to ? req->to : INT64_MAX;

    char path[192], enc[96];
    if (qb_http_url_encode(tmpl.symbol.s, enc, sizeof(enc)) >= sizeof(enc))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alpaca: symbol too long");
    snprintf(path, sizeof(path), "/v2/stocks/%s/bars", enc);
    char start[QB_TIME_STRLEN], end[QB_TIME_STRLEN], limit[16];
    qb_time_format(req->from, start, sizeof(start));
    if (req->to) qb_time_format(req->to, end, sizeof(end));
    snprintf(limit, sizeof(limit), "%d", a->page_limit);

    char *token = NULL;
    qb_err_t err = QB_OK;
    size_t total = 0, rejected = 0;
    int page = 0;
    for (;;) {
        page++;
        qb_http_param_t p[9];
        size_t np = 0;
        p[np++] = (qb_http_param_t){"timeframe", tf};
        p[np++] = (qb_http_param_t){"start", start};
        if (req->to) p[np++] = (qb_http_param_t){"end", end};
        p[np++] = (qb_http_param_t){"limit", limit};
        p[np++] = (qb_http_param_t){"adjustment", req->adjusted ? "all" : "raw"};
        p[np++] = (qb_http_param_t){"sort", "asc"};
        if (a->feed) p[np++] = (qb_http_param_t){"feed", a->feed};
        if (token) p[np++] = (qb_http_param_t){"page_token", token};
        qb_http_resp_t resp;
        err = qb_http_get(a->http, path, p, np, &resp, errstr, errstr_size);
        if (err) {
            qb_http_resp_free(&resp);
            break;
        }
        qb_alpaca_page_t pg;
        err = qb_alpaca_page(resp.body, resp.body_len, page, &tmpl, daily, req->from, to, sink,
                             &pg, &rejected, errstr, errstr_size);
        qb_http_resp_free(&resp);
        if (err) break;
        if (pg.next && token && strcmp(pg.next, token) == 0) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "alpaca page %d: 'next_page_token' repeats the previous one", page);
            qb_alpaca_page_free(&pg);
            break;
        }
        QB_DEBUG("alpaca: %s %s page %d: %zu bars", tmpl.symbol.s, req->timeframe, page, pg.n);
        if (pg.n) err = sink->bars(sink->opaque, pg.bars, pg.n, errstr, errstr_size);
        total += pg.n;
        free(token);
        token = pg.next;
        pg.next = NULL;
        qb_alpaca_page_free(&pg);
        if (err || !token) break;
    }
    free(token);
    if (!err)
        QB_INFO("alpaca: %s %s: %zu bars, %zu rejected, %d page%s", tmpl.symbol.s,
                req->timeframe, total, rejected, page, page == 1 ? "" : "s");
    return err;
}

static void qb_alpaca_destroy(qb_md_source_t *src) {
    qb_md_alpaca_t *a = (qb_md_alpaca_t *)src;
    qb_http_destroy(a->http);
    free(a->feed);
    free(a);
}

static const qb_md_source_ops_t qb_alpaca_ops = {"alpaca", qb_alpaca_fetch, qb_alpaca_destroy};

qb_md_source_t *qb_md_alpaca_source_new(const char *base_url, const qb_md_alpaca_opts_t *opts,
                                        char *errstr, size_t errstr_size) {
    qb_alpaca_cfg_t cfg;
    if (qb_md_vendor_config_load("Alpaca", qb_alpaca_cfg_table, &cfg, sizeof(cfg), errstr,
                                 errstr_size) != QB_OK)
        return NULL;
    qb_md_alpaca_opts_t o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof(o));
    if (o.page_limit < 0 || o.rate_per_min < 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alpaca: negative page_limit or rate");
        return NULL;
    }
    qb_md_alpaca_t *a = calloc(1, sizeof(*a));
    if (!a) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->base.ops = &qb_alpaca_ops;
    a->page_limit = o.page_limit ? o.page_limit : 10000;
    const char *feed = o.feed ? o.feed : cfg.feed;
    if (feed && *feed && !(a->feed = strdup(feed))) goto oom;
    const qb_md_vendor_cred_t creds[] = {{0, "APCA-API-KEY-ID", cfg.key_id},
                                         {0, "APCA-API-SECRET-KEY", cfg.secret_key}};
    a->http = qb_md_vendor_http_new(&o.http, "alpaca", base_url, QB_MD_ALPACA_DEFAULT_URL,
                                    (o.rate_per_min > 0 ? o.rate_per_min : cfg.rate_per_min) / 60.0,
                                    creds, 2, errstr, errstr_size);
    if (!a->http) {
        qb_alpaca_destroy(&a->base);
        return NULL;
    }
    return &a->base;
oom:
    qb_alpaca_destroy(&a->base);
    qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    return NULL;
}
