/* strat_bollinger_reversion.c — bollinger_reversion: buy below the lower
 * band, sell above the upper one, exit at the middle (rules in
 * qb_strategy.h). No state beyond the position intent. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct bb_rev_s {
    int period;   /* parameters */
    double nbdev;
    int bi;       /* the bbands indicator: outputs upper, middle, lower */
} bb_rev_t;

static const qb_strategy_param_t bb_rev_params[] = {
    {"period", QB_SPARAM_INT, offsetof(bb_rev_t, period), 20, 2, 100000},
    {"nbdev", QB_SPARAM_NUM, offsetof(bb_rev_t, nbdev), 2, 1e-6, 100},
};

static qb_err_t bb_rev_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    bb_rev_t *b = self;
    char spec[64];
    snprintf(spec, sizeof spec, "bbands:%d:%.17g:%.17g", b->period, b->nbdev, b->nbdev);
    return qb_strategy_add_ta(s, spec, &b->bi, errstr, errstr_size);
}

static int bb_rev_on_bar(void *self, const qb_strategy_ctx_t *c) {
    const bb_rev_t *b = self;
    double close = c->tb->close;
    const double *v = c->v[b->bi]; /* upper, middle, lower */
    if (close < v[2]) return 1;
    if (close > v[0] && c->allow_short) return -1;
    if (c->position > 0 && close >= v[1]) return 0;
    if (c->position < 0 && close <= v[1]) return 0;
    return c->position;
}

static void bb_rev_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                           qb_signal_t *sig) {
    const bb_rev_t *b = self;
    double close = c->tb->close;
    const double *v = c->v[b->bi];
    const char *what = to > 0   ? "below the lower band"
                       : to < 0 ? "above the upper band"
                       : from > 0 ? "back at or above the middle band"
                                  : "back at or below the middle band";
    double band = to > 0 ? v[2] : to < 0 ? v[0] : v[1];
    snprintf(sig->reason, sizeof sig->reason, "close %.8g %s %.8g of %s", close, what, band,
             qb_strategy_ta_spec(c->s, b->bi));
}

const qb_strategy_kind_t qb_strategy_bollinger_reversion = {
    .name = "bollinger_reversion",
    .summary = "close below the lower band: long, exit at the middle (short mirror)",
    .self_size = sizeof(bb_rev_t),
    .params = bb_rev_params,
    .nparams = 2,
    .init = bb_rev_init,
    .on_bar = bb_rev_on_bar,
    .explain = bb_rev_explain,
};
