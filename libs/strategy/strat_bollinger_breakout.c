/* strat_bollinger_breakout.c — bollinger_breakout: buy above the upper
 * band, sell below the lower one, exit back through the middle (rules in
 * qb_strategy.h). No state beyond the position intent. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct bb_brk_s {
    int period;   /* parameters */
    double nbdev;
    int bi;       /* the bbands indicator: outputs upper, middle, lower */
} bb_brk_t;

static const qb_strategy_param_t bb_brk_params[] = {
    {"period", QB_SPARAM_INT, offsetof(bb_brk_t, period), 20, 2, 100000},
    {"nbdev", QB_SPARAM_NUM, offsetof(bb_brk_t, nbdev), 2, 1e-6, 100},
};

static qb_err_t bb_brk_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    bb_brk_t *b = self;
    char spec[64];
    snprintf(spec, sizeof spec, "bbands:%d:%.17g:%.17g", b->period, b->nbdev, b->nbdev);
    return qb_strategy_add_ta(s, spec, &b->bi, errstr, errstr_size);
}

static int bb_brk_on_bar(void *self, const qb_strategy_ctx_t *c) {
    const bb_brk_t *b = self;
    double close = c->tb->close;
    const double *v = c->v[b->bi]; /* upper, middle, lower */
    if (close > v[0]) return 1;
    if (close < v[2] && c->allow_short) return -1;
    if (c->position > 0 && close < v[1]) return 0;
    if (c->position < 0 && close > v[1]) return 0;
    return c->position;
}

static void bb_brk_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                           qb_signal_t *sig) {
    const bb_brk_t *b = self;
    double close = c->tb->close;
    const double *v = c->v[b->bi];
    const char *what = to > 0     ? "broke above the upper band"
                       : to < 0   ? "broke below the lower band"
                       : from > 0 ? "fell back below the middle band"
                                  : "rose back above the middle band";
    double band = to > 0 ? v[0] : to < 0 ? v[2] : v[1];
    snprintf(sig->reason, sizeof sig->reason, "close %.8g %s %.8g of %s", close, what, band,
             qb_strategy_ta_spec(c->s, b->bi));
}

const qb_strategy_kind_t qb_strategy_bollinger_breakout = {
    .name = "bollinger_breakout",
    .summary = "close above the upper band: long, exit below the middle (short mirror)",
    .self_size = sizeof(bb_brk_t),
    .params = bb_brk_params,
    .nparams = 2,
    .init = bb_brk_init,
    .on_bar = bb_brk_on_bar,
    .explain = bb_brk_explain,
};
