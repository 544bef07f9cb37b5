/* qb_backtest.c — the engine: walks the finalized data step by step, drives
 * the broker simulator (libs/portfolio) and the strategies (libs/strategy),
 * turns signals into orders (sizing, exits, entries, protective stops),
 * follows round trips from the fill events, marks equity once per step and
 * accumulates the metrics online. The rules it implements are written out
 * in qb_backtest.h; this file owns the run's state (struct qb_bt_run_s,
 * freed at the end of the run) and the result it hands back. */
#include "backtest/qb_backtest.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backtest/qb_bt_data_int.h"
#include "portfolio/qb_portfolio.h"
#include "portfolio/qb_sim.h"

/* ---- result -------------------------------------------------------------------------------- */

struct qb_bt_result_s {
    qb_bt_config_t cfg;
    qb_bt_metrics_t metrics, bench;
    int has_bench;
    qb_bt_counts_t counts;
    qb_bt_point_t *eq;
    size_t neq;
    qb_bt_trade_t *trades;
    size_t ntrades, captrades;
    qb_bt_fill_t *fills;
    size_t nfills, capfills;
    qb_signal_t *sigs;
    size_t nsigs, capsigs;
    qb_symbol_t *names;
    qb_dec_t *pos;
    size_t nsym;
    qb_dec_t cash;
};

void qb_bt_result_destroy(qb_bt_result_t *r) {
    if (!r) return;
    free(r->eq);
    free(r->trades);
    free(r->fills);
    free(r->sigs);
    free(r->names);
    free(r->pos);
    free(r);
}

const qb_bt_metrics_t *qb_bt_result_metrics(const qb_bt_result_t *r) { return &r->metrics; }
const qb_bt_metrics_t *qb_bt_result_benchmark(const qb_bt_result_t *r) {
    return r->has_bench ? &r->bench : NULL;
}
const qb_bt_counts_t *qb_bt_result_counts(const qb_bt_result_t *r) { return &r->counts; }
const qb_bt_point_t *qb_bt_result_equity(const qb_bt_result_t *r, size_t *n) {
    *n = r->neq;
    return r->eq;
}
const qb_bt_trade_t *qb_bt_result_trades(const qb_bt_result_t *r, size_t *n) {
    *n = r->ntrades;
    return r->trades;
}
const qb_bt_fill_t *qb_bt_result_fills(const qb_bt_result_t *r, size_t *n) {
    *n = r->nfills;
    return r->fills;
}
const qb_signal_t *qb_bt_result_signals(const qb_bt_result_t *r, size_t *n) {
    *n = r->nsigs;
    return r->sigs;
}
const char *qb_bt_result_symbol(const qb_bt_result_t *r, uint32_t sym) {
    return sym < r->nsym ? r->names[sym].s : "";
}
size_t qb_bt_result_nsymbols(const qb_bt_result_t *r) { return r->nsym; }
const qb_bt_config_t *qb_bt_result_config(const qb_bt_result_t *r) { return &r->cfg; }
qb_dec_t qb_bt_result_cash(const qb_bt_result_t *r) { return r->cash; }
qb_dec_t qb_bt_result_position(const qb_bt_result_t *r, uint32_t sym) {
    return sym < r->nsym ? r->pos[sym] : 0;
}

/* Grow *arr (element size sz) to hold n + 1. */
static int qb_bt_grow(void **arr, size_t *cap, size_t n, size_t sz) {
    if (n < *cap) return 1;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * sz);
    if (!p) return 0;
    *arr = p;
    *cap = c;
    return 1;
}

/* ---- run state ----------------------------------------------------------------------------- */

typedef struct qb_bt_sym_s {
    /* what every bar of the accounting pass reads: one cache line */
    size_t cur;           /* next bar index of the series (accounting) */
    uint64_t exit_id, entry_id, stop_id; /* working orders we placed, 0 = none */
    int traded;           /* fed to the simulator */
    int in_trade;         /* a round trip is open (the position is not 0) */
    int b_bought;         /* benchmark: bought (or found nothing to buy) */
    int64_t b_units;      /* whole units of b_qty, -1 when not whole */
    qb_dec_t b_mv;        /* benchmark position's value */
    /* the rest: signals and fills */
    qb_dec_t b_qty;
    /* the last bar time given to the simulator: a bar it has not seen
     * (no working orders at step 1) is given by qb_bt_act if a signal
     * comes (see qb_bt_bar) */
    qb_time_t sim_ts;
    qb_strategy_t *strat; /* NULL: not traded by a strategy */
    size_t scur;          /* next bar index for the strategy (runs ahead) */
    size_t first_in;      /* first bar index in the window */
    uint64_t entry_sig;   /* signal index of the last entry */
    qb_dec_t stop_dist;   /* of that signal */
    int need_stop;
    /* the open round trip */
    qb_bt_trade_t tr;
    qb_dec_wide_t add_notional, red_notional, cash_flow;
    qb_dec_t red_qty;
    size_t entry_idx;
    qb_bar_t bar;         /* template: symbol and timeframe preset */
} qb_bt_sym_t;
_Static_assert(offsetof(qb_bt_sym_t, b_qty) == 64, "qb_bt_sym_t: the per-bar fields fill 64 B");

typedef struct qb_bt_sig_ref_s {
    qb_time_t ts;
    uint32_t sym;
    size_t idx; /* into the caller's array */
} qb_bt_sig_ref_t;

typedef struct qb_bt_run_s {
    const qb_bt_data_t *d;
    const qb_bt_config_t *cfg;
    qb_portfolio_t *pf;
    qb_sim_t *sim;
    qb_bt_sym_t *sym;
    size_t nsym;
    qb_bt_result_t *res;
    qb_bt_acc_t acc, bacc;
    int64_t n_pos;
    qb_time_t ts; /* the step being run */
    uint32_t *stop_q; /* symbols waiting for a stop (re)placement */
    size_t nstop_q;
    qb_dec_t b_cash, b_mv;
    char *errstr;
    size_t errsz;
} qb_bt_run_t;

static qb_err_t qb_bt_fail(qb_bt_run_t *r, qb_err_t err, const char *what) {
    return qb_err_set(r->errstr, r->errsz, err, "backtest: %s: %s", what, qb_err_str(err));
}

static qb_dec_t qb_bt_notional(qb_dec_t qty, qb_dec_t price, qb_err_t *err) {
    qb_dec_t n = 0;
    if (qty % QB_DEC_SCALE == 0) { /* whole units: the exact product, as qb_dec_mul's */
        if (__builtin_mul_overflow(qty / QB_DEC_SCALE, price, &n)) {
            *err = QB_ERR_OVERFLOW;
            n = 0;
        }
        return n;
    }
    qb_err_t e = qb_dec_mul(qty, price, &n, QB_ROUND_HALF_EVEN);
    if (e != QB_OK) *err = e;
    return n;
}

/* ---- round trips ---------------------------------------------------------------------------- */

static qb_err_t qb_bt_trade_push(qb_bt_run_t *r, const qb_bt_trade_t *t) {
    qb_bt_result_t *res = r->res;
    if (!qb_bt_grow((void **)&res->trades, &res->captrades, res->ntrades, sizeof *t))
        return qb_bt_fail(r, QB_ERR_NOMEM, "trades");
    res->trades[res->ntrades++] = *t;
    return QB_OK;
}

static qb_dec_t qb_bt_avg(qb_dec_wide_t notional, qb_dec_t qty) {
    qb_dec_t out = 0;
    if (qty > 0 && qty % QB_DEC_SCALE == 0 && notional >= 0 && notional <= INT64_MAX) {
        /* whole units: notional / units, the same quotient and remainder
         * ratio as notional x 1e8 / qty, rounded half-even (qb_decimal.h)
         * in 64 bits */
        const uint64_t a = (uint64_t)notional, b = (uint64_t)(qty / QB_DEC_SCALE);
        uint64_t q = a / b;
        const uint64_t rem = a % b, rest = b - rem;
        if (rem != 0 && (rem > rest || (rem == rest && (q & 1)))) q++;
        return (qb_dec_t)q; /* <= notional: fits */
    }
    if (qty > 0) qb_dec_div_wide(notional * QB_DEC_SCALE, qty, &out, QB_ROUND_HALF_EVEN);
    return out;
}

static void qb_bt_trade_open(qb_bt_run_t *r, qb_bt_sym_t *S, uint32_t id, int dir, qb_dec_t q,
                             qb_dec_t notional, qb_dec_t fee) {
    memset(&S->tr, 0, sizeof S->tr);
    S->in_trade = 1;
    r->n_pos++;
    S->tr.sym = id;
    S->tr.dir = dir;
    S->tr.entry_ts = r->ts;
    S->tr.qty = q;
    S->tr.commission = fee;
    S->tr.fills = 1;
    S->add_notional = notional;
    S->red_notional = 0;
    S->red_qty = 0;
    S->cash_flow = (dir > 0 ? -(qb_dec_wide_t)notional : (qb_dec_wide_t)notional) - fee;
    S->entry_idx = S->cur - 1;
}

static qb_err_t qb_bt_trade_close(qb_bt_run_t *r, qb_bt_sym_t *S) {
    qb_bt_trade_t *t = &S->tr;
    t->open = 0;
    t->exit_ts = r->ts;
    t->entry_price = qb_bt_avg(S->add_notional, t->qty);
    t->exit_price = qb_bt_avg(S->red_notional, S->red_qty);
    t->net_pnl = (qb_dec_t)S->cash_flow;
    double basis = (double)S->add_notional;
    t->return_pct = basis > 0 ? (double)S->cash_flow / basis : 0.0;
    t->bars = (int64_t)(S->cur - 1 - S->entry_idx);
    S->in_trade = 0;
    r->n_pos--;
    qb_bt_acc_trade(&r->acc, t->net_pnl, t->bars, 0);
    return qb_bt_trade_push(r, t);
}

/* A fill of side s (+1 buy) and quantity q moved the position to pos_after. */
static qb_err_t qb_bt_trade_fill(qb_bt_run_t *r, qb_bt_sym_t *S, uint32_t id, int s, qb_dec_t q,
                                 qb_dec_t notional, qb_dec_t fee, qb_dec_t pos_after) {
    qb_dec_t before = pos_after - (s > 0 ? q : -q);
    if (before == 0 || !S->in_trade) {
        qb_bt_trade_open(r, S, id, s, q, notional, fee);
        return QB_OK;
    }
    int bsign = before > 0 ? 1 : -1;
    qb_dec_wide_t flow = (s > 0 ? -(qb_dec_wide_t)notional : (qb_dec_wide_t)notional) - fee;
    if (bsign == s) { /* adding */
        S->tr.qty += q;
        S->tr.commission += fee;
        S->tr.fills++;
        S->add_notional += notional;
        S->cash_flow += flow;
        return QB_OK;
    }
    qb_dec_t absb = before > 0 ? before : -before;
    if (q <= absb) { /* reducing or closing */
        S->tr.commission += fee;
        S->tr.fills++;
        S->red_notional += notional;
        S->red_qty += q;
        S->cash_flow += flow;
        return pos_after == 0 ? qb_bt_trade_close(r, S) : QB_OK;
    }
    /* crossing 0: split in proportion to quantity */
    qb_dec_t nc = 0, fc = 0;
    qb_dec_div_wide((qb_dec_wide_t)notional * absb, q, &nc, QB_ROUND_HALF_EVEN);
    qb_dec_div_wide((qb_dec_wide_t)fee * absb, q, &fc, QB_ROUND_HALF_EVEN);
    S->tr.commission += fc;
    S->tr.fills++;
    S->red_notional += nc;
    S->red_qty += absb;
    S->cash_flow += (s > 0 ? -(qb_dec_wide_t)nc : (qb_dec_wide_t)nc) - fc;
    qb_err_t err = qb_bt_trade_close(r, S);
    if (err != QB_OK) return err;
    qb_bt_trade_open(r, S, id, s, q - absb, notional - nc, fee - fc);
    return QB_OK;
}

/* ---- orders ---------------------------------------------------------------------------------- */

static qb_err_t qb_bt_submit(qb_bt_run_t *r, uint32_t id, qb_side_t side, qb_order_type_t type,
                             qb_tif_t tif, qb_dec_t qty, qb_dec_t limit, qb_dec_t stop,
                             uint32_t flags, uint64_t tag, uint64_t *oid) {
    qb_sim_order_t req = {id, side, type, tif, qty, limit, stop, flags, tag};
    char msg[256];
    r->res->counts.orders++;
    qb_err_t err = qb_sim_submit(r->sim, &req, r->ts, oid, msg, sizeof msg);
    if (err == QB_ERR_INVALID) { /* refused: a REJECTED event counts it */
        *oid = 0;
        return QB_OK;
    }
    if (err != QB_OK)
        return qb_err_set(r->errstr, r->errsz, err, "backtest: submit %s: %s",
                          r->sym[id].bar.symbol.s, msg);
    return QB_OK;
}

static void qb_bt_cancel(qb_bt_run_t *r, uint64_t *oid) {
    if (*oid) qb_sim_cancel(r->sim, *oid, r->ts); /* NOT_FOUND: it already ended */
    *oid = 0;
}

/* A protective stop for the whole position of id (see "Signals to orders" d). */
static qb_err_t qb_bt_place_stop(qb_bt_run_t *r, uint32_t id) {
    qb_bt_sym_t *S = &r->sym[id];
    S->need_stop = 0;
    qb_bt_cancel(r, &S->stop_id);
    qb_dec_t pos = qb_portfolio_qty(r->pf, id);
    if (pos == 0 || S->stop_dist <= 0 || !S->in_trade) return QB_OK;
    const qb_bt_config_t *c = r->cfg;
    int lng = pos > 0;
    qb_dec_t avg = qb_bt_avg(S->add_notional, S->tr.qty);
    qb_dec_t stop = lng ? avg - S->stop_dist : avg + S->stop_dist;
    if (c->tick > 0 && qb_dec_quantize(stop, c->tick, lng ? QB_ROUND_FLOOR : QB_ROUND_CEIL,
                                       &stop) != QB_OK)
        return QB_OK;
    if (stop <= 0) return QB_OK;
    qb_order_type_t type = QB_ORDER_TYPE_STOP;
    qb_dec_t limit = 0;
    if (c->stop_limit_bps > 0) {
        qb_dec_wide_t f = (qb_dec_wide_t)10000 * QB_DEC_SCALE +
                          (lng ? -(qb_dec_wide_t)c->stop_limit_bps : c->stop_limit_bps);
        if (qb_dec_div_wide((qb_dec_wide_t)stop * f, (qb_dec_wide_t)10000 * QB_DEC_SCALE, &limit,
                            lng ? QB_ROUND_FLOOR : QB_ROUND_CEIL) != QB_OK ||
            limit <= 0)
            return QB_OK;
        type = QB_ORDER_TYPE_STOP_LIMIT;
    }
    return qb_bt_submit(r, id, lng ? QB_SIDE_SELL : QB_SIDE_BUY, type, QB_TIF_GTC,
                        lng ? pos : -pos, limit, stop, 0, S->entry_sig * 4 + QB_BT_ROLE_STOP,
                        &S->stop_id);
}

static qb_err_t qb_bt_on_fill(qb_bt_run_t *r, const qb_sim_event_t *e) {
    qb_bt_result_t *res = r->res;
    qb_bt_counts_t *n = &res->counts;
    n->fills++;
    if (e->status == QB_ORDER_STATUS_PARTIALLY_FILLED) n->partial_fills++;
    n->commissions += e->commission;
    n->slippage += e->slippage;
    qb_err_t err = QB_OK;
    qb_dec_t notional = qb_bt_notional(e->qty, e->price, &err);
    if (err != QB_OK) return qb_bt_fail(r, err, "fill notional");
    qb_bt_acc_notional(&r->acc, notional);
    if (r->cfg->keep_fills) {
        if (!qb_bt_grow((void **)&res->fills, &res->capfills, res->nfills, sizeof *res->fills))
            return qb_bt_fail(r, QB_ERR_NOMEM, "fills");
        qb_bt_fill_t *x = &res->fills[res->nfills++];
        memset(x, 0, sizeof *x); /* padding too: results compare with memcmp */
        x->ts = e->ts;
        x->sym = e->sym;
        x->side = e->side;
        x->type = e->type;
        x->tag = e->tag;
        x->qty = e->qty;
        x->price = e->price;
        x->commission = e->commission;
        x->slippage = e->slippage;
        x->cash_after = e->cash;
        x->position_after = e->position;
    }
    qb_bt_sym_t *S = &r->sym[e->sym];
    err = qb_bt_trade_fill(r, S, e->sym, e->side == QB_SIDE_BUY ? 1 : -1, e->qty, notional,
                           e->commission, e->position);
    if (err != QB_OK) return err;
    if ((e->tag & 3) == QB_BT_ROLE_ENTRY && r->cfg->stop_exits && S->stop_dist > 0 &&
        !S->need_stop) {
        S->need_stop = 1;
        r->stop_q[r->nstop_q++] = e->sym;
    }
    return QB_OK;
}

/* Handle the simulator's events (and the stops they call for) until none. */
static qb_err_t qb_bt_drain(qb_bt_run_t *r) {
    for (;;) {
        size_t n;
        const qb_sim_event_t *ev = qb_sim_events(r->sim, &n);
        if (n == 0 && r->nstop_q == 0) return QB_OK;
        qb_bt_counts_t *c = &r->res->counts;
        for (size_t i = 0; i < n; i++) {
            const qb_sim_event_t *e = &ev[i];
            qb_bt_sym_t *S = &r->sym[e->sym];
            if (e->kind == QB_SIM_EV_FILL) {
                qb_err_t err = qb_bt_on_fill(r, e);
                if (err != QB_OK) return err;
            } else if (e->kind == QB_SIM_EV_REJECTED) {
                c->orders_rejected++;
            } else if (e->kind == QB_SIM_EV_CANCELED) {
                c->orders_canceled++;
            } else if (e->kind == QB_SIM_EV_EXPIRED) {
                c->orders_expired++;
            }
            if (e->order_id && qb_order_status_is_terminal(e->status)) {
                if (S->exit_id == e->order_id) S->exit_id = 0;
                if (S->entry_id == e->order_id) S->entry_id = 0;
                if (S->stop_id == e->order_id) S->stop_id = 0;
            }
        }
        qb_sim_events_clear(r->sim);
        size_t nq = r->nstop_q;
        r->nstop_q = 0;
        for (size_t i = 0; i < nq; i++) {
            qb_err_t err = qb_bt_place_stop(r, r->stop_q[i]);
            if (err != QB_OK) return err;
        }
    }
}

/* The entry quantity for a signal (0: skip). */
static qb_err_t qb_bt_size(qb_bt_run_t *r, const qb_signal_t *sig, qb_dec_t ref, qb_dec_t *qty) {
    const qb_bt_config_t *c = r->cfg;
    qb_dec_t eq = qb_portfolio_equity(r->pf);
    qb_err_t err = QB_OK;
    *qty = 0;
    switch (c->sizing) {
    case QB_SIZING_FIXED_QTY: err = qb_sizing_fixed_qty(c->sizing_value, c->lot, qty); break;
    case QB_SIZING_PERCENT_EQUITY: {
        qb_dec_t f = c->sizing_value;
        if (c->use_target_weight && sig->has_target_weight &&
            qb_dec_from_double(sig->target_weight, &f, QB_ROUND_HALF_EVEN) != QB_OK)
            f = c->sizing_value;
        err = qb_sizing_percent_equity(eq, f, ref, c->lot, qty);
        break;
    }
    case QB_SIZING_FIXED_FRACTIONAL:
        if (sig->stop_distance <= 0) return QB_OK;
        err = qb_sizing_fixed_fractional(eq, c->sizing_value, ref, ref - sig->stop_distance,
                                         c->lot, qty);
        break;
    default: return QB_OK;
    }
    if (err == QB_ERR_INVALID) { /* e.g. zero equity: nothing fits */
        *qty = 0;
        return QB_OK;
    }
    return err == QB_OK ? QB_OK : qb_bt_fail(r, err, "sizing");
}

/* Give the simulator the bar of symbol id at column index at (step 1). */
static qb_err_t qb_bt_sim_bar(qb_bt_run_t *r, uint32_t id, qb_time_t ts, uint32_t at) {
    const qb_bt_data_t *d = r->d;
    qb_pf_bar_t b = {ts,           d->px[QB_BT_O][at], d->px[QB_BT_H][at],
                     d->px[QB_BT_L][at], d->px[QB_BT_C][at], d->px[QB_BT_V][at]};
    r->sym[id].sim_ts = ts;
    qb_err_t err = qb_sim_on_bar(r->sim, id, &b);
    if (err != QB_OK)
        return qb_err_set(r->errstr, r->errsz, err, "backtest: %s", qb_sim_last_error(r->sim));
    size_t nev;
    qb_sim_events(r->sim, &nev);
    return nev ? qb_bt_drain(r) : QB_OK;
}

/* One signal on symbol id at its current bar (column index at). */
static qb_err_t qb_bt_act(qb_bt_run_t *r, uint32_t id, const qb_signal_t *sig, uint32_t at) {
    const qb_bt_config_t *c = r->cfg;
    qb_bt_result_t *res = r->res;
    qb_bt_sym_t *S = &r->sym[id];
    const qb_dec_t close = r->d->px[QB_BT_C][at];
    if (S->sim_ts != r->ts) { /* catch the simulator up with this bar before any order */
        qb_err_t err = qb_bt_sim_bar(r, id, r->ts, at);
        if (err != QB_OK) return err;
    }
    uint64_t idx = res->counts.signals++;
    if (c->keep_signals) {
        if (!qb_bt_grow((void **)&res->sigs, &res->capsigs, res->nsigs, sizeof *res->sigs))
            return qb_bt_fail(r, QB_ERR_NOMEM, "signals");
        res->sigs[res->nsigs++] = *sig;
    }
    int want;
    switch (sig->direction) {
    case QB_SIGNAL_LONG: want = 1; break;
    case QB_SIGNAL_SHORT: want = c->long_only ? 0 : -1; break;
    case QB_SIGNAL_FLAT: want = 0; break;
    default: res->counts.signals_skipped++; return QB_OK;
    }
    qb_bt_cancel(r, &S->exit_id);
    qb_bt_cancel(r, &S->entry_id);
    qb_bt_cancel(r, &S->stop_id);
    qb_dec_t pos = qb_portfolio_qty(r->pf, id);
    int cur = pos > 0 ? 1 : pos < 0 ? -1 : 0;
    qb_err_t err;
    if (want != cur && pos != 0) {
        err = qb_bt_submit(r, id, pos > 0 ? QB_SIDE_SELL : QB_SIDE_BUY, QB_ORDER_TYPE_MARKET,
                           QB_TIF_GTC, pos > 0 ? pos : -pos, 0, 0, 0,
                           idx * 4 + QB_BT_ROLE_EXIT, &S->exit_id);
        if (err != QB_OK) return err;
    }
    if (want != 0 && want != cur) {
        qb_dec_t ref = sig->reference_price > 0 ? sig->reference_price : close;
        qb_dec_t qty = 0;
        uint32_t flags = 0;
        if (c->sizing == QB_SIZING_ALL_IN) {
            flags = QB_SIM_ALL_IN;
        } else {
            err = qb_bt_size(r, sig, ref, &qty);
            if (err != QB_OK) return err;
            if (qty <= 0) {
                res->counts.signals_skipped++;
                return qb_bt_drain(r);
            }
        }
        qb_dec_t limit = 0;
        qb_side_t side = want > 0 ? QB_SIDE_BUY : QB_SIDE_SELL;
        if (c->entry_type == QB_ORDER_TYPE_LIMIT) {
            qb_dec_wide_t f = (qb_dec_wide_t)10000 * QB_DEC_SCALE +
                              (want > 0 ? -(qb_dec_wide_t)c->limit_offset_bps
                                        : (qb_dec_wide_t)c->limit_offset_bps);
            qb_round_t mode = want > 0 ? QB_ROUND_FLOOR : QB_ROUND_CEIL;
            if (qb_dec_div_wide((qb_dec_wide_t)ref * f, (qb_dec_wide_t)10000 * QB_DEC_SCALE,
                                &limit, mode) != QB_OK)
                return qb_bt_fail(r, QB_ERR_OVERFLOW, "limit price");
            if (c->tick > 0 && qb_dec_quantize(limit, c->tick, mode, &limit) != QB_OK)
                return qb_bt_fail(r, QB_ERR_OVERFLOW, "limit price");
            if (limit <= 0) {
                res->counts.signals_skipped++;
                return qb_bt_drain(r);
            }
        }
        S->stop_dist = sig->stop_distance;
        S->entry_sig = idx;
        err = qb_bt_submit(r, id, side, c->entry_type, c->entry_tif, qty, limit, 0, flags,
                           idx * 4 + QB_BT_ROLE_ENTRY, &S->entry_id);
        if (err != QB_OK) return err;
    }
    return qb_bt_drain(r);
}

/* ---- benchmark ----------------------------------------------------------------------------- */

/* The first bar (buy) and the uncommon cases of qb_bt_bench_bar. */
static __attribute__((noinline)) qb_err_t qb_bt_bench_slow(qb_bt_run_t *r, qb_bt_sym_t *S,
                                                          qb_dec_t close, qb_dec_t share) {
    if (!S->b_bought) {
        S->b_bought = 1;
        qb_dec_t q = 0;
        if (qb_sizing_all_in(share, close, QB_DEC_SCALE, &r->cfg->commission, r->cfg->lot, &q) !=
                QB_OK ||
            q <= 0)
            return QB_OK;
        qb_err_t err = QB_OK;
        qb_dec_t notional = qb_bt_notional(q, close, &err), fee = 0;
        if (err == QB_OK) err = qb_commission_calc(&r->cfg->commission, q, notional, &fee);
        if (err != QB_OK) return qb_bt_fail(r, err, "benchmark");
        r->b_cash -= notional + fee;
        qb_bt_acc_notional(&r->bacc, notional);
        S->b_qty = q;
        S->b_mv = notional;
        S->b_units = q % QB_DEC_SCALE == 0 ? q / QB_DEC_SCALE : -1;
        r->b_mv += notional;
        return QB_OK;
    }
    if (S->b_qty == 0) return QB_OK;
    qb_dec_t mv;
    if (S->b_units < 0 || __builtin_mul_overflow(S->b_units, close, &mv)) {
        qb_err_t err = qb_dec_mul(S->b_qty, close, &mv, QB_ROUND_HALF_EVEN);
        if (err != QB_OK) return qb_bt_fail(r, err, "benchmark value");
    }
    r->b_mv += mv - S->b_mv;
    S->b_mv = mv;
    return QB_OK;
}

/* The benchmark's bar: buy at the first close, then value the position. */
static qb_err_t qb_bt_bench_bar(qb_bt_run_t *r, qb_bt_sym_t *S, qb_dec_t close,
                                qb_dec_t share) {
    qb_dec_t mv;
    if (S->b_units >= 0 && !__builtin_mul_overflow(S->b_units, close, &mv)) {
        r->b_mv += mv - S->b_mv; /* b_units >= 0: bought a whole quantity */
        S->b_mv = mv;
        return QB_OK;
    }
    return qb_bt_bench_slow(r, S, close, share);
}

/* Step 1 for the bar of symbol id at column index at (close: its close):
 * the simulator (or the mark), the benchmark (bench: cfg->benchmark). The
 * caller passes what does not change over the run, so the per-bar path
 * does not reload it after every call. */
static inline __attribute__((always_inline)) qb_err_t qb_bt_bar(qb_bt_run_t *r, uint32_t id,
                                                                uint32_t at, qb_dec_t close,
                                                                qb_dec_t share, int bench) {
    qb_bt_sym_t *S = &r->sym[id];
    qb_err_t err;
    S->cur++;
    if (S->traded) {
        /* A symbol without working orders: the simulator would only note
         * the bar and mark the position at the close, so the bar is given
         * to it only if a signal comes at it (qb_bt_act, by S->sim_ts: it
         * then notes it and marks at the same close again) - the same
         * state, calls saved. A position is marked here (equity per step),
         * a flat one needs no mark: qb_portfolio_mark_open does nothing to
         * it, without a branch on S->in_trade (which half the symbols are
         * in a trade changes too often to predict); and no call at all
         * while no symbol is in a trade (n_pos, e.g. no signal yet). */
        if (!(S->exit_id | S->entry_id | S->stop_id)) {
            if (r->n_pos > 0 && qb_portfolio_mark_open(r->pf, id, close) != QB_OK) {
                /* the simulator's own mark fails the same way: its error
                 * message */
                err = qb_bt_sim_bar(r, id, r->ts, at);
                if (err == QB_OK)
                    err = qb_err_set(r->errstr, r->errsz, QB_ERR_OVERFLOW, "backtest: mark %s",
                                     S->bar.symbol.s);
                return err;
            }
        } else {
            err = qb_bt_sim_bar(r, id, r->ts, at);
            if (err != QB_OK) return err;
        }
    }
    if (bench) return qb_bt_bench_bar(r, S, close, share);
    return QB_OK;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static qb_err_t qb_bt_assign(qb_bt_run_t *r, int *owner) {
    const qb_bt_config_t *c = r->cfg;
    int star = -1;
    for (size_t k = 0; k < r->nsym; k++) owner[k] = -1;
    for (int i = 0; i < c->nstrategies; i++) {
        const char *list = c->strategies[i].symbols;
        if (!*list) {
            if (star >= 0)
                return qb_err_set(r->errstr, r->errsz, QB_ERR_INVALID,
                                  "strategies[%d].symbols: only one entry may leave symbols empty "
                                  "(entry %d does too)",
                                  i, star);
            star = i;
            continue;
        }
        const char *p = list;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char name[QB_SYMBOL_MAX + 2];
            uint32_t id;
            if (len == 0 || len > QB_SYMBOL_MAX)
                return qb_err_set(r->errstr, r->errsz, QB_ERR_INVALID,
                                  "strategies[%d].symbols: bad list \"%s\"", i, list);
            memcpy(name, p, len);
            name[len] = 0;
            if (qb_bt_data_symbol_find(r->d, name, &id) != QB_OK)
                return qb_err_set(r->errstr, r->errsz, QB_ERR_INVALID,
                                  "strategies[%d].symbols: %s is not in the data", i, name);
            if (owner[id] >= 0)
                return qb_err_set(r->errstr, r->errsz, QB_ERR_INVALID,
                                  "strategies[%d].symbols: %s is named by entry %d too", i, name,
                                  owner[id]);
            owner[id] = i;
            p = e ? e + 1 : p + len;
        }
    }
    if (star >= 0)
        for (size_t k = 0; k < r->nsym; k++)
            if (owner[k] < 0) owner[k] = star;
    return QB_OK;
}

static int qb_bt_sig_cmp(const void *a, const void *b) {
    const qb_bt_sig_ref_t *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->sym != y->sym) return x->sym < y->sym ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void qb_bt_run_free(qb_bt_run_t *r) {
    if (r->sym)
        for (size_t k = 0; k < r->nsym; k++) qb_strategy_destroy(r->sym[k].strat);
    free(r->sym);
    free(r->stop_q);
    qb_sim_destroy(r->sim);
    qb_portfolio_destroy(r->pf);
}

static qb_err_t qb_bt_run_impl(const qb_bt_data_t *d, const qb_bt_config_t *cfg,
                               const qb_signal_t *signals, size_t nsignals, int use_signals,
                               qb_bt_result_t **out, char *errstr, size_t errstr_size) {
    qb_err_t err = qb_bt_config_validate(cfg, errstr, errstr_size);
    if (err != QB_OK) return err;
    if (!d->finalized)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "backtest: the data is not finalized (qb_bt_data_finalize)");
    double bpy = cfg->bars_per_year;
    if (bpy <= 0 && qb_bt_bars_per_year(d->tf, cfg->twenty_four_seven, &bpy) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "bars_per_year: the data has no timeframe; give bars_per_year > 0");

    qb_bt_run_t R, *r = &R;
    memset(r, 0, sizeof *r);
    r->d = d;
    r->cfg = cfg;
    r->nsym = d->nsym;
    r->errstr = errstr;
    r->errsz = errstr_size;
    qb_bt_sig_ref_t *sref = NULL;
    size_t nsref = 0;
    uint32_t *bmark = NULL; /* per bar of the block: 1 + index into bsig, 0 none */
    uint32_t *bat = NULL;   /* qb_strategy_on_bars: bar of each signal */
    /* dense blocks: signal x is at step sl_t[x] of the block, run sl_q[x];
     * so[] lists the signals by step (then run), cnt[t] is where step t's
     * end in so[] (t's start: cnt[t - 1], or 0) */
    uint32_t *sl_t = NULL, *sl_q = NULL, *so = NULL, *cnt = NULL;
    qb_signal_t *bsig = NULL;
    size_t nbsig = 0, capbsig = 0;
    int *owner = NULL;
    qb_bt_result_t *res = calloc(1, sizeof *res);
    r->res = res;
    r->sym = calloc(r->nsym, sizeof *r->sym);
    r->stop_q = malloc((r->nsym ? r->nsym : 1) * sizeof *r->stop_q);
    owner = malloc((r->nsym ? r->nsym : 1) * sizeof *owner);
    if (res) {
        res->names = calloc(r->nsym, sizeof *res->names);
        res->pos = calloc(r->nsym, sizeof *res->pos);
    }
    if (!res || !r->sym || !r->stop_q || !owner || !res->names || !res->pos) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest: out of memory");
        goto done;
    }
    res->cfg = *cfg;
    res->cfg.progress = NULL;
    res->cfg.progress_ctx = NULL;
    res->nsym = r->nsym;

    /* the account and the simulator */
    qb_portfolio_config_t pc;
    qb_portfolio_config_default(&pc);
    pc.initial_cash = cfg->cash;
    pc.margin_long = cfg->margin_long;
    pc.margin_short = cfg->margin_short;
    pc.allow_short = !cfg->long_only;
    err = qb_portfolio_new(&pc, &r->pf, errstr, errstr_size);
    if (err != QB_OK) goto done;
    qb_sim_config_t sc;
    qb_sim_config_default(&sc);
    sc.timing = cfg->fill;
    sc.slippage_bps = cfg->slippage_bps;
    sc.tick = cfg->tick;
    sc.volume_cap = cfg->volume_cap;
    sc.lot = cfg->lot;
    sc.commission = cfg->commission;
    err = qb_sim_new(&sc, r->pf, &r->sim, errstr, errstr_size);
    if (err != QB_OK) goto done;

    /* symbols: the portfolio's ids equal the data's */
    for (uint32_t k = 0; k < r->nsym; k++) {
        uint32_t pid;
        const qb_bt_series_t *s = &d->ser[k];
        err = qb_portfolio_symbol(r->pf, s->name.s, &pid, errstr, errstr_size);
        if (err != QB_OK) goto done;
        QB_ASSERT(pid == k);
        res->names[k] = s->name;
        qb_bt_sym_t *S = &r->sym[k];
        S->bar.symbol = s->name;
        snprintf(S->bar.timeframe, sizeof S->bar.timeframe, "%s", d->tf);
        S->first_in = cfg->from ? qb_bt_series_lower(s, cfg->from) : 0;
        S->b_units = -1;
        S->sim_ts = INT64_MIN;
    }

    /* strategies or signals */
    if (!use_signals) {
        err = qb_bt_assign(r, owner);
        if (err != QB_OK) goto done;
        for (uint32_t k = 0; k < r->nsym; k++) {
            if (owner[k] < 0) continue;
            const qb_bt_strategy_t *st = &cfg->strategies[owner[k]];
            char msg[256];
            err = qb_strategy_new(st->kind, st->params, &r->sym[k].strat, msg, sizeof msg);
            if (err != QB_OK) {
                err = qb_err_set(errstr, errstr_size,
                                 err == QB_ERR_NOMEM ? QB_ERR_NOMEM : QB_ERR_INVALID,
                                 "strategies[%d] (%s): %s", owner[k], d->ser[k].name.s, msg);
                goto done;
            }
            qb_strategy_set_reasons(r->sym[k].strat, cfg->reasons);
            r->sym[k].traded = 1;
        }
    } else {
        sref = malloc((nsignals ? nsignals : 1) * sizeof *sref);
        if (!sref) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest: out of memory");
            goto done;
        }
        for (size_t i = 0; i < nsignals; i++) {
            const qb_signal_t *sg = &signals[i];
            uint32_t id;
            if (qb_bt_data_symbol_find(d, sg->symbol.s, &id) != QB_OK) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "signals[%zu]: symbol \"%s\" is not in the data", i,
                                 sg->symbol.s);
                goto done;
            }
            const qb_bt_series_t *s = &d->ser[id];
            size_t j = qb_bt_series_lower(s, sg->bar_ts);
            if (j == s->n || s->ts[j] != sg->bar_ts) {
                char t[QB_TIME_STRLEN];
                qb_time_format(sg->bar_ts, t, sizeof t);
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "signals[%zu]: %s has no bar at %s", i, sg->symbol.s, t);
                goto done;
            }
            if ((cfg->from && sg->bar_ts < cfg->from) || (cfg->to && sg->bar_ts >= cfg->to))
                continue;
            sref[nsref++] = (qb_bt_sig_ref_t){sg->bar_ts, id, i};
        }
        qsort(sref, nsref, sizeof *sref, qb_bt_sig_cmp);
        for (uint32_t k = 0; k < r->nsym; k++) r->sym[k].traded = 1;
    }

    /* window */
    size_t s0 = 0, s1 = d->nsteps;
    {
        size_t lo = 0, hi = d->nsteps;
        while (lo < hi) {
            size_t m = lo + (hi - lo) / 2;
            if (cfg->from && d->steps[m] < cfg->from) lo = m + 1; else hi = m;
        }
        s0 = lo;
        if (cfg->to) {
            lo = s0;
            hi = d->nsteps;
            while (lo < hi) {
                size_t m = lo + (hi - lo) / 2;
                if (d->steps[m] < cfg->to) lo = m + 1; else hi = m;
            }
            s1 = lo;
        }
    }
    res->eq = malloc((s1 > s0 ? s1 - s0 : 1) * sizeof *res->eq);
    if (!res->eq) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest: out of memory");
        goto done;
    }

    /* warm-up: per symbol, the bars before the window */
    for (uint32_t k = 0; k < r->nsym; k++) {
        qb_bt_sym_t *S = &r->sym[k];
        const qb_bt_series_t *s = &d->ser[k];
        size_t w0 = 0;
        if (S->strat && cfg->warmup_bars >= 0)
            w0 = S->first_in > (size_t)cfg->warmup_bars ? S->first_in - (size_t)cfg->warmup_bars
                                                        : 0;
        if (S->strat)
            for (size_t i = w0; i < S->first_in; i++) {
                const uint32_t at = s->pos[i];
                S->bar.ts = s->ts[i];
                S->bar.open = d->px[QB_BT_O][at];
                S->bar.high = d->px[QB_BT_H][at];
                S->bar.low = d->px[QB_BT_L][at];
                S->bar.close = d->px[QB_BT_C][at];
                S->bar.volume = d->px[QB_BT_V][at];
                qb_strategy_warmup(S->strat, &S->bar);
                res->counts.warmup_bars++;
            }
        S->cur = S->first_in;
    }

    /* benchmark share: symbols with a bar in the window */
    qb_dec_t share = 0;
    if (cfg->benchmark) {
        int64_t nb = 0;
        for (uint32_t k = 0; k < r->nsym; k++) {
            const qb_bt_series_t *s = &d->ser[k];
            size_t end = cfg->to ? qb_bt_series_lower(s, cfg->to) : s->n;
            if (r->sym[k].first_in < end) nb++;
        }
        if (nb) share = cfg->cash / nb;
        r->b_cash = cfg->cash;
    }
    qb_bt_acc_init(&r->acc, cfg->cash, bpy);
    qb_bt_acc_init(&r->bacc, cfg->cash, bpy);

    /* the steps, a data block at a time (qb_bt_data_int.h). Strategies
     * run ahead over the block, symbol by symbol: each instance's state
     * stays in cache and its bars of the block are one contiguous run;
     * their signals are parked at their bar (bmark; in a dense block, in
     * lists by step: so, cnt). The accounting then
     * walks the block in time order and takes each signal at its bar. The
     * same as calling on_bar in time order, because a strategy's decisions
     * depend on its own bars only (qb_strategy.h). */
    uint64_t every = cfg->progress_every ? cfg->progress_every : 4096;
    uint64_t total = s1 > s0 ? s1 - s0 : 0;
    size_t sc_i = 0;
    const int bench = cfg->benchmark;
    const qb_dec_t *const closes = d->px[QB_BT_C];
    size_t maxblk = 1;
    for (size_t b = 0; b < d->nblocks; b++) {
        size_t nbk = d->step_start[d->block_step[b + 1]] - d->step_start[d->block_step[b]];
        if (nbk > maxblk) maxblk = nbk;
    }
    bmark = calloc(maxblk, sizeof *bmark);
    bat = malloc(maxblk * sizeof *bat);
    sl_t = malloc(maxblk * sizeof *sl_t);
    sl_q = malloc(maxblk * sizeof *sl_q);
    so = malloc(maxblk * sizeof *so);
    cnt = malloc((maxblk + 1) * sizeof *cnt);
    if (!bmark || !bat || !sl_t || !sl_q || !so || !cnt) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest: out of memory");
        goto done;
    }
    for (uint32_t k = 0; k < r->nsym; k++) r->sym[k].scur = r->sym[k].first_in;
    size_t blk = 0;
    while (blk < d->nblocks && d->block_step[blk + 1] <= s0) blk++;
    for (; blk < d->nblocks && d->block_step[blk] < s1; blk++) {
        size_t sa = d->block_step[blk] > s0 ? d->block_step[blk] : s0;
        size_t sb = d->block_step[blk + 1] < s1 ? d->block_step[blk + 1] : s1;
        const size_t bs0 = d->block_step[blk], bs1 = d->block_step[blk + 1];
        const uint32_t kA = d->step_start[bs0];
        const qb_time_t tend = sb < d->nsteps ? d->steps[sb] : INT64_MAX;
        const qb_bt_brun_t *ru0 = &d->runs[d->block_run[blk]];
        const qb_bt_brun_t *ru1 = &d->runs[d->block_run[blk + 1]];
        /* every run full: bar of run q at step st is q->off + st - bs0;
         * else the block's time order: korder, kloc */
        const int dense = d->block_k[blk] == UINT32_MAX;
        const uint32_t *korder = dense ? NULL : d->order + d->block_k[blk];
        const uint32_t *kloc = dense ? NULL : d->loc + d->block_k[blk];
        if (!use_signals) {
            nbsig = 0;
            for (const qb_bt_brun_t *q = ru0; q < ru1; q++) {
                const uint32_t id = q->id;
                qb_bt_sym_t *S = &r->sym[id];
                if (q + 2 < ru1) { /* two runs ahead: the closes' first read */
                    const char *p0 = (const char *)&d->px[QB_BT_C][q[2].off];
                    const char *p1 = (const char *)&d->px[QB_BT_C][q[2].off + q[2].n];
                    for (; p0 < p1; p0 += 64) __builtin_prefetch(p0);
                    /* and the other prices of its last bar, which the
                     * strategy leaves in S->bar (qb_strategy_on_bars):
                     * four misses per run otherwise */
                    if (q[2].n) {
                        const uint32_t z = q[2].off + q[2].n - 1;
                        __builtin_prefetch(&d->px[QB_BT_O][z]);
                        __builtin_prefetch(&d->px[QB_BT_H][z]);
                        __builtin_prefetch(&d->px[QB_BT_L][z]);
                        __builtin_prefetch(&d->px[QB_BT_V][z]);
                    }
                }
                if (!S->strat) continue;
                /* the symbol's bars of the block inside the window: series
                 * [i, e), stored one after the other from column index at */
                size_t i = S->scur > q->first ? S->scur : q->first, e = q->first + q->n;
                if (sb < bs1) { /* the window ends inside the block */
                    const qb_time_t *ts = d->ser[id].ts;
                    while (e > i && ts[e - 1] >= tend) e--;
                }
                if (e <= i) continue;
                S->scur = e;
                while (capbsig < nbsig + (e - i)) {
                    if (!qb_bt_grow((void **)&bsig, &capbsig, capbsig, sizeof *bsig)) {
                        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM,
                                         "backtest: out of memory");
                        goto done;
                    }
                }
                /* a full run's times are the block's steps (in cache) */
                const qb_time_t *ts = q->n == bs1 - bs0 ? &d->steps[bs0 + (i - q->first)]
                                                       : &d->ser[id].ts[i];
                uint32_t at = q->off + (uint32_t)(i - q->first);
                const qb_dec_t *const px[5] = {d->px[0] + at, d->px[1] + at, d->px[2] + at,
                                               d->px[3] + at, d->px[4] + at};
                int ns = qb_strategy_on_bars(S->strat, &S->bar, ts, px, e - i, &bsig[nbsig],
                                             bat);
                QB_ASSERT(ns >= 0); /* series ts are strictly increasing */
                for (int j = 0; j < ns; j++) {
                    const uint32_t b = at + bat[j];
                    if (dense) {
                        sl_t[nbsig] = b - q->off;
                        sl_q[nbsig] = (uint32_t)(q - ru0);
                        nbsig++;
                    } else {
                        bmark[b - kA] = (uint32_t)++nbsig;
                    }
                    /* the simulator reads all of this bar (and of the
                     * next, the fill, mostly on the same lines): the
                     * columns other than the close, not read so far */
                    __builtin_prefetch(&d->px[QB_BT_O][b]);
                    __builtin_prefetch(&d->px[QB_BT_H][b]);
                    __builtin_prefetch(&d->px[QB_BT_L][b]);
                    __builtin_prefetch(&d->px[QB_BT_V][b]);
                }
            }
            if (dense) { /* the signals by step: a counting sort, stable */
                const size_t nst = bs1 - bs0;
                memset(cnt, 0, (nst + 1) * sizeof *cnt);
                for (size_t x = 0; x < nbsig; x++) cnt[sl_t[x] + 1]++;
                for (size_t y = 1; y <= nst; y++) cnt[y] += cnt[y - 1];
                for (size_t x = 0; x < nbsig; x++) so[cnt[sl_t[x]]++] = (uint32_t)x;
            }
        } else {
            /* no strategy pass brought the block into cache: one sweep */
            const char *p0 = (const char *)&d->px[QB_BT_C][d->step_start[sa]];
            const char *p1 = (const char *)&d->px[QB_BT_C][d->step_start[sb]];
            for (const char *q = p0; q < p1; q += 64) __builtin_prefetch(q);
        }
        for (size_t st = sa; st < sb; st++) {
            r->ts = d->steps[st];
            const uint32_t k0 = d->step_start[st], k1 = d->step_start[st + 1];
            const uint32_t t = (uint32_t)(st - bs0);
            /* 1. the simulator: fills, marks */
            if (dense) {
                for (const qb_bt_brun_t *q = ru0; q < ru1; q++) {
                    const uint32_t at = q->off + t;
                    err = qb_bt_bar(r, q->id, at, closes[at], share, bench);
                    if (err != QB_OK) goto done;
                }
            } else {
                for (uint32_t k = k0; k < k1; k++) {
                    const uint32_t at = kloc[k - kA];
                    err = qb_bt_bar(r, korder[k - kA], at, closes[at], share, bench);
                    if (err != QB_OK) goto done;
                }
            }
            res->counts.bars += k1 - k0;
            /* 2. decisions */
            if (!use_signals) {
                if (dense) { /* the step's signals, in symbol order */
                    for (uint32_t y = t ? cnt[t - 1] : 0; y < cnt[t]; y++) {
                        const uint32_t x = so[y];
                        const qb_bt_brun_t *q = ru0 + sl_q[x];
                        err = qb_bt_act(r, q->id, &bsig[x], q->off + t);
                        if (err != QB_OK) goto done;
                    }
                } else if (nbsig) {
                    for (uint32_t k = k0; k < k1; k++) {
                        const uint32_t at = kloc[k - kA], j = bmark[at - kA];
                        if (!j) continue;
                        bmark[at - kA] = 0;
                        err = qb_bt_act(r, korder[k - kA], &bsig[j - 1], at);
                        if (err != QB_OK) goto done;
                    }
                }
            } else {
                while (sc_i < nsref && sref[sc_i].ts == r->ts) {
                    uint32_t id = sref[sc_i].sym;
                    const qb_bt_series_t *se = &d->ser[id];
                    err = qb_bt_act(r, id, &signals[sref[sc_i].idx],
                                    se->pos[r->sym[id].cur - 1]);
                    if (err != QB_OK) goto done;
                    sc_i++;
                }
            }
            /* 3. equity */
            qb_bt_point_t *p = &res->eq[res->neq++];
            p->ts = r->ts;
            p->equity = qb_portfolio_equity(r->pf);
            p->cash = qb_portfolio_cash(r->pf);
            p->long_value = qb_portfolio_long_value(r->pf);
            p->short_value = qb_portfolio_short_value(r->pf);
            p->benchmark = bench ? r->b_cash + r->b_mv : 0;
            qb_bt_acc_step(&r->acc, r->ts, p->equity, p->long_value - p->short_value,
                           r->n_pos > 0);
            if (bench) qb_bt_acc_step(&r->bacc, r->ts, p->benchmark, r->b_mv, r->b_mv != 0);
            if (cfg->progress && ((uint64_t)res->neq % every == 0 || st + 1 == s1) &&
                cfg->progress((uint64_t)res->neq, total, cfg->progress_ctx)) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                 "backtest: canceled by the progress callback");
                goto done;
            }
        }
    }
    res->counts.steps = res->neq;

    /* the end: open trades marked at the last close */
    for (uint32_t k = 0; k < r->nsym; k++) {
        qb_bt_sym_t *S = &r->sym[k];
        res->pos[k] = qb_portfolio_qty(r->pf, k);
        if (!S->in_trade) continue;
        qb_bt_trade_t t = S->tr;
        qb_dec_t mv = qb_portfolio_market_value(r->pf, k);
        t.open = 1;
        t.exit_ts = S->cur > 0 ? d->ser[k].ts[S->cur - 1] : 0;
        t.entry_price = qb_bt_avg(S->add_notional, t.qty);
        t.exit_price = qb_portfolio_mark_price(r->pf, k);
        t.net_pnl = (qb_dec_t)(S->cash_flow + mv);
        t.return_pct = S->add_notional > 0 ? (double)t.net_pnl / (double)S->add_notional : 0.0;
        t.bars = (int64_t)(S->cur - 1 - S->entry_idx);
        qb_bt_acc_trade(&r->acc, t.net_pnl, t.bars, 1);
        err = qb_bt_trade_push(r, &t);
        if (err != QB_OK) goto done;
    }
    res->counts.orders_working_at_end = qb_sim_open_total(r->sim);
    res->cash = qb_portfolio_cash(r->pf);
    qb_bt_acc_finish(&r->acc, &res->metrics);
    if (bench) {
        qb_bt_acc_finish(&r->bacc, &res->bench);
        res->has_bench = 1;
    }
    err = QB_OK;
done:
    qb_bt_run_free(r);
    free(sref);
    free(owner);
    free(bmark);
    free(bat);
    free(sl_t);
    free(sl_q);
    free(so);
    free(cnt);
    free(bsig);
    if (err == QB_OK)
        *out = res;
    else
        qb_bt_result_destroy(res);
    return err;
}

qb_err_t qb_bt_run(const qb_bt_data_t *data, const qb_bt_config_t *cfg, qb_bt_result_t **out,
                   char *errstr, size_t errstr_size) {
    return qb_bt_run_impl(data, cfg, NULL, 0, 0, out, errstr, errstr_size);
}

qb_err_t qb_bt_run_signals(const qb_bt_data_t *data, const qb_bt_config_t *cfg,
                           const qb_signal_t *signals, size_t nsignals, qb_bt_result_t **out,
                           char *errstr, size_t errstr_size) {
    if (nsignals && !signals)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "signals: NULL with a count");
    return qb_bt_run_impl(data, cfg, signals, nsignals, 1, out, errstr, errstr_size);
}
