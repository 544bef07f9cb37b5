/* test_exec.c — libs/exec: the order state machine (every legal transition
 * taken, every illegal one refused, reports and averages exact), order
 * validation, bracket legs and OCO, staged rollout sizing, the order book,
 * the audit hash chain (clean chain verifies; a changed, deleted or
 * re-linked row is named), reconciliation (missed fills adopted with
 * derived ids, unknown orders resubmitted or closed, position diffs), the
 * Alpaca order JSON mapping, and the paper broker: the same orders and bars
 * give exactly the backtest engine's fills (qb_bt_run_signals), with
 * slippage, commission, partial fills (volume cap), market and limit
 * entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test_assert.h"

#include "backtest/qb_backtest.h"
#include "exec/qb_exec.h"
#include "exec/qb_exec_broker.h"
#include "qb_test.h"

static char E[512];

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    if (qb_dec_parse(s, strlen(s), &v) != QB_OK) fail_msg("bad literal %s", s);
    return v;
}

#define assert_dec(got, want) assert_dec_at((got), (want), #got, __LINE__)
static void assert_dec_at(qb_dec_t got, const char *want, const char *expr, int line) {
    char buf[QB_DEC_STRLEN];
    qb_dec_format(got, buf, sizeof buf);
    if (strcmp(buf, want) != 0) fail_msg("line %d: %s = %s, want %s", line, expr, buf, want);
}

#define OID "6f1c2a40-0000-4000-8000-0000000000a1"

static qb_exec_order_t mk_order(const char *id, const char *qty) {
    qb_exec_order_t o;
    memset(&o, 0, sizeof o);
    snprintf(o.o.id, sizeof o.o.id, "%s", id);
    snprintf(o.o.account, sizeof o.o.account, "paper-1");
    qb_symbol_set(&o.o.symbol, "AAPL", NULL, 0);
    o.o.side = QB_SIDE_BUY;
    o.o.type = QB_ORDER_TYPE_MARKET;
    o.o.tif = QB_TIF_GTC;
    o.o.qty = D(qty);
    o.o.status = QB_ORDER_STATUS_NEW;
    o.leg = QB_EXEC_LEG_SINGLE;
    o.mode = QB_EXEC_MODE_PAPER;
    o.requested_qty = o.o.qty;
    return o;
}

static qb_exec_event_t ev(qb_exec_ev_kind_t k, const char *id) {
    qb_exec_event_t e;
    memset(&e, 0, sizeof e);
    e.kind = k;
    snprintf(e.order_id, sizeof e.order_id, "%s", id);
    e.ts = 1000;
    return e;
}

static qb_exec_event_t fill(const char *id, const char *fid, const char *q, const char *p) {
    qb_exec_event_t e = ev(QB_EXEC_EV_FILL, id);
    snprintf(e.fill_id, sizeof e.fill_id, "%s", fid);
    e.qty = D(q);
    e.price = D(p);
    e.commission = D("0.5");
    return e;
}

/* An order of 10 driven into state s (cum 4 when partially filled, 10 when
 * filled). */
static qb_exec_order_t in_state(qb_order_status_t s) {
    qb_exec_order_t o = mk_order(OID, "10");
    qb_exec_report_t r;
    OK(qb_exec_order_created(&o, 1, &r));
    if (s == QB_ORDER_STATUS_NEW) return o;
    qb_exec_event_t e = ev(s == QB_ORDER_STATUS_REJECTED || s == QB_ORDER_STATUS_CANCELED
                               ? (s == QB_ORDER_STATUS_REJECTED ? QB_EXEC_EV_REJECTED
                                                                : QB_EXEC_EV_CANCELED)
                               : QB_EXEC_EV_SUBMITTED,
                           OID);
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    if (s == QB_ORDER_STATUS_SUBMITTED || s == QB_ORDER_STATUS_REJECTED ||
        s == QB_ORDER_STATUS_CANCELED)
        return o;
    e = ev(QB_EXEC_EV_ACCEPTED, OID);
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    if (s == QB_ORDER_STATUS_ACCEPTED) return o;
    if (s == QB_ORDER_STATUS_EXPIRED) {
        e = ev(QB_EXEC_EV_EXPIRED, OID);
        OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
        return o;
    }
    e = fill(OID, "f1", s == QB_ORDER_STATUS_FILLED ? "10" : "4", "100");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_int_equal(o.o.status, s);
    return o;
}

/* ---- state machine ---------------------------------------------------------------- */

static void test_transitions_all(void **state) {
    (void)state;
    int legal = 0, illegal = 0;
    for (int from = QB_ORDER_STATUS_NEW; from <= QB_ORDER_STATUS_EXPIRED; from++) {
        /* NEW is never a target: no event leads there */
        assert_int_equal(qb_order_transition_ok((qb_order_status_t)from, QB_ORDER_STATUS_NEW), 0);
        for (int to = QB_ORDER_STATUS_SUBMITTED; to <= QB_ORDER_STATUS_EXPIRED; to++) {
            qb_exec_order_t o = in_state((qb_order_status_t)from), before;
            memcpy(&before, &o, sizeof o);
            qb_exec_event_t e;
            switch (to) {
            case QB_ORDER_STATUS_SUBMITTED: e = ev(QB_EXEC_EV_SUBMITTED, OID); break;
            case QB_ORDER_STATUS_ACCEPTED: e = ev(QB_EXEC_EV_ACCEPTED, OID); break;
            case QB_ORDER_STATUS_PARTIALLY_FILLED: e = fill(OID, "f2", "1", "101"); break;
            case QB_ORDER_STATUS_FILLED: {
                char q[32];
                qb_dec_format(o.o.qty - o.o.filled_qty, q, sizeof q);
                e = o.o.qty > o.o.filled_qty ? fill(OID, "f2", q, "101") : fill(OID, "f2", "1", "1");
                break;
            }
            case QB_ORDER_STATUS_CANCELED: e = ev(QB_EXEC_EV_CANCELED, OID); break;
            case QB_ORDER_STATUS_REJECTED: e = ev(QB_EXEC_EV_REJECTED, OID); break;
            default: e = ev(QB_EXEC_EV_EXPIRED, OID); break;
            }
            qb_exec_report_t r;
            E[0] = '\0';
            qb_err_t err = qb_exec_order_apply(&o, &e, &r, E, sizeof E);
            int ok = qb_order_transition_ok((qb_order_status_t)from, (qb_order_status_t)to);
            if (from == QB_ORDER_STATUS_FILLED && to == QB_ORDER_STATUS_FILLED) ok = 0;
            if (ok) {
                if (err) fail_msg("%s -> %s refused: %s", qb_order_status_name(from),
                                  qb_order_status_name(to), E);
                assert_int_equal(o.o.status, to);
                assert_int_equal(r.prev_status, from);
                assert_int_equal(r.sequence, before.seq + 1);
                legal++;
            } else {
                if (err == QB_OK)
                    fail_msg("%s -> %s accepted", qb_order_status_name(from),
                             qb_order_status_name(to));
                /* an overfill is INVALID, every other refusal STATE */
                assert_true(err == QB_ERR_STATE || err == QB_ERR_INVALID);
                assert_memory_equal(&o, &before, sizeof o); /* unchanged */
                illegal++;
            }
        }
    }
    /* the core table: 3 from NEW, 6 from SUBMITTED, 5 from ACCEPTED, 4 from
     * PARTIALLY_FILLED */
    assert_int_equal(legal, 18);
    assert_int_equal(illegal, 8 * 7 - 18);
    /* the message names both states and the event */
    qb_exec_order_t o = in_state(QB_ORDER_STATUS_FILLED);
    qb_exec_event_t e = ev(QB_EXEC_EV_CANCELED, OID);
    qb_exec_report_t r;
    ERR(QB_ERR_STATE, qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_non_null(strstr(E, "FILLED -> CANCELED"));
    assert_non_null(strstr(E, OID));
}

static void test_reports_and_fills(void **state) {
    (void)state;
    qb_exec_order_t o = mk_order(OID, "10");
    qb_exec_report_t r;
    OK(qb_exec_order_created(&o, 5, &r));
    assert_int_equal(r.status, QB_ORDER_STATUS_NEW);
    assert_int_equal(r.prev_status, 0);
    assert_int_equal(r.sequence, 1);
    assert_dec(r.leaves_qty, "10");
    ERR(QB_ERR_STATE, qb_exec_order_created(&o, 5, &r)); /* only once */
    qb_exec_event_t e = ev(QB_EXEC_EV_SUBMITTED, OID);
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    e = ev(QB_EXEC_EV_ACCEPTED, OID);
    snprintf(e.broker_order_id, sizeof e.broker_order_id, "B-1");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_string_equal(o.broker_order_id, "B-1");
    e = fill(OID, "f1", "3", "100.01");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_int_equal(r.status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    assert_dec(r.fill_qty, "3");
    assert_dec(r.cum_qty, "3");
    assert_dec(r.leaves_qty, "7");
    assert_dec(r.avg_price, "100.01");
    assert_string_equal(r.fill_id, "f1");
    e = fill(OID, "f2", "4", "100.02");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    /* (300.03 + 400.08) / 7 = 100.01571428571... -> 100.01571429 */
    assert_dec(r.avg_price, "100.01571429");
    /* overfill and bad fills refused, order unchanged */
    qb_exec_order_t keep;
    memcpy(&keep, &o, sizeof o);
    e = fill(OID, "f3", "4", "100");
    ERR(QB_ERR_INVALID, qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_non_null(strstr(E, "overfill"));
    e = fill(OID, "f3", "0", "100");
    ERR(QB_ERR_INVALID, qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    e = fill("6f1c2a40-0000-4000-8000-0000000000ff", "f3", "1", "100");
    ERR(QB_ERR_INVALID, qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_memory_equal(&o, &keep, sizeof o);
    e = fill(OID, "f3", "3", "99.99");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_int_equal(r.status, QB_ORDER_STATUS_FILLED);
    assert_dec(r.leaves_qty, "0");
    assert_dec(o.commission, "1.5");
    assert_int_equal(r.sequence, 6);
    /* cancel after partial fill keeps cum; leaves 0 once final */
    o = in_state(QB_ORDER_STATUS_PARTIALLY_FILLED);
    e = ev(QB_EXEC_EV_CANCELED, OID);
    e.reason_code = QB_EXEC_REASON_USER_CANCELED;
    snprintf(e.reason_text, sizeof e.reason_text, "operator");
    OK(qb_exec_order_apply(&o, &e, &r, E, sizeof E));
    assert_dec(r.cum_qty, "4");
    assert_dec(r.leaves_qty, "0");
    assert_int_equal(r.reason_code, QB_EXEC_REASON_USER_CANCELED);
    assert_string_equal(r.reason_text, "operator");
    assert_string_equal(qb_exec_ev_kind_name(QB_EXEC_EV_FILL), "FILL");
    assert_string_equal(qb_exec_ev_kind_name((qb_exec_ev_kind_t)99), "UNKNOWN");
}

static void test_validate(void **state) {
    (void)state;
    qb_exec_order_t o = mk_order(OID, "10");
    OK(qb_exec_order_validate(&o, E, sizeof E));
    qb_exec_order_t b = o;
    snprintf(b.o.id, sizeof b.o.id, "nope");
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E));
    b = o;
    b.o.type = QB_ORDER_TYPE_LIMIT;
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E));
    assert_non_null(strstr(E, "limit_price"));
    b.o.limit_price = D("10");
    OK(qb_exec_order_validate(&b, E, sizeof E));
    b = o;
    b.o.stop_price = D("1");
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E));
    b = o;
    b.o.qty = 0;
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E));
    b = o;
    b.o.tif = (qb_tif_t)5;
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E));
    b = o;
    b.take_profit = D("120");
    ERR(QB_ERR_INVALID, qb_exec_order_validate(&b, E, sizeof E)); /* needs leg ENTRY */
    b.leg = QB_EXEC_LEG_ENTRY;
    OK(qb_exec_order_validate(&b, E, sizeof E));
}

/* ---- bracket, OCO, rollout, ids, book -------------------------------------------- */

static void test_bracket_oco(void **state) {
    (void)state;
    qb_exec_order_t e = mk_order(OID, "10");
    e.leg = QB_EXEC_LEG_ENTRY;
    e.take_profit = D("110");
    e.stop_loss = D("95");
    qb_exec_order_t legs[2];
    assert_int_equal(qb_exec_bracket_legs(&e, 7, legs), 0); /* not final yet */
    e = in_state(QB_ORDER_STATUS_PARTIALLY_FILLED);
    e.leg = QB_EXEC_LEG_ENTRY;
    e.take_profit = D("110");
    e.stop_loss = D("95");
    assert_int_equal(qb_exec_bracket_legs(&e, 7, legs), 0);
    qb_exec_event_t c = ev(QB_EXEC_EV_CANCELED, OID);
    qb_exec_report_t r;
    OK(qb_exec_order_apply(&e, &c, &r, E, sizeof E));
    /* canceled after 4 filled: legs for 4 */
    assert_int_equal(qb_exec_bracket_legs(&e, 7, legs), 2);
    assert_int_equal(legs[0].leg, QB_EXEC_LEG_TAKE_PROFIT);
    assert_int_equal(legs[0].o.type, QB_ORDER_TYPE_LIMIT);
    assert_int_equal(legs[0].o.side, QB_SIDE_SELL);
    assert_dec(legs[0].o.qty, "4");
    assert_dec(legs[0].o.limit_price, "110");
    assert_int_equal(legs[1].leg, QB_EXEC_LEG_STOP_LOSS);
    assert_int_equal(legs[1].o.type, QB_ORDER_TYPE_STOP);
    assert_dec(legs[1].o.stop_price, "95");
    assert_string_equal(legs[0].parent_id, OID);
    assert_string_equal(legs[0].oco_group, OID);
    assert_string_equal(legs[1].oco_group, OID);
    assert_true(qb_uuid_valid(legs[0].o.id));
    assert_string_not_equal(legs[0].o.id, legs[1].o.id);
    OK(qb_exec_order_validate(&legs[0], E, sizeof E));
    OK(qb_exec_order_validate(&legs[1], E, sizeof E));
    /* deterministic: again the same ids; none once placed */
    qb_exec_order_t again[2];
    assert_int_equal(qb_exec_bracket_legs(&e, 9, again), 2);
    assert_string_equal(again[0].o.id, legs[0].o.id);
    e.legs_placed = 1;
    assert_int_equal(qb_exec_bracket_legs(&e, 9, again), 0);
    /* OCO: a fill of the TP cancels the open SL, not itself, not closed ones */
    legs[0].o.status = QB_ORDER_STATUS_PARTIALLY_FILLED;
    legs[1].o.status = QB_ORDER_STATUS_ACCEPTED;
    assert_int_equal(qb_exec_oco_sibling(&legs[0], &legs[1]), 1);
    assert_int_equal(qb_exec_oco_sibling(&legs[0], &legs[0]), 0);
    legs[1].o.status = QB_ORDER_STATUS_CANCELED;
    assert_int_equal(qb_exec_oco_sibling(&legs[0], &legs[1]), 0);
    qb_exec_order_t other = mk_order("6f1c2a40-0000-4000-8000-0000000000b2", "1");
    other.o.status = QB_ORDER_STATUS_ACCEPTED;
    assert_int_equal(qb_exec_oco_sibling(&legs[0], &other), 0); /* no group */
}

static void test_rollout_ids(void **state) {
    (void)state;
    assert_dec(qb_exec_rollout_qty(D("95"), 10), "9");     /* 9.5 -> 9 whole units */
    assert_dec(qb_exec_rollout_qty(D("5"), 10), "0");      /* -> rejected */
    assert_dec(qb_exec_rollout_qty(D("100"), 100), "100");
    assert_dec(qb_exec_rollout_qty(D("100"), 0), "100");   /* 0 = 100% */
    assert_dec(qb_exec_rollout_qty(D("0.5"), 10), "0.05"); /* fractional: 1e-8 */
    assert_dec(qb_exec_rollout_qty(D("0.00000015"), 50), "0.00000007");
    char a[QB_UUID_STRLEN], b[QB_UUID_STRLEN], f[QB_FILL_ID_MAX + 1];
    qb_exec_replace_id("cmd-1", a);
    qb_exec_replace_id("cmd-1", b);
    assert_string_equal(a, b);
    assert_true(qb_uuid_valid(a));
    qb_exec_fill_id_cum(OID, D("2.5"), f);
    assert_string_equal(f, OID "/250000000");
}

static void count_cb(qb_exec_order_t *o, void *ctx) {
    (void)o;
    (*(int *)ctx)++;
}

static void test_book(void **state) {
    (void)state;
    qb_exec_book_t *b = qb_exec_book_new();
    assert_non_null(b);
    char id[QB_UUID_STRLEN];
    for (int i = 0; i < 1000; i++) {
        char name[32];
        int n = snprintf(name, sizeof name, "o%d", i);
        qb_uuid_v5(QB_EXEC_NS, name, (size_t)n, id);
        qb_exec_order_t o = mk_order(id, "1");
        assert_non_null(qb_exec_book_put(b, &o));
    }
    assert_int_equal(qb_exec_book_count(b), 1000);
    for (int i = 0; i < 1000; i += 2) {
        char name[32];
        int n = snprintf(name, sizeof name, "o%d", i);
        qb_uuid_v5(QB_EXEC_NS, name, (size_t)n, id);
        assert_non_null(qb_exec_book_get(b, id));
        qb_exec_book_remove(b, id);
        assert_null(qb_exec_book_get(b, id));
    }
    assert_int_equal(qb_exec_book_count(b), 500);
    int cnt = 0;
    qb_exec_book_each(b, count_cb, &cnt);
    assert_int_equal(cnt, 500);
    size_t n = 0;
    qb_exec_order_t **l = qb_exec_book_list(b, &n);
    assert_int_equal(n, 500);
    free(l);
    /* replace in place (o1 was kept: only even ones were removed) */
    qb_uuid_v5(QB_EXEC_NS, "o1", 2, id);
    qb_exec_order_t x = *qb_exec_book_get(b, id);
    x.o.qty = D("7");
    qb_exec_book_put(b, &x);
    assert_dec(qb_exec_book_get(b, id)->o.qty, "7");
    assert_int_equal(qb_exec_book_count(b), 500);
    qb_exec_book_destroy(b);
    qb_exec_book_destroy(NULL);
}

/* ---- audit chain ------------------------------------------------------------------- */

typedef struct {
    char acct[16], oid[40], evt[16], det[64], prev[65], hash[65];
    int64_t seq, at;
} arow_t;

static void chain(arow_t *r, int n) {
    const char *prev = QB_EXEC_AUDIT_GENESIS;
    for (int i = 0; i < n; i++) {
        snprintf(r[i].acct, sizeof r[i].acct, "paper-1");
        snprintf(r[i].oid, sizeof r[i].oid, "%s", OID);
        snprintf(r[i].evt, sizeof r[i].evt, "FILL");
        snprintf(r[i].det, sizeof r[i].det, "{\"qty\":\"%d\"}", i + 1);
        r[i].seq = i + 1;
        r[i].at = 1000 + i;
        snprintf(r[i].prev, sizeof r[i].prev, "%s", prev);
        qb_exec_audit_hash(prev, r[i].acct, r[i].seq, r[i].at, r[i].oid, r[i].evt, r[i].det,
                           r[i].hash);
        prev = r[i].hash;
    }
}

/* Verify like qbctl: the first bad row index, or -1. */
static int verify(const arow_t *r, int n, char *why, size_t cap) {
    int64_t last = 0;
    const char *lh = QB_EXEC_AUDIT_GENESIS;
    for (int i = 0; i < n; i++) {
        qb_exec_audit_row_t x = {i + 1, r[i].acct, r[i].seq, r[i].at, r[i].oid, r[i].evt,
                                 r[i].det, r[i].prev, r[i].hash};
        if (qb_exec_audit_check(last, lh, &x, why, cap) != QB_OK) return i;
        last = r[i].seq;
        lh = r[i].hash;
    }
    return -1;
}

static void test_audit_chain(void **state) {
    (void)state;
    arow_t r[6];
    char why[256];
    chain(r, 6);
    assert_int_equal(strlen(r[0].hash), 64);
    assert_int_equal(verify(r, 6, why, sizeof why), -1);
    /* the hash is SHA-256 over length-prefixed fields: a field boundary
     * moved gives another hash */
    char h1[65], h2[65];
    qb_exec_audit_hash("p", "ab", 1, 2, "c", "d", "e", h1);
    qb_exec_audit_hash("p", "a", 1, 2, "bc", "d", "e", h2);
    assert_string_not_equal(h1, h2);
    /* a changed detail */
    arow_t t[6];
    memcpy(t, r, sizeof r);
    t[3].det[8] = '9';
    assert_int_equal(verify(t, 6, why, sizeof why), 3);
    assert_non_null(strstr(why, "hash mismatch"));
    /* a changed row whose hash was recomputed: the next row's link breaks */
    qb_exec_audit_hash(t[3].prev, t[3].acct, t[3].seq, t[3].at, t[3].oid, t[3].evt, t[3].det,
                       t[3].hash);
    assert_int_equal(verify(t, 6, why, sizeof why), 4);
    assert_non_null(strstr(why, "prev_hash"));
    /* a deleted row */
    memcpy(t, r, sizeof r);
    memmove(&t[2], &t[3], 3 * sizeof t[0]);
    assert_int_equal(verify(t, 5, why, sizeof why), 2);
    assert_non_null(strstr(why, "rows 3..3 missing"));
}

/* ---- reconciliation ---------------------------------------------------------------- */

static qb_exec_border_t border(const char *status, const char *qty, const char *filled,
                               const char *avg) {
    qb_exec_border_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.client_order_id, sizeof b.client_order_id, "%s", OID);
    snprintf(b.broker_order_id, sizeof b.broker_order_id, "B-9");
    snprintf(b.raw_status, sizeof b.raw_status, "%s", status);
    b.qty = D(qty);
    b.filled_qty = D(filled);
    b.filled_avg_price = D(avg);
    b.status = strcmp(status, "filled") == 0     ? QB_ORDER_STATUS_FILLED
               : strcmp(status, "canceled") == 0 ? QB_ORDER_STATUS_CANCELED
               : b.filled_qty > 0                ? QB_ORDER_STATUS_PARTIALLY_FILLED
                                                 : QB_ORDER_STATUS_ACCEPTED;
    return b;
}

static void test_recon(void **state) {
    (void)state;
    qb_exec_event_t evs[4];
    qb_exec_recon_action_t act;
    char note[256];
    qb_exec_report_t r;
    /* SUBMITTED, broker filled 10 @ 100.5 while we were down: ACCEPTED? no
     * (already filled): one FILL of 10, FILLED */
    qb_exec_order_t o = in_state(QB_ORDER_STATUS_SUBMITTED);
    qb_exec_border_t b = border("filled", "10", "10", "100.5");
    size_t n = qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_FILL);
    assert_dec(evs[0].qty, "10");
    assert_dec(evs[0].price, "100.5");
    assert_string_equal(evs[0].fill_id, OID "/1000000000");
    OK(qb_exec_order_apply(&o, &evs[0], &r, E, sizeof E));
    assert_int_equal(o.o.status, QB_ORDER_STATUS_FILLED);
    assert_string_equal(o.broker_order_id, "B-9");
    assert_int_equal(qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note), 0);
    /* we have 4 @ 100; the broker 7 @ avg 101.2857142857: the missed 3 at
     * (101.2857142857 x 7 - 400) / 3 */
    o = in_state(QB_ORDER_STATUS_PARTIALLY_FILLED);
    b = border("partially_filled", "10", "7", "101");
    n = qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 1);
    assert_dec(evs[0].qty, "3");
    assert_dec(evs[0].price, "102.33333333"); /* (707 - 400) / 3 */
    assert_string_equal(evs[0].fill_id, OID "/700000000");
    OK(qb_exec_order_apply(&o, &evs[0], &r, E, sizeof E));
    assert_dec(o.o.avg_fill_price, "101");
    /* then canceled at the broker */
    b = border("canceled", "10", "7", "101");
    n = qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_CANCELED);
    OK(qb_exec_order_apply(&o, &evs[0], &r, E, sizeof E));
    /* SUBMITTED and open at the broker, nothing filled: ACCEPTED */
    o = in_state(QB_ORDER_STATUS_SUBMITTED);
    b = border("new", "10", "0", "0");
    n = qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_ACCEPTED);
    /* unknown to the broker: SUBMITTED -> resend; ACCEPTED -> closed */
    n = qb_exec_recon_order(&o, NULL, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 0);
    assert_int_equal(act, QB_EXEC_RECON_RESUBMIT);
    o = in_state(QB_ORDER_STATUS_ACCEPTED);
    n = qb_exec_recon_order(&o, NULL, 77, evs, &act, note, sizeof note);
    assert_int_equal(n, 1);
    assert_int_equal(act, QB_EXEC_RECON_DISCREPANCY);
    assert_int_equal(evs[0].reason_code, QB_EXEC_REASON_BROKER_UNKNOWN);
    OK(qb_exec_order_apply(&o, &evs[0], &r, E, sizeof E));
    /* broker reports less than we have: discrepancy, no event */
    o = in_state(QB_ORDER_STATUS_PARTIALLY_FILLED);
    b = border("partially_filled", "10", "2", "100");
    assert_int_equal(qb_exec_recon_order(&o, &b, 77, evs, &act, note, sizeof note), 0);
    assert_int_equal(act, QB_EXEC_RECON_DISCREPANCY);
    assert_non_null(strstr(note, "reports 2 filled"));
    /* positions */
    qb_exec_bposition_t ours[3], theirs[2];
    memset(ours, 0, sizeof ours);
    memset(theirs, 0, sizeof theirs);
    qb_symbol_set(&ours[0].symbol, "AAA", NULL, 0);
    ours[0].qty = D("10");
    qb_symbol_set(&ours[1].symbol, "BBB", NULL, 0);
    ours[1].qty = D("-5");
    qb_symbol_set(&ours[2].symbol, "CCC", NULL, 0);
    ours[2].qty = D("1");
    qb_symbol_set(&theirs[0].symbol, "CCC", NULL, 0);
    theirs[0].qty = D("1");
    qb_symbol_set(&theirs[1].symbol, "AAA", NULL, 0);
    theirs[1].qty = D("12");
    qb_exec_pos_diff_t *d = NULL;
    size_t nd = 0;
    OK(qb_exec_recon_positions(ours, 3, theirs, 2, &d, &nd));
    assert_int_equal(nd, 2);
    assert_string_equal(d[0].symbol.s, "AAA");
    assert_dec(d[0].broker, "12");
    assert_string_equal(d[1].symbol.s, "BBB");
    assert_dec(d[1].broker, "0");
    free(d);
    OK(qb_exec_recon_positions(ours, 1, ours, 1, &d, &nd));
    assert_int_equal(nd, 0);
    assert_null(d);
}

static void test_alpaca_parse(void **state) {
    (void)state;
    qb_exec_border_t b;
    OK(qb_exec_alpaca_parse_order(
        "{\"id\":\"61e69015-8549-4bfd-b9c3-01e75843f47d\",\"client_order_id\":\"" OID "\","
        "\"created_at\":\"2024-01-02T14:30:00.123456Z\",\"updated_at\":\"2024-01-02T14:30:01Z\","
        "\"symbol\":\"AAPL\",\"qty\":\"15\",\"filled_qty\":\"5\",\"filled_avg_price\":\"190.25\","
        "\"order_type\":\"limit\",\"type\":\"limit\",\"side\":\"sell\",\"time_in_force\":\"gtc\","
        "\"limit_price\":\"191\",\"stop_price\":null,\"status\":\"partially_filled\"}",
        &b, E, sizeof E));
    assert_string_equal(b.client_order_id, OID);
    assert_string_equal(b.broker_order_id, "61e69015-8549-4bfd-b9c3-01e75843f47d");
    assert_int_equal(b.status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    assert_int_equal(b.side, QB_SIDE_SELL);
    assert_int_equal(b.type, QB_ORDER_TYPE_LIMIT);
    assert_int_equal(b.tif, QB_TIF_GTC);
    assert_dec(b.qty, "15");
    assert_dec(b.filled_avg_price, "190.25");
    assert_dec(b.limit_price, "191");
    assert_int_equal(b.stop_price, 0);
    assert_true(b.updated_ts > 0);
    const char *st[][2] = {{"new", "ACCEPTED"},          {"accepted", "ACCEPTED"},
                           {"pending_new", "ACCEPTED"},  {"filled", "FILLED"},
                           {"canceled", "CANCELED"},     {"expired", "EXPIRED"},
                           {"rejected", "REJECTED"},     {"replaced", "CANCELED"},
                           {"done_for_day", "ACCEPTED"}, {"pending_cancel", "ACCEPTED"}};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        char js[256];
        snprintf(js, sizeof js, "{\"client_order_id\":\"x\",\"qty\":\"1\",\"filled_qty\":\"0\","
                                "\"status\":\"%s\"}", st[i][0]);
        OK(qb_exec_alpaca_parse_order(js, &b, E, sizeof E));
        assert_string_equal(qb_order_status_name(b.status), st[i][1]);
        assert_int_equal(b.replaced, strcmp(st[i][0], "replaced") == 0);
    }
    ERR(QB_ERR_PARSE, qb_exec_alpaca_parse_order("[1]", &b, E, sizeof E));
    ERR(QB_ERR_PARSE, qb_exec_alpaca_parse_order("{\"status\":\"new\"}", &b, E, sizeof E));
}

/* ---- paper broker == backtest engine ------------------------------------------------ */

#define DAY (86400LL * 1000000000LL)
#define T0 1704153600000000000LL /* 2024-01-02 */
#define NB 400
#define NS 3

typedef struct {
    qb_pf_bar_t bars[NS][NB];
    qb_signal_t sig[NB * NS];
    size_t nsig;
} scen_t;

static void scen_make(scen_t *s, uint64_t seed) {
    static const char *syms[NS] = {"AAA", "BBB", "CCC"};
    uint64_t st = seed;
    s->nsig = 0;
    for (int k = 0; k < NS; k++) {
        int64_t p = 5000000000LL + (int64_t)(qb_test_rand(&st) % 5000000000ULL); /* 50..100 */
        for (int i = 0; i < NB; i++) {
            int64_t o = p;
            int64_t step = (int64_t)(qb_test_rand(&st) % 400000000ULL) - 200000000LL;
            int64_t c = o + step;
            if (c < 100000000) c = 100000000;
            int64_t hi = (o > c ? o : c) + (int64_t)(qb_test_rand(&st) % 100000000ULL);
            int64_t lo = (o < c ? o : c) - (int64_t)(qb_test_rand(&st) % 100000000ULL);
            if (lo < 50000000) lo = 50000000;
            s->bars[k][i] = (qb_pf_bar_t){T0 + i * DAY, o, hi, lo, c,
                                          (int64_t)(2000 + qb_test_rand(&st) % 20000) * 100000000LL};
            p = c;
            if (i > 0 && i < NB - 1 && qb_test_rand(&st) % 9 == 0) {
                qb_signal_t *g = &s->sig[s->nsig++];
                memset(g, 0, sizeof *g);
                qb_symbol_set(&g->symbol, syms[k], NULL, 0);
                strcpy(g->timeframe, "1d");
                g->bar_ts = T0 + i * DAY;
                g->direction = qb_test_rand(&st) % 2 ? QB_SIGNAL_LONG : QB_SIGNAL_FLAT;
                g->confidence = 1;
                g->reference_price = c;
            }
        }
    }
}

typedef struct {
    qb_time_t ts;
    char sym[QB_SYMBOL_MAX + 1];
    qb_side_t side;
    qb_dec_t qty, price, commission;
} pfill_t;

/* The backtest engine's "signals to orders" (qb_backtest.h a-c, long only,
 * FIXED_QTY) through the paper broker, bar by bar. */
static size_t paper_run(const scen_t *s, const qb_bt_config_t *c, pfill_t *out, size_t cap) {
    static const char *syms[NS] = {"AAA", "BBB", "CCC"};
    qb_exec_paper_config_t pc;
    qb_exec_paper_config_default(&pc);
    pc.sim.timing = c->fill;
    pc.sim.slippage_bps = c->slippage_bps;
    pc.sim.tick = c->tick;
    pc.sim.volume_cap = c->volume_cap;
    pc.sim.lot = c->lot;
    pc.sim.commission = c->commission;
    pc.pf.initial_cash = c->cash;
    pc.pf.allow_short = 0;
    qb_exec_broker_t *pb = NULL;
    OK(qb_exec_paper_new(&pc, &pb, E, sizeof E));
    qb_exec_book_t *book = qb_exec_book_new();
    size_t nf = 0, norders = 0;
    qb_exec_event_t *evs = NULL;
    size_t nev = 0;
    for (int i = 0; i < NB; i++) {
        for (int k = 0; k < NS; k++) {
            qb_bar_t b;
            memset(&b, 0, sizeof b);
            qb_symbol_set(&b.symbol, syms[k], NULL, 0);
            strcpy(b.timeframe, "1d");
            b.ts = s->bars[k][i].ts;
            b.open = s->bars[k][i].open;
            b.high = s->bars[k][i].high;
            b.low = s->bars[k][i].low;
            b.close = s->bars[k][i].close;
            b.volume = s->bars[k][i].volume;
            nev = 0;
            OK(qb_exec_paper_on_bar(pb, &b, &evs, &nev, E, sizeof E));
            for (size_t j = 0; j < nev; j++) {
                qb_exec_order_t *o = qb_exec_book_get(book, evs[j].order_id);
                assert_non_null(o);
                qb_exec_report_t r;
                OK(qb_exec_order_apply(o, &evs[j], &r, E, sizeof E));
                if (evs[j].kind == QB_EXEC_EV_FILL) {
                    assert_true(nf < cap);
                    out[nf++] = (pfill_t){evs[j].ts, "", o->o.side, evs[j].qty, evs[j].price,
                                          evs[j].commission};
                    snprintf(out[nf - 1].sym, sizeof out[nf - 1].sym, "%s", o->o.symbol.s);
                }
            }
        }
        for (int k = 0; k < NS; k++) {
            for (size_t g = 0; g < s->nsig; g++) {
                const qb_signal_t *sg = &s->sig[g];
                if (sg->bar_ts != s->bars[k][i].ts || strcmp(sg->symbol.s, syms[k]) != 0) continue;
                /* a. cancel the symbol's working orders */
                size_t nl = 0;
                qb_exec_order_t **l = qb_exec_book_list(book, &nl);
                for (size_t j = 0; j < nl; j++) {
                    if (!qb_exec_order_is_open(l[j]) || strcmp(l[j]->o.symbol.s, syms[k]) != 0)
                        continue;
                    l[j]->o.updated_ts = sg->bar_ts;
                    OK(qb_exec_broker_cancel(pb, l[j], E, sizeof E));
                }
                free(l);
                qb_exec_event_t *ce = NULL;
                size_t nce = 0;
                qb_exec_paper_take_events(pb, &ce, &nce);
                for (size_t j = 0; j < nce; j++) {
                    qb_exec_report_t r;
                    OK(qb_exec_order_apply(qb_exec_book_get(book, ce[j].order_id), &ce[j], &r, E,
                                           sizeof E));
                }
                free(ce);
                /* b/c. exit and entry from the position */
                qb_exec_bposition_t *ps = NULL;
                size_t nps = 0;
                OK(qb_exec_broker_positions(pb, "paper-1", &ps, &nps, E, sizeof E));
                qb_dec_t pos = 0;
                for (size_t j = 0; j < nps; j++)
                    if (strcmp(ps[j].symbol.s, syms[k]) == 0) pos = ps[j].qty;
                free(ps);
                for (int leg = 0; leg < 2; leg++) {
                    qb_dec_t q = 0;
                    qb_side_t side = QB_SIDE_BUY;
                    qb_order_type_t ty = QB_ORDER_TYPE_MARKET;
                    qb_dec_t lim = 0;
                    if (leg == 0 && sg->direction == QB_SIGNAL_FLAT && pos > 0) {
                        q = pos;
                        side = QB_SIDE_SELL;
                    } else if (leg == 1 && sg->direction == QB_SIGNAL_LONG && pos <= 0) {
                        q = c->sizing_value;
                        if (c->entry_type == QB_ORDER_TYPE_LIMIT) {
                            ty = QB_ORDER_TYPE_LIMIT;
                            qb_dec_t f = 100000000LL - c->limit_offset_bps * 10000 / 100000000LL;
                            OK(qb_dec_mul(sg->reference_price, f, &lim, QB_ROUND_FLOOR));
                        }
                    }
                    if (q <= 0) continue;
                    char name[64], id[QB_UUID_STRLEN];
                    int nl2 = snprintf(name, sizeof name, "%zu", norders++);
                    qb_uuid_v5(QB_EXEC_NS, name, (size_t)nl2, id);
                    qb_exec_order_t o = mk_order(id, "1");
                    qb_symbol_set(&o.o.symbol, syms[k], NULL, 0);
                    o.o.side = side;
                    o.o.type = ty;
                    o.o.limit_price = lim;
                    o.o.qty = q;
                    o.o.created_ts = o.o.updated_ts = sg->bar_ts;
                    qb_exec_report_t r;
                    OK(qb_exec_order_created(&o, sg->bar_ts, &r));
                    qb_exec_event_t se = ev(QB_EXEC_EV_SUBMITTED, id);
                    OK(qb_exec_order_apply(&o, &se, &r, E, sizeof E));
                    qb_exec_border_t bo;
                    OK(qb_exec_broker_submit(pb, &o, &bo, E, sizeof E));
                    assert_int_equal(bo.status, QB_ORDER_STATUS_ACCEPTED);
                    se = ev(QB_EXEC_EV_ACCEPTED, id);
                    OK(qb_exec_order_apply(&o, &se, &r, E, sizeof E));
                    assert_non_null(qb_exec_book_put(book, &o));
                }
            }
        }
    }
    free(evs);
    qb_exec_book_destroy(book);
    qb_exec_broker_destroy(pb);
    return nf;
}

static void paper_vs_backtest(const char *label, void (*tweak)(qb_bt_config_t *c)) {
    static scen_t s;
    static pfill_t pf[20000];
    scen_make(&s, qb_test_seed(label));
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    static const char *syms[NS] = {"AAA", "BBB", "CCC"};
    for (int k = 0; k < NS; k++) {
        uint32_t id;
        OK(qb_bt_data_symbol(d, syms[k], &id, E, sizeof E));
        OK(qb_bt_data_append(d, id, s.bars[k], NB, E, sizeof E));
    }
    OK(qb_bt_data_finalize(d, E, sizeof E));
    qb_bt_config_t c;
    qb_bt_config_default(&c);
    c.cash = D("10000000");
    c.long_only = 1;
    c.benchmark = 0;
    c.keep_fills = 1;
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("1500");
    c.slippage_bps = D("5");
    c.volume_cap = D("0.05"); /* 100..1100 a bar: 1500 takes 2+ bars */
    c.commission = qb_commission_per_share(D("0.005"), D("1"));
    tweak(&c);
    qb_bt_result_t *r = NULL;
    OK(qb_bt_run_signals(d, &c, s.sig, s.nsig, &r, E, sizeof E));
    size_t nb;
    const qb_bt_fill_t *bf = qb_bt_result_fills(r, &nb);
    size_t np = paper_run(&s, &c, pf, sizeof pf / sizeof pf[0]);
    const qb_bt_counts_t *cnt = qb_bt_result_counts(r);
    fprintf(stderr, "%s: %zu signals, %zu fills (%llu partial), backtest == paper\n", label,
            s.nsig, nb, (unsigned long long)cnt->partial_fills);
    assert_true(nb > 50);
    assert_true(cnt->partial_fills > 10);
    assert_int_equal(np, nb);
    for (size_t i = 0; i < nb; i++) {
        if (pf[i].ts != bf[i].ts || strcmp(pf[i].sym, qb_bt_result_symbol(r, bf[i].sym)) != 0 ||
            pf[i].side != bf[i].side || pf[i].qty != bf[i].qty || pf[i].price != bf[i].price ||
            pf[i].commission != bf[i].commission)
            fail_msg("fill %zu differs: backtest %s %lld %lld @ %lld fee %lld, paper %s %lld %lld @ "
                     "%lld fee %lld",
                     i, qb_bt_result_symbol(r, bf[i].sym), (long long)bf[i].ts,
                     (long long)bf[i].qty, (long long)bf[i].price, (long long)bf[i].commission,
                     pf[i].sym, (long long)pf[i].ts, (long long)pf[i].qty,
                     (long long)pf[i].price, (long long)pf[i].commission);
    }
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

static void tw_market(qb_bt_config_t *c) { (void)c; }
static void tw_limit(qb_bt_config_t *c) {
    c->entry_type = QB_ORDER_TYPE_LIMIT;
    c->limit_offset_bps = D("50");
}

static void test_paper_equals_backtest_market(void **state) {
    (void)state;
    paper_vs_backtest("paper_vs_backtest_market", tw_market);
}
static void test_paper_equals_backtest_limit(void **state) {
    (void)state;
    paper_vs_backtest("paper_vs_backtest_limit", tw_limit);
}

/* The paper broker's own surface: refusals, cancel, restore, positions. */
static void test_paper_broker(void **state) {
    (void)state;
    qb_exec_paper_config_t pc;
    qb_exec_paper_config_default(&pc);
    pc.pf.initial_cash = D("1000");
    qb_exec_broker_t *pb = NULL;
    OK(qb_exec_paper_new(&pc, &pb, E, sizeof E));
    assert_string_equal(qb_exec_broker_name(pb), "sim");
    qb_exec_order_t o = mk_order(OID, "5");
    o.o.type = QB_ORDER_TYPE_LIMIT;
    o.o.limit_price = D("100");
    qb_exec_border_t b;
    OK(qb_exec_broker_submit(pb, &o, &b, E, sizeof E));
    assert_string_equal(b.client_order_id, OID);
    /* the same client order id again is the same order, not a second one */
    OK(qb_exec_broker_submit(pb, &o, &b, E, sizeof E));
    qb_exec_border_t *open = NULL;
    size_t nopen = 0;
    OK(qb_exec_broker_open_orders(pb, &open, &nopen, E, sizeof E));
    assert_int_equal(nopen, 1);
    free(open);
    /* a sell without a position is refused (cash account) */
    qb_exec_order_t s = mk_order("6f1c2a40-0000-4000-8000-0000000000c3", "1");
    s.o.side = QB_SIDE_SELL;
    ERR(QB_ERR_INVALID, qb_exec_broker_submit(pb, &s, &b, E, sizeof E));
    assert_non_null(strstr(E, "SHORT"));
    /* a bar through the limit: 5 @ 100 */
    qb_bar_t bar;
    memset(&bar, 0, sizeof bar);
    qb_symbol_set(&bar.symbol, "AAPL", NULL, 0);
    strcpy(bar.timeframe, "1d");
    bar.ts = T0;
    bar.open = D("101");
    bar.high = D("102");
    bar.low = D("99");
    bar.close = D("100");
    bar.volume = D("1000");
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    OK(qb_exec_paper_on_bar(pb, &bar, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_FILL);
    assert_dec(evs[0].price, "100");
    assert_string_equal(evs[0].fill_id, OID "/500000000");
    /* the same bar again: ignored */
    n = 0;
    OK(qb_exec_paper_on_bar(pb, &bar, &evs, &n, E, sizeof E));
    assert_int_equal(n, 0);
    free(evs);
    OK(qb_exec_broker_order_status(pb, OID, &b, E, sizeof E));
    assert_int_equal(b.status, QB_ORDER_STATUS_FILLED);
    ERR(QB_ERR_STATE, qb_exec_broker_cancel(pb, &o, E, sizeof E));
    ERR(QB_ERR_NOT_FOUND, qb_exec_broker_order_status(pb, "nope", &b, E, sizeof E));
    qb_exec_baccount_t ac;
    OK(qb_exec_broker_account(pb, "paper-1", &ac, E, sizeof E));
    assert_dec(ac.cash, "500");
    /* kill switch: cancel all */
    qb_exec_order_t l2 = mk_order("6f1c2a40-0000-4000-8000-0000000000c4", "1");
    l2.o.type = QB_ORDER_TYPE_LIMIT;
    l2.o.limit_price = D("50");
    OK(qb_exec_broker_submit(pb, &l2, &b, E, sizeof E));
    evs = NULL;
    n = 0;
    assert_int_equal(qb_exec_paper_cancel_all(pb, "paper-1", T0, &evs, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_CANCELED);
    assert_int_equal(evs[0].reason_code, QB_EXEC_REASON_KILL_SWITCH);
    free(evs);
    qb_exec_broker_destroy(pb);

    /* restore after a restart: fills booked, a partly filled order resumes
     * with its cumulative fill ids */
    pc.pf.initial_cash = D("10000");
    OK(qb_exec_paper_new(&pc, &pb, E, sizeof E));
    OK(qb_exec_paper_restore_fill(pb, "paper-1", "AAPL", QB_SIDE_BUY, D("5"), D("100"), 0, E,
                                  sizeof E));
    qb_exec_order_t r = in_state(QB_ORDER_STATUS_PARTIALLY_FILLED); /* 4 of 10 @ 100 */
    OK(qb_exec_paper_restore_order(pb, &r, E, sizeof E));
    qb_exec_bposition_t *ps = NULL;
    size_t nps = 0;
    OK(qb_exec_broker_positions(pb, "paper-1", &ps, &nps, E, sizeof E));
    assert_int_equal(nps, 1);
    assert_dec(ps[0].qty, "5");
    free(ps);
    bar.ts = T0 + DAY;
    bar.open = D("90");
    bar.high = D("91");
    bar.low = D("89");
    bar.close = D("90");
    evs = NULL;
    n = 0;
    OK(qb_exec_paper_on_bar(pb, &bar, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_dec(evs[0].qty, "6");
    assert_string_equal(evs[0].fill_id, OID "/1000000000");
    qb_exec_report_t rep;
    OK(qb_exec_order_apply(&r, &evs[0], &rep, E, sizeof E));
    assert_int_equal(r.o.status, QB_ORDER_STATUS_FILLED);
    free(evs);
    qb_exec_broker_destroy(pb);
    qb_exec_broker_destroy(NULL);
}

/* not_before: an order decided on bar t that reaches the paper broker before
 * the broker has seen bar t (its bar feed behind) is held and matched from
 * the bar after t, as in the backtest; one decided on a bar already seen is
 * placed at once; held orders can be canceled and are canceled by the kill
 * switch; a refusal at placement is a REJECTED event. */
static qb_bar_t nb_bar(const char *sym, qb_time_t ts, const char *open) {
    qb_bar_t bar;
    memset(&bar, 0, sizeof bar);
    qb_symbol_set(&bar.symbol, sym, NULL, 0);
    strcpy(bar.timeframe, "1d");
    bar.ts = ts;
    bar.open = bar.high = bar.low = bar.close = D(open);
    bar.volume = D("1000");
    return bar;
}

/* qb_exec_paper_last_bar: the newest bar of a symbol the paper broker was
 * given, whether an account trades it or not; older bars do not move it
 * back; many symbols (the table grows). */
static void test_paper_last_bar(void **state) {
    (void)state;
    qb_exec_paper_config_t pc;
    qb_exec_paper_config_default(&pc);
    qb_exec_broker_t *pb = NULL;
    OK(qb_exec_paper_new(&pc, &pb, E, sizeof E));
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    assert_int_equal(qb_exec_paper_last_bar(pb, "AAPL"), 0);
    qb_bar_t b1 = nb_bar("AAPL", T0 + DAY, "110"), b0 = nb_bar("AAPL", T0, "100");
    OK(qb_exec_paper_on_bar(pb, &b1, &evs, &n, E, sizeof E)); /* no account knows AAPL */
    assert_int_equal(qb_exec_paper_last_bar(pb, "AAPL"), T0 + DAY);
    OK(qb_exec_paper_on_bar(pb, &b0, &evs, &n, E, sizeof E));
    assert_int_equal(qb_exec_paper_last_bar(pb, "AAPL"), T0 + DAY);
    char sym[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(sym, sizeof sym, "S%04d", i);
        qb_bar_t b = nb_bar(sym, T0 + i, "10");
        OK(qb_exec_paper_on_bar(pb, &b, &evs, &n, E, sizeof E));
    }
    for (int i = 0; i < 1000; i += 37) {
        snprintf(sym, sizeof sym, "S%04d", i);
        assert_int_equal(qb_exec_paper_last_bar(pb, sym), T0 + i);
    }
    assert_int_equal(qb_exec_paper_last_bar(pb, "AAPL"), T0 + DAY);
    assert_int_equal(qb_exec_paper_last_bar(pb, "MSFT"), 0);
    assert_int_equal(n, 0);
    free(evs);
    qb_exec_broker_destroy(pb);
}

static void test_paper_not_before(void **state) {
    (void)state;
    qb_exec_paper_config_t pc;
    qb_exec_paper_config_default(&pc);
    pc.pf.initial_cash = D("100000");
    qb_exec_broker_t *pb = NULL;
    OK(qb_exec_paper_new(&pc, &pb, E, sizeof E));
    qb_exec_border_t b;
    qb_exec_event_t *evs = NULL;
    size_t n = 0;
    qb_bar_t b0 = nb_bar("AAPL", T0, "100"), b1 = nb_bar("AAPL", T0 + DAY, "110"),
             b2 = nb_bar("AAPL", T0 + 2 * DAY, "120"), b3 = nb_bar("AAPL", T0 + 3 * DAY, "130");
    /* the lagging feed: the order of bar T0+DAY arrives before that bar */
    OK(qb_exec_paper_on_bar(pb, &b0, &evs, &n, E, sizeof E));
    qb_exec_order_t o = mk_order("6f1c2a40-0000-4000-8000-0000000000d1", "2");
    o.not_before = T0 + DAY;
    OK(qb_exec_broker_submit(pb, &o, &b, E, sizeof E));
    assert_int_equal(b.status, QB_ORDER_STATUS_ACCEPTED);
    qb_exec_border_t *open = NULL;
    size_t nopen = 0;
    OK(qb_exec_broker_open_orders(pb, &open, &nopen, E, sizeof E));
    assert_int_equal(nopen, 1);
    free(open);
    qb_exec_paper_take_events(pb, &evs, &n);
    assert_int_equal(n, 0);
    OK(qb_exec_paper_on_bar(pb, &b1, &evs, &n, E, sizeof E));
    assert_int_equal(n, 0); /* not inside its own bar (would be 2 @ 110) */
    OK(qb_exec_paper_on_bar(pb, &b2, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_FILL);
    assert_dec(evs[0].price, "120");
    assert_dec(evs[0].qty, "2");
    free(evs);
    evs = NULL;
    n = 0;
    /* the feed ahead: decided on a bar already seen -> next bar */
    qb_exec_order_t o2 = mk_order("6f1c2a40-0000-4000-8000-0000000000d2", "1");
    o2.not_before = T0 + 2 * DAY;
    OK(qb_exec_broker_submit(pb, &o2, &b, E, sizeof E));
    OK(qb_exec_paper_on_bar(pb, &b3, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_dec(evs[0].price, "130");
    free(evs);
    evs = NULL;
    n = 0;
    /* a bar skipped: the order of T0+4d is placed before T0+5d's bar */
    qb_exec_order_t o3 = mk_order("6f1c2a40-0000-4000-8000-0000000000d3", "1");
    o3.not_before = T0 + 4 * DAY;
    OK(qb_exec_broker_submit(pb, &o3, &b, E, sizeof E));
    qb_bar_t b5 = nb_bar("AAPL", T0 + 5 * DAY, "150");
    OK(qb_exec_paper_on_bar(pb, &b5, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_dec(evs[0].price, "150");
    free(evs);
    evs = NULL;
    n = 0;
    /* cancel a held order; the kill switch cancels another */
    qb_exec_order_t o4 = mk_order("6f1c2a40-0000-4000-8000-0000000000d4", "1");
    o4.not_before = T0 + 9 * DAY;
    OK(qb_exec_broker_submit(pb, &o4, &b, E, sizeof E));
    o4.o.updated_ts = T0 + 6 * DAY;
    OK(qb_exec_broker_cancel(pb, &o4, E, sizeof E));
    qb_exec_paper_take_events(pb, &evs, &n);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_CANCELED);
    assert_string_equal(evs[0].order_id, o4.o.id);
    free(evs);
    ERR(QB_ERR_STATE, qb_exec_broker_cancel(pb, &o4, E, sizeof E));
    qb_exec_order_t o5 = mk_order("6f1c2a40-0000-4000-8000-0000000000d5", "1");
    o5.not_before = T0 + 9 * DAY;
    OK(qb_exec_broker_submit(pb, &o5, &b, E, sizeof E));
    evs = NULL;
    n = 0;
    assert_int_equal(qb_exec_paper_cancel_all(pb, "paper-1", T0, &evs, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_CANCELED);
    assert_int_equal(evs[0].reason_code, QB_EXEC_REASON_KILL_SWITCH);
    free(evs);
    evs = NULL;
    n = 0;
    /* refused when placed (a sell of more than is held, cash account) */
    qb_exec_order_t o6 = mk_order("6f1c2a40-0000-4000-8000-0000000000d6", "100");
    o6.o.side = QB_SIDE_SELL;
    o6.not_before = T0 + 6 * DAY;
    OK(qb_exec_broker_submit(pb, &o6, &b, E, sizeof E));
    qb_bar_t b6 = nb_bar("AAPL", T0 + 6 * DAY, "160");
    OK(qb_exec_paper_on_bar(pb, &b6, &evs, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_int_equal(evs[0].kind, QB_EXEC_EV_REJECTED);
    assert_string_equal(evs[0].order_id, o6.o.id);
    assert_non_null(strstr(evs[0].reason_text, "paper: "));
    free(evs);
    OK(qb_exec_broker_open_orders(pb, &open, &nopen, E, sizeof E));
    assert_int_equal(nopen, 0);
    free(open);
    qb_exec_broker_destroy(pb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions_all),
        cmocka_unit_test(test_reports_and_fills),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_bracket_oco),
        cmocka_unit_test(test_rollout_ids),
        cmocka_unit_test(test_book),
        cmocka_unit_test(test_audit_chain),
        cmocka_unit_test(test_recon),
        cmocka_unit_test(test_alpaca_parse),
        cmocka_unit_test(test_paper_equals_backtest_market),
        cmocka_unit_test(test_paper_equals_backtest_limit),
        cmocka_unit_test(test_paper_broker),
        cmocka_unit_test(test_paper_not_before),
        cmocka_unit_test(test_paper_last_bar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
