/* qb-notify — alerts for traders: rules over the platform's events,
 * delivered once, reliably, without flooding, to webhook, Slack, Telegram,
 * e-mail (SMTP) or the in-app inbox.
 *
 * RULES (notify.rules, per user; created, changed and deleted with
 * ALERT_RULE_UPSERT / ALERT_RULE_DELETE commands on `control`, target
 * "qb-notify" or "*"; COMMAND_KIND_RELOAD re-reads them). Conditions:
 *   price_above / price_below  a bar's close CROSSES the level (previous close
 *                 at or below / above it, this close beyond it);
 *   price_move    |close / ref - 1| >= move_pct %, ref = the close of the last
 *                 bar at least `window` earlier; fires when the move starts
 *                 (not at every bar it lasts);
 *   signal        a Signal (filters: strategy_id, symbol, account,
 *                 min_confidence);
 *   order_filled  an ExecutionReport with a fill; order_rejected one with
 *                 status REJECTED (filters: symbol, strategy, account);
 *   risk_event    any RiskEvent: limit breach, daily-loss pause, kill switch,
 *                 reconciliation discrepancy... (account filter; an event for
 *                 all accounts reaches every rule);
 *   backtest_done a BacktestEvent FINISHED or FAILED of a whole run.
 * Each rule names its targets (channel + address [+ webhook secret]), a
 * throttle (cooldown: least time between two firings, in EVENT time — bar
 * time for price rules — so a replay decides the same) and quiet hours
 * ("HH:MM"-"HH:MM" in the rule's IANA time zone, libs/cal): a notification
 * that fires during them is held (next_attempt_at = their end), except
 * CRITICAL risk events. Rules are validated on the command (bad ones are
 * dead-lettered with the field named) and again when loaded.
 *
 * EVALUATION (consumer group QB_NOTIFY_GROUP on md.bars, signals,
 * exec.reports, risk.events, backtest.events and control; replicas split
 * the partitions): each event is turned into a qb_nevent_t and evaluated by
 * libs/notify (qb_neval). Price rules are evaluated per bar from the
 * series' close history; a series seen for the first time is warmed up from
 * md.bars (the bars needed for the largest move window), so a restart
 * continues where it was. An event fires a rule at most once: the firing
 * (rule_id, event_id) is the key of notify.fired, and each firing makes one
 * delivery per target with delivery_id = UUID v5(rule_id|event_id|index).
 * Firings are batched (QB_NOTIFY_FLUSH_ROWS / _FLUSH_MS / idle / revoke /
 * exit) and written in one transaction (fired ON CONFLICT DO NOTHING, their
 * deliveries, each rule's last_fired_ns); only then are the consumer
 * offsets stored (deferred store), so a crash replays events whose firings
 * are not durable, and a replay inserts nothing twice.
 *
 * DELIVERY (nt_deliver.c, QB_NOTIFY_WORKERS threads, each with its own
 * connection): the delivery log notify.deliveries is the queue. State
 * machine: pending -> delivered | pending (attempt failed: attempts + 1,
 * last_error, next_attempt_at = now + back-off) | dead (after
 * QB_NOTIFY_MAX_ATTEMPTS attempts, or at once when the destination refuses
 * for good — 4xx other than 408/429, SMTP 5xx —: the Notification is
 * written to notifications.dlq first) | canceled (rule deleted, target
 * removed). Retried: network errors, time-outs, 408, 429 and 5xx
 * (Retry-After and Telegram's retry_after honoured), with exponential
 * back-off QB_NOTIFY_RETRY_BASE_MS doubling to QB_NOTIFY_RETRY_MAX_MS
 * (jitter in [d/2, d]). A worker claims due rows by writing its session's
 * backend pid (FOR UPDATE SKIP LOCKED): a claim whose session is gone — the
 * process was killed — is void, so a restart (or another replica) resumes
 * every pending delivery at once.
 *
 * EXACTLY ONCE, AND ITS LIMIT: a delivery row exists durably (deduplicated
 * by rule and event) before anything is sent; the send happens; the outcome
 * is written right after. If the process dies between a send that the
 * endpoint accepted and that write, the delivery is sent again on restart:
 * the one window for a duplicate (one send per killed worker). Webhooks get
 * the same X-Quantbus-Delivery-Id on every attempt (the idempotency key to
 * de-duplicate on), e-mails the same Message-ID; Slack and Telegram offer
 * no idempotency key. A delivery that was failing, waiting or not yet sent
 * when the process died is delivered exactly once after the restart.
 *
 * CHANNELS (libs/notify qb_notify_send.h): webhook = JSON POST with
 * X-Quantbus-Delivery-Id, -Attempt, -Timestamp and, with a secret (the
 * target's or QB_NOTIFY_WEBHOOK_SECRET), X-Quantbus-Signature: sha256=hex
 * HMAC-SHA256(secret, "<timestamp>.<body>"); slack = incoming webhook
 * {"text"}; telegram = Bot API sendMessage to chat id (token
 * QB_NOTIFY_TELEGRAM_BOT_TOKEN, API base QB_NOTIFY_TELEGRAM_API_URL);
 * email = SMTP through libcurl (QB_NOTIFY_SMTP_URL, STARTTLS required when
 * QB_NOTIFY_SMTP_STARTTLS, AUTH with QB_NOTIFY_SMTP_USER / _PASSWORD);
 * in_app = a row in notify.inbox + NOTIFY qb_notify_inbox (payload: user),
 * in one transaction with the delivered mark, then the Notification on
 * topic `notifications` (key user) for the API to stream. Messages come
 * from one short template per event kind (qb_ntmpl_render); the rule's name,
 * when set, is the title.
 *
 * SECRETS: the bot token, SMTP password and webhook secrets are never
 * logged: config logging shows "***", URLs are logged as scheme://host/...,
 * sender errors are masked, and the delivery log stores the shown address
 * only (the real one stays in the rule).
 *
 * Admin port 9106: /healthz, /readyz (bus, postgres, migrations), /metrics
 * (qb_notify_events_total, _fired_total, _throttled_total, _deliveries_total
 * {channel,result}, _send_attempts_total, _send_seconds, _pending,
 * _flush_seconds, plus the bus and store metrics). SIGTERM: flush the
 * firings, let each worker finish its send, leave the group, exit 0. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "core/qb_config.h"
#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "nt.h"
#include "proto/qb_proto.h"
#include "svc/qb_svc.h"

#define SECRET QB_CFG_SECRET

static const qb_cfg_entry_t nt_cfg_entries[] = {
    {"notify.group", "QB_NOTIFY_GROUP", QB_CFG_STRING, "qb-notify", 1, 200,
     offsetof(nt_cfg_t, group), 0, "consumer group; replicas in one group split the partitions"},
    {"notify.migrate", "QB_NOTIFY_MIGRATE", QB_CFG_BOOL, "true", 1, 0,
     offsetof(nt_cfg_t, migrate), 0, "apply the migrations of QB_SQL_DIR at start"},
    {"notify.flush_ms", "QB_NOTIFY_FLUSH_MS", QB_CFG_INT, "100", 1, 60000,
     offsetof(nt_cfg_t, flush_ms), 0, "longest time firings wait before they are written"},
    {"notify.flush_rows", "QB_NOTIFY_FLUSH_ROWS", QB_CFG_INT, "1000", 1, 100000,
     offsetof(nt_cfg_t, flush_rows), 0, "firings per write"},
    {"notify.reload_ms", "QB_NOTIFY_RELOAD_MS", QB_CFG_INT, "1000", 10, 3600000,
     offsetof(nt_cfg_t, reload_ms), 0,
     "how often notify.rules is checked for changes (made by another replica)"},
    {"notify.warmup", "QB_NOTIFY_WARMUP", QB_CFG_BOOL, "true", 1, 0, offsetof(nt_cfg_t, warmup), 0,
     "warm a new price series up from md.bars (previous bar, move windows)"},
    {"notify.workers", "QB_NOTIFY_WORKERS", QB_CFG_INT, "2", 1, 32, offsetof(nt_cfg_t, workers), 0,
     "delivery threads (each with its own PostgreSQL connection and HTTP client)"},
    {"notify.poll_ms", "QB_NOTIFY_POLL_MS", QB_CFG_INT, "200", 5, 60000,
     offsetof(nt_cfg_t, poll_ms), 0,
     "how often an idle worker looks for due deliveries (it is also woken by new ones)"},
    {"notify.claim_batch", "QB_NOTIFY_CLAIM_BATCH", QB_CFG_INT, "16", 1, 1000,
     offsetof(nt_cfg_t, claim_batch), 0, "deliveries a worker claims at once"},
    {"notify.claim_stale_s", "QB_NOTIFY_CLAIM_STALE_S", QB_CFG_INT, "600", 30, 86400,
     offsetof(nt_cfg_t, claim_stale_s), 0,
     "a claim older than this is void even while its session lives (a hung sender)"},
    {"notify.max_attempts", "QB_NOTIFY_MAX_ATTEMPTS", QB_CFG_INT, "8", 1, 100,
     offsetof(nt_cfg_t, max_attempts), 0,
     "attempts per delivery before it goes to notifications.dlq"},
    {"notify.retry_base_ms", "QB_NOTIFY_RETRY_BASE_MS", QB_CFG_INT, "1000", 1, 3600000,
     offsetof(nt_cfg_t, retry_base_ms), 0, "back-off after the first failed attempt (doubles)"},
    {"notify.retry_max_ms", "QB_NOTIFY_RETRY_MAX_MS", QB_CFG_INT, "600000", 1, 86400000,
     offsetof(nt_cfg_t, retry_max_ms), 0, "longest back-off (also caps Retry-After)"},
    {"notify.http_timeout_ms", "QB_NOTIFY_HTTP_TIMEOUT_MS", QB_CFG_INT, "10000", 100, 300000,
     offsetof(nt_cfg_t, http_timeout_ms), 0, "time-out of one send (HTTP or SMTP), whole"},
    {"notify.connect_timeout_ms", "QB_NOTIFY_CONNECT_TIMEOUT_MS", QB_CFG_INT, "5000", 100, 60000,
     offsetof(nt_cfg_t, connect_timeout_ms), 0, "connect time-out of one send"},
    {"notify.webhook_secret", "QB_NOTIFY_WEBHOOK_SECRET", QB_CFG_STRING, "", 0, 256,
     offsetof(nt_cfg_t, webhook_secret), SECRET,
     "default HMAC-SHA256 key of webhook signatures (a target's own secret wins); empty = "
     "unsigned"},
    {"notify.telegram_api_url", "QB_NOTIFY_TELEGRAM_API_URL", QB_CFG_STRING,
     "https://api.telegram.org", 1, 300, offsetof(nt_cfg_t, telegram_api), 0,
     "Telegram Bot API base URL"},
    {"notify.telegram_bot_token", "QB_NOTIFY_TELEGRAM_BOT_TOKEN", QB_CFG_STRING, "", 0, 200,
     offsetof(nt_cfg_t, telegram_token), SECRET, "Telegram bot token (from @BotFather)"},
    {"notify.smtp_url", "QB_NOTIFY_SMTP_URL", QB_CFG_STRING, "", 0, 300,
     offsetof(nt_cfg_t, smtp_url), 0,
     "SMTP server, smtp://host:port (smtps:// for implicit TLS); empty = no e-mail"},
    {"notify.smtp_from", "QB_NOTIFY_SMTP_FROM", QB_CFG_STRING, "quantbus@localhost", 3, 300,
     offsetof(nt_cfg_t, smtp_from), 0, "sender address of e-mails"},
    {"notify.smtp_user", "QB_NOTIFY_SMTP_USER", QB_CFG_STRING, "", 0, 200,
     offsetof(nt_cfg_t, smtp_user), 0, "SMTP AUTH user; empty = no AUTH"},
    {"notify.smtp_password", "QB_NOTIFY_SMTP_PASSWORD", QB_CFG_STRING, "", 0, 200,
     offsetof(nt_cfg_t, smtp_password), SECRET, "SMTP AUTH password"},
    {"notify.smtp_starttls", "QB_NOTIFY_SMTP_STARTTLS", QB_CFG_BOOL, "true", 1, 0,
     offsetof(nt_cfg_t, smtp_starttls), 0,
     "require STARTTLS on smtp:// (the certificate is verified); false = plain SMTP"},
    {"notify.smtp_ca_file", "QB_NOTIFY_SMTP_CA_FILE", QB_CFG_STRING, "", 0, 1000,
     offsetof(nt_cfg_t, smtp_ca_file), 0, "CA bundle for the SMTP server; empty = the system's"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

typedef struct nt_s {
    qb_svc_t *svc;
    const nt_cfg_t *cfg;
    const char *dsn;
    qb_store_t *store;
    qb_producer_t *producer;
    qb_consumer_t *consumer;
    nt_workers_t *workers;
    qb_neval_t *eval;
    nt_batch_t batch;
    qb_err_t fire_err;
    int64_t rules_seq;
    qb_time_t first_staged;
    const char *topic_bars, *topic_signals, *topic_exec, *topic_risk, *topic_bt;
    qb_counter_t *c_events, *c_fired, *c_throttled, *c_cmds, *c_warmups, *c_flushes;
    qb_gauge_t *g_rules, *g_pending;
    qb_hist_t *h_flush;
} nt_t;

/* ---- firing ----------------------------------------------------------------------- */

static void nt_on_fire(void *opaque, const qb_nfire_t *f) {
    nt_t *n = opaque;
    nt_batch_t *b = &n->batch;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        nt_fire_t *v = realloc(b->v, nc * sizeof *v);
        if (!v) {
            n->fire_err = QB_ERR_NOMEM;
            return;
        }
        b->v = v;
        b->cap = nc;
    }
    nt_fire_t *x = &b->v[b->n++];
    const qb_nrule_t *r = f->rule;
    snprintf(x->rule_id, sizeof x->rule_id, "%s", r->id);
    snprintf(x->owner, sizeof x->owner, "%s", r->owner);
    snprintf(x->event_id, sizeof x->event_id, "%s", f->ev->event_id);
    x->kind = qb_nfire_kind(f);
    x->event_time = f->ev->time;
    qb_ntmpl_render(f, x->title, sizeof x->title, x->text, sizeof x->text);
    qb_time_t now = qb_time_now();
    qb_time_t quiet = f->ev->critical ? 0 : qb_nrule_quiet_until(r, now);
    x->nd = r->ntargets;
    for (size_t i = 0; i < r->ntargets; i++) {
        nt_dlv_t *d = &x->d[i];
        char name[QB_NRULE_ID_MAX + 100];
        int nl = snprintf(name, sizeof name, "%s|%s|%zu", r->id, f->ev->event_id, i);
        qb_uuid_v5(NT_DELIVERY_NS, name, (size_t)nl, d->id);
        d->idx = (int)i;
        d->channel = r->targets[i].channel;
        qb_naddr_display(d->channel, r->targets[i].address, d->address, sizeof d->address);
        if (d->channel == QB_NCHAN_IN_APP && !d->address[0])
            snprintf(d->address, sizeof d->address, "%s", r->owner);
        d->not_before = quiet;
    }
    qb_counter_inc(n->c_fired);
    QB_INFO("rule %s fired on %s %s: %s%s", r->id, x->kind, x->event_id, x->title,
            quiet ? " (held: quiet hours)" : "");
    if (!n->first_staged) n->first_staged = qb_time_mono_ns();
}

/* Make the firings durable, wake the workers, then let the offsets commit. */
static qb_err_t nt_flush(nt_t *n) {
    if (n->batch.n == 0 && qb_consumer_pending(n->consumer) == 0) return QB_OK;
    char errstr[1024];
    int64_t t0 = qb_time_mono_ns(), nd = 0;
    qb_err_t e = nt_store_flush(n->store, &n->batch, &nd, errstr, sizeof errstr);
    if (e) {
        QB_WARN("flush: %s: retried", errstr);
        return e;
    }
    if (nd) nt_workers_kick(n->workers);
    e = qb_consumer_store_pending(n->consumer);
    qb_counter_inc(n->c_flushes);
    qb_hist_observe(n->h_flush, (double)(qb_time_mono_ns() - t0) / 1e9);
    n->first_staged = 0;
    return e;
}

static int nt_every_series(void *opaque, const char *symbol, const char *timeframe) {
    (void)opaque;
    (void)symbol;
    (void)timeframe;
    return 1;
}

/* Flush, and forget the price histories when md.bars partitions go: another
 * replica may move those series on; they are warmed up from md.bars again
 * if they come back. */
static void nt_revoked(void *opaque, const void *parts) {
    nt_t *n = opaque;
    if (nt_flush(n) != QB_OK) QB_WARN("revoke: flush failed: the next owner replays");
    for (int i = 0; i < qb_consumer_revoked_count(parts); i++)
        if (strcmp(qb_consumer_revoked_topic(parts, i), n->topic_bars) == 0) {
            int k = qb_neval_drop_series(n->eval, nt_every_series, NULL);
            if (k) QB_INFO("md.bars partitions revoked: %d price series dropped", k);
            break;
        }
}

/* ---- rules ------------------------------------------------------------------------ */

static qb_err_t nt_reload(nt_t *n, int force) {
    char errstr[512];
    int64_t seq = 0;
    qb_err_t e = nt_store_rules_seq(n->store, &seq, errstr, sizeof errstr);
    if (!e && (force || seq != n->rules_seq)) {
        qb_nrules_t *rs = NULL;
        if (!(e = nt_store_rules(n->store, &rs, errstr, sizeof errstr))) {
            qb_neval_set_rules(n->eval, rs);
            n->rules_seq = seq;
            qb_gauge_set(n->g_rules, (double)rs->n);
            QB_INFO("rules: %zu loaded (change %lld)", rs->n, (long long)seq);
        }
    }
    int64_t pending = 0;
    if (!e && nt_store_pending(n->store, &pending, errstr, sizeof errstr) == QB_OK)
        qb_gauge_set(n->g_pending, (double)pending);
    if (e) QB_WARN("rules: %s", errstr);
    return e;
}

/* ---- events ----------------------------------------------------------------------- */

static const char *nt_enum_suffix(const ProtobufCEnumDescriptor *d, int v, const char *prefix) {
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (!ev) return "UNKNOWN";
    size_t pl = strlen(prefix);
    return strncmp(ev->name, prefix, pl) == 0 ? ev->name + pl : ev->name;
}

static void nt_history_cb(void *opaque, qb_time_t ts, int64_t close) {
    void **a = opaque;
    qb_neval_warm(a[0], a[1], a[2], ts, close);
}

static qb_err_t nt_event_of(nt_t *n, const qb_bus_msg_t *m, qb_nevent_t *ev, char *idbuf,
                            size_t idcap) {
    const Qb__V1__Header *h = NULL;
    memset(ev, 0, sizeof *ev);
    if (strcmp(m->topic, n->topic_bars) == 0) {
        const Qb__V1__Bar *b = (const Qb__V1__Bar *)m->msg;
        h = b->header;
        ev->kind = QB_NEV_BAR;
        ev->symbol = b->symbol;
        ev->timeframe = b->timeframe;
        ev->time = b->ts;
        ev->close = b->close;
    } else if (strcmp(m->topic, n->topic_signals) == 0) {
        const Qb__V1__Signal *s = (const Qb__V1__Signal *)m->msg;
        h = s->header;
        ev->kind = QB_NEV_SIGNAL;
        ev->account = s->account;
        ev->symbol = s->symbol;
        ev->timeframe = s->timeframe;
        ev->strategy_id = s->strategy_id;
        ev->direction = nt_enum_suffix(&qb__v1__signal_direction__descriptor, (int)s->direction,
                                       "SIGNAL_DIRECTION_");
        ev->confidence = s->confidence;
        ev->price = s->reference_price;
        ev->reason = s->reason;
        ev->time = s->bar_ts;
        if (s->signal_id && *s->signal_id) snprintf(idbuf, idcap, "%s", s->signal_id);
    } else if (strcmp(m->topic, n->topic_exec) == 0) {
        const Qb__V1__ExecutionReport *x = (const Qb__V1__ExecutionReport *)m->msg;
        h = x->header;
        ev->kind = QB_NEV_EXEC;
        ev->account = x->account;
        ev->symbol = x->symbol;
        ev->strategy_id = x->strategy_id;
        ev->status = nt_enum_suffix(&qb__v1__order_status__descriptor, (int)x->status,
                                    "ORDER_STATUS_");
        ev->side = nt_enum_suffix(&qb__v1__side__descriptor, (int)x->side, "SIDE_");
        ev->is_fill = x->fill_qty > 0;
        ev->is_reject = x->status == QB__V1__ORDER_STATUS__ORDER_STATUS_REJECTED;
        ev->qty = ev->is_fill ? x->fill_qty : x->order_qty;
        ev->price = x->fill_price;
        ev->cum_qty = x->cum_qty;
        ev->order_qty = x->order_qty;
        ev->order_id = x->order_id;
        ev->message = x->reason_text && *x->reason_text
                          ? x->reason_text
                          : nt_enum_suffix(&qb__v1__reason_code__descriptor, (int)x->reason_code,
                                           "REASON_CODE_");
    } else if (strcmp(m->topic, n->topic_risk) == 0) {
        const Qb__V1__RiskEvent *r = (const Qb__V1__RiskEvent *)m->msg;
        h = r->header;
        ev->kind = QB_NEV_RISK;
        ev->account = r->account;
        ev->symbol = r->symbol;
        ev->strategy_id = r->strategy_id;
        ev->risk_kind = nt_enum_suffix(&qb__v1__risk_event_kind__descriptor, (int)r->kind,
                                       "RISK_EVENT_KIND_");
        ev->severity = r->severity == QB__V1__SEVERITY__SEVERITY_UNSPECIFIED
                           ? "INFO"
                           : nt_enum_suffix(&qb__v1__severity__descriptor, (int)r->severity,
                                            "SEVERITY_");
        ev->critical = r->severity == QB__V1__SEVERITY__SEVERITY_CRITICAL;
        ev->message = r->message;
    } else if (strcmp(m->topic, n->topic_bt) == 0) {
        const Qb__V1__BacktestEvent *b = (const Qb__V1__BacktestEvent *)m->msg;
        h = b->header;
        ev->kind = QB_NEV_BACKTEST;
        ev->run_id = b->run_id;
        int whole = b->part == QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_UNSPECIFIED ||
                    b->part == QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN;
        ev->bt_failed = b->kind == QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FAILED;
        ev->bt_done = whole && (ev->bt_failed ||
                                b->kind == QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FINISHED);
        ev->message = b->error;
        if (b->metrics) {
            ev->bt_return = b->metrics->total_return;
            ev->bt_sharpe = b->metrics->sharpe;
            ev->bt_max_dd = b->metrics->max_drawdown;
            ev->bt_trades = b->metrics->trades;
        }
    } else {
        return QB_ERR_NOT_FOUND;
    }
    if (!idbuf[0]) {
        if (h && h->event_id && *h->event_id)
            snprintf(idbuf, idcap, "%s", h->event_id);
        else /* no id: the record's position is unique and stable */
            snprintf(idbuf, idcap, "%s:%d:%lld", m->topic, (int)m->partition,
                     (long long)m->offset);
    }
    ev->event_id = idbuf;
    if (!ev->time) ev->time = h && h->event_time ? h->event_time : qb_time_now();
    return QB_OK;
}

static qb_err_t nt_on_event(nt_t *n, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    qb_nevent_t ev;
    char id[80] = "";
    if (nt_event_of(n, m, &ev, id, sizeof id) != QB_OK) return QB_OK;
    qb_counter_inc(n->c_events);
    if (ev.kind == QB_NEV_BAR) {
        if (!ev.symbol || !*ev.symbol || !ev.timeframe || !*ev.timeframe || ev.close <= 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "bar without symbol, timeframe or a positive close");
        if (n->cfg->warmup && !qb_neval_has_series(n->eval, ev.symbol, ev.timeframe) &&
            qb_neval_watches(n->eval, ev.symbol)) {
            void *a[3] = {n->eval, (void *)ev.symbol, (void *)ev.timeframe};
            qb_err_t e = nt_store_history(n->store, ev.symbol, ev.timeframe, ev.time,
                                          qb_neval_max_window(n->eval), nt_history_cb, a, errstr,
                                          errstr_size);
            if (e) return e; /* retried */
            qb_counter_inc(n->c_warmups);
        }
    }
    int throttled = 0;
    n->fire_err = QB_OK;
    size_t before = n->batch.n;
    qb_neval_event(n->eval, &ev, nt_on_fire, n, &throttled);
    if (throttled) qb_counter_add(n->c_throttled, (uint64_t)throttled);
    if (n->fire_err) {
        n->batch.n = before;
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "out of memory staging");
    }
    return QB_OK;
}

static qb_err_t nt_on_control(nt_t *n, const qb_bus_msg_t *m, char *errstr, size_t errstr_size) {
    const Qb__V1__Command *cmd = (const Qb__V1__Command *)m->msg;
    const char *target = cmd->target ? cmd->target : "";
    if (*target && strcmp(target, "qb-notify") != 0 && strcmp(target, "*") != 0) return QB_OK;
    qb_err_t e = QB_OK;
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_UPSERT:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_DELETE:
        e = nt_store_apply_command(n->store, cmd, errstr, errstr_size);
        qb_counter_inc(n->c_cmds);
        if (e) {
            QB_WARN("command %s: %s%s", cmd->command_id ? cmd->command_id : "", errstr,
                    qb_err_is_retriable(e) ? " (will retry)" : " (dead-lettered)");
            return e;
        }
        QB_INFO("command %s: alert rule %s %s", cmd->command_id ? cmd->command_id : "",
                cmd->alert_rule && cmd->alert_rule->rule_id ? cmd->alert_rule->rule_id : "",
                cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_DELETE ? "deleted"
                                                                                   : "saved");
        break;
    case QB__V1__COMMAND_KIND__COMMAND_KIND_RELOAD: break;
    default: return QB_OK;
    }
    /* Use the new rules from the next event on. */
    if ((e = nt_reload(n, 1)) != QB_OK)
        snprintf(errstr, errstr_size, "rules could not be reloaded");
    return e;
}

static qb_err_t nt_handle(const qb_bus_msg_t *m, void *opaque, char *errstr, size_t errstr_size) {
    nt_t *n = opaque;
    const qb_topic_t *ctl = qb_topic_get(QB_TOPIC_CONTROL);
    if (ctl && strcmp(m->topic, ctl->name) == 0) return nt_on_control(n, m, errstr, errstr_size);
    return nt_on_event(n, m, errstr, errstr_size);
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    static nt_cfg_t cfg;
    static nt_t n;
    static const char about[] =
        "The notification service: evaluates each user's alert rules (notify.rules: price\n"
        "crossings and moves, signals, fills, rejections, risk events, finished backtests) on\n"
        "md.bars, signals, exec.reports, risk.events and backtest.events (group qb-notify),\n"
        "and delivers each firing once per target — webhook (HMAC-signed), Slack, Telegram,\n"
        "e-mail over SMTP, in-app — with throttling, quiet hours, retries with back-off, a\n"
        "delivery log (notify.deliveries) and notifications.dlq for what cannot be delivered.\n"
        "Rules change with ALERT_RULE_UPSERT / _DELETE on `control`. Admin port: /healthz,\n"
        "/readyz, /metrics.";
    char errstr[1024];
    int rc = 0;
    n.svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-notify", .about = about, .admin_port = 9106,
                                       .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG,
                                       .table = nt_cfg_entries, .cfg = &cfg},
                       argc, argv, &rc);
    if (!n.svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(n.svc);
    n.cfg = &cfg;
    n.dsn = com->pg_dsn;
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    n.topic_bars = qb_topic_get(QB_TOPIC_MD_BARS)->name;
    n.topic_signals = qb_topic_get(QB_TOPIC_SIGNALS)->name;
    n.topic_exec = qb_topic_get(QB_TOPIC_EXEC_REPORTS)->name;
    n.topic_risk = qb_topic_get(QB_TOPIC_RISK_EVENTS)->name;
    n.topic_bt = qb_topic_get(QB_TOPIC_BACKTEST_EVENTS)->name;
    if (!(n.eval = qb_neval_new())) goto out;
    if (!(n.store = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (!(n.producer = qb_producer_new(errstr, sizeof errstr))) {
        QB_ERROR("producer: %s", errstr);
        goto out;
    }
    n.c_events = qb_metrics_counter("qb_notify_events_total", "events evaluated", NULL);
    n.c_fired = qb_metrics_counter("qb_notify_fired_total", "rule firings staged", NULL);
    n.c_throttled = qb_metrics_counter("qb_notify_throttled_total",
                                       "matches not fired: within the rule's cooldown", NULL);
    n.c_cmds = qb_metrics_counter("qb_notify_commands_total", "ALERT_RULE_* commands handled",
                                  NULL);
    n.c_warmups = qb_metrics_counter("qb_notify_warmups_total",
                                     "price series warmed up from md.bars", NULL);
    n.c_flushes = qb_metrics_counter("qb_notify_flushes_total", "batches of firings written",
                                     NULL);
    n.g_rules = qb_metrics_gauge("qb_notify_rules", "alert rules loaded", NULL);
    n.g_pending = qb_metrics_gauge("qb_notify_pending",
                                   "deliveries pending (checked at each rules check)", NULL);
    n.h_flush = qb_metrics_histogram("qb_notify_flush_seconds",
                                     "write of a batch of firings + offset store", NULL);

    rc = 1;
    if (qb_svc_migrate(n.svc, n.store, cfg.migrate)) goto out;
    while (qb_svc_running(n.svc) && nt_reload(&n, 1) != QB_OK) usleep(500 * 1000);
    if (!(n.workers = nt_workers_start(&cfg, com->pg_dsn, n.producer, errstr, sizeof errstr))) {
        QB_ERROR("delivery workers: %s", errstr);
        goto out;
    }
    const char *topics[] = {"md.bars", "signals", "exec.reports", "risk.events",
                            "backtest.events", "control"};
    n.consumer = qb_consumer_new(cfg.group, topics, 6, nt_handle, &n, errstr, sizeof errstr);
    if (!n.consumer) {
        QB_ERROR("consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    qb_consumer_set_deferred_store(n.consumer, 1);
    qb_consumer_set_revoke_cb(n.consumer, nt_revoked, &n);
    QB_INFO("qb-notify ready: %d delivery workers, admin port %d", (int)cfg.workers,
            qb_svc_admin_port(n.svc));

    rc = 0;
    qb_time_t next_reload = qb_time_mono_ns() + cfg.reload_ms * 1000000LL;
    while (qb_svc_running(n.svc)) {
        qb_err_t pe = qb_consumer_poll(n.consumer, 20);
        if (pe == QB_ERR_KAFKA) {
            QB_ERROR("consumer failed fatally");
            rc = 1;
            break;
        }
        int64_t now = qb_time_mono_ns();
        int idle = pe == QB_ERR_TIMEOUT;
        if ((int64_t)n.batch.n >= cfg.flush_rows ||
            (n.first_staged && now - n.first_staged >= cfg.flush_ms * 1000000LL) ||
            (idle && (n.batch.n || qb_consumer_pending(n.consumer))))
            (void)nt_flush(&n);
        if (now >= next_reload) {
            (void)nt_reload(&n, 0);
            next_reload = now + cfg.reload_ms * 1000000LL;
        }
        qb_producer_poll(n.producer, 0);
    }
    QB_INFO("qb-notify stopping");
    if (nt_flush(&n) != QB_OK) QB_WARN("final flush failed: the next start replays");
out:
    nt_workers_stop(n.workers);
    if (n.consumer) {
        if (qb_consumer_close(n.consumer) != QB_OK) QB_WARN("consumer: close timed out");
        qb_consumer_destroy(n.consumer);
    }
    if (n.producer && qb_producer_flush(n.producer, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_svc_destroy(n.svc);
    qb_producer_destroy(n.producer);
    qb_store_destroy(n.store);
    qb_neval_destroy(n.eval);
    free(n.batch.v);
    return rc;
}
