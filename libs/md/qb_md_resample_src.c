/* qb_md_resample_src.c — see qb_md_resample_src.h. */
#include "md/qb_md_resample_src.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_types.h"
#include "md/qb_md_gaps.h"
#include "md/qb_md_replay.h"
#include "md/qb_md_resample.h"

#define RS_BATCH 4096

typedef struct rs_src_s {
    qb_md_source_t base;
    qb_store_t *store;
    char in_tf[QB_TIMEFRAME_MAX + 1];
    const qb_cal_t *cal;
} rs_src_t;

typedef struct rs_run_s {
    qb_md_resampler_t *rs;
    const qb_md_sink_t *sink;
    qb_time_t from, to;
    qb_bar_t out[RS_BATCH];
    size_t n;
} rs_run_t;

static qb_err_t rs_emit(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                        char *errstr, size_t errstr_size) {
    rs_run_t *r = opaque;
    (void)source;
    for (size_t i = 0; i < n; i++) {
        qb_bar_t done[QB_MD_RESAMPLE_MAX_OUT];
        size_t nd = 0;
        qb_err_t e = qb_md_resampler_push(r->rs, &bars[i], done, &nd, errstr, errstr_size);
        if (e != QB_OK) return e;
        for (size_t k = 0; k < nd; k++) {
            /* Buckets stamped before `from` were read only to complete the
             * first one in range. */
            if (done[k].ts < r->from || (r->to && done[k].ts >= r->to)) continue;
            r->out[r->n++] = done[k];
            if (r->n == RS_BATCH) {
                e = r->sink->bars(r->sink->opaque, r->out, r->n, errstr, errstr_size);
                r->n = 0;
                if (e != QB_OK) return e;
            }
        }
    }
    return QB_OK;
}

static qb_err_t rs_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                         const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    rs_src_t *g = (rs_src_t *)src;
    qb_symbol_t sym;
    if (qb_symbol_set(&sym, req->symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    const qb_cal_t *cal = g->cal;
    qb_err_t e;
    if (!cal) {
        PGresult *res = NULL;
        const char *p[1] = {sym.s};
        e = qb_store_query(g->store, "SELECT asset_class FROM md.assets WHERE symbol = $1", 1, p,
                           &res, errstr, errstr_size);
        if (e != QB_OK) return e;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                              "resample: unknown symbol %s (not in md.assets)", sym.s);
        }
        const char *def = qb_md_default_calendar(PQgetvalue(res, 0, 0));
        PQclear(res);
        if ((e = qb_cal_get(def ? def : "24x7", &cal, errstr, errstr_size)) != QB_OK) return e;
    }
    rs_run_t *r = calloc(1, sizeof *r);
    if (!r) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    e = qb_md_resampler_new(cal, sym.s, g->in_tf, req->timeframe, 0, &r->rs, errstr,
                            errstr_size);
    if (e != QB_OK) {
        free(r);
        return e;
    }
    r->sink = sink;
    r->from = req->from;
    r->to = req->to;
    /* Read a day (or one output bar, when longer) before `from`, so the
     * bucket holding `from` is built whole. */
    int64_t out_ns = QB_NS_PER_DAY;
    if (qb_md_resample_tf_parse(req->timeframe, &out_ns) != QB_OK || out_ns < QB_NS_PER_DAY)
        out_ns = QB_NS_PER_DAY;
    const char *syms[1] = {sym.s};
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.symbols = syms;
    o.nsymbols = 1;
    o.timeframe = g->in_tf;
    o.from = req->from ? req->from - out_ns : 0;
    o.to = req->to;
    qb_md_replay_t *rp = NULL;
    e = qb_md_replay_new(g->store, &o, &rp, errstr, errstr_size);
    if (e == QB_OK) e = qb_md_replay_run(rp, rs_emit, r, errstr, errstr_size);
    /* The bucket still open at the end is not complete: not handed out. */
    if (e == QB_OK && r->n) e = sink->bars(sink->opaque, r->out, r->n, errstr, errstr_size);
    qb_md_replay_destroy(rp);
    qb_md_resampler_destroy(r->rs);
    free(r);
    return e;
}

static void rs_destroy(qb_md_source_t *src) { free(src); }

static const qb_md_source_ops_t rs_ops = {"resample", rs_fetch, rs_destroy};

qb_md_source_t *qb_md_resample_source_new(qb_store_t *store, const char *in_tf,
                                          const qb_cal_t *cal, char *errstr,
                                          size_t errstr_size) {
    int64_t ns;
    if (!store || !in_tf || qb_md_resample_tf_parse(in_tf, &ns) != QB_OK ||
        ns >= QB_NS_PER_DAY) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                   "resample: the input timeframe must be intraday (1m, 5m, 1h ...), got '%.16s'",
                   in_tf ? in_tf : "");
        return NULL;
    }
    rs_src_t *g = calloc(1, sizeof *g);
    if (!g) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->base.ops = &rs_ops;
    g->base.grid_ns = ns; /* session-aligned buckets sit on the input grid */
    g->store = store;
    snprintf(g->in_tf, sizeof g->in_tf, "%s", in_tf);
    g->cal = cal;
    return &g->base;
}
