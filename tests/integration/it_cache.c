/* it_cache.c — libs/cache/qb_cache against real Redis.
 *
 * Against the harness Redis (QB_REDIS_URL), with unique key prefixes:
 *   get/set (binary safe, buffer too small, missing), TTLs, del, incrby
 *   (plain, and with TTL as a fixed window), hset/hget, expire, generic
 *   command_argv, server error replies, metrics; URL parsing.
 * Against a Redis of the test's own (fork/exec redis-server on a free port):
 *   handle created while Redis is down -> fast UNAVAILABLE, connects when it
 *   comes up; SIGKILL -> every call UNAVAILABLE within a second and no
 *   crash; restart on the same port -> reconnects by itself after back-off;
 *   SIGSTOP -> command timeout -> UNAVAILABLE, SIGCONT -> works;
 *   AUTH + SELECT db on connect; wrong password -> UNAVAILABLE; the password
 *   never appears in errors or logs. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/qb_cache.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "qb_test.h"
#include "qb_test_assert.h"

/* errstr for the calls under test; OK/ERR (qb_test_assert.h) clear and print it. */
static char E[1024];

static uint64_t counter(const char *name) {
    return qb_counter_get(qb_metrics_counter(name, "", NULL));
}

static pid_t g_redis_pid = -1; /* the one we run, for teardown after a failure */

/* Start `redis-server` in the foreground on `port` (optionally with a
 * password); returns its pid once it answers PING. */
static pid_t redis_start(int port, const char *password) {
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* dies with the test, even when the test is killed by a time-out */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) {
            dup2(dn, 1);
            dup2(dn, 2);
        }
        const char *argv[16] = {"redis-server", "--port", ports, "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--daemonize", "no",
                                NULL};
        if (password) {
            argv[11] = "--requirepass";
            argv[12] = password;
            argv[13] = NULL;
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    g_redis_pid = pid;
    int64_t deadline = qb_test_now_ms() + 10000;
    while (qb_test_now_ms() < deadline) {
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisReply *r = password ? redisCommand(c, "AUTH %s", password) : NULL;
            if (r) freeReplyObject(r);
            r = redisCommand(c, "PING");
            int up = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (up) return pid;
        } else if (c) {
            redisFree(c);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("redis-server exited (status %d)", st);
        usleep(20000);
    }
    fail_msg("redis-server on port %d did not come up", port);
    return -1;
}

static void redis_kill(pid_t pid, int sig) {
    kill(pid, sig);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (pid == g_redis_pid) g_redis_pid = -1;
}

/* Teardown: show stderr captured by a failed test (see
 * qb_test_capture_stderr_teardown); stop a redis-server the test left
 * running. */
static int own_redis_teardown(void **state) {
    qb_test_capture_stderr_teardown(state);
    if (g_redis_pid > 0) {
        kill(g_redis_pid, SIGCONT);
        kill(g_redis_pid, SIGKILL);
        waitpid(g_redis_pid, NULL, 0);
        g_redis_pid = -1;
    }
    return 0;
}

static int64_t pttl(qb_cache_t *c, const char *key) {
    const char *argv[2] = {"PTTL", key};
    redisReply *r = NULL;
    OK(qb_cache_command_argv(c, 2, argv, NULL, &r, E, sizeof(E)));
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    int64_t v = (int64_t)r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- against the harness Redis ------------------------------------------- */

static void test_basic_commands(void **state) {
    (void)state;
    qb_cache_t *c = qb_cache_new(qb_test_env("QB_REDIS_URL"), E, sizeof(E));
    assert_non_null(c);
    assert_false(qb_cache_connected(c));
    uint64_t n0 = counter("qb_cache_commands_total"), e0 = counter("qb_cache_errors_total");
    OK(qb_cache_ping(c, E, sizeof(E)));
    assert_true(qb_cache_connected(c));

    char p[64], k[128], buf[64];
    size_t len = 0;
    qb_test_unique(p, sizeof(p), "itc");

    /* set / get */
    snprintf(k, sizeof(k), "%s:quote:AAPL", p);
    OK(qb_cache_set(c, k, "187.25", 6, 0, E, sizeof(E)));
    OK(qb_cache_get(c, k, buf, sizeof(buf), &len, E, sizeof(E)));
    assert_int_equal(len, 6);
    assert_string_equal(buf, "187.25");
    assert_int_equal(pttl(c, k), -1);
    char *heap = NULL;
    OK(qb_cache_get_alloc(c, k, &heap, &len, E, sizeof(E)));
    assert_string_equal(heap, "187.25");
    free(heap);
    /* binary safe */
    static const char bin[5] = {'a', '\0', 'b', '\n', '\xff'};
    OK(qb_cache_set(c, k, bin, sizeof(bin), 0, E, sizeof(E)));
    OK(qb_cache_get(c, k, buf, sizeof(buf), &len, E, sizeof(E)));
    assert_int_equal(len, 5);
    assert_memory_equal(buf, bin, 5);
    /* too small a buffer says how much is needed */
    char tiny[5];
    ERR(QB_ERR_RANGE, qb_cache_get(c, k, tiny, sizeof(tiny), &len, E, sizeof(E)));
    assert_int_equal(len, 5);
    /* missing */
    snprintf(k, sizeof(k), "%s:missing", p);
    ERR(QB_ERR_NOT_FOUND, qb_cache_get(c, k, buf, sizeof(buf), &len, E, sizeof(E)));
    ERR(QB_ERR_NOT_FOUND, qb_cache_get_alloc(c, k, &heap, &len, E, sizeof(E)));
    assert_null(heap);

    /* TTL */
    snprintf(k, sizeof(k), "%s:features:MSFT", p);
    OK(qb_cache_set(c, k, "{}", 2, 300, E, sizeof(E)));
    int64_t t = pttl(c, k);
    assert_true(t > 0 && t <= 300);
    usleep(450000);
    ERR(QB_ERR_NOT_FOUND, qb_cache_get(c, k, buf, sizeof(buf), &len, E, sizeof(E)));

    /* del */
    OK(qb_cache_set(c, k, "x", 1, 0, E, sizeof(E)));
    int deleted = -1;
    OK(qb_cache_del(c, k, &deleted, E, sizeof(E)));
    assert_int_equal(deleted, 1);
    OK(qb_cache_del(c, k, &deleted, E, sizeof(E)));
    assert_int_equal(deleted, 0);

    /* incrby without TTL */
    int64_t v = 0;
    snprintf(k, sizeof(k), "%s:risk:orders", p);
    OK(qb_cache_incrby(c, k, 5, 0, &v, E, sizeof(E)));
    assert_int_equal(v, 5);
    OK(qb_cache_incrby(c, k, -8, 0, &v, E, sizeof(E)));
    assert_int_equal(v, -3);
    assert_int_equal(pttl(c, k), -1);

    /* incrby with TTL: a fixed window that starts at the first hit */
    snprintf(k, sizeof(k), "%s:rate:acct1", p);
    OK(qb_cache_incrby(c, k, 1, 600, &v, E, sizeof(E)));
    assert_int_equal(v, 1);
    t = pttl(c, k);
    assert_true(t > 0 && t <= 600);
    usleep(250000);
    OK(qb_cache_incrby(c, k, 1, 600, &v, E, sizeof(E)));
    assert_int_equal(v, 2);
    t = pttl(c, k);
    if (!(t > 0 && t <= 400)) fail_msg("window was extended: pttl %lld", (long long)t);
    usleep(500000);
    OK(qb_cache_incrby(c, k, 1, 600, &v, E, sizeof(E)));
    assert_int_equal(v, 1); /* new window */

    /* incr of a non-number: the server's error */
    snprintf(k, sizeof(k), "%s:quote:AAPL", p);
    OK(qb_cache_set(c, k, "abc", 3, 0, E, sizeof(E)));
    ERR(QB_ERR_REDIS, qb_cache_incrby(c, k, 1, 0, &v, E, sizeof(E)));
    assert_non_null(strstr(E, "not an integer"));
    ERR(QB_ERR_REDIS, qb_cache_incrby(c, k, 1, 1000, &v, E, sizeof(E)));

    /* hashes */
    char h[128];
    snprintf(h, sizeof(h), "%s:pos:acct1", p);
    OK(qb_cache_hset(c, h, "AAPL", "100", 3, E, sizeof(E)));
    OK(qb_cache_hset(c, h, "MSFT", "-5", 2, E, sizeof(E)));
    OK(qb_cache_hget(c, h, "MSFT", buf, sizeof(buf), &len, E, sizeof(E)));
    assert_string_equal(buf, "-5");
    ERR(QB_ERR_NOT_FOUND, qb_cache_hget(c, h, "TSLA", buf, sizeof(buf), &len, E, sizeof(E)));
    ERR(QB_ERR_REDIS, qb_cache_hget(c, k, "x", buf, sizeof(buf), &len, E, sizeof(E)));
    assert_non_null(strstr(E, "WRONGTYPE"));

    /* expire */
    OK(qb_cache_expire(c, h, 5000, E, sizeof(E)));
    t = pttl(c, h);
    assert_true(t > 4000 && t <= 5000);
    snprintf(k, sizeof(k), "%s:nothing", p);
    ERR(QB_ERR_NOT_FOUND, qb_cache_expire(c, k, 1000, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_cache_expire(c, h, 0, E, sizeof(E)));

    /* generic */
    const char *hg[2] = {"HGETALL", h};
    redisReply *r = NULL;
    OK(qb_cache_command_argv(c, 2, hg, NULL, &r, E, sizeof(E)));
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    freeReplyObject(r);
    const char *bad[2] = {"NOSUCHCOMMAND", "x"};
    ERR(QB_ERR_REDIS, qb_cache_command_argv(c, 2, bad, NULL, &r, E, sizeof(E)));
    assert_null(r);
    /* the connection survives error replies */
    OK(qb_cache_ping(c, E, sizeof(E)));

    assert_true(counter("qb_cache_commands_total") >= n0 + 30);
    assert_true(counter("qb_cache_errors_total") >= e0 + 4);
    qb_cache_destroy(c);
    qb_cache_destroy(NULL);
}

static void test_url_parsing(void **state) {
    (void)state;
    static const char *const bad[] = {
        "http://127.0.0.1:6379", "redis://", "redis://:pw@", "redis://h:0",
        "redis://h:70000", "redis://h:12a", "redis://h/abc", "redis://user@h",
        "redis://[::1", "redis://h:1/2?x=1", "redis://:%zz@h", "redis://h:",
        "127.0.0.1:6379",
    };
    static const char *const good[] = {
        "redis://localhost", "redis://:p%40ss@127.0.0.1:6380/3", "redis://[::1]:6379/0",
        "redis://user:pw@h:1/", "redis://h:65535/15",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        E[0] = '\0';
        qb_cache_t *c = qb_cache_new(bad[i], E, sizeof(E));
        if (c) fail_msg("accepted malformed URL %s", bad[i]);
        if (!E[0]) fail_msg("no reason given for %s", bad[i]);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        qb_cache_t *c = qb_cache_new(good[i], E, sizeof(E));
        if (!c) fail_msg("rejected %s: %s", good[i], E);
        qb_cache_destroy(c);
    }
    assert_null(qb_cache_new("redis://:hunter2secret@h:bad", E, sizeof(E)));
    assert_null(strstr(E, "hunter2secret"));
}

/* ---- against a Redis of our own ------------------------------------------ */

/* One of several calls, each of which must fail UNAVAILABLE within ~1 s. */
static void down_call(qb_cache_t *c, int i, const char *key) {
    char buf[32];
    size_t len;
    int64_t v;
    const char *argv[2] = {"EXISTS", key};
    int64_t t0 = qb_test_now_ms();
    switch (i % 6) {
    case 0: ERR(QB_ERR_UNAVAILABLE, qb_cache_ping(c, E, sizeof(E))); break;
    case 1: ERR(QB_ERR_UNAVAILABLE, qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E))); break;
    case 2: ERR(QB_ERR_UNAVAILABLE, qb_cache_set(c, key, "1", 1, 1000, E, sizeof(E))); break;
    case 3: ERR(QB_ERR_UNAVAILABLE, qb_cache_incrby(c, key, 1, 1000, &v, E, sizeof(E))); break;
    case 4: ERR(QB_ERR_UNAVAILABLE, qb_cache_hget(c, key, "f", buf, sizeof(buf), &len, E, sizeof(E))); break;
    case 5: ERR(QB_ERR_UNAVAILABLE, qb_cache_command_argv(c, 2, argv, NULL, NULL, E, sizeof(E))); break;
    }
    int64_t took = qb_test_now_ms() - t0;
    if (took > 1000) fail_msg("call %d took %lld ms while Redis was down", i, (long long)took);
}

static qb_err_t wait_up(qb_cache_t *c, int64_t max_ms) {
    int64_t t0 = qb_test_now_ms();
    qb_err_t err;
    while ((err = qb_cache_ping(c, E, sizeof(E))) != QB_OK && qb_test_now_ms() - t0 < max_ms)
        usleep(20000);
    return err;
}

static void test_own_redis_resilience(void **state) {
    (void)state;
    int port = qb_test_free_port();
    char url[128], key[64], buf[32];
    size_t len;
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    qb_test_unique(key, sizeof(key), "itc-res");

    /* created while Redis is down: fine, and calls fail fast */
    qb_cache_t *c = qb_cache_new(url, E, sizeof(E));
    assert_non_null(c);
    for (int i = 0; i < 12; i++) down_call(c, i, key);

    pid_t pid = redis_start(port, NULL);
    if (wait_up(c, 8000) != QB_OK) fail_msg("never connected: %s", E);
    OK(qb_cache_set(c, key, "42", 2, 0, E, sizeof(E)));
    OK(qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E)));
    assert_string_equal(buf, "42");

    /* SIGKILL: every call fails fast, nothing crashes (SIGPIPE included) */
    uint64_t rc0 = counter("qb_cache_reconnects_total");
    redis_kill(pid, SIGKILL);
    int64_t until = qb_test_now_ms() + 2500;
    int calls = 0;
    while (qb_test_now_ms() < until) {
        down_call(c, calls++, key);
        usleep(10000);
    }
    assert_true(calls > 50);
    assert_false(qb_cache_connected(c));

    /* same port again: reconnects by itself after back-off (<= 5 s) */
    pid = redis_start(port, NULL);
    int64_t t_up = qb_test_now_ms();
    if (wait_up(c, 10000) != QB_OK) fail_msg("did not reconnect: %s", E);
    assert_true(qb_test_now_ms() - t_up <= 6000);
    assert_true(counter("qb_cache_reconnects_total") >= rc0 + 1);
    /* a fresh Redis (--save ''): the old value is gone, the handle works */
    ERR(QB_ERR_NOT_FOUND, qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E)));
    OK(qb_cache_set(c, key, "43", 2, 0, E, sizeof(E)));
    OK(qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E)));
    assert_string_equal(buf, "43");

    /* a hung server: the command times out (500 ms), no hang */
    kill(pid, SIGSTOP);
    int64_t t0 = qb_test_now_ms();
    ERR(QB_ERR_UNAVAILABLE, qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E)));
    int64_t took = qb_test_now_ms() - t0;
    if (took < 400 || took > 1500) fail_msg("timeout took %lld ms", (long long)took);
    assert_non_null(strstr(E, "timed out"));
    kill(pid, SIGCONT);
    if (wait_up(c, 8000) != QB_OK) fail_msg("did not recover after SIGCONT: %s", E);
    OK(qb_cache_get(c, key, buf, sizeof(buf), &len, E, sizeof(E)));
    assert_string_equal(buf, "43");

    qb_cache_destroy(c);
    redis_kill(pid, SIGTERM);
}

static void test_own_redis_auth_db(void **state) {
    (void)state;
    int port = qb_test_free_port();
    const char *pw = "s3cret-Pw_99";
    pid_t pid = redis_start(port, pw);
    char url[160], key[64], buf[32];
    size_t len;
    qb_test_unique(key, sizeof(key), "itc-auth");

    /* Everything logged while we use passwords is captured; the asserts come
     * after the capture ends, so a failure is reported on the real stderr. */
    int lvl = qb_log_level_current;
    qb_log_set_level(QB_LOG_DEBUG);
    qb_test_capture_stderr_start();
    /* right password, db 3 */
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/3", pw, port);
    qb_cache_t *c = qb_cache_new(url, E, sizeof(E));
    qb_err_t set_err = c ? qb_cache_set(c, key, "in-db-3", 7, 0, E, sizeof(E)) : QB_ERR_INVALID;
    qb_cache_destroy(c);
    /* wrong password: unavailable, password not echoed */
    char err1[512] = "", err2[512] = "", err3[512] = "";
    snprintf(url, sizeof(url), "redis://:wrong-%s@127.0.0.1:%d/3", pw, port);
    c = qb_cache_new(url, E, sizeof(E));
    qb_err_t wrong1 = c ? qb_cache_ping(c, err1, sizeof(err1)) : QB_ERR_INVALID;
    qb_err_t wrong2 = c ? qb_cache_ping(c, err2, sizeof(err2)) : QB_ERR_INVALID;
    qb_cache_destroy(c);
    /* no password at all against a protected server: the server says so */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    c = qb_cache_new(url, E, sizeof(E));
    qb_err_t noauth = c ? qb_cache_get(c, key, buf, sizeof(buf), &len, err3, sizeof(err3))
                        : QB_ERR_INVALID;
    qb_cache_destroy(c);
    char *log = qb_test_capture_stderr_stop();
    qb_log_set_level((qb_log_level_t)lvl);

    assert_int_equal(set_err, QB_OK);
    assert_int_equal(wrong1, QB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err1, "AUTH"));
    assert_null(strstr(err1, pw));
    assert_int_equal(wrong2, QB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err2, "back-off"));
    assert_null(strstr(err2, pw));
    assert_int_equal(noauth, QB_ERR_REDIS);
    assert_non_null(strstr(err3, "NOAUTH"));
    assert_null(strstr(log, pw));
    assert_non_null(strstr(log, "redis connected"));
    assert_non_null(strstr(log, "redis unreachable"));

    /* check with a raw connection that the value went to db 3 only */
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "AUTH %s", pw);
    freeReplyObject(r);
    r = redisCommand(rc, "GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = redisCommand(rc, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(rc, "GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "in-db-3");
    freeReplyObject(r);
    redisFree(rc);
    redis_kill(pid, SIGTERM);
}

int main(void) {
    const char *lv = getenv("QB_LOG_LEVEL");
    int l = lv ? qb_log_level_parse(lv) : -1;
    qb_log_init("it_cache", l >= 0 ? (qb_log_level_t)l : QB_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_commands),
        cmocka_unit_test(test_url_parsing),
        cmocka_unit_test_teardown(test_own_redis_resilience, own_redis_teardown),
        cmocka_unit_test_teardown(test_own_redis_auth_db, own_redis_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
