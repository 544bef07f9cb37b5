/* qb_store.h — PostgreSQL access for Quantbus services, over libpq.
 *
 * A qb_store_t is ONE libpq connection plus what it takes to keep using it
 * while PostgreSQL comes and goes: a back-off schedule, a registry of
 * prepared statements, and the state of the current transaction or COPY.
 *
 * Thread rules: a handle is not thread-safe. Use one handle per thread (a
 * service with N worker threads opens N handles); never share one.
 *
 * Connection life cycle
 *   - qb_store_new() only parses the DSN. It never connects, so a service
 *     starts even when PostgreSQL is down. Every operation connects when
 *     there is no connection.
 *   - A failed connection attempt starts exponential back-off with jitter:
 *     100 ms, doubling to 30 s at most, each delay drawn from [d/2, d].
 *     While in back-off every operation fails FAST with QB_ERR_UNAVAILABLE
 *     (no network attempt); the first operation after the delay tries again.
 *     A successful connection resets the back-off.
 *   - A connection found dead while idle (the server closed it, e.g.
 *     pg_terminate_backend or a server restart, noticed before anything is
 *     sent) is replaced TRANSPARENTLY within the same call, outside a
 *     transaction: nothing had been sent, so nothing can be applied twice.
 *   - A connection lost while a statement is in flight makes THAT call fail
 *     with QB_ERR_UNAVAILABLE (the statement may or may not have been
 *     applied; only the caller knows whether repeating it is safe). The next
 *     call reconnects at once (and backs off if that fails).
 *   - Transactions: a connection lost inside a transaction (begin .. commit)
 *     is never replaced silently. The failing call and every later call
 *     return QB_ERR_UNAVAILABLE until the caller calls qb_store_rollback()
 *     (which then returns QB_OK: the server already rolled back), and then
 *     the caller retries the WHOLE transaction. A connection lost during
 *     COMMIT leaves the outcome unknown; effects are idempotent (natural
 *     keys, ON CONFLICT DO NOTHING) so retrying the transaction is safe.
 *   - Each state change (connected, unreachable, lost, reconnected) is logged
 *     once; the password is never logged.
 *   - libpq's connect_timeout defaults to 5 s and TCP keep-alives are on
 *     unless the DSN says otherwise.
 *
 * Errors (qb_err_t, details in errstr):
 *   QB_ERR_UNAVAILABLE  cannot connect, in back-off, or connection lost
 *                       (retriable), also SQLSTATE classes 08 and 57P0x
 *   QB_ERR_CONFLICT     unique violation (SQLSTATE 23505)
 *   QB_ERR_DB           any other SQL error: "<message> (SQLSTATE xxxxx)"
 *                       plus detail/hint/position when the server gives them
 *   QB_ERR_STATE        API misuse: begin inside a transaction, commit
 *                       outside one, an operation during COPY, ...
 *   QB_ERR_INVALID / QB_ERR_NOT_FOUND / QB_ERR_NOMEM as usual.
 * qb_store_last_sqlstate() and qb_store_last_error_position() give the
 * SQLSTATE and statement position of the last server error.
 *
 * Results: a PGresult handed out through `PGresult **out` belongs to the
 * caller, who frees it with PQclear(). On any error *out is set to NULL.
 *
 * Metrics (process-wide): qb_store_queries_total, qb_store_errors_total,
 * qb_store_reconnects_total (successful connections after the handle's
 * first), qb_store_query_seconds (histogram, one observation per round
 * trip). */
#ifndef QB_STORE_H
#define QB_STORE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

typedef struct qb_store_s qb_store_t;

/* Create a handle for `dsn` (libpq key=value or postgresql:// URI). Returns
 * NULL, with the reason in errstr, only when libpq cannot parse the DSN (or
 * memory runs out). Does not connect. Free with qb_store_destroy(). */
qb_store_t *qb_store_new(const char *dsn, char *errstr, size_t errstr_size);

/* A new handle for the DSN of `s` (a second connection, e.g. for another
 * thread; made on first use like any handle's). NULL with errstr set when
 * memory runs out. Free with qb_store_destroy(). */
qb_store_t *qb_store_new_like(const qb_store_t *s, char *errstr, size_t errstr_size);

/* Close the connection (aborting an open COPY; an open transaction is rolled
 * back by the server) and free the handle. NULL is a no-op. */
void qb_store_destroy(qb_store_t *s);

/* 1 when the handle currently holds a live connection (no network I/O). */
int qb_store_connected(const qb_store_t *s);

/* Round trip "SELECT 1". For /readyz. */
qb_err_t qb_store_ping(qb_store_t *s, char *errstr, size_t errstr_size);

/* Run one or more commands (simple query protocol, so `sql` may hold several
 * statements separated by ';'). Results are discarded. An empty query is OK.
 * Never use this with values from outside: use qb_store_query's params. */
qb_err_t qb_store_exec(qb_store_t *s, const char *sql, char *errstr,
                       size_t errstr_size);

/* Run ONE statement with text parameters $1..$n (params[i] NULL = SQL
 * NULL). On success *out (if out is non-NULL) holds the result, owned by the
 * caller (PQclear). */
qb_err_t qb_store_query(qb_store_t *s, const char *sql, int nparams,
                        const char *const *params, PGresult **out,
                        char *errstr, size_t errstr_size);

/* Register a prepared statement under `name` (copied, as is `sql`). Nothing
 * is sent now: the statement is prepared on the server the first time it is
 * used on each connection, so it survives reconnects. Registering the same
 * name again with the same sql and nparams is a no-op; with different ones
 * it is QB_ERR_INVALID. */
qb_err_t qb_store_prepare(qb_store_t *s, const char *name, const char *sql,
                          int nparams);

/* Execute a registered statement (QB_ERR_NOT_FOUND if unknown, QB_ERR_INVALID
 * if nparams differs from the registration). out may be NULL. */
qb_err_t qb_store_exec_prepared(qb_store_t *s, const char *name, int nparams,
                                const char *const *values, PGresult **out,
                                char *errstr, size_t errstr_size);

/* Transactions. See "Transactions" above for what a lost connection means.
 * qb_store_commit on a transaction that an earlier error aborted returns
 * QB_ERR_DB ("transaction was aborted ... rolled back") — PostgreSQL
 * answers such a COMMIT with ROLLBACK, and the caller must not mistake it
 * for success. qb_store_rollback outside a transaction is a no-op. */
qb_err_t qb_store_begin(qb_store_t *s, char *errstr, size_t errstr_size);
qb_err_t qb_store_commit(qb_store_t *s, char *errstr, size_t errstr_size);
qb_err_t qb_store_rollback(qb_store_t *s, char *errstr, size_t errstr_size);
/* 1 inside begin .. commit/rollback (also after a lost connection, until
 * rollback). */
int qb_store_in_transaction(const qb_store_t *s);

/* COPY ... FROM STDIN in text format with the default tab delimiter, e.g.
 * qb_store_copy_begin(s, "COPY md.bars (symbol, ts, close) FROM STDIN").
 * Between begin and end only copy_row / copy_end / copy_abort are allowed.
 * copy_row escapes each field for the text format (\\ tab newline CR; a
 * NULL field is written as \N) and buffers; data goes out in large chunks.
 * Errors in the data (bad number, wrong column count) are reported by
 * copy_end, with the server's CONTEXT (line, column). copy_end returns the
 * number of rows the server stored in *rows (may be NULL). Outside a
 * transaction the COPY is atomic on its own. */
qb_err_t qb_store_copy_begin(qb_store_t *s, const char *copy_sql, char *errstr,
                             size_t errstr_size);
qb_err_t qb_store_copy_row(qb_store_t *s, const char *const *fields, int n,
                           char *errstr, size_t errstr_size);
qb_err_t qb_store_copy_end(qb_store_t *s, int64_t *rows, char *errstr,
                           size_t errstr_size);
/* Raw COPY data, sent as is (no escaping), for COPY ... FROM STDIN
 * (FORMAT binary): the caller writes the format's header, tuples and
 * trailer. Buffered like copy_row; a chunk of 256 KiB or more goes out at
 * once without a copy. */
qb_err_t qb_store_copy_data(qb_store_t *s, const void *data, size_t len, char *errstr,
                            size_t errstr_size);
/* Abandon an open COPY: the server discards every row of it. */
qb_err_t qb_store_copy_abort(qb_store_t *s, char *errstr, size_t errstr_size);

/* Quote an identifier for SQL: `weird"name` -> `"weird""name"`. Needs no
 * connection. out_size must be at least 2*strlen(ident)+3. Returns
 * QB_ERR_INVALID for an empty identifier or one longer than 63 bytes
 * (PostgreSQL would silently truncate it), QB_ERR_RANGE if out is too
 * small. */
qb_err_t qb_store_escape_ident(const char *ident, char *out, size_t out_size);

/* SQLSTATE of the last server error on this handle ("" if none since the
 * last successful operation). */
const char *qb_store_last_sqlstate(const qb_store_t *s);
/* 1-based character position in the statement of the last server error, 0
 * when the server gave none. */
int qb_store_last_error_position(const qb_store_t *s);

#endif
