/* qb_b64url.c — base64url (RFC 4648 §5) without padding, strict decoder.
 *
 * Used for JWT parts, API keys, password salts/hashes and the gateway's
 * pagination cursors. The decoder accepts exactly the texts the encoder
 * produces: alphabet A-Z a-z 0-9 - _, no '=', no whitespace, length mod 4
 * != 1, and the unused low bits of the last character zero. So an accepted
 * text has one byte string and vice versa (no malleable signatures). Pure
 * functions, no allocation. */
#include <stdint.h>
#include <string.h>

#include "auth/qb_auth.h"

static const char b64url_alpha[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63, or -1 for a character outside the alphabet. */
static int b64url_val(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

qb_err_t qb_b64url_encode(const void *data, size_t len, char *out, size_t out_size,
                          size_t *out_len) {
    if (out_len) *out_len = 0;
    if (!out || (!data && len)) return QB_ERR_INVALID;
    size_t need = QB_B64URL_ENC_LEN(len);
    if (len > (SIZE_MAX - 3) / 4 || out_size < need + 1) {
        if (out_size) out[0] = '\0';
        return QB_ERR_RANGE;
    }
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
        out[o++] = b64url_alpha[v >> 6 & 63];
        out[o++] = b64url_alpha[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alpha[v >> 18 & 63];
        out[o++] = b64url_alpha[v >> 12 & 63];
        out[o++] = b64url_alpha[v >> 6 & 63];
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return QB_OK;
}

qb_err_t qb_b64url_decode(const char *in, size_t in_len, void *out, size_t out_size,
                          size_t *out_len) {
    if (out_len) *out_len = 0;
    if ((!in && in_len) || (!out && out_size)) return QB_ERR_INVALID;
    size_t rem = in_len % 4;
    if (rem == 1) return QB_ERR_PARSE;
    size_t need = in_len / 4 * 3 + (rem ? rem - 1 : 0);
    /* Validate every character first, so a bad text is PARSE whatever the
     * buffer size. */
    for (size_t i = 0; i < in_len; i++)
        if (b64url_val((unsigned char)in[i]) < 0) return QB_ERR_PARSE;
    if (rem) {
        int last = b64url_val((unsigned char)in[in_len - 1]);
        /* 2 chars carry 12 bits for 8 (4 spare), 3 chars 18 for 16 (2). */
        if (last & (rem == 2 ? 0x0f : 0x03)) return QB_ERR_PARSE;
    }
    if (out_size < need) return QB_ERR_RANGE;
    unsigned char *q = out;
    size_t o = 0, i = 0;
    for (; i + 4 <= in_len; i += 4) {
        uint32_t v = (uint32_t)b64url_val((unsigned char)in[i]) << 18 |
                     (uint32_t)b64url_val((unsigned char)in[i + 1]) << 12 |
                     (uint32_t)b64url_val((unsigned char)in[i + 2]) << 6 |
                     (uint32_t)b64url_val((unsigned char)in[i + 3]);
        q[o++] = (unsigned char)(v >> 16);
        q[o++] = (unsigned char)(v >> 8);
        q[o++] = (unsigned char)v;
    }
    if (rem) {
        uint32_t v = (uint32_t)b64url_val((unsigned char)in[i]) << 18 |
                     (uint32_t)b64url_val((unsigned char)in[i + 1]) << 12;
        if (rem == 3) v |= (uint32_t)b64url_val((unsigned char)in[i + 2]) << 6;
        q[o++] = (unsigned char)(v >> 16);
        if (rem == 3) q[o++] = (unsigned char)(v >> 8);
    }
    if (out_len) *out_len = o;
    return QB_OK;
}
