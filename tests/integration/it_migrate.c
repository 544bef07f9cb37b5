/* it_migrate.c — libs/store/qb_migrate against a real PostgreSQL.
 *
 * Every test gets its own database and its own temp directory of
 * migrations. What is asserted:
 *   - the repository's sql/ applies on a fresh database, creates the seven
 *     service schemas with their comments, and applying again applies 0 and
 *     leaves the catalog (information_schema schemata, tables, columns)
 *     identical;
 *   - a failing file (syntax error, and a runtime error after statements that
 *     did run) rolls back whole: its tables do not exist, schema_migrations
 *     holds only the earlier versions, the error names the file, the line and
 *     the server's message; a file that COMMITs itself is refused;
 *   - an edited applied file is detected before anything is applied;
 *   - gaps, duplicates, bad names, no start at 1, empty or missing directory
 *     are refused before the database is touched;
 *   - status lists pending / applied / changed / missing;
 *   - four processes migrating one fresh database at once all succeed and
 *     every version is applied exactly once. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/qb_log.h"
#include "qb_test.h"
#include "qb_test_assert.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

typedef struct fx_s {
    char *dsn;
    qb_store_t *s;
    char dir[64];
} fx_t;

/* errstr for the calls under test; OK/ERR (qb_test_assert.h) clear and print it. */
static char E[2048];

static int fx_setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    f->dsn = qb_test_db_create();
    f->s = qb_store_new(f->dsn, E, sizeof(E));
    snprintf(f->dir, sizeof(f->dir), "/tmp/qb-it-migrate-XXXXXX");
    if (!f->s || !mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    if (!d) return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int fx_teardown(void **state) {
    fx_t *f = *state;
    qb_store_destroy(f->s);
    qb_test_db_drop(f->dsn);
    rm_dir(f->dir);
    free(f);
    return 0;
}

#define HAS(hay, needle)                                                       \
    do {                                                                       \
        if (!strstr((hay), (needle)))                                          \
            fail_msg("expected \"%s\" in: %s", (needle), (hay));               \
    } while (0)

static void put(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void del(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(unlink(p), 0);
}

/* One text value from a query (malloc'd; "<NULL>" for NULL). */
static char *scalar(qb_store_t *s, const char *sql) {
    PGresult *r = NULL;
    OK(qb_store_query(s, sql, 0, NULL, &r, E, sizeof(E)));
    assert_int_equal(PQntuples(r), 1);
    char *v = strdup(PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void assert_scalar(qb_store_t *s, const char *sql, const char *want) {
    char *v = scalar(s, sql);
    if (strcmp(v, want) != 0) fail_msg("%s -> [%s], want [%s]", sql, v, want);
    free(v);
}

static const char *versions_sql =
    "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') "
    "FROM public.schema_migrations";

static const char *catalog_sql =
    "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
    " SELECT 'schema ' || s.schema_name || ' ' ||"
    "        coalesce(obj_description(to_regnamespace(quote_ident(s.schema_name)),"
    "                                 'pg_namespace'), '') AS x"
    "   FROM information_schema.schemata s"
    "  WHERE s.schema_name NOT LIKE 'pg\\_%' AND s.schema_name <> 'information_schema'"
    " UNION ALL"
    " SELECT 'table ' || table_schema || '.' || table_name || ' ' || table_type"
    "   FROM information_schema.tables"
    "  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    " UNION ALL"
    " SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' ||"
    "        data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') ||"
    "        ' #' || ordinal_position"
    "   FROM information_schema.columns"
    "  WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    " UNION ALL"
    " SELECT 'index ' || indexdef FROM pg_indexes"
    "  WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    ") c";

static const char *repo_sql_dir(char *buf, size_t cap) {
    const char *root = getenv("QB_ROOT");
    snprintf(buf, cap, "%s/sql", root && *root ? root : ".");
    return buf;
}

static int count_sql_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".sql") == 0) n++;
    }
    closedir(d);
    return n;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_repo_sql_twice(void **state) {
    fx_t *f = *state;
    char dir[512];
    repo_sql_dir(dir, sizeof(dir));
    int nfiles = count_sql_files(dir), applied = -1;
    assert_true(nfiles >= 1);

    /* status on a fresh database: all pending, and nothing created */
    qb_migration_info_t *st = NULL;
    int n = 0;
    OK(qb_migrate_status(f->s, dir, &st, &n, E, sizeof(E)));
    assert_int_equal(n, nfiles);
    for (int i = 0; i < n; i++) assert_int_equal(st[i].state, QB_MIGRATION_PENDING);
    free(st);
    assert_scalar(f->s, "SELECT to_regclass('public.schema_migrations') IS NULL", "t");

    OK(qb_migrate_apply(f->s, dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, nfiles);
    char *cat1 = scalar(f->s, catalog_sql);
    static const char *const schemas[] = {"md", "features", "risk", "trading",
                                          "backtest", "notify", "api"};
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "schema %s Owned by qb-", schemas[i]);
        HAS(cat1, want);
    }
    HAS(cat1, "table public.schema_migrations BASE TABLE");
    HAS(cat1, "column public.schema_migrations.checksum text NO");
    char nbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%d", nfiles);
    assert_scalar(f->s, "SELECT count(*) FROM public.schema_migrations", nbuf);
    assert_scalar(f->s,
                  "SELECT checksum ~ '^[0-9a-f]{64}$' AND name = '0001_schemas.sql' "
                  "FROM public.schema_migrations WHERE version = 1", "t");
    assert_false(qb_store_in_transaction(f->s));

    /* again, with a second handle (a second service starting) */
    qb_store_t *s2 = qb_store_new(f->dsn, E, sizeof(E));
    assert_non_null(s2);
    applied = -1;
    OK(qb_migrate_apply(s2, dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 0);
    char *cat2 = scalar(s2, catalog_sql);
    assert_string_equal(cat1, cat2);
    assert_scalar(s2, "SELECT count(*) FROM public.schema_migrations", nbuf);

    OK(qb_migrate_status(s2, dir, &st, &n, E, sizeof(E)));
    assert_int_equal(n, nfiles);
    for (int i = 0; i < n; i++) {
        assert_int_equal(st[i].version, i + 1);
        assert_int_equal(st[i].state, QB_MIGRATION_APPLIED);
        assert_true(st[i].applied_at_ns > 1700000000LL * 1000000000LL);
    }
    assert_string_equal(st[0].name, "0001_schemas.sql");
    free(st);
    free(cat1);
    free(cat2);
    qb_store_destroy(s2);
}

static void test_failing_file_rolls_back(void **state) {
    fx_t *f = *state;
    int applied = -1;
    put(f->dir, "0001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);\n");
    put(f->dir, "0002_b.sql",
        "CREATE TABLE x (id int);\n"
        "CREATE TABLE y (id int);\n"
        "  SELEC broken;\n");
    ERR(QB_ERR_DB, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 1);
    HAS(E, "0002_b.sql");
    HAS(E, "syntax error");
    HAS(E, "SELEC");
    HAS(E, "line 3, column 3");
    assert_scalar(f->s, "SELECT to_regclass('public.x') IS NULL", "t");
    assert_scalar(f->s, "SELECT to_regclass('public.y') IS NULL", "t");
    assert_scalar(f->s, "SELECT to_regclass('public.a') IS NOT NULL", "t");
    assert_scalar(f->s, versions_sql, "1");
    assert_false(qb_store_in_transaction(f->s));

    /* a runtime error after statements that did run: still all or nothing */
    put(f->dir, "0002_b.sql",
        "CREATE TABLE x (id int);\n"
        "INSERT INTO x VALUES (1);\n"
        "CREATE TABLE y (id int);\n"
        "SELECT 1 / 0;\n");
    ERR(QB_ERR_DB, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 0);
    HAS(E, "0002_b.sql");
    HAS(E, "division by zero");
    HAS(E, "22012");
    assert_scalar(f->s, "SELECT to_regclass('public.x') IS NULL", "t");
    assert_scalar(f->s, versions_sql, "1");

    /* fixed (it was never applied, so changing it is fine) */
    put(f->dir, "0002_b.sql", "CREATE TABLE x (id int);\nCREATE TABLE y (id int);\n");
    OK(qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 1);
    assert_scalar(f->s, versions_sql, "1,2");
    assert_scalar(f->s, "SELECT to_regclass('public.x') IS NOT NULL", "t");

    /* a file must not end the transaction itself */
    put(f->dir, "0003_c.sql", "CREATE TABLE z (id int);\nCOMMIT;\n");
    ERR(QB_ERR_INVALID, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    HAS(E, "0003_c.sql");
    HAS(E, "COMMIT");
    assert_scalar(f->s, versions_sql, "1,2");
    assert_false(qb_store_in_transaction(f->s));
}

static void test_checksum_changed(void **state) {
    fx_t *f = *state;
    int applied = -1;
    put(f->dir, "0001_a.sql", "CREATE TABLE a (id int);\n");
    put(f->dir, "0002_b.sql", "CREATE TABLE b (id int);\n");
    OK(qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 2);

    /* someone edits history, and adds a new migration */
    put(f->dir, "0001_a.sql", "CREATE TABLE a (id int, extra text);\n");
    put(f->dir, "0003_c.sql", "CREATE TABLE c (id int);\n");
    ERR(QB_ERR_CONFLICT, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 0);
    HAS(E, "0001_a.sql");
    HAS(E, "changed");
    /* nothing applied: checked before anything new runs */
    assert_scalar(f->s, versions_sql, "1,2");
    assert_scalar(f->s, "SELECT to_regclass('public.c') IS NULL", "t");

    qb_migration_info_t *st = NULL;
    int n = 0;
    OK(qb_migrate_status(f->s, f->dir, &st, &n, E, sizeof(E)));
    assert_int_equal(n, 3);
    assert_int_equal(st[0].state, QB_MIGRATION_CHANGED);
    assert_int_equal(st[1].state, QB_MIGRATION_APPLIED);
    assert_int_equal(st[2].state, QB_MIGRATION_PENDING);
    assert_int_equal(st[2].applied_at_ns, 0);
    assert_string_equal(qb_migration_state_name(st[0].state), "changed");
    free(st);

    /* restored: the pending one applies */
    put(f->dir, "0001_a.sql", "CREATE TABLE a (id int);\n");
    OK(qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 1);
    assert_scalar(f->s, versions_sql, "1,2,3");

    /* a version the database knows but the directory does not: a warning */
    del(f->dir, "0003_c.sql");
    OK(qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 0);
    OK(qb_migrate_status(f->s, f->dir, &st, &n, E, sizeof(E)));
    assert_int_equal(n, 3);
    assert_int_equal(st[2].version, 3);
    assert_int_equal(st[2].state, QB_MIGRATION_MISSING);
    assert_string_equal(st[2].name, "0003_c.sql");
    free(st);
}

static void test_bad_directories(void **state) {
    fx_t *f = *state;
    int applied = -1;
    const char *untouched = "SELECT to_regclass('public.schema_migrations') IS NULL";

    /* empty, and missing */
    ERR(QB_ERR_NOT_FOUND, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    ERR(QB_ERR_IO, qb_migrate_apply(f->s, "/nonexistent/qb-sql", &applied, E, sizeof(E)));

    /* gap */
    put(f->dir, "README.md", "not a migration\n");
    put(f->dir, "0001_a.sql", "CREATE TABLE a (id int);\n");
    put(f->dir, "0003_c.sql", "CREATE TABLE c (id int);\n");
    ERR(QB_ERR_INVALID, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 0);
    HAS(E, "gap");
    HAS(E, "0003_c.sql");
    assert_scalar(f->s, untouched, "t");
    qb_migration_info_t *st = NULL;
    int n = -1;
    ERR(QB_ERR_INVALID, qb_migrate_status(f->s, f->dir, &st, &n, E, sizeof(E)));
    assert_null(st);

    /* duplicate */
    put(f->dir, "0002_b.sql", "CREATE TABLE b (id int);\n");
    put(f->dir, "0002_bb.sql", "CREATE TABLE bb (id int);\n");
    ERR(QB_ERR_INVALID, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    HAS(E, "duplicate");
    HAS(E, "0002_b.sql");
    HAS(E, "0002_bb.sql");
    assert_scalar(f->s, untouched, "t");
    del(f->dir, "0002_bb.sql");

    /* bad name */
    put(f->dir, "12_short.sql", "SELECT 1;\n");
    ERR(QB_ERR_INVALID, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    HAS(E, "12_short.sql");
    del(f->dir, "12_short.sql");

    /* not starting at 1 */
    del(f->dir, "0001_a.sql");
    ERR(QB_ERR_INVALID, qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    HAS(E, "0002_b.sql");
    assert_scalar(f->s, untouched, "t");

    /* 5 digits are fine and sort numerically */
    put(f->dir, "00001_a.sql", "CREATE TABLE a (id int);\n");
    OK(qb_migrate_apply(f->s, f->dir, &applied, E, sizeof(E)));
    assert_int_equal(applied, 3);
    assert_scalar(f->s, versions_sql, "1,2,3");
}

#define N_PROCS 4
#define N_MIGR 5

static void test_concurrent_processes(void **state) {
    fx_t *f = *state;
    put(f->dir, "0001_runs.sql",
        "CREATE TABLE runs (v int NOT NULL, pid int NOT NULL DEFAULT pg_backend_pid());\n"
        "SELECT pg_sleep(0.2);\nINSERT INTO runs (v) VALUES (1);\n");
    put(f->dir, "0002_two.sql", "INSERT INTO runs (v) VALUES (2);\nSELECT pg_sleep(0.2);\n");
    put(f->dir, "0003_three.sql", "CREATE TABLE t3 (id int PRIMARY KEY);\n"
                                  "INSERT INTO runs (v) VALUES (3);\n");
    put(f->dir, "0004_four.sql", "SELECT pg_sleep(0.1);\nINSERT INTO runs (v) VALUES (4);\n");
    put(f->dir, "0005_five.sql", "CREATE SCHEMA s5;\nINSERT INTO runs (v) VALUES (5);\n");

    int go[2], res[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(res), 0);
    pid_t pids[N_PROCS];
    for (int i = 0; i < N_PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char b, e[1024];
            close(go[1]);
            close(res[0]);
            /* all children start together when the parent closes the pipe */
            if (read(go[0], &b, 1) < 0) _exit(3);
            qb_store_t *s = qb_store_new(f->dsn, e, sizeof(e));
            int applied = -1;
            qb_err_t err = s ? qb_migrate_apply(s, f->dir, &applied, e, sizeof(e)) : QB_ERR_NOMEM;
            if (err) fprintf(stderr, "child %d: %s: %s\n", i, qb_err_name(err), e);
            qb_store_destroy(s);
            if (write(res[1], &applied, sizeof(applied)) != (ssize_t)sizeof(applied)) _exit(4);
            _exit(err == QB_OK ? 0 : 1);
        }
    }
    close(go[0]);
    close(res[1]);
    close(go[1]); /* go */
    int total = 0;
    for (int i = 0; i < N_PROCS; i++) {
        int st = 0;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("migrating child %d failed (status %d)", i, st);
    }
    int a;
    while (read(res[0], &a, sizeof(a)) == (ssize_t)sizeof(a)) total += a;
    close(res[0]);
    assert_int_equal(total, N_MIGR);
    /* every version exactly once, in order */
    assert_scalar(f->s, "SELECT string_agg(v::text, ',' ORDER BY v) FROM runs", "1,2,3,4,5");
    assert_scalar(f->s, versions_sql, "1,2,3,4,5");
    assert_scalar(f->s, "SELECT count(*) FROM public.schema_migrations", "5");
}

int main(void) {
    const char *lv = getenv("QB_LOG_LEVEL");
    int l = lv ? qb_log_level_parse(lv) : -1;
    qb_log_init("it_migrate", l >= 0 ? (qb_log_level_t)l : QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repo_sql_twice, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_failing_file_rolls_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_checksum_changed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_directories, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
