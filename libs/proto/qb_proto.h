/* qb_proto.h — the registry of Quantbus message types, and the common header.
 *
 * Including this header includes the protobuf-c code generated from every
 * .proto file of proto/qb/v1, so one include gives every Qb__V1__ type.
 *
 * Registry. Every top-level message of package qb.v1 is listed once, by its
 * full protobuf name ("qb.v1.Bar"), which is also what the Kafka header
 * "qb-type" carries. Nested messages (qb.v1.Command.Limit, map entries ...)
 * are parts of those messages and are not listed. Which topic carries which
 * type is the bus's business (libs/bus), not this file's. The registry is a
 * constant table: thread-safe, nothing to init or free.
 *
 * Header. Every top-level message except Header itself has
 * `Header header = 1`. qb_proto_header_init() fills a header for a message
 * about to be produced; the strings it points to live in the
 * qb_proto_header_t that holds it (no allocation, nothing to free). */
#ifndef QB_PROTO_H
#define QB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "core/qb_err.h"
#include "qb/v1/backtest.pb-c.h"
#include "qb/v1/common.pb-c.h"
#include "qb/v1/control.pb-c.h"
#include "qb/v1/market.pb-c.h"
#include "qb/v1/notify.pb-c.h"
#include "qb/v1/risk.pb-c.h"
#include "qb/v1/trading.pb-c.h"

/* ---- registry ------------------------------------------------------------ */

/* The descriptor of the top-level message with this full name, e.g.
 * "qb.v1.Bar". For convenience at the command line a name without a dot is
 * looked up in package qb.v1 ("Bar" finds qb.v1.Bar). NULL when unknown or
 * when full_name is NULL. */
const ProtobufCMessageDescriptor *qb_proto_find(const char *full_name);

/* All known top-level message types, in a fixed order; *count (if non-NULL)
 * receives their number. The array is static: do not free. */
const ProtobufCMessageDescriptor *const *qb_proto_all(size_t *count);

/* Full protobuf name of a message type, e.g. "qb.v1.Bar" (works for any
 * descriptor, listed or not). NULL for NULL. */
const char *qb_proto_name(const ProtobufCMessageDescriptor *d);

/* ---- header -------------------------------------------------------------- */

#define QB_PROTO_SCHEMA_VERSION 1
#define QB_PROTO_UUID_LEN 36     /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
#define QB_PROTO_TRACE_ID_LEN 32 /* lowercase hex */
#define QB_PROTO_PRODUCER_MAX 63 /* longest producer name accepted */

/* A Header together with the storage of its strings. `pb` points into the
 * arrays of the same struct, so:
 *   - set a message's header with `msg.header = &h.pb;` and keep `h` alive
 *     (and unmoved) until the message is packed;
 *   - do not copy the struct (the copy's pb would point into the original);
 *     initialize a new one instead;
 *   - never pass &h.pb to protobuf_c_message_free_unpacked() (set
 *     msg.header = NULL before freeing a message you unpacked).
 * Plain value: nothing to free. */
typedef struct qb_proto_header_s {
    Qb__V1__Header pb;
    char event_id[QB_PROTO_UUID_LEN + 1];
    char trace_id[QB_PROTO_TRACE_ID_LEN + 1];
    char producer[QB_PROTO_PRODUCER_MAX + 1];
} qb_proto_header_t;

/* Fill a header for a new event:
 *   event_id       a new random UUID v4 (libuuid), lowercase
 *   event_time     as given (ns since epoch UTC); 0 = the same as
 *                  produced_time
 *   produced_time  now (CLOCK_REALTIME), ns since epoch UTC
 *   producer       copied (1..QB_PROTO_PRODUCER_MAX bytes)
 *   trace_id       copied (and lowercased) when given; NULL or "" starts a
 *                  new trace: 32 random lowercase hex characters
 *   schema_version QB_PROTO_SCHEMA_VERSION
 * Pass the trace id of the message that caused this one, so the trace
 * follows the chain: qb_proto_header_init(&h, "qb-risk", t,
 * in->header ? in->header->trace_id : NULL).
 * Returns QB_ERR_INVALID (h untouched) when h is NULL, producer is NULL,
 * empty or too long, or trace_id is neither NULL, "" nor 32 hex characters
 * (check foreign ids with qb_proto_trace_id_valid() first). */
qb_err_t qb_proto_header_init(qb_proto_header_t *h, const char *producer,
                              int64_t event_time, const char *trace_id);

/* 1 if s is a trace id: exactly 32 hex characters (either case), else 0. */
int qb_proto_trace_id_valid(const char *s);

/* The header (field 1 "header" of type qb.v1.Header) of any Quantbus
 * message; NULL when m is NULL, when its type has no such field, or when
 * the field is not set. The pointer belongs to m. */
const Qb__V1__Header *qb_proto_header_of(const ProtobufCMessage *m);

/* Where m keeps its header pointer, to set it generically (e.g. qbctl
 * filling in a header missing from JSON input): `*qb_proto_header_slot(m) =
 * &h.pb;`. NULL when m is NULL or its type has no header field. Ownership
 * follows protobuf-c: protobuf_c_message_free_unpacked(m) frees whatever the
 * slot points to, so reset the slot to NULL (or the previous value) first
 * when it points to a qb_proto_header_t. */
Qb__V1__Header **qb_proto_header_slot(ProtobufCMessage *m);

#endif
