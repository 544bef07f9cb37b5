/* strat_macd_momentum.c — macd_momentum: the MACD line crossing its signal
 * line (rules in qb_strategy.h). State: the crossover memory, as in
 * strat_ma_cross.c. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct macd_mom_s {
    int fast, slow, signal; /* parameters */
    int mi;                 /* the macd indicator: outputs macd, signal, hist */
    int last_sign;          /* crossover memory of macd - signal */
} macd_mom_t;

static const qb_strategy_param_t macd_params[] = {
    {"fast", QB_SPARAM_INT, offsetof(macd_mom_t, fast), 12, 2, 100000},
    {"slow", QB_SPARAM_INT, offsetof(macd_mom_t, slow), 26, 2, 100000},
    {"signal", QB_SPARAM_INT, offsetof(macd_mom_t, signal), 9, 1, 100000},
};
static const qb_strategy_field_t macd_state[] = {
    {"last_sign", offsetof(macd_mom_t, last_sign), -1, 1},
};

static qb_err_t macd_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    macd_mom_t *m = self;
    if (m->slow <= m->fast)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "macd_momentum: slow (%d) must be > fast (%d)", m->slow, m->fast);
    char spec[48];
    snprintf(spec, sizeof spec, "macd:%d:%d:%d", m->fast, m->slow, m->signal);
    return qb_strategy_add_ta(s, spec, &m->mi, errstr, errstr_size);
}

static int macd_on_bar(void *self, const qb_strategy_ctx_t *c) {
    macd_mom_t *m = self;
    int x = qb_strategy_cross(&m->last_sign, c->v[m->mi][0] - c->v[m->mi][1]);
    if (x > 0) return 1;
    if (x < 0) return c->allow_short ? -1 : 0;
    return c->position;
}

static void macd_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                         qb_signal_t *sig) {
    const macd_mom_t *m = self;
    double a = c->v[m->mi][0], b = c->v[m->mi][1];
    snprintf(sig->reason, sizeof sig->reason, "%s crossed %s its signal line (%.6g %s %.6g)",
             qb_strategy_ta_spec(c->s, m->mi), a > b ? "above" : "below", a, a > b ? ">" : "<",
             b);
}

const qb_strategy_kind_t qb_strategy_macd_momentum = {
    .name = "macd_momentum",
    .summary = "MACD crossing its signal line: long above, flat/short below",
    .self_size = sizeof(macd_mom_t),
    .params = macd_params,
    .nparams = 3,
    .state = macd_state,
    .nstate = 1,
    .uses_previous = 1,
    .init = macd_init,
    .on_bar = macd_on_bar,
    .explain = macd_explain,
};
