/* qb_exec_paper.c — the paper broker: one qb_sim + qb_portfolio per
 * account, driven by live bars; sim events become execution events
 * (qb_exec_broker.h). Owns its sims, portfolios and order records.
 *
 * Not before: an order decided on bar t (qb_exec_order_t.not_before = t)
 * must be matched from the bar AFTER t, as in the backtest. The sim
 * matches an order against the next bar it is given, so an order that
 * arrives before the sim has seen bar t (this process's bar feed behind
 * the producer of the order: a restart, a broker outage, CPU starvation)
 * would fill inside bar t. Such an order is HELD (accepted, not in the
 * sim) and placed by qb_exec_paper_on_bar: before a bar after t is
 * matched, or right after bar t itself. Cancel and kill switch reach held
 * orders too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/qb_exec_broker.h"

typedef struct pp_acct_s {
    char name[QB_ACCOUNT_MAX + 1];
    qb_portfolio_t *pf;
    qb_sim_t *sim;
} pp_acct_t;

typedef struct pp_ord_s {
    char id[QB_UUID_STRLEN];
    int acct;
    uint64_t sim_id;       /* 0 once no longer working */
    qb_dec_t base_cum;     /* filled before this sim order (restore) */
    qb_dec_t base_notional;
    qb_dec_t qty;          /* whole order */
    qb_dec_t cum, notional;
    qb_order_status_t status;
    int held;              /* waiting for its not_before bar (above) */
    uint32_t sym;          /* the account portfolio's symbol id */
    qb_exec_order_t spec;  /* what was submitted (for status) */
} pp_ord_t;

typedef struct pp_s {
    qb_exec_paper_config_t cfg;
    pp_acct_t *accts;
    size_t nacct, capacct;
    pp_ord_t *ords;        /* index + 1 = sim tag */
    size_t nord, capord;
    size_t *idx;           /* open addressing: order id -> index + 1 */
    size_t idxcap;
    qb_exec_event_t *pend; /* events of the last submit / cancel */
    size_t npend, cappend;
    size_t *held;          /* indexes of held orders (unordered) */
    size_t nheld, capheld;
    struct pp_last_s {     /* open addressing: symbol -> newest bar given */
        char sym[QB_SYMBOL_MAX + 1];
        qb_time_t ts;
    } *last;
    size_t nlast, lastcap;
} pp_t;

static uint64_t pp_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static pp_ord_t *pp_find(const pp_t *p, const char *id) {
    if (!p->idxcap) return NULL;
    for (size_t i = (size_t)pp_hash(id) & (p->idxcap - 1);; i = (i + 1) & (p->idxcap - 1)) {
        if (!p->idx[i]) return NULL;
        if (strcmp(p->ords[p->idx[i] - 1].id, id) == 0) return &p->ords[p->idx[i] - 1];
    }
}

static int pp_index(pp_t *p, size_t k) {
    if ((p->nord + 1) * 2 > p->idxcap) {
        size_t ncap = p->idxcap ? p->idxcap * 2 : 256;
        size_t *ni = calloc(ncap, sizeof *ni);
        if (!ni) return -1;
        for (size_t j = 0; j < p->nord; j++) {
            if (j == k) continue;
            size_t i = (size_t)pp_hash(p->ords[j].id) & (ncap - 1);
            while (ni[i]) i = (i + 1) & (ncap - 1);
            ni[i] = j + 1;
        }
        free(p->idx);
        p->idx = ni;
        p->idxcap = ncap;
    }
    size_t i = (size_t)pp_hash(p->ords[k].id) & (p->idxcap - 1);
    while (p->idx[i]) i = (i + 1) & (p->idxcap - 1);
    p->idx[i] = k + 1;
    return 0;
}

static int pp_push(qb_exec_event_t **v, size_t *n, size_t *cap, const qb_exec_event_t *e) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        qb_exec_event_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *e;
    return 0;
}

static pp_acct_t *pp_acct(pp_t *p, const char *name, int create, char *errstr,
                          size_t errstr_size) {
    for (size_t i = 0; i < p->nacct; i++)
        if (strcmp(p->accts[i].name, name) == 0) return &p->accts[i];
    if (!create) return NULL;
    if (p->nacct == p->capacct) {
        size_t nc = p->capacct ? p->capacct * 2 : 8;
        pp_acct_t *na = realloc(p->accts, nc * sizeof *na);
        if (!na) {
            qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            return NULL;
        }
        p->accts = na;
        p->capacct = nc;
    }
    pp_acct_t *a = &p->accts[p->nacct];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    qb_portfolio_config_t pc = p->cfg.pf;
    snprintf(pc.account, sizeof pc.account, "%s", name);
    if (qb_portfolio_new(&pc, &a->pf, errstr, errstr_size)) return NULL;
    if (qb_sim_new(&p->cfg.sim, a->pf, &a->sim, errstr, errstr_size)) {
        qb_portfolio_destroy(a->pf);
        return NULL;
    }
    p->nacct++;
    return a;
}

/* Translate the sim's events of account a into execution events. */
static void pp_drain(pp_t *p, pp_acct_t *a, qb_exec_event_t **evs, size_t *n, size_t *cap) {
    size_t ne = 0;
    const qb_sim_event_t *se = qb_sim_events(a->sim, &ne);
    for (size_t i = 0; i < ne; i++) {
        const qb_sim_event_t *s = &se[i];
        if (!s->order_id || !s->tag || s->tag > p->nord) continue; /* refused at submit */
        pp_ord_t *r = &p->ords[s->tag - 1];
        qb_exec_event_t e;
        memset(&e, 0, sizeof e);
        snprintf(e.order_id, sizeof e.order_id, "%s", r->id);
        e.ts = s->ts;
        switch (s->kind) {
        case QB_SIM_EV_FILL: {
            qb_dec_t fn = 0;
            e.kind = QB_EXEC_EV_FILL;
            e.qty = s->qty;
            e.price = s->price;
            e.commission = s->commission;
            r->cum = r->base_cum + s->filled_qty;
            (void)qb_dec_mul(s->qty, s->price, &fn, QB_ROUND_HALF_EVEN);
            r->notional += fn;
            qb_exec_fill_id_cum(r->id, r->cum, e.fill_id);
            r->status = r->cum >= r->qty ? QB_ORDER_STATUS_FILLED
                                         : QB_ORDER_STATUS_PARTIALLY_FILLED;
            break;
        }
        case QB_SIM_EV_REJECTED:
            e.kind = r->cum > 0 ? QB_EXEC_EV_CANCELED : QB_EXEC_EV_REJECTED;
            e.reason_code = s->reason == QB_PF_REJECT_INSUFFICIENT_BUYING_POWER
                                ? QB_EXEC_REASON_INSUFFICIENT_FUNDS
                                : QB_EXEC_REASON_BROKER_REJECT;
            snprintf(e.reason_text, sizeof e.reason_text, "paper: %s", qb_pf_reject_str(s->reason));
            r->status = r->cum > 0 ? QB_ORDER_STATUS_CANCELED : QB_ORDER_STATUS_REJECTED;
            break;
        case QB_SIM_EV_CANCELED:
            e.kind = QB_EXEC_EV_CANCELED;
            if (s->reason != QB_PF_REJECT_NONE) {
                e.reason_code = QB_EXEC_REASON_BROKER_REJECT;
                snprintf(e.reason_text, sizeof e.reason_text, "paper: %s",
                         qb_pf_reject_str(s->reason));
            } else if (r->spec.o.tif == QB_TIF_IOC || r->spec.o.tif == QB_TIF_FOK) {
                e.reason_code = QB_EXEC_REASON_TIME_IN_FORCE;
                snprintf(e.reason_text, sizeof e.reason_text, "paper: %s not filled at once",
                         qb_tif_name(r->spec.o.tif));
            }
            r->status = QB_ORDER_STATUS_CANCELED;
            break;
        case QB_SIM_EV_EXPIRED:
            e.kind = QB_EXEC_EV_EXPIRED;
            e.reason_code = QB_EXEC_REASON_TIME_IN_FORCE;
            snprintf(e.reason_text, sizeof e.reason_text, "paper: DAY order past its day");
            r->status = QB_ORDER_STATUS_EXPIRED;
            break;
        default: continue;
        }
        if (qb_order_status_is_terminal(r->status)) r->sim_id = 0;
        (void)pp_push(evs, n, cap, &e);
    }
    qb_sim_events_clear(a->sim);
}

static void pp_fill_view(const pp_t *p, const pp_ord_t *r, qb_exec_border_t *out) {
    (void)p;
    memset(out, 0, sizeof *out);
    snprintf(out->client_order_id, sizeof out->client_order_id, "%s", r->id);
    snprintf(out->broker_order_id, sizeof out->broker_order_id, "paper-%s", r->id);
    out->symbol = r->spec.o.symbol;
    out->side = r->spec.o.side;
    out->type = r->spec.o.type;
    out->tif = r->spec.o.tif;
    out->status = r->status;
    out->qty = r->qty;
    out->filled_qty = r->cum;
    if (r->cum > 0)
        (void)qb_dec_div(r->notional, r->cum, &out->filled_avg_price, QB_ROUND_HALF_EVEN);
    out->limit_price = r->spec.o.limit_price;
    out->stop_price = r->spec.o.stop_price;
    snprintf(out->raw_status, sizeof out->raw_status, "%s", qb_order_status_name(r->status));
}

/* Order record r (index k) into its account's sim. */
static qb_err_t pp_place(pp_acct_t *a, const pp_ord_t *r, size_t k, uint64_t *id, char *why,
                         size_t why_size) {
    const qb_exec_order_t *o = &r->spec;
    qb_sim_order_t so = {.sym = r->sym, .side = o->o.side, .type = o->o.type, .tif = o->o.tif,
                         .qty = o->o.qty - o->o.filled_qty, .limit_price = o->o.limit_price,
                         .stop_price = o->o.stop_price, .flags = 0, .tag = k + 1};
    qb_time_t ts = o->o.updated_ts ? o->o.updated_ts : o->o.created_ts;
    return qb_sim_submit(a->sim, &so, ts, id, why, why_size);
}

static qb_err_t pp_submit_as(pp_t *p, const qb_exec_order_t *o, qb_exec_border_t *out,
                             char *errstr, size_t errstr_size) {
    pp_ord_t *ex = pp_find(p, o->o.id);
    if (ex) { /* the same client order id: the order we have */
        if (out) pp_fill_view(p, ex, out);
        return QB_OK;
    }
    pp_acct_t *a = pp_acct(p, o->o.account, 1, errstr, errstr_size);
    if (!a) return QB_ERR_INVALID;
    uint32_t sym;
    qb_err_t e = qb_portfolio_symbol(a->pf, o->o.symbol.s, &sym, errstr, errstr_size);
    if (e) return e;
    if (p->nord == p->capord) {
        size_t nc = p->capord ? p->capord * 2 : 256;
        pp_ord_t *no = realloc(p->ords, nc * sizeof *no);
        if (!no) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        p->ords = no;
        p->capord = nc;
    }
    size_t k = p->nord;
    pp_ord_t *r = &p->ords[k];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", o->o.id);
    r->acct = (int)(a - p->accts);
    r->qty = o->o.qty;
    r->base_cum = r->cum = o->o.filled_qty;
    r->base_notional = r->notional = o->notional;
    r->spec = *o;
    r->sym = sym;
    if (o->not_before > 0 && qb_sim_last_bar_ts(a->sim, sym) < o->not_before) {
        if (p->nheld == p->capheld) {
            size_t nc = p->capheld ? p->capheld * 2 : 64;
            size_t *nh = realloc(p->held, nc * sizeof *nh);
            if (!nh) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            p->held = nh;
            p->capheld = nc;
        }
        p->nord++;
        if (pp_index(p, k)) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        r->held = 1;
        r->status = o->o.filled_qty > 0 ? QB_ORDER_STATUS_PARTIALLY_FILLED
                                        : QB_ORDER_STATUS_ACCEPTED;
        p->held[p->nheld++] = k;
        if (out) pp_fill_view(p, r, out);
        return QB_OK;
    }
    uint64_t id = 0;
    char why[256] = "";
    e = pp_place(a, r, k, &id, why, sizeof why);
    if (e == QB_ERR_INVALID) {
        qb_sim_events_clear(a->sim);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "paper: %s", why);
    }
    if (e && e != QB_ERR_NOMEM) return qb_err_set(errstr, errstr_size, e, "paper: %s", why);
    p->nord++;
    if (pp_index(p, k)) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    r = &p->ords[k];
    r->sim_id = id;
    r->status = o->o.filled_qty > 0 ? QB_ORDER_STATUS_PARTIALLY_FILLED : QB_ORDER_STATUS_ACCEPTED;
    pp_drain(p, a, &p->pend, &p->npend, &p->cappend);
    if (out) pp_fill_view(p, r, out);
    return QB_OK;
}

/* Held orders of account a on symbol sym whose not_before is before ts
 * (strict) or at most ts: into the sim now. A refusal becomes a REJECTED
 * event (CANCELED when part of the order had filled before a restart). */
static void pp_release(pp_t *p, pp_acct_t *a, uint32_t sym, qb_time_t ts, int strict,
                       qb_exec_event_t **evs, size_t *n, size_t *cap) {
    int acct = (int)(a - p->accts);
    for (size_t i = 0; i < p->nheld;) {
        size_t k = p->held[i];
        pp_ord_t *r = &p->ords[k];
        qb_time_t nb = r->spec.not_before;
        if (r->acct != acct || r->sym != sym || (strict ? nb >= ts : nb > ts)) {
            i++;
            continue;
        }
        p->held[i] = p->held[--p->nheld];
        r->held = 0;
        uint64_t id = 0;
        char why[256] = "";
        qb_err_t e = pp_place(a, r, k, &id, why, sizeof why);
        if (e == QB_ERR_INVALID) {
            qb_exec_event_t ev;
            memset(&ev, 0, sizeof ev);
            snprintf(ev.order_id, sizeof ev.order_id, "%s", r->id);
            ev.ts = ts;
            ev.kind = r->cum > 0 ? QB_EXEC_EV_CANCELED : QB_EXEC_EV_REJECTED;
            ev.reason_code = strstr(why, "INSUFFICIENT_BUYING_POWER")
                                 ? QB_EXEC_REASON_INSUFFICIENT_FUNDS
                                 : QB_EXEC_REASON_BROKER_REJECT;
            snprintf(ev.reason_text, sizeof ev.reason_text, "paper: %.200s", why);
            r->status = r->cum > 0 ? QB_ORDER_STATUS_CANCELED : QB_ORDER_STATUS_REJECTED;
            qb_sim_events_clear(a->sim);
            (void)pp_push(evs, n, cap, &ev);
            continue;
        }
        r->sim_id = id;
        pp_drain(p, a, evs, n, cap);
    }
}

/* Cancel held order i of the held list (its CANCELED event, without a
 * reason, into *evs: the kill switch adds its own). */
static void pp_unhold(pp_t *p, size_t i, qb_time_t ts, qb_exec_event_t **evs, size_t *n,
                      size_t *cap) {
    pp_ord_t *r = &p->ords[p->held[i]];
    p->held[i] = p->held[--p->nheld];
    r->held = 0;
    r->status = QB_ORDER_STATUS_CANCELED;
    qb_exec_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.order_id, sizeof ev.order_id, "%s", r->id);
    ev.ts = ts;
    ev.kind = QB_EXEC_EV_CANCELED;
    (void)pp_push(evs, n, cap, &ev);
}

static qb_err_t pp_submit(void *impl, const qb_exec_order_t *o, qb_exec_border_t *out,
                          char *errstr, size_t errstr_size) {
    return pp_submit_as(impl, o, out, errstr, errstr_size);
}

static qb_err_t pp_cancel(void *impl, const qb_exec_order_t *o, char *errstr,
                          size_t errstr_size) {
    pp_t *p = impl;
    pp_ord_t *r = pp_find(p, o->o.id);
    if (!r) return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "paper: no order %s", o->o.id);
    if (r->held) {
        size_t i = 0;
        while (p->ords + p->held[i] != r) i++;
        pp_unhold(p, i, o->o.updated_ts, &p->pend, &p->npend, &p->cappend);
        return QB_OK;
    }
    if (!r->sim_id)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "paper: order %s is %s", o->o.id,
                          qb_order_status_name(r->status));
    pp_acct_t *a = &p->accts[r->acct];
    qb_time_t ts = o->o.updated_ts;
    if (qb_sim_cancel(a->sim, r->sim_id, ts) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "paper: order %s not working",
                          o->o.id);
    pp_drain(p, a, &p->pend, &p->npend, &p->cappend);
    return QB_OK;
}

static qb_err_t pp_replace(void *impl, const qb_exec_order_t *old, const qb_exec_order_t *nw,
                           qb_exec_border_t *out, char *errstr, size_t errstr_size) {
    (void)impl;
    (void)old;
    (void)nw;
    (void)out;
    return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                      "paper: no replace in place (cancel + new order)");
}

static qb_err_t pp_status(void *impl, const char *id, qb_exec_border_t *out, char *errstr,
                          size_t errstr_size) {
    pp_t *p = impl;
    pp_ord_t *r = pp_find(p, id);
    if (!r) return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "paper: no order %s", id);
    pp_fill_view(p, r, out);
    return QB_OK;
}

static qb_err_t pp_open(void *impl, qb_exec_border_t **out, size_t *n, char *errstr,
                        size_t errstr_size) {
    pp_t *p = impl;
    *out = NULL;
    *n = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < p->nord; i++) cnt += p->ords[i].sim_id != 0 || p->ords[i].held;
    if (!cnt) return QB_OK;
    *out = malloc(cnt * sizeof **out);
    if (!*out) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->nord; i++)
        if (p->ords[i].sim_id || p->ords[i].held) pp_fill_view(p, &p->ords[i], &(*out)[(*n)++]);
    return QB_OK;
}

static qb_err_t pp_positions(void *impl, const char *account, qb_exec_bposition_t **out,
                             size_t *n, char *errstr, size_t errstr_size) {
    pp_t *p = impl;
    *out = NULL;
    *n = 0;
    pp_acct_t *a = pp_acct(p, account, 0, NULL, 0);
    if (!a) return QB_OK;
    size_t ns = qb_portfolio_nsymbols(a->pf);
    if (!ns) return QB_OK;
    *out = malloc(ns * sizeof **out);
    if (!*out) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < ns; i++) {
        const qb_position_t *pos = qb_portfolio_position(a->pf, i);
        if (!pos || pos->qty == 0) continue;
        qb_exec_bposition_t *bp = &(*out)[(*n)++];
        memset(bp, 0, sizeof *bp);
        (void)qb_symbol_set(&bp->symbol, qb_portfolio_symbol_name(a->pf, i), NULL, 0);
        bp->qty = pos->qty;
        bp->avg_price = pos->avg_cost;
    }
    return QB_OK;
}

static qb_err_t pp_account(void *impl, const char *account, qb_exec_baccount_t *out,
                           char *errstr, size_t errstr_size) {
    pp_t *p = impl;
    pp_acct_t *a = pp_acct(p, account, 1, errstr, errstr_size);
    if (!a) return QB_ERR_INVALID;
    out->cash = qb_portfolio_cash(a->pf);
    out->equity = qb_portfolio_equity(a->pf);
    out->buying_power = qb_portfolio_buying_power(a->pf);
    return QB_OK;
}

static void pp_destroy(void *impl) {
    pp_t *p = impl;
    if (!p) return;
    for (size_t i = 0; i < p->nacct; i++) {
        qb_sim_destroy(p->accts[i].sim);
        qb_portfolio_destroy(p->accts[i].pf);
    }
    free(p->accts);
    free(p->ords);
    free(p->idx);
    free(p->pend);
    free(p->held);
    free(p->last);
    free(p);
}

static const qb_exec_broker_ops_t pp_ops = {
    .name = "sim", .submit = pp_submit, .cancel = pp_cancel, .replace = pp_replace,
    .order_status = pp_status, .open_orders = pp_open, .positions = pp_positions,
    .account = pp_account, .destroy = pp_destroy};

void qb_exec_paper_config_default(qb_exec_paper_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    qb_sim_config_default(&cfg->sim);
    qb_portfolio_config_default(&cfg->pf);
}

qb_err_t qb_exec_paper_new(const qb_exec_paper_config_t *cfg, qb_exec_broker_t **out,
                           char *errstr, size_t errstr_size) {
    *out = NULL;
    /* Validate by making (and dropping) one account's books. */
    qb_portfolio_t *pf = NULL;
    qb_sim_t *sim = NULL;
    qb_err_t e = qb_portfolio_new(&cfg->pf, &pf, errstr, errstr_size);
    if (!e) e = qb_sim_new(&cfg->sim, pf, &sim, errstr, errstr_size);
    qb_sim_destroy(sim);
    qb_portfolio_destroy(pf);
    if (e) return e;
    pp_t *p = calloc(1, sizeof *p);
    if (!p) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    p->cfg = *cfg;
    *out = qb_exec_broker_wrap(&pp_ops, p);
    if (!*out) {
        pp_destroy(p);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    return QB_OK;
}

static pp_t *pp_of(qb_exec_broker_t *b) {
    return strcmp(qb_exec_broker_name(b), "sim") == 0 ? qb_exec_broker_impl(b) : NULL;
}

qb_err_t qb_exec_paper_restore_fill(qb_exec_broker_t *b, const char *account,
                                    const char *symbol, qb_side_t side, qb_dec_t qty,
                                    qb_dec_t price, qb_dec_t commission, char *errstr,
                                    size_t errstr_size) {
    pp_t *p = pp_of(b);
    if (!p) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "not the paper broker");
    pp_acct_t *a = pp_acct(p, account, 1, errstr, errstr_size);
    if (!a) return QB_ERR_INVALID;
    uint32_t sym;
    qb_err_t e = qb_portfolio_symbol(a->pf, symbol, &sym, errstr, errstr_size);
    if (e) return e;
    return qb_portfolio_apply_fill(a->pf, sym, side, qty, price, commission, errstr, errstr_size);
}

qb_err_t qb_exec_paper_restore_order(qb_exec_broker_t *b, const qb_exec_order_t *o,
                                     char *errstr, size_t errstr_size) {
    pp_t *p = pp_of(b);
    if (!p) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "not the paper broker");
    return pp_submit_as(p, o, NULL, errstr, errstr_size);
}

static struct pp_last_s *pp_last_slot(const pp_t *p, const char *symbol) {
    if (!p->lastcap) return NULL;
    for (size_t i = (size_t)pp_hash(symbol) & (p->lastcap - 1);; i = (i + 1) & (p->lastcap - 1))
        if (!p->last[i].sym[0] || strcmp(p->last[i].sym, symbol) == 0) return &p->last[i];
}

/* Remember the newest bar of a symbol (every bar, whether an account knows
 * the symbol yet or not). Out of memory: not remembered (0 is returned). */
static void pp_last_note(pp_t *p, const char *symbol, qb_time_t ts) {
    if ((p->nlast + 1) * 2 > p->lastcap) {
        size_t nc = p->lastcap ? p->lastcap * 2 : 256;
        struct pp_last_s *nl = calloc(nc, sizeof *nl);
        if (!nl) return;
        struct pp_last_s *old = p->last;
        size_t oc = p->lastcap;
        p->last = nl;
        p->lastcap = nc;
        for (size_t i = 0; i < oc; i++)
            if (old[i].sym[0]) *pp_last_slot(p, old[i].sym) = old[i];
        free(old);
    }
    struct pp_last_s *e = pp_last_slot(p, symbol);
    if (!e->sym[0]) {
        snprintf(e->sym, sizeof e->sym, "%s", symbol);
        p->nlast++;
    }
    if (ts > e->ts) e->ts = ts;
}

qb_time_t qb_exec_paper_last_bar(qb_exec_broker_t *b, const char *symbol) {
    pp_t *p = pp_of(b);
    const struct pp_last_s *e = p ? pp_last_slot(p, symbol) : NULL;
    return e && e->sym[0] ? e->ts : 0;
}

qb_err_t qb_exec_paper_on_bar(qb_exec_broker_t *b, const qb_bar_t *bar, qb_exec_event_t **evs,
                              size_t *n, char *errstr, size_t errstr_size) {
    pp_t *p = pp_of(b);
    if (!p) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "not the paper broker");
    size_t cap = *n;
    qb_pf_bar_t pb = {.ts = bar->ts, .open = bar->open, .high = bar->high, .low = bar->low,
                      .close = bar->close, .volume = bar->volume};
    pp_last_note(p, bar->symbol.s, bar->ts);
    for (size_t i = 0; i < p->nacct; i++) {
        pp_acct_t *a = &p->accts[i];
        uint32_t sym;
        if (qb_portfolio_symbol_find(a->pf, bar->symbol.s, &sym) != QB_OK) continue;
        if (p->nheld && bar->ts > qb_sim_last_bar_ts(a->sim, sym))
            pp_release(p, a, sym, bar->ts, 1, evs, n, &cap); /* decided before this bar */
        qb_err_t e = qb_sim_on_bar(a->sim, sym, &pb);
        if (e == QB_ERR_INVALID) continue; /* not after the symbol's last bar */
        pp_drain(p, a, evs, n, &cap);
        if (p->nheld) pp_release(p, a, sym, bar->ts, 0, evs, n, &cap); /* decided on it */
        if (e && e != QB_ERR_NOMEM)
            return qb_err_set(errstr, errstr_size, e, "paper: %s", qb_sim_last_error(a->sim));
    }
    return QB_OK;
}

size_t qb_exec_paper_cancel_all(qb_exec_broker_t *b, const char *account, qb_time_t ts,
                                qb_exec_event_t **evs, size_t *n) {
    pp_t *p = pp_of(b);
    if (!p) return 0;
    size_t cap = *n, k = 0;
    for (size_t i = 0; i < p->nacct; i++) {
        pp_acct_t *a = &p->accts[i];
        if (account && *account && strcmp(a->name, account) != 0) continue;
        size_t before = *n;
        k += qb_sim_cancel_all(a->sim, ts);
        pp_drain(p, a, evs, n, &cap);
        for (size_t j = 0; j < p->nheld;)
            if (p->ords[p->held[j]].acct == (int)i) {
                pp_unhold(p, j, ts, evs, n, &cap);
                k++;
            } else {
                j++;
            }
        for (size_t j = before; j < *n; j++)
            if ((*evs)[j].kind == QB_EXEC_EV_CANCELED && !(*evs)[j].reason_code) {
                (*evs)[j].reason_code = QB_EXEC_REASON_KILL_SWITCH;
                snprintf((*evs)[j].reason_text, sizeof (*evs)[j].reason_text, "kill switch");
            }
    }
    return k;
}

void qb_exec_paper_take_events(qb_exec_broker_t *b, qb_exec_event_t **evs, size_t *n) {
    pp_t *p = pp_of(b);
    *evs = NULL;
    *n = 0;
    if (!p || !p->npend) return;
    *evs = p->pend;
    *n = p->npend;
    p->pend = NULL;
    p->npend = p->cappend = 0;
}
