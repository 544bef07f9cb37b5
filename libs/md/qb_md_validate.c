/* qb_md_validate.c — bar validation rules and the robust outlier flag; see
 * qb_md_validate.h.
 *
 * The rolling window keeps its returns twice: a ring in arrival order (to
 * know which one leaves) and a sorted array (median in O(1); MAD by merging
 * the deviations left and right of the median, O(window)). Insert and remove
 * are a binary search plus a memmove of at most `window` doubles, so the
 * per-bar cost stays small and independent of how many bars went before. */
#include "md/qb_md_validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const md_reason_names[] = {
#define QB__MD_REASON_NAME(e, code) code,
    QB_MD_REASON_MAP(QB__MD_REASON_NAME)
#undef QB__MD_REASON_NAME
};

const char *qb_md_reason_name(qb_md_reason_t r) {
    if ((int)r < 0 || r >= QB_MD_REASON_COUNT) return "other";
    return md_reason_names[r];
}

qb_md_reason_t qb_md_reason_parse(const char *text) {
    if (!text) return QB_MD_REASON_OTHER;
    size_t len = strcspn(text, ":");
    for (int i = 0; i < QB_MD_REASON_COUNT; i++) {
        if (strlen(md_reason_names[i]) == len && memcmp(md_reason_names[i], text, len) == 0)
            return (qb_md_reason_t)i;
    }
    return QB_MD_REASON_OTHER;
}

#define MD_WINDOW_MAX 1024

struct qb_md_validator_s {
    int64_t grid_ns;   /* ts % grid_ns must be 0 */
    int window, min_periods;
    double threshold;
    int have_last;     /* a bar was accepted: last_ts/last_close valid */
    qb_time_t last_ts;
    qb_dec_t last_close;
    double *ring;      /* returns in arrival order (window entries) */
    double *sorted;    /* the same, ascending */
    int count, head;   /* number in the window; ring index of the oldest */
    int64_t counts[QB_MD_REASON_COUNT];
    int64_t accepted, outliers;
};

qb_md_validator_t *qb_md_validator_new(const char *timeframe,
                                       const qb_md_validate_opts_t *opts,
                                       char *errstr, size_t errstr_size) {
    int64_t tf = 0;
    if (!timeframe || qb_timeframe_parse(timeframe, &tf) != QB_OK) {
        qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "unknown timeframe \"%s\"",
                   timeframe ? timeframe : "(null)");
        return NULL;
    }
    qb_md_validator_t *v = calloc(1, sizeof(*v));
    if (!v) {
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "validator: out of memory");
        return NULL;
    }
    v->grid_ns = tf > QB_NS_PER_DAY ? QB_NS_PER_DAY : tf;
    if (opts && opts->grid_ns > 0) v->grid_ns = opts->grid_ns;
    v->window = opts && opts->window > 0 ? opts->window : 50;
    if (v->window > MD_WINDOW_MAX) v->window = MD_WINDOW_MAX;
    v->min_periods = opts && opts->min_periods > 0 ? opts->min_periods : 20;
    if (v->min_periods > v->window) v->min_periods = v->window;
    v->threshold = opts && opts->threshold > 0 ? opts->threshold : 10.0;
    v->ring = malloc(sizeof(double) * (size_t)v->window);
    v->sorted = malloc(sizeof(double) * (size_t)v->window);
    if (!v->ring || !v->sorted) {
        qb_md_validator_destroy(v);
        qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "validator: out of memory");
        return NULL;
    }
    return v;
}

void qb_md_validator_destroy(qb_md_validator_t *v) {
    if (!v) return;
    free(v->ring);
    free(v->sorted);
    free(v);
}

void qb_md_validator_counts(const qb_md_validator_t *v, int64_t *counts,
                            int64_t *accepted, int64_t *outliers) {
    if (counts) memcpy(counts, v->counts, sizeof(v->counts));
    if (accepted) *accepted = v->accepted;
    if (outliers) *outliers = v->outliers;
}

/* First index in sorted[0..n) whose value is >= x. */
static int md_lower_bound(const double *a, int n, double x) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void md_window_push(qb_md_validator_t *v, double r) {
    if (v->count == v->window) { /* drop the oldest */
        double old = v->ring[v->head];
        int i = md_lower_bound(v->sorted, v->count, old);
        if (i >= v->count) i = v->count - 1; /* cannot happen: old is present */
        memmove(v->sorted + i, v->sorted + i + 1, sizeof(double) * (size_t)(v->count - i - 1));
        v->count--;
        v->ring[v->head] = r;
        v->head = (v->head + 1) % v->window;
    } else {
        v->ring[(v->head + v->count) % v->window] = r;
    }
    int i = md_lower_bound(v->sorted, v->count, r);
    memmove(v->sorted + i + 1, v->sorted + i, sizeof(double) * (size_t)(v->count - i));
    v->sorted[i] = r;
    v->count++;
}

/* Median and MAD of the window (count >= 1). */
static void md_window_stats(const qb_md_validator_t *v, double *median, double *mad) {
    const double *a = v->sorted;
    int n = v->count;
    double m = (n % 2) ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
    /* Deviations left of the median (m - a[i], i = p-1 down to 0) and right
     * of it (a[j] - m, j = p up) are each ascending: merge until the
     * middle one(s). */
    int p = md_lower_bound(a, n, m);
    int i = p - 1, j = p, k = 0;
    int want_lo = (n - 1) / 2, want_hi = n / 2;
    double lo = 0, hi = 0;
    while (k <= want_hi) {
        double d;
        if (i >= 0 && (j >= n || m - a[i] <= a[j] - m)) d = m - a[i--];
        else d = a[j++] - m;
        if (k == want_lo) lo = d;
        if (k == want_hi) hi = d;
        k++;
    }
    *median = m;
    *mad = 0.5 * (lo + hi);
}

static void md_fmt_dec(qb_dec_t d, char *buf, size_t cap) { qb_dec_format(d, buf, cap); }

/* The first rule bar b breaks, with a message; QB_MD_REASON_COUNT if none. */
static qb_md_reason_t md_check(const qb_md_validator_t *v, const qb_bar_t *b, char *msg,
                               size_t cap) {
    char x[QB_DEC_STRLEN], y[QB_DEC_STRLEN], z[QB_DEC_STRLEN], t[QB_TIME_STRLEN];
    if (b->ts % v->grid_ns != 0) {
        qb_time_format(b->ts, t, sizeof t);
        snprintf(msg, cap, "ts %s is not on the %s grid", t, b->timeframe);
        return QB_MD_REASON_OFF_GRID;
    }
    if (v->have_last && b->ts <= v->last_ts) {
        char t2[QB_TIME_STRLEN];
        qb_time_format(b->ts, t, sizeof t);
        qb_time_format(v->last_ts, t2, sizeof t2);
        if (b->ts == v->last_ts) {
            snprintf(msg, cap, "ts %s repeats the previous bar's", t);
            return QB_MD_REASON_DUPLICATE_TS;
        }
        snprintf(msg, cap, "ts %s is before the previous bar's %s", t, t2);
        return QB_MD_REASON_NON_INCREASING_TS;
    }
    static const char *const names[4] = {"open", "high", "low", "close"};
    const qb_dec_t px[4] = {b->open, b->high, b->low, b->close};
    for (int i = 0; i < 4; i++) {
        if (px[i] <= 0) {
            md_fmt_dec(px[i], x, sizeof x);
            snprintf(msg, cap, "%s %s is not positive", names[i], x);
            return QB_MD_REASON_NONPOSITIVE_PRICE;
        }
    }
    if (b->high < b->low) {
        md_fmt_dec(b->high, x, sizeof x);
        md_fmt_dec(b->low, y, sizeof y);
        snprintf(msg, cap, "high %s < low %s", x, y);
        return QB_MD_REASON_HIGH_BELOW_LOW;
    }
    if (b->open < b->low || b->open > b->high) {
        md_fmt_dec(b->open, x, sizeof x);
        md_fmt_dec(b->low, y, sizeof y);
        md_fmt_dec(b->high, z, sizeof z);
        snprintf(msg, cap, "open %s outside [low %s, high %s]", x, y, z);
        return QB_MD_REASON_OPEN_OUTSIDE_RANGE;
    }
    if (b->close < b->low || b->close > b->high) {
        md_fmt_dec(b->close, x, sizeof x);
        md_fmt_dec(b->low, y, sizeof y);
        md_fmt_dec(b->high, z, sizeof z);
        snprintf(msg, cap, "close %s outside [low %s, high %s]", x, y, z);
        return QB_MD_REASON_CLOSE_OUTSIDE_RANGE;
    }
    if (b->volume < 0) {
        md_fmt_dec(b->volume, x, sizeof x);
        snprintf(msg, cap, "volume %s is negative", x);
        return QB_MD_REASON_NEGATIVE_VOLUME;
    }
    return QB_MD_REASON_COUNT;
}

void qb_md_validate_batch(qb_md_validator_t *v, qb_bar_t *bars, size_t n,
                          uint16_t *flags, size_t *n_out, qb_md_reject_cb reject_cb,
                          void *opaque) {
    size_t w = 0;
    char msg[256];
    for (size_t i = 0; i < n; i++) {
        qb_md_reason_t r = md_check(v, &bars[i], msg, sizeof msg);
        if (r != QB_MD_REASON_COUNT) {
            v->counts[r]++;
            if (reject_cb) reject_cb(opaque, &bars[i], i, r, msg);
            continue;
        }
        uint16_t fl = 0;
        if (v->have_last) {
            double ret = log((double)bars[i].close / (double)v->last_close);
            if (v->count >= v->min_periods) {
                double med, mad;
                md_window_stats(v, &med, &mad);
                if (mad > 0 && fabs(ret - med) / (1.4826 * mad) > v->threshold) {
                    fl |= QB_MD_FLAG_OUTLIER;
                    v->outliers++;
                }
            }
            md_window_push(v, ret);
        }
        v->have_last = 1;
        v->last_ts = bars[i].ts;
        v->last_close = bars[i].close;
        v->accepted++;
        if (w != i) bars[w] = bars[i];
        flags[w] = fl;
        w++;
    }
    *n_out = w;
}
