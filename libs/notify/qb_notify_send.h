/* qb_notify_send.h — sending one notification to one channel, over libcurl.
 *
 * Channels (qb_nchan_t):
 *   WEBHOOK   POST address, Content-Type application/json, body:
 *               {"delivery_id","rule_id","rule_name","user","event_id",
 *                "event_kind","event_time" (ISO 8601 UTC),"title","text"}
 *             headers X-Quantbus-Delivery-Id (the idempotency key: the same
 *             delivery always carries the same id, also when retried or
 *             resumed after a crash), X-Quantbus-Attempt, X-Quantbus-Timestamp
 *             (unix seconds) and, when the target (or the sender's default)
 *             has a secret, X-Quantbus-Signature: "sha256=" + lowercase hex
 *             HMAC-SHA256(secret, timestamp + "." + body).
 *   SLACK     POST address (an incoming-webhook URL) {"text": "*title*\ntext"}.
 *   TELEGRAM  POST {telegram_api}/bot{token}/sendMessage {"chat_id": address,
 *             "text": "title\ntext", "disable_web_page_preview": true}; a 429's
 *             parameters.retry_after is honoured.
 *   EMAIL     SMTP to smtp_url (smtp://host:port; smtps:// for implicit TLS),
 *             STARTTLS required when smtp_starttls (libcurl CURLUSESSL_ALL,
 *             certificate verified, smtp_ca_file for a private CA), AUTH when
 *             smtp_user is set; a text/plain UTF-8 message with Subject =
 *             title, Message-ID <delivery_id@quantbus>.
 *   IN_APP    not sent here (the service stores it).
 *
 * Outcome (qb_nsend_res_t.status):
 *   QB_NSEND_OK     2xx / mail accepted;
 *   QB_NSEND_RETRY  network error, time-out, 408, 429, 5xx (HTTP), or any
 *                   SMTP failure but a 5xx reply: worth another attempt
 *                   (retry_after_ms >= 0 when the server said when);
 *   QB_NSEND_FAIL   refused for good (other 4xx, 3xx — redirects are not
 *                   followed —, SMTP 5xx, a bad URL): no retry.
 * error says what happened, with no secret in it: URLs appear as
 * qb_naddr_display() shows them, and every configured secret (bot token,
 * SMTP password, webhook secrets) is masked wherever it would show up.
 *
 * Threads: a sender owns one curl easy handle (and its connection cache):
 * one thread at a time. Ownership: qb_nsender_new copies the configuration;
 * qb_nsender_destroy frees it (secrets wiped); NULL is a no-op. */
#ifndef QB_NOTIFY_SEND_H
#define QB_NOTIFY_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"
#include "core/qb_time.h"
#include "notify/qb_notify.h"

typedef struct qb_nsend_cfg_s {
    long timeout_ms;            /* whole attempt; default 10000 */
    long connect_timeout_ms;    /* default 5000 */
    const char *user_agent;     /* default "quantbus-notify/1" */
    const char *webhook_secret; /* default HMAC key ("" / NULL: none) */
    const char *telegram_api;   /* default "https://api.telegram.org" */
    const char *telegram_token; /* bot token (secret) */
    const char *smtp_url;       /* e.g. "smtp://mail.example.com:587" */
    const char *smtp_from;      /* envelope and From: address */
    const char *smtp_user;      /* "" = no AUTH */
    const char *smtp_password;  /* secret */
    int smtp_starttls;          /* 1: STARTTLS required */
    const char *smtp_ca_file;   /* CA bundle for the SMTP server ("" = system) */
} qb_nsend_cfg_t;

/* One notification to one destination; strings borrowed. */
typedef struct qb_nmsg_s {
    const char *delivery_id;
    const char *rule_id;
    const char *rule_name;
    const char *user;
    const char *event_id;
    const char *event_kind;
    qb_time_t event_time;
    const char *title;
    const char *text;
    qb_nchan_t channel;
    const char *address;
    const char *secret;  /* webhook: overrides the default secret */
    int attempt;         /* 1 for the first */
} qb_nmsg_t;

typedef enum qb_nsend_status_e {
    QB_NSEND_OK = 0,
    QB_NSEND_RETRY = 1,
    QB_NSEND_FAIL = 2
} qb_nsend_status_t;

typedef struct qb_nsend_res_s {
    qb_nsend_status_t status;
    long code;               /* HTTP status or SMTP reply code; 0 = none */
    int64_t retry_after_ms;  /* -1 when the server did not say */
    int64_t elapsed_ns;
    char error[512];         /* "" on success */
} qb_nsend_res_t;

typedef struct qb_nsender_s qb_nsender_t;

/* NULL (with errstr) when curl cannot be set up. */
qb_nsender_t *qb_nsender_new(const qb_nsend_cfg_t *cfg, char *errstr, size_t errstr_size);
void qb_nsender_destroy(qb_nsender_t *s);

/* Send m (m->channel not IN_APP) and fill *res. Never blocks longer than
 * the time-outs. */
void qb_nsend(qb_nsender_t *s, const qb_nmsg_t *m, qb_nsend_res_t *res);

/* ---- pure helpers (unit-tested) ------------------------------------------------ */

/* Lowercase hex HMAC-SHA256 of data under key. */
void qb_nhmac_sha256_hex(const char *key, const void *data, size_t len, char out[65]);

/* The JSON body of a webhook (malloc'd; NULL when out of memory). */
char *qb_nwebhook_body(const qb_nmsg_t *m);

/* A destination as it may be shown or logged: a URL keeps its scheme and
 * host[:port] ("https://hooks.slack.com/..."), anything else is copied. */
size_t qb_naddr_display(qb_nchan_t ch, const char *address, char *buf, size_t cap);

/* Back-off before attempt `attempt` + 1 after `attempt` failures: base_ms x
 * 2^(attempt-1) capped at max_ms, drawn from [d/2, d] with rnd; a server's
 * retry_after_ms (>= 0) is used instead when larger, capped at max_ms. */
int64_t qb_nbackoff_ms(int attempt, int64_t base_ms, int64_t max_ms, int64_t retry_after_ms,
                       uint64_t rnd);

/* The e-mail message (headers + body, CRLF line ends) for m, From `from`,
 * dated `now` (malloc'd). Non-ASCII subjects are RFC 2047 encoded. */
char *qb_nmail_build(const qb_nmsg_t *m, const char *from, qb_time_t now);

#endif
