/* api_pool.c — fixed-size pools of PostgreSQL and Redis handles shared by the
 * request threads (see api_pool.h). */
#include "api_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct api_pool_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **items;  /* free handles (created lazily) */
    int nfree;
    int created;
    int size;
    api_pool_make_fn make;
    api_pool_free_fn drop;
    void *opaque;
    qb_gauge_t *in_use;
};

api_pool_t *api_pool_new(int size, api_pool_make_fn make, api_pool_free_fn drop, void *opaque,
                         const char *metric_label) {
    api_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->items = calloc((size_t)size, sizeof(void *));
    if (!p->items) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->size = size;
    p->make = make;
    p->drop = drop;
    p->opaque = opaque;
    char labels[96];
    snprintf(labels, sizeof labels, "pool=\"%s\"", metric_label);
    p->in_use = qb_metrics_gauge("qb_api_pool_in_use", "Pooled connections checked out now",
                                 labels);
    return p;
}

void *api_pool_get(api_pool_t *p, int wait_ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    void *it = NULL;
    int make = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nfree > 0) {
            it = p->items[--p->nfree];
            break;
        }
        if (p->created < p->size) {
            p->created++;
            make = 1;
            break;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&p->mu);
    if (make) {
        it = p->make(p->opaque);
        if (!it) {
            pthread_mutex_lock(&p->mu);
            p->created--;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
    }
    if (it) qb_gauge_add(p->in_use, 1);
    return it;
}

void api_pool_put(api_pool_t *p, void *it) {
    if (!it) return;
    qb_gauge_add(p->in_use, -1);
    pthread_mutex_lock(&p->mu);
    p->items[p->nfree++] = it;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void api_pool_destroy(api_pool_t *p) {
    if (!p) return;
    for (int i = 0; i < p->nfree; i++) p->drop(p->items[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->items);
    free(p);
}
