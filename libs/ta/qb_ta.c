/* qb_ta.c — the public API of libs/ta (qb_ta.h): spec parsing, instance
 * lifecycle, the streaming update and the batch loop over it.
 *
 * The indicators themselves are rows of ta_kinds[] (qb_ta_kinds.c). This
 * file owns an instance's memory: the instance, its kind state
 * (kind->state_size bytes) and the ring buffers the kind's init asked for
 * through ta_alloc, all freed by qb_ta_destroy. */
#include "ta/qb_ta.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ta/qb_ta_int.h"

/* ---- kinds ------------------------------------------------------------ */

int qb_ta_kind_count(void) { return ta_nkinds; }

const qb_ta_info_t *qb_ta_kind_info(int i) {
    return (i >= 0 && i < ta_nkinds) ? &ta_kinds[i].info : NULL;
}

static const ta_kind_t *ta_find(const char *name, size_t len) {
    for (int i = 0; i < ta_nkinds; i++) {
        const char *k = ta_kinds[i].info.name;
        if (strlen(k) == len && strncasecmp(k, name, len) == 0) return &ta_kinds[i];
    }
    return NULL;
}

/* ---- memory ----------------------------------------------------------- */

double *ta_alloc(qb_ta_t *ta, size_t n) {
    static double dummy[1];
    if (n == 0) n = 1;
    if (ta->nalloc_used < ta->nalloc) { /* reset: hand back the same buffer */
        int i = ta->nalloc_used++;
        QB_ASSERT(ta->alloc_n[i] == n);
        memset(ta->allocs[i], 0, n * sizeof(double));
        return ta->allocs[i];
    }
    if (ta->nalloc == TA_MAX_ALLOCS) {
        ta->nomem = 1;
        return dummy;
    }
    double *p = calloc(n, sizeof(double));
    if (!p) {
        ta->nomem = 1;
        return dummy;
    }
    ta->allocs[ta->nalloc] = p;
    ta->alloc_n[ta->nalloc] = n;
    ta->nalloc++;
    ta->nalloc_used++;
    return p;
}

/* Put the instance in its initial state (first run: also allocates). */
static qb_err_t ta_start(qb_ta_t *ta, char *errstr, size_t errstr_size) {
    memset(ta->st, 0, ta->kind->state_size);
    ta->nalloc_used = 0;
    ta->t = 0;
    ta->ready = 0;
    ta->inputs = ta->kind->inputs;
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) ta->last[k] = NAN;
    return ta->kind->init(ta, errstr, errstr_size);
}

/* ---- spec parsing ----------------------------------------------------- */

static void ta_trim(const char **s, size_t *len) {
    while (*len && isspace((unsigned char)**s)) (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1])) (*len)--;
}

static qb_err_t ta_parse_param(const ta_kind_t *k, int i, const char *s, size_t len,
                               double *out, char *errstr, size_t n) {
    const ta_param_t *pm = &k->params[i];
    char buf[64];
    ta_trim(&s, &len);
    if (len == 0) { /* "macd::30" -> default fast */
        *out = pm->def;
        return QB_OK;
    }
    if (len >= sizeof buf)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: %s: value too long", k->info.name,
                          pm->name);
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v;
    if (pm->is_int) {
        long long iv = strtoll(buf, &end, 10);
        if (*end || end == buf || errno)
            return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: %s must be an integer, got '%s'",
                              k->info.name, pm->name, buf);
        if (iv < (long long)pm->min || iv > (long long)pm->max)
            return qb_err_set(errstr, n, QB_ERR_RANGE, "%s: %s must be %s %lld, got %lld",
                              k->info.name, pm->name, iv < (long long)pm->min ? ">=" : "<=",
                              iv < (long long)pm->min ? (long long)pm->min
                                                      : (long long)pm->max,
                              iv);
        v = (double)iv;
    } else {
        v = strtod(buf, &end);
        if (*end || end == buf || errno || !isfinite(v))
            return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: %s must be a number, got '%s'",
                              k->info.name, pm->name, buf);
        if (v < pm->min || v > pm->max)
            return qb_err_set(errstr, n, QB_ERR_RANGE, "%s: %s must be %s %g, got %g",
                              k->info.name, pm->name, v < pm->min ? ">=" : "<=",
                              v < pm->min ? pm->min : pm->max, v);
    }
    *out = v;
    return QB_OK;
}

static void ta_canonical(qb_ta_t *ta) {
    const ta_kind_t *k = ta->kind;
    size_t off = (size_t)snprintf(ta->spec, sizeof ta->spec, "%s", k->info.name);
    int last = k->ncore; /* print parameters [0, last) */
    for (int i = k->ncore; i < k->nparams; i++)
        if (ta->p[i] != k->params[i].def) last = i + 1;
    for (int i = 0; i < last && off < sizeof ta->spec; i++) {
        if (k->params[i].is_int)
            off += (size_t)snprintf(ta->spec + off, sizeof ta->spec - off, ":%d", ta->ip[i]);
        else
            off += (size_t)snprintf(ta->spec + off, sizeof ta->spec - off, ":%.10g", ta->p[i]);
    }
}

qb_err_t qb_ta_new(const char *spec, qb_ta_t **out, char *errstr, size_t n) {
    if (!spec || !out) return qb_err_set(errstr, n, QB_ERR_INVALID, "ta: no spec");
    const char *s = spec;
    size_t len = strlen(spec);
    ta_trim(&s, &len);
    const char *colon = memchr(s, ':', len);
    size_t nlen = colon ? (size_t)(colon - s) : len;
    const char *name = s;
    ta_trim(&name, &nlen);
    if (nlen == 0) return qb_err_set(errstr, n, QB_ERR_PARSE, "ta: empty indicator name in '%s'", spec);
    const ta_kind_t *k = ta_find(name, nlen);
    if (!k)
        return qb_err_set(errstr, n, QB_ERR_NOT_FOUND, "%.*s: unknown indicator", (int)nlen,
                          name);
    double p[QB_TA_MAX_PARAMS];
    for (int i = 0; i < k->nparams; i++) p[i] = k->params[i].def;
    int np = 0;
    while (colon) {
        const char *a = colon + 1;
        const char *end = s + len;
        colon = memchr(a, ':', (size_t)(end - a));
        size_t alen = colon ? (size_t)(colon - a) : (size_t)(end - a);
        if (np >= k->nparams) {
            if (k->nparams == 0)
                return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: takes no parameters",
                                  k->info.name);
            return qb_err_set(errstr, n, QB_ERR_PARSE, "%s: too many parameters (at most %d: %s)",
                              k->info.name, k->nparams, k->info.syntax);
        }
        qb_err_t err = ta_parse_param(k, np, a, alen, &p[np], errstr, n);
        if (err != QB_OK) return err;
        np++;
    }
    qb_ta_t *ta = calloc(1, sizeof *ta);
    if (!ta) return qb_err_set(errstr, n, QB_ERR_NOMEM, "%s: out of memory", k->info.name);
    ta->kind = k;
    for (int i = 0; i < k->nparams; i++) {
        ta->p[i] = p[i];
        ta->ip[i] = k->params[i].is_int ? (int)p[i] : 0;
    }
    ta->st = calloc(1, k->state_size ? k->state_size : 1);
    if (!ta->st) {
        qb_ta_destroy(ta);
        return qb_err_set(errstr, n, QB_ERR_NOMEM, "%s: out of memory", k->info.name);
    }
    ta_canonical(ta);
    qb_err_t err = ta_start(ta, errstr, n);
    if (err == QB_OK && ta->nomem)
        err = qb_err_set(errstr, n, QB_ERR_NOMEM, "%s: out of memory", k->info.name);
    if (err != QB_OK) {
        qb_ta_destroy(ta);
        return err;
    }
    *out = ta;
    return QB_OK;
}

void qb_ta_destroy(qb_ta_t *ta) {
    if (!ta) return;
    for (int i = 0; i < ta->nalloc; i++) free(ta->allocs[i]);
    free(ta->st);
    free(ta);
}

void qb_ta_reset(qb_ta_t *ta) {
    /* init succeeded with these parameters at creation, so it does again */
    qb_err_t err = ta_start(ta, NULL, 0);
    QB_ASSERT(err == QB_OK);
}

/* ---- description ------------------------------------------------------ */

const char *qb_ta_name(const qb_ta_t *ta) { return ta->kind->info.name; }
const char *qb_ta_spec(const qb_ta_t *ta) { return ta->spec; }
int qb_ta_num_outputs(const qb_ta_t *ta) { return ta->kind->nout; }
int qb_ta_lookback(const qb_ta_t *ta) { return ta->lookback; }
unsigned qb_ta_inputs(const qb_ta_t *ta) { return ta->inputs; }

const char *qb_ta_output_name(const qb_ta_t *ta, int i) {
    if (i < 0 || i >= ta->kind->nout) return NULL;
    return ta->kind->nout == 1 ? "" : ta->kind->outs[i];
}

size_t qb_ta_column(const qb_ta_t *ta, int i, char *buf, size_t cap) {
    int r;
    if (i < 0 || i >= ta->kind->nout) r = snprintf(buf, cap, "%s", "");
    else if (ta->kind->nout == 1) r = snprintf(buf, cap, "%s", ta->spec);
    else r = snprintf(buf, cap, "%s.%s", ta->spec, ta->kind->outs[i]);
    return r < 0 ? 0 : (size_t)r;
}

/* ---- streaming -------------------------------------------------------- */

int qb_ta_update(qb_ta_t *ta, const qb_ta_bar_t *bar, double *out) {
    double o[QB_TA_MAX_OUTPUTS] = {NAN, NAN, NAN};
    ta->kind->update(ta, bar, o);
    int nout = ta->kind->nout;
    ta->ready = ta->t++ >= ta->lookback;
    if (!ta->ready)
        for (int k = 0; k < nout; k++) o[k] = NAN;
    for (int k = 0; k < nout; k++) ta->last[k] = o[k];
    if (out)
        for (int k = 0; k < nout; k++) out[k] = o[k];
    return ta->ready;
}

double qb_ta_value(const qb_ta_t *ta, int i) {
    if (i < 0 || i >= ta->kind->nout) return NAN;
    return ta->last[i];
}

int qb_ta_ready(const qb_ta_t *ta) { return ta->ready; }
int64_t qb_ta_bars(const qb_ta_t *ta) { return ta->t; }

/* ---- batch ------------------------------------------------------------ */

qb_err_t qb_ta_batch(qb_ta_t *ta, const qb_ta_series_t *in, size_t n, double *const *out,
                     char *errstr, size_t errstr_size) {
    if (!in) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: no input", ta->spec);
    static const struct {
        unsigned bit;
        const char *name;
    } need[] = {{QB_TA_IN_OPEN, "open"},     {QB_TA_IN_HIGH, "high"},
                {QB_TA_IN_LOW, "low"},       {QB_TA_IN_CLOSE, "close"},
                {QB_TA_IN_VOLUME, "volume"}, {QB_TA_IN_TIME, "time"}};
    const void *have[] = {in->open, in->high, in->low, in->close, in->volume, in->time};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if ((ta->inputs & need[i].bit) && !have[i] && n > 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: needs the %s series",
                              ta->spec, need[i].name);
    qb_ta_reset(ta);
    int nout = ta->kind->nout;
    double o[QB_TA_MAX_OUTPUTS];
    qb_ta_bar_t b = {0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (in->time) b.time = in->time[i];
        if (in->open) b.open = in->open[i];
        if (in->high) b.high = in->high[i];
        if (in->low) b.low = in->low[i];
        if (in->close) b.close = in->close[i];
        if (in->volume) b.volume = in->volume[i];
        qb_ta_update(ta, &b, o);
        for (int k = 0; k < nout; k++)
            if (out[k]) out[k][i] = o[k];
    }
    return QB_OK;
}

qb_err_t qb_ta_batch_spec(const char *spec, const qb_ta_series_t *in, size_t n,
                          double *const *out, char *errstr, size_t errstr_size) {
    qb_ta_t *ta;
    qb_err_t err = qb_ta_new(spec, &ta, errstr, errstr_size);
    if (err != QB_OK) return err;
    err = qb_ta_batch(ta, in, n, out, errstr, errstr_size);
    qb_ta_destroy(ta);
    return err;
}

/* ---- typed helpers ---------------------------------------------------- */

static qb_err_t ta_close_batch(const char *spec, const double *x, size_t n, double *o0,
                               double *o1, double *o2) {
    qb_ta_series_t in = {.close = x};
    double *out[QB_TA_MAX_OUTPUTS] = {o0, o1, o2};
    return qb_ta_batch_spec(spec, &in, n, out, NULL, 0);
}

qb_err_t qb_ta_sma_batch(const double *x, size_t n, int period, double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "sma:%d", period);
    return ta_close_batch(spec, x, n, out, NULL, NULL);
}
qb_err_t qb_ta_ema_batch(const double *x, size_t n, int period, double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "ema:%d", period);
    return ta_close_batch(spec, x, n, out, NULL, NULL);
}
qb_err_t qb_ta_wma_batch(const double *x, size_t n, int period, double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "wma:%d", period);
    return ta_close_batch(spec, x, n, out, NULL, NULL);
}
qb_err_t qb_ta_rsi_batch(const double *x, size_t n, int period, double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "rsi:%d", period);
    return ta_close_batch(spec, x, n, out, NULL, NULL);
}
qb_err_t qb_ta_stddev_batch(const double *x, size_t n, int period, double nbdev,
                            double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "stddev:%d:%.17g", period, nbdev);
    return ta_close_batch(spec, x, n, out, NULL, NULL);
}
qb_err_t qb_ta_macd_batch(const double *x, size_t n, int fast, int slow, int signal,
                          double *macd, double *sig, double *hist) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "macd:%d:%d:%d", fast, slow, signal);
    return ta_close_batch(spec, x, n, macd, sig, hist);
}
qb_err_t qb_ta_bbands_batch(const double *x, size_t n, int period, double nbdevup,
                            double nbdevdn, double *upper, double *middle, double *lower) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "bbands:%d:%.17g:%.17g", period, nbdevup, nbdevdn);
    return ta_close_batch(spec, x, n, upper, middle, lower);
}
qb_err_t qb_ta_atr_batch(const double *high, const double *low, const double *close,
                         size_t n, int period, double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "atr:%d", period);
    qb_ta_series_t in = {.high = high, .low = low, .close = close};
    double *o[QB_TA_MAX_OUTPUTS] = {out, NULL, NULL};
    return qb_ta_batch_spec(spec, &in, n, o, NULL, 0);
}
qb_err_t qb_ta_correl_batch(const double *x, const double *y, size_t n, int period,
                            double *out) {
    char spec[QB_TA_SPEC_MAX];
    snprintf(spec, sizeof spec, "correl:%d", period);
    qb_ta_series_t in = {.high = x, .low = y};
    double *o[QB_TA_MAX_OUTPUTS] = {out, NULL, NULL};
    return qb_ta_batch_spec(spec, &in, n, o, NULL, 0);
}
