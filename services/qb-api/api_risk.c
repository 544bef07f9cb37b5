/* api_risk.c — the risk routes of the gateway: limits, the kill switch,
 * portfolio risk (VaR/CVaR) and the risk event log (see api.h for the
 * handler API).
 *
 * Reads come from qb-risk's tables (schema risk) on the read-only
 * connection, plus trading.kill_switch (qb-execution's view of the switch).
 * Writes are control Commands to target "qb-risk":
 *   PUT    /risk/limits       SET_LIMITS    (admin)
 *   POST   /risk/kill-switch  KILL_SWITCH   (trader)
 *   DELETE /risk/kill-switch  RESUME        (admin: also ends a daily-loss
 *                                            or drawdown pause)
 *   POST   /risk/var/snapshot RISK_SNAPSHOT (trader)
 * A 202 means qb-risk will apply the command: limits are checked here with
 * the very checks qb-risk runs (libs/risk qb_risk_limit_check: known kind,
 * key allowed, value >= 0, at most the hard maximum compiled into qb-risk),
 * so a command this route accepts is never refused by the service (above
 * a hard maximum is a 422 here).
 *
 * Limit names are the lower-case LimitKind names without the prefix
 * (max_order_qty, max_order_notional, max_position_qty, max_daily_loss,
 * max_drawdown, sizing_rule, ...), values decimals in the kind's unit
 * (units, money, fraction, ratio, count, rule). A keyed limit ("key": a
 * symbol for order/position/lot/price-deviation kinds — upper-cased —, a
 * sector or asset class for the exposure kinds) overrides the account-wide
 * value for that key.
 *
 * Accounts: "*" (or none, where said) is every account — the platform-wide
 * kill switch, stored by qb-risk as account '*' (risk.accounts) and sent as
 * an empty Command.account. Reads default to QB_API_DEFAULT_ACCOUNT. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_decimal.h"
#include "core/qb_uuid.h"
#include "qb/v1/control.pb-c.h"
#include "risk/qb_risk_limits.h"

#define RISK_TARGET "qb-risk"
#define RISK_MAX_LIMITS 100

/* ---- names ---------------------------------------------------------------------------- */
/* RiskEventKind 1..10 and Severity 1..3, lower case (proto order). */
static const char EVENT_KINDS[] =
    "limit_breach|limit_warning|daily_loss_pause|kill_switch_on|kill_switch_off|"
    "reconciliation_discrepancy|resumed|limits_changed|limits_refused|risk_snapshot";
static const char SEVERITIES[] = "{info,warning,critical}";

/* "{max_order_qty,...}": a PostgreSQL text[] indexed by kind (1-based like
 * the kinds), built once from libs/risk's table. */
static char limit_names_arr[1024];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void lower_name(int kind, char *out, size_t n) {
    snprintf(out, n, "%s", qb_risk_limit_name(kind));
    for (char *c = out; *c; c++) *c = (char)tolower((unsigned char)*c);
}

static void build_names(void) {
    size_t pos = 0;
    pos += (size_t)snprintf(limit_names_arr + pos, sizeof limit_names_arr - pos, "{");
    for (int k = 1; k < QB_RISK_LIMIT_KINDS; k++) {
        char nm[64];
        lower_name(k, nm, sizeof nm);
        pos += (size_t)snprintf(limit_names_arr + pos, sizeof limit_names_arr - pos, "%s%s",
                                k > 1 ? "," : "", qb_risk_limit_valid(k) ? nm : "unknown");
    }
    snprintf(limit_names_arr + pos, sizeof limit_names_arr - pos, "}");
}

static const char *limit_names(void) {
    pthread_once(&names_once, build_names);
    return limit_names_arr;
}

/* kind number of a lower-case name; 0 when unknown */
static int limit_kind_of(const char *s) {
    for (int k = 1; k < QB_RISK_LIMIT_KINDS; k++) {
        char nm[64];
        if (!qb_risk_limit_valid(k)) continue;
        lower_name(k, nm, sizeof nm);
        if (!strcmp(nm, s)) return k;
    }
    return 0;
}

/* kinds whose key is a symbol (upper-cased); the others take a sector or an
 * asset class name */
static int key_is_symbol(int kind) {
    return kind == QB_RISK_LIMIT_MAX_ORDER_QTY || kind == QB_RISK_LIMIT_MAX_ORDER_NOTIONAL ||
           kind == QB_RISK_LIMIT_MAX_POSITION_QTY ||
           kind == QB_RISK_LIMIT_MAX_POSITION_NOTIONAL ||
           kind == QB_RISK_LIMIT_MAX_PRICE_DEVIATION || kind == QB_RISK_LIMIT_LOT_SIZE;
}

static cJSON *dec_json(qb_dec_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    return cJSON_CreateRaw(b);
}

/* ---- accounts ------------------------------------------------------------------------- */
static int account_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 63) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.:-", *p)) return 0;
    return 1;
}

/* The account a request names: query parameter (reads, DELETE) or body
 * member (writes); `all_ok`: "*" allowed (-> "*"); absent -> `absent`
 * (NULL: the default account). NULL after a 400. */
static const char *account_arg(api_req_t *r, const char *given, int all_ok, const char *absent) {
    if (!given) return absent ? absent : api_cfg(r->api)->default_account;
    if (all_ok && !strcmp(given, "*")) return "*";
    if (!account_ok(given)) {
        api_error(r, 400, "account",
                  "account: '%.64s' must be 1-63 of letters, digits, '_', '.', ':', '-'%s", given,
                  all_ok ? " (or \"*\" for every account)" : "");
        return NULL;
    }
    return given;
}

static const char *q_account(api_req_t *r, int all_ok, const char *absent) {
    return account_arg(r, api_q_str(r, "account"), all_ok, absent);
}

static const char *body_account(api_req_t *r, int all_ok, const char *absent) {
    const char *a = NULL;
    if (!api_body_str(r, "account", 0, 64, &a)) return NULL;
    return account_arg(r, a, all_ok, absent);
}

/* ---- GET /risk/limits ------------------------------------------------------------------- */
static void h_risk_limits_get(api_req_t *r) {
    const char *acc = q_account(r, 0, NULL);
    if (!acc) return;
    const char *p[] = {acc};
    PGresult *res = api_query(
        r,
        "SELECT kind, key, value::text AS raw, api.px(value) AS value, updated_at, updated_by "
        "FROM risk.limits WHERE account = $1 ORDER BY kind, key",
        1, p);
    if (!res) return;
    int n = PQntuples(res);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account", acc);
    cJSON *arr = cJSON_AddArrayToObject(o, "limits");
    for (int k = 1; k < QB_RISK_LIMIT_KINDS; k++) {
        if (!qb_risk_limit_valid(k)) continue;
        char nm[64];
        lower_name(k, nm, sizeof nm);
        qb_dec_t hard = qb_risk_limit_hard_max(k), def = qb_risk_limit_default(k);
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "kind", nm);
        cJSON_AddStringToObject(l, "unit", qb_risk_limit_unit(k));
        cJSON_AddBoolToObject(l, "keyed", qb_risk_limit_keyed(k));
        cJSON_AddItemToObject(l, "default", def ? dec_json(def) : cJSON_CreateNull());
        cJSON_AddItemToObject(l, "hard_max", dec_json(hard));
        cJSON *val = NULL, *upd = NULL, *by = NULL;
        qb_dec_t in_force = def ? def : hard;
        cJSON *keys = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            if (atoi(PQgetvalue(res, i, 0)) != k) continue;
            qb_dec_t v = strtoll(PQgetvalue(res, i, 2), NULL, 10);
            cJSON *row = api_pg_row_json(res, i); /* kind key raw value updated_at updated_by */
            if (!PQgetvalue(res, i, 1)[0]) {
                val = cJSON_DetachItemFromObject(row, "value");
                upd = cJSON_DetachItemFromObject(row, "updated_at");
                by = cJSON_DetachItemFromObject(row, "updated_by");
                in_force = v < hard ? v : hard;
                cJSON_Delete(row);
            } else {
                cJSON_DeleteItemFromObject(row, "kind");
                cJSON_DeleteItemFromObject(row, "raw");
                cJSON_AddItemToObject(row, "in_force", dec_json(v < hard ? v : hard));
                cJSON_AddItemToArray(keys, row);
            }
        }
        cJSON_AddItemToObject(l, "value", val ? val : cJSON_CreateNull());
        cJSON_AddItemToObject(l, "in_force", dec_json(in_force));
        cJSON_AddItemToObject(l, "updated_at", upd ? upd : cJSON_CreateNull());
        cJSON_AddItemToObject(l, "updated_by", by ? by : cJSON_CreateNull());
        cJSON_AddItemToObject(l, "keys", keys);
        cJSON_AddItemToArray(arr, l);
    }
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- PUT /risk/limits ------------------------------------------------------------------ */
/* the decimal text of a JSON number or string; 0 when neither */
static int dec_text(const cJSON *m, char *buf, size_t n) {
    if (cJSON_IsString(m)) {
        snprintf(buf, n, "%s", m->valuestring);
        return 1;
    }
    if (cJSON_IsNumber(m) && isfinite(m->valuedouble)) {
        snprintf(buf, n, "%.15g", m->valuedouble); /* see api_body_dec */
        return 1;
    }
    return 0;
}

static void h_risk_limits_put(api_req_t *r) {
    static const char *const allowed[] = {"account", "limits", "replace_all", "reason", NULL};
    const char *reason = NULL;
    int replace_all = 0;
    if (!api_body_only(r, allowed) || !api_body_bool(r, "replace_all", 0, &replace_all) ||
        !api_body_str(r, "reason", 0, 200, &reason))
        return;
    const char *acc = body_account(r, 0, NULL);
    if (!acc) return;
    cJSON *ls = api_body_get(r, "limits");
    if (!ls || cJSON_IsNull(ls)) {
        api_error(r, 400, "limits", "limits: required");
        return;
    }
    if (!cJSON_IsArray(ls)) {
        api_error(r, 400, "limits", "limits: expected an array of {kind, value, key}");
        return;
    }
    int n = cJSON_GetArraySize(ls);
    if (n > RISK_MAX_LIMITS) {
        api_error(r, 400, "limits", "limits: at most %d", RISK_MAX_LIMITS);
        return;
    }
    if (n == 0 && !replace_all) {
        api_error(r, 400, "limits", "limits: nothing to change (an empty list needs replace_all)");
        return;
    }
    Qb__V1__Command__Limit lim[RISK_MAX_LIMITS];
    Qb__V1__Command__Limit *lp[RISK_MAX_LIMITS];
    char keys[RISK_MAX_LIMITS][QB_RISK_KEY_MAX + 1];
    char field[64], err[256];
    cJSON *echo = cJSON_CreateArray();
    int i = 0;
    for (cJSON *it = ls->child; it; it = it->next, i++) {
        snprintf(field, sizeof field, "limits[%d]", i);
        if (!cJSON_IsObject(it)) {
            api_error(r, 400, field, "%s: expected an object {kind, value, key}", field);
            goto bad;
        }
        for (cJSON *m = it->child; m; m = m->next)
            if (strcmp(m->string, "kind") && strcmp(m->string, "value") &&
                strcmp(m->string, "key")) {
                snprintf(field, sizeof field, "limits[%d].%.30s", i, m->string);
                api_error(r, 400, field, "unknown field '%.30s' (kind, value, key)", m->string);
                goto bad;
            }
        cJSON *jk = cJSON_GetObjectItemCaseSensitive(it, "kind");
        cJSON *jv = cJSON_GetObjectItemCaseSensitive(it, "value");
        cJSON *jkey = cJSON_GetObjectItemCaseSensitive(it, "key");
        snprintf(field, sizeof field, "limits[%d].kind", i);
        if (!cJSON_IsString(jk)) {
            api_error(r, 400, field, "%s: required, a limit name such as max_order_qty", field);
            goto bad;
        }
        int kind = limit_kind_of(jk->valuestring);
        if (!kind) {
            api_error(r, 400, field,
                      "%s: unknown limit '%.40s' (GET /api/v1/risk/limits lists them)", field,
                      jk->valuestring);
            goto bad;
        }
        const char *key = "";
        snprintf(field, sizeof field, "limits[%d].key", i);
        if (jkey && !cJSON_IsNull(jkey)) {
            if (!cJSON_IsString(jkey)) {
                api_error(r, 400, field, "%s: expected a string", field);
                goto bad;
            }
            key = jkey->valuestring;
            if (*key && !qb_risk_limit_keyed(kind)) {
                api_error(r, 400, field, "%s: %s is account-wide and takes no key", field,
                          jk->valuestring);
                goto bad;
            }
            if (*key && qb_risk_limit_check(kind, key, qb_risk_limit_hard_max(kind), err,
                                            sizeof err) != QB_OK) {
                api_error(r, 400, field, "%s: %s", field, err);
                goto bad;
            }
        }
        snprintf(keys[i], sizeof keys[i], "%s", key);
        if (key_is_symbol(kind))
            for (char *c = keys[i]; *c; c++) *c = (char)toupper((unsigned char)*c);
        for (int j = 0; j < i; j++)
            if ((int)lim[j].kind == kind && !strcmp(keys[j], keys[i])) {
                snprintf(field, sizeof field, "limits[%d]", i);
                api_error(r, 400, field, "%s: %s%s%s is given twice", field, jk->valuestring,
                          *keys[i] ? " for " : "", keys[i]);
                goto bad;
            }
        snprintf(field, sizeof field, "limits[%d].value", i);
        char txt[64];
        qb_dec_t v;
        if (!jv || cJSON_IsNull(jv)) {
            api_error(r, 400, field, "%s: required", field);
            goto bad;
        }
        if (!dec_text(jv, txt, sizeof txt) || qb_dec_parse(txt, strlen(txt), &v) != QB_OK) {
            api_error(r, 400, field, "%s: expected a decimal with at most 8 decimals", field);
            goto bad;
        }
        qb_err_t e = qb_risk_limit_check(kind, keys[i], v, err, sizeof err);
        if (e == QB_ERR_RANGE) {
            api_error(r, 422, field, "%s: %s", field, err);
            goto bad;
        }
        if (e != QB_OK) {
            api_error(r, 400, field, "%s: %s", field, err);
            goto bad;
        }
        Qb__V1__Command__Limit init = QB__V1__COMMAND__LIMIT__INIT;
        lim[i] = init;
        lim[i].kind = (Qb__V1__LimitKind)kind;
        lim[i].value = v;
        lim[i].symbol = keys[i];
        lp[i] = &lim[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "kind", jk->valuestring);
        cJSON_AddItemToObject(x, "value", dec_json(v));
        if (*keys[i]) cJSON_AddStringToObject(x, "key", keys[i]);
        cJSON_AddItemToArray(echo, x);
    }
    Qb__V1__Command__LimitsParams lps = QB__V1__COMMAND__LIMITS_PARAMS__INIT;
    lps.n_limits = (size_t)n;
    lps.limits = lp;
    lps.replace_all = replace_all;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)RISK_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_SET_LIMITS;
    cmd.account = (char *)acc;
    cmd.reason = (char *)(reason ? reason : "");
    cmd.params_case = QB__V1__COMMAND__PARAMS_LIMITS;
    cmd.limits = &lps;
    char cid[QB_UUID_STRLEN];
    if (!api_send_command(r, &cmd, cid)) goto bad;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddBoolToObject(d, "replace_all", replace_all);
    cJSON_AddItemToObject(d, "limits", cJSON_Duplicate(echo, 1));
    if (reason) cJSON_AddStringToObject(d, "reason", reason);
    api_audit(r, "risk_limits_set", acc, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "account", acc);
    cJSON_AddBoolToObject(o, "replace_all", replace_all);
    cJSON_AddItemToObject(o, "limits", echo);
    api_json(r, 202, o);
    return;
bad:
    cJSON_Delete(echo);
}

/* ---- kill switch ------------------------------------------------------------------------- */
static void h_risk_kill_get(api_req_t *r) {
    const char *acc = q_account(r, 0, "");
    if (!acc) return;
    const char *p[] = {*acc ? acc : NULL};
    /* the platform row first, then the named account (a row even when
     * qb-risk never stored it: ACTIVE), or every account not ACTIVE */
    PGresult *res = api_query(
        r,
        "WITH a AS (SELECT account, status, paused_until, status_text, updated_at FROM "
        "risk.accounts WHERE account = '*' OR account = $1 OR ($1 IS NULL AND status <> "
        "'ACTIVE') UNION ALL SELECT $1, 'ACTIVE', 0, '', NULL WHERE $1 IS NOT NULL AND NOT "
        "EXISTS (SELECT 1 FROM risk.accounts WHERE account = $1) UNION ALL SELECT '*', "
        "'ACTIVE', 0, '', NULL WHERE NOT EXISTS (SELECT 1 FROM risk.accounts WHERE account = "
        "'*')) "
        "SELECT a.account, a.status, a.status = 'HALTED' AS engaged, CASE WHEN a.paused_until "
        "> 0 THEN api.ns_text(a.paused_until) END AS paused_until, a.status_text AS text, "
        "a.updated_at AS changed_at, k.active AS execution_engaged, k.changed_at AS "
        "execution_changed_at FROM a LEFT JOIN trading.kill_switch k USING (account) "
        "ORDER BY a.account <> '*', a.account",
        1, p);
    if (!res) return;
    cJSON *o = cJSON_CreateObject();
    cJSON *accs = cJSON_CreateArray();
    int platform = 0;
    const char *acc_status = "ACTIVE";
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *row = api_pg_row_json(res, i);
        if (!strcmp(PQgetvalue(res, i, 0), "*")) {
            platform = PQgetvalue(res, i, 2)[0] == 't';
            cJSON_DeleteItemFromObject(row, "account");
            cJSON_AddItemToObject(o, "platform", row);
        } else {
            if (*acc) acc_status = PQgetvalue(res, i, 1);
            cJSON_AddItemToArray(accs, row);
        }
    }
    if (*acc) {
        cJSON_AddStringToObject(o, "account", acc);
        /* what an order of the account meets now */
        int eng = platform || !strcmp(acc_status, "HALTED");
        cJSON_AddBoolToObject(o, "engaged", eng);
        cJSON_AddStringToObject(o, "status", platform ? "HALTED" : acc_status);
        cJSON_AddBoolToObject(o, "trading_allowed", !platform && !strcmp(acc_status, "ACTIVE"));
    }
    PQclear(res);
    cJSON_AddItemToObject(o, "accounts", accs);
    api_json(r, 200, o);
}

static void h_risk_kill_on(api_req_t *r) {
    static const char *const allowed[] = {"account", "reason", "keep_open_orders", NULL};
    const char *reason = NULL;
    int keep = 0;
    if (!api_body_only(r, allowed) || !api_body_str(r, "reason", 1, 200, &reason) ||
        !api_body_bool(r, "keep_open_orders", 0, &keep))
        return;
    const char *acc = body_account(r, 1, "*");
    if (!acc) return;
    if (keep) {
        /* qb-execution cancels every open order of the account on
         * KILL_SWITCH_ON whatever the command said: do not promise less */
        api_error(r, 422, "keep_open_orders",
                  "keep_open_orders: not supported — qb-execution cancels every open order "
                  "when the kill switch engages");
        return;
    }
    Qb__V1__Command__KillSwitchParams kp = QB__V1__COMMAND__KILL_SWITCH_PARAMS__INIT;
    kp.keep_open_orders = keep;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)RISK_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_KILL_SWITCH;
    cmd.account = (char *)(strcmp(acc, "*") ? acc : "");
    cmd.reason = (char *)reason;
    cmd.params_case = QB__V1__COMMAND__PARAMS_KILL_SWITCH;
    cmd.kill_switch = &kp;
    char cid[QB_UUID_STRLEN];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddStringToObject(d, "reason", reason);
    api_audit(r, "kill_switch_on", acc, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "account", acc);
    cJSON_AddBoolToObject(o, "engaged", 1);
    api_json(r, 202, o);
}

static void h_risk_kill_off(api_req_t *r) {
    const char *acc = q_account(r, 1, "*");
    if (!acc) return;
    const char *reason = api_q_str(r, "reason");
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)RISK_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_RESUME;
    cmd.account = (char *)(strcmp(acc, "*") ? acc : "");
    cmd.reason = (char *)(reason ? reason : "");
    char cid[QB_UUID_STRLEN];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    if (reason) cJSON_AddStringToObject(d, "reason", reason);
    api_audit(r, "kill_switch_off", acc, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "account", acc);
    cJSON_AddBoolToObject(o, "engaged", 0);
    api_json(r, 202, o);
}

/* ---- VaR ----------------------------------------------------------------------------------- */
static void h_risk_var_get(api_req_t *r) {
    const char *acc = q_account(r, 0, NULL);
    if (!acc) return;
    const char *p[] = {acc};
    /* positions are qty x 1e8 times mark x 1e8: / 1e16 */
    PGresult *res = api_query(
        r,
        "SELECT (SELECT row_to_json(x) FROM (SELECT snapshot_id, api.ns_text(at) AS time, "
        "figures FROM risk.snapshots WHERE account = $1 ORDER BY at DESC, snapshot_id DESC "
        "LIMIT 1) x) AS snapshot, "
        "(SELECT row_to_json(y) FROM (SELECT api.px(equity) AS equity, api.px(cash) AS cash, "
        "api.px(realized) AS realized, api.px(unrealized) AS unrealized, "
        "(SELECT trim_scale(coalesce(sum(abs(qty::numeric * mark)), 0) / 1e16) FROM "
        "risk.positions WHERE account = $1) AS gross_exposure, "
        "(SELECT trim_scale(coalesce(sum(qty::numeric * mark), 0) / 1e16) FROM risk.positions "
        "WHERE account = $1) AS net_exposure, "
        "(SELECT count(*) FROM risk.positions WHERE account = $1 AND qty <> 0) AS positions, "
        "updated_at FROM risk.account_state WHERE account = $1) y) AS exposure",
        1, p);
    if (!res) return;
    int none = PQgetisnull(res, 0, 0) && PQgetisnull(res, 0, 1);
    if (none) {
        PQclear(res);
        api_error(r, 404, "account",
                  "no risk figures for account '%s' (no snapshot and no books yet)", acc);
        return;
    }
    cJSON *o = api_pg_row_json(res, 0);
    PQclear(res);
    cJSON_AddStringToObject(o, "account", acc);
    api_json(r, 200, o);
}

static void h_risk_var_snapshot(api_req_t *r) {
    static const char *const allowed[] = {"account", NULL};
    if (!api_body_only(r, allowed)) return;
    const char *acc = body_account(r, 1, NULL);
    if (!acc) return;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)RISK_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_RISK_SNAPSHOT;
    cmd.account = (char *)(strcmp(acc, "*") ? acc : "");
    char cid[QB_UUID_STRLEN];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    api_audit(r, "risk_snapshot", acc, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "account", acc);
    api_json(r, 202, o);
}

/* ---- events ----------------------------------------------------------------------------------- */
static void h_risk_events(api_req_t *r) {
    const char *acc = q_account(r, 1, "");
    if (!acc) return;
    const char *kind = api_q_str(r, "kind");
    int64_t limit = api_q_int(r, "limit", 100);
    int64_t from = api_q_time(r, "from", 0), to = api_q_time(r, "to", 0);
    char kn[16] = "", lim[24], fr[24], tt[24], cur_at[24] = "", cur_id[64] = "";
    if (kind) {
        int k = 1;
        for (const char *s = EVENT_KINDS; s; k++) {
            const char *e = strchr(s, '|');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (len == strlen(kind) && !strncmp(s, kind, len)) {
                snprintf(kn, sizeof kn, "%d", k);
                break;
            }
            s = e ? e + 1 : NULL;
        }
    }
    const char *c = api_q_str(r, "cursor");
    if (c) {
        char cur[128];
        if (!api_cursor_decode(r, c, cur, sizeof cur)) return;
        char *bar = strchr(cur, '|');
        int ok = bar != NULL;
        if (ok) {
            *bar = 0;
            ok = *cur && strspn(cur, "0123456789") == strlen(cur) && strlen(cur) < 20 &&
                 qb_uuid_valid(bar + 1);
        }
        if (!ok) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
        snprintf(cur_at, sizeof cur_at, "%.19s", cur);
        snprintf(cur_id, sizeof cur_id, "%.36s", bar + 1);
    }
    if (from && to && to < from) {
        api_error(r, 400, "to", "to: before from");
        return;
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    snprintf(fr, sizeof fr, "%lld", (long long)from);
    snprintf(tt, sizeof tt, "%lld", (long long)to);
    const char *p[] = {*acc && strcmp(acc, "*") ? acc : NULL,
                       !strcmp(acc, "*") ? "1" : NULL,
                       kn[0] ? kn : NULL,
                       from ? fr : NULL,
                       to ? tt : NULL,
                       cur_at[0] ? cur_at : NULL,
                       cur_id[0] ? cur_id : NULL,
                       lim,
                       limit_names(),
                       SEVERITIES};
    static const char *const kinds_arr =
        "{limit_breach,limit_warning,daily_loss_pause,kill_switch_on,kill_switch_off,"
        "reconciliation_discrepancy,resumed,limits_changed,limits_refused,risk_snapshot}";
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT event_id::text AS event_id, CASE WHEN account = '' THEN '*' ELSE account END "
             "AS account, coalesce(('%s'::text[])[kind], kind::text) AS kind, "
             "coalesce(($10::text[])[severity], 'info') AS severity, CASE WHEN limit_kind > 0 "
             "THEN coalesce(($9::text[])[limit_kind], limit_kind::text) END AS limit, "
             "CASE WHEN limit_kind > 0 THEN api.px(observed) END AS observed, CASE WHEN limit_kind > "
             "0 THEN api.px(limit_value) END AS limit_value, message, "
             "nullif(command_id, '') AS command_id, api.ns_text(at) AS time, at::text AS "
             "cursor_at FROM risk.events WHERE ($1::text IS NULL OR account = $1 OR account = "
             "'') AND ($2::text IS NULL OR account = '') AND ($3::int IS NULL OR kind = $3::int) "
             "AND ($4::bigint IS NULL OR at >= $4::bigint) AND ($5::bigint IS NULL OR at < "
             "$5::bigint) AND ($6::bigint IS NULL OR (at, event_id) < ($6::bigint, $7::uuid)) "
             "ORDER BY at DESC, event_id DESC LIMIT $8::int",
             kinds_arr);
    PGresult *res = api_query(r, sql, 10, p);
    if (!res) return;
    int n = PQntuples(res);
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (int i = 0; i < n; i++) {
        cJSON *row = api_pg_row_json(res, i);
        cJSON_DeleteItemFromObject(row, "cursor_at");
        cJSON_AddItemToArray(items, row);
    }
    if (n == limit && n > 0) {
        char plain[128], enc[192];
        snprintf(plain, sizeof plain, "%s|%s", PQgetvalue(res, n - 1, PQfnumber(res, "cursor_at")),
                 PQgetvalue(res, n - 1, 0));
        api_cursor_encode(plain, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- the table -------------------------------------------------------------------------------- */
#define S_LIMITS_PUT                                                                             \
    "{\"type\":\"object\",\"required\":[\"limits\"],\"additionalProperties\":false,"             \
    "\"properties\":{\"account\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_.:-]{1,63}$\","  \
    "\"description\":\"default QB_API_DEFAULT_ACCOUNT\"},\"replace_all\":{\"type\":\"boolean\"," \
    "\"description\":\"true: the account's limits become exactly this list\"},\"reason\":{"      \
    "\"type\":\"string\",\"maxLength\":200},\"limits\":{\"type\":\"array\",\"maxItems\":100,"    \
    "\"items\":{\"type\":\"object\",\"required\":[\"kind\",\"value\"],\"additionalProperties\":" \
    "false,\"properties\":{\"kind\":{\"type\":\"string\",\"description\":\"max_order_qty, "      \
    "max_order_notional, max_position_qty, max_position_notional, max_gross_exposure, "          \
    "max_leverage, max_daily_loss, max_drawdown, max_orders_per_minute, max_open_orders, "       \
    "max_risk_per_trade, max_capital_deployed, max_positions, max_sector_exposure, "             \
    "max_asset_class_exposure, max_correlated_exposure, max_price_deviation, sizing_rule, "      \
    "sizing_fraction, sizing_fixed_qty, sizing_atr_multiple, sizing_vol_target, lot_size, "      \
    "max_daily_loss_fraction\"},\"value\":{\"oneOf\":[{\"type\":\"number\"},{\"type\":"   \
    "\"string\"}],\"description\":"                                                            \
    "\"decimal >= 0 in the kind's unit, at most the hard maximum\"},\"key\":{\"type\":"          \
    "\"string\",\"description\":\"symbol, sector or asset class (keyed kinds only)\"}}}}}}"
#define S_KILL_ON                                                                                \
    "{\"type\":\"object\",\"required\":[\"reason\"],\"additionalProperties\":false,"             \
    "\"properties\":{\"account\":{\"type\":\"string\",\"description\":\"an account, or * (the "  \
    "default) for every account\"},\"reason\":{\"type\":\"string\",\"minLength\":1,"             \
    "\"maxLength\":200},\"keep_open_orders\":{\"type\":\"boolean\",\"enum\":[false],"            \
    "\"description\":\"open orders are always canceled\"}}}"
#define S_SNAPSHOT                                                                               \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"account\":{\"type\":" \
    "\"string\",\"description\":\"an account (default QB_API_DEFAULT_ACCOUNT) or * for every "   \
    "account\"}}}"
#define Q_ACCOUNT(desc) {"account", API_P_STRING, 0, 0, 64, NULL, desc}

const api_route_t api_routes_risk[] = {
    {"GET", "/api/v1/risk/limits", QB_ROLE_VIEWER, h_risk_limits_get, "risk",
     "Risk limits of an account: each kind's value, value in force, default and hard maximum",
     200, NULL, NULL, {Q_ACCOUNT("account (default QB_API_DEFAULT_ACCOUNT)")}, 0},
    {"PUT", "/api/v1/risk/limits", QB_ROLE_ADMIN, h_risk_limits_put, "risk",
     "Set risk limits (SET_LIMITS to qb-risk; checked against the hard maxima)", 202,
     S_LIMITS_PUT, NULL, {{0}}, 0},
    {"GET", "/api/v1/risk/kill-switch", QB_ROLE_VIEWER, h_risk_kill_get, "risk",
     "Kill switch state: platform-wide and per account (one account, or every one not active)",
     200, NULL, NULL, {Q_ACCOUNT("one account (default: every account not ACTIVE)")}, 0},
    {"POST", "/api/v1/risk/kill-switch", QB_ROLE_TRADER, h_risk_kill_on, "risk",
     "Engage the kill switch of an account or of every account (open orders are canceled)", 202,
     S_KILL_ON, NULL, {{0}}, 0},
    {"DELETE", "/api/v1/risk/kill-switch", QB_ROLE_ADMIN, h_risk_kill_off, "risk",
     "Release the kill switch (RESUME: also ends a daily-loss or drawdown pause)", 202, NULL,
     NULL,
     {Q_ACCOUNT("an account, or * (the default) for the platform-wide switch"),
      {"reason", API_P_STRING, 0, 0, 200, NULL, "why, for the audit trail"}},
     0},
    {"GET", "/api/v1/risk/var", QB_ROLE_VIEWER, h_risk_var_get, "risk",
     "Latest portfolio risk snapshot (VaR/CVaR, volatility, beta, correlations) and exposure",
     200, NULL, NULL, {Q_ACCOUNT("account (default QB_API_DEFAULT_ACCOUNT)")}, 0},
    {"POST", "/api/v1/risk/var/snapshot", QB_ROLE_TRADER, h_risk_var_snapshot, "risk",
     "Ask qb-risk for a portfolio risk snapshot now (RISK_SNAPSHOT)", 202, S_SNAPSHOT, NULL,
     {{0}}, 0},
    {"GET", "/api/v1/risk/events", QB_ROLE_VIEWER, h_risk_events, "risk",
     "Risk events, newest first (an account's include the platform-wide ones)", 200, NULL, NULL,
     {Q_ACCOUNT("an account, or * for platform-wide events only (default: all)"),
      {"kind", API_P_ENUM, 0, 0, 0, EVENT_KINDS, "event kind"},
      {"from", API_P_TIME, 0, 0, 0, NULL, "events at or after"},
      {"to", API_P_TIME, 0, 0, 0, NULL, "events before"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {0}};
