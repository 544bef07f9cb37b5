/* bt_bars.c — the bars of a run from md.bars (read only), fast: one
 * `COPY (SELECT ... ORDER BY ts) TO STDOUT (FORMAT binary)` per symbol
 * (the primary key's index gives the order), parsed straight into the
 * engine's bar arrays, on QB_BACKTEST_LOAD_THREADS connections of the
 * loader's own (libs/store has no COPY TO) in as many threads: the server
 * side (index scan, tuple output) is most of the cost, so symbols are read
 * in parallel, and appended to the data set in symbol order by the
 * calling thread as they arrive (at most a few symbols wait in memory).
 * Why binary: no number formatting on the server, no parsing here
 * (bench_backtest_service compares text rows and text COPY). JIT is off on
 * these connections: it costs more than it saves on 100 small queries.
 * Connections are made at the first load and remade after a failure. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "bt.h"
#include "core/qb_log.h"
#include "core/qb_time.h"

#define BT_MAX_CONNS 16

struct bt_bars_s {
    char *dsn;
    int nconn;
    PGconn *conn[BT_MAX_CONNS];
};

/* Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01. */
#define BT_PG_EPOCH_US 946684800000000LL

bt_bars_t *bt_bars_new(const char *dsn, int threads) {
    bt_bars_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->nconn = threads < 1 ? 1 : threads > BT_MAX_CONNS ? BT_MAX_CONNS : threads;
    if (!(b->dsn = strdup(dsn ? dsn : ""))) {
        free(b);
        return NULL;
    }
    return b;
}

void bt_bars_destroy(bt_bars_t *b) {
    if (!b) return;
    for (int i = 0; i < b->nconn; i++)
        if (b->conn[i]) PQfinish(b->conn[i]);
    free(b->dsn);
    free(b);
}

static qb_err_t bt_bars_conn(bt_bars_t *b, int k, char *errstr, size_t errstr_size) {
    PGconn **c = &b->conn[k];
    if (*c && PQstatus(*c) == CONNECTION_OK) return QB_OK;
    if (*c) PQfinish(*c);
    *c = PQconnectdb(b->dsn);
    if (!*c || PQstatus(*c) != CONNECTION_OK) {
        qb_err_t e = qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "postgres (bars): %s",
                                *c ? PQerrorMessage(*c) : "out of memory");
        if (*c) PQfinish(*c);
        *c = NULL;
        return e;
    }
    PGresult *r = PQexec(*c, "SET jit = off");
    PQclear(r);
    return QB_OK;
}

static int64_t be64(const char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
    return (int64_t)v;
}

static int32_t be32(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return (int32_t)ntohl(v);
}

/* The failure of a connection or a statement, retriable when the
 * connection is gone (it is then dropped, and remade at the next use). */
static qb_err_t bt_bars_fail(PGconn **c, const char *what, PGresult *r, char *errstr,
                             size_t errstr_size) {
    int bad = PQstatus(*c) != CONNECTION_OK;
    qb_err_t e = qb_err_set(errstr, errstr_size, bad ? QB_ERR_UNAVAILABLE : QB_ERR_DB, "%s: %s",
                            what, r ? PQresultErrorMessage(r) : PQerrorMessage(*c));
    if (r) PQclear(r);
    if (bad) {
        PQfinish(*c);
        *c = NULL;
    }
    return e;
}

static qb_err_t bt_bars_asset(PGconn **c, const char *sym, int32_t *asset, char *errstr,
                              size_t errstr_size) {
    const char *p[1] = {sym};
    PGresult *r = PQexecParams(*c, "SELECT asset_id FROM md.assets WHERE symbol = $1", 1, NULL, p,
                               NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        return bt_bars_fail(c, "md.assets", r, errstr, errstr_size);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "symbols: %s is not in md.assets (no bars stored for it)", sym);
    }
    *asset = (int32_t)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return QB_OK;
}

/* One symbol's bars [from, to) in time order into *out (malloc'd). */
static qb_err_t bt_bars_fetch(PGconn **c, const bt_job_t *j, int32_t asset, qb_pf_bar_t **out,
                              size_t *nout, char *errstr, size_t errstr_size) {
    *out = NULL;
    *nout = 0;
    /* Values are integers and a validated timeframe: nothing to quote. */
    char sql[512];
    int n = snprintf(sql, sizeof sql,
                     "COPY (SELECT ts, open, high, low, close, volume FROM md.bars WHERE "
                     "asset_id = %d AND timeframe = '%s'",
                     (int)asset, j->timeframe);
    if (j->from)
        n += snprintf(sql + n, sizeof sql - (size_t)n,
                      " AND ts >= 'epoch'::timestamptz + %lld * interval '1 microsecond'",
                      (long long)((j->from + QB_NS_PER_US - 1) / QB_NS_PER_US));
    if (j->to)
        n += snprintf(sql + n, sizeof sql - (size_t)n,
                      " AND ts < 'epoch'::timestamptz + %lld * interval '1 microsecond'",
                      (long long)((j->to + QB_NS_PER_US - 1) / QB_NS_PER_US));
    snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY ts) TO STDOUT (FORMAT binary)");
    PGresult *r = PQexec(*c, sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_OUT)
        return bt_bars_fail(c, "md.bars", r, errstr, errstr_size);
    PQclear(r);
    qb_pf_bar_t *v = NULL;
    size_t nb = 0, cap = 0;
    int header = 1, len;
    char *row = NULL;
    qb_err_t e = QB_OK;
    while ((len = PQgetCopyData(*c, &row, 0)) > 0) {
        const char *p = row;
        if (e) { /* drain after an error */
            PQfreemem(row);
            continue;
        }
        if (header) { /* PGCOPY\n\377\r\n\0, flags, extension length */
            if (len < 19 || memcmp(p, "PGCOPY\n\377\r\n", 11) != 0) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_DB, "md.bars: bad COPY header");
                PQfreemem(row);
                continue;
            }
            int32_t ext = be32(p + 15);
            p += 19 + ext;
            len -= 19 + ext;
            header = 0;
        }
        if (len <= 0 || (len >= 2 && p[0] == (char)0xff && p[1] == (char)0xff)) { /* trailer */
            PQfreemem(row);
            continue;
        }
        /* 6 fields, each int32 length 8 + 8 bytes */
        if (len < 2 + 6 * 12) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_DB, "md.bars: short COPY row");
            PQfreemem(row);
            continue;
        }
        if (nb == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            qb_pf_bar_t *x = realloc(v, nc * sizeof *x);
            if (!x) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
                PQfreemem(row);
                continue;
            }
            v = x;
            cap = nc;
        }
        qb_pf_bar_t *bar = &v[nb++];
        p += 2;
        bar->ts = (be64(p + 4) + BT_PG_EPOCH_US) * QB_NS_PER_US;
        bar->open = be64(p + 16);
        bar->high = be64(p + 28);
        bar->low = be64(p + 40);
        bar->close = be64(p + 52);
        bar->volume = be64(p + 64);
        PQfreemem(row);
    }
    if (len == -2 && !e) e = bt_bars_fail(c, "md.bars COPY", NULL, errstr, errstr_size);
    if (*c) {
        while ((r = PQgetResult(*c))) {
            if (!e && PQresultStatus(r) != PGRES_COMMAND_OK) {
                e = bt_bars_fail(c, "md.bars COPY", r, errstr, errstr_size);
                break;
            }
            PQclear(r);
        }
    }
    if (e) {
        free(v);
        return e;
    }
    *out = v;
    *nout = nb;
    return QB_OK;
}

/* ---- parallel load ------------------------------------------------------------------ */

typedef struct bt_slot_s {
    int ready;
    qb_err_t err;
    char msg[256];
    qb_pf_bar_t *bars;
    size_t n;
} bt_slot_t;

typedef struct bt_load_s {
    bt_bars_t *b;
    const bt_job_t *j;
    const int32_t *assets;
    bt_slot_t *slots;
    size_t next;      /* next symbol to fetch */
    size_t window;    /* fetch at most this far ahead of the consumer */
    size_t consumed;  /* symbols appended by the caller */
    int abort;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} bt_load_t;

typedef struct bt_worker_s {
    bt_load_t *L;
    int k;
} bt_worker_t;

static void *bt_bars_worker(void *arg) {
    bt_worker_t *wk = arg;
    bt_load_t *L = wk->L;
    for (;;) {
        pthread_mutex_lock(&L->mu);
        while (!L->abort && L->next < L->j->nsymbols && L->next >= L->consumed + L->window)
            pthread_cond_wait(&L->cv, &L->mu);
        if (L->abort || L->next >= L->j->nsymbols) {
            pthread_mutex_unlock(&L->mu);
            return NULL;
        }
        size_t i = L->next++;
        pthread_mutex_unlock(&L->mu);
        bt_slot_t s = {0};
        s.err = bt_bars_conn(L->b, wk->k, s.msg, sizeof s.msg);
        if (!s.err)
            s.err = bt_bars_fetch(&L->b->conn[wk->k], L->j, L->assets[i], &s.bars, &s.n, s.msg,
                                  sizeof s.msg);
        s.ready = 1;
        pthread_mutex_lock(&L->mu);
        L->slots[i] = s;
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
    }
}

qb_err_t bt_bars_load(bt_bars_t *b, const bt_job_t *j, int64_t max_bars, bt_bars_tick_fn tick,
                      void *tick_ctx, qb_bt_data_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    qb_bt_data_t *d = NULL;
    qb_err_t e = qb_bt_data_new(j->timeframe, &d, errstr, errstr_size);
    if (e) return e == QB_ERR_NOMEM ? e : QB_ERR_INVALID;
    int32_t *assets = calloc(j->nsymbols, sizeof *assets);
    bt_slot_t *slots = calloc(j->nsymbols, sizeof *slots);
    if (!assets || !slots) {
        free(assets);
        free(slots);
        qb_bt_data_destroy(d);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    /* Ids in the job's order, and every symbol known, before any bar. */
    if ((e = bt_bars_conn(b, 0, errstr, errstr_size))) goto out;
    for (size_t i = 0; i < j->nsymbols; i++) {
        uint32_t id;
        if ((e = bt_bars_asset(&b->conn[0], j->symbols[i], &assets[i], errstr, errstr_size)))
            goto out;
        if ((e = qb_bt_data_symbol(d, j->symbols[i], &id, errstr, errstr_size))) goto out;
    }
    bt_load_t L = {.b = b, .j = j, .assets = assets, .slots = slots,
                   .window = (size_t)b->nconn * 2};
    pthread_mutex_init(&L.mu, NULL);
    pthread_cond_init(&L.cv, NULL);
    pthread_t th[BT_MAX_CONNS];
    bt_worker_t wk[BT_MAX_CONNS];
    int nth = 0;
    for (int k = 0; k < b->nconn && (size_t)k < j->nsymbols; k++) {
        wk[k] = (bt_worker_t){&L, k};
        if (pthread_create(&th[nth], NULL, bt_bars_worker, &wk[k]) == 0) nth++;
    }
    if (!nth) e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "cannot start a loader thread");
    int64_t total = 0;
    for (size_t i = 0; i < j->nsymbols && !e; i++) {
        pthread_mutex_lock(&L.mu);
        while (!slots[i].ready) pthread_cond_wait(&L.cv, &L.mu);
        bt_slot_t s = slots[i];
        slots[i].bars = NULL;
        L.consumed = i + 1;
        pthread_cond_broadcast(&L.cv);
        pthread_mutex_unlock(&L.mu);
        if (s.err) {
            e = qb_err_set(errstr, errstr_size, s.err, "%s", s.msg);
        } else {
            total += (int64_t)s.n;
            if (max_bars > 0 && total > max_bars)
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                               "the run has more than %lld bars (QB_BACKTEST_MAX_BARS)",
                               (long long)max_bars);
            else if (s.n && (e = qb_bt_data_append(d, (uint32_t)i, s.bars, s.n, errstr,
                                                   errstr_size)) != QB_OK &&
                     e != QB_ERR_NOMEM)
                e = QB_ERR_INVALID;
        }
        free(s.bars);
        if (tick) tick(tick_ctx);
    }
    pthread_mutex_lock(&L.mu);
    L.abort = 1;
    pthread_cond_broadcast(&L.cv);
    pthread_mutex_unlock(&L.mu);
    for (int k = 0; k < nth; k++) pthread_join(th[k], NULL);
    for (size_t i = 0; i < j->nsymbols; i++) free(slots[i].bars);
    pthread_cond_destroy(&L.cv);
    pthread_mutex_destroy(&L.mu);
    if (!e && !total)
        e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "no %s bars of the symbols in md.bars over the period", j->timeframe);
    if (!e) e = qb_bt_data_finalize(d, errstr, errstr_size);
out:
    free(assets);
    free(slots);
    if (e) {
        qb_bt_data_destroy(d);
        return e;
    }
    *out = d;
    return QB_OK;
}
