/* qb_log.h — structured JSON logging on stderr.
 *
 * One line per event:
 *   {"ts":"2026-11-21T22:30:01.123456Z","level":"info","service":"qb-data",
 *    "msg":"...","src":"file.c:42","trace_id":"...","topic":"md.bars",...}
 * The macros test the level before formatting anything, so a disabled debug
 * line costs one comparison. Context (trace id, topic, partition, offset,
 * request id ...) is thread-local: set it where the work starts, clear it
 * when done, and every line logged in between carries it.
 * Log lines are written with one write(2) each, so concurrent threads and
 * processes sharing stderr never interleave within a line. */
#ifndef QB_LOG_H
#define QB_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum qb_log_level_e {
    QB_LOG_DEBUG = 0,
    QB_LOG_INFO = 1,
    QB_LOG_WARN = 2,
    QB_LOG_ERROR = 3,
    QB_LOG_OFF = 4
} qb_log_level_t;

extern volatile int qb_log_level_current;

/* Set the service name stamped on every line (copied). */
void qb_log_init(const char *service, qb_log_level_t level);
void qb_log_set_level(qb_log_level_t level);
/* "debug"|"info"|"warn"|"error"|"off" -> level; -1 when unknown. */
int qb_log_level_parse(const char *s);

/* Thread-local context fields. Keys must be string literals (not copied);
 * values are copied (truncated at 127 bytes). At most 8 fields. Setting an
 * existing key replaces its value. */
void qb_log_ctx_set(const char *key, const char *value);
void qb_log_ctx_set_int(const char *key, int64_t value);
void qb_log_ctx_clear(void);
/* The thread's current trace id ("" if none): a shorthand for the
 * "trace_id" context field. */
void qb_log_set_trace(const char *trace_id);
const char *qb_log_trace(void);

void qb_log_write(qb_log_level_t level, const char *file, int line,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define QB_LOG(level, ...)                                                     \
    do {                                                                       \
        if ((int)(level) >= qb_log_level_current)                              \
            qb_log_write((level), __FILE__, __LINE__, __VA_ARGS__);            \
    } while (0)
#define QB_DEBUG(...) QB_LOG(QB_LOG_DEBUG, __VA_ARGS__)
#define QB_INFO(...) QB_LOG(QB_LOG_INFO, __VA_ARGS__)
#define QB_WARN(...) QB_LOG(QB_LOG_WARN, __VA_ARGS__)
#define QB_ERROR(...) QB_LOG(QB_LOG_ERROR, __VA_ARGS__)

/* Append `s` JSON-escaped (without quotes) to buf at *pos, never past cap-1;
 * always NUL-terminates. Shared by everything that hand-writes JSON. */
void qb_json_escape_append(char *buf, size_t cap, size_t *pos, const char *s);

#endif
