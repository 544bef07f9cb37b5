#!/usr/bin/env bash
# test_api_alerts.sh — the alerts routes of qb-api against the real qb-notify
# (own database, topics and consumer group, reading from the end): a rule created
# through the API is stored by qb-notify with the caller as owner, fires on
# bars published on md.bars, lands in the caller's in-app inbox (GET
# /alerts/notifications) and at a signed webhook (the secret went through,
# and is never shown back); rules are changed and deleted by their owner
# (or an admin) only; every route's 4xx. Checks in tests/e2e/api/test_alerts.py.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/tests/e2e/api/lib.sh"
export QB_TOPIC_PREFIX="apint${API_TAG}."  # own topics

api_db_new
QBCTL="$BIN_DIR/qbctl"
produce() { echo "$2" | "$QBCTL" produce "$1" >/dev/null 2>&1 || api_fail "qbctl produce $1"; }
# the topics exist before the consumer subscribes
produce control '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce md.bars '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}'
produce risk.events '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}'
produce signals '{"signal_id":"warm","account":"nobody","strategy_id":"warm","symbol":"WARM","timeframe":"1d","direction":"SIGNAL_DIRECTION_FLAT","bar_ts":"1600000000000000000"}'
produce exec.reports '{"order_id":"warm","account":"nobody","symbol":"WARM","status":"ORDER_STATUS_NEW","side":"SIDE_BUY","sequence":"1"}'
produce backtest.events '{"run_id":"warm"}'

api_service qb-notify QB_NOTIFY_GROUP="api-nt-$API_TAG" QB_NOTIFY_FLUSH_MS=20 QB_NOTIFY_RELOAD_MS=100 \
  QB_NOTIFY_WORKERS=1 QB_NOTIFY_POLL_MS=50 QB_NOTIFY_WARMUP=false QB_KAFKA_AUTO_OFFSET_RESET=latest
api_start
api_py "$ROOT/tests/e2e/api/test_alerts.py" || api_fail "test_alerts.py"
