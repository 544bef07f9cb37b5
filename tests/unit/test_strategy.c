/* test_strategy.c — libs/strategy: every built-in's rules on hand-made bars
 * (each rule fires on the exact bar worked out by hand in the comments,
 * long-only and long-short, nothing in between), parameter validation,
 * the registry, warm-up counts, stops and weights, stale bars, save/restore
 * against an uninterrupted run, determinism, and signal ids.
 *
 * Indicator values in the comments were worked out by hand from the TA-Lib
 * definitions (SMA, Wilder RSI, SMA-seeded EMA, population-stddev BBANDS)
 * and agree with libs/ta. Random-walk tests additionally check the
 * crossover kinds against crossovers computed here, independently, from
 * libs/ta's batch arrays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_uuid.h"
#include "qb_test.h"
#include "strategy/qb_strategy.h"
#include "strategy/qb_strategy_kind.h"
#include "ta/qb_ta.h"

#define DAY 86400000000000LL
#define T0 1704067200000000000LL /* 2024-01-01T00:00:00Z */
#define MAXSIG 4096

/* ---- helpers ------------------------------------------------------------ */

static qb_dec_t dec(double d) {
    qb_dec_t v;
    assert_int_equal(qb_dec_from_double(d, &v, QB_ROUND_HALF_EVEN), QB_OK);
    return v;
}

/* Bar i of a daily series: close c, high c + hl, low c - hl. */
static qb_bar_t mkbar(int i, double c, double hl) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(qb_symbol_set(&b.symbol, "TEST", NULL, 0), QB_OK);
    strcpy(b.timeframe, "1d");
    b.ts = T0 + (int64_t)i * DAY;
    b.close = dec(c);
    b.open = b.close;
    b.high = dec(c + hl);
    b.low = dec(c - hl);
    b.volume = dec(1000);
    return b;
}

static qb_strategy_t *mk(const char *kind, const char *params) {
    qb_strategy_t *s = NULL;
    char e[256] = "";
    qb_err_t err = qb_strategy_new(kind, params, &s, e, sizeof e);
    if (err) fail_msg("qb_strategy_new(%s, %s): %s", kind, params ? params : "NULL", e);
    return s;
}

typedef struct got_s {
    int bar;
    qb_signal_t sig;
} got_t;

/* Feed closes[first..n-1] (bar index = position in the array); record
 * every signal. Returns the count. */
static int run_from(qb_strategy_t *s, const double *c, int first, int n, double hl, got_t *out) {
    int k = 0;
    for (int i = first; i < n; i++) {
        qb_bar_t b = mkbar(i, c[i], hl);
        qb_signal_t sig;
        memset(&sig, 0, sizeof sig);
        int r = qb_strategy_on_bar(s, &b, &sig);
        assert_true(r == 0 || r == 1);
        if (r == 1) {
            assert_true(k < MAXSIG);
            out[k].bar = i;
            out[k].sig = sig;
            k++;
        }
    }
    return k;
}

typedef struct want_s {
    int bar;
    qb_signal_dir_t dir;
} want_t;

static void print_got(const got_t *g, int n) {
    for (int i = 0; i < n; i++)
        print_message("  bar %d %s conf %.3f: %s\n", g[i].bar, qb_signal_dir_name(g[i].sig.direction),
                      g[i].sig.confidence, g[i].sig.reason);
}

/* Run a fresh instance over closes and check the signals are exactly `w`
 * (bar and direction), with the signal fields that follow from the bar. */
static void expect_signals(const char *kind, const char *params, const double *c, int n,
                           double hl, const want_t *w, int nw, got_t *g) {
    qb_strategy_t *s = mk(kind, params);
    int k = run_from(s, c, 0, n, hl, g);
    if (k != nw) {
        print_got(g, k);
        fail_msg("%s %s: %d signals, want %d", kind, params, k, nw);
    }
    for (int i = 0; i < k; i++) {
        if (g[i].bar != w[i].bar || g[i].sig.direction != w[i].dir) {
            print_got(g, k);
            fail_msg("%s %s: signal %d is bar %d %s, want bar %d %s", kind, params, i, g[i].bar,
                     qb_signal_dir_name(g[i].sig.direction), w[i].bar,
                     qb_signal_dir_name(w[i].dir));
        }
        qb_bar_t b = mkbar(g[i].bar, c[g[i].bar], hl);
        assert_int_equal(g[i].sig.bar_ts, b.ts);
        assert_int_equal(g[i].sig.reference_price, b.close);
        assert_string_equal(g[i].sig.symbol.s, "TEST");
        assert_string_equal(g[i].sig.timeframe, "1d");
        assert_true(strlen(g[i].sig.reason) > 0);
        assert_true(g[i].sig.confidence > 0 && g[i].sig.confidence <= 1);
    }
    qb_strategy_destroy(s);
}

#define NW(w) ((int)(sizeof(w) / sizeof((w)[0])))
#define NC(c) ((int)(sizeof(c) / sizeof((c)[0])))

/* A deterministic random walk on a cent grid, around 100. */
static void random_walk(double *c, int n, uint64_t seed) {
    uint64_t st = seed;
    double p = 100;
    for (int i = 0; i < n; i++) {
        int step = (int)(qb_test_rand(&st) % 201) - 100; /* -1.00 .. +1.00 */
        p += step / 100.0;
        if (p < 5) p = 5;
        c[i] = round(p * 100) / 100;
    }
}

/* ---- registry and parameters -------------------------------------------- */

static void test_registry(void **state) {
    static const char *names[] = {"sma_cross",           "ema_cross",         "rsi_reversion",
                                  "macd_momentum",       "bollinger_reversion",
                                  "bollinger_breakout",  "donchian_breakout", "basic_signals"};
    assert_int_equal(qb_strategy_kind_count(), 8);
    for (int i = 0; i < 8; i++) {
        const qb_strategy_kind_t *k = qb_strategy_kind_at(i);
        assert_non_null(k);
        assert_string_equal(qb_strategy_kind_name(k), names[i]);
        assert_ptr_equal(qb_strategy_kind_find(names[i]), k);
        assert_true(strlen(qb_strategy_kind_summary(k)) > 10);
        /* every kind is complete, and no kind parameter shadows a common one */
        assert_non_null(k->init);
        assert_non_null(k->on_bar);
        assert_non_null(k->explain);
        for (int p = 0; p < k->nparams; p++) {
            assert_true(k->params[p].def >= k->params[p].min &&
                        k->params[p].def <= k->params[p].max);
            static const char *common[] = {"allow_short", "stop_atr", "atr_period",
                                           "target_weight"};
            for (int j = 0; j < 4; j++) assert_string_not_equal(k->params[p].name, common[j]);
        }
    }
    assert_null(qb_strategy_kind_at(8));
    assert_null(qb_strategy_kind_at(-1));
    assert_null(qb_strategy_kind_find("SMA_CROSS"));

    qb_strategy_t *s = (qb_strategy_t *)0x1;
    char e[300];
    assert_int_equal(qb_strategy_new("golden_goose", "{}", &s, e, sizeof e), QB_ERR_NOT_FOUND);
    assert_ptr_equal(s, (qb_strategy_t *)0x1);
    assert_string_equal(e, "unknown strategy kind \"golden_goose\" (known: sma_cross, ema_cross, "
                           "rsi_reversion, macd_momentum, bollinger_reversion, "
                           "bollinger_breakout, donchian_breakout, basic_signals)");
    assert_int_equal(qb_strategy_new(NULL, "{}", &s, e, sizeof e), QB_ERR_NOT_FOUND);
    qb_strategy_destroy(NULL);
}

static void test_params_defaults_and_warmup(void **state) {
    static const struct {
        const char *kind, *params;
        int warmup;
        const char *values;
    } v[] = {
        {"sma_cross", "{\"fast\":10,\"slow\":30,\"allow_short\":false,\"stop_atr\":0,"
                      "\"atr_period\":14,\"target_weight\":0}",
         30, "sma:10,sma:30"},
        {"ema_cross", "{\"fast\":12,\"slow\":26,\"allow_short\":false,\"stop_atr\":0,"
                      "\"atr_period\":14,\"target_weight\":0}",
         26, "ema:12,ema:26"},
        {"rsi_reversion", "{\"period\":14,\"oversold\":30,\"overbought\":70,\"allow_short\":false,"
                          "\"stop_atr\":0,\"atr_period\":14,\"target_weight\":0}",
         14, "rsi:14"},
        {"macd_momentum", "{\"fast\":12,\"slow\":26,\"signal\":9,\"allow_short\":false,"
                          "\"stop_atr\":0,\"atr_period\":14,\"target_weight\":0}",
         34, "macd:12:26:9.macd,macd:12:26:9.signal,macd:12:26:9.hist"},
        {"bollinger_reversion", "{\"period\":20,\"nbdev\":2,\"allow_short\":false,\"stop_atr\":0,"
                                "\"atr_period\":14,\"target_weight\":0}",
         19, "bbands:20:2:2.upper,bbands:20:2:2.middle,bbands:20:2:2.lower"},
        {"bollinger_breakout", "{\"period\":20,\"nbdev\":2,\"allow_short\":false,\"stop_atr\":0,"
                               "\"atr_period\":14,\"target_weight\":0}",
         19, "bbands:20:2:2.upper,bbands:20:2:2.middle,bbands:20:2:2.lower"},
        {"donchian_breakout", "{\"entry\":20,\"exit\":10,\"allow_short\":false,\"stop_atr\":0,"
                              "\"atr_period\":14,\"target_weight\":0}",
         20, "donchian:20.upper,donchian:20.middle,donchian:20.lower,donchian:10.upper,"
             "donchian:10.middle,donchian:10.lower"},
        {"basic_signals", "{\"rsi\":14,\"oversold\":30,\"overbought\":70,\"fast\":10,\"slow\":30,"
                          "\"macd_fast\":12,\"macd_slow\":26,\"macd_signal\":9,\"min_votes\":2,"
                          "\"allow_short\":false,\"stop_atr\":0,\"atr_period\":14,"
                          "\"target_weight\":0}",
         33, "rsi:14,sma:10,sma:30,macd:12:26:9.macd,macd:12:26:9.signal,macd:12:26:9.hist"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        for (int form = 0; form < 3; form++) {
            qb_strategy_t *s = mk(v[i].kind, form == 0 ? NULL : form == 1 ? "" : " { } ");
            assert_string_equal(qb_strategy_kind_name(qb_strategy_kind(s)), v[i].kind);
            assert_string_equal(qb_strategy_params(s), v[i].params);
            assert_int_equal(qb_strategy_warmup_bars(s), v[i].warmup);
            char names[400] = "";
            for (int j = 0; j < qb_strategy_num_values(s); j++) {
                if (j) strcat(names, ",");
                strcat(names, qb_strategy_value_name(s, j));
                assert_true(isnan(qb_strategy_value(s, j)));
            }
            assert_string_equal(names, v[i].values);
            assert_null(qb_strategy_value_name(s, qb_strategy_num_values(s)));
            assert_true(isnan(qb_strategy_value(s, -1)));
            assert_int_equal(qb_strategy_position(s), 0);
            /* the canonical text gives back an equal instance */
            qb_strategy_t *t = mk(v[i].kind, qb_strategy_params(s));
            assert_string_equal(qb_strategy_params(t), v[i].params);
            qb_strategy_destroy(t);
            qb_strategy_destroy(s);
        }
    }
    /* non-default values, fast = 1, doubles printed so they read back */
    qb_strategy_t *s = mk("sma_cross", "{\"slow\":5,\"fast\":1,\"allow_short\":true,"
                                       "\"stop_atr\":2.5,\"target_weight\":0.1}");
    assert_string_equal(qb_strategy_params(s),
                        "{\"fast\":1,\"slow\":5,\"allow_short\":true,\"stop_atr\":2.5,"
                        "\"atr_period\":14,\"target_weight\":0.1}");
    /* fast = 1 is the close: no indicator; ATR(14) joins the warm-up */
    assert_int_equal(qb_strategy_num_values(s), 2);
    assert_string_equal(qb_strategy_value_name(s, 0), "sma:5");
    assert_string_equal(qb_strategy_value_name(s, 1), "atr:14");
    assert_int_equal(qb_strategy_warmup_bars(s), 15);
    qb_strategy_destroy(s);
    s = mk("donchian_breakout", "{\"entry\":5,\"exit\":5}"); /* one shared indicator */
    assert_int_equal(qb_strategy_num_values(s), 3);
    assert_int_equal(qb_strategy_warmup_bars(s), 5);
    qb_strategy_destroy(s);
    s = mk("rsi_reversion", "{\"period\":3,\"stop_atr\":1,\"atr_period\":7}");
    assert_int_equal(qb_strategy_warmup_bars(s), 7);
    qb_strategy_destroy(s);
}

static void test_params_errors(void **state) {
    static const struct {
        const char *kind, *params;
        qb_err_t err;
        const char *msg;
    } v[] = {
        {"sma_cross", "{\"fast\":0}", QB_ERR_INVALID,
         "sma_cross.fast: must be an integer >= 1, got 0"},
        {"sma_cross", "{\"fast\":10,\"slow\":5}", QB_ERR_INVALID,
         "sma_cross: slow (5) must be > fast (10)"},
        {"sma_cross", "{\"fast\":10,\"slow\":10}", QB_ERR_INVALID,
         "sma_cross: slow (10) must be > fast (10)"},
        {"sma_cross", "{\"fsat\":3}", QB_ERR_INVALID,
         "sma_cross: unknown parameter \"fsat\" (known: fast, slow, allow_short, stop_atr, "
         "atr_period, target_weight)"},
        {"sma_cross", "{\"fast\":\"10\"}", QB_ERR_INVALID,
         "sma_cross.fast: must be an integer >= 1, got \"10\""},
        {"sma_cross", "{\"fast\":2.5}", QB_ERR_INVALID,
         "sma_cross.fast: must be an integer >= 1, got 2.5"},
        {"sma_cross", "{\"slow\":1000000}", QB_ERR_INVALID,
         "sma_cross.slow: must be an integer <= 100000, got 1000000"},
        {"sma_cross", "{\"fast\":null}", QB_ERR_INVALID,
         "sma_cross.fast: must be an integer >= 1, got null"},
        {"sma_cross", "{\"fast\":5,\"fast\":6}", QB_ERR_INVALID,
         "sma_cross: duplicate parameter \"fast\""},
        {"sma_cross", "{\"allow_short\":1}", QB_ERR_INVALID,
         "sma_cross.allow_short: must be true or false, got 1"},
        {"sma_cross", "{\"target_weight\":1.5}", QB_ERR_INVALID,
         "sma_cross.target_weight: must be a number <= 1, got 1.5"},
        {"sma_cross", "{\"stop_atr\":-1}", QB_ERR_INVALID,
         "sma_cross.stop_atr: must be a number >= 0, got -1"},
        {"sma_cross", "{\"atr_period\":0,\"stop_atr\":1}", QB_ERR_INVALID,
         "sma_cross.atr_period: must be an integer >= 1, got 0"},
        {"sma_cross", "[10,30]", QB_ERR_PARSE,
         "sma_cross: params must be a JSON object, got [10,30]"},
        {"sma_cross", "{\"fast\":10", QB_ERR_PARSE,
         "sma_cross: params must be a JSON object, got invalid JSON"},
        {"sma_cross", "{} x", QB_ERR_PARSE,
         "sma_cross: params must be a JSON object, got invalid JSON"},
        {"ema_cross", "{\"slow\":1}", QB_ERR_INVALID,
         "ema_cross.slow: must be an integer >= 2, got 1"},
        {"rsi_reversion", "{\"oversold\":70,\"overbought\":30}", QB_ERR_INVALID,
         "rsi_reversion: overbought (30) must be > oversold (70)"},
        {"rsi_reversion", "{\"overbought\":120}", QB_ERR_INVALID,
         "rsi_reversion.overbought: must be a number <= 100, got 120"},
        {"rsi_reversion", "{\"period\":1}", QB_ERR_INVALID,
         "rsi_reversion.period: must be an integer >= 2, got 1"},
        {"macd_momentum", "{\"fast\":26,\"slow\":12}", QB_ERR_INVALID,
         "macd_momentum: slow (12) must be > fast (26)"},
        {"macd_momentum", "{\"signal\":0}", QB_ERR_INVALID,
         "macd_momentum.signal: must be an integer >= 1, got 0"},
        {"bollinger_reversion", "{\"nbdev\":0}", QB_ERR_INVALID,
         "bollinger_reversion.nbdev: must be a number >= 1e-06, got 0"},
        {"bollinger_breakout", "{\"period\":1}", QB_ERR_INVALID,
         "bollinger_breakout.period: must be an integer >= 2, got 1"},
        {"donchian_breakout", "{\"exit\":1}", QB_ERR_INVALID,
         "donchian_breakout.exit: must be an integer >= 2, got 1"},
        {"basic_signals", "{\"min_votes\":4}", QB_ERR_INVALID,
         "basic_signals.min_votes: must be an integer <= 3, got 4"},
        {"basic_signals", "{\"macd_fast\":30}", QB_ERR_INVALID,
         "basic_signals: macd_slow (26) must be > macd_fast (30)"},
        {"basic_signals", "{\"fast\":30}", QB_ERR_INVALID,
         "basic_signals: slow (30) must be > fast (30)"},
        {"basic_signals", "{\"oversold\":80}", QB_ERR_INVALID,
         "basic_signals: overbought (70) must be > oversold (80)"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qb_strategy_t *s = NULL;
        char e[300] = "";
        qb_err_t err = qb_strategy_new(v[i].kind, v[i].params, &s, e, sizeof e);
        if (err != v[i].err || strcmp(e, v[i].msg) != 0)
            fail_msg("%s %s: got %s \"%s\", want %s \"%s\"", v[i].kind, v[i].params,
                     qb_err_name(err), e, qb_err_name(v[i].err), v[i].msg);
        assert_null(s);
    }
}

/* ---- the crossover definition ------------------------------------------- */

static void test_cross_helper(void **state) {
    int last = 0;
    assert_int_equal(qb_strategy_cross(&last, 1), 0); /* first nonzero: no cross */
    assert_int_equal(last, 1);
    assert_int_equal(qb_strategy_cross(&last, 0), 0); /* equal: memory kept */
    assert_int_equal(last, 1);
    assert_int_equal(qb_strategy_cross(&last, NAN), 0);
    assert_int_equal(last, 1);
    assert_int_equal(qb_strategy_cross(&last, 2), 0); /* same side */
    assert_int_equal(qb_strategy_cross(&last, -0.5), -1);
    assert_int_equal(qb_strategy_cross(&last, 0), 0);
    assert_int_equal(qb_strategy_cross(&last, 0), 0);
    assert_int_equal(qb_strategy_cross(&last, 3), 1); /* below, equal, equal, above */
    assert_int_equal(qb_strategy_cross(&last, 0), 0);
    assert_int_equal(qb_strategy_cross(&last, 1), 0); /* above, equal, above: none */
}

/* ---- built-ins on hand-made bars ---------------------------------------- */

/* sma_cross fast 2, slow 3: SMA2 - SMA3 = (c[i-1] + c[i] - 2 c[i-2]) / 6, so
 * its sign is that of s = c[i-1] + c[i] - 2 c[i-2] (first valid at bar 2):
 *   bar  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
 *   c   10 10 10  9  9 10 11 11 10  9 11 12 12 11 13  8
 *   s          0 -1 -2 +1 +3 +2 -1 -3  0 +5 +2 -1  0 -1
 * bar 2: equal, no memory. 3: below, nothing before. 5: above after below:
 * CROSS ABOVE. 8: CROSS BELOW. 10: equal (memory stays below). 11: above,
 * last differing was below (bar 9): CROSS ABOVE. 13: CROSS BELOW. 14: equal.
 * 15: below again after an equal bar: no cross. */
static const double sma_c[] = {10, 10, 10, 9, 9, 10, 11, 11, 10, 9, 11, 12, 12, 11, 13, 8};

static void test_sma_cross(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const want_t lo[] = {{5, QB_SIGNAL_LONG}, {8, QB_SIGNAL_FLAT}, {11, QB_SIGNAL_LONG},
                         {13, QB_SIGNAL_FLAT}};
    expect_signals("sma_cross", "{\"fast\":2,\"slow\":3}", sma_c, NC(sma_c), 0.5, lo, NW(lo), g);
    assert_string_equal(g[0].sig.reason, "sma:2 crossed above sma:3 (9.5 > 9.3333333)");
    assert_string_equal(g[1].sig.reason, "sma:2 crossed below sma:3 (10.5 < 10.666667)");
    assert_true(g[0].sig.confidence == 1.0);
    assert_int_equal(g[0].sig.has_target_weight, 0);
    assert_int_equal(g[0].sig.stop_distance, 0);
    const want_t ls[] = {{5, QB_SIGNAL_LONG}, {8, QB_SIGNAL_SHORT}, {11, QB_SIGNAL_LONG},
                         {13, QB_SIGNAL_SHORT}};
    expect_signals("sma_cross", "{\"fast\":2,\"slow\":3,\"allow_short\":true}", sma_c,
                   NC(sma_c), 0.5, ls, NW(ls), g);
    /* the first possible cross is on bar warmup_bars = 3: s = -1 at 2, +1 at 3 */
    const double first[] = {10, 10, 9, 12};
    const want_t w1[] = {{3, QB_SIGNAL_LONG}};
    expect_signals("sma_cross", "{\"fast\":2,\"slow\":3}", first, NC(first), 0.5, w1, NW(w1), g);
    /* above from the first valid bar on: never a cross */
    const double up[] = {10, 10, 11, 12, 13, 14, 15};
    expect_signals("sma_cross", "{\"fast\":2,\"slow\":3}", up, NC(up), 0.5, NULL, 0, g);

    /* fast = 1: the close against SMA(3); d = c[i] - SMA3 = (2c[i] - c[i-1] - c[i-2]) / 3
     *   bar  0  1  2  3  4  5  6
     *   c   10 10 10  9 12 10 12     2c - c1 - c2:  0 -2 +5 -1 +2
     * bar 4: CROSS ABOVE; 5: CROSS BELOW; 6: CROSS ABOVE. */
    const double c1[] = {10, 10, 10, 9, 12, 10, 12};
    const want_t wc[] = {{4, QB_SIGNAL_LONG}, {5, QB_SIGNAL_FLAT}, {6, QB_SIGNAL_LONG}};
    expect_signals("sma_cross", "{\"fast\":1,\"slow\":3}", c1, NC(c1), 0.5, wc, NW(wc), g);
    assert_string_equal(g[0].sig.reason, "close crossed above sma:3 (12 > 10.333333)");
    free(g);
}

/* ema_cross fast 1 (the close), slow 3: EMA3 seeds with the mean of bars
 * 0..2, then e = e + (c - e) / 2:
 *   bar   0  1  2  3     4     5      6      7      8
 *   c    10 10 10  8    12    11     10 10.375     11
 *   ema         10  9  10.5 10.75 10.375 10.375 10.6875
 *   c-e          0 -1  +1.5 +0.25 -0.375     0 +0.3125
 * bar 4 CROSS ABOVE, 6 CROSS BELOW, 7 equal, 8 CROSS ABOVE. */
static void test_ema_cross(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 8, 12, 11, 10, 10.375, 11};
    const want_t lo[] = {{4, QB_SIGNAL_LONG}, {6, QB_SIGNAL_FLAT}, {8, QB_SIGNAL_LONG}};
    expect_signals("ema_cross", "{\"fast\":1,\"slow\":3}", c, NC(c), 0.5, lo, NW(lo), g);
    assert_string_equal(g[0].sig.reason, "close crossed above ema:3 (12 > 10.5)");
    const want_t ls[] = {{4, QB_SIGNAL_LONG}, {6, QB_SIGNAL_SHORT}, {8, QB_SIGNAL_LONG}};
    expect_signals("ema_cross", "{\"fast\":1,\"slow\":3,\"allow_short\":true}", c, NC(c), 0.5,
                   ls, NW(ls), g);
    free(g);
}

/* rsi_reversion period 2 (Wilder): the first value (bar 2) averages the two
 * changes, then avg = (avg + change) / 2:
 *   bar   0  1   2   3      4   5      6      7   8
 *   c    10 11  12  11      9   8     10     12  13
 *   rsi        100  50 16.667  10 65.385 84.483  90
 * long-only: bar 2 (> 70) is not an exit (flat already); 4 (< 30) LONG; 5
 * still < 30: nothing; 7 (> 70) FLAT; 8 nothing. long-short: 2 SHORT (the
 * first bar with an RSI: warmup_bars = 2), 4 LONG, 7 SHORT. */
static void test_rsi_reversion(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 11, 12, 11, 9, 8, 10, 12, 13};
    const want_t lo[] = {{4, QB_SIGNAL_LONG}, {7, QB_SIGNAL_FLAT}};
    expect_signals("rsi_reversion", "{\"period\":2}", c, NC(c), 0.5, lo, NW(lo), g);
    assert_string_equal(g[0].sig.reason, "rsi:2 16.67 < 30 (oversold)");
    assert_string_equal(g[1].sig.reason, "rsi:2 84.48 > 70 (overbought)");
    const want_t ls[] = {{2, QB_SIGNAL_SHORT}, {4, QB_SIGNAL_LONG}, {7, QB_SIGNAL_SHORT}};
    expect_signals("rsi_reversion", "{\"period\":2,\"allow_short\":true}", c, NC(c), 0.5, ls,
                   NW(ls), g);
    /* the levels are strict: 16.667 is not < 16.6; 84.48 is not > 85 */
    const want_t none[] = {{5, QB_SIGNAL_LONG}};
    expect_signals("rsi_reversion", "{\"period\":2,\"oversold\":10.5,\"overbought\":90}", c,
                   NC(c), 0.5, none, NW(none), g);
    free(g);
}

/* macd_momentum 2/3/2 (values from the TA-Lib definitions; d = macd - signal):
 *   bar  3  4       5       6      7      8       9 10      11
 *   c   10  9       9      20     22     24       5  5       6
 *   d    0 -0.0556 -0.0093 +0.625 +0.230 -0.0097 -1.25 -0.38 +0.165
 * bar 6 CROSS ABOVE, 8 CROSS BELOW, 11 CROSS ABOVE. */
static void test_macd_momentum(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 10, 9, 9, 20, 22, 24, 5, 5, 6};
    const want_t lo[] = {{6, QB_SIGNAL_LONG}, {8, QB_SIGNAL_FLAT}, {11, QB_SIGNAL_LONG}};
    const char *p = "{\"fast\":2,\"slow\":3,\"signal\":2}";
    expect_signals("macd_momentum", p, c, NC(c), 0.5, lo, NW(lo), g);
    assert_string_equal(g[0].sig.reason,
                        "macd:2:3:2 crossed above its signal line (1.74537 > 1.12037)");
    const want_t ls[] = {{6, QB_SIGNAL_LONG}, {8, QB_SIGNAL_SHORT}, {11, QB_SIGNAL_LONG}};
    expect_signals("macd_momentum", "{\"fast\":2,\"slow\":3,\"signal\":2,\"allow_short\":true}", c,
                   NC(c), 0.5, ls, NW(ls), g);
    qb_strategy_t *s = mk("macd_momentum", p);
    assert_int_equal(qb_strategy_warmup_bars(s), 4);
    qb_strategy_destroy(s);
    free(g);
}

/* bollinger_reversion 3 / 1 (mean m, population sd of the last 3 closes):
 *   bar  2   3      4     5     6      7      8
 *   c   10   7    8.5   8.5    12   11.5   11.5
 *   low 10 7.586 7.275 7.293 8.017  9.121 11.431
 *   mid 10   9    8.5    8   9.667 10.667 11.667
 *   up  10 10.414 9.725 8.707 11.317 12.212 11.902
 * 3: close < lower: LONG. 4: close == middle (>=): FLAT. 6: close > upper:
 * SHORT (allow_short; long-only: nothing). 7: above middle: keep. 8: close
 * <= middle (and not < lower, which would be LONG): FLAT. */
static void test_bollinger_reversion(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 7, 8.5, 8.5, 12, 11.5, 11.5};
    const want_t lo[] = {{3, QB_SIGNAL_LONG}, {4, QB_SIGNAL_FLAT}};
    expect_signals("bollinger_reversion", "{\"period\":3,\"nbdev\":1}", c, NC(c), 0.5, lo,
                   NW(lo), g);
    assert_string_equal(g[0].sig.reason,
                        "close 7 below the lower band 7.5857864 of bbands:3:1:1");
    assert_string_equal(g[1].sig.reason,
                        "close 8.5 back at or above the middle band 8.5 of bbands:3:1:1");
    const want_t ls[] = {{3, QB_SIGNAL_LONG}, {4, QB_SIGNAL_FLAT}, {6, QB_SIGNAL_SHORT},
                         {8, QB_SIGNAL_FLAT}};
    expect_signals("bollinger_reversion", "{\"period\":3,\"nbdev\":1,\"allow_short\":true}", c,
                   NC(c), 0.5, ls, NW(ls), g);
    free(g);
}

/* bollinger_breakout 3 / 1:
 *   bar  2   3      4      5      6      7     8     9
 *   c   10  13   11.5     11     11      8   8.5   8.5
 *   low 10 9.586 10.275 10.983 10.931  8.586 7.854 8.098
 *   mid 10  11   11.5   11.833 11.167   10   9.167 8.333
 *   up  10 12.414 12.725 12.683 11.402 11.414 10.479 8.569
 * 3: close > upper: LONG. 4: close == middle (exit needs <): keep. 5: <
 * middle: FLAT. 7: < lower: SHORT (allow_short). 8: keep. 9: > middle (and
 * not > upper, which would be LONG): FLAT. */
static void test_bollinger_breakout(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 13, 11.5, 11, 11, 8, 8.5, 8.5};
    const want_t lo[] = {{3, QB_SIGNAL_LONG}, {5, QB_SIGNAL_FLAT}};
    expect_signals("bollinger_breakout", "{\"period\":3,\"nbdev\":1}", c, NC(c), 0.5, lo, NW(lo),
                   g);
    assert_string_equal(g[0].sig.reason,
                        "close 13 broke above the upper band 12.414214 of bbands:3:1:1");
    const want_t ls[] = {{3, QB_SIGNAL_LONG}, {5, QB_SIGNAL_FLAT}, {7, QB_SIGNAL_SHORT},
                         {9, QB_SIGNAL_FLAT}};
    expect_signals("bollinger_breakout", "{\"period\":3,\"nbdev\":1,\"allow_short\":true}", c,
                   NC(c), 0.5, ls, NW(ls), g);
    assert_string_equal(g[3].sig.reason,
                        "close 8.5 rose back above the middle band 8.3333333 of bbands:3:1:1");
    free(g);
}

/* donchian_breakout entry 3, exit 2; high = close + 0.5, low = close - 0.5.
 * HH(n)/LL(n) over the n bars BEFORE the current one:
 *   bar   0    1    2    3    4    5    6    7    8
 *   c    10   10   10 10.6 10.4  9.7  8.9  9.0 10.0
 *   HH3              10.5 11.1 11.1 11.1 10.2 10.2
 *   LL3               9.5  9.5  9.5  9.2  8.4  8.4
 *   HH2                    11.1 11.1 10.2  9.5
 *   LL2                     9.5  9.9  9.2  8.4
 * 3: 10.6 > HH3 10.5: LONG (the channel without bar 3, whose high 11.1
 * it could never exceed). 4: nothing. 5: 9.7 < LL2 9.9: FLAT (not < LL3
 * 9.5: no short). 6: 8.9 < LL3 9.2: SHORT (allow_short). 7: keep. 8: 10.0
 * > HH2 9.5: FLAT (not > HH3 10.2: no long). */
static void test_donchian_breakout(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 10.6, 10.4, 9.7, 8.9, 9.0, 10.0};
    const want_t lo[] = {{3, QB_SIGNAL_LONG}, {5, QB_SIGNAL_FLAT}};
    expect_signals("donchian_breakout", "{\"entry\":3,\"exit\":2}", c, NC(c), 0.5, lo, NW(lo), g);
    assert_string_equal(g[0].sig.reason,
                        "close 10.6 > 10.5, the highest high of the previous 3 bars");
    assert_string_equal(g[1].sig.reason,
                        "close 9.7 < 9.9, the lowest low of the previous 2 bars");
    const want_t ls[] = {{3, QB_SIGNAL_LONG}, {5, QB_SIGNAL_FLAT}, {6, QB_SIGNAL_SHORT},
                         {8, QB_SIGNAL_FLAT}};
    expect_signals("donchian_breakout", "{\"entry\":3,\"exit\":2,\"allow_short\":true}", c,
                   NC(c), 0.5, ls, NW(ls), g);
    assert_string_equal(g[2].sig.reason,
                        "close 8.9 < 9.2, the lowest low of the previous 3 bars");
    assert_string_equal(g[3].sig.reason,
                        "close 10 > 9.5, the highest high of the previous 2 bars");
    free(g);
}

/* basic_signals rsi 2, sma 2/3, macd 2/3/2 (all valid from bar 3). Votes
 * (R = RSI: < 30 long, > 70 short; S = SMA2 vs SMA3; M = macd vs signal):
 *   bar  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17
 *   c   10 11 12 13 14 14 14 13 12 11 10  9 11 14 13
 *   R    +  -  -  -  -  -  -  +  +  +  +  +  0  -  0     (RSI 0 on flat bars)
 *   S    0  +  +  +  +  +  0  -  -  -  -  -  0  +  +
 *   M    0  +  +  +  +  -  -  -  -  -  -  -  +  +  -
 * long-only (L >= 2): 4 LONG (2/3), 8 FLAT (L = 1; 2/3 not long), 16 LONG
 * (2/3), 17 FLAT (L = 1, 2/3). long-short: 4 LONG, 8 SHORT (S = 2), 15
 * FLAT (L 1, S 0: 2/3), 16 LONG, 17 FLAT (1 vs 1: 2/3). min_votes 1,
 * long-only: 3 LONG (1/3: RSI alone), 9 FLAT (nobody long: 3/3), 10 LONG
 * (1/3). */
static void test_basic_signals(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double c[] = {10, 10, 10, 10, 11, 12, 13, 14, 14, 14, 13, 12, 11, 10, 9, 11, 14, 13};
    const char *p = "{\"rsi\":2,\"fast\":2,\"slow\":3,\"macd_fast\":2,\"macd_slow\":3,"
                    "\"macd_signal\":2";
    char params[200];
    snprintf(params, sizeof params, "%s}", p);
    const want_t lo[] = {{4, QB_SIGNAL_LONG}, {8, QB_SIGNAL_FLAT}, {16, QB_SIGNAL_LONG},
                         {17, QB_SIGNAL_FLAT}};
    expect_signals("basic_signals", params, c, NC(c), 0.5, lo, NW(lo), g);
    for (int i = 0; i < 4; i++) assert_true(fabs(g[i].sig.confidence - 2.0 / 3) < 1e-12);
    assert_string_equal(g[0].sig.reason, "2/3 agree: rsi short (100), sma long, macd long");
    qb_strategy_t *s = mk("basic_signals", params);
    assert_int_equal(qb_strategy_warmup_bars(s), 3);
    qb_strategy_destroy(s);

    snprintf(params, sizeof params, "%s,\"allow_short\":true}", p);
    const want_t ls[] = {{4, QB_SIGNAL_LONG}, {8, QB_SIGNAL_SHORT}, {15, QB_SIGNAL_FLAT},
                         {16, QB_SIGNAL_LONG}, {17, QB_SIGNAL_FLAT}};
    expect_signals("basic_signals", params, c, NC(c), 0.5, ls, NW(ls), g);
    for (int i = 0; i < 5; i++) assert_true(fabs(g[i].sig.confidence - 2.0 / 3) < 1e-12);

    snprintf(params, sizeof params, "%s,\"min_votes\":1}", p);
    const want_t m1[] = {{3, QB_SIGNAL_LONG}, {9, QB_SIGNAL_FLAT}, {10, QB_SIGNAL_LONG}};
    expect_signals("basic_signals", params, c, NC(c), 0.5, m1, NW(m1), g);
    assert_true(fabs(g[0].sig.confidence - 1.0 / 3) < 1e-12);
    assert_true(g[1].sig.confidence == 1.0);
    assert_true(fabs(g[2].sig.confidence - 1.0 / 3) < 1e-12);
    assert_string_equal(g[0].sig.reason, "1/3 agree: rsi long (0), sma neutral, macd neutral");
    free(g);
}

/* ---- common parameters: stops and weights -------------------------------- */

static void test_stop_and_weight(void **state) {
    got_t *g = calloc(MAXSIG, sizeof *g);
    const double hl = 0.75;
    const want_t ls[] = {{5, QB_SIGNAL_LONG}, {8, QB_SIGNAL_SHORT}, {11, QB_SIGNAL_LONG},
                         {13, QB_SIGNAL_SHORT}};
    expect_signals("sma_cross",
                   "{\"fast\":2,\"slow\":3,\"allow_short\":true,\"stop_atr\":2,\"atr_period\":3,"
                   "\"target_weight\":0.25}",
                   sma_c, NC(sma_c), hl, ls, NW(ls), g);
    /* stop = 2 x ATR(3) of the signal bar, computed here by the batch form */
    int n = NC(sma_c);
    double hi[32], lo[32], atr[32];
    for (int i = 0; i < n; i++) hi[i] = sma_c[i] + hl, lo[i] = sma_c[i] - hl;
    assert_int_equal(qb_ta_atr_batch(hi, lo, sma_c, (size_t)n, 3, atr), QB_OK);
    for (int i = 0; i < NW(ls); i++) {
        assert_int_equal(g[i].sig.stop_distance, dec(2 * atr[g[i].bar]));
        assert_true(g[i].sig.stop_distance > 0);
        assert_int_equal(g[i].sig.has_target_weight, 1);
        assert_true(g[i].sig.target_weight == 0.25);
    }
    /* long-only: FLAT signals carry neither */
    const want_t lo2[] = {{5, QB_SIGNAL_LONG}, {8, QB_SIGNAL_FLAT}, {11, QB_SIGNAL_LONG},
                          {13, QB_SIGNAL_FLAT}};
    expect_signals("sma_cross",
                   "{\"fast\":2,\"slow\":3,\"stop_atr\":2,\"atr_period\":3,\"target_weight\":0.25}",
                   sma_c, NC(sma_c), hl, lo2, NW(lo2), g);
    assert_int_equal(g[1].sig.stop_distance, 0);
    assert_int_equal(g[1].sig.has_target_weight, 0);
    assert_int_equal(g[0].sig.has_target_weight, 1);
    /* a long ATR holds the first decision back until the stop is known */
    qb_strategy_t *s = mk("sma_cross", "{\"fast\":2,\"slow\":3,\"stop_atr\":1,\"atr_period\":6}");
    assert_int_equal(qb_strategy_warmup_bars(s), 7);
    /* rules run from bar 6 (s = +3: memory starts above); the cross below
     * on 8 finds the intent flat already; the cross above on 11 enters */
    assert_int_equal(run_from(s, sma_c, 0, n, hl, g), 2);
    assert_int_equal(g[0].bar, 11);
    assert_int_equal(g[0].sig.direction, QB_SIGNAL_LONG);
    qb_strategy_destroy(s);
    free(g);
}

/* ---- bar handling ------------------------------------------------------- */

static void test_stale_bars_and_values(void **state) {
    qb_strategy_t *s = mk("sma_cross", "{\"fast\":2,\"slow\":3}");
    qb_signal_t sig;
    int n = NC(sma_c);
    for (int i = 0; i < n; i++) {
        qb_bar_t b = mkbar(i, sma_c[i], 0.5);
        int r = qb_strategy_on_bar(s, &b, &sig);
        assert_true(r == 0 || r == 1);
        /* a re-delivered bar and an older one are ignored */
        assert_int_equal(qb_strategy_on_bar(s, &b, &sig), QB_ERR_STATE);
        if (i > 0) {
            qb_bar_t old = mkbar(i - 1, 50, 0.5);
            assert_int_equal(qb_strategy_on_bar(s, &old, &sig), QB_ERR_STATE);
        }
        assert_int_equal(qb_strategy_bars(s), i + 1);
        assert_int_equal(qb_strategy_last_ts(s), b.ts);
        /* published values are the indicators' */
        if (i >= 1) assert_true(qb_strategy_value(s, 0) == (sma_c[i - 1] + sma_c[i]) / 2);
        else assert_true(isnan(qb_strategy_value(s, 0)));
        if (i < 2) assert_true(isnan(qb_strategy_value(s, 1)));
        else assert_true(fabs(qb_strategy_value(s, 1) -
                              (sma_c[i - 2] + sma_c[i - 1] + sma_c[i]) / 3) < 1e-12);
    }
    assert_int_equal(qb_strategy_position(s), 0); /* FLAT after bar 13 */
    assert_int_equal(qb_strategy_on_fill(s, NULL), QB_OK);
    /* reset: like new */
    qb_strategy_reset(s);
    assert_int_equal(qb_strategy_bars(s), 0);
    assert_true(isnan(qb_strategy_value(s, 0)));
    got_t *g = calloc(MAXSIG, sizeof *g);
    assert_int_equal(run_from(s, sma_c, 0, n, 0.5, g), 4);
    assert_int_equal(g[0].bar, 5);
    free(g);
    qb_strategy_destroy(s);
}

/* Every kind, long-only and long-short, on one random walk. */
static const char *const all_kinds[][2] = {
    {"sma_cross", "{\"fast\":5,\"slow\":20"},
    {"ema_cross", "{\"fast\":5,\"slow\":20"},
    {"rsi_reversion", "{\"period\":6"},
    {"macd_momentum", "{\"fast\":6,\"slow\":13,\"signal\":5"},
    {"bollinger_reversion", "{\"period\":10,\"nbdev\":1.5"},
    {"bollinger_breakout", "{\"period\":10,\"nbdev\":1.5"},
    {"donchian_breakout", "{\"entry\":12,\"exit\":6"},
    {"basic_signals", "{\"rsi\":6,\"fast\":5,\"slow\":20,\"macd_fast\":6,\"macd_slow\":13,"
                      "\"macd_signal\":5"},
};
#define NKINDS ((int)(sizeof all_kinds / sizeof all_kinds[0]))

static void kind_params(int i, int shorts, char *buf, size_t cap) {
    snprintf(buf, cap, "%s,\"allow_short\":%s,\"stop_atr\":1.5}", all_kinds[i][1],
             shorts ? "true" : "false");
}

static int sig_equal(const qb_signal_t *a, const qb_signal_t *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* Two instances fed the same bars agree signal for signal; so does one
 * instance after reset. The first signal comes no earlier than bar
 * warmup_bars; signals alternate (each changes the intent). */
static void test_determinism(void **state) {
    enum { N = 3000 };
    double *c = malloc(N * sizeof *c);
    random_walk(c, N, 42);
    got_t *a = calloc(MAXSIG, sizeof *a), *b = calloc(MAXSIG, sizeof *b);
    for (int i = 0; i < NKINDS; i++)
        for (int sh = 0; sh < 2; sh++) {
            char p[300];
            kind_params(i, sh, p, sizeof p);
            qb_strategy_t *s1 = mk(all_kinds[i][0], p), *s2 = mk(all_kinds[i][0], p);
            int n1 = run_from(s1, c, 0, N, 0.3, a);
            int n2 = run_from(s2, c, 0, N, 0.3, b);
            assert_int_equal(n1, n2);
            if (n1 < 10) fail_msg("%s %s: only %d signals on %d bars", all_kinds[i][0], p, n1, N);
            int prev = 0;
            for (int k = 0; k < n1; k++) {
                assert_int_equal(a[k].bar, b[k].bar);
                assert_true(sig_equal(&a[k].sig, &b[k].sig));
                int pos = a[k].sig.direction == QB_SIGNAL_LONG    ? 1
                          : a[k].sig.direction == QB_SIGNAL_SHORT ? -1
                                                                  : 0;
                assert_int_not_equal(pos, prev);
                if (!sh) assert_true(pos >= 0);
                if (pos != 0) assert_true(a[k].sig.stop_distance > 0);
                prev = pos;
            }
            assert_true(a[0].bar >= qb_strategy_warmup_bars(s1));
            qb_strategy_reset(s1);
            memset(b, 0, MAXSIG * sizeof *b);
            assert_int_equal(run_from(s1, c, 0, N, 0.3, b), n1);
            for (int k = 0; k < n1; k++) assert_true(sig_equal(&a[k].sig, &b[k].sig));
            /* without reasons: the same signals, reason "" */
            qb_strategy_reset(s2);
            qb_strategy_set_reasons(s2, 0);
            memset(b, 0, MAXSIG * sizeof *b);
            assert_int_equal(run_from(s2, c, 0, N, 0.3, b), n1);
            for (int k = 0; k < n1; k++) {
                assert_string_equal(b[k].sig.reason, "");
                memcpy(b[k].sig.reason, a[k].sig.reason, sizeof b[k].sig.reason);
                assert_true(sig_equal(&a[k].sig, &b[k].sig));
            }
            qb_strategy_destroy(s1);
            qb_strategy_destroy(s2);
        }
    free(a);
    free(b);
    free(c);
}

/* Crossovers against an independent computation from libs/ta's batch
 * arrays: the definition applied by hand. */
static void cross_reference(const double *a, const double *b, int n, int shorts, want_t *w,
                            int *nw) {
    int last = 0, pos = 0;
    *nw = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) continue;
        double d = a[i] - b[i];
        int sg = d > 0 ? 1 : d < 0 ? -1 : 0;
        if (sg == 0) continue;
        int want = pos;
        if (last == -1 && sg == 1) want = 1;
        if (last == 1 && sg == -1) want = shorts ? -1 : 0;
        last = sg;
        if (want != pos) {
            w[*nw].bar = i;
            w[*nw].dir = want > 0 ? QB_SIGNAL_LONG : want < 0 ? QB_SIGNAL_SHORT : QB_SIGNAL_FLAT;
            (*nw)++;
            pos = want;
        }
    }
}

static void test_crossovers_vs_batch(void **state) {
    enum { N = 5000 };
    double *c = malloc(N * sizeof *c), *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y),
           *z = malloc(N * sizeof *z);
    want_t *w = calloc(MAXSIG, sizeof *w);
    got_t *g = calloc(MAXSIG, sizeof *g);
    random_walk(c, N, 7);
    int nw;
    for (int sh = 0; sh < 2; sh++) {
        const char *tail = sh ? ",\"allow_short\":true}" : "}";
        char p[100];
        assert_int_equal(qb_ta_sma_batch(c, N, 7, x), QB_OK);
        assert_int_equal(qb_ta_sma_batch(c, N, 25, y), QB_OK);
        cross_reference(x, y, N, sh, w, &nw);
        assert_true(nw > 20);
        snprintf(p, sizeof p, "{\"fast\":7,\"slow\":25%s", tail);
        expect_signals("sma_cross", p, c, N, 0.2, w, nw, g);

        assert_int_equal(qb_ta_ema_batch(c, N, 4, x), QB_OK);
        assert_int_equal(qb_ta_ema_batch(c, N, 19, y), QB_OK);
        cross_reference(x, y, N, sh, w, &nw);
        assert_true(nw > 20);
        snprintf(p, sizeof p, "{\"fast\":4,\"slow\":19%s", tail);
        expect_signals("ema_cross", p, c, N, 0.2, w, nw, g);

        assert_int_equal(qb_ta_macd_batch(c, N, 5, 11, 4, x, y, z), QB_OK);
        cross_reference(x, y, N, sh, w, &nw);
        assert_true(nw > 20);
        snprintf(p, sizeof p, "{\"fast\":5,\"slow\":11,\"signal\":4%s", tail);
        expect_signals("macd_momentum", p, c, N, 0.2, w, nw, g);
    }
    free(c);
    free(x);
    free(y);
    free(z);
    free(w);
    free(g);
}

/* ---- save / restore ----------------------------------------------------- */

/* Stop after bar T, save; a new instance replays bars [from, T] with
 * qb_strategy_warmup, restores, and goes on: its signals after T equal the
 * uninterrupted run's. from = 0 (full replay) for every kind and both
 * restore orders; for the SMA kinds (finite memory) also from T + 1 -
 * warmup_bars (the documented minimum). */
static void test_save_restore(void **state) {
    enum { N = 2500 };
    double *c = malloc(N * sizeof *c);
    random_walk(c, N, 99);
    got_t *full = calloc(MAXSIG, sizeof *full), *part = calloc(MAXSIG, sizeof *part);
    const int cuts[] = {0, 1, 30, 777, 1500, 2400};
    for (int i = 0; i < NKINDS; i++)
        for (int sh = 0; sh < 2; sh++) {
            char p[300];
            kind_params(i, sh, p, sizeof p);
            const char *kind = all_kinds[i][0];
            qb_strategy_t *ref = mk(kind, p);
            int nfull = run_from(ref, c, 0, N, 0.3, full);
            qb_strategy_destroy(ref);
            for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) {
                int T = cuts[ci];
                qb_strategy_t *s = mk(kind, p);
                run_from(s, c, 0, T + 1, 0.3, part);
                char st[QB_STRATEGY_STATE_MAX];
                size_t len = qb_strategy_save(s, st, sizeof st);
                assert_true(len < sizeof st);
                assert_int_equal(strlen(st), len);
                int W = qb_strategy_warmup_bars(s);
                qb_strategy_destroy(s);
                int finite = strcmp(kind, "sma_cross") == 0 ||
                             strncmp(kind, "bollinger", 9) == 0 ||
                             strcmp(kind, "donchian_breakout") == 0;
                for (int mode = 0; mode < 3; mode++) {
                    int from = 0;
                    if (mode == 2) {
                        if (!finite) continue;
                        from = T + 1 - W - 20; /* ATR(14) in the warm-up too: extra */
                        if (from < 0) from = 0;
                    }
                    qb_strategy_t *r = mk(kind, p);
                    char e[256] = "";
                    if (mode == 1) assert_int_equal(qb_strategy_restore(r, st, e, sizeof e), QB_OK);
                    for (int b = from; b <= T; b++) {
                        qb_bar_t bar = mkbar(b, c[b], 0.3);
                        assert_int_equal(qb_strategy_warmup(r, &bar), 0);
                    }
                    assert_int_equal(qb_strategy_position(r), mode == 1 ? qb_strategy_position(r) : 0);
                    if (mode != 1) {
                        qb_err_t err = qb_strategy_restore(r, st, e, sizeof e);
                        if (err) fail_msg("%s restore %s: %s", kind, st, e);
                    }
                    char st2[QB_STRATEGY_STATE_MAX];
                    if (mode == 0) { /* the same state, bars count included */
                        qb_strategy_save(r, st2, sizeof st2);
                        assert_string_equal(st, st2);
                    }
                    int np = run_from(r, c, T + 1, N, 0.3, part);
                    int k0 = 0;
                    while (k0 < nfull && full[k0].bar <= T) k0++;
                    if (np != nfull - k0)
                        fail_msg("%s %s cut %d mode %d: %d signals after the cut, want %d", kind,
                                 p, T, mode, np, nfull - k0);
                    for (int k = 0; k < np; k++) {
                        assert_int_equal(part[k].bar, full[k0 + k].bar);
                        assert_int_equal(part[k].sig.direction, full[k0 + k].sig.direction);
                        if (mode != 2) assert_true(sig_equal(&part[k].sig, &full[k0 + k].sig));
                    }
                    qb_strategy_destroy(r);
                }
            }
        }
    free(full);
    free(part);
    free(c);
}

static void test_restore_errors(void **state) {
    qb_strategy_t *s = mk("sma_cross", "{\"fast\":2,\"slow\":3}");
    got_t *g = calloc(MAXSIG, sizeof *g);
    run_from(s, sma_c, 0, 7, 0.5, g); /* LONG at 5 */
    char st[QB_STRATEGY_STATE_MAX];
    qb_strategy_save(s, st, sizeof st);
    char want[200];
    snprintf(want, sizeof want,
             "{\"kind\":\"sma_cross\",\"bars\":7,\"last_ts\":\"%lld\",\"position\":1,"
             "\"last_sign\":1}",
             (long long)(T0 + 6 * DAY));
    assert_string_equal(st, want);
    /* truncation reports the full length */
    char tiny[10];
    assert_int_equal(qb_strategy_save(s, tiny, sizeof tiny), strlen(want));
    assert_int_equal(strlen(tiny), 9);
    qb_strategy_destroy(s);

    static const struct {
        const char *json;
        qb_err_t err;
        const char *msg;
    } v[] = {
        {"[]", QB_ERR_PARSE, "sma_cross: state must be a JSON object"},
        {"{\"kind\":\"sma_cross\"", QB_ERR_PARSE, "sma_cross: state must be a JSON object"},
        {"{\"kind\":\"ema_cross\",\"position\":1}", QB_ERR_INVALID,
         "sma_cross: state is for kind \"ema_cross\""},
        {"{\"kind\":\"sma_cross\"}", QB_ERR_INVALID, "sma_cross: state: missing \"position\""},
        {"{\"position\":1}", QB_ERR_INVALID, "sma_cross: state: missing \"kind\""},
        {"{\"kind\":\"sma_cross\",\"position\":2}", QB_ERR_INVALID,
         "sma_cross: state.position: must be -1, 0 or 1, got 2"},
        {"{\"kind\":\"sma_cross\",\"position\":1,\"last_sign\":5}", QB_ERR_INVALID,
         "sma_cross: state.last_sign: must be an integer in [-1, 1], got 5"},
        {"{\"kind\":\"sma_cross\",\"position\":1,\"mood\":1}", QB_ERR_INVALID,
         "sma_cross: state: unknown key \"mood\""},
        {"{\"kind\":\"sma_cross\",\"position\":1,\"last_ts\":12}", QB_ERR_INVALID,
         "sma_cross: state.last_ts: must be a string of decimal ns, got 12"},
        {"{\"kind\":\"sma_cross\",\"position\":1,\"position\":0}", QB_ERR_INVALID,
         "sma_cross: state: duplicate key \"position\""},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        s = mk("sma_cross", "{\"fast\":2,\"slow\":3}");
        char e[256] = "";
        assert_int_equal(qb_strategy_restore(s, v[i].json, e, sizeof e), v[i].err);
        assert_string_equal(e, v[i].msg);
        assert_int_equal(qb_strategy_position(s), 0);
        qb_strategy_destroy(s);
    }
    /* warmed up to another bar than the state's */
    s = mk("sma_cross", "{\"fast\":2,\"slow\":3}");
    for (int i = 0; i < 6; i++) {
        qb_bar_t b = mkbar(i, sma_c[i], 0.5);
        qb_strategy_warmup(s, &b);
    }
    char e[256];
    assert_int_equal(qb_strategy_restore(s, want, e, sizeof e), QB_ERR_STATE);
    assert_non_null(strstr(e, "saved after bar ts"));
    assert_int_equal(qb_strategy_position(s), 0);
    qb_bar_t b6 = mkbar(6, sma_c[6], 0.5);
    qb_strategy_warmup(s, &b6);
    assert_int_equal(qb_strategy_restore(s, want, e, sizeof e), QB_OK);
    assert_int_equal(qb_strategy_position(s), 1);
    /* the restored memory and position carry on: bar 8 crosses below */
    assert_int_equal(run_from(s, sma_c, 7, 9, 0.5, g), 1);
    assert_int_equal(g[0].bar, 8);
    assert_int_equal(g[0].sig.direction, QB_SIGNAL_FLAT);
    qb_strategy_destroy(s);

    /* a short restored into a long-only instance is closed on the next bar */
    s = mk("rsi_reversion", "{\"period\":2}");
    const double c[] = {10, 11, 12, 11.5};
    assert_int_equal(qb_strategy_restore(s, "{\"kind\":\"rsi_reversion\",\"position\":-1}", e,
                                         sizeof e),
                     QB_OK);
    assert_int_equal(qb_strategy_position(s), -1);
    assert_int_equal(run_from(s, c, 0, 4, 0.5, g), 1);
    assert_int_equal(g[0].bar, 2);
    assert_int_equal(g[0].sig.direction, QB_SIGNAL_FLAT);
    assert_string_equal(g[0].sig.reason, "long-only: closing the short position");
    qb_strategy_destroy(s);
    free(g);
}

/* ---- signal ids --------------------------------------------------------- */

static void test_signal_id(void **state) {
    char id[QB_UUID_STRLEN], again[QB_UUID_STRLEN], other[QB_UUID_STRLEN];
    const int64_t ts = 1704153600000000000LL;
    assert_int_equal(qb_strategy_signal_id("sma_cross-aapl-1d", "paper-1", "AAPL", "1d", ts, id),
                     QB_OK);
    /* pinned: Python uuid.uuid5(UUID(QB_STRATEGY_SIGNAL_NS),
     *   "sma_cross-aapl-1d|paper-1|AAPL|1d|1704153600000000000") */
    assert_string_equal(id, "c1861d72-0ae9-5891-9e0d-fd94ad78236c");
    assert_true(qb_uuid_valid(id));
    assert_int_equal(id[14], '5');
    assert_int_equal(qb_strategy_signal_id("sma_cross-aapl-1d", "paper-1", "AAPL", "1d", ts, again),
                     QB_OK);
    assert_string_equal(id, again);
    const char *f[5] = {"sma_cross-aapl-1d", "paper-1", "AAPL", "1d", NULL};
    for (int which = 0; which < 5; which++) {
        const char *g[4] = {f[0], f[1], f[2], f[3]};
        int64_t t = ts;
        if (which < 4) g[which] = "x";
        else t = ts + 1;
        assert_int_equal(qb_strategy_signal_id(g[0], g[1], g[2], g[3], t, other), QB_OK);
        assert_string_not_equal(id, other);
    }
    /* NULL account = "" */
    assert_int_equal(qb_strategy_signal_id("s", NULL, "AAPL", "1d", ts, id), QB_OK);
    assert_int_equal(qb_strategy_signal_id("s", "", "AAPL", "1d", ts, again), QB_OK);
    assert_string_equal(id, again);
    /* long ids */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(qb_strategy_signal_id(big, "acct", "AAPL", "1d", ts, id), QB_OK);
    assert_true(qb_uuid_valid(id));
    /* ambiguous or missing parts */
    assert_int_equal(qb_strategy_signal_id("a|b", "c", "AAPL", "1d", ts, id), QB_ERR_INVALID);
    assert_string_equal(id, "");
    assert_int_equal(qb_strategy_signal_id("a", "b|c", "AAPL", "1d", ts, id), QB_ERR_INVALID);
    assert_int_equal(qb_strategy_signal_id("", "c", "AAPL", "1d", ts, id), QB_ERR_INVALID);
    assert_int_equal(qb_strategy_signal_id(NULL, "c", "AAPL", "1d", ts, id), QB_ERR_INVALID);
    assert_int_equal(qb_strategy_signal_id("a", "c", NULL, "1d", ts, id), QB_ERR_INVALID);
    assert_string_equal(qb_signal_dir_name(QB_SIGNAL_LONG), "LONG");
    assert_string_equal(qb_signal_dir_name(QB_SIGNAL_SHORT), "SHORT");
    assert_string_equal(qb_signal_dir_name(QB_SIGNAL_FLAT), "FLAT");
    assert_string_equal(qb_signal_dir_name((qb_signal_dir_t)0), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_params_defaults_and_warmup),
        cmocka_unit_test(test_params_errors),
        cmocka_unit_test(test_cross_helper),
        cmocka_unit_test(test_sma_cross),
        cmocka_unit_test(test_ema_cross),
        cmocka_unit_test(test_rsi_reversion),
        cmocka_unit_test(test_macd_momentum),
        cmocka_unit_test(test_bollinger_reversion),
        cmocka_unit_test(test_bollinger_breakout),
        cmocka_unit_test(test_donchian_breakout),
        cmocka_unit_test(test_basic_signals),
        cmocka_unit_test(test_stop_and_weight),
        cmocka_unit_test(test_stale_bars_and_values),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_crossovers_vs_batch),
        cmocka_unit_test(test_save_restore),
        cmocka_unit_test(test_restore_errors),
        cmocka_unit_test(test_signal_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
