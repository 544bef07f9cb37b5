/* bench_md_synth.c — speed of the synthetic generator into a sink that only
 * counts: bars/s for many short 1m requests (1,000 symbols x 2,000 bars:
 * each pays the skeleton walk from 1900 and is the headline number), for
 * long 1m and 1d ranges, and the latency of one-bar requests (the skeleton
 * walk plus, for 1m, the day's bars before the one asked for).
 * Prints numbers; no pass/fail. */
#include <stdio.h>
#include <time.h>

#include "md/qb_md_synth.h"

static qb_err_t count_bars(void *opaque, const qb_bar_t *bars, size_t n, char *e, size_t el) {
    (void)bars; (void)e; (void)el;
    *(size_t *)opaque += n;
    return QB_OK;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* nsym symbols, each [from, from + span) of tf; returns the seconds taken. */
static double run(qb_md_source_t *s, const char *tf, int nsym, qb_time_t from, qb_time_t span,
                  qb_time_t from_stride, size_t *total) {
    char err[256];
    qb_md_sink_t sink = {count_bars, NULL, total};
    qb_md_request_t req = {.timeframe = tf};
    *total = 0;
    double t0 = now_s();
    for (int i = 0; i < nsym; i++) {
        char sym[16];
        snprintf(sym, sizeof(sym), "SYN%d", i);
        req.symbol = sym;
        req.from = from + (qb_time_t)i * from_stride;
        req.to = req.from + span;
        if (qb_md_fetch(s, &req, &sink, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    return now_s() - t0;
}

int main(void) {
    char err[256];
    qb_md_synth_opts_t o;
    qb_md_synth_opts_default(&o, 1);
    qb_md_source_t *s = qb_md_synth_source_new(&o, err, sizeof(err));
    if (!s) { fprintf(stderr, "%s\n", err); return 1; }
    const qb_time_t y2024 = 1704067200LL * QB_NS_PER_SEC, y1990 = 631152000LL * QB_NS_PER_SEC;
    size_t total;
    double secs;

    if ((secs = run(s, "1m", 1000, y2024, 2000 * QB_NS_PER_MIN, 0, &total)) < 0) return 1;
    printf("synthetic generator: %zu bars (1000 symbols x 2000 1m bars, 8 sub-steps) in %.3f s "
           "= %.0f bars/s\n", total, secs, (double)total / secs);

    if ((secs = run(s, "1m", 4, y2024, 365 * QB_NS_PER_DAY, 0, &total)) < 0) return 1;
    printf("  long 1m ranges: %zu bars (4 symbols x 1 year) in %.3f s = %.0f bars/s\n", total,
           secs, (double)total / secs);

    if ((secs = run(s, "1d", 100, y1990, 14610 * QB_NS_PER_DAY, 0, &total)) < 0) return 1;
    printf("  long 1d ranges: %zu bars (100 symbols x 1990..2030) in %.3f s = %.0f bars/s\n",
           total, secs, (double)total / secs);

    /* One bar each, at minutes spread over the day (mean: half a day of
     * bars drawn before the one asked for). */
    if ((secs = run(s, "1m", 2000, y2024, QB_NS_PER_MIN, 7 * QB_NS_PER_MIN, &total)) < 0) return 1;
    printf("  one-bar 1m requests: %.1f us each (2000 symbols, times across the day)\n",
           secs / 2000 * 1e6);
    if ((secs = run(s, "1d", 2000, y2024, QB_NS_PER_DAY, 0, &total)) < 0) return 1;
    printf("  one-bar 1d requests: %.1f us each (2000 symbols, 2024-01-01)\n", secs / 2000 * 1e6);
    qb_md_source_destroy(s);
    return 0;
}
