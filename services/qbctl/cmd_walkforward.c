/* cmd_walkforward.c — `qbctl walkforward` (walk-forward optimisation) and
 * `qbctl optimize` (grid or random parameter search on one period), over
 * CSV files, locally (no bus, no database), with libs/backtest's qb_wf.h,
 * qb_search.h and qb_mc.h.
 *
 *   qbctl walkforward --csv FILE [--csv SYM=FILE ...] --strategy NAME [--params JSON]
 *       --grid 'fast=5:20:5;slow=20,50' [--param NAME=VALUES ...] [--random N] [--seed S]
 *       --is L --oos L [--step L] [--mode rolling|anchored] [--no-partial]
 *       [--objective sharpe] [--min-trades N] [--threads N]
 *       [--mc N] [--mc-seed S] [--ruin 0.5] [--mc-basis equity|notional]
 *       [--json] [--trades] [--report-json FILE] [--progress auto|always|never]
 *       and every backtest option of `qbctl backtest` (--cash, --commission-pct,
 *       --slippage-bps, --fill, --sizing, --from, --to, --set KEY=VALUE ...)
 *   qbctl optimize   the same without --is/--oos/--step/--mode: every combination
 *       over [--from, --to), ranked; [--top K] rows (default 20).
 *
 * Lengths L: N time steps ("250") or a duration ("2y", "6mo", "90d", "4w").
 * A random search (--random N) draws N distinct grid points with a seed;
 * without --seed one is chosen and printed, so the run can be repeated.
 * --mc N bootstraps the (stitched out-of-sample, or the best combination's)
 * trade returns into N paths (seed printed likewise).
 *
 * The CSV loading is `qbctl backtest`'s (same formats, same FILE:LINE
 * rejects); it is repeated here because that command keeps it static.
 *
 * Exit: 0 ok, 1 rejected rows or a read/run error, 2 usage or a bad
 * option/parameter (the message names it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_mc.h"
#include "backtest/qb_search.h"
#include "backtest/qb_wf.h"
#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"
#include "qbctl.h"

#define WF_MAX_FILES 512
#define WF_BAR_WIDTH 30

static int wf_usage(const char *cmd, const char *msg) {
    int wf = !strcmp(cmd, "walkforward");
    fprintf(stderr,
            "qbctl %s: %s\n"
            "usage: qbctl %s --csv FILE [--csv SYM=FILE ...] --strategy NAME [--params JSON]\n"
            "   --grid 'NAME=VALUES;...' [--param NAME=VALUES ...] [--random N] [--seed S]\n"
            "%s"
            "   [--objective METRIC] [--min-trades N] [--threads N]\n"
            "   [--mc N] [--mc-seed S] [--ruin FRACTION] [--mc-basis equity|notional]\n"
            "   [--json] [--trades]%s [--report-json FILE] [--progress auto|always|never]\n"
            "   backtest options: [--cash N] [--commission-pct P | --commission SPEC]\n"
            "   [--slippage-bps B] [--fill next_open|close] [--long-only] [--sizing RULE]\n"
            "   [--sizing-value V] [--from D] [--to D] [--warmup N] [--timeframe 1d]\n"
            "   [--calendar equity|24x7] [--bars-per-year N] [--set KEY=VALUE ...]\n"
            "   [--input-format auto|yahoo|generic] [--columns C] [--time-format F]\n"
            "VALUES: a list 5,10,20 or a range lo:hi:step (10:50:10). NAME: a strategy\n"
            "parameter (fast) or set.SETTING for a backtest setting (set.slippage_bps).\n"
            "%s"
            "METRIC: sharpe (default), total_return, cagr, calmar, sortino, profit_factor,\n"
            "max_dd_pct (lower is better), ... (libs/backtest/qb_bt_metrics.h).\n",
            cmd, msg, cmd,
            wf ? "   --is L --oos L [--step L] [--mode rolling|anchored] [--no-partial]\n" : "",
            wf ? "" : " [--top K]",
            wf ? "L: time steps (250) or a duration (2y, 6mo, 90d, 4w, 12h, 30m).\n" : "");
    return 2;
}

/* ---- progress ----------------------------------------------------------------------------- */

typedef struct wf_prog_s {
    int on, drawn;
    int64_t started;
    const char *what;
} wf_prog_t;

static int wf_progress(uint64_t done, uint64_t total, void *ctx) {
    wf_prog_t *p = ctx;
    if (!p->on) return 0;
    double pct = total ? (double)done / (double)total : 1;
    int fill = (int)(pct * WF_BAR_WIDTH + 0.5);
    char bar[WF_BAR_WIDTH + 1];
    for (int i = 0; i < WF_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WF_BAR_WIDTH] = 0;
    double secs = (double)(qb_time_mono_ns() - p->started) / 1e9;
    fprintf(stderr, "\r[%s] %5.1f%%  %llu/%llu %s  %.1fs   ", bar, pct * 100,
            (unsigned long long)done, (unsigned long long)total, p->what, secs);
    fflush(stderr);
    p->drawn = 1;
    return 0;
}

/* ---- output helpers -------------------------------------------------------------------------- */

static void wf_date(qb_time_t t, char *buf, size_t cap) {
    char full[QB_TIME_STRLEN];
    qb_time_format(t, full, sizeof full);
    /* daily data: the date is enough; else keep minutes */
    if (strstr(full, "T00:00:00")) snprintf(buf, cap, "%.10s", full);
    else snprintf(buf, cap, "%.16s", full);
}

static void wf_print_metric_rows(const qb_bt_metrics_t *m) {
    char fe[QB_DEC_STRLEN];
    qb_dec_format_fixed(m->final_equity, 2, fe, sizeof fe);
    printf("  final equity        %15s\n", fe);
    printf("  total return        %14.2f%%\n", m->total_return * 100);
    printf("  CAGR                %14.2f%%\n", m->cagr * 100);
    printf("  sharpe              %15.3f\n", m->sharpe);
    printf("  sortino             %15.3f\n", m->sortino);
    printf("  calmar              %15.3f\n", m->calmar);
    printf("  max drawdown        %14.2f%%\n", m->max_dd_pct * 100);
    printf("  exposure            %14.2f%%\n", m->exposure * 100);
    printf("  trades              %15lld  (won %lld, lost %lld, win rate %.1f%%)\n",
           (long long)(m->trades_closed + m->trades_open), (long long)m->won, (long long)m->lost,
           m->win_rate * 100);
    printf("  profit factor       %15.3f\n", m->profit_factor);
}

typedef struct wf_mc_opts_s {
    uint64_t paths;
    uint64_t seed;
    int seed_given;
    double ruin;
    qb_mc_basis_t basis;
} wf_mc_opts_t;

static void wf_mc_print(const wf_mc_opts_t *mo, const qb_mc_result_t *r, size_t n) {
    if (!r) {
        printf("\nMonte Carlo: no trades to resample\n");
        return;
    }
    printf("\nMonte Carlo: %llu paths of %llu trades resampled from %zu (%s returns), "
           "seed %llu%s\n",
           (unsigned long long)r->paths, (unsigned long long)r->trades_per_path, n,
           mo->basis == QB_MC_EQUITY ? "equity" : "notional", (unsigned long long)r->seed,
           mo->seed_given ? "" : " (chosen; --mc-seed repeats it)");
    printf("  %-14s %9s %9s %9s %9s %9s %9s %9s\n", "", "mean", "p5", "p25", "p50", "p75", "p95",
           "worst");
    printf("  %-14s %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%%\n", "final return",
           r->final_return.mean * 100, r->final_return.q[1] * 100, r->final_return.q[3] * 100,
           r->final_return.q[4] * 100, r->final_return.q[5] * 100, r->final_return.q[7] * 100,
           r->final_return.min * 100);
    printf("  %-14s %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%% %8.2f%%\n", "max drawdown",
           r->max_dd.mean * 100, r->max_dd.q[1] * 100, r->max_dd.q[3] * 100, r->max_dd.q[4] * 100,
           r->max_dd.q[5] * 100, r->max_dd.q[7] * 100, r->max_dd.max * 100);
    printf("  probability of ruin (equity at or below %.0f%% of the start at any point): "
           "%.2f%%; of a loss: %.2f%%\n",
           mo->ruin * 100, r->prob_ruin * 100, r->prob_loss * 100);
}

static void wf_mc_json(const qb_mc_result_t *r) {
    char buf[4096];
    if (!r || qb_mc_result_json(r, buf, sizeof buf) >= sizeof buf) {
        printf(",\"monte_carlo\":null");
        return;
    }
    printf(",\"monte_carlo\":%s", buf);
}

/* The strategy parameters of each combination (up to 100000 of them), before
 * reading any data: exit 2 when every one is refused (the first message
 * says why); refused ones among valid ones are reported in the results. */
static int wf_check_combos(const char *cmd, const qb_search_t *space, const qb_bt_config_t *cfg) {
    uint64_t n = qb_search_ncombos(space);
    if (n > 100000) return 0;
    qb_bt_config_t *c = malloc(sizeof *c);
    if (!c) return 1;
    char first[1024] = "", err[1024];
    uint64_t ok = 0;
    for (uint64_t i = 0; i < n && !ok; i++) {
        qb_strategy_t *s = NULL;
        qb_err_t e = qb_search_apply(space, i, cfg, c, err, sizeof err);
        if (e == QB_OK)
            e = qb_strategy_new(c->strategies[0].kind, c->strategies[0].params, &s, err, sizeof err);
        if (e == QB_OK) ok++;
        else if (!first[0]) {
            char pj[512];
            qb_search_combo_json(space, i, pj, sizeof pj);
            snprintf(first, sizeof first, "%.400s: %.500s", pj, err);
        }
        qb_strategy_destroy(s);
    }
    free(c);
    if (ok) return 0;
    fprintf(stderr, "qbctl %s: --params/--grid: every combination is refused, e.g. %s\n", cmd,
            first);
    return 2;
}

static uint64_t wf_pick_seed(void) {
    uint64_t x = (uint64_t)qb_time_now() ^ ((uint64_t)getpid() << 32);
    qb_mc_rng_t r;
    qb_mc_rng_seed(&r, x);
    return qb_mc_rng_next(&r) >> 16; /* short enough to type */
}

static int wf_parse_u64(const char *cmd, const char *opt, const char *v, uint64_t *out) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-') {
        char m[256];
        snprintf(m, sizeof m, "%s: '%s' is not a non-negative integer", opt, v);
        return wf_usage(cmd, m);
    }
    *out = x;
    return 0;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int wf_main(const char *cmd, int argc, char **argv) {
    int wf = !strcmp(cmd, "walkforward");
    const char *files[WF_MAX_FILES];
    int nfiles = 0;
    const char *sets[256], *params_list[QB_SEARCH_MAX_PARAMS + 1];
    int nsets = 0, nparams = 0;
    const char *strategy = NULL, *params = "", *timeframe = "1d", *grid = NULL;
    const char *report_json = NULL, *progress = "auto", *objective = "sharpe";
    qbctl_csv_opts_t co = {"auto", NULL, NULL, 0};
    int json = 0, trades = 0, partial = 1, threads = 0;
    uint64_t random_n = 0, seed = 0, top = 20, min_trades = 0;
    int seed_given = 0;
    wf_mc_opts_t mo = {0, 0, 0, 0.5, QB_MC_EQUITY};
    qb_wf_spec_t spec;
    qb_wf_spec_default(&spec);
    qb_bt_config_t *cfg = malloc(sizeof *cfg);
    if (!cfg) return 1;
    qb_bt_config_default(cfg);
    char err[1024];
    int rc = 2;
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
    static const struct {
        const char *opt, *key;
    } wmap[] = {{"--is", "is"}, {"--oos", "oos"}, {"--step", "step"}, {"--mode", "mode"}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            wf_usage(cmd, "help");
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--long-only")) { cfg->long_only = 1; continue; }
        if (!strcmp(a, "--stop-exits")) { cfg->stop_exits = 1; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--trades")) { trades = 1; continue; }
        if (wf && !strcmp(a, "--no-partial")) { partial = 0; continue; }
        if (!val) {
            snprintf(err, sizeof err, "unknown option '%s' or missing value", a);
            rc = wf_usage(cmd, err);
            goto out;
        }
        int done = 0;
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (!strcmp(a, map[k].opt)) {
                char m[512];
                if (qb_bt_config_set(cfg, map[k].key, val, m, sizeof m) != QB_OK) {
                    fprintf(stderr, "qbctl %s: %s: %s\n", cmd, a, m);
                    goto out;
                }
                done = 1;
            }
        for (size_t k = 0; wf && k < sizeof wmap / sizeof wmap[0]; k++)
            if (!strcmp(a, wmap[k].opt)) {
                char m[512];
                if (qb_wf_spec_set(&spec, wmap[k].key, val, m, sizeof m) != QB_OK) {
                    fprintf(stderr, "qbctl %s: %s: %s\n", cmd, a, m);
                    goto out;
                }
                done = 1;
            }
        i++;
        if (done) continue;
        if (!strcmp(a, "--csv")) {
            if (nfiles == WF_MAX_FILES) { rc = wf_usage(cmd, "too many --csv"); goto out; }
            files[nfiles++] = val;
        } else if (!strcmp(a, "--set")) {
            if (nsets == 256) { rc = wf_usage(cmd, "too many --set"); goto out; }
            sets[nsets++] = val;
        } else if (!strcmp(a, "--param")) {
            if (nparams == QB_SEARCH_MAX_PARAMS) { rc = wf_usage(cmd, "too many --param"); goto out; }
            params_list[nparams++] = val;
        } else if (!strcmp(a, "--commission-pct")) {
            char spec_c[96], m[512];
            snprintf(spec_c, sizeof spec_c, "percent:%s", val);
            if (qb_bt_config_set(cfg, "commission", spec_c, m, sizeof m) != QB_OK) {
                fprintf(stderr, "qbctl %s: --commission-pct: %s\n", cmd, m);
                goto out;
            }
        } else if (!strcmp(a, "--strategy")) strategy = val;
        else if (!strcmp(a, "--params")) params = val;
        else if (!strcmp(a, "--grid")) grid = val;
        else if (!strcmp(a, "--objective")) objective = val;
        else if (!strcmp(a, "--timeframe")) timeframe = val;
        else if (!strcmp(a, "--input-format")) co.in_format = val;
        else if (!strcmp(a, "--time-format")) co.tfmt = val;
        else if (!strcmp(a, "--columns")) co.columns = argv[i];
        else if (!strcmp(a, "--report-json")) report_json = val;
        else if (!strcmp(a, "--progress")) progress = val;
        else if (!strcmp(a, "--delimiter")) {
            if (!strcmp(val, "\\t") || !strcmp(val, "tab")) co.delim = '\t';
            else if (strlen(val) == 1) co.delim = val[0];
            else { rc = wf_usage(cmd, "--delimiter takes one character (or tab)"); goto out; }
        } else if (!strcmp(a, "--random")) {
            if ((rc = wf_parse_u64(cmd, a, val, &random_n)) != 0) goto out;
            if (!random_n) { rc = wf_usage(cmd, "--random must be >= 1"); goto out; }
        } else if (!strcmp(a, "--seed")) {
            if ((rc = wf_parse_u64(cmd, a, val, &seed)) != 0) goto out;
            seed_given = 1;
        } else if (!strcmp(a, "--min-trades")) {
            if ((rc = wf_parse_u64(cmd, a, val, &min_trades)) != 0) goto out;
        } else if (!strcmp(a, "--threads")) {
            uint64_t t;
            if ((rc = wf_parse_u64(cmd, a, val, &t)) != 0) goto out;
            threads = t > 256 ? 256 : (int)t;
        } else if (!wf && !strcmp(a, "--top")) {
            if ((rc = wf_parse_u64(cmd, a, val, &top)) != 0) goto out;
        } else if (!strcmp(a, "--mc")) {
            if ((rc = wf_parse_u64(cmd, a, val, &mo.paths)) != 0) goto out;
        } else if (!strcmp(a, "--mc-seed")) {
            if ((rc = wf_parse_u64(cmd, a, val, &mo.seed)) != 0) goto out;
            mo.seed_given = 1;
        } else if (!strcmp(a, "--ruin")) {
            char *end;
            mo.ruin = strtod(val, &end);
            if (!*val || *end || !(mo.ruin > 0 && mo.ruin <= 1)) {
                rc = wf_usage(cmd, "--ruin is a fraction of the starting equity in (0, 1]");
                goto out;
            }
        } else if (!strcmp(a, "--mc-basis")) {
            if (!strcmp(val, "equity")) mo.basis = QB_MC_EQUITY;
            else if (!strcmp(val, "notional")) mo.basis = QB_MC_NOTIONAL;
            else { rc = wf_usage(cmd, "--mc-basis must be equity or notional"); goto out; }
        } else {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            rc = wf_usage(cmd, err);
            goto out;
        }
    }
    rc = 2;
    if (!nfiles) { rc = wf_usage(cmd, "--csv is required"); goto out; }
    if (!strategy) { rc = wf_usage(cmd, "--strategy is required"); goto out; }
    if (strcmp(progress, "auto") && strcmp(progress, "always") && strcmp(progress, "never")) {
        rc = wf_usage(cmd, "--progress must be auto, always or never");
        goto out;
    }
    for (int k = 0; k < nsets; k++) {
        char key[64], m[512];
        const char *eq = strchr(sets[k], '=');
        if (!eq || eq == sets[k] || (size_t)(eq - sets[k]) >= sizeof key) {
            rc = wf_usage(cmd, "--set takes KEY=VALUE");
            goto out;
        }
        memcpy(key, sets[k], (size_t)(eq - sets[k]));
        key[eq - sets[k]] = 0;
        if (qb_bt_config_set(cfg, key, eq + 1, m, sizeof m) != QB_OK) {
            fprintf(stderr, "qbctl %s: --set %s: %s\n", cmd, sets[k], m);
            goto out;
        }
    }
    if (qb_bt_config_add_strategy(cfg, strategy, params, "", err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: --strategy: %s\n", cmd, err);
        goto out;
    }
    if (qb_bt_config_validate(cfg, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        goto out;
    }
    { /* the kind, before reading anything; parameters are checked per combination below */
        qb_strategy_t *s = NULL;
        if (qb_strategy_new(strategy, NULL, &s, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl %s: --strategy: %s\n", cmd, err);
            goto out;
        }
        qb_strategy_destroy(s);
    }
    if (!strcmp(cmd, "walkforward")) {
        char m[512];
        if (qb_wf_spec_set(&spec, "partial_last", partial ? "true" : "false", m, sizeof m) !=
            QB_OK)
            goto out;
    }
    qb_search_objective_t obj;
    if (qb_search_objective_set(&obj, objective, (int64_t)min_trades, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: --objective: %s\n", cmd, err);
        goto out;
    }
    spec.objective = obj;
    if (wf && qb_wf_spec_validate(&spec, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        goto out;
    }

    qb_search_t *space = NULL;
    qb_bt_data_t *d = NULL;
    qb_wf_plan_t *plan = NULL;
    qb_wf_result_t *res = NULL;
    qb_search_score_t *ranked = NULL;
    qb_bt_result_t *best_run = NULL;
    double *rets = NULL;
    size_t nret = 0;
    qb_mc_result_t mcr;
    int have_mc = 0;
    int64_t rejects = 0;
    const qb_bt_point_t *mc_eq = NULL;
    size_t mc_neq = 0, mc_ntr = 0;
    qb_bt_trade_t *mc_tr = NULL;
    wf_prog_t prog = {0, 0, 0, wf ? "units" : "combinations"};
    if (qb_search_new(&space) != QB_OK) { rc = 1; goto out; }
    if (grid && qb_search_parse(space, grid, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: --grid: %s\n", cmd, err);
        goto done;
    }
    for (int k = 0; k < nparams; k++)
        if (qb_search_parse(space, params_list[k], err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl %s: --param: %s\n", cmd, err);
            goto done;
        }
    if (random_n) {
        if (!seed_given) seed = wf_pick_seed();
        if (qb_search_sample(space, random_n, seed, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl %s: --random: %s\n", cmd, err);
            goto done;
        }
    }
    if (mo.paths && !mo.seed_given) mo.seed = wf_pick_seed();
    if ((rc = wf_check_combos(cmd, space, cfg)) != 0) goto done;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }

    if (qb_bt_data_new(timeframe, &d, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: --timeframe: %s\n", cmd, err);
        goto done;
    }
    if ((rc = qbctl_bt_load(cmd, d, files, nfiles, timeframe, &co, &rejects)) != 0) goto done;
    rc = 1;
    prog.started = qb_time_mono_ns();
    prog.on = !strcmp(progress, "always") || (!strcmp(progress, "auto") && isatty(STDERR_FILENO));

    if (wf) {
        qb_err_t e = qb_wf_plan_new(d, cfg, space, &spec, &plan, err, sizeof err);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl %s: %s\n", cmd, err);
            rc = e == QB_ERR_INVALID ? 2 : 1;
            goto done;
        }
        e = qb_wf_run(plan, d, threads, wf_progress, &prog, &res, err, sizeof err);
        if (prog.drawn) fputc('\n', stderr);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl %s: %s\n", cmd, err);
            goto done;
        }
        size_t ntr;
        const qb_wf_trade_t *wt = qb_wf_result_trades(res, &ntr);
        mc_eq = qb_wf_result_equity(res, &mc_neq);
        mc_tr = calloc(ntr ? ntr : 1, sizeof *mc_tr);
        if (!mc_tr) goto done;
        for (size_t i = 0; i < ntr; i++) {
            mc_tr[i] = wt[i].t;
            mc_tr[i].net_pnl = wt[i].scaled_pnl; /* on the stitched curve */
            mc_tr[i].open = 0;
        }
        mc_ntr = ntr;
    } else {
        size_t n;
        qb_err_t e = qb_search_run(d, cfg, space, &obj, threads, wf_progress, &prog, &ranked, &n,
                                   err, sizeof err);
        if (prog.drawn) fputc('\n', stderr);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl %s: %s\n", cmd, err);
            goto done;
        }
        if (mo.paths && n && ranked[0].eligible) { /* the best combination's trades */
            qb_bt_config_t *bc = malloc(sizeof *bc);
            if (!bc) goto done;
            if (qb_search_apply(space, ranked[0].combo, cfg, bc, err, sizeof err) != QB_OK ||
                (bc->benchmark = 0, qb_bt_run(d, bc, &best_run, err, sizeof err)) != QB_OK) {
                free(bc);
                fprintf(stderr, "qbctl %s: %s\n", cmd, err);
                goto done;
            }
            free(bc);
            const qb_bt_trade_t *bt = qb_bt_result_trades(best_run, &mc_ntr);
            mc_eq = qb_bt_result_equity(best_run, &mc_neq);
            mc_tr = calloc(mc_ntr ? mc_ntr : 1, sizeof *mc_tr);
            if (!mc_tr) goto done;
            if (mc_ntr) memcpy(mc_tr, bt, mc_ntr * sizeof *bt);
        }
    }
    if (mo.paths) {
        rets = calloc(mc_ntr ? mc_ntr : 1, sizeof *rets);
        if (!rets) goto done;
        nret = qb_mc_returns_from_trades(mc_tr, mc_ntr, mc_eq, mc_neq, cfg->cash, mo.basis, 0,
                                         rets, mc_ntr);
        if (nret) {
            qb_mc_config_t mc;
            qb_mc_config_default(&mc);
            mc.paths = mo.paths;
            mc.seed = mo.seed;
            mc.ruin_level = mo.ruin;
            mc.threads = threads;
            if (qb_mc_run(rets, nret, &mc, &mcr, err, sizeof err) != QB_OK) {
                fprintf(stderr, "qbctl %s: --mc: %s\n", cmd, err);
                goto done;
            }
            have_mc = 1;
        }
    }
    free(mc_tr);
    mc_tr = NULL;

    if (wf) {
        if (json) {
            char *buf = NULL;
            size_t len = 0;
            FILE *mf = open_memstream(&buf, &len);
            if (!mf) goto done;
            unsigned fl = trades ? QB_WF_JSON_TRADES : 0;
            qb_err_t e = qb_wf_result_json(res, fl, mf);
            fclose(mf);
            if (e != QB_OK || len < 2) {
                free(buf);
                goto done;
            }
            while (len && (buf[len - 1] == '\n' || buf[len - 1] == '}')) {
                int brace = buf[len - 1] == '}';
                buf[--len] = 0;
                if (brace) break;
            }
            fputs(buf, stdout);
            free(buf);
            if (mo.paths) wf_mc_json(have_mc ? &mcr : NULL);
            printf("}\n");
        } else {
            const qb_wf_spec_t *sp = qb_wf_plan_spec(plan);
            char sj[512];
            qb_wf_spec_json(sp, sj, sizeof sj);
            size_t nsteps;
            qb_wf_plan_steps(plan, &nsteps);
            const qb_search_t *ss = qb_wf_plan_space(plan);
            printf("walk-forward %s over %zu time steps: %zu windows x %llu combinations%s",
                   sp->mode == QB_WF_ANCHORED ? "anchored" : "rolling", nsteps,
                   qb_wf_plan_nwindows(plan), (unsigned long long)qb_wf_plan_ncombos(plan),
                   qb_search_is_sampled(ss) ? "" : " (grid)");
            if (qb_search_is_sampled(ss))
                printf(" (random from a grid of %llu, seed %llu%s)",
                       (unsigned long long)qb_search_grid_size(ss), (unsigned long long)seed,
                       seed_given ? "" : "; --seed repeats it");
            printf("\n  spec %s\n  plan fingerprint %016llx\n", sj,
                   (unsigned long long)qb_wf_plan_fingerprint(plan));
            printf("\n%4s %-10s %-10s %-10s %10s %10s %9s %6s  %s\n", "win", "IS from",
                   "OOS from", "OOS last", "IS obj", "OOS obj", "OOS ret", "trades",
                   "params (IS/OOS objective: the metric; trades: OOS)");
            for (uint32_t w = 0; w < qb_wf_result_nwindows(res); w++) {
                const qb_wf_window_result_t *x = qb_wf_result_window(res, w);
                char a[32], b[32], c[32], pj[512];
                wf_date(x->win.is_from, a, sizeof a);
                wf_date(x->win.oos_from, b, sizeof b);
                wf_date(qb_wf_plan_steps(plan, &nsteps)[x->win.oos_end - 1], c, sizeof c);
                qb_wf_result_combo_json(res, w, pj, sizeof pj);
                const char *part = x->win.partial ? " (partial window)" : "";
                if (x->combo < 0)
                    printf("%4u %-10s %-10s %-10s %10s %10s %9s %6s  not traded: no combination "
                           "with >= %lld in-sample trades%s\n",
                           w, a, b, c, "-", "-", "-", "-", (long long)obj.min_trades, part);
                else
                    printf("%4u %-10s %-10s %-10s %10.3f %10.3f %8.2f%% %6lld  %s%s\n", w, a, b,
                           c, x->is_best.objective, x->oos_objective, x->oos.total_return * 100,
                           (long long)x->oos_trades, pj, part);
            }
            const qb_bt_metrics_t *m = qb_wf_result_metrics(res);
            printf("\nout-of-sample aggregate (%lld steps, stitched by chaining returns):\n",
                   (long long)m->bars);
            wf_print_metric_rows(m);
            printf("\nparameter stability over %u selected windows:\n",
                   qb_wf_result_nparams(res) ? qb_wf_result_stability(res, 0)->selected : 0);
            for (size_t p = 0; p < qb_wf_result_nparams(res); p++) {
                const qb_wf_stability_t *st = qb_wf_result_stability(res, p);
                printf("  %-16s distinct %u, changes %u, mode %s (%.0f%%)", st->name, st->distinct,
                       st->changes, st->mode, st->mode_share * 100);
                if (st->numeric)
                    printf(", mean %.4g, stdev %.4g, cv %.3f, range %.4g..%.4g", st->mean,
                           st->stdev, st->cv, st->min, st->max);
                putchar('\n');
            }
            double im, om, ef;
            qb_wf_result_objectives(res, &im, &om, &ef);
            printf("  whole set: %u changes, %u distinct; mean %s IS %.3f, OOS %.3f, "
                   "efficiency (OOS/IS) %.3f\n",
                   qb_wf_result_set_changes(res), qb_wf_result_distinct_sets(res), obj.metric, im,
                   om, ef);
            if (trades) {
                size_t ntr;
                const qb_wf_trade_t *t = qb_wf_result_trades(res, &ntr);
                printf("\n%4s %-8s %-5s %-10s %-10s %12s %12s %12s %14s\n", "win", "symbol",
                       "side", "entry", "exit", "qty", "entry px", "exit px", "P&L (stitched)");
                for (size_t i = 0; i < ntr; i++) {
                    char a[32], b[32], q[QB_DEC_STRLEN], ep[QB_DEC_STRLEN], xp[QB_DEC_STRLEN],
                        pl[QB_DEC_STRLEN];
                    wf_date(t[i].t.entry_ts, a, sizeof a);
                    wf_date(t[i].t.exit_ts, b, sizeof b);
                    qb_dec_format(t[i].t.qty, q, sizeof q);
                    qb_dec_format(t[i].t.entry_price, ep, sizeof ep);
                    qb_dec_format(t[i].t.exit_price, xp, sizeof xp);
                    qb_dec_format_fixed(t[i].scaled_pnl, 2, pl, sizeof pl);
                    printf("%4u %-8s %-5s %-10s %-10s %12s %12s %12s %14s%s\n", t[i].window,
                           qb_wf_result_symbol(res, t[i].t.sym), t[i].t.dir > 0 ? "long" : "short",
                           a, b, q, ep, xp, pl, t[i].cut ? " cut" : "");
                }
            }
        }
        if (report_json) {
            FILE *f = fopen(report_json, "w");
            if (!f || qb_wf_result_json(res, QB_WF_JSON_EQUITY | QB_WF_JSON_TRADES, f) != QB_OK) {
                fprintf(stderr, "qbctl %s: cannot write %s\n", cmd, report_json);
                if (f) fclose(f);
                goto done;
            }
            if (fclose(f) != 0) {
                fprintf(stderr, "qbctl %s: cannot write %s\n", cmd, report_json);
                goto done;
            }
        }
    } else {
        size_t n = (size_t)qb_search_ncombos(space);
        size_t show = json ? n : (top < n ? (size_t)top : n);
        if (json) {
            printf("{\"combos\":%zu,\"grid_size\":%llu,\"sampled\":%s,\"seed\":%llu,"
                   "\"objective\":\"%s\",\"min_trades\":%lld,\"ranking\":[",
                   n, (unsigned long long)qb_search_grid_size(space),
                   qb_search_is_sampled(space) ? "true" : "false",
                   (unsigned long long)qb_search_seed(space), obj.metric,
                   (long long)obj.min_trades);
            char *mb = malloc(16384);
            if (!mb) goto done;
            for (size_t i = 0; i < show; i++) {
                char pj[1024];
                qb_search_combo_json(space, ranked[i].combo, pj, sizeof pj);
                printf("%s{\"rank\":%zu,\"combo\":%llu,\"params\":%s,\"valid\":%s,\"eligible\":%s,"
                       "\"trades\":%lld,\"objective\":",
                       i ? "," : "", i + 1, (unsigned long long)ranked[i].combo, pj,
                       ranked[i].valid ? "true" : "false", ranked[i].eligible ? "true" : "false",
                       (long long)ranked[i].trades);
                if (ranked[i].valid && isfinite(ranked[i].objective))
                    printf("%.10g", ranked[i].objective);
                else
                    printf("null");
                if (ranked[i].valid && qb_bt_metrics_json(&ranked[i].metrics, mb, 16384) < 16384)
                    printf(",\"metrics\":%s}", mb);
                else {
                    printf(",\"error\":");
                    char eb[2 * QB_SEARCH_ERROR_MAX + 8];
                    size_t k = 0;
                    eb[k++] = '"';
                    for (const char *c = ranked[i].error; *c && k < sizeof eb - 3; c++) {
                        if (*c == '"' || *c == '\\') eb[k++] = '\\';
                        eb[k++] = (unsigned char)*c < 0x20 ? ' ' : *c;
                    }
                    eb[k++] = '"';
                    eb[k] = 0;
                    printf("%s}", eb);
                }
            }
            free(mb);
            printf("]");
            if (mo.paths) wf_mc_json(have_mc ? &mcr : NULL);
            printf("}\n");
        } else {
            printf("%s search: %zu combinations", qb_search_is_sampled(space) ? "random" : "grid",
                   n);
            if (qb_search_is_sampled(space))
                printf(" of a grid of %llu, seed %llu%s",
                       (unsigned long long)qb_search_grid_size(space), (unsigned long long)seed,
                       seed_given ? "" : " (--seed repeats it)");
            printf("; objective %s%s, min trades %lld\n\n", obj.metric,
                   obj.higher ? "" : " (lower is better)", (long long)obj.min_trades);
            printf("%4s %10s %9s %9s %8s %6s  %s\n", "rank", obj.metric, "return", "max dd",
                   "sharpe", "trades", "params");
            for (size_t i = 0; i < show; i++) {
                char pj[1024];
                qb_search_combo_json(space, ranked[i].combo, pj, sizeof pj);
                const qb_search_score_t *s = &ranked[i];
                if (!s->valid)
                    printf("%4zu %10s %9s %9s %8s %6s  %s refused: %s\n", i + 1, "-", "-", "-",
                           "-", "-", pj, s->error);
                else
                    printf("%4zu %10.4g %8.2f%% %8.2f%% %8.3f %6lld  %s%s\n", i + 1, s->objective,
                           s->metrics.total_return * 100, s->metrics.max_dd_pct * 100,
                           s->metrics.sharpe, (long long)s->trades, pj,
                           s->eligible ? "" : "  (not eligible)");
            }
            if (show < n) printf("... %zu more (--top N)\n", n - show);
        }
        if (report_json) {
            FILE *f = fopen(report_json, "w");
            if (!f) {
                fprintf(stderr, "qbctl %s: cannot write %s\n", cmd, report_json);
                goto done;
            }
            fprintf(f, "[");
            for (size_t i = 0; i < n; i++) {
                char sj[QB_SEARCH_SCORE_JSON_MAX];
                qb_search_score_json(&ranked[i], sj, sizeof sj);
                fprintf(f, "%s%s", i ? ",\n" : "", sj);
            }
            fprintf(f, "]\n");
            if (fclose(f) != 0) {
                fprintf(stderr, "qbctl %s: cannot write %s\n", cmd, report_json);
                goto done;
            }
        }
    }
    if (mo.paths && !json) wf_mc_print(&mo, have_mc ? &mcr : NULL, nret);
    rc = rejects ? 1 : 0;
done:
    free(mc_tr);
    free(rets);
    if (have_mc) qb_mc_result_free(&mcr);
    qb_bt_result_destroy(best_run);
    free(ranked);
    qb_wf_result_destroy(res);
    qb_wf_plan_destroy(plan);
    qb_bt_data_destroy(d);
    qb_search_destroy(space);
out:
    free(cfg);
    return rc;
}

int qbctl_walkforward(int argc, char **argv) { return wf_main("walkforward", argc, argv); }
int qbctl_optimize(int argc, char **argv) { return wf_main("optimize", argc, argv); }
