/* fuzz_decimal.c — libFuzzer target for qb_dec_parse / qb_dec_parse_round.
 *
 * Input: byte 0 picks the rounding mode, the rest is the text (exactly that
 * many bytes, no NUL: ASan catches any read past the end). Checks, aborting
 * on a mismatch:
 *   - whatever parses formats back to text that parses to the same value;
 *   - strict parse success implies parse_round gives the same value in
 *     every mode (no digits are dropped, so rounding must not matter);
 *   - strict QB_ERR_RANGE (excess digits) implies parse_round succeeds or
 *     overflows, and the rounded values are ordered FLOOR <= others <= CEIL
 *     with CEIL - FLOOR == 1 raw unit.
 * Build: make fuzz; run: ./build-fuzz/fuzz_decimal -max_total_time=60 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(qb_dec_t v) {
    char buf[QB_DEC_STRLEN];
    qb_dec_t back;
    size_t n = qb_dec_format(v, buf, sizeof buf);
    if (n >= sizeof buf || qb_dec_parse(buf, n, &back) != QB_OK || back != v) {
        fprintf(stderr, "round trip: %lld -> \"%s\"\n", (long long)v, buf);
        abort();
    }
    n = qb_dec_format_fixed(v, 8, buf, sizeof buf);
    if (n >= sizeof buf || qb_dec_parse(buf, n, &back) != QB_OK || back != v) {
        fprintf(stderr, "fixed round trip: %lld -> \"%s\"\n", (long long)v, buf);
        abort();
    }
}

/* Excess digits: every mode succeeds or overflows; FLOOR and CEIL bracket. */
static void check_rounding_bracket(const char *s, size_t len) {
    qb_dec_t r[5];
    int ok = 0;
    for (int m = 0; m < 5; m++)
        ok += qb_dec_parse_round(s, len, &r[m], (qb_round_t)m) == QB_OK;
    if (ok < 5) return; /* near the range edge one direction may overflow */
    qb_dec_t lo = r[QB_ROUND_FLOOR], hi = r[QB_ROUND_CEIL];
    for (int m = 0; m < 5; m++) {
        if (r[m] < lo || r[m] > hi) abort();
    }
    if (hi - lo != 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    qb_round_t mode = (qb_round_t)(data[0] % 5);
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    qb_dec_t strict, rounded;
    qb_err_t es = qb_dec_parse(s, len, &strict);
    qb_err_t er = qb_dec_parse_round(s, len, &rounded, mode);
    if (es == QB_OK) {
        check_roundtrip(strict);
        if (er != QB_OK || rounded != strict) abort();
    }
    if (er == QB_OK) check_roundtrip(rounded);
    if (es == QB_ERR_RANGE) check_rounding_bracket(s, len);
    if (es == QB_ERR_PARSE && er == QB_OK) {
        /* only an exponent may separate the two grammars */
        if (!memchr(s, 'e', len) && !memchr(s, 'E', len)) abort();
    }
    return 0;
}
