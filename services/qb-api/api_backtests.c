/* api_backtests.c — the backtest routes of the gateway: submit a run to
 * qb-backtest, follow it, read its stored results, get its HTML report.
 *
 * Submit: POST /backtests validates the whole request IN-PROCESS with the
 * same libraries qb-backtest uses (libs/strategy for the kind and its
 * parameters, libs/backtest for the engine settings, the grid, the
 * objective and the walk-forward spec; md.assets / md.bars for the
 * symbols, the timeframe and the period: what bt_bars.c would refuse), in
 * the order services/qb-backtest/bt_job.c does, so a request the gateway
 * accepts is one the service will run: bad input is a 400 naming the JSON
 * field, never a FAILED run and a dead letter. The request goes out as ONE
 * BacktestRequest of kind WHOLE_RUN on backtest.requests (key run_id); a
 * `walk_forward` object makes it a walk-forward, a `grid` (or
 * random_samples) without it a grid search; qb-backtest fans those out
 * itself. There is no separate /walkforward route: a walk-forward is a
 * backtest with a walk_forward object, and its windows are read at
 * /backtests/{run}/windows.
 *
 * Status: qb-backtest writes backtest.runs only when a replica takes the
 * run, so between the 202 and that moment the run exists only as the
 * gateway's audit row (action backtest_submit, target = run id, detail =
 * what was asked): such a run is reported with status "queued". Run ids
 * are text (1-100 of letters, digits, _ . : -; a UUID when the client
 * gives none): the path placeholder is {run}.
 *
 * Results are read from the backtest schema (sql/0008_backtest.sql) once
 * the run is finished (409 before): metrics (the exact stored JSON turned
 * into the display form of qb_bt_metrics_json), trades (cursor by seq),
 * the equity curve (optionally bucketed to N points: the last point of
 * each bucket, the bucket's deepest drawdown), walk-forward windows, and a
 * self-contained HTML report (inline CSS and SVG, no script) drawn from the
 * stored rows; libs/backtest's qb_bt_report_html needs the in-memory
 * result of a run, which a stored run no longer has. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "backtest/qb_backtest.h"
#include "backtest/qb_search.h"
#include "backtest/qb_wf.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "core/qb_uuid.h"
#include "proto/qb_pbjson.h"
#include "proto/qb_proto.h"
#include "qb/v1/backtest.pb-c.h"
#include "strategy/qb_strategy.h"

#define BT_RUN_MAX 100
#define BT_MAX_SYMBOLS 500
#define BT_MAX_SETTINGS 64
#define BT_MAX_AXES 16
#define BT_MAX_AXIS_VALUES 1000
#define BT_REPORT_POINTS 1200
#define BT_REPORT_TRADES 2000

/* ---- small helpers ------------------------------------------------------------------- */
static int run_id_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BT_RUN_MAX) return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

/* The {run} placeholder, checked; NULL after a 400. */
static const char *run_param(api_req_t *r) {
    const char *run = api_param(r, "run");
    if (!run_id_ok(run)) {
        api_error(r, 400, "run", "run: '%.40s' is not a run id (1-%d of letters, digits, _ . : -)",
                  run ? run : "", BT_RUN_MAX);
        return NULL;
    }
    return run;
}

/* A JSON scalar as the text an engine setting / grid value takes. 0 when it
 * is not a scalar (or a string holding a comma, which the grid syntax
 * cannot carry). */
static int scalar_text(const cJSON *v, char *buf, size_t cap, int allow_comma) {
    if (cJSON_IsString(v)) {
        if (!allow_comma && strchr(v->valuestring, ',')) return 0;
        if (strlen(v->valuestring) >= cap) return 0;
        snprintf(buf, cap, "%s", v->valuestring);
        return 1;
    }
    if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
        return 1;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15) {
            snprintf(buf, cap, "%.0f", d);
            return 1;
        }
        for (int p = 1; p <= 17; p++) { /* the shortest text that reads back */
            snprintf(buf, cap, "%.*g", p, d);
            if (strtod(buf, NULL) == d) break;
        }
        if (strchr(buf, 'e') || strchr(buf, 'E')) snprintf(buf, cap, "%.10f", d);
        return 1;
    }
    return 0;
}

/* A walk-forward length: an integer (time steps) or "90d" / "4w" / "12h" /
 * "30m" (a duration). 0 absent, 1 ok, -1 bad (400 answered). */
static int wf_len(api_req_t *r, const cJSON *wf, const char *key, uint32_t *steps, int64_t *ns) {
    char field[48];
    snprintf(field, sizeof field, "walk_forward.%s", key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(wf, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != floor(d) || d < 1 || d > 4294967295.0) {
            api_error(r, 400, field, "%s: a whole number of time steps >= 1", field);
            return -1;
        }
        *steps = (uint32_t)d;
        return 1;
    }
    if (cJSON_IsString(v)) {
        char *end;
        long long n = strtoll(v->valuestring, &end, 10);
        int64_t unit = !strcmp(end, "d")   ? QB_NS_PER_DAY
                       : !strcmp(end, "w") ? 7 * QB_NS_PER_DAY
                       : !strcmp(end, "h") ? QB_NS_PER_HOUR
                       : !strcmp(end, "m") ? QB_NS_PER_MIN
                                           : 0;
        if (end != v->valuestring && n >= 1 && unit && n < INT64_MAX / unit) {
            *ns = n * unit;
            return 1;
        }
        if (end != v->valuestring && n >= 1 && !*end && n <= 4294967295LL) {
            *steps = (uint32_t)n;
            return 1;
        }
    }
    api_error(r, 400, field,
              "%s: time steps (an integer) or a duration such as \"90d\", \"4w\", \"12h\", "
              "\"30m\"",
              field);
    return -1;
}

/* ---- POST /backtests -------------------------------------------------------------------- */
typedef struct bt_sub_s {
    Qb__V1__BacktestRequest rq;
    Qb__V1__BacktestRequest__WalkForward wf;
    char run_id[BT_RUN_MAX + 1];
    char *params;                 /* malloc'd JSON text */
    char *symbols[BT_MAX_SYMBOLS];
    size_t nsymbols;
    char *settings[BT_MAX_SETTINGS];
    size_t nsettings;
    Qb__V1__BacktestRequest__ParamAxis axes[BT_MAX_AXES];
    Qb__V1__BacktestRequest__ParamAxis *axp[BT_MAX_AXES];
    char **axvals[BT_MAX_AXES];
    qb_bt_config_t cfg, tmp;
    qb_search_t *space;
    const char *kind_name;        /* backtest | walk_forward | grid */
} bt_sub_t;

static void sub_free(bt_sub_t *s) {
    free(s->params);
    for (size_t i = 0; i < s->nsymbols; i++) free(s->symbols[i]);
    for (size_t i = 0; i < s->nsettings; i++) free(s->settings[i]);
    for (size_t a = 0; a < s->rq.n_grid; a++) {
        for (size_t k = 0; k < s->axes[a].n_text_values; k++) free(s->axvals[a][k]);
        free(s->axvals[a]);
    }
    qb_search_destroy(s->space);
}

/* Push a setting "name=value" after checking it on the config. */
static int sub_setting(api_req_t *r, bt_sub_t *s, const char *field, const char *name,
                       const char *value) {
    char e[512];
    if (s->nsettings == BT_MAX_SETTINGS) {
        api_error(r, 400, "settings", "settings: at most %d", BT_MAX_SETTINGS);
        return 0;
    }
    if (qb_bt_config_set(&s->cfg, name, value, e, sizeof e) != QB_OK) {
        api_error(r, 400, field, "%s: %s", field, e);
        return 0;
    }
    size_t n = strlen(name) + strlen(value) + 2;
    char *kv = malloc(n);
    if (!kv) {
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    snprintf(kv, n, "%s=%s", name, value);
    s->settings[s->nsettings++] = kv;
    return 1;
}

static int sub_symbols(api_req_t *r, bt_sub_t *s) {
    cJSON *v = api_body_get(r, "symbols");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1) {
        api_error(r, 400, "symbols", "symbols: a non-empty array of symbols is required");
        return 0;
    }
    if (cJSON_GetArraySize(v) > BT_MAX_SYMBOLS) {
        api_error(r, 400, "symbols", "symbols: at most %d", BT_MAX_SYMBOLS);
        return 0;
    }
    size_t i = 0;
    for (cJSON *it = v->child; it; it = it->next, i++) {
        qb_symbol_t sym;
        char e[256], field[32];
        snprintf(field, sizeof field, "symbols[%zu]", i);
        if (!cJSON_IsString(it) ||
            qb_symbol_set(&sym, it->valuestring, e, sizeof e) != QB_OK) {
            api_error(r, 400, field, "%s: not a symbol", field);
            return 0;
        }
        for (size_t k = 0; k < s->nsymbols; k++)
            if (!strcmp(s->symbols[k], sym.s)) {
                api_error(r, 400, field, "%s: %s is listed twice", field, sym.s);
                return 0;
            }
        if (!(s->symbols[s->nsymbols] = strdup(sym.s))) {
            api_error(r, 500, NULL, "out of memory");
            return 0;
        }
        s->nsymbols++;
    }
    return 1;
}

/* What would fail the run when its bars are loaded: a symbol md.assets does
 * not know, no bar of the timeframe, no bar in [start, end). */
static int sub_bars_exist(api_req_t *r, bt_sub_t *s, const char *tf, int64_t start, int64_t end) {
    size_t cap = 16 + s->nsymbols * (QB_SYMBOL_MAX + 4), len = 0;
    char *arr = malloc(cap), t0[24], t1[24];
    if (!arr) {
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    len += (size_t)snprintf(arr + len, cap - len, "{");
    for (size_t k = 0; k < s->nsymbols; k++)
        len += (size_t)snprintf(arr + len, cap - len, "%s\"%s\"", k ? "," : "", s->symbols[k]);
    snprintf(arr + len, cap - len, "}");
    snprintf(t0, sizeof t0, "%lld", (long long)start);
    snprintf(t1, sizeof t1, "%lld", (long long)end);
    const char *p[] = {arr, tf, t0, t1};
    PGresult *res = api_query(
        r,
        "SELECT (SELECT string_agg(s, ', ' ORDER BY o) FROM unnest($1::text[]) WITH ORDINALITY "
        "AS u(s, o) WHERE NOT EXISTS (SELECT 1 FROM md.assets a WHERE a.symbol = u.s)), "
        "EXISTS (SELECT 1 FROM md.assets a JOIN md.bars b ON b.asset_id = a.asset_id WHERE "
        "a.symbol = ANY($1::text[]) AND b.timeframe = $2), EXISTS (SELECT 1 FROM md.assets a "
        "JOIN md.bars b ON b.asset_id = a.asset_id WHERE a.symbol = ANY($1::text[]) AND "
        "b.timeframe = $2 AND ($3::bigint = 0 OR b.ts >= to_timestamp($3::bigint / 1e9)) AND "
        "($4::bigint = 0 OR b.ts < to_timestamp($4::bigint / 1e9)))",
        4, p);
    free(arr);
    if (!res) return 0;
    int ok = 0;
    if (!PQgetisnull(res, 0, 0))
        api_error(r, 400, "symbols", "symbols: unknown to md.assets (no bars stored): %.300s",
                  PQgetvalue(res, 0, 0));
    else if (PQgetvalue(res, 0, 1)[0] != 't')
        api_error(r, 400, "timeframe", "timeframe: no %s bars of these symbols in md.bars", tf);
    else if (PQgetvalue(res, 0, 2)[0] != 't')
        api_error(r, 400, start ? "start" : "end",
                  "%s: no %s bars of these symbols in md.bars between start and end",
                  start ? "start" : "end", tf);
    else
        ok = 1;
    PQclear(res);
    return ok;
}

static int sub_grid(api_req_t *r, bt_sub_t *s) {
    cJSON *g = api_body_get(r, "grid");
    char e[512];
    if (qb_search_new(&s->space) != QB_OK) {
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    if (g && !cJSON_IsNull(g)) {
        if (!cJSON_IsObject(g)) {
            api_error(r, 400, "grid",
                      "grid: an object of parameter name -> array of values, e.g. "
                      "{\"fast\":[5,10],\"slow\":[30,50]}");
            return 0;
        }
        for (cJSON *ax = g->child; ax; ax = ax->next) {
            char field[96];
            snprintf(field, sizeof field, "grid.%.80s", ax->string);
            size_t a = s->rq.n_grid;
            if (a == BT_MAX_AXES) {
                api_error(r, 400, "grid", "grid: at most %d parameters", BT_MAX_AXES);
                return 0;
            }
            int nv = cJSON_IsArray(ax) ? cJSON_GetArraySize(ax) : 0;
            if (nv < 1 || nv > BT_MAX_AXIS_VALUES) {
                api_error(r, 400, field, "%s: an array of 1-%d values", field, BT_MAX_AXIS_VALUES);
                return 0;
            }
            qb__v1__backtest_request__param_axis__init(&s->axes[a]);
            s->axes[a].name = ax->string;
            if (!(s->axvals[a] = calloc((size_t)nv, sizeof(char *)))) {
                api_error(r, 500, NULL, "out of memory");
                return 0;
            }
            s->axp[a] = &s->axes[a];
            s->rq.n_grid++;
            size_t cap = 1, len = 0;
            for (cJSON *v = ax->child; v; v = v->next) {
                char t[256];
                if (!scalar_text(v, t, sizeof t, 0)) {
                    api_error(r, 400, field,
                              "%s: values are numbers, booleans or strings without commas",
                              field);
                    return 0;
                }
                cap += strlen(t) + 1;
                if (!(s->axvals[a][s->axes[a].n_text_values] = strdup(t))) {
                    api_error(r, 500, NULL, "out of memory");
                    return 0;
                }
                s->axes[a].n_text_values++;
            }
            s->axes[a].text_values = s->axvals[a];
            char *joined = malloc(cap);
            if (!joined) {
                api_error(r, 500, NULL, "out of memory");
                return 0;
            }
            joined[0] = 0;
            for (size_t k = 0; k < s->axes[a].n_text_values; k++)
                len += (size_t)snprintf(joined + len, cap - len, "%s%s", k ? "," : "",
                                        s->axvals[a][k]);
            qb_err_t err = qb_search_add(s->space, ax->string, joined, e, sizeof e);
            free(joined);
            if (err) {
                api_error(r, 400, field, "%s: %s", field, e);
                return 0;
            }
        }
        s->rq.grid = s->axp;
    }
    if (s->rq.random_samples &&
        qb_search_sample(s->space, s->rq.random_samples, s->rq.random_seed, e, sizeof e) != QB_OK) {
        api_error(r, 400, "random_samples", "random_samples: %s", e);
        return 0;
    }
    if (!qb_search_nparams(s->space)) return 1;
    /* every combination refused = a bad request, not a result */
    uint64_t n = qb_search_ncombos(s->space), ok = 0;
    char first[400] = "";
    for (uint64_t i = 0; i < n && i < 100000 && !ok; i++) {
        qb_strategy_t *st = NULL;
        qb_err_t x = qb_search_apply(s->space, i, &s->cfg, &s->tmp, e, sizeof e);
        if (!x)
            x = qb_strategy_new(s->tmp.strategies[0].kind, s->tmp.strategies[0].params, &st, e,
                                sizeof e);
        qb_strategy_destroy(st);
        if (!x) ok++;
        else if (!first[0]) snprintf(first, sizeof first, "%.380s", e);
    }
    if (!ok && n <= 100000) {
        api_error(r, 400, "grid", "grid: every combination is refused, e.g. %s", first);
        return 0;
    }
    return 1;
}

static int sub_walk_forward(api_req_t *r, bt_sub_t *s, const qb_search_objective_t *obj) {
    cJSON *w = api_body_get(r, "walk_forward");
    if (!w || cJSON_IsNull(w)) return 1;
    if (!cJSON_IsObject(w)) {
        api_error(r, 400, "walk_forward",
                  "walk_forward: an object {windows, train, test, step, anchored, drop_partial}");
        return 0;
    }
    static const char *const keys[] = {"windows", "train", "test", "step", "anchored",
                                       "drop_partial", NULL};
    for (cJSON *m = w->child; m; m = m->next) {
        int known = 0;
        for (int i = 0; keys[i]; i++) known |= !strcmp(keys[i], m->string);
        if (!known) {
            char field[96];
            snprintf(field, sizeof field, "walk_forward.%.60s", m->string);
            api_error(r, 400, field, "unknown field '%.60s'", field);
            return 0;
        }
    }
    Qb__V1__BacktestRequest__WalkForward *wf = &s->wf;
    qb__v1__backtest_request__walk_forward__init(wf);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, "windows");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble < 1 || v->valuedouble > 100000) {
            api_error(r, 400, "walk_forward.windows",
                      "walk_forward.windows: an integer in [1, 100000] (absent: as many as fit)");
            return 0;
        }
        wf->windows = (uint32_t)v->valuedouble;
    }
    for (int i = 0; i < 2; i++) {
        const char *k = i ? "drop_partial" : "anchored";
        v = cJSON_GetObjectItemCaseSensitive(w, k);
        if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v)) {
            char field[48];
            snprintf(field, sizeof field, "walk_forward.%s", k);
            api_error(r, 400, field, "%s: expected true or false", field);
            return 0;
        }
        if (i) wf->drop_partial = cJSON_IsTrue(v);
        else wf->anchored = cJSON_IsTrue(v);
    }
    int a = wf_len(r, w, "train", &wf->train_steps, &wf->train_duration);
    if (a < 0) return 0;
    int b = wf_len(r, w, "test", &wf->test_steps, &wf->test_duration);
    if (b < 0) return 0;
    if (wf_len(r, w, "step", &wf->step_steps, &wf->step_duration) < 0) return 0;
    if (!a || !b) {
        api_error(r, 400, a ? "walk_forward.test" : "walk_forward.train",
                  "walk_forward.%s: required", a ? "test" : "train");
        return 0;
    }
    int steps = wf->train_steps || wf->test_steps || wf->step_steps;
    int times = wf->train_duration || wf->test_duration || wf->step_duration;
    if (steps && times) {
        api_error(r, 400, "walk_forward",
                  "walk_forward: train, test and step are all time steps (integers) or all "
                  "durations (\"90d\"), not both");
        return 0;
    }
    qb_wf_spec_t spec;
    char e[512];
    qb_wf_spec_default(&spec);
    spec.mode = wf->anchored ? QB_WF_ANCHORED : QB_WF_ROLLING;
    spec.partial_last = !wf->drop_partial;
    spec.by_time = !steps;
    if (steps) {
        spec.is_len.steps = wf->train_steps;
        spec.oos_len.steps = wf->test_steps;
        spec.step.steps = wf->step_steps;
    } else {
        spec.is_len.ns = wf->train_duration;
        spec.oos_len.ns = wf->test_duration;
        spec.step.ns = wf->step_duration;
    }
    spec.objective = *obj;
    if (qb_wf_spec_validate(&spec, e, sizeof e) != QB_OK) {
        api_error(r, 400, "walk_forward", "walk_forward: %s", e);
        return 0;
    }
    s->rq.walk_forward = wf;
    return 1;
}

static int sub_settings(api_req_t *r, bt_sub_t *s) {
    cJSON *st = api_body_get(r, "settings");
    if (!st || cJSON_IsNull(st)) return 1;
    if (!cJSON_IsObject(st)) {
        api_error(r, 400, "settings",
                  "settings: an object of engine settings, e.g. {\"sizing\":\"percent_equity\","
                  "\"sizing_value\":0.1}");
        return 0;
    }
    for (cJSON *m = st->child; m; m = m->next) {
        char field[96], t[256];
        snprintf(field, sizeof field, "settings.%.60s", m->string);
        if (!strcmp(m->string, "from") || !strcmp(m->string, "to")) {
            api_error(r, 400, field, "%s: use start / end", field);
            return 0;
        }
        if (!scalar_text(m, t, sizeof t, 1)) {
            api_error(r, 400, field, "%s: expected a string, number or boolean", field);
            return 0;
        }
        if (!sub_setting(r, s, field, m->string, t)) return 0;
    }
    return 1;
}

static void h_backtests_submit(api_req_t *r) {
    static const char *const allowed[] = {
        "run_id",   "strategy", "params",     "symbols",        "timeframe",   "start",
        "end",      "initial_cash", "fill",   "commission",     "slippage_bps", "settings",
        "objective", "min_trades", "grid",    "random_samples", "random_seed", "walk_forward",
        NULL};
    bt_sub_t *s = calloc(1, sizeof *s);
    if (!s) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    qb__v1__backtest_request__init(&s->rq);
    const char *run_id = NULL, *strategy = NULL, *tf = NULL, *fill = NULL, *commission = NULL;
    const char *objective = NULL;
    int64_t start = 0, end = 0, cash = 0, min_trades = 0, samples = 0, seed = 0;
    double slip = -1;
    char e[512];
    if (!api_body_only(r, allowed) || !api_body_str(r, "run_id", 0, BT_RUN_MAX, &run_id) ||
        !api_body_str(r, "strategy", 1, 64, &strategy) ||
        !api_body_str(r, "timeframe", 1, 15, &tf) || !api_body_time(r, "start", 0, &start) ||
        !api_body_time(r, "end", 0, &end) || !api_body_dec(r, "initial_cash", 0, 1, &cash) ||
        !api_body_enum(r, "fill", 0, "next_open|close", &fill) ||
        !api_body_str(r, "commission", 0, 100, &commission) ||
        !api_body_num(r, "slippage_bps", 0, 0, 9999, &slip) ||
        !api_body_str(r, "objective", 0, 31, &objective) ||
        !api_body_int(r, "min_trades", 0, 0, 1000000, &min_trades) ||
        !api_body_int(r, "random_samples", 0, 1, 10000000, &samples) ||
        !api_body_int(r, "random_seed", 0, 0, INT64_MAX, &seed))
        goto out;
    /* run id */
    if (run_id && !run_id_ok(run_id)) {
        api_error(r, 400, "run_id", "run_id: 1-%d of letters, digits, _ . : -", BT_RUN_MAX);
        goto out;
    }
    if (run_id) snprintf(s->run_id, sizeof s->run_id, "%s", run_id);
    else qb_uuid_v4(s->run_id);
    /* strategy and its parameters */
    if (!qb_strategy_kind_find(strategy)) {
        char known[1024] = "";
        size_t len = 0;
        for (int i = 0; i < qb_strategy_kind_count() && len < sizeof known; i++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                                    qb_strategy_kind_name(qb_strategy_kind_at(i)));
        api_error(r, 400, "strategy", "strategy: unknown '%.64s' (known: %s)", strategy, known);
        goto out;
    }
    cJSON *pv = api_body_get(r, "params");
    if (pv && !cJSON_IsNull(pv) && !cJSON_IsObject(pv)) {
        api_error(r, 400, "params", "params: an object of the strategy's parameters");
        goto out;
    }
    if (!(s->params = pv && cJSON_IsObject(pv) ? cJSON_PrintUnformatted(pv) : strdup(""))) {
        api_error(r, 500, NULL, "out of memory");
        goto out;
    }
    int64_t tf_ns;
    if (qb_timeframe_parse(tf, &tf_ns) != QB_OK) {
        api_error(r, 400, "timeframe", "timeframe: '%.16s' is not a timeframe (1m, 5m, 1h, 1d ...)",
                  tf);
        goto out;
    }
    if (start && end && end <= start) {
        api_error(r, 400, "end", "end: must be after start");
        goto out;
    }
    if (!sub_symbols(r, s) || !sub_bars_exist(r, s, tf, start, end)) goto out;
    /* the engine config, built as qb-backtest builds it */
    qb_bt_config_default(&s->cfg);
    if (cash) s->cfg.cash = cash;
    s->cfg.fill = fill && !strcmp(fill, "close") ? QB_FILL_CLOSE : QB_FILL_NEXT_OPEN;
    s->cfg.from = start;
    s->cfg.to = end;
    if (qb_bt_config_add_strategy(&s->cfg, strategy, s->params, "", e, sizeof e) != QB_OK) {
        api_error(r, 400, "params", "params: %s", e);
        goto out;
    }
    if (commission && !sub_setting(r, s, "commission", "commission", commission)) goto out;
    if (slip >= 0) {
        char t[64];
        cJSON *sv = api_body_get(r, "slippage_bps");
        if (!scalar_text(sv, t, sizeof t, 0) ||
            !sub_setting(r, s, "slippage_bps", "slippage_bps", t))
            goto out;
    }
    if (!sub_settings(r, s)) goto out;
    if (qb_bt_config_validate(&s->cfg, e, sizeof e) != QB_OK) {
        api_error(r, 400, "settings", "settings: %s", e);
        goto out;
    }
    {
        qb_strategy_t *st = NULL;
        if (qb_strategy_new(strategy, s->params, &st, e, sizeof e) != QB_OK) {
            api_error(r, 400, "params", "params: %s", e);
            goto out;
        }
        qb_strategy_destroy(st);
    }
    qb_search_objective_t obj;
    if (qb_search_objective_set(&obj, objective && *objective ? objective : "sharpe", min_trades,
                                e, sizeof e) != QB_OK) {
        api_error(r, 400, "objective", "objective: %s", e);
        goto out;
    }
    s->rq.random_samples = (uint64_t)samples;
    s->rq.random_seed = (uint64_t)seed;
    if (!sub_grid(r, s) || !sub_walk_forward(r, s, &obj)) goto out;
    s->kind_name = s->rq.walk_forward                       ? "walk_forward"
                   : (s->rq.n_grid || s->rq.random_samples) ? "grid"
                                                            : "backtest";
    if (!strcmp(s->kind_name, "grid") && !qb_search_nparams(s->space)) {
        api_error(r, 400, "grid", "grid: a search needs parameters (random_samples draws from "
                                  "the grid)");
        goto out;
    }
    /* a run id is used once */
    {
        const char *p[] = {s->run_id};
        PGresult *res = api_query(r,
                                  "SELECT (SELECT count(*) FROM backtest.runs WHERE run_id = $1) "
                                  "+ (SELECT count(*) FROM api.audit WHERE action = "
                                  "'backtest_submit' AND target = $1)",
                                  1, p);
        if (!res) goto out;
        int taken = atol(PQgetvalue(res, 0, 0)) > 0;
        PQclear(res);
        if (taken) {
            api_error(r, 409, "run_id", "run_id: a run '%s' exists", s->run_id);
            goto out;
        }
    }
    /* the request */
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qb-api", 0, NULL);
    char by[160];
    snprintf(by, sizeof by, "%s%s%s", r->who.name, r->who.key_id[0] ? " key " : "",
             r->who.key_id);
    s->rq.header = &h.pb;
    s->rq.run_id = s->run_id;
    s->rq.kind = QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN;
    s->rq.strategy_name = (char *)strategy;
    s->rq.strategy_params_json = s->params;
    s->rq.n_symbols = s->nsymbols;
    s->rq.symbols = s->symbols;
    s->rq.timeframe = (char *)tf;
    s->rq.start_time = start;
    s->rq.end_time = end;
    s->rq.initial_cash = cash;
    s->rq.fill_model = fill && !strcmp(fill, "close")
                           ? QB__V1__FILL_MODEL__FILL_MODEL_BAR_CLOSE
                           : QB__V1__FILL_MODEL__FILL_MODEL_NEXT_BAR_OPEN;
    s->rq.objective = (char *)(objective ? objective : "");
    s->rq.min_trades = (uint32_t)min_trades;
    s->rq.requested_by = by;
    s->rq.n_settings = s->nsettings;
    s->rq.settings = s->settings;
    if (!api_send(r, "backtest.requests", s->run_id, &s->rq.base)) goto out;
    /* the audit row is also the run's "queued" state until qb-backtest takes it */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", s->kind_name);
    cJSON_AddStringToObject(d, "strategy", strategy);
    cJSON_AddItemToObject(d, "params", *s->params ? cJSON_Parse(s->params) : cJSON_CreateObject());
    cJSON_AddItemToObject(d, "symbols",
                          cJSON_CreateStringArray((const char *const *)s->symbols,
                                                  (int)s->nsymbols));
    cJSON_AddStringToObject(d, "timeframe", tf);
    char t0[48] = "", t1[48] = "";
    if (start) qb_time_format(start, t0, sizeof t0);
    if (end) qb_time_format(end, t1, sizeof t1);
    cJSON_AddItemToObject(d, "start", start ? cJSON_CreateString(t0) : cJSON_CreateNull());
    cJSON_AddItemToObject(d, "end", end ? cJSON_CreateString(t1) : cJSON_CreateNull());
    cJSON_AddStringToObject(d, "requested_by", by);
    cJSON_AddStringToObject(d, "event_id", h.pb.event_id);
    api_audit(r, "backtest_submit", s->run_id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run_id", s->run_id);
    cJSON_AddStringToObject(o, "kind", s->kind_name);
    cJSON_AddStringToObject(o, "status", "queued");
    if (s->rq.n_grid || s->rq.random_samples)
        cJSON_AddNumberToObject(o, "combinations", (double)qb_search_ncombos(s->space));
    char url[256];
    snprintf(url, sizeof url, "/api/v1/backtests/%s", s->run_id);
    snprintf(r->location, sizeof r->location, "%s", url);
    cJSON_AddStringToObject(o, "status_url", url);
    api_json(r, 202, o);
out:
    sub_free(s);
    free(s);
}

/* ---- reading ----------------------------------------------------------------------------- */
/* Replace the text member `key` of o by the JSON it holds (params columns
 * are JSON text); left as it is when it does not parse; "" becomes {}. */
static void json_text_member(cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) return;
    cJSON *j = *v->valuestring ? cJSON_Parse(v->valuestring) : cJSON_CreateObject();
    if (j) cJSON_ReplaceItemInObjectCaseSensitive(o, key, j);
}

/* Stored exact metrics JSON -> display form (qb_bt_metrics_json); NULL when
 * absent or unreadable. *m gets the values when non-NULL. */
static cJSON *metrics_display(const char *exact, qb_bt_metrics_t *m) {
    if (!exact || !*exact) return NULL;
    qb_bt_metrics_t x;
    char e[256];
    if (qb_search_metrics_parse(exact, strlen(exact), &x, e, sizeof e) != QB_OK) return NULL;
    if (m) *m = x;
    char buf[8192];
    size_t n = qb_bt_metrics_json(&x, buf, sizeof buf);
    if (n >= sizeof buf) return NULL;
    return cJSON_Parse(buf);
}

/* The stored request (bytea in its text form) as JSON; NULL when unreadable. */
static cJSON *request_json(const char *text) {
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)text, &n);
    if (!b) return NULL;
    Qb__V1__BacktestRequest *rq = qb__v1__backtest_request__unpack(NULL, n, b);
    PQfreemem(b);
    if (!rq) return NULL;
    cJSON *j = qb_pbjson_to_cjson(&rq->base, QB_PBJSON_OMIT_DEFAULTS);
    qb__v1__backtest_request__free_unpacked(rq, NULL);
    if (j) cJSON_DeleteItemFromObjectCaseSensitive(j, "header");
    return j;
}

#define RUN_COLS                                                                                 \
    "r.run_id, r.kind, r.status, r.progress, r.units_done, r.units_total, r.bars, r.strategy, "  \
    "r.params, to_json(r.symbols) AS symbols, r.timeframe, api.ns_text(NULLIF(r.start_ts, 0)) "  \
    "AS start, api.ns_text(NULLIF(r.end_ts, 0)) AS \"end\", coalesce(NULLIF(r.requested_by, "   \
    "''), (SELECT a.detail->>'requested_by' FROM api.audit a WHERE a.action = "                \
    "'backtest_submit' AND a.target = r.run_id LIMIT 1)) AS requested_by, r.error, "         \
    "r.created_at, r.updated_at, r.finished_at"
#define QUEUED_COLS                                                                              \
    "a.target AS run_id, a.detail->>'kind' AS kind, 'queued'::text AS status, 0::float8 AS "     \
    "progress, 0::bigint AS units_done, 0::bigint AS units_total, 0::bigint AS bars, "           \
    "a.detail->>'strategy' AS strategy, (a.detail->'params')::text AS params, "                 \
    "(a.detail->'symbols')::json AS symbols, a.detail->>'timeframe' AS timeframe, "              \
    "a.detail->>'start' AS start, a.detail->>'end' AS \"end\", a.detail->>'requested_by' AS "    \
    "requested_by, NULL::text AS error, a.at AS created_at, a.at AS updated_at, "                \
    "NULL::timestamptz AS finished_at"

static void h_backtests_list(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    const char *cur = api_q_str(r, "cursor"), *status = api_q_str(r, "status"),
               *kind = api_q_str(r, "kind"), *strategy = api_q_str(r, "strategy");
    char plain[256] = "", lim[24], *c_id = NULL;
    if (cur) {
        if (!api_cursor_decode(r, cur, plain, sizeof plain)) return;
        char *bar = strchr(plain, '|');
        char *end = NULL;
        if (bar) {
            *bar = 0;
            c_id = bar + 1;
            strtoll(plain, &end, 10);
        }
        if (!bar || !*plain || *end || strlen(plain) > 18 || !run_id_ok(c_id)) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *p[] = {status, kind, strategy, cur ? plain : NULL, c_id, lim};
    PGresult *res = api_query(
        r,
        "WITH x AS (SELECT " RUN_COLS " FROM backtest.runs r UNION ALL SELECT " QUEUED_COLS
        " FROM api.audit a WHERE a.action = 'backtest_submit' AND NOT EXISTS (SELECT 1 FROM "
        "backtest.runs r WHERE r.run_id = a.target)), y AS (SELECT x.*, (extract(epoch FROM "
        "x.created_at) * 1000000)::bigint AS k_us FROM x) "
        "SELECT y.run_id, y.kind, y.status, y.progress, y.strategy, y.params, y.symbols, "
        "y.timeframe, y.start, y.\"end\", y.requested_by, y.error, y.created_at, y.finished_at, "
        "m.total_return, m.sharpe, m.max_dd_pct AS max_drawdown, m.trades_closed AS trades, "
        "api.px(m.final_equity) AS final_equity, y.k_us FROM y LEFT JOIN backtest.metrics m "
        "ON m.run_id = y.run_id WHERE ($1::text IS NULL OR y.status = $1) AND ($2::text IS "
        "NULL OR y.kind = $2) AND ($3::text IS NULL OR y.strategy = $3) AND ($4::bigint IS "
        "NULL OR (y.k_us, y.run_id) < ($4::bigint, $5::text)) ORDER BY y.k_us DESC, y.run_id "
        "DESC LIMIT $6::int",
        6, p);
    if (!res) return;
    int n = PQntuples(res), kc = PQfnumber(res, "k_us"), ic = PQfnumber(res, "run_id");
    cJSON *items = api_pg_rows_json(res);
    for (cJSON *it = items->child; it; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(it, "k_us");
        json_text_member(it, "params");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", items);
    if (n == limit && n > 0) {
        char key[160], enc[256];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(res, n - 1, kc), PQgetvalue(res, n - 1, ic));
        api_cursor_encode(key, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

/* The run's row as JSON (status "queued" from the audit row when the
 * service has not taken it yet); NULL after answering (404 / 5xx). With
 * `request`: the stored request too. */
static cJSON *run_get(api_req_t *r, const char *run, int request) {
    const char *p[] = {run};
    PGresult *res = api_query(r,
                              "SELECT " RUN_COLS ", r.load_ms, r.run_ms, r.request "
                              "FROM backtest.runs r WHERE r.run_id = $1",
                              1, p);
    if (!res) return NULL;
    cJSON *o = NULL;
    if (PQntuples(res) == 1) {
        o = api_pg_row_json(res, 0);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "request");
        if (request) {
            cJSON *j = request_json(PQgetvalue(res, 0, PQfnumber(res, "request")));
            cJSON_AddItemToObject(o, "request", j ? j : cJSON_CreateNull());
        }
        PQclear(res);
    } else {
        PQclear(res);
        res = api_query(r,
                        "SELECT " QUEUED_COLS ", a.detail AS request FROM api.audit a WHERE "
                        "a.action = 'backtest_submit' AND a.target = $1 ORDER BY a.audit_id "
                        "LIMIT 1",
                        1, p);
        if (!res) return NULL;
        if (PQntuples(res) == 1) {
            o = api_pg_row_json(res, 0);
            if (!request) cJSON_DeleteItemFromObjectCaseSensitive(o, "request");
        }
        PQclear(res);
        if (!o) {
            api_error(r, 404, "run", "no backtest run '%s'", run);
            return NULL;
        }
    }
    json_text_member(o, "params");
    return o;
}

/* A numeric member: api_pg_row_json makes float columns raw JSON text. */
static double num_member(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsRaw(v) && v->valuestring) return strtod(v->valuestring, NULL);
    return 0;
}

static const char *run_status(const cJSON *run) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(run, "status");
    return cJSON_IsString(s) ? s->valuestring : "";
}
static const char *run_kind(const cJSON *run) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(run, "kind");
    return cJSON_IsString(s) ? s->valuestring : "";
}

/* The run when it is finished; otherwise a 409 saying where it is. */
static cJSON *run_finished(api_req_t *r, const char *run) {
    cJSON *o = run_get(r, run, 0);
    if (!o) return NULL;
    const char *st = run_status(o);
    if (!strcmp(st, "finished")) return o;
    if (!strcmp(st, "failed")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        api_error(r, 409, NULL, "run %s failed: %.300s", run,
                  cJSON_IsString(e) ? e->valuestring : "(no reason stored)");
    } else {
        api_error(r, 409, NULL, "run %s is %s (%.0f%% done): no result yet", run, st,
                  num_member(o, "progress") * 100);
    }
    cJSON_Delete(o);
    return NULL;
}

static void h_backtests_get(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_get(r, run, 1);
    if (!o) return;
    cJSON_AddNumberToObject(o, "percent", round(num_member(o, "progress") * 1000) / 10);
    cJSON_AddBoolToObject(o, "done", !strcmp(run_status(o), "finished") ||
                                         !strcmp(run_status(o), "failed"));
    api_json(r, 200, o);
}

static void h_backtests_result(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_finished(r, run);
    if (!o) return;
    const char *p[] = {run};
    PGresult *res = api_query(
        r,
        "SELECT m.params, m.metrics, m.benchmark, m.summary, (SELECT count(*) FROM "
        "backtest.trades t WHERE t.run_id = $1) AS trades, (SELECT count(*) FROM "
        "backtest.equity e WHERE e.run_id = $1) AS equity_points, (SELECT count(*) FROM "
        "backtest.windows w WHERE w.run_id = $1) AS windows FROM backtest.metrics m WHERE "
        "m.run_id = $1",
        1, p);
    if (!res) goto out;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "run", "run %s has no stored result", run);
        goto out;
    }
    cJSON *res_o = cJSON_CreateObject();
    cJSON_AddStringToObject(res_o, "run_id", run);
    cJSON_AddStringToObject(res_o, "kind", run_kind(o));
    cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "strategy");
    cJSON_AddStringToObject(res_o, "strategy", cJSON_IsString(st) ? st->valuestring : "");
    cJSON_AddStringToObject(res_o, "best_params_note",
                            !strcmp(run_kind(o), "grid") ? "the best combination"
                            : !strcmp(run_kind(o), "walk_forward")
                                ? "the last window's selection"
                                : "the parameters run");
    cJSON_AddStringToObject(res_o, "params", PQgetvalue(res, 0, 0));
    json_text_member(res_o, "params");
    cJSON *m = metrics_display(PQgetvalue(res, 0, 1), NULL);
    cJSON_AddItemToObject(res_o, "metrics", m ? m : cJSON_CreateNull());
    cJSON *b = PQgetisnull(res, 0, 2) ? NULL : metrics_display(PQgetvalue(res, 0, 2), NULL);
    cJSON_AddItemToObject(res_o, "benchmark", b ? b : cJSON_CreateNull());
    cJSON *sm = PQgetisnull(res, 0, 3) ? NULL : cJSON_Parse(PQgetvalue(res, 0, 3));
    cJSON_AddItemToObject(res_o, "summary", sm ? sm : cJSON_CreateNull());
    cJSON *cnt = cJSON_AddObjectToObject(res_o, "counts");
    cJSON_AddNumberToObject(cnt, "trades", atof(PQgetvalue(res, 0, 4)));
    cJSON_AddNumberToObject(cnt, "equity_points", atof(PQgetvalue(res, 0, 5)));
    cJSON_AddNumberToObject(cnt, "windows", atof(PQgetvalue(res, 0, 6)));
    PQclear(res);
    if (!strcmp(run_kind(o), "grid")) { /* the ranking's head */
        res = api_query(r,
                        "SELECT rank, combo, params, valid, eligible, objective, trades, "
                        "NULLIF(error, '') AS error FROM backtest.scores WHERE run_id = $1 "
                        "ORDER BY rank LIMIT 20",
                        1, p);
        if (!res) {
            cJSON_Delete(res_o);
            goto out;
        }
        cJSON *top = api_pg_rows_json(res);
        for (cJSON *it = top->child; it; it = it->next) json_text_member(it, "params");
        cJSON_AddItemToObject(res_o, "top", top);
        PQclear(res);
    }
    api_json(r, 200, res_o);
out:
    cJSON_Delete(o);
}

static void h_backtests_trades(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_finished(r, run);
    if (!o) return;
    cJSON_Delete(o);
    int64_t limit = api_q_int(r, "limit", 100);
    const char *cur = api_q_str(r, "cursor"), *sym = api_q_str(r, "symbol");
    char plain[64] = "", lim[24];
    if (cur) {
        if (!api_cursor_decode(r, cur, plain, sizeof plain)) return;
        char *end;
        long v = strtol(plain, &end, 10);
        if (!*plain || *end || v < 0 || v > 2147483647L) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *p[] = {run, cur ? plain : NULL, sym, lim};
    api_rows(r,
             "SELECT seq, window_index, symbol, CASE dir WHEN 1 THEN 'long' ELSE 'short' END AS "
             "side, open, cut, api.ns_text(entry_ts) AS entry_time, api.ns_text(exit_ts) AS "
             "exit_time, api.px(qty) AS qty, api.px(entry_price) AS entry_price, "
             "api.px(exit_price) AS exit_price, api.px(commission) AS commission, "
             "api.px(net_pnl) AS net_pnl, api.px(scaled_pnl) AS scaled_pnl, return_pct, bars "
             "FROM backtest.trades WHERE run_id = $1 AND ($2::int IS NULL OR seq > $2::int) AND "
             "($3::text IS NULL OR symbol = $3) ORDER BY seq LIMIT $4::int",
             4, p, limit, "seq");
}

/* Equity bucketed to at most `points` points (0 = all): the last point of
 * each bucket, the deepest drawdown (from the running peak over the WHOLE
 * curve) inside it. */
static const char EQUITY_SQL[] =
    "WITH e AS (SELECT seq, ts, equity, cash, benchmark, row_number() OVER (ORDER BY seq) - 1 "
    "AS i, equity::float8 / NULLIF(max(equity) OVER (ORDER BY seq), 0) - 1 AS dd FROM "
    "backtest.equity WHERE run_id = $1), c AS (SELECT count(*) AS n FROM e), b AS (SELECT "
    "CASE WHEN $2::bigint = 0 OR c.n <= $2::bigint THEN e.i ELSE e.i * $2::bigint / c.n END "
    "AS bucket, e.* FROM e, c) SELECT max(seq) AS seq, api.ns_text(max(ts)) AS time, "
    "api.px((array_agg(equity ORDER BY seq DESC))[1]) AS equity, api.px((array_agg(cash "
    "ORDER BY seq DESC))[1]) AS cash, api.px((array_agg(benchmark ORDER BY seq DESC))[1]) AS "
    "benchmark, min(dd) AS drawdown, max(ts) AS ts_ns FROM b GROUP BY bucket ORDER BY bucket";

static void h_backtests_equity(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_finished(r, run);
    if (!o) return;
    cJSON_Delete(o);
    char pts[24];
    snprintf(pts, sizeof pts, "%lld", (long long)api_q_int(r, "points", 0));
    const char *p[] = {run, pts};
    PGresult *res = api_query(r, EQUITY_SQL, 2, p);
    if (!res) return;
    cJSON *items = api_pg_rows_json(res);
    for (cJSON *it = items->child; it; it = it->next)
        cJSON_DeleteItemFromObjectCaseSensitive(it, "ts_ns");
    PQclear(res);
    res = api_query(r, "SELECT count(*) FROM backtest.equity WHERE run_id = $1", 1, p);
    if (!res) {
        cJSON_Delete(items);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "run_id", run);
    cJSON_AddNumberToObject(out, "points_total", atof(PQgetvalue(res, 0, 0)));
    cJSON_AddNumberToObject(out, "points", cJSON_GetArraySize(items));
    PQclear(res);
    cJSON_AddItemToObject(out, "items", items);
    api_json(r, 200, out);
}

static void h_backtests_windows(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_finished(r, run);
    if (!o) return;
    int wf = !strcmp(run_kind(o), "walk_forward");
    if (!wf)
        api_error(r, 409, "run", "run %s is a %s run: it has no walk-forward windows", run,
                  run_kind(o));
    cJSON_Delete(o);
    if (!wf) return;
    const char *p[] = {run};
    PGresult *res = api_query(
        r,
        "SELECT window_index, api.ns_text(is_from) AS is_from, api.ns_text(is_to) AS is_to, "
        "api.ns_text(oos_from) AS oos_from, api.ns_text(oos_to) AS oos_to, partial, combo, "
        "params, valid, eligible, is_objective, is_trades, oos_objective, oos_trades, "
        "oos_return, api.px(start_equity) AS start_equity, api.px(end_equity) AS end_equity "
        "FROM backtest.windows WHERE run_id = $1 ORDER BY window_index",
        1, p);
    if (!res) return;
    cJSON *items = api_pg_rows_json(res);
    PQclear(res);
    for (cJSON *it = items->child; it; it = it->next) {
        cJSON *pv = cJSON_GetObjectItemCaseSensitive(it, "params");
        if (cJSON_IsString(pv)) json_text_member(it, "params");
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "run_id", run);
    cJSON_AddItemToObject(out, "items", items);
    api_json(r, 200, out);
}

/* ---- the HTML report ----------------------------------------------------------------------- */
static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void fmt_pct(FILE *f, double v) {
    if (!isfinite(v)) fputs("&ndash;", f);
    else fprintf(f, "%.2f%%", v * 100);
}

static void fmt_num(FILE *f, double v) {
    if (isinf(v)) fputs("&infin;", f);
    else if (!isfinite(v)) fputs("&ndash;", f);
    else fprintf(f, "%.2f", v);
}

/* A line chart of up to two series over n points (area: a drawdown area
 * under 0, in percent). */
static void svg_chart(FILE *f, const char *title, const double *y1, const double *y2, size_t n,
                      const char *from, const char *to, int area) {
    const double W = 900, H = 260, PAD = 60, ph = H - 40, pw = W - 2 * PAD;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (y1[i] < lo) lo = y1[i];
        if (y1[i] > hi) hi = y1[i];
        if (y2 && y2[i] > 0) {
            if (y2[i] < lo) lo = y2[i];
            if (y2[i] > hi) hi = y2[i];
        }
    }
    if (area && hi < 0) hi = 0;
    if (!(hi > lo)) {
        hi = (isfinite(lo) ? lo : 0) + 1;
        lo = hi - 2;
    }
    fprintf(f, "<h2>%s</h2>\n<svg viewBox=\"0 0 %.0f %.0f\" class=\"chart\" role=\"img\">\n",
            title, W, H);
    fprintf(f, "<rect x=\"%.0f\" y=\"20\" width=\"%.0f\" height=\"%.0f\" class=\"frame\"/>\n",
            PAD, pw, ph);
    for (int g = 0; g <= 4; g++) {
        double v = lo + (hi - lo) * g / 4.0, y = 20 + ph - ph * g / 4.0;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", PAD,
                PAD + pw, y, y);
        if (area)
            fprintf(f,
                    "<text x=\"%.0f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%.1f%%</text>\n",
                    PAD - 4, y + 4, v * 100);
        else
            fprintf(f,
                    "<text x=\"%.0f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%.6g</text>\n",
                    PAD - 4, y + 4, v);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"lbl\">", PAD, H - 2);
    esc(f, from);
    fprintf(f, "</text><text x=\"%.0f\" y=\"%.0f\" class=\"lbl\" text-anchor=\"end\">", PAD + pw,
            H - 2);
    esc(f, to);
    fputs("</text>\n", f);
    for (int s = 0; s < (y2 ? 2 : 1); s++) {
        const double *y = s ? y2 : y1;
        double base = 20 + ph * (hi / (hi - lo));
        if (area) fprintf(f, "<polygon class=\"area\" points=\"%.1f,%.1f ", PAD, base);
        else
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" points=\"",
                    s ? "#999999" : "#1f5fbf");
        for (size_t i = 0; i < n; i++) {
            double x = PAD + (n > 1 ? pw * (double)i / (double)(n - 1) : 0);
            fprintf(f, "%.1f,%.1f ", x, 20 + ph - ph * (y[i] - lo) / (hi - lo));
        }
        if (area) fprintf(f, "%.1f,%.1f", PAD + pw, base);
        fputs("\"/>\n", f);
    }
    if (y2)
        fputs("<text x=\"60\" y=\"14\" class=\"lbl\" fill=\"#1f5fbf\">&#9632; Strategy</text>"
              "<text x=\"220\" y=\"14\" class=\"lbl\" fill=\"#999999\">&#9632; Buy &amp; hold"
              "</text>\n",
              f);
    fputs("</svg>\n", f);
}

static void metric_row(FILE *f, const char *name, const qb_bt_metrics_t *m,
                       const qb_bt_metrics_t *b, const char *key, int pct) {
    double v = 0, w = 0;
    qb_bt_metric_value(m, key, &v);
    fprintf(f, "<tr><td>%s</td><td>", name);
    if (pct == 2) fprintf(f, "%.0f", v);
    else if (pct) fmt_pct(f, v);
    else fmt_num(f, v);
    fputs("</td><td>", f);
    if (b) {
        qb_bt_metric_value(b, key, &w);
        if (pct) fmt_pct(f, w);
        else fmt_num(f, w);
    }
    fputs("</td></tr>\n", f);
}

/* rows of a query as an HTML table (header = column names) */
static void html_table(FILE *f, const PGresult *res) {
    int nf = PQnfields(res), n = PQntuples(res);
    fputs("<table><tr>", f);
    for (int c = 0; c < nf; c++) {
        fputs("<th>", f);
        esc(f, PQfname(res, c));
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int i = 0; i < n; i++) {
        fputs("<tr>", f);
        for (int c = 0; c < nf; c++) {
            fputs("<td>", f);
            esc(f, PQgetisnull(res, i, c) ? "" : PQgetvalue(res, i, c));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void h_backtests_report(api_req_t *r) {
    const char *run = run_param(r);
    if (!run) return;
    cJSON *o = run_finished(r, run);
    if (!o) return;
    const char *p[] = {run};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;
    double *eq = NULL, *be = NULL, *dd = NULL;
    PGresult *res = api_query(r,
                              "SELECT metrics, benchmark, params FROM backtest.metrics WHERE "
                              "run_id = $1",
                              1, p);
    if (!res) goto out;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "run", "run %s has no stored result", run);
        goto out;
    }
    qb_bt_metrics_t m, bm;
    memset(&m, 0, sizeof m);
    cJSON *mj = metrics_display(PQgetvalue(res, 0, 0), &m);
    cJSON *bj = PQgetisnull(res, 0, 1) ? NULL : metrics_display(PQgetvalue(res, 0, 1), &bm);
    int has_b = bj != NULL;
    cJSON_Delete(mj);
    cJSON_Delete(bj);
    char *params = strdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (!(f = open_memstream(&buf, &len))) {
        free(params);
        api_error(r, 500, NULL, "out of memory");
        goto out;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "strategy"),
                *tf = cJSON_GetObjectItemCaseSensitive(o, "timeframe"),
                *sy = cJSON_GetObjectItemCaseSensitive(o, "symbols");
    const char *kind = run_kind(o);
    cJSON *sy_parsed = cJSON_IsRaw(sy) ? cJSON_Parse(sy->valuestring) : NULL;
    if (sy_parsed) sy = sy_parsed;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Backtest ", f);
    esc(f, run);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}\n"
          "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
          "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px "
          "solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}\n"
          ".chart{width:100%;height:auto}.frame{fill:none;stroke:#bbb}.grid{stroke:#eee}"
          ".lbl{font-size:11px;fill:#555}.area{fill:#e8a09a;stroke:#b3261e;stroke-width:1}\n"
          "</style></head><body>\n<h1>",
          f);
    esc(f, cJSON_IsString(st) ? st->valuestring : "");
    fputs(" &middot; ", f);
    esc(f, run);
    fputs("</h1>\n<p>", f);
    esc(f, !strcmp(kind, "walk_forward") ? "Walk-forward (stitched out-of-sample)"
           : !strcmp(kind, "grid")       ? "Grid search (best combination)"
                                         : "Backtest");
    fputs(" &middot; ", f);
    int k = 0;
    for (const cJSON *s = cJSON_IsArray(sy) ? sy->child : NULL; s; s = s->next, k++) {
        if (k == 20) {
            fprintf(f, " and %d more", cJSON_GetArraySize(sy) - 20);
            break;
        }
        if (k) fputs(", ", f);
        esc(f, cJSON_IsString(s) ? s->valuestring : "");
    }
    fputs(" &middot; ", f);
    cJSON_Delete(sy_parsed);
    esc(f, cJSON_IsString(tf) ? tf->valuestring : "");
    fputs(" &middot; parameters <code>", f);
    esc(f, params);
    free(params);
    fputs("</code></p>\n<ul>\n", f);
    fprintf(f, "<li>Final equity <b>%.2f</b> from %.2f: a total return of <b>%.1f%%</b>",
            (double)m.final_equity / 1e8, (double)m.initial_equity / 1e8, m.total_return * 100);
    if (m.years > 0) fprintf(f, ", %.1f%% a year (CAGR) over %.1f years", m.cagr * 100, m.years);
    fputs(".</li>\n", f);
    if (has_b)
        fprintf(f, "<li>Buying and holding the same symbols in equal parts would have returned "
                   "<b>%.1f%%</b>, with a worst fall of %.1f%%.</li>\n",
                bm.total_return * 100, bm.max_dd_pct * 100);
    fprintf(f, "<li>Max drawdown %.1f%%: at the worst point the account was down this much from "
               "its peak.</li>\n<li>Sharpe ratio %.2f (annualised, risk-free 0).</li>\n",
            m.max_dd_pct * 100, m.sharpe);
    fprintf(f, "<li>%lld round trips closed, %.0f%% of them profitable.</li>\n</ul>\n",
            (long long)m.trades_closed, m.win_rate * 100);
    fputs("<h2>Metrics</h2>\n<table><tr><th></th><th>Strategy</th><th>Buy &amp; hold</th></tr>\n",
          f);
    const qb_bt_metrics_t *bp = has_b ? &bm : NULL;
    metric_row(f, "Total return", &m, bp, "total_return", 1);
    metric_row(f, "CAGR", &m, bp, "cagr", 1);
    metric_row(f, "Sharpe", &m, bp, "sharpe", 0);
    metric_row(f, "Sortino", &m, bp, "sortino", 0);
    metric_row(f, "Calmar", &m, bp, "calmar", 0);
    metric_row(f, "Volatility (annual)", &m, bp, "volatility", 1);
    metric_row(f, "Max drawdown", &m, bp, "max_dd_pct", 1);
    metric_row(f, "Exposure", &m, bp, "exposure", 1);
    metric_row(f, "Final equity", &m, bp, "final_equity", 0);
    metric_row(f, "Trades closed", &m, NULL, "trades_closed", 2);
    metric_row(f, "Win rate", &m, NULL, "win_rate", 1);
    metric_row(f, "Profit factor", &m, NULL, "profit_factor", 0);
    metric_row(f, "Expectancy", &m, NULL, "expectancy", 0);
    fputs("</table>\n", f);
    /* charts */
    char pts[24];
    snprintf(pts, sizeof pts, "%d", BT_REPORT_POINTS);
    const char *q[] = {run, pts};
    if (!(res = api_query(r, EQUITY_SQL, 2, q))) goto out;
    size_t n = (size_t)PQntuples(res);
    eq = calloc(n ? n : 1, sizeof *eq);
    be = calloc(n ? n : 1, sizeof *be);
    dd = calloc(n ? n : 1, sizeof *dd);
    if (!eq || !be || !dd) {
        PQclear(res);
        api_error(r, 500, NULL, "out of memory");
        goto out;
    }
    int ce = PQfnumber(res, "equity"), cb = PQfnumber(res, "benchmark"),
        cd = PQfnumber(res, "drawdown"), ct = PQfnumber(res, "time");
    int any_b = 0;
    for (size_t i = 0; i < n; i++) {
        eq[i] = atof(PQgetvalue(res, (int)i, ce));
        be[i] = atof(PQgetvalue(res, (int)i, cb));
        dd[i] = atof(PQgetvalue(res, (int)i, cd));
        any_b |= be[i] > 0;
    }
    char t0[48] = "", t1[48] = "";
    if (n) {
        snprintf(t0, sizeof t0, "%.10s", PQgetvalue(res, 0, ct));
        snprintf(t1, sizeof t1, "%.10s", PQgetvalue(res, (int)n - 1, ct));
    }
    PQclear(res);
    svg_chart(f, "Equity", eq, any_b ? be : NULL, n, t0, t1, 0);
    svg_chart(f, "Drawdown", dd, NULL, n, t0, t1, 1);
    if (!strcmp(kind, "walk_forward")) {
        if (!(res = api_query(r,
                              "SELECT window_index AS \"#\", left(api.ns_text(is_from), 10) AS "
                              "\"in-sample from\", left(api.ns_text(oos_from), 10) AS "
                              "\"out-of-sample from\", left(api.ns_text(oos_to), 10) AS \"to\", "
                              "coalesce(params, 'not traded') AS selection, round(is_objective::"
                              "numeric, 3) AS \"IS objective\", round(oos_objective::numeric, 3) "
                              "AS \"OOS objective\", round((oos_return * 100)::numeric, 2) AS "
                              "\"OOS return %\", oos_trades AS trades FROM backtest.windows "
                              "WHERE run_id = $1 ORDER BY window_index",
                              1, p)))
            goto out;
        fprintf(f, "<h2>Walk-forward windows (%d)</h2>\n", PQntuples(res));
        html_table(f, res);
        PQclear(res);
    }
    if (!strcmp(kind, "grid")) {
        if (!(res = api_query(r,
                              "SELECT rank, params, CASE WHEN valid THEN round(objective::numeric, "
                              "4)::text ELSE error END AS objective, trades FROM backtest.scores "
                              "WHERE run_id = $1 ORDER BY rank LIMIT 20",
                              1, p)))
            goto out;
        fputs("<h2>Best combinations</h2>\n", f);
        html_table(f, res);
        PQclear(res);
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%d", BT_REPORT_TRADES);
    const char *tq[] = {run, lim};
    if (!(res = api_query(r,
                          "SELECT seq + 1 AS \"#\", symbol AS \"Symbol\", CASE dir WHEN 1 THEN "
                          "'long' ELSE 'short' END AS \"Side\", left(api.ns_text(entry_ts), 16) "
                          "AS \"Entry\", left(api.ns_text(exit_ts), 16) || CASE WHEN open THEN "
                          "' (open)' ELSE '' END AS \"Exit\", api.px(qty) AS \"Qty\", "
                          "api.px(entry_price) AS \"Entry price\", api.px(exit_price) AS \"Exit "
                          "price\", round(api.px(commission), 2) AS \"Commission\", "
                          "round(api.px(scaled_pnl), 2) AS \"Net P&L\", round((return_pct * "
                          "100)::numeric, 2) AS \"Return %\", bars AS \"Bars\", (SELECT count(*) "
                          "FROM backtest.trades WHERE run_id = $1) AS total FROM backtest.trades "
                          "WHERE run_id = $1 ORDER BY seq LIMIT $2::int",
                          2, tq)))
        goto out;
    long total = PQntuples(res) ? atol(PQgetvalue(res, 0, PQnfields(res) - 1)) : 0;
    fprintf(f, "<h2>Trades (%ld)</h2>\n", total);
    if (total > BT_REPORT_TRADES)
        fprintf(f, "<p>The first %d are listed; all are at /api/v1/backtests/%s/trades.</p>\n",
                BT_REPORT_TRADES, run);
    /* the table without the count column */
    {
        int nf = PQnfields(res) - 1, nt = PQntuples(res);
        fputs("<table><tr>", f);
        for (int c = 0; c < nf; c++) {
            fputs("<th>", f);
            esc(f, PQfname(res, c));
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        for (int i = 0; i < nt; i++) {
            fputs("<tr>", f);
            for (int c = 0; c < nf; c++) {
                fputs("<td>", f);
                esc(f, PQgetvalue(res, i, c));
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    PQclear(res);
    fputs("<p class=\"lbl\">Generated by qb-api from the stored results of the run "
          "(backtest schema). Equity marked at each bar's close; charts bucketed to at most "
          "1200 points (the drawdown keeps each bucket's deepest point).</p>\n</body></html>\n",
          f);
    if (fflush(f) != 0 || ferror(f)) {
        api_error(r, 500, NULL, "cannot write the report");
        goto out;
    }
    api_raw(r, 200, "text/html; charset=utf-8", buf, len);
out:
    if (f) fclose(f);
    free(buf);
    free(eq);
    free(be);
    free(dd);
    cJSON_Delete(o);
}

/* ---- the table ------------------------------------------------------------------------------ */
#define S_BT_SUBMIT                                                                              \
    "{\"type\":\"object\",\"required\":[\"strategy\",\"symbols\","                               \
    "\"timeframe\"],\"additionalProperties\":false,\"properties\":{\"run_id\":{\"type\":\"str"   \
    "ing\",\"pattern\":\"^[A-Za-z0-9_.:-]{1,100}$\",\"description\":\"default: a new UUID; us"   \
    "ed once\"},\"strategy\":{\"type\":\"string\",\"description\":\"built-in strategy kind,"     \
    " e.g. sma_cross\"},\"params\":{\"type\":\"object\",\"description\":\"the strategy's para"   \
    "meters\"},\"symbols\":{\"type\":\"array\",\"minItems\":1,"                                  \
    "\"maxItems\":500,\"items\":{\"type\":\"string\"}},\"timeframe\":{\"type\":\"string\","      \
    "\"example\":\"1d\"},\"start\":{\"type\":\"string\",\"format\":\"date-time\"},"              \
    "\"end\":{\"type\":\"string\",\"format\":\"date-time\",\"description\":\"exclusive\"},"      \
    "\"initial_cash\":{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"                 \
    "\"description\":\"default 100000\"},\"fill\":{\"type\":\"string\","                         \
    "\"enum\":[\"next_open\",\"close\"]},\"commission\":{\"type\":\"string\","                   \
    "\"description\":\"none | per_trade:FEE | per_share:RATE[:MIN] | percent:PCT[:MIN]\"},"      \
    "\"slippage_bps\":{\"type\":\"number\",\"minimum\":0,\"maximum\":9999},"                     \
    "\"settings\":{\"type\":\"object\",\"description\":\"engine settings (qb_bt_config_set na"   \
    "mes), e.g. {\\\"sizing\\\":\\\"percent_equity\\\",\\\"sizing_value\\\":0.1}\"},"            \
    "\"objective\":{\"type\":\"string\",\"description\":\"metric a search maximises (default "   \
    "sharpe)\"},\"min_trades\":{\"type\":\"integer\",\"minimum\":0},"                            \
    "\"grid\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"array\"},"               \
    "\"description\":\"parameter -> values to try (first slowest); set.NAME for a setting\"},"   \
    "\"random_samples\":{\"type\":\"integer\",\"minimum\":1},"                                   \
    "\"random_seed\":{\"type\":\"integer\",\"minimum\":0},\"walk_forward\":{\"type\":\"object"   \
    "\",\"additionalProperties\":false,\"required\":[\"train\","                                 \
    "\"test\"],\"properties\":{\"windows\":{\"type\":\"integer\","                               \
    "\"minimum\":1},\"train\":{\"oneOf\":[{\"type\":\"integer\"},"                               \
    "{\"type\":\"string\"}],\"description\":\"time steps or a duration (90d,"                    \
    " 4w, 12h, 30m)\"},\"test\":{\"oneOf\":[{\"type\":\"integer\"},"                             \
    "{\"type\":\"string\"}]},\"step\":{\"oneOf\":[{\"type\":\"integer\"},"                       \
    "{\"type\":\"string\"}]},\"anchored\":{\"type\":\"boolean\"},"                               \
    "\"drop_partial\":{\"type\":\"boolean\"}}}}}"
#define S_BT_ACCEPTED                                                                            \
    "{\"type\":\"object\",\"properties\":{\"run_id\":{\"type\":\"string\"},"                     \
    "\"kind\":{\"type\":\"string\",\"enum\":[\"backtest\",\"walk_forward\","                     \
    "\"grid\"]},\"status\":{\"type\":\"string\"},\"status_url\":{\"type\":\"string\"},"          \
    "\"combinations\":{\"type\":\"integer\"}}}"
#define Q_LIMIT {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"}
#define Q_CURSOR {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}

const api_route_t api_routes_backtests[] = {
    {"POST", "/api/v1/backtests", QB_ROLE_TRADER, h_backtests_submit, "backtests",
     "Submit a backtest (walk_forward: a walk-forward; grid / random_samples: a parameter "
     "search) to qb-backtest",
     202, S_BT_SUBMIT, S_BT_ACCEPTED, {{0}}, 0},
    {"GET", "/api/v1/backtests", QB_ROLE_VIEWER, h_backtests_list, "backtests",
     "Backtest runs, newest first, with status and headline metrics", 200, NULL, NULL,
     {{"status", API_P_ENUM, 0, 0, 0, "queued|running|finished|failed", "only runs in this state"},
      {"kind", API_P_ENUM, 0, 0, 0, "backtest|walk_forward|grid", "only runs of this kind"},
      {"strategy", API_P_STRING, 0, 0, 64, NULL, "only runs of this strategy kind"},
      Q_LIMIT,
      Q_CURSOR},
     0},
    {"GET", "/api/v1/backtests/{run}", QB_ROLE_VIEWER, h_backtests_get, "backtests",
     "A run's status and progress (queued until qb-backtest takes it) and its request", 200,
     NULL, NULL, {{0}}, 0},
    {"GET", "/api/v1/backtests/{run}/result", QB_ROLE_VIEWER, h_backtests_result, "backtests",
     "A finished run's metrics, benchmark and parameters (409 while it runs)", 200, NULL, NULL,
     {{0}}, 0},
    {"GET", "/api/v1/backtests/{run}/trades", QB_ROLE_VIEWER, h_backtests_trades, "backtests",
     "A finished run's round trips in the engine's order", 200, NULL, NULL,
     {{"symbol", API_P_SYMBOL, 0, 0, 0, NULL, "only this symbol's trades"}, Q_LIMIT, Q_CURSOR},
     0},
    {"GET", "/api/v1/backtests/{run}/equity", QB_ROLE_VIEWER, h_backtests_equity, "backtests",
     "A finished run's equity curve with drawdown (points=N: bucketed to at most N points)", 200,
     NULL, NULL,
     {{"points", API_P_INT, 0, 2, 100000, NULL,
       "at most this many points (each bucket's last point, its deepest drawdown)"}},
     0},
    {"GET", "/api/v1/backtests/{run}/windows", QB_ROLE_VIEWER, h_backtests_windows, "backtests",
     "A finished walk-forward's windows: periods, selections, in- and out-of-sample results",
     200, NULL, NULL, {{0}}, 0},
    {"GET", "/api/v1/backtests/{run}/report", QB_ROLE_VIEWER, h_backtests_report, "backtests",
     "A finished run's self-contained HTML report (inline SVG charts, no script)", 200, NULL,
     NULL, {{0}}, API_R_RAW},
    {0}};
