/* qb_md_validate.h — validation of bars before they are stored.
 *
 * A validator checks the bars of ONE (symbol, timeframe) series, batch
 * after batch in time order, carrying state across batches (the last
 * accepted timestamp and the rolling window of returns). Each bar is
 * either
 *   - rejected, with one reason code (the first rule it breaks, in the
 *     order of the enum below) and a message; counted per reason;
 *   - accepted and flagged as an outlier (QB_MD_FLAG_OUTLIER) — kept, but
 *     marked in md.bars.flags; or
 *   - accepted.
 *
 * Rules (rejects):
 *   off_grid             ts not on the timeframe grid: intraday ts % tf == 0;
 *                        "1d" and "1w" ts % 1 day == 0 (00:00 UTC of the
 *                        session date, see qb_md_source.h)
 *   duplicate_ts         ts equal to the previous accepted bar's
 *   non_increasing_ts    ts before the previous accepted bar's
 *   nonpositive_price    open, high, low or close <= 0
 *   high_below_low       high < low
 *   open_outside_range   open outside [low, high]
 *   close_outside_range  close outside [low, high]
 *   negative_volume      volume < 0
 * Outliers (flag, keep): r = ln(close / previous accepted close). With the
 * window of the last `window` returns (default 50; at least `min_periods`,
 * default 20, before anything is flagged), the robust z-score is
 *   z = (r - median) / (1.4826 * MAD)
 * (MAD = median absolute deviation; 1.4826 makes it estimate sigma for
 * normal returns). |z| > threshold (default 10) flags the bar. A window whose
 * MAD is 0 (a series that did not move) flags nothing. Every accepted
 * return, flagged or not, enters the window (median and MAD are robust to
 * it). Note: an isolated bad print produces two large returns (into and out
 * of it), so the bar after a spike is flagged too.
 *
 * Reason codes are also the vocabulary of md.ingest_log.rejects_by_reason;
 * the codes before QB_MD_REASON_OFF_GRID are the ones sources report (a CSV
 * reject reason starts with "<code>: ..."). qb_md_reason_name()/parse()
 * convert.
 *
 * Ownership: qb_md_validator_new() -> qb_md_validator_destroy() (NULL is a
 * no-op). Not thread-safe (one validator per series). */
#ifndef QB_MD_VALIDATE_H
#define QB_MD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_types.h"

#define QB_MD_FLAG_OUTLIER 1 /* md.bars.flags bit: outlier return */

/*        enum               code                   */
#define QB_MD_REASON_MAP(X)                                                    \
    X(OTHER, "other")                  /* a source reason without a known code */ \
    X(BAD_TIME, "bad_time")            /* time field does not parse */          \
    X(BAD_NUMBER, "bad_number")        /* price/volume field does not parse */  \
    X(NULL_VALUE, "null_value")        /* "null" (Yahoo's missing day) */       \
    X(MISSING_VALUE, "missing_value")  /* empty field */                        \
    X(COLUMN_COUNT, "column_count")    /* too few columns on the line */        \
    X(BAD_QUOTE, "bad_quote")          /* unterminated or misplaced quote */    \
    X(LINE_TOO_LONG, "line_too_long")  /* longer than the reader's limit */     \
    X(OFF_GRID, "off_grid")                                                    \
    X(DUPLICATE_TS, "duplicate_ts")                                            \
    X(NON_INCREASING_TS, "non_increasing_ts")                                  \
    X(NONPOSITIVE_PRICE, "nonpositive_price")                                  \
    X(HIGH_BELOW_LOW, "high_below_low")                                        \
    X(OPEN_OUTSIDE_RANGE, "open_outside_range")                                \
    X(CLOSE_OUTSIDE_RANGE, "close_outside_range")                              \
    X(NEGATIVE_VOLUME, "negative_volume")

typedef enum qb_md_reason_e {
#define QB__MD_REASON_ENUM(e, code) QB_MD_REASON_##e,
    QB_MD_REASON_MAP(QB__MD_REASON_ENUM)
#undef QB__MD_REASON_ENUM
    QB_MD_REASON_COUNT
} qb_md_reason_t;

/* "high_below_low" ...; "other" for an out-of-range value. */
const char *qb_md_reason_name(qb_md_reason_t r);
/* The code at the start of `text` (up to ':' or the end), e.g.
 * "bad_number: column Open ..." -> QB_MD_REASON_BAD_NUMBER; OTHER when not
 * a known code. */
qb_md_reason_t qb_md_reason_parse(const char *text);

typedef struct qb_md_validate_opts_s {
    int window;         /* returns in the rolling window; 0 = 50 (max 1024) */
    int min_periods;    /* returns needed before flagging; 0 = 20 (<= window) */
    double threshold;   /* robust |z| beyond which a bar is flagged; 0 = 10 */
    int64_t grid_ns;    /* off_grid rule: ts % grid_ns == 0; 0 = the timeframe's
                           (intraday) or 1 day (1d, 1w) */
} qb_md_validate_opts_t;

typedef struct qb_md_validator_s qb_md_validator_t;

/* Called for each rejected bar: its index in the batch passed to
 * qb_md_validate_batch (before compaction), the reason and a message such as
 * "high 10.5 < low 11". Valid during the call only. */
typedef void (*qb_md_reject_cb)(void *opaque, const qb_bar_t *bar, size_t index,
                                qb_md_reason_t reason, const char *message);

/* New validator for bars of `timeframe` ("1m" ... "1w"; QB_ERR_INVALID
 * otherwise). opts may be NULL (defaults). */
qb_md_validator_t *qb_md_validator_new(const char *timeframe,
                                       const qb_md_validate_opts_t *opts,
                                       char *errstr, size_t errstr_size);
void qb_md_validator_destroy(qb_md_validator_t *v);

/* Validate bars[0..n) in place: accepted bars are moved to the front (order
 * kept) and *n_out set to their number; flags[i] (caller array of n
 * entries) receives the flags of the i-th accepted bar. reject_cb may be
 * NULL. Never fails. */
void qb_md_validate_batch(qb_md_validator_t *v, qb_bar_t *bars, size_t n,
                          uint16_t *flags, size_t *n_out, qb_md_reject_cb reject_cb,
                          void *opaque);

/* Totals since creation. counts has QB_MD_REASON_COUNT entries (only the
 * validation codes can be non-zero). */
void qb_md_validator_counts(const qb_md_validator_t *v, int64_t *counts,
                            int64_t *accepted, int64_t *outliers);

#endif
