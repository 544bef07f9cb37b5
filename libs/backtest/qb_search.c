/* qb_search.c — the parameter space (grid and seeded sample), applying a
 * combination to a config, one evaluation, the ranking order, the exact
 * JSON of a score, and the thread pool the search and walk-forward runs
 * use. Definitions are in qb_search.h.
 *
 * Memory: a space owns its value strings (one malloc per value) and the
 * sampled grid indexes; a score is a plain value. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "backtest/qb_bt_int.h"
#include "backtest/qb_mc.h"
#include "backtest/qb_search.h"

typedef struct qb_search_param_s {
    char name[QB_SEARCH_NAME_MAX + 1];
    int is_set;     /* "set.NAME": a qb_bt_config_set setting */
    size_t nv;
    char **values;  /* trimmed text */
    int numeric;    /* every value is a number */
} qb_search_param_t;

struct qb_search_s {
    size_t np;
    qb_search_param_t p[QB_SEARCH_MAX_PARAMS];
    uint64_t grid;
    int sampled;
    uint64_t nsample, seed;
    uint64_t *sample; /* grid indexes in draw order; NULL = the whole grid */
};

qb_err_t qb_search_new(qb_search_t **out) {
    qb_search_t *s = calloc(1, sizeof *s);
    if (!s) return QB_ERR_NOMEM;
    s->grid = 1;
    *out = s;
    return QB_OK;
}

void qb_search_destroy(qb_search_t *s) {
    if (!s) return;
    for (size_t i = 0; i < s->np; i++) {
        for (size_t v = 0; v < s->p[i].nv; v++) free(s->p[i].values[v]);
        free(s->p[i].values);
    }
    free(s->sample);
    free(s);
}

qb_err_t qb_search_clone(const qb_search_t *s, qb_search_t **out) {
    qb_search_t *c = calloc(1, sizeof *c);
    if (!c) return QB_ERR_NOMEM;
    *c = *s;
    c->sample = NULL;
    for (size_t i = 0; i < c->np; i++) c->p[i].values = NULL;
    for (size_t i = 0; i < s->np; i++) {
        c->p[i].values = calloc(s->p[i].nv ? s->p[i].nv : 1, sizeof(char *));
        if (!c->p[i].values) goto nomem;
        for (size_t v = 0; v < s->p[i].nv; v++)
            if (!(c->p[i].values[v] = strdup(s->p[i].values[v]))) goto nomem;
    }
    if (s->sample) {
        c->sample = malloc(s->nsample * sizeof *c->sample);
        if (!c->sample) goto nomem;
        memcpy(c->sample, s->sample, s->nsample * sizeof *c->sample);
    }
    *out = c;
    return QB_OK;
nomem:
    for (size_t i = 0; i < c->np; i++) {
        if (!c->p[i].values) continue;
        for (size_t v = 0; v < c->p[i].nv; v++) free(c->p[i].values[v]);
        free(c->p[i].values);
    }
    free(c);
    return QB_ERR_NOMEM;
}

/* Copy s into dst[cap], cut to fit (messages of a score are a summary). */
static void qb_search_copy(char *dst, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* ---- adding parameters -------------------------------------------------------------------- */

static void qb_search_trim(const char **b, const char **e) {
    while (*b < *e && isspace((unsigned char)**b)) (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1])) (*e)--;
}

static int qb_search_is_number(const char *v) {
    char *end;
    if (!*v) return 0;
    double x = strtod(v, &end);
    (void)x;
    return *end == 0 && !isspace((unsigned char)v[0]);
}

static qb_err_t qb_search_push(qb_search_param_t *p, const char *b, size_t n, size_t *cap) {
    if (p->nv == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **nv = realloc(p->values, nc * sizeof *nv);
        if (!nv) return QB_ERR_NOMEM;
        p->values = nv;
        *cap = nc;
    }
    char *s = malloc(n + 1);
    if (!s) return QB_ERR_NOMEM;
    memcpy(s, b, n);
    s[n] = 0;
    p->values[p->nv++] = s;
    return QB_OK;
}

static void qb_search_param_free(qb_search_param_t *p) {
    for (size_t v = 0; v < p->nv; v++) free(p->values[v]);
    free(p->values);
    p->values = NULL;
    p->nv = 0;
}

/* "lo:hi:step" with three decimals: 1 and the values; 0 = not a range. */
static int qb_search_range(const char *v, qb_dec_t *lo, qb_dec_t *hi, qb_dec_t *st) {
    const char *a = strchr(v, ':');
    if (!a) return 0;
    const char *b = strchr(a + 1, ':');
    if (!b || strchr(b + 1, ':')) return 0;
    const char *p0 = v, *e0 = a, *p1 = a + 1, *e1 = b, *p2 = b + 1, *e2 = v + strlen(v);
    qb_search_trim(&p0, &e0);
    qb_search_trim(&p1, &e1);
    qb_search_trim(&p2, &e2);
    if (qb_dec_parse(p0, (size_t)(e0 - p0), lo) != QB_OK) return 0;
    if (qb_dec_parse(p1, (size_t)(e1 - p1), hi) != QB_OK) return 0;
    if (qb_dec_parse(p2, (size_t)(e2 - p2), st) != QB_OK) return 0;
    return 1;
}

qb_err_t qb_search_add(qb_search_t *s, const char *name, const char *values, char *errstr,
                       size_t errstr_size) {
    if (s->sampled)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "search: parameters cannot be added after sampling");
    if (!name || !*name || strlen(name) > QB_SEARCH_NAME_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "search: a parameter name must be 1..%d characters",
                          QB_SEARCH_NAME_MAX);
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "search: parameter name \"%s\": letters, digits, '_' and '.' only",
                              name);
    if (s->np == QB_SEARCH_MAX_PARAMS)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "search: at most %d parameters", QB_SEARCH_MAX_PARAMS);
    for (size_t i = 0; i < s->np; i++)
        if (!strcmp(s->p[i].name, name))
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "search: parameter %s given twice", name);
    int is_set = strncmp(name, "set.", 4) == 0;
    if (is_set) {
        qb_bt_config_t probe;
        qb_bt_config_default(&probe);
        char m[256];
        /* an unknown setting name is refused now; values are checked per combination */
        if (qb_bt_config_set(&probe, name + 4, "", m, sizeof m) == QB_ERR_NOT_FOUND)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "search: %s: unknown backtest setting \"%s\"", name, name + 4);
    } else if (strchr(name, '.')) {
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "search: parameter %s: a strategy parameter has no '.', a setting "
                          "is set.NAME",
                          name);
    }
    if (!values) values = "";
    qb_search_param_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.is_set = is_set;
    size_t cap = 0;
    qb_err_t e = QB_OK;
    qb_dec_t lo, hi, st;
    if (qb_search_range(values, &lo, &hi, &st)) {
        if (st <= 0 || hi < lo) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "search: %s: range '%s' needs lo <= hi and a step > 0", name, values);
            goto fail;
        }
        for (qb_dec_wide_t x = lo; x <= hi; x += st) {
            if (p.nv == QB_SEARCH_MAX_VALUES) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                               "search: %s: more than %d values", name, QB_SEARCH_MAX_VALUES);
                goto fail;
            }
            char buf[QB_DEC_STRLEN];
            size_t n = qb_dec_format((qb_dec_t)x, buf, sizeof buf);
            if ((e = qb_search_push(&p, buf, n, &cap)) != QB_OK) goto nomem;
        }
    } else {
        const char *c = values;
        for (;;) {
            const char *end = strchr(c, ',');
            if (!end) end = c + strlen(c);
            const char *b = c, *ee = end;
            qb_search_trim(&b, &ee);
            if (b == ee) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                               "search: %s: empty value in '%s'", name, values);
                goto fail;
            }
            if (p.nv == QB_SEARCH_MAX_VALUES) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                               "search: %s: more than %d values", name, QB_SEARCH_MAX_VALUES);
                goto fail;
            }
            if ((e = qb_search_push(&p, b, (size_t)(ee - b), &cap)) != QB_OK) goto nomem;
            if (!*end) break;
            c = end + 1;
        }
    }
    p.numeric = 1;
    for (size_t v = 0; v < p.nv; v++)
        if (!qb_search_is_number(p.values[v])) p.numeric = 0;
    if (s->grid > QB_SEARCH_MAX_COMBOS / p.nv) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "search: %s: the grid would have more than %llu combinations", name,
                       (unsigned long long)QB_SEARCH_MAX_COMBOS);
        goto fail;
    }
    s->grid *= p.nv;
    s->p[s->np++] = p;
    return QB_OK;
nomem:
    e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
fail:
    qb_search_param_free(&p);
    return e;
}

qb_err_t qb_search_parse(qb_search_t *s, const char *spec, char *errstr, size_t errstr_size) {
    if (!spec) return QB_OK;
    const char *c = spec;
    while (*c) {
        const char *end = strchr(c, ';');
        if (!end) end = c + strlen(c);
        const char *b = c, *e = end;
        qb_search_trim(&b, &e);
        if (b < e) {
            const char *eq = memchr(b, '=', (size_t)(e - b));
            if (!eq || eq == b)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "search: '%.*s' is not name=values", (int)(e - b), b);
            const char *nb = b, *ne = eq;
            qb_search_trim(&nb, &ne);
            char name[QB_SEARCH_NAME_MAX + 2];
            size_t nl = (size_t)(ne - nb);
            if (nl > QB_SEARCH_NAME_MAX) nl = QB_SEARCH_NAME_MAX + 1;
            memcpy(name, nb, nl);
            name[nl] = 0;
            size_t vl = (size_t)(e - eq - 1);
            char *val = malloc(vl + 1);
            if (!val) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
            memcpy(val, eq + 1, vl);
            val[vl] = 0;
            qb_err_t err = qb_search_add(s, name, val, errstr, errstr_size);
            free(val);
            if (err != QB_OK) return err;
        }
        if (!*end) break;
        c = end + 1;
    }
    return QB_OK;
}

/* ---- random sample -------------------------------------------------------------------------- */

/* Open-addressing set of grid indexes (+1, 0 = empty). */
typedef struct qb_search_set_s {
    uint64_t *slot;
    uint64_t mask;
} qb_search_set_t;

static uint64_t qb_search_hash(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* 1 when x was added, 0 when it was there. */
static int qb_search_set_add(qb_search_set_t *h, uint64_t x) {
    uint64_t i = qb_search_hash(x) & h->mask;
    for (;; i = (i + 1) & h->mask) {
        if (h->slot[i] == 0) {
            h->slot[i] = x + 1;
            return 1;
        }
        if (h->slot[i] == x + 1) return 0;
    }
}

qb_err_t qb_search_sample(qb_search_t *s, uint64_t n, uint64_t seed, char *errstr,
                          size_t errstr_size) {
    if (s->sampled)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "search: already sampled");
    if (n < 1 || n > 10000000ULL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "search: random sample size must be 1..10000000");
    if (n >= s->grid) { /* the whole grid, in grid order */
        s->sampled = 1;
        s->seed = seed;
        s->nsample = s->grid;
        return QB_OK;
    }
    uint64_t cap = 1;
    while (cap < 2 * n) cap <<= 1;
    qb_search_set_t h = {calloc(cap, sizeof(uint64_t)), cap - 1};
    uint64_t *out = malloc(n * sizeof *out);
    if (!h.slot || !out) {
        free(h.slot);
        free(out);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
    }
    /* Floyd's algorithm: n distinct values of [0, grid), in draw order. */
    qb_mc_rng_t r;
    qb_mc_rng_seed(&r, seed);
    uint64_t k = 0;
    for (uint64_t j = s->grid - n; j < s->grid; j++) {
        uint64_t t = qb_mc_rng_below(&r, j + 1);
        if (qb_search_set_add(&h, t))
            out[k++] = t;
        else {
            qb_search_set_add(&h, j);
            out[k++] = j;
        }
    }
    free(h.slot);
    s->sample = out;
    s->nsample = n;
    s->seed = seed;
    s->sampled = 1;
    return QB_OK;
}

/* ---- reading ---------------------------------------------------------------------------------- */

size_t qb_search_nparams(const qb_search_t *s) { return s->np; }
const char *qb_search_param_name(const qb_search_t *s, size_t p) {
    return p < s->np ? s->p[p].name : "";
}
size_t qb_search_nvalues(const qb_search_t *s, size_t p) { return p < s->np ? s->p[p].nv : 0; }
const char *qb_search_value(const qb_search_t *s, size_t p, size_t v) {
    return p < s->np && v < s->p[p].nv ? s->p[p].values[v] : "";
}
uint64_t qb_search_grid_size(const qb_search_t *s) { return s->grid; }
uint64_t qb_search_ncombos(const qb_search_t *s) { return s->sampled ? s->nsample : s->grid; }
int qb_search_is_sampled(const qb_search_t *s) { return s->sampled; }
uint64_t qb_search_seed(const qb_search_t *s) { return s->sampled ? s->seed : 0; }

uint64_t qb_search_grid_index(const qb_search_t *s, uint64_t c) {
    if (c >= qb_search_ncombos(s)) return UINT64_MAX;
    return s->sample ? s->sample[c] : c;
}

qb_err_t qb_search_combo(const qb_search_t *s, uint64_t c, uint32_t *idx) {
    uint64_t g = qb_search_grid_index(s, c);
    if (g == UINT64_MAX) return QB_ERR_RANGE;
    for (size_t i = s->np; i-- > 0;) { /* the last parameter is the lowest digit */
        idx[i] = (uint32_t)(g % s->p[i].nv);
        g /= s->p[i].nv;
    }
    return QB_OK;
}

static int qb_search_json_value(const char *v) {
    cJSON *j = cJSON_Parse(v);
    int ok = j != NULL;
    cJSON_Delete(j);
    return ok;
}

size_t qb_search_combo_json(const qb_search_t *s, uint64_t c, char *buf, size_t cap) {
    uint32_t idx[QB_SEARCH_MAX_PARAMS];
    if (cap) buf[0] = 0;
    if (qb_search_combo(s, c, idx) != QB_OK) return 0;
    qb_bt_sb_t sb = {buf, cap, 0};
    qb_bt_sb_printf(&sb, "{");
    for (size_t i = 0; i < s->np; i++) {
        const char *v = s->p[i].values[idx[i]];
        qb_bt_sb_printf(&sb, "%s", i ? "," : "");
        qb_bt_sb_str(&sb, s->p[i].name);
        qb_bt_sb_printf(&sb, ":");
        if (!s->p[i].is_set && qb_search_json_value(v))
            qb_bt_sb_printf(&sb, "%s", v);
        else
            qb_bt_sb_str(&sb, v);
    }
    qb_bt_sb_printf(&sb, "}");
    return sb.len;
}

qb_err_t qb_search_apply(const qb_search_t *s, uint64_t c, const qb_bt_config_t *base,
                         qb_bt_config_t *out, char *errstr, size_t errstr_size) {
    uint32_t idx[QB_SEARCH_MAX_PARAMS];
    if (qb_search_combo(s, c, idx) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "search: combination %llu out of range (%llu)", (unsigned long long)c,
                          (unsigned long long)qb_search_ncombos(s));
    *out = *base;
    cJSON *params = NULL;
    qb_err_t e = QB_OK;
    for (size_t i = 0; i < s->np; i++) {
        const qb_search_param_t *p = &s->p[i];
        const char *v = p->values[idx[i]];
        if (p->is_set) {
            char m[512];
            if (qb_bt_config_set(out, p->name + 4, v, m, sizeof m) != QB_OK) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "%s=%s: %s", p->name, v, m);
                goto done;
            }
            continue;
        }
        if (out->nstrategies < 1) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                           "search: strategy parameter %s but the config has no strategy",
                           p->name);
            goto done;
        }
        if (!params) {
            const char *base_params = out->strategies[0].params;
            params = *base_params ? cJSON_Parse(base_params) : cJSON_CreateObject();
            if (!params || !cJSON_IsObject(params)) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                               "search: the params of strategy %s are not a JSON object",
                               out->strategies[0].kind);
                goto done;
            }
        }
        cJSON *item = cJSON_Parse(v);
        if (!item) item = cJSON_CreateString(v);
        if (!item) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
            goto done;
        }
        if (cJSON_GetObjectItemCaseSensitive(params, p->name))
            cJSON_ReplaceItemInObjectCaseSensitive(params, p->name, item);
        else
            cJSON_AddItemToObject(params, p->name, item);
    }
    if (params) {
        char *txt = cJSON_PrintUnformatted(params);
        if (!txt) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
            goto done;
        }
        if (strlen(txt) > QB_BT_PARAMS_MAX)
            e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                           "search: params of strategy %s longer than %d characters",
                           out->strategies[0].kind, QB_BT_PARAMS_MAX);
        else
            snprintf(out->strategies[0].params, sizeof out->strategies[0].params, "%s", txt);
        cJSON_free(txt);
    }
done:
    cJSON_Delete(params);
    return e;
}

/* ---- objective, scores, ranking ---------------------------------------------------------------- */

void qb_search_objective_default(qb_search_objective_t *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->metric, sizeof o->metric, "sharpe");
    o->higher = 1;
}

qb_err_t qb_search_objective_set(qb_search_objective_t *o, const char *metric,
                                 int64_t min_trades, char *errstr, size_t errstr_size) {
    int h = metric ? qb_bt_metric_higher_is_better(metric) : -1;
    if (h < 0 || strlen(metric) >= sizeof o->metric) {
        char list[1024];
        qb_bt_sb_t sb = {list, sizeof list, 0};
        list[0] = 0;
        const char *const *n = qb_bt_metric_names();
        for (size_t i = 0; n[i]; i++) qb_bt_sb_printf(&sb, "%s%s", i ? ", " : "", n[i]);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "objective: unknown metric \"%s\" (known: %s)", metric ? metric : "",
                          list);
    }
    if (min_trades < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "min_trades: must be >= 0");
    snprintf(o->metric, sizeof o->metric, "%s", metric);
    o->higher = h;
    o->min_trades = min_trades;
    return QB_OK;
}

void qb_search_score_finish(qb_search_score_t *sc, const qb_search_objective_t *o) {
    double v = NAN;
    if (sc->valid && qb_bt_metric_value(&sc->metrics, o->metric, &v) != QB_OK) v = NAN;
    /* the metric itself; the direction is applied when comparing */
    sc->objective = sc->valid ? v : NAN;
    sc->eligible = sc->valid && sc->trades >= o->min_trades && !isnan(v);
}

qb_err_t qb_search_eval(const qb_bt_data_t *data, const qb_bt_config_t *base,
                        const qb_search_t *s, uint64_t c, qb_time_t from, qb_time_t to,
                        const qb_search_objective_t *o, qb_search_score_t *sc, char *errstr,
                        size_t errstr_size) {
    memset(sc, 0, sizeof *sc);
    sc->combo = c;
    sc->objective = NAN;
    qb_bt_config_t *cfg = malloc(sizeof *cfg);
    if (!cfg) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
    char m[QB_SEARCH_ERROR_MAX];
    qb_err_t e = qb_search_apply(s, c, base, cfg, m, sizeof m);
    if (e == QB_ERR_INVALID) {
        qb_search_copy(sc->error, sizeof sc->error, m);
        free(cfg);
        qb_search_score_finish(sc, o);
        return QB_OK;
    }
    if (e != QB_OK) {
        free(cfg);
        return qb_err_set(errstr, errstr_size, e, "%s", m);
    }
    if (from) cfg->from = from;
    if (to) cfg->to = to;
    cfg->benchmark = 0;
    cfg->keep_fills = 0;
    cfg->keep_signals = 0;
    cfg->reasons = 0;
    cfg->progress = NULL;
    cfg->progress_ctx = NULL;
    qb_bt_result_t *r = NULL;
    char rm[512];
    e = qb_bt_run(data, cfg, &r, rm, sizeof rm);
    free(cfg);
    if (e == QB_ERR_INVALID) {
        qb_search_copy(sc->error, sizeof sc->error, rm);
        qb_search_score_finish(sc, o);
        return QB_OK;
    }
    if (e != QB_OK) return qb_err_set(errstr, errstr_size, e, "combination %llu: %s",
                                      (unsigned long long)c, rm);
    sc->valid = 1;
    sc->metrics = *qb_bt_result_metrics(r);
    sc->trades = sc->metrics.trades_closed + sc->metrics.trades_open;
    qb_bt_result_destroy(r);
    qb_search_score_finish(sc, o);
    return QB_OK;
}

/* The ranking order of qb_search.h. */
int qb_search_cmp(const qb_search_objective_t *o, const qb_search_score_t *a,
                  const qb_search_score_t *b) {
    if (a->eligible != b->eligible) return a->eligible ? -1 : 1;
    if (a->eligible) {
        double x = a->objective, y = b->objective;
        if (x != y) { /* never NaN here: eligible excludes it */
            int a_better = o->higher ? x > y : x < y;
            return a_better ? -1 : 1;
        }
    } else if (a->valid != b->valid) {
        return a->valid ? -1 : 1;
    }
    return (a->combo > b->combo) - (a->combo < b->combo);
}

static int qb_search_qcmp(const void *a, const void *b, void *o) {
    return qb_search_cmp(o, a, b);
}

void qb_search_rank(const qb_search_objective_t *o, qb_search_score_t *scores, size_t n) {
    qsort_r(scores, n, sizeof *scores, qb_search_qcmp, (void *)o);
}

/* ---- exact JSON of a score ------------------------------------------------------------------------ */

typedef enum { QS_I64, QS_DBL, QS_DEC, QS_TIME } qb_search_ftype_t;
typedef struct qb_search_field_s {
    const char *name;
    size_t off;
    qb_search_ftype_t type;
} qb_search_field_t;

#define QS_F(n, t) {#n, offsetof(qb_bt_metrics_t, n), t}
static const qb_search_field_t qb_search_mfields[] = {
    QS_F(bars, QS_I64),          QS_F(bars_per_year, QS_DBL),  QS_F(years, QS_DBL),
    QS_F(first_ts, QS_TIME),     QS_F(last_ts, QS_TIME),       QS_F(initial_equity, QS_DEC),
    QS_F(final_equity, QS_DEC),  QS_F(net_profit, QS_DEC),     QS_F(total_return, QS_DBL),
    QS_F(cagr, QS_DBL),          QS_F(mean_return, QS_DBL),    QS_F(stdev_return, QS_DBL),
    QS_F(volatility, QS_DBL),    QS_F(sharpe, QS_DBL),         QS_F(sortino, QS_DBL),
    QS_F(calmar, QS_DBL),        QS_F(max_dd_pct, QS_DBL),     QS_F(max_dd_money, QS_DEC),
    QS_F(max_dd_peak_ts, QS_TIME), QS_F(max_dd_trough_ts, QS_TIME), QS_F(max_dd_bars, QS_I64),
    QS_F(exposure, QS_DBL),      QS_F(avg_gross_exposure, QS_DBL), QS_F(turnover, QS_DBL),
    QS_F(turnover_annual, QS_DBL), QS_F(traded_notional, QS_DEC), QS_F(trades_closed, QS_I64),
    QS_F(trades_open, QS_I64),   QS_F(won, QS_I64),            QS_F(lost, QS_I64),
    QS_F(win_rate, QS_DBL),      QS_F(gross_profit, QS_DEC),   QS_F(gross_loss, QS_DEC),
    QS_F(profit_factor, QS_DBL), QS_F(avg_win, QS_DBL),        QS_F(avg_loss, QS_DBL),
    QS_F(expectancy, QS_DBL),    QS_F(largest_win, QS_DEC),    QS_F(largest_loss, QS_DEC),
    QS_F(avg_trade_bars, QS_DBL), QS_F(open_pnl, QS_DEC),
};
#undef QS_F
#define QS_NFIELDS (sizeof qb_search_mfields / sizeof qb_search_mfields[0])

/* A double that reads back bit for bit: 17 digits; NaN null; infinities as text. */
static void qb_search_sb_exact(qb_bt_sb_t *sb, double v) {
    if (isnan(v))
        qb_bt_sb_printf(sb, "null");
    else if (isinf(v))
        qb_bt_sb_printf(sb, v > 0 ? "\"inf\"" : "\"-inf\"");
    else
        qb_bt_sb_printf(sb, "%.17g", v);
}

static void qb_search_sb_i64s(qb_bt_sb_t *sb, int64_t v) { qb_bt_sb_printf(sb, "\"%lld\"", (long long)v); }

static void qb_search_sb_decs(qb_bt_sb_t *sb, qb_dec_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    qb_bt_sb_printf(sb, "\"%s\"", b);
}

static void qb_search_metrics_json_exact(qb_bt_sb_t *sb, const qb_bt_metrics_t *m);
static qb_err_t qb_search_metrics_parse_exact(const cJSON *o, qb_bt_metrics_t *m, char *errstr,
                                       size_t errstr_size);
static qb_err_t qb_search_json_i64(const cJSON *o, const char *key, int64_t *out, char *errstr,
                            size_t errstr_size);
static qb_err_t qb_search_json_dec(const cJSON *o, const char *key, qb_dec_t *out, char *errstr,
                            size_t errstr_size);
static qb_err_t qb_search_json_dbl(const cJSON *o, const char *key, double *out, char *errstr,
                            size_t errstr_size);

static void qb_search_metrics_json_exact(qb_bt_sb_t *sb, const qb_bt_metrics_t *m) {
    qb_bt_sb_printf(sb, "{");
    for (size_t i = 0; i < QS_NFIELDS; i++) {
        const qb_search_field_t *f = &qb_search_mfields[i];
        const char *p = (const char *)m + f->off;
        qb_bt_sb_printf(sb, "%s\"%s\":", i ? "," : "", f->name);
        switch (f->type) {
        case QS_I64: qb_bt_sb_printf(sb, "%lld", (long long)*(const int64_t *)p); break;
        case QS_TIME: qb_search_sb_i64s(sb, *(const qb_time_t *)p); break;
        case QS_DEC: qb_search_sb_decs(sb, *(const qb_dec_t *)p); break;
        case QS_DBL: qb_search_sb_exact(sb, *(const double *)p); break;
        }
    }
    qb_bt_sb_printf(sb, "}");
}

/* An integer: a JSON number (exact below 2^53) or a string of digits. */
static qb_err_t qb_search_json_i64(const cJSON *o, const char *key, int64_t *out, char *errstr,
                            size_t errstr_size) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(j)) {
        char *end;
        long long v = strtoll(j->valuestring, &end, 10);
        if (*j->valuestring && !*end) {
            *out = v;
            return QB_OK;
        }
    } else if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) &&
               fabs(j->valuedouble) < 9007199254740992.0) {
        *out = (int64_t)j->valuedouble;
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: missing or not an integer", key);
}

static qb_err_t qb_search_json_dec(const cJSON *o, const char *key, qb_dec_t *out, char *errstr,
                            size_t errstr_size) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(j) &&
        qb_dec_parse(j->valuestring, strlen(j->valuestring), out) == QB_OK)
        return QB_OK;
    return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: missing or not a decimal string",
                      key);
}

static qb_err_t qb_search_json_dbl(const cJSON *o, const char *key, double *out, char *errstr,
                            size_t errstr_size) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(j)) {
        *out = j->valuedouble;
        return QB_OK;
    }
    if (cJSON_IsNull(j)) {
        *out = NAN;
        return QB_OK;
    }
    if (cJSON_IsString(j) && !strcmp(j->valuestring, "inf")) {
        *out = INFINITY;
        return QB_OK;
    }
    if (cJSON_IsString(j) && !strcmp(j->valuestring, "-inf")) {
        *out = -INFINITY;
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "%s: missing or not a number", key);
}

static qb_err_t qb_search_metrics_parse_exact(const cJSON *o, qb_bt_metrics_t *m, char *errstr,
                                       size_t errstr_size) {
    if (!cJSON_IsObject(o))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "metrics: not an object");
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < QS_NFIELDS; i++) {
        const qb_search_field_t *f = &qb_search_mfields[i];
        char *p = (char *)m + f->off;
        qb_err_t e;
        switch (f->type) {
        case QS_I64:
        case QS_TIME: e = qb_search_json_i64(o, f->name, (int64_t *)p, errstr, errstr_size); break;
        case QS_DEC: e = qb_search_json_dec(o, f->name, (qb_dec_t *)p, errstr, errstr_size); break;
        default: e = qb_search_json_dbl(o, f->name, (double *)p, errstr, errstr_size); break;
        }
        if (e != QB_OK) return e;
    }
    return QB_OK;
}

size_t qb_search_metrics_json(const qb_bt_metrics_t *m, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_search_metrics_json_exact(&sb, m);
    return sb.len;
}

qb_err_t qb_search_metrics_parse(const char *json, size_t len, qb_bt_metrics_t *out,
                                 char *errstr, size_t errstr_size) {
    cJSON *o = cJSON_ParseWithLength(json, len);
    qb_bt_metrics_t m;
    qb_err_t e = qb_search_metrics_parse_exact(o, &m, errstr, errstr_size);
    cJSON_Delete(o);
    if (e == QB_OK) *out = m;
    return e;
}

qb_err_t qb_search_metrics_from_cjson(const struct cJSON *obj, qb_bt_metrics_t *out,
                                      char *errstr, size_t errstr_size) {
    qb_bt_metrics_t m;
    qb_err_t e = qb_search_metrics_parse_exact(obj, &m, errstr, errstr_size);
    if (e == QB_OK) *out = m;
    return e;
}

size_t qb_search_score_json(const qb_search_score_t *sc, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_bt_sb_printf(&sb, "{\"combo\":%llu,\"valid\":%s,\"eligible\":%s,\"error\":",
                    (unsigned long long)sc->combo, sc->valid ? "true" : "false",
                    sc->eligible ? "true" : "false");
    qb_bt_sb_str(&sb, sc->error);
    qb_bt_sb_printf(&sb, ",\"trades\":%lld,\"objective\":", (long long)sc->trades);
    qb_search_sb_exact(&sb, sc->objective);
    qb_bt_sb_printf(&sb, ",\"metrics\":");
    qb_search_metrics_json_exact(&sb, &sc->metrics);
    qb_bt_sb_printf(&sb, "}");
    return sb.len;
}

qb_err_t qb_search_score_parse(const char *json, size_t len, qb_search_score_t *out,
                               char *errstr, size_t errstr_size) {
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "score: not a JSON object");
    }
    qb_search_score_t sc;
    memset(&sc, 0, sizeof sc);
    qb_err_t e;
    int64_t combo = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "valid");
    const cJSON *el = cJSON_GetObjectItemCaseSensitive(o, "eligible");
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(o, "error");
    if ((e = qb_search_json_i64(o, "combo", &combo, errstr, errstr_size)) != QB_OK) goto out;
    if (combo < 0) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "combo: negative");
        goto out;
    }
    sc.combo = (uint64_t)combo;
    if (!cJSON_IsBool(v) || !cJSON_IsBool(el) || !cJSON_IsString(er)) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "valid/eligible/error: missing");
        goto out;
    }
    sc.valid = cJSON_IsTrue(v);
    sc.eligible = cJSON_IsTrue(el);
    qb_search_copy(sc.error, sizeof sc.error, er->valuestring);
    if ((e = qb_search_json_i64(o, "trades", &sc.trades, errstr, errstr_size)) != QB_OK) goto out;
    if ((e = qb_search_json_dbl(o, "objective", &sc.objective, errstr, errstr_size)) != QB_OK)
        goto out;
    e = qb_search_metrics_parse_exact(cJSON_GetObjectItemCaseSensitive(o, "metrics"),
                                      &sc.metrics, errstr, errstr_size);
    if (e == QB_OK) *out = sc;
out:
    cJSON_Delete(o);
    return e;
}

/* ---- thread pool ------------------------------------------------------------------------------------- */

typedef struct qb_search_pool_s {
    uint64_t ntasks;
    qb_search_task_fn task;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next, done;
    int running; /* workers still running */
    int stop;
    qb_err_t err;
    uint64_t err_task;
    char errmsg[512];
} qb_search_pool_t;

/* One task; 0 when there was none left. */
static int qb_search_pool_one(qb_search_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->next >= p->ntasks) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    uint64_t i = p->next++;
    pthread_mutex_unlock(&p->mu);
    char m[512] = "";
    qb_err_t e = p->task(i, p->ctx, m, sizeof m);
    pthread_mutex_lock(&p->mu);
    p->done++;
    if (e != QB_OK) {
        p->stop = 1;
        if (p->err == QB_OK || i < p->err_task) {
            p->err = e;
            p->err_task = i;
            snprintf(p->errmsg, sizeof p->errmsg, "%s", m);
        }
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

static void *qb_search_pool_worker(void *arg) {
    qb_search_pool_t *p = arg;
    while (qb_search_pool_one(p)) {
    }
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

qb_err_t qb_search_parallel(uint64_t ntasks, int threads, qb_search_task_fn task, void *ctx,
                            qb_search_progress_fn progress, void *progress_ctx,
                            char *errstr, size_t errstr_size) {
    qb_search_pool_t p;
    memset(&p, 0, sizeof p);
    p.ntasks = ntasks;
    p.task = task;
    p.ctx = ctx;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int canceled = 0;
    if (threads > 256) threads = 256;
    pthread_t th[256];
    int started = 0;
    if (threads > 1) {
        pthread_mutex_lock(&p.mu);
        p.running = threads;
        pthread_mutex_unlock(&p.mu);
        for (int t = 0; t < threads; t++)
            if (pthread_create(&th[started], NULL, qb_search_pool_worker, &p) == 0) started++;
        pthread_mutex_lock(&p.mu);
        p.running -= threads - started;
        pthread_mutex_unlock(&p.mu);
    }
    if (started == 0) { /* this thread */
        while (qb_search_pool_one(&p)) {
            if (progress && progress(p.done, ntasks, progress_ctx)) {
                canceled = 1;
                break;
            }
        }
    } else {
        pthread_mutex_lock(&p.mu);
        while (p.running > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p.cv, &p.mu, &ts);
            if (progress && !canceled) {
                uint64_t d = p.done;
                pthread_mutex_unlock(&p.mu);
                int c = progress(d, ntasks, progress_ctx);
                pthread_mutex_lock(&p.mu);
                if (c) {
                    canceled = 1;
                    p.stop = 1;
                }
            }
        }
        pthread_mutex_unlock(&p.mu);
        for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
        if (progress && !canceled && p.err == QB_OK) progress(p.done, ntasks, progress_ctx);
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    if (p.err != QB_OK) return qb_err_set(errstr, errstr_size, p.err, "%s", p.errmsg);
    if (canceled) return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "canceled");
    return QB_OK;
}

/* ---- search on one period ------------------------------------------------------------------------------ */

typedef struct qb_search_run_s {
    const qb_bt_data_t *data;
    const qb_bt_config_t *base;
    const qb_search_t *s;
    const qb_search_objective_t *o;
    qb_search_score_t *scores;
} qb_search_run_t;

static qb_err_t qb_search_run_task(uint64_t i, void *ctx, char *errstr, size_t errstr_size) {
    qb_search_run_t *r = ctx;
    return qb_search_eval(r->data, r->base, r->s, i, 0, 0, r->o, &r->scores[i], errstr,
                          errstr_size);
}

qb_err_t qb_search_run(const qb_bt_data_t *data, const qb_bt_config_t *base,
                       const qb_search_t *s, const qb_search_objective_t *o, int threads,
                       qb_search_progress_fn progress, void *progress_ctx,
                       qb_search_score_t **out, size_t *n, char *errstr, size_t errstr_size) {
    uint64_t nc = qb_search_ncombos(s);
    qb_err_t e = qb_bt_config_validate(base, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_search_score_t *sc = calloc(nc, sizeof *sc);
    if (!sc) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "search: out of memory");
    qb_search_run_t r = {data, base, s, o, sc};
    e = qb_search_parallel(nc, threads, qb_search_run_task, &r, progress, progress_ctx, errstr,
                           errstr_size);
    if (e != QB_OK) {
        free(sc);
        return e;
    }
    qb_search_rank(o, sc, nc);
    *out = sc;
    *n = nc;
    return QB_OK;
}
