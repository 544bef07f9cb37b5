#!/usr/bin/env bash
# test_api_market_strat.sh — qb-api strategies, features and signals routes
# against the real services (tests/e2e/api/test_market_strat.py does the HTTP
# part): qb-features and qb-execution run on the test database, so a strategy
# created, changed, enabled, switched to live and approved through the API is
# seen applied by them (features.strategies, trading.strategy_modes); bars
# imported with `qbctl import` (published) then make qb-features compute the
# features and signals the read routes serve.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/api/lib.sh"
api_db_new
api_start
api_service qb-features QB_FEATURES_GROUP="feat-$API_TAG" QB_FEATURES_RELOAD_MS=100 \
  QB_FEATURES_FLUSH_MS=50
api_service qb-execution QB_EXEC_GROUP="ex-$API_TAG" QB_EXEC_POLL_MS=100
export API_T
api_py "$ROOT/tests/e2e/api/test_market_strat.py" || api_fail "test_market_strat.py"
