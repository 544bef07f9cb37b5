/* qb_risk_post.h — post-trade rules of one account: the day's P&L against
 * the daily loss limit and the drawdown from the high-water mark against
 * the max drawdown, evaluated on every change of equity (a fill, a mark).
 *
 *   day            the UTC day of `now` (a session is one UTC day). At the
 *                  first evaluation of a new day the baseline moves:
 *                  day_start = equity. A PAUSED account with paused_until
 *                  reached becomes ACTIVE again (qb_risk_post_status).
 *   daily loss     loss = day_start - equity. Breach (PAUSE) when loss >=
 *                  min(MAX_DAILY_LOSS, MAX_DAILY_LOSS_FRACTION x day_start):
 *                  reaching the limit pauses. paused_until = next UTC
 *                  midnight.
 *   high-water     hwm = max(hwm, equity) (the first equity seen starts it)
 *   drawdown       hwm - equity >= MAX_DRAWDOWN x hwm (exact) -> HALT (the
 *                  kill switch: only RESUME ends it). A halt beats a pause.
 * A HALTED account is not evaluated again; a PAUSED one only for a halt.
 * RESUME rebases: day_start = hwm = equity now (qb_risk_post_rebase), so
 * the same loss does not pause it again at the next mark.
 * Ownership: plain values. */
#ifndef QB_RISK_POST_H
#define QB_RISK_POST_H

#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "risk/qb_risk_check.h"
#include "risk/qb_risk_limits.h"

typedef struct qb_risk_pnl_s {
    int64_t day;        /* UTC day number (days since 1970-01-01) of day_start; 0 = never */
    qb_dec_t day_start; /* equity at the day's first evaluation */
    qb_dec_t hwm;       /* highest equity seen; 0 = never */
} qb_risk_pnl_t;

typedef enum qb_risk_action_e {
    QB_RISK_POST_NONE = 0,  /* nothing breached */
    QB_RISK_POST_PAUSE = 1, /* daily loss reached: pause until paused_until */
    QB_RISK_POST_HALT = 2   /* max drawdown reached: kill switch */
} qb_risk_action_t;

typedef struct qb_risk_breach_s {
    int limit;              /* MAX_DAILY_LOSS(_FRACTION) or MAX_DRAWDOWN */
    qb_dec_t observed;      /* loss (money) or drawdown (fraction) */
    qb_dec_t limit_value;   /* in the same unit */
    qb_time_t paused_until; /* PAUSE: next UTC midnight */
    char text[256];
} qb_risk_breach_t;

/* The UTC day number of t. */
int64_t qb_risk_day(qb_time_t t);

/* Roll the day, raise the high-water mark and evaluate the limits for an
 * account in `status` with `equity` now. */
qb_risk_action_t qb_risk_post_update(qb_risk_pnl_t *p, const qb_risk_limits_t *l,
                                     qb_dec_t equity, qb_time_t now, qb_risk_status_t status,
                                     qb_risk_breach_t *out);

/* The status in force at `now`: PAUSED with paused_until (!= 0) reached is
 * ACTIVE. */
qb_risk_status_t qb_risk_post_status(qb_risk_status_t status, qb_time_t paused_until,
                                     qb_time_t now);

/* After RESUME: day_start = hwm = equity, day = day of now. */
void qb_risk_post_rebase(qb_risk_pnl_t *p, qb_dec_t equity, qb_time_t now);

#endif
