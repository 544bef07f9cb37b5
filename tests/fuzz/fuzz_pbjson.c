/* fuzz_pbjson.c — libFuzzer target for libs/proto/qb_pbjson (make fuzz).
 *
 *   ./build-fuzz/fuzz_pbjson -max_total_time=60 [corpus-dir]
 *
 * Each input is used two ways:
 *   1. as JSON text, decoded into a Bar, an ExecutionReport, a FeatureSet
 *      (map), a Command (oneof, nested lists) and a Signal (oneof);
 *   2. as protobuf wire bytes (after a first byte that picks the message
 *      type), unpacked by protobuf-c and encoded to JSON, which must then
 *      decode without error.
 * Whenever a decode succeeds, the result is encoded, decoded and encoded
 * again: the two JSON texts and the two packed forms must be identical.
 * Sanitizers (ASan, UBSan, LeakSanitizer) catch the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/qb_pbjson.h"
#include "proto/qb_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_pbjson: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    CHECK(buf);
    CHECK(protobuf_c_message_pack(m, buf) == *len);
    return buf;
}

/* m decoded fine (or came from the wire): encode -> decode -> encode must be
 * stable, under several output options. */
static void check_stable(const ProtobufCMessage *m, int from_json) {
    static const unsigned flag_sets[] = {0, QB_PBJSON_OMIT_DEFAULTS | QB_PBJSON_CAMEL_CASE};
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
        char err[256];
        char *j1 = qb_pbjson_encode_opts(m, flag_sets[i]);
        CHECK(j1);
        ProtobufCMessage *m2 = NULL;
        qb_err_t rc = qb_pbjson_decode(m->descriptor, j1, strlen(j1), &m2, err, sizeof(err));
        if (rc != QB_OK) {
            fprintf(stderr, "fuzz_pbjson: our own output does not decode: %s\n%s\n", err, j1);
            abort();
        }
        char *j2 = qb_pbjson_encode_opts(m2, flag_sets[i]);
        CHECK(j2);
        if (strcmp(j1, j2) != 0) {
            fprintf(stderr, "fuzz_pbjson: unstable JSON\n%s\n%s\n", j1, j2);
            abort();
        }
        if (from_json) { /* m came from our decoder: the packed forms agree */
            size_t l1, l2;
            uint8_t *p1 = pack(m, &l1), *p2 = pack(m2, &l2);
            CHECK(l1 == l2 && memcmp(p1, p2, l1) == 0);
            free(p1);
            free(p2);
        }
        /* packed bytes of a decoded message must unpack */
        size_t l;
        uint8_t *p = pack(m2, &l);
        ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, NULL, l, p);
        CHECK(u);
        protobuf_c_message_free_unpacked(u, NULL);
        free(p);
        free(j1);
        free(j2);
        protobuf_c_message_free_unpacked(m2, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const ProtobufCMessageDescriptor *const json_types[] = {
        &qb__v1__bar__descriptor,         &qb__v1__execution_report__descriptor,
        &qb__v1__feature_set__descriptor, &qb__v1__command__descriptor,
        &qb__v1__signal__descriptor,
    };
    char err[256];

    /* 1. bytes as JSON */
    for (size_t i = 0; i < sizeof(json_types) / sizeof(json_types[0]); i++) {
        ProtobufCMessage *m = (ProtobufCMessage *)0x1;
        err[0] = 'x';
        qb_err_t rc = qb_pbjson_decode(json_types[i], (const char *)data, size, &m, err,
                                       sizeof(err));
        if (rc == QB_OK) {
            CHECK(m);
            check_stable(m, 1);
            protobuf_c_message_free_unpacked(m, NULL);
        } else {
            CHECK(m == NULL);
            CHECK(err[0] != 'x' && memchr(err, '\0', sizeof(err)));
        }
    }

    /* 2. bytes as protobuf of the type picked by the first byte */
    if (size >= 1) {
        size_t n;
        const ProtobufCMessageDescriptor *const *all = qb_proto_all(&n);
        const ProtobufCMessageDescriptor *d = all[data[0] % n];
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
        if (m) {
            check_stable(m, 0);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    return 0;
}
