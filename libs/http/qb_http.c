/* qb_http.c — vendor HTTP client over libcurl; see qb_http.h.
 *
 * Design. A handle owns one curl easy handle (so keep-alive connections are
 * reused between pages), the default header list, the extra query params,
 * the list of secret values to redact, and a token bucket. Each call builds
 * two URLs side by side: the real one and a display one where secret params
 * read "***"; only the display one is ever formatted into a log line or an
 * error message, and every such text also goes through qb_http_redact() as a
 * second line of defence. The retry loop is qb_http_do(); the back-off,
 * Retry-After and bucket arithmetic are pure functions at the bottom, so the
 * unit tests can drive them with fixed clocks and random numbers. */
#include "http/qb_http.h"

#include <ctype.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"

#define QB_HTTP_MAX_SECRETS 16

typedef struct qb_http_xparam_s {
    char *name, *value;
    int secret;
} qb_http_xparam_t;

struct qb_http_s {
    char *source;
    char *base_url; /* without trailing '/' */
    qb_http_opts_t o;
    char *user_agent;
    CURL *curl;
    struct curl_slist *headers;
    qb_http_xparam_t *params;
    size_t nparams;
    char *secrets[QB_HTTP_MAX_SECRETS]; /* copies, for redaction */
    size_t nsecrets;
    qb_http_bucket_t bucket;
    uint64_t rng;
    qb_counter_t *m_retries;
    qb_hist_t *m_seconds;
    char curl_err[CURL_ERROR_SIZE];
};

/* ---- small growable string ----------------------------------------------- */

typedef struct qb_sbuf_s {
    char *p;
    size_t len, cap;
    int oom;
} qb_sbuf_t;

static void qb_sbuf_add(qb_sbuf_t *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void qb_sbuf_str(qb_sbuf_t *b, const char *s) { qb_sbuf_add(b, s, strlen(s)); }

static void qb_sbuf_enc(qb_sbuf_t *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            qb_sbuf_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            qb_sbuf_add(b, e, 3);
        }
    }
}

/* ---- once-only curl init --------------------------------------------------- */

static pthread_once_t qb_http_once = PTHREAD_ONCE_INIT;
static CURLcode qb_http_global_rc = CURLE_OK;

static void qb_http_global_init(void) { qb_http_global_rc = curl_global_init(CURL_GLOBAL_ALL); }

/* ---- secrets --------------------------------------------------------------- */

static void qb_http_wipe_free(char *s) {
    if (!s) return;
    volatile char *v = s;
    while (*v) *v++ = '\0';
    free(s);
}

void qb_http_redact(const qb_http_t *h, char *buf, size_t cap) {
    if (!h || !buf || !cap || !h->nsecrets) return;
    for (size_t i = 0; i < h->nsecrets; i++) {
        const char *sec = h->secrets[i];
        size_t sl = strlen(sec);
        if (!sl) continue;
        char *p, *from = buf;
        while ((p = strstr(from, sec)) != NULL) {
            size_t tail = strlen(p + sl);
            size_t pos = (size_t)(p - buf);
            /* the new text: buf[0..pos) "***" tail, cut at cap-1 */
            if (pos + 3 >= cap) {
                size_t k = cap - 1 - pos;
                memcpy(p, "***", k);
                buf[cap - 1] = '\0';
                break;
            }
            size_t keep = tail;
            if (pos + 3 + keep > cap - 1) keep = cap - 1 - pos - 3;
            memmove(p + 3, p + sl, keep);
            memcpy(p, "***", 3);
            p[3 + keep] = '\0';
            from = p + 3; /* never rescan the mask (a secret like "*") */
        }
    }
}

static qb_err_t qb_http_add_secret(qb_http_t *h, const char *value, char *errstr,
                                   size_t errstr_size) {
    if (h->nsecrets >= QB_HTTP_MAX_SECRETS)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: too many secrets",
                          h->source);
    char *c = strdup(value);
    if (!c) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    h->secrets[h->nsecrets++] = c;
    return QB_OK;
}

/* qb_err_set, then redact the message. */
static qb_err_t qb_http_fail(const qb_http_t *h, char *errstr, size_t errstr_size,
                             qb_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static qb_err_t qb_http_fail(const qb_http_t *h, char *errstr, size_t errstr_size,
                             qb_err_t err, const char *fmt, ...) {
    if (errstr && errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        qb_http_redact(h, errstr, errstr_size);
    }
    return err;
}

/* ---- lifecycle ------------------------------------------------------------- */

qb_http_t *qb_http_new(const qb_http_opts_t *opts, char *errstr, size_t errstr_size) {
    if (!opts || !opts->source || !*opts->source || !opts->base_url || !*opts->base_url) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http: source and base_url are required");
        return NULL;
    }
    for (const char *p = opts->source; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "http: source label '%s' must be [A-Za-z0-9_-]", opts->source);
            return NULL;
        }
    if (strncmp(opts->base_url, "http://", 7) != 0 && strncmp(opts->base_url, "https://", 8) != 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "%s: base URL '%s' must start with http:// or https://", opts->source,
                   opts->base_url);
        return NULL;
    }
    if (opts->rate_per_sec < 0 || opts->max_attempts < 0 || opts->timeout_ms < 0 ||
        opts->connect_timeout_ms < 0 || opts->backoff_base_ms < 0 ||
        opts->backoff_max_ms < 0 || opts->retry_after_max_ms < 0 || opts->rate_burst < 0) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: negative http option",
                   opts->source);
        return NULL;
    }
    pthread_once(&qb_http_once, qb_http_global_init);
    if (qb_http_global_rc != CURLE_OK) {
        qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "curl_global_init: %s",
                   curl_easy_strerror(qb_http_global_rc));
        return NULL;
    }
    qb_http_t *h = calloc(1, sizeof(*h));
    if (!h) goto oom;
    h->o = *opts;
    if (!h->o.connect_timeout_ms) h->o.connect_timeout_ms = 5000;
    if (!h->o.timeout_ms) h->o.timeout_ms = 30000;
    if (!h->o.max_attempts) h->o.max_attempts = 5;
    if (!h->o.backoff_base_ms) h->o.backoff_base_ms = 500;
    if (!h->o.backoff_max_ms) h->o.backoff_max_ms = 30000;
    if (!h->o.retry_after_max_ms) h->o.retry_after_max_ms = 60000;
    if (!h->o.rate_burst) h->o.rate_burst = 1;
    if (!h->o.max_body) h->o.max_body = (size_t)64 << 20;
    h->source = strdup(opts->source);
    h->base_url = strdup(opts->base_url);
    h->user_agent = strdup(opts->user_agent ? opts->user_agent : "quantbus/1");
    if (!h->source || !h->base_url || !h->user_agent) goto oom;
    size_t bl = strlen(h->base_url);
    while (bl > 0 && h->base_url[bl - 1] == '/') h->base_url[--bl] = '\0';
    h->o.source = h->source;
    h->o.base_url = h->base_url;
    h->o.user_agent = h->user_agent;
    h->curl = curl_easy_init();
    if (!h->curl) goto oom;
    qb_http_bucket_init(&h->bucket, h->o.rate_per_sec, h->o.rate_burst, qb_time_mono_ns());
    h->rng = (uint64_t)qb_time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)h;
    char lab[128];
    snprintf(lab, sizeof(lab), "source=\"%s\"", h->source);
    h->m_retries = qb_metrics_counter("qb_http_retries_total",
                                      "Vendor HTTP requests retried (429, 5xx, network)", lab);
    h->m_seconds = qb_metrics_histogram("qb_http_request_seconds",
                                        "Vendor HTTP attempt latency", lab);
    return h;
oom:
    qb_http_destroy(h);
    qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    return NULL;
}

void qb_http_destroy(qb_http_t *h) {
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    /* header lines hold secret values: wipe before freeing */
    for (struct curl_slist *l = h->headers; l; l = l->next) {
        volatile char *v = l->data;
        while (v && *v) *v++ = '\0';
    }
    curl_slist_free_all(h->headers);
    for (size_t i = 0; i < h->nparams; i++) {
        free(h->params[i].name);
        qb_http_wipe_free(h->params[i].value);
    }
    free(h->params);
    for (size_t i = 0; i < h->nsecrets; i++) qb_http_wipe_free(h->secrets[i]);
    free(h->source);
    free(h->base_url);
    free(h->user_agent);
    free(h);
}

const char *qb_http_source(const qb_http_t *h) { return h ? h->source : ""; }
const char *qb_http_base_url(const qb_http_t *h) { return h ? h->base_url : ""; }

qb_err_t qb_http_add_header(qb_http_t *h, const char *name, const char *value,
                            int secret, char *errstr, size_t errstr_size) {
    if (!h || !name || !*name || !value)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http header: name and value required");
    for (const char *p = name; *p; p++)
        if (*p == ':' || *p == '\r' || *p == '\n' || *p == ' ' || (unsigned char)*p < 0x21)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s: bad header name '%s'", h->source, name);
    if (strpbrk(value, "\r\n"))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "%s: header %s: value contains CR/LF", h->source, name);
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    /* "Name;" is curl's way of sending a header with an empty value */
    if (*value) snprintf(line, n, "%s: %s", name, value);
    else snprintf(line, n, "%s;", name);
    struct curl_slist *nl = curl_slist_append(h->headers, line);
    volatile char *v = line;
    while (*v) *v++ = '\0';
    free(line);
    if (!nl) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    h->headers = nl;
    if (secret && *value) return qb_http_add_secret(h, value, errstr, errstr_size);
    return QB_OK;
}

qb_err_t qb_http_add_param(qb_http_t *h, const char *name, const char *value,
                           int secret, char *errstr, size_t errstr_size) {
    if (!h || !name || !*name || !value)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http param: name and value required");
    qb_http_xparam_t *np = realloc(h->params, (h->nparams + 1) * sizeof(*np));
    if (!np) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    h->params = np;
    qb_http_xparam_t *p = &h->params[h->nparams];
    p->name = strdup(name);
    p->value = strdup(value);
    p->secret = secret;
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    h->nparams++;
    if (secret && *value) {
        qb_err_t e = qb_http_add_secret(h, value, errstr, errstr_size);
        /* also mask the encoded form when it differs (e.g. '+' or '/') */
        char enc[512];
        if (!e && qb_http_url_encode(value, enc, sizeof(enc)) < sizeof(enc) && strcmp(enc, value))
            e = qb_http_add_secret(h, enc, errstr, errstr_size);
        return e;
    }
    return QB_OK;
}

/* ---- responses -------------------------------------------------------------- */

void qb_http_resp_free(qb_http_resp_t *r) {
    if (!r) return;
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
    r->body_len = 0;
}

int qb_http_resp_header(const qb_http_resp_t *r, const char *name, char *buf, size_t cap) {
    if (!r || !r->headers || !name) return 0;
    size_t nl = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *ve = line + ll;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            if (cap) {
                size_t k = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
                memcpy(buf, v, k);
                buf[k] = '\0';
            }
            return 1;
        }
        if (!end) break;
        line = end + 1;
    }
    return 0;
}

typedef struct qb_http_rx_s {
    qb_sbuf_t body;
    qb_sbuf_t hdr;
    size_t max;
    int over; /* body went past max */
} qb_http_rx_t;

static size_t qb_http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    qb_http_rx_t *rx = ud;
    size_t n = size * nmemb;
    if (rx->body.len + n > rx->max) { rx->over = 1; return 0; }
    qb_sbuf_add(&rx->body, ptr, n);
    return rx->body.oom ? 0 : n;
}

static size_t qb_http_header_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    qb_http_rx_t *rx = ud;
    size_t n = size * nmemb;
    /* a new status line (after a 100 Continue, say) starts a new block */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) rx->hdr.len = 0;
    if (rx->hdr.len + n < 65536) qb_sbuf_add(&rx->hdr, ptr, n);
    return n;
}

/* The vendor's own words: "message"/"error"/"msg" of a JSON body (or
 * error.message), else the body's first printable characters. */
static void qb_http_vendor_msg(const char *body, size_t len, char *out, size_t cap) {
    out[0] = '\0';
    if (!body || !len) return;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j) {
        static const char *keys[] = {"message", "error", "msg", "detail"};
        const char *found = NULL;
        for (size_t i = 0; i < 4 && !found; i++) {
            cJSON *it = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
            if (cJSON_IsString(it)) found = it->valuestring;
            else if (cJSON_IsObject(it)) {
                cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "message");
                if (cJSON_IsString(m)) found = m->valuestring;
            }
        }
        if (found) {
            snprintf(out, cap, "%s", found);
            cJSON_Delete(j);
            for (char *p = out; *p; p++)
                if ((unsigned char)*p < 0x20) *p = ' ';
            return;
        }
        cJSON_Delete(j);
    }
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap && i < 160; i++) {
        unsigned char c = (unsigned char)body[i];
        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    if (len > 160 && k + 4 < cap) { memcpy(out + k, "...", 3); k += 3; }
    out[k] = '\0';
}

/* ---- the request loop ------------------------------------------------------ */

static uint64_t qb_http_rand(qb_http_t *h) {
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Sleep ns, in slices that watch the cancel flag. 0, or -1 when cancelled. */
static int qb_http_sleep(const qb_http_t *h, int64_t ns) {
    while (ns > 0) {
        if (h->o.cancel && *h->o.cancel) return -1;
        int64_t slice = ns < 100 * QB_NS_PER_MS ? ns : 100 * QB_NS_PER_MS;
        struct timespec ts = {(time_t)(slice / QB_NS_PER_SEC), (long)(slice % QB_NS_PER_SEC)};
        while (nanosleep(&ts, &ts) != 0) {}
        ns -= slice;
    }
    return (h->o.cancel && *h->o.cancel) ? -1 : 0;
}

static void qb_http_count(const qb_http_t *h, const char *code) {
    char lab[160];
    snprintf(lab, sizeof(lab), "source=\"%s\",code=\"%s\"", h->source, code);
    qb_counter_inc(qb_metrics_counter("qb_http_requests_total",
                                      "Vendor HTTP requests by source and status", lab));
}

/* What one attempt came to. */
typedef enum { QB_ATT_OK, QB_ATT_RETRY, QB_ATT_FATAL } qb_att_t;

static qb_err_t qb_http_do(qb_http_t *h, const char *url, const char *shown,
                           qb_http_resp_t *resp, char *errstr, size_t errstr_size) {
    memset(resp, 0, sizeof(*resp));
    resp->retry_after_ms = -1;
    char last[384] = "";   /* the last failure, for the final message */
    qb_err_t last_err = QB_ERR_UNAVAILABLE;
    for (int attempt = 1; attempt <= h->o.max_attempts; attempt++) {
        int64_t wait = qb_http_bucket_take(&h->bucket, qb_time_mono_ns());
        if (wait > 0) {
            QB_DEBUG("%s: rate limit: waiting %lld ms", h->source, (long long)(wait / QB_NS_PER_MS));
            if (qb_http_sleep(h, wait))
                return qb_http_fail(h, errstr, errstr_size, QB_ERR_UNAVAILABLE,
                                    "%s: GET %s: cancelled", h->source, shown);
        }
        qb_http_resp_free(resp);
        qb_http_rx_t rx;
        memset(&rx, 0, sizeof(rx));
        rx.max = h->o.max_body;
        CURL *c = h->curl;
        curl_easy_reset(c);
        h->curl_err[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
        curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* keys stay on base_url */
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->o.max_body);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, qb_http_write_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &rx);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, qb_http_header_cb);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &rx);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);

        int64_t t0 = qb_time_mono_ns();
        CURLcode rc = curl_easy_perform(c);
        double secs = (double)(qb_time_mono_ns() - t0) / 1e9;
        qb_hist_observe(h->m_seconds, secs);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        resp->attempts = attempt;
        resp->status = (rc == CURLE_OK) ? status : 0;
        resp->headers = rx.hdr.p;
        rx.hdr.p = NULL;
        if (rx.body.oom || rx.hdr.oom) {
            free(rx.body.p);
            return qb_http_fail(h, errstr, errstr_size, QB_ERR_NOMEM, "%s: out of memory", h->source);
        }
        resp->body = rx.body.p ? rx.body.p : strdup("");
        resp->body_len = rx.body.len;
        if (!resp->body)
            return qb_http_fail(h, errstr, errstr_size, QB_ERR_NOMEM, "%s: out of memory", h->source);
        char ra[128];
        resp->retry_after_ms = -1;
        if (rc == CURLE_OK && qb_http_resp_header(resp, "Retry-After", ra, sizeof(ra))) {
            int64_t ms;
            if (qb_http_parse_retry_after(ra, (int64_t)time(NULL), &ms)) resp->retry_after_ms = ms;
        }

        qb_att_t what;
        qb_err_t err = QB_OK;
        if (rc != CURLE_OK) {
            const char *reason = h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc);
            if (rx.over || rc == CURLE_FILESIZE_EXCEEDED) {
                qb_http_count(h, "error");
                qb_http_resp_free(resp);
                return qb_http_fail(h, errstr, errstr_size, QB_ERR_RANGE,
                                    "%s: GET %s: response body larger than %zu bytes",
                                    h->source, shown, h->o.max_body);
            }
            int timeout = rc == CURLE_OPERATION_TIMEDOUT;
            qb_http_count(h, timeout ? "timeout" : "error");
            snprintf(last, sizeof(last), "%s", reason);
            size_t ll = strlen(last);
            while (ll && (last[ll - 1] == '\n' || last[ll - 1] == '\r')) last[--ll] = '\0';
            qb_http_redact(h, last, sizeof(last));
            last_err = timeout ? QB_ERR_TIMEOUT : QB_ERR_UNAVAILABLE;
            switch (rc) {
            case CURLE_URL_MALFORMAT:
            case CURLE_UNSUPPORTED_PROTOCOL:
                what = QB_ATT_FATAL;
                err = QB_ERR_INVALID;
                break;
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CERTPROBLEM:
            case CURLE_SSL_CACERT_BADFILE:
                what = QB_ATT_FATAL; /* retrying will not fix a certificate */
                err = QB_ERR_UNAVAILABLE;
                break;
            default:
                what = QB_ATT_RETRY;
            }
            QB_DEBUG("%s: GET %s: %s (%.0f ms, attempt %d)", h->source, shown, last,
                     secs * 1000, attempt);
        } else {
            char code[16];
            snprintf(code, sizeof(code), "%ld", status);
            qb_http_count(h, code);
            QB_DEBUG("%s: GET %s: HTTP %ld, %zu bytes (%.0f ms, attempt %d)", h->source,
                     shown, status, resp->body_len, secs * 1000, attempt);
            if (status >= 200 && status < 300) return QB_OK;
            char vm[256];
            qb_http_vendor_msg(resp->body, resp->body_len, vm, sizeof(vm));
            snprintf(last, sizeof(last), "HTTP %ld%s%s", status, vm[0] ? ": " : "", vm);
            qb_http_redact(h, last, sizeof(last)); /* a vendor may echo the key */
            last_err = QB_ERR_UNAVAILABLE;
            if (status == 429 || status == 408 || status >= 500) {
                what = QB_ATT_RETRY;
            } else {
                what = QB_ATT_FATAL;
                err = status == 404 ? QB_ERR_NOT_FOUND : QB_ERR_INVALID;
            }
        }
        if (what == QB_ATT_FATAL) {
            if (err != QB_ERR_NOT_FOUND && err != QB_ERR_INVALID) qb_http_resp_free(resp);
            return qb_http_fail(h, errstr, errstr_size, err, "%s: GET %s: %s", h->source,
                                shown, last);
        }
        if (attempt == h->o.max_attempts) break;
        int64_t delay = qb_http_retry_delay_ms(attempt, resp->retry_after_ms,
                                               h->o.retry_after_max_ms, h->o.backoff_base_ms,
                                               h->o.backoff_max_ms, qb_http_rand(h));
        qb_counter_inc(h->m_retries);
        {
            char line[768];
            snprintf(line, sizeof(line), "%s: GET %s: %s; retry %d/%d in %lld ms%s", h->source,
                     shown, last, attempt, h->o.max_attempts - 1, (long long)delay,
                     resp->retry_after_ms >= 0 ? " (Retry-After)" : "");
            qb_http_redact(h, line, sizeof(line));
            QB_WARN("%s", line);
        }
        if (qb_http_sleep(h, delay * QB_NS_PER_MS)) {
            qb_http_resp_free(resp);
            return qb_http_fail(h, errstr, errstr_size, QB_ERR_UNAVAILABLE,
                                "%s: GET %s: cancelled while waiting to retry (%s)",
                                h->source, shown, last);
        }
    }
    int attempts = resp->attempts;
    qb_http_resp_free(resp);
    return qb_http_fail(h, errstr, errstr_size, last_err,
                        "%s: GET %s: %s (gave up after %d attempt%s)", h->source, shown,
                        last, attempts, attempts == 1 ? "" : "s");
}

/* Append the call's params and the handle's params to the URL pair. */
static void qb_http_add_query(const qb_http_t *h, qb_sbuf_t *u, qb_sbuf_t *d, int has_q,
                              const qb_http_param_t *params, size_t n) {
    for (size_t i = 0; i < n + h->nparams; i++) {
        const char *name, *value;
        int secret = 0;
        if (i < n) {
            name = params[i].name;
            value = params[i].value;
        } else {
            name = h->params[i - n].name;
            value = h->params[i - n].value;
            secret = h->params[i - n].secret;
        }
        if (!name) continue;
        const char *sep = has_q ? "&" : "?";
        has_q = 1;
        qb_sbuf_str(u, sep);
        qb_sbuf_str(d, sep);
        qb_sbuf_enc(u, name);
        qb_sbuf_enc(d, name);
        if (value) {
            qb_sbuf_str(u, "=");
            qb_sbuf_str(d, "=");
            qb_sbuf_enc(u, value);
            if (secret) qb_sbuf_str(d, "***");
            else qb_sbuf_enc(d, value);
        }
    }
}

static qb_err_t qb_http_request(qb_http_t *h, const char *prefix, const char *rest,
                                const qb_http_param_t *params, size_t n,
                                qb_http_resp_t *resp, char *errstr, size_t errstr_size) {
    qb_sbuf_t u = {0}, d = {0};
    qb_sbuf_str(&u, prefix);
    qb_sbuf_str(&u, rest);
    qb_sbuf_str(&d, prefix);
    qb_sbuf_str(&d, rest);
    qb_http_add_query(h, &u, &d, strchr(rest, '?') != NULL, params, n);
    qb_err_t err;
    if (u.oom || d.oom) {
        memset(resp, 0, sizeof(*resp));
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    } else {
        /* d may still contain a secret if a vendor put one in next_url */
        qb_http_redact(h, d.p, d.len + 1);
        err = qb_http_do(h, u.p, d.p, resp, errstr, errstr_size);
    }
    if (u.p) {
        volatile char *v = u.p; /* it held the keys */
        while (*v) *v++ = '\0';
    }
    free(u.p);
    free(d.p);
    return err;
}

qb_err_t qb_http_get(qb_http_t *h, const char *path, const qb_http_param_t *params,
                     size_t nparams, qb_http_resp_t *resp, char *errstr, size_t errstr_size) {
    if (!resp) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http get: resp is required");
    memset(resp, 0, sizeof(*resp));
    if (!h || !path || path[0] != '/')
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "http get: a handle and a path starting with '/' are required");
    return qb_http_request(h, h->base_url, path, params, nparams, resp, errstr, errstr_size);
}

qb_err_t qb_http_get_url(qb_http_t *h, const char *url, const qb_http_param_t *params,
                         size_t nparams, qb_http_resp_t *resp, char *errstr, size_t errstr_size) {
    if (!resp) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http get: resp is required");
    memset(resp, 0, sizeof(*resp));
    if (!h || !url) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "http get: url is required");
    size_t bl = strlen(h->base_url);
    if (strncasecmp(url, h->base_url, bl) != 0 || (url[bl] != '/' && url[bl] != '?' && url[bl])) {
        char shown[256];
        snprintf(shown, sizeof(shown), "%.200s", url);
        char *q = strchr(shown, '?');
        if (q) strcpy(q, "?...");
        return qb_http_fail(h, errstr, errstr_size, QB_ERR_INVALID,
                            "%s: refusing to follow %s: not under %s", h->source, shown,
                            h->base_url);
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return qb_http_fail(h, errstr, errstr_size, QB_ERR_INVALID,
                                "%s: URL contains a control character or blank", h->source);
    return qb_http_request(h, "", url, params, nparams, resp, errstr, errstr_size);
}

/* ---- pure helpers ---------------------------------------------------------- */

size_t qb_http_url_encode(const char *s, char *buf, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[3];
        size_t k;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            e[0] = (char)c;
            k = 1;
        } else {
            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            k = 3;
        }
        for (size_t i = 0; i < k; i++, n++)
            if (n + 1 < cap) buf[n] = e[i];
    }
    if (cap) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

int64_t qb_http_backoff_ms(int retry, int64_t base_ms, int64_t max_ms, uint64_t rnd) {
    if (base_ms <= 0 || max_ms <= 0) return 0;
    int64_t cap = base_ms < max_ms ? base_ms : max_ms;
    for (int i = 1; i < retry && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    return (int64_t)(rnd % ((uint64_t)cap + 1));
}

int64_t qb_http_retry_delay_ms(int retry, int64_t retry_after_ms, int64_t retry_after_max_ms,
                               int64_t base_ms, int64_t max_ms, uint64_t rnd) {
    if (retry_after_ms >= 0) return retry_after_ms < retry_after_max_ms ? retry_after_ms
                                                                        : retry_after_max_ms;
    return qb_http_backoff_ms(retry, base_ms, max_ms, rnd);
}

static int qb_http_month(const char *s) {
    static const char *m[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(s, m[i], 3) == 0) return i + 1;
    return 0;
}

/* Read exactly n digits. */
static int qb_http_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

static int qb_http_hms(const char **p, int *hh, int *mm, int *ss) {
    if (!qb_http_digits(p, 2, hh) || **p != ':') return 0;
    (*p)++;
    if (!qb_http_digits(p, 2, mm) || **p != ':') return 0;
    (*p)++;
    return qb_http_digits(p, 2, ss) && *hh < 24 && *mm < 60 && *ss < 61;
}

int qb_http_parse_retry_after(const char *v, int64_t now_unix_s, int64_t *out_ms) {
    if (!v) return 0;
    while (*v == ' ' || *v == '\t') v++;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r')) len--;
    if (!len) return 0;
    if (isdigit((unsigned char)v[0])) { /* delta-seconds */
        int64_t s = 0;
        for (size_t i = 0; i < len; i++) {
            if (!isdigit((unsigned char)v[i])) return 0;
            if (s > 86400LL * 365) return 0; /* absurd; treat as malformed */
            s = s * 10 + (v[i] - '0');
        }
        *out_ms = s * 1000;
        return 1;
    }
    char t[64];
    if (len >= sizeof(t)) return 0;
    memcpy(t, v, len);
    t[len] = '\0';
    const char *p = strchr(t, ',');
    int day, mon, year, hh, mm, ss;
    if (p) {
        p++;
        while (*p == ' ') p++;
        if (isdigit((unsigned char)p[0]) && p[2] == ' ') {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            if (!qb_http_digits(&p, 2, &day) || *p++ != ' ') return 0;
            if (!(mon = qb_http_month(p))) return 0;
            p += 3;
            if (*p++ != ' ' || !qb_http_digits(&p, 4, &year) || *p++ != ' ') return 0;
        } else {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
            if (!qb_http_digits(&p, 2, &day) || *p++ != '-') return 0;
            if (!(mon = qb_http_month(p))) return 0;
            p += 3;
            if (*p++ != '-' || !qb_http_digits(&p, 2, &year) || *p++ != ' ') return 0;
            year += year < 70 ? 2000 : 1900;
        }
        if (!qb_http_hms(&p, &hh, &mm, &ss) || strcmp(p, " GMT") != 0) return 0;
    } else {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (len != 24 || t[3] != ' ' || t[7] != ' ') return 0;
        if (!(mon = qb_http_month(t + 4))) return 0;
        p = t + 8;
        if (*p == ' ') {
            p++;
            if (!qb_http_digits(&p, 1, &day)) return 0;
        } else if (!qb_http_digits(&p, 2, &day)) return 0;
        if (*p++ != ' ' || !qb_http_hms(&p, &hh, &mm, &ss) || *p++ != ' ' ||
            !qb_http_digits(&p, 4, &year) || *p)
            return 0;
    }
    if (day < 1 || day > qb_time_days_in_month(year, mon)) return 0;
    int64_t when = qb_time_days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
    int64_t d = when - now_unix_s;
    *out_ms = d > 0 ? d * 1000 : 0;
    return 1;
}

void qb_http_bucket_init(qb_http_bucket_t *b, double rate_per_sec, double capacity, int64_t now_ns) {
    b->rate_per_sec = rate_per_sec;
    b->capacity = capacity < 1 ? 1 : capacity;
    b->tokens = b->capacity;
    b->last_ns = now_ns;
}

int64_t qb_http_bucket_take(qb_http_bucket_t *b, int64_t now_ns) {
    if (b->rate_per_sec <= 0) return 0;
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) * b->rate_per_sec / 1e9;
        if (b->tokens > b->capacity) b->tokens = b->capacity;
        b->last_ns = now_ns;
    }
    b->tokens -= 1;
    if (b->tokens >= 0) return 0;
    /* ceil, so a caller that sleeps exactly this long finds its token there */
    double wait = -b->tokens * 1e9 / b->rate_per_sec;
    int64_t w = (int64_t)wait;
    return (double)w < wait ? w + 1 : w;
}
