/* qb_md_publish.h — bars onto the bus (topic md.bars, key = symbol) and the
 * latest bar per symbol into Redis.
 *
 * Event ids are deterministic: UUID v5 in the Quantbus bar namespace of
 * "SYMBOL|TIMEFRAME|TS" (TS = open time in ns, decimal). Publishing the same
 * stored bar again (after a crash between the database commit and the
 * publish, or in a replay) gives the same event id, so consumers that
 * de-duplicate by event id see it once.
 *
 * Redis (optional, NULL to skip): hash "qb:md:last:SYMBOL:TIMEFRAME" with
 * fields ts (ns), ts_ms, open, high, low, close, volume (decimal text) and
 * source; written by a script that only replaces an older bar, so a replay of
 * history never overwrites the live latest. Redis being down is counted
 * (qb_md_redis_errors_total) and logged once per outage, never an error of
 * the publish: Redis only caches what PostgreSQL holds. */
#ifndef QB_MD_PUBLISH_H
#define QB_MD_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "core/qb_types.h"

/* The namespace of bar event ids (a fixed random UUID, never to change). */
#define QB_MD_BAR_ID_NS "5f0c6a4e-3b1d-4e8a-9a57-2d6f1c0b7e93"

/* The deterministic event id of a bar. */
void qb_md_bar_event_id(const qb_bar_t *bar, char out[37]);

/* The md.bars payload of `bar` (a qb.v1.Bar with its Header: event_id,
 * event_time = bar->ts, produced_time, producer, trace_id, schema_version;
 * and `source`) into out[0..cap): byte for byte what protobuf-c's pack
 * gives, without its cost. Returns the length, or 0 when it cannot (cap too
 * small, a string over 128 bytes, or generated code with fields this
 * encoder does not know): pack with protobuf-c then. */
size_t qb_md_bar_pack(const qb_bar_t *bar, const char *event_id, int64_t produced_time,
                      const char *producer, const char *trace_id, const char *source,
                      uint8_t *out, size_t cap);

/* Queue every bar on md.bars (time order per symbol is the caller's order;
 * one trace id for the whole call)
 * and update Redis with each symbol's last bar of the batch. `source` goes
 * into Bar.source, `producer` into the header. QB_OK means queued: call
 * qb_producer_flush() before recording the batch as published. */
qb_err_t qb_md_publish_bars(qb_producer_t *p, qb_cache_t *cache, const qb_bar_t *bars,
                            size_t n, const char *source, const char *producer,
                            char *errstr, size_t errstr_size);

/* Publish a batch that was just committed to PostgreSQL and wait (up to
 * flush_ms) for the broker's acks: the ingest pipeline's publish hook
 * (qb_md_ingest_opts_t.committed_cb) for qb-data and qbctl import. On
 * failure errstr says the batch is stored but not all published, and that
 * running the same ingest again re-publishes it (same event ids). */
qb_err_t qb_md_publish_committed(qb_producer_t *p, qb_cache_t *cache, const qb_bar_t *bars,
                                 size_t n, const char *source, const char *producer,
                                 int flush_ms, char *errstr, size_t errstr_size);

#endif
