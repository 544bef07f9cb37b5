/* qb_md_replay.c — replay of stored bars; see qb_md_replay.h.
 *
 * Design. One cursor per symbol owns the libpq result of its current page
 * (at most chunk_rows rows) and parses one row at a time into cur; a binary
 * min-heap of cursors keyed by (cur.ts, symbol) yields the global order.
 * Popping the smallest bar advances its cursor: the next row of the page,
 * or — when the page is used up and was full — the next page, read with
 * "ts >= last ts + 1 us" (timestamptz has microsecond resolution, so that
 * is exactly "ts > last"), or the end of the cursor when the page was short.
 *
 * Ownership: the replay owns copies of its options (symbols, timeframe) and,
 * during a run, the cursors, their pages and the batch buffer, all freed at
 * the end of the run. The store, producer and cache are borrowed. */
#include "md/qb_md_replay.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qb_log.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_store.h"

#define RP_STMT_PAGE "qb_md_replay_page"
#define RP_SQL_PAGE                                                                      \
    "SELECT (extract(epoch FROM ts) * 1000000)::bigint, open, high, low, close, volume,"  \
    " source FROM md.bars WHERE asset_id = $1::integer AND timeframe = $2"                \
    " AND ts >= $3::timestamptz AND ts < $4::timestamptz ORDER BY ts LIMIT $5::integer"
#define RP_SLEEP_SLICE_NS (50 * QB_NS_PER_MS)

typedef struct rp_cursor_s {
    int32_t asset_id;
    qb_symbol_t sym;
    PGresult *page; /* current page; NULL once done */
    int row, nrows;
    qb_bar_t cur;    /* the current bar (valid while page != NULL) */
    const char *src; /* its source, inside page */
} rp_cursor_t;

struct qb_md_replay_s {
    qb_store_t *s;
    qb_symbol_t *syms; /* sorted, unique; NULL = all */
    size_t nsyms;
    char tf[QB_TIMEFRAME_MAX + 1];
    qb_time_t from, to;
    double speed;
    size_t chunk_opt, batch;
    const volatile sig_atomic_t *cancel;
    qb_md_replay_progress_cb progress;
    void *progress_opaque;
    qb_md_replay_stats_t st;
    /* run state */
    size_t chunk;
    rp_cursor_t *cur;
    size_t ncur;
    rp_cursor_t **heap;
    size_t nheap;
};

static int rp_sym_cmp(const void *a, const void *b) {
    return strcmp(((const qb_symbol_t *)a)->s, ((const qb_symbol_t *)b)->s);
}

qb_err_t qb_md_replay_new(qb_store_t *store, const qb_md_replay_opts_t *o,
                          qb_md_replay_t **out, char *errstr, size_t errstr_size) {
    if (!out) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: out is NULL");
    *out = NULL;
    if (!store || !o || !o->timeframe || (o->nsymbols && !o->symbols))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "replay: store, options and timeframe are required");
    int64_t tfns;
    if (strlen(o->timeframe) > QB_TIMEFRAME_MAX || qb_timeframe_parse(o->timeframe, &tfns) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "replay: unknown timeframe '%s' (1m 5m 15m 30m 1h 4h 1d 1w)",
                          o->timeframe);
    if (o->from && o->to && o->to <= o->from)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: empty range (to <= from)");
    if (!isfinite(o->speed))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: speed must be finite");
    qb_md_replay_t *r = calloc(1, sizeof(*r));
    if (!r) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
    if (o->nsymbols) {
        r->syms = calloc(o->nsymbols, sizeof(*r->syms));
        if (!r->syms) {
            free(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
        }
        for (size_t i = 0; i < o->nsymbols; i++) {
            char e[256];
            if (qb_symbol_set(&r->syms[i], o->symbols[i], e, sizeof e) != QB_OK) {
                qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: symbol '%s': %s",
                           o->symbols[i] ? o->symbols[i] : "(null)", e);
                free(r->syms);
                free(r);
                return QB_ERR_INVALID;
            }
        }
        qsort(r->syms, o->nsymbols, sizeof(*r->syms), rp_sym_cmp);
        size_t u = 0;
        for (size_t i = 0; i < o->nsymbols; i++)
            if (u == 0 || strcmp(r->syms[u - 1].s, r->syms[i].s) != 0) r->syms[u++] = r->syms[i];
        r->nsyms = u;
    }
    r->s = store;
    snprintf(r->tf, sizeof r->tf, "%s", o->timeframe);
    r->from = o->from;
    r->to = o->to;
    r->speed = o->speed > 0 ? o->speed : 0;
    r->chunk_opt = o->chunk_rows > (size_t)INT_MAX ? (size_t)INT_MAX : o->chunk_rows;
    r->batch = o->batch_bars ? o->batch_bars : QB_MD_REPLAY_BATCH;
    r->cancel = o->cancel;
    r->progress = o->progress;
    r->progress_opaque = o->progress_opaque;
    *out = r;
    return QB_OK;
}

void qb_md_replay_destroy(qb_md_replay_t *r) {
    if (!r) return;
    free(r->syms);
    free(r);
}

void qb_md_replay_stats(const qb_md_replay_t *r, qb_md_replay_stats_t *out) {
    if (out) *out = r->st;
}

/* ---- cursors ----------------------------------------------------------------- */

/* Timestamp parameter text: `t`, or `inf` for an unbounded side. */
static void rp_time_param(qb_time_t t, const char *inf, char *buf, size_t cap) {
    if (t == 0) snprintf(buf, cap, "%s", inf);
    else qb_time_format(t, buf, cap);
}

static void rp_parse_row(qb_md_replay_t *r, rp_cursor_t *c) {
    PGresult *p = c->page;
    int i = c->row;
    qb_bar_t *b = &c->cur;
    b->ts = (qb_time_t)strtoll(PQgetvalue(p, i, 0), NULL, 10) * QB_NS_PER_US;
    b->open = strtoll(PQgetvalue(p, i, 1), NULL, 10);
    b->high = strtoll(PQgetvalue(p, i, 2), NULL, 10);
    b->low = strtoll(PQgetvalue(p, i, 3), NULL, 10);
    b->close = strtoll(PQgetvalue(p, i, 4), NULL, 10);
    b->volume = strtoll(PQgetvalue(p, i, 5), NULL, 10);
    c->src = PQgetvalue(p, i, 6);
    (void)r;
}

/* Read the page of c starting at `lower` (inclusive; 0 = r->from). Leaves c
 * on its first row, or done (page NULL) when the page is empty. */
static qb_err_t rp_fetch(qb_md_replay_t *r, rp_cursor_t *c, qb_time_t lower, char *errstr,
                         size_t errstr_size) {
    char id[16], sf[QB_TIME_STRLEN], st[QB_TIME_STRLEN], lim[24];
    snprintf(id, sizeof id, "%d", (int)c->asset_id);
    rp_time_param(lower ? lower : r->from, "-infinity", sf, sizeof sf);
    rp_time_param(r->to, "infinity", st, sizeof st);
    snprintf(lim, sizeof lim, "%zu", r->chunk);
    const char *p[5] = {id, r->tf, sf, st, lim};
    PQclear(c->page);
    c->page = NULL;
    PGresult *res = NULL;
    qb_err_t e = qb_store_exec_prepared(r->s, RP_STMT_PAGE, 5, p, &res, errstr, errstr_size);
    if (e) return e;
    int n = PQntuples(res);
    r->st.queries++;
    r->st.rows_fetched += n;
    if (n > r->st.max_rows_per_query) r->st.max_rows_per_query = n;
    if (n == 0) {
        PQclear(res);
        return QB_OK;
    }
    c->page = res;
    c->nrows = n;
    c->row = 0;
    rp_parse_row(r, c);
    return QB_OK;
}

/* Move c to its next bar (possibly reading the next page); page NULL = done. */
static qb_err_t rp_advance(qb_md_replay_t *r, rp_cursor_t *c, char *errstr, size_t errstr_size) {
    if (++c->row < c->nrows) {
        rp_parse_row(r, c);
        return QB_OK;
    }
    if ((size_t)c->nrows < r->chunk) { /* a short page was the last one */
        PQclear(c->page);
        c->page = NULL;
        return QB_OK;
    }
    return rp_fetch(r, c, c->cur.ts + QB_NS_PER_US, errstr, errstr_size);
}

/* ---- heap -------------------------------------------------------------------- */

static int rp_less(const rp_cursor_t *a, const rp_cursor_t *b) {
    if (a->cur.ts != b->cur.ts) return a->cur.ts < b->cur.ts;
    return strcmp(a->sym.s, b->sym.s) < 0;
}

static void rp_sift_down(qb_md_replay_t *r, size_t i) {
    rp_cursor_t **h = r->heap;
    size_t n = r->nheap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && rp_less(h[l], h[m])) m = l;
        if (l + 1 < n && rp_less(h[l + 1], h[m])) m = l + 1;
        if (m == i) return;
        rp_cursor_t *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* ---- symbols ----------------------------------------------------------------- */

/* Fill r->cur with the assets to replay (asset_id, symbol), in symbol order. */
static qb_err_t rp_resolve(qb_md_replay_t *r, char *errstr, size_t errstr_size) {
    PGresult *res = NULL;
    qb_err_t e;
    if (r->nsyms == 0) {
        char sf[QB_TIME_STRLEN], st[QB_TIME_STRLEN];
        rp_time_param(r->from, "-infinity", sf, sizeof sf);
        rp_time_param(r->to, "infinity", st, sizeof st);
        const char *p[3] = {r->tf, sf, st};
        e = qb_store_query(r->s,
                           "SELECT a.asset_id, a.symbol FROM md.assets a WHERE EXISTS"
                           " (SELECT 1 FROM md.bars b WHERE b.asset_id = a.asset_id"
                           " AND b.timeframe = $1 AND b.ts >= $2::timestamptz"
                           " AND b.ts < $3::timestamptz) ORDER BY a.symbol",
                           3, p, &res, errstr, errstr_size);
    } else {
        /* '{"A","B"}': symbols hold only A-Z 0-9 . - / _ ^ = (qb_symbol_set). */
        size_t cap = r->nsyms * (QB_SYMBOL_MAX + 3) + 3, len = 0;
        char *arr = malloc(cap);
        if (!arr) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
        arr[len++] = '{';
        for (size_t i = 0; i < r->nsyms; i++)
            len += (size_t)snprintf(arr + len, cap - len, "%s\"%s\"", i ? "," : "", r->syms[i].s);
        snprintf(arr + len, cap - len, "}");
        const char *p[1] = {arr};
        e = qb_store_query(r->s,
                           "SELECT asset_id, symbol FROM md.assets WHERE symbol = ANY($1::text[])"
                           " ORDER BY symbol",
                           1, p, &res, errstr, errstr_size);
        free(arr);
    }
    if (e) return e;
    size_t n = (size_t)PQntuples(res);
    if (r->nsyms && n != r->nsyms) {
        /* Name the first symbol that is not in md.assets. */
        size_t j = 0;
        for (size_t i = 0; i < r->nsyms; i++) {
            if (j < n && strcmp(PQgetvalue(res, (int)j, 1), r->syms[i].s) == 0) {
                j++;
                continue;
            }
            qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                       "replay: unknown symbol %s (not in md.assets)", r->syms[i].s);
            break;
        }
        PQclear(res);
        return QB_ERR_NOT_FOUND;
    }
    r->cur = n ? calloc(n, sizeof(*r->cur)) : NULL;
    r->heap = n ? calloc(n, sizeof(*r->heap)) : NULL;
    if (n && (!r->cur || !r->heap)) {
        PQclear(res);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rp_cursor_t *c = &r->cur[i];
        c->asset_id = (int32_t)atol(PQgetvalue(res, (int)i, 0));
        snprintf(c->sym.s, sizeof c->sym.s, "%s", PQgetvalue(res, (int)i, 1));
        c->cur.symbol = c->sym;
        snprintf(c->cur.timeframe, sizeof c->cur.timeframe, "%s", r->tf);
    }
    r->ncur = n;
    PQclear(res);
    return QB_OK;
}

static void rp_release(qb_md_replay_t *r) {
    for (size_t i = 0; i < r->ncur; i++) PQclear(r->cur[i].page);
    free(r->cur);
    free(r->heap);
    r->cur = NULL;
    r->heap = NULL;
    r->ncur = r->nheap = 0;
}

/* ---- the run ----------------------------------------------------------------- */

typedef struct rp_batch_s {
    qb_bar_t *bars;
    size_t n;
    char *src; /* source of every bar in the batch */
    size_t src_cap;
} rp_batch_t;

static int rp_canceled(const qb_md_replay_t *r) { return r->cancel && *r->cancel; }

static qb_err_t rp_emit(qb_md_replay_t *r, rp_batch_t *b, qb_md_replay_emit_cb emit,
                        void *opaque, char *errstr, size_t errstr_size) {
    if (b->n == 0) return QB_OK;
    qb_err_t e = emit(opaque, b->bars, b->n, b->src, errstr, errstr_size);
    if (e) {
        if (errstr && errstr_size && !*errstr)
            qb_err_set(errstr, errstr_size, e, "replay: output failed: %s", qb_err_str(e));
        return e;
    }
    if (r->st.bars == 0) r->st.first_ts = b->bars[0].ts;
    r->st.bars += (int64_t)b->n;
    r->st.last_ts = b->bars[b->n - 1].ts;
    b->n = 0;
    if (r->progress) r->progress(r->progress_opaque, r->st.bars, r->st.last_ts);
    return QB_OK;
}

static int rp_set_src(rp_batch_t *b, const char *src) {
    size_t len = strlen(src) + 1;
    if (len > b->src_cap) {
        char *n = realloc(b->src, len);
        if (!n) return -1;
        b->src = n;
        b->src_cap = len;
    }
    memcpy(b->src, src, len);
    return 0;
}

/* Sleep until the monotonic instant `deadline` (ns), in slices so a cancel
 * is noticed. Returns 1 when canceled. */
static int rp_sleep_until(const qb_md_replay_t *r, int64_t deadline) {
    for (;;) {
        if (rp_canceled(r)) return 1;
        int64_t now = qb_time_mono_ns();
        if (now >= deadline) return 0;
        int64_t until = deadline - now > RP_SLEEP_SLICE_NS ? now + RP_SLEEP_SLICE_NS : deadline;
        struct timespec ts = {(time_t)(until / QB_NS_PER_SEC), (long)(until % QB_NS_PER_SEC)};
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (rc != 0 && rc != EINTR) return 0; /* cannot sleep: go on unpaced */
    }
}

static qb_err_t rp_loop(qb_md_replay_t *r, rp_batch_t *b, qb_md_replay_emit_cb emit,
                        void *opaque, char *errstr, size_t errstr_size) {
    qb_err_t e;
    int64_t t0 = 0;
    qb_time_t ts0 = 0;
    int started = 0;
    while (r->nheap > 0) {
        if (rp_canceled(r)) {
            r->st.canceled = 1;
            break;
        }
        rp_cursor_t *c = r->heap[0];
        if (r->speed > 0) {
            int64_t now = qb_time_mono_ns();
            if (!started) {
                t0 = now;
                ts0 = c->cur.ts;
                started = 1;
            }
            int64_t deadline = t0 + (int64_t)((double)(c->cur.ts - ts0) / r->speed);
            if (deadline > now) {
                /* Everything due goes out before we wait. */
                if ((e = rp_emit(r, b, emit, opaque, errstr, errstr_size)) != QB_OK) return e;
                if (rp_sleep_until(r, deadline)) {
                    r->st.canceled = 1;
                    break;
                }
            } else if (now - deadline > r->st.max_late_ns) {
                r->st.max_late_ns = now - deadline;
            }
        }
        if (b->n > 0 && (b->n == r->batch || strcmp(b->src, c->src) != 0))
            if ((e = rp_emit(r, b, emit, opaque, errstr, errstr_size)) != QB_OK) return e;
        if (b->n == 0 && rp_set_src(b, c->src) != 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
        b->bars[b->n++] = c->cur;
        if ((e = rp_advance(r, c, errstr, errstr_size)) != QB_OK) return e;
        if (!c->page) r->heap[0] = r->heap[--r->nheap];
        rp_sift_down(r, 0);
    }
    return rp_emit(r, b, emit, opaque, errstr, errstr_size);
}

qb_err_t qb_md_replay_run(qb_md_replay_t *r, qb_md_replay_emit_cb emit, void *opaque,
                          char *errstr, size_t errstr_size) {
    if (!r || !emit) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: bad argument");
    if (errstr && errstr_size) errstr[0] = '\0';
    memset(&r->st, 0, sizeof r->st);
    int64_t start = qb_time_mono_ns();
    rp_batch_t b = {0};
    qb_err_t e = qb_md_store_check_schema(r->s, errstr, errstr_size);
    if (!e) e = qb_store_prepare(r->s, RP_STMT_PAGE, RP_SQL_PAGE, 5);
    if (e && errstr && errstr_size && !*errstr)
        qb_err_set(errstr, errstr_size, e, "replay: cannot prepare the page query");
    if (!e) e = rp_resolve(r, errstr, errstr_size);
    if (!e) {
        r->st.symbols = (int64_t)r->ncur;
        if (r->chunk_opt) {
            r->chunk = r->chunk_opt;
        } else {
            size_t per = r->ncur ? QB_MD_REPLAY_ROW_BUDGET / r->ncur : QB_MD_REPLAY_CHUNK_MAX;
            r->chunk = per < QB_MD_REPLAY_CHUNK_MIN   ? QB_MD_REPLAY_CHUNK_MIN
                       : per > QB_MD_REPLAY_CHUNK_MAX ? QB_MD_REPLAY_CHUNK_MAX
                                                      : per;
        }
        r->st.chunk_rows = r->chunk;
        b.bars = malloc(r->batch * sizeof(*b.bars));
        if (!b.bars) e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
    }
    /* First page of every cursor; the heap is built from those with bars. */
    for (size_t i = 0; !e && i < r->ncur; i++) {
        if (rp_canceled(r)) break;
        rp_cursor_t *c = &r->cur[i];
        e = rp_fetch(r, c, 0, errstr, errstr_size);
        if (!e && c->page) r->heap[r->nheap++] = c;
    }
    if (!e) {
        for (size_t i = r->nheap / 2; i-- > 0;) rp_sift_down(r, i);
        e = rp_loop(r, &b, emit, opaque, errstr, errstr_size);
    }
    rp_release(r);
    free(b.bars);
    free(b.src);
    r->st.elapsed_ns = qb_time_mono_ns() - start;
    QB_DEBUG("replay %s: %lld bars of %lld symbols, %lld queries (max %lld rows), %s",
             r->tf, (long long)r->st.bars, (long long)r->st.symbols, (long long)r->st.queries,
             (long long)r->st.max_rows_per_query, e ? qb_err_name(e) : "ok");
    return e;
}

/* ---- publishing ------------------------------------------------------------- */

typedef struct rp_pub_s {
    qb_producer_t *p;
    qb_cache_t *cache;
    const char *name;
    int64_t since_flush, last_flush_ns;
    unsigned char *last; /* per batch bar: 1 = its symbol's last bar in the batch */
    const char **seen;   /* open-addressing set of symbols */
    size_t cap, seen_cap;
} rp_pub_t;

static uint64_t rp_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Mark, for each bar, whether no later bar of the batch has its symbol. */
static int rp_mark_last(rp_pub_t *pb, const qb_bar_t *bars, size_t n) {
    if (n > pb->cap) {
        size_t sc = 16;
        while (sc < 2 * n) sc *= 2;
        unsigned char *l = realloc(pb->last, n);
        if (!l) return -1;
        pb->last = l;
        const char **s = realloc(pb->seen, sc * sizeof(*s));
        if (!s) return -1;
        pb->seen = s;
        pb->cap = n;
        pb->seen_cap = sc;
    }
    memset(pb->seen, 0, pb->seen_cap * sizeof(*pb->seen));
    for (size_t i = n; i-- > 0;) {
        const char *sym = bars[i].symbol.s;
        size_t k = (size_t)rp_hash(sym) & (pb->seen_cap - 1);
        while (pb->seen[k] && strcmp(pb->seen[k], sym) != 0) k = (k + 1) & (pb->seen_cap - 1);
        pb->last[i] = pb->seen[k] == NULL;
        pb->seen[k] = sym;
    }
    return 0;
}

static qb_err_t rp_flush(rp_pub_t *pb, char *errstr, size_t errstr_size) {
    qb_err_t e = qb_producer_flush(pb->p, 30000);
    pb->since_flush = 0;
    pb->last_flush_ns = qb_time_mono_ns();
    if (e)
        return qb_err_set(errstr, errstr_size, e, "replay: md.bars: not every bar was delivered (%s)",
                          qb_err_str(e));
    return QB_OK;
}

static qb_err_t rp_publish_emit(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                                char *errstr, size_t errstr_size) {
    rp_pub_t *pb = opaque;
    qb_err_t e = QB_OK;
    if (!pb->cache) {
        e = qb_md_publish_bars(pb->p, NULL, bars, n, source, pb->name, errstr, errstr_size);
    } else {
        if (rp_mark_last(pb, bars, n) != 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay: out of memory");
        /* Runs without a symbol's last bar go out in one call without the
         * cache; each symbol's last bar alone, with it. */
        size_t i = 0;
        while (!e && i < n) {
            size_t j = i;
            while (j < n && !pb->last[j]) j++;
            if (j > i) e = qb_md_publish_bars(pb->p, NULL, bars + i, j - i, source, pb->name,
                                              errstr, errstr_size);
            if (!e && j < n)
                e = qb_md_publish_bars(pb->p, pb->cache, bars + j, 1, source, pb->name, errstr,
                                       errstr_size);
            i = j + 1;
        }
    }
    if (e) return e;
    qb_producer_poll(pb->p, 0);
    pb->since_flush += (int64_t)n;
    if (pb->since_flush >= QB_MD_REPLAY_FLUSH_BARS ||
        qb_time_mono_ns() - pb->last_flush_ns >= QB_MD_REPLAY_FLUSH_MS * QB_NS_PER_MS)
        return rp_flush(pb, errstr, errstr_size);
    return QB_OK;
}

qb_err_t qb_md_replay_publish(qb_md_replay_t *r, qb_producer_t *producer, qb_cache_t *cache,
                              const char *producer_name, char *errstr, size_t errstr_size) {
    if (!r || !producer)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay: producer is required");
    rp_pub_t pb;
    memset(&pb, 0, sizeof pb);
    pb.p = producer;
    pb.cache = cache;
    pb.name = producer_name ? producer_name : "qb-replay";
    pb.last_flush_ns = qb_time_mono_ns();
    qb_err_t e = qb_md_replay_run(r, rp_publish_emit, &pb, errstr, errstr_size);
    /* What was queued is delivered (or reported) whatever happened. */
    char fe[256];
    qb_err_t f = rp_flush(&pb, fe, sizeof fe);
    if (!e && f) e = qb_err_set(errstr, errstr_size, f, "%s", fe);
    else if (f) QB_WARN("%s", fe);
    free(pb.last);
    free(pb.seen);
    return e;
}

/* ---- the "replay" source ----------------------------------------------------- */

typedef struct rp_source_s {
    qb_md_source_t base;
    qb_store_t *s;
    double speed;
    const volatile sig_atomic_t *cancel;
} rp_source_t;

static qb_err_t rp_sink_emit(void *opaque, const qb_bar_t *bars, size_t n, const char *source,
                             char *errstr, size_t errstr_size) {
    const qb_md_sink_t *sink = opaque;
    (void)source;
    return sink->bars(sink->opaque, bars, n, errstr, errstr_size);
}

static qb_err_t rp_source_fetch(qb_md_source_t *src, const qb_md_request_t *req,
                                const qb_md_sink_t *sink, char *errstr, size_t errstr_size) {
    rp_source_t *rs = (rp_source_t *)src;
    const char *syms[1] = {req->symbol};
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    o.symbols = syms;
    o.nsymbols = 1;
    o.timeframe = req->timeframe;
    o.from = req->from;
    o.to = req->to;
    o.speed = rs->speed;
    o.cancel = rs->cancel;
    o.batch_bars = QB_MD_REPLAY_CHUNK_MAX; /* one batch per page when unpaced */
    qb_md_replay_t *r = NULL;
    qb_err_t e = qb_md_replay_new(rs->s, &o, &r, errstr, errstr_size);
    if (e) return e;
    e = qb_md_replay_run(r, rp_sink_emit, (void *)sink, errstr, errstr_size);
    qb_md_replay_destroy(r);
    return e;
}

static void rp_source_destroy(qb_md_source_t *src) { free(src); }

static const qb_md_source_ops_t rp_source_ops = {"replay", rp_source_fetch, rp_source_destroy};

qb_md_source_t *qb_md_replay_source_new(qb_store_t *store, double speed,
                                        const volatile sig_atomic_t *cancel, char *errstr,
                                        size_t errstr_size) {
    if (!store || !isfinite(speed)) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "replay source: store and a finite speed are required");
        return NULL;
    }
    rp_source_t *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "replay source: out of memory");
        return NULL;
    }
    rs->base.ops = &rp_source_ops;
    rs->s = store;
    rs->speed = speed;
    rs->cancel = cancel;
    return &rs->base;
}
