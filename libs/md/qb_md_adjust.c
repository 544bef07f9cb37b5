/* qb_md_adjust.c — adjusted bars computed on read; see qb_md_adjust.h.
 *
 * How qb_md_adjust works: one backward pass over the bars, newest first,
 * with the running split ratio num/den (an exact reduced fraction) and the
 * running dividend factor F (fixed point, 1e18 = 1.0). Before bar i is
 * adjusted, every action with ex-date after bar i's open time that has not
 * been folded in yet is folded in — for a dividend, bar i is then exactly
 * the last bar before the ex-date, so its raw close is the C of
 * f = (C - D) / C. Each output value is one exact integer expression
 * rounded once (adj_muldiv), so results do not depend on the order in which
 * factors were combined (except F's own 1e-18 steps).
 *
 * Owns nothing beyond the calls: actions are sorted on a malloc'd copy that
 * is freed before returning. */
#include "md/qb_md_adjust.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/qb_decimal.h"
#include "core/qb_time.h"

__extension__ typedef unsigned __int128 adj_u128;

#define ADJ_ONE 1000000000000000000ULL /* 1.0 in F's fixed point (1e18) */

const char *qb_md_adjust_mode_name(qb_md_adjust_mode_t mode) {
    switch (mode) {
    case QB_MD_ADJ_RAW: return "raw";
    case QB_MD_ADJ_SPLIT: return "split";
    case QB_MD_ADJ_TOTAL: return "total";
    }
    return "unknown";
}

qb_err_t qb_md_adjust_mode_parse(const char *s, qb_md_adjust_mode_t *out) {
    if (!s || !out) return QB_ERR_PARSE;
    if (strcasecmp(s, "raw") == 0) *out = QB_MD_ADJ_RAW;
    else if (strcasecmp(s, "split") == 0) *out = QB_MD_ADJ_SPLIT;
    else if (strcasecmp(s, "total") == 0) *out = QB_MD_ADJ_TOTAL;
    else return QB_ERR_PARSE;
    return QB_OK;
}

/* ---- integer helpers ------------------------------------------------------- */

static adj_u128 adj_gcd(adj_u128 a, adj_u128 b) {
    while (b) {
        adj_u128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* *out = x * m / d rounded half-even, exactly (x * m may exceed 128 bits:
 * x = q*d + r, so x*m/d = q*m + r*m/d). 0 on success, -1 on overflow. */
static int adj_muldiv(adj_u128 x, adj_u128 m, adj_u128 d, adj_u128 *out) {
    adj_u128 q = x / d, r = x % d, qm, rm, base;
    if (__builtin_mul_overflow(q, m, &qm) || __builtin_mul_overflow(r, m, &rm)) return -1;
    adj_u128 a = rm / d, rem = rm % d;
    if (__builtin_add_overflow(qm, a, &base)) return -1;
    adj_u128 half_up = d - rem; /* rem > d/2  <=>  rem > d - rem */
    if (rem > half_up || (rem == half_up && (base & 1))) {
        if (base == ~(adj_u128)0) return -1;
        base++;
    }
    *out = base;
    return 0;
}

/* A qb_dec_t (any sign) times m / d, half-even, back into a qb_dec_t. */
static int adj_scale(qb_dec_t v, adj_u128 m, adj_u128 d, qb_dec_t *out) {
    int neg = v < 0;
    adj_u128 mag = neg ? (adj_u128)(-(v + 1)) + 1 : (adj_u128)v, r;
    if (adj_muldiv(mag, m, d, &r) != 0 || r > (adj_u128)INT64_MAX) return -1;
    *out = neg ? -(qb_dec_t)r : (qb_dec_t)r;
    return 0;
}

/* ---- split ratios ------------------------------------------------------------ */

static qb_err_t split_set(adj_u128 num, adj_u128 den, const char *s, int64_t *pn, int64_t *pd,
                          char *errstr, size_t errstr_size) {
    if (num == 0 || den == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "split ratio '%s': both sides must be > 0", s);
    adj_u128 g = adj_gcd(num, den);
    num /= g;
    den /= g;
    if (num > (adj_u128)QB_MD_SPLIT_MAX || den > (adj_u128)QB_MD_SPLIT_MAX)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "split ratio '%s': terms beyond %lld once reduced", s,
                          (long long)QB_MD_SPLIT_MAX);
    *pn = (int64_t)num;
    *pd = (int64_t)den;
    return QB_OK;
}

/* A positive integer of at most 10 digits spanning [b, e). */
static int split_int(const char *b, const char *e, adj_u128 *out) {
    if (b >= e || e - b > 10) return -1;
    adj_u128 v = 0;
    for (const char *p = b; p < e; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (adj_u128)(*p - '0');
    }
    *out = v;
    return 0;
}

static const char *skip_sp(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    return p;
}

qb_err_t qb_md_split_parse(const char *s, int64_t *num, int64_t *den, char *errstr,
                           size_t errstr_size) {
    if (!s || !num || !den) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "split: NULL");
    const char *b = skip_sp(s, s + strlen(s)), *e = s + strlen(s);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
    /* new:old, new/old, new-for-old, new for old */
    const char *sep = NULL, *after = NULL;
    for (const char *p = b; p < e; p++) {
        if (*p == ':' || *p == '/') {
            sep = p;
            after = p + 1;
            break;
        }
        if ((*p == '-' || *p == ' ') && e - p >= 4) {
            const char *f = skip_sp(p + (*p == '-'), e);
            if (e - f >= 3 && strncasecmp(f, "for", 3) == 0) {
                const char *g = f + 3;
                if (g < e && (*g == '-' || *g == ' ')) {
                    sep = p;
                    after = skip_sp(g + 1, e);
                    break;
                }
            }
        }
    }
    adj_u128 n, d;
    if (sep) {
        const char *le = sep;
        while (le > b && le[-1] == ' ') le--;
        if (split_int(b, le, &n) != 0 || split_int(skip_sp(after, e), e, &d) != 0)
            return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                              "split ratio '%s': want new:old, new-for-old or a decimal (2:1, 3-for-2, 1.5)", s);
        return split_set(n, d, s, num, den, errstr, errstr_size);
    }
    qb_dec_t v;
    if (b == e || qb_dec_parse(b, (size_t)(e - b), &v) != QB_OK)
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE,
                          "split ratio '%s': want new:old, new-for-old or a decimal (2:1, 3-for-2, 1.5)", s);
    if (v <= 0) return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "split ratio '%s' must be > 0", s);
    return split_set((adj_u128)v, (adj_u128)QB_DEC_SCALE, s, num, den, errstr, errstr_size);
}

qb_err_t qb_md_split_from_decimal(const char *s, int64_t *num, int64_t *den, char *errstr,
                                  size_t errstr_size) {
    if (!s || !num || !den) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "split: NULL");
    /* digits [. digits]: at most 20 decimals (other than trailing zeros); k of
     * them written (trailing zeros count: they say how precise the text is) */
    const char *p = s;
    adj_u128 ip = 0, N, D = 1;
    int idig = 0, k = 0;
    while (isdigit((unsigned char)*p)) {
        ip = ip * 10 + (adj_u128)(*p++ - '0');
        if (++idig > 12) return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "split ratio %s: too large", s);
    }
    const char *fb = NULL, *fe = NULL;
    if (*p == '.') {
        fb = ++p;
        while (isdigit((unsigned char)*p)) p++;
        fe = p;
        while (fe - fb > 20 && fe[-1] == '0') fe--; /* zeros past the 20th decimal say nothing */
    }
    if (*p != '\0' || (idig == 0 && !fb) || (fb && p == fb && idig == 0))
        return qb_err_set(errstr, errstr_size, QB_ERR_PARSE, "split ratio '%s' is not a decimal", s);
    if (fb && fe - fb > 20)
        return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                          "split ratio %s: more than 20 decimals", s);
    N = ip;
    for (const char *q = fb; fb && q < fe; q++, k++) {
        N = N * 10 + (adj_u128)(*q - '0');
        D *= 10;
    }
    if (N == 0) return qb_err_set(errstr, errstr_size, QB_ERR_RANGE, "split ratio %s must be > 0", s);
    adj_u128 g = adj_gcd(N, D);
    if (N / g <= (adj_u128)QB_MD_SPLIT_MAX && D / g <= (adj_u128)QB_MD_SPLIT_MAX)
        return split_set(N, D, s, num, den, errstr, errstr_size);
    /* Not a short terminating decimal: the fraction with the smallest
     * denominator whose rounding to k decimals is s, among the continued
     * fraction convergents of N/D. Fractions with denominators <= qmax =
     * 10^((k-1)/2) differ by more than 10^-k, so at most one can match. */
    if (k >= 12) {
        adj_u128 qmax = 1;
        for (int i = 0; i < (k - 1) / 2 && qmax < (adj_u128)QB_MD_SPLIT_MAX; i++) qmax *= 10;
        adj_u128 h0 = 0, h1 = 1, k0 = 1, k1 = 0, a = N, b = D;
        while (b) {
            adj_u128 t = a / b, h = t * h1 + h0, q = t * k1 + k0, r = a % b;
            if (q > qmax || h > (adj_u128)QB_MD_SPLIT_MAX) break;
            adj_u128 lhs = h * D, rhs = N * q; /* |h/q - N/D| <= 1/(2D)  <=>  2|hD - Nq| <= q */
            adj_u128 diff = lhs > rhs ? lhs - rhs : rhs - lhs;
            if (2 * diff <= q) return split_set(h, q, s, num, den, errstr, errstr_size);
            h0 = h1;
            h1 = h;
            k0 = k1;
            k1 = q;
            a = b;
            b = r;
        }
    }
    return qb_err_set(errstr, errstr_size, QB_ERR_RANGE,
                      "split ratio %s is not a ratio of integers <= %lld", s,
                      (long long)QB_MD_SPLIT_MAX);
}

size_t qb_md_split_format(int64_t num, int64_t den, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%lld:%lld", (long long)num, (long long)den);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- adjustment ---------------------------------------------------------------- */

static int action_cmp(const void *a, const void *b) {
    const qb_md_action_t *x = a, *y = b;
    if (x->ex_date != y->ex_date) return x->ex_date < y->ex_date ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static const char *kind_name(qb_md_action_kind_t k) {
    return k == QB_MD_ACTION_SPLIT ? "split" : k == QB_MD_ACTION_DIVIDEND ? "dividend" : "?";
}

static void day_text(qb_time_t t, char *buf, size_t cap) {
    qb_time_format(t, buf, cap);
    if (cap > 10 && strlen(buf) > 10 && strcmp(buf + 10, "T00:00:00Z") == 0) buf[10] = '\0';
}

/* Validate actions[0..n) and return a sorted copy (*out NULL when n == 0). */
static qb_err_t actions_sorted(const qb_md_action_t *actions, size_t n, qb_md_action_t **out,
                               char *errstr, size_t errstr_size) {
    *out = NULL;
    if (n == 0) return QB_OK;
    if (!actions) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "adjust: actions NULL");
    char d[QB_TIME_STRLEN];
    for (size_t i = 0; i < n; i++) {
        const qb_md_action_t *a = &actions[i];
        day_text(a->ex_date, d, sizeof d);
        if (a->kind == QB_MD_ACTION_SPLIT) {
            if (a->num <= 0 || a->den <= 0 || a->num > QB_MD_SPLIT_MAX || a->den > QB_MD_SPLIT_MAX)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                                  "split on %s: ratio %lld:%lld (both terms 1..%lld)", d,
                                  (long long)a->num, (long long)a->den, (long long)QB_MD_SPLIT_MAX);
        } else if (a->kind == QB_MD_ACTION_DIVIDEND) {
            if (a->amount < 0)
                return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "dividend on %s: negative amount", d);
        } else {
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "action on %s: unknown kind %d", d,
                              (int)a->kind);
        }
    }
    qb_md_action_t *c = malloc(n * sizeof(*c));
    if (!c) return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "adjust: out of memory");
    memcpy(c, actions, n * sizeof(*c));
    qsort(c, n, sizeof(*c), action_cmp);
    for (size_t i = 1; i < n; i++)
        if (c[i].ex_date == c[i - 1].ex_date && c[i].kind == c[i - 1].kind) {
            const char *kind = kind_name(c[i].kind);
            day_text(c[i].ex_date, d, sizeof d);
            free(c);
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "duplicate %s on %s: one action per kind and ex-date", kind, d);
        }
    *out = c;
    return QB_OK;
}

qb_err_t qb_md_adjust(const qb_bar_t *bars, size_t n, const qb_md_action_t *actions,
                      size_t nact, qb_md_adjust_mode_t mode, qb_bar_t *out,
                      qb_md_adjust_stats_t *stats, char *errstr, size_t errstr_size) {
    qb_md_adjust_stats_t st;
    memset(&st, 0, sizeof st);
    if (stats) *stats = st;
    if (n && (!bars || !out)) return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "adjust: bars NULL");
    if (mode != QB_MD_ADJ_RAW && mode != QB_MD_ADJ_SPLIT && mode != QB_MD_ADJ_TOTAL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "adjust: unknown mode %d", (int)mode);
    for (size_t i = 1; i < n; i++)
        if (bars[i].ts <= bars[i - 1].ts) {
            char t[QB_TIME_STRLEN];
            qb_time_format(bars[i].ts, t, sizeof t);
            return qb_err_set(errstr, errstr_size, QB_ERR_INVALID,
                              "adjust: bar %zu (%s) is not after the one before it", i, t);
        }
    qb_md_action_t *act = NULL;
    qb_err_t err = actions_sorted(actions, nact, &act, errstr, errstr_size);
    if (err) return err;
    if (out != bars && n) memmove(out, bars, n * sizeof(*out));
    if (mode == QB_MD_ADJ_RAW || n == 0) {
        if (n == 0 && mode != QB_MD_ADJ_RAW)
            for (size_t j = 0; j < nact; j++)
                if (mode == QB_MD_ADJ_TOTAL || act[j].kind == QB_MD_ACTION_SPLIT) st.outside++;
        free(act);
        if (stats) *stats = st;
        return QB_OK;
    }
    const int total = mode == QB_MD_ADJ_TOTAL;
    qb_time_t first_day;
    if (qb_time_trunc_day(bars[0].ts, &first_day) != QB_OK) first_day = bars[0].ts;

    adj_u128 cn = 1, cd = 1; /* running split ratio, reduced */
    adj_u128 F = ADJ_ONE;    /* running dividend factor, 1e18 = 1 */
    size_t j = nact;         /* act[0..j) not folded in yet */
    while (j > 0 && act[j - 1].ex_date > bars[n - 1].ts) {
        j--;
        if (total || act[j].kind == QB_MD_ACTION_SPLIT) st.outside++;
    }
    for (size_t i = n; i-- > 0;) {
        const qb_bar_t raw = bars[i]; /* out may be bars */
        while (j > 0 && act[j - 1].ex_date > raw.ts) {
            const qb_md_action_t *a = &act[--j];
            if (a->kind == QB_MD_ACTION_SPLIT) {
                adj_u128 nn = cn * (adj_u128)a->num, nd = cd * (adj_u128)a->den, g = adj_gcd(nn, nd);
                nn /= g;
                nd /= g;
                if (nn > (adj_u128)QB_MD_SPLIT_MAX || nd > (adj_u128)QB_MD_SPLIT_MAX) {
                    char d[QB_TIME_STRLEN];
                    day_text(a->ex_date, d, sizeof d);
                    free(act);
                    return qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                                      "adjust: the product of split ratios up to %s exceeds %lld in "
                                      "numerator or denominator", d, (long long)QB_MD_SPLIT_MAX);
                }
                cn = nn;
                cd = nd;
                st.splits_applied++;
            } else if (total) {
                /* raw.close is the last close before the ex-date */
                if (a->amount >= raw.close) {
                    st.div_too_large++;
                    continue;
                }
                adj_u128 nf;
                if (adj_muldiv(F, (adj_u128)(raw.close - a->amount), (adj_u128)raw.close, &nf) != 0) {
                    free(act);
                    return qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "adjust: dividend factor");
                }
                F = nf;
                st.dividends_applied++;
            }
        }
        if (cn == 1 && cd == 1 && F == ADJ_ONE) {
            out[i] = raw;
            continue;
        }
        /* price' = price * F * cd / (cn * 1e18); volume' = volume * cn / cd */
        adj_u128 m = cd, d = cn * (adj_u128)ADJ_ONE;
        qb_dec_t *po[4] = {&out[i].open, &out[i].high, &out[i].low, &out[i].close};
        const qb_dec_t pi[4] = {raw.open, raw.high, raw.low, raw.close};
        int bad = 0;
        out[i] = raw;
        for (int k = 0; k < 4 && !bad; k++) {
            qb_dec_t v = pi[k];
            int neg = v < 0;
            adj_u128 mag = neg ? (adj_u128)(-(v + 1)) + 1 : (adj_u128)v, r;
            if (adj_muldiv(mag * F, m, d, &r) != 0 || r > (adj_u128)INT64_MAX) bad = 1;
            else *po[k] = neg ? -(qb_dec_t)r : (qb_dec_t)r;
        }
        if (!bad && adj_scale(raw.volume, cn, cd, &out[i].volume) != 0) bad = 1;
        if (bad) {
            char t[QB_TIME_STRLEN];
            qb_time_format(raw.ts, t, sizeof t);
            free(act);
            return qb_err_set(errstr, errstr_size, QB_ERR_OVERFLOW,
                              "adjust: bar %s: adjusted value out of the qb_dec_t range", t);
        }
    }
    /* What is left has its ex-date on or before the first bar. */
    while (j > 0) {
        const qb_md_action_t *a = &act[--j];
        if (a->kind == QB_MD_ACTION_DIVIDEND) {
            if (!total) continue;
            if (a->ex_date >= first_day) st.div_no_prev_close++;
            else st.outside++;
        } else {
            st.outside++;
        }
    }
    free(act);
    if (stats) *stats = st;
    return QB_OK;
}

/* ---- md.corporate_actions -------------------------------------------------------- */

static void time_param(qb_time_t t, const char *dflt, char *buf, size_t cap) {
    if (t == 0) snprintf(buf, cap, "%s", dflt);
    else qb_time_format(t, buf, cap);
}

qb_err_t qb_md_actions_read(qb_store_t *s, const char *symbol, qb_time_t from, qb_time_t to,
                            qb_md_action_t **out, size_t *n, char *errstr,
                            size_t errstr_size) {
    if (!s || !symbol || !out || !n)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "actions_read: bad argument");
    *out = NULL;
    *n = 0;
    qb_symbol_t sym;
    if (qb_symbol_set(&sym, symbol, errstr, errstr_size) != QB_OK) return QB_ERR_INVALID;
    char sf[QB_TIME_STRLEN], stt[QB_TIME_STRLEN];
    time_param(from, "-infinity", sf, sizeof sf);
    time_param(to, "infinity", stt, sizeof stt);
    const char *p[3] = {sym.s, sf, stt};
    PGresult *r = NULL;
    qb_err_t err = qb_store_query(
        s,
        "SELECT ca.ex_date - date '1970-01-01', ca.kind, ca.ratio::text, ca.amount::text"
        "  FROM md.corporate_actions ca JOIN md.assets a USING (asset_id)"
        " WHERE a.symbol = $1"
        "   AND (ca.ex_date::timestamp AT TIME ZONE 'UTC') >= $2::timestamptz"
        "   AND (ca.ex_date::timestamp AT TIME ZONE 'UTC') < $3::timestamptz"
        " ORDER BY ca.ex_date, ca.kind = 'dividend'",
        3, p, &r, errstr, errstr_size);
    if (err) return err;
    size_t rows = (size_t)PQntuples(r);
    if (rows == 0) {
        PQclear(r);
        return QB_OK;
    }
    qb_md_action_t *a = calloc(rows, sizeof(*a));
    if (!a) {
        PQclear(r);
        return qb_err_set(errstr, errstr_size, QB_ERR_NOMEM, "actions_read: out of memory");
    }
    for (size_t i = 0; i < rows; i++) {
        int row = (int)i;
        int64_t days = atoll(PQgetvalue(r, row, 0));
        a[i].ex_date = days * QB_NS_PER_DAY;
        const char *kind = PQgetvalue(r, row, 1);
        char d[48];
        int y, mo, dd;
        qb_time_civil_from_days(days, &y, &mo, &dd);
        snprintf(d, sizeof d, "%04d-%02d-%02d", y, mo, dd);
        if (strcmp(kind, "split") == 0) {
            a[i].kind = QB_MD_ACTION_SPLIT;
            char m[256];
            err = PQgetisnull(r, row, 2)
                      ? qb_err_set(m, sizeof m, QB_ERR_RANGE, "no ratio")
                      : qb_md_split_from_decimal(PQgetvalue(r, row, 2), &a[i].num, &a[i].den, m, sizeof m);
            if (err) {
                qb_err_set(errstr, errstr_size, err, "md.corporate_actions %s split on %s: %s", sym.s, d, m);
                break;
            }
        } else {
            a[i].kind = QB_MD_ACTION_DIVIDEND;
            const char *v = PQgetisnull(r, row, 3) ? "" : PQgetvalue(r, row, 3);
            if ((err = qb_dec_parse_round(v, strlen(v), &a[i].amount, QB_ROUND_HALF_EVEN)) != QB_OK) {
                qb_err_set(errstr, errstr_size, err, "md.corporate_actions %s dividend on %s: amount '%s'",
                           sym.s, d, v);
                break;
            }
        }
    }
    PQclear(r);
    if (err) {
        free(a);
        return err;
    }
    *out = a;
    *n = rows;
    return QB_OK;
}

qb_err_t qb_md_actions_put(qb_store_t *s, const char *symbol, const char *asset_class,
                           const qb_md_action_t *actions, size_t n, const char *source,
                           char *errstr, size_t errstr_size) {
    if (!s || !symbol || !asset_class || !source || !*source || (n && !actions))
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "actions_put: bad argument");
    qb_md_action_t *sorted = NULL;
    qb_err_t err = actions_sorted(actions, n, &sorted, errstr, errstr_size);
    if (err || n == 0) return err;
    free(sorted); /* validated; stored in the caller's order */
    if ((err = qb_store_begin(s, errstr, errstr_size)) != QB_OK) return err;
    int32_t aid = 0;
    err = qb_md_asset_get_or_create(s, symbol, asset_class, &aid, errstr, errstr_size);
    for (size_t i = 0; i < n && !err; i++) {
        const qb_md_action_t *a = &actions[i];
        char sid[16], d[QB_TIME_STRLEN], sn[24], sd[24], amt[QB_DEC_STRLEN];
        snprintf(sid, sizeof sid, "%d", (int)aid);
        qb_time_t day;
        if (qb_time_trunc_day(a->ex_date, &day) != QB_OK) day = a->ex_date;
        qb_time_format(day, d, sizeof d);
        d[10] = '\0';
        int split = a->kind == QB_MD_ACTION_SPLIT;
        snprintf(sn, sizeof sn, "%lld", (long long)a->num);
        snprintf(sd, sizeof sd, "%lld", (long long)a->den);
        qb_dec_format(a->amount, amt, sizeof amt);
        const char *p[7] = {sid, d, split ? "split" : "dividend", split ? sn : NULL,
                            split ? sd : NULL, split ? NULL : amt, source};
        /* numeric(30,20) forces 20 decimals in the quotient: 1/3 is stored as
         * 0.33333333333333333333 and read back as 1/3 */
        err = qb_store_query(s,
                             "INSERT INTO md.corporate_actions (asset_id, ex_date, kind, ratio, amount,"
                             " source) VALUES ($1::integer, $2::date, $3,"
                             " round($4::numeric(30,20) / $5::numeric, 20), $6::numeric, $7)"
                             " ON CONFLICT (asset_id, ex_date, kind) DO UPDATE SET ratio = EXCLUDED.ratio,"
                             " amount = EXCLUDED.amount, source = EXCLUDED.source",
                             7, p, NULL, errstr, errstr_size);
    }
    if (!err) err = qb_store_commit(s, errstr, errstr_size);
    if (err) qb_store_rollback(s, NULL, 0);
    return err;
}

qb_err_t qb_md_read_adjusted(qb_store_t *s, const char *symbol, const char *timeframe,
                             qb_time_t from, qb_time_t to, qb_md_adjust_mode_t mode,
                             qb_bar_t **out, size_t *n, qb_md_adjust_stats_t *stats,
                             char *errstr, size_t errstr_size) {
    if (stats) memset(stats, 0, sizeof(*stats));
    if (!s || !symbol || !timeframe || !out || !n)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "read_adjusted: bad argument");
    *out = NULL;
    *n = 0;
    if (mode != QB_MD_ADJ_RAW && mode != QB_MD_ADJ_SPLIT && mode != QB_MD_ADJ_TOTAL)
        return qb_err_set(errstr, errstr_size, QB_ERR_INVALID, "read_adjusted: unknown mode %d", (int)mode);
    int own_tx = !qb_store_in_transaction(s);
    qb_err_t err = QB_OK;
    if (own_tx) {
        if ((err = qb_store_begin(s, errstr, errstr_size)) != QB_OK) return err;
        err = qb_store_exec(s, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                            errstr, errstr_size);
    }
    qb_bar_t *bars = NULL;
    size_t nb = 0, na = 0;
    qb_md_action_t *acts = NULL;
    if (!err) err = qb_md_store_read_bars(s, symbol, timeframe, from, to, &bars, NULL, &nb,
                                          errstr, errstr_size);
    if (!err && nb && mode != QB_MD_ADJ_RAW) {
        qb_time_t day;
        if (qb_time_trunc_day(bars[0].ts, &day) != QB_OK) day = bars[0].ts;
        if (day == 0) day = -1; /* 0 means "no bound" */
        /* through the last bar: + 1 us, PostgreSQL's resolution (+1 ns would
         * round back to the bar's own time and exclude an ex-date on it) */
        err = qb_md_actions_read(s, symbol, day, bars[nb - 1].ts + QB_NS_PER_US, &acts, &na, errstr,
                                 errstr_size);
    }
    if (own_tx) {
        if (!err) err = qb_store_commit(s, errstr, errstr_size);
        if (err) qb_store_rollback(s, NULL, 0);
    }
    if (!err) err = qb_md_adjust(bars, nb, acts, na, mode, bars, stats, errstr, errstr_size);
    free(acts);
    if (err) {
        free(bars);
        return err;
    }
    *out = bars;
    *n = nb;
    return QB_OK;
}
