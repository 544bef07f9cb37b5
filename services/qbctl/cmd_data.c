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
#include "md/qb_md_replay.h"
#include "md/qb_md_store.h"
#include "qbctl.h"
#include "store/qb_store.h"

static int data_usage(const char *msg) {
    fprintf(stderr,
            "qbctl data: %s\n"
            "usage: qbctl data gaps SYMBOL [--timeframe 1d] [--from D] [--to D]\n"
            "         [--calendar XNYS|24x7]\n"
            "  lists the missing spans of stored bars vs the exchange calendar, one per\n"
            "  line: FROM TO BARS ([FROM, TO) is the range to fetch)\n",
            msg);
    return 2;
}

typedef struct data_times_s {
    qb_time_t *v;
    size_t n, cap;
} data_times_t;

static qb_err_t data_collect(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                             char *errstr, size_t errstr_size) {
    data_times_t *t = opaque;
    (void)source;
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + n) cap *= 2;
        qb_time_t *v = realloc(t->v, cap * sizeof(*v));
        if (!v) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        t->v = v;
        t->cap = cap;
    }
    for (size_t i = 0; i < n; i++) t->v[t->n++] = bars[i].ts;
    return QB_OK;
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
    data_times_t have = {0};
    qb_md_replay_t *r = NULL;
    qb_cal_gap_t *gaps = NULL;
    PGresult *res = NULL;
    if (qb_md_store_check_schema(s, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl data: %s\n", err);
        goto out;
    }
    const char *p[1] = {sym.s};
    if (qb_store_query(s, "SELECT asset_class FROM md.assets WHERE symbol = $1", 1, p, &res, err,
                       sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl data: %s\n", err);
        goto out;
    }
    if (PQntuples(res) != 1) {
        fprintf(stderr, "qbctl data: unknown symbol %s (not in md.assets)\n", sym.s);
        goto out;
    }
    const char *klass = PQgetvalue(res, 0, 0);
    if (!cal) {
        const char *def = strcmp(klass, "equity") == 0 || strcmp(klass, "etf") == 0 ? "XNYS"
                          : strcmp(klass, "crypto") == 0                          ? "24x7"
                                                                                  : NULL;
        if (!def) {
            fprintf(stderr, "qbctl data: %s is a%s %s asset: no default calendar, pass --calendar\n",
                    sym.s, klass[0] == 'e' ? "n" : "", klass);
            rc = 2;
            goto out;
        }
        if (qb_cal_get(def, &cal, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl data: calendar %s: %s\n", def, err);
            goto out;
        }
    }

    const char *syms[1] = {sym.s};
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.symbols = syms;
    o.nsymbols = 1;
    o.timeframe = timeframe;
    o.from = from;
    o.to = to;
    if (qb_md_replay_new(s, &o, &r, err, sizeof err) != QB_OK ||
        qb_md_replay_run(r, data_collect, &have, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl data: %s\n", err);
        goto out;
    }
    if (!from || !to) {
        if (have.n == 0) {
            fprintf(stderr, "%s %s: no stored bars%s; give --from and --to to list the whole "
                    "range as missing\n", sym.s, timeframe, from || to ? " in the range" : "");
            rc = 0;
            goto out;
        }
        if (!from) from = have.v[0];
        if (!to) to = have.v[have.n - 1] + tf_ns;
    }
    /* Present bars split the range into at most n + 1 gaps. */
    size_t cap = have.n + 1, total = 0, missing = 0;
    gaps = calloc(cap, sizeof(*gaps));
    if (!gaps) {
        fprintf(stderr, "qbctl data: out of memory\n");
        goto out;
    }
    if (qb_cal_gaps(cal, tf_ns, have.v, have.n, from, to, gaps, cap, &total, &missing, err,
                    sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl data: %s\n", err);
        goto out;
    }
    int daily = tf_ns == QB_NS_PER_DAY;
    for (size_t i = 0; i < total && i < cap; i++) {
        char a[QB_TIME_STRLEN], b[QB_TIME_STRLEN];
        data_fmt(gaps[i].from, daily, a, sizeof a);
        data_fmt(gaps[i].to, daily, b, sizeof b);
        printf("%s %s %zu\n", a, b, gaps[i].nbars);
    }
    char a[QB_TIME_STRLEN], b[QB_TIME_STRLEN];
    data_fmt(from, daily, a, sizeof a);
    data_fmt(to, daily, b, sizeof b);
    fprintf(stderr, "%s %s %s [%s, %s): %zu stored, %zu missing bars in %zu gaps\n", sym.s,
            timeframe, qb_cal_name(cal), a, b, have.n, missing, total);
    rc = 0;
out:
    PQclear(res);
    free(gaps);
    free(have.v);
    qb_md_replay_destroy(r);
    qb_store_destroy(s);
    return rc;
}

int qbctl_data(int argc, char **argv) {
    if (argc < 2) return data_usage("missing subcommand (gaps)");
    if (strcmp(argv[1], "gaps") == 0) return data_gaps(argc - 1, argv + 1);
    char m[300];
    snprintf(m, sizeof m, "unknown subcommand '%s' (gaps)", argv[1]);
    return data_usage(m);
}
