/* cmd_migrate.c — `qbctl migrate`: apply pending migrations from QB_SQL_DIR
 * (or --dir) to QB_PG_DSN; `--status` lists them instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_time.h"
#include "qbctl.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

int qbctl_migrate(int argc, char **argv) {
    const char *dir = qbctl_cfg.sql_dir;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) status = 1;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else {
            fprintf(stderr, "qbctl migrate: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    char err[1024];
    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "qbctl migrate: QB_PG_DSN: %s\n", err);
        return 2;
    }
    int rc = 0;
    if (status) {
        qb_migration_info_t *list = NULL;
        int n = 0;
        if (qb_migrate_status(s, dir, &list, &n, err, sizeof(err)) != QB_OK) {
            fprintf(stderr, "qbctl migrate: %s\n", err);
            rc = 1;
        } else {
            printf("%-8s %-9s %-24s %s\n", "VERSION", "STATE", "APPLIED", "NAME");
            for (int i = 0; i < n; i++) {
                char when[40] = "-";
                if (list[i].applied_at_ns) qb_time_format(list[i].applied_at_ns, when, sizeof(when));
                printf("%-8d %-9s %-24s %s\n", list[i].version,
                       qb_migration_state_name(list[i].state), when, list[i].name);
                if (list[i].state == QB_MIGRATION_CHANGED || list[i].state == QB_MIGRATION_MISSING)
                    rc = 1;
            }
            free(list);
        }
    } else {
        int applied = 0;
        if (qb_migrate_apply(s, dir, &applied, err, sizeof(err)) != QB_OK) {
            fprintf(stderr, "qbctl migrate: %s\n", err);
            rc = 1;
        } else {
            printf("migrations: %d applied from %s\n", applied, dir);
        }
    }
    qb_store_destroy(s);
    return rc;
}
