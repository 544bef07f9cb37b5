/* qb_bt_report.c — the JSON report of a backtest result (the HTML report is
 * qb_bt_html.c). Formats are documented in qb_backtest.h. */
#include <stdio.h>
#include <stdlib.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_int.h"

static void qb_bt_fdec(FILE *f, qb_dec_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    fputs(b, f);
}

static void qb_bt_ftime(FILE *f, qb_time_t t) {
    char b[QB_TIME_STRLEN];
    qb_time_format(t, b, sizeof b);
    fprintf(f, "\"%s\"", b);
}

static void qb_bt_fdouble(FILE *f, double v) {
    if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0)
        fputs("null", f);
    else
        fprintf(f, "%.10g", v);
}

/* Write a builder-made JSON text of unknown length. */
static int qb_bt_fjson(FILE *f, size_t (*fn)(const void *, char *, size_t), const void *arg) {
    char small[4096];
    size_t n = fn(arg, small, sizeof small);
    if (n < sizeof small) return fputs(small, f) >= 0;
    char *big = malloc(n + 1);
    if (!big) return 0;
    fn(arg, big, n + 1);
    int ok = fputs(big, f) >= 0;
    free(big);
    return ok;
}

static size_t qb_bt_cfg_fn(const void *a, char *b, size_t c) { return qb_bt_config_json(a, b, c); }
static size_t qb_bt_met_fn(const void *a, char *b, size_t c) { return qb_bt_metrics_json(a, b, c); }

qb_err_t qb_bt_report_json(const qb_bt_result_t *r, unsigned flags, FILE *f) {
    fputs("{\"config\":", f);
    qb_bt_fjson(f, qb_bt_cfg_fn, qb_bt_result_config(r));
    fputs(",\"symbols\":[", f);
    for (size_t i = 0; i < qb_bt_result_nsymbols(r); i++)
        fprintf(f, "%s\"%s\"", i ? "," : "", qb_bt_result_symbol(r, (uint32_t)i));
    fputs("],\"metrics\":", f);
    qb_bt_fjson(f, qb_bt_met_fn, qb_bt_result_metrics(r));
    fputs(",\"benchmark\":", f);
    if (qb_bt_result_benchmark(r))
        qb_bt_fjson(f, qb_bt_met_fn, qb_bt_result_benchmark(r));
    else
        fputs("null", f);
    const qb_bt_counts_t *c = qb_bt_result_counts(r);
    fprintf(f,
            ",\"counts\":{\"bars\":%llu,\"warmup_bars\":%llu,\"steps\":%llu,\"signals\":%llu,"
            "\"signals_skipped\":%llu,\"orders\":%llu,\"orders_rejected\":%llu,"
            "\"orders_canceled\":%llu,\"orders_expired\":%llu,\"orders_working_at_end\":%llu,"
            "\"fills\":%llu,\"partial_fills\":%llu,\"commissions\":",
            (unsigned long long)c->bars, (unsigned long long)c->warmup_bars,
            (unsigned long long)c->steps, (unsigned long long)c->signals,
            (unsigned long long)c->signals_skipped, (unsigned long long)c->orders,
            (unsigned long long)c->orders_rejected, (unsigned long long)c->orders_canceled,
            (unsigned long long)c->orders_expired, (unsigned long long)c->orders_working_at_end,
            (unsigned long long)c->fills, (unsigned long long)c->partial_fills);
    qb_bt_fdec(f, c->commissions);
    fputs(",\"slippage\":", f);
    qb_bt_fdec(f, c->slippage);
    fputs("},\"final_cash\":", f);
    qb_bt_fdec(f, qb_bt_result_cash(r));
    fputs(",\"positions\":{", f);
    for (size_t i = 0, first = 1; i < qb_bt_result_nsymbols(r); i++) {
        qb_dec_t q = qb_bt_result_position(r, (uint32_t)i);
        if (!q) continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", qb_bt_result_symbol(r, (uint32_t)i));
        qb_bt_fdec(f, q);
        first = 0;
    }
    fputc('}', f);
    size_t n;
    if (flags & QB_BT_JSON_EQUITY) {
        const qb_bt_point_t *p = qb_bt_result_equity(r, &n);
        fputs(",\"equity\":[", f);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",[" : "[", f);
            qb_bt_ftime(f, p[i].ts);
            fputc(',', f);
            qb_bt_fdec(f, p[i].equity);
            fputc(',', f);
            qb_bt_fdec(f, p[i].benchmark);
            fputc(']', f);
        }
        fputc(']', f);
    }
    if (flags & QB_BT_JSON_TRADES) {
        const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
        fputs(",\"trades\":[", f);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"symbol\":\"%s\",\"dir\":\"%s\",\"open\":%s,\"entry_ts\":",
                    i ? "," : "", qb_bt_result_symbol(r, t[i].sym),
                    t[i].dir > 0 ? "long" : "short", t[i].open ? "true" : "false");
            qb_bt_ftime(f, t[i].entry_ts);
            fputs(",\"exit_ts\":", f);
            qb_bt_ftime(f, t[i].exit_ts);
            fputs(",\"qty\":", f);
            qb_bt_fdec(f, t[i].qty);
            fputs(",\"entry_price\":", f);
            qb_bt_fdec(f, t[i].entry_price);
            fputs(",\"exit_price\":", f);
            qb_bt_fdec(f, t[i].exit_price);
            fputs(",\"commission\":", f);
            qb_bt_fdec(f, t[i].commission);
            fputs(",\"net_pnl\":", f);
            qb_bt_fdec(f, t[i].net_pnl);
            fputs(",\"return_pct\":", f);
            qb_bt_fdouble(f, t[i].return_pct);
            fprintf(f, ",\"bars\":%lld,\"fills\":%u}", (long long)t[i].bars, t[i].fills);
        }
        fputc(']', f);
    }
    if (flags & QB_BT_JSON_FILLS) {
        const qb_bt_fill_t *x = qb_bt_result_fills(r, &n);
        fputs(",\"fills\":[", f);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"ts\":", i ? "," : "");
            qb_bt_ftime(f, x[i].ts);
            fprintf(f, ",\"symbol\":\"%s\",\"side\":\"%s\",\"type\":\"%s\",\"role\":\"%s\","
                       "\"signal\":%llu,\"qty\":",
                    qb_bt_result_symbol(r, x[i].sym), qb_side_name(x[i].side),
                    qb_order_type_name(x[i].type), qb_bt_role_name((qb_bt_role_t)(x[i].tag & 3)),
                    (unsigned long long)(x[i].tag >> 2));
            qb_bt_fdec(f, x[i].qty);
            fputs(",\"price\":", f);
            qb_bt_fdec(f, x[i].price);
            fputs(",\"commission\":", f);
            qb_bt_fdec(f, x[i].commission);
            fputs(",\"slippage\":", f);
            qb_bt_fdec(f, x[i].slippage);
            fputs(",\"cash\":", f);
            qb_bt_fdec(f, x[i].cash_after);
            fputs(",\"position\":", f);
            qb_bt_fdec(f, x[i].position_after);
            fputc('}', f);
        }
        fputc(']', f);
    }
    fputs("}\n", f);
    return ferror(f) ? QB_ERR_IO : QB_OK;
}
