/* bench_execution.c — qb-execution through the paper broker.
 *
 * 1. In process (libs/exec, no I/O): orders through the state machine and
 *    the paper simulator — NEW, SUBMITTED, submit, ACCEPTED, then a bar
 *    fills them (FILL -> FILLED): orders/s of the logic alone.
 * 2. End to end on the embedded bus and PostgreSQL: qb-execution
 *    ($QB_BIN_DIR) on a fresh database (migrated from $QB_ROOT/sql), paper
 *    broker "sim". Orders are produced on `orders`; the latency of each is
 *    the time from its produce (bench clock) to the arrival of its first
 *    ExecutionReport with status ACCEPTED on exec.reports (read by a
 *    group-less reader in this process: durable in PostgreSQL, through the
 *    outbox, on the bus). Paced at 200 orders/s for p50/p99, then a burst
 *    of 3000 orders for orders/s (last ACCEPTED report received).
 * Prints numbers only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "bus/qb_topics.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "exec/qb_exec.h"
#include "exec/qb_exec_broker.h"
#include "proto/qb_proto.h"
#include "qb/v1/trading.pb-c.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define NPACED 1000
#define NBURST 3000

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_logic(void) {
    enum { N = 100000 };
    char err[256];
    qb_exec_paper_config_t pc;
    qb_exec_paper_config_default(&pc);
    pc.pf.initial_cash = 100000000000000000LL; /* 1e9 */
    qb_exec_broker_t *b = NULL;
    if (qb_exec_paper_new(&pc, &b, err, sizeof err)) return;
    qb_exec_book_t *book = qb_exec_book_new();
    int64_t t0 = qb_time_mono_ns();
    for (int i = 0; i < N; i++) {
        qb_exec_order_t o;
        memset(&o, 0, sizeof o);
        char name[32];
        int nl = snprintf(name, sizeof name, "b%d", i);
        qb_uuid_v5(QB_EXEC_NS, name, (size_t)nl, o.o.id);
        snprintf(o.o.account, sizeof o.o.account, "bench");
        snprintf(o.o.symbol.s, sizeof o.o.symbol.s, "S%d", i % 50);
        o.o.side = QB_SIDE_BUY;
        o.o.type = QB_ORDER_TYPE_MARKET;
        o.o.tif = QB_TIF_GTC;
        o.o.qty = 100000000;
        o.o.status = QB_ORDER_STATUS_NEW;
        qb_exec_report_t r;
        qb_exec_order_created(&o, 1, &r);
        qb_exec_event_t e;
        memset(&e, 0, sizeof e);
        snprintf(e.order_id, sizeof e.order_id, "%s", o.o.id);
        e.kind = QB_EXEC_EV_SUBMITTED;
        qb_exec_order_apply(&o, &e, &r, NULL, 0);
        qb_exec_border_t bo;
        if (qb_exec_broker_submit(b, &o, &bo, err, sizeof err)) continue;
        e.kind = QB_EXEC_EV_ACCEPTED;
        qb_exec_order_apply(&o, &e, &r, NULL, 0);
        qb_exec_book_put(book, &o);
    }
    int64_t t1 = qb_time_mono_ns();
    size_t fills = 0;
    for (int s = 0; s < 50; s++) {
        qb_bar_t bar;
        memset(&bar, 0, sizeof bar);
        snprintf(bar.symbol.s, sizeof bar.symbol.s, "S%d", s);
        snprintf(bar.timeframe, sizeof bar.timeframe, "1m");
        bar.ts = 1700000000000000000LL;
        bar.open = bar.high = bar.low = bar.close = 10000000000LL;
        bar.volume = 100000000000000LL;
        qb_exec_event_t *evs = NULL;
        size_t n = 0;
        qb_exec_paper_on_bar(b, &bar, &evs, &n, err, sizeof err);
        for (size_t i = 0; i < n; i++) {
            qb_exec_order_t *o = qb_exec_book_get(book, evs[i].order_id);
            qb_exec_report_t r;
            if (o && qb_exec_order_apply(o, &evs[i], &r, NULL, 0) == QB_OK) fills++;
        }
        free(evs);
    }
    int64_t t2 = qb_time_mono_ns();
    printf("logic (libs/exec + paper simulator, in process): %d orders NEW->ACCEPTED in %.3f s = "
           "%.0f orders/s; %zu fills on 50 bars in %.3f s = %.0f fills/s\n",
           N, (double)(t1 - t0) / 1e9, N / ((double)(t1 - t0) / 1e9), fills,
           (double)(t2 - t1) / 1e9, (double)fills / ((double)(t2 - t1) / 1e9));
    qb_exec_book_destroy(book);
    qb_exec_broker_destroy(b);
}

typedef struct {
    char id[QB_UUID_STRLEN];
    int64_t sent_ns, got_ns;
} slot_t;

static qb_err_t send_order(qb_producer_t *p, const char *account, int i, slot_t *s) {
    char name[64];
    int nl = snprintf(name, sizeof name, "%s-%d", account, i);
    qb_uuid_v5(QB_EXEC_NS, name, (size_t)nl, s->id);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = s->id;
    h.producer = "bench";
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__Order o = QB__V1__ORDER__INIT;
    o.header = &h;
    o.order_id = s->id;
    o.cause_id = name;
    o.cause_kind = QB__V1__ORDER_CAUSE__ORDER_CAUSE_SIGNAL;
    o.account = (char *)account;
    o.symbol = "BENCHX";
    o.side = QB__V1__SIDE__SIDE_BUY;
    o.type = QB__V1__ORDER_TYPE__ORDER_TYPE_LIMIT;
    o.limit_price = 100000000; /* 1.00: works, never fills (no bar) */
    o.time_in_force = QB__V1__TIME_IN_FORCE__TIME_IN_FORCE_GTC;
    o.qty = 100000000;
    o.mode = QB__V1__TRADING_MODE__TRADING_MODE_PAPER;
    s->sent_ns = qb_time_now();
    h.produced_time = s->sent_ns;
    return qb_producer_send_msg(p, "orders", account, strlen(account), &o.base, "");
}

/* Read reports until every slot has its ACCEPTED one or the deadline. */
static size_t drain(qb_reader_t *rd, slot_t *s, size_t n, int64_t deadline_ms) {
    size_t got = 0;
    for (size_t i = 0; i < n; i++) got += s[i].got_ns != 0;
    int64_t end = qb_time_mono_ns() + deadline_ms * 1000000LL;
    while (got < n && qb_time_mono_ns() < end) {
        qb_bus_msg_t m;
        const char *derr = NULL;
        if (qb_reader_next(rd, 50, &m, &derr) != QB_OK || !m.msg) continue;
        const Qb__V1__ExecutionReport *x = (const Qb__V1__ExecutionReport *)m.msg;
        if (x->status != QB__V1__ORDER_STATUS__ORDER_STATUS_ACCEPTED) continue;
        int64_t now = qb_time_now();
        for (size_t i = 0; i < n; i++)
            if (!s[i].got_ns && strcmp(s[i].id, x->order_id) == 0) {
                s[i].got_ns = now;
                got++;
                break;
            }
    }
    return got;
}

int main(void) {
    qb_log_init("bench-execution", QB_LOG_WARN);
    bench_logic();
    const char *dsn = getenv("QB_PG_DSN"), *bindir = getenv("QB_BIN_DIR");
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    if (!dsn || !bindir || !getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_execution: QB_PG_DSN, QB_BIN_DIR and QB_KAFKA_BROKERS are needed\n");
        return 1;
    }
    char err[1024], db[64], dbdsn[4200], sql[512], sqldir[1100], bin[1100];
    if (qb_topics_init(err, sizeof err)) {
        fprintf(stderr, "topics: %s\n", err);
        return 1;
    }
    snprintf(db, sizeof db, "qb_bench_exec_%d", (int)getpid());
    qb_store_t *admin = qb_store_new(dsn, err, sizeof err);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!admin || qb_store_exec(admin, sql, err, sizeof err) != QB_OK) {
        fprintf(stderr, "create database: %s\n", err);
        return 1;
    }
    snprintf(dbdsn, sizeof dbdsn, "%s dbname=%s", dsn, db);
    snprintf(sqldir, sizeof sqldir, "%s", getenv("QB_SQL_DIR") ? getenv("QB_SQL_DIR") : "");
    if (!sqldir[0]) snprintf(sqldir, sizeof sqldir, "%s/sql", root);
    qb_store_t *st = qb_store_new(dbdsn, err, sizeof err);
    int rc = 1;
    pid_t pid = -1;
    qb_producer_t *p = NULL;
    qb_reader_t *rd = NULL;
    slot_t *s = calloc(NPACED + NBURST + 1000, sizeof *s);
    double *lat = calloc(NPACED, sizeof *lat);
    if (!s || !lat || !st || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    if (!(rd = qb_reader_new("exec.reports", 0, 10000, err, sizeof err))) {
        fprintf(stderr, "reader: %s\n", err);
        goto out;
    }
    snprintf(bin, sizeof bin, "%s/qb-execution", bindir);
    char group[64], account[64];
    snprintf(group, sizeof group, "bench-exec-%d", (int)getpid());
    snprintf(account, sizeof account, "bench-%d", (int)getpid());
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        setenv("QB_PG_DSN", dbdsn, 1);
        setenv("QB_SQL_DIR", sqldir, 1);
        setenv("QB_EXEC_GROUP", group, 1);
        setenv("QB_KAFKA_AUTO_OFFSET_RESET", "latest", 1);
        setenv("QB_ADMIN_PORT", "0", 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_LOG_LEVEL", "warn", 1);
        setenv("QB_EXEC_PAPER_CASH", "1000000000", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    if (!(p = qb_producer_new(err, sizeof err))) goto out;
    /* wait until it consumes: probe orders until one is ACCEPTED */
    int ready = 0;
    slot_t *probe = &s[NPACED + NBURST];
    for (int i = 0; i < 300 && !ready; i++) {
        send_order(p, account, 1000000 + i, &probe[i % 1000]);
        qb_producer_flush(p, 1000);
        ready = drain(rd, &probe[i % 1000], 1, 200) == 1;
    }
    if (!ready) {
        fprintf(stderr, "qb-execution did not start consuming\n");
        goto out;
    }
    /* paced: 200 orders/s */
    int64_t start = qb_time_mono_ns();
    for (int i = 0; i < NPACED; i++) {
        int64_t due = start + (int64_t)i * 5000000LL;
        while (qb_time_mono_ns() < due) {
            qb_bus_msg_t m;
            const char *derr = NULL;
            if (qb_reader_next(rd, 1, &m, &derr) == QB_OK && m.msg) {
                const Qb__V1__ExecutionReport *x = (const Qb__V1__ExecutionReport *)m.msg;
                if (x->status == QB__V1__ORDER_STATUS__ORDER_STATUS_ACCEPTED)
                    for (int k = i - 1; k >= 0 && k >= i - 400; k--)
                        if (!s[k].got_ns && strcmp(s[k].id, x->order_id) == 0) {
                            s[k].got_ns = qb_time_now();
                            break;
                        }
            }
        }
        send_order(p, account, i, &s[i]);
        qb_producer_poll(p, 0);
    }
    qb_producer_flush(p, 10000);
    size_t got = drain(rd, s, NPACED, 30000);
    size_t nl = 0;
    for (int i = 0; i < NPACED; i++)
        if (s[i].got_ns) lat[nl++] = (double)(s[i].got_ns - s[i].sent_ns) / 1e6;
    qsort(lat, nl, sizeof *lat, cmp_d);
    if (nl)
        printf("order -> ExecutionReport (ACCEPTED) through qb-execution + paper broker, 200 "
               "orders/s: %zu of %d: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               got, NPACED, lat[nl / 2], lat[(nl * 99) / 100], lat[nl - 1]);
    /* burst */
    int64_t t0 = qb_time_mono_ns();
    for (int i = 0; i < NBURST; i++) {
        send_order(p, account, 10000 + i, &s[NPACED + i]);
        qb_producer_poll(p, 0);
    }
    qb_producer_flush(p, 30000);
    size_t gb = drain(rd, &s[NPACED], NBURST, 120000);
    double secs = (double)(qb_time_mono_ns() - t0) / 1e9;
    printf("burst of %d orders: %zu ACCEPTED reports in %.2f s = %.0f orders/s (each order: "
           "dedupe + one transaction with order, 3 reports, 3 audit rows)\n",
           NBURST, gb, secs, (double)gb / secs);
    rc = got == NPACED && gb == NBURST ? 0 : 1;
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    qb_reader_destroy(rd);
    qb_producer_destroy(p);
    free(s);
    free(lat);
    qb_store_destroy(st);
    if (admin) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        qb_store_exec(admin, sql, err, sizeof err);
    }
    qb_store_destroy(admin);
    return rc;
}
