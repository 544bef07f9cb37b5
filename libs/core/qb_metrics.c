/* qb_metrics.c — the metric registry; see qb_metrics.h.
 *
 * Design: one global singly linked list of metrics, appended under a mutex
 * at registration and never shrunk (except by qb_metrics_reset in tests).
 * Values are C11 atomics: counters are uint64, gauges and histogram sums are
 * doubles stored as their bit pattern and updated with compare-and-swap. */
#include "core/qb_metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { QB_M_COUNTER, QB_M_GAUGE, QB_M_HIST } qb_mkind_t;

static const double qb_hist_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                        0.0025,  0.005,  0.01,    0.025,  0.05,
                                        0.1,     0.25,   0.5,     1.0,    2.5,
                                        5.0,     10.0};
#define QB_HIST_N (sizeof(qb_hist_bounds) / sizeof(qb_hist_bounds[0]))

typedef struct qb_metric_s {
    struct qb_metric_s *next;
    qb_mkind_t kind;
    char *name, *help, *labels;
    _Atomic uint64_t u;                  /* counter value or gauge bits */
    _Atomic uint64_t buckets[QB_HIST_N]; /* non-cumulative counts */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_bits;
} qb_metric_t;

struct qb_counter_s { qb_metric_t m; };
struct qb_gauge_s { qb_metric_t m; };
struct qb_hist_s { qb_metric_t m; };

static pthread_mutex_t qb_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static qb_metric_t *qb_metrics_head, *qb_metrics_tail;

static uint64_t dbl2bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static double bits2dbl(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

static int streq_null(const char *a, const char *b) {
    if (!a || !*a) return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static qb_metric_t *qb_metric_get(qb_mkind_t kind, const char *name,
                                  const char *help, const char *labels) {
    pthread_mutex_lock(&qb_metrics_lock);
    for (qb_metric_t *m = qb_metrics_head; m; m = m->next) {
        if (m->kind == kind && strcmp(m->name, name) == 0 &&
            streq_null(m->labels, labels)) {
            pthread_mutex_unlock(&qb_metrics_lock);
            return m;
        }
    }
    qb_metric_t *m = calloc(1, sizeof(*m));
    if (!m) abort(); /* registration happens at start-up: no way to go on */
    m->kind = kind;
    m->name = strdup(name);
    m->help = strdup(help ? help : name);
    m->labels = strdup(labels ? labels : "");
    if (!m->name || !m->help || !m->labels) abort();
    if (qb_metrics_tail) qb_metrics_tail->next = m;
    else qb_metrics_head = m;
    qb_metrics_tail = m;
    pthread_mutex_unlock(&qb_metrics_lock);
    return m;
}

qb_counter_t *qb_metrics_counter(const char *name, const char *help, const char *labels) {
    return (qb_counter_t *)qb_metric_get(QB_M_COUNTER, name, help, labels);
}
void qb_counter_add(qb_counter_t *c, uint64_t n) {
    if (c) atomic_fetch_add_explicit(&c->m.u, n, memory_order_relaxed);
}
uint64_t qb_counter_get(const qb_counter_t *c) {
    return c ? atomic_load(&((qb_counter_t *)c)->m.u) : 0;
}

qb_gauge_t *qb_metrics_gauge(const char *name, const char *help, const char *labels) {
    return (qb_gauge_t *)qb_metric_get(QB_M_GAUGE, name, help, labels);
}
void qb_gauge_set(qb_gauge_t *g, double v) {
    if (g) atomic_store(&g->m.u, dbl2bits(v));
}
static void qb_atomic_add_double(_Atomic uint64_t *p, double delta) {
    uint64_t old = atomic_load(p), nw;
    do {
        nw = dbl2bits(bits2dbl(old) + delta);
    } while (!atomic_compare_exchange_weak(p, &old, nw));
}
void qb_gauge_add(qb_gauge_t *g, double delta) {
    if (g) qb_atomic_add_double(&g->m.u, delta);
}
double qb_gauge_get(const qb_gauge_t *g) {
    return g ? bits2dbl(atomic_load(&((qb_gauge_t *)g)->m.u)) : 0.0;
}

qb_hist_t *qb_metrics_histogram(const char *name, const char *help, const char *labels) {
    return (qb_hist_t *)qb_metric_get(QB_M_HIST, name, help, labels);
}
void qb_hist_observe(qb_hist_t *h, double seconds) {
    if (!h) return;
    size_t i = 0;
    while (i < QB_HIST_N && seconds > qb_hist_bounds[i]) i++;
    if (i < QB_HIST_N) atomic_fetch_add_explicit(&h->m.buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->m.count, 1, memory_order_relaxed);
    qb_atomic_add_double(&h->m.sum_bits, seconds);
}

/* A growing output buffer; on allocation failure it stops growing and the
 * render returns NULL. */
typedef struct { char *p; size_t len, cap; int oom; } qb_sbuf_t;

static void sb_printf(qb_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(qb_sbuf_t *b, const char *fmt, ...) {
    va_list ap;
    if (b->oom) return;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if (b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t ncap = (b->cap + (size_t)n + 1) * 2;
        char *np = realloc(b->p, ncap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = ncap;
    }
}

static void qb_label_join(char *out, size_t cap, const char *labels, const char *extra) {
    if (*labels && extra) snprintf(out, cap, "{%s,%s}", labels, extra);
    else if (*labels) snprintf(out, cap, "{%s}", labels);
    else if (extra) snprintf(out, cap, "{%s}", extra);
    else out[0] = '\0';
}

static void qb_help_escaped(qb_sbuf_t *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') sb_printf(b, "\\\\");
        else if (*s == '\n') sb_printf(b, "\\n");
        else sb_printf(b, "%c", *s);
    }
}

char *qb_metrics_render(void) {
    qb_sbuf_t b = {malloc(4096), 0, 4096, 0};
    if (!b.p) return NULL;
    b.p[0] = '\0';
    pthread_mutex_lock(&qb_metrics_lock);
    for (qb_metric_t *m = qb_metrics_head; m; m = m->next) {
        /* One HELP/TYPE per family: only at its first member. */
        int first = 1;
        for (qb_metric_t *o = qb_metrics_head; o != m; o = o->next)
            if (strcmp(o->name, m->name) == 0) { first = 0; break; }
        if (first) {
            sb_printf(&b, "# HELP %s ", m->name);
            qb_help_escaped(&b, m->help);
            sb_printf(&b, "\n# TYPE %s %s\n", m->name,
                      m->kind == QB_M_COUNTER ? "counter"
                      : m->kind == QB_M_GAUGE ? "gauge" : "histogram");
        }
        /* Print the rest of the family right after its first member so
         * samples of one family stay together (required by promtool). */
        if (!first) continue;
        for (qb_metric_t *f = m; f; f = f->next) {
            if (strcmp(f->name, m->name) != 0 || f->kind != m->kind) continue;
            char lab[512];
            if (f->kind == QB_M_COUNTER) {
                qb_label_join(lab, sizeof(lab), f->labels, NULL);
                sb_printf(&b, "%s%s %llu\n", f->name, lab,
                          (unsigned long long)atomic_load(&f->u));
            } else if (f->kind == QB_M_GAUGE) {
                qb_label_join(lab, sizeof(lab), f->labels, NULL);
                sb_printf(&b, "%s%s %.17g\n", f->name, lab, bits2dbl(atomic_load(&f->u)));
            } else {
                uint64_t cum = 0;
                for (size_t i = 0; i < QB_HIST_N; i++) {
                    char le[48];
                    cum += atomic_load(&f->buckets[i]);
                    snprintf(le, sizeof(le), "le=\"%g\"", qb_hist_bounds[i]);
                    qb_label_join(lab, sizeof(lab), f->labels, le);
                    sb_printf(&b, "%s_bucket%s %llu\n", f->name, lab, (unsigned long long)cum);
                }
                uint64_t cnt = atomic_load(&f->count);
                qb_label_join(lab, sizeof(lab), f->labels, "le=\"+Inf\"");
                sb_printf(&b, "%s_bucket%s %llu\n", f->name, lab, (unsigned long long)cnt);
                qb_label_join(lab, sizeof(lab), f->labels, NULL);
                sb_printf(&b, "%s_sum%s %.17g\n", f->name, lab, bits2dbl(atomic_load(&f->sum_bits)));
                sb_printf(&b, "%s_count%s %llu\n", f->name, lab, (unsigned long long)cnt);
            }
        }
    }
    pthread_mutex_unlock(&qb_metrics_lock);
    if (b.oom) { free(b.p); return NULL; }
    return b.p;
}

void qb_metrics_reset(void) {
    pthread_mutex_lock(&qb_metrics_lock);
    qb_metric_t *m = qb_metrics_head;
    while (m) {
        qb_metric_t *n = m->next;
        free(m->name); free(m->help); free(m->labels); free(m);
        m = n;
    }
    qb_metrics_head = qb_metrics_tail = NULL;
    pthread_mutex_unlock(&qb_metrics_lock);
}
