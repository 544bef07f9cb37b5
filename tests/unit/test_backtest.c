/* test_backtest.c — the backtest engine (libs/backtest) on crafted bars:
 * signal -> sizing -> order -> fill -> cash and equity, with every expected
 * number worked by hand in a comment. Each order type (market entries and
 * exits, limit entries, protective stops and stop-limits), both fill
 * timings, commission and slippage, each sizing rule, shorts and margin,
 * partial fills (volume cap) on entries and exits, time order across
 * symbols, the window and warm-up, the end of the run (open trades),
 * round trips and metrics, and the live-path equivalence: signals made by
 * running libs/strategy on its own, fed to the engine, give the same trades
 * and fills as the engine running the strategies. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "qb_test_assert.h"

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_metrics.h"
#include "strategy/qb_strategy.h"

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

#define assert_near(got, want) assert_near_at((got), (want), #got, __LINE__)
static void assert_near_at(double got, double want, const char *expr, int line) {
    if (!(fabs(got - want) <= 1e-9 * (1 + fabs(want))))
        fail_msg("line %d: %s = %.12g, want %.12g", line, expr, got, want);
}

#define DAY (86400LL * 1000000000LL)
#define T0 1704153600000000000LL /* 2024-01-02 00:00 UTC */

/* A bar: "O H L C V". */
typedef struct {
    const char *o, *h, *l, *c, *v;
} tb_t;

static void add_bars(qb_bt_data_t *d, const char *sym, const tb_t *tb, size_t n,
                     const int *day) {
    uint32_t id;
    OK(qb_bt_data_symbol(d, sym, &id, E, sizeof E));
    for (size_t i = 0; i < n; i++) {
        qb_pf_bar_t b = {T0 + (day ? day[i] : (int)i) * DAY, D(tb[i].o), D(tb[i].h),
                         D(tb[i].l),  D(tb[i].c), D(tb[i].v ? tb[i].v : "1000000")};
        OK(qb_bt_data_append(d, id, &b, 1, E, sizeof E));
    }
}

/* The standard series of one symbol (closes 10 9 11 12 11 10.5):
 * sma_cross {fast:1, slow:2} says LONG on bar 2 (close rises after a fall)
 * and FLAT/SHORT on bar 4 (close falls after rises). */
static const tb_t STD[6] = {
    {"10", "10", "10", "10", NULL},   {"9", "9", "9", "9", NULL},
    {"11", "11", "11", "11", NULL},   {"12.5", "13", "12", "12", NULL},
    {"11.5", "11.5", "11", "11", NULL}, {"10", "10.5", "10", "10.5", NULL},
};

static qb_bt_data_t *std_data(void) {
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    add_bars(d, "AAA", STD, 6, NULL);
    OK(qb_bt_data_finalize(d, E, sizeof E));
    return d;
}

static void base_cfg(qb_bt_config_t *c) {
    qb_bt_config_default(c);
    c->cash = D("1000");
}

static qb_signal_t SIG(const char *sym, int day, qb_signal_dir_t dir, const char *ref,
                       const char *stop) {
    qb_signal_t s;
    memset(&s, 0, sizeof s);
    qb_symbol_set(&s.symbol, sym, NULL, 0);
    strcpy(s.timeframe, "1d");
    s.bar_ts = T0 + day * DAY;
    s.direction = dir;
    s.confidence = 1;
    s.reference_price = ref ? D(ref) : 0;
    s.stop_distance = stop ? D(stop) : 0;
    return s;
}

static qb_bt_result_t *run_sigs(const qb_bt_data_t *d, const qb_bt_config_t *c,
                                const qb_signal_t *s, size_t n) {
    qb_bt_result_t *r = NULL;
    OK(qb_bt_run_signals(d, c, s, n, &r, E, sizeof E));
    return r;
}

static const qb_bt_point_t *curve(const qb_bt_result_t *r, size_t want) {
    size_t n;
    const qb_bt_point_t *p = qb_bt_result_equity(r, &n);
    assert_int_equal(n, want);
    return p;
}

/* ---- market orders, next open, all in, through a real strategy --------------- */

static void test_strategy_market_next_open_all_in(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    base_cfg(&c);
    c.long_only = 1;
    c.keep_signals = 1;
    OK(qb_bt_config_add_strategy(&c, "sma_cross", "{\"fast\":1,\"slow\":2}", "", E, sizeof E));
    qb_bt_result_t *r = NULL;
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    /* LONG on bar 2 (close 11) -> all in at bar 3's open 12.5: floor(1000 /
     * 12.5) = 80 sh, cash 0; bar 3 close 12: equity 960. FLAT on bar 4
     * (close 11; equity 880) -> sell 80 at bar 5's open 10: cash 800. */
    size_t n;
    const qb_signal_t *sg = qb_bt_result_signals(r, &n);
    assert_int_equal(n, 2);
    assert_int_equal(sg[0].direction, QB_SIGNAL_LONG);
    assert_int_equal(sg[0].bar_ts, T0 + 2 * DAY);
    assert_int_equal(sg[1].direction, QB_SIGNAL_FLAT);
    const qb_bt_point_t *p = curve(r, 6);
    const char *want[6] = {"1000", "1000", "1000", "960", "880", "800"};
    for (int i = 0; i < 6; i++) {
        assert_dec(p[i].equity, want[i]);
        assert_int_equal(p[i].ts, T0 + i * DAY);
    }
    assert_dec(p[3].cash, "0");
    assert_dec(p[3].long_value, "960");
    /* benchmark: 1000 at bar 0's close 10 = 100 sh, cash 0 */
    const char *bw[6] = {"1000", "900", "1100", "1200", "1100", "1050"};
    for (int i = 0; i < 6; i++) assert_dec(p[i].benchmark, bw[i]);
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].side, QB_SIDE_BUY);
    assert_dec(f[0].qty, "80");
    assert_dec(f[0].price, "12.5");
    assert_int_equal(f[0].ts, T0 + 3 * DAY);
    assert_int_equal(f[0].tag, 0 * 4 + QB_BT_ROLE_ENTRY);
    assert_dec(f[1].price, "10");
    assert_int_equal(f[1].tag, 1 * 4 + QB_BT_ROLE_EXIT);
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].dir, 1);
    assert_int_equal(t[0].open, 0);
    assert_dec(t[0].qty, "80");
    assert_dec(t[0].entry_price, "12.5");
    assert_dec(t[0].exit_price, "10");
    assert_dec(t[0].net_pnl, "-200");
    assert_near(t[0].return_pct, -0.2);
    assert_int_equal(t[0].bars, 2);
    assert_int_equal(t[0].entry_ts, T0 + 3 * DAY);
    assert_int_equal(t[0].exit_ts, T0 + 5 * DAY);
    /* metrics: returns 0, 0, 0, -0.04, -1/12, -1/11 */
    const qb_bt_metrics_t *m = qb_bt_result_metrics(r);
    double rr[6] = {0, 0, 0, -0.04, 80.0 / 960 * -1, -80.0 / 880};
    double mean = 0, var = 0, down = 0;
    for (int i = 0; i < 6; i++) mean += rr[i] / 6;
    for (int i = 0; i < 6; i++) {
        var += (rr[i] - mean) * (rr[i] - mean) / 6;
        down += (rr[i] < 0 ? rr[i] * rr[i] : 0) / 6;
    }
    assert_int_equal(m->bars, 6);
    assert_near(m->bars_per_year, 252);
    assert_near(m->total_return, -0.2);
    assert_near(m->sharpe, mean / sqrt(var) * sqrt(252.0));
    assert_near(m->sortino, mean / sqrt(down) * sqrt(252.0));
    assert_near(m->cagr, pow(0.8, 252.0 / 6) - 1);
    assert_near(m->max_dd_pct, 0.2);
    assert_dec(m->max_dd_money, "200");
    assert_int_equal(m->max_dd_trough_ts, T0 + 5 * DAY);
    assert_int_equal(m->max_dd_bars, 3);
    assert_near(m->exposure, 2.0 / 6);
    assert_near(m->calmar, m->cagr / 0.2);
    /* turnover: 1000 + 800 traded / mean equity (5640 / 6 = 940) */
    assert_near(m->turnover, 1800.0 / 940.0);
    assert_int_equal(m->trades_closed, 1);
    assert_int_equal(m->won, 0);
    assert_int_equal(m->lost, 1);
    assert_near(m->win_rate, 0);
    assert_near(m->profit_factor, 0);
    assert_near(m->expectancy, -200);
    assert_near(m->avg_loss, -200);
    assert_dec(m->largest_loss, "-200");
    const qb_bt_metrics_t *b = qb_bt_result_benchmark(r);
    assert_non_null(b);
    assert_near(b->total_return, 0.05);
    assert_near(b->max_dd_pct, 0.125); /* 1200 -> 1050 */
    const qb_bt_counts_t *k = qb_bt_result_counts(r);
    assert_int_equal(k->signals, 2);
    assert_int_equal(k->orders, 2);
    assert_int_equal(k->fills, 2);
    assert_int_equal(k->bars, 6);
    assert_dec(qb_bt_result_cash(r), "800");
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- close timing, commission and slippage, fixed qty ----------------------- */

static void test_close_commission_slippage(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    base_cfg(&c);
    OK(qb_bt_config_set(&c, "fill", "close", E, sizeof E));
    OK(qb_bt_config_set(&c, "commission", "percent:0.1", E, sizeof E)); /* 0.001 */
    OK(qb_bt_config_set(&c, "slippage_bps", "10", E, sizeof E));
    OK(qb_bt_config_set(&c, "sizing", "fixed_qty", E, sizeof E));
    OK(qb_bt_config_set(&c, "sizing_value", "10", E, sizeof E));
    assert_dec(c.commission.rate, "0.001");
    qb_signal_t s[2] = {SIG("AAA", 2, QB_SIGNAL_LONG, "11", NULL),
                        SIG("AAA", 4, QB_SIGNAL_FLAT, "11", NULL)};
    qb_bt_result_t *r = run_sigs(d, &c, s, 2);
    /* buy 10 at bar 2's close 11 slipped +10 bps = 11.011; notional 110.11,
     * fee 0.11011: cash 889.77989; marked at 11: equity 999.77989.
     * sell 10 at bar 4's close 11 slipped -10 bps = 10.989; notional
     * 109.89, fee 0.10989: cash 999.56. net = 109.89 - 110.11 - 0.22 = -0.44 */
    const qb_bt_point_t *p = curve(r, 6);
    assert_dec(p[1].equity, "1000");
    assert_dec(p[2].cash, "889.77989");
    assert_dec(p[2].equity, "999.77989");
    assert_dec(p[3].equity, "1009.77989"); /* 889.77989 + 120 */
    assert_dec(p[4].equity, "999.56");
    assert_dec(p[5].equity, "999.56");
    size_t n;
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_dec(f[0].price, "11.011");
    assert_dec(f[0].commission, "0.11011");
    assert_dec(f[0].slippage, "0.11");
    assert_int_equal(f[0].ts, T0 + 2 * DAY);
    assert_dec(f[1].price, "10.989");
    assert_dec(f[1].commission, "0.10989");
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_dec(t[0].entry_price, "11.011");
    assert_dec(t[0].exit_price, "10.989");
    assert_dec(t[0].commission, "0.22");
    assert_dec(t[0].net_pnl, "-0.44");
    const qb_bt_counts_t *k = qb_bt_result_counts(r);
    assert_dec(k->commissions, "0.22");
    assert_dec(k->slippage, "0.22");
    /* benchmark with the same commission: all in at 10 with 0.1%:
     * 99 sh (99 x 10 x 1.001 = 990.99 <= 1000; 100 would be 1001) */
    assert_dec(p[0].benchmark, "999.01"); /* 1000 - 990 - 0.99 + 990 */
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- sizing rules ---------------------------------------------------------------- */

static void test_sizing_rules(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    size_t n;
    /* percent_equity 0.5: at the decision (bar 2) equity 1000, ref 11 ->
     * floor(500 / 11) = 45; filled at bar 3's open 12.5: 562.5, cash 437.5 */
    base_cfg(&c);
    c.sizing = QB_SIZING_PERCENT_EQUITY;
    c.sizing_value = D("0.5");
    qb_signal_t s1 = SIG("AAA", 2, QB_SIGNAL_LONG, "11", NULL);
    qb_bt_result_t *r = run_sigs(d, &c, &s1, 1);
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 1);
    assert_dec(f[0].qty, "45");
    assert_dec(f[0].cash_after, "437.5");
    /* open at the end: marked at the last close 10.5: net 45 x (10.5 -
     * 12.5) = -90 */
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].open, 1);
    assert_dec(t[0].net_pnl, "-90");
    assert_dec(t[0].exit_price, "10.5");
    assert_int_equal(t[0].exit_ts, T0 + 5 * DAY);
    assert_int_equal(qb_bt_result_metrics(r)->trades_open, 1);
    assert_int_equal(qb_bt_result_metrics(r)->trades_closed, 0);
    assert_dec(qb_bt_result_metrics(r)->open_pnl, "-90");
    qb_bt_result_destroy(r);
    /* the signal's target weight wins: 0.2 -> floor(200 / 11) = 18 */
    s1.has_target_weight = 1;
    s1.target_weight = 0.2;
    r = run_sigs(d, &c, &s1, 1);
    f = qb_bt_result_fills(r, &n);
    assert_dec(f[0].qty, "18");
    qb_bt_result_destroy(r);
    /* ... unless use_target_weight is off */
    c.use_target_weight = 0;
    r = run_sigs(d, &c, &s1, 1);
    f = qb_bt_result_fills(r, &n);
    assert_dec(f[0].qty, "45");
    qb_bt_result_destroy(r);
    /* fixed_fractional: risk 2% of 1000 = 20 over the stop distance 2 -> 10;
     * a signal without a stop is skipped */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_FRACTIONAL;
    c.sizing_value = D("0.02");
    qb_signal_t s2[2] = {SIG("AAA", 1, QB_SIGNAL_LONG, "9", NULL),
                         SIG("AAA", 2, QB_SIGNAL_LONG, "11", "2")};
    r = run_sigs(d, &c, s2, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 1);
    assert_dec(f[0].qty, "10");
    assert_dec(f[0].price, "12.5");
    assert_int_equal(qb_bt_result_counts(r)->signals_skipped, 1);
    assert_int_equal(qb_bt_result_counts(r)->signals, 2);
    qb_bt_result_destroy(r);
    /* all_in with a per-trade fee of 5: floor((1000 - 5) / 12.5) = 79 */
    base_cfg(&c);
    c.commission = qb_commission_per_trade(D("5"));
    r = run_sigs(d, &c, &s1, 1);
    f = qb_bt_result_fills(r, &n);
    assert_dec(f[0].qty, "79");
    assert_dec(f[0].cash_after, "7.5"); /* 1000 - 987.5 - 5 */
    qb_bt_result_destroy(r);
    /* per share 0.01 with a minimum of 1: 10 sh cost 0.10 -> 1; 150 sh
     * cost 1.50 */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("10");
    OK(qb_bt_config_set(&c, "commission", "per_share:0.01:1", E, sizeof E));
    qb_signal_t s4[2] = {SIG("AAA", 2, QB_SIGNAL_LONG, NULL, NULL),
                         SIG("AAA", 3, QB_SIGNAL_FLAT, NULL, NULL)};
    r = run_sigs(d, &c, s4, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_dec(f[0].commission, "1");
    assert_dec(f[0].cash_after, "874"); /* 1000 - 125 - 1 */
    assert_dec(f[1].commission, "1");
    assert_dec(f[1].cash_after, "988"); /* + 10 x 11.5 - 1 */
    const qb_bt_trade_t *t4 = qb_bt_result_trades(r, &n);
    assert_dec(t4[0].commission, "2");
    assert_dec(t4[0].net_pnl, "-12"); /* 115 - 125 - 2 */
    qb_bt_result_destroy(r);
    c.sizing_value = D("150");
    c.margin_long = D("0.5");
    r = run_sigs(d, &c, s4, 1);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 1);
    assert_dec(f[0].commission, "1.5");
    assert_dec(f[0].cash_after, "-876.5"); /* 1000 - 1875 - 1.5, on 2:1 margin */
    qb_bt_result_destroy(r);
    /* a LONG while long changes nothing (no pyramiding) */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("3");
    qb_signal_t s3[2] = {SIG("AAA", 1, QB_SIGNAL_LONG, NULL, NULL),
                         SIG("AAA", 3, QB_SIGNAL_LONG, NULL, NULL)};
    r = run_sigs(d, &c, s3, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 1);
    assert_dec(f[0].price, "11"); /* bar 2's open */
    assert_int_equal(qb_bt_result_counts(r)->orders, 1);
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- limit entries, protective stops and stop-limits ----------------------- */

static const tb_t LSTD[6] = {
    {"10", "10", "10", "10", NULL},     {"10", "10", "10", "10", NULL},
    {"11", "11", "11", "11", NULL},     {"11.5", "12", "10.5", "11.8", NULL},
    {"11", "11.2", "9.5", "10", NULL},  {"10", "10.5", "10", "10.5", NULL},
};

static void test_limit_and_stops(void **state) {
    (void)state;
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    add_bars(d, "AAA", LSTD, 6, NULL);
    OK(qb_bt_data_finalize(d, E, sizeof E));
    qb_bt_config_t c;
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("10");
    OK(qb_bt_config_set(&c, "entry_type", "limit", E, sizeof E));
    OK(qb_bt_config_set(&c, "limit_offset_bps", "100", E, sizeof E));
    OK(qb_bt_config_set(&c, "stop_exits", "true", E, sizeof E));
    qb_signal_t s = SIG("AAA", 2, QB_SIGNAL_LONG, "11", "1");
    /* LIMIT BUY at 11 x 0.99 = 10.89; bar 3 trades down to 10.5: fills at
     * min(open 11.5, 10.89) = 10.89; cash 1000 - 108.9 = 891.1.
     * Stop: 10.89 - 1 = 9.89, a GTC STOP SELL working from bar 4: bar 4's
     * low 9.5 <= 9.89 and it opens above: fills at 9.89; cash 990. */
    qb_bt_result_t *r = run_sigs(d, &c, &s, 1);
    size_t n;
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].type, QB_ORDER_TYPE_LIMIT);
    assert_dec(f[0].price, "10.89");
    assert_int_equal(f[0].ts, T0 + 3 * DAY);
    assert_int_equal(f[1].type, QB_ORDER_TYPE_STOP);
    assert_int_equal(f[1].tag & 3, QB_BT_ROLE_STOP);
    assert_dec(f[1].price, "9.89");
    assert_int_equal(f[1].ts, T0 + 4 * DAY);
    assert_dec(qb_bt_result_cash(r), "990");
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_dec(t[0].net_pnl, "-10");
    assert_int_equal(t[0].bars, 1);
    qb_bt_result_destroy(r);
    /* STOP_LIMIT 100 bps: limit 9.89 x 0.99 = 9.7911; triggered inside bar 4
     * (open 11 > 9.89 >= low 9.5) with the limit below the stop: fills at
     * the stop, 9.89 */
    OK(qb_bt_config_set(&c, "stop_limit_bps", "100", E, sizeof E));
    r = run_sigs(d, &c, &s, 1);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_int_equal(f[1].type, QB_ORDER_TYPE_STOP_LIMIT);
    assert_dec(f[1].price, "9.89");
    qb_bt_result_destroy(r);
    /* a limit that never trades: 30% below; the DAY order expires on bar 4 */
    OK(qb_bt_config_set(&c, "limit_offset_bps", "3000", E, sizeof E));
    OK(qb_bt_config_set(&c, "entry_tif", "day", E, sizeof E));
    r = run_sigs(d, &c, &s, 1);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 0);
    assert_int_equal(qb_bt_result_counts(r)->orders_expired, 1);
    qb_bt_result_destroy(r);
    /* a FLAT signal cancels the protective stop and exits at market */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("10");
    c.stop_exits = 1;
    qb_signal_t s2[2] = {SIG("AAA", 1, QB_SIGNAL_LONG, "10", "5"),
                         SIG("AAA", 3, QB_SIGNAL_FLAT, NULL, NULL)};
    r = run_sigs(d, &c, s2, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_dec(f[0].price, "11"); /* bar 2's open; stop 6 */
    assert_int_equal(f[1].type, QB_ORDER_TYPE_MARKET);
    assert_dec(f[1].price, "11"); /* bar 4's open */
    assert_int_equal(qb_bt_result_counts(r)->orders_canceled, 1);
    assert_int_equal(qb_bt_result_counts(r)->orders_working_at_end, 0);
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- shorts and margin ------------------------------------------------------------ */

static void test_shorts_and_margin(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    size_t n;
    base_cfg(&c);
    c.margin_short = D("0.5");
    qb_signal_t s[2] = {SIG("AAA", 2, QB_SIGNAL_SHORT, "11", NULL),
                        SIG("AAA", 4, QB_SIGNAL_FLAT, NULL, NULL)};
    /* all in short at bar 3's open 12.5 with margin 0.5: 0.5 x 12.5 q <= 1000
     * -> q = 160; cash 1000 + 2000 = 3000; bar 3 close 12: equity 3000 -
     * 1920 = 1080. Cover at bar 5's open 10: cash 1400 (+400). */
    qb_bt_result_t *r = run_sigs(d, &c, s, 2);
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].side, QB_SIDE_SELL);
    assert_dec(f[0].qty, "160");
    assert_dec(f[0].cash_after, "3000");
    assert_dec(f[0].position_after, "-160");
    const qb_bt_point_t *p = curve(r, 6);
    assert_dec(p[3].equity, "1080");
    assert_dec(p[3].short_value, "-1920");
    assert_dec(p[4].equity, "1240");
    assert_dec(p[5].equity, "1400");
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].dir, -1);
    assert_dec(t[0].net_pnl, "400");
    assert_near(t[0].return_pct, 0.2);
    assert_int_equal(qb_bt_result_metrics(r)->won, 1);
    assert_true(isinf(qb_bt_result_metrics(r)->profit_factor));
    assert_near(qb_bt_result_metrics(r)->avg_gross_exposure,
                (1920.0 / 1080 + 1760.0 / 1240) / 6);
    qb_bt_result_destroy(r);
    /* long_only: SHORT means FLAT: nothing happens */
    c.long_only = 1;
    r = run_sigs(d, &c, s, 2);
    assert_int_equal(qb_bt_result_counts(r)->fills, 0);
    assert_int_equal(qb_bt_result_counts(r)->orders, 0);
    qb_bt_result_destroy(r);
    /* flip long -> short: an exit and an entry in the same bar */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("10");
    qb_signal_t s2[2] = {SIG("AAA", 2, QB_SIGNAL_LONG, NULL, NULL),
                         SIG("AAA", 4, QB_SIGNAL_SHORT, NULL, NULL)};
    r = run_sigs(d, &c, s2, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 3);
    assert_int_equal(f[1].tag & 3, QB_BT_ROLE_EXIT);
    assert_int_equal(f[2].tag & 3, QB_BT_ROLE_ENTRY);
    assert_dec(f[2].position_after, "-10");
    const qb_bt_trade_t *t2 = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 2);
    assert_dec(t2[0].net_pnl, "-25"); /* 10 x (10 - 12.5) */
    assert_int_equal(t2[1].open, 1);
    assert_dec(t2[1].net_pnl, "-5"); /* short 10 at 10, marked 10.5 */
    qb_bt_result_destroy(r);
    /* margin long 0.5 (2:1): all in buys 160 at 12.5 (ceil(0.5 x 2000) =
     * 1000 <= equity 1000); cash -1000 */
    base_cfg(&c);
    c.margin_long = D("0.5");
    r = run_sigs(d, &c, s2, 1);
    f = qb_bt_result_fills(r, &n);
    assert_dec(f[0].qty, "160");
    assert_dec(f[0].cash_after, "-1000");
    qb_bt_result_destroy(r);
    /* a cash account refuses what it cannot pay: fixed qty 100 at ~11 */
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("100");
    r = run_sigs(d, &c, s2, 1);
    assert_int_equal(qb_bt_result_counts(r)->orders_rejected, 1);
    assert_int_equal(qb_bt_result_counts(r)->fills, 0);
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- partial fills ------------------------------------------------------------- */

static void test_partial_fills(void **state) {
    (void)state;
    tb_t v[6];
    memcpy(v, STD, sizeof v);
    for (int i = 0; i < 6; i++) v[i].v = "100";
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    add_bars(d, "AAA", v, 6, NULL);
    OK(qb_bt_data_finalize(d, E, sizeof E));
    qb_bt_config_t c;
    base_cfg(&c);
    c.sizing = QB_SIZING_FIXED_QTY;
    c.sizing_value = D("25");
    c.volume_cap = D("0.1"); /* 10 a bar */
    qb_signal_t s = SIG("AAA", 2, QB_SIGNAL_LONG, NULL, NULL);
    /* 10 at 12.5 (bar 3), 10 at 11.5 (bar 4), 5 at 10 (bar 5): 290 for 25,
     * avg 11.6; open at the end: 25 x 10.5 - 290 = -27.5 */
    qb_bt_result_t *r = run_sigs(d, &c, &s, 1);
    size_t n;
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 3);
    assert_dec(f[0].qty, "10");
    assert_dec(f[1].qty, "10");
    assert_dec(f[2].qty, "5");
    assert_int_equal(qb_bt_result_counts(r)->partial_fills, 2);
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_dec(t[0].qty, "25");
    assert_dec(t[0].entry_price, "11.6");
    assert_int_equal(t[0].fills, 3);
    assert_dec(t[0].net_pnl, "-27.5");
    qb_bt_result_destroy(r);
    /* FLAT on bar 4 after 20 filled: the rest of the entry is canceled, the
     * exit of 20 fills 10 at bar 5's open 10 and 10 stay working */
    qb_signal_t s2[2] = {s, SIG("AAA", 4, QB_SIGNAL_FLAT, NULL, NULL)};
    r = run_sigs(d, &c, s2, 2);
    f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 3);
    assert_int_equal(f[2].side, QB_SIDE_SELL);
    assert_dec(f[2].qty, "10");
    assert_dec(f[2].position_after, "10");
    const qb_bt_counts_t *k = qb_bt_result_counts(r);
    assert_int_equal(k->orders_canceled, 1);
    assert_int_equal(k->orders_working_at_end, 1);
    t = qb_bt_result_trades(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].open, 1);
    assert_dec(t[0].qty, "20");
    assert_dec(t[0].exit_price, "10.5"); /* marked at the last close */
    /* cash flow -125 - 115 + 100, plus 10 x 10.5 = -35 */
    assert_dec(t[0].net_pnl, "-35");
    assert_dec(qb_bt_result_position(r, 0), "10");
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

/* ---- many symbols: time order, symbol order inside a step -------------------- */

static void test_multi_symbol_order(void **state) {
    (void)state;
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    /* BBB first: id 0. AAA has no bar on day 1. */
    static const tb_t B[3] = {{"20", "20", "20", "20", NULL},
                              {"21", "21", "21", "21", NULL},
                              {"22", "22", "22", "22", NULL}};
    static const tb_t A[2] = {{"10", "10", "10", "10", NULL}, {"12", "12", "12", "12", NULL}};
    add_bars(d, "BBB", B, 3, NULL);
    int adays[2] = {0, 2};
    add_bars(d, "AAA", A, 2, adays);
    OK(qb_bt_data_finalize(d, E, sizeof E));
    size_t ns;
    const qb_time_t *steps = qb_bt_data_steps(d, &ns);
    assert_int_equal(ns, 3);
    assert_int_equal(steps[2], T0 + 2 * DAY);
    assert_string_equal(qb_bt_data_symbol_name(d, 0), "BBB");
    /* both all in at day 0's close: BBB (id 0) goes first and takes the cash
     * (50 x 20), AAA finds none: refused */
    qb_bt_config_t c;
    base_cfg(&c);
    c.fill = QB_FILL_CLOSE;
    qb_signal_t s[2] = {SIG("AAA", 0, QB_SIGNAL_LONG, NULL, NULL),
                        SIG("BBB", 0, QB_SIGNAL_LONG, NULL, NULL)};
    qb_bt_result_t *r = run_sigs(d, &c, s, 2);
    size_t n;
    const qb_bt_fill_t *f = qb_bt_result_fills(r, &n);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].sym, 0);
    assert_dec(f[0].qty, "50");
    assert_int_equal(qb_bt_result_counts(r)->orders_rejected, 1);
    /* signals are taken in (ts, symbol id) order: BBB's is signal 0 */
    assert_int_equal(f[0].tag, 0 * 4 + QB_BT_ROLE_ENTRY);
    const qb_bt_point_t *p = curve(r, 3);
    assert_dec(p[1].equity, "1050"); /* 50 x 21 */
    assert_dec(p[2].equity, "1100");
    /* benchmark: 500 each at the first close: 25 BBB at 20, 50 AAA at 10;
     * day 1 AAA has no bar and keeps its mark */
    assert_dec(p[0].benchmark, "1000");
    assert_dec(p[1].benchmark, "1025");
    assert_dec(p[2].benchmark, "1150"); /* 25 x 22 + 50 x 12 */
    qb_bt_result_destroy(r);
    /* a signal at a ts the symbol has no bar at is an error naming it */
    qb_signal_t bad = SIG("AAA", 1, QB_SIGNAL_LONG, NULL, NULL);
    ERR(QB_ERR_INVALID, qb_bt_run_signals(d, &c, &bad, 1, &r, E, sizeof E));
    assert_non_null(strstr(E, "AAA has no bar"));
    bad = SIG("ZZZ", 1, QB_SIGNAL_LONG, NULL, NULL);
    ERR(QB_ERR_INVALID, qb_bt_run_signals(d, &c, &bad, 1, &r, E, sizeof E));
    qb_bt_data_destroy(d);
}

/* ---- window and warm-up ----------------------------------------------------------- */

static void test_window_warmup(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    base_cfg(&c);
    c.long_only = 1;
    c.keep_signals = 1;
    OK(qb_bt_config_add_strategy(&c, "sma_cross", "{\"fast\":1,\"slow\":2}", "AAA", E, sizeof E));
    /* from bar 2: bars 0-1 warm the strategy up, so it still sees the cross
     * on bar 2; the curve starts at bar 2 from the initial cash */
    OK(qb_bt_config_set(&c, "from", "2024-01-04", E, sizeof E));
    qb_bt_result_t *r = NULL;
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    size_t n;
    qb_bt_result_signals(r, &n);
    assert_int_equal(n, 2);
    const qb_bt_point_t *p = curve(r, 4);
    assert_int_equal(p[0].ts, T0 + 2 * DAY);
    assert_dec(p[3].equity, "800");
    assert_int_equal(qb_bt_result_counts(r)->warmup_bars, 2);
    /* the benchmark starts at the window: 1000 / 11 = 90 sh at bar 2 */
    assert_dec(p[0].benchmark, "1000");
    assert_dec(p[1].benchmark, "1090"); /* 10 + 90 x 12 */
    qb_bt_result_destroy(r);
    /* no warm-up: the strategy starts cold at bar 2; its crossover memory
     * starts on bar 3, so it never sees the cross above, and the cross below
     * on bar 4 wants FLAT, which it already is: no signal at all */
    c.warmup_bars = 0;
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    qb_bt_result_signals(r, &n);
    assert_int_equal(n, 0);
    assert_int_equal(qb_bt_result_counts(r)->fills, 0);
    qb_bt_result_destroy(r);
    /* [from, to): to bar 4 -> bars 2, 3 */
    c.warmup_bars = -1;
    OK(qb_bt_config_set(&c, "to", "2024-01-06", E, sizeof E));
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    curve(r, 2);
    assert_int_equal(qb_bt_result_metrics(r)->trades_open, 1);
    qb_bt_result_destroy(r);
    /* a window after the last bar: no step, the initial cash */
    OK(qb_bt_config_set(&c, "from", "2030-01-01", E, sizeof E));
    OK(qb_bt_config_set(&c, "to", "", E, sizeof E));
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    curve(r, 0);
    assert_dec(qb_bt_result_metrics(r)->final_equity, "1000");
    assert_int_equal(qb_bt_result_counts(r)->warmup_bars, 6);
    qb_bt_result_destroy(r);
    /* strategy errors name the entry and the symbol */
    base_cfg(&c);
    OK(qb_bt_config_add_strategy(&c, "sma_cross", "{\"fast\":0}", "", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_run(d, &c, &r, E, sizeof E));
    assert_non_null(strstr(E, "AAA"));
    assert_non_null(strstr(E, "fast"));
    base_cfg(&c);
    OK(qb_bt_config_add_strategy(&c, "sma_cross", "", "AAA,QQQ", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_run(d, &c, &r, E, sizeof E));
    assert_non_null(strstr(E, "QQQ"));
    qb_bt_data_destroy(d);
}

/* ---- the live path: signals from libs/strategy run on its own ----------------- */

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define LP_SYM 4
#define LP_BARS 3000

static void test_live_path_equivalence(void **state) {
    (void)state;
    /* 4 random-walk symbols, 1m bars, each missing some minutes */
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1m", &d, E, sizeof E));
    static qb_bar_t bars[LP_SYM][LP_BARS];
    int nb[LP_SYM] = {0};
    uint64_t st = 7;
    for (int s = 0; s < LP_SYM; s++) {
        int64_t p = (20 + 10 * s) * QB_DEC_SCALE;
        for (int i = 0; i < LP_BARS; i++) {
            int64_t o = p;
            p += ((int64_t)(rnd(&st) % 41) - 20) * 1000000;
            if (p < QB_DEC_SCALE) p = QB_DEC_SCALE;
            if (rnd(&st) % 10 == 0) continue; /* a missing minute */
            qb_bar_t *b = &bars[s][nb[s]++];
            char name[16];
            snprintf(name, sizeof name, "S%d", s);
            qb_symbol_set(&b->symbol, name, NULL, 0);
            strcpy(b->timeframe, "1m");
            b->ts = T0 + (int64_t)i * 60000000000LL;
            b->open = o;
            b->close = p;
            b->high = (o > p ? o : p) + 2000000;
            b->low = (o < p ? o : p) - 2000000;
            b->volume = (int64_t)(rnd(&st) % 500) * QB_DEC_SCALE;
        }
        OK(qb_bt_data_append_bars(d, bars[s], (size_t)nb[s], E, sizeof E));
    }
    OK(qb_bt_data_finalize(d, E, sizeof E));
    const char *params = "{\"fast\":5,\"slow\":20,\"allow_short\":true,\"stop_atr\":2}";
    for (int variant = 0; variant < 3; variant++) {
        qb_bt_config_t c;
        qb_bt_config_default(&c);
        c.cash = D("100000");
        c.keep_signals = 1;
        c.commission = qb_commission_per_share(D("0.01"), D("1"));
        c.slippage_bps = D("3");
        c.margin_short = D("0.5");
        if (variant == 0) { /* next open, percent of equity, volume cap */
            c.sizing = QB_SIZING_PERCENT_EQUITY;
            c.sizing_value = D("0.2");
            c.volume_cap = D("0.05");
        } else if (variant == 1) { /* close, fixed fractional, stops */
            c.fill = QB_FILL_CLOSE;
            c.sizing = QB_SIZING_FIXED_FRACTIONAL;
            c.sizing_value = D("0.01");
            c.stop_exits = 1;
        } else { /* all in, limit entries, warm-up window */
            c.entry_type = QB_ORDER_TYPE_LIMIT;
            c.limit_offset_bps = D("5");
            c.from = T0 + 500LL * 60000000000LL;
        }
        OK(qb_bt_config_add_strategy(&c, "sma_cross", params, "", E, sizeof E));
        qb_bt_result_t *r1 = NULL;
        OK(qb_bt_run(d, &c, &r1, E, sizeof E));
        /* the signals libs/strategy makes on its own, one instance per
         * symbol, fed the symbol's bars in order (warm-up excluded) */
        qb_signal_t *mine = calloc(LP_SYM * LP_BARS, sizeof *mine);
        size_t nm = 0;
        for (int s = 0; s < LP_SYM; s++) {
            qb_strategy_t *x = NULL;
            OK(qb_strategy_new("sma_cross", params, &x, E, sizeof E));
            for (int i = 0; i < nb[s]; i++) {
                if (c.from && bars[s][i].ts < c.from) {
                    qb_strategy_warmup(x, &bars[s][i]);
                    continue;
                }
                if (qb_strategy_on_bar(x, &bars[s][i], &mine[nm]) == 1) nm++;
            }
            qb_strategy_destroy(x);
        }
        size_t n1;
        const qb_signal_t *taken = qb_bt_result_signals(r1, &n1);
        assert_int_equal(n1, nm);
        assert_true(nm > 20);
        /* the same decisions (the engine's in time order; reasons off) */
        for (size_t i = 0; i < n1; i++) {
            size_t j = 0;
            while (j < nm && !(mine[j].bar_ts == taken[i].bar_ts &&
                               qb_symbol_eq(&mine[j].symbol, &taken[i].symbol)))
                j++;
            assert_true(j < nm);
            assert_int_equal(mine[j].direction, taken[i].direction);
            assert_int_equal(mine[j].stop_distance, taken[i].stop_distance);
        }
        qb_bt_result_t *r2 = run_sigs(d, &c, mine, nm);
        size_t nf1, nf2, nt1, nt2, ne1, ne2;
        const qb_bt_fill_t *f1 = qb_bt_result_fills(r1, &nf1), *f2 = qb_bt_result_fills(r2, &nf2);
        const qb_bt_trade_t *t1 = qb_bt_result_trades(r1, &nt1),
                            *t2 = qb_bt_result_trades(r2, &nt2);
        const qb_bt_point_t *e1 = qb_bt_result_equity(r1, &ne1),
                            *e2 = qb_bt_result_equity(r2, &ne2);
        assert_int_equal(nf1, nf2);
        assert_int_equal(nt1, nt2);
        assert_int_equal(ne1, ne2);
        assert_true(nf1 > 10);
        assert_true(nt1 > 5);
        assert_memory_equal(f1, f2, nf1 * sizeof *f1);
        assert_memory_equal(t1, t2, nt1 * sizeof *t1);
        assert_memory_equal(e1, e2, ne1 * sizeof *e1);
        /* money is conserved: closed + open trades = equity change */
        qb_dec_t sum = 0;
        for (size_t i = 0; i < nt1; i++) sum += t1[i].net_pnl;
        assert_int_equal(sum, e1[ne1 - 1].equity - c.cash);
        if (variant == 0) assert_true(qb_bt_result_counts(r1)->partial_fills > 0);
        if (variant == 1) {
            size_t stops = 0;
            for (size_t i = 0; i < nf1; i++) stops += (f1[i].tag & 3) == QB_BT_ROLE_STOP;
            assert_true(stops > 0);
        }
        qb_bt_result_destroy(r1);
        qb_bt_result_destroy(r2);
        free(mine);
    }
    qb_bt_data_destroy(d);
}

/* ---- metrics accumulator on a hand-made curve --------------------------------- */

static void test_metrics_acc(void **state) {
    (void)state;
    qb_bt_acc_t a;
    qb_bt_acc_init(&a, D("100"), 4);
    /* 100 -> 110 -> 99 -> 108.9 -> 121: returns .1, -.1, .1, 12.1/108.9 */
    const char *eq[4] = {"110", "99", "108.9", "121"};
    for (int i = 0; i < 4; i++) qb_bt_acc_step(&a, T0 + i * DAY, D(eq[i]), D(i == 1 ? "0" : "50"), i != 1);
    qb_bt_acc_trade(&a, D("30"), 3, 0);
    qb_bt_acc_trade(&a, D("-10"), 1, 0);
    qb_bt_acc_trade(&a, D("0"), 1, 0);
    qb_bt_acc_trade(&a, D("5"), 1, 1);
    qb_bt_acc_notional(&a, D("-200"));
    qb_bt_metrics_t m;
    qb_bt_acc_finish(&a, &m);
    double r[4] = {0.1, -0.1, 0.1, 12.1 / 108.9}, mean = 0, var = 0;
    for (int i = 0; i < 4; i++) mean += r[i] / 4;
    for (int i = 0; i < 4; i++) var += (r[i] - mean) * (r[i] - mean) / 4;
    assert_near(m.mean_return, mean);
    assert_near(m.stdev_return, sqrt(var));
    assert_near(m.sharpe, mean / sqrt(var) * 2);
    assert_near(m.sortino, mean / sqrt(0.01 / 4) * 2);
    assert_near(m.years, 1);
    assert_near(m.total_return, 0.21);
    assert_near(m.cagr, 0.21);
    assert_near(m.max_dd_pct, 0.1);
    assert_dec(m.max_dd_money, "11");
    assert_int_equal(m.max_dd_peak_ts, T0);
    assert_int_equal(m.max_dd_trough_ts, T0 + DAY);
    assert_int_equal(m.max_dd_bars, 2);
    assert_near(m.calmar, 2.1);
    assert_near(m.exposure, 0.75);
    assert_near(m.avg_gross_exposure, (50 / 110.0 + 50 / 108.9 + 50 / 121.0) / 4);
    assert_near(m.turnover, 200 / ((110 + 99 + 108.9 + 121) / 4));
    assert_int_equal(m.trades_closed, 3);
    assert_int_equal(m.trades_open, 1);
    assert_int_equal(m.won, 1);
    assert_int_equal(m.lost, 2); /* break-even is not a win */
    assert_near(m.win_rate, 1.0 / 3);
    assert_near(m.profit_factor, 3);
    assert_near(m.avg_win, 30);
    assert_near(m.avg_loss, -5);
    assert_near(m.expectancy, 20.0 / 3);
    assert_near(m.avg_trade_bars, 5.0 / 3);
    assert_dec(m.open_pnl, "5");
    double v;
    OK(qb_bt_metric_value(&m, "max_dd_money", &v));
    assert_near(v, 11);
    OK(qb_bt_metric_value(&m, "trades_closed", &v));
    assert_near(v, 3);
    ERR(QB_ERR_NOT_FOUND, qb_bt_metric_value(&m, "nope", &v));
    assert_int_equal(qb_bt_metric_higher_is_better("sharpe"), 1);
    assert_int_equal(qb_bt_metric_higher_is_better("max_dd_pct"), 0);
    assert_int_equal(qb_bt_metric_higher_is_better("nope"), -1);
    for (const char *const *p = qb_bt_metric_names(); *p; p++) OK(qb_bt_metric_value(&m, *p, &v));
    char js[4096];
    size_t len = qb_bt_metrics_json(&m, js, sizeof js);
    assert_true(len < sizeof js);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    assert_near(cJSON_GetObjectItem(j, "sharpe")->valuedouble, m.sharpe);
    assert_near(cJSON_GetObjectItem(j, "max_dd_money")->valuedouble, 11);
    cJSON_Delete(j);
    /* an empty curve */
    qb_bt_acc_init(&a, D("100"), 252);
    qb_bt_acc_finish(&a, &m);
    assert_near(m.sharpe, 0);
    assert_near(m.cagr, 0);
    assert_dec(m.final_equity, "100");
    /* bars per year */
    double b;
    OK(qb_bt_bars_per_year("1d", 0, &b));
    assert_near(b, 252);
    OK(qb_bt_bars_per_year("1m", 0, &b));
    assert_near(b, 98280);
    OK(qb_bt_bars_per_year("1h", 0, &b));
    assert_near(b, 1764);
    OK(qb_bt_bars_per_year("1m", 1, &b));
    assert_near(b, 525600);
    OK(qb_bt_bars_per_year("1d", 1, &b));
    assert_near(b, 365);
    ERR(QB_ERR_PARSE, qb_bt_bars_per_year("2d", 0, &b));
}

/* ---- config, data errors, reports ------------------------------------------------ */

static void test_config_and_data_errors(void **state) {
    (void)state;
    qb_bt_config_t c;
    qb_bt_config_default(&c);
    ERR(QB_ERR_NOT_FOUND, qb_bt_config_set(&c, "nope", "1", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_config_set(&c, "cash", "abc", E, sizeof E));
    assert_non_null(strstr(E, "cash"));
    ERR(QB_ERR_INVALID, qb_bt_config_set(&c, "fill", "later", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_config_set(&c, "commission", "percent:0.0000001", E, sizeof E));
    OK(qb_bt_config_set(&c, "commission", "per_share:0.005:1", E, sizeof E));
    assert_int_equal(c.commission.kind, QB_COMMISSION_PER_SHARE);
    assert_dec(c.commission.minimum, "1");
    OK(qb_bt_config_set(&c, "sizing", "fixed_qty", E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_config_validate(&c, E, sizeof E)); /* no quantity */
    assert_non_null(strstr(E, "sizing_value"));
    qb_bt_config_default(&c);
    c.cash = 0;
    ERR(QB_ERR_INVALID, qb_bt_config_validate(&c, E, sizeof E));
    qb_bt_config_default(&c);
    for (int i = 0; i < QB_BT_MAX_STRATEGIES; i++)
        OK(qb_bt_config_add_strategy(&c, "sma_cross", "", "", E, sizeof E));
    ERR(QB_ERR_RANGE, qb_bt_config_add_strategy(&c, "sma_cross", "", "", E, sizeof E));
    char js[8192];
    assert_true(qb_bt_config_json(&c, js, sizeof js) < sizeof js);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "strategies")), QB_BT_MAX_STRATEGIES);
    cJSON_Delete(j);

    qb_bt_data_t *d = NULL;
    ERR(QB_ERR_INVALID, qb_bt_data_new("2d", &d, E, sizeof E));
    OK(qb_bt_data_new("1d", &d, E, sizeof E));
    uint32_t id;
    OK(qb_bt_data_symbol(d, "aaa", &id, E, sizeof E));
    assert_string_equal(qb_bt_data_symbol_name(d, id), "AAA");
    ERR(QB_ERR_INVALID, qb_bt_data_symbol(d, "a b", &id, E, sizeof E));
    qb_pf_bar_t b = {T0, D("10"), D("9"), D("11"), D("10"), 0}; /* high < low */
    ERR(QB_ERR_INVALID, qb_bt_data_append(d, 0, &b, 1, E, sizeof E));
    b.high = D("11");
    b.low = D("9");
    OK(qb_bt_data_append(d, 0, &b, 1, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_data_append(d, 0, &b, 1, E, sizeof E)); /* not after */
    assert_non_null(strstr(E, "not after"));
    qb_bt_result_t *r = NULL;
    qb_bt_config_default(&c);
    ERR(QB_ERR_STATE, qb_bt_run_signals(d, &c, NULL, 0, &r, E, sizeof E));
    OK(qb_bt_data_finalize(d, E, sizeof E));
    ERR(QB_ERR_STATE, qb_bt_data_append(d, 0, &b, 1, E, sizeof E));
    qb_pf_bar_t got;
    OK(qb_bt_data_bar(d, 0, 0, &got));
    assert_int_equal(got.close, b.close);
    ERR(QB_ERR_RANGE, qb_bt_data_bar(d, 0, 1, &got));
    qb_bt_data_destroy(d);
    qb_bt_data_destroy(NULL);
    qb_bt_result_destroy(NULL);
    OK(qb_bt_data_new(NULL, &d, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_data_finalize(d, E, sizeof E)); /* no bars */
    OK(qb_bt_data_symbol(d, "X", &id, E, sizeof E));
    OK(qb_bt_data_append(d, id, &b, 1, E, sizeof E));
    OK(qb_bt_data_finalize(d, E, sizeof E));
    ERR(QB_ERR_INVALID, qb_bt_run_signals(d, &c, NULL, 0, &r, E, sizeof E)); /* bars/year */
    c.bars_per_year = 12;
    OK(qb_bt_run_signals(d, &c, NULL, 0, &r, E, sizeof E));
    qb_bt_result_destroy(r);
    qb_bt_data_destroy(d);
}

static int cancel_at_3(uint64_t done, uint64_t total, void *ctx) {
    (void)total;
    *(int *)ctx += 1;
    return done >= 3;
}

static void test_reports_and_progress(void **state) {
    (void)state;
    qb_bt_data_t *d = std_data();
    qb_bt_config_t c;
    base_cfg(&c);
    OK(qb_bt_config_add_strategy(&c, "sma_cross", "{\"fast\":1,\"slow\":2}", "", E, sizeof E));
    qb_bt_result_t *r = NULL;
    OK(qb_bt_run(d, &c, &r, E, sizeof E));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    OK(qb_bt_report_json(r, QB_BT_JSON_EQUITY | QB_BT_JSON_TRADES | QB_BT_JSON_FILLS, f));
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    cJSON *m = cJSON_GetObjectItem(j, "metrics");
    assert_near(cJSON_GetObjectItem(m, "final_equity")->valuedouble, 800);
    assert_near(cJSON_GetObjectItem(m, "total_return")->valuedouble, -0.2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "equity")), 6);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "trades"), 0);
    assert_string_equal(cJSON_GetObjectItem(t, "symbol")->valuestring, "AAA");
    assert_near(cJSON_GetObjectItem(t, "net_pnl")->valuedouble, -200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "fills")), 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "fill")->valuestring, "NEXT_OPEN");
    cJSON_Delete(j);
    free(buf);
    f = open_memstream(&buf, &len);
    OK(qb_bt_report_html(r, "Test <run>", f));
    fclose(f);
    assert_true(strncmp(buf, "<!DOCTYPE html>", 15) == 0);
    assert_non_null(strstr(buf, "Test &lt;run&gt;"));
    assert_non_null(strstr(buf, "<svg"));
    assert_non_null(strstr(buf, "Max drawdown 20.0%"));
    assert_non_null(strstr(buf, "AAA"));
    assert_null(strstr(buf, "<script"));
    assert_null(strstr(buf, "src="));
    assert_null(strstr(buf, "href="));
    assert_non_null(strstr(buf, "</html>"));
    free(buf);
    qb_bt_result_destroy(r);
    /* progress and cancel */
    int calls = 0;
    c.progress = cancel_at_3;
    c.progress_ctx = &calls;
    c.progress_every = 1;
    ERR(QB_ERR_STATE, qb_bt_run(d, &c, &r, E, sizeof E));
    assert_int_equal(calls, 3);
    qb_bt_data_destroy(d);
}

/* ---- one data set, many runs at once ------------------------------------------- */

typedef struct {
    const qb_bt_data_t *d;
    const qb_bt_config_t *c;
    qb_bt_result_t *r;
    qb_err_t err;
} th_arg_t;

static void *th_run(void *p) {
    th_arg_t *a = p;
    char e[256];
    a->err = qb_bt_run(a->d, a->c, &a->r, e, sizeof e);
    return NULL;
}

static void test_shared_data_threads(void **state) {
    (void)state;
    qb_bt_data_t *d = NULL;
    OK(qb_bt_data_new("1m", &d, E, sizeof E));
    uint64_t st = 3;
    for (int s = 0; s < 3; s++) {
        char name[16];
        snprintf(name, sizeof name, "T%d", s);
        uint32_t id;
        OK(qb_bt_data_symbol(d, name, &id, E, sizeof E));
        int64_t p = 50 * QB_DEC_SCALE;
        for (int i = 0; i < 5000; i++) {
            int64_t o = p;
            p += ((int64_t)(rnd(&st) % 41) - 20) * 1000000;
            if (p < QB_DEC_SCALE) p = QB_DEC_SCALE;
            qb_pf_bar_t b = {T0 + (int64_t)i * 60000000000LL, o, (o > p ? o : p) + 1000000,
                             (o < p ? o : p) - 1000000, p, 100 * QB_DEC_SCALE};
            OK(qb_bt_data_append(d, id, &b, 1, E, sizeof E));
        }
    }
    OK(qb_bt_data_finalize(d, E, sizeof E));
    qb_bt_config_t c[4];
    th_arg_t a[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        qb_bt_config_default(&c[k]);
        c[k].sizing = QB_SIZING_PERCENT_EQUITY;
        c[k].sizing_value = D("0.3");
        char params[64];
        snprintf(params, sizeof params, "{\"fast\":%d,\"slow\":%d}", 3 + (k & 1), 20);
        OK(qb_bt_config_add_strategy(&c[k], "sma_cross", params, "", E, sizeof E));
        a[k] = (th_arg_t){d, &c[k], NULL, QB_OK};
        assert_int_equal(pthread_create(&th[k], NULL, th_run, &a[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(a[k].err, QB_OK);
    }
    /* runs 0 and 2 (same config) agree with each other and with a run alone */
    qb_bt_result_t *solo = NULL;
    OK(qb_bt_run(d, &c[0], &solo, E, sizeof E));
    size_t n0, n2, ns;
    const qb_bt_trade_t *t0 = qb_bt_result_trades(a[0].r, &n0), *t2 = qb_bt_result_trades(a[2].r, &n2),
                        *ts = qb_bt_result_trades(solo, &ns);
    assert_int_equal(n0, n2);
    assert_int_equal(n0, ns);
    assert_true(n0 > 10);
    assert_memory_equal(t0, t2, n0 * sizeof *t0);
    assert_memory_equal(t0, ts, n0 * sizeof *t0);
    qb_bt_result_destroy(solo);
    for (int k = 0; k < 4; k++) qb_bt_result_destroy(a[k].r);
    qb_bt_data_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strategy_market_next_open_all_in),
        cmocka_unit_test(test_close_commission_slippage),
        cmocka_unit_test(test_sizing_rules),
        cmocka_unit_test(test_limit_and_stops),
        cmocka_unit_test(test_shorts_and_margin),
        cmocka_unit_test(test_partial_fills),
        cmocka_unit_test(test_multi_symbol_order),
        cmocka_unit_test(test_window_warmup),
        cmocka_unit_test(test_live_path_equivalence),
        cmocka_unit_test(test_metrics_acc),
        cmocka_unit_test(test_config_and_data_errors),
        cmocka_unit_test(test_reports_and_progress),
        cmocka_unit_test(test_shared_data_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
