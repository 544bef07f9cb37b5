/* cmd_produce.c — `qbctl produce TOPIC`: read JSON objects, one per line,
 * from stdin and publish each as the topic's protobuf message.
 *   --type NAME   message type when TOPIC is not in the registry
 *   --key KEY     record key (default: the value of the message field the
 *                 registry names as the topic's key, e.g. "symbol")
 * A message without "header" gets a fresh one (event id, produced time,
 * producer "qbctl", new trace id; event time = the message's "ts" when it
 * has one); a given header is sent as it is. A bad line is reported on
 * stderr with its line number and not sent; the exit status is 1 if any
 * line was bad or any delivery failed. Empty lines are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/qb_bus.h"
#include "proto/qb_pbjson.h"
#include "proto/qb_proto.h"
#include "qbctl.h"

int64_t qbctl_int_arg(const char *opt, const char *val) {
    char *end;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || v < 0) {
        fprintf(stderr, "qbctl: %s %s: expected a non-negative integer\n", opt, val);
        exit(2);
    }
    return v;
}

/* The string value of field `name` (spaces read as '_') of m, or NULL. */
static const char *qbctl_field_string(const ProtobufCMessage *m, const char *name) {
    char fname[64];
    snprintf(fname, sizeof(fname), "%s", name);
    for (char *p = fname; *p; p++)
        if (*p == ' ') *p = '_';
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, fname);
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(const char *const *)((const char *)m + f->offset);
}

static int64_t qbctl_field_ts(const ProtobufCMessage *m) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "ts");
    if (!f || f->type != PROTOBUF_C_TYPE_INT64 || f->label == PROTOBUF_C_LABEL_REPEATED)
        return 0;
    return *(const int64_t *)((const char *)m + f->offset);
}

int qbctl_produce(int argc, char **argv) {
    const char *topic = NULL, *type = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) type = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) key = argv[++i];
        else if (argv[i][0] != '-' && !topic) topic = argv[i];
        else {
            fprintf(stderr, "qbctl produce: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!topic) {
        fprintf(stderr, "qbctl produce: which topic? (qbctl topics lists them)\n");
        return 2;
    }
    char err[1024];
    if (qb_topics_init(err, sizeof(err)) != QB_OK) {
        fprintf(stderr, "qbctl produce: %s\n", err);
        return 2;
    }
    const qb_topic_t *t = qb_topic_find(topic);
    if (!type && !t) {
        fprintf(stderr, "qbctl produce: %s is not a registry topic: give --type\n", topic);
        return 2;
    }
    const ProtobufCMessageDescriptor *d = qb_proto_find(type ? type : t->msg_type);
    if (!d) {
        fprintf(stderr, "qbctl produce: unknown message type '%s'\n", type ? type : t->msg_type);
        return 2;
    }
    qb_producer_t *p = qb_producer_new(err, sizeof(err));
    if (!p) {
        fprintf(stderr, "qbctl produce: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, sent = 0, bad = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (strspn(line, " \t") == (size_t)n) continue;
        ProtobufCMessage *m = NULL;
        if (qb_pbjson_decode(d, line, (size_t)n, &m, err, sizeof(err)) != QB_OK) {
            fprintf(stderr, "qbctl produce: stdin line %ld: %s\n", lineno, err);
            bad++;
            continue;
        }
        qb_proto_header_t h;
        Qb__V1__Header **slot = qb_proto_header_slot(m);
        int own_header = slot && !*slot;
        if (own_header) {
            qb_proto_header_init(&h, "qbctl", qbctl_field_ts(m), NULL);
            *slot = &h.pb;
        }
        const char *k = key ? key : (t ? qbctl_field_string(m, t->key) : NULL);
        const Qb__V1__Header *hd = qb_proto_header_of(m);
        qb_err_t e = qb_producer_send_msg(p, t ? t->name : topic, k, k ? strlen(k) : 0, m,
                                          hd && hd->trace_id ? hd->trace_id : "");
        if (own_header) *slot = NULL;
        protobuf_c_message_free_unpacked(m, NULL);
        if (e != QB_OK) {
            fprintf(stderr, "qbctl produce: stdin line %ld: send failed: %s\n", lineno,
                    qb_err_str(e));
            bad++;
            continue;
        }
        sent++;
    }
    free(line);
    qb_err_t fe = qb_producer_flush(p, 30000);
    qb_producer_destroy(p);
    fprintf(stderr, "qbctl produce: %ld sent to %s, %ld bad line(s)%s\n", sent,
            t ? t->name : topic, bad, fe == QB_OK ? "" : ", DELIVERY FAILED");
    return (bad || fe != QB_OK) ? 1 : 0;
}
