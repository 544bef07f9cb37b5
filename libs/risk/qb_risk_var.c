/* qb_risk_var.c — see qb_risk_var.h. */
#include "risk/qb_risk_var.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double qb_risk_norm_quantile(double p) {
    if (!(p > 0 && p < 1)) return NAN;
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double q, x, r;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - 0.02425) {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    /* one Halley step on Phi(x) - p */
    double e = 0.5 * erfc(-x / sqrt(2)) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

void qb_risk_mean_sd(const double *r, size_t n, double *mean, double *sd) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) m += r[i];
    m = n ? m / (double)n : 0;
    for (size_t i = 0; i < n; i++) s += (r[i] - m) * (r[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(s / (double)(n - 1)) : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

qb_err_t qb_risk_var_hist(const double *r, size_t n, double conf, double *var, double *cvar) {
    if (n == 0 || !(conf > 0 && conf < 1)) return QB_ERR_INVALID;
    double *s = malloc(n * sizeof *s);
    if (!s) return QB_ERR_NOMEM;
    memcpy(s, r, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    size_t k = (size_t)ceil((1 - conf) * (double)n - 1e-9);
    if (k < 1) k = 1;
    if (k > n) k = n;
    double sum = 0;
    for (size_t i = 0; i < k; i++) sum += s[i];
    *var = -s[k - 1];
    *cvar = -sum / (double)k;
    free(s);
    return QB_OK;
}

qb_err_t qb_risk_var_param(const double *r, size_t n, double conf, double *var, double *cvar) {
    if (n < 2 || !(conf > 0 && conf < 1)) return QB_ERR_INVALID;
    double m, sd;
    qb_risk_mean_sd(r, n, &m, &sd);
    double z = qb_risk_norm_quantile(conf);
    double phi = exp(-z * z / 2) / sqrt(2 * M_PI);
    *var = z * sd - m;
    *cvar = sd * phi / (1 - conf) - m;
    return QB_OK;
}

void qb_risk_port_returns(const double *R, size_t n, size_t k, const double *w, double *rp) {
    for (size_t t = 0; t < n; t++) {
        double s = 0;
        for (size_t i = 0; i < k; i++) s += w[i] * R[t * k + i];
        rp[t] = s;
    }
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0; }

qb_err_t qb_risk_var_mc(const double *R, size_t n, size_t k, const double *w, double conf,
                        size_t sims, uint64_t seed, double *var, double *cvar) {
    if (n < 2 || k == 0 || sims == 0 || !(conf > 0 && conf < 1)) return QB_ERR_INVALID;
    double *mu = calloc(k, sizeof *mu), *L = calloc(k * k, sizeof *L), *z = calloc(k, sizeof *z);
    double *out = malloc(sims * sizeof *out);
    if (!mu || !L || !z || !out) {
        free(mu), free(L), free(z), free(out);
        return QB_ERR_NOMEM;
    }
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < k; i++) mu[i] += R[t * k + i] / (double)n;
    /* covariance into L's lower triangle, then Cholesky in place (a pivot
     * <= 0, e.g. two identical series, is taken as 0: a degenerate
     * direction). */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (size_t t = 0; t < n; t++) s += (R[t * k + i] - mu[i]) * (R[t * k + j] - mu[j]);
            L[i * k + j] = s / (double)(n - 1);
        }
    for (size_t j = 0; j < k; j++) {
        double d = L[j * k + j];
        for (size_t m = 0; m < j; m++) d -= L[j * k + m] * L[j * k + m];
        d = d > 1e-300 ? sqrt(d) : 0;
        L[j * k + j] = d;
        for (size_t i = j + 1; i < k; i++) {
            double s = L[i * k + j];
            for (size_t m = 0; m < j; m++) s -= L[i * k + m] * L[j * k + m];
            L[i * k + j] = d > 0 ? s / d : 0;
        }
    }
    uint64_t st = seed;
    for (size_t s = 0; s < sims; s++) {
        for (size_t i = 0; i < k; i += 2) {
            double u1 = unif(&st), u2 = unif(&st), rad = sqrt(-2 * log(u1));
            z[i] = rad * cos(2 * M_PI * u2);
            if (i + 1 < k) z[i + 1] = rad * sin(2 * M_PI * u2);
        }
        double rp = 0;
        for (size_t i = 0; i < k; i++) {
            double ri = mu[i];
            for (size_t m = 0; m <= i; m++) ri += L[i * k + m] * z[m];
            rp += w[i] * ri;
        }
        out[s] = rp;
    }
    qb_err_t e = qb_risk_var_hist(out, sims, conf, var, cvar);
    free(mu), free(L), free(z), free(out);
    return e;
}

double qb_risk_corr(const double *x, const double *y, size_t n) {
    if (n < 3) return NAN;
    double mx, sx, my, sy, c = 0;
    qb_risk_mean_sd(x, n, &mx, &sx);
    qb_risk_mean_sd(y, n, &my, &sy);
    if (!(sx > 0) || !(sy > 0)) return NAN;
    for (size_t i = 0; i < n; i++) c += (x[i] - mx) * (y[i] - my);
    c /= (double)(n - 1);
    double r = c / (sx * sy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

double qb_risk_beta(const double *p, const double *b, size_t n) {
    if (n < 3) return NAN;
    double mp, sp, mb, sb, c = 0;
    qb_risk_mean_sd(p, n, &mp, &sp);
    qb_risk_mean_sd(b, n, &mb, &sb);
    if (!(sb > 0)) return NAN;
    for (size_t i = 0; i < n; i++) c += (p[i] - mp) * (b[i] - mb);
    return c / (double)(n - 1) / (sb * sb);
}

void qb_risk_corr_matrix(const double *R, size_t n, size_t k, double *C) {
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < k; i++) {
        C[i * k + i] = 1;
        for (size_t j = 0; j < i; j++) {
            double r = NAN;
            if (x && y) {
                for (size_t t = 0; t < n; t++) {
                    x[t] = R[t * k + i];
                    y[t] = R[t * k + j];
                }
                r = qb_risk_corr(x, y, n);
            }
            C[i * k + j] = C[j * k + i] = r;
        }
    }
    free(x);
    free(y);
}
