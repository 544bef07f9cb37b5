/* qb_md_coinbase.c — Coinbase Exchange candles; see qb_md_coinbase.h.
 *
 * The source owns a qb_http_t (the rate limit; the endpoint is public).
 * fetch() walks windows of at most 300 candles forward in time;
 * qb_coinbase_window() turns one response into bars sorted oldest first
 * (or a QB_ERR_PARSE) before the sink sees any of it. Candles are arrays
 * [time, low, high, open, close, volume]: mind the order. */
#include "md/qb_md_coinbase.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_types.h"
#include "md/qb_md_vendor.h"

typedef struct qb_md_coinbase_s {
    qb_md_source_t base; /* first: the interface */
    qb_http_t *http;
    int window_candles;
} qb_md_coinbase_t;

typedef struct qb_coinbase_cfg_s {
    double rate_per_sec;
} qb_coinbase_cfg_t;

static const qb_cfg_entry_t qb_coinbase_cfg_table[] = {
    {"coinbase.rate_per_sec", "QB_COINBASE_RATE_PER_SEC", QB_CFG_DOUBLE, "10", 0.01, 1e6,
     offsetof(qb_coinbase_cfg_t, rate_per_sec), 0,
     "Coinbase Exchange requests per second (token bucket, evenly spaced)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL}};

int qb_md_coinbase_granularity(const char *timeframe) {
    static const struct {
        const char *tf;
        int secs;
    } m[] = {{"1m", 60}, {"5m", 300}, {"15m", 900}, {"1h", 3600}, {"1d", 86400}};
    for (size_t i = 0; timeframe && i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(timeframe, m[i].tf) == 0) return m[i].secs;
    return 0;
}

/* A parsed candle and its item number (for ordering and messages). */
typedef struct qb_coinbase_candle_s {
    qb_bar_t bar;
    int item;
} qb_coinbase_candle_t;

typedef struct qb_coinbase_win_s {
    qb_coinbase_candle_t *c;
    size_t n;
    qb_md_vendor_rejects_t rej;
} qb_coinbase_win_t;

static void qb_coinbase_win_free(qb_coinbase_win_t *w) {
    free(w->c);
    qb_md_vendor_rejects_free(&w->rej);
    memset(w, 0, sizeof(*w));
}

static qb_err_t qb_coinbase_reject(qb_coinbase_win_t *w, int window, int item, const char *why,
                                   char *errstr, size_t errstr_size) {
    char where[48];
    snprintf(where, sizeof(where), "coinbase window %d item %d", window, item);
    return qb_md_vendor_reject(&w->rej, where, why, errstr, errstr_size);
}

static int qb_coinbase_cmp(const void *a, const void *b) {
    const qb_coinbase_candle_t *x = a, *y = b;
    if (x->bar.ts != y->bar.ts) return x->bar.ts < y->bar.ts ? -1 : 1;
    return x->item - y->item;
}

/* Field order of a candle and the names used in messages. */
static const char *const qb_coinbase_fields[6] = {"time", "low", "high", "open", "close", "volume"};

/* Parse one window's body into w (sorted oldest first, duplicates
 * rejected): QB_OK, or an error with w empty. */
static qb_err_t qb_coinbase_window(const char *body, size_t len, int window, const qb_bar_t *tmpl,
                                   qb_time_t from, qb_time_t to, qb_coinbase_win_t *w,
                                   char *errstr, size_t errstr_size) {
    memset(w, 0, sizeof(*w));
    char pos[48];
    snprintf(pos, sizeof(pos), "coinbase window %d", window);
    cJSON *root = qb_md_vendor_parse(body, len, pos, errstr, errstr_size);
    if (!root) return QB_ERR_PARSE;
    qb_err_t err = QB_OK;
    if (!cJSON_IsArray(root)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                         "coinbase window %d: body is not a JSON array", window);
        goto done;
    }
    int count = cJSON_GetArraySize(root);
    if (count > 0 && !(w->c = malloc((size_t)count * sizeof(*w->c)))) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int item = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        item++;
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 6) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "coinbase window %d item %d: not an array of 6 values", window, item);
            break;
        }
        qb_bar_t b = *tmpl;
        qb_dec_t *dst[6] = {NULL, &b.low, &b.high, &b.open, &b.close, &b.volume};
        char nulls[64] = "", why[80] = "";
        const cJSON *f = it->child;
        for (int k = 0; k < 6 && !err; k++, f = f->next) {
            if (cJSON_IsNull(f)) {
                size_t l = strlen(nulls);
                snprintf(nulls + l, sizeof(nulls) - l, "%s%s", l ? ", " : "", qb_coinbase_fields[k]);
                continue;
            }
            if (!cJSON_IsNumber(f)) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                 "coinbase window %d item %d: '%s' is not a number", window, item,
                                 qb_coinbase_fields[k]);
                break;
            }
            if (k == 0) {
                double s = f->valuedouble;
                if (!isfinite(s) || s != floor(s) || fabs(s) > 9e9 ||
                    qb_time_from_unix_s((int64_t)s, &b.ts) != QB_OK)
                    err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                     "coinbase window %d item %d: 'time' is not integer seconds",
                                     window, item);
                continue;
            }
            qb_md_vendor_dec_field(f, qb_coinbase_fields[k], dst[k], why, sizeof(why));
        }
        if (err) break;
        if (nulls[0]) snprintf(why, sizeof(why), "null %s", nulls);
        if (why[0]) {
            if ((err = qb_coinbase_reject(w, window, item, why, errstr, errstr_size))) break;
            continue;
        }
        if (b.ts < from || b.ts >= to) continue; /* before start, or the next window's */
        w->c[w->n].bar = b;
        w->c[w->n++].item = item;
    }
    if (err) goto done;
    /* newest first -> oldest first; a repeated time keeps its first item */
    qsort(w->c, w->n, sizeof(*w->c), qb_coinbase_cmp);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (k > 0 && w->c[i].bar.ts == w->c[k - 1].bar.ts) {
            char why[80];
            snprintf(why, sizeof(why), "duplicate time (also item %d)", w->c[k - 1].item);
            if ((err = qb_coinbase_reject(w, window, w->c[i].item, why, errstr, errstr_size)))
                goto done;
            continue;
        }
        w->c[k++] = w->c[i];
    }
    w->n = k;
done:
    cJSON_Delete(root);
    if (err) qb_coinbase_win_free(w);
    return err;
}

static qb_err_t qb_coinbase_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                                  const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_coinbase_t *cb = (qb_md_coinbase_t *)src;
    int gran = qb_md_coinbase_granularity(req->timeframe);
    if (!gran)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "coinbase: timeframe '%s' not supported (1m 5m 15m 1h 1d)",
                          req->timeframe);
    if (req->adjusted)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "coinbase: adjusted bars do not exist for crypto");
    qb_bar_t tmpl;
    qb_err_t err = qb_md_vendor_bar_tmpl(&tmpl, "coinbase", req->symbol, req->timeframe, errstr,
                                         errstr_size);
    if (err) return err;
    char path[160], enc[96];
    if (qb_http_url_encode(tmpl.symbol.s, enc, sizeof(enc)) >= sizeof(enc))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "coinbase: symbol too long");
    snprintf(path, sizeof(path), "/products/%s/candles", enc);

    int64_t g = (int64_t)gran * QB_NS_PER_SEC;
    int64_t span = g * cb->window_candles;
    qb_time_t to = req->to ? req->to : qb_time_now();
    qb_time_t start;
    if (qb_time_floor(req->from, g, &start) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "coinbase: 'from' out of range");
    if (start < req->from) start += g; /* the first bucket opening at or after from */
    char gs[16];
    snprintf(gs, sizeof(gs), "%d", gran);

    size_t total = 0, rejected = 0;
    int window = 0;
    for (qb_time_t ws = start; ws < to;) {
        qb_time_t we = to - ws > span ? ws + span : to;
        window++;
        char s1[QB_TIME_STRLEN], s2[QB_TIME_STRLEN];
        qb_time_format(ws, s1, sizeof(s1));
        qb_time_format(we, s2, sizeof(s2));
        const qb_http_param_t p[] = {{"granularity", gs}, {"start", s1}, {"end", s2}};
        qb_http_resp_t resp;
        err = qb_http_get(cb->http, path, p, 3, &resp, errstr, errstr_size);
        qb_coinbase_win_t w;
        if (!err)
            err = qb_coinbase_window(resp.body, resp.body_len, window, &tmpl, ws, we, &w, errstr,
                                     errstr_size);
        qb_http_resp_free(&resp);
        if (err) break;
        qb_md_vendor_rejects_deliver(&w.rej, sink->reject, sink->opaque);
        rejected += w.rej.n;
        QB_DEBUG("coinbase: %s %s window %d: %zu bars", tmpl.symbol.s, req->timeframe, window,
                 w.n);
        if (w.n) {
            /* the bars, contiguous, for the sink (w.c interleaves item numbers) */
            qb_bar_t *bars = malloc(w.n * sizeof(*bars));
            if (!bars) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            } else {
                for (size_t i = 0; i < w.n; i++) bars[i] = w.c[i].bar;
                err = sink->bars(sink->opaque, bars, w.n, errstr, errstr_size);
                free(bars);
            }
        }
        total += w.n;
        qb_coinbase_win_free(&w);
        if (err) break;
        ws = we;
    }
    if (!err)
        QB_INFO("coinbase: %s %s: %zu bars, %zu rejected, %d window%s", tmpl.symbol.s,
                req->timeframe, total, rejected, window, window == 1 ? "" : "s");
    return err;
}

static void qb_coinbase_destroy(qb_md_source_t *src) {
    qb_md_coinbase_t *cb = (qb_md_coinbase_t *)src;
    qb_http_destroy(cb->http);
    free(cb);
}

static const qb_md_source_ops_t qb_coinbase_ops = {"coinbase", qb_coinbase_fetch,
                                                   qb_coinbase_destroy};

qb_md_source_t *qb_md_coinbase_source_new(const char *base_url,
                                          const qb_md_coinbase_opts_t *opts, char *errstr,
                                          size_t errstr_size) {
    qb_coinbase_cfg_t cfg;
    if (qb_md_vendor_config_load("Coinbase", qb_coinbase_cfg_table, &cfg, sizeof(cfg), errstr,
                                 errstr_size) != QB_OK)
        return NULL;
    qb_md_coinbase_opts_t o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof(o));
    if (o.rate_per_sec < 0 || o.window_candles < 0 ||
        o.window_candles > QB_MD_COINBASE_MAX_CANDLES) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "coinbase: rate must be >= 0 and window_candles within 0..%d",
                   QB_MD_COINBASE_MAX_CANDLES);
        return NULL;
    }
    qb_md_coinbase_t *cb = calloc(1, sizeof(*cb));
    if (!cb) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cb->base.ops = &qb_coinbase_ops;
    cb->window_candles = o.window_candles ? o.window_candles : QB_MD_COINBASE_MAX_CANDLES;
    cb->http = qb_md_vendor_http_new(&o.http, "coinbase", base_url, QB_MD_COINBASE_DEFAULT_URL,
                                     o.rate_per_sec > 0 ? o.rate_per_sec : cfg.rate_per_sec, NULL,
                                     0, errstr, errstr_size);
    if (!cb->http) {
        qb_coinbase_destroy(&cb->base);
        return NULL;
    }
    return &cb->base;
}
