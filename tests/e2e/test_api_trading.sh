#!/usr/bin/env bash
# test_api_trading.sh — the trading routes of qb-api against the real
# qb-risk and qb-execution (paper simulator on md.bars): own database, own
# topics (QB_TOPIC_PREFIX) and consumer groups. The topics are made before
# the consumers start (one harmless record each), then
# tests/e2e/api/test_trading.py waits until both services read (an intent
# of a warm-up account goes through risk and execution and fills on a bar
# both bar readers saw), submits orders through POST /api/v1/orders, drives
# fills with bars on md.bars (qbctl produce) and checks orders, fills,
# reports, cancels, positions and the account summary; and every route's
# 4xx cases.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/api/lib.sh"
export QB_TOPIC_PREFIX="apitr${API_TAG}."
api_db_new
produce() { echo "$2" | "$BIN_DIR/qbctl" produce "$1" >"$API_T/produce.out" 2>&1 || api_fail "produce $1: $(cat "$API_T/produce.out")"; }
produce control '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce risk.events '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}'
produce exec.reports '{"account":"nobody"}'
produce md.bars '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}'
produce orders.intents '{"intent_id":"warm-'"$API_TAG"'","account":"warm-'"$API_TAG"'","symbol":"WARM","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","limit_price":"100000000"}'
produce orders '{"order_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","account":"nobody","symbol":"WARM","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","limit_price":"1000000","mode":"TRADING_MODE_PAPER"}'
api_start
api_service qb-risk QB_RISK_GROUP="apitr-rk-$API_TAG" QB_RISK_SNAPSHOT_S=0 QB_RISK_RELOAD_MS=100
api_service qb-execution QB_EXEC_GROUP="apitr-ex-$API_TAG"
WARM_TAG="$API_TAG" api_py "$ROOT/tests/e2e/api/test_trading.py" || api_fail "test_trading.py"
echo "PASS test_api_trading"
