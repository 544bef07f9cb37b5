/* qb_md_vendor.c — helpers shared by the vendor adapters; see qb_md_vendor.h. */
#include "md/qb_md_vendor.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"

qb_err_t qb_md_vendor_config_load(const char *section, const qb_cfg_entry_t *table, void *cfg,
                                  size_t cfg_size, char *errstr, size_t errstr_size) {
    memset(cfg, 0, cfg_size);
    qb_cfg_section_t sec = {section, table, cfg};
    return qb_config_load(&sec, 1, errstr, errstr_size);
}

qb_http_t *qb_md_vendor_http_new(const qb_http_opts_t *opts, const char *source,
                                 const char *base_url, const char *default_url,
                                 double rate_per_sec, const qb_md_vendor_cred_t *creds,
                                 size_t ncreds, char *errstr, size_t errstr_size) {
    qb_http_opts_t ho;
    if (opts) ho = *opts;
    else memset(&ho, 0, sizeof(ho));
    ho.source = source;
    ho.base_url = base_url && *base_url ? base_url : default_url;
    ho.rate_per_sec = rate_per_sec;
    ho.rate_burst = 1;
    qb_http_t *h = qb_http_new(&ho, errstr, errstr_size);
    if (!h) return NULL;
    for (size_t i = 0; i < ncreds; i++) {
        qb_err_t err = creds[i].param
                           ? qb_http_add_param(h, creds[i].name, creds[i].value, 1, errstr,
                                               errstr_size)
                           : qb_http_add_header(h, creds[i].name, creds[i].value, 1, errstr,
                                                errstr_size);
        if (err) {
            qb_http_destroy(h);
            return NULL;
        }
    }
    if (qb_http_add_header(h, "Accept", "application/json", 0, errstr, errstr_size)) {
        qb_http_destroy(h);
        return NULL;
    }
    return h;
}

/* ---- JSON number -> decimal (see qb_md_vendor.h) ----------------------------- */

static pthread_once_t qb_md_vendor_loc_once = PTHREAD_ONCE_INIT;
static locale_t qb_md_vendor_c_locale;
static void qb_md_vendor_loc_init(void) {
    qb_md_vendor_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

int qb_md_vendor_dec(const cJSON *n, qb_dec_t *out) {
    double d = n->valuedouble;
    if (!isfinite(d)) return -1;
    pthread_once(&qb_md_vendor_loc_once, qb_md_vendor_loc_init);
    locale_t old = qb_md_vendor_c_locale ? uselocale(qb_md_vendor_c_locale) : (locale_t)0;
    char txt[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(txt, sizeof(txt), "%.*g", prec, d);
        if (strtod(txt, NULL) == d) break;
    }
    if (old) uselocale(old);
    return (int)qb_dec_parse_round(txt, strlen(txt), out, QB_ROUND_HALF_EVEN);
}

int qb_md_vendor_dec_field(const cJSON *n, const char *field, qb_dec_t *out, char *why,
                           size_t why_size) {
    int rc = qb_md_vendor_dec(n, out);
    if (rc && !why[0])
        snprintf(why, why_size, "'%s' %s", field,
                 rc == QB_ERR_OVERFLOW ? "out of range" : "is not a decimal");
    return rc;
}

/* ---- requests and bodies ------------------------------------------------------ */

qb_err_t qb_md_vendor_bar_tmpl(qb_bar_t *tmpl, const char *vendor, const char *symbol,
                               const char *timeframe, char *errstr, size_t errstr_size) {
    memset(tmpl, 0, sizeof(*tmpl));
    char sub[256];
    if (qb_symbol_set(&tmpl->symbol, symbol, sub, sizeof(sub)) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: %s", vendor, sub);
    snprintf(tmpl->timeframe, sizeof(tmpl->timeframe), "%s", timeframe);
    return QB_OK;
}

cJSON *qb_md_vendor_parse(const char *body, size_t len, const char *pos, char *errstr,
                          size_t errstr_size) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                   "%s: body is not JSON (error at byte %zu of %zu)", pos, at, len);
    }
    return root;
}

void qb_md_vendor_date(qb_time_t t, char *buf, size_t cap) {
    qb_civil_t c;
    qb_time_to_civil(t, &c);
    snprintf(buf, cap, "%04d-%02d-%02d", c.year, c.month, c.day);
}

/* ---- rejected items ------------------------------------------------------------ */

qb_err_t qb_md_vendor_reject(qb_md_vendor_rejects_t *r, const char *where, const char *reason,
                             char *errstr, size_t errstr_size) {
    void *nv = realloc(r->v, (r->n + 1) * sizeof(*r->v));
    if (!nv) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    r->v = nv;
    qb_md_vendor_rej_t *e = &r->v[r->n++];
    snprintf(e->where, sizeof(e->where), "%s", where);
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    return QB_OK;
}

void qb_md_vendor_rejects_deliver(const qb_md_vendor_rejects_t *r,
                                  void (*reject)(void *opaque, const char *where,
                                                 const char *reason),
                                  void *opaque) {
    for (size_t i = 0; i < r->n; i++) {
        QB_DEBUG("%s: %s", r->v[i].where, r->v[i].reason);
        if (reject) reject(opaque, r->v[i].where, r->v[i].reason);
    }
}

void qb_md_vendor_rejects_free(qb_md_vendor_rejects_t *r) {
    free(r->v);
    r->v = NULL;
    r->n = 0;
}
