/* qb_exec.h — order management for qb-execution: the execution order (an
 * order plus everything execution must remember about it), the state
 * machine every change goes through, the report each change produces,
 * bracket and OCO emulation, staged-rollout sizing, a book of open orders,
 * and the audit hash chain. Pure logic: no Kafka, no PostgreSQL, no clock
 * (times are passed in), so all of it is unit-tested (tests/unit/test_exec.c).
 *
 * ---- State machine -----------------------------------------------------------
 * An order only moves by qb_exec_order_apply(order, event): the event names
 * what happened (SUBMITTED, ACCEPTED, FILL, CANCELED, REJECTED, EXPIRED); the
 * target status follows from it (a FILL gives PARTIALLY_FILLED, or FILLED
 * when the cumulative quantity reaches the order's); the move must be legal
 * by core's qb_order_transition_ok:
 *   NEW              -> SUBMITTED | REJECTED | CANCELED
 *   SUBMITTED        -> ACCEPTED | REJECTED | CANCELED | FILLED |
 *                       PARTIALLY_FILLED | EXPIRED
 *   ACCEPTED         -> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED | REJECTED
 *   PARTIALLY_FILLED -> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
 *   FILLED, CANCELED, REJECTED, EXPIRED: final.
 * An illegal move is refused with QB_ERR_STATE and a message naming the
 * order, both states and the event; the order is left unchanged (the caller
 * logs it). A fill must have qty > 0, price > 0 and not overfill the order
 * (QB_ERR_INVALID). A legal move updates status, cum_qty, notional,
 * avg_price (notional / cum, half-even), commission, broker id, the report
 * sequence (1, 2, 3 ... per order) and fills *rep with the ExecutionReport
 * fields of the change (leaves = qty - cum while open, 0 once final).
 *
 * ---- Brackets and OCO (emulated) ---------------------------------------------
 * A bracket is an ENTRY order carrying take_profit and/or stop_loss prices.
 * When the entry is final with cum_qty > 0 (FILLED, or CANCELED / EXPIRED
 * after partial fills) qb_exec_bracket_legs makes its exit legs, for the
 * filled quantity, on the opposite side, GTC: TAKE_PROFIT = LIMIT at
 * take_profit, STOP_LOSS = STOP at stop_loss; ids UUID v5 of
 * (entry id "|tp" / "|sl") in QB_EXEC_NS, so a replay makes the same legs;
 * parent = the entry; both legs share oco_group = the entry's id. OCO: the
 * first fill of an order of a group cancels every other open order of the
 * group (qb_exec_oco_sibling; reason OCO_SIBLING_FILLED); the filled order's
 * rest keeps working. Emulated for every broker, so paper and live behave
 * alike.
 *
 * ---- Staged rollout ------------------------------------------------------------
 * A LIVE order of a strategy at rollout p% (1..100) is sent with
 * qb_exec_rollout_qty(qty, p): qty x p / 100 rounded down to whole units
 * when qty is whole, else to 1e-8. 0 means the order is rejected.
 *
 * ---- Audit hash chain ------------------------------------------------------------
 * Every order event is one audit row: (account, seq, at, order_id, event,
 * detail). Chains are PER ACCOUNT: seq counts 1, 2, 3 ... within the account
 * and hash = SHA-256 hex over prev_hash and the row (qb_exec_audit_hash: each
 * field length-prefixed, so no two rows serialise alike); the first row's
 * prev_hash is QB_EXEC_AUDIT_GENESIS. Per account because one account's
 * orders are handled in order by one owner, so appends need only a
 * per-account lock; a deleted row shows up as a seq gap, a changed one as a
 * hash mismatch, a re-linked one as a prev_hash mismatch
 * (qb_exec_audit_check).
 *
 * Ownership: plain value structs (copy with =); the book owns copies of the
 * orders put in it and frees them in qb_exec_book_destroy (NULL is a no-op).
 * errstr may be NULL. Not thread-safe. */
#ifndef QB_EXEC_H
#define QB_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "core/qb_uuid.h"

/* Namespace of the ids execution derives (bracket legs, replacements). */
#define QB_EXEC_NS "c3a1f0d2-6b7e-4e59-9a1d-0f4e2b7c8d61"
#define QB_EXEC_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

#define QB_EXEC_ID_MAX 63     /* strategy, cause, group, broker ids */
#define QB_EXEC_TEXT_MAX 255  /* reason texts */

/* proto OrderLeg / TradingMode / OrderCause / ReasonCode numbers, the ones
 * execution uses itself (the proto enums are the reference). */
enum {
    QB_EXEC_LEG_SINGLE = 1, QB_EXEC_LEG_ENTRY = 2, QB_EXEC_LEG_TAKE_PROFIT = 3,
    QB_EXEC_LEG_STOP_LOSS = 4
};
enum { QB_EXEC_MODE_PAPER = 1, QB_EXEC_MODE_LIVE = 2, QB_EXEC_MODE_BACKTEST = 3 };
enum { QB_EXEC_CAUSE_BRACKET = 3, QB_EXEC_CAUSE_REPLACE = 4 };
enum {
    QB_EXEC_REASON_KILL_SWITCH = 3, QB_EXEC_REASON_INSUFFICIENT_FUNDS = 4,
    QB_EXEC_REASON_INVALID_ORDER = 5, QB_EXEC_REASON_BROKER_REJECT = 8,
    QB_EXEC_REASON_DUPLICATE = 9, QB_EXEC_REASON_USER_CANCELED = 10,
    QB_EXEC_REASON_REPLACED = 11, QB_EXEC_REASON_OCO_SIBLING_FILLED = 12,
    QB_EXEC_REASON_TIME_IN_FORCE = 13, QB_EXEC_REASON_INTERNAL_ERROR = 15,
    QB_EXEC_REASON_MODE_NOT_ALLOWED = 32, QB_EXEC_REASON_BROKER_UNKNOWN = 33
};

/* One order as execution keeps it. o.id is the deterministic id from
 * qb-risk, sent to the broker as the client order id. */
typedef struct qb_exec_order_s {
    qb_order_t o;                  /* id, account, symbol, side, type, tif, qty,
                                      prices, filled_qty (= cum), avg_fill_price,
                                      status, created_ts, updated_ts */
    char strategy_id[QB_EXEC_ID_MAX + 1];
    char cause_id[QB_EXEC_ID_MAX + 1];
    int cause_kind;                /* proto OrderCause */
    int leg;                       /* proto OrderLeg (0 = SINGLE) */
    int mode;                      /* proto TradingMode */
    char parent_id[QB_UUID_STRLEN];     /* exit legs: the entry */
    char oco_group[QB_EXEC_ID_MAX + 1]; /* "" = none */
    char replaces_id[QB_UUID_STRLEN];   /* a replacement: the order it replaces */
    char client_tag[65];
    char broker[16];               /* adapter name the order went to */
    char broker_order_id[QB_EXEC_ID_MAX + 1];
    qb_dec_t take_profit, stop_loss; /* bracket entry; 0 = none */
    qb_dec_t requested_qty;        /* before rollout scaling */
    qb_dec_t reference_price;
    qb_time_t not_before;          /* Order.not_before: match only bars after it
                                      (paper simulator); 0 = none */
    qb_dec_t notional;             /* sum of fill qty x price (half-even each) */
    qb_dec_t commission;           /* sum of fill commissions */
    uint64_t seq;                  /* reports so far */
    int legs_placed;               /* bracket entry: exit legs made */
    int reason_code;               /* of the final state */
    char reason_text[QB_EXEC_TEXT_MAX + 1];
    /* in memory only (not part of the state machine): */
    int cancel_reason;             /* reason of a cancel we asked for, for the
                                      CANCELED state the broker reports later */
    char trace_id[40];             /* of the Order message, for its reports */
} qb_exec_order_t;

typedef enum qb_exec_ev_kind_e {
    QB_EXEC_EV_SUBMITTED = 1, /* sent to the broker */
    QB_EXEC_EV_ACCEPTED = 2,  /* acknowledged, working */
    QB_EXEC_EV_FILL = 3,      /* an execution */
    QB_EXEC_EV_CANCELED = 4,
    QB_EXEC_EV_REJECTED = 5,
    QB_EXEC_EV_EXPIRED = 6
} qb_exec_ev_kind_t;

/* "SUBMITTED" ... "EXPIRED"; "UNKNOWN". */
const char *qb_exec_ev_kind_name(qb_exec_ev_kind_t k);

/* Something that happened to one order (from a broker, reconciliation or
 * execution itself). */
typedef struct qb_exec_event_s {
    qb_exec_ev_kind_t kind;
    char order_id[QB_UUID_STRLEN];
    char broker_order_id[QB_EXEC_ID_MAX + 1]; /* "" = unchanged */
    char fill_id[QB_FILL_ID_MAX + 1];         /* FILL: unique per order */
    qb_dec_t qty, price, commission;          /* FILL */
    qb_time_t ts;                             /* when it happened */
    int reason_code;                          /* CANCELED/REJECTED/EXPIRED */
    char reason_text[QB_EXEC_TEXT_MAX + 1];
} qb_exec_event_t;

/* The ExecutionReport fields of one change. */
typedef struct qb_exec_report_s {
    qb_order_status_t status, prev_status; /* prev 0 for the first report */
    qb_dec_t fill_qty, fill_price, commission; /* 0 unless a fill */
    qb_dec_t cum_qty, avg_price, leaves_qty;
    char fill_id[QB_FILL_ID_MAX + 1];
    int reason_code;
    char reason_text[QB_EXEC_TEXT_MAX + 1];
    uint64_t sequence;
    qb_time_t ts;
} qb_exec_report_t;

/* The first report of an order: status NEW (prev 0), sequence 1. The order
 * must be NEW with seq 0; sets seq = 1. */
qb_err_t qb_exec_order_created(qb_exec_order_t *o, qb_time_t ts, qb_exec_report_t *rep);

/* Apply one event (see the state machine above). QB_OK with *rep filled;
 * QB_ERR_STATE for an illegal move, QB_ERR_INVALID for a bad fill or an
 * event for another order; *o unchanged on error. */
qb_err_t qb_exec_order_apply(qb_exec_order_t *o, const qb_exec_event_t *ev,
                             qb_exec_report_t *rep, char *errstr, size_t errstr_size);

/* QB_OK or QB_ERR_INVALID with a message naming the field: id a UUID,
 * account, symbol, side, type, tif, qty > 0, the prices the type needs (> 0)
 * and no others, bracket prices >= 0. */
qb_err_t qb_exec_order_validate(const qb_exec_order_t *o, char *errstr, size_t errstr_size);

/* 1 when the order is still working at the broker (SUBMITTED, ACCEPTED,
 * PARTIALLY_FILLED); NEW is not (not sent). */
int qb_exec_order_is_open(const qb_exec_order_t *o);

/* Bracket legs of a final entry (above) into out[0..1]: how many (0 when the
 * entry is not a bracket entry, not final, filled nothing, or its legs were
 * placed already). Sets nothing in the entry: the caller marks legs_placed. */
size_t qb_exec_bracket_legs(const qb_exec_order_t *entry, qb_time_t ts, qb_exec_order_t out[2]);

/* 1 when `other` must be canceled because `filled` (which just filled) is
 * in the same OCO group: same account and group, other id, other still
 * open or NEW. */
int qb_exec_oco_sibling(const qb_exec_order_t *filled, const qb_exec_order_t *other);

/* The id of the order that replaces `old_id` on command `command_id`. */
void qb_exec_replace_id(const char *command_id, char out[QB_UUID_STRLEN]);

/* qty x pct / 100 rounded down (whole units when qty is whole, else 1e-8);
 * pct outside 1..100 is taken as 100. */
qb_dec_t qb_exec_rollout_qty(qb_dec_t qty, int pct);

/* Fill id for a fill derived from a cumulative quantity (brokers that
 * report only cumulative fills, reconciliation): "<order id>/<cum raw>",
 * cum the order's cumulative quantity after the fill in 1e-8 units. The
 * same broker state always gives the same id. */
void qb_exec_fill_id_cum(const char *order_id, qb_dec_t cum_after, char out[QB_FILL_ID_MAX + 1]);

/* ---- book of orders ------------------------------------------------------------ */

typedef struct qb_exec_book_s qb_exec_book_t;

qb_exec_book_t *qb_exec_book_new(void);
void qb_exec_book_destroy(qb_exec_book_t *b);
/* Insert or replace (copied); the stored copy, NULL on out of memory. */
qb_exec_order_t *qb_exec_book_put(qb_exec_book_t *b, const qb_exec_order_t *o);
qb_exec_order_t *qb_exec_book_get(const qb_exec_book_t *b, const char *order_id);
/* Remove (no-op when absent). */
void qb_exec_book_remove(qb_exec_book_t *b, const char *order_id);
size_t qb_exec_book_count(const qb_exec_book_t *b);
/* Every order, in no particular order; the callback must not add or remove. */
void qb_exec_book_each(const qb_exec_book_t *b, void (*cb)(qb_exec_order_t *o, void *ctx),
                       void *ctx);
/* Copy of the pointers (malloc'd, caller frees the array) so the caller may
 * change the book while walking it. NULL with *n = 0 when empty or OOM. */
qb_exec_order_t **qb_exec_book_list(const qb_exec_book_t *b, size_t *n);

/* ---- audit ------------------------------------------------------------------------ */

/* hash = hex(SHA-256(netstring(prev) netstring(account) netstring(seq)
 * netstring(at) netstring(order_id) netstring(event) netstring(detail))),
 * netstring(x) = "<len>:" x ",". out: 64 hex digits + NUL. */
void qb_exec_audit_hash(const char *prev_hash, const char *account, int64_t seq, int64_t at_ns,
                        const char *order_id, const char *event, const char *detail,
                        char out[65]);

/* One stored audit row, for verification. */
typedef struct qb_exec_audit_row_s {
    int64_t audit_id;
    const char *account;
    int64_t seq;
    int64_t at_ns;
    const char *order_id, *event, *detail;
    const char *prev_hash, *hash;
} qb_exec_audit_row_t;

/* Check `row` as the successor of (last_seq, last_hash) of its account
 * (0, QB_EXEC_AUDIT_GENESIS for the first). QB_OK, or QB_ERR_CONFLICT with
 * why: "seq gap: rows 4..6 missing (deleted)", "prev_hash does not match
 * the previous row's hash", "hash mismatch: the row was changed". */
qb_err_t qb_exec_audit_check(int64_t last_seq, const char *last_hash,
                             const qb_exec_audit_row_t *row, char *why, size_t why_size);

#endif
