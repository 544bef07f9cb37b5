/* bench_strategy.c — how fast qb_strategy_on_bar is: bars per second of
 * each built-in (default parameters) over 1M random-walk 1-minute bars, one
 * instance, one core. sma_cross 10/30 is the backtest engine's reference
 * case (its goal is >= 40M bars/s with full accounting, so the strategy's
 * share must be a fraction of that). Prints numbers only; no pass/fail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_time.h"
#include "core/qb_types.h"
#include "strategy/qb_strategy.h"

#define NBARS 1000000
#define ROUNDS 3

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int main(void) {
    qb_bar_t *bars = calloc(NBARS, sizeof *bars);
    if (!bars) return 1;
    uint64_t st = 1;
    int64_t p = 100 * QB_DEC_SCALE;
    for (int i = 0; i < NBARS; i++) {
        qb_bar_t *b = &bars[i];
        qb_symbol_set(&b->symbol, "BENCH", NULL, 0);
        strcpy(b->timeframe, "1m");
        b->ts = 1704067200000000000LL + (int64_t)i * 60000000000LL; /* 1m bars */
        p += ((int64_t)(bench_rand(&st) % 201) - 100) * 1000000; /* +-1.00 */
        if (p < 5 * QB_DEC_SCALE) p = 5 * QB_DEC_SCALE;
        b->open = b->close = p;
        b->high = p + 30000000;
        b->low = p - 30000000;
        b->volume = 1000 * QB_DEC_SCALE;
    }
    printf("qb_strategy_on_bar, %d bars, best of %d\n", NBARS, ROUNDS);
    for (int k = -1; k < qb_strategy_kind_count(); k++) {
        /* k = -1: sma_cross without reasons (qb_strategy_set_reasons 0) */
        const char *kind = qb_strategy_kind_name(qb_strategy_kind_at(k < 0 ? 0 : k));
        double best = 0;
        long signals = 0;
        for (int r = 0; r < ROUNDS; r++) {
            qb_strategy_t *s = NULL;
            char e[256];
            if (qb_strategy_new(kind, NULL, &s, e, sizeof e)) {
                fprintf(stderr, "%s\n", e);
                return 1;
            }
            qb_strategy_set_reasons(s, k >= 0);
            qb_signal_t sig;
            signals = 0;
            int64_t t0 = qb_time_mono_ns();
            for (int i = 0; i < NBARS; i++) signals += qb_strategy_on_bar(s, &bars[i], &sig) == 1;
            double rate = NBARS / ((double)(qb_time_mono_ns() - t0) / 1e9);
            if (rate > best) best = rate;
            qb_strategy_destroy(s);
        }
        printf("  %-22s %-9s %6.1f M bars/s  %6.1f ns/bar  (%ld signals)\n", kind,
               k < 0 ? "no reason" : "", best / 1e6,
               1e3 / (best / 1e6), signals);
    }
    free(bars);
    return 0;
}
