/* ex_store.c — everything qb-execution reads from and writes to PostgreSQL
 * (schema trading, sql/0009_execution.sql). One order change is one
 * transaction: order row, fills, report outbox rows and the audit rows of
 * its account's hash chain. The chain head (last seq and hash per account)
 * is cached after each commit; a failed transaction drops the cache entry,
 * so the next append reads the head again. Owns the cache; borrows the
 * store handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "ex.h"

typedef struct ex_head_s {
    char account[QB_ACCOUNT_MAX + 1];
    int64_t seq;
    char hash[65];
} ex_head_t;

struct ex_store_s {
    qb_store_t *pg;
    ex_head_t *heads;
    size_t nheads, capheads;
};

#define EX_ORDER_COLS                                                                            \
    "order_id, account, strategy_id, symbol, side, type, tif, qty, requested_qty, limit_price, "  \
    "stop_price, take_profit_price, stop_loss_price, reference_price, leg, parent_order_id, "     \
    "oco_group, replaces_order_id, mode, cause_id, cause_kind, client_tag, broker, "              \
    "broker_order_id, status, cum_qty, avg_price, notional, commission, seq, legs_placed, "       \
    "reason_code, reason_text, created_ns, updated_ns, not_before_ns"
#define EX_NCOLS 36

ex_store_t *ex_store_new(qb_store_t *pg) {
    ex_store_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->pg = pg;
    char vals[400];
    size_t k = 0;
    for (int i = 1; i <= EX_NCOLS; i++) k += (size_t)snprintf(vals + k, sizeof vals - k, "%s$%d", i > 1 ? "," : "", i);
    char sql[2048];
    snprintf(sql, sizeof sql, "INSERT INTO trading.orders (" EX_ORDER_COLS ") VALUES (%s)", vals);
    qb_store_prepare(pg, "ex_order_ins", sql, EX_NCOLS);
    qb_store_prepare(pg, "ex_order_upd",
                     "UPDATE trading.orders SET qty = $2, limit_price = $3, stop_price = $4, "
                     "broker_order_id = $5, status = $6, cum_qty = $7, avg_price = $8, "
                     "notional = $9, commission = $10, seq = $11, legs_placed = $12, "
                     "reason_code = $13, reason_text = $14, updated_ns = $15 WHERE order_id = $1",
                     15);
    qb_store_prepare(pg, "ex_fill_ins",
                     "INSERT INTO trading.fills (order_id, fill_id, account, symbol, side, qty, "
                     "price, commission, ts_ns, source) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
                     "ON CONFLICT DO NOTHING",
                     10);
    qb_store_prepare(pg, "ex_report_ins",
                     "INSERT INTO trading.reports (order_id, sequence, account, payload) "
                     "VALUES ($1, $2, $3, decode($4, 'hex')) ON CONFLICT (order_id, sequence) DO "
                     "UPDATE SET published = trading.reports.published RETURNING report_id",
                     4);
    qb_store_prepare(pg, "ex_audit_head",
                     "SELECT seq, hash FROM trading.audit_log WHERE account = $1 "
                     "ORDER BY seq DESC LIMIT 1",
                     1);
    qb_store_prepare(pg, "ex_audit_ins",
                     "INSERT INTO trading.audit_log (account, seq, at_ns, order_id, event, detail, "
                     "prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                     8);
    qb_store_prepare(pg, "ex_exists", "SELECT 1 FROM trading.orders WHERE order_id = $1", 1);
    qb_store_prepare(pg, "ex_feed_get",
                     "SELECT read_through_ms FROM trading.paper_feed WHERE feed = $1", 1);
    qb_store_prepare(pg, "ex_feed_put",
                     "INSERT INTO trading.paper_feed (feed, read_through_ms) VALUES ($1, $2) "
                     "ON CONFLICT (feed) DO UPDATE SET read_through_ms = GREATEST("
                     "trading.paper_feed.read_through_ms, EXCLUDED.read_through_ms), "
                     "updated_at = now()",
                     2);
    qb_store_prepare(pg, "ex_lock", "SELECT pg_advisory_xact_lock(hashtext('qb-exec-audit:' || $1))",
                     1);
    return st;
}

void ex_store_destroy(ex_store_t *st) {
    if (!st) return;
    free(st->heads);
    free(st);
}

static ex_head_t *ex_head(ex_store_t *st, const char *account) {
    for (size_t i = 0; i < st->nheads; i++)
        if (strcmp(st->heads[i].account, account) == 0) return &st->heads[i];
    return NULL;
}

static void ex_head_drop(ex_store_t *st, const char *account) {
    ex_head_t *h = ex_head(st, account);
    if (h) *h = st->heads[--st->nheads];
}

/* ---- order rows ------------------------------------------------------------------ */

typedef struct ex_params_s {
    char v[EX_NCOLS][300];
    const char *p[EX_NCOLS];
} ex_params_t;

static void ex_order_params(const qb_exec_order_t *o, ex_params_t *x) {
    const qb_order_t *r = &o->o;
#define S(i, ...) snprintf(x->v[i], sizeof x->v[i], __VA_ARGS__)
    S(0, "%s", r->id);
    S(1, "%s", r->account);
    S(2, "%s", o->strategy_id);
    S(3, "%s", r->symbol.s);
    S(4, "%d", (int)r->side);
    S(5, "%d", (int)r->type);
    S(6, "%d", (int)r->tif);
    S(7, "%lld", (long long)r->qty);
    S(8, "%lld", (long long)o->requested_qty);
    S(9, "%lld", (long long)r->limit_price);
    S(10, "%lld", (long long)r->stop_price);
    S(11, "%lld", (long long)o->take_profit);
    S(12, "%lld", (long long)o->stop_loss);
    S(13, "%lld", (long long)o->reference_price);
    S(14, "%d", o->leg ? o->leg : 1);
    S(15, "%s", o->parent_id);
    S(16, "%s", o->oco_group);
    S(17, "%s", o->replaces_id);
    S(18, "%d", o->mode);
    S(19, "%s", o->cause_id);
    S(20, "%d", o->cause_kind);
    S(21, "%s", o->client_tag);
    S(22, "%s", o->broker);
    S(23, "%s", o->broker_order_id);
    S(24, "%d", (int)r->status);
    S(25, "%lld", (long long)r->filled_qty);
    S(26, "%lld", (long long)r->avg_fill_price);
    S(27, "%lld", (long long)o->notional);
    S(28, "%lld", (long long)o->commission);
    S(29, "%llu", (unsigned long long)o->seq);
    S(30, "%s", o->legs_placed ? "true" : "false");
    S(31, "%d", o->reason_code);
    S(32, "%s", o->reason_text);
    S(33, "%lld", (long long)r->created_ts);
    S(34, "%lld", (long long)r->updated_ts);
    S(35, "%lld", (long long)o->not_before);
#undef S
    for (int i = 0; i < EX_NCOLS; i++) x->p[i] = x->v[i];
}

static int64_t ex_i64(PGresult *r, int row, int col) { return strtoll(PQgetvalue(r, row, col), NULL, 10); }

static void ex_order_from_row(PGresult *r, int i, qb_exec_order_t *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->o.id, sizeof o->o.id, "%s", PQgetvalue(r, i, 0));
    snprintf(o->o.account, sizeof o->o.account, "%s", PQgetvalue(r, i, 1));
    snprintf(o->strategy_id, sizeof o->strategy_id, "%s", PQgetvalue(r, i, 2));
    (void)qb_symbol_set(&o->o.symbol, PQgetvalue(r, i, 3), NULL, 0);
    o->o.side = (qb_side_t)ex_i64(r, i, 4);
    o->o.type = (qb_order_type_t)ex_i64(r, i, 5);
    o->o.tif = (qb_tif_t)ex_i64(r, i, 6);
    o->o.qty = ex_i64(r, i, 7);
    o->requested_qty = ex_i64(r, i, 8);
    o->o.limit_price = ex_i64(r, i, 9);
    o->o.stop_price = ex_i64(r, i, 10);
    o->take_profit = ex_i64(r, i, 11);
    o->stop_loss = ex_i64(r, i, 12);
    o->reference_price = ex_i64(r, i, 13);
    o->leg = (int)ex_i64(r, i, 14);
    snprintf(o->parent_id, sizeof o->parent_id, "%s", PQgetvalue(r, i, 15));
    snprintf(o->oco_group, sizeof o->oco_group, "%s", PQgetvalue(r, i, 16));
    snprintf(o->replaces_id, sizeof o->replaces_id, "%s", PQgetvalue(r, i, 17));
    o->mode = (int)ex_i64(r, i, 18);
    snprintf(o->cause_id, sizeof o->cause_id, "%s", PQgetvalue(r, i, 19));
    o->cause_kind = (int)ex_i64(r, i, 20);
    snprintf(o->client_tag, sizeof o->client_tag, "%s", PQgetvalue(r, i, 21));
    snprintf(o->broker, sizeof o->broker, "%s", PQgetvalue(r, i, 22));
    snprintf(o->broker_order_id, sizeof o->broker_order_id, "%s", PQgetvalue(r, i, 23));
    o->o.status = (qb_order_status_t)ex_i64(r, i, 24);
    o->o.filled_qty = ex_i64(r, i, 25);
    o->o.avg_fill_price = ex_i64(r, i, 26);
    o->notional = ex_i64(r, i, 27);
    o->commission = ex_i64(r, i, 28);
    o->seq = (uint64_t)ex_i64(r, i, 29);
    o->legs_placed = PQgetvalue(r, i, 30)[0] == 't';
    o->reason_code = (int)ex_i64(r, i, 31);
    snprintf(o->reason_text, sizeof o->reason_text, "%s", PQgetvalue(r, i, 32));
    o->o.created_ts = ex_i64(r, i, 33);
    o->o.updated_ts = ex_i64(r, i, 34);
    o->not_before = ex_i64(r, i, 35);
}

qb_err_t ex_store_order_exists(ex_store_t *st, const char *order_id, int *exists, char *errstr,
                               size_t errstr_size) {
    PGresult *r = NULL;
    const char *p[1] = {order_id};
    qb_err_t e = qb_store_exec_prepared(st->pg, "ex_exists", 1, p, &r, errstr, errstr_size);
    if (!e) *exists = PQntuples(r) > 0;
    PQclear(r);
    return e;
}

qb_err_t ex_store_open_orders(ex_store_t *st, qb_exec_order_t **out, size_t *n, char *errstr,
                              size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT " EX_ORDER_COLS " FROM trading.orders WHERE status IN "
                                "(1, 2, 3, 4) ORDER BY created_ns, order_id",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < rows; i++) ex_order_from_row(r, i, &(*out)[i]);
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t ex_store_order_get(ex_store_t *st, const char *order_id, qb_exec_order_t *out,
                            char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    const char *p[1] = {order_id};
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT " EX_ORDER_COLS " FROM trading.orders WHERE order_id::text = $1",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) == 0) e = qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no order %s", order_id);
    else ex_order_from_row(r, 0, out);
    PQclear(r);
    return e;
}

/* ---- the paper simulator's feed position (sql/0011) ------------------------------ */

qb_err_t ex_store_feed_get(ex_store_t *st, const char *feed, int64_t *ms, char *errstr,
                           size_t errstr_size) {
    PGresult *r = NULL;
    const char *p[1] = {feed};
    qb_err_t e = qb_store_exec_prepared(st->pg, "ex_feed_get", 1, p, &r, errstr, errstr_size);
    *ms = !e && PQntuples(r) > 0 ? ex_i64(r, 0, 0) : 0;
    PQclear(r);
    return e;
}

qb_err_t ex_store_feed_put(ex_store_t *st, const char *feed, int64_t ms, char *errstr,
                           size_t errstr_size) {
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)ms);
    const char *p[2] = {feed, v};
    return qb_store_exec_prepared(st->pg, "ex_feed_put", 2, p, NULL, errstr, errstr_size);
}

/* ---- audit --------------------------------------------------------------------- */

static qb_err_t ex_audit_rows(ex_store_t *st, const char *account, const ex_audit_t *aud, size_t n,
                              char *errstr, size_t errstr_size) {
    if (!n) return QB_OK;
    const char *lp[1] = {account};
    qb_err_t e = qb_store_exec_prepared(st->pg, "ex_lock", 1, lp, NULL, errstr, errstr_size);
    if (e) return e;
    ex_head_t *h = ex_head(st, account);
    ex_head_t cur;
    if (h) cur = *h;
    else {
        memset(&cur, 0, sizeof cur);
        snprintf(cur.account, sizeof cur.account, "%s", account);
        snprintf(cur.hash, sizeof cur.hash, "%s", QB_EXEC_AUDIT_GENESIS);
        PGresult *r = NULL;
        e = qb_store_exec_prepared(st->pg, "ex_audit_head", 1, lp, &r, errstr, errstr_size);
        if (e) return e;
        if (PQntuples(r) == 1) {
            cur.seq = ex_i64(r, 0, 0);
            snprintf(cur.hash, sizeof cur.hash, "%s", PQgetvalue(r, 0, 1));
        }
        PQclear(r);
    }
    qb_time_t now = qb_time_now();
    for (size_t i = 0; i < n; i++) {
        char seq[24], at[24], hash[65];
        int64_t s = cur.seq + 1;
        snprintf(seq, sizeof seq, "%lld", (long long)s);
        snprintf(at, sizeof at, "%lld", (long long)now);
        qb_exec_audit_hash(cur.hash, account, s, now, aud[i].order_id, aud[i].event,
                           aud[i].detail, hash);
        const char *p[8] = {account, seq, at, aud[i].order_id, aud[i].event, aud[i].detail,
                            cur.hash, hash};
        e = qb_store_exec_prepared(st->pg, "ex_audit_ins", 8, p, NULL, errstr, errstr_size);
        if (e) return e;
        cur.seq = s;
        snprintf(cur.hash, sizeof cur.hash, "%s", hash);
    }
    /* becomes the cached head after the commit (ex_audit_commit) */
    h = ex_head(st, account);
    if (!h) {
        if (st->nheads == st->capheads) {
            size_t nc = st->capheads ? st->capheads * 2 : 16;
            ex_head_t *nh = realloc(st->heads, nc * sizeof *nh);
            if (!nh) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            st->heads = nh;
            st->capheads = nc;
        }
        h = &st->heads[st->nheads++];
    }
    *h = cur;
    return QB_OK;
}

static qb_err_t ex_finish(ex_store_t *st, const char *account, qb_err_t e, char *errstr,
                          size_t errstr_size) {
    if (!e) e = qb_store_commit(st->pg, errstr, errstr_size);
    if (e) {
        char tmp[256];
        (void)qb_store_rollback(st->pg, tmp, sizeof tmp);
        ex_head_drop(st, account); /* the cached head may be ahead of the table */
    }
    return e;
}

qb_err_t ex_store_audit(ex_store_t *st, const char *account, const ex_audit_t *aud, size_t n,
                        char *errstr, size_t errstr_size) {
    qb_err_t e = qb_store_begin(st->pg, errstr, errstr_size);
    if (e) return e;
    e = ex_audit_rows(st, account, aud, n, errstr, errstr_size);
    return ex_finish(st, account, e, errstr, errstr_size);
}

static void ex_hex(const uint8_t *b, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

qb_err_t ex_store_save(ex_store_t *st, const qb_exec_order_t *o, int insert,
                       const qb_exec_report_t *reps, size_t nrep, uint8_t *const *payload,
                       const size_t *len, const ex_audit_t *aud, size_t naud,
                       const char *fill_source, int64_t *report_ids, char *errstr,
                       size_t errstr_size) {
    ex_params_t x;
    ex_order_params(o, &x);
    qb_err_t e = qb_store_begin(st->pg, errstr, errstr_size);
    if (e) return e;
    if (insert) {
        e = qb_store_exec_prepared(st->pg, "ex_order_ins", EX_NCOLS, x.p, NULL, errstr,
                                   errstr_size);
    } else {
        static const int cols[15] = {0, 7, 9, 10, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 34};
        const char *u[15];
        for (int i = 0; i < 15; i++) u[i] = x.p[cols[i]];
        e = qb_store_exec_prepared(st->pg, "ex_order_upd", 15, u, NULL, errstr, errstr_size);
    }
    for (size_t i = 0; !e && i < nrep; i++) {
        const qb_exec_report_t *r = &reps[i];
        if (r->fill_qty > 0) {
            char side[4], q[24], px[24], cm[24], ts[24];
            snprintf(side, sizeof side, "%d", (int)o->o.side);
            snprintf(q, sizeof q, "%lld", (long long)r->fill_qty);
            snprintf(px, sizeof px, "%lld", (long long)r->fill_price);
            snprintf(cm, sizeof cm, "%lld", (long long)r->commission);
            snprintf(ts, sizeof ts, "%lld", (long long)r->ts);
            const char *p[10] = {o->o.id, r->fill_id, o->o.account, o->o.symbol.s, side, q, px, cm,
                                 ts, fill_source};
            e = qb_store_exec_prepared(st->pg, "ex_fill_ins", 10, p, NULL, errstr, errstr_size);
        }
        if (e) break;
        char *hex = malloc(len[i] * 2 + 1);
        if (!hex) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            break;
        }
        ex_hex(payload[i], len[i], hex);
        char sq[24];
        snprintf(sq, sizeof sq, "%llu", (unsigned long long)r->sequence);
        const char *p[4] = {o->o.id, sq, o->o.account, hex};
        PGresult *res = NULL;
        e = qb_store_exec_prepared(st->pg, "ex_report_ins", 4, p, &res, errstr, errstr_size);
        free(hex);
        if (!e) report_ids[i] = PQntuples(res) ? ex_i64(res, 0, 0) : 0;
        PQclear(res);
    }
    if (!e) e = ex_audit_rows(st, o->o.account, aud, naud, errstr, errstr_size);
    return ex_finish(st, o->o.account, e, errstr, errstr_size);
}

/* ---- outbox --------------------------------------------------------------------- */

qb_err_t ex_store_unpublished(ex_store_t *st,
                              void (*cb)(void *ctx, int64_t id, const char *account,
                                         const void *payload, size_t len),
                              void *ctx, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT report_id, account, encode(payload, 'hex') FROM "
                                "trading.reports WHERE NOT published ORDER BY report_id",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *hx = PQgetvalue(r, i, 2);
        size_t l = strlen(hx) / 2;
        uint8_t *b = malloc(l + 1);
        if (!b) continue;
        for (size_t k = 0; k < l; k++) {
            unsigned v;
            sscanf(hx + 2 * k, "%2x", &v);
            b[k] = (uint8_t)v;
        }
        cb(ctx, ex_i64(r, i, 0), PQgetvalue(r, i, 1), b, l);
        free(b);
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t ex_store_unpublished_oldest(ex_store_t *st, int64_t *created_ms, char *errstr,
                                    size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT coalesce(floor(extract(epoch FROM min(created_at)) * "
                                "1000)::bigint, 0) FROM trading.reports WHERE NOT published",
                                0, NULL, &r, errstr, errstr_size);
    if (!e) *created_ms = ex_i64(r, 0, 0);
    PQclear(r);
    return e;
}

qb_err_t ex_store_mark_published(ex_store_t *st, const int64_t *ids, size_t n, char *errstr,
                                 size_t errstr_size) {
    if (!n) return QB_OK;
    size_t cap = n * 21 + 8, k = 0;
    char *arr = malloc(cap);
    if (!arr) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    arr[k++] = '{';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(arr + k, cap - k, "%s%lld", i ? "," : "", (long long)ids[i]);
    snprintf(arr + k, cap - k, "}");
    const char *p[1] = {arr};
    qb_err_t e = qb_store_query(st->pg,
                                "UPDATE trading.reports SET published = true WHERE report_id = "
                                "ANY($1::bigint[]) AND NOT published",
                                1, p, NULL, errstr, errstr_size);
    free(arr);
    return e;
}

/* ---- positions and fills ---------------------------------------------------------- */

qb_err_t ex_store_fills(ex_store_t *st, const char *broker,
                        void (*cb)(void *ctx, const char *account, const char *symbol, int side,
                                   qb_dec_t qty, qb_dec_t price, qb_dec_t commission),
                        void *ctx, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    const char *p[1] = {broker};
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT f.account, f.symbol, f.side, f.qty, f.price, f.commission "
                                "FROM trading.fills f JOIN trading.orders o USING (order_id) "
                                "WHERE o.broker = $1 ORDER BY f.ts_ns, f.order_id, f.fill_id",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    for (int i = 0; i < PQntuples(r); i++)
        cb(ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), (int)ex_i64(r, i, 2), ex_i64(r, i, 3),
           ex_i64(r, i, 4), ex_i64(r, i, 5));
    PQclear(r);
    return QB_OK;
}

qb_err_t ex_store_positions(ex_store_t *st, const char *broker, const char *account,
                            qb_exec_bposition_t **out, size_t *n, char *errstr,
                            size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    const char *p[2] = {broker, account ? account : ""};
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT f.symbol, sum(CASE f.side WHEN 1 THEN f.qty ELSE -f.qty END) "
                                "FROM trading.fills f JOIN trading.orders o USING (order_id) "
                                "WHERE o.broker = $1 AND ($2 = '' OR f.account = $2) "
                                "GROUP BY f.symbol HAVING sum(CASE f.side WHEN 1 THEN f.qty ELSE "
                                "-f.qty END) <> 0 ORDER BY 1",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < rows; i++) {
            (void)qb_symbol_set(&(*out)[i].symbol, PQgetvalue(r, i, 0), NULL, 0);
            (*out)[i].qty = ex_i64(r, i, 1);
        }
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

/* ---- modes, kill switch, commands, discrepancies ---------------------------------- */

static int ex_mode_num(const char *s) {
    return strcmp(s, "live") == 0 ? QB_EXEC_MODE_LIVE
           : strcmp(s, "backtest") == 0 ? QB_EXEC_MODE_BACKTEST
                                        : QB_EXEC_MODE_PAPER;
}

qb_err_t ex_store_modes(ex_store_t *st, ex_mode_t **out, size_t *n, char *errstr,
                        size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg,
                                "SELECT account, strategy_id, mode, rollout_pct FROM "
                                "trading.strategy_modes ORDER BY 1, 2",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < rows; i++) {
            ex_mode_t *m = &(*out)[i];
            snprintf(m->account, sizeof m->account, "%s", PQgetvalue(r, i, 0));
            snprintf(m->strategy_id, sizeof m->strategy_id, "%s", PQgetvalue(r, i, 1));
            m->mode = ex_mode_num(PQgetvalue(r, i, 2));
            m->rollout_pct = (int)ex_i64(r, i, 3);
        }
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t ex_store_set_mode(ex_store_t *st, const char *account, const char *strategy_id,
                           int mode, int pct, const char *who, const char *command_id,
                           char *errstr, size_t errstr_size) {
    char ps[8];
    snprintf(ps, sizeof ps, "%d", pct);
    const char *m = mode == QB_EXEC_MODE_LIVE ? "live" : mode == QB_EXEC_MODE_BACKTEST ? "backtest"
                                                                                        : "paper";
    const char *p[6] = {account, strategy_id, m, ps, who, command_id};
    return qb_store_query(st->pg,
                          "INSERT INTO trading.strategy_modes (account, strategy_id, mode, "
                          "rollout_pct, approved_by, approved_at, command_id, updated_by, updated_at) "
                          "VALUES ($1, $2, $3, $4::int, CASE WHEN $3 = 'live' THEN $5 ELSE '' END, "
                          "CASE WHEN $3 = 'live' THEN now() END, $6, $5, now()) "
                          "ON CONFLICT (account, strategy_id) DO UPDATE SET mode = EXCLUDED.mode, "
                          "rollout_pct = EXCLUDED.rollout_pct, approved_by = EXCLUDED.approved_by, "
                          "approved_at = EXCLUDED.approved_at, command_id = EXCLUDED.command_id, "
                          "updated_by = EXCLUDED.updated_by, updated_at = now()",
                          6, p, NULL, errstr, errstr_size);
}

qb_err_t ex_store_killed(ex_store_t *st, char (**out)[QB_ACCOUNT_MAX + 1], size_t *n,
                         char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg, "SELECT account FROM trading.kill_switch WHERE active", 0,
                                NULL, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < rows; i++)
            snprintf((*out)[i], sizeof (*out)[i], "%s", PQgetvalue(r, i, 0));
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t ex_store_set_kill(ex_store_t *st, const char *account, int active, const char *event_id,
                           char *errstr, size_t errstr_size) {
    const char *p[3] = {account, active ? "true" : "false", event_id};
    return qb_store_query(st->pg,
                          "INSERT INTO trading.kill_switch (account, active, event_id, changed_at) "
                          "VALUES ($1, $2::boolean, $3, now()) ON CONFLICT (account) DO UPDATE SET "
                          "active = EXCLUDED.active, event_id = EXCLUDED.event_id, changed_at = now()",
                          3, p, NULL, errstr, errstr_size);
}

qb_err_t ex_store_command(ex_store_t *st, const char *command_id, int kind, const char *outcome,
                          int *fresh, char *errstr, size_t errstr_size) {
    char k[12];
    snprintf(k, sizeof k, "%d", kind);
    const char *p[3] = {command_id, k, outcome};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(st->pg,
                                "INSERT INTO trading.commands (command_id, kind, outcome) VALUES "
                                "($1, $2::int, $3) ON CONFLICT DO NOTHING RETURNING 1",
                                3, p, &r, errstr, errstr_size);
    if (!e) *fresh = PQntuples(r) > 0;
    PQclear(r);
    return e;
}

qb_err_t ex_store_discrepancy(ex_store_t *st, const char *account, const char *broker,
                              const char *kind, const char *order_id, const char *symbol,
                              const char *message, char *errstr, size_t errstr_size) {
    const char *p[6] = {account, broker, kind, order_id, symbol, message};
    return qb_store_query(st->pg,
                          "INSERT INTO trading.discrepancies (account, broker, kind, order_id, "
                          "symbol, message) VALUES ($1, $2, $3, $4, $5, $6)",
                          6, p, NULL, errstr, errstr_size);
}

qb_err_t ex_store_known(ex_store_t *st, const char *id, int *known, char *errstr,
                        size_t errstr_size) {
    *known = 0;
    PGresult *r = NULL;
    const char *p[1] = {id};
    qb_err_t e = qb_store_query(st->pg, "SELECT 1 FROM trading.orders WHERE order_id::text = $1",
                                1, p, &r, errstr, errstr_size);
    if (!e) *known = PQntuples(r) > 0;
    PQclear(r);
    return e;
}
