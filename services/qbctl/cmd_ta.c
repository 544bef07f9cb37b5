/* cmd_ta.c — `qbctl ta --csv FILE --indicators 'rsi:14,macd:12:26:9,...'`:
 * technical indicators (libs/ta, batch form) over a CSV of bars, printed one
 * row per bar: time, close, then one column per indicator output, named as
 * qb_ta_column names them ("rsi:14", "macd:12:26:9.signal"; defaults
 * filled in, so `rsi` prints as "rsi:14"). A cell is empty (CSV) or null
 * (JSON) before the indicator's first valid index.
 *
 * Input: the CSV formats of `qbctl import` (libs/md/qb_md_csv.h) with the
 * same options; --format auto (the default) picks yahoo when the header
 * has an "Adj Close" column and generic (time,open,high,low,close[,volume]
 * in that order, or --columns) otherwise. Rows the reader rejects are
 * reported as FILE:LINE: reason on stderr and left out; the exit code is
 * then 1 (the output is still printed).
 *
 * Output: --format csv (default): a header line and one line per bar;
 * --format json: one JSON object per line, keys in column order. Numbers
 * are printed in the shortest form that reads back as the same double.
 * Times print as YYYY-MM-DD for midnight-UTC bars, else ISO-8601 UTC.
 *
 * Exit: 0 ok, 1 rejected rows or a read error, 2 usage or a bad indicator
 * spec (the message names the indicator and the parameter). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"
#include "qbctl.h"
#include "ta/qb_ta.h"

#define TA_MAX_INDICATORS 64
#define TA_SHOW_REJECTS 20

typedef struct ta_bars_s {
    size_t n, cap;
    int64_t *t;
    double *o, *h, *l, *c, *v;
    int64_t rejects;
} ta_bars_t;

static int ta_usage(const char *msg) {
    fprintf(stderr,
            "qbctl ta: %s\n"
            "usage: qbctl ta --csv FILE --indicators SPEC[,SPEC...] [--format csv|json]\n"
            "         [--input-format auto|yahoo|generic] [--columns time,open,high,low,close[,volume]]\n"
            "         [--time-format date|iso|unix_s|unix_ms] [--delimiter C]\n"
            "       qbctl ta --list            the indicators, their parameters and defaults\n"
            "SPEC is name[:param...] in TA-Lib's parameter order, e.g. rsi:14,\n"
            "macd:12:26:9, bbands:20:2:2, stoch:14:3:3; omitted parameters take\n"
            "TA-Lib's defaults (rsi = rsi:14)\n",
            msg);
    return 2;
}

static qb_err_t ta_sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                             size_t errstr_size) {
    ta_bars_t *b = opaque;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->n + n) cap *= 2;
        int64_t *t = realloc(b->t, cap * sizeof *t);
        if (t) b->t = t;
        double **arr[] = {&b->o, &b->h, &b->l, &b->c, &b->v};
        int ok = t != NULL;
        for (size_t k = 0; k < 5 && ok; k++) {
            double *p = realloc(*arr[k], cap * sizeof(double));
            if (p) *arr[k] = p;
            else ok = 0;
        }
        if (!ok) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        b->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        const qb_bar_t *x = &bars[i];
        b->t[b->n] = x->ts;
        b->o[b->n] = qb_dec_to_double(x->open); /* exact: v / 1e8 rounds once */
        b->h[b->n] = qb_dec_to_double(x->high);
        b->l[b->n] = qb_dec_to_double(x->low);
        b->c[b->n] = qb_dec_to_double(x->close);
        b->v[b->n] = qb_dec_to_double(x->volume);
        b->n++;
    }
    return QB_OK;
}

static void ta_sink_reject(void *opaque, const char *where, const char *reason) {
    ta_bars_t *b = opaque;
    if (b->rejects++ < TA_SHOW_REJECTS) fprintf(stderr, "%s: %s\n", where, reason);
}

/* "auto": yahoo when the first line names an "Adj Close" column. */
static const char *ta_detect_format(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return "yahoo"; /* the reader reports the missing file */
    char line[4096] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    for (char *p = line; *p; p++)
        if (strncasecmp(p, "adj close", 9) == 0) return "yahoo";
    return "generic";
}

/* Shortest text that reads back as the same double. */
static void ta_num(char *buf, size_t cap, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void ta_time(char *buf, size_t cap, int64_t t) {
    const int64_t day = INT64_C(86400000000000);
    if (t % day == 0) {
        int y, m, d;
        qb_time_civil_from_days(t / day, &y, &m, &d);
        snprintf(buf, cap, "%04d-%02d-%02d", y, m, d);
    } else {
        qb_time_format(t, buf, cap);
    }
}

static void ta_list(void) {
    printf("%-12s %-50s %-20s %s\n", "NAME", "SYNTAX (defaults)", "OUTPUTS", "");
    for (int i = 0; i < qb_ta_kind_count(); i++) {
        const qb_ta_info_t *in = qb_ta_kind_info(i);
        printf("%-12s %-50s %-20s %s\n", in->name, in->syntax, in->outputs[0] ? in->outputs : "-",
               in->summary);
    }
}

int qbctl_ta(int argc, char **argv) {
    const char *csv = NULL, *inds = NULL, *out_format = "csv", *in_format = "auto";
    const char *tfmt = NULL;
    char *columns = NULL;
    char delim = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return ta_usage("option " name " needs a value");                    \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--csv", csv)
        OPT("--indicators", inds)
        OPT("--format", out_format)
        OPT("--input-format", in_format)
        OPT("--time-format", tfmt)
#undef OPT
        if (strcmp(a, "--list") == 0) {
            ta_list();
            return 0;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            ta_usage("help");
            return 0;
        }
        if (strcmp(a, "--columns") == 0 && val) {
            columns = argv[++i];
            continue;
        }
        if (strcmp(a, "--delimiter") == 0 && val) {
            if (strcmp(val, "\\t") == 0 || strcmp(val, "tab") == 0) delim = '\t';
            else if (strlen(val) == 1) delim = val[0];
            else return ta_usage("--delimiter takes one character (or tab)");
            i++;
            continue;
        }
        char m[300];
        snprintf(m, sizeof m, "unknown option '%s'", a);
        return ta_usage(m);
    }
    if (!csv || !inds) return ta_usage("--csv and --indicators are required");
    int json = 0;
    if (strcmp(out_format, "json") == 0) json = 1;
    else if (strcmp(out_format, "csv") != 0) return ta_usage("--format must be csv or json");

    /* indicators first: a bad spec is a usage error before any reading */
    qb_ta_t *ta[TA_MAX_INDICATORS];
    int nta = 0, rc = 1;
    char err[1024];
    char *list = strdup(inds);
    if (!list) return 1;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (nta == TA_MAX_INDICATORS) {
            free(list);
            for (int k = 0; k < nta; k++) qb_ta_destroy(ta[k]);
            return ta_usage("too many indicators (at most 64)");
        }
        if (qb_ta_new(tok, &ta[nta], err, sizeof err) != QB_OK) {
            free(list);
            for (int k = 0; k < nta; k++) qb_ta_destroy(ta[k]);
            fprintf(stderr, "qbctl ta: --indicators: %s\n", err);
            return 2;
        }
        nta++;
    }
    free(list);
    if (nta == 0) return ta_usage("--indicators is empty");

    const char *fmt = strcmp(in_format, "auto") == 0 ? ta_detect_format(csv) : in_format;
    qb_md_csv_opts_t o;
    if (qb_md_csv_opts_parse(fmt, columns, tfmt, &o, err, sizeof err) != QB_OK) {
        for (int k = 0; k < nta; k++) qb_ta_destroy(ta[k]);
        return ta_usage(err);
    }
    o.delimiter = delim;

    ta_bars_t b;
    memset(&b, 0, sizeof b);
    double *vals[TA_MAX_INDICATORS][QB_TA_MAX_OUTPUTS];
    memset(vals, 0, sizeof vals);
    qb_md_source_t *src = qb_md_csv_source_new(csv, &o, err, sizeof err);
    if (!src) {
        fprintf(stderr, "qbctl ta: %s\n", err);
        goto out;
    }
    qb_md_request_t req = {"TA", "1d", 0, 0, 0};
    qb_md_sink_t sink = {ta_sink_bars, ta_sink_reject, &b};
    if (qb_md_fetch(src, &req, &sink, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl ta: %s\n", err);
        goto out;
    }
    if (b.rejects > TA_SHOW_REJECTS)
        fprintf(stderr, "... %lld more rejected rows\n", (long long)(b.rejects - TA_SHOW_REJECTS));

    qb_ta_series_t in = {b.t, b.o, b.h, b.l, b.c, b.v};
    for (int k = 0; k < nta; k++) {
        for (int j = 0; j < qb_ta_num_outputs(ta[k]); j++) {
            vals[k][j] = malloc((b.n ? b.n : 1) * sizeof(double));
            if (!vals[k][j]) {
                fprintf(stderr, "qbctl ta: out of memory\n");
                goto out;
            }
        }
        if (qb_ta_batch(ta[k], &in, b.n, vals[k], err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl ta: %s\n", err);
            goto out;
        }
    }

    char name[QB_TA_COLUMN_MAX], num[64], tbuf[64];
    if (!json) {
        fputs("time,close", stdout);
        for (int k = 0; k < nta; k++)
            for (int j = 0; j < qb_ta_num_outputs(ta[k]); j++) {
                qb_ta_column(ta[k], j, name, sizeof name);
                printf(",%s", name);
            }
        putchar('\n');
    }
    for (size_t i = 0; i < b.n; i++) {
        ta_time(tbuf, sizeof tbuf, b.t[i]);
        ta_num(num, sizeof num, b.c[i]);
        if (json) printf("{\"time\":\"%s\",\"close\":%s", tbuf, num);
        else printf("%s,%s", tbuf, num);
        for (int k = 0; k < nta; k++)
            for (int j = 0; j < qb_ta_num_outputs(ta[k]); j++) {
                double v = vals[k][j][i];
                if (json) {
                    qb_ta_column(ta[k], j, name, sizeof name);
                    if (isfinite(v)) ta_num(num, sizeof num, v);
                    else snprintf(num, sizeof num, "null");
                    printf(",\"%s\":%s", name, num); /* spec names need no escaping */
                } else if (isfinite(v)) {
                    ta_num(num, sizeof num, v);
                    printf(",%s", num);
                } else {
                    putchar(',');
                }
            }
        fputs(json ? "}\n" : "\n", stdout);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "qbctl ta: write error\n");
        goto out;
    }
    rc = b.rejects ? 1 : 0;
out:
    qb_md_source_destroy(src);
    for (int k = 0; k < nta; k++) {
        for (int j = 0; j < QB_TA_MAX_OUTPUTS; j++) free(vals[k][j]);
        qb_ta_destroy(ta[k]);
    }
    free(b.t);
    free(b.o);
    free(b.h);
    free(b.l);
    free(b.c);
    free(b.v);
    return rc;
}
