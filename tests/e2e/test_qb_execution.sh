#!/usr/bin/env bash
# test_qb_execution.sh — qb-execution on the harness PostgreSQL and bus with
# the paper simulator (md.bars) for PAPER orders and the fake Alpaca server
# (tests/support/qb_fake_alpaca) as the LIVE broker. Own topic prefix and
# database. Asserted:
#  - a market order fills at the next bar's open (report sequence NEW,
#    SUBMITTED, ACCEPTED, FILLED on exec.reports; fills stored);
#  - a bracket entry places its take-profit (LIMIT) and stop-loss (STOP)
#    legs once filled; the take-profit's fill cancels the stop-loss (OCO,
#    reason OCO_SIBLING_FILLED);
#  - CANCEL_ORDER cancels (USER_CANCELED); REPLACE_ORDER cancels (REPLACED)
#    and places the replacement with the new quantity and price;
#  - KILL_SWITCH_ON on risk.events cancels every open order of the account
#    (KILL_SWITCH) and rejects its new orders;
#  - a LIVE order without approval is rejected (MODE_NOT_ALLOWED); after
#    STRATEGY_SET_MODE live with rollout 10% (who and when recorded) a LIVE
#    order of 95 reaches the broker as 9; a backtest-only strategy's order
#    is rejected;
#  - the outbox is drained, `qbctl audit verify` passes, /metrics passes
#    promtool, SIGTERM exits 0.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
TESTS_DIR=${QB_TESTS_DIR:-$(dirname "$BIN_DIR")/tests}
BIN="$BIN_DIR/qb-execution"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
DB="qbex_$TAG"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
SQL_DIR=${QB_TEST_SQL_DIR:-$ROOT/sql}
export QB_TOPIC_PREFIX="ex$TAG."
uuid() { cat /proc/sys/kernel/random/uuid; }
produce() { echo "$2" | "$QBCTL" produce "$1" >"$T/pout" 2>&1 || fail "produce $1: $(cat "$T/pout")"; }
until_q() { # sql expected what
  for _ in $(seq 1 200); do [ "$(q "$1")" = "$2" ] && return; sleep 0.05; done
  fail "$3: got '$(q "$1")', want '$2'"
}

"$TESTS_DIR/it_exec_alpaca" --serve "$T/fa.url" 2>"$T/logfake" &
FAKE=$!; pids+=($FAKE)
for _ in $(seq 1 100); do [ -s "$T/fa.url" ] && break; sleep 0.05; done
URL=$(cat "$T/fa.url") || fail "fake alpaca did not start"

ACC="pp-$TAG"; LACC="lv-$TAG"; SA="XA$RANDOM"; SB="XB$RANDOM"
# the topics exist before the consumer and the bar reader start
produce control '{"command_id":"'"$(uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce risk.events '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}'
produce md.bars '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}'
produce orders '{"order_id":"'"$(uuid)"'","account":"warm","symbol":"WARM","side":"SIDE_BUY","type":"ORDER_TYPE_MARKET","qty":"100000000","mode":"TRADING_MODE_PAPER"}'

QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
  QB_EXEC_GROUP="ex-$TAG" QB_ALPACA_LIVE_KEY_ID=key QB_ALPACA_LIVE_SECRET_KEY=secret \
  QB_EXEC_ALPACA_LIVE_URL="$URL" QB_EXEC_ALPACA_RATE=0 QB_EXEC_POLL_MS=100 \
  QB_EXEC_PAPER_COMMISSION=per_share:0.01:1 QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$T/log" &
P=$!; pids+=($P)
for _ in $(seq 1 200); do grep -q 'qb-execution ready' "$T/log" && break; sleep 0.05; done
grep -q 'qb-execution ready' "$T/log" || fail "not ready"
ADMIN=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log" | head -1 | cut -d: -f2)
until_q "SELECT count(*) FROM trading.orders WHERE account = 'warm'" 1 "warm-up order"

order() { # id account strategy symbol side type qty extra mode
  produce orders '{"order_id":"'"$1"'","cause_id":"c-'"$1"'","cause_kind":"ORDER_CAUSE_SIGNAL","account":"'"$2"'","strategy_id":"'"$3"'","symbol":"'"$4"'","side":"'"$5"'","type":"'"$6"'","time_in_force":"TIME_IN_FORCE_GTC","qty":"'"$7"'00000000"'"$8"',"mode":"'"${9:-TRADING_MODE_PAPER}"'"}'
}
bar() { # symbol day open high low close
  produce md.bars '{"symbol":"'"$1"'","timeframe":"1d","ts":"'"$((1700000000 + $2 * 86400))000000000"'","open":"'"$3"'00000000","high":"'"$4"'00000000","low":"'"$5"'00000000","close":"'"$6"'00000000","volume":"1000000000000"}'
}
st() { q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$1'"; }

# 1. market order -> next bar's open
O1=$(uuid); order "$O1" "$ACC" s1 "$SA" SIDE_BUY ORDER_TYPE_MARKET 10 ""
until_q "SELECT status FROM trading.orders WHERE order_id = '$O1'" 3 "O1 accepted"
bar "$SA" 1 100 101 99 100
until_q "SELECT status || ' ' || cum_qty || ' ' || avg_price || ' ' || commission FROM trading.orders WHERE order_id = '$O1'" "5 1000000000 10000000000 100000000" "O1 filled at the open with a 1.00 minimum fee"
until_q "SELECT string_agg(sequence::text, ',' ORDER BY sequence) FROM trading.reports WHERE order_id = '$O1'" "1,2,3,4" "O1 reports"

# 2. bracket: entry fills -> TP + SL legs; TP fills -> SL canceled (OCO)
O2=$(uuid); order "$O2" "$ACC" s1 "$SB" SIDE_BUY ORDER_TYPE_MARKET 10 ',"leg":"ORDER_LEG_ENTRY","take_profit_price":"11000000000","stop_loss_price":"9500000000"'
until_q "SELECT status FROM trading.orders WHERE order_id = '$O2'" 3 "O2 accepted"
bar "$SB" 1 100 101 99 100
until_q "SELECT count(*) FROM trading.orders WHERE parent_order_id = '$O2' AND status = 3" 2 "bracket legs working"
[ "$(q "SELECT legs_placed FROM trading.orders WHERE order_id = '$O2'")" = t ] || fail "legs_placed not recorded"
TP=$(q "SELECT order_id FROM trading.orders WHERE parent_order_id = '$O2' AND leg = 3")
SL=$(q "SELECT order_id FROM trading.orders WHERE parent_order_id = '$O2' AND leg = 4")
[ "$(q "SELECT type || ' ' || side || ' ' || qty || ' ' || limit_price FROM trading.orders WHERE order_id = '$TP'")" = "2 2 1000000000 11000000000" ] || fail "take-profit leg"
[ "$(q "SELECT type || ' ' || side || ' ' || stop_price FROM trading.orders WHERE order_id = '$SL'")" = "3 2 9500000000" ] || fail "stop-loss leg"
bar "$SB" 2 105 111 104 110
until_q "SELECT status FROM trading.orders WHERE order_id = '$TP'" 5 "take-profit filled"
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$SL'" 6/12 "stop-loss canceled by OCO"

# 3. cancel
O3=$(uuid); order "$O3" "$ACC" s1 "$SA" SIDE_BUY ORDER_TYPE_LIMIT 5 ',"limit_price":"5000000000"'
until_q "SELECT status FROM trading.orders WHERE order_id = '$O3'" 3 "O3 accepted"
produce control '{"command_id":"'"$(uuid)"'","target":"qb-execution","kind":"COMMAND_KIND_CANCEL_ORDER","issued_by":"test","cancel_order":{"order_id":"'"$O3"'"}}'
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$O3'" 6/10 "O3 canceled"

# 4. replace
O4=$(uuid); order "$O4" "$ACC" s1 "$SA" SIDE_BUY ORDER_TYPE_LIMIT 5 ',"limit_price":"5000000000"'
until_q "SELECT status FROM trading.orders WHERE order_id = '$O4'" 3 "O4 accepted"
produce control '{"command_id":"'"$(uuid)"'","target":"qb-execution","kind":"COMMAND_KIND_REPLACE_ORDER","issued_by":"test","replace_order":{"order_id":"'"$O4"'","qty":"700000000","limit_price":"6000000000"}}'
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$O4'" 6/11 "O4 replaced"
until_q "SELECT status || ' ' || qty || ' ' || limit_price FROM trading.orders WHERE replaces_order_id = '$O4'" "3 700000000 6000000000" "replacement working"
R4=$(q "SELECT order_id FROM trading.orders WHERE replaces_order_id = '$O4'")

# 5. kill switch: open orders canceled, new ones rejected
produce risk.events '{"account":"'"$ACC"'","kind":"RISK_EVENT_KIND_KILL_SWITCH_ON","severity":"SEVERITY_CRITICAL","message":"test"}'
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$R4'" 6/3 "kill switch cancel"
O5=$(uuid); order "$O5" "$ACC" s1 "$SA" SIDE_BUY ORDER_TYPE_MARKET 1 ""
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$O5'" 7/3 "order under kill switch"
[ "$(q "SELECT active FROM trading.kill_switch WHERE account = '$ACC'")" = t ] || fail "kill switch not stored"

# 6. live gating and staged rollout; backtest-only strategy
O6=$(uuid); order "$O6" "$LACC" lv "$SA" SIDE_BUY ORDER_TYPE_MARKET 95 "" TRADING_MODE_LIVE
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$O6'" 7/32 "live without approval"
produce control '{"command_id":"'"$(uuid)"'","target":"qb-execution","kind":"COMMAND_KIND_STRATEGY_SET_MODE","issued_by":"alice","account":"'"$LACC"'","strategy_mode":{"strategy_id":"lv","mode":"TRADING_MODE_LIVE","rollout_pct":10}}'
produce control '{"command_id":"'"$(uuid)"'","target":"qb-execution","kind":"COMMAND_KIND_STRATEGY_SET_MODE","issued_by":"alice","account":"'"$LACC"'","strategy_mode":{"strategy_id":"bt","mode":"TRADING_MODE_BACKTEST"}}'
until_q "SELECT count(*) FROM trading.strategy_modes WHERE account = '$LACC'" 2 "modes stored"
[ "$(q "SELECT approved_by || ' ' || (approved_at IS NOT NULL) || ' ' || rollout_pct FROM trading.strategy_modes WHERE account = '$LACC' AND strategy_id = 'lv'")" = "alice true 10" ] || fail "live approval not recorded"
O7=$(uuid); order "$O7" "$LACC" lv "$SA" SIDE_BUY ORDER_TYPE_MARKET 95 "" TRADING_MODE_LIVE
until_q "SELECT status || ' ' || qty || ' ' || requested_qty || ' ' || broker FROM trading.orders WHERE order_id = '$O7'" "3 900000000 9500000000 alpaca-live" "live order at 10%"
curl -sf -H "APCA-API-KEY-ID: key" -H "APCA-API-SECRET-KEY: secret" "$URL/v2/orders:by_client_order_id?client_order_id=$O7" | grep -q '"qty":"9"' || fail "broker did not get qty 9"
O8=$(uuid); order "$O8" "$LACC" bt "$SA" SIDE_BUY ORDER_TYPE_MARKET 1 ""
until_q "SELECT status || '/' || reason_code FROM trading.orders WHERE order_id = '$O8'" 7/32 "backtest-only strategy"

# 7. outbox, audit, metrics, stop
until_q "SELECT count(*) FROM trading.reports WHERE NOT published" 0 "outbox drained"
QB_PG_DSN="$DSN" "$QBCTL" audit verify >"$T/v" || fail "audit verify: $(cat "$T/v")"
curl -sf "http://127.0.0.1:$ADMIN/metrics" >"$T/metrics" || fail "metrics"
grep -q '^qb_exec_orders_total' "$T/metrics" || fail "no qb_exec metrics"
if command -v promtool >/dev/null; then promtool check metrics <"$T/metrics" >"$T/pt" 2>&1 || fail "promtool: $(cat "$T/pt")"; fi
kill -TERM "$P"
wait "$P" || fail "SIGTERM exit status $?"
kill -TERM "$FAKE"; wait "$FAKE" 2>/dev/null || true
echo "PASS test_qb_execution ($(cat "$T/v"))"
