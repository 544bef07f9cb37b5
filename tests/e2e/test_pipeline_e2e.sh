#!/usr/bin/env bash
# test_pipeline_e2e.sh — the live pipeline end to end (issue 11, item 1):
# stored bars of many symbols replayed through data -> features -> signals
# -> risk -> orders -> execution (paper simulator) -> exec.reports -> risk
# positions, notification and the API; the result must equal a backtest of
# the same strategy on the same bars with the same fill model.
#
# The set-up (bars, backtest, topics, service settings) is shared with
# tests/e2e/test_pipeline_chaos.sh: tests/e2e/pipeline/setup.sh.
# The stack is `make run`'s: qb-data, qb-features, qb-risk, qb-execution,
# qb-notify and qb-api on the harness's PostgreSQL, Redis and qb-bus, on a
# private database and private topics (QB_TOPIC_PREFIX).
# Bars: the real Yahoo daily bars of ORCL, NVDA and YHOO (read from
# $QB_ROOT/../shared/data, never copied; ~13.7k bars over 20 years) plus
# PIPE_SYNTH (24) generated random-walk symbols (PIPE_SYNTH_BARS each),
# loaded with `qbctl import --no-publish`.
# The strategy (sma_cross 10/40, long-short), the account's limits (fixed
# quantity sizing) and a fill alert rule (in-app + a webhook to a local
# server) are set through qb-api, as a user would.
# The comparison backtest is `qbctl backtest` on the bars as stored (exported
# from md.bars), with the paper simulator's settings (0.1%, at least 1 per order
# commission, 5 bps slippage, next-open fills).
# tests/e2e/pipeline/pipeline.py replays the stored bars onto md.bars in
# global time order (a lockstep replay: see there) and checks:
#   - every bar produced its features (features.features and the features
#     topic);
#   - every signal was decided: an order on `orders` or a rejection with a
#     reason code and text (risk.orders, exec.reports);
#   - every order ended in a terminal state (the orders of signals on a
#     symbol's last bar, which have no next bar, are canceled through the
#     API and must end CANCELED);
#   - the fills equal the backtest's (symbol, time, side, quantity, price,
#     commission), the positions and the account the API shows equal the
#     backtest's positions, cash and equity to the cent;
#   - every fill was notified once, in-app and to the webhook.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/api/lib.sh"
source "$ROOT/tests/e2e/pipeline/setup.sh"  # bars, backtest, topics (see there)

# ---- the platform ---------------------------------------------------------------
api_start
for svc in "${PIPE_SERVICES[@]}"; do
  mapfile -t envs < <(pipe_services_env "$svc")
  api_service "$svc" "${envs[@]}"
done

PIPE_T="$T" PIPE_TAG="$API_TAG" PIPE_SYMBOLS="$SYMLIST" PIPE_PARAMS="$PARAMS" PIPE_QTY="$QTY" \
  PIPE_CASH="$CASH" PIPE_NBARS="$NBARS" \
  api_py "$ROOT/tests/e2e/pipeline/pipeline.py" || api_fail "pipeline.py"
echo "PASS test_pipeline_e2e"
