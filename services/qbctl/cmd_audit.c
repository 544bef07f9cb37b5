/* cmd_audit.c — `qbctl audit verify [--account A]`: recompute the hash
 * chains of trading.audit_log (one per account, libs/exec qb_exec_audit_*)
 * and name the first row that does not verify: a changed row (hash
 * mismatch), a re-linked one (prev_hash), a deleted one (seq gap). Rows are
 * read in (account, seq) order through a server-side cursor, so any size
 * of log verifies in constant memory. Exit 0 when every chain verifies, 1
 * at the first bad row, 2 on a usage or connection error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/qb_exec.h"
#include "qbctl.h"
#include "store/qb_store.h"

static int qbctl_audit_usage(FILE *f) {
    fprintf(f, "usage: qbctl audit verify [--account ACCOUNT]\n"
               "  checks the SHA-256 hash chain of every account's audit log\n"
               "  (trading.audit_log; QB_PG_DSN) and names the first bad row\n");
    return 2;
}

int qbctl_audit(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "verify") != 0) return qbctl_audit_usage(argc < 2 ? stderr : stdout);
    const char *account = "";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) account = argv[++i];
        else if (strcmp(argv[i], "--help") == 0) return qbctl_audit_usage(stdout), 0;
        else {
            fprintf(stderr, "qbctl audit verify: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    char err[1024];
    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qbctl audit verify: QB_PG_DSN: %s\n", err);
        return 2;
    }
    int rc = 2;
    const char *p[1] = {account};
    if (qb_store_begin(s, err, sizeof err) != QB_OK ||
        qb_store_query(s,
                       "DECLARE qb_audit NO SCROLL CURSOR FOR SELECT audit_id, account, seq, "
                       "at_ns, order_id, event, detail, prev_hash, hash FROM trading.audit_log "
                       "WHERE $1 = '' OR account = $1 ORDER BY account, seq",
                       1, p, NULL, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl audit verify: %s\n", err);
        goto out;
    }
    char last_acct[QB_ACCOUNT_MAX + 8] = "", last_hash[65] = QB_EXEC_AUDIT_GENESIS;
    int64_t last_seq = 0, rows = 0, accounts = 0;
    rc = 0;
    for (;;) {
        PGresult *r = NULL;
        if (qb_store_query(s, "FETCH 10000 FROM qb_audit", 0, NULL, &r, err, sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl audit verify: %s\n", err);
            rc = 2;
            break;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n && rc == 0; i++) {
            qb_exec_audit_row_t row = {
                strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
                strtoll(PQgetvalue(r, i, 2), NULL, 10), strtoll(PQgetvalue(r, i, 3), NULL, 10),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
                PQgetvalue(r, i, 7), PQgetvalue(r, i, 8)};
            if (strcmp(row.account, last_acct) != 0) {
                snprintf(last_acct, sizeof last_acct, "%s", row.account);
                snprintf(last_hash, sizeof last_hash, "%s", QB_EXEC_AUDIT_GENESIS);
                last_seq = 0;
                accounts++;
            }
            char why[256];
            if (qb_exec_audit_check(last_seq, last_hash, &row, why, sizeof why) != QB_OK) {
                printf("audit verify: FAILED at row audit_id=%lld (account %s, seq %lld, event %s): "
                       "%s\n",
                       (long long)row.audit_id, row.account, (long long)row.seq, row.event, why);
                rc = 1;
                break;
            }
            last_seq = row.seq;
            snprintf(last_hash, sizeof last_hash, "%s", row.hash);
            rows++;
        }
        PQclear(r);
        if (rc || n == 0) break;
    }
    if (rc == 0)
        printf("audit verify: OK: %lld rows in %lld account chains\n", (long long)rows,
               (long long)accounts);
out:
    (void)qb_store_rollback(s, err, sizeof err);
    qb_store_destroy(s);
    return rc;
}
