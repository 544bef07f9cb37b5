/* feat_store.c — see feat_store.h. */
#include "feat_store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_fmt.h"
#include "core/qb_log.h"
#include "core/qb_time.h"

#define US(c) "(extract(epoch FROM " c ") * 1000000)::bigint"

static qb_time_t col_us(const PGresult *r, int row, int col) {
    return (qb_time_t)strtoll(PQgetvalue(r, row, col), NULL, 10) * QB_NS_PER_US;
}

qb_err_t feat_store_strategies_seq(qb_store_t *s, int64_t *seq, char *errstr,
                                   size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s, "SELECT coalesce(max(change_seq), 0) FROM features.strategies",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    *seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return QB_OK;
}

static char **split_csv(const char *s, size_t *n) {
    *n = 0;
    size_t cnt = 1;
    for (const char *p = s; *p; p++) cnt += *p == ',';
    char **v = calloc(cnt, sizeof *v);
    char *dup = strdup(s);
    if (!v || !dup) {
        free(v);
        free(dup);
        return NULL;
    }
    for (char *save = NULL, *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save))
        v[(*n)++] = strdup(t);
    free(dup);
    return v;
}

qb_err_t feat_store_strategies(qb_store_t *s, feat_sdef_t **out, size_t *n, char *errstr,
                               size_t errstr_size) {
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT strategy_id, account, kind, params::text, timeframe,"
                                " array_to_string(symbols, ','), change_seq"
                                " FROM features.strategies WHERE enabled ORDER BY strategy_id",
                                0, NULL, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    feat_sdef_t *v = calloc((size_t)rows + 1, sizeof *v);
    if (!v) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < rows; i++) {
        feat_sdef_t *d = &v[i];
        snprintf(d->id, sizeof d->id, "%s", PQgetvalue(r, i, 0));
        snprintf(d->account, sizeof d->account, "%s", PQgetvalue(r, i, 1));
        snprintf(d->kind, sizeof d->kind, "%s", PQgetvalue(r, i, 2));
        d->params = strdup(PQgetvalue(r, i, 3));
        snprintf(d->timeframe, sizeof d->timeframe, "%s", PQgetvalue(r, i, 4));
        d->symbols = split_csv(PQgetvalue(r, i, 5), &d->nsymbols);
        d->change_seq = strtoll(PQgetvalue(r, i, 6), NULL, 10);
        if (!d->params || !d->symbols) {
            PQclear(r);
            feat_sdefs_free(v, (size_t)i + 1);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return QB_OK;
}

qb_err_t feat_store_history(qb_store_t *s, const char *symbol, const char *tf,
                            qb_time_t before, int64_t limit, qb_bar_t **out, size_t *n,
                            char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    char bt[QB_TIME_STRLEN], lim[24];
    qb_time_format(before, bt, sizeof bt);
    snprintf(lim, sizeof lim, "%" PRId64, limit > 0 ? limit : 1);
    const char *p[4] = {symbol, tf, bt, lim};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(
        s,
        "SELECT " US("b.ts") ", b.open, b.high, b.low, b.close, b.volume FROM md.bars b"
        " JOIN md.assets a USING (asset_id) WHERE a.symbol = $1 AND b.timeframe = $2"
        " AND b.ts < $3::timestamptz ORDER BY b.ts DESC LIMIT $4::bigint",
        4, p, &r, errstr, errstr_size);
    if (e) return e;
    int rows = PQntuples(r);
    if (rows > 0) {
        qb_bar_t *v = calloc((size_t)rows, sizeof *v);
        if (!v) {
            PQclear(r);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < rows; i++) {
            qb_bar_t *b = &v[rows - 1 - i]; /* oldest first */
            snprintf(b->symbol.s, sizeof b->symbol.s, "%s", symbol);
            snprintf(b->timeframe, sizeof b->timeframe, "%s", tf);
            b->ts = col_us(r, i, 0);
            b->open = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            b->high = strtoll(PQgetvalue(r, i, 2), NULL, 10);
            b->low = strtoll(PQgetvalue(r, i, 3), NULL, 10);
            b->close = strtoll(PQgetvalue(r, i, 4), NULL, 10);
            b->volume = strtoll(PQgetvalue(r, i, 5), NULL, 10);
        }
        *out = v;
        *n = (size_t)rows;
    }
    PQclear(r);
    return QB_OK;
}

qb_err_t feat_store_durable(qb_store_t *s, const char *symbol, const char *tf, qb_time_t *ts,
                            char *errstr, size_t errstr_size) {
    *ts = 0;
    const char *p[2] = {symbol, tf};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT " US("max(ts)") " FROM features.features"
                                " WHERE symbol = $1 AND timeframe = $2",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    if (!PQgetisnull(r, 0, 0)) *ts = col_us(r, 0, 0);
    PQclear(r);
    return QB_OK;
}

qb_err_t feat_store_state(qb_store_t *s, const char *strategy_id, const char *symbol,
                          int64_t *change_seq, char **json, char *errstr, size_t errstr_size) {
    *json = NULL;
    *change_seq = 0;
    const char *p[2] = {strategy_id, symbol};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(s,
                                "SELECT change_seq, state::text FROM features.strategy_state"
                                " WHERE strategy_id = $1 AND symbol = $2",
                                2, p, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) == 1) {
        *change_seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *json = strdup(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return QB_OK;
}

/* ---- control ---------------------------------------------------------------- */

static int id_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

qb_err_t feat_store_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, char *errstr,
                                  size_t errstr_size) {
    const char *cid = cmd->command_id ? cmd->command_id : "";
    const Qb__V1__Command__StrategyParams *sp =
        cmd->params_case == QB__V1__COMMAND__PARAMS_STRATEGY ? cmd->strategy : NULL;
    if (!sp)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "command %s: params.strategy is required", cid);
    if (!id_ok(sp->strategy_id, FEAT_ID_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "strategy.strategy_id: '%.120s' must be 1-%d of letters, digits, "
                          "'_', '.', ':', '-'",
                          sp->strategy_id ? sp->strategy_id : "", FEAT_ID_MAX);
    const char *account = cmd->account && *cmd->account ? cmd->account : NULL;
    if (account && !id_ok(account, FEAT_ACCOUNT_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "account: '%.80s' must be 1-%d of letters, digits, '_', '.', ':', '-'",
                          account, FEAT_ACCOUNT_MAX);
    PGresult *r = NULL;
    qb_err_t e;
    if (cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_SET_PARAMS) {
        const char *kind = sp->strategy_name ? sp->strategy_name : "";
        const char *params = sp->params_json && *sp->params_json ? sp->params_json : "{}";
        char msg[512];
        qb_strategy_t *st = NULL;
        if ((e = qb_strategy_new(kind, params, &st, msg, sizeof msg)) != QB_OK)
            return qb_err_set(errstr, errstr_size, e == QB_ERR_NOMEM ? e : QB_ERR_INVALID,
                              "strategy %s: %s", sp->strategy_id, msg);
        /* Store the canonical parameters: every default spelled out. */
        char *canon = strdup(qb_strategy_params(st));
        qb_strategy_destroy(st);
        if (!canon) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        int64_t tfns;
        if (!sp->timeframe || qb_timeframe_parse(sp->timeframe, &tfns) != QB_OK) {
            free(canon);
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "strategy.timeframe: unknown '%.16s' (1m 5m 15m 30m 1h 4h 1d 1w)",
                              sp->timeframe ? sp->timeframe : "");
        }
        if (sp->n_symbols == 0) {
            free(canon);
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "strategy.symbols: at least one required");
        }
        size_t cap = 3;
        for (size_t i = 0; i < sp->n_symbols; i++) cap += QB_SYMBOL_MAX + 3;
        char *arr = malloc(cap);
        if (!arr) {
            free(canon);
            return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
        }
        size_t pos = 0;
        arr[pos++] = '{';
        for (size_t i = 0; i < sp->n_symbols; i++) {
            qb_symbol_t sym;
            if (qb_symbol_set(&sym, sp->symbols[i], msg, sizeof msg) != QB_OK) {
                free(canon);
                free(arr);
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "strategy.symbols[%zu]: %s",
                                  i, msg);
            }
            pos += (size_t)snprintf(arr + pos, cap - pos, "%s\"%s\"", i ? "," : "", sym.s);
        }
        arr[pos++] = '}';
        arr[pos] = '\0';
        const char *p[6] = {sp->strategy_id, account, kind, canon, arr, sp->timeframe};
        e = qb_store_query(s,
                           "INSERT INTO features.strategies (strategy_id, account, kind, params,"
                           " symbols, timeframe) VALUES ($1, coalesce($2, 'default'), $3,"
                           " $4::jsonb, $5::text[], $6)"
                           " ON CONFLICT (strategy_id) DO UPDATE SET"
                           " account = coalesce($2, features.strategies.account),"
                           " kind = EXCLUDED.kind, params = EXCLUDED.params,"
                           " symbols = EXCLUDED.symbols, timeframe = EXCLUDED.timeframe,"
                           " change_seq = nextval('features.strategies_change_seq'),"
                           " updated_at = now()",
                           6, p, NULL, errstr, errstr_size);
        free(canon);
        free(arr);
        return e;
    }
    int enable = cmd->kind == QB__V1__COMMAND_KIND__COMMAND_KIND_STRATEGY_ENABLE;
    const char *p[2] = {sp->strategy_id, enable ? "t" : "f"};
    e = qb_store_query(s,
                       "UPDATE features.strategies SET enabled = $2::boolean,"
                       " change_seq = nextval('features.strategies_change_seq'),"
                       " updated_at = now() WHERE strategy_id = $1 RETURNING 1",
                       2, p, &r, errstr, errstr_size);
    if (e) return e;
    int found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                          "no strategy '%s' (create it with STRATEGY_SET_PARAMS)",
                          sp->strategy_id);
    return QB_OK;
}

/* ---- batch ---------------------------------------------------------------- */

typedef struct frow_s {
    char symbol[QB_SYMBOL_MAX + 1];
    char timeframe[QB_TIMEFRAME_MAX + 1];
    qb_time_t ts;
    char *vals;
    int64_t history;
} frow_t;

typedef struct srow_s {
    char id[QB_UUID_STRLEN];
    char strategy[FEAT_ID_MAX + 1];
    char account[FEAT_ACCOUNT_MAX + 1];
    qb_signal_t sig;
} srow_t;

typedef struct strow_s {
    char strategy[FEAT_ID_MAX + 1];
    char symbol[QB_SYMBOL_MAX + 1];
    int64_t change_seq;
    qb_time_t last_ts;
    char state[QB_STRATEGY_STATE_MAX];
} strow_t;

struct feat_batch_s {
    frow_t *f;
    size_t nf, capf;
    srow_t *sg;
    size_t ns, caps;
    strow_t *st;
    size_t nst, capst;
};

feat_batch_t *feat_batch_new(void) { return calloc(1, sizeof(feat_batch_t)); }

static void batch_clear(feat_batch_t *b) {
    for (size_t i = 0; i < b->nf; i++) free(b->f[i].vals);
    b->nf = b->ns = b->nst = 0;
}

void feat_batch_free(feat_batch_t *b) {
    if (!b) return;
    batch_clear(b);
    free(b->f);
    free(b->sg);
    free(b->st);
    free(b);
}

size_t feat_batch_rows(const feat_batch_t *b) { return b->nf + b->ns; }

#define GROW(arr, n, cap)                                                    \
    do {                                                                     \
        if ((n) == (cap)) {                                                  \
            size_t nc_ = (cap) ? (cap) * 2 : 256;                            \
            void *np_ = realloc((arr), nc_ * sizeof(*(arr)));                \
            if (!np_) return QB_ERR_NOMEM;                                   \
            (arr) = np_;                                                     \
            (cap) = nc_;                                                     \
        }                                                                    \
    } while (0)

char *feat_values_json(const feat_engine_t *e, const feat_series_t *s) {
    size_t cap = 64 + (size_t)s->nvals * (QB_TA_COLUMN_MAX + 32);
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t pos = 0;
    out[pos++] = '{';
    int first = 1;
    for (int i = 0; i < s->nvals; i++) {
        double v = s->vals[i];
        if (!isfinite(v)) continue;
        /* no printf: this runs for every value of every bar (qb_fmt.h) */
        const char *name = feat_engine_value_name(e, i);
        size_t nl = strlen(name);
        if (pos + nl + QB_FMT_DOUBLE_MAX + 8 > cap) break; /* cannot happen: cap above */
        if (!first) out[pos++] = ',';
        out[pos++] = '"';
        memcpy(out + pos, name, nl);
        pos += nl;
        out[pos++] = '"';
        out[pos++] = ':';
        pos += qb_fmt_double(v, out + pos);
        first = 0;
    }
    out[pos++] = '}';
    out[pos] = '\0';
    return out;
}

qb_err_t feat_batch_feature(feat_batch_t *b, const feat_engine_t *e, const feat_series_t *s) {
    GROW(b->f, b->nf, b->capf);
    frow_t *r = &b->f[b->nf];
    snprintf(r->symbol, sizeof r->symbol, "%s", s->symbol);
    snprintf(r->timeframe, sizeof r->timeframe, "%s", s->timeframe);
    r->ts = s->last_ts;
    r->history = s->bars;
    if (!(r->vals = feat_values_json(e, s))) return QB_ERR_NOMEM;
    b->nf++;
    return QB_OK;
}

qb_err_t feat_batch_signal(feat_batch_t *b, const char *signal_id, const feat_inst_t *in,
                           const qb_signal_t *sig) {
    GROW(b->sg, b->ns, b->caps);
    srow_t *r = &b->sg[b->ns++];
    snprintf(r->id, sizeof r->id, "%s", signal_id);
    snprintf(r->strategy, sizeof r->strategy, "%s", in->id);
    snprintf(r->account, sizeof r->account, "%s", in->account);
    r->sig = *sig;
    return QB_OK;
}

qb_err_t feat_batch_state(feat_batch_t *b, const feat_inst_t *in, const feat_series_t *s) {
    /* One row per (strategy, symbol): the latest wins. */
    strow_t *r = NULL;
    for (size_t i = b->nst; i-- > 0;)
        if (strcmp(b->st[i].strategy, in->id) == 0 && strcmp(b->st[i].symbol, s->symbol) == 0) {
            r = &b->st[i];
            break;
        }
    if (!r) {
        GROW(b->st, b->nst, b->capst);
        r = &b->st[b->nst++];
    }
    snprintf(r->strategy, sizeof r->strategy, "%s", in->id);
    snprintf(r->symbol, sizeof r->symbol, "%s", s->symbol);
    r->change_seq = in->change_seq;
    r->last_ts = qb_strategy_last_ts(in->s);
    if (qb_strategy_save(in->s, r->state, sizeof r->state) >= sizeof r->state)
        snprintf(r->state, sizeof r->state, "{}"); /* cannot happen for built-ins */
    return QB_OK;
}

qb_err_t feat_batch_flush(feat_batch_t *b, qb_store_t *s, char *errstr, size_t errstr_size) {
    if (b->nf == 0 && b->ns == 0 && b->nst == 0) return QB_OK;
    qb_err_t e = qb_store_begin(s, errstr, errstr_size);
    if (e) return e;
    if (b->nf) {
        e = qb_store_exec(s,
                          "SET LOCAL client_min_messages = warning;"
                          "CREATE TEMP TABLE IF NOT EXISTS feat_stage (symbol text, timeframe text,"
                          " ts timestamptz, vals jsonb, history_bars integer) ON COMMIT DELETE ROWS",
                          errstr, errstr_size);
        if (!e) e = qb_store_copy_begin(s, "COPY feat_stage FROM STDIN", errstr, errstr_size);
        for (size_t i = 0; i < b->nf && !e; i++) {
            char ts[QB_TIME_STRLEN], hist[24];
            qb_time_format(b->f[i].ts, ts, sizeof ts);
            snprintf(hist, sizeof hist, "%" PRId64, b->f[i].history);
            const char *fields[5] = {b->f[i].symbol, b->f[i].timeframe, ts, b->f[i].vals, hist};
            e = qb_store_copy_row(s, fields, 5, errstr, errstr_size);
        }
        if (e) {
            qb_store_copy_abort(s, NULL, 0);
        } else {
            int64_t rows = 0;
            e = qb_store_copy_end(s, &rows, errstr, errstr_size);
        }
        if (!e)
            e = qb_store_exec(s,
                              "INSERT INTO features.features SELECT * FROM feat_stage"
                              " ON CONFLICT (symbol, timeframe, ts) DO NOTHING",
                              errstr, errstr_size);
    }
    /* Signals and states: one COPY each into a session temp table, then one
     * INSERT ... ON CONFLICT (a round trip per row costs more than the row). */
    if (!e && b->ns) {
        e = qb_store_exec(s,
                          "SET LOCAL client_min_messages = warning;"
                          "CREATE TEMP TABLE IF NOT EXISTS feat_sig_stage (signal_id uuid,"
                          " strategy_id text, account text, symbol text, timeframe text,"
                          " bar_ts timestamptz, direction text, confidence float8,"
                          " target_weight float8, stop_distance bigint, reference_price bigint,"
                          " reason text) ON COMMIT DELETE ROWS",
                          errstr, errstr_size);
        if (!e) e = qb_store_copy_begin(s, "COPY feat_sig_stage FROM STDIN", errstr, errstr_size);
        for (size_t i = 0; i < b->ns && !e; i++) {
            const srow_t *r = &b->sg[i];
            char ts[QB_TIME_STRLEN], conf[32], tw[32], stop[24], ref[24];
            qb_time_format(r->sig.bar_ts, ts, sizeof ts);
            qb_fmt_double(r->sig.confidence, conf);
            qb_fmt_double(r->sig.target_weight, tw);
            snprintf(stop, sizeof stop, "%" PRId64, r->sig.stop_distance);
            snprintf(ref, sizeof ref, "%" PRId64, r->sig.reference_price);
            const char *f[12] = {r->id, r->strategy, r->account, r->sig.symbol.s,
                                 r->sig.timeframe, ts, qb_signal_dir_name(r->sig.direction), conf,
                                 r->sig.has_target_weight ? tw : NULL, stop, ref, r->sig.reason};
            e = qb_store_copy_row(s, f, 12, errstr, errstr_size);
        }
        if (e) {
            qb_store_copy_abort(s, NULL, 0);
        } else {
            int64_t rows = 0;
            e = qb_store_copy_end(s, &rows, errstr, errstr_size);
        }
        if (!e)
            e = qb_store_exec(s,
                              "INSERT INTO features.signals (signal_id, strategy_id, account,"
                              " symbol, timeframe, bar_ts, direction, confidence, target_weight,"
                              " stop_distance, reference_price, reason) SELECT * FROM"
                              " feat_sig_stage ON CONFLICT (signal_id) DO NOTHING",
                              errstr, errstr_size);
    }
    if (!e && b->nst) {
        e = qb_store_exec(s,
                          "SET LOCAL client_min_messages = warning;"
                          "CREATE TEMP TABLE IF NOT EXISTS feat_state_stage (strategy_id text,"
                          " symbol text, change_seq bigint, last_ts timestamptz, state jsonb)"
                          " ON COMMIT DELETE ROWS",
                          errstr, errstr_size);
        if (!e) e = qb_store_copy_begin(s, "COPY feat_state_stage FROM STDIN", errstr, errstr_size);
        for (size_t i = 0; i < b->nst && !e; i++) {
            const strow_t *r = &b->st[i];
            char seq[24], ts[QB_TIME_STRLEN];
            snprintf(seq, sizeof seq, "%" PRId64, r->change_seq);
            qb_time_format(r->last_ts, ts, sizeof ts);
            const char *f[5] = {r->strategy, r->symbol, seq, ts, r->state};
            e = qb_store_copy_row(s, f, 5, errstr, errstr_size);
        }
        if (e) {
            qb_store_copy_abort(s, NULL, 0);
        } else {
            int64_t rows = 0;
            e = qb_store_copy_end(s, &rows, errstr, errstr_size);
        }
        if (!e)
            e = qb_store_exec(s,
                              "INSERT INTO features.strategy_state (strategy_id, symbol,"
                              " change_seq, last_ts, state) SELECT * FROM feat_state_stage"
                              " ON CONFLICT (strategy_id, symbol) DO UPDATE SET"
                              " change_seq = EXCLUDED.change_seq, last_ts = EXCLUDED.last_ts,"
                              " state = EXCLUDED.state, updated_at = now()"
                              " WHERE features.strategy_state.last_ts <= EXCLUDED.last_ts",
                              errstr, errstr_size);
    }
    if (!e) e = qb_store_commit(s, errstr, errstr_size);
    if (e) {
        qb_store_rollback(s, NULL, 0);
        return e;
    }
    batch_clear(b);
    return QB_OK;
}
