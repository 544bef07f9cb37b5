/* test_types.c — qb_types: symbols, enum names, the order state machine as
 * a full table, timeframes, bar validation messages, and position
 * accounting scenarios with exact expected numbers (worked by hand; the
 * rounding cases checked with Python's decimal module). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_types.h"

/* Decimal literal from text; the tests read like the numbers they mean. */
static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    assert_int_equal(qb_dec_parse(s, strlen(s), &v), QB_OK);
    return v;
}

static void assert_dec(qb_dec_t got, const char *want) {
    char buf[QB_DEC_STRLEN];
    qb_dec_format(got, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* ---- symbol ------------------------------------------------------------- */

static void test_symbol(void **state) {
    static const struct { const char *in, *out; } good[] = {
        {"AAPL", "AAPL"}, {"brk.b", "BRK.B"}, {"BTC-USD", "BTC-USD"},
        {"ES=F", "ES=F"}, {"^GSPC", "^GSPC"}, {"eur/usd", "EUR/USD"},
        {"A_1", "A_1"},   {"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        qb_symbol_t s;
        assert_int_equal(qb_symbol_set(&s, good[i].in, NULL, 0), QB_OK);
        assert_string_equal(s.s, good[i].out);
    }
    static const struct { const char *in, *msg; } bad[] = {
        {"", "empty"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "longer than 31"},
        {"AA PL", "0x20 at position 2"},
        {"AAPL\n", "0x0a at position 4"},
        {"A*B", "0x2a"},
        {"\xc3\x84PL", "0xc3 at position 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qb_symbol_t s = {"KEEP"};
        char err[128] = "";
        assert_int_equal(qb_symbol_set(&s, bad[i].in, err, sizeof err), QB_ERR_INVALID);
        if (!strstr(err, bad[i].msg)) fail_msg("\"%s\": message \"%s\"", bad[i].in, err);
        assert_string_equal(s.s, "KEEP");
    }
    qb_symbol_t s, t;
    assert_int_equal(qb_symbol_set(&s, NULL, NULL, 0), QB_ERR_INVALID);
    assert_int_equal(qb_symbol_set_len(&s, "AB\0C", 4, NULL, 0), QB_ERR_INVALID);
    assert_int_equal(qb_symbol_set_len(&s, "MSFTXYZ", 4, NULL, 0), QB_OK);
    assert_string_equal(s.s, "MSFT");
    assert_int_equal(qb_symbol_set(&t, "msft", NULL, 0), QB_OK);
    assert_true(qb_symbol_eq(&s, &t));
    assert_int_equal(qb_symbol_set(&t, "MSFT.A", NULL, 0), QB_OK);
    assert_false(qb_symbol_eq(&s, &t));
}

/* ---- enums -------------------------------------------------------------- */

static void test_enum_names(void **state) {
    static const char *sides[] = {NULL, "BUY", "SELL"};
    static const char *types[] = {NULL, "MARKET", "LIMIT", "STOP", "STOP_LIMIT"};
    static const char *tifs[] = {NULL, "DAY", "GTC", "IOC", "FOK"};
    static const char *sts[] = {NULL, "NEW", "SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED",
                                "FILLED", "CANCELED", "REJECTED", "EXPIRED"};
    for (int v = 1; v <= 2; v++) {
        qb_side_t x;
        assert_string_equal(qb_side_name((qb_side_t)v), sides[v]);
        assert_int_equal(qb_side_parse(sides[v], &x), QB_OK);
        assert_int_equal(x, v);
    }
    for (int v = 1; v <= 4; v++) {
        qb_order_type_t x;
        qb_tif_t y;
        assert_string_equal(qb_order_type_name((qb_order_type_t)v), types[v]);
        assert_int_equal(qb_order_type_parse(types[v], &x), QB_OK);
        assert_int_equal(x, v);
        assert_string_equal(qb_tif_name((qb_tif_t)v), tifs[v]);
        assert_int_equal(qb_tif_parse(tifs[v], &y), QB_OK);
        assert_int_equal(y, v);
    }
    for (int v = 1; v <= 8; v++) {
        qb_order_status_t x;
        assert_string_equal(qb_order_status_name((qb_order_status_t)v), sts[v]);
        assert_int_equal(qb_order_status_parse(sts[v], &x), QB_OK);
        assert_int_equal(x, v);
    }
    qb_side_t side = QB_SIDE_BUY;
    assert_int_equal(qb_side_parse("sell", &side), QB_OK);
    assert_int_equal(side, QB_SIDE_SELL);
    assert_int_equal(qb_side_parse("SHORT", &side), QB_ERR_PARSE);
    assert_int_equal(qb_side_parse("", &side), QB_ERR_PARSE);
    assert_int_equal(qb_side_parse(NULL, &side), QB_ERR_PARSE);
    assert_int_equal(side, QB_SIDE_SELL);
    qb_order_status_t st;
    assert_int_equal(qb_order_status_parse("partially_filled", &st), QB_OK);
    assert_int_equal(st, QB_ORDER_STATUS_PARTIALLY_FILLED);
    assert_string_equal(qb_side_name((qb_side_t)0), "UNKNOWN");
    assert_string_equal(qb_order_type_name((qb_order_type_t)5), "UNKNOWN");
    assert_string_equal(qb_tif_name((qb_tif_t)-1), "UNKNOWN");
    assert_string_equal(qb_order_status_name((qb_order_status_t)9), "UNKNOWN");
    assert_int_equal(qb_side_sign(QB_SIDE_BUY), 1);
    assert_int_equal(qb_side_sign(QB_SIDE_SELL), -1);
    assert_int_equal(qb_side_sign((qb_side_t)0), 0);
}

/* ---- order state machine ------------------------------------------------ */

static void test_state_machine_table(void **state) {
    enum { N = QB_ORDER_STATUS_NEW, SU = QB_ORDER_STATUS_SUBMITTED,
           AC = QB_ORDER_STATUS_ACCEPTED, PF = QB_ORDER_STATUS_PARTIALLY_FILLED,
           FI = QB_ORDER_STATUS_FILLED, CA = QB_ORDER_STATUS_CANCELED,
           RE = QB_ORDER_STATUS_REJECTED, EX = QB_ORDER_STATUS_EXPIRED };
    /* allowed[from][to], rows and columns in enum order NEW..EXPIRED */
    static const int allowed[9][9] = {
        /*        N  SU AC PF FI CA RE EX */
        [N]  = {0, 0, 1, 0, 0, 0, 1, 1, 0},
        [SU] = {0, 0, 0, 1, 1, 1, 1, 1, 1},
        [AC] = {0, 0, 0, 0, 1, 1, 1, 1, 1},
        [PF] = {0, 0, 0, 0, 1, 1, 1, 0, 1},
        [FI] = {0}, [CA] = {0}, [RE] = {0}, [EX] = {0},
    };
    for (int from = -1; from <= 10; from++) {
        for (int to = -1; to <= 10; to++) {
            int want = from >= 1 && from <= 8 && to >= 1 && to <= 8 && allowed[from][to];
            int got = qb_order_transition_ok((qb_order_status_t)from, (qb_order_status_t)to);
            if (got != want)
                fail_msg("%s -> %s: %d, want %d",
                         qb_order_status_name((qb_order_status_t)from),
                         qb_order_status_name((qb_order_status_t)to), got, want);
        }
    }
    for (int s = 1; s <= 8; s++) {
        int term = s == FI || s == CA || s == RE || s == EX;
        assert_int_equal(qb_order_status_is_terminal((qb_order_status_t)s), term);
    }
    assert_false(qb_order_status_is_terminal((qb_order_status_t)0));
}

static void test_timeframes(void **state) {
    static const struct { const char *s; int64_t ns; } v[] = {
        {"1m", QB_NS_PER_MIN},       {"5m", 5 * QB_NS_PER_MIN},
        {"15m", 15 * QB_NS_PER_MIN}, {"30m", 30 * QB_NS_PER_MIN},
        {"1h", QB_NS_PER_HOUR},      {"4h", 4 * QB_NS_PER_HOUR},
        {"1d", QB_NS_PER_DAY},       {"1w", 7 * QB_NS_PER_DAY},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t ns = 0;
        assert_int_equal(qb_timeframe_parse(v[i].s, &ns), QB_OK);
        assert_int_equal(ns, v[i].ns);
    }
    static const char *bad[] = {"1M", "2m", "", "1 m", "1mm", "60s", "1D"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = -1;
        assert_int_equal(qb_timeframe_parse(bad[i], &ns), QB_ERR_PARSE);
        assert_int_equal(ns, -1);
    }
    int64_t ns;
    assert_int_equal(qb_timeframe_parse(NULL, &ns), QB_ERR_PARSE);
}

/* ---- bar ---------------------------------------------------------------- */

static qb_bar_t good_bar(void) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    qb_symbol_set(&b.symbol, "AAPL", NULL, 0);
    strcpy(b.timeframe, "1m");
    b.ts = 1704205800000000000LL; /* 2024-01-02T14:30:00Z */
    b.open = D("10.5");
    b.high = D("11");
    b.low = D("10");
    b.close = D("10.75");
    b.volume = D("1234.5");
    return b;
}

static void expect_bar_error(const qb_bar_t *b, const char *msg) {
    char err[256] = "";
    assert_int_equal(qb_bar_validate(b, err, sizeof err), QB_ERR_INVALID);
    if (strcmp(err, msg) != 0) fail_msg("message \"%s\", want \"%s\"", err, msg);
}

static void test_bar_validate(void **state) {
    qb_bar_t b = good_bar();
    assert_int_equal(qb_bar_validate(&b, NULL, 0), QB_OK);
    b.volume = 0;
    b.open = b.high = b.low = b.close = D("10"); /* a flat bar is fine */
    assert_int_equal(qb_bar_validate(&b, NULL, 0), QB_OK);

    const char *who = "bar AAPL 1m 2024-01-02T14:30:00Z: ";
    char want[256];
#define EXPECT(field, value, text)                                             \
    do {                                                                       \
        b = good_bar();                                                        \
        b.field = D(value);                                                    \
        snprintf(want, sizeof want, "%s%s", who, text);                        \
        expect_bar_error(&b, want);                                            \
    } while (0)
    EXPECT(high, "9.5", "high 9.5 < low 10");
    EXPECT(low, "0", "low 0 is not > 0");
    EXPECT(open, "-1", "open -1 is not > 0");
    EXPECT(close, "0", "close 0 is not > 0");
    EXPECT(high, "-3", "high -3 is not > 0");
    EXPECT(open, "11.00000001", "open 11.00000001 outside [low 10, high 11]");
    EXPECT(open, "9.99999999", "open 9.99999999 outside [low 10, high 11]");
    EXPECT(close, "12", "close 12 outside [low 10, high 11]");
    EXPECT(close, "9", "close 9 outside [low 10, high 11]");
    EXPECT(volume, "-0.00000001", "volume -0.00000001 is negative");
#undef EXPECT
    b = good_bar();
    strcpy(b.timeframe, "2m");
    snprintf(want, sizeof want, "bar AAPL 2m 2024-01-02T14:30:00Z: unknown timeframe \"2m\"");
    expect_bar_error(&b, want);
    b = good_bar();
    memset(b.timeframe, 'x', sizeof b.timeframe); /* not terminated */
    assert_int_equal(qb_bar_validate(&b, NULL, 0), QB_ERR_INVALID);
    b = good_bar();
    memset(&b.symbol, 0, sizeof b.symbol);
    expect_bar_error(&b, "bar  1m 2024-01-02T14:30:00Z: symbol is empty");
}

/* ---- position ----------------------------------------------------------- */

static qb_fill_t fill(const char *sym, qb_side_t side, const char *qty,
                      const char *price, const char *commission) {
    qb_fill_t f;
    memset(&f, 0, sizeof f);
    strcpy(f.fill_id, "F1");
    qb_symbol_set(&f.symbol, sym, NULL, 0);
    f.side = side;
    f.qty = D(qty);
    f.price = D(price);
    f.commission = D(commission);
    return f;
}

/* Apply a fill and check qty, avg_cost and realized P&L afterwards. */
static void step(qb_position_t *p, qb_side_t side, const char *qty,
                 const char *price, const char *comm, const char *want_qty,
                 const char *want_avg, const char *want_pnl) {
    qb_fill_t f = fill("XYZ", side, qty, price, comm);
    char err[256] = "";
    if (qb_position_apply_fill(p, &f, err, sizeof err) != QB_OK)
        fail_msg("apply %s %s @ %s: %s", qb_side_name(side), qty, price, err);
    assert_dec(p->qty, want_qty);
    assert_dec(p->avg_cost, want_avg);
    assert_dec(p->realized_pnl, want_pnl);
    assert_string_equal(p->symbol.s, "XYZ");
}

static void test_position_long(void **state) {
    qb_position_t p;
    memset(&p, 0, sizeof p);
    step(&p, QB_SIDE_BUY, "100", "10", "1", "100", "10", "-1");         /* open */
    step(&p, QB_SIDE_BUY, "50", "13", "0.5", "150", "11", "-1.5");      /* add */
    step(&p, QB_SIDE_SELL, "60", "12", "0.6", "90", "11", "57.9");      /* +60 */
    step(&p, QB_SIDE_SELL, "90", "10.5", "0", "0", "0", "12.9");        /* -45, flat */
    step(&p, QB_SIDE_BUY, "10", "20", "0", "10", "20", "12.9");         /* reopen */
}

static void test_position_short_and_flip(void **state) {
    qb_position_t p;
    memset(&p, 0, sizeof p);
    step(&p, QB_SIDE_SELL, "10", "100", "0", "-10", "100", "0");        /* open short */
    step(&p, QB_SIDE_SELL, "10", "110", "0", "-20", "105", "0");        /* add */
    step(&p, QB_SIDE_BUY, "5", "90", "0", "-15", "105", "75");          /* cover 5: +75 */
    step(&p, QB_SIDE_BUY, "25", "95", "2", "10", "95", "223");          /* +150 -2, flip long */
    step(&p, QB_SIDE_SELL, "30", "96", "0", "-20", "96", "233");        /* +10, flip short */
    step(&p, QB_SIDE_BUY, "20", "97", "0", "0", "0", "213");            /* -20, flat */
}

static void test_position_rounding(void **state) {
    qb_position_t p;
    memset(&p, 0, sizeof p);
    /* avg 10.0000000025 -> 10 (below half) */
    step(&p, QB_SIDE_BUY, "3", "10", "0", "3", "10", "0");
    step(&p, QB_SIDE_BUY, "1", "10.00000001", "0", "4", "10", "0");
    memset(&p, 0, sizeof p);
    /* avg 10.000000015: a tie, to the even 10.00000002 */
    step(&p, QB_SIDE_BUY, "1", "10.00000001", "0", "1", "10.00000001", "0");
    step(&p, QB_SIDE_BUY, "1", "10.00000002", "0", "2", "10.00000002", "0");
    memset(&p, 0, sizeof p);
    /* P&L 0.5 x 0.00000001 = 0.000000005: a tie, to the even 0 */
    step(&p, QB_SIDE_BUY, "0.00000003", "10", "0", "0.00000003", "10", "0");
    step(&p, QB_SIDE_SELL, "0.00000001", "10.5", "0", "0.00000002", "10", "0");
    /* 0.5 x 0.00000002 = 0.00000001 exactly */
    step(&p, QB_SIDE_SELL, "0.00000002", "10.5", "0", "0", "0", "0.00000001");
    memset(&p, 0, sizeof p);
    /* (0.5 x 43000.12345678 + 0.25 x 42000) / 0.75 = 42666.748971186666... */
    step(&p, QB_SIDE_BUY, "0.5", "43000.12345678", "0.1", "0.5", "43000.12345678", "-0.1");
    step(&p, QB_SIDE_BUY, "0.25", "42000", "0.05", "0.75", "42666.74897119", "-0.15");
    /* sell 0.3 @ 44000: (44000 - 42666.74897119) x 0.3 = 399.975308643 */
    step(&p, QB_SIDE_SELL, "0.3", "44000", "0", "0.45", "42666.74897119", "399.82530864");
}

static void test_position_errors(void **state) {
    qb_position_t p, before;
    memset(&p, 0, sizeof p);
    step(&p, QB_SIDE_BUY, "1", "10", "0", "1", "10", "0");
    before = p;
    char err[256];
    struct { qb_fill_t f; const char *msg; } bad[] = {
        {fill("ABC", QB_SIDE_BUY, "1", "10", "0"), "fill F1 for ABC applied to a position in XYZ"},
        {fill("XYZ", QB_SIDE_BUY, "0", "10", "0"), "fill F1: qty 0 is not > 0"},
        {fill("XYZ", QB_SIDE_SELL, "-1", "10", "0"), "fill F1: qty -1 is not > 0"},
        {fill("XYZ", QB_SIDE_BUY, "1", "0", "0"), "fill F1: price 0 is not > 0"},
        {fill("XYZ", (qb_side_t)0, "1", "10", "0"), "fill F1: invalid side 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(qb_position_apply_fill(&p, &bad[i].f, err, sizeof err),
                         QB_ERR_INVALID);
        assert_string_equal(err, bad[i].msg);
        assert_memory_equal(&p, &before, sizeof p);
    }
    qb_fill_t nosym = fill("XYZ", QB_SIDE_BUY, "1", "10", "0");
    memset(&nosym.symbol, 0, sizeof nosym.symbol);
    assert_int_equal(qb_position_apply_fill(&p, &nosym, NULL, 0), QB_ERR_INVALID);
    /* overflow: quantity, P&L and commission; the position stays as it was */
    qb_fill_t big = fill("XYZ", QB_SIDE_BUY, "92233720368", "1", "0");
    assert_int_equal(qb_position_apply_fill(&p, &big, err, sizeof err), QB_ERR_OVERFLOW);
    assert_non_null(strstr(err, "numeric overflow"));
    qb_fill_t dear = fill("XYZ", QB_SIDE_SELL, "1", "92233720368", "0");
    assert_int_equal(qb_position_apply_fill(&p, &dear, NULL, 0), QB_OK);
    assert_dec(p.realized_pnl, "92233720358");
    before = p;
    qb_fill_t more = fill("XYZ", QB_SIDE_BUY, "1", "10", "-20");
    assert_int_equal(qb_position_apply_fill(&p, &more, NULL, 0), QB_ERR_OVERFLOW);
    assert_memory_equal(&p, &before, sizeof p);
    /* a rebate (negative commission) adds to realized P&L */
    memset(&p, 0, sizeof p);
    step(&p, QB_SIDE_BUY, "1", "10", "-0.25", "1", "10", "0.25");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symbol),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_state_machine_table),
        cmocka_unit_test(test_timeframes),
        cmocka_unit_test(test_bar_validate),
        cmocka_unit_test(test_position_long),
        cmocka_unit_test(test_position_short_and_flip),
        cmocka_unit_test(test_position_rounding),
        cmocka_unit_test(test_position_errors),
    };
    return cmocka_run_group_tests_name("types", tests, NULL, NULL);
}
