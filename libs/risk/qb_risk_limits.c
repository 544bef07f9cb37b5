/* qb_risk_limits.c — the limit table of qb_risk_limits.h and a limit set:
 * account-wide values in an array indexed by kind, keyed values in a small
 * table searched linearly (a few per account). */
#include "risk/qb_risk_limits.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct qb_risk_limit_def_s {
    const char *name, *unit;
    qb_dec_t def, max;
    int keyed;
} qb_risk_limit_def_t;

static const qb_risk_limit_def_t qb_risk_limit_defs[QB_RISK_LIMIT_KINDS] = {
#define QB__RISK_LIMIT_DEF(name, num, unit, def, max, keyed) [num] = {#name, unit, def, max, keyed},
    QB_RISK_LIMIT_MAP(QB__RISK_LIMIT_DEF)
#undef QB__RISK_LIMIT_DEF
};

int qb_risk_limit_valid(int kind) {
    return kind > 0 && kind < QB_RISK_LIMIT_KINDS && qb_risk_limit_defs[kind].name;
}

const char *qb_risk_limit_name(int kind) {
    return qb_risk_limit_valid(kind) ? qb_risk_limit_defs[kind].name : "UNKNOWN";
}

qb_err_t qb_risk_limit_parse(const char *s, int *kind) {
    if (!s) return QB_ERR_PARSE;
    if (strncasecmp(s, "LIMIT_KIND_", 11) == 0) s += 11;
    for (int k = 1; k < QB_RISK_LIMIT_KINDS; k++)
        if (qb_risk_limit_defs[k].name && strcasecmp(s, qb_risk_limit_defs[k].name) == 0) {
            *kind = k;
            return QB_OK;
        }
    return QB_ERR_PARSE;
}

const char *qb_risk_limit_unit(int kind) {
    return qb_risk_limit_valid(kind) ? qb_risk_limit_defs[kind].unit : "";
}
qb_dec_t qb_risk_limit_hard_max(int kind) {
    return qb_risk_limit_valid(kind) ? qb_risk_limit_defs[kind].max : 0;
}
qb_dec_t qb_risk_limit_default(int kind) {
    return qb_risk_limit_valid(kind) ? qb_risk_limit_defs[kind].def : 0;
}
int qb_risk_limit_keyed(int kind) {
    return qb_risk_limit_valid(kind) ? qb_risk_limit_defs[kind].keyed : 0;
}

void qb_risk_limits_init(qb_risk_limits_t *l) { memset(l, 0, sizeof *l); }

static int qb_risk_key_ok(const char *key) {
    size_t n = strlen(key);
    if (n == 0 || n > QB_RISK_KEY_MAX) return 0;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("._-/^=:", *p)))
            return 0;
    return 1;
}

qb_err_t qb_risk_limit_check(int kind, const char *key, qb_dec_t value, char *errstr,
                             size_t errstr_size) {
    if (!qb_risk_limit_valid(kind))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "unknown limit kind %d", kind);
    const qb_risk_limit_def_t *d = &qb_risk_limit_defs[kind];
    char v[QB_DEC_STRLEN], m[QB_DEC_STRLEN];
    qb_dec_format(value, v, sizeof v);
    qb_dec_format(d->max, m, sizeof m);
    if (key && *key) {
        if (!d->keyed)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s is account-wide: no symbol/key allowed ('%.40s')", d->name, key);
        if (!qb_risk_key_ok(key))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s: bad key '%.40s' (1-%d of letters, digits, ._-/^=:)", d->name,
                              key, QB_RISK_KEY_MAX);
    }
    if (value < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: value %s must be >= 0",
                          d->name, v);
    if (value > d->max)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "%s: value %s exceeds the hard maximum %s %s compiled into qb-risk",
                          d->name, v, m, d->unit);
    if (kind == QB_RISK_LIMIT_LOT_SIZE && value == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "LOT_SIZE must be > 0");
    if (kind == QB_RISK_LIMIT_SIZING_RULE) {
        int64_t r = value / QB_DEC_SCALE;
        if (value % QB_DEC_SCALE != 0 ||
            (r != QB_RISK_SIZING_FIXED_QTY && r != QB_RISK_SIZING_PERCENT_EQUITY &&
             r != QB_RISK_SIZING_FIXED_FRACTIONAL && r != QB_RISK_SIZING_VOL_TARGET))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "SIZING_RULE %s: 1 fixed_qty, 2 percent_equity, 3 fixed_fractional "
                              "or 5 volatility_target",
                              v);
    }
    return QB_OK;
}

static qb_risk_keyed_t *qb_risk_keyed_find(const qb_risk_limits_t *l, int kind,
                                           const char *key) {
    for (size_t i = 0; i < l->nkeyed; i++)
        if (l->keyed[i].kind == kind && strcasecmp(l->keyed[i].key, key) == 0)
            return (qb_risk_keyed_t *)&l->keyed[i];
    return NULL;
}

qb_err_t qb_risk_limits_set(qb_risk_limits_t *l, int kind, const char *key, qb_dec_t value,
                            char *errstr, size_t errstr_size) {
    qb_err_t e = qb_risk_limit_check(kind, key, value, errstr, errstr_size);
    if (e) return e;
    if (!key || !*key) {
        l->value[kind] = value;
        l->set[kind] = 1;
        return QB_OK;
    }
    qb_risk_keyed_t *k = qb_risk_keyed_find(l, kind, key);
    if (!k) {
        if (l->nkeyed == QB_RISK_KEYED_MAX)
            return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                              "at most %d keyed limits per account", QB_RISK_KEYED_MAX);
        k = &l->keyed[l->nkeyed++];
        k->kind = kind;
        snprintf(k->key, sizeof k->key, "%s", key);
    }
    k->value = value;
    return QB_OK;
}

void qb_risk_limits_unset(qb_risk_limits_t *l, int kind, const char *key) {
    if (!qb_risk_limit_valid(kind)) return;
    if (!key || !*key) {
        l->set[kind] = 0;
        l->value[kind] = 0;
        return;
    }
    qb_risk_keyed_t *k = qb_risk_keyed_find(l, kind, key);
    if (k) *k = l->keyed[--l->nkeyed];
}

int qb_risk_limits_get(const qb_risk_limits_t *l, int kind, const char *key, qb_dec_t *value) {
    if (!qb_risk_limit_valid(kind)) return 0;
    if (key && *key) {
        const qb_risk_keyed_t *k = qb_risk_keyed_find(l, kind, key);
        if (!k) return 0;
        *value = k->value;
        return 1;
    }
    if (!l->set[kind]) return 0;
    *value = l->value[kind];
    return 1;
}

qb_dec_t qb_risk_limit(const qb_risk_limits_t *l, int kind, const char *key) {
    if (!qb_risk_limit_valid(kind)) return 0;
    const qb_risk_limit_def_t *d = &qb_risk_limit_defs[kind];
    qb_dec_t v;
    if (!(key && *key && qb_risk_limits_get(l, kind, key, &v)) &&
        !qb_risk_limits_get(l, kind, NULL, &v))
        v = d->def ? d->def : d->max;
    return v > d->max ? d->max : v; /* a stored value can never beat the binary */
}
