/* strat_ma_cross.c — sma_cross and ema_cross: a fast moving average of the
 * close crossing a slow one (rules in qb_strategy.h). One file for both:
 * they differ only in the indicator name. fast = 1 means the close itself
 * ("price crosses its SMA"), as SMA(1) = EMA(1) = close.
 *
 * State: last_sign, the sign of fast - slow at the last bar where they
 * differed (the crossover memory); saved, as a warm-up with fast == slow on
 * every bar could not rebuild it. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct ma_cross_s {
    int fast, slow;    /* parameters */
    const char *ma;    /* "sma" or "ema" */
    int fi, si;        /* indicator indices; fi = -1: the close */
    int last_sign;     /* crossover memory */
} ma_cross_t;

static const qb_strategy_param_t sma_params[] = {
    {"fast", QB_SPARAM_INT, offsetof(ma_cross_t, fast), 10, 1, 100000},
    {"slow", QB_SPARAM_INT, offsetof(ma_cross_t, slow), 30, 2, 100000},
};
static const qb_strategy_param_t ema_params[] = {
    {"fast", QB_SPARAM_INT, offsetof(ma_cross_t, fast), 12, 1, 100000},
    {"slow", QB_SPARAM_INT, offsetof(ma_cross_t, slow), 26, 2, 100000},
};
static const qb_strategy_field_t ma_cross_state[] = {
    {"last_sign", offsetof(ma_cross_t, last_sign), -1, 1},
};

static qb_err_t ma_cross_init(qb_strategy_t *s, ma_cross_t *m, const char *kind,
                              const char *ma, char *errstr, size_t errstr_size) {
    if (m->slow <= m->fast)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "%s: slow (%d) must be > fast (%d)", kind, m->slow, m->fast);
    char spec[32];
    m->ma = ma;
    m->fi = -1;
    if (m->fast > 1) {
        snprintf(spec, sizeof spec, "%s:%d", ma, m->fast);
        qb_err_t err = qb_strategy_add_ta(s, spec, &m->fi, errstr, errstr_size);
        if (err) return err;
    }
    snprintf(spec, sizeof spec, "%s:%d", ma, m->slow);
    return qb_strategy_add_ta(s, spec, &m->si, errstr, errstr_size);
}

static qb_err_t sma_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    return ma_cross_init(s, self, "sma_cross", "sma", errstr, errstr_size);
}
static qb_err_t ema_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    return ma_cross_init(s, self, "ema_cross", "ema", errstr, errstr_size);
}

static inline double fast_value(const ma_cross_t *m, const qb_strategy_ctx_t *c) {
    return m->fi < 0 ? c->tb->close : c->v[m->fi][0];
}

static int ma_cross_on_bar(void *self, const qb_strategy_ctx_t *c) {
    ma_cross_t *m = self;
    int x = qb_strategy_cross(&m->last_sign, fast_value(m, c) - c->v[m->si][0]);
    if (x > 0) return 1;
    if (x < 0) return c->allow_short ? -1 : 0;
    return c->position;
}

/* on_bar over a run (qb_strategy_kind.h): the same crossover memory */
static void ma_cross_on_columns(void *self, const double *const *v, const double *close,
                                size_t n, int allow_short, signed char *want) {
    ma_cross_t *m = self;
    const double *f = m->fi < 0 ? close : v[m->fi], *sl = v[m->si];
    const int down = allow_short ? -1 : 0;
    int last = m->last_sign;
    size_t k = 0;
    while (k < n) {
        /* the usual bar: the difference keeps last's sign - no crossing,
         * last unchanged */
        if (last > 0)
            for (; k < n && f[k] - sl[k] > 0; k++) want[k] = QB_STRATEGY_KEEP;
        else if (last < 0)
            for (; k < n && f[k] - sl[k] < 0; k++) want[k] = QB_STRATEGY_KEEP;
        if (k == n) break;
        double d = f[k] - sl[k];
        int sg = (d > 0) - (d < 0);
        int x = sg != 0 && last == -sg ? sg : 0; /* qb_strategy_cross */
        last = sg != 0 ? sg : last;
        want[k++] = (signed char)(x > 0 ? 1 : x < 0 ? down : QB_STRATEGY_KEEP);
    }
    m->last_sign = last;
}

static void ma_cross_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                             qb_signal_t *sig) {
    const ma_cross_t *m = self;
    double f = fast_value(m, c), sl = c->v[m->si][0];
    snprintf(sig->reason, sizeof sig->reason, "%s crossed %s %s (%.8g %s %.8g)",
             m->fi < 0 ? "close" : qb_strategy_ta_spec(c->s, m->fi),
             f > sl ? "above" : "below", qb_strategy_ta_spec(c->s, m->si), f,
             f > sl ? ">" : "<", sl);
}

const qb_strategy_kind_t qb_strategy_sma_cross = {
    .name = "sma_cross",
    .summary = "SMA(fast) crossing SMA(slow): long above, flat/short below",
    .self_size = sizeof(ma_cross_t),
    .params = sma_params,
    .nparams = 2,
    .state = ma_cross_state,
    .nstate = 1,
    .uses_previous = 1,
    .init = sma_init,
    .on_bar = ma_cross_on_bar,
    .on_columns = ma_cross_on_columns,
    .explain = ma_cross_explain,
};

const qb_strategy_kind_t qb_strategy_ema_cross = {
    .name = "ema_cross",
    .summary = "EMA(fast) crossing EMA(slow): long above, flat/short below",
    .self_size = sizeof(ma_cross_t),
    .params = ema_params,
    .nparams = 2,
    .state = ma_cross_state,
    .nstate = 1,
    .uses_previous = 1,
    .init = ema_init,
    .on_bar = ma_cross_on_bar,
    .on_columns = ma_cross_on_columns,
    .explain = ma_cross_explain,
};
