/* cmd_backtest.c — `qbctl backtest`: a backtest over CSV files, locally
 * (no bus, no database), with libs/backtest; prints the metrics.
 *
 *   qbctl backtest --csv FILE [--csv SYM=FILE ...] --strategy NAME [--params JSON]
 *       | --signals FILE
 *       [--cash N] [--commission-pct P | --commission SPEC] [--slippage-bps B]
 *       [--fill next_open|close] [--sizing all_in|fixed_qty|percent_equity|fixed_fractional]
 *       [--sizing-value V] [--long-only] [--margin-long M] [--margin-short M]
 *       [--volume-cap F] [--lot L] [--entry market|limit] [--limit-offset-bps B]
 *       [--stop-exits] [--stop-limit-bps B] [--from D] [--to D] [--warmup N]
 *       [--timeframe 1d] [--calendar equity|24x7] [--bars-per-year N]
 *       [--set KEY=VALUE ...] [--json] [--trades] [--report-json FILE]
 *       [--html FILE] [--title T] [--progress auto|always|never]
 *       [--input-format auto|yahoo|generic] [--columns ...] [--time-format ...]
 *
 * Symbols: SYM=FILE names the symbol; a bare FILE takes it from the file
 * name, up to the first '.', '-' or '_' (orcl-1995-2014.txt -> ORCL).
 * Symbol ids, and so the order of symbols inside a time step, follow the
 * order of --csv. The CSV formats are `qbctl import`'s (libs/md/qb_md_csv.h;
 * auto = yahoo when the header has "Adj Close"). Rejected rows are reported
 * as FILE:LINE: reason and left out (exit 1 after the run).
 *
 * Signals instead of a strategy (--signals FILE: "the live path"): the
 * backtest engine's signal path (qb_bt_run_signals: the same sizing,
 * orders, fills and accounting as a strategy's signals) over a CSV of
 * signals, e.g. what qb-features stored in features.signals. Header line
 *   symbol,bar_ts,direction[,target_weight[,stop_distance[,reference_price]]]
 * then one signal a line: bar_ts RFC 3339 / ISO-8601 (or integer ns since
 * the epoch), direction LONG, SHORT or FLAT, target_weight a fraction
 * (empty = none), stop_distance and reference_price exact decimals (empty
 * = 0; reference 0 = the bar's close). A signal must name a symbol of the
 * --csv files and the ts of one of its bars. --strategy/--params then do
 * not apply.
 *
 * Output: a table of the metrics next to the benchmark's (equal-weight
 * buy-and-hold); --json prints one JSON object instead: final_equity,
 * total_return, cagr, sharpe, sortino, calmar, max_dd_pct, max_dd_money,
 * trades_closed, trades_open, won, lost, win_rate, profit_factor,
 * expectancy, exposure, turnover, ... (every metric of qb_bt_metrics.h),
 * plus "benchmark" (its metrics) and "counts". --report-json writes the
 * full report (config, metrics, equity curve, trades, fills); --html the
 * self-contained HTML report. A progress bar on stderr when it is a
 * terminal (or --progress always).
 *
 * Exit: 0 ok, 1 rejected rows or a read/run error, 2 usage or a bad
 * option/parameter (the message names it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backtest/qb_backtest.h"
#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"
#include "qbctl.h"

#define BT_MAX_FILES 512
#define BT_BAR_WIDTH 30

static int bt_usage(const char *msg) {
    fprintf(stderr,
            "qbctl backtest: %s\n"
            "usage: qbctl backtest --csv FILE [--csv SYM=FILE ...] --strategy NAME [--params JSON]\n"
            "   (or --signals FILE: symbol,bar_ts,direction[,target_weight[,stop_distance[,reference_price]]])\n"
            "   [--cash N] [--commission-pct P | --commission none|per_trade:F|per_share:R[:MIN]|percent:P[:MIN]]\n"
            "   [--slippage-bps B] [--fill next_open|close] [--long-only]\n"
            "   [--sizing all_in|fixed_qty|percent_equity|fixed_fractional] [--sizing-value V]\n"
            "   [--margin-long M] [--margin-short M] [--volume-cap F] [--lot L]\n"
            "   [--entry market|limit] [--limit-offset-bps B] [--stop-exits] [--stop-limit-bps B]\n"
            "   [--from D] [--to D] [--warmup N|-1] [--timeframe 1d] [--calendar equity|24x7]\n"
            "   [--bars-per-year N] [--set KEY=VALUE ...] [--json] [--trades]\n"
            "   [--report-json FILE] [--html FILE] [--title T] [--progress auto|always|never]\n"
            "   [--input-format auto|yahoo|generic] [--columns C] [--time-format F] [--delimiter C]\n"
            "Strategies: sma_cross ema_cross rsi_reversion macd_momentum bollinger_reversion\n"
            "bollinger_breakout donchian_breakout basic_signals (parameters: libs/strategy/qb_strategy.h;\n"
            "shorts need \"allow_short\":true in --params and no --long-only).\n"
            "--commission-pct 0.1 = 0.1%% of the traded value. --set takes any setting of\n"
            "qb_bt_config_set (libs/backtest/qb_backtest.h), e.g. --set entry_tif=day.\n",
            msg);
    return 2;
}

typedef struct bt_prog_s {
    int on, drawn;
    int64_t started;
    uint64_t bars_total;
} bt_prog_t;

static int bt_progress(uint64_t done, uint64_t total, void *ctx) {
    bt_prog_t *p = ctx;
    if (!p->on) return 0;
    double pct = total ? (double)done / (double)total : 1;
    int fill = (int)(pct * BT_BAR_WIDTH + 0.5);
    char bar[BT_BAR_WIDTH + 1];
    for (int i = 0; i < BT_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BT_BAR_WIDTH] = 0;
    double secs = (double)(qb_time_mono_ns() - p->started) / 1e9;
    double bars = (double)p->bars_total * pct;
    fprintf(stderr, "\r[%s] %5.1f%%  %llu/%llu steps  %.1f M bars/s   ", bar, pct * 100,
            (unsigned long long)done, (unsigned long long)total,
            secs > 0 ? bars / secs / 1e6 : 0.0);
    fflush(stderr);
    p->drawn = 1;
    return 0;
}

/* One metric beside the benchmark's. pct: 0 number, 1 percent, 2 money,
 * 3 count. */
static void bt_row(const char *label, const char *key, const qb_bt_metrics_t *m,
                   const qb_bt_metrics_t *b, int pct) {
    double v = 0, w = 0;
    qb_bt_metric_value(m, key, &v);
    printf("%-22s", label);
    for (int k = 0; k < (b ? 2 : 1); k++) {
        if (k) qb_bt_metric_value(b, key, &w);
        double x = k ? w : v;
        if (pct == 1) printf(" %14.2f%%", x * 100);
        else if (pct == 2) printf(" %15.2f", x);
        else if (pct == 3) printf(" %15.0f", x);
        else printf(" %15.3f", x);
    }
    putchar('\n');
}

static void bt_print_text(const qb_bt_result_t *r, int trades) {
    const qb_bt_metrics_t *m = qb_bt_result_metrics(r), *b = qb_bt_result_benchmark(r);
    const qb_bt_counts_t *c = qb_bt_result_counts(r);
    char fe[QB_DEC_STRLEN], t0[QB_TIME_STRLEN] = "", t1[QB_TIME_STRLEN] = "";
    if (m->first_ts) qb_time_format(m->first_ts, t0, sizeof t0);
    if (m->last_ts) qb_time_format(m->last_ts, t1, sizeof t1);
    printf("%zu symbols, %lld bars in %lld steps, %s .. %s\n", qb_bt_result_nsymbols(r),
           (long long)c->bars, (long long)c->steps, t0, t1);
    printf("%-22s %15s %15s\n", "", "strategy", b ? "buy & hold" : "");
    qb_dec_format_fixed(m->final_equity, 2, fe, sizeof fe);
    bt_row("final equity", "final_equity", m, b, 2);
    bt_row("total return", "total_return", m, b, 1);
    bt_row("CAGR", "cagr", m, b, 1);
    bt_row("sharpe", "sharpe", m, b, 0);
    bt_row("sortino", "sortino", m, b, 0);
    bt_row("calmar", "calmar", m, b, 0);
    bt_row("volatility (annual)", "volatility", m, b, 1);
    bt_row("max drawdown", "max_dd_pct", m, b, 1);
    bt_row("max drawdown (money)", "max_dd_money", m, b, 2);
    bt_row("exposure", "exposure", m, b, 1);
    bt_row("turnover (annual)", "turnover_annual", m, b, 0);
    bt_row("trades closed", "trades_closed", m, NULL, 3);
    bt_row("trades open", "trades_open", m, NULL, 3);
    bt_row("won", "won", m, NULL, 3);
    bt_row("lost", "lost", m, NULL, 3);
    bt_row("win rate", "win_rate", m, NULL, 1);
    bt_row("profit factor", "profit_factor", m, NULL, 0);
    bt_row("avg win", "avg_win", m, NULL, 2);
    bt_row("avg loss", "avg_loss", m, NULL, 2);
    bt_row("expectancy", "expectancy", m, NULL, 2);
    char cm[QB_DEC_STRLEN];
    qb_dec_format(c->commissions, cm, sizeof cm);
    printf("final equity %s; %llu signals, %llu orders (%llu rejected), %llu fills, "
           "commissions %s\n",
           fe, (unsigned long long)c->signals, (unsigned long long)c->orders,
           (unsigned long long)c->orders_rejected, (unsigned long long)c->fills, cm);
    if (!trades) return;
    size_t n;
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    printf("\n%-8s %-5s %-20s %-20s %12s %12s %12s %14s\n", "symbol", "side", "entry", "exit",
           "qty", "entry px", "exit px", "net pnl");
    for (size_t i = 0; i < n; i++) {
        char a[QB_TIME_STRLEN], bb[QB_TIME_STRLEN], q[QB_DEC_STRLEN], ep[QB_DEC_STRLEN],
            xp[QB_DEC_STRLEN], pl[QB_DEC_STRLEN];
        qb_time_format(t[i].entry_ts, a, sizeof a);
        qb_time_format(t[i].exit_ts, bb, sizeof bb);
        qb_dec_format(t[i].qty, q, sizeof q);
        qb_dec_format(t[i].entry_price, ep, sizeof ep);
        qb_dec_format(t[i].exit_price, xp, sizeof xp);
        qb_dec_format(t[i].net_pnl, pl, sizeof pl);
        printf("%-8s %-5s %-20s %-20s %12s %12s %12s %14s%s\n", qb_bt_result_symbol(r, t[i].sym),
               t[i].dir > 0 ? "long" : "short", a, bb, q, ep, xp, pl, t[i].open ? " open" : "");
    }
}

static void bt_print_json(const qb_bt_result_t *r) {
    char buf[8192];
    size_t n = qb_bt_metrics_json(qb_bt_result_metrics(r), buf, sizeof buf);
    if (n >= sizeof buf) return;
    buf[n - 1] = 0; /* drop the closing brace: more keys follow */
    fputs(buf, stdout);
    const qb_bt_metrics_t *b = qb_bt_result_benchmark(r);
    fputs(",\"benchmark\":", stdout);
    if (b && qb_bt_metrics_json(b, buf, sizeof buf) < sizeof buf)
        fputs(buf, stdout);
    else
        fputs("null", stdout);
    const qb_bt_counts_t *c = qb_bt_result_counts(r);
    char cm[QB_DEC_STRLEN], fc[QB_DEC_STRLEN];
    qb_dec_format(c->commissions, cm, sizeof cm);
    qb_dec_format(qb_bt_result_cash(r), fc, sizeof fc);
    printf(",\"final_cash\":%s,\"counts\":{\"bars\":%llu,\"steps\":%llu,\"signals\":%llu,"
           "\"orders\":%llu,\"orders_rejected\":%llu,\"fills\":%llu,\"partial_fills\":%llu,"
           "\"commissions\":%s}}\n",
           fc, (unsigned long long)c->bars, (unsigned long long)c->steps,
           (unsigned long long)c->signals, (unsigned long long)c->orders,
           (unsigned long long)c->orders_rejected, (unsigned long long)c->fills,
           (unsigned long long)c->partial_fills, cm);
}

/* One CSV field [b, e) of line, NUL-terminated copy in out; 0 if too long. */
static int bt_field(const char *b, const char *e, char *out, size_t cap) {
    size_t n = (size_t)(e - b);
    if (n >= cap) return 0;
    memcpy(out, b, n);
    out[n] = 0;
    return 1;
}

/* Read --signals FILE (format at the top of this file) into *out (malloc'd,
 * *n signals). 0 ok; 1 with a message naming FILE:LINE. */
static int bt_read_signals(const char *path, const char *timeframe, qb_signal_t **out,
                           size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "qbctl backtest: --signals: cannot open %s\n", path);
        return 1;
    }
    char line[1024];
    size_t cap = 0, cnt = 0, lineno = 0;
    qb_signal_t *sig = NULL;
    int rc = 1, header = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0) continue;
        if (!header) {
            if (strncmp(line, "symbol,bar_ts,direction", 23) != 0) {
                fprintf(stderr,
                        "qbctl backtest: %s:%zu: header must start with "
                        "symbol,bar_ts,direction\n",
                        path, lineno);
                goto out;
            }
            header = 1;
            continue;
        }
        char fld[6][128];
        int nf = 0;
        const char *b = line;
        for (;;) {
            const char *e = strchr(b, ',');
            if (!e) e = line + len;
            if (nf == 6 || !bt_field(b, e, fld[nf], sizeof fld[nf])) {
                fprintf(stderr, "qbctl backtest: %s:%zu: too many or too long fields\n", path,
                        lineno);
                goto out;
            }
            nf++;
            if (!*e) break;
            b = e + 1;
        }
        while (nf < 6) fld[nf++][0] = 0;
        if (cnt == cap) {
            size_t c = cap ? cap * 2 : 256;
            qb_signal_t *p = realloc(sig, c * sizeof *p);
            if (!p) {
                fprintf(stderr, "qbctl backtest: out of memory\n");
                goto out;
            }
            sig = p;
            cap = c;
        }
        qb_signal_t *g = &sig[cnt];
        memset(g, 0, sizeof *g);
        const char *what = NULL;
        char *end = NULL;
        size_t sl = strlen(fld[0]);
        if (!sl || sl > QB_SYMBOL_MAX) what = "symbol";
        else
            for (size_t c = 0; c <= sl; c++) /* upper-cased, NUL included */
                g->symbol.s[c] = fld[0][c] >= 'a' && fld[0][c] <= 'z'
                                     ? (char)(fld[0][c] - 'a' + 'A')
                                     : fld[0][c];
        snprintf(g->timeframe, sizeof g->timeframe, "%s", timeframe);
        long long ns = strtoll(fld[1], &end, 10);
        if (!what && fld[1][0] && end && !*end) g->bar_ts = (qb_time_t)ns;
        else if (!what && qb_time_parse(fld[1], strlen(fld[1]), &g->bar_ts) != QB_OK)
            what = "bar_ts";
        if (!strcmp(fld[2], "LONG")) g->direction = QB_SIGNAL_LONG;
        else if (!strcmp(fld[2], "SHORT")) g->direction = QB_SIGNAL_SHORT;
        else if (!strcmp(fld[2], "FLAT")) g->direction = QB_SIGNAL_FLAT;
        else if (!what) what = "direction (LONG, SHORT or FLAT)";
        g->confidence = 1.0;
        if (fld[3][0]) {
            g->target_weight = strtod(fld[3], &end);
            g->has_target_weight = 1;
            if (!what && (*end || !(g->target_weight >= 0 && g->target_weight <= 1)))
                what = "target_weight (0..1)";
        }
        if (!what && fld[4][0] &&
            (qb_dec_parse(fld[4], strlen(fld[4]), &g->stop_distance) != QB_OK ||
             g->stop_distance < 0))
            what = "stop_distance";
        if (!what && fld[5][0] &&
            (qb_dec_parse(fld[5], strlen(fld[5]), &g->reference_price) != QB_OK ||
             g->reference_price < 0))
            what = "reference_price";
        if (what) {
            fprintf(stderr, "qbctl backtest: %s:%zu: bad %s\n", path, lineno, what);
            goto out;
        }
        cnt++;
    }
    if (!header) {
        fprintf(stderr, "qbctl backtest: %s: empty (no header line)\n", path);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    if (rc) {
        free(sig);
        return rc;
    }
    *out = sig;
    *n = cnt;
    return 0;
}

int qbctl_backtest(int argc, char **argv) {
    const char *files[BT_MAX_FILES];
    int nfiles = 0;
    const char *sets[256];
    int nsets = 0;
    const char *strategy = NULL, *params = "", *timeframe = "1d", *in_format = "auto";
    const char *tfmt = NULL, *report_json = NULL, *html = NULL, *title = NULL;
    const char *progress = "auto", *signals_file = NULL;
    char *columns = NULL;
    char delim = 0;
    int json = 0, trades = 0;
    qb_bt_config_t cfg;
    qb_bt_config_default(&cfg);
    char err[1024];
    /* options that map onto config settings */
    static const struct {
        const char *opt, *key;
    } map[] = {
        {"--cash", "cash"},
        {"--commission", "commission"},
        {"--slippage-bps", "slippage_bps"},
        {"--fill", "fill"},
        {"--sizing", "sizing"},
        {"--sizing-value", "sizing_value"},
        {"--margin-long", "margin_long"},
        {"--margin-short", "margin_short"},
        {"--volume-cap", "volume_cap"},
        {"--lot", "lot"},
        {"--entry", "entry_type"},
        {"--limit-offset-bps", "limit_offset_bps"},
        {"--stop-limit-bps", "stop_limit_bps"},
        {"--from", "from"},
        {"--to", "to"},
        {"--warmup", "warmup_bars"},
        {"--calendar", "calendar"},
        {"--bars-per-year", "bars_per_year"},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bt_usage("help");
            return 0;
        }
        if (!strcmp(a, "--long-only")) {
            cfg.long_only = 1;
            continue;
        }
        if (!strcmp(a, "--stop-exits")) {
            cfg.stop_exits = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--trades")) {
            trades = 1;
            continue;
        }
        if (!val) {
            snprintf(err, sizeof err, "unknown option '%s' or missing value", a);
            return bt_usage(err);
        }
        int done = 0;
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (!strcmp(a, map[k].opt)) {
                char m[512];
                if (qb_bt_config_set(&cfg, map[k].key, val, m, sizeof m) != QB_OK) {
                    fprintf(stderr, "qbctl backtest: %s: %s\n", a, m);
                    return 2;
                }
                done = 1;
            }
        if (done) {
            i++;
            continue;
        }
        i++;
        if (!strcmp(a, "--csv")) {
            if (nfiles == BT_MAX_FILES) return bt_usage("too many --csv (at most 512)");
            files[nfiles++] = val;
        } else if (!strcmp(a, "--set")) {
            if (nsets == 256) return bt_usage("too many --set");
            sets[nsets++] = val;
        } else if (!strcmp(a, "--commission-pct")) {
            char spec[96];
            snprintf(spec, sizeof spec, "percent:%s", val);
            char m[512];
            if (qb_bt_config_set(&cfg, "commission", spec, m, sizeof m) != QB_OK) {
                fprintf(stderr, "qbctl backtest: --commission-pct: %s\n", m);
                return 2;
            }
        } else if (!strcmp(a, "--strategy")) strategy = val;
        else if (!strcmp(a, "--signals")) signals_file = val;
        else if (!strcmp(a, "--params")) params = val;
        else if (!strcmp(a, "--timeframe")) timeframe = val;
        else if (!strcmp(a, "--input-format")) in_format = val;
        else if (!strcmp(a, "--time-format")) tfmt = val;
        else if (!strcmp(a, "--columns")) columns = argv[i];
        else if (!strcmp(a, "--report-json")) report_json = val;
        else if (!strcmp(a, "--html")) html = val;
        else if (!strcmp(a, "--title")) title = val;
        else if (!strcmp(a, "--progress")) progress = val;
        else if (!strcmp(a, "--delimiter")) {
            if (!strcmp(val, "\\t") || !strcmp(val, "tab")) delim = '\t';
            else if (strlen(val) == 1) delim = val[0];
            else return bt_usage("--delimiter takes one character (or tab)");
        } else {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            return bt_usage(err);
        }
    }
    if (!nfiles) return bt_usage("--csv is required");
    if (!strategy && !signals_file) return bt_usage("--strategy (or --signals) is required");
    if (strategy && signals_file) return bt_usage("--strategy and --signals exclude each other");
    if (strcmp(progress, "auto") && strcmp(progress, "always") && strcmp(progress, "never"))
        return bt_usage("--progress must be auto, always or never");
    for (int k = 0; k < nsets; k++) {
        char key[64];
        const char *eq = strchr(sets[k], '=');
        if (!eq || eq == sets[k] || (size_t)(eq - sets[k]) >= sizeof key)
            return bt_usage("--set takes KEY=VALUE");
        memcpy(key, sets[k], (size_t)(eq - sets[k]));
        key[eq - sets[k]] = 0;
        char m[512];
        if (qb_bt_config_set(&cfg, key, eq + 1, m, sizeof m) != QB_OK) {
            fprintf(stderr, "qbctl backtest: --set %s: %s\n", sets[k], m);
            return 2;
        }
    }
    if (strategy &&
        qb_bt_config_add_strategy(&cfg, strategy, params, "", err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl backtest: --strategy: %s\n", err);
        return 2;
    }
    if (qb_bt_config_validate(&cfg, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl backtest: %s\n", err);
        return 2;
    }
    if (strategy) { /* the strategy and its params, before reading anything */
        qb_strategy_t *s = NULL;
        if (qb_strategy_new(strategy, params, &s, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl backtest: --strategy/--params: %s\n", err);
            return 2;
        }
        qb_strategy_destroy(s);
    }

    int rc = 1;
    qb_bt_data_t *d = NULL;
    qb_bt_result_t *res = NULL;
    qb_signal_t *sigs = NULL;
    size_t nsigs = 0;
    int64_t rejects = 0;
    if (signals_file && bt_read_signals(signals_file, timeframe, &sigs, &nsigs) != 0) return 1;
    if (qb_bt_data_new(timeframe, &d, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl backtest: --timeframe: %s\n", err);
        return 2;
    }
    {
        qbctl_csv_opts_t co = {in_format, tfmt, columns, delim};
        rc = qbctl_bt_load("backtest", d, files, nfiles, timeframe, &co, &rejects);
        if (rc != 0) goto out;
        rc = 1;
    }
    bt_prog_t prog = {0, 0, qb_time_mono_ns(), qb_bt_data_total_bars(d)};
    prog.on = !strcmp(progress, "always") || (!strcmp(progress, "auto") && isatty(STDERR_FILENO) &&
                                              qb_bt_data_total_bars(d) >= 1000000);
    cfg.progress = bt_progress;
    cfg.progress_ctx = &prog;
    cfg.progress_every = 1024;
    qb_err_t e = signals_file ? qb_bt_run_signals(d, &cfg, sigs, nsigs, &res, err, sizeof err)
                              : qb_bt_run(d, &cfg, &res, err, sizeof err);
    if (prog.drawn) fputc('\n', stderr);
    if (e != QB_OK) {
        fprintf(stderr, "qbctl backtest: %s\n", err);
        rc = e == QB_ERR_INVALID ? 2 : 1;
        goto out;
    }
    if (json)
        bt_print_json(res);
    else
        bt_print_text(res, trades);
    if (report_json) {
        FILE *f = fopen(report_json, "w");
        if (!f || qb_bt_report_json(res, QB_BT_JSON_EQUITY | QB_BT_JSON_TRADES | QB_BT_JSON_FILLS,
                                    f) != QB_OK) {
            fprintf(stderr, "qbctl backtest: cannot write %s\n", report_json);
            if (f) fclose(f);
            goto out;
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "qbctl backtest: cannot write %s\n", report_json);
            goto out;
        }
    }
    if (html) {
        char t[256];
        if (!title) {
            snprintf(t, sizeof t, "Backtest: %s %s", strategy ? strategy : signals_file,
                     strategy && params && *params ? params : "");
            title = t;
        }
        FILE *f = fopen(html, "w");
        if (!f || qb_bt_report_html(res, title, f) != QB_OK) {
            fprintf(stderr, "qbctl backtest: cannot write %s\n", html);
            if (f) fclose(f);
            goto out;
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "qbctl backtest: cannot write %s\n", html);
            goto out;
        }
    }
    rc = rejects ? 1 : 0;
out:
    qb_bt_result_destroy(res);
    qb_bt_data_destroy(d);
    free(sigs);
    return rc;
}
