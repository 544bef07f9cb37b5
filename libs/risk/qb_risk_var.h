/* qb_risk_var.h — portfolio risk statistics over return series: value at
 * risk and conditional value at risk (expected shortfall) by three methods,
 * volatility, beta, correlation. Doubles: these are estimates, not money.
 *
 * Returns are simple period returns (close / previous close - 1). VaR and
 * CVaR are LOSSES, positive fractions of the portfolio value (multiply by
 * the value for money), at confidence c (0.95, 0.99):
 *   historical   k = ceil((1 - c) x n) (at least 1); the returns sorted
 *                ascending; VaR = -r[k-1] (the k-th worst), CVaR = -mean of
 *                the k worst. n = 20, c = 0.95: the worst return; c = 0.99
 *                also the worst.
 *   parametric   normal: mu, sigma (sample, n - 1) of the series; z the
 *                standard normal quantile of c; VaR = z sigma - mu,
 *                CVaR = sigma phi(z) / (1 - c) - mu.
 *   Monte Carlo  `sims` draws of the symbols' joint returns from the
 *                multivariate normal with the sample means and covariance
 *                (Cholesky; a seeded splitmix64 + Box-Muller, so a seed
 *                gives the same figures), the portfolio return per draw is
 *                w . r, then the historical rule over the draws.
 * Portfolio series: r_p,t = sum_i w_i r_i,t with w_i = signed position
 * value / equity (qb_risk_port_returns).
 * Ownership: the caller's arrays; scratch is allocated and freed inside
 * (QB_ERR_NOMEM). */
#ifndef QB_RISK_VAR_H
#define QB_RISK_VAR_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_err.h"

/* Inverse standard normal CDF (Acklam + one Halley step, |err| < 1e-15),
 * p in (0, 1); NAN outside. */
double qb_risk_norm_quantile(double p);

/* Mean and sample standard deviation (n - 1); sd = 0 for n < 2. */
void qb_risk_mean_sd(const double *r, size_t n, double *mean, double *sd);

qb_err_t qb_risk_var_hist(const double *r, size_t n, double conf, double *var, double *cvar);
qb_err_t qb_risk_var_param(const double *r, size_t n, double conf, double *var, double *cvar);

/* R: n periods x k symbols, row-major (R[t * k + i]); w: k weights. */
qb_err_t qb_risk_var_mc(const double *R, size_t n, size_t k, const double *w, double conf,
                        size_t sims, uint64_t seed, double *var, double *cvar);

/* r_p[t] = sum_i w[i] R[t * k + i]. */
void qb_risk_port_returns(const double *R, size_t n, size_t k, const double *w, double *rp);

/* Pearson correlation of x and y (n >= 3 and both varying), else NAN. */
double qb_risk_corr(const double *x, const double *y, size_t n);
/* cov(p, b) / var(b); NAN when b does not vary or n < 3. */
double qb_risk_beta(const double *p, const double *b, size_t n);
/* k x k correlation matrix of R's columns into C (row-major; diagonal 1). */
void qb_risk_corr_matrix(const double *R, size_t n, size_t k, double *C);

#endif
