/* qb_pbjson.c — descriptor-driven protobuf-c <-> JSON (see qb_pbjson.h for
 * the mapping).
 *
 * Encoding walks the message by its descriptor and builds a cJSON tree;
 * numbers are inserted as raw text (cJSON_CreateRaw) so that their
 * formatting is ours: shortest round-tripping floats, exact integers.
 *
 * Decoding parses with cJSON, then walks the tree against the descriptor and
 * fills a message allocated with malloc() exactly like protobuf-c's unpack
 * with the default allocator: every string, bytes buffer, repeated array
 * and sub-message is its own malloc() block, and unset strings keep the
 * generated default pointer. The message is consistent after every step
 * (array counts are raised only after the element is complete, a oneof case
 * is set only after its member), so on any error the partly built message is
 * released with protobuf_c_message_free_unpacked() and nothing leaks. Each
 * helper that fails leaves its destination untouched. */
#include "proto/qb_pbjson.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PBJ_MAX_DEPTH 64     /* message nesting, both directions */
#define PBJ_SHOW_MAX 48      /* bytes of user text quoted in an error */
#define PBJ_2P53 9007199254740992.0 /* doubles are exact integers below this */
/* Doubles below this round to a finite float (FLT_MAX + half its ulp). */
#define PBJ_FLT_LIMIT ((double)FLT_MAX + 0x1p103)

#define PBJ_AT(m, off) ((void *)((char *)(m) + (off)))
#define PBJ_CAT(m, off) ((const void *)((const char *)(m) + (off)))

/* ---- small helpers shared by both directions ---------------------------- */

static const char *pbj_type_name(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: return "int32";
    case PROTOBUF_C_TYPE_SINT32: return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
    case PROTOBUF_C_TYPE_INT64: return "int64";
    case PROTOBUF_C_TYPE_SINT64: return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32: return "uint32";
    case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
    case PROTOBUF_C_TYPE_UINT64: return "uint64";
    case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT: return "float";
    case PROTOBUF_C_TYPE_DOUBLE: return "double";
    case PROTOBUF_C_TYPE_BOOL: return "bool";
    case PROTOBUF_C_TYPE_ENUM: return "enum";
    case PROTOBUF_C_TYPE_STRING: return "string";
    case PROTOBUF_C_TYPE_BYTES: return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE: return "message";
    }
    return "?";
}

/* Size of one element of a repeated field of type t, as protobuf-c lays it
 * out. */
static size_t pbj_elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static int pbj_is_map_key_type(ProtobufCType t) {
    return t != PROTOBUF_C_TYPE_FLOAT && t != PROTOBUF_C_TYPE_DOUBLE &&
           t != PROTOBUF_C_TYPE_ENUM && t != PROTOBUF_C_TYPE_BYTES &&
           t != PROTOBUF_C_TYPE_MESSAGE;
}

/* Is f (of message d) a map field? protoc turns `map<K, V> foo_bar = n;`
 * into `repeated FooBarEntry foo_bar = n;` with the nested message
 * d.FooBarEntry { K key = 1; V value = 2; }; protobuf-c keeps no map flag,
 * so recognize that shape. */
static int pbj_is_map(const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f) {
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (!e || e->n_fields != 2) return 0;
    const ProtobufCFieldDescriptor *k = &e->fields[0], *v = &e->fields[1];
    if (k->id != 1 || strcmp(k->name, "key") || v->id != 2 || strcmp(v->name, "value"))
        return 0;
    if (k->label == PROTOBUF_C_LABEL_REPEATED || v->label == PROTOBUF_C_LABEL_REPEATED ||
        ((k->flags | v->flags) & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        !pbj_is_map_key_type(k->type))
        return 0;
    size_t plen = strlen(d->name);
    if (strncmp(e->name, d->name, plen) != 0 || e->name[plen] != '.') return 0;
    /* e's short name must be CamelCase(f->name) + "Entry". */
    const char *s = e->name + plen + 1;
    int cap = 1;
    for (const char *n = f->name; *n; n++) {
        if (*n == '_') {
            cap = 1;
            continue;
        }
        char c = *n;
        if (cap && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        cap = 0;
        if (*s++ != c) return 0;
    }
    return strcmp(s, "Entry") == 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t pbj_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

static int pbj_utf8_valid(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    while (n) {
        size_t l = pbj_utf8_seq(s, n);
        if (!l) return 0;
        s += l;
        n -= l;
    }
    return 1;
}

/* ---- encoding ------------------------------------------------------------ */

/* A malloc'd copy of str with every invalid UTF-8 byte replaced by U+FFFD. */
static char *pbj_utf8_sanitize(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out) return NULL;
    while (n) {
        size_t l = pbj_utf8_seq(s, n);
        if (l) {
            memcpy(o, s, l);
            o += l;
        } else {
            l = 1;
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        s += l;
        n -= l;
    }
    *o = '\0';
    return out;
}

/* A malloc'd copy of str that is valid UTF-8 (NULL reads as ""). */
static char *pbj_text_dup(const char *str) {
    if (!str) str = "";
    if (!pbj_utf8_valid(str)) return pbj_utf8_sanitize(str);
    return strdup(str);
}

static cJSON *pbj_enc_string(const char *str) {
    if (str && pbj_utf8_valid(str)) return cJSON_CreateString(str);
    char *fixed = pbj_text_dup(str);
    if (!fixed) return NULL;
    cJSON *j = cJSON_CreateString(fixed);
    free(fixed);
    return j;
}

static cJSON *pbj_enc_bytes(const ProtobufCBinaryData *b) {
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = b->data ? b->len : 0;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    const uint8_t *s = b->data;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    cJSON *j = cJSON_CreateString(out);
    free(out);
    return j;
}

/* Shortest decimal text that reads back (as the decoder reads it: strtod,
 * then a cast for float) to the same value. */
static cJSON *pbj_enc_real(double v, int is_float) {
    if (isnan(v)) return cJSON_CreateString("NaN");
    if (isinf(v)) return cJSON_CreateString(v > 0 ? "Infinity" : "-Infinity");
    char buf[40];
    if (is_float) {
        float f = (float)v;
        for (int p = 1; p <= 9; p++) {
            snprintf(buf, sizeof(buf), "%.*g", p, (double)f);
            if ((float)strtod(buf, NULL) == f) break;
        }
    } else {
        for (int p = 15; p <= 17; p++) {
            snprintf(buf, sizeof(buf), "%.*g", p, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *pbj_enc_message(const ProtobufCMessage *m, unsigned flags, int depth);

/* One value of type t (descriptor td for enums and messages) stored at p. */
static cJSON *pbj_enc_value(ProtobufCType t, const void *td, const void *p,
                            unsigned flags, int depth) {
    char buf[32];
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRId32, v);
        return cJSON_CreateRaw(buf);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRIu32, v);
        return cJSON_CreateRaw(buf);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return cJSON_CreateString(buf);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return cJSON_CreateString(buf);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v;
        memcpy(&v, p, sizeof(v));
        return pbj_enc_real(v, 1);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof(v));
        return pbj_enc_real(v, 0);
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        memcpy(&v, p, sizeof(v));
        return cJSON_CreateBool(v != 0);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        const ProtobufCEnumValue *ev =
            td ? protobuf_c_enum_descriptor_get_value(td, v) : NULL;
        if (ev) return cJSON_CreateString(ev->name);
        snprintf(buf, sizeof(buf), "%" PRId32, v);
        return cJSON_CreateRaw(buf);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return pbj_enc_string(s);
    }
    case PROTOBUF_C_TYPE_BYTES:
        return pbj_enc_bytes(p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub;
        memcpy(&sub, p, sizeof(sub));
        if (!sub) return cJSON_CreateObject(); /* unset in a list or map */
        return pbj_enc_message(sub, flags, depth + 1);
    }
    }
    return NULL;
}

/* Would protobuf-c consider the implicit-presence value at p its default? */
static int pbj_is_default(const ProtobufCFieldDescriptor *f, const void *p) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT: {
        float v;
        memcpy(&v, p, sizeof(v));
        return v == 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof(v));
        return v == 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;
        memcpy(&b, p, sizeof(b));
        return b.len == 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const void *s;
        memcpy(&s, p, sizeof(s));
        return s == NULL;
    }
    default: {
        static const unsigned char zero[8];
        return memcmp(p, zero, pbj_elem_size(f->type)) == 0;
    }
    }
}

/* Is the singular field f of m present, as protobuf-c's pack sees it? */
static int pbj_present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                       unsigned flags) {
    const void *p = PBJ_CAT(m, f->offset);
    int ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
    const void *ptr = NULL;
    if (ptr_type) memcpy(&ptr, p, sizeof(ptr));
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which;
        memcpy(&which, PBJ_CAT(m, f->quantifier_offset), sizeof(which));
        if (which != f->id) return 0;
        return !ptr_type || (ptr != NULL && ptr != f->default_value);
    }
    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return 1;
    case PROTOBUF_C_LABEL_OPTIONAL: {
        if (ptr_type) return ptr != NULL && ptr != f->default_value;
        protobuf_c_boolean has;
        memcpy(&has, PBJ_CAT(m, f->quantifier_offset), sizeof(has));
        return has != 0;
    }
    case PROTOBUF_C_LABEL_NONE:
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) return ptr != NULL;
        return !(flags & QB_PBJSON_OMIT_DEFAULTS) || !pbj_is_default(f, p);
    case PROTOBUF_C_LABEL_REPEATED:
        break;
    }
    return 0;
}

/* Add v to obj under the field name; frees v on failure. */
static int pbj_add_field(cJSON *obj, const char *name, cJSON *v, unsigned flags) {
    int ok;
    if (flags & QB_PBJSON_CAMEL_CASE) {
        char *camel = malloc(strlen(name) + 1), *o = camel;
        if (!camel) {
            cJSON_Delete(v);
            return 0;
        }
        int cap = 0;
        for (const char *n = name; *n; n++) {
            if (*n == '_') {
                cap = 1;
                continue;
            }
            *o++ = (cap && *n >= 'a' && *n <= 'z') ? (char)(*n - 'a' + 'A') : *n;
            cap = 0;
        }
        *o = '\0';
        ok = cJSON_AddItemToObject(obj, camel, v);
        free(camel);
    } else {
        ok = cJSON_AddItemToObjectCS(obj, name, v); /* descriptor names are static */
    }
    if (!ok) cJSON_Delete(v);
    return ok;
}

static cJSON *pbj_enc_array(const ProtobufCFieldDescriptor *f, const void *arr, size_t n,
                            unsigned flags, int depth) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    size_t esz = pbj_elem_size(f->type);
    for (size_t i = 0; i < n; i++) {
        cJSON *v = pbj_enc_value(f->type, f->descriptor, (const char *)arr + i * esz,
                                 flags, depth);
        if (!v || !cJSON_AddItemToArray(a, v)) {
            cJSON_Delete(v);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* The JSON object key of map entry e (malloc'd). */
static char *pbj_map_key_text(const ProtobufCFieldDescriptor *kf, const ProtobufCMessage *e) {
    const void *p = PBJ_CAT(e, kf->offset);
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return pbj_text_dup(s);
    }
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        protobuf_c_boolean b;
        memcpy(&b, p, sizeof(b));
        return strdup(b ? "true" : "false");
    }
    char buf[32];
    switch (kf->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRId32, v);
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRIu32, v);
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        break;
    }
    default: { /* uint64, fixed64 (pbj_is_map admits nothing else) */
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        break;
    }
    }
    return strdup(buf);
}

typedef struct pbj_keyref_s {
    const char *key;
    size_t idx;
} pbj_keyref_t;

static int pbj_keyref_cmp(const void *a, const void *b) {
    const pbj_keyref_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static cJSON *pbj_enc_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *ents,
                          size_t n, unsigned flags, int depth) {
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    cJSON *obj = cJSON_CreateObject();
    char **keys = calloc(n ? n : 1, sizeof(*keys));
    unsigned char *skip = calloc(n ? n : 1, 1);
    pbj_keyref_t *refs = NULL;
    if (!obj || !keys || !skip) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!ents[i]) { /* cannot come from unpack; tolerate */
            skip[i] = 1;
            continue;
        }
        if (!(keys[i] = pbj_map_key_text(kf, ents[i]))) goto fail;
    }
    if (n > 1) { /* a key repeated on the wire: the last entry wins */
        if (!(refs = malloc(n * sizeof(*refs)))) goto fail;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!skip[i]) refs[k++] = (pbj_keyref_t){keys[i], i};
        qsort(refs, k, sizeof(*refs), pbj_keyref_cmp);
        for (size_t i = 0; i + 1 < k; i++)
            if (strcmp(refs[i].key, refs[i + 1].key) == 0) skip[refs[i].idx] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (skip[i]) continue;
        cJSON *v = pbj_enc_value(vf->type, vf->descriptor, PBJ_CAT(ents[i], vf->offset),
                                 flags, depth);
        if (!v) goto fail;
        if (!cJSON_AddItemToObject(obj, keys[i], v)) {
            cJSON_Delete(v);
            goto fail;
        }
    }
    goto done;
fail:
    cJSON_Delete(obj);
    obj = NULL;
done:
    if (keys)
        for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
    free(skip);
    free(refs);
    return obj;
}

static cJSON *pbj_enc_message(const ProtobufCMessage *m, unsigned flags, int depth) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth >= PBJ_MAX_DEPTH || !d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return NULL;
    cJSON *obj = cJSON_CreateObject();
    if (!obj) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        cJSON *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            const void *arr;
            memcpy(&n, PBJ_CAT(m, f->quantifier_offset), sizeof(n));
            memcpy(&arr, PBJ_CAT(m, f->offset), sizeof(arr));
            if (!arr) n = 0;
            if (n == 0 && (flags & QB_PBJSON_OMIT_DEFAULTS)) continue;
            if (pbj_is_map(d, f))
                v = pbj_enc_map(f, arr, n, flags, depth);
            else
                v = pbj_enc_array(f, arr, n, flags, depth);
        } else {
            if (!pbj_present(f, m, flags)) continue;
            v = pbj_enc_value(f->type, f->descriptor, PBJ_CAT(m, f->offset), flags, depth);
        }
        if (!v || !pbj_add_field(obj, f->name, v, flags)) {
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

cJSON *qb_pbjson_to_cjson(const ProtobufCMessage *m, unsigned flags) {
    if (!m) return NULL;
    return pbj_enc_message(m, flags & ~QB_PBJSON_PRETTY, 0);
}

char *qb_pbjson_encode_opts(const ProtobufCMessage *m, unsigned flags) {
    cJSON *j = qb_pbjson_to_cjson(m, flags);
    if (!j) return NULL;
    char *s = (flags & QB_PBJSON_PRETTY) ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

char *qb_pbjson_encode(const ProtobufCMessage *m) {
    return qb_pbjson_encode_opts(m, 0);
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct pbj_dec_s {
    char *errstr;
    size_t errstr_size;
    qb_err_t err;    /* first error */
    int depth;       /* message nesting */
    size_t plen;     /* strlen(path) */
    char path[256];  /* JSON path of the value being decoded */
} pbj_dec_t;

/* Record the first error, prefixed by the current path. */
static qb_err_t pbj_fail(pbj_dec_t *c, qb_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static qb_err_t pbj_fail(pbj_dec_t *c, qb_err_t err, const char *fmt, ...) {
    if (c->err != QB_OK) return c->err;
    c->err = err;
    if (c->errstr && c->errstr_size) {
        char msg[384];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (c->plen)
            snprintf(c->errstr, c->errstr_size, "%s: %s", c->path, msg);
        else
            snprintf(c->errstr, c->errstr_size, "%s", msg);
    }
    return err;
}

/* Append to the path; returns the length to restore with pbj_pop(). */
static size_t pbj_push(pbj_dec_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t pbj_push(pbj_dec_t *c, const char *fmt, ...) {
    size_t saved = c->plen;
    size_t room = sizeof(c->path) - c->plen;
    if (room > 1) {
        va_list ap;
        va_start(ap, fmt);
        int r = vsnprintf(c->path + c->plen, room, fmt, ap);
        va_end(ap);
        if (r > 0) c->plen += (size_t)r < room ? (size_t)r : room - 1;
    }
    return saved;
}

static void pbj_pop(pbj_dec_t *c, size_t saved) {
    c->plen = saved;
    c->path[saved] = '\0';
}

/* User text made safe to quote in an error: printable ASCII, shortened. */
static const char *pbj_show(const char *s, char buf[PBJ_SHOW_MAX + 4]) {
    size_t i = 0;
    if (!s) s = "";
    for (; s[i] && i < PBJ_SHOW_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static const char *pbj_kind(const cJSON *j) {
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "boolean";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsObject(j)) return "object";
    return "raw JSON";
}

static const char *pbj_str(const cJSON *j) {
    return j->valuestring ? j->valuestring : "";
}

static int pbj_is_json_number(const char *s);

/* qb_pbjson_to_cjson() trees hold numbers as raw text (cJSON_Raw); the text
 * of such a number, or NULL. */
static const char *pbj_raw_number(const cJSON *j) {
    return cJSON_IsRaw(j) && j->valuestring && pbj_is_json_number(j->valuestring)
               ? j->valuestring
               : NULL;
}

/* A raw number without fraction or exponent: read it exactly, as text. */
static int pbj_raw_is_integer(const char *raw) {
    return raw && !strpbrk(raw, ".eE");
}

/* Decimal integer text "-?[0-9]+": 1 ok, 0 malformed, -1 magnitude beyond
 * uint64. canonical additionally refuses leading zeros, "+" and "-0". */
static int pbj_parse_dec(const char *s, int canonical, int *neg, uint64_t *mag) {
    *neg = 0;
    *mag = 0;
    if (*s == '-') {
        *neg = 1;
        s++;
    }
    if (*s < '0' || *s > '9') return 0;
    if (canonical && s[0] == '0' && (s[1] || *neg)) return 0;
    uint64_t v = 0;
    int over = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        unsigned dgt = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - dgt) / 10) over = 1;
        v = v * 10 + dgt;
    }
    *mag = v;
    return over ? -1 : 1;
}

/* An integer of a signed type with range [lo, hi] from a JSON number or
 * string. */
static qb_err_t pbj_get_int(pbj_dec_t *c, const cJSON *j, int64_t lo, int64_t hi,
                            const char *tname, int canonical, int64_t *out) {
    char show[PBJ_SHOW_MAX + 4];
    const char *raw = pbj_raw_number(j);
    if (cJSON_IsNumber(j) || (raw && !pbj_raw_is_integer(raw))) {
        double d = raw ? strtod(raw, NULL) : j->valuedouble;
        if (!isfinite(d) || d < (double)lo || d >= (double)hi + 1.0)
            return pbj_fail(c, QB_ERR_OVERFLOW, "number out of range for %s", tname);
        if (d != trunc(d))
            return pbj_fail(c, QB_ERR_INVALID, "expected integer, got %.17g", d);
        if (fabs(d) >= PBJ_2P53)
            return pbj_fail(c, QB_ERR_RANGE,
                            "integer number beyond 2^53 is not exact in JSON; "
                            "write it as a string, e.g. \"%.0f\"", d);
        *out = (int64_t)d;
        return QB_OK;
    }
    if (!cJSON_IsString(j) && !raw)
        return pbj_fail(c, QB_ERR_INVALID, "expected integer, got %s", pbj_kind(j));
    int neg;
    uint64_t mag;
    int r = pbj_parse_dec(pbj_str(j), canonical, &neg, &mag);
    if (r == 0)
        return pbj_fail(c, QB_ERR_INVALID, "expected integer, got string \"%s\"",
                        pbj_show(pbj_str(j), show));
    if (r < 0 || (neg && mag > (uint64_t)INT64_MAX + 1) || (!neg && mag > (uint64_t)INT64_MAX))
        return pbj_fail(c, QB_ERR_OVERFLOW, "%s out of range for %s",
                        pbj_show(pbj_str(j), show), tname);
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* two's complement */
    if (v < lo || v > hi)
        return pbj_fail(c, QB_ERR_OVERFLOW, "%s out of range for %s",
                        pbj_show(pbj_str(j), show), tname);
    *out = v;
    return QB_OK;
}

/* An integer of an unsigned type with range [0, hi]. */
static qb_err_t pbj_get_uint(pbj_dec_t *c, const cJSON *j, uint64_t hi, const char *tname,
                             int canonical, uint64_t *out) {
    char show[PBJ_SHOW_MAX + 4];
    const char *raw = pbj_raw_number(j);
    if (cJSON_IsNumber(j) || (raw && !pbj_raw_is_integer(raw))) {
        double d = raw ? strtod(raw, NULL) : j->valuedouble;
        if (!isfinite(d) || d < 0 || d >= (double)hi + 1.0)
            return pbj_fail(c, QB_ERR_OVERFLOW, "number out of range for %s", tname);
        if (d != trunc(d))
            return pbj_fail(c, QB_ERR_INVALID, "expected integer, got %.17g", d);
        if (d >= PBJ_2P53)
            return pbj_fail(c, QB_ERR_RANGE,
                            "integer number beyond 2^53 is not exact in JSON; "
                            "write it as a string, e.g. \"%.0f\"", d);
        *out = (uint64_t)d;
        return QB_OK;
    }
    if (!cJSON_IsString(j) && !raw)
        return pbj_fail(c, QB_ERR_INVALID, "expected integer, got %s", pbj_kind(j));
    int neg;
    uint64_t mag;
    int r = pbj_parse_dec(pbj_str(j), canonical, &neg, &mag);
    if (r == 0)
        return pbj_fail(c, QB_ERR_INVALID, "expected integer, got string \"%s\"",
                        pbj_show(pbj_str(j), show));
    if (r < 0 || (neg && mag != 0) || mag > hi)
        return pbj_fail(c, QB_ERR_OVERFLOW, "%s out of range for %s",
                        pbj_show(pbj_str(j), show), tname);
    *out = mag;
    return QB_OK;
}

/* Is s a JSON number ("-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")? */
static int pbj_is_json_number(const char *s) {
    if (*s == '-') s++;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9') s++;
    } else {
        return 0;
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == '\0';
}

static qb_err_t pbj_get_real(pbj_dec_t *c, const cJSON *j, int is_float, double *out) {
    const char *tname = is_float ? "float" : "double";
    char show[PBJ_SHOW_MAX + 4];
    double d;
    const char *raw = pbj_raw_number(j);
    if (cJSON_IsNumber(j) || raw) {
        d = raw ? strtod(raw, NULL) : j->valuedouble;
        if (!isfinite(d))
            return pbj_fail(c, QB_ERR_OVERFLOW, "number out of range for %s", tname);
    } else if (cJSON_IsString(j)) {
        const char *s = pbj_str(j);
        if (strcmp(s, "NaN") == 0) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            d = -INFINITY;
        } else if (pbj_is_json_number(s)) {
            d = strtod(s, NULL);
            if (!isfinite(d))
                return pbj_fail(c, QB_ERR_OVERFLOW, "%s out of range for %s",
                                pbj_show(s, show), tname);
        } else {
            return pbj_fail(c, QB_ERR_INVALID, "expected number, got string \"%s\"",
                            pbj_show(s, show));
        }
    } else {
        return pbj_fail(c, QB_ERR_INVALID, "expected number, got %s", pbj_kind(j));
    }
    if (is_float && isfinite(d) && fabs(d) >= PBJ_FLT_LIMIT)
        return pbj_fail(c, QB_ERR_OVERFLOW, "%.9g out of range for float", d);
    *out = d;
    return QB_OK;
}

static qb_err_t pbj_get_enum(pbj_dec_t *c, const cJSON *j, const ProtobufCEnumDescriptor *ed,
                             int32_t *out) {
    if (cJSON_IsNumber(j) || pbj_raw_number(j)) {
        int64_t v;
        qb_err_t err = pbj_get_int(c, j, INT32_MIN, INT32_MAX, "enum", 0, &v);
        if (err) return err;
        *out = (int32_t)v;
        return QB_OK;
    }
    if (!cJSON_IsString(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected enum name, got %s", pbj_kind(j));
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, pbj_str(j));
    if (!ev) {
        /* List the valid names, as many as fit. */
        char names[240];
        size_t n = 0;
        names[0] = '\0';
        for (unsigned i = 0; i < ed->n_values; i++) {
            size_t need = strlen(ed->values[i].name) + 2;
            if (n + need + 5 > sizeof(names)) {
                memcpy(names + n, ", ...", 6);
                break;
            }
            n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
                                  ed->values[i].name);
        }
        char show[PBJ_SHOW_MAX + 4];
        return pbj_fail(c, QB_ERR_INVALID, "unknown value \"%s\" of enum %s (expected one of %s)",
                        pbj_show(pbj_str(j), show), ed->name, names);
    }
    *out = ev->value;
    return QB_OK;
}

static int pbj_b64_digit(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

static qb_err_t pbj_get_bytes(pbj_dec_t *c, const cJSON *j, ProtobufCBinaryData *out) {
    if (!cJSON_IsString(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected base64 string, got %s", pbj_kind(j));
    const char *s = pbj_str(j);
    size_t n = strlen(s);
    size_t pad = 0;
    while (pad < 2 && n > 0 && s[n - 1] == '=') {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return pbj_fail(c, QB_ERR_INVALID, "invalid base64 (bad length)");
    size_t olen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    uint8_t *buf = NULL;
    if (olen) {
        buf = malloc(olen);
        if (!buf) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
    }
    uint32_t acc = 0;
    size_t bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = pbj_b64_digit((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return pbj_fail(c, QB_ERR_INVALID, "invalid base64 character at offset %zu", i);
        }
        acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->len = o;
    out->data = buf;
    return QB_OK;
}

static qb_err_t pbj_get_string(pbj_dec_t *c, const cJSON *j, char **out) {
    if (!cJSON_IsString(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected string, got %s", pbj_kind(j));
    const char *s = pbj_str(j);
    if (!pbj_utf8_valid(s)) return pbj_fail(c, QB_ERR_INVALID, "invalid UTF-8 in string");
    char *copy = strdup(s);
    if (!copy) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
    *out = copy;
    return QB_OK;
}

static qb_err_t pbj_dec_message(pbj_dec_t *c, const ProtobufCMessageDescriptor *d,
                                const cJSON *j, ProtobufCMessage **out);

/* Decode j as one value of type t into dst (left untouched on error). */
static qb_err_t pbj_dec_value(pbj_dec_t *c, ProtobufCType t, const void *td, const cJSON *j,
                              void *dst) {
    qb_err_t err;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int64_t v;
        if ((err = pbj_get_int(c, j, INT32_MIN, INT32_MAX, pbj_type_name(t), 0, &v))) return err;
        int32_t x = (int32_t)v;
        memcpy(dst, &x, sizeof(x));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        if ((err = pbj_get_int(c, j, INT64_MIN, INT64_MAX, pbj_type_name(t), 0, &v))) return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint64_t v;
        if ((err = pbj_get_uint(c, j, UINT32_MAX, pbj_type_name(t), 0, &v))) return err;
        uint32_t x = (uint32_t)v;
        memcpy(dst, &x, sizeof(x));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;
        if ((err = pbj_get_uint(c, j, UINT64_MAX, pbj_type_name(t), 0, &v))) return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        double v;
        if ((err = pbj_get_real(c, j, 1, &v))) return err;
        float x = (float)v;
        memcpy(dst, &x, sizeof(x));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        if ((err = pbj_get_real(c, j, 0, &v))) return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        if (!cJSON_IsBool(j))
            return pbj_fail(c, QB_ERR_INVALID, "expected boolean, got %s", pbj_kind(j));
        protobuf_c_boolean b = cJSON_IsTrue(j) ? 1 : 0;
        memcpy(dst, &b, sizeof(b));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = 0;
        if ((err = pbj_get_enum(c, j, td, &v))) return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = NULL;
        if ((err = pbj_get_string(c, j, &s))) return err;
        memcpy(dst, &s, sizeof(s));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;
        if ((err = pbj_get_bytes(c, j, &b))) return err;
        memcpy(dst, &b, sizeof(b));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub;
        if ((err = pbj_dec_message(c, td, j, &sub))) return err;
        memcpy(dst, &sub, sizeof(sub));
        return QB_OK;
    }
    }
    return pbj_fail(c, QB_ERR_INTERNAL, "unsupported field type %d", (int)t);
}

static size_t pbj_count(const cJSON *j) {
    size_t n = 0;
    for (const cJSON *it = j->child; it; it = it->next) n++;
    return n;
}

static qb_err_t pbj_dec_array(pbj_dec_t *c, const ProtobufCFieldDescriptor *f,
                              ProtobufCMessage *m, const cJSON *j) {
    if (!cJSON_IsArray(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected array, got %s", pbj_kind(j));
    size_t n = pbj_count(j), esz = pbj_elem_size(f->type), got = 0;
    if (n == 0) return QB_OK;
    char *arr = calloc(n, esz);
    if (!arr) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
    memcpy(PBJ_AT(m, f->offset), &arr, sizeof(arr));
    memcpy(PBJ_AT(m, f->quantifier_offset), &got, sizeof(got));
    for (const cJSON *it = j->child; it; it = it->next) {
        size_t saved = pbj_push(c, "[%zu]", got);
        qb_err_t err;
        if (cJSON_IsNull(it))
            err = pbj_fail(c, QB_ERR_INVALID, "null is not allowed in a list");
        else
            err = pbj_dec_value(c, f->type, f->descriptor, it, arr + got * esz);
        pbj_pop(c, saved);
        if (err) return err;
        got++;
        memcpy(PBJ_AT(m, f->quantifier_offset), &got, sizeof(got));
    }
    return QB_OK;
}

static int pbj_strp_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Parse an object key as a map key of kf's type into dst. */
static qb_err_t pbj_dec_map_key(pbj_dec_t *c, const ProtobufCFieldDescriptor *kf,
                                const char *key, void *dst) {
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        if (!pbj_utf8_valid(key)) return pbj_fail(c, QB_ERR_INVALID, "invalid UTF-8 in map key");
        char *copy = strdup(key);
        if (!copy) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
        memcpy(dst, &copy, sizeof(copy));
        return QB_OK;
    }
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        protobuf_c_boolean b;
        if (strcmp(key, "true") == 0)
            b = 1;
        else if (strcmp(key, "false") == 0)
            b = 0;
        else
            return pbj_fail(c, QB_ERR_INVALID, "map key must be \"true\" or \"false\"");
        memcpy(dst, &b, sizeof(b));
        return QB_OK;
    }
    /* Integer keys: canonical decimal text, parsed like a string value. */
    cJSON tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.type = cJSON_String;
    tmp.valuestring = (char *)(uintptr_t)key;
    qb_err_t err;
    switch (kf->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int64_t v;
        if ((err = pbj_get_int(c, &tmp, INT32_MIN, INT32_MAX, pbj_type_name(kf->type), 1, &v)))
            return err;
        int32_t x = (int32_t)v;
        memcpy(dst, &x, sizeof(x));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        if ((err = pbj_get_int(c, &tmp, INT64_MIN, INT64_MAX, pbj_type_name(kf->type), 1, &v)))
            return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint64_t v;
        if ((err = pbj_get_uint(c, &tmp, UINT32_MAX, pbj_type_name(kf->type), 1, &v)))
            return err;
        uint32_t x = (uint32_t)v;
        memcpy(dst, &x, sizeof(x));
        return QB_OK;
    }
    default: { /* uint64, fixed64 */
        uint64_t v;
        if ((err = pbj_get_uint(c, &tmp, UINT64_MAX, pbj_type_name(kf->type), 1, &v)))
            return err;
        memcpy(dst, &v, sizeof(v));
        return QB_OK;
    }
    }
}

static qb_err_t pbj_dec_map(pbj_dec_t *c, const ProtobufCFieldDescriptor *f,
                            ProtobufCMessage *m, const cJSON *j) {
    if (!cJSON_IsObject(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected object (map), got %s", pbj_kind(j));
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    char show[PBJ_SHOW_MAX + 4];
    size_t n = pbj_count(j), got = 0;
    if (n == 0) return QB_OK;

    /* Keys are canonical text, so equal keys are equal strings. */
    if (n > 1) {
        const char **keys = malloc(n * sizeof(*keys));
        if (!keys) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (const cJSON *it = j->child; it; it = it->next)
            keys[k++] = it->string ? it->string : "";
        qsort(keys, n, sizeof(*keys), pbj_strp_cmp);
        for (size_t i = 0; i + 1 < n; i++) {
            if (strcmp(keys[i], keys[i + 1]) == 0) {
                size_t saved = pbj_push(c, "[\"%s\"]", pbj_show(keys[i], show));
                qb_err_t err = pbj_fail(c, QB_ERR_INVALID, "duplicate map key");
                pbj_pop(c, saved);
                free(keys);
                return err;
            }
        }
        free(keys);
    }

    ProtobufCMessage **arr = calloc(n, sizeof(*arr));
    if (!arr) return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
    memcpy(PBJ_AT(m, f->offset), &arr, sizeof(arr));
    memcpy(PBJ_AT(m, f->quantifier_offset), &got, sizeof(got));
    for (const cJSON *it = j->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        size_t saved = pbj_push(c, "[\"%s\"]", pbj_show(key, show));
        qb_err_t err;
        ProtobufCMessage *e = malloc(ed->sizeof_message);
        if (!e) {
            err = pbj_fail(c, QB_ERR_NOMEM, "out of memory");
        } else {
            protobuf_c_message_init(ed, e);
            err = pbj_dec_map_key(c, kf, key, PBJ_AT(e, kf->offset));
            if (!err && cJSON_IsNull(it))
                err = pbj_fail(c, QB_ERR_INVALID, "null is not allowed as a map value");
            if (!err)
                err = pbj_dec_value(c, vf->type, vf->descriptor, it, PBJ_AT(e, vf->offset));
            if (err) protobuf_c_message_free_unpacked(e, NULL);
        }
        pbj_pop(c, saved);
        if (err) return err;
        arr[got++] = e;
        memcpy(PBJ_AT(m, f->quantifier_offset), &got, sizeof(got));
    }
    return QB_OK;
}

/* Index in d->fields of the field named key (.proto or lowerCamelCase
 * spelling), or -1. */
static long pbj_field_index(const ProtobufCMessageDescriptor *d, const char *key) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f) return (long)(f - d->fields);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *n = d->fields[i].name, *k = key;
        int cap = 0, ok = 1;
        for (; *n; n++) {
            if (*n == '_') {
                cap = 1;
                continue;
            }
            char ch = (cap && *n >= 'a' && *n <= 'z') ? (char)(*n - 'a' + 'A') : *n;
            cap = 0;
            if (*k++ != ch) {
                ok = 0;
                break;
            }
        }
        if (ok && *k == '\0') return (long)i;
    }
    return -1;
}

static qb_err_t pbj_dec_field(pbj_dec_t *c, const ProtobufCMessageDescriptor *d,
                              const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                              const cJSON *j) {
    void *p = PBJ_AT(m, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return pbj_is_map(d, f) ? pbj_dec_map(c, f, m, j) : pbj_dec_array(c, f, m, j);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which;
        memcpy(&which, PBJ_AT(m, f->quantifier_offset), sizeof(which));
        if (which != 0) {
            const ProtobufCFieldDescriptor *other = protobuf_c_message_descriptor_get_field(d, which);
            return pbj_fail(c, QB_ERR_INVALID, "only one of a oneof may be set, '%s' is set too",
                            other ? other->name : "?");
        }
        qb_err_t err = pbj_dec_value(c, f->type, f->descriptor, j, p);
        if (err) return err;
        which = f->id;
        memcpy(PBJ_AT(m, f->quantifier_offset), &which, sizeof(which));
        return QB_OK;
    }
    qb_err_t err = pbj_dec_value(c, f->type, f->descriptor, j, p);
    if (err) return err;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE) {
        protobuf_c_boolean has = 1;
        memcpy(PBJ_AT(m, f->quantifier_offset), &has, sizeof(has));
    }
    return QB_OK;
}

static qb_err_t pbj_dec_message(pbj_dec_t *c, const ProtobufCMessageDescriptor *d,
                                const cJSON *j, ProtobufCMessage **out) {
    char show[PBJ_SHOW_MAX + 4];
    if (!cJSON_IsObject(j))
        return pbj_fail(c, QB_ERR_INVALID, "expected object (%s), got %s", d->name, pbj_kind(j));
    if (c->depth >= PBJ_MAX_DEPTH)
        return pbj_fail(c, QB_ERR_INVALID, "messages nested deeper than %d", PBJ_MAX_DEPTH);
    ProtobufCMessage *m = malloc(d->sizeof_message);
    unsigned char seen_small[64], *seen = seen_small;
    if (d->n_fields > sizeof(seen_small)) seen = calloc(d->n_fields, 1);
    else memset(seen_small, 0, sizeof(seen_small));
    if (!m || !seen) {
        free(m);
        if (seen != seen_small) free(seen);
        return pbj_fail(c, QB_ERR_NOMEM, "out of memory");
    }
    protobuf_c_message_init(d, m);

    qb_err_t err = QB_OK;
    c->depth++;
    for (const cJSON *it = j->child; it && !err; it = it->next) {
        const char *key = it->string ? it->string : "";
        long idx = pbj_field_index(d, key);
        if (idx < 0) {
            err = pbj_fail(c, QB_ERR_INVALID, "unknown field '%s' in %s", pbj_show(key, show),
                           d->name);
            break;
        }
        const ProtobufCFieldDescriptor *f = &d->fields[idx];
        size_t saved = pbj_push(c, c->plen ? ".%s" : "%s", f->name);
        if (seen[idx])
            err = pbj_fail(c, QB_ERR_INVALID, "field given twice");
        else if (!cJSON_IsNull(it)) /* null = default */
            err = pbj_dec_field(c, d, f, m, it);
        seen[idx] = 1;
        pbj_pop(c, saved);
    }
    c->depth--;
    if (seen != seen_small) free(seen);
    if (err) {
        protobuf_c_message_free_unpacked(m, NULL);
        return err;
    }
    *out = m;
    return QB_OK;
}

qb_err_t qb_pbjson_from_cjson(const ProtobufCMessageDescriptor *d, const cJSON *json,
                              ProtobufCMessage **out, char *errstr, size_t errstr_size) {
    if (out) *out = NULL;
    if (errstr && errstr_size) errstr[0] = '\0';
    if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !json || !out)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "invalid arguments");
    pbj_dec_t c;
    memset(&c, 0, sizeof(c));
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    return pbj_dec_message(&c, d, json, out);
}

qb_err_t qb_pbjson_decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                          ProtobufCMessage **out, char *errstr, size_t errstr_size) {
    if (out) *out = NULL;
    if (errstr && errstr_size) errstr[0] = '\0';
    if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !out || (!json && len))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "invalid arguments");
    const char *nul = len ? memchr(json, '\0', len) : NULL;
    if (nul)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "malformed JSON: NUL byte at offset %zu", (size_t)(nul - json));
    size_t i = 0;
    while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
        i++;
    if (i == len) return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "malformed JSON: empty input");

    /* cJSON wants a NUL-terminated buffer; copying also keeps it from
     * reading past len. */
    char *buf = malloc(len + 1);
    if (!buf) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    memcpy(buf, json, len);
    buf[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
    if (!root) {
        size_t off = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : 0;
        size_t line = 1, col = 1;
        for (size_t k = 0; k < off; k++) {
            if (buf[k] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        free(buf);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "malformed JSON near line %zu column %zu (byte %zu)", line, col, off);
    }
    qb_err_t err = qb_pbjson_from_cjson(d, root, out, errstr, errstr_size);
    cJSON_Delete(root);
    free(buf);
    return err;
}
