/* it_auth_ratelimit.c — qb_ratelimit_take (libs/auth) against real Redis.
 *
 * Against the harness Redis (QB_REDIS_URL), each test with its own keys:
 *   a burst of N allowed then refused with the exact retry_after; refill as
 *   the caller's clock advances (capped at burst); fractional rates; keys
 *   independent; the hash and its TTL; a clock going backwards refills
 *   nothing; atomicity: four processes hammering one bucket at the same
 *   instant get exactly `burst` tokens between them; bad arguments; a key
 *   of another type -> QB_ERR_REDIS.
 * Against nothing: a Redis that is not there -> QB_ERR_UNAVAILABLE with
 *   allowed = 0 (the caller chooses fail-open or fail-closed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/qb_auth.h"
#include "core/qb_log.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[1024];

static qb_cache_t *cache(void) {
    qb_cache_t *c = qb_cache_new(qb_test_env("QB_REDIS_URL"), E, sizeof(E));
    if (!c) fail_msg("qb_cache_new: %s", E);
    return c;
}

static void key(char *buf, size_t cap, const char *what) {
    char u[96];
    qb_test_unique(u, sizeof(u), "itrl");
    snprintf(buf, cap, "qb:test:%s:%s", u, what);
}

/* take once; returns allowed, fills retry and remaining */
static int take(qb_cache_t *c, const char *k, double rate, double burst, int64_t now,
                int64_t *retry, double *rem) {
    int allowed = -1;
    int64_t r = -1;
    double m = -1;
    OK(qb_ratelimit_take(c, k, rate, burst, now, &allowed, &r, &m, E, sizeof(E)));
    assert_true(allowed == 0 || allowed == 1);
    if (allowed) assert_int_equal(r, 0);
    else assert_true(r > 0);
    assert_true(m >= 0 && m <= burst);
    if (retry) *retry = r;
    if (rem) *rem = m;
    return allowed;
}

static int64_t pttl(qb_cache_t *c, const char *k) {
    const char *argv[2] = {"PTTL", k};
    redisReply *r = NULL;
    OK(qb_cache_command_argv(c, 2, argv, NULL, &r, E, sizeof(E)));
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    int64_t v = (int64_t)r->integer;
    freeReplyObject(r);
    return v;
}

static void test_burst_then_refill(void **state) {
    (void)state;
    qb_cache_t *c = cache();
    char k[160];
    key(k, sizeof(k), "burst");
    const double rate = 2, burst = 5; /* one token per 500 ms */
    const int64_t t0 = 1700000000000LL;
    int64_t retry;
    double rem;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(take(c, k, rate, burst, t0, &retry, &rem), 1);
        assert_true(rem > 4 - i - 1e-9 && rem < 4 - i + 1e-9);
    }
    /* drained: refused, told to come back in exactly 500 ms */
    assert_int_equal(take(c, k, rate, burst, t0, &retry, &rem), 0);
    assert_int_equal(retry, 500);
    assert_true(rem < 1e-9);
    /* refused calls do not push the wait further */
    assert_int_equal(take(c, k, rate, burst, t0, &retry, &rem), 0);
    assert_int_equal(retry, 500);
    /* 499 ms later: not yet, 1 ms to go; at 500 ms: one token */
    assert_int_equal(take(c, k, rate, burst, t0 + 499, &retry, &rem), 0);
    assert_int_equal(retry, 1);
    assert_int_equal(take(c, k, rate, burst, t0 + 500, &retry, &rem), 1);
    assert_int_equal(take(c, k, rate, burst, t0 + 500, &retry, &rem), 0);
    assert_int_equal(retry, 500);
    /* 1250 ms later: 2.5 tokens -> two takes, then 250 ms to wait */
    assert_int_equal(take(c, k, rate, burst, t0 + 1750, &retry, &rem), 1);
    assert_int_equal(take(c, k, rate, burst, t0 + 1750, &retry, &rem), 1);
    assert_true(rem > 0.5 - 1e-9 && rem < 0.5 + 1e-9);
    assert_int_equal(take(c, k, rate, burst, t0 + 1750, &retry, &rem), 0);
    assert_int_equal(retry, 250);
    /* a long pause refills to burst, not beyond */
    for (int i = 0; i < 5; i++) assert_int_equal(take(c, k, rate, burst, t0 + 3600000, NULL, NULL), 1);
    assert_int_equal(take(c, k, rate, burst, t0 + 3600000, &retry, NULL), 0);
    qb_cache_destroy(c);
}

static void test_fractional_rate(void **state) {
    (void)state;
    qb_cache_t *c = cache();
    char k[160];
    key(k, sizeof(k), "slow");
    int64_t retry;
    const int64_t t0 = 5000000;
    /* 0.5/s, burst 1: one request every 2 s */
    assert_int_equal(take(c, k, 0.5, 1, t0, &retry, NULL), 1);
    assert_int_equal(take(c, k, 0.5, 1, t0 + 1, &retry, NULL), 0);
    assert_int_equal(retry, 1999);
    assert_int_equal(take(c, k, 0.5, 1, t0 + 2000, &retry, NULL), 1);
    /* 10/s: 100 ms is exactly one token despite float arithmetic */
    key(k, sizeof(k), "fast");
    for (int i = 0; i < 3; i++) assert_int_equal(take(c, k, 10, 3, t0, NULL, NULL), 1);
    for (int step = 1; step <= 50; step++) {
        assert_int_equal(take(c, k, 10, 3, t0 + 100 * step, &retry, NULL), 1);
        assert_int_equal(take(c, k, 10, 3, t0 + 100 * step, &retry, NULL), 0);
        assert_int_equal(retry, 100);
    }
    qb_cache_destroy(c);
}

static void test_keys_independent_and_ttl(void **state) {
    (void)state;
    qb_cache_t *c = cache();
    char a[160], b[160];
    key(a, sizeof(a), "a");
    key(b, sizeof(b), "b");
    const int64_t t0 = 100000;
    for (int i = 0; i < 3; i++) assert_int_equal(take(c, a, 1, 3, t0, NULL, NULL), 1);
    assert_int_equal(take(c, a, 1, 3, t0, NULL, NULL), 0);
    /* b is untouched by a being drained, and vice versa */
    for (int i = 0; i < 3; i++) assert_int_equal(take(c, b, 1, 3, t0, NULL, NULL), 1);
    assert_int_equal(take(c, b, 1, 3, t0, NULL, NULL), 0);
    assert_int_equal(take(c, a, 1, 3, t0 + 1000, NULL, NULL), 1);
    /* the state is a hash {t, ms} with a TTL of refill-from-empty + 1 s:
     * burst 3 at 1/s -> 3000 + 1000 ms */
    int64_t ttl = pttl(c, a);
    if (!(ttl > 3000 && ttl <= 4000)) fail_msg("pttl %lld, want (3000, 4000]", (long long)ttl);
    const char *argv[4] = {"HMGET", a, "t", "ms"};
    redisReply *r = NULL;
    OK(qb_cache_command_argv(c, 4, argv, NULL, &r, E, sizeof(E)));
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_true(strtod(r->element[0]->str, NULL) < 1e-9);
    assert_string_equal(r->element[1]->str, "101000");
    freeReplyObject(r);
    /* a slow bucket keeps its state longer: burst 100 at 0.5/s -> 201 s */
    key(b, sizeof(b), "slow-ttl");
    assert_int_equal(take(c, b, 0.5, 100, t0, NULL, NULL), 1);
    ttl = pttl(c, b);
    if (!(ttl > 200000 && ttl <= 201000)) fail_msg("pttl %lld, want (200000, 201000]", (long long)ttl);
    /* once the key expires the bucket is full again */
    key(b, sizeof(b), "expire");
    assert_int_equal(take(c, b, 1000, 1, t0, NULL, NULL), 1); /* ttl 1 + 1000 ms */
    assert_int_equal(take(c, b, 1000, 1, t0, NULL, NULL), 0);
    usleep(1200000);
    ERR(QB_ERR_NOT_FOUND, qb_cache_expire(c, b, 1000, E, sizeof(E)));
    assert_int_equal(take(c, b, 1000, 1, t0, NULL, NULL), 1);
    qb_cache_destroy(c);
}

static void test_clock_backwards(void **state) {
    (void)state;
    qb_cache_t *c = cache();
    char k[160];
    key(k, sizeof(k), "skew");
    const int64_t t0 = 9000000;
    int64_t retry;
    assert_int_equal(take(c, k, 1, 2, t0, NULL, NULL), 1);
    assert_int_equal(take(c, k, 1, 2, t0, NULL, NULL), 1);
    /* another replica, 10 s behind: no refill, no rewind of the stored time */
    assert_int_equal(take(c, k, 1, 2, t0 - 10000, &retry, NULL), 0);
    assert_int_equal(retry, 1000);
    assert_int_equal(take(c, k, 1, 2, t0 + 999, &retry, NULL), 0);
    assert_int_equal(retry, 1);
    assert_int_equal(take(c, k, 1, 2, t0 + 1000, NULL, NULL), 1);
    qb_cache_destroy(c);
}

/* Four processes, 25 takes each, all at the same instant, on a bucket of
 * 30: exactly 30 are allowed in total (a read-modify-write race would give
 * more). */
static void test_atomic_across_processes(void **state) {
    (void)state;
    char k[160];
    key(k, sizeof(k), "race");
    enum { NPROC = 4, PER = 25, BURST = 30 };
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(fds[0]);
            char e[256];
            qb_cache_t *c = qb_cache_new(qb_test_env("QB_REDIS_URL"), e, sizeof(e));
            int n = 0;
            for (int i = 0; c && i < PER; i++) {
                int allowed = 0;
                if (qb_ratelimit_take(c, k, 0.001, BURST, 42000, &allowed, NULL, NULL, e,
                                      sizeof(e)) != QB_OK) {
                    n = -1000;
                    break;
                }
                n += allowed;
            }
            qb_cache_destroy(c);
            ssize_t w = write(fds[1], &n, sizeof(n));
            _exit(w == (ssize_t)sizeof(n) ? 0 : 1);
        }
    }
    close(fds[1]);
    int total = 0;
    for (int p = 0; p < NPROC; p++) {
        int n = 0;
        assert_int_equal(read(fds[0], &n, sizeof(n)), sizeof(n));
        assert_true(n >= 0);
        total += n;
    }
    close(fds[0]);
    for (int p = 0; p < NPROC; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(total, BURST);
}

static void test_errors(void **state) {
    (void)state;
    qb_cache_t *c = cache();
    char k[160];
    key(k, sizeof(k), "args");
    int allowed = 7;
    int64_t retry = 7;
    double rem = 7;
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, k, 0, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    assert_int_equal(allowed, 0);
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, k, -1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, k, 1, 0.5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID,
        qb_ratelimit_take(c, k, NAN, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, NULL, 1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, "", 1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_ratelimit_take(NULL, k, 1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_ratelimit_take(c, k, 1, 5, -1, &allowed, &retry, &rem, E, sizeof(E)));
    /* the key holds a string: the server's WRONGTYPE comes back */
    OK(qb_cache_set(c, k, "x", 1, 10000, E, sizeof(E)));
    ERR(QB_ERR_REDIS, qb_ratelimit_take(c, k, 1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
    assert_non_null(strstr(E, "WRONGTYPE"));
    assert_int_equal(allowed, 0);
    /* NULL outputs are fine */
    key(k, sizeof(k), "nulls");
    OK(qb_ratelimit_take(c, k, 1, 5, 1, NULL, NULL, NULL, E, sizeof(E)));
    qb_cache_destroy(c);
}

static void test_redis_down(void **state) {
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", qb_test_free_port());
    qb_cache_t *c = qb_cache_new(url, E, sizeof(E));
    assert_non_null(c);
    int allowed = 7;
    int64_t retry = 7;
    double rem = 7;
    for (int i = 0; i < 3; i++) {
        ERR(QB_ERR_UNAVAILABLE,
            qb_ratelimit_take(c, "qb:test:down", 1, 5, 1, &allowed, &retry, &rem, E, sizeof(E)));
        assert_int_equal(allowed, 0);
        assert_int_equal(retry, 0);
        assert_true(rem == 0);
    }
    qb_cache_destroy(c);
}

int main(void) {
    const char *lv = getenv("QB_LOG_LEVEL");
    int l = lv ? qb_log_level_parse(lv) : -1;
    /* test_redis_down logs the failed connection; keep it quiet by default */
    qb_log_init("it_auth_ratelimit", l >= 0 ? (qb_log_level_t)l : QB_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_fractional_rate),
        cmocka_unit_test(test_keys_independent_and_ttl),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_atomic_across_processes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests_name("auth_ratelimit", tests, NULL, NULL);
}
