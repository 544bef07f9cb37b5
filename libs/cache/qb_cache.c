/* qb_cache.c — a Redis connection that degrades instead of failing.
 *
 * The handle owns the parsed URL parts (host, port, db, user, password), the
 * hiredis context (NULL while disconnected) and the back-off state; all freed
 * in qb_cache_destroy(). Every command goes through cache_cmd(): liveness
 * check of an idle connection, back-off, connect (+AUTH, +SELECT), the command
 * with SIGPIPE blocked, and the mapping of the outcome to qb_err_t. That is
 * the one place that drops a broken context. Only the old hiredis 0.14 API is
 * used (redisConnectWithTimeout, redisSetTimeout, redisCommandArgv). */
#include "cache/qb_cache.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/qb_log.h"
#include "core/qb_metrics.h"

#define QB_CACHE_BACKOFF_MIN_MS 50
#define QB_CACHE_BACKOFF_MAX_MS 5000
#define QB_CACHE_CONNECT_TIMEOUT_MS 200
#define QB_CACHE_COMMAND_TIMEOUT_MS 500

typedef enum qb_cache_state_e {
    QB_CACHE_INIT, /* never connected */
    QB_CACHE_UP,
    QB_CACHE_LOST, /* was connected, dropped */
    QB_CACHE_DOWN  /* attempts failing, in back-off */
} qb_cache_state_t;

struct qb_cache_s {
    char *host;
    int port;
    int db;
    char *user;     /* NULL: none (AUTH password) */
    char *password; /* NULL: no AUTH */
    char desc[300]; /* "host:port/db" for logs: never the password */
    redisContext *ctx;
    qb_cache_state_t state;
    int64_t backoff_ms;
    int64_t next_try_ms;
    unsigned failures;
    uint64_t rng;
    char last_err[256];
    qb_counter_t *m_commands, *m_errors, *m_reconnects;
};

/* ---- helpers ------------------------------------------------------------- */

static int64_t cache_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t cache_rand(qb_cache_t *c) {
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static qb_err_t cache_fail(qb_cache_t *c, qb_err_t err) {
    if (err != QB_OK && err != QB_ERR_NOT_FOUND) qb_counter_inc(c->m_errors);
    return err;
}

static int cache_hex(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Copy [s, s+n) %-decoded into a new string; NULL on bad escape or NOMEM. */
static char *cache_pct_decode(const char *s, size_t n) {
    char *o = malloc(n + 1);
    size_t j = 0;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n) {
                free(o);
                return NULL;
            }
            h = cache_hex((unsigned char)s[i + 1]);
            l = cache_hex((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(o);
                return NULL;
            }
            o[j++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

/* Parse a decimal in [lo, hi] from exactly [s, s+n). */
static int cache_parse_int(const char *s, size_t n, long lo, long hi, long *out) {
    long v = 0;
    if (n == 0 || n > 10) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static qb_err_t cache_parse_url(qb_cache_t *c, const char *url, char *errstr,
                                size_t errstr_size) {
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "invalid Redis URL: must start with redis://");
    const char *a = url + sizeof(scheme) - 1;
    const char *slash = strchr(a, '/');
    const char *aend = slash ? slash : a + strlen(a);
    /* userinfo: the last '@' of the authority */
    const char *at = NULL;
    for (const char *p = a; p < aend; p++)
        if (*p == '@') at = p;
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (!colon)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "invalid Redis URL: credentials must be [user]:password@");
        if (colon > a && !(c->user = cache_pct_decode(a, (size_t)(colon - a))))
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "invalid Redis URL: bad %%-escape in the user name");
        if (!(c->password = cache_pct_decode(colon + 1, (size_t)(at - colon - 1))))
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "invalid Redis URL: bad %%-escape in the password");
        a = at + 1;
    }
    /* host[:port], host may be [v6] */
    const char *hend, *port = NULL;
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(aend - a));
        if (!rb)
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "invalid Redis URL: unterminated [IPv6] host");
        if (rb + 1 < aend && rb[1] != ':')
            return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                              "invalid Redis URL: junk after ]");
        port = rb + 1 < aend ? rb + 2 : NULL;
        c->host = strndup(a + 1, (size_t)(rb - a - 1));
        hend = rb;
    } else {
        const char *colon = memchr(a, ':', (size_t)(aend - a));
        hend = colon ? colon : aend;
        port = colon ? colon + 1 : NULL;
        c->host = strndup(a, (size_t)(hend - a));
    }
    if (!c->host) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    if (!c->host[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "invalid Redis URL: empty host");
    long v = 6379;
    if (port && cache_parse_int(port, (size_t)(aend - port), 1, 65535, &v) != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "invalid Redis URL: port must be 1..65535");
    c->port = (int)v;
    v = 0;
    if (slash && slash[1] && cache_parse_int(slash + 1, strlen(slash + 1), 0, 1000000, &v) != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                          "invalid Redis URL: database must be a number after the /");
    c->db = (int)v;
    return QB_OK;
}

/* Block SIGPIPE in this thread around a write that may hit a dead socket;
 * consume a SIGPIPE it raised. The same trick libpq uses. */
typedef struct qb_cache_sigpipe_s {
    sigset_t old;
    int was_pending;
} qb_cache_sigpipe_t;

static void cache_sigpipe_block(qb_cache_sigpipe_t *sp) {
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &sp->old);
    sp->was_pending = 0;
    if (sigismember(&sp->old, SIGPIPE) && sigpending(&pend) == 0)
        sp->was_pending = sigismember(&pend, SIGPIPE);
}

static void cache_sigpipe_restore(qb_cache_sigpipe_t *sp) {
    sigset_t set, pend;
    if (!sp->was_pending && sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

/* ---- connection management ----------------------------------------------- */

static void cache_drop(qb_cache_t *c, const char *why) {
    if (c->ctx) {
        QB_WARN("redis connection lost (%s): %s", c->desc, why);
        redisFree(c->ctx);
        c->ctx = NULL;
        c->state = QB_CACHE_LOST;
    }
    c->next_try_ms = 0; /* first attempt after a loss is immediate */
}

static void cache_backoff(qb_cache_t *c) {
    if (c->backoff_ms == 0) c->backoff_ms = QB_CACHE_BACKOFF_MIN_MS;
    else if (c->backoff_ms < QB_CACHE_BACKOFF_MAX_MS) {
        c->backoff_ms *= 2;
        if (c->backoff_ms > QB_CACHE_BACKOFF_MAX_MS) c->backoff_ms = QB_CACHE_BACKOFF_MAX_MS;
    }
    int64_t half = c->backoff_ms / 2;
    c->next_try_ms = cache_now_ms() + half + (int64_t)(cache_rand(c) % (uint64_t)(half + 1));
}

/* Run a setup command (AUTH, SELECT) on a fresh context; 0 on success. */
static int cache_setup_cmd(redisContext *ctx, int argc, const char **argv, char *why,
                           size_t why_size) {
    qb_cache_sigpipe_t sp;
    cache_sigpipe_block(&sp);
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    cache_sigpipe_restore(&sp);
    if (!r) {
        snprintf(why, why_size, "%s: %s", argv[0], ctx->errstr);
        return -1;
    }
    int bad = r->type == REDIS_REPLY_ERROR;
    if (bad) snprintf(why, why_size, "%s failed: %.*s", argv[0], (int)r->len, r->str);
    freeReplyObject(r);
    return bad ? -1 : 0;
}

static qb_err_t cache_connect(qb_cache_t *c, char *errstr, size_t errstr_size) {
    struct timeval ctv = {0, QB_CACHE_CONNECT_TIMEOUT_MS * 1000};
    struct timeval ctmo = {0, QB_CACHE_COMMAND_TIMEOUT_MS * 1000};
    char why[256] = "";
    redisContext *ctx = redisConnectWithTimeout(c->host, c->port, ctv);
    if (!ctx) snprintf(why, sizeof(why), "cannot allocate a redis context");
    else if (ctx->err) snprintf(why, sizeof(why), "connect: %s", ctx->errstr);
    else if (redisSetTimeout(ctx, ctmo) != REDIS_OK)
        snprintf(why, sizeof(why), "set timeout: %s", ctx->errstr);
    if (!why[0] && c->password) {
        const char *argv[3] = {"AUTH", c->user ? c->user : c->password, c->password};
        cache_setup_cmd(ctx, c->user ? 3 : 2, argv, why, sizeof(why));
    }
    if (!why[0] && c->db != 0) {
        char dbs[16];
        snprintf(dbs, sizeof(dbs), "%d", c->db);
        const char *argv[2] = {"SELECT", dbs};
        cache_setup_cmd(ctx, 2, argv, why, sizeof(why));
    }
    if (!why[0]) {
        c->ctx = ctx;
        if (c->state == QB_CACHE_INIT) {
            QB_INFO("redis connected (%s)", c->desc);
        } else {
            qb_counter_inc(c->m_reconnects);
            QB_INFO("redis reconnected (%s) after %u failed attempt(s)", c->desc, c->failures);
        }
        c->state = QB_CACHE_UP;
        c->backoff_ms = 0;
        c->next_try_ms = 0;
        c->failures = 0;
        c->last_err[0] = '\0';
        return QB_OK;
    }
    if (ctx) redisFree(ctx);
    snprintf(c->last_err, sizeof(c->last_err), "%s", why);
    c->failures++;
    cache_backoff(c);
    if (c->state != QB_CACHE_DOWN) {
        QB_WARN("redis unreachable (%s): %s; retrying with back-off %d ms .. %d s; "
                "callers fall back to PostgreSQL", c->desc, why, QB_CACHE_BACKOFF_MIN_MS,
                QB_CACHE_BACKOFF_MAX_MS / 1000);
        c->state = QB_CACHE_DOWN;
    } else {
        QB_DEBUG("redis still unreachable (%s), attempt %u: %s", c->desc, c->failures, why);
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "redis unavailable: %s", why);
}

/* An idle connection must have nothing to read: readable means the server
 * closed it (or sent something we cannot pair with a request). */
static int cache_idle_ok(redisContext *ctx) {
    if (ctx->err) return 0;
    struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n == 0;
}

static qb_err_t cache_ensure(qb_cache_t *c, char *errstr, size_t errstr_size) {
    if (c->ctx) {
        if (cache_idle_ok(c->ctx)) return QB_OK;
        cache_drop(c, "connection closed by the server");
        /* Nothing was sent: reconnecting now is safe. */
    }
    int64_t now = cache_now_ms();
    if (now < c->next_try_ms)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "redis unavailable (in back-off, next attempt in %lld ms): %s",
                          (long long)(c->next_try_ms - now), c->last_err);
    return cache_connect(c, errstr, errstr_size);
}

/* Send one command. On success *out (non-NULL) holds a non-error reply. */
static qb_err_t cache_cmd(qb_cache_t *c, int argc, const char **argv, const size_t *lens,
                          redisReply **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    qb_err_t err = cache_ensure(c, errstr, errstr_size);
    if (err) return err;
    qb_cache_sigpipe_t sp;
    cache_sigpipe_block(&sp);
    redisReply *r = redisCommandArgv(c->ctx, argc, argv, lens);
    int saved_errno = errno;
    cache_sigpipe_restore(&sp);
    qb_counter_inc(c->m_commands);
    if (!r) {
        char why[256];
        int timed_out = c->ctx->err == REDIS_ERR_IO &&
                        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
        snprintf(why, sizeof(why), "%s%s", timed_out ? "command timed out: " : "",
                 c->ctx->errstr);
        cache_drop(c, why);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                          "redis connection lost during %s (it may or may not have run): %s",
                          argv[0], why);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_REDIS, "redis %s: %.*s", argv[0],
                         (int)r->len, r->str);
        freeReplyObject(r);
        return err;
    }
    *out = r;
    return QB_OK;
}

static qb_err_t cache_unexpected(redisReply *r, const char *cmd, char *errstr,
                                 size_t errstr_size) {
    int type = r->type;
    freeReplyObject(r);
    return qb_err_set(errstr, errstr_size, QB_ERR_REDIS, "redis %s: unexpected reply type %d",
                      cmd, type);
}

/* ---- life cycle ---------------------------------------------------------- */

qb_cache_t *qb_cache_new(const char *url, char *errstr, size_t errstr_size) {
    if (!url) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "Redis URL is NULL");
        return NULL;
    }
    qb_cache_t *c = calloc(1, sizeof(*c));
    if (!c) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (cache_parse_url(c, url, errstr, errstr_size) != QB_OK) {
        qb_cache_destroy(c);
        return NULL;
    }
    snprintf(c->desc, sizeof(c->desc), "%s:%d/%d%s", c->host, c->port, c->db,
             c->password ? " with AUTH" : "");
    c->rng = (uint64_t)cache_now_ms() ^ ((uint64_t)(uintptr_t)c << 7);
    c->state = QB_CACHE_INIT;
    c->m_commands = qb_metrics_counter("qb_cache_commands_total", "Redis commands sent", NULL);
    c->m_errors = qb_metrics_counter("qb_cache_errors_total",
                                     "Redis calls that returned an error", NULL);
    c->m_reconnects = qb_metrics_counter("qb_cache_reconnects_total",
                                         "Redis reconnections after a loss or failure", NULL);
    return c;
}

void qb_cache_destroy(qb_cache_t *c) {
    if (!c) return;
    if (c->ctx) redisFree(c->ctx);
    free(c->host);
    free(c->user);
    if (c->password) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = c->password;
        while (*p) *p++ = 0;
        free(c->password);
    }
    free(c);
}

int qb_cache_connected(const qb_cache_t *c) { return c && c->ctx && !c->ctx->err; }

/* ---- commands ------------------------------------------------------------ */

qb_err_t qb_cache_ping(qb_cache_t *c, char *errstr, size_t errstr_size) {
    if (!c) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_ping: NULL");
    const char *argv[1] = {"PING"};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 1, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    freeReplyObject(r);
    return QB_OK;
}

/* Copy a bulk-string reply into the caller's buffer (and free it). */
static qb_err_t cache_copy_string(qb_cache_t *c, redisReply *r, const char *cmd, char *buf,
                                  size_t buf_size, size_t *len, char *errstr,
                                  size_t errstr_size) {
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return QB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING)
        return cache_fail(c, cache_unexpected(r, cmd, errstr, errstr_size));
    size_t n = (size_t)r->len;
    if (len) *len = n;
    if (!buf || buf_size <= n) {
        freeReplyObject(r);
        return cache_fail(c, qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                                        "redis %s: value of %zu bytes does not fit a buffer "
                                        "of %zu", cmd, n, buf_size));
    }
    memcpy(buf, r->str, n);
    buf[n] = '\0';
    freeReplyObject(r);
    return QB_OK;
}

qb_err_t qb_cache_get(qb_cache_t *c, const char *key, char *buf, size_t buf_size, size_t *len,
                      char *errstr, size_t errstr_size) {
    if (len) *len = 0;
    if (!c || !key) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_get: NULL");
    const char *argv[2] = {"GET", key};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 2, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    return cache_copy_string(c, r, "GET", buf, buf_size, len, errstr, errstr_size);
}

qb_err_t qb_cache_get_alloc(qb_cache_t *c, const char *key, char **out, size_t *len,
                            char *errstr, size_t errstr_size) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!c || !key || !out)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_get_alloc: NULL");
    const char *argv[2] = {"GET", key};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 2, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return QB_ERR_NOT_FOUND;
    }
    if (r->type != REDIS_REPLY_STRING)
        return cache_fail(c, cache_unexpected(r, "GET", errstr, errstr_size));
    char *v = malloc((size_t)r->len + 1);
    if (!v) {
        freeReplyObject(r);
        return cache_fail(c, qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory"));
    }
    memcpy(v, r->str, (size_t)r->len);
    v[r->len] = '\0';
    if (len) *len = (size_t)r->len;
    freeReplyObject(r);
    *out = v;
    return QB_OK;
}

qb_err_t qb_cache_set(qb_cache_t *c, const char *key, const void *val, size_t len,
                      int64_t ttl_ms, char *errstr, size_t errstr_size) {
    if (!c || !key || (!val && len))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_set: NULL");
    char ttl[24];
    const char *argv[5] = {"SET", key, val ? (const char *)val : "", "PX", ttl};
    size_t lens[5] = {3, strlen(key), len, 2, 0};
    int argc = 3;
    if (ttl_ms > 0) {
        lens[4] = (size_t)snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
        argc = 5;
    }
    redisReply *r;
    qb_err_t err = cache_cmd(c, argc, argv, lens, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    freeReplyObject(r);
    return QB_OK;
}

qb_err_t qb_cache_del(qb_cache_t *c, const char *key, int *deleted, char *errstr,
                      size_t errstr_size) {
    if (deleted) *deleted = 0;
    if (!c || !key) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_del: NULL");
    const char *argv[2] = {"DEL", key};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 2, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    if (r->type != REDIS_REPLY_INTEGER)
        return cache_fail(c, cache_unexpected(r, "DEL", errstr, errstr_size));
    if (deleted) *deleted = r->integer > 0;
    freeReplyObject(r);
    return QB_OK;
}

/* INCRBY, then an expiry only if the key has none: atomic on the server. */
static const char cache_incr_script[] =
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return v";

qb_err_t qb_cache_incrby(qb_cache_t *c, const char *key, int64_t delta, int64_t ttl_ms,
                         int64_t *value, char *errstr, size_t errstr_size) {
    if (value) *value = 0;
    if (!c || !key)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_incrby: NULL");
    char d[24], t[24];
    snprintf(d, sizeof(d), "%lld", (long long)delta);
    snprintf(t, sizeof(t), "%lld", (long long)ttl_ms);
    redisReply *r;
    qb_err_t err;
    if (ttl_ms > 0) {
        const char *argv[6] = {"EVAL", cache_incr_script, "1", key, d, t};
        err = cache_cmd(c, 6, argv, NULL, &r, errstr, errstr_size);
    } else {
        const char *argv[3] = {"INCRBY", key, d};
        err = cache_cmd(c, 3, argv, NULL, &r, errstr, errstr_size);
    }
    if (err) return cache_fail(c, err);
    if (r->type != REDIS_REPLY_INTEGER)
        return cache_fail(c, cache_unexpected(r, "INCRBY", errstr, errstr_size));
    if (value) *value = (int64_t)r->integer;
    freeReplyObject(r);
    return QB_OK;
}

qb_err_t qb_cache_hset(qb_cache_t *c, const char *key, const char *field, const void *val,
                       size_t len, char *errstr, size_t errstr_size) {
    if (!c || !key || !field || (!val && len))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_hset: NULL");
    const char *argv[4] = {"HSET", key, field, val ? (const char *)val : ""};
    size_t lens[4] = {4, strlen(key), strlen(field), len};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 4, argv, lens, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    freeReplyObject(r);
    return QB_OK;
}

qb_err_t qb_cache_hget(qb_cache_t *c, const char *key, const char *field, char *buf,
                       size_t buf_size, size_t *len, char *errstr, size_t errstr_size) {
    if (len) *len = 0;
    if (!c || !key || !field)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_hget: NULL");
    const char *argv[3] = {"HGET", key, field};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 3, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    return cache_copy_string(c, r, "HGET", buf, buf_size, len, errstr, errstr_size);
}

qb_err_t qb_cache_expire(qb_cache_t *c, const char *key, int64_t ttl_ms, char *errstr,
                         size_t errstr_size) {
    if (!c || !key || ttl_ms <= 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_cache_expire: NULL key or ttl_ms <= 0");
    char t[24];
    snprintf(t, sizeof(t), "%lld", (long long)ttl_ms);
    const char *argv[3] = {"PEXPIRE", key, t};
    redisReply *r;
    qb_err_t err = cache_cmd(c, 3, argv, NULL, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    if (r->type != REDIS_REPLY_INTEGER)
        return cache_fail(c, cache_unexpected(r, "PEXPIRE", errstr, errstr_size));
    int found = r->integer == 1;
    freeReplyObject(r);
    return found ? QB_OK : QB_ERR_NOT_FOUND;
}

qb_err_t qb_cache_command_argv(qb_cache_t *c, int argc, const char **argv,
                               const size_t *argvlen, redisReply **reply, char *errstr,
                               size_t errstr_size) {
    if (reply) *reply = NULL;
    if (!c || argc < 1 || !argv || !argv[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_cache_command_argv: bad argument");
    redisReply *r;
    qb_err_t err = cache_cmd(c, argc, argv, argvlen, &r, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    if (reply) *reply = r;
    else freeReplyObject(r);
    return QB_OK;
}

qb_err_t qb_cache_pipeline(qb_cache_t *c, int n, const qb_cache_cmd_t *cmds,
                           redisReply **replies, char *errstr, size_t errstr_size) {
    if (!c || n < 1 || !cmds || !replies)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_cache_pipeline: bad argument");
    for (int i = 0; i < n; i++) {
        replies[i] = NULL;
        if (cmds[i].argc < 1 || !cmds[i].argv || !cmds[i].argv[0])
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "qb_cache_pipeline: command %d is empty", i);
    }
    qb_err_t err = cache_ensure(c, errstr, errstr_size);
    if (err) return cache_fail(c, err);
    qb_cache_sigpipe_t sp;
    cache_sigpipe_block(&sp);
    int i = 0, ok = 1;
    for (; i < n && ok; i++)
        ok = redisAppendCommandArgv(c->ctx, cmds[i].argc, cmds[i].argv, cmds[i].argvlen) ==
             REDIS_OK;
    for (i = 0; i < n && ok; i++) {
        void *r = NULL;
        ok = redisGetReply(c->ctx, &r) == REDIS_OK && r;
        replies[i] = r;
    }
    int saved_errno = errno;
    cache_sigpipe_restore(&sp);
    qb_counter_add(c->m_commands, (uint64_t)n);
    if (ok) return QB_OK;
    for (i = 0; i < n; i++) {
        if (replies[i]) freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    char why[256];
    int timed_out = c->ctx->err == REDIS_ERR_IO &&
                    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
    snprintf(why, sizeof(why), "%s%s", timed_out ? "command timed out: " : "",
             c->ctx->err ? c->ctx->errstr : "out of memory");
    cache_drop(c, why); /* the stream's position is unknown: never reuse it */
    return cache_fail(c, qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE,
                                    "redis connection lost during a pipeline of %d (they may or "
                                    "may not have run): %s",
                                    n, why));
}

void qb_cache_script_sha(const char *script, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (!script || EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL) != 1 ||
        len != 20)
        return;
    for (unsigned i = 0; i < 20; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}
