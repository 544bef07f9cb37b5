/* qb_proto.c — the message-type registry and header helpers.
 *
 * The registry is one constant table of the generated descriptors of every
 * top-level message of package qb.v1. A new message in proto/qb/v1 must be
 * added to qb__proto_types[] below; tests/unit/test_pbjson.c reads the
 * .proto files and fails when one is missing. */
#include "proto/qb_proto.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

static const ProtobufCMessageDescriptor *const qb__proto_types[] = {
    &qb__v1__header__descriptor,
    &qb__v1__bar__descriptor,
    &qb__v1__feature_set__descriptor,
    &qb__v1__signal__descriptor,
    &qb__v1__order_request__descriptor,
    &qb__v1__order__descriptor,
    &qb__v1__execution_report__descriptor,
    &qb__v1__risk_event__descriptor,
    &qb__v1__command__descriptor,
    &qb__v1__backtest_request__descriptor,
    &qb__v1__backtest_event__descriptor,
    &qb__v1__notification__descriptor,
};
#define QB__PROTO_NTYPES (sizeof(qb__proto_types) / sizeof(qb__proto_types[0]))

const ProtobufCMessageDescriptor *qb_proto_find(const char *full_name) {
    if (!full_name) return NULL;
    int short_form = strchr(full_name, '.') == NULL;
    for (size_t i = 0; i < QB__PROTO_NTYPES; i++) {
        const ProtobufCMessageDescriptor *d = qb__proto_types[i];
        if (strcmp(short_form ? d->short_name : d->name, full_name) == 0)
            return d;
    }
    return NULL;
}

const ProtobufCMessageDescriptor *const *qb_proto_all(size_t *count) {
    if (count) *count = QB__PROTO_NTYPES;
    return qb__proto_types;
}

const char *qb_proto_name(const ProtobufCMessageDescriptor *d) {
    return d ? d->name : NULL;
}

/* ---- random ids ---------------------------------------------------------- */

static void qb__random_bytes(unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break; /* no getrandom (old kernel, seccomp): fall back below */
        }
    }
    while (got < n) { /* libuuid reads /dev/urandom itself */
        uuid_t u;
        uuid_generate_random(u);
        size_t take = n - got < sizeof(u) ? n - got : sizeof(u);
        memcpy(buf + got, u, take);
        got += take;
    }
}

static void qb__uuid_new(char out[QB_PROTO_UUID_LEN + 1]) {
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

static void qb__trace_id_new(char out[QB_PROTO_TRACE_ID_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[QB_PROTO_TRACE_ID_LEN / 2];
    do {
        qb__random_bytes(b, sizeof(b));
    } while (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", sizeof(b)) == 0);
    for (size_t i = 0; i < sizeof(b); i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[QB_PROTO_TRACE_ID_LEN] = '\0';
}

int qb_proto_trace_id_valid(const char *s) {
    if (!s) return 0;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= QB_PROTO_TRACE_ID_LEN || !isxdigit((unsigned char)s[i]))
            return 0;
    return i == QB_PROTO_TRACE_ID_LEN;
}

/* ---- header -------------------------------------------------------------- */

qb_err_t qb_proto_header_init(qb_proto_header_t *h, const char *producer,
                              int64_t event_time, const char *trace_id) {
    if (!h || !producer) return QB_ERR_INVALID;
    size_t plen = strlen(producer);
    if (plen == 0 || plen > QB_PROTO_PRODUCER_MAX) return QB_ERR_INVALID;
    int new_trace = trace_id == NULL || trace_id[0] == '\0';
    if (!new_trace && !qb_proto_trace_id_valid(trace_id)) return QB_ERR_INVALID;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

    memset(h, 0, sizeof(*h));
    qb__v1__header__init(&h->pb);
    qb__uuid_new(h->event_id);
    if (new_trace) {
        qb__trace_id_new(h->trace_id);
    } else {
        for (size_t i = 0; i < QB_PROTO_TRACE_ID_LEN; i++)
            h->trace_id[i] = (char)tolower((unsigned char)trace_id[i]);
        h->trace_id[QB_PROTO_TRACE_ID_LEN] = '\0';
    }
    memcpy(h->producer, producer, plen + 1);

    h->pb.event_id = h->event_id;
    h->pb.event_time = event_time ? event_time : now;
    h->pb.produced_time = now;
    h->pb.producer = h->producer;
    h->pb.trace_id = h->trace_id;
    h->pb.schema_version = QB_PROTO_SCHEMA_VERSION;
    return QB_OK;
}

/* The descriptor of m's header field, or NULL when it has none. */
static const ProtobufCFieldDescriptor *
qb__header_field(const ProtobufCMessageDescriptor *d) {
    if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) return NULL;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, 1);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        f->descriptor != &qb__v1__header__descriptor ||
        f->label == PROTOBUF_C_LABEL_REPEATED ||
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || strcmp(f->name, "header"))
        return NULL;
    return f;
}

const Qb__V1__Header *qb_proto_header_of(const ProtobufCMessage *m) {
    const ProtobufCFieldDescriptor *f = m ? qb__header_field(m->descriptor) : NULL;
    if (!f) return NULL;
    const Qb__V1__Header *h;
    memcpy(&h, (const char *)m + f->offset, sizeof(h));
    return h;
}

Qb__V1__Header **qb_proto_header_slot(ProtobufCMessage *m) {
    const ProtobufCFieldDescriptor *f = m ? qb__header_field(m->descriptor) : NULL;
    if (!f) return NULL;
    return (Qb__V1__Header **)(void *)((char *)m + f->offset);
}
