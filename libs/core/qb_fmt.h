/* qb_fmt.h — fast number formatting for hot paths.
 *
 * Why: qb-features writes every feature value as JSON text (PostgreSQL
 * jsonb rows, the Redis cache) and glibc's printf("%.17g") takes the
 * multi-precision route (__printf_fp, __mpn_divrem) for every double: ~1 us
 * each, a visible share of the service's CPU at thousands of bars/s.
 *
 * qb_fmt_double writes EXACTLY what snprintf("%.17g") writes (17 significant
 * digits, correctly rounded half-to-even from the exact binary value, so the
 * text parses back to the same double; trailing zeros dropped). Numbers in
 * [1e-4, 1e16) take an exact integer path (the fraction of m * 2^e in a
 * 128-bit fixed point, one digit per multiply by 10); zero, infinities,
 * NaN and anything outside that range go to snprintf, so the output is the
 * same for every input (tests/unit/test_fmt.c compares the two).
 *
 * Ownership: none; output goes to a caller buffer of at least
 * QB_FMT_DOUBLE_MAX bytes. Thread-safe, no allocation. */
#ifndef QB_FMT_H
#define QB_FMT_H

#include <stddef.h>

#define QB_FMT_DOUBLE_MAX 32 /* "%.17g" needs at most 24 + NUL */

/* v as "%.17g" into buf (NUL-terminated); returns the length. */
size_t qb_fmt_double(double v, char *buf);

#endif
