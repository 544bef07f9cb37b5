/* qb_migrate.c — applies sql/NNNN_description.sql files; see qb_migrate.h.
 *
 * Flow of qb_migrate_apply:
 *   1. scan the directory: parse names, read every file, SHA-256 it, sort,
 *      reject gaps, duplicates and bad names — before touching the database;
 *   2. one short transaction under the advisory lock creates
 *      public.schema_migrations if needed and reads what is applied; every
 *      applied version is checked against its file's checksum;
 *   3. each pending file: BEGIN; lock; re-check (another process may have
 *      applied it meanwhile); run the whole file with one PQexec; insert its
 *      row; COMMIT.
 * This file owns only the scanned file list (freed before returning). */
#include "store/qb_migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qb_log.h"

#define QB_MIGRATE_MSG 1024

typedef struct qb_mig_file_s {
    int version;
    char name[256]; /* file name */
    char *text;     /* whole file, NUL-terminated */
    size_t len;
    char checksum[65];
} qb_mig_file_t;

static void mig_free(qb_mig_file_t *f, int n) {
    for (int i = 0; i < n; i++) free(f[i].text);
    free(f);
}

static int mig_cmp(const void *a, const void *b) {
    const qb_mig_file_t *x = a, *y = b;
    if (x->version != y->version) return x->version < y->version ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* "0012_add_bars.sql" -> 12. Returns -1 when the name is not a migration
 * name (or the number does not fit an int). */
static int mig_parse_name(const char *name) {
    size_t len = strlen(name), digits = 0;
    while (isdigit((unsigned char)name[digits])) digits++;
    if (digits < 4 || name[digits] != '_') return -1;
    if (len < digits + 1 + 1 + 4 || strcmp(name + len - 4, ".sql") != 0) return -1;
    long long v = 0;
    for (size_t i = 0; i < digits; i++) {
        v = v * 10 + (name[i] - '0');
        if (v > INT_MAX) return -1;
    }
    return (int)v;
}

static qb_err_t mig_read(const char *dir, qb_mig_file_t *f, char *errstr, size_t errstr_size) {
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, f->name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return qb_err_set(errstr, errstr_size, QB_ERR_IO, "migration %s: cannot open: %s",
                          path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(fp);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        len += fread(buf + len, 1, cap - len - 1, fp);
        if (len < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return qb_err_set(errstr, errstr_size, QB_ERR_IO, "migration %s: read error", path);
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        free(buf);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "migration %s contains a NUL byte", f->name);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        free(buf);
        return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "SHA-256 of %s failed",
                          f->name);
    }
    for (unsigned i = 0; i < mdlen; i++) snprintf(f->checksum + 2 * i, 3, "%02x", md[i]);
    f->text = buf;
    f->len = len;
    return QB_OK;
}

/* Read and validate the directory. On success *out holds n >= 1 files sorted
 * by version 1..n. */
static qb_err_t mig_scan(const char *dir, qb_mig_file_t **out, int *n, char *errstr,
                         size_t errstr_size) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return qb_err_set(errstr, errstr_size, QB_ERR_IO, "migrations directory %s: %s", dir,
                          strerror(errno));
    qb_mig_file_t *files = NULL;
    int nf = 0, cap = 0;
    qb_err_t err = QB_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (nm[0] == '.' || len < 4 || strcmp(nm + len - 4, ".sql") != 0) continue;
        int v = mig_parse_name(nm);
        if (v < 0 || len >= sizeof(files[0].name)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                             "migration file %s/%s: bad name (want NNNN_description.sql, "
                             "4+ digits)", dir, nm);
            break;
        }
        if (nf == cap) {
            int ncap = cap ? cap * 2 : 16;
            qb_mig_file_t *nfiles = realloc(files, (size_t)ncap * sizeof(*nfiles));
            if (!nfiles) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
                break;
            }
            files = nfiles;
            cap = ncap;
        }
        memset(&files[nf], 0, sizeof(files[nf]));
        files[nf].version = v;
        snprintf(files[nf].name, sizeof(files[nf].name), "%s", nm);
        nf++;
    }
    closedir(d);
    if (!err && nf == 0)
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                         "no migrations (NNNN_description.sql) in %s", dir);
    if (!err) {
        qsort(files, (size_t)nf, sizeof(*files), mig_cmp);
        for (int i = 0; i < nf && !err; i++) {
            if (i > 0 && files[i].version == files[i - 1].version)
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "duplicate migration version %d: %s and %s", files[i].version,
                                 files[i - 1].name, files[i].name);
            else if (files[i].version != i + 1)
                err = i == 0 ? qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                          "migrations must start at version 1 (0001_...), "
                                          "the first is %s", files[i].name)
                             : qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                          "gap in migrations: %s follows %s (version %d "
                                          "missing)", files[i].name, files[i - 1].name,
                                          i + 1);
        }
    }
    for (int i = 0; i < nf && !err; i++) err = mig_read(dir, &files[i], errstr, errstr_size);
    if (err) {
        mig_free(files, nf);
        return err;
    }
    *out = files;
    *n = nf;
    return QB_OK;
}

/* Character position (1-based, as PostgreSQL counts: characters, not bytes)
 * -> line and column. */
static void mig_position(const char *text, int pos, int *line, int *col) {
    int chars = 0;
    *line = 1;
    *col = 1;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) == 0x80) continue; /* UTF-8 continuation byte */
        if (++chars >= pos) return;
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static qb_err_t mig_lock(qb_store_t *s, char *errstr, size_t errstr_size) {
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
             (long long)QB_MIGRATE_LOCK_KEY);
    return qb_store_exec(s, sql, errstr, errstr_size);
}

static const char *const mig_table_sql =
    "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
    " version int PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

static qb_mig_file_t *mig_find(qb_mig_file_t *files, int n, int version) {
    return version >= 1 && version <= n ? &files[version - 1] : NULL;
}

static qb_err_t mig_changed_err(const qb_mig_file_t *f, const char *dir, const char *recorded,
                                char *errstr, size_t errstr_size) {
    return qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                      "migration %s/%s was changed after it was applied (recorded checksum "
                      "%.12s..., file %.12s...): never edit an applied migration, add a "
                      "new one", dir, f->name, recorded, f->checksum);
}

/* Apply one file in its own transaction. *did is 1 if this call applied it
 * (0 if another process had). */
static qb_err_t mig_apply_one(qb_store_t *s, const char *dir, const qb_mig_file_t *f,
                              int *did, char *errstr, size_t errstr_size) {
    char e[QB_MIGRATE_MSG], vbuf[16];
    PGresult *r = NULL;
    *did = 0;
    snprintf(vbuf, sizeof(vbuf), "%d", f->version);
    qb_err_t err = qb_store_begin(s, e, sizeof(e));
    if (!err) err = mig_lock(s, e, sizeof(e));
    if (!err) {
        const char *p[1] = {vbuf};
        err = qb_store_query(s, "SELECT checksum FROM public.schema_migrations WHERE version = $1",
                             1, p, &r, e, sizeof(e));
    }
    if (err) {
        qb_store_rollback(s, NULL, 0);
        return qb_err_set(errstr, errstr_size, err, "migration %s: %s", f->name, e);
    }
    if (PQntuples(r) > 0) {
        /* Applied by someone else while we waited for the lock. */
        int same = strcmp(PQgetvalue(r, 0, 0), f->checksum) == 0;
        if (!same) err = mig_changed_err(f, dir, PQgetvalue(r, 0, 0), errstr, errstr_size);
        PQclear(r);
        qb_store_rollback(s, NULL, 0);
        return err;
    }
    PQclear(r);

    int64_t t0 = (int64_t)time(NULL);
    err = qb_store_exec(s, f->text, e, sizeof(e));
    if (err) {
        int pos = qb_store_last_error_position(s), line = 0, col = 0;
        char where[64] = "";
        if (pos > 0) {
            mig_position(f->text, pos, &line, &col);
            snprintf(where, sizeof(where), " at line %d, column %d", line, col);
        }
        qb_store_rollback(s, NULL, 0);
        return qb_err_set(errstr, errstr_size, err == QB_ERR_CONFLICT ? QB_ERR_DB : err,
                          "migration %s/%s failed%s: %s (rolled back: nothing of it applied)",
                          dir, f->name, where, e);
    }
    if (!qb_store_in_transaction(s)) {
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "migration %s/%s ended the transaction itself (contains COMMIT or "
                          "ROLLBACK): migrations must not; it is NOT recorded as applied",
                          dir, f->name);
    }
    const char *p[3] = {vbuf, f->name, f->checksum};
    err = qb_store_query(s,
                         "INSERT INTO public.schema_migrations (version, name, checksum) "
                         "VALUES ($1, $2, $3)",
                         3, p, NULL, e, sizeof(e));
    if (!err) err = qb_store_commit(s, e, sizeof(e));
    if (err) {
        qb_store_rollback(s, NULL, 0);
        return qb_err_set(errstr, errstr_size, err, "migration %s: recording it failed: %s",
                          f->name, e);
    }
    *did = 1;
    QB_INFO("migration %s applied (%llds)", f->name, (long long)((int64_t)time(NULL) - t0));
    return QB_OK;
}

qb_err_t qb_migrate_apply(qb_store_t *s, const char *dir, int *applied_count, char *errstr,
                          size_t errstr_size) {
    if (applied_count) *applied_count = 0;
    if (!s || !dir) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_migrate_apply: NULL");
    if (qb_store_in_transaction(s))
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "qb_migrate_apply inside an open transaction");
    qb_mig_file_t *files;
    int n;
    qb_err_t err = mig_scan(dir, &files, &n, errstr, errstr_size);
    if (err) return err;

    /* Bootstrap: the table, and what is applied, under the lock. */
    char e[QB_MIGRATE_MSG];
    PGresult *r = NULL;
    err = qb_store_begin(s, e, sizeof(e));
    if (!err) err = mig_lock(s, e, sizeof(e));
    if (!err) err = qb_store_exec(s, mig_table_sql, e, sizeof(e));
    if (!err)
        err = qb_store_query(s, "SELECT version, name, checksum FROM public.schema_migrations "
                                "ORDER BY version", 0, NULL, &r, e, sizeof(e));
    if (!err) err = qb_store_commit(s, e, sizeof(e));
    if (err) {
        PQclear(r);
        qb_store_rollback(s, NULL, 0);
        mig_free(files, n);
        return qb_err_set(errstr, errstr_size, err, "schema_migrations: %s", e);
    }
    char *applied = calloc((size_t)n + 1, 1);
    if (!applied) {
        PQclear(r);
        mig_free(files, n);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < PQntuples(r) && !err; i++) {
        int v = atoi(PQgetvalue(r, i, 0));
        qb_mig_file_t *f = mig_find(files, n, v);
        if (!f) {
            QB_WARN("migration %d (%s) is applied in the database but has no file in %s "
                    "(database newer than this code?)", v, PQgetvalue(r, i, 1), dir);
            continue;
        }
        if (strcmp(f->checksum, PQgetvalue(r, i, 2)) != 0)
            err = mig_changed_err(f, dir, PQgetvalue(r, i, 2), errstr, errstr_size);
        applied[v] = 1;
    }
    PQclear(r);

    int count = 0;
    for (int i = 0; i < n && !err; i++) {
        if (applied[files[i].version]) continue;
        int did = 0;
        err = mig_apply_one(s, dir, &files[i], &did, errstr, errstr_size);
        count += did;
        if (applied_count) *applied_count = count;
    }
    if (!err)
        QB_INFO("migrations in %s: %d applied now, %d total", dir, count, n);
    free(applied);
    mig_free(files, n);
    return err;
}

const char *qb_migration_state_name(qb_migration_state_t st) {
    switch (st) {
    case QB_MIGRATION_PENDING: return "pending";
    case QB_MIGRATION_APPLIED: return "applied";
    case QB_MIGRATION_CHANGED: return "changed";
    case QB_MIGRATION_MISSING: return "missing";
    }
    return "unknown";
}

qb_err_t qb_migrate_status(qb_store_t *s, const char *dir, qb_migration_info_t **out, int *n,
                           char *errstr, size_t errstr_size) {
    if (out) *out = NULL;
    if (n) *n = 0;
    if (!s || !dir || !out || !n)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_migrate_status: NULL");
    qb_mig_file_t *files;
    int nf;
    qb_err_t err = mig_scan(dir, &files, &nf, errstr, errstr_size);
    if (err) return err;

    char e[QB_MIGRATE_MSG];
    PGresult *r = NULL, *t = NULL;
    err = qb_store_query(s, "SELECT to_regclass('public.schema_migrations') IS NOT NULL", 0,
                         NULL, &t, e, sizeof(e));
    if (!err && strcmp(PQgetvalue(t, 0, 0), "t") == 0)
        err = qb_store_query(s,
                             "SELECT version, name, checksum, "
                             "(extract(epoch FROM applied_at) * 1000000)::bigint "
                             "FROM public.schema_migrations ORDER BY version",
                             0, NULL, &r, e, sizeof(e));
    PQclear(t);
    if (err) {
        mig_free(files, nf);
        return qb_err_set(errstr, errstr_size, err, "schema_migrations: %s", e);
    }
    int nr = r ? PQntuples(r) : 0;
    qb_migration_info_t *list = calloc((size_t)(nf + nr) + 1, sizeof(*list));
    if (!list) {
        PQclear(r);
        mig_free(files, nf);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nf; i++) {
        list[i].version = files[i].version;
        snprintf(list[i].name, sizeof(list[i].name), "%s", files[i].name);
        snprintf(list[i].checksum, sizeof(list[i].checksum), "%s", files[i].checksum);
        list[i].state = QB_MIGRATION_PENDING;
    }
    int cnt = nf;
    for (int i = 0; i < nr; i++) {
        int v = atoi(PQgetvalue(r, i, 0));
        int64_t at = strtoll(PQgetvalue(r, i, 3), NULL, 10) * 1000;
        if (v >= 1 && v <= nf) {
            qb_migration_info_t *m = &list[v - 1];
            m->state = strcmp(m->checksum, PQgetvalue(r, i, 2)) == 0 ? QB_MIGRATION_APPLIED
                                                                     : QB_MIGRATION_CHANGED;
            m->applied_at_ns = at;
        } else {
            qb_migration_info_t *m = &list[cnt++];
            m->version = v;
            snprintf(m->name, sizeof(m->name), "%s", PQgetvalue(r, i, 1));
            snprintf(m->checksum, sizeof(m->checksum), "%s", PQgetvalue(r, i, 2));
            m->state = QB_MIGRATION_MISSING;
            m->applied_at_ns = at;
        }
    }
    PQclear(r);
    mig_free(files, nf);
    /* Files are 1..nf in order; missing ones come from an ordered query and
     * are all > nf or < 1: sort the lot to keep the promise. */
    for (int i = 1; i < cnt; i++) {
        qb_migration_info_t tmp = list[i];
        int j = i - 1;
        while (j >= 0 && list[j].version > tmp.version) {
            list[j + 1] = list[j];
            j--;
        }
        list[j + 1] = tmp;
    }
    *out = list;
    *n = cnt;
    return QB_OK;
}
