/* fuzz_jwt.c — libFuzzer target for qb_jwt_verify, qb_jwt_keys_parse and
 * qb_b64url_decode (libs/auth).
 *
 * The fuzz build links libs/core (and libs/proto) only, so the two auth
 * sources needed are compiled in here (qb_ratelimit.c, which needs Redis,
 * is not). The first byte picks the mode; the rest is the input:
 *   0  base64url decode (no NUL, ASan catches reads past the end). If
 *      accepted, re-encoding gives the input back (the decoder is strict).
 *   1  the input as a token, verified with a fixed two-key set.
 *   2  "header JSON\npayload JSON": encoded and signed with the right key,
 *      so the claim parsing after the signature check gets fuzzed too.
 *   3  the input as a key spec; if accepted, sign-then-verify works.
 * Whenever verify accepts, the claims are NUL-terminated strings with
 * sub/typ non-empty, and re-signing them gives a token that verifies to
 * the same claims.
 * Build: make fuzz; run: ./build-fuzz/fuzz_jwt -max_total_time=60 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/qb_b64url.c"
#include "auth/qb_jwt.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_NOW 1700000000
#define FZ_S1 "fuzz-secret-one-0123456789abcdefghij"

static qb_jwt_keys_t *fz_keys(void) {
    static qb_jwt_keys_t *k;
    if (!k) k = qb_jwt_keys_parse("k1:" FZ_S1 ",k2:fuzz-secret-two-0123456789abcdefghij", NULL, 0);
    if (!k) abort();
    return k;
}

static void fz_check_claims(const qb_jwt_keys_t *k, const qb_jwt_claims_t *c) {
    if (strnlen(c->sub, sizeof(c->sub)) == sizeof(c->sub) || !c->sub[0]) abort();
    if (strnlen(c->typ, sizeof(c->typ)) == sizeof(c->typ) || !c->typ[0]) abort();
    if (strnlen(c->name, sizeof(c->name)) == sizeof(c->name)) abort();
    if (strnlen(c->role, sizeof(c->role)) == sizeof(c->role)) abort();
    if (strnlen(c->jti, sizeof(c->jti)) == sizeof(c->jti)) abort();
    if (c->iat < 0 || c->exp < 0) abort();
    if (FZ_NOW >= c->exp + QB_JWT_LEEWAY_S || c->iat > FZ_NOW + QB_JWT_LEEWAY_S) abort();
    if (c->exp <= c->iat) return; /* verifiable, but qb_jwt_sign refuses it */
    char tok[QB_JWT_MAX_LEN + 1];
    if (qb_jwt_sign(k, c, tok, sizeof(tok), NULL, 0) != QB_OK) abort();
    qb_jwt_claims_t again;
    if (qb_jwt_verify(k, tok, FZ_NOW, &again, NULL, 0) != QB_OK) abort();
    if (memcmp(&again, c, sizeof(again)) != 0) abort();
}

static void fz_verify(const qb_jwt_keys_t *k, const char *tok) {
    qb_jwt_claims_t c;
    char err[256];
    err[0] = '\0';
    qb_err_t e = qb_jwt_verify(k, tok, FZ_NOW, &c, err, sizeof(err));
    if (e == QB_OK) {
        fz_check_claims(k, &c);
    } else {
        static const qb_jwt_claims_t zero;
        if (memcmp(&c, &zero, sizeof(c)) != 0) abort();
        if (!err[0]) abort();
        if (e != QB_ERR_PARSE && e != QB_ERR_INVALID && e != QB_ERR_RANGE) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] & 3;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (n > 4 * QB_JWT_MAX_LEN) return 0;
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, in, n);
    s[n] = '\0';

    if (mode == 0) {
        /* exactly n bytes, not NUL-terminated */
        char *exact = malloc(n ? n : 1);
        unsigned char *out = malloc(QB_B64URL_DEC_MAX(n) + 1);
        memcpy(exact, in, n);
        size_t len = 0;
        qb_err_t e = qb_b64url_decode(exact, n, out, QB_B64URL_DEC_MAX(n), &len);
        if (e == QB_OK) {
            if (len > QB_B64URL_DEC_MAX(n) || QB_B64URL_ENC_LEN(len) != n) abort();
            char *back = malloc(n + 1);
            size_t bl = 0;
            if (qb_b64url_encode(out, len, back, n + 1, &bl) != QB_OK || bl != n ||
                memcmp(back, exact, n) != 0)
                abort();
            free(back);
        } else if (e != QB_ERR_PARSE || len != 0) {
            abort();
        }
        free(out);
        free(exact);
    } else if (mode == 1) {
        fz_verify(fz_keys(), s);
    } else if (mode == 2) {
        char *nl = strchr(s, '\n');
        if (nl) {
            *nl = '\0';
            const char *h = s, *p = nl + 1;
            size_t hl = strlen(h), pl = strlen(p);
            size_t cap = QB_B64URL_ENC_LEN(hl) + QB_B64URL_ENC_LEN(pl) + 64;
            char *tok = malloc(cap);
            size_t o = 0, w = 0;
            qb_b64url_encode(h, hl, tok, cap, &w);
            o = w;
            tok[o++] = '.';
            qb_b64url_encode(p, pl, tok + o, cap - o, &w);
            o += w;
            unsigned char md[32];
            unsigned int ml = 0;
            HMAC(EVP_sha256(), FZ_S1, (int)strlen(FZ_S1), (unsigned char *)tok, o, md, &ml);
            tok[o++] = '.';
            qb_b64url_encode(md, 32, tok + o, cap - o, NULL);
            fz_verify(fz_keys(), tok);
            free(tok);
        }
    } else {
        char err[256];
        qb_jwt_keys_t *k = qb_jwt_keys_parse(s, err, sizeof(err));
        if (k) {
            qb_jwt_claims_t c;
            memset(&c, 0, sizeof(c));
            strcpy(c.sub, "u");
            strcpy(c.typ, "access");
            c.iat = FZ_NOW;
            c.exp = FZ_NOW + 60;
            char tok[QB_JWT_MAX_LEN + 1];
            if (qb_jwt_sign(k, &c, tok, sizeof(tok), NULL, 0) != QB_OK) abort();
            fz_verify(k, tok);
            qb_jwt_claims_t got;
            if (qb_jwt_verify(k, tok, FZ_NOW, &got, NULL, 0) != QB_OK) abort();
            if (strcmp(got.sub, "u") != 0) abort();
            qb_jwt_keys_free(k);
        } else if (!err[0]) {
            abort();
        }
    }
    free(s);
    return 0;
}
