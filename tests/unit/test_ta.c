/* test_ta.c — libs/ta against TA-Lib and against brute force.
 *
 * 1. TA-Lib fixtures (tests/fixtures/ta, made by tools/talib-ref): every
 *    column of every synthetic *.ref.csv is parsed as a spec with our own
 *    parser, computed in batch form over the matching bars, and compared
 *    cell by cell: both empty/NaN before the first valid index, and within
 *    1e-9 relative after it. The streaming form must give the batch values
 *    bit for bit. Per column the max relative error is recorded; a failing
 *    column prints it with the first bad rows.
 * 2. The same on the real series of ../shared/data (sampled rows in
 *    tests/fixtures/ta/real); SKIPPED (printed, not failed) when the data
 *    folder is absent.
 * 3. Every kind, with default and other parameters, on a random walk:
 *    streaming == batch bitwise, NaN exactly before the lookback, reset,
 *    batch-then-continue.
 * 4. Indicators TA-Lib has no equivalent for (vwap, zscore, logret, rvol,
 *    donchian, keltner) and a few TA-Lib ones (sma, wma, stddev, correl,
 *    aroon) against direct brute-force formulas.
 * 5. Spec parsing: canonical specs, column names, invalid parameters.
 *
 * Tolerance: |a - b| <= 1e-9 * max(|a|, |b|, 1e-300), i.e. purely relative.
 * No absolute floor is needed because each update performs TA-Lib's
 * floating-point operations in TA-Lib's order, so even the residue cells
 * the README of tools/talib-ref describes (1e-13 where exact arithmetic
 * gives 0) come out identical; a check that only passed with an absolute
 * floor would hide a different operation order. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qb_test.h"
#include "qb_test_assert.h"
#include "ta/qb_ta.h"

#define REL_TOL 1e-9
/* cmocka 1.1 has no assert_double_equal */
#define assert_dbl(a, b, tol) assert_true(fabs((a) - (b)) <= (tol))
#define FIX_DIR "tests/fixtures/ta"

static char E[512];

/* ---- small utilities ---------------------------------------------------- */

static double rel_err(double a, double b) {
    if (a == b) return 0;
    double s = fmax(fmax(fabs(a), fabs(b)), 1e-300);
    return fabs(a - b) / s;
}

static int same_bits(double a, double b) {
    if (isnan(a) && isnan(b)) return 1;
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t parse_time(const char *s) {
    int y, m, d;
    if (sscanf(s, "%d-%d-%d", &y, &m, &d) == 3)
        return days_from_civil(y, m, d) * INT64_C(86400000000000);
    return strtoll(s, NULL, 10);
}

typedef struct bars_s {
    size_t n, cap;
    int64_t *t;
    double *o, *h, *l, *c, *v;
} bars_t;

static void bars_push(bars_t *b, int64_t t, double o, double h, double l, double c,
                      double v) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1024;
        b->t = realloc(b->t, b->cap * sizeof *b->t);
        b->o = realloc(b->o, b->cap * sizeof(double));
        b->h = realloc(b->h, b->cap * sizeof(double));
        b->l = realloc(b->l, b->cap * sizeof(double));
        b->c = realloc(b->c, b->cap * sizeof(double));
        b->v = realloc(b->v, b->cap * sizeof(double));
        assert_non_null(b->t);
        assert_non_null(b->v);
    }
    b->t[b->n] = t;
    b->o[b->n] = o;
    b->h[b->n] = h;
    b->l[b->n] = l;
    b->c[b->n] = c;
    b->v[b->n] = v;
    b->n++;
}

static void bars_free(bars_t *b) {
    free(b->t);
    free(b->o);
    free(b->h);
    free(b->l);
    free(b->c);
    free(b->v);
    memset(b, 0, sizeof *b);
}

static qb_ta_series_t bars_series(const bars_t *b) {
    qb_ta_series_t s = {b->t, b->o, b->h, b->l, b->c, b->v};
    return s;
}

/* Split a CSV line in place at commas (no quoting in these files). */
static int split(char *line, char **f, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

/* Bars of a fixture CSV (time,open,high,low,close,volume) or a Yahoo CSV
 * (Date,Open,High,Low,Close,Adj Close,Volume). 0 when the file is absent. */
static int load_bars(const char *path, int yahoo, bars_t *b) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    char *fl[8];
    int first = 1;
    while (getline(&line, &cap, f) > 0) {
        if (first) { /* header */
            first = 0;
            continue;
        }
        int n = split(line, fl, 8);
        if (n < (yahoo ? 7 : 6)) continue;
        bars_push(b, parse_time(fl[0]), atof(fl[1]), atof(fl[2]), atof(fl[3]), atof(fl[4]),
                  atof(fl[yahoo ? 6 : 5]));
    }
    free(line);
    fclose(f);
    return 1;
}

/* A reference file: column names and a rows x cols matrix (NaN = empty). */
typedef struct ref_s {
    int ncols;
    char **cols;
    size_t nrows;
    int64_t *row;
    double *val; /* nrows * ncols */
} ref_t;

static int load_ref(const char *path, ref_t *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0, rcap = 0;
    char **fl = calloc(1024, sizeof *fl);
    assert_non_null(fl);
    if (getline(&line, &cap, f) <= 0) fail_msg("%s: empty", path);
    int n = split(line, fl, 1024);
    r->ncols = n - 1;
    r->cols = calloc((size_t)r->ncols, sizeof *r->cols);
    for (int i = 1; i < n; i++) r->cols[i - 1] = strdup(fl[i]);
    while (getline(&line, &cap, f) > 0) {
        int k = split(line, fl, 1024);
        if (k == 1 && fl[0][0] == 0) continue;
        if (k != n) fail_msg("%s: row with %d fields, header has %d", path, k, n);
        if (r->nrows == rcap) {
            rcap = rcap ? 2 * rcap : 1024;
            r->row = realloc(r->row, rcap * sizeof *r->row);
            r->val = realloc(r->val, rcap * (size_t)r->ncols * sizeof(double));
        }
        r->row[r->nrows] = strtoll(fl[0], NULL, 10);
        for (int i = 1; i < n; i++)
            r->val[r->nrows * (size_t)r->ncols + (size_t)(i - 1)] =
                fl[i][0] ? strtod(fl[i], NULL) : NAN;
        r->nrows++;
    }
    free(fl);
    free(line);
    fclose(f);
    return 1;
}

static void ref_free(ref_t *r) {
    for (int i = 0; i < r->ncols; i++) free(r->cols[i]);
    free(r->cols);
    free(r->row);
    free(r->val);
}

/* Run spec over bars in batch and streaming form; outputs in out[k][i].
 * Asserts streaming == batch bitwise. Returns the instance (caller frees). */
static qb_ta_t *run_both(const char *spec, const bars_t *b, double *out[QB_TA_MAX_OUTPUTS]) {
    qb_ta_t *ta = NULL;
    if (qb_ta_new(spec, &ta, E, sizeof E) != QB_OK) fail_msg("%s: %s", spec, E);
    int nout = qb_ta_num_outputs(ta);
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) out[k] = NULL;
    for (int k = 0; k < nout; k++) {
        out[k] = malloc((b->n ? b->n : 1) * sizeof(double));
        assert_non_null(out[k]);
    }
    qb_ta_series_t s = bars_series(b);
    assert_int_equal(qb_ta_batch(ta, &s, b->n, out, E, sizeof E), QB_OK);
    /* streaming, on a second instance */
    qb_ta_t *st = NULL;
    assert_int_equal(qb_ta_new(spec, &st, E, sizeof E), QB_OK);
    for (size_t i = 0; i < b->n; i++) {
        qb_ta_bar_t bar = {b->t[i], b->o[i], b->h[i], b->l[i], b->c[i], b->v[i]};
        double o[QB_TA_MAX_OUTPUTS];
        int ready = qb_ta_update(st, &bar, o);
        if (ready != ((int64_t)i >= qb_ta_lookback(st)))
            fail_msg("%s: bar %zu ready=%d, lookback %d", spec, i, ready, qb_ta_lookback(st));
        for (int k = 0; k < nout; k++) {
            if (!same_bits(o[k], out[k][i]))
                fail_msg("%s output %d bar %zu: streaming %.17g != batch %.17g", spec, k, i,
                         o[k], out[k][i]);
            if (!same_bits(qb_ta_value(st, k), o[k])) fail_msg("%s: qb_ta_value", spec);
        }
    }
    qb_ta_destroy(st);
    return ta;
}

/* ---- 1 & 2: TA-Lib fixtures ------------------------------------------- */

typedef struct cmp_stats_s {
    int columns, failed;
    long cells, valued;
    double max_err;
    char worst_col[QB_TA_COLUMN_MAX + 64];
} cmp_stats_t;

/* Compare every column of ref (rows = bar indexes) against bars. */
static void compare_ref(const char *what, const ref_t *r, const bars_t *b, cmp_stats_t *st) {
    for (int c = 0; c < r->ncols; c++) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s", r->cols[c]);
        const char *outname = "";
        char *dot = strchr(spec, '.');
        /* "bbands:10:1.5:2.5.upper": the output is after the LAST dot when
         * that part is not a number */
        dot = strrchr(spec, '.');
        if (dot && !(dot[1] >= '0' && dot[1] <= '9')) {
            *dot = 0;
            outname = dot + 1;
        }
        double *out[QB_TA_MAX_OUTPUTS];
        qb_ta_t *ta = run_both(spec, b, out);
        int k = 0, nout = qb_ta_num_outputs(ta);
        if (nout > 1) {
            for (k = 0; k < nout; k++)
                if (strcmp(qb_ta_output_name(ta, k), outname) == 0) break;
            if (k == nout) fail_msg("%s: column %s: no output '%s'", what, r->cols[c], outname);
        } else if (*outname) {
            fail_msg("%s: column %s: single-output indicator with an output name", what,
                     r->cols[c]);
        }
        /* the column name we would print is the fixture's */
        char col[QB_TA_COLUMN_MAX];
        qb_ta_column(ta, k, col, sizeof col);
        if (strcmp(col, r->cols[c]) != 0)
            fail_msg("%s: column %s: we name it %s", what, r->cols[c], col);
        double worst = 0;
        int bad = 0;
        size_t worst_row = 0;
        for (size_t i = 0; i < r->nrows; i++) {
            int64_t row = r->row[i];
            if (row < 0 || (size_t)row >= b->n)
                fail_msg("%s: row %lld outside the %zu bars", what, (long long)row, b->n);
            double want = r->val[i * (size_t)r->ncols + (size_t)c], got = out[k][row];
            st->cells++;
            if (isnan(want) || isnan(got)) {
                if (isnan(want) != isnan(got)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  %s %s row %lld: want %.17g got %.17g\n", what,
                                r->cols[c], (long long)row, want, got);
                }
                continue;
            }
            st->valued++;
            double e = rel_err(want, got);
            if (e > worst) {
                worst = e;
                worst_row = (size_t)row;
            }
            if (e > REL_TOL && bad++ < 5)
                fprintf(stderr, "  %s %s row %lld: want %.17g got %.17g (rel %.3g)\n", what,
                        r->cols[c], (long long)row, want, got, e);
        }
        st->columns++;
        if (worst > st->max_err) {
            st->max_err = worst;
            snprintf(st->worst_col, sizeof st->worst_col, "%s %s row %zu", what, r->cols[c],
                     worst_row);
        }
        if (bad) {
            fprintf(stderr, "FAIL %s %s: %d bad cells, max rel err %.3g\n", what, r->cols[c],
                    bad, worst);
            st->failed++;
        }
        for (int j = 0; j < QB_TA_MAX_OUTPUTS; j++) free(out[j]);
        qb_ta_destroy(ta);
    }
}

static void test_talib_synthetic(void **state) {
    (void)state;
    static const char *names[] = {"trend", "flat", "gaps", "short"};
    cmp_stats_t st = {0};
    int files = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[256], q[256];
        snprintf(p, sizeof p, FIX_DIR "/%s.csv", names[i]);
        snprintf(q, sizeof q, FIX_DIR "/%s.ref.csv", names[i]);
        bars_t b = {0};
        ref_t r;
        if (!load_bars(p, 0, &b)) fail_msg("missing fixture %s (cwd must be the repo root)", p);
        if (!load_ref(q, &r)) fail_msg("missing fixture %s", q);
        compare_ref(names[i], &r, &b, &st);
        files++;
        ref_free(&r);
        bars_free(&b);
    }
    printf("TA-Lib synthetic: %d files, %d columns, %ld cells (%ld with values), max rel err "
           "%.3g (%s), %d columns failed\n",
           files, st.columns, st.cells, st.valued, st.max_err,
           st.worst_col[0] ? st.worst_col : "-", st.failed);
    assert_int_equal(st.failed, 0);
    assert_true(st.columns > 0);
}

/* ../shared/data: $QB_SHARED_DATA, else $QB_ROOT/../shared/data, else
 * ../shared/data relative to the repo root (the cwd of tests). */
static const char *shared_data_dir(char *buf, size_t cap) {
    const char *s = getenv("QB_SHARED_DATA");
    if (s && *s) return s;
    const char *root = getenv("QB_ROOT");
    snprintf(buf, cap, "%s/../shared/data", root && *root ? root : ".");
    return buf;
}

static void test_talib_real(void **state) {
    (void)state;
    char dbuf[1024];
    const char *data = shared_data_dir(dbuf, sizeof dbuf);
    DIR *dd = opendir(data);
    if (!dd) {
        printf("SKIPPED: %s not found (real-data TA-Lib comparison not run)\n", data);
        return;
    }
    closedir(dd);
    DIR *d = opendir(FIX_DIR "/real");
    if (!d) fail_msg("missing fixture dir " FIX_DIR "/real");
    cmp_stats_t st = {0};
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 9 || strcmp(de->d_name + len - 8, ".ref.csv") != 0) continue;
        char base[256], p[1400], q[600];
        snprintf(base, sizeof base, "%.*s", (int)(len - 8), de->d_name);
        snprintf(p, sizeof p, "%s/%s.txt", data, base);
        snprintf(q, sizeof q, FIX_DIR "/real/%s", de->d_name);
        bars_t b = {0};
        ref_t r;
        if (!load_bars(p, 1, &b)) {
            printf("SKIPPED: %s not found\n", p);
            continue;
        }
        /* the series is oldest-first (tools/talib-ref/README.md); check */
        for (size_t i = 1; i < b.n; i++)
            if (b.t[i] <= b.t[i - 1]) fail_msg("%s: not strictly oldest-first at row %zu", p, i);
        assert_true(load_ref(q, &r));
        compare_ref(base, &r, &b, &st);
        files++;
        ref_free(&r);
        bars_free(&b);
    }
    closedir(d);
    printf("TA-Lib real data (%s): %d files, %d columns, %ld cells (%ld with values), max rel "
           "err %.3g (%s), %d columns failed\n",
           data, files, st.columns, st.cells, st.valued, st.max_err,
           st.worst_col[0] ? st.worst_col : "-", st.failed);
    assert_int_equal(st.failed, 0);
}

/* ---- 3: every kind: streaming == batch, lookback, reset ---------------- */

static void random_walk(bars_t *b, size_t n, uint64_t seed) {
    double p = 50;
    for (size_t i = 0; i < n; i++) {
        double r = ((double)(qb_test_rand(&seed) % 2000001) / 1e6 - 1.0) * 0.02;
        double o = p;
        p *= exp(r);
        double c = p;
        double hi = fmax(o, c) * (1 + (double)(qb_test_rand(&seed) % 1000) / 1e5);
        double lo = fmin(o, c) * (1 - (double)(qb_test_rand(&seed) % 1000) / 1e5);
        double v = (double)(1000 + qb_test_rand(&seed) % 100000);
        /* intraday-ish times: 6 hours apart, so days change every 4 bars */
        bars_push(b, (int64_t)i * 6 * INT64_C(3600000000000) + INT64_C(1700000000000000000), o,
                  hi, lo, c, v);
    }
}

static const char *extra_specs[] = {
    "sma:2",        "ema:2",          "wma:5",           "dema:3",         "tema:4",
    "trima:4",      "trima:5",        "kama:5",          "rsi:3",          "macd:3:7:2",
    "bbands:20:2:2", "bbands:10:1:3:1", "bbands:9:2:2:2", "bbands:9:2:2:3", "bbands:9:2:2:4",
    "bbands:9:2:2:5", "bbands:9:2:2:6", "atr:1",          "natr:3",         "stoch:14:3:3",
    "stoch:1:1:1",  "stochf:14:3",    "stochrsi:14:14:3", "adx:3",          "plus_di:1",
    "minus_di:1",   "plus_di:3",      "cci:20",          "roc:1",          "mom:1",
    "willr:3",      "mfi:3",          "adosc:2:5",       "aroon:25",       "sar:0.01:0.1",
    "stddev:20:2",  "ultosc:28:7:14", "trix:2",          "ppo:3:10:1",     "ppo:5:13:6",
    "cmo:3",        "correl:2",       "vwap:5",          "vwap:0:1",       "zscore:5",
    "logret:5",     "rvol:2:1",       "donchian:3",      "keltner:10:1.5:5",
};

static void check_kind(const char *spec, const bars_t *b) {
    double *out[QB_TA_MAX_OUTPUTS];
    qb_ta_t *ta = run_both(spec, b, out);
    int nout = qb_ta_num_outputs(ta), lb = qb_ta_lookback(ta);
    assert_true(lb >= 0);
    for (int k = 0; k < nout; k++)
        for (size_t i = 0; i < b->n; i++) {
            if ((int64_t)i < lb && !isnan(out[k][i]))
                fail_msg("%s output %d: value %g at bar %zu before lookback %d", spec, k,
                         out[k][i], i, lb);
            if ((int64_t)i >= lb && !isfinite(out[k][i]))
                fail_msg("%s output %d: %g at bar %zu (lookback %d)", spec, k, out[k][i], i, lb);
        }
    /* batch over the first half, then stream the rest: same as one batch */
    size_t half = b->n / 2;
    qb_ta_series_t s = bars_series(b);
    double *tmp[QB_TA_MAX_OUTPUTS] = {NULL, NULL, NULL};
    for (int k = 0; k < nout; k++) tmp[k] = malloc(b->n * sizeof(double));
    assert_int_equal(qb_ta_batch(ta, &s, half, tmp, E, sizeof E), QB_OK);
    assert_int_equal(qb_ta_bars(ta), (int64_t)half);
    for (size_t i = half; i < b->n; i++) {
        qb_ta_bar_t bar = {b->t[i], b->o[i], b->h[i], b->l[i], b->c[i], b->v[i]};
        double o[QB_TA_MAX_OUTPUTS];
        qb_ta_update(ta, &bar, o);
        for (int k = 0; k < nout; k++)
            if (!same_bits(o[k], out[k][i]))
                fail_msg("%s: batch-then-stream differs at bar %zu", spec, i);
    }
    /* reset: the next update is bar 0 again */
    qb_ta_reset(ta);
    assert_int_equal(qb_ta_bars(ta), 0);
    assert_false(qb_ta_ready(ta));
    for (size_t i = 0; i < b->n; i++) {
        qb_ta_bar_t bar = {b->t[i], b->o[i], b->h[i], b->l[i], b->c[i], b->v[i]};
        double o[QB_TA_MAX_OUTPUTS];
        qb_ta_update(ta, &bar, o);
        for (int k = 0; k < nout; k++)
            if (!same_bits(o[k], out[k][i])) fail_msg("%s: after reset differs at %zu", spec, i);
    }
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) {
        free(out[k]);
        free(tmp[k]);
    }
    qb_ta_destroy(ta);
}

static void test_every_kind_stream_equals_batch(void **state) {
    (void)state;
    bars_t b = {0};
    random_walk(&b, 3000, qb_test_seed("test_ta_stream"));
    int n = 0;
    for (int i = 0; i < qb_ta_kind_count(); i++) {
        check_kind(qb_ta_kind_info(i)->name, &b);
        n++;
    }
    for (size_t i = 0; i < sizeof extra_specs / sizeof extra_specs[0]; i++) {
        check_kind(extra_specs[i], &b);
        n++;
    }
    printf("stream == batch (bitwise), lookback, reset: %d kinds, %d specs\n",
           qb_ta_kind_count(), n);
    assert_true(qb_ta_kind_count() >= 41);
    bars_free(&b);
}

/* ---- 4: brute force --------------------------------------------------- */

static void expect_close(const char *what, size_t i, double want, double got, double tol) {
    if (isnan(want) && isnan(got)) return;
    if (isnan(want) != isnan(got) || rel_err(want, got) > tol)
        fail_msg("%s bar %zu: want %.17g got %.17g (rel %.3g)", what, i, want, got,
                 rel_err(want, got));
}

static double *col1(const char *spec, const bars_t *b, int k) {
    double *out[QB_TA_MAX_OUTPUTS];
    qb_ta_t *ta = run_both(spec, b, out);
    for (int j = 0; j < QB_TA_MAX_OUTPUTS; j++)
        if (j != k) free(out[j]);
    qb_ta_destroy(ta);
    return out[k];
}

static void test_bruteforce(void **state) {
    (void)state;
    bars_t b = {0};
    random_walk(&b, 1500, qb_test_seed("test_ta_brute"));
    size_t n = b.n;
    const int P = 7;
    double *sma = col1("sma:7", &b, 0), *wma = col1("wma:7", &b, 0);
    double *sd = col1("stddev:7:2", &b, 0), *z = col1("zscore:7", &b, 0);
    double *lr = col1("logret:3", &b, 0), *rv = col1("rvol:7:252", &b, 0);
    double *dh = col1("donchian:7", &b, 0), *dm = col1("donchian:7", &b, 1);
    double *dl = col1("donchian:7", &b, 2), *co = col1("correl:7", &b, 0);
    double *vc = col1("vwap", &b, 0), *vr = col1("vwap:7", &b, 0);
    double *vd = col1("vwap:0:1", &b, 0), *ad = col1("aroon:7", &b, 0);
    double *au = col1("aroon:7", &b, 1);
    double *ku = col1("keltner:7:1.5:5", &b, 0), *km = col1("keltner:7:1.5:5", &b, 1);
    double *kl = col1("keltner:7:1.5:5", &b, 2);
    double *ema = col1("ema:7", &b, 0), *atr = col1("atr:5", &b, 0);
    double cpv = 0, cv = 0, dpv = 0, dv = 0;
    int64_t day = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        double tp = (b.h[i] + b.l[i] + b.c[i]) / 3.0;
        cpv += tp * b.v[i];
        cv += b.v[i];
        expect_close("vwap cumulative", i, cpv / cv, vc[i], REL_TOL);
        int64_t d = b.t[i] / INT64_C(86400000000000);
        if (d != day) dpv = dv = 0;
        day = d;
        dpv += tp * b.v[i];
        dv += b.v[i];
        expect_close("vwap daily reset", i, dpv / dv, vd[i], REL_TOL);
        if (i >= 3) expect_close("logret:3", i, log(b.c[i] / b.c[i - 3]), lr[i], 1e-12);
        else expect_close("logret:3", i, NAN, lr[i], 0);
        if (i + 1 < (size_t)P) {
            expect_close("sma", i, NAN, sma[i], 0);
            expect_close("donchian", i, NAN, dh[i], 0);
            continue;
        }
        size_t a = i + 1 - (size_t)P;
        double s = 0, ws = 0, hi = -INFINITY, lo = INFINITY, pv = 0, v = 0;
        for (size_t j = a; j <= i; j++) {
            s += b.c[j];
            ws += b.c[j] * (double)(j - a + 1);
            hi = fmax(hi, b.h[j]);
            lo = fmin(lo, b.l[j]);
            pv += (b.h[j] + b.l[j] + b.c[j]) / 3.0 * b.v[j];
            v += b.v[j];
        }
        double mean = s / P, var = 0;
        for (size_t j = a; j <= i; j++) var += (b.c[j] - mean) * (b.c[j] - mean);
        var /= P;
        expect_close("sma", i, mean, sma[i], REL_TOL);
        expect_close("wma", i, ws / (P * (P + 1) / 2), wma[i], REL_TOL);
        /* E[x^2]-E[x]^2 (TA-Lib's formula) vs two-pass: cancellation allows
         * ~1e-16 * mean^2 / var; prices ~50 and sd ~0.5 give ~1e-12 */
        expect_close("stddev", i, 2 * sqrt(var), sd[i], 1e-7);
        /* a z-score near 0 has no meaningful relative error: compare it on
         * the scale of 1 (|z| <= sqrt(P-1) anyway) */
        if (fabs((b.c[i] - mean) / sqrt(var) - z[i]) > 1e-6)
            fail_msg("zscore bar %zu: want %.17g got %.17g", i, (b.c[i] - mean) / sqrt(var),
                     z[i]);
        expect_close("donchian upper", i, hi, dh[i], 0);
        expect_close("donchian lower", i, lo, dl[i], 0);
        expect_close("donchian middle", i, (hi + lo) / 2, dm[i], 0);
        expect_close("vwap:7", i, pv / v, vr[i], REL_TOL);
        /* correl, two-pass */
        double mx = 0, my = 0;
        for (size_t j = a; j <= i; j++) {
            mx += b.h[j];
            my += b.l[j];
        }
        mx /= P;
        my /= P;
        double sxy = 0, sxx = 0, syy = 0;
        for (size_t j = a; j <= i; j++) {
            sxy += (b.h[j] - mx) * (b.l[j] - my);
            sxx += (b.h[j] - mx) * (b.h[j] - mx);
            syy += (b.l[j] - my) * (b.l[j] - my);
        }
        /* running sums vs two-pass (tools/talib-ref README: ~7e-10 seen);
         * |r| <= 1, so compare on the scale of 1 */
        if (fabs(sxy / sqrt(sxx * syy) - co[i]) > 1e-6)
            fail_msg("correl bar %zu: want %.17g got %.17g", i, sxy / sqrt(sxx * syy), co[i]);
        /* rvol: returns r_{a..i} (7 of them, needs bar a-1) */
        if (i >= (size_t)P) {
            double rs = 0, r2 = 0;
            for (size_t j = a; j <= i; j++) rs += log(b.c[j] / b.c[j - 1]);
            double rm = rs / P;
            for (size_t j = a; j <= i; j++) {
                double d0 = log(b.c[j] / b.c[j - 1]) - rm;
                r2 += d0 * d0;
            }
            expect_close("rvol", i, sqrt(r2 / (P - 1) * 252), rv[i], 1e-7);
        } else {
            expect_close("rvol", i, NAN, rv[i], 0);
        }
        /* aroon:7 over the bar and the 7 before it, ties to the latest */
        if (i >= (size_t)P) {
            size_t hix = i - (size_t)P, lox = hix;
            for (size_t j = i - (size_t)P; j <= i; j++) {
                if (b.h[j] >= b.h[hix]) hix = j;
                if (b.l[j] <= b.l[lox]) lox = j;
            }
            expect_close("aroon up", i, 100.0 / P * (double)(P - (int)(i - hix)), au[i], 1e-12);
            expect_close("aroon down", i, 100.0 / P * (double)(P - (int)(i - lox)), ad[i], 1e-12);
        }
    }
    /* keltner:7:1.5:5 = ema:7 +/- 1.5 * atr:5 */
    for (size_t i = 0; i < n; i++) {
        if (i < 6 || i < 5 || isnan(atr[i])) {
            expect_close("keltner", i, NAN, km[i], 0);
            continue;
        }
        expect_close("keltner middle", i, ema[i], km[i], 0);
        expect_close("keltner upper", i, ema[i] + 1.5 * atr[i], ku[i], 0);
        expect_close("keltner lower", i, ema[i] - 1.5 * atr[i], kl[i], 0);
    }
    double *all[] = {sma, wma, sd, z, lr, rv, dh, dm, dl, co, vc, vr, vd, ad, au, ku, km, kl,
                     ema, atr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    bars_free(&b);
}

/* aroon tie rule and a hand-checked EMA seed on a tiny series */
static void test_small_by_hand(void **state) {
    (void)state;
    double x[] = {1, 2, 3, 4, 5, 6};
    double o[6];
    assert_int_equal(qb_ta_ema_batch(x, 6, 3, o), QB_OK);
    assert_true(isnan(o[0]) && isnan(o[1]));
    assert_dbl(o[2], 2.0, 0);         /* SMA of 1,2,3 */
    assert_dbl(o[3], 3.0, 0);         /* (4-2)*0.5+2 */
    assert_int_equal(qb_ta_sma_batch(x, 6, 2, o), QB_OK);
    assert_dbl(o[5], 5.5, 0);
    assert_int_equal(qb_ta_rsi_batch(x, 6, 2, o), QB_OK);
    assert_dbl(o[2], 100.0, 0);
    double macd[6], sig[6], hist[6];
    assert_int_equal(qb_ta_macd_batch(x, 6, 2, 3, 2, macd, sig, hist), QB_OK);
    /* fast EMA(2) seeded at bar 2 with mean(2,3) = 2.5, slow EMA(3) = 2 */
    assert_dbl(macd[3], ((4 - 2.5) * (2.0 / 3) + 2.5) - 3.0, 1e-15);
    assert_true(isnan(macd[2]));
    double hi[] = {5, 7, 7, 6, 7, 4}, lo[] = {1, 1, 2, 1, 3, 3};
    qb_ta_series_t s = {.high = hi, .low = lo};
    double dn[6], up[6];
    double *out[3] = {dn, up, NULL};
    assert_int_equal(qb_ta_batch_spec("aroon:2", &s, 6, out, E, sizeof E), QB_OK);
    /* bar 4: window 2..4, highs 7,6,7 -> latest 7 at bar 4: up 100; lows
     * 2,1,3 -> bar 3: down 50 */
    assert_dbl(up[4], 100.0, 0);
    assert_dbl(dn[4], 50.0, 0);
    assert_int_equal(qb_ta_correl_batch(hi, hi, 6, 3, o), QB_OK);
    assert_dbl(o[5], 1.0, 1e-12);
    assert_int_equal(qb_ta_sma_batch(x, 6, 1, o), QB_ERR_RANGE);
    assert_int_equal(qb_ta_macd_batch(x, 6, 3, 3, 2, macd, sig, hist), QB_ERR_INVALID);
}

/* ---- 5: specs --------------------------------------------------------- */

static void expect_spec(const char *spec, const char *canon, int nout, int lookback) {
    qb_ta_t *ta = NULL;
    if (qb_ta_new(spec, &ta, E, sizeof E) != QB_OK) fail_msg("%s: %s", spec, E);
    assert_string_equal(qb_ta_spec(ta), canon);
    assert_int_equal(qb_ta_num_outputs(ta), nout);
    assert_int_equal(qb_ta_lookback(ta), lookback);
    qb_ta_destroy(ta);
}

static void test_specs(void **state) {
    (void)state;
    expect_spec("rsi", "rsi:14", 1, 14);
    expect_spec("RSI:14", "rsi:14", 1, 14);
    expect_spec(" macd ", "macd:12:26:9", 3, 33);
    expect_spec("macd::30", "macd:12:30:9", 3, 37);
    expect_spec("bbands", "bbands:5:2:2", 3, 4);
    expect_spec("bbands:20", "bbands:20:2:2", 3, 19);
    expect_spec("bbands:20:2:2:0", "bbands:20:2:2", 3, 19);
    expect_spec("bbands:20:2:2:1", "bbands:20:2:2:1", 3, 19);
    expect_spec("stoch", "stoch:5:3:3", 2, 8);
    expect_spec("stoch:14:3:3", "stoch:14:3:3", 2, 17);
    expect_spec("stochf", "stochf:5:3", 2, 6);
    expect_spec("stochrsi", "stochrsi:14:5:3", 2, 20);
    expect_spec("stochrsi:14:14:3", "stochrsi:14:14:3", 2, 29);
    expect_spec("sar", "sar:0.02:0.2", 1, 1);
    expect_spec("ultosc", "ultosc:7:14:28", 1, 28);
    expect_spec("adosc", "adosc:3:10", 1, 9);
    expect_spec("ppo", "ppo:12:26", 1, 25);
    expect_spec("aroon", "aroon:14", 2, 14);
    expect_spec("adx", "adx:14", 1, 27);
    expect_spec("trix", "trix:30", 1, 88);
    expect_spec("tema", "tema:30", 1, 87);
    expect_spec("kama", "kama:30", 1, 30);
    expect_spec("trange", "trange", 1, 1);
    expect_spec("obv", "obv", 1, 0);
    expect_spec("ad", "ad", 1, 0);
    expect_spec("vwap", "vwap:0", 1, 0);
    expect_spec("vwap:0:1", "vwap:0:1", 1, 0);
    expect_spec("keltner", "keltner:20:2", 3, 20);
    expect_spec("keltner:20:2:10", "keltner:20:2:10", 3, 19);
    expect_spec("correl", "correl:30", 1, 29);
    expect_spec("rvol", "rvol:20:252", 1, 20);
    expect_spec("stddev:5:1.5", "stddev:5:1.5", 1, 4);

    qb_ta_t *ta;
    char col[QB_TA_COLUMN_MAX];
    assert_int_equal(qb_ta_new("macd", &ta, E, sizeof E), QB_OK);
    qb_ta_column(ta, 1, col, sizeof col);
    assert_string_equal(col, "macd:12:26:9.signal");
    assert_string_equal(qb_ta_output_name(ta, 2), "hist");
    assert_null(qb_ta_output_name(ta, 3));
    assert_true(isnan(qb_ta_value(ta, 0)));
    assert_int_equal(qb_ta_inputs(ta), QB_TA_IN_CLOSE);
    /* a batch missing an input the indicator reads */
    qb_ta_series_t none = {0};
    double *o[3] = {NULL, NULL, NULL};
    assert_int_equal(qb_ta_batch(ta, &none, 3, o, E, sizeof E), QB_ERR_INVALID);
    assert_non_null(strstr(E, "close"));
    qb_ta_destroy(ta);
    assert_int_equal(qb_ta_new("rsi", &ta, E, sizeof E), QB_OK);
    qb_ta_column(ta, 0, col, sizeof col);
    assert_string_equal(col, "rsi:14");
    assert_string_equal(qb_ta_output_name(ta, 0), "");
    qb_ta_destroy(ta);
    qb_ta_destroy(NULL);

    for (int i = 0; i < qb_ta_kind_count(); i++) {
        const qb_ta_info_t *in = qb_ta_kind_info(i);
        assert_non_null(in->name);
        assert_int_equal(strncmp(in->syntax, in->name, strlen(in->name)), 0);
    }
    assert_null(qb_ta_kind_info(-1));
    assert_null(qb_ta_kind_info(qb_ta_kind_count()));
}

static void expect_bad(const char *spec, qb_err_t code, const char *msg) {
    qb_ta_t *ta = (qb_ta_t *)0x1;
    E[0] = 0;
    qb_err_t err = qb_ta_new(spec, &ta, E, sizeof E);
    if (err != code) fail_msg("'%s': got %s (%s), want %s", spec, qb_err_name(err), E,
                              qb_err_name(code));
    assert_ptr_equal(ta, (qb_ta_t *)0x1);
    if (!strstr(E, msg)) fail_msg("'%s': message '%s' lacks '%s'", spec, E, msg);
}

static void test_invalid(void **state) {
    (void)state;
    expect_bad("rsi:0", QB_ERR_RANGE, "rsi: period must be >= 2, got 0");
    expect_bad("rsi:1", QB_ERR_RANGE, "rsi: period must be >= 2, got 1");
    expect_bad("sma:-3", QB_ERR_RANGE, "sma: period must be >= 2, got -3");
    expect_bad("atr:0", QB_ERR_RANGE, "atr: period must be >= 1, got 0");
    expect_bad("ema:100001", QB_ERR_RANGE, "ema: period must be <= 100000");
    expect_bad("rsi:x", QB_ERR_PARSE, "rsi: period must be an integer, got 'x'");
    expect_bad("rsi:14.5", QB_ERR_PARSE, "must be an integer");
    expect_bad("rsi:14:3", QB_ERR_PARSE, "rsi: too many parameters");
    expect_bad("obv:3", QB_ERR_PARSE, "obv: takes no parameters");
    expect_bad("foo:3", QB_ERR_NOT_FOUND, "foo: unknown indicator");
    expect_bad("", QB_ERR_PARSE, "empty indicator name");
    expect_bad(":14", QB_ERR_PARSE, "empty indicator name");
    expect_bad("macd:26:12:9", QB_ERR_INVALID, "macd: slow (12) must be > fast (26)");
    expect_bad("macd:12:12:9", QB_ERR_INVALID, "macd: slow (12) must be > fast (12)");
    expect_bad("macd:12:26:1", QB_ERR_RANGE, "macd: signal must be >= 2, got 1");
    expect_bad("macd:1:26:9", QB_ERR_RANGE, "macd: fast must be >= 2, got 1");
    expect_bad("ppo:26:12", QB_ERR_INVALID, "ppo: slow (12) must be > fast (26)");
    expect_bad("ppo:12:26:7", QB_ERR_RANGE, "ppo: matype must be <= 6, got 7");
    expect_bad("adosc:10:3", QB_ERR_INVALID, "adosc: slow (3) must be > fast (10)");
    expect_bad("adosc:3:3", QB_ERR_INVALID, "adosc: slow (3) must be > fast (3)");
    expect_bad("bbands:20:x", QB_ERR_PARSE, "bbands: nbdevup must be a number, got 'x'");
    expect_bad("bbands:1", QB_ERR_RANGE, "bbands: period must be >= 2, got 1");
    expect_bad("bbands:20:2:2:-1", QB_ERR_RANGE, "bbands: matype must be >= 0, got -1");
    expect_bad("stoch:0:3:3", QB_ERR_RANGE, "stoch: fastk must be >= 1, got 0");
    expect_bad("stoch:5:0:3", QB_ERR_RANGE, "stoch: slowk must be >= 1, got 0");
    expect_bad("stochrsi:14:5:0", QB_ERR_RANGE, "stochrsi: fastd must be >= 1, got 0");
    expect_bad("sar:-0.1", QB_ERR_RANGE, "sar: acceleration must be >= 0, got -0.1");
    expect_bad("sar:0.3:0.2", QB_ERR_INVALID, "sar: acceleration (0.3) must be <= maximum");
    expect_bad("sar:nan", QB_ERR_PARSE, "sar: acceleration must be a number");
    expect_bad("ultosc:7:0:28", QB_ERR_RANGE, "ultosc: period2 must be >= 1, got 0");
    expect_bad("trix:1", QB_ERR_RANGE, "trix: period must be >= 2, got 1");
    expect_bad("natr:1", QB_ERR_RANGE, "natr: period must be >= 2, got 1");
    expect_bad("vwap:-1", QB_ERR_RANGE, "vwap: period must be >= 0, got -1");
    expect_bad("vwap:5:1", QB_ERR_INVALID, "vwap: reset=1 needs period 0");
    expect_bad("vwap:0:2", QB_ERR_RANGE, "vwap: reset must be <= 1, got 2");
    expect_bad("rvol:1", QB_ERR_RANGE, "rvol: period must be >= 2, got 1");
    expect_bad("rvol:20:0", QB_ERR_RANGE, "rvol: annualization must be >=");
    expect_bad("zscore:1", QB_ERR_RANGE, "zscore: period must be >= 2, got 1");
    expect_bad("donchian:0", QB_ERR_RANGE, "donchian: period must be >= 1, got 0");
    expect_bad("keltner:1", QB_ERR_RANGE, "keltner: period must be >= 2, got 1");
    expect_bad("correl:0", QB_ERR_RANGE, "correl: period must be >= 1, got 0");
    expect_bad("aroon:1", QB_ERR_RANGE, "aroon: period must be >= 2, got 1");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_small_by_hand),
        cmocka_unit_test(test_every_kind_stream_equals_batch),
        cmocka_unit_test(test_bruteforce),
        cmocka_unit_test(test_talib_synthetic),
        cmocka_unit_test(test_talib_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
