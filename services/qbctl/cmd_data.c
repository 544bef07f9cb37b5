/* cmd_data.c — `qbctl data SUBCOMMAND`: questions about the stored bars.
 *
 *   qbctl data gaps SYMBOL [--timeframe 1d] [--from D] [--to D]
 *                   [--calendar XNYS|24x7]
 *     The bars the exchange calendar expects over [from, to) that are not
 *     stored, merged into spans (cal/qb_cal.h, qb_cal_gaps: nights,
 *     weekends and holidays inside a span do not break it, and are never
 *     counted as missing). One line per span on stdout:
 *         FROM TO BARS
 *     where [FROM, TO) is the range to fetch to fill it (dates for 1d,
 *     RFC 3339 UTC times otherwise) and BARS the number of missing bars; a
 *     summary on stderr. Defaults: from = the first stored bar, to = the end
 *     of the last one (so only holes inside the stored history show; give
 *     --to to see the missing tail); calendar from the asset class (equity,
 *     etf -> XNYS; crypto -> 24x7; others need --calendar).
 *     Exit 0 (whether or not there are gaps), 1 error (unknown symbol ...),
 *     2 usage.
 *
 * Stored times are read with the replay reader (keyset pages, bounded
 * memory while reading); only the bar times (8 bytes a bar) are kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal/qb_cal.h"
#include "core/qb_time.h"
#include "md/qb_md_gaps.h"
#include "md/qb_md_store.h"
#include "qbctl.h"
#include "store/qb_store.h"

static int data_usage(const char *msg) {
    fprintf(stderr,
            "qbctl data: %s\n"
            "usage: qbctl data gaps SYMBOL [--timeframe 1d] [--from D] [--to D]\n"
            "         [--calendar XNYS|24x7]\n"
            "       qbctl data resample SYMBOL --to-tf 5m|15m|1h|1d [--from-tf 1m] [--from D]\n"
            "         [--to D] [--calendar XNYS|24x7] [--no-publish]\n"
            "  builds the missing longer bars from stored shorter ones (session-aware)\n"
            "  lists the missing spans of stored bars vs the exchange calendar, one per\n"
            "  line: FROM TO BARS ([FROM, TO) is the range to fetch)\n",
            msg);
    return 2;
}

static void data_fmt(qb_time_t t, int daily, char *buf, size_t cap) {
    qb_time_format(t, buf, cap);
    if (daily && cap > 10) buf[10] = '\0'; /* YYYY-MM-DD */
}

static int data_gaps(int argc, char **argv) {
    const char *symbol = NULL, *timeframe = "1d", *from_s = NULL, *to_s = NULL, *calname = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return data_usage("option " name " needs a value");                  \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--timeframe", timeframe)
        OPT("--from", from_s)
        OPT("--to", to_s)
        OPT("--calendar", calname)
#undef OPT
        if (a[0] != '-' && !symbol) {
            symbol = a;
            continue;
        }
        char m[300];
        snprintf(m, sizeof m, "unexpected argument '%s'", a);
        return data_usage(m);
    }
    if (!symbol) return data_usage("gaps needs a SYMBOL");
    qb_symbol_t sym;
    char err[1024];
    if (qb_symbol_set(&sym, symbol, err, sizeof err) != QB_OK) return data_usage(err);
    int64_t tf_ns;
    if (qb_timeframe_parse(timeframe, &tf_ns) != QB_OK)
        return data_usage("--timeframe must be one of 1m 5m 15m 30m 1h 4h 1d");
    if (tf_ns > QB_NS_PER_DAY) return data_usage("gaps are defined for timeframes up to 1d");
    qb_time_t from = 0, to = 0;
    if (from_s && (qb_time_parse(from_s, strlen(from_s), &from) != QB_OK || from == 0))
        return data_usage("--from must be YYYY-MM-DD or an RFC 3339 time");
    if (to_s && (qb_time_parse(to_s, strlen(to_s), &to) != QB_OK || to == 0))
        return data_usage("--to must be YYYY-MM-DD or an RFC 3339 time");
    if (from && to && to <= from) return data_usage("--to must be after --from");
    const qb_cal_t *cal = NULL;
    if (calname && qb_cal_get(calname, &cal, err, sizeof err) != QB_OK)
        return data_usage("--calendar must be XNYS or 24x7");

    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qbctl data: QB_PG_DSN: %s\n", err);
        return 2;
    }
    int rc = 1;
    qb_md_gaps_t g;
    memset(&g, 0, sizeof g);
    if (qb_md_store_check_schema(s, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl data: %s\n", err);
        goto out;
    }
    qb_err_t e = qb_md_gaps_find(s, sym.s, timeframe, cal, from, to, &g, err, sizeof err);
    if (e != QB_OK) {
        fprintf(stderr, "qbctl data: %s%s\n", err,
                e == QB_ERR_INVALID && !cal ? " (pass --calendar)" : "");
        rc = e == QB_ERR_INVALID ? 2 : 1;
        goto out;
    }
    if (!g.from || !g.to) {
        fprintf(stderr, "%s %s: no stored bars%s; give --from and --to to list the whole "
                "range as missing\n", sym.s, timeframe, from || to ? " in the range" : "");
        rc = 0;
        goto out;
    }
    int daily = tf_ns == QB_NS_PER_DAY;
    for (size_t i = 0; i < g.nspans; i++) {
        char a[QB_TIME_STRLEN], b[QB_TIME_STRLEN];
        data_fmt(g.spans[i].from, daily, a, sizeof a);
        data_fmt(g.spans[i].to, daily, b, sizeof b);
        printf("%s %s %zu\n", a, b, g.spans[i].nbars);
    }
    char a[QB_TIME_STRLEN], b[QB_TIME_STRLEN];
    data_fmt(g.from, daily, a, sizeof a);
    data_fmt(g.to, daily, b, sizeof b);
    fprintf(stderr, "%s %s %s [%s, %s): %zu stored, %zu missing bars in %zu gaps\n", sym.s,
            timeframe, qb_cal_name(g.cal), a, b, g.stored, g.missing, g.nspans);
    rc = 0;
out:
    qb_md_gaps_free(&g);
    qb_store_destroy(s);
    return rc;
}

/* data resample SYMBOL --to-tf T [--from-tf 1m] [--from D] [--to D]
 *              [--calendar C] [--no-publish] [--progress ...]
 * = backfill --source resample over the symbol's stored input range (or
 * [from, to)), only the missing output bars. */
static int data_resample(int argc, char **argv) {
    const char *symbol = NULL, *in_tf = "1m", *out_tf = NULL, *from_s = NULL, *to_s = NULL;
    const char *calname = NULL, *progress = "auto";
    int publish = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return data_usage("option " name " needs a value");                  \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--from-tf", in_tf)
        OPT("--to-tf", out_tf)
        OPT("--from", from_s)
        OPT("--to", to_s)
        OPT("--calendar", calname)
        OPT("--progress", progress)
#undef OPT
        if (strcmp(a, "--no-publish") == 0) {
            publish = 0;
            continue;
        }
        if (a[0] != '-' && !symbol) {
            symbol = a;
            continue;
        }
        char m[300];
        snprintf(m, sizeof m, "unexpected argument '%s'", a);
        return data_usage(m);
    }
    if (!symbol || !out_tf) return data_usage("resample needs a SYMBOL and --to-tf");
    char from_b[QB_TIME_STRLEN] = "", to_b[QB_TIME_STRLEN] = "", err[1024];
    if (!from_s || !to_s) {
        /* The stored range of the input bars. */
        qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
        if (!s) {
            fprintf(stderr, "qbctl data: QB_PG_DSN: %s\n", err);
            return 2;
        }
        PGresult *r = NULL;
        const char *p[2] = {symbol, in_tf};
        qb_err_t e = qb_store_query(s,
                                    "SELECT (extract(epoch FROM min(ts)) * 1000000)::bigint,"
                                    " (extract(epoch FROM max(ts)) * 1000000)::bigint"
                                    " FROM md.bars_v WHERE symbol = upper($1) AND timeframe = $2",
                                    2, p, &r, err, sizeof err);
        int none = e == QB_OK && PQgetisnull(r, 0, 0);
        if (e == QB_OK && !none) {
            /* From the start of the first stored input bar's (UTC) day, so
             * a 1d bucket stamped 00:00 is in range. */
            qb_time_t first = strtoll(PQgetvalue(r, 0, 0), NULL, 10) * QB_NS_PER_US;
            qb_time_format(first - first % QB_NS_PER_DAY, from_b, sizeof from_b);
            /* Through the end of the last stored input bar's day. */
            qb_time_t last = strtoll(PQgetvalue(r, 0, 1), NULL, 10) * QB_NS_PER_US;
            qb_time_format(last - last % QB_NS_PER_DAY + 2 * QB_NS_PER_DAY, to_b, sizeof to_b);
        }
        PQclear(r);
        qb_store_destroy(s);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl data: %s\n", err);
            return 1;
        }
        if (none) {
            fprintf(stderr, "qbctl data: no stored %s bars of %s to resample\n", in_tf, symbol);
            return 1;
        }
        if (!from_s) from_s = from_b;
        if (!to_s) to_s = to_b;
    }
    char opts[256];
    if (calname)
        snprintf(opts, sizeof opts, "{\"from_timeframe\":\"%.16s\",\"calendar\":\"%.16s\"}",
                 in_tf, calname);
    else
        snprintf(opts, sizeof opts, "{\"from_timeframe\":\"%.16s\"}", in_tf);
    char *av[20];
    int ac = 0;
    av[ac++] = "backfill";
    av[ac++] = "--source";
    av[ac++] = "resample";
    av[ac++] = "--options";
    av[ac++] = opts;
    av[ac++] = "--symbols";
    av[ac++] = (char *)symbol;
    av[ac++] = "--timeframe";
    av[ac++] = (char *)out_tf;
    av[ac++] = "--from";
    av[ac++] = (char *)from_s;
    av[ac++] = "--to";
    av[ac++] = (char *)to_s;
    av[ac++] = "--progress";
    av[ac++] = (char *)progress;
    if (calname) {
        av[ac++] = "--calendar";
        av[ac++] = (char *)calname;
    }
    if (!publish) av[ac++] = "--no-publish";
    av[ac] = NULL;
    return qbctl_backfill(ac, av);
}

int qbctl_data(int argc, char **argv) {
    if (argc < 2) return data_usage("missing subcommand (gaps, resample)");
    if (strcmp(argv[1], "gaps") == 0) return data_gaps(argc - 1, argv + 1);
    if (strcmp(argv[1], "resample") == 0) return data_resample(argc - 1, argv + 1);
    char m[300];
    snprintf(m, sizeof m, "unknown subcommand '%s' (gaps, resample)", argv[1]);
    return data_usage(m);
}
