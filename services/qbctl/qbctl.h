/* qbctl.h — shared between qbctl's command files. */
#ifndef QBCTL_H
#define QBCTL_H

#include <stdint.h>

typedef struct qbctl_cfg_s {
    const char *kafka_brokers;
    const char *pg_dsn;
    const char *sql_dir;
    const char *log_level;
    const char *redis_url; /* "" = none */
} qbctl_cfg_t;

extern qbctl_cfg_t qbctl_cfg;

int qbctl_migrate(int argc, char **argv);
int qbctl_topics(int argc, char **argv);
int qbctl_tail(int argc, char **argv);
int qbctl_produce(int argc, char **argv);
int qbctl_import(int argc, char **argv);
int qbctl_ta(int argc, char **argv); /* cmd_ta.c: indicators over a CSV (libs/ta) */
int qbctl_actions(int argc, char **argv); /* "actions ..." and "bars ..." */
int qbctl_replay(int argc, char **argv);
int qbctl_data(int argc, char **argv);
int qbctl_backfill(int argc, char **argv);
int qbctl_backtest(int argc, char **argv); /* cmd_backtest.c: local backtest over CSVs */
int qbctl_bt_submit(int argc, char **argv);   /* cmd_bt_submit.c: a run for qb-backtest */
int qbctl_walkforward(int argc, char **argv); /* cmd_walkforward.c: walk-forward */
int qbctl_optimize(int argc, char **argv);    /* cmd_walkforward.c: grid/random search */
int qbctl_audit(int argc, char **argv);       /* cmd_audit.c: audit log hash chain verify */

/* CSV reading options of backtest/walkforward/optimize (bt_load.c). */
typedef struct qbctl_csv_opts_s {
    const char *in_format; /* "auto", "yahoo", "generic" */
    const char *tfmt;      /* generic: time format, NULL = date */
    char *columns;         /* generic: column mapping, NULL = default */
    char delim;            /* 0 = ',' */
} qbctl_csv_opts_t;

struct qb_bt_data_s;
/* Load "SYM=FILE" / "FILE" CSVs into d (symbols in the order given) and
 * finalize it. Rejected rows are printed as FILE:LINE: reason (the first 20
 * per file) and counted in *rejects. Returns 0 ok, 1 read error, 2 usage
 * error (message printed as "qbctl CMD: ..."). */
int qbctl_bt_load(const char *cmd, struct qb_bt_data_s *d, const char *const *files, int nfiles,
                  const char *timeframe, const qbctl_csv_opts_t *co, int64_t *rejects);

/* Parse a non-negative integer option value; exits 2 with a message naming
 * the option when it is not one. */
int64_t qbctl_int_arg(const char *opt, const char *val);

#endif
