/* qb_notify_send.c — channel clients over libcurl; see qb_notify_send.h.
 *
 * Owns: a copy of the sender configuration (secrets wiped on destroy) and
 * one curl easy handle, reset before each request (curl_easy_reset keeps the
 * connection cache, so a webhook on one host is sent over kept-alive
 * connections). */
#include "notify/qb_notify_send.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http/qb_http.h"

#define QB_NSEND_BODY_MAX (64 * 1024)

struct qb_nsender_s {
    CURL *curl;
    long timeout_ms, connect_timeout_ms;
    char *user_agent, *webhook_secret, *telegram_api, *telegram_token;
    char *smtp_url, *smtp_from, *smtp_user, *smtp_password, *smtp_ca_file;
    int smtp_starttls;
};

static pthread_once_t qb_nsend_once = PTHREAD_ONCE_INIT;
static void qb_nsend_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *qb_nsdup(const char *s, const char *def) {
    return strdup(s && *s ? s : def);
}

static void qb_nwipe_free(char *s) {
    if (!s) return;
    memset(s, 0, strlen(s));
    free(s);
}

qb_nsender_t *qb_nsender_new(const qb_nsend_cfg_t *cfg, char *errstr, size_t errstr_size) {
    pthread_once(&qb_nsend_once, qb_nsend_global_init);
    qb_nsender_t *s = calloc(1, sizeof *s);
    if (!s) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    s->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    s->user_agent = qb_nsdup(cfg->user_agent, "quantbus-notify/1");
    s->webhook_secret = qb_nsdup(cfg->webhook_secret, "");
    s->telegram_api = qb_nsdup(cfg->telegram_api, "https://api.telegram.org");
    s->telegram_token = qb_nsdup(cfg->telegram_token, "");
    s->smtp_url = qb_nsdup(cfg->smtp_url, "");
    s->smtp_from = qb_nsdup(cfg->smtp_from, "quantbus@localhost");
    s->smtp_user = qb_nsdup(cfg->smtp_user, "");
    s->smtp_password = qb_nsdup(cfg->smtp_password, "");
    s->smtp_ca_file = qb_nsdup(cfg->smtp_ca_file, "");
    s->smtp_starttls = cfg->smtp_starttls;
    size_t l = strlen(s->telegram_api);
    if (l && s->telegram_api[l - 1] == '/') s->telegram_api[l - 1] = '\0';
    s->curl = curl_easy_init();
    if (!s->curl || !s->user_agent || !s->webhook_secret || !s->telegram_api ||
        !s->telegram_token || !s->smtp_url || !s->smtp_from || !s->smtp_user ||
        !s->smtp_password || !s->smtp_ca_file) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "curl or memory could not be set up");
        qb_nsender_destroy(s);
        return NULL;
    }
    return s;
}

void qb_nsender_destroy(qb_nsender_t *s) {
    if (!s) return;
    if (s->curl) curl_easy_cleanup(s->curl);
    free(s->user_agent);
    qb_nwipe_free(s->webhook_secret);
    free(s->telegram_api);
    qb_nwipe_free(s->telegram_token);
    free(s->smtp_url);
    free(s->smtp_from);
    free(s->smtp_user);
    qb_nwipe_free(s->smtp_password);
    free(s->smtp_ca_file);
    free(s);
}

/* ---- helpers ------------------------------------------------------------------ */

void qb_nhmac_sha256_hex(const char *key, const void *data, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), data, len, md, &mdlen);
    for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

size_t qb_naddr_display(qb_nchan_t ch, const char *address, char *buf, size_t cap) {
    const char *a = address ? address : "";
    if (ch == QB_NCHAN_WEBHOOK || ch == QB_NCHAN_SLACK || strstr(a, "://")) {
        const char *p = strstr(a, "://");
        if (!p) return (size_t)snprintf(buf, cap, "(hidden)");
        p += 3;
        const char *at = NULL;
        size_t hl = strcspn(p, "/?#");
        for (size_t i = 0; i < hl; i++)
            if (p[i] == '@') at = p + i; /* user:password@host: drop the credentials */
        const char *host = at ? at + 1 : p;
        size_t n = hl - (size_t)(host - p);
        return (size_t)snprintf(buf, cap, "%.*s%.*s%s", (int)(p - a), a, (int)n, host,
                                p[hl] ? "/..." : "");
    }
    return (size_t)snprintf(buf, cap, "%s", a);
}

int64_t qb_nbackoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int64_t retry_after_ms,
                       uint64_t rnd) {
    if (base_ms <= 0) base_ms = 1;
    if (max_ms < base_ms) max_ms = base_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++) d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms) d = max_ms;
    int64_t lo = d / 2;
    int64_t v = lo + (int64_t)(rnd % (uint64_t)(d - lo + 1));
    if (retry_after_ms >= 0 && retry_after_ms > v) v = retry_after_ms < max_ms ? retry_after_ms : max_ms;
    return v;
}

static void qb_niso(qb_time_t t, char *buf, size_t cap) { qb_time_format(t, buf, cap); }

char *qb_nwebhook_body(const qb_nmsg_t *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char iso[64];
    qb_niso(m->event_time, iso, sizeof iso);
    cJSON_AddStringToObject(o, "delivery_id", m->delivery_id ? m->delivery_id : "");
    cJSON_AddStringToObject(o, "rule_id", m->rule_id ? m->rule_id : "");
    cJSON_AddStringToObject(o, "rule_name", m->rule_name ? m->rule_name : "");
    cJSON_AddStringToObject(o, "user", m->user ? m->user : "");
    cJSON_AddStringToObject(o, "event_id", m->event_id ? m->event_id : "");
    cJSON_AddStringToObject(o, "event_kind", m->event_kind ? m->event_kind : "");
    cJSON_AddStringToObject(o, "event_time", iso);
    cJSON_AddStringToObject(o, "title", m->title ? m->title : "");
    cJSON_AddStringToObject(o, "text", m->text ? m->text : "");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int qb_nascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80 || *s == '\r' || *s == '\n') return 0;
    return 1;
}

char *qb_nmail_build(const qb_nmsg_t *m, const char *from, qb_time_t now) {
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    qb_civil_t c;
    qb_time_to_civil(now, &c);
    int64_t days = qb_time_days_from_civil(c.year, c.month, c.day);
    char date[64];
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             wd[((days % 7) + 7) % 7], c.day, mo[(c.month - 1) % 12], c.year, c.hour, c.min,
             c.sec);
    const char *title = m->title ? m->title : "";
    char subj[QB_NTITLE_MAX * 2 + 64];
    if (qb_nascii(title)) {
        snprintf(subj, sizeof subj, "%s", title);
    } else {
        unsigned char b64[QB_NTITLE_MAX * 2];
        size_t tl = strlen(title);
        if (tl > QB_NTITLE_MAX) tl = QB_NTITLE_MAX;
        EVP_EncodeBlock(b64, (const unsigned char *)title, (int)tl);
        snprintf(subj, sizeof subj, "=?UTF-8?B?%s?=", b64);
    }
    const char *text = m->text ? m->text : "";
    size_t cap = strlen(text) * 2 + strlen(subj) + 1024 + 3 * QB_NADDR_MAX;
    char *out = malloc(cap);
    if (!out) return NULL;
    int n = snprintf(out, cap,
                     "Date: %s\r\nFrom: Quantbus <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
                     "Message-ID: <%s@quantbus>\r\nX-Quantbus-Delivery-Id: %s\r\n"
                     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n\r\n",
                     date, from, m->address ? m->address : "", subj,
                     m->delivery_id ? m->delivery_id : "x", m->delivery_id ? m->delivery_id : "");
    size_t pos = n > 0 ? (size_t)n : 0;
    for (const char *p = text; *p && pos + 4 < cap; p++) {
        if (*p == '\r') continue;
        if (*p == '\n') {
            out[pos++] = '\r';
            out[pos++] = '\n';
        } else {
            out[pos++] = *p;
        }
    }
    out[pos++] = '\r';
    out[pos++] = '\n';
    out[pos] = '\0';
    return out;
}

/* Mask every configured secret in buf. */
static void qb_nmask(const qb_nsender_t *s, const char *extra, char *buf, size_t cap) {
    const char *secrets[4] = {s->telegram_token, s->smtp_password, s->webhook_secret, extra};
    for (int i = 0; i < 4; i++) {
        const char *sec = secrets[i];
        if (!sec || strlen(sec) < 4) continue;
        size_t sl = strlen(sec);
        char *p;
        while ((p = strstr(buf, sec))) {
            size_t rest = strlen(p + sl);
            memmove(p + 3, p + sl, rest + 1);
            memcpy(p, "***", 3);
        }
        (void)cap;
    }
}

/* ---- HTTP -------------------------------------------------------------------- */

typedef struct qb_nbuf_s {
    char *p;
    size_t n;
    int64_t retry_after_ms;
} qb_nbuf_t;

static size_t qb_nwrite_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    qb_nbuf_t *b = ud;
    size_t len = size * nmemb;
    if (b->n + len > QB_NSEND_BODY_MAX) len = b->n < QB_NSEND_BODY_MAX ? QB_NSEND_BODY_MAX - b->n : 0;
    if (len) {
        char *np = realloc(b->p, b->n + len + 1);
        if (!np) return 0;
        b->p = np;
        memcpy(b->p + b->n, ptr, len);
        b->n += len;
        b->p[b->n] = '\0';
    }
    return size * nmemb;
}

static size_t qb_nheader_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    qb_nbuf_t *b = ud;
    size_t len = size * nmemb;
    static const char key[] = "retry-after:";
    if (len > sizeof key - 1 && strncasecmp(ptr, key, sizeof key - 1) == 0) {
        char v[128];
        size_t vl = len - (sizeof key - 1);
        if (vl >= sizeof v) vl = sizeof v - 1;
        memcpy(v, ptr + sizeof key - 1, vl);
        v[vl] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ')) *--e = '\0';
        int64_t ms;
        if (qb_http_parse_retry_after(s, qb_time_to_unix_s(qb_time_now()), &ms)) b->retry_after_ms = ms;
    }
    return len;
}

static void qb_nsnippet(const char *body, char *out, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; body && body[i] && j + 1 < cap && i < 200; i++)
        out[j++] = isprint((unsigned char)body[i]) ? body[i] : ' ';
    out[j] = '\0';
}

static void qb_nhttp_post(qb_nsender_t *s, const char *url, const char *shown, const char *body,
                          struct curl_slist *hdrs, int telegram, const char *extra_secret,
                          qb_nsend_res_t *res) {
    CURL *c = s->curl;
    qb_nbuf_t b = {NULL, 0, -1};
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, s->user_agent);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, qb_nwrite_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, qb_nheader_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    res->code = code;
    res->retry_after_ms = b.retry_after_ms;
    if (rc != CURLE_OK) {
        int permanent = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL;
        res->status = permanent ? QB_NSEND_FAIL : QB_NSEND_RETRY;
        snprintf(res->error, sizeof res->error, "POST %.200s: %.280s", shown,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
    } else if (code >= 200 && code < 300) {
        res->status = QB_NSEND_OK;
    } else {
        char snip[256];
        qb_nsnippet(b.p, snip, sizeof snip);
        if (telegram && code == 429 && b.p) {
            cJSON *j = cJSON_Parse(b.p);
            const cJSON *pr = j ? cJSON_GetObjectItemCaseSensitive(j, "parameters") : NULL;
            const cJSON *ra = pr ? cJSON_GetObjectItemCaseSensitive(pr, "retry_after") : NULL;
            if (cJSON_IsNumber(ra) && ra->valuedouble >= 0)
                res->retry_after_ms = (int64_t)(ra->valuedouble * 1000);
            cJSON_Delete(j);
        }
        res->status = (code == 408 || code == 429 || code >= 500) ? QB_NSEND_RETRY : QB_NSEND_FAIL;
        snprintf(res->error, sizeof res->error, "POST %.200s: HTTP %ld%s%.200s", shown, code,
                 snip[0] ? ": " : "", snip);
    }
    qb_nmask(s, extra_secret, res->error, sizeof res->error);
    free(b.p);
}

static void qb_nsend_webhook(qb_nsender_t *s, const qb_nmsg_t *m, const char *shown,
                             qb_nsend_res_t *res) {
    char *body = qb_nwebhook_body(m);
    if (!body) {
        res->status = QB_NSEND_RETRY;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    char h[4][160];
    struct curl_slist *hdrs = NULL;
    int64_t ts = qb_time_to_unix_s(qb_time_now());
    snprintf(h[0], sizeof h[0], "X-Quantbus-Delivery-Id: %s", m->delivery_id ? m->delivery_id : "");
    snprintf(h[1], sizeof h[1], "X-Quantbus-Attempt: %d", m->attempt);
    snprintf(h[2], sizeof h[2], "X-Quantbus-Timestamp: %lld", (long long)ts);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (int i = 0; i < 3; i++) hdrs = curl_slist_append(hdrs, h[i]);
    const char *secret = m->secret && *m->secret ? m->secret : s->webhook_secret;
    if (secret && *secret) {
        size_t bl = strlen(body);
        char *signed_data = malloc(bl + 32);
        if (signed_data) {
            int n = snprintf(signed_data, bl + 32, "%lld.%s", (long long)ts, body);
            char hex[65];
            qb_nhmac_sha256_hex(secret, signed_data, (size_t)n, hex);
            snprintf(h[3], sizeof h[3], "X-Quantbus-Signature: sha256=%s", hex);
            hdrs = curl_slist_append(hdrs, h[3]);
            free(signed_data);
        }
    }
    qb_nhttp_post(s, m->address, shown, body, hdrs, 0, m->secret, res);
    curl_slist_free_all(hdrs);
    free(body);
}

static char *qb_njson_text(const char *key, const char *val, const char *k2, const char *v2,
                           int no_preview) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (k2) cJSON_AddStringToObject(o, k2, v2);
    cJSON_AddStringToObject(o, key, val);
    if (no_preview) cJSON_AddBoolToObject(o, "disable_web_page_preview", 1);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void qb_nsend_slack_tg(qb_nsender_t *s, const qb_nmsg_t *m, const char *shown,
                              qb_nsend_res_t *res) {
    size_t tl = strlen(m->title ? m->title : "") + strlen(m->text ? m->text : "") + 8;
    char *txt = malloc(tl);
    if (!txt) {
        res->status = QB_NSEND_RETRY;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    char *body;
    char url[1024];
    int tg = m->channel == QB_NCHAN_TELEGRAM;
    if (tg) {
        snprintf(txt, tl, "%s\n%s", m->title ? m->title : "", m->text ? m->text : "");
        body = qb_njson_text("text", txt, "chat_id", m->address, 1);
        snprintf(url, sizeof url, "%s/bot%s/sendMessage", s->telegram_api, s->telegram_token);
    } else {
        snprintf(txt, tl, "*%s*\n%s", m->title ? m->title : "", m->text ? m->text : "");
        body = qb_njson_text("text", txt, NULL, NULL, 0);
        snprintf(url, sizeof url, "%s", m->address);
    }
    free(txt);
    if (tg && !s->telegram_token[0]) {
        free(body);
        res->status = QB_NSEND_FAIL;
        snprintf(res->error, sizeof res->error,
                 "telegram: no bot token (QB_NOTIFY_TELEGRAM_BOT_TOKEN)");
        return;
    }
    if (!body) {
        res->status = QB_NSEND_RETRY;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    char tgshown[300];
    if (tg) snprintf(tgshown, sizeof tgshown, "%s/bot***/sendMessage", s->telegram_api);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    qb_nhttp_post(s, url, tg ? tgshown : shown, body, hdrs, tg, NULL, res);
    memset(url, 0, sizeof url);
    curl_slist_free_all(hdrs);
    free(body);
}

/* ---- SMTP -------------------------------------------------------------------- */

typedef struct qb_nread_s {
    const char *p;
    size_t left;
} qb_nread_t;

static size_t qb_nread_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    qb_nread_t *r = ud;
    size_t n = size * nmemb;
    if (n > r->left) n = r->left;
    memcpy(ptr, r->p, n);
    r->p += n;
    r->left -= n;
    return n;
}

static void qb_nsend_email(qb_nsender_t *s, const qb_nmsg_t *m, qb_nsend_res_t *res) {
    if (!s->smtp_url[0]) {
        res->status = QB_NSEND_FAIL;
        snprintf(res->error, sizeof res->error, "email: no SMTP server (QB_NOTIFY_SMTP_URL)");
        return;
    }
    char *msg = qb_nmail_build(m, s->smtp_from, qb_time_now());
    if (!msg) {
        res->status = QB_NSEND_RETRY;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    char from[QB_NADDR_MAX + 3], to[QB_NADDR_MAX + 3], cerr[CURL_ERROR_SIZE] = "";
    snprintf(from, sizeof from, "<%s>", s->smtp_from);
    snprintf(to, sizeof to, "<%s>", m->address);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    qb_nread_t rd = {msg, strlen(msg)};
    CURL *c = s->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, s->smtp_url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, qb_nread_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &rd);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rd.left);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (s->smtp_starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (s->smtp_ca_file[0]) curl_easy_setopt(c, CURLOPT_CAINFO, s->smtp_ca_file);
    if (s->smtp_user[0]) {
        curl_easy_setopt(c, CURLOPT_USERNAME, s->smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->smtp_password);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    res->code = code;
    char shown[300];
    qb_naddr_display(QB_NCHAN_EMAIL, s->smtp_url, shown, sizeof shown);
    if (rc == CURLE_OK) {
        res->status = QB_NSEND_OK;
    } else {
        res->status = code >= 500 && code < 600 ? QB_NSEND_FAIL : QB_NSEND_RETRY;
        char reply[32] = "";
        if (code) snprintf(reply, sizeof reply, ", reply %ld", code);
        snprintf(res->error, sizeof res->error, "SMTP %.100s to %.120s: %.240s%s", shown,
                 m->address, cerr[0] ? cerr : curl_easy_strerror(rc), reply);
    }
    /* The URL may hold user:password; show it without. */
    qb_nmask(s, NULL, res->error, sizeof res->error);
    curl_slist_free_all(rcpt);
    free(msg);
}

void qb_nsend(qb_nsender_t *s, const qb_nmsg_t *m, qb_nsend_res_t *res) {
    memset(res, 0, sizeof *res);
    res->retry_after_ms = -1;
    int64_t t0 = qb_time_mono_ns();
    char shown[QB_NADDR_MAX + 16];
    qb_naddr_display(m->channel, m->address, shown, sizeof shown);
    switch (m->channel) {
    case QB_NCHAN_WEBHOOK: qb_nsend_webhook(s, m, shown, res); break;
    case QB_NCHAN_SLACK:
    case QB_NCHAN_TELEGRAM: qb_nsend_slack_tg(s, m, shown, res); break;
    case QB_NCHAN_EMAIL: qb_nsend_email(s, m, res); break;
    default:
        res->status = QB_NSEND_FAIL;
        snprintf(res->error, sizeof res->error, "channel %s is not sent over the network",
                 qb_nchan_name(m->channel));
        break;
    }
    res->elapsed_ns = qb_time_mono_ns() - t0;
}
