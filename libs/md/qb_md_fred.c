/* qb_md_fred.c — FRED series observations; see qb_md_fred.h.
 *
 * The handle owns a qb_http_t holding the key as a SECRET query param
 * (api_key: redacted from every log line and error, wiped on destroy) and
 * the rate limit. qb_md_fred_fetch_observations() walks offset pages;
 * qb_fred_page() turns one body into observations and rejects (or an
 * error) before the callback sees any of it. Values are FRED's text parsed
 * by qb_dec_parse_round: exact, no double in between. qb_md_fred_ingest()
 * collects the whole series and stores it in one transaction. */
#include "md/qb_md_fred.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "md/qb_md_vendor.h"

#define QB_FRED_SERIES_MAX 64

struct qb_md_fred_s {
    qb_http_t *http;
    int page_limit;
};

typedef struct qb_fred_cfg_s {
    const char *api_key;
    double rate_per_min;
} qb_fred_cfg_t;

static const qb_cfg_entry_t qb_fred_cfg_table[] = {
    {"fred.api_key", "QB_FRED_API_KEY", QB_CFG_STRING, NULL, 1, 256,
     offsetof(qb_fred_cfg_t, api_key), QB_CFG_SECRET | QB_CFG_REQUIRED,
     "FRED API key (query parameter api_key)"},
    {"fred.rate_per_min", "QB_FRED_RATE_PER_MIN", QB_CFG_DOUBLE, "120", 0.01, 1e6,
     offsetof(qb_fred_cfg_t, rate_per_min), 0,
     "FRED requests per minute (120 documented; token bucket, evenly spaced)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL}};

qb_md_fred_t *qb_md_fred_new(const char *base_url, const qb_md_fred_opts_t *opts, char *errstr,
                             size_t errstr_size) {
    qb_fred_cfg_t cfg;
    if (qb_md_vendor_config_load("FRED", qb_fred_cfg_table, &cfg, sizeof(cfg), errstr,
                                 errstr_size) != QB_OK)
        return NULL;
    qb_md_fred_opts_t o;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof(o));
    if (o.page_limit < 0 || o.page_limit > QB_MD_FRED_MAX_LIMIT || o.rate_per_min < 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "fred: page_limit must be within 0..%d and the rate >= 0",
                   QB_MD_FRED_MAX_LIMIT);
        return NULL;
    }
    qb_md_fred_t *f = calloc(1, sizeof(*f));
    if (!f) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    f->page_limit = o.page_limit ? o.page_limit : QB_MD_FRED_MAX_LIMIT;
    const qb_md_vendor_cred_t creds[] = {{1, "api_key", cfg.api_key}};
    f->http = qb_md_vendor_http_new(&o.http, "fred", base_url, QB_MD_FRED_DEFAULT_URL,
                                    (o.rate_per_min > 0 ? o.rate_per_min : cfg.rate_per_min) / 60.0,
                                    creds, 1, errstr, errstr_size);
    if (!f->http) {
        qb_md_fred_destroy(f);
        return NULL;
    }
    return f;
}

void qb_md_fred_destroy(qb_md_fred_t *f) {
    if (!f) return;
    qb_http_destroy(f->http);
    free(f);
}

/* ---- one page ------------------------------------------------------------------ */

typedef struct qb_fred_page_s {
    qb_md_observation_t *obs;
    size_t n;
    qb_md_vendor_rejects_t rej;
    size_t nmissing; /* of rej: values "." */
    int items;      /* observations in the body */
    int64_t count;  /* FRED's "count"; -1 when absent */
} qb_fred_page_t;

static void qb_fred_page_free(qb_fred_page_t *p) {
    free(p->obs);
    qb_md_vendor_rejects_free(&p->rej);
    memset(p, 0, sizeof(*p));
}

static qb_err_t qb_fred_page(const char *body, size_t len, int page, qb_time_t from, qb_time_t to,
                             qb_fred_page_t *pg, char *errstr, size_t errstr_size) {
    memset(pg, 0, sizeof(*pg));
    pg->count = -1;
    char pos[48];
    snprintf(pos, sizeof(pos), "fred page %d", page);
    cJSON *root = qb_md_vendor_parse(body, len, pos, errstr, errstr_size);
    if (!root) return QB_ERR_PARSE;
    qb_err_t err = QB_OK;
    if (!cJSON_IsObject(root)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "fred page %d: body is not a JSON object",
                         page);
        goto done;
    }
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(root, "count");
    if (cnt) {
        if (!cJSON_IsNumber(cnt) || !isfinite(cnt->valuedouble) || cnt->valuedouble < 0 ||
            cnt->valuedouble > 9e15) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "fred page %d: 'count' is not a count", page);
            goto done;
        }
        pg->count = (int64_t)cnt->valuedouble;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "observations");
    if (!cJSON_IsArray(arr)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                         "fred page %d: 'observations' is missing or not an array", page);
        goto done;
    }
    pg->items = cJSON_GetArraySize(arr);
    if (pg->items > 0 && !(pg->obs = malloc((size_t)pg->items * sizeof(*pg->obs)))) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto done;
    }
    int item = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        item++;
        if (!cJSON_IsObject(it)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "fred page %d item %d: not an object",
                             page, item);
            break;
        }
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "date");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");
        qb_md_observation_t o;
        if (!cJSON_IsString(d) || strlen(d->valuestring) != 10 ||
            qb_time_parse(d->valuestring, 10, &o.date) != QB_OK) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "fred page %d item %d: 'date' is not a YYYY-MM-DD date", page, item);
            break;
        }
        if (!cJSON_IsString(v)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                             "fred page %d item %d: 'value' is not a string", page, item);
            break;
        }
        const char *txt = v->valuestring;
        int missing = strcmp(txt, ".") == 0;
        qb_err_t rc = missing ? QB_ERR_PARSE
                              : qb_dec_parse_round(txt, strlen(txt), &o.value, QB_ROUND_HALF_EVEN);
        if (rc) {
            char where[48], reason[sizeof(pg->rej.v->reason)];
            snprintf(where, sizeof(where), "fred page %d item %d", page, item);
            if (missing)
                snprintf(reason, sizeof(reason), "%s: no value ('.')", d->valuestring);
            else
                snprintf(reason, sizeof(reason), "%s: value '%.32s' %s", d->valuestring, txt,
                         rc == QB_ERR_OVERFLOW ? "out of range" : "is not a decimal");
            if ((err = qb_md_vendor_reject(&pg->rej, where, reason, errstr, errstr_size))) break;
            pg->nmissing += (size_t)missing;
            continue;
        }
        if ((from && o.date < from) || (to && o.date >= to)) continue;
        pg->obs[pg->n++] = o;
    }
done:
    cJSON_Delete(root);
    if (err) qb_fred_page_free(pg);
    return err;
}

/* ---- fetch ------------------------------------------------------------------------ */

/* A 4xx with FRED's {"error_code","error_message"}: rewrite errstr with
 * FRED's words; "does not exist" is NOT_FOUND. */
static qb_err_t qb_fred_http_error(const qb_md_fred_t *f, qb_err_t err, const char *series,
                                   const qb_http_resp_t *resp, char *errstr, size_t errstr_size) {
    if ((err != QB_ERR_INVALID && err != QB_ERR_NOT_FOUND) || !resp->body) return err;
    cJSON *root = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "error_message");
    if (cJSON_IsString(m)) {
        if (strstr(m->valuestring, "does not exist")) err = QB_ERR_NOT_FOUND;
        qb_err_set(errstr, errstr_size, err, "fred: series %s: %.300s (HTTP %ld)", series,
                   m->valuestring, resp->status);
        if (errstr) qb_http_redact(f->http, errstr, errstr_size); /* a vendor may echo the key */
    }
    cJSON_Delete(root);
    return err;
}

qb_err_t qb_md_fred_fetch_observations(qb_md_fred_t *f, const char *series_id, qb_time_t from,
                                       qb_time_t to, const qb_md_fred_sink_t *sink,
                                       qb_md_fred_stats_t *stats, char *errstr,
                                       size_t errstr_size) {
    qb_md_fred_stats_t st;
    memset(&st, 0, sizeof(st));
    if (stats) *stats = st;
    if (!f || !series_id || !sink || !sink->obs)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "fred: handle, series id and sink are required");
    char series[QB_FRED_SERIES_MAX + 1];
    size_t sl = strlen(series_id);
    if (sl == 0 || sl > QB_FRED_SERIES_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "fred: series id must be 1..%d characters", QB_FRED_SERIES_MAX);
    for (size_t i = 0; i <= sl; i++) {
        unsigned char c = (unsigned char)series_id[i];
        if (c && !isalnum(c) && c != '_')
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "fred: series id '%.64s' has a character other than A-Z 0-9 _",
                              series_id);
        series[i] = (char)toupper(c);
    }
    if (from && to && to <= from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "fred %s: empty range (to <= from)",
                          series);
    /* The first date >= from and the last date < to, as FRED's inclusive
     * bounds. */
    char start[16] = "", last[16] = "";
    if (from) {
        qb_time_t d;
        if (qb_time_floor(from, QB_NS_PER_DAY, &d) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "fred: 'from' out of range");
        if (d < from) d += QB_NS_PER_DAY;
        if (to && d >= to) return QB_OK; /* no date in [from, to) */
        qb_md_vendor_date(d, start, sizeof(start));
    }
    if (to) {
        qb_time_t d;
        if (qb_time_floor(to - 1, QB_NS_PER_DAY, &d) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "fred: 'to' out of range");
        qb_md_vendor_date(d, last, sizeof(last));
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", f->page_limit);

    qb_err_t err = QB_OK;
    int64_t offset = 0;
    int page = 0;
    for (;;) {
        page++;
        char off[24];
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        qb_http_param_t p[8];
        size_t np = 0;
        p[np++] = (qb_http_param_t){"series_id", series};
        p[np++] = (qb_http_param_t){"file_type", "json"};
        if (start[0]) p[np++] = (qb_http_param_t){"observation_start", start};
        if (last[0]) p[np++] = (qb_http_param_t){"observation_end", last};
        p[np++] = (qb_http_param_t){"sort_order", "asc"};
        p[np++] = (qb_http_param_t){"limit", limit};
        p[np++] = (qb_http_param_t){"offset", off};
        qb_http_resp_t resp;
        err = qb_http_get(f->http, "/fred/series/observations", p, np, &resp, errstr, errstr_size);
        if (err) {
            err = qb_fred_http_error(f, err, series, &resp, errstr, errstr_size);
            qb_http_resp_free(&resp);
            break;
        }
        qb_fred_page_t pg;
        err = qb_fred_page(resp.body, resp.body_len, page, from, to, &pg, errstr, errstr_size);
        qb_http_resp_free(&resp);
        if (err) break;
        st.pages++;
        if (pg.count >= 0) st.count = pg.count;
        st.missing += (int64_t)pg.nmissing;
        st.rejected += (int64_t)(pg.rej.n - pg.nmissing);
        qb_md_vendor_rejects_deliver(&pg.rej, sink->reject, sink->opaque);
        QB_DEBUG("fred: %s page %d: %d items, %zu kept", series, page, pg.items, pg.n);
        if (pg.n) err = sink->obs(sink->opaque, pg.obs, pg.n, errstr, errstr_size);
        if (!err) st.delivered += (int64_t)pg.n;
        offset += pg.items;
        int more = pg.items > 0 && (pg.count >= 0 ? offset < pg.count : pg.items >= f->page_limit);
        qb_fred_page_free(&pg);
        if (err || !more) break;
    }
    if (stats) *stats = st;
    if (!err)
        QB_INFO("fred: %s: %lld observations, %lld missing, %lld rejected, %d page%s", series,
                (long long)st.delivered, (long long)st.missing, (long long)st.rejected, page,
                page == 1 ? "" : "s");
    return err;
}

/* ---- ingest ------------------------------------------------------------------------ */

typedef struct qb_fred_collect_s {
    qb_md_observation_t *obs;
    size_t n, cap;
    void (*reject)(void *opaque, const char *where, const char *reason); /* the caller's */
    void *opaque;
} qb_fred_collect_t;

static void qb_fred_collect_reject(void *opaque, const char *where, const char *reason) {
    qb_fred_collect_t *c = opaque;
    if (c->reject) c->reject(c->opaque, where, reason);
}

static qb_err_t qb_fred_collect(void *opaque, const qb_md_observation_t *obs, size_t n,
                                char *errstr, size_t errstr_size) {
    qb_fred_collect_t *c = opaque;
    if (c->n + n > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->n + n) cap *= 2;
        void *no = realloc(c->obs, cap * sizeof(*c->obs));
        if (!no) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        c->obs = no;
        c->cap = cap;
    }
    memcpy(c->obs + c->n, obs, n * sizeof(*obs));
    c->n += n;
    return QB_OK;
}

qb_err_t qb_md_fred_ingest(qb_md_fred_t *f, qb_store_t *store, const char *series_id,
                           qb_time_t from, qb_time_t to,
                           void (*reject)(void *opaque, const char *where, const char *reason),
                           void *opaque, qb_md_fred_stats_t *stats, char *errstr,
                           size_t errstr_size) {
    if (!store) {
        if (stats) memset(stats, 0, sizeof(*stats));
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "fred ingest: store is required");
    }
    qb_fred_collect_t c = {NULL, 0, 0, reject, opaque};
    qb_md_fred_sink_t sink = {qb_fred_collect, qb_fred_collect_reject, &c};
    qb_err_t err = qb_md_fred_fetch_observations(f, series_id, from, to, &sink, stats, errstr,
                                                 errstr_size);
    if (!err && c.n) {
        char series[QB_FRED_SERIES_MAX + 1];
        size_t i = 0;
        for (; series_id[i] && i < QB_FRED_SERIES_MAX; i++)
            series[i] = (char)toupper((unsigned char)series_id[i]);
        series[i] = '\0';
        err = qb_md_store_put_observations(store, series, "fred", c.obs, c.n, errstr, errstr_size);
        if (!err) QB_INFO("fred: %s: %zu observations stored", series, c.n);
    }
    free(c.obs);
    return err;
}
