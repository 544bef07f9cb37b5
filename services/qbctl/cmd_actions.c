/* cmd_actions.c — corporate actions and adjusted bars from the command line:
 *
 *   qbctl actions import --csv FILE --symbol SYM [--asset-class C] [--source S]
 *       Read FILE (date,kind,value; libs/md/qb_md_actions_csv.h) and upsert
 *       its splits and dividends into md.corporate_actions. Rejected lines
 *       go to stderr as "FILE:LINE: reason" (the first 20, then a count)
 *       and then NOTHING is stored, exit 1: a half-imported action list
 *       would silently give wrong adjusted prices, and the file is small
 *       enough to fix and re-run. Re-importing the same file is idempotent.
 *   qbctl actions list SYM
 *       The stored actions as the same CSV (re-importable).
 *   qbctl bars SYM [--from D] [--to D] [--timeframe 1d] [--adjust raw|split|total]
 *       Stored bars as CSV time,open,high,low,close,volume, adjusted on read
 *       (libs/md/qb_md_adjust.h); --from/--to are dates or ISO times, bar
 *       open times in [from, to) like every qbctl range (replay, data gaps). Skipped
 *       dividends are reported on stderr.
 *
 * Exit: 0 success, 1 rejects, an unknown symbol or an error, 2 usage.
 * main.c dispatches both "actions" and "bars" here (argv[0] tells which). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_actions_csv.h"
#include "md/qb_md_adjust.h"
#include "md/qb_md_store.h"
#include "qbctl.h"
#include "store/qb_store.h"

#define ACTIONS_SHOW_REJECTS 20

static int actions_usage(const char *msg) {
    fprintf(stderr,
            "qbctl: %s\n"
            "usage: qbctl actions import --csv FILE --symbol SYM [--asset-class equity] [--source NAME]\n"
            "       qbctl actions list SYM\n"
            "       qbctl bars SYM [--from D] [--to D] [--timeframe 1d] [--adjust raw|split|total]\n",
            msg);
    return 2;
}

typedef struct rej_ctx_s {
    size_t shown;
} rej_ctx_t;

static void actions_reject(void *opaque, const char *where, const char *reason) {
    rej_ctx_t *c = opaque;
    if (c->shown < ACTIONS_SHOW_REJECTS) fprintf(stderr, "%s: %s\n", where, reason);
    c->shown++;
}

/* Open the store and check the md schema; NULL (message printed) on error. */
static qb_store_t *actions_store(const char *cmd) {
    char err[1024];
    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qbctl %s: QB_PG_DSN: %s\n", cmd, err);
        return NULL;
    }
    if (qb_md_store_check_schema(s, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        qb_store_destroy(s);
        return NULL;
    }
    return s;
}

/* 1 when `symbol` is in md.assets, 0 when not (message printed), -1 on error. */
static int actions_known(qb_store_t *s, const char *cmd, const char *symbol) {
    char err[1024];
    qb_symbol_t sym;
    if (qb_symbol_set(&sym, symbol, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        return -1;
    }
    const char *p[1] = {sym.s};
    PGresult *r = NULL;
    if (qb_store_query(s, "SELECT 1 FROM md.assets WHERE symbol = $1", 1, p, &r, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        return -1;
    }
    int known = PQntuples(r) > 0;
    PQclear(r);
    if (!known) fprintf(stderr, "qbctl %s: unknown symbol %s (nothing imported for it)\n", cmd, sym.s);
    return known;
}

static int actions_import(int argc, char **argv) {
    const char *csv = NULL, *symbol = NULL, *asset_class = "equity", *source = "csv";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = strcmp(a, "--csv") == 0           ? &csv
                           : strcmp(a, "--symbol") == 0      ? &symbol
                           : strcmp(a, "--asset-class") == 0 ? &asset_class
                           : strcmp(a, "--source") == 0      ? &source
                                                             : NULL;
        char m[300];
        if (!dst) {
            snprintf(m, sizeof m, "actions import: unknown option '%s'", a);
            return actions_usage(m);
        }
        if (!val) {
            snprintf(m, sizeof m, "actions import: option %s needs a value", a);
            return actions_usage(m);
        }
        *dst = val;
        i++;
    }
    if (!csv || !symbol) return actions_usage("actions import: --csv and --symbol are required");
    char err[1024];
    qb_md_action_t *acts = NULL;
    size_t n = 0, rejected = 0;
    rej_ctx_t rc;
    memset(&rc, 0, sizeof rc);
    if (qb_md_actions_csv_read(csv, &acts, NULL, &n, &rejected, actions_reject, &rc, err, sizeof err) !=
        QB_OK) {
        fprintf(stderr, "qbctl actions import: %s\n", err);
        return 1;
    }
    if (rc.shown > ACTIONS_SHOW_REJECTS)
        fprintf(stderr, "... and %zu more rejected lines\n", rc.shown - ACTIONS_SHOW_REJECTS);
    if (rejected) {
        fprintf(stderr, "qbctl actions import: %s: %zu line%s rejected, nothing stored "
                        "(fix the file and run again)\n",
                csv, rejected, rejected == 1 ? "" : "s");
        printf("%s %s: actions %zu, rejected %zu, stored 0\n", csv, symbol, n, rejected);
        free(acts);
        return 1;
    }
    qb_store_t *s = actions_store("actions import");
    if (!s) {
        free(acts);
        return 1;
    }
    size_t splits = 0;
    for (size_t i = 0; i < n; i++) splits += acts[i].kind == QB_MD_ACTION_SPLIT;
    int ret = 0;
    if (qb_md_actions_put(s, symbol, asset_class, acts, n, source, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl actions import: %s\n", err);
        ret = 1;
    } else {
        printf("%s %s: actions %zu (splits %zu, dividends %zu), rejected 0, stored %zu\n", csv, symbol,
               n, splits, n - splits, n);
    }
    free(acts);
    qb_store_destroy(s);
    return ret;
}

static int actions_list(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') return actions_usage("actions list: want exactly one SYMBOL");
    qb_store_t *s = actions_store("actions list");
    if (!s) return 1;
    int known = actions_known(s, "actions list", argv[1]);
    if (known <= 0) {
        qb_store_destroy(s);
        return 1;
    }
    char err[1024];
    qb_md_action_t *a = NULL;
    size_t n = 0;
    if (qb_md_actions_read(s, argv[1], 0, 0, &a, &n, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl actions list: %s\n", err);
        qb_store_destroy(s);
        return 1;
    }
    printf("date,kind,value\n");
    for (size_t i = 0; i < n; i++) {
        char d[QB_TIME_STRLEN], v[QB_DEC_STRLEN + 32];
        qb_time_format(a[i].ex_date, d, sizeof d);
        d[10] = '\0';
        if (a[i].kind == QB_MD_ACTION_SPLIT) qb_md_split_format(a[i].num, a[i].den, v, sizeof v);
        else qb_dec_format(a[i].amount, v, sizeof v);
        printf("%s,%s,%s\n", d, a[i].kind == QB_MD_ACTION_SPLIT ? "split" : "dividend", v);
    }
    free(a);
    qb_store_destroy(s);
    return 0;
}

/* A date (YYYY-MM-DD) or ISO time; `end` makes it the exclusive bound just
 * after it (the next midnight for a date, +1 ns for a time). */
static int bars_time(const char *opt, const char *val, qb_time_t *out) {
    char err[256];
    size_t len = strlen(val);
    if (qb_time_parse_ex(val, len, out, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl bars: %s '%s': %s\n", opt, val, err);
        return -1;
    }
    return 0;
}

static int bars_cmd(int argc, char **argv) {
    const char *symbol = NULL, *from_s = NULL, *to_s = NULL, *tf = "1d", *adjust = "raw";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            if (symbol) return actions_usage("bars: one SYMBOL only");
            symbol = a;
            continue;
        }
        const char **dst = strcmp(a, "--from") == 0        ? &from_s
                           : strcmp(a, "--to") == 0        ? &to_s
                           : strcmp(a, "--timeframe") == 0 ? &tf
                           : strcmp(a, "--adjust") == 0    ? &adjust
                                                           : NULL;
        char m[300];
        if (!dst) {
            snprintf(m, sizeof m, "bars: unknown option '%s'", a);
            return actions_usage(m);
        }
        if (!val) {
            snprintf(m, sizeof m, "bars: option %s needs a value", a);
            return actions_usage(m);
        }
        *dst = val;
        i++;
    }
    if (!symbol) return actions_usage("bars: SYMBOL is required");
    qb_md_adjust_mode_t mode;
    if (qb_md_adjust_mode_parse(adjust, &mode) != QB_OK)
        return actions_usage("bars: --adjust must be raw, split or total");
    int64_t tfns;
    if (qb_timeframe_parse(tf, &tfns) != QB_OK)
        return actions_usage("bars: --timeframe must be one of 1m 5m 15m 30m 1h 4h 1d 1w");
    qb_time_t from = 0, to = 0;
    if ((from_s && bars_time("--from", from_s, &from) != 0) || (to_s && bars_time("--to", to_s, &to) != 0))
        return 2;
    if (from == 0 && from_s) from = -1; /* 0 would mean "no bound" */
    if (from && to && to <= from) return actions_usage("bars: --to is before --from");

    qb_store_t *s = actions_store("bars");
    if (!s) return 1;
    int known = actions_known(s, "bars", symbol);
    if (known <= 0) {
        qb_store_destroy(s);
        return 1;
    }
    char err[1024];
    qb_bar_t *b = NULL;
    size_t n = 0;
    qb_md_adjust_stats_t st;
    if (qb_md_read_adjusted(s, symbol, tf, from, to, mode, &b, &n, &st, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl bars: %s\n", err);
        qb_store_destroy(s);
        return 1;
    }
    int daily = tfns % QB_NS_PER_DAY == 0;
    printf("time,open,high,low,close,volume\n");
    for (size_t i = 0; i < n; i++) {
        char t[QB_TIME_STRLEN], v[5][QB_DEC_STRLEN];
        qb_time_format(b[i].ts, t, sizeof t);
        if (daily && b[i].ts % QB_NS_PER_DAY == 0) t[10] = '\0';
        qb_dec_t x[5] = {b[i].open, b[i].high, b[i].low, b[i].close, b[i].volume};
        for (int k = 0; k < 5; k++) qb_dec_format(x[k], v[k], sizeof v[k]);
        printf("%s,%s,%s,%s,%s,%s\n", t, v[0], v[1], v[2], v[3], v[4]);
    }
    if (st.div_no_prev_close)
        fprintf(stderr, "qbctl bars: warning: %zu dividend%s on the first bar skipped (no close before the "
                        "ex-date in the range; start --from earlier)\n",
                st.div_no_prev_close, st.div_no_prev_close == 1 ? "" : "s");
    if (st.div_too_large)
        fprintf(stderr, "qbctl bars: warning: %zu dividend%s not below the previous close skipped (bad data?)\n",
                st.div_too_large, st.div_too_large == 1 ? "" : "s");
    if (n == 0) fprintf(stderr, "qbctl bars: no %s bars of %s in the range\n", tf, symbol);
    free(b);
    qb_store_destroy(s);
    return 0;
}

int qbctl_actions(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "bars") == 0) return bars_cmd(argc, argv);
    if (argc < 2) return actions_usage("actions: want import or list");
    if (strcmp(argv[1], "import") == 0) return actions_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0) return actions_list(argc - 1, argv + 1);
    char m[300];
    snprintf(m, sizeof m, "actions: unknown subcommand '%s' (import or list)", argv[1]);
    return actions_usage(m);
}
