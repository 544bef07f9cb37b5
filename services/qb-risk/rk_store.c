/* rk_store.c — qb-risk and PostgreSQL (sql/0007_risk.sql). One qb_store_t,
 * the service's thread only. See rk.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "rk.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))
static int64_t col(const PGresult *r, int row, int c) {
    return strtoll(PQgetvalue(r, row, c), NULL, 10);
}

uint64_t rk_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h ? h : 1;
}
int rk_ring_has(const uint64_t *ring, size_t n, size_t cap, uint64_t h) {
    size_t m = n < cap ? n : cap;
    for (size_t i = 0; i < m; i++)
        if (ring[i] == h) return 1;
    return 0;
}
void rk_ring_add(uint64_t *ring, size_t *n, size_t cap, uint64_t h) {
    ring[*n % cap] = h;
    (*n)++;
}

/* ---- loading ----------------------------------------------------------------- */

qb_err_t rk_store_load_limits(qb_store_t *s, rk_account_t *a, char *errstr, size_t errstr_size) {
    const char *p[1] = {a->name};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, "SELECT kind, key, value FROM risk.limits WHERE account = $1",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    qb_risk_limits_init(&a->limits);
    for (int i = 0; i < PQntuples(r); i++) {
        char msg[256];
        if (qb_risk_limits_set(&a->limits, (int)col(r, i, 0), PQgetvalue(r, i, 1), col(r, i, 2),
                               msg, sizeof msg) != QB_OK)
            QB_WARN("account %s: stored limit ignored: %s", a->name, msg);
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t rk_store_load_flags(qb_store_t *s, const char *account, qb_risk_status_t *status,
                             qb_time_t *until, int64_t *resumes, int64_t *seq, char *text,
                             size_t text_size, char *errstr, size_t errstr_size) {
    const char *p[1] = {account};
    PGresult *r = NULL;
    *status = QB_RISK_ACTIVE;
    *until = 0;
    *resumes = 0;
    *seq = 0;
    if (text_size) text[0] = '\0';
    qb_err_t e = qb_store_query(s,
                                "SELECT status, paused_until, resumes, change_seq, status_text"
                                " FROM risk.accounts WHERE account = $1",
                                1, p, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) == 1) {
        if (qb_risk_status_parse(PQgetvalue(r, 0, 0), status) != QB_OK) *status = QB_RISK_HALTED;
        *until = col(r, 0, 1);
        *resumes = col(r, 0, 2);
        *seq = col(r, 0, 3);
        snprintf(text, text_size, "%s", PQgetvalue(r, 0, 4));
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t rk_store_change_seq(qb_store_t *s, int64_t *seq, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, "SELECT coalesce(max(change_seq), 0) FROM risk.accounts", 0,
                                NULL, &r, errstr, errstr_size);
    if (e) return e;
    *seq = col(r, 0, 0);
    PQclear(r);
    return QB_OK;
}

qb_err_t rk_store_offset(qb_store_t *s, const char *topic, int32_t partition, int64_t *next,
                         char *errstr, size_t errstr_size) {
    char pb[24];
    const char *p[2] = {topic, I64(pb, partition)};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT next_offset FROM risk.offsets WHERE topic = $1 AND"
                                " partition = $2::integer",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    *next = PQntuples(r) == 1 ? col(r, 0, 0) : -1;
    PQclear(r);
    return QB_OK;
}

static int ensure_sym(rk_account_t *a, const char *sym, uint32_t *id) {
    char msg[128];
    if (qb_portfolio_symbol(a->pf, sym, id, msg, sizeof msg) != QB_OK) return 0;
    if (*id >= a->nmark_ts) {
        size_t n = (*id + 1) * 2;
        qb_time_t *v = realloc(a->mark_ts, n * sizeof *v);
        if (!v) return 0;
        memset(v + a->nmark_ts, 0, (n - a->nmark_ts) * sizeof *v);
        a->mark_ts = v;
        uint8_t *d = realloc(a->pos_dirty, n); /* same length as mark_ts */
        if (!d) return 0;
        memset(d + a->nmark_ts, 0, n - a->nmark_ts);
        a->pos_dirty = d;
        a->nmark_ts = n;
    }
    return 1;
}

qb_err_t rk_store_load_account(qb_store_t *s, rk_account_t *a, qb_dec_t default_cash,
                               const qb_portfolio_config_t *pcfg, qb_time_t now,
                               int64_t *unpublished, char *errstr, size_t errstr_size) {
    const char *p[2] = {a->name, NULL};
    PGresult *r = NULL;
    qb_err_t e = rk_store_load_limits(s, a, errstr, errstr_size);
    int64_t flag_resumes = 0;
    if (!e)
        e = rk_store_load_flags(s, a->name, &a->status, &a->paused_until, &flag_resumes,
                                &a->flags_seq, a->status_text, sizeof a->status_text, errstr,
                                errstr_size);
    if (e) return e;
    /* P&L state */
    e = qb_store_query(s,
                       "SELECT day, day_start, hwm, resumes, initial_cash FROM risk.account_state"
                       " WHERE account = $1",
                       1, p, &r, errstr, errstr_size);
    if (e) return e;
    a->initial_cash = default_cash;
    a->state_new = PQntuples(r) == 0;
    if (!a->state_new) {
        a->pnl.day = col(r, 0, 0);
        a->pnl.day_start = col(r, 0, 1);
        a->pnl.hwm = col(r, 0, 2);
        a->resumes = col(r, 0, 3);
        a->initial_cash = col(r, 0, 4);
    }
    PQclear(r);
    /* the books: every fill, in order */
    qb_portfolio_config_t pc = *pcfg;
    snprintf(pc.account, sizeof pc.account, "%s", a->name);
    pc.initial_cash = a->initial_cash;
    qb_portfolio_destroy(a->pf);
    a->pf = NULL;
    if ((e = qb_portfolio_new(&pc, &a->pf, errstr, errstr_size))) return e;
    e = qb_store_query(s,
                       "SELECT fill_id, symbol, side, qty, price, commission FROM risk.fills"
                       " WHERE account = $1 ORDER BY seq",
                       1, p, &r, errstr, errstr_size);
    if (e) return e;
    a->fill_n = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        uint32_t id;
        char msg[256];
        if (!ensure_sym(a, PQgetvalue(r, i, 1), &id) ||
            qb_portfolio_apply_fill(a->pf, id, (qb_side_t)col(r, i, 2), col(r, i, 3),
                                    col(r, i, 4), col(r, i, 5), msg, sizeof msg) != QB_OK) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL,
                              "account %s: stored fill %s cannot be replayed", a->name,
                              PQgetvalue(r, i, 0));
        }
        rk_ring_add(a->fill_ring, &a->fill_n, RK_FILL_RING, rk_hash(PQgetvalue(r, i, 0)));
    }
    PQclear(r);
    /* marks */
    e = qb_store_query(s,
                       "SELECT symbol, mark, mark_ts FROM risk.positions WHERE account = $1"
                       " AND mark > 0",
                       1, p, &r, errstr, errstr_size);
    if (e) return e;
    for (int i = 0; i < PQntuples(r); i++) {
        uint32_t id;
        if (!ensure_sym(a, PQgetvalue(r, i, 0), &id)) continue;
        if (qb_portfolio_mark(a->pf, id, col(r, i, 1)) == QB_OK) a->mark_ts[id] = col(r, i, 2);
    }
    PQclear(r);
    /* open orders */
    e = qb_store_query(s,
                       "SELECT order_id, symbol, side, qty, leaves, reserved FROM risk.orders"
                       " WHERE account = $1 AND open",
                       1, p, &r, errstr, errstr_size);
    if (e) return e;
    a->nopen = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        uint32_t id;
        if (!ensure_sym(a, PQgetvalue(r, i, 1), &id)) continue;
        if (a->nopen == a->capopen) {
            size_t c = a->capopen ? a->capopen * 2 : 16;
            rk_open_t *v = realloc(a->open, c * sizeof *v);
            if (!v) {
                PQclear(r);
                return QB_ERR_NOMEM;
            }
            a->open = v;
            a->capopen = c;
        }
        rk_open_t *o = &a->open[a->nopen++];
        snprintf(o->id, sizeof o->id, "%s", PQgetvalue(r, i, 0));
        o->sym = id;
        o->side = (qb_side_t)col(r, i, 2);
        o->qty = col(r, i, 3);
        o->leaves = col(r, i, 4);
        o->reserved = col(r, i, 5);
    }
    PQclear(r);
    /* approvals of the last minute (rate limit), recent decision ids */
    char since[24];
    p[1] = I64(since, now - 60LL * 1000000000LL);
    e = qb_store_query(s,
                       "SELECT decided_at FROM risk.orders WHERE account = $1 AND approved AND"
                       " decided_at > $2::bigint ORDER BY decided_at",
                       2, p, &r, errstr, errstr_size);
    if (e) return e;
    a->rate_n = a->rate_head = 0;
    for (int i = 0; i < PQntuples(r) && a->rate_cap; i++) {
        a->rate[(a->rate_head + a->rate_n) % a->rate_cap] = col(r, i, 0);
        if (a->rate_n < a->rate_cap) a->rate_n++;
        else a->rate_head = (a->rate_head + 1) % a->rate_cap;
    }
    PQclear(r);
    char lim[24];
    p[1] = I64(lim, RK_DEC_RING);
    e = qb_store_query(s,
                       "SELECT order_id::text, published FROM risk.orders WHERE account = $1"
                       " ORDER BY decided_at DESC LIMIT $2::bigint",
                       2, p, &r, errstr, errstr_size);
    if (e) return e;
    a->dec_n = 0;
    *unpublished = 0;
    for (int i = PQntuples(r) - 1; i >= 0; i--) {
        rk_ring_add(a->dec_ring, &a->dec_n, RK_DEC_RING, rk_hash(PQgetvalue(r, i, 0)));
        if (PQgetvalue(r, i, 1)[0] == 'f') (*unpublished)++;
    }
    PQclear(r);
    /* a RESUME applied while the account was not loaded here */
    if (flag_resumes > a->resumes) {
        qb_risk_post_rebase(&a->pnl, qb_portfolio_equity(a->pf), now);
        a->resumes = flag_resumes;
        a->dirty = 1;
    }
    return QB_OK;
}

/* ---- the batch ------------------------------------------------------------------ */

typedef struct fill_row_s {
    char account[QB_ACCOUNT_MAX + 1], fill_id[128], order_id[128], symbol[QB_SYMBOL_MAX + 1];
    int side;
    qb_dec_t qty, price, comm;
    qb_time_t ts;
} fill_row_t;
typedef struct upd_row_s {
    char order_id[QB_UUID_STRLEN];
    qb_dec_t leaves, reserved;
    int open;
} upd_row_t;
typedef struct ev_row_s {
    char event_id[QB_UUID_STRLEN], account[QB_ACCOUNT_MAX + 1], command_id[128];
    int kind, severity, limit;
    qb_dec_t observed, limit_value;
    char *message;
    qb_time_t at;
    uint8_t *msg;
    size_t len;
} ev_row_t;
typedef struct off_row_s {
    char topic[256];
    int32_t partition;
    int64_t next;
} off_row_t;

struct rk_batch_s {
    rk_decision_t *d;
    size_t nd, capd;
    fill_row_t *f;
    size_t nf, capf;
    upd_row_t *u;
    size_t nu, capu;
    ev_row_t *ev;
    size_t nev, capev;
    off_row_t *o;
    size_t no, capo;
    int written;
    int staged; /* the staging temp tables exist on the current connection */
};

#define GROW(arr, n, cap)                                                    \
    do {                                                                     \
        if ((n) == (cap)) {                                                  \
            size_t nc_ = (cap) ? (cap) * 2 : 64;                             \
            void *np_ = realloc((arr), nc_ * sizeof(*(arr)));                \
            if (!np_) return QB_ERR_NOMEM;                                   \
            (arr) = np_;                                                     \
            (cap) = nc_;                                                     \
        }                                                                    \
    } while (0)

rk_batch_t *rk_batch_new(void) { return calloc(1, sizeof(rk_batch_t)); }

static void batch_clear(rk_batch_t *b) {
    for (size_t i = 0; i < b->nd; i++) free(b->d[i].msg);
    for (size_t i = 0; i < b->nev; i++) {
        free(b->ev[i].msg);
        free(b->ev[i].message);
    }
    b->nd = b->nf = b->nu = b->nev = b->no = 0;
    b->written = 0; /* staged stays: the tables outlive the batch */
}

void rk_batch_free(rk_batch_t *b) {
    if (!b) return;
    batch_clear(b);
    free(b->d);
    free(b->f);
    free(b->u);
    free(b->ev);
    free(b->o);
    free(b);
}

size_t rk_batch_rows(const rk_batch_t *b) { return b->nd + b->nf + b->nu + b->nev; }
size_t rk_batch_ndecisions(const rk_batch_t *b) { return b->nd; }
const rk_decision_t *rk_batch_decision_at(const rk_batch_t *b, size_t i) { return &b->d[i]; }
size_t rk_batch_nevents(const rk_batch_t *b) { return b->nev; }
void rk_batch_event_at(const rk_batch_t *b, size_t i, const char **account, const uint8_t **msg,
                       size_t *len) {
    *account = b->ev[i].account;
    *msg = b->ev[i].msg;
    *len = b->ev[i].len;
}
int rk_batch_written(const rk_batch_t *b) { return b->written; }
const char *rk_batch_event_id(const rk_batch_t *b, size_t i) { return b->ev[i].event_id; }

qb_err_t rk_batch_decision(rk_batch_t *b, const rk_decision_t *d) {
    GROW(b->d, b->nd, b->capd);
    b->d[b->nd++] = *d; /* takes d->msg */
    return QB_OK;
}

qb_err_t rk_batch_fill(rk_batch_t *b, const char *account, const char *fill_id,
                       const char *order_id, const char *symbol, int side, qb_dec_t qty,
                       qb_dec_t price, qb_dec_t comm, qb_time_t ts) {
    GROW(b->f, b->nf, b->capf);
    fill_row_t *f = &b->f[b->nf++];
    snprintf(f->account, sizeof f->account, "%s", account);
    snprintf(f->fill_id, sizeof f->fill_id, "%s", fill_id);
    snprintf(f->order_id, sizeof f->order_id, "%s", order_id);
    snprintf(f->symbol, sizeof f->symbol, "%s", symbol);
    f->side = side;
    f->qty = qty;
    f->price = price;
    f->comm = comm;
    f->ts = ts;
    return QB_OK;
}

qb_err_t rk_batch_order_update(rk_batch_t *b, const char *order_id, qb_dec_t leaves,
                               qb_dec_t reserved, int open) {
    GROW(b->u, b->nu, b->capu);
    upd_row_t *u = &b->u[b->nu++];
    snprintf(u->order_id, sizeof u->order_id, "%s", order_id);
    u->leaves = leaves;
    u->reserved = reserved;
    u->open = open;
    return QB_OK;
}

qb_err_t rk_batch_event(rk_batch_t *b, const char *event_id, const char *account, int kind,
                        int severity, int limit, qb_dec_t observed, qb_dec_t limit_value,
                        const char *message, const char *command_id, qb_time_t at,
                        const uint8_t *msg, size_t len) {
    GROW(b->ev, b->nev, b->capev);
    ev_row_t *v = &b->ev[b->nev];
    memset(v, 0, sizeof *v);
    snprintf(v->event_id, sizeof v->event_id, "%s", event_id);
    snprintf(v->account, sizeof v->account, "%s", account);
    snprintf(v->command_id, sizeof v->command_id, "%s", command_id ? command_id : "");
    v->kind = kind;
    v->severity = severity;
    v->limit = limit;
    v->observed = observed;
    v->limit_value = limit_value;
    v->at = at;
    v->message = strdup(message ? message : "");
    v->msg = malloc(len ? len : 1);
    if (!v->message || !v->msg) {
        free(v->message);
        free(v->msg);
        return QB_ERR_NOMEM;
    }
    memcpy(v->msg, msg, len);
    v->len = len;
    b->nev++;
    return QB_OK;
}

qb_err_t rk_batch_offset(rk_batch_t *b, const char *topic, int32_t partition, int64_t next) {
    for (size_t i = 0; i < b->no; i++)
        if (b->o[i].partition == partition && strcmp(b->o[i].topic, topic) == 0) {
            if (next > b->o[i].next) b->o[i].next = next;
            return QB_OK;
        }
    GROW(b->o, b->no, b->capo);
    off_row_t *o = &b->o[b->no++];
    snprintf(o->topic, sizeof o->topic, "%s", topic);
    o->partition = partition;
    o->next = next;
    return QB_OK;
}

int64_t rk_batch_offset_of(const rk_batch_t *b, const char *topic, int32_t partition) {
    for (size_t i = 0; i < b->no; i++)
        if (b->o[i].partition == partition && strcmp(b->o[i].topic, topic) == 0)
            return b->o[i].next;
    return -1;
}

static void hex_bytea(const uint8_t *m, size_t len, char *out) {
    static const char hx[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = hx[m[i] >> 4];
        out[3 + 2 * i] = hx[m[i] & 15];
    }
    out[2 + 2 * len] = '\0';
}

/* The batch goes through COPY into session temp tables, then one
 * multi-statement upsert: a handful of round trips whatever its size. */
static const char RK_STAGE_SQL[] =
    "SET LOCAL client_min_messages = warning;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_o (order_id uuid, account text, cause_id text,"
    " cause_kind smallint, strategy_id text, symbol text, side smallint, qty bigint, price bigint,"
    " approved boolean, reason_code integer, reason_text text, leaves bigint, reserved bigint,"
    " open boolean, decided_at bigint, topic text, msg bytea) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_f (account text, fill_id text, order_id text, symbol text,"
    " side smallint, qty bigint, price bigint, commission bigint, ts bigint, n bigint)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_u (order_id uuid, leaves bigint, reserved bigint,"
    " open boolean, n bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_e (event_id uuid, account text, kind integer,"
    " severity integer, limit_kind integer, observed bigint, limit_value bigint, message text,"
    " command_id text, at bigint, msg bytea) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_s (account text, day bigint, day_start bigint,"
    " hwm bigint, resumes bigint, cash bigint, equity bigint, realized bigint,"
    " unrealized bigint, initial_cash bigint, fills bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_p (account text, symbol text, qty bigint,"
    " avg_cost bigint, realized bigint, mark bigint, mark_ts bigint, unrealized bigint)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_a (account text, status text, paused_until bigint,"
    " status_text text) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS rk_x (topic text, partition integer, next_offset bigint)"
    " ON COMMIT DELETE ROWS";

/* The upsert of each staged table (run only for the tables with rows). */
static const char *const RK_APPLY[8] = {
    "INSERT INTO risk.orders (order_id, account, cause_id, cause_kind, strategy_id, symbol,"
    " side, qty, price, approved, reason_code, reason_text, leaves, reserved, open, decided_at,"
    " topic, msg) SELECT * FROM rk_o ON CONFLICT (order_id) DO NOTHING;",
    "INSERT INTO risk.fills (account, fill_id, order_id, symbol, side, qty, price, commission,"
    " ts) SELECT account, fill_id, order_id, symbol, side, qty, price, commission, ts FROM rk_f"
    " ORDER BY n ON CONFLICT (account, fill_id) DO NOTHING;",
    "UPDATE risk.orders o SET leaves = u.leaves, reserved = u.reserved, open = u.open FROM"
    " (SELECT DISTINCT ON (order_id) * FROM rk_u ORDER BY order_id, n DESC) u"
    " WHERE o.order_id = u.order_id;",
    "INSERT INTO risk.events (event_id, account, kind, severity, limit_kind, observed,"
    " limit_value, message, command_id, at, msg) SELECT * FROM rk_e ON CONFLICT (event_id)"
    " DO NOTHING;",
    "INSERT INTO risk.account_state (account, day, day_start, hwm, resumes, cash, equity,"
    " realized, unrealized, initial_cash, fills) SELECT * FROM rk_s ON CONFLICT (account) DO"
    " UPDATE SET day = EXCLUDED.day, day_start = EXCLUDED.day_start, hwm = EXCLUDED.hwm,"
    " resumes = EXCLUDED.resumes, cash = EXCLUDED.cash, equity = EXCLUDED.equity,"
    " realized = EXCLUDED.realized, unrealized = EXCLUDED.unrealized, fills = EXCLUDED.fills,"
    " updated_at = now();",
    "INSERT INTO risk.positions (account, symbol, qty, avg_cost, realized, mark, mark_ts,"
    " unrealized) SELECT * FROM rk_p ON CONFLICT (account, symbol) DO UPDATE SET"
    " qty = EXCLUDED.qty, avg_cost = EXCLUDED.avg_cost, realized = EXCLUDED.realized,"
    " mark = EXCLUDED.mark, mark_ts = EXCLUDED.mark_ts, unrealized = EXCLUDED.unrealized,"
    " updated_at = now();",
    "INSERT INTO risk.accounts (account, status, paused_until, status_text) SELECT * FROM rk_a"
    " ON CONFLICT (account) DO UPDATE SET status = EXCLUDED.status,"
    " paused_until = EXCLUDED.paused_until, status_text = EXCLUDED.status_text,"
    " change_seq = nextval('risk.change_seq'), updated_at = now();",
    "INSERT INTO risk.offsets (topic, partition, next_offset) SELECT * FROM rk_x"
    " ON CONFLICT (topic, partition) DO UPDATE SET"
    " next_offset = greatest(risk.offsets.next_offset, EXCLUDED.next_offset);",
};

/* One COPY: rows produced by `row(i, fields)` for i < n (fields valid
 * until the next call). */
typedef int (*rk_row_fn)(void *ctx, size_t i, const char **fields, char *buf, size_t bufsize);
static qb_err_t copy_rows(qb_store_t *s, const char *table, int nf, size_t n, rk_row_fn row,
                          void *ctx, char *errstr, size_t errstr_size) {
    if (n == 0) return QB_OK;
    char sql[64];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", table);
    qb_err_t e = qb_store_copy_begin(s, sql, errstr, errstr_size);
    size_t bufsize = 1 << 16;
    char *buf = malloc(bufsize);
    if (!buf) e = e ? e : QB_ERR_NOMEM;
    const char *fields[24];
    for (size_t i = 0; i < n && !e; i++) {
        if (row(ctx, i, fields, buf, bufsize) != 0) e = QB_ERR_NOMEM;
        else e = qb_store_copy_row(s, fields, nf, errstr, errstr_size);
    }
    free(buf);
    if (e) {
        qb_store_copy_abort(s, NULL, 0);
        return e;
    }
    return qb_store_copy_end(s, NULL, errstr, errstr_size);
}

/* Numbers into buf, one after another: field pointers into it. */
typedef struct fmt_s {
    char *buf;
    size_t size, pos;
} fmt_t;
static const char *fi(fmt_t *f, int64_t v) {
    char *p = f->buf + f->pos;
    int n = snprintf(p, f->size - f->pos, "%" PRId64, v);
    f->pos += (size_t)n + 1;
    return p;
}

static int row_o(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const rk_decision_t *d = &((rk_batch_t *)ctx)->d[i];
    size_t need = d->len * 2 + 3 + 256;
    fmt_t f = {buf, bs, 0};
    if (need > bs - 512) return -1;
    v[0] = d->order_id, v[1] = d->account, v[2] = d->cause_id, v[3] = fi(&f, d->cause_kind);
    v[4] = d->strategy_id, v[5] = d->symbol, v[6] = fi(&f, d->side), v[7] = fi(&f, d->qty);
    v[8] = fi(&f, d->price), v[9] = d->approved ? "t" : "f", v[10] = fi(&f, d->reason_code);
    v[11] = d->reason_text, v[12] = fi(&f, d->approved ? d->qty : 0), v[13] = fi(&f, d->reserved);
    v[14] = d->approved ? "t" : "f", v[15] = fi(&f, d->decided_at), v[16] = d->topic;
    hex_bytea(d->msg, d->len, buf + f.pos);
    v[17] = buf + f.pos;
    return 0;
}
static int row_f(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const fill_row_t *r = &((rk_batch_t *)ctx)->f[i];
    fmt_t f = {buf, bs, 0};
    v[0] = r->account, v[1] = r->fill_id, v[2] = r->order_id, v[3] = r->symbol;
    v[4] = fi(&f, r->side), v[5] = fi(&f, r->qty), v[6] = fi(&f, r->price);
    v[7] = fi(&f, r->comm), v[8] = fi(&f, r->ts), v[9] = fi(&f, (int64_t)i);
    return 0;
}
static int row_u(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const upd_row_t *u = &((rk_batch_t *)ctx)->u[i];
    fmt_t f = {buf, bs, 0};
    v[0] = u->order_id, v[1] = fi(&f, u->leaves), v[2] = fi(&f, u->reserved);
    v[3] = u->open ? "t" : "f", v[4] = fi(&f, (int64_t)i);
    return 0;
}
static int row_e(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const ev_row_t *e = &((rk_batch_t *)ctx)->ev[i];
    fmt_t f = {buf, bs, 0};
    if (e->len * 2 + 512 > bs) return -1;
    v[0] = e->event_id, v[1] = e->account, v[2] = fi(&f, e->kind), v[3] = fi(&f, e->severity);
    v[4] = fi(&f, e->limit), v[5] = fi(&f, e->observed), v[6] = fi(&f, e->limit_value);
    v[7] = e->message, v[8] = e->command_id, v[9] = fi(&f, e->at);
    hex_bytea(e->msg, e->len, buf + f.pos);
    v[10] = buf + f.pos;
    return 0;
}
static int row_x(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const off_row_t *o = &((rk_batch_t *)ctx)->o[i];
    fmt_t f = {buf, bs, 0};
    v[0] = o->topic, v[1] = fi(&f, o->partition), v[2] = fi(&f, o->next);
    return 0;
}

typedef struct acc_ctx_s {
    rk_account_t *const *a;
    size_t n;
    /* positions: (account index, symbol id) pairs */
    size_t *pa;
    uint32_t *ps;
    size_t np;
    /* accounts with a status to write */
    size_t *fa;
    size_t nfa;
} acc_ctx_t;

static int row_s(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const rk_account_t *a = ((acc_ctx_t *)ctx)->a[i];
    fmt_t f = {buf, bs, 0};
    v[0] = a->name, v[1] = fi(&f, a->pnl.day), v[2] = fi(&f, a->pnl.day_start);
    v[3] = fi(&f, a->pnl.hwm), v[4] = fi(&f, a->resumes), v[5] = fi(&f, qb_portfolio_cash(a->pf));
    v[6] = fi(&f, qb_portfolio_equity(a->pf)), v[7] = fi(&f, qb_portfolio_realized(a->pf));
    v[8] = fi(&f, qb_portfolio_unrealized(a->pf)), v[9] = fi(&f, a->initial_cash);
    v[10] = fi(&f, (int64_t)qb_portfolio_fills(a->pf));
    return 0;
}
static int row_p(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const acc_ctx_t *c = ctx;
    const rk_account_t *a = c->a[c->pa[i]];
    uint32_t id = c->ps[i];
    const qb_position_t *pos = qb_portfolio_position(a->pf, id);
    fmt_t f = {buf, bs, 0};
    v[0] = a->name, v[1] = qb_portfolio_symbol_name(a->pf, id), v[2] = fi(&f, pos->qty);
    v[3] = fi(&f, pos->avg_cost), v[4] = fi(&f, pos->realized_pnl);
    v[5] = fi(&f, qb_portfolio_mark_price(a->pf, id));
    v[6] = fi(&f, id < a->nmark_ts ? a->mark_ts[id] : 0);
    v[7] = fi(&f, qb_portfolio_unrealized_of(a->pf, id));
    return 0;
}
static int row_a(void *ctx, size_t i, const char **v, char *buf, size_t bs) {
    const acc_ctx_t *c = ctx;
    const rk_account_t *a = c->a[c->fa[i]];
    fmt_t f = {buf, bs, 0};
    v[0] = a->name, v[1] = qb_risk_status_name(a->status), v[2] = fi(&f, a->paused_until);
    v[3] = a->status_text;
    return 0;
}

qb_err_t rk_batch_write(rk_batch_t *b, qb_store_t *s, rk_account_t *const *dirty, size_t ndirty,
                        char *errstr, size_t errstr_size) {
    if (b->written) return QB_OK;
    acc_ctx_t ac = {dirty, ndirty, NULL, NULL, 0, NULL, 0};
    size_t cap = 0;
    for (size_t i = 0; i < ndirty; i++) cap += qb_portfolio_nsymbols(dirty[i]->pf);
    ac.pa = malloc((cap + 1) * sizeof *ac.pa);
    ac.ps = malloc((cap + 1) * sizeof *ac.ps);
    ac.fa = malloc((ndirty + 1) * sizeof *ac.fa);
    if (!ac.pa || !ac.ps || !ac.fa) {
        free(ac.pa), free(ac.ps), free(ac.fa);
        return QB_ERR_NOMEM;
    }
    for (size_t i = 0; i < ndirty; i++) {
        const rk_account_t *a = dirty[i];
        if (a->flags_dirty) ac.fa[ac.nfa++] = i;
        for (uint32_t id = 0; id < qb_portfolio_nsymbols(a->pf); id++) {
            const qb_position_t *pos = qb_portfolio_position(a->pf, id);
            if (!pos || (pos->qty == 0 && pos->realized_pnl == 0 &&
                         qb_portfolio_mark_price(a->pf, id) == 0))
                continue;
            /* after the first write, only what a fill or mark changed */
            if (a->pos_clean && id < a->nmark_ts && !a->pos_dirty[id]) continue;
            ac.pa[ac.np] = i;
            ac.ps[ac.np++] = id;
        }
    }
    size_t counts[8] = {b->nd, b->nf, b->nu, b->nev, ndirty, ac.np, ac.nfa, b->no};
    char apply[4096];
    size_t pos = 0;
    for (int i = 0; i < 8; i++)
        if (counts[i]) pos += (size_t)snprintf(apply + pos, sizeof apply - pos, "%s", RK_APPLY[i]);
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    /* The session's staging tables, made once per connection (a failed
     * write makes them again: the connection may be a new one). */
    if (!e && !b->staged) e = qb_store_exec(s, RK_STAGE_SQL, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_o", 18, b->nd, row_o, b, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_f", 10, b->nf, row_f, b, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_u", 5, b->nu, row_u, b, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_e", 11, b->nev, row_e, b, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_s", 11, ndirty, row_s, &ac, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_p", 8, ac.np, row_p, &ac, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_a", 4, ac.nfa, row_a, &ac, errstr, errstr_size);
    if (!e) e = copy_rows(s, "rk_x", 3, b->no, row_x, b, errstr, errstr_size);
    if (!e && pos) e = qb_store_exec(s, apply, errstr, errstr_size);
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    free(ac.pa), free(ac.ps), free(ac.fa);
    if (e) {
        qb_store_rollback(s, NULL, 0);
        b->staged = 0;
        return e;
    }
    b->staged = 1;
    b->written = 1;
    return QB_OK;
}

void rk_batch_done(rk_batch_t *b) { batch_clear(b); }

qb_err_t rk_store_mark(qb_store_t *s, const char *orders, const char *events, char *errstr,
                       size_t errstr_size) {
    const char *p[2] = {orders, events};
    return qb_store_query(s,
                          "WITH a AS (UPDATE risk.orders SET published = true WHERE order_id ="
                          " ANY($1::uuid[]) RETURNING 1), b AS (UPDATE risk.events SET"
                          " published = true WHERE event_id = ANY($2::uuid[]) RETURNING 1)"
                          " SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)",
                          2, p, NULL, errstr, errstr_size);
}

/* ---- the outbox after a crash ------------------------------------------------------ */

static qb_err_t read_unpub(qb_store_t *s, const char *sql, int np, const char *const *p,
                           rk_unpub_t **out, size_t *n, char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, sql, np, p, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows) {
        rk_unpub_t *v = calloc((size_t)rows, sizeof *v);
        if (!v) {
            PQclear(r);
            return QB_ERR_NOMEM;
        }
        for (int i = 0; i < rows; i++) {
            snprintf(v[i].id, sizeof v[i].id, "%s", PQgetvalue(r, i, 0));
            snprintf(v[i].topic, sizeof v[i].topic, "%s", PQgetvalue(r, i, 1));
            size_t len = 0;
            unsigned char *m = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 2), &len);
            v[i].msg = malloc(len ? len : 1);
            if (m && v[i].msg) memcpy(v[i].msg, m, len);
            v[i].len = len;
            PQfreemem(m);
        }
        *out = v;
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t rk_store_unpublished(qb_store_t *s, const char *account, rk_unpub_t **out, size_t *n,
                              char *errstr, size_t errstr_size) {
    const char *p[1] = {account};
    if (!account)
        return read_unpub(s,
                          "SELECT order_id::text, topic, ''::bytea FROM risk.orders WHERE NOT"
                          " published ORDER BY decided_at",
                          0, NULL, out, n, errstr, errstr_size);
    return read_unpub(s,
                      "SELECT order_id::text, topic, msg FROM risk.orders WHERE account = $1"
                      " AND NOT published ORDER BY decided_at",
                      1, p, out, n, errstr, errstr_size);
}

qb_err_t rk_store_unpublished_events(qb_store_t *s, rk_unpub_t **out, size_t *n, char *errstr,
                                     size_t errstr_size) {
    return read_unpub(s,
                      "SELECT event_id::text, account, msg FROM risk.events WHERE NOT published"
                      " ORDER BY at",
                      0, NULL, out, n, errstr, errstr_size);
}

void rk_unpub_free(rk_unpub_t *v, size_t n) {
    for (size_t i = 0; i < n && v; i++) free(v[i].msg);
    free(v);
}

static qb_err_t mark_ids(qb_store_t *s, const char *sql, const rk_unpub_t *v, size_t n,
                         char *errstr, size_t errstr_size) {
    if (!n) return QB_OK;
    size_t cap = n * (QB_UUID_STRLEN + 1) + 3, pos = 0;
    char *arr = malloc(cap);
    if (!arr) return QB_ERR_NOMEM;
    arr[pos++] = '{';
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(arr + pos, cap - pos, "%s%s", i ? "," : "", v[i].id);
    arr[pos++] = '}';
    arr[pos] = '\0';
    const char *p[1] = {arr};
    qb_err_t e = qb_store_query(s, sql, 1, p, NULL, errstr, errstr_size);
    free(arr);
    return e;
}

qb_err_t rk_store_mark_published(qb_store_t *s, const rk_unpub_t *v, size_t n, char *errstr,
                                 size_t errstr_size) {
    return mark_ids(s, "UPDATE risk.orders SET published = true WHERE order_id = ANY($1::uuid[])",
                    v, n, errstr, errstr_size);
}
qb_err_t rk_store_mark_events(qb_store_t *s, const rk_unpub_t *v, size_t n, char *errstr,
                              size_t errstr_size) {
    return mark_ids(s, "UPDATE risk.events SET published = true WHERE event_id = ANY($1::uuid[])",
                    v, n, errstr, errstr_size);
}

/* ---- control ------------------------------------------------------------------------ */

static qb_err_t claim_command(qb_store_t *s, const Qb__V1__Command *cmd, int *dup, char *errstr,
                              size_t errstr_size) {
    char k[24];
    const char *p[3] = {cmd->command_id, I64(k, cmd->kind), cmd->account ? cmd->account : ""};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "INSERT INTO risk.commands (command_id, kind, account) VALUES ($1,"
                                " $2::integer, $3) ON CONFLICT DO NOTHING RETURNING 1",
                                3, p, &r, errstr, errstr_size);
    if (e) return e;
    *dup = PQntuples(r) == 0;
    PQclear(r);
    return QB_OK;
}

static qb_err_t audit(qb_store_t *s, const Qb__V1__Command *cmd, int kind, const char *key,
                      const char *oldv, const char *newv, const char *outcome, const char *msg,
                      char *errstr, size_t errstr_size) {
    char k[24];
    const char *p[10] = {cmd->account,  I64(k, kind), key, oldv, newv, outcome, msg,
                         cmd->issued_by ? cmd->issued_by : "", cmd->command_id,
                         cmd->reason ? cmd->reason : ""};
    return qb_store_query(s,
                          "INSERT INTO risk.limit_audit (account, kind, key, old_value, new_value,"
                          " outcome, message, issued_by, command_id, reason) VALUES ($1,"
                          " $2::integer, $3, $4::bigint, $5::bigint, $6, $7, $8, $9, $10)",
                          10, p, NULL, errstr, errstr_size);
}

qb_err_t rk_store_set_limits(qb_store_t *s, const Qb__V1__Command *cmd, int *dup, int *refused,
                             char *msg, size_t msg_size, char *errstr, size_t errstr_size) {
    const Qb__V1__Command__LimitsParams *lp = cmd->limits;
    *dup = *refused = 0;
    msg[0] = '\0';
    /* validate everything first: a command applies whole or not at all */
    for (size_t i = 0; i < lp->n_limits; i++) {
        const Qb__V1__Command__Limit *l = lp->limits[i];
        if (qb_risk_limit_check((int)l->kind, l->symbol, l->value, msg, msg_size) != QB_OK) {
            *refused = 1;
            break;
        }
    }
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (!e) e = claim_command(s, cmd, dup, errstr, errstr_size);
    if (!e && !*dup && *refused) {
        for (size_t i = 0; i < lp->n_limits && !e; i++) {
            const Qb__V1__Command__Limit *l = lp->limits[i];
            char nv[24];
            e = audit(s, cmd, (int)l->kind, l->symbol ? l->symbol : "", NULL, I64(nv, l->value),
                      "refused", msg, errstr, errstr_size);
        }
    } else if (!e && !*dup) {
        if (lp->replace_all) {
            PGresult *r = NULL;
            const char *p[1] = {cmd->account};
            e = qb_store_query(s,
                               "DELETE FROM risk.limits WHERE account = $1 RETURNING kind, key,"
                               " value",
                               1, p, &r, errstr, errstr_size);
            for (int i = 0; !e && i < PQntuples(r); i++)
                e = audit(s, cmd, (int)col(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                          NULL, "removed", "replace_all", errstr, errstr_size);
            PQclear(r);
        }
        for (size_t i = 0; i < lp->n_limits && !e; i++) {
            const Qb__V1__Command__Limit *l = lp->limits[i];
            char k[24], nv[24];
            const char *key = l->symbol ? l->symbol : "";
            const char *p[5] = {cmd->account, I64(k, l->kind), key, I64(nv, l->value),
                                cmd->issued_by ? cmd->issued_by : ""};
            PGresult *r = NULL;
            e = qb_store_query(s,
                               "WITH old AS (SELECT value FROM risk.limits WHERE account = $1 AND"
                               " kind = $2::integer AND key = $3) INSERT INTO risk.limits (account,"
                               " kind, key, value, updated_by) VALUES ($1, $2::integer, $3,"
                               " $4::bigint, $5) ON CONFLICT (account, kind, key) DO UPDATE SET"
                               " value = EXCLUDED.value, updated_by = EXCLUDED.updated_by,"
                               " updated_at = now() RETURNING (SELECT value FROM old)",
                               5, p, &r, errstr, errstr_size);
            if (!e) {
                const char *oldv = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
                e = audit(s, cmd, (int)l->kind, key, oldv, nv, "applied", "", errstr,
                          errstr_size);
            }
            PQclear(r);
        }
        if (!e) {
            const char *p[1] = {cmd->account};
            e = qb_store_query(s,
                               "INSERT INTO risk.accounts (account) VALUES ($1) ON CONFLICT"
                               " (account) DO UPDATE SET change_seq = nextval('risk.change_seq'),"
                               " updated_at = now()",
                               1, p, NULL, errstr, errstr_size);
        }
    }
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    if (e) qb_store_rollback(s, NULL, 0);
    return e;
}

qb_err_t rk_store_set_status(qb_store_t *s, const Qb__V1__Command *cmd, const char *account,
                             qb_risk_status_t status, int resume, int *dup,
                             qb_risk_status_t *was, char *errstr, size_t errstr_size) {
    *was = QB_RISK_ACTIVE;
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (!e) e = claim_command(s, cmd, dup, errstr, errstr_size);
    if (!e && !*dup) {
        PGresult *r = NULL;
        char text[300];
        snprintf(text, sizeof text, "%s by %s: %.200s", resume ? "RESUME" : "KILL_SWITCH",
                 cmd->issued_by ? cmd->issued_by : "", cmd->reason ? cmd->reason : "");
        const char *p[4] = {account, qb_risk_status_name(status), resume ? "1" : "0", text};
        e = qb_store_query(s,
                           "WITH old AS (SELECT status FROM risk.accounts WHERE account = $1)"
                           " INSERT INTO risk.accounts (account, status, paused_until, resumes,"
                           " status_text) VALUES ($1, $2, 0, $3::bigint, $4) ON CONFLICT"
                           " (account) DO UPDATE SET status = EXCLUDED.status, paused_until = 0,"
                           " resumes = risk.accounts.resumes + $3::bigint, status_text = $4,"
                           " change_seq = nextval('risk.change_seq'), updated_at = now()"
                           " RETURNING (SELECT status FROM old)",
                           4, p, &r, errstr, errstr_size);
        if (!e && !PQgetisnull(r, 0, 0)) (void)qb_risk_status_parse(PQgetvalue(r, 0, 0), was);
        PQclear(r);
    }
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    if (e) qb_store_rollback(s, NULL, 0);
    return e;
}

qb_err_t rk_store_snapshot(qb_store_t *s, const char *account, qb_time_t at, const char *json,
                           char *errstr, size_t errstr_size) {
    char a[24];
    const char *p[3] = {account, I64(a, at), json};
    return qb_store_query(s,
                          "INSERT INTO risk.snapshots (account, at, figures) VALUES ($1,"
                          " $2::bigint, $3::jsonb)",
                          3, p, NULL, errstr, errstr_size);
}
