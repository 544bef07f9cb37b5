/* bench_md_synth.c — bars/s of the synthetic generator: 1,000 symbols x
 * 2,000 one-minute bars each (2 M bars) into a sink that only counts.
 * Prints numbers; no pass/fail. */
#include <stdio.h>
#include <time.h>

#include "md/qb_md_synth.h"

static qb_err_t count_bars(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    (void)bars; (void)e; (void)el;
    *(size_t *)opaque += n;
    return QB_OK;
}

int main(void) {
    char err[256];
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 1);
    qb_md_source_t *s = qb_md_synth_source_new(&o, err, sizeof(err));
    if (!s) { fprintf(stderr, "%s\n", err); return 1; }
    size_t total = 0;
    qb_md_sink_t sink = {count_bars, NULL, &total};
    qb_md_request_t req = {.timeframe = "1m", .from = 1704067200LL * QB_NS_PER_SEC};
    req.to = req.from + 2000 * QB_NS_PER_MIN;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 1000; i++) {
        char sym[16];
        snprintf(sym, sizeof(sym), "SYN%d", i);
        req.symbol = sym;
        if (qb_md_fetch(s, &req, &sink, err, sizeof(err))) { fprintf(stderr, "%s\n", err); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("synthetic generator: %zu bars (1000 symbols x 2000 1m bars, 8 sub-steps) in %.3f s "
           "= %.0f bars/s\n", total, secs, (double)total / secs);
    qb_md_source_destroy(s);
    return 0;
}
