/* qb_strategy_registry.c — the table of strategy kinds, by registry name.
 *
 * Adding a strategy: write strat_<name>.c defining
 * `const qb_strategy_kind_t qb_strategy_<name>` (see qb_strategy_kind.h)
 * and add one X(<name>) line below. The order is the order of listings
 * (qb_strategy_kind_at, the "known:" list of an unknown-kind error). */
#include "strategy/qb_strategy.h"
#include "strategy/qb_strategy_kind.h"

#define QB_STRATEGY_BUILTINS(X)                                                \
    X(sma_cross)                                                               \
    X(ema_cross)                                                               \
    X(rsi_reversion)                                                           \
    X(macd_momentum)                                                           \
    X(bollinger_reversion)                                                     \
    X(bollinger_breakout)                                                      \
    X(donchian_breakout)                                                       \
    X(basic_signals)

#define QB__STRAT_DECL(name) extern const qb_strategy_kind_t qb_strategy_##name;
QB_STRATEGY_BUILTINS(QB__STRAT_DECL)
#undef QB__STRAT_DECL

static const qb_strategy_kind_t *const kinds[] = {
#define QB__STRAT_ROW(name) &qb_strategy_##name,
    QB_STRATEGY_BUILTINS(QB__STRAT_ROW)
#undef QB__STRAT_ROW
};

int qb_strategy_kind_count(void) { return (int)(sizeof kinds / sizeof kinds[0]); }

const qb_strategy_kind_t *qb_strategy_kind_at(int i) {
    return i >= 0 && i < qb_strategy_kind_count() ? kinds[i] : NULL;
}
