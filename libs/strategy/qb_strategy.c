/* qb_strategy.c — the strategy framework: creation from JSON parameters,
 * the per-bar driver (indicators, rules, emission), save/restore, values
 * for publishing, and signal ids.
 *
 * Ownership: an instance owns its indicators (qb_ta_t, freed at destroy),
 * its kind struct and that struct's post-init snapshot (one allocation,
 * copied back by reset), and its canonical parameter text. The kind table
 * is static (qb_strategy_registry.c). The per-bar path (feed) touches only
 * memory allocated at creation. Plain SMA / EMA indicators (sma_cross,
 * ema_cross, ...) are stepped through libs/ta's inline definitions
 * (qb_ta_ma.h, on the instance's own state): the values qb_ta_update
 * would give, without its call and bookkeeping; every other indicator goes
 * through qb_ta_update. */
#include "strategy/qb_strategy.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strategy/qb_strategy_kind.h"
#include "ta/qb_ta.h"
#include "ta/qb_ta_ma.h"

/* The parameters every kind has (documented in qb_strategy.h). */
typedef struct common_s {
    int allow_short;
    double stop_atr;
    int atr_period;
    double target_weight;
} common_t;

static const qb_strategy_param_t common_params[] = {
    {"allow_short", QB_SPARAM_BOOL, offsetof(common_t, allow_short), 0, 0, 1},
    {"stop_atr", QB_SPARAM_NUM, offsetof(common_t, stop_atr), 0, 0, 1e6},
    {"atr_period", QB_SPARAM_INT, offsetof(common_t, atr_period), 14, 1, 100000},
    {"target_weight", QB_SPARAM_NUM, offsetof(common_t, target_weight), 0, 0, 1},
};
#define NCOMMON ((int)(sizeof common_params / sizeof common_params[0]))

/* One published value: output k of indicator ta. */
typedef struct value_s {
    int ta, k;
    char name[QB_TA_COLUMN_MAX];
} value_t;

struct qb_strategy_s {
    const qb_strategy_kind_t *kind;
    void *self;  /* the kind's struct */
    void *self0; /* its snapshot right after init (reset copies it back) */
    common_t common;
    int creating; /* 1 while init may add indicators */
    int reasons;  /* 1: format signal reasons (the default) */

    int nta;
    qb_ta_t *ta[QB_STRATEGY_MAX_TA];
    double v[QB_STRATEGY_MAX_TA][QB_TA_MAX_OUTPUTS];
    /* the inline fast path (qb_ta_ma.h): indicator i is a plain SMA / EMA
     * whose state feed steps directly, or NULL: qb_ta_update */
    qb_ta_sma_t *fsma[QB_STRATEGY_MAX_TA];
    qb_ta_ema_t *fema[QB_STRATEGY_MAX_TA];
    int columns; /* every indicator is one of those: on_bars_columns */
    unsigned inputs;  /* QB_TA_IN_* read by any indicator */
    int max_lookback; /* rules run from bar index max_lookback on */
    int warmup;       /* max_lookback + kind->uses_previous */
    int atr_idx;      /* -1 without stop_atr */

    int position;     /* +1, 0, -1 */
    int64_t bars;
    qb_time_t last_ts;

    int nvalues;
    value_t values[QB_STRATEGY_MAX_TA * QB_TA_MAX_OUTPUTS];
    char *params_json;
};

/* ---- small helpers ------------------------------------------------------ */

const char *qb_signal_dir_name(qb_signal_dir_t d) {
    switch (d) {
    case QB_SIGNAL_LONG: return "LONG";
    case QB_SIGNAL_SHORT: return "SHORT";
    case QB_SIGNAL_FLAT: return "FLAT";
    }
    return "UNKNOWN";
}

qb_signal_dir_t qb_signal_dir_of(int position) {
    return position > 0 ? QB_SIGNAL_LONG : position < 0 ? QB_SIGNAL_SHORT : QB_SIGNAL_FLAT;
}

const char *qb_strategy_kind_name(const qb_strategy_kind_t *k) { return k ? k->name : NULL; }
const char *qb_strategy_kind_summary(const qb_strategy_kind_t *k) {
    return k ? k->summary : NULL;
}

const qb_strategy_kind_t *qb_strategy_kind_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < qb_strategy_kind_count(); i++) {
        const qb_strategy_kind_t *k = qb_strategy_kind_at(i);
        if (strcmp(k->name, name) == 0) return k;
    }
    return NULL;
}

/* Append to a snprintf-style buffer: *len counts the full length even past
 * cap, like snprintf's return value. */
__attribute__((format(printf, 4, 5))) static void bufcat(char *buf, size_t cap, size_t *len,
                                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *at = *len < cap ? buf + *len : NULL;
    size_t room = *len < cap ? cap - *len : 0;
    int n = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
}

/* A JSON value as short text for error messages ("got ..."). */
static void json_text(const cJSON *item, char *out, size_t cap) {
    char *t = cJSON_PrintUnformatted(item);
    if (!t) {
        snprintf(out, cap, "?");
        return;
    }
    if (strlen(t) > 40) snprintf(out, cap, "%.37s...", t);
    else snprintf(out, cap, "%s", t);
    cJSON_free(t);
}

/* A double as the shortest of %.15g / %.17g that reads back equal. */
static void fmt_num(double d, char *out, size_t cap) {
    snprintf(out, cap, "%.15g", d);
    if (strtod(out, NULL) != d) snprintf(out, cap, "%.17g", d);
}

/* ---- parameters --------------------------------------------------------- */

static void param_default(const qb_strategy_param_t *p, void *base) {
    char *f = (char *)base + p->offset;
    if (p->type == QB_SPARAM_NUM) *(double *)(void *)f = p->def;
    else *(int *)(void *)f = (int)p->def;
}

static qb_err_t param_set(const char *kind, const qb_strategy_param_t *p, void *base,
                          const cJSON *item, char *errstr, size_t errstr_size) {
    char got[48], lim[32];
    char *f = (char *)base + p->offset;
    json_text(item, got, sizeof got);
    if (p->type == QB_SPARAM_BOOL) {
        if (!cJSON_IsBool(item))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "%s.%s: must be true or false, got %s", kind, p->name, got);
        *(int *)(void *)f = cJSON_IsTrue(item) ? 1 : 0;
        return QB_OK;
    }
    int is_int = p->type == QB_SPARAM_INT;
    const char *what = is_int ? "an integer" : "a number";
    double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(d) || d < p->min || (is_int && d != floor(d))) {
        fmt_num(p->min, lim, sizeof lim);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s.%s: must be %s >= %s, got %s",
                          kind, p->name, what, lim, got);
    }
    if (d > p->max) {
        fmt_num(p->max, lim, sizeof lim);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s.%s: must be %s <= %s, got %s",
                          kind, p->name, what, lim, got);
    }
    if (is_int) *(int *)(void *)f = (int)d;
    else *(double *)(void *)f = d;
    return QB_OK;
}

static void param_json(const qb_strategy_param_t *p, const void *base, char *buf, size_t cap,
                       size_t *len) {
    const char *f = (const char *)base + p->offset;
    char num[40];
    switch (p->type) {
    case QB_SPARAM_INT: bufcat(buf, cap, len, "\"%s\":%d", p->name, *(const int *)(const void *)f); break;
    case QB_SPARAM_BOOL:
        bufcat(buf, cap, len, "\"%s\":%s", p->name,
               *(const int *)(const void *)f ? "true" : "false");
        break;
    case QB_SPARAM_NUM:
        fmt_num(*(const double *)(const void *)f, num, sizeof num);
        bufcat(buf, cap, len, "\"%s\":%s", p->name, num);
        break;
    }
}

/* Canonical parameters: kind's table, then the common ones. */
static char *params_canonical(const qb_strategy_t *s) {
    const qb_strategy_kind_t *k = s->kind;
    size_t len = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t cap = pass ? len + 1 : 0;
        char *buf = pass ? malloc(cap) : NULL;
        if (pass && !buf) return NULL;
        len = 0;
        bufcat(buf, cap, &len, "{");
        for (int i = 0; i < k->nparams; i++) {
            if (i) bufcat(buf, cap, &len, ",");
            param_json(&k->params[i], s->self, buf, cap, &len);
        }
        for (int i = 0; i < NCOMMON; i++) {
            if (i || k->nparams) bufcat(buf, cap, &len, ",");
            param_json(&common_params[i], &s->common, buf, cap, &len);
        }
        bufcat(buf, cap, &len, "}");
        if (pass) return buf;
    }
    return NULL;
}

static qb_err_t params_parse(qb_strategy_t *s, const char *json, char *errstr,
                             size_t errstr_size) {
    const qb_strategy_kind_t *k = s->kind;
    for (int i = 0; i < k->nparams; i++) param_default(&k->params[i], s->self);
    for (int i = 0; i < NCOMMON; i++) param_default(&common_params[i], &s->common);
    if (!json || !*json) return QB_OK;

    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1);
    if (!root || !cJSON_IsObject(root)) {
        char got[48];
        if (root) json_text(root, got, sizeof got);
        else snprintf(got, sizeof got, "invalid JSON");
        cJSON_Delete(root);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "%s: params must be a JSON object, got %s", k->name, got);
    }
    qb_err_t err = QB_OK;
    for (const cJSON *it = root->child; it && err == QB_OK; it = it->next) {
        for (const cJSON *o = root->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: duplicate parameter \"%s\"", k->name, it->string);
                break;
            }
        if (err) break;
        const qb_strategy_param_t *p = NULL;
        void *base = NULL;
        for (int i = 0; i < k->nparams && !p; i++)
            if (strcmp(k->params[i].name, it->string) == 0) p = &k->params[i], base = s->self;
        for (int i = 0; i < NCOMMON && !p; i++)
            if (strcmp(common_params[i].name, it->string) == 0)
                p = &common_params[i], base = &s->common;
        if (p) {
            err = param_set(k->name, p, base, it, errstr, errstr_size);
            continue;
        }
        char known[256];
        size_t len = 0;
        known[0] = 0;
        for (int i = 0; i < k->nparams; i++)
            bufcat(known, sizeof known, &len, "%s%s", len ? ", " : "", k->params[i].name);
        for (int i = 0; i < NCOMMON; i++)
            bufcat(known, sizeof known, &len, "%s%s", len ? ", " : "", common_params[i].name);
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                         "%s: unknown parameter \"%.40s\" (known: %s)", k->name, it->string,
                         known);
    }
    cJSON_Delete(root);
    return err;
}

/* ---- lifecycle ---------------------------------------------------------- */

qb_err_t qb_strategy_add_ta(qb_strategy_t *s, const char *spec, int *idx, char *errstr,
                            size_t errstr_size) {
    QB_ASSERT(s->creating);
    char e[200];
    qb_ta_t *ta = NULL;
    qb_err_t err = qb_ta_new(spec, &ta, e, sizeof e);
    if (err)
        return qb_err_set(errstr, errstr_size, err, "%s: %s", s->kind->name, e);
    for (int i = 0; i < s->nta; i++)
        if (strcmp(qb_ta_spec(s->ta[i]), qb_ta_spec(ta)) == 0) {
            qb_ta_destroy(ta);
            *idx = i;
            return QB_OK;
        }
    if (s->nta == QB_STRATEGY_MAX_TA) {
        qb_ta_destroy(ta);
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "%s: more than %d indicators",
                          s->kind->name, QB_STRATEGY_MAX_TA);
    }
    s->ta[s->nta] = ta;
    for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) s->v[s->nta][k] = NAN;
    *idx = s->nta++;
    return QB_OK;
}

const char *qb_strategy_ta_spec(const qb_strategy_t *s, int idx) {
    return idx >= 0 && idx < s->nta ? qb_ta_spec(s->ta[idx]) : "";
}

void qb_strategy_destroy(qb_strategy_t *s) {
    if (!s) return;
    for (int i = 0; i < s->nta; i++) qb_ta_destroy(s->ta[i]);
    free(s->self);
    free(s->params_json);
    free(s);
}

qb_err_t qb_strategy_new(const char *kind, const char *params_json, qb_strategy_t **out,
                         char *errstr, size_t errstr_size) {
    const qb_strategy_kind_t *k = qb_strategy_kind_find(kind);
    if (!k) {
        char known[256];
        size_t len = 0;
        known[0] = 0;
        for (int i = 0; i < qb_strategy_kind_count(); i++)
            bufcat(known, sizeof known, &len, "%s%s", i ? ", " : "",
                   qb_strategy_kind_at(i)->name);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                          "unknown strategy kind \"%.40s\" (known: %s)", kind ? kind : "(null)",
                          known);
    }
    qb_strategy_t *s = calloc(1, sizeof *s);
    size_t ss = k->self_size ? k->self_size : 1;
    char *selves = calloc(2, ss);
    if (!s || !selves) {
        free(s);
        free(selves);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "%s: out of memory", k->name);
    }
    s->kind = k;
    s->self = selves;
    s->self0 = selves + ss;
    s->atr_idx = -1;
    s->creating = 1;
    s->reasons = 1;
    qb_err_t err = params_parse(s, params_json, errstr, errstr_size);
    if (!err) err = k->init(s, s->self, errstr, errstr_size);
    if (!err && s->common.stop_atr > 0) {
        char spec[32];
        snprintf(spec, sizeof spec, "atr:%d", s->common.atr_period);
        err = qb_strategy_add_ta(s, spec, &s->atr_idx, errstr, errstr_size);
    }
    if (!err && !(s->params_json = params_canonical(s)))
        err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "%s: out of memory", k->name);
    if (err) {
        qb_strategy_destroy(s);
        return err;
    }
    s->creating = 0;
    s->inputs = 0;
    s->max_lookback = 0;
    for (int i = 0; i < s->nta; i++) {
        s->inputs |= qb_ta_inputs(s->ta[i]);
        s->fsma[i] = qb_ta_sma_state(s->ta[i]);
        s->fema[i] = qb_ta_ema_state(s->ta[i]);
        if (qb_ta_lookback(s->ta[i]) > s->max_lookback) s->max_lookback = qb_ta_lookback(s->ta[i]);
        for (int j = 0; j < qb_ta_num_outputs(s->ta[i]); j++) {
            value_t *v = &s->values[s->nvalues++];
            v->ta = i;
            v->k = j;
            qb_ta_column(s->ta[i], j, v->name, sizeof v->name);
        }
    }
    s->warmup = s->max_lookback + (k->uses_previous ? 1 : 0);
    s->columns = s->inputs == QB_TA_IN_CLOSE;
    for (int i = 0; i < s->nta; i++)
        if (!s->fsma[i] && !s->fema[i]) s->columns = 0;
    memcpy(s->self0, s->self, ss);
    *out = s;
    return QB_OK;
}

void qb_strategy_reset(qb_strategy_t *s) {
    memcpy(s->self, s->self0, s->kind->self_size);
    for (int i = 0; i < s->nta; i++) {
        qb_ta_reset(s->ta[i]);
        for (int k = 0; k < QB_TA_MAX_OUTPUTS; k++) s->v[i][k] = NAN;
    }
    s->position = 0;
    s->bars = 0;
    s->last_ts = 0;
}

/* ---- bars --------------------------------------------------------------- */

#define DEC2D(x) ((double)(x) / (double)QB_DEC_SCALE) /* = qb_dec_to_double */

/* The signal of a change of intent (from -> s->position) on this bar: the
 * rare part of feed, kept out of line so the per-bar part stays small. */
static __attribute__((noinline)) int emit(qb_strategy_t *s, const qb_strategy_ctx_t *ctx,
                                          int from, qb_signal_t *sig) {
    const qb_bar_t *bar = ctx->bar;
    int want = s->position;
    sig->symbol = bar->symbol;
    memcpy(sig->timeframe, bar->timeframe, sizeof sig->timeframe);
    sig->bar_ts = bar->ts;
    sig->direction = qb_signal_dir_of(want);
    sig->confidence = 1.0;
    sig->has_target_weight = 0;
    sig->target_weight = 0;
    sig->stop_distance = 0;
    sig->reference_price = bar->close;
    sig->reason[0] = 0;
    if (want != 0) {
        if (s->common.target_weight > 0) {
            sig->has_target_weight = 1;
            sig->target_weight = s->common.target_weight;
        }
        if (s->atr_idx >= 0) {
            qb_dec_t d;
            if (qb_dec_from_double(s->common.stop_atr * s->v[s->atr_idx][0], &d,
                                   QB_ROUND_HALF_EVEN) == QB_OK && d > 0)
                sig->stop_distance = d;
        }
    }
    int closing = from < 0 && want == 0 && !s->common.allow_short; /* restored short */
    if (s->kind->confidence && !closing)
        sig->confidence = s->kind->confidence(s->self, ctx, from, want);
    if (!s->reasons) return 1;
    if (closing)
        snprintf(sig->reason, sizeof sig->reason, "long-only: closing the short position");
    else
        s->kind->explain(s->self, ctx, from, want, sig);
    return 1;
}

/* The indicators of one bar (tb built by the caller). */
static inline void feed_ta(qb_strategy_t *s, const qb_ta_bar_t *tb) {
    for (int i = 0; i < s->nta; i++) { /* the same values as qb_ta_update */
        if (s->fsma[i]) s->v[i][0] = qb_ta_sma_update(s->fsma[i], tb->close);
        else if (s->fema[i]) s->v[i][0] = qb_ta_ema_update(s->fema[i], tb->close);
        else qb_ta_update(s->ta[i], tb, s->v[i]);
    }
}

/* The rules on one bar whose indicators are in s->v (tb: the bar as
 * doubles): the wanted position, and the signal when it changes. */
static inline __attribute__((always_inline)) int decide(qb_strategy_t *s, const qb_bar_t *bar,
                                                        const qb_ta_bar_t *tb,
                                                        qb_signal_t *sig) {
    if (s->bars <= s->max_lookback) return 0;
    qb_strategy_ctx_t ctx;
    ctx.s = s;
    ctx.bar = bar;
    ctx.tb = tb;
    ctx.position = s->position;
    ctx.allow_short = s->common.allow_short;
    ctx.v = (const double(*)[QB_TA_MAX_OUTPUTS])s->v;
    int want = s->kind->on_bar(s->self, &ctx);
    want = want > 0 ? 1 : want < 0 ? -s->common.allow_short : 0;
    if (want == s->position || !sig) return 0;
    int from = s->position;
    s->position = want;
    return emit(s, &ctx, from, sig);
}

/* One bar: indicators, then rules. sig == NULL: warm-up (no decision). */
static inline __attribute__((always_inline)) int feed(qb_strategy_t *s, const qb_bar_t *bar,
                                                      qb_signal_t *sig) {
    if (s->bars > 0 && bar->ts <= s->last_ts) return QB_ERR_STATE;
    s->bars++;
    s->last_ts = bar->ts;
    qb_ta_bar_t tb;
    tb.time = bar->ts;
    tb.close = DEC2D(bar->close);
    if (s->inputs & (QB_TA_IN_HIGH | QB_TA_IN_LOW)) {
        tb.high = DEC2D(bar->high);
        tb.low = DEC2D(bar->low);
    } else {
        tb.high = tb.low = tb.close;
    }
    tb.open = (s->inputs & QB_TA_IN_OPEN) ? DEC2D(bar->open) : tb.close;
    tb.volume = (s->inputs & QB_TA_IN_VOLUME) ? DEC2D(bar->volume) : 0.0;
    feed_ta(s, &tb);
    return decide(s, bar, &tb, sig);
}

int qb_strategy_on_bar(qb_strategy_t *s, const qb_bar_t *bar, qb_signal_t *sig) {
    QB_ASSERT(sig != NULL);
    return feed(s, bar, sig);
}

#define QB_STRATEGY_CHUNK 256

/* *bar = bar k of columns ts, px (symbol and timeframe kept) */
static inline void set_bar(qb_bar_t *bar, const qb_time_t *ts, const qb_dec_t *const px[5],
                           size_t k) {
    bar->ts = ts[k];
    bar->open = px[0][k];
    bar->high = px[1][k];
    bar->low = px[2][k];
    bar->close = px[3][k];
    bar->volume = px[4][k];
}

/* The rules of a chunk through the kind's on_columns: bars k0 .. k0 + c - 1
 * of the run (price columns px, closes x, indicator outputs out),
 * signals appended from sigs[nsig]. The same decisions and signals as
 * decide on every bar; s->v, bar, bars and last_ts end as feed leaves
 * them after the chunk's last bar. */
static int rules_columns(qb_strategy_t *s, qb_bar_t *bar, const qb_time_t *ts,
                         const qb_dec_t *const px[5], size_t k0, size_t c, const double *x,
                         double (*out)[QB_STRATEGY_CHUNK], qb_signal_t *sigs, uint32_t *at,
                         int nsig) {
    signed char want[QB_STRATEGY_CHUNK];
    const int nta = s->nta, allow_short = s->common.allow_short;
    /* the rules start once bars > max_lookback (decide) */
    size_t kr = 0;
    if (s->bars < s->max_lookback) {
        size_t need = (size_t)(s->max_lookback - s->bars);
        kr = need < c ? need : c;
    }
    if (kr < c) {
        const double *vp[QB_STRATEGY_MAX_TA];
        for (int i = 0; i < nta; i++) vp[i] = out[i] + kr;
        s->kind->on_columns(s->self, vp, x + kr, c - kr, allow_short, want + kr);
    }
    /* KEEP is the usual want and then nothing happens (unless a restored
     * short meets long-only): skip eight of them at a time */
    const int keep_skips = s->position >= -allow_short;
    const uint64_t keep8 = 0x0101010101010101ULL * QB_STRATEGY_KEEP;
    for (size_t k = kr; k < c; k++) {
        if (keep_skips && k + 8 <= c) {
            uint64_t w8;
            memcpy(&w8, &want[k], sizeof w8);
            if (w8 == keep8) {
                k += 7;
                continue;
            }
        }
        int w = want[k];
        if (w == QB_STRATEGY_KEEP) {
            w = s->position;
            if (w >= -allow_short) continue; /* unchanged by the clamp below */
        }
        w = w > 0 ? 1 : w < 0 ? -allow_short : 0;
        if (w == s->position) continue;
        /* a change of intent on bar k: the state decide had there */
        set_bar(bar, ts, px, k0 + k);
        s->bars += (int64_t)(k + 1);
        s->last_ts = bar->ts;
        for (int i = 0; i < nta; i++) s->v[i][0] = out[i][k];
        qb_ta_bar_t tb = {bar->ts, x[k], x[k], x[k], x[k], 0.0};
        qb_strategy_ctx_t ctx;
        ctx.s = s;
        ctx.bar = bar;
        ctx.tb = &tb;
        ctx.position = s->position;
        ctx.allow_short = allow_short;
        ctx.v = (const double(*)[QB_TA_MAX_OUTPUTS])s->v;
        int from = s->position;
        s->position = w;
        emit(s, &ctx, from, &sigs[nsig]);
        s->bars -= (int64_t)(k + 1);
        at[nsig++] = (uint32_t)(k0 + k);
    }
    set_bar(bar, ts, px, k0 + c - 1);
    s->bars += (int64_t)c;
    s->last_ts = bar->ts;
    for (int i = 0; i < nta; i++) s->v[i][0] = out[i][c - 1];
    return nsig;
}

/* qb_strategy_on_bars when every indicator is a plain SMA / EMA of the
 * close (s->columns): the indicators run a chunk of bars at a time, each
 * over its own column (the same inline update, in bar order, so the same
 * values), then the rules: the kind's on_columns over the chunk
 * (rules_columns), or decide bar by bar with s->v set to that bar's
 * outputs - as feed would have had them. */
static int on_bars_columns(qb_strategy_t *s, qb_bar_t *bar, const qb_time_t *ts,
                           const qb_dec_t *const px[5], size_t n, qb_signal_t *sigs,
                           uint32_t *at) {
    double x[QB_STRATEGY_CHUNK], out[QB_STRATEGY_MAX_TA][QB_STRATEGY_CHUNK];
    int nsig = 0;
    for (size_t k0 = 0; k0 < n; k0 += QB_STRATEGY_CHUNK) {
        size_t c = n - k0 < QB_STRATEGY_CHUNK ? n - k0 : QB_STRATEGY_CHUNK;
        /* DEC2D, the division two at a time (the same bits) */
        const qb_dec_t *close = px[3] + k0;
        {
            const qb_ta_v2d sc = {(double)QB_DEC_SCALE, (double)QB_DEC_SCALE};
            size_t k = 0;
            for (; k + 2 <= c; k += 2) {
                qb_ta_v2d v = {(double)close[k], (double)close[k + 1]};
                v = v / sc;
                memcpy(&x[k], &v, sizeof v);
            }
            for (; k < c; k++) x[k] = (double)close[k] / (double)QB_DEC_SCALE;
        }
        const int nta = s->nta;
        int t = 0;
        if (nta >= 2 && s->fsma[0] && s->fsma[1]) { /* the usual pair: fused */
            qb_ta_sma_run2(s->fsma[0], s->fsma[1], x, out[0], out[1], c);
            t = 2;
        }
        for (; t < nta; t++) {
            if (s->fsma[t]) qb_ta_sma_run(s->fsma[t], x, out[t], c);
            else qb_ta_ema_run(s->fema[t], x, out[t], c);
        }
        if (s->kind->on_columns) {
            nsig = rules_columns(s, bar, ts, px, k0, c, x, out, sigs, at, nsig);
            continue;
        }
        for (size_t k = 0; k < c; k++) {
            set_bar(bar, ts, px, k0 + k);
            s->bars++;
            s->last_ts = bar->ts;
            s->v[0][0] = out[0][k];
            for (int i = 1; i < nta; i++) s->v[i][0] = out[i][k];
            qb_ta_bar_t tb = {bar->ts, x[k], x[k], x[k], x[k], 0.0};
            if (decide(s, bar, &tb, &sigs[nsig]) == 1) at[nsig++] = (uint32_t)(k0 + k);
        }
    }
    return nsig;
}

int qb_strategy_on_bars(qb_strategy_t *s, qb_bar_t *bar, const qb_time_t *ts,
                        const qb_dec_t *const px[5], size_t n, qb_signal_t *sigs,
                        uint32_t *at) {
    /* every ts after the previous, or nothing is fed */
    if (n > 0 && s->bars > 0 && ts[0] <= s->last_ts) return QB_ERR_STATE;
    for (size_t k = 1; k < n; k++)
        if (ts[k] <= ts[k - 1]) return QB_ERR_STATE;
    if (s->columns) return on_bars_columns(s, bar, ts, px, n, sigs, at);
    int nsig = 0;
    for (size_t k = 0; k < n; k++) {
        set_bar(bar, ts, px, k);
        if (feed(s, bar, &sigs[nsig]) == 1) at[nsig++] = (uint32_t)k;
    }
    return nsig;
}

int qb_strategy_warmup(qb_strategy_t *s, const qb_bar_t *bar) { return feed(s, bar, NULL); }

void qb_strategy_set_reasons(qb_strategy_t *s, int on) { s->reasons = on ? 1 : 0; }

qb_err_t qb_strategy_on_fill(qb_strategy_t *s, const qb_fill_t *fill) {
    return s->kind->on_fill ? s->kind->on_fill(s->self, fill) : QB_OK;
}

/* ---- description -------------------------------------------------------- */

const qb_strategy_kind_t *qb_strategy_kind(const qb_strategy_t *s) { return s->kind; }
const char *qb_strategy_params(const qb_strategy_t *s) { return s->params_json; }
int qb_strategy_warmup_bars(const qb_strategy_t *s) { return s->warmup; }
int qb_strategy_position(const qb_strategy_t *s) { return s->position; }
int64_t qb_strategy_bars(const qb_strategy_t *s) { return s->bars; }
qb_time_t qb_strategy_last_ts(const qb_strategy_t *s) { return s->last_ts; }
int qb_strategy_num_values(const qb_strategy_t *s) { return s->nvalues; }

const char *qb_strategy_value_name(const qb_strategy_t *s, int i) {
    return i >= 0 && i < s->nvalues ? s->values[i].name : NULL;
}

double qb_strategy_value(const qb_strategy_t *s, int i) {
    return i >= 0 && i < s->nvalues ? s->v[s->values[i].ta][s->values[i].k] : NAN;
}

/* ---- state -------------------------------------------------------------- */

size_t qb_strategy_save(const qb_strategy_t *s, char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    /* last_ts as a string: it does not fit a JSON (double) number exactly. */
    bufcat(buf, cap, &len, "{\"kind\":\"%s\",\"bars\":%" PRId64 ",\"last_ts\":\"%" PRId64
                           "\",\"position\":%d",
           s->kind->name, s->bars, s->last_ts, s->position);
    for (int i = 0; i < s->kind->nstate; i++) {
        const qb_strategy_field_t *f = &s->kind->state[i];
        bufcat(buf, cap, &len, ",\"%s\":%d", f->name,
               *(const int *)(const void *)((const char *)s->self + f->offset));
    }
    bufcat(buf, cap, &len, "}");
    return len;
}

/* An integer JSON number in [min, max]. */
static int json_int(const cJSON *it, double min, double max, int64_t *out) {
    if (!cJSON_IsNumber(it)) return 0;
    double d = it->valuedouble;
    if (!(d >= min && d <= max) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

qb_err_t qb_strategy_restore(qb_strategy_t *s, const char *json, char *errstr,
                             size_t errstr_size) {
    const qb_strategy_kind_t *k = s->kind;
    cJSON *root = json ? cJSON_ParseWithOpts(json, NULL, 1) : NULL;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "%s: state must be a JSON object", k->name);
    }
    int vals[16];
    int have[16] = {0};
    QB_ASSERT(k->nstate <= 16);
    int64_t position = 0, bars = 0;
    qb_time_t ts = 0;
    int have_pos = 0, have_kind = 0;
    qb_err_t err = QB_OK;
    char got[48];
    for (const cJSON *it = root->child; it && !err; it = it->next) {
        const char *key = it->string;
        json_text(it, got, sizeof got);
        for (const cJSON *o = root->child; o != it && !err; o = o->next)
            if (strcmp(o->string, key) == 0)
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state: duplicate key \"%s\"", k->name, key);
        if (err) break;
        if (strcmp(key, "kind") == 0) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, k->name) != 0)
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state is for kind %s", k->name, got);
            have_kind = 1;
        } else if (strcmp(key, "bars") == 0) {
            if (!json_int(it, 0, 9e15, &bars))
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state.bars: must be an integer >= 0, got %s", k->name, got);
        } else if (strcmp(key, "last_ts") == 0) {
            char *end = NULL;
            long long t = 0;
            if (cJSON_IsString(it) && it->valuestring[0]) t = strtoll(it->valuestring, &end, 10);
            if (!end || *end)
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state.last_ts: must be a string of decimal ns, got %s",
                                 k->name, got);
            ts = (qb_time_t)t;
        } else if (strcmp(key, "position") == 0) {
            if (!json_int(it, -1, 1, &position))
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state.position: must be -1, 0 or 1, got %s", k->name, got);
            have_pos = 1;
        } else {
            int found = 0;
            for (int i = 0; i < k->nstate && !found; i++) {
                const qb_strategy_field_t *f = &k->state[i];
                if (strcmp(f->name, key) != 0) continue;
                int64_t x = 0;
                found = 1;
                if (!json_int(it, f->min, f->max, &x))
                    err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                     "%s: state.%s: must be an integer in [%d, %d], got %s",
                                     k->name, key, f->min, f->max, got);
                vals[i] = (int)x;
                have[i] = 1;
            }
            if (!found)
                err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                 "%s: state: unknown key \"%.40s\"", k->name, key);
        }
    }
    cJSON_Delete(root);
    if (err) return err;
    if (!have_kind || !have_pos)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s: state: missing \"%s\"",
                          k->name, have_kind ? "position" : "kind");
    if (s->bars > 0 && (bars == 0 || ts != s->last_ts))
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "%s: state was saved after bar ts %" PRId64 " (%" PRId64
                          " bars) but the last bar fed is ts %" PRId64,
                          k->name, ts, bars, s->last_ts);
    s->position = (int)position;
    for (int i = 0; i < k->nstate; i++)
        if (have[i]) *(int *)(void *)((char *)s->self + k->state[i].offset) = vals[i];
    return QB_OK;
}

/* ---- signal ids --------------------------------------------------------- */

qb_err_t qb_strategy_signal_id(const char *strategy_id, const char *account,
                               const char *symbol, const char *timeframe, qb_time_t bar_ts,
                               char out[QB_UUID_STRLEN]) {
    out[0] = 0;
    if (!account) account = "";
    if (!strategy_id || !*strategy_id || !symbol || !timeframe || strchr(strategy_id, '|') ||
        strchr(account, '|') || strchr(symbol, '|') || strchr(timeframe, '|'))
        return QB_ERR_INVALID;
    char small[512];
    int n = snprintf(NULL, 0, "%s|%s|%s|%s|%" PRId64, strategy_id, account, symbol, timeframe,
                     bar_ts);
    if (n < 0) return QB_ERR_INVALID;
    char *name = (size_t)n < sizeof small ? small : malloc((size_t)n + 1);
    if (!name) return QB_ERR_NOMEM;
    snprintf(name, (size_t)n + 1, "%s|%s|%s|%s|%" PRId64, strategy_id, account, symbol,
             timeframe, bar_ts);
    qb_uuid_v5(QB_STRATEGY_SIGNAL_NS, name, (size_t)n, out);
    if (name != small) free(name);
    return QB_OK;
}
