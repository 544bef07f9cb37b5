/* ex.h — qb-execution's internals shared by its files: the service state
 * (ex_t), the store (ex_store.c: everything it writes to and reads from
 * PostgreSQL), the order flow (ex_oms.c) and the outbox re-send at start
 * (ex_outbox.c). main.c wires them. */
#ifndef QB_EX_H
#define QB_EX_H

#include <stddef.h>
#include <stdint.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "core/qb_metrics.h"
#include "exec/qb_exec.h"
#include "exec/qb_exec_broker.h"
#include "qb/v1/control.pb-c.h"
#include "qb/v1/risk.pb-c.h"
#include "qb/v1/trading.pb-c.h"
#include "store/qb_store.h"
#include "svc/qb_svc.h"

#define EX_MAX_BROKERS 3 /* sim, alpaca-paper, alpaca-live */

typedef struct ex_cfg_s {
    const char *group;
    const char *paper_broker;   /* "sim" or "alpaca" */
    const char *alpaca_paper_url, *alpaca_live_url;
    const char *alpaca_key, *alpaca_secret;           /* paper endpoint */
    const char *alpaca_live_key, *alpaca_live_secret; /* live endpoint */
    int64_t poll_ms, recon_s, publish_ms;
    double alpaca_rate;
    const char *paper_cash, *paper_slippage_bps, *paper_commission, *paper_volume_cap;
    const char *paper_fill;     /* next_open | close */
    int paper_allow_short;
    int migrate;
    int64_t leader_lock;
    int64_t bars_replay_margin_ms, bars_replay_max_s;
} ex_cfg_t;

typedef struct ex_mode_s {
    char account[QB_ACCOUNT_MAX + 1];
    char strategy_id[QB_EXEC_ID_MAX + 1];
    int mode;        /* QB_EXEC_MODE_* */
    int rollout_pct; /* 1..100 */
} ex_mode_t;

typedef struct ex_audit_s {
    char order_id[QB_UUID_STRLEN];
    char event[32];
    char detail[768];
} ex_audit_t;

typedef struct ex_store_s ex_store_t;

typedef struct ex_s {
    qb_svc_t *svc;
    const ex_cfg_t *cfg;
    qb_store_t *pg;
    ex_store_t *st;
    qb_producer_t *producer;
    qb_consumer_t *consumer;
    qb_reader_t *bars;
    qb_exec_book_t *book;          /* every order not yet final */
    qb_exec_broker_t *brokers[EX_MAX_BROKERS];
    const char *broker_names[EX_MAX_BROKERS]; /* "sim", "alpaca-paper", "alpaca-live" */
    int paper_idx, live_idx;       /* index of the broker for PAPER / LIVE orders; -1 none */
    ex_mode_t *modes;
    size_t nmodes;
    char (*killed)[QB_ACCOUNT_MAX + 1]; /* accounts with the kill switch on ("*" = all) */
    size_t nkilled;
    char (*reported)[160];         /* discrepancy keys already reported */
    size_t nreported;
    char (*posdiff)[160];          /* position differences of the last full
                                      reconciliation: reported when seen twice
                                      in a row (fills in flight explain one) */
    size_t nposdiff;
    int64_t *unpublished;          /* report ids sent, not yet marked */
    size_t nunpub, capunpub;
    int64_t bars_read_ms, bars_saved_ms; /* newest md.bars record time applied / recorded */
    volatile int ready;
    qb_counter_t *c_orders, *c_dups, *c_rejected, *c_reports, *c_fills, *c_illegal, *c_disc,
        *c_cmds, *c_kills, *c_resubmits, *c_bars;
    qb_gauge_t *g_open;
    qb_hist_t *h_latency, *h_broker;
} ex_t;

/* ---- store (ex_store.c) ------------------------------------------------------ */

ex_store_t *ex_store_new(qb_store_t *pg);
void ex_store_destroy(ex_store_t *st);

/* 1 when trading.orders has the id (QB_OK), else 0. */
qb_err_t ex_store_order_exists(ex_store_t *st, const char *order_id, int *exists, char *errstr,
                               size_t errstr_size);
/* Open orders (status 1..4), in creation order; *out malloc'd. */
qb_err_t ex_store_open_orders(ex_store_t *st, qb_exec_order_t **out, size_t *n, char *errstr,
                              size_t errstr_size);
/* How far the paper simulator has applied `feed` (md.bars): the newest
 * record time in ms (0: nothing recorded); put only moves it forward. */
qb_err_t ex_store_feed_get(ex_store_t *st, const char *feed, int64_t *ms, char *errstr,
                           size_t errstr_size);
qb_err_t ex_store_feed_put(ex_store_t *st, const char *feed, int64_t ms, char *errstr,
                           size_t errstr_size);
/* The whole order by id (QB_ERR_NOT_FOUND). */
qb_err_t ex_store_order_get(ex_store_t *st, const char *order_id, qb_exec_order_t *out,
                            char *errstr, size_t errstr_size);

/* One state change: insert (insert = 1) or update the order row, insert the
 * fills of the reports (source "broker" or "reconciliation"), the reports
 * (packed ExecutionReports: payload[i], len[i]) and the audit rows, in ONE
 * transaction. The new report ids go to report_ids[0..nrep-1]. */
qb_err_t ex_store_save(ex_store_t *st, const qb_exec_order_t *o, int insert,
                       const qb_exec_report_t *reps, size_t nrep, uint8_t *const *payload,
                       const size_t *len, const ex_audit_t *aud, size_t naud,
                       const char *fill_source, int64_t *report_ids, char *errstr,
                       size_t errstr_size);
/* Audit rows that belong to no order change (kill switch, mode set,
 * cancel requests, discrepancies), in one transaction. */
qb_err_t ex_store_audit(ex_store_t *st, const char *account, const ex_audit_t *aud, size_t n,
                        char *errstr, size_t errstr_size);

/* Reports not yet published: calls cb for each, in order. */
qb_err_t ex_store_unpublished(ex_store_t *st,
                              void (*cb)(void *ctx, int64_t id, const char *account,
                                         const void *payload, size_t len),
                              void *ctx, char *errstr, size_t errstr_size);
qb_err_t ex_store_mark_published(ex_store_t *st, const int64_t *ids, size_t n, char *errstr,
                                 size_t errstr_size);
/* created_at of the oldest unpublished report, ms since the epoch (0: none). */
qb_err_t ex_store_unpublished_oldest(ex_store_t *st, int64_t *created_ms, char *errstr,
                                    size_t errstr_size);

/* Stored fills of orders that went to `broker`, oldest first (paper
 * restore): cb per fill. */
qb_err_t ex_store_fills(ex_store_t *st, const char *broker,
                        void (*cb)(void *ctx, const char *account, const char *symbol, int side,
                                   qb_dec_t qty, qb_dec_t price, qb_dec_t commission),
                        void *ctx, char *errstr, size_t errstr_size);
/* Net position per symbol of the fills of orders that went to `broker`
 * (account NULL = every account). *out malloc'd. */
qb_err_t ex_store_positions(ex_store_t *st, const char *broker, const char *account,
                            qb_exec_bposition_t **out, size_t *n, char *errstr,
                            size_t errstr_size);

qb_err_t ex_store_modes(ex_store_t *st, ex_mode_t **out, size_t *n, char *errstr,
                        size_t errstr_size);
qb_err_t ex_store_set_mode(ex_store_t *st, const char *account, const char *strategy_id,
                           int mode, int pct, const char *who, const char *command_id,
                           char *errstr, size_t errstr_size);
qb_err_t ex_store_killed(ex_store_t *st, char (**out)[QB_ACCOUNT_MAX + 1], size_t *n,
                         char *errstr, size_t errstr_size);
qb_err_t ex_store_set_kill(ex_store_t *st, const char *account, int active, const char *event_id,
                           char *errstr, size_t errstr_size);
/* Record a command; *fresh = 0 when it was applied before. */
qb_err_t ex_store_command(ex_store_t *st, const char *command_id, int kind, const char *outcome,
                          int *fresh, char *errstr, size_t errstr_size);
qb_err_t ex_store_discrepancy(ex_store_t *st, const char *account, const char *broker,
                              const char *kind, const char *order_id, const char *symbol,
                              const char *message, char *errstr, size_t errstr_size);
/* Known order ids among `ids` (for broker orders we may not know). */
qb_err_t ex_store_known(ex_store_t *st, const char *id, int *known, char *errstr,
                        size_t errstr_size);

/* ---- order flow (ex_oms.c) --------------------------------------------------- */

/* Build the packed ExecutionReport of one change (malloc'd into *buf). */
qb_err_t ex_report_pack(const qb_exec_order_t *o, const qb_exec_report_t *r, uint8_t **buf,
                        size_t *len);

qb_err_t ex_on_order(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size);
qb_err_t ex_on_risk_event(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size);
qb_err_t ex_on_command(ex_t *ex, const qb_bus_msg_t *m, char *errstr, size_t errstr_size);
/* A bar from md.bars for the paper broker. */
void ex_on_bar(ex_t *ex, const qb_bus_msg_t *m);
/* Apply up to max bars the md.bars reader holds (none waited for); how many. */
size_t ex_bars_drain(ex_t *ex, size_t max);
/* Bring every open order of every broker in line with the broker; full =
 * also positions and broker orders we do not know. */
qb_err_t ex_reconcile(ex_t *ex, int full);
/* Restore the paper broker from the store (fills, open orders). */
qb_err_t ex_paper_restore(ex_t *ex);
/* Send one report of the outbox (row report_id) to exec.reports; once the
 * producer has acknowledged it, ex_mark_published marks it published. A
 * failed send leaves it in the outbox (sent again at the next start). */
void ex_send(ex_t *ex, const char *account, const void *payload, size_t len, const char *trace,
             int64_t report_id);
qb_err_t ex_mark_published(ex_t *ex);
/* ex_outbox.c: at start, send the outbox's unpublished reports that are not
 * on exec.reports already (read back from the oldest one's creation minus a
 * margin); mark the ones found there published. */
qb_err_t ex_outbox_publish(ex_t *ex);
int ex_broker_index(const ex_t *ex, const char *name);

#endif
