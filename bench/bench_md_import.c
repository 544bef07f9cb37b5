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
 *      (QB_KAFKA_BROKERS) and flushed, through the publish outbox: the
 *      whole import path of qb-data and qbctl import.
 * Phases 3 and 4 start on a quiet database (VACUUM ANALYZE and CHECKPOINT
 * first, off the clock: otherwise autovacuum of the previous phase's rows
 * runs during the next one).
 * Phases 2 to 5 also print where the CPU went: this process, the
 * PostgreSQL server (all its processes) and qb-bus (QB_STACK_DIR/bus.pid),
 * read from /proc, and the wall time spent in the publish hook.
 * 5. (on request) the publish alone, no database: 1M bars in memory to
 *      md.bars in 65536-bar batches, flushed.
 * 6. the import path from a CSV file's text: 1M one-minute bars (phase 3's
 *      synthetic series written out as generic CSV, unix seconds, off the
 *      clock) -> parse -> validate -> PostgreSQL + md.bars through the
 *      outbox: what `qbctl import` of a large file does.
 * QB_BENCH_MD_PHASES (digits, default "12346") picks the phases;
 * QB_BENCH_MD_BATCH sets the batch size of phases 3 and 4 (default: the
 * ingest's, 65536).
 * Prints numbers only; there is no pass/fail. */
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/qb_decimal.h"
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

static int64_t hook_ns; /* wall time inside publish_batch */

typedef struct csv_out_s {
    char *buf;
    size_t len, cap;
} csv_out_t;

/* Phase 6's generator: bars -> "unix_s,open,high,low,close,volume" lines. */
static qb_err_t write_csv(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    csv_out_t *o = opaque;
    for (size_t i = 0; i < n; i++) {
        if (o->len + 256 > o->cap) {
            size_t nc = o->cap ? o->cap * 2 : (size_t)64 << 20;
            char *nb = realloc(o->buf, nc);
            if (!nb) return qb_err_set(e, el, QB_ERR_NOMEM, "out of memory");
            o->buf = nb;
            o->cap = nc;
        }
        char v[5][QB_DEC_STRLEN];
        qb_dec_format(bars[i].open, v[0], sizeof v[0]);
        qb_dec_format(bars[i].high, v[1], sizeof v[1]);
        qb_dec_format(bars[i].low, v[2], sizeof v[2]);
        qb_dec_format(bars[i].close, v[3], sizeof v[3]);
        qb_dec_format(bars[i].volume, v[4], sizeof v[4]);
        o->len += (size_t)snprintf(o->buf + o->len, o->cap - o->len, "%lld,%s,%s,%s,%s,%s\n",
                                   (long long)(bars[i].ts / QB_NS_PER_SEC), v[0], v[1], v[2],
                                   v[3], v[4]);
    }
    return QB_OK;
}

/* Phase 4's publish hook: publish the committed batch and wait for acks. */
static qb_err_t publish_batch(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                              size_t n, char *e, size_t el) {
    (void)flags;
    int64_t t = qb_time_mono_ns();
    qb_err_t err = qb_md_publish_committed(opaque, NULL, bars, n, "synthetic", "bench", 30000,
                                           e, el);
    hook_ns += qb_time_mono_ns() - t;
    return err;
}

/* ---- CPU accounting from /proc (0 when unavailable) ---------------------- */

/* utime+stime of `pid` (with children = 1: plus its reaped children's) in
 * seconds; *ppid gets its parent. */
static double proc_cpu(long pid, int children, long *ppid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p) return 0;
    /* fields after comm: state ppid ... utime(14) stime(15) cutime(16) cstime(17) */
    char st;
    long pp;
    unsigned long long ut, sy;
    long long cut, cst;
    if (sscanf(p + 2, "%c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &st, &pp,
               &ut, &sy, &cut, &cst) != 6)
        return 0;
    if (ppid) *ppid = pp;
    double t = (double)(ut + sy) + (children ? (double)(cut + cst) : 0);
    return t / (double)sysconf(_SC_CLK_TCK);
}

static long pid_from_file(const char *path) {
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = 0;
        fclose(f);
    }
    return pid;
}

typedef struct cpu_s {
    double self, pg, bus;
} cpu_t;

/* This process; the postmaster with its reaped and live children; qb-bus. */
static cpu_t cpu_now(void) {
    cpu_t c = {0, 0, 0};
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c.self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    const char *stack = getenv("QB_STACK_DIR");
    if (!stack) return c;
    char path[1200];
    snprintf(path, sizeof path, "%s/bus.pid", stack);
    long bus = pid_from_file(path);
    if (bus) c.bus = proc_cpu(bus, 1, NULL);
    snprintf(path, sizeof path, "%s/pg/data/postmaster.pid", stack);
    long pm = pid_from_file(path);
    if (!pm) return c;
    c.pg = proc_cpu(pm, 1, NULL);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        long pid = atol(de->d_name), pp = 0;
        if (pid <= 0) continue;
        double t = proc_cpu(pid, 0, &pp);
        if (pp == pm) c.pg += t;
    }
    if (d) closedir(d);
    return c;
}

/* Before a timed phase: the previous phase's maintenance debt (autovacuum
 * of its million new rows, their checkpoint) paid now, off the clock, so
 * phases do not bill each other. */
static void quiesce(qb_store_t *st) {
    char e[512];
    if (qb_store_exec(st, "VACUUM (ANALYZE) md.bars", e, sizeof e) != QB_OK ||
        qb_store_exec(st, "CHECKPOINT", e, sizeof e) != QB_OK)
        fprintf(stderr, "bench_md_import: quiesce: %s\n", e);
}

static void print_cpu(const cpu_t *a, const cpu_t *b, double wall, int64_t bars, double hook) {
    double us = 1e6 / (double)bars;
    printf("   cpu per bar: bench %.2f us, postgres %.2f us, qb-bus %.2f us;"
           " wall %.2f us (publish hook %.2f us)\n",
           (b->self - a->self) * us, (b->pg - a->pg) * us, (b->bus - a->bus) * us, wall * us,
           hook * us);
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
    const char *phases = getenv("QB_BENCH_MD_PHASES") ? getenv("QB_BENCH_MD_PHASES") : "12346";
    qb_log_init("bench_md_import", QB_LOG_WARN);
    if (load_files(dir)) return 1;

    /* 1. parse only */
    int64_t bars = 0, rounds = 0;
    int64_t t0 = qb_time_mono_ns();
    double s;
    while (strchr(phases, '1') && bars < TARGET) {
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
    s = (double)(qb_time_mono_ns() - t0) / 1e9;
    if (bars)
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
    cpu_t c2a = cpu_now();
    t0 = qb_time_mono_ns();
    for (int sym = 0; strchr(phases, '2') && in < TARGET; sym++) {
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
    cpu_t c2b = cpu_now();
    if (loaded)
        printf("csv -> validate -> postgres:  %9lld bars in %.3f s = %10.0f bars/s (one ingest per symbol, ~4.6k bars each)\n",
           (long long)loaded, s, (double)loaded / s);
    if (loaded) print_cpu(&c2a, &c2b, s, loaded, 0);

    /* 3 and 4. one large ingest each, synthetic bars */
    for (int publish = 0; publish <= 1; publish++) {
        if (!strchr(phases, publish ? '4' : '3')) continue;
        quiesce(st);
        qb_md_synth_opts_t so;
        qb_md_synth_opts_default(&so, 7);
        qb_md_source_t *src = qb_md_synth_source_new(&so, err, sizeof err);
        qb_md_request_t req = {publish ? "BIGPUB" : "BIG", "1m", 1104537600LL * QB_NS_PER_SEC, 0, 0};
        req.to = req.from + (int64_t)TARGET * QB_NS_PER_MIN;
        qb_producer_t *p = NULL;
        qb_md_ingest_opts_t io;
        memset(&io, 0, sizeof io);
        if (getenv("QB_BENCH_MD_BATCH")) io.batch_size = (size_t)atol(getenv("QB_BENCH_MD_BATCH"));
        if (publish) {
            if (!getenv("QB_KAFKA_BROKERS") || !(p = qb_producer_new(err, sizeof err))) {
                fprintf(stderr, "bench_md_import: no bus for phase 4: %s\n",
                        getenv("QB_KAFKA_BROKERS") ? err : "QB_KAFKA_BROKERS not set");
                qb_md_source_destroy(src);
                rc = 1;
                break;
            }
            io.committed_cb = publish_batch;
            io.outbox = 1;
            io.opaque = p;
        }
        qb_md_ingest_result_t r;
        hook_ns = 0;
        cpu_t c0 = cpu_now();
        t0 = qb_time_mono_ns();
        qb_err_t e = qb_md_ingest(st, src, &req, &io, &r, err, sizeof err);
        s = (double)(qb_time_mono_ns() - t0) / 1e9;
        usleep(200000); /* the loader's backend has exited: let the postmaster reap it */
        cpu_t c1 = cpu_now();
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
        if (r.rows_loaded) print_cpu(&c0, &c1, s, r.rows_loaded, (double)hook_ns / 1e9);
    }

    /* 6. a large CSV (text in memory) -> PostgreSQL + md.bars */
    if (strchr(phases, '6') && !rc) {
        csv_out_t out = {NULL, 0, 0};
        qb_md_synth_opts_t so;
        qb_md_synth_opts_default(&so, 11);
        qb_md_source_t *gen = qb_md_synth_source_new(&so, err, sizeof err);
        qb_md_request_t greq = {"CSVPUB", "1m", 1104537600LL * QB_NS_PER_SEC, 0, 0};
        greq.to = greq.from + (int64_t)TARGET * QB_NS_PER_MIN;
        qb_md_sink_t gsink = {write_csv, NULL, &out};
        qb_producer_t *p = getenv("QB_KAFKA_BROKERS") ? qb_producer_new(err, sizeof err) : NULL;
        if (!gen || qb_md_fetch(gen, &greq, &gsink, err, sizeof err) != QB_OK || !p) {
            fprintf(stderr, "phase 6: %s\n", p ? err : "no bus (QB_KAFKA_BROKERS)");
            qb_md_source_destroy(gen);
            qb_producer_destroy(p);
            free(out.buf);
            rc = 1;
            goto out;
        }
        qb_md_source_destroy(gen);
        quiesce(st);
        qb_md_csv_opts_t co;
        memset(&co, 0, sizeof co);
        co.format = QB_MD_CSV_GENERIC;
        co.time_format = QB_MD_CSV_TIME_UNIX_S;
        for (int k = 0; k < QB_MD_CSV_NCOLS; k++) co.index[k] = k;
        qb_md_source_t *src =
            qb_md_csv_source_new_buffer("csvpub.csv", out.buf, out.len, &co, err, sizeof err);
        qb_md_request_t req = {"CSVPUB", "1m", 0, 0, 0};
        qb_md_ingest_opts_t io;
        memset(&io, 0, sizeof io);
        io.committed_cb = publish_batch;
        io.outbox = 1;
        io.opaque = p;
        qb_md_ingest_result_t r;
        hook_ns = 0;
        cpu_t c0 = cpu_now();
        t0 = qb_time_mono_ns();
        qb_err_t e = src ? qb_md_ingest(st, src, &req, &io, &r, err, sizeof err) : QB_ERR_INVALID;
        s = (double)(qb_time_mono_ns() - t0) / 1e9;
        usleep(200000);
        cpu_t c1 = cpu_now();
        qb_md_source_destroy(src);
        qb_producer_destroy(p);
        if (e) {
            fprintf(stderr, "csv ingest: %s\n", err);
            rc = 1;
        } else {
            printf("csv -> postgres + md.bars:    %9lld bars in %.3f s = %10.0f bars/s (one %.0f MB "
                   "file of 1m bars, 65536-bar batches)\n",
                   (long long)r.rows_loaded, s, (double)r.rows_loaded / s, (double)out.len / 1e6);
            if (r.rows_loaded) print_cpu(&c0, &c1, s, r.rows_loaded, (double)hook_ns / 1e9);
        }
        free(out.buf);
    }

    /* 5. the publish alone: 1M bars (generated up front) to md.bars in
     * 65536-bar batches, each flushed, no database */
    if (strchr(phases, '5') && getenv("QB_KAFKA_BROKERS")) {
        qb_bar_t *all = calloc(TARGET, sizeof *all);
        qb_producer_t *p = qb_producer_new(err, sizeof err);
        if (!all || !p) {
            fprintf(stderr, "publish only: %s\n", all ? err : "out of memory");
            free(all);
            qb_producer_destroy(p);
            rc = 1;
            goto out;
        }
        for (int i = 0; i < TARGET; i++) {
            qb_bar_t *b = &all[i];
            snprintf(b->symbol.s, sizeof b->symbol.s, "PUBONLY");
            snprintf(b->timeframe, sizeof b->timeframe, "1m");
            b->ts = 1104537600LL * QB_NS_PER_SEC + (int64_t)i * QB_NS_PER_MIN;
            b->open = 10000000000LL + i % 977;
            b->high = b->open + 5000000;
            b->low = b->open - 5000000;
            b->close = b->open + 1000000;
            b->volume = 100000000000LL + i;
        }
        hook_ns = 0;
        cpu_t c0 = cpu_now();
        t0 = qb_time_mono_ns();
        for (int i = 0; i < TARGET && !rc; i += 65536) {
            size_t n = TARGET - i < 65536 ? (size_t)(TARGET - i) : 65536;
            if (publish_batch(p, all + i, NULL, n, err, sizeof err) != QB_OK) {
                fprintf(stderr, "publish only: %s\n", err);
                rc = 1;
            }
        }
        s = (double)(qb_time_mono_ns() - t0) / 1e9;
        cpu_t c1 = cpu_now();
        printf("publish only (md.bars):       %9d bars in %.3f s = %10.0f bars/s (65536-bar batches)\n",
               TARGET, s, TARGET / s);
        print_cpu(&c0, &c1, s, TARGET, (double)hook_ns / 1e9);
        qb_producer_destroy(p);
        free(all);
    }

out:
    qb_store_destroy(st);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    qb_store_exec(admin, sql, err, sizeof err);
    qb_store_destroy(admin);
    for (int i = 0; i < 3; i++) free(text[i]);
    return rc;
}
