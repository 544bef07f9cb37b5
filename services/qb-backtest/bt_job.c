/* bt_job.c — a BacktestRequest turned into what libs/backtest runs: the
 * base config, the walk-forward spec, the search space, the objective.
 * Pure (no I/O), so every replica that reads the same request builds the
 * same job; with the same bars it builds the same plan (checked by the
 * plan fingerprint each part carries). See bt.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_types.h"

const char *bt_kind_name(bt_kind_t k) {
    switch (k) {
    case BT_KIND_BACKTEST: return "backtest";
    case BT_KIND_WF: return "walk_forward";
    case BT_KIND_GRID: return "grid";
    }
    return "backtest";
}

void bt_job_free(bt_job_t *j) {
    if (!j) return;
    for (size_t i = 0; i < j->nsymbols; i++) free(j->symbols[i]);
    free(j->symbols);
    free(j->cfg);
    qb_search_destroy(j->space);
    memset(j, 0, sizeof *j);
}

static int bt_id_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BT_RUN_ID_MAX) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

/* Shortest text of a double that reads back to it ("10", "0.05"). */
static void bt_double_text(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v && !strchr(buf, 'e')) return;
    }
    snprintf(buf, cap, "%.17g", v);
}

/* A fraction as an exact-enough decimal setting (bps = rate x 10000). */
static qb_err_t bt_set_double(qb_bt_config_t *cfg, const char *name, double v, char *errstr,
                              size_t errstr_size) {
    char t[64];
    bt_double_text(v, t, sizeof t);
    if (strchr(t, 'e') || strchr(t, 'E')) snprintf(t, sizeof t, "%.10f", v);
    return qb_bt_config_set(cfg, name, t, errstr, errstr_size);
}

static qb_err_t bt_job_commission(qb_bt_config_t *cfg, const Qb__V1__BacktestRequest__Commission *c,
                                  char *errstr, size_t errstr_size) {
    if (!c) return QB_OK;
    int parts = (c->per_order != 0) + (c->per_unit != 0) + (c->rate != 0);
    if (c->per_order < 0 || c->per_unit < 0 || c->rate < 0 || c->minimum < 0 || !isfinite(c->rate))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "commission: amounts and rate must be >= 0");
    if (parts > 1)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "commission: only one of per_order, per_unit and rate may be set (the "
                          "engine's models are per trade, per share or percent, each with a "
                          "minimum); use settings \"commission=...\" for the others");
    char spec[160], a[QB_DEC_STRLEN], m[QB_DEC_STRLEN], e[256];
    qb_dec_format(c->minimum, m, sizeof m);
    if (c->per_order) {
        qb_dec_format(c->per_order, a, sizeof a);
        snprintf(spec, sizeof spec, "per_trade:%s", a);
    } else if (c->per_unit) {
        qb_dec_format(c->per_unit, a, sizeof a);
        snprintf(spec, sizeof spec, "per_share:%s:%s", a, m);
    } else if (c->rate) {
        char pct[64];
        bt_double_text(c->rate * 100, pct, sizeof pct);
        if (strchr(pct, 'e') || strchr(pct, 'E')) snprintf(pct, sizeof pct, "%.10f", c->rate * 100);
        snprintf(spec, sizeof spec, "percent:%s:%s", pct, m);
    } else {
        if (c->minimum)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "commission: a minimum needs per_order, per_unit or rate");
        return QB_OK;
    }
    if (qb_bt_config_set(cfg, "commission", spec, e, sizeof e) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "commission: %s", e);
    return QB_OK;
}

static qb_err_t bt_job_space(bt_job_t *j, const Qb__V1__BacktestRequest *rq, char *errstr,
                             size_t errstr_size) {
    char e[512];
    if (qb_search_new(&j->space) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rq->n_grid; i++) {
        const Qb__V1__BacktestRequest__ParamAxis *ax = rq->grid[i];
        size_t cap = 64 + ax->n_values * 32, len = 0;
        for (size_t k = 0; k < ax->n_text_values; k++)
            cap += strlen(ax->text_values[k] ? ax->text_values[k] : "") + 2;
        char *vals = malloc(cap);
        if (!vals) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        vals[0] = 0;
        for (size_t k = 0; k < ax->n_values; k++) {
            char t[48];
            if (!isfinite(ax->values[k])) {
                free(vals);
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "grid[%zu] (%.60s): values must be finite", i,
                                  ax->name ? ax->name : "");
            }
            bt_double_text(ax->values[k], t, sizeof t);
            len += (size_t)snprintf(vals + len, cap - len, "%s%s", len ? "," : "", t);
        }
        for (size_t k = 0; k < ax->n_text_values; k++)
            len += (size_t)snprintf(vals + len, cap - len, "%s%s", len ? "," : "",
                                    ax->text_values[k] ? ax->text_values[k] : "");
        qb_err_t err = qb_search_add(j->space, ax->name ? ax->name : "", vals, e, sizeof e);
        free(vals);
        if (err)
            return qb_err_set(errstr, errstr_size, err == QB_ERR_NOMEM ? err : QB_ERR_INVALID,
                              "grid[%zu]: %s", i, e);
    }
    if (rq->random_samples &&
        qb_search_sample(j->space, rq->random_samples, rq->random_seed, e, sizeof e) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "random_samples: %s", e);
    return QB_OK;
}

static qb_err_t bt_job_spec(bt_job_t *j, const Qb__V1__BacktestRequest__WalkForward *wf,
                            char *errstr, size_t errstr_size) {
    char e[512];
    qb_wf_spec_default(&j->spec);
    j->spec.mode = wf->anchored ? QB_WF_ANCHORED : QB_WF_ROLLING;
    j->spec.partial_last = !wf->drop_partial;
    int steps = wf->train_steps || wf->test_steps || wf->step_steps;
    int times = wf->train_duration || wf->test_duration || wf->step_duration;
    if (steps && times)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walk_forward: lengths are either in steps (train_steps, test_steps, "
                          "step_steps) or durations (train_duration, test_duration, "
                          "step_duration), not both");
    if (wf->train_duration < 0 || wf->test_duration < 0 || wf->step_duration < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "walk_forward: durations must be > 0");
    if (steps) {
        j->spec.by_time = 0;
        j->spec.is_len.steps = wf->train_steps;
        j->spec.oos_len.steps = wf->test_steps;
        j->spec.step.steps = wf->step_steps;
    } else {
        j->spec.by_time = 1;
        j->spec.is_len.ns = wf->train_duration;
        j->spec.oos_len.ns = wf->test_duration;
        j->spec.step.ns = wf->step_duration;
    }
    j->spec.objective = j->obj;
    if (qb_wf_spec_validate(&j->spec, e, sizeof e) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "walk_forward: %s", e);
    j->wf_windows = wf->windows;
    return QB_OK;
}

qb_err_t bt_job_from_request(const Qb__V1__BacktestRequest *rq, bt_job_t *j, char *errstr,
                             size_t errstr_size) {
    char e[512];
    qb_err_t err = QB_OK;
    memset(j, 0, sizeof *j);
#define BAD(...)                                                                   \
    do {                                                                           \
        err = qb_err_set(errstr, errstr_size, QB_ERR_INVALID, __VA_ARGS__);        \
        goto fail;                                                                 \
    } while (0)
    if (!bt_id_ok(rq->run_id))
        BAD("run_id: '%.120s' must be 1-%d of letters, digits, '_', '.', ':', '-'",
            rq->run_id ? rq->run_id : "", BT_RUN_ID_MAX);
    snprintf(j->run_id, sizeof j->run_id, "%s", rq->run_id);
    if (!rq->strategy_name || !*rq->strategy_name) BAD("strategy_name is required");
    if (!rq->n_symbols) BAD("symbols: at least one symbol is required");
    int64_t tf_ns;
    if (!rq->timeframe || qb_timeframe_parse(rq->timeframe, &tf_ns) != QB_OK ||
        strlen(rq->timeframe) >= sizeof j->timeframe)
        BAD("timeframe: '%.16s' is not a timeframe (1m, 5m, 1h, 1d ...)",
            rq->timeframe ? rq->timeframe : "");
    snprintf(j->timeframe, sizeof j->timeframe, "%s", rq->timeframe);
    if (rq->start_time < 0 || rq->end_time < 0 ||
        (rq->end_time && rq->start_time && rq->end_time <= rq->start_time))
        BAD("start_time/end_time: [%lld, %lld) is not a time range", (long long)rq->start_time,
            (long long)rq->end_time);
    j->from = rq->start_time;
    j->to = rq->end_time;
    if (!(j->symbols = calloc(rq->n_symbols, sizeof *j->symbols))) goto nomem;
    for (size_t i = 0; i < rq->n_symbols; i++) {
        qb_symbol_t sym;
        if (qb_symbol_set(&sym, rq->symbols[i] ? rq->symbols[i] : "", e, sizeof e) != QB_OK)
            BAD("symbols[%zu]: %s", i, e);
        for (size_t k = 0; k < j->nsymbols; k++)
            if (!strcmp(j->symbols[k], sym.s)) BAD("symbols[%zu]: %s is listed twice", i, sym.s);
        if (!(j->symbols[j->nsymbols] = strdup(sym.s))) goto nomem;
        j->nsymbols++;
    }

    if (!(j->cfg = malloc(sizeof *j->cfg))) goto nomem;
    qb_bt_config_default(j->cfg);
    if (rq->initial_cash < 0) BAD("initial_cash: must be > 0");
    if (rq->initial_cash > 0) j->cfg->cash = rq->initial_cash;
    if (rq->fill_model == QB__V1__FILL_MODEL__FILL_MODEL_BAR_CLOSE) j->cfg->fill = QB_FILL_CLOSE;
    else j->cfg->fill = QB_FILL_NEXT_OPEN;
    if ((err = bt_job_commission(j->cfg, rq->commission, errstr, errstr_size))) goto fail;
    if (!(rq->slippage_rate >= 0 && rq->slippage_rate < 1))
        BAD("slippage_rate: must be in [0, 1)");
    if (rq->slippage_rate > 0 &&
        bt_set_double(j->cfg, "slippage_bps", rq->slippage_rate * 10000, e, sizeof e) != QB_OK)
        BAD("slippage_rate: %s", e);
    j->cfg->from = j->from;
    j->cfg->to = j->to;
    if (qb_bt_config_add_strategy(j->cfg, rq->strategy_name,
                                  rq->strategy_params_json ? rq->strategy_params_json : "", "", e,
                                  sizeof e) != QB_OK)
        BAD("strategy: %s", e);
    for (size_t i = 0; i < rq->n_settings; i++) {
        const char *kv = rq->settings[i] ? rq->settings[i] : "";
        const char *eq = strchr(kv, '=');
        char key[64];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key)
            BAD("settings[%zu]: '%.80s' is not name=value", i, kv);
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = 0;
        if (!strcmp(key, "from") || !strcmp(key, "to"))
            BAD("settings[%zu]: %s is start_time / end_time", i, key);
        if ((err = qb_bt_config_set(j->cfg, key, eq + 1, e, sizeof e)) != QB_OK)
            BAD("settings[%zu]: %s", i, e);
    }
    if (qb_bt_config_validate(j->cfg, e, sizeof e) != QB_OK) BAD("%s", e);
    { /* the strategy kind and its base parameters, before any bar is read */
        qb_strategy_t *st = NULL;
        if (qb_strategy_new(j->cfg->strategies[0].kind, NULL, &st, e, sizeof e) != QB_OK)
            BAD("strategy_name: %s", e);
        qb_strategy_destroy(st);
    }
    if (qb_search_objective_set(&j->obj, rq->objective && *rq->objective ? rq->objective : "sharpe",
                                rq->min_trades, e, sizeof e) != QB_OK)
        BAD("objective: %s", e);

    if (rq->walk_forward) j->kind = BT_KIND_WF;
    else if (rq->n_grid || rq->random_samples) j->kind = BT_KIND_GRID;
    else j->kind = BT_KIND_BACKTEST;
    if (j->kind != BT_KIND_BACKTEST) {
        if ((err = bt_job_space(j, rq, errstr, errstr_size))) goto fail;
        if (qb_search_nparams(j->space) && j->kind == BT_KIND_GRID) {
            /* every combination refused = a bad request, not a result */
            uint64_t n = qb_search_ncombos(j->space), ok = 0;
            qb_bt_config_t *c = malloc(sizeof *c);
            if (!c) goto nomem;
            char first[400] = "";
            for (uint64_t i = 0; i < n && i < 100000 && !ok; i++) {
                qb_strategy_t *st = NULL;
                qb_err_t x = qb_search_apply(j->space, i, j->cfg, c, e, sizeof e);
                if (!x) x = qb_strategy_new(c->strategies[0].kind, c->strategies[0].params, &st, e,
                                            sizeof e);
                qb_strategy_destroy(st);
                if (!x) ok++;
                else if (!first[0]) snprintf(first, sizeof first, "%.380s", e);
            }
            free(c);
            if (!ok && n <= 100000) BAD("grid: every combination is refused, e.g. %s", first);
        }
    }
    if (j->kind == BT_KIND_WF && (err = bt_job_spec(j, rq->walk_forward, errstr, errstr_size)))
        goto fail;
    return QB_OK;
nomem:
    err = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
fail:
    bt_job_free(j);
    return err;
#undef BAD
}

void bt_job_resolve(bt_job_t *j, const qb_bt_data_t *d) {
    size_t n = 0;
    const qb_time_t *st = qb_bt_data_steps(d, &n);
    if (!st || !n) return;
    if (!j->to) {
        j->to = st[n - 1] + 1;
        j->cfg->to = j->to;
    }
    if (j->kind != BT_KIND_WF || !j->wf_windows) return;
    size_t r0 = 0;
    while (r0 < n && j->cfg->from && st[r0] < j->cfg->from) r0++;
    if (r0 >= n) return;
    uint64_t w1 = j->wf_windows - 1;
    if (!j->spec.by_time) {
        int64_t step = j->spec.step.steps ? j->spec.step.steps : j->spec.oos_len.steps;
        uint64_t need = (uint64_t)j->spec.is_len.steps + w1 * (uint64_t)step +
                        (uint64_t)j->spec.oos_len.steps;
        if (r0 + need < n && st[r0 + need] < j->cfg->to) j->cfg->to = st[r0 + need];
    } else {
        int64_t step = j->spec.step.ns ? j->spec.step.ns : j->spec.oos_len.ns;
        qb_time_t end = st[r0] + j->spec.is_len.ns + (qb_time_t)w1 * step + j->spec.oos_len.ns;
        if (end < j->cfg->to) j->cfg->to = end;
    }
}

static uint64_t bt_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t bt_job_grid_fingerprint(const bt_job_t *j, const qb_bt_data_t *d) {
    uint64_t h = 1469598103934665603ULL;
    size_t cap = 65536;
    char *buf = malloc(cap);
    if (buf) {
        size_t n = qb_bt_config_json(j->cfg, buf, cap);
        h = bt_fnv(h, buf, n < cap ? n : cap - 1);
        uint64_t nc = qb_search_ncombos(j->space);
        for (uint64_t c = 0; c < nc; c++) {
            n = qb_search_combo_json(j->space, c, buf, cap);
            h = bt_fnv(h, buf, n < cap ? n : cap - 1);
        }
        free(buf);
    }
    h = bt_fnv(h, j->obj.metric, strlen(j->obj.metric));
    h = bt_fnv(h, &j->obj.min_trades, sizeof j->obj.min_trades);
    size_t ns = 0;
    const qb_time_t *st = qb_bt_data_steps(d, &ns);
    if (st) h = bt_fnv(h, st, ns * sizeof *st);
    for (uint32_t s = 0; s < qb_bt_data_nsymbols(d); s++) {
        uint64_t nb = qb_bt_data_nbars(d, s);
        h = bt_fnv(h, &nb, sizeof nb);
    }
    return h;
}
