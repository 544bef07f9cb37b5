/* qb_md_polygon.c — Polygon.io aggregates; see qb_md_polygon.h.
 *
 * Same shape as qb_md_alpaca.c: the source owns a qb_http_t (the key as a
 * secret query param, so it is appended to next_url too, and the rate
 * limit); fetch() walks pages; qb_polygon_page() turns one body into bars
 * or a QB_ERR_PARSE before the sink sees any of it. Prices: the JSON
 * double through qb_md_vendor_dec (qb_md_vendor.h) — exact for any vendor
 * text of up to 15 significant digits. "t" is integer milliseconds. */
#include "md/qb_md_polygon.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_types.h"
#include "md/qb_md_vendor.h"

typedef struct qb_md_polygon_s {
    qb_md_source_t base; /* first: the interface */
    qb_http_t *http;
    int page_limit;
} qb_md_polygon_t;

typedef struct qb_polygon_cfg_s {
    const char *api_key;
    double rate_per_min;
} qb_polygon_cfg_t;

static const qb_cfg_entry_t qb_polygon_cfg_table[] = {
    {"polygon.api_key", "QB_POLYGON_API_KEY", QB_CFG_STRING, NULL, 1, 256,
     offsetof(qb_polygon_cfg_t, api_key), QB_CFG_SECRET | QB_CFG_REQUIRED,
     "Polygon.io API key (query parameter apiKey)"},
    {"polygon.rate_per_min", "QB_POLYGON_RATE_PER_MIN", QB_CFG_DOUBLE, "5", 0.01, 1e6,
     offsetof(qb_polygon_cfg_t, rate_per_min), 0,
     "Polygon requests per minute (5 on the free plan; token bucket, evenly spaced)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL}};

qb_err_t qb_md_polygon_timeframe(const char *tf, int *mult, const char **span) {
    static const struct {
        const char *tf;
        int mult;
        const char *span;
    } m[] = {{"1m", 1, "minute"}, {"5m", 5, "minute"}, {"15m", 15, "minute"},
             {"30m", 30, "minute"}, {"1h", 1, "hour"}, {"4h", 4, "hour"},
             {"1d", 1, "day"}, {"1w", 1, "week"}};
    for (size_t i = 0; tf && i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(tf, m[i].tf) == 0) {
            *mult = m[i].mult;
            *span = m[i].span;
            return QB_OK;
        }
    return QB_ERR_INVALID;
}

typedef struct qb_polygon_page_s {
    qb_bar_t *bars;
    size_t n;
    char *next; /* next_url, malloc'd, or NULL */
} qb_polygon_page_t;

static void qb_polygon_page_free(qb_polygon_page_t *p) {
    free(p->bars);
    free(p->next);
    memset(p, 0, sizeof(*p));
}

static const char *const qb_polygon_fields[] = {"t", "o", "h", "l", "c", "v"};

static qb_err_t qb_polygon_page(const char *body, size_t len, int page, const qb_bar_t *tmpl,
                                int daily, qb_time_t from, qb_time_t to,
                                const qb_md_sink_t *sink, qb_polygon_page_t *pg,
                                size_t *rejected, char *errstr, size_t errstr_size) {
    memset(pg, 0, sizeof(*pg));
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "polygon page %d: body is not a JSON object (%zu bytes)", page, len);
    }
    qb_err_t err = QB_OK;
    qb_md_vendor_rejects_t rej = {NULL, 0};
    cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (status && !cJSON_IsString(status)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "polygon page %d: 'status' is not a string",
                         page);
        goto done;
    }
    if (status && (strcmp(status->valuestring, "ERROR") == 0 ||
                   strcmp(status->valuestring, "NOT_AUTHORIZED") == 0)) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(root, "message");
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "polygon page %d: status %s: %.200s",
                         page, status->valuestring, cJSON_IsString(m) ? m->valuestring : "");
        goto done;
    }
    cJSON *ticker = cJSON_GetObjectItemCaseSensitive(root, "ticker");
    if (ticker && (!cJSON_IsString(ticker) || strcasecmp(ticker->valuestring, tmpl->symbol.s))) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "polygon page %d: 'ticker' is %s, asked for %s",
                         page, cJSON_IsString(ticker) ? ticker->valuestring : "not a string",
                         tmpl->symbol.s);
        goto done;
    }
    cJSON *next = cJSON_GetObjectItemCaseSensitive(root, "next_url");
    if (next && !cJSON_IsNull(next)) {
        if (!cJSON_IsString(next) || !*next->valuestring) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "polygon page %d: 'next_url' is not a string", page);
            goto done;
        }
        if (!(pg->next = strdup(next->valuestring))) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!results || cJSON_IsNull(results)) {
        cJSON *cnt = cJSON_GetObjectItemCaseSensitive(root, "resultsCount");
        if (cJSON_IsNumber(cnt) && cnt->valuedouble > 0)
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "polygon page %d: 'results' missing but resultsCount is %.0f", page,
                             cnt->valuedouble);
        goto done;
    }
    if (!cJSON_IsArray(results)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "polygon page %d: 'results' is not an array",
                         page);
        goto done;
    }
    int count = cJSON_GetArraySize(results);
    if (count > 0 && !(pg->bars = malloc((size_t)count * sizeof(qb_bar_t)))) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int item = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, results) {
        item++;
        if (!cJSON_IsObject(it)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "polygon page %d item %d: not an object",
                             page, item);
            break;
        }
        const char *missing = NULL;
        char why[96] = "";
        qb_bar_t b = *tmpl;
        for (int k = 0; k < 6 && !err; k++) {
            cJSON *f = cJSON_GetObjectItemCaseSensitive(it, qb_polygon_fields[k]);
            if (!f || cJSON_IsNull(f)) {
                if (!missing) missing = qb_polygon_fields[k];
                continue;
            }
            if (!cJSON_IsNumber(f)) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                 "polygon page %d item %d: '%s' is not a number", page, item,
                                 qb_polygon_fields[k]);
                break;
            }
            if (k == 0) {
                double ms = f->valuedouble;
                if (!isfinite(ms) || ms != floor(ms) || fabs(ms) > 9e15 ||
                    qb_time_from_unix_ms((int64_t)ms, &b.ts) != QB_OK)
                    err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                     "polygon page %d item %d: 't' is not a millisecond timestamp",
                                     page, item);
                continue;
            }
            qb_dec_t *dst = k == 1 ? &b.open : k == 2 ? &b.high : k == 3 ? &b.low
                          : k == 4 ? &b.close : &b.volume;
            qb_md_vendor_dec_field(f, qb_polygon_fields[k], dst, why, sizeof(why));
        }
        if (err) break;
        if (missing) snprintf(why, sizeof(why), "missing '%s'", missing);
        if (why[0]) {
            char where[48];
            snprintf(where, sizeof(where), "polygon page %d item %d", page, item);
            if ((err = qb_md_vendor_reject(&rej, where, why, errstr, errstr_size))) break;
            continue;
        }
        if (daily) {
            qb_time_t d;
            if (qb_time_floor(b.ts + 12 * QB_NS_PER_HOUR, QB_NS_PER_DAY, &d) == QB_OK) b.ts = d;
        }
        if (b.ts < from || b.ts >= to) continue;
        pg->bars[pg->n++] = b;
    }
    if (!err) {
        qb_md_vendor_rejects_deliver(&rej, sink->reject, sink->opaque);
        *rejected += rej.n;
    }
done:
    qb_md_vendor_rejects_free(&rej);
    cJSON_Delete(root);
    if (err) qb_polygon_page_free(pg);
    return err;
}

static qb_err_t qb_polygon_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                                 const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_polygon_t *pl = (qb_md_polygon_t *)src;
    int mult;
    const char *span;
    if (qb_md_polygon_timeframe(req->timeframe, &mult, &span) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "polygon: timeframe '%s' not supported (1m 5m 15m 30m 1h 4h 1d 1w)",
                          req->timeframe);
    qb_bar_t tmpl;
    qb_err_t terr = qb_md_vendor_bar_tmpl(&tmpl, "polygon", req->symbol, req->timeframe, errstr,
                                          errstr_size);
    if (terr) return terr;
    int daily = strcmp(span, "day") == 0 || strcmp(span, "week") == 0;
    qb_time_t to = req->to ? req->to : INT64_MAX;
    qb_time_t last = req->to ? req->to - 1 : qb_time_now();

    char from_s[32], to_s[32], enc[96], path[320], limit[16];
    if (daily) {
        qb_md_vendor_date(req->from, from_s, sizeof(from_s));
        qb_md_vendor_date(last, to_s, sizeof(to_s));
    } else {
        snprintf(from_s, sizeof(from_s), "%lld", (long long)qb_time_to_unix_ms(req->from));
        snprintf(to_s, sizeof(to_s), "%lld", (long long)qb_time_to_unix_ms(last));
    }
    if (qb_http_url_encode(tmpl.symbol.s, enc, sizeof(enc)) >= sizeof(enc))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "polygon: symbol too long");
    snprintf(path, sizeof(path), "/v2/aggs/ticker/%s/range/%d/%s/%s/%s", enc, mult, span, from_s,
             to_s);
    snprintf(limit, sizeof(limit), "%d", pl->page_limit);
    const qb_http_param_t first[] = {{"adjusted", req->adjusted ? "true" : "false"},
                                     {"sort", "asc"},
                                     {"limit", limit}};

    char *url = NULL; /* next_url of the previous page */
    qb_err_t err = QB_OK;
    size_t total = 0, rejected = 0;
    int page = 0;
    for (;;) {
        page++;
        qb_http_resp_t resp;
        if (!url)
            err = qb_http_get(pl->http, path, first, 3, &resp, errstr, errstr_size);
        else
            err = qb_http_get_url(pl->http, url, NULL, 0, &resp, errstr, errstr_size);
        if (err) {
            qb_http_resp_free(&resp);
            break;
        }
        qb_polygon_page_t pg;
        err = qb_polygon_page(resp.body, resp.body_len, page, &tmpl, daily, req->from, to, sink,
                              &pg, &rejected, errstr, errstr_size);
        qb_http_resp_free(&resp);
        if (err) break;
        if (pg.next && url && strcmp(pg.next, url) == 0) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "polygon page %d: 'next_url' repeats the previous one", page);
            qb_polygon_page_free(&pg);
            break;
        }
        QB_DEBUG("polygon: %s %s page %d: %zu bars", tmpl.symbol.s, req->timeframe, page, pg.n);
        if (pg.n) err = sink->bars(sink->opaque, pg.bars, pg.n, errstr, errstr_size);
        total += pg.n;
        free(url);
        url = pg.next;
        pg.next = NULL;
        qb_polygon_page_free(&pg);
        if (err || !url) break;
    }
    free(url);
    if (!err)
        QB_INFO("polygon: %s %s: %zu bars, %zu rejected, %d page%s", tmpl.symbol.s,
                req->timeframe, total, rejected, page, page == 1 ? "" : "s");
    return err;
}

static void qb_polygon_destroy(qb_md_source_t *src) {
    qb_md_polygon_t *pl = (qb_md_polygon_t *)src;
    qb_http_destroy(pl->http);
    free(pl);
}

static const qb_md_source_ops_t qb_polygon_ops = {"polygon", qb_polygon_fetch,
                                                  qb_polygon_destroy};

qb_md_source_t *qb_md_polygon_source_new(const char *base_url, const qb_md_polygon_opts_t *opts,
                                         char *errstr, size_t errstr_size) {
    qb_polygon_cfg_t cfg;
    if (qb_md_vendor_config_load("Polygon", qb_polygon_cfg_table, &cfg, sizeof(cfg), errstr,
                                 errstr_size) != QB_OK)
        return NULL;
    qb_md_polygon_opts_t o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof(o));
    if (o.page_limit < 0 || o.rate_per_min < 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "polygon: negative page_limit or rate");
        return NULL;
    }
    qb_md_polygon_t *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pl->base.ops = &qb_polygon_ops;
    pl->page_limit = o.page_limit ? o.page_limit : 50000;
    const qb_md_vendor_cred_t creds[] = {{1, "apiKey", cfg.api_key}};
    pl->http = qb_md_vendor_http_new(&o.http, "polygon", base_url, QB_MD_POLYGON_DEFAULT_URL,
                                     (o.rate_per_min > 0 ? o.rate_per_min : cfg.rate_per_min) /
                                         60.0,
                                     creds, 1, errstr, errstr_size);
    if (!pl->http) {
        qb_polygon_destroy(&pl->base);
        return NULL;
    }
    return &pl->base;
}
