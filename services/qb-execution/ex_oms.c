/* ex_oms.c — qb-execution's order flow: intake of risk-approved Orders
 * (dedupe, gating, routing), every state change through libs/exec's state
 * machine into one transaction (order, fills, report outbox, audit chain)
 * and then onto exec.reports, brokers' events (paper fills on bars, polled
 * broker state), OCO cancels and bracket legs, cancel / replace / mode
 * commands, the kill switch, and reconciliation. The protocol that keeps a
 * crash from losing or duplicating an order is in main.c's header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "ex.h"
#include "proto/qb_proto.h"
#include "qb/v1/market.pb-c.h"

#define EX_REPORT_NS "e4b2d7a1-93c5-4f06-8e2b-7a1c5d9f3e08"

static qb_err_t ex_sync_order(ex_t *ex, qb_exec_order_t *o, const char *source, char *errstr,
                              size_t errstr_size);
static qb_err_t ex_cancel(ex_t *ex, qb_exec_order_t *o, int reason, const char *why,
                          char *errstr, size_t errstr_size);
static qb_err_t ex_place(ex_t *ex, qb_exec_order_t *o, char *errstr, size_t errstr_size);

int ex_broker_index(const ex_t *ex, const char *name) {
    for (int i = 0; i < EX_MAX_BROKERS; i++)
        if (ex->brokers[i] && strcmp(ex->broker_names[i], name) == 0) return i;
    return -1;
}

static int ex_is_sim(const ex_t *ex, const qb_exec_order_t *o) {
    (void)ex;
    return strcmp(o->broker, "sim") == 0;
}

/* ---- reports ------------------------------------------------------------------------ */

qb_err_t ex_report_pack(const qb_exec_order_t *o, const qb_exec_report_t *r, uint8_t **buf,
                        size_t *len) {
    char eid[QB_UUID_STRLEN], name[80];
    int nl = snprintf(name, sizeof name, "%s|%llu", o->o.id, (unsigned long long)r->sequence);
    qb_uuid_v5(EX_REPORT_NS, name, (size_t)nl, eid);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = eid;
    h.event_time = r->ts;
    h.produced_time = qb_time_now();
    h.producer = "qb-execution";
    h.trace_id = (char *)o->trace_id;
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__ExecutionReport x = QB__V1__EXECUTION_REPORT__INIT;
    x.header = &h;
    x.order_id = (char *)o->o.id;
    x.account = (char *)o->o.account;
    x.symbol = (char *)o->o.symbol.s;
    x.status = (Qb__V1__OrderStatus)r->status;
    x.previous_status = (Qb__V1__OrderStatus)r->prev_status;
    x.fill_qty = r->fill_qty;
    x.fill_price = r->fill_price;
    x.commission = r->commission;
    x.cum_qty = r->cum_qty;
    x.avg_price = r->avg_price;
    x.leaves_qty = r->leaves_qty;
    x.broker_order_id = (char *)o->broker_order_id;
    x.reason_code = (Qb__V1__ReasonCode)r->reason_code;
    x.reason_text = (char *)r->reason_text;
    x.sequence = r->sequence;
    x.side = (Qb__V1__Side)o->o.side;
    x.strategy_id = (char *)o->strategy_id;
    x.order_qty = o->o.qty;
    x.fill_id = (char *)r->fill_id;
    x.mode = (Qb__V1__TradingMode)o->mode;
    x.leg = (Qb__V1__OrderLeg)(o->leg ? o->leg : 1);
    x.parent_order_id = (char *)o->parent_id;
    x.cause_id = (char *)o->cause_id;
    x.client_tag = (char *)o->client_tag;
    *len = protobuf_c_message_get_packed_size(&x.base);
    *buf = malloc(*len ? *len : 1);
    if (!*buf) return QB_ERR_NOMEM;
    protobuf_c_message_pack(&x.base, *buf);
    return QB_OK;
}

static void ex_remember_sent(ex_t *ex, int64_t id) {
    if (id <= 0) return;
    if (ex->nunpub == ex->capunpub) {
        size_t nc = ex->capunpub ? ex->capunpub * 2 : 256;
        int64_t *nv = realloc(ex->unpublished, nc * sizeof *nv);
        if (!nv) return; /* left unpublished: sent again at the next start */
        ex->unpublished = nv;
        ex->capunpub = nc;
    }
    ex->unpublished[ex->nunpub++] = id;
}

void ex_send(ex_t *ex, const char *account, const void *payload, size_t len, const char *trace,
             int64_t report_id) {
    qb_err_t e = qb_producer_send(ex->producer, "exec.reports", account, strlen(account),
                                  "qb.v1.ExecutionReport", payload, len, trace ? trace : "");
    if (e) {
        QB_WARN("exec.reports: send failed (%s): left in the outbox", qb_err_str(e));
        return;
    }
    qb_counter_inc(ex->c_reports);
    ex_remember_sent(ex, report_id);
}

qb_err_t ex_mark_published(ex_t *ex) {
    if (!ex->nunpub) return QB_OK;
    if (qb_producer_flush(ex->producer, 5000) != QB_OK) return QB_ERR_UNAVAILABLE;
    char errstr[512];
    qb_err_t e = ex_store_mark_published(ex->st, ex->unpublished, ex->nunpub, errstr, sizeof errstr);
    if (e) {
        QB_WARN("outbox: mark published: %s (retried)", errstr);
        return e;
    }
    ex->nunpub = 0;
    return QB_OK;
}

/* ---- discrepancies -------------------------------------------------------------------- */

static void ex_discrepancy(ex_t *ex, const char *account, const char *broker, const char *kind,
                           const char *order_id, const char *symbol, const char *msg) {
    char key[160];
    snprintf(key, sizeof key, "%.20s|%.20s|%.12s|%.40s|%.50s", account, broker, kind, order_id, msg);
    for (size_t i = 0; i < ex->nreported; i++)
        if (strcmp(ex->reported[i], key) == 0) return; /* reported already */
    char (*nr)[160] = realloc(ex->reported, (ex->nreported + 1) * sizeof *nr);
    if (nr) {
        ex->reported = nr;
        snprintf(ex->reported[ex->nreported++], 160, "%s", key);
    }
    qb_counter_inc(ex->c_disc);
    QB_WARN("reconciliation (%s): %s", broker, msg);
    char errstr[256];
    if (ex_store_discrepancy(ex->st, account, broker, kind, order_id, symbol, msg, errstr,
                             sizeof errstr))
        QB_WARN("discrepancy not stored: %s", errstr);
    ex_audit_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.order_id, sizeof a.order_id, "%.36s", order_id);
    snprintf(a.event, sizeof a.event, "DISCREPANCY");
    snprintf(a.detail, sizeof a.detail, "{\"broker\":\"%s\",\"kind\":\"%s\",\"message\":\"%.600s\"}",
             broker, kind, msg);
    (void)ex_store_audit(ex->st, *account ? account : "*", &a, 1, errstr, sizeof errstr);
    char eid[QB_UUID_STRLEN];
    qb_uuid_v4(eid);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = eid;
    h.event_time = h.produced_time = qb_time_now();
    h.producer = "qb-execution";
    h.trace_id = "";
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__RiskEvent re = QB__V1__RISK_EVENT__INIT;
    re.header = &h;
    re.account = (char *)account;
    re.kind = QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_RECONCILIATION_DISCREPANCY;
    re.severity = QB__V1__SEVERITY__SEVERITY_WARNING;
    re.message = (char *)msg;
    re.symbol = (char *)symbol;
    (void)qb_producer_send_msg(ex->producer, "risk.events", account, strlen(account), &re.base, "");
}

/* ---- one state change ------------------------------------------------------------------ */

static void ex_audit_of(const qb_exec_order_t *o, const qb_exec_report_t *r, const char *source,
                        ex_audit_t *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->order_id, sizeof a->order_id, "%s", o->o.id);
    char q[32], p[32], c[32], cum[32];
    qb_dec_format(r->fill_qty, q, sizeof q);
    qb_dec_format(r->fill_price, p, sizeof p);
    qb_dec_format(r->commission, c, sizeof c);
    qb_dec_format(r->cum_qty, cum, sizeof cum);
    if (r->fill_qty > 0) {
        snprintf(a->event, sizeof a->event, "FILL");
        snprintf(a->detail, sizeof a->detail,
                 "{\"seq\":%llu,\"from\":\"%s\",\"to\":\"%s\",\"fill_id\":\"%s\",\"qty\":\"%s\","
                 "\"price\":\"%s\",\"commission\":\"%s\",\"cum\":\"%s\",\"source\":\"%s\"}",
                 (unsigned long long)r->sequence, qb_order_status_name(r->prev_status),
                 qb_order_status_name(r->status), r->fill_id, q, p, c, cum, source);
    } else if (r->status == QB_ORDER_STATUS_NEW) {
        char qty[32], lp[32], sp[32];
        qb_dec_format(o->o.qty, qty, sizeof qty);
        qb_dec_format(o->o.limit_price, lp, sizeof lp);
        qb_dec_format(o->o.stop_price, sp, sizeof sp);
        snprintf(a->event, sizeof a->event, "NEW");
        snprintf(a->detail, sizeof a->detail,
                 "{\"seq\":1,\"symbol\":\"%s\",\"side\":\"%s\",\"type\":\"%s\",\"tif\":\"%s\","
                 "\"qty\":\"%s\",\"limit\":\"%s\",\"stop\":\"%s\",\"mode\":%d,\"broker\":\"%s\","
                 "\"strategy\":\"%s\",\"cause\":\"%s\",\"leg\":%d}",
                 o->o.symbol.s, qb_side_name(o->o.side), qb_order_type_name(o->o.type),
                 qb_tif_name(o->o.tif), qty, lp, sp, o->mode, o->broker, o->strategy_id,
                 o->cause_id, o->leg);
    } else {
        snprintf(a->event, sizeof a->event, "%s", qb_order_status_name(r->status));
        snprintf(a->detail, sizeof a->detail,
                 "{\"seq\":%llu,\"from\":\"%s\",\"to\":\"%s\",\"cum\":\"%s\",\"reason\":%d,"
                 "\"text\":\"%.300s\",\"source\":\"%s\"}",
                 (unsigned long long)r->sequence, qb_order_status_name(r->prev_status),
                 qb_order_status_name(r->status), cum, r->reason_code, r->reason_text, source);
    }
    for (char *s = a->detail; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
}

typedef struct ex_follow_s {
    int fills;
    int final;
} ex_follow_t;

/* Apply events to *o (the book's copy, or a new order with insert = 1),
 * make it durable, publish, then do what follows (OCO, brackets). */
static qb_err_t ex_change(ex_t *ex, qb_exec_order_t *o, int insert, const qb_exec_event_t *evs,
                          size_t n, const char *source, char *errstr, size_t errstr_size) {
    qb_exec_order_t nw;
    memcpy(&nw, o, sizeof nw);
    size_t cap = n + 1, nrep = 0, naud = 0;
    qb_exec_report_t *reps = calloc(cap, sizeof *reps);
    ex_audit_t *aud = calloc(cap * 2, sizeof *aud);
    uint8_t **pay = calloc(cap, sizeof *pay);
    size_t *len = calloc(cap, sizeof *len);
    int64_t *ids = calloc(cap, sizeof *ids);
    qb_err_t e = QB_OK;
    if (!reps || !aud || !pay || !len || !ids) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto out;
    }
    qb_time_t now = qb_time_now();
    if (insert && ex_is_sim(ex, &nw)) {
        /* Matched only against bars after the newest one of the symbol the
         * simulator was given (and after its own not_before): what
         * happens live anyway, written down so that a restart, which reads
         * md.bars again from before (main.c), does the same. */
        int bi = ex_broker_index(ex, "sim");
        qb_time_t lb = bi >= 0 ? qb_exec_paper_last_bar(ex->brokers[bi], nw.o.symbol.s) : 0;
        if (lb > nw.not_before) nw.not_before = lb;
    }
    if (insert && nw.seq == 0) {
        (void)qb_exec_order_created(&nw, nw.o.created_ts ? nw.o.created_ts : now, &reps[nrep]);
        ex_audit_of(&nw, &reps[nrep], source, &aud[naud++]);
        nrep++;
    }
    ex_follow_t fl = {0, 0};
    for (size_t i = 0; i < n; i++) {
        qb_exec_event_t ev = evs[i];
        if (ev.kind == QB_EXEC_EV_CANCELED && nw.cancel_reason &&
            (!ev.reason_code || ev.reason_code == QB_EXEC_REASON_USER_CANCELED)) {
            ev.reason_code = nw.cancel_reason;
        }
        char why[512];
        qb_err_t ae = qb_exec_order_apply(&nw, &ev, &reps[nrep], why, sizeof why);
        if (ae) {
            qb_counter_inc(ex->c_illegal);
            QB_WARN("refused: %s", why);
            ex_audit_t *a = &aud[naud++];
            memset(a, 0, sizeof *a);
            snprintf(a->order_id, sizeof a->order_id, "%s", nw.o.id);
            snprintf(a->event, sizeof a->event, "REFUSED");
            snprintf(a->detail, sizeof a->detail, "{\"event\":\"%s\",\"error\":\"%.600s\"}",
                     qb_exec_ev_kind_name(ev.kind), why);
            continue;
        }
        if (reps[nrep].fill_qty > 0) fl.fills++;
        ex_audit_of(&nw, &reps[nrep], source, &aud[naud++]);
        nrep++;
    }
    if (!nrep && !naud) goto out;
    fl.final = qb_order_status_is_terminal(nw.o.status);
    for (size_t i = 0; i < nrep; i++) {
        if ((e = ex_report_pack(&nw, &reps[i], &pay[i], &len[i]))) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
    }
    qb_time_t t0 = qb_time_mono_ns();
    e = ex_store_save(ex->st, &nw, insert, reps, nrep, pay, len, aud, naud, source, ids, errstr,
                      errstr_size);
    if (e) goto out;
    qb_hist_observe(ex->h_broker, 0); /* keeps the family present */
    (void)t0;
    for (size_t i = 0; i < nrep; i++) {
        ex_send(ex, nw.o.account, pay[i], len[i], nw.trace_id, ids[i]);
        if (reps[i].fill_qty > 0) qb_counter_inc(ex->c_fills);
        if (reps[i].status == QB_ORDER_STATUS_REJECTED) qb_counter_inc(ex->c_rejected);
    }
    /* the book holds every order not yet final */
    qb_exec_order_t *cur = insert ? NULL : qb_exec_book_get(ex->book, nw.o.id);
    if (cur) memcpy(cur, &nw, sizeof nw);
    else if (!fl.final) cur = qb_exec_book_put(ex->book, &nw);
    memcpy(o, &nw, sizeof nw);
    /* OCO: a fill cancels the open siblings of the group */
    if (fl.fills && nw.oco_group[0]) {
        size_t nl = 0, ns = 0;
        qb_exec_order_t **l = qb_exec_book_list(ex->book, &nl);
        char (*sib)[QB_UUID_STRLEN] = nl ? malloc(nl * sizeof *sib) : NULL;
        for (size_t i = 0; sib && i < nl; i++)
            if (qb_exec_oco_sibling(&nw, l[i])) snprintf(sib[ns++], QB_UUID_STRLEN, "%s", l[i]->o.id);
        free(l);
        /* canceling changes the book: look each one up again */
        for (size_t i = 0; i < ns; i++) {
            qb_exec_order_t *so = qb_exec_book_get(ex->book, sib[i]);
            if (!so) continue;
            char e2[512];
            QB_INFO("order %s: OCO sibling %s filled: canceling", sib[i], nw.o.id);
            if (ex_cancel(ex, so, QB_EXEC_REASON_OCO_SIBLING_FILLED, "oco", e2, sizeof e2))
                QB_WARN("OCO cancel of %s: %s (reconciliation retries)", sib[i], e2);
        }
        free(sib);
    }
    /* Bracket: a final entry with fills places its exit legs */
    if (fl.final && nw.leg == QB_EXEC_LEG_ENTRY && !nw.legs_placed) {
        qb_exec_order_t legs[2];
        size_t nlegs = qb_exec_bracket_legs(&nw, now, legs);
        for (size_t i = 0; i < nlegs; i++) {
            char e2[512];
            snprintf(legs[i].trace_id, sizeof legs[i].trace_id, "%s", nw.trace_id);
            int exists = 0;
            if (ex_store_order_exists(ex->st, legs[i].o.id, &exists, e2, sizeof e2) == QB_OK &&
                exists)
                continue;
            if (ex_place(ex, &legs[i], e2, sizeof e2))
                QB_WARN("bracket %s: leg %s: %s", nw.o.id, legs[i].o.id, e2);
        }
        if (nlegs) {
            /* record that the legs exist (they are orders of their own now) */
            char e2[512];
            qb_exec_order_t mark;
            memcpy(&mark, &nw, sizeof mark);
            mark.legs_placed = 1;
            if (ex_store_save(ex->st, &mark, 0, NULL, 0, NULL, NULL, NULL, 0, source, NULL, e2,
                              sizeof e2) == QB_OK)
                memcpy(o, &mark, sizeof mark);
        }
    }
    if (fl.final) qb_exec_book_remove(ex->book, nw.o.id);
    qb_gauge_set(ex->g_open, (double)qb_exec_book_count(ex->book));
out:
    for (size_t i = 0; pay && i < nrep; i++) free(pay[i]);
    free(reps);
    free(aud);
    free(pay);
    free(len);
    free(ids);
    return e;
}

static qb_exec_event_t ex_ev(qb_exec_ev_kind_t k, const qb_exec_order_t *o, int reason,
                             const char *text) {
    qb_exec_event_t e;
    memset(&e, 0, sizeof e);
    e.kind = k;
    snprintf(e.order_id, sizeof e.order_id, "%s", o->o.id);
    e.ts = qb_time_now();
    e.reason_code = reason;
    if (text) snprintf(e.reason_text, sizeof e.reason_text, "%s", text);
    return e;
}

/* Events a paper submit/cancel produced at once, applied to their orders. */
static void ex_paper_pending(ex_t *ex, qb_exec_broker_t *b, const char *source) {
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    qb_exec_paper_take_events(b, &evs, &n);
    for (size_t i = 0; i < n; i++) {
        qb_exec_order_t *o = qb_exec_book_get(ex->book, evs[i].order_id);
        char errstr[512];
        if (!o) continue;
        if (ex_change(ex, o, 0, &evs[i], 1, source, errstr, sizeof errstr))
            QB_WARN("paper event of %s not stored: %s", evs[i].order_id, errstr);
    }
    free(evs);
}

/* Send a NEW order (stored or not) to its broker. */
static qb_err_t ex_place(ex_t *ex, qb_exec_order_t *o, char *errstr, size_t errstr_size) {
    int bi = ex_broker_index(ex, o->broker);
    if (bi < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "no broker %s", o->broker);
    qb_exec_broker_t *b = ex->brokers[bi];
    qb_exec_border_t bo;
    char why[512] = "";
    int insert = o->seq == 0;
    if (ex_is_sim(ex, o)) {
        /* In process: the paper broker's state is rebuilt from the store
         * after a crash, so submitting first loses nothing. */
        qb_exec_event_t evs[3];
        size_t n = 0;
        evs[n++] = ex_ev(QB_EXEC_EV_SUBMITTED, o, 0, NULL);
        qb_time_t t0 = qb_time_mono_ns();
        qb_err_t e = qb_exec_broker_submit(b, o, &bo, why, sizeof why);
        qb_hist_observe(ex->h_broker, (double)(qb_time_mono_ns() - t0) / 1e9);
        if (e == QB_ERR_INVALID) {
            evs[n++] = ex_ev(QB_EXEC_EV_REJECTED, o,
                             strstr(why, "BUYING_POWER") ? QB_EXEC_REASON_INSUFFICIENT_FUNDS
                                                         : QB_EXEC_REASON_BROKER_REJECT,
                             why);
        } else if (e) {
            return qb_err_set(errstr, errstr_size, e, "paper: %s", why);
        } else {
            evs[n] = ex_ev(QB_EXEC_EV_ACCEPTED, o, 0, NULL);
            snprintf(evs[n++].broker_order_id, sizeof evs[0].broker_order_id, "%s",
                     bo.broker_order_id);
        }
        e = ex_change(ex, o, insert, evs, n, "broker", errstr, errstr_size);
        if (!e) ex_paper_pending(ex, b, "broker");
        return e;
    }
    /* External broker: durable as SUBMITTED before anything is sent. */
    if (o->o.status == QB_ORDER_STATUS_NEW) {
        qb_exec_event_t se = ex_ev(QB_EXEC_EV_SUBMITTED, o, 0, NULL);
        qb_err_t e = ex_change(ex, o, insert, &se, 1, "broker", errstr, errstr_size);
        if (e) return e;
    }
    qb_time_t t0 = qb_time_mono_ns();
    qb_err_t e = qb_exec_broker_submit(b, o, &bo, why, sizeof why);
    qb_hist_observe(ex->h_broker, (double)(qb_time_mono_ns() - t0) / 1e9);
    qb_exec_order_t *cur = qb_exec_book_get(ex->book, o->o.id);
    if (!cur) return QB_OK;
    if (e == QB_ERR_INVALID || e == QB_ERR_NOT_FOUND) {
        qb_exec_event_t re = ex_ev(QB_EXEC_EV_REJECTED, cur, QB_EXEC_REASON_BROKER_REJECT, why);
        return ex_change(ex, cur, 0, &re, 1, "broker", errstr, errstr_size);
    }
    if (e) {
        /* Unknown outcome: stays SUBMITTED; reconciliation asks the broker. */
        QB_WARN("order %s: %s (left SUBMITTED; reconciliation will ask the broker)", o->o.id, why);
        return QB_OK;
    }
    qb_exec_event_t evs[4];
    qb_exec_recon_action_t act;
    char note[256];
    size_t n = qb_exec_recon_order(cur, &bo, qb_time_now(), evs, &act, note, sizeof note);
    return n ? ex_change(ex, cur, 0, evs, n, "broker", errstr, errstr_size) : QB_OK;
}

/* ---- cancel ------------------------------------------------------------------------------ */

static qb_err_t ex_cancel(ex_t *ex, qb_exec_order_t *o, int reason, const char *why,
                          char *errstr, size_t errstr_size) {
    if (o->o.status == QB_ORDER_STATUS_NEW) {
        qb_exec_event_t c = ex_ev(QB_EXEC_EV_CANCELED, o, reason, why);
        return ex_change(ex, o, 0, &c, 1, "broker", errstr, errstr_size);
    }
    if (!qb_exec_order_is_open(o)) return QB_OK;
    int bi = ex_broker_index(ex, o->broker);
    if (bi < 0) return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "no broker %s", o->broker);
    o->cancel_reason = reason;
    char id[QB_UUID_STRLEN];
    snprintf(id, sizeof id, "%s", o->o.id);
    o->o.updated_ts = qb_time_now();
    qb_err_t e = qb_exec_broker_cancel(ex->brokers[bi], o, errstr, errstr_size);
    if (ex_is_sim(ex, o)) {
        ex_paper_pending(ex, ex->brokers[bi], "broker");
        return e == QB_ERR_STATE ? QB_OK : e;
    }
    if (e && e != QB_ERR_STATE && e != QB_ERR_NOT_FOUND) return e;
    /* The broker's answer (canceled, or filled meanwhile) now. */
    qb_exec_order_t *cur = qb_exec_book_get(ex->book, id);
    return cur ? ex_sync_order(ex, cur, "broker", errstr, errstr_size) : QB_OK;
}

/* ---- intake ---------------------------------------------------------------------------------- */

static const ex_mode_t *ex_mode_of(const ex_t *ex, const char *account, const char *strategy) {
    for (size_t i = 0; i < ex->nmodes; i++)
        if (strcmp(ex->modes[i].account, account) == 0 &&
            strcmp(ex->modes[i].strategy_id, strategy) == 0)
            return &ex->modes[i];
    return NULL;
}

static int ex_killed(const ex_t *ex, const char *account) {
    for (size_t i = 0; i < ex->nkilled; i++)
        if (strcmp(ex->killed[i], "*") == 0 || strcmp(ex->killed[i], account) == 0) return 1;
    return 0;
}

qb_err_t ex_on_order(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__Order *p = (const Qb__V1__Order *)m->msg;
    qb_exec_order_t o;
    memset(&o, 0, sizeof o);
    if (!p->order_id || !qb_uuid_valid(p->order_id))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order_id '%.40s' is not a UUID",
                          p->order_id ? p->order_id : "");
    qb_counter_inc(ex->c_orders);
    snprintf(o.o.id, sizeof o.o.id, "%s", p->order_id);
    /* Replayed cause (or a redelivery): never a second order. */
    int exists = 0;
    if (qb_exec_book_get(ex->book, o.o.id)) exists = 1;
    else {
        qb_err_t e = ex_store_order_exists(ex->st, o.o.id, &exists, errstr, errstr_size);
        if (e) return e;
    }
    if (exists) {
        qb_counter_inc(ex->c_dups);
        QB_INFO("order %s already known: duplicate ignored", o.o.id);
        return QB_OK;
    }
    /* The paper simulator fills an order on the NEXT bar of its symbol after
     * the order's not_before (the bar that caused it): a paper order whose
     * bar the reader has not delivered yet is held until it has (libs/exec
     * qb_exec_paper.c). Applying the bars already received first makes that
     * rare (and keeps marks current). */
    (void)ex_bars_drain(ex, 100000);
    snprintf(o.o.account, sizeof o.o.account, "%.63s", p->account ? p->account : "");
    char why[256] = "";
    int reason = 0;
    if (qb_symbol_set(&o.o.symbol, p->symbol ? p->symbol : "", why, sizeof why) != QB_OK) {
        (void)qb_symbol_set(&o.o.symbol, "INVALID", NULL, 0);
        reason = QB_EXEC_REASON_INVALID_ORDER;
    }
    o.o.side = (qb_side_t)p->side;
    o.o.type = (qb_order_type_t)p->type;
    o.o.tif = p->time_in_force == 0 ? QB_TIF_DAY : (qb_tif_t)p->time_in_force;
    o.o.qty = o.requested_qty = p->qty;
    o.o.limit_price = p->limit_price;
    o.o.stop_price = p->stop_price;
    o.take_profit = p->take_profit_price;
    o.stop_loss = p->stop_loss_price;
    o.leg = p->leg ? (int)p->leg : QB_EXEC_LEG_SINGLE;
    o.mode = (int)p->mode;
    o.reference_price = p->reference_price;
    o.not_before = p->not_before > 0 ? p->not_before : 0;
    o.cause_kind = (int)p->cause_kind;
    o.o.status = QB_ORDER_STATUS_NEW;
    o.o.created_ts = o.o.updated_ts = qb_time_now();
    snprintf(o.strategy_id, sizeof o.strategy_id, "%.63s", p->strategy_id ? p->strategy_id : "");
    snprintf(o.cause_id, sizeof o.cause_id, "%.63s", p->cause_id ? p->cause_id : "");
    snprintf(o.parent_id, sizeof o.parent_id, "%.36s", p->parent_order_id ? p->parent_order_id : "");
    snprintf(o.oco_group, sizeof o.oco_group, "%.63s", p->oco_group ? p->oco_group : "");
    snprintf(o.replaces_id, sizeof o.replaces_id, "%.36s",
             p->replaces_order_id ? p->replaces_order_id : "");
    snprintf(o.client_tag, sizeof o.client_tag, "%.64s", p->client_tag ? p->client_tag : "");
    snprintf(o.trace_id, sizeof o.trace_id, "%.39s", m->trace_id ? m->trace_id : "");
    /* routing and gating */
    int bi = o.mode == QB_EXEC_MODE_LIVE ? ex->live_idx : ex->paper_idx;
    snprintf(o.broker, sizeof o.broker, "%s", bi >= 0 ? ex->broker_names[bi] : "none");
    if (!reason && qb_exec_order_validate(&o, why, sizeof why) != QB_OK)
        reason = QB_EXEC_REASON_INVALID_ORDER;
    if (!reason && o.mode != QB_EXEC_MODE_PAPER && o.mode != QB_EXEC_MODE_LIVE) {
        reason = QB_EXEC_REASON_INVALID_ORDER;
        snprintf(why, sizeof why, "order %s: mode must be PAPER or LIVE", o.o.id);
    }
    if (!reason && ex_killed(ex, o.o.account)) {
        reason = QB_EXEC_REASON_KILL_SWITCH;
        snprintf(why, sizeof why, "kill switch is on for %s", o.o.account);
    }
    const ex_mode_t *md = reason ? NULL : ex_mode_of(ex, o.o.account, o.strategy_id);
    if (!reason && md && md->mode == QB_EXEC_MODE_BACKTEST) {
        reason = QB_EXEC_REASON_MODE_NOT_ALLOWED;
        snprintf(why, sizeof why, "strategy '%s' of %s runs in backtest mode only", o.strategy_id,
                 o.o.account);
    }
    if (!reason && o.mode == QB_EXEC_MODE_LIVE) {
        if (!md || md->mode != QB_EXEC_MODE_LIVE) {
            reason = QB_EXEC_REASON_MODE_NOT_ALLOWED;
            snprintf(why, sizeof why, "strategy '%s' of %s has no live approval (STRATEGY_SET_MODE)",
                     o.strategy_id, o.o.account);
        } else if (bi < 0) {
            reason = QB_EXEC_REASON_MODE_NOT_ALLOWED;
            snprintf(why, sizeof why, "no live broker configured (QB_EXEC_ALPACA_LIVE_KEY_ID)");
        } else {
            o.o.qty = qb_exec_rollout_qty(o.requested_qty, md->rollout_pct);
            if (o.o.qty <= 0) {
                reason = QB_EXEC_REASON_MODE_NOT_ALLOWED;
                o.o.qty = o.requested_qty;
                snprintf(why, sizeof why, "rollout %d%% of the quantity rounds to 0",
                         md->rollout_pct);
            }
        }
    }
    if (!reason && bi < 0) {
        reason = QB_EXEC_REASON_MODE_NOT_ALLOWED;
        snprintf(why, sizeof why, "no broker for mode %d", o.mode);
    }
    if (o.o.qty <= 0) o.o.qty = 1; /* stored as refused; the row needs qty > 0 */
    if (o.o.side != QB_SIDE_BUY && o.o.side != QB_SIDE_SELL) o.o.side = QB_SIDE_BUY;
    if (o.o.type < QB_ORDER_TYPE_MARKET || o.o.type > QB_ORDER_TYPE_STOP_LIMIT)
        o.o.type = QB_ORDER_TYPE_MARKET;
    if (o.o.tif < QB_TIF_DAY || o.o.tif > QB_TIF_FOK) o.o.tif = QB_TIF_DAY;
    if (!o.o.account[0]) snprintf(o.o.account, sizeof o.o.account, "unknown");
    qb_err_t e;
    if (reason) {
        QB_INFO("order %s rejected: %s", o.o.id, why);
        qb_exec_event_t re = ex_ev(QB_EXEC_EV_REJECTED, &o, reason, why);
        e = ex_change(ex, &o, 1, &re, 1, "broker", errstr, errstr_size);
    } else {
        e = ex_place(ex, &o, errstr, errstr_size);
    }
    if (!e && m->produced_ns > 0)
        qb_hist_observe(ex->h_latency, (double)(qb_time_now() - m->produced_ns) / 1e9);
    if (e == QB_ERR_CONFIG || e == QB_ERR_NOMEM) e = QB_ERR_UNAVAILABLE;
    return e;
}

/* ---- broker state -> our state ------------------------------------------------------------ */

static qb_err_t ex_apply_recon(ex_t *ex, qb_exec_order_t *o, const qb_exec_border_t *b,
                               const char *source, char *errstr, size_t errstr_size) {
    qb_exec_event_t evs[4];
    qb_exec_recon_action_t act;
    char note[320];
    size_t n = qb_exec_recon_order(o, b, qb_time_now(), evs, &act, note, sizeof note);
    if (act == QB_EXEC_RECON_RESUBMIT) {
        qb_counter_inc(ex->c_resubmits);
        QB_WARN("reconciliation: %s", note);
        return ex_place(ex, o, errstr, errstr_size);
    }
    if (act == QB_EXEC_RECON_DISCREPANCY)
        ex_discrepancy(ex, o->o.account, o->broker, b ? "order" : "unknown_order", o->o.id,
                       o->o.symbol.s, note);
    return n ? ex_change(ex, o, 0, evs, n, source, errstr, errstr_size) : QB_OK;
}

static qb_err_t ex_sync_order(ex_t *ex, qb_exec_order_t *o, const char *source, char *errstr,
                              size_t errstr_size) {
    int bi = ex_broker_index(ex, o->broker);
    if (bi < 0) return QB_OK;
    qb_exec_border_t b;
    qb_err_t e = qb_exec_broker_order_status(ex->brokers[bi], o->o.id, &b, errstr, errstr_size);
    if (e == QB_ERR_NOT_FOUND) return ex_apply_recon(ex, o, NULL, source, errstr, errstr_size);
    if (e) return e;
    return ex_apply_recon(ex, o, &b, source, errstr, errstr_size);
}

qb_err_t ex_reconcile(ex_t *ex, int full) {
    const char *source = full ? "reconciliation" : "broker";
    qb_err_t first = QB_OK;
    for (int bi = 0; bi < EX_MAX_BROKERS; bi++) {
        if (!ex->brokers[bi] || strcmp(ex->broker_names[bi], "sim") == 0) continue;
        char errstr[512];
        qb_exec_border_t *open = NULL;
        size_t nopen = 0;
        qb_err_t e = qb_exec_broker_open_orders(ex->brokers[bi], &open, &nopen, errstr, sizeof errstr);
        if (e) {
            QB_WARN("reconciliation (%s): open orders: %s", ex->broker_names[bi], errstr);
            if (!first) first = e;
            continue;
        }
        size_t nl = 0;
        qb_exec_order_t **l = qb_exec_book_list(ex->book, &nl);
        char (*ids)[QB_UUID_STRLEN] = nl ? malloc(nl * sizeof *ids) : NULL;
        size_t nids = 0;
        for (size_t i = 0; ids && i < nl; i++)
            if (strcmp(l[i]->broker, ex->broker_names[bi]) == 0)
                snprintf(ids[nids++], QB_UUID_STRLEN, "%s", l[i]->o.id);
        free(l);
        for (size_t i = 0; i < nids; i++) {
            qb_exec_order_t *o = qb_exec_book_get(ex->book, ids[i]);
            if (!o) continue; /* closed meanwhile (OCO) */
            const qb_exec_border_t *b = NULL;
            for (size_t j = 0; j < nopen; j++)
                if (strcmp(open[j].client_order_id, o->o.id) == 0) b = &open[j];
            /* open at the broker and nothing new: skip the status call */
            if (b && b->filled_qty == o->o.filled_qty && o->o.status != QB_ORDER_STATUS_SUBMITTED &&
                o->o.status != QB_ORDER_STATUS_NEW)
                continue;
            e = b ? ex_apply_recon(ex, o, b, source, errstr, sizeof errstr)
                  : ex_sync_order(ex, o, source, errstr, sizeof errstr);
            if (e) {
                QB_WARN("reconciliation (%s): order %s: %s", ex->broker_names[bi], ids[i], errstr);
                if (!first) first = e;
            }
        }
        free(ids);
        if (full) {
            /* broker orders we never made */
            for (size_t j = 0; j < nopen; j++) {
                if (qb_exec_book_get(ex->book, open[j].client_order_id)) continue;
                int known = 1;
                if (ex_store_known(ex->st, open[j].client_order_id, &known, errstr, sizeof errstr))
                    continue;
                if (!known) {
                    char msg[300];
                    snprintf(msg, sizeof msg, "open order %s (client id %s, %s) at the broker is "
                             "not ours", open[j].broker_order_id, open[j].client_order_id,
                             open[j].symbol.s);
                    ex_discrepancy(ex, "", ex->broker_names[bi], "unknown_order",
                                   open[j].client_order_id, open[j].symbol.s, msg);
                }
            }
            /* positions: the fills we hold vs the broker's positions */
            qb_exec_bposition_t *ours = NULL, *theirs = NULL;
            size_t no = 0, nt = 0;
            if (ex_store_positions(ex->st, ex->broker_names[bi], NULL, &ours, &no, errstr,
                                   sizeof errstr) == QB_OK &&
                qb_exec_broker_positions(ex->brokers[bi], "", &theirs, &nt, errstr,
                                         sizeof errstr) == QB_OK) {
                qb_exec_pos_diff_t *d = NULL;
                size_t nd = 0;
                if (qb_exec_recon_positions(ours, no, theirs, nt, &d, &nd) == QB_OK) {
                    char (*seen)[160] = nd ? calloc(nd, sizeof *seen) : NULL;
                    size_t nseen = 0;
                    for (size_t k = 0; k < nd; k++) {
                        char a[32], b2[32], msg[160];
                        qb_dec_format(d[k].ours, a, sizeof a);
                        qb_dec_format(d[k].broker, b2, sizeof b2);
                        snprintf(msg, sizeof msg, "position %s at %s: ours %s, broker %s",
                                 d[k].symbol.s, ex->broker_names[bi], a, b2);
                        int again = 0;
                        for (size_t j = 0; j < ex->nposdiff; j++)
                            if (strcmp(ex->posdiff[j], msg) == 0) again = 1;
                        if (again)
                            ex_discrepancy(ex, "", ex->broker_names[bi], "position", "",
                                           d[k].symbol.s, msg);
                        if (seen) snprintf(seen[nseen++], 160, "%s", msg);
                    }
                    free(ex->posdiff);
                    ex->posdiff = seen;
                    ex->nposdiff = nseen;
                    free(d);
                }
            } else {
                QB_WARN("reconciliation (%s): positions: %s", ex->broker_names[bi], errstr);
            }
            free(ours);
            free(theirs);
        }
        free(open);
    }
    return first;
}

/* ---- paper broker: restore and bars ------------------------------------------------------------ */

static void ex_restore_fill_cb(void *ctx, const char *account, const char *symbol, int side,
                               qb_dec_t qty, qb_dec_t price, qb_dec_t commission) {
    ex_t *ex = ctx;
    char errstr[256];
    int bi = ex_broker_index(ex, "sim");
    if (qb_exec_paper_restore_fill(ex->brokers[bi], account, symbol, (qb_side_t)side, qty, price,
                                   commission, errstr, sizeof errstr))
        QB_WARN("paper restore: fill %s %s: %s", account, symbol, errstr);
}

qb_err_t ex_paper_restore(ex_t *ex) {
    int bi = ex_broker_index(ex, "sim");
    if (bi < 0) return QB_OK;
    char errstr[512];
    qb_err_t e = ex_store_fills(ex->st, "sim", ex_restore_fill_cb, ex, errstr, sizeof errstr);
    if (e) {
        QB_WARN("paper restore: %s", errstr);
        return e;
    }
    size_t nl = 0, restored = 0;
    qb_exec_order_t **l = qb_exec_book_list(ex->book, &nl);
    for (size_t i = 0; i < nl; i++) {
        qb_exec_order_t *o = l[i];
        if (strcmp(o->broker, "sim") != 0) continue;
        if (o->o.status == QB_ORDER_STATUS_NEW) continue; /* sent below like a new order */
        if (qb_exec_paper_restore_order(ex->brokers[bi], o, errstr, sizeof errstr) == QB_OK) {
            restored++;
            continue;
        }
        QB_WARN("paper restore: order %s: %s: canceled", o->o.id, errstr);
        qb_exec_event_t c = ex_ev(QB_EXEC_EV_CANCELED, o, QB_EXEC_REASON_BROKER_REJECT, errstr);
        char e2[512];
        (void)ex_change(ex, o, 0, &c, 1, "reconciliation", e2, sizeof e2);
    }
    free(l);
    /* events of the restore (none normally) are dropped: the book is the truth */
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    qb_exec_paper_take_events(ex->brokers[bi], &evs, &n);
    free(evs);
    QB_INFO("paper broker restored: %zu working orders", restored);
    /* NEW sim orders (stored, never submitted) */
    l = qb_exec_book_list(ex->book, &nl);
    for (size_t i = 0; i < nl; i++)
        if (strcmp(l[i]->broker, "sim") == 0 && l[i]->o.status == QB_ORDER_STATUS_NEW &&
            ex_place(ex, l[i], errstr, sizeof errstr))
            QB_WARN("paper restore: order %s: %s", l[i]->o.id, errstr);
    free(l);
    return QB_OK;
}

void ex_on_bar(ex_t *ex, const qb_bus_msg_t *m) {
    int bi = ex_broker_index(ex, "sim");
    if (m->timestamp_ms > ex->bars_read_ms) ex->bars_read_ms = m->timestamp_ms;
    if (bi < 0 || !m->msg) return;
    const Qb__V1__Bar *pb = (const Qb__V1__Bar *)m->msg;
    qb_bar_t bar;
    memset(&bar, 0, sizeof bar);
    if (qb_symbol_set(&bar.symbol, pb->symbol ? pb->symbol : "", NULL, 0) != QB_OK) return;
    snprintf(bar.timeframe, sizeof bar.timeframe, "%.7s", pb->timeframe ? pb->timeframe : "");
    bar.ts = pb->ts;
    bar.open = pb->open;
    bar.high = pb->high;
    bar.low = pb->low;
    bar.close = pb->close;
    bar.volume = pb->volume;
    char errstr[512];
    if (qb_bar_validate(&bar, errstr, sizeof errstr) != QB_OK) return;
    qb_counter_inc(ex->c_bars);
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    /* the reports of fills on this bar carry its origin (qb-origin-ns) */
    int64_t was_origin = qb_bus_set_origin(m->origin_ns);
    if (qb_exec_paper_on_bar(ex->brokers[bi], &bar, &evs, &n, errstr, sizeof errstr))
        QB_WARN("paper: bar %s: %s", bar.symbol.s, errstr);
    for (size_t i = 0; i < n; i++) {
        qb_exec_order_t *o = qb_exec_book_get(ex->book, evs[i].order_id);
        if (!o) continue;
        /* a paper event is a fact: retry until it is durable */
        for (int attempt = 0;; attempt++) {
            qb_err_t e = ex_change(ex, o, 0, &evs[i], 1, "broker", errstr, sizeof errstr);
            if (!e || !qb_err_is_retriable(e) || !qb_svc_running(ex->svc)) {
                if (e) QB_ERROR("paper event of %s lost: %s", evs[i].order_id, errstr);
                break;
            }
            if (attempt == 0) QB_WARN("paper event of %s: %s (retrying)", evs[i].order_id, errstr);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            o = qb_exec_book_get(ex->book, evs[i].order_id);
            if (!o) break;
        }
    }
    qb_bus_set_origin(was_origin);
    free(evs);
}

size_t ex_bars_drain(ex_t *ex, size_t max) {
    size_t k = 0;
    for (; ex->bars && k < max; k++) {
        qb_bus_msg_t m;
        const char *derr = NULL;
        if (qb_reader_next(ex->bars, 0, &m, &derr) != QB_OK) break;
        ex_on_bar(ex, &m);
    }
    return k;
}

/* ---- risk events: the kill switch ---------------------------------------------------------- */

qb_err_t ex_on_risk_event(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__RiskEvent *re = (const Qb__V1__RiskEvent *)m->msg;
    int on = re->kind == QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_ON;
    int off = re->kind == QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_OFF ||
              re->kind == QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_RESUMED;
    if (!on && !off) return QB_OK;
    const char *acct = re->account && *re->account ? re->account : "*";
    const char *eid = re->header && re->header->event_id ? re->header->event_id : "";
    qb_err_t e = ex_store_set_kill(ex->st, acct, on, eid, errstr, errstr_size);
    if (e) return e;
    size_t k = 0;
    for (; k < ex->nkilled; k++)
        if (strcmp(ex->killed[k], acct) == 0) break;
    if (on && k == ex->nkilled) {
        char (*nk)[QB_ACCOUNT_MAX + 1] = realloc(ex->killed, (ex->nkilled + 1) * sizeof *nk);
        if (!nk) return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "out of memory");
        ex->killed = nk;
        snprintf(ex->killed[ex->nkilled++], QB_ACCOUNT_MAX + 1, "%s", acct);
    } else if (off && k < ex->nkilled) {
        memmove(&ex->killed[k], &ex->killed[k + 1], (ex->nkilled - k - 1) * sizeof ex->killed[0]);
        ex->nkilled--;
    }
    ex_audit_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.event, sizeof a.event, "%s", on ? "KILL_SWITCH_ON" : "KILL_SWITCH_OFF");
    snprintf(a.detail, sizeof a.detail, "{\"risk_event\":\"%s\",\"message\":\"%.300s\"}", eid,
             re->message ? re->message : "");
    if ((e = ex_store_audit(ex->st, acct, &a, 1, errstr, errstr_size))) return e;
    if (!on) {
        QB_INFO("kill switch off for %s", acct);
        return QB_OK;
    }
    qb_counter_inc(ex->c_kills);
    /* cancel every open order of the account, now */
    size_t nl = 0, nc = 0;
    qb_exec_order_t **l = qb_exec_book_list(ex->book, &nl);
    char (*ids)[QB_UUID_STRLEN] = nl ? malloc(nl * sizeof *ids) : NULL;
    size_t nids = 0;
    for (size_t i = 0; ids && i < nl; i++)
        if (strcmp(acct, "*") == 0 || strcmp(l[i]->o.account, acct) == 0)
            snprintf(ids[nids++], QB_UUID_STRLEN, "%s", l[i]->o.id);
    free(l);
    qb_err_t first = QB_OK;
    for (size_t i = 0; i < nids; i++) {
        qb_exec_order_t *o = qb_exec_book_get(ex->book, ids[i]);
        if (!o) continue;
        char e2[512];
        qb_err_t ce = ex_cancel(ex, o, QB_EXEC_REASON_KILL_SWITCH, "kill switch", e2, sizeof e2);
        if (ce) {
            QB_WARN("kill switch: cancel %s: %s", ids[i], e2);
            if (!first) first = ce;
        } else nc++;
    }
    free(ids);
    QB_WARN("kill switch on for %s: %zu open orders canceled", acct, nc);
    if (first && qb_err_is_retriable(first)) {
        snprintf(errstr, errstr_size, "kill switch: some cancels failed: retried");
        return first; /* the event comes again; what is canceled stays canceled */
    }
    return QB_OK;
}

/* ---- control ------------------------------------------------------------------------------------ */

static qb_err_t ex_replace(ex_t *ex, const Qb__V1__Command *cmd, char *errstr, size_t errstr_size) {
    const Qb__V1__Command__ReplaceOrderParams *rp = cmd->replace_order;
    if (!rp || !rp->order_id)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "REPLACE_ORDER without order_id");
    qb_exec_order_t *old = qb_exec_book_get(ex->book, rp->order_id);
    if (!old || !qb_exec_order_is_open(old))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "REPLACE_ORDER: order %s is not open",
                          rp->order_id);
    qb_exec_order_t nw;
    memcpy(&nw, old, sizeof nw);
    qb_exec_replace_id(cmd->command_id, nw.o.id);
    qb_dec_t total = rp->qty > 0 ? rp->qty : old->o.qty;
    if (total <= old->o.filled_qty)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "REPLACE_ORDER: new quantity not above what %s has filled", old->o.id);
    nw.o.qty = nw.requested_qty = total - old->o.filled_qty;
    if (rp->limit_price > 0) nw.o.limit_price = rp->limit_price;
    if (rp->stop_price > 0) nw.o.stop_price = rp->stop_price;
    if (rp->time_in_force >= 1 && rp->time_in_force <= 4) nw.o.tif = (qb_tif_t)rp->time_in_force;
    nw.o.filled_qty = nw.o.avg_fill_price = nw.notional = nw.commission = 0;
    nw.o.status = QB_ORDER_STATUS_NEW;
    nw.seq = 0;
    nw.broker_order_id[0] = '\0';
    nw.reason_code = 0;
    nw.reason_text[0] = nw.cause_id[0] = '\0';
    snprintf(nw.cause_id, sizeof nw.cause_id, "%.63s", cmd->command_id);
    nw.cause_kind = QB_EXEC_CAUSE_REPLACE;
    snprintf(nw.replaces_id, sizeof nw.replaces_id, "%s", old->o.id);
    nw.o.created_ts = nw.o.updated_ts = qb_time_now();
    nw.cancel_reason = 0;
    nw.legs_placed = 0;
    if (qb_exec_order_validate(&nw, errstr, errstr_size)) return QB_ERR_INVALID;
    char oid[QB_UUID_STRLEN];
    snprintf(oid, sizeof oid, "%s", old->o.id);
    ex_audit_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.order_id, sizeof a.order_id, "%s", oid);
    snprintf(a.event, sizeof a.event, "REPLACE_REQUESTED");
    snprintf(a.detail, sizeof a.detail, "{\"command\":\"%s\",\"by\":\"%s\",\"new_order\":\"%s\"}",
             cmd->command_id, cmd->issued_by ? cmd->issued_by : "", nw.o.id);
    qb_err_t e = ex_store_audit(ex->st, old->o.account, &a, 1, errstr, errstr_size);
    if (e) return e;
    int bi = ex_broker_index(ex, old->broker);
    if (bi >= 0 && !ex_is_sim(ex, old)) {
        /* In place at the broker (atomic: no window where both or neither
         * work): the new order is durable as SUBMITTED first. */
        qb_exec_event_t se = ex_ev(QB_EXEC_EV_SUBMITTED, &nw, 0, NULL);
        if ((e = ex_change(ex, &nw, 1, &se, 1, "broker", errstr, errstr_size))) return e;
        old = qb_exec_book_get(ex->book, oid);
        if (old) old->cancel_reason = QB_EXEC_REASON_REPLACED;
        qb_exec_border_t bo;
        qb_exec_order_t *cur = qb_exec_book_get(ex->book, nw.o.id);
        e = old && cur ? qb_exec_broker_replace(ex->brokers[bi], old, cur, &bo, errstr, errstr_size)
                       : QB_ERR_STATE;
        if (e == QB_OK) {
            if (old) (void)ex_sync_order(ex, old, "broker", errstr, errstr_size);
            cur = qb_exec_book_get(ex->book, nw.o.id);
            return cur ? ex_apply_recon(ex, cur, &bo, "broker", errstr, errstr_size) : QB_OK;
        }
        if (cur) {
            qb_exec_event_t re = ex_ev(QB_EXEC_EV_REJECTED, cur, QB_EXEC_REASON_BROKER_REJECT, errstr);
            char e2[512];
            (void)ex_change(ex, cur, 0, &re, 1, "broker", e2, sizeof e2);
        }
        if (old) old->cancel_reason = 0;
        return qb_err_is_retriable(e) ? e : QB_OK;
    }
    /* emulated: cancel, then the new order */
    e = ex_cancel(ex, old, QB_EXEC_REASON_REPLACED, "replaced", errstr, errstr_size);
    if (e) return e;
    return ex_place(ex, &nw, errstr, errstr_size);
}

qb_err_t ex_on_command(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__Command *cmd = (const Qb__V1__Command *)m->msg;
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_CANCEL_ORDER:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_REPLACE_ORDER:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_SET_MODE: break;
    default: return QB_OK;
    }
    const char *target = cmd->target ? cmd->target : "";
    if (*target && strcmp(target, "qb-execution") != 0 && strcmp(target, "*") != 0) return QB_OK;
    if (!cmd->command_id || !*cmd->command_id)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "command without command_id");
    int fresh = 0;
    qb_err_t e = ex_store_command(ex->st, cmd->command_id, (int)cmd->kind, "received", &fresh,
                                  errstr, errstr_size);
    if (e) return e;
    if (!fresh) {
        QB_INFO("command %s applied before: ignored", cmd->command_id);
        return QB_OK;
    }
    qb_counter_inc(ex->c_cmds);
    const char *by = cmd->issued_by ? cmd->issued_by : "";
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_CANCEL_ORDER) {
        if (!cmd->cancel_order || !cmd->cancel_order->order_id)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "CANCEL_ORDER without order_id");
        qb_exec_order_t *o = qb_exec_book_get(ex->book, cmd->cancel_order->order_id);
        if (!o) {
            QB_INFO("CANCEL_ORDER %s: not open", cmd->cancel_order->order_id);
            return QB_OK;
        }
        ex_audit_t a;
        memset(&a, 0, sizeof a);
        snprintf(a.order_id, sizeof a.order_id, "%s", o->o.id);
        snprintf(a.event, sizeof a.event, "CANCEL_REQUESTED");
        snprintf(a.detail, sizeof a.detail, "{\"command\":\"%s\",\"by\":\"%.100s\",\"reason\":\"%.200s\"}",
                 cmd->command_id, by, cmd->reason ? cmd->reason : "");
        if ((e = ex_store_audit(ex->st, o->o.account, &a, 1, errstr, errstr_size))) return e;
        return ex_cancel(ex, o, QB_EXEC_REASON_USER_CANCELED, "canceled on request", errstr,
                         errstr_size);
    }
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_REPLACE_ORDER) {
        e = ex_replace(ex, cmd, errstr, errstr_size);
        if (e == QB_ERR_INVALID) QB_WARN("%s", errstr);
        return e;
    }
    /* STRATEGY_SET_MODE */
    const Qb__V1__Command__StrategyModeParams *sp = cmd->strategy_mode;
    if (!sp || !cmd->account || !*cmd->account)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "STRATEGY_SET_MODE needs account and strategy_mode");
    int mode = (int)sp->mode;
    if (mode != QB_EXEC_MODE_PAPER && mode != QB_EXEC_MODE_LIVE && mode != QB_EXEC_MODE_BACKTEST)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "STRATEGY_SET_MODE: bad mode %d", mode);
    int pct = sp->rollout_pct == 0 ? 100 : (int)sp->rollout_pct;
    if (pct < 1 || pct > 100)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "rollout_pct must be 1..100");
    if (mode == QB_EXEC_MODE_LIVE && !*by)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "a live approval needs issued_by (who approves)");
    const char *sid = sp->strategy_id ? sp->strategy_id : "";
    if ((e = ex_store_set_mode(ex->st, cmd->account, sid, mode, pct, by, cmd->command_id, errstr,
                               errstr_size)))
        return e;
    ex_audit_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.event, sizeof a.event, "MODE_SET");
    snprintf(a.detail, sizeof a.detail,
             "{\"strategy\":\"%.60s\",\"mode\":%d,\"rollout_pct\":%d,\"by\":\"%.100s\",\"command\":\"%s\"}",
             sid, mode, pct, by, cmd->command_id);
    if ((e = ex_store_audit(ex->st, cmd->account, &a, 1, errstr, errstr_size))) return e;
    ex_mode_t *nm = NULL;
    size_t n = 0;
    if ((e = ex_store_modes(ex->st, &nm, &n, errstr, errstr_size))) return e;
    free(ex->modes);
    ex->modes = nm;
    ex->nmodes = n;
    QB_INFO("strategy '%s' of %s: mode %d, rollout %d%% (by %s)", sid, cmd->account, mode, pct, by);
    return QB_OK;
}
