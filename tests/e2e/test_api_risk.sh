#!/usr/bin/env bash
# test_api_risk.sh — the risk routes of qb-api against the real qb-risk and
# qb-execution (own database, topics and consumer groups, reading from the end):
# limits set through PUT are applied by qb-risk and read back with GET; the
# kill switch engaged through POST halts the account (risk.accounts), makes a
# KILL_SWITCH_ON risk event and qb-execution's trading.kill_switch row, and
# only an admin releases it; a RISK_SNAPSHOT through the API stores VaR
# figures of a real position that GET /risk/var shows; every route's 4xx.
# The checks are in tests/e2e/api/test_risk.py.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/tests/e2e/api/lib.sh"
export QB_TOPIC_PREFIX="apirk${API_TAG}."  # own topics: a platform-wide switch stays here

api_db_new
QBCTL="$BIN_DIR/qbctl"
produce() { echo "$2" | "$QBCTL" produce "$1" >/dev/null 2>&1 || api_fail "qbctl produce $1"; }
# the topics exist before the consumers subscribe
produce control '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce risk.events '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}'
produce md.bars '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}'
produce exec.reports '{"order_id":"warm","account":"nobody","symbol":"WARM","status":"ORDER_STATUS_NEW","side":"SIDE_BUY","sequence":"1"}'

# 60 daily bars of one symbol: the snapshot's return series
RSYM="APIR$RANDOM"
awk -v seed=$RANDOM 'BEGIN { srand(seed); print "Date,Open,High,Low,Close,Adj Close,Volume"
  for (k = 0; k < 60; k++) { t = 1700006400 + 86400 * k; c = (k == 59) ? 100 : 100 * (1 + (rand() - 0.5) * 0.04)
    printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,1000\n", strftime("%Y-%m-%d", t, 1), c, c * 1.01, c * 0.99, c, c } }' >"$API_T/bars.csv"
QB_PG_DSN="$API_DSN" "$QBCTL" import --csv "$API_T/bars.csv" --symbol "$RSYM" >/dev/null || api_fail "import"

api_service qb-risk QB_RISK_GROUP="api-rk-$API_TAG" QB_RISK_RELOAD_MS=100 QB_RISK_SNAPSHOT_S=0 \
  QB_KAFKA_AUTO_OFFSET_RESET=latest
api_service qb-execution QB_EXEC_GROUP="api-ex-$API_TAG" QB_EXEC_POLL_MS=100 \
  QB_KAFKA_AUTO_OFFSET_RESET=latest
api_start
RISK_SYMBOL="$RSYM" api_py "$ROOT/tests/e2e/api/test_risk.py" || api_fail "test_risk.py"
