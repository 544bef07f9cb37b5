/* bt_db.c — qb-backtest's access to its schema (sql/0008_backtest.sql)
 * through the caller's qb_store handle. Every value goes in as a text
 * parameter; money, prices and times as exact integers (x 1e8, ns),
 * doubles with 17 significant digits (read back bit for bit), so stored
 * results compare exactly between deployments. See bt.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "core/qb_log.h"

#define I64(buf, v) (snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v)), buf)

static const char *bt_dbl(char *buf, size_t cap, double v) {
    if (isnan(v)) snprintf(buf, cap, "NaN");
    else if (isinf(v)) snprintf(buf, cap, v > 0 ? "Infinity" : "-Infinity");
    else snprintf(buf, cap, "%.17g", v);
    return buf;
}

static double bt_getd(const PGresult *r, int row, int col) {
    return strtod(PQgetvalue(r, row, col), NULL);
}

static int64_t bt_geti(const PGresult *r, int row, int col) {
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void bt_unit_make(bt_unit_t *u, const char *kind, uint32_t window, uint64_t c0, uint64_t c1) {
    memset(u, 0, sizeof *u);
    snprintf(u->kind, sizeof u->kind, "%s", kind);
    u->window = window;
    u->c0 = c0;
    u->c1 = c1;
    if (!strcmp(kind, "is"))
        snprintf(u->name, sizeof u->name, "is/%u/%" PRIu64 "-%" PRIu64, window, c0, c1);
    else if (!strcmp(kind, "oos"))
        snprintf(u->name, sizeof u->name, "oos/%u/%" PRIu64, window, c0);
    else snprintf(u->name, sizeof u->name, "grid/%" PRIu64 "-%" PRIu64, c0, c1);
}

qb_err_t bt_db_run_get(qb_store_t *s, const char *run_id, int lock, bt_run_row_t *row,
                       char *errstr, size_t errstr_size) {
    const char *p[1] = {run_id};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                lock ? "SELECT kind, status, fingerprint, final_sent, units_total,"
                                       " units_done, progress, progress_sent FROM backtest.runs"
                                       " WHERE run_id = $1 FOR UPDATE"
                                     : "SELECT kind, status, fingerprint, final_sent, units_total,"
                                       " units_done, progress, progress_sent FROM backtest.runs"
                                       " WHERE run_id = $1",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return QB_ERR_NOT_FOUND;
    }
    memset(row, 0, sizeof *row);
    snprintf(row->kind, sizeof row->kind, "%s", PQgetvalue(r, 0, 0));
    snprintf(row->status, sizeof row->status, "%s", PQgetvalue(r, 0, 1));
    snprintf(row->fingerprint, sizeof row->fingerprint, "%s", PQgetvalue(r, 0, 2));
    row->final_sent = PQgetvalue(r, 0, 3)[0] == 't';
    row->units_total = bt_geti(r, 0, 4);
    row->units_done = bt_geti(r, 0, 5);
    row->progress = bt_getd(r, 0, 6);
    row->progress_sent = bt_getd(r, 0, 7);
    PQclear(r);
    return QB_OK;
}

/* bytea as a hex literal parameter (\x...). malloc'd. */
static char *bt_hex(const uint8_t *b, size_t n) {
    static const char hx[] = "0123456789abcdef";
    char *o = malloc(2 * n + 3);
    if (!o) return NULL;
    o[0] = '\\';
    o[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        o[2 + 2 * i] = hx[b[i] >> 4];
        o[3 + 2 * i] = hx[b[i] & 15];
    }
    o[2 + 2 * n] = 0;
    return o;
}

/* {"A","B"} for a text[] parameter (symbols are [A-Z0-9._-]). */
static char *bt_text_array(char *const *v, size_t n) {
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += strlen(v[i]) + 3;
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t k = 0;
    o[k++] = '{';
    for (size_t i = 0; i < n; i++) k += (size_t)snprintf(o + k, cap - k, "%s\"%s\"", i ? "," : "", v[i]);
    o[k++] = '}';
    o[k] = 0;
    return o;
}

qb_err_t bt_db_run_insert(qb_store_t *s, const bt_job_t *j, const uint8_t *request, size_t len,
                          const char *fingerprint, int64_t units_total, int64_t bars,
                          const char *worker, int *inserted, char *errstr, size_t errstr_size) {
    char *hex = bt_hex(request, len), *syms = bt_text_array(j->symbols, j->nsymbols);
    char a[24], b[24], c[24], d[24];
    if (!hex || !syms) {
        free(hex);
        free(syms);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    const char *p[12] = {j->run_id, bt_kind_name(j->kind), hex, j->cfg->strategies[0].kind,
                         j->cfg->strategies[0].params, syms, j->timeframe, I64(a, j->from),
                         I64(b, j->to), fingerprint, I64(c, units_total), I64(d, bars)};
    const char *p2[13];
    memcpy(p2, p, sizeof p);
    p2[12] = worker;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(
        s,
        "INSERT INTO backtest.runs (run_id, kind, status, request, strategy, params, symbols,"
        " timeframe, start_ts, end_ts, fingerprint, units_total, bars, planned_by)"
        " VALUES ($1, $2, 'running', $3::bytea, $4, $5, $6::text[], $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (run_id) DO NOTHING RETURNING 1",
        13, p2, &r, errstr, errstr_size);
    free(hex);
    free(syms);
    if (e) return e;
    *inserted = PQntuples(r) == 1;
    PQclear(r);
    return QB_OK;
}

qb_err_t bt_db_run_fail(qb_store_t *s, const char *run_id, const char *kind,
                        const uint8_t *request, size_t len, const char *error, char *errstr,
                        size_t errstr_size) {
    char *hex = bt_hex(request, len);
    if (!hex) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    const char *p[4] = {run_id, kind, hex, error};
    qb_err_t e = qb_store_query(
        s,
        "INSERT INTO backtest.runs AS r (run_id, kind, status, request, error, finished_at)"
        " VALUES ($1, $2, 'failed', $3::bytea, $4, now())"
        " ON CONFLICT (run_id) DO UPDATE SET status = 'failed', error = $4, finished_at = now(),"
        " updated_at = now() WHERE r.status = 'running'",
        4, p, NULL, errstr, errstr_size);
    free(hex);
    return e;
}

qb_err_t bt_db_run_progress(qb_store_t *s, const char *run_id, double progress, int sent,
                            char *errstr, size_t errstr_size) {
    char a[40];
    const char *p[2] = {run_id, bt_dbl(a, sizeof a, progress)};
    return qb_store_query(s,
                          sent ? "UPDATE backtest.runs SET progress = $2, progress_sent = $2,"
                                 " progress_at = now(), updated_at = now() WHERE run_id = $1"
                               : "UPDATE backtest.runs SET progress = $2, updated_at = now()"
                                 " WHERE run_id = $1",
                          2, p, NULL, errstr, errstr_size);
}

qb_err_t bt_db_run_units(qb_store_t *s, const char *run_id, int64_t done, double progress,
                         char *errstr, size_t errstr_size) {
    char a[24], b[40];
    const char *p[3] = {run_id, I64(a, done), bt_dbl(b, sizeof b, progress)};
    return qb_store_query(s,
                          "UPDATE backtest.runs SET units_done = $2, progress = $3,"
                          " updated_at = now() WHERE run_id = $1",
                          3, p, NULL, errstr, errstr_size);
}

qb_err_t bt_db_units_issue(qb_store_t *s, const char *run_id, const bt_unit_t *u, size_t n,
                           size_t **fresh, size_t *nfresh, char *errstr, size_t errstr_size) {
    *fresh = NULL;
    *nfresh = 0;
    if (!n) return QB_OK;
    size_t *idx = calloc(n, sizeof *idx);
    if (!idx) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char w[16], a[24], b[24];
        snprintf(w, sizeof w, "%u", u[i].window);
        const char *p[6] = {run_id, u[i].name, u[i].kind, w, I64(a, u[i].c0), I64(b, u[i].c1)};
        PGresult *r = NULL;
        qb_err_t e = qb_store_query(
            s,
            "INSERT INTO backtest.units (run_id, unit, kind, window_index, combo_begin, combo_end,"
            " status) VALUES ($1, $2, $3, $4, $5, $6, 'issued') ON CONFLICT DO NOTHING RETURNING 1",
            6, p, &r, errstr, errstr_size);
        if (e) {
            free(idx);
            return e;
        }
        if (PQntuples(r) == 1) idx[(*nfresh)++] = i;
        PQclear(r);
    }
    *fresh = idx;
    return QB_OK;
}

qb_err_t bt_db_units_published(qb_store_t *s, const char *run_id, const bt_unit_t *u,
                               const size_t *idx, size_t n, char *errstr, size_t errstr_size) {
    if (!n) return QB_OK;
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += strlen(u[idx ? idx[i] : i].name) + 3;
    char *arr = malloc(cap);
    if (!arr) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    size_t k = 0;
    arr[k++] = '{';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(arr + k, cap - k, "%s\"%s\"", i ? "," : "", u[idx ? idx[i] : i].name);
    arr[k++] = '}';
    arr[k] = 0;
    const char *p[2] = {run_id, arr};
    qb_err_t e = qb_store_query(s,
                                "UPDATE backtest.units SET published = true WHERE run_id = $1"
                                " AND unit = ANY($2::text[]) AND NOT published",
                                2, p, NULL, errstr, errstr_size);
    free(arr);
    return e;
}

qb_err_t bt_db_unit_done(qb_store_t *s, const char *run_id, const char *unit, int *done,
                         char *errstr, size_t errstr_size) {
    const char *p[2] = {run_id, unit};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT status = 'done' FROM backtest.units WHERE run_id = $1"
                                " AND unit = $2",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    *done = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return QB_OK;
}

qb_err_t bt_db_unit_store(qb_store_t *s, const char *run_id, const bt_unit_t *u,
                          const char *result, const char *worker, int64_t eval_ms,
                          char *errstr, size_t errstr_size) {
    char w[16], a[24], b[24], c[24];
    snprintf(w, sizeof w, "%u", u->window);
    const char *p[9] = {run_id, u->name, u->kind, w, I64(a, u->c0), I64(b, u->c1),
                        result, worker, I64(c, eval_ms)};
    return qb_store_query(
        s,
        "INSERT INTO backtest.units AS x (run_id, unit, kind, window_index, combo_begin,"
        " combo_end, status, published, result, worker, eval_ms, done_seq, done_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'done', true, $7, $8, $9,"
        " nextval('backtest.unit_done_seq'), now())"
        " ON CONFLICT (run_id, unit) DO UPDATE SET status = 'done', result = $7, worker = $8,"
        " eval_ms = $9, done_seq = nextval('backtest.unit_done_seq'), done_at = now()"
        " WHERE x.status <> 'done'",
        9, p, NULL, errstr, errstr_size);
}

qb_err_t bt_db_unit_results(qb_store_t *s, const char *run_id, int64_t after, int64_t *last,
                            bt_db_result_fn fn, void *ctx, char *errstr, size_t errstr_size) {
    char a[24];
    const char *p[2] = {run_id, I64(a, after)};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT kind, window_index, result, done_seq FROM backtest.units"
                                " WHERE run_id = $1 AND status = 'done' AND done_seq > $2"
                                " ORDER BY done_seq",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && !e; i++) {
        e = fn(ctx, PQgetvalue(r, i, 0), (uint32_t)bt_geti(r, i, 1), PQgetvalue(r, i, 2),
               (size_t)PQgetlength(r, i, 2), errstr, errstr_size);
        if (!e) *last = bt_geti(r, i, 3);
    }
    PQclear(r);
    return e;
}

qb_err_t bt_db_grid_count(qb_store_t *s, const char *run_id, int64_t *done_combos,
                          int64_t *done_units, char *errstr, size_t errstr_size) {
    const char *p[1] = {run_id};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT coalesce(sum(combo_end - combo_begin), 0), count(*)"
                                " FROM backtest.units WHERE run_id = $1 AND status = 'done'",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    *done_combos = bt_geti(r, 0, 0);
    *done_units = bt_geti(r, 0, 1);
    PQclear(r);
    return QB_OK;
}

qb_err_t bt_db_results_clear(qb_store_t *s, const char *run_id, char *errstr,
                             size_t errstr_size) {
    static const char *const sql[] = {
        "DELETE FROM backtest.metrics WHERE run_id = $1",
        "DELETE FROM backtest.windows WHERE run_id = $1",
        "DELETE FROM backtest.equity WHERE run_id = $1",
        "DELETE FROM backtest.trades WHERE run_id = $1",
        "DELETE FROM backtest.scores WHERE run_id = $1",
    };
    const char *p[1] = {run_id};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        qb_err_t e = qb_store_query(s, sql[i], 1, p, NULL, errstr, errstr_size);
        if (e) return e;
    }
    return QB_OK;
}

qb_err_t bt_db_metrics(qb_store_t *s, const char *run_id, const qb_bt_metrics_t *m,
                       qb_dec_t commission, const char *params, const qb_bt_metrics_t *bench,
                       const char *summary, char *errstr, size_t errstr_size) {
    char d[11][40], i[9][24];
    char mj[QB_SEARCH_SCORE_JSON_MAX], bj[QB_SEARCH_SCORE_JSON_MAX];
    qb_search_metrics_json(m, mj, sizeof mj);
    if (bench) qb_search_metrics_json(bench, bj, sizeof bj);
    const char *p[23] = {run_id,
                         bt_dbl(d[0], 40, m->total_return),
                         bt_dbl(d[1], 40, m->cagr),
                         bt_dbl(d[2], 40, m->sharpe),
                         bt_dbl(d[3], 40, m->sortino),
                         bt_dbl(d[4], 40, m->calmar),
                         bt_dbl(d[5], 40, m->volatility),
                         bt_dbl(d[6], 40, m->max_dd_pct),
                         I64(i[0], m->max_dd_money),
                         bt_dbl(d[7], 40, m->exposure),
                         bt_dbl(d[8], 40, m->win_rate),
                         bt_dbl(d[9], 40, m->profit_factor),
                         I64(i[1], m->trades_closed),
                         I64(i[2], m->trades_open),
                         I64(i[3], m->bars),
                         I64(i[4], m->initial_equity),
                         I64(i[5], m->final_equity),
                         I64(i[6], m->net_profit),
                         I64(i[7], commission),
                         params ? params : "",
                         mj,
                         bench ? bj : NULL,
                         summary};
    (void)d[10];
    return qb_store_query(
        s,
        "INSERT INTO backtest.metrics (run_id, total_return, cagr, sharpe, sortino, calmar,"
        " volatility, max_dd_pct, max_dd_money, exposure, win_rate, profit_factor, trades_closed,"
        " trades_open, steps, initial_equity, final_equity, net_profit, commission, params,"
        " metrics, benchmark, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
        " $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        23, p, NULL, errstr, errstr_size);
}

qb_err_t bt_db_equity(qb_store_t *s, const char *run_id, const qb_bt_point_t *pt, size_t n,
                      char *errstr, size_t errstr_size) {
    qb_err_t e = qb_store_copy_begin(
        s, "COPY backtest.equity (run_id, seq, ts, equity, cash, benchmark) FROM STDIN", errstr,
        errstr_size);
    if (e) return e;
    for (size_t k = 0; k < n; k++) {
        char a[24], b[24], c[24], d[24], f[24];
        const char *row[6] = {run_id, I64(a, k), I64(b, pt[k].ts), I64(c, pt[k].equity),
                              I64(d, pt[k].cash), I64(f, pt[k].benchmark)};
        if ((e = qb_store_copy_row(s, row, 6, errstr, errstr_size))) {
            char x[64];
            (void)qb_store_copy_abort(s, x, sizeof x);
            return e;
        }
    }
    return qb_store_copy_end(s, NULL, errstr, errstr_size);
}

static qb_err_t bt_trade_row(qb_store_t *s, const char *run_id, size_t seq, const char *window,
                             const char *symbol, const qb_bt_trade_t *t, int cut,
                             qb_dec_t scaled, char *errstr, size_t errstr_size) {
    char v[12][40];
    const char *row[17] = {run_id,
                           I64(v[0], seq),
                           window,
                           symbol,
                           t->dir > 0 ? "1" : "-1",
                           t->open ? "t" : "f",
                           cut ? "t" : "f",
                           I64(v[1], t->entry_ts),
                           I64(v[2], t->exit_ts),
                           I64(v[3], t->qty),
                           I64(v[4], t->entry_price),
                           I64(v[5], t->exit_price),
                           I64(v[6], t->commission),
                           I64(v[7], t->net_pnl),
                           I64(v[8], scaled),
                           bt_dbl(v[9], 40, t->return_pct),
                           I64(v[10], t->bars)};
    return qb_store_copy_row(s, row, 17, errstr, errstr_size);
}

#define BT_TRADES_COPY                                                                       \
    "COPY backtest.trades (run_id, seq, window_index, symbol, dir, open, cut, entry_ts,"     \
    " exit_ts, qty, entry_price, exit_price, commission, net_pnl, scaled_pnl, return_pct,"  \
    " bars) FROM STDIN"

qb_err_t bt_db_trades_bt(qb_store_t *s, const char *run_id, const qb_bt_result_t *r,
                         char *errstr, size_t errstr_size) {
    size_t n;
    const qb_bt_trade_t *t = qb_bt_result_trades(r, &n);
    qb_err_t e = qb_store_copy_begin(s, BT_TRADES_COPY, errstr, errstr_size);
    if (e) return e;
    for (size_t k = 0; k < n; k++)
        if ((e = bt_trade_row(s, run_id, k, NULL, qb_bt_result_symbol(r, t[k].sym), &t[k], 0,
                              t[k].net_pnl, errstr, errstr_size))) {
            char x[64];
            (void)qb_store_copy_abort(s, x, sizeof x);
            return e;
        }
    return qb_store_copy_end(s, NULL, errstr, errstr_size);
}

qb_err_t bt_db_trades_wf(qb_store_t *s, const char *run_id, const qb_wf_result_t *r,
                         char *errstr, size_t errstr_size) {
    size_t n;
    const qb_wf_trade_t *t = qb_wf_result_trades(r, &n);
    qb_err_t e = qb_store_copy_begin(s, BT_TRADES_COPY, errstr, errstr_size);
    if (e) return e;
    for (size_t k = 0; k < n; k++) {
        char w[16];
        snprintf(w, sizeof w, "%u", t[k].window);
        if ((e = bt_trade_row(s, run_id, k, w, qb_wf_result_symbol(r, t[k].t.sym), &t[k].t,
                              t[k].cut, t[k].scaled_pnl, errstr, errstr_size))) {
            char x[64];
            (void)qb_store_copy_abort(s, x, sizeof x);
            return e;
        }
    }
    return qb_store_copy_end(s, NULL, errstr, errstr_size);
}

qb_err_t bt_db_windows(qb_store_t *s, const char *run_id, const qb_wf_result_t *r,
                       char *errstr, size_t errstr_size) {
    for (uint32_t w = 0; w < qb_wf_result_nwindows(r); w++) {
        const qb_wf_window_result_t *x = qb_wf_result_window(r, w);
        char v[16][40], pj[1024];
        qb_wf_result_combo_json(r, w, pj, sizeof pj);
        int traded = x->combo >= 0;
        const char *p[18] = {run_id,
                             I64(v[0], w),
                             I64(v[1], x->win.is_from),
                             I64(v[2], x->win.is_to),
                             I64(v[3], x->win.oos_from),
                             I64(v[4], x->win.oos_to),
                             x->win.partial ? "t" : "f",
                             traded ? I64(v[5], x->combo) : NULL,
                             traded ? pj : NULL,
                             I64(v[6], x->valid),
                             I64(v[7], x->eligible),
                             traded ? bt_dbl(v[8], 40, x->is_best.objective) : NULL,
                             traded ? I64(v[9], x->is_best.trades) : NULL,
                             traded ? bt_dbl(v[10], 40, x->oos_objective) : NULL,
                             traded ? I64(v[11], x->oos_trades) : NULL,
                             traded ? bt_dbl(v[12], 40, x->oos.total_return) : NULL,
                             I64(v[13], x->start_equity),
                             I64(v[14], x->end_equity)};
        qb_err_t e = qb_store_query(
            s,
            "INSERT INTO backtest.windows (run_id, window_index, is_from, is_to, oos_from, oos_to,"
            " partial, combo, params, valid, eligible, is_objective, is_trades, oos_objective,"
            " oos_trades, oos_return, start_equity, end_equity) VALUES ($1, $2, $3, $4, $5, $6,"
            " $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            18, p, NULL, errstr, errstr_size);
        if (e) return e;
    }
    return QB_OK;
}

qb_err_t bt_db_scores(qb_store_t *s, const char *run_id, const qb_search_t *space,
                      const qb_search_score_t *ranked, size_t n, char *errstr,
                      size_t errstr_size) {
    qb_err_t e = qb_store_copy_begin(s,
                                     "COPY backtest.scores (run_id, rank, combo, params, valid,"
                                     " eligible, objective, trades, error, score) FROM STDIN",
                                     errstr, errstr_size);
    if (e) return e;
    char *sj = malloc(QB_SEARCH_SCORE_JSON_MAX), *pj = malloc(4096);
    if (!sj || !pj) {
        free(sj);
        free(pj);
        char x[64];
        (void)qb_store_copy_abort(s, x, sizeof x);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < n && !e; k++) {
        char a[24], b[24], c[40], d[24];
        qb_search_score_json(&ranked[k], sj, QB_SEARCH_SCORE_JSON_MAX);
        qb_search_combo_json(space, ranked[k].combo, pj, 4096);
        const char *row[10] = {run_id,
                               I64(a, k + 1),
                               I64(b, ranked[k].combo),
                               pj,
                               ranked[k].valid ? "t" : "f",
                               ranked[k].eligible ? "t" : "f",
                               ranked[k].valid ? bt_dbl(c, sizeof c, ranked[k].objective) : NULL,
                               I64(d, ranked[k].trades),
                               ranked[k].error,
                               sj};
        e = qb_store_copy_row(s, row, 10, errstr, errstr_size);
    }
    free(sj);
    free(pj);
    if (e) {
        char x[64];
        (void)qb_store_copy_abort(s, x, sizeof x);
        return e;
    }
    return qb_store_copy_end(s, NULL, errstr, errstr_size);
}

qb_err_t bt_db_run_finish(qb_store_t *s, const char *run_id, int64_t load_ms, int64_t run_ms,
                          char *errstr, size_t errstr_size) {
    char a[24], b[24];
    const char *p[3] = {run_id, I64(a, load_ms), I64(b, run_ms)};
    return qb_store_query(s,
                          "UPDATE backtest.runs SET status = 'finished', progress = 1,"
                          " units_done = units_total, load_ms = $2, run_ms = $3,"
                          " finished_at = now(), updated_at = now() WHERE run_id = $1",
                          3, p, NULL, errstr, errstr_size);
}

qb_err_t bt_db_final(qb_store_t *s, const char *run_id, bt_final_t *f, char *errstr,
                     size_t errstr_size) {
    memset(f, 0, sizeof *f);
    const char *p[1] = {run_id};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT r.status, r.kind, coalesce(r.error, ''), r.bars,"
                                " r.units_done, r.units_total, m.metrics, m.commission,"
                                " coalesce(m.params, '') FROM backtest.runs r LEFT JOIN"
                                " backtest.metrics m USING (run_id) WHERE r.run_id = $1",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return QB_ERR_NOT_FOUND;
    }
    snprintf(f->status, sizeof f->status, "%s", PQgetvalue(r, 0, 0));
    snprintf(f->kind, sizeof f->kind, "%s", PQgetvalue(r, 0, 1));
    f->error = strdup(PQgetvalue(r, 0, 2));
    f->bars = bt_geti(r, 0, 3);
    f->units_done = bt_geti(r, 0, 4);
    f->units_total = bt_geti(r, 0, 5);
    f->params = strdup(PQgetvalue(r, 0, 8));
    if (!PQgetisnull(r, 0, 6)) {
        char x[256];
        if (qb_search_metrics_parse(PQgetvalue(r, 0, 6), (size_t)PQgetlength(r, 0, 6), &f->m, x,
                                    sizeof x) == QB_OK) {
            f->has_metrics = 1;
            f->commission = bt_geti(r, 0, 7);
        } else QB_WARN("run %s: stored metrics unreadable: %s", run_id, x);
    }
    PQclear(r);
    if (!f->error || !f->params) {
        bt_final_free(f);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    return QB_OK;
}

void bt_final_free(bt_final_t *f) {
    if (!f) return;
    free(f->params);
    free(f->error);
    f->params = f->error = NULL;
}

qb_err_t bt_db_final_sent(qb_store_t *s, const char *run_id, char *errstr, size_t errstr_size) {
    const char *p[1] = {run_id};
    return qb_store_query(s, "UPDATE backtest.runs SET final_sent = true WHERE run_id = $1", 1,
                          p, NULL, errstr, errstr_size);
}
