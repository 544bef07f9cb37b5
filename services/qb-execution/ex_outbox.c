/* ex_outbox.c — the ExecutionReport outbox after a crash: each report id
 * goes to exec.reports once (issue 11).
 *
 * Reports are written to trading.reports with their state change, sent,
 * and marked published every QB_EXEC_PUBLISH_MS once acknowledged. A kill
 * between the send and the mark leaves rows unpublished that ARE on the
 * topic. At start (before the consumer: nothing new is sent before), the
 * topic is read back from the oldest unpublished row's created_at minus
 * EX_OUTBOX_MARGIN_MS up to the high watermarks read when the scan opens:
 * every copy of those rows was sent after its row was committed (created_at
 * is the transaction's start, PostgreSQL's clock; the Kafka timestamp is
 * the sender's clock at send: the margin absorbs skew between them), and
 * by a process that is dead now (this one holds the leader lock the other
 * held). Rows whose event id is found are marked published and not sent;
 * the others are sent (in report_id order) and marked once acknowledged,
 * as before. The set holds only ids read from the topic, so a report that
 * is not there is never skipped. If the topic cannot be read, every row is
 * sent as before (a copy rather than a loss). Owns nothing after return. */
#include <stdlib.h>
#include <string.h>

#include "bus/qb_reader.h"
#include "core/qb_log.h"
#include "core/qb_time.h"
#include "ex.h"

#define EX_OUTBOX_MARGIN_MS 10000
#define EX_OUTBOX_SCAN_S 120

typedef struct ex_outbox_row_s {
    int64_t id;
    char account[QB_ACCOUNT_MAX + 1];
    uint8_t *payload;
    size_t len;
    char event_id[64];
    int found;
} ex_outbox_row_t;

typedef struct ex_outbox_s {
    ex_outbox_row_t *v;
    size_t n, cap;
} ex_outbox_t;

static void ex_outbox_row_cb(void *ctx, int64_t id, const char *account, const void *payload,
                             size_t len) {
    ex_outbox_t *ob = ctx;
    if (ob->n == ob->cap) {
        size_t c = ob->cap ? ob->cap * 2 : 64;
        ex_outbox_row_t *nv = realloc(ob->v, c * sizeof *nv);
        if (!nv) return; /* left unpublished: the next start sends it */
        ob->v = nv;
        ob->cap = c;
    }
    ex_outbox_row_t *r = &ob->v[ob->n];
    memset(r, 0, sizeof *r);
    r->payload = malloc(len ? len : 1);
    if (!r->payload) return;
    memcpy(r->payload, payload, len);
    r->len = len;
    r->id = id;
    snprintf(r->account, sizeof r->account, "%s", account);
    Qb__V1__ExecutionReport *x = qb__v1__execution_report__unpack(NULL, len, payload);
    if (x && x->header && x->header->event_id)
        snprintf(r->event_id, sizeof r->event_id, "%s", x->header->event_id);
    if (x) qb__v1__execution_report__free_unpacked(x, NULL);
    ob->n++;
}

static int ex_outbox_cmp_id(const void *a, const void *b) {
    return strcmp(((const ex_outbox_row_t *const *)a)[0]->event_id,
                  ((const ex_outbox_row_t *const *)b)[0]->event_id);
}

/* Mark the rows whose event id is on exec.reports since since_ms. */
static qb_err_t ex_outbox_scan(ex_outbox_t *ob, int64_t since_ms, size_t *found,
                               char *errstr, size_t errstr_size) {
    ex_outbox_row_t **by = malloc(ob->n * sizeof *by);
    if (!by) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    size_t nb = 0;
    for (size_t i = 0; i < ob->n; i++)
        if (ob->v[i].event_id[0]) by[nb++] = &ob->v[i];
    qsort(by, nb, sizeof *by, ex_outbox_cmp_id);
    char err[512];
    qb_err_t code;
    qb_reader_t *rd = qb_reader_new_since("exec.reports", since_ms, 10000, &code, err,
                                          sizeof err);
    if (!rd && code == QB_ERR_NOT_FOUND) { /* never written: none of them is there */
        free(by);
        return QB_OK;
    }
    if (!rd) {
        free(by);
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "%s", err);
    }
    qb_err_t e = QB_OK;
    int64_t read = 0, deadline = qb_time_mono_ns() + EX_OUTBOX_SCAN_S * QB_NS_PER_SEC;
    while (!qb_reader_caught_up(rd)) {
        qb_bus_msg_t m;
        e = qb_reader_next(rd, 1000, &m, NULL);
        if (e == QB_ERR_TIMEOUT && qb_time_mono_ns() < deadline) continue;
        if (e) break;
        read++;
        const Qb__V1__ExecutionReport *x = (const Qb__V1__ExecutionReport *)m.msg;
        if (!x || x->base.descriptor != &qb__v1__execution_report__descriptor || !x->header ||
            !x->header->event_id)
            continue;
        ex_outbox_row_t key, *kp = &key;
        snprintf(key.event_id, sizeof key.event_id, "%s", x->header->event_id);
        ex_outbox_row_t **hit = bsearch(&kp, by, nb, sizeof *by, ex_outbox_cmp_id);
        if (hit && !(*hit)->found) {
            (*hit)->found = 1;
            (*found)++;
        }
    }
    qb_reader_destroy(rd);
    free(by);
    if (e) return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "read %lld: %s",
                             (long long)read, qb_err_str(e));
    QB_INFO("outbox: %lld reports of exec.reports read back", (long long)read);
    return QB_OK;
}

qb_err_t ex_outbox_publish(ex_t *ex) {
    char errstr[512];
    ex_outbox_t ob = {0};
    int64_t oldest = 0;
    qb_err_t e = ex_store_unpublished_oldest(ex->st, &oldest, errstr, sizeof errstr);
    if (!e) e = ex_store_unpublished(ex->st, ex_outbox_row_cb, &ob, errstr, sizeof errstr);
    if (e) {
        QB_WARN("outbox: %s", errstr);
        goto out;
    }
    if (!ob.n) goto out;
    size_t found = 0;
    int64_t since = oldest - EX_OUTBOX_MARGIN_MS;
    if (ex_outbox_scan(&ob, since > 0 ? since : 0, &found, errstr, sizeof errstr)) {
        QB_WARN("outbox: exec.reports not read back (%s): every unpublished report is sent",
                errstr);
        for (size_t i = 0; i < ob.n; i++) ob.v[i].found = 0;
        found = 0;
    }
    int64_t *marks = malloc((found ? found : 1) * sizeof *marks);
    size_t nm = 0, sent = 0;
    for (size_t i = 0; i < ob.n; i++) {
        ex_outbox_row_t *r = &ob.v[i];
        if (r->found) {
            if (marks) marks[nm++] = r->id;
            continue;
        }
        ex_send(ex, r->account, r->payload, r->len, "", r->id);
        sent++;
    }
    if (nm && (e = ex_store_mark_published(ex->st, marks, nm, errstr, sizeof errstr)))
        QB_WARN("outbox: mark published: %s (read back again at the next start)", errstr);
    free(marks);
    QB_INFO("outbox: %zu unpublished reports: %zu found on exec.reports, %zu sent again", ob.n,
            found, sent);
out:
    for (size_t i = 0; i < ob.n; i++) free(ob.v[i].payload);
    free(ob.v);
    return e;
}
