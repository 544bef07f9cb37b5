/* qb_bt_data_int.h — the data set's layout, shared by qb_bt_data.c and the
 * engine (qb_backtest.c). Not a public header. */
#ifndef QB_BT_DATA_INT_H
#define QB_BT_DATA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_types.h"

/* The bars of one symbol. Before finalize: struct of arrays (ts, o, h, l,
 * c, v). Finalize moves the prices into mbar (qb_bt_mbar_t, by blocks of
 * steps, symbol by symbol inside a block) and frees o..v; ts stays (window
 * and signal look-ups) and pos[i] gives bar i's index in mbar. */
typedef struct qb_bt_series_s {
    qb_symbol_t name;
    size_t n, cap;
    qb_time_t *ts;
    qb_dec_t *o, *h, *l, *c, *v;
    uint32_t *pos;
} qb_bt_series_t;

/* Bars of a block are at most this many (a block is at least one step):
 * a block's bars (40 B each) stay in cache between the strategies' pass
 * and the accounting pass over it. Measured on the bench (100 symbols):
 * 16384 -> 56 ns/bar, 4096 -> 50, 2048 -> 48, 1024 -> 49. */
#define QB_BT_DBLOCK 2048

/* One bar's prices (its ts is its step's). */
typedef struct qb_bt_mbar_s {
    qb_dec_t o, h, l, c, v;
} qb_bt_mbar_t;

struct qb_bt_data_s {
    char tf[QB_TIMEFRAME_MAX + 1];
    int finalized;
    size_t nsym, capsym, total;
    qb_bt_series_t *ser;
    uint32_t *hash; /* open addressing: id + 1, 0 = empty */
    uint32_t hcap;
    /* after finalize */
    uint32_t *order;      /* symbol id of each bar in (ts, id) order */
    qb_bt_mbar_t *mbar;   /* the bars: per block, symbol by symbol */
    uint32_t *loc;        /* mbar index of the k-th bar in time order */
    uint32_t *block_step; /* first step of each block; [nblocks] = nsteps */
    size_t nblocks;
    qb_time_t *steps;     /* distinct ts, ascending */
    uint32_t *step_start; /* nsteps + 1 offsets into order */
    size_t nsteps;
};

/* First index i with s->ts[i] >= t (s->n if none). */
size_t qb_bt_series_lower(const qb_bt_series_t *s, qb_time_t t);

#endif
