/* qb_notify.h — alert rules, the events they watch, their evaluation and
 * the text of the notifications (qb-notify's logic, without I/O).
 *
 * Why a library: the evaluation is pure (an event in, the rules that fire
 * out), so it is unit-tested on crafted events and benchmarked alone; the
 * service only feeds it decoded messages and stores what fires.
 *
 * Rules (qb_nrule_t): a condition (qb_ncond_t), filters (account, symbol,
 * timeframe, strategy, least confidence), targets (channel + address +
 * optional secret), a throttle (cooldown_ns, in EVENT time: a replay makes
 * the same decisions) and quiet hours (minutes after local midnight in a
 * time zone; see qb_nrule_quiet_until).
 *
 * Price rules watch bars per series (symbol, timeframe). The evaluator keeps
 * for each series the closes it needs (the previous bar, and for PRICE_MOVE
 * the last bar at least `window` before the previous one), so every rule on
 * a series is evaluated from the series' history, and a rule added later
 * sees it at once:
 *   PRICE_ABOVE  previous close <= threshold < close   (an upward CROSSING)
 *   PRICE_BELOW  previous close >= threshold > close
 *   PRICE_MOVE   |close / ref - 1| * 100 >= move_pct, where ref is the close
 *                of the newest bar at least window before this bar, and the
 *                same did not hold at the previous bar (an edge, so a move
 *                that lasts fires once).
 * The first bar of a series (nothing before it) fires nothing. A bar not
 * after the series' newest is a re-delivery: ignored.
 * Event rules:
 *   SIGNAL          a Signal (strategy / symbol / account / confidence filters)
 *   ORDER_FILLED    an ExecutionReport with a fill (fill_qty > 0)
 *   ORDER_REJECTED  an ExecutionReport with status REJECTED
 *   RISK_EVENT      any RiskEvent (pause, kill switch, discrepancy...)
 *   BACKTEST_DONE   a BacktestEvent FINISHED or FAILED of a whole run
 * A rule that matches fires unless it fired less than cooldown_ns (event
 * time) before; a throttled match is counted, not stored.
 *
 * Ownership: a rule set (qb_nrules_t) owns its rules and their strings; the
 * evaluator takes a rule set over (qb_neval_set_rules) and frees it. Events
 * are borrowed for the duration of one call. Not thread-safe: one evaluator
 * per thread. */
#ifndef QB_NOTIFY_H
#define QB_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "cal/qb_tz.h"
#include "core/qb_err.h"
#include "core/qb_time.h"

#define QB_NRULE_ID_MAX 100
#define QB_NRULE_OWNER_MAX 100
#define QB_NRULE_NAME_MAX 120
#define QB_NADDR_MAX 512
#define QB_NSECRET_MAX 256
#define QB_NTARGETS_MAX 16
#define QB_NTITLE_MAX 160
#define QB_NTEXT_MAX 1024

/* Conditions; the numbers are proto AlertCondition's. */
typedef enum qb_ncond_e {
    QB_NCOND_NONE = 0,
    QB_NCOND_PRICE_ABOVE = 1,
    QB_NCOND_PRICE_BELOW = 2,
    QB_NCOND_SIGNAL = 3,
    QB_NCOND_ORDER_FILLED = 4,
    QB_NCOND_ORDER_REJECTED = 5,
    QB_NCOND_RISK_EVENT = 6,
    QB_NCOND_BACKTEST_DONE = 7,
    QB_NCOND_PRICE_MOVE = 8,
    QB_NCOND__COUNT
} qb_ncond_t;

/* Channels; the numbers are proto NotifyChannel's. */
typedef enum qb_nchan_e {
    QB_NCHAN_NONE = 0,
    QB_NCHAN_WEBHOOK = 1,  /* address: URL; JSON POST, optional HMAC */
    QB_NCHAN_SLACK = 2,    /* address: incoming-webhook URL */
    QB_NCHAN_TELEGRAM = 3, /* address: chat id */
    QB_NCHAN_EMAIL = 4,    /* address: e-mail address */
    QB_NCHAN_IN_APP = 5,   /* address: user name (empty = the rule's owner) */
    QB_NCHAN__COUNT
} qb_nchan_t;

/* "price_above", ... ("" for NONE); and back (QB_NCOND_NONE when unknown). */
const char *qb_ncond_name(qb_ncond_t c);
qb_ncond_t qb_ncond_parse(const char *s);
/* "webhook", "slack", "telegram", "email", "in_app"; and back. */
const char *qb_nchan_name(qb_nchan_t c);
qb_nchan_t qb_nchan_parse(const char *s);
/* 1 for the three price conditions. */
int qb_ncond_is_price(qb_ncond_t c);

typedef struct qb_ntarget_s {
    qb_nchan_t channel;
    char *address;
    char *secret; /* NULL when none; never logged */
} qb_ntarget_t;

typedef struct qb_nrule_s {
    char id[QB_NRULE_ID_MAX + 1];
    char owner[QB_NRULE_OWNER_MAX + 1];
    char name[QB_NRULE_NAME_MAX + 1];
    char account[65];     /* "" = any account */
    char symbol[33];      /* "" = any symbol */
    char timeframe[9];    /* "" = any timeframe (price rules) */
    char strategy_id[QB_NRULE_ID_MAX + 1]; /* "" = any */
    qb_ncond_t cond;
    int64_t threshold;    /* fixed-point 1e-8 (PRICE_ABOVE / _BELOW) */
    double move_pct;      /* PRICE_MOVE, > 0 */
    int64_t window_ns;    /* PRICE_MOVE, > 0 */
    double min_confidence;
    int enabled;
    int64_t cooldown_ns;  /* 0 = no throttle */
    int quiet_start;      /* minutes after local midnight, -1 = none */
    int quiet_end;
    char time_zone[QB_TZ_NAME_MAX + 1];
    const qb_tz_t *tz;    /* from qb_tz_get (cached, never freed) */
    qb_ntarget_t targets[QB_NTARGETS_MAX];
    size_t ntargets;
    int64_t last_fired;   /* event time of the last firing, 0 = never */
    int64_t change_seq;
} qb_nrule_t;

/* A growable array of rules, owning the targets' strings. */
typedef struct qb_nrules_s {
    qb_nrule_t *v;
    size_t n, cap;
} qb_nrules_t;

qb_nrules_t *qb_nrules_new(void);
/* Append a zeroed rule (quiet hours "none"); NULL when out of memory. */
qb_nrule_t *qb_nrules_add(qb_nrules_t *rs);
void qb_nrules_destroy(qb_nrules_t *rs);

/* Add a target to a rule (strings copied). QB_ERR_INVALID (with errstr)
 * for an unknown channel, an empty or malformed address (webhook / slack
 * need http:// or https://, email an address with '@', telegram a chat id
 * of digits, '-' or '@name'), too many targets. */
qb_err_t qb_nrule_add_target(qb_nrule_t *r, qb_nchan_t ch, const char *address,
                             const char *secret, char *errstr, size_t errstr_size);

/* Check a complete rule: id, condition and its parameters, targets, time
 * zone (loaded into r->tz), quiet hours. QB_ERR_INVALID naming the field. */
qb_err_t qb_nrule_validate(qb_nrule_t *r, char *errstr, size_t errstr_size);

/* Parse "HH:MM" into minutes after midnight; -1 when malformed. */
int qb_nquiet_parse(const char *s);

/* Quiet hours: when `now` is inside the rule's quiet hours, the instant they
 * end (UTC ns), else 0. Quiet hours [start, end) in local wall time; end <
 * start spans midnight; start == end means none. */
qb_time_t qb_nrule_quiet_until(const qb_nrule_t *r, qb_time_t now);

/* ---- events ---------------------------------------------------------------- */

typedef enum qb_nevent_kind_e {
    QB_NEV_BAR = 1,
    QB_NEV_SIGNAL,
    QB_NEV_EXEC,     /* an execution report */
    QB_NEV_RISK,
    QB_NEV_BACKTEST
} qb_nevent_kind_t;

/* One event as the rules see it; strings borrowed (may be NULL = ""). */
typedef struct qb_nevent_s {
    qb_nevent_kind_t kind;
    const char *event_id;
    qb_time_t time;         /* event time (bar ts for bars) */
    const char *account;
    const char *symbol;
    const char *timeframe;
    const char *strategy_id;
    /* BAR */
    int64_t close;          /* fixed-point */
    /* SIGNAL */
    const char *direction;  /* "LONG", "SHORT", "FLAT" */
    double confidence;
    int64_t price;          /* reference price (signal), fill price (exec) */
    const char *reason;
    /* EXEC */
    const char *status;     /* "FILLED", "PARTIALLY_FILLED", "REJECTED", ... */
    const char *side;       /* "BUY", "SELL" */
    int is_fill;            /* fill_qty > 0 */
    int is_reject;          /* status REJECTED */
    int64_t qty;            /* fill qty (fill) or order qty (reject) */
    int64_t cum_qty, order_qty;
    const char *order_id;
    /* RISK */
    const char *risk_kind;  /* "KILL_SWITCH_ON", ... */
    int critical;           /* severity CRITICAL: ignores quiet hours */
    const char *severity;   /* "INFO", "WARNING", "CRITICAL" */
    const char *message;    /* risk message, exec reason text, backtest error */
    /* BACKTEST */
    const char *run_id;
    int bt_done;            /* FINISHED or FAILED of the whole run */
    int bt_failed;
    double bt_return, bt_sharpe, bt_max_dd;
    uint32_t bt_trades;
} qb_nevent_t;

/* What fired: the rule (owned by the evaluator; valid until the rules are
 * replaced), the event, and for price rules the numbers the text needs. */
typedef struct qb_nfire_s {
    const qb_nrule_t *rule;
    const qb_nevent_t *ev;
    int64_t prev_close;     /* price rules: the previous bar's close */
    int64_t ref_close;      /* PRICE_MOVE: the reference close */
    double move_pct;        /* PRICE_MOVE: the signed move in percent */
} qb_nfire_t;

typedef void (*qb_neval_fire_cb)(void *opaque, const qb_nfire_t *f);

typedef struct qb_neval_s qb_neval_t;

qb_neval_t *qb_neval_new(void);
void qb_neval_destroy(qb_neval_t *ev);

/* Replace the rules (taken over; the old set is freed). A rule keeps the
 * later of its new last_fired and the one the evaluator had for the same
 * id. Series histories are kept. */
void qb_neval_set_rules(qb_neval_t *ev, qb_nrules_t *rules);
const qb_nrules_t *qb_neval_rules(const qb_neval_t *ev);

/* Largest PRICE_MOVE window of the rules (0 when none): how far back a new
 * series should be warmed up. */
int64_t qb_neval_max_window(const qb_neval_t *ev);

/* 1 when an enabled price rule watches symbol (or every symbol). */
int qb_neval_watches(const qb_neval_t *ev, const char *symbol);

/* 1 when the evaluator already has a history for (symbol, timeframe). */
int qb_neval_has_series(const qb_neval_t *ev, const char *symbol, const char *timeframe);
/* Warm a series with a stored bar (oldest first): history only, nothing
 * fires. */
void qb_neval_warm(qb_neval_t *ev, const char *symbol, const char *timeframe, qb_time_t ts,
                   int64_t close);

/* Evaluate one event: calls fire for each rule that fires (after the
 * filters, the edge and the throttle; the rule's last_fired is then the
 * event's time). Returns how many fired; *throttled (may be NULL) gets how
 * many matched but were throttled. A re-delivered bar returns 0. */
int qb_neval_event(qb_neval_t *ev, const qb_nevent_t *e, qb_neval_fire_cb fire, void *opaque,
                   int *throttled);

/* Forget the series of symbols whose partition was revoked (hash of the
 * symbol is not needed: the caller passes a predicate). */
typedef int (*qb_neval_series_pred)(void *opaque, const char *symbol, const char *timeframe);
int qb_neval_drop_series(qb_neval_t *ev, qb_neval_series_pred pred, void *opaque);

/* ---- templates --------------------------------------------------------------- */

/* The event kind name of a firing: its rule's condition name. */
const char *qb_nfire_kind(const qb_nfire_t *f);

/* Title and text of a notification, short and readable, e.g.
 *   title "AAPL above 190"   (or the rule's name when it has one)
 *   text  "AAPL crossed above 190.00: close 190.52 (1d bar of 2024-01-02
 *          00:00 UTC)."
 * Always NUL-terminated, truncated to the buffers. */
void qb_ntmpl_render(const qb_nfire_t *f, char *title, size_t title_size, char *text,
                     size_t text_size);

/* A fixed-point value as text with 2 to 8 decimals, trailing zeros after
 * the second removed ("190.5" -> "190.50", "0.00012345"). */
size_t qb_ntmpl_price(int64_t v, char *buf, size_t cap);

#endif
