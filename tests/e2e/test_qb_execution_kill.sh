#!/usr/bin/env bash
# test_qb_execution_kill.sh — qb-execution killed with SIGKILL mid-stream, on
# the harness PostgreSQL and bus, against the stateful fake Alpaca server
# (tests/support/qb_fake_alpaca, run by `it_exec_alpaca --serve`): the
# broker's truth. The fake fills every open order in steps (half of what is
# left every 30 ms), answers every 7th POST /v2/orders with 503 AFTER placing
# the order (a lost response) and every 11th request with 429.
#
# 300 orders of 3 accounts over 5 symbols (market and limit, buys and sells)
# are on `orders` (own topic prefix) before qb-execution starts; it is
# killed with SIGKILL once about a third are stored, then restarted: it
# reconciles before it consumes anything. Then the 300 orders are produced
# AGAIN (a replayed cause). Asserted:
#  - the restart reconciled before its consumer started;
#  - the fake holds exactly 300 orders and accepted exactly 300 POSTs (the
#    retried lost responses were refused as duplicates: client_order_id);
#  - every order is FILLED in trading.orders with cum_qty = the fake's
#    filled_qty, the fills of each order sum to it, no fill id twice;
#  - net positions per symbol from trading.fills equal the fake's
#    /v2/positions; no position discrepancy was reported;
#  - the replay sent nothing to the broker (duplicates ignored);
#  - `qbctl audit verify` passes; UPDATE/DELETE on the audit log are
#    refused; after a manual tamper (trigger disabled by a superuser) it
#    fails naming the tampered row;
#  - SIGTERM exits 0.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
TESTS_DIR=${QB_TESTS_DIR:-$(dirname "$BIN_DIR")/tests}
BIN="$BIN_DIR/qb-execution"
QBCTL="$BIN_DIR/qbctl"
FAKE="$TESTS_DIR/it_exec_alpaca"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
DB="qbexk_$TAG"
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
QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" "$QBCTL" migrate >/dev/null || fail "migrate"
export QB_TOPIC_PREFIX="exk$TAG."

# The broker.
QB_FAKE_ALPACA_FILL_MS=30 QB_FAKE_ALPACA_POST_FAIL_EVERY=7 QB_FAKE_ALPACA_THROTTLE_EVERY=11 \
  "$FAKE" --serve "$T/fa.url" 2>"$T/logfake" &
FAKEPID=$!; pids+=($FAKEPID)
for _ in $(seq 1 100); do [ -s "$T/fa.url" ] && break; sleep 0.05; done
URL=$(cat "$T/fa.url") || fail "fake alpaca did not start"
# The fake throttles every 11th request (429) — the test's own queries too: retry.
fa() {
  local out
  for _ in $(seq 1 20); do
    out=$(curl -sf -H "APCA-API-KEY-ID: key" -H "APCA-API-SECRET-KEY: secret" "$URL$1") &&
      { printf '%s\n' "$out"; return 0; }
    sleep 0.1
  done
  return 1
}
stat() { fa /_test/stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# 300 orders: accounts acct0..2, symbols S0..S4; every 5th a LIMIT buy at 200
N=300
uuid() { cat /proc/sys/kernel/random/uuid; }
for i in $(seq 0 $((N - 1))); do
  a=$((i % 3)); s=$((i % 5)); q=$(( (i % 17) + 3 ))
  if [ $((i % 5)) -eq 4 ]; then ty='"type":"ORDER_TYPE_LIMIT","limit_price":"20000000000"'; side=SIDE_BUY
  else ty='"type":"ORDER_TYPE_MARKET"'; if [ $((i % 2)) -eq 0 ]; then side=SIDE_BUY; else side=SIDE_SELL; fi; fi
  echo '{"order_id":"'"$(uuid)"'","cause_id":"sig-'$i'","cause_kind":"ORDER_CAUSE_SIGNAL","account":"acct'$a'-'$TAG'","strategy_id":"st","symbol":"K'$s'X'$TAG'","side":"'$side'",'"$ty"',"time_in_force":"TIME_IN_FORCE_GTC","qty":"'$q'00000000","mode":"TRADING_MODE_PAPER"}'
done >"$T/orders.json"
# the topics exist before the consumer subscribes
echo '{"command_id":"'"$(uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}' | "$QBCTL" produce control >/dev/null
echo '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}' | "$QBCTL" produce risk.events >/dev/null
"$QBCTL" produce orders <"$T/orders.json" >"$T/pout" 2>&1 || fail "produce: $(cat "$T/pout")"

start() { # logfile -> $started
  QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_EXEC_GROUP="exk-$TAG" QB_EXEC_PAPER_BROKER=alpaca QB_EXEC_ALPACA_PAPER_URL="$URL" \
    QB_ALPACA_KEY_ID=key QB_ALPACA_SECRET_KEY=secret QB_EXEC_POLL_MS=100 QB_EXEC_RECON_S=2 QB_EXEC_ALPACA_RATE=0 \
    QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$1" &
  started=$!; pids+=("$started")
}
start "$T/log1"; P=$started
nord() { q "SELECT count(*) FROM trading.orders"; }
for _ in $(seq 1 600); do [ "$(nord)" -ge 100 ] && break; sleep 0.02; done
[ "$(nord)" -ge 100 ] || fail "qb-execution never got going ($(nord) orders)"
kill -KILL "$P"; wait "$P" 2>/dev/null || true
at_kill=$(nord)
[ "$at_kill" -lt $N ] || fail "all orders were done before the kill"
echo "killed with $at_kill of $N orders stored ($(q "SELECT count(*) FROM trading.orders WHERE status = 2") SUBMITTED)"
sleep 0.5 # the broker keeps filling while we are down
start "$T/log2"; P=$started

done_all() { q "SELECT count(*) FROM trading.orders WHERE status = 5"; }
for _ in $(seq 1 900); do [ "$(done_all)" = $N ] && break; sleep 0.1; done
[ "$(done_all)" = $N ] || fail "$(done_all) of $N orders FILLED ($(q "SELECT status, count(*) FROM trading.orders GROUP BY 1"))"

# reconciliation ran before the consumer of the restart
rl=$(grep -n '"reconciled:' "$T/log2" | head -1 | cut -d: -f1)
cl=$(grep -n 'qb-execution ready' "$T/log2" | head -1 | cut -d: -f1)
[ -n "$rl" ] && [ -n "$cl" ] && [ "$rl" -lt "$cl" ] || fail "restart did not reconcile before consuming"

# broker's truth: 300 orders, 300 accepted POSTs
[ "$(stat orders)" = $N ] || fail "the broker holds $(stat orders) orders, want $N"
[ "$(stat posts_accepted)" = $N ] || fail "the broker accepted $(stat posts_accepted) POSTs, want $N"
echo "broker: $(stat posts) POSTs, $(stat posts_accepted) accepted, $(stat posts_duplicate) refused as duplicate client_order_id, $(stat throttled) throttled"

# every order's cum equals the broker's; fills sum to it
fa "/v2/orders?status=all" | python3 -c '
import json, sys
for o in json.load(sys.stdin): print(o["client_order_id"], o["status"], int(round(float(o["filled_qty"]) * 1e8)))' | sort >"$T/broker_orders"
q "SELECT order_id, 'filled', cum_qty FROM trading.orders ORDER BY 1" | tr '|' ' ' | sort >"$T/our_orders"
diff "$T/broker_orders" "$T/our_orders" >"$T/odiff" || fail "orders differ from the broker's: $(head -5 "$T/odiff")"
bad=$(q "SELECT count(*) FROM trading.orders o WHERE cum_qty <> (SELECT coalesce(sum(qty), 0) FROM trading.fills f WHERE f.order_id = o.order_id)")
[ "$bad" = 0 ] || fail "$bad orders whose fills do not sum to cum_qty"
adopted=$(q "SELECT count(*) FROM trading.fills WHERE source = 'reconciliation'")
echo "fills: $(q "SELECT count(*) FROM trading.fills") ($adopted adopted by reconciliation)"

# positions equal the broker's
fa /v2/positions | python3 -c '
import json, sys
for p in json.load(sys.stdin): print(p["symbol"], int(round(float(p["qty"]) * 1e8)))' | sort >"$T/broker_pos"
q "SELECT symbol, sum(CASE side WHEN 1 THEN qty ELSE -qty END) FROM trading.fills GROUP BY 1 HAVING sum(CASE side WHEN 1 THEN qty ELSE -qty END) <> 0 ORDER BY 1" | tr '|' ' ' | sort >"$T/our_pos"
diff "$T/broker_pos" "$T/our_pos" >"$T/pdiff" || fail "positions differ: $(cat "$T/pdiff")"
[ -s "$T/our_pos" ] || fail "no positions at all"
[ "$(q "SELECT count(*) FROM trading.discrepancies WHERE kind = 'position'")" = 0 ] || fail "position discrepancies: $(q "SELECT message FROM trading.discrepancies")"

# a replayed cause is never sent again
posts=$(stat posts)
"$QBCTL" produce orders <"$T/orders.json" >/dev/null
ADMIN=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log2" | head -1 | cut -d: -f2)
dups() { curl -sf "http://127.0.0.1:$ADMIN/metrics" | awk '/^qb_exec_duplicates_total/ {print $2}'; }
for _ in $(seq 1 300); do [ "$(dups)" -ge $N ] 2>/dev/null && break; sleep 0.1; done
[ "$(dups)" -ge $N ] || fail "replay: $(dups) duplicates seen"
[ "$(stat posts)" = "$posts" ] || fail "the replay reached the broker ($(stat posts) POSTs, was $posts)"
[ "$(nord)" = $N ] || fail "the replay created orders"

# reports: every change on exec.reports (the outbox is drained)
[ "$(q "SELECT count(*) FROM trading.reports WHERE NOT published")" = 0 ] || sleep 1
[ "$(q "SELECT count(*) FROM trading.reports WHERE NOT published")" = 0 ] || fail "unpublished reports left"

# audit chain
QB_PG_DSN="$DSN" "$QBCTL" audit verify >"$T/v1" || fail "audit verify on a clean log: $(cat "$T/v1")"
grep -q 'OK' "$T/v1" || fail "audit verify: $(cat "$T/v1")"
echo "$(cat "$T/v1")"
if q "UPDATE trading.audit_log SET detail = 'x' WHERE audit_id = 5" 2>"$T/uerr"; then fail "UPDATE of the audit log was allowed"; fi
grep -q 'append-only' "$T/uerr" || fail "UPDATE refused for another reason: $(cat "$T/uerr")"
if q "DELETE FROM trading.audit_log WHERE audit_id = 5" 2>/dev/null; then fail "DELETE of the audit log was allowed"; fi
VICTIM=$(q "SELECT audit_id FROM trading.audit_log WHERE event = 'FILL' ORDER BY audit_id OFFSET 40 LIMIT 1")
q "ALTER TABLE trading.audit_log DISABLE TRIGGER audit_log_no_update; UPDATE trading.audit_log SET detail = replace(detail, '\"qty\":\"', '\"qty\":\"1') WHERE audit_id = $VICTIM; ALTER TABLE trading.audit_log ENABLE TRIGGER audit_log_no_update" >/dev/null
if QB_PG_DSN="$DSN" "$QBCTL" audit verify >"$T/v2"; then fail "audit verify passed a tampered log"; fi
grep -q "audit_id=$VICTIM " "$T/v2" || fail "audit verify did not name row $VICTIM: $(cat "$T/v2")"
echo "after tamper: $(cat "$T/v2")"

kill -TERM "$P"
wait "$P" || fail "SIGTERM exit status $?"
kill -TERM "$FAKEPID"; wait "$FAKEPID" 2>/dev/null || true
echo "PASS test_qb_execution_kill"
