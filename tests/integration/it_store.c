/* it_store.c — libs/store/qb_store against a real PostgreSQL (QB_PG_DSN).
 *
 * Every test gets its own database (qb_test_db_create). What is asserted:
 *   exec/query/params, NULLs, SQL errors with SQLSTATE and position;
 *   prepared statements (lazy, registry rules, DEALLOCATE ALL survival);
 *   transactions (commit, rollback, COMMIT of an aborted transaction);
 *   COPY of 100k rows of awkward text read back byte for byte, bad data,
 *   abort; unique violation -> QB_ERR_CONFLICT;
 *   reconnect: backend killed while idle -> the next call reconnects
 *   TRANSPARENTLY; killed mid-statement -> that call fails UNAVAILABLE, the
 *   next succeeds; killed inside a transaction -> UNAVAILABLE until
 *   rollback, then the retried transaction commits; prepared statements work
 *   after every reconnect;
 *   outage through a TCP proxy: fast failures, few connection attempts
 *   (back-off), recovery by itself;
 *   unreachable server: fast UNAVAILABLE, one log line, no password in logs;
 *   identifier quoting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "qb_test.h"
#include "qb_test_assert.h"
#include "store/qb_store.h"

typedef struct fx_s {
    char *dsn;
    qb_store_t *s;
} fx_t;

/* errstr for the calls under test; OK/ERR (qb_test_assert.h) clear and print it. */
static char E[1024];

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    f->dsn = qb_test_db_create();
    f->s = qb_store_new(f->dsn, E, sizeof(E));
    if (!f->s) return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    qb_store_destroy(f->s);
    qb_test_db_drop(f->dsn);
    free(f);
    return 0;
}

/* One value from a one-row query, copied into a static buffer. */
static const char *scalar(qb_store_t *s, const char *sql) {
    static char v[256];
    PGresult *r = NULL;
    OK(qb_store_query(s, sql, 0, NULL, &r, E, sizeof(E)));
    assert_int_equal(PQntuples(r), 1);
    snprintf(v, sizeof(v), "%s", PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static long scalar_long(qb_store_t *s, const char *sql) { return atol(scalar(s, sql)); }

static PGconn *admin(const char *dsn) {
    PGconn *c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* Terminate backend `pid`, waiting until it is gone. */
static void kill_backend(const char *dsn, long pid) {
    PGconn *c = admin(dsn);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld, 5000)", pid);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(c);
}

static int count_substr(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static uint64_t counter(const char *name) {
    return qb_counter_get(qb_metrics_counter(name, "", NULL));
}

/* ---- basic statements ----------------------------------------------------- */

static void test_exec_query(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    assert_false(qb_store_connected(s)); /* new() does not connect */
    uint64_t q0 = counter("qb_store_queries_total"), e0 = counter("qb_store_errors_total");
    OK(qb_store_ping(s, E, sizeof(E)));
    assert_true(qb_store_connected(s));
    OK(qb_store_exec(s, "CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, note text)",
                     E, sizeof(E)));
    const char *p1[3] = {"1", "alice", NULL};
    PGresult *r = NULL;
    OK(qb_store_query(s, "INSERT INTO t VALUES ($1, $2, $3) RETURNING id * 10", 3, p1, &r, E,
                      sizeof(E)));
    assert_string_equal(PQgetvalue(r, 0, 0), "10");
    PQclear(r);
    /* several statements in one exec */
    OK(qb_store_exec(s, "INSERT INTO t VALUES (2, 'b', NULL); INSERT INTO t VALUES (3, 'c', 'x')",
                     E, sizeof(E)));
    OK(qb_store_exec(s, "", E, sizeof(E)));
    const char *p2[1] = {"1"};
    OK(qb_store_query(s, "SELECT name, note FROM t WHERE id = $1", 1, p2, &r, E, sizeof(E)));
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "alice");
    assert_true(PQgetisnull(r, 0, 1));
    PQclear(r);
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM t"), 3);
    /* the session is UTC */
    assert_string_equal(scalar(s, "SHOW TimeZone"), "UTC");

    /* query is one statement only */
    ERR(QB_ERR_DB, qb_store_query(s, "SELECT 1; SELECT 2", 0, NULL, &r, E, sizeof(E)));
    assert_null(r);
    /* SQL error: SQLSTATE in errstr and accessor; handle still usable */
    ERR(QB_ERR_DB, qb_store_query(s, "SELECT * FROM nope", 0, NULL, &r, E, sizeof(E)));
    assert_non_null(strstr(E, "42P01"));
    assert_non_null(strstr(E, "nope"));
    assert_string_equal(qb_store_last_sqlstate(s), "42P01");
    ERR(QB_ERR_DB, qb_store_exec(s, "SELECT 1; SELEC 2", E, sizeof(E)));
    assert_string_equal(qb_store_last_sqlstate(s), "42601");
    assert_int_equal(qb_store_last_error_position(s), 11);
    OK(qb_store_ping(s, E, sizeof(E)));
    assert_string_equal(qb_store_last_sqlstate(s), "");
    /* NOT NULL violation is a DB error, not a conflict */
    const char *p3[3] = {"9", NULL, NULL};
    ERR(QB_ERR_DB, qb_store_query(s, "INSERT INTO t VALUES ($1, $2, $3)", 3, p3, NULL, E,
                                  sizeof(E)));
    assert_string_equal(qb_store_last_sqlstate(s), "23502");
    /* bad arguments */
    ERR(QB_ERR_INVALID, qb_store_query(s, "SELECT $1", 1, NULL, NULL, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_store_exec(NULL, "SELECT 1", E, sizeof(E)));

    assert_true(counter("qb_store_queries_total") >= q0 + 10);
    assert_true(counter("qb_store_errors_total") >= e0 + 5);
    char *m = qb_metrics_render();
    assert_non_null(strstr(m, "qb_store_query_seconds_bucket"));
    free(m);
}

static void test_prepared(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    /* registered before the table exists and before any connection: lazy */
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO p VALUES ($1, $2)", 2), QB_OK);
    assert_int_equal(qb_store_prepare(s, "get", "SELECT v FROM p WHERE id = $1", 1), QB_OK);
    assert_int_equal(qb_store_prepare(s, "bad", "SELEC nonsense", 0), QB_OK);
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO p VALUES ($1, $2)", 2), QB_OK);
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO p VALUES ($2, $1)", 2),
                     QB_ERR_INVALID);
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO p VALUES ($1, $2)", 3),
                     QB_ERR_INVALID);
    OK(qb_store_exec(s, "CREATE TABLE p (id int PRIMARY KEY, v text)", E, sizeof(E)));
    char id[16], v[32];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "%d", i);
        snprintf(v, sizeof(v), "value-%d", i * i);
        const char *vals[2] = {id, v};
        OK(qb_store_exec_prepared(s, "ins", 2, vals, NULL, E, sizeof(E)));
    }
    const char *k[1] = {"7"};
    PGresult *r = NULL;
    OK(qb_store_exec_prepared(s, "get", 1, k, &r, E, sizeof(E)));
    assert_string_equal(PQgetvalue(r, 0, 0), "value-49");
    PQclear(r);
    ERR(QB_ERR_NOT_FOUND, qb_store_exec_prepared(s, "nope", 0, NULL, NULL, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_store_exec_prepared(s, "get", 2, k, NULL, E, sizeof(E)));
    ERR(QB_ERR_DB, qb_store_exec_prepared(s, "bad", 0, NULL, &r, E, sizeof(E)));
    assert_null(r);
    assert_non_null(strstr(E, "prepare bad"));
    assert_non_null(strstr(E, "42601"));
    /* someone deallocates everything: re-prepared on the fly */
    OK(qb_store_exec(s, "DEALLOCATE ALL", E, sizeof(E)));
    OK(qb_store_exec_prepared(s, "get", 1, k, &r, E, sizeof(E)));
    assert_string_equal(PQgetvalue(r, 0, 0), "value-49");
    PQclear(r);
    /* unique violation through a prepared statement */
    const char *dup[2] = {"7", "again"};
    ERR(QB_ERR_CONFLICT, qb_store_exec_prepared(s, "ins", 2, dup, NULL, E, sizeof(E)));
}

static void test_transactions(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE x (id int PRIMARY KEY)", E, sizeof(E)));
    ERR(QB_ERR_STATE, qb_store_commit(s, E, sizeof(E)));
    OK(qb_store_rollback(s, E, sizeof(E))); /* no-op outside a transaction */

    OK(qb_store_begin(s, E, sizeof(E)));
    assert_true(qb_store_in_transaction(s));
    ERR(QB_ERR_STATE, qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_exec(s, "INSERT INTO x VALUES (1)", E, sizeof(E)));
    OK(qb_store_rollback(s, E, sizeof(E)));
    assert_false(qb_store_in_transaction(s));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM x"), 0);

    OK(qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_exec(s, "INSERT INTO x VALUES (1)", E, sizeof(E)));
    OK(qb_store_exec(s, "INSERT INTO x VALUES (2)", E, sizeof(E)));
    OK(qb_store_commit(s, E, sizeof(E)));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM x"), 2);

    /* an error aborts the transaction; COMMIT must not look like success */
    OK(qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_exec(s, "INSERT INTO x VALUES (3)", E, sizeof(E)));
    ERR(QB_ERR_CONFLICT, qb_store_exec(s, "INSERT INTO x VALUES (1)", E, sizeof(E)));
    ERR(QB_ERR_DB, qb_store_exec(s, "INSERT INTO x VALUES (4)", E, sizeof(E)));
    assert_string_equal(qb_store_last_sqlstate(s), "25P02");
    ERR(QB_ERR_DB, qb_store_commit(s, E, sizeof(E)));
    assert_non_null(strstr(E, "rolled back"));
    assert_false(qb_store_in_transaction(s));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM x"), 2);

    /* a raw BEGIN is tracked too */
    OK(qb_store_exec(s, "BEGIN; INSERT INTO x VALUES (5)", E, sizeof(E)));
    assert_true(qb_store_in_transaction(s));
    OK(qb_store_commit(s, E, sizeof(E)));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM x"), 3);
}

/* ---- COPY ------------------------------------------------------------------ */

static const char *const awkward[] = {
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",            /* the literal two characters, not NULL */
    "\\",
    "\\\\t\\n",
    "",               /* empty string, not NULL */
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82",
    "\"double\" 'single' ,comma; semi|pipe",
    "trailing backslash\\",
    "mix\t\n\r\\ end\n",
    "\x01\x02\x1f control",
    " leading and trailing spaces ",
};
#define N_AWK ((int)(sizeof(awkward) / sizeof(awkward[0])))
#define COPY_ROWS 100000

static void awk_value(int i, int col, char *buf, size_t cap, int *is_null) {
    *is_null = col == 1 && i % 7 == 3;
    if (*is_null) {
        buf[0] = '\0';
        return;
    }
    if (col == 0)
        snprintf(buf, cap, "%s#%d#%s", awkward[i % N_AWK], i, awkward[(i / N_AWK) % N_AWK]);
    else
        snprintf(buf, cap, "%s", awkward[(i * 7 + 3) % N_AWK]);
}

static void test_copy_awkward(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE c (id int PRIMARY KEY, a text, b text)", E, sizeof(E)));
    OK(qb_store_copy_begin(s, "COPY c (id, a, b) FROM STDIN", E, sizeof(E)));
    /* nothing else while a COPY is open */
    ERR(QB_ERR_STATE, qb_store_exec(s, "SELECT 1", E, sizeof(E)));
    ERR(QB_ERR_STATE, qb_store_begin(s, E, sizeof(E)));
    char id[16], a[256], b[256];
    int na, nb, nulls = 0;
    for (int i = 0; i < COPY_ROWS; i++) {
        snprintf(id, sizeof(id), "%d", i);
        awk_value(i, 0, a, sizeof(a), &na);
        awk_value(i, 1, b, sizeof(b), &nb);
        nulls += nb;
        const char *row[3] = {id, na ? NULL : a, nb ? NULL : b};
        OK(qb_store_copy_row(s, row, 3, E, sizeof(E)));
    }
    int64_t rows = -1;
    OK(qb_store_copy_end(s, &rows, E, sizeof(E)));
    assert_int_equal(rows, COPY_ROWS);

    PGresult *r = NULL;
    OK(qb_store_query(s, "SELECT id, a, b FROM c ORDER BY id", 0, NULL, &r, E, sizeof(E)));
    assert_int_equal(PQntuples(r), COPY_ROWS);
    int got_nulls = 0;
    for (int i = 0; i < COPY_ROWS; i++) {
        awk_value(i, 0, a, sizeof(a), &na);
        awk_value(i, 1, b, sizeof(b), &nb);
        assert_int_equal(atoi(PQgetvalue(r, i, 0)), i);
        assert_false(PQgetisnull(r, i, 1));
        if (strcmp(PQgetvalue(r, i, 1), a) != 0)
            fail_msg("row %d column a differs: got [%s] want [%s]", i, PQgetvalue(r, i, 1), a);
        assert_int_equal(PQgetisnull(r, i, 2), nb);
        got_nulls += PQgetisnull(r, i, 2);
        if (!nb && strcmp(PQgetvalue(r, i, 2), b) != 0)
            fail_msg("row %d column b differs: got [%s] want [%s]", i, PQgetvalue(r, i, 2), b);
    }
    PQclear(r);
    assert_int_equal(got_nulls, nulls);
    /* the literal \N and the empty string stayed strings */
    assert_true(scalar_long(s, "SELECT count(*) FROM c WHERE b = '\\N'") > 0);
    assert_true(scalar_long(s, "SELECT count(*) FROM c WHERE b = ''") > 0);
    /* counted in characters: UTF-8 arrived as UTF-8 */
    assert_string_equal(scalar(s, "SELECT length(b) FROM c WHERE b LIKE 'caf%' LIMIT 1"), "10");

    /* bad data: reported at copy_end with the server's context; nothing stored */
    OK(qb_store_exec(s, "CREATE TABLE n (v int)", E, sizeof(E)));
    OK(qb_store_copy_begin(s, "COPY n (v) FROM STDIN", E, sizeof(E)));
    const char *good[1] = {"1"}, *bad[1] = {"not a number"};
    OK(qb_store_copy_row(s, good, 1, E, sizeof(E)));
    OK(qb_store_copy_row(s, bad, 1, E, sizeof(E)));
    ERR(QB_ERR_DB, qb_store_copy_end(s, &rows, E, sizeof(E)));
    assert_non_null(strstr(E, "22P02"));
    assert_non_null(strstr(E, "line 2"));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM n"), 0);

    /* abort: nothing stored, handle usable */
    OK(qb_store_copy_begin(s, "COPY n (v) FROM STDIN", E, sizeof(E)));
    OK(qb_store_copy_row(s, good, 1, E, sizeof(E)));
    OK(qb_store_copy_abort(s, E, sizeof(E)));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM n"), 0);

    /* inside a transaction, rolled back with it */
    OK(qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_copy_begin(s, "COPY n (v) FROM STDIN", E, sizeof(E)));
    OK(qb_store_copy_row(s, good, 1, E, sizeof(E)));
    OK(qb_store_copy_end(s, &rows, E, sizeof(E)));
    assert_int_equal(rows, 1);
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM n"), 1);
    OK(qb_store_rollback(s, E, sizeof(E)));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM n"), 0);

    /* misuse */
    ERR(QB_ERR_STATE, qb_store_copy_row(s, good, 1, E, sizeof(E)));
    ERR(QB_ERR_STATE, qb_store_copy_end(s, &rows, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_store_copy_begin(s, "SELECT 1", E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_store_exec(s, "COPY n (v) FROM STDIN", E, sizeof(E)));
    OK(qb_store_ping(s, E, sizeof(E)));
}

static void test_unique_violation(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE u (k text PRIMARY KEY)", E, sizeof(E)));
    const char *p[1] = {"order-1"};
    OK(qb_store_query(s, "INSERT INTO u VALUES ($1)", 1, p, NULL, E, sizeof(E)));
    ERR(QB_ERR_CONFLICT, qb_store_query(s, "INSERT INTO u VALUES ($1)", 1, p, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "23505"));
    assert_non_null(strstr(E, "order-1")); /* the detail names the key */
    assert_string_equal(qb_store_last_sqlstate(s), "23505");
    /* the idempotent form the architecture asks for */
    PGresult *r = NULL;
    OK(qb_store_query(s, "INSERT INTO u VALUES ($1) ON CONFLICT DO NOTHING", 1, p, &r, E,
                      sizeof(E)));
    assert_string_equal(PQcmdTuples(r), "0");
    PQclear(r);
}

/* ---- reconnects ------------------------------------------------------------ */

static void test_reconnect_idle_kill(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE k (id int PRIMARY KEY)", E, sizeof(E)));
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO k VALUES ($1)", 1), QB_OK);
    const char *one[1] = {"1"}, *two[1] = {"2"};
    OK(qb_store_exec_prepared(s, "ins", 1, one, NULL, E, sizeof(E)));
    long pid = scalar_long(s, "SELECT pg_backend_pid()");
    uint64_t rc0 = counter("qb_store_reconnects_total");

    kill_backend(f->dsn, pid);
    /* pg_terminate_backend(pid, timeout) returns when the backend left the
     * process array, a moment before its socket is closed: let the close
     * arrive, as it has long before the next call in real life. */
    usleep(50000);

    /* Documented behaviour: a connection found dead while idle is replaced
     * transparently: the call succeeds, on a new backend, and the prepared
     * statement is prepared again there. */
    OK(qb_store_exec_prepared(s, "ins", 1, two, NULL, E, sizeof(E)));
    assert_int_equal(counter("qb_store_reconnects_total"), rc0 + 1);
    long pid2 = scalar_long(s, "SELECT pg_backend_pid()");
    assert_true(pid2 != pid);
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM k"), 2);

    /* and again, the next call being a plain query */
    kill_backend(f->dsn, pid2);
    usleep(50000);
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM k"), 2);
    const char *three[1] = {"3"};
    OK(qb_store_exec_prepared(s, "ins", 1, three, NULL, E, sizeof(E)));
    assert_int_equal(counter("qb_store_reconnects_total"), rc0 + 2);
}

typedef struct killer_s {
    const char *dsn;
    long pid;
    int killed;
} killer_t;

static void *killer_main(void *arg) {
    killer_t *k = arg;
    PGconn *c = PQconnectdb(k->dsn);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
             "WHERE pid = %ld AND state = 'active' AND query LIKE '%%pg_sleep%%'", k->pid);
    for (int i = 0; i < 200 && !k->killed; i++) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) k->killed = 1;
        PQclear(r);
        if (!k->killed) usleep(20000);
    }
    PQfinish(c);
    return NULL;
}

static void test_reconnect_inflight_kill(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE k (id int PRIMARY KEY)", E, sizeof(E)));
    assert_int_equal(qb_store_prepare(s, "cnt", "SELECT count(*) FROM k", 0), QB_OK);
    OK(qb_store_exec_prepared(s, "cnt", 0, NULL, NULL, E, sizeof(E)));
    killer_t k = {.dsn = f->dsn, .pid = scalar_long(s, "SELECT pg_backend_pid()")};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, killer_main, &k), 0);
    int64_t t0 = qb_test_now_ms();
    /* Documented behaviour: a statement in flight when the connection dies
     * fails with UNAVAILABLE (it may or may not have been applied). */
    ERR(QB_ERR_UNAVAILABLE, qb_store_exec(s, "SELECT pg_sleep(20)", E, sizeof(E)));
    int64_t took = qb_test_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(k.killed);
    assert_true(took < 10000);
    assert_non_null(strstr(E, "in flight"));
    assert_false(qb_store_connected(s));
    /* the next call reconnects at once; prepared statements work again */
    PGresult *r = NULL;
    OK(qb_store_exec_prepared(s, "cnt", 0, NULL, &r, E, sizeof(E)));
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
}

static void test_reconnect_in_transaction(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    OK(qb_store_exec(s, "CREATE TABLE k (id int PRIMARY KEY)", E, sizeof(E)));
    assert_int_equal(qb_store_prepare(s, "ins", "INSERT INTO k VALUES ($1)", 1), QB_OK);
    const char *one[1] = {"1"}, *two[1] = {"2"};

    OK(qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_exec_prepared(s, "ins", 1, one, NULL, E, sizeof(E)));
    kill_backend(f->dsn, scalar_long(s, "SELECT pg_backend_pid()"));
    /* never silently continued on a new connection outside the transaction */
    ERR(QB_ERR_UNAVAILABLE, qb_store_exec_prepared(s, "ins", 1, two, NULL, E, sizeof(E)));
    assert_non_null(strstr(E, "transaction"));
    assert_true(qb_store_in_transaction(s));
    ERR(QB_ERR_UNAVAILABLE, qb_store_exec(s, "SELECT 1", E, sizeof(E)));
    ERR(QB_ERR_UNAVAILABLE, qb_store_commit(s, E, sizeof(E)));
    ERR(QB_ERR_STATE, qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_rollback(s, E, sizeof(E)));
    assert_false(qb_store_in_transaction(s));
    /* the server rolled the first insert back */
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM k"), 0);
    /* retry the whole transaction */
    OK(qb_store_begin(s, E, sizeof(E)));
    OK(qb_store_exec_prepared(s, "ins", 1, one, NULL, E, sizeof(E)));
    OK(qb_store_exec_prepared(s, "ins", 1, two, NULL, E, sizeof(E)));
    OK(qb_store_commit(s, E, sizeof(E)));
    assert_int_equal(scalar_long(s, "SELECT count(*) FROM k"), 2);
}

/* ---- a TCP proxy to take PostgreSQL "down" and bring it back -------------- */

#define PX_MAX 32
typedef struct proxy_s {
    int lfd, port, target_port;
    volatile int mode;     /* 0 forward, 1 accept and close at once */
    volatile int drop_all; /* close every forwarded connection */
    volatile int stop;
    volatile int accepts;
    int pairs[PX_MAX][2];
    int npairs;
    pthread_t th;
} proxy_t;

static void px_close_pair(proxy_t *p, int i) {
    close(p->pairs[i][0]);
    close(p->pairs[i][1]);
    p->pairs[i][0] = p->pairs[--p->npairs][0];
    p->pairs[i][1] = p->pairs[p->npairs][1];
}

static void *px_main(void *arg) {
    proxy_t *p = arg;
    char buf[65536];
    while (!p->stop) {
        if (p->drop_all) {
            while (p->npairs) px_close_pair(p, 0);
            p->drop_all = 0;
        }
        struct pollfd fds[1 + 2 * PX_MAX];
        int nf = 0;
        fds[nf++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < p->npairs; i++) {
            fds[nf++] = (struct pollfd){.fd = p->pairs[i][0], .events = POLLIN};
            fds[nf++] = (struct pollfd){.fd = p->pairs[i][1], .events = POLLIN};
        }
        if (poll(fds, (nfds_t)nf, 20) <= 0) continue;
        if (fds[0].revents & POLLIN) {
            int cfd = accept(p->lfd, NULL, NULL);
            if (cfd >= 0) {
                p->accepts++;
                if (p->mode == 1 || p->npairs == PX_MAX) {
                    close(cfd);
                } else {
                    int tfd = socket(AF_INET, SOCK_STREAM, 0);
                    struct sockaddr_in a = {.sin_family = AF_INET,
                                            .sin_port = htons((uint16_t)p->target_port),
                                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                    if (connect(tfd, (struct sockaddr *)&a, sizeof(a)) == 0) {
                        p->pairs[p->npairs][0] = cfd;
                        p->pairs[p->npairs][1] = tfd;
                        p->npairs++;
                    } else {
                        close(cfd);
                        close(tfd);
                    }
                }
            }
            continue; /* the pair list changed: poll again */
        }
        for (int i = p->npairs - 1; i >= 0; i--) {
            for (int d = 0; d < 2; d++) {
                if (!(fds[1 + 2 * i + d].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                ssize_t n = read(p->pairs[i][d], buf, sizeof(buf));
                ssize_t w = 0;
                while (n > 0 && w < n) {
                    ssize_t k = write(p->pairs[i][1 - d], buf + w, (size_t)(n - w));
                    if (k <= 0) break;
                    w += k;
                }
                if (n <= 0 || w < n) {
                    px_close_pair(p, i);
                    break;
                }
            }
        }
    }
    while (p->npairs) px_close_pair(p, 0);
    return NULL;
}

static void proxy_start(proxy_t *p, int target_port) {
    memset(p, 0, sizeof(*p));
    p->target_port = target_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(p->lfd, 64), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &l), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->th, NULL, px_main, p), 0);
}

static void proxy_stop(proxy_t *p) {
    p->stop = 1;
    pthread_join(p->th, NULL);
    close(p->lfd);
}

static int dsn_port(const char *dsn) {
    PQconninfoOption *o = PQconninfoParse(dsn, NULL), *it;
    int port = 5432;
    for (it = o; it && it->keyword; it++)
        if (strcmp(it->keyword, "port") == 0 && it->val) port = atoi(it->val);
    PQconninfoFree(o);
    return port;
}

static void test_outage_backoff_recovery(void **state) {
    fx_t *f = *state;
    proxy_t px;
    proxy_start(&px, dsn_port(f->dsn));
    char dsn[1024];
    snprintf(dsn, sizeof(dsn), "%s host=127.0.0.1 port=%d", f->dsn, px.port);
    qb_store_t *s = qb_store_new(dsn, E, sizeof(E));
    assert_non_null(s);
    assert_int_equal(qb_store_prepare(s, "one", "SELECT 1", 0), QB_OK);
    OK(qb_store_exec_prepared(s, "one", 0, NULL, NULL, E, sizeof(E)));
    uint64_t rc0 = counter("qb_store_reconnects_total");

    /* down: existing connections cut, new ones closed at once */
    px.mode = 1;
    px.drop_all = 1;
    usleep(200000);
    int a0 = px.accepts, calls = 0;
    int64_t t_end = qb_test_now_ms() + 1500;
    while (qb_test_now_ms() < t_end) {
        int64_t t0 = qb_test_now_ms();
        ERR(QB_ERR_UNAVAILABLE, qb_store_exec_prepared(s, "one", 0, NULL, NULL, E, sizeof(E)));
        if (qb_test_now_ms() - t0 > 1000) fail_msg("a call took %lld ms", (long long)(qb_test_now_ms() - t0));
        calls++;
        usleep(5000);
    }
    int attempts = px.accepts - a0;
    /* ~250 calls in 1.5 s, but back-off (100, 200, 400, 800 ms, jittered)
     * allows only a handful of connection attempts. */
    assert_true(calls > 100);
    if (attempts < 2 || attempts > 8) fail_msg("%d connection attempts in 1.5 s", attempts);
    assert_non_null(strstr(E, "unavailable"));

    /* back up: the handle recovers by itself within the back-off delay */
    px.mode = 0;
    int64_t t_up = qb_test_now_ms();
    qb_err_t err;
    while ((err = qb_store_exec_prepared(s, "one", 0, NULL, NULL, E, sizeof(E))) != QB_OK &&
           qb_test_now_ms() - t_up < 5000)
        usleep(20000);
    if (err != QB_OK) fail_msg("no recovery: %s", E);
    assert_true(qb_test_now_ms() - t_up < 2500);
    assert_int_equal(counter("qb_store_reconnects_total"), rc0 + 1);
    qb_store_destroy(s);
    proxy_stop(&px);
}

static void test_unreachable(void **state) {
    (void)state;
    char errs[256];
    /* only an unparsable DSN fails creation */
    assert_null(qb_store_new("host=x port", errs, sizeof(errs)));
    assert_true(strlen(errs) > 0);
    assert_null(qb_store_new("postgresql://[::1", errs, sizeof(errs)));
    assert_null(qb_store_new("nonsense_key=1", errs, sizeof(errs)));
    qb_store_destroy(NULL);

    int port = qb_test_free_port();
    char dsn[256];
    snprintf(dsn, sizeof(dsn),
             "host=127.0.0.1 port=%d user=postgres password=hunter2secret dbname=x", port);
    int lvl = qb_log_level_current;
    qb_log_set_level(QB_LOG_INFO);
    qb_test_capture_stderr_start();
    qb_store_t *s = qb_store_new(dsn, E, sizeof(E));
    assert_non_null(s);
    int64_t t0 = qb_test_now_ms();
    ERR(QB_ERR_UNAVAILABLE, qb_store_ping(s, E, sizeof(E)));
    assert_true(qb_test_now_ms() - t0 < 1000);
    assert_null(strstr(E, "hunter2secret"));
    /* in back-off: fails without trying */
    t0 = qb_test_now_ms();
    ERR(QB_ERR_UNAVAILABLE, qb_store_exec(s, "SELECT 1", E, sizeof(E)));
    assert_true(qb_test_now_ms() - t0 < 50);
    assert_non_null(strstr(E, "back-off"));
    assert_int_equal(qb_store_prepare(s, "p", "SELECT 1", 0), QB_OK);
    for (int i = 0; i < 40; i++) {
        t0 = qb_test_now_ms();
        ERR(QB_ERR_UNAVAILABLE, qb_store_exec_prepared(s, "p", 0, NULL, NULL, E, sizeof(E)));
        ERR(QB_ERR_UNAVAILABLE, qb_store_query(s, "SELECT 1", 0, NULL, NULL, E, sizeof(E)));
        ERR(QB_ERR_UNAVAILABLE, qb_store_begin(s, E, sizeof(E)));
        ERR(QB_ERR_UNAVAILABLE, qb_store_copy_begin(s, "COPY x FROM STDIN", E, sizeof(E)));
        assert_true(qb_test_now_ms() - t0 < 1000);
        usleep(20000);
    }
    assert_false(qb_store_connected(s));
    OK(qb_store_rollback(s, E, sizeof(E)));
    qb_store_destroy(s);
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level((qb_log_level_t)lvl);
    assert_null(strstr(log, "hunter2secret"));
    /* the state change is logged once, not once per attempt */
    assert_int_equal(count_substr(log, "postgres unreachable"), 1);
}

static void test_escape_ident(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    char q[160], sql[512];
    assert_int_equal(qb_store_escape_ident("we\"ird name;DROP", q, sizeof(q)), QB_OK);
    assert_string_equal(q, "\"we\"\"ird name;DROP\"");
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (v int); INSERT INTO %s VALUES (42)", q, q);
    OK(qb_store_exec(s, sql, E, sizeof(E)));
    assert_string_equal(scalar(s, "SELECT v FROM \"we\"\"ird name;DROP\""), "42");
    char small[4];
    assert_int_equal(qb_store_escape_ident("abc", small, sizeof(small)), QB_ERR_RANGE);
    assert_int_equal(qb_store_escape_ident("", q, sizeof(q)), QB_ERR_INVALID);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_int_equal(qb_store_escape_ident(longname, q, sizeof(q)), QB_ERR_INVALID);
    longname[63] = '\0';
    assert_int_equal(qb_store_escape_ident(longname, q, sizeof(q)), QB_OK);
}

int main(void) {
    const char *lv = getenv("QB_LOG_LEVEL");
    int l = lv ? qb_log_level_parse(lv) : -1;
    qb_log_init("it_store", l >= 0 ? (qb_log_level_t)l : QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_query, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prepared, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_transactions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_copy_awkward, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unique_violation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_idle_kill, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_inflight_kill, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_in_transaction, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_outage_backoff_recovery, fx_setup, fx_teardown),
        cmocka_unit_test_teardown(test_unreachable, qb_test_capture_stderr_teardown),
        cmocka_unit_test_setup_teardown(test_escape_ident, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
