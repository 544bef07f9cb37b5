/* test_pbjson.c — libs/proto: the message registry, the header helpers and
 * the JSON mapping.
 *
 * Round trips fill every field of every registered message type (and of a
 * hand-built test type that has every scalar type, proto2 presence and maps
 * with non-string keys) through a descriptor-driven filler, so a field added
 * to a .proto is covered without touching this file; every oneof member is
 * visited in turn. A round trip must reproduce the packed bytes exactly and
 * the JSON text exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/qb_pbjson.h"
#include "proto/qb_proto.h"

/* ---- helpers ------------------------------------------------------------- */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

static char *xstrdup(const char *s) {
    char *p = strdup(s);
    assert_non_null(p);
    return p;
}

static ProtobufCMessage *new_msg(const ProtobufCMessageDescriptor *d) {
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xmalloc(*len);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

/* Decode json as d; fail the test with the error text when it fails. */
static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *d, const char *json) {
    ProtobufCMessage *m = NULL;
    char err[512];
    qb_err_t rc = qb_pbjson_decode(d, json, strlen(json), &m, err, sizeof(err));
    if (rc != QB_OK) fail_msg("decode %s failed (%s): %s\ninput: %s", d->name, qb_err_name(rc), err, json);
    assert_non_null(m);
    return m;
}

/* Decoding json as d must fail with code and an error containing want. */
static void expect_err(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                       qb_err_t code, const char *want) {
    ProtobufCMessage *m = (ProtobufCMessage *)0x1;
    char err[512] = "untouched";
    qb_err_t rc = qb_pbjson_decode(d, json, len, &m, err, sizeof(err));
    if (rc != code || !strstr(err, want))
        fail_msg("input %.*s: got %s \"%s\", want %s containing \"%s\"", (int)len, json,
                 qb_err_name(rc), err, qb_err_name(code), want);
    assert_null(m);
}
#define EXPECT_ERR(d, json, code, want) expect_err((d), (json), strlen(json), (code), (want))

/* ---- a hand-built test type with every scalar type ------------------------
 * package qbtest; message All {
 *   int32 i32=1; sint32 s32=2; sfixed32 sf32=3; uint32 u32=4; fixed32 f32=5;
 *   int64 i64=6; sint64 s64=7; sfixed64 sf64=8; uint64 u64=9; fixed64 f64=10;
 *   float fl=11; double db=12; bool b=13;
 *   optional int64 opt_i64=14;   (proto2 presence, has_ flag)
 *   optional string opt_str=15;  (proto2 presence, NULL = absent)
 *   repeated float rf=16 [packed]; repeated uint64 ru64=17;
 *   map<int32,string> m_i32=18; map<bool,int64> m_bool=19;
 *   map<uint64,bytes> m_u64=20; map<sint64,All> m_s64=21;
 *   optional bytes opt_bytes=22; repeated bool rb=23; All child=24; } */
typedef struct TAll TAll;
typedef struct {
    ProtobufCMessage base;
    int32_t key;
    char *value;
} TEntI32;
typedef struct {
    ProtobufCMessage base;
    protobuf_c_boolean key;
    int64_t value;
} TEntBool;
typedef struct {
    ProtobufCMessage base;
    uint64_t key;
    ProtobufCBinaryData value;
} TEntU64;
typedef struct {
    ProtobufCMessage base;
    int64_t key;
    TAll *value;
} TEntS64;
struct TAll {
    ProtobufCMessage base;
    int32_t i32, s32, sf32;
    uint32_t u32, f32;
    int64_t i64, s64, sf64;
    uint64_t u64, f64;
    float fl;
    double db;
    protobuf_c_boolean b;
    protobuf_c_boolean has_opt_i64;
    int64_t opt_i64;
    char *opt_str;
    size_t n_rf;
    float *rf;
    size_t n_ru64;
    uint64_t *ru64;
    size_t n_m_i32;
    TEntI32 **m_i32;
    size_t n_m_bool;
    TEntBool **m_bool;
    size_t n_m_u64;
    TEntU64 **m_u64;
    size_t n_m_s64;
    TEntS64 **m_s64;
    protobuf_c_boolean has_opt_bytes;
    ProtobufCBinaryData opt_bytes;
    size_t n_rb;
    protobuf_c_boolean *rb;
    TAll *child;
};

static ProtobufCMessageDescriptor t_ent_i32_d, t_ent_bool_d, t_ent_u64_d, t_ent_s64_d;
static ProtobufCMessageDescriptor t_all_d;

#define TF(name, id, label, type, q, st, member, desc, flags)                                 \
    {name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, q, offsetof(st, member),  \
     desc, NULL, flags, 0, NULL, NULL}
#define TQ(st, member) offsetof(st, member)

static const ProtobufCFieldDescriptor t_ent_i32_f[] = {
    TF("key", 1, NONE, INT32, 0, TEntI32, key, NULL, 0),
    TF("value", 2, NONE, STRING, 0, TEntI32, value, NULL, 0)};
static const ProtobufCFieldDescriptor t_ent_bool_f[] = {
    TF("key", 1, NONE, BOOL, 0, TEntBool, key, NULL, 0),
    TF("value", 2, NONE, INT64, 0, TEntBool, value, NULL, 0)};
static const ProtobufCFieldDescriptor t_ent_u64_f[] = {
    TF("key", 1, NONE, UINT64, 0, TEntU64, key, NULL, 0),
    TF("value", 2, NONE, BYTES, 0, TEntU64, value, NULL, 0)};
static const ProtobufCFieldDescriptor t_ent_s64_f[] = {
    TF("key", 1, NONE, SINT64, 0, TEntS64, key, NULL, 0),
    TF("value", 2, NONE, MESSAGE, 0, TEntS64, value, &t_all_d, 0)};
static const ProtobufCFieldDescriptor t_all_f[] = {
    TF("i32", 1, NONE, INT32, 0, TAll, i32, NULL, 0),
    TF("s32", 2, NONE, SINT32, 0, TAll, s32, NULL, 0),
    TF("sf32", 3, NONE, SFIXED32, 0, TAll, sf32, NULL, 0),
    TF("u32", 4, NONE, UINT32, 0, TAll, u32, NULL, 0),
    TF("f32", 5, NONE, FIXED32, 0, TAll, f32, NULL, 0),
    TF("i64", 6, NONE, INT64, 0, TAll, i64, NULL, 0),
    TF("s64", 7, NONE, SINT64, 0, TAll, s64, NULL, 0),
    TF("sf64", 8, NONE, SFIXED64, 0, TAll, sf64, NULL, 0),
    TF("u64", 9, NONE, UINT64, 0, TAll, u64, NULL, 0),
    TF("f64", 10, NONE, FIXED64, 0, TAll, f64, NULL, 0),
    TF("fl", 11, NONE, FLOAT, 0, TAll, fl, NULL, 0),
    TF("db", 12, NONE, DOUBLE, 0, TAll, db, NULL, 0),
    TF("b", 13, NONE, BOOL, 0, TAll, b, NULL, 0),
    TF("opt_i64", 14, OPTIONAL, INT64, TQ(TAll, has_opt_i64), TAll, opt_i64, NULL, 0),
    TF("opt_str", 15, OPTIONAL, STRING, 0, TAll, opt_str, NULL, 0),
    TF("rf", 16, REPEATED, FLOAT, TQ(TAll, n_rf), TAll, rf, NULL, PROTOBUF_C_FIELD_FLAG_PACKED),
    TF("ru64", 17, REPEATED, UINT64, TQ(TAll, n_ru64), TAll, ru64, NULL, 0),
    TF("m_i32", 18, REPEATED, MESSAGE, TQ(TAll, n_m_i32), TAll, m_i32, &t_ent_i32_d, 0),
    TF("m_bool", 19, REPEATED, MESSAGE, TQ(TAll, n_m_bool), TAll, m_bool, &t_ent_bool_d, 0),
    TF("m_u64", 20, REPEATED, MESSAGE, TQ(TAll, n_m_u64), TAll, m_u64, &t_ent_u64_d, 0),
    TF("m_s64", 21, REPEATED, MESSAGE, TQ(TAll, n_m_s64), TAll, m_s64, &t_ent_s64_d, 0),
    TF("opt_bytes", 22, OPTIONAL, BYTES, TQ(TAll, has_opt_bytes), TAll, opt_bytes, NULL, 0),
    TF("rb", 23, REPEATED, BOOL, TQ(TAll, n_rb), TAll, rb, NULL, 0),
    TF("child", 24, NONE, MESSAGE, 0, TAll, child, &t_all_d, 0),
};
#define T_NALL (sizeof(t_all_f) / sizeof(t_all_f[0]))

static unsigned t_all_by_name[T_NALL];
static const unsigned t_ent_by_name[2] = {0, 1}; /* "key" < "value" */
static const ProtobufCIntRange t_all_ranges[2] = {{1, 0}, {0, T_NALL}};
static const ProtobufCIntRange t_ent_ranges[2] = {{1, 0}, {0, 2}};

#define T_INIT_FN(fn, type, desc)                                                           \
    static void fn(type *m) {                                                               \
        memset(m, 0, sizeof(*m));                                                           \
        m->base.descriptor = &desc;                                                         \
    }
T_INIT_FN(t_all_init, TAll, t_all_d)
T_INIT_FN(t_ent_i32_init, TEntI32, t_ent_i32_d)
T_INIT_FN(t_ent_bool_init, TEntBool, t_ent_bool_d)
T_INIT_FN(t_ent_u64_init, TEntU64, t_ent_u64_d)
T_INIT_FN(t_ent_s64_init, TEntS64, t_ent_s64_d)

static void t_desc(ProtobufCMessageDescriptor *d, const char *name, const char *short_name,
                   size_t size, unsigned n, const ProtobufCFieldDescriptor *f,
                   const unsigned *by_name, const ProtobufCIntRange *ranges,
                   ProtobufCMessageInit init) {
    memset(d, 0, sizeof(*d));
    d->magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
    d->name = name;
    d->short_name = short_name;
    d->c_name = short_name;
    d->package_name = "qbtest";
    d->sizeof_message = size;
    d->n_fields = n;
    d->fields = f;
    d->fields_sorted_by_name = by_name;
    d->n_field_ranges = 1;
    d->field_ranges = ranges;
    d->message_init = init;
}

static int t_name_cmp(const void *a, const void *b) {
    return strcmp(t_all_f[*(const unsigned *)a].name, t_all_f[*(const unsigned *)b].name);
}

static void t_setup_descriptors(void) {
    static int done;
    if (done) return;
    done = 1;
    for (unsigned i = 0; i < T_NALL; i++) t_all_by_name[i] = i;
    qsort(t_all_by_name, T_NALL, sizeof(unsigned), t_name_cmp);
    t_desc(&t_all_d, "qbtest.All", "All", sizeof(TAll), T_NALL, t_all_f, t_all_by_name,
           t_all_ranges, (ProtobufCMessageInit)t_all_init);
    t_desc(&t_ent_i32_d, "qbtest.All.MI32Entry", "MI32Entry", sizeof(TEntI32), 2, t_ent_i32_f,
           t_ent_by_name, t_ent_ranges, (ProtobufCMessageInit)t_ent_i32_init);
    t_desc(&t_ent_bool_d, "qbtest.All.MBoolEntry", "MBoolEntry", sizeof(TEntBool), 2,
           t_ent_bool_f, t_ent_by_name, t_ent_ranges, (ProtobufCMessageInit)t_ent_bool_init);
    t_desc(&t_ent_u64_d, "qbtest.All.MU64Entry", "MU64Entry", sizeof(TEntU64), 2, t_ent_u64_f,
           t_ent_by_name, t_ent_ranges, (ProtobufCMessageInit)t_ent_u64_init);
    t_desc(&t_ent_s64_d, "qbtest.All.MS64Entry", "MS64Entry", sizeof(TEntS64), 2, t_ent_s64_f,
           t_ent_by_name, t_ent_ranges, (ProtobufCMessageInit)t_ent_s64_init);
}

/* ---- descriptor-driven filler -------------------------------------------
 * Sets every field of m to a non-default value that exercises the mapping:
 * extreme integers, awkward doubles, strings with escapes and non-ASCII,
 * bytes with NULs. Element k of a list gets variant k. Nested messages are
 * filled down to MAX_FILL_DEPTH. For each oneof, member number `variant`
 * (modulo the oneof's size) is set. Everything is malloc'd, so
 * protobuf_c_message_free_unpacked() frees it. */
#define MAX_FILL_DEPTH 3

static void fill_message(ProtobufCMessage *m, unsigned variant, int depth);

static void fill_value(ProtobufCType t, const void *td, void *dst, unsigned k, unsigned variant,
                       int depth, int as_map_key) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v = (k % 2) ? INT32_MIN + (int32_t)k : INT32_MAX - (int32_t)k;
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = UINT32_MAX - k;
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        static const int64_t vals[] = {1700000000123456789LL, INT64_MIN, INT64_MAX,
                                       -12345678901LL, 9007199254740993LL};
        int64_t v = vals[k % 5];
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = UINT64_MAX - k;
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        static const float vals[] = {0.1f, -3.4028235e38f, 1.17549435e-38f, 1e-45f, 16777217.0f};
        memcpy(dst, &vals[k % 5], sizeof(float));
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        static const double vals[] = {187.31, -1e300, 5e-324, 0.1 + 0.2, 1.0 / 3.0, 2.5e-8};
        memcpy(dst, &vals[k % 6], sizeof(double));
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v = as_map_key ? (protobuf_c_boolean)(k % 2) : 1;
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = td;
        int32_t v = ed->values[ed->n_values - 1 - (k % (ed->n_values - 1))].value;
        memcpy(dst, &v, sizeof(v));
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char buf[96];
        snprintf(buf, sizeof(buf), "k%u \"q\" \\ / \n\t\x01 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", k);
        char *s = xstrdup(buf);
        memcpy(dst, &s, sizeof(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;
        b.len = 4 + k;
        b.data = xmalloc(b.len);
        for (size_t i = 0; i < b.len; i++) b.data[i] = (uint8_t)(i * 77 + k);
        b.data[0] = 0;
        b.data[b.len - 1] = 0xff;
        memcpy(dst, &b, sizeof(b));
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = new_msg(td);
        fill_message(sub, variant + k, depth + 1);
        memcpy(dst, &sub, sizeof(sub));
        break;
    }
    }
}

static size_t elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    default:
        return 4;
    }
}

/* Position of oneof member f among the members of its oneof, and their
 * number. */
static void oneof_pos(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                      unsigned *pos, unsigned *count) {
    *pos = *count = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *g = &d->fields[i];
        if (!(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || g->quantifier_offset != f->quantifier_offset)
            continue;
        if (g == f) *pos = *count;
        (*count)++;
    }
}

static void fill_message(ProtobufCMessage *m, unsigned variant, int depth) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *p = (char *)m + f->offset;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= MAX_FILL_DEPTH) continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned pos, count;
            oneof_pos(d, f, &pos, &count);
            if (pos != variant % count) continue;
            fill_value(f->type, f->descriptor, p, variant, variant, depth, 0);
            uint32_t id = f->id;
            memcpy((char *)m + f->quantifier_offset, &id, sizeof(id));
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            int is_map = f->type == PROTOBUF_C_TYPE_MESSAGE && ed->n_fields == 2 &&
                         strcmp(ed->fields[0].name, "key") == 0 &&
                         strlen(ed->short_name) > 5 &&
                         strcmp(ed->short_name + strlen(ed->short_name) - 5, "Entry") == 0;
            size_t n = is_map && ed->fields[0].type == PROTOBUF_C_TYPE_BOOL ? 2 : 3;
            size_t esz = elem_size(f->type);
            char *arr = xmalloc(n * esz);
            for (size_t k = 0; k < n; k++) {
                if (is_map) {
                    ProtobufCMessage *e = new_msg(ed);
                    fill_value(ed->fields[0].type, ed->fields[0].descriptor,
                               (char *)e + ed->fields[0].offset, (unsigned)k, variant, depth, 1);
                    const ProtobufCFieldDescriptor *vf = &ed->fields[1];
                    if (vf->type == PROTOBUF_C_TYPE_MESSAGE && depth + 1 >= MAX_FILL_DEPTH) {
                        /* too deep to fill: an empty message (a missing
                         * value would come back as an empty one) */
                        ProtobufCMessage *empty = new_msg(vf->descriptor);
                        memcpy((char *)e + vf->offset, &empty, sizeof(empty));
                    } else {
                        fill_value(vf->type, vf->descriptor, (char *)e + vf->offset,
                                   (unsigned)k, variant, depth + 1, 0);
                    }
                    memcpy(arr + k * esz, &e, sizeof(e));
                } else {
                    fill_value(f->type, f->descriptor, arr + k * esz, (unsigned)k, variant, depth, 0);
                }
            }
            memcpy(p, &arr, sizeof(arr));
            memcpy((char *)m + f->quantifier_offset, &n, sizeof(n));
        } else {
            fill_value(f->type, f->descriptor, p, variant, variant, depth, 0);
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE) {
                protobuf_c_boolean has = 1;
                memcpy((char *)m + f->quantifier_offset, &has, sizeof(has));
            }
        }
    }
}

/* Largest oneof of d (1 when none): how many variants visit every member. */
static unsigned max_oneof(const ProtobufCMessageDescriptor *d) {
    unsigned best = 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned pos, count;
            oneof_pos(d, f, &pos, &count);
            if (count > best) best = count;
        }
    }
    return best;
}

/* Encode m with flags, decode it back, and require identical packed bytes
 * and identical JSON on re-encoding. */
static void check_roundtrip_flags(const ProtobufCMessage *m, unsigned flags) {
    size_t alen, blen;
    uint8_t *a = pack(m, &alen);
    char *js = qb_pbjson_encode_opts(m, flags);
    assert_non_null(js);
    ProtobufCMessage *back = decode_ok(m->descriptor, js);
    uint8_t *b = pack(back, &blen);
    if (alen != blen || memcmp(a, b, alen) != 0)
        fail_msg("%s flags %u: packed bytes differ after JSON round trip (%zu vs %zu)\n%s",
                 m->descriptor->name, flags, alen, blen, js);
    char *js2 = qb_pbjson_encode_opts(back, flags);
    assert_non_null(js2);
    assert_string_equal(js, js2);
    free(js);
    free(js2);
    free(a);
    free(b);
    protobuf_c_message_free_unpacked(back, NULL);
}

static void check_roundtrip(const ProtobufCMessage *m) {
    static const unsigned flag_sets[] = {
        0, QB_PBJSON_OMIT_DEFAULTS, QB_PBJSON_CAMEL_CASE,
        QB_PBJSON_OMIT_DEFAULTS | QB_PBJSON_CAMEL_CASE, QB_PBJSON_PRETTY};
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++)
        check_roundtrip_flags(m, flag_sets[i]);
}

/* ---- registry ------------------------------------------------------------ */

static void test_registry_find(void **state) {
    size_t n = 0;
    const ProtobufCMessageDescriptor *const *all = qb_proto_all(&n);
    assert_non_null(all);
    assert_true(n >= 11);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = all[i];
        assert_ptr_equal(qb_proto_find(d->name), d);
        assert_ptr_equal(qb_proto_find(d->short_name), d);
        assert_string_equal(qb_proto_name(d), d->name);
        assert_string_equal(d->package_name, "qb.v1");
        for (size_t j = 0; j < i; j++) assert_string_not_equal(all[j]->name, d->name);
        /* Every message except Header starts with `Header header = 1`. */
        if (d != &qb__v1__header__descriptor) {
            ProtobufCMessage *m = new_msg(d);
            assert_non_null(qb_proto_header_slot(m));
            assert_null(qb_proto_header_of(m));
            free(m);
        }
    }
    assert_ptr_equal(qb_proto_find("qb.v1.Bar"), &qb__v1__bar__descriptor);
    assert_ptr_equal(qb_proto_find("qb.v1.ExecutionReport"), &qb__v1__execution_report__descriptor);
    assert_ptr_equal(qb_proto_find("qb.v1.Header"), &qb__v1__header__descriptor);
    assert_null(qb_proto_find("qb.v1.bar"));
    assert_null(qb_proto_find("qb.v1.Command.Limit")); /* nested: not listed */
    assert_null(qb_proto_find("qb.v2.Bar"));
    assert_null(qb_proto_find(""));
    assert_null(qb_proto_find(NULL));
    assert_null(qb_proto_name(NULL));
    assert_int_equal(qb_proto_all(NULL), all);
}

/* Every top-level `message X` of proto/qb/v1/\*.proto is in the registry
 * (guards against adding a message and forgetting qb_proto.c). */
static void test_registry_matches_proto_files(void **state) {
    const char *root = getenv("QB_ROOT");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/proto/qb/v1", root ? root : ".");
    DIR *dh = opendir(dir);
    if (!dh) fail_msg("cannot open %s (run from the repository root or set QB_ROOT)", dir);
    size_t found = 0, files = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 6, ".proto") != 0) continue;
        files++;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        char line[512];
        while (fgets(line, sizeof(line), fp)) {
            char name[128];
            if (sscanf(line, "message %127[A-Za-z0-9_]", name) != 1) continue; /* column 0 only */
            char full[160];
            snprintf(full, sizeof(full), "qb.v1.%s", name);
            if (!qb_proto_find(full)) fail_msg("%s (%s) is missing from qb_proto.c", full, path);
            found++;
        }
        fclose(fp);
    }
    closedir(dh);
    size_t n;
    qb_proto_all(&n);
    assert_true(files >= 6);
    assert_int_equal(found, n);
}

/* ---- header -------------------------------------------------------------- */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_header_init(void **state) {
    qb_proto_header_t h, h2;
    int64_t before = now_ns();
    assert_int_equal(qb_proto_header_init(&h, "qb-data", 1700000000000000000LL, NULL), QB_OK);
    int64_t after = now_ns();
    assert_ptr_equal(h.pb.base.descriptor, &qb__v1__header__descriptor);
    assert_ptr_equal(h.pb.event_id, h.event_id);
    assert_int_equal(strlen(h.event_id), 36);
    for (int i = 0; i < 36; i++) {
        char ch = h.event_id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) assert_int_equal(ch, '-');
        else assert_true((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
    }
    assert_int_equal(h.event_id[14], '4'); /* UUID version 4 */
    assert_non_null(strchr("89ab", h.event_id[19]));
    assert_int_equal(strlen(h.pb.trace_id), 32);
    assert_true(qb_proto_trace_id_valid(h.pb.trace_id));
    for (int i = 0; i < 32; i++) assert_true(strchr("0123456789abcdef", h.trace_id[i]) != NULL);
    assert_string_equal(h.pb.producer, "qb-data");
    assert_int_equal(h.pb.event_time, 1700000000000000000LL);
    assert_true(h.pb.produced_time >= before && h.pb.produced_time <= after);
    assert_int_equal(h.pb.schema_version, 1);

    /* A second header: new ids; the trace id of the cause is kept. */
    assert_int_equal(qb_proto_header_init(&h2, "qb-risk", 0, h.pb.trace_id), QB_OK);
    assert_string_not_equal(h2.event_id, h.event_id);
    assert_string_equal(h2.pb.trace_id, h.pb.trace_id);
    assert_true(h2.pb.event_time == h2.pb.produced_time); /* 0 = now */
    assert_int_equal(qb_proto_header_init(&h2, "qb-risk", 5, ""), QB_OK);
    assert_string_not_equal(h2.pb.trace_id, h.pb.trace_id);
    assert_int_equal(qb_proto_header_init(&h2, "x", 5, "0123456789ABCDEF0123456789abcdef"), QB_OK);
    assert_string_equal(h2.pb.trace_id, "0123456789abcdef0123456789abcdef");

    /* Bad arguments leave the struct alone. */
    memset(&h2, 0x5a, sizeof(h2));
    assert_int_equal(qb_proto_header_init(&h2, NULL, 1, NULL), QB_ERR_INVALID);
    assert_int_equal(qb_proto_header_init(&h2, "", 1, NULL), QB_ERR_INVALID);
    char longname[QB_PROTO_PRODUCER_MAX + 2];
    memset(longname, 'p', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(qb_proto_header_init(&h2, longname, 1, NULL), QB_ERR_INVALID);
    longname[QB_PROTO_PRODUCER_MAX] = '\0';
    assert_int_equal(qb_proto_header_init(NULL, "qb", 1, NULL), QB_ERR_INVALID);
    assert_int_equal(qb_proto_header_init(&h2, "qb", 1, "abc"), QB_ERR_INVALID);
    assert_int_equal(qb_proto_header_init(&h2, "qb", 1, "0123456789abcdef0123456789abcdeg"), QB_ERR_INVALID);
    assert_int_equal(qb_proto_header_init(&h2, "qb", 1, "0123456789abcdef0123456789abcdef0"), QB_ERR_INVALID);
    assert_int_equal(((unsigned char *)&h2)[0], 0x5a);
    assert_int_equal(qb_proto_header_init(&h2, longname, 1, NULL), QB_OK); /* exactly the max */
    assert_int_equal(strlen(h2.pb.producer), QB_PROTO_PRODUCER_MAX);

    assert_false(qb_proto_trace_id_valid(NULL));
    assert_false(qb_proto_trace_id_valid(""));

    /* header_of / header_slot on a real message; the header packs and
     * reads back through JSON. */
    Qb__V1__Bar bar = QB__V1__BAR__INIT;
    assert_null(qb_proto_header_of(&bar.base));
    *qb_proto_header_slot(&bar.base) = &h.pb;
    assert_ptr_equal(bar.header, &h.pb);
    assert_ptr_equal(qb_proto_header_of(&bar.base), &h.pb);
    bar.symbol = "AAPL";
    char *js = qb_pbjson_encode(&bar.base);
    assert_non_null(js);
    Qb__V1__Bar *back = (Qb__V1__Bar *)decode_ok(&qb__v1__bar__descriptor, js);
    assert_non_null(back->header);
    assert_string_equal(back->header->event_id, h.event_id);
    assert_string_equal(back->header->trace_id, h.trace_id);
    assert_int_equal(back->header->produced_time, h.pb.produced_time);
    assert_string_equal(qb_proto_header_of(&back->base)->producer, "qb-data");
    protobuf_c_message_free_unpacked(&back->base, NULL);
    free(js);

    /* Header itself and non-Quantbus types have no header field. */
    assert_null(qb_proto_header_of(&h.pb.base));
    assert_null(qb_proto_header_slot(&h.pb.base));
    assert_null(qb_proto_header_of(NULL));
    assert_null(qb_proto_header_slot(NULL));
}

/* ---- round trips ---------------------------------------------------------- */

static void test_roundtrip_every_type(void **state) {
    size_t n;
    const ProtobufCMessageDescriptor *const *all = qb_proto_all(&n);
    for (size_t i = 0; i < n; i++) {
        unsigned variants = max_oneof(all[i]);
        for (unsigned v = 0; v < variants; v++) {
            ProtobufCMessage *m = new_msg(all[i]);
            fill_message(m, v, 0);
            check_roundtrip(m);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        /* and the empty message */
        ProtobufCMessage *m = new_msg(all[i]);
        check_roundtrip(m);
        char *js = qb_pbjson_encode_opts(m, QB_PBJSON_OMIT_DEFAULTS);
        assert_string_equal(js, "{}");
        free(js);
        free(m);
    }
}

/* Round trips also go through the wire format: pack, unpack with
 * protobuf-c, encode, decode, pack again. */
static void test_roundtrip_through_wire(void **state) {
    size_t n;
    const ProtobufCMessageDescriptor *const *all = qb_proto_all(&n);
    for (size_t i = 0; i < n; i++) {
        ProtobufCMessage *m = new_msg(all[i]);
        fill_message(m, (unsigned)i, 0);
        size_t len;
        uint8_t *buf = pack(m, &len);
        ProtobufCMessage *u = protobuf_c_message_unpack(all[i], NULL, len, buf);
        assert_non_null(u);
        char *j1 = qb_pbjson_encode(m), *j2 = qb_pbjson_encode(u);
        assert_string_equal(j1, j2);
        check_roundtrip(u);
        free(j1);
        free(j2);
        free(buf);
        protobuf_c_message_free_unpacked(u, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static void test_roundtrip_all_scalar_types(void **state) {
    t_setup_descriptors();
    for (unsigned v = 0; v < 5; v++) {
        ProtobufCMessage *m = new_msg(&t_all_d);
        fill_message(m, v, 0);
        check_roundtrip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    ProtobufCMessage *m = new_msg(&t_all_d);
    check_roundtrip(m);
    char *js = qb_pbjson_encode_opts(m, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{}");
    free(js);
    js = qb_pbjson_encode(m);
    assert_string_equal(js, "{\"i32\":0,\"s32\":0,\"sf32\":0,\"u32\":0,\"f32\":0,\"i64\":\"0\","
                            "\"s64\":\"0\",\"sf64\":\"0\",\"u64\":\"0\",\"f64\":\"0\",\"fl\":0,"
                            "\"db\":0,\"b\":false,\"rf\":[],\"ru64\":[],\"m_i32\":{},"
                            "\"m_bool\":{},\"m_u64\":{},\"m_s64\":{},\"rb\":[]}");
    free(js);
    free(m);
}

/* Exact output for the all-types message: the number formats and map keys. */
static void test_encode_all_scalar_types_exact(void **state) {
    t_setup_descriptors();
    TAll *a = (TAll *)new_msg(&t_all_d);
    a->i32 = -7;
    a->s32 = INT32_MIN;
    a->sf32 = INT32_MAX;
    a->u32 = UINT32_MAX;
    a->f32 = 3;
    a->i64 = INT64_MIN;
    a->s64 = -1;
    a->sf64 = INT64_MAX;
    a->u64 = UINT64_MAX;
    a->f64 = 9007199254740993ULL;
    a->fl = 0.1f;
    a->db = 0.1;
    a->b = 1;
    a->has_opt_i64 = 1; /* present although 0 */
    a->opt_str = xstrdup("");
    float rf[] = {1.5f, -0.0f, NAN, INFINITY, -INFINITY, 3.4028235e38f};
    a->n_rf = 6;
    a->rf = xmalloc(sizeof(rf));
    memcpy(a->rf, rf, sizeof(rf));
    TEntI32 *e1 = (TEntI32 *)new_msg(&t_ent_i32_d), *e2 = (TEntI32 *)new_msg(&t_ent_i32_d);
    e1->key = -5;
    e1->value = xstrdup("neg");
    e2->key = 7;
    e2->value = xstrdup("pos");
    a->n_m_i32 = 2;
    a->m_i32 = xmalloc(2 * sizeof(*a->m_i32));
    a->m_i32[0] = e1;
    a->m_i32[1] = e2;
    TEntBool *eb = (TEntBool *)new_msg(&t_ent_bool_d);
    eb->key = 1;
    eb->value = 42;
    a->n_m_bool = 1;
    a->m_bool = xmalloc(sizeof(*a->m_bool));
    a->m_bool[0] = eb;
    TEntU64 *eu = (TEntU64 *)new_msg(&t_ent_u64_d);
    eu->key = UINT64_MAX;
    eu->value.len = 3;
    eu->value.data = xmalloc(3);
    memcpy(eu->value.data, "\xfb\xff\x00", 3);
    a->n_m_u64 = 1;
    a->m_u64 = xmalloc(sizeof(*a->m_u64));
    a->m_u64[0] = eu;
    TEntS64 *es = (TEntS64 *)new_msg(&t_ent_s64_d);
    es->key = INT64_MIN;
    es->value = (TAll *)new_msg(&t_all_d);
    a->n_m_s64 = 1;
    a->m_s64 = xmalloc(sizeof(*a->m_s64));
    a->m_s64[0] = es;
    a->has_opt_bytes = 1;
    a->child = (TAll *)new_msg(&t_all_d);
    a->child->db = -2.5e-8;

    char *js = qb_pbjson_encode_opts(&a->base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(
        js, "{\"i32\":-7,\"s32\":-2147483648,\"sf32\":2147483647,\"u32\":4294967295,\"f32\":3,"
            "\"i64\":\"-9223372036854775808\",\"s64\":\"-1\",\"sf64\":\"9223372036854775807\","
            "\"u64\":\"18446744073709551615\",\"f64\":\"9007199254740993\",\"fl\":0.1,"
            "\"db\":0.1,\"b\":true,\"opt_i64\":\"0\",\"opt_str\":\"\","
            "\"rf\":[1.5,-0,\"NaN\",\"Infinity\",\"-Infinity\",3.4028235e+38],"
            "\"m_i32\":{\"-5\":\"neg\",\"7\":\"pos\"},\"m_bool\":{\"true\":\"42\"},"
            "\"m_u64\":{\"18446744073709551615\":\"+/8A\"},"
            "\"m_s64\":{\"-9223372036854775808\":{}},\"opt_bytes\":\"\","
            "\"child\":{\"db\":-2.5e-08}}");
    /* ...and back, exactly. */
    check_roundtrip(&a->base);
    TAll *b = (TAll *)decode_ok(&t_all_d, js);
    assert_true(b->has_opt_i64);
    assert_int_equal(b->opt_i64, 0);
    assert_non_null(b->opt_str);
    assert_true(b->has_opt_bytes);
    assert_true(isnan(b->rf[2]));
    assert_true(signbit(b->rf[1]));
    assert_int_equal(b->m_s64[0]->key, INT64_MIN);
    assert_non_null(b->m_s64[0]->value);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    free(js);

    /* Non-string map keys must be canonical; duplicates are refused. */
    EXPECT_ERR(&t_all_d, "{\"m_i32\":{\"07\":\"x\"}}", QB_ERR_INVALID,
               "m_i32[\"07\"]: expected integer, got string \"07\"");
    EXPECT_ERR(&t_all_d, "{\"m_i32\":{\"2147483648\":\"x\"}}", QB_ERR_OVERFLOW,
               "m_i32[\"2147483648\"]: 2147483648 out of range for int32");
    EXPECT_ERR(&t_all_d, "{\"m_bool\":{\"yes\":\"1\"}}", QB_ERR_INVALID,
               "m_bool[\"yes\"]: map key must be \"true\" or \"false\"");
    EXPECT_ERR(&t_all_d, "{\"m_u64\":{\"-1\":\"\"}}", QB_ERR_OVERFLOW, "out of range for uint64");
    EXPECT_ERR(&t_all_d, "{\"m_i32\":{\"1\":\"a\",\"2\":\"b\",\"1\":\"c\"}}", QB_ERR_INVALID,
               "m_i32[\"1\"]: duplicate map key");
    EXPECT_ERR(&t_all_d, "{\"fl\":1e39}", QB_ERR_OVERFLOW, "fl: 1e+39 out of range for float");
    EXPECT_ERR(&t_all_d, "{\"rf\":[1,\"x\"]}", QB_ERR_INVALID, "rf[1]: expected number, got string \"x\"");
    EXPECT_ERR(&t_all_d, "{\"u32\":4294967296}", QB_ERR_OVERFLOW, "u32: number out of range for uint32");
    EXPECT_ERR(&t_all_d, "{\"s32\":\"-2147483649\"}", QB_ERR_OVERFLOW, "s32: -2147483649 out of range for sint32");
    EXPECT_ERR(&t_all_d, "{\"u64\":\"18446744073709551616\"}", QB_ERR_OVERFLOW, "out of range for uint64");
    EXPECT_ERR(&t_all_d, "{\"u64\":-1}", QB_ERR_OVERFLOW, "u64: number out of range for uint64");
    EXPECT_ERR(&t_all_d, "{\"rb\":[true,1]}", QB_ERR_INVALID, "rb[1]: expected boolean, got number");
    EXPECT_ERR(&t_all_d, "{\"m_s64\":{\"1\":null}}", QB_ERR_INVALID, "m_s64[\"1\"]: null is not allowed as a map value");
    EXPECT_ERR(&t_all_d, "{\"m_s64\":{\"1\":{\"m_s64\":{\"2\":{\"i64\":true}}}}}", QB_ERR_INVALID,
               "m_s64[\"1\"].m_s64[\"2\"].i64: expected integer, got boolean");

    /* A map entry without its message value (possible on the wire) prints
     * as an empty message. */
    free(es->value);
    es->value = NULL;
    char *js0 = qb_pbjson_encode_opts(&a->base, QB_PBJSON_OMIT_DEFAULTS);
    assert_non_null(strstr(js0, "\"m_s64\":{\"-9223372036854775808\":{}}"));
    free(js0);

    /* A key repeated on the wire: the last entry wins on output. */
    a->m_i32[1]->key = -5;
    cJSON *tree = qb_pbjson_to_cjson(&a->base, QB_PBJSON_OMIT_DEFAULTS);
    assert_non_null(tree);
    cJSON *map = cJSON_GetObjectItemCaseSensitive(tree, "m_i32");
    assert_int_equal(cJSON_GetArraySize(map), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(map, "-5")->valuestring, "pos");
    cJSON_Delete(tree);

    /* Nesting deeper than the limit is refused both ways. */
    TAll *deep = (TAll *)new_msg(&t_all_d), *cur = deep;
    for (int i = 0; i < 70; i++) cur = cur->child = (TAll *)new_msg(&t_all_d);
    assert_null(qb_pbjson_encode(&deep->base));
    protobuf_c_message_free_unpacked(&deep->base, NULL);
    char nested[1024] = "";
    for (int i = 0; i < 70; i++) strcat(nested, "{\"child\":");
    strcat(nested, "{}");
    for (int i = 0; i < 70; i++) strcat(nested, "}");
    EXPECT_ERR(&t_all_d, nested, QB_ERR_INVALID, "messages nested deeper than 64");

    protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* ---- exact output and accepted input for real messages ------------------- */

static void test_encode_bar_exact(void **state) {
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = "5f0c6c1e-8d0a-4c1e-9a52-0d6c1a1b2c3d";
    h.event_time = 1700000000000000000LL;
    h.produced_time = 1700000000123456789LL;
    h.producer = "qb-data";
    h.trace_id = "0123456789abcdef0123456789abcdef";
    h.schema_version = 1;
    Qb__V1__Bar bar = QB__V1__BAR__INIT;
    bar.header = &h;
    bar.symbol = "AAPL";
    bar.timeframe = "1d";
    bar.ts = 1700000000000000000LL;
    bar.open = 18731000000LL;
    bar.high = 18900000000LL;
    bar.low = 18650000000LL;
    bar.close = 18812500000LL;
    bar.volume = 5512345600000000LL;
    bar.source = "csv";
    static const char want[] =
        "{\"header\":{\"event_id\":\"5f0c6c1e-8d0a-4c1e-9a52-0d6c1a1b2c3d\","
        "\"event_time\":\"1700000000000000000\",\"produced_time\":\"1700000000123456789\","
        "\"producer\":\"qb-data\",\"trace_id\":\"0123456789abcdef0123456789abcdef\","
        "\"schema_version\":1},\"symbol\":\"AAPL\",\"timeframe\":\"1d\","
        "\"ts\":\"1700000000000000000\",\"open\":\"18731000000\",\"high\":\"18900000000\","
        "\"low\":\"18650000000\",\"close\":\"18812500000\",\"volume\":\"5512345600000000\","
        "\"source\":\"csv\"}";
    char *js = qb_pbjson_encode(&bar.base);
    assert_string_equal(js, want);
    free(js);

    js = qb_pbjson_encode_opts(&bar.base, QB_PBJSON_CAMEL_CASE);
    assert_non_null(strstr(js, "\"eventTime\":\"1700000000000000000\""));
    assert_non_null(strstr(js, "\"schemaVersion\":1"));
    free(js);
    js = qb_pbjson_encode_opts(&bar.base, QB_PBJSON_PRETTY);
    assert_non_null(strchr(js, '\n'));
    free(js);

    Qb__V1__Bar empty = QB__V1__BAR__INIT;
    js = qb_pbjson_encode(&empty.base);
    assert_string_equal(js, "{\"symbol\":\"\",\"timeframe\":\"\",\"ts\":\"0\",\"open\":\"0\","
                            "\"high\":\"0\",\"low\":\"0\",\"close\":\"0\",\"volume\":\"0\","
                            "\"source\":\"\"}");
    free(js);

    /* The cJSON form embeds into other documents. */
    cJSON *tree = qb_pbjson_to_cjson(&bar.base, 0);
    assert_non_null(tree);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tree, "close")->valuestring, "18812500000");
    Qb__V1__Bar *back = NULL;
    char err[256];
    assert_int_equal(qb_pbjson_from_cjson(&qb__v1__bar__descriptor, tree,
                                          (ProtobufCMessage **)&back, err, sizeof(err)), QB_OK);
    assert_int_equal(back->volume, 5512345600000000LL);
    protobuf_c_message_free_unpacked(&back->base, NULL);
    cJSON_Delete(tree);

    assert_null(qb_pbjson_encode(NULL));
    assert_null(qb_pbjson_to_cjson(NULL, 0));
}

static void test_encode_maps_oneofs_bytes(void **state) {
    /* map<string,double> */
    Qb__V1__FeatureSet fs = QB__V1__FEATURE_SET__INIT;
    Qb__V1__FeatureSet__ValuesEntry e1 = QB__V1__FEATURE_SET__VALUES_ENTRY__INIT;
    Qb__V1__FeatureSet__ValuesEntry e2 = QB__V1__FEATURE_SET__VALUES_ENTRY__INIT;
    Qb__V1__FeatureSet__ValuesEntry *ents[] = {&e1, &e2};
    e1.key = "sma_20";
    e1.value = 187.31;
    e2.key = "rsi_14";
    e2.value = NAN;
    fs.symbol = "AAPL";
    fs.n_values = 2;
    fs.values = ents;
    char *js = qb_pbjson_encode_opts(&fs.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"symbol\":\"AAPL\",\"values\":{\"sma_20\":187.31,\"rsi_14\":\"NaN\"}}");
    free(js);

    /* oneof: absent, a message member, a string member, an empty member */
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_RESUME;
    js = qb_pbjson_encode_opts(&cmd.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"kind\":\"COMMAND_KIND_RESUME\"}");
    free(js);
    cmd.params_case = QB__V1__COMMAND__PARAMS_PARAMS_JSON;
    cmd.params_json = "{\"what\":\"limits\"}";
    js = qb_pbjson_encode_opts(&cmd.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"kind\":\"COMMAND_KIND_RESUME\",\"params_json\":\"{\\\"what\\\":\\\"limits\\\"}\"}");
    free(js);
    Qb__V1__Command__KillSwitchParams ks = QB__V1__COMMAND__KILL_SWITCH_PARAMS__INIT;
    cmd.params_case = QB__V1__COMMAND__PARAMS_KILL_SWITCH;
    cmd.kill_switch = &ks;
    js = qb_pbjson_encode_opts(&cmd.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"kind\":\"COMMAND_KIND_RESUME\",\"kill_switch\":{}}");
    free(js);

    /* A oneof scalar set to its default is still present (Signal.sizing). */
    Qb__V1__Signal sig = QB__V1__SIGNAL__INIT;
    js = qb_pbjson_encode_opts(&sig.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{}");
    free(js);
    sig.sizing_case = QB__V1__SIGNAL__SIZING_TARGET_WEIGHT;
    sig.target_weight = 0;
    js = qb_pbjson_encode_opts(&sig.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"target_weight\":0}");
    Qb__V1__Signal *s2 = (Qb__V1__Signal *)decode_ok(&qb__v1__signal__descriptor, js);
    assert_int_equal(s2->sizing_case, QB__V1__SIGNAL__SIZING_TARGET_WEIGHT);
    protobuf_c_message_free_unpacked(&s2->base, NULL);
    free(js);

    /* bytes: base64 out; standard or URL-safe, padded or not, in */
    t_setup_descriptors();
    TAll tb;
    t_all_init(&tb);
    uint8_t payload[] = {0x00, 0x01, 0xfb, 0xff};
    tb.has_opt_bytes = 1;
    tb.opt_bytes.data = payload;
    tb.opt_bytes.len = sizeof(payload);
    js = qb_pbjson_encode_opts(&tb.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"opt_bytes\":\"AAH7/w==\"}");
    free(js);
    static const char *const forms[] = {"{\"opt_bytes\":\"AAH7/w==\"}", "{\"opt_bytes\":\"AAH7/w\"}",
                                        "{\"opt_bytes\":\"AAH7_w==\"}", "{\"opt_bytes\":\"AAH7_w\"}"};
    for (size_t i = 0; i < 4; i++) {
        TAll *d = (TAll *)decode_ok(&t_all_d, forms[i]);
        assert_int_equal(d->opt_bytes.len, 4);
        assert_memory_equal(d->opt_bytes.data, payload, 4);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }

    /* Unknown enum numbers (from a newer producer) print as numbers. */
    Qb__V1__ExecutionReport er = QB__V1__EXECUTION_REPORT__INIT;
    er.status = (Qb__V1__OrderStatus)99;
    er.sequence = UINT64_MAX;
    js = qb_pbjson_encode_opts(&er.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"status\":99,\"sequence\":\"18446744073709551615\"}");
    Qb__V1__ExecutionReport *er2 =
        (Qb__V1__ExecutionReport *)decode_ok(&qb__v1__execution_report__descriptor, js);
    assert_int_equal(er2->status, 99);
    protobuf_c_message_free_unpacked(&er2->base, NULL);
    free(js);

    /* Invalid UTF-8 (protobuf-c does not check it) prints as U+FFFD. */
    Qb__V1__Bar bar = QB__V1__BAR__INIT;
    bar.symbol = "A\xff" "B\xe2\x82";
    js = qb_pbjson_encode_opts(&bar.base, QB_PBJSON_OMIT_DEFAULTS);
    assert_string_equal(js, "{\"symbol\":\"A\xef\xbf\xbd" "B\xef\xbf\xbd\xef\xbf\xbd\"}");
    free(js);
}

static void test_decode_accepts(void **state) {
    /* camelCase and snake_case names, int64 as number or string, enum as
     * name or number, nulls, whitespace, exponents, numeric strings. */
    Qb__V1__ExecutionReport *er = (Qb__V1__ExecutionReport *)decode_ok(
        &qb__v1__execution_report__descriptor,
        " \n{ \"header\": {\"eventTime\": 1700000000, \"produced_time\": \"-5\", "
        "\"schemaVersion\": \"7\", \"trace_id\": null},\r\n"
        "  \"orderId\": \"o-1\", \"status\": \"ORDER_STATUS_FILLED\", \"previous_status\": 4,"
        "  \"fill_qty\": 1e3, \"fillPrice\": \"18731000000\", \"sequence\": 12, "
        "  \"reason_code\": null, \"leaves_qty\": -0 }\t");
    assert_int_equal(er->header->event_time, 1700000000);
    assert_int_equal(er->header->produced_time, -5);
    assert_int_equal(er->header->schema_version, 7);
    assert_string_equal(er->header->trace_id, "");
    assert_string_equal(er->order_id, "o-1");
    assert_int_equal(er->status, QB__V1__ORDER_STATUS__ORDER_STATUS_FILLED);
    assert_int_equal(er->previous_status, QB__V1__ORDER_STATUS__ORDER_STATUS_PARTIALLY_FILLED);
    assert_int_equal(er->fill_qty, 1000);
    assert_int_equal(er->fill_price, 18731000000LL);
    assert_int_equal(er->sequence, 12);
    assert_int_equal(er->leaves_qty, 0);
    protobuf_c_message_free_unpacked(&er->base, NULL);

    /* Extremes of int64 as strings, exactly 2^53 as a number. */
    Qb__V1__Bar *bar = (Qb__V1__Bar *)decode_ok(
        &qb__v1__bar__descriptor,
        "{\"open\":\"-9223372036854775808\",\"high\":\"9223372036854775807\","
        "\"low\":9007199254740991,\"close\":-9007199254740991,\"volume\":\"000042\"}");
    assert_true(bar->open == INT64_MIN);
    assert_true(bar->high == INT64_MAX);
    assert_true(bar->low == 9007199254740991LL);
    assert_true(bar->close == -9007199254740991LL);
    assert_int_equal(bar->volume, 42);
    protobuf_c_message_free_unpacked(&bar->base, NULL);

    /* Doubles: numbers, numeric strings, NaN/Infinity strings. */
    Qb__V1__BacktestEvent *ev = (Qb__V1__BacktestEvent *)decode_ok(
        &qb__v1__backtest_event__descriptor,
        "{\"progress\":\"0.25\",\"metrics\":{\"sharpe\":\"-Infinity\",\"cagr\":\"NaN\","
        "\"total_return\":1.5E-1,\"max_drawdown\":\"Infinity\"}}");
    assert_true(ev->progress == 0.25);
    assert_true(isinf(ev->metrics->sharpe) && ev->metrics->sharpe < 0);
    assert_true(isnan(ev->metrics->cagr));
    assert_true(ev->metrics->total_return == 0.15);
    assert_true(isinf(ev->metrics->max_drawdown) && ev->metrics->max_drawdown > 0);
    protobuf_c_message_free_unpacked(&ev->base, NULL);

    /* Nested oneof member with lists and enums inside; \u escapes. */
    Qb__V1__Command *cmd = (Qb__V1__Command *)decode_ok(
        &qb__v1__command__descriptor,
        "{\"kind\":\"COMMAND_KIND_SET_LIMITS\",\"issued_by\":\"J\\u00fcrgen \\ud83d\\ude00\","
        "\"limits\":{\"limits\":[{\"kind\":\"LIMIT_KIND_MAX_DAILY_LOSS\",\"value\":\"100000000000\"},"
        "{\"kind\":7,\"symbol\":\"AAPL\"}],\"replaceAll\":true},\"params_json\":null}");
    assert_int_equal(cmd->params_case, QB__V1__COMMAND__PARAMS_LIMITS);
    assert_string_equal(cmd->issued_by, "J\xc3\xbcrgen \xf0\x9f\x98\x80");
    assert_int_equal(cmd->limits->n_limits, 2);
    assert_int_equal(cmd->limits->limits[0]->value, 100000000000LL);
    assert_int_equal(cmd->limits->limits[1]->kind, QB__V1__LIMIT_KIND__LIMIT_KIND_MAX_DAILY_LOSS);
    assert_string_equal(cmd->limits->limits[1]->symbol, "AAPL");
    assert_true(cmd->limits->replace_all);
    protobuf_c_message_free_unpacked(&cmd->base, NULL);

    /* Input need not be NUL-terminated: only len bytes are read. */
    const char buf[] = "{\"symbol\":\"MSFT\"}GARBAGE";
    ProtobufCMessage *m = NULL;
    assert_int_equal(qb_pbjson_decode(&qb__v1__bar__descriptor, buf, 17, &m, NULL, 0), QB_OK);
    assert_string_equal(((Qb__V1__Bar *)m)->symbol, "MSFT");
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_decode_errors(void **state) {
    const ProtobufCMessageDescriptor *bar = &qb__v1__bar__descriptor;
    const ProtobufCMessageDescriptor *er = &qb__v1__execution_report__descriptor;
    const ProtobufCMessageDescriptor *cmd = &qb__v1__command__descriptor;
    const ProtobufCMessageDescriptor *fs = &qb__v1__feature_set__descriptor;

    /* unknown fields */
    EXPECT_ERR(bar, "{\"symbl\":\"X\"}", QB_ERR_INVALID, "unknown field 'symbl' in qb.v1.Bar");
    EXPECT_ERR(bar, "{\"header\":{\"event_time\":\"1\",\"foo\":1}}", QB_ERR_INVALID,
               "header: unknown field 'foo' in qb.v1.Header");
    EXPECT_ERR(bar, "{\"Symbol\":\"X\"}", QB_ERR_INVALID, "unknown field 'Symbol'");
    EXPECT_ERR(bar, "{\"\\u0001\\n\":1}", QB_ERR_INVALID, "unknown field '?\?'");

    /* wrong types, with the path */
    EXPECT_ERR(bar, "{\"header\":{\"event_time\":true}}", QB_ERR_INVALID,
               "header.event_time: expected integer, got boolean");
    EXPECT_ERR(bar, "{\"header\":{\"eventTime\":[]}}", QB_ERR_INVALID,
               "header.event_time: expected integer, got array");
    EXPECT_ERR(bar, "{\"ts\":\"abc\"}", QB_ERR_INVALID, "ts: expected integer, got string \"abc\"");
    EXPECT_ERR(bar, "{\"ts\":\"\"}", QB_ERR_INVALID, "ts: expected integer, got string \"\"");
    EXPECT_ERR(bar, "{\"ts\":\" 1\"}", QB_ERR_INVALID, "ts: expected integer");
    EXPECT_ERR(bar, "{\"ts\":\"+1\"}", QB_ERR_INVALID, "ts: expected integer");
    EXPECT_ERR(bar, "{\"ts\":\"1.0\"}", QB_ERR_INVALID, "ts: expected integer");
    EXPECT_ERR(bar, "{\"ts\":1.5}", QB_ERR_INVALID, "ts: expected integer, got 1.5");
    EXPECT_ERR(bar, "{\"symbol\":42}", QB_ERR_INVALID, "symbol: expected string, got number");
    EXPECT_ERR(bar, "{\"symbol\":{}}", QB_ERR_INVALID, "symbol: expected string, got object");
    EXPECT_ERR(bar, "{\"header\":\"x\"}", QB_ERR_INVALID,
               "header: expected object (qb.v1.Header), got string");
    EXPECT_ERR(er, "{\"status\":true}", QB_ERR_INVALID, "status: expected enum name, got boolean");
    EXPECT_ERR(er, "{\"status\":1.5}", QB_ERR_INVALID, "status: expected integer, got 1.5");
    EXPECT_ERR(er, "{\"status\":\"DONE\"}", QB_ERR_INVALID,
               "status: unknown value \"DONE\" of enum qb.v1.OrderStatus (expected one of "
               "ORDER_STATUS_UNSPECIFIED, ORDER_STATUS_NEW,");
    EXPECT_ERR(er, "{\"status\":\"order_status_filled\"}", QB_ERR_INVALID, "unknown value");
    EXPECT_ERR(er, "{\"status\":2147483648}", QB_ERR_OVERFLOW, "status: number out of range for enum");
    EXPECT_ERR(&qb__v1__signal__descriptor, "{\"confidence\":\"high\"}", QB_ERR_INVALID,
               "confidence: expected number, got string \"high\"");
    EXPECT_ERR(&qb__v1__signal__descriptor, "{\"confidence\":\"nan\"}", QB_ERR_INVALID,
               "confidence: expected number");
    EXPECT_ERR(&qb__v1__signal__descriptor, "{\"confidence\":\"0x10\"}", QB_ERR_INVALID,
               "confidence: expected number");
    EXPECT_ERR(&qb__v1__signal__descriptor, "{\"confidence\":1e999}", QB_ERR_OVERFLOW,
               "confidence: number out of range for double");
    EXPECT_ERR(&qb__v1__signal__descriptor, "{\"confidence\":\"1e999\"}", QB_ERR_OVERFLOW,
               "confidence: 1e999 out of range for double");
    EXPECT_ERR(&qb__v1__command__kill_switch_params__descriptor, "{\"keep_open_orders\":1}",
               QB_ERR_INVALID, "keep_open_orders: expected boolean, got number");
    EXPECT_ERR(&qb__v1__command__kill_switch_params__descriptor, "{\"keep_open_orders\":\"true\"}",
               QB_ERR_INVALID, "keep_open_orders: expected boolean, got string");

    /* integer ranges */
    EXPECT_ERR(bar, "{\"ts\":\"9223372036854775808\"}", QB_ERR_OVERFLOW,
               "ts: 9223372036854775808 out of range for int64");
    EXPECT_ERR(bar, "{\"ts\":\"-9223372036854775809\"}", QB_ERR_OVERFLOW,
               "ts: -9223372036854775809 out of range for int64");
    EXPECT_ERR(bar, "{\"ts\":\"99999999999999999999999999\"}", QB_ERR_OVERFLOW, "out of range for int64");
    EXPECT_ERR(bar, "{\"ts\":1e19}", QB_ERR_OVERFLOW, "ts: number out of range for int64");
    EXPECT_ERR(bar, "{\"ts\":9223372036854775808}", QB_ERR_OVERFLOW, "ts: number out of range for int64");
    EXPECT_ERR(bar, "{\"ts\":9007199254740992}", QB_ERR_RANGE,
               "ts: integer number beyond 2^53 is not exact in JSON; write it as a string");
    EXPECT_ERR(bar, "{\"ts\":1700000000000000000}", QB_ERR_RANGE,
               "write it as a string, e.g. \"1700000000000000000\"");
    EXPECT_ERR(bar, "{\"header\":{\"schema_version\":-1}}", QB_ERR_OVERFLOW,
               "header.schema_version: number out of range for uint32");
    EXPECT_ERR(bar, "{\"header\":{\"schema_version\":\"4294967296\"}}", QB_ERR_OVERFLOW,
               "header.schema_version: 4294967296 out of range for uint32");
    EXPECT_ERR(bar, "{\"header\":{\"schema_version\":\"-1\"}}", QB_ERR_OVERFLOW, "out of range for uint32");
    EXPECT_ERR(er, "{\"sequence\":\"18446744073709551616\"}", QB_ERR_OVERFLOW, "out of range for uint64");
    EXPECT_ERR(er, "{\"sequence\":-1}", QB_ERR_OVERFLOW, "sequence: number out of range for uint64");

    /* duplicates and oneofs */
    EXPECT_ERR(bar, "{\"symbol\":\"A\",\"symbol\":\"B\"}", QB_ERR_INVALID, "symbol: field given twice");
    EXPECT_ERR(bar, "{\"header\":{\"event_time\":\"1\",\"eventTime\":\"2\"}}", QB_ERR_INVALID,
               "header.event_time: field given twice");
    EXPECT_ERR(bar, "{\"symbol\":null,\"symbol\":\"B\"}", QB_ERR_INVALID, "field given twice");
    EXPECT_ERR(cmd, "{\"strategy\":{},\"params_json\":\"{}\"}", QB_ERR_INVALID,
               "params_json: only one of a oneof may be set, 'strategy' is set too");
    EXPECT_ERR(cmd, "{\"killSwitch\":{},\"cancel_order\":{\"order_id\":\"o\"}}", QB_ERR_INVALID,
               "cancel_order: only one of a oneof may be set, 'kill_switch' is set too");

    /* lists and maps */
    EXPECT_ERR(cmd, "{\"strategy\":{\"symbols\":[\"A\",1]}}", QB_ERR_INVALID,
               "strategy.symbols[1]: expected string, got number");
    EXPECT_ERR(cmd, "{\"strategy\":{\"symbols\":[\"A\",null]}}", QB_ERR_INVALID,
               "strategy.symbols[1]: null is not allowed in a list");
    EXPECT_ERR(cmd, "{\"strategy\":{\"symbols\":\"A\"}}", QB_ERR_INVALID,
               "strategy.symbols: expected array, got string");
    EXPECT_ERR(cmd, "{\"limits\":{\"limits\":[{\"kind\":\"LIMIT_KIND_MAX_LEVERAGE\"},{\"kind\":\"X\"}]}}",
               QB_ERR_INVALID, "limits.limits[1].kind: unknown value \"X\" of enum qb.v1.LimitKind");
    EXPECT_ERR(fs, "{\"values\":{\"rsi\":\"x\"}}", QB_ERR_INVALID,
               "values[\"rsi\"]: expected number, got string \"x\"");
    EXPECT_ERR(fs, "{\"values\":{\"a\":1,\"b\":2,\"a\":3}}", QB_ERR_INVALID,
               "values[\"a\"]: duplicate map key");
    EXPECT_ERR(fs, "{\"values\":{\"a\":null}}", QB_ERR_INVALID, "null is not allowed as a map value");
    EXPECT_ERR(fs, "{\"values\":[1,2]}", QB_ERR_INVALID, "values: expected object (map), got array");
    EXPECT_ERR(fs, "{\"values\":{\"\\udbff\\udfff\":[]}}", QB_ERR_INVALID,
               "values[\"?\?\?\?\"]: expected number, got array"); /* only ASCII is quoted */

    /* bytes and UTF-8 */
    const ProtobufCMessageDescriptor *dl = &t_all_d;
    EXPECT_ERR(dl, "{\"opt_bytes\":\"@@@@\"}", QB_ERR_INVALID, "opt_bytes: invalid base64 character at offset 0");
    EXPECT_ERR(dl, "{\"opt_bytes\":\"QUFQT\"}", QB_ERR_INVALID, "opt_bytes: invalid base64 (bad length)");
    EXPECT_ERR(dl, "{\"opt_bytes\":\"QQ=\"}", QB_ERR_INVALID, "opt_bytes: invalid base64 (bad length)");
    EXPECT_ERR(dl, "{\"opt_bytes\":\"Q QQ\"}", QB_ERR_INVALID, "invalid base64 character at offset 1");
    EXPECT_ERR(dl, "{\"opt_bytes\":7}", QB_ERR_INVALID, "opt_bytes: expected base64 string, got number");
    EXPECT_ERR(bar, "{\"symbol\":\"\xff\"}", QB_ERR_INVALID, "symbol: invalid UTF-8 in string");
    EXPECT_ERR(bar, "{\"symbol\":\"\xed\xa0\x80\"}", QB_ERR_INVALID, "invalid UTF-8"); /* surrogate */
    EXPECT_ERR(bar, "{\"symbol\":\"\xc0\xaf\"}", QB_ERR_INVALID, "invalid UTF-8");     /* overlong */
    EXPECT_ERR(fs, "{\"values\":{\"\xfe\":1}}", QB_ERR_INVALID, "values[\"?\"]: invalid UTF-8 in map key");

    /* malformed JSON and wrong top level */
    EXPECT_ERR(bar, "{\"symbol\":", QB_ERR_PARSE, "malformed JSON near line 1");
    EXPECT_ERR(bar, "{\"symbol\":\"A\"} x", QB_ERR_PARSE, "malformed JSON near line 1 column 16");
    EXPECT_ERR(bar, "{\n\"symbol\" \"A\"}", QB_ERR_PARSE, "malformed JSON near line 2");
    EXPECT_ERR(bar, "{'symbol':'A'}", QB_ERR_PARSE, "malformed JSON");
    EXPECT_ERR(bar, "{\"symbol\":\"A\",}", QB_ERR_PARSE, "malformed JSON");
    EXPECT_ERR(bar, "{\"symbol\":\"\\x\"}", QB_ERR_PARSE, "malformed JSON");
    EXPECT_ERR(bar, "{\"symbol\":\"\\ud800\"}", QB_ERR_PARSE, "malformed JSON"); /* lone surrogate */
    EXPECT_ERR(bar, "", QB_ERR_PARSE, "malformed JSON: empty input");
    EXPECT_ERR(bar, " \n\t", QB_ERR_PARSE, "malformed JSON: empty input");
    expect_err(bar, "{\"symbol\":\"A\0\"}", 15, QB_ERR_PARSE, "malformed JSON: NUL byte at offset 12");
    EXPECT_ERR(bar, "[]", QB_ERR_INVALID, "expected object (qb.v1.Bar), got array");
    EXPECT_ERR(bar, "null", QB_ERR_INVALID, "expected object (qb.v1.Bar), got null");
    EXPECT_ERR(bar, "\"Bar\"", QB_ERR_INVALID, "got string");
    char deep[4200];
    memset(deep, '[', 2100);
    memset(deep + 2100, ']', 2100);
    expect_err(bar, deep, 4200, QB_ERR_PARSE, "malformed JSON"); /* cJSON's nesting limit */

    /* arguments */
    ProtobufCMessage *m = (ProtobufCMessage *)0x1;
    char err[8];
    assert_int_equal(qb_pbjson_decode(NULL, "{}", 2, &m, err, sizeof(err)), QB_ERR_INVALID);
    assert_null(m);
    assert_int_equal(qb_pbjson_decode(bar, NULL, 2, &m, err, sizeof(err)), QB_ERR_INVALID);
    assert_int_equal(qb_pbjson_decode(bar, "{}", 2, NULL, err, sizeof(err)), QB_ERR_INVALID);
    assert_int_equal(qb_pbjson_from_cjson(bar, NULL, &m, NULL, 0), QB_ERR_INVALID);
    /* a short errstr is truncated and terminated; a NULL one is fine */
    assert_int_equal(qb_pbjson_decode(bar, "{\"symbl\":1}", 11, &m, err, sizeof(err)), QB_ERR_INVALID);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(qb_pbjson_decode(bar, "{\"symbl\":1}", 11, &m, NULL, 0), QB_ERR_INVALID);
    assert_null(m);
    /* an empty object is fine */
    assert_int_equal(qb_pbjson_decode(bar, "{}", 2, &m, err, sizeof(err)), QB_OK);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* Partial failures deep inside lists, maps and oneofs must free everything
 * (ASan's leak checker runs this under SAN=1). */
static void test_decode_error_cleanup(void **state) {
    static const char *const inputs[] = {
        "{\"header\":{\"producer\":\"x\"},\"values\":{\"a\":1,\"b\":2,\"c\":\"bad\"}}",
        "{\"header\":{\"producer\":\"x\"},\"bar\":{\"symbol\":\"A\",\"header\":{\"trace_id\":1}}}",
    };
    for (size_t i = 0; i < 2; i++)
        expect_err(&qb__v1__feature_set__descriptor, inputs[i], strlen(inputs[i]),
                   QB_ERR_INVALID, "");
    EXPECT_ERR(&qb__v1__command__descriptor,
               "{\"command_id\":\"c\",\"alert_rule\":{\"rule_id\":\"r\",\"targets\":["
               "{\"channel\":\"NOTIFY_CHANNEL_SLACK\",\"address\":\"u\"},"
               "{\"channel\":\"NOTIFY_CHANNEL_EMAIL\",\"address\":5}]}}",
               QB_ERR_INVALID, "alert_rule.targets[1].address: expected string, got number");
    EXPECT_ERR(&qb__v1__command__descriptor,
               "{\"params_json\":\"x\",\"strategy\":{\"symbols\":[\"A\"]}}", QB_ERR_INVALID,
               "strategy: only one of a oneof");
    EXPECT_ERR(&qb__v1__backtest_request__descriptor,
               "{\"grid\":[{\"name\":\"fast\",\"values\":[1,2,3]},{\"name\":\"slow\",\"values\":[4,\"x\"]}]}",
               QB_ERR_INVALID, "grid[1].values[1]: expected number, got string \"x\"");
    t_setup_descriptors();
    EXPECT_ERR(&t_all_d, "{\"opt_bytes\":\"!\"}", QB_ERR_INVALID, "opt_bytes: invalid base64");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_find),
        cmocka_unit_test(test_registry_matches_proto_files),
        cmocka_unit_test(test_header_init),
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_through_wire),
        cmocka_unit_test(test_roundtrip_all_scalar_types),
        cmocka_unit_test(test_encode_all_scalar_types_exact),
        cmocka_unit_test(test_encode_bar_exact),
        cmocka_unit_test(test_encode_maps_oneofs_bytes),
        cmocka_unit_test(test_decode_accepts),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_error_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
