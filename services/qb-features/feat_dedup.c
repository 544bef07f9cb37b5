/* feat_dedup.c — qb-features never puts a FeatureSet or Signal id on its
 * topic twice, even after a kill -9 (issue 11): before it re-sends what a
 * replay of md.bars produces again, it reads its own output back.
 *
 * WHY THERE ARE RE-SENDS. Offsets are committed only after a flush (see
 * main.c), so a restart, or the new owner of a partition whose owner died,
 * replays md.bars from the last committed offset. Bars whose rows are in
 * PostgreSQL are skipped (warm-up through the newest stored row); the
 * others are applied again and produce the same ids (FeatureSet: UUID v5 of
 * symbol|timeframe|ts; Signal: qb_strategy_signal_id), some of which the
 * dead process had already put on `features` / `signals` (the producer
 * sends before the flush writes the rows). Kafka transactions would make
 * this atomic but qb-bus does not support send_offsets_to_transaction.
 *
 * WHICH IDS CAN COME AGAIN. Only outputs of bars that are replayed and not
 * skipped. Let b be the first such bar of md.bars partition p after p was
 * assigned to this process (the first bar of p that reaches
 * feat_dedup_prepare), T0 its Kafka timestamp. Every earlier copy of an
 * output of a bar at or after b was produced by the previous owner of p
 * after it consumed that bar, so its Kafka timestamp (CreateTime, the
 * producer's clock when it sent: qb_producer) is >= that bar's, which is
 * >= T0 as far as timestamps grow with offsets in p (one producer, or
 * producers whose clocks agree). And it was produced BEFORE p was assigned
 * to us: the previous owner was dead (a restart; a session timeout) or
 * gave p up in a rebalance, after flushing. So reading `features` and
 * `signals` from T0 - margin (QB_FEATURES_DEDUP_MARGIN_MS: clock skew and
 * out-of-order timestamps) up to their high watermarks, read after p was
 * assigned (the scan runs at b), finds every id that can be sent twice.
 *
 * WHAT IS DONE WITH THEM. The ids of both topics go to one set (the topic
 * is part of the key). Each FeatureSet and each Signal is looked up on its
 * own before it is sent — not per bar: a FeatureSet and its Signals go to
 * different partitions, a kill can land one and not the other. An id in
 * the set is not sent (its PostgreSQL row is still written: ON CONFLICT
 * absorbs it); any other is sent. Nothing that is NOT on the topic is ever
 * skipped: the set holds only ids read from the topic.
 *
 * SCANS AND THEIR END. The scan of a partition is done once per
 * assignment (feat_dedup_forget on revoke starts over). A scan that
 * started after p's first bar was seen (feat_dedup_note) and from no later
 * than p's T0 - margin covers p as well, so the partitions that a restart
 * assigns share one scan. p needs the set no more once its bars are
 * younger than the scan + margin (a bar sent after the scan was never seen
 * by a previous owner); when no partition needs it, it is freed.
 *
 * Costs: a scan reads what both topics received since T0 - margin; on
 * qb-bus, whose mock cluster has no timestamp lookup, qb_reader_new_since
 * finds the start by a binary search (a few probes per partition).
 * Caveat: an output the PREVIOUS owner still had in flight when it gave p
 * up alive (its revoke flush failed) can land after the scan. */
#include <stdlib.h>
#include <string.h>

#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "feat.h"
#include "qb/v1/market.pb-c.h"
#include "qb/v1/trading.pb-c.h"

#define FEAT_DEDUP_ID_MAX 47 /* longer ids are never looked up: always sent */
#define FEAT_DEDUP_SCAN_S 120

typedef struct feat_dedup_slot_s {
    char id[FEAT_DEDUP_ID_MAX + 1]; /* "" = empty */
    uint8_t kind;
} feat_dedup_slot_t;

/* Per md.bars partition. */
enum { FEAT_PART_NEW = 0, FEAT_PART_SEEN, FEAT_PART_SCANNED, FEAT_PART_PASSED };
typedef struct feat_dedup_part_s {
    int state;
    int64_t seen_ms;    /* wall clock of its first bar since assigned */
    int64_t scanned_ms; /* wall clock at which the scan covering it began */
} feat_dedup_part_t;

struct feat_dedup_s {
    int64_t margin_ms;
    feat_dedup_slot_t *slot; /* open addressing, linear probing */
    size_t cap, n;
    int64_t set_since_ms, set_at_ms; /* the last scan: from, when; valid while n or live */
    int live;                        /* the set holds a scan's result */
    feat_dedup_part_t *part;
    size_t npart;
    qb_counter_t *c_skipped, *c_scanned, *c_scans;
};

static int64_t feat_dedup_now_ms(void) { return qb_time_now() / QB_NS_PER_MS; }

feat_dedup_t *feat_dedup_new(int64_t margin_ms) {
    feat_dedup_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->margin_ms = margin_ms;
    d->c_skipped = qb_metrics_counter("qb_features_resends_skipped_total",
                                      "FeatureSets and Signals found on their topic after a "
                                      "restart, not sent again", NULL);
    d->c_scanned = qb_metrics_counter("qb_features_dedup_read_total",
                                      "messages of features and signals read back", NULL);
    d->c_scans = qb_metrics_counter("qb_features_dedup_scans_total",
                                    "read-backs of features and signals", NULL);
    return d;
}

static void feat_dedup_clear(feat_dedup_t *d) {
    free(d->slot);
    d->slot = NULL;
    d->cap = d->n = 0;
    d->live = 0;
}

void feat_dedup_destroy(feat_dedup_t *d) {
    if (!d) return;
    feat_dedup_clear(d);
    free(d->part);
    free(d);
}

static uint64_t feat_dedup_hash(const char *id, int kind) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static feat_dedup_slot_t *feat_dedup_find(feat_dedup_slot_t *slot, size_t cap, const char *id,
                                          int kind) {
    size_t i = (size_t)feat_dedup_hash(id, kind) & (cap - 1);
    while (slot[i].id[0] && (slot[i].kind != kind || strcmp(slot[i].id, id) != 0))
        i = (i + 1) & (cap - 1);
    return &slot[i];
}

static qb_err_t feat_dedup_add(feat_dedup_t *d, const char *id, int kind) {
    if (!id || !*id || strlen(id) > FEAT_DEDUP_ID_MAX) return QB_OK;
    if ((d->n + 1) * 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        feat_dedup_slot_t *ns = calloc(cap, sizeof *ns);
        if (!ns) return QB_ERR_NOMEM;
        for (size_t i = 0; i < d->cap; i++)
            if (d->slot[i].id[0])
                *feat_dedup_find(ns, cap, d->slot[i].id, d->slot[i].kind) = d->slot[i];
        free(d->slot);
        d->slot = ns;
        d->cap = cap;
    }
    feat_dedup_slot_t *s = feat_dedup_find(d->slot, d->cap, id, kind);
    if (!s->id[0]) {
        memcpy(s->id, id, strlen(id) + 1);
        s->kind = (uint8_t)kind;
        d->n++;
    }
    return QB_OK;
}

static feat_dedup_part_t *feat_dedup_part(feat_dedup_t *d, int32_t p) {
    if (p < 0 || p > 65535) return NULL;
    if ((size_t)p >= d->npart) {
        size_t n = (size_t)p + 1;
        feat_dedup_part_t *v = realloc(d->part, n * sizeof *v);
        if (!v) return NULL;
        memset(v + d->npart, 0, (n - d->npart) * sizeof *v);
        d->part = v;
        d->npart = n;
    }
    return &d->part[p];
}

void feat_dedup_note(feat_dedup_t *d, int32_t partition) {
    feat_dedup_part_t *pp = d ? feat_dedup_part(d, partition) : NULL;
    if (pp && pp->state == FEAT_PART_NEW) {
        pp->state = FEAT_PART_SEEN;
        pp->seen_ms = feat_dedup_now_ms();
    }
}

void feat_dedup_forget(feat_dedup_t *d, int32_t partition) {
    if (d && partition >= 0 && (size_t)partition < d->npart)
        memset(&d->part[partition], 0, sizeof d->part[partition]);
}

/* Read one topic from since_ms to its high watermarks into the set. */
static qb_err_t feat_dedup_scan(feat_dedup_t *d, const char *topic, int kind, int64_t since_ms,
                                char *errstr, size_t errstr_size) {
    char err[512];
    qb_err_t code;
    qb_reader_t *r = qb_reader_new_since(topic, since_ms, 10000, &code, err, sizeof err);
    if (!r && code == QB_ERR_NOT_FOUND) return QB_OK; /* never written: holds nothing */
    if (!r)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "read back %s: %s", topic,
                          err);
    qb_err_t e = QB_OK;
    int64_t n = 0, deadline = qb_time_mono_ns() + FEAT_DEDUP_SCAN_S * QB_NS_PER_SEC;
    while (!e && !qb_reader_caught_up(r)) {
        qb_bus_msg_t m;
        e = qb_reader_next(r, 1000, &m, NULL);
        if (e == QB_ERR_TIMEOUT && qb_time_mono_ns() < deadline) {
            e = QB_OK;
            continue;
        }
        if (e) break;
        n++;
        const char *id = NULL;
        if (!m.msg) continue;
        if (m.msg->descriptor == &qb__v1__feature_set__descriptor) {
            const Qb__V1__FeatureSet *fs = (const Qb__V1__FeatureSet *)m.msg;
            id = fs->header ? fs->header->event_id : NULL;
        } else if (m.msg->descriptor == &qb__v1__signal__descriptor) {
            id = ((const Qb__V1__Signal *)m.msg)->signal_id;
        }
        e = feat_dedup_add(d, id, kind);
    }
    qb_reader_destroy(r);
    qb_counter_add(d->c_scanned, (uint64_t)n);
    if (e)
        return qb_err_set(errstr, errstr_size, e == QB_ERR_NOMEM ? QB_ERR_NOMEM
                                                                 : QB_ERR_UNAVAILABLE,
                          "read back %s: %s after %lld messages", topic, qb_err_str(e),
                          (long long)n);
    return QB_OK;
}

qb_err_t feat_dedup_prepare(feat_dedup_t *d, int32_t partition, int64_t bar_ts_ms,
                            char *errstr, size_t errstr_size) {
    if (!d) return QB_OK;
    feat_dedup_note(d, partition);
    feat_dedup_part_t *pp = feat_dedup_part(d, partition);
    if (!pp) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    int64_t since = bar_ts_ms > 0 ? bar_ts_ms - d->margin_ms : 0;
    if (since < 0) since = 0;
    if (pp->state == FEAT_PART_SEEN) {
        if (d->live && d->set_since_ms <= since && d->set_at_ms > pp->seen_ms) {
            pp->state = FEAT_PART_SCANNED; /* the last scan covers it */
            pp->scanned_ms = d->set_at_ms;
        } else {
            int64_t at = feat_dedup_now_ms();
            size_t before = d->n;
            qb_err_t e = feat_dedup_scan(d, "features", FEAT_DEDUP_FEATURES, since, errstr,
                                         errstr_size);
            if (!e)
                e = feat_dedup_scan(d, "signals", FEAT_DEDUP_SIGNALS, since, errstr,
                                    errstr_size);
            if (e) return e; /* retried: the bar comes again */
            qb_counter_inc(d->c_scans);
            d->live = 1;
            d->set_since_ms = since;
            d->set_at_ms = at;
            pp->state = FEAT_PART_SCANNED;
            pp->scanned_ms = at;
            QB_INFO("md.bars [%d]: read back features and signals since %lld ms (bar at %lld "
                    "- %lld ms): %zu ids new, %zu in the set",
                    (int)partition, (long long)since, (long long)bar_ts_ms,
                    (long long)d->margin_ms, d->n - before, d->n);
        }
    } else if (pp->state == FEAT_PART_SCANNED && bar_ts_ms > pp->scanned_ms + d->margin_ms) {
        pp->state = FEAT_PART_PASSED;
        int needed = 0;
        for (size_t i = 0; i < d->npart; i++) needed |= d->part[i].state == FEAT_PART_SCANNED;
        if (!needed && d->live) {
            QB_INFO("replay past the read-back: %zu ids forgotten", d->n);
            feat_dedup_clear(d);
        }
    }
    return QB_OK;
}

int feat_dedup_sent(feat_dedup_t *d, feat_dedup_kind_t kind, const char *id) {
    if (!d || !d->n || !id || strlen(id) > FEAT_DEDUP_ID_MAX) return 0;
    if (!feat_dedup_find(d->slot, d->cap, id, (int)kind)->id[0]) return 0;
    qb_counter_inc(d->c_skipped);
    return 1;
}
