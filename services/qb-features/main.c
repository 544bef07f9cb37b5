/* qb-features — indicators and strategy signals from md.bars, live.
 *
 * Per bar (consumer group "qb-features" on md.bars, keyed by symbol, so
 * replicas split the symbols):
 *   - the series (symbol, timeframe) is found or, at its first bar since
 *     this process got its partition, created and WARMED UP from the stored
 *     bars before this one (md.bars in PostgreSQL, at most
 *     QB_FEATURES_WARMUP_BARS): the indicators, and each strategy instance
 *     on it, whose saved decision state (features.strategy_state) is
 *     restored when it was saved after exactly the last stored bar;
 *   - a bar not after the series' last one is a re-delivery: skipped;
 *   - the feature indicators (QB_FEATURES_INDICATORS, libs/ta specs) are
 *     updated and a FeatureSet goes to `features` (key symbol, event id
 *     UUID v5 of symbol|timeframe|ts); every enabled strategy on the series
 *     (features.strategies) runs, and each signal goes to `signals` (key
 *     account, signal_id = event id = qb_strategy_signal_id);
 *   - the rows (features, signals, decision states) are batched.
 * Flush (every QB_FEATURES_FLUSH_ROWS rows or QB_FEATURES_FLUSH_MS, when
 * idle): the batch is SEALED (decision states staged, the producer's
 * sequence number and the consumer's deferred offsets taken) and a new one
 * goes on filling, so bars do not wait for the bus or the database; once
 * the producer has acknowledged every message up to the seal (delivery
 * watermark, qb_producer_done_seq), the sealed batch goes to the WRITER
 * thread (its own PostgreSQL connection; it owns the Redis client), which
 * writes it in one transaction (COPY; ON CONFLICT so a replay writes
 * nothing) and each changed series' latest values (built at the seal) to
 * Redis in one pipeline (qb:features:SYM:TF, JSON, TTL
 * QB_FEATURES_CACHE_TTL_S) while the consumer thread goes on with the next
 * bars; when it is done, the batch's taken offsets are stored:
 * a committed offset never covers a bar whose effects could be lost, and a
 * stored feature row (which makes a restart skip its bar) never exists
 * before the bar's messages are on their topics. On revoke, at exit and
 * after a failed bar the flush waits instead (acks, sealed batch, live
 * batch, offsets). A kill -9 replays the bars after the last flush; the
 * restarted process warms up from md.bars + the saved states and produces
 * the same ids again, which the tables absorb.
 *
 * Control (same group, topic `control`): STRATEGY_SET_PARAMS creates or
 * changes an instance, STRATEGY_ENABLE / _DISABLE switch it; applied to
 * features.strategies (whichever replica gets the command). Every replica
 * reloads the table when its max(change_seq) moves (checked every
 * QB_FEATURES_RELOAD_MS); series re-sync their instances at their next bar.
 *
 * Exactly-once with Kafka transactions was tried first: qb-bus (librdkafka
 * 2.0.2's mock cluster) accepts transactions but does not apply offsets
 * sent with send_offsets_to_transaction (the group's committed offsets
 * stay unset), so consume-transform-produce cannot be made atomic on it.
 * Instead, what a replay would send again is read back from the topics
 * first (feat_dedup.c): an id already on `features` / `signals` is not sent
 * twice (its row is still written), so the topics hold each id once.
 * Ids stay deterministic, and consumers may still de-duplicate by them.
 *
 * Admin port 9102: /healthz, /readyz (bus, postgres, redis, migrations),
 * /metrics. SIGTERM: flush, leave the group, exit 0. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "cache/qb_cache.h"
#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "feat.h"
#include "feat_store.h"
#include "proto/qb_proto.h"
#include "qb/v1/control.pb-c.h"
#include "qb/v1/market.pb-c.h"
#include "qb/v1/trading.pb-c.h"
#include "svc/qb_svc.h"

/* Namespace of FeatureSet event ids (fixed random UUID, never to change). */
#define FEAT_EVENT_NS "0d6c1f5e-8a3b-4f27-b1e9-5c2a7d4e9f10"

typedef struct feat_cfg_s {
    const char *indicators;
    int64_t warmup_bars;
    int64_t flush_ms;
    int64_t flush_rows;
    int64_t reload_ms;
    int64_t cache_ttl_s;
    int migrate;
    const char *group;
    int64_t dedup_margin_ms;
} feat_cfg_t;

static const qb_cfg_entry_t feat_cfg_entries[] = {
    {"features.indicators", "QB_FEATURES_INDICATORS", QB_CFG_STRING,
     "sma:20,sma:50,ema:12,ema:26,rsi:14,macd:12:26:9,bbands:20:2:2,atr:14,adx:14,obv", 1, 4000,
     offsetof(feat_cfg_t, indicators), 0,
     "feature indicators computed on every series (libs/ta specs, as `qbctl ta`)"},
    {"features.warmup_bars", "QB_FEATURES_WARMUP_BARS", QB_CFG_INT, "5000", 0, 10000000,
     offsetof(feat_cfg_t, warmup_bars), 0,
     "stored bars replayed to warm a series up (EMA-like indicators remember every bar: with "
     "more history than this, a restart differs from an uninterrupted run by what decays in "
     "this many bars)"},
    {"features.flush_ms", "QB_FEATURES_FLUSH_MS", QB_CFG_INT, "50", 1, 60000,
     offsetof(feat_cfg_t, flush_ms), 0,
     "longest time effects wait before they are sealed for writing (written once the bus "
     "acknowledged their messages; the consumer goes on meanwhile)"},
    {"features.flush_rows", "QB_FEATURES_FLUSH_ROWS", QB_CFG_INT, "5000", 1, 1000000,
     offsetof(feat_cfg_t, flush_rows), 0, "rows (features + signals) per write"},
    {"features.reload_ms", "QB_FEATURES_RELOAD_MS", QB_CFG_INT, "1000", 10, 3600000,
     offsetof(feat_cfg_t, reload_ms), 0, "how often the strategies table is checked for changes"},
    {"features.cache_ttl_s", "QB_FEATURES_CACHE_TTL_S", QB_CFG_INT, "600", 1, 86400,
     offsetof(feat_cfg_t, cache_ttl_s), 0, "TTL of the latest feature set per series in Redis"},
    {"features.migrate", "QB_FEATURES_MIGRATE", QB_CFG_BOOL, "true", 1, 0,
     offsetof(feat_cfg_t, migrate), 0, "apply the migrations of QB_SQL_DIR at start"},
    {"features.group", "QB_FEATURES_GROUP", QB_CFG_STRING, "qb-features", 1, 200,
     offsetof(feat_cfg_t, group), 0,
     "consumer group: replicas in one group split the symbols; another group sees every bar "
     "again (a second, independent deployment)"},
    {"features.dedup_margin_ms", "QB_FEATURES_DEDUP_MARGIN_MS", QB_CFG_INT, "10000", 0, 3600000,
     offsetof(feat_cfg_t, dedup_margin_ms), 0,
     "after a restart or an assignment the topics are read back from this long before the "
     "first replayed bar, so what was sent already is not sent twice (clock skew between "
     "producers must be smaller; see feat_dedup.c)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

/* Redis documents of a batch: entry i is "key\0doc\0" (lengths kl, dl). */
typedef struct feat_docs_s {
    struct feat_s *f;
    char **buf;
    size_t *kl, *dl;
    size_t n, cap;
} feat_docs_t;

typedef struct feat_s {
    qb_svc_t *svc;
    const feat_cfg_t *cfg;
    qb_store_t *store;
    qb_cache_t *cache;
    qb_producer_t *producer;
    qb_consumer_t *consumer;
    feat_engine_t *engine;
    feat_batch_t *batch;
    /* sealed: the previous batch, waiting for the producer to acknowledge
     * every message sent up to sealed_seq before it is written; then its
     * taken offsets are stored (see feat_seal) */
    feat_batch_t *sealed, *spare;
    uint64_t sealed_seq, fail_seen;
    qb_offsets_t *sealed_off;
    qb_time_t sealed_at, retry_at;
    int sealed_handed; /* given to the writer */
    feat_docs_t sealed_docs;
    /* the writer thread: writes one batch at a time on its own connection
     * (wstore) and owns `cache`; hand-off under wmu */
    qb_store_t *wstore;
    pthread_t wth;
    int wth_started, wstop;
    pthread_mutex_t wmu;
    pthread_cond_t wcv, wdone_cv;
    enum { FEAT_W_IDLE, FEAT_W_QUEUED, FEAT_W_DONE } wstate;
    qb_err_t wres;
    feat_batch_t *wbatch;
    feat_docs_t *wdocs;
    feat_dedup_t *dedup;
    int64_t strategies_seq;
    qb_time_t first_staged; /* monotonic-ish: when the batch got its first row */
    /* history read for the series being created, reused by its sync */
    const feat_series_t *hist_for;
    qb_time_t hist_before;
    qb_bar_t *hist;
    size_t nhist;
    const char *trace; /* of the bar being handled */
    qb_err_t sig_err;  /* first error of on_signal for this bar */
    char sig_msg[256];
    qb_counter_t *c_bars, *c_dups, *c_features, *c_signals, *c_flushes, *c_warmups, *c_cmds;
    qb_hist_t *h_flush;
} feat_t;

/* ---- warm-up --------------------------------------------------------------- */

static void feat_hist_drop(feat_t *f) {
    free(f->hist);
    f->hist = NULL;
    f->nhist = 0;
    f->hist_for = NULL;
}

static qb_err_t feat_history(void *opaque, const feat_series_t *s, qb_time_t before,
                             qb_bar_t **bars, size_t *n, char *errstr, size_t errstr_size) {
    feat_t *f = opaque;
    if (f->hist_for == s && f->hist_before == before) {
        /* Hand over the copy read when the series was made. */
        *bars = f->hist;
        *n = f->nhist;
        f->hist = NULL;
        f->nhist = 0;
        f->hist_for = NULL;
        return QB_OK;
    }
    return feat_store_history(f->store, s->symbol, s->timeframe, before, f->cfg->warmup_bars,
                              bars, n, errstr, errstr_size);
}

static qb_err_t feat_state(void *opaque, const char *strategy_id, const char *symbol,
                           int64_t *change_seq, char **json, char *errstr, size_t errstr_size) {
    feat_t *f = opaque;
    return feat_store_state(f->store, strategy_id, symbol, change_seq, json, errstr,
                            errstr_size);
}

/* ---- outputs --------------------------------------------------------------- */

static qb_err_t feat_publish_features(feat_t *f, const feat_series_t *s, const qb_bar_t *bar) {
    char name[128], event_id[QB_UUID_STRLEN];
    int nl = snprintf(name, sizeof name, "%s|%s|%lld", s->symbol, s->timeframe,
                      (long long)s->last_ts);
    qb_uuid_v5(FEAT_EVENT_NS, name, (size_t)nl, event_id);
    if (feat_dedup_sent(f->dedup, FEAT_DEDUP_FEATURES, event_id)) return QB_OK; /* on it */
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = event_id;
    h.event_time = s->last_ts;
    h.produced_time = qb_time_now();
    h.producer = "qb-features";
    h.trace_id = (char *)(f->trace ? f->trace : "");
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__FeatureSet fs = QB__V1__FEATURE_SET__INIT;
    Qb__V1__FeatureSet__ValuesEntry ent[FEAT_MAX_VALUES];
    Qb__V1__FeatureSet__ValuesEntry *ents[FEAT_MAX_VALUES];
    size_t n = 0;
    for (int i = 0; i < s->nvals; i++) {
        if (!isfinite(s->vals[i])) continue; /* still warming up */
        qb__v1__feature_set__values_entry__init(&ent[n]);
        ent[n].key = (char *)feat_engine_value_name(f->engine, i);
        ent[n].value = s->vals[i];
        ents[n] = &ent[n];
        n++;
    }
    Qb__V1__Bar pb = QB__V1__BAR__INIT;
    pb.symbol = (char *)bar->symbol.s;
    pb.timeframe = (char *)bar->timeframe;
    pb.ts = bar->ts;
    pb.open = bar->open;
    pb.high = bar->high;
    pb.low = bar->low;
    pb.close = bar->close;
    pb.volume = bar->volume;
    fs.header = &h;
    fs.symbol = (char *)s->symbol;
    fs.timeframe = (char *)s->timeframe;
    fs.ts = s->last_ts;
    fs.n_values = n;
    fs.values = ents;
    fs.bar = &pb;
    fs.history_bars = (uint32_t)(s->bars > UINT32_MAX ? UINT32_MAX : s->bars);
    qb_err_t e = qb_producer_send_msg(f->producer, "features", s->symbol, strlen(s->symbol),
                                      &fs.base, h.trace_id);
    if (!e) qb_counter_inc(f->c_features);
    return e;
}

static void feat_on_signal(void *opaque, feat_inst_t *in, const qb_signal_t *sig) {
    feat_t *f = opaque;
    char id[QB_UUID_STRLEN];
    qb_err_t e = qb_strategy_signal_id(in->id, in->account, sig->symbol.s, sig->timeframe,
                                       sig->bar_ts, id);
    if (e) {
        QB_WARN("strategy %s: no signal id (%s): signal dropped", in->id, qb_err_str(e));
        return;
    }
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = id;
    h.event_time = sig->bar_ts;
    h.produced_time = qb_time_now();
    h.producer = "qb-features";
    h.trace_id = (char *)(f->trace ? f->trace : "");
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__Signal ps = QB__V1__SIGNAL__INIT;
    ps.header = &h;
    ps.signal_id = id;
    ps.account = in->account;
    ps.strategy_id = in->id;
    ps.symbol = (char *)sig->symbol.s;
    ps.timeframe = (char *)sig->timeframe;
    ps.direction = (Qb__V1__SignalDirection)sig->direction;
    ps.confidence = sig->confidence;
    if (sig->has_target_weight) {
        ps.sizing_case = QB__V1__SIGNAL__SIZING_TARGET_WEIGHT;
        ps.target_weight = sig->target_weight;
    }
    ps.stop_distance = sig->stop_distance;
    ps.reason = (char *)sig->reason;
    ps.reference_price = sig->reference_price;
    ps.bar_ts = sig->bar_ts;
    e = feat_dedup_sent(f->dedup, FEAT_DEDUP_SIGNALS, id)
            ? QB_OK /* on the topic already: the row only */
            : qb_producer_send_msg(f->producer, "signals", in->account, strlen(in->account),
                                   &ps.base, h.trace_id);
    if (!e) e = feat_batch_signal(f->batch, id, in, sig);
    if (e && !f->sig_err) {
        f->sig_err = e;
        snprintf(f->sig_msg, sizeof f->sig_msg, "signal %s of %s: %s", id, in->id,
                 qb_err_str(e));
    }
    if (!e) {
        qb_counter_inc(f->c_signals);
        QB_INFO("signal %s %s %s %s: %s (%s)", in->id, sig->symbol.s, sig->timeframe,
                qb_signal_dir_name(sig->direction), id, sig->reason);
    }
}

/* ---- flush ------------------------------------------------------------------ */

static void feat_stage_state(feat_series_t *s, void *opaque) {
    feat_t *f = opaque;
    for (size_t i = 0; i < s->ninst; i++)
        if (s->inst[i].dirty && feat_batch_state(f->batch, &s->inst[i], s) == QB_OK)
            s->inst[i].dirty = 0;
}

/* The changed series' latest values for Redis (feat_docs_t), collected on
 * the consumer thread when a batch is sealed (the engine is that thread's)
 * and sent by the writer as ONE pipeline per batch (a round trip per series
 * cost more than the rest of the flush). */

static void feat_docs_clear(feat_docs_t *d) {
    for (size_t i = 0; i < d->n; i++) free(d->buf[i]);
    d->n = 0;
}

static void feat_docs_free(feat_docs_t *d) {
    feat_docs_clear(d);
    free(d->buf);
    free(d->kl);
    free(d->dl);
    memset(d, 0, sizeof *d);
}

static void feat_cache_series(feat_series_t *s, void *opaque) {
    feat_docs_t *d = opaque;
    if (!s->dirty) return;
    s->dirty = 0;
    if (!d->f->cache) return;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        char **nb = realloc(d->buf, nc * sizeof *nb);
        if (nb) d->buf = nb;
        size_t *nk = realloc(d->kl, nc * sizeof *nk);
        if (nk) d->kl = nk;
        size_t *nd = realloc(d->dl, nc * sizeof *nd);
        if (nd) d->dl = nd;
        if (!nb || !nk || !nd) return; /* only a cache: the next bar sets it */
        d->cap = nc;
    }
    char *vals = feat_values_json(d->f->engine, s);
    if (!vals) return;
    size_t vl = strlen(vals), cap = vl + 192;
    char *b = malloc(cap);
    if (b) {
        int kl = snprintf(b, cap, "qb:features:%s:%s", s->symbol, s->timeframe);
        int dl = snprintf(b + kl + 1, cap - (size_t)kl - 1,
                          "{\"ts\":%lld,\"history_bars\":%lld,\"values\":%s}",
                          (long long)s->last_ts, (long long)s->bars, vals);
        d->buf[d->n] = b;
        d->kl[d->n] = (size_t)kl;
        d->dl[d->n] = (size_t)dl;
        d->n++;
    }
    free(vals);
}

/* Writer thread: send the documents (chunks of FEAT_CACHE_CHUNK). Redis
 * only caches: an outage is counted by qb_cache, not fatal. */
#define FEAT_CACHE_CHUNK 512
static void feat_docs_send(feat_t *f, feat_docs_t *d) {
    static const char *argv[FEAT_CACHE_CHUNK][5]; /* the writer thread's */
    static size_t lens[FEAT_CACHE_CHUNK][5];
    static qb_cache_cmd_t cmds[FEAT_CACHE_CHUNK];
    static redisReply *replies[FEAT_CACHE_CHUNK];
    char ttl[24], err[256];
    snprintf(ttl, sizeof ttl, "%lld", (long long)(f->cfg->cache_ttl_s * 1000));
    for (size_t at = 0; f->cache && at < d->n;) {
        int n = 0;
        for (; at < d->n && n < FEAT_CACHE_CHUNK; at++, n++) {
            char *b = d->buf[at];
            const char *av[5] = {"SET", b, b + d->kl[at] + 1, "PX", ttl};
            size_t al[5] = {3, d->kl[at], d->dl[at], 2, strlen(ttl)};
            memcpy(argv[n], av, sizeof av);
            memcpy(lens[n], al, sizeof al);
            cmds[n] = (qb_cache_cmd_t){5, argv[n], lens[n]};
        }
        if (qb_cache_pipeline(f->cache, n, cmds, replies, err, sizeof err) == QB_OK)
            for (int i = 0; i < n; i++)
                if (replies[i]) freeReplyObject(replies[i]);
    }
    feat_docs_clear(d);
}

/* Write a batch (features, signals, states), then its series' documents to
 * Redis: on the writer thread, with its own PostgreSQL connection, so bars
 * go on being computed and published meanwhile. The producer must have
 * acknowledged the batch's messages first: a stored feature row makes a
 * restart skip its bar (warm-up through what is durable), so it must never
 * exist without the bar's FeatureSet and signals on their topics. On error
 * nothing is written and batch and documents are kept for the retry. */
static qb_err_t feat_write(feat_t *f, feat_batch_t *b, feat_docs_t *d) {
    char errstr[1024];
    qb_err_t e = feat_batch_flush(b, f->wstore, errstr, sizeof errstr); /* none: no-op */
    if (e) {
        QB_WARN("flush: %s: retried", errstr);
        return e;
    }
    feat_docs_send(f, d);
    return QB_OK;
}

static void *feat_writer_main(void *opaque) {
    feat_t *f = opaque;
    pthread_mutex_lock(&f->wmu);
    for (;;) {
        while (!f->wstop && f->wstate != FEAT_W_QUEUED) pthread_cond_wait(&f->wcv, &f->wmu);
        if (f->wstate != FEAT_W_QUEUED) break; /* stopping, nothing queued */
        feat_batch_t *b = f->wbatch;
        feat_docs_t *d = f->wdocs;
        pthread_mutex_unlock(&f->wmu);
        qb_err_t e = feat_write(f, b, d);
        pthread_mutex_lock(&f->wmu);
        f->wres = e;
        f->wstate = FEAT_W_DONE;
        pthread_cond_broadcast(&f->wdone_cv);
    }
    pthread_mutex_unlock(&f->wmu);
    return NULL;
}

/* Consumer thread: hand a batch to the writer (it is idle). */
static void feat_job_start(feat_t *f, feat_batch_t *b, feat_docs_t *d) {
    pthread_mutex_lock(&f->wmu);
    f->wbatch = b;
    f->wdocs = d;
    f->wstate = FEAT_W_QUEUED;
    pthread_cond_signal(&f->wcv);
    pthread_mutex_unlock(&f->wmu);
}

/* 1 when the handed batch is written or failed (*res; the writer is idle
 * again), 0 while it is being written; wait = block until it is done. */
static int feat_job_done(feat_t *f, int wait, qb_err_t *res) {
    pthread_mutex_lock(&f->wmu);
    while (wait && f->wstate == FEAT_W_QUEUED) pthread_cond_wait(&f->wdone_cv, &f->wmu);
    int done = f->wstate == FEAT_W_DONE;
    if (done) {
        *res = f->wres;
        f->wstate = FEAT_W_IDLE;
    }
    pthread_mutex_unlock(&f->wmu);
    return done;
}

/* Write b and d on the writer and wait for it (the writer is idle). */
static qb_err_t feat_job_run(feat_t *f, feat_batch_t *b, feat_docs_t *d) {
    qb_err_t e = QB_OK;
    feat_job_start(f, b, d);
    (void)feat_job_done(f, 1, &e);
    return e;
}

/* The sealed batch is durable: let its offsets be committed; recycle it. */
static void feat_sealed_done(feat_t *f) {
    qb_err_t e = qb_consumer_store_taken(f->consumer, f->sealed_off);
    if (e) QB_WARN("flush: offsets not stored (%s): those bars are replayed", qb_err_str(e));
    f->sealed_off = NULL;
    f->spare = f->sealed;
    f->sealed = NULL;
    f->sealed_handed = 0;
    qb_counter_inc(f->c_flushes);
    qb_hist_observe(f->h_flush, (double)(qb_time_now() - f->sealed_at) / 1e9);
}

/* Make everything handled so far durable, then let its offsets commit;
 * waits for the producer and the writer (revoke, exit, a failed bar). */
static qb_err_t feat_flush(feat_t *f);
static qb_err_t feat_flush(feat_t *f) {
    feat_engine_each(f->engine, feat_stage_state, f);
    if (!f->sealed && feat_batch_rows(f->batch) == 0 && qb_consumer_pending(f->consumer) == 0)
        return QB_OK;
    qb_time_t t0 = qb_time_now();
    qb_err_t e = qb_producer_flush(f->producer, 30000);
    if (e) {
        QB_WARN("flush: producer not acknowledged (%s): retried", qb_err_str(e));
        return e;
    }
    f->fail_seen = qb_producer_failures(f->producer);
    if (f->sealed) {
        e = QB_ERR_IO;
        if (f->sealed_handed) (void)feat_job_done(f, 1, &e);
        f->sealed_handed = 0;
        /* not handed yet, or its write failed: once more, now */
        if (e && (e = feat_job_run(f, f->sealed, &f->sealed_docs))) return e;
        feat_sealed_done(f);
    }
    feat_docs_t d = {.f = f};
    feat_engine_each(f->engine, feat_cache_series, &d);
    e = feat_job_run(f, f->batch, &d);
    feat_docs_free(&d);
    if (e) return e;
    e = qb_consumer_store_pending(f->consumer);
    qb_counter_inc(f->c_flushes);
    qb_hist_observe(f->h_flush, (double)(qb_time_now() - t0) / 1e9);
    f->first_staged = 0;
    return e;
}

/* The flush cadence without waiting: seal the batch (its decision states
 * staged, its series' Redis documents built, the producer's sequence and
 * the consumer's deferred offsets taken) and go on with a new one;
 * feat_sealed_poll hands it to the writer once the producer has
 * acknowledged every message up to the seal. One sealed batch at a time:
 * the live one grows meanwhile. */
static void feat_seal(feat_t *f) {
    if (f->sealed) return;
    if (!f->spare && !(f->spare = feat_batch_new())) return;
    feat_engine_each(f->engine, feat_stage_state, f);
    if (feat_batch_rows(f->batch) == 0 && qb_consumer_pending(f->consumer) == 0) return;
    feat_engine_each(f->engine, feat_cache_series, &f->sealed_docs);
    f->sealed_off = qb_consumer_pending_take(f->consumer); /* NULL: stays pending */
    f->sealed_seq = qb_producer_sent_seq(f->producer);
    f->sealed = f->batch;
    f->batch = f->spare;
    f->spare = NULL;
    f->sealed_at = qb_time_now();
    f->first_staged = 0;
}

static void feat_sealed_poll(feat_t *f) {
    if (!f->sealed) return;
    /* The bus or the database is slow or away: stop running ahead of it
     * (bounded memory; the blocking flush reports what does not arrive). */
    int behind = (int64_t)feat_batch_rows(f->batch) >= 4 * f->cfg->flush_rows ||
                 qb_time_now() - f->sealed_at > 30 * QB_NS_PER_SEC;
    if (f->sealed_handed) {
        qb_err_t e = QB_OK;
        if (!feat_job_done(f, behind, &e)) return;
        if (e) { /* logged by the writer; handed again after a pause */
            f->sealed_handed = 0;
            f->retry_at = qb_time_now() + 200 * QB_NS_PER_MS;
            if (behind) (void)feat_flush(f);
            return;
        }
        feat_sealed_done(f);
        return;
    }
    if (qb_producer_done_seq(f->producer) < f->sealed_seq) {
        if (behind) (void)feat_flush(f);
        return;
    }
    uint64_t fails = qb_producer_failures(f->producer);
    if (fails != f->fail_seen) { /* as before: the next round stores what follows */
        QB_WARN("flush: %llu message(s) not delivered: retried",
                (unsigned long long)(fails - f->fail_seen));
        f->fail_seen = fails;
        return;
    }
    if (qb_time_now() < f->retry_at) return;
    feat_job_start(f, f->sealed, &f->sealed_docs);
    f->sealed_handed = 1;
}

static void feat_revoked(void *opaque, const void *parts) {
    feat_t *f = opaque;
    if (feat_flush(f) != QB_OK) QB_WARN("revoke: flush failed: the next owner replays");
    const qb_topic_t *bars = qb_topic_get(QB_TOPIC_MD_BARS);
    for (int i = 0; i < qb_consumer_revoked_count(parts); i++) {
        if (!bars || strcmp(qb_consumer_revoked_topic(parts, i), bars->name) != 0) continue;
        feat_dedup_forget(f->dedup, qb_consumer_revoked_partition(parts, i));
        int n = feat_engine_drop_partition(f->engine, qb_consumer_revoked_partition(parts, i));
        if (n)
            QB_INFO("partition %d revoked: %d series dropped",
                    (int)qb_consumer_revoked_partition(parts, i), n);
    }
}

/* ---- handlers ------------------------------------------------------------- */

static qb_err_t feat_on_bar(feat_t *f, const qb_bus_msg_t *m, char *errstr,
                            size_t errstr_size) {
    const Qb__V1__Bar *pb = (const Qb__V1__Bar *)m->msg;
    qb_bar_t bar;
    memset(&bar, 0, sizeof bar);
    int64_t tf_ns;
    if (qb_symbol_set(&bar.symbol, pb->symbol ? pb->symbol : "", errstr, errstr_size) != QB_OK)
        return QB_ERR_INVALID;
    if (!pb->timeframe || qb_timeframe_parse(pb->timeframe, &tf_ns) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "bar %s: unknown timeframe '%.16s'",
                          bar.symbol.s, pb->timeframe ? pb->timeframe : "");
    snprintf(bar.timeframe, sizeof bar.timeframe, "%s", pb->timeframe);
    bar.ts = pb->ts;
    bar.open = pb->open;
    bar.high = pb->high;
    bar.low = pb->low;
    bar.close = pb->close;
    bar.volume = pb->volume;
    if (qb_bar_validate(&bar, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    qb_counter_inc(f->c_bars);
    feat_dedup_note(f->dedup, m->partition);

    feat_series_t *s = feat_engine_find(f->engine, bar.symbol.s, bar.timeframe);
    qb_time_t before = bar.ts;
    if (!s) {
        /* Warm up through what is durable: the offsets committed may lag
         * the last flush (auto-commit runs every second), so a restart can
         * replay bars whose features, signals and states are already
         * stored. Warm up through the newest stored feature row instead;
         * those replayed bars are then skipped as re-deliveries. */
        qb_time_t durable = 0;
        qb_err_t e = feat_store_durable(f->store, bar.symbol.s, bar.timeframe, &durable, errstr,
                                        errstr_size);
        if (e) return e; /* retried */
        if (durable >= before) before = durable + QB_NS_PER_US;
        qb_bar_t *hist = NULL;
        size_t nhist = 0;
        e = feat_store_history(f->store, bar.symbol.s, bar.timeframe, before,
                               f->cfg->warmup_bars, &hist, &nhist, errstr, errstr_size);
        if (e) return e;
        s = feat_engine_add(f->engine, bar.symbol.s, bar.timeframe, m->partition);
        if (!s) {
            free(hist);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < nhist; i++) feat_series_warm(s, &hist[i]);
        qb_counter_inc(f->c_warmups);
        QB_INFO("series %s %s: warmed up with %zu stored bars", s->symbol, s->timeframe, nhist);
        feat_hist_drop(f);
        f->hist = hist;
        f->nhist = nhist;
        f->hist_for = s;
        f->hist_before = before;
    }
    /* Instances in line with the strategies table: new ones warm up with
     * the bars before this one (or the history the series was just made
     * with, which may reach further: see above). */
    if (f->hist_for != s) before = bar.ts;
    qb_err_t e = feat_series_sync(f->engine, s, before, feat_history, feat_state, f, errstr,
                                  errstr_size);
    feat_hist_drop(f);
    if (e) return e;
    if (s->last_ts && bar.ts <= s->last_ts) {
        qb_counter_inc(f->c_dups);
        return QB_OK; /* re-delivered: its effects exist */
    }
    /* What this bar sends may be on the topics already (a replay). */
    if ((e = feat_dedup_prepare(f->dedup, m->partition, m->timestamp_ms, errstr, errstr_size)))
        return e;
    f->trace = m->trace_id;
    f->sig_err = QB_OK;
    feat_series_apply(s, &bar, feat_on_signal, f);
    e = feat_publish_features(f, s, &bar);
    if (!e) e = feat_batch_feature(f->batch, f->engine, s);
    if (!e && f->sig_err) {
        e = f->sig_err;
        snprintf(errstr, errstr_size, "%s", f->sig_msg);
    }
    f->trace = NULL;
    if (e) {
        /* The series moved on but an output was not queued. Make what is
         * staged durable (this bar's rows included), then forget the
         * series: the retry warms it up again from md.bars and its saved
         * states, and redoes this bar. */
        if (!errstr[0]) snprintf(errstr, errstr_size, "%s", qb_err_str(e));
        (void)feat_flush(f);
        feat_engine_remove(f->engine, s);
        return e == QB_ERR_NOMEM ? e : QB_ERR_UNAVAILABLE;
    }
    if (!f->first_staged) f->first_staged = qb_time_now();
    return QB_OK;
}

static qb_err_t feat_on_control(feat_t *f, const qb_bus_msg_t *m, char *errstr,
                                size_t errstr_size) {
    const Qb__V1__Command *cmd = (const Qb__V1__Command *)m->msg;
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_ENABLE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_DISABLE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_SET_PARAMS: break;
    default: return QB_OK; /* not for qb-features */
    }
    const char *target = cmd->target ? cmd->target : "";
    if (*target && strcmp(target, "qb-features") != 0 && strcmp(target, "*") != 0)
        return QB_OK;
    qb_err_t e = feat_store_apply_command(f->store, cmd, errstr, errstr_size);
    qb_counter_inc(f->c_cmds);
    if (e)
        QB_WARN("command %s: %s%s", cmd->command_id ? cmd->command_id : "", errstr,
                qb_err_is_retriable(e) ? " (will retry)" : " (dead-lettered)");
    else
        QB_INFO("command %s (%d) for strategy %s applied", cmd->command_id ? cmd->command_id : "",
                (int)cmd->kind, cmd->strategy && cmd->strategy->strategy_id
                                    ? cmd->strategy->strategy_id : "");
    return e;
}

static qb_err_t feat_handle(const qb_bus_msg_t *m, void *opaque, char *errstr,
                            size_t errstr_size) {
    feat_t *f = opaque;
    const qb_topic_t *bars = qb_topic_get(QB_TOPIC_MD_BARS);
    if (bars && strcmp(m->topic, bars->name) == 0) return feat_on_bar(f, m, errstr, errstr_size);
    return feat_on_control(f, m, errstr, errstr_size);
}

/* ---- strategies ------------------------------------------------------------ */

static qb_err_t feat_reload(feat_t *f, int force) {
    char errstr[512];
    int64_t seq = 0;
    qb_err_t e = feat_store_strategies_seq(f->store, &seq, errstr, sizeof errstr);
    if (e) return e;
    if (!force && seq == f->strategies_seq) return QB_OK;
    feat_sdef_t *defs = NULL;
    size_t n = 0;
    if ((e = feat_store_strategies(f->store, &defs, &n, errstr, sizeof errstr))) return e;
    feat_engine_set_strategies(f->engine, defs, n);
    f->strategies_seq = seq;
    QB_INFO("strategies: %zu enabled (change %lld)", n, (long long)seq);
    return QB_OK;
}

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv) {
    static feat_cfg_t cfg;
    static feat_t f;
    static const char about[] =
        "The features service: consumes md.bars (group qb-features; replicas split the\n"
        "symbols), computes the feature indicators of every series and publishes a FeatureSet\n"
        "per bar on `features`, runs the enabled strategies of features.strategies and\n"
        "publishes their signals on `signals`; stores features, signals and strategy states\n"
        "in PostgreSQL and the latest feature set per series in Redis. Strategies are changed\n"
        "with STRATEGY_* commands on `control`. Admin port: /healthz, /readyz, /metrics.";
    char errstr[1024];
    int rc = 0;
    f.svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-features", .about = about, .admin_port = 9102,
                                       .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG |
                                                QB_SVC_NEEDS_REDIS,
                                       .table = feat_cfg_entries, .cfg = &cfg},
                       argc, argv, &rc);
    if (!f.svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(f.svc);
    f.cfg = &cfg;
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    if (!(f.engine = feat_engine_new(cfg.indicators, errstr, sizeof errstr))) {
        QB_ERROR("QB_FEATURES_INDICATORS: %s", errstr);
        goto out;
    }
    if (!(f.batch = feat_batch_new()) || !(f.dedup = feat_dedup_new(cfg.dedup_margin_ms)))
        goto out;
    if (!(f.store = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (!(f.wstore = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (com->redis_url && *com->redis_url &&
        !(f.cache = qb_cache_new(com->redis_url, errstr, sizeof errstr))) {
        QB_ERROR("QB_REDIS_URL: %s", errstr);
        goto out;
    }
    if (!(f.producer = qb_producer_new(errstr, sizeof errstr)) ||
        qb_producer_track_delivery(f.producer) != QB_OK) {
        QB_ERROR("producer: %s", f.producer ? "out of memory" : errstr);
        goto out;
    }
    f.c_bars = qb_metrics_counter("qb_features_bars_total", "bars applied or skipped", NULL);
    f.c_dups = qb_metrics_counter("qb_features_redelivered_total",
                                  "bars not after their series' last one (skipped)", NULL);
    f.c_features = qb_metrics_counter("qb_features_featuresets_total", "FeatureSets queued", NULL);
    f.c_signals = qb_metrics_counter("qb_features_signals_total", "signals queued", NULL);
    f.c_flushes = qb_metrics_counter("qb_features_flushes_total", "batches made durable", NULL);
    f.c_warmups = qb_metrics_counter("qb_features_warmups_total", "series warmed up", NULL);
    f.c_cmds = qb_metrics_counter("qb_features_commands_total", "STRATEGY_* commands handled",
                                  NULL);
    f.h_flush = qb_metrics_histogram("qb_features_flush_seconds",
                                     "seal to durable: producer acks + database write + offset "
                                     "store", NULL);
    f.sealed_docs.f = &f;
    pthread_mutex_init(&f.wmu, NULL);
    pthread_cond_init(&f.wcv, NULL);
    pthread_cond_init(&f.wdone_cv, NULL);
    if (pthread_create(&f.wth, NULL, feat_writer_main, &f) != 0) {
        QB_ERROR("cannot start the writer thread");
        goto out;
    }
    f.wth_started = 1;
    rc = 1;
    if (qb_svc_migrate(f.svc, f.store, cfg.migrate)) goto out;
    while (qb_svc_running(f.svc) && feat_reload(&f, 1) != QB_OK) usleep(500 * 1000);
    const char *topics[] = {"md.bars", "control"};
    f.consumer = qb_consumer_new(cfg.group, topics, 2, feat_handle, &f, errstr, sizeof errstr);
    if (!f.consumer) {
        QB_ERROR("consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    qb_consumer_set_deferred_store(f.consumer, 1);
    qb_consumer_set_revoke_cb(f.consumer, feat_revoked, &f);
    QB_INFO("qb-features ready: %d feature values per series, admin port %d",
            feat_engine_num_values(f.engine), qb_svc_admin_port(f.svc));

    rc = 0;
    qb_time_t next_reload = qb_time_now() + cfg.reload_ms * 1000000LL;
    while (qb_svc_running(f.svc)) {
        qb_err_t pe = qb_consumer_poll(f.consumer, 20);
        if (pe == QB_ERR_KAFKA) {
            QB_ERROR("consumer failed fatally");
            rc = 1;
            break;
        }
        qb_time_t now = qb_time_now();
        int idle = pe == QB_ERR_TIMEOUT;
        if ((int64_t)feat_batch_rows(f.batch) >= cfg.flush_rows ||
            (f.first_staged && now - f.first_staged >= cfg.flush_ms * 1000000LL) ||
            (idle && (feat_batch_rows(f.batch) || qb_consumer_pending(f.consumer))))
            feat_seal(&f);
        qb_producer_poll(f.producer, 0);
        feat_sealed_poll(&f);
        if (now >= next_reload) {
            if (feat_reload(&f, 0) != QB_OK) QB_WARN("strategies: reload failed (retried)");
            next_reload = now + cfg.reload_ms * 1000000LL;
        }
        qb_producer_poll(f.producer, 0);
    }
    QB_INFO("qb-features stopping");
    if (feat_flush(&f) != QB_OK) QB_WARN("final flush failed: the next start replays");
out:
    if (f.consumer) {
        if (qb_consumer_close(f.consumer) != QB_OK) QB_WARN("consumer: close timed out");
        qb_consumer_destroy(f.consumer);
    }
    if (f.producer && qb_producer_flush(f.producer, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    if (f.wth_started) { /* idle: every flush above waited for it */
        pthread_mutex_lock(&f.wmu);
        f.wstop = 1;
        pthread_cond_signal(&f.wcv);
        pthread_mutex_unlock(&f.wmu);
        pthread_join(f.wth, NULL);
        pthread_cond_destroy(&f.wdone_cv);
        pthread_cond_destroy(&f.wcv);
        pthread_mutex_destroy(&f.wmu);
    }
    qb_svc_destroy(f.svc);
    qb_producer_destroy(f.producer);
    qb_cache_destroy(f.cache);
    qb_store_destroy(f.wstore);
    qb_store_destroy(f.store);
    feat_docs_free(&f.sealed_docs);
    feat_hist_drop(&f);
    feat_batch_free(f.batch);
    feat_batch_free(f.sealed);
    feat_batch_free(f.spare);
    qb_offsets_free(f.sealed_off);
    feat_dedup_destroy(f.dedup);
    feat_engine_destroy(f.engine);
    return rc;
}
