/* qb-execution — turns risk-approved orders into fills at a broker, and
 * never loses track of one.
 *
 * INPUTS (consumer group QB_EXEC_GROUP, default "qb-execution"):
 *   orders      Order (key account) from qb-risk -> the order flow below
 *   risk.events RiskEvent: KILL_SWITCH_ON cancels every open order of the
 *               account (account "" = every account) and refuses its new
 *               orders; KILL_SWITCH_OFF / RESUMED lift that
 *   control     Command (target "qb-execution", "*" or ""): CANCEL_ORDER,
 *               REPLACE_ORDER, STRATEGY_SET_MODE (applied once per
 *               command_id: trading.commands)
 * and md.bars through a GROUP-LESS reader (libs/bus qb_reader) when the
 * paper simulator is in use: md.bars is keyed by symbol while orders are
 * keyed by account, so the process must see every bar of every symbol it
 * has orders in; a reader of all partitions does that without a consumer
 * group per process. How far it has applied the bars (the newest record
 * time) is written to trading.paper_feed about once a second; at start the
 * reader begins there minus QB_EXEC_BARS_REPLAY_MARGIN_MS (at most
 * QB_EXEC_BARS_REPLAY_MAX_S back; from the end when nothing is recorded)
 * and catches up before any order is taken. Every paper order is stored
 * with its not_before (the later of its own and the newest bar of its
 * symbol the simulator had been given when it arrived), so the restored
 * orders and the bars read again fill exactly as without the restart.
 *
 * ONE ACTIVE INSTANCE. Execution is not scaled out: a process holds a
 * PostgreSQL session advisory lock (QB_EXEC_LEADER_LOCK) before it touches
 * anything; a second process waits on it as a hot standby and takes over
 * (reconciling first) when the first one dies — the lock dies with its
 * session. Losing the lock (connection lost) stops the process.
 *
 * ORDER FLOW (libs/exec: pure logic, unit-tested):
 *   - order_id is qb-risk's deterministic id; it is the broker's client
 *     order id. An id already in trading.orders (a replayed cause, a
 *     redelivery) is ignored: never sent twice.
 *   - Gating: mode must be PAPER or LIVE; kill switch; the strategy's
 *     mode (trading.strategy_modes via STRATEGY_SET_MODE: backtest-only
 *     strategies are rejected; LIVE needs a recorded approval — who and
 *     when — and its quantity is scaled by the staged rollout percent,
 *     qb_exec_rollout_qty). Refusals are stored and reported REJECTED
 *     (reason MODE_NOT_ALLOWED, KILL_SWITCH, INVALID_ORDER).
 *   - Routing: PAPER -> QB_EXEC_PAPER_BROKER ("sim": libs/portfolio's
 *     simulator on md.bars, the fill/slippage/partial-fill/commission
 *     models of the backtest engine; or "alpaca": Alpaca's paper API);
 *     LIVE -> Alpaca's live API (only when its keys are set).
 *   - Every change is libs/exec's state machine (illegal moves refused,
 *     logged, counted and written to the audit log as REFUSED) and ONE
 *     transaction: trading.orders, trading.fills (ON CONFLICT DO NOTHING on
 *     (order, fill id)), the ExecutionReport outbox trading.reports and the
 *     audit rows of the account's hash chain. Then the reports go to
 *     exec.reports (key account, event id UUID v5 of order|sequence) and are
 *     marked published once the producer acknowledged them; after a crash
 *     in between, the next start reads exec.reports back and sends only
 *     those not there (ex_outbox.c): each report id once on the topic.
 *   - External brokers: the order is durable as SUBMITTED BEFORE it is
 *     sent. The adapter retries with the same client order id and adopts
 *     an order the broker already has (Alpaca 422 "client_order_id must be
 *     unique"). An unknown outcome leaves it SUBMITTED; reconciliation
 *     asks the broker by client order id and sends it only if the broker
 *     does not have it. The paper simulator is in-process: submit, then
 *     one transaction (its state is rebuilt from the store after a crash).
 *   - Fills: the paper broker's on bars; Alpaca's by polling
 *     (QB_EXEC_POLL_MS: open orders, and the status of ours that left the
 *     open list), each cumulative change becoming one fill with a derived
 *     id (<order id>/<cum x 1e8>), so the same broker state never books a
 *     fill twice.
 *   - Brackets (ENTRY with take_profit / stop_loss) and OCO groups are
 *     emulated for every broker: a final entry with fills places a LIMIT
 *     take-profit and a STOP stop-loss for the filled quantity, sharing an
 *     OCO group; the first fill of a group member cancels the others.
 *   - Cancel: CANCEL_ORDER (reason USER_CANCELED). Replace: REPLACE_ORDER
 *     makes a new order (id UUID v5 of the command id; quantity = the new
 *     total minus what the old one filled); Alpaca replaces in place
 *     (PATCH, the old order ends CANCELED/REPLACED), the simulator cancels
 *     and places.
 *
 * RECONCILIATION at start (before the consumer starts: nothing new is sent
 * before it), every QB_EXEC_RECON_S, and in part at every poll: each open
 * order is compared with the broker's view (qb_exec_recon_order): missed
 * fills adopted (fill source "reconciliation"), final states taken over,
 * never-acknowledged orders the broker does not know sent again, orders the
 * broker no longer knows closed (CANCELED, reason BROKER_UNKNOWN); broker
 * orders we never made and position differences (sum of our fills vs the
 * broker's positions) are discrepancies: stored (trading.discrepancies),
 * audited, and published as RiskEvent RECONCILIATION_DISCREPANCY on
 * risk.events (each distinct one once per process; a position difference
 * only when two full reconciliations in a row see it, since fills in
 * flight between the order poll and the position query explain one).
 *
 * AUDIT: trading.audit_log, one SHA-256 hash chain per account (order
 * events, cancel/replace requests, kill switch, mode changes,
 * discrepancies); UPDATE/DELETE/TRUNCATE refused by triggers;
 * `qbctl audit verify` recomputes the chains and names the first bad row.
 *
 * Admin port 9104: /healthz, /readyz (bus, postgres, migrations, leader,
 * reconciled), /metrics (qb_exec_*). SIGTERM: stop consuming, mark the
 * sent reports, leave the group, exit 0. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backtest/qb_backtest.h"
#include "bus/qb_topics.h"
#include "core/qb_config.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "ex.h"

static const qb_cfg_entry_t ex_cfg_entries[] = {
    {"exec.group", "QB_EXEC_GROUP", QB_CFG_STRING, "qb-execution", 1, 200,
     offsetof(ex_cfg_t, group), 0, "consumer group of orders, risk.events and control"},
    {"exec.paper_broker", "QB_EXEC_PAPER_BROKER", QB_CFG_STRING, "sim", 1, 16,
     offsetof(ex_cfg_t, paper_broker), 0,
     "broker of PAPER orders: sim (the simulator on md.bars) or alpaca (Alpaca's paper API)"},
    {"exec.alpaca_paper_url", "QB_EXEC_ALPACA_PAPER_URL", QB_CFG_STRING,
     QB_EXEC_ALPACA_PAPER_URL, 1, 512, offsetof(ex_cfg_t, alpaca_paper_url), 0,
     "base URL of Alpaca's paper trading API"},
    {"exec.alpaca_live_url", "QB_EXEC_ALPACA_LIVE_URL", QB_CFG_STRING, QB_EXEC_ALPACA_LIVE_URL,
     1, 512, offsetof(ex_cfg_t, alpaca_live_url), 0, "base URL of Alpaca's live trading API"},
    {"exec.alpaca_key", "QB_ALPACA_KEY_ID", QB_CFG_STRING, "", 0, 256,
     offsetof(ex_cfg_t, alpaca_key), QB_CFG_SECRET, "Alpaca paper account key id"},
    {"exec.alpaca_secret", "QB_ALPACA_SECRET_KEY", QB_CFG_STRING, "", 0, 256,
     offsetof(ex_cfg_t, alpaca_secret), QB_CFG_SECRET, "Alpaca paper account secret key"},
    {"exec.alpaca_live_key", "QB_ALPACA_LIVE_KEY_ID", QB_CFG_STRING, "", 0, 256,
     offsetof(ex_cfg_t, alpaca_live_key), QB_CFG_SECRET,
     "Alpaca LIVE account key id; empty = no live trading (LIVE orders are rejected)"},
    {"exec.alpaca_live_secret", "QB_ALPACA_LIVE_SECRET_KEY", QB_CFG_STRING, "", 0, 256,
     offsetof(ex_cfg_t, alpaca_live_secret), QB_CFG_SECRET, "Alpaca LIVE account secret key"},
    {"exec.alpaca_rate", "QB_EXEC_ALPACA_RATE", QB_CFG_DOUBLE, "3", 0, 1000,
     offsetof(ex_cfg_t, alpaca_rate), 0,
     "Alpaca requests per second per connection (token bucket; Alpaca allows 200/min); 0 = no "
     "limit"},
    {"exec.poll_ms", "QB_EXEC_POLL_MS", QB_CFG_INT, "500", 20, 600000,
     offsetof(ex_cfg_t, poll_ms), 0, "how often open orders at external brokers are polled"},
    {"exec.recon_s", "QB_EXEC_RECON_S", QB_CFG_INT, "60", 1, 86400, offsetof(ex_cfg_t, recon_s),
     0, "full reconciliation period (orders, unknown broker orders, positions)"},
    {"exec.publish_ms", "QB_EXEC_PUBLISH_MS", QB_CFG_INT, "200", 10, 60000,
     offsetof(ex_cfg_t, publish_ms), 0, "how often sent reports are marked published"},
    {"exec.paper_cash", "QB_EXEC_PAPER_CASH", QB_CFG_STRING, "100000", 1, 40,
     offsetof(ex_cfg_t, paper_cash), 0, "simulator: initial cash of each account"},
    {"exec.paper_slippage_bps", "QB_EXEC_PAPER_SLIPPAGE_BPS", QB_CFG_STRING, "0", 1, 40,
     offsetof(ex_cfg_t, paper_slippage_bps), 0, "simulator: slippage in bps (as qbctl backtest)"},
    {"exec.paper_commission", "QB_EXEC_PAPER_COMMISSION", QB_CFG_STRING, "none", 1, 80,
     offsetof(ex_cfg_t, paper_commission), 0,
     "simulator: none / per_trade:FEE / per_share:RATE[:MIN] / percent:PCT[:MIN]"},
    {"exec.paper_volume_cap", "QB_EXEC_PAPER_VOLUME_CAP", QB_CFG_STRING, "0", 1, 40,
     offsetof(ex_cfg_t, paper_volume_cap), 0,
     "simulator: fraction of a bar's volume one bar may fill (partial fills); 0 = none"},
    {"exec.paper_fill", "QB_EXEC_PAPER_FILL", QB_CFG_STRING, "next_open", 1, 16,
     offsetof(ex_cfg_t, paper_fill), 0, "simulator: next_open or close"},
    {"exec.paper_allow_short", "QB_EXEC_PAPER_ALLOW_SHORT", QB_CFG_BOOL, "true", 1, 0,
     offsetof(ex_cfg_t, paper_allow_short), 0, "simulator: short selling allowed (margin 1)"},
    {"exec.migrate", "QB_EXEC_MIGRATE", QB_CFG_BOOL, "true", 1, 0, offsetof(ex_cfg_t, migrate), 0,
     "apply the migrations of QB_SQL_DIR at start"},
    {"exec.bars_replay_margin_ms", "QB_EXEC_BARS_REPLAY_MARGIN_MS", QB_CFG_INT, "10000", 0,
     3600000, offsetof(ex_cfg_t, bars_replay_margin_ms), 0,
     "at start md.bars is read again from the newest bar applied before (trading.paper_feed) "
     "minus this (partitions read unevenly, clocks of producers differ)"},
    {"exec.bars_replay_max_s", "QB_EXEC_BARS_REPLAY_MAX_S", QB_CFG_INT, "86400", 0, 31536000,
     offsetof(ex_cfg_t, bars_replay_max_s), 0,
     "never read md.bars again from further back than this at start (0 = from the end)"},
    {"exec.leader_lock", "QB_EXEC_LEADER_LOCK", QB_CFG_INT, "7449", 1, 2147483647,
     offsetof(ex_cfg_t, leader_lock), 0,
     "PostgreSQL advisory lock key held by the active instance (others wait as standby)"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

typedef struct ex_main_s {
    ex_t ex;
    qb_store_t *lock;
    volatile int leader, reconciled;
} ex_main_t;

static ex_main_t M;

static qb_err_t ex_probe_leader(void *opaque, char *errstr, size_t errstr_size) {
    (void)opaque;
    if (!M.leader)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "standby: waiting for the lock");
    return M.reconciled ? QB_OK
                        : qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "reconciling");
}

static qb_err_t ex_handle(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    ex_t *ex = opaque;
    const qb_topic_t *t;
    if ((t = qb_topic_get(QB_TOPIC_ORDERS)) && strcmp(m->topic, t->name) == 0)
        return ex_on_order(ex, m, errstr, errstr_size);
    if ((t = qb_topic_get(QB_TOPIC_RISK_EVENTS)) && strcmp(m->topic, t->name) == 0)
        return ex_on_risk_event(ex, m, errstr, errstr_size);
    return ex_on_command(ex, m, errstr, errstr_size);
}

static int ex_wait(ex_t *ex, int ms) {
    for (int i = 0; i < ms / 50 && qb_svc_running(ex->svc); i++) usleep(50 * 1000);
    return qb_svc_running(ex->svc);
}

static qb_err_t ex_lock_held(ex_main_t *mm, int try_take, int *held) {
    char errstr[512], key[24];
    snprintf(key, sizeof key, "%lld", (long long)mm->ex.cfg->leader_lock);
    const char *p[1] = {key};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(mm->lock,
                                try_take ? "SELECT pg_try_advisory_lock($1::bigint)"
                                         : "SELECT count(*) > 0 FROM pg_locks WHERE locktype = "
                                           "'advisory' AND pid = pg_backend_pid() AND granted AND "
                                           "((classid::bigint << 32) | objid::bigint) = $1::bigint",
                                1, p, &r, errstr, sizeof errstr);
    if (!e) *held = PQgetvalue(r, 0, 0)[0] == 't';
    else QB_WARN("leader lock: %s", errstr);
    PQclear(r);
    return e;
}

static qb_err_t ex_paper_config(const ex_cfg_t *cfg, qb_exec_paper_config_t *pc, char *errstr,
                                size_t errstr_size) {
    /* The backtest's own setters, so the simulator reads settings exactly
     * like `qbctl backtest` does. */
    qb_bt_config_t bt;
    qb_bt_config_default(&bt);
    const struct {
        const char *name, *value, *env;
    } kv[] = {{"cash", cfg->paper_cash, "QB_EXEC_PAPER_CASH"},
              {"slippage_bps", cfg->paper_slippage_bps, "QB_EXEC_PAPER_SLIPPAGE_BPS"},
              {"commission", cfg->paper_commission, "QB_EXEC_PAPER_COMMISSION"},
              {"volume_cap", cfg->paper_volume_cap, "QB_EXEC_PAPER_VOLUME_CAP"},
              {"fill", cfg->paper_fill, "QB_EXEC_PAPER_FILL"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        char why[256];
        if (qb_bt_config_set(&bt, kv[i].name, kv[i].value, why, sizeof why) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "%s: %s", kv[i].env, why);
    }
    qb_exec_paper_config_default(pc);
    pc->sim.timing = bt.fill;
    pc->sim.slippage_bps = bt.slippage_bps;
    pc->sim.volume_cap = bt.volume_cap;
    pc->sim.commission = bt.commission;
    pc->pf.initial_cash = bt.cash;
    pc->pf.allow_short = cfg->paper_allow_short;
    return QB_OK;
}

static qb_err_t ex_alpaca(ex_t *ex, int idx, const char *name, const char *url, const char *key,
                          const char *secret, char *errstr, size_t errstr_size) {
    qb_exec_alpaca_config_t ac;
    memset(&ac, 0, sizeof ac);
    ac.name = name;
    ac.base_url = url;
    ac.key_id = key;
    ac.secret_key = secret;
    ac.running = qb_svc_flag(ex->svc);
    ac.rate_per_sec = ex->cfg->alpaca_rate > 0 ? ex->cfg->alpaca_rate : -1;
    ex->broker_names[idx] = name;
    return qb_exec_alpaca_new(&ac, &ex->brokers[idx], errstr, errstr_size);
}

/* The paper simulator's md.bars reader: from where the previous leader had
 * applied the bars (trading.paper_feed) minus the margin, read up to the
 * present before anything else happens; from the end when nothing is
 * recorded. QB_OK, or an error when stopping. */
static qb_err_t ex_bars_open(ex_t *ex) {
    char errstr[512];
    int64_t through = 0;
    while (qb_svc_running(ex->svc) &&
           ex_store_feed_get(ex->st, "md.bars", &through, errstr, sizeof errstr) != QB_OK) {
        QB_WARN("paper feed position: %s (retrying)", errstr);
        if (!ex_wait(ex, 1000)) return QB_ERR_UNAVAILABLE;
    }
    int64_t now_ms = qb_time_now() / QB_NS_PER_MS, since = 0;
    if (through > 0 && ex->cfg->bars_replay_max_s > 0) {
        since = through - ex->cfg->bars_replay_margin_ms;
        int64_t oldest = now_ms - ex->cfg->bars_replay_max_s * 1000;
        if (since < oldest) {
            QB_WARN("md.bars applied through %lld ms, more than QB_EXEC_BARS_REPLAY_MAX_S ago: "
                    "read from %lld s back only", (long long)through,
                    (long long)ex->cfg->bars_replay_max_s);
            since = oldest;
        }
    }
    while (qb_svc_running(ex->svc)) {
        qb_err_t code = QB_OK;
        ex->bars = since > 0 ? qb_reader_new_since("md.bars", since, 10000, &code, errstr,
                                                   sizeof errstr)
                             : qb_reader_new("md.bars", 0, 10000, errstr, sizeof errstr);
        if (ex->bars) break;
        QB_WARN("md.bars reader: %s (retrying)", errstr);
        if (!ex_wait(ex, 1000)) return QB_ERR_UNAVAILABLE;
    }
    if (!ex->bars) return QB_ERR_UNAVAILABLE;
    if (since > 0) {
        size_t n = 0;
        while (qb_svc_running(ex->svc) && !qb_reader_caught_up(ex->bars)) {
            size_t k = ex_bars_drain(ex, 10000);
            n += k;
            if (!k) usleep(1000);
        }
        n += ex_bars_drain(ex, (size_t)-1);
        QB_INFO("md.bars read again from %lld ms (applied through %lld before): %zu bars",
                (long long)since, (long long)through, n);
        if (ex->bars_read_ms < through) ex->bars_read_ms = ex->bars_saved_ms = through;
    }
    return qb_svc_running(ex->svc) ? QB_OK : QB_ERR_UNAVAILABLE;
}

int main(int argc, char **argv) {
    static ex_cfg_t cfg;
    static const char about[] =
        "The execution service: consumes risk-approved orders (topic orders), sends them to the\n"
        "paper simulator or Alpaca (paper/live), reports every state change on exec.reports,\n"
        "keeps orders, fills and a hash-chained audit log in PostgreSQL (schema trading),\n"
        "cancels everything on a kill switch (risk.events), takes CANCEL_ORDER, REPLACE_ORDER and\n"
        "STRATEGY_SET_MODE from control, and reconciles with the broker at start and\n"
        "periodically. One active instance (advisory lock); others wait as standby.\n"
        "Admin port: /healthz, /readyz, /metrics.";
    ex_t *ex = &M.ex;
    char errstr[1024];
    int rc = 0;
    ex->svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-execution", .about = about,
                                          .admin_port = 9104,
                                          .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG,
                                          .table = ex_cfg_entries, .cfg = &cfg},
                         argc, argv, &rc);
    if (!ex->svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(ex->svc);
    ex->cfg = &cfg;
    ex->paper_idx = ex->live_idx = -1;
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    /* brokers */
    qb_exec_paper_config_t pc;
    if (ex_paper_config(&cfg, &pc, errstr, sizeof errstr) ||
        qb_exec_paper_new(&pc, &ex->brokers[0], errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    ex->broker_names[0] = "sim";
    if (strcmp(cfg.paper_broker, "sim") == 0) {
        ex->paper_idx = 0;
    } else if (strcmp(cfg.paper_broker, "alpaca") == 0) {
        if (ex_alpaca(ex, 1, "alpaca-paper", cfg.alpaca_paper_url, cfg.alpaca_key,
                      cfg.alpaca_secret, errstr, sizeof errstr)) {
            QB_ERROR("QB_EXEC_PAPER_BROKER=alpaca needs QB_ALPACA_KEY_ID and QB_ALPACA_SECRET_KEY: %s",
                     errstr);
            goto out;
        }
        ex->paper_idx = 1;
    } else {
        QB_ERROR("QB_EXEC_PAPER_BROKER: '%s' is not sim or alpaca", cfg.paper_broker);
        goto out;
    }
    if (*cfg.alpaca_live_key) {
        if (ex_alpaca(ex, 2, "alpaca-live", cfg.alpaca_live_url, cfg.alpaca_live_key,
                      cfg.alpaca_live_secret, errstr, sizeof errstr)) {
            QB_ERROR("QB_ALPACA_LIVE_KEY_ID / QB_ALPACA_LIVE_SECRET_KEY: %s", errstr);
            goto out;
        }
        ex->live_idx = 2;
    }
    if (!(ex->pg = qb_store_new(com->pg_dsn, errstr, sizeof errstr)) ||
        !(M.lock = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (!(ex->st = ex_store_new(ex->pg)) || !(ex->book = qb_exec_book_new())) goto out;
    if (!(ex->producer = qb_producer_new(errstr, sizeof errstr))) {
        QB_ERROR("producer: %s", errstr);
        goto out;
    }
    ex->c_orders = qb_metrics_counter("qb_exec_orders_total", "Orders received", NULL);
    ex->c_dups = qb_metrics_counter("qb_exec_duplicates_total",
                                    "Orders ignored because their id was known", NULL);
    ex->c_rejected = qb_metrics_counter("qb_exec_rejected_total", "Orders rejected", NULL);
    ex->c_reports = qb_metrics_counter("qb_exec_reports_total", "ExecutionReports sent", NULL);
    ex->c_fills = qb_metrics_counter("qb_exec_fills_total", "Fills booked", NULL);
    ex->c_illegal = qb_metrics_counter("qb_exec_illegal_transitions_total",
                                       "State changes refused by the state machine", NULL);
    ex->c_disc = qb_metrics_counter("qb_exec_discrepancies_total",
                                    "Reconciliation discrepancies reported", NULL);
    ex->c_cmds = qb_metrics_counter("qb_exec_commands_total", "Control commands applied", NULL);
    ex->c_kills = qb_metrics_counter("qb_exec_kill_switches_total", "Kill switches applied", NULL);
    ex->c_resubmits = qb_metrics_counter("qb_exec_resubmits_total",
                                         "Orders sent again because the broker did not have them",
                                         NULL);
    ex->c_bars = qb_metrics_counter("qb_exec_bars_total", "Bars given to the paper broker", NULL);
    ex->g_open = qb_metrics_gauge("qb_exec_open_orders", "Orders not final", NULL);
    ex->h_latency = qb_metrics_histogram("qb_exec_order_latency_seconds",
                                         "Order produced -> its reports sent", NULL);
    ex->h_broker = qb_metrics_histogram("qb_exec_broker_submit_seconds", "Broker submit calls",
                                        NULL);
    rc = 1;
    if (qb_svc_migrate(ex->svc, ex->pg, cfg.migrate)) goto out;
    qb_svc_add_probe(ex->svc, "leader", ex_probe_leader, NULL);
    /* leader lock: one active instance */
    for (int logged = 0; qb_svc_running(ex->svc);) {
        int held = 0;
        if (ex_lock_held(&M, 1, &held) == QB_OK && held) break;
        if (!logged++) QB_INFO("standby: another qb-execution holds the lock; waiting");
        if (!ex_wait(ex, 500)) break;
    }
    if (!qb_svc_running(ex->svc)) {
        rc = 0;
        goto out;
    }
    M.leader = 1;
    QB_INFO("leader lock taken: this instance is active");
    /* state: modes, kill switch, open orders */
    for (;;) {
        qb_exec_order_t *open = NULL;
        size_t n = 0;
        if (ex_store_modes(ex->st, &ex->modes, &ex->nmodes, errstr, sizeof errstr) == QB_OK &&
            ex_store_killed(ex->st, &ex->killed, &ex->nkilled, errstr, sizeof errstr) == QB_OK &&
            ex_store_open_orders(ex->st, &open, &n, errstr, sizeof errstr) == QB_OK) {
            for (size_t i = 0; i < n; i++) qb_exec_book_put(ex->book, &open[i]);
            free(open);
            QB_INFO("loaded %zu open orders, %zu strategy modes, %zu kill switches", n, ex->nmodes,
                    ex->nkilled);
            break;
        }
        QB_WARN("loading state: %s (retrying)", errstr);
        if (!ex_wait(ex, 500)) goto out;
    }
    if (ex->paper_idx == 0 || qb_exec_book_count(ex->book)) (void)ex_paper_restore(ex);
    (void)ex_outbox_publish(ex);
    /* reconcile before anything new is sent */
    while (qb_svc_running(ex->svc) && ex_reconcile(ex, 1) != QB_OK) {
        QB_WARN("start-up reconciliation incomplete: retrying before taking orders");
        if (!ex_wait(ex, 1000)) break;
    }
    M.reconciled = 1;
    QB_INFO("reconciled: %zu open orders", qb_exec_book_count(ex->book));
    if (ex->paper_idx == 0 && ex_bars_open(ex) != QB_OK) { /* only when stopping */
        rc = 0;
        goto out;
    }
    const char *topics[] = {"orders", "risk.events", "control"};
    ex->consumer = qb_consumer_new(cfg.group, topics, 3, ex_handle, ex, errstr, sizeof errstr);
    if (!ex->consumer) {
        QB_ERROR("consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    QB_INFO("qb-execution ready: paper -> %s, live -> %s, admin port %d",
            ex->paper_idx >= 0 ? ex->broker_names[ex->paper_idx] : "none",
            ex->live_idx >= 0 ? ex->broker_names[ex->live_idx] : "none",
            qb_svc_admin_port(ex->svc));
    rc = 0;
    qb_time_t now = qb_time_now();
    qb_time_t next_poll = now, next_recon = now + cfg.recon_s * QB_NS_PER_SEC,
              next_pub = now + cfg.publish_ms * QB_NS_PER_MS,
              next_lock = now + 5 * QB_NS_PER_SEC, next_feed = now;
    while (qb_svc_running(ex->svc)) {
        qb_err_t pe = qb_consumer_poll(ex->consumer, 5);
        if (pe == QB_ERR_KAFKA) {
            QB_ERROR("consumer failed fatally");
            rc = 1;
            break;
        }
        (void)ex_bars_drain(ex, 2000);
        now = qb_time_now();
        if (now >= next_poll) {
            (void)ex_reconcile(ex, 0);
            next_poll = now + cfg.poll_ms * QB_NS_PER_MS;
        }
        if (now >= next_recon) {
            (void)ex_reconcile(ex, 1);
            next_recon = now + cfg.recon_s * QB_NS_PER_SEC;
        }
        if (now >= next_pub || (pe == QB_ERR_TIMEOUT && ex->nunpub > 1000)) {
            (void)ex_mark_published(ex);
            next_pub = now + cfg.publish_ms * QB_NS_PER_MS;
        }
        if (now >= next_lock) {
            int held = 1;
            if (ex_lock_held(&M, 0, &held) == QB_OK && !held) {
                QB_ERROR("leader lock lost (database session ended): stopping");
                rc = 1;
                break;
            }
            next_lock = now + 5 * QB_NS_PER_SEC;
        }
        if (ex->bars_read_ms > ex->bars_saved_ms && now >= next_feed) {
            if (ex_store_feed_put(ex->st, "md.bars", ex->bars_read_ms, errstr, sizeof errstr))
                QB_WARN("paper feed position: %s (retried)", errstr);
            else
                ex->bars_saved_ms = ex->bars_read_ms;
            next_feed = now + QB_NS_PER_SEC;
        }
        qb_producer_poll(ex->producer, 0);
    }
    QB_INFO("qb-execution stopping");
    if (ex->bars_read_ms > ex->bars_saved_ms)
        (void)ex_store_feed_put(ex->st, "md.bars", ex->bars_read_ms, errstr, sizeof errstr);
    (void)ex_mark_published(ex);
out:
    if (ex->consumer) {
        if (qb_consumer_close(ex->consumer) != QB_OK) QB_WARN("consumer: close timed out");
        qb_consumer_destroy(ex->consumer);
    }
    if (ex->producer && qb_producer_flush(ex->producer, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_svc_destroy(ex->svc);
    qb_reader_destroy(ex->bars);
    qb_producer_destroy(ex->producer);
    for (int i = 0; i < EX_MAX_BROKERS; i++) qb_exec_broker_destroy(ex->brokers[i]);
    qb_exec_book_destroy(ex->book);
    ex_store_destroy(ex->st);
    qb_store_destroy(ex->pg);
    qb_store_destroy(M.lock);
    free(ex->modes);
    free(ex->killed);
    free(ex->reported);
    free(ex->posdiff);
    free(ex->unpublished);
    return rc;
}
