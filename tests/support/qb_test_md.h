/* qb_test_md.h — a fresh, migrated database for the md integration tests
 * (linked into every test binary, like qb_test.h).
 *
 * qb_test_md_db_setup() is a cmocka setup: it creates a database on the
 * QB_PG_DSN server (qb_test_db_create), opens a qb_store_t on it and applies
 * the migrations in $QB_ROOT/sql (QB_ROOT unset or empty: "./sql"). *state
 * becomes a qb_test_md_db_t; on failure it prints the reason to stderr and
 * returns -1. qb_test_md_db_teardown() closes the store and drops the
 * database. */
#ifndef QB_TEST_MD_H
#define QB_TEST_MD_H

#include "store/qb_store.h"

typedef struct qb_test_md_db_s {
    char *dsn;      /* from qb_test_db_create */
    qb_store_t *s;  /* migrated */
} qb_test_md_db_t;

/* $QB_ROOT, or "." when it is unset or empty. */
const char *qb_test_md_root(void);

int qb_test_md_db_setup(void **state);
int qb_test_md_db_teardown(void **state);

#endif
