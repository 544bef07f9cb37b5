/* qb_decimal.c — exact fixed-point decimal arithmetic; see qb_decimal.h.
 *
 * Every rounding in this file goes through one decision, qb_round_up(): the
 * exact result is split into a kept magnitude and a discarded remainder,
 * the remainder is compared to one half of the last kept unit, and the mode
 * says whether the magnitude grows by one. Text parsing feeds it the
 * discarded digits; arithmetic feeds it an __int128 quotient and remainder.
 * Owns nothing. */
#include "core/qb_decimal.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define QB_DEC_U64_MAGMAX ((uint64_t)INT64_MAX + 1) /* |QB_DEC_MIN| */
#define QB_DEC_WIDE_MIN ((qb_dec_wide_t)((unsigned __int128)1 << 127))
/* Exponents are clamped to this magnitude while parsing: any value past it
 * is already all-zero or an overflow, and positions stay within int64. */
#define QB_DEC_EXP_CLAMP 1000000000000LL

static const int64_t qb_dec_pow10[QB_DEC_DIGITS + 1] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static const char *const qb_round_names[] = {
    [QB_ROUND_HALF_EVEN] = "half_even", [QB_ROUND_HALF_UP] = "half_up",
    [QB_ROUND_DOWN] = "down",           [QB_ROUND_FLOOR] = "floor",
    [QB_ROUND_CEIL] = "ceil"};

static int qb_round_valid(qb_round_t mode) {
    return (unsigned)mode <= (unsigned)QB_ROUND_CEIL;
}

const char *qb_round_name(qb_round_t mode) {
    return qb_round_valid(mode) ? qb_round_names[mode] : "unknown";
}

qb_err_t qb_round_parse(const char *s, qb_round_t *out) {
    for (int m = QB_ROUND_HALF_EVEN; m <= QB_ROUND_CEIL; m++) {
        if (strcasecmp(s, qb_round_names[m]) == 0) {
            *out = (qb_round_t)m;
            return QB_OK;
        }
    }
    return QB_ERR_PARSE;
}

/* Whether a discarded, non-zero remainder makes the kept magnitude grow by
 * one. neg: the exact value is negative; odd: the kept magnitude is odd;
 * half: the remainder compared to half a unit (-1 below, 0 equal, 1 above). */
static int qb_round_up(qb_round_t mode, int neg, int odd, int half) {
    switch (mode) {
    case QB_ROUND_HALF_EVEN: return half > 0 || (half == 0 && odd);
    case QB_ROUND_HALF_UP: return half >= 0;
    case QB_ROUND_DOWN: return 0;
    case QB_ROUND_FLOOR: return neg;
    case QB_ROUND_CEIL: return !neg;
    }
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* The pieces of "[sign] idigits [. fdigits] [e exp]". */
typedef struct qb_dec_text_s {
    int neg;
    const char *ip, *fp; /* integer and fraction digits (not terminated) */
    size_t ilen, flen;
    int64_t exp;         /* clamped to ±QB_DEC_EXP_CLAMP */
} qb_dec_text_t;

/* The value of the text split at the 8th decimal: mag is the kept part in
 * raw units, half/inexact describe the discarded digits. */
typedef struct qb_dec_split_s {
    uint64_t mag;
    int half;    /* discarded part vs half a unit: -1, 0, 1 */
    int inexact; /* any discarded digit is non-zero */
} qb_dec_split_t;

static int qb_is_digit(char c) { return c >= '0' && c <= '9'; }

static size_t qb_scan_digits(const char *s, size_t len, size_t i) {
    while (i < len && qb_is_digit(s[i])) i++;
    return i;
}

/* [e|E][+|-]digits starting at s[*i]; clamps the value. */
static qb_err_t qb_dec_scan_exp(const char *s, size_t len, size_t *i,
                                int64_t *exp) {
    size_t j = *i + 1;
    int neg = 0;
    if (j < len && (s[j] == '+' || s[j] == '-')) neg = s[j++] == '-';
    size_t end = qb_scan_digits(s, len, j);
    if (end == j) return QB_ERR_PARSE;
    int64_t e = 0;
    for (; j < end; j++) {
        if (e < QB_DEC_EXP_CLAMP) e = e * 10 + (s[j] - '0');
    }
    if (e > QB_DEC_EXP_CLAMP) e = QB_DEC_EXP_CLAMP;
    *exp = neg ? -e : e;
    *i = end;
    return QB_OK;
}

static qb_err_t qb_dec_scan(const char *s, size_t len, int allow_exp,
                            qb_dec_text_t *t) {
    size_t i = 0;
    memset(t, 0, sizeof *t);
    if (len == 0) return QB_ERR_PARSE; /* also keeps s == NULL untouched */
    if (i < len && (s[i] == '+' || s[i] == '-')) t->neg = s[i++] == '-';
    t->ip = s + i;
    i = qb_scan_digits(s, len, i);
    t->ilen = (size_t)(s + i - t->ip);
    if (i < len && s[i] == '.') {
        t->fp = s + ++i;
        i = qb_scan_digits(s, len, i);
        t->flen = (size_t)(s + i - t->fp);
    }
    if (t->ilen + t->flen == 0) return QB_ERR_PARSE;
    if (allow_exp && i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (qb_dec_scan_exp(s, len, &i, &t->exp) != QB_OK) return QB_ERR_PARSE;
    }
    return i == len ? QB_OK : QB_ERR_PARSE;
}

/* Digit k of the mantissa, integer digits first. */
static int qb_dec_digit(const qb_dec_text_t *t, int64_t k) {
    if ((size_t)k < t->ilen) return t->ip[k] - '0';
    return t->fp[(size_t)k - t->ilen] - '0';
}

/* The kept digits [0, cut) of the mantissa as raw units; digits past the
 * mantissa's end are zeros. */
static qb_err_t qb_dec_kept(const qb_dec_text_t *t, int64_t n, int64_t cut,
                            uint64_t *mag) {
    uint64_t m = 0;
    for (int64_t k = 0; k < cut && k < n; k++) {
        int d = qb_dec_digit(t, k);
        if (m > (UINT64_MAX - (uint64_t)d) / 10) return QB_ERR_OVERFLOW;
        m = m * 10 + (uint64_t)d;
    }
    for (int64_t k = n; k < cut && m != 0; k++) {
        if (m > UINT64_MAX / 10) return QB_ERR_OVERFLOW;
        m *= 10;
    }
    *mag = m;
    return QB_OK;
}

/* Classify the discarded digits [cut, n); when cut < 0 the first discarded
 * digit is an implicit leading zero. */
static void qb_dec_discarded(const qb_dec_text_t *t, int64_t n, int64_t cut,
                             qb_dec_split_t *sp) {
    int first = (cut >= 0 && cut < n) ? qb_dec_digit(t, cut) : 0;
    int sticky = 0;
    for (int64_t k = (cut < 0 ? 0 : cut + 1); k < n && !sticky; k++)
        sticky = qb_dec_digit(t, k) != 0;
    sp->inexact = first != 0 || sticky;
    if (first != 5) sp->half = first > 5 ? 1 : -1;
    else sp->half = sticky ? 1 : 0;
}

static qb_err_t qb_dec_split(const qb_dec_text_t *t, qb_dec_split_t *sp) {
    int64_t n = (int64_t)(t->ilen + t->flen);
    int64_t cut = (int64_t)t->ilen + t->exp + QB_DEC_DIGITS;
    qb_err_t err = qb_dec_kept(t, n, cut, &sp->mag);
    if (err != QB_OK) return err;
    qb_dec_discarded(t, n, cut, sp);
    return QB_OK;
}

/* Apply the sign to a magnitude, failing when it does not fit. */
static qb_err_t qb_dec_from_mag(int neg, uint64_t mag, qb_dec_t *out) {
    if (mag > (neg ? QB_DEC_U64_MAGMAX : (uint64_t)INT64_MAX))
        return QB_ERR_OVERFLOW;
    *out = neg ? (qb_dec_t)(0 - mag) : (qb_dec_t)mag;
    return QB_OK;
}

qb_err_t qb_dec_parse(const char *s, size_t len, qb_dec_t *out) {
    qb_dec_text_t t;
    qb_dec_split_t sp;
    if (qb_dec_scan(s, len, 0, &t) != QB_OK) return QB_ERR_PARSE;
    qb_dec_t v;
    qb_err_t err = qb_dec_split(&t, &sp);
    if (err == QB_OK) err = qb_dec_from_mag(t.neg, sp.mag, &v);
    if (err != QB_OK) return err; /* overflow is reported before excess digits */
    if (sp.inexact) return QB_ERR_RANGE;
    *out = v;
    return QB_OK;
}

qb_err_t qb_dec_parse_round(const char *s, size_t len, qb_dec_t *out,
                            qb_round_t mode) {
    qb_dec_text_t t;
    qb_dec_split_t sp;
    if (!qb_round_valid(mode)) return QB_ERR_INVALID;
    if (qb_dec_scan(s, len, 1, &t) != QB_OK) return QB_ERR_PARSE;
    qb_err_t err = qb_dec_split(&t, &sp);
    if (err != QB_OK) return err;
    if (sp.mag > QB_DEC_U64_MAGMAX) return QB_ERR_OVERFLOW;
    if (sp.inexact && qb_round_up(mode, t.neg, (int)(sp.mag & 1), sp.half))
        sp.mag++;
    return qb_dec_from_mag(t.neg, sp.mag, out);
}

/* ---- formatting ----------------------------------------------------------- */

/* Write the decimal digits of v at p; returns how many. */
static size_t qb_u64_digits(uint64_t v, char *p) {
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) p[i] = rev[n - 1 - i];
    return n;
}

/* Exactly `width` digits of v, zero-padded on the left. */
static void qb_u64_digits_fixed(uint64_t v, int width, char *p) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Copy the finished text to the caller's buffer, snprintf style. */
static size_t qb_dec_emit(const char *tmp, size_t n, char *buf, size_t cap) {
    if (cap > 0) {
        size_t c = n < cap ? n : cap - 1;
        memcpy(buf, tmp, c);
        buf[c] = '\0';
    }
    return n;
}

static uint64_t qb_dec_mag(qb_dec_t v) {
    return v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
}

size_t qb_dec_format(qb_dec_t v, char *buf, size_t cap) {
    char tmp[QB_DEC_STRLEN];
    uint64_t mag = qb_dec_mag(v);
    uint64_t frac = mag % QB_DEC_SCALE;
    size_t n = 0;
    if (v < 0) tmp[n++] = '-';
    n += qb_u64_digits(mag / QB_DEC_SCALE, tmp + n);
    if (frac) {
        int width = QB_DEC_DIGITS;
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        tmp[n++] = '.';
        qb_u64_digits_fixed(frac, width, tmp + n);
        n += (size_t)width;
    }
    return qb_dec_emit(tmp, n, buf, cap);
}

size_t qb_dec_format_fixed(qb_dec_t v, int decimals, char *buf, size_t cap) {
    char tmp[QB_DEC_STRLEN];
    if (decimals < 0) decimals = 0;
    if (decimals > QB_DEC_DIGITS) decimals = QB_DEC_DIGITS;
    uint64_t step = (uint64_t)qb_dec_pow10[QB_DEC_DIGITS - decimals];
    uint64_t mag = qb_dec_mag(v);
    uint64_t q = mag / step, r = mag % step;
    if (r && qb_round_up(QB_ROUND_HALF_EVEN, v < 0, (int)(q & 1),
                         r < step - r ? -1 : r > step - r)) {
        q++; /* at most |QB_DEC_MIN| + 1e8: no uint64 overflow */
    }
    uint64_t unit = (uint64_t)qb_dec_pow10[decimals];
    size_t n = 0;
    if (v < 0 && q) tmp[n++] = '-';
    n += qb_u64_digits(q / unit, tmp + n);
    if (decimals) {
        tmp[n++] = '.';
        qb_u64_digits_fixed(q % unit, decimals, tmp + n);
        n += (size_t)decimals;
    }
    return qb_dec_emit(tmp, n, buf, cap);
}

/* ---- arithmetic ----------------------------------------------------------- */

qb_err_t qb_dec_add(qb_dec_t a, qb_dec_t b, qb_dec_t *out) {
    qb_dec_t r;
    if (__builtin_add_overflow(a, b, &r)) return QB_ERR_OVERFLOW;
    *out = r;
    return QB_OK;
}

qb_err_t qb_dec_sub(qb_dec_t a, qb_dec_t b, qb_dec_t *out) {
    qb_dec_t r;
    if (__builtin_sub_overflow(a, b, &r)) return QB_ERR_OVERFLOW;
    *out = r;
    return QB_OK;
}

qb_err_t qb_dec_neg(qb_dec_t a, qb_dec_t *out) {
    if (a == QB_DEC_MIN) return QB_ERR_OVERFLOW;
    *out = -a;
    return QB_OK;
}

qb_err_t qb_dec_abs(qb_dec_t a, qb_dec_t *out) {
    if (a == QB_DEC_MIN) return QB_ERR_OVERFLOW;
    *out = a < 0 ? -a : a;
    return QB_OK;
}

static qb_dec_wide_t qb_wide_abs(qb_dec_wide_t v) { return v < 0 ? -v : v; }

/* The end of a division on magnitudes: q = |num| / |den| truncated, ar the
 * remainder, b = |den|, neg the sign of the exact quotient. Rounding away
 * from zero adds 1 to q; then the range check and the sign. */
static inline qb_err_t qb_div_finish(int neg, unsigned __int128 q, unsigned __int128 ar,
                                     unsigned __int128 b, qb_round_t mode, qb_dec_t *out) {
    if (ar != 0) {
        unsigned __int128 rest = b - ar;
        if (qb_round_up(mode, neg, (int)(q & 1), ar < rest ? -1 : ar > rest)) q += 1;
    }
    if (q > (unsigned __int128)INT64_MAX + (neg ? 1 : 0)) return QB_ERR_OVERFLOW;
    *out = neg ? (qb_dec_t)(0 - (uint64_t)q) : (qb_dec_t)(uint64_t)q;
    return QB_OK;
}

qb_err_t qb_dec_div_wide(qb_dec_wide_t num, qb_dec_wide_t den, qb_dec_t *out,
                         qb_round_t mode) {
    if (!qb_round_valid(mode)) return QB_ERR_INVALID;
    if (den == 0) return QB_ERR_DIV_ZERO;
    if (num == QB_DEC_WIDE_MIN || den == QB_DEC_WIDE_MIN) return QB_ERR_OVERFLOW;
    /* on magnitudes: |q| = |num| / |den| truncated, |r| the remainder;
     * rounding away from zero adds 1 to |q|. The division is the 64-bit
     * instruction whenever the quotient fits 64 bits and |den| does (the
     * usual case: amounts x prices / 1e8), not a 128-bit library call. */
    const int neg = (num < 0) != (den < 0);
    const unsigned __int128 a = (unsigned __int128)qb_wide_abs(num);
    const unsigned __int128 b = (unsigned __int128)qb_wide_abs(den);
    unsigned __int128 q, ar;
    if ((a >> 64) == 0 && b == QB_DEC_SCALE) { /* the usual divisor: multiply and shift */
        q = (uint64_t)a / (uint64_t)QB_DEC_SCALE;
        ar = (uint64_t)a % (uint64_t)QB_DEC_SCALE;
    } else if ((a >> 64) == 0 && (b >> 64) == 0) {
        q = (uint64_t)a / (uint64_t)b;
        ar = (uint64_t)a % (uint64_t)b;
#if defined(__x86_64__)
    } else if ((b >> 64) == 0 && (uint64_t)(a >> 64) < (uint64_t)b) {
        uint64_t q64, r64; /* divq: no fault, the high half is < the divisor */
        __asm__("divq %4" : "=a"(q64), "=d"(r64) : "a"((uint64_t)a), "d"((uint64_t)(a >> 64)),
                "rm"((uint64_t)b));
        q = q64;
        ar = r64;
#endif
    } else {
        q = a / b;
        ar = a % b;
    }
    return qb_div_finish(neg, q, ar, b, mode, out);
}

qb_err_t qb_dec_mul(qb_dec_t a, qb_dec_t b, qb_dec_t *out, qb_round_t mode) {
    /* = qb_dec_div_wide(a * b, QB_DEC_SCALE): when |a x b| fits 64 bits
     * (qty x price of everyday amounts) the division by the constant is a
     * multiply and shift */
    const qb_dec_wide_t p = (qb_dec_wide_t)a * b; /* |p| < 2^126 */
    const unsigned __int128 m = (unsigned __int128)qb_wide_abs(p);
    if ((m >> 64) != 0 || !qb_round_valid(mode))
        return qb_dec_div_wide(p, QB_DEC_SCALE, out, mode);
    const uint64_t m64 = (uint64_t)m;
    return qb_div_finish(p < 0, m64 / (uint64_t)QB_DEC_SCALE, m64 % (uint64_t)QB_DEC_SCALE,
                         QB_DEC_SCALE, mode, out);
}

qb_err_t qb_dec_div(qb_dec_t a, qb_dec_t b, qb_dec_t *out, qb_round_t mode) {
    if (!qb_round_valid(mode)) return QB_ERR_INVALID;
    if (b == 0) return QB_ERR_DIV_ZERO;
    return qb_dec_div_wide((qb_dec_wide_t)a * QB_DEC_SCALE, b, out, mode);
}

qb_err_t qb_dec_quantize(qb_dec_t v, qb_dec_t step, qb_round_t mode,
                         qb_dec_t *out) {
    qb_dec_t steps;
    if (step <= 0 || !qb_round_valid(mode)) return QB_ERR_INVALID;
    qb_err_t err = qb_dec_div_wide(v, step, &steps, mode);
    if (err != QB_OK) return err;
    qb_dec_wide_t r = (qb_dec_wide_t)steps * step;
    if (r > INT64_MAX || r < INT64_MIN) return QB_ERR_OVERFLOW;
    *out = (qb_dec_t)r;
    return QB_OK;
}

qb_err_t qb_dec_round_to(qb_dec_t v, int decimals, qb_round_t mode,
                         qb_dec_t *out) {
    if (decimals < 0 || decimals > QB_DEC_DIGITS) return QB_ERR_INVALID;
    return qb_dec_quantize(v, qb_dec_pow10[QB_DEC_DIGITS - decimals], mode, out);
}

int qb_dec_cmp(qb_dec_t a, qb_dec_t b) { return (a > b) - (a < b); }

/* ---- conversions ---------------------------------------------------------- */

qb_err_t qb_dec_from_int(int64_t i, qb_dec_t *out) {
    qb_dec_t r;
    if (__builtin_mul_overflow(i, QB_DEC_SCALE, &r)) return QB_ERR_OVERFLOW;
    *out = r;
    return QB_OK;
}

qb_err_t qb_dec_from_double(double d, qb_dec_t *out, qb_round_t mode) {
    if (!qb_round_valid(mode) || !isfinite(d)) return QB_ERR_INVALID;
    if (fabs(d) >= 0x1p37) return QB_ERR_OVERFLOW; /* > 1.3e11 > max */
    /* d == m × 2^-shift exactly, with |m| < 2^53. As |d| < 2^37 and
     * |m| >= 2^52 (or m == 0), shift is at least 16. */
    int e;
    double f = frexp(d, &e);
    int64_t m = (int64_t)ldexp(f, 53);
    int shift = 53 - e;
    qb_dec_wide_t num = (qb_dec_wide_t)m * QB_DEC_SCALE;
    if (shift > 100) {
        /* |d × 1e8| < 2^80 / 2^100: below half a unit but maybe non-zero;
         * any such value rounds the same way, so keep only its sign. */
        num = (m > 0) - (m < 0);
        shift = 100;
    }
    return qb_dec_div_wide(num, (qb_dec_wide_t)1 << shift, out, mode);
}

double qb_dec_to_double(qb_dec_t v) { return (double)v / (double)QB_DEC_SCALE; }
