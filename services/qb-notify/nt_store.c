/* nt_store.c — qb-notify and PostgreSQL (sql/0006_notify.sql; md.bars read
 * for the warm-up of price series). One qb_store_t per thread: the consumer
 * thread uses rules / history / flush, each delivery worker claim / mark /
 * inbox on its own handle. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "nt.h"

#define NT_SQL_RULES                                                                          \
    "SELECT rule_id, owner, coalesce(account, ''), name, condition, coalesce(symbol, ''),"    \
    " coalesce(timeframe, ''), threshold, move_pct, window_ns, coalesce(strategy_id, ''),"    \
    " min_confidence, targets::text, enabled, cooldown_ns, coalesce(quiet_start, -1),"       \
    " coalesce(quiet_end, -1), time_zone, last_fired_ns, change_seq FROM notify.rules"        \
    " ORDER BY rule_id"

qb_err_t nt_store_rules_seq(qb_store_t *s, int64_t *seq, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, "SELECT coalesce(max(change_seq), 0) FROM notify.rules", 0,
                                NULL, &r, errstr, errstr_size);
    if (e) return e;
    *seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return QB_OK;
}

/* Targets JSON -> rule targets. */
static qb_err_t nt_targets_parse(qb_nrule_t *rule, const char *json, char *errstr,
                                 size_t errstr_size) {
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "targets: not a JSON array");
    }
    qb_err_t e = QB_OK;
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "channel");
        const cJSON *ad = cJSON_GetObjectItemCaseSensitive(t, "address");
        const cJSON *se = cJSON_GetObjectItemCaseSensitive(t, "secret");
        e = qb_nrule_add_target(rule, qb_nchan_parse(cJSON_IsString(ch) ? ch->valuestring : ""),
                                cJSON_IsString(ad) ? ad->valuestring : "",
                                cJSON_IsString(se) ? se->valuestring : NULL, errstr,
                                errstr_size);
        if (e) break;
    }
    cJSON_Delete(a);
    return e;
}

qb_err_t nt_store_rules(qb_store_t *s, qb_nrules_t **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, NT_SQL_RULES, 0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    qb_nrules_t *rs = qb_nrules_new();
    if (!rs) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < PQntuples(r); i++) {
        qb_nrule_t *ru = qb_nrules_add(rs);
        if (!ru) {
            PQclear(r);
            qb_nrules_destroy(rs);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        snprintf(ru->id, sizeof ru->id, "%s", PQgetvalue(r, i, 0));
        snprintf(ru->owner, sizeof ru->owner, "%s", PQgetvalue(r, i, 1));
        snprintf(ru->account, sizeof ru->account, "%s", PQgetvalue(r, i, 2));
        snprintf(ru->name, sizeof ru->name, "%s", PQgetvalue(r, i, 3));
        ru->cond = qb_ncond_parse(PQgetvalue(r, i, 4));
        snprintf(ru->symbol, sizeof ru->symbol, "%s", PQgetvalue(r, i, 5));
        snprintf(ru->timeframe, sizeof ru->timeframe, "%s", PQgetvalue(r, i, 6));
        ru->threshold = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        ru->move_pct = strtod(PQgetvalue(r, i, 8), NULL);
        ru->window_ns = strtoll(PQgetvalue(r, i, 9), NULL, 10);
        snprintf(ru->strategy_id, sizeof ru->strategy_id, "%s", PQgetvalue(r, i, 10));
        ru->min_confidence = strtod(PQgetvalue(r, i, 11), NULL);
        ru->enabled = PQgetvalue(r, i, 13)[0] == 't';
        ru->cooldown_ns = strtoll(PQgetvalue(r, i, 14), NULL, 10);
        ru->quiet_start = atoi(PQgetvalue(r, i, 15));
        ru->quiet_end = atoi(PQgetvalue(r, i, 16));
        snprintf(ru->time_zone, sizeof ru->time_zone, "%s", PQgetvalue(r, i, 17));
        ru->last_fired = strtoll(PQgetvalue(r, i, 18), NULL, 10);
        ru->change_seq = strtoll(PQgetvalue(r, i, 19), NULL, 10);
        char msg[512];
        e = nt_targets_parse(ru, PQgetvalue(r, i, 12), msg, sizeof msg);
        if (!e) e = qb_nrule_validate(ru, msg, sizeof msg);
        if (e) {
            QB_WARN("rule %s: %s: skipped", ru->id, msg);
            for (size_t k = 0; k < ru->ntargets; k++) {
                free(ru->targets[k].address);
                free(ru->targets[k].secret);
            }
            rs->n--;
            if (e == QB_ERR_NOMEM) {
                PQclear(r);
                qb_nrules_destroy(rs);
                return qb_err_set(errstr, errstr_size, e, "out of memory");
            }
        }
    }
    PQclear(r);
    *out = rs;
    return QB_OK;
}

/* ---- control ------------------------------------------------------------------ */

static qb_err_t nt_rule_from_cmd(const Qb__V1__Command *cmd,
                                 const Qb__V1__Command__AlertRuleParams *p, qb_nrule_t *r,
                                 char *errstr, size_t errstr_size) {
    snprintf(r->id, sizeof r->id, "%s", p->rule_id ? p->rule_id : "");
    if (p->rule_id && strlen(p->rule_id) > QB_NRULE_ID_MAX) r->id[0] = '\0';
    const char *user = p->user && *p->user ? p->user : cmd->issued_by;
    if (user && strlen(user) > QB_NRULE_OWNER_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.user: longer than %d",
                          QB_NRULE_OWNER_MAX);
    snprintf(r->owner, sizeof r->owner, "%s", user ? user : "");
    if (p->name && strlen(p->name) > QB_NRULE_NAME_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.name: longer than %d",
                          QB_NRULE_NAME_MAX);
    snprintf(r->name, sizeof r->name, "%s", p->name ? p->name : "");
    if (cmd->account && strlen(cmd->account) >= sizeof r->account)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "account: too long");
    snprintf(r->account, sizeof r->account, "%s", cmd->account ? cmd->account : "");
    r->cond = (qb_ncond_t)p->condition;
    if (p->symbol && *p->symbol) {
        qb_symbol_t sym;
        char msg[256];
        if (qb_symbol_set(&sym, p->symbol, msg, sizeof msg) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.symbol: %s", msg);
        snprintf(r->symbol, sizeof r->symbol, "%s", sym.s);
    }
    if (p->timeframe && *p->timeframe) {
        int64_t tfns;
        if (qb_timeframe_parse(p->timeframe, &tfns) != QB_OK)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "alert_rule.timeframe: unknown '%.16s'", p->timeframe);
        snprintf(r->timeframe, sizeof r->timeframe, "%s", p->timeframe);
    }
    if (p->strategy_id && strlen(p->strategy_id) > QB_NRULE_ID_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.strategy_id: too long");
    snprintf(r->strategy_id, sizeof r->strategy_id, "%s", p->strategy_id ? p->strategy_id : "");
    r->threshold = p->threshold;
    r->move_pct = p->move_pct;
    r->window_ns = p->window;
    r->min_confidence = p->min_confidence;
    r->enabled = p->enabled;
    r->cooldown_ns = p->cooldown;
    const char *qs = p->quiet_start ? p->quiet_start : "", *qe = p->quiet_end ? p->quiet_end : "";
    r->quiet_start = *qs ? qb_nquiet_parse(qs) : -1;
    r->quiet_end = *qe ? qb_nquiet_parse(qe) : -1;
    if ((*qs && r->quiet_start < 0) || (*qe && r->quiet_end < 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.quiet_start / quiet_end: \"HH:MM\" (00:00 to 23:59)");
    if (p->time_zone && strlen(p->time_zone) >= sizeof r->time_zone)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.time_zone: too long");
    snprintf(r->time_zone, sizeof r->time_zone, "%s",
             p->time_zone && *p->time_zone ? p->time_zone : "UTC");
    for (size_t i = 0; i < p->n_targets; i++) {
        const Qb__V1__Command__AlertTarget *t = p->targets[i];
        qb_err_t e = qb_nrule_add_target(r, (qb_nchan_t)t->channel, t->address, t->secret, errstr,
                                         errstr_size);
        if (e) return e;
    }
    return qb_nrule_validate(r, errstr, errstr_size);
}

static char *nt_targets_json(const qb_nrule_t *r) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    for (size_t i = 0; i < r->ntargets; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "channel", qb_nchan_name(r->targets[i].channel));
        cJSON_AddStringToObject(o, "address", r->targets[i].address);
        if (r->targets[i].secret) cJSON_AddStringToObject(o, "secret", r->targets[i].secret);
        cJSON_AddItemToArray(a, o);
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

qb_err_t nt_store_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, char *errstr,
                                size_t errstr_size) {
    const char *cid = cmd->command_id ? cmd->command_id : "";
    const Qb__V1__Command__AlertRuleParams *p =
        cmd->params_case == QB__V1__COMMAND__PARAMS_ALERT_RULE ? cmd->alert_rule : NULL;
    if (!p)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "command %s: params.alert_rule is required", cid);
    PGresult *res = NULL;
    qb_err_t e;
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_ALERT_RULE_DELETE) {
        const char *pp[1] = {p->rule_id ? p->rule_id : ""};
        e = qb_store_begin(s, errstr, errstr_size);
        if (!e)
            e = qb_store_query(s, "DELETE FROM notify.rules WHERE rule_id = $1 RETURNING 1", 1, pp,
                               &res, errstr, errstr_size);
        int found = !e && PQntuples(res) == 1;
        PQclear(res);
        if (!e)
            e = qb_store_query(s,
                               "UPDATE notify.deliveries SET status = 'canceled',"
                               " last_error = 'rule deleted', claimed_by = NULL"
                               " WHERE rule_id = $1 AND status = 'pending'",
                               1, pp, NULL, errstr, errstr_size);
        /* Bump the sequence so every replica reloads (the row is gone). */
        if (!e)
            e = qb_store_exec(s, "SELECT nextval('notify.rules_change_seq')", errstr, errstr_size);
        if (!e && found) e = qb_store_commit(s, errstr, errstr_size);
        if (e || !found) {
            qb_store_rollback(s, NULL, 0);
            if (!e)
                return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND, "no alert rule '%.100s'",
                                  pp[0]);
        }
        return e;
    }
    qb_nrule_t r;
    memset(&r, 0, sizeof r);
    e = nt_rule_from_cmd(cmd, p, &r, errstr, errstr_size);
    char *targets = e ? NULL : nt_targets_json(&r);
    if (!e && !targets) e = qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    if (!e) {
        char thr[24], mv[40], win[24], conf[40], cd[24], qs[8], qe[8];
        snprintf(thr, sizeof thr, "%" PRId64, r.threshold);
        snprintf(mv, sizeof mv, "%.17g", r.move_pct);
        snprintf(win, sizeof win, "%" PRId64, r.window_ns);
        snprintf(conf, sizeof conf, "%.17g", r.min_confidence);
        snprintf(cd, sizeof cd, "%" PRId64, r.cooldown_ns);
        snprintf(qs, sizeof qs, "%d", r.quiet_start);
        snprintf(qe, sizeof qe, "%d", r.quiet_end);
        const char *pp[18] = {r.id, r.owner, r.account[0] ? r.account : NULL, r.name,
                              qb_ncond_name(r.cond), r.symbol[0] ? r.symbol : NULL,
                              r.timeframe[0] ? r.timeframe : NULL, thr, mv, win,
                              r.strategy_id[0] ? r.strategy_id : NULL, conf, targets,
                              r.enabled ? "t" : "f", cd, r.quiet_start >= 0 ? qs : NULL,
                              r.quiet_end >= 0 ? qe : NULL, r.time_zone};
        e = qb_store_begin(s, errstr, errstr_size);
        if (!e)
            e = qb_store_query(
                s,
                "INSERT INTO notify.rules (rule_id, owner, account, name, condition, symbol,"
                " timeframe, threshold, move_pct, window_ns, strategy_id, min_confidence, targets,"
                " enabled, cooldown_ns, quiet_start, quiet_end, time_zone) VALUES ($1, $2, $3, $4,"
                " $5, $6, $7, $8::bigint, $9::float8, $10::bigint, $11, $12::float8, $13::jsonb,"
                " $14::boolean, $15::bigint, $16::smallint, $17::smallint, $18)"
                " ON CONFLICT (rule_id) DO UPDATE SET owner = EXCLUDED.owner,"
                " account = EXCLUDED.account, name = EXCLUDED.name,"
                " condition = EXCLUDED.condition, symbol = EXCLUDED.symbol,"
                " timeframe = EXCLUDED.timeframe, threshold = EXCLUDED.threshold,"
                " move_pct = EXCLUDED.move_pct, window_ns = EXCLUDED.window_ns,"
                " strategy_id = EXCLUDED.strategy_id, min_confidence = EXCLUDED.min_confidence,"
                " targets = EXCLUDED.targets, enabled = EXCLUDED.enabled,"
                " cooldown_ns = EXCLUDED.cooldown_ns, quiet_start = EXCLUDED.quiet_start,"
                " quiet_end = EXCLUDED.quiet_end, time_zone = EXCLUDED.time_zone,"
                " change_seq = nextval('notify.rules_change_seq'), updated_at = now()",
                18, pp, NULL, errstr, errstr_size);
        const char *cp[2] = {r.id, targets};
        if (!e)
            e = qb_store_query(s,
                               "UPDATE notify.deliveries SET status = 'canceled',"
                               " last_error = 'target removed by a rule update', claimed_by = NULL"
                               " WHERE rule_id = $1 AND status = 'pending' AND (target_idx >="
                               " jsonb_array_length($2::jsonb) OR channel IS DISTINCT FROM"
                               " ($2::jsonb -> target_idx ->> 'channel'))",
                               2, cp, NULL, errstr, errstr_size);
        if (!e) e = qb_store_commit(s, errstr, errstr_size);
        if (e) qb_store_rollback(s, NULL, 0);
    }
    if (targets) {
        memset(targets, 0, strlen(targets));
        free(targets);
    }
    for (size_t i = 0; i < r.ntargets; i++) {
        free(r.targets[i].address);
        if (r.targets[i].secret) {
            memset(r.targets[i].secret, 0, strlen(r.targets[i].secret));
            free(r.targets[i].secret);
        }
    }
    return e;
}

/* ---- warm-up ---------------------------------------------------------------------- */

qb_err_t nt_store_history(qb_store_t *s, const char *symbol, const char *tf, qb_time_t before,
                          int64_t window,
                          void (*cb)(void *opaque, qb_time_t ts, int64_t close), void *opaque,
                          char *errstr, size_t errstr_size) {
    char bt[QB_TIME_STRLEN], cut[QB_TIME_STRLEN];
    qb_time_format(before, bt, sizeof bt);
    qb_time_format(before - window - QB_NS_PER_US, cut, sizeof cut);
    const char *p[4] = {symbol, tf, bt, cut};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(
        s,
        "WITH a AS (SELECT asset_id FROM md.assets WHERE symbol = $1),"
        " s AS (SELECT coalesce((SELECT max(b.ts) FROM md.bars b, a WHERE b.asset_id = a.asset_id"
        " AND b.timeframe = $2 AND b.ts <= $4::timestamptz), '-infinity') AS since)"
        " SELECT (extract(epoch FROM b.ts) * 1000000)::bigint, b.close FROM md.bars b, a, s"
        " WHERE b.asset_id = a.asset_id AND b.timeframe = $2 AND b.ts >= s.since"
        " AND b.ts < $3::timestamptz ORDER BY b.ts DESC LIMIT 100000",
        4, p, &r, errstr, errstr_size);
    if (e) return e;
    for (int i = PQntuples(r) - 1; i >= 0; i--)
        cb(opaque, strtoll(PQgetvalue(r, i, 0), NULL, 10) * QB_NS_PER_US,
           strtoll(PQgetvalue(r, i, 1), NULL, 10));
    PQclear(r);
    return QB_OK;
}

/* ---- firings ---------------------------------------------------------------------- */

#define NT_STMT_FIRED "nt_fired"
#define NT_STMT_DLV "nt_dlv"
#define NT_STMT_LAST "nt_last"

qb_err_t nt_store_flush(qb_store_t *s, nt_batch_t *b, int64_t *new_deliveries, char *errstr,
                        size_t errstr_size) {
    *new_deliveries = 0;
    if (b->n == 0) return QB_OK;
    qb_err_t e = qb_store_prepare(s, NT_STMT_FIRED,
                                  "INSERT INTO notify.fired (rule_id, event_id, event_kind,"
                                  " event_time, title, body) VALUES ($1, $2, $3, $4::bigint, $5,"
                                  " $6) ON CONFLICT DO NOTHING RETURNING 1",
                                  6);
    if (!e)
        e = qb_store_prepare(s, NT_STMT_DLV,
                             "INSERT INTO notify.deliveries (delivery_id, rule_id, event_id,"
                             " target_idx, owner, channel, address, event_kind, event_time, title,"
                             " body, next_attempt_at) VALUES ($1::uuid, $2, $3, $4::int, $5, $6,"
                             " $7, $8, $9::bigint, $10, $11, coalesce($12::timestamptz, now()))"
                             " ON CONFLICT DO NOTHING",
                             12);
    if (!e)
        e = qb_store_prepare(s, NT_STMT_LAST,
                             "UPDATE notify.rules SET last_fired_ns = greatest(last_fired_ns,"
                             " $2::bigint) WHERE rule_id = $1",
                             2);
    if (!e) e = qb_store_begin(s, errstr, errstr_size);
    if (e) return e;
    int64_t nd = 0;
    for (size_t i = 0; i < b->n && !e; i++) {
        const nt_fire_t *f = &b->v[i];
        char et[24];
        snprintf(et, sizeof et, "%" PRId64, f->event_time);
        const char *p[6] = {f->rule_id, f->event_id, f->kind, et, f->title, f->text};
        PGresult *r = NULL;
        e = qb_store_exec_prepared(s, NT_STMT_FIRED, 6, p, &r, errstr, errstr_size);
        int fresh = !e && PQntuples(r) == 1;
        PQclear(r);
        for (size_t k = 0; fresh && k < f->nd && !e; k++) {
            const nt_dlv_t *d = &f->d[k];
            char idx[12], nb[QB_TIME_STRLEN];
            snprintf(idx, sizeof idx, "%d", d->idx);
            if (d->not_before) qb_time_format(d->not_before, nb, sizeof nb);
            const char *q[12] = {d->id, f->rule_id, f->event_id, idx, f->owner,
                                 qb_nchan_name(d->channel), d->address, f->kind, et, f->title,
                                 f->text, d->not_before ? nb : NULL};
            e = qb_store_exec_prepared(s, NT_STMT_DLV, 12, q, NULL, errstr, errstr_size);
            if (!e) nd++;
        }
        /* The latest firing of a rule in the batch carries its last_fired. */
        int later = 0;
        for (size_t j = i + 1; j < b->n && !later; j++)
            later = strcmp(b->v[j].rule_id, f->rule_id) == 0 && b->v[j].event_time >= f->event_time;
        if (!e && !later) {
            const char *q[2] = {f->rule_id, et};
            e = qb_store_exec_prepared(s, NT_STMT_LAST, 2, q, NULL, errstr, errstr_size);
        }
    }
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    if (e) {
        qb_store_rollback(s, NULL, 0);
        return e;
    }
    b->n = 0;
    *new_deliveries = nd;
    return QB_OK;
}

qb_err_t nt_store_pending(qb_store_t *s, int64_t *n, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT count(*) FROM notify.deliveries WHERE status = 'pending'",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    *n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return QB_OK;
}

/* ---- deliveries -------------------------------------------------------------------- */

void nt_claim_free(nt_claim_t *c) {
    if (!c) return;
    free(c->address);
    if (c->secret) {
        memset(c->secret, 0, strlen(c->secret));
        free(c->secret);
    }
    free(c->title);
    free(c->text);
    c->address = c->secret = c->title = c->text = NULL;
}

#define NT_STMT_CLAIM "nt_claim"
#define NT_SQL_CLAIM                                                                          \
    "UPDATE notify.deliveries d SET claimed_by = pg_backend_pid(), claimed_at = now()"        \
    " FROM (SELECT x.delivery_id, x.rule_id, x.target_idx FROM notify.deliveries x"           \
    " WHERE x.status = 'pending' AND x.next_attempt_at <= now() AND (x.claimed_by IS NULL"     \
    " OR x.claimed_at < now() - make_interval(secs => $2::int) OR NOT EXISTS (SELECT 1"        \
    " FROM pg_stat_activity a WHERE a.pid = x.claimed_by)) ORDER BY x.next_attempt_at"         \
    " LIMIT $1::int FOR UPDATE SKIP LOCKED) c LEFT JOIN notify.rules r ON r.rule_id = c.rule_id" \
    " WHERE d.delivery_id = c.delivery_id RETURNING d.delivery_id, d.rule_id, d.event_id,"     \
    " d.owner, d.event_kind, d.event_time, (extract(epoch FROM d.created_at) * 1000000)::bigint," \
    " d.channel, d.attempts, d.title, d.body, d.address, r.rule_id IS NOT NULL,"               \
    " coalesce(r.name, ''), r.targets -> c.target_idx ->> 'channel',"                          \
    " r.targets -> c.target_idx ->> 'address', r.targets -> c.target_idx ->> 'secret'"

qb_err_t nt_store_claim(qb_store_t *s, int max, int64_t stale_s, nt_claim_t **out, size_t *n,
                        char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    qb_err_t e = qb_store_prepare(s, NT_STMT_CLAIM, NT_SQL_CLAIM, 2);
    if (e) return e;
    char lim[16], st[24];
    snprintf(lim, sizeof lim, "%d", max);
    snprintf(st, sizeof st, "%" PRId64, stale_s);
    const char *p[2] = {lim, st};
    PGresult *r = NULL;
    if ((e = qb_store_exec_prepared(s, NT_STMT_CLAIM, 2, p, &r, errstr, errstr_size))) return e;
    int rows = PQntuples(r);
    if (rows == 0) {
        PQclear(r);
        return QB_OK;
    }
    nt_claim_t *v = calloc((size_t)rows, sizeof *v);
    if (!v) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++) {
        nt_claim_t *c = &v[i];
        snprintf(c->id, sizeof c->id, "%s", PQgetvalue(r, i, 0));
        snprintf(c->rule_id, sizeof c->rule_id, "%s", PQgetvalue(r, i, 1));
        snprintf(c->event_id, sizeof c->event_id, "%s", PQgetvalue(r, i, 2));
        snprintf(c->owner, sizeof c->owner, "%s", PQgetvalue(r, i, 3));
        snprintf(c->kind, sizeof c->kind, "%s", PQgetvalue(r, i, 4));
        c->event_time = strtoll(PQgetvalue(r, i, 5), NULL, 10);
        c->created = strtoll(PQgetvalue(r, i, 6), NULL, 10) * QB_NS_PER_US;
        c->channel = qb_nchan_parse(PQgetvalue(r, i, 7));
        c->attempts = atoi(PQgetvalue(r, i, 8));
        c->title = strdup(PQgetvalue(r, i, 9));
        c->text = strdup(PQgetvalue(r, i, 10));
        snprintf(c->shown, sizeof c->shown, "%s", PQgetvalue(r, i, 11));
        c->rule_exists = PQgetvalue(r, i, 12)[0] == 't';
        snprintf(c->rule_name, sizeof c->rule_name, "%s", PQgetvalue(r, i, 13));
        c->target_channel = PQgetisnull(r, i, 14) ? QB_NCHAN_NONE
                                                  : qb_nchan_parse(PQgetvalue(r, i, 14));
        c->address = strdup(PQgetisnull(r, i, 15) ? "" : PQgetvalue(r, i, 15));
        c->secret = PQgetisnull(r, i, 16) ? NULL : strdup(PQgetvalue(r, i, 16));
        if (!c->title || !c->text || !c->address) {
            for (int k = 0; k <= i; k++) nt_claim_free(&v[k]);
            free(v);
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return QB_OK;
}

#define NT_STMT_MARK "nt_mark"

qb_err_t nt_store_mark(qb_store_t *s, const char *id, const char *status, int attempted,
                       long code, const char *error, int64_t retry_ms, char *errstr,
                       size_t errstr_size) {
    qb_err_t e = qb_store_prepare(
        s, NT_STMT_MARK,
        "UPDATE notify.deliveries SET status = $2, attempts = attempts + $3::int,"
        " last_status = coalesce($4::int, last_status), last_error = coalesce($5, CASE WHEN"
        " $2 = 'delivered' THEN NULL ELSE last_error END),"
        " last_attempt_at = CASE WHEN $3::int > 0 THEN now() ELSE last_attempt_at END,"
        " next_attempt_at = CASE WHEN $2 = 'pending' THEN clock_timestamp() +"
        " make_interval(secs => $6::float8 / 1000) ELSE next_attempt_at END,"
        " delivered_at = CASE WHEN $2 = 'delivered' THEN now() END,"
        " dead_at = CASE WHEN $2 = 'dead' THEN now() END, claimed_by = NULL, claimed_at = NULL"
        " WHERE delivery_id = $1::uuid AND claimed_by = pg_backend_pid() RETURNING 1",
        6);
    if (e) return e;
    char att[4], cd[16], rm[24];
    snprintf(att, sizeof att, "%d", attempted ? 1 : 0);
    snprintf(cd, sizeof cd, "%ld", code);
    snprintf(rm, sizeof rm, "%" PRId64, retry_ms);
    const char *p[6] = {id, status, att, code ? cd : NULL, error && *error ? error : NULL, rm};
    PGresult *r = NULL;
    if ((e = qb_store_exec_prepared(s, NT_STMT_MARK, 6, p, &r, errstr, errstr_size))) return e;
    int ok = PQntuples(r) == 1;
    PQclear(r);
    if (!ok)
        return qb_err_set(errstr, errstr_size, QB_ERR_CONFLICT,
                          "delivery %s: claim lost (another session took it over)", id);
    return QB_OK;
}

qb_err_t nt_store_inbox(qb_store_t *s, const nt_claim_t *c, char *errstr, size_t errstr_size) {
    const char *user = c->address && *c->address ? c->address : c->owner;
    char et[24];
    snprintf(et, sizeof et, "%" PRId64, c->event_time);
    const char *p[8] = {c->id, user, c->rule_id, c->event_id, c->kind, et, c->title, c->text};
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (!e)
        e = qb_store_query(s,
                           "INSERT INTO notify.inbox (delivery_id, owner, rule_id, event_id,"
                           " event_kind, event_time, title, body) VALUES ($1::uuid, $2, $3, $4,"
                           " $5, $6::bigint, $7, $8) ON CONFLICT DO NOTHING",
                           8, p, NULL, errstr, errstr_size);
    if (!e)
        e = qb_store_query(s, "SELECT pg_notify('qb_notify_inbox', $1)", 1, &user, NULL, errstr,
                           errstr_size);
    if (!e) e = nt_store_mark(s, c->id, "delivered", 1, 0, NULL, 0, errstr, errstr_size);
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    if (e) qb_store_rollback(s, NULL, 0);
    return e;
}
