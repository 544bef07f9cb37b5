/* it_bus_group.c — at-least-once delivery through a consumer group whose
 * members are separate processes, one of them SIGKILLed mid-stream.
 *
 * Set-up: a PRIVATE qb-bus ($QB_BIN_DIR/qb-bus, own bootstrap file) with
 * QB_BUS_EXTRA_TOPICS=<fresh topic>:12 — the harness's bus is shared and
 * its mock cluster auto-creates unknown topics with 4 partitions only.
 * Members are this binary re-executed with "--member TOPIC GROUP FILE": a
 * qb_consumer whose handler appends "partition offset event_id\n" to FILE
 * with one unbuffered write(2) BEFORE returning QB_OK — that is "handled"
 * (the line survives SIGKILL: it is in the kernel).
 *
 * Scenario: members A and B start; 100,000 Bars (random UUID event ids,
 * 1,000 symbols as keys) are produced through qb_producer at ~20k msg/s;
 * each handled message costs the member ~50 us (think DB write). An unpaced
 * burst of 10,000 (30% -> 40%) puts the members behind, and then — once A has
 * provably committed an offset (the group's committed offset of a partition
 * is one past an offset in A's file) — A is killed with SIGKILL. At that moment the group's committed
 * offsets are read (rd_kafka_committed from a separate handle) and checked:
 * every offset below each committed offset is in the handled files ("none
 * committed-but-unhandled"). A is restarted; production finishes.
 *
 * Asserted: the set of handled event ids equals the set produced (every
 * message handled at least once; duplicates are allowed and reported);
 * nothing handled that was not produced; the restarted member took part;
 * members stop cleanly on SIGTERM (exit 0) and then the group's committed
 * offsets equal the end of every partition. Bounded: 240 s overall.
 * The work dir (handled files, member and bus logs) is removed on success,
 * kept on failure, and always kept with QB_TEST_KEEP=1. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <uuid/uuid.h>

#include "bus/qb_bus.h"
#include "core/qb_log.h"
#include "qb/v1/market.pb-c.h"
#include "qb_test.h"

#define N_MSGS 100000
#define N_PARTS 12
#define N_SYMBOLS 1000
#define RATE 20000           /* msg/s */
#define KILL_AT (N_MSGS * 4 / 10)
#define BURST 10000
#define HOLD_AT (N_MSGS * 6 / 10) /* stop producing here until A is killed */
#define HANDLER_DELAY_US "50"     /* each handled message costs ~this (a DB write) */
#define DEADLINE_MS 240000
#define SESSION_TIMEOUT "6000"

static char E[1024];

/* ======================================================================= *
 * member process
 * ======================================================================= */

static volatile sig_atomic_t member_running = 1;
static void member_on_term(int sig) {
    (void)sig;
    member_running = 0;
}

static int member_delay_us;

static qb_err_t member_handler(const qb_bus_msg_t *m, void *opaque, char *errstr,
                               size_t errstr_size) {
    int fd = *(int *)opaque;
    if (member_delay_us > 0) usleep((useconds_t)member_delay_us);
    const Qb__V1__Bar *b = (const Qb__V1__Bar *)m->msg;
    char line[128];
    int n = snprintf(line, sizeof(line), "%d %lld %s\n", (int)m->partition,
                     (long long)m->offset,
                     b->header && b->header->event_id ? b->header->event_id : "-");
    if (write(fd, line, (size_t)n) != n) { /* unbuffered: in the kernel now */
        snprintf(errstr, errstr_size, "write: %s", strerror(errno));
        return QB_ERR_IO; /* retriable: the message comes again */
    }
    return QB_OK;
}

static int member_main(const char *topic, const char *group, const char *file) {
    qb_log_init("it_bus_group-member", QB_LOG_WARN);
    const char *lv = getenv("QB_LOG_LEVEL");
    if (lv && qb_log_level_parse(lv) >= 0)
        qb_log_set_level((qb_log_level_t)qb_log_level_parse(lv));
    const char *d = getenv("IT_HANDLER_DELAY_US");
    member_delay_us = d ? atoi(d) : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = member_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "member: %s: %s\n", file, strerror(errno));
        return 2;
    }
    if (!qb_topics_add(topic, "qb.v1.Bar", "symbol", N_PARTS, E, sizeof(E))) {
        fprintf(stderr, "member: %s\n", E);
        return 2;
    }
    const char *topics[] = {topic};
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, member_handler, &fd, E, sizeof(E));
    if (!c) {
        fprintf(stderr, "member: qb_consumer_new: %s\n", E);
        return 2;
    }
    qb_err_t err = qb_consumer_run(c, &member_running);
    qb_consumer_destroy(c);
    close(fd);
    fprintf(stderr, "member %s: stopped: %s\n", file, qb_err_name(err));
    return err ? 1 : 0;
}

/* ======================================================================= *
 * parent: processes
 * ======================================================================= */

static char dir[256];
static pid_t children[8]; /* killed by main() if a failure left them running */
static int nchildren;

static pid_t spawn(const char *const argv[], const char *log, const char *const env[]) {
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a killed test */
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0) dup2(nul, 0);
        for (; env && env[0]; env += 2) setenv(env[0], env[1], 1);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (nchildren < (int)(sizeof(children) / sizeof(children[0]))) children[nchildren++] = pid;
    return pid;
}

/* Wait up to ms for pid; returns its wait status, or -1 on time-out. */
static int wait_pid(pid_t pid, int ms) {
    int64_t deadline = qb_test_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0) return -2;
        if (qb_test_now_ms() >= deadline) return -1;
        usleep(20 * 1000);
    }
}

static pid_t start_member(const char *topic, const char *group, const char *file,
                          const char *log) {
    /* /proc/self/exe (in the child: the same executable) works even when
     * the file was rebuilt meanwhile. */
    const char *argv[] = {"/proc/self/exe", "--member", topic, group, file, NULL};
    const char *env[] = {"QB_KAFKA_SESSION_TIMEOUT_MS", SESSION_TIMEOUT,
                         "IT_HANDLER_DELAY_US", HANDLER_DELAY_US, NULL};
    return spawn(argv, log, env);
}

/* ======================================================================= *
 * parent: reading the handled files incrementally
 * ======================================================================= */

typedef struct idmap_s { /* open addressing: uuid -> produced index */
    uint8_t (*keys)[16];
    int32_t *idx;
    size_t cap;
} idmap_t;

static uint64_t id_hash(const uint8_t *k) {
    uint64_t h;
    memcpy(&h, k, 8);
    return h * 0x9e3779b97f4a7c15ULL;
}

static void idmap_put(idmap_t *m, const uint8_t *k, int32_t v) {
    for (size_t i = id_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->idx[i] < 0) {
            memcpy(m->keys[i], k, 16);
            m->idx[i] = v;
            return;
        }
        if (memcmp(m->keys[i], k, 16) == 0) fail_msg("uuid collision");
    }
}

static int32_t idmap_get(const idmap_t *m, const uint8_t *k) {
    for (size_t i = id_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->idx[i] < 0) return -1;
        if (memcmp(m->keys[i], k, 16) == 0) return m->idx[i];
    }
}

typedef struct handled_s {
    idmap_t ids;
    uint16_t *count;              /* per produced index */
    size_t unique, lines, unknown;
    uint8_t *bits[N_PARTS];       /* handled offsets, any member */
    uint8_t *a_bits[N_PARTS];     /* handled by the first A */
} handled_t;

#define MAX_OFF (N_MSGS + 1)
static int bit_get(const uint8_t *b, int64_t o) {
    return o >= 0 && o < MAX_OFF && (b[o >> 3] >> (o & 7)) & 1;
}
static void bit_set(uint8_t *b, int64_t o) {
    if (o >= 0 && o < MAX_OFF) b[o >> 3] |= (uint8_t)(1 << (o & 7));
}

typedef struct reader_s {
    const char *path;
    int fd;
    char buf[8192];
    size_t have;
    int is_a;    /* the member that gets killed */
    size_t lines;
} reader_t;

static void reader_line(handled_t *h, reader_t *r, char *line) {
    int part;
    long long off;
    char id[64];
    if (sscanf(line, "%d %lld %63s", &part, &off, id) != 3 || part < 0 || part >= N_PARTS)
        fail_msg("%s: bad line \"%s\"", r->path, line);
    uuid_t u;
    h->lines++;
    r->lines++;
    bit_set(h->bits[part], off);
    if (r->is_a) bit_set(h->a_bits[part], off);
    int32_t i = uuid_parse(id, u) == 0 ? idmap_get(&h->ids, u) : -1;
    if (i < 0) {
        h->unknown++;
        return;
    }
    if (h->count[i]++ == 0) h->unique++;
}

/* Parse every complete line appended since the last call. */
static void reader_poll(handled_t *h, reader_t *r) {
    if (r->fd < 0) r->fd = open(r->path, O_RDONLY);
    if (r->fd < 0) return; /* not created yet */
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->have, sizeof(r->buf) - 1 - r->have);
        if (n <= 0) break;
        r->have += (size_t)n;
        r->buf[r->have] = '\0';
        char *start = r->buf, *nl;
        while ((nl = memchr(start, '\n', r->have - (size_t)(start - r->buf)))) {
            *nl = '\0';
            reader_line(h, r, start);
            start = nl + 1;
        }
        r->have -= (size_t)(start - r->buf);
        memmove(r->buf, start, r->have);
    }
}

/* ======================================================================= *
 * parent: Kafka views
 * ======================================================================= */

static rd_kafka_t *raw_consumer(const char *brokers, const char *group) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) fail_msg("rd_kafka_new: %s", err);
    return rk;
}

/* The group's committed offsets (-1 where none). */
static void read_committed(rd_kafka_t *rk, const char *topic, int64_t out[N_PARTS]) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(N_PARTS);
    for (int p = 0; p < N_PARTS; p++) rd_kafka_topic_partition_list_add(l, topic, p);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 10000);
    if (err) fail_msg("rd_kafka_committed: %s", rd_kafka_err2str(err));
    for (int p = 0; p < N_PARTS; p++) {
        if (l->elems[p].err)
            fail_msg("committed offset of [%d]: %s", p, rd_kafka_err2str(l->elems[p].err));
        out[p] = l->elems[p].offset >= 0 ? l->elems[p].offset : -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* ======================================================================= *
 * the test
 * ======================================================================= */

static void test_group_kill_restart_at_least_once(void **state) {
    (void)state;
    char topic[128], group[128], bootfile[300], buslog[300], a1[300], a2[300], b1[300];
    char alog[300], a2log[300], blog[300], extra[160];
    int64_t t_start = qb_test_now_ms(), deadline = t_start + DEADLINE_MS;

    snprintf(dir, sizeof(dir), "/tmp/it_bus_group.XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp: %s", strerror(errno));
    qb_test_unique(topic, sizeof(topic), "it-group");
    qb_test_unique(group, sizeof(group), "it-group-g");
    snprintf(bootfile, sizeof(bootfile), "%s/bus.bootstrap", dir);
    snprintf(buslog, sizeof(buslog), "%s/bus.log", dir);
    snprintf(a1, sizeof(a1), "%s/handled-a1.txt", dir);
    snprintf(a2, sizeof(a2), "%s/handled-a2.txt", dir);
    snprintf(b1, sizeof(b1), "%s/handled-b.txt", dir);
    snprintf(alog, sizeof(alog), "%s/member-a1.log", dir);
    snprintf(a2log, sizeof(a2log), "%s/member-a2.log", dir);
    snprintf(blog, sizeof(blog), "%s/member-b.log", dir);
    snprintf(extra, sizeof(extra), "%s:%d", topic, N_PARTS);
    print_message("work dir %s (kept on failure)\n", dir);

    /* ---- private qb-bus -------------------------------------------------- */
    char busbin[4096];
    snprintf(busbin, sizeof(busbin), "%s/qb-bus", qb_test_env("QB_BIN_DIR"));
    const char *bargv[] = {busbin, NULL};
    const char *benv[] = {"QB_BUS_BOOTSTRAP_FILE", bootfile, "QB_BUS_EXTRA_TOPICS", extra,
                          "QB_LOG_LEVEL", "warn", NULL};
    pid_t bus = spawn(bargv, buslog, benv);
    char brokers[512] = "";
    for (int64_t t = qb_test_now_ms() + 20000; !brokers[0] && qb_test_now_ms() < t;) {
        FILE *f = fopen(bootfile, "r");
        if (f) {
            if (!fgets(brokers, sizeof(brokers), f)) brokers[0] = '\0';
            fclose(f);
            brokers[strcspn(brokers, "\n")] = '\0';
        }
        if (!brokers[0]) usleep(50 * 1000);
    }
    if (!brokers[0]) fail_msg("private qb-bus did not write %s in 20 s (log %s)", bootfile, buslog);
    setenv("QB_KAFKA_BROKERS", brokers, 1);
    assert_non_null(qb_topics_add(topic, "qb.v1.Bar", "symbol", N_PARTS, E, sizeof(E)));

    /* ---- the produced set ------------------------------------------------- */
    handled_t h;
    memset(&h, 0, sizeof(h));
    h.ids.cap = 1 << 18;
    h.ids.keys = calloc(h.ids.cap, 16);
    h.ids.idx = malloc(h.ids.cap * sizeof(int32_t));
    h.count = calloc(N_MSGS, sizeof(uint16_t));
    assert_non_null(h.ids.keys);
    assert_non_null(h.ids.idx);
    assert_non_null(h.count);
    memset(h.ids.idx, 0xff, h.ids.cap * sizeof(int32_t));
    for (int p = 0; p < N_PARTS; p++) {
        h.bits[p] = calloc(MAX_OFF / 8 + 1, 1);
        h.a_bits[p] = calloc(MAX_OFF / 8 + 1, 1);
        assert_non_null(h.bits[p]);
        assert_non_null(h.a_bits[p]);
    }
    char (*ids)[37] = malloc((size_t)N_MSGS * 37);
    assert_non_null(ids);
    for (int i = 0; i < N_MSGS; i++) {
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, ids[i]);
        idmap_put(&h.ids, u, i);
    }

    /* ---- members A and B -------------------------------------------------- */
    pid_t a = start_member(topic, group, a1, alog);
    pid_t b = start_member(topic, group, b1, blog);
    reader_t ra = {.path = a1, .fd = -1, .is_a = 1};
    reader_t rb = {.path = b1, .fd = -1};
    reader_t ra2 = {.path = a2, .fd = -1};
    rd_kafka_t *view = raw_consumer(brokers, group);

    qb_producer_t *prod = qb_producer_new(E, sizeof(E));
    if (!prod) fail_msg("qb_producer_new: %s", E);
    Qb__V1__Header hd = QB__V1__HEADER__INIT;
    Qb__V1__Bar bar = QB__V1__BAR__INIT;
    hd.producer = "it_bus_group";
    hd.schema_version = 1;
    bar.header = &hd;
    bar.timeframe = "1m";
    bar.source = "test";

    int produced = 0, killed = 0, burst_done = 0;
    int64_t committed_at_kill[N_PARTS];
    size_t handled_at_kill = 0;
    int64_t t_prod = qb_test_now_ms(), t_kill = 0;
    while (produced < N_MSGS) {
        if (qb_test_now_ms() > deadline)
            fail_msg("time-out producing: %d produced, killed=%d", produced, killed);
        /* Hold production at HOLD_AT until the kill happened. */
        if (!killed && produced >= HOLD_AT) {
            usleep(50 * 1000);
        } else {
            /* 5,000 to start; before KILL_AT an unpaced burst so that the
             * members are behind (a backlog) when A is killed; else 1,000
             * per paced slice. */
            int burst = produced < 5000 ? 5000 : 1000;
            if (!killed && !burst_done && produced >= KILL_AT - BURST) burst = BURST;
            for (int k = 0; k < burst && produced < N_MSGS; k++, produced++) {
                char sym[16];
                snprintf(sym, sizeof(sym), "S%04d", (int)((unsigned)produced * 7919u % N_SYMBOLS));
                hd.event_id = ids[produced];
                hd.event_time = hd.produced_time = (int64_t)time(NULL) * 1000000000LL;
                bar.symbol = sym;
                bar.ts = hd.event_time;
                bar.open = bar.high = bar.low = bar.close = 10000000000LL + produced;
                bar.volume = 100000000;
                qb_err_t err = qb_producer_send_msg(prod, topic, sym, strlen(sym), &bar.base, NULL);
                if (err) fail_msg("send %d: %s", produced, qb_err_name(err));
            }
            if (produced == 5000) {
                /* Wait until both members consume before going on. */
                int64_t t = qb_test_now_ms() + 60000;
                while ((ra.lines == 0 || rb.lines == 0) && qb_test_now_ms() < t) {
                    qb_producer_poll(prod, 50);
                    reader_poll(&h, &ra);
                    reader_poll(&h, &rb);
                }
                if (ra.lines == 0 || rb.lines == 0)
                    fail_msg("members did not both consume within 60 s (A %zu, B %zu lines; "
                             "logs %s %s)", ra.lines, rb.lines, alog, blog);
                print_message("both members consuming after %lld ms\n",
                              (long long)(qb_test_now_ms() - t_prod));
                t_prod = qb_test_now_ms() - produced * 1000LL / RATE;
            }
            if (burst == BURST) {
                burst_done = 1;
                t_prod = qb_test_now_ms() - produced * 1000LL / RATE;
            }
            /* Pace at RATE. */
            int64_t due = t_prod + produced * 1000LL / RATE;
            while (qb_test_now_ms() < due) qb_producer_poll(prod, (int)(due - qb_test_now_ms()));
        }
        reader_poll(&h, &ra);
        reader_poll(&h, &rb);
        if (killed || produced < KILL_AT) continue;

        /* Has A committed something? Committed offset one past a line of A. */
        int64_t c[N_PARTS];
        read_committed(view, topic, c);
        int a_committed = 0;
        for (int p = 0; p < N_PARTS; p++)
            if (c[p] > 0 && bit_get(h.a_bits[p], c[p] - 1)) a_committed = 1;
        if (!a_committed) continue;

        /* ---- SIGKILL A, then check the committed offsets ------------------ */
        kill(a, SIGKILL);
        int st = wait_pid(a, 10000);
        if (st < 0 || !WIFSIGNALED(st)) fail_msg("member A did not die of SIGKILL");
        killed = 1;
        t_kill = qb_test_now_ms();
        read_committed(view, topic, committed_at_kill);
        reader_poll(&h, &ra); /* files read AFTER the committed offsets */
        reader_poll(&h, &rb);
        handled_at_kill = h.unique;
        int64_t total_committed = 0;
        for (int p = 0; p < N_PARTS; p++) {
            int64_t missing = 0, first = -1;
            for (int64_t o = 0; o < committed_at_kill[p]; o++)
                if (!bit_get(h.bits[p], o)) {
                    if (first < 0) first = o;
                    missing++;
                }
            if (missing)
                fail_msg("COMMITTED BUT UNHANDLED: partition %d committed at %lld but %lld "
                         "offset(s) below it were never handled (first %lld)",
                         p, (long long)committed_at_kill[p], (long long)missing,
                         (long long)first);
            if (committed_at_kill[p] > 0) total_committed += committed_at_kill[p];
        }
        print_message("killed A at %d produced, %zu handled, %lld committed; every committed "
                      "offset was handled\n",
                      produced, handled_at_kill, (long long)total_committed);
        if (handled_at_kill >= (size_t)produced)
            fail_msg("no backlog when A was killed (%zu handled of %d produced): the "
                     "check above proved nothing", handled_at_kill, produced);
        if (total_committed >= (int64_t)handled_at_kill)
            fail_msg("committed (%lld) not behind handled (%zu) at the kill",
                     (long long)total_committed, handled_at_kill);
        a = start_member(topic, group, a2, a2log);
    }
    assert_int_equal(qb_producer_flush(prod, 30000), QB_OK);
    qb_producer_destroy(prod);
    print_message("produced %d in %lld ms\n", N_MSGS, (long long)(qb_test_now_ms() - t_prod));

    /* ---- wait until every id was handled ---------------------------------- */
    while (h.unique < N_MSGS && qb_test_now_ms() < deadline) {
        usleep(50 * 1000);
        reader_poll(&h, &ra2);
        reader_poll(&h, &rb);
    }
    print_message("all handled %lld ms after the kill\n", (long long)(qb_test_now_ms() - t_kill));

    /* ---- stop the members cleanly, one at a time ---------------------------
     * The mock cluster refuses offset commits while its group rebalances
     * (real Kafka accepts them while preparing a rebalance), so members
     * stopped together could each see the other's leave first and lose
     * their last commit; that is duplicates later, not loss. One at a time
     * makes the end state exact: A leaves (commits first), B takes its
     * partitions over and commits to the end, then B leaves. */
    int64_t c[N_PARTS], end[N_PARTS];
    for (int p = 0; p < N_PARTS; p++) {
        int64_t lo = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(view, topic, p, &lo, &end[p], 10000);
        if (err) fail_msg("watermarks [%d]: %s", p, rd_kafka_err2str(err));
    }
    kill(a, SIGTERM);
    int sta = wait_pid(a, 30000);
    if (sta < 0) kill(a, SIGKILL);
    int at_end = 0;
    for (int64_t t = qb_test_now_ms() + 60000; !at_end && qb_test_now_ms() < t;) {
        read_committed(view, topic, c);
        at_end = 1;
        for (int p = 0; p < N_PARTS; p++)
            if (c[p] != end[p]) at_end = 0;
        if (!at_end) usleep(200 * 1000);
    }
    kill(b, SIGTERM);
    int stb = wait_pid(b, 30000);
    if (stb < 0) kill(b, SIGKILL);
    reader_poll(&h, &ra2);
    reader_poll(&h, &rb);

    size_t missing = 0;
    int first_missing = -1;
    for (int i = 0; i < N_MSGS; i++)
        if (!h.count[i]) {
            if (first_missing < 0) first_missing = i;
            missing++;
        }
    print_message("handled lines %zu: A %zu, B %zu, restarted A %zu; unique %zu of %d; "
                  "duplicates %zu\n",
                  h.lines, ra.lines, rb.lines, ra2.lines, h.unique, N_MSGS,
                  h.lines - h.unique - h.unknown);
    if (missing)
        fail_msg("%zu produced event id(s) never handled (first #%d %s) in %d s",
                 missing, first_missing, ids[first_missing], DEADLINE_MS / 1000);
    if (h.unknown) fail_msg("%zu handled line(s) with an event id never produced", h.unknown);
    if (sta < 0 || !WIFEXITED(sta) || WEXITSTATUS(sta) != 0)
        fail_msg("restarted member A did not exit 0 on SIGTERM (status %d, log %s)", sta, a2log);
    if (stb < 0 || !WIFEXITED(stb) || WEXITSTATUS(stb) != 0)
        fail_msg("member B did not exit 0 on SIGTERM (status %d, log %s)", stb, blog);
    if (ra2.lines == 0) fail_msg("the restarted member handled nothing (log %s)", a2log);

    /* After the clean close everything handled is committed: end of log. */
    read_committed(view, topic, c);
    for (int p = 0; p < N_PARTS; p++)
        if (c[p] != end[p])
            fail_msg("after clean shutdown partition %d is committed at %lld, end is %lld",
                     p, (long long)c[p], (long long)end[p]);
    rd_kafka_destroy(view);

    /* ---- stop the bus ------------------------------------------------------ */
    kill(bus, SIGTERM);
    int stbus = wait_pid(bus, 15000);
    if (stbus < 0) kill(bus, SIGKILL);
    if (stbus < 0 || !WIFEXITED(stbus) || WEXITSTATUS(stbus) != 0)
        fail_msg("private qb-bus did not exit 0 on SIGTERM (status %d, log %s)", stbus, buslog);

    print_message("total %lld ms\n", (long long)(qb_test_now_ms() - t_start));
    for (int p = 0; p < N_PARTS; p++) {
        free(h.bits[p]);
        free(h.a_bits[p]);
    }
    if (ra.fd >= 0) close(ra.fd);
    if (rb.fd >= 0) close(rb.fd);
    if (ra2.fd >= 0) close(ra2.fd);
    free(h.ids.keys);
    free(h.ids.idx);
    free(h.count);
    free(ids);
    if (getenv("QB_TEST_KEEP")) return; /* for a look at the files */
    const char *files[] = {bootfile, buslog, a1, a2, b1, alog, a2log, blog};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) unlink(files[i]);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--member") == 0)
        return member_main(argv[2], argv[3], argv[4]);
    qb_log_init("it_bus_group", QB_LOG_WARN);
    const char *lv = getenv("QB_LOG_LEVEL");
    if (lv && qb_log_level_parse(lv) >= 0)
        qb_log_set_level((qb_log_level_t)qb_log_level_parse(lv));
    qb_test_env("QB_BIN_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_kill_restart_at_least_once),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < nchildren; i++) /* after a failure: nothing left behind */
        if (waitpid(children[i], NULL, WNOHANG) == 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    return rc;
}
