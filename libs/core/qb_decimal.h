/* qb_decimal.h — exact fixed-point decimals for prices, quantities and money.
 *
 * Why: binary floating point cannot hold 0.1 exactly, so sums of prices
 * drift and two services disagree on a cent. A qb_dec_t is an int64 holding
 * the real value times 1e8 (8 decimal places, the same scale as the int64
 * "fixed-point 1e-8" fields of proto/qb/v1): 123.45 is 12345000000, the
 * smallest step 0.00000001 is 1. Range: -92233720368.54775808 to
 * 92233720368.54775807. Addition and subtraction are exact; every function
 * that can overflow reports QB_ERR_OVERFLOW and leaves *out untouched.
 *
 * Rounding. Multiplication, division, conversion from double, parsing of
 * more than 8 fractional digits (qb_dec_parse_round) and rounding to fewer
 * decimals drop digits. Each of them computes the exact result first
 * (__int128 intermediates, or all digits of the text), then rounds ONCE per
 * qb_round_t:
 *   QB_ROUND_HALF_EVEN  to nearest; a tie goes to the even neighbour
 *                       (banker's rounding; 2.5 -> 2, 3.5 -> 4, -2.5 -> -2).
 *                       The default: unbiased over many operations.
 *   QB_ROUND_HALF_UP    to nearest; a tie goes away from zero
 *                       (2.5 -> 3, -2.5 -> -3), "school" rounding.
 *   QB_ROUND_DOWN       toward zero, i.e. truncation (2.9 -> 2, -2.9 -> -2).
 *   QB_ROUND_FLOOR      toward -infinity (2.9 -> 2, -2.1 -> -3).
 *   QB_ROUND_CEIL       toward +infinity (2.1 -> 3, -2.9 -> -2).
 * (Examples are in units of the last kept digit.) A result that is exact is
 * never changed by any mode. An unknown mode is QB_ERR_INVALID.
 *
 * Ownership: none. qb_dec_t is a plain value; text is read from and written
 * to caller-owned buffers. Pointer arguments must not be NULL. Everything is
 * thread-safe and locale-independent (the decimal point is always '.'). */
#ifndef QB_DECIMAL_H
#define QB_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

typedef int64_t qb_dec_t;

#define QB_DEC_SCALE 100000000LL /* 1e8: raw units per 1.0 */
#define QB_DEC_DIGITS 8          /* fractional digits */
#define QB_DEC_MAX INT64_MAX
#define QB_DEC_MIN INT64_MIN
/* A buffer of this size holds any qb_dec_format / qb_dec_format_fixed text
 * ("-92233720368.54775808" is 21 characters) plus its NUL. */
#define QB_DEC_STRLEN 32

/* Wide integer for exact intermediate results (see qb_dec_div_wide). */
__extension__ typedef __int128 qb_dec_wide_t;

typedef enum qb_round_e {
    QB_ROUND_HALF_EVEN = 0, /* nearest, ties to even (default) */
    QB_ROUND_HALF_UP = 1,   /* nearest, ties away from zero */
    QB_ROUND_DOWN = 2,      /* toward zero (truncate) */
    QB_ROUND_FLOOR = 3,     /* toward -infinity */
    QB_ROUND_CEIL = 4       /* toward +infinity */
} qb_round_t;

/* "half_even", "half_up", "down", "floor", "ceil"; "unknown" otherwise. */
const char *qb_round_name(qb_round_t mode);
/* Inverse of qb_round_name (case-insensitive), for configuration.
 * QB_ERR_PARSE when unknown. */
qb_err_t qb_round_parse(const char *s, qb_round_t *out);

/* ---- text ------------------------------------------------------------- */

/* Parse plain decimal text of exactly `len` bytes (s need not be
 * NUL-terminated; nothing past s[len-1] is read):
 *   [+|-] digits [. [digits]]  or  [+|-] . digits
 * e.g. "-123.456", "+5", "0.00000001", ".5", "7.", "007". No whitespace, no
 * exponent, no thousands separators.
 *   QB_ERR_PARSE     malformed (empty, "1.2.3", "abc", "1e5", "--1", ".", "-")
 *   QB_ERR_OVERFLOW  magnitude beyond the qb_dec_t range
 *   QB_ERR_RANGE     more than 8 fractional digits and the extra ones are not
 *                    all zeros ("1.000000001"; "1.0000000000" is fine)
 * Checked in that order. *out is written only on success. */
qb_err_t qb_dec_parse(const char *s, size_t len, qb_dec_t *out);

/* Like qb_dec_parse, for vendor data: digits beyond the 8th decimal are
 * rounded per `mode` instead of rejected, and an exponent is accepted
 * ("1.5e-3", "2E4", "1e+2"; the mantissa follows qb_dec_parse's grammar,
 * the exponent is [e|E][+|-]digits). Errors: QB_ERR_PARSE, QB_ERR_OVERFLOW
 * (also when rounding carries past the range), QB_ERR_INVALID for a bad
 * mode. */
qb_err_t qb_dec_parse_round(const char *s, size_t len, qb_dec_t *out,
                            qb_round_t mode);

/* Shortest exact text: "1.5", "-0.00000001", "100", "0". Writes at most
 * cap-1 characters and a NUL when cap > 0 (buf may be NULL when cap == 0).
 * Returns the length of the full text, like snprintf: a return >= cap means
 * it was truncated. qb_dec_parse(buf) gives v back. */
size_t qb_dec_format(qb_dec_t v, char *buf, size_t cap);

/* Text with exactly `decimals` fractional digits (clamped to 0..8), rounded
 * half-even: 2 decimals turns 1.005 into "1.00", 1.015 into "1.02", 7 into
 * "7.00". A value that rounds to zero prints without a sign ("0.00").
 * Never fails (the rounded value may exceed QB_DEC_MAX; it is still printed
 * correctly). Buffer and return value as qb_dec_format. */
size_t qb_dec_format_fixed(qb_dec_t v, int decimals, char *buf, size_t cap);

/* ---- arithmetic ------------------------------------------------------- */

/* Exact; QB_ERR_OVERFLOW (and *out untouched) when the result does not fit.
 * neg and abs overflow only for QB_DEC_MIN. */
qb_err_t qb_dec_add(qb_dec_t a, qb_dec_t b, qb_dec_t *out);
qb_err_t qb_dec_sub(qb_dec_t a, qb_dec_t b, qb_dec_t *out);
qb_err_t qb_dec_neg(qb_dec_t a, qb_dec_t *out);
qb_err_t qb_dec_abs(qb_dec_t a, qb_dec_t *out);

/* a × b, the exact 16-decimal product rounded once to 8 decimals per mode.
 * QB_ERR_OVERFLOW when the rounded result does not fit. */
qb_err_t qb_dec_mul(qb_dec_t a, qb_dec_t b, qb_dec_t *out, qb_round_t mode);

/* a ÷ b, the exact quotient rounded once to 8 decimals per mode.
 * QB_ERR_DIV_ZERO when b == 0, QB_ERR_OVERFLOW when the result does not
 * fit (e.g. 1e10 / 0.01). */
qb_err_t qb_dec_div(qb_dec_t a, qb_dec_t b, qb_dec_t *out, qb_round_t mode);

/* Building block for exact formulas (weighted averages, VWAP): *out =
 * num ÷ den rounded per mode to an integer, as raw qb_dec_t units. The
 * caller chooses the scales so the quotient is in 1e-8 units, e.g. VWAP =
 * Σ(price·volume) ÷ Σ(volume) with raw operands. QB_ERR_DIV_ZERO when
 * den == 0; QB_ERR_OVERFLOW when the result does not fit in qb_dec_t or an
 * operand is the most negative __int128. */
qb_err_t qb_dec_div_wide(qb_dec_wide_t num, qb_dec_wide_t den, qb_dec_t *out,
                         qb_round_t mode);

/* Round to `decimals` (0..8) fractional digits, e.g. 2 for cents:
 * 1.23456 -> 1.23 (HALF_EVEN). QB_ERR_INVALID for decimals outside 0..8 or
 * a bad mode, QB_ERR_OVERFLOW when rounding up leaves the range. */
qb_err_t qb_dec_round_to(qb_dec_t v, int decimals, qb_round_t mode,
                         qb_dec_t *out);

/* Round to a multiple of `step` (a tick size like 0.05 or a lot size like
 * 100): v = 1.03, step = 0.05 -> 1.05 (HALF_EVEN), 1.00 (FLOOR).
 * QB_ERR_INVALID when step <= 0 or a bad mode, QB_ERR_OVERFLOW as above. */
qb_err_t qb_dec_quantize(qb_dec_t v, qb_dec_t step, qb_round_t mode,
                         qb_dec_t *out);

/* -1, 0 or 1 as a <, ==, > b. */
int qb_dec_cmp(qb_dec_t a, qb_dec_t b);

/* ---- conversions ------------------------------------------------------ */

/* i -> i.00000000. QB_ERR_OVERFLOW when |i| > 92233720368. */
qb_err_t qb_dec_from_int(int64_t i, qb_dec_t *out);

/* Convert the EXACT binary value of d, rounded once per mode. Beware: the
 * double nearest to 0.29 is 0.28999999999999998002, so FLOOR or DOWN give
 * 0.28999999 while HALF_EVEN gives 0.29. Use HALF_EVEN unless you mean the
 * binary value, and prefer qb_dec_parse_round on the original text when
 * there is one. QB_ERR_INVALID for NaN, infinities or a bad mode,
 * QB_ERR_OVERFLOW when out of range. For |d| < 6.7e7 (2^26),
 * qb_dec_from_double(qb_dec_to_double(v), HALF_EVEN) == v. */
qb_err_t qb_dec_from_double(double d, qb_dec_t *out, qb_round_t mode);

/* The nearest double (correctly rounded for |v| < 2^53 raw units, i.e.
 * |value| < 9e7; within one ulp beyond). For display and statistics only. */
double qb_dec_to_double(qb_dec_t v);

#endif
