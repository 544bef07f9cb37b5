/* qb_test.c — see qb_test.h. */
#include "qb_test.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qb_test_assert.h"

const char *qb_test_env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "FATAL: %s is not set: run the tests through `make test` "
                        "(scripts/test.sh starts the stack and exports it)\n", name);
        exit(2);
    }
    return v;
}

uint64_t qb_test_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void qb_test_unique(char *buf, size_t cap, const char *prefix) {
    static unsigned n;
    static uint64_t st;
    if (!st) st = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    snprintf(buf, cap, "%s-%d-%u-%04x", prefix, (int)getpid(), ++n,
             (unsigned)(qb_test_rand(&st) & 0xffff));
}

int64_t qb_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t qb_test_seed(const char *test_name) {
    const char *e = getenv("QB_TEST_SEED");
    uint64_t seed = e ? strtoull(e, NULL, 0)
                      : ((uint64_t)time(NULL) * 1000003ULL) ^ (uint64_t)getpid();
    fprintf(stderr, "%s: seed %llu (repeat with QB_TEST_SEED=%llu)\n", test_name,
            (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

static PGconn *qb_test_admin(void) {
    PGconn *c = PQconnectdb(qb_test_env("QB_PG_DSN"));
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "FATAL: cannot connect to QB_PG_DSN: %s", PQerrorMessage(c));
        exit(2);
    }
    return c;
}

char *qb_test_db_create(void) {
    char name[64], sql[128];
    qb_test_unique(name, sizeof(name), "qbt");
    for (char *p = name; *p; p++)
        if (*p == '-') *p = '_';
    PGconn *c = qb_test_admin();
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "FATAL: %s: %s", sql, PQerrorMessage(c));
        exit(2);
    }
    PQclear(r);
    PQfinish(c);
    size_t cap = strlen(qb_test_env("QB_PG_DSN")) + 80;
    char *dsn = malloc(cap);
    if (!dsn) abort();
    snprintf(dsn, cap, "%s dbname=%s", qb_test_env("QB_PG_DSN"), name);
    return dsn;
}

void qb_test_db_drop(char *dsn) {
    if (!dsn) return;
    const char *p = strrchr(dsn, '=');
    if (p) {
        char sql[128];
        PGconn *c = qb_test_admin();
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", p + 1);
        PQclear(PQexec(c, sql));
        PQfinish(c);
    }
    free(dsn);
}

/* Below the kernel's ephemeral range, as tests/harness/free_port.py: the
 * kernel never gives such a port to an outgoing connection, so a server the
 * test stops and starts again on it gets it back. */
int qb_test_free_port(void) {
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &low) != 1) low = 32768;
        fclose(f);
    }
    static unsigned seed;
    if (!seed) seed = (unsigned)getpid() ^ (unsigned)qb_test_now_ms();
    for (int tries = 0; tries < 500; tries++) {
        int p = low > 10001 ? 10000 + (int)(rand_r(&seed) % (unsigned)(low - 10000)) : 0;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                 getsockname(fd, (struct sockaddr *)&a, &l) == 0;
        close(fd);
        if (ok) return ntohs(a.sin_port);
    }
    fail_msg("no free port below %d", low);
    return -1;
}

static int cap_saved = -1; /* the real stderr while a capture runs, else -1 */
static char cap_path[64];

void qb_test_capture_stderr_start(void) {
    snprintf(cap_path, sizeof(cap_path), "/tmp/qb-test-stderr-XXXXXX");
    int fd = mkstemp(cap_path);
    assert_true(fd >= 0);
    cap_saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

char *qb_test_capture_stderr_stop(void) {
    dup2(cap_saved, 2);
    close(cap_saved);
    cap_saved = -1;
    FILE *fp = fopen(cap_path, "rb");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    unlink(cap_path);
    return buf;
}

int qb_test_capture_stderr_teardown(void **state) {
    (void)state;
    if (cap_saved >= 0) fputs(qb_test_capture_stderr_stop(), stderr);
    return 0;
}

int qb_test_topic_partitions(const char *topic) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", qb_test_env("QB_KAFKA_BROKERS"), err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) fail_msg("kafka client: %s", err);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int parts = 0;
    int64_t deadline = qb_test_now_ms() + 10000;
    while (!parts && qb_test_now_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == 0 && md->topic_cnt == 1 &&
            !md->topics[0].err)
            parts = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        if (!parts) usleep(100 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    if (!parts) fail_msg("topic %s did not come to exist", topic);
    return parts;
}
