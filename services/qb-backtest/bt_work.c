/* bt_work.c — what qb-backtest does with each BacktestRequest (the design
 * is written out in main.c's header comment; this file implements it):
 *   WHOLE_RUN, no search  -> bt_one: load, run, store, FINISHED;
 *   WHOLE_RUN, search     -> bt_split: plan, store the run and its first
 *                            units (outbox), publish the units;
 *   IS / OOS / GRID_UNIT  -> bt_unit: evaluate (data set and plan cached
 *                            per run), then bt_advance under the run row's
 *                            lock: store the result, feed the aggregator,
 *                            issue what became due, finish when complete.
 * Owns the cache of data sets (bt_entry_t), the bars loader, the event and
 * part messages it builds; borrows the store and the producer. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bt.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "proto/qb_proto.h"

/* Namespace of the deterministic event and part ids (never to change). */
#define BT_NS "5b0e3c7a-2f41-4d8e-9a63-71c2e8d4b915"
#define BT_FLUSH_MS 10000

typedef struct bt_entry_s {
    int used;
    int64_t stamp;
    bt_job_t job;
    qb_bt_data_t *data;
    qb_wf_plan_t *plan;   /* WF */
    qb_wf_agg_t *agg;     /* WF; NULL until the first advance */
    int64_t last_seq;     /* results fed to agg: done_seq <= last_seq */
    uint64_t fp;
    char fp_hex[24];
    int64_t bars;
    int64_t load_ms;
} bt_entry_t;

struct bt_work_s {
    bt_work_cfg_t cfg;
    qb_store_t *st;
    qb_producer_t *prod;
    bt_bars_t *bars;
    char worker[128];
    bt_entry_t *cache;
    size_t ncache;
    int64_t clock;
    qb_time_t next_tick;
    int in_tick;
    /* the one-run backtest in progress (progress callback) */
    const char *prog_run;
    qb_time_t prog_t;
    double prog_p;
    int64_t prog_bars;
    qb_counter_t *c_runs, *c_units, *c_finished, *c_failed, *c_events, *c_resent, *c_ignored;
    qb_hist_t *h_unit, *h_load;
};

/* ---- small helpers ------------------------------------------------------------------ */

static qb_time_t bt_ms_since(qb_time_t t0) { return (qb_time_mono_ns() - t0) / QB_NS_PER_MS; }

static void bt_hexfp(uint64_t fp, char out[24]) { snprintf(out, 24, "%016" PRIx64, fp); }

static void bt_rollback(bt_work_t *w) {
    char x[128];
    if (qb_store_in_transaction(w->st)) (void)qb_store_rollback(w->st, x, sizeof x);
}

static void bt_entry_clear(bt_entry_t *e) {
    qb_wf_agg_destroy(e->agg);
    qb_wf_plan_destroy(e->plan);
    qb_bt_data_destroy(e->data);
    bt_job_free(&e->job);
    memset(e, 0, sizeof *e);
}

static bt_entry_t *bt_entry_find(bt_work_t *w, const char *run_id) {
    for (size_t i = 0; i < w->ncache; i++)
        if (w->cache[i].used && !strcmp(w->cache[i].job.run_id, run_id)) {
            w->cache[i].stamp = ++w->clock;
            return &w->cache[i];
        }
    return NULL;
}

static void bt_entry_drop(bt_work_t *w, const char *run_id) {
    for (size_t i = 0; i < w->ncache; i++)
        if (w->cache[i].used && !strcmp(w->cache[i].job.run_id, run_id)) bt_entry_clear(&w->cache[i]);
}

static void bt_tick_cb(void *ctx) { bt_work_tick(ctx); }

/* The data set, job and plan of a split run: cached, or loaded and planned
 * (the same on every replica for the same request and bars). */
static qb_err_t bt_entry_get(bt_work_t *w, const Qb__V1__BacktestRequest *rq, bt_entry_t **out,
                             char *errstr, size_t errstr_size) {
    bt_entry_t *e = bt_entry_find(w, rq->run_id);
    if (e) {
        *out = e;
        return QB_OK;
    }
    bt_entry_t n;
    memset(&n, 0, sizeof n);
    qb_err_t err = bt_job_from_request(rq, &n.job, errstr, errstr_size);
    if (err) return err;
    if (n.job.kind == BT_KIND_BACKTEST) {
        bt_job_free(&n.job);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "not a split run");
    }
    qb_time_t t0 = qb_time_mono_ns();
    err = bt_bars_load(w->bars, &n.job, w->cfg.max_bars, bt_tick_cb, w, &n.data, errstr,
                       errstr_size);
    if (err) {
        bt_job_free(&n.job);
        return err;
    }
    n.load_ms = bt_ms_since(t0);
    n.bars = (int64_t)qb_bt_data_total_bars(n.data);
    qb_hist_observe(w->h_load, (double)n.load_ms / 1e3);
    bt_job_resolve(&n.job, n.data);
    if (n.job.kind == BT_KIND_WF) {
        err = qb_wf_plan_new(n.data, n.job.cfg, n.job.space, &n.job.spec, &n.plan, errstr,
                             errstr_size);
        if (!err && n.job.wf_windows && qb_wf_plan_nwindows(n.plan) < n.job.wf_windows)
            err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                             "walk_forward.windows: %u windows asked for, the bars of the period "
                             "hold %zu",
                             n.job.wf_windows, qb_wf_plan_nwindows(n.plan));
        if (!err) n.fp = qb_wf_plan_fingerprint(n.plan);
    } else {
        n.fp = bt_job_grid_fingerprint(&n.job, n.data);
    }
    if (err) {
        if (err != QB_ERR_NOMEM) err = QB_ERR_INVALID;
        bt_entry_clear(&n);
        return err;
    }
    bt_hexfp(n.fp, n.fp_hex);
    /* a free slot, or the least recently used */
    size_t k = 0;
    for (size_t i = 0; i < w->ncache; i++) {
        if (!w->cache[i].used) {
            k = i;
            break;
        }
        if (w->cache[i].stamp < w->cache[k].stamp) k = i;
    }
    if (w->cache[k].used) {
        QB_INFO("run %s: data set dropped from the cache", w->cache[k].job.run_id);
        bt_entry_clear(&w->cache[k]);
    }
    n.used = 1;
    n.stamp = ++w->clock;
    w->cache[k] = n;
    QB_INFO("run %s: %lld bars of %zu symbols loaded in %lld ms; plan %s", n.job.run_id,
            (long long)n.bars, n.job.nsymbols, (long long)n.load_ms, n.fp_hex);
    *out = &w->cache[k];
    return QB_OK;
}

/* ---- messages -------------------------------------------------------------------------- */

static void bt_pb_metrics(const qb_bt_metrics_t *m, qb_dec_t commission,
                          Qb__V1__BacktestEvent__Metrics *pm) {
    pm->total_return = m->total_return;
    pm->cagr = m->cagr;
    pm->sharpe = m->sharpe;
    pm->sortino = m->sortino;
    pm->max_drawdown = m->max_dd_pct;
    pm->volatility = m->volatility;
    pm->win_rate = m->win_rate;
    pm->profit_factor = isfinite(m->profit_factor) ? m->profit_factor : 0;
    pm->exposure = m->exposure;
    pm->trades = (uint32_t)(m->trades_closed > UINT32_MAX ? UINT32_MAX : m->trades_closed);
    pm->final_equity = m->final_equity;
    pm->commission_paid = commission;
}

typedef struct bt_ev_s {
    Qb__V1__BacktestEventKind kind;
    Qb__V1__BacktestRequestKind part;
    uint32_t window;
    double progress;
    uint64_t bars;
    const qb_bt_metrics_t *m;
    qb_dec_t commission;
    const char *params, *error;
    uint64_t units_done, units_total;
    const char *id_name; /* deterministic event id from this name; NULL = random */
} bt_ev_t;

static qb_err_t bt_event(bt_work_t *w, const char *run_id, const bt_ev_t *ev) {
    char event_id[QB_UUID_STRLEN];
    if (ev->id_name) {
        char name[256];
        int n = snprintf(name, sizeof name, "%s|%s", run_id, ev->id_name);
        qb_uuid_v5(BT_NS, name, (size_t)n, event_id);
    } else qb_uuid_v4(event_id);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = event_id;
    h.event_time = qb_time_now();
    h.produced_time = h.event_time;
    h.producer = "qb-backtest";
    h.trace_id = (char *)(qb_log_trace() ? qb_log_trace() : "");
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__BacktestEvent e = QB__V1__BACKTEST_EVENT__INIT;
    Qb__V1__BacktestEvent__Metrics pm = QB__V1__BACKTEST_EVENT__METRICS__INIT;
    e.header = &h;
    e.run_id = (char *)run_id;
    e.kind = ev->kind;
    e.part = ev->part;
    e.window_index = ev->window;
    e.progress = ev->progress;
    e.bars_processed = ev->bars;
    if (ev->m) {
        bt_pb_metrics(ev->m, ev->commission, &pm);
        e.metrics = &pm;
    }
    e.params_json = (char *)(ev->params ? ev->params : "");
    e.error = (char *)(ev->error ? ev->error : "");
    e.units_done = ev->units_done;
    e.units_total = ev->units_total;
    qb_err_t err = qb_producer_send_msg(w->prod, "backtest.events", run_id, strlen(run_id),
                                        &e.base, NULL);
    if (!err) qb_counter_inc(w->c_events);
    else QB_WARN("run %s: event not queued: %s", run_id, qb_err_str(err));
    return err;
}

static void bt_progress_event(bt_work_t *w, const char *run_id, double p, uint64_t bars,
                              uint64_t done, uint64_t total) {
    bt_ev_t ev = {QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_PROGRESS,
                  QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN, 0, p, bars, NULL,
                  0, NULL, NULL, done, total, NULL};
    (void)bt_event(w, run_id, &ev);
}

/* Publish a run's FINISHED or FAILED event from what is stored, then
 * remember it was acknowledged. Failures are left to the sweep. */
static void bt_send_final(bt_work_t *w, const char *run_id) {
    char err[512];
    bt_final_t f;
    if (bt_db_final(w->st, run_id, &f, err, sizeof err) != QB_OK) {
        QB_WARN("run %s: final event: %s (re-sent later)", run_id, err);
        return;
    }
    int ok = !strcmp(f.status, "finished");
    if (!ok && strcmp(f.status, "failed")) {
        bt_final_free(&f);
        return;
    }
    bt_ev_t ev = {ok ? QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FINISHED
                     : QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FAILED,
                  QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN,
                  0,
                  ok ? 1.0 : 0.0,
                  (uint64_t)f.bars,
                  f.has_metrics ? &f.m : NULL,
                  f.commission,
                  f.params,
                  f.error,
                  (uint64_t)f.units_done,
                  (uint64_t)f.units_total,
                  "final"};
    qb_err_t e = bt_event(w, run_id, &ev);
    if (!e) e = qb_producer_flush(w->prod, BT_FLUSH_MS);
    if (!e) e = bt_db_final_sent(w->st, run_id, err, sizeof err);
    if (e) QB_WARN("run %s: final event not confirmed (%s): re-sent later", run_id, qb_err_str(e));
    else {
        qb_counter_inc(ok ? w->c_finished : w->c_failed);
        QB_INFO("run %s %s%s%s", run_id, f.status, ok ? "" : ": ", ok ? "" : f.error);
    }
    bt_final_free(&f);
}

/* The run failed: stored (whatever its state, unless finished) and told. */
static void bt_fail(bt_work_t *w, const char *run_id_in, const char *kind_in, const void *req,
                    size_t len, const char *error) {
    char err[512], run_id[BT_RUN_ID_MAX + 1], kind[16];
    /* the arguments may point into the cached entry this drops */
    snprintf(run_id, sizeof run_id, "%s", run_id_in);
    snprintf(kind, sizeof kind, "%s", kind_in);
    bt_rollback(w);
    qb_err_t e = bt_db_run_fail(w->st, run_id, kind, req, len, error, err, sizeof err);
    if (e) {
        QB_WARN("run %s: cannot store the failure (%s): %s", run_id, err, error);
        return;
    }
    QB_WARN("run %s failed: %s", run_id, error);
    bt_entry_drop(w, run_id);
    bt_send_final(w, run_id);
}

static Qb__V1__BacktestRequestKind bt_part_kind(const char *k) {
    if (!strcmp(k, "is")) return QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_IS_UNIT;
    if (!strcmp(k, "oos")) return QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_OOS_UNIT;
    return QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_GRID_UNIT;
}

/* One part on backtest.requests: the run's request with the part's fields;
 * key RUN_ID/PART so parts spread over the partitions. */
static qb_err_t bt_send_unit(bt_work_t *w, const Qb__V1__BacktestRequest *tmpl,
                             const char *fp_hex, const bt_unit_t *u) {
    char event_id[QB_UUID_STRLEN], key[BT_RUN_ID_MAX + BT_UNIT_MAX + 2];
    int kl = snprintf(key, sizeof key, "%s/%s", tmpl->run_id, u->name);
    qb_uuid_v5(BT_NS, key, (size_t)kl, event_id);
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = event_id;
    h.event_time = tmpl->header ? tmpl->header->event_time : qb_time_now();
    h.produced_time = qb_time_now();
    h.producer = "qb-backtest";
    h.trace_id = (char *)(qb_log_trace() ? qb_log_trace() : "");
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__BacktestRequest m = *tmpl; /* shallow: tmpl's strings, never freed here */
    m.header = &h;
    m.kind = bt_part_kind(u->kind);
    m.window_index = u->window;
    m.combo_begin = u->c0;
    m.combo_end = u->c1;
    m.plan_fingerprint = (char *)fp_hex;
    m.group = (char *)w->cfg.group;
    m.unit = (char *)u->name;
    return qb_producer_send_msg(w->prod, "backtest.requests", key, (size_t)kl, &m.base, NULL);
}

/* Publish units[idx[i]], wait for the acks, mark them published. */
static qb_err_t bt_publish_units(bt_work_t *w, const Qb__V1__BacktestRequest *tmpl,
                                 const char *fp_hex, const bt_unit_t *u, const size_t *idx,
                                 size_t n, char *errstr, size_t errstr_size) {
    if (!n) return QB_OK;
    for (size_t i = 0; i < n; i++) {
        qb_err_t e = bt_send_unit(w, tmpl, fp_hex, &u[idx ? idx[i] : i]);
        if (e) return qb_err_set(errstr, errstr_size, e, "part not queued: %s", qb_err_str(e));
    }
    qb_err_t e = qb_producer_flush(w->prod, BT_FLUSH_MS);
    if (e) return qb_err_set(errstr, errstr_size, e, "parts not acknowledged: %s", qb_err_str(e));
    return bt_db_units_published(w->st, tmpl->run_id, u, idx, n, errstr, errstr_size);
}

/* ---- a run in one go ------------------------------------------------------------------------ */

static int bt_prog_cb(uint64_t done, uint64_t total, void *ctx) {
    bt_work_t *w = ctx;
    double p = total ? (double)done / (double)total : 1;
    qb_time_t now = qb_time_mono_ns();
    if ((int)(p * 20) > (int)(w->prog_p * 20) ||
        now - w->prog_t >= (w->cfg.progress_ms - 100) * QB_NS_PER_MS) {
        char err[256];
        bt_progress_event(w, w->prog_run, p, (uint64_t)((double)w->prog_bars * p), 0, 0);
        if (bt_db_run_progress(w->st, w->prog_run, p, 1, err, sizeof err))
            QB_WARN("run %s: progress not stored: %s", w->prog_run, err);
        qb_producer_poll(w->prod, 0);
        w->prog_p = p;
        w->prog_t = now;
    }
    return 0;
}

static qb_err_t bt_one(bt_work_t *w, const qb_bus_msg_t *msg, const Qb__V1__BacktestRequest *rq,
                       bt_job_t *j, int exists, char *errstr, size_t errstr_size) {
    qb_err_t e;
    int inserted = 0;
    if (!exists &&
        (e = bt_db_run_insert(w->st, j, msg->payload, msg->len, "", 0, 0, w->worker, &inserted,
                              errstr, errstr_size)))
        return e;
    qb_time_t t0 = qb_time_mono_ns();
    qb_bt_data_t *d = NULL;
    e = bt_bars_load(w->bars, j, w->cfg.max_bars, bt_tick_cb, w, &d, errstr, errstr_size);
    if (e) {
        if (qb_err_is_retriable(e) || e == QB_ERR_NOMEM) return e;
        bt_fail(w, j->run_id, "backtest", msg->payload, msg->len, errstr);
        return QB_ERR_INVALID;
    }
    int64_t load_ms = bt_ms_since(t0);
    qb_hist_observe(w->h_load, (double)load_ms / 1e3);
    bt_job_resolve(j, d);
    t0 = qb_time_mono_ns();
    w->prog_run = j->run_id;
    w->prog_t = qb_time_mono_ns();
    w->prog_p = 0;
    w->prog_bars = (int64_t)qb_bt_data_total_bars(d);
    j->cfg->progress = bt_prog_cb;
    j->cfg->progress_ctx = w;
    j->cfg->keep_fills = 0; /* fills are not stored: do not keep them */
    size_t nsteps = 0;
    qb_bt_data_steps(d, &nsteps);
    j->cfg->progress_every = nsteps / 200 ? nsteps / 200 : 1; /* 0.5% steps */
    qb_bt_result_t *res = NULL;
    e = qb_bt_run(d, j->cfg, &res, errstr, errstr_size);
    w->prog_run = NULL;
    if (e) {
        qb_bt_data_destroy(d);
        if (e == QB_ERR_NOMEM) return e;
        bt_fail(w, j->run_id, "backtest", msg->payload, msg->len, errstr);
        return QB_ERR_INVALID;
    }
    size_t np;
    const qb_bt_point_t *pts = qb_bt_result_equity(res, &np);
    bt_run_row_t row;
    if (!(e = qb_store_begin(w->st, errstr, errstr_size)) &&
        !(e = bt_db_run_get(w->st, j->run_id, 1, &row, errstr, errstr_size)) &&
        !strcmp(row.status, "running") &&
        !(e = bt_db_results_clear(w->st, j->run_id, errstr, errstr_size)) &&
        !(e = bt_db_metrics(w->st, j->run_id, qb_bt_result_metrics(res),
                            qb_bt_result_counts(res)->commissions, j->cfg->strategies[0].params,
                            qb_bt_result_benchmark(res), NULL, errstr, errstr_size)) &&
        !(e = bt_db_equity(w->st, j->run_id, pts, np, errstr, errstr_size)) &&
        !(e = bt_db_trades_bt(w->st, j->run_id, res, errstr, errstr_size)) &&
        !(e = bt_db_run_finish(w->st, j->run_id, load_ms, bt_ms_since(t0), errstr, errstr_size)))
        e = qb_store_commit(w->st, errstr, errstr_size);
    else if (!e) e = qb_store_commit(w->st, errstr, errstr_size); /* not running any more */
    bt_rollback(w);
    if (!e)
        QB_INFO("run %s: %zu bars, %zu steps: loaded in %lld ms, run and stored in %lld ms",
                j->run_id, qb_bt_data_total_bars(d), np, (long long)load_ms,
                (long long)bt_ms_since(t0));
    qb_bt_result_destroy(res);
    qb_bt_data_destroy(d);
    if (e == QB_ERR_NOT_FOUND) e = QB_OK; /* deleted meanwhile */
    if (e) return e == QB_ERR_CONFLICT ? QB_ERR_UNAVAILABLE : e;
    (void)rq;
    bt_send_final(w, j->run_id);
    return QB_OK;
}

/* ---- splitting a run ----------------------------------------------------------------------- */

/* The first units: every IS unit (WF) or every range of combinations
 * (grid), in batches. *out malloc'd. */
static qb_err_t bt_first_units(bt_work_t *w, bt_entry_t *e, bt_unit_t **out, size_t *n,
                               char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    uint64_t batch = (uint64_t)w->cfg.batch;
    if (e->job.kind == BT_KIND_WF) {
        qb_wf_agg_t *a = NULL;
        if (qb_wf_agg_new(e->plan, &a) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        size_t k = qb_wf_agg_next(a, batch, NULL, 0);
        qb_wf_unit_t *wu = calloc(k ? k : 1, sizeof *wu);
        bt_unit_t *u = calloc(k ? k : 1, sizeof *u);
        if (!wu || !u) {
            free(wu);
            free(u);
            qb_wf_agg_destroy(a);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        qb_wf_agg_next(a, batch, wu, k);
        for (size_t i = 0; i < k; i++)
            bt_unit_make(&u[i], wu[i].kind == QB_WF_UNIT_IS ? "is" : "oos", wu[i].window,
                         wu[i].combo, wu[i].combo_end);
        free(wu);
        qb_wf_agg_destroy(a);
        *out = u;
        *n = k;
        return QB_OK;
    }
    uint64_t nc = qb_search_ncombos(e->job.space);
    size_t k = (size_t)((nc + batch - 1) / batch);
    bt_unit_t *u = calloc(k ? k : 1, sizeof *u);
    if (!u) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        uint64_t c0 = i * batch, c1 = c0 + batch < nc ? c0 + batch : nc;
        bt_unit_make(&u[i], "grid", 0, c0, c1);
    }
    *out = u;
    *n = k;
    return QB_OK;
}

static uint64_t bt_units_total(const bt_entry_t *e) {
    return e->job.kind == BT_KIND_WF ? qb_wf_plan_nunits(e->plan)
                                     : qb_search_ncombos(e->job.space);
}

static qb_err_t bt_split(bt_work_t *w, const qb_bus_msg_t *msg, const Qb__V1__BacktestRequest *rq,
                         char *errstr, size_t errstr_size) {
    bt_entry_t *e = NULL;
    qb_err_t err = bt_entry_get(w, rq, &e, errstr, errstr_size);
    if (err) {
        if (qb_err_is_retriable(err) || err == QB_ERR_NOMEM) return err;
        bt_job_t j;
        const char *kind = rq->walk_forward ? "walk_forward" : "grid";
        (void)j;
        bt_fail(w, rq->run_id, kind, msg->payload, msg->len, errstr);
        return QB_ERR_INVALID;
    }
    bt_unit_t *u = NULL;
    size_t nu = 0, *fresh = NULL, nfresh = 0;
    if ((err = bt_first_units(w, e, &u, &nu, errstr, errstr_size))) return err;
    /* The request every part copies: the end resolved (the same bars for all). */
    Qb__V1__BacktestRequest eff = *rq;
    eff.end_time = e->job.to;
    size_t len = protobuf_c_message_get_packed_size(&eff.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free(u);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    protobuf_c_message_pack(&eff.base, buf);
    int inserted = 0;
    if (!(err = qb_store_begin(w->st, errstr, errstr_size)) &&
        !(err = bt_db_run_insert(w->st, &e->job, buf, len, e->fp_hex, (int64_t)bt_units_total(e),
                                 e->bars, w->worker, &inserted, errstr, errstr_size)) &&
        inserted &&
        !(err = bt_db_units_issue(w->st, rq->run_id, u, nu, &fresh, &nfresh, errstr,
                                  errstr_size)))
        err = qb_store_commit(w->st, errstr, errstr_size);
    bt_rollback(w);
    free(buf);
    if (!err && inserted) {
        QB_INFO("run %s: %s split into %zu parts (%llu units of work), plan %s", rq->run_id,
                bt_kind_name(e->job.kind), nu, (unsigned long long)bt_units_total(e), e->fp_hex);
        qb_counter_inc(w->c_runs);
        bt_progress_event(w, rq->run_id, 0, 0, 0, bt_units_total(e));
        err = bt_publish_units(w, &eff, e->fp_hex, u, fresh, nfresh, errstr, errstr_size);
        if (err) QB_WARN("run %s: %s (the sweep re-sends them)", rq->run_id, errstr);
        err = QB_OK;
    }
    free(fresh);
    free(u);
    return err;
}

/* ---- units ----------------------------------------------------------------------------- */

typedef struct bt_feed_s {
    bt_entry_t *e;
} bt_feed_t;

/* One stored unit result into the aggregator. */
static qb_err_t bt_feed_cb(void *ctx, const char *kind, uint32_t window, const char *res,
                           size_t len, char *errstr, size_t errstr_size) {
    bt_feed_t *f = ctx;
    qb_err_t e;
    if (!strcmp(kind, "oos")) {
        qb_wf_oos_t *o = NULL;
        if ((e = qb_wf_oos_parse(res, len, &o, errstr, errstr_size))) return QB_ERR_INTERNAL;
        e = qb_wf_agg_add_oos(f->e->agg, o, errstr, errstr_size);
        qb_wf_oos_destroy(o);
        return e ? QB_ERR_INTERNAL : QB_OK;
    }
    const char *p = res, *end = res + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l) {
            qb_search_score_t sc;
            if ((e = qb_search_score_parse(p, l, &sc, errstr, errstr_size))) return QB_ERR_INTERNAL;
            if ((e = qb_wf_agg_add_is(f->e->agg, window, &sc, 1, errstr, errstr_size)))
                return QB_ERR_INTERNAL;
        }
        p += l + 1;
    }
    return QB_OK;
}

typedef struct bt_grid_s {
    qb_search_score_t *scores;
    uint8_t *seen;
    uint64_t n;
} bt_grid_t;

static qb_err_t bt_grid_cb(void *ctx, const char *kind, uint32_t window, const char *res,
                           size_t len, char *errstr, size_t errstr_size) {
    bt_grid_t *g = ctx;
    (void)kind;
    (void)window;
    const char *p = res, *end = res + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (l) {
            qb_search_score_t sc;
            if (qb_search_score_parse(p, l, &sc, errstr, errstr_size)) return QB_ERR_INTERNAL;
            if (sc.combo >= g->n)
                return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "combination %" PRIu64
                                  " out of range", sc.combo);
            g->scores[sc.combo] = sc;
            g->seen[sc.combo] = 1;
        }
        p += l + 1;
    }
    return QB_OK;
}

/* Everything in: the walk-forward result into the tables. */
static qb_err_t bt_finish_wf(bt_work_t *w, bt_entry_t *e, char *errstr, size_t errstr_size) {
    qb_wf_result_t *r = NULL;
    qb_err_t err = qb_wf_agg_finish(e->agg, &r, errstr, errstr_size);
    if (err) return err == QB_ERR_NOMEM ? err : QB_ERR_INTERNAL;
    size_t np, nt;
    const qb_bt_point_t *pts = qb_wf_result_equity(r, &np);
    const qb_wf_trade_t *t = qb_wf_result_trades(r, &nt);
    qb_dec_t comm = 0;
    for (size_t i = 0; i < nt; i++) comm += t[i].t.commission;
    char params[2048] = "";
    for (uint32_t k = (uint32_t)qb_wf_result_nwindows(r); k-- > 0;)
        if (qb_wf_result_window(r, k)->combo >= 0) {
            qb_wf_result_combo_json(r, k, params, sizeof params);
            break;
        }
    char *sum = NULL;
    size_t slen = 0;
    FILE *mf = open_memstream(&sum, &slen);
    if (!mf) {
        qb_wf_result_destroy(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    qb_err_t je = qb_wf_result_json(r, 0, mf);
    fclose(mf);
    if (je && sum) sum[0] = 0;
    if (!(err = bt_db_results_clear(w->st, e->job.run_id, errstr, errstr_size)) &&
        !(err = bt_db_metrics(w->st, e->job.run_id, qb_wf_result_metrics(r), comm, params, NULL,
                              sum, errstr, errstr_size)) &&
        !(err = bt_db_windows(w->st, e->job.run_id, r, errstr, errstr_size)) &&
        !(err = bt_db_equity(w->st, e->job.run_id, pts, np, errstr, errstr_size)) &&
        !(err = bt_db_trades_wf(w->st, e->job.run_id, r, errstr, errstr_size)))
        err = bt_db_run_finish(w->st, e->job.run_id, e->load_ms, 0, errstr, errstr_size);
    free(sum);
    qb_wf_result_destroy(r);
    return err;
}

/* Every combination in: rank, store the ranking, run the best one over the
 * whole period and store it as the run's result. */
static qb_err_t bt_finish_grid(bt_work_t *w, bt_entry_t *e, char *errstr, size_t errstr_size) {
    bt_grid_t g = {0};
    g.n = qb_search_ncombos(e->job.space);
    g.scores = calloc(g.n ? g.n : 1, sizeof *g.scores);
    g.seen = calloc(g.n ? g.n : 1, 1);
    qb_bt_config_t *bc = malloc(sizeof *bc);
    qb_bt_result_t *res = NULL;
    qb_err_t err = QB_OK;
    int64_t last = 0;
    if (!g.scores || !g.seen || !bc) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((err = bt_db_unit_results(w->st, e->job.run_id, 0, &last, bt_grid_cb, &g, errstr,
                                  errstr_size)))
        goto out;
    for (uint64_t c = 0; c < g.n; c++)
        if (!g.seen[c]) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL,
                             "combination %" PRIu64 " has no stored score", c);
            goto out;
        }
    for (uint64_t c = 0; c < g.n; c++) qb_search_score_finish(&g.scores[c], &e->job.obj);
    qb_search_rank(&e->job.obj, g.scores, (size_t)g.n);
    if ((err = bt_db_results_clear(w->st, e->job.run_id, errstr, errstr_size)) ||
        (err = bt_db_scores(w->st, e->job.run_id, e->job.space, g.scores, (size_t)g.n, errstr,
                            errstr_size)))
        goto out;
    if (g.n && g.scores[0].eligible) {
        char params[2048];
        if ((err = qb_search_apply(e->job.space, g.scores[0].combo, e->job.cfg, bc, errstr,
                                   errstr_size)))
            goto out;
        bc->progress = NULL;
        if ((err = qb_bt_run(e->data, bc, &res, errstr, errstr_size))) goto out;
        size_t np;
        const qb_bt_point_t *pts = qb_bt_result_equity(res, &np);
        qb_search_combo_json(e->job.space, g.scores[0].combo, params, sizeof params);
        if ((err = bt_db_metrics(w->st, e->job.run_id, qb_bt_result_metrics(res),
                                 qb_bt_result_counts(res)->commissions, params,
                                 qb_bt_result_benchmark(res), NULL, errstr, errstr_size)) ||
            (err = bt_db_equity(w->st, e->job.run_id, pts, np, errstr, errstr_size)) ||
            (err = bt_db_trades_bt(w->st, e->job.run_id, res, errstr, errstr_size)))
            goto out;
    }
    err = bt_db_run_finish(w->st, e->job.run_id, e->load_ms, 0, errstr, errstr_size);
out:
    qb_bt_result_destroy(res);
    free(bc);
    free(g.scores);
    free(g.seen);
    return err;
}

/* Under the run row's lock: store this unit's result, bring the aggregate
 * up to date, issue the units that became due (outbox rows), finish when
 * everything is in. After the commit: publish, events. */
static qb_err_t bt_advance(bt_work_t *w, bt_entry_t *e, const Qb__V1__BacktestRequest *rq,
                           const bt_unit_t *u, const char *result, int64_t eval_ms,
                           const qb_wf_oos_t *oos, char *errstr, size_t errstr_size) {
    char run_id[BT_RUN_ID_MAX + 1];
    snprintf(run_id, sizeof run_id, "%s", e->job.run_id);
    bt_run_row_t row;
    bt_unit_t *due = NULL;
    size_t ndue = 0, *fresh = NULL, nfresh = 0;
    uint64_t done = 0, total = bt_units_total(e);
    int finished = 0, running = 1;
    qb_err_t err = qb_store_begin(w->st, errstr, errstr_size);
    if (!err) err = bt_db_run_get(w->st, run_id, 1, &row, errstr, errstr_size);
    if (!err && strcmp(row.status, "running")) running = 0;
    if (!err && running)
        err = bt_db_unit_store(w->st, run_id, u, result, w->worker, eval_ms, errstr, errstr_size);
    if (!err && running && e->job.kind == BT_KIND_WF) {
        if (!e->agg && qb_wf_agg_new(e->plan, &e->agg) != QB_OK)
            err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        bt_feed_t f = {e};
        if (!err)
            err = bt_db_unit_results(w->st, run_id, e->last_seq, &e->last_seq, bt_feed_cb, &f,
                                     errstr, errstr_size);
        if (!err) {
            size_t k = qb_wf_agg_next(e->agg, (uint64_t)w->cfg.batch, NULL, 0);
            qb_wf_unit_t *wu = calloc(k ? k : 1, sizeof *wu);
            due = calloc(k ? k : 1, sizeof *due);
            if (!wu || !due) err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            else {
                qb_wf_agg_next(e->agg, (uint64_t)w->cfg.batch, wu, k);
                for (size_t i = 0; i < k; i++)
                    if (wu[i].kind == QB_WF_UNIT_OOS)
                        bt_unit_make(&due[ndue++], "oos", wu[i].window, wu[i].combo,
                                     wu[i].combo_end);
            }
            free(wu);
        }
        if (!err)
            err = bt_db_units_issue(w->st, run_id, due, ndue, &fresh, &nfresh, errstr, errstr_size);
        if (!err) {
            done = qb_wf_agg_done(e->agg, NULL);
            if (qb_wf_agg_complete(e->agg)) {
                err = bt_finish_wf(w, e, errstr, errstr_size);
                finished = 1;
            }
        }
    } else if (!err && running) {
        int64_t dc = 0, du = 0;
        err = bt_db_grid_count(w->st, run_id, &dc, &du, errstr, errstr_size);
        done = (uint64_t)dc;
        if (!err && done >= total) {
            err = bt_finish_grid(w, e, errstr, errstr_size);
            finished = 1;
        }
    }
    double progress = total ? (double)done / (double)total : 1;
    if (!err && running && !finished)
        err = bt_db_run_units(w->st, run_id, (int64_t)done, progress, errstr, errstr_size);
    if (!err) err = qb_store_commit(w->st, errstr, errstr_size);
    if (err) {
        bt_rollback(w);
        /* the aggregator may hold what was not committed: rebuild it */
        qb_wf_agg_destroy(e->agg);
        e->agg = NULL;
        e->last_seq = 0;
        free(due);
        free(fresh);
        if (err == QB_ERR_INTERNAL || err == QB_ERR_INVALID || err == QB_ERR_STATE ||
            err == QB_ERR_OVERFLOW || err == QB_ERR_RANGE) {
            char why[600];
            snprintf(why, sizeof why, "aggregating %s: %s", u->name, errstr);
            bt_fail(w, run_id, bt_kind_name(e->job.kind), NULL, 0, why);
            return QB_OK;
        }
        return err;
    }
    if (!running) {
        free(due);
        free(fresh);
        return QB_OK;
    }
    qb_counter_inc(w->c_units);
    if (nfresh) {
        char x[512];
        if (bt_publish_units(w, rq, e->fp_hex, due, fresh, nfresh, x, sizeof x))
            QB_WARN("run %s: %s (the sweep re-sends them)", run_id, x);
    }
    free(due);
    free(fresh);
    if (oos) {
        char pj[2048], idn[64];
        qb_search_combo_json(e->job.space, qb_wf_oos_combo(oos), pj, sizeof pj);
        snprintf(idn, sizeof idn, "window|%u", u->window);
        size_t nt;
        const qb_bt_trade_t *t = qb_wf_oos_trades(oos, &nt);
        qb_dec_t comm = 0;
        for (size_t i = 0; i < nt; i++) comm += t[i].commission;
        bt_ev_t ev = {QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_WINDOW_DONE,
                      QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WALK_FORWARD_WINDOW,
                      u->window, 1.0, 0, qb_wf_oos_metrics(oos), comm, pj, NULL, done, total, idn};
        (void)bt_event(w, run_id, &ev);
    }
    if (finished) {
        QB_INFO("run %s: all %llu units of work in: finished", run_id, (unsigned long long)total);
        bt_send_final(w, run_id);
        bt_entry_drop(w, run_id);
    } else if ((int)(progress * 20) > (int)(row.progress_sent * 20)) {
        char x[256];
        bt_progress_event(w, run_id, progress, 0, done, total);
        if (bt_db_run_progress(w->st, run_id, progress, 1, x, sizeof x))
            QB_WARN("run %s: progress not stored: %s", run_id, x);
    }
    return QB_OK;
}

/* Evaluate one part. *result: malloc'd text (IS/grid: one score JSON per
 * line; OOS: qb_wf_oos_to_json), *oos the OOS run (caller destroys). */
static qb_err_t bt_eval(bt_work_t *w, bt_entry_t *e, const bt_unit_t *u, char **result,
                        qb_wf_oos_t **oos, char *errstr, size_t errstr_size) {
    *result = NULL;
    *oos = NULL;
    if (!strcmp(u->kind, "oos")) {
        qb_err_t err = qb_wf_eval_oos(e->plan, e->data, u->window, u->c0, oos, errstr, errstr_size);
        if (err) return err;
        if (!(*result = qb_wf_oos_to_json(*oos))) {
            qb_wf_oos_destroy(*oos);
            *oos = NULL;
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        return QB_OK;
    }
    uint64_t n = u->c1 - u->c0;
    size_t cap = (size_t)n * QB_SEARCH_SCORE_JSON_MAX + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    buf[0] = 0;
    const qb_wf_window_t *win = e->plan ? qb_wf_plan_window(e->plan, u->window) : NULL;
    for (uint64_t c = u->c0; c < u->c1; c++) {
        qb_search_score_t sc;
        qb_err_t err;
        if (!strcmp(u->kind, "is")) {
            if (!win) err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "no window %u", u->window);
            else err = qb_wf_eval_is(e->plan, e->data, u->window, c, c + 1, &sc, errstr, errstr_size);
        } else
            err = qb_search_eval(e->data, e->job.cfg, e->job.space, c, 0, 0, &e->job.obj, &sc,
                                 errstr, errstr_size);
        if (err) {
            free(buf);
            return err;
        }
        len += qb_search_score_json(&sc, buf + len, cap - len);
        if (len + 2 < cap) buf[len++] = '\n';
        buf[len] = 0;
        bt_work_tick(w); /* heartbeat between combinations of a long unit */
    }
    *result = buf;
    return QB_OK;
}

static qb_err_t bt_unit(bt_work_t *w, const Qb__V1__BacktestRequest *rq, char *errstr,
                        size_t errstr_size) {
    const char *run_id = rq->run_id;
    if (rq->group && *rq->group && strcmp(rq->group, w->cfg.group) != 0) {
        qb_counter_inc(w->c_ignored);
        return QB_OK; /* another deployment's part */
    }
    bt_unit_t u;
    const char *kind = rq->kind == QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_IS_UNIT
                           ? "is"
                           : rq->kind == QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_OOS_UNIT
                                 ? "oos"
                                 : "grid";
    if (rq->combo_end < rq->combo_begin ||
        (strcmp(kind, "oos") && (rq->combo_end == rq->combo_begin ||
                                 rq->combo_end - rq->combo_begin > 1000000)))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "combo_begin/combo_end: [%llu, %llu) is not a range of combinations",
                          (unsigned long long)rq->combo_begin, (unsigned long long)rq->combo_end);
    bt_unit_make(&u, kind, rq->window_index, rq->combo_begin,
                 !strcmp(kind, "oos") ? rq->combo_begin + 1 : rq->combo_end);
    if (rq->unit && *rq->unit && strcmp(rq->unit, u.name))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "unit: '%.64s' does not match its fields (%s)", rq->unit, u.name);
    bt_run_row_t row;
    qb_err_t err = bt_db_run_get(w->st, run_id, 0, &row, errstr, errstr_size);
    if (err == QB_ERR_NOT_FOUND) {
        qb_counter_inc(w->c_ignored);
        QB_DEBUG("part %s of unknown run %s ignored", u.name, run_id);
        return QB_OK; /* a run of another deployment (its own database) */
    }
    if (err) return err;
    if (strcmp(row.status, "running")) return QB_OK; /* finished or failed meanwhile */
    int done = 0;
    if ((err = bt_db_unit_done(w->st, run_id, u.name, &done, errstr, errstr_size))) return err;
    if (done) return QB_OK; /* a repeat: its effects are stored */
    bt_entry_t *e = NULL;
    if ((err = bt_entry_get(w, rq, &e, errstr, errstr_size))) {
        if (qb_err_is_retriable(err) || err == QB_ERR_NOMEM) return err;
        bt_fail(w, run_id, row.kind, NULL, 0, errstr);
        return QB_OK;
    }
    if (strcmp(e->fp_hex, row.fingerprint) ||
        (rq->plan_fingerprint && *rq->plan_fingerprint && strcmp(rq->plan_fingerprint, e->fp_hex))) {
        char why[256];
        snprintf(why, sizeof why,
                 "the stored bars changed during the run: plan %s here, %s when it was split",
                 e->fp_hex, row.fingerprint);
        bt_fail(w, run_id, row.kind, NULL, 0, why);
        return QB_OK;
    }
    qb_time_t t0 = qb_time_mono_ns();
    char *result = NULL;
    qb_wf_oos_t *oos = NULL;
    err = bt_eval(w, e, &u, &result, &oos, errstr, errstr_size);
    if (err) {
        if (qb_err_is_retriable(err) || err == QB_ERR_NOMEM) return err;
        char why[600];
        snprintf(why, sizeof why, "%s: %s", u.name, errstr);
        bt_fail(w, run_id, row.kind, NULL, 0, why);
        return QB_OK;
    }
    int64_t ms = bt_ms_since(t0);
    qb_hist_observe(w->h_unit, (double)ms / 1e3);
    /* The entry may be dropped by a failure inside advance: keep the name. */
    err = bt_advance(w, e, rq, &u, result, ms, oos, errstr, errstr_size);
    free(result);
    qb_wf_oos_destroy(oos);
    return err;
}

/* ---- the handler ------------------------------------------------------------------------------ */

qb_err_t bt_work_handle(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    bt_work_t *w = opaque;
    const Qb__V1__BacktestRequest *rq = (const Qb__V1__BacktestRequest *)m->msg;
    if (!rq->run_id || !*rq->run_id || strlen(rq->run_id) > BT_RUN_ID_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "run_id is required (1-%d chars)",
                          BT_RUN_ID_MAX);
    switch (rq->kind) {
    case QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN: break;
    case QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_IS_UNIT:
    case QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_OOS_UNIT:
    case QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_GRID_UNIT:
        return bt_unit(w, rq, errstr, errstr_size);
    default:
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "kind %d: qb-backtest takes WHOLE_RUN requests (and its own IS_UNIT, "
                          "OOS_UNIT, GRID_UNIT parts)",
                          (int)rq->kind);
    }
    if (rq->group && *rq->group && strcmp(rq->group, w->cfg.group) != 0) {
        qb_counter_inc(w->c_ignored);
        return QB_OK; /* addressed to another deployment */
    }
    bt_run_row_t row;
    qb_err_t err = bt_db_run_get(w->st, rq->run_id, 0, &row, errstr, errstr_size);
    int exists = err == QB_OK;
    if (err && err != QB_ERR_NOT_FOUND) return err;
    if (exists && strcmp(row.status, "running")) {
        if (!row.final_sent) bt_send_final(w, rq->run_id);
        return QB_OK; /* done before: a repeat */
    }
    if (exists && strcmp(row.kind, "backtest")) return QB_OK; /* split: parts in flight / outbox */
    bt_job_t j;
    err = bt_job_from_request(rq, &j, errstr, errstr_size);
    if (err) {
        if (err == QB_ERR_NOMEM) return err;
        bt_fail(w, rq->run_id,
                rq->walk_forward ? "walk_forward"
                                 : (rq->n_grid || rq->random_samples) ? "grid" : "backtest",
                m->payload, m->len, errstr);
        return QB_ERR_INVALID; /* dead-lettered with the reason */
    }
    if (j.kind == BT_KIND_BACKTEST) {
        QB_INFO("run %s: backtest of %s on %zu symbols%s", j.run_id, j.cfg->strategies[0].kind,
                j.nsymbols, exists ? " (again: the previous attempt did not finish)" : "");
        if (!exists) qb_counter_inc(w->c_runs);
        err = bt_one(w, m, rq, &j, exists, errstr, errstr_size);
        bt_job_free(&j);
        return err;
    }
    bt_job_free(&j);
    return bt_split(w, m, rq, errstr, errstr_size);
}

/* ---- housekeeping ------------------------------------------------------------------------------ */

/* Units whose rows were written but whose messages were never acknowledged
 * (a replica died between its commit and the publish): re-send them. Rows
 * are locked while sent, so two replicas do not both send one. */
static void bt_sweep_units(bt_work_t *w) {
    char err[512], ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)w->cfg.resend_ms);
    const char *p[1] = {ms};
    PGresult *r = NULL;
    if (qb_store_begin(w->st, err, sizeof err)) return;
    qb_err_t e = qb_store_query(
        w->st,
        "SELECT u.run_id, u.unit, u.kind, u.window_index, u.combo_begin, u.combo_end, r.request,"
        " r.fingerprint FROM backtest.units u JOIN backtest.runs r USING (run_id)"
        " WHERE NOT u.published AND u.issued_at < now() - $1::bigint * interval '1 millisecond'"
        " AND r.status = 'running' ORDER BY u.run_id, u.issued_at LIMIT 500"
        " FOR UPDATE OF u SKIP LOCKED",
        1, p, &r, err, sizeof err);
    if (e || PQntuples(r) == 0) {
        if (r) PQclear(r);
        bt_rollback(w);
        return;
    }
    int rows = PQntuples(r);
    bt_unit_t *u = calloc((size_t)rows, sizeof *u);
    Qb__V1__BacktestRequest *rq = NULL;
    const char *rq_run = "";
    int sent = 0, start = 0;
    for (int i = 0; u && i <= rows; i++) {
        if (i == rows || strcmp(PQgetvalue(r, i, 0), rq_run)) {
            /* the previous run's units: flush and mark */
            if (rq && i > start && qb_producer_flush(w->prod, BT_FLUSH_MS) == QB_OK &&
                bt_db_units_published(w->st, rq_run, u + start, NULL, (size_t)(i - start), err,
                                      sizeof err) == QB_OK)
                sent += i - start;
            if (rq) qb__v1__backtest_request__free_unpacked(rq, NULL);
            rq = NULL;
            if (i == rows) break;
            rq_run = PQgetvalue(r, i, 0);
            start = i;
            size_t blen = 0;
            unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 6), &blen);
            if (bytes) rq = qb__v1__backtest_request__unpack(NULL, blen, bytes);
            PQfreemem(bytes);
            if (!rq) QB_WARN("run %s: stored request unreadable: parts not re-sent", rq_run);
        }
        bt_unit_make(&u[i], PQgetvalue(r, i, 2), (uint32_t)strtoul(PQgetvalue(r, i, 3), NULL, 10),
                     strtoull(PQgetvalue(r, i, 4), NULL, 10), strtoull(PQgetvalue(r, i, 5), NULL, 10));
        if (rq && bt_send_unit(w, rq, PQgetvalue(r, i, 7), &u[i]) != QB_OK) {
            qb__v1__backtest_request__free_unpacked(rq, NULL);
            rq = NULL;
        }
    }
    PQclear(r);
    free(u);
    if (qb_store_commit(w->st, err, sizeof err)) bt_rollback(w);
    if (sent) {
        qb_counter_add(w->c_resent, (uint64_t)sent);
        QB_INFO("re-sent %d parts left unpublished", sent);
    }
}

/* Final events of runs whose event was never acknowledged. */
static void bt_sweep_finals(bt_work_t *w) {
    char err[512], ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)w->cfg.resend_ms);
    const char *p[1] = {ms};
    PGresult *r = NULL;
    if (qb_store_query(w->st,
                       "SELECT run_id FROM backtest.runs WHERE NOT final_sent AND status <>"
                       " 'running' AND finished_at < now() - $1::bigint * interval"
                       " '1 millisecond' LIMIT 50",
                       1, p, &r, err, sizeof err))
        return;
    int rows = PQntuples(r);
    char **ids = calloc((size_t)rows + 1, sizeof *ids);
    for (int i = 0; ids && i < rows; i++) ids[i] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
    for (int i = 0; ids && i < rows; i++)
        if (ids[i]) bt_send_final(w, ids[i]);
    for (int i = 0; ids && i < rows; i++) free(ids[i]);
    free(ids);
}

/* A progress event for every running run without one for ~a second; the
 * UPDATE claims each run for one replica. */
static void bt_heartbeat(bt_work_t *w) {
    char err[512], ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)(w->cfg.progress_ms > 300 ? w->cfg.progress_ms - 250
                                                                         : w->cfg.progress_ms));
    const char *p[1] = {ms};
    PGresult *r = NULL;
    if (qb_store_query(w->st,
                       "UPDATE backtest.runs SET progress_at = now() WHERE run_id IN (SELECT run_id"
                       " FROM backtest.runs WHERE status = 'running' AND progress_at < now() -"
                       " $1::bigint * interval '1 millisecond' FOR UPDATE SKIP LOCKED)"
                       " RETURNING run_id, progress, units_done, units_total, bars",
                       1, p, &r, err, sizeof err))
        return;
    for (int i = 0; i < PQntuples(r); i++) {
        double prog = strtod(PQgetvalue(r, i, 1), NULL);
        bt_progress_event(w, PQgetvalue(r, i, 0), prog,
                          (uint64_t)(strtod(PQgetvalue(r, i, 4), NULL) * prog),
                          strtoull(PQgetvalue(r, i, 2), NULL, 10),
                          strtoull(PQgetvalue(r, i, 3), NULL, 10));
    }
    PQclear(r);
    qb_producer_poll(w->prod, 0);
}

void bt_work_tick(bt_work_t *w) {
    qb_time_t now = qb_time_mono_ns();
    if (w->in_tick || now < w->next_tick || qb_store_in_transaction(w->st)) return;
    w->in_tick = 1;
    w->next_tick = now + 200 * QB_NS_PER_MS;
    bt_heartbeat(w);
    bt_sweep_units(w);
    bt_sweep_finals(w);
    w->in_tick = 0;
}

/* ---- life cycle ------------------------------------------------------------------------------- */

bt_work_t *bt_work_new(const bt_work_cfg_t *cfg, qb_store_t *store, qb_producer_t *producer,
                       const char *dsn) {
    bt_work_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->cfg = *cfg;
    w->st = store;
    w->prod = producer;
    w->ncache = cfg->cache_runs > 0 ? (size_t)cfg->cache_runs : 1;
    w->cache = calloc(w->ncache, sizeof *w->cache);
    w->bars = bt_bars_new(dsn, (int)cfg->load_threads);
    if (!w->cache || !w->bars) {
        bt_work_destroy(w);
        return NULL;
    }
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(w->worker, sizeof w->worker, "%s:%d", host, (int)getpid());
    w->c_runs = qb_metrics_counter("qb_backtest_runs_total", "runs started (one-run or split)", NULL);
    w->c_units = qb_metrics_counter("qb_backtest_units_total", "parts evaluated and stored", NULL);
    w->c_finished = qb_metrics_counter("qb_backtest_finished_total", "runs finished (event sent)",
                                       NULL);
    w->c_failed = qb_metrics_counter("qb_backtest_failed_total", "runs failed (event sent)", NULL);
    w->c_events = qb_metrics_counter("qb_backtest_events_total", "backtest.events queued", NULL);
    w->c_resent = qb_metrics_counter("qb_backtest_parts_resent_total",
                                     "parts re-sent by the sweep (left unpublished)", NULL);
    w->c_ignored = qb_metrics_counter("qb_backtest_parts_ignored_total",
                                      "parts of another deployment or of an unknown run", NULL);
    w->h_unit = qb_metrics_histogram("qb_backtest_unit_seconds", "evaluation time of one part",
                                     NULL);
    w->h_load = qb_metrics_histogram("qb_backtest_load_seconds",
                                     "bars of a run loaded from PostgreSQL", NULL);
    return w;
}

void bt_work_destroy(bt_work_t *w) {
    if (!w) return;
    for (size_t i = 0; w->cache && i < w->ncache; i++)
        if (w->cache[i].used) bt_entry_clear(&w->cache[i]);
    free(w->cache);
    bt_bars_destroy(w->bars);
    free(w);
}
