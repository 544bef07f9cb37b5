/* rk.h — qb-risk's modules, shared by its files.
 *
 *   main.c      config, the consumer (signals, orders.intents, exec.reports,
 *               control) and the md.bars reader, accounts in memory,
 *               decisions, fills, post-trade rules, flush cadence, outbox.
 *   rk_store.c  PostgreSQL: loading an account, the batched writes, the
 *               durable input offsets, limits and control commands.
 *   rk_stats.c  price history of symbols from md.bars (ATR, volatility,
 *               correlations) and the portfolio risk snapshot.
 * The rules themselves live in libs/risk (pure) and libs/portfolio. */
#ifndef QB_RISK_RK_H
#define QB_RISK_RK_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_types.h"
#include "portfolio/qb_portfolio.h"
#include "qb/v1/control.pb-c.h"
#include "qb/v1/risk.pb-c.h"
#include "risk/qb_risk_check.h"
#include "risk/qb_risk_limits.h"
#include "risk/qb_risk_post.h"
#include "store/qb_store.h"

#define RK_FILL_RING 4096  /* fill ids remembered per account (duplicates) */
#define RK_DEC_RING 4096   /* decision ids remembered per account */

/* An approved order still working (no final report yet). */
typedef struct rk_open_s {
    char id[QB_UUID_STRLEN];
    uint32_t sym;       /* portfolio symbol id */
    qb_side_t side;
    qb_dec_t qty;       /* ordered */
    qb_dec_t leaves;    /* still working */
    qb_dec_t reserved;  /* buying power held (for its leaves) */
} rk_open_t;

/* One account held by this replica. */
typedef struct rk_account_s {
    char name[QB_ACCOUNT_MAX + 1];
    int32_t partition;          /* of the account-keyed topics */
    qb_portfolio_t *pf;
    qb_risk_limits_t limits;
    qb_risk_status_t status;
    qb_time_t paused_until;
    char status_text[256];
    int64_t resumes;            /* RESUMEs applied to pnl (rebased) */
    int64_t flags_seq;          /* risk.accounts.change_seq last read */
    int flags_dirty;            /* status changed here, not yet written */
    qb_risk_pnl_t pnl;
    qb_dec_t initial_cash;
    int dirty;                  /* books changed since the last write */
    int mark_dirty;             /* only marks (md.bars) changed: written at the mark cadence */
    int state_new;              /* no account_state row yet */
    rk_open_t *open;
    size_t nopen, capopen;
    qb_time_t *rate;            /* approval times, ring */
    size_t rate_head, rate_n, rate_cap;
    uint64_t fill_ring[RK_FILL_RING];
    size_t fill_n;
    uint64_t dec_ring[RK_DEC_RING];
    size_t dec_n;
    qb_time_t *mark_ts;         /* per symbol id: close time of its mark */
    size_t nmark_ts;
    uint8_t *pos_dirty;         /* per symbol id (nmark_ts of them): fill or mark not written */
    int pos_clean;              /* every position written once: later writes take only
                                 * the pos_dirty ones (0 after a load: all) */
    struct rk_account_s *next;  /* hash chain */
} rk_account_t;

uint64_t rk_hash(const char *s);
int rk_ring_has(const uint64_t *ring, size_t n, size_t cap, uint64_t h);
void rk_ring_add(uint64_t *ring, size_t *n, size_t cap, uint64_t h);

/* ---- store (rk_store.c) ---------------------------------------------------- */

/* Load an account: limits, flags, P&L state, the books (fills replayed),
 * marks, open orders, recent approvals, recent fill and decision ids.
 * *unpublished: decisions not yet acknowledged (a crash). */
qb_err_t rk_store_load_account(qb_store_t *s, rk_account_t *a, qb_dec_t default_cash,
                               const qb_portfolio_config_t *pcfg, qb_time_t now,
                               int64_t *unpublished, char *errstr, size_t errstr_size);
/* Reload limits and flags (status, paused_until, resumes, change_seq). */
qb_err_t rk_store_load_limits(qb_store_t *s, rk_account_t *a, char *errstr, size_t errstr_size);
qb_err_t rk_store_load_flags(qb_store_t *s, const char *account, qb_risk_status_t *status,
                             qb_time_t *until, int64_t *resumes, int64_t *seq, char *text,
                             size_t text_size, char *errstr, size_t errstr_size);
/* max(change_seq) of risk.accounts. */
qb_err_t rk_store_change_seq(qb_store_t *s, int64_t *seq, char *errstr, size_t errstr_size);
/* next_offset stored for (topic, partition); -1 when none. */
qb_err_t rk_store_offset(qb_store_t *s, const char *topic, int32_t partition, int64_t *next,
                         char *errstr, size_t errstr_size);

/* The batch: rows staged by the handlers, written in one transaction. */
typedef struct rk_batch_s rk_batch_t;
rk_batch_t *rk_batch_new(void);
void rk_batch_free(rk_batch_t *b);
size_t rk_batch_rows(const rk_batch_t *b);

typedef struct rk_decision_s {
    char order_id[QB_UUID_STRLEN];
    char account[QB_ACCOUNT_MAX + 1];
    char cause_id[128];
    int cause_kind;
    char strategy_id[128];
    char symbol[QB_SYMBOL_MAX + 1];
    int side;
    qb_dec_t qty, price, reserved;
    int approved;
    int reason_code;
    char reason_text[320];
    qb_time_t decided_at;
    const char *topic;          /* "orders" or "exec.reports" (registry base) */
    const char *msg_type;
    uint8_t *msg;               /* packed protobuf, malloc'd (owned by the batch) */
    size_t len;
    qb_time_t t_in;             /* monotonic ns when the input was received */
    int64_t origin_ns;          /* the cause's qb-origin-ns, sent with the decision */
} rk_decision_t;

qb_err_t rk_batch_decision(rk_batch_t *b, const rk_decision_t *d);
qb_err_t rk_batch_fill(rk_batch_t *b, const char *account, const char *fill_id,
                       const char *order_id, const char *symbol, int side, qb_dec_t qty,
                       qb_dec_t price, qb_dec_t comm, qb_time_t ts);
qb_err_t rk_batch_order_update(rk_batch_t *b, const char *order_id, qb_dec_t leaves,
                               qb_dec_t reserved, int open);
/* A RiskEvent (packed) to store and publish. */
qb_err_t rk_batch_event(rk_batch_t *b, const char *event_id, const char *account, int kind,
                        int severity, int limit, qb_dec_t observed, qb_dec_t limit_value,
                        const char *message, const char *command_id, qb_time_t at,
                        const uint8_t *msg, size_t len);
qb_err_t rk_batch_offset(rk_batch_t *b, const char *topic, int32_t partition, int64_t next);
/* The applied next offset staged for (topic, partition), -1 when none. */
int64_t rk_batch_offset_of(const rk_batch_t *b, const char *topic, int32_t partition);

/* Write everything staged plus the state of `dirty` accounts in ONE
 * transaction. On error nothing is written and the batch is kept. */
qb_err_t rk_batch_write(rk_batch_t *b, qb_store_t *s, rk_account_t *const *dirty, size_t ndirty,
                        char *errstr, size_t errstr_size);

/* After the write: each staged decision/event (topic, key, type, bytes),
 * for publishing; then rk_batch_done empties the batch. */
size_t rk_batch_ndecisions(const rk_batch_t *b);
const rk_decision_t *rk_batch_decision_at(const rk_batch_t *b, size_t i);
size_t rk_batch_nevents(const rk_batch_t *b);
void rk_batch_event_at(const rk_batch_t *b, size_t i, const char **account, const uint8_t **msg,
                       size_t *len);
const char *rk_batch_event_id(const rk_batch_t *b, size_t i);
void rk_batch_done(rk_batch_t *b);
/* Mark decisions and events acknowledged by the bus: PostgreSQL uuid array
 * literals ("{id,id}"). */
qb_err_t rk_store_mark(qb_store_t *s, const char *orders, const char *events, char *errstr,
                       size_t errstr_size);
int rk_batch_written(const rk_batch_t *b);

/* Unpublished decisions of an account (a crash left them): ids, topics,
 * messages; account NULL: of every account, without the messages. The
 * arrays are malloc'd; rk_unpub_free. */
typedef struct rk_unpub_s {
    char id[QB_UUID_STRLEN];
    char topic[32];
    uint8_t *msg;
    size_t len;
    int seen;
} rk_unpub_t;
qb_err_t rk_store_unpublished(qb_store_t *s, const char *account, rk_unpub_t **out, size_t *n,
                              char *errstr, size_t errstr_size);
void rk_unpub_free(rk_unpub_t *v, size_t n);
qb_err_t rk_store_mark_published(qb_store_t *s, const rk_unpub_t *v, size_t n, char *errstr,
                                 size_t errstr_size);
/* Events stored but not published (a crash): re-published at start. */
qb_err_t rk_store_unpublished_events(qb_store_t *s, rk_unpub_t **out, size_t *n, char *errstr,
                                     size_t errstr_size);
qb_err_t rk_store_mark_events(qb_store_t *s, const rk_unpub_t *v, size_t n, char *errstr,
                              size_t errstr_size);

/* Control. SET_LIMITS: validated against the hard maxima first; *refused
 * = 1 (with the reason in msg) when any value is refused: then only audit
 * rows are written. KILL_SWITCH / RESUME change risk.accounts. Each
 * applies a command id once (*dup = 1 when it was applied before). */
qb_err_t rk_store_set_limits(qb_store_t *s, const Qb__V1__Command *cmd, int *dup, int *refused,
                             char *msg, size_t msg_size, char *errstr, size_t errstr_size);
qb_err_t rk_store_set_status(qb_store_t *s, const Qb__V1__Command *cmd, const char *account,
                             qb_risk_status_t status, int resume, int *dup,
                             qb_risk_status_t *was, char *errstr, size_t errstr_size);
/* Store a snapshot's figures (JSON). */
qb_err_t rk_store_snapshot(qb_store_t *s, const char *account, qb_time_t at, const char *json,
                           char *errstr, size_t errstr_size);

/* ---- stats (rk_stats.c) ---------------------------------------------------- */

typedef struct rk_stats_s rk_stats_t;
rk_stats_t *rk_stats_new(const char *timeframe, int bars, int refresh_s);
void rk_stats_free(rk_stats_t *st);
/* ATR(14) and annualised volatility of the symbol's close-to-close returns
 * (0 / NAN when unknown). Loads md.bars history on first use and when older
 * than the refresh period. */
qb_err_t rk_stats_symbol(rk_stats_t *st, qb_store_t *s, const char *symbol, qb_dec_t *atr,
                         double *ann_vol, char *errstr, size_t errstr_size);
/* Rolling correlation of two symbols' returns on their common periods
 * (NAN unknown); uses cached history only (load it first). */
double rk_stats_corr(rk_stats_t *st, qb_store_t *s, const char *a, const char *b);
/* Sector and asset class of a symbol from md.assets (cached; "" unknown). */
void rk_stats_meta(rk_stats_t *st, qb_store_t *s, const char *symbol, const char **sector,
                   const char **asset_class);
/* The portfolio risk snapshot of an account into pb (strings and arrays
 * malloc'd: rk_snapshot_clear) and its JSON (malloc'd). */
qb_err_t rk_stats_snapshot(rk_stats_t *st, qb_store_t *s, const qb_portfolio_t *pf,
                           const char *benchmark, int mc_sims, Qb__V1__RiskEvent__Snapshot *pb,
                           char **json, char *errstr, size_t errstr_size);
void rk_snapshot_clear(Qb__V1__RiskEvent__Snapshot *pb);

#endif
