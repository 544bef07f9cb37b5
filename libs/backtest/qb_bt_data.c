/* qb_bt_data.c — the bars a backtest runs over: per symbol, arrays of ts,
 * open, high, low, close, volume (struct of arrays) until finalize, which
 * merges them into time order: `steps` the distinct timestamps and
 * `step_start` where each step begins in the time order of all bars (so a
 * run walks steps without comparing timestamps); the prices move into
 * columns `px` (open, high, low, close, volume), blocks of steps stored
 * symbol by symbol, `runs` listing each block's symbols and where their
 * bars are, and - for the blocks where not every symbol present has a bar
 * at every step - `order` and `loc` giving the time order (see
 * qb_bt_gather and qb_bt_data_int.h). The data set owns all of it; after
 * finalize nothing changes, so runs in many threads share it. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backtest/qb_backtest.h"
#include "backtest/qb_bt_data_int.h"

static uint32_t qb_bt_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

qb_err_t qb_bt_data_new(const char *timeframe, qb_bt_data_t **out, char *errstr,
                        size_t errstr_size) {
    int64_t ns;
    if (timeframe && *timeframe && qb_timeframe_parse(timeframe, &ns) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "backtest data: unknown timeframe \"%s\" (1m 5m 15m 30m 1h 4h 1d 1w)",
                          timeframe);
    qb_bt_data_t *d = calloc(1, sizeof *d);
    if (!d) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest data: out of memory");
    if (timeframe) snprintf(d->tf, sizeof d->tf, "%s", timeframe);
    *out = d;
    return QB_OK;
}

void qb_bt_data_destroy(qb_bt_data_t *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nsym; i++) {
        qb_bt_series_t *s = &d->ser[i];
        free(s->ts);
        free(s->o);
        free(s->h);
        free(s->l);
        free(s->c);
        free(s->v);
        free(s->pos);
    }
    free(d->ser);
    free(d->px[0]);
    free(d->loc);
    free(d->block_step);
    free(d->runs);
    free(d->block_run);
    free(d->block_k);
    free(d->hash);
    free(d->order);
    free(d->steps);
    free(d->step_start);
    free(d);
}

static int qb_bt_data_lookup(const qb_bt_data_t *d, const char *name, uint32_t *id) {
    if (!d->hcap) return 0;
    for (uint32_t i = qb_bt_hash(name) & (d->hcap - 1);; i = (i + 1) & (d->hcap - 1)) {
        uint32_t v = d->hash[i];
        if (v == 0) return 0;
        if (strcmp(d->ser[v - 1].name.s, name) == 0) {
            *id = v - 1;
            return 1;
        }
    }
}

static qb_err_t qb_bt_data_rehash(qb_bt_data_t *d, uint32_t cap) {
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return QB_ERR_NOMEM;
    for (uint32_t k = 0; k < d->nsym; k++) {
        uint32_t i = qb_bt_hash(d->ser[k].name.s) & (cap - 1);
        while (h[i]) i = (i + 1) & (cap - 1);
        h[i] = k + 1;
    }
    free(d->hash);
    d->hash = h;
    d->hcap = cap;
    return QB_OK;
}

qb_err_t qb_bt_data_symbol(qb_bt_data_t *d, const char *name, uint32_t *id, char *errstr,
                           size_t errstr_size) {
    qb_symbol_t sym;
    qb_err_t err = qb_symbol_set(&sym, name ? name : "", errstr, errstr_size);
    if (err != QB_OK) return err;
    if (qb_bt_data_lookup(d, sym.s, id)) return QB_OK;
    if (d->finalized)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "backtest data: finalized, cannot add symbol %s", sym.s);
    if (d->nsym >= 0x7fffffffu)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "backtest data: too many symbols");
    if (d->nsym == d->capsym) {
        size_t cap = d->capsym ? d->capsym * 2 : 16;
        qb_bt_series_t *s = realloc(d->ser, cap * sizeof *s);
        if (!s) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest data: out of memory");
        d->ser = s;
        d->capsym = cap;
    }
    if ((d->nsym + 1) * 2 > d->hcap) {
        if (qb_bt_data_rehash(d, d->hcap ? d->hcap * 2 : 64) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest data: out of memory");
    }
    qb_bt_series_t *s = &d->ser[d->nsym];
    memset(s, 0, sizeof *s);
    s->name = sym;
    uint32_t k = (uint32_t)d->nsym++;
    uint32_t i = qb_bt_hash(sym.s) & (d->hcap - 1);
    while (d->hash[i]) i = (i + 1) & (d->hcap - 1);
    d->hash[i] = k + 1;
    *id = k;
    return QB_OK;
}

qb_err_t qb_bt_data_symbol_find(const qb_bt_data_t *d, const char *name, uint32_t *id) {
    qb_symbol_t sym;
    if (!name || qb_symbol_set(&sym, name, NULL, 0) != QB_OK) return QB_ERR_NOT_FOUND;
    return qb_bt_data_lookup(d, sym.s, id) ? QB_OK : QB_ERR_NOT_FOUND;
}

#define QB_BT_GROW(field)                                                                  \
    do {                                                                                   \
        void *p_ = realloc(s->field, cap * sizeof *s->field);                              \
        if (!p_) return QB_ERR_NOMEM;                                                      \
        s->field = p_;                                                                     \
    } while (0)

static qb_err_t qb_bt_series_reserve(qb_bt_series_t *s, size_t need) {
    if (need <= s->cap) return QB_OK;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < need) cap *= 2;
    QB_BT_GROW(ts);
    QB_BT_GROW(o);
    QB_BT_GROW(h);
    QB_BT_GROW(l);
    QB_BT_GROW(c);
    QB_BT_GROW(v);
    s->cap = cap;
    return QB_OK;
}

qb_err_t qb_bt_data_reserve(qb_bt_data_t *d, uint32_t id, size_t n) {
    if (id >= d->nsym) return QB_ERR_INVALID;
    if (d->finalized) return QB_ERR_STATE;
    return qb_bt_series_reserve(&d->ser[id], d->ser[id].n + n);
}

qb_err_t qb_bt_data_append(qb_bt_data_t *d, uint32_t id, const qb_pf_bar_t *bars, size_t n,
                           char *errstr, size_t errstr_size) {
    if (id >= d->nsym)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "backtest data: unknown symbol id %u", id);
    if (d->finalized)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "backtest data: finalized, cannot append bars");
    qb_bt_series_t *s = &d->ser[id];
    qb_time_t last = s->n ? s->ts[s->n - 1] : INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        char msg[160];
        if (qb_pf_bar_validate(&bars[i], msg, sizeof msg) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "backtest data: %s bar %zu: %s",
                              s->name.s, s->n + i, msg);
        if (bars[i].ts <= last) {
            char a[QB_TIME_STRLEN], b[QB_TIME_STRLEN];
            qb_time_format(bars[i].ts, a, sizeof a);
            qb_time_format(last, b, sizeof b);
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "backtest data: %s bar %zu at %s is not after the previous one (%s)",
                              s->name.s, s->n + i, a, b);
        }
        last = bars[i].ts;
    }
    if (qb_bt_series_reserve(s, s->n + n) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest data: out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t k = s->n + i;
        s->ts[k] = bars[i].ts;
        s->o[k] = bars[i].open;
        s->h[k] = bars[i].high;
        s->l[k] = bars[i].low;
        s->c[k] = bars[i].close;
        s->v[k] = bars[i].volume;
    }
    s->n += n;
    d->total += n;
    return QB_OK;
}

qb_err_t qb_bt_data_append_bars(qb_bt_data_t *d, const qb_bar_t *bars, size_t n, char *errstr,
                                size_t errstr_size) {
    size_t i = 0;
    while (i < n) {
        /* a run of bars of the same symbol goes in one append */
        size_t j = i + 1;
        while (j < n && strcmp(bars[j].symbol.s, bars[i].symbol.s) == 0) j++;
        uint32_t id;
        qb_err_t err = qb_bt_data_symbol(d, bars[i].symbol.s, &id, errstr, errstr_size);
        if (err != QB_OK) return err;
        qb_pf_bar_t tmp[256];
        for (size_t k = i; k < j;) {
            size_t m = 0;
            for (; k < j && m < 256; k++, m++) {
                if (d->tf[0] && bars[k].timeframe[0] && strcmp(bars[k].timeframe, d->tf) != 0)
                    return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                      "backtest data: %s bar at index %zu has timeframe %s, the "
                                      "data's is %s",
                                      bars[k].symbol.s, k, bars[k].timeframe, d->tf);
                tmp[m] = (qb_pf_bar_t){bars[k].ts,   bars[k].open,  bars[k].high,
                                       bars[k].low,  bars[k].close, bars[k].volume};
            }
            err = qb_bt_data_append(d, id, tmp, m, errstr, errstr_size);
            if (err != QB_OK) return err;
        }
        i = j;
    }
    return QB_OK;
}

/* Min-heap of symbols by (next ts, id) for the k-way merge. */
static int qb_bt_heap_less(const qb_bt_data_t *d, const size_t *cur, uint32_t a, uint32_t b) {
    qb_time_t ta = d->ser[a].ts[cur[a]], tb = d->ser[b].ts[cur[b]];
    return ta < tb || (ta == tb && a < b);
}

static void qb_bt_heap_down(const qb_bt_data_t *d, const size_t *cur, uint32_t *h, size_t n,
                            size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && qb_bt_heap_less(d, cur, h[l], h[m])) m = l;
        if (l + 1 < n && qb_bt_heap_less(d, cur, h[l + 1], h[m])) m = l + 1;
        if (m == i) return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Give back the whole pages of a[0 .. upto) (never read again): keeps the
 * peak memory of finalize near the final size instead of twice it. Only
 * pages entirely inside the range; the allocator's own bytes lie outside. */
static void qb_bt_release(void *a, size_t upto_bytes) {
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)a + pg - 1) & ~(pg - 1);
    uintptr_t e = ((uintptr_t)a + upto_bytes) & ~(pg - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Copy the prices into their blocks: steps are cut into blocks of at most
 * QB_BT_DBLOCK bars (at least one step each); inside a block the bars are
 * stored symbol by symbol, each symbol's in time order (so a strategy
 * reads its bars of a block as one contiguous run); runs[] lists each
 * block's symbols with where their bars are (qb_bt_data_int.h). A block
 * occupies the same index range in both orders. Only a block that is not
 * dense gets order and loc entries (time order -> symbol, column index),
 * packed at block_k[blk]: the pages a dense block would have used are
 * never written, so cost no memory. Per-symbol arrays are read once, in
 * order, and released as they are consumed. On entry pos[] holds
 * time-order indexes. */
static void qb_bt_gather(qb_bt_data_t *d, size_t *cur) {
    memset(cur, 0, d->nsym * sizeof *cur);
    size_t sa = 0, nblk = 0, nruns = 0, nk = 0;
    d->nblocks = 0;
    while (sa < d->nsteps) {
        size_t sb = sa + 1;
        while (sb < d->nsteps && d->step_start[sb + 1] - d->step_start[sa] <= QB_BT_DBLOCK) sb++;
        const size_t r0 = nruns;
        d->block_run[d->nblocks] = (uint32_t)nruns;
        const uint32_t kb = d->step_start[sb], ka = d->step_start[sa];
        /* the runs first (their sizes say whether the block is dense) */
        uint32_t w = ka;
        for (size_t j = 0; j < d->nsym; j++) {
            const qb_bt_series_t *se = &d->ser[j];
            size_t i = cur[j];
            while (i < se->n && se->pos[i] < kb) i++;
            if (i == cur[j]) continue;
            d->runs[nruns++] = (qb_bt_brun_t){(uint32_t)j, w, (uint32_t)(i - cur[j]),
                                              (uint32_t)cur[j]};
            w += (uint32_t)(i - cur[j]);
        }
        const int dense = (nruns - r0) * (sb - sa) == (size_t)(kb - ka);
        d->block_k[d->nblocks] = dense ? UINT32_MAX : (uint32_t)nk;
        d->block_step[d->nblocks++] = (uint32_t)sa;
        for (size_t ri = r0; ri < nruns; ri++) {
            const qb_bt_brun_t *ru = &d->runs[ri];
            qb_bt_series_t *se = &d->ser[ru->id];
            w = ru->off;
            for (size_t i = ru->first; i < (size_t)ru->first + ru->n; i++, w++) {
                if (!dense) {
                    d->loc[nk + se->pos[i] - ka] = w;
                    d->order[nk + se->pos[i] - ka] = ru->id;
                }
                se->pos[i] = w;
                d->px[QB_BT_O][w] = se->o[i];
                d->px[QB_BT_H][w] = se->h[i];
                d->px[QB_BT_L][w] = se->l[i];
                d->px[QB_BT_C][w] = se->c[i];
                d->px[QB_BT_V][w] = se->v[i];
            }
            cur[ru->id] = ru->first + ru->n;
        }
        if (!dense) nk += kb - ka;
        if ((++nblk & 31) == 0)
            for (size_t j = 0; j < d->nsym; j++) {
                qb_bt_series_t *se = &d->ser[j];
                size_t bytes = cur[j] * sizeof(qb_dec_t);
                qb_bt_release(se->o, bytes);
                qb_bt_release(se->h, bytes);
                qb_bt_release(se->l, bytes);
                qb_bt_release(se->c, bytes);
                qb_bt_release(se->v, bytes);
            }
        sa = sb;
    }
    d->block_step[d->nblocks] = (uint32_t)d->nsteps;
    d->block_run[d->nblocks] = (uint32_t)nruns;
    void *p = realloc(d->runs, (nruns ? nruns : 1) * sizeof *d->runs);
    if (p) d->runs = p;
    p = realloc(d->loc, (nk ? nk : 1) * sizeof *d->loc);
    if (p) d->loc = p;
    p = realloc(d->order, (nk ? nk : 1) * sizeof *d->order);
    if (p) d->order = p;
}

qb_err_t qb_bt_data_finalize(qb_bt_data_t *d, char *errstr, size_t errstr_size) {
    if (d->finalized) return QB_OK;
    if (d->total == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "backtest data: no bars");
    if (d->total > UINT32_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "backtest data: more than 2^32 bars");
    size_t *cur = calloc(d->nsym, sizeof *cur);
    uint32_t *heap = malloc(d->nsym * sizeof *heap);
    int pos_ok = 1;
    for (size_t k = 0; k < d->nsym; k++) {
        free(d->ser[k].pos);
        d->ser[k].pos = malloc((d->ser[k].n ? d->ser[k].n : 1) * sizeof *d->ser[k].pos);
        if (!d->ser[k].pos) pos_ok = 0;
    }
    d->px[0] = malloc(5 * d->total * sizeof *d->px[0]);
    for (int f = 1; f < 5; f++) d->px[f] = d->px[0] ? d->px[0] + (size_t)f * d->total : NULL;
    d->loc = malloc(d->total * sizeof *d->loc);
    d->block_step = malloc((d->total + 1) * sizeof *d->block_step);
    d->block_run = malloc((d->total + 1) * sizeof *d->block_run);
    d->block_k = malloc((d->total + 1) * sizeof *d->block_k);
    /* runs: at most one per bar (pages never written cost no memory);
     * shrunk by qb_bt_gather */
    d->runs = malloc(d->total * sizeof *d->runs);
    d->order = malloc(d->total * sizeof *d->order);
    /* steps: at most one per bar; shrunk below */
    d->steps = malloc(d->total * sizeof *d->steps);
    d->step_start = malloc((d->total + 1) * sizeof *d->step_start);
    if (!cur || !heap || !pos_ok || !d->px[0] || !d->loc || !d->block_step || !d->block_run ||
        !d->block_k || !d->runs || !d->order ||
        !d->steps || !d->step_start) {
        free(cur);
        free(heap);
        for (size_t k = 0; k < d->nsym; k++) {
            free(d->ser[k].pos);
            d->ser[k].pos = NULL;
        }
        free(d->px[0]);
        memset(d->px, 0, sizeof d->px);
        free(d->loc);
        d->loc = NULL;
        free(d->block_step);
        d->block_step = NULL;
        free(d->block_run);
        d->block_run = NULL;
        free(d->block_k);
        d->block_k = NULL;
        free(d->runs);
        d->runs = NULL;
        free(d->order);
        free(d->steps);
        free(d->step_start);
        d->order = NULL;
        d->steps = NULL;
        d->step_start = NULL;
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "backtest data: out of memory");
    }
    size_t hn = 0;
    for (uint32_t k = 0; k < d->nsym; k++)
        if (d->ser[k].n) heap[hn++] = k;
    for (size_t i = hn / 2; i-- > 0;) qb_bt_heap_down(d, cur, heap, hn, i);
    size_t k = 0, ns = 0;
    while (hn) {
        uint32_t s = heap[0];
        qb_time_t t = d->ser[s].ts[cur[s]];
        if (ns == 0 || d->steps[ns - 1] != t) {
            d->steps[ns] = t;
            d->step_start[ns] = (uint32_t)k;
            ns++;
        }
        d->ser[s].pos[cur[s]] = (uint32_t)k++;
        if (++cur[s] == d->ser[s].n)
            heap[0] = heap[--hn];
        if (hn) qb_bt_heap_down(d, cur, heap, hn, 0);
    }
    d->step_start[ns] = (uint32_t)k;
    d->nsteps = ns;
    free(heap);
    void *p = realloc(d->steps, (ns ? ns : 1) * sizeof *d->steps);
    if (p) d->steps = p;
    p = realloc(d->step_start, (ns + 1) * sizeof *d->step_start);
    if (p) d->step_start = p;
    qb_bt_gather(d, cur);
    free(cur);
    p = realloc(d->block_step, (d->nblocks + 1) * sizeof *d->block_step);
    if (p) d->block_step = p;
    p = realloc(d->block_run, (d->nblocks + 1) * sizeof *d->block_run);
    if (p) d->block_run = p;
    p = realloc(d->block_k, (d->nblocks + 1) * sizeof *d->block_k);
    if (p) d->block_k = p;
    /* the prices live in the merged stream now */
    for (size_t j = 0; j < d->nsym; j++) {
        qb_bt_series_t *se = &d->ser[j];
        free(se->o);
        free(se->h);
        free(se->l);
        free(se->c);
        free(se->v);
        se->o = se->h = se->l = se->c = se->v = NULL;
    }
    d->finalized = 1;
    return QB_OK;
}

const char *qb_bt_data_timeframe(const qb_bt_data_t *d) { return d->tf; }
size_t qb_bt_data_nsymbols(const qb_bt_data_t *d) { return d->nsym; }
const char *qb_bt_data_symbol_name(const qb_bt_data_t *d, uint32_t id) {
    return id < d->nsym ? d->ser[id].name.s : "";
}
size_t qb_bt_data_nbars(const qb_bt_data_t *d, uint32_t id) {
    return id < d->nsym ? d->ser[id].n : 0;
}
size_t qb_bt_data_total_bars(const qb_bt_data_t *d) { return d->total; }

qb_err_t qb_bt_data_bar(const qb_bt_data_t *d, uint32_t id, size_t i, qb_pf_bar_t *out) {
    if (id >= d->nsym || i >= d->ser[id].n) return QB_ERR_RANGE;
    const qb_bt_series_t *s = &d->ser[id];
    if (d->finalized) {
        uint32_t at = s->pos[i];
        *out = (qb_pf_bar_t){s->ts[i],          d->px[QB_BT_O][at], d->px[QB_BT_H][at],
                             d->px[QB_BT_L][at], d->px[QB_BT_C][at], d->px[QB_BT_V][at]};
    } else {
        *out = (qb_pf_bar_t){s->ts[i], s->o[i], s->h[i], s->l[i], s->c[i], s->v[i]};
    }
    return QB_OK;
}

const qb_time_t *qb_bt_data_steps(const qb_bt_data_t *d, size_t *n) {
    *n = d->finalized ? d->nsteps : 0;
    return d->finalized ? d->steps : NULL;
}

size_t qb_bt_series_lower(const qb_bt_series_t *s, qb_time_t t) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ts[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
