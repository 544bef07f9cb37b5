/* qb_md_ingest.c — fetch -> validate -> store; see qb_md_ingest.h.
 *
 * The source's sink callback validates each delivered batch immediately
 * (so qb_md_csv_line_of can still name the line of a rejected bar) and
 * appends the accepted bars to a buffer that is stored when full and at the
 * end.
 *
 * PIPELINE. A run that fills a first batch starts a loader thread with its
 * own connection (qb_store_new_like) and from then on overlaps the
 * database with the rest: while the loader loads batch k (prepare: COPY and
 * all but the COMMIT; the server's work), this thread publishes batch k-1
 * (committed_cb) and fetches and validates batch k+1. Batch k is committed
 * only once k-1's hook returned QB_OK (else rolled back), so what is stored
 * and published, and in what order, is what the one-thread run gives:
 * commit(k-1) < hook(k-1) < commit(k) < hook(k). The outbox rows are
 * therefore made and locked by the loader's session, which ends with the
 * run (a row left by a failed hook is then free for any drain). A run of
 * one partial batch (most CSV files), or one whose loader cannot start,
 * loads on the caller's store on this thread.
 *
 * Ownership: md_ingest_t owns its two bar buffers (the one being filled
 * and the one the loader has, swapped at each hand-over) and the loader;
 * the loader thread touches only its job (the buffer it was given) and its
 * store between a hand-over and the wait for the job's end. */
#include "md/qb_md_ingest.h"
#include "md/qb_md_outbox.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "md/qb_md_csv.h"

/* ---- the loader thread ----------------------------------------------------- */

typedef enum md_decision_e { MD_UNDECIDED, MD_COMMIT, MD_ROLLBACK } md_decision_t;

typedef struct md_loader_s {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qb_store_t *store; /* the loader's own connection */
    /* The job, set by the ingest thread under mu. */
    int busy;              /* a job was handed over and has not been waited for */
    int finished;          /* the loader is done with it */
    int quit;
    const qb_bar_t *bars;
    const uint16_t *flags;
    size_t n;
    int32_t asset_id;
    const char *timeframe, *source;
    double tolerance;
    int outbox;
    md_decision_t decision; /* for the job's transaction, set after the hand-over */
    int64_t done_id;        /* an outbox row to finish after the job (published) */
    /* The job's result, read after finished. */
    qb_err_t err;
    char errstr[1024];
    qb_md_load_result_t lr;
} md_loader_t;

static void *md_loader_main(void *arg) {
    md_loader_t *L = arg;
    pthread_setname_np(pthread_self(), "qb-md-loader");
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->quit && (!L->busy || L->finished)) pthread_cond_wait(&L->cv, &L->mu);
        if (L->quit) break;
        pthread_mutex_unlock(&L->mu);
        qb_md_load_result_t lr;
        char e[sizeof L->errstr] = "";
        qb_err_t err = qb_md_store_load_bars_prepare(L->store, L->asset_id, L->timeframe,
                                                     L->source, L->bars, L->flags, L->n,
                                                     L->tolerance, L->outbox, &lr, e, sizeof e);
        pthread_mutex_lock(&L->mu);
        while (L->decision == MD_UNDECIDED) pthread_cond_wait(&L->cv, &L->mu);
        md_decision_t d = L->decision;
        int64_t done_id = L->done_id;
        pthread_mutex_unlock(&L->mu);
        if (!err) err = qb_md_store_load_bars_finish(L->store, d == MD_COMMIT, &lr, e, sizeof e);
        if (done_id) { /* the previous batch is on the bus */
            char e2[sizeof L->errstr];
            qb_err_t derr = qb_md_outbox_done(L->store, done_id, e2, sizeof e2);
            if (derr && !err) {
                err = derr;
                snprintf(e, sizeof e, "%s", e2);
            }
        }
        pthread_mutex_lock(&L->mu);
        L->err = err;
        snprintf(L->errstr, sizeof L->errstr, "%s", e);
        L->lr = lr;
        L->finished = 1;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* A loader on a new connection like `store`, connected here; NULL when it
 * cannot start, e.g. the server refuses one more connection (the run then
 * stays on one thread, on `store`). */
static md_loader_t *md_loader_start(qb_store_t *store) {
    md_loader_t *L = calloc(1, sizeof(*L));
    char e[512];
    if (!L) return NULL;
    if (!(L->store = qb_store_new_like(store, e, sizeof e)) ||
        qb_store_ping(L->store, e, sizeof e) != QB_OK) {
        QB_INFO("ingest: no second connection for a loader (%s): loading on one", e);
        qb_store_destroy(L->store);
        free(L);
        return NULL;
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    if (pthread_create(&L->th, NULL, md_loader_main, L) != 0) {
        pthread_cond_destroy(&L->cv);
        pthread_mutex_destroy(&L->mu);
        qb_store_destroy(L->store);
        free(L);
        return NULL;
    }
    return L;
}

/* Hand a job over; decision (may be MD_UNDECIDED, given later by
 * md_loader_decide) and done_id apply to it. */
static void md_loader_submit(md_loader_t *L, const qb_bar_t *bars, const uint16_t *flags,
                             size_t n, int32_t asset_id, const char *timeframe,
                             const char *source, double tolerance, int outbox,
                             md_decision_t decision, int64_t done_id) {
    pthread_mutex_lock(&L->mu);
    L->bars = bars;
    L->flags = flags;
    L->n = n;
    L->asset_id = asset_id;
    L->timeframe = timeframe;
    L->source = source;
    L->tolerance = tolerance;
    L->outbox = outbox;
    L->decision = decision;
    L->done_id = done_id;
    L->busy = 1;
    L->finished = 0;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
}

static void md_loader_decide(md_loader_t *L, md_decision_t d, int64_t done_id) {
    pthread_mutex_lock(&L->mu);
    L->decision = d;
    L->done_id = done_id;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
}

/* Wait for the job handed over (QB_OK at once if none): its result. */
static qb_err_t md_loader_wait(md_loader_t *L, qb_md_load_result_t *lr, char *errstr,
                               size_t errstr_size) {
    memset(lr, 0, sizeof(*lr));
    pthread_mutex_lock(&L->mu);
    if (!L->busy) {
        pthread_mutex_unlock(&L->mu);
        return QB_OK;
    }
    while (!L->finished) pthread_cond_wait(&L->cv, &L->mu);
    L->busy = 0;
    qb_err_t err = L->err;
    *lr = L->lr;
    if (err) qb_err_set(errstr, errstr_size, err, "%s", L->errstr);
    pthread_mutex_unlock(&L->mu);
    return err;
}

/* Roll back a job still undecided, wait, stop the thread, close its
 * connection (releasing its session's outbox locks). NULL: nothing. */
static void md_loader_stop(md_loader_t *L) {
    if (!L) return;
    qb_md_load_result_t lr;
    pthread_mutex_lock(&L->mu);
    if (L->busy && L->decision == MD_UNDECIDED) {
        L->decision = MD_ROLLBACK;
        L->done_id = 0;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    (void)md_loader_wait(L, &lr, NULL, 0);
    /* The session's outbox locks (a row whose hook failed): released now,
     * not when the server gets round to ending the closed session, so the
     * row is free for a drain as soon as the run has returned. */
    char e[256];
    if (qb_store_connected(L->store) &&
        qb_store_exec(L->store, "SELECT pg_advisory_unlock_all()", e, sizeof e) != QB_OK)
        QB_WARN("ingest loader: releasing its outbox locks: %s", e);
    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->th, NULL);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
    qb_store_destroy(L->store);
    free(L);
}

/* ---- the run ----------------------------------------------------------------- */

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
    /* Pipeline (loader != NULL): the batch handed to the loader, committed
     * or about to be, not yet published; its outbox row once committed. */
    md_loader_t *loader;
    int no_loader;    /* could not start one: stay on one thread */
    int store_failed; /* an error of the store or the hook (not the source) */
    qb_bar_t *pub;
    uint16_t *pflags;
    size_t npub;
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

static void md_count_load(md_ingest_t *g, const qb_md_load_result_t *lr) {
    g->res->rows_loaded += lr->loaded;
    g->res->rows_duplicate += lr->duplicates;
    g->res->conflicts += lr->conflicts;
    g->res->batches++;
}

/* One thread: load the buffer, publish it, finish its outbox row. */
static qb_err_t md_store_buf_sync(md_ingest_t *g, char *errstr, size_t errstr_size) {
    qb_md_load_result_t lr;
    int outbox = g->o->outbox && g->o->committed_cb;
    qb_err_t err = qb_md_store_load_bars_ex(g->store, g->asset_id, g->timeframe,
                                            g->source_name, g->buf, g->bflags, g->nbuf,
                                            g->o->conflict_tolerance, outbox, &lr, errstr,
                                            errstr_size);
    if (err) return err;
    md_count_load(g, &lr);
    if (g->o->committed_cb) {
        err = g->o->committed_cb(g->o->opaque, g->buf, g->bflags, g->nbuf, errstr, errstr_size);
        if (err) return err; /* the outbox row stays: a drain re-publishes it */
        if (outbox && (err = qb_md_outbox_done(g->store, lr.outbox_id, errstr, errstr_size)))
            return err;
    }
    g->nbuf = 0;
    return QB_OK;
}

/* Pipeline step: wait for the loader's batch (committed), hand it the
 * buffer (if any bars), publish the committed batch, then let the loader
 * commit the new one, and swap the buffers. With an empty buffer this
 * drains the pipeline by one batch. */
static qb_err_t md_pipe_step(md_ingest_t *g, char *errstr, size_t errstr_size) {
    md_loader_t *L = g->loader;
    int outbox = g->o->outbox && g->o->committed_cb;
    qb_md_load_result_t lr;
    qb_err_t err = md_loader_wait(L, &lr, errstr, errstr_size);
    if (err) return err; /* that batch rolled back; the ones before are published */
    if (g->npub) md_count_load(g, &lr);
    if (g->nbuf)
        md_loader_submit(L, g->buf, g->bflags, g->nbuf, g->asset_id, g->timeframe,
                         g->source_name, g->o->conflict_tolerance, outbox,
                         g->o->committed_cb && g->npub ? MD_UNDECIDED : MD_COMMIT, 0);
    if (g->npub && g->o->committed_cb) {
        err = g->o->committed_cb(g->o->opaque, g->pub, g->pflags, g->npub, errstr, errstr_size);
        /* on error the row stays (the loader's session lock goes with it at
         * the end of the run): a drain re-publishes it */
        int64_t done = err || !outbox ? 0 : lr.outbox_id;
        if (g->nbuf) {
            md_loader_decide(L, err ? MD_ROLLBACK : MD_COMMIT, done);
        } else if (done) { /* the loader is idle: finish the row here */
            err = qb_md_outbox_done(L->store, done, errstr, errstr_size);
        }
        if (err) return err;
    }
    qb_bar_t *b = g->pub;
    uint16_t *f = g->pflags;
    g->pub = g->buf;
    g->pflags = g->bflags;
    g->npub = g->nbuf;
    g->buf = b;
    g->bflags = f;
    g->nbuf = 0;
    return QB_OK;
}

/* Store the buffer: `more` = 1 when it is full and more bars may follow
 * (then a loader is started for the run if there is none yet). */
static qb_err_t md_store_buf(md_ingest_t *g, int more, char *errstr, size_t errstr_size) {
    if (!g->loader && more && !g->no_loader) {
        g->pub = malloc(g->batch_size * sizeof(*g->pub));
        g->pflags = malloc(g->batch_size * sizeof(*g->pflags));
        if (g->pub && g->pflags) g->loader = md_loader_start(g->store);
        if (!g->loader) g->no_loader = 1;
    }
    if (!g->loader) return g->nbuf ? md_store_buf_sync(g, errstr, errstr_size) : QB_OK;
    qb_err_t err = md_pipe_step(g, errstr, errstr_size);
    /* at the end: publish the last batch too */
    while (!err && !more && g->npub) err = md_pipe_step(g, errstr, errstr_size);
    return err;
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
            qb_err_t err = md_store_buf(g, 1, errstr, errstr_size);
            if (err) {
                g->store_failed = 1;
                return err;
            }
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
    if (!err && (err = md_store_buf(&g, 0, errstr, errstr_size))) g.store_failed = 1;
    if (err && !g.store_failed && g.loader) {
        /* The source failed: as on one thread, the bars not yet handed to
         * the store are dropped, but the batch the loader committed (or is
         * committing) is published like every committed batch. */
        char e2[512];
        qb_err_t perr = QB_OK;
        g.nbuf = 0;
        while (!perr && g.npub) perr = md_pipe_step(&g, e2, sizeof e2);
        if (perr) QB_WARN("ingest %s %s: after the source failed, publishing its last stored"
                          " batch failed too: %s", req->symbol, req->timeframe, e2);
    }
done:
    md_loader_stop(g.loader); /* after an error: rolls back what is not decided */
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
    free(g.pub);
    free(g.pflags);
    free(g.work);
    free(g.wflags);
    return err;
}
