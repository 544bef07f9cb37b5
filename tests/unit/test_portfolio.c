/* test_portfolio.c — libs/portfolio on crafted numbers: commission models,
 * sizing rules, the fill model's bar rules and slippage, portfolio
 * accounting (longs, shorts, flips, margin) and the broker simulator (each
 * order type, both fill timings, time in force, volume cap and partial
 * fills, ALL_IN, rejections). Every expected number is worked by hand in a
 * comment; the ones with rounding were checked with Python's decimal. */
#include <stdio.h>
#include <string.h>

#include "qb_test_assert.h"

#include "portfolio/qb_commission.h"
#include "portfolio/qb_fill_model.h"
#include "portfolio/qb_portfolio.h"
#include "portfolio/qb_sim.h"
#include "portfolio/qb_sizing.h"

static char E[512];

/* Decimal literal from text; the tests read like the numbers they mean. */
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

/* ---- commission ------------------------------------------------------------ */

static qb_dec_t fee(qb_commission_t m, const char *qty, const char *notional) {
    qb_dec_t f = -1;
    OK(qb_commission_calc(&m, D(qty), D(notional), &f));
    return f;
}

static void test_commission(void **state) {
    /* per trade: the fee whatever the size; nothing for nothing */
    qb_commission_t pt = qb_commission_per_trade(D("1"));
    assert_dec(fee(pt, "1", "10"), "1");
    assert_dec(fee(pt, "5000", "500000"), "1");
    assert_dec(fee(pt, "0", "0"), "0");
    /* per share 0.005, minimum 1: 100 sh -> 0.50 -> raised to 1; 1000 sh -> 5 */
    qb_commission_t ps = qb_commission_per_share(D("0.005"), D("1"));
    assert_dec(fee(ps, "100", "5000"), "1");
    assert_dec(fee(ps, "1000", "50000"), "5");
    /* 0.0035 x 333 = 1.1655: exact with step 0, 1.17 with cents (half up) */
    qb_commission_t ps2 = qb_commission_per_share(D("0.0035"), 0);
    assert_dec(fee(ps2, "333", "1"), "1.1655");
    ps2.step = D("0.01");
    assert_dec(fee(ps2, "333", "1"), "1.17");
    /* percent: 0.1% of 12345.67 = 12.34567 -> 12.35 in cents */
    qb_commission_t pc = qb_commission_percent(D("0.001"), 0);
    assert_dec(fee(pc, "1", "12345.67"), "12.34567");
    pc.step = D("0.01");
    assert_dec(fee(pc, "1", "12345.67"), "12.35");
    assert_dec(fee(pc, "1", "5"), "0.01");     /* 0.005: the tie goes up */
    assert_dec(fee(pc, "1", "4.99"), "0");     /* 0.00499 -> 0.00 */
    pc.minimum = D("2.5");
    assert_dec(fee(pc, "1", "100"), "2.5");    /* 0.10 < minimum */
    assert_dec(fee(qb_commission_none(), "100", "5000"), "0");
    /* partial fills price the order: fee(cum) - fee(paid). 50+30+40 sh at
     * 0.01/sh, minimum 1: cum 50 -> 1, cum 80 -> 1 (0.80), cum 120 -> 1.20 */
    qb_commission_t po = qb_commission_per_share(D("0.01"), D("1"));
    assert_dec(fee(po, "50", "0"), "1");
    assert_dec(fee(po, "80", "0"), "1");
    assert_dec(fee(po, "120", "0"), "1.2");
    /* validation */
    qb_commission_t bad = {0};
    ERR(QB_ERR_INVALID, qb_commission_validate(&bad, E, sizeof E));
    assert_non_null(strstr(E, "unknown kind"));
    bad = qb_commission_percent(D("-0.1"), 0);
    ERR(QB_ERR_INVALID, qb_commission_validate(&bad, E, sizeof E));
    assert_non_null(strstr(E, "rate is negative"));
    qb_dec_t f;
    assert_int_equal(qb_commission_calc(&pt, -1, 0, &f), QB_ERR_INVALID);
    qb_commission_kind_t k;
    assert_int_equal(qb_commission_kind_parse("per_share", &k), QB_OK);
    assert_int_equal(k, QB_COMMISSION_PER_SHARE);
    assert_string_equal(qb_commission_kind_name(QB_COMMISSION_PERCENT), "PERCENT");
    assert_string_equal(qb_commission_kind_name((qb_commission_kind_t)0), "UNKNOWN");
    assert_int_equal(qb_commission_kind_parse("flat", &k), QB_ERR_PARSE);
}

/* ---- sizing ---------------------------------------------------------------- */

static void test_sizing(void **state) {
    qb_dec_t q;
    OK(qb_sizing_fixed_qty(D("10.7"), D("1"), &q));
    assert_dec(q, "10");
    OK(qb_sizing_fixed_qty(D("10.7"), D("0.5"), &q));
    assert_dec(q, "10.5");
    /* 10% of 100000 = 10000 at 33 -> 303.03 -> 303; lots of 100 -> 300 */
    OK(qb_sizing_percent_equity(D("100000"), D("0.1"), D("33"), D("1"), &q));
    assert_dec(q, "303");
    OK(qb_sizing_percent_equity(D("100000"), D("0.1"), D("33"), D("100"), &q));
    assert_dec(q, "300");
    OK(qb_sizing_percent_equity(D("-5"), D("0.1"), D("33"), D("1"), &q));
    assert_dec(q, "0");
    /* risk 1% of 100000 = 1000 over a 2.00 stop distance -> 500, long or short */
    OK(qb_sizing_fixed_fractional(D("100000"), D("0.01"), D("50"), D("48"), D("1"), &q));
    assert_dec(q, "500");
    OK(qb_sizing_fixed_fractional(D("100000"), D("0.01"), D("50"), D("52"), D("1"), &q));
    assert_dec(q, "500");
    /* 1000 / 0.3 = 3333.33 -> 3333 */
    OK(qb_sizing_fixed_fractional(D("100000"), D("0.01"), D("10"), D("9.7"), D("1"), &q));
    assert_dec(q, "3333");
    assert_int_equal(qb_sizing_fixed_fractional(D("1"), D("0.01"), D("5"), D("5"), D("1"), &q),
                     QB_ERR_INVALID);
    assert_int_equal(qb_sizing_percent_equity(D("1"), D("0.1"), 0, D("1"), &q), QB_ERR_INVALID);
    assert_int_equal(qb_sizing_fixed_qty(D("1"), 0, &q), QB_ERR_INVALID);

    /* all_in: 10000 at 99, 1 per trade: 101 x 99 + 1 = 10000 exactly */
    qb_commission_t pt = qb_commission_per_trade(D("1"));
    OK(qb_sizing_all_in(D("10000"), D("99"), D("1"), &pt, D("1"), &q));
    assert_dec(q, "101");
    /* 0.01/sh, min 1: 100 -> 9900 + 1 = 9901; 101 -> 9999 + 1.01 > 10000 */
    qb_commission_t ps = qb_commission_per_share(D("0.01"), D("1"));
    OK(qb_sizing_all_in(D("10000"), D("99"), D("1"), &ps, D("1"), &q));
    assert_dec(q, "100");
    /* 0.1%: 100 -> 9909.9; 101 -> 10008.999 */
    qb_commission_t pc = qb_commission_percent(D("0.001"), 0);
    OK(qb_sizing_all_in(D("10000"), D("99"), D("1"), &pc, D("1"), &q));
    assert_dec(q, "100");
    /* margin 0.5, no fee: 202 x 99 / 2 = 9999; 203 -> 10048.5 */
    OK(qb_sizing_all_in(D("10000"), D("99"), D("0.5"), NULL, D("1"), &q));
    assert_dec(q, "202");
    /* crypto lots of 0.001: 1000 at 30000 -> 0.033 (990); 0.034 -> 1020 */
    OK(qb_sizing_all_in(D("1000"), D("30000"), D("1"), NULL, D("0.001"), &q));
    assert_dec(q, "0.033");
    /* nothing fits */
    OK(qb_sizing_all_in(D("50"), D("99"), D("1"), NULL, D("1"), &q));
    assert_dec(q, "0");
    OK(qb_sizing_all_in(D("99.5"), D("99"), D("1"), &pt, D("1"), &q)); /* 99 + 1 > 99.5 */
    assert_dec(q, "0");
    OK(qb_sizing_all_in(0, D("99"), D("1"), NULL, D("1"), &q));
    assert_dec(q, "0");
    /* the cost it compares: ceil(0.5 x 9999) + 1 = 4999.5 + 1 */
    OK(qb_sizing_cost(D("101"), D("99"), D("0.5"), &pt, &q));
    assert_dec(q, "5000.5");
    qb_sizing_kind_t k;
    assert_int_equal(qb_sizing_kind_parse("fixed_fractional", &k), QB_OK);
    assert_int_equal(k, QB_SIZING_FIXED_FRACTIONAL);
    assert_string_equal(qb_sizing_kind_name(QB_SIZING_ALL_IN), "ALL_IN");
}

/* all_in is the LARGEST fitting quantity: brute force on small numbers */
static void test_sizing_all_in_brute(void **state) {
    qb_commission_t models[] = {qb_commission_none(), qb_commission_per_trade(D("3")),
                                qb_commission_per_share(D("0.07"), D("2")),
                                qb_commission_percent(D("0.0125"), D("1.5"))};
    const char *margins[] = {"1", "0.5", "0.3", "1.5"};
    for (int mi = 0; mi < 4; mi++)
        for (int gi = 0; gi < 4; gi++)
            for (int money = 0; money < 700; money += 7)
                for (int pr = 1; pr < 60; pr += 3) {
                    qb_dec_t q, price = pr * QB_DEC_SCALE + 37000000, m = D(margins[gi]);
                    qb_dec_t cash = money * QB_DEC_SCALE;
                    OK(qb_sizing_all_in(cash, price, m, &models[mi], QB_DEC_SCALE, &q));
                    qb_dec_t cost, cost1;
                    if (q > 0) {
                        OK(qb_sizing_cost(q, price, m, &models[mi], &cost));
                        assert_true(cost <= cash);
                    }
                    OK(qb_sizing_cost(q + QB_DEC_SCALE, price, m, &models[mi], &cost1));
                    assert_true(cost1 > cash);
                }
}

/* ---- fill model ------------------------------------------------------------- */

static const qb_pf_bar_t BAR = {0, 10000000000, 10500000000, 9500000000, 10200000000,
                                100000000000}; /* O 100 H 105 L 95 C 102 V 1000 */

/* ref price or -1 when no fill; *trig in/out */
static qb_dec_t match(qb_side_t side, qb_order_type_t type, const char *lp, const char *sp,
                      int *trig, const qb_pf_bar_t *bar) {
    qb_dec_t ref = 0;
    int t = trig ? *trig : 0;
    int hit = qb_fill_match(side, type, lp ? D(lp) : 0, sp ? D(sp) : 0, &t, bar, &ref);
    if (trig) *trig = t;
    return hit ? ref : -1;
}

static void test_fill_match(void **state) {
    const qb_side_t B = QB_SIDE_BUY, S = QB_SIDE_SELL;
    const qb_order_type_t MKT = QB_ORDER_TYPE_MARKET, LMT = QB_ORDER_TYPE_LIMIT,
                          STP = QB_ORDER_TYPE_STOP, SL = QB_ORDER_TYPE_STOP_LIMIT;
    /* market: the open */
    assert_dec(match(B, MKT, NULL, NULL, NULL, &BAR), "100");
    assert_dec(match(S, MKT, NULL, NULL, NULL, &BAR), "100");
    /* limit buy: L 95 <= Lp -> min(O 100, Lp) */
    assert_dec(match(B, LMT, "98", NULL, NULL, &BAR), "98");
    assert_dec(match(B, LMT, "101", NULL, NULL, &BAR), "100"); /* opens below: open */
    assert_dec(match(B, LMT, "95", NULL, NULL, &BAR), "95");   /* touch fills */
    assert_int_equal(match(B, LMT, "94.99", NULL, NULL, &BAR), -1);
    /* limit sell: H 105 >= Lp -> max(O, Lp) */
    assert_dec(match(S, LMT, "103", NULL, NULL, &BAR), "103");
    assert_dec(match(S, LMT, "99", NULL, NULL, &BAR), "100");
    assert_dec(match(S, LMT, "105", NULL, NULL, &BAR), "105");
    assert_int_equal(match(S, LMT, "105.01", NULL, NULL, &BAR), -1);
    /* stop buy: H >= Sp -> max(O, Sp); gap above the stop fills at the open */
    int t = 0;
    assert_dec(match(B, STP, NULL, "103", &t, &BAR), "103");
    assert_int_equal(t, 1);
    t = 0;
    assert_dec(match(B, STP, NULL, "99", &t, &BAR), "100");
    t = 0;
    assert_int_equal(match(B, STP, NULL, "105.01", &t, &BAR), -1);
    assert_int_equal(t, 0);
    /* stop sell: L <= Sp -> min(O, Sp) */
    t = 0;
    assert_dec(match(S, STP, NULL, "97", &t, &BAR), "97");
    t = 0;
    assert_dec(match(S, STP, NULL, "101", &t, &BAR), "100");
    t = 0;
    assert_int_equal(match(S, STP, NULL, "94", &t, &BAR), -1);
    /* a triggered stop is a market order: the open */
    t = 1;
    assert_dec(match(B, STP, NULL, "200", &t, &BAR), "100");
    /* stop-limit buy, triggered inside the bar (O 100 < Sp 103 <= H 105):
     * Lp 104 >= Sp -> fills at Sp; Lp 102.5 < Sp -> triggered, no fill */
    t = 0;
    assert_dec(match(B, SL, "104", "103", &t, &BAR), "103");
    t = 0;
    assert_int_equal(match(B, SL, "102.5", "103", &t, &BAR), -1);
    assert_int_equal(t, 1);
    /* ... and on the next bar it is a limit 102.5: O 102.4 -> min(102.4, 102.5) */
    qb_pf_bar_t nb = {1, D("102.4"), D("102.9"), D("101.5"), D("102"), D("10")};
    assert_dec(match(B, SL, "102.5", "103", &t, &nb), "102.4");
    /* triggered at the open (O 100 >= Sp 99): a limit on the whole bar */
    t = 0;
    assert_dec(match(B, SL, "101", "99", &t, &BAR), "100");
    t = 0;
    assert_dec(match(B, SL, "98", "99", &t, &BAR), "98");
    t = 0;
    assert_int_equal(match(B, SL, "94", "99", &t, &BAR), -1);
    assert_int_equal(t, 1);
    /* stop-limit sell: O 100 > Sp 97 >= L 95; Lp 96 <= Sp -> 97; Lp 98 > Sp -> wait */
    t = 0;
    assert_dec(match(S, SL, "96", "97", &t, &BAR), "97");
    t = 0;
    assert_int_equal(match(S, SL, "98", "97", &t, &BAR), -1);
    assert_int_equal(t, 1);
    /* untouched stop-limit */
    t = 0;
    assert_int_equal(match(B, SL, "107", "106", &t, &BAR), -1);
    assert_int_equal(t, 0);

    /* a single price (CLOSE timing): 102 */
    qb_dec_t ref;
    t = 0;
    assert_int_equal(qb_fill_match_price(B, LMT, D("101"), 0, &t, D("102"), &ref), 0);
    assert_int_equal(qb_fill_match_price(B, LMT, D("102"), 0, &t, D("102"), &ref), 1);
    assert_dec(ref, "102");
    assert_int_equal(qb_fill_match_price(S, STP, 0, D("103"), &t, D("102"), &ref), 1);
    assert_dec(ref, "102");
    t = 0;
    assert_int_equal(qb_fill_match_price(B, STP, 0, D("103"), &t, D("102"), &ref), 0);
    assert_int_equal(t, 0);

    /* bar validation */
    qb_pf_bar_t bad = BAR;
    bad.low = D("101"); /* L > O */
    ERR(QB_ERR_INVALID, qb_pf_bar_validate(&bad, E, sizeof E));
    assert_non_null(strstr(E, "L 101"));
    OK(qb_pf_bar_validate(&BAR, E, sizeof E));
    qb_fill_timing_t ft;
    assert_int_equal(qb_fill_timing_parse("close", &ft), QB_OK);
    assert_int_equal(ft, QB_FILL_CLOSE);
    assert_string_equal(qb_fill_timing_name(QB_FILL_NEXT_OPEN), "NEXT_OPEN");
}

static qb_dec_t slip(qb_side_t side, const char *ref, const char *bps, const char *tick,
                     const char *limit) {
    qb_dec_t p = 0;
    assert_int_equal(qb_fill_slip(side, D(ref), D(bps), tick ? D(tick) : 0,
                                  limit ? D(limit) : 0, &p),
                     QB_OK);
    return p;
}

static void test_slippage(void **state) {
    const qb_side_t B = QB_SIDE_BUY, S = QB_SIDE_SELL;
    assert_dec(slip(B, "100", "5", NULL, NULL), "100.05");
    assert_dec(slip(S, "100", "5", NULL, NULL), "99.95");
    assert_dec(slip(B, "100", "0", NULL, NULL), "100");
    /* 33.33 x 1.001 = 33.36333, x 0.999 = 33.29667; on a 0.01 grid against
     * the trader: 33.37 and 33.29 */
    assert_dec(slip(B, "33.33", "10", NULL, NULL), "33.36333");
    assert_dec(slip(S, "33.33", "10", NULL, NULL), "33.29667");
    assert_dec(slip(B, "33.33", "10", "0.01", NULL), "33.37");
    assert_dec(slip(S, "33.33", "10", "0.01", NULL), "33.29");
    /* rounding to 1e-8 against the trader: 1.23456789 x 1.0003 =
     * 1.234938260367 -> 1.23493827 (up); x 0.9997 = 1.234197519633 ->
     * 1.23419751 (down) */
    assert_dec(slip(B, "1.23456789", "3", NULL, NULL), "1.23493827");
    assert_dec(slip(S, "1.23456789", "3", NULL, NULL), "1.23419751");
    /* a limit caps it: buy 100 + 50 bps = 100.5 -> limit 100.2 */
    assert_dec(slip(B, "100", "50", NULL, "100.2"), "100.2");
    assert_dec(slip(S, "100", "50", NULL, "99.8"), "99.8");
    assert_dec(slip(B, "100", "50", NULL, "101"), "100.5");
    /* never below one tick */
    assert_dec(slip(S, "0.004", "10", "0.01", NULL), "0.01");
    qb_dec_t p;
    assert_int_equal(qb_fill_slip(B, D("100"), D("10000"), 0, 0, &p), QB_ERR_INVALID);
    assert_int_equal(qb_fill_slip(B, 0, 0, 0, 0, &p), QB_ERR_INVALID);
}

/* ---- portfolio ---------------------------------------------------------------- */

static qb_portfolio_t *pf_new(const char *cash, const char *ml, const char *ms, int shorts) {
    qb_portfolio_config_t c;
    qb_portfolio_config_default(&c);
    strcpy(c.account, "acct-1");
    c.initial_cash = D(cash);
    c.margin_long = D(ml);
    c.margin_short = D(ms);
    c.allow_short = shorts;
    qb_portfolio_t *pf = NULL;
    OK(qb_portfolio_new(&c, &pf, E, sizeof E));
    return pf;
}

static uint32_t sym(qb_portfolio_t *pf, const char *name) {
    uint32_t id = 99;
    OK(qb_portfolio_symbol(pf, name, &id, E, sizeof E));
    return id;
}

static void fill(qb_portfolio_t *pf, uint32_t id, qb_side_t side, const char *qty,
                 const char *price, const char *fee) {
    OK(qb_portfolio_apply_fill(pf, id, side, D(qty), D(price), D(fee), E, sizeof E));
}

/* equity - initial - deposits vs realised + unrealised */
static void assert_pnl_split(qb_portfolio_t *pf, qb_dec_t max_residual) {
    qb_dec_t pnl = qb_portfolio_equity(pf) - qb_portfolio_initial_cash(pf) -
                   qb_portfolio_deposits(pf);
    qb_dec_t split = qb_portfolio_realized(pf) + qb_portfolio_unrealized(pf);
    qb_dec_t d = pnl - split;
    if (d < -max_residual || d > max_residual)
        fail_msg("pnl %lld vs realised + unrealised %lld", (long long)pnl, (long long)split);
}

static void test_portfolio_long(void **state) {
    qb_portfolio_t *pf = pf_new("100000", "1", "1", 0);
    uint32_t a = sym(pf, "aapl");
    assert_int_equal(a, 0);
    assert_string_equal(qb_portfolio_symbol_name(pf, a), "AAPL");
    /* buy 100 @ 50, fee 1: cash 100000 - 5000 - 1 = 94999; marked at the
     * fill price (first fill): equity 94999 + 5000 = 99999 */
    fill(pf, a, QB_SIDE_BUY, "100", "50", "1");
    assert_dec(qb_portfolio_cash(pf), "94999");
    assert_dec(qb_portfolio_equity(pf), "99999");
    assert_dec(qb_portfolio_position(pf, a)->avg_cost, "50");
    assert_dec(qb_portfolio_realized(pf), "-1");
    assert_string_equal(qb_portfolio_position(pf, a)->account, "acct-1");
    /* mark 55: mv 5500, equity 100499, unrealised 100 x 5 = 500 */
    OK(qb_portfolio_mark(pf, a, D("55")));
    assert_dec(qb_portfolio_market_value(pf, a), "5500");
    assert_dec(qb_portfolio_equity(pf), "100499");
    assert_dec(qb_portfolio_unrealized_of(pf, a), "500");
    assert_pnl_split(pf, 0);
    /* buy 50 @ 60, fee 1: cash 91998; avg (5000 + 3000) / 150 = 53.33333333;
     * the mark stays 55: mv 8250, equity 100248 */
    fill(pf, a, QB_SIDE_BUY, "50", "60", "1");
    assert_dec(qb_portfolio_cash(pf), "91998");
    assert_dec(qb_portfolio_position(pf, a)->avg_cost, "53.33333333");
    assert_dec(qb_portfolio_equity(pf), "100248");
    /* unrealised 150 x (55 - 53.33333333) = 250.0000005 -> 250.0000005; the
     * split is off by the avg rounding: 150 x 0.00000000333 = 0.0000005 */
    assert_dec(qb_portfolio_unrealized_of(pf, a), "250.0000005");
    assert_pnl_split(pf, 50);
    /* sell 120 @ 58, fee 1: cash 91998 + 6960 - 1 = 98957; realised
     * (58 - 53.33333333) x 120 = 560.0000004, total -1 -1 +560.0000004 -1 */
    fill(pf, a, QB_SIDE_SELL, "120", "58", "1");
    assert_dec(qb_portfolio_cash(pf), "98957");
    assert_dec(qb_portfolio_qty(pf, a), "30");
    assert_dec(qb_portfolio_realized(pf), "557.0000004");
    assert_dec(qb_portfolio_commissions(pf), "3");
    assert_dec(qb_portfolio_commission_of(pf, a), "3");
    /* equity 98957 + 30 x 55 = 100607 */
    assert_dec(qb_portfolio_equity(pf), "100607");
    /* close at 57: cash 98957 + 1710 = 100667; realised += 30 x 3.66666667 */
    fill(pf, a, QB_SIDE_SELL, "30", "57", "0");
    assert_dec(qb_portfolio_cash(pf), "100667");
    assert_dec(qb_portfolio_qty(pf, a), "0");
    assert_dec(qb_portfolio_position(pf, a)->avg_cost, "0");
    assert_dec(qb_portfolio_realized(pf), "667.0000005");
    assert_dec(qb_portfolio_equity(pf), "100667");
    assert_dec(qb_portfolio_unrealized(pf), "0");
    assert_int_equal(qb_portfolio_fills(pf), 4);
    /* bad fills change nothing */
    ERR(QB_ERR_INVALID, qb_portfolio_apply_fill(pf, a, QB_SIDE_BUY, 0, D("1"), 0, E, sizeof E));
    assert_non_null(strstr(E, "quantity"));
    ERR(QB_ERR_INVALID,
        qb_portfolio_apply_fill(pf, 7, QB_SIDE_BUY, D("1"), D("1"), 0, E, sizeof E));
    assert_non_null(strstr(E, "unknown symbol"));
    ERR(QB_ERR_INVALID,
        qb_portfolio_apply_fill(pf, a, QB_SIDE_BUY, D("1"), D("-1"), 0, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_portfolio_mark(pf, a, 0));
    assert_dec(qb_portfolio_cash(pf), "100667");
    /* a core fill by symbol text adds the symbol */
    qb_fill_t f;
    memset(&f, 0, sizeof f);
    OK(qb_symbol_set(&f.symbol, "MSFT", E, sizeof E));
    f.side = QB_SIDE_BUY;
    f.qty = D("2");
    f.price = D("400.5");
    f.commission = D("0.35");
    OK(qb_portfolio_apply(pf, &f, E, sizeof E));
    uint32_t m;
    OK(qb_portfolio_symbol_find(pf, "msft", &m));
    assert_int_equal(m, 1);
    assert_dec(qb_portfolio_cash(pf), "99865.65"); /* 100667 - 801 - 0.35 */
    assert_dec(qb_portfolio_deposits(pf), "0");
    OK(qb_portfolio_deposit(pf, D("-865.65")));
    assert_dec(qb_portfolio_cash(pf), "99000");
    assert_dec(qb_portfolio_deposits(pf), "-865.65");
    assert_pnl_split(pf, 100);
    qb_portfolio_destroy(pf);
    qb_portfolio_destroy(NULL);
}

static void test_portfolio_short_and_flip(void **state) {
    qb_portfolio_t *pf = pf_new("10000", "1", "0.5", 1);
    uint32_t x = sym(pf, "XYZ");
    /* short 100 @ 50: cash 15000, mv -5000, equity 10000; used 0.5 x 5000 */
    fill(pf, x, QB_SIDE_SELL, "100", "50", "0");
    assert_dec(qb_portfolio_cash(pf), "15000");
    assert_dec(qb_portfolio_short_value(pf), "-5000");
    assert_dec(qb_portfolio_long_value(pf), "0");
    assert_dec(qb_portfolio_equity(pf), "10000");
    assert_dec(qb_portfolio_margin_used(pf), "2500");
    assert_dec(qb_portfolio_excess(pf), "7500");
    assert_dec(qb_portfolio_buying_power(pf), "7500");
    /* price up to 60: the short loses 1000; used 3000 */
    OK(qb_portfolio_mark(pf, x, D("60")));
    assert_dec(qb_portfolio_equity(pf), "9000");
    assert_dec(qb_portfolio_unrealized_of(pf, x), "-1000");
    assert_dec(qb_portfolio_margin_used(pf), "3000");
    /* cover 40 @ 40: cash 15000 - 1600 = 13400, realised (50 - 40) x 40 */
    fill(pf, x, QB_SIDE_BUY, "40", "40", "0");
    assert_dec(qb_portfolio_cash(pf), "13400");
    assert_dec(qb_portfolio_realized(pf), "400");
    assert_dec(qb_portfolio_qty(pf, x), "-60");
    assert_dec(qb_portfolio_position(pf, x)->avg_cost, "50");
    /* flip: buy 100 @ 45, fee 2: closes 60 (+300), opens 40 long at 45;
     * cash 13400 - 4500 - 2 = 8898; realised 400 + 300 - 2 = 698 */
    fill(pf, x, QB_SIDE_BUY, "100", "45", "2");
    assert_dec(qb_portfolio_cash(pf), "8898");
    assert_dec(qb_portfolio_qty(pf, x), "40");
    assert_dec(qb_portfolio_position(pf, x)->avg_cost, "45");
    assert_dec(qb_portfolio_realized(pf), "698");
    /* marked at 60: long 2400, equity 11298 = 10000 + 698 + 40 x 15 */
    assert_dec(qb_portfolio_long_value(pf), "2400");
    assert_dec(qb_portfolio_short_value(pf), "0");
    assert_dec(qb_portfolio_equity(pf), "11298");
    assert_pnl_split(pf, 0);
    qb_portfolio_destroy(pf);
}

static void test_portfolio_margin(void **state) {
    /* cash account: a buy needs notional + fee <= cash */
    qb_portfolio_t *pf = pf_new("10000", "1", "1", 0);
    uint32_t a = sym(pf, "A");
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_BUY, D("100"), D("100"), 0),
                     QB_PF_REJECT_NONE);
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_BUY, D("100"), D("100"), D("1")),
                     QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("1"), D("100"), 0),
                     QB_PF_REJECT_SHORT_NOT_ALLOWED);
    assert_int_equal(qb_portfolio_check_fill(pf, 5, QB_SIDE_SELL, D("1"), D("100"), 0),
                     QB_PF_REJECT_UNKNOWN_SYMBOL);
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_BUY, 0, D("100"), 0),
                     QB_PF_REJECT_INVALID_QTY);
    fill(pf, a, QB_SIDE_BUY, "60", "100", "0");
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("60"), D("90"), 0),
                     QB_PF_REJECT_NONE);
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("61"), D("90"), 0),
                     QB_PF_REJECT_SHORT_NOT_ALLOWED);
    /* max_qty: a sell without shorts is the whole position; a buy is what
     * cash covers: 4000 / 99 = 40.4 -> 40 (fee 1: 3999 / 99 = 40.39 -> 40) */
    qb_dec_t q;
    OK(qb_portfolio_max_qty(pf, a, QB_SIDE_SELL, D("99"), NULL, D("1"), &q));
    assert_dec(q, "60");
    qb_commission_t pt = qb_commission_per_trade(D("1"));
    OK(qb_portfolio_max_qty(pf, a, QB_SIDE_BUY, D("99"), &pt, D("1"), &q));
    assert_dec(q, "40");
    qb_portfolio_destroy(pf);

    /* Reg T 2:1: 10000 buys 200 @ 100 (cash -10000, mv 20000, equity
     * 10000 = used 0.5 x 20000); 201 is too many */
    pf = pf_new("10000", "0.5", "0.5", 1);
    a = sym(pf, "A");
    assert_dec(qb_portfolio_buying_power(pf), "20000");
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_BUY, D("201"), D("100"), 0),
                     QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    OK(qb_portfolio_max_qty(pf, a, QB_SIDE_BUY, D("100"), NULL, D("1"), &q));
    assert_dec(q, "200");
    fill(pf, a, QB_SIDE_BUY, "200", "100", "0");
    assert_dec(qb_portfolio_cash(pf), "-10000");
    assert_dec(qb_portfolio_excess(pf), "0");
    /* down to 60: equity 10000 - 8000 = 2000, used 6000: a deficit of 4000.
     * Reducing is still allowed; adding is not */
    OK(qb_portfolio_mark(pf, a, D("60")));
    assert_dec(qb_portfolio_equity(pf), "2000");
    assert_dec(qb_portfolio_excess(pf), "-4000");
    assert_dec(qb_portfolio_buying_power(pf), "0");
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("50"), D("60"), 0),
                     QB_PF_REJECT_NONE);
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_BUY, D("1"), D("60"), 0),
                     QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    /* selling past flat into a short is not a pure reduction, so the margin
     * rule applies: sell 210 @ 60 -> cash -10000 + 12600 = 2600, short 10
     * (mv -600), equity 2000 >= used 0.5 x 600 = 300: accepted */
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("210"), D("60"), 0),
                     QB_PF_REJECT_NONE);
    /* max sell: close 200, then short k: equity stays 2000, used 30k <= 2000
     * -> k = 66 -> 266 */
    OK(qb_portfolio_max_qty(pf, a, QB_SIDE_SELL, D("60"), NULL, D("1"), &q));
    assert_dec(q, "266");
    assert_int_equal(qb_portfolio_check_fill(pf, a, QB_SIDE_SELL, D("267"), D("60"), 0),
                     QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    qb_portfolio_destroy(pf);

    /* short margin 1.5 (equity must be 150% of the short): 10000 shorts
     * 10000 / 1.5 / 50 = 133.3 -> 133 at 50 */
    pf = pf_new("10000", "1", "1.5", 1);
    a = sym(pf, "A");
    OK(qb_portfolio_max_qty(pf, a, QB_SIDE_SELL, D("50"), NULL, D("1"), &q));
    assert_dec(q, "133");

    /* bad configs */
    qb_portfolio_config_t c;
    qb_portfolio_config_default(&c);
    c.margin_long = 0;
    qb_portfolio_t *bad = NULL;
    ERR(QB_ERR_INVALID, qb_portfolio_new(&c, &bad, E, sizeof E));
    assert_non_null(strstr(E, "margin_long"));
    qb_portfolio_destroy(pf);
}

static void test_portfolio_symbols(void **state) {
    qb_portfolio_t *pf = pf_new("1", "1", "1", 0);
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "S%d", i);
        assert_int_equal(sym(pf, name), (uint32_t)i);
    }
    for (int i = 299; i >= 0; i--) {
        snprintf(name, sizeof name, "s%d", i);
        uint32_t id;
        OK(qb_portfolio_symbol_find(pf, name, &id));
        assert_int_equal(id, (uint32_t)i);
        assert_int_equal(sym(pf, name), (uint32_t)i);
    }
    assert_int_equal(qb_portfolio_nsymbols(pf), 300);
    uint32_t id;
    assert_int_equal(qb_portfolio_symbol_find(pf, "NOPE", &id), QB_ERR_NOT_FOUND);
    ERR(QB_ERR_INVALID, qb_portfolio_symbol(pf, "bad sym", &id, E, sizeof E));
    assert_null(qb_portfolio_position(pf, 300));
    assert_string_equal(qb_portfolio_symbol_name(pf, 300), "");
    qb_portfolio_destroy(pf);
}

static void test_reject_names(void **state) {
    assert_string_equal(qb_pf_reject_name(QB_PF_REJECT_INSUFFICIENT_BUYING_POWER),
                        "INSUFFICIENT_BUYING_POWER");
    assert_string_equal(qb_pf_reject_name(QB_PF_REJECT_NONE), "NONE");
    assert_string_equal(qb_pf_reject_name((qb_pf_reject_t)99), "UNKNOWN");
    assert_non_null(strstr(qb_pf_reject_str(QB_PF_REJECT_SHORT_NOT_ALLOWED), "short"));
}

/* ---- simulator ------------------------------------------------------------------ */

typedef struct world_s {
    qb_portfolio_t *pf;
    qb_sim_t *sim;
    uint32_t a;
} world_t;

#define HOUR (3600 * QB_NS_PER_SEC)
#define DAY1 (19724 * QB_NS_PER_DAY) /* 2024-01-02 */

static world_t *world(const char *cash, int shorts, const char *ms, qb_sim_config_t *sc) {
    static world_t w;
    w.pf = pf_new(cash, "1", ms, shorts);
    w.a = sym(w.pf, "AAA");
    qb_sim_config_t def;
    qb_sim_config_default(&def);
    OK(qb_sim_new(sc ? sc : &def, w.pf, &w.sim, E, sizeof E));
    return &w;
}

static void world_free(world_t *w) {
    qb_sim_destroy(w->sim);
    qb_portfolio_destroy(w->pf);
}

/* bar n of day 1 (hourly from 14:00 UTC) */
static qb_pf_bar_t bar(int n, const char *o, const char *h, const char *l, const char *c,
                       const char *v) {
    qb_pf_bar_t b = {DAY1 + 14 * HOUR + n * HOUR, D(o), D(h), D(l), D(c), D(v)};
    return b;
}

static void on_bar(world_t *w, qb_pf_bar_t b) {
    qb_err_t err = qb_sim_on_bar(w->sim, w->a, &b);
    if (err != QB_OK) fail_msg("on_bar: %s", qb_sim_last_error(w->sim));
}

static uint64_t submit(world_t *w, qb_side_t side, qb_order_type_t type, qb_tif_t tif,
                       const char *qty, const char *lp, const char *sp) {
    qb_sim_order_t o = {.sym = w->a, .side = side, .type = type, .tif = tif,
                        .qty = qty ? D(qty) : 0, .limit_price = lp ? D(lp) : 0,
                        .stop_price = sp ? D(sp) : 0, .flags = qty ? 0 : QB_SIM_ALL_IN,
                        .tag = 7};
    uint64_t id = 0;
    OK(qb_sim_submit(w->sim, &o, 1, &id, E, sizeof E));
    assert_true(id != 0);
    return id;
}

static const qb_sim_event_t *events(world_t *w, size_t want) {
    size_t n;
    const qb_sim_event_t *ev = qb_sim_events(w->sim, &n);
    if (n != want) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "event %zu: %s qty %lld price %lld reason %s\n", i,
                    qb_sim_event_kind_name(ev[i].kind), (long long)ev[i].qty,
                    (long long)ev[i].price, qb_pf_reject_name(ev[i].reason));
        fail_msg("%zu events, want %zu", n, want);
    }
    return ev;
}

static void clear(world_t *w) { qb_sim_events_clear(w->sim); }

static void test_sim_market_next_open(void **state) {
    world_t *w = world("100000", 0, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    uint64_t id = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "10", NULL, NULL);
    events(w, 0); /* nothing fills before the next bar */
    assert_int_equal(qb_sim_open_orders(w->sim, w->a), 1);
    qb_sim_order_info_t info;
    OK(qb_sim_order_get(w->sim, id, &info));
    assert_int_equal(info.status, QB_ORDER_STATUS_ACCEPTED);
    assert_int_equal(info.tag, 7);
    /* next bar opens 101: 10 x 101 = 1010; cash 98990; marked at the close
     * 102: equity 98990 + 1020 = 100010 */
    on_bar(w, bar(1, "101", "103", "100", "102", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_FILL);
    assert_int_equal(e->status, QB_ORDER_STATUS_FILLED);
    assert_int_equal(e->order_id, id);
    assert_int_equal(e->tag, 7);
    assert_int_equal(e->ts, DAY1 + 15 * HOUR);
    assert_dec(e->qty, "10");
    assert_dec(e->price, "101");
    assert_dec(e->ref_price, "101");
    assert_dec(e->cash, "98990");
    assert_dec(e->position, "10");
    assert_dec(qb_portfolio_equity(w->pf), "100010");
    assert_int_equal(qb_sim_open_orders(w->sim, w->a), 0);
    assert_int_equal(qb_sim_order_get(w->sim, id, &info), QB_ERR_NOT_FOUND);
    assert_int_equal(qb_sim_cancel(w->sim, id, 1), QB_ERR_NOT_FOUND);
    world_free(w);
}

static void test_sim_close_timing(void **state) {
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.timing = QB_FILL_CLOSE;
    world_t *w = world("100000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    /* fills at this bar's close: 10 x 100.5; cash 98995 */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_DAY, "10", NULL, NULL);
    const qb_sim_event_t *e = events(w, 1);
    assert_dec(e->price, "100.5");
    assert_dec(e->cash, "98995");
    clear(w);
    /* a limit 100 is not marketable at the close 100.5: it rests, and the
     * next bar (L 99.5 <= 100, O 100.2) fills it at 100 */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "5", "100", NULL);
    events(w, 0);
    on_bar(w, bar(1, "100.2", "100.4", "99.5", "100", "1000"));
    e = events(w, 1);
    assert_dec(e->price, "100");
    assert_dec(e->cash, "98495"); /* 98995 - 500 */
    clear(w);
    /* a sell stop 100.5 is already through at the close 100: fills at 100 */
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_STOP, QB_TIF_GTC, "15", NULL, "100.5");
    e = events(w, 1);
    assert_dec(e->price, "100");
    assert_dec(e->position, "0");
    assert_dec(e->cash, "99995");
    world_free(w);
}

static void test_sim_limit_orders(void **state) {
    world_t *w = world("100000", 1, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    uint64_t b1 = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "10", "99.5", NULL);
    uint64_t s1 = submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "4", "102", NULL);
    /* bar 1: L 100 > 99.5 and H 101.8 < 102: nothing */
    on_bar(w, bar(1, "100.2", "101.8", "100", "101", "1000"));
    events(w, 0);
    /* bar 2: gaps down to 98 (O 98 <= 99.5: fills at the open 98); the sell
     * limit 102 is far: nothing. cash 100000 - 980 = 99020 */
    on_bar(w, bar(2, "98", "99", "97.5", "98.5", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->order_id, b1);
    assert_dec(e->price, "98");
    assert_dec(e->cash, "99020");
    clear(w);
    /* bar 3: H 102.5 >= 102, O 99: sell 4 at 102 -> cash 99428 */
    on_bar(w, bar(3, "99", "102.5", "98.8", "101", "1000"));
    e = events(w, 1);
    assert_int_equal(e->order_id, s1);
    assert_dec(e->price, "102");
    assert_dec(e->cash, "99428");
    assert_dec(e->position, "6");
    /* realised (102 - 98) x 4 = 16 */
    assert_dec(qb_portfolio_realized(w->pf), "16");
    world_free(w);
}

static void test_sim_stop_orders(void **state) {
    world_t *w = world("100000", 1, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    uint64_t bs = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_STOP, QB_TIF_GTC, "10", NULL, "102.5");
    uint64_t bsl =
        submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_STOP_LIMIT, QB_TIF_GTC, "10", "102", "102.5");
    /* bar 1: H 103 >= 102.5 from O 101: the stop fills at 102.5; the
     * stop-limit triggers inside the bar with Lp 102 < Sp: no fill yet */
    on_bar(w, bar(1, "101", "103", "100", "102", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->order_id, bs);
    assert_dec(e->price, "102.5");
    assert_dec(e->cash, "98975");
    clear(w);
    qb_sim_order_info_t info;
    OK(qb_sim_order_get(w->sim, bsl, &info));
    assert_int_equal(info.triggered, 1);
    /* bar 2: a limit 102 now; O 102.4, L 101.5 -> fills at 102 */
    on_bar(w, bar(2, "102.4", "102.9", "101.5", "102.2", "1000"));
    e = events(w, 1);
    assert_int_equal(e->order_id, bsl);
    assert_dec(e->price, "102");
    assert_dec(e->cash, "97955");
    clear(w);
    /* protective sell stop 100 for the 20 held; bar 3 gaps down to 97:
     * fills at the open 97 (worse than the stop) */
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_STOP, QB_TIF_GTC, "20", NULL, "100");
    on_bar(w, bar(3, "97", "98", "96", "97.5", "1000"));
    e = events(w, 1);
    assert_dec(e->price, "97");
    assert_dec(e->position, "0");
    assert_dec(e->cash, "99895"); /* 97955 + 1940 */
    /* the avg cost of the 20 is (102.5 + 102) / 2 = 102.25; realised
     * (97 - 102.25) x 20 = -105 = 99895 - 100000 */
    assert_dec(qb_portfolio_realized(w->pf), "-105");
    world_free(w);
}

static void test_sim_day_and_gtc(void **state) {
    world_t *w = world("100000", 0, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    uint64_t day = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_DAY, "1", "90", NULL);
    uint64_t gtc = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "1", "90", NULL);
    on_bar(w, bar(1, "100", "101", "99", "100.5", "1000"));
    on_bar(w, bar(2, "100", "101", "99", "100.5", "1000"));
    events(w, 0);
    /* the next day's first bar expires the DAY order before matching */
    qb_pf_bar_t next = bar(24, "100", "101", "99", "100.5", "1000");
    on_bar(w, next);
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_EXPIRED);
    assert_int_equal(e->status, QB_ORDER_STATUS_EXPIRED);
    assert_int_equal(e->order_id, day);
    assert_int_equal(e->ts, next.ts);
    assert_dec(e->qty, "1");
    clear(w);
    qb_sim_order_info_t info;
    OK(qb_sim_order_get(w->sim, gtc, &info));
    /* a DAY order submitted after the day's last bar is good for the next
     * day: it is matched (and fills) on the next day's first bar */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_DAY, "1", NULL, NULL);
    on_bar(w, bar(48, "100", "101", "99", "100.5", "1000"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_FILL);
    clear(w);
    /* cancel and cancel_all */
    OK(qb_sim_cancel(w->sim, gtc, 5));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_CANCELED);
    assert_int_equal(e->ts, 5);
    clear(w);
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "1", "90", NULL);
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "1", "91", NULL);
    assert_int_equal(qb_sim_open_total(w->sim), 2);
    assert_int_equal(qb_sim_cancel_all(w->sim, 6), 2);
    events(w, 2);
    assert_int_equal(qb_sim_open_total(w->sim), 0);
    world_free(w);
}

static void test_sim_volume_cap_partial(void **state) {
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.volume_cap = D("0.1");
    sc.commission = qb_commission_per_share(D("0.01"), D("1"));
    world_t *w = world("100000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    uint64_t id = submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "120", NULL, NULL);
    /* bar 1: 10% of 505 = 50.5 -> 50 (whole lots) @ 101; fee max(1, 0.50) = 1;
     * cash 100000 - 5050 - 1 */
    on_bar(w, bar(1, "101", "102", "100", "101.5", "505"));
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    assert_dec(e->qty, "50");
    assert_dec(e->commission, "1");
    assert_dec(e->cash, "94949");
    assert_dec(e->filled_qty, "50");
    clear(w);
    /* bar 2: 30 @ 102 (volume 300); the order's fee is still 1 (0.80 < 1):
     * this fill pays 0. cash 94949 - 3060 = 91889 */
    on_bar(w, bar(2, "102", "103", "101", "102", "300"));
    e = events(w, 1);
    assert_dec(e->qty, "30");
    assert_dec(e->commission, "0");
    assert_dec(e->cash, "91889");
    clear(w);
    qb_sim_order_info_t info;
    OK(qb_sim_order_get(w->sim, id, &info));
    assert_int_equal(info.status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    /* avg (5050 + 3060) / 80 = 101.375 */
    assert_dec(info.avg_fill_price, "101.375");
    assert_dec(info.commission, "1");
    /* a zero-volume bar fills nothing */
    on_bar(w, bar(3, "102", "103", "101", "102", "0"));
    events(w, 0);
    /* bar 4: the last 40 @ 103 (cap 100 > 40); order fee 1.20: pays 0.20.
     * cash 91889 - 4120 - 0.2 = 87768.8 */
    on_bar(w, bar(4, "103", "104", "102", "103", "1000"));
    e = events(w, 1);
    assert_int_equal(e->status, QB_ORDER_STATUS_FILLED);
    assert_dec(e->qty, "40");
    assert_dec(e->commission, "0.2");
    assert_dec(e->cash, "87768.8");
    assert_dec(qb_portfolio_commissions(w->pf), "1.2");
    clear(w);
    /* two orders share one bar's allowance, oldest first: 10% of 700 = 70 */
    uint64_t o1 = submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "60", NULL, NULL);
    uint64_t o2 = submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "30", NULL, NULL);
    on_bar(w, bar(5, "104", "105", "103", "104", "700"));
    e = events(w, 2);
    assert_int_equal(e[0].order_id, o1);
    assert_dec(e[0].qty, "60");
    assert_int_equal(e[1].order_id, o2);
    assert_dec(e[1].qty, "10");
    assert_int_equal(e[1].status, QB_ORDER_STATUS_PARTIALLY_FILLED);
    world_free(w);
}

static void test_sim_ioc_fok(void **state) {
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.volume_cap = D("0.1");
    world_t *w = world("100000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    /* cap 10% of 500 = 50: IOC 80 fills 50 and cancels 30 */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_IOC, "80", NULL, NULL);
    on_bar(w, bar(1, "101", "102", "100", "101.5", "500"));
    const qb_sim_event_t *e = events(w, 2);
    assert_int_equal(e[0].kind, QB_SIM_EV_FILL);
    assert_dec(e[0].qty, "50");
    assert_int_equal(e[1].kind, QB_SIM_EV_CANCELED);
    assert_int_equal(e[1].status, QB_ORDER_STATUS_CANCELED);
    assert_dec(e[1].qty, "30");
    clear(w);
    /* FOK 80 does not fit: canceled with no fill */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_FOK, "80", NULL, NULL);
    on_bar(w, bar(2, "101", "102", "100", "101.5", "500"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_CANCELED);
    assert_dec(e->filled_qty, "0");
    clear(w);
    /* an IOC limit that does not trade on its bar is canceled */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_IOC, "5", "90", NULL);
    on_bar(w, bar(3, "101", "102", "100", "101.5", "500"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_CANCELED);
    assert_int_equal(qb_sim_open_total(w->sim), 0);
    assert_dec(qb_portfolio_qty(w->pf, w->a), "50");
    world_free(w);
}

static void test_sim_slippage_and_commission(void **state) {
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.slippage_bps = D("10");
    sc.tick = D("0.01");
    sc.commission = qb_commission_percent(D("0.001"), D("1"));
    world_t *w = world("100000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "10", NULL, NULL);
    /* O 101 + 10 bps = 101.101 -> 101.11 on the tick; notional 1011.10;
     * fee 0.1% = 1.0111 -> 1.0111 (>= min 1); cash 100000 - 1011.1 - 1.0111;
     * slippage cost 10 x 0.11 = 1.1 */
    on_bar(w, bar(1, "101", "102", "100", "101.5", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_dec(e->price, "101.11");
    assert_dec(e->ref_price, "101");
    assert_dec(e->slippage, "1.1");
    assert_dec(e->commission, "1.0111");
    assert_dec(e->cash, "98987.8889");
    clear(w);
    /* sell 10 at O 102: 102 x 0.999 = 101.898 -> 101.89; notional 1018.9;
     * fee 1.0189; cash 98987.8889 + 1018.9 - 1.0189 = 100005.77 */
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "10", NULL, NULL);
    on_bar(w, bar(2, "102", "103", "101", "102", "1000"));
    e = events(w, 1);
    assert_dec(e->price, "101.89");
    assert_dec(e->slippage, "1.1");
    assert_dec(e->commission, "1.0189");
    assert_dec(e->cash, "100005.77");
    clear(w);
    /* a limit buy 100.05 filled at O 100: 100.1 -> capped at 100.05; the
     * minimum fee applies: 0.1% of 500.25 = 0.50025 -> 1 */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_LIMIT, QB_TIF_GTC, "5", "100.05", NULL);
    on_bar(w, bar(3, "100", "101", "99.5", "100.5", "1000"));
    e = events(w, 1);
    assert_dec(e->price, "100.05");
    assert_dec(e->commission, "1");
    assert_dec(e->slippage, "0.25");
    world_free(w);
}

static void test_sim_all_in(void **state) {
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.commission = qb_commission_per_trade(D("1"));
    world_t *w = world("10000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, NULL, NULL, NULL);
    /* sized at the fill: O 101; (10000 - 1) / 101 = 99.0 -> 99 (9999 + 1) */
    on_bar(w, bar(1, "101", "102", "100", "101.5", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_dec(e->qty, "99");
    assert_dec(e->order_qty, "99");
    assert_dec(e->cash, "0");
    clear(w);
    /* another all-in buy: nothing left -> REJECTED, buying power */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, NULL, NULL, NULL);
    on_bar(w, bar(2, "101", "102", "100", "101.5", "1000"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_REJECTED);
    assert_int_equal(e->reason, QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    clear(w);
    /* all-in sell without shorts: the whole position, 99 @ 103 - 1 */
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, NULL, NULL, NULL);
    on_bar(w, bar(3, "103", "104", "102", "103", "1000"));
    e = events(w, 1);
    assert_dec(e->qty, "99");
    assert_dec(e->cash, "10196"); /* 99 x 103 - 1 */
    assert_dec(e->position, "0");
    world_free(w);

    /* with shorts (margin 1 on shorts): all-in sell when long 10 @ 100
     * closes the 10, then shorts what equity covers: equity 1000 at 100 ->
     * 10 short: 20 */
    w = world("1000", 1, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100", "1000"));
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, NULL, NULL, NULL);
    on_bar(w, bar(1, "100", "101", "99", "100", "1000"));
    e = events(w, 1);
    assert_dec(e->qty, "10");
    clear(w);
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, NULL, NULL, NULL);
    on_bar(w, bar(2, "100", "101", "99", "100", "1000"));
    e = events(w, 1);
    assert_dec(e->qty, "20");
    assert_dec(e->position, "-10");
    assert_dec(e->cash, "2000");
    world_free(w);
}

static void test_sim_rejections(void **state) {
    world_t *w = world("100000", 0, "1", NULL);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    struct {
        qb_sim_order_t o;
        qb_pf_reject_t why;
    } cases[] = {
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC},
         QB_PF_REJECT_INVALID_QTY},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = -QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_QTY},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE, .flags = QB_SIM_ALL_IN},
         QB_PF_REJECT_INVALID_QTY},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_LIMIT, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_PRICE},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE, .stop_price = QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_PRICE},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_STOP_LIMIT, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE, .limit_price = QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_PRICE},
        {{.sym = 0, .side = (qb_side_t)3, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_ORDER},
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = (qb_tif_t)0,
          .qty = QB_DEC_SCALE},
         QB_PF_REJECT_INVALID_ORDER},
        {{.sym = 9, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE},
         QB_PF_REJECT_UNKNOWN_SYMBOL},
        {{.sym = 0, .side = QB_SIDE_SELL, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = QB_DEC_SCALE},
         QB_PF_REJECT_SHORT_NOT_ALLOWED},
        /* 1000 x the mark 100.5 = 100500 > 100000 */
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_GTC,
          .qty = 1000 * QB_DEC_SCALE},
         QB_PF_REJECT_INSUFFICIENT_BUYING_POWER},
        /* a limit is checked at its limit: 1001 x 99.9 = 99999.9 fits, 1002 not */
        {{.sym = 0, .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_LIMIT, .tif = QB_TIF_GTC,
          .qty = 1002 * QB_DEC_SCALE, .limit_price = 9990000000},
         QB_PF_REJECT_INSUFFICIENT_BUYING_POWER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t id = 5;
        cases[i].o.tag = 100 + i;
        ERR(QB_ERR_INVALID, qb_sim_submit(w->sim, &cases[i].o, 3, &id, E, sizeof E));
        assert_int_equal(id, 0);
        assert_non_null(strstr(E, qb_pf_reject_name(cases[i].why)));
        const qb_sim_event_t *e = events(w, 1);
        assert_int_equal(e->kind, QB_SIM_EV_REJECTED);
        assert_int_equal(e->status, QB_ORDER_STATUS_REJECTED);
        assert_int_equal(e->reason, cases[i].why);
        assert_int_equal(e->order_id, 0);
        assert_int_equal(e->tag, 100 + i);
        clear(w);
    }
    assert_int_equal(qb_sim_open_total(w->sim), 0);
    /* message text */
    qb_sim_order_t big = cases[10].o;
    uint64_t id;
    ERR(QB_ERR_INVALID, qb_sim_submit(w->sim, &big, 3, &id, E, sizeof E));
    assert_string_equal(E, "order AAA BUY 1000 MARKET: INSUFFICIENT_BUYING_POWER: equity after "
                           "the fill would not cover the margin requirement");
    clear(w);

    /* refused at the fill: 990 x 100.5 = 99495 passes at submission; the
     * next bar opens 102: 100980 > 100000 -> REJECTED, nothing booked */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "990", NULL, NULL);
    on_bar(w, bar(1, "102", "103", "101", "102", "1000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_REJECTED);
    assert_int_equal(e->reason, QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    assert_dec(e->cash, "100000");
    clear(w);
    world_free(w);

    /* partly filled, then refused: CANCELED with the reason. Cash 10000,
     * cap 50% of 100 = 50 per bar; buy 90 ~ 9045 at the mark: bar 1 fills
     * 50 @ 100 (5000); bar 2 opens 130: 40 x 130 = 5200 > 5000 */
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.volume_cap = D("0.5");
    w = world("10000", 0, "1", &sc);
    on_bar(w, bar(0, "100", "101", "99", "100.5", "1000"));
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "90", NULL, NULL);
    on_bar(w, bar(1, "100", "101", "99", "100", "100"));
    events(w, 1);
    clear(w);
    on_bar(w, bar(2, "130", "131", "129", "130", "100"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_CANCELED);
    assert_int_equal(e->status, QB_ORDER_STATUS_CANCELED);
    assert_int_equal(e->reason, QB_PF_REJECT_INSUFFICIENT_BUYING_POWER);
    assert_dec(e->qty, "40");
    assert_dec(e->filled_qty, "50");
    world_free(w);
}

static void test_sim_short_margin(void **state) {
    /* shorts with 50% margin: equity 10000 covers shorts up to 20000 */
    world_t *w = world("10000", 1, "0.5", NULL);
    on_bar(w, bar(0, "50", "51", "49", "50", "100000"));
    qb_sim_order_t o = {.sym = w->a, .side = QB_SIDE_SELL, .type = QB_ORDER_TYPE_MARKET,
                        .tif = QB_TIF_GTC, .qty = 401 * QB_DEC_SCALE};
    uint64_t id;
    ERR(QB_ERR_INVALID, qb_sim_submit(w->sim, &o, 1, &id, E, sizeof E));
    assert_non_null(strstr(E, "INSUFFICIENT_BUYING_POWER"));
    clear(w);
    submit(w, QB_SIDE_SELL, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "400", NULL, NULL);
    on_bar(w, bar(1, "50", "51", "49", "50", "100000"));
    const qb_sim_event_t *e = events(w, 1);
    assert_dec(e->cash, "30000");
    assert_dec(e->position, "-400");
    assert_dec(qb_portfolio_equity(w->pf), "10000");
    assert_dec(qb_portfolio_margin_used(w->pf), "10000");
    clear(w);
    /* the price rises to 55: equity 8000 < used 11000; covering is allowed */
    on_bar(w, bar(2, "55", "56", "54", "55", "100000"));
    assert_dec(qb_portfolio_equity(w->pf), "8000");
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "100", NULL, NULL);
    on_bar(w, bar(3, "55", "56", "54", "55", "100000"));
    e = events(w, 1);
    assert_int_equal(e->kind, QB_SIM_EV_FILL);
    assert_dec(e->position, "-300");
    assert_dec(qb_portfolio_realized(w->pf), "-500");
    world_free(w);
}

static void test_sim_bad_input(void **state) {
    world_t *w = world("10000", 0, "1", NULL);
    qb_pf_bar_t b = bar(0, "100", "101", "99", "100.5", "1000");
    on_bar(w, b);
    /* not after the previous bar */
    assert_int_equal(qb_sim_on_bar(w->sim, w->a, &b), QB_ERR_INVALID);
    assert_non_null(strstr(qb_sim_last_error(w->sim), "not after"));
    /* an invalid bar with working orders */
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "1", NULL, NULL);
    qb_pf_bar_t bad = bar(1, "100", "99", "101", "100", "1000"); /* H < L */
    assert_int_equal(qb_sim_on_bar(w->sim, w->a, &bad), QB_ERR_INVALID);
    assert_non_null(strstr(qb_sim_last_error(w->sim), "bad bar"));
    assert_int_equal(qb_sim_on_bar(w->sim, 7, &bad), QB_ERR_INVALID);
    assert_dec(qb_portfolio_cash(w->pf), "10000");
    world_free(w);
    /* bad configs */
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.lot = 0;
    qb_portfolio_t *pf = pf_new("1", "1", "1", 0);
    qb_sim_t *sim = NULL;
    ERR(QB_ERR_INVALID, qb_sim_new(&sc, pf, &sim, E, sizeof E));
    assert_non_null(strstr(E, "lot"));
    qb_sim_config_default(&sc);
    sc.slippage_bps = D("10000");
    ERR(QB_ERR_INVALID, qb_sim_new(&sc, pf, &sim, E, sizeof E));
    qb_sim_config_default(&sc);
    sc.commission.kind = (qb_commission_kind_t)0;
    ERR(QB_ERR_INVALID, qb_sim_new(&sc, pf, &sim, E, sizeof E));
    qb_sim_destroy(NULL);
    qb_portfolio_destroy(pf);
}

/* marks without orders: equity follows qty x close exactly */
static void test_sim_mark_path(void **state) {
    world_t *w = world("100000", 1, "1", NULL);
    uint32_t b = sym(w->pf, "BBB");
    on_bar(w, bar(0, "100", "101", "99", "100", "1000"));
    submit(w, QB_SIDE_BUY, QB_ORDER_TYPE_MARKET, QB_TIF_GTC, "3", NULL, NULL);
    qb_sim_order_t o = {.sym = b, .side = QB_SIDE_SELL, .type = QB_ORDER_TYPE_MARKET,
                        .tif = QB_TIF_GTC, .qty = 7 * QB_DEC_SCALE};
    uint64_t id;
    OK(qb_sim_submit(w->sim, &o, 1, &id, E, sizeof E)); /* no price for BBB yet: no check */
    qb_pf_bar_t bb = {DAY1 + 14 * HOUR, D("20"), D("21"), D("19"), D("20.5"), D("10")};
    OK(qb_sim_on_bar(w->sim, b, &bb));
    on_bar(w, bar(1, "100", "101", "99", "100", "1000"));
    /* cash 100000 - 300 + 140 = 99840 */
    assert_dec(qb_portfolio_cash(w->pf), "99840");
    for (int i = 2; i < 50; i++) {
        char p[16];
        snprintf(p, sizeof p, "%d.25", 90 + i);
        on_bar(w, bar(i, p, p, p, p, "1000"));
        bb.ts += HOUR;
        bb.open = bb.high = bb.low = bb.close = (20 + i) * QB_DEC_SCALE;
        OK(qb_sim_on_bar(w->sim, b, &bb));
        /* 99840 + 3 x p - 7 x (20 + i) */
        qb_dec_t want = 99840 * QB_DEC_SCALE + 3 * D(p) - 7 * (20 + i) * QB_DEC_SCALE;
        assert_int_equal(qb_portfolio_equity(w->pf), want);
    }
    world_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commission),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_sizing_all_in_brute),
        cmocka_unit_test(test_fill_match),
        cmocka_unit_test(test_slippage),
        cmocka_unit_test(test_portfolio_long),
        cmocka_unit_test(test_portfolio_short_and_flip),
        cmocka_unit_test(test_portfolio_margin),
        cmocka_unit_test(test_portfolio_symbols),
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_sim_market_next_open),
        cmocka_unit_test(test_sim_close_timing),
        cmocka_unit_test(test_sim_limit_orders),
        cmocka_unit_test(test_sim_stop_orders),
        cmocka_unit_test(test_sim_day_and_gtc),
        cmocka_unit_test(test_sim_volume_cap_partial),
        cmocka_unit_test(test_sim_ioc_fok),
        cmocka_unit_test(test_sim_slippage_and_commission),
        cmocka_unit_test(test_sim_all_in),
        cmocka_unit_test(test_sim_rejections),
        cmocka_unit_test(test_sim_short_margin),
        cmocka_unit_test(test_sim_bad_input),
        cmocka_unit_test(test_sim_mark_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
