/* qb_bt_metrics.c — the online metrics accumulator, bars per year, metric
 * lookup by name and the metrics JSON (definitions in qb_bt_metrics.h).
 * Also the small text builder the library's JSON writers share. */
#include "backtest/qb_bt_metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backtest/qb_bt_int.h"
#include "core/qb_types.h"

/* ---- text builder ------------------------------------------------------------------------ */

void qb_bt_sb_printf(qb_bt_sb_t *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
    int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) sb->len += (size_t)n;
}

void qb_bt_sb_dec(qb_bt_sb_t *sb, qb_dec_t v) {
    char t[QB_DEC_STRLEN];
    qb_dec_format(v, t, sizeof t);
    qb_bt_sb_printf(sb, "%s", t);
}

void qb_bt_sb_double(qb_bt_sb_t *sb, double v) {
    if (!isfinite(v))
        qb_bt_sb_printf(sb, "null");
    else
        qb_bt_sb_printf(sb, "%.10g", v);
}

void qb_bt_sb_time(qb_bt_sb_t *sb, qb_time_t t) {
    if (t == 0) {
        qb_bt_sb_printf(sb, "null");
        return;
    }
    char b[QB_TIME_STRLEN];
    qb_time_format(t, b, sizeof b);
    qb_bt_sb_printf(sb, "\"%s\"", b);
}

void qb_bt_sb_str(qb_bt_sb_t *sb, const char *s) {
    qb_bt_sb_printf(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            qb_bt_sb_printf(sb, "\\%c", *p);
        else if (*p < 0x20)
            qb_bt_sb_printf(sb, "\\u%04x", *p);
        else
            qb_bt_sb_printf(sb, "%c", *p);
    }
    qb_bt_sb_printf(sb, "\"");
}

/* ---- accumulator ------------------------------------------------------------------------- */

void qb_bt_acc_init(qb_bt_acc_t *a, qb_dec_t e0, double bars_per_year) {
    memset(a, 0, sizeof *a);
    a->e0 = a->prev = a->peak = a->last = e0;
    a->bpy = bars_per_year;
}

void qb_bt_acc_step(qb_bt_acc_t *a, qb_time_t ts, qb_dec_t equity, qb_dec_t gross,
                    int has_position) {
    double r;
    if (a->prev > 0)
        r = (double)(equity - a->prev) / (double)a->prev;
    else if (a->prev < 0)
        r = (double)(equity - a->prev) / -(double)a->prev;
    else
        r = 0.0;
    a->n++;
    double delta = r - a->mean;
    a->mean += delta / (double)a->n;
    a->m2 += delta * (r - a->mean);
    if (r < 0) a->down2 += r * r;
    if (a->n == 1) a->first_ts = ts;
    a->last_ts = ts;
    a->prev = a->last = equity;
    a->eq_sum += (double)equity;
    if (equity > 0) a->gross_sum += (double)gross / (double)equity;
    if (has_position) a->n_pos++;
    if (equity >= a->peak) {
        a->peak = equity;
        a->peak_ts = ts;
        a->under = 0;
    } else {
        qb_dec_t ddm = a->peak - equity;
        if (ddm > a->max_dd_money) a->max_dd_money = ddm;
        double ddp = a->peak > 0 ? (double)ddm / (double)a->peak : 0.0;
        if (ddp > a->max_dd_pct) {
            a->max_dd_pct = ddp;
            a->dd_peak_ts = a->peak_ts;
            a->dd_trough_ts = ts;
        }
        if (++a->under > a->max_under) a->max_under = a->under;
    }
}

void qb_bt_acc_notional(qb_bt_acc_t *a, qb_dec_t notional) {
    a->notional += notional < 0 ? -(qb_dec_wide_t)notional : (qb_dec_wide_t)notional;
}

void qb_bt_acc_trade(qb_bt_acc_t *a, qb_dec_t net_pnl, int64_t bars, int open) {
    if (open) {
        a->open++;
        a->open_pnl += net_pnl;
        return;
    }
    a->closed++;
    a->bars_sum += bars;
    if (net_pnl > 0) {
        a->won++;
        a->gp += net_pnl;
        if (net_pnl > a->best) a->best = net_pnl;
    } else {
        a->lost++;
        a->gl += net_pnl;
        if (net_pnl < a->worst) a->worst = net_pnl;
    }
}

static qb_dec_t qb_bt_clamp_dec(qb_dec_wide_t w) {
    if (w > (qb_dec_wide_t)QB_DEC_MAX) return QB_DEC_MAX;
    if (w < (qb_dec_wide_t)QB_DEC_MIN) return QB_DEC_MIN;
    return (qb_dec_t)w;
}

void qb_bt_acc_finish(const qb_bt_acc_t *a, qb_bt_metrics_t *m) {
    memset(m, 0, sizeof *m);
    double n = (double)a->n;
    m->bars = a->n;
    m->bars_per_year = a->bpy;
    m->years = a->bpy > 0 ? n / a->bpy : 0.0;
    m->first_ts = a->first_ts;
    m->last_ts = a->last_ts;
    m->initial_equity = a->e0;
    m->final_equity = a->last;
    m->net_profit = a->last - a->e0;
    m->total_return = a->e0 != 0 ? (double)(a->last - a->e0) / (double)a->e0 : 0.0;
    if (a->n > 0 && m->years > 0) {
        if (a->last <= 0 || a->e0 <= 0)
            m->cagr = -1.0;
        else
            m->cagr = pow((double)a->last / (double)a->e0, 1.0 / m->years) - 1.0;
    }
    double sq = a->bpy > 0 ? sqrt(a->bpy) : 0.0;
    if (a->n > 0) {
        m->mean_return = a->mean;
        m->stdev_return = sqrt(a->m2 / n);
        m->volatility = m->stdev_return * sq;
        m->sharpe = m->stdev_return > 0 ? a->mean / m->stdev_return * sq : 0.0;
        double dd = sqrt(a->down2 / n);
        m->sortino = dd > 0 ? a->mean / dd * sq : 0.0;
        m->exposure = (double)a->n_pos / n;
        m->avg_gross_exposure = a->gross_sum / n;
        double avg_eq = a->eq_sum / n;
        m->turnover = avg_eq > 0 ? (double)a->notional / avg_eq : 0.0;
        m->turnover_annual = m->years > 0 ? m->turnover / m->years : 0.0;
    }
    m->max_dd_pct = a->max_dd_pct;
    m->max_dd_money = a->max_dd_money;
    m->max_dd_peak_ts = a->dd_peak_ts;
    m->max_dd_trough_ts = a->dd_trough_ts;
    m->max_dd_bars = a->max_under;
    m->calmar = m->max_dd_pct > 0 ? m->cagr / m->max_dd_pct : 0.0;
    m->traded_notional = qb_bt_clamp_dec(a->notional);

    m->trades_closed = a->closed;
    m->trades_open = a->open;
    m->won = a->won;
    m->lost = a->lost;
    m->win_rate = a->closed ? (double)a->won / (double)a->closed : 0.0;
    m->gross_profit = qb_bt_clamp_dec(a->gp);
    m->gross_loss = qb_bt_clamp_dec(a->gl);
    if (a->gl < 0)
        m->profit_factor = (double)a->gp / -(double)a->gl;
    else
        m->profit_factor = a->gp > 0 ? INFINITY : 0.0;
    m->avg_win = a->won ? (double)a->gp / (double)a->won / (double)QB_DEC_SCALE : 0.0;
    m->avg_loss = a->lost ? (double)a->gl / (double)a->lost / (double)QB_DEC_SCALE : 0.0;
    m->expectancy =
        a->closed ? (double)(a->gp + a->gl) / (double)a->closed / (double)QB_DEC_SCALE : 0.0;
    m->largest_win = a->best;
    m->largest_loss = a->worst;
    m->avg_trade_bars = a->closed ? (double)a->bars_sum / (double)a->closed : 0.0;
    m->open_pnl = qb_bt_clamp_dec(a->open_pnl);
}

/* ---- bars per year ----------------------------------------------------------------------- */

qb_err_t qb_bt_bars_per_year(const char *timeframe, int twenty_four_seven, double *out) {
    int64_t ns;
    if (!timeframe || qb_timeframe_parse(timeframe, &ns) != QB_OK) return QB_ERR_PARSE;
    if (ns == 7 * QB_NS_PER_DAY) {
        *out = twenty_four_seven ? 365.0 / 7.0 : 52.0;
        return QB_OK;
    }
    if (ns == QB_NS_PER_DAY) {
        *out = twenty_four_seven ? 365.0 : 252.0;
        return QB_OK;
    }
    double minutes = (double)ns / (double)QB_NS_PER_MIN;
    if (twenty_four_seven) {
        *out = 525600.0 / minutes;
        return QB_OK;
    }
    if (ns == QB_NS_PER_HOUR)
        *out = 252.0 * 7.0; /* 09:30 ... 15:30 */
    else if (ns == 4 * QB_NS_PER_HOUR)
        *out = 252.0 * 2.0;
    else
        *out = 98280.0 / minutes;
    return QB_OK;
}

/* ---- by name ----------------------------------------------------------------------------- */

typedef enum { QB_BT_MT_DBL, QB_BT_MT_DEC, QB_BT_MT_I64 } qb_bt_mtype_t;

typedef struct qb_bt_mdef_s {
    const char *name;
    qb_bt_mtype_t type;
    size_t off;
    int higher; /* 1 higher is better, 0 lower */
} qb_bt_mdef_t;

#define QB_BT_M(name, type, higher) {#name, type, offsetof(qb_bt_metrics_t, name), higher}

static const qb_bt_mdef_t qb_bt_mdefs[] = {
    QB_BT_M(total_return, QB_BT_MT_DBL, 1),
    QB_BT_M(cagr, QB_BT_MT_DBL, 1),
    QB_BT_M(sharpe, QB_BT_MT_DBL, 1),
    QB_BT_M(sortino, QB_BT_MT_DBL, 1),
    QB_BT_M(calmar, QB_BT_MT_DBL, 1),
    QB_BT_M(volatility, QB_BT_MT_DBL, 0),
    QB_BT_M(max_dd_pct, QB_BT_MT_DBL, 0),
    QB_BT_M(max_dd_money, QB_BT_MT_DEC, 0),
    QB_BT_M(max_dd_bars, QB_BT_MT_I64, 0),
    QB_BT_M(exposure, QB_BT_MT_DBL, 1),
    QB_BT_M(avg_gross_exposure, QB_BT_MT_DBL, 1),
    QB_BT_M(turnover, QB_BT_MT_DBL, 0),
    QB_BT_M(turnover_annual, QB_BT_MT_DBL, 0),
    QB_BT_M(final_equity, QB_BT_MT_DEC, 1),
    QB_BT_M(net_profit, QB_BT_MT_DEC, 1),
    QB_BT_M(trades_closed, QB_BT_MT_I64, 1),
    QB_BT_M(trades_open, QB_BT_MT_I64, 1),
    QB_BT_M(won, QB_BT_MT_I64, 1),
    QB_BT_M(lost, QB_BT_MT_I64, 0),
    QB_BT_M(win_rate, QB_BT_MT_DBL, 1),
    QB_BT_M(profit_factor, QB_BT_MT_DBL, 1),
    QB_BT_M(avg_win, QB_BT_MT_DBL, 1),
    QB_BT_M(avg_loss, QB_BT_MT_DBL, 1),
    QB_BT_M(expectancy, QB_BT_MT_DBL, 1),
    QB_BT_M(gross_profit, QB_BT_MT_DEC, 1),
    QB_BT_M(gross_loss, QB_BT_MT_DEC, 1),
    QB_BT_M(largest_win, QB_BT_MT_DEC, 1),
    QB_BT_M(largest_loss, QB_BT_MT_DEC, 1),
    QB_BT_M(avg_trade_bars, QB_BT_MT_DBL, 1),
    QB_BT_M(mean_return, QB_BT_MT_DBL, 1),
    QB_BT_M(stdev_return, QB_BT_MT_DBL, 0),
    QB_BT_M(bars, QB_BT_MT_I64, 1),
    QB_BT_M(years, QB_BT_MT_DBL, 1),
};
#define QB_BT_NMDEFS (sizeof qb_bt_mdefs / sizeof qb_bt_mdefs[0])

static const char *const qb_bt_mnames[] = {
    "total_return", "cagr", "sharpe", "sortino", "calmar", "volatility", "max_dd_pct",
    "max_dd_money", "max_dd_bars", "exposure", "avg_gross_exposure", "turnover",
    "turnover_annual", "final_equity", "net_profit", "trades_closed", "trades_open", "won",
    "lost", "win_rate", "profit_factor", "avg_win", "avg_loss", "expectancy", "gross_profit",
    "gross_loss", "largest_win", "largest_loss", "avg_trade_bars", "mean_return",
    "stdev_return", "bars", "years", NULL};

const char *const *qb_bt_metric_names(void) { return qb_bt_mnames; }

static const qb_bt_mdef_t *qb_bt_mdef_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < QB_BT_NMDEFS; i++)
        if (strcmp(qb_bt_mdefs[i].name, name) == 0) return &qb_bt_mdefs[i];
    return NULL;
}

static double qb_bt_mdef_get(const qb_bt_mdef_t *d, const qb_bt_metrics_t *m) {
    const char *p = (const char *)m + d->off;
    switch (d->type) {
    case QB_BT_MT_DBL: {
        double v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case QB_BT_MT_DEC: {
        qb_dec_t v;
        memcpy(&v, p, sizeof v);
        return (double)v / (double)QB_DEC_SCALE;
    }
    default: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return (double)v;
    }
    }
}

qb_err_t qb_bt_metric_value(const qb_bt_metrics_t *m, const char *name, double *out) {
    const qb_bt_mdef_t *d = qb_bt_mdef_find(name);
    if (!d) return QB_ERR_NOT_FOUND;
    *out = qb_bt_mdef_get(d, m);
    return QB_OK;
}

int qb_bt_metric_higher_is_better(const char *name) {
    const qb_bt_mdef_t *d = qb_bt_mdef_find(name);
    return d ? d->higher : -1;
}

size_t qb_bt_metrics_json(const qb_bt_metrics_t *m, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_bt_sb_printf(&sb, "{");
    for (size_t i = 0; i < QB_BT_NMDEFS; i++) {
        const qb_bt_mdef_t *d = &qb_bt_mdefs[i];
        qb_bt_sb_printf(&sb, "%s\"%s\":", i ? "," : "", d->name);
        const char *p = (const char *)m + d->off;
        if (d->type == QB_BT_MT_DEC) {
            qb_dec_t v;
            memcpy(&v, p, sizeof v);
            qb_bt_sb_dec(&sb, v);
        } else if (d->type == QB_BT_MT_I64) {
            int64_t v;
            memcpy(&v, p, sizeof v);
            qb_bt_sb_printf(&sb, "%lld", (long long)v);
        } else {
            qb_bt_sb_double(&sb, qb_bt_mdef_get(d, m));
        }
    }
    qb_bt_sb_printf(&sb, ",\"initial_equity\":");
    qb_bt_sb_dec(&sb, m->initial_equity);
    qb_bt_sb_printf(&sb, ",\"traded_notional\":");
    qb_bt_sb_dec(&sb, m->traded_notional);
    qb_bt_sb_printf(&sb, ",\"open_pnl\":");
    qb_bt_sb_dec(&sb, m->open_pnl);
    qb_bt_sb_printf(&sb, ",\"bars_per_year\":");
    qb_bt_sb_double(&sb, m->bars_per_year);
    qb_bt_sb_printf(&sb, ",\"first_ts\":");
    qb_bt_sb_time(&sb, m->first_ts);
    qb_bt_sb_printf(&sb, ",\"last_ts\":");
    qb_bt_sb_time(&sb, m->last_ts);
    qb_bt_sb_printf(&sb, ",\"max_dd_peak_ts\":");
    qb_bt_sb_time(&sb, m->max_dd_peak_ts);
    qb_bt_sb_printf(&sb, ",\"max_dd_trough_ts\":");
    qb_bt_sb_time(&sb, m->max_dd_trough_ts);
    qb_bt_sb_printf(&sb, "}");
    return sb.len;
}
