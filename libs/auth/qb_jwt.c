/* qb_jwt.c — JSON Web Tokens, HS256 only, with key rotation.
 *
 * A key set is a small array of {kid, secret}; the first signs, all verify.
 * Rotation: put the new key first and keep the old one listed for as long
 * as tokens signed by it may live (the refresh-token lifetime); then drop
 * it, and its tokens fail with "unknown key id".
 *
 * Verification order (each step refuses before the next runs):
 *   shape (length, three non-empty parts) -> header base64url + JSON ->
 *   alg == "HS256", no "crit", typ "JWT" if present -> kid known ->
 *   signature (HMAC-SHA256, CRYPTO_memcmp) -> payload base64url + JSON ->
 *   claims present and typed -> lifetime (with QB_JWT_LEEWAY_S).
 * The payload is parsed only once the signature has proved it is ours.
 * The header is attacker-controlled text: only a kid made of the kid
 * alphabet, or an alg of short printable characters, is ever quoted back
 * in errstr (the caller may log it).
 *
 * Signing writes iat/exp as raw JSON integers (cJSON would print doubles
 * like 1e+15) and the header by hand (the kid alphabet needs no escaping).
 *
 * The key set owns its secrets (malloc'd copies), wiped on free. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/qb_auth.h"

#define JWT_SIG_BYTES 32
#define JWT_INT_MAX 9007199254740992LL /* 2^53: exact in a JSON double */

typedef struct jwt_key_s {
    char kid[QB_JWT_KID_MAX + 1];
    unsigned char *secret;
    size_t len;
} jwt_key_t;

struct qb_jwt_keys_s {
    int n;
    jwt_key_t keys[QB_JWT_MAX_KEYS];
};

static int jwt_kid_char(unsigned char ch) {
    return isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
}

/* 1 when s[0..n) is a valid kid. */
static int jwt_kid_valid(const char *s, size_t n) {
    if (n < 1 || n > QB_JWT_KID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!jwt_kid_char((unsigned char)s[i])) return 0;
    return 1;
}

void qb_jwt_keys_free(qb_jwt_keys_t *k) {
    if (!k) return;
    for (int i = 0; i < k->n; i++) {
        if (k->keys[i].secret) {
            OPENSSL_cleanse(k->keys[i].secret, k->keys[i].len);
            free(k->keys[i].secret);
        }
    }
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

qb_jwt_keys_t *qb_jwt_keys_parse(const char *spec, char *errstr, size_t errstr_size) {
    if (!spec || !*spec) {
        qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "JWT key spec is empty (want kid:secret)");
        return NULL;
    }
    qb_jwt_keys_t *k = calloc(1, sizeof(*k));
    if (!k) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const char *p = spec;
    for (int entry = 1;; entry++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (len == 0) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "JWT key entry %d is empty", entry);
            goto fail;
        }
        if (!colon) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "JWT key entry %d has no ':' (want kid:secret)", entry);
            goto fail;
        }
        size_t kid_len = (size_t)(colon - p), secret_len = len - kid_len - 1;
        if (!jwt_kid_valid(p, kid_len)) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "JWT key entry %d: bad key id (1..%d chars of A-Z a-z 0-9 . _ -)", entry,
                       QB_JWT_KID_MAX);
            goto fail;
        }
        char kid[QB_JWT_KID_MAX + 1];
        memcpy(kid, p, kid_len);
        kid[kid_len] = '\0';
        for (int i = 0; i < k->n; i++) {
            if (strcmp(k->keys[i].kid, kid) == 0) {
                qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "duplicate JWT key id '%s'", kid);
                goto fail;
            }
        }
        if (secret_len < QB_JWT_MIN_SECRET) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                       "JWT key '%s': secret is %zu bytes, need at least %d", kid, secret_len,
                       QB_JWT_MIN_SECRET);
            goto fail;
        }
        if (k->n == QB_JWT_MAX_KEYS) {
            qb_err_set(errstr, errstr_size, QB_ERR_CONFIG, "more than %d JWT keys",
                       QB_JWT_MAX_KEYS);
            goto fail;
        }
        jwt_key_t *key = &k->keys[k->n];
        key->secret = malloc(secret_len);
        if (!key->secret) {
            qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(key->secret, colon + 1, secret_len);
        key->len = secret_len;
        memcpy(key->kid, kid, kid_len + 1);
        k->n++;
        if (!end) break;
        p = end + 1;
    }
    return k;
fail:
    qb_jwt_keys_free(k);
    return NULL;
}

const char *qb_jwt_keys_signing_kid(const qb_jwt_keys_t *k) {
    return k && k->n > 0 ? k->keys[0].kid : "";
}

static int jwt_hmac(const jwt_key_t *key, const char *data, size_t len,
                    unsigned char md[JWT_SIG_BYTES]) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key->secret, (int)key->len, (const unsigned char *)data, len, buf,
              &mdlen) ||
        mdlen != JWT_SIG_BYTES)
        return 0;
    memcpy(md, buf, JWT_SIG_BYTES);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 1;
}

/* ---- sign ---------------------------------------------------------------- */

/* 1 when field (of size cap) is NUL-terminated and, if nonempty, not "". */
static int jwt_field_ok(const char *field, size_t cap, int nonempty) {
    size_t n = strnlen(field, cap);
    return n < cap && (!nonempty || n > 0);
}

qb_err_t qb_jwt_sign(const qb_jwt_keys_t *k, const qb_jwt_claims_t *c, char *out,
                     size_t out_size, char *errstr, size_t errstr_size) {
    if (out && out_size) out[0] = '\0';
    if (!k || k->n < 1 || !c || !out)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_jwt_sign: NULL argument");
    if (!jwt_field_ok(c->sub, sizeof(c->sub), 1) || !jwt_field_ok(c->typ, sizeof(c->typ), 1) ||
        !jwt_field_ok(c->name, sizeof(c->name), 0) ||
        !jwt_field_ok(c->role, sizeof(c->role), 0) || !jwt_field_ok(c->jti, sizeof(c->jti), 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_jwt_sign: sub and typ must be non-empty, every string "
                          "NUL-terminated in its field");
    if (c->iat < 0 || c->iat > JWT_INT_MAX || c->exp < 0 || c->exp > JWT_INT_MAX ||
        c->exp <= c->iat)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "qb_jwt_sign: need 0 <= iat < exp <= 2^53");

    const jwt_key_t *key = &k->keys[0];
    char header[96];
    snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             key->kid);

    cJSON *pl = cJSON_CreateObject();
    char iat[24], exp[24];
    snprintf(iat, sizeof(iat), "%lld", (long long)c->iat);
    snprintf(exp, sizeof(exp), "%lld", (long long)c->exp);
    char *payload = NULL;
    if (pl && cJSON_AddStringToObject(pl, "sub", c->sub) &&
        cJSON_AddStringToObject(pl, "name", c->name) &&
        cJSON_AddStringToObject(pl, "role", c->role) &&
        cJSON_AddStringToObject(pl, "typ", c->typ) &&
        cJSON_AddStringToObject(pl, "jti", c->jti) && cJSON_AddRawToObject(pl, "iat", iat) &&
        cJSON_AddRawToObject(pl, "exp", exp))
        payload = cJSON_PrintUnformatted(pl);
    cJSON_Delete(pl);
    if (!payload) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "qb_jwt_sign: out of memory");

    size_t hl = strlen(header), pl_len = strlen(payload);
    size_t total = QB_B64URL_ENC_LEN(hl) + 1 + QB_B64URL_ENC_LEN(pl_len) + 1 +
                   QB_B64URL_ENC_LEN(JWT_SIG_BYTES);
    if (total > QB_JWT_MAX_LEN || total + 1 > out_size) {
        free(payload);
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "qb_jwt_sign: token needs %zu bytes, buffer has %zu%s", total + 1,
                          out_size, total > QB_JWT_MAX_LEN ? " (over QB_JWT_MAX_LEN)" : "");
    }
    size_t n = 0, o = 0;
    qb_b64url_encode(header, hl, out, out_size, &n);
    o += n;
    out[o++] = '.';
    qb_b64url_encode(payload, pl_len, out + o, out_size - o, &n);
    o += n;
    free(payload);
    unsigned char sig[JWT_SIG_BYTES];
    if (!jwt_hmac(key, out, o, sig)) {
        out[0] = '\0';
        return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "qb_jwt_sign: HMAC failed");
    }
    out[o++] = '.';
    qb_b64url_encode(sig, sizeof(sig), out + o, out_size - o, &n);
    return QB_OK;
}

/* ---- verify -------------------------------------------------------------- */

/* Parse len bytes of JSON that must be one object (whitespace around
 * allowed, nothing else). NULL otherwise. */
static cJSON *jwt_json_object(const char *buf, size_t len) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) return NULL;
    while (end && end < buf + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(j) || end != buf + len) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Decode one base64url part and parse it as a JSON object. */
static cJSON *jwt_part(const char *s, size_t n, char *buf, size_t cap) {
    size_t len = 0;
    if (qb_b64url_decode(s, n, buf, cap, &len) != QB_OK) return NULL;
    return jwt_json_object(buf, len);
}

/* Copy a string claim into dst[cap]; QB_OK or a PARSE error naming it. */
static qb_err_t jwt_str_claim(const cJSON *pl, const char *name, char *dst, size_t cap,
                              int nonempty, char *errstr, size_t errstr_size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pl, name);
    if (!v) return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "missing claim '%s'", name);
    if (!cJSON_IsString(v) || !v->valuestring)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "claim '%s' is not a string", name);
    size_t n = strlen(v->valuestring);
    if (n >= cap)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "claim '%s' too long (%zu > %zu)",
                          name, n, cap - 1);
    if (nonempty && n == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "claim '%s' is empty", name);
    memcpy(dst, v->valuestring, n + 1);
    return QB_OK;
}

/* Integer claim in 0..2^53. *present (may be NULL: then required). */
static qb_err_t jwt_int_claim(const cJSON *pl, const char *name, int64_t *dst, int *present,
                              char *errstr, size_t errstr_size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pl, name);
    if (present) *present = v != NULL;
    if (!v) {
        if (present) return QB_OK;
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "missing claim '%s'", name);
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!isfinite(d) || d < 0 || d > (double)JWT_INT_MAX || d != floor(d))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "claim '%s' is not an integer in 0..2^53", name);
    *dst = (int64_t)d;
    return QB_OK;
}

/* Quote s in errstr only if it is short and plainly printable. */
static const char *jwt_printable(const char *s) {
    size_t n = strnlen(s, 33);
    if (n == 0 || n > 32) return "?";
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '\'' || s[i] == '"' || s[i] == '\\')
            return "?";
    return s;
}

static qb_err_t jwt_verify(const qb_jwt_keys_t *k, const char *token, int64_t now_s,
                           qb_jwt_claims_t *out, char *errstr, size_t errstr_size) {
    size_t tl = strnlen(token, QB_JWT_MAX_LEN + 1);
    if (tl > QB_JWT_MAX_LEN)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "token longer than %d bytes",
                          QB_JWT_MAX_LEN);
    const char *d1 = memchr(token, '.', tl);
    const char *d2 = d1 ? memchr(d1 + 1, '.', tl - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', tl - (size_t)(d2 + 1 - token)) || d1 == token ||
        d2 == d1 + 1 || d2 + 1 == token + tl)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "malformed token (want three non-empty parts header.payload.signature)");

    /* header */
    char buf[QB_B64URL_DEC_MAX(QB_JWT_MAX_LEN) + 1];
    cJSON *h = jwt_part(token, (size_t)(d1 - token), buf, sizeof(buf));
    if (!h)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "malformed token header (not base64url JSON object)");
    qb_err_t err = QB_OK;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(h, "typ");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    const jwt_key_t *key = NULL;
    if (!cJSON_IsString(alg) || !alg->valuestring) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "token header has no alg");
    } else if (strcmp(alg->valuestring, "HS256") != 0) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                         "token alg '%s' not allowed (only HS256)",
                         jwt_printable(alg->valuestring));
    } else if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                         "token header has 'crit' (not supported)");
    } else if (typ && !(cJSON_IsString(typ) && typ->valuestring &&
                        strcmp(typ->valuestring, "JWT") == 0)) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "token header typ is not \"JWT\"");
    } else if (!cJSON_IsString(kid) || !kid->valuestring) {
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "token has no key id (kid)");
    } else {
        size_t kl = strlen(kid->valuestring);
        for (int i = 0; i < k->n && !key; i++)
            if (strcmp(k->keys[i].kid, kid->valuestring) == 0) key = &k->keys[i];
        if (!key)
            err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "unknown key id '%s'",
                             jwt_kid_valid(kid->valuestring, kl) ? kid->valuestring : "?");
    }
    cJSON_Delete(h);
    if (err != QB_OK) return err;

    /* signature over "header.payload" */
    unsigned char sig[JWT_SIG_BYTES + 3], want[JWT_SIG_BYTES];
    size_t sl = 0;
    const char *s = d2 + 1;
    qb_err_t de = qb_b64url_decode(s, tl - (size_t)(s - token), sig, sizeof(sig), &sl);
    if (de == QB_ERR_PARSE)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "token signature is not base64url");
    if (!jwt_hmac(key, token, (size_t)(d2 - token), want))
        return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "HMAC failed");
    int sig_ok = de == QB_OK && sl == JWT_SIG_BYTES && CRYPTO_memcmp(sig, want, JWT_SIG_BYTES) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    if (!sig_ok) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "bad signature");

    /* payload: ours from here on */
    cJSON *pl = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1), buf, sizeof(buf));
    if (!pl)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "malformed token payload (not base64url JSON object)");
    int has_nbf = 0;
    int64_t nbf = 0;
    if ((err = jwt_str_claim(pl, "sub", out->sub, sizeof(out->sub), 1, errstr, errstr_size)) ||
        (err = jwt_str_claim(pl, "name", out->name, sizeof(out->name), 0, errstr,
                             errstr_size)) ||
        (err = jwt_str_claim(pl, "role", out->role, sizeof(out->role), 0, errstr,
                             errstr_size)) ||
        (err = jwt_str_claim(pl, "typ", out->typ, sizeof(out->typ), 1, errstr, errstr_size)) ||
        (err = jwt_str_claim(pl, "jti", out->jti, sizeof(out->jti), 0, errstr, errstr_size)) ||
        (err = jwt_int_claim(pl, "iat", &out->iat, NULL, errstr, errstr_size)) ||
        (err = jwt_int_claim(pl, "exp", &out->exp, NULL, errstr, errstr_size)) ||
        (err = jwt_int_claim(pl, "nbf", &nbf, &has_nbf, errstr, errstr_size))) {
        cJSON_Delete(pl);
        return err;
    }
    cJSON_Delete(pl);

    /* lifetime; now clamped so that +/- leeway cannot overflow */
    const int64_t lim = (int64_t)1 << 62;
    int64_t now = now_s < -lim ? -lim : now_s > lim ? lim : now_s;
    if (now >= out->exp + QB_JWT_LEEWAY_S)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "token expired");
    if (out->iat > now + QB_JWT_LEEWAY_S)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "token not yet valid (issued in the future)");
    if (has_nbf && nbf > now + QB_JWT_LEEWAY_S)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "token not yet valid (nbf)");
    return QB_OK;
}

qb_err_t qb_jwt_verify(const qb_jwt_keys_t *k, const char *token, int64_t now_s,
                       qb_jwt_claims_t *out, char *errstr, size_t errstr_size) {
    qb_jwt_claims_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (out) memset(out, 0, sizeof(*out));
    if (!k || !token)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "qb_jwt_verify: NULL argument");
    qb_err_t err = jwt_verify(k, token, now_s, &tmp, errstr, errstr_size);
    if (err == QB_OK && out) *out = tmp;
    return err;
}
