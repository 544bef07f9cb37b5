#!/usr/bin/env bash
# test_qb_risk.sh — qb-risk on the harness PostgreSQL, Redis and bus, one
# deployment (own database, own consumer group), driven through the topics
# like qb-features and an operator would (qbctl produce); qb-execution does
# not exist yet, so the test produces the ExecutionReports itself.
# Asserted:
#  - a LONG signal becomes exactly ONE sized order on `orders` (order id =
#    UUID v5 of the signal id, qty = 1% of 100000 / stop 2.00 = 500, at
#    max_risk_per_trade exactly); the same signal again adds nothing;
#  - a manual intent above a per-symbol max_position_qty is rejected on
#    exec.reports with REASON_CODE_MAX_POSITION, with a LIMIT_BREACH event;
#  - SET_LIMITS above a hard maximum is refused whole (audit row
#    'refused', RiskEvent LIMITS_REFUSED, nothing stored); an applied one is
#    audited with old and new values;
#  - fills that lose 5.5% in a day pause the account (DAILY_LOSS_PAUSE) and
#    the next signal is rejected with REASON_CODE_DAILY_LOSS_PAUSE;
#  - fills that lose 20.5% from the high-water mark halt the other account
#    (KILL_SWITCH_ON, limit MAX_DRAWDOWN); its next signal is rejected with
#    REASON_CODE_KILL_SWITCH; a bar and time do not resume it; RESUME on
#    control does, and the next signal is approved;
#  - cash and positions in risk.account_state / risk.positions are exact;
#    Redis has the account copy; a RISK_SNAPSHOT command stores VaR figures;
#  - /metrics passes promtool; SIGTERM exits 0.
# QB_TEST_KEEP_DB=1 keeps the test database for inspection.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-risk"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
DB="qbrisk_$TAG"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "${QB_TEST_KEEP_DB:-}" ] || psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
rk_sql_dir() {
  local d="$T/sql" max=0 n f
  mkdir -p "$d"
  cp "$ROOT"/sql/[0-9]*.sql "$d/"
  for f in "$d"/[0-9]*.sql; do n=$((10#$(basename "$f" | cut -c1-4))); [ $n -gt $max ] && max=$n; done
  for n in $(seq 1 $max); do
    ls "$d"/$(printf %04d $n)_*.sql >/dev/null 2>&1 ||
      printf -- '-- placeholder (test only)\nSELECT 1;\n' >"$d/$(printf %04d $n)_placeholder.sql"
  done
  echo "$d"
}
rk_uuid() { cat /proc/sys/kernel/random/uuid; }
# The order id qb-risk derives from a cause id (libs/risk qb_risk_order_id).
rk_order_id() { python3 -c "import uuid,sys; print(uuid.uuid5(uuid.UUID('5b0a7c1e-3f2d-4e8a-9c61-2d7e4b8f0a93'), sys.argv[1] + '|1'))" "$1"; }
rk_produce() { # topic json-line
  echo "$2" | "$QBCTL" produce "$1" >"$T/pout" 2>&1 || fail "qbctl produce $1: $(cat "$T/pout")"
}
rk_free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || fail "no free port"
}
rk_wait_ready() { # port pid
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || fail "qb-risk exited early"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz" || true)" = 200 ] && return
    sleep 0.1
  done
  fail "qb-risk never ready"
}
# A signal as JSON: account symbol direction(LONG|SHORT|FLAT) stop ref signal_id
rk_signal() {
  echo '{"signal_id":"'"$6"'","account":"'"$1"'","strategy_id":"t-'"$TAG"'","symbol":"'"$2"'","timeframe":"1d","direction":"SIGNAL_DIRECTION_'"$3"'","confidence":1,"stop_distance":"'"$4"'","reference_price":"'"$5"'","bar_ts":"1700000000000000000","reason":"test"}'
}
# Wait until the group reads: a FLAT probe signal per account (nothing to
# trade: a rejection, no state), sent again until decided (same id: decided
# once). With auto.offset.reset=latest a new group starts where the topics
# end once its partitions' positions are known; this waits for that.
rk_sync() { # account...
  local a ok
  for _ in $(seq 1 100); do
    ok=1
    for a in "$@"; do
      [ "$(q "SELECT count(*) FROM risk.orders WHERE cause_id = 'probe-$a'")" = 1 ] && continue
      ok=0
      rk_produce signals "$(rk_signal "$a" PROBE FLAT 0 100000000 "probe-$a")"
    done
    [ $ok = 1 ] && return
    sleep 0.2
  done
  fail "qb-risk never decided the probe signals"
}
# A fill report: account order_id symbol side(BUY|SELL) qty price fill_id [status]
rk_fill() {
  echo '{"order_id":"'"$2"'","account":"'"$1"'","symbol":"'"$3"'","status":"'"${8:-ORDER_STATUS_FILLED}"'","side":"SIDE_'"$4"'","fill_qty":"'"$5"'","fill_price":"'"$6"'","commission":"0","cum_qty":"'"$5"'","leaves_qty":"0","order_qty":"'"$5"'","fill_id":"'"$7"'","sequence":"1"}'
}

SQL_DIR=$(rk_sql_dir)
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" "$QBCTL" migrate >/dev/null
export QB_SQL_DIR="$SQL_DIR"

PORT=$(rk_free_port)
QB_PG_DSN="$DSN" QB_ADMIN_PORT=$PORT QB_ADMIN_BIND=127.0.0.1 QB_RISK_GROUP="rk-$TAG" \
  QB_RISK_RELOAD_MS=100 QB_RISK_SNAPSHOT_S=0 QB_KAFKA_AUTO_OFFSET_RESET=latest QB_LOG_LEVEL=info \
  "$BIN" >/dev/null 2>"$T/logA" &
PA=$!; pids+=("$PA")
rk_wait_ready "$PORT" "$PA"
for _ in $(seq 1 300); do grep -q '"msg":"assigned' "$T/logA" && break; sleep 0.1; done
grep -q '"msg":"assigned' "$T/logA" || fail "qb-risk got no partitions"
ACC="rk1-$TAG"; ACC2="rk2-$TAG"
rk_sync "$ACC" "$ACC2"

# Bars: 60 days of S1 (around 100, last close 100.00) and S2 (around 50).
S1="RKA$RANDOM"; S2="RKB$RANDOM"
for s in "$S1" "$S2"; do
  base=100; [ "$s" = "$S2" ] && base=50
  awk -v b=$base -v seed=$RANDOM 'BEGIN { srand(seed); print "Date,Open,High,Low,Close,Adj Close,Volume"
    for (k = 0; k < 60; k++) { t = 1700006400 + 86400 * k; c = (k == 59) ? b : b * (1 + (rand() - 0.5) * 0.04)
      printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,1000\n", strftime("%Y-%m-%d", t, 1), c, c * 1.01, c * 0.99, c, c } }' >"$T/$s.csv"
  QB_PG_DSN="$DSN" "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" >/dev/null || fail "import $s"
done
sleep 1

cmd() { # kind account params-json-fragment
  rk_produce control '{"command_id":"'"$(rk_uuid)"'","target":"qb-risk","kind":"COMMAND_KIND_'"$1"'","issued_by":"test-op","reason":"e2e","account":"'"$2"'"'"$3"'}'
}
# A per-symbol limit (applied, audited), then one above a hard maximum.
cmd SET_LIMITS "$ACC" ',"limits":{"limits":[{"kind":"LIMIT_KIND_MAX_POSITION_QTY","value":"10000000000","symbol":"'"$S2"'"}]}'
cmd SET_LIMITS "$ACC" ',"limits":{"limits":[{"kind":"LIMIT_KIND_MAX_RISK_PER_TRADE","value":"50000000"}]}'
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.limit_audit WHERE account = '$ACC'")" = 2 ] && break; sleep 0.1; done
[ "$(q "SELECT outcome || ':' || coalesce(old_value::text, 'null') || ':' || new_value || ':' || issued_by FROM risk.limit_audit WHERE account = '$ACC' AND kind = 3")" = "applied:null:10000000000:test-op" ] ||
  fail "audit of the applied limit: $(q "SELECT * FROM risk.limit_audit")"
[ "$(q "SELECT outcome FROM risk.limit_audit WHERE account = '$ACC' AND kind = 11")" = refused ] || fail "hard maximum not refused"
[ "$(q "SELECT count(*) FROM risk.limits WHERE account = '$ACC' AND kind = 11")" = 0 ] || fail "refused limit was stored"
grep -q "refused: MAX_RISK_PER_TRADE: value 0.5 exceeds the hard maximum 0.05" "$T/logA" || fail "refusal not logged"

# 1. A signal becomes exactly one sized order.
SIG1="sig1-$TAG"; OID1=$(rk_order_id "$SIG1")
rk_produce signals "$(rk_signal "$ACC" "$S1" LONG 200000000 10000000000 "$SIG1")"
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE order_id = '$OID1' AND published")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT approved || ':' || qty FROM risk.orders WHERE order_id = '$OID1'")" = "true:50000000000" ] ||
  fail "signal 1: $(q "SELECT approved, qty, reason_text FROM risk.orders WHERE order_id = '$OID1'")"
rk_produce signals "$(rk_signal "$ACC" "$S1" LONG 200000000 10000000000 "$SIG1")" # again
# 2. A manual intent over max_position_qty of S2 (100) is rejected.
INT1="int1-$TAG"; OID2=$(rk_order_id "$INT1")
rk_produce orders.intents '{"intent_id":"'"$INT1"'","account":"'"$ACC"'","symbol":"'"$S2"'","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","qty":"20000000000","limit_price":"5000000000","stop_loss_price":"4900000000","requested_by":"alice"}'
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE order_id = '$OID2' AND published")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT approved || ':' || reason_code FROM risk.orders WHERE order_id = '$OID2'")" = "false:19" ] ||
  fail "intent: $(q "SELECT approved, reason_code, reason_text FROM risk.orders WHERE order_id = '$OID2'")"

# 3. Fills: buy 500 at 100, sell 500 at 89: a day's loss of 5500 >= 5% -> paused.
rk_produce exec.reports "$(rk_fill "$ACC" "$OID1" "$S1" BUY 50000000000 10000000000 "f1-$TAG")"
rk_produce exec.reports "$(rk_fill "$ACC" "man-$TAG" "$S1" SELL 50000000000 8900000000 "f2-$TAG")"
for _ in $(seq 1 100); do [ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC'")" = PAUSED ] && break; sleep 0.1; done
[ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC'")" = PAUSED ] || fail "daily loss did not pause $ACC"
SIG2="sig2-$TAG"; OID3=$(rk_order_id "$SIG2")
rk_produce signals "$(rk_signal "$ACC" "$S1" LONG 200000000 10000000000 "$SIG2")"
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE order_id = '$OID3' AND published")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT approved || ':' || reason_code FROM risk.orders WHERE order_id = '$OID3'")" = "false:2" ] ||
  fail "signal while paused: $(q "SELECT approved, reason_code, reason_text FROM risk.orders WHERE order_id = '$OID3'")"

# 4. Drawdown: buy 500 at 100, sell at 59: 20.5% below the high-water mark -> halted.
rk_produce exec.reports "$(rk_fill "$ACC2" "m1-$TAG" "$S1" BUY 50000000000 10000000000 "g1-$TAG")"
rk_produce exec.reports "$(rk_fill "$ACC2" "m2-$TAG" "$S1" SELL 50000000000 5900000000 "g2-$TAG")"
for _ in $(seq 1 100); do [ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC2'")" = HALTED ] && break; sleep 0.1; done
[ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC2'")" = HALTED ] || fail "max drawdown did not halt $ACC2"
SIG3="sig3-$TAG"; OID4=$(rk_order_id "$SIG3")
rk_produce signals "$(rk_signal "$ACC2" "$S1" LONG 200000000 10000000000 "$SIG3")"
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE order_id = '$OID4' AND published")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT approved || ':' || reason_code FROM risk.orders WHERE order_id = '$OID4'")" = "false:3" ] ||
  fail "signal while halted: $(q "SELECT approved, reason_code, reason_text FROM risk.orders WHERE order_id = '$OID4'")"
# A recovering bar does not resume it.
rk_produce md.bars '{"symbol":"'"$S1"'","timeframe":"1d","ts":"1800000000000000000","open":"12000000000","high":"12000000000","low":"12000000000","close":"12000000000","volume":"100000000000"}'
sleep 1
[ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC2'")" = HALTED ] || fail "$ACC2 resumed without RESUME"
cmd RESUME "$ACC2" ''
for _ in $(seq 1 100); do [ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC2'")" = ACTIVE ] && break; sleep 0.1; done
[ "$(q "SELECT status FROM risk.accounts WHERE account = '$ACC2'")" = ACTIVE ] || fail "RESUME did not resume $ACC2"
sleep 0.3 # the owner reloads the state (every 100 ms)
SIG4="sig4-$TAG"; OID5=$(rk_order_id "$SIG4")
rk_produce signals "$(rk_signal "$ACC2" "$S1" LONG 200000000 12000000000 "$SIG4")"
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE order_id = '$OID5' AND published")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT approved FROM risk.orders WHERE order_id = '$OID5'")" = t ] ||
  fail "signal after RESUME: $(q "SELECT approved, reason_code, reason_text FROM risk.orders WHERE order_id = '$OID5'")"

# Books: ACC 100000 - 50000 + 44500 = 94500, flat; ACC2 100000 - 50000 + 29500 = 79500.
sleep 0.5
[ "$(q "SELECT cash FROM risk.account_state WHERE account = '$ACC'")" = 9450000000000 ] || fail "cash of $ACC: $(q "SELECT cash FROM risk.account_state WHERE account = '$ACC'")"
[ "$(q "SELECT cash FROM risk.account_state WHERE account = '$ACC2'")" = 7950000000000 ] || fail "cash of $ACC2"
[ "$(q "SELECT qty || ':' || realized FROM risk.positions WHERE account = '$ACC' AND symbol = '$S1'")" = "0:-550000000000" ] || fail "position of $ACC"

# Topics: one order for SIG1; the rejections with their reason codes; the events.
timeout 60 "$QBCTL" tail orders --from-beginning --timeout-ms 3000 2>/dev/null >"$T/orders" || true
[ "$(grep -c "\"order_id\":\"$OID1\"" "$T/orders")" = 1 ] || fail "order $OID1 is $(grep -c "$OID1" "$T/orders") times on orders"
grep "\"order_id\":\"$OID1\"" "$T/orders" | grep -q '"qty":"50000000000"' || fail "order qty on the topic"
timeout 60 "$QBCTL" tail exec.reports --from-beginning --timeout-ms 3000 2>/dev/null >"$T/reports" || true
grep "\"order_id\":\"$OID2\"" "$T/reports" | grep -q '"reason_code":"REASON_CODE_MAX_POSITION"' || fail "intent rejection on exec.reports"
grep "\"order_id\":\"$OID3\"" "$T/reports" | grep -q '"reason_code":"REASON_CODE_DAILY_LOSS_PAUSE"' || fail "pause rejection on exec.reports"
grep "\"order_id\":\"$OID4\"" "$T/reports" | grep -q '"reason_code":"REASON_CODE_KILL_SWITCH"' || fail "kill switch rejection on exec.reports"
timeout 60 "$QBCTL" tail risk.events --from-beginning --timeout-ms 3000 2>/dev/null >"$T/events" || true
grep "\"account\":\"$ACC\"" "$T/events" | grep -q RISK_EVENT_KIND_DAILY_LOSS_PAUSE || fail "no DAILY_LOSS_PAUSE event"
grep "\"account\":\"$ACC2\"" "$T/events" | grep RISK_EVENT_KIND_KILL_SWITCH_ON | grep -q LIMIT_KIND_MAX_DRAWDOWN || fail "no KILL_SWITCH_ON (max drawdown) event"
grep "\"account\":\"$ACC2\"" "$T/events" | grep -q RISK_EVENT_KIND_RESUMED || fail "no RESUMED event"
grep "\"account\":\"$ACC\"" "$T/events" | grep -q RISK_EVENT_KIND_LIMITS_REFUSED || fail "no LIMITS_REFUSED event"
grep "\"account\":\"$ACC\"" "$T/events" | grep RISK_EVENT_KIND_LIMIT_BREACH | grep -q LIMIT_KIND_MAX_POSITION_QTY || fail "no LIMIT_BREACH event"

# Snapshot on demand: ACC2 holds S1 after its new order fills.
rk_produce exec.reports "$(rk_fill "$ACC2" "$OID5" "$S1" BUY "$(q "SELECT qty FROM risk.orders WHERE order_id = '$OID5'")" 12000000000 "g3-$TAG")"
sleep 0.5
cmd RISK_SNAPSHOT "$ACC2" ''
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.snapshots WHERE account = '$ACC2'")" -ge 1 ] && break; sleep 0.1; done
[ "$(q "SELECT (figures->>'periods')::int > 50 AND (figures->>'var_hist_95')::float8 > 0 FROM risk.snapshots WHERE account = '$ACC2'")" = t ] ||
  fail "snapshot: $(q "SELECT figures FROM risk.snapshots")"

redis-cli -u "$QB_REDIS_URL" GET "qb:risk:account:$ACC" | grep -q '"status":"PAUSED"' || fail "redis copy of $ACC"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$T/metrics" || fail "/metrics"
promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics"
kill -TERM "$PA"; wait "$PA" || fail "exit $? after SIGTERM"
pids=()
echo "qb-risk: signal -> 1 sized order, limit rejection, refused hard maximum, daily-loss pause, drawdown halt + RESUME, books exact, snapshot, promtool ok"
