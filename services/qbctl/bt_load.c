/* bt_load.c — CSV files into a backtest data set, for `qbctl backtest`,
 * `walkforward` and `optimize`: each --csv is "SYM=FILE" or "FILE" (the
 * symbol from the base name, orcl-1995-2014.txt -> ORCL), read with the
 * import's CSV reader (format auto-detected: Yahoo when the header has "Adj
 * Close"), bars the engine cannot take rejected with their FILE:LINE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backtest/qb_backtest.h"
#include "md/qb_md_csv.h"
#include "portfolio/qb_fill_model.h"
#include "qbctl.h"

#define QBCTL_SHOW_REJECTS 20

typedef struct bt_load_s {
    qb_bt_data_t *d;
    uint32_t id;
    const qb_md_source_t *src;
    qb_time_t last;
    int64_t rejects;
} bt_load_t;

static void load_sink_reject(void *opaque, const char *where, const char *reason) {
    bt_load_t *l = opaque;
    if (l->rejects++ < QBCTL_SHOW_REJECTS) fprintf(stderr, "%s: %s\n", where, reason);
}

static qb_err_t load_sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                             size_t errstr_size) {
    bt_load_t *l = opaque;
    qb_pf_bar_t tmp[512];
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; i < n && m < 512; i++) {
            qb_pf_bar_t b = {bars[i].ts,  bars[i].open,  bars[i].high,
                             bars[i].low, bars[i].close, bars[i].volume};
            char why[200], where[600];
            int bad = qb_pf_bar_validate(&b, why, sizeof why) != QB_OK;
            if (!bad && l->last && b.ts <= l->last) {
                snprintf(why, sizeof why, "not after the previous bar");
                bad = 1;
            }
            if (bad) {
                snprintf(where, sizeof where, "%s:%lld", qb_md_csv_path(l->src),
                         (long long)qb_md_csv_line_of(l->src, i));
                load_sink_reject(l, where, why);
                continue;
            }
            l->last = b.ts;
            tmp[m++] = b;
        }
        qb_err_t e = qb_bt_data_append(l->d, l->id, tmp, m, errstr, errstr_size);
        if (e != QB_OK) return e;
    }
    return QB_OK;
}

static const char *load_detect_format(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return "yahoo";
    char line[4096] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    for (char *p = line; *p; p++)
        if (strncasecmp(p, "adj close", 9) == 0) return "yahoo";
    return "generic";
}

static int load_split(const char *arg, char *sym, size_t cap, const char **path) {
    const char *eq = strchr(arg, '=');
    const char *slash = strrchr(arg, '/');
    if (eq && (!slash || eq < slash)) {
        size_t n = (size_t)(eq - arg);
        if (n == 0 || n >= cap) return -1;
        memcpy(sym, arg, n);
        sym[n] = 0;
        *path = eq + 1;
        return 0;
    }
    const char *base = slash ? slash + 1 : arg;
    size_t n = strcspn(base, ".-_");
    if (n == 0 || n >= cap) return -1;
    memcpy(sym, base, n);
    sym[n] = 0;
    *path = arg;
    return 0;
}

int qbctl_bt_load(const char *cmd, qb_bt_data_t *d, const char *const *files, int nfiles,
                  const char *timeframe, const qbctl_csv_opts_t *co, int64_t *rejects) {
    char err[1024];
    for (int k = 0; k < nfiles; k++) {
        char sym[QB_SYMBOL_MAX + 1];
        const char *path;
        if (load_split(files[k], sym, sizeof sym, &path) != 0) {
            fprintf(stderr, "qbctl %s: --csv %s: cannot tell the symbol; use SYM=FILE\n", cmd,
                    files[k]);
            return 2;
        }
        bt_load_t l;
        memset(&l, 0, sizeof l);
        l.d = d;
        if (qb_bt_data_symbol(d, sym, &l.id, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl %s: --csv %s: %s; use SYM=FILE\n", cmd, files[k], err);
            return 2;
        }
        if (qb_bt_data_nbars(d, l.id)) {
            fprintf(stderr, "qbctl %s: --csv %s: symbol %s given twice\n", cmd, files[k],
                    qb_bt_data_symbol_name(d, l.id));
            return 2;
        }
        const char *fmt =
            strcmp(co->in_format, "auto") == 0 ? load_detect_format(path) : co->in_format;
        qb_md_csv_opts_t o;
        char colbuf[512];
        snprintf(colbuf, sizeof colbuf, "%s", co->columns ? co->columns : "");
        if (qb_md_csv_opts_parse(fmt, co->columns ? colbuf : NULL, co->tfmt, &o, err,
                                 sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl %s: %s\n", cmd, err);
            return 2;
        }
        o.delimiter = co->delim;
        qb_md_source_t *src = qb_md_csv_source_new(path, &o, err, sizeof err);
        if (!src) {
            fprintf(stderr, "qbctl %s: %s\n", cmd, err);
            return 1;
        }
        l.src = src;
        qb_md_request_t req = {qb_bt_data_symbol_name(d, l.id), timeframe, 0, 0, 0};
        qb_md_sink_t sink = {load_sink_bars, load_sink_reject, &l};
        qb_err_t e = qb_md_fetch(src, &req, &sink, err, sizeof err);
        qb_md_source_destroy(src);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl %s: %s: %s\n", cmd, path, err);
            return 1;
        }
        if (l.rejects > QBCTL_SHOW_REJECTS)
            fprintf(stderr, "%s: ... %lld more rejected rows\n", path,
                    (long long)(l.rejects - QBCTL_SHOW_REJECTS));
        *rejects += l.rejects;
        if (!qb_bt_data_nbars(d, l.id)) {
            fprintf(stderr, "qbctl %s: %s: no bars\n", cmd, path);
            return 1;
        }
    }
    if (qb_bt_data_finalize(d, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl %s: %s\n", cmd, err);
        return 1;
    }
    return 0;
}
