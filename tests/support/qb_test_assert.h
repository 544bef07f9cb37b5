/* qb_test_assert.h — cmocka assertion macros shared by the C tests.
 *
 * Includes <cmocka.h> (after the headers it needs), so a test can include
 * this instead of the usual setjmp/stdarg/stddef + cmocka block.
 *
 * OK(expr) and ERR(code, expr) check a call returning qb_err_t that writes
 * its error text into the test file's own error buffer: they expect the
 * including file to define
 *     static char E[N];
 * (any N; it is the buffer the test passes as errstr). E is cleared before
 * expr runs, and its text is part of the failure message. */
#ifndef QB_TEST_ASSERT_H
#define QB_TEST_ASSERT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/qb_err.h"

/* expr must return QB_OK. */
#define OK(expr)                                                               \
    do {                                                                       \
        E[0] = '\0';                                                           \
        qb_err_t e_ = (expr);                                                  \
        if (e_ != QB_OK) fail_msg("%s -> %s: %s", #expr, qb_err_name(e_), E);  \
    } while (0)

/* expr must return exactly `code`. */
#define ERR(code, expr)                                                        \
    do {                                                                       \
        E[0] = '\0';                                                           \
        qb_err_t e_ = (expr);                                                  \
        if (e_ != (code))                                                      \
            fail_msg("%s -> %s (want %s): %s", #expr, qb_err_name(e_),         \
                     qb_err_name(code), E);                                    \
    } while (0)

#endif
