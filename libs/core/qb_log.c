/* qb_log.c — JSON log lines; see qb_log.h. Owns the service name and the
 * per-thread context table. */
#include "core/qb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int qb_log_level_current = QB_LOG_INFO;
static char qb_log_service[64] = "quantbus";

#define QB_LOG_CTX_MAX 8
typedef struct {
    const char *key;
    char value[128];
} qb_log_kv_t;
static __thread qb_log_kv_t qb_log_ctx[QB_LOG_CTX_MAX];
static __thread int qb_log_ctx_n;

void qb_log_init(const char *service, qb_log_level_t level) {
    if (service) snprintf(qb_log_service, sizeof(qb_log_service), "%s", service);
    qb_log_level_current = (int)level;
}

void qb_log_set_level(qb_log_level_t level) { qb_log_level_current = (int)level; }

int qb_log_level_parse(const char *s) {
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    return -1;
}

void qb_log_ctx_set(const char *key, const char *value) {
    int i;
    for (i = 0; i < qb_log_ctx_n; i++)
        if (strcmp(qb_log_ctx[i].key, key) == 0) break;
    if (i == qb_log_ctx_n) {
        if (qb_log_ctx_n == QB_LOG_CTX_MAX) return;
        qb_log_ctx_n++;
    }
    qb_log_ctx[i].key = key;
    snprintf(qb_log_ctx[i].value, sizeof(qb_log_ctx[i].value), "%s",
             value ? value : "");
}

void qb_log_ctx_set_int(const char *key, int64_t value) {
    char b[32];
    snprintf(b, sizeof(b), "%lld", (long long)value);
    qb_log_ctx_set(key, b);
}

void qb_log_ctx_clear(void) { qb_log_ctx_n = 0; }

void qb_log_set_trace(const char *trace_id) { qb_log_ctx_set("trace_id", trace_id); }

const char *qb_log_trace(void) {
    for (int i = 0; i < qb_log_ctx_n; i++)
        if (strcmp(qb_log_ctx[i].key, "trace_id") == 0) return qb_log_ctx[i].value;
    return "";
}

void qb_json_escape_append(char *buf, size_t cap, size_t *pos, const char *s) {
    size_t p = *pos;
    if (cap == 0) return;
    for (; s && *s && p + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': buf[p++] = '\\'; buf[p++] = '"'; break;
        case '\\': buf[p++] = '\\'; buf[p++] = '\\'; break;
        case '\n': buf[p++] = '\\'; buf[p++] = 'n'; break;
        case '\r': buf[p++] = '\\'; buf[p++] = 'r'; break;
        case '\t': buf[p++] = '\\'; buf[p++] = 't'; break;
        default:
            if (c < 0x20) p += (size_t)snprintf(buf + p, cap - p, "\\u%04x", c);
            else buf[p++] = (char)c;
        }
    }
    buf[p < cap ? p : cap - 1] = '\0';
    *pos = p < cap ? p : cap - 1;
}

static void qb_log_append_raw(char *buf, size_t cap, size_t *pos, const char *s) {
    size_t n = strlen(s);
    if (*pos + n >= cap) n = cap - 1 - *pos;
    memcpy(buf + *pos, s, n);
    *pos += n;
    buf[*pos] = '\0';
}

void qb_log_write(qb_log_level_t level, const char *file, int line,
                  const char *fmt, ...) {
    static const char *lv[] = {"debug", "info", "warn", "error", "off"};
    char msg[2048], out[4096], ts[64], src[96];
    struct timespec now;
    struct tm tm;
    size_t pos = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);
    const char *base = strrchr(file, '/');
    snprintf(src, sizeof(src), "%s:%d", base ? base + 1 : file, line);

    qb_log_append_raw(out, sizeof(out) - 2, &pos, "{\"ts\":\"");
    qb_log_append_raw(out, sizeof(out) - 2, &pos, ts);
    qb_log_append_raw(out, sizeof(out) - 2, &pos, "\",\"level\":\"");
    qb_log_append_raw(out, sizeof(out) - 2, &pos, lv[level <= QB_LOG_OFF ? level : QB_LOG_ERROR]);
    qb_log_append_raw(out, sizeof(out) - 2, &pos, "\",\"service\":\"");
    qb_json_escape_append(out, sizeof(out) - 2, &pos, qb_log_service);
    qb_log_append_raw(out, sizeof(out) - 2, &pos, "\",\"msg\":\"");
    qb_json_escape_append(out, sizeof(out) - 2, &pos, msg);
    qb_log_append_raw(out, sizeof(out) - 2, &pos, "\",\"src\":\"");
    qb_json_escape_append(out, sizeof(out) - 2, &pos, src);
    qb_log_append_raw(out, sizeof(out) - 2, &pos, "\"");
    for (int i = 0; i < qb_log_ctx_n; i++) {
        qb_log_append_raw(out, sizeof(out) - 2, &pos, ",\"");
        qb_json_escape_append(out, sizeof(out) - 2, &pos, qb_log_ctx[i].key);
        qb_log_append_raw(out, sizeof(out) - 2, &pos, "\":\"");
        qb_json_escape_append(out, sizeof(out) - 2, &pos, qb_log_ctx[i].value);
        qb_log_append_raw(out, sizeof(out) - 2, &pos, "\"");
    }
    out[pos++] = '}';
    out[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, pos);
    (void)w;
}
