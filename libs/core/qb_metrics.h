/* qb_metrics.h — process-wide Prometheus metrics: counters, gauges and
 * latency histograms.
 *
 * Metrics are registered once (get-or-create by name + labels, thread-safe)
 * and updated lock-free with atomics, so they can sit on hot paths. The
 * registry owns every metric; callers keep the returned pointer for the
 * process's lifetime and never free it. qb_metrics_render() writes the
 * Prometheus text exposition format (version 0.0.4): one HELP and TYPE line
 * per metric family, then its samples.
 *
 * Names follow Prometheus conventions: qb_<subsystem>_<what>_<unit>, counters
 * end in _total, durations are seconds. `labels` is the inside of the braces,
 * already formatted, e.g. "topic=\"md.bars\"" or NULL for none. */
#ifndef QB_METRICS_H
#define QB_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct qb_counter_s qb_counter_t;
typedef struct qb_gauge_s qb_gauge_t;
typedef struct qb_hist_s qb_hist_t;

qb_counter_t *qb_metrics_counter(const char *name, const char *help,
                                 const char *labels);
void qb_counter_add(qb_counter_t *c, uint64_t n);
#define qb_counter_inc(c) qb_counter_add((c), 1)
uint64_t qb_counter_get(const qb_counter_t *c);

qb_gauge_t *qb_metrics_gauge(const char *name, const char *help,
                             const char *labels);
void qb_gauge_set(qb_gauge_t *g, double v);
void qb_gauge_add(qb_gauge_t *g, double delta);
double qb_gauge_get(const qb_gauge_t *g);

/* Latency histogram in seconds. Buckets are fixed: 50us .. 10s, roughly
 * x2.5 apart, plus +Inf. */
qb_hist_t *qb_metrics_histogram(const char *name, const char *help,
                                const char *labels);
void qb_hist_observe(qb_hist_t *h, double seconds);

/* Render every metric into a malloc'd NUL-terminated string (caller frees).
 * Returns NULL on allocation failure. */
char *qb_metrics_render(void);

/* Drop every metric (tests only; no metric pointer may be used after). */
void qb_metrics_reset(void);

#endif
