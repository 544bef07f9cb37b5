/* test_risk.c — libs/risk on crafted portfolios: the limit table and its
 * hard maxima, every sizing rule, the signal -> order arithmetic, each
 * pre-trade check at, just below and just above its limit, the post-trade
 * rules (daily loss pause, drawdown halt, day roll, resume rebase) and the
 * VaR / CVaR / volatility / beta / correlation figures against values
 * worked by hand on a fixed 20-return series. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qb_test_assert.h"

#include "core/qb_uuid.h"
#include "portfolio/qb_portfolio.h"
#include "risk/qb_risk_check.h"
#include "risk/qb_risk_limits.h"
#include "risk/qb_risk_post.h"
#include "risk/qb_risk_var.h"

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
    if (got != D(want)) fail_msg("line %d: %s = %s, want %s", line, expr, buf, want);
}

/* ---- limits ------------------------------------------------------------------ */

static void test_limits_table(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    /* the defaults */
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, NULL), "0.01");
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED, NULL), "0.8");
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_DRAWDOWN, NULL), "0.2");
    /* no default: the hard maximum is in force */
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_ORDER_NOTIONAL, NULL), "100000000");
    int k;
    OK(qb_risk_limit_parse("limit_kind_max_positions", &k));
    assert_int_equal(k, QB_RISK_LIMIT_MAX_POSITIONS);
    assert_string_equal(qb_risk_limit_name(QB_RISK_LIMIT_SIZING_VOL_TARGET), "SIZING_VOL_TARGET");
    assert_int_equal(qb_risk_limit_parse("NOPE", &k), QB_ERR_PARSE);
}

static void test_limits_hard_max(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    /* at the hard maximum: accepted; one raw unit above: refused */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, NULL, D("0.05"), E, sizeof E));
    assert_int_equal(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, NULL,
                                        D("0.05000001"), E, sizeof E),
                     QB_ERR_RANGE);
    assert_non_null(strstr(E, "hard maximum 0.05"));
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, NULL), "0.05"); /* unchanged */
    assert_int_equal(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_DRAWDOWN, NULL, D("0.9"), E, sizeof E),
                     QB_ERR_RANGE);
    assert_int_equal(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_ORDERS_PER_MINUTE, NULL, D("6001"),
                                        E, sizeof E),
                     QB_ERR_RANGE);
    /* every kind: hard max accepted, hard max + 1e-8 refused */
    for (int kind = 1; kind < QB_RISK_LIMIT_KINDS; kind++) {
        if (!qb_risk_limit_valid(kind) || kind == QB_RISK_LIMIT_SIZING_RULE) continue;
        qb_dec_t m = qb_risk_limit_hard_max(kind);
        assert_int_equal(qb_risk_limit_check(kind, NULL, m, E, sizeof E), QB_OK);
        assert_int_equal(qb_risk_limit_check(kind, NULL, m + 1, E, sizeof E), QB_ERR_RANGE);
        assert_int_equal(qb_risk_limit_check(kind, NULL, -1, E, sizeof E), QB_ERR_INVALID);
    }
    /* a value put in the struct by other means never beats the binary */
    l.value[QB_RISK_LIMIT_MAX_LEVERAGE] = D("100");
    l.set[QB_RISK_LIMIT_MAX_LEVERAGE] = 1;
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_LEVERAGE, NULL), "4");
    /* bad inputs */
    assert_int_equal(qb_risk_limit_check(99, NULL, 1, E, sizeof E), QB_ERR_INVALID);
    assert_int_equal(qb_risk_limit_check(QB_RISK_LIMIT_MAX_DRAWDOWN, "AAPL", D("0.1"), E, sizeof E),
                     QB_ERR_INVALID);
    assert_int_equal(qb_risk_limit_check(QB_RISK_LIMIT_LOT_SIZE, NULL, 0, E, sizeof E),
                     QB_ERR_INVALID);
    assert_int_equal(qb_risk_limit_check(QB_RISK_LIMIT_SIZING_RULE, NULL, D("4"), E, sizeof E),
                     QB_ERR_INVALID);
    OK(qb_risk_limit_check(QB_RISK_LIMIT_SIZING_RULE, NULL, D("5"), E, sizeof E));
}

static void test_limits_keyed(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, NULL, D("1000"), E, sizeof E));
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, "AAPL", D("10"), E, sizeof E));
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, "AAPL"), "10");
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, "MSFT"), "1000");
    qb_risk_limits_unset(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, "AAPL");
    assert_dec(qb_risk_limit(&l, QB_RISK_LIMIT_MAX_POSITION_QTY, "AAPL"), "1000");
}

/* ---- sizing -------------------------------------------------------------------- */

static qb_risk_size_in_t size_in(const char *equity, const char *price) {
    qb_risk_size_in_t in;
    memset(&in, 0, sizeof in);
    in.equity = D(equity);
    in.price = D(price);
    in.lot = D("1");
    in.ann_vol = NAN;
    return in;
}

static void test_sizing_rules(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    char t[200];
    qb_dec_t q, dist;
    /* fixed-fractional (default, 1%): 100000 x 0.01 / 2.00 = 500 */
    qb_risk_size_in_t in = size_in("100000", "100");
    in.stop_distance = D("2");
    assert_int_equal(qb_risk_size(&l, &in, &q, &dist, t, sizeof t), QB_RISK_REASON_NONE);
    assert_dec(q, "500");
    assert_dec(dist, "2");
    /* 2.01: 1000 / 2.01 = 497.51 -> 497 (down) */
    in.stop_distance = D("2.01");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "497");
    /* lot 300: 500 -> 300 */
    in.stop_distance = D("2");
    in.lot = D("300");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "300");
    /* no stop: ATR 1.5 x multiple 2 = 3 -> 1000 / 3 = 333 */
    in = size_in("100000", "100");
    in.atr = D("1.5");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "333");
    assert_dec(dist, "3");
    /* neither stop nor ATR */
    in.atr = 0;
    assert_int_equal(qb_risk_size(&l, &in, &q, &dist, t, sizeof t), QB_RISK_REASON_NO_SIZING_DATA);
    /* the signal's target weight wins: 0.25 x 100000 / 100 = 250 */
    in.has_weight = 1;
    in.weight = 0.25;
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "250");
    /* percent of equity 10%: 100 */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_RULE, NULL, D("2"), E, sizeof E));
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_FRACTION, NULL, D("0.1"), E, sizeof E));
    in = size_in("100000", "100");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "100");
    /* volatility target 10% / vol 20% = weight 0.5: 500 */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_RULE, NULL, D("5"), E, sizeof E));
    assert_int_equal(qb_risk_size(&l, &in, &q, &dist, t, sizeof t), QB_RISK_REASON_NO_SIZING_DATA);
    in.ann_vol = 0.2;
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "500");
    /* a very quiet asset: weight capped at 1 -> 1000 */
    in.ann_vol = 0.01;
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "1000");
    /* fixed quantity 7, lot 5 -> 5 */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_RULE, NULL, D("1"), E, sizeof E));
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_FIXED_QTY, NULL, D("7"), E, sizeof E));
    in.lot = D("5");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "5");
    /* crypto lot 0.0001: percent 10% of 1000 at 30000.5 = 0.00333327... -> 0.0033 */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_SIZING_RULE, NULL, D("2"), E, sizeof E));
    in = size_in("1000", "30000.5");
    in.lot = D("0.0001");
    qb_risk_size(&l, &in, &q, &dist, t, sizeof t);
    assert_dec(q, "0.0033");
}

static void test_signal_order(void **st) {
    (void)st;
    qb_side_t s;
    qb_dec_t q, lot = D("1");
    assert_int_equal(qb_risk_signal_order(QB_RISK_DIR_LONG, 0, D("500"), lot, 1, &s, &q), 0);
    assert_int_equal(s, QB_SIDE_BUY);
    assert_dec(q, "500");
    qb_risk_signal_order(QB_RISK_DIR_LONG, D("300"), D("500"), lot, 1, &s, &q);
    assert_dec(q, "200"); /* tops up to the wanted size */
    assert_int_equal(qb_risk_signal_order(QB_RISK_DIR_LONG, D("500"), D("500"), lot, 1, &s, &q),
                     QB_RISK_REASON_NOTHING_TO_TRADE);
    qb_risk_signal_order(QB_RISK_DIR_SHORT, D("300"), D("500"), lot, 1, &s, &q);
    assert_int_equal(s, QB_SIDE_SELL);
    assert_dec(q, "800"); /* flips */
    assert_int_equal(qb_risk_signal_order(QB_RISK_DIR_SHORT, 0, D("500"), lot, 0, &s, &q),
                     QB_RISK_REASON_SHORT_NOT_ALLOWED);
    qb_risk_signal_order(QB_RISK_DIR_SHORT, D("300"), D("500"), lot, 0, &s, &q);
    assert_dec(q, "300"); /* cash account: SHORT closes the long */
    qb_risk_signal_order(QB_RISK_DIR_FLAT, D("-2.5"), 0, lot, 1, &s, &q);
    assert_int_equal(s, QB_SIDE_BUY);
    assert_dec(q, "2.5"); /* a FLAT closes exactly, lot or not */
    assert_int_equal(qb_risk_signal_order(QB_RISK_DIR_FLAT, 0, 0, lot, 1, &s, &q),
                     QB_RISK_REASON_NOTHING_TO_TRADE);
    qb_risk_signal_order(QB_RISK_DIR_LONG, 0, D("505"), D("10"), 1, &s, &q);
    assert_dec(q, "500");
    assert_int_equal(qb_risk_signal_order(9, 0, D("5"), lot, 1, &s, &q),
                     QB_RISK_REASON_INVALID_ORDER);
}

static void test_order_id(void **st) {
    (void)st;
    char a[QB_UUID_STRLEN], b[QB_UUID_STRLEN], c[QB_UUID_STRLEN];
    qb_risk_order_id("sig-1", 1, a);
    qb_risk_order_id("sig-1", 1, b);
    qb_risk_order_id("sig-2", 1, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_true(qb_uuid_valid(a));
    assert_int_equal(a[14], '5'); /* version 5 */
}

/* ---- checks ---------------------------------------------------------------------- */

typedef struct fx_s {
    qb_portfolio_t *pf;
    qb_risk_limits_t l;
    qb_risk_ctx_t c;
    const char *sectors[8];
    double rho;
} fx_t;

static const char *fx_sector(void *o, uint32_t id) { return ((fx_t *)o)->sectors[id]; }
static double fx_corr(void *o, uint32_t a, uint32_t b) {
    (void)a;
    (void)b;
    return ((fx_t *)o)->rho;
}

static void fx_init(fx_t *f, const char *cash, const char *margin_long, int allow_short) {
    memset(f, 0, sizeof *f);
    qb_portfolio_config_t pc;
    qb_portfolio_config_default(&pc);
    pc.initial_cash = D(cash);
    pc.margin_long = D(margin_long);
    pc.allow_short = allow_short;
    OK(qb_portfolio_new(&pc, &f->pf, E, sizeof E));
    qb_risk_limits_init(&f->l);
    f->c.pf = f->pf;
    f->c.limits = &f->l;
    f->c.status = QB_RISK_ACTIVE;
    f->c.now = 1000;
    f->c.sector = fx_sector;
    f->c.corr = fx_corr;
    f->c.opaque = f;
    f->rho = NAN;
    uint32_t id;
    const char *syms[] = {"AAA", "BBB", "CCC", "DDD"};
    for (int i = 0; i < 4; i++) {
        OK(qb_portfolio_symbol(f->pf, syms[i], &id, E, sizeof E));
        OK(qb_portfolio_mark(f->pf, id, D("100")));
    }
}

static void fx_hold(fx_t *f, uint32_t id, const char *qty) {
    OK(qb_portfolio_apply_fill(f->pf, id, QB_SIDE_BUY, D(qty), D("100"), 0, E, sizeof E));
}

/* Check buying `qty` of symbol id at 100 with a stop distance. */
static qb_risk_reason_t fx_buy(fx_t *f, uint32_t id, const char *qty, const char *stop) {
    qb_risk_order_t o;
    memset(&o, 0, sizeof o);
    o.sym = id;
    o.side = QB_SIDE_BUY;
    o.type = QB_ORDER_TYPE_MARKET;
    o.qty = D(qty);
    o.lot = D("1");
    o.price = D("100");
    o.stop_distance = D(stop);
    qb_risk_result_t r;
    qb_risk_check(&f->c, &o, &r);
    if (r.reason) print_message("  %s: %s\n", qb_risk_reason_name(r.reason), r.text);
    return r.reason;
}

static void test_check_risk_per_trade(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    /* 1% of 100000 = 1000 = qty x 2.00 */
    assert_int_equal(fx_buy(&f, 0, "499", "2"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "500", "2"), QB_RISK_REASON_NONE); /* at */
    assert_int_equal(fx_buy(&f, 0, "501", "2"), QB_RISK_REASON_MAX_RISK_PER_TRADE);
    /* no stop: the price is the distance -> 10 x 100 = 1000 at, 11 above */
    assert_int_equal(fx_buy(&f, 0, "10", "0"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "11", "0"), QB_RISK_REASON_MAX_RISK_PER_TRADE);
    qb_portfolio_destroy(f.pf);
}

static void test_check_capital_deployed(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    /* 80% of 100000 = 80000 = 800 x 100 */
    assert_int_equal(fx_buy(&f, 0, "799", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "800", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "801", "1"), QB_RISK_REASON_CAPITAL_DEPLOYED);
    /* positions count: 500 held in BBB -> 300 more of AAA at, 301 above */
    fx_hold(&f, 1, "500");
    assert_int_equal(fx_buy(&f, 0, "300", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "301", "1"), QB_RISK_REASON_CAPITAL_DEPLOYED);
    /* open orders count too: 100 of AAA open -> 200 at, 201 above */
    qb_dec_t open[4] = {D("100"), 0, 0, 0};
    f.c.open_qty = open;
    f.c.nopen_qty = 4;
    assert_int_equal(fx_buy(&f, 0, "200", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "201", "1"), QB_RISK_REASON_CAPITAL_DEPLOYED);
    qb_portfolio_destroy(f.pf);
}

static void test_check_positions_and_size(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    fx_hold(&f, 0, "10");
    fx_hold(&f, 1, "10");
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_POSITIONS, NULL, D("3"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 2, "1", "1"), QB_RISK_REASON_NONE); /* 3rd: at */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_POSITIONS, NULL, D("2"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 2, "1", "1"), QB_RISK_REASON_MAX_POSITIONS); /* above */
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_NONE); /* adds to a held one */
    /* max position qty (per symbol) 100: 10 held -> 90 at, 91 above */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_POSITION_QTY, "AAA", D("100"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 0, "89", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "90", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "91", "1"), QB_RISK_REASON_MAX_POSITION);
    assert_int_equal(fx_buy(&f, 1, "91", "1"), QB_RISK_REASON_NONE); /* other symbol */
    /* position notional 5000: 10 held -> 40 at, 41 above */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_POSITION_NOTIONAL, NULL, D("5000"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 1, "40", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "41", "1"), QB_RISK_REASON_MAX_POSITION);
    /* order qty 30 and notional 2000 */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_ORDER_QTY, NULL, D("30"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 1, "30", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "31", "1"), QB_RISK_REASON_ORDER_SIZE);
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_ORDER_NOTIONAL, NULL, D("2000"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 1, "20", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "21", "1"), QB_RISK_REASON_ORDER_SIZE);
    qb_portfolio_destroy(f.pf);
}

static void test_check_sector_and_correlation(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    f.sectors[0] = "tech";
    f.sectors[1] = "tech";
    f.sectors[2] = "energy";
    fx_hold(&f, 0, "300"); /* 30000 of tech */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_SECTOR_EXPOSURE, NULL, D("0.4"), E, sizeof E));
    f.rho = 0; /* correlation out of the way */
    assert_int_equal(fx_buy(&f, 1, "99", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "100", "1"), QB_RISK_REASON_NONE); /* 40000: at */
    assert_int_equal(fx_buy(&f, 1, "101", "1"), QB_RISK_REASON_SECTOR_EXPOSURE);
    assert_int_equal(fx_buy(&f, 2, "350", "1"), QB_RISK_REASON_NONE); /* energy: own bucket */
    /* a per-sector override */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_SECTOR_EXPOSURE, "tech", D("0.35"), E, sizeof E));
    assert_int_equal(fx_buy(&f, 1, "50", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "51", "1"), QB_RISK_REASON_SECTOR_EXPOSURE);
    qb_portfolio_destroy(f.pf);

    /* correlation: 40000 of AAA held, rho 0.5, limit 0.6 -> buying 400 BBB:
     * 40000 + 0.5 x 40000 = 60000 = 0.6 x 100000: at; 401 above */
    fx_init(&f, "100000", "1", 0);
    fx_hold(&f, 0, "400");
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_CORRELATED_EXPOSURE, NULL, D("0.6"), E, sizeof E));
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED, NULL, D("1"), E, sizeof E));
    f.rho = 0.5;
    assert_int_equal(fx_buy(&f, 1, "399", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "400", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "401", "1"), QB_RISK_REASON_CORRELATED_EXPOSURE);
    f.rho = -0.5; /* a hedge adds nothing */
    assert_int_equal(fx_buy(&f, 1, "400", "1"), QB_RISK_REASON_NONE);
    f.rho = NAN; /* unknown: counted as 1 -> 40000 + 40000 > 60000 */
    assert_int_equal(fx_buy(&f, 1, "200", "1"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 1, "201", "1"), QB_RISK_REASON_CORRELATED_EXPOSURE);
    qb_portfolio_destroy(f.pf);
}

static void test_check_buying_power(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "10000", "0.5", 0); /* Reg T: 2:1 */
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED, NULL, D("4"), E, sizeof E));
    OK(qb_risk_limits_set(&f.l, QB_RISK_LIMIT_MAX_CORRELATED_EXPOSURE, NULL, D("4"), E, sizeof E));
    /* margin 0.5 x 200 x 100 = 10000 = excess: at; 201 above */
    assert_int_equal(fx_buy(&f, 0, "199", "0.01"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "200", "0.01"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "201", "0.01"), QB_RISK_REASON_INSUFFICIENT_FUNDS);
    /* open orders hold 50 of it */
    f.c.open_reserved = D("50");
    assert_int_equal(fx_buy(&f, 0, "199", "0.01"), QB_RISK_REASON_NONE);
    assert_int_equal(fx_buy(&f, 0, "200", "0.01"), QB_RISK_REASON_INSUFFICIENT_FUNDS);
    qb_portfolio_destroy(f.pf);
}

static void test_check_state_rate_price(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    f.c.status = QB_RISK_HALTED;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_KILL_SWITCH);
    f.c.status = QB_RISK_ACTIVE;
    f.c.global_halt = 1;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_KILL_SWITCH);
    f.c.global_halt = 0;
    f.c.status = QB_RISK_PAUSED;
    f.c.paused_until = 2000;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_DAILY_LOSS_PAUSE);
    f.c.now = 2000; /* the next session */
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_NONE);
    f.c.status = QB_RISK_ACTIVE;
    /* rate: 60 per minute -> 59 before: at; 60 before: above */
    f.c.orders_last_minute = 59;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_NONE);
    f.c.orders_last_minute = 60;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_RATE_LIMIT);
    f.c.orders_last_minute = 0;
    f.c.open_orders = 99;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_NONE);
    f.c.open_orders = 100;
    assert_int_equal(fx_buy(&f, 0, "1", "1"), QB_RISK_REASON_MAX_OPEN_ORDERS);
    f.c.open_orders = 0;
    /* price sanity: last close 100, max deviation 10% */
    f.c.last_close = D("100");
    qb_risk_order_t o;
    memset(&o, 0, sizeof o);
    o.side = QB_SIDE_BUY;
    o.type = QB_ORDER_TYPE_LIMIT;
    o.qty = D("1");
    o.lot = D("1");
    o.stop_distance = D("1");
    qb_risk_result_t r;
    o.limit_price = D("110");
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_NONE);
    o.limit_price = D("110.00000001");
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_PRICE_SANITY);
    o.limit_price = D("90");
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_NONE);
    o.limit_price = 0; /* LIMIT without a price */
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_INVALID_ORDER);
    /* no price at all for a market order */
    f.c.last_close = 0;
    o.type = QB_ORDER_TYPE_MARKET;
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_NO_MARKET_PRICE);
    /* qty not a lot multiple, qty 0 */
    assert_int_equal(fx_buy(&f, 0, "0", "1"), QB_RISK_REASON_INVALID_ORDER);
    o.price = D("100");
    o.qty = D("1.5");
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_INVALID_ORDER);
    qb_portfolio_destroy(f.pf);
}

static void test_check_reducing_and_short(void **st) {
    (void)st;
    fx_t f;
    fx_init(&f, "100000", "1", 0);
    fx_hold(&f, 0, "900"); /* 90% deployed: above 80% */
    qb_risk_order_t o;
    memset(&o, 0, sizeof o);
    o.sym = 0;
    o.side = QB_SIDE_SELL;
    o.type = QB_ORDER_TYPE_MARKET;
    o.qty = D("100");
    o.lot = D("1");
    o.price = D("100");
    qb_risk_result_t r;
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_NONE); /* reduces: allowed */
    o.qty = D("901"); /* a cash account cannot go short */
    qb_risk_check(&f.c, &o, &r);
    assert_int_equal(r.reason, QB_RISK_REASON_SHORT_NOT_ALLOWED);
    qb_portfolio_destroy(f.pf);
}

/* ---- post-trade -------------------------------------------------------------------- */

#define DAY (86400LL * 1000000000LL)

static void test_post_daily_loss(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    qb_risk_pnl_t p = {0, 0, 0};
    qb_risk_breach_t b;
    qb_time_t t = 10 * DAY + 1000;
    assert_int_equal(qb_risk_post_update(&p, &l, D("100000"), t, QB_RISK_ACTIVE, &b), 0);
    assert_int_equal(p.day, 10);
    assert_dec(p.day_start, "100000");
    /* 5% of 100000 = 5000: 4999.99999999 below, 5000 at (pauses) */
    assert_int_equal(qb_risk_post_update(&p, &l, D("95000.00000001"), t, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_NONE);
    assert_int_equal(qb_risk_post_update(&p, &l, D("95000"), t, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_PAUSE);
    assert_int_equal(b.limit, QB_RISK_LIMIT_MAX_DAILY_LOSS_FRACTION);
    assert_dec(b.observed, "5000");
    assert_int_equal(b.paused_until, 11 * DAY); /* the next UTC midnight */
    /* already paused: not again */
    assert_int_equal(qb_risk_post_update(&p, &l, D("94000"), t, QB_RISK_PAUSED, &b),
                     QB_RISK_POST_NONE);
    assert_int_equal(qb_risk_post_status(QB_RISK_PAUSED, 11 * DAY, 11 * DAY - 1), QB_RISK_PAUSED);
    assert_int_equal(qb_risk_post_status(QB_RISK_PAUSED, 11 * DAY, 11 * DAY), QB_RISK_ACTIVE);
    assert_int_equal(qb_risk_post_status(QB_RISK_HALTED, 0, 99 * DAY), QB_RISK_HALTED);
    /* a new day: the baseline moves to the equity then */
    assert_int_equal(qb_risk_post_update(&p, &l, D("94000"), 11 * DAY + 5, QB_RISK_ACTIVE, &b), 0);
    assert_dec(p.day_start, "94000");
    /* the money limit, when smaller, applies: 3000 */
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_DAILY_LOSS, NULL, D("3000"), E, sizeof E));
    assert_int_equal(qb_risk_post_update(&p, &l, D("91000.01"), 11 * DAY + 6, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_NONE);
    assert_int_equal(qb_risk_post_update(&p, &l, D("91000"), 11 * DAY + 7, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_PAUSE);
    assert_int_equal(b.limit, QB_RISK_LIMIT_MAX_DAILY_LOSS);
}

static void test_post_drawdown(void **st) {
    (void)st;
    qb_risk_limits_t l;
    qb_risk_limits_init(&l);
    OK(qb_risk_limits_set(&l, QB_RISK_LIMIT_MAX_DAILY_LOSS_FRACTION, NULL, D("0.5"), E, sizeof E));
    qb_risk_pnl_t p = {0, 0, 0};
    qb_risk_breach_t b;
    qb_time_t t = 3 * DAY;
    qb_risk_post_update(&p, &l, D("100000"), t, QB_RISK_ACTIVE, &b);
    qb_risk_post_update(&p, &l, D("125000"), t + 1, QB_RISK_ACTIVE, &b);
    assert_dec(p.hwm, "125000");
    /* 20% of 125000 = 25000: equity 100000.00000001 below, 100000 at -> halt */
    assert_int_equal(qb_risk_post_update(&p, &l, D("100000.00000001"), t + 2, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_NONE);
    assert_int_equal(qb_risk_post_update(&p, &l, D("100000"), t + 3, QB_RISK_ACTIVE, &b),
                     QB_RISK_POST_HALT);
    assert_int_equal(b.limit, QB_RISK_LIMIT_MAX_DRAWDOWN);
    assert_dec(b.observed, "0.2");
    /* a halt beats a pause, also while paused; halted is final */
    assert_int_equal(qb_risk_post_update(&p, &l, D("90000"), t + 4, QB_RISK_PAUSED, &b),
                     QB_RISK_POST_HALT);
    assert_int_equal(qb_risk_post_update(&p, &l, D("10"), t + 5, QB_RISK_HALTED, &b),
                     QB_RISK_POST_NONE);
    /* RESUME rebases both baselines */
    qb_risk_post_rebase(&p, D("90000"), t + 6);
    assert_dec(p.hwm, "90000");
    assert_dec(p.day_start, "90000");
    assert_int_equal(qb_risk_post_update(&p, &l, D("90000"), t + 7, QB_RISK_ACTIVE, &b), 0);
}

/* ---- VaR ------------------------------------------------------------------------------ */

/* 20 returns; sorted worst first: -0.045, -0.03, -0.02, -0.02, -0.015, ...
 * mean = -0.01 / 20 = -0.0005; sum of squared deviations 0.006895, sd =
 * sqrt(0.006895 / 19) = 0.0190497962414852. */
static const double R20[20] = {0.01,  -0.02, 0.015, -0.03,  0.005, 0.02,  -0.01,
                               0.0,   0.025, -0.045, 0.01, 0.005, -0.015, 0.03,
                               -0.005, 0.01, -0.02, 0.015, 0.0,   -0.01};

static void test_var_hand(void **st) {
    (void)st;
    double v, c, m, sd;
    qb_risk_mean_sd(R20, 20, &m, &sd);
    assert_true(fabs(m - -0.0005) < 1e-15);
    assert_true(fabs(sd - sqrt(0.006895 / 19)) < 1e-15);
    /* historical: k = ceil(0.05 x 20) = 1 -> the worst, 0.045 */
    OK(qb_risk_var_hist(R20, 20, 0.95, &v, &c));
    assert_true(fabs(v - 0.045) < 1e-15 && fabs(c - 0.045) < 1e-15);
    OK(qb_risk_var_hist(R20, 20, 0.99, &v, &c));
    assert_true(fabs(v - 0.045) < 1e-15);
    /* k = ceil(0.10 x 20) = 2: VaR 0.03, CVaR (0.045 + 0.03) / 2 = 0.0375 */
    OK(qb_risk_var_hist(R20, 20, 0.90, &v, &c));
    assert_true(fabs(v - 0.03) < 1e-15 && fabs(c - 0.0375) < 1e-15);
    /* k = 4: VaR 0.02, CVaR (0.045 + 0.03 + 0.02 + 0.02) / 4 = 0.02875 */
    OK(qb_risk_var_hist(R20, 20, 0.80, &v, &c));
    assert_true(fabs(v - 0.02) < 1e-15 && fabs(c - 0.02875) < 1e-15);
    /* parametric: z95 = 1.6448536269514722, phi(z95) / 0.05 = 2.0627128075074
     * VaR = z sd - mean = 0.0318341264404935; CVaR = 0.0397942586877185
     * z99 = 2.3263478740408408: VaR 0.0448164529872904, CVaR 0.0512717878374966 */
    OK(qb_risk_var_param(R20, 20, 0.95, &v, &c));
    assert_true(fabs(v - 0.031834126440493514) < 1e-12);
    assert_true(fabs(c - 0.03979425868771849) < 1e-12);
    OK(qb_risk_var_param(R20, 20, 0.99, &v, &c));
    assert_true(fabs(v - 0.044816452987290395) < 1e-12);
    assert_true(fabs(c - 0.05127178783749655) < 1e-12);
    assert_true(fabs(qb_risk_norm_quantile(0.975) - 1.959963984540054) < 1e-12);
    assert_true(fabs(qb_risk_norm_quantile(0.001) + 3.090232306167813) < 1e-12);
    /* Monte Carlo of one asset (weight 1) converges on the parametric figure;
     * the same seed gives the same figure */
    double v2, c2;
    OK(qb_risk_var_mc(R20, 20, 1, (double[]){1.0}, 0.95, 200000, 7, &v, &c));
    OK(qb_risk_var_mc(R20, 20, 1, (double[]){1.0}, 0.95, 200000, 7, &v2, &c2));
    assert_true(v == v2 && c == c2);
    assert_true(fabs(v - 0.031834126440493514) < 0.0006);
    assert_true(fabs(c - 0.03979425868771849) < 0.0008);
    assert_int_equal(qb_risk_var_hist(R20, 0, 0.95, &v, &c), QB_ERR_INVALID);
}

static void test_var_portfolio(void **st) {
    (void)st;
    /* two assets: B = -A (a perfect hedge) and C = 2A */
    double R[20 * 2], x[20], y[20], z[20];
    for (int t = 0; t < 20; t++) {
        R[t * 2] = R20[t];
        R[t * 2 + 1] = -R20[t];
        x[t] = R20[t];
        y[t] = -R20[t];
        z[t] = 2 * R20[t];
    }
    assert_true(fabs(qb_risk_corr(x, y, 20) + 1) < 1e-12);
    assert_true(fabs(qb_risk_beta(z, x, 20) - 2) < 1e-12);
    double C[4];
    qb_risk_corr_matrix(R, 20, 2, C);
    assert_true(C[0] == 1 && C[3] == 1 && fabs(C[1] + 1) < 1e-12 && C[1] == C[2]);
    /* equal weights hedge to zero: no VaR */
    double rp[20], v, c;
    qb_risk_port_returns(R, 20, 2, (double[]){0.5, 0.5}, rp);
    OK(qb_risk_var_hist(rp, 20, 0.95, &v, &c));
    assert_true(fabs(v) < 1e-15);
    OK(qb_risk_var_mc(R, 20, 2, (double[]){0.5, 0.5}, 0.99, 20000, 1, &v, &c));
    assert_true(fabs(v) < 1e-12); /* the draws cancel too (a singular covariance) */
    /* weights 0.5 / 0: half the single-asset figures */
    qb_risk_port_returns(R, 20, 2, (double[]){0.5, 0}, rp);
    OK(qb_risk_var_param(rp, 20, 0.95, &v, &c));
    assert_true(fabs(v - 0.031834126440493514 / 2) < 1e-12);
    assert_true(isnan(qb_risk_corr(x, x, 2)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_table),
        cmocka_unit_test(test_limits_hard_max),
        cmocka_unit_test(test_limits_keyed),
        cmocka_unit_test(test_sizing_rules),
        cmocka_unit_test(test_signal_order),
        cmocka_unit_test(test_order_id),
        cmocka_unit_test(test_check_risk_per_trade),
        cmocka_unit_test(test_check_capital_deployed),
        cmocka_unit_test(test_check_positions_and_size),
        cmocka_unit_test(test_check_sector_and_correlation),
        cmocka_unit_test(test_check_buying_power),
        cmocka_unit_test(test_check_state_rate_price),
        cmocka_unit_test(test_check_reducing_and_short),
        cmocka_unit_test(test_post_daily_loss),
        cmocka_unit_test(test_post_drawdown),
        cmocka_unit_test(test_var_hand),
        cmocka_unit_test(test_var_portfolio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
