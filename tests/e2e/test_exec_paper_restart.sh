#!/usr/bin/env bash
# test_exec_paper_restart.sh — qb-execution's paper simulator fills on the
# same bars across a kill -9 as without it: at start it reads md.bars again
# from where the killed process had applied them (trading.paper_feed) minus
# QB_EXEC_BARS_REPLAY_MARGIN_MS, and every paper order is stored with its
# not_before (sql/0011).
#
# Own database and topic prefix; the paper simulator fills market orders at
# the next bar's open. Two symbols, one account each:
#  A  bar A0 applied, order A (not_before = A0) accepted and working, kill;
#     bars A1 (open 101), A2 (open 102) published while it is down;
#  C  bar C0 applied, a manual order C (no not_before) accepted, kill;
#     nothing published for C while it is down; after the restart bar C1
#     (open 301).
# After the restart bar A3 (open 103). Asserted:
#  - A filled at 101: the bars published while the process was down were
#    applied (read from the end of the topic, as before, it fills at 103);
#  - C filled at 301: the bar C0 read again did not fill it (C was stored
#    with not_before = C0, the newest bar of C the simulator had been given);
#  - the log names the replay ("md.bars read again from ...");
#  - trading.paper_feed moved forward; SIGTERM exits 0.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-execution"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
[ -n "${QB_TEST_KEEP:-}" ] && echo "keeping $T"
TAG="$$_$RANDOM"
DB="qbexp_$TAG"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "${QB_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
SQL_DIR=${QB_TEST_SQL_DIR:-$ROOT/sql}
QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" "$QBCTL" migrate >/dev/null || fail "migrate"
export QB_TOPIC_PREFIX="exp$TAG."
uuid() { cat /proc/sys/kernel/random/uuid; }
produce() { "$QBCTL" produce "$1" >"$T/pout" 2>&1 || fail "produce $1: $(cat "$T/pout")"; }
echo '{"command_id":"'"$(uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}' | produce control
echo '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}' | produce risk.events
echo '{"symbol":"WARM","timeframe":"1m","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}' | produce md.bars

T0=1700000000000000000 # ns; bar k of a symbol at T0 + k minutes
ts() { echo $((T0 + $1 * 60000000000)); }
bar() { # symbol k open
  local p=$(($3 * 100000000))
  echo '{"symbol":"'"$1$TAG"'","timeframe":"1m","ts":"'"$(ts "$2")"'","open":"'$p'","high":"'$p'","low":"'$p'","close":"'$p'","volume":"1000"}' | produce md.bars
}
order() { # id symbol not_before(ns or 0)
  local nb=""
  [ "$3" != 0 ] && nb=',"not_before":"'"$3"'"'
  echo '{"order_id":"'"$1"'","cause_id":"c-'"$1"'","cause_kind":"ORDER_CAUSE_SIGNAL","account":"acct'"$2$TAG"'","strategy_id":"st","symbol":"'"$2$TAG"'","side":"SIDE_BUY","type":"ORDER_TYPE_MARKET","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","mode":"TRADING_MODE_PAPER"'"$nb"'}' | produce orders
}
start() { # logfile -> $started
  env QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_EXEC_GROUP="exp-$TAG" QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$1" &
  started=$!; pids+=("$started")
  for _ in $(seq 1 300); do grep -q 'qb-execution ready' "$1" && return; sleep 0.1; done
  fail "not ready ($1)"
}
metric() { # logfile name -> value (sum over labels)
  local port; port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2 || true)
  curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
status() { q "SELECT status FROM trading.orders WHERE order_id = '$1'"; }
wait_status() { # id status
  for _ in $(seq 1 300); do [ "$(status "$1")" = "$2" ] && return; sleep 0.1; done
  fail "order $1: status $(status "$1"), want $2"
}

start "$T/log1"; P=$started
# The reader starts at the end of md.bars, each partition once it has asked
# where that end is: probe bars of A and C themselves (earlier times) until a
# round of both is applied, so neither partition's bars can be skipped.
for k in $(seq 1 60); do
  before=$(metric "$T/log1" qb_exec_bars_total)
  bar A $((k - 100)) 1
  bar C $((k - 100)) 1
  for _ in $(seq 1 20); do [ "$(metric "$T/log1" qb_exec_bars_total)" -ge $((before + 2)) ] && break; sleep 0.05; done
  [ "$(metric "$T/log1" qb_exec_bars_total)" -ge $((before + 2)) ] && break
done
probes=$(metric "$T/log1" qb_exec_bars_total)
[ "$probes" -ge 2 ] || fail "the probe bars of A and C were not applied ($k rounds)"
bar A 0 100
bar C 0 300
for _ in $(seq 1 300); do [ "$(metric "$T/log1" qb_exec_bars_total)" -ge $((probes + 2)) ] && break; sleep 0.1; done
n=$(metric "$T/log1" qb_exec_bars_total)
[ "$n" -ge $((probes + 2)) ] || fail "bars A0 and C0 not applied in 30 s ($n bars, $probes before)"
OA=$(uuid); OC=$(uuid)
order "$OA" A "$(ts 0)"
order "$OC" C 0
wait_status "$OA" 3
wait_status "$OC" 3
[ "$(q "SELECT not_before_ns FROM trading.orders WHERE order_id = '$OC'")" = "$(ts 0)" ] ||
  fail "manual order C stored with not_before $(q "SELECT not_before_ns FROM trading.orders WHERE order_id = '$OC'"), want C0's time"
for _ in $(seq 1 100); do [ -n "$(q "SELECT 1 FROM trading.paper_feed WHERE feed = 'md.bars'")" ] && break; sleep 0.05; done
feed1=$(q "SELECT read_through_ms FROM trading.paper_feed WHERE feed = 'md.bars'")
[ -n "$feed1" ] || fail "trading.paper_feed not written"
kill -KILL "$P"; wait "$P" 2>/dev/null || true

# while it is down
bar A 1 101
bar A 2 102
sleep 0.2

start "$T/log2"; P=$started
grep -q '"msg":"md.bars read again from' "$T/log2" || fail "no replay of md.bars at start"
bar A 3 103
bar C 1 301
bar C 3 303
for o in "$OA" "$OC"; do wait_status "$o" 5; done
price() { q "SELECT avg_price / 100000000 FROM trading.orders WHERE order_id = '$1'"; }
[ "$(price "$OA")" = 101 ] || fail "order A filled at $(price "$OA"), want 101 (bar A1, published while down)"
[ "$(price "$OC")" = 301 ] || fail "order C filled at $(price "$OC"), want 301 (not on C0 read again)"
[ "$(q "SELECT count(*) FROM trading.fills")" = 2 ] || fail "$(q "SELECT count(*) FROM trading.fills") fills, want 2"
sleep 1.2
feed2=$(q "SELECT read_through_ms FROM trading.paper_feed WHERE feed = 'md.bars'")
[ "$feed2" -gt "$feed1" ] || fail "paper feed position did not move: $feed1 -> $feed2"
kill -TERM "$P"; wait "$P" || fail "exit $? after SIGTERM"
pids=()
echo "qb-execution paper restart: orders A and C filled at 101 and 301 (the bars of the downtime applied; C0 read again did not fill C)"
