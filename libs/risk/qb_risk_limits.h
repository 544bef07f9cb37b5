/* qb_risk_limits.h — the risk limits of one account: kinds, defaults, the
 * hard maxima compiled into the binary, and a validated limit set.
 *
 * Why: every pre-trade and post-trade rule of qb-risk reads its bound from
 * here, and the bound can never be raised past what this file allows — an
 * operator (or a bug in the API) asking for max_risk_per_trade = 50% is
 * refused, whatever the control topic says.
 *
 * A kind's value is a qb_dec_t (1e-8) in the unit of the kind (proto
 * qb.v1.LimitKind, whose numbers these are): a count of 10 is 10.0, a ratio
 * or fraction 0.2 is 0.2. Each kind has
 *   default   the value in force when the account never set it (0 = none:
 *             then the hard maximum is in force, so every limit always has
 *             a finite bound);
 *   hard max  the largest value SET_LIMITS may give it (refused above);
 *   keyed     whether a per-key value is allowed (Limit.symbol): a symbol
 *             for order / position / lot limits, a sector or asset class
 *             name for the exposure kinds. A keyed value overrides the
 *             account-wide one for that key.
 * qb_risk_limit(l, kind, key) is the value in force: keyed, else account
 * value, else default, else hard max — and never above the hard max.
 *
 * Ownership: qb_risk_limits_t is a plain value with a fixed-size keyed
 * table (QB_RISK_KEYED_MAX); nothing to free. Not thread-safe. */
#ifndef QB_RISK_LIMITS_H
#define QB_RISK_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"

/* Raw qb_dec_t values: U(n) = n whole units, PCT(p) = p percent. */
#define QB_RISK_U(n) ((qb_dec_t)(n) * QB_DEC_SCALE)
#define QB_RISK_PCT(p) ((qb_dec_t)(p) * (QB_DEC_SCALE / 100))

/*   name                      num unit        default              hard max                    keyed */
#define QB_RISK_LIMIT_MAP(X)                                                                                \
    X(MAX_ORDER_QTY,            1, "units",    0,                   QB_RISK_U(1000000000),      1)          \
    X(MAX_ORDER_NOTIONAL,       2, "money",    0,                   QB_RISK_U(100000000),       1)          \
    X(MAX_POSITION_QTY,         3, "units",    0,                   QB_RISK_U(1000000000),      1)          \
    X(MAX_POSITION_NOTIONAL,    4, "money",    0,                   QB_RISK_U(500000000),       1)          \
    X(MAX_GROSS_EXPOSURE,       5, "money",    0,                   QB_RISK_U(500000000),       0)          \
    X(MAX_LEVERAGE,             6, "ratio",    0,                   QB_RISK_U(4),               0)          \
    X(MAX_DAILY_LOSS,           7, "money",    0,                   QB_RISK_U(100000000),       0)          \
    X(MAX_DRAWDOWN,             8, "fraction", QB_RISK_PCT(20),     QB_RISK_PCT(50),            0)          \
    X(MAX_ORDERS_PER_MINUTE,    9, "count",    QB_RISK_U(60),       QB_RISK_U(6000),            0)          \
    X(MAX_OPEN_ORDERS,         10, "count",    QB_RISK_U(100),      QB_RISK_U(10000),           0)          \
    X(MAX_RISK_PER_TRADE,      11, "fraction", QB_RISK_PCT(1),      QB_RISK_PCT(5),             0)          \
    X(MAX_CAPITAL_DEPLOYED,    12, "fraction", QB_RISK_PCT(80),     QB_RISK_U(4),               0)          \
    X(MAX_POSITIONS,           13, "count",    QB_RISK_U(20),       QB_RISK_U(500),             0)          \
    X(MAX_SECTOR_EXPOSURE,     14, "fraction", QB_RISK_PCT(50),     QB_RISK_U(4),               1)          \
    X(MAX_ASSET_CLASS_EXPOSURE,15, "fraction", 0,                   QB_RISK_U(4),               1)          \
    X(MAX_CORRELATED_EXPOSURE, 16, "fraction", QB_RISK_PCT(80),     QB_RISK_U(4),               0)          \
    X(MAX_PRICE_DEVIATION,     17, "fraction", QB_RISK_PCT(10),     QB_RISK_PCT(50),            1)          \
    X(SIZING_RULE,             18, "rule",     QB_RISK_U(3),        QB_RISK_U(5),               0)          \
    X(SIZING_FRACTION,         19, "fraction", QB_RISK_PCT(1),      QB_RISK_U(1),               0)          \
    X(SIZING_FIXED_QTY,        20, "units",    QB_RISK_U(1),        QB_RISK_U(1000000000),      0)          \
    X(SIZING_ATR_MULTIPLE,     21, "ratio",    QB_RISK_U(2),        QB_RISK_U(20),              0)          \
    X(SIZING_VOL_TARGET,       22, "fraction", QB_RISK_PCT(10),     QB_RISK_U(1),               0)          \
    X(LOT_SIZE,                23, "units",    QB_RISK_U(1),        QB_RISK_U(1000000),         1)          \
    X(MAX_DAILY_LOSS_FRACTION, 24, "fraction", QB_RISK_PCT(5),      QB_RISK_PCT(50),            0)

typedef enum qb_risk_limit_kind_e {
#define QB__RISK_LIMIT_ENUM(name, num, unit, def, max, keyed) QB_RISK_LIMIT_##name = num,
    QB_RISK_LIMIT_MAP(QB__RISK_LIMIT_ENUM)
#undef QB__RISK_LIMIT_ENUM
} qb_risk_limit_kind_t;

#define QB_RISK_LIMIT_KINDS 25 /* 1 .. 24 are used; 0 is "unspecified" */
#define QB_RISK_KEY_MAX 31     /* a symbol, sector or asset class name */
#define QB_RISK_KEYED_MAX 64   /* keyed values per account */

/* Sizing rules (SIZING_RULE). 4 (ALL_IN) is a backtest rule, refused. */
#define QB_RISK_SIZING_FIXED_QTY 1
#define QB_RISK_SIZING_PERCENT_EQUITY 2
#define QB_RISK_SIZING_FIXED_FRACTIONAL 3
#define QB_RISK_SIZING_VOL_TARGET 5

/* "MAX_ORDER_QTY" ...; "UNKNOWN". Case-insensitive parse (with or without
 * the "LIMIT_KIND_" prefix): QB_ERR_PARSE when unknown. */
const char *qb_risk_limit_name(int kind);
qb_err_t qb_risk_limit_parse(const char *s, int *kind);
/* "units", "money", "fraction", "ratio", "count", "rule". */
const char *qb_risk_limit_unit(int kind);
/* 1 for a kind of the table. */
int qb_risk_limit_valid(int kind);
/* The compiled-in hard maximum and default (0 = none) as qb_dec_t. */
qb_dec_t qb_risk_limit_hard_max(int kind);
qb_dec_t qb_risk_limit_default(int kind);
int qb_risk_limit_keyed(int kind);

typedef struct qb_risk_keyed_s {
    int kind;
    char key[QB_RISK_KEY_MAX + 1];
    qb_dec_t value;
} qb_risk_keyed_t;

typedef struct qb_risk_limits_s {
    qb_dec_t value[QB_RISK_LIMIT_KINDS]; /* account-wide, valid when set[] */
    uint8_t set[QB_RISK_LIMIT_KINDS];
    qb_risk_keyed_t keyed[QB_RISK_KEYED_MAX];
    size_t nkeyed;
} qb_risk_limits_t;

/* Nothing set: every kind at its default (or hard max). */
void qb_risk_limits_init(qb_risk_limits_t *l);

/* Is `value` acceptable for `kind` (and key)? QB_ERR_INVALID for an unknown
 * kind, a key on a kind without keys, a bad key, a negative value, a lot
 * size of 0 or an unknown sizing rule; QB_ERR_RANGE (with "hard maximum"
 * in the message) above the hard maximum. */
qb_err_t qb_risk_limit_check(int kind, const char *key, qb_dec_t value, char *errstr,
                             size_t errstr_size);

/* Set one value after qb_risk_limit_check (key NULL or "" = account-wide).
 * QB_ERR_RANGE when the keyed table is full. */
qb_err_t qb_risk_limits_set(qb_risk_limits_t *l, int kind, const char *key, qb_dec_t value,
                            char *errstr, size_t errstr_size);
/* Remove one value (back to the default). */
void qb_risk_limits_unset(qb_risk_limits_t *l, int kind, const char *key);
/* The stored value (not the default): 1 and *value when set, else 0. */
int qb_risk_limits_get(const qb_risk_limits_t *l, int kind, const char *key, qb_dec_t *value);

/* The value in force (see above). key may be NULL. */
qb_dec_t qb_risk_limit(const qb_risk_limits_t *l, int kind, const char *key);

#endif
