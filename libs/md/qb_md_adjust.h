/* qb_md_adjust.h — split- and dividend-adjusted bars, computed on read.
 *
 * md.bars holds RAW bars and nothing here ever writes them: adjusted series
 * are computed from the raw bars plus md.corporate_actions every time they
 * are read, so a corrected or late action changes history without
 * rewriting it.
 *
 * Modes
 *   QB_MD_ADJ_RAW    the bars as stored.
 *   QB_MD_ADJ_SPLIT  split-only: every bar BEFORE a split's ex-date (bar
 *                    open time < ex-date 00:00 UTC) has its prices divided
 *                    by, and its volume multiplied by, the product of the
 *                    ratios of all later splits (ratio = new shares / old
 *                    shares: 2 for 2-for-1, 3/2 for 3-for-2, 1/10 for a
 *                    1-for-10 reverse split).
 *   QB_MD_ADJ_TOTAL  total return: SPLIT, and in addition every bar before a
 *                    cash dividend's ex-date has its prices multiplied by
 *                        f = 1 - D / C = (C - D) / C
 *                    where D is the dividend per share and C the raw close
 *                    of the last bar before the ex-date (the CRSP / Yahoo
 *                    "Adj Close" convention). Factors of several dividends
 *                    multiply. Volume is adjusted for splits only.
 * Anchoring: backward adjustment — the LAST bar of the series is never
 * changed, and so are all bars on or after the latest applied action. A
 * series is expressed in the share basis of its last bar, so the same day
 * read over a range ending later (after another split) has other adjusted
 * values: to compare with a vendor's adjusted history, read up to today.
 * Actions are per share in the basis of the raw bars at their ex-date: a
 * dividend amount is per share as traded the day BEFORE the ex-date (the
 * same basis as C), never a split-adjusted amount.
 *
 * Exactness (all arithmetic in integers, no floating point)
 *   - A split ratio is an exact rational num/den (reduced, both <= 1e9; the
 *     running product of ratios too, else QB_ERR_OVERFLOW). 2, 3/2, 1/10
 *     and also 4/3 or 1/3 are exact; nothing is lost by combining splits.
 *   - SPLIT prices: raw * den / num with the exact quotient rounded ONCE,
 *     half-even, to 1e-8 (the qb_dec_t scale). Volume: raw * num / den,
 *     rounded the same way. A 2:1 split of 101.25 gives exactly 50.625.
 *   - Dividend factors are fractions (C - D) / C of arbitrary denominators,
 *     so their running product cannot stay exact: it is kept as a fixed-
 *     point number with 18 decimals, each step rounded half-even (each step
 *     adds at most 5e-19 to F's error: after 200 dividends F is off by at
 *     most 1e-16, i.e. 1e-12 on a 10000.00 price, far under the 1e-8 step). An adjusted TOTAL price is raw * F * den / num, the exact
 *     value of that rounded once, half-even, to 1e-8.
 *   - Why 1e-8 and not 4 decimals like vendors: qb_dec_t has 8 decimals and
 *     the rest of the platform computes in it; rounding to 4 would throw
 *     away real information for low prices (a 1999 NVDA bar adjusted by 12
 *     is ~1.64; a 1:10 reverse split makes a 0.0123 price 0.123) and make
 *     "adjusted * ratio == raw" fail for exact splits. Round for display.
 *
 * Edge cases (qb_md_adjust)
 *   - Actions may come in any order (they are sorted on a copy).
 *   - Two actions of the same kind on the same ex-date: QB_ERR_INVALID
 *     (the md table's key forbids them too). A split and a dividend on the
 *     same day are fine.
 *   - Actions after the last bar, or on/before the first bar (nothing
 *     before them to adjust), are ignored and counted in stats.outside;
 *     except a dividend whose ex-date falls on the first bar's UTC day: it
 *     should have applied but there is no close before it, so it is
 *     skipped and counted in stats.div_no_prev_close (a warning).
 *   - A dividend >= the previous close (a factor <= 0: bad data) is skipped
 *     and counted in stats.div_too_large (a warning).
 *   - Bars must be in strictly increasing time order (QB_ERR_INVALID).
 *
 * Memory: functions that hand out arrays malloc them; the caller frees them
 * with free(). Nothing here keeps state; everything is thread-safe given
 * separate qb_store_t handles. */
#ifndef QB_MD_ADJUST_H
#define QB_MD_ADJUST_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_types.h"
#include "md/qb_md_store.h"
#include "store/qb_store.h"

#define QB_MD_SPLIT_MAX 1000000000LL /* bound of a ratio's num and den (1e9) */

typedef enum qb_md_adjust_mode_e {
    QB_MD_ADJ_RAW = 0,   /* as stored */
    QB_MD_ADJ_SPLIT = 1, /* splits only */
    QB_MD_ADJ_TOTAL = 2  /* splits and cash dividends (total return) */
} qb_md_adjust_mode_t;

/* "raw", "split", "total"; "unknown" otherwise. */
const char *qb_md_adjust_mode_name(qb_md_adjust_mode_t mode);
/* Inverse of qb_md_adjust_mode_name (case-insensitive); QB_ERR_PARSE. */
qb_err_t qb_md_adjust_mode_parse(const char *s, qb_md_adjust_mode_t *out);

/* One corporate action (a plain value). */
typedef struct qb_md_action_s {
    qb_time_t ex_date;        /* 00:00 UTC of the ex-date */
    qb_md_action_kind_t kind; /* QB_MD_ACTION_SPLIT / _DIVIDEND (qb_md_store.h) */
    int64_t num, den;         /* split: num new shares for den old, > 0 */
    qb_dec_t amount;          /* dividend: cash per share, >= 0 */
} qb_md_action_t;

/* What qb_md_adjust did with the actions it was given. */
typedef struct qb_md_adjust_stats_s {
    size_t splits_applied;    /* splits that adjusted at least one bar */
    size_t dividends_applied; /* dividends that adjusted at least one bar (TOTAL) */
    size_t div_no_prev_close; /* warning: ex-date on the first bar's day, skipped */
    size_t div_too_large;     /* warning: amount >= previous close, skipped */
    size_t outside;           /* ex-date after the last bar or before the first: ignored */
} qb_md_adjust_stats_t;

/* ---- split ratios ---------------------------------------------------------- */

/* Parse a split ratio as people write it into a reduced num/den:
 *   "2:1", "3:2", "1:10"           new:old
 *   "3-for-2", "3 for 2", "1-for-10"  new-for-old (case-insensitive)
 *   "3/2"                           new/old
 *   "2", "1.5", "0.1"               the ratio as a decimal (<= 8 decimals)
 * Both sides must be > 0 and, reduced, <= QB_MD_SPLIT_MAX. QB_ERR_PARSE (or
 * QB_ERR_RANGE) with a message otherwise. "1:1" is accepted (ratio 1). */
qb_err_t qb_md_split_parse(const char *s, int64_t *num, int64_t *den, char *errstr,
                           size_t errstr_size);

/* A ratio read back from a decimal (a PostgreSQL numeric as text, e.g.
 * "2", "1.5", "0.33333333333333333333"). A terminating decimal is taken
 * exactly; a long one (>= 12 decimals) that is the correct rounding of a
 * fraction with a denominator <= 1e6 becomes that fraction (how
 * qb_md_actions_put stores 1/3: numeric 1/3 has 20 decimals). QB_ERR_PARSE
 * / QB_ERR_RANGE otherwise. */
qb_err_t qb_md_split_from_decimal(const char *s, int64_t *num, int64_t *den, char *errstr,
                                  size_t errstr_size);

/* "2:1", "3:2", "1:10" into buf; returns the length like snprintf. */
size_t qb_md_split_format(int64_t num, int64_t den, char *buf, size_t cap);

/* ---- adjustment ------------------------------------------------------------ */

/* Adjust bars[0..n) per `mode` with actions[0..nact) (any order, not
 * modified) into out[0..n) (may be the same array as bars). Symbol,
 * timeframe and ts are copied unchanged. stats may be NULL. Errors:
 * QB_ERR_INVALID (NULL with n > 0, bars not strictly increasing, a bad or
 * duplicate action, unknown mode), QB_ERR_OVERFLOW (a ratio product beyond
 * QB_MD_SPLIT_MAX, an adjusted value beyond qb_dec_t). On error out is
 * unspecified. */
qb_err_t qb_md_adjust(const qb_bar_t *bars, size_t n, const qb_md_action_t *actions,
                      size_t nact, qb_md_adjust_mode_t mode, qb_bar_t *out,
                      qb_md_adjust_stats_t *stats, char *errstr, size_t errstr_size);

/* ---- md.corporate_actions -------------------------------------------------- */

/* Actions of `symbol` with ex-date (00:00 UTC) in [from, to) — from == 0:
 * no lower bound, to == 0: no upper bound — ordered by ex-date then kind
 * (split first), into a malloc'd *out (NULL when none). An unknown symbol
 * gives 0 actions. A stored ratio that is not a ratio of integers within
 * bounds (see qb_md_split_from_decimal) is QB_ERR_RANGE naming the row. */
qb_err_t qb_md_actions_read(qb_store_t *s, const char *symbol, qb_time_t from, qb_time_t to,
                            qb_md_action_t **out, size_t *n, char *errstr,
                            size_t errstr_size);

/* Upsert actions[0..n) of `symbol` (key: asset, ex-date, kind; the asset is
 * created with `asset_class` when new) in ONE transaction: all or nothing.
 * A split's ratio is stored as the numeric num/den (exact for terminating
 * decimals, 20 decimals otherwise, read back exactly by qb_md_actions_read).
 * Two actions with the same key in the array are QB_ERR_INVALID. */
qb_err_t qb_md_actions_put(qb_store_t *s, const char *symbol, const char *asset_class,
                           const qb_md_action_t *actions, size_t n, const char *source,
                           char *errstr, size_t errstr_size);

/* Adjusted bars of symbol/timeframe with open time in [from, to) (0 = no
 * bound, as qb_md_store_read_bars): the raw bars and the actions with ex-date
 * from the first bar's UTC day through the last bar, read in one
 * REPEATABLE READ transaction (or in the caller's, if one is open), then
 * qb_md_adjust. *out is malloc'd (NULL when no bars); stats may be NULL.
 * Nothing is written. */
qb_err_t qb_md_read_adjusted(qb_store_t *s, const char *symbol, const char *timeframe,
                             qb_time_t from, qb_time_t to, qb_md_adjust_mode_t mode,
                             qb_bar_t **out, size_t *n, qb_md_adjust_stats_t *stats,
                             char *errstr, size_t errstr_size);

#endif
