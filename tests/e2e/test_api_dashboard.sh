#!/usr/bin/env bash
# test_api_dashboard.sh — the web dashboard (web/, served by qb-api at /) in
# headless Chromium (Debian's /usr/bin/chromium driven by playwright-core
# from tests/e2e/api/node_modules; both installed by scripts/deps.sh).
#
# Stack: qb-api, qb-risk, qb-execution (paper broker), qb-backtest and
# qb-features on a private database and topic prefix. Seeded the real way:
#  - bars: a generated CSV of 1-minute bars (qbctl import, not published)
#    for the backtest, and daily bars of the traded symbol;
#  - a position: a manual limit order (buy 8 at 105: within the default
#    max_risk_per_trade, 1% of 100000 without a stop) through POST
#    /api/v1/orders (an intent to qb-risk, an order to qb-execution) filled
#    by the paper broker at the open (101) of the next bar, published on
#    md.bars with qbctl produce; qb-risk books the fill;
#  - a strategy instance through POST /api/v1/strategies (qb-features).
# Then tests/e2e/api/dashboard.mjs in the browser: the page loads (nothing
# requested outside the gateway), a bad login shows the API's message, a
# trader logs in, the account summary and the position show, the live
# stream connects, a bad backtest shows the API's error, a parameter-search
# backtest is submitted from the form and its progress bar moves through
# intermediate values to 100% "finished", the metrics and the equity and
# drawdown charts are drawn; the strategy switch and mode select reach
# qb-features / qb-execution; an order placed by another client appears
# live (SSE) and is shown canceled when the page engages the kill switch
# (confirmation dialog, reason audited); the access token is refreshed
# (12 s tokens) without losing the session or the stream. Screenshots are
# saved to ${QB_ARTIFACT_DIR:-$ROOT/build/test-artifacts}/dashboard.png and
# dashboard-kill-switch.png (paths printed).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/tests/e2e/api/lib.sh"
NODE_DIR="$ROOT/tests/e2e/api"
CHROMIUM=${QB_CHROMIUM:-/usr/bin/chromium}
for c in node "$CHROMIUM"; do command -v "$c" >/dev/null || api_fail "$c not installed (make deps)"; done
[ -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
  api_fail "playwright-core missing in $NODE_DIR/node_modules (make deps)"
QBCTL="$BIN_DIR/qbctl"
ART=${QB_ARTIFACT_DIR:-$ROOT/build/test-artifacts}
mkdir -p "$ART"
export QB_TOPIC_PREFIX="dash$API_TAG."
produce() { echo "$2" | "$QBCTL" produce "$1" >"$API_T/pout" 2>&1 || api_fail "produce $1: $(cat "$API_T/pout")"; }
uuid() { cat /proc/sys/kernel/random/uuid; }

api_db_new
q() { psql "$API_DSN" -qAtc "$1"; }

# ---- bars ------------------------------------------------------------------------------------
# BT: 150000 one-minute bars (a random walk) for the backtest: a 36-combination
# search over them takes seconds, so the progress bar has time to move; POS:
# 30 daily bars for the position (last close 100).
BT="DBT$RANDOM"; POS="DPOS$RANDOM"
awk -v seed=$RANDOM 'BEGIN { srand(seed); print "time,open,high,low,close,volume"; p = 100; t = 1577836800
  for (k = 0; k < 150000; k++) { o = p; p = p * (1 + (rand() - 0.5) * 0.004)
    h = (o > p ? o : p) * 1.001; l = (o < p ? o : p) * 0.999
    printf "%d,%.4f,%.4f,%.4f,%.4f,%d\n", t + 60 * k, o, h, l, p, 1000 + int(rand() * 1000) } }' >"$API_T/bt.csv"
QB_PG_DSN="$API_DSN" "$QBCTL" import --csv "$API_T/bt.csv" --symbol "$BT" --format generic \
  --timeframe 1m --time-format unix_s --no-publish >/dev/null || api_fail "import $BT"
awk 'BEGIN { print "time,open,high,low,close,volume"
  for (k = 0; k < 30; k++) { c = 100 + (k % 5) - 2; if (k == 29) c = 100
    printf "%d,%.2f,%.2f,%.2f,%.2f,1000\n", 1700006400 + 86400 * k, c, c + 1, c - 1, c } }' >"$API_T/pos.csv"
QB_PG_DSN="$API_DSN" "$QBCTL" import --csv "$API_T/pos.csv" --symbol "$POS" --format generic \
  --timeframe 1d --time-format unix_s >/dev/null || api_fail "import $POS"
[ "$(q "SELECT count(*) FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol IN ('$BT', '$POS')")" = 150030 ] || api_fail "bars not stored"

# ---- services --------------------------------------------------------------------------------
# the topics exist before the services subscribe (a fresh prefix)
produce control '{"command_id":"'"$(uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce backtest.events '{"run_id":"warm-up","kind":"BACKTEST_EVENT_KIND_PROGRESS"}'
api_service qb-risk QB_RISK_GROUP="rk-$API_TAG" QB_RISK_RELOAD_MS=100 QB_RISK_SNAPSHOT_S=0
api_service qb-execution QB_EXEC_GROUP="ex-$API_TAG" QB_EXEC_POLL_MS=100
api_service qb-backtest QB_BACKTEST_GROUP="bt-$API_TAG" QB_BACKTEST_BATCH=1 QB_BACKTEST_PROGRESS_MS=200
api_service qb-features QB_FEATURES_GROUP="ft-$API_TAG" QB_FEATURES_RELOAD_MS=100
# access tokens of 12 s: the page refreshes its token (and re-opens its
# streams with the new one) several times during the test
api_start QB_API_ACCESS_TTL_S=12
api_py - <<'PY' >"$API_T/creds" || api_fail "users"
import qbapi as q
c = q.setup()
print(c["trader"]["name"], c["trader"]["password"], c["trader"]["key"])
PY
read -r TRADER TRADER_PW TRADER_KEY <"$API_T/creds"

# ---- a position: a limit order filled at the next bar's open ------------------------------------
# (a limit price: qb-risk prices the order without having seen a bar of POS
# on md.bars; the imported bars were published before it started)
ORDER=$(curl -s -w '\n%{http_code}' -X POST "$API/api/v1/orders" -H "X-API-Key: $TRADER_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"symbol":"'"$POS"'","side":"buy","qty":8,"type":"limit","limit_price":105,"time_in_force":"gtc"}')
[ "$(echo "$ORDER" | tail -1)" = 202 ] || api_fail "POST /api/v1/orders: $ORDER"
OID=$(echo "$ORDER" | head -1 | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("order_id") or d.get("intent_id") or "")')
for _ in $(seq 1 200); do
  [ "$(q "SELECT count(*) FROM trading.orders WHERE symbol = '$POS'")" -ge 1 ] && break; sleep 0.1
done
[ "$(q "SELECT count(*) FROM trading.orders WHERE symbol = '$POS'")" -ge 1 ] ||
  api_fail "order $OID never reached qb-execution (qb-risk: $(q "SELECT approved, reason_code, reason_text FROM risk.orders WHERE symbol = '$POS'"))"
produce md.bars '{"symbol":"'"$POS"'","timeframe":"1d","ts":"'"$(( (1700006400 + 86400 * 30) ))000000000"'","open":"10100000000","high":"10200000000","low":"10000000000","close":"10150000000","volume":"100000000000"}'
for _ in $(seq 1 200); do
  [ "$(q "SELECT coalesce(sum(qty), 0) FROM risk.positions WHERE symbol = '$POS'")" = 800000000 ] && break; sleep 0.1
done
[ "$(q "SELECT coalesce(sum(qty), 0) FROM risk.positions WHERE symbol = '$POS'")" = 800000000 ] ||
  api_fail "no position of 8 $POS booked (orders: $(q "SELECT status FROM trading.orders WHERE symbol = '$POS'"))"

# ---- a strategy instance for the strategy controls (qb-features stores it) ---------------------
SID="dash-sma-$API_TAG"
R=$(curl -s -w '\n%{http_code}' -X POST "$API/api/v1/strategies" -H "X-API-Key: $TRADER_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"strategy_id":"'"$SID"'","kind":"sma_cross","params":{"fast":5,"slow":20},"symbols":["'"$POS"'"],"timeframe":"1d","account":"paper-1"}')
[ "$(echo "$R" | tail -1)" = 202 ] || api_fail "POST /api/v1/strategies: $R"
for _ in $(seq 1 200); do [ "$(q "SELECT enabled FROM features.strategies WHERE strategy_id = '$SID'")" = t ] && break; sleep 0.1; done
[ "$(q "SELECT enabled FROM features.strategies WHERE strategy_id = '$SID'")" = t ] || api_fail "strategy $SID not stored by qb-features"

# ---- the browser -----------------------------------------------------------------------------
SHOT="$ART/dashboard.png"
rm -f "$SHOT" "$ART/dashboard-kill-switch.png"
(cd "$NODE_DIR" && API="$API" DASH_USER="$TRADER" DASH_PASS="$TRADER_PW" DASH_SYMBOL="$POS" DASH_QTY=8 DASH_AVG=101.00 \
  DASH_STRATEGY="$SID" \
  BT_STRATEGY=sma_cross BT_SYMBOLS="$BT" BT_TIMEFRAME=1m BT_FROM= BT_TO= \
  BT_PARAMS='{"fast": 10, "slow": 40}' \
  BT_GRID='{"fast": [5, 10, 15, 20, 25, 30], "slow": [40, 60, 80, 100, 120, 150]}' \
  DASH_SHOT="$SHOT" CHROMIUM="$CHROMIUM" node dashboard.mjs) | tee "$API_T/browser.out" ||
  api_fail "browser test: $(grep FAIL "$API_T/browser.out" | head -5)"
[ -s "$SHOT" ] || api_fail "no screenshot"
# what the page did reached the services
[ "$(q "SELECT enabled FROM features.strategies WHERE strategy_id = '$SID'")" = f ] || api_fail "strategy not disabled"
[ "$(q "SELECT mode FROM trading.strategy_modes WHERE strategy_id = '$SID'")" = backtest ] || api_fail "strategy mode not off"
[ "$(q "SELECT status FROM risk.accounts WHERE account = '*'")" = HALTED ] || api_fail "kill switch not engaged"
[ "$(q "SELECT count(*) FROM api.audit WHERE action = 'kill_switch_on' AND detail->>'reason' = 'dashboard e2e'")" = 1 ] ||
  api_fail "kill switch reason not audited"
echo "screenshots: $SHOT $ART/dashboard-kill-switch.png"
