/* nt_deliver.c — the delivery workers of qb-notify.
 *
 * Each worker is a thread with its own PostgreSQL connection and its own
 * sender (curl handle). Loop: claim up to QB_NOTIFY_CLAIM_BATCH due pending
 * deliveries (nt_store_claim: claimed_by = this session's backend pid, so a
 * claim dies with the session: a killed process's deliveries are claimable
 * again at once), then for each:
 *
 *   rule deleted, or its target at that index gone or of another channel
 *       -> canceled
 *   attempts >= QB_NOTIFY_MAX_ATTEMPTS (an earlier DLQ write failed)
 *       -> dead-letter only (no new send)
 *   in_app
 *       -> inbox row + NOTIFY + delivered, one transaction; then the
 *          Notification on topic `notifications` (key user)
 *   otherwise send (libs/notify qb_nsend):
 *       OK     -> delivered (attempts + 1)
 *       RETRY  and attempts + 1 < max -> pending, next_attempt_at = now +
 *              back-off (QB_NOTIFY_RETRY_BASE_MS doubling to _MAX_MS, full
 *              jitter in [d/2, d], a server's Retry-After when longer)
 *       RETRY  at the last attempt, or FAIL (refused for good)
 *              -> the Notification on notifications.dlq (acknowledged by the
 *              broker), then dead; when the DLQ write fails the row stays
 *              pending with its attempts and the DLQ write is retried later.
 *
 * Each outcome is written right after its send, so a crash repeats at most
 * the send in flight (see main.c on exactly-once). Woken by the consumer
 * thread after new deliveries are committed, else every QB_NOTIFY_POLL_MS.
 * Secrets are never logged: addresses appear as qb_naddr_display shows
 * them and sender errors are masked. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "nt.h"
#include "proto/qb_proto.h"

typedef struct nt_worker_s {
    struct nt_workers_s *ws;
    int index;
    pthread_t th;
    int started;
    qb_store_t *store;
    qb_nsender_t *sender;
} nt_worker_t;

struct nt_workers_s {
    const nt_cfg_t *cfg;
    qb_producer_t *producer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t kicks; /* under mu */
    int stop;       /* under mu */
    nt_worker_t *w;
    int n;
    qb_counter_t *c_res[QB_NCHAN__COUNT][4]; /* delivered, retry, dead, canceled */
    qb_counter_t *c_attempts;
    qb_hist_t *h_send;
};

enum { NT_R_DELIVERED, NT_R_RETRY, NT_R_DEAD, NT_R_CANCELED };
static const char *const nt_res_names[4] = {"delivered", "retry", "dead", "canceled"};

static int nt_stopping(nt_workers_t *ws) {
    pthread_mutex_lock(&ws->mu);
    int s = ws->stop;
    pthread_mutex_unlock(&ws->mu);
    return s;
}

static void nt_count(nt_workers_t *ws, qb_nchan_t ch, int res) {
    if ((int)ch > 0 && ch < QB_NCHAN__COUNT && ws->c_res[ch][res])
        qb_counter_inc(ws->c_res[ch][res]);
}

/* The Notification of a claimed delivery (strings borrowed from c). */
static qb_err_t nt_publish(nt_workers_t *ws, const nt_claim_t *c, const char *topic,
                           int attempts, const char *error) {
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = (char *)c->id;
    h.event_time = c->event_time;
    h.produced_time = qb_time_now();
    h.producer = "qb-notify";
    h.trace_id = "";
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__Notification n = QB__V1__NOTIFICATION__INIT;
    n.header = &h;
    n.delivery_id = (char *)c->id;
    n.rule_id = (char *)c->rule_id;
    n.user = (char *)c->owner;
    n.event_id = (char *)c->event_id;
    n.event_kind = (char *)c->kind;
    n.channel = (Qb__V1__NotifyChannel)c->channel;
    n.address = (char *)c->shown;
    n.title = c->title;
    n.text = c->text;
    n.attempts = (uint32_t)attempts;
    n.last_error = (char *)(error ? error : "");
    n.created_time = c->created;
    size_t len = qb__v1__notification__get_packed_size(&n);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return QB_ERR_NOMEM;
    qb__v1__notification__pack(&n, buf);
    qb_err_t e = qb_producer_send(ws->producer, topic, c->owner, strlen(c->owner),
                                  "qb.v1.Notification", buf, len, "");
    free(buf);
    return e;
}

/* Dead-letter: the Notification on notifications.dlq, acknowledged. The
 * producer API has no per-record headers, so the reason travels in
 * Notification.last_error. */
static qb_err_t nt_dead_letter(nt_workers_t *ws, const nt_claim_t *c, int attempts,
                               const char *error) {
    qb_err_t e = nt_publish(ws, c, "notifications.dlq", attempts, error);
    if (!e) e = qb_producer_flush(ws->producer, 10000);
    return e;
}

static void nt_mark(nt_worker_t *w, const nt_claim_t *c, const char *status, int attempted,
                    long code, const char *error, int64_t retry_ms) {
    char errstr[512];
    qb_err_t e = nt_store_mark(w->store, c->id, status, attempted, code, error, retry_ms, errstr,
                               sizeof errstr);
    if (e)
        QB_WARN("delivery %s: recording '%s' failed (%s): it is resumed later", c->id, status,
                errstr);
}

static void nt_handle(nt_worker_t *w, nt_claim_t *c) {
    nt_workers_t *ws = w->ws;
    const nt_cfg_t *cfg = ws->cfg;
    char errstr[512];
    qb_log_ctx_set("delivery", c->id);
    qb_log_ctx_set("rule", c->rule_id);
    if (!c->rule_exists || c->target_channel != c->channel) {
        const char *why = !c->rule_exists ? "rule deleted" : "target removed by a rule update";
        nt_mark(w, c, "canceled", 0, 0, why, 0);
        nt_count(ws, c->channel, NT_R_CANCELED);
        QB_INFO("delivery %s (%s %s): canceled: %s", c->id, qb_nchan_name(c->channel), c->shown,
                why);
        qb_log_ctx_clear();
        return;
    }
    if (c->attempts >= cfg->max_attempts) {
        /* A send already failed for good; only the dead-letter is owed. */
        qb_err_t e = nt_dead_letter(ws, c, c->attempts, "retries exhausted");
        if (!e) {
            nt_mark(w, c, "dead", 0, 0, "retries exhausted; sent to notifications.dlq", 0);
            nt_count(ws, c->channel, NT_R_DEAD);
        } else {
            nt_mark(w, c, "pending", 0, 0, "notifications.dlq unavailable", cfg->retry_max_ms);
        }
        qb_log_ctx_clear();
        return;
    }
    if (c->channel == QB_NCHAN_IN_APP) {
        qb_err_t e = nt_store_inbox(w->store, c, errstr, sizeof errstr);
        if (e) {
            QB_WARN("delivery %s (in_app): %s: retried", c->id, errstr);
        } else {
            nt_count(ws, c->channel, NT_R_DELIVERED);
            if (nt_publish(ws, c, "notifications", 0, NULL) != QB_OK)
                QB_WARN("delivery %s: not published on notifications (stored in the inbox)", c->id);
        }
        qb_log_ctx_clear();
        return;
    }
    int attempt = c->attempts + 1;
    qb_nmsg_t m = {.delivery_id = c->id, .rule_id = c->rule_id, .rule_name = c->rule_name,
                   .user = c->owner, .event_id = c->event_id, .event_kind = c->kind,
                   .event_time = c->event_time, .title = c->title, .text = c->text,
                   .channel = c->channel, .address = c->address, .secret = c->secret,
                   .attempt = attempt};
    qb_nsend_res_t res;
    qb_nsend(w->sender, &m, &res);
    qb_counter_inc(ws->c_attempts);
    qb_hist_observe(ws->h_send, (double)res.elapsed_ns / 1e9);
    if (res.status == QB_NSEND_OK) {
        nt_mark(w, c, "delivered", 1, res.code, NULL, 0);
        nt_count(ws, c->channel, NT_R_DELIVERED);
        QB_DEBUG("delivery %s (%s %s): delivered at attempt %d", c->id, qb_nchan_name(c->channel),
                 c->shown, attempt);
    } else if (res.status == QB_NSEND_RETRY && attempt < cfg->max_attempts) {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint64_t)qb_time_mono_ns();
        int64_t ms = qb_nbackoff_ms(attempt, cfg->retry_base_ms, cfg->retry_max_ms,
                                    res.retry_after_ms, rnd);
        nt_mark(w, c, "pending", 1, res.code, res.error, ms);
        nt_count(ws, c->channel, NT_R_RETRY);
        QB_WARN("delivery %s (%s %s): attempt %d of %d failed: %s; next in %" PRId64 " ms", c->id,
                qb_nchan_name(c->channel), c->shown, attempt, (int)cfg->max_attempts, res.error,
                ms);
    } else {
        const char *why = res.status == QB_NSEND_FAIL ? "refused" : "retries exhausted";
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s; sent to notifications.dlq", why, res.error);
        qb_err_t e = nt_dead_letter(ws, c, attempt, res.error);
        if (!e) {
            nt_mark(w, c, "dead", 1, res.code, msg, 0);
            nt_count(ws, c->channel, NT_R_DEAD);
            QB_WARN("delivery %s (%s %s): dead after %d attempts: %s", c->id,
                    qb_nchan_name(c->channel), c->shown, attempt, msg);
        } else {
            /* Keep it pending; the next claim owes only the dead-letter when
             * the attempts are used up. */
            nt_mark(w, c, "pending", 1, res.code, res.error, cfg->retry_base_ms);
            QB_WARN("delivery %s: notifications.dlq write failed (%s): retried", c->id,
                    qb_err_str(e));
        }
    }
    qb_log_ctx_clear();
}

static void *nt_worker_main(void *arg) {
    nt_worker_t *w = arg;
    nt_workers_t *ws = w->ws;
    const nt_cfg_t *cfg = ws->cfg;
    char errstr[512];
    uint64_t seen = 0;
    int logged = 0;
    while (!nt_stopping(ws)) {
        nt_claim_t *v = NULL;
        size_t n = 0;
        qb_err_t e = nt_store_claim(w->store, (int)cfg->claim_batch, cfg->claim_stale_s, &v, &n,
                                    errstr, sizeof errstr);
        if (e) {
            if (!logged++) QB_WARN("delivery worker %d: claim: %s (retrying)", w->index, errstr);
        } else {
            logged = 0;
        }
        for (size_t i = 0; i < n; i++) {
            /* On stop, the claims not yet sent are released by the mark
             * with no attempt (they stay pending). */
            if (nt_stopping(ws)) {
                nt_mark(w, &v[i], "pending", 0, 0, NULL, 0);
            } else {
                nt_handle(w, &v[i]);
            }
            nt_claim_free(&v[i]);
        }
        free(v);
        if (n == (size_t)cfg->claim_batch) continue; /* more may be due */
        pthread_mutex_lock(&ws->mu);
        if (!ws->stop && ws->kicks == seen) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (e ? 500 : cfg->poll_ms) * 1000000LL;
            ts.tv_sec += ns / 1000000000LL;
            ts.tv_nsec = ns % 1000000000LL;
            pthread_cond_timedwait(&ws->cv, &ws->mu, &ts);
        }
        seen = ws->kicks;
        pthread_mutex_unlock(&ws->mu);
    }
    return NULL;
}

nt_workers_t *nt_workers_start(const nt_cfg_t *cfg, const char *dsn, qb_producer_t *producer,
                               char *errstr, size_t errstr_size) {
    nt_workers_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ws->cfg = cfg;
    ws->producer = producer;
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    for (int c = 1; c < QB_NCHAN__COUNT; c++)
        for (int r = 0; r < 4; r++) {
            char labels[96];
            snprintf(labels, sizeof labels, "channel=\"%s\",result=\"%s\"",
                     qb_nchan_name((qb_nchan_t)c), nt_res_names[r]);
            ws->c_res[c][r] = qb_metrics_counter(
                "qb_notify_deliveries_total",
                "delivery outcomes per channel: delivered, retry (an attempt failed, another is "
                "due), dead (sent to notifications.dlq), canceled",
                labels);
        }
    ws->c_attempts = qb_metrics_counter("qb_notify_send_attempts_total",
                                        "sends made (webhook, slack, telegram, email)", NULL);
    ws->h_send = qb_metrics_histogram("qb_notify_send_seconds", "time of one send", NULL);
    ws->n = (int)cfg->workers;
    ws->w = calloc((size_t)ws->n, sizeof *ws->w);
    if (!ws->w) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        nt_workers_stop(ws);
        return NULL;
    }
    qb_nsend_cfg_t sc = {.timeout_ms = cfg->http_timeout_ms,
                         .connect_timeout_ms = cfg->connect_timeout_ms,
                         .webhook_secret = cfg->webhook_secret,
                         .telegram_api = cfg->telegram_api,
                         .telegram_token = cfg->telegram_token,
                         .smtp_url = cfg->smtp_url,
                         .smtp_from = cfg->smtp_from,
                         .smtp_user = cfg->smtp_user,
                         .smtp_password = cfg->smtp_password,
                         .smtp_starttls = cfg->smtp_starttls,
                         .smtp_ca_file = cfg->smtp_ca_file};
    for (int i = 0; i < ws->n; i++) {
        nt_worker_t *w = &ws->w[i];
        w->ws = ws;
        w->index = i;
        if (!(w->store = qb_store_new(dsn, errstr, errstr_size)) ||
            !(w->sender = qb_nsender_new(&sc, errstr, errstr_size))) {
            nt_workers_stop(ws);
            return NULL;
        }
    }
    for (int i = 0; i < ws->n; i++) {
        if (pthread_create(&ws->w[i].th, NULL, nt_worker_main, &ws->w[i]) != 0) {
            qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "cannot start delivery worker %d", i);
            nt_workers_stop(ws);
            return NULL;
        }
        ws->w[i].started = 1;
    }
    return ws;
}

void nt_workers_kick(nt_workers_t *ws) {
    if (!ws) return;
    pthread_mutex_lock(&ws->mu);
    ws->kicks++;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

void nt_workers_stop(nt_workers_t *ws) {
    if (!ws) return;
    pthread_mutex_lock(&ws->mu);
    ws->stop = 1;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    for (int i = 0; ws->w && i < ws->n; i++) {
        if (ws->w[i].started) pthread_join(ws->w[i].th, NULL);
        qb_nsender_destroy(ws->w[i].sender);
        qb_store_destroy(ws->w[i].store);
    }
    free(ws->w);
    pthread_cond_destroy(&ws->cv);
    pthread_mutex_destroy(&ws->mu);
    free(ws);
}
