/* qb_md_store.c — md schema access; see qb_md_store.h.
 *
 * Speed notes for the bulk load: one index probe decides whether the batch
 * overlaps stored bars of the series; when not (new history), the batch is
 * COPYed in binary straight into md.bars (no text for the server to parse:
 * ts goes as timestamptz microseconds since 2000, values as int8; PostgreSQL
 * inserts COPY rows in multi-row batches per partition, WAL-logging a page
 * at a time, where INSERT ... SELECT logs every row); only an overlapping
 * batch goes through the (not WAL-logged) temp table and the conflict
 * join. Measured on 2 cores (bench_md_import phase 3): server CPU per bar
 * ~2.5 us with text COPY to md_stage + INSERT ... SELECT, ~1.5 us direct. */
#include "md/qb_md_store.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "md/qb_md_outbox.h"

#define MD_TS_SQL "(timestamptz '1970-01-01 00:00:00+00' + st.ts_us * interval '1 microsecond')"

qb_err_t qb_md_store_check_schema(qb_store_t *s, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    qb_err_t err = qb_store_query(
        s,
        "SELECT to_regclass('md.bars') IS NOT NULL AND to_regclass('md.assets') IS NOT NULL"
        " AND to_regclass('md.ingest_log') IS NOT NULL AND to_regclass('md.bar_conflicts') IS NOT NULL",
        0, NULL, &r, errstr, errstr_size);
    if (err) return err;
    int ok = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!ok)
        return qb_err_set(errstr, errstr_size, QB_ERR_NOT_FOUND,
                          "md schema is missing (no md.bars): run `qbctl migrate` first");
    return QB_OK;
}

qb_err_t qb_md_asset_get_or_create(qb_store_t *s, const char *symbol,
                                   const char *asset_class, int32_t *asset_id,
                                   char *errstr, size_t errstr_size) {
    qb_symbol_t sym;
    if (!asset_id || !asset_class) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "asset: NULL");
    if (qb_symbol_set(&sym, symbol ? symbol : "", errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    const char *p[2] = {sym.s, asset_class};
    PGresult *r = NULL;
    /* The no-op update makes RETURNING give the existing row too. */
    qb_err_t err = qb_store_query(
        s,
        "INSERT INTO md.assets (symbol, asset_class) VALUES ($1, $2)"
        " ON CONFLICT (symbol) DO UPDATE SET symbol = EXCLUDED.symbol RETURNING asset_id",
        2, p, &r, errstr, errstr_size);
    if (err) return err;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "asset %s: no id returned", sym.s);
    }
    *asset_id = (int32_t)atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return QB_OK;
}

/* Decimal text of v into buf (>= 21 bytes); returns its length. */
static size_t md_i64(int64_t v, char *buf) {
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0) buf[o++] = '-';
    while (n) buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}

static int64_t md_cmd_tuples(PGresult *r) {
    const char *t = PQcmdTuples(r);
    return t && *t ? atoll(t) : 0;
}

qb_err_t qb_md_store_load_bars(qb_store_t *s, int32_t asset_id, const char *timeframe,
                               const char *source, const qb_bar_t *bars,
                               const uint16_t *flags, size_t n, double tolerance,
                               qb_md_load_result_t *res, char *errstr, size_t errstr_size) {
    return qb_md_store_load_bars_ex(s, asset_id, timeframe, source, bars, flags, n, tolerance,
                                    0, res, errstr, errstr_size);
}

/* ---- binary COPY of a batch ------------------------------------------------
 * Each row is a template (field count, field lengths and the per-batch
 * constants: asset_id, timeframe, source) copied and patched at fixed
 * offsets with the bar's values, big-endian as the format wants. */

#define MD_COPY_CHUNK (256 * 1024) /* bytes handed to qb_store_copy_data at once */
#define MD_PG_EPOCH_US 946684800000000LL /* 2000-01-01 in Unix microseconds */

static const unsigned char md_copy_header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r',
                                                 '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0};

static unsigned char *md_be16(unsigned char *o, uint16_t v) {
    o[0] = (unsigned char)(v >> 8);
    o[1] = (unsigned char)v;
    return o + 2;
}

static unsigned char *md_be32(unsigned char *o, uint32_t v) {
    uint32_t b = htobe32(v);
    memcpy(o, &b, 4);
    return o + 4;
}

static unsigned char *md_be64(unsigned char *o, int64_t v) {
    uint64_t b = htobe64((uint64_t)v);
    memcpy(o, &b, 8);
    return o + 8;
}

static unsigned char *md_text(unsigned char *o, const char *t, size_t len) {
    o = md_be32(o, (uint32_t)len);
    memcpy(o, t, len);
    return o + len;
}

typedef struct md_rowfmt_s {
    unsigned char tmpl[512];
    size_t len;                /* bytes per row */
    size_t o_ts, o_px, o_flags; /* offsets of ts, open (then high, low, close,
                                   volume, 12 bytes apart) and flags values */
} md_rowfmt_t;

/* direct = 1: a row of md.bars (MD_COPY_BARS); 0: of md_stage. */
static int md_rowfmt_init(md_rowfmt_t *f, int direct, int32_t asset_id, const char *timeframe,
                          const char *source) {
    size_t tfl = strlen(timeframe), srcl = strlen(source);
    if (tfl + srcl > sizeof f->tmpl - 128) return -1;
    unsigned char *o = f->tmpl;
    o = md_be16(o, direct ? 10 : 7);
    if (direct) {
        o = md_be32(o, 4);
        o = md_be32(o, (uint32_t)asset_id);
        o = md_text(o, timeframe, tfl);
    }
    o = md_be32(o, 8);
    f->o_ts = (size_t)(o - f->tmpl);
    o += 8;
    f->o_px = (size_t)(o - f->tmpl) + 4;
    for (int k = 0; k < 5; k++) {
        o = md_be32(o, 8);
        o = md_be64(o, 0);
    }
    if (direct) o = md_text(o, source, srcl);
    o = md_be32(o, 2);
    f->o_flags = (size_t)(o - f->tmpl);
    o = md_be16(o, 0);
    f->len = (size_t)(o - f->tmpl);
    return 0;
}

#define MD_COPY_BARS                                                                    \
    "COPY md.bars (asset_id, timeframe, ts, open, high, low, close, volume, source, flags)" \
    " FROM STDIN (FORMAT binary)"

/* COPY bars[0..n) with `copy_sql` in binary rows of format f; *rows gets
 * the count the server stored. */
static qb_err_t md_copy_bars(qb_store_t *s, const char *copy_sql, const md_rowfmt_t *f,
                             int direct, const qb_bar_t *bars, const uint16_t *flags, size_t n,
                             int64_t *rows, char *errstr, size_t errstr_size) {
    qb_err_t err = qb_store_copy_begin(s, copy_sql, errstr, errstr_size);
    if (err) return err;
    unsigned char *buf = malloc(MD_COPY_CHUNK + sizeof md_copy_header + f->len + 2);
    if (!buf) {
        qb_store_copy_abort(s, NULL, 0);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "load_bars: out of memory");
    }
    memcpy(buf, md_copy_header, sizeof md_copy_header);
    size_t o = sizeof md_copy_header;
    for (size_t i = 0; i < n && !err; i++) {
        const qb_bar_t *b = &bars[i];
        unsigned char *r = buf + o;
        memcpy(r, f->tmpl, f->len);
        /* floor to microseconds: PostgreSQL's resolution */
        int64_t us = b->ts / 1000 - (b->ts % 1000 < 0 ? 1 : 0);
        md_be64(r + f->o_ts, direct ? us - MD_PG_EPOCH_US : us);
        md_be64(r + f->o_px, b->open);
        md_be64(r + f->o_px + 12, b->high);
        md_be64(r + f->o_px + 24, b->low);
        md_be64(r + f->o_px + 36, b->close);
        md_be64(r + f->o_px + 48, b->volume);
        md_be16(r + f->o_flags, flags ? flags[i] : 0);
        o += f->len;
        if (i + 1 == n) o = (size_t)(md_be16(buf + o, 0xffff) - buf); /* trailer */
        if (o >= MD_COPY_CHUNK || i + 1 == n) {
            err = qb_store_copy_data(s, buf, o, errstr, errstr_size);
            o = 0;
        }
    }
    free(buf);
    if (err) {
        qb_store_copy_abort(s, NULL, 0);
        return err;
    }
    return qb_store_copy_end(s, rows, errstr, errstr_size);
}

qb_err_t qb_md_store_load_bars_ex(qb_store_t *s, int32_t asset_id, const char *timeframe,
                                  const char *source, const qb_bar_t *bars,
                                  const uint16_t *flags, size_t n, double tolerance,
                                  int outbox, qb_md_load_result_t *res, char *errstr,
                                  size_t errstr_size) {
    qb_err_t err = qb_md_store_load_bars_prepare(s, asset_id, timeframe, source, bars, flags, n,
                                                 tolerance, outbox, res, errstr, errstr_size);
    if (err || n == 0) return err;
    return qb_md_store_load_bars_finish(s, 1, res, errstr, errstr_size);
}

qb_err_t qb_md_store_load_bars_finish(qb_store_t *s, int commit, qb_md_load_result_t *res,
                                      char *errstr, size_t errstr_size) {
    if (!s || !res)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "load_bars_finish: bad argument");
    if (!qb_store_in_transaction(s)) return QB_OK; /* n == 0: nothing was begun */
    qb_err_t err = commit ? qb_store_commit(s, errstr, errstr_size) : QB_OK;
    if (commit && !err) {
        res->duplicates = res->staged - res->loaded;
        return QB_OK;
    }
    qb_store_rollback(s, NULL, 0);
    if (res->outbox_id) qb_md_outbox_unlock(s, res->outbox_id);
    memset(res, 0, sizeof(*res));
    return err;
}

qb_err_t qb_md_store_load_bars_prepare(qb_store_t *s, int32_t asset_id, const char *timeframe,
                                       const char *source, const qb_bar_t *bars,
                                       const uint16_t *flags, size_t n, double tolerance,
                                       int outbox, qb_md_load_result_t *res, char *errstr,
                                       size_t errstr_size) {
    if (!s || !timeframe || !source || !res || (n && !bars))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "load_bars: bad argument");
    memset(res, 0, sizeof(*res));
    if (n == 0) return QB_OK;
    if (tolerance <= 0) tolerance = QB_MD_CONFLICT_TOLERANCE;
    qb_time_t tmin = bars[0].ts, tmax = bars[0].ts;
    for (size_t i = 1; i < n; i++) {
        if (bars[i].ts < tmin) tmin = bars[i].ts;
        if (bars[i].ts > tmax) tmax = bars[i].ts;
    }
    char smin[QB_TIME_STRLEN], smax[QB_TIME_STRLEN], aid[16], tol[32];
    qb_time_format(tmin, smin, sizeof smin);
    qb_time_format(tmax, smax, sizeof smax);
    snprintf(aid, sizeof aid, "%d", (int)asset_id);
    snprintf(tol, sizeof tol, "%.17g", tolerance);
    md_rowfmt_t fmt;
    if (md_rowfmt_init(&fmt, 1, asset_id, timeframe, source) != 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "load_bars: source name too long");

    qb_err_t err = qb_store_begin(s, errstr, errstr_size);
    if (err) return err;
    {
        /* The partitions; md.bars_ensure_partitions serialises its callers
         * until they commit, so it is only called when one of its yearly
         * tables (md.bars_yYYYY) is missing (were it to name them
         * otherwise, it would just be called every time). Then
         * loaders of one asset take turns, so the overlap check below stays
         * true until this transaction commits. */
        const char *p[3] = {smin, smax, aid};
        err = qb_store_query(
            s,
            "SELECT md.bars_ensure_partitions($1::timestamptz, $2::timestamptz)"
            " FROM generate_series(extract(year FROM $1::timestamptz AT TIME ZONE 'UTC')::integer,"
            "   extract(year FROM $2::timestamptz AT TIME ZONE 'UTC')::integer) y"
            " WHERE to_regclass(format('md.bars_y%s', lpad(y::text, 4, '0'))) IS NULL LIMIT 1",
            2, p, NULL, errstr, errstr_size);
        if (err) goto fail;
        err = qb_store_query(s, "SELECT pg_advisory_xact_lock(hashtext('md.bars'), $1::integer)",
                             1, p + 2, NULL, errstr, errstr_size);
        if (err) goto fail;
    }
    int overlap = 1;
    {
        const char *p[4] = {aid, timeframe, smin, smax};
        PGresult *r = NULL;
        err = qb_store_query(s,
                             "SELECT EXISTS (SELECT 1 FROM md.bars WHERE asset_id = $1::integer"
                             " AND timeframe = $2 AND ts >= $3::timestamptz AND ts <= $4::timestamptz)",
                             4, p, &r, errstr, errstr_size);
        if (err) goto fail;
        overlap = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
    }
    if (!overlap) {
        /* Nothing stored in the batch's range (new history, the common
         * case): COPY straight into md.bars. */
        int64_t rows = 0;
        err = md_copy_bars(s, MD_COPY_BARS, &fmt, 1, bars, flags, n, &rows, errstr, errstr_size);
        if (err) goto fail;
        res->staged = (int64_t)n;
        res->loaded = rows;
    } else {
        err = qb_store_exec(s,
                            "SET LOCAL client_min_messages = warning;"
                            "CREATE TEMP TABLE IF NOT EXISTS md_stage (ts_us bigint NOT NULL,"
                            " open bigint NOT NULL, high bigint NOT NULL, low bigint NOT NULL,"
                            " close bigint NOT NULL, volume bigint NOT NULL, flags smallint NOT NULL)"
                            " ON COMMIT DELETE ROWS",
                            errstr, errstr_size);
        if (err) goto fail;
        md_rowfmt_t sf;
        md_rowfmt_init(&sf, 0, asset_id, timeframe, source);
        int64_t rows = 0;
        err = md_copy_bars(s, "COPY md_stage FROM STDIN (FORMAT binary)", &sf, 0, bars, flags, n,
                           &rows, errstr, errstr_size);
        if (err) goto fail;
        res->staged = rows;
        const char *q[6] = {aid, timeframe, tol, smin, smax, source};
        PGresult *r = NULL;
        err = qb_store_query(
            s,
            "WITH c AS ("
            " SELECT b.ts, b.source AS s_src, b.open AS s_o, b.high AS s_h, b.low AS s_l,"
            "        b.close AS s_c, b.volume AS s_v,"
            "        st.open AS i_o, st.high AS i_h, st.low AS i_l, st.close AS i_c, st.volume AS i_v"
            "   FROM md_stage st JOIN md.bars b"
            "     ON b.asset_id = $1::integer AND b.timeframe = $2 AND b.ts = " MD_TS_SQL
            "  WHERE b.ts >= $4::timestamptz AND b.ts <= $5::timestamptz"
            "    AND (abs(b.open - st.open)::float8 > $3::float8 * b.open"
            "      OR abs(b.high - st.high)::float8 > $3::float8 * b.high"
            "      OR abs(b.low - st.low)::float8 > $3::float8 * b.low"
            "      OR abs(b.close - st.close)::float8 > $3::float8 * b.close)"
            "), ins AS ("
            " INSERT INTO md.bar_conflicts (asset_id, timeframe, ts, stored_source, stored_open,"
            "   stored_high, stored_low, stored_close, stored_volume, incoming_source,"
            "   incoming_open, incoming_high, incoming_low, incoming_close, incoming_volume)"
            " SELECT $1::integer, $2, ts, s_src, s_o, s_h, s_l, s_c, s_v, $6, i_o, i_h, i_l, i_c, i_v"
            "   FROM c ON CONFLICT DO NOTHING"
            ") SELECT count(*) FROM c",
            6, q, &r, errstr, errstr_size);
        if (err) goto fail;
        res->conflicts = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        const char *p[3] = {aid, timeframe, source};
        err = qb_store_query(s,
                             "INSERT INTO md.bars (asset_id, timeframe, ts, open, high, low,"
                             " close, volume, source, flags)"
                             " SELECT $1::integer, $2, " MD_TS_SQL ", st.open, st.high, st.low,"
                             " st.close, st.volume, $3, st.flags FROM md_stage st"
                             " ON CONFLICT (asset_id, timeframe, ts) DO NOTHING",
                             3, p, &r, errstr, errstr_size);
        if (err) goto fail;
        res->loaded = md_cmd_tuples(r);
        PQclear(r);
    }
    if (outbox) {
        /* The batch's outbox row, and a session lock on it that says "a live
         * publisher has this one" until qb_md_outbox_done (see 0004). */
        const char *p[5] = {aid, timeframe, smin, smax, source};
        PGresult *r = NULL;
        err = qb_store_query(s,
                             "WITH o AS (INSERT INTO md.publish_outbox (asset_id, timeframe,"
                             " ts_from, ts_to, source) VALUES ($1::integer, $2, $3::timestamptz,"
                             " $4::timestamptz, $5) RETURNING id)"
                             " SELECT id, pg_advisory_lock(hashtext('md.publish_outbox'),"
                             " (id % 2147483647)::integer) FROM o",
                             5, p, &r, errstr, errstr_size);
        if (err) goto fail;
        res->outbox_id = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    return QB_OK;
fail:
    qb_store_rollback(s, NULL, 0);
    if (res->outbox_id) qb_md_outbox_unlock(s, res->outbox_id);
    memset(res, 0, sizeof(*res));
    return err;
}

static void md_time_param(qb_time_t t, const char *dflt, char *buf, size_t cap) {
    if (t == 0) snprintf(buf, cap, "%s", dflt);
    else qb_time_format(t, buf, cap);
}

qb_err_t qb_md_store_read_bars(qb_store_t *s, const char *symbol, const char *timeframe,
                               qb_time_t from, qb_time_t to, qb_bar_t **out,
                               uint16_t **flags, size_t *n, char *errstr, size_t errstr_size) {
    if (!s || !symbol || !timeframe || !out || !n)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "read_bars: bad argument");
    *out = NULL;
    *n = 0;
    if (flags) *flags = NULL;
    qb_symbol_t sym;
    if (qb_symbol_set(&sym, symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    if (strlen(timeframe) > QB_TIMEFRAME_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "read_bars: bad timeframe");
    char sf[QB_TIME_STRLEN], st[QB_TIME_STRLEN];
    md_time_param(from, "-infinity", sf, sizeof sf);
    md_time_param(to, "infinity", st, sizeof st);
    const char *p[4] = {sym.s, timeframe, sf, st};
    PGresult *r = NULL;
    qb_err_t err = qb_store_query(
        s,
        "SELECT (extract(epoch FROM b.ts) * 1000000)::bigint, b.open, b.high, b.low, b.close,"
        " b.volume, b.flags FROM md.bars b JOIN md.assets a USING (asset_id)"
        " WHERE a.symbol = $1 AND b.timeframe = $2 AND b.ts >= $3::timestamptz"
        " AND b.ts < $4::timestamptz ORDER BY b.ts",
        4, p, &r, errstr, errstr_size);
    if (err) return err;
    size_t rows = (size_t)PQntuples(r);
    if (rows == 0) {
        PQclear(r);
        return QB_OK;
    }
    qb_bar_t *bars = calloc(rows, sizeof(*bars));
    uint16_t *fl = flags ? calloc(rows, sizeof(*fl)) : NULL;
    if (!bars || (flags && !fl)) {
        free(bars);
        free(fl);
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "read_bars: out of memory");
    }
    for (size_t i = 0; i < rows; i++) {
        qb_bar_t *b = &bars[i];
        b->symbol = sym;
        snprintf(b->timeframe, sizeof b->timeframe, "%s", timeframe);
        b->ts = atoll(PQgetvalue(r, (int)i, 0)) * QB_NS_PER_US;
        b->open = atoll(PQgetvalue(r, (int)i, 1));
        b->high = atoll(PQgetvalue(r, (int)i, 2));
        b->low = atoll(PQgetvalue(r, (int)i, 3));
        b->close = atoll(PQgetvalue(r, (int)i, 4));
        b->volume = atoll(PQgetvalue(r, (int)i, 5));
        if (fl) fl[i] = (uint16_t)atoi(PQgetvalue(r, (int)i, 6));
    }
    PQclear(r);
    *out = bars;
    if (flags) *flags = fl;
    *n = rows;
    return QB_OK;
}

qb_err_t qb_md_ingest_log_begin(qb_store_t *s, const char *job, const char *source,
                                const char *symbol, const char *timeframe, qb_time_t from,
                                qb_time_t to, int64_t *id, char *errstr, size_t errstr_size) {
    if (!job || !source || !symbol || !timeframe || !id)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "ingest_log_begin: bad argument");
    char sf[QB_TIME_STRLEN], st[QB_TIME_STRLEN];
    if (from) qb_time_format(from, sf, sizeof sf);
    if (to) qb_time_format(to, st, sizeof st);
    const char *p[6] = {job, source, symbol, timeframe, from ? sf : NULL, to ? st : NULL};
    PGresult *r = NULL;
    qb_err_t err = qb_store_query(s,
                                  "INSERT INTO md.ingest_log (job, source, symbol, timeframe,"
                                  " range_from, range_to) VALUES ($1, $2, $3, $4,"
                                  " $5::timestamptz, $6::timestamptz) RETURNING id",
                                  6, p, &r, errstr, errstr_size);
    if (err) return err;
    *id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return QB_OK;
}

qb_err_t qb_md_ingest_log_finish(qb_store_t *s, int64_t id, const qb_md_ingest_log_t *log,
                                 char *errstr, size_t errstr_size) {
    if (!log) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "ingest_log_finish: NULL");
    char v[9][24];
    md_i64(id, v[0]);
    md_i64(log->rows_in, v[1]);
    md_i64(log->rows_loaded, v[2]);
    md_i64(log->rows_duplicate, v[3]);
    md_i64(log->rows_rejected, v[4]);
    md_i64(log->rows_outlier, v[5]);
    md_i64(log->conflicts, v[6]);
    md_i64(log->duration_ms, v[7]);
    const char *p[10] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                         log->rejects_json ? log->rejects_json : "{}", v[7], log->error};
    return qb_store_query(s,
                          "UPDATE md.ingest_log SET rows_in = $2::bigint, rows_loaded = $3::bigint,"
                          " rows_duplicate = $4::bigint, rows_rejected = $5::bigint,"
                          " rows_outlier = $6::bigint, conflicts = $7::bigint,"
                          " rejects_by_reason = $8::jsonb, duration_ms = $9::bigint, error = $10,"
                          " finished_at = now() WHERE id = $1::bigint",
                          10, p, NULL, errstr, errstr_size);
}

qb_err_t qb_md_store_put_observations(qb_store_t *s, const char *series, const char *source,
                                      const qb_md_observation_t *obs, size_t n,
                                      char *errstr, size_t errstr_size) {
    if (!series || !*series || !source || (n && !obs))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "put_observations: bad argument");
    if (n == 0) return QB_OK;
    qb_err_t err = qb_store_begin(s, errstr, errstr_size);
    if (err) return err;
    for (size_t i = 0; i < n && !err; i++) {
        char d[QB_TIME_STRLEN], val[QB_DEC_STRLEN];
        qb_time_t day;
        if (qb_time_trunc_day(obs[i].date, &day) != QB_OK) day = obs[i].date;
        qb_time_format(day, d, sizeof d);
        d[10] = '\0'; /* the date */
        qb_dec_format(obs[i].value, val, sizeof val);
        const char *p[4] = {series, d, val, source};
        err = qb_store_query(s,
                             "INSERT INTO md.observations (series, date, value, source)"
                             " VALUES ($1, $2::date, $3::numeric, $4) ON CONFLICT (series, date)"
                             " DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source",
                             4, p, NULL, errstr, errstr_size);
    }
    if (!err) err = qb_store_commit(s, errstr, errstr_size);
    if (err) qb_store_rollback(s, NULL, 0);
    return err;
}

qb_err_t qb_md_store_put_corporate_action(qb_store_t *s, int32_t asset_id, qb_time_t ex_date,
                                          qb_md_action_kind_t kind, qb_dec_t value,
                                          const char *source, char *errstr,
                                          size_t errstr_size) {
    if (!source || (kind != QB_MD_ACTION_SPLIT && kind != QB_MD_ACTION_DIVIDEND))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "corporate action: bad argument");
    char aid[16], d[QB_TIME_STRLEN], val[QB_DEC_STRLEN];
    snprintf(aid, sizeof aid, "%d", (int)asset_id);
    qb_time_format(ex_date, d, sizeof d);
    d[10] = '\0';
    qb_dec_format(value, val, sizeof val);
    int split = kind == QB_MD_ACTION_SPLIT;
    const char *p[6] = {aid, d, split ? "split" : "dividend", split ? val : NULL,
                        split ? NULL : val, source};
    return qb_store_query(s,
                          "INSERT INTO md.corporate_actions (asset_id, ex_date, kind, ratio, amount,"
                          " source) VALUES ($1::integer, $2::date, $3, $4::numeric, $5::numeric, $6)"
                          " ON CONFLICT (asset_id, ex_date, kind) DO UPDATE SET ratio = EXCLUDED.ratio,"
                          " amount = EXCLUDED.amount, source = EXCLUDED.source",
                          6, p, NULL, errstr, errstr_size);
}

qb_err_t qb_md_store_last_bar_ts(qb_store_t *s, const char *symbol, const char *timeframe,
                                 qb_time_t *out, char *errstr, size_t errstr_size) {
    const char *params[2] = {symbol, timeframe};
    PGresult *r = NULL;
    *out = 0;
    qb_err_t e = qb_store_query(
        s,
        "SELECT (extract(epoch FROM max(b.ts)) * 1000000)::bigint FROM md.bars b "
        "JOIN md.assets a ON a.asset_id = b.asset_id WHERE a.symbol = $1 AND b.timeframe = $2",
        2, params, &r, errstr, errstr_size);
    if (e) return e;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        *out = (qb_time_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10) * 1000;
    PQclear(r);
    return QB_OK;
}
