/* test_decimal.c — qb_decimal: fixed vectors for every rule, and property
 * tests over random values (seeded, QB_TEST_SEED repeats a run) that check
 * parse/format round trips over the whole int64 range and every arithmetic
 * result against an independent __int128 reference. The reference rounds
 * from floor(n/d) and the doubled remainder, a different route from the
 * library's truncate-and-compare-halves. */
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
#include "qb_test.h"

typedef qb_dec_wide_t wide;

#define ITERS 100000
#define NMODES 5
#define SENTINEL ((qb_dec_t)0x5a5a5a5a5a5a5a5aLL)

static uint64_t rng;

static uint64_t rnd(void) { return qb_test_rand(&rng); }

static const qb_round_t modes[NMODES] = {QB_ROUND_HALF_EVEN, QB_ROUND_HALF_UP,
                                         QB_ROUND_DOWN, QB_ROUND_FLOOR,
                                         QB_ROUND_CEIL};

static wide pow10w(int k) {
    wide p = 1;
    while (k-- > 0) p *= 10;
    return p;
}

/* Random values shaped to hit every region: full range, the extremes, small
 * numbers, round "price-like" numbers and every bit length. */
static qb_dec_t rnd_dec(void) {
    uint64_t r = rnd();
    int neg = (int)(rnd() & 1);
    qb_dec_t v;
    switch (r % 6) {
    case 0: return (qb_dec_t)rnd();
    case 1: {
        qb_dec_t off = (qb_dec_t)(rnd() % 1000);
        return neg ? INT64_MIN + off : INT64_MAX - off;
    }
    case 2: v = (qb_dec_t)(rnd() % 2000); break;
    case 3: v = (qb_dec_t)(rnd() % 1000000) * (qb_dec_t)pow10w((int)(rnd() % 13)); break;
    default: {
        int bits = (int)(rnd() % 64);
        v = bits ? (qb_dec_t)(rnd() >> (64 - bits)) : 0;
    }
    }
    return neg ? -v : v;
}

/* ---- reference ---------------------------------------------------------- */

static wide ref_floor_div(wide n, wide d) { /* d > 0 */
    wide q = n / d;
    if (q * d > n) q--;
    return q;
}

/* n / d rounded to an integer per mode. */
static wide ref_round(wide n, wide d, qb_round_t mode) {
    if (d < 0) {
        n = -n;
        d = -d;
    }
    wide lo = ref_floor_div(n, d), hi = lo + 1;
    wide rem2 = 2 * (n - lo * d); /* in [0, 2d) */
    if (rem2 == 0) return lo;
    switch (mode) {
    case QB_ROUND_FLOOR: return lo;
    case QB_ROUND_CEIL: return hi;
    case QB_ROUND_DOWN: return n > 0 ? lo : hi;
    case QB_ROUND_HALF_UP:
        if (rem2 != d) return rem2 < d ? lo : hi;
        return n > 0 ? hi : lo;
    case QB_ROUND_HALF_EVEN:
        if (rem2 != d) return rem2 < d ? lo : hi;
        return lo % 2 == 0 ? lo : hi;
    }
    fail();
    return 0;
}

static int fits(wide v) { return v >= INT64_MIN && v <= INT64_MAX; }

/* Check one library result against the reference value. */
static void expect_ref(qb_err_t err, qb_dec_t got, wide ref, const char *what,
                       qb_dec_t a, qb_dec_t b, qb_round_t mode) {
    if (fits(ref) && err == QB_OK && got == (qb_dec_t)ref) return;
    if (!fits(ref) && err == QB_ERR_OVERFLOW && got == SENTINEL) return;
    fail_msg("%s(%lld, %lld, %s): err %s got %lld, ref %s%lld", what,
             (long long)a, (long long)b, qb_round_name(mode), qb_err_name(err),
             (long long)got, fits(ref) ? "" : "OVERFLOW ",
             fits(ref) ? (long long)ref : 0LL);
}

static void wide_str(wide v, char *buf) {
    char rev[48];
    int n = 0, neg = v < 0;
    unsigned __int128 m = neg ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        rev[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    if (neg) *buf++ = '-';
    while (n) *buf++ = rev[--n];
    *buf = '\0';
}

static qb_err_t parse_s(const char *s, qb_dec_t *out) {
    return qb_dec_parse(s, strlen(s), out);
}

static qb_err_t parse_round_s(const char *s, qb_dec_t *out, qb_round_t m) {
    return qb_dec_parse_round(s, strlen(s), out, m);
}

/* ---- formatting --------------------------------------------------------- */

static void test_format_vectors(void **state) {
    static const struct { qb_dec_t v; const char *s; } t[] = {
        {0, "0"},
        {150000000, "1.5"},
        {-1, "-0.00000001"},
        {10000000000LL, "100"},
        {12345600000LL, "123.456"},
        {-12345000000LL, "-123.45"},
        {1, "0.00000001"},
        {10, "0.0000001"},
        {100000001, "1.00000001"},
        {INT64_MAX, "92233720368.54775807"},
        {INT64_MIN, "-92233720368.54775808"},
        {INT64_MIN + 8, "-92233720368.547758"},
    };
    char buf[QB_DEC_STRLEN];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = qb_dec_format(t[i].v, buf, sizeof buf);
        assert_string_equal(buf, t[i].s);
        assert_int_equal(n, strlen(t[i].s));
    }
}

static void test_format_truncates_like_snprintf(void **state) {
    char buf[8];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(qb_dec_format(-150000000, buf, 0), 4); /* "-1.5" */
    assert_int_equal(buf[0], 'x');
    assert_int_equal(qb_dec_format(-150000000, NULL, 0), 4);
    assert_int_equal(qb_dec_format(-150000000, buf, 1), 4);
    assert_string_equal(buf, "");
    assert_int_equal(qb_dec_format(-150000000, buf, 3), 4);
    assert_string_equal(buf, "-1");
    assert_int_equal(qb_dec_format_fixed(INT64_MIN, 8, buf, sizeof buf), 21);
    assert_string_equal(buf, "-922337");
}

static void test_format_fixed_vectors(void **state) {
    static const struct { qb_dec_t v; int d; const char *s; } t[] = {
        {100500000, 2, "1.00"},          /* 1.005: tie -> even */
        {101500000, 2, "1.02"},          /* 1.015: tie -> even */
        {101500001, 2, "1.02"},
        {100500001, 2, "1.01"},          /* above the tie */
        {700000000, 2, "7.00"},
        {-400000, 2, "0.00"},            /* -0.004: no "-0.00" */
        {-500000, 2, "0.00"},            /* -0.005: tie -> 0 */
        {-1500000, 2, "-0.02"},          /* -0.015: tie -> even */
        {250000000, 0, "2"},
        {350000000, 0, "4"},
        {-250000000, 0, "-2"},
        {123456789, 8, "1.23456789"},
        {123456789, 9, "1.23456789"},    /* clamped to 8 */
        {123456789, -1, "1"},            /* clamped to 0 */
        {INT64_MAX, 2, "92233720368.55"},
        {INT64_MIN, 2, "-92233720368.55"},
        {INT64_MIN, 0, "-92233720369"},
        {0, 3, "0.000"},
    };
    char buf[QB_DEC_STRLEN];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qb_dec_format_fixed(t[i].v, t[i].d, buf, sizeof buf);
        assert_string_equal(buf, t[i].s);
    }
}

/* format_fixed's text parses back to what round_to(HALF_EVEN) computes. */
static void test_format_fixed_matches_round_to(void **state) {
    char buf[QB_DEC_STRLEN];
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t v = rnd_dec(), r, p;
        int d = (int)(rnd() % 9);
        qb_dec_format_fixed(v, d, buf, sizeof buf);
        if (qb_dec_round_to(v, d, QB_ROUND_HALF_EVEN, &r) != QB_OK) continue;
        assert_int_equal(parse_s(buf, &p), QB_OK);
        assert_int_equal(p, r);
        const char *dot = strchr(buf, '.');
        assert_int_equal(dot ? (int)strlen(dot + 1) : 0, d);
    }
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_vectors(void **state) {
    static const struct { const char *s; qb_err_t err; qb_dec_t v; } t[] = {
        {"-123.456", QB_OK, -12345600000LL},
        {"+5", QB_OK, 500000000},
        {"0.00000001", QB_OK, 1},
        {".5", QB_OK, 50000000},
        {"7.", QB_OK, 700000000},
        {"-.5", QB_OK, -50000000},
        {"-0", QB_OK, 0},
        {"007.50", QB_OK, 750000000},
        {"0000000000000000000000000000000000001", QB_OK, 100000000},
        {"1.0000000000000000000000", QB_OK, 100000000},
        {"92233720368.54775807", QB_OK, INT64_MAX},
        {"-92233720368.54775808", QB_OK, INT64_MIN},
        {"92233720368.54775808", QB_ERR_OVERFLOW, 0},
        {"-92233720368.54775809", QB_ERR_OVERFLOW, 0},
        {"92233720369", QB_ERR_OVERFLOW, 0},
        {"100000000000000000000000000000", QB_ERR_OVERFLOW, 0},
        {"18446744073709551616", QB_ERR_OVERFLOW, 0}, /* 2^64 */
        {"99999999999.123456789", QB_ERR_OVERFLOW, 0}, /* overflow first */
        {"1.000000001", QB_ERR_RANGE, 0},
        {"0.000000005", QB_ERR_RANGE, 0},
        {"-0.000000000000000001", QB_ERR_RANGE, 0},
        {"", QB_ERR_PARSE, 0},
        {".", QB_ERR_PARSE, 0},
        {"-", QB_ERR_PARSE, 0},
        {"+", QB_ERR_PARSE, 0},
        {"-.", QB_ERR_PARSE, 0},
        {"1.2.3", QB_ERR_PARSE, 0},
        {"abc", QB_ERR_PARSE, 0},
        {"1e5", QB_ERR_PARSE, 0},
        {"--1", QB_ERR_PARSE, 0},
        {"+-1", QB_ERR_PARSE, 0},
        {" 1", QB_ERR_PARSE, 0},
        {"1 ", QB_ERR_PARSE, 0},
        {"1,5", QB_ERR_PARSE, 0},
        {"1_000", QB_ERR_PARSE, 0},
        {"0x10", QB_ERR_PARSE, 0},
        {"inf", QB_ERR_PARSE, 0},
        {"nan", QB_ERR_PARSE, 0},
        {"١", QB_ERR_PARSE, 0}, /* a non-ASCII digit */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qb_dec_t v = SENTINEL;
        qb_err_t err = parse_s(t[i].s, &v);
        if (err != t[i].err)
            fail_msg("parse \"%s\": %s, want %s", t[i].s, qb_err_name(err),
                     qb_err_name(t[i].err));
        assert_int_equal(v, t[i].err == QB_OK ? t[i].v : SENTINEL);
    }
}

static void test_parse_reads_only_len(void **state) {
    qb_dec_t v;
    assert_int_equal(qb_dec_parse("1234", 2, &v), QB_OK);
    assert_int_equal(v, 1200000000);
    assert_int_equal(qb_dec_parse("1.5x", 3, &v), QB_OK);
    assert_int_equal(v, 150000000);
    assert_int_equal(qb_dec_parse("1.5", 0, &v), QB_ERR_PARSE);
    assert_int_equal(qb_dec_parse(NULL, 0, &v), QB_ERR_PARSE);
    assert_int_equal(qb_dec_parse_round("2e3", 2, &v, QB_ROUND_DOWN), QB_ERR_PARSE);
    /* Exact-size heap copies without a NUL: ASan flags any over-read. */
    static const char *const texts[] = {"12.5", "-0.00000001", "7.", ".5", "1e5",
                                        "99999999999999999999", "1.000000001"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t n = strlen(texts[i]);
        char *p = malloc(n);
        assert_non_null(p);
        memcpy(p, texts[i], n);
        (void)qb_dec_parse(p, n, &v);
        (void)qb_dec_parse_round(p, n, &v, QB_ROUND_CEIL);
        free(p);
    }
}

/* format -> parse is the identity over all of int64, also for the
 * variants a writer might produce (sign, leading zeros, trailing zeros). */
static void test_roundtrip_property(void **state) {
    char buf[QB_DEC_STRLEN], var[QB_DEC_STRLEN + 32];
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t v = i < 4 ? (qb_dec_t[]){INT64_MIN, INT64_MAX, 0, -1}[i] : rnd_dec();
        qb_dec_t p = SENTINEL;
        size_t n = qb_dec_format(v, buf, sizeof buf);
        assert_int_equal(qb_dec_parse(buf, n, &p), QB_OK);
        assert_int_equal(p, v);
        assert_int_equal(qb_dec_parse_round(buf, n, &p, modes[i % NMODES]), QB_OK);
        assert_int_equal(p, v);
        n = qb_dec_format_fixed(v, 8, buf, sizeof buf);
        assert_int_equal(qb_dec_parse(buf, n, &p), QB_OK);
        assert_int_equal(p, v);
        /* "+000<digits>.<frac>000000000" and "<text>e0". */
        const char *mag = buf[0] == '-' ? buf + 1 : buf;
        snprintf(var, sizeof var, "%s000%s000000000", v < 0 ? "-" : "+", mag);
        assert_int_equal(parse_s(var, &p), QB_OK);
        assert_int_equal(p, v);
        snprintf(var, sizeof var, "%se0", buf);
        assert_int_equal(parse_round_s(var, &p, QB_ROUND_HALF_EVEN), QB_OK);
        assert_int_equal(p, v);
    }
}

/* Random digit strings with up to 25 integer digits: overflow exactly when
 * the __int128 value leaves the range. */
static void test_parse_overflow_property(void **state) {
    char s[64];
    for (int i = 0; i < ITERS; i++) {
        int ilen = 1 + (int)(rnd() % 25), flen = (int)(rnd() % 9), n = 0;
        int neg = (int)(rnd() & 1);
        wide ref = 0;
        if (neg) s[n++] = '-';
        for (int k = 0; k < ilen + flen; k++) {
            if (k == ilen) s[n++] = '.';
            /* bias toward 9s so values cluster near the limits */
            int d = (rnd() % 3) ? 9 - (int)(rnd() % 2) : (int)(rnd() % 10);
            if (k == 0 && ilen > 11) d = (int)(rnd() % 10);
            s[n++] = (char)('0' + d);
            ref = ref * 10 + d;
        }
        s[n] = '\0';
        ref *= pow10w(8 - flen);
        if (neg) ref = -ref;
        qb_dec_t v = SENTINEL;
        qb_err_t err = parse_s(s, &v);
        if (fits(ref)) {
            if (err != QB_OK || v != (qb_dec_t)ref) fail_msg("parse %s", s);
        } else if (err != QB_ERR_OVERFLOW || v != SENTINEL) {
            fail_msg("parse %s: %s, want OVERFLOW", s, qb_err_name(err));
        }
    }
}

/* Text with 1..12 digits past the 8th decimal: qb_dec_parse says RANGE (or
 * accepts all-zero extras), qb_dec_parse_round matches the reference in
 * every mode, also when written as mantissa + exponent with the decimal
 * point anywhere. */
static void test_parse_extra_digits_property(void **state) {
    char base[QB_DEC_STRLEN], s[96], digits[64];
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t v = rnd_dec();
        int k = 1 + (int)(rnd() % 12);
        wide extra = (wide)(rnd() % (uint64_t)pow10w(k));
        if (rnd() % 4 == 0) extra = 0;
        if (rnd() % 4 == 0) extra = 5 * pow10w(k - 1); /* exact tie */
        qb_dec_format_fixed(v, 8, base, sizeof base);
        char ext[16];
        snprintf(ext, sizeof ext, "%0*lld", k, (long long)extra);
        snprintf(s, sizeof s, "%s%s", base, ext);

        wide mag = (v < 0 ? -(wide)v : (wide)v) * pow10w(k) + extra;
        wide n = v < 0 ? -mag : mag;
        qb_dec_t p = SENTINEL;
        qb_err_t err = parse_s(s, &p);
        if (extra == 0) assert_true(err == QB_OK && p == v);
        else assert_true(err == QB_ERR_RANGE && p == SENTINEL);

        qb_round_t m = modes[rnd() % NMODES];
        p = SENTINEL;
        err = parse_round_s(s, &p, m);
        expect_ref(err, p, ref_round(n, pow10w(k), m), "parse_round", v,
                   (qb_dec_t)extra, m);

        /* the same number as <digits with a moved point>e<exp> */
        wide_str(mag, digits);
        int nd = (int)strlen(digits), point = (int)(rnd() % (unsigned)(nd + 1));
        int exp = (nd - point) - (8 + k);
        snprintf(s, sizeof s, "%s%.*s.%se%d", v < 0 ? "-" : "", point, digits,
                 digits + point, exp);
        p = SENTINEL;
        err = parse_round_s(s, &p, m);
        expect_ref(err, p, ref_round(n, pow10w(k), m), s, v, (qb_dec_t)extra, m);
    }
}

static void test_parse_round_vectors(void **state) {
    static const struct {
        const char *s;
        qb_round_t m;
        qb_err_t err;
        qb_dec_t v;
    } t[] = {
        {"1.5e-3", QB_ROUND_HALF_EVEN, QB_OK, 150000},
        {"2E4", QB_ROUND_HALF_EVEN, QB_OK, 2000000000000LL},
        {"1e+2", QB_ROUND_HALF_EVEN, QB_OK, 10000000000LL},
        {".5e1", QB_ROUND_HALF_EVEN, QB_OK, 500000000},
        {"5.e-1", QB_ROUND_HALF_EVEN, QB_OK, 50000000},
        {"-1.25E-8", QB_ROUND_HALF_EVEN, QB_OK, -1},
        {"-1.25E-8", QB_ROUND_FLOOR, QB_OK, -2},
        {"0.000000015", QB_ROUND_HALF_EVEN, QB_OK, 2},
        {"0.000000025", QB_ROUND_HALF_EVEN, QB_OK, 2},
        {"0.000000025", QB_ROUND_HALF_UP, QB_OK, 3},
        {"0.0000000250000000000001", QB_ROUND_HALF_EVEN, QB_OK, 3},
        {"-0.000000025", QB_ROUND_HALF_UP, QB_OK, -3},
        {"0.000000029", QB_ROUND_DOWN, QB_OK, 2},
        {"-0.000000029", QB_ROUND_DOWN, QB_OK, -2},
        {"-0.000000021", QB_ROUND_FLOOR, QB_OK, -3},
        {"0.000000021", QB_ROUND_CEIL, QB_OK, 3},
        {"-0.000000029", QB_ROUND_CEIL, QB_OK, -2},
        {"0.000000001", QB_ROUND_HALF_EVEN, QB_OK, 0},
        {"-0.000000001", QB_ROUND_CEIL, QB_OK, 0},
        {"1e-999999999999999999999", QB_ROUND_HALF_EVEN, QB_OK, 0},
        {"1e-999999999999999999999", QB_ROUND_CEIL, QB_OK, 1},
        {"-1e-999999999999999999999", QB_ROUND_FLOOR, QB_OK, -1},
        {"0e999999999999999999999", QB_ROUND_HALF_EVEN, QB_OK, 0},
        {"1e999999999999999999999", QB_ROUND_HALF_EVEN, QB_ERR_OVERFLOW, 0},
        {"92233720368.547758074", QB_ROUND_HALF_EVEN, QB_OK, INT64_MAX},
        {"92233720368.547758075", QB_ROUND_HALF_EVEN, QB_ERR_OVERFLOW, 0},
        {"-92233720368.547758085", QB_ROUND_HALF_EVEN, QB_OK, INT64_MIN},
        {"-92233720368.547758085", QB_ROUND_HALF_UP, QB_ERR_OVERFLOW, 0},
        {"9223372036854775807e-8", QB_ROUND_DOWN, QB_OK, INT64_MAX},
        {"1e", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"1e+", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"e5", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {".e5", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"1e5.0", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"1e5e5", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"1.2.3", QB_ROUND_HALF_EVEN, QB_ERR_PARSE, 0},
        {"1", (qb_round_t)99, QB_ERR_INVALID, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qb_dec_t v = SENTINEL;
        qb_err_t err = parse_round_s(t[i].s, &v, t[i].m);
        if (err != t[i].err || (err == QB_OK && v != t[i].v))
            fail_msg("parse_round \"%s\" %s: %s %lld", t[i].s,
                     qb_round_name(t[i].m), qb_err_name(err), (long long)v);
        if (err != QB_OK) assert_int_equal(v, SENTINEL);
    }
}

/* ---- arithmetic ----------------------------------------------------------- */

static void test_add_sub_property(void **state) {
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t a = rnd_dec(), b = rnd_dec(), r[4] = {SENTINEL, SENTINEL,
                                                       SENTINEL, SENTINEL};
        qb_err_t err[4] = {qb_dec_add(a, b, &r[0]), qb_dec_sub(a, b, &r[1]),
                           qb_dec_neg(a, &r[2]), qb_dec_abs(a, &r[3])};
        expect_ref(err[0], r[0], (wide)a + b, "add", a, b, 0);
        expect_ref(err[1], r[1], (wide)a - b, "sub", a, b, 0);
        expect_ref(err[2], r[2], -(wide)a, "neg", a, 0, 0);
        expect_ref(err[3], r[3], a < 0 ? -(wide)a : a, "abs", a, 0, 0);
    }
}

static void test_add_sub_edges(void **state) {
    qb_dec_t r = SENTINEL;
    assert_int_equal(qb_dec_add(INT64_MAX, 1, &r), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_sub(INT64_MIN, 1, &r), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_neg(INT64_MIN, &r), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_abs(INT64_MIN, &r), QB_ERR_OVERFLOW);
    assert_int_equal(r, SENTINEL);
    assert_int_equal(qb_dec_add(INT64_MAX, INT64_MIN, &r), QB_OK);
    assert_int_equal(r, -1);
    assert_int_equal(qb_dec_sub(-1, INT64_MAX, &r), QB_OK);
    assert_int_equal(r, INT64_MIN);
}

static void test_mul_property(void **state) {
    int ok = 0;
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t a = rnd_dec(), b = rnd_dec();
        for (int m = 0; m < NMODES; m++) {
            qb_dec_t r = SENTINEL;
            qb_err_t err = qb_dec_mul(a, b, &r, modes[m]);
            expect_ref(err, r, ref_round((wide)a * b, QB_DEC_SCALE, modes[m]),
                       "mul", a, b, modes[m]);
            ok += err == QB_OK;
        }
    }
    assert_true(ok > ITERS); /* most cases are in range, not all overflows */
}

static void test_div_property(void **state) {
    int ok = 0;
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t a = rnd_dec(), b = rnd_dec();
        if (b == 0) b = 1;
        for (int m = 0; m < NMODES; m++) {
            qb_dec_t r = SENTINEL;
            qb_err_t err = qb_dec_div(a, b, &r, modes[m]);
            expect_ref(err, r, ref_round((wide)a * QB_DEC_SCALE, b, modes[m]),
                       "div", a, b, modes[m]);
            ok += err == QB_OK;
        }
    }
    assert_true(ok > ITERS);
}

/* Hand-checked ties and near-ties in units of 1e-8. */
static void test_mul_div_rounding_vectors(void **state) {
    static const struct {
        char op;
        qb_dec_t a, b;
        qb_dec_t want[NMODES]; /* HALF_EVEN, HALF_UP, DOWN, FLOOR, CEIL */
    } t[] = {
        {'*', 5, 50000000, {2, 3, 2, 2, 3}},       /* 2.5 units */
        {'*', 7, 50000000, {4, 4, 3, 3, 4}},       /* 3.5 */
        {'*', -5, 50000000, {-2, -3, -2, -3, -2}}, /* -2.5 */
        {'*', -7, 50000000, {-4, -4, -3, -4, -3}}, /* -3.5 */
        {'*', 5, 50000001, {3, 3, 2, 2, 3}},       /* 2.50000005 */
        {'*', 5, -49999999, {-2, -2, -2, -3, -2}}, /* -2.49999995 */
        {'*', 150000000, 150000000, {225000000, 225000000, 225000000, 225000000, 225000000}},
        {'/', 100000000, 300000000, {33333333, 33333333, 33333333, 33333333, 33333334}},
        {'/', 200000000, 300000000, {66666667, 66666667, 66666666, 66666666, 66666667}},
        {'/', -200000000, 300000000, {-66666667, -66666667, -66666666, -66666667, -66666666}},
        {'/', 1, 200000000, {0, 1, 0, 0, 1}},       /* 0.5 units */
        {'/', 3, 200000000, {2, 2, 1, 1, 2}},       /* 1.5 units */
        {'/', 1, -200000000, {0, -1, 0, -1, 0}},    /* -0.5 units */
        {'/', 1000000000, 400000000, {250000000, 250000000, 250000000, 250000000, 250000000}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (int m = 0; m < NMODES; m++) {
            qb_dec_t r = SENTINEL;
            qb_err_t err = t[i].op == '*' ? qb_dec_mul(t[i].a, t[i].b, &r, modes[m])
                                          : qb_dec_div(t[i].a, t[i].b, &r, modes[m]);
            if (err != QB_OK || r != t[i].want[m])
                fail_msg("%lld %c %lld %s: got %lld want %lld", (long long)t[i].a,
                         t[i].op, (long long)t[i].b, qb_round_name(modes[m]),
                         (long long)r, (long long)t[i].want[m]);
        }
    }
}

static void test_div_zero_and_bad_mode(void **state) {
    qb_dec_t r = SENTINEL;
    for (int m = 0; m < NMODES; m++) {
        assert_int_equal(qb_dec_div(rnd_dec(), 0, &r, modes[m]), QB_ERR_DIV_ZERO);
        assert_int_equal(qb_dec_div(0, 0, &r, modes[m]), QB_ERR_DIV_ZERO);
        assert_int_equal(qb_dec_div_wide(1, 0, &r, modes[m]), QB_ERR_DIV_ZERO);
    }
    assert_int_equal(qb_dec_mul(1, 1, &r, (qb_round_t)5), QB_ERR_INVALID);
    assert_int_equal(qb_dec_div(1, 1, &r, (qb_round_t)-1), QB_ERR_INVALID);
    assert_int_equal(r, SENTINEL);
    /* the overflow edges of division */
    assert_int_equal(qb_dec_div(INT64_MIN, -QB_DEC_SCALE, &r, QB_ROUND_DOWN),
                     QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_div(QB_DEC_SCALE * 10000000000LL, 1000000, &r,
                                QB_ROUND_DOWN), QB_ERR_OVERFLOW); /* 1e10/0.01 */
    assert_int_equal(r, SENTINEL);
    assert_int_equal(qb_dec_div(INT64_MIN, QB_DEC_SCALE, &r, QB_ROUND_DOWN), QB_OK);
    assert_int_equal(r, INT64_MIN);
}

static void test_div_wide(void **state) {
    /* VWAP of 100 @ 10.00 and 300 @ 10.01 = 10.0075 */
    wide pv = (wide)10000000000LL * 1000000000LL + (wide)30000000000LL * 1001000000LL;
    wide v = (wide)10000000000LL + 30000000000LL;
    qb_dec_t r = SENTINEL;
    assert_int_equal(qb_dec_div_wide(pv, v, &r, QB_ROUND_HALF_EVEN), QB_OK);
    assert_int_equal(r, 1000750000);
    wide wmin = (wide)((unsigned __int128)1 << 127);
    assert_int_equal(qb_dec_div_wide(wmin, 3, &r, QB_ROUND_DOWN), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_div_wide(1, wmin, &r, QB_ROUND_DOWN), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_div_wide((wide)INT64_MAX * 2, 2, &r, QB_ROUND_DOWN), QB_OK);
    assert_int_equal(r, INT64_MAX);
    assert_int_equal(qb_dec_div_wide((wide)INT64_MAX * 2 + 2, 2, &r, QB_ROUND_DOWN),
                     QB_ERR_OVERFLOW);
}

static void test_round_to_quantize_property(void **state) {
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t v = rnd_dec(), r = SENTINEL;
        qb_round_t m = modes[rnd() % NMODES];
        int d = (int)(rnd() % 9);
        wide step = pow10w(8 - d);
        qb_err_t err = qb_dec_round_to(v, d, m, &r);
        expect_ref(err, r, ref_round(v, step, m) * step, "round_to", v, d, m);
        qb_dec_t s = (qb_dec_t)(1 + rnd() % 100000000);
        if (rnd() % 8 == 0) s = rnd_dec() & INT64_MAX;
        if (s == 0) s = 1;
        r = SENTINEL;
        err = qb_dec_quantize(v, s, m, &r);
        expect_ref(err, r, ref_round(v, s, m) * s, "quantize", v, s, m);
    }
}

static void test_round_to_quantize_vectors(void **state) {
    qb_dec_t r;
    assert_int_equal(qb_dec_round_to(123456000, 2, QB_ROUND_HALF_EVEN, &r), QB_OK);
    assert_int_equal(r, 123000000); /* 1.23456 -> 1.23 */
    assert_int_equal(qb_dec_round_to(123456000, 2, QB_ROUND_CEIL, &r), QB_OK);
    assert_int_equal(r, 124000000);
    assert_int_equal(qb_dec_quantize(103000000, 5000000, QB_ROUND_HALF_EVEN, &r), QB_OK);
    assert_int_equal(r, 105000000); /* 1.03 to 0.05 -> 1.05 */
    assert_int_equal(qb_dec_quantize(103000000, 5000000, QB_ROUND_FLOOR, &r), QB_OK);
    assert_int_equal(r, 100000000);
    assert_int_equal(qb_dec_quantize(-103000000, 5000000, QB_ROUND_FLOOR, &r), QB_OK);
    assert_int_equal(r, -105000000);
    assert_int_equal(qb_dec_quantize(15000000000LL, 10000000000LL, QB_ROUND_HALF_EVEN, &r),
                     QB_OK);
    assert_int_equal(r, 20000000000LL); /* 150 to lots of 100 -> 200 */
    r = SENTINEL;
    assert_int_equal(qb_dec_round_to(1, 9, QB_ROUND_DOWN, &r), QB_ERR_INVALID);
    assert_int_equal(qb_dec_round_to(1, -1, QB_ROUND_DOWN, &r), QB_ERR_INVALID);
    assert_int_equal(qb_dec_quantize(1, 0, QB_ROUND_DOWN, &r), QB_ERR_INVALID);
    assert_int_equal(qb_dec_quantize(1, -5, QB_ROUND_DOWN, &r), QB_ERR_INVALID);
    assert_int_equal(qb_dec_round_to(INT64_MAX, 2, QB_ROUND_CEIL, &r), QB_ERR_OVERFLOW);
    assert_int_equal(r, SENTINEL);
    assert_int_equal(qb_dec_round_to(INT64_MAX, 2, QB_ROUND_FLOOR, &r), QB_OK);
    assert_int_equal(r, 9223372036854000000LL);
}

/* ---- conversions ---------------------------------------------------------- */

static void test_from_int_cmp_names(void **state) {
    qb_dec_t r = SENTINEL;
    assert_int_equal(qb_dec_from_int(-7, &r), QB_OK);
    assert_int_equal(r, -700000000);
    assert_int_equal(qb_dec_from_int(92233720368LL, &r), QB_OK);
    assert_int_equal(qb_dec_from_int(-92233720368LL, &r), QB_OK);
    r = SENTINEL;
    assert_int_equal(qb_dec_from_int(92233720369LL, &r), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_from_int(INT64_MIN, &r), QB_ERR_OVERFLOW);
    assert_int_equal(r, SENTINEL);
    assert_int_equal(qb_dec_cmp(1, 2), -1);
    assert_int_equal(qb_dec_cmp(INT64_MIN, INT64_MAX), -1);
    assert_int_equal(qb_dec_cmp(5, 5), 0);
    assert_int_equal(qb_dec_cmp(INT64_MAX, INT64_MIN), 1);
    for (int m = 0; m < NMODES; m++) {
        qb_round_t back;
        assert_int_equal(qb_round_parse(qb_round_name(modes[m]), &back), QB_OK);
        assert_int_equal(back, modes[m]);
    }
    qb_round_t back;
    assert_int_equal(qb_round_parse("HALF_EVEN", &back), QB_OK);
    assert_int_equal(back, QB_ROUND_HALF_EVEN);
    assert_int_equal(qb_round_parse("nearest", &back), QB_ERR_PARSE);
    assert_string_equal(qb_round_name((qb_round_t)42), "unknown");
}

static void test_from_double_vectors(void **state) {
    qb_dec_t r = SENTINEL;
    assert_int_equal(qb_dec_from_double(NAN, &r, QB_ROUND_HALF_EVEN), QB_ERR_INVALID);
    assert_int_equal(qb_dec_from_double(INFINITY, &r, QB_ROUND_HALF_EVEN), QB_ERR_INVALID);
    assert_int_equal(qb_dec_from_double(-INFINITY, &r, QB_ROUND_HALF_EVEN), QB_ERR_INVALID);
    assert_int_equal(qb_dec_from_double(1e11, &r, QB_ROUND_HALF_EVEN), QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_from_double(-1e300, &r, QB_ROUND_HALF_EVEN), QB_ERR_OVERFLOW);
    /* the double nearest 92233720368.54775807 is 92233720368.5477600097... */
    assert_int_equal(qb_dec_from_double(92233720368.54775807, &r, QB_ROUND_DOWN),
                     QB_ERR_OVERFLOW);
    assert_int_equal(qb_dec_from_double(-92233720368.54776, &r, QB_ROUND_DOWN),
                     QB_ERR_OVERFLOW); /* -92233720368.547760009... < min */
    assert_int_equal(qb_dec_from_double(1, &r, (qb_round_t)7), QB_ERR_INVALID);
    assert_int_equal(r, SENTINEL);
    static const struct { double d; qb_round_t m; qb_dec_t want; } t[] = {
        {0.1, QB_ROUND_HALF_EVEN, 10000000},
        {0.1, QB_ROUND_CEIL, 10000001},  /* 0.1000000000000000055... */
        {0.29, QB_ROUND_HALF_EVEN, 29000000},
        {0.29, QB_ROUND_FLOOR, 28999999}, /* 0.2899999999999999800... */
        {-0.29, QB_ROUND_CEIL, -28999999},
        {1.5, QB_ROUND_DOWN, 150000000},
        {-123.456, QB_ROUND_HALF_EVEN, -12345600000LL},
        {0.0, QB_ROUND_CEIL, 0},
        {-0.0, QB_ROUND_FLOOR, 0},
        {5e-324, QB_ROUND_HALF_EVEN, 0},
        {5e-324, QB_ROUND_CEIL, 1},
        {-5e-324, QB_ROUND_FLOOR, -1},
        {0.000000005, QB_ROUND_HALF_EVEN, 1}, /* the double is just above the tie */
        {92233720368.0, QB_ROUND_HALF_EVEN, 9223372036800000000LL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (qb_dec_from_double(t[i].d, &r, t[i].m) != QB_OK || r != t[i].want)
            fail_msg("from_double(%.17g, %s) = %lld, want %lld", t[i].d,
                     qb_round_name(t[i].m), (long long)r, (long long)t[i].want);
    }
}

/* from_double converts the exact binary value: compare with the exact
 * decimal expansion printed by glibc and parsed with qb_dec_parse_round. */
static void test_from_double_property(void **state) {
    char text[256];
    for (int i = 0; i < ITERS; i++) {
        double d = ldexp(1.0 + (double)(rnd() >> 12) / 0x1p52, (int)(rnd() % 97) - 60);
        if (rnd() & 1) d = -d;
        qb_round_t m = modes[rnd() % NMODES];
        snprintf(text, sizeof text, "%.120f", d); /* exact: <= 112 binary places */
        qb_dec_t want = SENTINEL, got = SENTINEL;
        qb_err_t werr = parse_round_s(text, &want, m);
        qb_err_t gerr = qb_dec_from_double(d, &got, m);
        if (gerr != werr || got != want)
            fail_msg("from_double(%a, %s): %s %lld, text path %s %lld", d,
                     qb_round_name(m), qb_err_name(gerr), (long long)got,
                     qb_err_name(werr), (long long)want);
    }
    /* to_double then from_double is the identity below 2^26. */
    for (int i = 0; i < ITERS; i++) {
        qb_dec_t v = (qb_dec_t)(rnd() % ((uint64_t)1 << 26) * QB_DEC_SCALE +
                                rnd() % QB_DEC_SCALE), r;
        if (rnd() & 1) v = -v;
        assert_int_equal(qb_dec_from_double(qb_dec_to_double(v), &r, QB_ROUND_HALF_EVEN),
                         QB_OK);
        assert_int_equal(r, v);
    }
    assert_true(qb_dec_to_double(150000000) == 1.5);
    assert_true(qb_dec_to_double(-1) == -1e-8);
}

static int group_setup(void **state) {
    rng = qb_test_seed("test_decimal");
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_vectors),
        cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_format_fixed_vectors),
        cmocka_unit_test(test_format_fixed_matches_round_to),
        cmocka_unit_test(test_parse_vectors),
        cmocka_unit_test(test_parse_reads_only_len),
        cmocka_unit_test(test_roundtrip_property),
        cmocka_unit_test(test_parse_overflow_property),
        cmocka_unit_test(test_parse_extra_digits_property),
        cmocka_unit_test(test_parse_round_vectors),
        cmocka_unit_test(test_add_sub_property),
        cmocka_unit_test(test_add_sub_edges),
        cmocka_unit_test(test_mul_property),
        cmocka_unit_test(test_div_property),
        cmocka_unit_test(test_mul_div_rounding_vectors),
        cmocka_unit_test(test_div_zero_and_bad_mode),
        cmocka_unit_test(test_div_wide),
        cmocka_unit_test(test_round_to_quantize_property),
        cmocka_unit_test(test_round_to_quantize_vectors),
        cmocka_unit_test(test_from_int_cmp_names),
        cmocka_unit_test(test_from_double_vectors),
        cmocka_unit_test(test_from_double_property),
    };
    return cmocka_run_group_tests_name("decimal", tests, group_setup, NULL);
}
