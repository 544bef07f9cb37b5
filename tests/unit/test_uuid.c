/* test_uuid.c — qb_uuid: v4 shape and uniqueness, v5 against vectors from
 * Python's uuid module (an independent implementation), validation,
 * parse/format, and trace ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_uuid.h"

#define N_RANDOM 20000

static int is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Canonical lowercase 8-4-4-4-12 text with the given version. */
static void assert_canonical(const char *u, char version) {
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) assert_int_equal(u[i], '-');
        else assert_true(is_lower_hex(u[i]));
    }
    assert_int_equal(u[14], version);
    assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
    assert_true(qb_uuid_valid(u));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

static void test_v4_shape_and_uniqueness(void **state) {
    char(*ids)[QB_UUID_STRLEN] = malloc(N_RANDOM * sizeof *ids);
    assert_non_null(ids);
    int ones[128] = {0};
    for (int i = 0; i < N_RANDOM; i++) {
        qb_uuid_v4(ids[i]);
        assert_canonical(ids[i], '4');
        uint8_t b[16];
        assert_int_equal(qb_uuid_parse(ids[i], b), QB_OK);
        for (int bit = 0; bit < 128; bit++) ones[bit] += (b[bit / 8] >> (bit % 8)) & 1;
    }
    qsort(ids, N_RANDOM, sizeof *ids, cmp_str);
    for (int i = 1; i < N_RANDOM; i++) assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
    /* The 122 random bits are each set about half the time (the version
     * and variant bits are fixed). 20000 draws: 50% +- 4% is > 10 sigma. */
    int random_bits = 0;
    for (int bit = 0; bit < 128; bit++) {
        double f = (double)ones[bit] / N_RANDOM;
        if (f > 0.46 && f < 0.54) random_bits++;
        else assert_true(f == 0.0 || f == 1.0);
    }
    assert_int_equal(random_bits, 122);
}

static void test_v5_vectors(void **state) {
    static const struct { const char *ns, *name; size_t len; const char *want; } v[] = {
        {QB_UUID_NS_DNS, "python.org", 10, "886313e1-3b8a-5372-9b90-0c9aee199e5d"},
        {QB_UUID_NS_URL, "https://quantbus.example/signal/42", 34,
         "10a3661f-6c9a-5c1c-911a-b6a1a78a403b"},
        {QB_UUID_NS_DNS, "", 0, "4ebd0208-8328-5d69-8c44-ec50939c0967"},
        {QB_UUID_NS_DNS, "a\0b", 3, "0a63f66b-e02f-5d2d-9fd4-aad819cf5352"},
        {"123E4567-E89B-12D3-A456-426614174000", "sig-0001", 8,
         "39ecc53f-d1d4-5df3-83a5-99249bacbf92"},
    };
    char out[QB_UUID_STRLEN];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        qb_uuid_v5(v[i].ns, v[i].name, v[i].len, out);
        assert_string_equal(out, v[i].want);
        assert_canonical(out, '5');
    }
    /* deterministic, and the name length matters, not a NUL */
    char again[QB_UUID_STRLEN];
    qb_uuid_v5(QB_UUID_NS_DNS, "python.org!!", 10, again);
    assert_string_equal(again, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    qb_uuid_v5(QB_UUID_NS_DNS, "python.or", 9, again);
    assert_string_not_equal(again, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

static void test_valid(void **state) {
    static const char *good[] = {
        "00000000-0000-0000-0000-000000000000",
        "886313e1-3b8a-5372-9b90-0c9aee199e5d",
        "886313E1-3B8A-5372-9B90-0C9AEE199E5D",
        QB_UUID_NS_OID,
    };
    static const char *bad[] = {
        "",
        "886313e1-3b8a-5372-9b90-0c9aee199e5",   /* 35 */
        "886313e1-3b8a-5372-9b90-0c9aee199e5d0", /* 37 */
        "886313e13b8a53729b900c9aee199e5d",      /* no dashes */
        "886313e1-3b8a5-372-9b90-0c9aee199e5d",  /* dash moved */
        "886313e1-3b8a-5372-9b90-0c9aee199e5g",  /* not hex */
        "{886313e1-3b8a-5372-9b90-0c9aee199e5d}",
        " 886313e1-3b8a-5372-9b90-0c9aee199e5d",
        "886313e1 3b8a 5372 9b90 0c9aee199e5d",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(qb_uuid_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (qb_uuid_valid(bad[i])) fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_false(qb_uuid_valid(NULL));
}

static void test_parse_format(void **state) {
    uint8_t b[16], want[16] = {0x88, 0x63, 0x13, 0xe1, 0x3b, 0x8a, 0x53, 0x72,
                               0x9b, 0x90, 0x0c, 0x9a, 0xee, 0x19, 0x9e, 0x5d};
    char out[QB_UUID_STRLEN];
    assert_int_equal(qb_uuid_parse("886313E1-3b8a-5372-9b90-0c9aee199e5d", b), QB_OK);
    assert_memory_equal(b, want, 16);
    qb_uuid_format(b, out);
    assert_string_equal(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    memset(b, 0xaa, sizeof b);
    assert_int_equal(qb_uuid_parse("not-a-uuid", b), QB_ERR_PARSE);
    assert_int_equal(b[0], 0xaa); /* untouched on error */
}

static void test_trace_id(void **state) {
    char a[QB_TRACE_ID_STRLEN], b[QB_TRACE_ID_STRLEN];
    for (int i = 0; i < 1000; i++) {
        qb_trace_id_new(a);
        qb_trace_id_new(b);
        assert_int_equal(strlen(a), 32);
        for (int k = 0; k < 32; k++) assert_true(is_lower_hex(a[k]));
        assert_string_not_equal(a, b);
        assert_string_not_equal(a, "00000000000000000000000000000000");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_shape_and_uniqueness),
        cmocka_unit_test(test_v5_vectors),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_trace_id),
    };
    return cmocka_run_group_tests_name("uuid", tests, NULL, NULL);
}
