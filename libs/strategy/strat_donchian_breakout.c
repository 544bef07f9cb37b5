/* strat_donchian_breakout.c — donchian_breakout: the turtle rule. Buy a
 * close above the highest high of the previous `entry` bars, exit below the
 * lowest low of the previous `exit` bars (short mirror; rules in
 * qb_strategy.h). The channels EXCLUDE the current bar: libs/ta's
 * donchian includes it, so the rules compare with the channel values of
 * the previous bar, kept here (rebuilt by the warm-up, not saved). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct donchian_s {
    int entry, exit; /* parameters */
    int ei, xi;      /* donchian:entry, donchian:exit (outputs upper, middle, lower) */
    double hh_entry, ll_entry, hh_exit, ll_exit; /* previous bar's channels; NaN at first */
    double level;    /* the channel value the last deciding rule compared with */
} donchian_t;

static const qb_strategy_param_t donchian_params[] = {
    {"entry", QB_SPARAM_INT, offsetof(donchian_t, entry), 20, 2, 100000},
    {"exit", QB_SPARAM_INT, offsetof(donchian_t, exit), 10, 2, 100000},
};

static qb_err_t donchian_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    donchian_t *d = self;
    char spec[32];
    snprintf(spec, sizeof spec, "donchian:%d", d->entry);
    qb_err_t err = qb_strategy_add_ta(s, spec, &d->ei, errstr, errstr_size);
    if (err) return err;
    snprintf(spec, sizeof spec, "donchian:%d", d->exit);
    err = qb_strategy_add_ta(s, spec, &d->xi, errstr, errstr_size);
    d->hh_entry = d->ll_entry = d->hh_exit = d->ll_exit = NAN;
    return err;
}

/* Decide with the previous bar's channels, then move them to this bar.
 * `level` keeps the channel value the deciding rule compared with, for the
 * reason text (explain runs after the shift). */
static int donchian_on_bar(void *self, const qb_strategy_ctx_t *c) {
    donchian_t *d = self;
    double close = c->tb->close;
    int want = c->position;
    /* NaN (the first bar with valid channels) compares false: no rule fires. */
    if (close > d->hh_entry) want = 1, d->level = d->hh_entry;
    else if (close < d->ll_entry && c->allow_short) want = -1, d->level = d->ll_entry;
    else if (c->position > 0 && close < d->ll_exit) want = 0, d->level = d->ll_exit;
    else if (c->position < 0 && close > d->hh_exit) want = 0, d->level = d->hh_exit;
    d->hh_entry = c->v[d->ei][0];
    d->ll_entry = c->v[d->ei][2];
    d->hh_exit = c->v[d->xi][0];
    d->ll_exit = c->v[d->xi][2];
    return want;
}

static void donchian_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                             qb_signal_t *sig) {
    const donchian_t *d = self;
    int up = to > 0 || (to == 0 && from < 0);
    snprintf(sig->reason, sizeof sig->reason, "close %.8g %s %.8g, the %s of the previous %d bars",
             c->tb->close, up ? ">" : "<", d->level, up ? "highest high" : "lowest low",
             to != 0 ? d->entry : d->exit);
}

const qb_strategy_kind_t qb_strategy_donchian_breakout = {
    .name = "donchian_breakout",
    .summary = "close above the previous entry-bar high: long; below the exit-bar low: exit",
    .self_size = sizeof(donchian_t),
    .params = donchian_params,
    .nparams = 2,
    .uses_previous = 1,
    .init = donchian_init,
    .on_bar = donchian_on_bar,
    .explain = donchian_explain,
};
