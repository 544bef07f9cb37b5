/* qb_auth.h — security primitives of the HTTP gateway (qb-api).
 *
 * What is here, and what is deliberately not:
 *   - base64url (RFC 4648 §5) without padding, strict: the decoder refuses
 *     '=', characters outside the alphabet, impossible lengths and non-zero
 *     trailing bits, so every accepted text is the one canonical encoding of
 *     its bytes (decode then encode gives the input back). qb_b64url.c.
 *   - Passwords: PBKDF2-HMAC-SHA256 (OpenSSL), 16-byte salt from RAND_bytes,
 *     stored as "pbkdf2-sha256$<iter>$<salt b64url>$<hash b64url>".
 *     Verification compares in constant time. qb_auth.c.
 *   - API keys: "qbk_" + 43 base64url chars (32 random bytes). The server
 *     stores only the hex SHA-256 of the whole key and its first 12 chars
 *     (the prefix, for display and lookup). qb_auth.c.
 *   - Roles: viewer < trader < admin, ordered so `role >= QB_ROLE_TRADER`
 *     reads as "may trade". qb_auth.c.
 *   - JWT HS256 with key rotation: a key set parsed from "kid:secret,...";
 *     the first key signs, every listed key verifies. The header carries the
 *     kid. Only HS256 is accepted (never "none", never anything else, never
 *     a "crit" header). qb_jwt.c.
 *   - Rate limit: a token bucket in one Redis hash per key, updated by one
 *     Lua EVAL (atomic). The time is the caller's, not Redis's.
 *     qb_ratelimit.c.
 * Which token type ("access"/"refresh") a route wants, and which role, is
 * the caller's business: qb_jwt_verify only proves the token is ours,
 * intact and within its lifetime.
 *
 * Memory: nothing here allocates except qb_jwt_keys_parse (free with
 * qb_jwt_keys_free, which wipes the secrets) and transient buffers inside a
 * call. Every output goes into caller buffers whose sizes are passed in (or
 * fixed by the macros below).
 *
 * Threads: every function is thread-safe; a qb_jwt_keys_t is immutable after
 * parsing and may be shared by threads. qb_ratelimit_take uses a qb_cache_t,
 * which is one per thread (see qb_cache.h).
 *
 * Errors: QB_ERR_INVALID bad argument, QB_ERR_RANGE output buffer too small,
 * QB_ERR_INTERNAL OpenSSL failure (RAND_bytes, HMAC, PBKDF2); JWT and
 * rate-limit errors are listed at their functions. No error text ever
 * contains a secret, a password or a key. */
#ifndef QB_AUTH_H
#define QB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "cache/qb_cache.h"
#include "core/qb_err.h"

/* ---- base64url --------------------------------------------------------- */

/* Encoded length of n bytes (no padding, no NUL). */
#define QB_B64URL_ENC_LEN(n) ((((size_t)(n)) * 4 + 2) / 3)
/* Upper bound on the decoded length of n characters. */
#define QB_B64URL_DEC_MAX(n) ((((size_t)(n)) * 3) / 4)

/* Encode len bytes into out as base64url without padding, NUL-terminated.
 * out_size must be >= QB_B64URL_ENC_LEN(len) + 1, else QB_ERR_RANGE (out is
 * then "" when out_size > 0). *out_len (may be NULL) gets the length
 * without the NUL. */
qb_err_t qb_b64url_encode(const void *data, size_t len, char *out, size_t out_size,
                          size_t *out_len);

/* Decode in_len characters of in (need not be NUL-terminated). Strict: see
 * the top of this file; QB_ERR_PARSE for any such fault, QB_ERR_RANGE when
 * out_size is below the decoded length (QB_B64URL_DEC_MAX(in_len) always
 * suffices). *out_len (may be NULL) gets the decoded length (0 on error). */
qb_err_t qb_b64url_decode(const char *in, size_t in_len, void *out, size_t out_size,
                          size_t *out_len);

/* ---- passwords ----------------------------------------------------------- */

/* OWASP Password Storage Cheat Sheet (2023) for PBKDF2-HMAC-SHA256. */
#define QB_AUTH_PBKDF2_ITER 600000
/* qb_auth_password_verify refuses stored hashes claiming more iterations
 * (a stored value must not be able to make one login burn a minute). */
#define QB_AUTH_PBKDF2_ITER_MAX 10000000
#define QB_AUTH_SALT_BYTES 16
/* Buffer size that always holds a qb_auth_password_hash result. */
#define QB_AUTH_PASSWORD_HASH_SIZE 128

/* Hash `password` (a C string; any bytes, any length) with a fresh random
 * salt. iterations <= 0 means QB_AUTH_PBKDF2_ITER; above
 * QB_AUTH_PBKDF2_ITER_MAX is QB_ERR_INVALID. out_size >=
 * QB_AUTH_PASSWORD_HASH_SIZE always suffices, else QB_ERR_RANGE. */
qb_err_t qb_auth_password_hash(const char *password, int iterations, char *out,
                               size_t out_size);

/* 1 when `password` matches `stored` (a qb_auth_password_hash result), else
 * 0 — also for NULL arguments and any malformed `stored` (unknown scheme,
 * iterations outside 1..QB_AUTH_PBKDF2_ITER_MAX, salt not 1..64 bytes, hash
 * not 16..64 bytes). The hash comparison is constant-time. Takes as long
 * as `stored`'s iterations say: callers hide unknown users by verifying
 * against a dummy hash of the same cost. */
int qb_auth_password_verify(const char *password, const char *stored);

/* ---- API keys and SHA-256 ------------------------------------------------ */

#define QB_AUTH_APIKEY_TAG "qbk_"
#define QB_AUTH_APIKEY_LEN 47 /* "qbk_" + 43 */
#define QB_AUTH_PREFIX_LEN 12 /* "qbk_" + 8: shown to users, lookup index */

/* New random key (32 bytes from RAND_bytes), its prefix and the hex SHA-256
 * of the whole key (what the server stores). The key is shown once and
 * never stored. QB_ERR_INTERNAL when RAND_bytes fails (outputs are then ""). */
qb_err_t qb_auth_apikey_new(char key[QB_AUTH_APIKEY_LEN + 1],
                            char prefix[QB_AUTH_PREFIX_LEN + 1], char hash_hex[65]);

/* 1 when `key` has the exact shape of a qb_auth_apikey_new key ("qbk_" and
 * 43 canonical base64url chars), else 0 (NULL too). Checks shape only:
 * cheap, to refuse junk before any lookup. */
int qb_auth_apikey_wellformed(const char *key);

/* Lower-case hex SHA-256 of len bytes, NUL-terminated. */
void qb_auth_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- roles --------------------------------------------------------------- */

typedef enum qb_role_e {
    QB_ROLE_NONE = 0,   /* unknown or missing: may do nothing */
    QB_ROLE_VIEWER = 1, /* read-only */
    QB_ROLE_TRADER = 2, /* viewer + orders */
    QB_ROLE_ADMIN = 3   /* trader + users, keys, config */
} qb_role_t;

/* "viewer", "trader", "admin" (exact, lower case) -> the role; anything
 * else, NULL included, -> QB_ROLE_NONE. */
qb_role_t qb_role_parse(const char *s);
/* "none", "viewer", "trader", "admin"; "none" for out-of-range values. */
const char *qb_role_name(qb_role_t r);

/* ---- JWT (HS256) ---------------------------------------------------------- */

/* Clock skew allowed between qb-api replicas, in seconds: a token counts as
 * expired when now >= exp + QB_JWT_LEEWAY_S, and as not yet valid when
 * iat (or nbf) > now + QB_JWT_LEEWAY_S. */
#define QB_JWT_LEEWAY_S 30
/* Longest token signed or accepted; a buffer of this size (+1) holds any
 * qb_jwt_sign result. */
#define QB_JWT_MAX_LEN 2048
#define QB_JWT_MAX_KEYS 16
#define QB_JWT_MIN_SECRET 32 /* bytes */
#define QB_JWT_KID_MAX 32    /* chars, [A-Za-z0-9._-] */

typedef struct qb_jwt_keys_s qb_jwt_keys_t;

/* spec: "kid:secret[,kid:secret...]" — kid 1..QB_JWT_KID_MAX chars of
 * [A-Za-z0-9._-], unique; the secret is everything after the first ':' up
 * to the next ',' taken as raw bytes (so it may contain ':' but not ','),
 * at least QB_JWT_MIN_SECRET bytes. At most QB_JWT_MAX_KEYS keys. The first
 * key signs. NULL on error with the reason in errstr (naming the kid or
 * entry, never the secret). Free with qb_jwt_keys_free. */
qb_jwt_keys_t *qb_jwt_keys_parse(const char *spec, char *errstr, size_t errstr_size);
/* Wipe the secrets and free. NULL is a no-op. */
void qb_jwt_keys_free(qb_jwt_keys_t *k);
/* The kid that signs (the first one). */
const char *qb_jwt_keys_signing_kid(const qb_jwt_keys_t *k);

/* Claims, all NUL-terminated strings; iat/exp in Unix seconds. */
typedef struct qb_jwt_claims_s {
    char sub[64];  /* user id (required, non-empty) */
    char name[64]; /* display name (may be empty) */
    char role[16]; /* qb_role_name() of the role */
    char typ[16];  /* "access" | "refresh" (required, non-empty) */
    char jti[40];  /* token id, for revocation (may be empty) */
    int64_t iat, exp;
} qb_jwt_claims_t;

/* Sign with the first key: header {"alg":"HS256","typ":"JWT","kid":"<kid>"},
 * payload {"sub","name","role","typ","jti","iat","exp"}. QB_ERR_INVALID for
 * claims that qb_jwt_verify would refuse (empty sub or typ, a string not
 * NUL-terminated within its field, iat/exp outside 0..2^53, exp <= iat);
 * QB_ERR_RANGE when out_size is too small (QB_JWT_MAX_LEN + 1 always
 * suffices). */
qb_err_t qb_jwt_sign(const qb_jwt_keys_t *k, const qb_jwt_claims_t *c, char *out,
                     size_t out_size, char *errstr, size_t errstr_size);

/* Verify `token` at time now_s and fill *out (zeroed on any error).
 * QB_ERR_PARSE: malformed — not three non-empty base64url parts, longer
 *   than QB_JWT_MAX_LEN, header or payload not a JSON object, a required
 *   claim missing or of the wrong type, a string claim too long.
 * QB_ERR_INVALID: refused — alg other than "HS256" (incl. "none"), a
 *   "crit" header, missing or unknown kid, bad signature (constant-time
 *   compare, checked before the payload is parsed).
 * QB_ERR_RANGE: outside its lifetime — "token expired" (now >= exp +
 *   leeway) or "token not yet valid" (iat or nbf > now + leeway).
 * errstr says what is wrong ("token expired", "unknown key id 'k9'", "bad
 * signature", ...); attacker-supplied text is quoted only when it is a
 * short printable kid. */
qb_err_t qb_jwt_verify(const qb_jwt_keys_t *k, const char *token, int64_t now_s,
                       qb_jwt_claims_t *out, char *errstr, size_t errstr_size);

/* ---- rate limit (token bucket in Redis) --------------------------------- */

/* Take one token from the bucket `key` (used as the Redis key as is: the
 * caller namespaces it, e.g. "qb:rl:ip:10.0.0.7"). The bucket holds up to
 * `burst` tokens (>= 1), starts full and refills at rate_per_s (> 0) tokens
 * per second, computed from now_ms (the caller's clock, milliseconds; a
 * now_ms older than the bucket's last refill refills nothing). One Lua EVAL:
 * read hash {t: tokens, ms: last refill}, refill, take, write back, PEXPIRE
 * to the time a drained bucket needs to refill fully + 1 s (an expired
 * bucket is a full one, so nothing is lost). Sent as EVALSHA (the script's
 * SHA-1), with one EVAL when Redis does not know it yet.
 * Outputs (each may be NULL): *allowed 1/0; *retry_after_ms 0 when allowed,
 * else the wait until one token is there (> 0); *remaining the tokens left.
 * On error they are 0 and the error is the cache's: QB_ERR_UNAVAILABLE when
 * Redis is down (the caller picks fail-open or fail-closed), QB_ERR_REDIS
 * (e.g. the key holds another type); QB_ERR_INVALID for bad arguments. */
qb_err_t qb_ratelimit_take(qb_cache_t *c, const char *key, double rate_per_s, double burst,
                           int64_t now_ms, int *allowed, int64_t *retry_after_ms,
                           double *remaining, char *errstr, size_t errstr_size);

/* The same take in two halves, for sending it in one round trip with other
 * commands (qb_cache_pipeline): qb_ratelimit_cmd fills `cmd` (argv points
 * into it; same argument checks) with an EVALSHA of the script, and
 * qb_ratelimit_reply reads the reply. A reply "NOSCRIPT" (Redis restarted
 * or was flushed) gives QB_ERR_NOT_FOUND: call qb_ratelimit_take, whose
 * EVAL loads the script again. */
typedef struct qb_ratelimit_cmd_s {
    qb_cache_cmd_t cmd;
    const char *argv[8];
    char rate[32], burst[32], now[24], ttl[24];
} qb_ratelimit_cmd_t;
qb_err_t qb_ratelimit_cmd(qb_ratelimit_cmd_t *rc, const char *key, double rate_per_s,
                          double burst, int64_t now_ms, char *errstr, size_t errstr_size);
qb_err_t qb_ratelimit_reply(const redisReply *r, int *allowed, int64_t *retry_after_ms,
                            double *remaining, char *errstr, size_t errstr_size);

#endif
