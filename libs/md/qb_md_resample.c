/* qb_md_resample.c — streaming OHLCV resampler; see qb_md_resample.h.
 *
 * The resampler owns one pending output bar (the bucket being filled) and a
 * cached session so that consecutive intraday bars do not recompute session
 * times. Every check of a pushed bar runs before any state changes, so a
 * rejected bar leaves the stream exactly as it was. */
#include "md/qb_md_resample.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qb_md_resampler_s {
    const qb_cal_t *cal; /* NULL: plain UTC buckets */
    int sessions;        /* cal has sessions (not continuous) */
    int flags;
    qb_symbol_t sym;
    char in_tf[QB_TIMEFRAME_MAX + 1], out_tf[QB_TIMEFRAME_MAX + 1];
    int64_t in_ns, out_ns;
    int daily; /* out_ns == 1 day */

    int have_last;
    qb_time_t last_ts; /* last accepted (or skipped) input time */

    int pending;        /* cur holds a partial output bar */
    qb_bar_t cur;
    qb_time_t cur_key;  /* bucket identity: its start (session open for 1d) */
    qb_time_t cur_end;  /* bucket end: an input bar ending here completes it */

    int have_sess;
    qb_cal_session_t sess;
    size_t skipped;
};

qb_err_t qb_md_resample_tf_parse(const char *tf, int64_t *ns) {
    if (!tf) return QB_ERR_PARSE;
    if (strcmp(tf, "1d") == 0) {
        *ns = QB_NS_PER_DAY;
        return QB_OK;
    }
    size_t len = strlen(tf);
    if (len < 2 || len > 5 || tf[0] == '0') return QB_ERR_PARSE;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (tf[i] < '0' || tf[i] > '9') return QB_ERR_PARSE;
        v = v * 10 + (tf[i] - '0');
    }
    char unit = tf[len - 1];
    if (unit == 'm') v *= QB_NS_PER_MIN;
    else if (unit == 'h') v *= QB_NS_PER_HOUR;
    else return QB_ERR_PARSE;
    if (v > QB_NS_PER_DAY) return QB_ERR_PARSE;
    *ns = v;
    return QB_OK;
}

qb_err_t qb_md_resampler_new(const qb_cal_t *cal, const char *symbol, const char *in_tf,
                             const char *out_tf, int flags, qb_md_resampler_t **out,
                             char *errstr, size_t n) {
    int64_t in_ns, out_ns;
    qb_symbol_t sym;
    qb_err_t err;
    if (!symbol || (err = qb_symbol_set(&sym, symbol, errstr, n)) != QB_OK)
        return symbol ? err : qb_err_set(errstr, n, QB_ERR_INVALID, "resample: no symbol");
    if (qb_md_resample_tf_parse(in_tf, &in_ns) != QB_OK)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "resample: bad input timeframe \"%s\"",
                          in_tf ? in_tf : "(null)");
    if (qb_md_resample_tf_parse(out_tf, &out_ns) != QB_OK)
        return qb_err_set(errstr, n, QB_ERR_PARSE, "resample: bad output timeframe \"%s\"",
                          out_tf ? out_tf : "(null)");
    int sessions = cal && !qb_cal_is_continuous(cal);
    if (in_ns >= QB_NS_PER_DAY)
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample: input timeframe %s must be shorter than a day", in_tf);
    if (out_ns <= in_ns || ((out_ns < QB_NS_PER_DAY || !sessions) && out_ns % in_ns != 0))
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample: %s is not a multiple of %s", out_tf, in_tf);
    qb_md_resampler_t *rs = calloc(1, sizeof *rs);
    if (!rs) return qb_err_set(errstr, n, QB_ERR_NOMEM, "resample: out of memory");
    rs->cal = cal;
    rs->sessions = sessions;
    rs->flags = flags;
    rs->sym = sym;
    snprintf(rs->in_tf, sizeof rs->in_tf, "%s", in_tf);
    snprintf(rs->out_tf, sizeof rs->out_tf, "%s", out_tf);
    rs->in_ns = in_ns;
    rs->out_ns = out_ns;
    rs->daily = out_ns == QB_NS_PER_DAY;
    *out = rs;
    return QB_OK;
}

void qb_md_resampler_destroy(qb_md_resampler_t *rs) { free(rs); }

size_t qb_md_resampler_skipped(const qb_md_resampler_t *rs) { return rs->skipped; }

static int64_t qb_rs_mod(int64_t a, int64_t b) { /* in [0, b) */
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

/* The bucket of instant ts: 1 with key, stamp and end; 0 when ts is outside
 * every session; -1 when ts is off the input grid. */
static int qb_rs_bucket(qb_md_resampler_t *rs, qb_time_t ts, qb_time_t *key,
                        qb_time_t *stamp, qb_time_t *end) {
    if (!rs->sessions) {
        if (qb_rs_mod(ts, rs->in_ns) != 0) return -1;
        *key = *stamp = ts - qb_rs_mod(ts, rs->out_ns);
        *end = *key + rs->out_ns;
        return 1;
    }
    if (!rs->have_sess || ts < rs->sess.open || ts >= rs->sess.close) {
        qb_cal_session_t s;
        if (qb_cal_session_at(rs->cal, ts, &s) != QB_OK) return 0;
        rs->sess = s;
        rs->have_sess = 1;
    }
    const qb_cal_session_t *s = &rs->sess;
    if ((ts - s->open) % rs->in_ns != 0) return -1;
    if (rs->daily) {
        *key = s->open;
        *stamp = qb_cal_date_to_time(s->date);
        *end = s->close;
    } else {
        *key = *stamp = s->open + (ts - s->open) / rs->out_ns * rs->out_ns;
        *end = *key + rs->out_ns < s->close ? *key + rs->out_ns : s->close;
    }
    return 1;
}

static const char *qb_rs_when(qb_time_t t, char *buf, size_t cap) {
    qb_time_format(t, buf, cap);
    return buf;
}

qb_err_t qb_md_resampler_push(qb_md_resampler_t *rs, const qb_bar_t *bar,
                              qb_bar_t out[QB_MD_RESAMPLE_MAX_OUT], size_t *n_out,
                              char *errstr, size_t n) {
    char when[QB_TIME_STRLEN];
    *n_out = 0;
    if (!qb_symbol_eq(&bar->symbol, &rs->sym))
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample %s: bar of another symbol %s at %s", rs->sym.s,
                          bar->symbol.s, qb_rs_when(bar->ts, when, sizeof when));
    if (strcmp(bar->timeframe, rs->in_tf) != 0)
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample %s: bar timeframe %s, expected %s at %s", rs->sym.s,
                          bar->timeframe, rs->in_tf, qb_rs_when(bar->ts, when, sizeof when));
    if (rs->have_last && bar->ts <= rs->last_ts)
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample %s %s: bar at %s is %s", rs->sym.s, rs->in_tf,
                          qb_rs_when(bar->ts, when, sizeof when),
                          bar->ts == rs->last_ts ? "a duplicate" : "out of order");
    if (bar->ts < INT64_MIN + 2 * QB_NS_PER_DAY || bar->ts > INT64_MAX - 2 * QB_NS_PER_DAY)
        return qb_err_set(errstr, n, QB_ERR_RANGE, "resample %s: bar time out of range",
                          rs->sym.s);
    qb_time_t key, stamp, end;
    int b = qb_rs_bucket(rs, bar->ts, &key, &stamp, &end);
    if (b < 0)
        return qb_err_set(errstr, n, QB_ERR_INVALID,
                          "resample %s: bar at %s is off the %s grid", rs->sym.s,
                          qb_rs_when(bar->ts, when, sizeof when), rs->in_tf);
    if (b == 0) {
        if (rs->flags & QB_MD_RESAMPLE_STRICT)
            return qb_err_set(errstr, n, QB_ERR_INVALID,
                              "resample %s: bar at %s is outside the %s sessions",
                              rs->sym.s, qb_rs_when(bar->ts, when, sizeof when),
                              qb_cal_name(rs->cal));
        rs->skipped++;
        rs->have_last = 1;
        rs->last_ts = bar->ts;
        return QB_OK;
    }
    int same = rs->pending && key == rs->cur_key;
    qb_dec_t vol = bar->volume;
    if (same && qb_dec_add(rs->cur.volume, bar->volume, &vol) != QB_OK)
        return qb_err_set(errstr, n, QB_ERR_OVERFLOW,
                          "resample %s: volume sum overflows at %s", rs->sym.s,
                          qb_rs_when(bar->ts, when, sizeof when));
    /* Accepted: from here on the state changes. */
    size_t k = 0;
    if (rs->pending && !same) {
        out[k++] = rs->cur;
        rs->pending = 0;
    }
    if (same) {
        if (bar->high > rs->cur.high) rs->cur.high = bar->high;
        if (bar->low < rs->cur.low) rs->cur.low = bar->low;
        rs->cur.close = bar->close;
        rs->cur.volume = vol;
    } else {
        rs->cur = *bar;
        rs->cur.ts = stamp;
        memcpy(rs->cur.timeframe, rs->out_tf, sizeof rs->cur.timeframe);
        rs->cur_key = key;
        rs->cur_end = end;
        rs->pending = 1;
    }
    rs->have_last = 1;
    rs->last_ts = bar->ts;
    if (bar->ts + rs->in_ns >= rs->cur_end) {
        out[k++] = rs->cur;
        rs->pending = 0;
    }
    *n_out = k;
    return QB_OK;
}

void qb_md_resampler_flush(qb_md_resampler_t *rs, qb_bar_t *out, size_t *n_out) {
    *n_out = 0;
    if (rs->pending) {
        *out = rs->cur;
        *n_out = 1;
        rs->pending = 0;
    }
}

qb_err_t qb_md_resample(const qb_cal_t *cal, const char *in_tf, const char *out_tf,
                        int flags, const qb_bar_t *in, size_t n, qb_bar_t *out,
                        size_t cap, size_t *n_out, char *errstr, size_t errstr_size) {
    *n_out = 0;
    if (n == 0) return QB_OK;
    qb_md_resampler_t *rs;
    qb_err_t err = qb_md_resampler_new(cal, in[0].symbol.s, in_tf, out_tf, flags, &rs,
                                       errstr, errstr_size);
    if (err) return err;
    size_t total = 0;
    qb_bar_t got[QB_MD_RESAMPLE_MAX_OUT];
    size_t ng;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            char sub[256];
            err = qb_md_resampler_push(rs, &in[i], got, &ng, sub, sizeof sub);
            if (err) {
                qb_err_set(errstr, errstr_size, err, "input bar %zu: %s", i, sub);
                break;
            }
        } else {
            qb_md_resampler_flush(rs, got, &ng);
        }
        for (size_t k = 0; k < ng; k++) {
            if (total >= cap) {
                err = qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                                 "resample: more than %zu output bars", cap);
                break;
            }
            out[total++] = got[k];
        }
        if (err) break;
    }
    qb_md_resampler_destroy(rs);
    *n_out = total;
    return err;
}
