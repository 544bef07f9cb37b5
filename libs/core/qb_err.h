/* qb_err.h — the one error type of Quantbus.
 *
 * Every fallible function returns qb_err_t (QB_OK == 0, errors negative) and,
 * where a human needs details, fills a caller-owned `char *errstr, size_t
 * errstr_size` buffer, librdkafka style. The codes come from one X-macro that
 * also generates qb_err_name() and qb_err_str(), so they cannot drift apart.
 * qb_err_is_retriable() tells a caller whether trying again later may help
 * (a broker or database that is down) or not (bad input). */
#ifndef QB_ERR_H
#define QB_ERR_H

#include <stddef.h>

/*        name               value  retriable  description */
#define QB_ERR_MAP(X)                                                          \
    X(OK,                0,   0, "success")                                    \
    X(INVALID,          -1,   0, "invalid argument or input")                  \
    X(PARSE,            -2,   0, "cannot parse input")                         \
    X(OVERFLOW,         -3,   0, "numeric overflow")                           \
    X(RANGE,            -4,   0, "value out of range")                         \
    X(NOMEM,            -5,   0, "out of memory")                              \
    X(IO,               -6,   1, "I/O error")                                  \
    X(TIMEOUT,          -7,   1, "timed out")                                  \
    X(UNAVAILABLE,      -8,   1, "dependency unavailable")                     \
    X(NOT_FOUND,        -9,   0, "not found")                                  \
    X(CONFLICT,        -10,   0, "conflict with existing state")               \
    X(DECODE,          -11,   0, "cannot decode message")                      \
    X(DB,              -12,   1, "database error")                             \
    X(KAFKA,           -13,   1, "Kafka error")                                \
    X(REDIS,           -14,   1, "Redis error")                                \
    X(CONFIG,          -15,   0, "bad configuration")                          \
    X(STATE,           -16,   0, "illegal state transition")                   \
    X(DIV_ZERO,        -17,   0, "division by zero")                           \
    X(HANDLER,         -18,   0, "message handler failed")                     \
    X(INTERNAL,        -19,   0, "internal error")

typedef enum qb_err_e {
#define QB__ERR_ENUM(name, val, retr, desc) QB_ERR_##name = val,
    QB_ERR_MAP(QB__ERR_ENUM)
#undef QB__ERR_ENUM
} qb_err_t;

#define QB_OK QB_ERR_OK

/* Short upper-case name, e.g. "PARSE". Never NULL. */
const char *qb_err_name(qb_err_t err);
/* Human description, e.g. "cannot parse input". Never NULL. */
const char *qb_err_str(qb_err_t err);
/* 1 if the operation may succeed when retried later, else 0. */
int qb_err_is_retriable(qb_err_t err);

/* Format into errstr (if non-NULL) and return err: `return qb_err_set(errstr,
 * errstr_size, QB_ERR_PARSE, "line %d: bad price", n);` */
qb_err_t qb_err_set(char *errstr, size_t errstr_size, qb_err_t err,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Internal invariant: aborts with file and line when false. Never used for
 * external input, which is validated and returns an error instead. */
#define QB_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) qb__assert_fail(#cond, __FILE__, __LINE__);               \
    } while (0)
void qb__assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#endif
