/* strat_rsi_reversion.c — rsi_reversion: buy oversold, sell overbought
 * (levels, not crossings; rules in qb_strategy.h). No state beyond the
 * position intent. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct rsi_rev_s {
    int period;                  /* parameters */
    double oversold, overbought;
    int ri;                      /* the rsi indicator */
} rsi_rev_t;

static const qb_strategy_param_t rsi_params[] = {
    {"period", QB_SPARAM_INT, offsetof(rsi_rev_t, period), 14, 2, 100000},
    {"oversold", QB_SPARAM_NUM, offsetof(rsi_rev_t, oversold), 30, 0, 100},
    {"overbought", QB_SPARAM_NUM, offsetof(rsi_rev_t, overbought), 70, 0, 100},
};

static qb_err_t rsi_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    rsi_rev_t *r = self;
    if (r->overbought <= r->oversold)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "rsi_reversion: overbought (%g) must be > oversold (%g)",
                          r->overbought, r->oversold);
    char spec[32];
    snprintf(spec, sizeof spec, "rsi:%d", r->period);
    return qb_strategy_add_ta(s, spec, &r->ri, errstr, errstr_size);
}

static int rsi_on_bar(void *self, const qb_strategy_ctx_t *c) {
    const rsi_rev_t *r = self;
    double v = c->v[r->ri][0];
    if (v < r->oversold) return 1;
    if (v > r->overbought) return c->allow_short ? -1 : 0;
    return c->position;
}

static void rsi_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                        qb_signal_t *sig) {
    const rsi_rev_t *r = self;
    double v = c->v[r->ri][0];
    snprintf(sig->reason, sizeof sig->reason, "%s %.4g %s %g (%s)",
             qb_strategy_ta_spec(c->s, r->ri), v, to > 0 ? "<" : ">",
             to > 0 ? r->oversold : r->overbought, to > 0 ? "oversold" : "overbought");
}

const qb_strategy_kind_t qb_strategy_rsi_reversion = {
    .name = "rsi_reversion",
    .summary = "RSI below oversold: long; above overbought: flat/short",
    .self_size = sizeof(rsi_rev_t),
    .params = rsi_params,
    .nparams = 3,
    .init = rsi_init,
    .on_bar = rsi_on_bar,
    .explain = rsi_explain,
};
