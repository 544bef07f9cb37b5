/* api_alerts.c — the alerts routes of the gateway: each user's alert rules
 * and in-app notifications (see api.h for the handler API).
 *
 * Rules live in qb-notify's notify.rules and change only through control
 * Commands to target "qb-notify" (ALERT_RULE_UPSERT / _DELETE); the rule's
 * owner is the caller's user name (Command AlertRuleParams.user), so a rule
 * made with an API key belongs to the key's user. Users see and change
 * their own rules; admins any (list: ?all=true). A rule of somebody else is
 * a 404, like a missing one, to a non-admin.
 *
 * Validation is qb-notify's own (libs/notify qb_nrule_add_target and
 * qb_nrule_validate on the rule the command will make, after the same
 * symbol / timeframe / quiet-hours parsing as the service), plus stricter
 * API rules: a field the condition does not use is refused (threshold only
 * for price_above / price_below, move_pct and window_s only for price_move,
 * ...), an in_app target goes to the owner (admins may name another user).
 * So a 202 here means qb-notify stores the rule.
 *
 * PUT merges: members given replace the stored ones (targets as a whole
 * list), members absent keep theirs — the stored webhook URLs and secrets
 * too, which the client never sees; a stored member the new condition does
 * not use is dropped.
 *
 * Secrets: a target's secret is never shown back and never written to the
 * audit trail or the log; a webhook or Slack address is shown as
 * scheme://host/... (qb_naddr_display, like notify.deliveries.address),
 * since their path and query usually carry a token. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "core/qb_uuid.h"
#include "notify/qb_notify.h"
#include "notify/qb_notify_send.h"
#include "qb/v1/control.pb-c.h"

#define NOTIFY_TARGET "qb-notify"
#define MAX_SPAN_S (366LL * 86400) /* window_s / cooldown_s at most a year */

static const char CONDS[] =
    "price_above|price_below|price_move|signal|order_filled|order_rejected|risk_event|"
    "backtest_done";
static const char CHANNELS[] = "webhook|slack|telegram|email|in_app";

/* ---- which member a condition uses ---------------------------------------------------------- */
enum {
    F_THRESHOLD = 1,
    F_MOVE = 2,     /* move_pct, window_s */
    F_SYMBOL = 4,
    F_TIMEFRAME = 8,
    F_STRATEGY = 16,
    F_CONFIDENCE = 32,
    F_ACCOUNT = 64
};

static int cond_uses(qb_ncond_t c) {
    switch (c) {
    case QB_NCOND_PRICE_ABOVE:
    case QB_NCOND_PRICE_BELOW: return F_THRESHOLD | F_SYMBOL | F_TIMEFRAME;
    case QB_NCOND_PRICE_MOVE: return F_MOVE | F_SYMBOL | F_TIMEFRAME;
    case QB_NCOND_SIGNAL: return F_SYMBOL | F_STRATEGY | F_CONFIDENCE | F_ACCOUNT;
    case QB_NCOND_ORDER_FILLED:
    case QB_NCOND_ORDER_REJECTED:
    case QB_NCOND_RISK_EVENT: return F_SYMBOL | F_STRATEGY | F_ACCOUNT;
    default: return 0; /* backtest_done: no filter */
    }
}

/* ---- a rule as the API edits it --------------------------------------------------------------- */
typedef struct rule_in_s {
    char rule_id[QB_NRULE_ID_MAX + 1];
    char owner[QB_NRULE_OWNER_MAX + 1];
    char account[64];
    char name[QB_NRULE_NAME_MAX + 1];
    qb_ncond_t cond;
    char symbol[QB_SYMBOL_MAX + 1];
    char timeframe[9];
    char strategy_id[QB_NRULE_ID_MAX + 1];
    int64_t threshold;
    double move_pct;
    int64_t window_ns;
    double min_confidence;
    int enabled;
    int64_t cooldown_ns;
    char quiet_start[6], quiet_end[6];
    char time_zone[64];
    cJSON *targets; /* [{channel, address, secret}] (owned; holds secrets) */
} rule_in_t;

static void rule_in_free(rule_in_t *x) {
    /* wipe the secrets before giving the memory back */
    for (cJSON *t = x->targets ? x->targets->child : NULL; t; t = t->next) {
        cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "secret");
        if (cJSON_IsString(s)) memset(s->valuestring, 0, strlen(s->valuestring));
    }
    cJSON_Delete(x->targets);
    x->targets = NULL;
}

static int id_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.:-", *p)) return 0;
    return 1;
}

static void minutes_hhmm(const char *v, char *out, size_t n) {
    if (!v || !*v) {
        out[0] = 0;
        return;
    }
    unsigned m = (unsigned)atoi(v) % 1440u;
    snprintf(out, n, "%02u:%02u", (m / 60u) % 24u, m % 60u);
}

/* ---- reading stored rules ---------------------------------------------------------------------- */
/* The caller's rule (any rule for an admin) with everything the command
 * needs, secrets included (never answered). 0 after answering (404, 5xx). */
static int rule_load(api_req_t *r, const char *id, rule_in_t *x) {
    const char *p[] = {id, r->who.role >= QB_ROLE_ADMIN ? "true" : "false", r->who.name};
    PGresult *res = api_query(
        r,
        "SELECT rule_id, owner, coalesce(account, ''), name, condition, coalesce(symbol, ''), "
        "coalesce(timeframe, ''), threshold, move_pct, window_ns, coalesce(strategy_id, ''), "
        "min_confidence, targets::text, enabled, cooldown_ns, quiet_start, quiet_end, time_zone "
        "FROM notify.rules WHERE rule_id = $1 AND ($2::boolean OR owner = $3)",
        3, p);
    if (!res) return 0;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "rule", "no alert rule '%.100s'%s", id,
                  r->who.role >= QB_ROLE_ADMIN ? "" : " of yours");
        return 0;
    }
    memset(x, 0, sizeof *x);
    snprintf(x->rule_id, sizeof x->rule_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(x->owner, sizeof x->owner, "%s", PQgetvalue(res, 0, 1));
    snprintf(x->account, sizeof x->account, "%s", PQgetvalue(res, 0, 2));
    snprintf(x->name, sizeof x->name, "%s", PQgetvalue(res, 0, 3));
    x->cond = qb_ncond_parse(PQgetvalue(res, 0, 4));
    snprintf(x->symbol, sizeof x->symbol, "%s", PQgetvalue(res, 0, 5));
    snprintf(x->timeframe, sizeof x->timeframe, "%s", PQgetvalue(res, 0, 6));
    x->threshold = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    x->move_pct = strtod(PQgetvalue(res, 0, 8), NULL);
    x->window_ns = strtoll(PQgetvalue(res, 0, 9), NULL, 10);
    snprintf(x->strategy_id, sizeof x->strategy_id, "%s", PQgetvalue(res, 0, 10));
    x->min_confidence = strtod(PQgetvalue(res, 0, 11), NULL);
    x->targets = cJSON_Parse(PQgetvalue(res, 0, 12));
    x->enabled = PQgetvalue(res, 0, 13)[0] == 't';
    x->cooldown_ns = strtoll(PQgetvalue(res, 0, 14), NULL, 10);
    minutes_hhmm(PQgetisnull(res, 0, 15) ? NULL : PQgetvalue(res, 0, 15), x->quiet_start,
                 sizeof x->quiet_start);
    minutes_hhmm(PQgetisnull(res, 0, 16) ? NULL : PQgetvalue(res, 0, 16), x->quiet_end,
                 sizeof x->quiet_end);
    snprintf(x->time_zone, sizeof x->time_zone, "%s", PQgetvalue(res, 0, 17));
    /* the stored text is the service's own; secrets are wiped on free */
    memset(PQgetvalue(res, 0, 12), 0, strlen(PQgetvalue(res, 0, 12)));
    PQclear(res);
    if (!cJSON_IsArray(x->targets)) {
        rule_in_free(x);
        api_error(r, 500, NULL, "stored rule '%.100s' has unreadable targets", id);
        return 0;
    }
    return 1;
}

/* Stored targets as they may be shown: channel, address without
 * credentials (webhook / Slack: scheme://host/...), has_secret. */
static cJSON *targets_shown(const char *json) {
    cJSON *in = cJSON_Parse(json), *out = cJSON_CreateArray();
    for (cJSON *t = cJSON_IsArray(in) ? in->child : NULL; t; t = t->next) {
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "channel");
        cJSON *ad = cJSON_GetObjectItemCaseSensitive(t, "address");
        cJSON *se = cJSON_GetObjectItemCaseSensitive(t, "secret");
        const char *chs = cJSON_IsString(ch) ? ch->valuestring : "";
        char shown[QB_NADDR_MAX + 16];
        qb_naddr_display(qb_nchan_parse(chs), cJSON_IsString(ad) ? ad->valuestring : "", shown,
                         sizeof shown);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "channel", chs);
        cJSON_AddStringToObject(o, "address", shown);
        cJSON_AddBoolToObject(o, "has_secret", cJSON_IsString(se) && se->valuestring[0]);
        cJSON_AddItemToArray(out, o);
        if (cJSON_IsString(se)) memset(se->valuestring, 0, strlen(se->valuestring));
    }
    cJSON_Delete(in);
    return out;
}

static const char RULE_COLS[] =
    "rule_id, owner, account, name, condition, symbol, timeframe, CASE WHEN threshold <> 0 "
    "THEN api.px(threshold) END AS threshold, nullif(move_pct, 0) AS move_pct, CASE WHEN "
    "window_ns <> 0 THEN trim_scale(window_ns::numeric / 1e9) END AS window_s, strategy_id, "
    "nullif(min_confidence, 0) AS min_confidence, targets::text AS targets, enabled, "
    "trim_scale(cooldown_ns::numeric / 1e9) AS cooldown_s, CASE WHEN quiet_start IS NOT NULL "
    "THEN lpad((quiet_start / 60)::text, 2, '0') || ':' || lpad((quiet_start % 60)::text, 2, "
    "'0') END AS quiet_start, CASE WHEN quiet_end IS NOT NULL THEN lpad((quiet_end / "
    "60)::text, 2, '0') || ':' || lpad((quiet_end % 60)::text, 2, '0') END AS quiet_end, "
    "time_zone, CASE WHEN last_fired_ns > 0 THEN api.ns_text(last_fired_ns) END AS last_fired, "
    "created_at, updated_at";

static cJSON *rule_json(PGresult *res, int i) {
    cJSON *o = api_pg_row_json(res, i);
    int c = PQfnumber(res, "targets");
    cJSON_ReplaceItemInObject(o, "targets", targets_shown(PQgetvalue(res, i, c)));
    memset(PQgetvalue(res, i, c), 0, strlen(PQgetvalue(res, i, c)));
    return o;
}

/* ---- GET /alerts/rules ------------------------------------------------------------------------ */
static void h_alert_rules_list(api_req_t *r) {
    int all = api_q_bool(r, "all", 0);
    if (all && r->who.role < QB_ROLE_ADMIN) {
        api_error(r, 403, "all", "only an admin may list every user's rules");
        return;
    }
    int64_t limit = api_q_int(r, "limit", 100);
    char lim[24], cur[160] = "";
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *c = api_q_str(r, "cursor");
    if (c && !api_cursor_decode(r, c, cur, sizeof cur)) return;
    if (c && !id_ok(cur, QB_NRULE_ID_MAX)) {
        api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
        return;
    }
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM notify.rules WHERE ($1::boolean OR owner = $2) AND ($3::text IS "
             "NULL OR rule_id > $3) ORDER BY rule_id LIMIT $4::int",
             RULE_COLS);
    const char *p[] = {all ? "true" : "false", r->who.name, cur[0] ? cur : NULL, lim};
    PGresult *res = api_query(r, sql, 4, p);
    if (!res) return;
    int n = PQntuples(res);
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(items, rule_json(res, i));
    if (n == limit && n > 0) {
        char enc[256];
        api_cursor_encode(PQgetvalue(res, n - 1, 0), enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

static void h_alert_rule_get(api_req_t *r) {
    const char *id = api_param(r, "rule");
    char sql[2048];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM notify.rules WHERE rule_id = $1 AND ($2::boolean OR owner = $3)",
             RULE_COLS);
    const char *p[] = {id, r->who.role >= QB_ROLE_ADMIN ? "true" : "false", r->who.name};
    PGresult *res = api_query(r, sql, 3, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "rule", "no alert rule '%.100s'%s", id,
                  r->who.role >= QB_ROLE_ADMIN ? "" : " of yours");
        return;
    }
    cJSON *o = rule_json(res, 0);
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- the body of POST / PUT -------------------------------------------------------------------- */
/* the field a libs/notify message is about: "alert_rule.window: ..." ->
 * window_s, "targets[1].address: ..." -> targets[1].address */
static void lib_field(const char *msg, char *out, size_t n) {
    const char *s = msg;
    if (!strncmp(s, "alert_rule.", 11)) s += 11;
    size_t len = strcspn(s, ": /");
    snprintf(out, n, "%.*s", (int)len, s);
    if (!strcmp(out, "window") || !strcmp(out, "cooldown"))
        snprintf(out + strlen(out), n - strlen(out), "_s");
    if (!strcmp(out, "user")) snprintf(out, n, "rule");
}

/* Read the body's members into x (which holds the defaults or the stored
 * rule). Every member given is checked; 0 after a 400. */
static int rule_body(api_req_t *r, rule_in_t *x, int creating) {
    static const char *const allowed_new[] = {
        "rule_id", "name", "condition", "account", "symbol", "timeframe", "threshold",
        "move_pct", "window_s", "strategy_id", "min_confidence", "targets", "enabled",
        "cooldown_s", "quiet_start", "quiet_end", "time_zone", NULL};
    if (!api_body_only(r, creating ? allowed_new : allowed_new + 1)) return 0;
    const char *s = NULL, *cond = NULL;
    int given = 0; /* F_* members given in the body */
    if (creating) {
        if (!api_body_str(r, "rule_id", 0, QB_NRULE_ID_MAX, &s)) return 0;
        if (s) {
            if (!id_ok(s, QB_NRULE_ID_MAX)) {
                api_error(r, 400, "rule_id",
                          "rule_id: 1-%d of letters, digits, '_', '.', ':', '-'",
                          QB_NRULE_ID_MAX);
                return 0;
            }
            snprintf(x->rule_id, sizeof x->rule_id, "%s", s);
        }
    }
    if (!api_body_enum(r, "condition", creating, CONDS, &cond)) return 0;
    if (cond) x->cond = qb_ncond_parse(cond);
    s = NULL;
    if (!api_body_str(r, "name", 0, QB_NRULE_NAME_MAX, &s)) return 0;
    if (s) snprintf(x->name, sizeof x->name, "%s", s);
    s = NULL;
    if (!api_body_str(r, "account", 0, 64, &s)) return 0;
    if (s) {
        if (*s && !id_ok(s, 63)) {
            api_error(r, 400, "account",
                      "account: 1-63 of letters, digits, '_', '.', ':', '-' (\"\" = any)");
            return 0;
        }
        snprintf(x->account, sizeof x->account, "%s", s);
        given |= *s ? F_ACCOUNT : 0;
    }
    s = NULL;
    if (!api_body_str(r, "symbol", 0, 64, &s)) return 0;
    if (s) {
        qb_symbol_t sym = {{0}};
        char err[160];
        if (*s && qb_symbol_set(&sym, s, err, sizeof err) != QB_OK) {
            api_error(r, 400, "symbol", "symbol: %s", err);
            return 0;
        }
        snprintf(x->symbol, sizeof x->symbol, "%s", sym.s);
        given |= *s ? F_SYMBOL : 0;
    }
    s = NULL;
    if (!api_body_str(r, "timeframe", 0, 8, &s)) return 0;
    if (s) {
        int64_t tf;
        if (*s && qb_timeframe_parse(s, &tf) != QB_OK) {
            api_error(r, 400, "timeframe", "timeframe: unknown '%.16s' (e.g. 1m, 1h, 1d)", s);
            return 0;
        }
        snprintf(x->timeframe, sizeof x->timeframe, "%s", s);
        given |= *s ? F_TIMEFRAME : 0;
    }
    s = NULL;
    if (!api_body_str(r, "strategy_id", 0, QB_NRULE_ID_MAX, &s)) return 0;
    if (s) {
        snprintf(x->strategy_id, sizeof x->strategy_id, "%s", s);
        given |= *s ? F_STRATEGY : 0;
    }
    int64_t v = 0;
    if (api_body_get(r, "threshold") && !cJSON_IsNull(api_body_get(r, "threshold"))) {
        if (!api_body_dec(r, "threshold", 1, 1, &v)) return 0;
        x->threshold = v;
        given |= F_THRESHOLD;
    }
    double d = 0;
    if (api_body_get(r, "move_pct") && !cJSON_IsNull(api_body_get(r, "move_pct"))) {
        if (!api_body_num(r, "move_pct", 1, 1e-6, 1e6, &d)) return 0;
        x->move_pct = d;
        given |= F_MOVE;
    }
    if (api_body_get(r, "window_s") && !cJSON_IsNull(api_body_get(r, "window_s"))) {
        if (!api_body_int(r, "window_s", 1, 1, MAX_SPAN_S, &v)) return 0;
        x->window_ns = v * QB_NS_PER_SEC;
        given |= F_MOVE;
    }
    if (api_body_get(r, "min_confidence") && !cJSON_IsNull(api_body_get(r, "min_confidence"))) {
        if (!api_body_num(r, "min_confidence", 1, 0, 1, &d)) return 0;
        x->min_confidence = d;
        given |= d > 0 ? F_CONFIDENCE : 0;
    }
    int en = -1;
    if (!api_body_bool(r, "enabled", 0, &en)) return 0;
    if (en >= 0) x->enabled = en;
    v = -1;
    if (!api_body_int(r, "cooldown_s", 0, 0, MAX_SPAN_S, &v)) return 0;
    if (v >= 0) x->cooldown_ns = v * QB_NS_PER_SEC;
    static const char *const quiet[] = {"quiet_start", "quiet_end"};
    for (int q = 0; q < 2; q++) {
        s = NULL;
        if (!api_body_str(r, quiet[q], 0, 5, &s)) return 0;
        if (!s) continue;
        if (*s && qb_nquiet_parse(s) < 0) {
            api_error(r, 400, quiet[q], "%s: \"HH:MM\" (00:00 to 23:59), or \"\" for none",
                      quiet[q]);
            return 0;
        }
        snprintf(q ? x->quiet_end : x->quiet_start, 6, "%s", s);
    }
    s = NULL;
    if (!api_body_str(r, "time_zone", 0, 63, &s)) return 0;
    if (s) {
        const qb_tz_t *tz;
        char err[160];
        if (qb_tz_get(*s ? s : "UTC", &tz, err, sizeof err) != QB_OK) {
            api_error(r, 400, "time_zone", "time_zone: %s", err);
            return 0;
        }
        snprintf(x->time_zone, sizeof x->time_zone, "%s", *s ? s : "UTC");
    }
    /* the condition's members: the ones it does not use may not be given,
     * stored ones are dropped */
    int uses = cond_uses(x->cond);
    static const struct {
        int f;
        const char *name;
    } members[] = {{F_THRESHOLD, "threshold"}, {F_MOVE, "move_pct"}, {F_MOVE, "window_s"},
                   {F_SYMBOL, "symbol"},       {F_TIMEFRAME, "timeframe"},
                   {F_STRATEGY, "strategy_id"}, {F_CONFIDENCE, "min_confidence"},
                   {F_ACCOUNT, "account"}};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        if (!(given & members[i].f) || (uses & members[i].f)) continue;
        cJSON *m = api_body_get(r, members[i].name);
        if (!m || cJSON_IsNull(m)) continue; /* window_s given, move_pct not: look at each */
        api_error(r, 400, members[i].name, "%s: not used by condition %s", members[i].name,
                  qb_ncond_name(x->cond));
        return 0;
    }
    if (!(uses & F_THRESHOLD)) x->threshold = 0;
    if (!(uses & F_MOVE)) x->move_pct = 0, x->window_ns = 0;
    if (!(uses & F_SYMBOL)) x->symbol[0] = 0;
    if (!(uses & F_TIMEFRAME)) x->timeframe[0] = 0;
    if (!(uses & F_STRATEGY)) x->strategy_id[0] = 0;
    if (!(uses & F_CONFIDENCE)) x->min_confidence = 0;
    if (!(uses & F_ACCOUNT)) x->account[0] = 0;
    if ((x->cond == QB_NCOND_PRICE_ABOVE || x->cond == QB_NCOND_PRICE_BELOW)) {
        if (!x->symbol[0]) {
            api_error(r, 400, "symbol", "symbol: required for %s", qb_ncond_name(x->cond));
            return 0;
        }
        if (x->threshold <= 0) {
            api_error(r, 400, "threshold", "threshold: required for %s (a price > 0)",
                      qb_ncond_name(x->cond));
            return 0;
        }
    }
    if (x->cond == QB_NCOND_PRICE_MOVE && (x->move_pct <= 0 || x->window_ns <= 0)) {
        api_error(r, 400, x->move_pct <= 0 ? "move_pct" : "window_s",
                  "%s: required for price_move", x->move_pct <= 0 ? "move_pct" : "window_s");
        return 0;
    }
    if (!x->quiet_start[0] != !x->quiet_end[0]) {
        api_error(r, 400, x->quiet_start[0] ? "quiet_end" : "quiet_start",
                  "quiet_start / quiet_end: both \"HH:MM\" or neither");
        return 0;
    }
    /* targets: replaced as a whole when given */
    cJSON *ts = api_body_get(r, "targets");
    if (ts && !cJSON_IsNull(ts)) {
        if (!cJSON_IsArray(ts) || cJSON_GetArraySize(ts) == 0 ||
            cJSON_GetArraySize(ts) > QB_NTARGETS_MAX) {
            api_error(r, 400, "targets",
                      "targets: an array of 1 to %d {channel, address, secret}", QB_NTARGETS_MAX);
            return 0;
        }
        cJSON *nt = cJSON_CreateArray();
        int i = 0;
        char field[48];
        for (cJSON *t = ts->child; t; t = t->next, i++) {
            snprintf(field, sizeof field, "targets[%d]", i);
            if (!cJSON_IsObject(t)) {
                api_error(r, 400, field, "%s: expected an object {channel, address, secret}",
                          field);
                goto bad_t;
            }
            for (cJSON *m = t->child; m; m = m->next)
                if (strcmp(m->string, "channel") && strcmp(m->string, "address") &&
                    strcmp(m->string, "secret")) {
                    snprintf(field, sizeof field, "targets[%d].%.20s", i, m->string);
                    api_error(r, 400, field, "unknown field '%.20s' (channel, address, secret)",
                              m->string);
                    goto bad_t;
                }
            cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "channel");
            cJSON *ad = cJSON_GetObjectItemCaseSensitive(t, "address");
            cJSON *se = cJSON_GetObjectItemCaseSensitive(t, "secret");
            snprintf(field, sizeof field, "targets[%d].channel", i);
            qb_nchan_t chan = cJSON_IsString(ch) ? qb_nchan_parse(ch->valuestring) : QB_NCHAN_NONE;
            if (chan == QB_NCHAN_NONE) {
                api_error(r, 400, field, "%s: one of %s", field, CHANNELS);
                goto bad_t;
            }
            snprintf(field, sizeof field, "targets[%d].address", i);
            if (ad && !cJSON_IsNull(ad) && !cJSON_IsString(ad)) {
                api_error(r, 400, field, "%s: expected a string", field);
                goto bad_t;
            }
            const char *addr = cJSON_IsString(ad) ? ad->valuestring : "";
            if (chan == QB_NCHAN_IN_APP) {
                if (!*addr) addr = x->owner;
                if (strcmp(addr, x->owner) && r->who.role < QB_ROLE_ADMIN) {
                    api_error(r, 403, field,
                              "%s: in-app notifications go to the rule's owner (%s)", field,
                              x->owner);
                    goto bad_t;
                }
            } else if (!*addr) {
                api_error(r, 400, field, "%s: required for %s", field, ch->valuestring);
                goto bad_t;
            }
            snprintf(field, sizeof field, "targets[%d].secret", i);
            if (se && !cJSON_IsNull(se) && !cJSON_IsString(se)) {
                api_error(r, 400, field, "%s: expected a string", field);
                goto bad_t;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "channel", qb_nchan_name(chan));
            cJSON_AddStringToObject(o, "address", addr);
            if (cJSON_IsString(se) && se->valuestring[0])
                cJSON_AddStringToObject(o, "secret", se->valuestring);
            cJSON_AddItemToArray(nt, o);
        }
        rule_in_free(x);
        x->targets = nt;
        goto targets_ok;
    bad_t:
        cJSON_Delete(nt);
        return 0;
    }
targets_ok:
    if (!x->targets || cJSON_GetArraySize(x->targets) == 0) {
        api_error(r, 400, "targets", "targets: at least one required");
        return 0;
    }
    /* qb-notify's own checks on the rule the command makes */
    qb_nrules_t *rs = qb_nrules_new();
    qb_nrule_t *nr = rs ? qb_nrules_add(rs) : NULL;
    if (!nr) {
        qb_nrules_destroy(rs);
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    snprintf(nr->id, sizeof nr->id, "%s", x->rule_id);
    snprintf(nr->owner, sizeof nr->owner, "%s", x->owner);
    snprintf(nr->name, sizeof nr->name, "%s", x->name);
    snprintf(nr->account, sizeof nr->account, "%s", x->account);
    snprintf(nr->symbol, sizeof nr->symbol, "%s", x->symbol);
    snprintf(nr->timeframe, sizeof nr->timeframe, "%s", x->timeframe);
    snprintf(nr->strategy_id, sizeof nr->strategy_id, "%s", x->strategy_id);
    nr->cond = x->cond;
    nr->threshold = x->threshold;
    nr->move_pct = x->move_pct;
    nr->window_ns = x->window_ns;
    nr->min_confidence = x->min_confidence;
    nr->enabled = x->enabled;
    nr->cooldown_ns = x->cooldown_ns;
    nr->quiet_start = x->quiet_start[0] ? qb_nquiet_parse(x->quiet_start) : -1;
    nr->quiet_end = x->quiet_end[0] ? qb_nquiet_parse(x->quiet_end) : -1;
    snprintf(nr->time_zone, sizeof nr->time_zone, "%s", x->time_zone);
    char err[256], field[64];
    qb_err_t e = QB_OK;
    for (cJSON *t = x->targets->child; t && !e; t = t->next) {
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "channel");
        cJSON *ad = cJSON_GetObjectItemCaseSensitive(t, "address");
        cJSON *se = cJSON_GetObjectItemCaseSensitive(t, "secret");
        e = qb_nrule_add_target(nr, qb_nchan_parse(cJSON_IsString(ch) ? ch->valuestring : ""),
                                cJSON_IsString(ad) ? ad->valuestring : "",
                                cJSON_IsString(se) ? se->valuestring : NULL, err, sizeof err);
    }
    if (!e) e = qb_nrule_validate(nr, err, sizeof err);
    qb_nrules_destroy(rs);
    if (e) {
        lib_field(err, field, sizeof field);
        api_error(r, 400, field, "%s", err);
        return 0;
    }
    return 1;
}

/* Send the upsert of x; 1 with the command id in cid. */
static int rule_send(api_req_t *r, const rule_in_t *x, char *cid) {
    Qb__V1__Command__AlertTarget tg[QB_NTARGETS_MAX], *tp[QB_NTARGETS_MAX];
    size_t n = 0;
    for (cJSON *t = x->targets->child; t && n < QB_NTARGETS_MAX; t = t->next, n++) {
        Qb__V1__Command__AlertTarget init = QB__V1__COMMAND__ALERT_TARGET__INIT;
        tg[n] = init;
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "channel");
        cJSON *ad = cJSON_GetObjectItemCaseSensitive(t, "address");
        cJSON *se = cJSON_GetObjectItemCaseSensitive(t, "secret");
        tg[n].channel = (Qb__V1__NotifyChannel)qb_nchan_parse(cJSON_GetStringValue(ch));
        tg[n].address = cJSON_IsString(ad) ? ad->valuestring : (char *)"";
        if (cJSON_IsString(se)) tg[n].secret = se->valuestring;
        tp[n] = &tg[n];
    }
    Qb__V1__Command__AlertRuleParams p = QB__V1__COMMAND__ALERT_RULE_PARAMS__INIT;
    p.rule_id = (char *)x->rule_id;
    p.name = (char *)x->name;
    p.condition = (Qb__V1__AlertCondition)x->cond;
    p.symbol = (char *)x->symbol;
    p.threshold = x->threshold;
    p.n_targets = n;
    p.targets = tp;
    p.enabled = x->enabled;
    p.cooldown = x->cooldown_ns;
    p.move_pct = x->move_pct;
    p.window = x->window_ns;
    p.timeframe = (char *)x->timeframe;
    p.strategy_id = (char *)x->strategy_id;
    p.min_confidence = x->min_confidence;
    p.quiet_start = (char *)x->quiet_start;
    p.quiet_end = (char *)x->quiet_end;
    p.time_zone = (char *)x->time_zone;
    p.user = (char *)x->owner;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)NOTIFY_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_UPSERT;
    cmd.account = (char *)x->account;
    cmd.params_case = QB__V1__COMMAND__PARAMS_ALERT_RULE;
    cmd.alert_rule = &p;
    return api_send_command(r, &cmd, cid);
}

/* audit detail: what the rule is, never an address or a secret */
static cJSON *rule_audit(const rule_in_t *x, const char *cid) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddStringToObject(d, "owner", x->owner);
    cJSON_AddStringToObject(d, "condition", qb_ncond_name(x->cond));
    if (x->symbol[0]) cJSON_AddStringToObject(d, "symbol", x->symbol);
    cJSON_AddBoolToObject(d, "enabled", x->enabled);
    cJSON *ch = cJSON_AddArrayToObject(d, "channels");
    for (cJSON *t = x->targets->child; t; t = t->next) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "channel"));
        cJSON_AddItemToArray(ch, cJSON_CreateString(c ? c : ""));
    }
    return d;
}

static void rule_answer(api_req_t *r, const rule_in_t *x, const char *cid) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "rule_id", x->rule_id);
    cJSON_AddStringToObject(o, "owner", x->owner);
    api_json(r, 202, o);
}

/* ---- POST /alerts/rules ----------------------------------------------------------------------- */
static void h_alert_rule_create(api_req_t *r) {
    rule_in_t x;
    memset(&x, 0, sizeof x);
    snprintf(x.owner, sizeof x.owner, "%s", r->who.name);
    x.enabled = 1;
    snprintf(x.time_zone, sizeof x.time_zone, "UTC");
    qb_uuid_v4(x.rule_id); /* unless the body names one */
    if (!rule_body(r, &x, 1)) goto out;
    if (api_body_get(r, "rule_id")) {
        /* an upsert of an existing id would take the rule over: refuse */
        const char *p[] = {x.rule_id};
        PGresult *res = api_query(r, "SELECT 1 FROM notify.rules WHERE rule_id = $1", 1, p);
        if (!res) goto out;
        int exists = PQntuples(res) > 0;
        PQclear(res);
        if (exists) {
            api_error(r, 409, "rule_id", "an alert rule '%s' exists (PUT changes it)", x.rule_id);
            goto out;
        }
    }
    char cid[QB_UUID_STRLEN];
    if (!rule_send(r, &x, cid)) goto out;
    api_audit(r, "alert_rule_create", x.rule_id, rule_audit(&x, cid));
    snprintf(r->location, sizeof r->location, "/api/v1/alerts/rules/%s", x.rule_id);
    rule_answer(r, &x, cid);
out:
    rule_in_free(&x);
}

/* ---- PUT /alerts/rules/{rule} ------------------------------------------------------------------ */
static void h_alert_rule_update(api_req_t *r) {
    rule_in_t x;
    if (!rule_load(r, api_param(r, "rule"), &x)) return;
    if (!r->json || !r->json->child) {
        api_error(r, 400, NULL, "nothing to change: give at least one member");
        goto out;
    }
    if (!rule_body(r, &x, 0)) goto out;
    char cid[QB_UUID_STRLEN];
    if (!rule_send(r, &x, cid)) goto out;
    api_audit(r, "alert_rule_update", x.rule_id, rule_audit(&x, cid));
    rule_answer(r, &x, cid);
out:
    rule_in_free(&x);
}

/* ---- DELETE /alerts/rules/{rule} --------------------------------------------------------------- */
static void h_alert_rule_delete(api_req_t *r) {
    rule_in_t x;
    if (!rule_load(r, api_param(r, "rule"), &x)) return;
    Qb__V1__Command__AlertRuleParams p = QB__V1__COMMAND__ALERT_RULE_PARAMS__INIT;
    p.rule_id = x.rule_id;
    p.user = x.owner;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = (char *)NOTIFY_TARGET;
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_DELETE;
    cmd.params_case = QB__V1__COMMAND__PARAMS_ALERT_RULE;
    cmd.alert_rule = &p;
    char cid[QB_UUID_STRLEN];
    if (api_send_command(r, &cmd, cid)) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "command_id", cid);
        cJSON_AddStringToObject(d, "owner", x.owner);
        api_audit(r, "alert_rule_delete", x.rule_id, d);
        rule_answer(r, &x, cid);
    }
    rule_in_free(&x);
}

/* ---- GET /alerts/notifications ----------------------------------------------------------------- */
static void h_alert_notifications(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    int unread = api_q_bool(r, "unread", 0);
    char lim[24], cur[160] = "", cur_us[24] = "", cur_id[64] = "";
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *c = api_q_str(r, "cursor");
    if (c) {
        if (!api_cursor_decode(r, c, cur, sizeof cur)) return;
        char *bar = strchr(cur, '|');
        int ok = bar != NULL;
        if (ok) {
            *bar = 0;
            ok = *cur && strlen(cur) < 20 && strspn(cur, "0123456789") == strlen(cur) &&
                 qb_uuid_valid(bar + 1);
        }
        if (!ok) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
        snprintf(cur_us, sizeof cur_us, "%.19s", cur);
        snprintf(cur_id, sizeof cur_id, "%.36s", bar + 1);
    }
    const char *p[] = {r->who.name, unread ? "true" : "false", cur_us[0] ? cur_us : NULL,
                       cur_id[0] ? cur_id : NULL, lim};
    PGresult *res = api_query(
        r,
        "SELECT delivery_id::text AS notification_id, rule_id, event_id, event_kind AS kind, "
        "title, body, api.ns_text(event_time) AS event_time, created_at, read_at IS NOT NULL "
        "AS read, read_at, (extract(epoch FROM created_at) * 1000000)::bigint AS cursor_us "
        "FROM notify.inbox WHERE owner = $1 AND (NOT $2::boolean OR read_at IS NULL) AND "
        "($3::bigint IS NULL OR (created_at, delivery_id) < (to_timestamp(0) + $3::bigint * "
        "interval '1 microsecond', $4::uuid)) ORDER BY created_at DESC, delivery_id DESC "
        "LIMIT $5::int",
        5, p);
    if (!res) return;
    int n = PQntuples(res);
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (int i = 0; i < n; i++) {
        cJSON *row = api_pg_row_json(res, i);
        cJSON_DeleteItemFromObject(row, "cursor_us");
        cJSON_AddItemToArray(items, row);
    }
    if (n == limit && n > 0) {
        char plain[128], enc[192];
        snprintf(plain, sizeof plain, "%s|%s", PQgetvalue(res, n - 1, PQfnumber(res, "cursor_us")),
                 PQgetvalue(res, n - 1, 0));
        api_cursor_encode(plain, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    /* how the caller's rules' deliveries stand, per channel and status, and
     * the unread count of the inbox */
    const char *q[] = {r->who.name};
    res = api_query(r,
                    "SELECT channel, status, count(*) FROM notify.deliveries WHERE owner = $1 "
                    "GROUP BY 1, 2 UNION ALL SELECT 'inbox', 'unread', count(*) FROM "
                    "notify.inbox WHERE owner = $1 AND read_at IS NULL",
                    1, q);
    if (!res) {
        cJSON_Delete(o);
        return;
    }
    cJSON *dl = cJSON_AddObjectToObject(o, "deliveries");
    for (int i = 0; i < PQntuples(res); i++) {
        const char *ch = PQgetvalue(res, i, 0);
        double cnt = strtod(PQgetvalue(res, i, 2), NULL);
        if (!strcmp(ch, "inbox")) {
            cJSON_AddNumberToObject(o, "unread", cnt);
            continue;
        }
        cJSON *c1 = cJSON_GetObjectItemCaseSensitive(dl, ch);
        if (!c1) {
            c1 = cJSON_AddObjectToObject(dl, ch);
            cJSON_AddNumberToObject(c1, "pending", 0);
            cJSON_AddNumberToObject(c1, "delivered", 0);
            cJSON_AddNumberToObject(c1, "dead", 0);
            cJSON_AddNumberToObject(c1, "canceled", 0);
        }
        cJSON_ReplaceItemInObject(c1, PQgetvalue(res, i, 1), cJSON_CreateNumber(cnt));
    }
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- the table ----------------------------------------------------------------------------------- */
#define S_RULE_PROPS                                                                             \
    "\"name\":{\"type\":\"string\",\"maxLength\":120,\"description\":\"the notification's "     \
    "title\"},\"condition\":{\"type\":\"string\",\"enum\":[\"price_above\",\"price_below\","     \
    "\"price_move\",\"signal\",\"order_filled\",\"order_rejected\",\"risk_event\","              \
    "\"backtest_done\"]},\"account\":{\"type\":\"string\",\"description\":\"signal, order_*, "   \
    "risk_event: only this account's events\"},\"symbol\":{\"type\":\"string\","                \
    "\"description\":\"required for price_above/below; not for backtest_done\"},"              \
    "\"timeframe\":{\"type\":\"string\",\"description\":\"price rules: bar length, e.g. 1d\"},"  \
    "\"threshold\":{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"                \
    "\"description\":\"price_above/below: the "                                                 \
    "level (decimal > 0)\"},\"move_pct\":{\"type\":\"number\",\"minimum\":0,"                 \
    "\"exclusiveMinimum\":true,"                                                                 \
    "\"description\":\"price_move: least move in percent\"},\"window_s\":{\"type\":"             \
    "\"integer\",\"minimum\":1,\"description\":\"price_move: window in seconds\"},"              \
    "\"strategy_id\":{\"type\":\"string\",\"maxLength\":100},\"min_confidence\":{\"type\":"      \
    "\"number\",\"minimum\":0,\"maximum\":1,\"description\":\"signal only\"},\"targets\":{"      \
    "\"type\":\"array\",\"minItems\":1,\"maxItems\":16,\"items\":{\"type\":\"object\","          \
    "\"required\":[\"channel\"],\"additionalProperties\":false,\"properties\":{\"channel\":{"    \
    "\"type\":\"string\",\"enum\":[\"webhook\",\"slack\",\"telegram\",\"email\",\"in_app\"]},"   \
    "\"address\":{\"type\":\"string\",\"maxLength\":512,\"description\":\"URL, chat id, e-mail " \
    "address; in_app: the owner (default)\"},\"secret\":{\"type\":\"string\",\"maxLength\":256," \
    "\"writeOnly\":true,\"description\":\"webhook HMAC key; never shown back\"}}}},"             \
    "\"enabled\":{\"type\":\"boolean\"},\"cooldown_s\":{\"type\":\"integer\",\"minimum\":0},"    \
    "\"quiet_start\":{\"type\":\"string\",\"pattern\":\"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$\"},"  \
    "\"quiet_end\":{\"type\":\"string\",\"pattern\":\"^([01][0-9]|2[0-3]):[0-5][0-9]$|^$\"},"    \
    "\"time_zone\":{\"type\":\"string\",\"description\":\"IANA zone of the quiet hours\"}"
#define S_RULE_NEW                                                                               \
    "{\"type\":\"object\",\"required\":[\"condition\",\"targets\"],\"additionalProperties\":"    \
    "false,\"properties\":{\"rule_id\":{\"type\":\"string\",\"pattern\":"                        \
    "\"^[A-Za-z0-9_.:-]{1,100}$\",\"description\":\"default: a new UUID\"}," S_RULE_PROPS "}}"
#define S_RULE_UPD                                                                               \
    "{\"type\":\"object\",\"minProperties\":1,\"additionalProperties\":false,\"properties\":{"    \
    S_RULE_PROPS "}}"

const api_route_t api_routes_alerts[] = {
    {"GET", "/api/v1/alerts/rules", QB_ROLE_VIEWER, h_alert_rules_list, "alerts",
     "Your alert rules (admins: all=true for everyone's); addresses shown without credentials",
     200, NULL, NULL,
     {{"all", API_P_BOOL, 0, 0, 0, NULL, "every user's rules (admin)"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {"GET", "/api/v1/alerts/rules/{rule}", QB_ROLE_VIEWER, h_alert_rule_get, "alerts",
     "One of your alert rules (admins: any)", 200, NULL, NULL, {{0}}, 0},
    {"POST", "/api/v1/alerts/rules", QB_ROLE_TRADER, h_alert_rule_create, "alerts",
     "Create an alert rule owned by you (ALERT_RULE_UPSERT to qb-notify)", 202, S_RULE_NEW, NULL,
     {{0}}, 0},
    {"PUT", "/api/v1/alerts/rules/{rule}", QB_ROLE_TRADER, h_alert_rule_update, "alerts",
     "Change one of your alert rules (admins: any); members not given keep their value", 202,
     S_RULE_UPD, NULL, {{0}}, 0},
    {"DELETE", "/api/v1/alerts/rules/{rule}", QB_ROLE_TRADER, h_alert_rule_delete, "alerts",
     "Delete one of your alert rules (admins: any); its pending deliveries are canceled", 202,
     NULL, NULL, {{0}}, 0},
    {"GET", "/api/v1/alerts/notifications", QB_ROLE_VIEWER, h_alert_notifications, "alerts",
     "Your in-app notifications, newest first, and how your rules' deliveries stand", 200, NULL,
     NULL,
     {{"unread", API_P_BOOL, 0, 0, 0, NULL, "only the unread ones"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {0}};
