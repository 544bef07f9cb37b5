#!/usr/bin/env bash
# test_api_backtests.sh — the backtest routes of qb-api against the real
# qb-backtest: own database (two synthetic symbols x two years of daily bars
# through `qbctl backfill`), own topics (QB_TOPIC_PREFIX) and consumer group.
# tests/e2e/api/test_backtests.py submits a backtest, a walk-forward and a
# grid search through POST /api/v1/backtests, follows them to FINISHED and
# checks status, result, trades (pages), equity (bucketed), windows, the
# HTML report and the list; and every route's 4xx cases (bad body fields
# named, unknown runs, runs not finished, bad parameters).
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/api/lib.sh"
export QB_TOPIC_PREFIX="apibt${API_TAG}."
api_db_new
QB_PG_DSN="$API_DSN" "$BIN_DIR/qbctl" backfill --source synthetic --symbols APIBT1,APIBT2 \
  --from 2018-01-01 --to 2020-01-01 --timeframe 1d --all --no-publish --progress never \
  >"$API_T/backfill.log" 2>&1 || api_fail "bars: $(tail -3 "$API_T/backfill.log")"
api_start
api_service qb-backtest QB_BACKTEST_GROUP="apibt-$API_TAG" QB_BACKTEST_BATCH=2
api_py "$ROOT/tests/e2e/api/test_backtests.py" || api_fail "test_backtests.py"
echo "PASS test_api_backtests"
