/* test_md_publish.c — libs/md/qb_md_publish:
 *   - the bar event id (SHA-1 through a reused OpenSSL context) is exactly
 *     qb_uuid_v5 of "SYMBOL|TIMEFRAME|TS" in the bar namespace, for short
 *     and the longest symbols and timeframes, negative and extreme
 *     timestamps; plus one fixed vector so a change to both would show;
 *   - qb_md_bar_pack's bytes are exactly protobuf-c's pack of the same
 *     qb.v1.Bar (zero and negative numbers, empty and long strings), and
 *     it declines what it cannot do (too small a buffer, a string over 128
 *     bytes). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_uuid.h"
#include "md/qb_md_publish.h"
#include "proto/qb_proto.h"
#include "qb_test.h"
#include "qb_test_assert.h"

static void bar_of(qb_bar_t *b, const char *sym, const char *tf, int64_t ts) {
    memset(b, 0, sizeof *b);
    snprintf(b->symbol.s, sizeof b->symbol.s, "%s", sym);
    snprintf(b->timeframe, sizeof b->timeframe, "%s", tf);
    b->ts = ts;
}

static void assert_same_as_v5(const qb_bar_t *b) {
    char name[128], want[QB_UUID_STRLEN], got[37];
    int n = snprintf(name, sizeof name, "%s|%s|%" PRId64, b->symbol.s, b->timeframe, b->ts);
    qb_uuid_v5(QB_MD_BAR_ID_NS, name, (size_t)n, want);
    qb_md_bar_event_id(b, got);
    if (strcmp(want, got) != 0) fail_msg("%s: want %s, got %s", name, want, got);
}

static void test_event_id_matches_uuid_v5(void **state) {
    (void)state;
    static const char *const syms[] = {"A", "AAPL", "BRK.B", "BTC-USD", "EURUSD=X",
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234" /* 31 */};
    static const char *const tfs[] = {"1m", "5m", "1h", "1d", "1w", "1234567"};
    static const int64_t fixed[] = {0, 1, -1, -999, INT64_MAX, INT64_MIN, 1104537600000000000LL,
                                    -2208988800000000000LL};
    qb_bar_t b;
    for (size_t s = 0; s < sizeof syms / sizeof *syms; s++)
        for (size_t t = 0; t < sizeof tfs / sizeof *tfs; t++) {
            for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
                bar_of(&b, syms[s], tfs[t], fixed[k]);
                assert_same_as_v5(&b);
            }
            uint64_t x = 0x9e3779b97f4a7c15ULL * (s * 7 + t + 1);
            for (int k = 0; k < 200; k++) { /* every name length in between */
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                bar_of(&b, syms[s], tfs[t], (int64_t)(x >> (k % 64)));
                assert_same_as_v5(&b);
            }
        }
    /* every length of symbol around the one/two block boundary */
    char sym[32];
    for (int len = 1; len <= 31; len++) {
        memset(sym, 'X', (size_t)len);
        sym[len] = '\0';
        bar_of(&b, sym, "1m", 1104537600000000000LL);
        assert_same_as_v5(&b);
    }
}

static void test_event_id_fixed_vector(void **state) {
    (void)state;
    qb_bar_t b;
    char a[37], c[37], want[QB_UUID_STRLEN];
    bar_of(&b, "AAPL", "1d", 1104537600000000000LL);
    qb_md_bar_event_id(&b, a);
    qb_md_bar_event_id(&b, c);
    assert_string_equal(a, c);
    qb_uuid_v5("5f0c6a4e-3b1d-4e8a-9a57-2d6f1c0b7e93", "AAPL|1d|1104537600000000000", 27, want);
    assert_string_equal(a, want);
    assert_int_equal(a[14], '5');
    b.ts += 1;
    qb_md_bar_event_id(&b, c);
    assert_string_not_equal(a, c);
}

/* protobuf-c's bytes for the same fields */
static size_t pack_ref(const qb_bar_t *b, const char *id, int64_t now, const char *producer,
                       const char *trace, const char *source, uint8_t *out) {
    Qb__V1__Header h = QB__V1__HEADER__INIT;
    h.event_id = (char *)id;
    h.event_time = b->ts;
    h.produced_time = now;
    h.producer = (char *)producer;
    h.trace_id = (char *)trace;
    h.schema_version = QB_PROTO_SCHEMA_VERSION;
    Qb__V1__Bar pb = QB__V1__BAR__INIT;
    pb.header = &h;
    pb.symbol = (char *)b->symbol.s;
    pb.timeframe = (char *)b->timeframe;
    pb.ts = b->ts;
    pb.open = b->open;
    pb.high = b->high;
    pb.low = b->low;
    pb.close = b->close;
    pb.volume = b->volume;
    pb.source = (char *)source;
    assert_true(protobuf_c_message_get_packed_size(&pb.base) <= 1024);
    return protobuf_c_message_pack(&pb.base, out);
}

static void test_bar_pack_matches_protobuf_c(void **state) {
    (void)state;
    static const char *const syms[] = {"A", "AAPL", "BTC-USD", "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234"};
    static const char *const tfs[] = {"1m", "1d", "1234567"};
    static const char *const sources[] = {"", "csv", "synthetic"};
    static const char *const producers[] = {"", "qb-data", "qbctl"};
    static const char *const traces[] = {"", "0123456789abcdef0123456789abcdef"};
    static const int64_t vals[] = {0, 1, -1, 127, 128, 16383, 16384, INT64_MAX, INT64_MIN,
                                   10000000000LL, -123456789012LL};
    const size_t nv = sizeof vals / sizeof *vals;
    uint64_t x = 88172645463325252ULL;
    uint8_t got[1024], want[1024];
    int n = 0;
    for (size_t s = 0; s < sizeof syms / sizeof *syms; s++)
        for (size_t t = 0; t < sizeof tfs / sizeof *tfs; t++)
            for (int k = 0; k < 300; k++) {
                qb_bar_t b;
                int64_t v[7];
                for (int j = 0; j < 7; j++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    v[j] = (x & 1) ? vals[(x >> 1) % nv] : (int64_t)(x >> (x % 64));
                }
                bar_of(&b, syms[s], tfs[t], v[0]);
                b.open = v[1];
                b.high = v[2];
                b.low = v[3];
                b.close = v[4];
                b.volume = v[5];
                char id[37];
                qb_md_bar_event_id(&b, id);
                const char *src = sources[k % 3], *pr = producers[(k / 3) % 3],
                           *tr = traces[(k / 9) % 2];
                const char *eid = k % 17 == 0 ? "" : id;
                size_t gl = qb_md_bar_pack(&b, eid, v[6], pr, tr, src, got, sizeof got);
                size_t wl = pack_ref(&b, eid, v[6], pr, tr, src, want);
                assert_int_equal(gl, wl);
                assert_memory_equal(got, want, wl);
                n++;
            }
    assert_true(n > 3000);
    /* it declines what it cannot do */
    qb_bar_t b;
    bar_of(&b, "AAPL", "1d", 1);
    char longsrc[200];
    memset(longsrc, 's', sizeof longsrc - 1);
    longsrc[sizeof longsrc - 1] = '\0';
    assert_int_equal(qb_md_bar_pack(&b, "id", 1, "p", "", longsrc, got, sizeof got), 0);
    assert_int_equal(qb_md_bar_pack(&b, "id", 1, "p", "", "csv", got, 16), 0);
    size_t wl = pack_ref(&b, "id", 1, "p", "", longsrc, want);
    assert_true(wl > 200); /* the protobuf-c fallback has no such limit */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_id_matches_uuid_v5),
        cmocka_unit_test(test_event_id_fixed_vector),
        cmocka_unit_test(test_bar_pack_matches_protobuf_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
