/* qb_test_md.c — see qb_test_md.h. */
#include "qb_test_md.h"

#include <stdio.h>
#include <stdlib.h>

#include "qb_test.h"
#include "store/qb_migrate.h"

const char *qb_test_md_root(void) {
    const char *r = getenv("QB_ROOT");
    return r && *r ? r : ".";
}

int qb_test_md_db_setup(void **state) {
    char err[2048];
    qb_test_md_db_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    f->dsn = qb_test_db_create();
    f->s = qb_store_new(f->dsn, err, sizeof err);
    if (!f->s) return -1;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sql", qb_test_md_root());
    int applied = 0;
    if (qb_migrate_apply(f->s, dir, &applied, err, sizeof err) != QB_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

int qb_test_md_db_teardown(void **state) {
    qb_test_md_db_t *f = *state;
    qb_store_destroy(f->s);
    qb_test_db_drop(f->dsn);
    free(f);
    return 0;
}
