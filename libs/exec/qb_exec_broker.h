/* qb_exec_broker.h — the one interface execution talks to every broker
 * through (submit, cancel, replace, order status, open orders, positions,
 * account), the paper broker (libs/portfolio's simulator on live bars) and
 * the Alpaca trading API v2 adapter, plus reconciliation (compare our
 * orders and positions with the broker's and derive what we missed).
 *
 * ---- The interface ---------------------------------------------------------------
 * A broker is an opaque qb_exec_broker_t made by an adapter's constructor
 * and freed by qb_exec_broker_destroy (NULL is a no-op). Orders are known
 * to the broker by OUR order id as the client order id: a submit of an id
 * the broker already has is not a second order — the adapter answers with
 * the existing order (Alpaca: 422 "client_order_id must be unique" is
 * turned into a lookup). So retrying a submit, or re-sending after a crash,
 * never duplicates.
 *
 *   submit   QB_OK + the broker's view of the order (ACCEPTED, or further
 *            when it filled at once); QB_ERR_INVALID when the broker refused
 *            it (a rejection: errstr has the broker's message); retriable
 *            errors (UNAVAILABLE, TIMEOUT) when the outcome is unknown: the
 *            order stays SUBMITTED and reconciliation asks again.
 *   cancel   QB_OK when the cancel was accepted (the CANCELED state comes
 *            through order_status / events); QB_ERR_NOT_FOUND unknown;
 *            QB_ERR_STATE when no longer cancelable (filled).
 *   replace  QB_OK + the NEW order (client id = new->o.id); the old one ends
 *            (Alpaca status "replaced"); QB_ERR_NOT_SUPPORTED-like
 *            QB_ERR_STATE when the adapter cannot replace in place (the
 *            caller then cancels and submits).
 *   order_status  by client order id; QB_ERR_NOT_FOUND when unknown.
 *   open_orders   every open order the broker holds (malloc'd array).
 *   positions     per symbol, signed qty (malloc'd array); `account` is our
 *                 account (the paper broker keeps one book per account; an
 *                 Alpaca connection is one broker account: see README).
 *   account       cash, equity, buying power.
 *
 * ---- Events ------------------------------------------------------------------------
 * The paper broker produces fills itself when bars arrive
 * (qb_exec_paper_on_bar -> qb_exec_event_t list). Brokers that are polled
 * (Alpaca) report cumulative state; qb_exec_recon_order turns a broker view
 * into the events we missed (fill ids derived from the cumulative quantity,
 * qb_exec_fill_id_cum), which is also how fills missed while down are
 * adopted after a restart.
 *
 * Ownership: arrays returned through `out` are malloc'd, the caller frees
 * them. Adapters are not thread-safe. */
#ifndef QB_EXEC_BROKER_H
#define QB_EXEC_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_types.h"
#include "exec/qb_exec.h"
#include "portfolio/qb_portfolio.h"
#include "portfolio/qb_sim.h"

/* The broker's view of one order. */
typedef struct qb_exec_border_s {
    char client_order_id[QB_EXEC_ID_MAX + 1];
    char broker_order_id[QB_EXEC_ID_MAX + 1];
    qb_symbol_t symbol;
    qb_side_t side;
    qb_order_type_t type;
    qb_tif_t tif;
    qb_order_status_t status;     /* mapped to our states */
    qb_dec_t qty, filled_qty, filled_avg_price, limit_price, stop_price;
    qb_time_t updated_ts;
    int replaced;                 /* ended because it was replaced */
    char raw_status[32];          /* the broker's own word */
} qb_exec_border_t;

typedef struct qb_exec_bposition_s {
    qb_symbol_t symbol;
    qb_dec_t qty;       /* signed */
    qb_dec_t avg_price;
} qb_exec_bposition_t;

typedef struct qb_exec_baccount_s {
    qb_dec_t cash, equity, buying_power;
} qb_exec_baccount_t;

typedef struct qb_exec_broker_ops_s {
    const char *name;
    qb_err_t (*submit)(void *impl, const qb_exec_order_t *o, qb_exec_border_t *out,
                       char *errstr, size_t errstr_size);
    qb_err_t (*cancel)(void *impl, const qb_exec_order_t *o, char *errstr, size_t errstr_size);
    qb_err_t (*replace)(void *impl, const qb_exec_order_t *old, const qb_exec_order_t *nw,
                        qb_exec_border_t *out, char *errstr, size_t errstr_size);
    qb_err_t (*order_status)(void *impl, const char *client_order_id, qb_exec_border_t *out,
                             char *errstr, size_t errstr_size);
    qb_err_t (*open_orders)(void *impl, qb_exec_border_t **out, size_t *n, char *errstr,
                            size_t errstr_size);
    qb_err_t (*positions)(void *impl, const char *account, qb_exec_bposition_t **out, size_t *n,
                          char *errstr, size_t errstr_size);
    qb_err_t (*account)(void *impl, const char *account, qb_exec_baccount_t *out, char *errstr,
                        size_t errstr_size);
    void (*destroy)(void *impl);
} qb_exec_broker_ops_t;

typedef struct qb_exec_broker_s qb_exec_broker_t;

/* Wrap an implementation (ops is borrowed: static). NULL on OOM. */
qb_exec_broker_t *qb_exec_broker_wrap(const qb_exec_broker_ops_t *ops, void *impl);
void qb_exec_broker_destroy(qb_exec_broker_t *b);
const char *qb_exec_broker_name(const qb_exec_broker_t *b);
void *qb_exec_broker_impl(const qb_exec_broker_t *b);

qb_err_t qb_exec_broker_submit(qb_exec_broker_t *b, const qb_exec_order_t *o,
                               qb_exec_border_t *out, char *errstr, size_t errstr_size);
qb_err_t qb_exec_broker_cancel(qb_exec_broker_t *b, const qb_exec_order_t *o, char *errstr,
                               size_t errstr_size);
qb_err_t qb_exec_broker_replace(qb_exec_broker_t *b, const qb_exec_order_t *old,
                                const qb_exec_order_t *nw, qb_exec_border_t *out, char *errstr,
                                size_t errstr_size);
qb_err_t qb_exec_broker_order_status(qb_exec_broker_t *b, const char *client_order_id,
                                     qb_exec_border_t *out, char *errstr, size_t errstr_size);
qb_err_t qb_exec_broker_open_orders(qb_exec_broker_t *b, qb_exec_border_t **out, size_t *n,
                                    char *errstr, size_t errstr_size);
qb_err_t qb_exec_broker_positions(qb_exec_broker_t *b, const char *account,
                                  qb_exec_bposition_t **out, size_t *n, char *errstr,
                                  size_t errstr_size);
qb_err_t qb_exec_broker_account(qb_exec_broker_t *b, const char *account,
                                qb_exec_baccount_t *out, char *errstr, size_t errstr_size);

/* ======================================================================== */
/* Paper broker                                                              */
/* ======================================================================== */

/* One simulator + portfolio per account (qb_sim.h: the fill, slippage,
 * partial-fill and commission models the backtest engine uses, so the
 * same orders against the same bars fill alike: tests/unit/test_exec.c
 * compares with qb_bt_run_signals). An order is matched from the NEXT bar
 * of its symbol given to qb_exec_paper_on_bar (NEXT_OPEN: at its open)
 * after its not_before (qb_exec_order_t): an order decided on a bar this
 * broker has not been given yet is held (ACCEPTED, listed as open,
 * cancelable) until that bar has been given, so a bar feed that lags the
 * order flow never fills an order inside the bar that caused it.
 * Fill ids: qb_exec_fill_id_cum (the order's cumulative qty after the
 * fill), so a restarted paper broker that re-adopts an order with its
 * stored cum continues the same id sequence. */
typedef struct qb_exec_paper_config_s {
    qb_sim_config_t sim;         /* qb_sim_config_default + overrides */
    qb_portfolio_config_t pf;    /* initial cash, margins, allow_short */
} qb_exec_paper_config_t;

void qb_exec_paper_config_default(qb_exec_paper_config_t *cfg);

/* The paper broker ("sim"). QB_ERR_INVALID for a bad config. */
qb_err_t qb_exec_paper_new(const qb_exec_paper_config_t *cfg, qb_exec_broker_t **out,
                           char *errstr, size_t errstr_size);

/* Restore after a restart: book a stored fill into the account's portfolio
 * (no order involved). */
qb_err_t qb_exec_paper_restore_fill(qb_exec_broker_t *b, const char *account,
                                    const char *symbol, qb_side_t side, qb_dec_t qty,
                                    qb_dec_t price, qb_dec_t commission, char *errstr,
                                    size_t errstr_size);
/* Restore an open order (its remaining qty works again; fills continue
 * from o->o.filled_qty). */
qb_err_t qb_exec_paper_restore_order(qb_exec_broker_t *b, const qb_exec_order_t *o,
                                     char *errstr, size_t errstr_size);

/* The time of the newest bar of symbol given to the paper broker (whether
 * an account trades the symbol yet or not); 0 when none. An order is
 * matched only against bars after it anyway; qb-execution stores it as the
 * order's not_before, so a restored order does the same when the bars are
 * read again after a restart. */
qb_time_t qb_exec_paper_last_bar(qb_exec_broker_t *b, const char *symbol);

/* A bar of a symbol (every account's sim that knows the symbol sees it;
 * a bar not after the symbol's last is ignored). The events it causes are
 * appended to *evs (realloc'd; *n updated); the caller frees *evs. */
qb_err_t qb_exec_paper_on_bar(qb_exec_broker_t *b, const qb_bar_t *bar, qb_exec_event_t **evs,
                              size_t *n, char *errstr, size_t errstr_size);

/* Cancel every working order of account ("" = all accounts); their CANCELED
 * events (reason KILL_SWITCH) are appended to *evs. Returns how many. */
size_t qb_exec_paper_cancel_all(qb_exec_broker_t *b, const char *account, qb_time_t ts,
                                qb_exec_event_t **evs, size_t *n);

/* Events caused by the last submit/cancel (fills in CLOSE timing, IOC/FOK
 * cancels, refusals); moved into *evs. */
void qb_exec_paper_take_events(qb_exec_broker_t *b, qb_exec_event_t **evs, size_t *n);

/* ======================================================================== */
/* Alpaca trading API v2                                                     */
/* ======================================================================== */

#define QB_EXEC_ALPACA_PAPER_URL "https://paper-api.alpaca.markets"
#define QB_EXEC_ALPACA_LIVE_URL "https://api.alpaca.markets"

typedef struct qb_exec_alpaca_config_s {
    const char *name;        /* adapter name, e.g. "alpaca-paper" (plain word) */
    const char *base_url;    /* paper or live URL (or a test server) */
    const char *key_id;      /* APCA-API-KEY-ID (secret: never logged) */
    const char *secret_key;  /* APCA-API-SECRET-KEY (secret) */
    long timeout_ms;         /* per attempt; default 10000 */
    int max_attempts;        /* default 5 */
    int64_t backoff_base_ms; /* default 200 */
    int64_t backoff_max_ms;  /* default 5000 */
    int64_t retry_after_max_ms; /* default 30000 */
    double rate_per_sec;     /* requests/s; 0 = 3 (Alpaca allows 200/min); < 0 = none */
    const volatile sig_atomic_t *running; /* NULL, or a run flag (qb_svc_flag): rate-limit
                                             and retry waits stop when it becomes 0 */
} qb_exec_alpaca_config_t;

/* Requests (JSON over HTTPS, libcurl; numbers as decimal strings):
 *   submit        POST   /v2/orders {symbol, qty, side, type, time_in_force,
 *                        limit_price, stop_price, client_order_id}
 *   cancel        DELETE /v2/orders/{broker id}   (204; 422 = not cancelable)
 *   replace       PATCH  /v2/orders/{broker id} {qty, limit_price, stop_price,
 *                        time_in_force, client_order_id}
 *   order_status  GET    /v2/orders:by_client_order_id?client_order_id=ID
 *   open_orders   GET    /v2/orders?status=open&limit=500&direction=asc
 *   positions     GET    /v2/positions
 *   account       GET    /v2/account
 * Retries: network errors, 408, 429 and 5xx, with exponential back-off and
 * full jitter, Retry-After honoured (capped), a token bucket; a POST is
 * retried with the SAME client_order_id, and a 422 "client_order_id must
 * be unique" on a retry (or after a crash) means the first attempt got
 * through: the order is looked up and returned. 4xx other than 404, 408,
 * 422-duplicate and 429 are rejections (QB_ERR_INVALID, the broker's
 * message). Keys go only in headers and are redacted from every message.
 * Status mapping: new, accepted, pending_new, accepted_for_bidding,
 * pending_cancel, pending_replace, calculated, stopped, suspended,
 * done_for_day -> ACCEPTED (PARTIALLY_FILLED when filled_qty > 0);
 * partially_filled; filled; canceled; expired; rejected; replaced ->
 * CANCELED with replaced = 1. */
qb_err_t qb_exec_alpaca_new(const qb_exec_alpaca_config_t *cfg, qb_exec_broker_t **out,
                            char *errstr, size_t errstr_size);

/* Parse one Alpaca order object (cJSON text) into *out. For tests. */
qb_err_t qb_exec_alpaca_parse_order(const char *json, qb_exec_border_t *out, char *errstr,
                                    size_t errstr_size);

/* ======================================================================== */
/* Reconciliation                                                            */
/* ======================================================================== */

typedef enum qb_exec_recon_action_e {
    QB_EXEC_RECON_NONE = 0,     /* in line (or events below bring it in line) */
    QB_EXEC_RECON_RESUBMIT = 1, /* ours was never acknowledged and the broker
                                   does not know it: send it (same client id) */
    QB_EXEC_RECON_DISCREPANCY = 2 /* something does not match: see note */
} qb_exec_recon_action_t;

/* Compare our order with the broker's view (`b` NULL = the broker does not
 * know the client order id) and write the events that bring ours in line
 * into ev[0..3] (returns how many), in order: ACCEPTED (ours SUBMITTED and
 * the broker has it), one FILL for the quantity we missed (qty = broker
 * filled - ours, price = (broker avg x broker filled - our notional) / qty,
 * half-even; id qb_exec_fill_id_cum), then the broker's final state
 * (CANCELED — reason REPLACED when replaced —, EXPIRED, REJECTED). An order
 * the broker no longer knows: NEW/SUBMITTED -> action RESUBMIT; ACCEPTED /
 * PARTIALLY_FILLED -> CANCELED with reason BROKER_UNKNOWN and a
 * DISCREPANCY. The broker reporting LESS filled than we have is a
 * DISCREPANCY (nothing changes). *action and note (a sentence) say what. */
size_t qb_exec_recon_order(const qb_exec_order_t *ours, const qb_exec_border_t *b, qb_time_t now,
                           qb_exec_event_t ev[4], qb_exec_recon_action_t *action, char *note,
                           size_t note_size);

/* One position difference. */
typedef struct qb_exec_pos_diff_s {
    qb_symbol_t symbol;
    qb_dec_t ours, broker;
} qb_exec_pos_diff_t;

/* Symbols whose signed quantities differ (a symbol missing on one side
 * counts as 0). *diffs malloc'd (caller frees), *n their count. */
qb_err_t qb_exec_recon_positions(const qb_exec_bposition_t *ours, size_t nours,
                                 const qb_exec_bposition_t *broker, size_t nbroker,
                                 qb_exec_pos_diff_t **diffs, size_t *n);

#endif
