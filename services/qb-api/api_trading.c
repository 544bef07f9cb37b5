/* api_trading.c — the trading routes of the gateway: orders (list, one with
 * its fills and reports, manual submit, cancel), positions and the account
 * summary.
 *
 * Where things are (see services/qb-risk/main.c, services/qb-execution):
 *   - a manual order is an OrderRequest on orders.intents (key = account);
 *     qb-risk decides it and names the order UUID v5(QB_RISK_ORDER_NS,
 *     "intent_id|1") (libs/risk qb_risk_order_id), so the 202 already
 *     carries the order id the order will have. Same intent id, same
 *     order: a client retrying with its intent_id creates one order;
 *   - approved orders live in trading.orders (qb-execution: status, fills
 *     in trading.fills, every ExecutionReport in trading.reports); orders
 *     qb-risk REJECTED never reach execution and live in risk.orders
 *     (approved = false, the rejection report in msg). Lists and reads show
 *     both (source "execution" / "risk"). Between the 202 and qb-risk's
 *     decision the order exists only as the gateway's audit row
 *     (order_submit): GET /orders/{id} reports it as status "pending";
 *     approved by qb-risk but not yet stored by qb-execution: "approved";
 *   - cancel = Command CANCEL_ORDER to qb-execution on control;
 *   - positions: risk.positions (signed qty, average cost, qb-risk's last
 *     mark); market value at that mark, or at the last close in md.bars
 *     when qb-risk has not marked the symbol yet;
 *   - account: risk.account_state (cash, equity, P&L baselines, written
 *     with every qb-risk batch) + risk.accounts (trading state) + the
 *     exposure of risk.positions + open orders of trading.orders; when
 *     PostgreSQL has no row yet, qb-risk's Redis copy
 *     (qb:risk:account:NAME) answers.
 * Enums go out as lower-case names (proto numbers in the tables), money,
 * prices and quantities as exact decimals, times as RFC 3339. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "core/qb_uuid.h"
#include "proto/qb_proto.h"
#include "qb/v1/control.pb-c.h"
#include "qb/v1/trading.pb-c.h"
#include "risk/qb_risk_check.h"

/* ---- helpers --------------------------------------------------------------------------- */
static int account_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > QB_ACCOUNT_MAX) return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

/* ?account= checked (absent: def, which may be NULL). 0 after a 400. */
static int q_account(api_req_t *r, const char *def, const char **out) {
    const char *a = api_q_str(r, "account");
    if (a && !account_ok(a)) {
        api_error(r, 400, "account", "account: 1-%d of letters, digits, _ . : -",
                  QB_ACCOUNT_MAX);
        return 0;
    }
    *out = a ? a : def;
    return 1;
}

/* "REASON_CODE_MAX_POSITION" -> "max_position"; NULL for 0 / unknown. */
static const char *enum_text(const ProtobufCEnumDescriptor *d, int v, const char *prefix,
                             char *buf, size_t cap) {
    if (v == 0) return NULL;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (!ev) return NULL;
    const char *n = ev->name;
    size_t pl = strlen(prefix);
    if (!strncmp(n, prefix, pl)) n += pl;
    size_t i = 0;
    for (; n[i] && i + 1 < cap; i++) buf[i] = (char)tolower((unsigned char)n[i]);
    buf[i] = 0;
    return buf;
}

/* reason_code (number) of each item -> reason (name) */
static void items_reasons(cJSON *items) {
    for (cJSON *it = items ? items->child : NULL; it; it = it->next) {
        cJSON *rc = cJSON_GetObjectItemCaseSensitive(it, "reason_code");
        if (!cJSON_IsNumber(rc)) continue;
        char b[64];
        const char *t = enum_text(&qb__v1__reason_code__descriptor, rc->valueint, "REASON_CODE_",
                                  b, sizeof b);
        cJSON_AddItemToObject(it, "reason", t ? cJSON_CreateString(t) : cJSON_CreateNull());
    }
}

static cJSON *dec_json(int64_t v) {
    char b[QB_DEC_STRLEN];
    qb_dec_format(v, b, sizeof b);
    return cJSON_CreateRaw(b);
}

/* A stored ExecutionReport (bytea in its text form) -> JSON; NULL when unreadable. */
static cJSON *report_json(const char *text) {
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)text, &n);
    if (!b) return NULL;
    Qb__V1__ExecutionReport *x = qb__v1__execution_report__unpack(NULL, n, b);
    PQfreemem(b);
    if (!x) return NULL;
    cJSON *o = cJSON_CreateObject();
    char buf[64], tb[48] = "";
    cJSON_AddNumberToObject(o, "sequence", (double)x->sequence);
    const char *st = enum_text(&qb__v1__order_status__descriptor, x->status, "ORDER_STATUS_", buf,
                               sizeof buf);
    cJSON_AddItemToObject(o, "status", st ? cJSON_CreateString(st) : cJSON_CreateNull());
    if (x->header && x->header->event_time) qb_time_format(x->header->event_time, tb, sizeof tb);
    cJSON_AddItemToObject(o, "time", *tb ? cJSON_CreateString(tb) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "fill_qty", dec_json(x->fill_qty));
    cJSON_AddItemToObject(o, "fill_price", dec_json(x->fill_price));
    cJSON_AddItemToObject(o, "commission", dec_json(x->commission));
    cJSON_AddItemToObject(o, "cum_qty", dec_json(x->cum_qty));
    cJSON_AddItemToObject(o, "leaves_qty", dec_json(x->leaves_qty));
    cJSON_AddItemToObject(o, "avg_price", dec_json(x->avg_price));
    const char *rs = enum_text(&qb__v1__reason_code__descriptor, x->reason_code, "REASON_CODE_",
                               buf, sizeof buf);
    cJSON_AddItemToObject(o, "reason", rs ? cJSON_CreateString(rs) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "reason_text", x->reason_text && *x->reason_text
                                                ? cJSON_CreateString(x->reason_text)
                                                : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "fill_id", x->fill_id && *x->fill_id
                                            ? cJSON_CreateString(x->fill_id)
                                            : cJSON_CreateNull());
    qb__v1__execution_report__free_unpacked(x, NULL);
    return o;
}

/* Every order in one shape: trading.orders (what execution holds) and the
 * rejections of qb-risk (risk.orders, approved = false, never at
 * execution), then formatted. $1 account, $2 symbol, $3 strategy, $4
 * status class (open|closed|NULL), $5/$6 cursor (created_ns, order_id),
 * $7 limit, $8 one order id. */
static const char ORDERS_SQL[] =
    "WITH ord AS ("
    "SELECT o.order_id, o.account, o.strategy_id, o.symbol, o.side, o.type, o.tif, o.status, "
    "o.qty, o.requested_qty, o.cum_qty, o.avg_price, o.limit_price, o.stop_price, "
    "o.take_profit_price, o.stop_loss_price, o.notional, o.commission, o.leg, "
    "o.parent_order_id, o.oco_group, o.replaces_order_id, o.mode, o.cause_id, o.cause_kind, "
    "o.client_tag, o.broker, o.broker_order_id, o.reason_code, o.reason_text, o.created_ns, "
    "o.updated_ns, 'execution'::text AS source FROM trading.orders o "
    "UNION ALL "
    "SELECT k.order_id, k.account, k.strategy_id, k.symbol, k.side, 0::smallint, 0::smallint, "
    "7::smallint, k.qty, k.qty, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, "
    "0::bigint, 0::bigint, 0::bigint, 1::smallint, ''::text, ''::text, ''::text, 0::smallint, "
    "k.cause_id, k.cause_kind, ''::text, ''::text, ''::text, k.reason_code, k.reason_text, "
    "k.decided_at, k.decided_at, 'risk'::text FROM risk.orders k WHERE NOT k.approved AND NOT "
    "EXISTS (SELECT 1 FROM trading.orders t WHERE t.order_id = k.order_id)) "
    "SELECT o.order_id::text AS order_id, o.account, NULLIF(o.strategy_id, '') AS "
    "strategy_id, o.symbol, (ARRAY['buy','sell'])[NULLIF(o.side, 0)] AS side, "
    "(ARRAY['market','limit','stop','stop_limit'])[NULLIF(o.type, 0)] AS type, "
    "(ARRAY['day','gtc','ioc','fok','opg','cls'])[NULLIF(o.tif, 0)] AS time_in_force, "
    "(ARRAY['new','submitted','accepted','partially_filled','filled','canceled','rejected',"
    "'expired'])[o.status] AS status, o.status BETWEEN 1 AND 4 AS open, api.px(o.qty) AS qty, "
    "api.px(o.requested_qty) AS requested_qty, api.px(o.cum_qty) AS filled_qty, "
    "api.px(CASE WHEN o.status BETWEEN 1 AND 4 THEN o.qty - o.cum_qty ELSE 0 END) AS "
    "leaves_qty, api.px(NULLIF(o.avg_price, 0)) AS avg_price, api.px(NULLIF(o.limit_price, 0)) "
    "AS limit_price, api.px(NULLIF(o.stop_price, 0)) AS stop_price, "
    "api.px(NULLIF(o.take_profit_price, 0)) AS take_profit_price, "
    "api.px(NULLIF(o.stop_loss_price, 0)) AS stop_loss_price, api.px(o.notional) AS notional, "
    "api.px(o.commission) AS commission, (ARRAY['single','entry','take_profit','stop_loss'])"
    "[NULLIF(o.leg, 0)] AS leg, NULLIF(o.parent_order_id, '') AS parent_order_id, "
    "NULLIF(o.oco_group, '') AS oco_group, NULLIF(o.replaces_order_id, '') AS "
    "replaces_order_id, (ARRAY['paper','live','backtest'])[NULLIF(o.mode, 0)] AS mode, "
    "o.cause_id, (ARRAY['signal','intent','bracket','replace','risk'])[NULLIF(o.cause_kind, 0)] "
    "AS cause, NULLIF(o.client_tag, '') AS client_tag, NULLIF(o.broker, '') AS broker, "
    "NULLIF(o.broker_order_id, '') AS broker_order_id, o.reason_code, NULLIF(o.reason_text, "
    "'') AS reason_text, api.ns_text(o.created_ns) AS created_at, api.ns_text(o.updated_ns) "
    "AS updated_at, o.source, o.created_ns AS k_ns FROM ord o WHERE "
    "($1::text IS NULL OR o.account = $1) AND ($2::text IS NULL OR o.symbol = $2) AND "
    "($3::text IS NULL OR o.strategy_id = $3) AND ($4::text IS NULL OR ($4 = 'open') = "
    "(o.status BETWEEN 1 AND 4)) AND ($5::bigint IS NULL OR (o.created_ns, o.order_id) < "
    "($5::bigint, $6::uuid)) AND ($8::uuid IS NULL OR o.order_id = $8::uuid) "
    "ORDER BY o.created_ns DESC, o.order_id DESC LIMIT $7::int";

/* ---- GET /orders ------------------------------------------------------------------------- */
static void h_orders_list(api_req_t *r) {
    const char *acct, *cur = api_q_str(r, "cursor"), *status = api_q_str(r, "status");
    if (!q_account(r, NULL, &acct)) return;
    int64_t limit = api_q_int(r, "limit", 100);
    char plain[128] = "", lim[24], *c_id = NULL;
    if (cur) {
        if (!api_cursor_decode(r, cur, plain, sizeof plain)) return;
        char *bar = strchr(plain, '|'), *end = NULL;
        if (bar) {
            *bar = 0;
            c_id = bar + 1;
            strtoll(plain, &end, 10);
        }
        if (!bar || !*plain || *end || strlen(plain) > 19 || !qb_uuid_valid(c_id)) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    }
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *p[] = {acct,
                       api_q_str(r, "symbol"),
                       api_q_str(r, "strategy"),
                       status && strcmp(status, "all") ? status : NULL,
                       cur ? plain : NULL,
                       c_id,
                       lim,
                       NULL};
    PGresult *res = api_query(r, ORDERS_SQL, 8, p);
    if (!res) return;
    int n = PQntuples(res), kc = PQfnumber(res, "k_ns"), ic = PQfnumber(res, "order_id");
    cJSON *items = api_pg_rows_json(res);
    for (cJSON *it = items->child; it; it = it->next)
        cJSON_DeleteItemFromObjectCaseSensitive(it, "k_ns");
    items_reasons(items);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", items);
    if (n == limit && n > 0) {
        char key[96], enc[160];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(res, n - 1, kc), PQgetvalue(res, n - 1, ic));
        api_cursor_encode(key, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- GET /orders/{order_id} -------------------------------------------------------------- */
/* The order before it reached execution: approved by qb-risk (in flight to
 * qb-execution) or only submitted (audit row). NULL after answering. */
static cJSON *order_early(api_req_t *r, const char *id) {
    const char *p[] = {id};
    PGresult *res = api_query(
        r,
        "SELECT k.order_id::text AS order_id, k.account, NULLIF(k.strategy_id, '') AS "
        "strategy_id, k.symbol, (ARRAY['buy','sell'])[NULLIF(k.side, 0)] AS side, "
        "'approved'::text AS status, true AS open, api.px(k.qty) AS qty, k.cause_id, "
        "(ARRAY['signal','intent','bracket','replace','risk'])[NULLIF(k.cause_kind, 0)] AS "
        "cause, NULLIF(k.reason_text, '') AS reason_text, api.ns_text(k.decided_at) AS "
        "created_at, 'risk'::text AS source FROM risk.orders k WHERE k.order_id = $1::uuid AND "
        "k.approved",
        1, p);
    if (!res) return NULL;
    cJSON *o = PQntuples(res) ? api_pg_row_json(res, 0) : NULL;
    PQclear(res);
    if (o) return o;
    res = api_query(r,
                    "SELECT a.target AS order_id, a.detail->>'account' AS account, "
                    "a.detail->>'strategy_id' AS strategy_id, a.detail->>'symbol' AS symbol, "
                    "a.detail->>'side' AS side, a.detail->>'type' AS type, "
                    "a.detail->>'time_in_force' AS time_in_force, 'pending'::text AS status, "
                    "true AS open, a.detail->'qty' AS qty, a.detail->'limit_price' AS "
                    "limit_price, a.detail->'stop_price' AS stop_price, "
                    "a.detail->'take_profit_price' AS take_profit_price, "
                    "a.detail->'stop_loss_price' AS stop_loss_price, a.detail->>'intent_id' AS "
                    "cause_id, 'intent'::text AS cause, a.detail->>'client_tag' AS client_tag, "
                    "a.at AS created_at, 'api'::text AS source FROM api.audit a WHERE "
                    "a.action = 'order_submit' AND a.target = $1 ORDER BY a.audit_id DESC LIMIT 1",
                    1, p);
    if (!res) return NULL;
    o = PQntuples(res) ? api_pg_row_json(res, 0) : NULL;
    PQclear(res);
    if (!o) api_error(r, 404, "order_id", "no order %s", id);
    return o;
}

static void h_orders_get(api_req_t *r) {
    const char *id = api_param(r, "order_id");
    char one[] = "1";
    const char *p[] = {NULL, NULL, NULL, NULL, NULL, NULL, one, id};
    PGresult *res = api_query(r, ORDERS_SQL, 8, p);
    if (!res) return;
    cJSON *o = NULL;
    int at_exec = 0;
    if (PQntuples(res) == 1) {
        o = api_pg_row_json(res, 0);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "k_ns");
        at_exec = !strcmp(PQgetvalue(res, 0, PQfnumber(res, "source")), "execution");
    }
    PQclear(res);
    if (!o && !(o = order_early(r, id))) return;
    cJSON *wrap = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(wrap, o);
    items_reasons(wrap);
    cJSON_Delete(wrap);
    const char *q[] = {id};
    /* fills */
    if (!(res = api_query(r,
                          "SELECT fill_id, api.px(qty) AS qty, api.px(price) AS price, "
                          "api.px(commission) AS commission, api.ns_text(ts_ns) AS time, source "
                          "FROM trading.fills WHERE order_id = $1::uuid ORDER BY ts_ns, fill_id",
                          1, q)))
        goto fail;
    cJSON_AddItemToObject(o, "fills", api_pg_rows_json(res));
    PQclear(res);
    /* reports: execution's, or the rejection qb-risk sent */
    if (!(res = api_query(r,
                          "SELECT payload FROM trading.reports WHERE order_id = "
                          "$1::uuid UNION ALL SELECT msg FROM risk.orders WHERE "
                          "order_id = $1::uuid AND NOT approved AND topic LIKE '%exec.reports'",
                          1, q)))
        goto fail;
    cJSON *reps = cJSON_AddArrayToObject(o, "reports");
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *x = report_json(PQgetvalue(res, i, 0));
        if (x) cJSON_AddItemToArray(reps, x);
    }
    PQclear(res);
    /* bracket legs and replacements made from it */
    if (at_exec) {
        if (!(res = api_query(r,
                              "SELECT order_id::text AS order_id, (ARRAY['single','entry',"
                              "'take_profit','stop_loss'])[NULLIF(leg, 0)] AS leg, "
                              "(ARRAY['new','submitted','accepted','partially_filled','filled',"
                              "'canceled','rejected','expired'])[status] AS status, "
                              "CASE WHEN replaces_order_id = $1 THEN 'replacement' ELSE 'leg' "
                              "END AS relation FROM trading.orders WHERE parent_order_id = $1 OR "
                              "replaces_order_id = $1 ORDER BY created_ns, order_id",
                              1, q)))
            goto fail;
        cJSON_AddItemToObject(o, "children", api_pg_rows_json(res));
        PQclear(res);
    }
    api_json(r, 200, o);
    return;
fail:
    cJSON_Delete(o);
}

/* ---- POST /orders ------------------------------------------------------------------------- */
static const char *const SIDES = "buy|sell";
static const char *const TYPES = "market|limit|stop|stop_limit";
static const char *const TIFS = "day|gtc|ioc|fok";

static int enum_index(const char *values, const char *v) {
    int i = 1;
    for (const char *p = values; *p; i++) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strlen(v) == len && !strncmp(p, v, len)) return i;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static void h_orders_submit(api_req_t *r) {
    static const char *const allowed[] = {
        "account",          "symbol",      "side",           "type",
        "qty",              "limit_price", "stop_price",     "time_in_force",
        "take_profit_price", "stop_loss_price", "client_tag", "intent_id",
        "strategy_id",      NULL};
    const char *account = NULL, *symbol = NULL, *side = NULL, *type = NULL, *tif = NULL;
    const char *tag = NULL, *intent = NULL, *strategy = NULL;
    int64_t qty = 0, lp = 0, sp = 0, tp = 0, sl = 0;
    if (!api_body_only(r, allowed) || !api_body_str(r, "account", 0, QB_ACCOUNT_MAX, &account) ||
        !api_body_str(r, "symbol", 1, 64, &symbol) || !api_body_enum(r, "side", 1, SIDES, &side) ||
        !api_body_enum(r, "type", 0, TYPES, &type) || !api_body_dec(r, "qty", 1, 1, &qty) ||
        !api_body_dec(r, "limit_price", 0, 1, &lp) || !api_body_dec(r, "stop_price", 0, 1, &sp) ||
        !api_body_enum(r, "time_in_force", 0, TIFS, &tif) ||
        !api_body_dec(r, "take_profit_price", 0, 1, &tp) ||
        !api_body_dec(r, "stop_loss_price", 0, 1, &sl) ||
        !api_body_str(r, "client_tag", 0, 64, &tag) ||
        !api_body_str(r, "intent_id", 0, 100, &intent) ||
        !api_body_str(r, "strategy_id", 0, 100, &strategy))
        return;
    if (!account) account = api_cfg(r->api)->default_account;
    if (!account_ok(account)) {
        api_error(r, 400, "account", "account: 1-%d of letters, digits, _ . : -", QB_ACCOUNT_MAX);
        return;
    }
    qb_symbol_t sym;
    char e[256];
    if (qb_symbol_set(&sym, symbol, e, sizeof e) != QB_OK) {
        api_error(r, 400, "symbol", "symbol: %s", e);
        return;
    }
    if (!type) type = "market";
    int ty = enum_index(TYPES, type);
    int needs_limit = ty == 2 || ty == 4, needs_stop = ty == 3 || ty == 4;
    if (needs_limit && !lp) {
        api_error(r, 400, "limit_price", "limit_price: required for a %s order", type);
        return;
    }
    if (!needs_limit && lp) {
        api_error(r, 400, "limit_price", "limit_price: only for limit and stop_limit orders");
        return;
    }
    if (needs_stop && !sp) {
        api_error(r, 400, "stop_price", "stop_price: required for a %s order", type);
        return;
    }
    if (!needs_stop && sp) {
        api_error(r, 400, "stop_price", "stop_price: only for stop and stop_limit orders");
        return;
    }
    int buy = !strcmp(side, "buy");
    if (tp && sl && (buy ? tp <= sl : tp >= sl)) {
        api_error(r, 400, "take_profit_price",
                  "take_profit_price: must be %s stop_loss_price for a %s", buy ? "above" : "below",
                  side);
        return;
    }
    if (intent && (!*intent || strspn(intent, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_.:-") != strlen(intent))) {
        api_error(r, 400, "intent_id", "intent_id: 1-100 of letters, digits, _ . : -");
        return;
    }
    if (strategy && strspn(strategy, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_.:-") != strlen(strategy)) {
        api_error(r, 400, "strategy_id", "strategy_id: letters, digits, _ . : -");
        return;
    }
    char intent_id[128], order_id[QB_UUID_STRLEN];
    if (intent) snprintf(intent_id, sizeof intent_id, "%s", intent);
    else qb_uuid_v4(intent_id);
    qb_risk_order_id(intent_id, 1, order_id);

    char by[160];
    snprintf(by, sizeof by, "%s%s%s", r->who.name, r->who.key_id[0] ? " key " : "",
             r->who.key_id);
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qb-api", 0, NULL);
    Qb__V1__OrderRequest rq = QB__V1__ORDER_REQUEST__INIT;
    rq.header = &h.pb;
    rq.intent_id = intent_id;
    rq.account = (char *)account;
    rq.symbol = sym.s;
    rq.side = buy ? QB__V1__SIDE__SIDE_BUY : QB__V1__SIDE__SIDE_SELL;
    rq.type = (Qb__V1__OrderType)ty;
    rq.time_in_force = (Qb__V1__TimeInForce)(tif ? enum_index(TIFS, tif) : 1);
    rq.qty = qty;
    rq.limit_price = lp;
    rq.stop_price = sp;
    rq.take_profit_price = tp;
    rq.stop_loss_price = sl;
    rq.client_tag = (char *)(tag ? tag : "");
    rq.requested_by = by;
    rq.strategy_id = (char *)(strategy ? strategy : "");
    if (!api_send(r, "orders.intents", account, &rq.base)) return;
    /* the audit row is the order's "pending" state until qb-risk decides */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "intent_id", intent_id);
    cJSON_AddStringToObject(d, "account", account);
    cJSON_AddStringToObject(d, "symbol", sym.s);
    cJSON_AddStringToObject(d, "side", side);
    cJSON_AddStringToObject(d, "type", type);
    cJSON_AddStringToObject(d, "time_in_force", tif ? tif : "day");
    cJSON_AddItemToObject(d, "qty", dec_json(qty));
    if (lp) cJSON_AddItemToObject(d, "limit_price", dec_json(lp));
    if (sp) cJSON_AddItemToObject(d, "stop_price", dec_json(sp));
    if (tp) cJSON_AddItemToObject(d, "take_profit_price", dec_json(tp));
    if (sl) cJSON_AddItemToObject(d, "stop_loss_price", dec_json(sl));
    if (tag) cJSON_AddStringToObject(d, "client_tag", tag);
    if (strategy && *strategy) cJSON_AddStringToObject(d, "strategy_id", strategy);
    cJSON_AddStringToObject(d, "event_id", h.pb.event_id);
    api_audit(r, "order_submit", order_id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "intent_id", intent_id);
    cJSON_AddStringToObject(o, "order_id", order_id);
    cJSON_AddStringToObject(o, "account", account);
    cJSON_AddStringToObject(o, "status", "pending");
    char url[128];
    snprintf(url, sizeof url, "/api/v1/orders/%s", order_id);
    snprintf(r->location, sizeof r->location, "%s", url);
    cJSON_AddStringToObject(o, "status_url", url);
    api_json(r, 202, o);
}

/* ---- DELETE /orders/{order_id} -------------------------------------------------------------- */
static void h_orders_cancel(api_req_t *r) {
    const char *id = api_param(r, "order_id");
    const char *p[] = {id};
    PGresult *res = api_query(r,
                              "SELECT account, status, (ARRAY['new','submitted','accepted',"
                              "'partially_filled','filled','canceled','rejected','expired'])"
                              "[status] FROM trading.orders WHERE order_id = $1::uuid",
                              1, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        /* known to risk or to us, but not at execution (yet) */
        res = api_query(r,
                        "SELECT CASE WHEN approved THEN 'approved by qb-risk, not yet at "
                        "qb-execution: retry in a moment' ELSE 'rejected by qb-risk' END FROM "
                        "risk.orders WHERE order_id = $1::text::uuid UNION ALL SELECT 'waiting "
                        "for qb-risk: retry in a moment' FROM api.audit WHERE action = "
                        "'order_submit' AND target = $1::text LIMIT 1",
                        1, p);
        if (!res) return;
        if (PQntuples(res))
            api_error(r, 409, "order_id", "order %s is %s", id, PQgetvalue(res, 0, 0));
        else
            api_error(r, 404, "order_id", "no order %s", id);
        PQclear(res);
        return;
    }
    char account[QB_ACCOUNT_MAX + 1], st[32];
    snprintf(account, sizeof account, "%s", PQgetvalue(res, 0, 0));
    int status = atoi(PQgetvalue(res, 0, 1));
    snprintf(st, sizeof st, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (status < 1 || status > 4) {
        api_error(r, 409, "order_id", "order %s is %s: nothing to cancel", id, st);
        return;
    }
    const char *reason = api_q_str(r, "reason");
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    Qb__V1__Command__CancelOrderParams cp = QB__V1__COMMAND__CANCEL_ORDER_PARAMS__INIT;
    cp.order_id = (char *)id;
    cmd.target = "qb-execution";
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_CANCEL_ORDER;
    cmd.account = account;
    cmd.reason = (char *)(reason ? reason : "canceled through the API");
    cmd.params_case = QB__V1__COMMAND__PARAMS_CANCEL_ORDER;
    cmd.cancel_order = &cp;
    char cid[QB_UUID_STRLEN];
    if (!api_send_command(r, &cmd, cid)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", cid);
    cJSON_AddStringToObject(d, "account", account);
    if (reason) cJSON_AddStringToObject(d, "reason", reason);
    api_audit(r, "order_cancel", id, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", cid);
    cJSON_AddStringToObject(o, "order_id", id);
    cJSON_AddStringToObject(o, "status", "cancel_requested");
    api_json(r, 202, o);
}

/* ---- GET /positions ------------------------------------------------------------------------ */
/* Price: qb-risk's mark, else the last close in md.bars. */
static const char POSITIONS_SQL[] =
    "SELECT p.account, p.symbol, api.px(p.qty) AS qty, CASE WHEN p.qty > 0 THEN 'long' WHEN "
    "p.qty < 0 THEN 'short' ELSE 'flat' END AS side, api.px(p.avg_cost) AS avg_cost, "
    "api.px(px.price) AS price, px.source AS price_source, px.at AS price_time, "
    "trim_scale(round(p.qty::numeric * px.price / 1e16, 8)) AS market_value, "
    "trim_scale(round(p.qty::numeric * (px.price - p.avg_cost) / 1e16, 8)) AS unrealized_pnl, "
    "api.px(p.realized) AS realized_pnl, CASE WHEN s.equity > 0 AND px.price IS NOT NULL THEN "
    "round(p.qty::numeric * px.price / 1e8 / s.equity, 6) END AS weight, p.updated_at "
    "FROM risk.positions p LEFT JOIN risk.account_state s ON s.account = p.account "
    "LEFT JOIN LATERAL (SELECT p.mark AS price, 'risk_mark'::text AS source, "
    "api.ns_text(NULLIF(p.mark_ts, 0)) AS at WHERE p.mark > 0 UNION ALL SELECT * FROM (SELECT "
    "b.close, 'last_bar'::text, to_char(b.ts AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM md.bars b JOIN md.assets a ON a.asset_id = "
    "b.asset_id WHERE a.symbol = p.symbol AND p.mark <= 0 ORDER BY b.ts DESC LIMIT 1) lb "
    "LIMIT 1) px ON true "
    "WHERE ($1::text IS NULL OR p.account = $1) AND ($2::text IS NULL OR p.symbol = $2) AND "
    "($3::boolean OR p.qty <> 0) ORDER BY p.account, p.symbol";

static void h_positions(api_req_t *r) {
    const char *acct;
    if (!q_account(r, NULL, &acct)) return;
    const char *p[] = {acct, api_q_str(r, "symbol"), api_q_bool(r, "include_flat", 0) ? "true"
                                                                                        : "false"};
    PGresult *res = api_query(r, POSITIONS_SQL, 3, p);
    if (!res) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", api_pg_rows_json(res));
    cJSON_AddNullToObject(o, "next_cursor");
    PQclear(res);
    api_json(r, 200, o);
}

/* ---- GET /account ------------------------------------------------------------------------- */
static const char ACCOUNT_SQL[] =
    "WITH pos AS (SELECT p.qty::numeric * CASE WHEN p.mark > 0 THEN p.mark ELSE p.avg_cost END "
    "/ 1e16 AS mv FROM risk.positions p WHERE p.account = $1 AND p.qty <> 0) "
    "SELECT s.account, lower(coalesce(a.status, 'ACTIVE')) AS status, NULLIF(a.status_text, "
    "'') AS status_text, CASE WHEN a.paused_until > 0 THEN api.ns_text(a.paused_until) END AS "
    "paused_until, api.px(s.cash) AS cash, api.px(s.equity) AS equity, api.px(s.initial_cash) "
    "AS initial_cash, api.px(s.realized) AS realized_pnl, api.px(s.unrealized) AS "
    "unrealized_pnl, api.px(s.equity - s.initial_cash) AS total_pnl, api.px(s.day_start) AS "
    "day_start_equity, api.px(CASE WHEN s.day_start > 0 THEN s.equity - s.day_start ELSE 0 END) "
    "AS day_pnl, api.px(s.hwm) AS high_water_mark, CASE WHEN s.hwm > 0 THEN round((1 - "
    "s.equity::numeric / s.hwm), 6) ELSE 0 END AS drawdown, "
    "json_build_object('long', trim_scale(round(coalesce((SELECT sum(mv) FROM pos WHERE mv > "
    "0), 0), 8)), 'short', trim_scale(round(coalesce((SELECT sum(mv) FROM pos WHERE mv < 0), "
    "0), 8)), 'gross', trim_scale(round(coalesce((SELECT sum(abs(mv)) FROM pos), 0), 8)), "
    "'net', trim_scale(round(coalesce((SELECT sum(mv) FROM pos), 0), 8)), 'leverage', CASE "
    "WHEN s.equity > 0 THEN round(coalesce((SELECT sum(abs(mv)) FROM pos), 0) * 1e8 / "
    "s.equity, 6) END) AS exposure, (SELECT count(*) FROM pos) AS positions, (SELECT count(*) "
    "FROM trading.orders o WHERE o.account = $1 AND o.status BETWEEN 1 AND 4) AS open_orders, "
    "s.fills, s.updated_at, 'postgres'::text AS source FROM risk.account_state s LEFT JOIN "
    "risk.accounts a ON a.account = s.account WHERE s.account = $1";

static void h_account(api_req_t *r) {
    const char *acct;
    if (!q_account(r, api_cfg(r->api)->default_account, &acct)) return;
    const char *p[] = {acct};
    PGresult *res = api_query(r, ACCOUNT_SQL, 1, p);
    if (!res) return;
    if (PQntuples(res) == 1) {
        cJSON *o = api_pg_row_json(res, 0);
        PQclear(res);
        api_json(r, 200, o);
        return;
    }
    PQclear(res);
    /* qb-risk's Redis copy (an account it holds but has not flushed yet) */
    qb_cache_t *c = api_redis(r);
    char key[96], err[256], *val = NULL;
    size_t len = 0;
    snprintf(key, sizeof key, "qb:risk:account:%s", acct);
    cJSON *j = NULL;
    if (c && qb_cache_get_alloc(c, key, &val, &len, err, sizeof err) == QB_OK)
        j = cJSON_ParseWithLength(val, len);
    free(val);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        api_error(r, 404, "account", "account '%s' is unknown to qb-risk", acct);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account", acct);
    cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    char low[16] = "active";
    if (cJSON_IsString(st))
        for (size_t i = 0; st->valuestring[i] && i + 1 < sizeof low; i++) {
            low[i] = (char)tolower((unsigned char)st->valuestring[i]);
            low[i + 1] = 0;
        }
    cJSON_AddStringToObject(o, "status", low);
    static const char *const keys[] = {"cash", "equity", "hwm", NULL};
    static const char *const names[] = {"cash", "equity", "high_water_mark", NULL};
    for (int i = 0; keys[i]; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        qb_dec_t d;
        if (cJSON_IsString(v) && qb_dec_parse(v->valuestring, strlen(v->valuestring), &d) == QB_OK)
            cJSON_AddItemToObject(o, names[i], dec_json(d));
    }
    cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "positions");
    cJSON_AddNumberToObject(o, "positions", cJSON_IsObject(pos) ? cJSON_GetArraySize(pos) : 0);
    cJSON_AddStringToObject(o, "source", "redis");
    cJSON_Delete(j);
    api_json(r, 200, o);
}

/* ---- the table ------------------------------------------------------------------------------ */
#define S_ORDER_NEW                                                                              \
    "{\"type\":\"object\",\"required\":[\"symbol\",\"side\",\"qty\"],"                           \
    "\"additionalProperties\":false,\"properties\":{\"account\":{\"type\":\"string\","           \
    "\"pattern\":\"^[A-Za-z0-9_.:-]{1,63}$\",\"description\":\"default: the gateway's QB_API_"   \
    "DEFAULT_ACCOUNT\"},\"symbol\":{\"type\":\"string\"},\"side\":{\"type\":\"string\","         \
    "\"enum\":[\"buy\",\"sell\"]},\"type\":{\"type\":\"string\","                                \
    "\"enum\":[\"market\",\"limit\",\"stop\",\"stop_limit\"],"                                   \
    "\"default\":\"market\"},\"qty\":{\"oneOf\":[{\"type\":\"number\"},"                         \
    "{\"type\":\"string\"}],\"description\":\"> 0, up to 8 decimals\"},"                         \
    "\"limit_price\":{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"string\"}],"                  \
    "\"description\":\"limit and stop_limit only\"},\"stop_price\":{\"oneOf\":[{\"type\":\"nu"   \
    "mber\"},{\"type\":\"string\"}],\"description\":\"stop and stop_limit only\"},"              \
    "\"time_in_force\":{\"type\":\"string\",\"enum\":[\"day\","                                  \
    "\"gtc\",\"ioc\",\"fok\"],\"default\":\"day\"},\"take_profit_price\":{\"oneOf\":[{\"type\""  \
    ":\"number\"},{\"type\":\"string\"}],\"description\":\"bracket: a LIMIT exit once filled\""  \
    "},\"stop_loss_price\":{\"oneOf\":[{\"type\":\"number\"},"                                   \
    "{\"type\":\"string\"}],\"description\":\"bracket: a STOP exit once filled\"},"              \
    "\"client_tag\":{\"type\":\"string\",\"maxLength\":64},\"intent_id\":{\"type\":\"string\""   \
    ",\"pattern\":\"^[A-Za-z0-9_.:-]{1,100}$\",\"description\":\"idempotency key (default: a "   \
    "new UUID); the same intent is one order\"},\"strategy_id\":{\"type\":\"string\","           \
    "\"maxLength\":100,\"description\":\"attribute the order to a strategy's P&L; default: ma"   \
    "nual\"}}}"
#define S_ORDER_ACCEPTED                                                                         \
    "{\"type\":\"object\",\"properties\":{\"intent_id\":{\"type\":\"string\"},"                  \
    "\"order_id\":{\"type\":\"string\",\"format\":\"uuid\"},\"account\":{\"type\":\"string\"}"   \
    ",\"status\":{\"type\":\"string\"},\"status_url\":{\"type\":\"string\"}}}"
#define Q_ACCOUNT {"account", API_P_STRING, 0, 0, 63, NULL, "account"}

const api_route_t api_routes_trading[] = {
    {"GET", "/api/v1/orders", QB_ROLE_VIEWER, h_orders_list, "trading",
     "Orders (execution's and qb-risk's rejections), newest first", 200, NULL, NULL,
     {Q_ACCOUNT,
      {"status", API_P_ENUM, 0, 0, 0, "open|closed|all", "open, closed or all (default)"},
      {"symbol", API_P_SYMBOL, 0, 0, 0, NULL, "only this symbol"},
      {"strategy", API_P_STRING, 0, 0, 100, NULL, "only this strategy id"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {"GET", "/api/v1/orders/{order_id}", QB_ROLE_VIEWER, h_orders_get, "trading",
     "One order with its fills, execution reports and bracket legs (pending / approved "
     "before it reaches execution)",
     200, NULL, NULL, {{0}}, 0},
    {"POST", "/api/v1/orders", QB_ROLE_TRADER, h_orders_submit, "trading",
     "Submit a manual order: an intent qb-risk checks; answers the order id it will have", 202,
     S_ORDER_NEW, S_ORDER_ACCEPTED, {{0}}, 0},
    {"DELETE", "/api/v1/orders/{order_id}", QB_ROLE_TRADER, h_orders_cancel, "trading",
     "Cancel an open order (CANCEL_ORDER to qb-execution)", 202, NULL, NULL,
     {{"reason", API_P_STRING, 0, 0, 200, NULL, "why, for the audit log"}}, 0},
    {"GET", "/api/v1/positions", QB_ROLE_VIEWER, h_positions, "trading",
     "Positions with market value (qb-risk's mark, else the last stored close)", 200, NULL,
     NULL,
     {Q_ACCOUNT,
      {"symbol", API_P_SYMBOL, 0, 0, 0, NULL, "only this symbol"},
      {"include_flat", API_P_BOOL, 0, 0, 0, NULL, "also symbols traded back to 0"}},
     0},
    {"GET", "/api/v1/account", QB_ROLE_VIEWER, h_account, "trading",
     "Account summary: equity, cash, realised / unrealised P&L, exposure, open orders", 200,
     NULL, NULL, {{"account", API_P_STRING, 0, 0, 63, NULL, "default QB_API_DEFAULT_ACCOUNT"}},
     0},
    {0}};
