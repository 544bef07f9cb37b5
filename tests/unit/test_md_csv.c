/* test_md_csv.c — the CSV source (libs/md/qb_md_csv): Yahoo and generic
 * formats, header detection, quoting, CRLF/BOM/blank lines, time formats and
 * offsets, every reject reason with its line number, batching with
 * qb_md_csv_line_of, range filtering, the committed fixture file and a
 * missing file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_csv.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[1024];

typedef struct rec_s {
    qb_bar_t bars[256];
    int64_t lines[256];
    size_t n;
    char where[64][256];
    char reason[64][512];
    size_t nrej;
    int calls;
    qb_md_source_t *src;
} rec_t;

static qb_err_t rec_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                         size_t errstr_size) {
    rec_t *r = opaque;
    r->calls++;
    for (size_t i = 0; i < n && r->n < 256; i++) {
        r->lines[r->n] = qb_md_csv_line_of(r->src, i);
        r->bars[r->n++] = bars[i];
    }
    return QB_OK;
}

static void rec_reject(void *opaque, const char *where, const char *reason) {
    rec_t *r = opaque;
    if (r->nrej < 64) {
        snprintf(r->where[r->nrej], 256, "%s", where);
        snprintf(r->reason[r->nrej], 512, "%s", reason);
    }
    r->nrej++;
}

/* Run a buffer through a CSV source; returns the fetch result. */
static qb_err_t run_buf(rec_t *r, const char *text, const qb_md_csv_opts_t *o,
                        const char *timeframe, qb_time_t from, qb_time_t to) {
    memset(r, 0, sizeof(*r));
    qb_md_source_t *src = qb_md_csv_source_new_buffer("t.csv", text, strlen(text), o, E, sizeof E);
    assert_non_null(src);
    r->src = src;
    qb_md_request_t req = {"test", timeframe, from, to, 0};
    qb_md_sink_t sink = {rec_bars, rec_reject, r};
    qb_err_t err = qb_md_fetch(src, &req, &sink, E, sizeof E);
    assert_string_equal(qb_md_source_name(src), "csv");
    qb_md_source_destroy(src);
    return err;
}

static qb_time_t T(const char *s) {
    qb_time_t t = 0;
    assert_int_equal(qb_time_parse(s, strlen(s), &t), QB_OK);
    return t;
}

static qb_dec_t D(const char *s) {
    qb_dec_t d = 0;
    assert_int_equal(qb_dec_parse(s, strlen(s), &d), QB_OK);
    return d;
}

static void has_reject(const rec_t *r, size_t i, const char *where, const char *reason_prefix) {
    if (i >= r->nrej) fail_msg("reject %zu missing (only %zu)", i, r->nrej);
    assert_string_equal(r->where[i], where);
    if (strncmp(r->reason[i], reason_prefix, strlen(reason_prefix)) != 0)
        fail_msg("reject %zu: \"%s\" does not start with \"%s\"", i, r->reason[i], reason_prefix);
}

static void test_yahoo_basic(void **state) {
    rec_t *r = malloc(sizeof(*r));
    OK(run_buf(r,
               "Date,Open,High,Low,Close,Adj Close,Volume\n"
               "1999-01-22,1.750000,1.953125,1.552083,1.640625,1.518424,67867200\n"
               "1999-01-25,1.770833,1.833333,1.640625,1.812500,1.677496,12762000\n",
               NULL, "1d", 0, 0));
    assert_int_equal(r->n, 2);
    assert_int_equal(r->nrej, 0);
    const qb_bar_t *b = &r->bars[0];
    assert_string_equal(b->symbol.s, "TEST");
    assert_string_equal(b->timeframe, "1d");
    assert_int_equal(b->ts, T("1999-01-22"));
    assert_int_equal(b->open, D("1.75"));
    assert_int_equal(b->high, D("1.953125"));
    assert_int_equal(b->low, D("1.552083"));
    assert_int_equal(b->close, D("1.640625")); /* raw close, not Adj Close */
    assert_int_equal(b->volume, D("67867200"));
    assert_int_equal(r->lines[0], 2);
    assert_int_equal(r->lines[1], 3);
    free(r);
}

static void test_yahoo_no_header_crlf_bom(void **state) {
    rec_t *r = malloc(sizeof(*r));
    /* BOM, CRLF, blank lines, whitespace line, no final newline */
    OK(run_buf(r,
               "\xEF\xBB\xBF" "2024-01-02,1,2,0.5,1.5,1.4,10\r\n"
               "\r\n"
               "   \r\n"
               "2024-01-03,1.5,2.5,1.25,2,1.9,20",
               NULL, "1d", 0, 0));
    assert_int_equal(r->n, 2);
    assert_int_equal(r->nrej, 0);
    assert_int_equal(r->bars[1].ts, T("2024-01-03"));
    assert_int_equal(r->bars[1].low, D("1.25"));
    assert_int_equal(r->bars[1].volume, D("20"));
    assert_int_equal(r->lines[1], 4);
    free(r);
}

static void test_yahoo_header_by_name_reordered(void **state) {
    rec_t *r = malloc(sizeof(*r));
    OK(run_buf(r, "volume,date,close,low,high,open\n10,2024-01-02,1.5,1,2,1.25\n", NULL,
               "1d", 0, 0));
    assert_int_equal(r->n, 1);
    assert_int_equal(r->bars[0].open, D("1.25"));
    assert_int_equal(r->bars[0].close, D("1.5"));
    assert_int_equal(r->bars[0].volume, D("10"));
    /* a header without Volume is a fatal error naming it */
    ERR(QB_ERR_PARSE, run_buf(r, "Date,Open,High,Low,Close\n", NULL, "1d", 0, 0));
    assert_non_null(strstr(E, "Volume"));
    free(r);
}

static void test_reject_reasons_with_lines(void **state) {
    rec_t *r = malloc(sizeof(*r));
    char *longline = malloc(70000 + 64);
    memset(longline, '1', 70000);
    longline[70000] = '\0';
    char *text = malloc(80000 + 2048);
    snprintf(text, 80000 + 2048,
             "Date,Open,High,Low,Close,Adj Close,Volume\n"      /* 1 */
             "2024-01-02,1,2,0.5,1.5,1.4,10\n"                  /* 2 ok */
             "2024-01-03,null,null,null,null,null,null\n"       /* 3 */
             "2024-01-04,1,2x,0.5,1.5,1.4,10\n"                 /* 4 */
             "2024-02-30,1,2,0.5,1.5,1.4,10\n"                  /* 5 */
             "2024-01-06,1,2\n"                                 /* 6 */
             "2024-01-07,,2,0.5,1.5,1.4,10\n"                   /* 7 */
             "2024-01-08,\"1,2,0.5,1.5,1.4,10\n"                /* 8 */
             "2024-01-09,\"1\"x,2,0.5,1.5,1.4,10\n"             /* 9 */
             "%s\n"                                             /* 10 */
             ",1,2,0.5,1.5,1.4,10\n"                            /* 11 */
             "2024-01-12,1,2,0.5,1.5,1.4,99999999999999\n"      /* 12: volume overflows */
             "2024-01-13,1,2,0.5,1.5,1.4,10\n",                 /* 13 ok */
             longline);
    OK(run_buf(r, text, NULL, "1d", 0, 0));
    assert_int_equal(r->n, 2);
    assert_int_equal(r->lines[0], 2);
    assert_int_equal(r->lines[1], 13);
    assert_int_equal(r->nrej, 10);
    has_reject(r, 0, "t.csv:3", "null_value: column Open (2) is null");
    has_reject(r, 1, "t.csv:4", "bad_number: column High (3): '2x' is not a decimal number");
    has_reject(r, 2, "t.csv:5", "bad_time: column Date (1): '2024-02-30' is not a date");
    has_reject(r, 3, "t.csv:6", "column_count: 3 columns, need at least 7");
    has_reject(r, 4, "t.csv:7", "missing_value: column Open (2) is empty");
    has_reject(r, 5, "t.csv:8", "bad_quote: field 2: unterminated");
    has_reject(r, 6, "t.csv:9", "bad_quote: field 2: text after the closing quote");
    has_reject(r, 7, "t.csv:10", "line_too_long");
    has_reject(r, 8, "t.csv:11", "missing_value: column Date (1) is empty");
    has_reject(r, 9, "t.csv:12", "bad_number: column Volume (7): '99999999999999' is out of range");
    free(text);
    free(longline);
    free(r);
}

static void test_generic_quoted_by_name(void **state) {
    rec_t *r = malloc(sizeof(*r));
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    o.format = QB_MD_CSV_GENERIC;
    o.delimiter = ';';
    o.time_format = QB_MD_CSV_TIME_ISO;
    o.names[0] = "time";
    o.names[1] = "o";
    o.names[2] = "h";
    o.names[3] = "l";
    o.names[4] = "c";
    o.names[5] = "v";
    OK(run_buf(r,
               "\"note\";\"time\";\"o\";\"h\";\"l\";\"c\";\"v\"\r\n"
               "\"a \"\"quoted\"\"; note\";2024-01-02T14:30:00Z;\"100.5\";101;100;100.25;1.5\r\n"
               "x;2024-01-02T09:31:00-05:00;100.25;100.5;100;100.5;2\r\n"
               "x;2024-01-02T16:02:00+01:30;100.5;100.5;100.5;100.5;0\r\n",
               &o, "1m", 0, 0));
    assert_int_equal(r->nrej, 0);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->bars[0].ts, T("2024-01-02T14:30:00Z"));
    assert_int_equal(r->bars[0].open, D("100.5"));
    assert_int_equal(r->bars[0].volume, D("1.5"));
    assert_int_equal(r->bars[1].ts, T("2024-01-02T14:31:00Z")); /* -05:00 -> UTC */
    assert_int_equal(r->bars[2].ts, T("2024-01-02T14:32:00Z")); /* +01:30 -> UTC */
    free(r);
}

static void test_time_formats(void **state) {
    rec_t *r = malloc(sizeof(*r));
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    o.format = QB_MD_CSV_GENERIC;
    o.time_format = QB_MD_CSV_TIME_ISO;
    /* no offset: rejected; daily with offset: local session date at 00:00 UTC */
    OK(run_buf(r,
               "ts,open,high,low,close,volume\n"
               "2024-01-02T09:30:00,1,1,1,1,1\n"
               "2024-01-03T00:00:00-05:00,1,1,1,1,1\n"
               "2024-01-04T23:00:00+09:00,1,1,1,1,1\n",
               &o, "1d", 0, 0));
    assert_int_equal(r->nrej, 1);
    has_reject(r, 0, "t.csv:2", "bad_time: column time (1): '2024-01-02T09:30:00' has no UTC offset");
    assert_int_equal(r->n, 2);
    assert_int_equal(r->bars[0].ts, T("2024-01-03"));
    assert_int_equal(r->bars[1].ts, T("2024-01-04"));

    o.time_format = QB_MD_CSV_TIME_UNIX_S;
    OK(run_buf(r, "t,o,h,l,c,v\n1704205800,1,1,1,1,1\nabc,1,1,1,1,1\n", &o, "1m", 0, 0));
    assert_int_equal(r->n, 1);
    assert_int_equal(r->bars[0].ts, T("2024-01-02T14:30:00Z"));
    has_reject(r, 0, "t.csv:3", "bad_time: column time (1): 'abc' is not an integer of seconds");

    o.time_format = QB_MD_CSV_TIME_UNIX_MS;
    /* no header: first line's time parses; daily floors to the UTC day */
    OK(run_buf(r, "1704205800123,1,1,1,1,1\n", &o, "1d", 0, 0));
    assert_int_equal(r->n, 1);
    assert_int_equal(r->bars[0].ts, T("2024-01-02"));
    OK(run_buf(r, "1704205800123,1,1,1,1,1\n", &o, "1m", 0, 0));
    assert_int_equal(r->bars[0].ts, T("2024-01-02T14:30:00.123Z"));
    free(r);
}

static void test_generic_indexes_no_volume(void **state) {
    rec_t *r = malloc(sizeof(*r));
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    o.format = QB_MD_CSV_GENERIC;
    o.delimiter = '\t';
    int idx[6] = {4, 0, 1, 2, 3, -1};
    memcpy(o.index, idx, sizeof idx);
    OK(run_buf(r, "O\tH\tL\tC\tDay\n1\t3\t0.5\t2\t2024-01-02\n1e1\t12\t9\t11.123456789\t2024-01-03\n",
               &o, "1d", 0, 0));
    assert_int_equal(r->nrej, 0);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->bars[0].high, D("3"));
    assert_int_equal(r->bars[0].volume, 0);
    assert_int_equal(r->bars[1].open, D("10"));
    assert_int_equal(r->bars[1].close, D("11.12345679")); /* rounded half-even */
    free(r);
}

static void test_batches_and_range(void **state) {
    rec_t *r = malloc(sizeof(*r));
    char text[4096] = "Date,Open,High,Low,Close,Adj Close,Volume\n";
    for (int d = 1; d <= 10; d++) {
        char line[128];
        snprintf(line, sizeof line, "2024-03-%02d,1,2,0.5,1.5,1.4,%d\n", d, d);
        strcat(text, line);
    }
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    o.batch = 3;
    OK(run_buf(r, text, &o, "1d", 0, 0));
    assert_int_equal(r->n, 10);
    assert_int_equal(r->calls, 4);
    for (int i = 0; i < 10; i++) assert_int_equal(r->lines[i], i + 2);
    /* [2024-03-03, 2024-03-06) */
    OK(run_buf(r, text, &o, "1d", T("2024-03-03"), T("2024-03-06")));
    assert_int_equal(r->n, 3);
    assert_int_equal(r->bars[0].ts, T("2024-03-03"));
    assert_int_equal(r->lines[0], 4);
    assert_int_equal(r->bars[2].ts, T("2024-03-05"));
    free(r);
}

static void test_fixture_file_and_missing(void **state) {
    const char *root = getenv("QB_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/md/yahoo_bad.csv", root && *root ? root : ".");
    rec_t *r = calloc(1, sizeof(*r));
    qb_md_source_t *src = qb_md_csv_source_new(path, NULL, E, sizeof E);
    assert_non_null(src);
    r->src = src;
    qb_md_request_t req = {"ORCL", "1d", 0, 0, 0};
    qb_md_sink_t sink = {rec_bars, rec_reject, r};
    OK(qb_md_fetch(src, &req, &sink, E, sizeof E));
    assert_string_equal(qb_md_csv_path(src), path);
    qb_md_source_destroy(src);
    assert_int_equal(r->n, 4); /* line 8 (high < low) is the validator's business */
    assert_int_equal(r->nrej, 4);
    char where[1100];
    snprintf(where, sizeof where, "%s:3", path);
    has_reject(r, 0, where, "null_value");
    snprintf(where, sizeof where, "%s:7", path);
    has_reject(r, 3, where, "column_count");

    src = qb_md_csv_source_new("/nonexistent/x.csv", NULL, E, sizeof E);
    assert_non_null(src);
    ERR(QB_ERR_IO, qb_md_fetch(src, &req, &sink, E, sizeof E));
    assert_non_null(strstr(E, "/nonexistent/x.csv"));
    qb_md_source_destroy(src);
    free(r);
}

static void test_parse_columns_and_bad_opts(void **state) {
    qb_md_csv_opts_t o;
    memset(&o, 0, sizeof o);
    char s1[] = "Date,Open,High,Low,Close,Volume";
    OK(qb_md_csv_parse_columns(s1, &o, E, sizeof E));
    assert_string_equal(o.names[0], "Date");
    assert_string_equal(o.names[5], "Volume");
    char s2[] = "0,1,2,3,4";
    OK(qb_md_csv_parse_columns(s2, &o, E, sizeof E));
    assert_null(o.names[0]);
    assert_int_equal(o.index[4], 4);
    assert_int_equal(o.index[5], -1);
    char s3[] = "close=c,time=t,open=o,high=h,low=l";
    OK(qb_md_csv_parse_columns(s3, &o, E, sizeof E));
    assert_string_equal(o.names[4], "c");
    assert_string_equal(o.names[0], "t");
    char s4[] = "a,b";
    ERR(QB_ERR_INVALID, qb_md_csv_parse_columns(s4, &o, E, sizeof E));
    char s5[] = "time=t,open=o,high=h,low=l,when=c";
    ERR(QB_ERR_INVALID, qb_md_csv_parse_columns(s5, &o, E, sizeof E));
    memset(&o, 0, sizeof o);
    o.delimiter = '"';
    assert_null(qb_md_csv_source_new("x", &o, E, sizeof E));
    /* a bad symbol or timeframe in the request */
    qb_md_source_t *src = qb_md_csv_source_new_buffer("b", "", 0, NULL, E, sizeof E);
    rec_t r;
    qb_md_sink_t sink = {rec_bars, rec_reject, &r};
    qb_md_request_t req = {"bad symbol!", "1d", 0, 0, 0};
    ERR(QB_ERR_INVALID, qb_md_fetch(src, &req, &sink, E, sizeof E));
    qb_md_request_t req2 = {"OK", "2d", 0, 0, 0};
    ERR(QB_ERR_INVALID, qb_md_fetch(src, &req2, &sink, E, sizeof E));
    qb_md_source_destroy(src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yahoo_basic),
        cmocka_unit_test(test_yahoo_no_header_crlf_bom),
        cmocka_unit_test(test_yahoo_header_by_name_reordered),
        cmocka_unit_test(test_reject_reasons_with_lines),
        cmocka_unit_test(test_generic_quoted_by_name),
        cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_generic_indexes_no_volume),
        cmocka_unit_test(test_batches_and_range),
        cmocka_unit_test(test_fixture_file_and_missing),
        cmocka_unit_test(test_parse_columns_and_bad_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
