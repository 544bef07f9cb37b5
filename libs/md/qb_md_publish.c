/* qb_md_publish.c — see qb_md_publish.h. Owns nothing between calls. */
#include "md/qb_md_publish.h"

#include <hiredis.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "proto/qb_proto.h"

/* ---- bar event ids ----------------------------------------------------------
 * qb_uuid_v5 of the name, computed here without its per-call costs (parsing
 * the namespace, an implicit digest fetch, a new OpenSSL context): SHA-1
 * of the namespace bytes and the name through a context the caller reuses
 * for a whole batch. test_md_publish checks it against qb_uuid_v5. */

/* QB_MD_BAR_ID_NS as bytes */
static const uint8_t md_bar_ns[16] = {0x5f, 0x0c, 0x6a, 0x4e, 0x3b, 0x1d, 0x4e, 0x8a,
                                      0x9a, 0x57, 0x2d, 0x6f, 0x1c, 0x0b, 0x7e, 0x93};

static EVP_MD *md_sha1;
static pthread_once_t md_sha1_once = PTHREAD_ONCE_INIT;

/* Fetched once for the process (never freed). */
static void md_sha1_fetch(void) {
    md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    QB_ASSERT(md_sha1 != NULL);
}

/* "SYMBOL|TIMEFRAME|TS" into buf (>= 64 bytes); returns its length. */
static size_t md_bar_id_name(const qb_bar_t *bar, char *buf) {
    size_t o = 0;
    for (const char *p = bar->symbol.s; *p && o < QB_SYMBOL_MAX; p++) buf[o++] = *p;
    buf[o++] = '|';
    for (size_t i = 0; bar->timeframe[i] && i < QB_TIMEFRAME_MAX; i++) buf[o++] = bar->timeframe[i];
    buf[o++] = '|';
    char tmp[24];
    size_t n = 0;
    uint64_t u = bar->ts < 0 ? (uint64_t)0 - (uint64_t)bar->ts : (uint64_t)bar->ts;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (bar->ts < 0) buf[o++] = '-';
    while (n) buf[o++] = tmp[--n];
    return o;
}

/* The event id of `bar` with the reusable digest context ctx. */
static void md_bar_event_id_ctx(EVP_MD_CTX *ctx, const qb_bar_t *bar, char out[37]) {
    char msg[sizeof md_bar_ns + 64]; /* the namespace, then the name */
    memcpy(msg, md_bar_ns, sizeof md_bar_ns);
    size_t n = sizeof md_bar_ns + md_bar_id_name(bar, msg + sizeof md_bar_ns);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_DigestInit_ex2(ctx, md_sha1, NULL) == 1 &&
             EVP_DigestUpdate(ctx, msg, n) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1;
    QB_ASSERT(ok && len == 20);
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    qb_uuid_format(md, out);
}

static EVP_MD_CTX *md_id_ctx_new(void) {
    pthread_once(&md_sha1_once, md_sha1_fetch);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    QB_ASSERT(ctx != NULL);
    return ctx;
}

void qb_md_bar_event_id(const qb_bar_t *bar, char out[37]) {
    EVP_MD_CTX *ctx = md_id_ctx_new();
    md_bar_event_id_ctx(ctx, bar, out);
    EVP_MD_CTX_free(ctx);
}

/* ---- the md.bars payload ---------------------------------------------------
 * protobuf's wire format written directly (no size pass, no descriptor
 * walk): what protobuf-c's pack gives for proto3 — fields in number order,
 * a zero number or empty string left out, the header as a length-delimited
 * field whenever present. test_md_publish compares the bytes with
 * protobuf-c's for many bars. Guarded by the generated descriptors' field
 * counts: a Bar or Header with new fields falls back to protobuf-c. */

#define MD_PB_HEADER_FIELDS 6
#define MD_PB_BAR_FIELDS 10
#define MD_PB_STR_MAX 128 /* longer strings (a long source name): protobuf-c */

static uint8_t *md_pb_varint(uint8_t *o, uint64_t v) {
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static uint8_t *md_pb_i64(uint8_t *o, unsigned field, int64_t v) {
    if (v == 0) return o;
    *o++ = (uint8_t)(field << 3); /* varint */
    return md_pb_varint(o, (uint64_t)v);
}

static uint8_t *md_pb_str(uint8_t *o, unsigned field, const char *str, size_t len) {
    if (len == 0) return o;
    *o++ = (uint8_t)(field << 3 | 2); /* length-delimited */
    o = md_pb_varint(o, len);
    memcpy(o, str, len);
    return o + len;
}

static size_t md_pb_vlen(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t md_pb_i64_len(int64_t v) { return v ? 1 + md_pb_vlen((uint64_t)v) : 0; }

static size_t md_strnlen(const char *str, size_t max) { return str ? strnlen(str, max + 1) : 0; }

/* The parts of a batch's payloads that do not change from bar to bar,
 * encoded once. */
typedef struct md_pack_s {
    uint8_t tail[2 * (MD_PB_STR_MAX + 3) + 11]; /* header fields 4-6 */
    size_t tail_len;
    uint8_t src[MD_PB_STR_MAX + 3];             /* Bar field 10 */
    size_t src_len;
} md_pack_t;

/* 0, or -1 when the generated code has fields this encoder does not know
 * or a string is too long: use protobuf-c. */
static int md_pack_init(md_pack_t *c, const char *producer, const char *trace_id,
                        const char *source) {
    if (qb__v1__bar__descriptor.n_fields != MD_PB_BAR_FIELDS ||
        qb__v1__header__descriptor.n_fields != MD_PB_HEADER_FIELDS)
        return -1;
    size_t l_pr = md_strnlen(producer, MD_PB_STR_MAX), l_tr = md_strnlen(trace_id, MD_PB_STR_MAX),
           l_src = md_strnlen(source, MD_PB_STR_MAX);
    if (l_pr > MD_PB_STR_MAX || l_tr > MD_PB_STR_MAX || l_src > MD_PB_STR_MAX) return -1;
    uint8_t *o = c->tail;
    o = md_pb_str(o, 4, producer, l_pr);
    o = md_pb_str(o, 5, trace_id, l_tr);
    o = md_pb_i64(o, 6, QB_PROTO_SCHEMA_VERSION); /* uint32, same varint */
    c->tail_len = (size_t)(o - c->tail);
    c->src_len = (size_t)(md_pb_str(c->src, 10, source, l_src) - c->src);
    return 0;
}

/* The payload of one bar into out (cap >= MD_PACK_CAP); 0 for an event id
 * over 128 bytes or a symbol or timeframe without its NUL. */
#define MD_PACK_CAP 1024
static size_t md_pack_bar(const md_pack_t *c, const qb_bar_t *bar, const char *event_id,
                          int64_t produced_time, uint8_t *out) {
    size_t l_id = md_strnlen(event_id, MD_PB_STR_MAX),
           l_sym = strnlen(bar->symbol.s, sizeof bar->symbol.s),
           l_tf = strnlen(bar->timeframe, sizeof bar->timeframe);
    if (l_id > MD_PB_STR_MAX || l_sym == sizeof bar->symbol.s || l_tf == sizeof bar->timeframe)
        return 0;
    size_t hl = (l_id ? 1 + md_pb_vlen(l_id) + l_id : 0) + md_pb_i64_len(bar->ts) +
                md_pb_i64_len(produced_time) + c->tail_len;
    uint8_t *o = out;
    *o++ = (uint8_t)(1 << 3 | 2);
    o = md_pb_varint(o, hl);
    o = md_pb_str(o, 1, event_id, l_id);
    o = md_pb_i64(o, 2, bar->ts);
    o = md_pb_i64(o, 3, produced_time);
    memcpy(o, c->tail, c->tail_len);
    o += c->tail_len;
    o = md_pb_str(o, 2, bar->symbol.s, l_sym);
    o = md_pb_str(o, 3, bar->timeframe, l_tf);
    o = md_pb_i64(o, 4, bar->ts);
    o = md_pb_i64(o, 5, bar->open);
    o = md_pb_i64(o, 6, bar->high);
    o = md_pb_i64(o, 7, bar->low);
    o = md_pb_i64(o, 8, bar->close);
    o = md_pb_i64(o, 9, bar->volume);
    memcpy(o, c->src, c->src_len);
    o += c->src_len;
    return (size_t)(o - out);
}

size_t qb_md_bar_pack(const qb_bar_t *bar, const char *event_id, int64_t produced_time,
                      const char *producer, const char *trace_id, const char *source,
                      uint8_t *out, size_t cap) {
    md_pack_t c;
    uint8_t buf[MD_PACK_CAP];
    if (md_pack_init(&c, producer, trace_id, source) != 0) return 0;
    size_t n = md_pack_bar(&c, bar, event_id, produced_time, buf);
    if (n == 0 || n > cap) return 0;
    memcpy(out, buf, n);
    return n;
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

/* The protobuf-c way, for what qb_md_bar_pack cannot do. */
static qb_err_t md_send_packed_by_protobuf_c(qb_producer_t *p, const qb_bar_t *b,
                                             const char *event_id, qb_time_t now,
                                             const qb_proto_header_t *batch, const char *source) {
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = (char *)event_id;
    h.event_time = b->ts;
    h.produced_time = now;
    h.producer = (char *)batch->producer;
    h.trace_id = (char *)batch->trace_id;
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
    pb.source = (char *)source;
    return qb_producer_send_msg(p, "md.bars", b->symbol.s, strlen(b->symbol.s), &pb.base,
                                batch->trace_id);
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
    if (n == 0) return QB_OK;
    if (!source) source = "";
    md_pack_t pack;
    int by_hand = md_pack_init(&pack, batch.producer, batch.trace_id, source) == 0;
    EVP_MD_CTX *idctx = md_id_ctx_new();
    for (size_t i = 0; i < n; i++) {
        const qb_bar_t *b = &bars[i];
        char event_id[37];
        md_bar_event_id_ctx(idctx, b, event_id);
        qb_time_t now = qb_time_now();
        uint8_t payload[MD_PACK_CAP];
        size_t len = by_hand ? md_pack_bar(&pack, b, event_id, now, payload) : 0;
        if (len)
            e = qb_producer_send(p, "md.bars", b->symbol.s, strlen(b->symbol.s),
                                 qb__v1__bar__descriptor.name, payload, len, batch.trace_id);
        else
            e = md_send_packed_by_protobuf_c(p, b, event_id, now, &batch, source);
        if (e) {
            EVP_MD_CTX_free(idctx);
            return qb_err_set(errstr, errstr_size, e, "publish %s %s bar %zu of %zu: %s",
                              b->symbol.s, b->timeframe, i, n, qb_err_str(e));
        }
        /* The last bar of each (symbol, timeframe) run in this batch. */
        if (cache && (i + 1 == n || strcmp(bars[i + 1].symbol.s, b->symbol.s) != 0 ||
                      strcmp(bars[i + 1].timeframe, b->timeframe) != 0))
            qb_md_cache_last(cache, b, source);
    }
    EVP_MD_CTX_free(idctx);
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
