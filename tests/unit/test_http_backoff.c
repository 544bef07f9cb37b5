/* test_http_backoff.c — the pure arithmetic of libs/http/qb_http: full-jitter
 * back-off bounds and doubling, Retry-After (delta-seconds, IMF-fixdate,
 * RFC 850, asctime, garbage), the retry delay choice and cap, the token
 * bucket against a fake clock, URL encoding, redaction of secrets. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/qb_http.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static char E[512];

static void test_backoff_bounds(void **state) {
    (void)state;
    /* rnd = max -> the cap itself; rnd = 0 -> 0 */
    assert_int_equal(qb_http_backoff_ms(1, 100, 10000, UINT64_MAX - (UINT64_MAX % 101)), 0);
    assert_int_equal(qb_http_backoff_ms(1, 100, 10000, 100), 100);
    assert_int_equal(qb_http_backoff_ms(2, 100, 10000, 200), 200);
    assert_int_equal(qb_http_backoff_ms(3, 100, 10000, 400), 400);
    assert_int_equal(qb_http_backoff_ms(3, 100, 10000, 401), 0); /* 401 % 401 */
    /* capped at max, and no overflow for huge retry counts */
    assert_int_equal(qb_http_backoff_ms(8, 100, 10000, 10000), 10000);
    assert_int_equal(qb_http_backoff_ms(1000, 100, 10000, 10000), 10000);
    assert_int_equal(qb_http_backoff_ms(70, INT64_MAX / 4, INT64_MAX / 2, 5), 5);
    assert_int_equal(qb_http_backoff_ms(1, 0, 100, 50), 0);
    /* uniform-ish: many draws stay within [0, cap] and cover both halves */
    uint64_t s = qb_test_seed("backoff");
    int lo = 0, hi = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t v = qb_http_backoff_ms(4, 250, 30000, qb_test_rand(&s));
        assert_true(v >= 0 && v <= 2000);
        if (v < 1000) lo++;
        else hi++;
    }
    assert_true(lo > 4000 && hi > 4000);
}

static void test_retry_after(void **state) {
    (void)state;
    int64_t ms = -1;
    assert_true(qb_http_parse_retry_after("1", 0, &ms));
    assert_int_equal(ms, 1000);
    assert_true(qb_http_parse_retry_after("  120 ", 0, &ms));
    assert_int_equal(ms, 120000);
    assert_true(qb_http_parse_retry_after("0", 0, &ms));
    assert_int_equal(ms, 0);
    /* 1994-11-06T08:49:37Z = 784111777 */
    assert_true(qb_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30, &ms));
    assert_int_equal(ms, 30000);
    assert_true(qb_http_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 2, &ms));
    assert_int_equal(ms, 2000);
    assert_true(qb_http_parse_retry_after("Sun Nov  6 08:49:37 1994", 784111777 - 5, &ms));
    assert_int_equal(ms, 5000);
    /* a date in the past: retry now */
    assert_true(qb_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 100, &ms));
    assert_int_equal(ms, 0);
    /* garbage */
    ms = 7;
    assert_false(qb_http_parse_retry_after("", 0, &ms));
    assert_false(qb_http_parse_retry_after("soon", 0, &ms));
    assert_false(qb_http_parse_retry_after("1.5", 0, &ms));
    assert_false(qb_http_parse_retry_after("-1", 0, &ms));
    assert_false(qb_http_parse_retry_after("Sun, 31 Feb 1994 08:49:37 GMT", 0, &ms));
    assert_false(qb_http_parse_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", 0, &ms));
    assert_false(qb_http_parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", 0, &ms));
    assert_false(qb_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", 0, &ms));
    assert_false(qb_http_parse_retry_after("99999999999999999999", 0, &ms));
    assert_int_equal(ms, 7);
}

static void test_retry_delay(void **state) {
    (void)state;
    /* Retry-After wins over back-off, capped by the maximum */
    assert_int_equal(qb_http_retry_delay_ms(1, 1000, 60000, 500, 30000, 12345), 1000);
    assert_int_equal(qb_http_retry_delay_ms(1, 3600000, 60000, 500, 30000, 1), 60000);
    assert_int_equal(qb_http_retry_delay_ms(1, 0, 60000, 500, 30000, 1), 0);
    /* no Retry-After: the jittered back-off */
    assert_int_equal(qb_http_retry_delay_ms(2, -1, 60000, 500, 30000, 1000), 1000);
    assert_int_equal(qb_http_retry_delay_ms(2, -1, 60000, 500, 30000, 1001), 0);
}

static void test_bucket(void **state) {
    (void)state;
    const int64_t S = 1000000000LL;
    qb_http_bucket_t b;
    /* 2 per second, burst 1: first now, then every 0.5 s */
    qb_http_bucket_init(&b, 2.0, 1, 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), S / 2);
    assert_int_equal(qb_http_bucket_take(&b, 0), S);     /* reserved behind the second */
    assert_int_equal(qb_http_bucket_take(&b, S), S / 2); /* a second later: 1 token back */
    /* a long pause refills to capacity only */
    assert_int_equal(qb_http_bucket_take(&b, 100 * S), 0);
    assert_int_equal(qb_http_bucket_take(&b, 100 * S), S / 2);
    /* burst 3: three at once, then spaced */
    qb_http_bucket_init(&b, 1.0, 3, 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), S);
    /* 5 per minute: 12 s apart */
    qb_http_bucket_init(&b, 5.0 / 60, 1, 0);
    assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    int64_t w = qb_http_bucket_take(&b, 0);
    assert_true(w >= 12 * S && w <= 12 * S + 1);
    /* a caller that sleeps what it is told makes N requests in >= (N-1)/rate */
    qb_http_bucket_init(&b, 10.0, 1, 0);
    int64_t now = 0;
    for (int i = 0; i < 11; i++) now += qb_http_bucket_take(&b, now);
    assert_true(now >= S);
    /* unlimited */
    qb_http_bucket_init(&b, 0, 1, 0);
    for (int i = 0; i < 100; i++) assert_int_equal(qb_http_bucket_take(&b, 0), 0);
    /* time going backwards never grants tokens */
    qb_http_bucket_init(&b, 1.0, 1, 10 * S);
    assert_int_equal(qb_http_bucket_take(&b, 10 * S), 0);
    assert_true(qb_http_bucket_take(&b, 5 * S) >= S);
}

static void test_url_encode(void **state) {
    (void)state;
    char buf[128];
    assert_int_equal(qb_http_url_encode("2024-01-02T00:00:00Z", buf, sizeof(buf)), 24);
    assert_string_equal(buf, "2024-01-02T00%3A00%3A00Z");
    qb_http_url_encode("a b+c/d&e=f~g_h.i", buf, sizeof(buf));
    assert_string_equal(buf, "a%20b%2Bc%2Fd%26e%3Df~g_h.i");
    qb_http_url_encode("^GSPC", buf, sizeof(buf));
    assert_string_equal(buf, "%5EGSPC");
    qb_http_url_encode("\xc3\xa9", buf, sizeof(buf));
    assert_string_equal(buf, "%C3%A9");
    /* truncation reports the full length */
    assert_int_equal(qb_http_url_encode("::::", buf, 5), 12);
    assert_string_equal(buf, "%3A%");
}

static void test_redact(void **state) {
    (void)state;
    qb_http_t *h = qb_http_new(&(qb_http_opts_t){.source = "unit", .base_url = "http://127.0.0.1:1/"},
                               E, sizeof(E));
    assert_non_null(h);
    assert_string_equal(qb_http_base_url(h), "http://127.0.0.1:1");
    OK(qb_http_add_header(h, "X-Key", "sekrit-123", 1, E, sizeof(E)));
    OK(qb_http_add_param(h, "apiKey", "a/b+c", 1, E, sizeof(E)));
    OK(qb_http_add_header(h, "Accept", "application/json", 0, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_http_add_header(h, "Bad:Name", "v", 0, E, sizeof(E)));
    ERR(QB_ERR_INVALID, qb_http_add_header(h, "X-Inject", "v\r\nHost: evil", 0, E, sizeof(E)));
    char buf[128] = "key sekrit-123 and a/b+c and a%2Fb%2Bc, sekrit-123!";
    qb_http_redact(h, buf, sizeof(buf));
    assert_string_equal(buf, "key *** and *** and ***, ***!");
    char small[8] = "sekrit-";
    qb_http_redact(h, small, sizeof(small)); /* not a whole secret: untouched */
    assert_string_equal(small, "sekrit-");
    /* a URL outside base_url is refused before anything is sent */
    qb_http_resp_t r;
    ERR(QB_ERR_INVALID, qb_http_get_url(h, "http://evil.example/x?cursor=1", NULL, 0, &r, E, sizeof(E)));
    assert_null(strstr(E, "sekrit"));
    ERR(QB_ERR_INVALID, qb_http_get_url(h, "http://127.0.0.1:10/x", NULL, 0, &r, E, sizeof(E)));
    qb_http_resp_free(&r);
    qb_http_destroy(h);
    qb_http_destroy(NULL);
    /* a secret shorter than the mask, even the mask's own character: no
     * endless loop, and the result is cut at the buffer's end */
    h = qb_http_new(&(qb_http_opts_t){.source = "unit", .base_url = "http://x"}, E, sizeof(E));
    assert_non_null(h);
    OK(qb_http_add_header(h, "X-K", "*", 1, E, sizeof(E)));
    char stars[16] = "a*b*c";
    qb_http_redact(h, stars, sizeof(stars));
    assert_string_equal(stars, "a***b***c");
    char tight[6] = "ab*cd";
    qb_http_redact(h, tight, sizeof(tight));
    assert_string_equal(tight, "ab***");
    qb_http_destroy(h);
    assert_null(qb_http_new(&(qb_http_opts_t){.source = "a b", .base_url = "http://x"}, E, sizeof(E)));
    assert_null(qb_http_new(&(qb_http_opts_t){.source = "s", .base_url = "ftp://x"}, E, sizeof(E)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds), cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_delay),    cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_url_encode),     cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
