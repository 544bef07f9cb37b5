/* bench_bus.c — one bus hop on qb-bus (QB_KAFKA_BROKERS from the
 * environment; scripts/bench.sh starts the stack and exports it).
 *
 *   (a) throughput: produce N small Bars as fast as qb_producer takes them,
 *       consumed concurrently by one qb_consumer: messages/s produced (until
 *       the flush returns: all acknowledged) and consumed;
 *   (b) latency at a fixed rate: 5,000 msg/s for 5 s, paced; produce ->
 *       consume latency from the qb-produced-ns header (same host, same
 *       clock): p50 / p99 / max. Run twice: with the library defaults
 *       (fetch.wait.max.ms=5) and with QB_KAFKA_FETCH_WAIT_MAX_MS=1, since on
 *       the mock cluster that setting dominates an idle-ish hop.
 * Numbers only, no pass/fail. The topic is fresh (auto-created by the mock
 * cluster on a metadata request, 4 partitions). The consumer runs in its
 * own thread and is caught up (a warm-up message went through) before
 * anything is timed: qb-bus keeps only ~5 MiB per partition, so a consumer
 * that started late could lose the head of the run (reported as "lost").
 *
 * Usage: bench_bus [N]   (default 200000) */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bus/qb_bus.h"
#include "core/qb_log.h"
#include "qb/v1/market.pb-c.h"

#define LAT_RATE 5000
#define LAT_SECONDS 5
#define LAT_N (LAT_RATE * LAT_SECONDS)

static int64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct bench_s {
    _Atomic int warm;          /* this phase's warm-up messages seen */
    _Atomic int64_t tp_count;
    _Atomic int64_t tp_first_ns, tp_last_ns; /* monotonic */
    _Atomic int64_t lat_count;
    int64_t *lat_ns;           /* LAT_N per latency run */
    int lat_run;               /* phase: 0 throughput, 1.. latency runs */
    volatile sig_atomic_t running;
} bench_t;

static qb_err_t bench_handler(const qb_bus_msg_t *m, void *opaque, char *errstr,
                              size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    bench_t *b = opaque;
    const Qb__V1__Bar *bar = (const Qb__V1__Bar *)m->msg;
    const char *id = bar->header ? bar->header->event_id : "";
    int64_t mono = now_ns(CLOCK_MONOTONIC);
    if (id[0] == 't') {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&b->tp_first_ns, &zero, mono);
        atomic_store(&b->tp_last_ns, mono);
        atomic_fetch_add(&b->tp_count, 1);
    } else if (id[0] == 'l') {
        int run, i;
        if (sscanf(id, "l%d-%d", &run, &i) == 2 && run == b->lat_run && i >= 0 && i < LAT_N &&
            m->produced_ns > 0) {
            b->lat_ns[i] = now_ns(CLOCK_REALTIME) - m->produced_ns;
            atomic_fetch_add(&b->lat_count, 1);
        }
    } else if (id[0] == 'w' && atoi(id + 1) == b->lat_run) {
        atomic_fetch_add(&b->warm, 1); /* this phase's warm-up */
    }
    return QB_OK;
}

typedef struct consumer_thread_s {
    qb_consumer_t *c;
    bench_t *b;
} consumer_thread_t;

static void *consumer_main(void *arg) {
    consumer_thread_t *t = arg;
    while (t->b->running) qb_consumer_poll(t->c, 50);
    return NULL;
}

static void bar_fill(Qb__V1__Bar *bar, Qb__V1__Header *h, char *id, char *sym, int i) {
    qb__v1__header__init(h);
    qb__v1__bar__init(bar);
    h->event_id = id;
    h->producer = "bench_bus";
    h->schema_version = 1;
    bar->header = h;
    snprintf(sym, 8, "S%03d", i % 100);
    bar->symbol = sym;
    bar->timeframe = "1m";
    bar->ts = 1700000000000000000LL + (int64_t)i * 60000000000LL;
    bar->open = bar->high = bar->low = bar->close = 10000000000LL + i;
    bar->volume = 100000000;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Send one warm-up message and wait until the consumer saw it. */
static int warm_up(qb_producer_t *p, const char *topic, bench_t *b, int expect) {
    Qb__V1__Header h;
    Qb__V1__Bar bar;
    char id[16], sym[8];
    snprintf(id, sizeof(id), "w%d", b->lat_run);
    bar_fill(&bar, &h, id, sym, 0);
    if (qb_producer_send_msg(p, topic, sym, strlen(sym), &bar.base, NULL) ||
        qb_producer_flush(p, 10000))
        return -1;
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 30000000000LL;
    while (atomic_load(&b->warm) < expect && now_ns(CLOCK_MONOTONIC) < deadline)
        usleep(1000);
    return atomic_load(&b->warm) >= expect ? 0 : -1;
}

/* One paced latency run through a fresh consumer (so that env settings at
 * its creation apply). */
static void latency_run(qb_producer_t *p, const char *topic, bench_t *b, int run,
                        const char *label) {
    char group[96], err[512];
    snprintf(group, sizeof(group), "bench-bus-lat%d-%d", run, (int)getpid());
    const char *topics[] = {topic};
    b->lat_run = run;
    atomic_store(&b->lat_count, 0);
    atomic_store(&b->warm, 0);
    memset(b->lat_ns, 0, sizeof(int64_t) * LAT_N);
    qb_consumer_t *c = qb_consumer_new(group, topics, 1, bench_handler, b, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "bench_bus: consumer: %s\n", err);
        exit(1);
    }
    consumer_thread_t ct = {c, b};
    pthread_t th;
    b->running = 1;
    pthread_create(&th, NULL, consumer_main, &ct);
    /* The group reads the topic from the start (auto.offset.reset=earliest):
     * skip what is there by waiting for the warm-up sent now. */
    if (warm_up(p, topic, b, 1)) {
        fprintf(stderr, "bench_bus: consumer never caught up\n");
        exit(1);
    }
    Qb__V1__Header h;
    Qb__V1__Bar bar;
    char id[32], sym[8];
    int64_t t0 = now_ns(CLOCK_MONOTONIC), period = 1000000000LL / LAT_RATE;
    for (int i = 0; i < LAT_N; i++) {
        int64_t due = t0 + i * period;
        struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        snprintf(id, sizeof(id), "l%d-%d", run, i);
        bar_fill(&bar, &h, id, sym, i);
        if (qb_producer_send_msg(p, topic, sym, strlen(sym), &bar.base, NULL)) {
            fprintf(stderr, "bench_bus: send failed\n");
            exit(1);
        }
    }
    qb_producer_flush(p, 10000);
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 10000000000LL;
    while (atomic_load(&b->lat_count) < LAT_N && now_ns(CLOCK_MONOTONIC) < deadline)
        usleep(1000);
    b->running = 0;
    pthread_join(th, NULL);
    qb_consumer_destroy(c);

    int64_t n = atomic_load(&b->lat_count), k = 0;
    int64_t *v = malloc(sizeof(int64_t) * LAT_N);
    for (int i = 0; i < LAT_N && v; i++)
        if (b->lat_ns[i] > 0) v[k++] = b->lat_ns[i];
    if (!v || k == 0) {
        printf("bus hop @%d msg/s%s: no samples\n", LAT_RATE, label);
        free(v);
        return;
    }
    qsort(v, (size_t)k, sizeof(int64_t), cmp_i64);
    printf("bus hop @%d msg/s%s: p50=%" PRId64 " us p99=%" PRId64 " us max=%" PRId64
           " us (%" PRId64 " of %d received)\n",
           LAT_RATE, label, v[k / 2] / 1000, v[k * 99 / 100] / 1000, v[k - 1] / 1000, n,
           LAT_N);
    fflush(stdout);
    free(v);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (n <= 0) n = 200000;
    qb_log_init("bench_bus", QB_LOG_WARN);
    const char *lv = getenv("QB_LOG_LEVEL");
    if (lv && qb_log_level_parse(lv) >= 0)
        qb_log_set_level((qb_log_level_t)qb_log_level_parse(lv));
    const char *brokers = getenv("QB_KAFKA_BROKERS");
    if (!brokers || !*brokers) {
        fprintf(stderr, "bench_bus: QB_KAFKA_BROKERS is not set (run scripts/bench.sh)\n");
        return 2;
    }

    /* A fresh topic: a metadata request makes the mock cluster create it. */
    char topic[96], err[512];
    snprintf(topic, sizeof(topic), "bench-bus-%d-%ld", (int)getpid(), (long)time(NULL));
    int parts = 0;
    {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
            fprintf(stderr, "bench_bus: %s\n", err);
            return 1;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        for (int i = 0; i < 100 && !parts; i++) {
            const struct rd_kafka_metadata *md = NULL;
            if (!rd_kafka_metadata(rk, 0, rkt, &md, 2000) && md->topic_cnt == 1 &&
                !md->topics[0].err)
                parts = md->topics[0].partition_cnt;
            if (md) rd_kafka_metadata_destroy(md);
            if (!parts) usleep(100000);
        }
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
    }
    if (!parts || !qb_topics_add(topic, "qb.v1.Bar", "symbol", parts, err, sizeof(err))) {
        fprintf(stderr, "bench_bus: cannot create topic %s\n", topic);
        return 1;
    }
    printf("bench_bus: topic %s (%d partitions), brokers %s\n", topic, parts, brokers);

    bench_t b;
    memset(&b, 0, sizeof(b));
    b.lat_ns = calloc(LAT_N, sizeof(int64_t));
    qb_producer_t *p = qb_producer_new(err, sizeof(err));
    if (!p || !b.lat_ns) {
        fprintf(stderr, "bench_bus: producer: %s\n", err);
        return 1;
    }

    /* ---- (a) throughput -------------------------------------------------- */
    {
        char group[96];
        snprintf(group, sizeof(group), "bench-bus-tp-%d", (int)getpid());
        const char *topics[] = {topic};
        qb_consumer_t *c = qb_consumer_new(group, topics, 1, bench_handler, &b, err, sizeof(err));
        if (!c) {
            fprintf(stderr, "bench_bus: consumer: %s\n", err);
            return 1;
        }
        consumer_thread_t ct = {c, &b};
        pthread_t th;
        b.running = 1;
        pthread_create(&th, NULL, consumer_main, &ct);
        if (warm_up(p, topic, &b, 1)) {
            fprintf(stderr, "bench_bus: consumer never caught up\n");
            return 1;
        }
        Qb__V1__Header h;
        Qb__V1__Bar bar;
        char id[32], sym[8];
        int64_t t0 = now_ns(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++) {
            snprintf(id, sizeof(id), "t%ld", i);
            bar_fill(&bar, &h, id, sym, (int)i);
            if (qb_producer_send_msg(p, topic, sym, strlen(sym), &bar.base, "")) {
                fprintf(stderr, "bench_bus: send %ld failed\n", i);
                return 1;
            }
        }
        qb_err_t ferr = qb_producer_flush(p, 60000);
        int64_t t_prod = now_ns(CLOCK_MONOTONIC);
        int64_t deadline = t_prod + 60000000000LL, last = -1;
        int64_t t_last_change = t_prod;
        while (atomic_load(&b.tp_count) < n && now_ns(CLOCK_MONOTONIC) < deadline) {
            int64_t cnt = atomic_load(&b.tp_count);
            if (cnt != last) {
                last = cnt;
                t_last_change = now_ns(CLOCK_MONOTONIC);
            } else if (now_ns(CLOCK_MONOTONIC) - t_last_change > 5000000000LL) {
                break; /* nothing for 5 s: the rest is lost */
            }
            usleep(1000);
        }
        b.running = 0;
        pthread_join(th, NULL);
        qb_consumer_destroy(c);
        int64_t got = atomic_load(&b.tp_count);
        double prod_s = (double)(t_prod - t0) / 1e9;
        double cons_s = (double)(atomic_load(&b.tp_last_ns) - atomic_load(&b.tp_first_ns)) / 1e9;
        double e2e_s = (double)(atomic_load(&b.tp_last_ns) - t0) / 1e9;
        printf("bus throughput: produced %ld msgs in %.3f s = %.0f msg/s (flush %s); "
               "consumed %" PRId64 " in %.3f s = %.0f msg/s (end to end %.3f s = %.0f msg/s)"
               "%s%" PRId64 "\n",
               n, prod_s, (double)n / prod_s, qb_err_name(ferr), got, cons_s,
               cons_s > 0 ? (double)got / cons_s : 0.0, e2e_s,
               e2e_s > 0 ? (double)got / e2e_s : 0.0, ", lost ", (int64_t)n - got);
        fflush(stdout);
    }

    /* ---- (b) latency at a fixed rate --------------------------------------- */
    latency_run(p, topic, &b, 1, "");
    setenv("QB_KAFKA_FETCH_WAIT_MAX_MS", "1", 1);
    latency_run(p, topic, &b, 2, " (fetch.wait.max.ms=1)");
    unsetenv("QB_KAFKA_FETCH_WAIT_MAX_MS");

    qb_producer_destroy(p);
    free(b.lat_ns);
    return 0;
}
