/* bench_notify.c — qb-notify's two rates:
 *
 * 1. rule evaluation alone (libs/notify, one thread): 1,000,000 bars of 100
 *    symbols (random walk around 100) through 1,000 price rules (5
 *    price_above / 5 price_below on each symbol, levels 95..104; 100
 *    price_move rules over any symbol would double the work, so 10 are
 *    given) plus 100 signal rules, each firing rendered with its template:
 *    events/s and firings/s;
 * 2. the service end to end ($QB_BIN_DIR/qb-notify, fresh database and
 *    topics): 100,000 bars of 100 symbols on md.bars, 10 of which carry a
 *    price_above rule (no throttle) whose bars alternate 99 / 101, so 5,000
 *    firings; each goes as a JSON POST to a local webhook (libmicrohttpd in
 *    this process, 200 at once). Prints events/s evaluated (the service's
 *    qb_notify_events_total) and notifications/s delivered to the webhook
 *    (first to last POST, and from the first bar published).
 * Prints numbers only. Migrations from $QB_ROOT/sql. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "bus/qb_bus.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "notify/qb_notify.h"
#include "proto/qb_proto.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

#define PX(x) ((int64_t)((x) * 100000000.0 + 0.5))

/* ---- 1. evaluation alone ------------------------------------------------------------ */

static uint64_t g_fired;

static void bench_fire(void *opaque, const qb_nfire_t *f) {
    (void)opaque;
    char title[QB_NTITLE_MAX], text[QB_NTEXT_MAX];
    qb_ntmpl_render(f, title, sizeof title, text, sizeof text);
    g_fired += (uint64_t)(unsigned char)title[0] > 0;
}

static void bench_eval(void) {
    char err[256];
    qb_neval_t *ev = qb_neval_new();
    qb_nrules_t *rs = qb_nrules_new();
    for (int s = 0; s < 100; s++)
        for (int k = 0; k < 10; k++) {
            qb_nrule_t *r = qb_nrules_add(rs);
            snprintf(r->id, sizeof r->id, "r-%d-%d", s, k);
            snprintf(r->owner, sizeof r->owner, "bench");
            snprintf(r->symbol, sizeof r->symbol, "S%d", s);
            r->cond = k < 5 ? QB_NCOND_PRICE_ABOVE : QB_NCOND_PRICE_BELOW;
            r->threshold = PX(95 + k);
            qb_nrule_add_target(r, QB_NCHAN_WEBHOOK, "https://example.com/h", NULL, err, sizeof err);
        }
    for (int k = 0; k < 10; k++) {
        qb_nrule_t *r = qb_nrules_add(rs);
        snprintf(r->id, sizeof r->id, "move-%d", k);
        snprintf(r->owner, sizeof r->owner, "bench");
        r->cond = QB_NCOND_PRICE_MOVE;
        r->move_pct = 2 + k * 0.5;
        r->window_ns = (10 + k) * 60LL * QB_NS_PER_SEC;
        qb_nrule_add_target(r, QB_NCHAN_IN_APP, "", NULL, err, sizeof err);
    }
    for (int k = 0; k < 100; k++) {
        qb_nrule_t *r = qb_nrules_add(rs);
        snprintf(r->id, sizeof r->id, "sig-%d", k);
        snprintf(r->owner, sizeof r->owner, "bench");
        snprintf(r->symbol, sizeof r->symbol, "S%d", k);
        r->cond = QB_NCOND_SIGNAL;
        qb_nrule_add_target(r, QB_NCHAN_IN_APP, "", NULL, err, sizeof err);
    }
    size_t nrules = rs->n;
    qb_neval_set_rules(ev, rs);
    int64_t px[100];
    for (int s = 0; s < 100; s++) px[s] = PX(100);
    uint64_t rnd = 12345;
    const int N = 1000000;
    char sym[100][16];
    for (int s = 0; s < 100; s++) snprintf(sym[s], sizeof sym[s], "S%d", s);
    int64_t t0 = qb_time_mono_ns();
    for (int i = 0; i < N; i++) {
        int s = i % 100;
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t step = (int64_t)((rnd >> 33) % 61) - 30; /* +-0.3 */
        px[s] += step * 1000000;
        if (px[s] < PX(80)) px[s] = PX(80);
        if (px[s] > PX(120)) px[s] = PX(120);
        qb_nevent_t e = {.kind = QB_NEV_BAR, .event_id = "b", .time = (int64_t)(i / 100) * 60 * QB_NS_PER_SEC,
                         .symbol = sym[s], .timeframe = "1m", .close = px[s]};
        qb_neval_event(ev, &e, bench_fire, NULL, NULL);
    }
    double secs = (double)(qb_time_mono_ns() - t0) / 1e9;
    printf("rule evaluation (libs/notify, 1 thread): %d bars through %zu rules in %.2f s = %.2f M "
           "events/s; %llu firings rendered (%.0f/s)\n",
           N, nrules, secs, N / secs / 1e6, (unsigned long long)g_fired, (double)g_fired / secs);
    qb_neval_destroy(ev);
}

/* ---- 2. the service ------------------------------------------------------------------ */

static atomic_long g_posts;
static atomic_llong g_first_ns, g_last_ns;

static enum MHD_Result sink(void *cls, struct MHD_Connection *c, const char *url,
                            const char *method, const char *version, const char *data,
                            size_t *size, void **req) {
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    if (!*req) {
        *req = (void *)1;
        return MHD_YES;
    }
    if (*size) {
        *size = 0;
        return MHD_YES;
    }
    int64_t now = qb_time_mono_ns();
    long long zero = 0;
    atomic_compare_exchange_strong(&g_first_ns, &zero, now);
    atomic_store(&g_last_ns, now);
    atomic_fetch_add(&g_posts, 1);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

typedef struct mbuf_s {
    char b[1 << 17];
    size_t n;
} mbuf_t;

static size_t mwrite(char *p, size_t s, size_t n, void *ud) {
    mbuf_t *m = ud;
    size_t l = s * n;
    if (m->n + l >= sizeof m->b) l = sizeof m->b - 1 - m->n;
    memcpy(m->b + m->n, p, l);
    m->n += l;
    m->b[m->n] = '\0';
    return s * n;
}

static long long metric(int port, const char *name) {
    static mbuf_t m;
    m.n = 0;
    m.b[0] = '\0';
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mwrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) return -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(m.b, key);
    return p ? atoll(p + strlen(key)) : 0;
}

static void send_bar(qb_producer_t *p, const char *sym, int64_t ts, int64_t close) {
    char id[QB_UUID_STRLEN], name[64];
    int nl = snprintf(name, sizeof name, "%s|%lld", sym, (long long)ts);
    qb_uuid_v5(QB_UUID_NS_URL, name, (size_t)nl, id);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = id;
    h.event_time = ts;
    h.producer = "bench";
    h.trace_id = "";
    h.schema_version = 1;
    Qb__V1__Bar b = QB__V1__BAR__INIT;
    b.header = &h;
    b.symbol = (char *)sym;
    b.timeframe = "1m";
    b.ts = ts;
    b.open = b.high = b.low = b.close = close;
    b.volume = 100000000;
    qb_producer_send_msg(p, "md.bars", sym, strlen(sym), &b.base, "");
}

static int bench_service(void) {
    const char *dsn = getenv("QB_PG_DSN"), *bindir = getenv("QB_BIN_DIR");
    const char *root = getenv("QB_ROOT") ? getenv("QB_ROOT") : ".";
    if (!dsn || !bindir || !getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_notify: QB_PG_DSN, QB_BIN_DIR and QB_KAFKA_BROKERS are needed\n");
        return 1;
    }
    char err[1024], db[64], dbdsn[4200], sql[512], sqldir[1100], bin[1100], prefix[64];
    snprintf(prefix, sizeof prefix, "bn%d.", (int)getpid());
    setenv("QB_TOPIC_PREFIX", prefix, 1);
    snprintf(db, sizeof db, "qb_bench_notify_%d", (int)getpid());
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
    struct MHD_Daemon *d = NULL;
    if (!st || qb_migrate_apply(st, sqldir, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, sink, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!d) goto out;
    int hport = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    for (int s = 0; s < 10; s++) {
        char q[1024];
        snprintf(q, sizeof q,
                 "INSERT INTO notify.rules (rule_id, owner, condition, symbol, threshold, targets)"
                 " VALUES ('bn-%d', 'bench', 'price_above', 'BN%d', 10000000000,"
                 " '[{\"channel\":\"webhook\",\"address\":\"http://127.0.0.1:%d/hook\"}]')",
                 s, s, hport);
        if (qb_store_exec(st, q, err, sizeof err) != QB_OK) {
            fprintf(stderr, "rules: %s\n", err);
            goto out;
        }
    }
    if (!(p = qb_producer_new(err, sizeof err))) goto out;
    /* Every topic exists before the consumer subscribes. */
    const int64_t t0 = 1704186000LL * QB_NS_PER_SEC;
    send_bar(p, "BNWARM", t0, PX(100));
    {
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        h.event_id = "w";
        h.trace_id = "";
        Qb__V1__Command c = QB__V1__COMMAND__INIT;
        c.header = &h;
        c.target = "nobody";
        qb_producer_send_msg(p, "control", "x", 1, &c.base, "");
        Qb__V1__Signal s = QB__V1__SIGNAL__INIT;
        s.header = &h;
        qb_producer_send_msg(p, "signals", "x", 1, &s.base, "");
        Qb__V1__ExecutionReport x = QB__V1__EXECUTION_REPORT__INIT;
        x.header = &h;
        qb_producer_send_msg(p, "exec.reports", "x", 1, &x.base, "");
        Qb__V1__RiskEvent r = QB__V1__RISK_EVENT__INIT;
        r.header = &h;
        qb_producer_send_msg(p, "risk.events", "x", 1, &r.base, "");
        Qb__V1__BacktestEvent b = QB__V1__BACKTEST_EVENT__INIT;
        b.header = &h;
        qb_producer_send_msg(p, "backtest.events", "x", 1, &b.base, "");
        qb_producer_flush(p, 20000);
    }
    snprintf(bin, sizeof bin, "%s/qb-notify", bindir);
    char group[64], port[16];
    snprintf(group, sizeof group, "bench-notify-%d", (int)getpid());
    int aport = 20000 + (int)(getpid() % 30000);
    snprintf(port, sizeof port, "%d", aport);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        setenv("QB_PG_DSN", dbdsn, 1);
        setenv("QB_SQL_DIR", sqldir, 1);
        setenv("QB_NOTIFY_GROUP", group, 1);
        setenv("QB_ADMIN_PORT", port, 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_LOG_LEVEL", "warn", 1);
        setenv("QB_NOTIFY_WORKERS", "4", 1);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    /* Consuming: the warm-up records are counted. */
    int ready = 0;
    for (int i = 0; i < 600 && !ready; i++) {
        usleep(100 * 1000);
        ready = metric(aport, "qb_notify_events_total") >= 5;
    }
    if (!ready) {
        fprintf(stderr, "qb-notify did not start consuming\n");
        goto out;
    }
    long long base = metric(aport, "qb_notify_events_total");
    const int NSYM = 100, NB = 1000, WANT = 10 * NB / 2;
    int64_t s0 = qb_time_mono_ns();
    for (int k = 0; k < NB; k++)
        for (int s = 0; s < NSYM; s++) {
            char sym[16];
            snprintf(sym, sizeof sym, "BN%d", s);
            send_bar(p, sym, t0 + (k + 1) * 60LL * QB_NS_PER_SEC, (k % 2) ? PX(101) : PX(99));
        }
    qb_producer_flush(p, 30000);
    int64_t s_pub = qb_time_mono_ns();
    long long ev = 0;
    int64_t t_ev = 0;
    for (int i = 0; i < 6000; i++) {
        if (!t_ev) {
            ev = metric(aport, "qb_notify_events_total") - base;
            if (ev >= (long long)NSYM * NB) t_ev = qb_time_mono_ns();
        }
        if (t_ev && atomic_load(&g_posts) >= WANT) break;
        usleep(20 * 1000);
    }
    int64_t t_end = qb_time_mono_ns();
    long posts = atomic_load(&g_posts);
    double ev_s = (double)((t_ev ? t_ev : t_end) - s0) / 1e9;
    double dl_s = (double)(atomic_load(&g_last_ns) - atomic_load(&g_first_ns)) / 1e9;
    printf("qb-notify end to end: %lld bars evaluated in %.2f s = %.0f events/s (publish alone "
           "%.2f s)\n",
           ev, ev_s, (double)ev / ev_s, (double)(s_pub - s0) / 1e9);
    printf("qb-notify delivery: %ld webhook notifications (4 workers) in %.2f s first to last = "
           "%.0f/s; %.2f s from the first bar published = %.0f/s end to end\n",
           posts, dl_s, dl_s > 0 ? posts / dl_s : 0.0, (double)(t_end - s0) / 1e9,
           posts / ((double)(t_end - s0) / 1e9));
    rc = posts >= WANT ? 0 : 1;
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (d) MHD_stop_daemon(d);
    qb_producer_destroy(p);
    qb_store_destroy(st);
    if (admin) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        qb_store_exec(admin, sql, err, sizeof err);
        qb_store_destroy(admin);
    }
    return rc;
}

int main(void) {
    qb_log_init("bench-notify", QB_LOG_WARN);
    bench_eval();
    return bench_service();
}
