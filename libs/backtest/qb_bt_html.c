/* qb_bt_html.c — the self-contained HTML report of a backtest result: one
 * page, inline CSS and SVG, no script and no external resource, so it can
 * be mailed or archived as one file. Sections: plain-English summary, the
 * metrics beside the benchmark's, equity vs benchmark, drawdown, monthly
 * returns, trades (the first QB_BT_HTML_TRADES). Charts are downsampled to
 * at most QB_BT_HTML_POINTS points (min and max of each bucket kept for the
 * drawdown so the worst point is never lost). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backtest/qb_backtest.h"

#define QB_BT_HTML_TRADES 2000
#define QB_BT_HTML_POINTS 1200
#define QB_BT_W 900.0
#define QB_BT_H 260.0
#define QB_BT_PAD 50.0

static void qb_bt_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static double qb_bt_units_d(qb_dec_t v) { return (double)v / (double)QB_DEC_SCALE; }

/* 1234567.891 -> "1,234,567.89" */
static const char *qb_bt_money(double v, char *buf, size_t cap) {
    char raw[64];
    snprintf(raw, sizeof raw, "%.2f", fabs(v));
    char *dot = strchr(raw, '.');
    size_t ilen = dot ? (size_t)(dot - raw) : strlen(raw);
    size_t o = 0;
    if (v < 0 && o + 1 < cap) buf[o++] = '-';
    for (size_t i = 0; i < ilen && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        size_t left = ilen - i - 1;
        if (left && left % 3 == 0) buf[o++] = ',';
    }
    for (const char *p = dot; p && *p && o + 1 < cap; p++) buf[o++] = *p;
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

static void qb_bt_date(qb_time_t t, char *buf, size_t cap) {
    qb_civil_t c;
    qb_time_to_civil(t, &c);
    if (c.hour || c.min || c.sec)
        snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d", c.year, c.month, c.day, c.hour, c.min);
    else
        snprintf(buf, cap, "%04d-%02d-%02d", c.year, c.month, c.day);
}

static void qb_bt_pct(FILE *f, double v) {
    if (!isfinite(v))
        fputs("&ndash;", f);
    else
        fprintf(f, "%.2f%%", v * 100);
}

static void qb_bt_num(FILE *f, double v) {
    if (isinf(v))
        fputs("&infin;", f);
    else if (!isfinite(v))
        fputs("&ndash;", f);
    else
        fprintf(f, "%.2f", v);
}

/* ---- charts ------------------------------------------------------------------------------ */

typedef struct qb_bt_series2_s {
    const double *y;
    const char *color;
    const char *name;
} qb_bt_series2_t;

/* A line chart (area = 1: a filled drawdown area under 0). Equity that
 * spans more than 10x is drawn on a log scale (said in the title). */
static void qb_bt_chart(FILE *f, const char *title, const qb_time_t *ts, size_t n,
                        const qb_bt_series2_t *ser, int nser, int area, int pct_axis) {
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < nser; s++)
        for (size_t i = 0; i < n; i++) {
            if (ser[s].y[i] < lo) lo = ser[s].y[i];
            if (ser[s].y[i] > hi) hi = ser[s].y[i];
        }
    int logy = !area && lo > 0 && hi / lo > 10;
    if (logy) {
        lo = log(lo);
        hi = log(hi);
    }
    if (area && hi < 0) hi = 0;
    if (!(hi > lo)) {
        hi = lo + 1;
        lo = lo - 1;
    }
    double pw = QB_BT_W - 2 * QB_BT_PAD, ph = QB_BT_H - 2 * 20.0;
    fprintf(f, "<h2>%s%s</h2>\n<svg viewBox=\"0 0 %.0f %.0f\" "
               "class=\"chart\" role=\"img\">\n",
            title, logy ? " (log scale)" : "", QB_BT_W, QB_BT_H);
    fprintf(f, "<rect x=\"%.0f\" y=\"20\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>\n",
            QB_BT_PAD, pw, ph);
    for (int g = 0; g <= 4; g++) { /* horizontal grid and labels */
        double v = lo + (hi - lo) * g / 4.0, y = 20 + ph - ph * g / 4.0;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>",
                QB_BT_PAD, QB_BT_PAD + pw, y, y);
        if (pct_axis)
            fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%.1f%%</text>\n",
                    QB_BT_PAD - 4, y + 4, v * 100);
        else
            fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%.4g</text>\n",
                    QB_BT_PAD - 4, y + 4, logy ? exp(v) : v);
    }
    if (n) {
        char a[32], b[32];
        qb_bt_date(ts[0], a, sizeof a);
        qb_bt_date(ts[n - 1], b, sizeof b);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"lbl\">%s</text>", QB_BT_PAD, QB_BT_H - 2, a);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"lbl\" text-anchor=\"end\">%s</text>\n",
                QB_BT_PAD + pw, QB_BT_H - 2, b);
    }
    size_t step = n > QB_BT_HTML_POINTS ? (n + QB_BT_HTML_POINTS - 1) / QB_BT_HTML_POINTS : 1;
    for (int s = 0; s < nser; s++) {
        double base = 20 + ph * (hi / (hi - lo)); /* y of 0 for the area */
        if (area)
            fprintf(f, "<polygon class=\"area\" points=\"%.1f,%.1f ", QB_BT_PAD, base);
        else
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" points=\"",
                    ser[s].color);
        for (size_t i = 0; i < n; i += step) {
            /* the bucket's extreme (lowest for drawdowns, last for lines;
             * a line starts at the first point) */
            size_t end = i + step < n ? i + step : n, k = i == 0 ? 0 : end - 1;
            if (area)
                for (size_t j = i; j < end; j++)
                    if (ser[s].y[j] < ser[s].y[k]) k = j;
            double x = QB_BT_PAD + (n > 1 ? pw * (double)k / (double)(n - 1) : 0);
            double v = logy ? log(ser[s].y[k]) : ser[s].y[k];
            double y = 20 + ph - ph * (v - lo) / (hi - lo);
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        if (area) fprintf(f, "%.1f,%.1f", QB_BT_PAD + pw, base);
        fputs("\"/>\n", f);
    }
    for (int s = 0; s < nser && nser > 1; s++)
        fprintf(f, "<text x=\"%.0f\" y=\"14\" class=\"lbl\" fill=\"%s\">&#9632; %s</text>\n",
                QB_BT_PAD + 160.0 * s, ser[s].color, ser[s].name);
    fputs("</svg>\n", f);
}

/* ---- sections ----------------------------------------------------------------------------- */

static void qb_bt_row(FILE *f, const char *name, const qb_bt_metrics_t *m,
                      const qb_bt_metrics_t *b, const char *key, int pct) {
    double v = 0, w = 0;
    qb_bt_metric_value(m, key, &v);
    fprintf(f, "<tr><td>%s</td><td>", name);
    if (pct) qb_bt_pct(f, v); else qb_bt_num(f, v);
    fputs("</td><td>", f);
    if (b) {
        qb_bt_metric_value(b, key, &w);
        if (pct) qb_bt_pct(f, w); else qb_bt_num(f, w);
    }
    fputs("</td></tr>\n", f);
}

static void qb_bt_monthly(FILE *f, const qb_bt_point_t *p, size_t n, qb_dec_t e0) {
    fputs("<h2>Monthly returns</h2>\n<table class=\"months\"><tr><th>Year</th>", f);
    static const char *mn[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++) fprintf(f, "<th>%s</th>", mn[i]);
    fputs("<th>Year</th></tr>\n", f);
    double prev = (double)e0, year_start = (double)e0;
    int cur_y = 0, cur_m = 0, col = 0;
    for (size_t i = 0; i < n; i++) {
        qb_civil_t c;
        qb_time_to_civil(p[i].ts, &c);
        int last = i + 1 == n;
        qb_civil_t nx;
        if (!last) qb_time_to_civil(p[i + 1].ts, &nx);
        if (cur_y != c.year) { /* a new row */
            cur_y = c.year;
            col = 1;
            fprintf(f, "<tr><td>%d</td>", c.year);
        }
        cur_m = c.month;
        int month_end = last || nx.month != c.month || nx.year != c.year;
        if (!month_end) continue;
        for (; col < cur_m; col++) fputs("<td></td>", f);
        double eq = (double)p[i].equity;
        double r = prev != 0 ? eq / prev - 1 : 0;
        fprintf(f, "<td class=\"%s\">%.1f%%</td>", r >= 0 ? "up" : "dn", r * 100);
        col++;
        prev = eq;
        if (last || nx.year != c.year) {
            for (; col <= 12; col++) fputs("<td></td>", f);
            double yr = year_start != 0 ? eq / year_start - 1 : 0;
            fprintf(f, "<td class=\"%s\"><b>%.1f%%</b></td></tr>\n", yr >= 0 ? "up" : "dn", yr * 100);
            year_start = eq;
        }
    }
    fputs("</table>\n", f);
}

static void qb_bt_trades(FILE *f, const qb_bt_result_t *r) {
    size_t n;
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    fprintf(f, "<h2>Trades (%zu)</h2>\n", n);
    if (n > QB_BT_HTML_TRADES)
        fprintf(f, "<p>The first %d are listed; %zu more are in the JSON report.</p>\n",
                QB_BT_HTML_TRADES, n - QB_BT_HTML_TRADES);
    fputs("<table class=\"trades\"><tr><th>#</th><th>Symbol</th><th>Side</th><th>Entry</th>"
          "<th>Exit</th><th>Qty</th><th>Entry price</th><th>Exit price</th><th>Commission</th>"
          "<th>Net P&amp;L</th><th>Return</th><th>Bars</th></tr>\n",
          f);
    for (size_t i = 0; i < n && i < QB_BT_HTML_TRADES; i++) {
        char a[32], b[32], q[QB_DEC_STRLEN], ep[QB_DEC_STRLEN], xp[QB_DEC_STRLEN], cm[48], pl[48];
        qb_bt_date(t[i].entry_ts, a, sizeof a);
        qb_bt_date(t[i].exit_ts, b, sizeof b);
        qb_dec_format(t[i].qty, q, sizeof q);
        qb_dec_format(t[i].entry_price, ep, sizeof ep);
        qb_dec_format(t[i].exit_price, xp, sizeof xp);
        fprintf(f, "<tr><td>%zu</td><td>", i + 1);
        qb_bt_esc(f, qb_bt_result_symbol(r, t[i].sym));
        fprintf(f,
                "</td><td>%s</td><td>%s</td><td>%s%s</td><td>%s</td><td>%s</td><td>%s</td>"
                "<td>%s</td><td class=\"%s\">%s</td><td>%.2f%%</td><td>%lld</td></tr>\n",
                t[i].dir > 0 ? "long" : "short", a, b, t[i].open ? " (open)" : "", q, ep, xp,
                qb_bt_money(qb_bt_units_d(t[i].commission), cm, sizeof cm),
                t[i].net_pnl > 0 ? "up" : "dn",
                qb_bt_money(qb_bt_units_d(t[i].net_pnl), pl, sizeof pl), t[i].return_pct * 100,
                (long long)t[i].bars);
    }
    fputs("</table>\n", f);
}

qb_err_t qb_bt_report_html(const qb_bt_result_t *r, const char *title, FILE *f) {
    if (!title) title = "Backtest";
    const qb_bt_metrics_t *m = qb_bt_result_metrics(r), *b = qb_bt_result_benchmark(r);
    const qb_bt_config_t *c = qb_bt_result_config(r);
    size_t n;
    const qb_bt_point_t *p = qb_bt_result_equity(r, &n);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>", f);
    qb_bt_esc(f, title);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}\n"
          "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
          "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px "
          "solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}\n"
          ".up{color:#11772d}.dn{color:#b3261e}.months td{min-width:44px}\n"
          ".chart{width:100%;height:auto}.frame{fill:none;stroke:#bbb}.grid{stroke:#eee}"
          ".lbl{font-size:11px;fill:#555}.area{fill:#e8a09a;stroke:#b3261e;stroke-width:1}\n"
          "ul.summary li{margin:4px 0}\n</style></head><body>\n<h1>",
          f);
    qb_bt_esc(f, title);
    fputs("</h1>\n<p>", f);
    for (size_t i = 0; i < qb_bt_result_nsymbols(r); i++) {
        if (i) fputs(", ", f);
        if (i == 20) {
            fprintf(f, "and %zu more", qb_bt_result_nsymbols(r) - 20);
            break;
        }
        qb_bt_esc(f, qb_bt_result_symbol(r, (uint32_t)i));
    }
    char d0[32] = "", d1[32] = "", mo[48], mo2[48];
    if (n) {
        qb_bt_date(p[0].ts, d0, sizeof d0);
        qb_bt_date(p[n - 1].ts, d1, sizeof d1);
    }
    fprintf(f, " &middot; %s to %s &middot; %zu bars &middot; fills at %s</p>\n", d0, d1, n,
            c->fill == QB_FILL_CLOSE ? "the signal bar's close" : "the next bar's open");

    /* plain English */
    fputs("<ul class=\"summary\">\n", f);
    fprintf(f, "<li>Final equity <b>%s</b> from %s: a total return of <b>%.1f%%</b>",
            qb_bt_money(qb_bt_units_d(m->final_equity), mo, sizeof mo),
            qb_bt_money(qb_bt_units_d(m->initial_equity), mo2, sizeof mo2),
            m->total_return * 100);
    if (m->years > 0) fprintf(f, ", %.1f%% a year (CAGR) over %.1f years", m->cagr * 100, m->years);
    fputs(".</li>\n", f);
    if (b)
        fprintf(f, "<li>Buying and holding the same symbols in equal parts (same commission) "
                   "would have returned <b>%.1f%%</b>, with a worst fall of %.1f%%.</li>\n",
                b->total_return * 100, b->max_dd_pct * 100);
    fprintf(f, "<li>Max drawdown %.1f%%: at the worst point you would have been down this much "
               "from the peak (%s in money).</li>\n",
            m->max_dd_pct * 100, qb_bt_money(qb_bt_units_d(m->max_dd_money), mo, sizeof mo));
    fprintf(f, "<li>Sharpe ratio %.2f: the average return per unit of its ups and downs, per "
               "year. Above 1 is good; below 0 the strategy lost money.</li>\n",
            m->sharpe);
    if (m->trades_closed)
        fprintf(f, "<li>%lld round trips closed; %.0f%% of them made money after commissions. "
                   "On average a trade made %s.</li>\n",
                (long long)m->trades_closed, m->win_rate * 100,
                qb_bt_money(m->expectancy, mo, sizeof mo));
    else
        fputs("<li>No round trip was closed.</li>\n", f);
    if (m->trades_open)
        fprintf(f, "<li>%lld trade(s) still open at the end, valued at the last close (%s so "
                   "far).</li>\n",
                (long long)m->trades_open, qb_bt_money(qb_bt_units_d(m->open_pnl), mo, sizeof mo));
    fprintf(f, "<li>A position was open %.0f%% of the time.</li>\n", m->exposure * 100);
    fputs("</ul>\n", f);

    /* metrics */
    fputs("<h2>Metrics</h2>\n<table><tr><th></th><th>Strategy</th><th>Buy &amp; hold</th></tr>\n", f);
    qb_bt_row(f, "Total return", m, b, "total_return", 1);
    qb_bt_row(f, "CAGR", m, b, "cagr", 1);
    qb_bt_row(f, "Sharpe", m, b, "sharpe", 0);
    qb_bt_row(f, "Sortino", m, b, "sortino", 0);
    qb_bt_row(f, "Calmar", m, b, "calmar", 0);
    qb_bt_row(f, "Volatility (annual)", m, b, "volatility", 1);
    qb_bt_row(f, "Max drawdown", m, b, "max_dd_pct", 1);
    qb_bt_row(f, "Max drawdown (money)", m, b, "max_dd_money", 0);
    qb_bt_row(f, "Longest drawdown (bars)", m, b, "max_dd_bars", 0);
    qb_bt_row(f, "Exposure", m, b, "exposure", 1);
    qb_bt_row(f, "Turnover (annual)", m, b, "turnover_annual", 0);
    qb_bt_row(f, "Final equity", m, b, "final_equity", 0);
    qb_bt_row(f, "Trades closed", m, NULL, "trades_closed", 0);
    qb_bt_row(f, "Win rate", m, NULL, "win_rate", 1);
    qb_bt_row(f, "Profit factor", m, NULL, "profit_factor", 0);
    qb_bt_row(f, "Average win", m, NULL, "avg_win", 0);
    qb_bt_row(f, "Average loss", m, NULL, "avg_loss", 0);
    qb_bt_row(f, "Expectancy", m, NULL, "expectancy", 0);
    fputs("</table>\n", f);

    /* charts */
    double *eq = malloc((n ? n : 1) * sizeof *eq), *be = malloc((n ? n : 1) * sizeof *be),
           *dd = malloc((n ? n : 1) * sizeof *dd);
    qb_time_t *ts = malloc((n ? n : 1) * sizeof *ts);
    if (!eq || !be || !dd || !ts) {
        free(eq);
        free(be);
        free(dd);
        free(ts);
        return QB_ERR_NOMEM;
    }
    double peak = qb_bt_units_d(m->initial_equity);
    for (size_t i = 0; i < n; i++) {
        ts[i] = p[i].ts;
        eq[i] = qb_bt_units_d(p[i].equity);
        be[i] = qb_bt_units_d(p[i].benchmark);
        if (eq[i] > peak) peak = eq[i];
        dd[i] = peak > 0 ? eq[i] / peak - 1 : 0;
    }
    qb_bt_series2_t s2[2] = {{eq, "#1f5fbf", "Strategy"}, {be, "#999999", "Buy &amp; hold"}};
    qb_bt_chart(f, "Equity", ts, n, s2, b ? 2 : 1, 0, 0);
    qb_bt_series2_t s3 = {dd, "#b3261e", "Drawdown"};
    qb_bt_chart(f, "Drawdown", ts, n, &s3, 1, 1, 1);
    free(eq);
    free(be);
    free(dd);
    free(ts);
    qb_bt_monthly(f, p, n, m->initial_equity);
    qb_bt_trades(f, r);
    fputs("<p class=\"lbl\">Conventions: equity marked at each bar's close; Sharpe = mean / "
          "population standard deviation of per-bar returns &times; &radic;(bars per year), "
          "risk-free 0; round trips net of both commissions; win = net P&amp;L &gt; 0; benchmark "
          "= equal-weight buy-and-hold from each symbol's first bar, same commission.</p>\n"
          "</body></html>\n",
          f);
    return ferror(f) ? QB_ERR_IO : QB_OK;
}
