/* qb_fmt.c — see qb_fmt.h. Owns nothing. */
#include "core/qb_fmt.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t qb_fmt_double(double v, char *buf) {
    double a = v < 0 ? -v : v;
    if (!(a >= 1e-4 && a < 1e16)) /* zero, tiny, huge, inf, NaN: the exponent forms */
        return (size_t)snprintf(buf, QB_FMT_DOUBLE_MAX, "%.17g", v);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int neg = (int)(bits >> 63);
    /* v = m * 2^e exactly; normal in this range, so e in [-66, 1] */
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int e = (int)((bits >> 52) & 0x7ff) - 1075;
    uint64_t ip;
    unsigned __int128 fr = 0, mask = 0;
    int sh = 0;
    if (e >= 0) {
        ip = m << e;
    } else {
        sh = -e;
        ip = sh >= 64 ? 0 : m >> sh;
        mask = ((unsigned __int128)1 << sh) - 1;
        fr = (unsigned __int128)m & mask;
    }
    char d[48]; /* the digits, without the point: ni integer digits, then fraction */
    int nd = 0, ni = 0, sig = 0;
    if (ip) {
        char t[24];
        int k = 0;
        while (ip) {
            t[k++] = (char)('0' + ip % 10);
            ip /= 10;
        }
        while (k) d[nd++] = t[--k];
        ni = sig = nd;
    }
    while (sig < 17) { /* exact: one more decimal of the fraction per step */
        fr *= 10;
        int dig = (int)(fr >> sh);
        fr &= mask;
        d[nd++] = (char)('0' + dig);
        if (sig || dig) sig++;
    }
    /* round half to even on what is left (fr / 2^sh) */
    if (sh > 0) {
        unsigned __int128 half = (unsigned __int128)1 << (sh - 1);
        if (fr > half || (fr == half && ((d[nd - 1] - '0') & 1))) {
            int i = nd - 1;
            while (i >= 0 && d[i] == '9') d[i--] = '0';
            if (i >= 0) {
                d[i]++;
            } else {
                memmove(d + 1, d, (size_t)nd);
                d[0] = '1';
                nd++;
                ni++;
            }
        }
    }
    while (nd > ni && d[nd - 1] == '0') nd--; /* %g drops trailing zeros */
    size_t pos = 0;
    if (neg) buf[pos++] = '-';
    if (ni == 0) {
        buf[pos++] = '0';
    } else {
        memcpy(buf + pos, d, (size_t)ni);
        pos += (size_t)ni;
    }
    if (nd > ni) {
        buf[pos++] = '.';
        memcpy(buf + pos, d + ni, (size_t)(nd - ni));
        pos += (size_t)(nd - ni);
    }
    buf[pos] = '\0';
    return pos;
}
