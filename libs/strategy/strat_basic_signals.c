/* strat_basic_signals.c — basic_signals, the composite "basic signal
 * generator": RSI, an SMA cross and MACD vote; the majority (at least
 * min_votes) decides; confidence = the share of the three that agree
 * (rules in qb_strategy.h). Votes are recomputed on every bar from the
 * indicators alone, so there is no state beyond the position intent; the
 * last votes are kept only for the reason text. */
#include <stddef.h>
#include <stdio.h>

#include "strategy/qb_strategy_kind.h"

typedef struct basic_s {
    int rsi;                     /* parameters */
    double oversold, overbought;
    int fast, slow;
    int macd_fast, macd_slow, macd_signal;
    int min_votes;
    int ri, fi, si, mi;          /* indicators; fi = -1: the close */
    int vr, vs, vm;              /* the last votes: +1, 0, -1 */
} basic_t;

static const qb_strategy_param_t basic_params[] = {
    {"rsi", QB_SPARAM_INT, offsetof(basic_t, rsi), 14, 2, 100000},
    {"oversold", QB_SPARAM_NUM, offsetof(basic_t, oversold), 30, 0, 100},
    {"overbought", QB_SPARAM_NUM, offsetof(basic_t, overbought), 70, 0, 100},
    {"fast", QB_SPARAM_INT, offsetof(basic_t, fast), 10, 1, 100000},
    {"slow", QB_SPARAM_INT, offsetof(basic_t, slow), 30, 2, 100000},
    {"macd_fast", QB_SPARAM_INT, offsetof(basic_t, macd_fast), 12, 2, 100000},
    {"macd_slow", QB_SPARAM_INT, offsetof(basic_t, macd_slow), 26, 2, 100000},
    {"macd_signal", QB_SPARAM_INT, offsetof(basic_t, macd_signal), 9, 1, 100000},
    {"min_votes", QB_SPARAM_INT, offsetof(basic_t, min_votes), 2, 1, 3},
};

static qb_err_t basic_init(qb_strategy_t *s, void *self, char *errstr, size_t errstr_size) {
    basic_t *b = self;
    if (b->overbought <= b->oversold)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "basic_signals: overbought (%g) must be > oversold (%g)",
                          b->overbought, b->oversold);
    if (b->slow <= b->fast)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "basic_signals: slow (%d) must be > fast (%d)", b->slow, b->fast);
    if (b->macd_slow <= b->macd_fast)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "basic_signals: macd_slow (%d) must be > macd_fast (%d)",
                          b->macd_slow, b->macd_fast);
    char spec[48];
    qb_err_t err;
    snprintf(spec, sizeof spec, "rsi:%d", b->rsi);
    if ((err = qb_strategy_add_ta(s, spec, &b->ri, errstr, errstr_size))) return err;
    b->fi = -1;
    if (b->fast > 1) {
        snprintf(spec, sizeof spec, "sma:%d", b->fast);
        if ((err = qb_strategy_add_ta(s, spec, &b->fi, errstr, errstr_size))) return err;
    }
    snprintf(spec, sizeof spec, "sma:%d", b->slow);
    if ((err = qb_strategy_add_ta(s, spec, &b->si, errstr, errstr_size))) return err;
    snprintf(spec, sizeof spec, "macd:%d:%d:%d", b->macd_fast, b->macd_slow, b->macd_signal);
    return qb_strategy_add_ta(s, spec, &b->mi, errstr, errstr_size);
}

static inline int sign(double d) { return (d > 0) - (d < 0); }

static int basic_on_bar(void *self, const qb_strategy_ctx_t *c) {
    basic_t *b = self;
    double r = c->v[b->ri][0];
    double f = b->fi < 0 ? c->tb->close : c->v[b->fi][0];
    b->vr = r < b->oversold ? 1 : r > b->overbought ? -1 : 0;
    b->vs = sign(f - c->v[b->si][0]);
    b->vm = sign(c->v[b->mi][0] - c->v[b->mi][1]);
    int longs = (b->vr > 0) + (b->vs > 0) + (b->vm > 0);
    int shorts = c->allow_short ? (b->vr < 0) + (b->vs < 0) + (b->vm < 0) : 0;
    if (longs >= b->min_votes && longs > shorts) return 1;
    if (shorts >= b->min_votes && shorts > longs) return -1;
    return 0;
}

static const char *vote_name(int v) { return v > 0 ? "long" : v < 0 ? "short" : "neutral"; }

/* How many of the three votes agree with `to` (see qb_strategy.h). */
static int basic_agree(const basic_t *b, const qb_strategy_ctx_t *c, int to) {
    int longs = (b->vr > 0) + (b->vs > 0) + (b->vm > 0);
    int shorts = c->allow_short ? (b->vr < 0) + (b->vs < 0) + (b->vm < 0) : 0;
    return to > 0 ? longs : to < 0 ? shorts : 3 - (longs > shorts ? longs : shorts);
}

static double basic_confidence(const void *self, const qb_strategy_ctx_t *c, int from, int to) {
    return basic_agree(self, c, to) / 3.0;
}

static void basic_explain(const void *self, const qb_strategy_ctx_t *c, int from, int to,
                          qb_signal_t *sig) {
    const basic_t *b = self;
    int agree = basic_agree(b, c, to);
    snprintf(sig->reason, sizeof sig->reason, "%d/3 agree: rsi %s (%.4g), sma %s, macd %s",
             agree, vote_name(b->vr), c->v[b->ri][0], vote_name(b->vs), vote_name(b->vm));
}

const qb_strategy_kind_t qb_strategy_basic_signals = {
    .name = "basic_signals",
    .summary = "RSI, SMA cross and MACD vote; confidence = share that agree",
    .self_size = sizeof(basic_t),
    .params = basic_params,
    .nparams = 9,
    .init = basic_init,
    .on_bar = basic_on_bar,
    .confidence = basic_confidence,
    .explain = basic_explain,
};
