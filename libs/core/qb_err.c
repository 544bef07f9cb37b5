/* qb_err.c — names and descriptions of qb_err_t, generated from QB_ERR_MAP. */
#include "core/qb_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *qb_err_name(qb_err_t err) {
    switch (err) {
#define QB__ERR_NAME(name, val, retr, desc) case QB_ERR_##name: return #name;
        QB_ERR_MAP(QB__ERR_NAME)
#undef QB__ERR_NAME
    }
    return "UNKNOWN";
}

const char *qb_err_str(qb_err_t err) {
    switch (err) {
#define QB__ERR_STR(name, val, retr, desc) case QB_ERR_##name: return desc;
        QB_ERR_MAP(QB__ERR_STR)
#undef QB__ERR_STR
    }
    return "unknown error";
}

int qb_err_is_retriable(qb_err_t err) {
    switch (err) {
#define QB__ERR_RETR(name, val, retr, desc) case QB_ERR_##name: return retr;
        QB_ERR_MAP(QB__ERR_RETR)
#undef QB__ERR_RETR
    }
    return 0;
}

qb_err_t qb_err_set(char *errstr, size_t errstr_size, qb_err_t err,
                    const char *fmt, ...) {
    if (errstr && errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

void qb__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s\","
                    "\"file\":\"%s:%d\"}\n", expr, file, line);
    abort();
}
