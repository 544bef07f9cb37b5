/* qb_store.c — one libpq connection that survives PostgreSQL going away.
 *
 * Design (see qb_store.h for the contract):
 *   - The handle owns the PGconn (NULL while disconnected), the DSN copy, the
 *     prepared-statement registry and the COPY buffer; all freed in
 *     qb_store_destroy().
 *   - Every public operation goes through store_ensure(): it checks an idle
 *     connection for a close by the server (PQconsumeInput reads the pending
 *     FATAL + EOF without blocking), replaces it if that is safe, and applies
 *     the back-off schedule.
 *   - Every server round trip ends in store_result(), the single place that
 *     turns a PGresult into a qb_err_t, notices a dead connection, records
 *     the SQLSTATE, tracks the transaction status and updates metrics.
 *   - `gen` counts successful connections; a registered statement remembers
 *     the generation it was prepared on, so a new connection re-prepares it
 *     on first use. */
#include "store/qb_store.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"

#define QB_STORE_BACKOFF_MIN_MS 100
#define QB_STORE_BACKOFF_MAX_MS 30000
#define QB_STORE_COPY_FLUSH (256 * 1024)
#define QB_STORE_MSG 512

typedef struct qb_store_stmt_s {
    char *name;
    char *sql;
    int nparams;
    uint64_t gen; /* connection generation it was prepared on; 0 = never */
} qb_store_stmt_t;

/* Connection state, kept only to log each change once. */
typedef enum qb_store_state_e {
    QB_STORE_INIT,  /* never connected */
    QB_STORE_UP,    /* connected */
    QB_STORE_LOST,  /* was connected, connection dropped */
    QB_STORE_DOWN   /* connection attempts failing, in back-off */
} qb_store_state_t;

struct qb_store_s {
    char *dsn;
    char desc[256];          /* "host=.. port=.. dbname=.. user=.." for logs */
    PGconn *conn;            /* NULL while disconnected */
    uint64_t gen;            /* ++ per successful connection */
    qb_store_state_t state;
    int64_t backoff_ms;      /* current back-off delay, 0 = none */
    int64_t next_try_ms;     /* monotonic ms before which we do not try */
    unsigned failures;       /* consecutive failed connection attempts */
    uint64_t rng;            /* jitter */
    char last_conn_err[256]; /* why the last attempt failed */
    int in_txn;              /* server-side transaction open (or was, see txn_lost) */
    int txn_lost;            /* connection died inside a transaction */
    int in_copy;             /* between copy_begin and copy_end */
    char *copybuf;
    size_t copylen, copycap;
    qb_store_stmt_t *stmts;
    int nstmts, capstmts;
    char sqlstate[6];
    int errpos;
    qb_counter_t *m_queries, *m_errors, *m_reconnects;
    qb_hist_t *m_seconds;
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t store_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t store_now_ms(void) { return store_now_ns() / 1000000LL; }

static uint64_t store_rand(qb_store_t *s) {
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Copy a libpq message into dst on one line: newlines and tabs become
 * spaces, runs of spaces collapse, trailing space is trimmed. */
static void store_oneline(char *dst, size_t cap, const char *src) {
    size_t o = 0;
    int space = 0;
    if (!cap) return;
    for (; src && *src && o + 1 < cap; src++) {
        char c = *src;
        if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < cap) dst[o++] = ' ';
        space = 0;
        dst[o++] = c;
    }
    dst[o] = '\0';
}

static qb_err_t store_fail(qb_store_t *s, qb_err_t err) {
    if (err != QB_OK) qb_counter_inc(s->m_errors);
    return err;
}

static void store_clear_error(qb_store_t *s) {
    s->sqlstate[0] = '\0';
    s->errpos = 0;
}

static void store_notice(void *arg, const PGresult *r) {
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!sev) sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
    if (!sev) sev = "NOTICE";
    if (!msg) msg = PQresultErrorMessage(r);
    char line[QB_STORE_MSG];
    store_oneline(line, sizeof(line), msg);
    if (strcmp(sev, "WARNING") == 0 || strcmp(sev, "ERROR") == 0 ||
        strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)
        QB_WARN("postgres %s: %s", sev, line);
    else
        QB_DEBUG("postgres %s: %s", sev, line);
}

/* ---- connection management ----------------------------------------------- */

/* Forget the connection. Inside a transaction the transaction is lost. */
static void store_drop(qb_store_t *s, const char *why) {
    if (s->conn) {
        QB_WARN("postgres connection lost (%s): %s", s->desc, why);
        PQfinish(s->conn);
        s->conn = NULL;
        s->state = QB_STORE_LOST;
    }
    if (s->in_txn) s->txn_lost = 1;
    s->in_copy = 0;
    s->copylen = 0;
    /* The first attempt after a loss is immediate; failures back off. */
    s->next_try_ms = 0;
}

static void store_backoff(qb_store_t *s) {
    if (s->backoff_ms == 0) s->backoff_ms = QB_STORE_BACKOFF_MIN_MS;
    else if (s->backoff_ms < QB_STORE_BACKOFF_MAX_MS) {
        s->backoff_ms *= 2;
        if (s->backoff_ms > QB_STORE_BACKOFF_MAX_MS) s->backoff_ms = QB_STORE_BACKOFF_MAX_MS;
    }
    /* Equal jitter: [d/2, d], so many services do not retry in lockstep. */
    int64_t half = s->backoff_ms / 2;
    int64_t delay = half + (int64_t)(store_rand(s) % (uint64_t)(half + 1));
    s->next_try_ms = store_now_ms() + delay;
}

static qb_err_t store_connect(qb_store_t *s, char *errstr, size_t errstr_size) {
    /* Entries before "dbname" are defaults the DSN may override. */
    static const char *const kw[] = {
        "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "fallback_application_name", "client_encoding",
        "options", "dbname", NULL};
    const char *vals[] = {"5", "1", "30", "10", "3", "quantbus", "UTF8",
                          "-c TimeZone=UTC", s->dsn, NULL};
    PGconn *c = PQconnectdbParams(kw, vals, 1);
    if (c && PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeReceiver(c, store_notice, s);
        s->conn = c;
        s->gen++;
        if (s->state == QB_STORE_INIT) {
            QB_INFO("postgres connected (%s, server %d)", s->desc, PQserverVersion(c));
        } else {
            qb_counter_inc(s->m_reconnects);
            QB_INFO("postgres reconnected (%s) after %u failed attempt(s)", s->desc,
                    s->failures);
        }
        s->state = QB_STORE_UP;
        s->backoff_ms = 0;
        s->next_try_ms = 0;
        s->failures = 0;
        s->last_conn_err[0] = '\0';
        return QB_OK;
    }
    store_oneline(s->last_conn_err, sizeof(s->last_conn_err),
                  c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    s->failures++;
    store_backoff(s);
    if (s->state != QB_STORE_DOWN) {
        QB_WARN("postgres unreachable (%s): %s; retrying with back-off %d ms .. %d s",
                s->desc, s->last_conn_err, QB_STORE_BACKOFF_MIN_MS,
                QB_STORE_BACKOFF_MAX_MS / 1000);
        s->state = QB_STORE_DOWN;
    } else {
        QB_DEBUG("postgres still unreachable (%s), attempt %u: %s", s->desc,
                 s->failures, s->last_conn_err);
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                      "postgres unavailable: %s", s->last_conn_err);
}

static qb_err_t store_txn_lost_err(char *errstr, size_t errstr_size) {
    return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                      "postgres connection lost inside a transaction: the transaction "
                      "was rolled back; call qb_store_rollback and retry it");
}

/* Idle liveness check without blocking: an idle connection has nothing to
 * read unless the server sent something on its own — a NOTICE, a NOTIFY, or
 * the FATAL message and EOF of a terminated backend. Consume what is there
 * (a few rounds, so a FATAL followed by EOF is seen as dead). */
static int store_idle_alive(PGconn *c) {
    for (int i = 0; i < 8; i++) {
        if (PQstatus(c) != CONNECTION_OK) return 0;
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        int n = poll(&p, 1, 0);
        if (n == 0) return 1;
        if (n < 0) return errno == EINTR;
        if (!PQconsumeInput(c)) return 0;
    }
    return PQstatus(c) == CONNECTION_OK;
}

/* Make sure there is a usable connection, or say why not. */
static qb_err_t store_ensure(qb_store_t *s, char *errstr, size_t errstr_size) {
    store_clear_error(s);
    if (s->txn_lost) return store_txn_lost_err(errstr, errstr_size);
    if (s->conn) {
        if (store_idle_alive(s->conn)) return QB_OK;
        char why[256];
        store_oneline(why, sizeof(why), PQerrorMessage(s->conn));
        store_drop(s, why[0] ? why : "connection closed");
        if (s->txn_lost) return store_txn_lost_err(errstr, errstr_size);
        /* Nothing was sent: reconnecting now is safe. */
    }
    int64_t now = store_now_ms();
    if (now < s->next_try_ms)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "postgres unavailable (in back-off, next attempt in %lld ms): %s",
                          (long long)(s->next_try_ms - now), s->last_conn_err);
    return store_connect(s, errstr, errstr_size);
}

static void store_track_txn(qb_store_t *s) {
    if (!s->conn) return;
    PGTransactionStatusType ts = PQtransactionStatus(s->conn);
    s->in_txn = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

/* Leave an unexpected COPY state that a plain query put us in. */
static void store_leave_copy(qb_store_t *s, ExecStatusType st) {
    PGresult *r;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
        PQputCopyEnd(s->conn, "COPY FROM STDIN must go through qb_store_copy_begin");
    } else if (st == PGRES_COPY_OUT) {
        char *buf = NULL;
        while (PQgetCopyData(s->conn, &buf, 0) > 0) {
            PQfreemem(buf);
            buf = NULL;
        }
    }
    while ((r = PQgetResult(s->conn)) != NULL) PQclear(r);
}

/* Turn the result of one round trip into a qb_err_t. Takes ownership of r:
 * on success hands it to *out (or frees it), on error frees it. */
static qb_err_t store_result(qb_store_t *s, PGresult *r, int64_t t0_ns,
                             PGresult **out, char *errstr, size_t errstr_size) {
    qb_counter_inc(s->m_queries);
    qb_hist_observe(s->m_seconds, (double)(store_now_ns() - t0_ns) / 1e9);
    int was_in_txn = s->in_txn;
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ||
        st == PGRES_SINGLE_TUPLE) {
        store_track_txn(s);
        if (out) *out = r;
        else PQclear(r);
        return QB_OK;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);
        store_leave_copy(s, st);
        store_track_txn(s);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "COPY is only supported through qb_store_copy_begin (FROM STDIN)");
    }

    /* An error. Is the connection gone? */
    if (!s->conn || PQstatus(s->conn) == CONNECTION_BAD) {
        char why[256];
        store_oneline(why, sizeof(why),
                      r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
                                                    : PQerrorMessage(s->conn));
        PQclear(r);
        store_drop(s, why);
        if (was_in_txn)
            return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                              "postgres connection lost inside a transaction (%s): the "
                              "transaction was rolled back (or, during COMMIT, its outcome "
                              "is unknown); call qb_store_rollback and retry it", why);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "postgres connection lost while the statement was in flight "
                          "(it may or may not have been applied): %s", why);
    }
    if (!r)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "libpq: %s",
                          PQerrorMessage(s->conn));

    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *prim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
    char m[QB_STORE_MSG], d[QB_STORE_MSG], h[256], c[256];
    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", state ? state : "");
    s->errpos = pos ? atoi(pos) : 0;
    store_oneline(m, sizeof(m), prim ? prim : PQresultErrorMessage(r));
    store_oneline(d, sizeof(d), detail);
    store_oneline(h, sizeof(h), hint);
    store_oneline(c, sizeof(c), ctx);
    PQclear(r);
    store_track_txn(s);

    qb_err_t err = QB_ERR_DB;
    if (strcmp(s->sqlstate, "23505") == 0) err = QB_ERR_CONFLICT;
    else if (strncmp(s->sqlstate, "08", 2) == 0 || strcmp(s->sqlstate, "57P01") == 0 ||
             strcmp(s->sqlstate, "57P02") == 0 || strcmp(s->sqlstate, "57P03") == 0)
        err = QB_ERR_UNAVAILABLE;
    char pbuf[32] = "";
    if (s->errpos > 0) snprintf(pbuf, sizeof(pbuf), ", position %d", s->errpos);
    return qb_err_set(errstr, errstr_size, err, "%s (SQLSTATE %s%s)%s%s%s%s%s%s", m,
                      s->sqlstate[0] ? s->sqlstate : "?????", pbuf,
                      d[0] ? "; detail: " : "", d, h[0] ? "; hint: " : "", h,
                      c[0] ? "; context: " : "", c);
}

static qb_err_t store_check_idle(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (s->in_copy)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "a COPY is in progress: finish it with qb_store_copy_end "
                          "or qb_store_copy_abort first");
    return QB_OK;
}

/* ---- life cycle ---------------------------------------------------------- */

qb_store_t *qb_store_new_like(const qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_new_like: NULL");
        return NULL;
    }
    return qb_store_new(s->dsn, errstr, errstr_size);
}

qb_store_t *qb_store_new(const char *dsn, char *errstr, size_t errstr_size) {
    char *perr = NULL;
    if (!dsn) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "postgres DSN is NULL");
        return NULL;
    }
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (!opts) {
        char m[256];
        store_oneline(m, sizeof(m), perr ? perr : "out of memory");
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "invalid postgres DSN: %s", m);
        PQfreemem(perr);
        return NULL;
    }
    qb_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->dsn = strdup(dsn))) {
        free(s);
        PQconninfoFree(opts);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* A description for logs: never the password. */
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
        else if (strcmp(o->keyword, "user") == 0) user = o->val;
    }
    snprintf(s->desc, sizeof(s->desc), "host=%s port=%s dbname=%s user=%s",
             host ? host : hostaddr ? hostaddr : "(default)", port ? port : "(default)",
             db ? db : "(default)", user ? user : "(default)");
    PQconninfoFree(opts);
    s->rng = (uint64_t)store_now_ns() ^ (uint64_t)(uintptr_t)s;
    s->state = QB_STORE_INIT;
    s->m_queries = qb_metrics_counter("qb_store_queries_total",
                                      "PostgreSQL round trips sent", NULL);
    s->m_errors = qb_metrics_counter("qb_store_errors_total",
                                     "PostgreSQL operations that returned an error", NULL);
    s->m_reconnects = qb_metrics_counter("qb_store_reconnects_total",
                                         "PostgreSQL reconnections after a loss or failure",
                                         NULL);
    s->m_seconds = qb_metrics_histogram("qb_store_query_seconds",
                                        "PostgreSQL round-trip latency", NULL);
    return s;
}

void qb_store_destroy(qb_store_t *s) {
    if (!s) return;
    if (s->conn && s->in_copy) {
        PQputCopyEnd(s->conn, "handle destroyed");
        PGresult *r;
        while ((r = PQgetResult(s->conn)) != NULL) PQclear(r);
    }
    PQfinish(s->conn);
    for (int i = 0; i < s->nstmts; i++) {
        free(s->stmts[i].name);
        free(s->stmts[i].sql);
    }
    free(s->stmts);
    free(s->copybuf);
    free(s->dsn);
    free(s);
}

int qb_store_connected(const qb_store_t *s) {
    return s && s->conn && PQstatus(s->conn) == CONNECTION_OK;
}

const char *qb_store_last_sqlstate(const qb_store_t *s) { return s ? s->sqlstate : ""; }

int qb_store_last_error_position(const qb_store_t *s) { return s ? s->errpos : 0; }

int qb_store_in_transaction(const qb_store_t *s) { return s && (s->in_txn || s->txn_lost); }

/* ---- statements ---------------------------------------------------------- */

static qb_err_t store_exec_inner(qb_store_t *s, const char *sql, PGresult **out,
                                 char *errstr, size_t errstr_size) {
    qb_err_t err = store_check_idle(s, errstr, errstr_size);
    if (err) return err;
    if ((err = store_ensure(s, errstr, errstr_size))) return err;
    int64_t t0 = store_now_ns();
    return store_result(s, PQexec(s->conn, sql), t0, out, errstr, errstr_size);
}

qb_err_t qb_store_exec(qb_store_t *s, const char *sql, char *errstr, size_t errstr_size) {
    if (!s || !sql)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_exec: NULL argument");
    return store_fail(s, store_exec_inner(s, sql, NULL, errstr, errstr_size));
}

qb_err_t qb_store_ping(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_ping: NULL");
    return store_fail(s, store_exec_inner(s, "SELECT 1", NULL, errstr, errstr_size));
}

qb_err_t qb_store_query(qb_store_t *s, const char *sql, int nparams,
                        const char *const *params, PGresult **out, char *errstr,
                        size_t errstr_size) {
    if (out) *out = NULL;
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_query: NULL");
    if (!sql || nparams < 0 || (nparams > 0 && !params))
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                        "qb_store_query: bad argument"));
    qb_err_t err = store_check_idle(s, errstr, errstr_size);
    if (!err) err = store_ensure(s, errstr, errstr_size);
    if (err) return store_fail(s, err);
    int64_t t0 = store_now_ns();
    PGresult *r = PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return store_fail(s, store_result(s, r, t0, out, errstr, errstr_size));
}

static qb_store_stmt_t *store_find_stmt(qb_store_t *s, const char *name) {
    for (int i = 0; i < s->nstmts; i++)
        if (strcmp(s->stmts[i].name, name) == 0) return &s->stmts[i];
    return NULL;
}

qb_err_t qb_store_prepare(qb_store_t *s, const char *name, const char *sql, int nparams) {
    if (!s || !name || !*name || !sql || nparams < 0) return QB_ERR_INVALID;
    qb_store_stmt_t *st = store_find_stmt(s, name);
    if (st) return strcmp(st->sql, sql) == 0 && st->nparams == nparams ? QB_OK : QB_ERR_INVALID;
    if (s->nstmts == s->capstmts) {
        int cap = s->capstmts ? s->capstmts * 2 : 8;
        qb_store_stmt_t *n = realloc(s->stmts, (size_t)cap * sizeof(*n));
        if (!n) return QB_ERR_NOMEM;
        s->stmts = n;
        s->capstmts = cap;
    }
    st = &s->stmts[s->nstmts];
    st->name = strdup(name);
    st->sql = strdup(sql);
    if (!st->name || !st->sql) {
        free(st->name);
        free(st->sql);
        return QB_ERR_NOMEM;
    }
    st->nparams = nparams;
    st->gen = 0;
    s->nstmts++;
    return QB_OK;
}

static qb_err_t store_exec_prepared_inner(qb_store_t *s, qb_store_stmt_t *st,
                                          const char *const *values, PGresult **out,
                                          char *errstr, size_t errstr_size) {
    for (int attempt = 0;; attempt++) {
        qb_err_t err = store_ensure(s, errstr, errstr_size);
        if (err) return err;
        if (st->gen != s->gen) {
            char e[QB_STORE_MSG];
            int64_t t0 = store_now_ns();
            PGresult *r = PQprepare(s->conn, st->name, st->sql, st->nparams, NULL);
            err = store_result(s, r, t0, NULL, e, sizeof(e));
            if (err)
                return qb_err_set(errstr, errstr_size, err, "prepare %s: %s", st->name, e);
            st->gen = s->gen;
        }
        int64_t t0 = store_now_ns();
        PGresult *r = PQexecPrepared(s->conn, st->name, st->nparams, values, NULL, NULL, 0);
        err = store_result(s, r, t0, out, errstr, errstr_size);
        /* Someone ran DEALLOCATE / DISCARD ALL: the statement was not run, so
         * prepare it again and retry once (only outside a transaction, which
         * the error has aborted). */
        if (err == QB_ERR_DB && strcmp(s->sqlstate, "26000") == 0 && !s->in_txn &&
            attempt == 0) {
            st->gen = 0;
            continue;
        }
        return err;
    }
}

qb_err_t qb_store_exec_prepared(qb_store_t *s, const char *name, int nparams,
                                const char *const *values, PGresult **out, char *errstr,
                                size_t errstr_size) {
    if (out) *out = NULL;
    if (!s)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_exec_prepared: NULL");
    if (!name || nparams < 0 || (nparams > 0 && !values))
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                        "qb_store_exec_prepared: bad argument"));
    qb_store_stmt_t *st = store_find_stmt(s, name);
    if (!st)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                                        "prepared statement %s is not registered", name));
    if (st->nparams != nparams)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                        "prepared statement %s takes %d parameters, not %d",
                                        name, st->nparams, nparams));
    qb_err_t err = store_check_idle(s, errstr, errstr_size);
    if (!err) err = store_exec_prepared_inner(s, st, values, out, errstr, errstr_size);
    return store_fail(s, err);
}

/* ---- transactions -------------------------------------------------------- */

qb_err_t qb_store_begin(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_begin: NULL");
    if (s->txn_lost || s->in_txn)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                        "a transaction is already open%s",
                                        s->txn_lost ? " (and lost: call qb_store_rollback)"
                                                    : ""));
    return store_fail(s, store_exec_inner(s, "BEGIN", NULL, errstr, errstr_size));
}

qb_err_t qb_store_commit(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_commit: NULL");
    if (s->txn_lost) return store_fail(s, store_txn_lost_err(errstr, errstr_size));
    if (!s->in_txn)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                        "commit without an open transaction"));
    PGresult *r = NULL;
    qb_err_t err = store_exec_inner(s, "COMMIT", &r, errstr, errstr_size);
    if (err) return store_fail(s, err);
    /* PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK. */
    int rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_DB,
                                        "transaction was aborted by an earlier error and "
                                        "has been rolled back, not committed"));
    return QB_OK;
}

qb_err_t qb_store_rollback(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_rollback: NULL");
    if (s->in_copy) qb_store_copy_abort(s, NULL, 0);
    if (s->txn_lost || !s->conn) {
        /* No connection: the server rolled back when it died. */
        s->txn_lost = 0;
        s->in_txn = 0;
        return QB_OK;
    }
    if (!s->in_txn && PQtransactionStatus(s->conn) == PQTRANS_IDLE) return QB_OK;
    qb_err_t err = store_exec_inner(s, "ROLLBACK", NULL, errstr, errstr_size);
    if (err == QB_ERR_UNAVAILABLE) {
        /* Lost during ROLLBACK: the transaction is gone either way. */
        s->txn_lost = 0;
        s->in_txn = 0;
        return QB_OK;
    }
    return store_fail(s, err);
}

/* ---- COPY ---------------------------------------------------------------- */

qb_err_t qb_store_copy_begin(qb_store_t *s, const char *copy_sql, char *errstr,
                             size_t errstr_size) {
    if (!s || !copy_sql)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_copy_begin: NULL");
    qb_err_t err = store_check_idle(s, errstr, errstr_size);
    if (!err) err = store_ensure(s, errstr, errstr_size);
    if (err) return store_fail(s, err);
    int64_t t0 = store_now_ns();
    PGresult *r = PQexec(s->conn, copy_sql);
    if (r && PQresultStatus(r) == PGRES_COPY_IN) {
        qb_counter_inc(s->m_queries);
        qb_hist_observe(s->m_seconds, (double)(store_now_ns() - t0) / 1e9);
        PQclear(r);
        s->in_copy = 1;
        s->copylen = 0;
        store_track_txn(s);
        return QB_OK;
    }
    err = store_result(s, r, t0, NULL, errstr, errstr_size);
    if (err == QB_OK)
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                         "qb_store_copy_begin: not a COPY ... FROM STDIN statement");
    return store_fail(s, err);
}

static qb_err_t store_copy_grow(qb_store_t *s, size_t need) {
    if (s->copylen + need <= s->copycap) return QB_OK;
    size_t cap = s->copycap ? s->copycap : QB_STORE_COPY_FLUSH + 4096;
    while (cap < s->copylen + need) cap *= 2;
    char *n = realloc(s->copybuf, cap);
    if (!n) return QB_ERR_NOMEM;
    s->copybuf = n;
    s->copycap = cap;
    return QB_OK;
}

/* Send len bytes of COPY data. On failure the COPY is over. */
static qb_err_t store_copy_send(qb_store_t *s, const void *data, size_t len, char *errstr,
                                size_t errstr_size) {
    const char *p = data;
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        if (PQputCopyData(s->conn, p, chunk) != 1) {
            char why[256];
            store_oneline(why, sizeof(why), PQerrorMessage(s->conn));
            store_drop(s, why);
            return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                              "postgres connection lost during COPY (nothing was stored): %s",
                              why);
        }
        p += chunk;
        len -= (size_t)chunk;
    }
    return QB_OK;
}

/* Send the buffer. On failure the COPY is over. */
static qb_err_t store_copy_flush(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (s->copylen == 0) return QB_OK;
    qb_err_t err = store_copy_send(s, s->copybuf, s->copylen, errstr, errstr_size);
    s->copylen = 0;
    return err;
}

qb_err_t qb_store_copy_row(qb_store_t *s, const char *const *fields, int n, char *errstr,
                           size_t errstr_size) {
    if (!s || n < 0 || (n > 0 && !fields))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_copy_row: bad argument");
    if (!s->in_copy)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                        "qb_store_copy_row without qb_store_copy_begin"));
    for (int i = 0; i < n; i++) {
        const char *f = fields[i];
        size_t len = f ? strlen(f) : 0;
        /* Worst case every byte doubles, plus delimiter or newline. */
        if (store_copy_grow(s, 2 * len + 3) != QB_OK)
            return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_NOMEM,
                                            "COPY buffer: out of memory"));
        char *o = s->copybuf + s->copylen;
        if (!f) {
            *o++ = '\\';
            *o++ = 'N';
        } else {
            for (const char *p = f; *p; p++) {
                switch (*p) {
                case '\\': *o++ = '\\'; *o++ = '\\'; break;
                case '\t': *o++ = '\\'; *o++ = 't'; break;
                case '\n': *o++ = '\\'; *o++ = 'n'; break;
                case '\r': *o++ = '\\'; *o++ = 'r'; break;
                default: *o++ = *p;
                }
            }
        }
        *o++ = i + 1 < n ? '\t' : '\n';
        s->copylen = (size_t)(o - s->copybuf);
    }
    if (n == 0) {
        if (store_copy_grow(s, 1) != QB_OK)
            return store_fail(s, QB_ERR_NOMEM);
        s->copybuf[s->copylen++] = '\n';
    }
    if (s->copylen >= QB_STORE_COPY_FLUSH)
        return store_fail(s, store_copy_flush(s, errstr, errstr_size));
    return QB_OK;
}

qb_err_t qb_store_copy_data(qb_store_t *s, const void *data, size_t len, char *errstr,
                            size_t errstr_size) {
    if (!s || (len && !data))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_copy_data: bad argument");
    if (!s->in_copy)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                        "qb_store_copy_data without qb_store_copy_begin"));
    if (len >= QB_STORE_COPY_FLUSH) { /* large: no copy through the buffer */
        qb_err_t err = store_copy_flush(s, errstr, errstr_size);
        if (err) return store_fail(s, err);
        return store_fail(s, store_copy_send(s, data, len, errstr, errstr_size));
    }
    if (store_copy_grow(s, len) != QB_OK)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_NOMEM,
                                        "COPY buffer: out of memory"));
    memcpy(s->copybuf + s->copylen, data, len);
    s->copylen += len;
    if (s->copylen >= QB_STORE_COPY_FLUSH)
        return store_fail(s, store_copy_flush(s, errstr, errstr_size));
    return QB_OK;
}

/* Finish the COPY with `abort_reason` (NULL = commit the rows). */
static qb_err_t store_copy_finish(qb_store_t *s, const char *abort_reason, int64_t *rows,
                                  char *errstr, size_t errstr_size) {
    qb_err_t err = QB_OK;
    if (!abort_reason) err = store_copy_flush(s, errstr, errstr_size);
    if (err) return err;
    int64_t t0 = store_now_ns();
    s->in_copy = 0;
    s->copylen = 0;
    if (PQputCopyEnd(s->conn, abort_reason) != 1) {
        char why[256];
        store_oneline(why, sizeof(why), PQerrorMessage(s->conn));
        store_drop(s, why);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "postgres connection lost ending COPY: %s", why);
    }
    PGresult *r = PQgetResult(s->conn), *extra;
    while ((extra = PQgetResult(s->conn)) != NULL) PQclear(extra);
    PGresult *ok = NULL;
    err = store_result(s, r, t0, &ok, errstr, errstr_size);
    if (err == QB_OK && rows) *rows = strtoll(PQcmdTuples(ok), NULL, 10);
    PQclear(ok);
    return err;
}

qb_err_t qb_store_copy_end(qb_store_t *s, int64_t *rows, char *errstr, size_t errstr_size) {
    if (rows) *rows = 0;
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_copy_end: NULL");
    if (!s->in_copy)
        return store_fail(s, qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                                        "qb_store_copy_end without qb_store_copy_begin"));
    return store_fail(s, store_copy_finish(s, NULL, rows, errstr, errstr_size));
}

qb_err_t qb_store_copy_abort(qb_store_t *s, char *errstr, size_t errstr_size) {
    if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_store_copy_abort: NULL");
    if (!s->in_copy) return QB_OK;
    char e[QB_STORE_MSG];
    qb_err_t err = store_copy_finish(s, "aborted by the client", NULL, e, sizeof(e));
    /* The server answers an aborted COPY with an error: that is success. */
    if (err == QB_ERR_DB || err == QB_ERR_OK) return QB_OK;
    return store_fail(s, qb_err_set(errstr, errstr_size, err, "%s", e));
}

/* ---- identifiers --------------------------------------------------------- */

qb_err_t qb_store_escape_ident(const char *ident, char *out, size_t out_size) {
    if (!ident || !out) return QB_ERR_INVALID;
    size_t len = strlen(ident);
    if (len == 0 || len > 63) return QB_ERR_INVALID;
    if (out_size < 2 * len + 3) return QB_ERR_RANGE;
    size_t o = 0;
    out[o++] = '"';
    for (const char *p = ident; *p; p++) {
        if (*p == '"') out[o++] = '"';
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
    return QB_OK;
}
