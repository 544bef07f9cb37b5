/* qb_md_sources.h — a market-data source by name: the one place that maps
 * "csv", "synthetic", "alpaca", "polygon", "yahoo", "coinbase" to their
 * adapters, for qb-data's jobs and `qbctl backfill`.
 *
 * Vendors read their keys, base URLs and rate limits from their QB_*
 * environment variables (see each adapter's header). "csv" needs options
 * (a JSON object as md.ingest_jobs.options): {"path": "...", "format":
 * "yahoo"|"generic", "columns": "...", "time_format": "..."}; "{symbol}"
 * in the path is replaced by `symbol`, so a csv source is per symbol (the
 * others serve any symbol). "synthetic" takes {"seed": "42"} (default 42).
 * "resample" builds bars from stored shorter ones (qb_md_source_open_store). */
#ifndef QB_MD_SOURCES_H
#define QB_MD_SOURCES_H

#include <stddef.h>

#include "md/qb_md_source.h"
#include "store/qb_store.h"

/* 1 when a source of this name serves one symbol only (its options depend
 * on the symbol: "csv"), so a new one is needed per symbol. */
int qb_md_source_per_symbol(const char *name);

/* The source `name` with `options` (JSON object text; NULL/"" = {}) for
 * `symbol` (used by per-symbol sources only; may be NULL otherwise). NULL
 * with QB_ERR_INVALID in errstr naming the problem: unknown source (the
 * known ones listed), bad options, a missing csv path. */
qb_md_source_t *qb_md_source_open(const char *name, const char *options, const char *symbol,
                                  char *errstr, size_t errstr_size);

/* The same, with a store for the sources that read PostgreSQL: "resample"
 * (options {"from_timeframe": "1m"} the stored bars it builds from — default
 * "1m" — and optionally {"calendar": "XNYS"|"24x7"}; qb_md_resample_src.h).
 * `store` is borrowed; the ingest may share it. */
qb_md_source_t *qb_md_source_open_store(const char *name, const char *options,
                                        const char *symbol, qb_store_t *store, char *errstr,
                                        size_t errstr_size);

#endif
