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

#endif
