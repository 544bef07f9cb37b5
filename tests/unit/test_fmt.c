/* test_fmt.c — qb_fmt_double writes the same text as snprintf("%.17g"):
 * random bit patterns, random decimals, the edges of the fast range, ties
 * at the 17th digit (half to even), carries (…999 -> 1000…), signs and the
 * values that take the snprintf path; and the text parses back exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_fmt.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_u64(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static void check(double v) {
    char want[64], got[QB_FMT_DOUBLE_MAX];
    snprintf(want, sizeof want, "%.17g", v);
    size_t n = qb_fmt_double(v, got);
    if (strcmp(want, got) != 0) fail_msg("%a: want %s got %s", v, want, got);
    assert_int_equal(n, strlen(want));
    if (isfinite(v)) {
        double back = strtod(got, NULL);
        assert_memory_equal(&back, &v, sizeof v);
    }
}

static void test_fixed_values(void **state) {
    (void)state;
    const double v[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1.5, 2.5, 0.5, 0.25, 123.456,
                        1e-4, 1e-5, 0.000123, 9.9999999999999991e-05, 1e15, 1e16, 1e17,
                        9999999999999998.0, 1e15 + 0.25, 1e15 + 0.75, 2e15 + 0.25, 2e15 + 0.75,
                        4503599627370495.5, 0.99999999999999989, 9.9999999999999982,
                        99.999999999999986, 0.099999999999999992, 1.0000000000000002,
                        70.123456789012345, 55.1, -1234.5678, 3.141592653589793,
                        2.718281828459045, 1e300, -1e-300, 5e-324, INFINITY, -INFINITY, NAN,
                        1e-4 * (1 + 1e-16), 9.999999999999999e15};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) check(v[i]);
}

static void test_edges(void **state) {
    (void)state;
    /* neighbours of the powers of ten, inside and around the fast range */
    for (int k = -6; k <= 18; k++) {
        double p = pow(10.0, k);
        double x = p;
        for (int j = 0; j < 40; j++) x = nextafter(x, 0.0);
        for (int j = 0; j < 80; j++, x = nextafter(x, INFINITY)) {
            check(x);
            check(-x);
        }
    }
}

static void test_random_bits(void **state) {
    (void)state;
    for (int i = 0; i < 300000; i++) {
        uint64_t b = next_u64();
        /* exponents around the fast range most of the time */
        if (i % 4) b = (b & 0x800fffffffffffffULL) | ((uint64_t)(1000 + next_u64() % 80) << 52);
        double v;
        memcpy(&v, &b, sizeof v);
        check(v);
    }
}

static void test_random_decimals(void **state) {
    (void)state;
    /* what indicators produce: prices and ratios with few decimals */
    for (int i = 0; i < 200000; i++) {
        int64_t k = (int64_t)(next_u64() % 100000000000ULL);
        double scale = pow(10.0, (int)(next_u64() % 12));
        check((double)k / scale);
        check(-(double)k / scale / 7.0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_values),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random_bits),
        cmocka_unit_test(test_random_decimals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
