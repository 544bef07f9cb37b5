/* qb_fake_alpaca.c — see qb_fake_alpaca.h. Owns the MHD daemon, the
 * auto-fill thread and the order table (behind one mutex). */
#include "qb_fake_alpaca.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"

typedef struct fa_order_s {
    char id[QB_UUID_STRLEN];
    char coid[80];
    char symbol[32];
    char side[8], type[16], tif[8];
    char status[24];
    qb_dec_t qty, filled, notional, limit, stop;
    char replaced_by[QB_UUID_STRLEN], replaces[QB_UUID_STRLEN];
    qb_time_t created, updated;
    int gone; /* forgotten */
} fa_order_t;

typedef struct fa_fault_s {
    char method[8];
    int n, status, after;
    char retry_after[32];
} fa_fault_t;

struct qb_fake_alpaca_s {
    struct MHD_Daemon *d;
    char url[64];
    char key[128], secret[128];
    qb_fake_alpaca_cfg_t cfg;
    qb_dec_t price;
    pthread_mutex_t mu;
    fa_order_t *o;
    size_t n, cap;
    fa_fault_t faults[8];
    size_t nfaults;
    qb_fake_alpaca_stats_t st;
    size_t posts_seen;
    qb_dec_t cash;
    pthread_t filler;
    volatile int stop;
    int has_filler;
};

typedef struct fa_req_s {
    char *body;
    size_t len;
} fa_req_t;

static qb_dec_t fa_dec(const char *s) {
    qb_dec_t v = 0;
    if (s) (void)qb_dec_parse(s, strlen(s), &v);
    return v;
}

static fa_order_t *fa_by_coid(qb_fake_alpaca_t *fa, const char *coid) {
    for (size_t i = 0; i < fa->n; i++)
        if (!fa->o[i].gone && strcmp(fa->o[i].coid, coid) == 0) return &fa->o[i];
    return NULL;
}
static fa_order_t *fa_by_id(qb_fake_alpaca_t *fa, const char *id) {
    for (size_t i = 0; i < fa->n; i++)
        if (!fa->o[i].gone && strcmp(fa->o[i].id, id) == 0) return &fa->o[i];
    return NULL;
}

static int fa_open(const fa_order_t *o) {
    return strcmp(o->status, "new") == 0 || strcmp(o->status, "partially_filled") == 0 ||
           strcmp(o->status, "accepted") == 0;
}

static void fa_ts(qb_time_t t, char *b, size_t cap) { qb_time_format(t, b, cap); }

static void fa_json_order(const fa_order_t *o, char *b, size_t cap) {
    char q[40], f[40], avg[40] = "", lp[40] = "", sp[40] = "", c[48], u[48];
    qb_dec_format(o->qty, q, sizeof q);
    qb_dec_format(o->filled, f, sizeof f);
    if (o->filled > 0) {
        qb_dec_t a = 0;
        (void)qb_dec_div(o->notional, o->filled, &a, QB_ROUND_HALF_EVEN);
        qb_dec_format(a, avg, sizeof avg);
    }
    if (o->limit) qb_dec_format(o->limit, lp, sizeof lp);
    if (o->stop) qb_dec_format(o->stop, sp, sizeof sp);
    fa_ts(o->created, c, sizeof c);
    fa_ts(o->updated, u, sizeof u);
#define FA_S(x) (x)[0] ? "\"" : "", (x)[0] ? (x) : "null", (x)[0] ? "\"" : ""
    snprintf(b, cap,
             "{\"id\":\"%s\",\"client_order_id\":\"%s\",\"created_at\":\"%s\",\"updated_at\":\"%s\","
             "\"submitted_at\":\"%s\",\"asset_class\":\"us_equity\",\"symbol\":\"%s\","
             "\"qty\":\"%s\",\"filled_qty\":\"%s\",\"filled_avg_price\":%s%s%s,"
             "\"order_class\":\"\",\"order_type\":\"%s\",\"type\":\"%s\",\"side\":\"%s\","
             "\"time_in_force\":\"%s\",\"limit_price\":%s%s%s,\"stop_price\":%s%s%s,"
             "\"status\":\"%s\",\"extended_hours\":false,\"replaced_by\":%s%s%s,"
             "\"replaces\":%s%s%s,\"legs\":null}",
             o->id, o->coid, c, u, c, o->symbol, q, f, FA_S(avg), o->type, o->type, o->side,
             o->tif, FA_S(lp), FA_S(sp), o->status, FA_S(o->replaced_by), FA_S(o->replaces));
#undef FA_S
}

/* ---- effects (locked) ----------------------------------------------------------- */

static int fa_fill_locked(qb_fake_alpaca_t *fa, fa_order_t *o, qb_dec_t q, qb_dec_t px) {
    if (!fa_open(o) || q <= 0 || o->filled + q > o->qty) return -1;
    qb_dec_t n = 0;
    (void)qb_dec_mul(q, px, &n, QB_ROUND_HALF_EVEN);
    o->filled += q;
    o->notional += n;
    fa->cash += strcmp(o->side, "buy") == 0 ? -n : n;
    snprintf(o->status, sizeof o->status, "%s", o->filled == o->qty ? "filled" : "partially_filled");
    o->updated = qb_time_now();
    fa->st.fills++;
    return 0;
}

static fa_order_t *fa_new_order(qb_fake_alpaca_t *fa) {
    if (fa->n == fa->cap) {
        size_t nc = fa->cap ? fa->cap * 2 : 64;
        fa_order_t *no = realloc(fa->o, nc * sizeof *no);
        if (!no) abort();
        fa->o = no;
        fa->cap = nc;
    }
    fa_order_t *o = &fa->o[fa->n++];
    memset(o, 0, sizeof *o);
    qb_uuid_v4(o->id);
    o->created = o->updated = qb_time_now();
    return o;
}

typedef struct fa_out_s {
    int status;
    char *body;
    char retry_after[32];
} fa_out_t;

static void fa_set(fa_out_t *out, int status, const char *body) {
    out->status = status;
    free(out->body);
    out->body = strdup(body);
}

static void fa_err(fa_out_t *out, int status, int code, const char *msg) {
    char b[256];
    snprintf(b, sizeof b, "{\"code\":%d,\"message\":\"%s\"}", code, msg);
    fa_set(out, status, b);
}

static const char *fa_jstr(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void fa_post(qb_fake_alpaca_t *fa, const char *body, fa_out_t *out) {
    fa->st.posts++;
    cJSON *j = cJSON_Parse(body ? body : "");
    const char *sym = fa_jstr(j, "symbol"), *qty = fa_jstr(j, "qty"), *side = fa_jstr(j, "side"),
               *type = fa_jstr(j, "type"), *tif = fa_jstr(j, "time_in_force"),
               *coid = fa_jstr(j, "client_order_id");
    if (!j || !sym || !qty || !side || !type || !tif) {
        fa_err(out, 422, 40010001, "invalid order: symbol, qty, side, type, time_in_force required");
    } else if (coid && fa_by_coid(fa, coid)) {
        fa->st.posts_duplicate++;
        fa_err(out, 422, 40010001, "client_order_id must be unique");
    } else if (fa_dec(qty) <= 0 || (strcmp(side, "buy") && strcmp(side, "sell")) ||
               (strcmp(type, "market") && strcmp(type, "limit") && strcmp(type, "stop") &&
                strcmp(type, "stop_limit"))) {
        fa_err(out, 422, 40010001, "invalid qty, side or type");
    } else if (strcmp(sym, "REJECTME") == 0) {
        fa_err(out, 403, 40310000, "insufficient buying power");
    } else {
        fa_order_t *o = fa_new_order(fa);
        if (coid) snprintf(o->coid, sizeof o->coid, "%s", coid);
        else qb_uuid_v4(o->coid);
        snprintf(o->symbol, sizeof o->symbol, "%s", sym);
        snprintf(o->side, sizeof o->side, "%s", side);
        snprintf(o->type, sizeof o->type, "%s", type);
        snprintf(o->tif, sizeof o->tif, "%s", tif);
        snprintf(o->status, sizeof o->status, "new");
        o->qty = fa_dec(qty);
        o->limit = fa_dec(fa_jstr(j, "limit_price"));
        o->stop = fa_dec(fa_jstr(j, "stop_price"));
        fa->st.posts_accepted++;
        char b[2048];
        fa_json_order(o, b, sizeof b);
        fa_set(out, 200, b);
    }
    cJSON_Delete(j);
}

static void fa_patch(qb_fake_alpaca_t *fa, fa_order_t *old, const char *body, fa_out_t *out) {
    if (!fa_open(old)) {
        fa_err(out, 422, 42210000, "order is not replaceable");
        return;
    }
    cJSON *j = cJSON_Parse(body ? body : "");
    const char *coid = fa_jstr(j, "client_order_id");
    if (coid && fa_by_coid(fa, coid)) {
        fa_err(out, 422, 40010001, "client_order_id must be unique");
        cJSON_Delete(j);
        return;
    }
    fa_order_t keep = *old;
    fa_order_t *o = fa_new_order(fa); /* may move the array */
    old = fa_by_id(fa, keep.id);
    *o = keep;
    qb_uuid_v4(o->id);
    if (coid) snprintf(o->coid, sizeof o->coid, "%s", coid);
    else qb_uuid_v4(o->coid);
    const char *q = fa_jstr(j, "qty"), *lp = fa_jstr(j, "limit_price"),
               *sp = fa_jstr(j, "stop_price"), *tif = fa_jstr(j, "time_in_force");
    if (q) o->qty = fa_dec(q);
    if (lp) o->limit = fa_dec(lp);
    if (sp) o->stop = fa_dec(sp);
    if (tif) snprintf(o->tif, sizeof o->tif, "%s", tif);
    o->filled = 0;
    o->notional = 0;
    snprintf(o->status, sizeof o->status, "new");
    snprintf(o->replaces, sizeof o->replaces, "%s", old->id);
    o->replaced_by[0] = '\0';
    o->created = o->updated = qb_time_now();
    snprintf(old->status, sizeof old->status, "replaced");
    snprintf(old->replaced_by, sizeof old->replaced_by, "%s", o->id);
    old->updated = o->created;
    char b[2048];
    fa_json_order(o, b, sizeof b);
    fa_set(out, 200, b);
    cJSON_Delete(j);
}

static void fa_list(qb_fake_alpaca_t *fa, const char *status, fa_out_t *out) {
    size_t cap = 64 + fa->n * 1100, k = 0;
    char *b = malloc(cap);
    if (!b) abort();
    b[k++] = '[';
    int first = 1;
    for (size_t i = 0; i < fa->n; i++) {
        fa_order_t *o = &fa->o[i];
        if (o->gone) continue;
        int op = fa_open(o);
        if (status && strcmp(status, "open") == 0 && !op) continue;
        if (status && strcmp(status, "closed") == 0 && op) continue;
        if (!first) b[k++] = ',';
        first = 0;
        fa_json_order(o, b + k, cap - k);
        k += strlen(b + k);
    }
    b[k++] = ']';
    b[k] = '\0';
    out->status = 200;
    free(out->body);
    out->body = b;
}

static void fa_positions(qb_fake_alpaca_t *fa, fa_out_t *out) {
    size_t cap = 64 + fa->n * 200, k = 0;
    char *b = malloc(cap);
    if (!b) abort();
    b[k++] = '[';
    int first = 1;
    for (size_t i = 0; i < fa->n; i++) {
        if (fa->o[i].gone) continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (!fa->o[j].gone && strcmp(fa->o[j].symbol, fa->o[i].symbol) == 0) seen = 1;
        if (seen) continue;
        qb_dec_t q = 0, cost = 0, bq = 0;
        for (size_t j = i; j < fa->n; j++) {
            if (fa->o[j].gone || strcmp(fa->o[j].symbol, fa->o[i].symbol) != 0) continue;
            int buy = strcmp(fa->o[j].side, "buy") == 0;
            q += buy ? fa->o[j].filled : -fa->o[j].filled;
            if (buy) {
                cost += fa->o[j].notional;
                bq += fa->o[j].filled;
            }
        }
        if (q == 0) continue;
        char qs[40], av[40] = "0", mv[40];
        qb_dec_t a = 0, m = 0;
        if (bq > 0 && qb_dec_div(cost, bq, &a, QB_ROUND_HALF_EVEN) == QB_OK)
            qb_dec_format(a, av, sizeof av);
        qb_dec_t aq = q < 0 ? -q : q;
        qb_dec_format(aq, qs, sizeof qs);
        (void)qb_dec_mul(aq, fa->price, &m, QB_ROUND_HALF_EVEN);
        qb_dec_format(m, mv, sizeof mv);
        k += (size_t)snprintf(b + k, cap - k,
                              "%s{\"asset_class\":\"us_equity\",\"symbol\":\"%s\",\"qty\":\"%s%s\","
                              "\"side\":\"%s\",\"avg_entry_price\":\"%s\",\"market_value\":\"%s\"}",
                              first ? "" : ",", fa->o[i].symbol, q < 0 ? "-" : "", qs,
                              q < 0 ? "short" : "long", av, mv);
        first = 0;
    }
    k += (size_t)snprintf(b + k, cap - k, "]");
    out->status = 200;
    free(out->body);
    out->body = b;
}

static void fa_route(qb_fake_alpaca_t *fa, struct MHD_Connection *conn, const char *method,
                     const char *url, const char *body, fa_out_t *out) {
    fa->st.requests++;
    const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "APCA-API-KEY-ID");
    const char *s = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "APCA-API-SECRET-KEY");
    if (strcmp(url, "/_test/stats") == 0) {
        char b[512];
        snprintf(b, sizeof b,
                 "{\"orders\":%zu,\"posts\":%zu,\"posts_accepted\":%zu,\"posts_duplicate\":%zu,"
                 "\"fills\":%zu,\"requests\":%zu,\"throttled\":%zu}",
                 fa->st.orders, fa->st.posts, fa->st.posts_accepted, fa->st.posts_duplicate,
                 fa->st.fills, fa->st.requests, fa->st.throttled);
        fa_set(out, 200, b);
        return;
    }
    if (!k || !s || strcmp(k, fa->key) != 0 || strcmp(s, fa->secret) != 0) {
        fa_err(out, 401, 40110000, "request is not authorized");
        return;
    }
    /* faults */
    int after = 0, fstatus = 0;
    char fra[32] = "";
    for (size_t i = 0; i < fa->nfaults; i++) {
        fa_fault_t *f = &fa->faults[i];
        if (f->n > 0 && (strcmp(f->method, "*") == 0 || strcmp(f->method, method) == 0)) {
            f->n--;
            fstatus = f->status;
            after = f->after;
            snprintf(fra, sizeof fra, "%s", f->retry_after);
            break;
        }
    }
    if (!fstatus && fa->cfg.throttle_every > 0 && fa->st.requests % (size_t)fa->cfg.throttle_every == 0) {
        fstatus = 429;
        snprintf(fra, sizeof fra, "0");
    }
    int is_post_orders = strcmp(method, "POST") == 0 && strcmp(url, "/v2/orders") == 0;
    if (!fstatus && is_post_orders && fa->cfg.post_fail_every > 0 &&
        ++fa->posts_seen % (size_t)fa->cfg.post_fail_every == 0) {
        fstatus = 503;
        after = 1;
    }
    if (fstatus && !after) {
        if (fstatus == 429) fa->st.throttled++;
        fa_err(out, fstatus, fstatus * 100000, fstatus == 429 ? "too many requests" : "unavailable");
        snprintf(out->retry_after, sizeof out->retry_after, "%s", fra);
        return;
    }
    if (is_post_orders) {
        fa_post(fa, body, out);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/orders:by_client_order_id") == 0) {
        const char *c = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "client_order_id");
        fa_order_t *o = c ? fa_by_coid(fa, c) : NULL;
        if (!o) fa_err(out, 404, 40410000, "order not found");
        else {
            char b[2048];
            fa_json_order(o, b, sizeof b);
            fa_set(out, 200, b);
        }
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/orders") == 0) {
        fa_list(fa, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "status"), out);
    } else if (strcmp(method, "DELETE") == 0 && strcmp(url, "/v2/orders") == 0) {
        size_t cap = 64 + fa->n * 80, k2 = 0;
        char *b = malloc(cap);
        if (!b) abort();
        b[k2++] = '[';
        for (size_t i = 0; i < fa->n; i++) {
            if (fa->o[i].gone || !fa_open(&fa->o[i])) continue;
            snprintf(fa->o[i].status, sizeof fa->o[i].status, "canceled");
            fa->o[i].updated = qb_time_now();
            k2 += (size_t)snprintf(b + k2, cap - k2, "%s{\"id\":\"%s\",\"status\":200}",
                                   k2 > 1 ? "," : "", fa->o[i].id);
        }
        snprintf(b + k2, cap - k2, "]");
        out->status = 207;
        free(out->body);
        out->body = b;
    } else if (strncmp(url, "/v2/orders/", 11) == 0) {
        fa_order_t *o = fa_by_id(fa, url + 11);
        if (!o) fa_err(out, 404, 40410000, "order not found");
        else if (strcmp(method, "GET") == 0) {
            char b[2048];
            fa_json_order(o, b, sizeof b);
            fa_set(out, 200, b);
        } else if (strcmp(method, "DELETE") == 0) {
            if (!fa_open(o)) fa_err(out, 422, 42210000, "order is not cancelable");
            else {
                snprintf(o->status, sizeof o->status, "canceled");
                o->updated = qb_time_now();
                fa_set(out, 204, "");
            }
        } else if (strcmp(method, "PATCH") == 0) {
            fa_patch(fa, o, body, out);
        } else fa_err(out, 405, 40500000, "method not allowed");
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/positions") == 0) {
        fa_positions(fa, out);
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2/account") == 0) {
        char b[256], c[40];
        qb_dec_format(fa->cash, c, sizeof c);
        snprintf(b, sizeof b, "{\"id\":\"fake\",\"status\":\"ACTIVE\",\"currency\":\"USD\",\"cash\":\"%s\","
                 "\"equity\":\"%s\",\"buying_power\":\"%s\"}", c, c, c);
        fa_set(out, 200, b);
    } else {
        fa_err(out, 404, 40400000, "not found");
    }
    if (fstatus) { /* applied, then the response is "lost" */
        fa_err(out, fstatus, fstatus * 100000, "unavailable");
        snprintf(out->retry_after, sizeof out->retry_after, "%s", fra);
    }
}

static enum MHD_Result fa_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls) {
    (void)version;
    qb_fake_alpaca_t *fa = cls;
    fa_req_t *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) abort();
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        char *nb = realloc(r->body, r->len + *upload_size + 1);
        if (!nb) abort();
        memcpy(nb + r->len, upload, *upload_size);
        r->body = nb;
        r->len += *upload_size;
        r->body[r->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    fa_out_t out = {200, NULL, ""};
    pthread_mutex_lock(&fa->mu);
    fa_route(fa, conn, method, url, r->body, &out);
    size_t cnt = 0;
    for (size_t i = 0; i < fa->n; i++) cnt += !fa->o[i].gone;
    fa->st.orders = cnt;
    pthread_mutex_unlock(&fa->mu);
    free(r->body);
    free(r);
    *req_cls = NULL;
    const char *b = out.body ? out.body : "";
    struct MHD_Response *mr = MHD_create_response_from_buffer(strlen(b), (void *)b,
                                                              MHD_RESPMEM_MUST_COPY);
    free(out.body);
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", "application/json");
    if (out.retry_after[0]) MHD_add_response_header(mr, "Retry-After", out.retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)out.status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void fa_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    if (req_cls && *req_cls) {
        fa_req_t *r = *req_cls;
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

static void *fa_filler(void *arg) {
    qb_fake_alpaca_t *fa = arg;
    while (!fa->stop) {
        usleep((useconds_t)fa->cfg.auto_fill_ms * 1000);
        pthread_mutex_lock(&fa->mu);
        fa->price += 1000000; /* +0.01 a tick */
        for (size_t i = 0; i < fa->n; i++) {
            fa_order_t *o = &fa->o[i];
            if (o->gone || !fa_open(o)) continue;
            int buy = strcmp(o->side, "buy") == 0;
            if (strcmp(o->type, "limit") == 0 && (buy ? fa->price > o->limit : fa->price < o->limit))
                continue;
            if (strcmp(o->type, "stop") == 0 || strcmp(o->type, "stop_limit") == 0) continue;
            qb_dec_t left = o->qty - o->filled, q = (left / 2) - (left / 2) % 100000000LL;
            if (q < 100000000LL) q = left < 100000000LL ? left : 100000000LL;
            qb_dec_t px = strcmp(o->type, "limit") == 0 ? o->limit : fa->price;
            (void)fa_fill_locked(fa, o, q, px);
        }
        pthread_mutex_unlock(&fa->mu);
    }
    return NULL;
}

qb_fake_alpaca_t *qb_fake_alpaca_start(const qb_fake_alpaca_cfg_t *cfg) {
    qb_fake_alpaca_t *fa = calloc(1, sizeof *fa);
    if (!fa) return NULL;
    qb_fake_alpaca_cfg_t dflt;
    memset(&dflt, 0, sizeof dflt);
    fa->cfg = cfg ? *cfg : dflt;
    snprintf(fa->key, sizeof fa->key, "%s", fa->cfg.key_id ? fa->cfg.key_id : "key");
    snprintf(fa->secret, sizeof fa->secret, "%s", fa->cfg.secret_key ? fa->cfg.secret_key : "secret");
    fa->price = fa_dec(fa->cfg.price ? fa->cfg.price : "100");
    fa->cash = fa_dec("1000000");
    pthread_mutex_init(&fa->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)fa->cfg.port);
    fa->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
                             NULL, NULL, fa_handle, fa, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, fa_completed, fa,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!fa->d) {
        pthread_mutex_destroy(&fa->mu);
        free(fa);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(fa->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(fa->url, sizeof fa->url, "http://127.0.0.1:%u", (unsigned)info->port);
    if (fa->cfg.auto_fill_ms > 0 && pthread_create(&fa->filler, NULL, fa_filler, fa) == 0)
        fa->has_filler = 1;
    return fa;
}

void qb_fake_alpaca_stop(qb_fake_alpaca_t *fa) {
    if (!fa) return;
    fa->stop = 1;
    if (fa->has_filler) pthread_join(fa->filler, NULL);
    MHD_stop_daemon(fa->d);
    pthread_mutex_destroy(&fa->mu);
    free(fa->o);
    free(fa);
}

const char *qb_fake_alpaca_url(const qb_fake_alpaca_t *fa) { return fa->url; }

int qb_fake_alpaca_fill(qb_fake_alpaca_t *fa, const char *coid, const char *qty,
                        const char *price) {
    pthread_mutex_lock(&fa->mu);
    fa_order_t *o = fa_by_coid(fa, coid);
    int rc = o ? fa_fill_locked(fa, o, fa_dec(qty), fa_dec(price)) : -1;
    pthread_mutex_unlock(&fa->mu);
    return rc;
}

int qb_fake_alpaca_set_status(qb_fake_alpaca_t *fa, const char *coid, const char *status) {
    pthread_mutex_lock(&fa->mu);
    fa_order_t *o = fa_by_coid(fa, coid);
    if (o) {
        snprintf(o->status, sizeof o->status, "%s", status);
        o->updated = qb_time_now();
    }
    pthread_mutex_unlock(&fa->mu);
    return o ? 0 : -1;
}

int qb_fake_alpaca_forget(qb_fake_alpaca_t *fa, const char *coid) {
    pthread_mutex_lock(&fa->mu);
    fa_order_t *o = fa_by_coid(fa, coid);
    if (o) o->gone = 1;
    pthread_mutex_unlock(&fa->mu);
    return o ? 0 : -1;
}

void qb_fake_alpaca_fault(qb_fake_alpaca_t *fa, const char *method, int n, int status,
                          const char *retry_after, int after_effect) {
    pthread_mutex_lock(&fa->mu);
    if (fa->nfaults < sizeof fa->faults / sizeof fa->faults[0]) {
        fa_fault_t *f = &fa->faults[fa->nfaults++];
        snprintf(f->method, sizeof f->method, "%s", method);
        f->n = n;
        f->status = status;
        f->after = after_effect;
        snprintf(f->retry_after, sizeof f->retry_after, "%s", retry_after ? retry_after : "");
    }
    pthread_mutex_unlock(&fa->mu);
}

void qb_fake_alpaca_stats(qb_fake_alpaca_t *fa, qb_fake_alpaca_stats_t *out) {
    pthread_mutex_lock(&fa->mu);
    size_t cnt = 0;
    for (size_t i = 0; i < fa->n; i++) cnt += !fa->o[i].gone;
    fa->st.orders = cnt;
    *out = fa->st;
    pthread_mutex_unlock(&fa->mu);
}

int qb_fake_alpaca_order(qb_fake_alpaca_t *fa, const char *coid, char *status, size_t status_cap,
                         char *filled, size_t filled_cap) {
    pthread_mutex_lock(&fa->mu);
    fa_order_t *o = fa_by_coid(fa, coid);
    if (o) {
        snprintf(status, status_cap, "%s", o->status);
        qb_dec_format(o->filled, filled, filled_cap);
    }
    pthread_mutex_unlock(&fa->mu);
    return o ? 0 : -1;
}

static volatile sig_atomic_t fa_run = 1;
static void fa_sig(int s) {
    (void)s;
    fa_run = 0;
}

int qb_fake_alpaca_serve(const char *url_file) {
    qb_fake_alpaca_cfg_t c;
    memset(&c, 0, sizeof c);
    const char *v;
    if ((v = getenv("QB_FAKE_ALPACA_FILL_MS"))) c.auto_fill_ms = atoi(v);
    if ((v = getenv("QB_FAKE_ALPACA_POST_FAIL_EVERY"))) c.post_fail_every = atoi(v);
    if ((v = getenv("QB_FAKE_ALPACA_THROTTLE_EVERY"))) c.throttle_every = atoi(v);
    if ((v = getenv("QB_FAKE_ALPACA_PORT"))) c.port = atoi(v);
    signal(SIGTERM, fa_sig);
    signal(SIGINT, fa_sig);
    qb_fake_alpaca_t *fa = qb_fake_alpaca_start(&c);
    if (!fa) {
        fprintf(stderr, "fake alpaca: cannot start\n");
        return 1;
    }
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", url_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", fa->url) < 0 || fclose(f) != 0 || rename(tmp, url_file) != 0) {
        fprintf(stderr, "fake alpaca: cannot write %s\n", url_file);
        qb_fake_alpaca_stop(fa);
        return 1;
    }
    fprintf(stderr, "fake alpaca on %s\n", fa->url);
    while (fa_run) usleep(50 * 1000);
    qb_fake_alpaca_stop(fa);
    return 0;
}
