/* qb_wf.c — walk-forward: the spec, the plan (window layout), the two unit
 * evaluations, the order-independent aggregator, the stitched result and
 * the local multi-threaded run. Conventions are in qb_wf.h.
 *
 * Who owns what: a plan owns a copy of the config, a clone of the space,
 * the region's step times and the symbol names. The aggregator points at
 * its plan and owns one best score per window, a bitmap of IS results
 * seen, and a copy of each window's OOS result. A result owns everything
 * it reports (a clone of the space too, for the parameter values). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backtest/qb_bt_int.h"
#include "backtest/qb_wf.h"

/* ======================================================================== */
/* Spec                                                                      */
/* ======================================================================== */

void qb_wf_spec_default(qb_wf_spec_t *sp) {
    memset(sp, 0, sizeof *sp);
    sp->mode = QB_WF_ROLLING;
    sp->partial_last = 1;
    qb_search_objective_default(&sp->objective);
}

/* 0 unset, 1 steps, 2 time. */
static int qb_wf_len_kind(const qb_wf_len_t *l) {
    if (l->months || l->ns) return 2;
    return l->steps ? 1 : 0;
}

static qb_err_t qb_wf_len_parse(const char *field, const char *v, qb_wf_len_t *out,
                                char *errstr, size_t errstr_size) {
    char *end;
    long long n = strtoll(v, &end, 10);
    qb_wf_len_t l = {0, 0, 0};
    if (end == v || n <= 0) goto bad;
    if (!*end) {
        l.steps = n;
    } else if (!strcmp(end, "y")) {
        if (n > 10000) goto bad;
        l.months = (int32_t)(n * 12);
    } else if (!strcmp(end, "mo")) {
        if (n > 120000) goto bad;
        l.months = (int32_t)n;
    } else {
        int64_t unit;
        if (!strcmp(end, "w")) unit = 7 * QB_NS_PER_DAY;
        else if (!strcmp(end, "d")) unit = QB_NS_PER_DAY;
        else if (!strcmp(end, "h")) unit = QB_NS_PER_HOUR;
        else if (!strcmp(end, "m")) unit = QB_NS_PER_MIN;
        else if (!strcmp(end, "s")) unit = QB_NS_PER_SEC;
        else goto bad;
        if (n > INT64_MAX / unit / 4) goto bad;
        l.ns = n * unit;
    }
    *out = l;
    return QB_OK;
bad:
    return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                      "%s: '%s' is not a length: N time steps (250) or a duration "
                      "(2y, 6mo, 90d, 4w, 12h, 30m, 60s)",
                      field, v);
}

qb_err_t qb_wf_spec_set(qb_wf_spec_t *sp, const char *name, const char *value,
                        char *errstr, size_t errstr_size) {
    const char *v = value ? value : "";
    if (!strcmp(name, "mode")) {
        if (!strcmp(v, "rolling")) sp->mode = QB_WF_ROLLING;
        else if (!strcmp(v, "anchored")) sp->mode = QB_WF_ANCHORED;
        else
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "mode: '%s' is not rolling or anchored", v);
        return QB_OK;
    }
    if (!strcmp(name, "is") || !strcmp(name, "oos") || !strcmp(name, "step")) {
        qb_wf_len_t l;
        qb_err_t e = qb_wf_len_parse(name, v, &l, errstr, errstr_size);
        if (e != QB_OK) return e;
        qb_wf_len_t *dst = name[0] == 'i' ? &sp->is_len : name[0] == 'o' ? &sp->oos_len : &sp->step;
        const qb_wf_len_t *others[3] = {&sp->is_len, &sp->oos_len, &sp->step};
        for (int i = 0; i < 3; i++) {
            int k = qb_wf_len_kind(others[i]);
            if (others[i] != dst && k && k != qb_wf_len_kind(&l))
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "%s: '%s' mixes units: every length is in time steps or "
                                  "every one a duration",
                                  name, v);
        }
        *dst = l;
        sp->by_time = qb_wf_len_kind(&l) == 2;
        return QB_OK;
    }
    if (!strcmp(name, "partial_last")) {
        if (!strcmp(v, "true") || !strcmp(v, "1")) sp->partial_last = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "0")) sp->partial_last = 0;
        else
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "partial_last: '%s' is not true or false", v);
        return QB_OK;
    }
    if (!strcmp(name, "objective"))
        return qb_search_objective_set(&sp->objective, v, sp->objective.min_trades, errstr,
                                       errstr_size);
    if (!strcmp(name, "min_trades")) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || n < 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "min_trades: '%s' is not an integer >= 0", v);
        sp->objective.min_trades = n;
        return QB_OK;
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "unknown walk-forward setting \"%s\"",
                      name);
}

/* A length's size in ns for comparisons of time lengths (a month = 1/12 of
 * 365.2425 days). */
static double qb_wf_len_approx(const qb_wf_len_t *l) {
    return (double)l->months * (365.2425 / 12 * 86400e9) + (double)l->ns;
}

qb_err_t qb_wf_spec_validate(const qb_wf_spec_t *sp, char *errstr, size_t errstr_size) {
#define BAD(...) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, __VA_ARGS__)
    if (sp->mode != QB_WF_ROLLING && sp->mode != QB_WF_ANCHORED) BAD("mode: unknown value");
    int ki = qb_wf_len_kind(&sp->is_len), ko = qb_wf_len_kind(&sp->oos_len),
        ks = qb_wf_len_kind(&sp->step);
    if (!ki) BAD("is: the in-sample length is required (> 0)");
    if (!ko) BAD("oos: the out-of-sample length is required (> 0)");
    if (ki != ko || (ks && ks != ki)) BAD("is/oos/step: lengths mix time steps and durations");
    int by_time = ki == 2;
    const qb_wf_len_t *all[3] = {&sp->is_len, &sp->oos_len, &sp->step};
    for (int i = 0; i < 3; i++) {
        if (all[i]->steps < 0 || all[i]->months < 0 || all[i]->ns < 0)
            BAD("is/oos/step: lengths must be > 0");
        if (by_time && all[i]->steps) BAD("is/oos/step: lengths mix time steps and durations");
    }
    if (ks) {
        if (!by_time && sp->step.steps < sp->oos_len.steps)
            BAD("step: must be >= oos (overlapping out-of-sample windows cannot be stitched)");
        if (by_time && qb_wf_len_approx(&sp->step) < qb_wf_len_approx(&sp->oos_len))
            BAD("step: must be >= oos (overlapping out-of-sample windows cannot be stitched)");
    }
    if (qb_bt_metric_higher_is_better(sp->objective.metric) < 0)
        BAD("objective: unknown metric \"%s\"", sp->objective.metric);
    if (sp->objective.min_trades < 0) BAD("min_trades: must be >= 0");
#undef BAD
    return QB_OK;
}

static void qb_wf_len_text(qb_bt_sb_t *sb, const qb_wf_len_t *l) {
    if (qb_wf_len_kind(l) != 2) {
        qb_bt_sb_printf(sb, "%lld", (long long)l->steps);
        return;
    }
    qb_bt_sb_printf(sb, "\"");
    if (l->months) {
        if (l->months % 12 == 0) qb_bt_sb_printf(sb, "%dy", (int)(l->months / 12));
        else qb_bt_sb_printf(sb, "%dmo", (int)l->months);
        if (l->ns) qb_bt_sb_printf(sb, "+");
    }
    if (l->ns) {
        static const struct {
            int64_t ns;
            const char *u;
        } units[] = {{7 * QB_NS_PER_DAY, "w"}, {QB_NS_PER_DAY, "d"}, {QB_NS_PER_HOUR, "h"},
                     {QB_NS_PER_MIN, "m"},     {QB_NS_PER_SEC, "s"}, {1, "ns"}};
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (l->ns % units[i].ns == 0) {
                qb_bt_sb_printf(sb, "%lld%s", (long long)(l->ns / units[i].ns), units[i].u);
                break;
            }
    }
    qb_bt_sb_printf(sb, "\"");
}

static void qb_wf_spec_sb(qb_bt_sb_t *sb, const qb_wf_spec_t *sp) {
    int by_time = qb_wf_len_kind(&sp->is_len) == 2;
    qb_bt_sb_printf(sb, "{\"mode\":\"%s\",\"unit\":\"%s\",\"is\":",
                    sp->mode == QB_WF_ANCHORED ? "anchored" : "rolling", by_time ? "time" : "steps");
    qb_wf_len_text(sb, &sp->is_len);
    qb_bt_sb_printf(sb, ",\"oos\":");
    qb_wf_len_text(sb, &sp->oos_len);
    qb_bt_sb_printf(sb, ",\"step\":");
    qb_wf_len_text(sb, qb_wf_len_kind(&sp->step) ? &sp->step : &sp->oos_len);
    qb_bt_sb_printf(sb, ",\"partial_last\":%s,\"objective\":",
                    sp->partial_last ? "true" : "false");
    qb_bt_sb_str(sb, sp->objective.metric);
    qb_bt_sb_printf(sb, ",\"higher_is_better\":%s,\"min_trades\":%lld}",
                    sp->objective.higher ? "true" : "false", (long long)sp->objective.min_trades);
}

size_t qb_wf_spec_json(const qb_wf_spec_t *sp, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_wf_spec_sb(&sb, sp);
    return sb.len;
}

/* ======================================================================== */
/* Plan                                                                      */
/* ======================================================================== */

struct qb_wf_plan_s {
    qb_bt_config_t cfg;
    qb_search_t *space;
    qb_wf_spec_t spec;
    double bpy;
    /* the region */
    size_t n;
    qb_time_t *steps;
    size_t lo, data_nsteps; /* its place in the data's steps (eval checks) */
    /* windows */
    size_t nw;
    qb_wf_window_t *w;
    /* symbols */
    size_t nsym;
    qb_symbol_t *sym;
    uint64_t fp;
};

/* t + months (calendar, day clamped to the month's end) + ns. */
static qb_time_t qb_wf_time_add(qb_time_t t, int64_t months, int64_t ns) {
    if (months) {
        int64_t days = t / QB_NS_PER_DAY;
        if (t % QB_NS_PER_DAY < 0) days--;
        int64_t tod = t - days * QB_NS_PER_DAY;
        int y, m, d;
        qb_time_civil_from_days(days, &y, &m, &d);
        int64_t total = (int64_t)y * 12 + (m - 1) + months;
        int64_t y2 = total / 12, m2 = total % 12;
        if (m2 < 0) {
            m2 += 12;
            y2--;
        }
        int dim = qb_time_days_in_month((int)y2, (int)m2 + 1);
        if (d > dim) d = dim;
        t = qb_time_days_from_civil((int)y2, (int)m2 + 1, d) * QB_NS_PER_DAY + tod;
    }
    return t + ns;
}

/* First region step with ts >= t. */
static size_t qb_wf_lower(const qb_time_t *s, size_t n, qb_time_t t) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (s[m] < t) lo = m + 1;
        else hi = m;
    }
    return lo;
}

static qb_err_t qb_wf_push(qb_wf_plan_t *p, size_t *cap, size_t isb, size_t ise, size_t oose,
                           int partial) {
    if (p->nw == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        qb_wf_window_t *nw = realloc(p->w, nc * sizeof *nw);
        if (!nw) return QB_ERR_NOMEM;
        p->w = nw;
        *cap = nc;
    }
    qb_wf_window_t *w = &p->w[p->nw];
    w->index = (uint32_t)p->nw;
    w->is_begin = isb;
    w->is_end = ise;
    w->oos_begin = ise;
    w->oos_end = oose;
    w->is_from = p->steps[isb];
    w->is_to = w->oos_from = p->steps[ise];
    w->oos_to = oose < p->n ? p->steps[oose] : p->steps[p->n - 1] + 1;
    w->partial = partial;
    p->nw++;
    return QB_OK;
}

static qb_err_t qb_wf_layout(qb_wf_plan_t *p, char *errstr, size_t errstr_size) {
    const qb_wf_spec_t *sp = &p->spec;
    size_t cap = 0;
    size_t N = p->n;
    int anchored = sp->mode == QB_WF_ANCHORED;
    if (qb_wf_len_kind(&sp->is_len) == 1) {
        uint64_t is = (uint64_t)sp->is_len.steps, oos = (uint64_t)sp->oos_len.steps;
        uint64_t S = sp->step.steps ? (uint64_t)sp->step.steps : oos;
        for (uint64_t k = 0;; k++) {
            uint64_t start = k * S;
            if (start > N || is > N) break;
            uint64_t isb = anchored ? 0 : start, ise = start + is, oose = ise + oos;
            int partial = 0;
            if (ise >= N) break;
            if (oose > N) {
                if (!sp->partial_last) break;
                oose = N;
                partial = 1;
            }
            if (qb_wf_push(p, &cap, (size_t)isb, (size_t)ise, (size_t)oose, partial) != QB_OK)
                return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        }
    } else {
        qb_time_t t0 = p->steps[0], tend = p->steps[N - 1] + 1;
        const qb_wf_len_t *S = qb_wf_len_kind(&sp->step) ? &sp->step : &sp->oos_len;
        for (int64_t k = 0; k < 10000000; k++) {
            qb_time_t ts = qb_wf_time_add(t0, k * S->months, k * S->ns);
            qb_time_t tisb = anchored ? t0 : ts;
            qb_time_t tise = qb_wf_time_add(t0, k * S->months + sp->is_len.months,
                                            k * S->ns + sp->is_len.ns);
            qb_time_t toose = qb_wf_time_add(t0, k * S->months + sp->is_len.months +
                                                     sp->oos_len.months,
                                             k * S->ns + sp->is_len.ns + sp->oos_len.ns);
            if (tise >= tend) break;
            int partial = 0;
            if (toose > tend) {
                if (!sp->partial_last) break;
                partial = 1;
            }
            size_t isb = qb_wf_lower(p->steps, N, tisb), ise = qb_wf_lower(p->steps, N, tise),
                   oose = qb_wf_lower(p->steps, N, toose);
            if (ise <= isb || oose <= ise) continue; /* a gap: no IS or no OOS step */
            if (p->nw && ise < p->w[p->nw - 1].oos_end)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "walkforward: out-of-sample windows overlap (step < oos)");
            if (qb_wf_push(p, &cap, isb, ise, oose, partial) != QB_OK)
                return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        }
    }
    if (p->nw == 0) {
        char need[64];
        qb_bt_sb_t sb = {need, sizeof need, 0};
        need[0] = 0;
        if (qb_wf_len_kind(&sp->is_len) == 1)
            qb_bt_sb_printf(&sb, "%lld steps", (long long)(sp->is_len.steps + 1));
        else
            qb_bt_sb_printf(&sb, "the in-sample duration and one more step");
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walkforward: no window fits: the region has %zu time steps, the first "
                          "window needs at least %s",
                          N, need);
    }
    return QB_OK;
}

static uint64_t qb_wf_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t qb_wf_fingerprint_of(const qb_wf_plan_t *p) {
    uint64_t h = 0xcbf29ce484222325ULL;
    char *buf = malloc(65536);
    if (buf) {
        size_t n = qb_bt_config_json(&p->cfg, buf, 65536);
        h = qb_wf_fnv(h, buf, n < 65536 ? n : 65535);
        n = qb_wf_spec_json(&p->spec, buf, 65536);
        h = qb_wf_fnv(h, buf, n < 65536 ? n : 65535);
        free(buf);
    }
    const qb_search_t *s = p->space;
    for (size_t i = 0; i < qb_search_nparams(s); i++) {
        const char *nm = qb_search_param_name(s, i);
        h = qb_wf_fnv(h, nm, strlen(nm) + 1);
        for (size_t v = 0; v < qb_search_nvalues(s, i); v++) {
            const char *x = qb_search_value(s, i, v);
            h = qb_wf_fnv(h, x, strlen(x) + 1);
        }
    }
    uint64_t nc = qb_search_ncombos(s), seed = qb_search_seed(s);
    h = qb_wf_fnv(h, &nc, sizeof nc);
    h = qb_wf_fnv(h, &seed, sizeof seed);
    if (qb_search_is_sampled(s)) /* a grid's combinations follow from its values */
        for (uint64_t c = 0; c < nc; c++) {
            uint64_t g = qb_search_grid_index(s, c);
            h = qb_wf_fnv(h, &g, sizeof g);
        }
    h = qb_wf_fnv(h, p->steps, p->n * sizeof *p->steps);
    for (size_t i = 0; i < p->nw; i++) {
        const qb_wf_window_t *w = &p->w[i];
        uint64_t v[5] = {w->is_begin, w->is_end, w->oos_begin, w->oos_end, (uint64_t)w->partial};
        h = qb_wf_fnv(h, v, sizeof v);
    }
    for (size_t i = 0; i < p->nsym; i++) h = qb_wf_fnv(h, p->sym[i].s, strlen(p->sym[i].s) + 1);
    return h;
}

qb_err_t qb_wf_plan_new(const qb_bt_data_t *data, const qb_bt_config_t *base,
                        const qb_search_t *space, const qb_wf_spec_t *spec,
                        qb_wf_plan_t **out, char *errstr, size_t errstr_size) {
    qb_err_t e = qb_wf_spec_validate(spec, errstr, errstr_size);
    if (e != QB_OK) return e;
    if ((e = qb_bt_config_validate(base, errstr, errstr_size)) != QB_OK) return e;
    size_t nsteps = 0;
    const qb_time_t *st = qb_bt_data_steps(data, &nsteps);
    if (!st) return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "walkforward: data not finalized");
    qb_wf_plan_t *p = calloc(1, sizeof *p);
    if (!p) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    p->cfg = *base;
    p->cfg.progress = NULL;
    p->cfg.progress_ctx = NULL;
    p->spec = *spec;
    /* the direction always follows the metric */
    p->spec.objective.higher = qb_bt_metric_higher_is_better(spec->objective.metric);
    p->spec.by_time = qb_wf_len_kind(&spec->is_len) == 2;
    if (base->bars_per_year > 0) {
        p->bpy = base->bars_per_year;
    } else if (qb_bt_bars_per_year(qb_bt_data_timeframe(data), base->twenty_four_seven,
                                   &p->bpy) != QB_OK) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "bars_per_year: the data has no known timeframe; set bars_per_year");
        goto fail;
    }
    if (space) e = qb_search_clone(space, &p->space);
    else e = qb_search_new(&p->space);
    if (e != QB_OK) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        goto fail;
    }
    size_t lo = base->from ? qb_wf_lower(st, nsteps, base->from) : 0;
    size_t hi = base->to ? qb_wf_lower(st, nsteps, base->to) : nsteps;
    if (hi <= lo) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                       "walkforward: no time step in [from, to)");
        goto fail;
    }
    p->lo = lo;
    p->data_nsteps = nsteps;
    p->n = hi - lo;
    p->steps = malloc(p->n * sizeof *p->steps);
    p->nsym = qb_bt_data_nsymbols(data);
    p->sym = calloc(p->nsym ? p->nsym : 1, sizeof *p->sym);
    if (!p->steps || !p->sym) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        goto fail;
    }
    memcpy(p->steps, st + lo, p->n * sizeof *p->steps);
    for (size_t i = 0; i < p->nsym; i++)
        snprintf(p->sym[i].s, sizeof p->sym[i].s, "%s", qb_bt_data_symbol_name(data, (uint32_t)i));
    if ((e = qb_wf_layout(p, errstr, errstr_size)) != QB_OK) goto fail;
    p->fp = qb_wf_fingerprint_of(p);
    *out = p;
    return QB_OK;
fail:
    qb_wf_plan_destroy(p);
    return e;
}

void qb_wf_plan_destroy(qb_wf_plan_t *p) {
    if (!p) return;
    qb_search_destroy(p->space);
    free(p->steps);
    free(p->w);
    free(p->sym);
    free(p);
}

size_t qb_wf_plan_nwindows(const qb_wf_plan_t *p) { return p->nw; }
const qb_wf_window_t *qb_wf_plan_window(const qb_wf_plan_t *p, uint32_t w) {
    return w < p->nw ? &p->w[w] : NULL;
}
uint64_t qb_wf_plan_ncombos(const qb_wf_plan_t *p) { return qb_search_ncombos(p->space); }
const qb_search_t *qb_wf_plan_space(const qb_wf_plan_t *p) { return p->space; }
const qb_wf_spec_t *qb_wf_plan_spec(const qb_wf_plan_t *p) { return &p->spec; }
const qb_bt_config_t *qb_wf_plan_config(const qb_wf_plan_t *p) { return &p->cfg; }
const qb_time_t *qb_wf_plan_steps(const qb_wf_plan_t *p, size_t *n) {
    *n = p->n;
    return p->steps;
}
uint64_t qb_wf_plan_nunits(const qb_wf_plan_t *p) {
    return (uint64_t)p->nw * qb_wf_plan_ncombos(p) + p->nw;
}
uint64_t qb_wf_plan_fingerprint(const qb_wf_plan_t *p) { return p->fp; }

static void qb_wf_windows_sb(qb_bt_sb_t *sb, const qb_wf_plan_t *p) {
    qb_bt_sb_printf(sb, "[");
    for (size_t i = 0; i < p->nw; i++) {
        const qb_wf_window_t *w = &p->w[i];
        qb_bt_sb_printf(sb, "%s{\"index\":%u,\"is\":[%zu,%zu],\"oos\":[%zu,%zu],\"is_from\":",
                        i ? "," : "", w->index, w->is_begin, w->is_end, w->oos_begin, w->oos_end);
        qb_bt_sb_time(sb, w->is_from);
        qb_bt_sb_printf(sb, ",\"is_to\":");
        qb_bt_sb_time(sb, w->is_to);
        qb_bt_sb_printf(sb, ",\"oos_from\":");
        qb_bt_sb_time(sb, w->oos_from);
        qb_bt_sb_printf(sb, ",\"oos_to\":");
        qb_bt_sb_time(sb, w->oos_to);
        qb_bt_sb_printf(sb, ",\"partial\":%s}", w->partial ? "true" : "false");
    }
    qb_bt_sb_printf(sb, "]");
}

static void qb_wf_plan_head_sb(qb_bt_sb_t *sb, const qb_wf_plan_t *p) {
    qb_bt_sb_printf(sb, "{\"fingerprint\":\"%016llx\",\"steps\":%zu,\"combos\":%llu,"
                        "\"nwindows\":%zu,\"bars_per_year\":",
                    (unsigned long long)p->fp, p->n, (unsigned long long)qb_wf_plan_ncombos(p),
                    p->nw);
    qb_bt_sb_double(sb, p->bpy);
    qb_bt_sb_printf(sb, ",\"first_step\":");
    qb_bt_sb_time(sb, p->steps[0]);
    qb_bt_sb_printf(sb, ",\"last_step\":");
    qb_bt_sb_time(sb, p->steps[p->n - 1]);
}

size_t qb_wf_plan_json(const qb_wf_plan_t *p, char *buf, size_t cap) {
    qb_bt_sb_t sb = {buf, cap, 0};
    if (cap) buf[0] = 0;
    qb_wf_plan_head_sb(&sb, p);
    qb_bt_sb_printf(&sb, ",\"windows\":");
    qb_wf_windows_sb(&sb, p);
    qb_bt_sb_printf(&sb, "}");
    return sb.len;
}

/* The data must be the plan's: same step count, same region. */
static qb_err_t qb_wf_check_data(const qb_wf_plan_t *p, const qb_bt_data_t *data, char *errstr,
                                 size_t errstr_size) {
    size_t n = 0;
    const qb_time_t *st = qb_bt_data_steps(data, &n);
    if (!st) return qb_err_set(errstr, errstr_size, QB_ERR_STATE, "walkforward: data not finalized");
    if (n != p->data_nsteps || st[p->lo] != p->steps[0] || st[p->lo + p->n - 1] != p->steps[p->n - 1] ||
        qb_bt_data_nsymbols(data) != p->nsym)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walkforward: the data is not the one the plan was made from");
    return QB_OK;
}

/* ======================================================================== */
/* Units                                                                     */
/* ======================================================================== */

qb_err_t qb_wf_eval_is(const qb_wf_plan_t *p, const qb_bt_data_t *data, uint32_t w,
                       uint64_t c0, uint64_t c1, qb_search_score_t *scores, char *errstr,
                       size_t errstr_size) {
    if (w >= p->nw || c0 >= c1 || c1 > qb_wf_plan_ncombos(p))
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "walkforward: unit IS window %u combos [%llu, %llu) out of range", w,
                          (unsigned long long)c0, (unsigned long long)c1);
    qb_err_t e = qb_wf_check_data(p, data, errstr, errstr_size);
    if (e != QB_OK) return e;
    const qb_wf_window_t *win = &p->w[w];
    for (uint64_t c = c0; c < c1; c++) {
        e = qb_search_eval(data, &p->cfg, p->space, c, win->is_from, win->is_to,
                           &p->spec.objective, &scores[c - c0], errstr, errstr_size);
        if (e != QB_OK) return e;
    }
    return QB_OK;
}

struct qb_wf_oos_s {
    uint32_t window;
    uint64_t combo;
    qb_bt_metrics_t m;
    size_t npts, ntr;
    qb_bt_point_t *pts;
    qb_bt_trade_t *tr;
};

static qb_wf_oos_t *qb_wf_oos_alloc(size_t npts, size_t ntr) {
    qb_wf_oos_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->pts = calloc(npts ? npts : 1, sizeof *r->pts);
    r->tr = calloc(ntr ? ntr : 1, sizeof *r->tr);
    if (!r->pts || !r->tr) {
        qb_wf_oos_destroy(r);
        return NULL;
    }
    r->npts = npts;
    r->ntr = ntr;
    return r;
}

void qb_wf_oos_destroy(qb_wf_oos_t *r) {
    if (!r) return;
    free(r->pts);
    free(r->tr);
    free(r);
}

qb_err_t qb_wf_eval_oos(const qb_wf_plan_t *p, const qb_bt_data_t *data, uint32_t w,
                        uint64_t c, qb_wf_oos_t **out, char *errstr, size_t errstr_size) {
    if (w >= p->nw || c >= qb_wf_plan_ncombos(p))
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "walkforward: unit OOS window %u combo %llu out of range", w,
                          (unsigned long long)c);
    qb_err_t e = qb_wf_check_data(p, data, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_bt_config_t *cfg = malloc(sizeof *cfg);
    if (!cfg) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    e = qb_search_apply(p->space, c, &p->cfg, cfg, errstr, errstr_size);
    if (e != QB_OK) {
        free(cfg);
        return e;
    }
    cfg->from = p->w[w].oos_from;
    cfg->to = p->w[w].oos_to;
    cfg->benchmark = 0;
    cfg->keep_fills = 0;
    cfg->keep_signals = 0;
    cfg->reasons = 0;
    qb_bt_result_t *res = NULL;
    e = qb_bt_run(data, cfg, &res, errstr, errstr_size);
    free(cfg);
    if (e != QB_OK) return e;
    size_t np, nt;
    const qb_bt_point_t *pts = qb_bt_result_equity(res, &np);
    const qb_bt_trade_t *tr = qb_bt_result_trades(res, &nt);
    qb_wf_oos_t *r = qb_wf_oos_alloc(np, nt);
    if (!r) {
        qb_bt_result_destroy(res);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    }
    r->window = w;
    r->combo = c;
    r->m = *qb_bt_result_metrics(res);
    if (np) memcpy(r->pts, pts, np * sizeof *pts);
    if (nt) memcpy(r->tr, tr, nt * sizeof *tr);
    qb_bt_result_destroy(res);
    *out = r;
    return QB_OK;
}

uint32_t qb_wf_oos_window(const qb_wf_oos_t *r) { return r->window; }
uint64_t qb_wf_oos_combo(const qb_wf_oos_t *r) { return r->combo; }
const qb_bt_metrics_t *qb_wf_oos_metrics(const qb_wf_oos_t *r) { return &r->m; }
const qb_bt_point_t *qb_wf_oos_equity(const qb_wf_oos_t *r, size_t *n) {
    *n = r->npts;
    return r->pts;
}
const qb_bt_trade_t *qb_wf_oos_trades(const qb_wf_oos_t *r, size_t *n) {
    *n = r->ntr;
    return r->tr;
}

/* ---- exact JSON of an OOS result ---------------------------------------------------------- */

static void qb_wf_sb_dec(qb_bt_sb_t *sb, qb_dec_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    qb_bt_sb_printf(sb, "\"%s\"", b);
}

static void qb_wf_oos_sb(qb_bt_sb_t *sb, const qb_wf_oos_t *r, char *mbuf, size_t mcap) {
    qb_bt_sb_printf(sb, "{\"window\":%u,\"combo\":%llu,\"metrics\":", r->window,
                    (unsigned long long)r->combo);
    qb_search_metrics_json(&r->m, mbuf, mcap);
    qb_bt_sb_printf(sb, "%s,\"equity\":[", mbuf);
    for (size_t i = 0; i < r->npts; i++) {
        const qb_bt_point_t *q = &r->pts[i];
        qb_bt_sb_printf(sb, "%s[\"%lld\",", i ? "," : "", (long long)q->ts);
        qb_wf_sb_dec(sb, q->equity);
        qb_bt_sb_printf(sb, ",");
        qb_wf_sb_dec(sb, q->cash);
        qb_bt_sb_printf(sb, ",");
        qb_wf_sb_dec(sb, q->long_value);
        qb_bt_sb_printf(sb, ",");
        qb_wf_sb_dec(sb, q->short_value);
        qb_bt_sb_printf(sb, "]");
    }
    qb_bt_sb_printf(sb, "],\"trades\":[");
    for (size_t i = 0; i < r->ntr; i++) {
        const qb_bt_trade_t *t = &r->tr[i];
        qb_bt_sb_printf(sb,
                        "%s{\"sym\":%u,\"dir\":%d,\"open\":%d,\"entry_ts\":\"%lld\","
                        "\"exit_ts\":\"%lld\",\"qty\":",
                        i ? "," : "", t->sym, t->dir, t->open, (long long)t->entry_ts,
                        (long long)t->exit_ts);
        qb_wf_sb_dec(sb, t->qty);
        qb_bt_sb_printf(sb, ",\"entry_price\":");
        qb_wf_sb_dec(sb, t->entry_price);
        qb_bt_sb_printf(sb, ",\"exit_price\":");
        qb_wf_sb_dec(sb, t->exit_price);
        qb_bt_sb_printf(sb, ",\"commission\":");
        qb_wf_sb_dec(sb, t->commission);
        qb_bt_sb_printf(sb, ",\"net_pnl\":");
        qb_wf_sb_dec(sb, t->net_pnl);
        if (isfinite(t->return_pct))
            qb_bt_sb_printf(sb, ",\"return_pct\":%.17g", t->return_pct);
        else
            qb_bt_sb_printf(sb, ",\"return_pct\":null");
        qb_bt_sb_printf(sb, ",\"bars\":\"%lld\",\"fills\":%u}", (long long)t->bars, t->fills);
    }
    qb_bt_sb_printf(sb, "]}");
}

char *qb_wf_oos_to_json(const qb_wf_oos_t *r) {
    char mbuf[QB_SEARCH_SCORE_JSON_MAX];
    qb_bt_sb_t sb = {NULL, 0, 0};
    qb_wf_oos_sb(&sb, r, mbuf, sizeof mbuf);
    size_t n = sb.len + 1;
    char *buf = malloc(n);
    if (!buf) return NULL;
    qb_bt_sb_t sb2 = {buf, n, 0};
    buf[0] = 0;
    qb_wf_oos_sb(&sb2, r, mbuf, sizeof mbuf);
    return buf;
}

static int qb_wf_j_i64(const cJSON *j, int64_t *out) {
    if (cJSON_IsString(j)) {
        char *end;
        long long v = strtoll(j->valuestring, &end, 10);
        if (!*j->valuestring || *end) return -1;
        *out = v;
        return 0;
    }
    if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) &&
        fabs(j->valuedouble) < 9007199254740992.0) {
        *out = (int64_t)j->valuedouble;
        return 0;
    }
    return -1;
}

static int qb_wf_j_dec(const cJSON *j, qb_dec_t *out) {
    if (!cJSON_IsString(j)) return -1;
    return qb_dec_parse(j->valuestring, strlen(j->valuestring), out) == QB_OK ? 0 : -1;
}

qb_err_t qb_wf_oos_parse(const char *json, size_t len, qb_wf_oos_t **out, char *errstr,
                         size_t errstr_size) {
    cJSON *o = cJSON_ParseWithLength(json, len);
    qb_wf_oos_t *r = NULL;
    const char *bad = NULL;
    qb_err_t e = QB_OK;
    if (!cJSON_IsObject(o)) {
        bad = "(not a JSON object)";
        goto out;
    }
    const cJSON *eq = cJSON_GetObjectItemCaseSensitive(o, "equity");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(o, "trades");
    if (!cJSON_IsArray(eq)) {
        bad = "equity";
        goto out;
    }
    if (!cJSON_IsArray(tr)) {
        bad = "trades";
        goto out;
    }
    r = qb_wf_oos_alloc((size_t)cJSON_GetArraySize(eq), (size_t)cJSON_GetArraySize(tr));
    if (!r) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        goto out;
    }
    int64_t w, c;
    if (qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(o, "window"), &w) || w < 0 || w > UINT32_MAX) {
        bad = "window";
        goto out;
    }
    if (qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(o, "combo"), &c) || c < 0) {
        bad = "combo";
        goto out;
    }
    r->window = (uint32_t)w;
    r->combo = (uint64_t)c;
    {
        char mm[256];
        if (qb_search_metrics_from_cjson(cJSON_GetObjectItemCaseSensitive(o, "metrics"), &r->m,
                                         mm, sizeof mm) != QB_OK) {
            bad = "metrics";
            goto out;
        }
    }
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, eq) {
        qb_bt_point_t *q = &r->pts[i++];
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 5 ||
            qb_wf_j_i64(cJSON_GetArrayItem(it, 0), &q->ts) ||
            qb_wf_j_dec(cJSON_GetArrayItem(it, 1), &q->equity) ||
            qb_wf_j_dec(cJSON_GetArrayItem(it, 2), &q->cash) ||
            qb_wf_j_dec(cJSON_GetArrayItem(it, 3), &q->long_value) ||
            qb_wf_j_dec(cJSON_GetArrayItem(it, 4), &q->short_value)) {
            bad = "equity[]";
            goto out;
        }
    }
    i = 0;
    cJSON_ArrayForEach(it, tr) {
        qb_bt_trade_t *t = &r->tr[i++];
        int64_t sym, dir, open, fills;
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(it, "return_pct");
        if (qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "sym"), &sym) || sym < 0 ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "dir"), &dir) ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "open"), &open) ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "fills"), &fills) || fills < 0 ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "entry_ts"), &t->entry_ts) ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "exit_ts"), &t->exit_ts) ||
            qb_wf_j_i64(cJSON_GetObjectItemCaseSensitive(it, "bars"), &t->bars) ||
            qb_wf_j_dec(cJSON_GetObjectItemCaseSensitive(it, "qty"), &t->qty) ||
            qb_wf_j_dec(cJSON_GetObjectItemCaseSensitive(it, "entry_price"), &t->entry_price) ||
            qb_wf_j_dec(cJSON_GetObjectItemCaseSensitive(it, "exit_price"), &t->exit_price) ||
            qb_wf_j_dec(cJSON_GetObjectItemCaseSensitive(it, "commission"), &t->commission) ||
            qb_wf_j_dec(cJSON_GetObjectItemCaseSensitive(it, "net_pnl"), &t->net_pnl) ||
            !(cJSON_IsNumber(rp) || cJSON_IsNull(rp))) {
            bad = "trades[]";
            goto out;
        }
        t->sym = (uint32_t)sym;
        t->dir = (int)dir;
        t->open = (int)open;
        t->fills = (uint32_t)fills;
        t->return_pct = cJSON_IsNumber(rp) ? rp->valuedouble : NAN;
    }
out:
    cJSON_Delete(o);
    if (bad) e = qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "oos result: bad or missing %s", bad);
    if (e != QB_OK) {
        qb_wf_oos_destroy(r);
        return e;
    }
    *out = r;
    return QB_OK;
}

/* ======================================================================== */
/* Aggregator                                                                */
/* ======================================================================== */

struct qb_wf_agg_s {
    const qb_wf_plan_t *p;
    size_t nw;
    uint64_t nc, words;        /* bitmap words per window */
    uint64_t *seen;            /* nw x words */
    uint64_t *nseen, *nvalid, *neligible;
    qb_search_score_t *best;   /* per window; valid when nseen > 0 */
    qb_wf_oos_t **oos;         /* per window */
};

qb_err_t qb_wf_agg_new(const qb_wf_plan_t *p, qb_wf_agg_t **out) {
    qb_wf_agg_t *a = calloc(1, sizeof *a);
    if (!a) return QB_ERR_NOMEM;
    a->p = p;
    a->nw = p->nw;
    a->nc = qb_wf_plan_ncombos(p);
    a->words = (a->nc + 63) / 64;
    a->seen = calloc(a->nw * a->words, sizeof *a->seen);
    a->nseen = calloc(a->nw, sizeof *a->nseen);
    a->nvalid = calloc(a->nw, sizeof *a->nvalid);
    a->neligible = calloc(a->nw, sizeof *a->neligible);
    a->best = calloc(a->nw, sizeof *a->best);
    a->oos = calloc(a->nw, sizeof *a->oos);
    if (!a->seen || !a->nseen || !a->nvalid || !a->neligible || !a->best || !a->oos) {
        qb_wf_agg_destroy(a);
        return QB_ERR_NOMEM;
    }
    *out = a;
    return QB_OK;
}

void qb_wf_agg_destroy(qb_wf_agg_t *a) {
    if (!a) return;
    if (a->oos)
        for (size_t i = 0; i < a->nw; i++) qb_wf_oos_destroy(a->oos[i]);
    free(a->oos);
    free(a->seen);
    free(a->nseen);
    free(a->nvalid);
    free(a->neligible);
    free(a->best);
    free(a);
}

qb_err_t qb_wf_agg_add_is(qb_wf_agg_t *a, uint32_t w, const qb_search_score_t *scores,
                          size_t n, char *errstr, size_t errstr_size) {
    if (w >= a->nw)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "walkforward: window %u out of range",
                          w);
    for (size_t i = 0; i < n; i++)
        if (scores[i].combo >= a->nc)
            return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                              "walkforward: window %u: combination %llu out of range", w,
                              (unsigned long long)scores[i].combo);
    const qb_search_objective_t *o = &a->p->spec.objective;
    uint64_t *bits = a->seen + (size_t)w * a->words;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = scores[i].combo;
        uint64_t bit = 1ULL << (c % 64);
        if (bits[c / 64] & bit) continue; /* a repeat */
        bits[c / 64] |= bit;
        qb_search_score_t sc = scores[i];
        qb_search_score_finish(&sc, o); /* the plan's objective decides */
        a->nseen[w]++;
        if (sc.valid) a->nvalid[w]++;
        if (sc.eligible) a->neligible[w]++;
        if (a->nseen[w] == 1 || qb_search_cmp(o, &sc, &a->best[w]) < 0) a->best[w] = sc;
    }
    return QB_OK;
}

int qb_wf_agg_selected(const qb_wf_agg_t *a, uint32_t w, int64_t *combo,
                       qb_search_score_t *best) {
    if (w >= a->nw) return -1;
    if (a->nseen[w] < a->nc) return 0;
    *combo = a->best[w].eligible ? (int64_t)a->best[w].combo : -1;
    if (best) *best = a->best[w];
    return 1;
}

qb_err_t qb_wf_agg_add_oos(qb_wf_agg_t *a, const qb_wf_oos_t *r, char *errstr,
                           size_t errstr_size) {
    uint32_t w = r->window;
    int64_t combo;
    int s = qb_wf_agg_selected(a, w, &combo, NULL);
    if (s < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walkforward: OOS result for window %u out of range", w);
    if (s == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                          "walkforward: OOS result for window %u before its selection is known",
                          w);
    if (combo < 0 || (uint64_t)combo != r->combo)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walkforward: OOS result for window %u is for combination %llu, the "
                          "selection is %lld",
                          w, (unsigned long long)r->combo, (long long)combo);
    if (a->oos[w]) return QB_OK; /* a repeat */
    const qb_wf_window_t *win = &a->p->w[w];
    if (r->npts != win->oos_end - win->oos_begin)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walkforward: OOS result for window %u has %zu points, the window %zu "
                          "steps",
                          w, r->npts, win->oos_end - win->oos_begin);
    for (size_t i = 0; i < r->npts; i++)
        if (r->pts[i].ts != a->p->steps[win->oos_begin + i])
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "walkforward: OOS result for window %u: point %zu is not an OOS "
                              "step of the window",
                              w, i);
    for (size_t i = 0; i < r->ntr; i++)
        if (r->tr[i].sym >= a->p->nsym)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "walkforward: OOS result for window %u: trade %zu names symbol %u",
                              w, i, r->tr[i].sym);
    qb_wf_oos_t *c = qb_wf_oos_alloc(r->npts, r->ntr);
    if (!c) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    c->window = r->window;
    c->combo = r->combo;
    c->m = r->m;
    if (r->npts) memcpy(c->pts, r->pts, r->npts * sizeof *r->pts);
    if (r->ntr) memcpy(c->tr, r->tr, r->ntr * sizeof *r->tr);
    a->oos[w] = c;
    return QB_OK;
}

/* 1 when window w needs nothing more. */
static int qb_wf_agg_window_done(const qb_wf_agg_t *a, size_t w) {
    if (a->nseen[w] < a->nc) return 0;
    return !a->best[w].eligible || a->oos[w] != NULL;
}

size_t qb_wf_agg_next(const qb_wf_agg_t *a, uint64_t batch, qb_wf_unit_t *units, size_t cap) {
    if (!batch) batch = 64;
    size_t k = 0;
    for (size_t w = 0; w < a->nw; w++)
        if (a->nseen[w] == a->nc && a->best[w].eligible && !a->oos[w]) {
            if (k < cap)
                units[k] = (qb_wf_unit_t){QB_WF_UNIT_OOS, (uint32_t)w, a->best[w].combo,
                                          a->best[w].combo + 1};
            k++;
        }
    for (size_t w = 0; w < a->nw; w++) {
        if (a->nseen[w] == a->nc) continue;
        const uint64_t *bits = a->seen + w * a->words;
        uint64_t c = 0;
        while (c < a->nc) {
            if (bits[c / 64] & (1ULL << (c % 64))) {
                c++;
                continue;
            }
            uint64_t b = c;
            while (c < a->nc && c - b < batch && !(bits[c / 64] & (1ULL << (c % 64)))) c++;
            if (k < cap) units[k] = (qb_wf_unit_t){QB_WF_UNIT_IS, (uint32_t)w, b, c};
            k++;
        }
    }
    return k;
}

uint64_t qb_wf_agg_done(const qb_wf_agg_t *a, uint64_t *total) {
    uint64_t d = 0;
    for (size_t w = 0; w < a->nw; w++) {
        d += a->nseen[w];
        if (a->nseen[w] == a->nc && (!a->best[w].eligible || a->oos[w])) d++;
    }
    if (total) *total = qb_wf_plan_nunits(a->p);
    return d;
}

int qb_wf_agg_complete(const qb_wf_agg_t *a) {
    for (size_t w = 0; w < a->nw; w++)
        if (!qb_wf_agg_window_done(a, w)) return 0;
    return 1;
}

/* ======================================================================== */
/* Result                                                                    */
/* ======================================================================== */

struct qb_wf_result_s {
    qb_bt_config_t cfg;
    qb_wf_spec_t spec;
    qb_search_t *space;
    uint64_t fp;
    size_t nsteps;
    double bpy;
    size_t nw;
    qb_wf_window_result_t *win;
    qb_bt_metrics_t m;
    size_t npts, ntr;
    qb_bt_point_t *pts;
    qb_wf_trade_t *tr;
    size_t nsym;
    qb_symbol_t *sym;
    size_t np;
    qb_wf_stability_t st[QB_SEARCH_MAX_PARAMS];
    uint32_t set_changes, distinct_sets;
    double is_mean, oos_mean, eff;
};

void qb_wf_result_destroy(qb_wf_result_t *r) {
    if (!r) return;
    qb_search_destroy(r->space);
    free(r->win);
    free(r->pts);
    free(r->tr);
    free(r->sym);
    free(r);
}

/* v x num / den, half-even. */
static qb_err_t qb_wf_scale(qb_dec_t v, qb_dec_t num, qb_dec_t den, qb_dec_t *out) {
    return qb_dec_div_wide((qb_dec_wide_t)v * num, den, out, QB_ROUND_HALF_EVEN);
}

static int qb_wf_is_number(const char *v) {
    char *end;
    if (!*v) return 0;
    double x = strtod(v, &end);
    return !*end && isfinite(x);
}

static void qb_wf_stability(qb_wf_result_t *r) {
    const qb_search_t *s = r->space;
    r->np = qb_search_nparams(s);
    size_t nsel = 0;
    uint32_t idx[QB_SEARCH_MAX_PARAMS], prev[QB_SEARCH_MAX_PARAMS];
    for (size_t p = 0; p < r->np; p++) {
        qb_wf_stability_t *st = &r->st[p];
        memset(st, 0, sizeof *st);
        st->name = qb_search_param_name(s, p);
        st->mode = "";
        st->numeric = 1;
        for (size_t v = 0; v < qb_search_nvalues(s, p); v++)
            if (!qb_wf_is_number(qb_search_value(s, p, v))) st->numeric = 0;
    }
    int64_t prev_combo = -1;
    /* counts per (param, value) for distinct and mode */
    size_t maxv = 1;
    for (size_t p = 0; p < r->np; p++)
        if (qb_search_nvalues(s, p) > maxv) maxv = qb_search_nvalues(s, p);
    uint32_t *cnt = calloc(r->np * maxv + 1, sizeof *cnt);
    double *sum = calloc(r->np + 1, sizeof *sum);
    int64_t *combos = calloc(r->nw + 1, sizeof *combos);
    size_t ncombos = 0;
    if (!cnt || !sum || !combos) goto out;
    for (size_t w = 0; w < r->nw; w++) {
        int64_t c = r->win[w].combo;
        if (c < 0) continue;
        if (qb_search_combo(s, (uint64_t)c, idx) != QB_OK) continue;
        for (size_t p = 0; p < r->np; p++) {
            qb_wf_stability_t *st = &r->st[p];
            if (nsel && idx[p] != prev[p]) st->changes++;
            cnt[p * maxv + idx[p]]++;
            if (st->numeric) {
                double x = strtod(qb_search_value(s, p, idx[p]), NULL);
                sum[p] += x;
                if (!nsel || x < st->min) st->min = x;
                if (!nsel || x > st->max) st->max = x;
            }
        }
        if (nsel && c != prev_combo) r->set_changes++;
        int seen = 0;
        for (size_t i = 0; i < ncombos; i++)
            if (combos[i] == c) seen = 1;
        if (!seen) combos[ncombos++] = c;
        memcpy(prev, idx, sizeof idx);
        prev_combo = c;
        nsel++;
    }
    r->distinct_sets = (uint32_t)ncombos;
    for (size_t p = 0; p < r->np; p++) {
        qb_wf_stability_t *st = &r->st[p];
        st->selected = (uint32_t)nsel;
        if (!nsel) {
            st->min = st->max = 0;
            continue;
        }
        uint32_t best = 0;
        size_t bestv = 0;
        for (size_t v = 0; v < qb_search_nvalues(s, p); v++) {
            uint32_t k = cnt[p * maxv + v];
            if (k) st->distinct++;
            if (k > best) {
                best = k;
                bestv = v;
            }
        }
        st->mode = qb_search_value(s, p, bestv);
        st->mode_share = (double)best / (double)nsel;
        if (st->numeric) {
            st->mean = sum[p] / (double)nsel;
            double ss = 0;
            for (size_t w = 0; w < r->nw; w++) {
                if (r->win[w].combo < 0) continue;
                qb_search_combo(s, (uint64_t)r->win[w].combo, idx);
                double x = strtod(qb_search_value(s, p, idx[p]), NULL) - st->mean;
                ss += x * x;
            }
            st->stdev = sqrt(ss / (double)nsel);
            st->cv = st->mean != 0 ? st->stdev / fabs(st->mean) : 0;
        } else {
            st->min = st->max = 0;
        }
    }
out:
    free(cnt);
    free(sum);
    free(combos);
}

qb_err_t qb_wf_agg_finish(const qb_wf_agg_t *a, qb_wf_result_t **out, char *errstr,
                          size_t errstr_size) {
    const qb_wf_plan_t *p = a->p;
    for (size_t w = 0; w < a->nw; w++) {
        if (a->nseen[w] < a->nc)
            return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                              "walkforward: window %zu: %llu of %llu in-sample results missing", w,
                              (unsigned long long)(a->nc - a->nseen[w]),
                              (unsigned long long)a->nc);
        if (a->best[w].eligible && !a->oos[w])
            return qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                              "walkforward: window %zu: the out-of-sample result is missing", w);
    }
    qb_wf_result_t *r = calloc(1, sizeof *r);
    if (!r) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    qb_err_t e = QB_OK;
    r->cfg = p->cfg;
    r->spec = p->spec;
    r->fp = p->fp;
    r->nsteps = p->n;
    r->bpy = p->bpy;
    r->nw = a->nw;
    size_t npts = 0, ntr = 0;
    for (size_t w = 0; w < a->nw; w++) {
        npts += p->w[w].oos_end - p->w[w].oos_begin;
        if (a->oos[w]) ntr += a->oos[w]->ntr;
    }
    r->win = calloc(a->nw, sizeof *r->win);
    r->pts = calloc(npts ? npts : 1, sizeof *r->pts);
    r->tr = calloc(ntr ? ntr : 1, sizeof *r->tr);
    r->nsym = p->nsym;
    r->sym = calloc(p->nsym ? p->nsym : 1, sizeof *r->sym);
    if (!r->win || !r->pts || !r->tr || !r->sym || qb_search_clone(p->space, &r->space) != QB_OK) {
        e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        goto fail;
    }
    if (p->nsym) memcpy(r->sym, p->sym, p->nsym * sizeof *p->sym);

    const qb_dec_t C = p->cfg.cash;
    const char *metric = p->spec.objective.metric;
    qb_dec_t S = C;
    qb_bt_acc_t acc;
    qb_bt_acc_init(&acc, C, p->bpy);
    double is_sum = 0, oos_sum = 0;
    size_t nsel = 0;
    for (size_t w = 0; w < a->nw; w++) {
        const qb_wf_window_t *win = &p->w[w];
        qb_wf_window_result_t *wr = &r->win[w];
        wr->win = *win;
        wr->valid = a->nvalid[w];
        wr->eligible = a->neligible[w];
        wr->is_best = a->best[w];
        wr->combo = a->best[w].eligible ? (int64_t)a->best[w].combo : -1;
        wr->start_equity = S;
        wr->scale = (double)S / (double)C;
        wr->oos_objective = NAN;
        const qb_wf_oos_t *o = a->oos[w];
        if (wr->combo < 0 || !o) { /* not traded: flat cash over its OOS steps */
            for (size_t i = win->oos_begin; i < win->oos_end; i++) {
                qb_bt_point_t *q = &r->pts[r->npts++];
                q->ts = p->steps[i];
                q->equity = q->cash = S;
                qb_bt_acc_step(&acc, q->ts, S, 0, 0);
            }
            wr->end_equity = S;
            continue;
        }
        wr->oos = o->m;
        wr->oos_trades = o->m.trades_closed + o->m.trades_open;
        double ov = NAN;
        if (qb_bt_metric_value(&o->m, metric, &ov) == QB_OK) wr->oos_objective = ov;
        is_sum += wr->is_best.objective;
        oos_sum += wr->oos_objective;
        nsel++;
        const qb_dec_t Sk = S;
        for (size_t i = 0; i < o->npts; i++) {
            const qb_bt_point_t *x = &o->pts[i];
            qb_bt_point_t *q = &r->pts[r->npts++];
            q->ts = x->ts;
            qb_dec_t gross_raw;
            if (qb_wf_scale(x->equity, Sk, C, &q->equity) != QB_OK ||
                qb_wf_scale(x->cash, Sk, C, &q->cash) != QB_OK ||
                qb_wf_scale(x->long_value, Sk, C, &q->long_value) != QB_OK ||
                qb_wf_scale(x->short_value, Sk, C, &q->short_value) != QB_OK ||
                qb_dec_sub(q->long_value, q->short_value, &gross_raw) != QB_OK) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                               "walkforward: window %zu: stitched equity out of range", w);
                goto fail;
            }
            qb_bt_acc_step(&acc, q->ts, q->equity, gross_raw,
                           x->long_value != 0 || x->short_value != 0);
            S = q->equity;
        }
        qb_dec_t notional;
        if (qb_wf_scale(o->m.traded_notional, Sk, C, &notional) != QB_OK) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                           "walkforward: window %zu: turnover out of range", w);
            goto fail;
        }
        qb_bt_acc_notional(&acc, notional);
        for (size_t i = 0; i < o->ntr; i++) {
            qb_wf_trade_t *t = &r->tr[r->ntr++];
            t->t = o->tr[i];
            t->window = (uint32_t)w;
            t->cut = o->tr[i].open;
            if (qb_wf_scale(o->tr[i].net_pnl, Sk, C, &t->scaled_pnl) != QB_OK) {
                e = qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                               "walkforward: window %zu: trade P&L out of range", w);
                goto fail;
            }
            qb_bt_acc_trade(&acc, t->scaled_pnl, o->tr[i].bars, 0);
        }
        wr->end_equity = S;
    }
    qb_bt_acc_finish(&acc, &r->m);
    r->is_mean = nsel ? is_sum / (double)nsel : 0;
    r->oos_mean = nsel ? oos_sum / (double)nsel : 0;
    r->eff = r->is_mean != 0 ? r->oos_mean / r->is_mean : 0;
    qb_wf_stability(r);
    *out = r;
    return QB_OK;
fail:
    qb_wf_result_destroy(r);
    return e;
}

size_t qb_wf_result_nwindows(const qb_wf_result_t *r) { return r->nw; }
const qb_wf_window_result_t *qb_wf_result_window(const qb_wf_result_t *r, uint32_t w) {
    return w < r->nw ? &r->win[w] : NULL;
}
const qb_bt_metrics_t *qb_wf_result_metrics(const qb_wf_result_t *r) { return &r->m; }
const qb_bt_point_t *qb_wf_result_equity(const qb_wf_result_t *r, size_t *n) {
    *n = r->npts;
    return r->pts;
}
const qb_wf_trade_t *qb_wf_result_trades(const qb_wf_result_t *r, size_t *n) {
    *n = r->ntr;
    return r->tr;
}
const char *qb_wf_result_symbol(const qb_wf_result_t *r, uint32_t sym) {
    return sym < r->nsym ? r->sym[sym].s : "";
}
size_t qb_wf_result_nparams(const qb_wf_result_t *r) { return r->np; }
const qb_wf_stability_t *qb_wf_result_stability(const qb_wf_result_t *r, size_t p) {
    return p < r->np ? &r->st[p] : NULL;
}
uint32_t qb_wf_result_set_changes(const qb_wf_result_t *r) { return r->set_changes; }
uint32_t qb_wf_result_distinct_sets(const qb_wf_result_t *r) { return r->distinct_sets; }
void qb_wf_result_objectives(const qb_wf_result_t *r, double *is_mean, double *oos_mean,
                             double *efficiency) {
    if (is_mean) *is_mean = r->is_mean;
    if (oos_mean) *oos_mean = r->oos_mean;
    if (efficiency) *efficiency = r->eff;
}

size_t qb_wf_result_combo_json(const qb_wf_result_t *r, uint32_t w, char *buf, size_t cap) {
    if (w >= r->nw || r->win[w].combo < 0) {
        if (cap) snprintf(buf, cap, "null");
        return 4;
    }
    return qb_search_combo_json(r->space, (uint64_t)r->win[w].combo, buf, cap);
}

/* ---- report ---------------------------------------------------------------------------------- */

static void qb_wf_fjson_double(FILE *f, double v) {
    if (!isfinite(v)) fputs("null", f);
    else fprintf(f, "%.10g", v);
}

static void qb_wf_fjson_dec(FILE *f, qb_dec_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    fputs(b, f);
}

static void qb_wf_fjson_time(FILE *f, qb_time_t t) {
    char b[QB_TIME_STRLEN];
    qb_time_format(t, b, sizeof b);
    fprintf(f, "\"%s\"", b);
}

static void qb_wf_fjson_str(FILE *f, const char *s) {
    char tmp[1024];
    qb_bt_sb_t sb = {tmp, sizeof tmp, 0};
    tmp[0] = 0;
    qb_bt_sb_str(&sb, s);
    if (sb.len < sizeof tmp) {
        fputs(tmp, f);
        return;
    }
    char *big = malloc(sb.len + 1);
    if (!big) return;
    qb_bt_sb_t sb2 = {big, sb.len + 1, 0};
    qb_bt_sb_str(&sb2, s);
    fputs(big, f);
    free(big);
}

qb_err_t qb_wf_result_json(const qb_wf_result_t *r, unsigned flags, FILE *f) {
    char *buf = malloc(65536);
    if (!buf) return QB_ERR_NOMEM;
    /* plan head */
    fprintf(f, "{\"plan\":{\"fingerprint\":\"%016llx\",\"steps\":%zu,\"combos\":%llu,"
               "\"nwindows\":%zu,\"bars_per_year\":",
            (unsigned long long)r->fp, r->nsteps, (unsigned long long)qb_search_ncombos(r->space),
            r->nw);
    qb_wf_fjson_double(f, r->bpy);
    fputs("},\"spec\":", f);
    qb_wf_spec_json(&r->spec, buf, 65536);
    fputs(buf, f);
    fputs(",\"config\":", f);
    if (qb_bt_config_json(&r->cfg, buf, 65536) < 65536) fputs(buf, f);
    else fputs("null", f);
    fputs(",\"space\":{\"params\":[", f);
    for (size_t p = 0; p < qb_search_nparams(r->space); p++) {
        fprintf(f, "%s{\"name\":", p ? "," : "");
        qb_wf_fjson_str(f, qb_search_param_name(r->space, p));
        fputs(",\"values\":[", f);
        for (size_t v = 0; v < qb_search_nvalues(r->space, p); v++) {
            if (v) fputc(',', f);
            qb_wf_fjson_str(f, qb_search_value(r->space, p, v));
        }
        fputs("]}", f);
    }
    fprintf(f, "],\"grid_size\":%llu,\"combos\":%llu,\"sampled\":%s,\"seed\":%llu}",
            (unsigned long long)qb_search_grid_size(r->space),
            (unsigned long long)qb_search_ncombos(r->space),
            qb_search_is_sampled(r->space) ? "true" : "false",
            (unsigned long long)qb_search_seed(r->space));
    fputs(",\"metrics\":", f);
    qb_bt_metrics_json(&r->m, buf, 65536);
    fputs(buf, f);
    fputs(",\"windows\":[", f);
    for (size_t w = 0; w < r->nw; w++) {
        const qb_wf_window_result_t *x = &r->win[w];
        fprintf(f, "%s{\"index\":%u,\"is_steps\":[%zu,%zu],\"oos_steps\":[%zu,%zu],\"is_from\":",
                w ? "," : "", x->win.index, x->win.is_begin, x->win.is_end, x->win.oos_begin,
                x->win.oos_end);
        qb_wf_fjson_time(f, x->win.is_from);
        fputs(",\"is_to\":", f);
        qb_wf_fjson_time(f, x->win.is_to);
        fputs(",\"oos_from\":", f);
        qb_wf_fjson_time(f, x->win.oos_from);
        fputs(",\"oos_to\":", f);
        qb_wf_fjson_time(f, x->win.oos_to);
        fprintf(f, ",\"partial\":%s,\"combo\":", x->win.partial ? "true" : "false");
        if (x->combo < 0) fputs("null", f);
        else fprintf(f, "%lld", (long long)x->combo);
        qb_wf_result_combo_json(r, (uint32_t)w, buf, 65536);
        fprintf(f, ",\"params\":%s,\"valid\":%llu,\"eligible\":%llu,\"is_objective\":", buf,
                (unsigned long long)x->valid, (unsigned long long)x->eligible);
        qb_wf_fjson_double(f, x->combo < 0 ? NAN : x->is_best.objective);
        fprintf(f, ",\"is_trades\":%lld,\"oos_objective\":", (long long)x->is_best.trades);
        qb_wf_fjson_double(f, x->oos_objective);
        fprintf(f, ",\"oos_trades\":%lld,\"oos_return\":", (long long)x->oos_trades);
        qb_wf_fjson_double(f, x->combo < 0 ? 0 : x->oos.total_return);
        fputs(",\"start_equity\":", f);
        qb_wf_fjson_dec(f, x->start_equity);
        fputs(",\"end_equity\":", f);
        qb_wf_fjson_dec(f, x->end_equity);
        fputs("}", f);
    }
    fputs("],\"stability\":{\"params\":[", f);
    for (size_t p = 0; p < r->np; p++) {
        const qb_wf_stability_t *st = &r->st[p];
        fprintf(f, "%s{\"name\":", p ? "," : "");
        qb_wf_fjson_str(f, st->name);
        fprintf(f, ",\"selected\":%u,\"distinct\":%u,\"changes\":%u,\"mode\":", st->selected,
                st->distinct, st->changes);
        qb_wf_fjson_str(f, st->mode);
        fputs(",\"mode_share\":", f);
        qb_wf_fjson_double(f, st->mode_share);
        fprintf(f, ",\"numeric\":%s", st->numeric ? "true" : "false");
        if (st->numeric) {
            fputs(",\"mean\":", f);
            qb_wf_fjson_double(f, st->mean);
            fputs(",\"stdev\":", f);
            qb_wf_fjson_double(f, st->stdev);
            fputs(",\"cv\":", f);
            qb_wf_fjson_double(f, st->cv);
            fputs(",\"min\":", f);
            qb_wf_fjson_double(f, st->min);
            fputs(",\"max\":", f);
            qb_wf_fjson_double(f, st->max);
        }
        fputs(",\"values\":[", f);
        for (size_t w = 0; w < r->nw; w++) {
            if (w) fputc(',', f);
            uint32_t idx[QB_SEARCH_MAX_PARAMS];
            if (r->win[w].combo < 0 ||
                qb_search_combo(r->space, (uint64_t)r->win[w].combo, idx) != QB_OK)
                fputs("null", f);
            else
                qb_wf_fjson_str(f, qb_search_value(r->space, p, idx[p]));
        }
        fputs("]}", f);
    }
    fprintf(f, "],\"set_changes\":%u,\"distinct_sets\":%u,\"is_objective_mean\":",
            r->set_changes, r->distinct_sets);
    qb_wf_fjson_double(f, r->is_mean);
    fputs(",\"oos_objective_mean\":", f);
    qb_wf_fjson_double(f, r->oos_mean);
    fputs(",\"efficiency\":", f);
    qb_wf_fjson_double(f, r->eff);
    fputs("}", f);
    if (flags & QB_WF_JSON_EQUITY) {
        fputs(",\"equity\":[", f);
        for (size_t i = 0; i < r->npts; i++) {
            fputs(i ? ",[" : "[", f);
            qb_wf_fjson_time(f, r->pts[i].ts);
            fputc(',', f);
            qb_wf_fjson_dec(f, r->pts[i].equity);
            fputc(']', f);
        }
        fputs("]", f);
    }
    if (flags & QB_WF_JSON_TRADES) {
        fputs(",\"trades\":[", f);
        for (size_t i = 0; i < r->ntr; i++) {
            const qb_wf_trade_t *t = &r->tr[i];
            fprintf(f, "%s{\"window\":%u,\"symbol\":", i ? "," : "", t->window);
            qb_wf_fjson_str(f, qb_wf_result_symbol(r, t->t.sym));
            fprintf(f, ",\"dir\":%d,\"cut\":%s,\"entry_ts\":", t->t.dir, t->cut ? "true" : "false");
            qb_wf_fjson_time(f, t->t.entry_ts);
            fputs(",\"exit_ts\":", f);
            qb_wf_fjson_time(f, t->t.exit_ts);
            fputs(",\"qty\":", f);
            qb_wf_fjson_dec(f, t->t.qty);
            fputs(",\"entry_price\":", f);
            qb_wf_fjson_dec(f, t->t.entry_price);
            fputs(",\"exit_price\":", f);
            qb_wf_fjson_dec(f, t->t.exit_price);
            fputs(",\"net_pnl\":", f);
            qb_wf_fjson_dec(f, t->t.net_pnl);
            fputs(",\"scaled_pnl\":", f);
            qb_wf_fjson_dec(f, t->scaled_pnl);
            fputs(",\"return_pct\":", f);
            qb_wf_fjson_double(f, t->t.return_pct);
            fprintf(f, ",\"bars\":%lld}", (long long)t->t.bars);
        }
        fputs("]", f);
    }
    fputs("}\n", f);
    free(buf);
    return ferror(f) ? QB_ERR_IO : QB_OK;
}

/* ======================================================================== */
/* All in one                                                                */
/* ======================================================================== */

#define QB_WF_RUN_BATCH 8 /* IS combinations per task */

typedef struct qb_wf_runner_s {
    const qb_wf_plan_t *p;
    const qb_bt_data_t *data;
    qb_wf_agg_t *agg;
    pthread_mutex_t mu;
    uint64_t nbatch;      /* IS tasks per window */
    uint32_t *oos_w;      /* phase 2: the windows to run */
    qb_search_progress_fn progress;
    void *progress_ctx;
} qb_wf_runner_t;

static qb_err_t qb_wf_task_is(uint64_t i, void *ctx, char *errstr, size_t errstr_size) {
    qb_wf_runner_t *r = ctx;
    uint32_t w = (uint32_t)(i / r->nbatch);
    uint64_t nc = qb_wf_plan_ncombos(r->p);
    uint64_t c0 = (i % r->nbatch) * QB_WF_RUN_BATCH;
    uint64_t c1 = c0 + QB_WF_RUN_BATCH < nc ? c0 + QB_WF_RUN_BATCH : nc;
    qb_search_score_t sc[QB_WF_RUN_BATCH];
    qb_err_t e = qb_wf_eval_is(r->p, r->data, w, c0, c1, sc, errstr, errstr_size);
    if (e != QB_OK) return e;
    pthread_mutex_lock(&r->mu);
    e = qb_wf_agg_add_is(r->agg, w, sc, (size_t)(c1 - c0), errstr, errstr_size);
    pthread_mutex_unlock(&r->mu);
    return e;
}

static qb_err_t qb_wf_task_oos(uint64_t i, void *ctx, char *errstr, size_t errstr_size) {
    qb_wf_runner_t *r = ctx;
    uint32_t w = r->oos_w[i];
    int64_t combo = -1;
    pthread_mutex_lock(&r->mu);
    qb_wf_agg_selected(r->agg, w, &combo, NULL);
    pthread_mutex_unlock(&r->mu);
    qb_wf_oos_t *o = NULL;
    qb_err_t e = qb_wf_eval_oos(r->p, r->data, w, (uint64_t)combo, &o, errstr, errstr_size);
    if (e != QB_OK) return e;
    pthread_mutex_lock(&r->mu);
    e = qb_wf_agg_add_oos(r->agg, o, errstr, errstr_size);
    pthread_mutex_unlock(&r->mu);
    qb_wf_oos_destroy(o);
    return e;
}

static int qb_wf_run_progress(uint64_t done, uint64_t total, void *ctx) {
    qb_wf_runner_t *r = ctx;
    (void)done;
    (void)total;
    if (!r->progress) return 0;
    uint64_t all;
    pthread_mutex_lock(&r->mu);
    uint64_t d = qb_wf_agg_done(r->agg, &all);
    pthread_mutex_unlock(&r->mu);
    return r->progress(d, all, r->progress_ctx);
}

qb_err_t qb_wf_run(const qb_wf_plan_t *p, const qb_bt_data_t *data, int threads,
                   qb_search_progress_fn progress, void *progress_ctx,
                   qb_wf_result_t **out, char *errstr, size_t errstr_size) {
    qb_err_t e = qb_wf_check_data(p, data, errstr, errstr_size);
    if (e != QB_OK) return e;
    qb_wf_runner_t r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.data = data;
    r.progress = progress;
    r.progress_ctx = progress_ctx;
    if (qb_wf_agg_new(p, &r.agg) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
    pthread_mutex_init(&r.mu, NULL);
    uint64_t nc = qb_wf_plan_ncombos(p);
    r.nbatch = (nc + QB_WF_RUN_BATCH - 1) / QB_WF_RUN_BATCH;
    e = qb_search_parallel((uint64_t)p->nw * r.nbatch, threads, qb_wf_task_is, &r,
                           qb_wf_run_progress, &r, errstr, errstr_size);
    if (e == QB_OK) {
        r.oos_w = calloc(p->nw ? p->nw : 1, sizeof *r.oos_w);
        if (!r.oos_w) {
            e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "walkforward: out of memory");
        } else {
            uint64_t n = 0;
            for (uint32_t w = 0; w < p->nw; w++) {
                int64_t c;
                if (qb_wf_agg_selected(r.agg, w, &c, NULL) == 1 && c >= 0) r.oos_w[n++] = w;
            }
            e = qb_search_parallel(n, threads, qb_wf_task_oos, &r, qb_wf_run_progress, &r,
                                   errstr, errstr_size);
        }
    }
    if (e == QB_OK) e = qb_wf_agg_finish(r.agg, out, errstr, errstr_size);
    free(r.oos_w);
    pthread_mutex_destroy(&r.mu);
    qb_wf_agg_destroy(r.agg);
    return e;
}
