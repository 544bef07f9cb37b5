/* qb_md_yahoo.c — Yahoo Finance chart JSON; see qb_md_yahoo.h.
 *
 * The source owns a qb_http_t (the rate limit; Yahoo needs no key). fetch()
 * walks time windows; qb_yahoo_parse() turns one response body into bars,
 * rejects and corporate actions — or an error — before the sink sees any
 * of it. The chart format is columnar (one "timestamp" array and parallel
 * quote arrays), so the arrays are walked side by side through their
 * linked lists (cJSON_GetArrayItem would make it quadratic).
 *
 * Numbers. A price is the JSON double through qb_md_vendor_dec
 * (qb_md_vendor.h) — exactly Yahoo's text for any value of up to 15
 * significant digits. Timestamps are integer Unix seconds.
 *
 * Session dates come from the exchange's zone (libs/cal/qb_tz.h, cached per
 * process): the local date of Yahoo's stamp, at 00:00 UTC. */
#include "md/qb_md_yahoo.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cal/qb_tz.h"
#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "md/qb_md_vendor.h"

typedef struct qb_md_yahoo_s {
    qb_md_source_t base; /* first: the interface */
    qb_http_t *http;
} qb_md_yahoo_t;

typedef struct qb_yahoo_cfg_s {
    double rate_per_min;
} qb_yahoo_cfg_t;

static const qb_cfg_entry_t qb_yahoo_cfg_table[] = {
    {"yahoo.rate_per_min", "QB_YAHOO_RATE_PER_MIN", QB_CFG_DOUBLE, "60", 0.01, 1e6,
     offsetof(qb_yahoo_cfg_t, rate_per_min), 0,
     "Yahoo Finance requests per minute (token bucket, evenly spaced)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL}};

/* Timeframe -> interval, and the longest span one request may cover
 * (0: the whole range in one request). */
static const struct {
    const char *tf, *interval;
    int window_days;
} qb_yahoo_tfs[] = {{"1m", "1m", 7},   {"5m", "5m", 60},    {"15m", "15m", 60},
                    {"30m", "30m", 60}, {"1h", "60m", 730}, {"1d", "1d", 0}};

#define QB_YAHOO_NTFS (sizeof(qb_yahoo_tfs) / sizeof(qb_yahoo_tfs[0]))

const char *qb_md_yahoo_interval(const char *timeframe) {
    for (size_t i = 0; timeframe && i < QB_YAHOO_NTFS; i++)
        if (strcmp(timeframe, qb_yahoo_tfs[i].tf) == 0) return qb_yahoo_tfs[i].interval;
    return NULL;
}

static int qb_yahoo_window_days(const char *timeframe) {
    for (size_t i = 0; i < QB_YAHOO_NTFS; i++)
        if (strcmp(timeframe, qb_yahoo_tfs[i].tf) == 0) return qb_yahoo_tfs[i].window_days;
    return 0;
}

/* ---- JSON values ------------------------------------------------------------ */

/* Integer Unix seconds -> *out; 0 ok, -1 otherwise. */
static int qb_yahoo_secs(const cJSON *n, qb_time_t *out) {
    if (!cJSON_IsNumber(n)) return -1;
    double d = n->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9e9) return -1;
    return qb_time_from_unix_s((int64_t)d, out) == QB_OK ? 0 : -1;
}

/* "yahoo", "yahoo item 5", "yahoo window 2", "yahoo window 2 item 5". */
static void qb_yahoo_pos(char *buf, size_t cap, int window, int item) {
    if (window <= 1 && item <= 0) snprintf(buf, cap, "yahoo");
    else if (window <= 1) snprintf(buf, cap, "yahoo item %d", item);
    else if (item <= 0) snprintf(buf, cap, "yahoo window %d", window);
    else snprintf(buf, cap, "yahoo window %d item %d", window, item);
}

/* ---- exchange time zone ------------------------------------------------------ */

typedef struct qb_yahoo_zone_s {
    const qb_tz_t *tz; /* NULL: use gmtoff */
    int32_t gmtoff;    /* seconds east of UTC */
} qb_yahoo_zone_t;

static qb_err_t qb_yahoo_zone(const cJSON *meta, const char *pos, qb_yahoo_zone_t *z,
                              char *errstr, size_t errstr_size) {
    memset(z, 0, sizeof(*z));
    const cJSON *name = meta ? cJSON_GetObjectItemCaseSensitive(meta, "exchangeTimezoneName") : NULL;
    const cJSON *off = meta ? cJSON_GetObjectItemCaseSensitive(meta, "gmtoffset") : NULL;
    int have_off = cJSON_IsNumber(off) && isfinite(off->valuedouble) &&
                   fabs(off->valuedouble) <= 18 * 3600.0;
    if (cJSON_IsString(name) && *name->valuestring) {
        char sub[256];
        if (qb_tz_get(name->valuestring, &z->tz, sub, sizeof(sub)) == QB_OK) return QB_OK;
        z->tz = NULL;
        if (!have_off)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: time zone '%.64s' unusable (%s) and no 'meta.gmtoffset'", pos,
                              name->valuestring, sub);
        QB_WARN("%s: time zone '%.64s' unusable (%s): using meta.gmtoffset %.0f s", pos,
                name->valuestring, sub, off->valuedouble);
    }
    if (!have_off)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "%s: 'meta' has neither exchangeTimezoneName nor gmtoffset", pos);
    z->gmtoff = (int32_t)off->valuedouble;
    return QB_OK;
}

/* 00:00 UTC of the exchange-local date of instant t. */
static qb_time_t qb_yahoo_session(const qb_yahoo_zone_t *z, qb_time_t t) {
    int64_t off = (int64_t)(z->tz ? qb_tz_offset_at(z->tz, t) : z->gmtoff) * QB_NS_PER_SEC;
    qb_time_t local, d;
    if (__builtin_add_overflow(t, off, &local) ||
        qb_time_floor(local, QB_NS_PER_DAY, &d) != QB_OK)
        return t;
    return d;
}

/* ---- one response ------------------------------------------------------------ */

typedef struct qb_yahoo_chart_s {
    qb_bar_t *bars;
    size_t n;
    qb_md_vendor_rejects_t rej;
    qb_md_yahoo_action_t *acts;
    size_t nacts;
    char asset_class[16];
} qb_yahoo_chart_t;

static void qb_yahoo_chart_free(qb_yahoo_chart_t *ch) {
    free(ch->bars);
    qb_md_vendor_rejects_free(&ch->rej);
    free(ch->acts);
    memset(ch, 0, sizeof(*ch));
}

/* What one request is for. */
typedef struct qb_yahoo_ctx_s {
    const qb_bar_t *tmpl; /* symbol and timeframe of the bars */
    int daily;            /* re-stamp bars at their session date */
    int want_bars, want_actions;
    qb_time_t from, to;   /* keep stamps in [from, to) */
    int window;           /* 1, 2, ... */
} qb_yahoo_ctx_t;

/* A chart.error object -> NOT_FOUND (code "Not Found") or INVALID, with
 * Yahoo's words; QB_OK when err is null/absent. */
static qb_err_t qb_yahoo_error(const cJSON *err, const char *symbol, long status, char *errstr,
                               size_t errstr_size) {
    if (!err || cJSON_IsNull(err)) return QB_OK;
    const cJSON *code = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "code") : NULL;
    const cJSON *desc =
        cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "description") : NULL;
    const char *c = cJSON_IsString(code) ? code->valuestring : "error";
    const char *d = cJSON_IsString(desc) ? desc->valuestring : "";
    qb_err_t e = strcasecmp(c, "Not Found") == 0 ? QB_ERR_NOT_FOUND : QB_ERR_INVALID;
    if (status)
        return qb_err_set(errstr, errstr_size, e, "yahoo: %s: %.60s: %.200s (HTTP %ld)", symbol, c,
                          d, status);
    return qb_err_set(errstr, errstr_size, e, "yahoo: %s: %.60s: %.200s", symbol, c, d);
}

static const char *const qb_yahoo_cols[5] = {"open", "high", "low", "close", "volume"};

static qb_err_t qb_yahoo_bars(const cJSON *r, const qb_yahoo_ctx_t *cx, const qb_yahoo_zone_t *z,
                              qb_yahoo_chart_t *ch, char *errstr, size_t errstr_size) {
    char pos[48];
    qb_yahoo_pos(pos, sizeof(pos), cx->window, 0);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "timestamp");
    if (!ts || cJSON_IsNull(ts)) return QB_OK; /* no data in the range */
    if (!cJSON_IsArray(ts))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: 'timestamp' is not an array", pos);
    int count = cJSON_GetArraySize(ts);
    if (count == 0) return QB_OK;
    const cJSON *ind = cJSON_GetObjectItemCaseSensitive(r, "indicators");
    const cJSON *quotes = cJSON_IsObject(ind) ? cJSON_GetObjectItemCaseSensitive(ind, "quote") : NULL;
    const cJSON *q = cJSON_IsArray(quotes) ? quotes->child : NULL;
    if (!cJSON_IsObject(q))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "%s: 'indicators.quote[0]' is missing or not an object", pos);
    const cJSON *cur[5];
    for (int k = 0; k < 5; k++) {
        const cJSON *col = cJSON_GetObjectItemCaseSensitive(q, qb_yahoo_cols[k]);
        if (!cJSON_IsArray(col))
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: 'indicators.quote[0].%s' is missing or not an array", pos,
                              qb_yahoo_cols[k]);
        int m = cJSON_GetArraySize(col);
        if (m != count)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: '%s' has %d values for %d timestamps", pos, qb_yahoo_cols[k],
                              m, count);
        cur[k] = col->child;
    }
    if (!(ch->bars = malloc((size_t)count * sizeof(qb_bar_t))))
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    int item = 0;
    for (const cJSON *t = ts->child; t; t = t->next) {
        item++;
        qb_bar_t b = *cx->tmpl;
        if (qb_yahoo_secs(t, &b.ts) != 0) {
            qb_yahoo_pos(pos, sizeof(pos), cx->window, item);
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: 'timestamp' is not integer seconds", pos);
        }
        qb_dec_t *dst[5] = {&b.open, &b.high, &b.low, &b.close, &b.volume};
        char nulls[64] = "", why[80] = "";
        for (int k = 0; k < 5; k++) {
            const cJSON *v = cur[k];
            cur[k] = v->next;
            if (cJSON_IsNull(v)) {
                size_t l = strlen(nulls);
                snprintf(nulls + l, sizeof(nulls) - l, "%s%s", l ? ", " : "", qb_yahoo_cols[k]);
                continue;
            }
            if (!cJSON_IsNumber(v)) {
                qb_yahoo_pos(pos, sizeof(pos), cx->window, item);
                return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: '%s' is not a number",
                                  pos, qb_yahoo_cols[k]);
            }
            qb_md_vendor_dec_field(v, qb_yahoo_cols[k], dst[k], why, sizeof(why));
        }
        if (nulls[0]) snprintf(why, sizeof(why), "null %s", nulls);
        if (why[0]) {
            char where[48];
            qb_yahoo_pos(where, sizeof(where), cx->window, item);
            qb_err_t err = qb_md_vendor_reject(&ch->rej, where, why, errstr, errstr_size);
            if (err) return err;
            continue;
        }
        if (cx->daily) b.ts = qb_yahoo_session(z, b.ts);
        if (b.ts < cx->from || b.ts >= cx->to) continue; /* outside the request */
        ch->bars[ch->n++] = b;
    }
    return QB_OK;
}

static int qb_yahoo_act_cmp(const void *a, const void *b) {
    const qb_md_yahoo_action_t *x = a, *y = b;
    if (x->ex_date != y->ex_date) return x->ex_date < y->ex_date ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static qb_err_t qb_yahoo_events(const cJSON *r, const qb_yahoo_ctx_t *cx,
                                const qb_yahoo_zone_t *z, qb_yahoo_chart_t *ch, char *errstr,
                                size_t errstr_size) {
    char pos[48];
    qb_yahoo_pos(pos, sizeof(pos), cx->window, 0);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(r, "events");
    if (!ev || cJSON_IsNull(ev)) return QB_OK;
    if (!cJSON_IsObject(ev))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: 'events' is not an object", pos);
    static const char *const kinds[2] = {"dividends", "splits"};
    for (int k = 0; k < 2; k++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, kinds[k]);
        if (!m || cJSON_IsNull(m)) continue;
        if (!cJSON_IsObject(m))
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "%s: 'events.%s' is not an object", pos, kinds[k]);
        size_t more = (size_t)cJSON_GetArraySize(m);
        if (!more) continue;
        void *na = realloc(ch->acts, (ch->nacts + more) * sizeof(*ch->acts));
        if (!na) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        ch->acts = na;
        const cJSON *e;
        cJSON_ArrayForEach(e, m) {
            const char *key = e->string ? e->string : "?";
            if (!cJSON_IsObject(e))
                return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                  "%s: 'events.%s.%.24s' is not an object", pos, kinds[k], key);
            qb_md_yahoo_action_t a;
            memset(&a, 0, sizeof(a));
            qb_time_t when;
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "date");
            char *endp = NULL;
            long long ks = strtoll(key, &endp, 10);
            if (d ? qb_yahoo_secs(d, &when) != 0
                  : (endp == key || *endp || qb_time_from_unix_s(ks, &when) != QB_OK))
                return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                                  "%s: 'events.%s.%.24s': no usable 'date'", pos, kinds[k], key);
            const char *bad = NULL;
            if (k == 0) {
                a.kind = QB_MD_ACTION_DIVIDEND;
                const cJSON *amt = cJSON_GetObjectItemCaseSensitive(e, "amount");
                if (!cJSON_IsNumber(amt) || qb_md_vendor_dec(amt, &a.value) != 0 || a.value < 0)
                    bad = "'amount' is not a non-negative number";
            } else {
                a.kind = QB_MD_ACTION_SPLIT;
                const cJSON *num = cJSON_GetObjectItemCaseSensitive(e, "numerator");
                const cJSON *den = cJSON_GetObjectItemCaseSensitive(e, "denominator");
                if (!cJSON_IsNumber(num) || !cJSON_IsNumber(den) ||
                    qb_md_vendor_dec(num, &a.numerator) != 0 ||
                    qb_md_vendor_dec(den, &a.denominator) != 0 || a.numerator <= 0 ||
                    a.denominator <= 0)
                    bad = "'numerator'/'denominator' are not positive numbers";
                else if (qb_dec_div(a.numerator, a.denominator, &a.value, QB_ROUND_HALF_EVEN) !=
                             QB_OK ||
                         a.value <= 0)
                    bad = "the split ratio does not fit a decimal";
            }
            if (bad)
                return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: 'events.%s.%.24s': %s",
                                  pos, kinds[k], key, bad);
            a.ex_date = qb_yahoo_session(z, when);
            if (a.ex_date < cx->from || a.ex_date >= cx->to) continue;
            ch->acts[ch->nacts++] = a;
        }
    }
    if (ch->nacts > 1) qsort(ch->acts, ch->nacts, sizeof(*ch->acts), qb_yahoo_act_cmp);
    return QB_OK;
}

static void qb_yahoo_class(const cJSON *meta, char *out, size_t cap) {
    static const struct {
        const char *yahoo, *ours;
    } m[] = {{"EQUITY", "equity"}, {"ETF", "etf"},     {"CRYPTOCURRENCY", "crypto"},
             {"CURRENCY", "fx"},   {"FUTURE", "future"}};
    const cJSON *t = meta ? cJSON_GetObjectItemCaseSensitive(meta, "instrumentType") : NULL;
    snprintf(out, cap, "equity");
    for (size_t i = 0; cJSON_IsString(t) && i < sizeof(m) / sizeof(m[0]); i++)
        if (strcasecmp(t->valuestring, m[i].yahoo) == 0) snprintf(out, cap, "%s", m[i].ours);
}

/* Parse one body: QB_OK with ch filled, or an error with ch empty. */
static qb_err_t qb_yahoo_parse(const char *body, size_t len, const qb_yahoo_ctx_t *cx,
                               qb_yahoo_chart_t *ch, char *errstr, size_t errstr_size) {
    memset(ch, 0, sizeof(*ch));
    char pos[48];
    qb_yahoo_pos(pos, sizeof(pos), cx->window, 0);
    cJSON *root = qb_md_vendor_parse(body, len, pos, errstr, errstr_size);
    if (!root) return QB_ERR_PARSE;
    qb_err_t err = QB_OK;
    const cJSON *chart = cJSON_GetObjectItemCaseSensitive(root, "chart");
    if (!cJSON_IsObject(chart)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: no 'chart' object", pos);
        goto done;
    }
    const cJSON *cerr = cJSON_GetObjectItemCaseSensitive(chart, "error");
    if ((err = qb_yahoo_error(cerr, cx->tmpl->symbol.s, 0, errstr, errstr_size))) goto done;
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(chart, "result");
    const cJSON *r = cJSON_IsArray(result) ? result->child : NULL;
    if (!cJSON_IsObject(r)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                         "%s: 'chart.result' is not a non-empty array of objects", pos);
        goto done;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(r, "meta");
    if (meta && !cJSON_IsObject(meta)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: 'meta' is not an object", pos);
        goto done;
    }
    const cJSON *sym = meta ? cJSON_GetObjectItemCaseSensitive(meta, "symbol") : NULL;
    if (sym && (!cJSON_IsString(sym) || strcasecmp(sym->valuestring, cx->tmpl->symbol.s) != 0)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: 'meta.symbol' is %.40s, asked for %s",
                         pos, cJSON_IsString(sym) ? sym->valuestring : "not a string",
                         cx->tmpl->symbol.s);
        goto done;
    }
    qb_yahoo_class(meta, ch->asset_class, sizeof(ch->asset_class));
    qb_yahoo_zone_t zone;
    memset(&zone, 0, sizeof(zone));
    if ((cx->daily || cx->want_actions) &&
        (err = qb_yahoo_zone(meta, pos, &zone, errstr, errstr_size)))
        goto done;
    if (cx->want_bars && (err = qb_yahoo_bars(r, cx, &zone, ch, errstr, errstr_size))) goto done;
    if (cx->want_actions) err = qb_yahoo_events(r, cx, &zone, ch, errstr, errstr_size);
done:
    cJSON_Delete(root);
    if (err) qb_yahoo_chart_free(ch);
    return err;
}

/* ---- requests ---------------------------------------------------------------- */

/* GET one chart. On a 4xx whose body carries chart.error, errstr is
 * rewritten with Yahoo's code and description (and "Not Found" is
 * NOT_FOUND whatever the status). */
static qb_err_t qb_yahoo_get(qb_md_yahoo_t *y, const char *symbol, const char *interval,
                             qb_time_t p1, qb_time_t p2, int events, qb_http_resp_t *resp,
                             char *errstr, size_t errstr_size) {
    char enc[96], path[160], s1[24], s2[24];
    if (qb_http_url_encode(symbol, enc, sizeof(enc)) >= sizeof(enc))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "yahoo: symbol too long");
    snprintf(path, sizeof(path), "/v8/finance/chart/%s", enc);
    snprintf(s1, sizeof(s1), "%lld", (long long)qb_time_to_unix_s(p1));
    /* period2 rounded up to whole seconds */
    snprintf(s2, sizeof(s2), "%lld",
             (long long)(qb_time_to_unix_s(p2) + (p2 % QB_NS_PER_SEC != 0)));
    qb_http_param_t p[5];
    size_t np = 0;
    p[np++] = (qb_http_param_t){"period1", s1};
    p[np++] = (qb_http_param_t){"period2", s2};
    p[np++] = (qb_http_param_t){"interval", interval};
    p[np++] = (qb_http_param_t){"includePrePost", "false"};
    if (events) p[np++] = (qb_http_param_t){"events", "div,splits"};
    qb_err_t err = qb_http_get(y->http, path, p, np, resp, errstr, errstr_size);
    if ((err == QB_ERR_NOT_FOUND || err == QB_ERR_INVALID) && resp->body) {
        cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
        const cJSON *chart = cJSON_GetObjectItemCaseSensitive(root, "chart");
        const cJSON *ce = cJSON_IsObject(chart) ? cJSON_GetObjectItemCaseSensitive(chart, "error")
                                                : NULL;
        if (cJSON_IsObject(ce)) err = qb_yahoo_error(ce, symbol, resp->status, errstr, errstr_size);
        cJSON_Delete(root);
    }
    return err;
}

/* Widen a daily range by a day each side (see qb_md_yahoo.h). */
static void qb_yahoo_widen(qb_time_t *p1, qb_time_t *p2) {
    if (*p1 > INT64_MIN + QB_NS_PER_DAY) *p1 -= QB_NS_PER_DAY;
    if (*p2 < INT64_MAX - QB_NS_PER_DAY) *p2 += QB_NS_PER_DAY;
}

static qb_err_t qb_yahoo_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                               const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    qb_md_yahoo_t *y = (qb_md_yahoo_t *)src;
    const char *interval = qb_md_yahoo_interval(req->timeframe);
    if (!interval)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "yahoo: timeframe '%s' not supported (1m 5m 15m 30m 1h 1d)",
                          req->timeframe);
    if (req->adjusted)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "yahoo: adjusted bars are not offered (prices are raw except for "
                          "Yahoo's split adjustment; adjust on read)");
    qb_bar_t tmpl;
    qb_err_t err = qb_md_vendor_bar_tmpl(&tmpl, "yahoo", req->symbol, req->timeframe, errstr,
                                         errstr_size);
    if (err) return err;
    int daily = strcmp(req->timeframe, "1d") == 0;
    qb_time_t to = req->to ? req->to : qb_time_now();
    int64_t span = (int64_t)qb_yahoo_window_days(req->timeframe) * QB_NS_PER_DAY;

    size_t total = 0, rejected = 0;
    int window = 0;
    for (qb_time_t ws = req->from; ws < to && !err;) {
        qb_time_t we = span && to - ws > span ? ws + span : to;
        window++;
        qb_time_t p1 = ws, p2 = we;
        if (daily) qb_yahoo_widen(&p1, &p2);
        qb_http_resp_t resp;
        err = qb_yahoo_get(y, tmpl.symbol.s, interval, p1, p2, 0, &resp, errstr, errstr_size);
        if (err) {
            qb_http_resp_free(&resp);
            break;
        }
        qb_yahoo_ctx_t cx = {&tmpl, daily, 1, 0, ws, we, window};
        qb_yahoo_chart_t ch;
        err = qb_yahoo_parse(resp.body, resp.body_len, &cx, &ch, errstr, errstr_size);
        qb_http_resp_free(&resp);
        if (err) break;
        qb_md_vendor_rejects_deliver(&ch.rej, sink->reject, sink->opaque);
        rejected += ch.rej.n;
        QB_DEBUG("yahoo: %s %s window %d: %zu bars", tmpl.symbol.s, req->timeframe, window, ch.n);
        if (ch.n) err = sink->bars(sink->opaque, ch.bars, ch.n, errstr, errstr_size);
        total += ch.n;
        qb_yahoo_chart_free(&ch);
        ws = we;
    }
    if (!err)
        QB_INFO("yahoo: %s %s: %zu bars, %zu rejected, %d request%s", tmpl.symbol.s,
                req->timeframe, total, rejected, window, window == 1 ? "" : "s");
    return err;
}

static void qb_yahoo_destroy(qb_md_source_t *src) {
    qb_md_yahoo_t *y = (qb_md_yahoo_t *)src;
    qb_http_destroy(y->http);
    free(y);
}

static const qb_md_source_ops_t qb_yahoo_ops = {"yahoo", qb_yahoo_fetch, qb_yahoo_destroy};

qb_md_source_t *qb_md_yahoo_source_new(const char *base_url, const qb_md_yahoo_opts_t *opts,
                                       char *errstr, size_t errstr_size) {
    qb_yahoo_cfg_t cfg;
    if (qb_md_vendor_config_load("Yahoo", qb_yahoo_cfg_table, &cfg, sizeof(cfg), errstr,
                                 errstr_size) != QB_OK)
        return NULL;
    qb_md_yahoo_opts_t o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof(o));
    if (o.rate_per_min < 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "yahoo: negative rate");
        return NULL;
    }
    qb_md_yahoo_t *y = calloc(1, sizeof(*y));
    if (!y) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    y->base.ops = &qb_yahoo_ops;
    y->http = qb_md_vendor_http_new(&o.http, "yahoo", base_url, QB_MD_YAHOO_DEFAULT_URL,
                                    (o.rate_per_min > 0 ? o.rate_per_min : cfg.rate_per_min) / 60.0,
                                    NULL, 0, errstr, errstr_size);
    if (!y->http) {
        qb_yahoo_destroy(&y->base);
        return NULL;
    }
    return &y->base;
}

/* ---- corporate actions --------------------------------------------------------- */

qb_err_t qb_md_yahoo_fetch_actions(qb_md_source_t *src, const char *symbol, qb_time_t from,
                                   qb_time_t to, qb_md_yahoo_action_t **out, size_t *n,
                                   char *asset_class, char *errstr, size_t errstr_size) {
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!src || src->ops != &qb_yahoo_ops || !symbol || !out || !n)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "yahoo actions: a Yahoo source, a symbol and out/n are required");
    qb_md_yahoo_t *y = (qb_md_yahoo_t *)src;
    qb_bar_t tmpl;
    qb_err_t err = qb_md_vendor_bar_tmpl(&tmpl, "yahoo", symbol, "1d", errstr, errstr_size);
    if (err) return err;
    if (!to) to = qb_time_now();
    if (to <= from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "yahoo actions %s: empty range",
                          tmpl.symbol.s);
    qb_time_t p1 = from, p2 = to;
    qb_yahoo_widen(&p1, &p2);
    qb_http_resp_t resp;
    err = qb_yahoo_get(y, tmpl.symbol.s, "1d", p1, p2, 1, &resp, errstr, errstr_size);
    if (err) {
        qb_http_resp_free(&resp);
        return err;
    }
    qb_yahoo_ctx_t cx = {&tmpl, 1, 0, 1, from, to, 1};
    qb_yahoo_chart_t ch;
    err = qb_yahoo_parse(resp.body, resp.body_len, &cx, &ch, errstr, errstr_size);
    qb_http_resp_free(&resp);
    if (err) return err;
    if (asset_class) snprintf(asset_class, 16, "%s", ch.asset_class);
    *out = ch.acts;
    *n = ch.nacts;
    ch.acts = NULL;
    qb_yahoo_chart_free(&ch);
    QB_DEBUG("yahoo: %s: %zu corporate actions", tmpl.symbol.s, *n);
    return QB_OK;
}

qb_err_t qb_md_yahoo_ingest_actions(qb_md_source_t *src, qb_store_t *store, const char *symbol,
                                    qb_time_t from, qb_time_t to, const char *asset_class,
                                    size_t *splits, size_t *dividends, char *errstr,
                                    size_t errstr_size) {
    if (splits) *splits = 0;
    if (dividends) *dividends = 0;
    if (!store)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "yahoo actions: store is required");
    qb_md_yahoo_action_t *acts = NULL;
    size_t n = 0;
    char cls[16];
    qb_err_t err = qb_md_yahoo_fetch_actions(src, symbol, from, to, &acts, &n, cls, errstr,
                                             errstr_size);
    if (err) return err;
    int32_t asset_id = 0;
    size_t ns = 0, nd = 0;
    if (n == 0) goto done;
    err = qb_md_asset_get_or_create(store, symbol, asset_class ? asset_class : cls, &asset_id,
                                    errstr, errstr_size);
    if (err) goto done;
    if ((err = qb_store_begin(store, errstr, errstr_size))) goto done;
    for (size_t i = 0; i < n && !err; i++) {
        err = qb_md_store_put_corporate_action(store, asset_id, acts[i].ex_date, acts[i].kind,
                                               acts[i].value, "yahoo", errstr, errstr_size);
        if (acts[i].kind == QB_MD_ACTION_SPLIT) ns++;
        else nd++;
    }
    if (!err) err = qb_store_commit(store, errstr, errstr_size);
    if (err) {
        qb_store_rollback(store, NULL, 0);
        ns = nd = 0;
    }
done:
    free(acts);
    if (!err) {
        if (splits) *splits = ns;
        if (dividends) *dividends = nd;
        QB_INFO("yahoo: %s: %zu splits, %zu dividends stored", symbol, ns, nd);
    }
    return err;
}
