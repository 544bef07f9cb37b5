/* api_pool.h — a fixed-size pool of connection handles (qb_store_t,
 * qb_cache_t) for the request threads. Handles are made on first need, up
 * to `size`; a thread that finds none free waits up to wait_ms. A handle
 * reconnects by itself (libs/store, libs/cache), so the pool never drops
 * one. Thread-safe. */
#ifndef QB_API_POOL_H
#define QB_API_POOL_H

#include "core/qb_metrics.h"

typedef struct api_pool_s api_pool_t;
typedef void *(*api_pool_make_fn)(void *opaque);
typedef void (*api_pool_free_fn)(void *item);

api_pool_t *api_pool_new(int size, api_pool_make_fn make, api_pool_free_fn drop, void *opaque,
                         const char *metric_label);
/* A handle, or NULL after wait_ms (all in use) or when making one failed. */
void *api_pool_get(api_pool_t *p, int wait_ms);
void api_pool_put(api_pool_t *p, void *item);
/* Frees the handles given back; call after every request ended. */
void api_pool_destroy(api_pool_t *p);

#endif
