/* qb_test.h — helpers shared by the C tests (linked into every test binary).
 *
 * Tests run against the real stack started by tests/harness/stack.sh (via
 * scripts/test.sh), which exports QB_PG_DSN, QB_REDIS_URL and
 * QB_KAFKA_BROKERS. A test that needs one of them and finds it missing FAILS
 * (never skips): a green run must mean the test ran.
 *
 * Isolation: each test creates its own database (qb_test_db_create) and its
 * own topic names / consumer group ids (qb_test_unique). */
#ifndef QB_TEST_H
#define QB_TEST_H

#include <stddef.h>
#include <stdint.h>

/* Value of a required environment variable; aborts the test process with a
 * message naming the variable when unset. */
const char *qb_test_env(const char *name);

/* A name unique to this process and call: "<prefix>-<pid>-<n>-<random>". */
void qb_test_unique(char *buf, size_t cap, const char *prefix);

/* Create a fresh empty database on the QB_PG_DSN server; returns its DSN
 * (malloc'd; free with qb_test_db_drop, which drops the database too). */
char *qb_test_db_create(void);
void qb_test_db_drop(char *dsn);

/* Seed for property tests: QB_TEST_SEED if set, else time-based; printed to
 * stderr so a failing run can be repeated. */
uint64_t qb_test_seed(const char *test_name);

/* splitmix64: small, good, seedable PRNG for property tests. */
uint64_t qb_test_rand(uint64_t *state);

/* Monotonic milliseconds, for test deadlines. */
int64_t qb_test_now_ms(void);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0,
 * read back, closed). A failure fails the running cmocka test. */
int qb_test_free_port(void);

/* Partitions of Kafka topic `topic` on QB_KAFKA_BROKERS, waiting up to 10 s
 * for it to exist (qb-bus creates topics on first use). A topic that does
 * not come to exist fails the running cmocka test. */
int qb_test_topic_partitions(const char *topic);

/* stderr capture, for asserting on what the logger writes (it writes fd 2
 * with write(2), so the capture is at the file-descriptor level).
 *
 * qb_test_capture_stderr_start() points fd 2 at a fresh temp file.
 * qb_test_capture_stderr_stop() puts the real stderr back, removes the temp
 * file and returns its content (at most 64 KiB - 1, NUL-terminated) in a
 * STATIC buffer: do not free it; it is overwritten by the next stop. One
 * capture at a time; failures (temp file, reading back) fail the running
 * cmocka test.
 *
 * qb_test_capture_stderr_teardown() is a cmocka teardown: if the test
 * failed while stderr was captured, it puts stderr back and writes what was
 * captured to it (cmocka's failure message is in there); else it does
 * nothing. Use it as is, or call it from a test's own teardown. */
void qb_test_capture_stderr_start(void);
char *qb_test_capture_stderr_stop(void);
int qb_test_capture_stderr_teardown(void **state);

#endif
