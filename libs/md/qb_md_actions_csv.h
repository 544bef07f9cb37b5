/* qb_md_actions_csv.h — corporate actions from a CSV file (qbctl actions
 * import), into qb_md_action_t values (qb_md_adjust.h).
 *
 * Format: one action per line, three columns
 *     date,kind,value
 *     2000-06-27,split,2:1
 *     2007-09-11,split,3-for-2
 *     2012-11-20,dividend,0.075
 *   date   YYYY-MM-DD, the ex-date (-> 00:00 UTC of that date)
 *   kind   split | dividend (case-insensitive)
 *   value  split: new:old ("2:1", "1:10"), new-for-old ("3-for-2"), new/old
 *          or a decimal ratio new/old ("2", "1.5") — qb_md_split_parse;
 *          dividend: the cash amount per share as traded before the ex-date,
 *          a plain decimal >= 0 with at most 8 decimals.
 * A first line whose date field is not a date is a header and skipped.
 * Empty lines and lines starting with '#' are skipped; LF or CRLF; a UTF-8
 * BOM is skipped; spaces around fields are ignored and a field may be in
 * double quotes (no quotes or commas inside).
 *
 * Rejects, like the bar CSV source (qb_md_csv.h): where = "PATH:LINE"
 * (1-based physical line), reason = "code: message" with code one of
 *   column_count  not 3 columns
 *   bad_time      not a YYYY-MM-DD date
 *   bad_kind      neither split nor dividend
 *   bad_ratio     a split value qb_md_split_parse refuses
 *   bad_amount    a dividend value that is not a decimal >= 0 (<= 8 decimals)
 *   duplicate     same date and kind as an earlier line (which is kept)
 * Rejected lines are reported and left out; parsing goes on.
 *
 * Ownership: *out and *lines are malloc'd (NULL when no action), freed by
 * the caller with free(). */
#ifndef QB_MD_ACTIONS_CSV_H
#define QB_MD_ACTIONS_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "md/qb_md_adjust.h"

typedef void (*qb_md_actions_reject_cb)(void *opaque, const char *where, const char *reason);

/* Parse `len` bytes of `data` (need not be NUL-terminated), reported as
 * `name`. The good actions in file order go to *out (count *n), their line
 * numbers to *lines (may be NULL: not wanted); *rejected (may be NULL)
 * counts rejected lines, each also passed to reject (may be NULL). Returns
 * QB_OK even with rejects; QB_ERR_NOMEM / QB_ERR_INVALID otherwise. */
qb_err_t qb_md_actions_csv_parse(const char *name, const char *data, size_t len,
                                 qb_md_action_t **out, int64_t **lines, size_t *n,
                                 size_t *rejected, qb_md_actions_reject_cb reject,
                                 void *opaque, char *errstr, size_t errstr_size);

/* The same for the file at `path` (read whole; at most 64 MiB). QB_ERR_IO
 * naming the path when it cannot be read. */
qb_err_t qb_md_actions_csv_read(const char *path, qb_md_action_t **out, int64_t **lines,
                                size_t *n, size_t *rejected, qb_md_actions_reject_cb reject,
                                void *opaque, char *errstr, size_t errstr_size);

#endif
