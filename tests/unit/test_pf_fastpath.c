/* test_pf_fastpath.c — libs/portfolio's 64-bit fast paths give exactly what
 * the general __int128 arithmetic of core's qb_dec_div_wide gives, on
 * random operands from tiny to the edge of the range (where the fast path
 * must step aside): the slippage of qb_fill_slip (ref x (1e4 +- bps) / 1e4,
 * against the trader), qb_commission_calc's half-up division, and
 * qb_portfolio_mark_open against qb_portfolio_mark (the same account after
 * either on an open position; nothing at all on a flat one). The seed is
 * fixed: a failure repeats. */
#include <stdio.h>
#include <string.h>

#include "qb_test_assert.h"

#include "core/qb_decimal.h"
#include "portfolio/qb_commission.h"
#include "portfolio/qb_fill_model.h"
#include "portfolio/qb_portfolio.h"

#define CASES 300000

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A non-negative amount of a random magnitude, edges included. */
static qb_dec_t pick(uint64_t *s) {
    switch (rnd(s) % 6) {
    case 0: return (qb_dec_t)(rnd(s) % 1000);
    case 1: return (qb_dec_t)(rnd(s) % 100000000000LL);
    case 2: return (qb_dec_t)(rnd(s) % 10000000000000000LL);
    case 3: return (qb_dec_t)(rnd(s) >> 1);
    case 4: return (qb_dec_t)(rnd(s) % 1000) * QB_DEC_SCALE;
    default: return INT64_MAX - (qb_dec_t)(rnd(s) % 1000);
    }
}

static void test_slip_exact(void **state) {
    (void)state;
    const qb_dec_t ten_k = 10000 * QB_DEC_SCALE;
    uint64_t s = 11;
    for (int i = 0; i < CASES; i++) {
        qb_dec_t ref = pick(&s), bps = pick(&s) % ten_k, got = 0, want = 0;
        if (ref <= 0) ref = 1;
        const int buy = (int)(rnd(&s) & 1);
        qb_err_t e1 = qb_fill_slip(buy ? QB_SIDE_BUY : QB_SIDE_SELL, ref, bps, 0, 0, &got);
        qb_err_t e2 = qb_dec_div_wide((qb_dec_wide_t)ref * (buy ? ten_k + bps : ten_k - bps),
                                      (qb_dec_wide_t)ten_k, &want,
                                      buy ? QB_ROUND_CEIL : QB_ROUND_FLOOR);
        if (e2 == QB_OK && want <= 0) want = 1; /* qb_fill_slip's floor of one unit */
        if (e1 != e2 || (e1 == QB_OK && got != want))
            fail_msg("slip: ref %lld bps %lld %s: got %d %lld, want %d %lld", (long long)ref,
                     (long long)bps, buy ? "BUY" : "SELL", e1, (long long)got, e2,
                     (long long)want);
    }
}

static void test_commission_exact(void **state) {
    (void)state;
    uint64_t s = 12;
    for (int i = 0; i < CASES; i++) {
        qb_commission_t m = qb_commission_percent(pick(&s) % (2 * QB_DEC_SCALE), 0);
        if (rnd(&s) % 3 == 0) m = qb_commission_per_share(pick(&s) % (5 * QB_DEC_SCALE), 0);
        m.step = rnd(&s) % 3 == 0 ? pick(&s) % 1000000 : 0;
        qb_dec_t qty = pick(&s), notional = pick(&s), got = 0, want = 0, steps = 0;
        if (qty == 0) qty = 1;
        const qb_dec_t step = m.step > 0 ? m.step : 1;
        qb_dec_wide_t exact = m.kind == QB_COMMISSION_PERCENT ? (qb_dec_wide_t)m.rate * notional
                                                             : (qb_dec_wide_t)m.rate * qty;
        qb_err_t e1 = qb_commission_calc(&m, qty, notional, &got);
        qb_err_t e2 = qb_dec_div_wide(exact, (qb_dec_wide_t)step * QB_DEC_SCALE, &steps,
                                      QB_ROUND_HALF_UP);
        if (e2 == QB_OK && __builtin_mul_overflow(steps, step, &want)) e2 = QB_ERR_OVERFLOW;
        if (e1 != e2 || (e1 == QB_OK && got != want))
            fail_msg("commission: rate %lld step %lld qty %lld notional %lld: got %d %lld, "
                     "want %d %lld",
                     (long long)m.rate, (long long)m.step, (long long)qty, (long long)notional,
                     e1, (long long)got, e2, (long long)want);
    }
}

/* Two accounts, the same fills; one marked with qb_portfolio_mark_open,
 * the other with qb_portfolio_mark on open positions only: the same
 * books after every step, whole and fractional quantities, long and short. */
static void test_mark_open(void **state) {
    (void)state;
    char e[256];
    qb_portfolio_config_t c;
    qb_portfolio_config_default(&c);
    c.initial_cash = 1000000 * QB_DEC_SCALE;
    c.allow_short = 1;
    qb_portfolio_t *a = NULL, *b = NULL;
    assert_int_equal(qb_portfolio_new(&c, &a, e, sizeof e), QB_OK);
    assert_int_equal(qb_portfolio_new(&c, &b, e, sizeof e), QB_OK);
    const char *names[] = {"AAA", "BBB", "CCC", "DDD"};
    for (uint32_t k = 0; k < 4; k++) {
        uint32_t ia, ib;
        assert_int_equal(qb_portfolio_symbol(a, names[k], &ia, e, sizeof e), QB_OK);
        assert_int_equal(qb_portfolio_symbol(b, names[k], &ib, e, sizeof e), QB_OK);
    }
    uint64_t s = 13;
    qb_dec_t px[4] = {10 * QB_DEC_SCALE, 50 * QB_DEC_SCALE, 3 * QB_DEC_SCALE,
                      200 * QB_DEC_SCALE};
    for (int i = 0; i < 20000; i++) {
        const uint32_t id = (uint32_t)(rnd(&s) % 4);
        if (rnd(&s) % 5 == 0) { /* a fill: whole or fractional, either side */
            qb_dec_t q = (qb_dec_t)(1 + rnd(&s) % 50) * QB_DEC_SCALE;
            if (rnd(&s) & 1) q = (qb_dec_t)(1 + rnd(&s) % 5000000000ULL);
            qb_side_t side = (rnd(&s) & 1) ? QB_SIDE_BUY : QB_SIDE_SELL;
            qb_dec_t cur = qb_portfolio_qty(a, id);
            if (rnd(&s) % 4 == 0 && cur != 0) { /* close it: back to flat */
                q = cur > 0 ? cur : -cur;
                side = cur > 0 ? QB_SIDE_SELL : QB_SIDE_BUY;
            }
            qb_err_t ea = qb_portfolio_apply_fill(a, id, side, q, px[id], 0, NULL, 0);
            qb_err_t eb = qb_portfolio_apply_fill(b, id, side, q, px[id], 0, NULL, 0);
            assert_int_equal(ea, eb);
        } else { /* a new price, then the marks */
            qb_dec_t step = (qb_dec_t)(rnd(&s) % 2000001) - 1000000;
            if (px[id] + step > QB_DEC_SCALE / 10) px[id] += step;
            qb_dec_t ma = qb_portfolio_mark_price(a, id);
            assert_int_equal(qb_portfolio_mark_open(a, id, px[id]), QB_OK);
            if (qb_portfolio_qty(b, id) != 0)
                assert_int_equal(qb_portfolio_mark(b, id, px[id]), QB_OK);
            else /* flat: untouched, the mark too */
                assert_int_equal(qb_portfolio_mark_price(a, id), ma);
        }
        assert_int_equal(qb_portfolio_equity(a), qb_portfolio_equity(b));
        assert_int_equal(qb_portfolio_long_value(a), qb_portfolio_long_value(b));
        assert_int_equal(qb_portfolio_short_value(a), qb_portfolio_short_value(b));
        for (uint32_t k = 0; k < 4; k++) {
            assert_int_equal(qb_portfolio_market_value(a, k), qb_portfolio_market_value(b, k));
            assert_int_equal(qb_portfolio_mark_price(a, k), qb_portfolio_mark_price(b, k));
        }
    }
    /* the same errors: a bad id or price */
    assert_int_equal(qb_portfolio_mark_open(a, 99, QB_DEC_SCALE), QB_ERR_INVALID);
    assert_int_equal(qb_portfolio_mark_open(a, 0, 0), QB_ERR_INVALID);
    /* and an overflowing value leaves the account as it was */
    assert_int_equal(
        qb_portfolio_apply_fill(a, 0, QB_SIDE_BUY, 1000 * QB_DEC_SCALE, QB_DEC_SCALE, 0, e, sizeof e),
        QB_OK);
    qb_dec_t eq = qb_portfolio_equity(a), mark0 = qb_portfolio_mark_price(a, 0);
    assert_int_equal(qb_portfolio_mark_open(a, 0, INT64_MAX / 10), QB_ERR_OVERFLOW);
    assert_int_equal(qb_portfolio_equity(a), eq);
    assert_int_equal(qb_portfolio_mark_price(a, 0), mark0);
    qb_portfolio_destroy(a);
    qb_portfolio_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slip_exact),
        cmocka_unit_test(test_commission_exact),
        cmocka_unit_test(test_mark_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
