/* qb_ratelimit.c — token bucket in Redis, one atomic Lua EVAL per take.
 *
 * State per key: a hash {t = tokens (float), ms = time of last refill}. The
 * script refills from the caller's now_ms (so tests are deterministic and
 * replicas need no shared clock other than their own), takes one token if
 * at least one is there, writes the state back and sets a PEXPIRE of
 * (time to refill from empty) + 1 s: once that has passed, a missing bucket
 * and a full one are the same, so Redis memory stays bounded by the active
 * keys. A now_ms earlier than the stored ms (clocks of two replicas, or a
 * late request) refills nothing and leaves ms alone.
 *
 * Lua numbers sent to Redis would be truncated to integers on return, so
 * the token count comes back as a string ("%.17g" via string.format, which
 * round-trips a double). Small slacks absorb float error: 1e-9 tokens in
 * the take (100 ms at 10/s must give exactly one token) and 1e-6 ms in the
 * retry time (0.002 tokens short at 2/s is 1 ms, not 1.0000000000000009
 * rounded up to 2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/qb_auth.h"

static const char rl_script[] =
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local now = tonumber(ARGV[3])\n"
    "local ttl = tonumber(ARGV[4])\n"
    "local st = redis.call('HMGET', KEYS[1], 't', 'ms')\n"
    "local t = tonumber(st[1])\n"
    "local ms = tonumber(st[2])\n"
    "if t == nil or ms == nil then\n"
    "  t = burst\n"
    "  ms = now\n"
    "elseif now > ms then\n"
    "  t = math.min(burst, t + (now - ms) * rate / 1000)\n"
    "  ms = now\n"
    "end\n"
    "local allowed = 0\n"
    "local retry = 0\n"
    "if t >= 1 - 1e-9 then\n"
    "  t = math.max(0, t - 1)\n"
    "  allowed = 1\n"
    "else\n"
    "  retry = math.max(1, math.ceil((1 - t) * 1000 / rate - 1e-6))\n"
    "end\n"
    "local ts = string.format('%.17g', t)\n"
    "redis.call('HSET', KEYS[1], 't', ts, 'ms', string.format('%d', ms))\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "return {allowed, retry, ts}\n";

qb_err_t qb_ratelimit_take(qb_cache_t *c, const char *key, double rate_per_s, double burst,
                           int64_t now_ms, int *allowed, int64_t *retry_after_ms,
                           double *remaining, char *errstr, size_t errstr_size) {
    if (allowed) *allowed = 0;
    if (retry_after_ms) *retry_after_ms = 0;
    if (remaining) *remaining = 0;
    if (!c || !key || !*key)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_ratelimit_take: NULL or empty key");
    if (!isfinite(rate_per_s) || rate_per_s <= 0 || !isfinite(burst) || burst < 1 ||
        burst > 1e12 || rate_per_s > 1e12)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_ratelimit_take: need rate_per_s > 0 and burst >= 1 (got %g, %g)",
                          rate_per_s, burst);
    if (now_ms < 0 || now_ms > ((int64_t)1 << 53))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_ratelimit_take: now_ms out of range");
    double ttl_d = ceil(burst * 1000.0 / rate_per_s) + 1000.0;
    int64_t ttl = ttl_d > 9e15 ? (int64_t)9e15 : (int64_t)ttl_d;
    char rate_s[32], burst_s[32], now_s[24], ttl_s[24];
    snprintf(rate_s, sizeof(rate_s), "%.17g", rate_per_s);
    snprintf(burst_s, sizeof(burst_s), "%.17g", burst);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now_ms);
    snprintf(ttl_s, sizeof(ttl_s), "%lld", (long long)ttl);
    const char *argv[8] = {"EVAL", rl_script, "1", key, rate_s, burst_s, now_s, ttl_s};
    redisReply *r = NULL;
    qb_err_t err = qb_cache_command_argv(c, 8, argv, NULL, &r, errstr, errstr_size);
    if (err != QB_OK) return err;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING) {
        int type = r ? r->type : -1;
        if (r) freeReplyObject(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_REDIS,
                          "rate limit script: unexpected reply (type %d)", type);
    }
    char *end = NULL;
    double rem = strtod(r->element[2]->str, &end);
    int ok = end && end != r->element[2]->str && *end == '\0';
    int a = r->element[0]->integer == 1;
    int64_t retry = (int64_t)r->element[1]->integer;
    freeReplyObject(r);
    if (!ok)
        return qb_err_set(errstr, errstr_size, QB_ERR_REDIS,
                          "rate limit script: bad token count");
    if (allowed) *allowed = a;
    if (retry_after_ms) *retry_after_ms = a ? 0 : retry;
    if (remaining) *remaining = rem;
    return QB_OK;
}
