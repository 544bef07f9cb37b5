/* qb_fake_alpaca.h — a stateful fake of Alpaca's trading API v2 for tests:
 * the "broker's truth" that adapter and service tests check against.
 *
 * Why: the adapter must be shown against the documented JSON — orders kept
 * by client_order_id with duplicates refused exactly like Alpaca (422
 * {"code":40010001,"message":"client_order_id must be unique"}), partial
 * fills, cancels, replaces, rejections (403 insufficient buying power, 422
 * bad order), 429 with Retry-After and 5xx — and an end-to-end kill -9 test
 * needs a broker whose state outlives the service, so "no order sent twice"
 * and "no fill missing" can be counted where they happen.
 *
 * Endpoints (JSON; numbers as decimal strings as Alpaca sends them):
 *   POST   /v2/orders                         place (client_order_id unique)
 *   GET    /v2/orders?status=open|closed|all  list
 *   GET    /v2/orders:by_client_order_id?client_order_id=X
 *   GET    /v2/orders/{id}
 *   DELETE /v2/orders/{id}                    204, or 422 not cancelable
 *   DELETE /v2/orders                         207, cancels every open order
 *   PATCH  /v2/orders/{id}                    replace: new order, old "replaced"
 *   GET    /v2/positions, GET /v2/account
 *   GET    /_test/stats                       {"orders","posts","posts_accepted",
 *                                              "posts_duplicate","fills","requests"}
 * Every request must carry APCA-API-KEY-ID / APCA-API-SECRET-KEY equal to
 * the configured keys (else 401). A symbol "REJECTME" is refused with 403
 * ("insufficient buying power"); qty <= 0 or an unknown type with 422.
 *
 * Fills: qb_fake_alpaca_fill() fills an order (partially) at a price; with
 * cfg.auto_fill_ms > 0 a thread fills every open order each tick: market
 * orders half of what is left (whole units, at least 1) at the symbol's
 * price (cfg.price, default 100, +0.01 per tick), limit orders when the
 * price is at or better than the limit. Positions and cash follow fills.
 *
 * Faults: qb_fake_alpaca_fault() makes the next n requests of a method
 * answer `status` (with Retry-After when given); with after_effect = 1 a
 * POST/DELETE/PATCH is applied FIRST and then answered with the error (the
 * response is lost: the client must not place the order twice). Periodic
 * faults for long runs: cfg.post_fail_every (every Nth POST applied then
 * answered 503), cfg.throttle_every (every Nth request 429, Retry-After 0).
 *
 * Runs libmicrohttpd on 127.0.0.1, a free port, one server thread; the
 * state is behind a mutex. Ownership: qb_fake_alpaca_stop frees everything
 * (NULL is a no-op). */
#ifndef QB_FAKE_ALPACA_H
#define QB_FAKE_ALPACA_H

#include <stddef.h>
#include <stdint.h>

typedef struct qb_fake_alpaca_cfg_s {
    const char *key_id, *secret_key; /* required headers; NULL = "key"/"secret" */
    int auto_fill_ms;                /* 0 = fills only by qb_fake_alpaca_fill */
    const char *price;               /* auto-fill price; default "100" */
    int post_fail_every;             /* 0 = off */
    int throttle_every;              /* 0 = off */
    int port;                        /* 0 = any free port */
} qb_fake_alpaca_cfg_t;

typedef struct qb_fake_alpaca_s qb_fake_alpaca_t;

/* NULL when the server cannot start (a cmocka test fails it itself). */
qb_fake_alpaca_t *qb_fake_alpaca_start(const qb_fake_alpaca_cfg_t *cfg);
void qb_fake_alpaca_stop(qb_fake_alpaca_t *fa);
const char *qb_fake_alpaca_url(const qb_fake_alpaca_t *fa);

/* Fill `qty` of the order with this client order id at `price` (decimal
 * text). 0 on success, -1 when unknown, not open or overfilled. */
int qb_fake_alpaca_fill(qb_fake_alpaca_t *fa, const char *client_order_id, const char *qty,
                        const char *price);
/* Set an order's status by hand ("expired", "canceled", "rejected"). */
int qb_fake_alpaca_set_status(qb_fake_alpaca_t *fa, const char *client_order_id,
                              const char *status);
/* Forget an order entirely (the broker "no longer knows" it). */
int qb_fake_alpaca_forget(qb_fake_alpaca_t *fa, const char *client_order_id);

/* The next n requests of `method` ("POST", "GET", ... or "*") answer status
 * (retry_after "" = no header); after_effect as above. */
void qb_fake_alpaca_fault(qb_fake_alpaca_t *fa, const char *method, int n, int status,
                          const char *retry_after, int after_effect);

typedef struct qb_fake_alpaca_stats_s {
    size_t orders;           /* distinct orders held (by client_order_id) */
    size_t posts;            /* POST /v2/orders received */
    size_t posts_accepted;   /* that created an order */
    size_t posts_duplicate;  /* refused: client_order_id must be unique */
    size_t fills;            /* fill events */
    size_t requests;         /* all requests */
    size_t throttled;        /* answered 429 */
} qb_fake_alpaca_stats_t;
void qb_fake_alpaca_stats(qb_fake_alpaca_t *fa, qb_fake_alpaca_stats_t *out);

/* Order state by client order id: status word, filled qty (decimal text).
 * 0 when found. */
int qb_fake_alpaca_order(qb_fake_alpaca_t *fa, const char *client_order_id, char *status,
                         size_t status_cap, char *filled, size_t filled_cap);

/* Run as a standalone server for shell tests: writes the URL to
 * `url_file`, serves until SIGTERM/SIGINT. Settings from the environment:
 * QB_FAKE_ALPACA_FILL_MS, QB_FAKE_ALPACA_POST_FAIL_EVERY,
 * QB_FAKE_ALPACA_THROTTLE_EVERY, QB_FAKE_ALPACA_PORT. Returns the exit code. */
int qb_fake_alpaca_serve(const char *url_file);

#endif
