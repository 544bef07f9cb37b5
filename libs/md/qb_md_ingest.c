/* qb_md_ingest.c — fetch -> validate -> store; see qb_md_ingest.h.
 *
 * The source's sink callback validates each delivered batch immediately
 * (so qb_md_csv_line_of can still name the line of a rejected bar) and
 * appends the accepted bars to a buffer that is stored when full and at the
 * end. */
#include "md/qb_md_ingest.h"
#include "md/qb_md_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"

typedef struct md_ingest_s {
    qb_store_t *store;
    qb_md_source_t *src;
    const qb_md_ingest_opts_t *o;
    const char *source_name;
    const char *timeframe;
    int32_t asset_id;
    size_t batch_size;
    qb_md_validator_t *v;
    qb_bar_t *buf;    /* accepted, not yet stored */
    uint16_t *bflags;
    size_t nbuf;
    qb_bar_t *work;   /* copy of a delivered batch, validated in place */
    uint16_t *wflags;
    size_t wcap;
    qb_md_ingest_result_t *res;
    int is_csv;
} md_ingest_t;

char *qb_md_rejects_json(const int64_t *counts, char *buf, size_t cap) {
    size_t o = 0;
    if (cap == 0) return buf;
    o += (size_t)snprintf(buf, cap, "{");
    int first = 1;
    for (int i = 0; i < QB_MD_REASON_COUNT && o < cap; i++) {
        if (!counts[i]) continue;
        o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\":%lld", first ? "" : ",",
                              qb_md_reason_name((qb_md_reason_t)i), (long long)counts[i]);
        first = 0;
    }
    if (o < cap) snprintf(buf + o, cap - o, "}");
    return buf;
}

static void md_source_reject(void *opaque, const char *where, const char *reason) {
    md_ingest_t *g = opaque;
    g->res->rows_in++;
    g->res->rows_rejected++;
    g->res->rejects_by_reason[qb_md_reason_parse(reason)]++;
    if (g->o->reject_cb) g->o->reject_cb(g->o->opaque, where, reason);
}

static void md_validate_reject(void *opaque, const qb_bar_t *bar, size_t index,
                               qb_md_reason_t reason, const char *message) {
    md_ingest_t *g = opaque;
    g->res->rows_rejected++;
    g->res->rejects_by_reason[reason]++;
    if (!g->o->reject_cb) return;
    char where[600], why[400], ts[QB_TIME_STRLEN];
    int64_t line = g->is_csv ? qb_md_csv_line_of(g->src, index) : 0;
    if (line > 0) {
        snprintf(where, sizeof where, "%s:%lld", qb_md_csv_path(g->src), (long long)line);
    } else {
        qb_time_format(bar->ts, ts, sizeof ts);
        snprintf(where, sizeof where, "%s %s %s %s", g->source_name, bar->symbol.s,
                 bar->timeframe, ts);
    }
    snprintf(why, sizeof why, "%s: %s", qb_md_reason_name(reason), message);
    g->o->reject_cb(g->o->opaque, where, why);
}

static qb_err_t md_store_buf(md_ingest_t *g, char *errstr, size_t errstr_size) {
    if (g->nbuf == 0) return QB_OK;
    qb_md_load_result_t lr;
    int outbox = g->o->outbox && g->o->committed_cb;
    qb_err_t err = qb_md_store_load_bars_ex(g->store, g->asset_id, g->timeframe,
                                            g->source_name, g->buf, g->bflags, g->nbuf,
                                            g->o->conflict_tolerance, outbox, &lr, errstr,
                                            errstr_size);
    if (err) return err;
    g->res->rows_loaded += lr.loaded;
    g->res->rows_duplicate += lr.duplicates;
    g->res->conflicts += lr.conflicts;
    g->res->batches++;
    if (g->o->committed_cb) {
        err = g->o->committed_cb(g->o->opaque, g->buf, g->bflags, g->nbuf, errstr, errstr_size);
        if (err) return err; /* the outbox row stays: a drain re-publishes it */
        if (outbox && (err = qb_md_outbox_done(g->store, lr.outbox_id, errstr, errstr_size)))
            return err;
    }
    g->nbuf = 0;
    return QB_OK;
}

static qb_err_t md_sink_bars(void *opaque, const qb_bar_t *bars, size_t n, char *errstr,
                             size_t errstr_size) {
    md_ingest_t *g = opaque;
    g->res->rows_in += (int64_t)n;
    if (n > g->wcap) {
        qb_bar_t *w = realloc(g->work, n * sizeof(*w));
        if (!w) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "ingest: out of memory");
        g->work = w;
        uint16_t *f = realloc(g->wflags, n * sizeof(*f));
        if (!f) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "ingest: out of memory");
        g->wflags = f;
        g->wcap = n;
    }
    memcpy(g->work, bars, n * sizeof(*bars));
    size_t kept = 0;
    qb_md_validate_batch(g->v, g->work, n, g->wflags, &kept, md_validate_reject, g);
    for (size_t i = 0; i < kept; i++) {
        if (g->wflags[i] & QB_MD_FLAG_OUTLIER) g->res->rows_outlier++;
        g->buf[g->nbuf] = g->work[i];
        g->bflags[g->nbuf] = g->wflags[i];
        if (++g->nbuf == g->batch_size) {
            qb_err_t err = md_store_buf(g, errstr, errstr_size);
            if (err) return err;
        }
    }
    return QB_OK;
}

qb_err_t qb_md_ingest(qb_store_t *store, qb_md_source_t *source, const qb_md_request_t *req,
                      const qb_md_ingest_opts_t *opts, qb_md_ingest_result_t *result,
                      char *errstr, size_t errstr_size) {
    qb_md_ingest_opts_t def;
    memset(&def, 0, sizeof def);
    if (!opts) opts = &def;
    if (!result) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "ingest: result is required");
    memset(result, 0, sizeof(*result));
    if (!store || !source || !req || !req->symbol || !req->timeframe)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "ingest: store, source and request (symbol, timeframe) are required");
    int64_t t0 = qb_time_mono_ns();
    md_ingest_t g;
    memset(&g, 0, sizeof g);
    g.store = store;
    g.src = source;
    g.o = opts;
    g.res = result;
    g.timeframe = req->timeframe;
    g.source_name = opts->source_name ? opts->source_name : qb_md_source_name(source);
    g.batch_size = opts->batch_size ? opts->batch_size : 65536;
    g.is_csv = strcmp(qb_md_source_name(source), "csv") == 0;

    qb_err_t err = qb_md_ingest_log_begin(store, opts->job ? opts->job : "import", g.source_name,
                                          req->symbol, req->timeframe, req->from, req->to,
                                          &result->ingest_id, errstr, errstr_size);
    if (err) return err;
    qb_md_validate_opts_t vo = opts->validate;
    if (vo.grid_ns == 0) vo.grid_ns = source->grid_ns;
    g.v = qb_md_validator_new(req->timeframe, &vo, errstr, errstr_size);
    if (!g.v) {
        err = QB_ERR_INVALID;
        goto done;
    }
    g.buf = malloc(g.batch_size * sizeof(*g.buf));
    g.bflags = malloc(g.batch_size * sizeof(*g.bflags));
    if (!g.buf || !g.bflags) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "ingest: out of memory");
        goto done;
    }
    err = qb_md_asset_get_or_create(store, req->symbol, opts->asset_class ? opts->asset_class : "equity",
                                    &g.asset_id, errstr, errstr_size);
    if (err) goto done;
    qb_md_sink_t sink = {md_sink_bars, md_source_reject, &g};
    err = qb_md_fetch(source, req, &sink, errstr, errstr_size);
    if (!err) err = md_store_buf(&g, errstr, errstr_size);
done:
    result->duration_ms = (qb_time_mono_ns() - t0) / QB_NS_PER_MS;
    {
        char json[1024];
        qb_md_rejects_json(result->rejects_by_reason, json, sizeof json);
        char msg[1024];
        if (err) snprintf(msg, sizeof msg, "%s: %s", qb_err_name(err), errstr && *errstr ? errstr : qb_err_str(err));
        qb_md_ingest_log_t log = {result->rows_in, result->rows_loaded, result->rows_duplicate,
                                  result->rows_rejected, result->rows_outlier, result->conflicts,
                                  json, result->duration_ms, err ? msg : NULL};
        char e2[256];
        if (qb_md_ingest_log_finish(store, result->ingest_id, &log, e2, sizeof e2) != QB_OK)
            QB_WARN("ingest_log %lld: cannot record the result: %s", (long long)result->ingest_id, e2);
    }
    qb_md_validator_destroy(g.v);
    free(g.buf);
    free(g.bflags);
    free(g.work);
    free(g.wflags);
    return err;
}
