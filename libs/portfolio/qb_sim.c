/* qb_sim.c — the broker simulator of qb_sim.h.
 *
 * Storage: orders live in one array of slots (ord), reused through a free
 * list; a slot's generation counter goes into the order id (gen << 32 |
 * slot), so a stale id never finds a newer order. The working orders of a
 * symbol form a FIFO doubly linked through the slots (head/tail in the
 * symbol's qb_sim_sym_t); n_open == 0 is the per-bar fast path. Events go
 * to an array that grows on demand and is reset by qb_sim_events_clear. */
#include "portfolio/qb_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portfolio/qb_pf_int.h"

enum {
    QB_SIM_O_LIVE = 0x1,      /* slot holds a working order */
    QB_SIM_O_ALL_IN = 0x2,    /* qty sized at the first fill */
    QB_SIM_O_TRIGGERED = 0x4, /* STOP / STOP_LIMIT triggered */
    QB_SIM_O_DAY_SET = 0x8    /* DAY: day fixed */
};

typedef struct qb_sim_ord_s {
    uint64_t tag;
    qb_dec_t qty, filled, limit, stop;
    qb_dec_t notional; /* sum of fill notionals (each half-even) */
    qb_dec_t fee;      /* commission paid so far */
    int64_t day;
    qb_time_t created;
    uint32_t sym, gen;
    int32_t prev, next; /* symbol FIFO; next doubles as the free list */
    uint8_t side, type, tif, flags;
} qb_sim_ord_t;

typedef struct qb_sim_sym_s {
    int32_t head, tail;
    uint32_t n_open;
    int have_bar;
    qb_time_t ts;          /* last bar's ts */
    qb_dec_t close, volume; /* last bar's */
    qb_dec_t used;          /* quantity filled on the last bar */
} qb_sim_sym_t;

struct qb_sim_s {
    qb_sim_config_t cfg;
    qb_portfolio_t *pf;
    qb_sim_sym_t *sym;
    uint32_t nsym;
    qb_sim_ord_t *ord;
    uint32_t nord, cap_ord;
    int32_t free_head;
    size_t n_open;
    qb_sim_event_t *ev;
    size_t nev, cap_ev;
    int lost; /* an event could not be stored (out of memory) */
    char err[256];
};

const char *qb_sim_event_kind_name(qb_sim_event_kind_t k) {
    switch (k) {
    case QB_SIM_EV_FILL: return "FILL";
    case QB_SIM_EV_REJECTED: return "REJECTED";
    case QB_SIM_EV_CANCELED: return "CANCELED";
    case QB_SIM_EV_EXPIRED: return "EXPIRED";
    }
    return "UNKNOWN";
}

void qb_sim_config_default(qb_sim_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->timing = QB_FILL_NEXT_OPEN;
    cfg->lot = QB_DEC_SCALE;
    cfg->commission = qb_commission_none();
}

qb_err_t qb_sim_new(const qb_sim_config_t *cfg, qb_portfolio_t *pf, qb_sim_t **out,
                    char *errstr, size_t errstr_size) {
    qb_err_t err = qb_commission_validate(&cfg->commission, errstr, errstr_size);
    if (err != QB_OK) return err;
    const char *bad =
        cfg->timing != QB_FILL_NEXT_OPEN && cfg->timing != QB_FILL_CLOSE ? "unknown timing"
        : cfg->slippage_bps < 0 || cfg->slippage_bps >= 10000 * QB_DEC_SCALE
            ? "slippage_bps must be in [0, 10000)"
        : cfg->tick < 0       ? "tick is negative"
        : cfg->volume_cap < 0 ? "volume_cap is negative"
        : cfg->lot <= 0       ? "lot must be > 0"
                              : NULL;
    if (bad) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "sim config: %s", bad);
    qb_sim_t *sim = calloc(1, sizeof *sim);
    if (!sim) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "sim: out of memory");
    sim->cfg = *cfg;
    sim->pf = pf;
    sim->free_head = -1;
    *out = sim;
    return QB_OK;
}

void qb_sim_destroy(qb_sim_t *sim) {
    if (!sim) return;
    free(sim->sym);
    free(sim->ord);
    free(sim->ev);
    free(sim);
}

qb_portfolio_t *qb_sim_portfolio(const qb_sim_t *sim) { return sim->pf; }
const char *qb_sim_last_error(const qb_sim_t *sim) { return sim->err; }

/* Per-symbol state for every portfolio symbol up to `id`. */
static qb_err_t qb_sim_reserve_sym(qb_sim_t *sim, uint32_t id) {
    if (id < sim->nsym) return QB_OK;
    size_t n = qb_portfolio_nsymbols(sim->pf);
    if (id >= n) return QB_ERR_INVALID;
    qb_sim_sym_t *s = realloc(sim->sym, n * sizeof *s);
    if (!s) return QB_ERR_NOMEM;
    for (size_t i = sim->nsym; i < n; i++)
        s[i] = (qb_sim_sym_t){.head = -1, .tail = -1};
    sim->sym = s;
    sim->nsym = (uint32_t)n;
    return QB_OK;
}

static int64_t qb_sim_day(const qb_sim_t *sim, qb_time_t ts) {
    if (sim->cfg.day_fn) return sim->cfg.day_fn(ts, sim->cfg.day_ctx);
    int64_t d = ts / QB_NS_PER_DAY;
    return ts % QB_NS_PER_DAY < 0 ? d - 1 : d;
}

static uint64_t qb_sim_id(const qb_sim_t *sim, int32_t slot) {
    return (uint64_t)sim->ord[slot].gen << 32 | (uint32_t)slot;
}

static qb_sim_ord_t *qb_sim_find(const qb_sim_t *sim, uint64_t id) {
    uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (slot >= sim->nord) return NULL;
    qb_sim_ord_t *o = &sim->ord[slot];
    return o->gen == gen && (o->flags & QB_SIM_O_LIVE) ? o : NULL;
}

/* ---- events ------------------------------------------------------------------- */

static qb_sim_event_t *qb_sim_event(qb_sim_t *sim, qb_sim_event_kind_t kind) {
    if (sim->nev == sim->cap_ev) {
        size_t cap = sim->cap_ev ? sim->cap_ev * 2 : 64;
        qb_sim_event_t *ev = realloc(sim->ev, cap * sizeof *ev);
        if (!ev) {
            sim->lost = 1;
            return NULL;
        }
        sim->ev = ev;
        sim->cap_ev = cap;
    }
    qb_sim_event_t *e = &sim->ev[sim->nev++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    return e;
}

/* Fill the order's part of an event. */
static void qb_sim_event_order(qb_sim_t *sim, qb_sim_event_t *e, int32_t slot,
                               qb_time_t ts) {
    const qb_sim_ord_t *o = &sim->ord[slot];
    e->sym = o->sym;
    e->side = (qb_side_t)o->side;
    e->type = (qb_order_type_t)o->type;
    e->order_id = qb_sim_id(sim, slot);
    e->tag = o->tag;
    e->ts = ts;
    e->order_qty = o->qty;
    e->filled_qty = o->filled;
    e->cash = qb_portfolio_cash(sim->pf);
    e->position = qb_portfolio_qty(sim->pf, o->sym);
}

const qb_sim_event_t *qb_sim_events(const qb_sim_t *sim, size_t *n) {
    *n = sim->nev;
    return sim->ev;
}

void qb_sim_events_clear(qb_sim_t *sim) { sim->nev = 0; }

/* err, or QB_ERR_NOMEM once when events were lost since the last report. */
static qb_err_t qb_sim_lost(qb_sim_t *sim, qb_err_t err) {
    if (!sim->lost) return err;
    sim->lost = 0;
    snprintf(sim->err, sizeof sim->err, "sim: out of memory: events were lost");
    return QB_ERR_NOMEM;
}

/* ---- order slots ------------------------------------------------------------------ */

static int32_t qb_sim_alloc(qb_sim_t *sim) {
    if (sim->free_head >= 0) {
        int32_t slot = sim->free_head;
        sim->free_head = sim->ord[slot].next;
        return slot;
    }
    if (sim->nord == sim->cap_ord) {
        if (sim->cap_ord >= (UINT32_C(1) << 30)) return -1;
        uint32_t cap = sim->cap_ord ? sim->cap_ord * 2 : 64;
        qb_sim_ord_t *o = realloc(sim->ord, cap * sizeof *o);
        if (!o) return -1;
        sim->ord = o;
        sim->cap_ord = cap;
    }
    int32_t slot = (int32_t)sim->nord++;
    sim->ord[slot].gen = 0;
    return slot;
}

/* Unlink a working order from its symbol and free its slot. */
static void qb_sim_release(qb_sim_t *sim, int32_t slot) {
    qb_sim_ord_t *o = &sim->ord[slot];
    qb_sim_sym_t *st = &sim->sym[o->sym];
    if (o->prev >= 0) sim->ord[o->prev].next = o->next;
    else st->head = o->next;
    if (o->next >= 0) sim->ord[o->next].prev = o->prev;
    else st->tail = o->prev;
    st->n_open--;
    sim->n_open--;
    o->flags = 0;
    o->next = sim->free_head;
    sim->free_head = slot;
}

/* End a working order: an event of `kind` (REJECTED becomes CANCELED once
 * something filled), then free the slot. */
static void qb_sim_end(qb_sim_t *sim, int32_t slot, qb_sim_event_kind_t kind,
                       qb_pf_reject_t reason, qb_time_t ts) {
    qb_sim_ord_t *o = &sim->ord[slot];
    if (kind == QB_SIM_EV_REJECTED && o->filled > 0) kind = QB_SIM_EV_CANCELED;
    qb_sim_event_t *e = qb_sim_event(sim, kind);
    if (e) {
        qb_sim_event_order(sim, e, slot, ts);
        e->reason = reason;
        e->status = kind == QB_SIM_EV_REJECTED   ? QB_ORDER_STATUS_REJECTED
                    : kind == QB_SIM_EV_EXPIRED ? QB_ORDER_STATUS_EXPIRED
                                                : QB_ORDER_STATUS_CANCELED;
        e->qty = o->qty - o->filled;
    }
    qb_sim_release(sim, slot);
}

/* ---- executing ------------------------------------------------------------------------ */

/* Units the symbol's current bar may still fill; INT64_MAX without a cap. */
static qb_dec_t qb_sim_left(const qb_sim_t *sim, const qb_sim_sym_t *st) {
    if (sim->cfg.volume_cap == 0) return INT64_MAX;
    qb_dec_t allowed;
    if (qb_dec_mul(sim->cfg.volume_cap, st->volume, &allowed, QB_ROUND_FLOOR) != QB_OK)
        return INT64_MAX; /* more than any quantity */
    allowed = allowed / sim->cfg.lot * sim->cfg.lot;
    return allowed > st->used ? allowed - st->used : 0;
}

/* The order at `slot` trades at reference price ref: slippage, ALL_IN
 * sizing, volume cap, fee, the checks, then the booking. */
static void qb_sim_execute(qb_sim_t *sim, int32_t slot, qb_dec_t ref, qb_time_t ts) {
    qb_sim_ord_t *o = &sim->ord[slot];
    qb_sim_sym_t *st = &sim->sym[o->sym];
    const qb_sim_config_t *c = &sim->cfg;
    qb_side_t side = (qb_side_t)o->side;
    qb_dec_t left = qb_sim_left(sim, st);
    if (left <= 0) return; /* the bar's volume is used up: keep working */
    qb_dec_t cap_at = o->type == QB_ORDER_TYPE_LIMIT || o->type == QB_ORDER_TYPE_STOP_LIMIT
                          ? o->limit
                          : 0;
    qb_dec_t price, q, notional, cum_notional, cum_fee, fee, slip;
    if (qb_fill_slip(side, ref, c->slippage_bps, c->tick, cap_at, &price) != QB_OK) {
        qb_sim_end(sim, slot, QB_SIM_EV_REJECTED, QB_PF_REJECT_OVERFLOW, ts);
        return;
    }
    if (o->qty == 0) { /* ALL_IN, first fill */
        if (qb_portfolio_max_qty(sim->pf, o->sym, side, price, &c->commission, c->lot, &q) !=
                QB_OK ||
            q == 0) {
            int no_short = side == QB_SIDE_SELL && !qb_portfolio_config(sim->pf)->allow_short;
            qb_sim_end(sim, slot, QB_SIM_EV_REJECTED,
                       no_short ? QB_PF_REJECT_SHORT_NOT_ALLOWED
                                : QB_PF_REJECT_INSUFFICIENT_BUYING_POWER,
                       ts);
            return;
        }
        o->qty = q;
    }
    qb_dec_t remaining = o->qty - o->filled;
    q = remaining < left ? remaining : left;
    if (o->tif == QB_TIF_FOK && q < remaining) {
        qb_sim_end(sim, slot, QB_SIM_EV_CANCELED, QB_PF_REJECT_NONE, ts);
        return;
    }
    if (!qb_pf_mul(q, price, &notional) ||
        __builtin_add_overflow(o->notional, notional, &cum_notional) ||
        qb_commission_calc(&c->commission, o->filled + q, cum_notional, &cum_fee) != QB_OK ||
        !qb_pf_fit((qb_dec_wide_t)price > ref ? (qb_dec_wide_t)price - ref
                                              : (qb_dec_wide_t)ref - price,
                   &slip) ||
        !qb_pf_mul(q, slip, &slip)) {
        qb_sim_end(sim, slot, QB_SIM_EV_REJECTED, QB_PF_REJECT_OVERFLOW, ts);
        return;
    }
    fee = cum_fee - o->fee;
    /* = qb_portfolio_check_fill, then qb_portfolio_apply_fill */
    qb_pf_reject_t r = qb_pf_fill(sim->pf, o->sym, side, q, price, fee);
    if (r != QB_PF_REJECT_NONE) {
        qb_sim_end(sim, slot, QB_SIM_EV_REJECTED, r, ts);
        return;
    }
    o->filled += q;
    o->notional = cum_notional;
    o->fee = cum_fee;
    st->used += q;
    qb_sim_event_t *e = qb_sim_event(sim, QB_SIM_EV_FILL);
    if (e) {
        qb_sim_event_order(sim, e, slot, ts);
        e->status = o->filled == o->qty ? QB_ORDER_STATUS_FILLED
                                        : QB_ORDER_STATUS_PARTIALLY_FILLED;
        e->qty = q;
        e->price = price;
        e->ref_price = ref;
        e->commission = fee;
        e->slippage = slip;
    }
    if (o->filled == o->qty) qb_sim_release(sim, slot);
}

/* Match one working order against a bar (bar != NULL) or a single price
 * (CLOSE timing at submission), on trading day `day`. */
static void qb_sim_work(qb_sim_t *sim, int32_t slot, const qb_pf_bar_t *bar,
                        qb_dec_t price, int64_t day, qb_time_t ts) {
    qb_sim_ord_t *o = &sim->ord[slot];
    if (o->tif == QB_TIF_DAY) {
        if (!(o->flags & QB_SIM_O_DAY_SET)) {
            o->day = day;
            o->flags |= QB_SIM_O_DAY_SET;
        } else if (o->day != day) {
            qb_sim_end(sim, slot, QB_SIM_EV_EXPIRED, QB_PF_REJECT_NONE, ts);
            return;
        }
    }
    int trig = (o->flags & QB_SIM_O_TRIGGERED) != 0;
    qb_dec_t ref;
    int hit = bar ? qb_fill_match((qb_side_t)o->side, (qb_order_type_t)o->type, o->limit,
                                  o->stop, &trig, bar, &ref)
                  : qb_fill_match_price((qb_side_t)o->side, (qb_order_type_t)o->type,
                                        o->limit, o->stop, &trig, price, &ref);
    if (trig) o->flags |= QB_SIM_O_TRIGGERED;
    uint32_t gen = o->gen;
    if (hit) qb_sim_execute(sim, slot, ref, ts);
    /* IOC / FOK live for one match; the slot may have been freed above */
    o = &sim->ord[slot];
    if (o->gen == gen && (o->flags & QB_SIM_O_LIVE) &&
        (o->tif == QB_TIF_IOC || o->tif == QB_TIF_FOK))
        qb_sim_end(sim, slot, QB_SIM_EV_CANCELED, QB_PF_REJECT_NONE, ts);
}

/* ---- bars ------------------------------------------------------------------------------- */

static qb_err_t qb_sim_match(qb_sim_t *sim, uint32_t sym, const qb_pf_bar_t *bar) {
    qb_err_t err = qb_pf_bar_validate(bar, sim->err, sizeof sim->err);
    if (err != QB_OK) return err;
    err = qb_portfolio_mark(sim->pf, sym, bar->open);
    if (err != QB_OK) {
        snprintf(sim->err, sizeof sim->err, "sim: mark %s at the open: %s",
                 qb_portfolio_symbol_name(sim->pf, sym), qb_err_str(err));
        return err;
    }
    qb_sim_sym_t *st = &sim->sym[sym];
    st->volume = bar->volume;
    st->used = 0;
    int64_t day = qb_sim_day(sim, bar->ts);
    /* Orders submitted from here on are appended at the tail and must wait
     * for the next bar, but nothing is submitted during matching: walk the
     * list as it is, remembering `next` before a node may be freed. */
    for (int32_t slot = st->head; slot >= 0;) {
        int32_t next = sim->ord[slot].next;
        qb_sim_work(sim, slot, bar, 0, day, bar->ts);
        slot = next;
    }
    return QB_OK;
}

qb_err_t qb_sim_on_bar(qb_sim_t *sim, uint32_t sym, const qb_pf_bar_t *bar) {
    if (sym >= sim->nsym) {
        qb_err_t err = qb_sim_reserve_sym(sim, sym);
        if (err != QB_OK) {
            snprintf(sim->err, sizeof sim->err, "sim: unknown symbol id %u", sym);
            return err;
        }
    }
    qb_sim_sym_t *st = &sim->sym[sym];
    if (st->have_bar && bar->ts <= st->ts) {
        snprintf(sim->err, sizeof sim->err,
                 "sim: %s: bar at %lld is not after the previous one (%lld)",
                 qb_portfolio_symbol_name(sim->pf, sym), (long long)bar->ts,
                 (long long)st->ts);
        return QB_ERR_INVALID;
    }
    if (st->n_open) {
        qb_err_t err = qb_sim_match(sim, sym, bar);
        if (err != QB_OK) return err;
        if (sim->lost) return qb_sim_lost(sim, err);
    } else if (bar->close <= 0 || bar->volume < 0) {
        return qb_pf_bar_validate(bar, sim->err, sizeof sim->err);
    } else {
        st->volume = bar->volume;
        st->used = 0;
    }
    st->ts = bar->ts;
    st->close = bar->close;
    st->have_bar = 1;
    qb_err_t err = qb_portfolio_mark(sim->pf, sym, bar->close);
    if (err != QB_OK)
        snprintf(sim->err, sizeof sim->err, "sim: mark %s at the close: %s",
                 qb_portfolio_symbol_name(sim->pf, sym), qb_err_str(err));
    return err;
}

/* ---- submitting ------------------------------------------------------------------------ */

static qb_pf_reject_t qb_sim_validate(qb_sim_t *sim, const qb_sim_order_t *r) {
    if (qb_sim_reserve_sym(sim, r->sym) != QB_OK) return QB_PF_REJECT_UNKNOWN_SYMBOL;
    if (qb_side_sign(r->side) == 0 || r->type < QB_ORDER_TYPE_MARKET ||
        r->type > QB_ORDER_TYPE_STOP_LIMIT || r->tif < QB_TIF_DAY || r->tif > QB_TIF_FOK ||
        (r->flags & ~QB_SIM_ALL_IN) != 0)
        return QB_PF_REJECT_INVALID_ORDER;
    if ((r->flags & QB_SIM_ALL_IN) ? r->qty != 0 : r->qty <= 0)
        return QB_PF_REJECT_INVALID_QTY;
    int need_limit = r->type == QB_ORDER_TYPE_LIMIT || r->type == QB_ORDER_TYPE_STOP_LIMIT;
    int need_stop = r->type == QB_ORDER_TYPE_STOP || r->type == QB_ORDER_TYPE_STOP_LIMIT;
    if ((need_limit ? r->limit_price <= 0 : r->limit_price != 0) ||
        (need_stop ? r->stop_price <= 0 : r->stop_price != 0))
        return QB_PF_REJECT_INVALID_PRICE;
    if (r->flags & QB_SIM_ALL_IN) return QB_PF_REJECT_NONE;
    qb_dec_t pos = qb_portfolio_qty(sim->pf, r->sym);
    if (r->side == QB_SIDE_SELL && !qb_portfolio_config(sim->pf)->allow_short &&
        r->qty > (pos > 0 ? pos : 0))
        return QB_PF_REJECT_SHORT_NOT_ALLOWED;
    /* margin at an estimated price */
    const qb_sim_sym_t *st = &sim->sym[r->sym];
    qb_dec_t est = need_limit ? r->limit_price
                   : need_stop ? r->stop_price
                   : sim->cfg.timing == QB_FILL_CLOSE && st->have_bar
                       ? st->close
                       : qb_portfolio_mark_price(sim->pf, r->sym);
    if (est <= 0) return QB_PF_REJECT_NONE; /* no price yet: checked at the fill */
    qb_dec_t price, notional, fee;
    if (qb_fill_slip(r->side, est, sim->cfg.slippage_bps, sim->cfg.tick,
                     need_limit ? r->limit_price : 0, &price) != QB_OK ||
        !qb_pf_mul(r->qty, price, &notional) ||
        qb_commission_calc(&sim->cfg.commission, r->qty, notional, &fee) != QB_OK)
        return QB_PF_REJECT_OVERFLOW;
    return qb_portfolio_check_fill(sim->pf, r->sym, r->side, r->qty, price, fee);
}

qb_err_t qb_sim_submit(qb_sim_t *sim, const qb_sim_order_t *req, qb_time_t ts,
                       uint64_t *id, char *errstr, size_t errstr_size) {
    *id = 0;
    qb_pf_reject_t why = qb_sim_validate(sim, req);
    if (why != QB_PF_REJECT_NONE) {
        qb_sim_event_t *e = qb_sim_event(sim, QB_SIM_EV_REJECTED);
        if (e) {
            e->status = QB_ORDER_STATUS_REJECTED;
            e->reason = why;
            e->sym = req->sym;
            e->side = req->side;
            e->type = req->type;
            e->tag = req->tag;
            e->ts = ts;
            e->qty = req->qty;
            e->order_qty = req->qty;
            e->cash = qb_portfolio_cash(sim->pf);
            e->position = qb_portfolio_qty(sim->pf, req->sym);
        }
        char q[QB_DEC_STRLEN];
        qb_dec_format(req->qty, q, sizeof q);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order %s %s %s %s: %s: %s",
                          qb_portfolio_symbol_name(sim->pf, req->sym),
                          qb_side_name(req->side), (req->flags & QB_SIM_ALL_IN) ? "ALL_IN" : q,
                          qb_order_type_name(req->type), qb_pf_reject_name(why),
                          qb_pf_reject_str(why));
    }
    int32_t slot = qb_sim_alloc(sim);
    if (slot < 0) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "sim: out of memory");
    qb_sim_ord_t *o = &sim->ord[slot];
    qb_sim_sym_t *st = &sim->sym[req->sym];
    uint32_t gen = o->gen + 1;
    *o = (qb_sim_ord_t){
        .tag = req->tag, .qty = req->qty, .limit = req->limit_price, .stop = req->stop_price,
        .created = ts, .sym = req->sym, .gen = gen ? gen : 1, .prev = st->tail, .next = -1,
        .side = (uint8_t)req->side, .type = (uint8_t)req->type, .tif = (uint8_t)req->tif,
        .flags = QB_SIM_O_LIVE | ((req->flags & QB_SIM_ALL_IN) ? QB_SIM_O_ALL_IN : 0)};
    if (st->tail >= 0) sim->ord[st->tail].next = slot;
    else st->head = slot;
    st->tail = slot;
    st->n_open++;
    sim->n_open++;
    *id = qb_sim_id(sim, slot);
    if (sim->cfg.timing == QB_FILL_CLOSE && st->have_bar)
        qb_sim_work(sim, slot, NULL, st->close, qb_sim_day(sim, st->ts), ts);
    return qb_sim_lost(sim, QB_OK);
}

qb_err_t qb_sim_cancel(qb_sim_t *sim, uint64_t id, qb_time_t ts) {
    if (!qb_sim_find(sim, id)) return QB_ERR_NOT_FOUND;
    qb_sim_end(sim, (int32_t)(uint32_t)id, QB_SIM_EV_CANCELED, QB_PF_REJECT_NONE, ts);
    return qb_sim_lost(sim, QB_OK);
}

size_t qb_sim_cancel_all(qb_sim_t *sim, qb_time_t ts) {
    size_t n = 0;
    for (uint32_t s = 0; s < sim->nsym; s++)
        while (sim->sym[s].head >= 0) {
            qb_sim_end(sim, sim->sym[s].head, QB_SIM_EV_CANCELED, QB_PF_REJECT_NONE, ts);
            n++;
        }
    return n;
}

qb_err_t qb_sim_order_get(const qb_sim_t *sim, uint64_t id, qb_sim_order_info_t *out) {
    const qb_sim_ord_t *o = qb_sim_find(sim, id);
    if (!o) return QB_ERR_NOT_FOUND;
    memset(out, 0, sizeof *out);
    out->id = id;
    out->tag = o->tag;
    out->sym = o->sym;
    out->side = (qb_side_t)o->side;
    out->type = (qb_order_type_t)o->type;
    out->tif = (qb_tif_t)o->tif;
    out->status = o->filled > 0 ? QB_ORDER_STATUS_PARTIALLY_FILLED : QB_ORDER_STATUS_ACCEPTED;
    out->qty = o->qty;
    out->filled_qty = o->filled;
    if (o->filled > 0)
        qb_dec_div(o->notional, o->filled, &out->avg_fill_price, QB_ROUND_HALF_EVEN);
    out->limit_price = o->limit;
    out->stop_price = o->stop;
    out->commission = o->fee;
    out->triggered = (o->flags & QB_SIM_O_TRIGGERED) != 0;
    out->created_ts = o->created;
    return QB_OK;
}

size_t qb_sim_open_orders(const qb_sim_t *sim, uint32_t sym) {
    return sym < sim->nsym ? sim->sym[sym].n_open : 0;
}
size_t qb_sim_open_total(const qb_sim_t *sim) { return sim->n_open; }
qb_time_t qb_sim_last_bar_ts(const qb_sim_t *sim, uint32_t sym) {
    return sym < sim->nsym && sim->sym[sym].have_bar ? sim->sym[sym].ts : 0;
}
