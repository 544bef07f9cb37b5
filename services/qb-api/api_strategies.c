/* api_strategies.c — strategy instances: list, create, change parameters,
 * enable / disable, trading mode and live approval (see api.h).
 *
 * Who owns what: qb-features owns features.strategies (kind, params,
 * symbols, timeframe, enabled) and applies STRATEGY_SET_PARAMS / _ENABLE /
 * _DISABLE from the control topic; qb-execution owns
 * trading.strategy_modes and applies STRATEGY_SET_MODE. Reads join the
 * two (no row in strategy_modes = paper). Writes are commands: 202 once
 * the bus has them; the services apply them within their poll interval.
 *
 * Parameters are checked here with the same code qb-features runs
 * (libs/strategy: qb_strategy_new), so an unknown kind or a bad parameter
 * is a 400 naming it ("params.fast") instead of a dead-lettered command,
 * and the command carries the canonical parameters (every default
 * spelled out), which is what qb-features stores.
 *
 * Modes: the API says off | paper | live; off is qb-execution's BACKTEST
 * mode (the strategy's orders are rejected). Going live IS the approval:
 * qb-execution records Command.issued_by as approved_by. So a trader may
 * switch between off and paper, and live needs an admin: PUT .../mode with
 * mode live by an admin, or POST .../approve-live (admin), which are the
 * same command. Leaving live (paper / off) clears the approval. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_types.h"
#include "qb/v1/control.pb-c.h"
#include "strategy/qb_strategy.h"

#define TIMEFRAMES "1m|5m|15m|30m|1h|4h|1d|1w"
#define MAX_SYMBOLS 500

static const char STRAT_SELECT[] =
    "SELECT s.strategy_id, s.account, s.kind, s.params, to_jsonb(s.symbols) AS symbols, "
    "s.timeframe, s.enabled, CASE coalesce(m.mode, 'paper') WHEN 'backtest' THEN 'off' ELSE "
    "coalesce(m.mode, 'paper') END AS mode, CASE WHEN m.mode = 'live' THEN m.rollout_pct END AS "
    "rollout_pct, CASE WHEN m.approved_at IS NOT NULL THEN jsonb_build_object('approved_by', "
    "m.approved_by, 'approved_at', m.approved_at) END AS live_approval, m.updated_by AS "
    "mode_set_by, m.updated_at AS mode_set_at, s.created_at, s.updated_at FROM "
    "features.strategies s LEFT JOIN trading.strategy_modes m ON m.account = s.account AND "
    "m.strategy_id = s.strategy_id ";

/* [A-Za-z0-9_.:-]{1,max}, as features.strategies checks ids and accounts */
static int id_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_.:-", c)))
            return 0;
    }
    return 1;
}

static const char *path_strategy(api_req_t *r) {
    const char *id = api_param(r, "strategy");
    if (!id_ok(id, 100)) {
        api_error(r, 400, "strategy",
                  "strategy: 1-100 of letters, digits, '_', '.', ':', '-'");
        return NULL;
    }
    return id;
}

/* ---- reads --------------------------------------------------------------------------------- */
static void h_list(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    char lim[24], cur[160] = "";
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *c = api_q_str(r, "cursor");
    if (c && !api_cursor_decode(r, c, cur, sizeof cur)) return;
    const char *en = api_q_str(r, "enabled");
    const char *p[] = {c ? cur : NULL, api_q_str(r, "account"),
                       en ? (api_q_bool(r, "enabled", 1) ? "true" : "false") : NULL, lim};
    char sql[2048];
    snprintf(sql, sizeof sql,
             "%s WHERE ($1::text IS NULL OR s.strategy_id > $1) AND ($2::text IS NULL OR "
             "s.account = $2) AND ($3::boolean IS NULL OR s.enabled = $3) ORDER BY "
             "s.strategy_id LIMIT $4::int",
             STRAT_SELECT);
    api_rows(r, sql, 4, p, limit, "strategy_id");
}

static void h_get(api_req_t *r) {
    const char *id = path_strategy(r);
    if (!id) return;
    char sql[2048];
    snprintf(sql, sizeof sql, "%s WHERE s.strategy_id = $1", STRAT_SELECT);
    const char *p[] = {id};
    api_row(r, sql, 1, p, "no such strategy");
}

/* ---- checks ---------------------------------------------------------------------------------- */
/* The field a libs/strategy error names: "sma_cross.fast: ..." ->
 * params.fast; "... unknown parameter \"fsat\" ..." -> params.fsat. */
static void param_field(const char *kind, const char *msg, char *out, size_t cap) {
    size_t kl = strlen(kind);
    const char *u = strstr(msg, "unknown parameter \"");
    if (!strncmp(msg, kind, kl) && msg[kl] == '.') {
        size_t n = strcspn(msg + kl + 1, ": ");
        snprintf(out, cap, "params.%.*s", (int)n, msg + kl + 1);
    } else if (u) {
        u += strlen("unknown parameter \"");
        snprintf(out, cap, "params.%.*s", (int)strcspn(u, "\""), u);
    } else {
        snprintf(out, cap, "params");
    }
}

/* kind + params (a JSON object, or NULL = defaults) -> canonical params
 * (malloc'd); NULL after a 400 naming the field. */
static char *check_params(api_req_t *r, const char *kind, cJSON *params) {
    if (params && !cJSON_IsObject(params)) {
        api_error(r, 400, "params", "params: expected a JSON object");
        return NULL;
    }
    char *txt = params ? cJSON_PrintUnformatted(params) : NULL;
    qb_strategy_t *st = NULL;
    char msg[512];
    qb_err_t e = qb_strategy_new(kind, txt ? txt : "{}", &st, msg, sizeof msg);
    free(txt);
    if (e == QB_ERR_NOT_FOUND) {
        api_error(r, 400, "kind", "kind: %s", msg);
        return NULL;
    }
    if (e != QB_OK) {
        char field[96];
        param_field(kind, msg, field, sizeof field);
        api_error(r, 400, field, "%s", msg);
        return NULL;
    }
    char *canon = strdup(qb_strategy_params(st));
    qb_strategy_destroy(st);
    if (!canon) api_error(r, 500, NULL, "out of memory");
    return canon;
}

/* symbols: a JSON array of symbols -> upper-cased copies in out[] (room for
 * MAX_SYMBOLS); count, or -1 after a 400 */
static int check_symbols(api_req_t *r, cJSON *a, qb_symbol_t *out) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > MAX_SYMBOLS) {
        api_error(r, 400, "symbols", "symbols: an array of 1 to %d symbols", MAX_SYMBOLS);
        return -1;
    }
    int n = 0;
    for (cJSON *e = a->child; e; e = e->next, n++) {
        char err[160];
        if (!cJSON_IsString(e) || qb_symbol_set(&out[n], e->valuestring, err, sizeof err) != QB_OK) {
            api_error(r, 400, "symbols", "symbols[%d]: %s", n,
                      cJSON_IsString(e) ? err : "expected a string");
            return -1;
        }
    }
    return n;
}

/* Send STRATEGY_SET_PARAMS (account NULL = unchanged) and answer 202. */
static void send_set_params(api_req_t *r, const char *id, const char *account, const char *kind,
                            const char *canon, const qb_symbol_t *syms, int nsyms,
                            const char *tf, const char *action) {
    char *sv[MAX_SYMBOLS];
    for (int i = 0; i < nsyms; i++) sv[i] = (char *)syms[i].s;
    Qb__V1__Command__StrategyParams sp = QB__V1__COMMAND__STRATEGY_PARAMS__INIT;
    sp.strategy_id = (char *)id;
    sp.strategy_name = (char *)kind;
    sp.symbols = sv;
    sp.n_symbols = (size_t)nsyms;
    sp.timeframe = (char *)tf;
    sp.params_json = (char *)canon;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = "qb-features";
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_SET_PARAMS;
    cmd.account = (char *)(account ? account : "");
    cmd.params_case = QB__V1__COMMAND__PARAMS_STRATEGY;
    cmd.strategy = &sp;
    char cid[40];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddStringToObject(d, "kind", kind);
    cJSON_AddItemToObject(d, "params", cJSON_CreateRaw(canon));
    api_audit(r, action, id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "strategy_id", id);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddItemToObject(o, "params", cJSON_CreateRaw(canon));
    cJSON_AddStringToObject(o, "status", "accepted");
    snprintf(r->location, sizeof r->location, "/api/v1/strategies/%s", id);
    api_json(r, 202, o);
}

/* ---- writes ----------------------------------------------------------------------------------- */
static void h_create(api_req_t *r) {
    static const char *const allowed[] = {"strategy_id", "kind",    "params", "symbols",
                                          "timeframe",   "account", NULL};
    const char *id = NULL, *kind = NULL, *tf = NULL, *account = "default";
    if (!api_body_only(r, allowed) || !api_body_str(r, "strategy_id", 1, 100, &id) ||
        !api_body_str(r, "kind", 1, 64, &kind) ||
        !api_body_enum(r, "timeframe", 1, TIMEFRAMES, &tf) ||
        !api_body_str(r, "account", 0, 64, &account))
        return;
    if (!id_ok(id, 100)) {
        api_error(r, 400, "strategy_id",
                  "strategy_id: 1-100 of letters, digits, '_', '.', ':', '-'");
        return;
    }
    if (!id_ok(account, 64)) {
        api_error(r, 400, "account", "account: 1-64 of letters, digits, '_', '.', ':', '-'");
        return;
    }
    cJSON *sa = api_body_get(r, "symbols");
    if (!sa) {
        api_error(r, 400, "symbols", "symbols: required");
        return;
    }
    qb_symbol_t *syms = calloc(MAX_SYMBOLS, sizeof *syms);
    if (!syms) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    int nsyms = check_symbols(r, sa, syms);
    char *canon = nsyms < 0 ? NULL : check_params(r, kind, api_body_get(r, "params"));
    if (!canon) {
        free(syms);
        return;
    }
    const char *p[] = {id};
    PGresult *res = api_query(r, "SELECT 1 FROM features.strategies WHERE strategy_id = $1", 1, p);
    if (res) {
        int exists = PQntuples(res) > 0;
        PQclear(res);
        if (exists)
            api_error(r, 409, "strategy_id",
                      "a strategy '%s' exists: change it with PUT /api/v1/strategies/%s/params",
                      id, id);
        else
            send_set_params(r, id, account, kind, canon, syms, nsyms, tf, "strategy_create");
    }
    free(canon);
    free(syms);
}

static void h_params(api_req_t *r) {
    static const char *const allowed[] = {"params", "kind", "symbols", "timeframe", NULL};
    const char *id = path_strategy(r);
    if (!id) return;
    const char *kind = NULL, *tf = NULL;
    if (!api_body_only(r, allowed) || !api_body_str(r, "kind", 0, 64, &kind) ||
        !api_body_enum(r, "timeframe", 0, TIMEFRAMES, &tf))
        return;
    cJSON *params = api_body_get(r, "params");
    if (!params || cJSON_IsNull(params)) {
        api_error(r, 400, "params", "params: required (the whole parameter object: absent "
                                    "parameters take their defaults)");
        return;
    }
    const char *p[] = {id};
    PGresult *res = api_query(r,
                              "SELECT kind, array_to_string(symbols, ','), timeframe FROM "
                              "features.strategies WHERE strategy_id = $1",
                              1, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "strategy", "no such strategy");
        return;
    }
    char cur_kind[65], cur_tf[16], *cur_syms = strdup(PQgetvalue(res, 0, 1));
    snprintf(cur_kind, sizeof cur_kind, "%s", PQgetvalue(res, 0, 0));
    snprintf(cur_tf, sizeof cur_tf, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    qb_symbol_t *syms = calloc(MAX_SYMBOLS, sizeof *syms);
    if (!syms || !cur_syms) {
        free(syms);
        free(cur_syms);
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    int nsyms = 0;
    cJSON *sa = api_body_get(r, "symbols");
    if (sa && !cJSON_IsNull(sa)) {
        nsyms = check_symbols(r, sa, syms);
    } else {
        char *save = NULL;
        for (char *t = strtok_r(cur_syms, ",", &save); t && nsyms < MAX_SYMBOLS;
             t = strtok_r(NULL, ",", &save))
            snprintf(syms[nsyms++].s, sizeof syms[0].s, "%s", t);
    }
    free(cur_syms);
    if (nsyms < 0) {
        free(syms);
        return;
    }
    if (!kind) kind = cur_kind;
    if (!tf) tf = cur_tf;
    char *canon = check_params(r, kind, params);
    if (canon) send_set_params(r, id, NULL, kind, canon, syms, nsyms, tf, "strategy_params");
    free(canon);
    free(syms);
}

/* The account of an existing strategy into acc; 0 after a 404 / error. */
static int strategy_account(api_req_t *r, const char *id, char *acc, size_t cap) {
    const char *p[] = {id};
    PGresult *res =
        api_query(r, "SELECT account FROM features.strategies WHERE strategy_id = $1", 1, p);
    if (!res) return 0;
    int n = PQntuples(res);
    if (n) snprintf(acc, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!n) api_error(r, 404, "strategy", "no such strategy");
    return n;
}

static void enable(api_req_t *r, int on) {
    const char *id = path_strategy(r);
    char acc[80];
    if (!id || !strategy_account(r, id, acc, sizeof acc)) return;
    Qb__V1__Command__StrategyParams sp = QB__V1__COMMAND__STRATEGY_PARAMS__INIT;
    sp.strategy_id = (char *)id;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = "qb-features";
    cmd.kind = on ? QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_ENABLE
                  : QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_DISABLE;
    cmd.account = acc;
    cmd.params_case = QB__V1__COMMAND__PARAMS_STRATEGY;
    cmd.strategy = &sp;
    char cid[40];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    api_audit(r, on ? "strategy_enable" : "strategy_disable", id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "strategy_id", id);
    cJSON_AddBoolToObject(o, "enabled", on);
    cJSON_AddStringToObject(o, "status", "accepted");
    api_json(r, 202, o);
}

static void h_enable(api_req_t *r) { enable(r, 1); }
static void h_disable(api_req_t *r) { enable(r, 0); }

/* STRATEGY_SET_MODE for an existing strategy */
static void set_mode(api_req_t *r, const char *id, const char *mode, int64_t pct,
                     const char *reason, const char *action) {
    char acc[80];
    if (!strategy_account(r, id, acc, sizeof acc)) return;
    Qb__V1__Command__StrategyModeParams mp = QB__V1__COMMAND__STRATEGY_MODE_PARAMS__INIT;
    mp.strategy_id = (char *)id;
    mp.mode = !strcmp(mode, "live")    ? QB__V1__TRADING_MODE__TRADING_MODE_LIVE
              : !strcmp(mode, "paper") ? QB__V1__TRADING_MODE__TRADING_MODE_PAPER
                                       : QB__V1__TRADING_MODE__TRADING_MODE_BACKTEST;
    mp.rollout_pct = (uint32_t)pct;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = "qb-execution";
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_SET_MODE;
    cmd.account = acc;
    cmd.reason = (char *)(reason ? reason : "");
    cmd.params_case = QB__V1__COMMAND__PARAMS_STRATEGY_MODE;
    cmd.strategy_mode = &mp;
    char cid[40];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddStringToObject(d, "account", acc);
    cJSON_AddStringToObject(d, "mode", mode);
    if (!strcmp(mode, "live")) cJSON_AddNumberToObject(d, "rollout_pct", (double)(pct ? pct : 100));
    if (reason) cJSON_AddStringToObject(d, "reason", reason);
    api_audit(r, action, id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "strategy_id", id);
    cJSON_AddStringToObject(o, "account", acc);
    cJSON_AddStringToObject(o, "mode", mode);
    if (!strcmp(mode, "live")) cJSON_AddNumberToObject(o, "rollout_pct", (double)(pct ? pct : 100));
    cJSON_AddStringToObject(o, "status", "accepted");
    api_json(r, 202, o);
}

static void h_mode(api_req_t *r) {
    static const char *const allowed[] = {"mode", "rollout_pct", "reason", NULL};
    const char *id = path_strategy(r);
    if (!id) return;
    const char *mode = NULL, *reason = NULL;
    int64_t pct = 0;
    if (!api_body_only(r, allowed) || !api_body_enum(r, "mode", 1, "off|paper|live", &mode) ||
        !api_body_int(r, "rollout_pct", 0, 1, 100, &pct) ||
        !api_body_str(r, "reason", 0, 500, &reason))
        return;
    if (!strcmp(mode, "live") && r->who.role < QB_ROLE_ADMIN) {
        api_error(r, 403, "mode",
                  "going live is an approval: an admin must give it (POST "
                  "/api/v1/strategies/%s/approve-live)",
                  id);
        return;
    }
    if (pct && strcmp(mode, "live")) {
        api_error(r, 400, "rollout_pct", "rollout_pct: only with mode live");
        return;
    }
    set_mode(r, id, mode, pct, reason, "strategy_mode");
}

static void h_approve_live(api_req_t *r) {
    static const char *const allowed[] = {"rollout_pct", "reason", NULL};
    const char *id = path_strategy(r);
    if (!id) return;
    const char *reason = NULL;
    int64_t pct = 0;
    if (!api_body_only(r, allowed) || !api_body_int(r, "rollout_pct", 0, 1, 100, &pct) ||
        !api_body_str(r, "reason", 0, 500, &reason))
        return;
    set_mode(r, id, "live", pct, reason, "strategy_approve_live");
}

/* ---- the table -------------------------------------------------------------------------------- */
#define S_CREATE                                                                                \
    "{\"type\":\"object\",\"required\":[\"strategy_id\",\"kind\",\"symbols\",\"timeframe\"],"    \
    "\"additionalProperties\":false,\"properties\":{\"strategy_id\":{\"type\":\"string\","       \
    "\"pattern\":\"^[A-Za-z0-9_.:-]{1,100}$\"},\"kind\":{\"type\":\"string\",\"description\":"   \
    "\"libs/strategy registry name: sma_cross, ema_cross, rsi_reversion, macd_momentum, "        \
    "bollinger_reversion, bollinger_breakout, donchian_breakout, basic_signals\"},"              \
    "\"params\":{\"type\":\"object\",\"description\":\"the kind's parameters (absent = "         \
    "defaults)\"},\"symbols\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":500,\"items\":"    \
    "{\"type\":\"string\"}},\"timeframe\":{\"type\":\"string\",\"enum\":[\"1m\",\"5m\","         \
    "\"15m\",\"30m\",\"1h\",\"4h\",\"1d\",\"1w\"]},\"account\":{\"type\":\"string\","            \
    "\"pattern\":\"^[A-Za-z0-9_.:-]{1,64}$\",\"description\":\"default: default\"}}}"
#define S_PARAMS                                                                                \
    "{\"type\":\"object\",\"required\":[\"params\"],\"additionalProperties\":false,"             \
    "\"properties\":{\"params\":{\"type\":\"object\",\"description\":\"the whole parameter "     \
    "object (absent parameters take their defaults)\"},\"kind\":{\"type\":\"string\"},"          \
    "\"symbols\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":500,\"items\":{\"type\":"       \
    "\"string\"}},\"timeframe\":{\"type\":\"string\",\"enum\":[\"1m\",\"5m\",\"15m\",\"30m\","   \
    "\"1h\",\"4h\",\"1d\",\"1w\"]}}}"
#define S_MODE                                                                                  \
    "{\"type\":\"object\",\"required\":[\"mode\"],\"additionalProperties\":false,"               \
    "\"properties\":{\"mode\":{\"type\":\"string\",\"enum\":[\"off\",\"paper\",\"live\"],"      \
    "\"description\":\"live: admins only (it is the live approval)\"},\"rollout_pct\":{"         \
    "\"type\":\"integer\",\"minimum\":1,\"maximum\":100},\"reason\":{\"type\":\"string\","       \
    "\"maxLength\":500}}}"
#define S_APPROVE                                                                               \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"rollout_pct\":{"      \
    "\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"staged rollout: "      \
    "percent of each live order's quantity (default 100)\"},\"reason\":{\"type\":\"string\","    \
    "\"maxLength\":500}}}"
#define R_ACCEPTED                                                                             \
    "{\"type\":\"object\",\"properties\":{\"command_id\":{\"type\":\"string\",\"format\":"      \
    "\"uuid\"},\"strategy_id\":{\"type\":\"string\"},\"status\":{\"type\":\"string\"}}}"

const api_route_t api_routes_strategies[] = {
    {"GET", "/api/v1/strategies", QB_ROLE_VIEWER, h_list, "strategies",
     "Strategy instances with their trading mode and live approval", 200, NULL, NULL,
     {{"account", API_P_STRING, 0, 0, 64, NULL, "only this account"},
      {"enabled", API_P_BOOL, 0, 0, 0, NULL, "only enabled (true) or disabled (false)"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows per page (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {"GET", "/api/v1/strategies/{strategy}", QB_ROLE_VIEWER, h_get, "strategies",
     "One strategy instance", 200, NULL, NULL, {{0}}, 0},
    {"POST", "/api/v1/strategies", QB_ROLE_TRADER, h_create, "strategies",
     "Create a strategy instance (STRATEGY_SET_PARAMS to qb-features; starts enabled, paper)",
     202, S_CREATE, R_ACCEPTED, {{0}}, 0},
    {"PUT", "/api/v1/strategies/{strategy}/params", QB_ROLE_TRADER, h_params, "strategies",
     "Replace a strategy's parameters (and optionally kind, symbols, timeframe)", 202,
     S_PARAMS, R_ACCEPTED, {{0}}, 0},
    {"POST", "/api/v1/strategies/{strategy}/enable", QB_ROLE_TRADER, h_enable, "strategies",
     "Start running a strategy instance", 202, NULL, R_ACCEPTED, {{0}}, 0},
    {"POST", "/api/v1/strategies/{strategy}/disable", QB_ROLE_TRADER, h_disable, "strategies",
     "Stop running a strategy instance (its open orders stay)", 202, NULL, R_ACCEPTED, {{0}},
     0},
    {"PUT", "/api/v1/strategies/{strategy}/mode", QB_ROLE_TRADER, h_mode, "strategies",
     "Trading mode off | paper | live (live: admins; STRATEGY_SET_MODE to qb-execution)", 202,
     S_MODE, R_ACCEPTED, {{0}}, 0},
    {"POST", "/api/v1/strategies/{strategy}/approve-live", QB_ROLE_ADMIN, h_approve_live,
     "strategies", "Approve live trading of a strategy (optionally a staged rollout percent)",
     202, S_APPROVE, R_ACCEPTED, {{0}}, 0},
    {0}};
