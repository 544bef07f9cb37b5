/* qb_risk_post.c — see qb_risk_post.h. */
#include "risk/qb_risk_post.h"

#include <stdio.h>
#include <string.h>

#define NS_PER_DAY (86400LL * 1000000000LL)

int64_t qb_risk_day(qb_time_t t) {
    int64_t d = t / NS_PER_DAY;
    return (t % NS_PER_DAY < 0) ? d - 1 : d;
}

qb_risk_status_t qb_risk_post_status(qb_risk_status_t status, qb_time_t paused_until,
                                     qb_time_t now) {
    if (status == QB_RISK_PAUSED && paused_until != 0 && now >= paused_until)
        return QB_RISK_ACTIVE;
    return status;
}

void qb_risk_post_rebase(qb_risk_pnl_t *p, qb_dec_t equity, qb_time_t now) {
    p->day = qb_risk_day(now);
    p->day_start = equity;
    p->hwm = equity;
}

qb_risk_action_t qb_risk_post_update(qb_risk_pnl_t *p, const qb_risk_limits_t *l,
                                     qb_dec_t equity, qb_time_t now, qb_risk_status_t status,
                                     qb_risk_breach_t *out) {
    char a[QB_DEC_STRLEN], b[QB_DEC_STRLEN], c[QB_DEC_STRLEN];
    memset(out, 0, sizeof *out);
    int64_t day = qb_risk_day(now);
    if (p->day != day) {
        p->day = day;
        p->day_start = equity;
    }
    if (p->hwm == 0 || equity > p->hwm) p->hwm = equity;
    if (status == QB_RISK_HALTED) return QB_RISK_POST_NONE;
    /* drawdown */
    qb_dec_t mdd = qb_risk_limit(l, QB_RISK_LIMIT_MAX_DRAWDOWN, NULL);
    if (p->hwm > 0) {
        qb_dec_wide_t dd = (qb_dec_wide_t)p->hwm - equity;
        if (dd > 0 && dd * QB_DEC_SCALE >= (qb_dec_wide_t)mdd * p->hwm) {
            qb_dec_t obs;
            if (qb_dec_div_wide(dd * QB_DEC_SCALE, p->hwm, &obs, QB_ROUND_HALF_EVEN) != QB_OK)
                obs = INT64_MAX;
            out->limit = QB_RISK_LIMIT_MAX_DRAWDOWN;
            out->observed = obs;
            out->limit_value = mdd;
            qb_dec_format(equity, a, sizeof a);
            qb_dec_format(p->hwm, b, sizeof b);
            qb_dec_format(obs, c, sizeof c);
            int n = snprintf(out->text, sizeof out->text,
                             "drawdown %s (equity %s, high-water mark %s) reached max_drawdown ",
                             c, a, b);
            qb_dec_format(mdd, out->text + n, sizeof out->text - (size_t)n);
            return QB_RISK_POST_HALT;
        }
    }
    if (status == QB_RISK_PAUSED) return QB_RISK_POST_NONE;
    /* daily loss */
    qb_dec_t loss = p->day_start - equity;
    if (loss <= 0) return QB_RISK_POST_NONE;
    qb_dec_t abs_lim = qb_risk_limit(l, QB_RISK_LIMIT_MAX_DAILY_LOSS, NULL);
    qb_dec_t frac = qb_risk_limit(l, QB_RISK_LIMIT_MAX_DAILY_LOSS_FRACTION, NULL), frac_lim;
    if (p->day_start <= 0 || qb_dec_mul(frac, p->day_start, &frac_lim, QB_ROUND_FLOOR) != QB_OK)
        frac_lim = abs_lim;
    qb_dec_t lim = frac_lim < abs_lim ? frac_lim : abs_lim;
    if (loss >= lim) {
        out->limit = lim == abs_lim ? QB_RISK_LIMIT_MAX_DAILY_LOSS
                                    : QB_RISK_LIMIT_MAX_DAILY_LOSS_FRACTION;
        out->observed = loss;
        out->limit_value = lim;
        out->paused_until = (day + 1) * NS_PER_DAY;
        qb_dec_format(loss, a, sizeof a);
        qb_dec_format(p->day_start, b, sizeof b);
        qb_dec_format(lim, c, sizeof c);
        snprintf(out->text, sizeof out->text,
                 "daily loss %s (from %s at the day's start) reached the daily loss limit %s",
                 a, b, c);
        return QB_RISK_POST_PAUSE;
    }
    return QB_RISK_POST_NONE;
}
