/* qb_migrate.h — numbered SQL migrations (sql/NNNN_description.sql).
 *
 * Rules (see sql/README.md):
 *   - A migration is a file named NNNN_description.sql: at least 4 digits,
 *     '_', a description, ".sql". Versions are the numbers (0001 -> 1); they
 *     start at 1 and have no gaps or duplicates, otherwise nothing is applied
 *     and the error names the offending files. Other files (README.md) are
 *     ignored; a *.sql file with a bad name is an error.
 *   - Each file runs in ONE transaction together with the insert of its row
 *     in public.schema_migrations (version, name, checksum = SHA-256 hex of
 *     the file, applied_at). A failing file rolls back whole; the error names
 *     the file, the server's message and the line/column when the server
 *     reports a position. A file must not contain BEGIN/COMMIT, nor
 *     statements that cannot run in a transaction (CREATE INDEX
 *     CONCURRENTLY); use SET LOCAL, not SET.
 *   - Every transaction takes pg_advisory_xact_lock(QB_MIGRATE_LOCK_KEY), so
 *     services migrating the same database at once serialize; each checks
 *     again under the lock, so every version is applied exactly once.
 *   - An applied version is skipped; an applied version whose file changed
 *     (checksum differs) is an error naming the file, detected before
 *     anything is applied. A version recorded in the database with no file
 *     (a newer database than this code) is logged as a warning, not an error.
 *
 * Both functions use the caller's store handle and leave it outside any
 * transaction. */
#ifndef QB_MIGRATE_H
#define QB_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "store/qb_store.h"

/* Key of the advisory lock every migration transaction takes. */
#define QB_MIGRATE_LOCK_KEY 0x71626D6967726174LL /* ASCII "qbmigrat" */

/* Apply every pending migration in `dir`, in version order. *applied_count
 * (may be NULL) receives how many were applied by this call, also on error
 * (those before the failing one stay applied). */
qb_err_t qb_migrate_apply(qb_store_t *s, const char *dir, int *applied_count,
                          char *errstr, size_t errstr_size);

typedef enum qb_migration_state_e {
    QB_MIGRATION_PENDING = 0, /* file present, not applied */
    QB_MIGRATION_APPLIED = 1, /* applied, file unchanged */
    QB_MIGRATION_CHANGED = 2, /* applied, but the file's checksum differs */
    QB_MIGRATION_MISSING = 3  /* applied, no file for it in dir */
} qb_migration_state_t;

/* One migration, as a plain value. */
typedef struct qb_migration_info_s {
    int version;
    char name[256];          /* file name ("0001_schemas.sql"), or the recorded
                                name for QB_MIGRATION_MISSING */
    char checksum[65];       /* of the file; recorded one when MISSING */
    qb_migration_state_t state;
    int64_t applied_at_ns;   /* UTC ns since the epoch; 0 when pending */
} qb_migration_info_t;

/* List every migration known to the directory or the database, ordered by
 * version, into a malloc'd array (*out, *n; free with free()). Does not
 * create anything in the database. Errors for a bad directory (gap,
 * duplicate, bad name) are the same as qb_migrate_apply's. */
qb_err_t qb_migrate_status(qb_store_t *s, const char *dir, qb_migration_info_t **out,
                           int *n, char *errstr, size_t errstr_size);

/* "pending", "applied", "changed", "missing". */
const char *qb_migration_state_name(qb_migration_state_t st);

#endif
