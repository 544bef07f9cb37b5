/* qb_md_gaps.c — see qb_md_gaps.h. */
#include "md/qb_md_gaps.h"

#include <stdlib.h>
#include <string.h>

#include "core/qb_types.h"
#include "md/qb_md_replay.h"

const char *qb_md_default_calendar(const char *klass) {
    if (!klass) return NULL;
    if (strcmp(klass, "equity") == 0 || strcmp(klass, "etf") == 0) return "XNYS";
    if (strcmp(klass, "crypto") == 0) return "24x7";
    return NULL;
}

typedef struct times_s {
    qb_time_t *v;
    size_t n, cap;
} times_t;

static qb_err_t collect(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                        char *errstr, size_t errstr_size) {
    times_t *t = opaque;
    (void)source;
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + n) cap *= 2;
        qb_time_t *v = realloc(t->v, cap * sizeof(*v));
        if (!v) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        t->v = v;
        t->cap = cap;
    }
    for (size_t i = 0; i < n; i++) t->v[t->n++] = bars[i].ts;
    return QB_OK;
}

void qb_md_gaps_free(qb_md_gaps_t *g) {
    if (!g) return;
    free(g->spans);
    memset(g, 0, sizeof *g);
}

qb_err_t qb_md_gaps_find(qb_store_t *s, const char *symbol, const char *timeframe,
                         const qb_cal_t *cal, qb_time_t from, qb_time_t to, qb_md_gaps_t *out,
                         char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof *out);
    qb_symbol_t sym;
    if (qb_symbol_set(&sym, symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    int64_t tf_ns;
    if (!timeframe || qb_timeframe_parse(timeframe, &tf_ns) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "unknown timeframe '%.16s'",
                          timeframe ? timeframe : "");
    if (tf_ns > QB_NS_PER_DAY)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "gaps are defined for timeframes up to 1d, not %s", timeframe);
    if (from && to && to <= from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "empty range (to <= from)");
    PGresult *res = NULL;
    const char *p[1] = {sym.s};
    qb_err_t e = qb_store_query(s, "SELECT asset_class FROM md.assets WHERE symbol = $1", 1, p,
                                &res, errstr, errstr_size);
    if (e != QB_OK) return e;
    int known = PQntuples(res) == 1;
    char klass[32] = "";
    if (known) snprintf(klass, sizeof klass, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!known && !(from && to))
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                          "unknown symbol %s (not in md.assets)", sym.s);
    if (!cal) {
        const char *def = qb_md_default_calendar(known ? klass : "equity");
        if (!def)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s is a%s %s asset: no default calendar, choose one", sym.s,
                              klass[0] == 'e' ? "n" : "", klass);
        if ((e = qb_cal_get(def, &cal, errstr, errstr_size)) != QB_OK) return e;
    }
    out->cal = cal;
    times_t have = {0};
    if (known) {
        const char *syms[1] = {sym.s};
        qb_md_replay_opts_t o;
        memset(&o, 0, sizeof o);
        o.symbols = syms;
        o.nsymbols = 1;
        o.timeframe = timeframe;
        o.from = from;
        o.to = to;
        qb_md_replay_t *r = NULL;
        e = qb_md_replay_new(s, &o, &r, errstr, errstr_size);
        if (e == QB_OK) e = qb_md_replay_run(r, collect, &have, errstr, errstr_size);
        qb_md_replay_destroy(r);
        if (e != QB_OK) {
            free(have.v);
            return e;
        }
    }
    out->stored = have.n;
    if (!from || !to) {
        if (have.n == 0) {
            free(have.v);
            out->from = from;
            out->to = to;
            return QB_OK;
        }
        if (!from) from = have.v[0];
        if (!to) to = have.v[have.n - 1] + tf_ns;
    }
    out->from = from;
    out->to = to;
    /* Stored bars split the range into at most n + 1 gaps. */
    size_t cap = have.n + 1, total = 0;
    out->spans = calloc(cap, sizeof(*out->spans));
    if (!out->spans) {
        free(have.v);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    e = qb_cal_gaps(cal, tf_ns, have.v, have.n, from, to, out->spans, cap, &total,
                    &out->missing, errstr, errstr_size);
    free(have.v);
    if (e != QB_OK) {
        qb_md_gaps_free(out);
        return e;
    }
    out->nspans = total < cap ? total : cap;
    return QB_OK;
}
