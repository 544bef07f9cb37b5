/* test_portfolio_prop.c — property test of libs/portfolio: >= 10^6 random
 * orders (QB_PROP_ORDERS to change) over random "worlds" (fill timing,
 * slippage, tick, volume cap, lot, commission model, margin, shorts) and
 * random-walk bars, checked at every step (after every bar and every
 * submission) against a shadow model written here from the documented
 * rules, in exact 1e-16 integers (__int128):
 *
 *  - each event: cash after = cash before - s x round(q x p) - commission,
 *    exactly; non-fill events move no cash; positions follow the fills;
 *    fill prices are against the trader (s x (p - ref) >= 0), inside the
 *    bar (or at the close, CLOSE timing), within limits and slippage bounds,
 *    on the tick grid; commissions >= 0; after a fill that adds risk,
 *    equity >= the margin requirement; no short without allow_short;
 *  - equity == cash + sum round(q_i x mark_i) (recomputed from scratch);
 *  - conservation, exactly: equity - initial - deposits ==
 *      market moves on held quantities (sum q x delta mark)
 *    + fill edges (s x q x (mark at the fill - ref price))
 *    - slippage (s x q x (p - ref) >= 0) - commissions
 *    - cash rounding of notionals + rounding of market values
 *    i.e. no fill creates or destroys money beyond commission and slippage;
 *  - positions (qty, avg cost, realised) equal the shadow's; avg cost
 *    rounding per fill within half a 1e-8 per unit; realised + unrealised
 *    + the recorded avg-cost rounding == the exact P&L; the realised and
 *    commission totals are the sums over symbols / events;
 *  - every accepted order ends (filled, canceled, expired, rejected).
 * The seed is printed; QB_TEST_SEED repeats a run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test.h"
#include "qb_test_assert.h"

#include "portfolio/qb_portfolio.h"
#include "portfolio/qb_sim.h"

static char E[512];

typedef __int128 W; /* 1e-16 units unless said otherwise */
#define SC ((W)QB_DEC_SCALE)
#define NSYM_MAX 8
#define RING 16384

/* round half-even of num / den (den != 0) */
static W rhe(W num, W den) {
    if (den < 0) num = -num, den = -den;
    W q = num / den, r = num % den;
    if (r < 0) q -= 1, r += den; /* floor */
    if (2 * r > den || (2 * r == den && (q & 1))) q += 1;
    return q;
}
static W ceil_div(W num, W den) { /* den > 0 */
    W q = num / den, r = num % den;
    if (r < 0) q -= 1, r += den;
    return r ? q + 1 : q;
}
static W wabs(W a) { return a < 0 ? -a : a; }

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "world %d step %lld: ", P.world, (long long)P.step);           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            fail_msg("property violated: %s", #cond);                                      \
        }                                                                                  \
    } while (0)

typedef struct spos_s {
    qb_dec_t qty, avg, realized, mark;
} spos_t;

typedef struct req_s {
    uint64_t tag, id;
    qb_sim_order_t o;
    int test_cancel;  /* canceled by the test */
    int64_t first;    /* index of the first bar it may match (per symbol) */
    qb_dec_t cum_qty, cum_notional, cum_fee;
} req_t;

static struct prop_s {
    int world;
    long long step;
    uint64_t rng;
    qb_portfolio_t *pf;
    qb_sim_t *sim;
    qb_sim_config_t sc;
    qb_portfolio_config_t pc;
    int nsym;
    uint32_t ids[NSYM_MAX];
    qb_pf_bar_t bar[NSYM_MAX]; /* last bar per symbol */
    spos_t sp[NSYM_MAX];
    qb_dec_t cash;       /* expected pf cash (event chain) */
    qb_dec_t deposits;
    W mkt, edge, slip, comm, cash_round, resid;
    qb_dec_t comm_sum;
    uint64_t next_tag;
    req_t ring[RING];
    int cancel_all; /* events come from the test's cancel_all */
    int64_t *days[NSYM_MAX]; /* trading day of every bar of a symbol */
    int64_t nbars[NSYM_MAX], capbars[NSYM_MAX];
    qb_dec_t bar_used[NSYM_MAX]; /* filled on the symbol's last bar */
    /* counters */
    uint64_t orders, accepted, ended, fills, rejects, partials, expired, cancels;
    uint64_t reasons[16];
    uint64_t total_orders, total_fills, total_rejects, total_partials, total_expired, bars;
} P;

static uint64_t rnd(void) { return qb_test_rand(&P.rng); }
static int64_t rnd_in(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}
static int chance(int pct) { return (int)(rnd() % 100) < pct; }

/* ---- the shadow position: the rules of qb_position_apply_fill ---------------- */

static void shadow_fill(spos_t *s, int sign, qb_dec_t q, qb_dec_t p, qb_dec_t c) {
    W d = (W)sign * q, Q = s->qty;
    if (Q == 0 || (Q > 0) == (d > 0)) {
        W nq = Q + d;
        s->avg = (qb_dec_t)rhe(Q * s->avg + d * p, nq);
        s->qty = (qb_dec_t)nq;
    } else {
        W closed = wabs(Q) < wabs(d) ? wabs(Q) : wabs(d);
        W gain = Q > 0 ? (W)p - s->avg : (W)s->avg - p;
        s->realized += (qb_dec_t)rhe(gain * closed, SC);
        W nq = Q + d;
        if (nq == 0) s->avg = 0;
        else if ((nq > 0) != (Q > 0)) s->avg = p;
        s->qty = (qb_dec_t)nq;
    }
    s->realized -= c;
}

/* move the shadow mark of symbol i, booking the market move */
static void shadow_mark(int i, qb_dec_t m) {
    P.mkt += (W)P.sp[i].qty * ((W)m - P.sp[i].mark);
    P.sp[i].mark = m;
}

/* equity and margin requirement from the shadow, with cash given */
static void shadow_equity(qb_dec_t cash, W *equity, W *used) {
    W lmv = 0, smv = 0;
    for (int i = 0; i < P.nsym; i++) {
        W mv = rhe((W)P.sp[i].qty * P.sp[i].mark, SC);
        if (mv > 0) lmv += mv;
        else smv += mv;
    }
    *equity = (W)cash + lmv + smv;
    *used = ceil_div((W)P.pc.margin_long * lmv, SC) + ceil_div(-(W)P.pc.margin_short * smv, SC);
}

static int sym_index(uint32_t id) {
    for (int i = 0; i < P.nsym; i++)
        if (P.ids[i] == id) return i;
    return -1;
}

/* The documented commission of an order's cumulative execution. */
static qb_dec_t fee_total(const qb_commission_t *m, qb_dec_t qty, qb_dec_t notional) {
    if (qty == 0 || m->kind == QB_COMMISSION_NONE) return 0;
    W exact = m->kind == QB_COMMISSION_PER_TRADE   ? (W)m->rate * SC
              : m->kind == QB_COMMISSION_PER_SHARE ? (W)m->rate * qty
                                                   : (W)m->rate * notional;
    W step = m->step ? m->step : 1, den = step * SC;
    W f = (2 * exact + den) / (2 * den) * step; /* half up, exact >= 0 */
    return f < m->minimum ? m->minimum : (qb_dec_t)f;
}

/* The trading day of a bar: the UTC date, or shifted by 5 h in some worlds
 * (a session that crosses 00:00 UTC). */
static int64_t g_day_shift;
static int64_t day_of(qb_time_t ts, void *ctx) {
    (void)ctx;
    qb_time_t t = ts + g_day_shift;
    return t / QB_NS_PER_DAY - (t % QB_NS_PER_DAY < 0);
}

/* ---- events ------------------------------------------------------------------- */

/* Check the events of one call: bar != NULL for a bar's matching (the mark
 * was moved to the bar's open if orders were working), else close-timing
 * fills at `close` at submission. */
static void check_events(int si, const qb_pf_bar_t *bar, qb_dec_t close) {
    /* the index of the bar these events belong to: the bar being matched
     * (already counted), or the submission bar (CLOSE timing) */
    int64_t bk = si >= 0 ? P.nbars[si] - 1 : -1;
    size_t n;
    const qb_sim_event_t *ev = qb_sim_events(P.sim, &n);
    for (size_t k = 0; k < n; k++) {
        const qb_sim_event_t *e = &ev[k];
        int i = sym_index(e->sym);
        CHECK(i >= 0, "event for unknown symbol %u", e->sym);
        req_t *r = &P.ring[e->tag % RING];
        CHECK(r->tag == e->tag, "event tag %llu not in the ring", (unsigned long long)e->tag);
        CHECK(e->side == r->o.side && e->type == r->o.type, "event/order mismatch");
        int s = qb_side_sign(e->side);
        int by_test = P.cancel_all || (r->test_cancel && e->kind == QB_SIM_EV_CANCELED);
        if (!by_test && e->order_id != 0) {
            /* time in force and no look-ahead, on the symbol's bar index */
            CHECK(bk >= r->first, "event on bar %lld before the order's first bar %lld",
                  (long long)bk, (long long)r->first);
            if (r->o.tif == QB_TIF_IOC || r->o.tif == QB_TIF_FOK)
                CHECK(bk == r->first, "IOC/FOK alive after its first bar");
            if (r->o.tif == QB_TIF_DAY && e->kind != QB_SIM_EV_EXPIRED)
                CHECK(P.days[i][bk] == P.days[i][r->first], "DAY order past its day");
            if (e->kind == QB_SIM_EV_EXPIRED)
                CHECK(P.days[i][bk] != P.days[i][r->first], "expired on its own day");
        }
        if (e->kind == QB_SIM_EV_FILL) {
            CHECK(e->order_id != 0 && i == si, "fill of another symbol");
            CHECK(e->qty > 0 && e->price > 0 && e->commission >= 0, "bad fill numbers");
            /* volume cap: a bar fills at most floor_lot(cap x volume) */
            P.bar_used[i] += e->qty;
            if (P.sc.volume_cap > 0) {
                W allowed = (W)P.sc.volume_cap * P.bar[i].volume / SC / P.sc.lot * P.sc.lot;
                CHECK(P.bar_used[i] <= allowed, "volume cap: %lld filled, %lld allowed",
                      (long long)P.bar_used[i], (long long)allowed);
            }
            CHECK(e->filled_qty <= e->order_qty && e->filled_qty > 0, "overfilled");
            CHECK(e->status == (e->filled_qty == e->order_qty ? QB_ORDER_STATUS_FILLED
                                                               : QB_ORDER_STATUS_PARTIALLY_FILLED),
                  "fill status");
            CHECK(r->o.tif != QB_TIF_FOK || e->filled_qty == e->order_qty, "FOK partial");
            if ((r->o.flags & QB_SIM_ALL_IN) == 0) CHECK(e->order_qty == r->o.qty, "order qty");
            qb_dec_t p = e->price, ref = e->ref_price, q = e->qty;
            /* slippage against the trader, bounded */
            CHECK((W)s * ((W)p - ref) >= 0, "slippage in the trader's favour");
            W bound = rhe((W)ref * P.sc.slippage_bps, (W)10000 * SC) + P.sc.tick + 2;
            CHECK(wabs((W)p - ref) <= bound, "slippage beyond bps + tick");
            CHECK(e->slippage == (qb_dec_t)rhe((W)q * wabs((W)p - ref), SC), "slippage money");
            /* the reference price traded */
            if (bar) {
                CHECK(ref >= bar->low && ref <= bar->high, "ref outside the bar");
                if (r->o.type == QB_ORDER_TYPE_MARKET)
                    CHECK(ref == bar->open, "market not at open");
            } else {
                CHECK(ref == close, "close fill not at the close");
            }
            int lim = r->o.type == QB_ORDER_TYPE_LIMIT || r->o.type == QB_ORDER_TYPE_STOP_LIMIT;
            if (lim) {
                CHECK((W)s * ((W)r->o.limit_price - ref) >= 0, "ref beyond the limit");
                CHECK((W)s * ((W)r->o.limit_price - p) >= 0, "price beyond the limit");
            }
            if (P.sc.tick > 0 && !(lim && p == r->o.limit_price))
                CHECK(p % P.sc.tick == 0, "price off the tick grid");
            /* cash, exactly */
            W notional = rhe((W)q * p, SC);
            /* the order's fee: fee(cumulative) - fee paid */
            r->cum_qty += q;
            r->cum_notional += (qb_dec_t)notional;
            CHECK(e->filled_qty == r->cum_qty, "filled qty");
            qb_dec_t want_fee =
                fee_total(&P.sc.commission, r->cum_qty, r->cum_notional) - r->cum_fee;
            CHECK(e->commission == want_fee, "fee %lld, want %lld", (long long)e->commission,
                  (long long)want_fee);
            r->cum_fee += want_fee;
            qb_dec_t want = (qb_dec_t)((W)P.cash - s * notional - e->commission);
            CHECK(e->cash == want, "cash after fill %lld, want %lld", (long long)e->cash,
                  (long long)want);
            P.cash = want;
            P.cash_round += (W)s * (notional * SC - (W)q * p);
            /* conservation terms, at the mark of the moment */
            qb_dec_t m = P.sp[i].mark;
            P.edge += (W)s * q * ((W)m - ref);
            P.slip += (W)s * q * ((W)p - ref);
            P.comm += (W)e->commission * SC;
            P.comm_sum += e->commission;
            /* the position; the split residual of this fill */
            spos_t before = P.sp[i];
            shadow_fill(&P.sp[i], s, q, p, e->commission);
            const spos_t *a = &P.sp[i];
            /* true P&L = realised + (qty x mark - qty x avg) + residual; with
             * the mark fixed, d(true) = -s q p - fee and the qty x mark parts
             * cancel, so the residual of this fill is what avg cost rounding
             * moved: */
            W true_d = -(W)s * q * p - (W)e->commission * SC;
            W resid = true_d - ((W)a->realized - before.realized) * SC +
                      ((W)a->qty * a->avg - (W)before.qty * before.avg);
            CHECK(wabs(resid) <= (wabs(a->qty) + SC) / 2 + 1, "avg-cost rounding too big");
            P.resid += resid;
            CHECK(e->position == a->qty, "position after fill");
            CHECK(P.pc.allow_short || a->qty >= 0, "short without allow_short");
            /* margin after a fill that adds risk */
            int reduce = (before.qty > 0 && s < 0 && a->qty >= 0) ||
                         (before.qty < 0 && s > 0 && a->qty <= 0);
            if (!reduce) {
                W eq, used;
                shadow_equity(e->cash, &eq, &used);
                CHECK(eq >= used, "equity below the margin requirement after a fill");
            }
            P.fills++;
            if (e->status == QB_ORDER_STATUS_FILLED) P.ended++;
            else P.partials++;
        } else {
            CHECK(e->cash == P.cash, "non-fill event moved cash");
            CHECK(e->position == P.sp[i].qty, "non-fill event position");
            CHECK(e->commission == 0 && e->price == 0, "non-fill with price/fee");
            switch (e->kind) {
            case QB_SIM_EV_REJECTED:
                CHECK(e->status == QB_ORDER_STATUS_REJECTED && e->reason != QB_PF_REJECT_NONE &&
                          e->filled_qty == 0,
                      "rejected event");
                P.rejects++;
                P.reasons[e->reason & 15]++;
                if (e->order_id) P.ended++;
                break;
            case QB_SIM_EV_CANCELED:
                CHECK(e->order_id != 0 && e->status == QB_ORDER_STATUS_CANCELED, "canceled");
                if (e->reason == QB_PF_REJECT_NONE)
                    CHECK(P.cancel_all || r->test_cancel || r->o.tif == QB_TIF_IOC ||
                              r->o.tif == QB_TIF_FOK,
                          "canceled for no reason");
                else
                    CHECK(e->filled_qty > 0, "check-cancel without a partial fill");
                if (e->reason != QB_PF_REJECT_NONE) P.reasons[e->reason & 15]++;
                if (r->o.tif == QB_TIF_FOK) CHECK(e->filled_qty == 0, "FOK canceled after a fill");
                P.ended++;
                break;
            case QB_SIM_EV_EXPIRED:
                CHECK(r->o.tif == QB_TIF_DAY && e->status == QB_ORDER_STATUS_EXPIRED, "expiry");
                P.expired++;
                P.ended++;
                break;
            default: CHECK(0, "unknown event kind %d", (int)e->kind);
            }
        }
    }
    qb_sim_events_clear(P.sim);
}

/* ---- the state -------------------------------------------------------------------- */

static void check_state(void) {
    qb_portfolio_t *pf = P.pf;
    CHECK(qb_portfolio_cash(pf) == P.cash, "cash %lld, want %lld",
          (long long)qb_portfolio_cash(pf), (long long)P.cash);
    W mv_sum = 0, mv_round = 0, unr_exact = 0, realized = 0;
    for (int i = 0; i < P.nsym; i++) {
        uint32_t id = P.ids[i];
        const spos_t *s = &P.sp[i];
        const qb_position_t *pos = qb_portfolio_position(pf, id);
        CHECK(pos->qty == s->qty && qb_portfolio_qty(pf, id) == s->qty, "qty of %d", i);
        CHECK(pos->avg_cost == s->avg, "avg cost of %d: %lld want %lld", i,
              (long long)pos->avg_cost, (long long)s->avg);
        CHECK(pos->realized_pnl == s->realized, "realised of %d", i);
        CHECK(qb_portfolio_mark_price(pf, id) == s->mark, "mark of %d", i);
        W mv = rhe((W)s->qty * s->mark, SC);
        CHECK(qb_portfolio_market_value(pf, id) == (qb_dec_t)mv, "mv of %d", i);
        mv_sum += mv;
        mv_round += mv * SC - (W)s->qty * s->mark;
        W unr = (W)s->qty * ((W)s->mark - s->avg);
        CHECK(qb_portfolio_unrealized_of(pf, id) == (qb_dec_t)rhe(unr, SC), "unrealised of %d", i);
        unr_exact += unr;
        realized += s->realized;
    }
    W equity = qb_portfolio_equity(pf);
    CHECK(equity == (W)P.cash + mv_sum, "equity identity");
    W base = ((W)P.pc.initial_cash + P.deposits) * SC;
    /* conservation, exact */
    W lhs = equity * SC - base;
    W rhs = P.mkt + P.edge - P.slip - P.comm - P.cash_round + mv_round;
    CHECK(lhs == rhs, "conservation: equity - base %lld e-16 vs explained %lld e-16",
          (long long)lhs, (long long)rhs);
    /* realised + unrealised + recorded avg rounding == exact P&L */
    W exact_pnl = P.mkt + P.edge - P.slip - P.comm;
    CHECK(realized * SC + unr_exact + P.resid == exact_pnl, "P&L split");
    CHECK(qb_portfolio_realized(pf) == (qb_dec_t)realized, "realised total");
    CHECK(qb_portfolio_commissions(pf) == P.comm_sum, "commission total");
    CHECK(P.slip >= 0 && P.comm >= 0, "negative slippage / commission");
}

/* ---- random world ----------------------------------------------------------------- */

static qb_dec_t price_round(W p, int decimals) {
    W step = 1;
    for (int k = decimals; k < 8; k++) step *= 10;
    W r = rhe(p, step) * step;
    if (r < step) r = step;
    return (qb_dec_t)r;
}

static int g_price_decimals;

static void record_bar(int i, qb_time_t ts) {
    if (P.nbars[i] == P.capbars[i]) {
        P.capbars[i] = P.capbars[i] ? 2 * P.capbars[i] : 1024;
        P.days[i] = realloc(P.days[i], (size_t)P.capbars[i] * sizeof *P.days[i]);
        assert_non_null(P.days[i]);
    }
    P.days[i][P.nbars[i]++] = day_of(ts, NULL);
}

static qb_pf_bar_t next_bar(int i, qb_time_t ts) {
    const qb_pf_bar_t *b = &P.bar[i];
    qb_dec_t prev = b->close ? b->close : (qb_dec_t)rnd_in(5, 500) * QB_DEC_SCALE;
    /* open: a small move, sometimes a gap; close; then the range */
    int64_t bp = chance(5) ? rnd_in(-800, 800) : rnd_in(-60, 60); /* in 0.01% */
    if (prev < 2 * QB_DEC_SCALE && bp < 0) bp = -bp;
    if (prev > 5000 * QB_DEC_SCALE && bp > 0) bp = -bp;
    W o = (W)prev * (10000 + bp) / 10000;
    W c = o * (10000 + rnd_in(-150, 150)) / 10000;
    qb_pf_bar_t nb;
    nb.ts = ts;
    nb.open = price_round(o, g_price_decimals);
    nb.close = price_round(c, g_price_decimals);
    qb_dec_t hi = nb.open > nb.close ? nb.open : nb.close;
    qb_dec_t lo = nb.open < nb.close ? nb.open : nb.close;
    nb.high = price_round((W)hi * (10000 + rnd_in(0, 100)) / 10000, g_price_decimals);
    if (nb.high < hi) nb.high = hi;
    nb.low = price_round((W)lo * (10000 - rnd_in(0, 100)) / 10000, g_price_decimals);
    if (nb.low > lo) nb.low = lo;
    /* whole volumes, some with 3 decimals, sometimes none */
    nb.volume = chance(5) ? 0
                          : (qb_dec_t)rnd_in(0, 200000) * QB_DEC_SCALE / (chance(20) ? 1000 : 1);
    return nb;
}

static void world_new(int w) {
    memset(&P.sp, 0, sizeof P.sp);
    memset(&P.bar, 0, sizeof P.bar);
    memset(&P.nbars, 0, sizeof P.nbars);
    memset(&P.bar_used, 0, sizeof P.bar_used);
    P.world = w;
    P.step = 0;
    P.mkt = P.edge = P.slip = P.comm = P.cash_round = P.resid = 0;
    P.deposits = 0;
    P.comm_sum = 0;
    P.orders = P.accepted = P.ended = P.fills = P.rejects = P.partials = P.expired = 0;
    qb_portfolio_config_default(&P.pc);
    P.pc.initial_cash = (qb_dec_t)rnd_in(10000, 1000000) * QB_DEC_SCALE + rnd_in(0, 99) * 1000000;
    P.pc.allow_short = chance(50);
    static const qb_dec_t ml[] = {QB_DEC_SCALE, QB_DEC_SCALE / 2, QB_DEC_SCALE / 4};
    static const qb_dec_t ms[] = {QB_DEC_SCALE / 2, QB_DEC_SCALE, 3 * QB_DEC_SCALE / 2};
    P.pc.margin_long = ml[rnd() % 3];
    P.pc.margin_short = ms[rnd() % 3];
    OK(qb_portfolio_new(&P.pc, &P.pf, E, sizeof E));
    P.cash = P.pc.initial_cash;
    qb_sim_config_default(&P.sc);
    P.sc.timing = chance(50) ? QB_FILL_NEXT_OPEN : QB_FILL_CLOSE;
    P.sc.slippage_bps = chance(40) ? 0 : (qb_dec_t)rnd_in(0, 5000) * QB_DEC_SCALE / 100;
    P.sc.tick = chance(50) ? 0 : chance(50) ? QB_DEC_SCALE / 100 : QB_DEC_SCALE / 20;
    P.sc.volume_cap = chance(50) ? 0 : (qb_dec_t)rnd_in(1, 100) * QB_DEC_SCALE / 100;
    P.sc.lot = chance(70) ? QB_DEC_SCALE : chance(70) ? QB_DEC_SCALE / 1000 : 1;
    g_price_decimals = chance(60) ? 2 : chance(50) ? 4 : 8;
    g_day_shift = chance(30) ? 5 * 3600 * QB_NS_PER_SEC : 0;
    P.sc.day_fn = g_day_shift ? day_of : NULL;
    qb_commission_t *c = &P.sc.commission;
    switch (rnd() % 4) {
    case 0: *c = qb_commission_none(); break;
    case 1: *c = qb_commission_per_trade((qb_dec_t)rnd_in(0, 1000) * QB_DEC_SCALE / 100); break;
    case 2:
        *c = qb_commission_per_share((qb_dec_t)rnd_in(0, 100) * QB_DEC_SCALE / 10000,
                                     (qb_dec_t)rnd_in(0, 300) * QB_DEC_SCALE / 100);
        break;
    default:
        *c = qb_commission_percent((qb_dec_t)rnd_in(0, 50) * QB_DEC_SCALE / 10000,
                                   (qb_dec_t)rnd_in(0, 300) * QB_DEC_SCALE / 100);
    }
    c->step = chance(50) ? 0 : QB_DEC_SCALE / 100;
    OK(qb_sim_new(&P.sc, P.pf, &P.sim, E, sizeof E));
    P.nsym = (int)rnd_in(2, NSYM_MAX);
    for (int i = 0; i < P.nsym; i++) {
        char name[16];
        snprintf(name, sizeof name, "S%d", i);
        OK(qb_portfolio_symbol(P.pf, name, &P.ids[i], E, sizeof E));
    }
}

static qb_dec_t rand_qty(int i) {
    qb_dec_t price = P.bar[i].close;
    W eq = qb_portfolio_equity(P.pf);
    if (eq < 1000 * SC) eq = 1000 * SC;
    /* up to ~15% of equity, in lots */
    W units = eq * SC / price * rnd_in(1, 150) / 1000; /* raw qty */
    W lots = units / P.sc.lot;
    if (chance(3)) lots *= 20; /* too big */
    if (lots < 1) lots = 1;
    return (qb_dec_t)(lots * P.sc.lot);
}

static qb_dec_t near(qb_dec_t px, int64_t lo_bp, int64_t hi_bp) {
    return price_round((W)px * (10000 + rnd_in(lo_bp, hi_bp)) / 10000, g_price_decimals);
}

static void submit_random(int i, qb_time_t ts) {
    qb_sim_order_t o;
    memset(&o, 0, sizeof o);
    o.sym = P.ids[i];
    o.side = chance(50) ? QB_SIDE_BUY : QB_SIDE_SELL;
    if (!P.pc.allow_short && P.sp[i].qty <= 0 && chance(70)) o.side = QB_SIDE_BUY;
    int t = (int)(rnd() % 100);
    o.type = t < 35 ? QB_ORDER_TYPE_MARKET : t < 65 ? QB_ORDER_TYPE_LIMIT
             : t < 85 ? QB_ORDER_TYPE_STOP : QB_ORDER_TYPE_STOP_LIMIT;
    int f = (int)(rnd() % 100);
    o.tif = f < 30 ? QB_TIF_DAY : f < 80 ? QB_TIF_GTC : f < 90 ? QB_TIF_IOC : QB_TIF_FOK;
    /* a sell that closes (part of) a long is common */
    qb_dec_t pos = P.sp[i].qty;
    if (o.side == QB_SIDE_SELL && pos > 0 && chance(50))
        o.qty = chance(50) ? pos : (qb_dec_t)((W)pos * rnd_in(1, 100) / 100 / P.sc.lot * P.sc.lot);
    else
        o.qty = rand_qty(i);
    if (o.qty <= 0) o.qty = P.sc.lot;
    if (chance(5)) {
        o.qty = 0;
        o.flags = QB_SIM_ALL_IN;
    }
    qb_dec_t c = P.bar[i].close;
    int buy = o.side == QB_SIDE_BUY;
    if (o.type == QB_ORDER_TYPE_LIMIT || o.type == QB_ORDER_TYPE_STOP_LIMIT)
        o.limit_price = buy ? near(c, -300, 50) : near(c, -50, 300);
    if (o.type == QB_ORDER_TYPE_STOP || o.type == QB_ORDER_TYPE_STOP_LIMIT)
        o.stop_price = buy ? near(c, -50, 300) : near(c, -300, 50);
    if (o.type == QB_ORDER_TYPE_STOP_LIMIT && chance(50)) /* limit around the stop */
        o.limit_price = near(o.stop_price, -100, 100);
    if (chance(1)) o.qty = -o.qty;         /* invalid */
    if (chance(1)) o.limit_price += QB_DEC_SCALE; /* price on a type without one, or off */
    o.tag = P.next_tag++;
    req_t *r = &P.ring[o.tag % RING];
    r->tag = o.tag;
    r->o = o;
    r->test_cancel = 0;
    r->id = 0;
    r->cum_qty = r->cum_notional = r->cum_fee = 0;
    /* CLOSE timing: first matched at the last bar's close; else the next bar */
    r->first = P.sc.timing == QB_FILL_CLOSE ? P.nbars[i] - 1 : P.nbars[i];
    uint64_t id;
    qb_err_t err = qb_sim_submit(P.sim, &o, ts, &id, E, sizeof E);
    r->id = id;
    CHECK(err == QB_OK || err == QB_ERR_INVALID, "submit: %s", qb_err_name(err));
    CHECK((err == QB_OK) == (id != 0), "id vs result");
    P.orders++;
    if (err == QB_OK) P.accepted++;
    check_events(i, NULL, P.bar[i].close);
    check_state();
}

static void run_world(int w, uint64_t target_orders) {
    world_new(w);
    qb_time_t day0 = (qb_time_t)(19000 + w * 400) * QB_NS_PER_DAY;
    for (int i = 0; i < P.nsym; i++) { /* first bars: marks before any order */
        qb_pf_bar_t b = next_bar(i, day0 + 14 * 3600 * QB_NS_PER_SEC);
        OK(qb_sim_on_bar(P.sim, P.ids[i], &b) == QB_OK ? QB_OK : QB_ERR_INTERNAL);
        record_bar(i, b.ts);
        P.bar[i] = b;
        shadow_mark(i, b.close);
        check_events(i, &b, 0);
        check_state();
    }
    for (P.step = 1; P.orders < target_orders; P.step++) {
        qb_time_t ts = day0 + (P.step / 8) * QB_NS_PER_DAY + (14 + P.step % 8) * 3600 * QB_NS_PER_SEC;
        for (int i = 0; i < P.nsym; i++) {
            if (chance(3)) continue; /* a missing bar */
            qb_pf_bar_t b = next_bar(i, ts);
            int matched = qb_sim_open_orders(P.sim, P.ids[i]) > 0;
            qb_err_t err = qb_sim_on_bar(P.sim, P.ids[i], &b);
            CHECK(err == QB_OK, "on_bar: %s", qb_sim_last_error(P.sim));
            record_bar(i, b.ts);
            P.bars++;
            if (matched) shadow_mark(i, b.open);
            P.bar[i] = b;
            P.bar_used[i] = 0;
            check_events(i, &b, 0);
            shadow_mark(i, b.close);
            check_state();
            int k = (int)(rnd() % 3);
            for (int j = 0; j < k; j++) submit_random(i, ts + 1);
        }
        if (chance(5) && P.next_tag > 32) { /* cancel a recent order if working */
            uint64_t tag = P.next_tag - 1 - rnd() % 32;
            req_t *r = &P.ring[tag % RING];
            if (r->tag == tag && r->id != 0) {
                r->test_cancel = 1;
                qb_err_t err = qb_sim_cancel(P.sim, r->id, ts + 1);
                CHECK(err == QB_OK || err == QB_ERR_NOT_FOUND, "cancel: %s", qb_err_name(err));
                if (err == QB_OK) P.cancels++;
                check_events(-1, NULL, 0);
                check_state();
            }
        }
        if (chance(1)) {
            qb_dec_t amt = (qb_dec_t)rnd_in(-1000, 5000) * QB_DEC_SCALE;
            OK(qb_portfolio_deposit(P.pf, amt));
            P.deposits += amt;
            P.cash += amt;
            check_state();
        }
        if (P.step % 250 == 0) {
            P.cancel_all = 1;
            qb_sim_cancel_all(P.sim, ts + 2);
            check_events(-1, NULL, 0);
            P.cancel_all = 0;
            check_state();
        }
    }
    P.cancel_all = 1;
    qb_sim_cancel_all(P.sim, 0);
    check_events(-1, NULL, 0);
    P.cancel_all = 0;
    check_state();
    CHECK(qb_sim_open_total(P.sim) == 0, "orders left");
    CHECK(P.ended == P.accepted, "accepted %llu, ended %llu", (unsigned long long)P.accepted,
          (unsigned long long)P.ended);
    P.total_orders += P.orders;
    P.total_fills += P.fills;
    P.total_rejects += P.rejects;
    P.total_partials += P.partials;
    P.total_expired += P.expired;
    qb_sim_destroy(P.sim);
    qb_portfolio_destroy(P.pf);
    for (int i = 0; i < NSYM_MAX; i++) {
        free(P.days[i]);
        P.days[i] = NULL;
        P.capbars[i] = 0;
    }
}

static void test_property(void **state) {
    uint64_t seed = qb_test_seed("test_portfolio_prop");
    const char *env = getenv("QB_PROP_ORDERS");
    uint64_t want = env ? strtoull(env, NULL, 10) : 1000000;
    P.rng = seed;
    int w = 0;
    while (P.total_orders < want) {
        uint64_t left = want - P.total_orders;
        uint64_t n = 10000 + rnd() % 40000;
        run_world(w++, n < left ? n : left);
    }
    fprintf(stderr,
            "test_portfolio_prop: %d worlds, %llu orders, %llu bars, %llu fills (%llu partial), "
            "%llu rejected, %llu expired\n",
            w, (unsigned long long)P.total_orders, (unsigned long long)P.bars,
            (unsigned long long)P.total_fills, (unsigned long long)P.total_partials,
            (unsigned long long)P.total_rejects, (unsigned long long)P.total_expired);
    fprintf(stderr, "test_portfolio_prop: %llu canceled by the test; refusals:",
            (unsigned long long)P.cancels);
    for (int r = 1; r < 8; r++)
        fprintf(stderr, " %s %llu", qb_pf_reject_name((qb_pf_reject_t)r),
                (unsigned long long)P.reasons[r]);
    fprintf(stderr, "\n");
    assert_true(P.total_orders >= want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
