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
 * c, v). Finalize moves the prices into the data set's columns (px, by
 * blocks of steps, symbol by symbol inside a block) and frees o..v; ts
 * stays (window and signal look-ups) and pos[i] gives bar i's index in the
 * columns. */
typedef struct qb_bt_series_s {
    qb_symbol_t name;
    size_t n, cap;
    qb_time_t *ts;
    qb_dec_t *o, *h, *l, *c, *v;
    uint32_t *pos;
} qb_bt_series_t;

/* Bars of a block are at most this many (a block is at least one step):
 * a block's closes (8 B each) stay in L1 and its other prices in L2
 * between the strategies' pass and the accounting pass over it. Measured
 * on the bench (100 symbols, 40 B bars): 16384 -> 56 ns/bar, 4096 -> 50,
 * 2048 -> 48, 1024 -> 49; with the price columns, 1024 and 4096 are still
 * ~1 ns/bar slower than 2048. */
#define QB_BT_DBLOCK 2048

/* A symbol's bars inside one block ("run"): column indexes off .. off+n-1
 * hold its series bars first .. first+n-1. A block's runs are in symbol id
 * order, which is their order in the columns. A run with one bar per step
 * of its block is "full": its bar times are the block's steps, and a block
 * whose runs are all full ("dense": n_runs x n_steps = n_bars) needs
 * neither order nor loc - the bar of run j at the block's step t is at
 * off_j + t. */
typedef struct qb_bt_brun_s {
    uint32_t id, off, n, first;
} qb_bt_brun_t;

/* The price columns of px[] */
enum { QB_BT_O = 0, QB_BT_H = 1, QB_BT_L = 2, QB_BT_C = 3, QB_BT_V = 4 };

struct qb_bt_data_s {
    char tf[QB_TIMEFRAME_MAX + 1];
    int finalized;
    size_t nsym, capsym, total;
    qb_bt_series_t *ser;
    uint32_t *hash; /* open addressing: id + 1, 0 = empty */
    uint32_t hcap;
    /* after finalize */
    /* (ts, id) order inside the blocks that are not dense: the block at
     * block_k[b] (UINT32_MAX: dense, none) holds, for its k-th bar in time
     * order, order[] = its symbol id and loc[] = its column index */
    uint32_t *order, *loc, *block_k;
    /* the bars' prices as columns open, high, low, close, volume (one
     * allocation, px[0]): per block, symbol by symbol. The close, all the
     * per-bar passes read, is one array (a block's: 16 KiB) */
    qb_dec_t *px[5];
    uint32_t *block_step; /* first step of each block; [nblocks] = nsteps */
    size_t nblocks;
    qb_bt_brun_t *runs;   /* the runs of every block, block after block */
    uint32_t *block_run;  /* first run of each block; [nblocks] = number of runs */
    qb_time_t *steps;     /* distinct ts, ascending */
    uint32_t *step_start; /* nsteps + 1 offsets into order */
    size_t nsteps;
};

/* First index i with s->ts[i] >= t (s->n if none). */
size_t qb_bt_series_lower(const qb_bt_series_t *s, qb_time_t t);

#endif
