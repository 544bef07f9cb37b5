/* rk_stats.c — price history of symbols for sizing, correlations and the
 * portfolio risk snapshot. The history is the newest N bars of the stats
 * timeframe in md.bars (read-only: qb-data owns it), cached per symbol and
 * re-read when older than the refresh period; so every replica computes
 * the same figures from the same stored bars. See rk.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_log.h"
#include "core/qb_time.h"
#include "rk.h"
#include "risk/qb_risk_var.h"
#include "ta/qb_ta.h"

typedef struct rk_hist_s {
    char symbol[QB_SYMBOL_MAX + 1];
    qb_time_t loaded_at;        /* monotonic ns; 0 = never */
    size_t n;
    int64_t *ts;                /* ascending */
    double *high, *low, *close;
    qb_dec_t atr;
    double ann_vol;
    int meta_loaded;
    char sector[64], asset_class[16];
    struct rk_hist_s *next;
} rk_hist_t;

#define RK_HBUCKETS 1024
struct rk_stats_s {
    char timeframe[QB_TIMEFRAME_MAX + 1];
    int bars, refresh_s;
    double per_year;
    rk_hist_t *b[RK_HBUCKETS];
};

rk_stats_t *rk_stats_new(const char *timeframe, int bars, int refresh_s) {
    rk_stats_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    snprintf(st->timeframe, sizeof st->timeframe, "%s", timeframe);
    st->bars = bars;
    st->refresh_s = refresh_s;
    int64_t tf = 86400LL * 1000000000LL;
    (void)qb_timeframe_parse(timeframe, &tf);
    double day = 86400e9;
    st->per_year = (double)tf >= day ? 252.0 * day / (double)tf : 252.0 * 6.5 * 3600e9 / (double)tf;
    return st;
}

static void hist_free_arrays(rk_hist_t *h) {
    free(h->ts);
    free(h->high);
    free(h->low);
    free(h->close);
    h->ts = NULL;
    h->high = h->low = h->close = NULL;
    h->n = 0;
}

void rk_stats_free(rk_stats_t *st) {
    if (!st) return;
    for (int i = 0; i < RK_HBUCKETS; i++)
        for (rk_hist_t *h = st->b[i], *nx; h; h = nx) {
            nx = h->next;
            hist_free_arrays(h);
            free(h);
        }
    free(st);
}

static rk_hist_t *hist_get(rk_stats_t *st, const char *symbol) {
    uint64_t k = rk_hash(symbol) % RK_HBUCKETS;
    for (rk_hist_t *h = st->b[k]; h; h = h->next)
        if (strcmp(h->symbol, symbol) == 0) return h;
    rk_hist_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    snprintf(h->symbol, sizeof h->symbol, "%s", symbol);
    h->ann_vol = NAN;
    h->next = st->b[k];
    st->b[k] = h;
    return h;
}

static qb_err_t hist_load(rk_stats_t *st, qb_store_t *s, rk_hist_t *h, char *errstr,
                          size_t errstr_size) {
    qb_time_t now = qb_time_mono_ns();
    if (h->loaded_at && now - h->loaded_at < (int64_t)st->refresh_s * 1000000000LL) return QB_OK;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", st->bars);
    const char *p[3] = {h->symbol, st->timeframe, lim};
    PGresult *r = NULL;
    qb_err_t e = qb_store_query(
        s,
        "SELECT (extract(epoch FROM b.ts) * 1000000)::bigint, b.high, b.low, b.close"
        " FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol = $1 AND"
        " b.timeframe = $2 ORDER BY b.ts DESC LIMIT $3::bigint",
        3, p, &r, errstr, errstr_size);
    if (e) return e;
    hist_free_arrays(h);
    size_t n = (size_t)PQntuples(r);
    if (n) {
        h->ts = malloc(n * sizeof *h->ts);
        h->high = malloc(n * sizeof(double));
        h->low = malloc(n * sizeof(double));
        h->close = malloc(n * sizeof(double));
        if (!h->ts || !h->high || !h->low || !h->close) {
            hist_free_arrays(h);
            PQclear(r);
            return QB_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            size_t j = n - 1 - i; /* oldest first */
            h->ts[j] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
            h->high[j] = (double)strtoll(PQgetvalue(r, (int)i, 1), NULL, 10) / 1e8;
            h->low[j] = (double)strtoll(PQgetvalue(r, (int)i, 2), NULL, 10) / 1e8;
            h->close[j] = (double)strtoll(PQgetvalue(r, (int)i, 3), NULL, 10) / 1e8;
        }
        h->n = n;
    }
    PQclear(r);
    h->loaded_at = now ? now : 1;
    /* ATR(14), Wilder, libs/ta */
    h->atr = 0;
    h->ann_vol = NAN;
    if (n > 15) {
        double *out = malloc(n * sizeof *out);
        qb_ta_series_t in;
        memset(&in, 0, sizeof in);
        in.high = h->high;
        in.low = h->low;
        in.close = h->close;
        in.open = h->close;
        if (out && qb_ta_batch_spec("atr:14", &in, n, &out, NULL, 0) == QB_OK &&
            isfinite(out[n - 1]))
            (void)qb_dec_from_double(out[n - 1], &h->atr, QB_ROUND_HALF_EVEN);
        free(out);
    }
    if (n > 2) {
        double *ret = malloc((n - 1) * sizeof *ret), m, sd;
        if (ret) {
            for (size_t i = 1; i < n; i++) ret[i - 1] = h->close[i] / h->close[i - 1] - 1;
            qb_risk_mean_sd(ret, n - 1, &m, &sd);
            h->ann_vol = sd > 0 ? sd * sqrt(st->per_year) : NAN;
            free(ret);
        }
    }
    return QB_OK;
}

qb_err_t rk_stats_symbol(rk_stats_t *st, qb_store_t *s, const char *symbol, qb_dec_t *atr,
                         double *ann_vol, char *errstr, size_t errstr_size) {
    *atr = 0;
    *ann_vol = NAN;
    rk_hist_t *h = hist_get(st, symbol);
    if (!h) return QB_ERR_NOMEM;
    qb_err_t e = hist_load(st, s, h, errstr, errstr_size);
    if (e) return e;
    *atr = h->atr;
    *ann_vol = h->ann_vol;
    return QB_OK;
}

/* Returns of a and b over their common bar times (both ascending). */
static size_t aligned(const rk_hist_t *a, const rk_hist_t *b, double *x, double *y) {
    size_t i = 0, j = 0, m = 0;
    double pa = NAN, pb = NAN;
    while (i < a->n && j < b->n) {
        if (a->ts[i] < b->ts[j]) i++;
        else if (a->ts[i] > b->ts[j]) j++;
        else {
            if (isfinite(pa)) {
                x[m] = a->close[i] / pa - 1;
                y[m] = b->close[j] / pb - 1;
                m++;
            }
            pa = a->close[i];
            pb = b->close[j];
            i++;
            j++;
        }
    }
    return m;
}

double rk_stats_corr(rk_stats_t *st, qb_store_t *s, const char *a, const char *b) {
    rk_hist_t *ha = hist_get(st, a), *hb = hist_get(st, b);
    char err[256];
    if (!ha || !hb || hist_load(st, s, ha, err, sizeof err) || hist_load(st, s, hb, err, sizeof err))
        return NAN;
    size_t cap = ha->n < hb->n ? ha->n : hb->n;
    if (cap < 4) return NAN;
    double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
    double r = NAN;
    if (x && y) {
        size_t m = aligned(ha, hb, x, y);
        if (m >= 20) r = qb_risk_corr(x, y, m); /* too few common periods: unknown */
    }
    free(x);
    free(y);
    return r;
}

void rk_stats_meta(rk_stats_t *st, qb_store_t *s, const char *symbol, const char **sector,
                   const char **asset_class) {
    rk_hist_t *h = hist_get(st, symbol);
    *sector = *asset_class = "";
    if (!h) return;
    if (!h->meta_loaded) {
        const char *p[1] = {symbol};
        PGresult *r = NULL;
        char err[256];
        if (qb_store_query(s,
                           "SELECT coalesce(metadata->>'sector', ''), asset_class FROM md.assets"
                           " WHERE symbol = $1",
                           1, p, &r, err, sizeof err) == QB_OK) {
            if (PQntuples(r) == 1) {
                snprintf(h->sector, sizeof h->sector, "%s", PQgetvalue(r, 0, 0));
                snprintf(h->asset_class, sizeof h->asset_class, "%s", PQgetvalue(r, 0, 1));
            }
            PQclear(r);
            h->meta_loaded = 1;
        }
    }
    *sector = h->sector;
    *asset_class = h->asset_class;
}

/* ---- snapshot ------------------------------------------------------------------- */

void rk_snapshot_clear(Qb__V1__RiskEvent__Snapshot *pb) {
    for (size_t i = 0; i < pb->n_symbols; i++) free(pb->symbols[i]);
    free(pb->symbols);
    free(pb->correlation);
    free(pb->timeframe);
    free(pb->benchmark);
    qb__v1__risk_event__snapshot__init(pb);
}

static int has_ts(const rk_hist_t *h, int64_t t, size_t *at) {
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->ts[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    *at = lo;
    return lo < h->n && h->ts[lo] == t;
}

static void jnum(char **buf, size_t *pos, size_t *cap, const char *name, double v) {
    if (*pos + 64 + strlen(name) > *cap) {
        size_t nc = *cap * 2 + 256;
        char *nb = realloc(*buf, nc);
        if (!nb) return;
        *buf = nb;
        *cap = nc;
    }
    if (isfinite(v))
        *pos += (size_t)snprintf(*buf + *pos, *cap - *pos, "\"%s\":%.10g,", name, v);
    else
        *pos += (size_t)snprintf(*buf + *pos, *cap - *pos, "\"%s\":null,", name);
}

qb_err_t rk_stats_snapshot(rk_stats_t *st, qb_store_t *s, const qb_portfolio_t *pf,
                           const char *benchmark, int mc_sims, Qb__V1__RiskEvent__Snapshot *pb,
                           char **json, char *errstr, size_t errstr_size) {
    qb__v1__risk_event__snapshot__init(pb);
    *json = NULL;
    size_t ns = qb_portfolio_nsymbols(pf), k = 0;
    qb_dec_t equity = qb_portfolio_equity(pf);
    rk_hist_t **hs = calloc(ns + 1, sizeof *hs);
    double *w = calloc(ns + 1, sizeof *w);
    pb->symbols = calloc(ns + 1, sizeof *pb->symbols);
    if (!hs || !w || !pb->symbols) {
        free(hs);
        free(w);
        return QB_ERR_NOMEM;
    }
    qb_dec_t gross = 0;
    qb_err_t e = QB_OK;
    for (uint32_t i = 0; i < ns && !e; i++) {
        qb_dec_t mv = qb_portfolio_market_value(pf, i);
        if (qb_portfolio_qty(pf, i) == 0) continue;
        gross += mv < 0 ? -mv : mv;
        rk_hist_t *h = hist_get(st, qb_portfolio_symbol_name(pf, i));
        if (!h) e = QB_ERR_NOMEM;
        else e = hist_load(st, s, h, errstr, errstr_size);
        if (e) break;
        hs[k] = h;
        w[k] = equity > 0 ? qb_dec_to_double(mv) / qb_dec_to_double(equity) : 0;
        pb->symbols[k] = strdup(h->symbol);
        k++;
    }
    pb->n_symbols = k;
    pb->timeframe = strdup(st->timeframe);
    pb->benchmark = strdup(benchmark ? benchmark : "");
    pb->equity = equity;
    pb->gross_exposure = gross;
    pb->beta = NAN;
    double nan = NAN;
    pb->var_hist_95 = pb->var_hist_99 = pb->cvar_hist_95 = pb->cvar_hist_99 = nan;
    pb->var_param_95 = pb->var_param_99 = pb->cvar_param_95 = pb->cvar_param_99 = nan;
    pb->var_mc_95 = pb->var_mc_99 = pb->cvar_mc_95 = pb->cvar_mc_99 = nan;
    pb->volatility = pb->volatility_annual = nan;
    /* common bar times of every holding: returns matrix */
    double *R = NULL, *rp = NULL, *bm = NULL;
    size_t n = 0;
    if (!e && k > 0 && hs[0]->n > 2) {
        int64_t *common = malloc(hs[0]->n * sizeof *common);
        size_t nc = 0, at;
        for (size_t t = 0; common && t < hs[0]->n; t++) {
            int ok = 1;
            for (size_t i = 1; i < k && ok; i++) ok = has_ts(hs[i], hs[0]->ts[t], &at);
            if (ok) common[nc++] = hs[0]->ts[t];
        }
        if (nc > 2) {
            n = nc - 1;
            R = malloc(n * k * sizeof *R);
            rp = malloc(n * sizeof *rp);
            if (R && rp) {
                for (size_t i = 0; i < k; i++) {
                    double prev = NAN;
                    for (size_t t = 0; t < nc; t++) {
                        (void)has_ts(hs[i], common[t], &at);
                        double c = hs[i]->close[at];
                        if (t) R[(t - 1) * k + i] = c / prev - 1;
                        prev = c;
                    }
                }
                qb_risk_port_returns(R, n, k, w, rp);
                rk_hist_t *hb = benchmark && *benchmark ? hist_get(st, benchmark) : NULL;
                if (hb && hist_load(st, s, hb, errstr, errstr_size) == QB_OK) {
                    bm = malloc(n * sizeof *bm);
                    double prev = NAN;
                    int ok = bm != NULL;
                    for (size_t t = 0; t < nc && ok; t++) {
                        ok = has_ts(hb, common[t], &at);
                        if (ok && t) bm[t - 1] = hb->close[at] / prev - 1;
                        if (ok) prev = hb->close[at];
                    }
                    if (ok) pb->beta = qb_risk_beta(rp, bm, n);
                }
            } else {
                n = 0;
            }
        }
        free(common);
    }
    pb->periods = (uint32_t)n;
    if (n >= 2) {
        double m, sd;
        (void)qb_risk_var_hist(rp, n, 0.95, &pb->var_hist_95, &pb->cvar_hist_95);
        (void)qb_risk_var_hist(rp, n, 0.99, &pb->var_hist_99, &pb->cvar_hist_99);
        (void)qb_risk_var_param(rp, n, 0.95, &pb->var_param_95, &pb->cvar_param_95);
        (void)qb_risk_var_param(rp, n, 0.99, &pb->var_param_99, &pb->cvar_param_99);
        (void)qb_risk_var_mc(R, n, k, w, 0.95, (size_t)mc_sims, 42, &pb->var_mc_95,
                             &pb->cvar_mc_95);
        (void)qb_risk_var_mc(R, n, k, w, 0.99, (size_t)mc_sims, 42, &pb->var_mc_99,
                             &pb->cvar_mc_99);
        qb_risk_mean_sd(rp, n, &m, &sd);
        pb->volatility = sd;
        pb->volatility_annual = sd * sqrt(st->per_year);
        pb->correlation = malloc(k * k * sizeof *pb->correlation);
        if (pb->correlation) {
            qb_risk_corr_matrix(R, n, k, pb->correlation);
            pb->n_correlation = k * k;
        }
    }
    /* JSON of the figures */
    size_t cap = 1024 + k * (QB_SYMBOL_MAX + 8) + k * k * 24, pos = 0;
    char *j = malloc(cap);
    if (j) {
        char eq[QB_DEC_STRLEN], gr[QB_DEC_STRLEN];
        qb_dec_format(equity, eq, sizeof eq);
        qb_dec_format(gross, gr, sizeof gr);
        pos += (size_t)snprintf(j + pos, cap - pos,
                                "{\"timeframe\":\"%s\",\"periods\":%zu,\"equity\":\"%s\","
                                "\"gross_exposure\":\"%s\",\"benchmark\":\"%s\",",
                                st->timeframe, n, eq, gr, pb->benchmark);
        jnum(&j, &pos, &cap, "var_hist_95", pb->var_hist_95);
        jnum(&j, &pos, &cap, "var_hist_99", pb->var_hist_99);
        jnum(&j, &pos, &cap, "cvar_hist_95", pb->cvar_hist_95);
        jnum(&j, &pos, &cap, "cvar_hist_99", pb->cvar_hist_99);
        jnum(&j, &pos, &cap, "var_param_95", pb->var_param_95);
        jnum(&j, &pos, &cap, "var_param_99", pb->var_param_99);
        jnum(&j, &pos, &cap, "cvar_param_95", pb->cvar_param_95);
        jnum(&j, &pos, &cap, "cvar_param_99", pb->cvar_param_99);
        jnum(&j, &pos, &cap, "var_mc_95", pb->var_mc_95);
        jnum(&j, &pos, &cap, "var_mc_99", pb->var_mc_99);
        jnum(&j, &pos, &cap, "cvar_mc_95", pb->cvar_mc_95);
        jnum(&j, &pos, &cap, "cvar_mc_99", pb->cvar_mc_99);
        jnum(&j, &pos, &cap, "volatility", pb->volatility);
        jnum(&j, &pos, &cap, "volatility_annual", pb->volatility_annual);
        jnum(&j, &pos, &cap, "beta", pb->beta);
        pos += (size_t)snprintf(j + pos, cap - pos, "\"symbols\":[");
        for (size_t i = 0; i < k; i++)
            pos += (size_t)snprintf(j + pos, cap - pos, "%s\"%s\"", i ? "," : "", pb->symbols[i]);
        pos += (size_t)snprintf(j + pos, cap - pos, "],\"correlation\":[");
        for (size_t i = 0; i < pb->n_correlation; i++) {
            double c = pb->correlation[i];
            pos += isfinite(c) ? (size_t)snprintf(j + pos, cap - pos, "%s%.6f", i ? "," : "", c)
                               : (size_t)snprintf(j + pos, cap - pos, "%snull", i ? "," : "");
        }
        snprintf(j + pos, cap - pos, "]}");
    }
    *json = j;
    free(hs);
    free(w);
    free(R);
    free(rp);
    free(bm);
    return e ? e : (j ? QB_OK : QB_ERR_NOMEM);
}
