/* bench_portfolio.c — how fast the per-bar path and the order path of
 * libs/portfolio are, on one core: 100 symbols, each holding a position.
 *   mark               qb_portfolio_mark alone (the equity update)
 *   on_bar, idle       qb_sim_on_bar with no working orders (the common
 *                      case in a backtest: match skipped, mark at close)
 *   on_bar, 1 resting  every symbol has one limit order that never fills
 *   market round trip  submit a market order, fill it on the next bar
 *                      (validation, margin check, slippage, commission,
 *                      booking, event)
 *   all-in sizing      qb_portfolio_max_qty: the extra work of an ALL_IN
 *                      order at its fill
 *   submit + cancel    a limit order submitted and canceled
 * Prints numbers only; there is no pass/fail. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_time.h"
#include "portfolio/qb_portfolio.h"
#include "portfolio/qb_sim.h"

#define NSYM 100
#define NPX 1024
#define HOUR (3600 * QB_NS_PER_SEC)

static qb_dec_t px[NPX]; /* a random walk of prices, 2 decimals */
static volatile int64_t sink;

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void setup_prices(void) {
    uint64_t s = 7;
    int64_t p = 10000; /* cents */
    for (int i = 0; i < NPX; i++) {
        p += (int64_t)(bench_rand(&s) % 61) - 30;
        if (p < 1000) p = 1000;
        px[i] = p * 1000000; /* cents -> 1e-8 */
    }
}

static qb_pf_bar_t make_bar(qb_time_t ts, int k) {
    qb_dec_t o = px[k & (NPX - 1)], c = px[(k + 1) & (NPX - 1)];
    qb_pf_bar_t b = {ts, o, (o > c ? o : c) + 5000000, (o < c ? o : c) - 5000000, c,
                     100000 * QB_DEC_SCALE};
    return b;
}

typedef struct world_s {
    qb_portfolio_t *pf;
    qb_sim_t *sim;
    uint32_t id[NSYM];
    qb_time_t ts;
} world_t;

static void world_init(world_t *w) {
    qb_portfolio_config_t pc;
    qb_portfolio_config_default(&pc);
    pc.initial_cash = 50000000 * QB_DEC_SCALE;
    pc.allow_short = 1;
    qb_portfolio_new(&pc, &w->pf, NULL, 0);
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.slippage_bps = 2 * QB_DEC_SCALE;
    sc.commission = qb_commission_per_share(QB_DEC_SCALE / 200, QB_DEC_SCALE);
    qb_sim_new(&sc, w->pf, &w->sim, NULL, 0);
    w->ts = (qb_time_t)19724 * QB_NS_PER_DAY;
    for (int s = 0; s < NSYM; s++) {
        char name[16];
        snprintf(name, sizeof name, "SYM%d", s);
        qb_portfolio_symbol(w->pf, name, &w->id[s], NULL, 0);
        /* a position in every symbol (long or short) */
        qb_portfolio_mark(w->pf, w->id[s], px[s]);
        qb_portfolio_apply_fill(w->pf, w->id[s], s & 1 ? QB_SIDE_SELL : QB_SIDE_BUY,
                                (s + 1) * 10 * QB_DEC_SCALE, px[s], 0, NULL, 0);
    }
}

static void world_free(world_t *w) {
    qb_sim_destroy(w->sim);
    qb_portfolio_destroy(w->pf);
}

/* one bar for every symbol */
static void step(world_t *w, int k) {
    w->ts += HOUR;
    for (int s = 0; s < NSYM; s++) {
        qb_pf_bar_t b = make_bar(w->ts, k + s);
        qb_sim_on_bar(w->sim, w->id[s], &b);
    }
}

static double secs(int64_t t0) { return (double)(qb_time_mono_ns() - t0) / 1e9; }

static void report(const char *name, double n, double s, const char *unit) {
    printf("  %-24s %9.1f ns/%s  %8.2f M %ss/s\n", name, s * 1e9 / n, unit, n / s / 1e6, unit);
}

int main(void) {
    setup_prices();
    printf("bench_portfolio: %d symbols, each with a position\n", NSYM);
    world_t w;

    /* mark */
    world_init(&w);
    const int marks = 200000; /* x NSYM */
    int64_t t0 = qb_time_mono_ns();
    for (int k = 0; k < marks; k++)
        for (int s = 0; s < NSYM; s++) qb_portfolio_mark(w.pf, w.id[s], px[(k + s) & (NPX - 1)]);
    report("mark", (double)marks * NSYM, secs(t0), "bar");
    sink = qb_portfolio_equity(w.pf);
    world_free(&w);

    /* on_bar, idle */
    world_init(&w);
    const int steps = 100000;
    t0 = qb_time_mono_ns();
    for (int k = 0; k < steps; k++) step(&w, k);
    report("on_bar, idle", (double)steps * NSYM, secs(t0), "bar");
    sink = qb_portfolio_equity(w.pf);
    world_free(&w);

    /* on_bar with a resting limit per symbol, far below: never fills */
    world_init(&w);
    step(&w, 0);
    for (int s = 0; s < NSYM; s++) {
        qb_sim_order_t o = {.sym = w.id[s], .side = QB_SIDE_BUY, .type = QB_ORDER_TYPE_LIMIT,
                            .tif = QB_TIF_GTC, .qty = QB_DEC_SCALE, .limit_price = QB_DEC_SCALE};
        uint64_t id;
        qb_sim_submit(w.sim, &o, w.ts, &id, NULL, 0);
    }
    t0 = qb_time_mono_ns();
    for (int k = 0; k < steps; k++) step(&w, k);
    report("on_bar, 1 resting", (double)steps * NSYM, secs(t0), "bar");
    world_free(&w);

    /* market round trips: submit after a bar, fill on the next */
    world_init(&w);
    step(&w, 0);
    const int rounds = 20000;
    size_t n;
    uint64_t fills = 0;
    t0 = qb_time_mono_ns();
    for (int k = 1; k <= rounds; k++) {
        for (int s = 0; s < NSYM; s++) {
            qb_sim_order_t o = {.sym = w.id[s], .side = (k + s) & 1 ? QB_SIDE_SELL : QB_SIDE_BUY,
                                .type = QB_ORDER_TYPE_MARKET, .tif = QB_TIF_DAY,
                                .qty = 5 * QB_DEC_SCALE};
            uint64_t id;
            qb_sim_submit(w.sim, &o, w.ts, &id, NULL, 0);
        }
        step(&w, k);
        const qb_sim_event_t *ev = qb_sim_events(w.sim, &n);
        for (size_t i = 0; i < n; i++) fills += ev[i].kind == QB_SIM_EV_FILL;
        qb_sim_events_clear(w.sim);
    }
    report("market round trip", (double)rounds * NSYM, secs(t0), "order");
    if (fills != (uint64_t)rounds * NSYM)
        printf("    (only %llu fills)\n", (unsigned long long)fills);

    /* all-in sizing at a fill: the largest quantity the margin rule allows */
    const qb_commission_t comm = qb_commission_per_share(QB_DEC_SCALE / 200, QB_DEC_SCALE);
    const int sizings = 1000000;
    qb_dec_t q, acc = 0;
    t0 = qb_time_mono_ns();
    for (int k = 0; k < sizings; k++) {
        qb_portfolio_max_qty(w.pf, w.id[k % NSYM], k & 1 ? QB_SIDE_SELL : QB_SIDE_BUY,
                             px[k & (NPX - 1)], &comm, QB_DEC_SCALE, &q);
        acc ^= q;
    }
    report("all-in sizing", sizings, secs(t0), "order");
    sink = acc;
    world_free(&w);

    /* submit + cancel */
    world_init(&w);
    step(&w, 0);
    const int cancels = 2000000;
    t0 = qb_time_mono_ns();
    for (int k = 0; k < cancels; k++) {
        qb_sim_order_t o = {.sym = w.id[k % NSYM], .side = QB_SIDE_BUY,
                            .type = QB_ORDER_TYPE_LIMIT, .tif = QB_TIF_GTC, .qty = QB_DEC_SCALE,
                            .limit_price = QB_DEC_SCALE};
        uint64_t id;
        qb_sim_submit(w.sim, &o, w.ts, &id, NULL, 0);
        qb_sim_cancel(w.sim, id, w.ts);
        if ((k & 1023) == 0) qb_sim_events_clear(w.sim);
    }
    report("submit + cancel", cancels, secs(t0), "order");
    world_free(&w);
    return 0;
}
