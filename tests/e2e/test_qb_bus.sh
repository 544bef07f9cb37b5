#!/usr/bin/env bash
# test_qb_bus.sh — the qb-bus binary as an operator sees it:
#  - starts, writes its bootstrap list, creates every registry topic + DLQ;
#  - its admin port answers /healthz, /readyz (brokers reachable) and
#    /metrics, which `promtool check metrics` accepts;
#  - a bad setting exits 2 with a message naming the variable;
#  - POST /brokers/{id}/down|up on the admin port (fault injection): with
#    every broker down a produce waits, and is delivered once they are up;
#  - SIGTERM stops it within seconds, exit 0, bootstrap file removed;
#  - under valgrind, a start/stop cycle has no leaks and no errors.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN="$ROOT/$B/bin/qb-bus"
T=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || fail "no free port"
}
wait_file() { for _ in $(seq 1 ${2:-100}); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }

# bad configuration
set +e
QB_BUS_BROKERS=99 QB_BUS_BOOTSTRAP_FILE="$T/x" "$BIN" >"$T/out" 2>"$T/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "QB_BUS_BROKERS=99 exited $rc, want 2"
grep -q "QB_BUS_BROKERS=99" "$T/err" || fail "error does not name QB_BUS_BROKERS: $(cat "$T/err")"

# start, admin endpoints, metrics
port=$(free_port)
QB_ADMIN_PORT=$port QB_ADMIN_BIND=127.0.0.1 QB_PROBE_INTERVAL_MS=200 QB_BUS_BOOTSTRAP_FILE="$T/boot" \
  "$BIN" >"$T/out" 2>"$T/log" &
pid=$!
wait_file "$T/boot" || fail "no bootstrap file"
[ "$(head -1 "$T/out")" = "$(cat "$T/boot")" ] || fail "stdout and file disagree"
curl -fsS "http://127.0.0.1:$port/healthz" | grep '"status":"ok"' >/dev/null || fail "/healthz"
for _ in $(seq 1 50); do
  code=$(curl -s -o "$T/ready" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
  [ "$code" = 200 ] && break; sleep 0.1
done
[ "$code" = 200 ] || fail "/readyz $code: $(cat "$T/ready")"
grep -q '"brokers":"ok"' "$T/ready" || fail "/readyz body: $(cat "$T/ready")"
curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics" || fail "/metrics"
promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics"
# every registry topic and its DLQ
want=$(( 2 * $(QB_KAFKA_BROKERS=127.0.0.1:1 "$(dirname "$BIN")/qbctl" topics --names 2>/dev/null | wc -l) ))
[ "$want" -ge 20 ] || fail "qbctl topics --names lists too few topics"
grep -q "^qb_bus_mock_topics $want\$" "$T/metrics" || fail "qb_bus_mock_topics is not $want"
grep -q '^qb_ready 1$' "$T/metrics" || fail "qb_ready is not 1"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")" = 404 ] || fail "404"

# fault injection: brokers down (a produce waits) and up again (it is delivered)
ctl() { curl -s -o "$T/ctl" -w '%{http_code}' -X POST "http://127.0.0.1:$port/brokers/$1"; }
[ "$(ctl 9/down)" = 404 ] || fail "POST /brokers/9/down (no such broker) was not 404"
grep -q '/brokers/{1..3}/down' "$T/ctl" || fail "404 body does not say what to use: $(cat "$T/ctl")"
[ "$(ctl 1/sideways)" = 404 ] || fail "POST /brokers/1/sideways was not 404"
for b in 1 2 3; do [ "$(ctl $b/down)" = 200 ] || fail "broker $b down: $(cat "$T/ctl")"; done
grep -q '"state":"down"' "$T/ctl" || fail "down answer: $(cat "$T/ctl")"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^qb_bus_mock_brokers_down 3$' \
  || fail "qb_bus_mock_brokers_down is not 3"
echo '{"symbol":"DOWNUP","timeframe":"1m","ts":"1700000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"0"}' \
  | QB_KAFKA_BROKERS="$(cat "$T/boot")" QB_LOG_LEVEL=error "$(dirname "$BIN")/qbctl" produce md.bars >"$T/prod" 2>&1 &
ppid=$!
sleep 2
kill -0 $ppid 2>/dev/null || fail "a produce finished while every broker was down: $(cat "$T/prod")"
for b in 1 2 3; do [ "$(ctl $b/up)" = 200 ] || fail "broker $b up: $(cat "$T/ctl")"; done
set +e; wait $ppid; rc=$?; set -e
[ $rc -eq 0 ] || fail "produce after the brokers came back exited $rc: $(cat "$T/prod")"
QB_KAFKA_BROKERS="$(cat "$T/boot")" QB_LOG_LEVEL=error "$(dirname "$BIN")/qbctl" tail md.bars \
  --from-beginning --max 1 --timeout-ms 20000 >"$T/tail0" 2>/dev/null || true
grep -q DOWNUP "$T/tail0" || fail "the bar produced during the outage is not on md.bars"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^qb_bus_mock_brokers_down 0$' \
  || fail "qb_bus_mock_brokers_down is not 0 after up"
echo "qb-bus: brokers down held a produce back, up delivered it"

# SIGTERM
kill -TERM $pid
for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && fail "still running 10 s after SIGTERM"
wait $pid; rc=$?; pid=""
[ $rc -eq 0 ] || fail "exit $rc after SIGTERM"
[ -e "$T/boot" ] && fail "bootstrap file left behind"
echo "qb-bus: admin endpoints ok, promtool ok, clean SIGTERM"

# valgrind start/stop (needs the non-sanitizer build: ASan and valgrind don't mix)
MAKEFLAGS= MAKELEVEL= make -C "$ROOT" -s all SAN=0 >/dev/null
VG="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
QB_BUS_BOOTSTRAP_FILE="$T/vboot" QB_LOG_LEVEL=warn $VG "$ROOT/build/bin/qb-bus" >/dev/null 2>"$T/vg" &
pid=$!
wait_file "$T/vboot" 600 || { cat "$T/vg" >&2; fail "qb-bus under valgrind did not start"; }
sleep 1
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e; pid=""
[ $rc -eq 0 ] || { tail -40 "$T/vg" >&2; fail "valgrind: qb-bus exit $rc (99 = errors or leaks)"; }
grep -q "ERROR SUMMARY: 0 errors" "$T/vg" || { tail -40 "$T/vg" >&2; fail "valgrind errors"; }
echo "qb-bus under valgrind: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$T/vg"), $(grep -o 'definitely lost: [0-9,]* bytes' "$T/vg" || echo 'no leaks')"

# qbctl under valgrind too: produce and tail on the harness's bus (every lib
# it links does real work: config, bus, proto, JSON).
: "${QB_KAFKA_BROKERS:?run through make test}"
echo '{"symbol":"VGRIND","timeframe":"1m","ts":"1700000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"0"}' \
  | $VG "$ROOT/build/bin/qbctl" produce md.bars 2>"$T/vg2" || { tail -40 "$T/vg2" >&2; fail "valgrind: qbctl produce"; }
$VG "$ROOT/build/bin/qbctl" tail md.bars --from-beginning --max 1 --timeout-ms 20000 >"$T/tail" 2>"$T/vg3" \
  || { tail -40 "$T/vg3" >&2; fail "valgrind: qbctl tail"; }
[ -s "$T/tail" ] || fail "qbctl tail under valgrind printed nothing"
echo "qbctl produce/tail under valgrind: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$T/vg2" | head -1), $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$T/vg3" | head -1)"
