/* test_auth.c — libs/auth: base64url, passwords, API keys, roles, JWT.
 *
 * Known answers come from outside this code: RFC 4648 §10 (base64 vectors,
 * mapped to the URL alphabet), the published PBKDF2-HMAC-SHA256 vectors
 * ("password"/"salt", c = 1, 2, 4096; RFC 7914 §11 "passwd"/"salt" c=1
 * dkLen=64), FIPS 180-2 SHA-256("abc"), and a JWT computed at test-writing
 * time with Python's hmac + base64 (an independent implementation):
 *
 *   secret = b'k1-secret-0123456789abcdefghijklmnop'
 *   h = b'{"alg":"HS256","typ":"JWT","kid":"k1"}'
 *   p = b'{"sub":"u-42","name":"Ada Lovelace","role":"trader","typ":"access",'
 *       b'"jti":"0f3c9a7e-1b2d-4e5f-8a9b-0c1d2e3f4a5b","iat":1700000000,'
 *       b'"exp":1700000900}'
 *   b = lambda x: base64.urlsafe_b64encode(x).rstrip(b'=').decode()
 *   si = b(h) + '.' + b(p); si + '.' + b(hmac.new(secret, si.encode(),
 *   hashlib.sha256).digest())
 *
 * Tokens with chosen headers/payloads (alg none, crit, missing claims, ...)
 * are made by mk_token() below with a correct HMAC, so each test reaches
 * the check it is about. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/qb_auth.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[512];

#define S1 "k1-secret-0123456789abcdefghijklmnop"
#define S2 "k2-secret-abcdefghijklmnopqrstuvwxyz:with-colon"
#define KNOWN_TOKEN                                                                             \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."                                      \
    "eyJzdWIiOiJ1LTQyIiwibmFtZSI6IkFkYSBMb3ZlbGFjZSIsInJvbGUiOiJ0cmFkZXIiLCJ0eXAiOiJhY2Nlc3MiLC" \
    "JqdGkiOiIwZjNjOWE3ZS0xYjJkLTRlNWYtOGE5Yi0wYzFkMmUzZjRhNWIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6" \
    "MTcwMDAwMDkwMH0.mgzWuOoP-67_8zecAPvTbMYL3y-zWSo1d4vFTMRNGtk"
#define KNOWN_IAT 1700000000
#define KNOWN_EXP 1700000900

/* ---- base64url ------------------------------------------------------------ */

static void enc(const void *d, size_t n, char *out, size_t cap) {
    size_t len = 99;
    assert_int_equal(qb_b64url_encode(d, n, out, cap, &len), QB_OK);
    assert_int_equal(len, strlen(out));
    assert_int_equal(len, QB_B64URL_ENC_LEN(n));
}

static void test_b64url_vectors(void **state) {
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[64], back[64];
    for (int i = 0; i < 7; i++) {
        enc(plain[i], strlen(plain[i]), out, sizeof(out));
        assert_string_equal(out, want[i]);
        size_t n = 99;
        assert_int_equal(qb_b64url_decode(out, strlen(out), back, sizeof(back), &n), QB_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
    /* the URL alphabet: 62 -> '-', 63 -> '_' */
    static const unsigned char hi[] = {0xfb, 0xff};
    enc(hi, 2, out, sizeof(out));
    assert_string_equal(out, "-_8");
    static const unsigned char ff[] = {0xff, 0xff, 0xff};
    enc(ff, 3, out, sizeof(out));
    assert_string_equal(out, "____");
    /* exact buffer sizes: ENC_LEN + 1 fits, one less is RANGE with "" */
    assert_int_equal(qb_b64url_encode("foob", 4, out, 7, NULL), QB_OK);
    strcpy(out, "junk");
    assert_int_equal(qb_b64url_encode("foob", 4, out, 6, NULL), QB_ERR_RANGE);
    assert_string_equal(out, "");
    size_t n = 99;
    assert_int_equal(qb_b64url_decode("Zm9vYg", 6, back, 4, &n), QB_OK);
    assert_int_equal(n, 4);
    assert_int_equal(qb_b64url_decode("Zm9vYg", 6, back, 3, &n), QB_ERR_RANGE);
    assert_int_equal(n, 0);
    /* in_len is honoured: the text need not be NUL-terminated */
    assert_int_equal(qb_b64url_decode("Zm9vYmFy!!!", 4, back, sizeof(back), &n), QB_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(back, "foo", 3);
    assert_int_equal(qb_b64url_decode(NULL, 0, NULL, 0, &n), QB_OK);
    assert_int_equal(n, 0);
}

static void test_b64url_strict(void **state) {
    (void)state;
    /* padding, other alphabets, whitespace, impossible lengths, non-zero
     * trailing bits ("Zh": 'h' has low bits 0001; "Zm9": '9' has 01) */
    static const char *const bad[] = {"Zg==", "Zg=", "Zm9v=", "+/8", "Zm 9", "Zm9v\n",
                                      "Z",    "Zm9vY", "Zh", "Zm9", "Zm9vYh", "Zg\0a"};
    unsigned char out[32];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = 99, len = i == 11 ? 4 : strlen(bad[i]);
        qb_err_t e = qb_b64url_decode(bad[i], len, out, sizeof(out), &n);
        if (e != QB_ERR_PARSE) fail_msg("'%s' decoded (%s)", bad[i], qb_err_name(e));
        assert_int_equal(n, 0);
    }
    /* a bad character is PARSE even with a too-small buffer */
    assert_int_equal(qb_b64url_decode("Zm9v+mFy", 8, out, 1, NULL), QB_ERR_PARSE);
}

static void test_b64url_roundtrip(void **state) {
    (void)state;
    uint64_t rng = qb_test_seed("b64url_roundtrip");
    unsigned char data[200], back[200];
    char text[300], again[300];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(iter % 200);
        for (size_t i = 0; i < len; i++) data[i] = (unsigned char)qb_test_rand(&rng);
        enc(data, len, text, sizeof(text));
        /* length is 4k, 4k+2, 4k+3 — never 4k+1 — and no padding */
        assert_int_not_equal(strlen(text) % 4, 1);
        assert_null(strchr(text, '='));
        size_t n = 0;
        assert_int_equal(qb_b64url_decode(text, strlen(text), back, sizeof(back), &n), QB_OK);
        assert_int_equal(n, len);
        if (len) assert_memory_equal(back, data, len);
        /* canonical: decode then encode gives the same text */
        enc(back, n, again, sizeof(again));
        assert_string_equal(again, text);
    }
}

/* ---- passwords ------------------------------------------------------------ */

static void test_pbkdf2_vectors(void **state) {
    (void)state;
    /* "salt" = c2FsdA; hashes are the published vectors in base64url */
    static const char *const ok[] = {
        /* 120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b */
        "pbkdf2-sha256$1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        /* ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43 */
        "pbkdf2-sha256$2$c2FsdA$rk0Mla9rRtMtCt_5KPBt0CowP47zwlHf1uLYWpVHTEM",
        /* c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a */
        "pbkdf2-sha256$4096$c2FsdA$xeR41ZKIyEGqUw22hFxMjZYok6ABzk4RpJY4c6qYE0o",
    };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(qb_auth_password_verify("password", ok[i]), 1);
        assert_int_equal(qb_auth_password_verify("Password", ok[i]), 0);
        assert_int_equal(qb_auth_password_verify("password ", ok[i]), 0);
        assert_int_equal(qb_auth_password_verify("", ok[i]), 0);
    }
    /* RFC 7914 §11: P="passwd", S="salt", c=1, dkLen=64 = 55ac046e...a19783 */
    static const char rfc7914[] =
        "pbkdf2-sha256$1$c2FsdA$VawEblbjCJ_sFpHCJUS2BflBhSFt3gRl5oudV8INrLxJypzM8Xm2RZkWZLOdd-8xf"
        "HG4RbHjC9UJESBB06GXgw";
    assert_int_equal(qb_auth_password_verify("passwd", rfc7914), 1);
    assert_int_equal(qb_auth_password_verify("password", rfc7914), 0);
    /* same vector, wrong iteration count */
    assert_int_equal(
        qb_auth_password_verify("password",
                                "pbkdf2-sha256$3$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs"),
        0);
}

static void test_password_hash_verify(void **state) {
    (void)state;
    char h1[QB_AUTH_PASSWORD_HASH_SIZE], h2[QB_AUTH_PASSWORD_HASH_SIZE];
    assert_int_equal(qb_auth_password_hash("correct horse battery staple", 1000, h1, sizeof(h1)),
                     QB_OK);
    assert_int_equal(qb_auth_password_hash("correct horse battery staple", 1000, h2, sizeof(h2)),
                     QB_OK);
    /* shape: scheme, iterations, 16-byte salt (22 chars), 32-byte hash (43) */
    assert_true(strncmp(h1, "pbkdf2-sha256$1000$", 19) == 0);
    const char *salt = h1 + 19, *d = strchr(salt, '$');
    assert_non_null(d);
    assert_int_equal(d - salt, 22);
    assert_int_equal(strlen(d + 1), 43);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_int_equal(qb_auth_password_verify("correct horse battery staple", h1), 1);
    assert_int_equal(qb_auth_password_verify("correct horse battery staple", h2), 1);
    assert_int_equal(qb_auth_password_verify("correct horse battery stapl", h1), 0);
    assert_int_equal(qb_auth_password_verify("Correct horse battery staple", h1), 0);
    /* one character of the stored hash changed -> no match */
    char t[QB_AUTH_PASSWORD_HASH_SIZE];
    strcpy(t, h1);
    size_t L = strlen(t);
    t[L - 5] = t[L - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(qb_auth_password_verify("correct horse battery staple", t), 0);
    /* empty and non-ASCII passwords are just bytes */
    assert_int_equal(qb_auth_password_hash("", 10, t, sizeof(t)), QB_OK);
    assert_int_equal(qb_auth_password_verify("", t), 1);
    assert_int_equal(qb_auth_password_verify(" ", t), 0);
    assert_int_equal(qb_auth_password_hash("pässwörd€", 10, t, sizeof(t)), QB_OK);
    assert_int_equal(qb_auth_password_verify("pässwörd€", t), 1);
    assert_int_equal(qb_auth_password_verify("passwörd€", t), 0);
    /* default cost (one hash + one verify at 600000) */
    assert_int_equal(qb_auth_password_hash("s3cret", 0, t, sizeof(t)), QB_OK);
    assert_true(strncmp(t, "pbkdf2-sha256$600000$", 21) == 0);
    assert_int_equal(qb_auth_password_verify("s3cret", t), 1);
    /* buffers and arguments */
    char small[80];
    strcpy(small, "junk");
    assert_int_equal(qb_auth_password_hash("x", 1000, small, sizeof(small)), QB_ERR_RANGE);
    assert_string_equal(small, "");
    assert_int_equal(qb_auth_password_hash(NULL, 1000, t, sizeof(t)), QB_ERR_INVALID);
    assert_int_equal(qb_auth_password_hash("x", QB_AUTH_PBKDF2_ITER_MAX + 1, t, sizeof(t)),
                     QB_ERR_INVALID);
    assert_int_equal(qb_auth_password_verify(NULL, h1), 0);
    assert_int_equal(qb_auth_password_verify("x", NULL), 0);
}

static void test_password_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "password",
        "pbkdf2-sha1$1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "PBKDF2-SHA256$1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$0$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$01$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$-1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$+1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$1x$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$10000001$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$99999999999999999999$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",
        "pbkdf2-sha256$1$$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",     /* empty salt */
        "pbkdf2-sha256$1$c2FsdA$",                                          /* empty hash */
        "pbkdf2-sha256$1$c2FsdA$Eg-2z_z4syxD5yJS",                          /* 12-byte hash */
        "pbkdf2-sha256$1$c2FsdA",                                           /* no hash */
        "pbkdf2-sha256$1",                                                  /* no salt */
        "pbkdf2-sha256$1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs$", /* extra $ */
        "pbkdf2-sha256$1$c2FsdA==$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs", /* padding */
        "pbkdf2-sha256$1$c2FsdA$Eg+2z/z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs",  /* base64 */
        "pbkdf2-sha256$1$c2FsdA$Eg-2z_z4syxD5yJSVsT4N6hlSMkszDVICAWYfLcL4Xs ", /* trailing */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (qb_auth_password_verify("password", bad[i]) != 0) fail_msg("accepted: '%s'", bad[i]);
}

/* ---- API keys, SHA-256 ---------------------------------------------------- */

static void test_sha256_hex(void **state) {
    (void)state;
    char h[65];
    qb_auth_sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    qb_auth_sha256_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_apikey(void **state) {
    (void)state;
    enum { N = 200 };
    static char keys[N][QB_AUTH_APIKEY_LEN + 1];
    for (int i = 0; i < N; i++) {
        char prefix[QB_AUTH_PREFIX_LEN + 1], hash[65], want[65];
        assert_int_equal(qb_auth_apikey_new(keys[i], prefix, hash), QB_OK);
        assert_int_equal(strlen(keys[i]), QB_AUTH_APIKEY_LEN);
        assert_true(strncmp(keys[i], "qbk_", 4) == 0);
        assert_int_equal(strlen(prefix), QB_AUTH_PREFIX_LEN);
        assert_true(strncmp(keys[i], prefix, QB_AUTH_PREFIX_LEN) == 0);
        qb_auth_sha256_hex(keys[i], strlen(keys[i]), want);
        assert_string_equal(hash, want);
        assert_int_equal(qb_auth_apikey_wellformed(keys[i]), 1);
        for (int j = 0; j < i; j++) assert_string_not_equal(keys[i], keys[j]);
    }
    /* shape checks */
    char k[64];
    strcpy(k, keys[0]);
    assert_int_equal(qb_auth_apikey_wellformed(NULL), 0);
    assert_int_equal(qb_auth_apikey_wellformed(""), 0);
    assert_int_equal(qb_auth_apikey_wellformed("qbk_"), 0);
    k[QB_AUTH_APIKEY_LEN - 1] = '\0'; /* one short */
    assert_int_equal(qb_auth_apikey_wellformed(k), 0);
    strcpy(k, keys[0]);
    strcat(k, "A"); /* one long */
    assert_int_equal(qb_auth_apikey_wellformed(k), 0);
    strcpy(k, keys[0]);
    k[2] = 'x'; /* wrong tag */
    assert_int_equal(qb_auth_apikey_wellformed(k), 0);
    strcpy(k, keys[0]);
    k[10] = '+'; /* outside the alphabet */
    assert_int_equal(qb_auth_apikey_wellformed(k), 0);
    /* 43 chars of 32 bytes leave 2 spare bits: the last char is one of
     * AEIMQUYcgkosw048; 'B' is not canonical */
    strcpy(k, keys[0]);
    k[QB_AUTH_APIKEY_LEN - 1] = 'B';
    assert_int_equal(qb_auth_apikey_wellformed(k), 0);
    k[QB_AUTH_APIKEY_LEN - 1] = 'E';
    assert_int_equal(qb_auth_apikey_wellformed(k), 1);
}

/* ---- roles ---------------------------------------------------------------- */

static void test_roles(void **state) {
    (void)state;
    for (int r = QB_ROLE_VIEWER; r <= QB_ROLE_ADMIN; r++)
        assert_int_equal(qb_role_parse(qb_role_name((qb_role_t)r)), r);
    assert_string_equal(qb_role_name(QB_ROLE_VIEWER), "viewer");
    assert_string_equal(qb_role_name(QB_ROLE_TRADER), "trader");
    assert_string_equal(qb_role_name(QB_ROLE_ADMIN), "admin");
    assert_string_equal(qb_role_name(QB_ROLE_NONE), "none");
    assert_string_equal(qb_role_name((qb_role_t)7), "none");
    assert_string_equal(qb_role_name((qb_role_t)-1), "none");
    assert_int_equal(qb_role_parse(NULL), QB_ROLE_NONE);
    assert_int_equal(qb_role_parse(""), QB_ROLE_NONE);
    assert_int_equal(qb_role_parse("none"), QB_ROLE_NONE);
    assert_int_equal(qb_role_parse("Admin"), QB_ROLE_NONE);
    assert_int_equal(qb_role_parse("admin "), QB_ROLE_NONE);
    assert_int_equal(qb_role_parse("superuser"), QB_ROLE_NONE);
    assert_true(QB_ROLE_ADMIN > QB_ROLE_TRADER && QB_ROLE_TRADER > QB_ROLE_VIEWER &&
                QB_ROLE_VIEWER > QB_ROLE_NONE);
}

/* ---- JWT ------------------------------------------------------------------ */

/* header_json.payload_json signed with HMAC-SHA256(secret), or with the
 * literal signature `sig` when non-NULL. */
static void mk_token(const char *secret, const char *header_json, const char *payload_json,
                     const char *sig, char *out, size_t cap) {
    size_t n = 0, o = 0;
    assert_int_equal(qb_b64url_encode(header_json, strlen(header_json), out, cap, &n), QB_OK);
    o = n;
    out[o++] = '.';
    assert_int_equal(qb_b64url_encode(payload_json, strlen(payload_json), out + o, cap - o, &n),
                     QB_OK);
    o += n;
    if (sig) {
        assert_true(o + 1 + strlen(sig) < cap);
        out[o++] = '.';
        strcpy(out + o, sig);
        return;
    }
    unsigned char md[32];
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, o, md,
                         &ml));
    out[o++] = '.';
    assert_int_equal(qb_b64url_encode(md, 32, out + o, cap - o, NULL), QB_OK);
}

#define HDR_K1 "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"
#define PAYLOAD_OK                                                                        \
    "{\"sub\":\"u1\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\"," \
    "\"iat\":1000,\"exp\":1900}"

static qb_jwt_keys_t *keys(const char *spec) {
    qb_jwt_keys_t *k = qb_jwt_keys_parse(spec, E, sizeof(E));
    if (!k) fail_msg("qb_jwt_keys_parse: %s", E);
    return k;
}

/* verify must fail with `code` and an errstr containing `text`, and leave
 * *out zeroed. */
static void verify_fails(const qb_jwt_keys_t *k, const char *tok, int64_t now, qb_err_t code,
                         const char *text) {
    qb_jwt_claims_t c;
    memset(&c, 0x5a, sizeof(c));
    ERR(code, qb_jwt_verify(k, tok, now, &c, E, sizeof(E)));
    if (!strstr(E, text)) fail_msg("error '%s' does not mention '%s' (token %s)", E, text, tok);
    static const qb_jwt_claims_t zero;
    assert_memory_equal(&c, &zero, sizeof(c));
}

static void test_jwt_keys_parse(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k2:" S2 ",k1:" S1);
    assert_string_equal(qb_jwt_keys_signing_kid(k), "k2");
    qb_jwt_keys_free(k);
    qb_jwt_keys_free(NULL);
    struct {
        const char *spec, *text;
    } bad[] = {
        {"", "empty"},
        {"k1", "no ':'"},
        {":" S1, "bad key id"},
        {"k 1:" S1, "bad key id"},
        {"k1:" S1 ",k2:short-secret-31-bytes-long-xx", "'k2'"},
        {"k1:" S1 ",k1:" S2, "duplicate JWT key id 'k1'"},
        {"k1:" S1 ",", "entry 2 is empty"},
        {",k1:" S1, "entry 1 is empty"},
        {"k1:" S1 ",,k2:" S2, "entry 2 is empty"},
        {"a23456789012345678901234567890123:" S1, "bad key id"}, /* 33-char kid */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        E[0] = '\0';
        k = qb_jwt_keys_parse(bad[i].spec, E, sizeof(E));
        if (k) fail_msg("accepted '%s'", bad[i].spec);
        if (!strstr(E, bad[i].text)) fail_msg("'%s': error '%s' lacks '%s'", bad[i].spec, E, bad[i].text);
        /* no secret material in the error */
        assert_null(strstr(E, "secret-"));
        assert_null(strstr(E, "short-secret"));
    }
    assert_null(qb_jwt_keys_parse(NULL, E, sizeof(E)));
    /* the short-secret error names the kid and the sizes */
    assert_null(qb_jwt_keys_parse("kx:0123456789012345678901234567890", E, sizeof(E)));
    assert_string_equal(E, "JWT key 'kx': secret is 31 bytes, need at least 32");
    /* exactly 32 bytes, a 32-char kid, and 16 keys are fine; 17 are not */
    k = keys("a2345678901234567890123456789012:01234567890123456789012345678901");
    qb_jwt_keys_free(k);
    char spec[2048] = "";
    for (int i = 0; i < 17; i++) {
        char e[64];
        snprintf(e, sizeof(e), "%sk%d:" S1, i ? "," : "", i);
        strcat(spec, e);
        if (i == 15) {
            k = keys(spec);
            qb_jwt_keys_free(k);
        }
    }
    assert_null(qb_jwt_keys_parse(spec, E, sizeof(E)));
    assert_non_null(strstr(E, "more than 16"));
}

static void test_jwt_known_token(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1);
    qb_jwt_claims_t c;
    OK(qb_jwt_verify(k, KNOWN_TOKEN, KNOWN_IAT + 100, &c, E, sizeof(E)));
    assert_string_equal(c.sub, "u-42");
    assert_string_equal(c.name, "Ada Lovelace");
    assert_string_equal(c.role, "trader");
    assert_string_equal(c.typ, "access");
    assert_string_equal(c.jti, "0f3c9a7e-1b2d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_int_equal(c.iat, KNOWN_IAT);
    assert_int_equal(c.exp, KNOWN_EXP);
    assert_int_equal(qb_role_parse(c.role), QB_ROLE_TRADER);
    /* signing the same claims gives the same token, byte for byte */
    char tok[QB_JWT_MAX_LEN + 1];
    OK(qb_jwt_sign(k, &c, tok, sizeof(tok), E, sizeof(E)));
    assert_string_equal(tok, KNOWN_TOKEN);
    /* same kid, another secret: bad signature */
    qb_jwt_keys_t *other = keys("k1:" S2);
    verify_fails(other, KNOWN_TOKEN, KNOWN_IAT + 100, QB_ERR_INVALID, "bad signature");
    qb_jwt_keys_free(other);
    /* the jwt.io example (secret "your-256-bit-secret", too short for us
     * anyway) has no kid */
    verify_fails(k,
                 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpv"
                 "aG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
                 1516239100, QB_ERR_INVALID, "no key id");
    qb_jwt_keys_free(k);
}

static qb_jwt_claims_t claims(const char *sub, const char *role, const char *typ, int64_t iat,
                              int64_t exp) {
    qb_jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.name, sizeof(c.name), "Name of %s", sub);
    snprintf(c.role, sizeof(c.role), "%s", role);
    snprintf(c.typ, sizeof(c.typ), "%s", typ);
    snprintf(c.jti, sizeof(c.jti), "jti-%s-%lld", sub, (long long)iat);
    c.iat = iat;
    c.exp = exp;
    return c;
}

static void test_jwt_rotation(void **state) {
    (void)state;
    qb_jwt_keys_t *old = keys("k1:" S1);
    qb_jwt_keys_t *both = keys("k2:" S2 ",k1:" S1);
    qb_jwt_keys_t *only_new = keys("k2:" S2);
    qb_jwt_claims_t c = claims("u7", "viewer", "refresh", 5000, 5000 + 86400), got;
    char t_old[QB_JWT_MAX_LEN + 1], t_new[QB_JWT_MAX_LEN + 1];
    OK(qb_jwt_sign(old, &c, t_old, sizeof(t_old), E, sizeof(E)));
    OK(qb_jwt_sign(both, &c, t_new, sizeof(t_new), E, sizeof(E)));
    assert_string_not_equal(t_old, t_new);
    /* signed by the old key: verifies while k1 is listed */
    OK(qb_jwt_verify(old, t_old, 6000, &got, E, sizeof(E)));
    OK(qb_jwt_verify(both, t_old, 6000, &got, E, sizeof(E)));
    assert_memory_equal(&got, &c, sizeof(c));
    /* signed by the new key (first in the list) */
    OK(qb_jwt_verify(both, t_new, 6000, &got, E, sizeof(E)));
    assert_memory_equal(&got, &c, sizeof(c));
    OK(qb_jwt_verify(only_new, t_new, 6000, &got, E, sizeof(E)));
    /* k1 removed: its tokens are refused by kid */
    verify_fails(only_new, t_old, 6000, QB_ERR_INVALID, "unknown key id 'k1'");
    verify_fails(old, t_new, 6000, QB_ERR_INVALID, "unknown key id 'k2'");
    assert_string_equal(E, "unknown key id 'k2'");
    qb_jwt_keys_free(old);
    qb_jwt_keys_free(both);
    qb_jwt_keys_free(only_new);
}

static void test_jwt_tampered(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1 ",k2:" S2);
    char tok[QB_JWT_MAX_LEN + 1], t[QB_JWT_MAX_LEN + 16];
    qb_jwt_claims_t c = claims("u9", "viewer", "access", 1000, 1900);
    OK(qb_jwt_sign(k, &c, tok, sizeof(tok), E, sizeof(E)));
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    const char *sig = d2 + 1;
    /* payload replaced (viewer -> admin), signature kept */
    qb_jwt_claims_t evil = c;
    strcpy(evil.role, "admin");
    char tok2[QB_JWT_MAX_LEN + 1];
    OK(qb_jwt_sign(k, &evil, tok2, sizeof(tok2), E, sizeof(E)));
    snprintf(t, sizeof(t), "%.*s%s", (int)(strrchr(tok2, '.') - tok2 + 1), tok2, sig);
    verify_fails(k, t, 1500, QB_ERR_INVALID, "bad signature");
    /* every single-character change in the payload or signature fails */
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (char *p = d1 + 1; *p; p++) {
        if (p == d2) continue;
        strcpy(t, tok);
        size_t i = (size_t)(p - tok);
        t[i] = alpha[(strchr(alpha, t[i]) - alpha + 1) % 64];
        qb_jwt_claims_t out;
        qb_err_t e = qb_jwt_verify(k, t, 1500, &out, E, sizeof(E));
        if (e == QB_OK) fail_msg("tampered token verified: %s", t);
    }
    /* truncated / extended signature (40 chars = 30 bytes: valid base64url;
     * 39 chars end in a non-canonical character) */
    strcpy(t, tok);
    t[strlen(t) - 3] = '\0';
    verify_fails(k, t, 1500, QB_ERR_INVALID, "bad signature");
    t[strlen(t) - 1] = '\0';
    verify_fails(k, t, 1500, QB_ERR_PARSE, "signature is not base64url");
    snprintf(t, sizeof(t), "%sAAAA", tok);
    verify_fails(k, t, 1500, QB_ERR_INVALID, "bad signature");
    /* kid switched to the other listed key: header changes, signature no
     * longer matches */
    size_t pl_len = (size_t)(d2 - d1 - 1);
    char hdr[128];
    size_t hn = 0;
    static const char h2[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k2\"}";
    assert_int_equal(qb_b64url_encode(h2, strlen(h2), hdr, sizeof(hdr), &hn), QB_OK);
    snprintf(t, sizeof(t), "%s.%.*s.%s", hdr, (int)pl_len, d1 + 1, sig);
    verify_fails(k, t, 1500, QB_ERR_INVALID, "bad signature");
    /* the untouched token still verifies */
    qb_jwt_claims_t out;
    OK(qb_jwt_verify(k, tok, 1500, &out, E, sizeof(E)));
    qb_jwt_keys_free(k);
}

static void test_jwt_alg(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1);
    char t[QB_JWT_MAX_LEN + 1];
    /* alg none, unsigned (empty third part) */
    mk_token(S1, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", PAYLOAD_OK, "", t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "three non-empty parts");
    /* alg none with a signature part, even a valid HMAC */
    mk_token(S1, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t,
             sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "alg 'none' not allowed");
    mk_token(S1, "{\"alg\":\"None\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "not allowed");
    mk_token(S1, "{\"alg\":\"HS512\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "alg 'HS512' not allowed");
    mk_token(S1, "{\"alg\":\"RS256\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "alg 'RS256' not allowed");
    mk_token(S1, "{\"alg\":\"hs256\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "not allowed");
    /* an alg that is not plain text is not echoed */
    mk_token(S1, "{\"alg\":\"x\\n'y\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "alg '?' not allowed");
    mk_token(S1, "{\"typ\":\"JWT\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "no alg");
    mk_token(S1, "{\"alg\":256,\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "no alg");
    /* crit, typ, kid */
    mk_token(S1, "{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", PAYLOAD_OK, NULL, t,
             sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "crit");
    mk_token(S1, "{\"alg\":\"HS256\",\"typ\":\"JWE\",\"kid\":\"k1\"}", PAYLOAD_OK, NULL, t,
             sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "typ");
    mk_token(S1, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "no key id");
    mk_token(S1, "{\"alg\":\"HS256\",\"kid\":1}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "no key id");
    mk_token(S1, "{\"alg\":\"HS256\",\"kid\":\"k9\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "unknown key id 'k9'");
    mk_token(S1, "{\"alg\":\"HS256\",\"kid\":\"k1' or '1\"}", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_INVALID, "unknown key id '?'");
    /* typ absent is fine; header key order and whitespace do not matter */
    mk_token(S1, " { \"kid\" : \"k1\", \"alg\" : \"HS256\" } ", PAYLOAD_OK, NULL, t, sizeof(t));
    qb_jwt_claims_t c;
    OK(qb_jwt_verify(k, t, 1500, &c, E, sizeof(E)));
    assert_string_equal(c.sub, "u1");
    assert_string_equal(c.role, "admin");
    qb_jwt_keys_free(k);
}

static void test_jwt_malformed(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1);
    static const char *const shapes[] = {"", ".", "..", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.",
                                         "eyJhbGciOiJIUzI1NiJ9"};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        verify_fails(k, shapes[i], 1500, QB_ERR_PARSE, "malformed token");
    char t[QB_JWT_MAX_LEN + 64];
    /* header not base64url / not JSON / not an object / trailing junk */
    verify_fails(k, "eyJ+bGci.eyJz.abcd", 1500, QB_ERR_PARSE, "header");
    mk_token(S1, "{\"alg\":\"HS256\"", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "header");
    mk_token(S1, "[\"HS256\"]", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "header");
    mk_token(S1, HDR_K1 "x", PAYLOAD_OK, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "header");
    /* signature part not base64url */
    mk_token(S1, HDR_K1, PAYLOAD_OK, "abc+def", t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "signature is not base64url");
    /* too long */
    memset(t, 'A', QB_JWT_MAX_LEN + 1);
    t[10] = t[20] = '.';
    t[QB_JWT_MAX_LEN + 1] = '\0';
    verify_fails(k, t, 1500, QB_ERR_PARSE, "longer than");
    /* payloads: correctly signed, wrong inside */
    struct {
        const char *payload, *text;
    } bad[] = {
        {"not json", "payload"},
        {"[1,2]", "payload"},
        {"{\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\",\"iat\":1000,"
         "\"exp\":1900}",
         "missing claim 'sub'"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000}",
         "missing claim 'exp'"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"jti\":\"j\",\"iat\":1000,"
         "\"exp\":1900}",
         "missing claim 'typ'"},
        {"{\"sub\":\"u\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\",\"iat\":1000,"
         "\"exp\":1900}",
         "missing claim 'name'"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"exp\":1900}",
         "missing claim 'iat'"},
        {"{\"sub\":42,\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":1900}",
         "claim 'sub' is not a string"},
        {"{\"sub\":\"\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":1900}",
         "claim 'sub' is empty"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"administrator-role\",\"typ\":\"access\","
         "\"jti\":\"j\",\"iat\":1000,\"exp\":1900}",
         "claim 'role' too long"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":\"1900\"}",
         "claim 'exp' is not an integer"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":1900.5}",
         "claim 'exp' is not an integer"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":-1,\"exp\":1900}",
         "claim 'iat' is not an integer"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":1e300}",
         "claim 'exp' is not an integer"},
        {"{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
         "\"iat\":1000,\"exp\":1900,\"nbf\":true}",
         "claim 'nbf' is not an integer"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mk_token(S1, HDR_K1, bad[i].payload, NULL, t, sizeof(t));
        verify_fails(k, t, 1500, QB_ERR_PARSE, bad[i].text);
    }
    /* a 63-char sub fits, 64 does not */
    char pl[512];
    snprintf(pl, sizeof(pl),
             "{\"sub\":\"%063d\",\"name\":\"\",\"role\":\"\",\"typ\":\"access\",\"jti\":\"\","
             "\"iat\":1000,\"exp\":1900}",
             7);
    mk_token(S1, HDR_K1, pl, NULL, t, sizeof(t));
    qb_jwt_claims_t c;
    OK(qb_jwt_verify(k, t, 1500, &c, E, sizeof(E)));
    assert_int_equal(strlen(c.sub), 63);
    snprintf(pl, sizeof(pl),
             "{\"sub\":\"%064d\",\"name\":\"\",\"role\":\"\",\"typ\":\"access\",\"jti\":\"\","
             "\"iat\":1000,\"exp\":1900}",
             7);
    mk_token(S1, HDR_K1, pl, NULL, t, sizeof(t));
    verify_fails(k, t, 1500, QB_ERR_PARSE, "claim 'sub' too long");
    /* NULL arguments */
    ERR(QB_ERR_INVALID, qb_jwt_verify(NULL, KNOWN_TOKEN, 1500, &c, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_jwt_verify(k, NULL, 1500, &c, E, sizeof(E)));
    qb_jwt_keys_free(k);
}

static void test_jwt_lifetime(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1);
    char t[QB_JWT_MAX_LEN + 1];
    qb_jwt_claims_t c = claims("u1", "trader", "access", 1000, 1900), out;
    OK(qb_jwt_sign(k, &c, t, sizeof(t), E, sizeof(E)));
    /* exp: valid until exp + leeway (exclusive) */
    OK(qb_jwt_verify(k, t, 1000, &out, E, sizeof(E)));
    OK(qb_jwt_verify(k, t, 1899, &out, E, sizeof(E)));
    OK(qb_jwt_verify(k, t, 1900 + QB_JWT_LEEWAY_S - 1, &out, E, sizeof(E)));
    verify_fails(k, t, 1900 + QB_JWT_LEEWAY_S, QB_ERR_RANGE, "token expired");
    assert_string_equal(E, "token expired");
    verify_fails(k, t, INT64_MAX, QB_ERR_RANGE, "token expired");
    /* iat: up to leeway in the future is clock skew, beyond is refused */
    OK(qb_jwt_verify(k, t, 1000 - QB_JWT_LEEWAY_S, &out, E, sizeof(E)));
    verify_fails(k, t, 1000 - QB_JWT_LEEWAY_S - 1, QB_ERR_RANGE, "not yet valid");
    verify_fails(k, t, INT64_MIN, QB_ERR_RANGE, "not yet valid");
    /* nbf, when present, likewise */
    mk_token(S1, HDR_K1,
             "{\"sub\":\"u\",\"name\":\"n\",\"role\":\"admin\",\"typ\":\"access\",\"jti\":\"j\","
             "\"iat\":1000,\"exp\":1900,\"nbf\":1500}",
             NULL, t, sizeof(t));
    verify_fails(k, t, 1469, QB_ERR_RANGE, "nbf");
    OK(qb_jwt_verify(k, t, 1470, &out, E, sizeof(E)));
    /* an expired token with a bad signature is refused for the signature */
    t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
    verify_fails(k, t, 5000, QB_ERR_INVALID, "bad signature");
    qb_jwt_keys_free(k);
}

static void test_jwt_sign_edge(void **state) {
    (void)state;
    qb_jwt_keys_t *k = keys("k1:" S1);
    char t[QB_JWT_MAX_LEN + 1];
    qb_jwt_claims_t c = claims("u1", "admin", "access", 1000, 1900), out;
    /* strings that need JSON escaping, UTF-8, full-length fields */
    memset(c.name, '"', sizeof(c.name) - 1);
    c.name[sizeof(c.name) - 1] = '\0';
    memset(c.sub, 0x01, sizeof(c.sub) - 1); /* control chars: 6x when escaped */
    c.sub[sizeof(c.sub) - 1] = '\0';
    memset(c.jti, '\\', sizeof(c.jti) - 1);
    c.jti[sizeof(c.jti) - 1] = '\0';
    snprintf(c.role, sizeof(c.role), "r\xc3\xb4le\t\n");
    memset(c.typ, 0x1f, sizeof(c.typ) - 1);
    c.typ[sizeof(c.typ) - 1] = '\0';
    c.iat = 0;
    c.exp = 9007199254740992LL;
    OK(qb_jwt_sign(k, &c, t, sizeof(t), E, sizeof(E)));
    assert_true(strlen(t) <= QB_JWT_MAX_LEN);
    OK(qb_jwt_verify(k, t, 5000, &out, E, sizeof(E)));
    assert_memory_equal(&out, &c, sizeof(c));
    /* buffer too small */
    c = claims("u1", "admin", "access", 1000, 1900);
    OK(qb_jwt_sign(k, &c, t, sizeof(t), E, sizeof(E)));
    size_t need = strlen(t) + 1;
    char small[QB_JWT_MAX_LEN];
    OK(qb_jwt_sign(k, &c, small, need, E, sizeof(E)));
    assert_string_equal(small, t);
    ERR(QB_ERR_RANGE, qb_jwt_sign(k, &c, small, need - 1, E, sizeof(E)));
    assert_string_equal(small, "");
    /* claims verify would refuse */
    qb_jwt_claims_t bad = c;
    bad.sub[0] = '\0';
    ERR(QB_ERR_INVALID, qb_jwt_sign(k, &bad, t, sizeof(t), E, sizeof(E)));
    bad = c;
    bad.typ[0] = '\0';
    ERR(QB_ERR_INVALID, qb_jwt_sign(k, &bad, t, sizeof(t), E, sizeof(E)));
    bad = c;
    memset(bad.role, 'x', sizeof(bad.role)); /* not NUL-terminated */
    ERR(QB_ERR_INVALID, qb_jwt_sign(k, &bad, t, sizeof(t), E, sizeof(E)));
    bad = c;
    bad.exp = bad.iat;
    ERR(QB_ERR_INVALID, qb_jwt_sign(k, &bad, t, sizeof(t), E, sizeof(E)));
    bad = c;
    bad.iat = -5;
    ERR(QB_ERR_INVALID, qb_jwt_sign(k, &bad, t, sizeof(t), E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_jwt_sign(NULL, &c, t, sizeof(t), E, sizeof(E)));
    /* tokens are distinct per claim set and stable per claim set */
    char t2[QB_JWT_MAX_LEN + 1];
    OK(qb_jwt_sign(k, &c, t, sizeof(t), E, sizeof(E)));
    OK(qb_jwt_sign(k, &c, t2, sizeof(t2), E, sizeof(E)));
    assert_string_equal(t, t2);
    c.exp++;
    OK(qb_jwt_sign(k, &c, t2, sizeof(t2), E, sizeof(E)));
    assert_string_not_equal(t, t2);
    qb_jwt_keys_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_pbkdf2_vectors),
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_malformed),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_apikey),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_jwt_keys_parse),
        cmocka_unit_test(test_jwt_known_token),
        cmocka_unit_test(test_jwt_rotation),
        cmocka_unit_test(test_jwt_tampered),
        cmocka_unit_test(test_jwt_alg),
        cmocka_unit_test(test_jwt_malformed),
        cmocka_unit_test(test_jwt_lifetime),
        cmocka_unit_test(test_jwt_sign_edge),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
