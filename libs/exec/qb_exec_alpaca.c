/* qb_exec_alpaca.c — the Alpaca trading API v2 adapter (qb_exec_broker.h):
 * orders, positions and account over HTTPS with libcurl.
 *
 * Why its own transport instead of libs/http: qb_http is a GET client for
 * market-data vendors; trading needs POST, PATCH and DELETE with bodies,
 * and a retry rule specific to orders (a POST is retried with the same
 * client_order_id, and Alpaca's 422 "client_order_id must be unique" after
 * a retry means the first attempt got through). The back-off, Retry-After
 * and token-bucket arithmetic are qb_http's (its pure helpers), so both
 * clients behave alike. Keys travel only in headers and every text that
 * could echo them is redacted.
 *
 * Owns: one curl easy handle, the keys (wiped on destroy), the bucket. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "exec/qb_exec_broker.h"
#include "http/qb_http.h"

typedef struct ax_s {
    char name[32];
    char *base, *key, *secret;
    qb_exec_alpaca_config_t o;
    CURL *curl;
    struct curl_slist *hdrs;
    qb_http_bucket_t bucket;
    uint64_t rng;
    qb_counter_t *m_retries;
} ax_t;

typedef struct ax_resp_s {
    long status;
    char *body;
    size_t len, cap;
    int64_t retry_after_ms;
    int attempts;
    int oom;
} ax_resp_t;

static pthread_once_t ax_once = PTHREAD_ONCE_INIT;
static void ax_global(void) { (void)curl_global_init(CURL_GLOBAL_ALL); }

static void ax_resp_free(ax_resp_t *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

static size_t ax_write(char *p, size_t sz, size_t nm, void *ud) {
    ax_resp_t *r = ud;
    size_t n = sz * nm;
    if (r->len + n + 1 > r->cap) {
        size_t nc = r->cap ? r->cap : 4096;
        while (nc < r->len + n + 1) nc *= 2;
        if (nc > (size_t)16 << 20) return 0; /* 16 MiB is plenty for an order list */
        char *nb = realloc(r->body, nc);
        if (!nb) {
            r->oom = 1;
            return 0;
        }
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t ax_header(char *p, size_t sz, size_t nm, void *ud) {
    ax_resp_t *r = ud;
    size_t n = sz * nm;
    if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[128];
        size_t l = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
        memcpy(v, p + 12, l);
        v[l] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        size_t e = strlen(s);
        while (e && (s[e - 1] == '\r' || s[e - 1] == '\n' || s[e - 1] == ' ')) s[--e] = '\0';
        int64_t ms;
        if (qb_http_parse_retry_after(s, (int64_t)time(NULL), &ms)) r->retry_after_ms = ms;
    }
    return n;
}

/* Mask every occurrence of a key in buf. */
static void ax_redact(const ax_t *a, char *buf) {
    const char *sec[2] = {a->key, a->secret};
    for (int k = 0; k < 2; k++) {
        const char *s = sec[k];
        size_t l = s ? strlen(s) : 0;
        if (l < 4) continue;
        char *p;
        while ((p = strstr(buf, s)) != NULL) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + l, strlen(p + l) + 1);
        }
    }
}

static uint64_t ax_rand(ax_t *a) {
    uint64_t z = (a->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int ax_sleep(const ax_t *a, int64_t ns) {
    while (ns > 0) {
        if (a->o.running && !*a->o.running) return -1;
        int64_t s = ns < 100 * QB_NS_PER_MS ? ns : 100 * QB_NS_PER_MS;
        struct timespec ts = {(time_t)(s / QB_NS_PER_SEC), (long)(s % QB_NS_PER_SEC)};
        while (nanosleep(&ts, &ts) != 0) {}
        ns -= s;
    }
    return 0;
}

static void ax_count(const ax_t *a, const char *code) {
    char lab[128];
    snprintf(lab, sizeof lab, "broker=\"%s\",code=\"%s\"", a->name, code);
    qb_counter_inc(qb_metrics_counter("qb_exec_broker_requests_total",
                                      "Broker HTTP requests by broker and status", lab));
}

/* The broker's message from a body: "message" of a JSON object, else a snippet. */
static void ax_msg(const ax_t *a, const ax_resp_t *r, char *out, size_t cap) {
    out[0] = '\0';
    if (!r->body || !r->len) return;
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (cJSON_IsString(m)) snprintf(out, cap, "%s", m->valuestring);
    else snprintf(out, cap, "%.160s", r->body);
    cJSON_Delete(j);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    ax_redact(a, out);
}

/* One request with retries on network errors, 408, 429 and 5xx. QB_OK with
 * the final response (any other status); UNAVAILABLE / TIMEOUT after the
 * last attempt; NOMEM. */
static qb_err_t ax_do(ax_t *a, const char *method, const char *path, const char *body,
                      ax_resp_t *r, char *errstr, size_t errstr_size) {
    char url[1024], last[256] = "";
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "%s%s", a->base, path);
    qb_err_t last_err = QB_ERR_UNAVAILABLE;
    for (int att = 1; att <= a->o.max_attempts; att++) {
        int64_t w = qb_http_bucket_take(&a->bucket, qb_time_mono_ns());
        if (w > 0 && ax_sleep(a, w))
            return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "%s: %s %s: cancelled",
                              a->name, method, path);
        ax_resp_free(r);
        r->retry_after_ms = -1;
        CURL *c = a->curl;
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        } else if (strcmp(method, "GET") == 0) {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->hdrs);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "quantbus/1");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->o.timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ax_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ax_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        CURLcode rc = curl_easy_perform(c);
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        r->attempts = att;
        if (r->oom) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        int retry;
        if (rc != CURLE_OK) {
            snprintf(last, sizeof last, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
            last_err = rc == CURLE_OPERATION_TIMEDOUT ? QB_ERR_TIMEOUT : QB_ERR_UNAVAILABLE;
            ax_count(a, rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "error");
            retry = rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL;
            if (!retry)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: %s %s: %s", a->name,
                                  method, path, last);
        } else {
            char code[16];
            snprintf(code, sizeof code, "%ld", st);
            ax_count(a, code);
            r->status = st;
            if (!r->body) {
                r->body = strdup("");
                if (!r->body) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            }
            if (!(st == 408 || st == 429 || st >= 500)) return QB_OK;
            char m[200];
            ax_msg(a, r, m, sizeof m);
            snprintf(last, sizeof last, "HTTP %ld%s%s", st, m[0] ? ": " : "", m);
            last_err = QB_ERR_UNAVAILABLE;
        }
        if (att == a->o.max_attempts) break;
        int64_t d = qb_http_retry_delay_ms(att, r->retry_after_ms, a->o.retry_after_max_ms,
                                           a->o.backoff_base_ms, a->o.backoff_max_ms, ax_rand(a));
        qb_counter_inc(a->m_retries);
        ax_redact(a, last);
        QB_WARN("%s: %s %s: %s; retry %d/%d in %lld ms%s", a->name, method, path, last, att,
                a->o.max_attempts - 1, (long long)d, r->retry_after_ms >= 0 ? " (Retry-After)" : "");
        if (ax_sleep(a, d * QB_NS_PER_MS)) break;
    }
    int atts = r->attempts;
    ax_resp_free(r);
    ax_redact(a, last);
    return qb_err_set(errstr, errstr_size, last_err, "%s: %s %s: %s (gave up after %d attempts)",
                      a->name, method, path, last, atts);
}

/* ---- JSON ------------------------------------------------------------------------- */

static qb_dec_t ax_dec(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    qb_dec_t d = 0;
    if (cJSON_IsString(v) && v->valuestring[0])
        (void)qb_dec_parse(v->valuestring, strlen(v->valuestring), &d);
    else if (cJSON_IsNumber(v)) {
        char t[64];
        snprintf(t, sizeof t, "%.10g", v->valuedouble);
        (void)qb_dec_parse(t, strlen(t), &d);
    }
    return d;
}

static const char *ax_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static qb_err_t ax_order_from(const cJSON *j, qb_exec_border_t *out, char *errstr,
                              size_t errstr_size) {
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(j))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "alpaca: order is not an object");
    snprintf(out->client_order_id, sizeof out->client_order_id, "%s", ax_str(j, "client_order_id"));
    snprintf(out->broker_order_id, sizeof out->broker_order_id, "%s", ax_str(j, "id"));
    (void)qb_symbol_set(&out->symbol, ax_str(j, "symbol"), NULL, 0);
    const char *side = ax_str(j, "side");
    out->side = strcmp(side, "sell") == 0 ? QB_SIDE_SELL : QB_SIDE_BUY;
    const char *ty = ax_str(j, "type");
    if (!*ty) ty = ax_str(j, "order_type");
    out->type = strcmp(ty, "limit") == 0        ? QB_ORDER_TYPE_LIMIT
                : strcmp(ty, "stop") == 0       ? QB_ORDER_TYPE_STOP
                : strcmp(ty, "stop_limit") == 0 ? QB_ORDER_TYPE_STOP_LIMIT
                                                : QB_ORDER_TYPE_MARKET;
    const char *tif = ax_str(j, "time_in_force");
    out->tif = strcmp(tif, "gtc") == 0   ? QB_TIF_GTC
               : strcmp(tif, "ioc") == 0 ? QB_TIF_IOC
               : strcmp(tif, "fok") == 0 ? QB_TIF_FOK
                                         : QB_TIF_DAY;
    out->qty = ax_dec(j, "qty");
    out->filled_qty = ax_dec(j, "filled_qty");
    out->filled_avg_price = ax_dec(j, "filled_avg_price");
    out->limit_price = ax_dec(j, "limit_price");
    out->stop_price = ax_dec(j, "stop_price");
    const char *ua = ax_str(j, "updated_at");
    if (*ua) (void)qb_time_parse(ua, strlen(ua), &out->updated_ts);
    const char *st = ax_str(j, "status");
    snprintf(out->raw_status, sizeof out->raw_status, "%s", st);
    if (strcmp(st, "filled") == 0) out->status = QB_ORDER_STATUS_FILLED;
    else if (strcmp(st, "canceled") == 0) out->status = QB_ORDER_STATUS_CANCELED;
    else if (strcmp(st, "expired") == 0) out->status = QB_ORDER_STATUS_EXPIRED;
    else if (strcmp(st, "rejected") == 0) out->status = QB_ORDER_STATUS_REJECTED;
    else if (strcmp(st, "replaced") == 0) {
        out->status = QB_ORDER_STATUS_CANCELED;
        out->replaced = 1;
    } else out->status = out->filled_qty > 0 ? QB_ORDER_STATUS_PARTIALLY_FILLED
                                             : QB_ORDER_STATUS_ACCEPTED;
    if (!out->client_order_id[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "alpaca: order without client_order_id");
    return QB_OK;
}

qb_err_t qb_exec_alpaca_parse_order(const char *json, qb_exec_border_t *out, char *errstr,
                                    size_t errstr_size) {
    cJSON *j = cJSON_Parse(json);
    qb_err_t e = ax_order_from(j, out, errstr, errstr_size);
    cJSON_Delete(j);
    return e;
}

static qb_err_t ax_parse_resp(const ax_t *a, const ax_resp_t *r, qb_exec_border_t *out,
                              char *errstr, size_t errstr_size) {
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    qb_err_t e = ax_order_from(j, out, errstr, errstr_size);
    cJSON_Delete(j);
    if (e) QB_WARN("%s: unexpected order body: %s", a->name, errstr);
    return e;
}

/* A non-2xx final status -> error. */
static qb_err_t ax_status_err(const ax_t *a, const char *what, const ax_resp_t *r, char *errstr,
                              size_t errstr_size) {
    char m[200];
    ax_msg(a, r, m, sizeof m);
    /* 403 is Alpaca's "insufficient buying power": a rejection, not a key
     * problem; 401 is the keys. */
    qb_err_t e = r->status == 404   ? QB_ERR_NOT_FOUND
                 : r->status == 401 ? QB_ERR_CONFIG
                                    : QB_ERR_INVALID;
    return qb_err_set(errstr, errstr_size, e, "%s: %s: HTTP %ld%s%s", a->name, what, r->status,
                      m[0] ? ": " : "", m);
}

static size_t ax_fmt_dec(qb_dec_t v, char *b, size_t cap) { return qb_dec_format(v, b, cap); }

static qb_err_t ax_status(void *impl, const char *id, qb_exec_border_t *out, char *errstr,
                          size_t errstr_size) {
    ax_t *a = impl;
    char path[256];
    snprintf(path, sizeof path, "/v2/orders:by_client_order_id?client_order_id=%.64s", id);
    ax_resp_t r;
    qb_err_t e = ax_do(a, "GET", path, NULL, &r, errstr, errstr_size);
    if (!e) {
        if (r.status >= 200 && r.status < 300) e = ax_parse_resp(a, &r, out, errstr, errstr_size);
        else e = ax_status_err(a, "order status", &r, errstr, errstr_size);
    }
    ax_resp_free(&r);
    return e;
}

static const char *ax_type(qb_order_type_t t) {
    switch (t) {
    case QB_ORDER_TYPE_LIMIT: return "limit";
    case QB_ORDER_TYPE_STOP: return "stop";
    case QB_ORDER_TYPE_STOP_LIMIT: return "stop_limit";
    default: return "market";
    }
}
static const char *ax_tif(qb_tif_t t) {
    switch (t) {
    case QB_TIF_GTC: return "gtc";
    case QB_TIF_IOC: return "ioc";
    case QB_TIF_FOK: return "fok";
    default: return "day";
    }
}

static void ax_prices(const qb_exec_order_t *o, char *buf, size_t cap) {
    char lp[40], sp[40];
    size_t k = 0;
    buf[0] = '\0';
    if (o->o.limit_price > 0) {
        ax_fmt_dec(o->o.limit_price, lp, sizeof lp);
        k += (size_t)snprintf(buf + k, cap - k, ",\"limit_price\":\"%s\"", lp);
    }
    if (o->o.stop_price > 0 && k < cap) {
        ax_fmt_dec(o->o.stop_price, sp, sizeof sp);
        snprintf(buf + k, cap - k, ",\"stop_price\":\"%s\"", sp);
    }
}

static qb_err_t ax_submit(void *impl, const qb_exec_order_t *o, qb_exec_border_t *out,
                          char *errstr, size_t errstr_size) {
    ax_t *a = impl;
    char body[768], qty[40], px[128];
    ax_fmt_dec(o->o.qty, qty, sizeof qty);
    ax_prices(o, px, sizeof px);
    snprintf(body, sizeof body,
             "{\"symbol\":\"%s\",\"qty\":\"%s\",\"side\":\"%s\",\"type\":\"%s\","
             "\"time_in_force\":\"%s\"%s,\"client_order_id\":\"%s\"}",
             o->o.symbol.s, qty, o->o.side == QB_SIDE_SELL ? "sell" : "buy", ax_type(o->o.type),
             ax_tif(o->o.tif), px, o->o.id);
    ax_resp_t r;
    qb_err_t e = ax_do(a, "POST", "/v2/orders", body, &r, errstr, errstr_size);
    if (e) return e; /* outcome unknown: the order stays SUBMITTED */
    if (r.status >= 200 && r.status < 300) {
        e = ax_parse_resp(a, &r, out, errstr, errstr_size);
        ax_resp_free(&r);
        return e ? QB_ERR_UNAVAILABLE : QB_OK; /* accepted but unreadable: ask again later */
    }
    char m[200];
    ax_msg(a, &r, m, sizeof m);
    if (r.status == 422 && strstr(m, "client_order_id") && strstr(m, "unique")) {
        /* Our earlier attempt (or a run before a crash) placed it: the
         * broker's order IS this order. */
        ax_resp_free(&r);
        QB_INFO("%s: order %s already at the broker (client_order_id): adopting it", a->name,
                o->o.id);
        return ax_status(a, o->o.id, out, errstr, errstr_size);
    }
    e = ax_status_err(a, "submit", &r, errstr, errstr_size);
    ax_resp_free(&r);
    return e == QB_ERR_NOT_FOUND || e == QB_ERR_CONFIG ? e : QB_ERR_INVALID;
}

/* The broker's id of our order: known, or looked up. */
static qb_err_t ax_broker_id(ax_t *a, const qb_exec_order_t *o, char *id, size_t cap,
                             char *errstr, size_t errstr_size) {
    if (o->broker_order_id[0]) {
        snprintf(id, cap, "%s", o->broker_order_id);
        return QB_OK;
    }
    qb_exec_border_t b;
    qb_err_t e = ax_status(a, o->o.id, &b, errstr, errstr_size);
    if (!e) snprintf(id, cap, "%s", b.broker_order_id);
    return e;
}

static qb_err_t ax_cancel(void *impl, const qb_exec_order_t *o, char *errstr,
                          size_t errstr_size) {
    ax_t *a = impl;
    char id[QB_EXEC_ID_MAX + 1], path[160];
    qb_err_t e = ax_broker_id(a, o, id, sizeof id, errstr, errstr_size);
    if (e) return e;
    snprintf(path, sizeof path, "/v2/orders/%s", id);
    ax_resp_t r;
    e = ax_do(a, "DELETE", path, NULL, &r, errstr, errstr_size);
    if (e) return e;
    if (r.status >= 200 && r.status < 300) e = QB_OK;
    else if (r.status == 422) e = qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                             "%s: order %s is no longer cancelable", a->name,
                                             o->o.id);
    else e = ax_status_err(a, "cancel", &r, errstr, errstr_size);
    ax_resp_free(&r);
    return e;
}

static qb_err_t ax_replace(void *impl, const qb_exec_order_t *old, const qb_exec_order_t *nw,
                           qb_exec_border_t *out, char *errstr, size_t errstr_size) {
    ax_t *a = impl;
    char id[QB_EXEC_ID_MAX + 1], path[160], body[512], qty[40], px[128];
    qb_err_t e = ax_broker_id(a, old, id, sizeof id, errstr, errstr_size);
    if (e) return e;
    snprintf(path, sizeof path, "/v2/orders/%s", id);
    ax_fmt_dec(nw->o.qty, qty, sizeof qty);
    ax_prices(nw, px, sizeof px);
    snprintf(body, sizeof body,
             "{\"qty\":\"%s\",\"time_in_force\":\"%s\"%s,\"client_order_id\":\"%s\"}", qty,
             ax_tif(nw->o.tif), px, nw->o.id);
    ax_resp_t r;
    e = ax_do(a, "PATCH", path, body, &r, errstr, errstr_size);
    if (e) return e;
    if (r.status >= 200 && r.status < 300) e = ax_parse_resp(a, &r, out, errstr, errstr_size);
    else {
        char m[200];
        ax_msg(a, &r, m, sizeof m);
        if (r.status == 422 && strstr(m, "client_order_id") && strstr(m, "unique")) {
            ax_resp_free(&r);
            return ax_status(a, nw->o.id, out, errstr, errstr_size);
        }
        e = ax_status_err(a, "replace", &r, errstr, errstr_size);
        if (e == QB_ERR_INVALID) e = QB_ERR_STATE;
    }
    ax_resp_free(&r);
    return e;
}

static qb_err_t ax_open(void *impl, qb_exec_border_t **out, size_t *n, char *errstr,
                        size_t errstr_size) {
    ax_t *a = impl;
    *out = NULL;
    *n = 0;
    ax_resp_t r;
    qb_err_t e = ax_do(a, "GET", "/v2/orders?status=open&limit=500&direction=asc", NULL, &r,
                       errstr, errstr_size);
    if (e) return e;
    if (r.status < 200 || r.status >= 300) {
        e = ax_status_err(a, "open orders", &r, errstr, errstr_size);
        ax_resp_free(&r);
        return e;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    ax_resp_free(&r);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "%s: open orders: not a JSON array", a->name);
    }
    int cnt = cJSON_GetArraySize(j);
    if (cnt > 0) {
        *out = calloc((size_t)cnt, sizeof **out);
        if (!*out) {
            cJSON_Delete(j);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            if (ax_order_from(it, &(*out)[*n], errstr, errstr_size) == QB_OK) (*n)++;
        }
    }
    cJSON_Delete(j);
    return QB_OK;
}

static qb_err_t ax_positions(void *impl, const char *account, qb_exec_bposition_t **out,
                             size_t *n, char *errstr, size_t errstr_size) {
    ax_t *a = impl;
    (void)account;
    *out = NULL;
    *n = 0;
    ax_resp_t r;
    qb_err_t e = ax_do(a, "GET", "/v2/positions", NULL, &r, errstr, errstr_size);
    if (e) return e;
    if (r.status < 200 || r.status >= 300) {
        e = ax_status_err(a, "positions", &r, errstr, errstr_size);
        ax_resp_free(&r);
        return e;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    ax_resp_free(&r);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "%s: positions: not a JSON array", a->name);
    }
    int cnt = cJSON_GetArraySize(j);
    if (cnt > 0) {
        *out = calloc((size_t)cnt, sizeof **out);
        if (!*out) {
            cJSON_Delete(j);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            qb_exec_bposition_t *p = &(*out)[*n];
            if (qb_symbol_set(&p->symbol, ax_str(it, "symbol"), NULL, 0) != QB_OK) continue;
            p->qty = ax_dec(it, "qty");
            if (strcmp(ax_str(it, "side"), "short") == 0 && p->qty > 0) p->qty = -p->qty;
            p->avg_price = ax_dec(it, "avg_entry_price");
            (*n)++;
        }
    }
    cJSON_Delete(j);
    return QB_OK;
}

static qb_err_t ax_account(void *impl, const char *account, qb_exec_baccount_t *out,
                           char *errstr, size_t errstr_size) {
    ax_t *a = impl;
    (void)account;
    ax_resp_t r;
    qb_err_t e = ax_do(a, "GET", "/v2/account", NULL, &r, errstr, errstr_size);
    if (e) return e;
    if (r.status < 200 || r.status >= 300) {
        e = ax_status_err(a, "account", &r, errstr, errstr_size);
        ax_resp_free(&r);
        return e;
    }
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    ax_resp_free(&r);
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "%s: account: not an object",
                          a->name);
    }
    out->cash = ax_dec(j, "cash");
    out->equity = ax_dec(j, "equity");
    out->buying_power = ax_dec(j, "buying_power");
    cJSON_Delete(j);
    return QB_OK;
}

static void ax_wipe(char *s) {
    if (!s) return;
    volatile char *v = s;
    while (*v) *v++ = '\0';
    free(s);
}

static void ax_destroy(void *impl) {
    ax_t *a = impl;
    if (!a) return;
    if (a->curl) curl_easy_cleanup(a->curl);
    if (a->hdrs) {
        for (struct curl_slist *s = a->hdrs; s; s = s->next) {
            volatile char *v = s->data;
            while (*v) *v++ = '\0';
        }
        curl_slist_free_all(a->hdrs);
    }
    free(a->base);
    ax_wipe(a->key);
    ax_wipe(a->secret);
    free(a);
}

static const qb_exec_broker_ops_t ax_ops = {
    .name = "alpaca", .submit = ax_submit, .cancel = ax_cancel, .replace = ax_replace,
    .order_status = ax_status, .open_orders = ax_open, .positions = ax_positions,
    .account = ax_account, .destroy = ax_destroy};

qb_err_t qb_exec_alpaca_new(const qb_exec_alpaca_config_t *cfg, qb_exec_broker_t **out,
                            char *errstr, size_t errstr_size) {
    *out = NULL;
    if (!cfg->base_url || !*cfg->base_url)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "alpaca: base URL is required");
    if (!cfg->key_id || !*cfg->key_id || !cfg->secret_key || !*cfg->secret_key)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "alpaca: key id and secret key are required");
    for (const char *p = cfg->key_id; *p; p++)
        if (*p == '\r' || *p == '\n')
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "alpaca: bad key id");
    for (const char *p = cfg->secret_key; *p; p++)
        if (*p == '\r' || *p == '\n')
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "alpaca: bad secret key");
    pthread_once(&ax_once, ax_global);
    ax_t *a = calloc(1, sizeof *a);
    if (!a) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    a->o = *cfg;
    snprintf(a->name, sizeof a->name, "%s", cfg->name && *cfg->name ? cfg->name : "alpaca");
    if (!a->o.timeout_ms) a->o.timeout_ms = 10000;
    if (!a->o.max_attempts) a->o.max_attempts = 5;
    if (!a->o.backoff_base_ms) a->o.backoff_base_ms = 200;
    if (!a->o.backoff_max_ms) a->o.backoff_max_ms = 5000;
    if (!a->o.retry_after_max_ms) a->o.retry_after_max_ms = 30000;
    if (a->o.rate_per_sec == 0) a->o.rate_per_sec = 3;
    a->base = strdup(cfg->base_url);
    a->key = strdup(cfg->key_id);
    a->secret = strdup(cfg->secret_key);
    a->curl = curl_easy_init();
    size_t bl = a->base ? strlen(a->base) : 0;
    if (bl && a->base[bl - 1] == '/') a->base[bl - 1] = '\0';
    char h1[400], h2[400];
    snprintf(h1, sizeof h1, "APCA-API-KEY-ID: %s", cfg->key_id);
    snprintf(h2, sizeof h2, "APCA-API-SECRET-KEY: %s", cfg->secret_key);
    struct curl_slist *s = NULL, *t;
    if ((t = curl_slist_append(s, h1))) s = t;
    if ((t = curl_slist_append(s, h2))) s = t;
    if ((t = curl_slist_append(s, "Content-Type: application/json"))) s = t;
    if ((t = curl_slist_append(s, "Accept: application/json"))) s = t;
    a->hdrs = s;
    memset(h1, 0, sizeof h1);
    memset(h2, 0, sizeof h2);
    if (!a->base || !a->key || !a->secret || !a->curl || !a->hdrs) {
        ax_destroy(a);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    qb_http_bucket_init(&a->bucket, a->o.rate_per_sec > 0 ? a->o.rate_per_sec : 0,
                        a->o.rate_per_sec > 1 ? a->o.rate_per_sec : 1, qb_time_mono_ns());
    a->rng = (uint64_t)qb_time_mono_ns() ^ (uint64_t)(uintptr_t)a;
    char lab[96];
    snprintf(lab, sizeof lab, "broker=\"%s\"", a->name);
    a->m_retries = qb_metrics_counter("qb_exec_broker_retries_total", "Broker HTTP retries", lab);
    *out = qb_exec_broker_wrap(&ax_ops, a);
    if (!*out) {
        ax_destroy(a);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    return QB_OK;
}
