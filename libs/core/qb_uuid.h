/* qb_uuid.h — UUIDs (RFC 4122 versions 4 and 5) and trace ids as text.
 *
 * Why: every event carries a UUID event_id that consumers de-duplicate on,
 * and a 32-hex-character trace id that follows one chain of causes across
 * services (proto/qb/v1/common.proto). Random ids (v4, trace ids) come from
 * the kernel (getrandom(2)), falling back to OpenSSL's RAND_bytes; if
 * neither can deliver, the process aborts rather than hand out a guessable
 * id. Deterministic ids (v5) are the SHA-1 name-based UUIDs of RFC 4122
 * §4.3, so the same (namespace, name) gives the same id in every service and
 * language (e.g. an order id derived from the signal id that caused it:
 * a re-delivered signal yields the same order id, which the broker rejects
 * as a duplicate).
 *
 * Text is canonical lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
 * Ownership: none; output goes to caller-owned buffers (37 bytes for a
 * UUID, 33 for a trace id, NUL included). Thread-safe. */
#ifndef QB_UUID_H
#define QB_UUID_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

#define QB_UUID_STRLEN 37     /* 36 characters + NUL */
#define QB_TRACE_ID_STRLEN 33 /* 32 characters + NUL */

/* The name-space ids of RFC 4122 appendix C. */
#define QB_UUID_NS_DNS "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define QB_UUID_NS_URL "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
#define QB_UUID_NS_OID "6ba7b812-9dad-11d1-80b4-00c04fd430c8"

/* A new random (version 4) UUID. */
void qb_uuid_v4(char out[QB_UUID_STRLEN]);

/* The name-based (version 5, SHA-1) UUID of `name_len` bytes of `name`
 * (may contain NULs; need not be terminated) in the namespace given as
 * UUID text. namespace_uuid must be a valid UUID (a programming error
 * otherwise: asserted). */
void qb_uuid_v5(const char *namespace_uuid, const char *name, size_t name_len,
                char out[QB_UUID_STRLEN]);

/* 1 if s is a NUL-terminated UUID in 8-4-4-4-12 hex form (either case,
 * any version, nil included), else 0. NULL gives 0. */
int qb_uuid_valid(const char *s);

/* Text (as accepted by qb_uuid_valid) <-> the 16 bytes in network order.
 * qb_uuid_parse returns QB_ERR_PARSE for invalid text. */
qb_err_t qb_uuid_parse(const char *s, uint8_t bytes[16]);
void qb_uuid_format(const uint8_t bytes[16], char out[QB_UUID_STRLEN]);

/* A new random trace id: 32 lowercase hex characters, never all zeros
 * (W3C Trace Context treats that as invalid). */
void qb_trace_id_new(char out[QB_TRACE_ID_STRLEN]);

#endif
