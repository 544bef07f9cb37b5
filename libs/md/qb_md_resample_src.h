/* qb_md_resample_src.h — the "resample" source (qb_md_source.h): longer
 * bars built from stored shorter ones, through the ingest pipeline like any
 * other source (validation, idempotent load, publish).
 *
 * fetch(req) reads the stored bars of req->symbol at the input timeframe
 * (e.g. "1m") over [req->from, req->to) with the replay reader and hands
 * out the req->timeframe bars (e.g. "1h", "1d") built by qb_md_resampler
 * (qb_md_resample.h: session-aware on the calendar; the asset class's
 * default calendar when none is given: equity/etf -> XNYS, crypto -> 24x7).
 * Only complete buckets are handed out: the first and last bucket of the
 * range are left out when the range cuts them (so a resample over a part of
 * a session never stores a partial bar as if it were whole), as is the
 * bucket still open at the newest stored input bar.
 *
 * `store` is borrowed (the ingest may share it: reads and loads alternate).
 * Free with qb_md_source_destroy. */
#ifndef QB_MD_RESAMPLE_SRC_H
#define QB_MD_RESAMPLE_SRC_H

#include "cal/qb_cal.h"
#include "md/qb_md_source.h"
#include "store/qb_store.h"

/* in_tf: the stored timeframe read ("1m"); cal: NULL = the asset's default.
 * NULL with errstr for a bad in_tf. */
qb_md_source_t *qb_md_resample_source_new(qb_store_t *store, const char *in_tf,
                                          const qb_cal_t *cal, char *errstr,
                                          size_t errstr_size);

#endif
