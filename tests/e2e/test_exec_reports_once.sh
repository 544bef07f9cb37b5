#!/usr/bin/env bash
# test_exec_reports_once.sh — qb-execution killed with SIGKILL between its
# order intake and the "published" mark of the reports puts every
# ExecutionReport id on exec.reports ONCE (issue 11): at start it reads
# exec.reports back and re-sends only the unpublished reports not there
# (ex_outbox.c).
#
# Own database and topic prefix; the paper simulator (no bars for the
# orders' symbols: every order is accepted and stays working). The reports
# are marked published only every QB_EXEC_PUBLISH_MS=60000, so a kill
# leaves every report of the round on the topic AND unpublished. Three
# rounds of 60 market orders: start, take the round's orders, wait until
# their reports are sent, kill -9. Round 2 runs with linger.ms = 30 s, so
# its reports never reach the broker. Asserted:
#  - each kill left unpublished reports; restarts 2 and 4 found all of them
#    on the topic ("N found on exec.reports, 0 sent again") and marked them
#    published; restart 3 found none of round 2's and sent them all;
#  - exec.reports holds every stored report (trading.reports), each event
#    id once;
#  - SIGTERM exits 0 and leaves nothing unpublished.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-execution"
QBCTL="$BIN_DIR/qbctl"
PY=/usr/bin/python3
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
DB="qbexo_$TAG"
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
export QB_TOPIC_PREFIX="exo$TAG."
uuid() { cat /proc/sys/kernel/random/uuid; }
produce() { "$QBCTL" produce "$1" >"$T/pout" 2>&1 || fail "produce $1: $(cat "$T/pout")"; }
echo '{"command_id":"'"$(uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}' | produce control
echo '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}' | produce risk.events
echo '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}' | produce md.bars

start() { # logfile [VAR=value...] -> $started
  local log=$1; shift
  env "$@" QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_EXEC_GROUP="exo-$TAG" QB_EXEC_PUBLISH_MS=60000 QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$log" &
  started=$!; pids+=("$started")
}
metric() { # logfile name -> value (sum over labels)
  local port; port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2 || true)
  curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
N=60
nrep() { q "SELECT count(*) FROM trading.reports"; }
found=0; resent=0
for r in 1 2 3; do
  # Round 2 holds its reports in the producer (linger 30 s): the kill
  # leaves them unpublished and NOT on the topic, so restart 3 must send
  # them all; the other kills leave them on the topic.
  if [ $r = 2 ]; then start "$T/log$r" QB_KAFKA_LINGER_MS=30000; else start "$T/log$r" QB_KAFKA_LINGER_MS=1; fi
  P=$started
  for _ in $(seq 1 300); do grep -q 'qb-execution ready' "$T/log$r" && break; sleep 0.1; done
  grep -q 'qb-execution ready' "$T/log$r" || fail "round $r: not ready"
  if [ "$r" -gt 1 ]; then
    grep -q "\"outbox: $unpub unpublished reports: $found found on exec.reports, $resent sent again\"" "$T/log$r" ||
      fail "restart $r: want $found of the $unpub unpublished reports found on exec.reports and $resent sent: $(grep -o '"msg":"outbox[^"]*"' "$T/log$r" || true)"
    [ "$(q "SELECT count(*) FROM trading.reports WHERE NOT published")" = "$resent" ] || fail "restart $r: found reports not marked published"
  fi
  before=$(nrep)
  for i in $(seq 1 $N); do
    echo '{"order_id":"'"$(uuid)"'","cause_id":"sig-'$r-$i'","cause_kind":"ORDER_CAUSE_SIGNAL","account":"acct'$((i % 3))'-'$TAG'","strategy_id":"st","symbol":"NOBAR'$((i % 4))'","side":"SIDE_BUY","type":"ORDER_TYPE_MARKET","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","mode":"TRADING_MODE_PAPER"}'
  done | produce orders
  for _ in $(seq 1 600); do [ "$(q "SELECT count(*) FROM trading.orders")" -ge $((N * r)) ] && break; sleep 0.05; done
  [ "$(q "SELECT count(*) FROM trading.orders")" = $((N * r)) ] || fail "round $r: $(q "SELECT count(*) FROM trading.orders") orders stored"
  # every report of the round delivered to exec.reports (acknowledged)
  want=$(( $(nrep) - before + resent )) # this round's reports, and those it sent again
  for _ in $(seq 1 600); do [ "$(metric "$T/log$r" qb_exec_reports_total)" -ge "$want" ] && break; sleep 0.05; done
  sleep 0.5
  kill -KILL "$P"; wait "$P" 2>/dev/null || true
  unpub=$(q "SELECT count(*) FROM trading.reports WHERE NOT published")
  [ "$unpub" -gt 0 ] || fail "round $r: the kill left no report unpublished"
  if [ $r = 2 ]; then found=0; resent=$unpub; else found=$unpub; resent=0; fi
  echo "kill $r: $unpub of $(nrep) reports unpublished ($found on exec.reports)"
done
start "$T/log4" QB_KAFKA_LINGER_MS=1; P=$started
for _ in $(seq 1 300); do grep -q 'qb-execution ready' "$T/log4" && break; sleep 0.1; done
grep -q "\"outbox: $unpub unpublished reports: $found found on exec.reports, $resent sent again\"" "$T/log4" ||
  fail "last restart: $(grep -o '"msg":"outbox[^"]*"' "$T/log4" || true)"
kill -TERM "$P"; wait "$P" || fail "exit $? after SIGTERM"
pids=()
[ "$(q "SELECT count(*) FROM trading.reports WHERE NOT published")" = 0 ] || fail "reports left unpublished after SIGTERM"

timeout 120 "$QBCTL" tail exec.reports --from-beginning --timeout-ms 4000 2>/dev/null >"$T/reps" || true
stored=$(nrep)
$PY - "$T/reps" "$stored" <<'EOF' || fail "exec.reports check failed (above)"
import collections, json, sys
ids = collections.Counter()
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith("{"):
        ids[json.loads(l)["header"]["event_id"]] += 1
twice = sum(1 for v in ids.values() if v > 1)
print("exec.reports: %d messages, %d ids, %d ids more than once; %s stored" % (sum(ids.values()), len(ids), twice, sys.argv[2]))
sys.exit(1 if twice or len(ids) != int(sys.argv[2]) else 0)
EOF
echo "qb-execution: 3 x kill -9 before the published mark, $stored reports: each once on exec.reports"
