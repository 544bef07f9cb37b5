/* it_md_store.c — the md schema, the store and the ingest pipeline against a
 * real PostgreSQL (QB_PG_DSN), each test on its own migrated database.
 *
 * What is asserted:
 *   importing the Yahoo fixture twice leaves one copy and an identical table
 *   (md5 over every row), the second run counts duplicates; yearly
 *   partitions were created; ingest_log rows are complete;
 *   a disagreeing source records md.bar_conflicts (once per distinct bar),
 *   the stored bar stays; within the tolerance is no conflict;
 *   the malformed fixture: rejects with FILE:LINE and reason, the good rows
 *   stored, rejects_by_reason in ingest_log;
 *   read-back is exact; md.bars_v shows numeric prices; the publish hook
 *   sees each committed batch; observations and corporate actions upsert;
 *   the real ORCL file from /work/shared/data (QB_SHARED_DATA) loads with
 *   counts and sums computed independently from the text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_csv.h"
#include "md/qb_md_ingest.h"
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

#define ASSERT_SCALAR(s, sql, want) assert_string_equal(scalar((s), (sql)), (want))

typedef struct rejs_s {
    char lines[32][600];
    int n;
    int batches;
    size_t published;
} rejs_t;

static void on_reject(void *opaque, const char *where, const char *reason) {
    rejs_t *r = opaque;
    if (r->n < 32) snprintf(r->lines[r->n], 600, "%s: %s", where, reason);
    r->n++;
}

static qb_err_t on_committed(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                             size_t n, char *errstr, size_t errstr_size) {
    rejs_t *r = opaque;
    r->batches++;
    r->published += n;
    for (size_t i = 1; i < n; i++)
        if (bars[i].ts <= bars[i - 1].ts) return QB_ERR_INTERNAL;
    return QB_OK;
}

static void fixture(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/tests/fixtures/md/%s", qb_test_md_root(), name);
}

static qb_err_t import_file(qb_store_t *s, const char *path, const char *symbol,
                            const char *source_name, size_t batch, rejs_t *rj,
                            qb_md_ingest_result_t *res) {
    qb_md_source_t *src = qb_md_csv_source_new(path, NULL, E, sizeof E);
    assert_non_null(src);
    qb_md_ingest_opts_t o;
    memset(&o, 0, sizeof o);
    o.job = "test";
    o.source_name = source_name;
    o.batch_size = batch;
    o.reject_cb = on_reject;
    o.committed_cb = on_committed;
    o.opaque = rj;
    qb_md_request_t req = {symbol, "1d", 0, 0, 0};
    qb_err_t err = qb_md_ingest(s, src, &req, &o, res, E, sizeof E);
    qb_md_source_destroy(src);
    return err;
}

#define TABLE_MD5 \
    "SELECT md5(string_agg(concat_ws(',', asset_id, timeframe, ts, open, high, low, close," \
    " volume, source, flags), ';' ORDER BY asset_id, timeframe, ts)) FROM md.bars"

static void test_import_twice_one_copy(void **state) {
    fx_t *f = *state;
    char path[1024];
    fixture(path, sizeof path, "yahoo_small.csv");
    rejs_t rj;
    memset(&rj, 0, sizeof rj);
    qb_md_ingest_result_t r;
    OK(import_file(f->s, path, "orcl", NULL, 4, &rj, &r));
    assert_int_equal(r.rows_in, 10);
    assert_int_equal(r.rows_loaded, 10);
    assert_int_equal(r.rows_duplicate, 0);
    assert_int_equal(r.rows_rejected, 0);
    assert_int_equal(r.batches, 3);
    assert_int_equal(rj.batches, 3);
    assert_int_equal(rj.published, 10);
    assert_int_equal(rj.n, 0);
    char md5[64];
    snprintf(md5, sizeof md5, "%s", scalar(f->s, TABLE_MD5));

    OK(import_file(f->s, path, "ORCL", NULL, 0, &rj, &r));
    assert_int_equal(r.rows_loaded, 0);
    assert_int_equal(r.rows_duplicate, 10);
    assert_int_equal(r.conflicts, 0);
    assert_int_equal(rj.published, 20); /* re-published: the hook sees duplicates too */
    ASSERT_SCALAR(f->s, "SELECT count(*) FROM md.bars", "10");
    ASSERT_SCALAR(f->s, TABLE_MD5, md5);
    ASSERT_SCALAR(f->s, "SELECT count(*) FROM md.assets WHERE symbol = 'ORCL'", "1");

    /* yearly partitions created on demand */
    ASSERT_SCALAR(f->s,
                  "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i"
                  " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'md.bars'::regclass",
                  "bars_y2023,bars_y2024");
    ASSERT_SCALAR(f->s, "SELECT count(*) FROM md.bars_y2023", "3");

    /* ingest_log */
    ASSERT_SCALAR(f->s,
                  "SELECT concat_ws('|', job, source, symbol, timeframe, rows_in, rows_loaded,"
                  " rows_duplicate, rows_rejected, rejects_by_reason::text, error IS NULL,"
                  " finished_at >= started_at, duration_ms >= 0)"
                  " FROM md.ingest_log ORDER BY id LIMIT 1",
                  "test|csv|orcl|1d|10|10|0|0|{}|t|t|t");
    ASSERT_SCALAR(f->s, "SELECT rows_duplicate FROM md.ingest_log ORDER BY id DESC LIMIT 1", "10");

    /* read back, exact; the numeric view */
    qb_bar_t *bars = NULL;
    uint16_t *flags = NULL;
    size_t n = 0;
    OK(qb_md_store_read_bars(f->s, "ORCL", "1d", 0, 0, &bars, &flags, &n, E, sizeof E));
    assert_int_equal(n, 10);
    qb_time_t t;
    assert_int_equal(qb_time_parse("2024-01-10", 10, &t), QB_OK);
    assert_int_equal(bars[9].ts, t);
    assert_int_equal(bars[9].close, 1150000000LL);
    assert_int_equal(bars[9].volume, 1900LL * QB_DEC_SCALE);
    assert_int_equal(flags[9], 0);
    free(bars);
    free(flags);
    OK(qb_md_store_read_bars(f->s, "ORCL", "1d", t, 0, &bars, NULL, &n, E, sizeof E));
    assert_int_equal(n, 1);
    free(bars);
    ASSERT_SCALAR(f->s, "SELECT close::text || ' ' || symbol FROM md.bars_v WHERE ts = '2024-01-10'",
                  "11.50000000 ORCL");
}

static void test_conflict_recorded(void **state) {
    fx_t *f = *state;
    char path[1024];
    fixture(path, sizeof path, "yahoo_small.csv");
    rejs_t rj;
    memset(&rj, 0, sizeof rj);
    qb_md_ingest_result_t r;
    OK(import_file(f->s, path, "NVDA", NULL, 0, &rj, &r));
    /* another source: 2024-01-03 close 1% off (conflict), 2024-01-04 0.1% off
     * (within tolerance), 2024-01-11 new */
    const char *other =
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-03,10.90,11.30,10.80,11.211,11.00,1400\n"
        "2024-01-04,11.10,11.30,10.90,11.011,10.90,1500\n"
        "2024-01-11,11.50,11.70,11.40,11.60,11.50,2000\n";
    for (int round = 0; round < 2; round++) {
        qb_md_source_t *src = qb_md_csv_source_new_buffer("vendor", other, strlen(other), NULL, E, sizeof E);
        qb_md_ingest_opts_t o;
        memset(&o, 0, sizeof o);
        o.source_name = "vendor";
        qb_md_request_t req = {"NVDA", "1d", 0, 0, 0};
        OK(qb_md_ingest(f->s, src, &req, &o, &r, E, sizeof E));
        qb_md_source_destroy(src);
        assert_int_equal(r.rows_loaded, round == 0 ? 1 : 0);
        assert_int_equal(r.rows_duplicate, round == 0 ? 2 : 3);
        assert_int_equal(r.conflicts, 1);
    }
    ASSERT_SCALAR(f->s, "SELECT count(*) FROM md.bar_conflicts", "1");
    ASSERT_SCALAR(f->s,
                  "SELECT concat_ws('|', ts::date, stored_source, stored_close, incoming_source,"
                  " incoming_close) FROM md.bar_conflicts",
                  "2024-01-03|csv|1110000000|vendor|1121100000");
    ASSERT_SCALAR(f->s, "SELECT close FROM md.bars WHERE ts = '2024-01-03'", "1110000000");
    ASSERT_SCALAR(f->s, "SELECT source FROM md.bars WHERE ts = '2024-01-11'", "vendor");
    ASSERT_SCALAR(f->s, "SELECT conflicts FROM md.ingest_log ORDER BY id DESC LIMIT 1", "1");
}

static void test_malformed_file(void **state) {
    fx_t *f = *state;
    char path[1024];
    fixture(path, sizeof path, "yahoo_bad.csv");
    rejs_t rj;
    memset(&rj, 0, sizeof rj);
    qb_md_ingest_result_t r;
    OK(import_file(f->s, path, "YHOO", NULL, 0, &rj, &r));
    assert_int_equal(r.rows_in, 8);
    assert_int_equal(r.rows_loaded, 3);
    assert_int_equal(r.rows_rejected, 5);
    assert_int_equal(rj.n, 5);
    const char *want[5][2] = {{":3: ", "null_value: column Open (2) is null"},
                              {":5: ", "bad_number: column High (3): '11.1x'"},
                              {":6: ", "bad_time: column Date (1): '2024-02-30'"},
                              {":7: ", "column_count: 3 columns, need at least 7"},
                              {":8: ", "high_below_low: high 11.2 < low 11.6"}};
    for (int i = 0; i < 5; i++) {
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "%s%s%s", path, want[i][0], want[i][1]);
        if (strncmp(rj.lines[i], prefix, strlen(prefix)) != 0)
            fail_msg("reject %d: \"%s\", want prefix \"%s\"", i, rj.lines[i], prefix);
    }
    ASSERT_SCALAR(f->s, "SELECT string_agg(ts::date::text, ',' ORDER BY ts) FROM md.bars",
                  "2024-01-02,2024-01-04,2024-01-11");
    ASSERT_SCALAR(f->s,
                  "SELECT rejects_by_reason = '{\"null_value\":1,\"bad_number\":1,\"bad_time\":1,"
                  "\"column_count\":1,\"high_below_low\":1}'::jsonb AND rows_rejected = 5"
                  " AND rows_loaded = 3 FROM md.ingest_log",
                  "t");
}

static void test_missing_schema_and_observations(void **state) {
    fx_t *f = *state;
    OK(qb_md_store_check_schema(f->s, E, sizeof E));
    int32_t id = 0, id2 = 0;
    OK(qb_md_asset_get_or_create(f->s, "btc-usd", "crypto", &id, E, sizeof E));
    OK(qb_md_asset_get_or_create(f->s, "BTC-USD", "equity", &id2, E, sizeof E));
    assert_int_equal(id, id2);
    ASSERT_SCALAR(f->s, "SELECT asset_class FROM md.assets WHERE symbol = 'BTC-USD'", "crypto");
    ERR(QB_ERR_DB, qb_md_asset_get_or_create(f->s, "X", "stock", &id, E, sizeof E));

    qb_md_observation_t obs[2] = {{19000 * QB_NS_PER_DAY, 525000000}, {19001 * QB_NS_PER_DAY, 1}};
    OK(qb_md_store_put_observations(f->s, "FEDFUNDS", "fred", obs, 2, E, sizeof E));
    obs[1].value = 533000000;
    OK(qb_md_store_put_observations(f->s, "FEDFUNDS", "fred", obs, 2, E, sizeof E));
    ASSERT_SCALAR(f->s, "SELECT string_agg(date || '=' || value, ',' ORDER BY date) FROM md.observations",
                  "2022-01-08=5.25,2022-01-09=5.33");

    OK(qb_md_store_put_corporate_action(f->s, id, 19000 * QB_NS_PER_DAY, QB_MD_ACTION_SPLIT,
                                        2 * QB_DEC_SCALE, "csv", E, sizeof E));
    OK(qb_md_store_put_corporate_action(f->s, id, 19000 * QB_NS_PER_DAY, QB_MD_ACTION_DIVIDEND,
                                        12000000, "csv", E, sizeof E));
    ASSERT_SCALAR(f->s,
                  "SELECT string_agg(kind || ':' || coalesce(ratio::text, '-') || ':' ||"
                  " coalesce(amount::text, '-'), ',' ORDER BY kind) FROM md.corporate_actions",
                  "dividend:-:0.12,split:2:-");

    /* a database without the md tables */
    char *dsn = qb_test_db_create();
    qb_store_t *s2 = qb_store_new(dsn, E, sizeof E);
    ERR(QB_ERR_NOT_FOUND, qb_md_store_check_schema(s2, E, sizeof E));
    assert_non_null(strstr(E, "qbctl migrate"));
    qb_store_destroy(s2);
    qb_test_db_drop(dsn);
}

/* The real ORCL file: expectations computed from the text here, with
 * strtod/llround instead of the library's parsers. */
static void test_real_data_orcl(void **state) {
    fx_t *f = *state;
    char dir[1024], path[1200];
    const char *sd = getenv("QB_SHARED_DATA");
    if (sd && *sd) snprintf(dir, sizeof dir, "%s", sd);
    else snprintf(dir, sizeof dir, "%s/../shared/data", qb_test_md_root());
    snprintf(path, sizeof path, "%s/orcl-1995-2014.txt", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) fail_msg("real data file %s is missing (set QB_SHARED_DATA)", path);
    char line[512];
    long rows = 0;
    long long sum_close = 0, sum_vol = 0;
    int first = 1;
    while (fgets(line, sizeof line, fp)) {
        if (first) {
            first = 0;
            continue;
        }
        char *save = NULL, *tok = strtok_r(line, ",", &save);
        double vals[6];
        for (int i = 0; i < 6 && tok; i++) {
            tok = strtok_r(NULL, ",", &save);
            if (tok) vals[i] = strtod(tok, NULL);
        }
        sum_close += llround(vals[3] * 1e8);
        sum_vol += llround(vals[5]);
        rows++;
    }
    fclose(fp);
    rejs_t rj;
    memset(&rj, 0, sizeof rj);
    qb_md_ingest_result_t r;
    OK(import_file(f->s, path, "ORCL", NULL, 0, &rj, &r));
    assert_int_equal(r.rows_in, rows);
    assert_int_equal(r.rows_rejected, 0);
    assert_int_equal(r.rows_loaded, rows);
    char want[128];
    snprintf(want, sizeof want, "%ld|%lld|%lld", rows, sum_close, sum_vol);
    ASSERT_SCALAR(f->s,
                  "SELECT count(*) || '|' || sum(close) || '|' || (sum(volume) / 100000000)::bigint FROM md.bars",
                  want);
    ASSERT_SCALAR(f->s, "SELECT count(*) >= 20 FROM pg_inherits WHERE inhparent = 'md.bars'::regclass", "t");
    fprintf(stderr, "ORCL: %ld rows, %lld outliers flagged\n", rows, (long long)r.rows_outlier);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_twice_one_copy, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_conflict_recorded, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_file, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_missing_schema_and_observations, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_real_data_orcl, qb_test_md_db_setup, qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
