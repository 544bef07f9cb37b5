/* cmd_tail.c — `qbctl tail TOPIC`: print each message of TOPIC as one JSON
 * object per line (protobuf decoded with the type in its qb-type header).
 *   --from-beginning  start at the oldest retained message (default: new only)
 *   --max N           stop after N messages
 *   --timeout-ms MS   stop when no message came for MS milliseconds
 *   --meta            wrap each line: {"topic","partition","offset","key",
 *                     "type","trace_id","error" (DLQ),"message":{...}}
 * A message that cannot be decoded is printed as {"topic",...,"decode_error",
 * "payload_base64"} so nothing is silently skipped. Ctrl-C stops. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bus/qb_reader.h"
#include "proto/qb_pbjson.h"
#include "qbctl.h"

static volatile sig_atomic_t qbctl_tail_run = 1;
static void qbctl_tail_stop(int sig) { (void)sig; qbctl_tail_run = 0; }

static char *qbctl_base64(const unsigned char *p, size_t n) {
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * ((n + 2) / 3) + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = tb[v >> 18 & 63];
        *q++ = tb[v >> 12 & 63];
        *q++ = i + 1 < n ? tb[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? tb[v & 63] : '=';
    }
    *q = '\0';
    return o;
}

static void qbctl_tail_print(qb_reader_t *r, const qb_bus_msg_t *m, const char *derr,
                             int meta) {
    if (m->msg && !meta) {
        char *j = qb_pbjson_encode(m->msg);
        if (j) { fputs(j, stdout); fputc('\n', stdout); free(j); }
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", m->topic);
    cJSON_AddNumberToObject(o, "partition", m->partition);
    cJSON_AddNumberToObject(o, "offset", (double)m->offset);
    if (m->key) {
        char *k = strndup(m->key, m->key_len);
        cJSON_AddStringToObject(o, "key", k ? k : "");
        free(k);
    }
    cJSON_AddStringToObject(o, "type", m->type);
    if (*m->trace_id) cJSON_AddStringToObject(o, "trace_id", m->trace_id);
    const char *e = qb_reader_header(r, "qb-error");
    if (e) cJSON_AddStringToObject(o, "error", e);
    e = qb_reader_header(r, "qb-error-code");
    if (e) cJSON_AddStringToObject(o, "error_code", e);
    if (m->msg) {
        cJSON_AddItemToObject(o, "message", qb_pbjson_to_cjson(m->msg, 0));
    } else {
        char *b = qbctl_base64(m->payload, m->len);
        cJSON_AddStringToObject(o, "decode_error", derr ? derr : "undecodable");
        cJSON_AddStringToObject(o, "payload_base64", b ? b : "");
        free(b);
    }
    char *j = cJSON_PrintUnformatted(o);
    if (j) { fputs(j, stdout); fputc('\n', stdout); free(j); }
    cJSON_Delete(o);
}

int qbctl_tail(int argc, char **argv) {
    const char *topic = NULL;
    int from_beginning = 0, meta = 0;
    int64_t max = -1, timeout_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from-beginning") == 0) from_beginning = 1;
        else if (strcmp(argv[i], "--meta") == 0) meta = 1;
        else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
            max = qbctl_int_arg("--max", argv[++i]);
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = qbctl_int_arg("--timeout-ms", argv[++i]);
        else if (argv[i][0] != '-' && !topic) topic = argv[i];
        else {
            fprintf(stderr, "qbctl tail: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!topic) {
        fprintf(stderr, "qbctl tail: which topic? (qbctl topics lists them)\n");
        return 2;
    }
    char err[512];
    qb_reader_t *r = qb_reader_new(topic, from_beginning, 10000, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "qbctl tail: %s\n", err);
        return 1;
    }
    signal(SIGINT, qbctl_tail_stop);
    signal(SIGTERM, qbctl_tail_stop);
    int64_t seen = 0, idle = 0;
    int rc = 0;
    while (qbctl_tail_run && (max < 0 || seen < max)) {
        qb_bus_msg_t m;
        const char *derr = NULL;
        qb_err_t e = qb_reader_next(r, 200, &m, &derr);
        if (e == QB_ERR_TIMEOUT) {
            idle += 200;
            if (timeout_ms >= 0 && idle >= timeout_ms) break;
            continue;
        }
        if (e != QB_OK) {
            fprintf(stderr, "qbctl tail: consumer failed\n");
            rc = 1;
            break;
        }
        idle = 0;
        qbctl_tail_print(r, &m, derr, meta);
        fflush(stdout);
        seen++;
    }
    qb_reader_destroy(r);
    return rc;
}
