/* qb_md_outbox.c — see qb_md_outbox.h. */
#include "md/qb_md_outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md/qb_md_store.h"

/* Lock key: (hashtext('md.publish_outbox'), id mod 2^31-1), also taken in
 * qb_md_store_load_bars_ex. */
#define OUTBOX_LOCK_KEY "hashtext('md.publish_outbox')"

qb_err_t qb_md_outbox_done(qb_store_t *s, int64_t id, char *errstr, size_t errstr_size) {
    char idt[24];
    snprintf(idt, sizeof idt, "%" PRId64, id);
    const char *p[1] = {idt};
    qb_err_t e = qb_store_query(s, "DELETE FROM md.publish_outbox WHERE id = $1::bigint", 1, p,
                                NULL, errstr, errstr_size);
    qb_md_outbox_unlock(s, id);
    return e;
}

void qb_md_outbox_unlock(qb_store_t *s, int64_t id) {
    char idt[24], ignored[256];
    snprintf(idt, sizeof idt, "%" PRId64, id);
    const char *p[1] = {idt};
    /* Taken once, by the load that made the row. */
    (void)qb_store_query(s,
                         "SELECT pg_advisory_unlock(" OUTBOX_LOCK_KEY
                         ", ($1::bigint % 2147483647)::integer)",
                         1, p, NULL, ignored, sizeof ignored);
}

static qb_time_t col_us(const PGresult *r, int col) {
    return (qb_time_t)strtoll(PQgetvalue(r, 0, col), NULL, 10) * QB_NS_PER_US;
}

qb_err_t qb_md_outbox_drain(qb_store_t *s, qb_md_outbox_publish_cb cb, void *opaque,
                            int max_batches, qb_md_outbox_stats_t *stats, char *errstr,
                            size_t errstr_size) {
    qb_md_outbox_stats_t st = {0, 0};
    qb_err_t e = QB_OK;
    for (int k = 0; max_batches <= 0 || k < max_batches; k++) {
        if ((e = qb_store_begin(s, errstr, errstr_size)) != QB_OK) break;
        PGresult *r = NULL;
        /* A row a live loader holds (its session lock) fails the try-lock;
         * one another drainer has fails FOR UPDATE SKIP LOCKED. */
        e = qb_store_query(s,
                           "SELECT o.id, a.symbol, o.timeframe,"
                           " (extract(epoch FROM o.ts_from) * 1000000)::bigint,"
                           " (extract(epoch FROM o.ts_to) * 1000000)::bigint, o.source"
                           " FROM md.publish_outbox o JOIN md.assets a USING (asset_id)"
                           " WHERE pg_try_advisory_xact_lock(" OUTBOX_LOCK_KEY ", (o.id % 2147483647)::integer)"
                           " ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED",
                           0, NULL, &r, errstr, errstr_size);
        if (e != QB_OK) {
            qb_store_rollback(s, NULL, 0);
            break;
        }
        if (PQntuples(r) == 0) {
            PQclear(r);
            e = qb_store_commit(s, errstr, errstr_size);
            break;
        }
        char idt[24], sym[QB_SYMBOL_MAX + 1], tf[QB_TIMEFRAME_MAX + 1], src[64];
        snprintf(idt, sizeof idt, "%s", PQgetvalue(r, 0, 0));
        snprintf(sym, sizeof sym, "%s", PQgetvalue(r, 0, 1));
        snprintf(tf, sizeof tf, "%s", PQgetvalue(r, 0, 2));
        snprintf(src, sizeof src, "%s", PQgetvalue(r, 0, 5));
        /* ts_to is inclusive; PostgreSQL keeps microseconds */
        qb_time_t from = col_us(r, 3), to = col_us(r, 4) + QB_NS_PER_US;
        PQclear(r);
        qb_bar_t *bars = NULL;
        size_t n = 0;
        e = qb_md_store_read_bars(s, sym, tf, from, to, &bars, NULL, &n, errstr, errstr_size);
        if (e == QB_OK && n > 0) e = cb(opaque, bars, n, src, errstr, errstr_size);
        free(bars);
        if (e == QB_OK) {
            const char *p[1] = {idt};
            e = qb_store_query(s, "DELETE FROM md.publish_outbox WHERE id = $1::bigint", 1, p,
                               NULL, errstr, errstr_size);
        }
        if (e != QB_OK) {
            qb_store_rollback(s, NULL, 0);
            break;
        }
        if ((e = qb_store_commit(s, errstr, errstr_size)) != QB_OK) break;
        st.batches++;
        st.bars += (int64_t)n;
    }
    if (stats) *stats = st;
    return e;
}

qb_err_t qb_md_outbox_pending(qb_store_t *s, int64_t *n, char *errstr, size_t errstr_size) {
    PGresult *r = NULL;
    *n = 0;
    qb_err_t e = qb_store_query(s, "SELECT count(*) FROM md.publish_outbox", 0, NULL, &r, errstr,
                                errstr_size);
    if (e != QB_OK) return e;
    *n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return QB_OK;
}
