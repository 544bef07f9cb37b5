/* bench_risk.c — qb-risk on the embedded bus: signal -> order decision
 * latency and decisions/s of the whole service (sizing, every pre-trade
 * check, the durable write of the decision with its offsets, publish and
 * acknowledgement).
 *
 * A fresh database on QB_PG_DSN (migrated from $QB_ROOT/sql; versions
 * reserved by issues not merged yet are filled with no-op placeholders in a
 * temporary copy), 20 accounts of 100M with limits that let a burst through
 * (6000 orders/min, sizing 0.01% at risk), 10 symbols. qb-risk
 * ($QB_BIN_DIR) starts with its own group reading from the latest offset.
 *   1. paced: 2000 signals at 1000/s; per signal, the time from its send to
 *      its decision (Order on `orders` or rejection on exec.reports) read
 *      back by this process: p50 / p99 (two bus hops + the service);
 *   2. burst: 20000 signals as fast as the producer goes; decisions/s from
 *      the first send to the last decision read back;
 *   3. inside the service, from its /metrics histograms (interpolated in
 *      the buckets): received -> decided in memory, and received -> the
 *      decision durable (with its input offsets) and handed to the bus.
 * Prints numbers only. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "proto/qb_proto.h"
#include "qb/v1/trading.pb-c.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define NACC 20
#define NSYM 10
#define NPACED 2000
#define NBURST 20000

/* A copy of sql/ with a placeholder for every missing version. */
static int sql_copy(const char *from, const char *to) {
    char path[2048], cmd[4600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/[0-9]*.sql '%s'/", to, from, to);
    if (system(cmd) != 0) return -1;
    int have[10000] = {0}, max = 0;
    DIR *d = opendir(to);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) {
        int v = atoi(e->d_name);
        if (v > 0 && v < 10000) {
            have[v] = 1;
            if (v > max) max = v;
        }
    }
    closedir(d);
    for (int v = 1; v < max; v++) {
        if (have[v]) continue;
        snprintf(path, sizeof path, "%s/%04d_placeholder.sql", to, v);
        FILE *f = fopen(path, "w");
        if (!f) return -1;
        fputs("SELECT 1;\n", f);
        fclose(f);
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct bench_s {
    qb_producer_t *p;
    qb_reader_t *ro, *rx;
    int64_t *sent, *got;
    int n_got;
    char prefix[64];
} bench_t;

static int send_signal(bench_t *b, int k, const char *tag) {
    char id[160], acc[96], sym[16];
    snprintf(id, sizeof id, "%s-%s-%d", b->prefix, tag, k);
    snprintf(acc, sizeof acc, "%s-a%d", b->prefix, k % NACC);
    snprintf(sym, sizeof sym, "BR%d", (k / NACC) % NSYM);
    qb_proto_header_t h;
    qb_proto_header_init(&h, "bench", 0, NULL);
    Qb__V1__Signal s = QB__V1__SIGNAL__INIT;
    s.header = &h.pb;
    s.signal_id = id;
    s.account = acc;
    s.strategy_id = "bench";
    s.symbol = sym;
    s.timeframe = "1m";
    s.direction = (k / (NACC * NSYM)) % 2 ? QB__V1__SIGNAL_DIRECTION__SIGNAL_DIRECTION_FLAT
                                          : QB__V1__SIGNAL_DIRECTION__SIGNAL_DIRECTION_LONG;
    s.confidence = 1;
    s.stop_distance = 200000000;
    s.reference_price = 10000000000;
    s.bar_ts = 1700000000000000000LL;
    return qb_producer_send_msg(b->p, "signals", acc, strlen(acc), &s.base, "") == QB_OK ? 0 : -1;
}

/* Read decisions for `tag` until `want` or the deadline; records times. */
static void read_decisions(bench_t *b, const char *tag, int want, int64_t deadline) {
    char pre[96];
    int pl = snprintf(pre, sizeof pre, "%s-%s-", b->prefix, tag);
    int idle = 0;
    while (b->n_got < want && qb_time_mono_ns() < deadline) {
        /* both readers without waiting; wait (1 ms) only when both were empty */
        int any = 0;
        for (int w = 0; w < 2; w++) {
            qb_bus_msg_t m;
            const char *de = NULL;
            if (qb_reader_next(w ? b->rx : b->ro, idle ? 1 : 0, &m, &de) != QB_OK) continue;
            any = 1;
            if (!m.msg) continue;
            const char *cause = NULL;
            if (strcmp(m.type, "qb.v1.Order") == 0) cause = ((const Qb__V1__Order *)m.msg)->cause_id;
            else if (strcmp(m.type, "qb.v1.ExecutionReport") == 0)
                cause = ((const Qb__V1__ExecutionReport *)m.msg)->cause_id;
            if (!cause || strncmp(cause, pre, (size_t)pl) != 0) continue;
            int k = atoi(cause + pl);
            if (k < 0 || k >= NBURST || b->got[k]) continue;
            b->got[k] = qb_time_mono_ns();
            b->n_got++;
        }
        idle = !any;
    }
}

/* p-quantile of a Prometheus histogram in `text`, linear in the bucket. */
static double hist_quantile(const char *text, const char *name, double q) {
    double le[64], cnt[64];
    int n = 0;
    char pat[160];
    snprintf(pat, sizeof pat, "%s_bucket{le=\"", name);
    for (const char *p = strstr(text, pat); p && n < 64; p = strstr(p + 1, pat)) {
        const char *v = p + strlen(pat);
        le[n] = strncmp(v, "+Inf", 4) == 0 ? INFINITY : strtod(v, NULL);
        const char *sp = strchr(v, ' ');
        cnt[n] = sp ? strtod(sp + 1, NULL) : 0;
        n++;
    }
    if (n == 0 || cnt[n - 1] <= 0) return NAN;
    double target = q * cnt[n - 1], prev_le = 0, prev_c = 0;
    for (int i = 0; i < n; i++) {
        if (cnt[i] >= target) {
            if (isinf(le[i])) return prev_le;
            double f = cnt[i] > prev_c ? (target - prev_c) / (cnt[i] - prev_c) : 0;
            return prev_le + f * (le[i] - prev_le);
        }
        prev_le = le[i];
        prev_c = cnt[i];
    }
    return NAN;
}

static char *http_get(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (ssize_t r; buf && (r = read(fd, buf + len, cap - len - 1)) > 0;) len += (size_t)r;
    close(fd);
    if (buf) buf[len] = '\0';
    return buf;
}

int main(void) {
    qb_log_init("bench-risk", QB_LOG_WARN);
    const char *dsn = getenv("QB_PG_DSN"), *bindir = getenv("QB_BIN_DIR");
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    if (!dsn || !bindir || !getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_risk: QB_PG_DSN, QB_BIN_DIR and QB_KAFKA_BROKERS are needed\n");
        return 1;
    }
    char err[1024], db[64], dbdsn[4200], sql[512], sqlsrc[1100], sqldir[128], bin[1100];
    bench_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.prefix, sizeof b.prefix, "br%d", (int)getpid());
    snprintf(db, sizeof db, "qb_bench_risk_%d", (int)getpid());
    snprintf(sqlsrc, sizeof sqlsrc, "%s/sql", root);
    snprintf(sqldir, sizeof sqldir, "/tmp/qb-bench-risk-sql-%d", (int)getpid());
    if (sql_copy(sqlsrc, sqldir) != 0) {
        fprintf(stderr, "cannot copy %s\n", sqlsrc);
        return 1;
    }
    qb_store_t *admin = qb_store_new(dsn, err, sizeof err), *st = NULL;
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!admin || qb_store_exec(admin, sql, err, sizeof err) != QB_OK) {
        fprintf(stderr, "create database: %s\n", err);
        return 1;
    }
    snprintf(dbdsn, sizeof dbdsn, "%s dbname=%s", dsn, db);
    int rc = 1;
    pid_t pid = -1;
    b.sent = calloc(NBURST, sizeof *b.sent);
    b.got = calloc(NBURST, sizeof *b.got);
    st = qb_store_new(dbdsn, err, sizeof err);
    if (!st || !b.sent || !b.got || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    /* limits that let the burst through */
    for (int i = 0; i < NACC; i++) {
        char acc[96];
        snprintf(acc, sizeof acc, "%s-a%d", b.prefix, i);
        const char *p[1] = {acc};
        if (qb_store_query(st,
                           "INSERT INTO risk.limits (account, kind, value) VALUES ($1, 9,"
                           " 600000000000), ($1, 10, 1000000000000), ($1, 19, 10000)",
                           1, p, NULL, err, sizeof err) != QB_OK) {
            fprintf(stderr, "limits: %s\n", err);
            goto out;
        }
    }
    snprintf(bin, sizeof bin, "%s/qb-risk", bindir);
    char group[64], port[16];
    int admin_port = 20000 + (int)(getpid() % 30000);
    snprintf(group, sizeof group, "bench-risk-%d", (int)getpid());
    snprintf(port, sizeof port, "%d", admin_port);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        setenv("QB_PG_DSN", dbdsn, 1);
        setenv("QB_SQL_DIR", sqldir, 1);
        setenv("QB_RISK_GROUP", group, 1);
        setenv("QB_RISK_INITIAL_CASH", "100000000", 1);
        setenv("QB_RISK_SNAPSHOT_S", "0", 1);
        setenv("QB_KAFKA_AUTO_OFFSET_RESET", "latest", 1);
        setenv("QB_ADMIN_PORT", port, 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_LOG_LEVEL", "warn", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    if (!(b.p = qb_producer_new(err, sizeof err)) ||
        !(b.ro = qb_reader_new("orders", 0, 10000, err, sizeof err)) ||
        !(b.rx = qb_reader_new("exec.reports", 0, 10000, err, sizeof err))) {
        fprintf(stderr, "bus: %s\n", err);
        goto out;
    }
    /* wait until it decides: probe signals */
    int ready = 0;
    for (int i = 0; i < 300 && !ready; i++) {
        char tag[24];
        snprintf(tag, sizeof tag, "probe%d", i);
        send_signal(&b, 0, tag);
        qb_producer_flush(&*b.p, 1000);
        b.n_got = 0;
        memset(b.got, 0, sizeof(int64_t));
        read_decisions(&b, tag, 1, qb_time_mono_ns() + 300000000LL);
        ready = b.n_got == 1;
    }
    if (!ready) {
        fprintf(stderr, "qb-risk did not start deciding\n");
        goto out;
    }
    /* 1. paced */
    memset(b.got, 0, NBURST * sizeof *b.got);
    b.n_got = 0;
    int64_t t0 = qb_time_mono_ns();
    for (int k = 0; k < NPACED; k++) {
        int64_t due = t0 + (int64_t)k * 1000000LL; /* 1000/s */
        while (qb_time_mono_ns() < due) read_decisions(&b, "paced", NPACED, due);
        b.sent[k] = qb_time_mono_ns();
        send_signal(&b, k, "paced");
        qb_producer_poll(b.p, 0);
    }
    qb_producer_flush(b.p, 10000);
    read_decisions(&b, "paced", NPACED, qb_time_mono_ns() + 30000000000LL);
    int64_t *lat = calloc(NPACED, sizeof *lat);
    int nl = 0;
    for (int k = 0; k < NPACED && lat; k++)
        if (b.got[k]) lat[nl++] = b.got[k] - b.sent[k];
    qsort(lat, (size_t)nl, sizeof *lat, cmp_i64);
    if (nl)
        printf("qb-risk signal -> decision read back (paced 1000/s, %d of %d): p50 %.2f ms, p99 "
               "%.2f ms, max %.2f ms\n",
               nl, NPACED, (double)lat[nl / 2] / 1e6, (double)lat[nl * 99 / 100] / 1e6,
               (double)lat[nl - 1] / 1e6);
    free(lat);
    /* 2. burst */
    memset(b.got, 0, NBURST * sizeof *b.got);
    b.n_got = 0;
    t0 = qb_time_mono_ns();
    for (int k = 0; k < NBURST; k++) {
        send_signal(&b, k, "burst");
        if (k % 1000 == 999) qb_producer_poll(b.p, 0);
    }
    qb_producer_flush(b.p, 30000);
    int64_t tp = qb_time_mono_ns();
    read_decisions(&b, "burst", NBURST, qb_time_mono_ns() + 120000000000LL);
    int64_t last = 0;
    for (int k = 0; k < NBURST; k++)
        if (b.got[k] > last) last = b.got[k];
    double secs = (double)(last - t0) / 1e9;
    printf("qb-risk burst: %d of %d signals decided in %.2f s = %.0f decisions/s (publish alone "
           "%.2f s)\n",
           b.n_got, NBURST, secs, (double)b.n_got / secs, (double)(tp - t0) / 1e9);
    char *m = http_get(admin_port, "/metrics");
    if (m) {
        printf("qb-risk inside the service (all signals, /metrics buckets): received -> decided "
               "p50 %.3f ms p99 %.3f ms; received -> durable and sent p50 %.2f ms p99 "
               "%.2f ms\n",
               hist_quantile(m, "qb_risk_decision_seconds", 0.5) * 1e3,
               hist_quantile(m, "qb_risk_decision_seconds", 0.99) * 1e3,
               hist_quantile(m, "qb_risk_signal_to_order_seconds", 0.5) * 1e3,
               hist_quantile(m, "qb_risk_signal_to_order_seconds", 0.99) * 1e3);
        free(m);
    }
    rc = b.n_got == NBURST ? 0 : 1;
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        int wst = 0, done = 0;
        for (int i = 0; i < 300 && !done; i++) { /* 30 s, then SIGKILL */
            done = waitpid(pid, &wst, WNOHANG) == pid;
            if (!done) usleep(100 * 1000);
        }
        if (!done) {
            fprintf(stderr, "qb-risk did not stop within 30 s of SIGTERM: killed\n");
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        } else if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
            fprintf(stderr, "qb-risk exited with status %d\n", wst);
        }
    }
    qb_reader_destroy(b.ro);
    qb_reader_destroy(b.rx);
    qb_producer_destroy(b.p);
    free(b.sent);
    free(b.got);
    qb_store_destroy(st);
    if (admin) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        qb_store_exec(admin, sql, err, sizeof err);
        qb_store_destroy(admin);
    }
    snprintf(sql, sizeof sql, "rm -rf '%s'", sqldir);
    if (system(sql) != 0) fprintf(stderr, "cannot remove %s\n", sqldir);
    return rc;
}
