/* qb_strategy_kind.h — how to write a strategy: the callbacks a kind
 * provides and the helpers the framework (qb_strategy.c) offers them.
 *
 * Adding a strategy = one new .c file that defines a `const
 * qb_strategy_kind_t qb_strategy_<name>` and one line in
 * qb_strategy_registry.c. Everything generic is done once, by the
 * framework, from the kind's tables:
 *   - parameters: JSON parsing, types, bounds, defaults, unknown and
 *     duplicate keys, error texts, canonical JSON (the `params` table,
 *     nginx style: name, type, offsetof into the kind's struct, bounds);
 *   - the common parameters (allow_short, stop_atr, atr_period,
 *     target_weight), their ATR indicator, stop distance and weight;
 *   - indicators: the kind adds them in init (qb_strategy_add_ta); the
 *     framework updates all of them on every bar, before the rules run,
 *     and publishes their values (qb_strategy_value);
 *   - warm-up: the rules run only once every indicator is valid;
 *   - the position intent, emission (only on change), the signal's
 *     symbol/time/price fields, the long-only clamp;
 *   - save/restore of the position and of the kind's `state` fields (int
 *     fields named in a table), reset (the kind's struct is copied back
 *     from a snapshot taken right after init).
 * What is left to the kind: cross-parameter checks and indicator specs
 * (init), the rules (on_bar: which position do I want now?), and the
 * confidence (confidence; NULL = always 1) and human reason (explain) of a
 * signal.
 *
 * The kind's struct ("self", self_size bytes, zeroed, then parameters
 * stored by the framework) must be plain data: no pointers to memory it
 * owns (it is copied for reset). Indicators are referred to by the index
 * qb_strategy_add_ta returned. */
#ifndef QB_STRATEGY_KIND_H
#define QB_STRATEGY_KIND_H

#include <stddef.h>

#include "strategy/qb_strategy.h"
#include "ta/qb_ta.h"

#define QB_STRATEGY_MAX_TA 8 /* indicators of one instance, ATR included */
#define QB_STRATEGY_KEEP 2   /* on_columns: keep the current intent */

typedef enum qb_strategy_ptype_e {
    QB_SPARAM_INT = 1,  /* int field; JSON number without fraction */
    QB_SPARAM_NUM = 2,  /* double field; finite JSON number */
    QB_SPARAM_BOOL = 3  /* int field (0/1); JSON true/false */
} qb_strategy_ptype_t;

/* One parameter. Bounds are inclusive; def must lie within them. */
typedef struct qb_strategy_param_s {
    const char *name;
    qb_strategy_ptype_t type;
    size_t offset; /* offsetof(kind struct, field) */
    double def, min, max;
} qb_strategy_param_t;

/* One int field of the decision state, saved and restored by name. Fields
 * that the bars alone determine (indicator memory, previous values) need
 * not be listed: the warm-up rebuilds them. */
typedef struct qb_strategy_field_s {
    const char *name;
    size_t offset; /* offsetof(kind struct, int field) */
    int min, max;  /* restore rejects values outside */
} qb_strategy_field_t;

/* What the rules see on one bar. */
typedef struct qb_strategy_ctx_s {
    const qb_strategy_t *s;
    const qb_bar_t *bar;   /* as fed, fixed point */
    const qb_ta_bar_t *tb; /* the same bar as doubles (fields indicators
                            * read, plus close, are set) */
    int position;          /* current intent: +1, 0, -1 */
    int allow_short;       /* 1: the rules may want -1 */
    /* v[i][k]: output k of indicator i on this bar (all valid here). */
    const double (*v)[QB_TA_MAX_OUTPUTS];
} qb_strategy_ctx_t;

struct qb_strategy_kind_s {
    const char *name;    /* registry name, e.g. "sma_cross" */
    const char *summary; /* one line */
    size_t self_size;    /* bytes of the kind's struct */
    const qb_strategy_param_t *params;
    int nparams;
    const qb_strategy_field_t *state;
    int nstate;
    int uses_previous; /* 1: rules compare with the previous bar (warm-up + 1) */

    /* After the parameters are stored in self: check cross-parameter rules
     * and add the indicators. Errors (QB_ERR_INVALID, message starting with
     * the kind's name) fail qb_strategy_new. */
    qb_err_t (*init)(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size);
    /* The rules, on a bar where every indicator is valid: return the wanted
     * position (+1, 0, -1); ctx->position to keep. Called on warm-up bars
     * too (ctx->position is then the unchanged intent): keep any memory up
     * to date, decide nothing else. Must be cheap and must not allocate. */
    int (*on_bar)(void *self, const qb_strategy_ctx_t *ctx);
    /* Optional, for speed (NULL: on_bar, bar by bar). The rules over n
     * consecutive bars at once, used when every indicator is a plain SMA /
     * EMA of the close: v[i][k] is output 0 of indicator i on bar k,
     * close[k] the bar's close as a double, every value valid. want[k] is
     * what on_bar returns on bar k, except that "keep the current intent"
     * (on_bar's ctx->position) is QB_STRATEGY_KEEP, the intent not being
     * known here. Must change the kind's struct exactly as n on_bar calls
     * would, and must not read anything else of the bar. */
    void (*on_columns)(void *self, const double *const *v, const double *close, size_t n,
                       int allow_short, signed char *want);
    /* Only when a signal is emitted (from != to), right after on_bar of the
     * same bar. confidence: 0..1 (NULL: always 1). explain: write
     * sig->reason (skipped when the caller turned reasons off with
     * qb_strategy_set_reasons). */
    double (*confidence)(const void *self, const qb_strategy_ctx_t *ctx, int from, int to);
    void (*explain)(const void *self, const qb_strategy_ctx_t *ctx, int from, int to,
                    qb_signal_t *sig);
    /* Optional (NULL: fills are ignored). */
    qb_err_t (*on_fill)(void *self, const qb_fill_t *fill);
};

/* Add the indicator `spec` (libs/ta syntax, e.g. "sma:10") to the instance
 * being created, or find the same one (same canonical spec) already added;
 * *idx is its index into ctx->v. Only from init. Errors: those of
 * qb_ta_new, prefixed with the kind's name; QB_ERR_RANGE when
 * QB_STRATEGY_MAX_TA are already in use. */
qb_err_t qb_strategy_add_ta(qb_strategy_t *s, const char *spec, int *idx, char *errstr,
                            size_t errstr_size);

/* Canonical spec of indicator idx ("sma:10"), for reasons. */
const char *qb_strategy_ta_spec(const qb_strategy_t *s, int idx);

/* Crossover memory: `*last_sign` is the sign of d at the last bar where d
 * was not 0 (0 before any). Feed this bar's d: returns +1 when d crossed
 * above 0 (d > 0 now, < 0 at the last bar where it was not 0), -1 for the
 * mirror image, else 0. d == 0 (and NaN) leaves the memory alone. */
static inline int qb_strategy_cross(int *last_sign, double d) {
    int sg = (d > 0) - (d < 0);
    if (sg == 0) return 0;
    int prev = *last_sign;
    *last_sign = sg;
    return prev == -sg ? sg : 0;
}

#endif
