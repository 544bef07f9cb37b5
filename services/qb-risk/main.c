/* qb-risk — every order passes through here: a strategy's signal or a
 * person's order request becomes a sized Order only if it fits the
 * account's limits; fills and bars keep each account's books, P&L and
 * trading state; breaches pause or halt the account.
 *
 * INPUTS (consumer group QB_RISK_GROUP, default "qb-risk"; the topics are
 * keyed by account, so one account's records arrive in order at ONE
 * replica, which holds its state):
 *   signals         Signal -> sized Order on `orders`, or a rejection
 *   orders.intents  OrderRequest (manual) -> Order, or a rejection
 *   exec.reports    ExecutionReport: fills update the books (fill ids
 *                   de-duplicate), reports close the open orders risk
 *                   approved (their buying power is released)
 *   control         Command (target "qb-risk", "*" or empty): SET_LIMITS,
 *                   KILL_SWITCH, RESUME, RISK_SNAPSHOT, RELOAD
 * The range assignor is forced (QB_KAFKA_PARTITION_ASSIGNMENT_STRATEGY):
 * it gives a member the same partition numbers of every topic, so an
 * account's signals, intents and reports (same key, same partition count)
 * reach the replica that holds it. On revoke the replica flushes and drops
 * the accounts of the revoked partitions; the next owner loads them.
 * and md.bars through a GROUP-LESS reader from the end on every replica
 * (md.bars is keyed by symbol: each replica must see every bar of the
 * symbols its accounts hold). A bar's close marks every held position
 * whose mark is older (by bar close time), then the post-trade rules run.
 * A mark alone is written every QB_RISK_MARK_FLUSH_MS (a breach at once),
 * not with the next decision: only the positions a fill or mark changed
 * are written (rk_account_t.pos_dirty), not every position of the account.
 * Bars missed while the process was down are not replayed: marks are
 * restored from risk.positions and the next bar of each symbol catches up
 * (a mark is a latest value, not an event stream; a group per replica
 * would leave offsets of throw-away groups on the cluster).
 *
 * DECISION (libs/risk, pure; libs/portfolio's books and sizing rules):
 *   order_id = UUID v5 of (signal_id or intent_id, leg), so a replayed
 *   cause never becomes a second order. A signal is sized by the
 *   account's rule (fixed-fractional over the signal's stop or an ATR
 *   multiple, percent of equity, volatility target, fixed quantity; the
 *   signal's target_weight wins when present), rounded down to LOT_SIZE;
 *   the order moves the position + open orders to the wanted one (a
 *   reversal is two orders, as in the backtest engine: the exit, leg 1,
 *   then the entry, leg 2, each checked on its own). Then
 *   the pre-trade checks (qb_risk_check.h: kill switch, pause, malformed,
 *   no price, price sanity, rate, open orders, order size, shorting,
 *   position size, concurrent positions, risk per trade, capital deployed,
 *   gross/leverage, sector and asset-class exposure, correlation-weighted
 *   exposure, buying power). Approved -> Order on `orders` (MARKET for a
 *   signal); rejected -> ExecutionReport REJECTED with the reason code and
 *   text on exec.reports (and a RiskEvent LIMIT_BREACH when a limit said
 *   no). ATR, volatility and correlations come from the newest
 *   QB_RISK_STATS_BARS bars of QB_RISK_STATS_TIMEFRAME in md.bars.
 *
 * LIMITS: risk.limits per account (and per symbol / sector / asset class
 * where a kind allows a key), changed only by SET_LIMITS on control.
 * Every value is checked against the hard maximum compiled into the binary
 * (qb_risk_limits.h); a command with one value too high is refused whole,
 * logged, audited (risk.limit_audit: who, when, old, new, outcome) and
 * answered with RiskEvent LIMITS_REFUSED. Applied changes are audited and
 * announced with LIMITS_CHANGED; unset kinds use the compiled default, and
 * a value can never beat the hard maximum even if written to the table by
 * hand.
 *
 * POST-TRADE (qb_risk_post.h), on every fill and mark: the day's P&L
 * against MAX_DAILY_LOSS / MAX_DAILY_LOSS_FRACTION (reached -> PAUSED until
 * the next UTC midnight, RiskEvent DAILY_LOSS_PAUSE), the drawdown from the
 * high-water mark against MAX_DRAWDOWN (reached -> HALTED: RiskEvent
 * KILL_SWITCH_ON, on which qb-execution cancels the account's open
 * orders). KILL_SWITCH halts an account (or all: account empty); only
 * RESUME ends a halt (and rebases the day's P&L and the high-water mark).
 * Day boundaries and pauses use the wall clock (UTC).
 *
 * STATE AND RESTARTS: the books are risk.fills replayed in order through
 * libs/portfolio (exact, the same code as backtests), with the marks of
 * risk.positions, the P&L baselines of risk.account_state, the trading
 * state of risk.accounts, open orders and recent approvals of
 * risk.orders. Effects are batched (group commit: the main loop takes
 * every record already fetched, then writes; also QB_RISK_FLUSH_ROWS /
 * _MS, on revoke, at exit) and written in ONE transaction together with
 * risk.offsets, the next offset of every input partition; a record below
 * it is skipped, so after kill -9 the replay from Kafka's committed
 * offsets applies each record exactly once to the stored state. Decisions
 * are an outbox: written first (published = false), then sent, then marked
 * published once the bus acknowledged them (checked without blocking the
 * loop; revoke and exit wait for it); a crash in between leaves rows that,
 * when the account is next loaded, are looked up on their topic (read from
 * the beginning, one scan for every account after a crash) and sent only
 * if absent, so no order id is sent twice (as long as the topic still
 * retains the earlier copy). A delivery that fails for good stops the
 * process (the restart does the look-up). Kafka offsets are stored right
 * after the write (deferred store). Fills are also de-duplicated by fill
 * id (the last 4096 per account), signals and intents by order id (the
 * last 4096 decisions per account). The trading state is shared
 * through risk.accounts.change_seq: the replica that gets a control
 * command writes it, the replica holding the account reloads it within
 * QB_RISK_RELOAD_MS. Redis holds a copy of each account after every write
 * (qb:risk:account:NAME, JSON) for fast reads; losing it loses nothing.
 *
 * PORTFOLIO RISK: every QB_RISK_SNAPSHOT_S and on RISK_SNAPSHOT: VaR and
 * CVaR at 95/99% (historical, parametric, Monte Carlo), volatility, beta
 * to QB_RISK_BENCHMARK, correlation matrix of the holdings
 * (qb_risk_var.h), stored in risk.snapshots and published as RiskEvent
 * RISK_SNAPSHOT.
 *
 * Admin port 9103: /healthz, /readyz (bus, postgres, redis, migrations),
 * /metrics (qb_risk_*). SIGTERM: flush, leave the group, exit 0. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "bus/qb_topics.h"
#include "cache/qb_cache.h"
#include "core/qb_config.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "portfolio/qb_sizing.h"
#include "proto/qb_proto.h"
#include "qb/v1/market.pb-c.h"
#include "qb/v1/trading.pb-c.h"
#include "rk.h"
#include "svc/qb_svc.h"

#define RK_EVENT_NS "9f1c3a77-5d2e-4b8c-8a40-6e1f2d3c4b5a"
#define RK_ABUCKETS 1024
#define RK_MAX_OFFS 256

typedef struct rk_cfg_s {
    const char *group;
    int64_t flush_ms, flush_rows, reload_ms, mark_flush_ms;
    const char *initial_cash, *margin_long, *margin_short, *mode;
    int allow_short;
    const char *stats_tf;
    int64_t stats_bars, stats_refresh_s, snapshot_s, mc_sims, scan_ms;
    const char *benchmark;
    int migrate, read_bars;
} rk_cfg_t;

static const qb_cfg_entry_t rk_cfg_entries[] = {
    {"risk.group", "QB_RISK_GROUP", QB_CFG_STRING, "qb-risk", 1, 200, offsetof(rk_cfg_t, group), 0,
     "consumer group: replicas in one group split the accounts"},
    {"risk.flush_ms", "QB_RISK_FLUSH_MS", QB_CFG_INT, "2", 1, 60000, offsetof(rk_cfg_t, flush_ms),
     0, "longest time a decision waits before it is written and sent"},
    {"risk.flush_rows", "QB_RISK_FLUSH_ROWS", QB_CFG_INT, "2000", 1, 1000000,
     offsetof(rk_cfg_t, flush_rows), 0, "rows (decisions, fills, events) per write"},
    {"risk.mark_flush_ms", "QB_RISK_MARK_FLUSH_MS", QB_CFG_INT, "1000", 1, 600000,
     offsetof(rk_cfg_t, mark_flush_ms), 0,
     "how often marks from md.bars alone (no decision, fill or breach) are written: a mark is "
     "a latest value that the next bar restores, so it does not hold up decisions"},
    {"risk.reload_ms", "QB_RISK_RELOAD_MS", QB_CFG_INT, "500", 10, 3600000,
     offsetof(rk_cfg_t, reload_ms), 0,
     "how often trading states and limits changed by other replicas are looked for"},
    {"risk.initial_cash", "QB_RISK_INITIAL_CASH", QB_CFG_STRING, "100000", 1, 40,
     offsetof(rk_cfg_t, initial_cash), 0, "cash of an account seen for the first time (decimal)"},
    {"risk.margin_long", "QB_RISK_MARGIN_LONG", QB_CFG_STRING, "1", 1, 40,
     offsetof(rk_cfg_t, margin_long), 0, "initial margin of longs (1 = cash account, 0.5 = Reg T)"},
    {"risk.margin_short", "QB_RISK_MARGIN_SHORT", QB_CFG_STRING, "0.5", 1, 40,
     offsetof(rk_cfg_t, margin_short), 0, "margin of shorts beyond the proceeds"},
    {"risk.allow_short", "QB_RISK_ALLOW_SHORT", QB_CFG_BOOL, "true", 1, 0,
     offsetof(rk_cfg_t, allow_short), 0, "accounts may sell short"},
    {"risk.mode", "QB_RISK_MODE", QB_CFG_STRING, "paper", 1, 10, offsetof(rk_cfg_t, mode), 0,
     "trading mode written into orders: paper or live"},
    {"risk.stats_timeframe", "QB_RISK_STATS_TIMEFRAME", QB_CFG_STRING, "1d", 1, 7,
     offsetof(rk_cfg_t, stats_tf), 0,
     "bars of md.bars used for ATR, volatility, correlations and VaR"},
    {"risk.stats_bars", "QB_RISK_STATS_BARS", QB_CFG_INT, "250", 20, 100000,
     offsetof(rk_cfg_t, stats_bars), 0, "history length of those statistics"},
    {"risk.stats_refresh_s", "QB_RISK_STATS_REFRESH_S", QB_CFG_INT, "3600", 1, 86400,
     offsetof(rk_cfg_t, stats_refresh_s), 0, "how long a symbol's history is reused"},
    {"risk.snapshot_s", "QB_RISK_SNAPSHOT_S", QB_CFG_INT, "300", 0, 86400,
     offsetof(rk_cfg_t, snapshot_s), 0, "period of the risk snapshots of held accounts (0 = off)"},
    {"risk.mc_sims", "QB_RISK_MC_SIMS", QB_CFG_INT, "10000", 100, 10000000,
     offsetof(rk_cfg_t, mc_sims), 0, "Monte Carlo draws per VaR figure"},
    {"risk.benchmark", "QB_RISK_BENCHMARK", QB_CFG_STRING, "SPY", 0, 31,
     offsetof(rk_cfg_t, benchmark), 0, "benchmark symbol of beta"},
    {"risk.outbox_scan_ms", "QB_RISK_OUTBOX_SCAN_MS", QB_CFG_INT, "2000", 100, 60000,
     offsetof(rk_cfg_t, scan_ms), 0,
     "after a crash: quiet time that ends the look-up of unacknowledged decisions on their topic"},
    {"risk.migrate", "QB_RISK_MIGRATE", QB_CFG_BOOL, "true", 1, 0, offsetof(rk_cfg_t, migrate), 0,
     "apply the migrations of QB_SQL_DIR at start"},
    {"risk.read_bars", "QB_RISK_READ_BARS", QB_CFG_BOOL, "true", 1, 0,
     offsetof(rk_cfg_t, read_bars), 0, "mark positions with md.bars (off only for tests)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

typedef struct rk_px_s {
    char symbol[QB_SYMBOL_MAX + 1];
    qb_dec_t close;
    qb_time_t close_ts;
    struct rk_px_s *next;
} rk_px_t;

typedef struct rk_off_s {
    char topic[256];
    int32_t partition;
    int64_t next;
} rk_off_t;

typedef struct rk_ids_s {
    char *buf;
    size_t len, cap, n;
} rk_ids_t;

typedef struct rk_s {
    qb_svc_t *svc;
    const rk_cfg_t *cfg;
    qb_store_t *store;
    qb_cache_t *cache;
    qb_producer_t *producer;
    qb_consumer_t *consumer;
    qb_reader_t *bars;
    rk_batch_t *batch;
    rk_stats_t *stats;
    rk_account_t *acct[RK_ABUCKETS];
    rk_px_t *px[RK_ABUCKETS];
    rk_off_t offs[RK_MAX_OFFS];
    size_t noffs;
    qb_portfolio_config_t pcfg;
    qb_dec_t initial_cash;
    int mode;
    int global_halt;
    int64_t seen_seq;
    qb_time_t first_staged;
    int flush_marks; /* the next flush also writes the accounts with mark_dirty */
    rk_ids_t unacked_o, unacked_e; /* sent, not yet acknowledged and marked */
    qb_time_t unacked_since;
    int fatal;
    rk_unpub_t *seen; /* the last outbox scan: unpublished ids and whether on their topic */
    size_t nseen;
    rk_account_t *cur;           /* the account of the record being handled */
    const char *t_signals, *t_intents, *t_reports, *t_control;
    qb_counter_t *c_approved, *c_rejected, *c_fills, *c_dup_fills, *c_dups, *c_skipped, *c_marks,
        *c_breaches, *c_flushes, *c_cmds, *c_refused, *c_snapshots;
    qb_hist_t *h_decide, *h_signal, *h_flush;
    qb_gauge_t *g_accounts;
} rk_t;

/* ---- small helpers -------------------------------------------------------------- */

static int id_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

static rk_px_t *px_get(rk_t *r, const char *symbol, int add) {
    uint64_t k = rk_hash(symbol) % RK_ABUCKETS;
    for (rk_px_t *p = r->px[k]; p; p = p->next)
        if (strcmp(p->symbol, symbol) == 0) return p;
    if (!add) return NULL;
    rk_px_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->symbol, sizeof p->symbol, "%s", symbol);
    p->next = r->px[k];
    r->px[k] = p;
    return p;
}

static int ensure_mark_ts(rk_account_t *a, uint32_t id) {
    if (id < a->nmark_ts) return 1;
    size_t n = (id + 1) * 2;
    qb_time_t *v = realloc(a->mark_ts, n * sizeof *v);
    if (!v) return 0;
    memset(v + a->nmark_ts, 0, (n - a->nmark_ts) * sizeof *v);
    a->mark_ts = v;
    uint8_t *d = realloc(a->pos_dirty, n);
    if (!d) {
        a->pos_clean = 0; /* the next write takes every position */
        return 0;
    }
    memset(d + a->nmark_ts, 0, n - a->nmark_ts);
    a->pos_dirty = d;
    a->nmark_ts = n;
    return 1;
}

static void account_free(rk_account_t *a) {
    if (!a) return;
    qb_portfolio_destroy(a->pf);
    free(a->open);
    free(a->rate);
    free(a->mark_ts);
    free(a->pos_dirty);
    free(a);
}

static uint32_t rate_count(rk_account_t *a, qb_time_t now) {
    while (a->rate_n && a->rate[a->rate_head] <= now - 60LL * 1000000000LL) {
        a->rate_head = (a->rate_head + 1) % a->rate_cap;
        a->rate_n--;
    }
    return (uint32_t)a->rate_n;
}
static void rate_add(rk_account_t *a, qb_time_t now) {
    a->rate[(a->rate_head + a->rate_n) % a->rate_cap] = now;
    if (a->rate_n < a->rate_cap) a->rate_n++;
    else a->rate_head = (a->rate_head + 1) % a->rate_cap;
}

/* ---- events ----------------------------------------------------------------------- */

static qb_err_t rk_event(rk_t *r, const char *account, int kind, int severity, int limit,
                         qb_dec_t observed, qb_dec_t limit_value, const char *message,
                         const char *command_id, qb_time_t paused_until, const char *cause_id,
                         const char *symbol, const char *strategy, const char *status,
                         Qb__V1__RiskEvent__Snapshot *snap) {
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qb-risk", 0, qb_log_trace());
    Qb__V1__RiskEvent ev = QB__V1__RISK_EVENT__INIT;
    ev.header = &h.pb;
    ev.account = (char *)account;
    ev.kind = (Qb__V1__RiskEventKind)kind;
    ev.severity = (Qb__V1__Severity)severity;
    ev.limit = (Qb__V1__LimitKind)limit;
    ev.observed = observed;
    ev.limit_value = limit_value;
    ev.message = (char *)(message ? message : "");
    ev.command_id = (char *)(command_id ? command_id : "");
    ev.paused_until = paused_until;
    ev.cause_id = (char *)(cause_id ? cause_id : "");
    ev.symbol = (char *)(symbol ? symbol : "");
    ev.strategy_id = (char *)(strategy ? strategy : "");
    ev.account_status = (char *)(status ? status : "");
    ev.snapshot = snap;
    size_t len = protobuf_c_message_get_packed_size(&ev.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return QB_ERR_NOMEM;
    protobuf_c_message_pack(&ev.base, buf);
    qb_err_t e = rk_batch_event(r->batch, h.event_id, account, kind, severity, limit, observed,
                                limit_value, message, command_id, h.pb.event_time, buf, len);
    free(buf);
    if (!r->first_staged) r->first_staged = qb_time_now();
    return e;
}

/* ---- accounts ------------------------------------------------------------------------ */

static rk_account_t *acct_find(rk_t *r, const char *name) {
    for (rk_account_t *a = r->acct[rk_hash(name) % RK_ABUCKETS]; a; a = a->next)
        if (strcmp(a->name, name) == 0) return a;
    return NULL;
}

static qb_err_t rk_drain(rk_t *r, rk_account_t *a, char *errstr, size_t errstr_size);

/* The account, loaded from PostgreSQL at its first record here. */
static qb_err_t acct_get(rk_t *r, const char *name, int32_t partition, rk_account_t **out,
                         char *errstr, size_t errstr_size) {
    rk_account_t *a = acct_find(r, name);
    if (a) {
        *out = a;
        return QB_OK;
    }
    a = calloc(1, sizeof *a);
    if (!a) return QB_ERR_NOMEM;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->partition = partition;
    a->rate_cap = (size_t)(qb_risk_limit_hard_max(QB_RISK_LIMIT_MAX_ORDERS_PER_MINUTE) /
                           QB_DEC_SCALE) + 1;
    a->rate = calloc(a->rate_cap, sizeof *a->rate);
    int64_t unpub = 0;
    qb_time_t t0 = qb_time_mono_ns();
    qb_err_t e = a->rate ? rk_store_load_account(r->store, a, r->initial_cash, &r->pcfg,
                                                 qb_time_now(), &unpub, errstr, errstr_size)
                         : QB_ERR_NOMEM;
    if (!e && unpub) e = rk_drain(r, a, errstr, errstr_size);
    if (e) {
        account_free(a);
        return e == QB_ERR_INTERNAL ? QB_ERR_UNAVAILABLE : e;
    }
    uint64_t k = rk_hash(name) % RK_ABUCKETS;
    a->next = r->acct[k];
    r->acct[k] = a;
    qb_gauge_add(r->g_accounts, 1);
    char eq[QB_DEC_STRLEN];
    qb_dec_format(qb_portfolio_equity(a->pf), eq, sizeof eq);
    QB_INFO("account %s loaded (partition %d): %llu fills replayed, equity %s, %s, %zu open "
            "orders, %.1f ms",
            name, (int)partition, (unsigned long long)qb_portfolio_fills(a->pf), eq,
            qb_risk_status_name(a->status), a->nopen, (double)(qb_time_mono_ns() - t0) / 1e6);
    *out = a;
    return QB_OK;
}

static void acct_each(rk_t *r, void (*fn)(rk_t *, rk_account_t *, void *), void *opaque) {
    for (int i = 0; i < RK_ABUCKETS; i++)
        for (rk_account_t *a = r->acct[i], *nx; a; a = nx) {
            nx = a->next;
            fn(r, a, opaque);
        }
}

/* ---- post-trade ------------------------------------------------------------------------ */

static void rk_post(rk_t *r, rk_account_t *a) {
    qb_time_t now = qb_time_now();
    qb_risk_status_t st = qb_risk_post_status(a->status, a->paused_until, now);
    if (st != a->status) {
        a->status = st;
        a->paused_until = 0;
        snprintf(a->status_text, sizeof a->status_text, "daily loss pause ended (new session)");
        a->flags_dirty = 1;
        (void)rk_event(r, a->name, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_RESUMED,
                       QB__V1__SEVERITY__SEVERITY_INFO, 0, 0, 0, a->status_text, NULL, 0, NULL,
                       NULL, NULL, "ACTIVE", NULL);
    }
    qb_risk_breach_t br;
    qb_risk_pnl_t before = a->pnl;
    qb_risk_action_t act = qb_risk_post_update(&a->pnl, &a->limits, qb_portfolio_equity(a->pf),
                                               now, a->status, &br);
    if (memcmp(&before, &a->pnl, sizeof before) != 0) a->dirty = 1;
    if (act == QB_RISK_POST_NONE) return;
    qb_counter_inc(r->c_breaches);
    a->flags_dirty = 1;
    snprintf(a->status_text, sizeof a->status_text, "%s", br.text);
    if (act == QB_RISK_POST_PAUSE) {
        a->status = QB_RISK_PAUSED;
        a->paused_until = br.paused_until;
        QB_WARN("account %s PAUSED: %s", a->name, br.text);
        (void)rk_event(r, a->name, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_DAILY_LOSS_PAUSE,
                       QB__V1__SEVERITY__SEVERITY_CRITICAL, br.limit, br.observed,
                       br.limit_value, br.text, NULL, br.paused_until, NULL, NULL, NULL, "PAUSED",
                       NULL);
    } else {
        a->status = QB_RISK_HALTED;
        a->paused_until = 0;
        QB_WARN("account %s HALTED (kill switch): %s", a->name, br.text);
        (void)rk_event(r, a->name, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_ON,
                       QB__V1__SEVERITY__SEVERITY_CRITICAL, br.limit, br.observed,
                       br.limit_value, br.text, NULL, 0, NULL, NULL, NULL, "HALTED", NULL);
    }
}

/* ---- decisions ------------------------------------------------------------------------ */

typedef struct rk_req_s {
    const char *cause_id;
    int cause_kind;
    const char *strategy_id;
    const char *symbol;
    qb_side_t side;
    qb_order_type_t type;
    int tif;
    qb_dec_t qty, limit_price, stop_price, tp, sl, ref_price;
    const char *client_tag;
    qb_time_t not_before;       /* Order.not_before: a signal's bar_ts; 0 = none */
    qb_time_t t_in;
} rk_req_t;

static const char *sector_cb(void *opaque, uint32_t id) {
    rk_t *r = opaque;
    const char *sec, *cls;
    rk_stats_meta(r->stats, r->store, qb_portfolio_symbol_name(r->cur->pf, id), &sec, &cls);
    return sec;
}
static const char *class_cb(void *opaque, uint32_t id) {
    rk_t *r = opaque;
    const char *sec, *cls;
    rk_stats_meta(r->stats, r->store, qb_portfolio_symbol_name(r->cur->pf, id), &sec, &cls);
    return cls;
}
static double corr_cb(void *opaque, uint32_t a, uint32_t b) {
    rk_t *r = opaque;
    return rk_stats_corr(r->stats, r->store, qb_portfolio_symbol_name(r->cur->pf, a),
                         qb_portfolio_symbol_name(r->cur->pf, b));
}

static void rk_ctx(rk_t *r, rk_account_t *a, uint32_t sym, qb_dec_t *open_qty, size_t nq,
                   qb_risk_ctx_t *c) {
    memset(c, 0, sizeof *c);
    c->pf = a->pf;
    c->limits = &a->limits;
    c->status = a->status;
    c->paused_until = a->paused_until;
    c->global_halt = r->global_halt;
    c->now = qb_time_now();
    c->open_qty = open_qty;
    c->nopen_qty = nq;
    c->open_orders = (uint32_t)a->nopen;
    for (size_t i = 0; i < a->nopen; i++) {
        const rk_open_t *o = &a->open[i];
        if (o->sym < nq) open_qty[o->sym] += o->side == QB_SIDE_BUY ? o->leaves : -o->leaves;
        c->open_reserved += o->reserved;
    }
    c->orders_last_minute = rate_count(a, c->now);
    rk_px_t *p = px_get(r, qb_portfolio_symbol_name(a->pf, sym), 0);
    c->last_close = p ? p->close : 0;
    c->sector = sector_cb;
    c->asset_class = class_cb;
    c->corr = corr_cb;
    c->opaque = r;
}

/* Build, stage and account for one decision. */
static qb_err_t rk_emit(rk_t *r, rk_account_t *a, const rk_req_t *q, const char *order_id,
                        uint32_t sym, const qb_risk_result_t *res, qb_side_t side, qb_dec_t qty,
                        qb_dec_t reserved) {
    rk_decision_t d;
    memset(&d, 0, sizeof d);
    snprintf(d.order_id, sizeof d.order_id, "%s", order_id);
    snprintf(d.account, sizeof d.account, "%s", a->name);
    snprintf(d.cause_id, sizeof d.cause_id, "%s", q->cause_id);
    d.cause_kind = q->cause_kind;
    snprintf(d.strategy_id, sizeof d.strategy_id, "%s", q->strategy_id ? q->strategy_id : "");
    snprintf(d.symbol, sizeof d.symbol, "%s", q->symbol);
    d.side = side;
    d.qty = qty;
    d.price = res->price ? res->price : q->ref_price;
    d.approved = res->reason == QB_RISK_REASON_NONE;
    d.reason_code = res->reason;
    snprintf(d.reason_text, sizeof d.reason_text, "%s: %.280s", qb_risk_reason_name(res->reason),
             res->text);
    d.decided_at = qb_time_now();
    d.t_in = q->t_in;
    d.origin_ns = qb_bus_origin(); /* the handler's input: kept for the later send */
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qb-risk", 0, qb_log_trace());
    ProtobufCMessage *msg;
    Qb__V1__Order o = QB__V1__ORDER__INIT;
    Qb__V1__ExecutionReport x = QB__V1__EXECUTION_REPORT__INIT;
    if (d.approved) {
        snprintf(h.event_id, sizeof h.event_id, "%s", order_id);
        o.header = &h.pb;
        o.order_id = (char *)order_id;
        o.cause_id = (char *)q->cause_id;
        o.cause_kind = (Qb__V1__OrderCause)q->cause_kind;
        o.account = a->name;
        o.strategy_id = (char *)(q->strategy_id ? q->strategy_id : "");
        o.symbol = (char *)q->symbol;
        o.side = (Qb__V1__Side)side;
        o.type = (Qb__V1__OrderType)q->type;
        o.time_in_force = (Qb__V1__TimeInForce)(q->tif ? q->tif : QB__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY);
        o.qty = qty;
        o.limit_price = q->limit_price;
        o.stop_price = q->stop_price;
        o.take_profit_price = q->tp;
        o.stop_loss_price = q->sl;
        o.leg = q->tp || q->sl ? QB__V1__ORDER_LEG__ORDER_LEG_ENTRY : QB__V1__ORDER_LEG__ORDER_LEG_SINGLE;
        o.mode = (Qb__V1__TradingMode)r->mode;
        o.reference_price = d.price;
        o.client_tag = (char *)(q->client_tag ? q->client_tag : "");
        o.not_before = q->not_before;
        msg = &o.base;
        d.topic = "orders";
    } else {
        char name[64];
        int nl = snprintf(name, sizeof name, "rejected|%s", order_id);
        qb_uuid_v5(RK_EVENT_NS, name, (size_t)nl, h.event_id);
        x.header = &h.pb;
        x.order_id = (char *)order_id;
        x.account = a->name;
        x.symbol = (char *)q->symbol;
        x.status = QB__V1__ORDER_STATUS__ORDER_STATUS_REJECTED;
        x.reason_code = (Qb__V1__ReasonCode)res->reason;
        x.reason_text = d.reason_text;
        x.sequence = 1;
        x.side = (Qb__V1__Side)side;
        x.strategy_id = (char *)(q->strategy_id ? q->strategy_id : "");
        x.order_qty = qty;
        x.mode = (Qb__V1__TradingMode)r->mode;
        x.leg = QB__V1__ORDER_LEG__ORDER_LEG_SINGLE;
        x.cause_id = (char *)q->cause_id;
        x.client_tag = (char *)(q->client_tag ? q->client_tag : "");
        msg = &x.base;
        d.topic = "exec.reports";
    }
    d.msg_type = msg->descriptor->name;
    d.len = protobuf_c_message_get_packed_size(msg);
    d.msg = malloc(d.len ? d.len : 1);
    if (!d.msg) return QB_ERR_NOMEM;
    protobuf_c_message_pack(msg, d.msg);
    d.reserved = d.approved ? reserved : 0;
    qb_err_t e = rk_batch_decision(r->batch, &d);
    if (e) {
        free(d.msg);
        return e;
    }
    /* in memory, at once: the next decision sees this one */
    rk_ring_add(a->dec_ring, &a->dec_n, RK_DEC_RING, rk_hash(order_id));
    if (d.approved) {
        if (a->nopen == a->capopen) {
            size_t c = a->capopen ? a->capopen * 2 : 16;
            rk_open_t *v = realloc(a->open, c * sizeof *v);
            if (!v) return QB_ERR_NOMEM;
            a->open = v;
            a->capopen = c;
        }
        rk_open_t *op = &a->open[a->nopen++];
        snprintf(op->id, sizeof op->id, "%s", order_id);
        op->sym = sym;
        op->side = side;
        op->qty = op->leaves = qty;
        op->reserved = reserved;
        rate_add(a, d.decided_at);
        qb_counter_inc(r->c_approved);
        QB_INFO("order %s %s %s %lld/1e8 %s: approved (%s)", order_id, a->name,
                side == QB_SIDE_BUY ? "BUY" : "SELL", (long long)qty, q->symbol, res->text);
    } else {
        qb_counter_inc(r->c_rejected);
        QB_INFO("order %s %s %s: rejected %s", order_id, a->name, q->symbol, d.reason_text);
        if (res->limit)
            (void)rk_event(r, a->name, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_LIMIT_BREACH,
                           QB__V1__SEVERITY__SEVERITY_WARNING, res->limit, res->observed,
                           res->limit_value, d.reason_text, NULL, 0, q->cause_id, q->symbol,
                           q->strategy_id, qb_risk_status_name(a->status), NULL);
    }
    qb_hist_observe(r->h_decide, (double)(qb_time_mono_ns() - q->t_in) / 1e9);
    if (!r->first_staged) r->first_staged = qb_time_now();
    return QB_OK;
}

/* The buying power an approved order holds: margin on what it adds. */
static qb_dec_t reserve_of(rk_account_t *a, uint32_t sym, qb_dec_t open_sym, qb_side_t side,
                           qb_dec_t qty, qb_dec_t price) {
    qb_dec_t before = qb_portfolio_qty(a->pf, sym) + open_sym;
    qb_dec_t after = before + (side == QB_SIDE_BUY ? qty : -qty);
    qb_dec_t ab = before < 0 ? -before : before, aa = after < 0 ? -after : after;
    int flips = (before > 0 && after < 0) || (before < 0 && after > 0);
    if (!(aa > ab || flips)) return 0;
    qb_dec_t added = flips ? aa : aa - ab, cost = 0;
    const qb_portfolio_config_t *pc = qb_portfolio_config(a->pf);
    if (qb_sizing_cost(added, price, after > 0 ? pc->margin_long : pc->margin_short, NULL,
                       &cost) != QB_OK)
        cost = 0;
    return cost;
}

static qb_err_t rk_decide(rk_t *r, rk_account_t *a, rk_req_t *q, int direction,
                          const Qb__V1__Signal *sg, char *errstr, size_t errstr_size) {
    char order_id[QB_UUID_STRLEN], msg[256];
    qb_risk_order_id(q->cause_id, 1, order_id);
    if (rk_ring_has(a->dec_ring, a->dec_n, RK_DEC_RING, rk_hash(order_id))) {
        qb_counter_inc(r->c_dups);
        QB_INFO("order %s of %s already decided: duplicate ignored", order_id, q->cause_id);
        return QB_OK;
    }
    uint32_t sym;
    if (qb_portfolio_symbol(a->pf, q->symbol, &sym, msg, sizeof msg) != QB_OK ||
        !ensure_mark_ts(a, sym))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "symbol: %s", msg);
    r->cur = a;
    size_t nq = qb_portfolio_nsymbols(a->pf);
    qb_dec_t *open_qty = calloc(nq ? nq : 1, sizeof *open_qty);
    if (!open_qty) return QB_ERR_NOMEM;
    qb_risk_ctx_t c;
    rk_ctx(r, a, sym, open_qty, nq, &c);
    qb_risk_result_t res;
    memset(&res, 0, sizeof res);
    qb_dec_t lot = qb_risk_limit(&a->limits, QB_RISK_LIMIT_LOT_SIZE, q->symbol);
    qb_dec_t price = c.last_close > 0 ? c.last_close : q->ref_price;
    qb_dec_t stop_dist = 0;
    qb_side_t side = q->side;
    qb_dec_t qty = q->qty;
    qb_err_t e = QB_OK;
    if (sg) {
        /* sizing: the signal's wanted position */
        qb_risk_size_in_t in;
        memset(&in, 0, sizeof in);
        in.equity = qb_portfolio_equity(a->pf);
        in.price = price;
        in.stop_distance = sg->stop_distance;
        in.lot = lot;
        in.has_weight = sg->sizing_case == QB__V1__SIGNAL__SIZING_TARGET_WEIGHT;
        in.weight = sg->target_weight;
        in.ann_vol = NAN;
        int rule = (int)(qb_risk_limit(&a->limits, QB_RISK_LIMIT_SIZING_RULE, NULL) / QB_DEC_SCALE);
        if (direction != QB_RISK_DIR_FLAT && !in.has_weight &&
            ((rule == QB_RISK_SIZING_FIXED_FRACTIONAL && sg->stop_distance <= 0) ||
             rule == QB_RISK_SIZING_VOL_TARGET)) {
            e = rk_stats_symbol(r->stats, r->store, q->symbol, &in.atr, &in.ann_vol, errstr,
                                errstr_size);
            if (e) {
                free(open_qty);
                return e; /* retried: nothing changed yet */
            }
        }
        qb_dec_t size = 0;
        if (direction != QB_RISK_DIR_FLAT)
            res.reason = qb_risk_size(&a->limits, &in, &size, &stop_dist, res.text, sizeof res.text);
        if (res.reason == QB_RISK_REASON_NONE) {
            qb_dec_t current = qb_portfolio_qty(a->pf, sym) + open_qty[sym];
            res.reason = qb_risk_signal_order(direction, current, size, lot,
                                              qb_portfolio_config(a->pf)->allow_short, &side, &qty);
            if (res.reason != QB_RISK_REASON_NONE) {
                char s1[QB_DEC_STRLEN], s2[QB_DEC_STRLEN];
                qb_dec_format(current, s1, sizeof s1);
                qb_dec_format(size, s2, sizeof s2);
                snprintf(res.text, sizeof res.text, "%s: position %s, wanted size %s",
                         qb_risk_reason_str(res.reason), s1, s2);
                side = direction == QB_RISK_DIR_LONG ? QB_SIDE_BUY : QB_SIDE_SELL;
            }
        } else {
            side = direction == QB_RISK_DIR_LONG ? QB_SIDE_BUY : QB_SIDE_SELL;
        }
        res.price = price;
    } else if (q->sl > 0 && price > 0) {
        stop_dist = price > q->sl ? price - q->sl : q->sl - price;
    } else if (price > 0) {
        qb_dec_t atr = 0;
        double vol;
        if (rk_stats_symbol(r->stats, r->store, q->symbol, &atr, &vol, errstr, errstr_size) ==
                QB_OK && atr > 0) {
            qb_dec_t mult = qb_risk_limit(&a->limits, QB_RISK_LIMIT_SIZING_ATR_MULTIPLE, NULL);
            if (qb_dec_mul(mult, atr, &stop_dist, QB_ROUND_HALF_EVEN) != QB_OK) stop_dist = 0;
        }
    }
    /* A signal that reverses the position becomes two orders, as in the
     * backtest engine (libs/backtest): the exit (leg 1; it only reduces, so
     * no exposure limit blocks it) and then the entry of the wanted size
     * (leg 2, checked with the exit counted as open). One combined order
     * would pay a per-order fee once where the backtest pays it twice, and a
     * refused flip would leave the wrong-way position open. */
    qb_dec_t exit_qty = 0;
    if (sg && res.reason == QB_RISK_REASON_NONE) {
        qb_dec_t cur = qb_portfolio_qty(a->pf, sym) + open_qty[sym];
        if ((cur > 0 && side == QB_SIDE_SELL && qty > cur) ||
            (cur < 0 && side == QB_SIDE_BUY && qty > -cur))
            exit_qty = cur > 0 ? cur : -cur;
    }
    for (int leg = 1;; leg++) {
        qb_dec_t leg_qty = !exit_qty ? qty : leg == 1 ? exit_qty : qty - exit_qty;
        if (leg == 2) {
            qb_risk_order_id(q->cause_id, 2, order_id);
            memset(open_qty, 0, nq * sizeof *open_qty);
            rk_ctx(r, a, sym, open_qty, nq, &c); /* now with the exit open */
            memset(&res, 0, sizeof res);
            res.price = price;
        }
        qb_dec_t reserved = 0;
        if (res.reason == QB_RISK_REASON_NONE) {
            qb_risk_order_t o;
            memset(&o, 0, sizeof o);
            o.sym = sym;
            o.side = side;
            o.type = q->type;
            o.qty = leg_qty;
            o.lot = lot;
            o.limit_price = q->limit_price;
            o.stop_price = q->stop_price;
            o.price = sg ? price : 0;
            o.stop_distance = stop_dist;
            qb_risk_check(&c, &o, &res);
            if (res.reason == QB_RISK_REASON_NONE) {
                char s1[QB_DEC_STRLEN], s2[QB_DEC_STRLEN];
                qb_dec_format(leg_qty, s1, sizeof s1);
                qb_dec_format(res.price, s2, sizeof s2);
                snprintf(res.text, sizeof res.text, "%s %s at %s%s",
                         side == QB_SIDE_BUY ? "buy" : "sell", s1, s2,
                         !exit_qty ? "" : leg == 1 ? " (exit)" : " (entry)");
                reserved = reserve_of(a, sym, open_qty[sym], side, leg_qty, res.price);
            }
        }
        e = rk_emit(r, a, q, order_id, sym, &res, side, leg_qty, reserved);
        if (e || !exit_qty || leg == 2 || res.reason != QB_RISK_REASON_NONE) break;
    }
    free(open_qty);
    return e;
}

static qb_err_t rk_on_signal(rk_t *r, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__Signal *sg = (const Qb__V1__Signal *)m->msg;
    qb_symbol_t sym;
    char msg[256];
    if (!sg->signal_id || !*sg->signal_id || strlen(sg->signal_id) > 100)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "signal: signal_id required");
    if (!id_ok(sg->account, QB_ACCOUNT_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "signal %s: bad account '%.64s'",
                          sg->signal_id, sg->account ? sg->account : "");
    if (qb_symbol_set(&sym, sg->symbol ? sg->symbol : "", msg, sizeof msg) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "signal %s: %s", sg->signal_id,
                          msg);
    if (sg->direction < 1 || sg->direction > 3)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "signal %s: direction %d",
                          sg->signal_id, (int)sg->direction);
    rk_account_t *a;
    qb_err_t e = acct_get(r, sg->account, m->partition, &a, errstr, errstr_size);
    if (e) return e;
    rk_req_t q;
    memset(&q, 0, sizeof q);
    q.cause_id = sg->signal_id;
    q.cause_kind = QB__V1__ORDER_CAUSE__ORDER_CAUSE_SIGNAL;
    q.strategy_id = sg->strategy_id;
    q.symbol = sym.s;
    q.type = QB_ORDER_TYPE_MARKET;
    q.tif = QB__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY;
    q.ref_price = sg->reference_price;
    q.not_before = sg->bar_ts;
    q.t_in = qb_time_mono_ns();
    e = rk_decide(r, a, &q, (int)sg->direction, sg, errstr, errstr_size);
    return e;
}

static qb_err_t rk_on_intent(rk_t *r, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__OrderRequest *in = (const Qb__V1__OrderRequest *)m->msg;
    qb_symbol_t sym;
    char msg[256];
    if (!in->intent_id || !*in->intent_id || strlen(in->intent_id) > 100)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "order request: intent_id required");
    if (!id_ok(in->account, QB_ACCOUNT_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "intent %s: bad account '%.64s'",
                          in->intent_id, in->account ? in->account : "");
    if (qb_symbol_set(&sym, in->symbol ? in->symbol : "", msg, sizeof msg) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "intent %s: %s", in->intent_id, msg);
    rk_account_t *a;
    qb_err_t e = acct_get(r, in->account, m->partition, &a, errstr, errstr_size);
    if (e) return e;
    rk_req_t q;
    memset(&q, 0, sizeof q);
    q.cause_id = in->intent_id;
    q.cause_kind = QB__V1__ORDER_CAUSE__ORDER_CAUSE_INTENT;
    q.strategy_id = in->strategy_id;
    q.symbol = sym.s;
    q.side = (qb_side_t)in->side;
    q.type = (qb_order_type_t)in->type;
    q.tif = (int)in->time_in_force;
    q.qty = in->qty;
    q.limit_price = in->limit_price;
    q.stop_price = in->stop_price;
    q.tp = in->take_profit_price;
    q.sl = in->stop_loss_price;
    q.client_tag = in->client_tag;
    q.t_in = qb_time_mono_ns();
    return rk_decide(r, a, &q, 0, NULL, errstr, errstr_size);
}

static qb_err_t rk_on_report(rk_t *r, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__ExecutionReport *x = (const Qb__V1__ExecutionReport *)m->msg;
    char msg[256];
    if (!id_ok(x->account, QB_ACCOUNT_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "report of %s: bad account",
                          x->order_id ? x->order_id : "");
    const char *oid = x->order_id ? x->order_id : "";
    if (x->fill_qty == 0 && !*oid) return QB_OK;
    rk_account_t *a;
    qb_err_t e = acct_get(r, x->account, m->partition, &a, errstr, errstr_size);
    if (e) return e;
    int changed = 0;
    if (x->fill_qty != 0) {
        char fid[128];
        if (x->fill_id && *x->fill_id) snprintf(fid, sizeof fid, "%.120s", x->fill_id);
        else snprintf(fid, sizeof fid, "%.100s|%llu", oid, (unsigned long long)x->sequence);
        uint64_t h = rk_hash(fid);
        qb_symbol_t sym;
        uint32_t id;
        if (rk_ring_has(a->fill_ring, a->fill_n, RK_FILL_RING, h)) {
            qb_counter_inc(r->c_dup_fills);
        } else {
            if (qb_symbol_set(&sym, x->symbol ? x->symbol : "", msg, sizeof msg) != QB_OK ||
                (x->side != 1 && x->side != 2) || x->fill_qty <= 0 || x->fill_price <= 0)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "fill %s: needs a symbol, side, fill_qty > 0, fill_price > 0",
                                  fid);
            if (qb_portfolio_symbol(a->pf, sym.s, &id, msg, sizeof msg) != QB_OK ||
                !ensure_mark_ts(a, id))
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "fill %s: %s", fid, msg);
            e = qb_portfolio_apply_fill(a->pf, id, (qb_side_t)x->side, x->fill_qty, x->fill_price,
                                        x->commission, msg, sizeof msg);
            if (e) return qb_err_set(errstr, errstr_size, e, "fill %s: %s", fid, msg);
            if (a->pos_dirty) a->pos_dirty[id] = 1;
            rk_ring_add(a->fill_ring, &a->fill_n, RK_FILL_RING, h);
            qb_time_t ts = x->header && x->header->event_time ? x->header->event_time : qb_time_now();
            (void)rk_batch_fill(r->batch, a->name, fid, oid, sym.s, (int)x->side, x->fill_qty,
                                x->fill_price, x->commission, ts);
            qb_counter_inc(r->c_fills);
            changed = 1;
        }
    }
    for (size_t i = 0; i < a->nopen; i++) {
        rk_open_t *o = &a->open[i];
        if (strcmp(o->id, oid) != 0) continue;
        int final = qb_order_status_is_terminal((qb_order_status_t)x->status) ||
                    x->status == QB__V1__ORDER_STATUS__ORDER_STATUS_FILLED;
        qb_dec_t leaves = final ? 0 : x->leaves_qty > 0 ? x->leaves_qty : o->leaves;
        if (leaves > o->leaves) leaves = o->leaves;
        o->reserved = o->leaves > 0 ? (qb_dec_t)((qb_dec_wide_t)o->reserved * leaves / o->leaves) : 0;
        o->leaves = leaves;
        (void)rk_batch_order_update(r->batch, o->id, o->leaves, o->reserved, leaves > 0);
        if (leaves == 0) a->open[i] = a->open[--a->nopen];
        changed = 1;
        break;
    }
    if (changed) {
        a->dirty = 1;
        rk_post(r, a);
        if (!r->first_staged) r->first_staged = qb_time_now();
    }
    return QB_OK;
}

/* ---- bars ------------------------------------------------------------------------------- */

typedef struct rk_bar_s {
    const char *symbol;
    qb_dec_t close;
    qb_time_t close_ts;
} rk_bar_t;

static void mark_one(rk_t *r, rk_account_t *a, void *opaque) {
    const rk_bar_t *b = opaque;
    uint32_t id;
    if (qb_portfolio_symbol_find(a->pf, b->symbol, &id) != QB_OK || !ensure_mark_ts(a, id)) return;
    if (a->mark_ts[id] > b->close_ts) return; /* an older bar */
    if (qb_portfolio_mark(a->pf, id, b->close) != QB_OK) return;
    a->mark_ts[id] = b->close_ts;
    if (a->pos_dirty) a->pos_dirty[id] = 1;
    qb_counter_inc(r->c_marks);
    /* A mark alone (and the P&L it moves) waits for the mark cadence
     * (QB_RISK_MARK_FLUSH_MS) instead of writing the account at the next
     * decision flush; a breach (flags, events) is staged at once. */
    int was = a->dirty;
    a->mark_dirty = 1;
    if (qb_portfolio_qty(a->pf, id) != 0) rk_post(r, a);
    if (!was && !a->flags_dirty) a->dirty = 0;
}

static void rk_on_bar(rk_t *r, const Qb__V1__Bar *pb) {
    qb_symbol_t sym;
    int64_t tf;
    if (!pb->symbol || qb_symbol_set(&sym, pb->symbol, NULL, 0) != QB_OK || pb->close <= 0 ||
        !pb->timeframe || qb_timeframe_parse(pb->timeframe, &tf) != QB_OK)
        return;
    rk_bar_t b = {sym.s, pb->close, pb->ts + tf};
    rk_px_t *p = px_get(r, sym.s, 1);
    if (p && b.close_ts >= p->close_ts) {
        p->close = pb->close;
        p->close_ts = b.close_ts;
    }
    acct_each(r, mark_one, &b);
}

/* ---- the outbox after a crash ------------------------------------------------------------- */

static void scan_topic(rk_t *r, const char *topic, rk_unpub_t *v, size_t n) {
    char err[512];
    qb_reader_t *rd = qb_reader_new(topic, 1, 10000, err, sizeof err);
    if (!rd) {
        QB_WARN("outbox: cannot read %s (%s): unacknowledged decisions are sent again", topic, err);
        return;
    }
    size_t seen = 0, scanned = 0;
    qb_time_t deadline = qb_time_mono_ns() + 120LL * 1000000000LL;
    while (seen < n && qb_time_mono_ns() < deadline) {
        qb_bus_msg_t m;
        const char *derr = NULL;
        if (qb_reader_next(rd, (int)r->cfg->scan_ms, &m, &derr) != QB_OK) break;
        scanned++;
        if (!m.msg) continue;
        const char *id = NULL;
        if (strcmp(m.type, "qb.v1.Order") == 0) id = ((const Qb__V1__Order *)m.msg)->order_id;
        else if (strcmp(m.type, "qb.v1.ExecutionReport") == 0)
            id = ((const Qb__V1__ExecutionReport *)m.msg)->order_id;
        if (!id) continue;
        for (size_t i = 0; i < n; i++)
            if (!v[i].seen && strcmp(v[i].topic, topic) == 0 && strcmp(v[i].id, id) == 0) {
                v[i].seen = 1;
                seen++;
            }
    }
    QB_INFO("outbox: %zu of %s read, %zu unacknowledged decisions found there", scanned, topic,
            seen);
    qb_reader_destroy(rd);
}

/* Which unacknowledged decisions are on their topic. One scan (the topics
 * from the beginning) serves every account loaded after a crash: it looks
 * for the unpublished decisions of ALL accounts and remembers the answer;
 * an account whose rows the last scan did not cover scans again. */
static int seen_lookup(rk_t *r, rk_unpub_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < r->nseen && strcmp(r->seen[j].id, v[i].id) != 0) j++;
        if (j == r->nseen) return 0;
        v[i].seen = r->seen[j].seen;
    }
    return 1;
}

static qb_err_t rk_drain(rk_t *r, rk_account_t *a, char *errstr, size_t errstr_size) {
    rk_unpub_t *v = NULL;
    size_t n = 0;
    qb_err_t e = rk_store_unpublished(r->store, a->name, &v, &n, errstr, errstr_size);
    if (e || !n) return e;
    if (!seen_lookup(r, v, n)) {
        rk_unpub_free(r->seen, r->nseen);
        r->seen = NULL;
        r->nseen = 0;
        e = rk_store_unpublished(r->store, NULL, &r->seen, &r->nseen, errstr, errstr_size);
        if (e) {
            rk_unpub_free(v, n);
            return e;
        }
        int any_orders = 0, any_reports = 0;
        for (size_t i = 0; i < r->nseen; i++) {
            if (strcmp(r->seen[i].topic, "orders") == 0) any_orders = 1;
            else any_reports = 1;
        }
        if (any_orders) scan_topic(r, "orders", r->seen, r->nseen);
        if (any_reports) scan_topic(r, "exec.reports", r->seen, r->nseen);
        if (!seen_lookup(r, v, n)) { /* cannot happen: v is a subset */
            rk_unpub_free(v, n);
            return QB_ERR_UNAVAILABLE;
        }
    }
    size_t sent = 0;
    for (size_t i = 0; i < n && !e; i++) {
        if (v[i].seen) continue;
        e = qb_producer_send(r->producer, v[i].topic, a->name, strlen(a->name),
                             strcmp(v[i].topic, "orders") == 0 ? "qb.v1.Order"
                                                               : "qb.v1.ExecutionReport",
                             v[i].msg, v[i].len, "");
        sent++;
    }
    if (!e) e = qb_producer_flush(r->producer, 30000);
    if (!e) e = rk_store_mark_published(r->store, v, n, errstr, errstr_size);
    if (!e)
        QB_WARN("account %s: %zu decisions were not acknowledged before a crash: %zu found on "
                "their topic, %zu sent now",
                a->name, n, n - sent, sent);
    rk_unpub_free(v, n);
    return e ? QB_ERR_UNAVAILABLE : QB_OK;
}

static void rk_drain_events(rk_t *r) {
    rk_unpub_t *v = NULL;
    size_t n = 0;
    char err[512];
    if (rk_store_unpublished_events(r->store, &v, &n, err, sizeof err) != QB_OK || !n) return;
    qb_err_t e = QB_OK;
    for (size_t i = 0; i < n && !e; i++)
        e = qb_producer_send(r->producer, "risk.events", v[i].topic, strlen(v[i].topic),
                             "qb.v1.RiskEvent", v[i].msg, v[i].len, "");
    if (!e) e = qb_producer_flush(r->producer, 30000);
    if (!e && rk_store_mark_events(r->store, v, n, err, sizeof err) == QB_OK)
        QB_INFO("%zu risk events left unsent by a crash sent again", n);
    rk_unpub_free(v, n);
}

/* ---- flush --------------------------------------------------------------------------------- */

typedef struct rk_dirty_s {
    rk_account_t **v;
    size_t n, cap;
} rk_dirty_t;

static void collect_dirty(rk_t *r, rk_account_t *a, void *opaque) {
    rk_dirty_t *d = opaque;
    if (!(a->dirty || a->flags_dirty || (r->flush_marks && a->mark_dirty))) return;
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap * 2 : 64;
        rk_account_t **v = realloc(d->v, c * sizeof *v);
        if (!v) return;
        d->v = v;
        d->cap = c;
    }
    d->v[d->n++] = a;
}

static void cache_account(rk_t *r, rk_account_t *a) {
    if (!r->cache) return;
    size_t n = qb_portfolio_nsymbols(a->pf), cap = 512 + n * 160, pos = 0;
    char *j = malloc(cap), b1[QB_DEC_STRLEN], b2[QB_DEC_STRLEN], b3[QB_DEC_STRLEN];
    if (!j) return;
    qb_dec_format(qb_portfolio_cash(a->pf), b1, sizeof b1);
    qb_dec_format(qb_portfolio_equity(a->pf), b2, sizeof b2);
    qb_dec_format(a->pnl.hwm, b3, sizeof b3);
    pos += (size_t)snprintf(j + pos, cap - pos,
                            "{\"account\":\"%s\",\"status\":\"%s\",\"paused_until\":%lld,"
                            "\"cash\":\"%s\",\"equity\":\"%s\",\"hwm\":\"%s\",\"positions\":{",
                            a->name, qb_risk_status_name(a->status), (long long)a->paused_until,
                            b1, b2, b3);
    int first = 1;
    for (uint32_t i = 0; i < n; i++) {
        qb_dec_t q = qb_portfolio_qty(a->pf, i);
        if (q == 0) continue;
        qb_dec_format(q, b1, sizeof b1);
        qb_dec_format(qb_portfolio_mark_price(a->pf, i), b2, sizeof b2);
        pos += (size_t)snprintf(j + pos, cap - pos, "%s\"%s\":{\"qty\":\"%s\",\"mark\":\"%s\"}",
                                first ? "" : ",", qb_portfolio_symbol_name(a->pf, i), b1, b2);
        first = 0;
    }
    pos += (size_t)snprintf(j + pos, cap - pos, "}}");
    char key[96], err[256];
    snprintf(key, sizeof key, "qb:risk:account:%s", a->name);
    (void)qb_cache_set(r->cache, key, j, pos, 0, err, sizeof err);
    free(j);
}

static void off_set(rk_t *r, const char *topic, int32_t partition, int64_t next) {
    for (size_t i = 0; i < r->noffs; i++)
        if (r->offs[i].partition == partition && strcmp(r->offs[i].topic, topic) == 0) {
            if (next > r->offs[i].next) r->offs[i].next = next;
            return;
        }
    if (r->noffs == RK_MAX_OFFS) return;
    rk_off_t *o = &r->offs[r->noffs++];
    snprintf(o->topic, sizeof o->topic, "%s", topic);
    o->partition = partition;
    o->next = next;
}

/* Ids sent and not yet acknowledged, as a PostgreSQL array literal. */
static void ids_add(rk_ids_t *x, const char *id) {
    size_t need = x->len + QB_UUID_STRLEN + 4;
    if (need > x->cap) {
        size_t c = need * 2;
        char *v = realloc(x->buf, c);
        if (!v) return; /* unmarked: looked up on the topic at the next load */
        x->buf = v;
        x->cap = c;
    }
    x->len += (size_t)snprintf(x->buf + x->len, x->cap - x->len, "%s%s", x->n ? "," : "{", id);
    x->n++;
}
static const char *ids_array(rk_ids_t *x) {
    if (!x->n) return "{}";
    x->buf[x->len] = '}';
    x->buf[x->len + 1] = '\0';
    return x->buf;
}

/* Mark what the bus acknowledged as published. Without `wait`, only when
 * nothing is in flight (or it has been in flight for a second); a delivery
 * that failed for good stops the service: the restart looks the unmarked
 * decisions up on their topic and sends only the missing ones. */
static qb_err_t rk_acks(rk_t *r, int wait) {
    char errstr[512];
    if (!r->unacked_o.n && !r->unacked_e.n) return QB_OK;
    qb_time_t now = qb_time_mono_ns();
    int overdue = now - r->unacked_since > 1000000000LL;
    if (!wait && !overdue && qb_producer_outq_len(r->producer) > 0) return QB_OK;
    qb_err_t e = qb_producer_flush(r->producer, wait || overdue ? 30000 : 0);
    if (e == QB_ERR_TIMEOUT && !wait && !overdue) return QB_OK;
    if (e) {
        QB_ERROR("decisions not acknowledged by the bus (%s): stopping; the restart sends what "
                 "is missing",
                 qb_err_str(e));
        r->fatal = 1;
        qb_svc_stop(r->svc);
        return e;
    }
    e = rk_store_mark(r->store, ids_array(&r->unacked_o), ids_array(&r->unacked_e), errstr,
                      sizeof errstr);
    if (e) {
        QB_WARN("marking %zu decisions published: %s (retried)", r->unacked_o.n, errstr);
        return e;
    }
    r->unacked_o.n = r->unacked_o.len = 0;
    r->unacked_e.n = r->unacked_e.len = 0;
    return QB_OK;
}

/* Make what was handled durable (one transaction with the input offsets),
 * send the decisions and events, let the offsets commit; with `wait`, also
 * wait for the bus and mark them published (revoke, exit). */
static qb_err_t rk_flush(rk_t *r, int wait) {
    char errstr[1024];
    rk_dirty_t d = {0};
    if (wait) r->flush_marks = 1; /* revoke, exit: everything */
    acct_each(r, collect_dirty, &d);
    if (rk_batch_rows(r->batch) == 0 && d.n == 0 && !rk_batch_written(r->batch)) {
        free(d.v);
        r->first_staged = 0;
        r->flush_marks = 0;
        qb_err_t e = r->consumer && qb_consumer_pending(r->consumer)
                         ? qb_consumer_store_pending(r->consumer) : QB_OK;
        return e ? e : rk_acks(r, wait);
    }
    qb_time_t t0 = qb_time_mono_ns();
    qb_err_t e = rk_batch_write(r->batch, r->store, d.v, d.n, errstr, sizeof errstr);
    if (e) {
        free(d.v);
        QB_WARN("flush: %s: retried", errstr);
        return e;
    }
    for (size_t i = 0; i < d.n; i++) {
        rk_account_t *a = d.v[i];
        a->dirty = a->flags_dirty = a->mark_dirty = 0;
        if (a->pos_dirty) memset(a->pos_dirty, 0, a->nmark_ts);
        a->pos_clean = a->pos_dirty != NULL;
    }
    r->flush_marks = 0;
    qb_time_t t1 = qb_time_mono_ns();
    /* send what is durable now */
    if (!r->unacked_o.n && !r->unacked_e.n) r->unacked_since = t1;
    for (size_t i = 0; i < rk_batch_ndecisions(r->batch) && !e; i++) {
        const rk_decision_t *x = rk_batch_decision_at(r->batch, i);
        int64_t was = qb_bus_set_origin(x->origin_ns);
        e = qb_producer_send(r->producer, x->topic, x->account, strlen(x->account), x->msg_type,
                             x->msg, x->len, "");
        qb_bus_set_origin(was);
        if (!e) ids_add(&r->unacked_o, x->order_id);
        if (!e && x->cause_kind == QB__V1__ORDER_CAUSE__ORDER_CAUSE_SIGNAL)
            qb_hist_observe(r->h_signal, (double)(t1 - x->t_in) / 1e9);
    }
    for (size_t i = 0; i < rk_batch_nevents(r->batch) && !e; i++) {
        const char *acc;
        const uint8_t *msg;
        size_t len;
        rk_batch_event_at(r->batch, i, &acc, &msg, &len);
        e = qb_producer_send(r->producer, "risk.events", acc, strlen(acc), "qb.v1.RiskEvent", msg,
                             len, "");
        if (!e) ids_add(&r->unacked_e, rk_batch_event_id(r->batch, i));
    }
    QB_DEBUG("flush: %zu decisions, %zu events, %zu accounts: written in %.2f ms",
             rk_batch_ndecisions(r->batch), rk_batch_nevents(r->batch), d.n,
             (double)(t1 - t0) / 1e6);
    rk_batch_done(r->batch);
    if (e) {
        /* the bus refuses more (queue full for 10 s): what was not sent is
         * durable and unmarked; the restart sends it */
        QB_ERROR("flush: cannot send (%s): stopping", qb_err_str(e));
        r->fatal = 1;
        qb_svc_stop(r->svc);
        free(d.v);
        return e;
    }
    for (size_t i = 0; i < d.n; i++) cache_account(r, d.v[i]);
    free(d.v);
    e = r->consumer ? qb_consumer_store_pending(r->consumer) : QB_OK;
    qb_counter_inc(r->c_flushes);
    qb_hist_observe(r->h_flush, (double)(qb_time_mono_ns() - t0) / 1e9);
    r->first_staged = 0;
    qb_err_t ea = rk_acks(r, wait);
    return e ? e : ea;
}

/* Every handled record's next offset, durable or staged. */
static qb_err_t rk_applied(rk_t *r, const char *topic, int32_t partition, int64_t *next,
                           char *errstr, size_t errstr_size) {
    int64_t staged = rk_batch_offset_of(r->batch, topic, partition);
    for (size_t i = 0; i < r->noffs; i++)
        if (r->offs[i].partition == partition && strcmp(r->offs[i].topic, topic) == 0) {
            *next = staged > r->offs[i].next ? staged : r->offs[i].next;
            return QB_OK;
        }
    int64_t db;
    qb_err_t e = rk_store_offset(r->store, topic, partition, &db, errstr, errstr_size);
    if (e) return e;
    off_set(r, topic, partition, db < 0 ? 0 : db);
    *next = staged > db ? staged : db;
    return QB_OK;
}

typedef struct rk_revoked_s {
    const void *parts;
} rk_revoked_t;

static void drop_revoked(rk_t *r, rk_account_t *a, void *opaque) {
    const rk_revoked_t *rv = opaque;
    for (int i = 0; i < qb_consumer_revoked_count(rv->parts); i++) {
        const char *t = qb_consumer_revoked_topic(rv->parts, i);
        if (strcmp(t, r->t_control) == 0) continue;
        if (qb_consumer_revoked_partition(rv->parts, i) != a->partition) continue;
        uint64_t k = rk_hash(a->name) % RK_ABUCKETS;
        for (rk_account_t **pp = &r->acct[k]; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        account_free(a);
        qb_gauge_add(r->g_accounts, -1);
        return;
    }
}

static void rk_revoked(void *opaque, const void *parts) {
    rk_t *r = opaque;
    if (rk_flush(r, 1) != QB_OK) {
        /* The staged effects cannot be made durable and the next owner
         * replays them; this process cannot rewind its other partitions:
         * stop (the state in PostgreSQL is consistent) and let it restart. */
        QB_ERROR("revoke: flush failed: stopping (restart replays from the durable point)");
        qb_svc_stop(r->svc);
        return;
    }
    rk_revoked_t rv = {parts};
    acct_each(r, drop_revoked, &rv);
    for (int i = 0; i < qb_consumer_revoked_count(parts); i++) {
        const char *t = qb_consumer_revoked_topic(parts, i);
        int32_t p = qb_consumer_revoked_partition(parts, i);
        for (size_t j = 0; j < r->noffs; j++)
            if (r->offs[j].partition == p && strcmp(r->offs[j].topic, t) == 0) {
                r->offs[j] = r->offs[--r->noffs];
                break;
            }
    }
}

/* ---- snapshot -------------------------------------------------------------------------------- */

static void rk_snapshot(rk_t *r, rk_account_t *a, const char *command_id) {
    Qb__V1__RiskEvent__Snapshot pb;
    char *json = NULL, errstr[512];
    qb_err_t e = rk_stats_snapshot(r->stats, r->store, a->pf, r->cfg->benchmark,
                                   (int)r->cfg->mc_sims, &pb, &json, errstr, sizeof errstr);
    if (!e) e = rk_store_snapshot(r->store, a->name, qb_time_now(), json, errstr, sizeof errstr);
    if (!e) {
        char text[160];
        snprintf(text, sizeof text, "risk snapshot: %u periods, VaR95 hist %.4g param %.4g mc %.4g",
                 pb.periods, pb.var_hist_95, pb.var_param_95, pb.var_mc_95);
        (void)rk_event(r, a->name, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_RISK_SNAPSHOT,
                       QB__V1__SEVERITY__SEVERITY_INFO, 0, 0, 0, text, command_id, 0, NULL, NULL,
                       NULL, qb_risk_status_name(a->status), &pb);
        qb_counter_inc(r->c_snapshots);
    } else {
        QB_WARN("account %s: risk snapshot failed: %s", a->name, errstr);
    }
    rk_snapshot_clear(&pb);
    free(json);
}

static void snap_one(rk_t *r, rk_account_t *a, void *opaque) {
    (void)opaque;
    for (uint32_t i = 0; i < qb_portfolio_nsymbols(a->pf); i++)
        if (qb_portfolio_qty(a->pf, i) != 0) {
            rk_snapshot(r, a, NULL);
            return;
        }
}

/* ---- control --------------------------------------------------------------------------------- */

static void reload_one(rk_t *r, rk_account_t *a, void *opaque) {
    char errstr[512], text[256];
    (void)opaque;
    if (a->flags_dirty) return; /* our own change is not written yet */
    qb_risk_status_t st;
    qb_time_t until;
    int64_t resumes, seq;
    if (rk_store_load_flags(r->store, a->name, &st, &until, &resumes, &seq, text, sizeof text,
                            errstr, sizeof errstr) != QB_OK ||
        rk_store_load_limits(r->store, a, errstr, sizeof errstr) != QB_OK) {
        QB_WARN("account %s: reload failed: %s", a->name, errstr);
        return;
    }
    if (seq == a->flags_seq) return;
    if (st != a->status) QB_INFO("account %s: %s -> %s (%s)", a->name, qb_risk_status_name(a->status),
                                 qb_risk_status_name(st), text);
    a->status = st;
    a->paused_until = until;
    a->flags_seq = seq;
    snprintf(a->status_text, sizeof a->status_text, "%s", text);
    if (resumes > a->resumes) {
        qb_risk_post_rebase(&a->pnl, qb_portfolio_equity(a->pf), qb_time_now());
        a->resumes = resumes;
        a->dirty = 1;
    }
}

static qb_err_t rk_reload(rk_t *r, int force) {
    char errstr[512], text[256];
    int64_t seq;
    qb_err_t e = rk_store_change_seq(r->store, &seq, errstr, sizeof errstr);
    if (e) return e;
    if (!force && seq == r->seen_seq) return QB_OK;
    qb_risk_status_t st;
    qb_time_t until;
    int64_t resumes, s2;
    if (rk_store_load_flags(r->store, "*", &st, &until, &resumes, &s2, text, sizeof text, errstr,
                            sizeof errstr) == QB_OK) {
        int h = st == QB_RISK_HALTED;
        if (h != r->global_halt) QB_WARN("platform-wide kill switch %s", h ? "ON" : "off");
        r->global_halt = h;
    }
    acct_each(r, reload_one, NULL);
    r->seen_seq = seq;
    return QB_OK;
}

static qb_err_t rk_on_control(rk_t *r, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__Command *cmd = (const Qb__V1__Command *)m->msg;
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_KILL_SWITCH:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_RESUME:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_RISK_SNAPSHOT: break;
    case QB__V1__COMMAND_KIND__COMMAND_KIND_RELOAD: break;
    default: return QB_OK;
    }
    const char *target = cmd->target ? cmd->target : "";
    if (*target && strcmp(target, "qb-risk") != 0 && strcmp(target, "*") != 0) return QB_OK;
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_RELOAD) return rk_reload(r, 1);
    const char *cid = cmd->command_id ? cmd->command_id : "";
    if (!*cid || strlen(cid) > 100)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "command: command_id required");
    const char *account = cmd->account && *cmd->account ? cmd->account : "";
    if (*account && !id_ok(account, QB_ACCOUNT_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "command %s: bad account '%.64s'",
                          cid, account);
    qb_counter_inc(r->c_cmds);
    int dup = 0;
    qb_err_t e = QB_OK;
    rk_account_t *a = *account ? acct_find(r, account) : NULL;
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS) {
        if (!*account || cmd->params_case != QB__V1__COMMAND__PARAMS_LIMITS)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "SET_LIMITS %s: account and params.limits are required", cid);
        int refused = 0;
        char msg[512];
        e = rk_store_set_limits(r->store, cmd, &dup, &refused, msg, sizeof msg, errstr,
                                errstr_size);
        if (e || dup) return e;
        if (refused) {
            qb_counter_inc(r->c_refused);
            QB_WARN("SET_LIMITS %s for %s by %s refused: %s", cid, account,
                    cmd->issued_by ? cmd->issued_by : "", msg);
            return rk_event(r, account, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_LIMITS_REFUSED,
                            QB__V1__SEVERITY__SEVERITY_WARNING, 0, 0, 0, msg, cid, 0, NULL, NULL,
                            NULL, NULL, NULL);
        }
        QB_INFO("SET_LIMITS %s for %s by %s: %zu limits applied", cid, account,
                cmd->issued_by ? cmd->issued_by : "", cmd->limits->n_limits);
        if (a) (void)rk_store_load_limits(r->store, a, errstr, errstr_size);
        char msg2[128];
        snprintf(msg2, sizeof msg2, "%zu limits set by %s", cmd->limits->n_limits,
                 cmd->issued_by ? cmd->issued_by : "");
        return rk_event(r, account, QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_LIMITS_CHANGED,
                        QB__V1__SEVERITY__SEVERITY_INFO, 0, 0, 0, msg2, cid, 0, NULL, NULL, NULL,
                        NULL, NULL);
    }
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_RISK_SNAPSHOT) {
        if (a) {
            rk_snapshot(r, a, cid);
        } else if (*account) {
            /* Held by another replica (or none): a read-only copy from the
             * stored state, never put in the table (its owner writes it). */
            rk_account_t *t = calloc(1, sizeof *t);
            int64_t unpub;
            if (!t) return QB_ERR_NOMEM;
            snprintf(t->name, sizeof t->name, "%s", account);
            e = rk_store_load_account(r->store, t, r->initial_cash, &r->pcfg, qb_time_now(),
                                      &unpub, errstr, errstr_size);
            if (!e) rk_snapshot(r, t, cid);
            account_free(t);
        } else {
            acct_each(r, snap_one, NULL);
        }
        return e;
    }
    int resume = cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_RESUME;
    const char *acc = *account ? account : "*";
    qb_risk_status_t was;
    e = rk_store_set_status(r->store, cmd, acc, resume ? QB_RISK_ACTIVE : QB_RISK_HALTED, resume,
                            &dup, &was, errstr, errstr_size);
    if (e || dup) return e;
    char text[300];
    if (resume) {
        snprintf(text, sizeof text, "resumed by %s: %.200s", cmd->issued_by ? cmd->issued_by : "",
                 cmd->reason ? cmd->reason : "");
        QB_WARN("RESUME %s for %s (%s)", cid, acc, text);
        if (was == QB_RISK_HALTED)
            (void)rk_event(r, *account ? account : "",
                           QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_OFF,
                           QB__V1__SEVERITY__SEVERITY_WARNING, 0, 0, 0, text, cid, 0, NULL, NULL,
                           NULL, "ACTIVE", NULL);
        (void)rk_event(r, *account ? account : "", QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_RESUMED,
                       QB__V1__SEVERITY__SEVERITY_WARNING, 0, 0, 0, text, cid, 0, NULL, NULL, NULL,
                       "ACTIVE", NULL);
        if (!*account) r->global_halt = 0;
        if (a) {
            a->status = QB_RISK_ACTIVE;
            a->paused_until = 0;
            a->resumes++;
            qb_risk_post_rebase(&a->pnl, qb_portfolio_equity(a->pf), qb_time_now());
            a->dirty = 1;
        }
    } else {
        const Qb__V1__Command__KillSwitchParams *kp =
            cmd->params_case == QB__V1__COMMAND__PARAMS_KILL_SWITCH ? cmd->kill_switch : NULL;
        snprintf(text, sizeof text, "kill switch by %s: %.200s%s%s",
                 cmd->issued_by ? cmd->issued_by : "", cmd->reason ? cmd->reason : "",
                 kp && kp->keep_open_orders ? " (keep open orders)" : "",
                 kp && kp->flatten_positions ? " (flatten positions)" : "");
        QB_WARN("KILL_SWITCH %s for %s (%s)", cid, acc, text);
        (void)rk_event(r, *account ? account : "",
                       QB__V1__RISK_EVENT_KIND__RISK_EVENT_KIND_KILL_SWITCH_ON,
                       QB__V1__SEVERITY__SEVERITY_CRITICAL, 0, 0, 0, text, cid, 0, NULL, NULL,
                       NULL, "HALTED", NULL);
        if (!*account) r->global_halt = 1;
        if (a) a->status = QB_RISK_HALTED;
    }
    return QB_OK;
}

/* ---- the consumer -------------------------------------------------------------------------------- */

static qb_err_t rk_handle(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    rk_t *r = opaque;
    if (strcmp(m->topic, r->t_control) == 0) return rk_on_control(r, m, errstr, errstr_size);
    int64_t next;
    qb_err_t e = rk_applied(r, m->topic, m->partition, &next, errstr, errstr_size);
    if (e) return e;
    if (m->offset < next) {
        qb_counter_inc(r->c_skipped); /* applied before a crash: durable already */
        return QB_OK;
    }
    if (strcmp(m->topic, r->t_signals) == 0) e = rk_on_signal(r, m, errstr, errstr_size);
    else if (strcmp(m->topic, r->t_intents) == 0) e = rk_on_intent(r, m, errstr, errstr_size);
    else if (strcmp(m->topic, r->t_reports) == 0) e = rk_on_report(r, m, errstr, errstr_size);
    if (!e || !qb_err_is_retriable(e)) {
        (void)rk_batch_offset(r->batch, m->topic, m->partition, m->offset + 1);
        if (!r->first_staged) r->first_staged = qb_time_now();
    }
    return e;
}

static void free_all(rk_t *r, rk_account_t *a, void *opaque) {
    (void)r;
    (void)opaque;
    account_free(a);
}

int main(int argc, char **argv) {
    static rk_cfg_t cfg;
    static rk_t r;
    static const char about[] =
        "The risk service: turns signals (topic signals) and manual order requests\n"
        "(orders.intents) into sized orders on `orders` when they fit the account's limits, or\n"
        "rejections (ExecutionReport REJECTED with a reason code) on exec.reports; keeps each\n"
        "account's positions, cash and P&L from exec.reports, marked with md.bars; pauses an\n"
        "account at its daily loss limit and halts it (kill switch) at its max drawdown;\n"
        "limits, kill switch and resume through `control`; VaR/CVaR snapshots on risk.events.\n"
        "State in PostgreSQL (schema risk), a copy in Redis. Admin port: /healthz, /readyz,\n"
        "/metrics.";
    char errstr[1024];
    int rc = 0;
    r.svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-risk", .about = about, .admin_port = 9103,
                                       .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG |
                                                QB_SVC_NEEDS_REDIS,
                                       .table = rk_cfg_entries, .cfg = &cfg},
                       argc, argv, &rc);
    if (!r.svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(r.svc);
    r.cfg = &cfg;
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    qb_portfolio_config_default(&r.pcfg);
    r.pcfg.allow_short = cfg.allow_short;
    if (qb_dec_parse(cfg.initial_cash, strlen(cfg.initial_cash), &r.initial_cash) != QB_OK ||
        r.initial_cash < 0) {
        QB_ERROR("QB_RISK_INITIAL_CASH: '%s' is not a decimal >= 0", cfg.initial_cash);
        goto out;
    }
    if (qb_dec_parse(cfg.margin_long, strlen(cfg.margin_long), &r.pcfg.margin_long) != QB_OK ||
        r.pcfg.margin_long <= 0) {
        QB_ERROR("QB_RISK_MARGIN_LONG: '%s' is not a decimal > 0", cfg.margin_long);
        goto out;
    }
    if (qb_dec_parse(cfg.margin_short, strlen(cfg.margin_short), &r.pcfg.margin_short) != QB_OK ||
        r.pcfg.margin_short <= 0) {
        QB_ERROR("QB_RISK_MARGIN_SHORT: '%s' is not a decimal > 0", cfg.margin_short);
        goto out;
    }
    if (strcmp(cfg.mode, "paper") == 0) r.mode = QB__V1__TRADING_MODE__TRADING_MODE_PAPER;
    else if (strcmp(cfg.mode, "live") == 0) r.mode = QB__V1__TRADING_MODE__TRADING_MODE_LIVE;
    else {
        QB_ERROR("QB_RISK_MODE: '%s' must be paper or live", cfg.mode);
        goto out;
    }
    int64_t tfns;
    if (qb_timeframe_parse(cfg.stats_tf, &tfns) != QB_OK) {
        QB_ERROR("QB_RISK_STATS_TIMEFRAME: unknown '%s' (1m 5m 15m 30m 1h 4h 1d 1w)", cfg.stats_tf);
        goto out;
    }
    r.t_signals = qb_topic_resolve("signals");
    r.t_intents = qb_topic_resolve("orders.intents");
    r.t_reports = qb_topic_resolve("exec.reports");
    r.t_control = qb_topic_resolve("control");
    if (!(r.batch = rk_batch_new()) ||
        !(r.stats = rk_stats_new(cfg.stats_tf, (int)cfg.stats_bars, (int)cfg.stats_refresh_s)))
        goto out;
    if (!(r.store = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (com->redis_url && *com->redis_url &&
        !(r.cache = qb_cache_new(com->redis_url, errstr, sizeof errstr))) {
        QB_ERROR("QB_REDIS_URL: %s", errstr);
        goto out;
    }
    if (!(r.producer = qb_producer_new(errstr, sizeof errstr))) {
        QB_ERROR("producer: %s", errstr);
        goto out;
    }
    r.c_approved = qb_metrics_counter("qb_risk_decisions_total", "orders decided", "outcome=\"approved\"");
    r.c_rejected = qb_metrics_counter("qb_risk_decisions_total", "orders decided", "outcome=\"rejected\"");
    r.c_fills = qb_metrics_counter("qb_risk_fills_total", "fills applied to the books", NULL);
    r.c_dup_fills = qb_metrics_counter("qb_risk_duplicate_fills_total", "fills seen before (ignored)", NULL);
    r.c_dups = qb_metrics_counter("qb_risk_duplicate_causes_total",
                                  "signals / intents already decided (ignored)", NULL);
    r.c_skipped = qb_metrics_counter("qb_risk_replayed_total",
                                     "records below the durable offset (applied before a restart)", NULL);
    r.c_marks = qb_metrics_counter("qb_risk_marks_total", "positions marked by a bar", NULL);
    r.c_breaches = qb_metrics_counter("qb_risk_breaches_total", "daily loss pauses and drawdown halts", NULL);
    r.c_flushes = qb_metrics_counter("qb_risk_flushes_total", "batches made durable", NULL);
    r.c_cmds = qb_metrics_counter("qb_risk_commands_total", "control commands handled", NULL);
    r.c_refused = qb_metrics_counter("qb_risk_limits_refused_total",
                                     "SET_LIMITS refused (above a hard maximum, bad kind or key)", NULL);
    r.c_snapshots = qb_metrics_counter("qb_risk_snapshots_total", "risk snapshots computed", NULL);
    r.h_decide = qb_metrics_histogram("qb_risk_decision_seconds",
                                      "signal or intent received -> decision made (in memory)", NULL);
    r.h_signal = qb_metrics_histogram("qb_risk_signal_to_order_seconds",
                                      "signal received -> its order or rejection durable and sent",
                                      NULL);
    r.h_flush = qb_metrics_histogram("qb_risk_flush_seconds",
                                     "database write + publish + acknowledgement", NULL);
    r.g_accounts = qb_metrics_gauge("qb_risk_accounts", "accounts held by this replica", NULL);
    rc = 1;
    if (qb_svc_migrate(r.svc, r.store, cfg.migrate)) goto out;
    while (qb_svc_running(r.svc) && rk_reload(&r, 1) != QB_OK) usleep(500 * 1000);
    rk_drain_events(&r);
    if (cfg.read_bars && !(r.bars = qb_reader_new("md.bars", 0, 10000, errstr, sizeof errstr))) {
        QB_ERROR("md.bars reader: %s", errstr);
        rc = 2;
        goto out;
    }
    /* One account's records of every topic must reach the same replica:
     * the range assignor gives each member the same partition numbers of
     * every topic (they all have the same count and key). */
    const char *pas = getenv("QB_KAFKA_PARTITION_ASSIGNMENT_STRATEGY");
    if (pas && strcmp(pas, "range") != 0)
        QB_WARN("QB_KAFKA_PARTITION_ASSIGNMENT_STRATEGY=%s ignored: qb-risk needs 'range' (an "
                "account's topics co-partitioned on one replica)",
                pas);
    setenv("QB_KAFKA_PARTITION_ASSIGNMENT_STRATEGY", "range", 1);
    const char *topics[] = {"signals", "orders.intents", "exec.reports", "control"};
    r.consumer = qb_consumer_new(cfg.group, topics, 4, rk_handle, &r, errstr, sizeof errstr);
    if (!r.consumer) {
        QB_ERROR("consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    qb_consumer_set_deferred_store(r.consumer, 1);
    qb_consumer_set_revoke_cb(r.consumer, rk_revoked, &r);
    QB_INFO("qb-risk ready: group %s, admin port %d", cfg.group, qb_svc_admin_port(r.svc));

    rc = 0;
    qb_time_t next_reload = qb_time_now() + cfg.reload_ms * 1000000LL;
    qb_time_t next_snap = cfg.snapshot_s ? qb_time_now() + cfg.snapshot_s * 1000000000LL : 0;
    qb_time_t next_marks = qb_time_now() + cfg.mark_flush_ms * 1000000LL;
    while (qb_svc_running(r.svc)) {
        /* Group commit: take every record already fetched (up to a
         * batch), then write them in one transaction and send their
         * decisions right away, instead of one record per turn and a
         * flush every QB_RISK_FLUSH_MS: the flush's own time is what lets
         * the next batch gather under load. */
        qb_err_t pe = qb_consumer_poll(r.consumer, 5);
        for (int k = 0; pe == QB_OK && k < 1000 &&
                        (int64_t)rk_batch_rows(r.batch) < cfg.flush_rows; k++)
            pe = qb_consumer_poll(r.consumer, 0);
        if (pe == QB_ERR_KAFKA) {
            QB_ERROR("consumer failed fatally");
            rc = 1;
            break;
        }
        int idle = pe == QB_ERR_TIMEOUT; /* nothing more fetched: write now */
        for (int i = 0; r.bars && i < 2000; i++) {
            qb_bus_msg_t m;
            const char *derr = NULL;
            if (qb_reader_next(r.bars, 0, &m, &derr) != QB_OK) break;
            if (m.msg && strcmp(m.type, "qb.v1.Bar") == 0) rk_on_bar(&r, (const Qb__V1__Bar *)m.msg);
        }
        qb_time_t now = qb_time_now();
        if (now >= next_marks) {
            r.flush_marks = 1;
            next_marks = now + cfg.mark_flush_ms * 1000000LL;
        }
        if ((int64_t)rk_batch_rows(r.batch) >= cfg.flush_rows ||
            (r.first_staged && now - r.first_staged >= cfg.flush_ms * 1000000LL) ||
            (idle && (r.first_staged || qb_consumer_pending(r.consumer))) || r.flush_marks)
            (void)rk_flush(&r, 0);
        else
            (void)rk_acks(&r, 0);
        if (now >= next_reload) {
            if (rk_reload(&r, 0) != QB_OK) QB_WARN("trading states: reload failed (retried)");
            next_reload = now + cfg.reload_ms * 1000000LL;
        }
        if (next_snap && now >= next_snap) {
            acct_each(&r, snap_one, NULL);
            next_snap = now + cfg.snapshot_s * 1000000000LL;
        }
        qb_producer_poll(r.producer, 0);
    }
    QB_INFO("qb-risk stopping");
    if (!r.fatal && rk_flush(&r, 1) != QB_OK) QB_WARN("final flush failed: the next start replays");
    if (r.fatal) rc = 1;
out:
    if (r.consumer) {
        if (qb_consumer_close(r.consumer) != QB_OK) QB_WARN("consumer: close timed out");
        qb_consumer_destroy(r.consumer);
    }
    if (r.producer && qb_producer_flush(r.producer, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_reader_destroy(r.bars);
    qb_svc_destroy(r.svc);
    qb_producer_destroy(r.producer);
    qb_cache_destroy(r.cache);
    qb_store_destroy(r.store);
    acct_each(&r, free_all, NULL);
    for (int i = 0; i < RK_ABUCKETS; i++)
        for (rk_px_t *p = r.px[i], *nx; p; p = nx) {
            nx = p->next;
            free(p);
        }
    rk_batch_free(r.batch);
    rk_stats_free(r.stats);
    free(r.unacked_o.buf);
    free(r.unacked_e.buf);
    rk_unpub_free(r.seen, r.nseen);
    return rc;
}
