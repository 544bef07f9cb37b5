/* qb_ratelimit.c — token bucket in Redis, one atomic Lua script per take
 * (EVALSHA; EVAL once when Redis lacks the script).
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
#include <pthread.h>
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

static char rl_sha[41];
static pthread_once_t rl_sha_once = PTHREAD_ONCE_INIT;

static void rl_sha_init(void) { qb_cache_script_sha(rl_script, rl_sha); }

/* argv for EVALSHA (sha) or EVAL (!sha) */
static qb_err_t rl_build(qb_ratelimit_cmd_t *rc, const char *key, double rate_per_s,
                         double burst, int64_t now_ms, int sha, char *errstr,
                         size_t errstr_size) {
    if (!key || !*key)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_ratelimit_take: NULL or empty key");
    if (!isfinite(rate_per_s) || rate_per_s <= 0 || !isfinite(burst) || burst < 1 ||
        burst > 1e12 || rate_per_s > 1e12)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_ratelimit_take: need rate_per_s > 0 and burst >= 1 (got %g, %g)",
                          rate_per_s, burst);
    if (now_ms < 0 || now_ms > ((int64_t)1 << 53))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_ratelimit_take: now_ms out of range");
    pthread_once(&rl_sha_once, rl_sha_init);
    double ttl_d = ceil(burst * 1000.0 / rate_per_s) + 1000.0;
    int64_t ttl = ttl_d > 9e15 ? (int64_t)9e15 : (int64_t)ttl_d;
    snprintf(rc->rate, sizeof(rc->rate), "%.17g", rate_per_s);
    snprintf(rc->burst, sizeof(rc->burst), "%.17g", burst);
    snprintf(rc->now, sizeof(rc->now), "%lld", (long long)now_ms);
    snprintf(rc->ttl, sizeof(rc->ttl), "%lld", (long long)ttl);
    sha = sha && rl_sha[0];
    rc->argv[0] = sha ? "EVALSHA" : "EVAL";
    rc->argv[1] = sha ? rl_sha : rl_script;
    rc->argv[2] = "1";
    rc->argv[3] = key;
    rc->argv[4] = rc->rate;
    rc->argv[5] = rc->burst;
    rc->argv[6] = rc->now;
    rc->argv[7] = rc->ttl;
    rc->cmd.argc = 8;
    rc->cmd.argv = rc->argv;
    rc->cmd.argvlen = NULL;
    return QB_OK;
}

qb_err_t qb_ratelimit_cmd(qb_ratelimit_cmd_t *rc, const char *key, double rate_per_s,
                          double burst, int64_t now_ms, char *errstr, size_t errstr_size) {
    if (!rc) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_ratelimit_cmd: NULL");
    return rl_build(rc, key, rate_per_s, burst, now_ms, 1, errstr, errstr_size);
}

qb_err_t qb_ratelimit_reply(const redisReply *r, int *allowed, int64_t *retry_after_ms,
                            double *remaining, char *errstr, size_t errstr_size) {
    if (allowed) *allowed = 0;
    if (retry_after_ms) *retry_after_ms = 0;
    if (remaining) *remaining = 0;
    if (r && r->type == REDIS_REPLY_ERROR) {
        if (!strncmp(r->str, "NOSCRIPT", 8))
            return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                              "rate limit script not loaded in Redis");
        return qb_err_set(errstr, errstr_size, QB_ERR_REDIS, "rate limit script: %.*s",
                          (int)r->len, r->str);
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return qb_err_set(errstr, errstr_size, QB_ERR_REDIS,
                          "rate limit script: unexpected reply (type %d)", r ? r->type : -1);
    char *end = NULL;
    double rem = strtod(r->element[2]->str, &end);
    if (!end || end == r->element[2]->str || *end != '\0')
        return qb_err_set(errstr, errstr_size, QB_ERR_REDIS,
                          "rate limit script: bad token count");
    int a = r->element[0]->integer == 1;
    if (allowed) *allowed = a;
    if (retry_after_ms) *retry_after_ms = a ? 0 : (int64_t)r->element[1]->integer;
    if (remaining) *remaining = rem;
    return QB_OK;
}

qb_err_t qb_ratelimit_take(qb_cache_t *c, const char *key, double rate_per_s, double burst,
                           int64_t now_ms, int *allowed, int64_t *retry_after_ms,
                           double *remaining, char *errstr, size_t errstr_size) {
    if (allowed) *allowed = 0;
    if (retry_after_ms) *retry_after_ms = 0;
    if (remaining) *remaining = 0;
    if (!c)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_ratelimit_take: NULL cache");
    qb_ratelimit_cmd_t rc;
    qb_err_t err;
    for (int sha = 1; sha >= 0; sha--) {
        if ((err = rl_build(&rc, key, rate_per_s, burst, now_ms, sha, errstr, errstr_size)))
            return err;
        redisReply *r = NULL;
        char e2[256] = "";
        err = qb_cache_command_argv(c, rc.cmd.argc, rc.cmd.argv, NULL, &r, e2, sizeof e2);
        if (err == QB_ERR_REDIS && sha && strstr(e2, "NOSCRIPT")) continue; /* EVAL loads it */
        if (err != QB_OK) return qb_err_set(errstr, errstr_size, err, "%s", e2);
        err = qb_ratelimit_reply(r, allowed, retry_after_ms, remaining, errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_REDIS, "rate limit script: NOSCRIPT after EVAL");
}
