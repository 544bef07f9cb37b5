/* qb_cache.h — Redis for Quantbus services (hot state), over hiredis 0.14.
 *
 * Redis holds latest quotes, cached feature sets, risk counters and rate-limit
 * buckets. Losing it loses no data: PostgreSQL is the truth. So this handle is
 * built to degrade, never to fail a service:
 *   - qb_cache_new() only parses the URL; it never connects, and never fails
 *     because Redis is down.
 *   - Every call connects when needed: connect timeout 200 ms, then AUTH (if
 *     the URL has a password) and SELECT (if db != 0). Every command has a
 *     500 ms timeout.
 *   - A failed connection starts back-off with jitter: 50 ms doubling to 5 s,
 *     each delay drawn from [d/2, d]. While in back-off every call returns
 *     QB_ERR_UNAVAILABLE at once, without network I/O, so callers fall back
 *     to PostgreSQL at full speed. Success resets the back-off.
 *   - A connection found closed while idle is replaced within the same call
 *     (nothing had been sent). A connection that fails during a command
 *     (reset, timeout) makes that call return QB_ERR_UNAVAILABLE — the
 *     command may or may not have run — and the next call reconnects.
 *   - SIGPIPE from writing to a dead socket is blocked around each command,
 *     so a process that does not ignore SIGPIPE is not killed.
 *   - Each state change is logged once; the password is never logged.
 *
 * Thread rules: a handle is not thread-safe. One handle per thread.
 *
 * Errors: QB_ERR_UNAVAILABLE (down, in back-off, timeout, lost; retriable),
 * QB_ERR_REDIS (the server answered with an error, e.g. WRONGTYPE),
 * QB_ERR_NOT_FOUND (key or field absent), QB_ERR_RANGE (buffer too small),
 * QB_ERR_INVALID (bad argument).
 *
 * Metrics (process-wide): qb_cache_commands_total (commands sent),
 * qb_cache_errors_total (calls that returned an error other than
 * NOT_FOUND), qb_cache_reconnects_total (successful connections after the
 * handle's first). */
#ifndef QB_CACHE_H
#define QB_CACHE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

typedef struct qb_cache_s qb_cache_t;

/* url: redis://[[user]:password@]host[:port][/db]  (port 6379, db 0 by
 * default; user and password may be %-encoded; IPv6 host in brackets).
 * Returns NULL, with the reason in errstr, only for a malformed URL (or out
 * of memory). Does not connect. Free with qb_cache_destroy(). */
qb_cache_t *qb_cache_new(const char *url, char *errstr, size_t errstr_size);

/* Close and free. NULL is a no-op. */
void qb_cache_destroy(qb_cache_t *c);

/* 1 when the handle holds a connection (no network I/O). */
int qb_cache_connected(const qb_cache_t *c);

qb_err_t qb_cache_ping(qb_cache_t *c, char *errstr, size_t errstr_size);

/* GET into the caller's buffer. *len (may be NULL) receives the value's
 * length. The value is NUL-terminated when it fits with its NUL; if
 * buf_size <= length the call returns QB_ERR_RANGE and *len tells the size
 * needed (minus the NUL). QB_ERR_NOT_FOUND when the key does not exist. */
qb_err_t qb_cache_get(qb_cache_t *c, const char *key, char *buf, size_t buf_size,
                      size_t *len, char *errstr, size_t errstr_size);

/* GET into a malloc'd, NUL-terminated buffer that the caller frees with
 * free(). *out is NULL on any error. */
qb_err_t qb_cache_get_alloc(qb_cache_t *c, const char *key, char **out, size_t *len,
                            char *errstr, size_t errstr_size);

/* SET key to len bytes of val (binary safe). ttl_ms > 0 sets an expiry
 * (PX), ttl_ms <= 0 none. */
qb_err_t qb_cache_set(qb_cache_t *c, const char *key, const void *val, size_t len,
                      int64_t ttl_ms, char *errstr, size_t errstr_size);

/* DEL key. *deleted (may be NULL) is 1 if it existed. */
qb_err_t qb_cache_del(qb_cache_t *c, const char *key, int *deleted, char *errstr,
                      size_t errstr_size);

/* INCRBY key by delta and store the new value in *value (may be NULL). With
 * ttl_ms > 0 the key gets that expiry when it has none — i.e. when this call
 * created it — so a rate-limit bucket is a fixed window that starts at the
 * first hit. Atomic (one server-side script). */
qb_err_t qb_cache_incrby(qb_cache_t *c, const char *key, int64_t delta, int64_t ttl_ms,
                         int64_t *value, char *errstr, size_t errstr_size);

/* HSET key field value (binary safe value). */
qb_err_t qb_cache_hset(qb_cache_t *c, const char *key, const char *field, const void *val,
                       size_t len, char *errstr, size_t errstr_size);

/* HGET into the caller's buffer; same contract as qb_cache_get. */
qb_err_t qb_cache_hget(qb_cache_t *c, const char *key, const char *field, char *buf,
                       size_t buf_size, size_t *len, char *errstr, size_t errstr_size);

/* PEXPIRE key ttl_ms. QB_ERR_NOT_FOUND when the key does not exist. */
qb_err_t qb_cache_expire(qb_cache_t *c, const char *key, int64_t ttl_ms, char *errstr,
                         size_t errstr_size);

/* Any other command. argvlen may be NULL (then every argv[i] is a C string).
 * On success *reply (may be NULL) holds the reply, owned by the caller, who
 * frees it with freeReplyObject(). An error reply from the server returns
 * QB_ERR_REDIS with its text in errstr and *reply NULL. */
qb_err_t qb_cache_command_argv(qb_cache_t *c, int argc, const char **argv,
                               const size_t *argvlen, redisReply **reply, char *errstr,
                               size_t errstr_size);

/* Several commands in one round trip (pipelined: all written, then all
 * replies read). replies[i] receives the reply to cmds[i], owned by the
 * caller (freeReplyObject); an error reply from the server is handed over
 * as it is (type REDIS_REPLY_ERROR), so one refused command does not hide
 * the others' answers. QB_ERR_UNAVAILABLE when the connection failed
 * (every replies[i] NULL; the commands may or may not have run),
 * QB_ERR_INVALID for bad arguments. */
/* The SHA-1 of a Lua script as EVALSHA wants it (40 hex digits) in out;
 * "" if OpenSSL fails (the caller then sends EVAL). */
void qb_cache_script_sha(const char *script, char out[41]);

typedef struct qb_cache_cmd_s {
    int argc;
    const char **argv;
    const size_t *argvlen; /* may be NULL: C strings */
} qb_cache_cmd_t;
qb_err_t qb_cache_pipeline(qb_cache_t *c, int n, const qb_cache_cmd_t *cmds,
                           redisReply **replies, char *errstr, size_t errstr_size);

#endif
