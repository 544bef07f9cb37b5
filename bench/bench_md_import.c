/* bench_md_import.c — bars/s of the CSV import path on the real Yahoo files
 * of /work/shared/data (QB_SHARED_DATA, default $QB_ROOT/../shared/data):
 *   1. CSV parse alone (sink counts), the three files cycled to >= 1M bars;
 *   2. CSV -> validate -> PostgreSQL (COPY via the staging table, ON
 *      CONFLICT insert, one transaction per 65536 bars), the three files
 *      loaded as many symbols (>= 1M bars) into a fresh database on
 *      QB_PG_DSN, migrated from $QB_ROOT/sql;
 *   3. one large ingest: 1M synthetic one-minute bars of one symbol ->
 *      validate -> PostgreSQL (batches of 65536), without the per-ingest
 *      overhead that dominates phase 2;
 *   4. the same with every committed batch published to md.bars
 *      (QB_KAFKA_BROKERS) and flushed: the whole import path of qb-data.
 * Prints numbers only; there is no pass/fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"
#include "md/qb_md_ingest.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_synth.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define TARGET 1000000

static const char *const files[] = {"orcl-1995-2014.txt", "nvda-1999-2014.txt",
                                    "yhoo-1996-2014.txt"};
static char *text[3];
static size_t textlen[3];

static qb_err_t count_bars(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    *(int64_t *)opaque += (int64_t)n;
    return QB_OK;
}

/* Phase 4's publish hook: publish the committed batch and wait for acks. */
static qb_err_t publish_batch(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                              size_t n, char *e, size_t el) {
    (void)flags;
    return qb_md_publish_committed(opaque, NULL, bars, n, "synthetic", "bench", 30000, e, el);
}

static int load_files(const char *dir) {
    for (int i = 0; i < 3; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "bench_md_import: cannot open %s (set QB_SHARED_DATA)\n", path);
            return -1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text[i] = malloc((size_t)n + 1);
        textlen[i] = fread(text[i], 1, (size_t)n, f);
        fclose(f);
    }
    return 0;
}

int main(void) {
    char err[2048];
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    char dir[1024];
    if (getenv("QB_SHARED_DATA")) snprintf(dir, sizeof dir, "%s", getenv("QB_SHARED_DATA"));
    else snprintf(dir, sizeof dir, "%s/../shared/data", root);
    qb_log_init("bench_md_import", QB_LOG_WARN);
    if (load_files(dir)) return 1;

    /* 1. parse only */
    int64_t bars = 0, rounds = 0;
    int64_t t0 = qb_time_mono_ns();
    while (bars < TARGET) {
        for (int i = 0; i < 3; i++) {
            qb_md_source_t *src = qb_md_csv_source_new_buffer(files[i], text[i], textlen[i], NULL, err, sizeof err);
            qb_md_request_t req = {"BENCH", "1d", 0, 0, 0};
            qb_md_sink_t sink = {count_bars, NULL, &bars};
            if (qb_md_fetch(src, &req, &sink, err, sizeof err) != QB_OK) {
                fprintf(stderr, "parse: %s\n", err);
                return 1;
            }
            qb_md_source_destroy(src);
        }
        rounds++;
    }
    double s = (double)(qb_time_mono_ns() - t0) / 1e9;
    printf("csv parse:                    %9lld bars in %.3f s = %10.0f bars/s\n", (long long)bars, s,
           (double)bars / s);

    /* 2. CSV -> validate -> PostgreSQL */
    const char *dsn = getenv("QB_PG_DSN");
    if (!dsn) {
        fprintf(stderr, "bench_md_import: QB_PG_DSN is not set\n");
        return 1;
    }
    char db[64], dbdsn[4200], sql[256];
    snprintf(db, sizeof db, "qb_bench_md_%d", (int)getpid());
    qb_store_t *admin = qb_store_new(dsn, err, sizeof err);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!admin || qb_store_exec(admin, sql, err, sizeof err) != QB_OK) {
        fprintf(stderr, "create database: %s\n", err);
        return 1;
    }
    snprintf(dbdsn, sizeof dbdsn, "%s dbname=%s", dsn, db);
    qb_store_t *st = qb_store_new(dbdsn, err, sizeof err);
    char sqldir[1100];
    snprintf(sqldir, sizeof sqldir, "%s/sql", root);
    int rc = 0;
    if (!st || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        rc = 1;
        goto out;
    }
    int64_t loaded = 0, in = 0;
    t0 = qb_time_mono_ns();
    for (int sym = 0; in < TARGET; sym++) {
        for (int i = 0; i < 3; i++) {
            char name[32];
            snprintf(name, sizeof name, "B%d%c", sym, "ONY"[i]);
            qb_md_source_t *src = qb_md_csv_source_new_buffer(files[i], text[i], textlen[i], NULL, err, sizeof err);
            qb_md_request_t req = {name, "1d", 0, 0, 0};
            qb_md_ingest_result_t r;
            if (qb_md_ingest(st, src, &req, NULL, &r, err, sizeof err) != QB_OK) {
                fprintf(stderr, "ingest %s: %s\n", name, err);
                rc = 1;
                qb_md_source_destroy(src);
                goto out;
            }
            qb_md_source_destroy(src);
            loaded += r.rows_loaded;
            in += r.rows_in;
        }
    }
    s = (double)(qb_time_mono_ns() - t0) / 1e9;
    printf("csv -> validate -> postgres:  %9lld bars in %.3f s = %10.0f bars/s (one ingest per symbol, ~4.6k bars each)\n",
           (long long)loaded, s, (double)loaded / s);

    /* 3 and 4. one large ingest each, synthetic bars */
    for (int publish = 0; publish <= 1; publish++) {
        qb_md_synth_opts_t so;
        qb_md_synth_opts_default(&so, 7);
        qb_md_source_t *src = qb_md_synth_source_new(&so, err, sizeof err);
        qb_md_request_t req = {publish ? "BIGPUB" : "BIG", "1m", 1104537600LL * QB_NS_PER_SEC, 0, 0};
        req.to = req.from + (int64_t)TARGET * QB_NS_PER_MIN;
        qb_producer_t *p = NULL;
        qb_md_ingest_opts_t io;
        memset(&io, 0, sizeof io);
        if (publish) {
            if (!getenv("QB_KAFKA_BROKERS") || !(p = qb_producer_new(err, sizeof err))) {
                fprintf(stderr, "bench_md_import: no bus for phase 4: %s\n",
                        getenv("QB_KAFKA_BROKERS") ? err : "QB_KAFKA_BROKERS not set");
                qb_md_source_destroy(src);
                rc = 1;
                break;
            }
            io.committed_cb = publish_batch;
            io.opaque = p;
        }
        qb_md_ingest_result_t r;
        t0 = qb_time_mono_ns();
        qb_err_t e = qb_md_ingest(st, src, &req, &io, &r, err, sizeof err);
        s = (double)(qb_time_mono_ns() - t0) / 1e9;
        qb_md_source_destroy(src);
        qb_producer_destroy(p);
        if (e) {
            fprintf(stderr, "large ingest: %s\n", err);
            rc = 1;
            break;
        }
        printf("%s %9lld bars in %.3f s = %10.0f bars/s (one symbol, 65536-bar batches)\n",
               publish ? "synth -> postgres + md.bars: " : "synth -> validate -> postgres:",
               (long long)r.rows_loaded, s, (double)r.rows_loaded / s);
    }

out:
    qb_store_destroy(st);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    qb_store_exec(admin, sql, err, sizeof err);
    qb_store_destroy(admin);
    for (int i = 0; i < 3; i++) free(text[i]);
    return rc;
}
