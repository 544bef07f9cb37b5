/* qb_auth.c — passwords (PBKDF2-HMAC-SHA256), API keys, SHA-256, roles.
 *
 * Passwords: "pbkdf2-sha256$<iter>$<salt b64url>$<hash b64url>", 16-byte
 * salt from RAND_bytes, 32-byte derived key. The iteration count lives in
 * the stored string, so raising QB_AUTH_PBKDF2_ITER later leaves old hashes
 * verifiable (the caller may rehash on the next successful login). The
 * verifier accepts salt 1..64 and hash 16..64 bytes so that published test
 * vectors can be checked through it; the hasher always writes 16 and 32.
 *
 * API keys: 32 random bytes are 256 bits; the server keeps their SHA-256
 * (a fast hash is right here: the key is random, not a human password) and
 * the 12-char prefix. Comparing the hash of a presented key with the stored
 * hash is a lookup, not a secret-dependent loop.
 *
 * All secret intermediate buffers are wiped with OPENSSL_cleanse. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "auth/qb_auth.h"

#define PW_SCHEME "pbkdf2-sha256$"
#define PW_HASH_BYTES 32
#define PW_MAX_BYTES 64 /* salt and hash, verifier side */

static int auth_pbkdf2(const char *password, const unsigned char *salt, size_t salt_len,
                       int iter, unsigned char *out, size_t out_len) {
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter,
                             EVP_sha256(), (int)out_len, out) == 1;
}

qb_err_t qb_auth_password_hash(const char *password, int iterations, char *out,
                               size_t out_size) {
    if (out && out_size) out[0] = '\0';
    if (!password || !out) return QB_ERR_INVALID;
    if (iterations <= 0) iterations = QB_AUTH_PBKDF2_ITER;
    if (iterations > QB_AUTH_PBKDF2_ITER_MAX) return QB_ERR_INVALID;
    unsigned char salt[QB_AUTH_SALT_BYTES], dk[PW_HASH_BYTES];
    char salt_b64[QB_B64URL_ENC_LEN(QB_AUTH_SALT_BYTES) + 1];
    char dk_b64[QB_B64URL_ENC_LEN(PW_HASH_BYTES) + 1];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return QB_ERR_INTERNAL;
    if (!auth_pbkdf2(password, salt, sizeof(salt), iterations, dk, sizeof(dk))) {
        OPENSSL_cleanse(dk, sizeof(dk));
        return QB_ERR_INTERNAL;
    }
    qb_b64url_encode(salt, sizeof(salt), salt_b64, sizeof(salt_b64), NULL);
    qb_b64url_encode(dk, sizeof(dk), dk_b64, sizeof(dk_b64), NULL);
    OPENSSL_cleanse(dk, sizeof(dk));
    int n = snprintf(out, out_size, PW_SCHEME "%d$%s$%s", iterations, salt_b64, dk_b64);
    OPENSSL_cleanse(dk_b64, sizeof(dk_b64));
    if (n < 0 || (size_t)n >= out_size) {
        if (out_size) {
            OPENSSL_cleanse(out, out_size);
            out[0] = '\0';
        }
        return QB_ERR_RANGE;
    }
    return QB_OK;
}

int qb_auth_password_verify(const char *password, const char *stored) {
    if (!password || !stored) return 0;
    size_t sl = strlen(PW_SCHEME);
    if (strncmp(stored, PW_SCHEME, sl) != 0) return 0;
    const char *p = stored + sl;
    /* iterations: 1..ITER_MAX, decimal, no sign, no leading zero */
    if (*p < '1' || *p > '9') return 0;
    long iter = 0;
    while (*p >= '0' && *p <= '9') {
        iter = iter * 10 + (*p++ - '0');
        if (iter > QB_AUTH_PBKDF2_ITER_MAX) return 0;
    }
    if (*p++ != '$') return 0;
    const char *salt_s = p, *d = strchr(p, '$');
    if (!d) return 0;
    const char *hash_s = d + 1;
    if (strchr(hash_s, '$')) return 0;
    unsigned char salt[PW_MAX_BYTES], want[PW_MAX_BYTES], got[PW_MAX_BYTES];
    size_t salt_len = 0, hash_len = 0;
    if (qb_b64url_decode(salt_s, (size_t)(d - salt_s), salt, sizeof(salt), &salt_len) != QB_OK ||
        salt_len < 1)
        return 0;
    if (qb_b64url_decode(hash_s, strlen(hash_s), want, sizeof(want), &hash_len) != QB_OK ||
        hash_len < 16)
        return 0;
    int ok = auth_pbkdf2(password, salt, salt_len, (int)iter, got, hash_len) &&
             CRYPTO_memcmp(got, want, hash_len) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

void qb_auth_sha256_hex(const void *data, size_t len, char out[65]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if ((!data && len) || EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        /* Only on a broken OpenSSL; never a valid-looking digest. */
        out[0] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

qb_err_t qb_auth_apikey_new(char key[QB_AUTH_APIKEY_LEN + 1],
                            char prefix[QB_AUTH_PREFIX_LEN + 1], char hash_hex[65]) {
    key[0] = prefix[0] = hash_hex[0] = '\0';
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return QB_ERR_INTERNAL;
    size_t tl = strlen(QB_AUTH_APIKEY_TAG);
    memcpy(key, QB_AUTH_APIKEY_TAG, tl);
    qb_b64url_encode(raw, sizeof(raw), key + tl, QB_AUTH_APIKEY_LEN + 1 - tl, NULL);
    OPENSSL_cleanse(raw, sizeof(raw));
    memcpy(prefix, key, QB_AUTH_PREFIX_LEN);
    prefix[QB_AUTH_PREFIX_LEN] = '\0';
    qb_auth_sha256_hex(key, QB_AUTH_APIKEY_LEN, hash_hex);
    if (strlen(hash_hex) != 64) {
        OPENSSL_cleanse(key, QB_AUTH_APIKEY_LEN + 1);
        key[0] = prefix[0] = '\0';
        return QB_ERR_INTERNAL;
    }
    return QB_OK;
}

int qb_auth_apikey_wellformed(const char *key) {
    if (!key) return 0;
    size_t tl = strlen(QB_AUTH_APIKEY_TAG);
    if (strncmp(key, QB_AUTH_APIKEY_TAG, tl) != 0) return 0;
    if (strnlen(key, QB_AUTH_APIKEY_LEN + 1) != QB_AUTH_APIKEY_LEN) return 0;
    unsigned char raw[32];
    size_t n = 0;
    int ok = qb_b64url_decode(key + tl, QB_AUTH_APIKEY_LEN - tl, raw, sizeof(raw), &n) ==
                 QB_OK &&
             n == sizeof(raw);
    OPENSSL_cleanse(raw, sizeof(raw));
    return ok;
}

/* ---- roles --------------------------------------------------------------- */

static const char *const role_names[] = {"none", "viewer", "trader", "admin"};

qb_role_t qb_role_parse(const char *s) {
    if (!s) return QB_ROLE_NONE;
    for (int r = QB_ROLE_VIEWER; r <= QB_ROLE_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0) return (qb_role_t)r;
    return QB_ROLE_NONE;
}

const char *qb_role_name(qb_role_t r) {
    if ((int)r < QB_ROLE_NONE || (int)r > QB_ROLE_ADMIN) return role_names[0];
    return role_names[r];
}
