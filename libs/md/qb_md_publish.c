/* qb_md_publish.c — see qb_md_publish.h. Owns nothing between calls. */
#include "md/qb_md_publish.h"

#include <hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "proto/qb_proto.h"

void qb_md_bar_event_id(const qb_bar_t *bar, char out[37]) {
    char name[96];
    int n = snprintf(name, sizeof(name), "%s|%s|%" PRId64, bar->symbol.s, bar->timeframe,
                     bar->ts);
    qb_uuid_v5(QB_MD_BAR_ID_NS, name, (size_t)n, out);
}

/* Replace the cached bar only when the incoming one is newer (by ts_ms,
 * which a Lua number holds exactly). */
static const char qb_md_last_lua[] =
    "local cur = redis.call('HGET', KEYS[1], 'ts_ms')\n"
    "if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'ts_ms', ARGV[2], 'open', ARGV[3],\n"
    "  'high', ARGV[4], 'low', ARGV[5], 'close', ARGV[6], 'volume', ARGV[7], 'source', ARGV[8])\n"
    "return 1\n";

static void qb_md_cache_last(qb_cache_t *cache, const qb_bar_t *b, const char *source) {
    static qb_counter_t *errs;
    static int down; /* log once per outage */
    if (!errs)
        errs = qb_metrics_counter("qb_md_redis_errors_total",
                                  "latest-bar writes to Redis that failed", NULL);
    char key[128], ts[24], tsms[24], o[32], h[32], l[32], c[32], v[32], err[256];
    snprintf(key, sizeof(key), "qb:md:last:%s:%s", b->symbol.s, b->timeframe);
    snprintf(ts, sizeof(ts), "%" PRId64, b->ts);
    snprintf(tsms, sizeof(tsms), "%" PRId64, (int64_t)(b->ts / QB_NS_PER_MS));
    qb_dec_format(b->open, o, sizeof(o));
    qb_dec_format(b->high, h, sizeof(h));
    qb_dec_format(b->low, l, sizeof(l));
    qb_dec_format(b->close, c, sizeof(c));
    qb_dec_format(b->volume, v, sizeof(v));
    const char *argv[] = {"EVAL", qb_md_last_lua, "1", key, ts, tsms, o, h, l, c, v,
                          source ? source : ""};
    redisReply *reply = NULL;
    qb_err_t e = qb_cache_command_argv(cache, 12, argv, NULL, &reply, err, sizeof(err));
    if (reply) freeReplyObject(reply);
    if (e) {
        qb_counter_inc(errs);
        if (!down) QB_WARN("latest bar not cached in Redis (%s); PostgreSQL has it", err);
        down = 1;
    } else {
        down = 0;
    }
}

qb_err_t qb_md_publish_bars(qb_producer_t *p, qb_cache_t *cache, const qb_bar_t *bars,
                            size_t n, const char *source, const char *producer,
                            char *errstr, size_t errstr_size) {
    /* One trace per published batch: the batch is one cause. The header is
     * filled by hand: qb_proto_header_init would draw a random event id that
     * the deterministic one replaces anyway. */
    qb_proto_header_t batch;
    qb_err_t e = qb_proto_header_init(&batch, producer, 0, NULL);
    if (e) return qb_err_set(errstr, errstr_size, e, "bad producer name '%s'", producer);
    for (size_t i = 0; i < n; i++) {
        const qb_bar_t *b = &bars[i];
        char event_id[37];
        qb_md_bar_event_id(b, event_id);
        Qb__V1__Header h = QB__V1__HEADER__INIT;
        h.event_id = event_id;
        h.event_time = b->ts;
        h.produced_time = qb_time_now();
        h.producer = batch.producer;
        h.trace_id = batch.trace_id;
        h.schema_version = QB_PROTO_SCHEMA_VERSION;
        Qb__V1__Bar pb = QB__V1__BAR__INIT;
        pb.header = &h;
        pb.symbol = (char *)b->symbol.s;
        pb.timeframe = (char *)b->timeframe;
        pb.ts = b->ts;
        pb.open = b->open;
        pb.high = b->high;
        pb.low = b->low;
        pb.close = b->close;
        pb.volume = b->volume;
        pb.source = (char *)(source ? source : "");
        e = qb_producer_send_msg(p, "md.bars", b->symbol.s, strlen(b->symbol.s), &pb.base,
                                 batch.trace_id);
        if (e)
            return qb_err_set(errstr, errstr_size, e, "publish %s %s bar %zu of %zu: %s",
                              b->symbol.s, b->timeframe, i, n, qb_err_str(e));
        /* The last bar of each (symbol, timeframe) run in this batch. */
        if (cache && (i + 1 == n || strcmp(bars[i + 1].symbol.s, b->symbol.s) != 0 ||
                      strcmp(bars[i + 1].timeframe, b->timeframe) != 0))
            qb_md_cache_last(cache, b, source);
    }
    return QB_OK;
}

qb_err_t qb_md_publish_committed(qb_producer_t *p, qb_cache_t *cache, const qb_bar_t *bars,
                                 size_t n, const char *source, const char *producer,
                                 int flush_ms, char *errstr, size_t errstr_size) {
    qb_err_t e = qb_md_publish_bars(p, cache, bars, n, source, producer, errstr, errstr_size);
    if (!e && (e = qb_producer_flush(p, flush_ms)) != QB_OK)
        qb_err_set(errstr, errstr_size, e,
                   "md.bars: %zu bars stored but not all published (%s); running the same "
                   "ingest again re-publishes them", n, qb_err_str(e));
    return e;
}
