/* fuzz_time.c — libFuzzer target for qb_time_parse.
 *
 * Input: arbitrary bytes, parsed as exactly that many bytes (no NUL: ASan
 * catches any read past the end). When parsing succeeds the instant is
 * formatted and parsed again and must come back unchanged; the error
 * message path is exercised too and must always be terminated.
 * Build: make fuzz; run: ./build-fuzz/fuzz_time -max_total_time=60 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    char err[64], buf[QB_TIME_STRLEN];
    qb_time_t t, back, t2;
    memset(err, 'x', sizeof err);
    qb_err_t rc = qb_time_parse_ex(s, size, &t, err, sizeof err);
    if (rc != QB_OK && !memchr(err, '\0', sizeof err)) abort();
    if (qb_time_parse(s, size, &t2) != rc) abort();
    if (rc != QB_OK) return 0;
    if (t2 != t) abort();
    size_t n = qb_time_format(t, buf, sizeof buf);
    if (n >= sizeof buf || qb_time_parse(buf, n, &back) != QB_OK || back != t) {
        fprintf(stderr, "round trip: %lld -> \"%s\"\n", (long long)t, buf);
        abort();
    }
    return 0;
}
