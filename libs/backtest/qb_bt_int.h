/* qb_bt_int.h — internals shared by the backtest library's files (not a
 * public header): an snprintf-like text builder for the JSON writers. */
#ifndef QB_BT_INT_H
#define QB_BT_INT_H

#include <stddef.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"

/* Appends like snprintf into buf[cap]: what does not fit is dropped, len
 * counts everything (the full length). */
typedef struct qb_bt_sb_s {
    char *buf;
    size_t cap, len;
} qb_bt_sb_t;

void qb_bt_sb_printf(qb_bt_sb_t *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void qb_bt_sb_dec(qb_bt_sb_t *sb, qb_dec_t v);       /* exact, shortest */
void qb_bt_sb_double(qb_bt_sb_t *sb, double v);      /* %.10g; null for inf/nan */
void qb_bt_sb_time(qb_bt_sb_t *sb, qb_time_t t);     /* "ISO" or null for 0 */
void qb_bt_sb_str(qb_bt_sb_t *sb, const char *s);    /* JSON string, escaped */

#endif
