/* qb_md_vendor.h — helpers shared by the HTTP market-data vendor adapters
 * (qb_md_alpaca, qb_md_polygon, qb_md_yahoo, qb_md_coinbase, qb_md_fred).
 *
 * What lives here is what every adapter did the same way; each adapter's
 * request shape, envelope checks and field layout stay in its own file.
 *
 *   qb_md_vendor_config_load  read an adapter's config table (env/config)
 *   qb_md_vendor_http_new     its qb_http_t: base URL (or the default), an
 *                             evenly spaced rate (burst 1), secret headers /
 *                             query params, then "Accept: application/json"
 *   qb_md_vendor_dec          JSON number -> exact qb_dec_t
 *   qb_md_vendor_dec_field    the same, noting why a value was rejected
 *   qb_md_vendor_bar_tmpl     the symbol/timeframe template of a request
 *   qb_md_vendor_parse        a body -> cJSON, or "body is not JSON" error
 *   qb_md_vendor_date         YYYY-MM-DD of an instant (UTC)
 *   qb_md_vendor_rejects_*    rejected items collected while a page or
 *                             window parses, delivered once it is good
 *
 * Numbers. cJSON keeps only a double, not the text. A price is turned into
 * a qb_dec_t by printing that double with the fewest significant digits
 * (15, 16 or 17) that read back to the same double, in the C locale, and
 * handing the text to qb_dec_parse_round (half-even). Any decimal text of up
 * to 15 significant digits survives text -> double -> %.15g unchanged, so
 * for every real price (<= 15 digits) this is exactly the vendor's text:
 * 187.4321 becomes 18743210000, never 18743209999.
 *
 * All functions are thread-safe (they touch no shared state beyond a
 * once-initialised C locale). */
#ifndef QB_MD_VENDOR_H
#define QB_MD_VENDOR_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/qb_config.h"
#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "http/qb_http.h"

/* Zero cfg (cfg_size bytes) and load one config section into it.
 * QB_OK, or the error of qb_config_load (errstr says which key). */
qb_err_t qb_md_vendor_config_load(const char *section, const qb_cfg_entry_t *table, void *cfg,
                                  size_t cfg_size, char *errstr, size_t errstr_size);

/* A credential sent with every request: a header (param 0) or a query
 * parameter (param 1); secret values are redacted by qb_http. */
typedef struct qb_md_vendor_cred_s {
    int param;
    const char *name;
    const char *value;
} qb_md_vendor_cred_t;

/* A qb_http_t for one vendor: *opts (may be NULL) with source, base_url
 * (default_url when base_url is NULL or ""), rate_per_sec and a burst of
 * 1; then the ncreds credentials as secrets, in order, and the header
 * "Accept: application/json". NULL with errstr set on any failure (the
 * partial handle is destroyed). */
qb_http_t *qb_md_vendor_http_new(const qb_http_opts_t *opts, const char *source,
                                 const char *base_url, const char *default_url,
                                 double rate_per_sec, const qb_md_vendor_cred_t *creds,
                                 size_t ncreds, char *errstr, size_t errstr_size);

/* JSON number n -> *out (see the top of the file). 0 ok, -1 not a finite
 * number, else the qb_err_t of qb_dec_parse_round (QB_ERR_OVERFLOW: out of
 * range). n must be a cJSON number. */
int qb_md_vendor_dec(const cJSON *n, qb_dec_t *out);

/* qb_md_vendor_dec, and when it fails and why[0] is still empty, write
 * "'<field>' out of range" or "'<field>' is not a decimal" into why.
 * Returns what qb_md_vendor_dec returned. */
int qb_md_vendor_dec_field(const cJSON *n, const char *field, qb_dec_t *out, char *why,
                           size_t why_size);

/* Zero *tmpl and set its symbol (validated by qb_symbol_set) and timeframe.
 * QB_ERR_INVALID "<vendor>: <why>" for a bad symbol. */
qb_err_t qb_md_vendor_bar_tmpl(qb_bar_t *tmpl, const char *vendor, const char *symbol,
                               const char *timeframe, char *errstr, size_t errstr_size);

/* Parse body as JSON. NULL with QB_ERR_PARSE "<pos>: body is not JSON
 * (error at byte N of LEN)" in errstr when it is not. */
cJSON *qb_md_vendor_parse(const char *body, size_t len, const char *pos, char *errstr,
                          size_t errstr_size);

/* "YYYY-MM-DD" of the UTC date of t. */
void qb_md_vendor_date(qb_time_t t, char *buf, size_t cap);

/* ---- rejected items ---------------------------------------------------------- */

typedef struct qb_md_vendor_rej_s {
    char where[48];  /* "alpaca page 2 item 5" */
    char reason[96]; /* "missing 'h'" */
} qb_md_vendor_rej_t;

typedef struct qb_md_vendor_rejects_s {
    qb_md_vendor_rej_t *v;
    size_t n;
} qb_md_vendor_rejects_t; /* zero-initialise */

/* Append (where, reason), each truncated to its field. QB_ERR_NOMEM (list
 * unchanged) or QB_OK. */
qb_err_t qb_md_vendor_reject(qb_md_vendor_rejects_t *r, const char *where, const char *reason,
                             char *errstr, size_t errstr_size);

/* Log each at debug level and pass it to reject(opaque, where, reason)
 * when reject is not NULL, in the order they were added. */
void qb_md_vendor_rejects_deliver(const qb_md_vendor_rejects_t *r,
                                  void (*reject)(void *opaque, const char *where,
                                                 const char *reason),
                                  void *opaque);

/* Free the list and zero it. */
void qb_md_vendor_rejects_free(qb_md_vendor_rejects_t *r);

#endif /* QB_MD_VENDOR_H */
