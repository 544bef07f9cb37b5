/* qb_md_gaps.h — what is missing from the stored bars of a symbol: the
 * exchange calendar's expected bars (cal/qb_cal.h) over a range that
 * md.bars does not hold, merged into spans. Used by `qbctl data gaps` and
 * by `qbctl backfill`, which fetches only those spans.
 *
 * Stored times are read with the replay reader (keyset pages, so memory
 * while reading is bounded); only the bar times (8 bytes a bar) are kept. */
#ifndef QB_MD_GAPS_H
#define QB_MD_GAPS_H

#include <stddef.h>

#include "cal/qb_cal.h"
#include "core/qb_err.h"
#include "store/qb_store.h"

/* The calendar of an asset class: equity, etf -> "XNYS"; crypto -> "24x7";
 * NULL for the others (fx, future, economic: the caller must choose). */
const char *qb_md_default_calendar(const char *asset_class);

typedef struct qb_md_gaps_s {
    qb_cal_gap_t *spans; /* malloc'd, nspans of them, in time order */
    size_t nspans;
    size_t missing;      /* expected bars not stored */
    size_t stored;       /* stored bars read in the range */
    qb_time_t from, to;  /* the range actually examined */
    const qb_cal_t *cal; /* the calendar used */
} qb_md_gaps_t;

/* Gaps of symbol/timeframe (up to 1d) over [from, to) against `cal` (NULL:
 * the asset's default calendar; QB_ERR_INVALID when it has none). from == 0:
 * the first stored bar; to == 0: the end of the last stored bar (so, with
 * either open, only holes inside the stored history count); with nothing
 * stored and an open end the result is empty. An unknown symbol is
 * QB_ERR_NOT_FOUND unless from and to are both given (then the whole range
 * is missing). Free with qb_md_gaps_free. */
qb_err_t qb_md_gaps_find(qb_store_t *s, const char *symbol, const char *timeframe,
                         const qb_cal_t *cal, qb_time_t from, qb_time_t to, qb_md_gaps_t *out,
                         char *errstr, size_t errstr_size);

void qb_md_gaps_free(qb_md_gaps_t *g);

#endif
