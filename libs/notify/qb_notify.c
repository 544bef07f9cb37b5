/* qb_notify.c — rules, evaluation and templates; see qb_notify.h.
 *
 * Owns: the rule set given to the evaluator, an index of it (price rules by
 * symbol, the others by condition), and the per-series close histories
 * (a hash table of series, each a sliding array of (ts, close)). */
#include "notify/qb_notify.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_decimal.h"

static const char *const qb_ncond_names[QB_NCOND__COUNT] = {
    "", "price_above", "price_below", "signal", "order_filled",
    "order_rejected", "risk_event", "backtest_done", "price_move"};
static const char *const qb_nchan_names[QB_NCHAN__COUNT] = {"", "webhook", "slack", "telegram",
                                                            "email", "in_app"};

const char *qb_ncond_name(qb_ncond_t c) {
    return (int)c > 0 && c < QB_NCOND__COUNT ? qb_ncond_names[c] : "";
}

qb_ncond_t qb_ncond_parse(const char *s) {
    for (int i = 1; s && i < QB_NCOND__COUNT; i++)
        if (strcmp(s, qb_ncond_names[i]) == 0) return (qb_ncond_t)i;
    return QB_NCOND_NONE;
}

const char *qb_nchan_name(qb_nchan_t c) {
    return (int)c > 0 && c < QB_NCHAN__COUNT ? qb_nchan_names[c] : "";
}

qb_nchan_t qb_nchan_parse(const char *s) {
    for (int i = 1; s && i < QB_NCHAN__COUNT; i++)
        if (strcmp(s, qb_nchan_names[i]) == 0) return (qb_nchan_t)i;
    return QB_NCHAN_NONE;
}

int qb_ncond_is_price(qb_ncond_t c) {
    return c == QB_NCOND_PRICE_ABOVE || c == QB_NCOND_PRICE_BELOW || c == QB_NCOND_PRICE_MOVE;
}

/* ---- rules ------------------------------------------------------------------- */

qb_nrules_t *qb_nrules_new(void) { return calloc(1, sizeof(qb_nrules_t)); }

qb_nrule_t *qb_nrules_add(qb_nrules_t *rs) {
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? rs->cap * 2 : 16;
        qb_nrule_t *v = realloc(rs->v, nc * sizeof *v);
        if (!v) return NULL;
        rs->v = v;
        rs->cap = nc;
    }
    qb_nrule_t *r = &rs->v[rs->n++];
    memset(r, 0, sizeof *r);
    r->quiet_start = r->quiet_end = -1;
    r->enabled = 1;
    snprintf(r->time_zone, sizeof r->time_zone, "UTC");
    return r;
}

static void qb_nrule_free_targets(qb_nrule_t *r) {
    for (size_t i = 0; i < r->ntargets; i++) {
        free(r->targets[i].address);
        if (r->targets[i].secret) {
            memset(r->targets[i].secret, 0, strlen(r->targets[i].secret));
            free(r->targets[i].secret);
        }
    }
    r->ntargets = 0;
}

void qb_nrules_destroy(qb_nrules_t *rs) {
    if (!rs) return;
    for (size_t i = 0; i < rs->n; i++) qb_nrule_free_targets(&rs->v[i]);
    free(rs->v);
    free(rs);
}

static int qb_nstarts(const char *s, const char *p) {
    size_t n = strlen(p);
    return strlen(s) >= n && memcmp(s, p, n) == 0;
}

qb_err_t qb_nrule_add_target(qb_nrule_t *r, qb_nchan_t ch, const char *address,
                             const char *secret, char *errstr, size_t errstr_size) {
    size_t i = r->ntargets;
    if (i >= QB_NTARGETS_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "targets: at most %d",
                          QB_NTARGETS_MAX);
    if (ch <= QB_NCHAN_NONE || ch >= QB_NCHAN__COUNT)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "targets[%zu].channel: unknown (%d)",
                          i, (int)ch);
    const char *a = address ? address : "";
    size_t al = strlen(a);
    if (al > QB_NADDR_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "targets[%zu].address: longer than %d", i, QB_NADDR_MAX);
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "targets[%zu].address: control character", i);
    int ok = 1;
    const char *want = "";
    switch (ch) {
    case QB_NCHAN_WEBHOOK:
    case QB_NCHAN_SLACK:
        ok = (qb_nstarts(a, "http://") && al > 7) || (qb_nstarts(a, "https://") && al > 8);
        ok = ok && !strchr(a, ' ');
        want = "an http:// or https:// URL";
        break;
    case QB_NCHAN_TELEGRAM:
        if (a[0] == '@') {
            ok = al > 1;
        } else {
            ok = al > 0;
            for (const char *p = a[0] == '-' ? a + 1 : a; *p; p++)
                if (*p < '0' || *p > '9') ok = 0;
            ok = ok && strcmp(a, "-") != 0;
        }
        want = "a chat id (digits, '-' prefix for groups) or @channel";
        break;
    case QB_NCHAN_EMAIL: {
        const char *at = strchr(a, '@');
        ok = at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, " <>,;\"");
        want = "an e-mail address";
        break;
    }
    case QB_NCHAN_IN_APP: ok = al <= QB_NRULE_OWNER_MAX; want = "a user name"; break;
    default: break;
    }
    if (!ok)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "targets[%zu].address: '%.60s%s' is not %s", i,
                          ch == QB_NCHAN_SLACK ? "(hidden)" : a,
                          ch != QB_NCHAN_SLACK && al > 60 ? "..." : "", want);
    if (secret && *secret && ch != QB_NCHAN_WEBHOOK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "targets[%zu].secret: only webhook targets take a secret", i);
    if (secret && strlen(secret) > QB_NSECRET_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "targets[%zu].secret: longer than %d", i, QB_NSECRET_MAX);
    qb_ntarget_t *t = &r->targets[i];
    t->channel = ch;
    t->address = strdup(a);
    t->secret = secret && *secret ? strdup(secret) : NULL;
    if (!t->address || (secret && *secret && !t->secret)) {
        free(t->address);
        free(t->secret);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "out of memory");
    }
    r->ntargets++;
    return QB_OK;
}

int qb_nquiet_parse(const char *s) {
    if (!s || strlen(s) != 5 || s[2] != ':') return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59) return -1;
    return h * 60 + m;
}

static int qb_nid_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == ':' || *p == '-'))
            return 0;
    return 1;
}

qb_err_t qb_nrule_validate(qb_nrule_t *r, char *errstr, size_t errstr_size) {
    if (!qb_nid_ok(r->id, QB_NRULE_ID_MAX))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.rule_id: '%.100s' must be 1-%d of letters, digits, '_', "
                          "'.', ':', '-'", r->id, QB_NRULE_ID_MAX);
    if (!r->owner[0])
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.user: required (or Command.issued_by)");
    if (r->cond <= QB_NCOND_NONE || r->cond >= QB_NCOND__COUNT)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.condition: unknown or unset (%d)", (int)r->cond);
    if ((r->cond == QB_NCOND_PRICE_ABOVE || r->cond == QB_NCOND_PRICE_BELOW)) {
        if (!r->symbol[0])
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "alert_rule.symbol: required for %s", qb_ncond_name(r->cond));
        if (r->threshold <= 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "alert_rule.threshold: must be > 0 (fixed-point 1e-8)");
    }
    if (r->cond == QB_NCOND_PRICE_MOVE) {
        if (!(r->move_pct > 0) || !isfinite(r->move_pct) || r->move_pct > 1e6)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "alert_rule.move_pct: must be > 0 (percent)");
        if (r->window_ns <= 0 || r->window_ns > 366LL * 86400 * QB_NS_PER_SEC)
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "alert_rule.window: must be > 0 ns and at most a year");
    }
    if (r->min_confidence < 0 || r->min_confidence > 1 || !isfinite(r->min_confidence))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.min_confidence: must be between 0 and 1");
    if (r->cooldown_ns < 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.cooldown: must be >= 0");
    if (r->ntargets == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.targets: at least one required");
    if ((r->quiet_start < 0) != (r->quiet_end < 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                          "alert_rule.quiet_start / quiet_end: both \"HH:MM\" or neither");
    if (!r->time_zone[0]) snprintf(r->time_zone, sizeof r->time_zone, "UTC");
    char msg[256];
    if (qb_tz_get(r->time_zone, &r->tz, msg, sizeof msg) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "alert_rule.time_zone: %s", msg);
    return QB_OK;
}

qb_time_t qb_nrule_quiet_until(const qb_nrule_t *r, qb_time_t now) {
    if (r->quiet_start < 0 || r->quiet_end < 0 || r->quiet_start == r->quiet_end) return 0;
    const qb_tz_t *tz = r->tz;
    if (!tz && qb_tz_get(r->time_zone[0] ? r->time_zone : "UTC", &tz, NULL, 0) != QB_OK) return 0;
    qb_tz_local_t loc;
    if (qb_tz_to_local(tz, now, &loc) != QB_OK) return 0;
    int m = loc.civil.hour * 60 + loc.civil.min;
    int s = r->quiet_start, e = r->quiet_end;
    int inside = s < e ? (m >= s && m < e) : (m >= s || m < e);
    if (!inside) return 0;
    /* The end: today at e, or tomorrow when it spans midnight and we are
     * before midnight. Local dates are civil arithmetic on days. */
    int64_t days = qb_time_days_from_civil(loc.civil.year, loc.civil.month, loc.civil.day);
    if (s > e && m >= s) days++;
    qb_civil_t c;
    memset(&c, 0, sizeof c);
    qb_time_civil_from_days(days, &c.year, &c.month, &c.day);
    c.hour = e / 60;
    c.min = e % 60;
    qb_time_t end = 0;
    if (qb_tz_from_local(tz, &c, QB_TZ_COMPATIBLE, &end, NULL, 0) != QB_OK) return 0;
    return end > now ? end : 0;
}

/* ---- a small string-keyed hash table --------------------------------------- */

typedef struct qb_nhent_s {
    struct qb_nhent_s *next;
    uint64_t h;
    char *key;
    void *val;
} qb_nhent_t;

typedef struct qb_nhash_s {
    qb_nhent_t **b;
    size_t nb, n;
} qb_nhash_t;

static uint64_t qb_nfnv(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = a; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *p = b ? b : ""; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* Key is "a\x1fb". */
static char *qb_nhkey(const char *a, const char *b) {
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *k = malloc(la + lb + 2);
    if (!k) return NULL;
    memcpy(k, a, la);
    k[la] = 0x1f;
    if (lb) memcpy(k + la + 1, b, lb);
    k[la + 1 + lb] = '\0';
    return k;
}

static int qb_nhkey_eq(const char *k, const char *a, const char *b) {
    size_t la = strlen(a);
    if (strncmp(k, a, la) != 0 || k[la] != 0x1f) return 0;
    return strcmp(k + la + 1, b ? b : "") == 0;
}

static void *qb_nhash_get(const qb_nhash_t *t, const char *a, const char *b) {
    if (!t->nb) return NULL;
    uint64_t h = qb_nfnv(a, b);
    for (qb_nhent_t *e = t->b[h % t->nb]; e; e = e->next)
        if (e->h == h && qb_nhkey_eq(e->key, a, b)) return e->val;
    return NULL;
}

static int qb_nhash_put(qb_nhash_t *t, const char *a, const char *b, void *val) {
    if (t->n + 1 > t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        qb_nhent_t **nbk = calloc(nb, sizeof *nbk);
        if (!nbk) return -1;
        for (size_t i = 0; i < t->nb; i++)
            for (qb_nhent_t *e = t->b[i], *nx; e; e = nx) {
                nx = e->next;
                e->next = nbk[e->h % nb];
                nbk[e->h % nb] = e;
            }
        free(t->b);
        t->b = nbk;
        t->nb = nb;
    }
    qb_nhent_t *e = malloc(sizeof *e);
    if (!e) return -1;
    if (!(e->key = qb_nhkey(a, b))) {
        free(e);
        return -1;
    }
    e->h = qb_nfnv(a, b);
    e->val = val;
    e->next = t->b[e->h % t->nb];
    t->b[e->h % t->nb] = e;
    t->n++;
    return 0;
}

/* Remove entries for which drop(val) says so; free_val frees each value. */
typedef int (*qb_nhash_drop_fn)(void *ctx, const char *key, void *val);
static int qb_nhash_filter(qb_nhash_t *t, qb_nhash_drop_fn drop, void *ctx,
                           void (*free_val)(void *)) {
    int n = 0;
    for (size_t i = 0; i < t->nb; i++) {
        qb_nhent_t **pp = &t->b[i];
        while (*pp) {
            qb_nhent_t *e = *pp;
            if (!drop || drop(ctx, e->key, e->val)) {
                *pp = e->next;
                if (free_val) free_val(e->val);
                free(e->key);
                free(e);
                t->n--;
                n++;
            } else {
                pp = &e->next;
            }
        }
    }
    return n;
}

static void qb_nhash_free(qb_nhash_t *t, void (*free_val)(void *)) {
    qb_nhash_filter(t, NULL, NULL, free_val);
    free(t->b);
    t->b = NULL;
    t->nb = 0;
}

/* ---- evaluator ------------------------------------------------------------------- */

typedef struct qb_npt_s {
    qb_time_t ts;
    int64_t close;
} qb_npt_t;

typedef struct qb_nseries_s {
    char symbol[33];
    char timeframe[9];
    qb_npt_t *h; /* h[start .. n) valid, oldest first */
    size_t start, n, cap;
} qb_nseries_t;

typedef struct qb_nidx_s {
    size_t *v;
    size_t n, cap;
} qb_nidx_t;

struct qb_neval_s {
    qb_nrules_t *rules;
    qb_nhash_t series;      /* symbol/tf -> qb_nseries_t */
    qb_nhash_t price_by_sym;/* symbol/"" -> qb_nidx_t of price rules */
    qb_nidx_t price_any;    /* price rules without a symbol */
    qb_nidx_t by_cond[QB_NCOND__COUNT];
    int64_t max_window;
};

#define QB_NSERIES_MAX_POINTS 200000

static int qb_nidx_push(qb_nidx_t *x, size_t i) {
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 8;
        size_t *v = realloc(x->v, nc * sizeof *v);
        if (!v) return -1;
        x->v = v;
        x->cap = nc;
    }
    x->v[x->n++] = i;
    return 0;
}

static void qb_nidx_free(void *p) {
    qb_nidx_t *x = p;
    if (!x) return;
    free(x->v);
    free(x);
}

static void qb_nseries_free(void *p) {
    qb_nseries_t *s = p;
    if (!s) return;
    free(s->h);
    free(s);
}

qb_neval_t *qb_neval_new(void) {
    qb_neval_t *ev = calloc(1, sizeof *ev);
    if (ev && !(ev->rules = qb_nrules_new())) {
        free(ev);
        return NULL;
    }
    return ev;
}

static void qb_neval_clear_index(qb_neval_t *ev) {
    qb_nhash_free(&ev->price_by_sym, qb_nidx_free);
    free(ev->price_any.v);
    memset(&ev->price_any, 0, sizeof ev->price_any);
    for (int i = 0; i < QB_NCOND__COUNT; i++) {
        free(ev->by_cond[i].v);
        memset(&ev->by_cond[i], 0, sizeof ev->by_cond[i]);
    }
    ev->max_window = 0;
}

void qb_neval_destroy(qb_neval_t *ev) {
    if (!ev) return;
    qb_neval_clear_index(ev);
    qb_nhash_free(&ev->series, qb_nseries_free);
    qb_nrules_destroy(ev->rules);
    free(ev);
}

void qb_neval_set_rules(qb_neval_t *ev, qb_nrules_t *rules) {
    /* Keep the later last_fired of a rule the evaluator already had. */
    for (size_t i = 0; i < rules->n; i++)
        for (size_t j = 0; j < ev->rules->n; j++)
            if (strcmp(rules->v[i].id, ev->rules->v[j].id) == 0) {
                if (ev->rules->v[j].last_fired > rules->v[i].last_fired)
                    rules->v[i].last_fired = ev->rules->v[j].last_fired;
                break;
            }
    qb_neval_clear_index(ev);
    qb_nrules_destroy(ev->rules);
    ev->rules = rules;
    for (size_t i = 0; i < rules->n; i++) {
        const qb_nrule_t *r = &rules->v[i];
        if (!r->enabled) continue;
        if (qb_ncond_is_price(r->cond)) {
            if (r->cond == QB_NCOND_PRICE_MOVE && r->window_ns > ev->max_window)
                ev->max_window = r->window_ns;
            if (!r->symbol[0]) {
                (void)qb_nidx_push(&ev->price_any, i);
                continue;
            }
            qb_nidx_t *x = qb_nhash_get(&ev->price_by_sym, r->symbol, "");
            if (!x) {
                if (!(x = calloc(1, sizeof *x))) continue;
                if (qb_nhash_put(&ev->price_by_sym, r->symbol, "", x) != 0) {
                    free(x);
                    continue;
                }
            }
            (void)qb_nidx_push(x, i);
        } else if (r->cond > 0 && r->cond < QB_NCOND__COUNT) {
            (void)qb_nidx_push(&ev->by_cond[r->cond], i);
        }
    }
}

const qb_nrules_t *qb_neval_rules(const qb_neval_t *ev) { return ev->rules; }

int64_t qb_neval_max_window(const qb_neval_t *ev) { return ev->max_window; }

int qb_neval_watches(const qb_neval_t *ev, const char *symbol) {
    return ev->price_any.n > 0 || qb_nhash_get(&ev->price_by_sym, symbol ? symbol : "", "") != NULL;
}

int qb_neval_has_series(const qb_neval_t *ev, const char *symbol, const char *timeframe) {
    return qb_nhash_get(&ev->series, symbol, timeframe) != NULL;
}

static qb_nseries_t *qb_neval_series(qb_neval_t *ev, const char *symbol, const char *tf) {
    qb_nseries_t *s = qb_nhash_get(&ev->series, symbol, tf);
    if (s) return s;
    if (!(s = calloc(1, sizeof *s))) return NULL;
    snprintf(s->symbol, sizeof s->symbol, "%s", symbol);
    snprintf(s->timeframe, sizeof s->timeframe, "%s", tf);
    if (qb_nhash_put(&ev->series, symbol, tf, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Append a bar and drop what no rule needs: keep the newest bar with
 * ts <= newest - max_window (the next bar's previous bar needs it) and all
 * after it. */
static void qb_nseries_push(qb_nseries_t *s, qb_time_t ts, int64_t close, int64_t max_window) {
    if (s->start > 0 && s->start >= s->n / 2) {
        memmove(s->h, s->h + s->start, (s->n - s->start) * sizeof *s->h);
        s->n -= s->start;
        s->start = 0;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        qb_npt_t *h = realloc(s->h, nc * sizeof *h);
        if (!h) return; /* the history stays as it was: the bar is lost to it */
        s->h = h;
        s->cap = nc;
    }
    s->h[s->n].ts = ts;
    s->h[s->n].close = close;
    s->n++;
    qb_time_t cut = ts - max_window;
    while (s->n - s->start >= 2 && s->h[s->start + 1].ts <= cut) s->start++;
    while (s->n - s->start > QB_NSERIES_MAX_POINTS) s->start++;
}

/* The newest point of h[start .. end) with ts <= t, or NULL. */
static const qb_npt_t *qb_nseries_at(const qb_nseries_t *s, size_t end, qb_time_t t) {
    size_t lo = s->start, hi = end; /* answer in [lo, hi) */
    if (lo >= hi || s->h[lo].ts > t) return NULL;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->h[mid].ts <= t) lo = mid;
        else hi = mid;
    }
    return &s->h[lo];
}

void qb_neval_warm(qb_neval_t *ev, const char *symbol, const char *timeframe, qb_time_t ts,
                   int64_t close) {
    qb_nseries_t *s = qb_neval_series(ev, symbol, timeframe);
    if (!s) return;
    if (s->n > s->start && ts <= s->h[s->n - 1].ts) return;
    qb_nseries_push(s, ts, close, ev->max_window);
}

static int qb_nstr_is(const char *want, const char *have) {
    return !want[0] || strcmp(want, have ? have : "") == 0;
}

/* Throttle, then fire. Returns 1 when fired. */
static int qb_neval_try(qb_nrule_t *r, qb_nfire_t *f, qb_neval_fire_cb fire, void *opaque,
                        int *throttled) {
    qb_time_t t = f->ev->time;
    if (r->cooldown_ns > 0 && r->last_fired && t - r->last_fired < r->cooldown_ns) {
        if (throttled) (*throttled)++;
        return 0;
    }
    r->last_fired = t;
    f->rule = r;
    if (fire) fire(opaque, f);
    return 1;
}

static double qb_nmove(int64_t close, int64_t ref) {
    return ref > 0 ? ((double)close / (double)ref - 1.0) * 100.0 : 0.0;
}

static int qb_neval_price_rule(qb_neval_t *ev, qb_nrule_t *r, const qb_nseries_t *s,
                               const qb_nevent_t *e, qb_neval_fire_cb fire, void *opaque,
                               int *throttled) {
    if (!qb_nstr_is(r->timeframe, e->timeframe)) return 0;
    size_t end = s->n; /* history before this bar */
    if (end <= s->start) return 0;
    const qb_npt_t *prev = &s->h[end - 1];
    qb_nfire_t f = {.ev = e, .prev_close = prev->close};
    switch (r->cond) {
    case QB_NCOND_PRICE_ABOVE:
        if (!(prev->close <= r->threshold && e->close > r->threshold)) return 0;
        break;
    case QB_NCOND_PRICE_BELOW:
        if (!(prev->close >= r->threshold && e->close < r->threshold)) return 0;
        break;
    case QB_NCOND_PRICE_MOVE: {
        const qb_npt_t *ref = qb_nseries_at(s, end, e->time - r->window_ns);
        if (!ref) return 0;
        double mv = qb_nmove(e->close, ref->close);
        if (fabs(mv) < r->move_pct) return 0;
        const qb_npt_t *pref = qb_nseries_at(s, end - 1, prev->ts - r->window_ns);
        if (pref && fabs(qb_nmove(prev->close, pref->close)) >= r->move_pct) return 0;
        f.ref_close = ref->close;
        f.move_pct = mv;
        break;
    }
    default: return 0;
    }
    (void)ev;
    return qb_neval_try(r, &f, fire, opaque, throttled);
}

int qb_neval_event(qb_neval_t *ev, const qb_nevent_t *e, qb_neval_fire_cb fire, void *opaque,
                   int *throttled) {
    int fired = 0;
    if (throttled) *throttled = 0;
    if (e->kind == QB_NEV_BAR) {
        const char *sym = e->symbol ? e->symbol : "";
        const char *tf = e->timeframe ? e->timeframe : "";
        qb_nseries_t *s = qb_neval_series(ev, sym, tf);
        if (!s) return 0;
        if (s->n > s->start && e->time <= s->h[s->n - 1].ts) return 0; /* re-delivered */
        const qb_nidx_t *x = qb_nhash_get(&ev->price_by_sym, sym, "");
        for (size_t i = 0; x && i < x->n; i++)
            fired += qb_neval_price_rule(ev, &ev->rules->v[x->v[i]], s, e, fire, opaque,
                                         throttled);
        for (size_t i = 0; i < ev->price_any.n; i++)
            fired += qb_neval_price_rule(ev, &ev->rules->v[ev->price_any.v[i]], s, e, fire,
                                         opaque, throttled);
        qb_nseries_push(s, e->time, e->close, ev->max_window);
        return fired;
    }
    qb_ncond_t conds[2];
    int nc = 0;
    switch (e->kind) {
    case QB_NEV_SIGNAL: conds[nc++] = QB_NCOND_SIGNAL; break;
    case QB_NEV_EXEC:
        if (e->is_fill) conds[nc++] = QB_NCOND_ORDER_FILLED;
        if (e->is_reject) conds[nc++] = QB_NCOND_ORDER_REJECTED;
        break;
    case QB_NEV_RISK: conds[nc++] = QB_NCOND_RISK_EVENT; break;
    case QB_NEV_BACKTEST:
        if (e->bt_done) conds[nc++] = QB_NCOND_BACKTEST_DONE;
        break;
    default: break;
    }
    for (int c = 0; c < nc; c++) {
        const qb_nidx_t *x = &ev->by_cond[conds[c]];
        for (size_t i = 0; i < x->n; i++) {
            qb_nrule_t *r = &ev->rules->v[x->v[i]];
            /* An event for every account (empty) reaches every rule. */
            if (r->account[0] && e->account && e->account[0] && strcmp(r->account, e->account))
                continue;
            if (e->kind != QB_NEV_BACKTEST) {
                if (!qb_nstr_is(r->symbol, e->symbol)) continue;
                if (!qb_nstr_is(r->strategy_id, e->strategy_id)) continue;
            }
            if (e->kind == QB_NEV_SIGNAL && e->confidence < r->min_confidence) continue;
            qb_nfire_t f = {.ev = e};
            fired += qb_neval_try(r, &f, fire, opaque, throttled);
        }
    }
    return fired;
}

typedef struct qb_ndrop_ctx_s {
    qb_neval_series_pred pred;
    void *opaque;
} qb_ndrop_ctx_t;

static int qb_neval_drop_fn(void *ctx, const char *key, void *val) {
    (void)key;
    qb_ndrop_ctx_t *c = ctx;
    const qb_nseries_t *s = val;
    return c->pred(c->opaque, s->symbol, s->timeframe);
}

int qb_neval_drop_series(qb_neval_t *ev, qb_neval_series_pred pred, void *opaque) {
    qb_ndrop_ctx_t c = {pred, opaque};
    return qb_nhash_filter(&ev->series, qb_neval_drop_fn, &c, qb_nseries_free);
}

/* ---- templates ---------------------------------------------------------------- */

const char *qb_nfire_kind(const qb_nfire_t *f) { return qb_ncond_name(f->rule->cond); }

size_t qb_ntmpl_price(int64_t v, char *buf, size_t cap) {
    char tmp[48];
    qb_dec_format_fixed(v, 8, tmp, sizeof tmp);
    char *dot = strchr(tmp, '.');
    if (dot) {
        char *end = tmp + strlen(tmp);
        while (end > dot + 3 && end[-1] == '0') *--end = '\0';
    }
    return (size_t)snprintf(buf, cap, "%s", tmp);
}

static void qb_ntmpl_time(qb_time_t t, char *buf, size_t cap) {
    qb_civil_t c;
    qb_time_to_civil(t, &c);
    snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d UTC", c.year, c.month, c.day, c.hour, c.min);
}

static void qb_ntmpl_window(int64_t ns, char *buf, size_t cap) {
    int64_t s = ns / QB_NS_PER_SEC;
    if (s > 0 && s % 86400 == 0) snprintf(buf, cap, "%" PRId64 "d", s / 86400);
    else if (s > 0 && s % 3600 == 0) snprintf(buf, cap, "%" PRId64 "h", s / 3600);
    else if (s > 0 && s % 60 == 0) snprintf(buf, cap, "%" PRId64 "m", s / 60);
    else snprintf(buf, cap, "%" PRId64 "s", s);
}

static const char *qb_nz(const char *s) { return s ? s : ""; }

void qb_ntmpl_render(const qb_nfire_t *f, char *title, size_t title_size, char *text,
                     size_t text_size) {
    const qb_nrule_t *r = f->rule;
    const qb_nevent_t *e = f->ev;
    char a[48], b[48], c[48], when[40], deftitle[QB_NTITLE_MAX];
    qb_ntmpl_time(e->time, when, sizeof when);
    const char *sym = qb_nz(e->symbol);
    switch (r->cond) {
    case QB_NCOND_PRICE_ABOVE:
    case QB_NCOND_PRICE_BELOW: {
        const char *dir = r->cond == QB_NCOND_PRICE_ABOVE ? "above" : "below";
        qb_ntmpl_price(r->threshold, a, sizeof a);
        qb_ntmpl_price(e->close, b, sizeof b);
        qb_ntmpl_price(f->prev_close, c, sizeof c);
        snprintf(deftitle, sizeof deftitle, "%s %s %s", sym, dir, a);
        snprintf(text, text_size, "%s crossed %s %s: close %s (previous %s), %s bar of %s.", sym,
                 dir, a, b, c, qb_nz(e->timeframe), when);
        break;
    }
    case QB_NCOND_PRICE_MOVE: {
        char w[24];
        qb_ntmpl_window(r->window_ns, w, sizeof w);
        qb_ntmpl_price(f->ref_close, a, sizeof a);
        qb_ntmpl_price(e->close, b, sizeof b);
        snprintf(deftitle, sizeof deftitle, "%s %+.2f%% in %s", sym, f->move_pct, w);
        snprintf(text, text_size, "%s moved %+.2f%% in %s: %s -> %s, %s bar of %s.", sym,
                 f->move_pct, w, a, b, qb_nz(e->timeframe), when);
        break;
    }
    case QB_NCOND_SIGNAL:
        qb_ntmpl_price(e->price, a, sizeof a);
        snprintf(deftitle, sizeof deftitle, "Signal %s %s", qb_nz(e->direction), sym);
        snprintf(text, text_size, "%s: %s %s %s at %s (confidence %.2f)%s%s. Account %s, %s.",
                 qb_nz(e->strategy_id), qb_nz(e->direction), sym, qb_nz(e->timeframe), a,
                 e->confidence, e->reason && *e->reason ? ": " : "", qb_nz(e->reason),
                 qb_nz(e->account), when);
        break;
    case QB_NCOND_ORDER_FILLED: {
        qb_ntmpl_price(e->qty, a, sizeof a);
        qb_ntmpl_price(e->price, b, sizeof b);
        int partial = e->order_qty > 0 && e->cum_qty < e->order_qty;
        snprintf(deftitle, sizeof deftitle, "%s %s %s %s @ %s", partial ? "Partly filled" : "Filled",
                 qb_nz(e->side), a, sym, b);
        qb_ntmpl_price(e->cum_qty, c, sizeof c);
        char oq[48];
        qb_ntmpl_price(e->order_qty, oq, sizeof oq);
        snprintf(text, text_size, "%s %s %s @ %s (%s of %s filled), order %s, account %s, %s.",
                 partial ? "Partly filled" : "Filled", qb_nz(e->side), a, b, c, oq,
                 qb_nz(e->order_id), qb_nz(e->account), when);
        break;
    }
    case QB_NCOND_ORDER_REJECTED:
        qb_ntmpl_price(e->qty, a, sizeof a);
        snprintf(deftitle, sizeof deftitle, "Rejected %s %s %s", qb_nz(e->side), a, sym);
        snprintf(text, text_size, "Order %s (%s %s %s) rejected%s%s. Account %s, %s.",
                 qb_nz(e->order_id), qb_nz(e->side), a, sym, e->message && *e->message ? ": " : "",
                 qb_nz(e->message), qb_nz(e->account), when);
        break;
    case QB_NCOND_RISK_EVENT:
        snprintf(deftitle, sizeof deftitle, "Risk %s: %s", qb_nz(e->severity), qb_nz(e->risk_kind));
        snprintf(text, text_size, "%s %s on %s%s%s. %s.", qb_nz(e->severity), qb_nz(e->risk_kind),
                 e->account && *e->account ? e->account : "all accounts",
                 e->message && *e->message ? ": " : "", qb_nz(e->message), when);
        break;
    case QB_NCOND_BACKTEST_DONE:
        if (e->bt_failed) {
            snprintf(deftitle, sizeof deftitle, "Backtest failed");
            snprintf(text, text_size, "Backtest %s failed: %s. %s.", qb_nz(e->run_id),
                     e->message && *e->message ? e->message : "no reason given", when);
        } else {
            snprintf(deftitle, sizeof deftitle, "Backtest finished: %+.2f%%", e->bt_return * 100);
            snprintf(text, text_size,
                     "Backtest %s finished: return %+.2f%%, Sharpe %.2f, max drawdown %.2f%%, "
                     "%u trades. %s.",
                     qb_nz(e->run_id), e->bt_return * 100, e->bt_sharpe, e->bt_max_dd * 100,
                     (unsigned)e->bt_trades, when);
        }
        break;
    default:
        snprintf(deftitle, sizeof deftitle, "Alert");
        snprintf(text, text_size, "Event %s, %s.", qb_nz(e->event_id), when);
        break;
    }
    snprintf(title, title_size, "%s", r->name[0] ? r->name : deftitle);
}
