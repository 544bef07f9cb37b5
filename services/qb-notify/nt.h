/* nt.h — qb-notify's internal types, shared by main.c (consumer, rules,
 * firing), nt_store.c (PostgreSQL) and nt_deliver.c (the delivery workers).
 * Nothing here is a library: libs/notify holds the logic without I/O. */
#ifndef QB_NOTIFY_NT_H
#define QB_NOTIFY_NT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/qb_bus.h"
#include "core/qb_err.h"
#include "core/qb_metrics.h"
#include "core/qb_uuid.h"
#include "notify/qb_notify.h"
#include "notify/qb_notify_send.h"
#include "qb/v1/control.pb-c.h"
#include "store/qb_store.h"

/* Namespace of delivery ids (fixed random UUID, never to change):
 * delivery_id = UUID v5 of "rule_id|event_id|target index". */
#define NT_DELIVERY_NS "4b7d2f0e-6c1a-4e59-8f3b-a0d2c9e7b611"

typedef struct nt_cfg_s {
    const char *group;
    int migrate;
    int64_t flush_ms;
    int64_t flush_rows;
    int64_t reload_ms;
    int warmup;
    int64_t workers;
    int64_t poll_ms;
    int64_t claim_batch;
    int64_t claim_stale_s;
    int64_t max_attempts;
    int64_t retry_base_ms;
    int64_t retry_max_ms;
    int64_t http_timeout_ms;
    int64_t connect_timeout_ms;
    const char *webhook_secret;
    const char *telegram_api;
    const char *telegram_token;
    const char *smtp_url;
    const char *smtp_from;
    const char *smtp_user;
    const char *smtp_password;
    int smtp_starttls;
    const char *smtp_ca_file;
} nt_cfg_t;

/* ---- staged firings (consumer thread) ----------------------------------------- */

typedef struct nt_dlv_s {
    char id[QB_UUID_STRLEN];
    int idx;
    qb_nchan_t channel;
    char address[QB_NADDR_MAX + 16]; /* as shown (no secrets) */
    qb_time_t not_before;            /* quiet hours end, 0 = now */
} nt_dlv_t;

typedef struct nt_fire_s {
    char rule_id[QB_NRULE_ID_MAX + 1];
    char owner[QB_NRULE_OWNER_MAX + 1];
    char event_id[80];
    const char *kind;                /* static string */
    qb_time_t event_time;
    char title[QB_NTITLE_MAX];
    char text[QB_NTEXT_MAX];
    nt_dlv_t d[QB_NTARGETS_MAX];
    size_t nd;
} nt_fire_t;

typedef struct nt_batch_s {
    nt_fire_t *v;
    size_t n, cap;
} nt_batch_t;

/* ---- store (nt_store.c) --------------------------------------------------------- */

/* max(change_seq) of notify.rules (0 when empty). */
qb_err_t nt_store_rules_seq(qb_store_t *s, int64_t *seq, char *errstr, size_t errstr_size);
/* Every rule (enabled or not; the evaluator skips disabled ones) into a new
 * set. A stored rule that no longer validates is logged and skipped. */
qb_err_t nt_store_rules(qb_store_t *s, qb_nrules_t **out, char *errstr, size_t errstr_size);
/* ALERT_RULE_UPSERT / _DELETE. QB_ERR_INVALID / QB_ERR_NOT_FOUND (dead-
 * lettered) with a message naming the field. Deleting a rule cancels its
 * pending deliveries; an upsert cancels those whose target is gone. */
qb_err_t nt_store_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, char *errstr,
                                size_t errstr_size);
/* Stored bars of symbol/tf before `before`, from the newest at or before
 * `before - window - 1us` on (at most 100000), oldest first, to
 * cb(opaque, ts, close). */
qb_err_t nt_store_history(qb_store_t *s, const char *symbol, const char *tf, qb_time_t before,
                          int64_t window,
                          void (*cb)(void *opaque, qb_time_t ts, int64_t close), void *opaque,
                          char *errstr, size_t errstr_size);
/* Write the staged firings in one transaction: notify.fired (ON CONFLICT DO
 * NOTHING), then the deliveries of each firing that was new, then each
 * rule's last_fired_ns. Empties the batch on success. *new_deliveries gets
 * how many delivery rows were inserted. */
qb_err_t nt_store_flush(qb_store_t *s, nt_batch_t *b, int64_t *new_deliveries, char *errstr,
                        size_t errstr_size);
/* Pending deliveries (for the gauge). */
qb_err_t nt_store_pending(qb_store_t *s, int64_t *n, char *errstr, size_t errstr_size);

/* One claimed delivery, with its target as the rule has it now. */
typedef struct nt_claim_s {
    char id[QB_UUID_STRLEN];
    char rule_id[QB_NRULE_ID_MAX + 1];
    char rule_name[QB_NRULE_NAME_MAX + 1];
    char event_id[80];
    char owner[QB_NRULE_OWNER_MAX + 1];
    char kind[32];
    qb_time_t event_time;
    qb_time_t created;
    qb_nchan_t channel;
    int attempts;
    int rule_exists;
    qb_nchan_t target_channel; /* of the rule's target now (NONE when gone) */
    char *address;             /* the rule's target now (malloc'd) */
    char *secret;              /* malloc'd, wiped on free; NULL when none */
    char shown[QB_NADDR_MAX + 16];
    char *title, *text;        /* malloc'd */
} nt_claim_t;

void nt_claim_free(nt_claim_t *c);
/* Claim up to `max` due pending deliveries for this session
 * (claimed_by = pg_backend_pid()); claims of sessions that are gone, or
 * older than stale_s, are taken over. *out malloc'd (free each with
 * nt_claim_free, then the array). */
qb_err_t nt_store_claim(qb_store_t *s, int max, int64_t stale_s, nt_claim_t **out, size_t *n,
                        char *errstr, size_t errstr_size);
/* Record an attempt. status: "delivered", "pending" (retry after
 * retry_ms), "dead", "canceled". attempted: 1 when a send was made (the
 * attempt count grows). code: HTTP/SMTP status (0 = none). error may be
 * NULL (the last error is then kept, or cleared when delivered). QB_ERR_CONFLICT when the claim was lost (another session took it). */
qb_err_t nt_store_mark(qb_store_t *s, const char *id, const char *status, int attempted,
                       long code, const char *error, int64_t retry_ms, char *errstr,
                       size_t errstr_size);
/* In-app: the inbox row, NOTIFY qb_notify_inbox (payload: owner) and the
 * delivery marked delivered, in one transaction. */
qb_err_t nt_store_inbox(qb_store_t *s, const nt_claim_t *c, char *errstr, size_t errstr_size);

/* ---- delivery workers (nt_deliver.c) --------------------------------------------- */

typedef struct nt_workers_s nt_workers_t;

/* Start cfg->workers threads, each with its own PostgreSQL connection (dsn)
 * and sender; DLQ / notifications through `producer` (thread-safe). NULL
 * with errstr on failure. */
nt_workers_t *nt_workers_start(const nt_cfg_t *cfg, const char *dsn, qb_producer_t *producer,
                               char *errstr, size_t errstr_size);
/* Wake the workers now (new deliveries were committed). */
void nt_workers_kick(nt_workers_t *w);
/* Stop: each worker finishes the send in progress (bounded by the
 * time-outs) and records it; join, free. NULL is a no-op. */
void nt_workers_stop(nt_workers_t *w);

#endif
