/* bench_pipeline.c — the live pipeline under load: the publisher of bars and
 * the collector of what the services make of them. bench/bench_pipeline.sh
 * starts qb-features, qb-risk and qb-execution (paper simulator) on the bench
 * stack, seeds their strategies and limits, and runs this binary with
 * QB_BENCH_PIPELINE=run; run alone (scripts/bench.sh runs every bench binary)
 * it only says so. QB_BENCH_PIPELINE=topics creates the topics (a metadata
 * request makes qb-bus create a topic) so the services can start on them.
 *
 * Publisher: Bars on md.bars (qb_producer, key symbol) round-robin over
 * QB_BENCH_PIPELINE_SYMBOLS symbols BP0000.., paced to a fixed rate (a
 * due count from the monotonic clock, sends to catch up, 100 us naps). Each
 * symbol's close moves one tick per bar and turns every FLIP bars (symbol i
 * starts i bars into its cycle, so turns are spread evenly); the seeded
 * strategy (sma_cross fast 1 / slow 2) signals at every turn, so about
 * rate / FLIP signals per second, each one an order, its reports and a fill
 * at the symbol's next bar. The publisher is the bar's first producer: its
 * qb-origin-ns is its send time, and libs/bus carries it through every hop.
 *
 * Collector: one plain librdkafka consumer (no group, no decoding except
 * exec.reports' status), every partition of features, signals, orders and
 * exec.reports assigned from the end before the first bar. Per message:
 * received - qb-origin-ns ("seen": includes the collector's own hop, an
 * upper bound of "on the topic") and qb-produced-ns - qb-origin-ns
 * ("queued": when the service handed it to its producer). Lag = bars sent -
 * FeatureSets seen (qb-features makes one per bar), sampled every second.
 *
 * Phases: warm-up (every series created and warmed, every account loaded,
 * drained), then one run per rate of QB_BENCH_PIPELINE_RATES, then the
 * throughput ladder QB_BENCH_PIPELINE_MAX_RATES (data -> features ->
 * signals; FLIP = QB_BENCH_PIPELINE_MAX_FLIP so signals stay few): a step is
 * SUSTAINED when the publisher reached 97% of the rate and the lag at its
 * end is at most half a second of bars; the ladder stops at the first step
 * that is not. The pipeline drains between runs (the drain time is printed).
 *
 * Environment (defaults; a list may be "none"): QB_BENCH_PIPELINE_SYMBOLS (1000),
 * _RATES (1000,10000,50000), _FLIPS (20,40,200: FLIP per rate),
 * _SECONDS (20: per rate), _MAX_RATES (2500,5000,10000,25000,50000,100000,
 * 150000), _MAX_SECONDS (10; the documented figure is 60),
 * _MAX_FLIP (1000), _WARM_RATE (5000), _DRAIN_S (60).
 * Numbers only, no pass/fail. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "core/qb_log.h"
#include "qb/v1/market.pb-c.h"
#include "qb/v1/trading.pb-c.h"

enum { T_FEAT, T_SIG, T_ORD, T_REP, NT };
static const char *const tbase[NT] = {"features", "signals", "orders", "exec.reports"};
static const char *const tlabel[NT] = {"bar -> features", "bar -> signal", "bar -> order",
                                       "bar -> report"};
#define SAMPLES_MAX (4 * 1024 * 1024)

typedef struct samples_s {
    int32_t *seen, *queued; /* microseconds */
    _Atomic int64_t n;
} samples_t;

static struct {
    const char *kname[NT];
    samples_t s[NT];
    _Atomic int64_t count[NT]; /* every message seen, recording or not */
    _Atomic int64_t rejected;  /* ExecutionReports REJECTED while recording */
    _Atomic int recording;
    _Atomic int running;
    _Atomic int ready;
} C;

static int64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* "a,b,c" -> up to max values */
static int env_list(const char *name, const char *def, long *out, int max) {
    const char *v = getenv(name);
    if (!v || !*v) v = def;
    if (strcmp(v, "none") == 0) return 0;
    int n = 0;
    while (*v && n < max) {
        char *end;
        long x = strtol(v, &end, 10);
        if (end == v) break;
        out[n++] = x;
        v = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int64_t hdr_i64(rd_kafka_headers_t *h, const char *name) {
    const void *v;
    size_t n;
    char buf[32];
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) || !v || n >= sizeof buf) return 0;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

/* consumer = 0: only what a metadata client needs */
static rd_kafka_conf_t *conf_new(int consumer) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *fw = getenv("QB_KAFKA_FETCH_WAIT_MAX_MS");
    if (rd_kafka_conf_set(conf, "bootstrap.servers", getenv("QB_KAFKA_BROKERS"), err,
                          sizeof err) ||
        rd_kafka_conf_set(conf, "socket.nagle.disable", "true", err, sizeof err))
        goto bad;
    if (!consumer) return conf;
    if (rd_kafka_conf_set(conf, "fetch.wait.max.ms", fw && *fw ? fw : "1", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "bench-pipeline-collector", err, sizeof err))
        goto bad;
    return conf;
bad:
    fprintf(stderr, "bench_pipeline: %s\n", err);
    exit(1);
}

/* Partition count of a topic; the metadata request creates it on qb-bus. */
static int topic_partitions(rd_kafka_t *rk, const char *kname) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, kname, NULL);
    int parts = 0;
    for (int i = 0; i < 100 && !parts; i++) {
        const struct rd_kafka_metadata *md = NULL;
        if (!rd_kafka_metadata(rk, 0, rkt, &md, 2000) && md->topic_cnt == 1 &&
            !md->topics[0].err)
            parts = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        if (!parts) usleep(100000);
    }
    rd_kafka_topic_destroy(rkt);
    return parts;
}

/* ---- collector ---------------------------------------------------------------------- */

static void collect(rd_kafka_message_t *m) {
    const char *tn = rd_kafka_topic_name(m->rkt);
    int t = 0;
    while (t < NT && strcmp(tn, C.kname[t]) != 0) t++;
    if (t == NT) return;
    int64_t recv = now_ns(CLOCK_REALTIME);
    atomic_fetch_add_explicit(&C.count[t], 1, memory_order_relaxed);
    if (!atomic_load_explicit(&C.recording, memory_order_relaxed)) return;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h)) h = NULL;
    int64_t origin = hdr_i64(h, "qb-origin-ns"), produced = hdr_i64(h, "qb-produced-ns");
    if (origin <= 0) return;
    if (t == T_REP) {
        Qb__V1__ExecutionReport *x =
            qb__v1__execution_report__unpack(NULL, m->len, m->payload);
        if (x && x->status == QB__V1__ORDER_STATUS__ORDER_STATUS_REJECTED)
            atomic_fetch_add(&C.rejected, 1);
        if (x) qb__v1__execution_report__free_unpacked(x, NULL);
    }
    samples_t *s = &C.s[t];
    int64_t i = atomic_fetch_add(&s->n, 1);
    if (i >= SAMPLES_MAX) return;
    int64_t a = (recv - origin) / 1000, b = produced > 0 ? (produced - origin) / 1000 : -1;
    s->seen[i] = (int32_t)(a > INT32_MAX ? INT32_MAX : a);
    s->queued[i] = (int32_t)(b > INT32_MAX ? INT32_MAX : b);
}

static void *collector_main(void *arg) {
    rd_kafka_t *rk = arg;
    /* every partition from its current end, as an explicit offset (a
     * logical OFFSET_END would be resolved later, after bars may flow) */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(64);
    for (int t = 0; t < NT; t++) {
        int parts = topic_partitions(rk, C.kname[t]);
        if (!parts) {
            fprintf(stderr, "bench_pipeline: no topic %s\n", C.kname[t]);
            exit(1);
        }
        for (int p = 0; p < parts; p++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, C.kname[t], p, &lo, &hi, 10000)) {
                fprintf(stderr, "bench_pipeline: no watermarks of %s [%d]\n", C.kname[t], p);
                exit(1);
            }
            rd_kafka_topic_partition_list_add(l, C.kname[t], p)->offset = hi;
        }
    }
    if (rd_kafka_assign(rk, l)) {
        fprintf(stderr, "bench_pipeline: assign failed\n");
        exit(1);
    }
    rd_kafka_topic_partition_list_destroy(l);
    atomic_store(&C.ready, 1);
    while (atomic_load(&C.running)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) collect(m);
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* ---- publisher ---------------------------------------------------------------------- */

typedef struct sym_s {
    char name[24];
    int64_t k;     /* bars sent */
    int64_t close; /* 1e-8 units */
} sym_t;

static sym_t *S;
static long NSYM;
static int64_t next_sym; /* round robin */
static _Atomic int64_t bars_sent;
#define BAR_TS0 1700000000000000000LL /* 2023-11-14T22:13:20Z */
#define TICK 1000000LL                /* 0.01 */

static void bar_send(qb_producer_t *p, long flip) {
    sym_t *s = &S[next_sym];
    long i = (long)next_sym;
    next_sym = (next_sym + 1) % NSYM;
    int up = (((s->k + i) / flip) % 2) == 0;
    int64_t open = s->close, close = open + (up ? TICK : -TICK);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    Qb__V1__Bar b = QB__V1__BAR__INIT;
    h.producer = "bench_pipeline";
    h.schema_version = 1;
    h.event_time = BAR_TS0 + s->k * 60000000000LL;
    b.header = &h;
    b.symbol = s->name;
    b.timeframe = "1m";
    b.ts = BAR_TS0 + s->k * 60000000000LL;
    b.open = open;
    b.close = close;
    b.high = (open > close ? open : close) + TICK;
    b.low = (open < close ? open : close) - TICK;
    b.volume = 100000000000LL;
    s->k++;
    s->close = close;
    if (qb_producer_send_msg(p, "md.bars", s->name, strlen(s->name), &b.base, "")) {
        fprintf(stderr, "bench_pipeline: send failed\n");
        exit(1);
    }
    atomic_fetch_add_explicit(&bars_sent, 1, memory_order_relaxed);
}

static int64_t lag_now(int64_t sent0, int64_t feat0) {
    return (atomic_load(&bars_sent) - sent0) - (atomic_load(&C.count[T_FEAT]) - feat0);
}

typedef struct run_s {
    double achieved;      /* bars/s */
    int64_t sent;
    int64_t end_lag;      /* bars not yet turned into FeatureSets when publishing ended */
    int64_t lag_first, lag_mid, lag_max; /* 1 s samples */
    double drain_s;       /* until the lag was 0, -1 = not within DRAIN_S */
} run_t;

/* Publish at `rate` for `seconds`; returns the figures. */
static run_t publish(qb_producer_t *p, double rate, double seconds, long flip, long drain_s) {
    run_t r;
    memset(&r, 0, sizeof r);
    int64_t sent0 = atomic_load(&bars_sent), feat0 = atomic_load(&C.count[T_FEAT]);
    int64_t total = (int64_t)(rate * seconds), n = 0;
    int64_t t0 = now_ns(CLOCK_MONOTONIC), next_sample = t0 + 1000000000LL, tend = t0;
    int64_t nsamples = 0;
    while (n < total) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        int64_t due = (int64_t)((double)(now - t0) * rate / 1e9) + 1;
        if (due > total) due = total;
        while (n < due) {
            bar_send(p, flip);
            n++;
        }
        tend = now_ns(CLOCK_MONOTONIC);
        if (tend >= next_sample) {
            int64_t lag = lag_now(sent0, feat0);
            if (nsamples == 0) r.lag_first = lag;
            if (nsamples == (int64_t)(seconds / 2)) r.lag_mid = lag;
            if (lag > r.lag_max) r.lag_max = lag;
            nsamples++;
            next_sample += 1000000000LL;
        }
        if (n < total) {
            int64_t next_due = t0 + (int64_t)((double)n * 1e9 / rate);
            int64_t nap = next_due - now_ns(CLOCK_MONOTONIC);
            if (nap > 100000) nap = 100000;
            if (nap > 0) {
                struct timespec ts = {0, (long)nap};
                nanosleep(&ts, NULL);
            }
        }
    }
    r.sent = n;
    double el = (double)(tend - t0) / 1e9;
    r.achieved = el > 0 ? (double)n / el : 0;
    qb_producer_poll(p, 0);
    r.end_lag = lag_now(sent0, feat0);
    int64_t td = now_ns(CLOCK_MONOTONIC), dl = td + drain_s * 1000000000LL;
    r.drain_s = -1;
    while (now_ns(CLOCK_MONOTONIC) < dl) {
        qb_producer_poll(p, 0);
        if (lag_now(sent0, feat0) <= 0) {
            r.drain_s = (double)(now_ns(CLOCK_MONOTONIC) - td) / 1e9;
            break;
        }
        usleep(2000);
    }
    return r;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* "p50 1.23 p99 4.56 p99.9 7.89 ms" of v[0..n) (sorted in place) */
static void pct(int32_t *v, int64_t n, char *out, size_t cap) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (v[i] >= 0) v[k++] = v[i];
    if (!k) {
        snprintf(out, cap, "%-36s", "-");
        return;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_i32);
    snprintf(out, cap, "p50 %6.2f p99 %7.2f p99.9 %7.2f ms", v[k / 2] / 1e3,
             v[k * 99 / 100] / 1e3, v[k * 999 / 1000] / 1e3);
}

static void report_latency(void) {
    for (int t = 0; t < NT; t++) {
        samples_t *s = &C.s[t];
        int64_t n = atomic_load(&s->n);
        if (n > SAMPLES_MAX) n = SAMPLES_MAX;
        char a[96], b[96];
        pct(s->seen, n, a, sizeof a);
        pct(s->queued, n, b, sizeof b);
        printf("    %-16s n=%-8" PRId64 " seen %s | queued %s\n", tlabel[t], n, a, b);
    }
}

static void record_start(void) {
    for (int t = 0; t < NT; t++) atomic_store(&C.s[t].n, 0);
    atomic_store(&C.rejected, 0);
    atomic_store(&C.recording, 1);
}

/* Let the outputs of the last bars arrive, then stop recording. */
static void record_stop(qb_producer_t *p) {
    for (int i = 0; i < 20; i++) {
        qb_producer_poll(p, 0);
        usleep(100000);
    }
    atomic_store(&C.recording, 0);
}

int main(void) {
    const char *mode = getenv("QB_BENCH_PIPELINE");
    if (!mode || (strcmp(mode, "run") != 0 && strcmp(mode, "topics") != 0)) {
        printf("bench_pipeline: needs the services: run by bench/bench_pipeline.sh\n");
        return 0;
    }
    qb_log_init("bench_pipeline", QB_LOG_WARN);
    const char *lv = getenv("QB_LOG_LEVEL");
    if (lv && qb_log_level_parse(lv) >= 0)
        qb_log_set_level((qb_log_level_t)qb_log_level_parse(lv));
    if (!getenv("QB_KAFKA_BROKERS")) {
        fprintf(stderr, "bench_pipeline: QB_KAFKA_BROKERS is not set\n");
        return 2;
    }
    char err[512];
    if (qb_topics_init(err, sizeof err)) {
        fprintf(stderr, "bench_pipeline: %s\n", err);
        return 2;
    }
    if (strcmp(mode, "topics") == 0) {
        static const char *const all[] = {"md.bars", "features", "signals", "orders",
                                          "orders.intents", "exec.reports", "risk.events",
                                          "control"};
        rd_kafka_conf_t *conf = conf_new(0);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk) return 1;
        int rc = 0;
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (!topic_partitions(rk, qb_topic_resolve(all[i]))) rc = 1;
        rd_kafka_destroy(rk);
        return rc;
    }

    NSYM = env_long("QB_BENCH_PIPELINE_SYMBOLS", 1000);
    long rates[16], flips[16], max_rates[32];
    int nrates = env_list("QB_BENCH_PIPELINE_RATES", "1000,10000,50000", rates, 16);
    int nflips = env_list("QB_BENCH_PIPELINE_FLIPS", "20,40,200", flips, 16);
    int nmax = env_list("QB_BENCH_PIPELINE_MAX_RATES",
                        "2500,5000,10000,25000,50000,100000,150000", max_rates, 32);
    double secs = (double)env_long("QB_BENCH_PIPELINE_SECONDS", 20);
    double max_secs = (double)env_long("QB_BENCH_PIPELINE_MAX_SECONDS", 10);
    long max_flip = env_long("QB_BENCH_PIPELINE_MAX_FLIP", 1000);
    long warm_rate = env_long("QB_BENCH_PIPELINE_WARM_RATE", 5000);
    long drain_s = env_long("QB_BENCH_PIPELINE_DRAIN_S", 60);
    if (NSYM < 1 || NSYM > 9999 || nrates < 0 || secs <= 0 || max_secs <= 0 || max_flip < 1) {
        fprintf(stderr, "bench_pipeline: bad settings\n");
        return 2;
    }
    S = calloc((size_t)NSYM, sizeof *S);
    for (int t = 0; t < NT; t++) {
        C.kname[t] = strdup(qb_topic_resolve(tbase[t]));
        C.s[t].seen = calloc(SAMPLES_MAX, sizeof(int32_t));
        C.s[t].queued = calloc(SAMPLES_MAX, sizeof(int32_t));
        if (!C.s[t].seen || !C.s[t].queued) return 1;
    }
    for (long i = 0; i < NSYM; i++) {
        snprintf(S[i].name, sizeof S[i].name, "BP%04ld", i);
        S[i].close = 10000000000LL + (i % 50) * 100000000LL; /* 100.00 .. 149.00 */
    }

    rd_kafka_conf_t *conf = conf_new(1);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench_pipeline: %s\n", err);
        return 1;
    }
    atomic_store(&C.running, 1);
    pthread_t th;
    pthread_create(&th, NULL, collector_main, rk);
    while (!atomic_load(&C.ready)) usleep(10000);
    qb_producer_t *p = qb_producer_new(err, sizeof err);
    if (!p) {
        fprintf(stderr, "bench_pipeline: producer: %s\n", err);
        return 1;
    }

    /* warm-up: every series made (its history looked up), every account
     * loaded, a first signal per symbol */
    long flip0 = nflips ? flips[0] : 20;
    long rounds = flip0 > 3 ? flip0 + 1 : 4;
    run_t w = publish(p, (double)warm_rate, (double)(rounds * NSYM) / (double)warm_rate, flip0,
                      drain_s * 2);
    printf("warm-up: %" PRId64 " bars (%ld per symbol) at %ld bars/s, drained in %.1f s; "
           "signals %" PRId64 ", orders %" PRId64 ", reports %" PRId64 "\n",
           w.sent, rounds, warm_rate, w.drain_s, atomic_load(&C.count[T_SIG]),
           atomic_load(&C.count[T_ORD]), atomic_load(&C.count[T_REP]));
    sleep(2);
    fflush(stdout);

    for (int i = 0; i < nrates; i++) {
        long flip = i < nflips ? flips[i] : flips[nflips - 1];
        record_start();
        run_t r = publish(p, (double)rates[i], secs, flip, drain_s);
        record_stop(p);
        printf("  rate %ld bars/s x %ld symbols, %.0f s, a turn every %ld bars: achieved %.0f "
               "bars/s; lag end %" PRId64 " (max %" PRId64 "), drained in %.2f s; "
               "REJECTED reports %" PRId64 "\n",
               rates[i], NSYM, secs, flip, r.achieved, r.end_lag, r.lag_max, r.drain_s,
               atomic_load(&C.rejected));
        report_latency();
        fflush(stdout);
        sleep(1);
    }

    if (nmax > 0) {
        printf("  max throughput (data -> features -> signals, %.0f s per step, a turn every "
               "%ld bars):\n", max_secs, max_flip);
        long best = 0;
        for (int i = 0; i < nmax; i++) {
            int64_t sig0 = atomic_load(&C.count[T_SIG]);
            run_t r = publish(p, (double)max_rates[i], max_secs, max_flip, drain_s);
            int ok = r.achieved >= 0.97 * (double)max_rates[i] &&
                     (double)r.end_lag <= 0.5 * (double)max_rates[i];
            printf("    %7ld bars/s: achieved %7.0f, lag at 1 s %" PRId64 ", mid %" PRId64
                   ", end %" PRId64 ", drained in %.2f s, signals %" PRId64 ": %s\n",
                   max_rates[i], r.achieved, r.lag_first, r.lag_mid, r.end_lag, r.drain_s,
                   atomic_load(&C.count[T_SIG]) - sig0, ok ? "sustained" : "NOT sustained");
            fflush(stdout);
            if (!ok) break;
            best = max_rates[i];
            sleep(1);
        }
        printf("  highest sustained: %ld bars/s\n", best);
    }
    qb_producer_destroy(p);
    atomic_store(&C.running, 0);
    pthread_join(th, NULL);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
