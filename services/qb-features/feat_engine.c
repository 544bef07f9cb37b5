/* feat_engine.c — per-series indicator and strategy state; see feat.h.
 *
 * Series live in an open-addressing hash table keyed by "SYMBOL|TF". A
 * series is created at its first bar (after a start or a rebalance) and
 * dropped when its partition is revoked; the caller warms it up from
 * stored bars before the first bar it applies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "feat.h"

struct feat_engine_s {
    char *specs[FEAT_MAX_INDICATORS];
    int nspecs;
    char *names[FEAT_MAX_VALUES]; /* column names of the outputs */
    int nvals;
    feat_series_t **slots; /* hash table, NULL = empty, TOMB = deleted */
    size_t cap, count, used;
    feat_sdef_t *defs;
    size_t ndefs;
    uint64_t gen;
};

static feat_series_t tomb_;
#define TOMB (&tomb_)

void feat_sdefs_free(feat_sdef_t *v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].params);
        for (size_t k = 0; k < v[i].nsymbols; k++) free(v[i].symbols[k]);
        free(v[i].symbols);
    }
    free(v);
}

feat_engine_t *feat_engine_new(const char *indicators, char *errstr, size_t errstr_size) {
    feat_engine_t *e = calloc(1, sizeof *e);
    char *list = strdup(indicators ? indicators : "");
    if (!e || !list) {
        free(e);
        free(list);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char msg[256];
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        qb_ta_t *ta = NULL;
        if (qb_ta_new(t, &ta, msg, sizeof msg) != QB_OK) {
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "indicator '%s': %s", t, msg);
            goto fail;
        }
        if (e->nspecs == FEAT_MAX_INDICATORS ||
            e->nvals + qb_ta_num_outputs(ta) > FEAT_MAX_VALUES) {
            qb_ta_destroy(ta);
            qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "too many indicators (at most %d)",
                       FEAT_MAX_INDICATORS);
            goto fail;
        }
        e->specs[e->nspecs++] = strdup(qb_ta_spec(ta));
        for (int k = 0; k < qb_ta_num_outputs(ta); k++) {
            char col[QB_TA_COLUMN_MAX];
            qb_ta_column(ta, k, col, sizeof col);
            e->names[e->nvals++] = strdup(col);
        }
        qb_ta_destroy(ta);
    }
    free(list);
    e->cap = 64;
    e->slots = calloc(e->cap, sizeof *e->slots);
    if (!e->slots) goto fail;
    return e;
fail:
    free(list);
    feat_engine_destroy(e);
    return NULL;
}

static void series_free(feat_series_t *s) {
    if (!s || s == TOMB) return;
    for (int i = 0; i < s->nta; i++) qb_ta_destroy(s->ta[i]);
    for (size_t i = 0; i < s->ninst; i++) qb_strategy_destroy(s->inst[i].s);
    free(s->inst);
    free(s);
}

void feat_engine_clear(feat_engine_t *e) {
    for (size_t i = 0; i < e->cap; i++) {
        series_free(e->slots[i]);
        e->slots[i] = NULL;
    }
    e->count = e->used = 0;
}

void feat_engine_destroy(feat_engine_t *e) {
    if (!e) return;
    if (e->slots) feat_engine_clear(e);
    free(e->slots);
    for (int i = 0; i < e->nspecs; i++) free(e->specs[i]);
    for (int i = 0; i < e->nvals; i++) free(e->names[i]);
    feat_sdefs_free(e->defs, e->ndefs);
    free(e);
}

int feat_engine_num_values(const feat_engine_t *e) { return e->nvals; }

const char *feat_engine_value_name(const feat_engine_t *e, int i) {
    return i >= 0 && i < e->nvals ? e->names[i] : NULL;
}

void feat_engine_set_strategies(feat_engine_t *e, feat_sdef_t *v, size_t n) {
    feat_sdefs_free(e->defs, e->ndefs);
    e->defs = v;
    e->ndefs = n;
    e->gen++;
}

/* ---- the table ------------------------------------------------------------ */

static uint64_t key_hash(const char *sym, const char *tf) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = sym; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '|') * 1099511628211ULL;
    for (const char *p = tf; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static int series_is(const feat_series_t *s, const char *sym, const char *tf) {
    return s && s != TOMB && strcmp(s->symbol, sym) == 0 && strcmp(s->timeframe, tf) == 0;
}

feat_series_t *feat_engine_find(feat_engine_t *e, const char *symbol, const char *tf) {
    size_t mask = e->cap - 1;
    for (size_t i = key_hash(symbol, tf) & mask;; i = (i + 1) & mask) {
        feat_series_t *s = e->slots[i];
        if (!s) return NULL;
        if (series_is(s, symbol, tf)) return s;
    }
}

static int grow(feat_engine_t *e) {
    size_t cap = e->cap * 2;
    feat_series_t **ns = calloc(cap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < e->cap; i++) {
        feat_series_t *s = e->slots[i];
        if (!s || s == TOMB) continue;
        size_t k = key_hash(s->symbol, s->timeframe) & (cap - 1);
        while (ns[k]) k = (k + 1) & (cap - 1);
        ns[k] = s;
    }
    free(e->slots);
    e->slots = ns;
    e->cap = cap;
    e->used = e->count;
    return 0;
}

feat_series_t *feat_engine_add(feat_engine_t *e, const char *symbol, const char *tf,
                               int32_t partition) {
    if ((e->used + 1) * 2 > e->cap && grow(e) != 0) return NULL;
    feat_series_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->symbol, sizeof s->symbol, "%s", symbol);
    snprintf(s->timeframe, sizeof s->timeframe, "%s", tf);
    s->partition = partition;
    char msg[256];
    for (int i = 0; i < e->nspecs; i++) {
        if (qb_ta_new(e->specs[i], &s->ta[i], msg, sizeof msg) != QB_OK) {
            series_free(s);
            return NULL;
        }
        s->nta++;
    }
    s->nvals = e->nvals;
    for (int i = 0; i < s->nvals; i++) s->vals[i] = NAN;
    size_t mask = e->cap - 1;
    size_t i = key_hash(symbol, tf) & mask;
    while (e->slots[i] && e->slots[i] != TOMB) i = (i + 1) & mask;
    if (!e->slots[i]) e->used++;
    e->slots[i] = s;
    e->count++;
    return s;
}

int feat_engine_drop_partition(feat_engine_t *e, int32_t partition) {
    int n = 0;
    for (size_t i = 0; i < e->cap; i++) {
        feat_series_t *s = e->slots[i];
        if (!s || s == TOMB || s->partition != partition) continue;
        series_free(s);
        e->slots[i] = TOMB;
        e->count--;
        n++;
    }
    return n;
}

void feat_engine_remove(feat_engine_t *e, feat_series_t *s) {
    for (size_t i = 0; i < e->cap; i++)
        if (e->slots[i] == s) {
            series_free(s);
            e->slots[i] = TOMB;
            e->count--;
            return;
        }
}

size_t feat_engine_count(const feat_engine_t *e) { return e->count; }

void feat_engine_each(feat_engine_t *e, void (*fn)(feat_series_t *, void *), void *opaque) {
    for (size_t i = 0; i < e->cap; i++)
        if (e->slots[i] && e->slots[i] != TOMB) fn(e->slots[i], opaque);
}

/* ---- bars ----------------------------------------------------------------- */

static void ta_bar(const qb_bar_t *b, qb_ta_bar_t *t) {
    t->time = b->ts;
    t->open = qb_dec_to_double(b->open);
    t->high = qb_dec_to_double(b->high);
    t->low = qb_dec_to_double(b->low);
    t->close = qb_dec_to_double(b->close);
    t->volume = qb_dec_to_double(b->volume);
}

static void indicators_update(feat_series_t *s, const qb_bar_t *bar) {
    qb_ta_bar_t tb;
    ta_bar(bar, &tb);
    int k = 0;
    for (int i = 0; i < s->nta; i++) {
        double out[QB_TA_MAX_OUTPUTS];
        qb_ta_update(s->ta[i], &tb, out);
        for (int j = 0; j < qb_ta_num_outputs(s->ta[i]); j++) s->vals[k++] = out[j];
    }
}

void feat_series_warm(feat_series_t *s, const qb_bar_t *bar) {
    if (s->last_ts && bar->ts <= s->last_ts) return;
    indicators_update(s, bar);
    s->last_ts = bar->ts;
    s->bars++;
}

static const feat_sdef_t *def_find(const feat_engine_t *e, const char *id) {
    for (size_t i = 0; i < e->ndefs; i++)
        if (strcmp(e->defs[i].id, id) == 0) return &e->defs[i];
    return NULL;
}

static int def_covers(const feat_sdef_t *d, const feat_series_t *s) {
    if (strcmp(d->timeframe, s->timeframe) != 0) return 0;
    for (size_t i = 0; i < d->nsymbols; i++)
        if (strcmp(d->symbols[i], s->symbol) == 0) return 1;
    return 0;
}

qb_err_t feat_series_sync(feat_engine_t *e, feat_series_t *s, qb_time_t before,
                          feat_history_cb history, feat_state_cb state, void *opaque,
                          char *errstr, size_t errstr_size) {
    if (s->inst_gen == e->gen) return QB_OK;
    /* Keep the instances whose definition is unchanged. */
    size_t kept = 0;
    for (size_t i = 0; i < s->ninst; i++) {
        const feat_sdef_t *d = def_find(e, s->inst[i].id);
        if (d && d->change_seq == s->inst[i].change_seq && def_covers(d, s)) {
            s->inst[kept++] = s->inst[i];
        } else {
            QB_INFO("strategy %s on %s %s: stopped (disabled or changed)", s->inst[i].id,
                    s->symbol, s->timeframe);
            qb_strategy_destroy(s->inst[i].s);
        }
    }
    s->ninst = kept;
    /* New ones, warmed from history; their saved state when it fits. */
    qb_bar_t *hist = NULL;
    size_t nhist = 0;
    int have_hist = 0;
    qb_err_t err = QB_OK;
    for (size_t i = 0; i < e->ndefs && !err; i++) {
        const feat_sdef_t *d = &e->defs[i];
        if (!def_covers(d, s)) continue;
        int present = 0;
        for (size_t k = 0; k < s->ninst; k++)
            if (strcmp(s->inst[k].id, d->id) == 0) present = 1;
        if (present) continue;
        qb_strategy_t *st = NULL;
        char msg[512];
        if (qb_strategy_new(d->kind, d->params, &st, msg, sizeof msg) != QB_OK) {
            QB_WARN("strategy %s (%s): %s: not run", d->id, d->kind, msg);
            continue;
        }
        if (!have_hist && history) {
            err = history(opaque, s, before, &hist, &nhist, errstr, errstr_size);
            if (err) {
                qb_strategy_destroy(st);
                break;
            }
            have_hist = 1;
        }
        for (size_t k = 0; k < nhist; k++) qb_strategy_warmup(st, &hist[k]);
        if (state) {
            int64_t seq = 0;
            char *json = NULL;
            err = state(opaque, d->id, s->symbol, &seq, &json, errstr, errstr_size);
            if (err) {
                qb_strategy_destroy(st);
                free(json);
                break;
            }
            if (json && seq == d->change_seq) {
                if (qb_strategy_restore(st, json, msg, sizeof msg) != QB_OK)
                    QB_WARN("strategy %s on %s: saved state not restored (%s): starts flat",
                            d->id, s->symbol, msg);
            }
            free(json);
        }
        feat_inst_t *ni = realloc(s->inst, (s->ninst + 1) * sizeof *ni);
        if (!ni) {
            qb_strategy_destroy(st);
            err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
            break;
        }
        s->inst = ni;
        feat_inst_t *in = &s->inst[s->ninst++];
        memset(in, 0, sizeof *in);
        snprintf(in->id, sizeof in->id, "%s", d->id);
        snprintf(in->account, sizeof in->account, "%s", d->account);
        in->change_seq = d->change_seq;
        in->s = st;
        QB_INFO("strategy %s (%s) on %s %s: running, position %d after %zu history bars",
                d->id, d->kind, s->symbol, s->timeframe, qb_strategy_position(st), nhist);
    }
    free(hist);
    if (!err) s->inst_gen = e->gen;
    return err;
}

int feat_series_apply(feat_series_t *s, const qb_bar_t *bar,
                      void (*on_signal)(void *opaque, feat_inst_t *inst,
                                        const qb_signal_t *sig),
                      void *opaque) {
    if (s->last_ts && bar->ts <= s->last_ts) return 0;
    indicators_update(s, bar);
    s->last_ts = bar->ts;
    s->bars++;
    s->dirty = 1;
    for (size_t i = 0; i < s->ninst; i++) {
        qb_signal_t sig;
        int r = qb_strategy_on_bar(s->inst[i].s, bar, &sig);
        s->inst[i].dirty = 1;
        if (r == 1 && on_signal) on_signal(opaque, &s->inst[i], &sig);
    }
    return 1;
}
