/* qb_risk_check.c — sizing glue, signal targets, order ids and the
 * pre-trade checks of qb_risk_check.h. Values are exact: products are
 * rounded half-even to 1e-8 once, ratio limits are compared without
 * rounding (a x 1e8 > fraction x equity in 128 bits). */
#include "risk/qb_risk_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/qb_uuid.h"
#include "portfolio/qb_sizing.h"

static const struct {
    const char *name, *text;
    int limit;
} qb_risk_reasons[] = {
#define QB__RISK_REASON_DEF(name, num, lim, text) [num] = {#name, text, lim},
    QB_RISK_REASON_MAP(QB__RISK_REASON_DEF)
#undef QB__RISK_REASON_DEF
};
#define QB_RISK_NREASONS (sizeof qb_risk_reasons / sizeof qb_risk_reasons[0])

const char *qb_risk_reason_name(qb_risk_reason_t r) {
    return (size_t)r < QB_RISK_NREASONS && qb_risk_reasons[r].name ? qb_risk_reasons[r].name
                                                                    : "UNKNOWN";
}
const char *qb_risk_reason_str(qb_risk_reason_t r) {
    return (size_t)r < QB_RISK_NREASONS && qb_risk_reasons[r].text ? qb_risk_reasons[r].text
                                                                    : "unknown";
}

static const char *const qb_risk_status_names[] = {NULL, "ACTIVE", "PAUSED", "HALTED"};
const char *qb_risk_status_name(qb_risk_status_t s) {
    return s >= QB_RISK_ACTIVE && s <= QB_RISK_HALTED ? qb_risk_status_names[s] : "UNKNOWN";
}
qb_err_t qb_risk_status_parse(const char *s, qb_risk_status_t *out) {
    for (int i = QB_RISK_ACTIVE; i <= QB_RISK_HALTED; i++)
        if (s && strcasecmp(s, qb_risk_status_names[i]) == 0) {
            *out = (qb_risk_status_t)i;
            return QB_OK;
        }
    return QB_ERR_PARSE;
}

void qb_risk_order_id(const char *cause_id, int leg, char out[QB_UUID_STRLEN]) {
    char name[256];
    int n = snprintf(name, sizeof name, "%.200s|%d", cause_id ? cause_id : "", leg);
    qb_uuid_v5(QB_RISK_ORDER_NS, name, (size_t)n, out);
}

/* ---- exact helpers -------------------------------------------------------- */

static qb_dec_t sat(qb_dec_wide_t v) {
    return v > INT64_MAX ? INT64_MAX : v < -INT64_MAX ? -INT64_MAX : (qb_dec_t)v;
}
/* a x b rounded half-even; saturated instead of overflowing (a value that
 * large fails any limit anyway). */
static qb_dec_t mul(qb_dec_t a, qb_dec_t b) {
    qb_dec_t out;
    if (qb_dec_mul(a, b, &out, QB_ROUND_HALF_EVEN) == QB_OK) return out;
    return ((a < 0) != (b < 0)) ? -INT64_MAX : INT64_MAX;
}
static qb_dec_t add(qb_dec_t a, qb_dec_t b) { return sat((qb_dec_wide_t)a + b); }
static qb_dec_t dabs(qb_dec_t a) { return a < 0 ? -a : a; }
/* a > frac x base, exactly. */
static int over_frac(qb_dec_t a, qb_dec_t frac, qb_dec_t base) {
    return (qb_dec_wide_t)a * QB_DEC_SCALE > (qb_dec_wide_t)frac * base;
}
/* a / b for reports (0 when b <= 0). */
static qb_dec_t ratio(qb_dec_t a, qb_dec_t b) {
    qb_dec_t out;
    if (b <= 0 || qb_dec_div(a, b, &out, QB_ROUND_HALF_EVEN) != QB_OK) return INT64_MAX;
    return out;
}

static void fail(qb_risk_result_t *r, qb_risk_reason_t why, int limit, qb_dec_t observed,
                 qb_dec_t limit_value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void fail(qb_risk_result_t *r, qb_risk_reason_t why, int limit, qb_dec_t observed,
                 qb_dec_t limit_value, const char *fmt, ...) {
    r->reason = why;
    r->limit = limit;
    r->observed = observed;
    r->limit_value = limit_value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

/* "12.5" */
#define F(v, buf) (qb_dec_format((v), (buf), sizeof(buf)), (buf))

/* ---- checks --------------------------------------------------------------- */

static qb_dec_t open_of(const qb_risk_ctx_t *c, uint32_t id) {
    return c->open_qty && id < c->nopen_qty ? c->open_qty[id] : 0;
}

void qb_risk_check(const qb_risk_ctx_t *c, const qb_risk_order_t *o, qb_risk_result_t *r) {
    const qb_risk_limits_t *L = c->limits;
    const qb_portfolio_t *pf = c->pf;
    char a[QB_DEC_STRLEN], b[QB_DEC_STRLEN], d[QB_DEC_STRLEN], x[QB_DEC_STRLEN],
        y[QB_DEC_STRLEN], z[QB_DEC_STRLEN];
    memset(r, 0, sizeof *r);
    const char *sym = qb_portfolio_symbol_name(pf, o->sym);
    int s = qb_side_sign(o->side);

    /* 1, 2: account state */
    if (c->global_halt || c->status == QB_RISK_HALTED) {
        fail(r, QB_RISK_REASON_KILL_SWITCH, 0, 0, 0, "kill switch on (%s): no new orders",
             c->global_halt ? "platform-wide" : "account halted");
        return;
    }
    if (c->status == QB_RISK_PAUSED && (c->paused_until == 0 || c->now < c->paused_until)) {
        fail(r, QB_RISK_REASON_DAILY_LOSS_PAUSE, 0, 0, 0,
             "account paused after its daily loss limit%s", c->paused_until ? " until the next session" : " until RESUME");
        return;
    }
    /* 3: the order itself */
    qb_dec_t before = o->sym < qb_portfolio_nsymbols(pf)
                          ? add(qb_portfolio_qty(pf, o->sym), open_of(c, o->sym)) : 0;
    qb_dec_t after = add(before, s > 0 ? o->qty : -o->qty);
    /* a lot multiple, except an order that closes the position exactly */
    if (s == 0 || o->qty <= 0 || o->lot <= 0 || (o->qty % o->lot != 0 && after != 0) ||
        o->sym >= qb_portfolio_nsymbols(pf)) {
        fail(r, QB_RISK_REASON_INVALID_ORDER, 0, o->qty, o->lot,
             "qty %s must be > 0 and a multiple of the lot %s", F(o->qty, a), F(o->lot, b));
        return;
    }
    int needs_limit = o->type == QB_ORDER_TYPE_LIMIT || o->type == QB_ORDER_TYPE_STOP_LIMIT;
    int needs_stop = o->type == QB_ORDER_TYPE_STOP || o->type == QB_ORDER_TYPE_STOP_LIMIT;
    if ((needs_limit && o->limit_price <= 0) || (needs_stop && o->stop_price <= 0) ||
        o->type < QB_ORDER_TYPE_MARKET || o->type > QB_ORDER_TYPE_STOP_LIMIT) {
        fail(r, QB_RISK_REASON_INVALID_ORDER, 0, 0, 0,
             "%s order needs %s > 0", qb_order_type_name(o->type),
             needs_limit ? "limit_price" : "stop_price");
        return;
    }
    /* 4: a price to value it with */
    qb_dec_t px = o->price;
    if (px <= 0) px = needs_limit ? o->limit_price : c->last_close;
    if (px <= 0) px = needs_stop ? o->stop_price : 0;
    if (px <= 0) {
        fail(r, QB_RISK_REASON_NO_MARKET_PRICE, 0, 0, 0,
             "no bar of %s seen yet and no price on the order", sym);
        return;
    }
    r->price = px;
    /* 5: price sanity against the last bar */
    if (c->last_close > 0) {
        qb_dec_t lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_PRICE_DEVIATION, sym);
        qb_dec_t prices[2] = {needs_limit ? o->limit_price : 0, needs_stop ? o->stop_price : 0};
        for (int i = 0; i < 2; i++) {
            if (prices[i] <= 0) continue;
            qb_dec_t dev = dabs(prices[i] - c->last_close);
            if (over_frac(dev, lim, c->last_close)) {
                fail(r, QB_RISK_REASON_PRICE_SANITY, QB_RISK_LIMIT_MAX_PRICE_DEVIATION,
                     ratio(dev, c->last_close), lim,
                     "%s price %s is %s away from the last close %s (max deviation %s)",
                     i ? "stop" : "limit", F(prices[i], a), F(ratio(dev, c->last_close), d),
                     F(c->last_close, b), F(lim, x));
                return;
            }
        }
    }
    /* 6, 7: rate and open orders */
    qb_dec_t lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_ORDERS_PER_MINUTE, NULL);
    qb_dec_t cnt = ((qb_dec_t)c->orders_last_minute + 1) * QB_DEC_SCALE;
    if (cnt > lim) {
        fail(r, QB_RISK_REASON_RATE_LIMIT, QB_RISK_LIMIT_MAX_ORDERS_PER_MINUTE, cnt, lim,
             "%u orders in the last minute: max_orders_per_minute %s", c->orders_last_minute,
             F(lim, a));
        return;
    }
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_OPEN_ORDERS, NULL);
    cnt = ((qb_dec_t)c->open_orders + 1) * QB_DEC_SCALE;
    if (cnt > lim) {
        fail(r, QB_RISK_REASON_MAX_OPEN_ORDERS, QB_RISK_LIMIT_MAX_OPEN_ORDERS, cnt, lim,
             "%u orders open: max_open_orders %s", c->open_orders, F(lim, a));
        return;
    }
    /* 8: order size */
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_ORDER_QTY, sym);
    if (o->qty > lim) {
        fail(r, QB_RISK_REASON_ORDER_SIZE, QB_RISK_LIMIT_MAX_ORDER_QTY, o->qty, lim,
             "order qty %s exceeds max_order_qty %s", F(o->qty, a), F(lim, b));
        return;
    }
    qb_dec_t notional = mul(o->qty, px);
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_ORDER_NOTIONAL, sym);
    if (notional > lim) {
        fail(r, QB_RISK_REASON_ORDER_SIZE, QB_RISK_LIMIT_MAX_ORDER_NOTIONAL, notional, lim,
             "order notional %s exceeds max_order_notional %s", F(notional, a), F(lim, b));
        return;
    }

    /* Does it add exposure? */
    int flips = (before > 0 && after < 0) || (before < 0 && after > 0);
    if (!(dabs(after) > dabs(before) || flips)) return; /* reduces only: approved */
    qb_dec_t added = flips ? dabs(after) : dabs(after) - dabs(before);
    const qb_portfolio_config_t *pc = qb_portfolio_config(pf);

    /* 9: shorting */
    if (after < 0 && !pc->allow_short) {
        fail(r, QB_RISK_REASON_SHORT_NOT_ALLOWED, 0, after, 0,
             "the sell would leave %s short %s on an account without short selling", sym,
             F(after, a));
        return;
    }
    /* 10: position size */
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_POSITION_QTY, sym);
    if (dabs(after) > lim) {
        fail(r, QB_RISK_REASON_MAX_POSITION, QB_RISK_LIMIT_MAX_POSITION_QTY, dabs(after), lim,
             "position %s %s would exceed max_position_qty %s", sym, F(after, a), F(lim, b));
        return;
    }
    qb_dec_t pos_val = dabs(mul(after, px));
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_POSITION_NOTIONAL, sym);
    if (pos_val > lim) {
        fail(r, QB_RISK_REASON_MAX_POSITION, QB_RISK_LIMIT_MAX_POSITION_NOTIONAL, pos_val, lim,
             "position value %s of %s would exceed max_position_notional %s", F(pos_val, a),
             sym, F(lim, b));
        return;
    }
    /* Projected values of every symbol, equity. */
    size_t n = qb_portfolio_nsymbols(pf);
    qb_dec_t equity = qb_portfolio_equity(pf);
    qb_dec_t gross = 0, v_s = mul(after, px);
    uint32_t npos = 0;
    for (uint32_t i = 0; i < n; i++) {
        qb_dec_t q = i == o->sym ? after : add(qb_portfolio_qty(pf, i), open_of(c, i));
        if (q == 0) continue;
        npos++;
        qb_dec_t mk = i == o->sym ? px : qb_portfolio_mark_price(pf, i);
        gross = add(gross, dabs(mul(q, mk)));
    }
    /* 11: concurrent positions */
    if (before == 0) {
        lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_POSITIONS, NULL);
        cnt = (qb_dec_t)npos * QB_DEC_SCALE;
        if (cnt > lim) {
            fail(r, QB_RISK_REASON_MAX_POSITIONS, QB_RISK_LIMIT_MAX_POSITIONS, cnt, lim,
                 "opening %s makes %u positions: max_positions %s", sym, npos, F(lim, a));
            return;
        }
    }
    if (equity <= 0) {
        fail(r, QB_RISK_REASON_INSUFFICIENT_FUNDS, 0, equity, 0,
             "equity %s <= 0: nothing that adds exposure", F(equity, a));
        return;
    }
    /* 12: risk per trade */
    qb_dec_t dist = o->stop_distance > 0 ? o->stop_distance : px;
    qb_dec_t risk = mul(added, dist);
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_RISK_PER_TRADE, NULL);
    if (over_frac(risk, lim, equity)) {
        fail(r, QB_RISK_REASON_MAX_RISK_PER_TRADE, QB_RISK_LIMIT_MAX_RISK_PER_TRADE,
             ratio(risk, equity), lim,
             "risk %s (%s x stop distance %s%s) is %s of equity %s: max_risk_per_trade %s",
             F(risk, a), F(added, b), F(dist, d), o->stop_distance > 0 ? "" : ", no stop: the price",
             F(ratio(risk, equity), x), F(equity, y), F(lim, z));
        return;
    }
    /* 13, 14: capital deployed, gross exposure, leverage */
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED, NULL);
    if (over_frac(gross, lim, equity)) {
        fail(r, QB_RISK_REASON_CAPITAL_DEPLOYED, QB_RISK_LIMIT_MAX_CAPITAL_DEPLOYED,
             ratio(gross, equity), lim,
             "gross position value %s would be %s of equity %s: max_capital_deployed %s",
             F(gross, a), F(ratio(gross, equity), b), F(equity, d), F(lim, x));
        return;
    }
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_GROSS_EXPOSURE, NULL);
    if (gross > lim) {
        fail(r, QB_RISK_REASON_GROSS_EXPOSURE, QB_RISK_LIMIT_MAX_GROSS_EXPOSURE, gross, lim,
             "gross exposure %s would exceed max_gross_exposure %s", F(gross, a), F(lim, b));
        return;
    }
    lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_LEVERAGE, NULL);
    if (over_frac(gross, lim, equity)) {
        fail(r, QB_RISK_REASON_GROSS_EXPOSURE, QB_RISK_LIMIT_MAX_LEVERAGE, ratio(gross, equity),
             lim, "leverage %s would exceed max_leverage %s", F(ratio(gross, equity), a),
             F(lim, b));
        return;
    }
    /* 15, 16: sector and asset class */
    for (int pass = 0; pass < 2; pass++) {
        const char *(*get)(void *, uint32_t) = pass ? c->asset_class : c->sector;
        const char *key = get ? get(c->opaque, o->sym) : NULL;
        if (!key || !*key) continue;
        int kind = pass ? QB_RISK_LIMIT_MAX_ASSET_CLASS_EXPOSURE : QB_RISK_LIMIT_MAX_SECTOR_EXPOSURE;
        qb_dec_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            const char *k = get(c->opaque, i);
            if (!k || strcasecmp(k, key) != 0) continue;
            qb_dec_t q = i == o->sym ? after : add(qb_portfolio_qty(pf, i), open_of(c, i));
            qb_dec_t mk = i == o->sym ? px : qb_portfolio_mark_price(pf, i);
            sum = add(sum, dabs(mul(q, mk)));
        }
        lim = qb_risk_limit(L, kind, key);
        if (over_frac(sum, lim, equity)) {
            fail(r, pass ? QB_RISK_REASON_ASSET_CLASS_EXPOSURE : QB_RISK_REASON_SECTOR_EXPOSURE,
                 kind, ratio(sum, equity), lim, "%s '%s' exposure %s would be %s of equity: %s %s",
                 pass ? "asset class" : "sector", key, F(sum, a), F(ratio(sum, equity), b),
                 qb_risk_limit_name(kind), F(lim, d));
            return;
        }
    }
    /* 17: correlation-weighted exposure */
    {
        double ex = fabs(qb_dec_to_double(v_s));
        double sg = v_s > 0 ? 1.0 : -1.0;
        for (uint32_t i = 0; i < n; i++) {
            if (i == o->sym) continue;
            qb_dec_t q = add(qb_portfolio_qty(pf, i), open_of(c, i));
            if (q == 0) continue;
            double rho = c->corr ? c->corr(c->opaque, o->sym, i) : NAN;
            if (!isfinite(rho)) rho = 1.0; /* unknown: assume it moves with the symbol */
            double vi = qb_dec_to_double(mul(q, qb_portfolio_mark_price(pf, i)));
            double add_i = rho * sg * vi;
            if (add_i > 0) ex += add_i;
        }
        qb_dec_t exd;
        if (qb_dec_from_double(ex, &exd, QB_ROUND_HALF_EVEN) != QB_OK) exd = INT64_MAX;
        lim = qb_risk_limit(L, QB_RISK_LIMIT_MAX_CORRELATED_EXPOSURE, NULL);
        if (over_frac(exd, lim, equity)) {
            fail(r, QB_RISK_REASON_CORRELATED_EXPOSURE, QB_RISK_LIMIT_MAX_CORRELATED_EXPOSURE,
                 ratio(exd, equity), lim,
                 "correlation-weighted exposure of %s %s would be %s of equity: "
                 "max_correlated_exposure %s",
                 sym, F(exd, a), F(ratio(exd, equity), b), F(lim, d));
            return;
        }
    }
    /* 18: buying power */
    qb_dec_t margin = after > 0 ? pc->margin_long : pc->margin_short;
    qb_dec_t cost;
    if (qb_sizing_cost(added, px, margin, c->comm, &cost) != QB_OK) cost = INT64_MAX;
    qb_dec_t avail = qb_portfolio_excess(pf) - c->open_reserved;
    if (cost > avail) {
        fail(r, QB_RISK_REASON_INSUFFICIENT_FUNDS, 0, cost, avail,
             "needs %s (margin %s x notional + fee) but %s is available (excess equity less "
             "%s held by open orders)",
             F(cost, a), F(margin, b), F(avail, d), F(c->open_reserved, x));
        return;
    }
}

/* ---- sizing --------------------------------------------------------------- */

qb_risk_reason_t qb_risk_size(const qb_risk_limits_t *l, const qb_risk_size_in_t *in,
                              qb_dec_t *qty, qb_dec_t *dist, char *text, size_t text_size) {
    *qty = 0;
    *dist = 0;
    if (text_size) text[0] = '\0';
    if (in->price <= 0 || in->lot <= 0) {
        snprintf(text, text_size, "no reference price");
        return QB_RISK_REASON_NO_MARKET_PRICE;
    }
    qb_dec_t eq = in->equity > 0 ? in->equity : 0;
    int rule = (int)(qb_risk_limit(l, QB_RISK_LIMIT_SIZING_RULE, NULL) / QB_DEC_SCALE);
    qb_dec_t frac = qb_risk_limit(l, QB_RISK_LIMIT_SIZING_FRACTION, NULL);
    qb_err_t e = QB_OK;
    if (in->has_weight) {
        qb_dec_t w;
        double wv = fabs(in->weight) > 1.0 ? 1.0 : fabs(in->weight);
        if (qb_dec_from_double(wv, &w, QB_ROUND_DOWN) != QB_OK) w = 0;
        e = qb_sizing_percent_equity(eq, w, in->price, in->lot, qty);
        snprintf(text, text_size, "target_weight %.6g of equity", wv);
    } else if (rule == QB_RISK_SIZING_FIXED_QTY) {
        e = qb_sizing_fixed_qty(qb_risk_limit(l, QB_RISK_LIMIT_SIZING_FIXED_QTY, NULL), in->lot,
                                qty);
        snprintf(text, text_size, "fixed_qty");
    } else if (rule == QB_RISK_SIZING_PERCENT_EQUITY) {
        e = qb_sizing_percent_equity(eq, frac, in->price, in->lot, qty);
        snprintf(text, text_size, "percent_equity");
    } else if (rule == QB_RISK_SIZING_VOL_TARGET) {
        if (!(in->ann_vol > 0) || !isfinite(in->ann_vol)) {
            snprintf(text, text_size, "volatility target: the symbol's volatility is unknown");
            return QB_RISK_REASON_NO_SIZING_DATA;
        }
        double w = qb_dec_to_double(qb_risk_limit(l, QB_RISK_LIMIT_SIZING_VOL_TARGET, NULL)) /
                   in->ann_vol;
        if (w > 1.0) w = 1.0;
        qb_dec_t wd;
        if (qb_dec_from_double(w, &wd, QB_ROUND_DOWN) != QB_OK) wd = 0;
        e = qb_sizing_percent_equity(eq, wd, in->price, in->lot, qty);
        snprintf(text, text_size, "volatility target: weight %.6g (vol %.4g)", w, in->ann_vol);
    } else {
        qb_dec_t d = in->stop_distance;
        const char *src = "the signal's stop";
        if (d <= 0 && in->atr > 0) {
            d = mul(qb_risk_limit(l, QB_RISK_LIMIT_SIZING_ATR_MULTIPLE, NULL), in->atr);
            src = "ATR multiple";
        }
        if (d <= 0) {
            snprintf(text, text_size, "fixed_fractional: no stop distance and no ATR");
            return QB_RISK_REASON_NO_SIZING_DATA;
        }
        *dist = d;
        /* entry - stop = d, exactly as the rule wants it */
        qb_dec_t stop = in->price > d ? in->price - d : in->price + d;
        e = qb_sizing_fixed_fractional(eq, frac, in->price, stop, in->lot, qty);
        char b[QB_DEC_STRLEN];
        snprintf(text, text_size, "fixed_fractional over %s %s", src, F(d, b));
    }
    if (e != QB_OK) {
        snprintf(text, text_size, "sizing failed: %s", qb_err_str(e));
        return QB_RISK_REASON_INVALID_ORDER;
    }
    return QB_RISK_REASON_NONE;
}

qb_risk_reason_t qb_risk_signal_order(int direction, qb_dec_t current, qb_dec_t size,
                                      qb_dec_t lot, int allow_short, qb_side_t *side,
                                      qb_dec_t *qty) {
    qb_dec_t target;
    *qty = 0;
    switch (direction) {
    case QB_RISK_DIR_LONG: target = size; break;
    case QB_RISK_DIR_SHORT:
        if (!allow_short && current <= 0) return QB_RISK_REASON_SHORT_NOT_ALLOWED;
        target = allow_short ? -size : 0;
        break;
    case QB_RISK_DIR_FLAT: target = 0; break;
    default: return QB_RISK_REASON_INVALID_ORDER;
    }
    qb_dec_wide_t diff = (qb_dec_wide_t)target - current;
    if (target != 0 && lot > 0) diff = diff / lot * lot; /* toward zero */
    if (diff == 0) return QB_RISK_REASON_NOTHING_TO_TRADE;
    *side = diff > 0 ? QB_SIDE_BUY : QB_SIDE_SELL;
    *qty = sat(diff > 0 ? diff : -diff);
    return QB_RISK_REASON_NONE;
}
