/* qb-api — the HTTP gateway: REST under /api/v1, live streams (SSE), the
 * OpenAPI document, the dashboard, authentication and authorisation.
 *
 * Reads come from PostgreSQL through the read-only role qb_api_reader
 * (every service's schema) and from Redis (latest quotes, features,
 * account state); writes go to Kafka as the services' own inputs: control
 * commands, orders.intents, backtest.requests, each answered 202 once the
 * bus acknowledged it. qb-api owns only the api schema (users, API keys,
 * refresh tokens, the audit trail of what was done through it).
 *
 * Files: api_http.c (server, routing, auth, limits, CORS, static files,
 * metrics), api_util.c (body readers, rows to JSON, publishing), api_users.c
 * (login, tokens, users, keys, audit), api_sse.c (streams), api_openapi.c
 * (the document from the route table), api_routes.c (the table) and one
 * file per domain: api_market.c, api_features.c, api_strategies.c,
 * api_backtests.c, api_trading.c, api_risk.c, api_alerts.c.
 *
 * Stateless apart from caches: run as many replicas as needed behind a
 * load balancer (rate limits live in Redis; streams resume on any replica
 * only from the live point — see api_sse.c). Admin port 9107: /healthz,
 * /readyz (bus, postgres, redis, migrations), /metrics (per-route counts
 * and latency histograms, streams, pools). SIGTERM: stops accepting, ends
 * the streams, waits for the requests in flight, exit 0. */
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bus/qb_topics.h"
#include "core/qb_log.h"
#include "svc/qb_svc.h"

#define E(n, env, t, def, lo, hi, field, fl, help) \
    {n, env, t, def, lo, hi, offsetof(api_cfg_t, field), fl, help}
static const qb_cfg_entry_t api_cfg_entries[] = {
    E("api.bind", "QB_API_BIND", QB_CFG_STRING, "0.0.0.0", 1, 64, bind, 0,
      "IPv4 address the gateway listens on"),
    E("api.port", "QB_API_PORT", QB_CFG_INT, "8080", 0, 65535, port, 0,
      "HTTP port of the gateway (0 = any free port, logged)"),
    E("api.jwt_secrets", "QB_API_JWT_SECRETS", QB_CFG_STRING, "", 0, 4096, jwt_secrets,
      QB_CFG_SECRET,
      "JWT signing keys 'kid:secret[,kid:secret]' (secrets >= 32 bytes): the first signs, all "
      "verify, so a new key is added in front and the old one removed after the refresh TTL; "
      "empty = a random key for this process (tokens die with it; not for several replicas)"),
    E("api.admin_password", "QB_API_ADMIN_PASSWORD", QB_CFG_STRING, "", 0, 1024,
      admin_password, QB_CFG_SECRET,
      "password of user 'admin', created at start when no user exists (>= 10 characters)"),
    E("api.cors_origins", "QB_API_CORS_ORIGINS", QB_CFG_STRING, "", 0, 4096, cors_origins, 0,
      "browser origins allowed to call the API, comma-separated (e.g. https://desk.example); "
      "'*' = any; empty = same origin only"),
    E("api.static_dir", "QB_API_STATIC_DIR", QB_CFG_STRING, "web", 0, 4096, static_dir, 0,
      "directory of the dashboard served at / (empty = none)"),
    E("api.tls_cert", "QB_API_TLS_CERT", QB_CFG_STRING, "", 0, 4096, tls_cert, 0,
      "PEM certificate file: serve HTTPS (with QB_API_TLS_KEY)"),
    E("api.tls_key", "QB_API_TLS_KEY", QB_CFG_STRING, "", 0, 4096, tls_key, 0,
      "PEM private key file for QB_API_TLS_CERT"),
    E("api.max_body", "QB_API_MAX_BODY", QB_CFG_INT, "1048576", 1024, 104857600, max_body, 0,
      "largest request body in bytes (larger: 413)"),
    E("api.max_connections", "QB_API_MAX_CONNECTIONS", QB_CFG_INT, "1024", 1, 100000,
      max_conns, 0, "concurrent connections (open streams included)"),
    E("api.http_threads", "QB_API_HTTP_THREADS", QB_CFG_INT, "0", 0, 256, http_threads, 0,
      "event-loop threads (epoll, each serving a share of the connections; a Redis answer "
      "is waited for on them): 0 = twice the cores"),
    E("api.handler_threads", "QB_API_HANDLER_THREADS", QB_CFG_INT, "16", 1, 1024,
      handler_threads, 0,
      "threads running the handlers that may block (PostgreSQL, Kafka, password hashing) "
      "while the event loops go on serving the rest"),
    E("api.pg_pool", "QB_API_PG_POOL", QB_CFG_INT, "8", 1, 500, pg_pool, 0,
      "PostgreSQL connections for reads (read-only role)"),
    E("api.redis_pool", "QB_API_REDIS_POOL", QB_CFG_INT, "32", 1, 1000, redis_pool, 0,
      "Redis connections (event loops and handler threads share them)"),
    E("api.access_ttl_s", "QB_API_ACCESS_TTL_S", QB_CFG_INT, "900", 10, 86400, access_ttl_s, 0,
      "lifetime of an access token (seconds)"),
    E("api.refresh_ttl_s", "QB_API_REFRESH_TTL_S", QB_CFG_INT, "604800", 60, 31536000,
      refresh_ttl_s, 0, "lifetime of a refresh token (seconds)"),
    E("api.rate_per_s", "QB_API_RATE_PER_S", QB_CFG_DOUBLE, "50", 0, 1e9, rate_per_s, 0,
      "requests per second per API key / user / client address (0 = no limit)"),
    E("api.rate_burst", "QB_API_RATE_BURST", QB_CFG_DOUBLE, "100", 1, 1e9, rate_burst, 0,
      "bucket size: requests allowed at once"),
    E("api.rate_fail_open", "QB_API_RATE_FAIL_OPEN", QB_CFG_BOOL, "true", 1, 0, rate_fail_open,
      0, "allow requests when Redis cannot be asked (false: 503)"),
    E("api.pbkdf2_iter", "QB_API_PBKDF2_ITER", QB_CFG_INT, "600000", 1000, 10000000,
      pbkdf2_iter, 0, "PBKDF2-HMAC-SHA256 iterations for new password hashes"),
    E("api.key_cache_ms", "QB_API_KEY_CACHE_MS", QB_CFG_INT, "5000", 0, 3600000, key_cache_ms,
      0, "how long a checked API key is trusted without asking PostgreSQL again"),
    E("api.sse_buffer", "QB_API_SSE_BUFFER", QB_CFG_INT, "65536", 16, 10000000, sse_buffer, 0,
      "stream events kept for resuming (Last-Event-ID) and for slow clients"),
    E("api.sse_heartbeat_ms", "QB_API_SSE_HEARTBEAT_MS", QB_CFG_INT, "15000", 100, 600000,
      sse_heartbeat_ms, 0, "a comment line on idle streams this often"),
    E("api.sse_max_clients", "QB_API_SSE_MAX_CLIENTS", QB_CFG_INT, "256", 1, 100000,
      sse_max_clients, 0, "stream clients at once (more: 503)"),
    E("api.conn_timeout_s", "QB_API_CONN_TIMEOUT_S", QB_CFG_INT, "60", 1, 3600, conn_timeout_s,
      0, "a connection without progress this long is closed (stalled stream clients too)"),
    E("api.default_account", "QB_API_DEFAULT_ACCOUNT", QB_CFG_STRING, "paper-1", 1, 64,
      default_account, 0, "account used when a request names none"),
    E("api.migrate", "QB_API_MIGRATE", QB_CFG_BOOL, "true", 1, 0, migrate, 0,
      "apply the migrations of QB_SQL_DIR at start"),
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};
#undef E

int main(int argc, char **argv) {
    static api_cfg_t cfg;
    static const char about[] =
        "The HTTP gateway: REST under /api/v1 (market data, features, signals, strategies,\n"
        "backtests, orders, positions, risk, alerts, users and keys), live streams (SSE at\n"
        "/api/v1/stream), the OpenAPI document (/api/v1/openapi.json) and the dashboard (/).\n"
        "API keys or JWT; roles viewer, trader, admin. Reads PostgreSQL (read-only role) and\n"
        "Redis; writes go to Kafka (control, orders.intents, backtest.requests).\n"
        "Admin port: /healthz, /readyz, /metrics.";
    if (argc == 2 && !strcmp(argv[1], "--routes")) { /* the route table, for tests and docs */
        size_t n;
        const api_route_t *rt = api_routes(&n);
        for (size_t i = 0; i < n; i++)
            printf("%s %s %s\n", rt[i].method, rt[i].path,
                   rt[i].min_role == QB_ROLE_NONE ? "public" : qb_role_name(rt[i].min_role));
        return 0;
    }
    char errstr[1024];
    int rc = 0;
    qb_store_t *st = NULL;
    api_t *api = NULL;
    qb_svc_t *svc = qb_svc_new(
        &(qb_svc_def_t){.name = "qb-api", .about = about, .admin_port = 9107,
                        .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG | QB_SVC_NEEDS_REDIS,
                        .table = api_cfg_entries, .cfg = &cfg},
        argc, argv, &rc);
    if (!svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(svc);
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    char ephemeral[128];
    if (!cfg.jwt_secrets || !*cfg.jwt_secrets) {
        unsigned char raw[32];
        if (RAND_bytes(raw, sizeof raw) != 1) {
            QB_ERROR("no randomness for a JWT key");
            goto out;
        }
        int n = snprintf(ephemeral, sizeof ephemeral, "boot:");
        for (size_t i = 0; i < sizeof raw; i++) n += snprintf(ephemeral + n, sizeof ephemeral - (size_t)n, "%02x", raw[i]);
        cfg.jwt_secrets = ephemeral;
        QB_WARN("QB_API_JWT_SECRETS is not set: tokens are signed with a random key of this "
                "process (they stop working at restart, and other replicas refuse them)");
    }
    if (!(st = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (!(api = api_new(&cfg, com->pg_dsn, com->redis_url, errstr, sizeof errstr))) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    rc = 1;
    if (qb_svc_migrate(svc, st, cfg.migrate)) goto out;
    while (qb_svc_running(svc)) { /* the first user; retried while PostgreSQL is away */
        qb_err_t e = api_bootstrap(api, errstr, sizeof errstr);
        if (e == QB_OK) break;
        if (e == QB_ERR_CONFIG) {
            QB_ERROR("%s", errstr);
            rc = 2;
            goto out;
        }
        usleep(500000);
    }
    if (api_start(api, errstr, sizeof errstr) != QB_OK) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    QB_INFO("qb-api ready: http%s://%s:%d/ (admin port %d)", cfg.tls_cert && *cfg.tls_cert ? "s" : "",
            cfg.bind, api_port(api), qb_svc_admin_port(svc));
    rc = 0;
    while (qb_svc_running(svc)) {
        qb_producer_poll(api_producer(api), 100);
    }
    QB_INFO("qb-api stopping");
out:
    api_destroy(api);
    qb_svc_destroy(svc);
    qb_store_destroy(st);
    return rc;
}
