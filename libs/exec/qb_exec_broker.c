/* qb_exec_broker.c — the broker handle (an ops table + implementation) and
 * reconciliation (qb_exec_broker.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/qb_exec_broker.h"

struct qb_exec_broker_s {
    const qb_exec_broker_ops_t *ops;
    void *impl;
};

qb_exec_broker_t *qb_exec_broker_wrap(const qb_exec_broker_ops_t *ops, void *impl) {
    qb_exec_broker_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ops = ops;
    b->impl = impl;
    return b;
}

void qb_exec_broker_destroy(qb_exec_broker_t *b) {
    if (!b) return;
    if (b->ops->destroy) b->ops->destroy(b->impl);
    free(b);
}

const char *qb_exec_broker_name(const qb_exec_broker_t *b) { return b->ops->name; }
void *qb_exec_broker_impl(const qb_exec_broker_t *b) { return b->impl; }

qb_err_t qb_exec_broker_submit(qb_exec_broker_t *b, const qb_exec_order_t *o,
                               qb_exec_border_t *out, char *errstr, size_t errstr_size) {
    return b->ops->submit(b->impl, o, out, errstr, errstr_size);
}
qb_err_t qb_exec_broker_cancel(qb_exec_broker_t *b, const qb_exec_order_t *o, char *errstr,
                               size_t errstr_size) {
    return b->ops->cancel(b->impl, o, errstr, errstr_size);
}
qb_err_t qb_exec_broker_replace(qb_exec_broker_t *b, const qb_exec_order_t *old,
                                const qb_exec_order_t *nw, qb_exec_border_t *out, char *errstr,
                                size_t errstr_size) {
    return b->ops->replace(b->impl, old, nw, out, errstr, errstr_size);
}
qb_err_t qb_exec_broker_order_status(qb_exec_broker_t *b, const char *id, qb_exec_border_t *out,
                                     char *errstr, size_t errstr_size) {
    return b->ops->order_status(b->impl, id, out, errstr, errstr_size);
}
qb_err_t qb_exec_broker_open_orders(qb_exec_broker_t *b, qb_exec_border_t **out, size_t *n,
                                    char *errstr, size_t errstr_size) {
    return b->ops->open_orders(b->impl, out, n, errstr, errstr_size);
}
qb_err_t qb_exec_broker_positions(qb_exec_broker_t *b, const char *account,
                                  qb_exec_bposition_t **out, size_t *n, char *errstr,
                                  size_t errstr_size) {
    return b->ops->positions(b->impl, account, out, n, errstr, errstr_size);
}
qb_err_t qb_exec_broker_account(qb_exec_broker_t *b, const char *account,
                                qb_exec_baccount_t *out, char *errstr, size_t errstr_size) {
    return b->ops->account(b->impl, account, out, errstr, errstr_size);
}

/* ---- reconciliation ------------------------------------------------------------ */

static void recon_ev(qb_exec_event_t *e, qb_exec_ev_kind_t k, const qb_exec_order_t *o,
                     const qb_exec_border_t *b, qb_time_t now) {
    memset(e, 0, sizeof *e);
    e->kind = k;
    snprintf(e->order_id, sizeof e->order_id, "%s", o->o.id);
    if (b) snprintf(e->broker_order_id, sizeof e->broker_order_id, "%s", b->broker_order_id);
    e->ts = b && b->updated_ts ? b->updated_ts : now;
}

size_t qb_exec_recon_order(const qb_exec_order_t *o, const qb_exec_border_t *b, qb_time_t now,
                           qb_exec_event_t ev[4], qb_exec_recon_action_t *action, char *note,
                           size_t note_size) {
    size_t n = 0;
    *action = QB_EXEC_RECON_NONE;
    if (note_size) note[0] = '\0';
    if (qb_order_status_is_terminal(o->o.status)) return 0;
    if (!b) {
        if (o->o.status == QB_ORDER_STATUS_NEW || o->o.status == QB_ORDER_STATUS_SUBMITTED) {
            *action = QB_EXEC_RECON_RESUBMIT;
            snprintf(note, note_size, "order %s was never acknowledged and the broker does not "
                     "know it: sending it", o->o.id);
            return 0;
        }
        *action = QB_EXEC_RECON_DISCREPANCY;
        snprintf(note, note_size, "order %s (%s, %s) is unknown to the broker: closed as CANCELED",
                 o->o.id, o->o.symbol.s, qb_order_status_name(o->o.status));
        recon_ev(&ev[n], QB_EXEC_EV_CANCELED, o, NULL, now);
        ev[n].reason_code = QB_EXEC_REASON_BROKER_UNKNOWN;
        snprintf(ev[n].reason_text, sizeof ev[n].reason_text, "the broker does not know the order");
        return n + 1;
    }
    if (o->o.status == QB_ORDER_STATUS_NEW) {
        /* Sent before a crash, never recorded as SUBMITTED: record it. */
        recon_ev(&ev[n++], QB_EXEC_EV_SUBMITTED, o, b, now);
    }
    if (b->filled_qty < o->o.filled_qty) {
        *action = QB_EXEC_RECON_DISCREPANCY;
        char a[40], c[40];
        qb_dec_format(b->filled_qty, a, sizeof a);
        qb_dec_format(o->o.filled_qty, c, sizeof c);
        snprintf(note, note_size, "order %s: the broker reports %s filled, we have %s", o->o.id, a,
                 c);
        return n;
    }
    int open_at_broker = !qb_order_status_is_terminal(b->status);
    if ((o->o.status == QB_ORDER_STATUS_SUBMITTED || o->o.status == QB_ORDER_STATUS_NEW) &&
        open_at_broker && b->filled_qty == 0)
        recon_ev(&ev[n++], QB_EXEC_EV_ACCEPTED, o, b, now);
    if (b->filled_qty > o->o.filled_qty) {
        qb_dec_t q = b->filled_qty - o->o.filled_qty, bn = 0, px = 0;
        qb_exec_event_t *f = &ev[n];
        recon_ev(f, QB_EXEC_EV_FILL, o, b, now);
        if (qb_dec_mul(b->filled_avg_price, b->filled_qty, &bn, QB_ROUND_HALF_EVEN) ||
            qb_dec_div(bn - o->notional, q, &px, QB_ROUND_HALF_EVEN) || px <= 0)
            px = b->filled_avg_price; /* rounding left nothing sensible: use the average */
        f->qty = q;
        f->price = px;
        qb_exec_fill_id_cum(o->o.id, b->filled_qty, f->fill_id);
        n++;
    }
    if (!open_at_broker && b->status != QB_ORDER_STATUS_FILLED) {
        qb_exec_ev_kind_t k = b->status == QB_ORDER_STATUS_EXPIRED    ? QB_EXEC_EV_EXPIRED
                              : b->status == QB_ORDER_STATUS_REJECTED ? QB_EXEC_EV_REJECTED
                                                                      : QB_EXEC_EV_CANCELED;
        if (k == QB_EXEC_EV_REJECTED && b->filled_qty > 0) k = QB_EXEC_EV_CANCELED;
        recon_ev(&ev[n], k, o, b, now);
        ev[n].reason_code = b->replaced                   ? QB_EXEC_REASON_REPLACED
                            : k == QB_EXEC_EV_EXPIRED     ? QB_EXEC_REASON_TIME_IN_FORCE
                            : k == QB_EXEC_EV_REJECTED    ? QB_EXEC_REASON_BROKER_REJECT
                                                          : QB_EXEC_REASON_USER_CANCELED;
        snprintf(ev[n].reason_text, sizeof ev[n].reason_text, "broker status %s", b->raw_status);
        n++;
    }
    return n;
}

static int recon_cmp(const void *a, const void *b) {
    return strcmp(((const qb_exec_bposition_t *)a)->symbol.s,
                  ((const qb_exec_bposition_t *)b)->symbol.s);
}

qb_err_t qb_exec_recon_positions(const qb_exec_bposition_t *ours, size_t nours,
                                 const qb_exec_bposition_t *broker, size_t nbroker,
                                 qb_exec_pos_diff_t **diffs, size_t *n) {
    *diffs = NULL;
    *n = 0;
    qb_exec_bposition_t *a = malloc((nours + 1) * sizeof *a), *b = malloc((nbroker + 1) * sizeof *b);
    qb_exec_pos_diff_t *d = malloc((nours + nbroker + 1) * sizeof *d);
    if (!a || !b || !d) {
        free(a);
        free(b);
        free(d);
        return QB_ERR_NOMEM;
    }
    if (nours) memcpy(a, ours, nours * sizeof *a);
    if (nbroker) memcpy(b, broker, nbroker * sizeof *b);
    qsort(a, nours, sizeof *a, recon_cmp);
    qsort(b, nbroker, sizeof *b, recon_cmp);
    size_t i = 0, j = 0, k = 0;
    while (i < nours || j < nbroker) {
        int c = i == nours ? 1 : j == nbroker ? -1 : strcmp(a[i].symbol.s, b[j].symbol.s);
        qb_exec_pos_diff_t x;
        memset(&x, 0, sizeof x);
        if (c < 0) {
            x.symbol = a[i].symbol;
            x.ours = a[i++].qty;
        } else if (c > 0) {
            x.symbol = b[j].symbol;
            x.broker = b[j++].qty;
        } else {
            x.symbol = a[i].symbol;
            x.ours = a[i++].qty;
            x.broker = b[j++].qty;
        }
        if (x.ours != x.broker) d[k++] = x;
    }
    free(a);
    free(b);
    if (!k) {
        free(d);
        return QB_OK;
    }
    *diffs = d;
    *n = k;
    return QB_OK;
}
