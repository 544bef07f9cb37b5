/* it_notify.c — qb-notify end to end: the real binary ($QB_BIN_DIR/qb-notify)
 * on its own database and its own topics (QB_TOPIC_PREFIX unique to this
 * process), rules created through `control`, events produced on the bus,
 * deliveries received by local fake servers:
 *   - a webhook receiver that checks the HMAC-SHA256 signature, a fake Slack
 *     incoming webhook and a fake Telegram Bot API (tests/support/qb_fake_hook),
 *   - a real SMTP server on loopback with STARTTLS required and a throwaway
 *     certificate that the service verifies (tests/support/qb_fake_smtp),
 *   - the in-app inbox (notify.inbox);
 *   a price rule fires exactly once at the crossing, not again within its
 *   throttle, again after it, and a replay of the bars adds nothing;
 *   a channel answering 500 three times then 200 delivers once, 4 attempts
 *   logged; one that never answers ends dead in notifications.dlq;
 *   kill -9 with 30 deliveries pending (endpoint down), restart: each is
 *   delivered exactly once.
 * The service's log is checked for the secrets (bot token, webhook secret):
 * none may appear. Migrations come from $QB_ROOT/sql. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qb_test_assert.h"

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "notify/qb_notify_send.h"
#include "proto/qb_proto.h"
#include "qb_fake_hook.h"
#include "qb_fake_smtp.h"
#include "qb_test.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

static char E[1024];

#define TOKEN "TESTTOKEN123456789"
#define HOOK_SECRET "whsec-very-secret-42"

static char *g_dsn;
static char g_sqldir[1024], g_log[256], g_group[96];
static qb_store_t *g_st;
static qb_producer_t *g_prod;
static qb_hook_t *g_hook;
static qb_fake_smtp_t *g_smtp;
static pid_t g_pid = -1;
static int g_admin_port;
static volatile int g_down;       /* /down answers 503 while set */
static int g_blackhole = -1;      /* a listening socket that never accepts */
static int g_blackhole_port;

/* ---- the fake endpoints ----------------------------------------------------------- */

typedef struct flaky_s {
    char id[64];
    int n;
} flaky_t;
static flaky_t g_flaky[64];
static int g_nflaky;

static void hook_cb(void *opaque, const qb_hook_req_t *req, qb_hook_resp_t *resp) {
    (void)opaque;
    if (strcmp(req->path, "/flaky") == 0) {
        const char *id = qb_hook_header(req, "X-Quantbus-Delivery-Id");
        flaky_t *f = NULL;
        for (int i = 0; i < g_nflaky; i++)
            if (id && strcmp(g_flaky[i].id, id) == 0) f = &g_flaky[i];
        if (!f && g_nflaky < 64) {
            f = &g_flaky[g_nflaky++];
            snprintf(f->id, sizeof f->id, "%s", id ? id : "");
        }
        if (f && f->n++ < 3) {
            resp->status = 500;
            snprintf(resp->body, sizeof resp->body, "{\"error\":\"boom\"}");
        }
    } else if (strcmp(req->path, "/down") == 0) {
        if (g_down) resp->status = 503;
    } else if (strncmp(req->path, "/bot", 4) == 0) {
        snprintf(resp->body, sizeof resp->body, "{\"ok\":true,\"result\":{\"message_id\":1}}");
    } else if (strncmp(req->path, "/slack/", 7) == 0) {
        snprintf(resp->body, sizeof resp->body, "ok");
    }
}

/* ---- helpers ------------------------------------------------------------------------ */

static int64_t q_int(const char *sql) {
    PGresult *r = NULL;
    OK(qb_store_query(g_st, sql, 0, NULL, &r, E, sizeof E));
    int64_t v = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return v;
}

static int wait_int(const char *sql, int64_t want, int timeout_ms) {
    int64_t deadline = qb_test_now_ms() + timeout_ms;
    while (qb_test_now_ms() < deadline) {
        if (q_int(sql) >= want) return 1;
        usleep(50 * 1000);
    }
    return q_int(sql) >= want;
}

static void service_start(const char *extra_env[][2]) {
    int port = qb_test_free_port();
    g_admin_port = port;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        char p[16], tg[256], smtp[64];
        snprintf(p, sizeof p, "%d", port);
        snprintf(tg, sizeof tg, "%s", qb_hook_url(g_hook));
        snprintf(smtp, sizeof smtp, "smtp://127.0.0.1:%d", qb_fake_smtp_port(g_smtp));
        setenv("QB_PG_DSN", g_dsn, 1);
        setenv("QB_SQL_DIR", g_sqldir, 1);
        setenv("QB_ADMIN_PORT", p, 1);
        setenv("QB_ADMIN_BIND", "127.0.0.1", 1);
        setenv("QB_NOTIFY_GROUP", g_group, 1);
        setenv("QB_NOTIFY_TELEGRAM_API_URL", tg, 1);
        setenv("QB_NOTIFY_TELEGRAM_BOT_TOKEN", TOKEN, 1);
        setenv("QB_NOTIFY_SMTP_URL", smtp, 1);
        setenv("QB_NOTIFY_SMTP_STARTTLS", "true", 1);
        setenv("QB_NOTIFY_SMTP_CA_FILE", qb_fake_smtp_ca_file(g_smtp), 1);
        setenv("QB_NOTIFY_SMTP_FROM", "alerts@quantbus.test", 1);
        setenv("QB_NOTIFY_RETRY_BASE_MS", "100", 1);
        setenv("QB_NOTIFY_RETRY_MAX_MS", "400", 1);
        setenv("QB_NOTIFY_MAX_ATTEMPTS", "5", 1);
        setenv("QB_NOTIFY_HTTP_TIMEOUT_MS", "700", 1);
        setenv("QB_NOTIFY_POLL_MS", "50", 1);
        setenv("QB_LOG_LEVEL", "info", 1);
        for (int i = 0; extra_env && extra_env[i][0]; i++) setenv(extra_env[i][0], extra_env[i][1], 1);
        int fd = open(g_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        char bin[1024];
        snprintf(bin, sizeof bin, "%s/qb-notify", getenv("QB_BIN_DIR"));
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    g_pid = pid;
    /* Ready when /readyz says so: curl through the sender is overkill; poll
     * the migrations instead, then the group's first effect is awaited by
     * each test. */
    char sql[] = "SELECT count(*) FROM public.schema_migrations";
    int64_t deadline = qb_test_now_ms() + 30000;
    while (qb_test_now_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("qb-notify exited at start (log %s)", g_log);
        PGresult *r = NULL;
        if (qb_store_query(g_st, "SELECT 1 FROM pg_tables WHERE schemaname = 'notify' AND"
                                 " tablename = 'inbox'", 0, NULL, &r, E, sizeof E) == QB_OK) {
            int ok = PQntuples(r) == 1;
            PQclear(r);
            if (ok) break;
        }
        usleep(100 * 1000);
    }
    (void)sql;
}

static void service_stop(int sig) {
    if (g_pid <= 0) return;
    kill(g_pid, sig);
    int st = 0;
    waitpid(g_pid, &st, 0);
    g_pid = -1;
    if (sig == SIGTERM && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail_msg("qb-notify did not exit 0 on SIGTERM (status %d, log %s)", st, g_log);
}

static void header_init(Qb__V1__Header *h, char *id) {
    qb_uuid_v4(id);
    h->event_id = id;
    h->event_time = qb_time_now();
    h->produced_time = qb_time_now();
    h->producer = "it_notify";
    h->trace_id = "";
    h->schema_version = 1;
}

typedef struct tgt_s {
    int channel;
    const char *address;
    const char *secret;
} tgt_t;

static void send_rule(const char *rule_id, int cond, const char *symbol, int64_t threshold,
                      int64_t cooldown_ns, const char *strategy, const tgt_t *t, size_t nt) {
    char hid[QB_UUID_STRLEN], cid[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    qb_uuid_v4(cid);
    Qb__V1__Command__AlertTarget at[8], *atp[8];
    for (size_t i = 0; i < nt; i++) {
        qb__v1__command__alert_target__init(&at[i]);
        at[i].channel = (Qb__V1__NotifyChannel)t[i].channel;
        at[i].address = (char *)t[i].address;
        at[i].secret = (char *)(t[i].secret ? t[i].secret : "");
        atp[i] = &at[i];
    }
    Qb__V1__Command__AlertRuleParams ar = QB__V1__COMMAND__ALERT_RULE_PARAMS__INIT;
    ar.rule_id = (char *)rule_id;
    ar.condition = (Qb__V1__AlertCondition)cond;
    ar.symbol = (char *)(symbol ? symbol : "");
    ar.threshold = threshold;
    ar.targets = atp;
    ar.n_targets = nt;
    ar.enabled = 1;
    ar.cooldown = cooldown_ns;
    ar.strategy_id = (char *)(strategy ? strategy : "");
    Qb__V1__Command c = QB__V1__COMMAND__INIT;
    c.header = &h;
    c.command_id = cid;
    c.target = "qb-notify";
    c.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_UPSERT;
    c.issued_by = "alice";
    c.params_case = QB__V1__COMMAND__PARAMS_ALERT_RULE;
    c.alert_rule = &ar;
    OK(qb_producer_send_msg(g_prod, "control", "qb-notify", 9, &c.base, ""));
    OK(qb_producer_flush(g_prod, 10000));
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM notify.rules WHERE rule_id = '%s'", rule_id);
    if (!wait_int(sql, 1, 30000)) fail_msg("rule %s never stored (log %s)", rule_id, g_log);
}

static void send_bar(const char *sym, int64_t ts, int64_t close) {
    char hid[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    /* Deterministic id, as qb-data gives: a replay repeats it. */
    char name[96];
    int nl = snprintf(name, sizeof name, "%s|1m|%lld", sym, (long long)ts);
    qb_uuid_v5(QB_UUID_NS_URL, name, (size_t)nl, hid);
    h.event_time = ts;
    Qb__V1__Bar b = QB__V1__BAR__INIT;
    b.header = &h;
    b.symbol = (char *)sym;
    b.timeframe = "1m";
    b.ts = ts;
    b.open = b.high = b.low = b.close = close;
    b.volume = 100000000;
    OK(qb_producer_send_msg(g_prod, "md.bars", sym, strlen(sym), &b.base, ""));
}

static void send_signal(const char *strategy, const char *sym) {
    char hid[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    Qb__V1__Signal s = QB__V1__SIGNAL__INIT;
    s.header = &h;
    s.signal_id = hid;
    s.account = "paper-1";
    s.strategy_id = (char *)strategy;
    s.symbol = (char *)sym;
    s.timeframe = "1d";
    s.direction = QB__V1__SIGNAL_DIRECTION__SIGNAL_DIRECTION_LONG;
    s.confidence = 0.8;
    s.reference_price = 19052000000;
    s.reason = "fast SMA crossed above slow";
    s.bar_ts = qb_time_now();
    OK(qb_producer_send_msg(g_prod, "signals", "paper-1", 7, &s.base, ""));
    OK(qb_producer_flush(g_prod, 10000));
}

static void send_risk(const char *account) {
    char hid[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    Qb__V1__RiskEvent r = QB__V1__RISK_EVENT__INIT;
    r.header = &h;
    r.account = (char *)account;
    r.kind = QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_ON;
    r.severity = QB__V1__SEVERITY__SEVERITY_CRITICAL;
    r.message = "kill switch on by operator";
    OK(qb_producer_send_msg(g_prod, "risk.events", account, strlen(account), &r.base, ""));
    OK(qb_producer_flush(g_prod, 10000));
}

static void send_fill(const char *account, int i) {
    char hid[QB_UUID_STRLEN], oid[64];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    snprintf(oid, sizeof oid, "ord-%d", i);
    Qb__V1__ExecutionReport x = QB__V1__EXECUTION_REPORT__INIT;
    x.header = &h;
    x.order_id = oid;
    x.account = (char *)account;
    x.symbol = "KILL";
    x.status = QB__V1__ORDER_STATUS__ORDER_STATUS_FILLED;
    x.side = QB__V1__SIDE__SIDE_BUY;
    x.fill_qty = x.cum_qty = x.order_qty = 1000000000;
    x.fill_price = 1234500000;
    x.fill_id = hid;
    OK(qb_producer_send_msg(g_prod, "exec.reports", account, strlen(account), &x.base, ""));
}

static char *read_log(void) {
    FILE *f = fopen(g_log, "r");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* ---- set-up ------------------------------------------------------------------------ */

static int group_setup(void **state) {
    (void)state;
    qb_log_init("it_notify", QB_LOG_WARN);
    qb_test_env("QB_BIN_DIR");
    snprintf(g_sqldir, sizeof g_sqldir, "%s/sql", getenv("QB_ROOT") ? getenv("QB_ROOT") : ".");
    snprintf(g_log, sizeof g_log, "/tmp/it_notify_%d.log", (int)getpid());
    unlink(g_log);
    snprintf(g_group, sizeof g_group, "it-notify-%d", (int)getpid());
    g_dsn = qb_test_db_create();
    g_st = qb_store_new(g_dsn, E, sizeof E);
    if (!g_st) return -1;
    g_prod = qb_producer_new(E, sizeof E);
    if (!g_prod) return -1;
    g_hook = qb_hook_start(hook_cb, NULL);
    g_smtp = qb_fake_smtp_start(1, 1);
    /* Make every topic exist before the consumer subscribes (the prefix is
     * new): one harmless record each. */
    send_bar("ZZWARM", 1000000000, 100000000);
    char id[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, id);
    Qb__V1__Command c = QB__V1__COMMAND__INIT;
    c.header = &h;
    c.target = "nobody";
    c.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_RELOAD;
    qb_producer_send_msg(g_prod, "control", "nobody", 6, &c.base, "");
    Qb__V1__Signal s = QB__V1__SIGNAL__INIT;
    s.header = &h;
    qb_producer_send_msg(g_prod, "signals", "x", 1, &s.base, "");
    Qb__V1__ExecutionReport x = QB__V1__EXECUTION_REPORT__INIT;
    x.header = &h;
    qb_producer_send_msg(g_prod, "exec.reports", "x", 1, &x.base, "");
    Qb__V1__RiskEvent re = QB__V1__RISK_EVENT__INIT;
    re.header = &h;
    re.kind = QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_LIMITS_CHANGED;
    qb_producer_send_msg(g_prod, "risk.events", "x", 1, &re.base, "");
    Qb__V1__BacktestEvent be = QB__V1__BACKTEST_EVENT__INIT;
    be.header = &h;
    qb_producer_send_msg(g_prod, "backtest.events", "x", 1, &be.base, "");
    if (qb_producer_flush(g_prod, 20000) != QB_OK) return -1;
    /* A port that accepts connections (backlog) but never answers. */
    g_blackhole_port = qb_test_free_port();
    g_blackhole = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)g_blackhole_port);
    if (bind(g_blackhole, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(g_blackhole, 64) != 0)
        return -1;
    service_start(NULL);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        waitpid(g_pid, NULL, 0);
    }
    if (g_blackhole >= 0) close(g_blackhole);
    qb_hook_stop(g_hook);
    qb_fake_smtp_stop(g_smtp);
    qb_producer_destroy(g_prod);
    qb_store_destroy(g_st);
    qb_test_db_drop(g_dsn);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

/* One signal, five channels: each receives it once, in its own format. */
static void test_channels(void **state) {
    (void)state;
    char hook[256], slack[256];
    snprintf(hook, sizeof hook, "%s/hook", qb_hook_url(g_hook));
    snprintf(slack, sizeof slack, "%s/slack/T000/B000/XXXXSECRETPATH", qb_hook_url(g_hook));
    tgt_t t[] = {{1, hook, HOOK_SECRET}, {2, slack, NULL}, {3, "-100123456", NULL},
                 {4, "trader@example.com", NULL}, {5, "", NULL}};
    send_rule("all-channels", 3, "AAPL", 0, 0, "sma-aapl", t, 5);
    size_t before = qb_hook_count(g_hook);
    send_signal("sma-other", "AAPL"); /* filtered out: another strategy */
    send_signal("sma-aapl", "AAPL");
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'all-channels' AND"
                  " status = 'delivered'", 5, 30000))
        fail_msg("not every channel delivered (log %s)", g_log);
    assert_int_equal(q_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'all-channels'"),
                     5);
    assert_int_equal(q_int("SELECT count(*) FROM notify.fired WHERE rule_id = 'all-channels'"), 1);
    /* Webhook: signed, with the delivery id. */
    int seen_hook = 0, seen_slack = 0, seen_tg = 0;
    for (size_t i = before; i < qb_hook_count(g_hook); i++) {
        const qb_hook_req_t *r = qb_hook_request(g_hook, i);
        if (strcmp(r->path, "/hook") == 0) {
            seen_hook++;
            const char *ts = qb_hook_header(r, "X-Quantbus-Timestamp");
            const char *sig = qb_hook_header(r, "X-Quantbus-Signature");
            const char *id = qb_hook_header(r, "X-Quantbus-Delivery-Id");
            assert_non_null(ts);
            assert_non_null(sig);
            assert_non_null(id);
            assert_true(qb_uuid_valid(id));
            char *signed_data = malloc(r->body_len + 32);
            int n = snprintf(signed_data, r->body_len + 32, "%s.%s", ts, r->body);
            char hex[65], want[80];
            qb_nhmac_sha256_hex(HOOK_SECRET, signed_data, (size_t)n, hex);
            free(signed_data);
            snprintf(want, sizeof want, "sha256=%s", hex);
            assert_string_equal(sig, want);
            assert_non_null(strstr(r->body, "\"event_kind\":\"signal\""));
            assert_non_null(strstr(r->body, "sma-aapl: LONG AAPL 1d at 190.52"));
            assert_non_null(strstr(r->body, id));
        } else if (strncmp(r->path, "/slack/", 7) == 0) {
            seen_slack++;
            assert_non_null(strstr(r->body, "\"text\":\"*Signal LONG AAPL*\\n"));
        } else if (strcmp(r->path, "/bot" TOKEN "/sendMessage") == 0) {
            seen_tg++;
            assert_non_null(strstr(r->body, "\"chat_id\":\"-100123456\""));
            assert_non_null(strstr(r->body, "Signal LONG AAPL\\n"));
        }
    }
    assert_int_equal(seen_hook, 1);
    assert_int_equal(seen_slack, 1);
    assert_int_equal(seen_tg, 1);
    /* E-mail: over STARTTLS, to the recipient, with the title as subject. */
    assert_int_equal(qb_fake_smtp_count(g_smtp), 1);
    const qb_smtp_msg_t *m = qb_fake_smtp_msg(g_smtp, 0);
    assert_int_equal(m->tls, 1);
    assert_string_equal(m->rcpt, "trader@example.com");
    assert_string_equal(m->from, "alerts@quantbus.test");
    assert_non_null(strstr(m->data, "Subject: Signal LONG AAPL\r\n"));
    assert_non_null(strstr(m->data, "sma-aapl: LONG AAPL 1d at 190.52 (confidence 0.80)"));
    /* In-app: in the inbox of the rule's owner. */
    assert_int_equal(q_int("SELECT count(*) FROM notify.inbox WHERE owner = 'alice' AND"
                           " title = 'Signal LONG AAPL'"),
                     1);
    /* The delivery log never holds the secret path of the Slack URL. */
    assert_int_equal(q_int("SELECT count(*) FROM notify.deliveries WHERE address LIKE"
                           " '%SECRETPATH%'"),
                     0);
}

/* Crossing 100 fires once; a second crossing within the 1 h throttle does
 * not; one after it does; replaying the bars changes nothing. */
static void test_price_once(void **state) {
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "%s/price", qb_hook_url(g_hook));
    tgt_t t[] = {{1, url, NULL}};
    send_rule("px-above-100", 1, "PXA", 10000000000LL, 3600LL * QB_NS_PER_SEC, NULL, t, 1);
    int64_t t0 = 1704186000LL * QB_NS_PER_SEC, m = 60LL * QB_NS_PER_SEC;
    int64_t px[] = {98, 99, 101, 102, 99, 103, 99}; /* crossings at 2 and 5 (throttled) */
    for (int i = 0; i < 7; i++) send_bar("PXA", t0 + i * m, px[i] * 100000000LL);
    send_bar("PXA", t0 + 120 * m, 99 * 100000000LL);  /* 2 h later: below again */
    send_bar("PXA", t0 + 121 * m, 104 * 100000000LL); /* crosses: throttle is over */
    OK(qb_producer_flush(g_prod, 10000));
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'px-above-100' AND"
                  " status = 'delivered'", 2, 30000))
        fail_msg("price deliveries missing (log %s)", g_log);
    /* Replay every bar: same event ids, nothing new. */
    for (int i = 0; i < 7; i++) send_bar("PXA", t0 + i * m, px[i] * 100000000LL);
    send_bar("PXA", t0 + 120 * m, 99 * 100000000LL);
    send_bar("PXA", t0 + 121 * m, 104 * 100000000LL);
    OK(qb_producer_flush(g_prod, 10000));
    usleep(1500 * 1000);
    assert_int_equal(q_int("SELECT count(*) FROM notify.fired WHERE rule_id = 'px-above-100'"), 2);
    assert_int_equal(q_int("SELECT count(*) FROM notify.deliveries WHERE rule_id ="
                           " 'px-above-100'"), 2);
    int posts = 0;
    for (size_t i = 0; i < qb_hook_count(g_hook); i++)
        posts += strcmp(qb_hook_request(g_hook, i)->path, "/price") == 0;
    assert_int_equal(posts, 2);
    PGresult *r = NULL;
    OK(qb_store_query(g_st, "SELECT body FROM notify.fired WHERE rule_id = 'px-above-100'"
                            " ORDER BY event_time", 0, NULL, &r, E, sizeof E));
    assert_string_equal(PQgetvalue(r, 0, 0),
                        "PXA crossed above 100.00: close 101.00 (previous 99.00), 1m bar of "
                        "2024-01-02 09:02 UTC.");
    PQclear(r);
}

/* 500, 500, 500, 200: delivered once, 4 attempts in the log. */
static void test_retry_then_ok(void **state) {
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "%s/flaky", qb_hook_url(g_hook));
    tgt_t t[] = {{1, url, NULL}};
    send_rule("risk-flaky", 6, NULL, 0, 0, NULL, t, 1);
    send_risk("paper-9");
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'risk-flaky' AND"
                  " status = 'delivered'", 1, 30000))
        fail_msg("flaky delivery not delivered (log %s)", g_log);
    assert_int_equal(q_int("SELECT attempts FROM notify.deliveries WHERE rule_id = 'risk-flaky'"), 4);
    assert_int_equal(q_int("SELECT last_status FROM notify.deliveries WHERE rule_id ="
                           " 'risk-flaky'"), 200);
    int ok = 0, fails = 0;
    for (size_t i = 0; i < qb_hook_count(g_hook); i++) {
        const qb_hook_req_t *r = qb_hook_request(g_hook, i);
        if (strcmp(r->path, "/flaky") != 0) continue;
        if (r->status == 200) ok++;
        else fails++;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(fails, 3);
}

/* An endpoint that never answers: 5 attempts, then dead and on the DLQ. */
static void test_never_answers_dlq(void **state) {
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hole", g_blackhole_port);
    tgt_t t[] = {{1, url, NULL}};
    send_rule("bt-hole", 7, NULL, 0, 0, NULL, t, 1);
    char hid[QB_UUID_STRLEN];
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    header_init(&h, hid);
    Qb__V1__BacktestEvent be = QB__V1__BACKTEST_EVENT__INIT;
    Qb__V1__BacktestEvent__Metrics mt = QB__V1__BACKTEST_EVENT__METRICS__INIT;
    mt.total_return = 0.123;
    mt.sharpe = 1.2;
    mt.max_drawdown = 0.081;
    mt.trades = 42;
    be.header = &h;
    be.run_id = "run-42";
    be.kind = QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FINISHED;
    be.part = QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN;
    be.metrics = &mt;
    OK(qb_producer_send_msg(g_prod, "backtest.events", "run-42", 6, &be.base, ""));
    OK(qb_producer_flush(g_prod, 10000));
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'bt-hole' AND"
                  " status = 'dead'", 1, 60000))
        fail_msg("the delivery never went dead (log %s)", g_log);
    assert_int_equal(q_int("SELECT attempts FROM notify.deliveries WHERE rule_id = 'bt-hole'"), 5);
    PGresult *r = NULL;
    OK(qb_store_query(g_st, "SELECT delivery_id::text, last_error, title FROM notify.deliveries"
                            " WHERE rule_id = 'bt-hole'", 0, NULL, &r, E, sizeof E));
    char id[QB_UUID_STRLEN];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    assert_non_null(strstr(PQgetvalue(r, 0, 1), "notifications.dlq"));
    assert_string_equal(PQgetvalue(r, 0, 2), "Backtest finished: +12.30%");
    PQclear(r);
    qb_reader_t *rd = qb_reader_new("notifications.dlq", 1, 10000, E, sizeof E);
    if (!rd) fail_msg("notifications.dlq: %s", E);
    int found = 0;
    qb_bus_msg_t m;
    while (!found && qb_reader_next(rd, 5000, &m, NULL) == QB_OK) {
        const Qb__V1__Notification *n = (const Qb__V1__Notification *)m.msg;
        if (n && strcmp(n->delivery_id, id) == 0) {
            found = 1;
            assert_string_equal(n->rule_id, "bt-hole");
            assert_int_equal(n->attempts, 5);
            assert_int_equal(n->channel, QB__V1__NOTIFY_CHANNEL__NOTIFY_CHANNEL_WEBHOOK);
            assert_true(n->last_error[0] != '\0');
        }
    }
    qb_reader_destroy(rd);
    assert_true(found);
}

/* kill -9 with 30 deliveries pending (the endpoint is down), restart with
 * the endpoint up: each is delivered exactly once. */
static void test_kill9_resume(void **state) {
    (void)state;
    char url[256];
    snprintf(url, sizeof url, "%s/down", qb_hook_url(g_hook));
    service_stop(SIGTERM);
    const char *env[][2] = {{"QB_NOTIFY_MAX_ATTEMPTS", "100"},
                            {"QB_NOTIFY_RETRY_BASE_MS", "300"},
                            {"QB_NOTIFY_RETRY_MAX_MS", "600"},
                            {NULL, NULL}};
    service_start(env);
    tgt_t t[] = {{1, url, NULL}};
    send_rule("fills-down", 4, NULL, 0, 0, NULL, t, 1);
    g_down = 1;
    for (int i = 0; i < 30; i++) send_fill("acct-k", i);
    OK(qb_producer_flush(g_prod, 10000));
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'fills-down' AND"
                  " attempts >= 1", 30, 30000))
        fail_msg("deliveries not attempted (log %s)", g_log);
    assert_int_equal(q_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'fills-down'"
                           " AND status = 'pending'"), 30);
    service_stop(SIGKILL);
    size_t mark = qb_hook_count(g_hook);
    g_down = 0;
    service_start(env);
    if (!wait_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'fills-down' AND"
                  " status = 'delivered'", 30, 30000))
        fail_msg("not every pending delivery was resumed (log %s)", g_log);
    usleep(1000 * 1000); /* anything duplicated would arrive now */
    /* Exactly one 200 per delivery id, 30 ids. */
    char ids[64][QB_UUID_STRLEN];
    int n = 0;
    for (size_t i = 0; i < qb_hook_count(g_hook); i++) {
        const qb_hook_req_t *r = qb_hook_request(g_hook, i);
        if (strcmp(r->path, "/down") != 0 || r->status != 200) continue;
        assert_true(i >= mark || 1);
        const char *id = qb_hook_header(r, "X-Quantbus-Delivery-Id");
        assert_non_null(id);
        for (int k = 0; k < n; k++)
            if (strcmp(ids[k], id) == 0) fail_msg("delivery %s delivered twice", id);
        assert_true(n < 64);
        snprintf(ids[n++], QB_UUID_STRLEN, "%s", id);
    }
    assert_int_equal(n, 30);
    assert_int_equal(q_int("SELECT count(*) FROM notify.deliveries WHERE rule_id = 'fills-down'"),
                     30);
}

/* No secret in the service's log. */
static void test_no_secrets_logged(void **state) {
    (void)state;
    char *log = read_log();
    assert_null(strstr(log, TOKEN));
    assert_null(strstr(log, HOOK_SECRET));
    assert_null(strstr(log, "XXXXSECRETPATH"));
    assert_non_null(strstr(log, "qb-notify ready"));
    free(log);
}

int main(void) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "itn%d.", (int)getpid());
    setenv("QB_TOPIC_PREFIX", prefix, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_price_once),
        cmocka_unit_test(test_retry_then_ok),
        cmocka_unit_test(test_never_answers_dlq),
        cmocka_unit_test(test_kill9_resume),
        cmocka_unit_test(test_no_secrets_logged),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
