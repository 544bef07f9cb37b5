/* bench_features.c — bars/s of the whole qb-features service on the
 * embedded bus: md.bars -> indicators (the default feature set) + two
 * strategies per symbol (sma_cross, basic_signals) -> FeatureSets on
 * `features`, signals on `signals`, rows in PostgreSQL, offsets committed.
 *
 * A fresh database on QB_PG_DSN (migrated from $QB_ROOT/sql) with the two
 * strategies on 100 symbols; qb-features ($QB_BIN_DIR) started on it with
 * its own consumer group reading from the latest offset; then 100 symbols x
 * 1000 one-minute synthetic bars are published onto md.bars as fast as the
 * producer goes (100k bars: under qb-bus's per-partition retention), and
 * the clock stops when the last feature row is durable in PostgreSQL.
 * Prints numbers only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_synth.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define NSYM 100
#define NBARS 1000

typedef struct coll_s {
    qb_bar_t *v;
    size_t n, cap;
} coll_t;

static qb_err_t collect(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    coll_t *c = opaque;
    (void)e;
    (void)el;
    if (c->n + n > c->cap) {
        size_t cap = (c->n + n) * 2;
        qb_bar_t *v = realloc(c->v, cap * sizeof *v);
        if (!v) return QB_ERR_NOMEM;
        c->v = v;
        c->cap = cap;
    }
    memcpy(c->v + c->n, bars, n * sizeof *bars);
    c->n += n;
    return QB_OK;
}

static int64_t count_rows(qb_store_t *st, const char *table) {
    char sql[128], err[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    PGresult *r = NULL;
    if (qb_store_query(st, sql, 0, NULL, &r, err, sizeof err) != QB_OK) return -1;
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

int main(void) {
    qb_log_init("bench-features", QB_LOG_WARN);
    const char *dsn = getenv("QB_PG_DSN"), *bindir = getenv("QB_BIN_DIR");
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    if (!dsn || !bindir || !getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_features: QB_PG_DSN, QB_BIN_DIR and QB_KAFKA_BROKERS are needed\n");
        return 1;
    }
    char err[1024], db[64], dbdsn[4200], sql[512], sqldir[1100], bin[1100];
    snprintf(db, sizeof db, "qb_bench_feat_%d", (int)getpid());
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
    pid_t pid = -1;
    qb_producer_t *p = NULL;
    coll_t bars = {0};
    if (!st || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    /* Two strategies on every symbol. */
    char symlist[NSYM * 12 + 8];
    size_t pos = 0;
    symlist[pos++] = '{';
    for (int i = 0; i < NSYM; i++)
        pos += (size_t)snprintf(symlist + pos, sizeof symlist - pos, "%sBF%d", i ? "," : "", i);
    symlist[pos++] = '}';
    symlist[pos] = '\0';
    const char *params[1] = {symlist};
    if (qb_store_query(st,
                       "INSERT INTO features.strategies (strategy_id, kind, params, symbols,"
                       " timeframe) VALUES ('bench-sma', 'sma_cross', '{\"fast\":10,\"slow\":30}',"
                       " $1::text[], '1m'), ('bench-basic', 'basic_signals', '{}', $1::text[],"
                       " '1m')",
                       1, params, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "strategies: %s\n", err);
        goto out;
    }
    /* The bars, made before the clock starts. */
    qb_md_synth_opts_t so;
    qb_md_synth_opts_default(&so, 7);
    qb_md_source_t *src = qb_md_synth_source_new(&so, err, sizeof err);
    qb_md_sink_t sink = {collect, NULL, &bars};
    for (int i = 0; i < NSYM && src; i++) {
        char sym[16];
        snprintf(sym, sizeof sym, "BF%d", i);
        qb_md_request_t req = {sym, "1m", 1704186000LL * QB_NS_PER_SEC,
                               (1704186000LL + NBARS * 60LL) * QB_NS_PER_SEC, 0};
        if (qb_md_fetch(src, &req, &sink, err, sizeof err) != QB_OK) break;
    }
    qb_md_source_destroy(src);
    if (bars.n != (size_t)NSYM * NBARS) {
        fprintf(stderr, "synthetic bars: %zu of %d: %s\n", bars.n, NSYM * NBARS, err);
        goto out;
    }
    /* Interleave symbols by time, as a live feed would. */
    qb_bar_t *live = malloc(bars.n * sizeof *live);
    if (!live) goto out;
    for (int i = 0; i < NSYM; i++)
        for (int k = 0; k < NBARS; k++) live[(size_t)k * NSYM + (size_t)i] = bars.v[(size_t)i * NBARS + (size_t)k];
    free(bars.v);
    bars.v = live;

    snprintf(bin, sizeof bin, "%s/qb-features", bindir);
    char group[64], port[16];
    snprintf(group, sizeof group, "bench-feat-%d", (int)getpid());
    snprintf(port, sizeof port, "%d", 20000 + (int)(getpid() % 30000));
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        setenv("QB_PG_DSN", dbdsn, 1);
        setenv("QB_SQL_DIR", sqldir, 1);
        setenv("QB_FEATURES_GROUP", group, 1);
        setenv("QB_KAFKA_AUTO_OFFSET_RESET", "latest", 1);
        setenv("QB_ADMIN_PORT", port, 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_LOG_LEVEL", "warn", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    /* Wait until it consumes: a probe bar of a symbol of its own. */
    if (!(p = qb_producer_new(err, sizeof err))) goto out;
    qb_bar_t probe = bars.v[0];
    snprintf(probe.symbol.s, sizeof probe.symbol.s, "BFPROBE");
    int ready = 0;
    for (int i = 0; i < 600 && !ready; i++) {
        probe.ts += 60 * QB_NS_PER_SEC;
        qb_md_publish_bars(p, NULL, &probe, 1, "bench", "bench", err, sizeof err);
        qb_producer_flush(p, 1000);
        usleep(100 * 1000);
        ready = count_rows(st, "features.features") > 0;
    }
    if (!ready) {
        fprintf(stderr, "qb-features did not start consuming\n");
        goto out;
    }
    int64_t base = count_rows(st, "features.features");
    int64_t t0 = qb_time_mono_ns();
    for (size_t i = 0; i < bars.n; i += 1000) {
        size_t n = bars.n - i < 1000 ? bars.n - i : 1000;
        if (qb_md_publish_bars(p, NULL, bars.v + i, n, "bench", "bench", err, sizeof err)) {
            fprintf(stderr, "publish: %s\n", err);
            goto out;
        }
        qb_producer_poll(p, 0);
    }
    qb_producer_flush(p, 30000);
    int64_t tp = qb_time_mono_ns();
    int64_t got = 0;
    for (int i = 0; i < 6000; i++) {
        got = count_rows(st, "features.features") - base;
        if (got >= (int64_t)bars.n) break;
        usleep(20 * 1000);
    }
    int64_t t1 = qb_time_mono_ns();
    double secs = (double)(t1 - t0) / 1e9;
    printf("qb-features end to end:  %lld bars (%d symbols x %d 1m bars, 2 strategies each) in "
           "%.2f s = %.0f bars/s (publish alone %.2f s); %lld signals\n",
           (long long)got, NSYM, NBARS, secs, (double)got / secs, (double)(tp - t0) / 1e9,
           (long long)count_rows(st, "features.signals"));
    rc = got >= (int64_t)bars.n ? 0 : 1;
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    qb_producer_destroy(p);
    free(bars.v);
    qb_store_destroy(st);
    if (admin) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        qb_store_exec(admin, sql, err, sizeof err);
        qb_store_destroy(admin);
    }
    return rc;
}
