#!/usr/bin/env bash
# test_api_market.sh — qb-api market routes and ingest jobs against the real
# stack (tests/e2e/api/test_market.py does the HTTP part):
#  - bars seeded the real way: `qbctl import` (stored, published, latest bar
#    cached in Redis) for ACT (1d, a 2:1 split and a dividend imported with
#    `qbctl actions import`) and ACT at 1h; PGO imported with --no-publish
#    (PostgreSQL only: its quote must come from PostgreSQL);
#  - qb-data runs on the test database, so the ingest job commands the API
#    sends are applied for real (job appears, pauses, resumes, runs, goes);
#  - a second qb-api whose Redis is unreachable answers quotes from
#    PostgreSQL.
set -euo pipefail
source "$(cd "$(dirname "$0")" && pwd)/api/lib.sh"
api_db_new
QBCTL="$BIN_DIR/qbctl"
imp() { QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@" >"$API_T/imp.out" 2>&1 \
          || { cat "$API_T/imp.out" >&2; api_fail "qbctl $*"; }; }

cat >"$API_T/act.csv" <<'CSV'
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100,104,98,102,102,1000
2024-01-03,102,106,101,105,105,1201
2024-01-04,52.5,53,51.25,52,52,2500
2024-01-05,52,54,51.75,53.5,53.5,2200
2024-01-08,53,54,52,53,53,2000
2024-01-09,53,54,52.5,53.5,53.5,1800
CSV
cat >"$API_T/act_1h.csv" <<'CSV'
time,open,high,low,close,volume
2024-01-09T14:00:00Z,53,53.5,52.75,53.25,100
2024-01-09T15:00:00Z,53.25,53.75,53,53.5,120
CSV
cat >"$API_T/pgo.csv" <<'CSV'
Date,Open,High,Low,Close,Adj Close,Volume
2024-02-01,10,11,9,10.5,10.5,500
2024-02-02,10.5,11.5,10,11.25,11.25,600
CSV
# Redis holds latest bars of earlier runs in the shared harness: start clean
for k in $(redis-cli -u "$QB_REDIS_URL" --scan --pattern 'qb:md:last:*' 2>/dev/null || true); do
  redis-cli -u "$QB_REDIS_URL" DEL "$k" >/dev/null
done
imp import --csv "$API_T/act.csv" --symbol ACT
imp import --csv "$API_T/act_1h.csv" --symbol ACT --timeframe 1h --format generic \
  --columns time,open,high,low,close,volume --time-format iso
imp actions import --csv "$ROOT/tests/fixtures/md/actions_good.csv" --symbol ACT
imp import --csv "$API_T/pgo.csv" --symbol PGO --no-publish
imp import --csv "$API_T/pgo.csv" --symbol BTC-USD --asset-class crypto --no-publish

api_start
API_MAIN=$API
api_service qb-data QB_DATA_TICK_MS=200 QB_PROBE_INTERVAL_MS=200
# the same database through a gateway whose Redis is unreachable
api_start QB_REDIS_URL=redis://127.0.0.1:1
API_NOREDIS=$API
API=$API_MAIN
export API_NOREDIS
api_py "$ROOT/tests/e2e/api/test_market.py" || api_fail "test_market.py"
