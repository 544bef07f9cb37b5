/* bench_backtest_service.c — the end-to-end time of bench_backtest's run
 * (SMA(10)/SMA(30) crossover, long-only, percent_equity 1% per position,
 * 0.05% commission, 2 bps slippage, next-open fills, cash 1,000,000) on
 * 100 symbols x 98,000 one-minute bars (the same random walk) submitted
 * through backtest.requests to qb-backtest, with the bars loaded from
 * PostgreSQL: from the produce to the FINISHED row (bars read, run, metrics,
 * equity curve and trades stored). Also the two parts the service records
 * (runs.load_ms, run_ms), the same with one loader connection instead of
 * two, and two other ways of reading the same bars (text rows through
 * PQgetvalue; text COPY) for comparison with the service's binary COPY.
 *
 * A fresh database on QB_PG_DSN, migrated from $QB_ROOT/sql; the bars are
 * stored with qb_md_store_load_bars and vacuumed before the clock starts;
 * qb-backtest ($QB_BIN_DIR) runs with its own consumer group. Numbers
 * only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "md/qb_md_store.h"
#include "proto/qb_proto.h"
#include "qb/v1/backtest.pb-c.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define NSYM 100
#define NBARS 98000

static uint64_t bench_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t q_int(qb_store_t *st, const char *sql, const char *p1) {
    char err[256];
    PGresult *r = NULL;
    const char *p[1] = {p1};
    if (qb_store_query(st, sql, p1 ? 1 : 0, p1 ? p : NULL, &r, err, sizeof err) != QB_OK) return -1;
    int64_t n = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

static qb_err_t submit(qb_producer_t *p, const char *run_id, const char *group, int nsym) {
    static char *syms[NSYM];
    static char names[NSYM][16];
    for (int i = 0; i < nsym; i++) {
        snprintf(names[i], sizeof names[i], "S%03d", i);
        syms[i] = names[i];
    }
    char *settings[] = {"long_only=true", "sizing=percent_equity", "sizing_value=0.01",
                        "commission=percent:0.05", "slippage_bps=2"};
    qb_proto_header_t h;
    qb_proto_header_init(&h, "bench", 0, NULL);
    Qb__V1__BacktestRequest rq = QB__V1__BACKTEST_REQUEST__INIT;
    rq.header = &h.pb;
    rq.run_id = (char *)run_id;
    rq.kind = QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN;
    rq.strategy_name = "sma_cross";
    rq.strategy_params_json = "{\"fast\":10,\"slow\":30}";
    rq.n_symbols = (size_t)nsym;
    rq.symbols = syms;
    rq.timeframe = "1m";
    rq.initial_cash = 1000000 * QB_DEC_SCALE;
    rq.n_settings = sizeof settings / sizeof settings[0];
    rq.settings = settings;
    rq.group = (char *)group;
    char err[256];
    qb_err_t e = qb_producer_send_msg(p, "backtest.requests", run_id, strlen(run_id), &rq.base, "");
    if (!e) e = qb_producer_flush(p, 10000);
    (void)err;
    return e;
}

/* Wait for the run's row to leave 'running'; the seconds it took, < 0 on
 * failure or time-out. */
static double wait_run(qb_store_t *st, const char *run_id, int64_t t0, int max_s) {
    for (int i = 0; i < max_s * 100; i++) {
        char err[256];
        PGresult *r = NULL;
        const char *p[1] = {run_id};
        if (qb_store_query(st, "SELECT status, coalesce(error, '') FROM backtest.runs WHERE run_id = $1",
                           1, p, &r, err, sizeof err) == QB_OK &&
            PQntuples(r) == 1) {
            int fin = !strcmp(PQgetvalue(r, 0, 0), "finished");
            int failed = !strcmp(PQgetvalue(r, 0, 0), "failed");
            if (failed) fprintf(stderr, "run %s failed: %s\n", run_id, PQgetvalue(r, 0, 1));
            PQclear(r);
            if (fin) return (double)(qb_time_mono_ns() - t0) / 1e9;
            if (failed) return -1;
        } else if (r)
            PQclear(r);
        usleep(10 * 1000);
    }
    return -1;
}

/* Other ways to read the same bars: text rows (PQgetvalue + strtoll) and a
 * text COPY parsed per line. Rows/s of each. */
static void read_alternatives(const char *dsn) {
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return;
    }
    int64_t t0 = qb_time_mono_ns(), rows = 0, sum = 0;
    for (int s = 0; s < NSYM; s++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT (extract(epoch FROM ts) * 1000000)::bigint, open, high, low, close, volume"
                 " FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol = 'S%03d'"
                 " AND timeframe = '1m' ORDER BY ts", s);
        PGresult *r = PQexec(c, sql);
        for (int i = 0; i < PQntuples(r); i++)
            for (int k = 0; k < 6; k++) sum += strtoll(PQgetvalue(r, i, k), NULL, 10);
        rows += PQntuples(r);
        PQclear(r);
    }
    double a = (double)(qb_time_mono_ns() - t0) / 1e9;
    t0 = qb_time_mono_ns();
    int64_t rows2 = 0;
    for (int s = 0; s < NSYM; s++) {
        char sql[300];
        snprintf(sql, sizeof sql,
                 "COPY (SELECT (extract(epoch FROM ts) * 1000000)::bigint, open, high, low, close,"
                 " volume FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol ="
                 " 'S%03d' AND timeframe = '1m' ORDER BY ts) TO STDOUT", s);
        PGresult *r = PQexec(c, sql);
        PQclear(r);
        char *buf;
        int len;
        while ((len = PQgetCopyData(c, &buf, 0)) > 0) {
            char *p = buf;
            for (int k = 0; k < 6; k++) sum += strtoll(p, &p, 10), p++;
            rows2++;
            PQfreemem(buf);
        }
        while ((r = PQgetResult(c))) PQclear(r);
    }
    double b = (double)(qb_time_mono_ns() - t0) / 1e9;
    printf("reading the bars of bench_backtest_service from PostgreSQL: text rows + PQgetvalue %.2f s (%.1f M bars/s); "
           "text COPY %.2f s (%.1f M bars/s)%s\n",
           a, (double)rows / a / 1e6, b, (double)rows2 / b / 1e6, "");
    volatile int64_t sink = sum;
    (void)sink;
    PQfinish(c);
}

typedef struct bench_run_s {
    double secs;
    int64_t load_ms, run_ms, ntr, neq;
    long hwm;
} bench_run_t;

/* Start qb-backtest with `threads` loader connections, wait until it takes
 * requests, time one run of every symbol, stop it. 0 on success. */
static int service_run(const char *bin, const char *dbdsn, const char *sqldir, qb_store_t *st,
                       qb_producer_t *p, int threads, bench_run_t *out) {
    char group[64], th[16], rid[64];
    snprintf(group, sizeof group, "bench-bts-%d-%d", (int)getpid(), threads);
    snprintf(th, sizeof th, "%d", threads);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("QB_PG_DSN", dbdsn, 1);
        setenv("QB_SQL_DIR", sqldir, 1);
        setenv("QB_BACKTEST_GROUP", group, 1);
        setenv("QB_BACKTEST_LOAD_THREADS", th, 1);
        setenv("QB_KAFKA_AUTO_OFFSET_RESET", "latest", 1);
        setenv("QB_ADMIN_PORT", "0", 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_LOG_LEVEL", "error", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return 1;
    int rc = 1;
    /* Wait until it consumes: a small run of one symbol, repeated until one
     * finishes (the group needs a moment to form). */
    double probe = -1;
    for (int i = 0; i < 30 && probe < 0; i++) {
        snprintf(rid, sizeof rid, "probe-%d-%d-%d", (int)getpid(), threads, i);
        if (submit(p, rid, group, 1) != QB_OK) continue;
        probe = wait_run(st, rid, qb_time_mono_ns(), 2);
    }
    if (probe < 0) {
        fprintf(stderr, "qb-backtest did not start consuming\n");
        goto out;
    }
    snprintf(rid, sizeof rid, "bench-%d-%d", (int)getpid(), threads);
    int64_t t0 = qb_time_mono_ns();
    if (submit(p, rid, group, NSYM) != QB_OK) goto out;
    if ((out->secs = wait_run(st, rid, t0, 600)) < 0) goto out;
    out->load_ms = q_int(st, "SELECT load_ms FROM backtest.runs WHERE run_id = $1", rid);
    out->run_ms = q_int(st, "SELECT run_ms FROM backtest.runs WHERE run_id = $1", rid);
    out->ntr = q_int(st, "SELECT count(*) FROM backtest.trades WHERE run_id = $1", rid);
    out->neq = q_int(st, "SELECT count(*) FROM backtest.equity WHERE run_id = $1", rid);
    out->hwm = 0;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) out->hwm = strtol(line + 6, NULL, 10) / 1024;
    if (f) fclose(f);
    rc = 0;
out:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return rc;
}

int main(void) {
    qb_log_init("bench-backtest-service", QB_LOG_WARN);
    const char *dsn = getenv("QB_PG_DSN"), *bindir = getenv("QB_BIN_DIR");
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    if (!dsn || !bindir || !getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_backtest_service: QB_PG_DSN, QB_BIN_DIR and QB_KAFKA_BROKERS are needed\n");
        return 1;
    }
    char err[1024], db[64], dbdsn[4200], sql[512], sqldir[1100], bin[1100];
    snprintf(db, sizeof db, "qb_bench_bts_%d", (int)getpid());
    qb_store_t *admin = qb_store_new(dsn, err, sizeof err);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!admin || qb_store_exec(admin, sql, err, sizeof err) != QB_OK) {
        fprintf(stderr, "create database: %s\n", err);
        return 1;
    }
    snprintf(dbdsn, sizeof dbdsn, "%s dbname=%s", dsn, db);
    snprintf(sqldir, sizeof sqldir, "%s/sql", root);
    qb_store_t *st = qb_store_new(dbdsn, err, sizeof err);
    int rc = 1;
    qb_producer_t *p = NULL;
    qb_bar_t *bars = NULL;
    if (!st || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    /* The bars of bench_backtest, stored before the clock starts. */
    if (!(bars = calloc(NBARS, sizeof *bars))) goto out;
    int64_t tl = qb_time_mono_ns();
    uint64_t seed = 42;
    for (int s = 0; s < NSYM; s++) {
        char name[16];
        snprintf(name, sizeof name, "S%03d", s);
        int32_t asset;
        if (qb_md_asset_get_or_create(st, name, "equity", &asset, err, sizeof err) != QB_OK) {
            fprintf(stderr, "asset: %s\n", err);
            goto out;
        }
        int64_t px = (50 + s) * QB_DEC_SCALE;
        for (int i = 0; i < NBARS; i++) {
            qb_bar_t *b = &bars[i];
            snprintf(b->symbol.s, sizeof b->symbol.s, "%s", name);
            snprintf(b->timeframe, sizeof b->timeframe, "1m");
            b->ts = 1704067200000000000LL + (int64_t)i * 60000000000LL;
            int64_t o = px;
            px += ((int64_t)(bench_rand(&seed) % 201) - 100) * 200000;
            if (px < 5 * QB_DEC_SCALE) px = 5 * QB_DEC_SCALE;
            b->open = o;
            b->close = px;
            b->high = (o > px ? o : px) + 5000000;
            b->low = (o < px ? o : px) - 5000000;
            b->volume = 10000 * QB_DEC_SCALE;
        }
        qb_md_load_result_t lr;
        if (qb_md_store_load_bars(st, asset, "1m", "bench", bars, NULL, NBARS, 0, &lr, err,
                                  sizeof err) != QB_OK) {
            fprintf(stderr, "load bars: %s\n", err);
            goto out;
        }
    }
    free(bars);
    bars = NULL;
    /* as a database that autovacuum has seen: hint bits set, statistics */
    (void)qb_store_exec(st, "VACUUM (ANALYZE) md.bars", err, sizeof err);
    double load_s = (double)(qb_time_mono_ns() - tl) / 1e9;

    snprintf(bin, sizeof bin, "%s/qb-backtest", bindir);
    if (!(p = qb_producer_new(err, sizeof err))) goto out;
    double total = (double)NSYM * NBARS;
    bench_run_t r2, r1;
    read_alternatives(dbdsn); /* also warms the caches for both service runs alike */
    if (service_run(bin, dbdsn, sqldir, st, p, 2, &r2)) goto out;
    printf("qb-backtest end to end: sma_cross 10/30 on %d symbols x %d 1m bars (%.1f M bars, "
           "stored in %.0f s beforehand) submitted on backtest.requests -> FINISHED: %.2f s "
           "(%.1f M bars/s)\n",
           NSYM, NBARS, total / 1e6, load_s, r2.secs, total / r2.secs / 1e6);
    printf("  in the service: bars read from PostgreSQL (binary COPY per symbol, 2 connections) + "
           "finalize %.2f s (%.1f M bars/s); run + results stored (%lld equity points, %lld "
           "trades) %.2f s; service peak RSS %ld MiB\n",
           (double)r2.load_ms / 1e3, total / ((double)r2.load_ms / 1e3) / 1e6, (long long)r2.neq,
           (long long)r2.ntr, (double)r2.run_ms / 1e3, r2.hwm);
    if (service_run(bin, dbdsn, sqldir, st, p, 1, &r1)) goto out;
    printf("  the same with QB_BACKTEST_LOAD_THREADS=1: %.2f s end to end, bars read in %.2f s\n",
           r1.secs, (double)r1.load_ms / 1e3);
    rc = 0;
out:
    free(bars);
    qb_producer_destroy(p);
    qb_store_destroy(st);
    if (admin) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        qb_store_exec(admin, sql, err, sizeof err);
        qb_store_destroy(admin);
    }
    return rc;
}
