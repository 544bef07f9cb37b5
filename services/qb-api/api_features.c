/* api_features.c — what qb-features computed: indicator values per bar and
 * the signals of the strategies (see api.h for the handler API).
 *
 * Features: with a range (from, to or cursor) the rows of
 * features.features in time order, a page at a time (keyset on ts).
 * Without one, the latest row: qb-features caches it in Redis
 * (qb:features:SYMBOL:TF, {"ts","history_bars","values"}, written after
 * the rows are durable), else the newest PostgreSQL row. "source" says
 * which answered.
 *
 * Signals: features.signals newest first (bar time, then signal id: a
 * keyset cursor on both), filtered by symbol, strategy, account and bar
 * time range. Prices are fixed point in the table, exact decimals here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"

#define NS_TS(p) "(timestamptz 'epoch' + (" p "::bigint / 1000) * interval '1 microsecond')"
#define TS_NS(c) "(extract(epoch FROM " c ") * 1000000000)::bigint"
#define TIMEFRAMES "1m|5m|15m|30m|1h|4h|1d|1w"

/* the latest feature row from Redis; 1 when answered */
static int features_latest_redis(api_req_t *r, const char *sym, const char *tf) {
    qb_cache_t *c = api_redis(r);
    if (!c) return 0;
    char key[96], err[256];
    snprintf(key, sizeof key, "qb:features:%s:%s", sym, tf);
    char *doc = NULL;
    size_t len = 0;
    if (qb_cache_get_alloc(c, key, &doc, &len, err, sizeof err) != QB_OK) return 0;
    cJSON *j = cJSON_ParseWithLength(doc, len);
    free(doc);
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts"),
          *hb = cJSON_GetObjectItemCaseSensitive(j, "history_bars"),
          *vals = cJSON_GetObjectItemCaseSensitive(j, "values");
    if (!cJSON_IsNumber(ts) || !cJSON_IsNumber(hb) || !cJSON_IsObject(vals)) {
        cJSON_Delete(j);
        return 0;
    }
    char t[QB_TIME_STRLEN];
    qb_time_format((qb_time_t)ts->valuedouble, t, sizeof t);
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "time", t);
    cJSON_AddNumberToObject(row, "history_bars", hb->valuedouble);
    cJSON_AddItemToObject(row, "values", cJSON_DetachItemViaPointer(j, vals));
    cJSON_Delete(j);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "symbol", sym);
    cJSON_AddStringToObject(o, "timeframe", tf);
    cJSON_AddStringToObject(o, "source", "redis");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "items"), row);
    cJSON_AddNullToObject(o, "next_cursor");
    api_json(r, 200, o);
    return 1;
}

static void h_features(api_req_t *r) {
    const char *sym = api_param(r, "symbol");
    const char *tf = api_q_str(r, "timeframe");
    if (!tf) tf = "1d";
    const char *fs = api_q_str(r, "from"), *ts = api_q_str(r, "to"), *cs = api_q_str(r, "cursor");
    int64_t limit = api_q_int(r, "limit", 100);
    int64_t from = api_q_time(r, "from", 0), to = api_q_time(r, "to", 0), cur = 0;
    if (fs && ts && to <= from) {
        api_error(r, 400, "to", "to: must be after from");
        return;
    }
    if (cs) {
        char plain[64], *end;
        if (!api_cursor_decode(r, cs, plain, sizeof plain)) return;
        cur = strtoll(plain, &end, 10);
        if (!plain[0] || *end) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    }
    int range = fs || ts || cs;
    if (!range && features_latest_redis(r, sym, tf)) return;
    char f[24], t[24], c[24], l[24];
    snprintf(f, sizeof f, "%" PRId64, from);
    snprintf(t, sizeof t, "%" PRId64, to);
    snprintf(c, sizeof c, "%" PRId64, cur);
    snprintf(l, sizeof l, "%" PRId64, range ? limit + 1 : 1);
    const char *p[] = {sym, tf, fs ? f : NULL, ts ? t : NULL, cs ? c : NULL, l};
    PGresult *res = api_query(
        r,
        range ? "SELECT " TS_NS("ts") " AS cur_ns, ts AS time, history_bars, vals AS values FROM "
                "features.features WHERE symbol = $1 AND timeframe = $2 AND ($3::bigint IS NULL "
                "OR ts >= " NS_TS("$3") ") AND ($4::bigint IS NULL OR ts < " NS_TS("$4") ") AND "
                "($5::bigint IS NULL OR ts > " NS_TS("$5") ") ORDER BY ts LIMIT $6::int"
              : "SELECT " TS_NS("ts") " AS cur_ns, ts AS time, history_bars, vals AS values FROM "
                "features.features WHERE symbol = $1 AND timeframe = $2 AND $3::bigint IS NULL "
                "AND $4::bigint IS NULL AND $5::bigint IS NULL ORDER BY ts DESC LIMIT $6::int",
        6, p);
    if (!res) return;
    int n = PQntuples(res);
    if (!range && n == 0) {
        PQclear(res);
        api_error(r, 404, "symbol", "no features of %s %s", sym, tf);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "symbol", sym);
    cJSON_AddStringToObject(o, "timeframe", tf);
    cJSON_AddStringToObject(o, "source", "postgres");
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    int shown = range && n > limit ? (int)limit : n;
    for (int i = 0; i < shown; i++) {
        cJSON *row = api_pg_row_json(res, i);
        cJSON_DeleteItemFromObject(row, "cur_ns");
        cJSON_AddItemToArray(items, row);
    }
    if (range && n > limit) {
        char enc[64];
        api_cursor_encode(PQgetvalue(res, shown - 1, 0), enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

static void h_signals(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    const char *fs = api_q_str(r, "from"), *ts = api_q_str(r, "to"), *cs = api_q_str(r, "cursor");
    int64_t from = api_q_time(r, "from", 0), to = api_q_time(r, "to", 0);
    if (fs && ts && to <= from) {
        api_error(r, 400, "to", "to: must be after from");
        return;
    }
    /* cursor: "<bar ns>|<signal id>" of the last row shown */
    char plain[128] = "", *cur_id = NULL;
    if (cs) {
        if (!api_cursor_decode(r, cs, plain, sizeof plain)) return;
        char *bar = strchr(plain, '|'), *end;
        if (bar) {
            *bar = 0;
            cur_id = bar + 1;
        }
        (void)strtoll(plain, &end, 10);
        if (!bar || !plain[0] || *end || !qb_uuid_valid(cur_id)) {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    }
    char f[24], t[24], l[24];
    snprintf(f, sizeof f, "%" PRId64, from);
    snprintf(t, sizeof t, "%" PRId64, to);
    snprintf(l, sizeof l, "%" PRId64, limit + 1);
    const char *p[] = {api_q_str(r, "symbol"), api_q_str(r, "strategy"), api_q_str(r, "account"),
                       fs ? f : NULL,          ts ? t : NULL,           cs ? plain : NULL,
                       cur_id,                 l};
    PGresult *res = api_query(
        r,
        "SELECT " TS_NS("bar_ts") " AS cur_ns, signal_id::text AS signal_id, strategy_id AS "
        "strategy, account, symbol, timeframe, bar_ts AS time, lower(direction) AS direction, "
        "confidence, target_weight, api.px(stop_distance) AS stop_distance, "
        "api.px(reference_price) AS reference_price, reason, created_at FROM features.signals "
        "WHERE ($1::text IS NULL OR symbol = upper($1)) AND ($2::text IS NULL OR strategy_id = $2) "
        "AND ($3::text IS NULL OR account = $3) AND ($4::bigint IS NULL OR bar_ts >= "
        NS_TS("$4") ") AND ($5::bigint IS NULL OR bar_ts < " NS_TS("$5") ") AND ($6::bigint IS "
        "NULL OR (bar_ts, signal_id) < (" NS_TS("$6") ", $7::uuid)) "
        "ORDER BY bar_ts DESC, signal_id DESC LIMIT $8::int",
        8, p);
    if (!res) return;
    int n = PQntuples(res), shown = n > limit ? (int)limit : n;
    cJSON *o = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(o, "items");
    for (int i = 0; i < shown; i++) {
        cJSON *row = api_pg_row_json(res, i);
        cJSON_DeleteItemFromObject(row, "cur_ns");
        cJSON_AddItemToArray(items, row);
    }
    if (n > limit) {
        char c[128], enc[200];
        snprintf(c, sizeof c, "%s|%s", PQgetvalue(res, shown - 1, 0),
                 PQgetvalue(res, shown - 1, 1));
        api_cursor_encode(c, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    PQclear(res);
    api_json(r, 200, o);
}

const api_route_t api_routes_features[] = {
    {"GET", "/api/v1/features/{symbol}", QB_ROLE_VIEWER, h_features, "features",
     "Indicator values per bar (without a range: the latest, from Redis when cached)", 200,
     NULL, NULL,
     {{"timeframe", API_P_ENUM, 0, 0, 0, TIMEFRAMES, "bar length (default 1d)"},
      {"from", API_P_TIME, 0, 0, 0, NULL, "bar time >= (RFC 3339, date or ns)"},
      {"to", API_P_TIME, 0, 0, 0, NULL, "bar time < (RFC 3339, date or ns)"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows per page (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {"GET", "/api/v1/signals", QB_ROLE_VIEWER, h_signals, "features",
     "Signals of the strategies, newest first", 200, NULL, NULL,
     {{"symbol", API_P_SYMBOL, 0, 0, 0, NULL, "only this symbol"},
      {"strategy", API_P_STRING, 0, 0, 100, NULL, "only this strategy instance"},
      {"account", API_P_STRING, 0, 0, 64, NULL, "only this account"},
      {"from", API_P_TIME, 0, 0, 0, NULL, "bar time >= (RFC 3339, date or ns)"},
      {"to", API_P_TIME, 0, 0, 0, NULL, "bar time < (RFC 3339, date or ns)"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows per page (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {0}};
