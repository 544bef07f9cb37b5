/* it_md_adjust.c — corporate actions and adjusted reads against a real
 * PostgreSQL (QB_PG_DSN), each test on its own migrated database.
 *
 * What is asserted:
 *   - hand-computed bars + actions stored in md.bars / md.corporate_actions
 *     read back adjusted (raw, split, total) to the values written out
 *     below; a range ending before a split is anchored on its own last bar;
 *     a dividend on the first bar of a range is skipped with a warning;
 *   - md.bars is byte-for-byte unchanged by the reads (md5 of every row
 *     before and after);
 *   - actions round-trip exactly (1:3 and 4:3 splits too), upsert, and a
 *     duplicate in one batch stores nothing;
 *   - real data: NVDA 1999-2014 from /work/shared/data (QB_SHARED_DATA).
 *     That Yahoo file's Open..Close are ALREADY split-adjusted (to the 2014
 *     share basis: the 1999 IPO-day close 19.6875 appears as 1.640625 =
 *     19.6875 / 12) and do not drop across NVDA's split ex-dates; the test
 *     asserts that, rebuilds the raw series by multiplying each bar by the
 *     product of the later split ratios (2:1 2000-06-27, 2:1 2001-09-17,
 *     2:1 2006-04-07, 3:2 2007-09-11; the raw close then drops by about
 *     each ratio, also asserted), stores it with those splits and NVDA's
 *     nine cash dividends 2012-11 .. 2014-11 (ex-dates and amounts as
 *     implied by the file's Adj Close/Close steps), and checks that
 *       split-adjusted OHLC == the file's OHLC exactly,
 *       split-adjusted close / Adj Close is constant before the first
 *         dividend (2012-11-20), within 1e-5,
 *       total-return close / Adj Close is constant over ALL 4012 bars,
 *         within 1e-5 (Yahoo's Adj Close also includes dividends paid after
 *         2014, hence "constant", not 1) — while split-only is not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_adjust.h"
#include "md/qb_md_csv.h"
#include "md/qb_md_store.h"
#include "qb_test.h"
#include "qb_test_md.h"
#include "qb_test_assert.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

static char E[2048];

typedef qb_test_md_db_t fx_t; /* a fresh migrated database */

static const char *scalar(qb_store_t *s, const char *sql) {
    static char v[4096];
    PGresult *r = NULL;
    OK(qb_store_query(s, sql, 0, NULL, &r, E, sizeof E));
    assert_int_equal(PQntuples(r), 1);
    snprintf(v, sizeof v, "%s", PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* md5 over every row of md.bars, in key order. */
static void bars_md5(qb_store_t *s, char *out, size_t cap) {
    snprintf(out, cap, "%s",
             scalar(s, "SELECT md5(coalesce(string_agg(b::text, '|' ORDER BY asset_id, timeframe, ts), ''))"
                       " || ':' || count(*) FROM md.bars b"));
}

static qb_time_t T(const char *day) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(day, strlen(day), &t), QB_OK);
    return t;
}

static qb_dec_t D(const char *s) {
    qb_dec_t v = 0;
    assert_int_equal(qb_dec_parse(s, strlen(s), &v), QB_OK);
    return v;
}

static qb_bar_t bar(const char *sym, const char *day, const char *o, const char *h, const char *l,
                    const char *c, const char *v) {
    qb_bar_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(qb_symbol_set(&b.symbol, sym, NULL, 0), QB_OK);
    snprintf(b.timeframe, sizeof b.timeframe, "1d");
    b.ts = T(day);
    b.open = D(o);
    b.high = D(h);
    b.low = D(l);
    b.close = D(c);
    b.volume = D(v);
    return b;
}

static void expect(const qb_bar_t *got, const char *day, const char *o, const char *h,
                   const char *l, const char *c, const char *v) {
    qb_dec_t gv[5] = {got->open, got->high, got->low, got->close, got->volume};
    qb_dec_t wv[5] = {D(o), D(h), D(l), D(c), D(v)};
    char g[5][QB_DEC_STRLEN];
    for (int i = 0; i < 5; i++) qb_dec_format(gv[i], g[i], sizeof g[i]);
    if (got->ts != T(day) || memcmp(gv, wv, sizeof gv) != 0)
        fail_msg("%s: got O %s H %s L %s C %s V %s, want O %s H %s L %s C %s V %s", day, g[0], g[1],
                 g[2], g[3], g[4], o, h, l, c, v);
}

static qb_md_action_t split(const char *day, int64_t num, int64_t den) {
    qb_md_action_t a;
    memset(&a, 0, sizeof a);
    a.ex_date = T(day);
    a.kind = QB_MD_ACTION_SPLIT;
    a.num = num;
    a.den = den;
    return a;
}

static qb_md_action_t dividend(const char *day, const char *amount) {
    qb_md_action_t a;
    memset(&a, 0, sizeof a);
    a.ex_date = T(day);
    a.kind = QB_MD_ACTION_DIVIDEND;
    a.amount = D(amount);
    return a;
}

static void load(qb_store_t *s, const char *sym, const qb_bar_t *b, size_t n) {
    int32_t aid = 0;
    OK(qb_md_asset_get_or_create(s, sym, "equity", &aid, E, sizeof E));
    qb_md_load_result_t res;
    OK(qb_md_store_load_bars(s, aid, "1d", "test", b, NULL, n, 0, &res, E, sizeof E));
    assert_int_equal(res.loaded, (int64_t)n);
}

/* ---- hand-computed ------------------------------------------------------------ */

static void test_adjusted_reads(void **state) {
    fx_t *f = *state;
    qb_bar_t raw[5] = {
        bar("ADJ", "2024-01-02", "30", "30.5", "29.5", "30.01", "1001"),
        /* ex 01-03: split 3:2 */
        bar("ADJ", "2024-01-03", "20", "21", "19.5", "20.5", "1500"),
        /* ex 01-04: dividend 0.205 on the previous close 20.5: f = 1 - 0.205/20.5 = 0.99 */
        bar("ADJ", "2024-01-04", "20.5", "21", "20", "20.75", "1505"),
        /* ex 01-05: reverse split 1:10 */
        bar("ADJ", "2024-01-05", "207", "210", "205", "205", "150"),
        bar("ADJ", "2024-01-08", "205", "212", "204", "210", "160"),
    };
    load(f->s, "ADJ", raw, 5);
    /* another symbol's bars and actions must not leak in */
    qb_bar_t other[2] = {bar("OTHER", "2024-01-02", "1", "1", "1", "1", "1"),
                         bar("OTHER", "2024-01-05", "1", "1", "1", "1", "1")};
    load(f->s, "OTHER", other, 2);
    qb_md_action_t oa = split("2024-01-03", 5, 1);
    OK(qb_md_actions_put(f->s, "OTHER", "equity", &oa, 1, "test", E, sizeof E));

    /* unsorted on purpose */
    qb_md_action_t acts[3] = {split("2024-01-05", 1, 10), dividend("2024-01-04", "0.205"),
                              split("2024-01-03", 3, 2)};
    OK(qb_md_actions_put(f->s, "adj", "equity", acts, 3, "test", E, sizeof E));
    assert_string_equal(scalar(f->s, "SELECT string_agg(ex_date || ' ' || kind || ' ' || coalesce(ratio::text, '-')"
                                     " || ' ' || coalesce(amount::text, '-'), '; ' ORDER BY ex_date)"
                                     " FROM md.corporate_actions JOIN md.assets USING (asset_id)"
                                     " WHERE symbol = 'ADJ'"),
                        "2024-01-03 split 1.50000000000000000000 -; 2024-01-04 dividend - 0.205; "
                        "2024-01-05 split 0.10000000000000000000 -");
    char before[128], after[128];
    bars_md5(f->s, before, sizeof before);

    qb_bar_t *b = NULL;
    size_t n = 0;
    qb_md_adjust_stats_t st;
    /* RAW: the stored bars */
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", 0, 0, QB_MD_ADJ_RAW, &b, &n, &st, E, sizeof E));
    assert_int_equal(n, 5);
    expect(&b[0], "2024-01-02", "30", "30.5", "29.5", "30.01", "1001");
    expect(&b[3], "2024-01-05", "207", "210", "205", "205", "150");
    free(b);

    /* SPLIT: 01-02 is before both splits: / (3/2 * 1/10) = * 20/3, volume * 3/20
     *   30 -> 200, 30.5 -> 203.33333333, 29.5 -> 196.66666667, 30.01 -> 200.06666667, 1001 -> 150.15
     * 01-03 and 01-04 are before the 1:10 only: * 10, volume / 10 */
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", 0, 0, QB_MD_ADJ_SPLIT, &b, &n, &st, E, sizeof E));
    assert_int_equal(n, 5);
    expect(&b[0], "2024-01-02", "200", "203.33333333", "196.66666667", "200.06666667", "150.15");
    expect(&b[1], "2024-01-03", "200", "210", "195", "205", "150");
    expect(&b[2], "2024-01-04", "205", "210", "200", "207.5", "150.5");
    expect(&b[3], "2024-01-05", "207", "210", "205", "205", "150");
    expect(&b[4], "2024-01-08", "205", "212", "204", "210", "160");
    assert_int_equal(st.splits_applied, 2);
    free(b);

    /* TOTAL: 01-02 * 0.99 * 20/3 = * 6.6: 198, 201.3, 194.7, 198.066; volume 150.15
     *        01-03 * 0.99 * 10  = * 9.9: 198, 207.9, 193.05, 202.95; volume 150
     *        01-04 is ON the dividend's ex-date: only * 10 */
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", 0, 0, QB_MD_ADJ_TOTAL, &b, &n, &st, E, sizeof E));
    assert_int_equal(n, 5);
    expect(&b[0], "2024-01-02", "198", "201.3", "194.7", "198.066", "150.15");
    expect(&b[1], "2024-01-03", "198", "207.9", "193.05", "202.95", "150");
    expect(&b[2], "2024-01-04", "205", "210", "200", "207.5", "150.5");
    expect(&b[3], "2024-01-05", "207", "210", "205", "205", "150");
    assert_int_equal(st.splits_applied, 2);
    assert_int_equal(st.dividends_applied, 1);
    free(b);

    /* A range ending before the 1:10 split is anchored on ITS last bar (01-04):
     *   TOTAL 01-02 * 0.99 / 1.5 = * 0.66: close 30.01 * 0.66 = 19.8066
     *         01-03 * 0.99: close 20.295
     *   SPLIT 01-02 close 30.01 / 1.5 = 20.00666666.. -> 20.00666667 */
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", T("2024-01-02"), T("2024-01-05"), QB_MD_ADJ_TOTAL, &b, &n, &st,
                           E, sizeof E));
    assert_int_equal(n, 3);
    expect(&b[0], "2024-01-02", "19.8", "20.13", "19.47", "19.8066", "1501.5");
    expect(&b[1], "2024-01-03", "19.8", "20.79", "19.305", "20.295", "1500");
    expect(&b[2], "2024-01-04", "20.5", "21", "20", "20.75", "1505");
    assert_int_equal(st.splits_applied, 1);
    free(b);
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", T("2024-01-02"), T("2024-01-05"), QB_MD_ADJ_SPLIT, &b, &n, &st,
                           E, sizeof E));
    expect(&b[0], "2024-01-02", "20", "20.33333333", "19.66666667", "20.00666667", "1501.5");
    free(b);

    /* A range starting ON the dividend's ex-date: no close before it */
    OK(qb_md_read_adjusted(f->s, "ADJ", "1d", T("2024-01-04"), 0, QB_MD_ADJ_TOTAL, &b, &n, &st, E, sizeof E));
    assert_int_equal(n, 3);
    assert_int_equal(st.div_no_prev_close, 1);
    assert_int_equal(st.dividends_applied, 0);
    expect(&b[0], "2024-01-04", "205", "210", "200", "207.5", "150.5");
    free(b);

    /* nothing there */
    OK(qb_md_read_adjusted(f->s, "NOSUCH", "1d", 0, 0, QB_MD_ADJ_TOTAL, &b, &n, &st, E, sizeof E));
    assert_int_equal(n, 0);
    assert_null(b);

    /* reads wrote nothing */
    bars_md5(f->s, after, sizeof after);
    assert_string_equal(before, after);
    assert_string_equal(scalar(f->s, "SELECT count(*) FROM md.bars"), "7");
}

static void test_actions_store(void **state) {
    fx_t *f = *state;
    /* 1:3 and 4:3 are not terminating decimals: stored with 20 decimals,
     * read back as the exact fractions */
    qb_md_action_t a[4] = {split("2020-03-02", 1, 3), split("2021-05-03", 4, 3), dividend("2021-05-03", "0.0875"),
                           split("2022-07-01", 1000000000, 999999999)};
    OK(qb_md_actions_put(f->s, "RT", "etf", a, 4, "test", E, sizeof E));
    /* idempotent: the same again is still 4 rows */
    OK(qb_md_actions_put(f->s, "RT", "etf", a, 4, "test", E, sizeof E));
    assert_string_equal(scalar(f->s, "SELECT count(*) FROM md.corporate_actions"), "4");
    assert_string_equal(scalar(f->s, "SELECT ratio::text FROM md.corporate_actions WHERE ex_date = '2020-03-02'"),
                        "0.33333333333333333333");
    qb_md_action_t *r = NULL;
    size_t n = 0;
    OK(qb_md_actions_read(f->s, "rt", 0, 0, &r, &n, E, sizeof E));
    assert_int_equal(n, 4);
    assert_true(r[0].kind == QB_MD_ACTION_SPLIT && r[0].num == 1 && r[0].den == 3);
    assert_int_equal(r[0].ex_date, T("2020-03-02"));
    assert_true(r[1].kind == QB_MD_ACTION_SPLIT && r[1].num == 4 && r[1].den == 3); /* split before dividend */
    assert_true(r[2].kind == QB_MD_ACTION_DIVIDEND && r[2].amount == D("0.0875"));
    assert_true(r[3].num == 1000000000 && r[3].den == 999999999);
    free(r);
    /* range [2021-05-03, 2022-07-01) */
    OK(qb_md_actions_read(f->s, "RT", T("2021-05-03"), T("2022-07-01"), &r, &n, E, sizeof E));
    assert_int_equal(n, 2);
    free(r);
    /* an upsert replaces the value */
    qb_md_action_t up = dividend("2021-05-03", "0.09");
    OK(qb_md_actions_put(f->s, "RT", "etf", &up, 1, "fix", E, sizeof E));
    assert_string_equal(scalar(f->s, "SELECT amount::text || ' ' || source FROM md.corporate_actions"
                                     " WHERE kind = 'dividend'"),
                        "0.09 fix");
    /* a duplicate in one batch: nothing of the batch is stored */
    qb_md_action_t dup[3] = {split("2023-01-03", 2, 1), dividend("2023-02-01", "1"), split("2023-01-03", 3, 1)};
    ERR(QB_ERR_INVALID, qb_md_actions_put(f->s, "RT", "etf", dup, 3, "test", E, sizeof E));
    assert_string_equal(scalar(f->s, "SELECT count(*) FROM md.corporate_actions"), "4");
    /* a ratio written by someone else (qb_md_store_put_corporate_action, 8
     * decimals) is taken exactly as written */
    int32_t aid = 0;
    OK(qb_md_asset_get_or_create(f->s, "RT", "etf", &aid, E, sizeof E));
    OK(qb_md_store_put_corporate_action(f->s, aid, T("2024-01-02"), QB_MD_ACTION_SPLIT, D("0.33333333"), "other",
                                        E, sizeof E));
    OK(qb_md_actions_read(f->s, "RT", T("2024-01-01"), 0, &r, &n, E, sizeof E));
    assert_int_equal(n, 1);
    assert_true(r[0].num == 33333333 && r[0].den == 100000000);
    free(r);
    /* a stored ratio that is no small fraction is an error naming the row */
    OK(qb_store_exec(f->s, "UPDATE md.corporate_actions SET ratio = 3.14159265358979323846"
                           " WHERE ex_date = '2024-01-02'", E, sizeof E));
    ERR(QB_ERR_RANGE, qb_md_actions_read(f->s, "RT", T("2024-01-01"), 0, &r, &n, E, sizeof E));
    assert_non_null(strstr(E, "RT split on 2024-01-02"));
}

/* ---- real data: NVDA ------------------------------------------------------------ */

typedef struct coll_s {
    qb_bar_t *b;
    size_t n, cap;
    int rejects;
} coll_t;

static qb_err_t coll_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr, size_t errstr_size) {
    coll_t *c = opaque;
    if (c->n + n > c->cap) {
        c->cap = (c->n + n) * 2;
        c->b = realloc(c->b, c->cap * sizeof(*c->b));
        if (!c->b) return QB_ERR_NOMEM;
    }
    memcpy(c->b + c->n, bars, n * sizeof(*bars));
    c->n += n;
    return QB_OK;
}

static void coll_reject(void *opaque, const char *where, const char *reason) {
    coll_t *c = opaque;
    fprintf(stderr, "unexpected reject %s: %s\n", where, reason);
    c->rejects++;
}

static const struct {
    const char *day;
    int64_t num, den;
} nvda_splits[] = {{"2000-06-27", 2, 1}, {"2001-09-17", 2, 1}, {"2006-04-07", 2, 1}, {"2007-09-11", 3, 2}};

/* Ex-dates and amounts: where the file's Adj Close / Close steps, with
 * D = C_prev * (1 - step) rounding to these (0.075, then 0.085). */
static const struct {
    const char *day, *amount;
} nvda_divs[] = {{"2012-11-20", "0.075"}, {"2013-02-26", "0.075"}, {"2013-05-21", "0.075"},
                 {"2013-08-20", "0.075"}, {"2013-11-19", "0.085"}, {"2014-02-25", "0.085"},
                 {"2014-05-20", "0.085"}, {"2014-08-19", "0.085"}, {"2014-11-19", "0.085"}};

#define NSPLITS (sizeof nvda_splits / sizeof nvda_splits[0])
#define NDIVS (sizeof nvda_divs / sizeof nvda_divs[0])

/* Product (as a qb_dec_t) of the ratios of the splits after ts. */
static qb_dec_t later_ratio(qb_time_t ts) {
    qb_dec_t r = QB_DEC_SCALE;
    for (size_t k = 0; k < NSPLITS; k++)
        if (T(nvda_splits[k].day) > ts) {
            qb_dec_t ratio = 0, t = 0;
            assert_int_equal(qb_dec_div(nvda_splits[k].num * QB_DEC_SCALE, nvda_splits[k].den * QB_DEC_SCALE,
                                        &ratio, QB_ROUND_HALF_EVEN), QB_OK);
            assert_int_equal(qb_dec_mul(r, ratio, &t, QB_ROUND_HALF_EVEN), QB_OK);
            r = t;
        }
    return r;
}

static size_t index_of(const qb_bar_t *b, size_t n, qb_time_t ts) {
    for (size_t i = 0; i < n; i++)
        if (b[i].ts == ts) return i;
    fail_msg("no bar on the ex-date");
    return 0;
}

static void test_nvda_real_data(void **state) {
    fx_t *f = *state;
    char dir[1024], path[1200];
    const char *sd = getenv("QB_SHARED_DATA");
    if (sd && *sd) snprintf(dir, sizeof dir, "%s", sd);
    else snprintf(dir, sizeof dir, "%s/../shared/data", qb_test_md_root());
    snprintf(path, sizeof path, "%s/nvda-1999-2014.txt", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) fail_msg("real data file %s is missing (set QB_SHARED_DATA to the directory holding it)", path);

    /* the file's bars through the CSV source (Adj Close is not a bar field) */
    coll_t c;
    memset(&c, 0, sizeof c);
    qb_md_source_t *src = qb_md_csv_source_new(path, NULL, E, sizeof E);
    assert_non_null(src);
    qb_md_sink_t sink = {coll_bars, coll_reject, &c};
    qb_md_request_t req = {"NVDA", "1d", 0, 0, 0};
    OK(qb_md_fetch(src, &req, &sink, E, sizeof E));
    qb_md_source_destroy(src);
    assert_int_equal(c.rejects, 0);
    assert_true(c.n > 4000);
    const size_t n = c.n;
    qb_bar_t *file = c.b;

    /* Adj Close, line by line (same order as the bars) */
    double *adj = calloc(n, sizeof(*adj));
    char line[512];
    size_t k = 0;
    int first = 1;
    while (fgets(line, sizeof line, fp)) {
        if (first) {
            first = 0;
            continue;
        }
        char *save = NULL, *tok = strtok_r(line, ",", &save);
        if (!tok) continue;
        assert_true(k < n);
        assert_int_equal(T(tok), file[k].ts);
        for (int col = 1; col <= 5; col++) tok = strtok_r(NULL, ",", &save);
        assert_non_null(tok);
        adj[k++] = strtod(tok, NULL);
    }
    fclose(fp);
    assert_int_equal(k, n);

    /* The file is already split-adjusted: across each ex-date its close moves
     * by far less than the ratio would make a raw close move. */
    for (size_t s = 0; s < NSPLITS; s++) {
        size_t i = index_of(file, n, T(nvda_splits[s].day));
        double move = log(qb_dec_to_double(file[i].close) / qb_dec_to_double(file[i - 1].close));
        double ratio = (double)nvda_splits[s].num / (double)nvda_splits[s].den;
        if (fabs(move) > log(ratio) / 2)
            fail_msg("%s: the file's close moves by %.3f across the split: not split-adjusted?",
                     nvda_splits[s].day, exp(move));
    }

    /* Rebuild the raw series: price * product of later ratios (exact: 6
     * decimals times 12, 6, 3 or 1.5), volume / that product. */
    qb_bar_t *raw = calloc(n, sizeof(*raw));
    for (size_t i = 0; i < n; i++) {
        qb_dec_t r = later_ratio(file[i].ts);
        raw[i] = file[i];
        qb_dec_t *p[4] = {&raw[i].open, &raw[i].high, &raw[i].low, &raw[i].close};
        for (int j = 0; j < 4; j++) assert_int_equal(qb_dec_mul(*p[j], r, p[j], QB_ROUND_HALF_EVEN), QB_OK);
        assert_int_equal(qb_dec_div(file[i].volume, r, &raw[i].volume, QB_ROUND_HALF_EVEN), QB_OK);
    }
    /* ... whose close drops by about each ratio across its ex-date (within
     * 25%: the market moved too, e.g. -10% on 2001-09-17) */
    for (size_t s = 0; s < NSPLITS; s++) {
        size_t i = index_of(raw, n, T(nvda_splits[s].day));
        double got = qb_dec_to_double(raw[i].close) / qb_dec_to_double(raw[i - 1].close);
        double want = (double)nvda_splits[s].den / (double)nvda_splits[s].num;
        if (fabs(got / want - 1) > 0.25) fail_msg("%s: raw close ratio %.3f, want about %.3f", nvda_splits[s].day, got, want);
    }
    /* and the 1999 IPO day is back at its traded price: 1.640625 * 12 */
    assert_int_equal(raw[0].close, D("19.6875"));

    load(f->s, "NVDA", raw, n);
    qb_md_action_t acts[NSPLITS + NDIVS];
    for (size_t s = 0; s < NSPLITS; s++) acts[s] = split(nvda_splits[s].day, nvda_splits[s].num, nvda_splits[s].den);
    for (size_t d = 0; d < NDIVS; d++) acts[NSPLITS + d] = dividend(nvda_divs[d].day, nvda_divs[d].amount);
    OK(qb_md_actions_put(f->s, "NVDA", "equity", acts, NSPLITS + NDIVS, "test", E, sizeof E));
    char before[128], after[128];
    bars_md5(f->s, before, sizeof before);

    /* RAW read == what was stored */
    qb_bar_t *b = NULL;
    size_t nb = 0;
    qb_md_adjust_stats_t st;
    OK(qb_md_read_adjusted(f->s, "NVDA", "1d", 0, 0, QB_MD_ADJ_RAW, &b, &nb, &st, E, sizeof E));
    assert_int_equal(nb, n);
    for (size_t i = 0; i < n; i++)
        if (b[i].ts != raw[i].ts || b[i].close != raw[i].close || b[i].volume != raw[i].volume)
            fail_msg("raw bar %zu differs", i);
    free(b);

    /* SPLIT == the file's OHLC exactly; volume within rounding (the raw
     * volume was divided by up to 12 and rounded to 1e-8) */
    OK(qb_md_read_adjusted(f->s, "NVDA", "1d", 0, 0, QB_MD_ADJ_SPLIT, &b, &nb, &st, E, sizeof E));
    assert_int_equal(nb, n);
    assert_int_equal(st.splits_applied, NSPLITS);
    const qb_time_t first_div = T(nvda_divs[0].day);
    double ref = 0, worst = 0, spread_all_lo = 1e9, spread_all_hi = 0;
    for (size_t i = n; i-- > 0;) {
        if (b[i].open != file[i].open || b[i].high != file[i].high || b[i].low != file[i].low ||
            b[i].close != file[i].close) {
            char t[QB_TIME_STRLEN], g[QB_DEC_STRLEN], w[QB_DEC_STRLEN];
            qb_time_format(b[i].ts, t, sizeof t);
            qb_dec_format(b[i].close, g, sizeof g);
            qb_dec_format(file[i].close, w, sizeof w);
            fail_msg("%s: split-adjusted close %s, file %s", t, g, w);
        }
        if (llabs(b[i].volume - file[i].volume) > 12) fail_msg("bar %zu: volume off by more than rounding", i);
        double r = qb_dec_to_double(b[i].close) / adj[i];
        if (r < spread_all_lo) spread_all_lo = r;
        if (r > spread_all_hi) spread_all_hi = r;
        if (b[i].ts >= first_div) continue;
        if (ref == 0) ref = r; /* the last bar before the first dividend */
        if (fabs(r / ref - 1) > worst) worst = fabs(r / ref - 1);
    }
    fprintf(stderr, "NVDA split-only close / Adj Close before 2012-11-20: %.8f, worst deviation %.2e\n", ref, worst);
    assert_true(worst < 1e-5);
    /* over the whole file split-only is NOT enough: the dividends move it */
    assert_true(spread_all_hi / spread_all_lo - 1 > 0.03);
    free(b);

    /* TOTAL tracks Adj Close over all bars, dividends included */
    OK(qb_md_read_adjusted(f->s, "NVDA", "1d", 0, 0, QB_MD_ADJ_TOTAL, &b, &nb, &st, E, sizeof E));
    assert_int_equal(nb, n);
    assert_int_equal(st.splits_applied, NSPLITS);
    assert_int_equal(st.dividends_applied, NDIVS);
    assert_int_equal(st.div_no_prev_close + st.div_too_large + st.outside, 0);
    ref = qb_dec_to_double(b[n - 1].close) / adj[n - 1];
    worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double r = qb_dec_to_double(b[i].close) / adj[i];
        if (fabs(r / ref - 1) > worst) {
            worst = fabs(r / ref - 1);
            worst_i = i;
        }
    }
    char wt[QB_TIME_STRLEN];
    qb_time_format(b[worst_i].ts, wt, sizeof wt);
    fprintf(stderr, "NVDA total-return close / Adj Close: %.8f, worst deviation %.2e on %.10s\n", ref, worst, wt);
    assert_true(worst < 1e-5);
    /* the newest bar is the anchor */
    assert_int_equal(b[n - 1].close, raw[n - 1].close);
    free(b);

    bars_md5(f->s, after, sizeof after);
    assert_string_equal(before, after);
    free(raw);
    free(file);
    free(adj);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_adjusted_reads, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_actions_store, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_nvda_real_data, qb_test_md_db_setup, qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
