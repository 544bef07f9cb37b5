/* test_notify.c — libs/notify without I/O: rule validation, evaluation of
 * every condition on crafted events (crossings, moves as edges, throttle in
 * event time, filters, re-deliveries, warm-up), quiet hours across midnight
 * and DST in a time zone, templates, HMAC-SHA256 (RFC 4231 vector),
 * back-off bounds, address display (no secrets), the e-mail message, and
 * the sender against an in-process fake (Telegram retry_after, Slack
 * Retry-After, a refusal, secrets masked in errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test_assert.h"

#include "core/qb_time.h"
#include "notify/qb_notify.h"
#include "notify/qb_notify_send.h"
#include "qb_fake_hook.h"

static char E[512];

#define PX(x) ((int64_t)((x) * 100000000.0 + 0.5))
#define MIN (60LL * QB_NS_PER_SEC)
#define T0 (1704186000LL * QB_NS_PER_SEC) /* 2024-01-02 09:00 UTC */

typedef struct fired_s {
    int n;
    char ids[16][QB_NRULE_ID_MAX + 1];
    char title[QB_NTITLE_MAX], text[QB_NTEXT_MAX];
    double move;
} fired_t;

static void on_fire(void *opaque, const qb_nfire_t *f) {
    fired_t *x = opaque;
    if (x->n < 16) snprintf(x->ids[x->n], sizeof x->ids[0], "%s", f->rule->id);
    x->n++;
    x->move = f->move_pct;
    qb_ntmpl_render(f, x->title, sizeof x->title, x->text, sizeof x->text);
}

static qb_nrule_t *rule(qb_nrules_t *rs, const char *id, qb_ncond_t c, const char *sym) {
    qb_nrule_t *r = qb_nrules_add(rs);
    assert_non_null(r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->owner, sizeof r->owner, "alice");
    snprintf(r->symbol, sizeof r->symbol, "%s", sym ? sym : "");
    r->cond = c;
    OK(qb_nrule_add_target(r, QB_NCHAN_WEBHOOK, "https://example.com/hook", "s3cret", E, sizeof E));
    return r;
}

static int bar(qb_neval_t *ev, fired_t *f, const char *sym, int64_t ts, double close, int *thr) {
    char id[64];
    snprintf(id, sizeof id, "%s-%lld", sym, (long long)ts);
    qb_nevent_t e = {.kind = QB_NEV_BAR, .event_id = id, .time = ts, .symbol = sym,
                     .timeframe = "1m", .close = PX(close)};
    return qb_neval_event(ev, &e, on_fire, f, thr);
}

static void test_validate(void **state) {
    (void)state;
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *r = rule(rs, "ok-1", QB_NCOND_PRICE_ABOVE, "AAPL");
    ERR(QB_ERR_INVALID, qb_nrule_validate(r, E, sizeof E)); /* threshold 0 */
    assert_non_null(strstr(E, "threshold"));
    r->threshold = PX(100);
    OK(qb_nrule_validate(r, E, sizeof E));
    snprintf(r->id, sizeof r->id, "bad id");
    ERR(QB_ERR_INVALID, qb_nrule_validate(r, E, sizeof E));
    assert_non_null(strstr(E, "rule_id"));
    snprintf(r->id, sizeof r->id, "ok-1");
    snprintf(r->time_zone, sizeof r->time_zone, "Mars/Olympus");
    ERR(QB_ERR_INVALID, qb_nrule_validate(r, E, sizeof E));
    assert_non_null(strstr(E, "time_zone"));
    snprintf(r->time_zone, sizeof r->time_zone, "Europe/Berlin");
    r->quiet_start = 22 * 60;
    ERR(QB_ERR_INVALID, qb_nrule_validate(r, E, sizeof E)); /* end missing */
    r->quiet_end = 7 * 60;
    OK(qb_nrule_validate(r, E, sizeof E));
    qb_nrule_t *m = rule(rs, "mv", QB_NCOND_PRICE_MOVE, "AAPL");
    ERR(QB_ERR_INVALID, qb_nrule_validate(m, E, sizeof E));
    assert_non_null(strstr(E, "move_pct"));
    m->move_pct = 5;
    ERR(QB_ERR_INVALID, qb_nrule_validate(m, E, sizeof E));
    assert_non_null(strstr(E, "window"));
    /* Targets. */
    qb_nrule_t *t = qb_nrules_add(rs);
    ERR(QB_ERR_INVALID, qb_nrule_add_target(t, QB_NCHAN_WEBHOOK, "ftp://x", NULL, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_nrule_add_target(t, QB_NCHAN_EMAIL, "nobody", NULL, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_nrule_add_target(t, QB_NCHAN_TELEGRAM, "12ab", NULL, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_nrule_add_target(t, QB_NCHAN_SLACK, "https://h/x", "k", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_nrule_add_target(t, QB_NCHAN_SLACK, "nope://hooks.slack.com/T/B/SECRETX",
                                            NULL, E, sizeof E));
    assert_null(strstr(E, "SECRETX")); /* a Slack URL is a secret */
    OK(qb_nrule_add_target(t, QB_NCHAN_TELEGRAM, "-100123", NULL, E, sizeof E));
    OK(qb_nrule_add_target(t, QB_NCHAN_TELEGRAM, "@mychannel", NULL, E, sizeof E));
    OK(qb_nrule_add_target(t, QB_NCHAN_EMAIL, "a.b@example.com", NULL, E, sizeof E));
    OK(qb_nrule_add_target(t, QB_NCHAN_IN_APP, "", NULL, E, sizeof E));
    assert_int_equal(t->ntargets, 4);
    assert_int_equal(qb_nquiet_parse("07:30"), 450);
    assert_int_equal(qb_nquiet_parse("24:00"), -1);
    assert_int_equal(qb_nquiet_parse("7:30"), -1);
    assert_int_equal(qb_ncond_parse("price_move"), QB_NCOND_PRICE_MOVE);
    assert_int_equal(qb_nchan_parse("in_app"), QB_NCHAN_IN_APP);
    qb_nrules_destroy(rs);
}

/* Above 100: fires at the crossing only; the throttle (1 h of event time)
 * holds a second crossing, not a third one later. */
static void test_cross_and_throttle(void **state) {
    (void)state;
    qb_neval_t *ev = qb_neval_new();
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *a = rule(rs, "above", QB_NCOND_PRICE_ABOVE, "PXA");
    a->threshold = PX(100);
    a->cooldown_ns = 60 * MIN;
    qb_nrule_t *b = rule(rs, "below", QB_NCOND_PRICE_BELOW, "PXA");
    b->threshold = PX(100);
    qb_neval_set_rules(ev, rs);
    fired_t f = {0};
    int thr = 0;
    assert_int_equal(bar(ev, &f, "PXA", T0, 101, &thr), 0); /* first bar: nothing before */
    assert_int_equal(bar(ev, &f, "PXA", T0 + MIN, 99, &thr), 1);
    assert_string_equal(f.ids[0], "below");
    assert_int_equal(bar(ev, &f, "PXA", T0 + 2 * MIN, 100, &thr), 0); /* at the level: no */
    assert_int_equal(bar(ev, &f, "PXA", T0 + 3 * MIN, 100.01, &thr), 1);
    assert_string_equal(f.ids[1], "above");
    assert_string_equal(f.title, "PXA above 100.00");
    assert_string_equal(f.text, "PXA crossed above 100.00: close 100.01 (previous 100.00), 1m "
                                "bar of 2024-01-02 09:03 UTC.");
    assert_int_equal(bar(ev, &f, "PXA", T0 + 4 * MIN, 102, &thr), 0); /* stays above */
    assert_int_equal(bar(ev, &f, "PXA", T0 + 5 * MIN, 99, &thr), 1);  /* below fires */
    assert_int_equal(bar(ev, &f, "PXA", T0 + 6 * MIN, 101, &thr), 0); /* throttled */
    assert_int_equal(thr, 1);
    assert_int_equal(bar(ev, &f, "PXA", T0 + 6 * MIN, 150, &thr), 0); /* re-delivery */
    assert_int_equal(bar(ev, &f, "PXA", T0 + 70 * MIN, 99, &thr), 1);
    assert_int_equal(bar(ev, &f, "PXA", T0 + 71 * MIN, 101, &thr), 1); /* throttle over */
    assert_int_equal(f.n, 5);
    /* Another symbol is another series. */
    assert_int_equal(bar(ev, &f, "OTHER", T0, 99, &thr), 0);
    assert_int_equal(bar(ev, &f, "OTHER", T0 + MIN, 101, &thr), 0);
    qb_neval_destroy(ev);
}

/* Move of 5 % over 10 minutes: fires when the move starts, once. */
static void test_move(void **state) {
    (void)state;
    qb_neval_t *ev = qb_neval_new();
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *m = rule(rs, "move5", QB_NCOND_PRICE_MOVE, "");
    m->move_pct = 5;
    m->window_ns = 10 * MIN;
    qb_neval_set_rules(ev, rs);
    assert_int_equal(qb_neval_max_window(ev), 10 * MIN);
    assert_true(qb_neval_watches(ev, "ANY"));
    fired_t f = {0};
    /* Warm-up: history only. */
    for (int i = 0; i < 10; i++) qb_neval_warm(ev, "MV", "1m", T0 + i * MIN, PX(100));
    assert_true(qb_neval_has_series(ev, "MV", "1m"));
    assert_int_equal(f.n, 0);
    assert_int_equal(bar(ev, &f, "MV", T0 + 10 * MIN, 104, NULL), 0);
    assert_int_equal(bar(ev, &f, "MV", T0 + 11 * MIN, 105.5, NULL), 1);
    assert_true(f.move > 5.49 && f.move < 5.51);
    assert_string_equal(f.title, "MV +5.50% in 10m");
    assert_int_equal(bar(ev, &f, "MV", T0 + 12 * MIN, 106, NULL), 0); /* still moved: no edge */
    /* Back to 100 at once: that is a fall of 5.2 % against the bar 10 min
     * before (105.5), once (either way counts). */
    for (int i = 13; i < 40; i++) bar(ev, &f, "MV", T0 + i * MIN, 100, NULL);
    assert_int_equal(f.n, 2);
    assert_true(f.move < -5.1 && f.move > -5.3);
    assert_int_equal(bar(ev, &f, "MV", T0 + 40 * MIN, 94, NULL), 1);
    assert_true(f.move < -5.9);
    qb_neval_destroy(ev);
}

static void test_events_and_filters(void **state) {
    (void)state;
    qb_neval_t *ev = qb_neval_new();
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *s = rule(rs, "sig", QB_NCOND_SIGNAL, "AAPL");
    snprintf(s->strategy_id, sizeof s->strategy_id, "sma");
    s->min_confidence = 0.5;
    qb_nrule_t *fl = rule(rs, "fill", QB_NCOND_ORDER_FILLED, "");
    snprintf(fl->account, sizeof fl->account, "paper-1");
    rule(rs, "rej", QB_NCOND_ORDER_REJECTED, "");
    rule(rs, "risk", QB_NCOND_RISK_EVENT, "");
    qb_nrule_t *bt = rule(rs, "bt", QB_NCOND_BACKTEST_DONE, "");
    bt->enabled = 1;
    qb_nrule_t *off = rule(rs, "off", QB_NCOND_RISK_EVENT, "");
    off->enabled = 0;
    qb_neval_set_rules(ev, rs);
    fired_t f = {0};
    qb_nevent_t sig = {.kind = QB_NEV_SIGNAL, .event_id = "s1", .time = T0, .account = "paper-1",
                       .symbol = "AAPL", .timeframe = "1d", .strategy_id = "sma",
                       .direction = "LONG", .confidence = 0.4, .price = PX(190.52), .reason = "x"};
    assert_int_equal(qb_neval_event(ev, &sig, on_fire, &f, NULL), 0); /* confidence */
    sig.confidence = 0.8;
    sig.strategy_id = "other";
    assert_int_equal(qb_neval_event(ev, &sig, on_fire, &f, NULL), 0); /* strategy */
    sig.strategy_id = "sma";
    assert_int_equal(qb_neval_event(ev, &sig, on_fire, &f, NULL), 1);
    assert_string_equal(f.title, "Signal LONG AAPL");
    assert_string_equal(f.text, "sma: LONG AAPL 1d at 190.52 (confidence 0.80): x. Account "
                                "paper-1, 2024-01-02 09:00 UTC.");
    qb_nevent_t x = {.kind = QB_NEV_EXEC, .event_id = "x1", .time = T0, .account = "paper-2",
                     .symbol = "MSFT", .side = "SELL", .is_fill = 1, .qty = PX(5),
                     .price = PX(400), .cum_qty = PX(5), .order_qty = PX(10), .order_id = "o1"};
    assert_int_equal(qb_neval_event(ev, &x, on_fire, &f, NULL), 0); /* account */
    x.account = "paper-1";
    assert_int_equal(qb_neval_event(ev, &x, on_fire, &f, NULL), 1);
    assert_string_equal(f.title, "Partly filled SELL 5.00 MSFT @ 400.00");
    x.is_fill = 0;
    x.is_reject = 1;
    x.message = "RISK_LIMIT";
    x.event_id = "x2";
    assert_int_equal(qb_neval_event(ev, &x, on_fire, &f, NULL), 1);
    assert_string_equal(f.ids[f.n - 1], "rej");
    qb_nevent_t r = {.kind = QB_NEV_RISK, .event_id = "r1", .time = T0, .account = "",
                     .risk_kind = "KILL_SWITCH_ON", .severity = "CRITICAL", .critical = 1,
                     .message = "operator"};
    assert_int_equal(qb_neval_event(ev, &r, on_fire, &f, NULL), 1); /* "off" is disabled */
    assert_string_equal(f.text, "CRITICAL KILL_SWITCH_ON on all accounts: operator. 2024-01-02 "
                                "09:00 UTC.");
    qb_nevent_t b = {.kind = QB_NEV_BACKTEST, .event_id = "b1", .time = T0, .run_id = "run-1",
                     .bt_done = 0};
    assert_int_equal(qb_neval_event(ev, &b, on_fire, &f, NULL), 0); /* progress */
    b.bt_done = b.bt_failed = 1;
    b.message = "no bars";
    assert_int_equal(qb_neval_event(ev, &b, on_fire, &f, NULL), 1);
    assert_string_equal(f.text, "Backtest run-1 failed: no bars. 2024-01-02 09:00 UTC.");
    /* Rules replaced: last_fired carries over, so the throttle holds. */
    qb_nrules_t *rs2 = qb_nrules_new();
    qb_nrule_t *s2 = rule(rs2, "sig", QB_NCOND_SIGNAL, "AAPL");
    s2->cooldown_ns = 10 * MIN;
    qb_neval_set_rules(ev, rs2);
    sig.event_id = "s2";
    sig.time = T0 + 5 * MIN;
    int thr = 0;
    assert_int_equal(qb_neval_event(ev, &sig, on_fire, &f, &thr), 0);
    assert_int_equal(thr, 1);
    assert_int_equal(qb_neval_rules(ev)->v[0].last_fired, T0);
    qb_neval_destroy(ev);
}

static qb_time_t at(const char *iso) {
    qb_time_t t;
    assert_int_equal(qb_time_parse(iso, strlen(iso), &t), QB_OK);
    return t;
}

static void test_quiet_hours(void **state) {
    (void)state;
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *r = rule(rs, "q", QB_NCOND_SIGNAL, "");
    snprintf(r->time_zone, sizeof r->time_zone, "America/New_York");
    r->quiet_start = 22 * 60;
    r->quiet_end = 7 * 60;
    OK(qb_nrule_validate(r, E, sizeof E));
    /* 23:30 EST = 04:30Z: quiet until 07:00 EST = 12:00Z next day. */
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-01-03T04:30:00Z")), at("2024-01-03T12:00:00Z"));
    /* 06:00 EST, after midnight: until 07:00 the same day. */
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-01-03T11:00:00Z")), at("2024-01-03T12:00:00Z"));
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-01-03T15:00:00Z")), 0); /* 10:00 */
    /* Night of the spring-forward (2024-03-10): 23:00 EST -> 07:00 EDT = 11:00Z. */
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-03-10T04:00:00Z")), at("2024-03-10T11:00:00Z"));
    /* Same-day window. */
    r->quiet_start = 12 * 60;
    r->quiet_end = 13 * 60;
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-07-01T16:30:00Z")), at("2024-07-01T17:00:00Z"));
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-07-01T17:00:00Z")), 0);
    r->quiet_start = r->quiet_end = -1;
    assert_int_equal(qb_nrule_quiet_until(r, at("2024-07-01T16:30:00Z")), 0);
    qb_nrules_destroy(rs);
}

static void test_send_helpers(void **state) {
    (void)state;
    char hex[65];
    const char *d = "what do ya want for nothing?";
    qb_nhmac_sha256_hex("Jefe", d, strlen(d), hex); /* RFC 4231 test case 2 */
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    char buf[256];
    qb_naddr_display(QB_NCHAN_SLACK, "https://hooks.slack.com/services/T0/B0/SECRET", buf, sizeof buf);
    assert_string_equal(buf, "https://hooks.slack.com/...");
    qb_naddr_display(QB_NCHAN_WEBHOOK, "http://user:pw@host:8080/x?k=1", buf, sizeof buf);
    assert_string_equal(buf, "http://host:8080/...");
    qb_naddr_display(QB_NCHAN_WEBHOOK, "https://example.com", buf, sizeof buf);
    assert_string_equal(buf, "https://example.com");
    qb_naddr_display(QB_NCHAN_EMAIL, "a@b.c", buf, sizeof buf);
    assert_string_equal(buf, "a@b.c");
    for (int a = 1; a < 30; a++)
        for (uint64_t rnd = 0; rnd < 2000; rnd += 97) {
            int64_t v = qb_nbackoff_ms(a, 100, 5000, -1, rnd);
            int64_t cap = 100;
            for (int i = 1; i < a && cap < 5000; i++) cap *= 2;
            if (cap > 5000) cap = 5000;
            assert_true(v >= cap / 2 && v <= cap);
        }
    assert_int_equal(qb_nbackoff_ms(1, 100, 5000, 3000, 0), 3000);  /* Retry-After */
    assert_int_equal(qb_nbackoff_ms(1, 100, 5000, 90000, 0), 5000); /* capped */
    qb_nmsg_t m = {.delivery_id = "11111111-2222-5333-8444-555555555555", .rule_id = "r",
                   .user = "alice", .event_id = "e", .event_kind = "signal", .event_time = T0,
                   .title = "Signal \"LONG\" AAPL", .text = "line 1\n.line 2",
                   .channel = QB_NCHAN_WEBHOOK, .address = "a@b.c"};
    char *body = qb_nwebhook_body(&m);
    assert_string_equal(body,
                        "{\"delivery_id\":\"11111111-2222-5333-8444-555555555555\",\"rule_id\":\"r\","
                        "\"rule_name\":\"\",\"user\":\"alice\",\"event_id\":\"e\",\"event_kind\":"
                        "\"signal\",\"event_time\":\"2024-01-02T09:00:00Z\",\"title\":\"Signal "
                        "\\\"LONG\\\" AAPL\",\"text\":\"line 1\\n.line 2\"}");
    free(body);
    char *mail = qb_nmail_build(&m, "q@x.y", T0);
    assert_non_null(strstr(mail, "Date: Tue, 02 Jan 2024 09:00:00 +0000\r\n"));
    assert_non_null(strstr(mail, "Subject: Signal \"LONG\" AAPL\r\n"));
    assert_non_null(strstr(mail, "Message-ID: <11111111-2222-5333-8444-555555555555@quantbus>\r\n"));
    assert_non_null(strstr(mail, "\r\n\r\nline 1\r\n.line 2\r\n"));
    free(mail);
    m.title = "Kurs \xc3\xbc" "ber 100";
    mail = qb_nmail_build(&m, "q@x.y", T0);
    assert_non_null(strstr(mail, "Subject: =?UTF-8?B?"));
    free(mail);
    char p[48];
    qb_ntmpl_price(PX(190.5), p, sizeof p);
    assert_string_equal(p, "190.50");
    qb_ntmpl_price(12345, p, sizeof p);
    assert_string_equal(p, "0.00012345");
}

/* The sender against a local fake: Telegram's 429 retry_after, Slack's
 * Retry-After, a 400 refused for good, and no secret in any error. */
static int g_mode;
static void fake_cb(void *opaque, const qb_hook_req_t *req, qb_hook_resp_t *resp) {
    (void)opaque;
    (void)req;
    if (g_mode == 1) {
        resp->status = 429;
        snprintf(resp->body, sizeof resp->body,
                 "{\"ok\":false,\"error_code\":429,\"parameters\":{\"retry_after\":7}}");
    } else if (g_mode == 2) {
        resp->status = 429;
        snprintf(resp->retry_after, sizeof resp->retry_after, "3");
    } else if (g_mode == 3) {
        resp->status = 400;
        snprintf(resp->body, sizeof resp->body, "bad TOKEN-SECRET-1234 request");
    }
}

static void test_sender(void **state) {
    (void)state;
    qb_hook_t *h = qb_hook_start(fake_cb, NULL);
    qb_nsend_cfg_t cfg = {.telegram_api = qb_hook_url(h), .telegram_token = "TOKEN-SECRET-1234",
                          .timeout_ms = 2000};
    qb_nsender_t *s = qb_nsender_new(&cfg, E, sizeof E);
    assert_non_null(s);
    char slack[256];
    snprintf(slack, sizeof slack, "%s/services/T/B/SLACKSECRET", qb_hook_url(h));
    qb_nmsg_t m = {.delivery_id = "d", .title = "t", .text = "x", .channel = QB_NCHAN_TELEGRAM,
                   .address = "-1001", .attempt = 1};
    qb_nsend_res_t r;
    g_mode = 0;
    qb_nsend(s, &m, &r);
    assert_int_equal(r.status, QB_NSEND_OK);
    g_mode = 1;
    qb_nsend(s, &m, &r);
    assert_int_equal(r.status, QB_NSEND_RETRY);
    assert_int_equal(r.retry_after_ms, 7000);
    assert_null(strstr(r.error, "TOKEN-SECRET"));
    g_mode = 3;
    qb_nsend(s, &m, &r);
    assert_int_equal(r.status, QB_NSEND_FAIL);
    assert_int_equal(r.code, 400);
    assert_null(strstr(r.error, "TOKEN-SECRET")); /* echoed by the server: masked */
    assert_non_null(strstr(r.error, "***"));
    m.channel = QB_NCHAN_SLACK;
    m.address = slack;
    g_mode = 2;
    qb_nsend(s, &m, &r);
    assert_int_equal(r.status, QB_NSEND_RETRY);
    assert_int_equal(r.retry_after_ms, 3000);
    assert_null(strstr(r.error, "SLACKSECRET"));
    assert_int_equal(qb_hook_count(h), 4);
    assert_string_equal(qb_hook_request(h, 0)->path, "/botTOKEN-SECRET-1234/sendMessage");
    m.channel = QB_NCHAN_EMAIL; /* no SMTP server configured: refused */
    qb_nsend(s, &m, &r);
    assert_int_equal(r.status, QB_NSEND_FAIL);
    qb_nsender_destroy(s);
    qb_hook_stop(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_cross_and_throttle),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_events_and_filters),
        cmocka_unit_test(test_quiet_hours),
        cmocka_unit_test(test_send_helpers),
        cmocka_unit_test(test_sender),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
