/* it_exec_alpaca.c — the Alpaca trading adapter (libs/exec) against the
 * stateful fake Alpaca server (tests/support/qb_fake_alpaca): submit,
 * partial fills seen through order status and adopted by reconciliation
 * with derived fill ids, cancel, replace, rejection (403 buying power, 422
 * bad order), 429 with Retry-After retried without a duplicate order, a 5xx
 * whose order was placed (lost response) retried without a duplicate, a
 * re-send after a "crash" recognised by client_order_id, positions and
 * account, keys never in messages.
 *
 * `it_exec_alpaca --serve URLFILE` runs the fake server standalone for the
 * shell tests (tests/e2e/test_qb_execution*.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test_assert.h"

#include "exec/qb_exec.h"
#include "exec/qb_exec_broker.h"
#include "qb_fake_alpaca.h"
#include "qb_test.h"

static char E[512];

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    if (qb_dec_parse(s, strlen(s), &v) != QB_OK) fail_msg("bad literal %s", s);
    return v;
}

#define KEY "PKTESTKEY0123456789"
#define SECRET "sEcReT0123456789abcdefXYZ"

typedef struct {
    qb_fake_alpaca_t *fa;
    qb_exec_broker_t *b;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    qb_fake_alpaca_cfg_t c;
    memset(&c, 0, sizeof c);
    c.key_id = KEY;
    c.secret_key = SECRET;
    f->fa = qb_fake_alpaca_start(&c);
    assert_non_null(f->fa);
    qb_exec_alpaca_config_t ac;
    memset(&ac, 0, sizeof ac);
    ac.name = "alpaca-paper";
    ac.base_url = qb_fake_alpaca_url(f->fa);
    ac.key_id = KEY;
    ac.secret_key = SECRET;
    ac.backoff_base_ms = 10;
    ac.backoff_max_ms = 50;
    ac.rate_per_sec = -1;
    OK(qb_exec_alpaca_new(&ac, &f->b, E, sizeof E));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    qb_exec_broker_destroy(f->b);
    qb_fake_alpaca_stop(f->fa);
    free(f);
    return 0;
}

static qb_exec_order_t mk(const char *name, const char *sym, const char *qty) {
    qb_exec_order_t o;
    memset(&o, 0, sizeof o);
    qb_uuid_v5(QB_EXEC_NS, name, strlen(name), o.o.id);
    snprintf(o.o.account, sizeof o.o.account, "live-1");
    qb_symbol_set(&o.o.symbol, sym, NULL, 0);
    o.o.side = QB_SIDE_BUY;
    o.o.type = QB_ORDER_TYPE_MARKET;
    o.o.tif = QB_TIF_DAY;
    o.o.qty = D(qty);
    o.o.status = QB_ORDER_STATUS_NEW;
    return o;
}

/* Bring our order in line with the broker, as qb-execution's poll does. */
static size_t sync_order(qb_exec_broker_t *b, qb_exec_order_t *o) {
    qb_exec_border_t bo;
    OK(qb_exec_broker_order_status(b, o->o.id, &bo, E, sizeof E));
    qb_exec_event_t ev[4];
    qb_exec_recon_action_t act;
    char note[256];
    size_t n = qb_exec_recon_order(o, &bo, 1, ev, &act, note, sizeof note);
    for (size_t i = 0; i < n; i++) {
        qb_exec_report_t r;
        OK(qb_exec_order_apply(o, &ev[i], &r, E, sizeof E));
    }
    return n;
}

static void submitted(qb_exec_order_t *o) {
    qb_exec_report_t r;
    OK(qb_exec_order_created(o, 1, &r));
    qb_exec_event_t e;
    memset(&e, 0, sizeof e);
    e.kind = QB_EXEC_EV_SUBMITTED;
    snprintf(e.order_id, sizeof e.order_id, "%s", o->o.id);
    OK(qb_exec_order_apply(o, &e, &r, E, sizeof E));
}

static void test_submit_partial_fill_cancel(void **state) {
    fx_t *f = *state;
    qb_exec_order_t o = mk("a1", "AAPL", "10");
    o.o.type = QB_ORDER_TYPE_LIMIT;
    o.o.limit_price = D("190.5");
    submitted(&o);
    qb_exec_border_t bo;
    OK(qb_exec_broker_submit(f->b, &o, &bo, E, sizeof E));
    assert_string_equal(bo.client_order_id, o.o.id);
    assert_int_equal(bo.status, QB_ORDER_STATUS_ACCEPTED);
    assert_string_equal(bo.raw_status, "new");
    assert_true(bo.broker_order_id[0]);
    assert_int_equal(sync_order(f->b, &o), 1); /* ACCEPTED */
    assert_int_equal(o.o.status, QB_ORDER_STATUS_ACCEPTED);
    /* two partial fills at the broker, seen at once: one derived fill */
    assert_int_equal(qb_fake_alpaca_fill(f->fa, o.o.id, "3", "190.5"), 0);
    assert_int_equal(qb_fake_alpaca_fill(f->fa, o.o.id, "1", "190.4"), 0);
    assert_int_equal(sync_order(f->b, &o), 1);
    assert_int_equal(o.o.status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    assert_int_equal(o.o.filled_qty, D("4"));
    assert_int_equal(o.o.avg_fill_price, D("190.475"));
    assert_int_equal(sync_order(f->b, &o), 0); /* nothing new */
    assert_int_equal(qb_fake_alpaca_fill(f->fa, o.o.id, "2", "190.3"), 0);
    assert_int_equal(sync_order(f->b, &o), 1);
    /* the broker reports only its average (190.41666667, rounded): the
     * derived fill makes our average equal to it (2 @ 190.30000001) */
    assert_int_equal(o.o.avg_fill_price, D("190.41666667"));
    assert_int_equal(o.o.filled_qty, D("6"));
    /* cancel: the rest is canceled; cum stays 6 */
    OK(qb_exec_broker_cancel(f->b, &o, E, sizeof E));
    assert_int_equal(sync_order(f->b, &o), 1);
    assert_int_equal(o.o.status, QB_ORDER_STATUS_CANCELED);
    assert_int_equal(o.o.filled_qty, D("6"));
    ERR(QB_ERR_STATE, qb_exec_broker_cancel(f->b, &o, E, sizeof E)); /* 422 not cancelable */
    /* positions and account follow the fills */
    qb_exec_bposition_t *ps = NULL;
    size_t n = 0;
    OK(qb_exec_broker_positions(f->b, "live-1", &ps, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_string_equal(ps[0].symbol.s, "AAPL");
    assert_int_equal(ps[0].qty, D("6"));
    free(ps);
    qb_exec_baccount_t ac;
    OK(qb_exec_broker_account(f->b, "live-1", &ac, E, sizeof E));
    assert_int_equal(ac.cash, D("1000000") - D("1142.5"));
    qb_fake_alpaca_stats_t st;
    qb_fake_alpaca_stats(f->fa, &st);
    assert_int_equal(st.orders, 1);
    assert_int_equal(st.posts, 1);
}

static void test_rejections(void **state) {
    fx_t *f = *state;
    qb_exec_order_t o = mk("r1", "REJECTME", "10");
    qb_exec_border_t bo;
    ERR(QB_ERR_INVALID, qb_exec_broker_submit(f->b, &o, &bo, E, sizeof E));
    assert_non_null(strstr(E, "403"));
    assert_non_null(strstr(E, "insufficient buying power"));
    o = mk("r2", "AAPL", "10");
    o.o.type = QB_ORDER_TYPE_LIMIT; /* no limit price: the fake says 422? no: type ok */
    o.o.limit_price = D("1");
    OK(qb_exec_broker_submit(f->b, &o, &bo, E, sizeof E));
    /* a broker-side rejection after acceptance, seen through status */
    submitted(&o);
    assert_int_equal(qb_fake_alpaca_set_status(f->fa, o.o.id, "rejected"), 0);
    assert_int_equal(sync_order(f->b, &o), 1);
    assert_int_equal(o.o.status, QB_ORDER_STATUS_REJECTED);
    assert_int_equal(o.reason_code, QB_EXEC_REASON_BROKER_REJECT);
    /* wrong keys: CONFIG, and neither key appears in the message */
    qb_exec_alpaca_config_t ac;
    memset(&ac, 0, sizeof ac);
    ac.base_url = qb_fake_alpaca_url(f->fa);
    ac.key_id = "WRONGKEY12345";
    ac.secret_key = "WRONGSECRET12345";
    ac.rate_per_sec = -1;
    qb_exec_broker_t *bad = NULL;
    OK(qb_exec_alpaca_new(&ac, &bad, E, sizeof E));
    ERR(QB_ERR_CONFIG, qb_exec_broker_account(bad, "x", &(qb_exec_baccount_t){0}, E, sizeof E));
    assert_null(strstr(E, "WRONGKEY12345"));
    assert_null(strstr(E, "WRONGSECRET12345"));
    qb_exec_broker_destroy(bad);
    ERR(QB_ERR_CONFIG, qb_exec_alpaca_new(&(qb_exec_alpaca_config_t){.base_url = "http://x"}, &bad,
                                          E, sizeof E));
    ERR(QB_ERR_NOT_FOUND, qb_exec_broker_order_status(f->b, "unknown-id", &bo, E, sizeof E));
}

static void test_429_and_lost_response_no_duplicate(void **state) {
    fx_t *f = *state;
    /* two 429s with Retry-After, then through: one order */
    qb_fake_alpaca_fault(f->fa, "POST", 2, 429, "0", 0);
    qb_exec_order_t o = mk("t1", "MSFT", "5");
    qb_exec_border_t bo;
    int64_t t0 = qb_test_now_ms();
    OK(qb_exec_broker_submit(f->b, &o, &bo, E, sizeof E));
    assert_true(qb_test_now_ms() - t0 < 3000);
    qb_fake_alpaca_stats_t st;
    qb_fake_alpaca_stats(f->fa, &st);
    assert_int_equal(st.throttled, 2);
    assert_int_equal(st.posts, 1); /* the 429s never reached the order book */
    assert_int_equal(st.orders, 1);
    /* a 503 AFTER the order was placed (the response is lost): the retry is
     * refused as a duplicate client_order_id and the adapter adopts the
     * placed order: still one order */
    qb_fake_alpaca_fault(f->fa, "POST", 1, 503, "", 1);
    qb_exec_order_t p = mk("t2", "MSFT", "7");
    OK(qb_exec_broker_submit(f->b, &p, &bo, E, sizeof E));
    assert_string_equal(bo.client_order_id, p.o.id);
    assert_int_equal(bo.qty, D("7"));
    qb_fake_alpaca_stats(f->fa, &st);
    assert_int_equal(st.orders, 2);
    assert_int_equal(st.posts_accepted, 2);
    assert_int_equal(st.posts_duplicate, 1);
    /* a re-send after a crash (same client order id): the same order */
    OK(qb_exec_broker_submit(f->b, &p, &bo, E, sizeof E));
    qb_fake_alpaca_stats(f->fa, &st);
    assert_int_equal(st.orders, 2);
    /* 5xx forever: the outcome is unknown -> a retriable error, no order */
    qb_fake_alpaca_fault(f->fa, "POST", 10, 500, "", 0);
    qb_exec_order_t q = mk("t3", "MSFT", "1");
    qb_err_t e = qb_exec_broker_submit(f->b, &q, &bo, E, sizeof E);
    assert_true(qb_err_is_retriable(e));
    assert_non_null(strstr(E, "gave up after 5 attempts"));
    qb_fake_alpaca_stats(f->fa, &st);
    assert_int_equal(st.orders, 2);
    /* unknown to the broker + ours SUBMITTED: reconciliation says resend */
    submitted(&q);
    ERR(QB_ERR_NOT_FOUND, qb_exec_broker_order_status(f->b, q.o.id, &bo, E, sizeof E));
    qb_exec_event_t ev[4];
    qb_exec_recon_action_t act;
    char note[256];
    assert_int_equal(qb_exec_recon_order(&q, NULL, 1, ev, &act, note, sizeof note), 0);
    assert_int_equal(act, QB_EXEC_RECON_RESUBMIT);
}

static void test_replace_open_orders(void **state) {
    fx_t *f = *state;
    qb_exec_order_t o = mk("p1", "NVDA", "10");
    o.o.type = QB_ORDER_TYPE_LIMIT;
    o.o.limit_price = D("100");
    qb_exec_border_t bo;
    OK(qb_exec_broker_submit(f->b, &o, &bo, E, sizeof E));
    snprintf(o.broker_order_id, sizeof o.broker_order_id, "%s", bo.broker_order_id);
    qb_exec_border_t *open = NULL;
    size_t n = 0;
    OK(qb_exec_broker_open_orders(f->b, &open, &n, E, sizeof E));
    assert_int_equal(n, 1);
    free(open);
    qb_exec_order_t nw = o;
    qb_exec_replace_id("cmd-replace-1", nw.o.id);
    nw.o.qty = D("12");
    nw.o.limit_price = D("101");
    OK(qb_exec_broker_replace(f->b, &o, &nw, &bo, E, sizeof E));
    assert_string_equal(bo.client_order_id, nw.o.id);
    assert_int_equal(bo.limit_price, D("101"));
    OK(qb_exec_broker_order_status(f->b, o.o.id, &bo, E, sizeof E));
    assert_string_equal(bo.raw_status, "replaced");
    assert_int_equal(bo.replaced, 1);
    submitted(&o);
    assert_int_equal(sync_order(f->b, &o), 1); /* canceled, reason REPLACED */
    assert_int_equal(o.o.status, QB_ORDER_STATUS_CANCELED);
    assert_int_equal(o.reason_code, QB_EXEC_REASON_REPLACED);
    OK(qb_exec_broker_open_orders(f->b, &open, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_string_equal(open[0].client_order_id, nw.o.id);
    free(open);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--serve") == 0) return qb_fake_alpaca_serve(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_partial_fill_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_and_lost_response_no_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_open_orders, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
