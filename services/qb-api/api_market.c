/* api_market.c — the market routes of the gateway: quotes, bars, assets,
 * gaps, and qb-data's ingest jobs (see api.h for the handler API).
 *
 * Quotes. The latest bar of a symbol is in Redis, hash
 * qb:md:last:SYMBOL:TIMEFRAME (written by libs/md/qb_md_publish.c when a bar
 * is published). Without ?timeframe the finest available of 1m, 5m, 15m,
 * 1h, 1d is wanted: ONE Redis round trip answers it (QUOTE_LUA: the first
 * of the symbol's keys holding a bar, for every symbol of a batch), sent
 * as EVALSHA of the script's SHA-1 (qb_cache_script_sha), with EVAL when Redis has
 * not seen it yet (NOSCRIPT; Redis then keeps it). Symbols Redis does not
 * hold — or all of them when Redis is down (qb_cache answers at once while
 * in back-off) — come from the newest md.bars row in the same timeframe
 * order, one query for the whole batch. "source" says which answered.
 * The single quote is the benchmarked route: its answer is printed with
 * snprintf, no JSON tree.
 *
 * Bars. raw: md.bars read a page at a time (keyset on ts, limit + 1 rows
 * to know whether there is a next page). split / total: adjusted on read
 * by libs/md (qb_md_read_adjusted: raw bars + md.corporate_actions, as
 * `qbctl bars --adjust`) over [cursor or from, to), of which the first
 * `limit` are answered. Backward adjustment is anchored on the last bar of
 * the range, and an action only changes bars before its ex-date, so every
 * page of the same request (same `to`) is in the same share basis: pages
 * glued together equal one read of the whole range. The cost is that each
 * adjusted page reads the rest of the range (bounded by `to`).
 *
 * Gaps: libs/md qb_md_gaps_find against the asset's exchange calendar, as
 * `qbctl data gaps`.
 *
 * Ingest jobs are qb-data's (md.ingest_jobs): read here, changed only by
 * INGEST_JOB_* commands on the control topic (target qb-data), which
 * qb-data applies with qb_md_sched_apply_command. A new job's spec is
 * checked in-process first with the same validator (qb_md_job_validate),
 * so a bad cron or an unknown timeframe is a 400 naming the field, not a
 * dead-lettered command. Source "csv" reads a file on qb-data's host: only
 * an admin may create such a job through the gateway. */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cal/qb_cal.h"
#include "core/qb_decimal.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "core/qb_types.h"
#include "md/qb_md_adjust.h"
#include "md/qb_md_gaps.h"
#include "md/qb_md_sched.h"
#include "qb/v1/control.pb-c.h"

/* finest first: the default order of a quote without ?timeframe */
static const char *const QUOTE_TFS[] = {"1m", "5m", "15m", "1h", "1d"};
#define QUOTE_NTF 5
#define QUOTE_BATCH_MAX 100
#define TIMEFRAMES "1m|5m|15m|30m|1h|4h|1d|1w"

/* SQL: ns since the epoch (text param) -> timestamptz, exact to the us. */
#define NS_TS(p) "(timestamptz 'epoch' + (" p "::bigint / 1000) * interval '1 microsecond')"
#define TS_NS(c) "(extract(epoch FROM " c ") * 1000000000)::bigint"

/* ---- the quote script ---------------------------------------------------------------- */
/* KEYS: n keys per symbol, finest first; ARGV[1] = n. One reply element per
 * symbol: 0 when none of its keys holds a bar, else {index of the key
 * (1-based), ts, open, high, low, close, volume, source}. */
static const char QUOTE_LUA[] =
    "local n = tonumber(ARGV[1])\n"
    "local out = {}\n"
    "for g = 0, #KEYS / n - 1 do\n"
    "  local hit = 0\n"
    "  for i = 1, n do\n"
    "    local v = redis.call('HMGET', KEYS[g * n + i], 'ts', 'open', 'high', 'low', 'close',\n"
    "                         'volume', 'source')\n"
    "    if v[1] and v[2] and v[3] and v[4] and v[5] and v[6] then\n"
    "      hit = {i, v[1], v[2], v[3], v[4], v[5], v[6], v[7] or ''}\n"
    "      break\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = hit\n"
    "end\n"
    "return out\n";

static char quote_sha[41];
static pthread_once_t quote_sha_once = PTHREAD_ONCE_INIT;

static void quote_sha_init(void) { qb_cache_script_sha(QUOTE_LUA, quote_sha); }

/* One latest bar, as Redis or PostgreSQL gave it. */
typedef struct quote_s {
    char symbol[QB_SYMBOL_MAX + 1];
    const char *tf;
    int64_t ts;
    char px[5][QB_DEC_STRLEN]; /* open high low close volume, decimal text */
    char bar_source[32];
    const char *from;          /* "redis" / "postgres" */
    int found;
} quote_t;

/* A decimal text as Redis holds it ("101.25"): checked to be a JSON number
 * (the hash is ours, but Redis is not the truth: never echo garbage). */
static int dec_text_ok(const char *s, size_t n) {
    if (n == 0 || n >= QB_DEC_STRLEN) return 0;
    qb_dec_t d;
    return qb_dec_parse(s, n, &d) == QB_OK;
}

/* Fill q from one script reply element; 1 when it held a bar. */
static int quote_from_reply(const redisReply *e, const char *const *tfs, quote_t *q) {
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 8) return 0;
    const redisReply *ix = e->element[0];
    if (ix->type != REDIS_REPLY_INTEGER || ix->integer < 1 || ix->integer > QUOTE_NTF) return 0;
    for (int i = 1; i < 8; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING) return 0;
    char *end;
    long long ts = strtoll(e->element[1]->str, &end, 10);
    if (end == e->element[1]->str || *end) return 0;
    for (int k = 0; k < 5; k++) {
        const redisReply *v = e->element[2 + k];
        if (!dec_text_ok(v->str, v->len)) return 0;
        memcpy(q->px[k], v->str, v->len);
        q->px[k][v->len] = 0;
    }
    q->ts = ts;
    q->tf = tfs[ix->integer - 1];
    snprintf(q->bar_source, sizeof q->bar_source, "%.*s", (int)e->element[7]->len,
             e->element[7]->str);
    for (char *c = q->bar_source; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '_';
    q->from = "redis";
    q->found = 1;
    return 1;
}

/* Look nq symbols up in Redis, ntf timeframes each (tfs); marks the found.
 * 0 when Redis could not answer (down, no connection): nothing marked; -1
 * when the request was rate limited (answered). */
static int quotes_redis(api_req_t *r, quote_t *qs, size_t nq, const char *const *tfs,
                        int ntf) {
    qb_cache_t *c = api_redis(r);
    if (!c) return 0;
    pthread_once(&quote_sha_once, quote_sha_init);
    size_t nkeys = nq * (size_t)ntf, argc = 4 + nkeys;
    const char *argv_s[4 + QUOTE_NTF];
    char keys_s[QUOTE_NTF][64];
    const char **argv = argc <= 4 + QUOTE_NTF ? argv_s : malloc(argc * sizeof *argv);
    char(*keys)[64] = nkeys <= QUOTE_NTF ? keys_s : malloc(nkeys * sizeof *keys);
    int ok = 0;
    if (!argv || !keys) goto out;
    char nk[24], nt[8];
    snprintf(nk, sizeof nk, "%zu", nkeys);
    snprintf(nt, sizeof nt, "%d", ntf);
    argv[0] = "EVALSHA";
    argv[1] = quote_sha;
    argv[2] = nk;
    for (size_t i = 0; i < nq; i++)
        for (int t = 0; t < ntf; t++) {
            size_t k = i * (size_t)ntf + (size_t)t;
            snprintf(keys[k], sizeof keys[k], "qb:md:last:%s:%s", qs[i].symbol, tfs[t]);
            argv[3 + k] = keys[k];
        }
    argv[3 + nkeys] = nt;
    redisReply *rep = NULL;
    char err[256] = "";
    qb_err_t e = quote_sha[0] ? api_redis_cmd(r, (int)argc, argv, &rep, err, sizeof err)
                              : QB_ERR_REDIS;
    if (e == QB_ERR_REDIS && (!quote_sha[0] || strstr(err, "NOSCRIPT"))) {
        argv[0] = "EVAL";
        argv[1] = QUOTE_LUA;
        e = api_redis_cmd(r, (int)argc, argv, &rep, err, sizeof err);
    }
    if (e == QB_ERR_RANGE) { /* rate limited: answered */
        ok = -1;
        goto out;
    }
    if (e != QB_OK) {
        if (e != QB_ERR_UNAVAILABLE) QB_WARN("quote: Redis: %s", err);
        goto out;
    }
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == nq) {
        for (size_t i = 0; i < nq; i++) quote_from_reply(rep->element[i], tfs, &qs[i]);
        ok = 1;
    }
    freeReplyObject(rep);
out:
    if (argv != argv_s) free(argv);
    if (keys != keys_s) free(keys);
    return ok;
}

/* '{"A","B"}' for the symbols (or timeframes) of the list; safe characters
 * only (validated before), quoted anyway. malloc'd. */
static char *pg_text_array(const char *const *items, size_t n, size_t stride_items,
                           const quote_t *qs) {
    size_t cap = 3 + n * (QB_SYMBOL_MAX + 4), len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        const char *v = qs ? qs[i].symbol : items[i * stride_items];
        len += (size_t)snprintf(s + len, cap - len, "%s\"%s\"", i ? "," : "", v);
    }
    s[len++] = '}';
    s[len] = 0;
    return s;
}

/* The newest md.bars row of every symbol not found yet, in the same
 * timeframe order. 0 after answering an error. */
static int quotes_pg(api_req_t *r, quote_t *qs, size_t nq, const char *const *tfs, int ntf) {
    size_t nmiss = 0;
    for (size_t i = 0; i < nq; i++) nmiss += !qs[i].found;
    if (!nmiss) return 1;
    quote_t *miss[QUOTE_BATCH_MAX];
    size_t m = 0;
    for (size_t i = 0; i < nq && m < QUOTE_BATCH_MAX; i++)
        if (!qs[i].found) miss[m++] = &qs[i];
    size_t cap = 3 + m * (QB_SYMBOL_MAX + 4), len = 0;
    char *syms = malloc(cap);
    char *tfa = pg_text_array(tfs, (size_t)ntf, 1, NULL);
    if (!syms || !tfa) {
        free(syms);
        free(tfa);
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    syms[len++] = '{';
    for (size_t i = 0; i < m; i++)
        len += (size_t)snprintf(syms + len, cap - len, "%s\"%s\"", i ? "," : "", miss[i]->symbol);
    syms[len++] = '}';
    syms[len] = 0;
    const char *p[] = {syms, tfa};
    PGresult *res = api_query(
        r,
        "SELECT a.symbol, x.tf, " TS_NS("x.ts") ", x.open, x.high, x.low, x.close, x.volume, "
        "x.source FROM unnest($1::text[]) AS s(sym) JOIN md.assets a ON a.symbol = s.sym "
        "CROSS JOIN LATERAL (SELECT t.tf, b.ts, b.open, b.high, b.low, b.close, b.volume, "
        "b.source FROM unnest($2::text[]) WITH ORDINALITY AS t(tf, o) CROSS JOIN LATERAL "
        "(SELECT ts, open, high, low, close, volume, source FROM md.bars WHERE asset_id = "
        "a.asset_id AND timeframe = t.tf ORDER BY ts DESC LIMIT 1) b ORDER BY t.o LIMIT 1) x",
        2, p);
    free(syms);
    free(tfa);
    if (!res) return 0;
    for (int row = 0; row < PQntuples(res); row++) {
        const char *sym = PQgetvalue(res, row, 0), *tf = PQgetvalue(res, row, 1);
        for (size_t i = 0; i < m; i++) {
            quote_t *q = miss[i];
            if (q->found || strcmp(q->symbol, sym)) continue;
            for (int t = 0; t < ntf; t++)
                if (!strcmp(tfs[t], tf)) q->tf = tfs[t];
            if (!q->tf) break;
            q->ts = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            for (int k = 0; k < 5; k++)
                qb_dec_format(strtoll(PQgetvalue(res, row, 3 + k), NULL, 10), q->px[k],
                              sizeof q->px[k]);
            snprintf(q->bar_source, sizeof q->bar_source, "%s", PQgetvalue(res, row, 8));
            q->from = "postgres";
            q->found = 1;
        }
    }
    PQclear(res);
    return 1;
}

/* {"symbol":...} into buf; returns the length (like snprintf). */
static int quote_json(const quote_t *q, char *buf, size_t cap) {
    char t[QB_TIME_STRLEN];
    qb_time_format(q->ts, t, sizeof t);
    return snprintf(buf, cap,
                    "{\"symbol\":\"%s\",\"timeframe\":\"%s\",\"time\":\"%s\",\"open\":%s,"
                    "\"high\":%s,\"low\":%s,\"close\":%s,\"volume\":%s,\"bar_source\":\"%s\","
                    "\"source\":\"%s\"}",
                    q->symbol, q->tf, t, q->px[0], q->px[1], q->px[2], q->px[3], q->px[4],
                    q->bar_source, q->from);
}

/* the timeframes to try: ?timeframe alone, or the default order */
static int quote_tfs(api_req_t *r, const char **one, const char *const **tfs) {
    const char *tf = api_q_str(r, "timeframe");
    if (tf) {
        *one = tf;
        *tfs = one;
        return 1;
    }
    *tfs = QUOTE_TFS;
    return QUOTE_NTF;
}

static void h_quote(api_req_t *r) {
    quote_t q;
    memset(&q, 0, sizeof q);
    snprintf(q.symbol, sizeof q.symbol, "%s", api_param(r, "symbol"));
    const char *one[1];
    const char *const *tfs;
    int ntf = quote_tfs(r, one, &tfs);
    if (quotes_redis(r, &q, 1, tfs, ntf) < 0) return;
    if (!q.found && !quotes_pg(r, &q, 1, tfs, ntf)) return;
    if (!q.found) {
        api_error(r, 404, "symbol", "no bar of %s%s%s", q.symbol, ntf == 1 ? " at " : "",
                  ntf == 1 ? tfs[0] : "");
        return;
    }
    char buf[512];
    int n = quote_json(&q, buf, sizeof buf);
    api_json_text(r, 200, buf, (size_t)n);
}

static void h_quotes(api_req_t *r) {
    const char *list = api_q_str(r, "symbols");
    quote_t *qs = calloc(QUOTE_BATCH_MAX, sizeof *qs);
    if (!qs) {
        api_error(r, 500, NULL, "out of memory");
        return;
    }
    size_t nq = 0;
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        qb_symbol_t sym;
        char err[160];
        if (qb_symbol_set_len(&sym, p, len, err, sizeof err) != QB_OK) {
            api_error(r, 400, "symbols", "symbols: '%.*s': %s", (int)(len > 40 ? 40 : len), p,
                      err);
            free(qs);
            return;
        }
        int dup = 0;
        for (size_t i = 0; i < nq; i++) dup |= !strcmp(qs[i].symbol, sym.s);
        if (!dup && nq < QUOTE_BATCH_MAX) snprintf(qs[nq++].symbol, sizeof qs[0].symbol, "%s", sym.s);
        p = e ? e + 1 : p + len;
    }
    const char *one[1];
    const char *const *tfs;
    int ntf = quote_tfs(r, one, &tfs);
    if (quotes_redis(r, qs, nq, tfs, ntf) < 0 || !quotes_pg(r, qs, nq, tfs, ntf)) {
        free(qs);
        return;
    }
    cJSON *o = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(o, "items"),
          *missing = cJSON_AddArrayToObject(o, "missing");
    for (size_t i = 0; i < nq; i++) {
        if (!qs[i].found) {
            cJSON_AddItemToArray(missing, cJSON_CreateString(qs[i].symbol));
            continue;
        }
        char buf[512];
        quote_json(&qs[i], buf, sizeof buf);
        cJSON_AddItemToArray(items, cJSON_CreateRaw(buf));
    }
    free(qs);
    api_json(r, 200, o);
}

/* ---- bars --------------------------------------------------------------------------------- */
/* A cursor of ours holding ns since the epoch. */
static int ns_cursor(api_req_t *r, int64_t *out) {
    const char *c = api_q_str(r, "cursor");
    if (!c) return 1;
    char plain[64];
    if (!api_cursor_decode(r, c, plain, sizeof plain)) return 0;
    char *end;
    long long v = strtoll(plain, &end, 10);
    if (!plain[0] || *end) {
        api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
        return 0;
    }
    *out = v;
    return 1;
}

/* from/to as given (0 = absent) and checked together. */
static int time_range(api_req_t *r, int64_t *from, int64_t *to) {
    int has_from = api_q_str(r, "from") != NULL, has_to = api_q_str(r, "to") != NULL;
    *from = api_q_time(r, "from", 0);
    *to = api_q_time(r, "to", 0);
    if (has_from && *from == 0) *from = -1; /* 0 means "no bound" below */
    if (has_to && *to == 0) *to = -1;
    if (has_from && has_to && *to <= *from) {
        api_error(r, 400, "to", "to: must be after from");
        return 0;
    }
    return 1;
}

static cJSON *bar_json(int64_t ts, const qb_dec_t px[5]) {
    char t[QB_TIME_STRLEN], v[QB_DEC_STRLEN];
    qb_time_format(ts, t, sizeof t);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "time", t);
    static const char *const names[] = {"open", "high", "low", "close", "volume"};
    for (int k = 0; k < 5; k++) {
        qb_dec_format(px[k], v, sizeof v);
        cJSON_AddItemToObject(b, names[k], cJSON_CreateRaw(v));
    }
    return b;
}

static int asset_known(api_req_t *r, const char *sym) {
    const char *p[] = {sym};
    PGresult *res = api_query(r, "SELECT 1 FROM md.assets WHERE symbol = $1", 1, p);
    if (!res) return -1;
    int n = PQntuples(res);
    PQclear(res);
    if (!n) api_error(r, 404, "symbol", "unknown symbol %s", sym);
    return n ? 1 : 0;
}

static void h_bars(api_req_t *r) {
    const char *sym = api_param(r, "symbol");
    const char *tf = api_q_str(r, "timeframe");
    if (!tf) tf = "1d";
    const char *adj = api_q_str(r, "adjust");
    qb_md_adjust_mode_t mode = QB_MD_ADJ_RAW;
    if (adj && qb_md_adjust_mode_parse(adj, &mode) != QB_OK) {
        api_error(r, 400, "adjust", "adjust: raw, split or total");
        return;
    }
    int64_t limit = api_q_int(r, "limit", 100), from, to, cur = 0;
    int has_cur = api_q_str(r, "cursor") != NULL;
    if (!time_range(r, &from, &to) || !ns_cursor(r, &cur)) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "symbol", sym);
    cJSON_AddStringToObject(o, "timeframe", tf);
    cJSON_AddStringToObject(o, "adjust", qb_md_adjust_mode_name(mode));
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    int64_t last_ts = 0;
    int more = 0;
    if (mode == QB_MD_ADJ_RAW) {
        /* bounds as timestamptz ("-infinity"/"infinity" when open), so a
         * prepared generic plan still prunes partitions at run time */
        char f[QB_TIME_STRLEN] = "-infinity", t[QB_TIME_STRLEN] = "infinity",
             c[QB_TIME_STRLEN] = "-infinity", l[24];
        if (from) qb_time_format(from, f, sizeof f);
        if (to) qb_time_format(to, t, sizeof t);
        if (has_cur) qb_time_format(cur, c, sizeof c);
        snprintf(l, sizeof l, "%" PRId64, limit + 1);
        const char *p[] = {sym, tf, f, t, c, l};
        PGresult *res = api_query_named(
            r, "api_bars_raw",
            "SELECT " TS_NS("b.ts") ", b.open, b.high, b.low, b.close, b.volume FROM md.bars b "
            "WHERE b.asset_id = (SELECT asset_id FROM md.assets WHERE symbol = $1) "
            "AND b.timeframe = $2 AND b.ts >= $3::timestamptz AND b.ts < $4::timestamptz "
            "AND b.ts > $5::timestamptz ORDER BY b.ts LIMIT $6::int",
            6, p);
        if (!res) {
            cJSON_Delete(o);
            return;
        }
        int n = PQntuples(res);
        more = n > limit;
        for (int i = 0; i < n && i < limit; i++) {
            qb_dec_t px[5];
            for (int k = 0; k < 5; k++) px[k] = strtoll(PQgetvalue(res, i, 1 + k), NULL, 10);
            last_ts = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            cJSON_AddItemToArray(items, bar_json(last_ts, px));
        }
        PQclear(res);
    } else {
        qb_store_t *st = api_pg_ro(r);
        if (!st) {
            cJSON_Delete(o);
            return;
        }
        /* after the cursor: + 1 us, PostgreSQL's resolution (+ 1 ns would
         * round back to the cursor bar's own time) */
        int64_t start = from, after = cur + QB_NS_PER_US;
        if (has_cur && (start == 0 || after > start)) start = after == 0 ? -1 : after;
        qb_bar_t *bars = NULL;
        size_t n = 0;
        qb_md_adjust_stats_t stats;
        char err[512];
        qb_err_t e = QB_OK;
        if (!to || start < to)
            e = qb_md_read_adjusted(st, sym, tf, start, to, mode, &bars, &n, &stats, err,
                                    sizeof err);
        else
            memset(&stats, 0, sizeof stats);
        if (e != QB_OK) {
            cJSON_Delete(o);
            if (qb_err_is_retriable(e))
                api_error(r, 503, NULL, "database unavailable: try again");
            else
                api_error(r, 422, "adjust", "cannot adjust %s: %s", sym, err);
            return;
        }
        more = n > (size_t)limit;
        for (size_t i = 0; i < n && i < (size_t)limit; i++) {
            qb_dec_t px[5] = {bars[i].open, bars[i].high, bars[i].low, bars[i].close,
                              bars[i].volume};
            last_ts = bars[i].ts;
            cJSON_AddItemToArray(items, bar_json(last_ts, px));
        }
        free(bars);
        cJSON *w = cJSON_AddArrayToObject(o, "warnings");
        if (stats.div_no_prev_close)
            cJSON_AddItemToArray(w, cJSON_CreateString(
                                        "a dividend on the first bar was skipped (no close "
                                        "before its ex-date in the range: start earlier)"));
        if (stats.div_too_large)
            cJSON_AddItemToArray(w, cJSON_CreateString(
                                        "a dividend not below the previous close was skipped"));
    }
    /* no bars: an unknown symbol is a 404 (asked only then: one query less
     * on the common path) */
    if (cJSON_GetArraySize(items) == 0 && !has_cur && asset_known(r, sym) <= 0) {
        cJSON_Delete(o);
        return;
    }
    if (more) {
        char plain[24], enc[64];
        snprintf(plain, sizeof plain, "%" PRId64, last_ts);
        api_cursor_encode(plain, enc, sizeof enc);
        cJSON_AddStringToObject(o, "next_cursor", enc);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    api_json(r, 200, o);
}

/* ---- assets -------------------------------------------------------------------------------- */
static void h_assets(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    char lim[24], cur[128] = "";
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *c = api_q_str(r, "cursor");
    if (c && !api_cursor_decode(r, c, cur, sizeof cur)) return;
    const char *p[] = {api_q_str(r, "class"), c ? cur : NULL, lim};
    api_rows(r,
             "SELECT symbol, asset_class AS class, exchange, currency, metadata, created_at "
             "FROM md.assets WHERE ($1::text IS NULL OR asset_class = $1) AND ($2::text IS NULL "
             "OR symbol > $2) ORDER BY symbol LIMIT $3::int",
             3, p, limit, "symbol");
}

/* ---- gaps ------------------------------------------------------------------------------------ */
static void h_gaps(api_req_t *r) {
    const char *sym = api_param(r, "symbol");
    const char *tf = api_q_str(r, "timeframe");
    if (!tf) tf = "1d";
    int64_t from, to;
    if (!time_range(r, &from, &to)) return;
    const qb_cal_t *cal = NULL;
    char err[512];
    const char *calname = api_q_str(r, "calendar");
    if (calname && qb_cal_get(calname, &cal, err, sizeof err) != QB_OK) {
        api_error(r, 400, "calendar", "calendar: %s", err);
        return;
    }
    qb_store_t *st = api_pg_ro(r);
    if (!st) return;
    qb_md_gaps_t g;
    memset(&g, 0, sizeof g);
    qb_err_t e = qb_md_gaps_find(st, sym, tf, cal, from, to, &g, err, sizeof err);
    if (e == QB_ERR_NOT_FOUND) {
        api_error(r, 404, "symbol", "%s", err);
        return;
    }
    if (e == QB_ERR_INVALID) {
        api_error(r, 400, cal ? NULL : "calendar", "%s%s", err,
                  cal ? "" : " (pass calendar=XNYS or 24x7)");
        return;
    }
    if (e != QB_OK) {
        api_error(r, qb_err_is_retriable(e) ? 503 : 500, NULL, "gaps: %s", err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "symbol", sym);
    cJSON_AddStringToObject(o, "timeframe", tf);
    cJSON_AddStringToObject(o, "calendar", g.cal ? qb_cal_name(g.cal) : "");
    char a[QB_TIME_STRLEN];
    if (g.from && g.to) {
        qb_time_format(g.from, a, sizeof a);
        cJSON_AddStringToObject(o, "from", a);
        qb_time_format(g.to, a, sizeof a);
        cJSON_AddStringToObject(o, "to", a);
    } else {
        cJSON_AddNullToObject(o, "from");
        cJSON_AddNullToObject(o, "to");
    }
    cJSON_AddNumberToObject(o, "stored", (double)g.stored);
    cJSON_AddNumberToObject(o, "missing", (double)g.missing);
    cJSON *spans = cJSON_AddArrayToObject(o, "gaps");
    for (size_t i = 0; i < g.nspans; i++) {
        cJSON *s = cJSON_CreateObject();
        qb_time_format(g.spans[i].from, a, sizeof a);
        cJSON_AddStringToObject(s, "from", a);
        qb_time_format(g.spans[i].to, a, sizeof a);
        cJSON_AddStringToObject(s, "to", a);
        cJSON_AddNumberToObject(s, "bars", (double)g.spans[i].nbars);
        cJSON_AddItemToArray(spans, s);
    }
    qb_md_gaps_free(&g);
    api_json(r, 200, o);
}

/* ---- ingest jobs ------------------------------------------------------------------------------- */
static void h_jobs_list(api_req_t *r) {
    int64_t limit = api_q_int(r, "limit", 100);
    char lim[24], cur[128] = "";
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *c = api_q_str(r, "cursor");
    if (c && !api_cursor_decode(r, c, cur, sizeof cur)) return;
    const char *p[] = {c ? cur : NULL, lim};
    api_rows(
        r,
        "SELECT j.name, j.source, to_jsonb(j.symbols) AS symbols, j.timeframe, j.cron, "
        "j.time_zone, j.interval_seconds, j.lookback_kind, j.lookback_seconds, j.range_from, "
        "j.range_to, j.options, NOT j.enabled AS paused, j.run_requested_at, j.last_run_at, "
        "j.next_run_at, (SELECT coalesce(jsonb_agg(d.name ORDER BY d.name), '[]') FROM "
        "md.ingest_job_deps x JOIN md.ingest_jobs d ON d.id = x.depends_on WHERE x.job_id = "
        "j.id) AS depends_on, (SELECT jsonb_build_object('run_id', u.id, 'scheduled_for', "
        "u.scheduled_for, 'trigger', u.trigger, 'status', u.status, 'started_at', u.started_at, "
        "'finished_at', u.finished_at, 'rows', u.rows, 'error', u.error) FROM "
        "md.ingest_job_runs u WHERE u.job_id = j.id ORDER BY u.started_at DESC, u.id DESC "
        "LIMIT 1) AS last_run, j.created_at, j.updated_at FROM md.ingest_jobs j "
        "WHERE ($1::text IS NULL OR j.name > $1) ORDER BY j.name LIMIT $2::int",
        2, p, limit, "name");
}

/* The body fields of a job, as IngestJobParams names them. */
static const char *const JOB_FIELDS[] = {"name",       "source",          "symbols",
                                         "timeframe",  "cron",            "time_zone",
                                         "interval_seconds", "lookback",  "depends_on",
                                         "range_from", "range_to",        "path",
                                         "csv_format", "csv_columns",     "csv_time_format",
                                         NULL};

/* a JSON array of strings into a malloc'd char* vector (its strings are
 * the cJSON's); 0 after a 400 naming the field */
static int body_str_array(api_req_t *r, const char *field, int required, size_t max_items,
                          size_t max_len, char ***out, size_t *n) {
    cJSON *a = api_body_get(r, field);
    *out = NULL;
    *n = 0;
    if (!a || cJSON_IsNull(a)) {
        if (required) api_error(r, 400, field, "%s: required", field);
        return !required;
    }
    if (!cJSON_IsArray(a)) {
        api_error(r, 400, field, "%s: expected an array of strings", field);
        return 0;
    }
    size_t cnt = (size_t)cJSON_GetArraySize(a);
    if (cnt > max_items || (required && cnt == 0)) {
        api_error(r, 400, field, "%s: 1 to %zu items", field, max_items);
        return 0;
    }
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v) {
        api_error(r, 500, NULL, "out of memory");
        return 0;
    }
    size_t i = 0;
    for (cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !*e->valuestring || strlen(e->valuestring) > max_len) {
            api_error(r, 400, field, "%s[%zu]: expected a non-empty string of at most %zu bytes",
                      field, i, max_len);
            free(v);
            return 0;
        }
        v[i] = e->valuestring;
    }
    *out = v;
    *n = cnt;
    return 1;
}

/* "cron: hour: 25 out of range" -> "cron"; "symbols[2]: ..." -> "symbols". */
static const char *job_field_of(const char *msg) {
    if (!strncmp(msg, "ingest_job.", 11)) msg += 11;
    static const char *const map[][2] = {{"schedule", "cron"}, {"range", "range_from"},
                                         {"options", "path"}};
    size_t n = strcspn(msg, ":[");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && !strncmp(msg, map[i][0], n)) return map[i][1];
    for (int i = 0; JOB_FIELDS[i]; i++)
        if (strlen(JOB_FIELDS[i]) == n && !strncmp(msg, JOB_FIELDS[i], n)) return JOB_FIELDS[i];
    return NULL;
}

static void h_jobs_upsert(api_req_t *r) {
    Qb__V1__Command__IngestJobParams ij = QB__V1__COMMAND__INGEST_JOB_PARAMS__INIT;
    const char *name = NULL, *source = NULL, *tf = NULL, *cron = "", *tz = "", *lookback = "",
               *rf = "", *rt = "", *path = "", *fmt = "", *cols = "", *tfmt = "";
    int64_t interval = 0;
    char **syms = NULL, **deps = NULL;
    size_t nsyms = 0, ndeps = 0;
    if (!api_body_only(r, JOB_FIELDS) || !api_body_str(r, "name", 1, 63, &name) ||
        !api_body_str(r, "source", 1, 31, &source) ||
        !body_str_array(r, "symbols", 1, 1000, QB_SYMBOL_MAX, &syms, &nsyms))
        return;
    char *up = NULL;
    if (!api_body_enum(r, "timeframe", 1, TIMEFRAMES, &tf) ||
        !api_body_str(r, "cron", 0, 200, &cron) || !api_body_str(r, "time_zone", 0, 64, &tz) ||
        !api_body_int(r, "interval_seconds", 0, 1, 366LL * 86400, &interval) ||
        !api_body_str(r, "lookback", 0, 64, &lookback) ||
        !body_str_array(r, "depends_on", 0, 100, 63, &deps, &ndeps) ||
        !api_body_str(r, "range_from", 0, 64, &rf) || !api_body_str(r, "range_to", 0, 64, &rt) ||
        !api_body_str(r, "path", 0, 1000, &path) ||
        !api_body_enum(r, "csv_format", 0, "yahoo|generic", &fmt) ||
        !api_body_str(r, "csv_columns", 0, 500, &cols) ||
        !api_body_enum(r, "csv_time_format", 0, "date|iso|unix_s|unix_ms", &tfmt))
        goto out;
    if (!fmt) fmt = "";
    if (!tfmt) tfmt = "";
    if (!strcmp(source, "csv") && r->who.role < QB_ROLE_ADMIN) {
        api_error(r, 403, "source",
                  "source csv reads a file on qb-data's host: only an admin may create it");
        goto out;
    }
    /* symbols as the platform writes them */
    up = calloc(nsyms, QB_SYMBOL_MAX + 1);
    if (!up) {
        api_error(r, 500, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nsyms; i++) {
        qb_symbol_t s;
        char err[160];
        if (qb_symbol_set(&s, syms[i], err, sizeof err) != QB_OK) {
            api_error(r, 400, "symbols", "symbols[%zu]: %s", i, err);
            goto out;
        }
        memcpy(up + i * (QB_SYMBOL_MAX + 1), s.s, QB_SYMBOL_MAX + 1);
        syms[i] = up + i * (QB_SYMBOL_MAX + 1);
    }
    /* the same check qb-data makes, in-process */
    qb_md_job_spec_t sp;
    memset(&sp, 0, sizeof sp);
    sp.name = name;
    sp.source = source;
    sp.symbols = (const char *const *)syms;
    sp.nsymbols = nsyms;
    sp.timeframe = tf;
    sp.cron = cron;
    sp.time_zone = tz;
    sp.interval_seconds = interval;
    sp.lookback = lookback;
    static const char *const none[] = {NULL};
    sp.depends_on = deps ? (const char *const *)deps : none;
    sp.ndepends = ndeps;
    char msg[512];
    if ((*rf || *rt) && (!*rf || !*rt)) {
        api_error(r, 400, *rf ? "range_to" : "range_from",
                  "range: give both range_from and range_to, or neither");
        goto out;
    }
    if (*rf && qb_time_parse(rf, strlen(rf), &sp.range_from) != QB_OK) {
        api_error(r, 400, "range_from", "range_from: not an ISO 8601 date or time");
        goto out;
    }
    if (*rt && qb_time_parse(rt, strlen(rt), &sp.range_to) != QB_OK) {
        api_error(r, 400, "range_to", "range_to: not an ISO 8601 date or time");
        goto out;
    }
    cJSON *opts = cJSON_CreateObject();
    if (*path) cJSON_AddStringToObject(opts, "path", path);
    if (*fmt) cJSON_AddStringToObject(opts, "format", fmt);
    if (*cols) cJSON_AddStringToObject(opts, "columns", cols);
    if (*tfmt) cJSON_AddStringToObject(opts, "time_format", tfmt);
    char *opts_txt = cJSON_PrintUnformatted(opts);
    cJSON_Delete(opts);
    sp.options = opts_txt;
    qb_err_t e = qb_md_job_validate(&sp, msg, sizeof msg);
    free(opts_txt);
    if (e != QB_OK) {
        api_error(r, 400, job_field_of(msg), "%s", msg);
        goto out;
    }
    if (ndeps) { /* the jobs it waits for must exist (qb-data would refuse it) */
        char *arr = pg_text_array((const char *const *)deps, ndeps, 1, NULL);
        const char *p[] = {arr};
        PGresult *res = arr ? api_query(r,
                                        "SELECT d FROM unnest($1::text[]) d WHERE NOT EXISTS "
                                        "(SELECT 1 FROM md.ingest_jobs WHERE name = d) LIMIT 1",
                                        1, p)
                            : NULL;
        free(arr);
        if (!res) {
            if (!r->status) api_error(r, 500, NULL, "out of memory");
            goto out;
        }
        if (PQntuples(res)) {
            api_error(r, 422, "depends_on", "depends_on: no job named '%s'",
                      PQgetvalue(res, 0, 0));
            PQclear(res);
            goto out;
        }
        PQclear(res);
    }
    ij.name = (char *)name;
    ij.source = (char *)source;
    ij.symbols = syms;
    ij.n_symbols = nsyms;
    ij.timeframe = (char *)tf;
    ij.cron = (char *)cron;
    ij.time_zone = (char *)tz;
    ij.interval_seconds = interval;
    ij.lookback = (char *)lookback;
    ij.depends_on = deps;
    ij.n_depends_on = ndeps;
    ij.range_from = (char *)rf;
    ij.range_to = (char *)rt;
    ij.path = (char *)path;
    ij.csv_format = (char *)fmt;
    ij.csv_columns = (char *)cols;
    ij.csv_time_format = (char *)tfmt;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = "qb-data";
    cmd.kind = QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_UPSERT;
    cmd.params_case = QB__V1__COMMAND__PARAMS_INGEST_JOB;
    cmd.ingest_job = &ij;
    char id[40];
    if (!api_send_command(r, &cmd, id)) goto out;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", id);
    cJSON_AddStringToObject(d, "source", source);
    cJSON_AddStringToObject(d, "timeframe", tf);
    cJSON_AddNumberToObject(d, "symbols", (double)nsyms);
    api_audit(r, "ingest_job_upsert", name, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", id);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "status", "accepted");
    api_json(r, 202, o);
out:
    free(syms);
    free(deps);
    free(up);
}

/* PAUSE / RESUME / RUN_NOW / DELETE of an existing job */
static void job_command(api_req_t *r, Qb__V1__CommandKind kind, const char *action) {
    const char *name = api_param(r, "job");
    const char *p[] = {name};
    PGresult *res = api_query(r, "SELECT 1 FROM md.ingest_jobs WHERE name = $1", 1, p);
    if (!res) return;
    int n = PQntuples(res);
    PQclear(res);
    if (!n) {
        api_error(r, 404, "job", "no ingest job named '%.80s'", name);
        return;
    }
    Qb__V1__Command__IngestJobParams ij = QB__V1__COMMAND__INGEST_JOB_PARAMS__INIT;
    ij.name = (char *)name;
    Qb__V1__Command cmd = QB__V1__COMMAND__INIT;
    cmd.target = "qb-data";
    cmd.kind = kind;
    cmd.params_case = QB__V1__COMMAND__PARAMS_INGEST_JOB;
    cmd.ingest_job = &ij;
    char id[40];
    if (!api_send_command(r, &cmd, id)) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "command_id", id);
    api_audit(r, action, name, d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command_id", id);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "status", "accepted");
    api_json(r, 202, o);
}

static void h_job_pause(api_req_t *r) {
    job_command(r, QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_PAUSE, "ingest_job_pause");
}
static void h_job_resume(api_req_t *r) {
    job_command(r, QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RESUME, "ingest_job_resume");
}
static void h_job_run(api_req_t *r) {
    job_command(r, QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RUN_NOW, "ingest_job_run_now");
}
static void h_job_delete(api_req_t *r) {
    job_command(r, QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_DELETE, "ingest_job_delete");
}

/* ---- the table ---------------------------------------------------------------------------------- */
#define Q_LIMIT {"limit", API_P_INT, 0, 1, 1000, NULL, "rows per page (default 100)"}
#define Q_CURSOR {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}
#define Q_FROM {"from", API_P_TIME, 0, 0, 0, NULL, "bar open time >= (RFC 3339, date or ns)"}
#define Q_TO {"to", API_P_TIME, 0, 0, 0, NULL, "bar open time < (RFC 3339, date or ns)"}

#define R_QUOTE                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"symbol\":{\"type\":\"string\"},\"timeframe\":"       \
    "{\"type\":\"string\"},\"time\":{\"type\":\"string\",\"format\":\"date-time\"},\"open\":"    \
    "{\"type\":\"number\"},\"high\":{\"type\":\"number\"},\"low\":{\"type\":\"number\"},"        \
    "\"close\":{\"type\":\"number\"},\"volume\":{\"type\":\"number\"},\"bar_source\":{\"type\":" \
    "\"string\"},\"source\":{\"type\":\"string\",\"enum\":[\"redis\",\"postgres\"]}}}"
#define R_ACCEPTED                                                                             \
    "{\"type\":\"object\",\"properties\":{\"command_id\":{\"type\":\"string\",\"format\":"      \
    "\"uuid\"},\"name\":{\"type\":\"string\"},\"status\":{\"type\":\"string\"}}}"
#define S_JOB                                                                                   \
    "{\"type\":\"object\",\"required\":[\"name\",\"source\",\"symbols\",\"timeframe\"],"         \
    "\"additionalProperties\":false,\"properties\":{"                                           \
    "\"name\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_.-]{1,63}$\"},"                     \
    "\"source\":{\"type\":\"string\",\"description\":\"synthetic, alpaca, polygon, yahoo, "      \
    "coinbase, csv (admin only)\"},"                                                             \
    "\"symbols\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":1000,\"items\":{\"type\":"      \
    "\"string\"}},"                                                                              \
    "\"timeframe\":{\"type\":\"string\",\"enum\":[\"1m\",\"5m\",\"15m\",\"30m\",\"1h\",\"4h\","  \
    "\"1d\",\"1w\"]},"                                                                           \
    "\"cron\":{\"type\":\"string\",\"description\":\"5-field cron; or interval_seconds\"},"      \
    "\"time_zone\":{\"type\":\"string\",\"description\":\"IANA zone of cron (default UTC)\"},"   \
    "\"interval_seconds\":{\"type\":\"integer\",\"minimum\":1},"                                 \
    "\"lookback\":{\"type\":\"string\",\"description\":\"<N>d|h|m|s, since_last_bar, "          \
    "since_last_bar:<N>d\"},"                                                                    \
    "\"depends_on\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"                       \
    "\"range_from\":{\"type\":\"string\"},\"range_to\":{\"type\":\"string\"},"                   \
    "\"path\":{\"type\":\"string\"},\"csv_format\":{\"type\":\"string\",\"enum\":[\"yahoo\","    \
    "\"generic\"]},\"csv_columns\":{\"type\":\"string\"},\"csv_time_format\":{\"type\":"         \
    "\"string\",\"enum\":[\"date\",\"iso\",\"unix_s\",\"unix_ms\"]}}}"

const api_route_t api_routes_market[] = {
    {"GET", "/api/v1/market/quote/{symbol}", QB_ROLE_VIEWER, h_quote, "market",
     "Latest bar of a symbol (Redis, PostgreSQL when Redis has none or is down)", 200, NULL,
     R_QUOTE,
     {{"timeframe", API_P_ENUM, 0, 0, 0, TIMEFRAMES,
       "bar length (default: the finest of 1m 5m 15m 1h 1d held)"}},
     API_R_INLINE | API_R_LIMIT_WITH_REDIS},
    {"GET", "/api/v1/market/quotes", QB_ROLE_VIEWER, h_quotes, "market",
     "Latest bars of up to 100 symbols", 200, NULL, NULL,
     {{"symbols", API_P_LIST, 1, 0, QUOTE_BATCH_MAX, NULL, "comma-separated symbols"},
      {"timeframe", API_P_ENUM, 0, 0, 0, TIMEFRAMES,
       "bar length (default: the finest of 1m 5m 15m 1h 1d held)"}},
     API_R_INLINE | API_R_LIMIT_WITH_REDIS},
    {"GET", "/api/v1/market/bars/{symbol}", QB_ROLE_VIEWER, h_bars, "market",
     "Stored bars in time order, raw or adjusted on read for splits / dividends", 200, NULL,
     NULL,
     {{"timeframe", API_P_ENUM, 0, 0, 0, TIMEFRAMES, "bar length (default 1d)"},
      Q_FROM,
      Q_TO,
      {"adjust", API_P_ENUM, 0, 0, 0, "raw|split|total",
       "raw (default), split-adjusted, or total return (splits and dividends)"},
      Q_LIMIT,
      Q_CURSOR},
     0},
    {"GET", "/api/v1/market/assets", QB_ROLE_VIEWER, h_assets, "market",
     "Known instruments", 200, NULL, NULL,
     {{"class", API_P_ENUM, 0, 0, 0, "equity|etf|crypto|fx|future|economic", "asset class"},
      Q_LIMIT,
      Q_CURSOR},
     0},
    {"GET", "/api/v1/market/gaps/{symbol}", QB_ROLE_VIEWER, h_gaps, "market",
     "Bars the exchange calendar expects that are not stored, as spans", 200, NULL, NULL,
     {{"timeframe", API_P_ENUM, 0, 0, 0, "1m|5m|15m|30m|1h|4h|1d", "bar length (default 1d)"},
      {"from", API_P_TIME, 0, 0, 0, NULL, "start (default: the first stored bar)"},
      {"to", API_P_TIME, 0, 0, 0, NULL, "end, exclusive (default: after the last stored bar)"},
      {"calendar", API_P_ENUM, 0, 0, 0, "XNYS|24x7",
       "calendar (default: the asset class's; required for fx, future, economic)"}},
     0},
    {"GET", "/api/v1/ingest/jobs", QB_ROLE_VIEWER, h_jobs_list, "market",
     "qb-data's scheduled ingest jobs and their latest run", 200, NULL, NULL,
     {Q_LIMIT, Q_CURSOR}, 0},
    {"POST", "/api/v1/ingest/jobs", QB_ROLE_TRADER, h_jobs_upsert, "market",
     "Create or replace an ingest job (INGEST_JOB_UPSERT to qb-data)", 202, S_JOB, R_ACCEPTED,
     {{0}}, 0},
    {"POST", "/api/v1/ingest/jobs/{job}/pause", QB_ROLE_TRADER, h_job_pause, "market",
     "Pause an ingest job", 202, NULL, R_ACCEPTED, {{0}}, 0},
    {"POST", "/api/v1/ingest/jobs/{job}/resume", QB_ROLE_TRADER, h_job_resume, "market",
     "Resume a paused ingest job from its next slot", 202, NULL, R_ACCEPTED, {{0}}, 0},
    {"POST", "/api/v1/ingest/jobs/{job}/run", QB_ROLE_TRADER, h_job_run, "market",
     "Run an ingest job once, now", 202, NULL, R_ACCEPTED, {{0}}, 0},
    {"DELETE", "/api/v1/ingest/jobs/{job}", QB_ROLE_TRADER, h_job_delete, "market",
     "Delete an ingest job and its run history", 202, NULL, R_ACCEPTED, {{0}}, 0},
    {0}};
