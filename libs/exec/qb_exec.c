/* qb_exec.c — the execution order state machine, reports, brackets/OCO,
 * rollout sizing, the open-order book and the audit hash chain
 * (qb_exec.h). */
#include "exec/qb_exec.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QB_EXEC_ONE 100000000LL /* 1.0 in qb_dec_t */

static const char *const qb_exec_ev_names[] = {"UNKNOWN",  "SUBMITTED", "ACCEPTED", "FILL",
                                               "CANCELED", "REJECTED",  "EXPIRED"};

const char *qb_exec_ev_kind_name(qb_exec_ev_kind_t k) {
    return (k >= QB_EXEC_EV_SUBMITTED && k <= QB_EXEC_EV_EXPIRED) ? qb_exec_ev_names[k]
                                                                  : "UNKNOWN";
}

int qb_exec_order_is_open(const qb_exec_order_t *o) {
    return o->o.status == QB_ORDER_STATUS_SUBMITTED || o->o.status == QB_ORDER_STATUS_ACCEPTED ||
           o->o.status == QB_ORDER_STATUS_PARTIALLY_FILLED;
}

static void qb_exec_rep_base(const qb_exec_order_t *o, qb_order_status_t prev, qb_time_t ts,
                             qb_exec_report_t *rep) {
    memset(rep, 0, sizeof *rep);
    rep->status = o->o.status;
    rep->prev_status = prev;
    rep->cum_qty = o->o.filled_qty;
    rep->avg_price = o->o.avg_fill_price;
    rep->leaves_qty = qb_order_status_is_terminal(o->o.status) ? 0 : o->o.qty - o->o.filled_qty;
    rep->sequence = o->seq;
    rep->ts = ts;
    rep->reason_code = o->reason_code;
    snprintf(rep->reason_text, sizeof rep->reason_text, "%s", o->reason_text);
}

qb_err_t qb_exec_order_created(qb_exec_order_t *o, qb_time_t ts, qb_exec_report_t *rep) {
    if (o->o.status != QB_ORDER_STATUS_NEW || o->seq != 0) return QB_ERR_STATE;
    o->seq = 1;
    o->o.updated_ts = ts;
    qb_exec_rep_base(o, (qb_order_status_t)0, ts, rep);
    return QB_OK;
}

qb_err_t qb_exec_order_apply(qb_exec_order_t *o, const qb_exec_event_t *ev,
                             qb_exec_report_t *rep, char *errstr, size_t errstr_size) {
    if (strcmp(ev->order_id, o->o.id) != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "event for order %s applied to %s",
                          ev->order_id, o->o.id);
    qb_exec_order_t n = *o;
    qb_order_status_t to;
    qb_dec_t fill_notional = 0;
    switch (ev->kind) {
    case QB_EXEC_EV_SUBMITTED: to = QB_ORDER_STATUS_SUBMITTED; break;
    case QB_EXEC_EV_ACCEPTED: to = QB_ORDER_STATUS_ACCEPTED; break;
    case QB_EXEC_EV_CANCELED: to = QB_ORDER_STATUS_CANCELED; break;
    case QB_EXEC_EV_REJECTED: to = QB_ORDER_STATUS_REJECTED; break;
    case QB_EXEC_EV_EXPIRED: to = QB_ORDER_STATUS_EXPIRED; break;
    case QB_EXEC_EV_FILL: {
        qb_dec_t cum;
        if (ev->qty <= 0 || ev->price <= 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "order %s: fill %s with qty or price not > 0", o->o.id, ev->fill_id);
        if (qb_dec_add(o->o.filled_qty, ev->qty, &cum) || cum > o->o.qty)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "order %s: fill %s would overfill the order", o->o.id, ev->fill_id);
        if (qb_dec_mul(ev->qty, ev->price, &fill_notional, QB_ROUND_HALF_EVEN) ||
            qb_dec_add(n.notional, fill_notional, &n.notional) ||
            qb_dec_add(n.commission, ev->commission, &n.commission) ||
            qb_dec_div(n.notional, cum, &n.o.avg_fill_price, QB_ROUND_HALF_EVEN))
            return qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW, "order %s: fill %s overflows",
                              o->o.id, ev->fill_id);
        n.o.filled_qty = cum;
        to = cum == o->o.qty ? QB_ORDER_STATUS_FILLED : QB_ORDER_STATUS_PARTIALLY_FILLED;
        break;
    }
    default:
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: unknown event %d",
                          o->o.id, (int)ev->kind);
    }
    if (!qb_order_transition_ok(o->o.status, to))
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "order %s: illegal transition %s -> %s (event %s)", o->o.id,
                          qb_order_status_name(o->o.status), qb_order_status_name(to),
                          qb_exec_ev_kind_name(ev->kind));
    n.o.status = to;
    n.o.updated_ts = ev->ts;
    n.seq = o->seq + 1;
    if (ev->broker_order_id[0])
        snprintf(n.broker_order_id, sizeof n.broker_order_id, "%s", ev->broker_order_id);
    if (ev->kind == QB_EXEC_EV_CANCELED || ev->kind == QB_EXEC_EV_REJECTED ||
        ev->kind == QB_EXEC_EV_EXPIRED) {
        n.reason_code = ev->reason_code;
        snprintf(n.reason_text, sizeof n.reason_text, "%s", ev->reason_text);
    }
    qb_exec_rep_base(&n, o->o.status, ev->ts, rep);
    if (ev->kind == QB_EXEC_EV_FILL) {
        rep->fill_qty = ev->qty;
        rep->fill_price = ev->price;
        rep->commission = ev->commission;
        snprintf(rep->fill_id, sizeof rep->fill_id, "%s", ev->fill_id);
        rep->reason_code = 0;
        rep->reason_text[0] = '\0';
    } else if (ev->kind != QB_EXEC_EV_CANCELED && ev->kind != QB_EXEC_EV_REJECTED &&
               ev->kind != QB_EXEC_EV_EXPIRED) {
        rep->reason_code = 0;
        rep->reason_text[0] = '\0';
    }
    *o = n;
    return QB_OK;
}

qb_err_t qb_exec_order_validate(const qb_exec_order_t *o, char *errstr, size_t errstr_size) {
    const qb_order_t *r = &o->o;
    if (!qb_uuid_valid(r->id))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order_id '%.40s' is not a UUID",
                          r->id);
    if (!r->account[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: account is empty", r->id);
    if (!r->symbol.s[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: symbol is empty", r->id);
    if (r->side != QB_SIDE_BUY && r->side != QB_SIDE_SELL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: side is not set", r->id);
    if (r->type < QB_ORDER_TYPE_MARKET || r->type > QB_ORDER_TYPE_STOP_LIMIT)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: unknown order type",
                          r->id);
    if (r->tif < QB_TIF_DAY || r->tif > QB_TIF_FOK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "order %s: time in force must be DAY, GTC, IOC or FOK", r->id);
    if (r->qty <= 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s: qty must be > 0", r->id);
    int need_limit = r->type == QB_ORDER_TYPE_LIMIT || r->type == QB_ORDER_TYPE_STOP_LIMIT;
    int need_stop = r->type == QB_ORDER_TYPE_STOP || r->type == QB_ORDER_TYPE_STOP_LIMIT;
    if (need_limit ? r->limit_price <= 0 : r->limit_price != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          need_limit ? "order %s: limit_price must be > 0 for %s"
                                     : "order %s: limit_price given for a %s order",
                          r->id, qb_order_type_name(r->type));
    if (need_stop ? r->stop_price <= 0 : r->stop_price != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          need_stop ? "order %s: stop_price must be > 0 for %s"
                                    : "order %s: stop_price given for a %s order",
                          r->id, qb_order_type_name(r->type));
    if (o->take_profit < 0 || o->stop_loss < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "order %s: bracket prices must be >= 0", r->id);
    if ((o->take_profit || o->stop_loss) && o->leg != QB_EXEC_LEG_ENTRY)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "order %s: take_profit/stop_loss need leg ENTRY", r->id);
    return QB_OK;
}

static void qb_exec_leg_id(const char *entry_id, const char *suffix, char out[QB_UUID_STRLEN]) {
    char name[96];
    int n = snprintf(name, sizeof name, "%s|%s", entry_id, suffix);
    qb_uuid_v5(QB_EXEC_NS, name, (size_t)n, out);
}

size_t qb_exec_bracket_legs(const qb_exec_order_t *e, qb_time_t ts, qb_exec_order_t out[2]) {
    if (e->leg != QB_EXEC_LEG_ENTRY || e->legs_placed || e->o.filled_qty <= 0) return 0;
    if (!(e->o.status == QB_ORDER_STATUS_FILLED || e->o.status == QB_ORDER_STATUS_CANCELED ||
          e->o.status == QB_ORDER_STATUS_EXPIRED))
        return 0;
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        qb_dec_t px = k == 0 ? e->take_profit : e->stop_loss;
        if (px <= 0) continue;
        qb_exec_order_t *l = &out[n++];
        memset(l, 0, sizeof *l);
        qb_exec_leg_id(e->o.id, k == 0 ? "tp" : "sl", l->o.id);
        snprintf(l->o.account, sizeof l->o.account, "%s", e->o.account);
        l->o.symbol = e->o.symbol;
        l->o.side = e->o.side == QB_SIDE_BUY ? QB_SIDE_SELL : QB_SIDE_BUY;
        l->o.type = k == 0 ? QB_ORDER_TYPE_LIMIT : QB_ORDER_TYPE_STOP;
        l->o.tif = QB_TIF_GTC;
        l->o.qty = e->o.filled_qty;
        if (k == 0) l->o.limit_price = px;
        else l->o.stop_price = px;
        l->o.status = QB_ORDER_STATUS_NEW;
        l->o.created_ts = l->o.updated_ts = ts;
        snprintf(l->strategy_id, sizeof l->strategy_id, "%s", e->strategy_id);
        snprintf(l->cause_id, sizeof l->cause_id, "%s", e->o.id);
        l->cause_kind = QB_EXEC_CAUSE_BRACKET;
        l->leg = k == 0 ? QB_EXEC_LEG_TAKE_PROFIT : QB_EXEC_LEG_STOP_LOSS;
        l->mode = e->mode;
        snprintf(l->parent_id, sizeof l->parent_id, "%s", e->o.id);
        snprintf(l->oco_group, sizeof l->oco_group, "%s", e->o.id);
        snprintf(l->client_tag, sizeof l->client_tag, "%s", e->client_tag);
        snprintf(l->broker, sizeof l->broker, "%s", e->broker);
        l->requested_qty = l->o.qty;
        l->reference_price = px;
    }
    return n;
}

int qb_exec_oco_sibling(const qb_exec_order_t *filled, const qb_exec_order_t *other) {
    if (!filled->oco_group[0] || strcmp(filled->oco_group, other->oco_group) != 0) return 0;
    if (strcmp(filled->o.account, other->o.account) != 0) return 0;
    if (strcmp(filled->o.id, other->o.id) == 0) return 0;
    return qb_exec_order_is_open(other) || other->o.status == QB_ORDER_STATUS_NEW;
}

void qb_exec_replace_id(const char *command_id, char out[QB_UUID_STRLEN]) {
    char name[96];
    int n = snprintf(name, sizeof name, "replace|%s", command_id);
    qb_uuid_v5(QB_EXEC_NS, name, (size_t)n, out);
}

qb_dec_t qb_exec_rollout_qty(qb_dec_t qty, int pct) {
    if (pct < 1 || pct > 100) pct = 100;
    /* qty <= 9.2e18 and pct <= 100: in 128 bits no overflow. */
    __int128 v = (__int128)qty * pct / 100;
    qb_dec_t r = (qb_dec_t)v;
    if (qty % QB_EXEC_ONE == 0) r -= r % QB_EXEC_ONE;
    return r;
}

void qb_exec_fill_id_cum(const char *order_id, qb_dec_t cum_after, char out[QB_FILL_ID_MAX + 1]) {
    snprintf(out, QB_FILL_ID_MAX + 1, "%.36s/%lld", order_id, (long long)cum_after);
}

/* ---- book: open addressing on the order id ------------------------------------ */

struct qb_exec_book_s {
    qb_exec_order_t **slots;
    size_t cap, n, used; /* used counts tombstones too */
};

static qb_exec_order_t qb_exec_tomb; /* address marks a deleted slot */

static uint64_t qb_exec_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

qb_exec_book_t *qb_exec_book_new(void) {
    qb_exec_book_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->cap = 64;
    b->slots = calloc(b->cap, sizeof *b->slots);
    if (!b->slots) {
        free(b);
        return NULL;
    }
    return b;
}

void qb_exec_book_destroy(qb_exec_book_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i] && b->slots[i] != &qb_exec_tomb) free(b->slots[i]);
    free(b->slots);
    free(b);
}

static size_t qb_exec_book_find(const qb_exec_book_t *b, const char *id, int *found) {
    size_t mask = b->cap - 1, i = (size_t)qb_exec_hash(id) & mask, tomb = (size_t)-1;
    for (;;) {
        qb_exec_order_t *s = b->slots[i];
        if (!s) {
            *found = 0;
            return tomb != (size_t)-1 ? tomb : i;
        }
        if (s == &qb_exec_tomb) {
            if (tomb == (size_t)-1) tomb = i;
        } else if (strcmp(s->o.id, id) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int qb_exec_book_grow(qb_exec_book_t *b) {
    size_t ncap = b->n * 4 > b->cap ? b->cap * 2 : b->cap; /* else just clean tombstones */
    qb_exec_order_t **old = b->slots;
    size_t ocap = b->cap;
    b->slots = calloc(ncap, sizeof *b->slots);
    if (!b->slots) {
        b->slots = old;
        return -1;
    }
    b->cap = ncap;
    b->used = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i] || old[i] == &qb_exec_tomb) continue;
        int f;
        size_t j = qb_exec_book_find(b, old[i]->o.id, &f);
        b->slots[j] = old[i];
        b->used++;
    }
    free(old);
    return 0;
}

qb_exec_order_t *qb_exec_book_put(qb_exec_book_t *b, const qb_exec_order_t *o) {
    int found;
    size_t i = qb_exec_book_find(b, o->o.id, &found);
    if (found) {
        *b->slots[i] = *o;
        return b->slots[i];
    }
    if ((b->used + 1) * 2 > b->cap) {
        if (qb_exec_book_grow(b)) return NULL;
        i = qb_exec_book_find(b, o->o.id, &found);
    }
    qb_exec_order_t *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *o;
    if (!b->slots[i]) b->used++;
    b->slots[i] = c;
    b->n++;
    return c;
}

qb_exec_order_t *qb_exec_book_get(const qb_exec_book_t *b, const char *id) {
    int found;
    size_t i = qb_exec_book_find(b, id, &found);
    return found ? b->slots[i] : NULL;
}

void qb_exec_book_remove(qb_exec_book_t *b, const char *id) {
    int found;
    size_t i = qb_exec_book_find(b, id, &found);
    if (!found) return;
    free(b->slots[i]);
    b->slots[i] = &qb_exec_tomb;
    b->n--;
}

size_t qb_exec_book_count(const qb_exec_book_t *b) { return b->n; }

void qb_exec_book_each(const qb_exec_book_t *b, void (*cb)(qb_exec_order_t *o, void *ctx),
                       void *ctx) {
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i] && b->slots[i] != &qb_exec_tomb) cb(b->slots[i], ctx);
}

qb_exec_order_t **qb_exec_book_list(const qb_exec_book_t *b, size_t *n) {
    *n = 0;
    if (!b->n) return NULL;
    qb_exec_order_t **v = malloc(b->n * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i] && b->slots[i] != &qb_exec_tomb) v[(*n)++] = b->slots[i];
    return v;
}

/* ---- audit -------------------------------------------------------------------------- */

static void qb_exec_ns_add(EVP_MD_CTX *c, const char *s) {
    char len[24];
    size_t l = s ? strlen(s) : 0;
    int n = snprintf(len, sizeof len, "%zu:", l);
    EVP_DigestUpdate(c, len, (size_t)n);
    if (l) EVP_DigestUpdate(c, s, l);
    EVP_DigestUpdate(c, ",", 1);
}

void qb_exec_audit_hash(const char *prev_hash, const char *account, int64_t seq, int64_t at_ns,
                        const char *order_id, const char *event, const char *detail,
                        char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char num[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) {
        out[0] = '\0';
        return;
    }
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    qb_exec_ns_add(c, prev_hash);
    qb_exec_ns_add(c, account);
    snprintf(num, sizeof num, "%lld", (long long)seq);
    qb_exec_ns_add(c, num);
    snprintf(num, sizeof num, "%lld", (long long)at_ns);
    qb_exec_ns_add(c, num);
    qb_exec_ns_add(c, order_id);
    qb_exec_ns_add(c, event);
    qb_exec_ns_add(c, detail);
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

qb_err_t qb_exec_audit_check(int64_t last_seq, const char *last_hash,
                             const qb_exec_audit_row_t *row, char *why, size_t why_size) {
    if (row->seq != last_seq + 1) {
        if (row->seq > last_seq + 1)
            return qb_err_set(why, why_size, QB_ERR_CONFLICT,
                              "seq gap: rows %lld..%lld missing (deleted)",
                              (long long)(last_seq + 1), (long long)(row->seq - 1));
        return qb_err_set(why, why_size, QB_ERR_CONFLICT, "seq %lld does not follow %lld",
                          (long long)row->seq, (long long)last_seq);
    }
    if (!row->prev_hash || strcmp(row->prev_hash, last_hash) != 0)
        return qb_err_set(why, why_size, QB_ERR_CONFLICT,
                          "prev_hash does not match the previous row's hash");
    char h[65];
    qb_exec_audit_hash(row->prev_hash, row->account, row->seq, row->at_ns, row->order_id,
                       row->event, row->detail, h);
    if (!row->hash || strcmp(h, row->hash) != 0)
        return qb_err_set(why, why_size, QB_ERR_CONFLICT, "hash mismatch: the row was changed");
    return QB_OK;
}
