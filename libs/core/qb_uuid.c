/* qb_uuid.c — random and name-based UUIDs and trace ids; see qb_uuid.h.
 * Owns nothing; the one OpenSSL digest context of qb_uuid_v5 lives and dies
 * within the call. */
#include "core/qb_uuid.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/random.h>

static const char qb_hex[] = "0123456789abcdef";

/* Fill buf with cryptographically strong random bytes, or abort. */
static void qb_random_bytes(uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) got += (size_t)r;
        else if (r < 0 && errno != EINTR) break;
    }
    if (got == n) return;
    QB_ASSERT(RAND_bytes(buf, (int)n) == 1);
}

static void qb_hex_encode(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = qb_hex[b[i] >> 4];
        out[2 * i + 1] = qb_hex[b[i] & 0x0f];
    }
}

static int qb_hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int qb_uuid_dash_at(size_t i) {
    return i == 8 || i == 13 || i == 18 || i == 23;
}

/* Set the version nibble and the RFC 4122 variant bits (10xx). */
static void qb_uuid_stamp(uint8_t b[16], int version) {
    b[6] = (uint8_t)((b[6] & 0x0f) | (version << 4));
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
}

void qb_uuid_format(const uint8_t bytes[16], char out[QB_UUID_STRLEN]) {
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        qb_hex_encode(bytes + i, 1, p);
        p += 2;
    }
    *p = '\0';
}

qb_err_t qb_uuid_parse(const char *s, uint8_t bytes[16]) {
    uint8_t b[16];
    int nib = 0;
    if (!s) return QB_ERR_PARSE;
    for (size_t i = 0; i < 36; i++) {
        if (qb_uuid_dash_at(i)) {
            if (s[i] != '-') return QB_ERR_PARSE;
            continue;
        }
        int v = qb_hex_val(s[i]); /* also stops at the NUL of short text */
        if (v < 0) return QB_ERR_PARSE;
        if (nib % 2 == 0) b[nib / 2] = (uint8_t)(v << 4);
        else b[nib / 2] |= (uint8_t)v;
        nib++;
    }
    if (s[36] != '\0') return QB_ERR_PARSE;
    memcpy(bytes, b, sizeof b);
    return QB_OK;
}

int qb_uuid_valid(const char *s) {
    uint8_t b[16];
    return qb_uuid_parse(s, b) == QB_OK;
}

void qb_uuid_v4(char out[QB_UUID_STRLEN]) {
    uint8_t b[16];
    qb_random_bytes(b, sizeof b);
    qb_uuid_stamp(b, 4);
    qb_uuid_format(b, out);
}

/* SHA-1 of the namespace's 16 bytes followed by the name. */
static void qb_sha1_ns_name(const uint8_t ns[16], const char *name,
                            size_t name_len, uint8_t md[EVP_MAX_MD_SIZE]) {
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    QB_ASSERT(ctx != NULL);
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, ns, 16) == 1 &&
             EVP_DigestUpdate(ctx, name, name_len) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
    EVP_MD_CTX_free(ctx);
    QB_ASSERT(ok && md_len == 20);
}

void qb_uuid_v5(const char *namespace_uuid, const char *name, size_t name_len,
                char out[QB_UUID_STRLEN]) {
    uint8_t ns[16], md[EVP_MAX_MD_SIZE];
    QB_ASSERT(qb_uuid_parse(namespace_uuid, ns) == QB_OK);
    qb_sha1_ns_name(ns, name, name_len, md);
    qb_uuid_stamp(md, 5);
    qb_uuid_format(md, out);
}

void qb_trace_id_new(char out[QB_TRACE_ID_STRLEN]) {
    static const uint8_t zero[16];
    uint8_t b[16];
    do {
        qb_random_bytes(b, sizeof b);
    } while (memcmp(b, zero, sizeof b) == 0);
    qb_hex_encode(b, sizeof b, out);
    out[32] = '\0';
}
