/* test_strategy_columns.c — libs/strategy: qb_strategy_on_bars (the
 * backtest's path: price columns, SMA/EMA run column-wise, the rules of
 * sma_cross / ema_cross through their on_columns) gives exactly what
 * qb_strategy_on_bar gives bar by bar: the same signals (every field, the
 * reason text included), the same intent, values, bar count and saved
 * state, for runs of every length (1 .. > one chunk of 256), long-only and
 * long-short, fast = 1 (the close itself), flat stretches where the
 * averages are equal (the crossover memory must hold), and a restored
 * short position under long-only (the clamp turns "keep" into a close).
 * Also every other built-in kind through the generic path of on_bars. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "qb_test.h"
#include "strategy/qb_strategy.h"
#include "strategy/qb_strategy_kind.h"

#define NB 3000
#define MIN 60000000000LL

typedef struct cols_s {
    qb_time_t ts[NB];
    qb_dec_t px[5][NB]; /* open, high, low, close, volume */
} cols_t;

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A random walk with flat stretches (equal closes: equal averages). */
static void make_bars(cols_t *c, uint64_t seed) {
    uint64_t st = seed;
    int64_t p = 100 * QB_DEC_SCALE;
    for (int i = 0; i < NB; i++) {
        c->ts[i] = 1704067200000000000LL + (int64_t)i * MIN;
        int64_t o = p;
        if (i % 400 < 340) p += ((int64_t)(rnd(&st) % 201) - 100) * 1000000;
        if (p < 5 * QB_DEC_SCALE) p = 5 * QB_DEC_SCALE;
        c->px[0][i] = o;
        c->px[3][i] = p;
        c->px[1][i] = (o > p ? o : p) + 2000000;
        c->px[2][i] = (o < p ? o : p) - 2000000;
        c->px[4][i] = (int64_t)(1000 + rnd(&st) % 5000) * QB_DEC_SCALE;
    }
}

static void bar_at(const cols_t *c, int i, qb_bar_t *b) {
    b->ts = c->ts[i];
    b->open = c->px[0][i];
    b->high = c->px[1][i];
    b->low = c->px[2][i];
    b->close = c->px[3][i];
    b->volume = c->px[4][i];
}

static qb_strategy_t *make(const char *kind, const char *params, const char *restore) {
    char e[256];
    qb_strategy_t *s = NULL;
    qb_err_t err = qb_strategy_new(kind, params, &s, e, sizeof e);
    if (err != QB_OK) fail_msg("%s %s: %s", kind, params, e);
    if (restore) assert_int_equal(qb_strategy_restore(s, restore, e, sizeof e), QB_OK);
    return s;
}

/* One kind and parameter set: on_bar over all bars vs on_bars over runs of
 * lengths drawn from `seed`. */
static void compare(const char *kind, const char *params, const char *restore, uint64_t seed) {
    static cols_t c;
    static qb_signal_t want[NB], got[NB];
    static uint32_t at[NB];
    make_bars(&c, seed);
    qb_strategy_t *a = make(kind, params, restore), *b = make(kind, params, restore);
    qb_bar_t bar, bb;
    memset(&bar, 0, sizeof bar);
    snprintf(bar.symbol.s, sizeof bar.symbol.s, "SYM");
    snprintf(bar.timeframe, sizeof bar.timeframe, "1m");
    bb = bar;
    int nwant = 0;
    int wat[NB];
    for (int i = 0; i < NB; i++) {
        bar_at(&c, i, &bar);
        memset(&want[nwant], 0, sizeof want[nwant]);
        int r = qb_strategy_on_bar(a, &bar, &want[nwant]);
        assert_true(r == 0 || r == 1);
        if (r == 1) wat[nwant++] = i;
    }
    int ngot = 0;
    uint64_t st = seed * 7 + 1;
    static const size_t lens[] = {1, 2, 3, 7, 20, 31, 255, 256, 257, 600};
    for (int i = 0; i < NB;) {
        size_t n = lens[rnd(&st) % (sizeof lens / sizeof lens[0])];
        if (n > (size_t)(NB - i)) n = (size_t)(NB - i);
        const qb_dec_t *const px[5] = {c.px[0] + i, c.px[1] + i, c.px[2] + i, c.px[3] + i,
                                       c.px[4] + i};
        memset(&got[ngot], 0, (NB - ngot) * sizeof got[0]);
        int ns = qb_strategy_on_bars(b, &bb, c.ts + i, px, n, &got[ngot], at);
        assert_true(ns >= 0);
        for (int j = 0; j < ns; j++) {
            assert_true(ngot + j < nwant);
            assert_int_equal(wat[ngot + j], i + (int)at[j]);
        }
        ngot += ns;
        assert_int_equal(qb_strategy_bars(b), i + (int64_t)n);
        i += (int)n;
        /* the last bar fed */
        assert_int_equal(bb.ts, c.ts[i - 1]);
        assert_int_equal(bb.close, c.px[3][i - 1]);
        assert_int_equal(bb.open, c.px[0][i - 1]);
        assert_int_equal(bb.volume, c.px[4][i - 1]);
    }
    assert_int_equal(ngot, nwant);
    for (int j = 0; j < nwant; j++)
        assert_memory_equal(&got[j], &want[j], sizeof want[j]);
    assert_int_equal(qb_strategy_position(a), qb_strategy_position(b));
    assert_int_equal(qb_strategy_bars(a), qb_strategy_bars(b));
    assert_int_equal(qb_strategy_last_ts(a), qb_strategy_last_ts(b));
    for (int k = 0; k < qb_strategy_num_values(a); k++) {
        double va = qb_strategy_value(a, k), vb = qb_strategy_value(b, k);
        assert_memory_equal(&va, &vb, sizeof va);
    }
    char sa[512], sb[512];
    qb_strategy_save(a, sa, sizeof sa);
    qb_strategy_save(b, sb, sizeof sb);
    assert_string_equal(sa, sb);
    qb_strategy_destroy(a);
    qb_strategy_destroy(b);
}

static void test_ma_cross_columns(void **state) {
    (void)state;
    static const char *const params[] = {
        "{\"fast\":10,\"slow\":30}",
        "{\"fast\":10,\"slow\":30,\"allow_short\":true}",
        "{\"fast\":1,\"slow\":5}",
        "{\"fast\":1,\"slow\":5,\"allow_short\":true}",
        "{\"fast\":3,\"slow\":4,\"allow_short\":true,\"target_weight\":0.5}",
        "{\"fast\":5,\"slow\":20,\"stop_atr\":2}",
    };
    for (int k = 0; k < 2; k++)
        for (size_t p = 0; p < sizeof params / sizeof params[0]; p++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                compare(k ? "ema_cross" : "sma_cross", params[p], NULL, seed);
}

static void test_restored_short_long_only(void **state) {
    (void)state;
    /* a short position restored into a long-only instance: on its first
     * bar where the rules keep the intent, the clamp closes it */
    const char *st = "{\"kind\":\"sma_cross\",\"bars\":0,\"last_ts\":\"0\",\"position\":-1,"
                     "\"last_sign\":-1}";
    compare("sma_cross", "{\"fast\":10,\"slow\":30}", st, 5);
    const char *st2 = "{\"kind\":\"ema_cross\",\"bars\":0,\"last_ts\":\"0\",\"position\":-1,"
                      "\"last_sign\":1}";
    compare("ema_cross", "{\"fast\":2,\"slow\":9}", st2, 6);
    compare("sma_cross", "{\"fast\":2,\"slow\":9,\"allow_short\":true}", st, 7);
}

static void test_other_kinds_generic_path(void **state) {
    (void)state;
    for (int i = 0; i < qb_strategy_kind_count(); i++) {
        const qb_strategy_kind_t *k = qb_strategy_kind_at(i);
        compare(qb_strategy_kind_name(k), "", NULL, 11 + (uint64_t)i);
        compare(qb_strategy_kind_name(k), "{\"allow_short\":true}", NULL, 21 + (uint64_t)i);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ma_cross_columns),
        cmocka_unit_test(test_restored_short_long_only),
        cmocka_unit_test(test_other_kinds_generic_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
