/* qb_pbjson.h — protobuf-c messages to and from JSON, for any message type.
 *
 * Driven by the protobuf-c descriptors alone, so it works for every message
 * of proto/ without per-type code. Used by qbctl (`tail` prints one JSON
 * object per line, `produce` reads JSON lines and publishes protobuf) and by
 * anything else that shows messages to humans.
 *
 * The mapping is the proto3 JSON mapping
 * (https://protobuf.dev/programming-guides/proto3/#json) with these choices:
 *
 *   names     output uses the .proto field names ("event_time"), like
 *             protoc's preserving_proto_field_name option; with
 *             QB_PBJSON_CAMEL_CASE it uses the lowerCamelCase JSON names
 *             ("eventTime"). Input accepts both spellings.
 *   defaults  output includes every field that has no presence (proto3
 *             scalars, strings, enums, repeated fields, maps) even when it
 *             holds its default, so `jq .qty` always finds a value;
 *             QB_PBJSON_OMIT_DEFAULTS gives the standard proto3 output
 *             instead. Unset message fields and oneof members are omitted.
 *             Input: a missing field, or JSON null, leaves the default.
 *   int64     int64, uint64, sint64, fixed64, sfixed64 are JSON strings on
 *             output ("1700000000000000000"), because JSON numbers are
 *             doubles. Input accepts a string or a number; a number of
 *             magnitude 2^53 or more is refused (as a double it may already
 *             have been rounded: send it as a string) and so is a fraction.
 *             Nanosecond timestamps are beyond 2^53: quote them.
 *   32-bit    integers are JSON numbers; input accepts numbers or strings.
 *   float     float and double are numbers, shortest text that reads back
 *             to the same value; NaN and infinities are the strings "NaN",
 *             "Infinity", "-Infinity". Input also accepts numeric strings.
 *   enums     the value's name ("SIDE_BUY"); a number the schema does not
 *             know is written as a number. Input accepts the name or any
 *             int32 number.
 *   bool      true / false.
 *   bytes     standard base64 with padding; input accepts standard or
 *             URL-safe base64, padded or not.
 *   strings   must be valid UTF-8 on input; on output invalid UTF-8 (which
 *             protobuf-c does not check when unpacking) is replaced by
 *             U+FFFD so the JSON stays valid. A string cannot hold a NUL
 *             character (protobuf-c strings are C strings): "\u0000" ends it.
 *   maps      JSON objects; keys of integer maps are canonical decimal
 *             strings ("-12"), of bool maps "true"/"false". A duplicate
 *             key on input is an error; on output the last entry of a key
 *             wins (protobuf's rule).
 *   oneofs    the set member appears as an ordinary field; two members of
 *             one oneof on input is an error.
 *   unknown   fields of the wire format that the schema does not know
 *             (ProtobufCMessage.unknown_fields) are not printed. An unknown
 *             JSON field on input is an error naming it.
 *   well-known types (google.protobuf.Timestamp, Any ...) get no special
 *             treatment; Quantbus schemas do not use them.
 *
 * A map field is recognized the way protoc generates it: a repeated field
 * `foo_bar` whose message type is the nested "FooBarEntry" with exactly the
 * fields key = 1 and value = 2. A hand-written message shaped like that
 * would be printed as a map too; do not write one.
 *
 * Errors name the JSON path of the offending value, e.g.
 *   "header.event_time: expected integer, got boolean"
 *   "values[\"rsi\"]: expected number, got string"
 *   "legs[2]: unknown field 'prce'"
 * Return codes: QB_ERR_PARSE malformed JSON; QB_ERR_INVALID valid JSON that
 * does not fit the schema (unknown field, wrong type, bad enum name, bad
 * base64, invalid UTF-8, duplicate field or key, two oneof members);
 * QB_ERR_OVERFLOW an integer outside the field's range or a float beyond
 * its type; QB_ERR_RANGE an integer JSON number of magnitude >= 2^53;
 * QB_ERR_NOMEM. Error texts are printable ASCII (user text is quoted with
 * other bytes shown as '?'), safe to put into a log line.
 *
 * Limits: messages nested more than 64 deep are refused both ways (decode:
 * QB_ERR_INVALID; encode: NULL); Quantbus schemas nest 3 levels deep.
 *
 * Thread-safety: any number of threads may convert at once (cJSON's parser
 * also records its last error in a global that nothing here reads).
 * Numbers are formatted and parsed with printf/strtod, so LC_NUMERIC must be
 * the "C" locale (the default; Quantbus never calls setlocale). */
#ifndef QB_PBJSON_H
#define QB_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "core/qb_err.h"

struct cJSON;

/* Output options for qb_pbjson_encode_opts() / qb_pbjson_to_cjson(). */
#define QB_PBJSON_OMIT_DEFAULTS 0x1u /* proto3 standard: drop default values */
#define QB_PBJSON_CAMEL_CASE 0x2u    /* lowerCamelCase field names */
#define QB_PBJSON_PRETTY 0x4u        /* indented, multi-line (encode only) */

/* m as compact JSON on one line (no newline), with the default options.
 * Returns a NUL-terminated string the caller frees with free(); NULL when m
 * is NULL or memory ran out. */
char *qb_pbjson_encode(const ProtobufCMessage *m);

/* Like qb_pbjson_encode() with QB_PBJSON_* flags. */
char *qb_pbjson_encode_opts(const ProtobufCMessage *m, unsigned flags);

/* m as a new cJSON object (for embedding in a larger JSON document); the
 * caller frees it with cJSON_Delete(). QB_PBJSON_PRETTY is ignored. NULL
 * when m is NULL or memory ran out. */
struct cJSON *qb_pbjson_to_cjson(const ProtobufCMessage *m, unsigned flags);

/* Parse json[0..len) (no NUL needed; a NUL byte inside is an error) as one
 * JSON object of type d, surrounded by nothing but whitespace. On success
 * *out is a new message allocated exactly as protobuf_c_message_unpack()
 * with the default allocator allocates one, so the caller frees it with
 * protobuf_c_message_free_unpacked(*out, NULL). On error *out is NULL and
 * errstr (if non-NULL) says what and where; nothing needs freeing. */
qb_err_t qb_pbjson_decode(const ProtobufCMessageDescriptor *d,
                          const char *json, size_t len, ProtobufCMessage **out,
                          char *errstr, size_t errstr_size);

/* Like qb_pbjson_decode() from an already parsed cJSON object (not
 * modified, not freed). Also accepts the raw-number items that
 * qb_pbjson_to_cjson() creates, so its trees convert back. */
qb_err_t qb_pbjson_from_cjson(const ProtobufCMessageDescriptor *d,
                              const struct cJSON *json, ProtobufCMessage **out,
                              char *errstr, size_t errstr_size);

#endif
