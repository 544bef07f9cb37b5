/* qb_md_csv.h — the CSV file source (qb_md_source.h).
 *
 * Formats
 *   QB_MD_CSV_YAHOO    Date,Open,High,Low,Close,Adj Close,Volume as Yahoo
 *                      Finance writes it: raw OHLC (Adj Close is ignored for
 *                      bars), dates YYYY-MM-DD, and "null" in every value of
 *                      a day without data (such a row is rejected with
 *                      reason null_value). Columns are found by header name
 *                      when the file has a header, else by position
 *                      (0,1,2,3,4,6).
 *   QB_MD_CSV_GENERIC  OHLCV with a column mapping: each column by header
 *                      name (case-insensitive) or by 0-based index. The
 *                      volume column may be absent (volume 0).
 *
 * Reading: streaming (1 MiB reads, bounded memory whatever the file size);
 * LF or CRLF line ends; empty lines skipped; a UTF-8 BOM skipped; fields may
 * be double-quoted ("" is a quote inside quotes); a quoted field cannot span
 * lines (a record per line). Header detection: the first non-empty line is a
 * header when its time field is not a valid time (for name mappings the
 * header is required). Bars go to the sink in batches of up to `batch`
 * (default 8192), oldest first as the file has them.
 *
 * Times (opts.time_format)
 *   QB_MD_CSV_TIME_DATE     YYYY-MM-DD -> 00:00 UTC of that date
 *   QB_MD_CSV_TIME_ISO      ISO-8601 with an explicit offset (Z or ±hh:mm),
 *                           e.g. 2024-01-02T09:30:00-05:00. A value without
 *                           an offset is rejected (bad_time): local times are
 *                           ambiguous. For "1d"/"1w" bars the date as written
 *                           (the local session date) is kept and stamped
 *                           00:00 UTC, per the convention of qb_md_source.h.
 *   QB_MD_CSV_TIME_UNIX_S / _MS  integer seconds / milliseconds since the
 *                           epoch; for "1d"/"1w" floored to the UTC day.
 * Range: bars with ts outside [req->from, req->to) are skipped (not
 * rejects); from == 0 means no lower bound, to == 0 no upper bound.
 *
 * Rejects: every line that cannot become a bar goes to sink->reject with
 * where = "PATH:LINE" (1-based physical line) and a reason that starts with
 * a reason code of qb_md_validate.h followed by ": ", e.g.
 *   "bad_number: column High (3): '12,5x' is not a decimal number"
 *   "null_value: column Open (2) is null (Yahoo writes null for a day without data)"
 *   "column_count: 5 columns, need at least 7"
 * Numbers: plain decimals ("12.5", "-3", ".5"), an exponent allowed; more
 * than 8 decimals are rounded half-even (qb_dec_parse_round).
 *
 * qb_md_csv_line_of() gives the line of each bar of the batch being passed
 * to the sink, so a downstream validator can report FILE:LINE too.
 *
 * Ownership: the constructors return a source freed with
 * qb_md_source_destroy(). Strings in opts are copied. The buffer of
 * qb_md_csv_source_new_buffer is NOT copied: keep it alive until destroy. */
#ifndef QB_MD_CSV_H
#define QB_MD_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "md/qb_md_source.h"

typedef enum qb_md_csv_format_e {
    QB_MD_CSV_YAHOO = 0,
    QB_MD_CSV_GENERIC = 1
} qb_md_csv_format_t;

typedef enum qb_md_csv_time_e {
    QB_MD_CSV_TIME_DATE = 0,
    QB_MD_CSV_TIME_ISO = 1,
    QB_MD_CSV_TIME_UNIX_S = 2,
    QB_MD_CSV_TIME_UNIX_MS = 3
} qb_md_csv_time_t;

/* Columns of a mapping, in this order. */
enum { QB_MD_CSV_COL_TIME, QB_MD_CSV_COL_OPEN, QB_MD_CSV_COL_HIGH, QB_MD_CSV_COL_LOW,
       QB_MD_CSV_COL_CLOSE, QB_MD_CSV_COL_VOLUME, QB_MD_CSV_NCOLS };

typedef struct qb_md_csv_opts_s {
    qb_md_csv_format_t format;    /* default YAHOO */
    char delimiter;               /* 0 = ',' */
    qb_md_csv_time_t time_format; /* GENERIC only (YAHOO is DATE) */
    /* GENERIC mapping, per QB_MD_CSV_COL_*: a header name (case-insensitive)
     * or, when names[i] is NULL, the 0-based index[i]. index[VOLUME] = -1
     * with names[VOLUME] NULL means "no volume column" (volume 0). With all
     * names NULL and all index 0, the default is 0,1,2,3,4,5. */
    const char *names[QB_MD_CSV_NCOLS];
    int index[QB_MD_CSV_NCOLS];
    size_t batch; /* bars per sink call; 0 = 8192 */
} qb_md_csv_opts_t;

/* A source reading `path` (opened at fetch time, so a missing file is a
 * fetch error: QB_ERR_IO naming the path). opts may be NULL (Yahoo).
 * NULL with errstr on bad options. */
qb_md_source_t *qb_md_csv_source_new(const char *path, const qb_md_csv_opts_t *opts,
                                     char *errstr, size_t errstr_size);

/* The same over `len` bytes in memory (not copied), reported as `name`. */
qb_md_source_t *qb_md_csv_source_new_buffer(const char *name, const char *data, size_t len,
                                            const qb_md_csv_opts_t *opts, char *errstr,
                                            size_t errstr_size);

/* Parse "time=Date,open=Open,..." or a list of 5 or 6 entries in the order
 * time,open,high,low,close[,volume] — each a header name or a 0-based
 * column index — into opts->names / opts->index. Names point into `spec`,
 * which must outlive opts. QB_ERR_INVALID with a message. `spec` is
 * modified (split in place). */
qb_err_t qb_md_csv_parse_columns(char *spec, qb_md_csv_opts_t *opts, char *errstr,
                                 size_t errstr_size);

/* Options from their text form, as `qbctl import` and csv ingest jobs take
 * them: format "yahoo" (NULL/"" = yahoo) or "generic"; columns (generic
 * only; parsed in place by qb_md_csv_parse_columns, so it must outlive
 * opts; NULL = default order); time_format "date" (NULL/"" = date), "iso",
 * "unix_s", "unix_ms" (generic only). opts is reset first. QB_ERR_INVALID
 * naming the option. */
qb_err_t qb_md_csv_opts_parse(const char *format, char *columns, const char *time_format,
                              qb_md_csv_opts_t *opts, char *errstr, size_t errstr_size);

/* During a sink->bars call from this source: the 1-based line of bars[i].
 * 0 when src is not a CSV source or i is out of range. */
int64_t qb_md_csv_line_of(const qb_md_source_t *src, size_t i);
/* The path (or buffer name) the source reads; "" when not a CSV source. */
const char *qb_md_csv_path(const qb_md_source_t *src);

#endif
