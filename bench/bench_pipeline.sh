#!/usr/bin/env bash
# bench_pipeline.sh — the live pipeline bar -> features -> signal -> order ->
# ExecutionReport under load (issue 11; figures and settings in
# docs/PERFORMANCE.md). Run by scripts/bench.sh inside its stack, or alone
# (then it starts a private stack itself): `bash bench/bench_pipeline.sh`.
#
# On its own database and topic prefix it starts qb-features, qb-risk and
# qb-execution (paper simulator, fills at the next bar's open), seeds
# QB_BENCH_PIPELINE_SYMBOLS symbols (1000) in accounts of 50: one sma_cross
# (fast 1, slow 2, long/short, target weight 0.5%) per account, which
# signals at every turn of the bars' path, and risk limits that let those
# orders through (600 orders/min, 500 positions); then runs
# $B/bench/bench_pipeline (see its header: rates, latency percentiles from
# the qb-origin-ns header, lag, the throughput ladder) and prints each
# process's RSS (VmRSS, peak VmHWM) at the end.
#
# Latency settings for every process (override from the environment):
# QB_KAFKA_FETCH_WAIT_MAX_MS=1 (qb-bus answers an empty fetch only after this
# long), QB_KAFKA_LINGER_MS=0. Other knobs: the QB_BENCH_PIPELINE_* variables
# of bench_pipeline.c (QB_BENCH_PIPELINE_MAX_SECONDS=60 for the documented
# 60 s throughput steps). Numbers only, no pass/fail.
set -uo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BENCH_BIN=${QB_BENCH_DIR:-$(dirname "$BIN_DIR")/bench}/bench_pipeline
[ -x "$BENCH_BIN" ] || { echo "bench_pipeline: $BENCH_BIN not built"; exit 1; }
for s in qb-features qb-risk qb-execution qbctl; do
  [ -x "$BIN_DIR/$s" ] || { echo "bench_pipeline: $BIN_DIR/$s not built"; exit 1; }
done
T=$(mktemp -d /tmp/qb-bench-pipe.XXXXXX)
OWN_STACK=""
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  [ -n "${DB:-}" ] && psql "${QB_PG_DSN:-}" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "$OWN_STACK" ] && B=$B "$ROOT/tests/harness/stack.sh" stop "$OWN_STACK" >/dev/null 2>&1 || true
  [ -n "${QB_BENCH_KEEP:-}" ] && echo "bench_pipeline: logs kept in $T" || rm -rf "$T"
  [ -n "$OWN_STACK" ] && rm -rf "$OWN_STACK"
  return 0
}
trap cleanup EXIT
if [ -z "${QB_KAFKA_BROKERS:-}" ]; then
  OWN_STACK=$(mktemp -d /tmp/qb-bench.XXXXXX)
  eval "$(B=$B "$ROOT/tests/harness/stack.sh" start "$OWN_STACK")" >/dev/null
  [ -n "${QB_KAFKA_BROKERS:-}" ] && [ -n "${QB_PG_DSN:-}" ] || { echo "bench_pipeline: stack did not start"; exit 1; }
  export QB_LOG_LEVEL=${QB_LOG_LEVEL:-warn}
fi
export QB_KAFKA_FETCH_WAIT_MAX_MS=${QB_KAFKA_FETCH_WAIT_MAX_MS:-1}
export QB_KAFKA_LINGER_MS=${QB_KAFKA_LINGER_MS:-0}
export QB_LOG_LEVEL=${QB_LOG_LEVEL:-warn}
TAG="$$_$RANDOM"
export QB_TOPIC_PREFIX="bp$TAG."
DB="qbbench_$TAG"
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null || { echo "bench_pipeline: createdb failed"; exit 1; }
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$BIN_DIR/qbctl" migrate >/dev/null || { echo "bench_pipeline: migrate failed"; exit 1; }
QB_BENCH_PIPELINE=topics "$BENCH_BIN" || { echo "bench_pipeline: topics not created"; exit 1; }

NSYM=${QB_BENCH_PIPELINE_SYMBOLS:-1000}
PER=50
NACC=$(( (NSYM + PER - 1) / PER ))
# strategies and limits, straight into the tables the services read
q "INSERT INTO features.strategies (strategy_id, account, kind, params, symbols, timeframe)
   SELECT 'bp-s' || a, 'bp' || a, 'sma_cross',
          '{\"fast\":1,\"slow\":2,\"allow_short\":true,\"target_weight\":0.005}',
          array(SELECT 'BP' || lpad(i::text, 4, '0') FROM generate_series(a * $PER, least(a * $PER + $PER, $NSYM) - 1) i),
          '1m'
   FROM generate_series(0, $NACC - 1) a" >/dev/null || { echo "bench_pipeline: seeding strategies failed"; exit 1; }
# kinds: 9 MAX_ORDERS_PER_MINUTE, 10 MAX_OPEN_ORDERS, 13 MAX_POSITIONS (x 1e8)
q "INSERT INTO risk.limits (account, kind, value, updated_by)
   SELECT 'bp' || a, k.kind, k.v::bigint * 100000000, 'bench'
   FROM generate_series(0, $NACC - 1) a,
        (VALUES (9, 6000), (10, 10000), (13, 500)) AS k(kind, v)" >/dev/null ||
  { echo "bench_pipeline: seeding limits failed"; exit 1; }

free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || echo 0
}
declare -A PID PORT
start() { # name env...
  local name=$1; shift
  PORT[$name]=$(free_port)
  env QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=${PORT[$name]} QB_ADMIN_BIND=127.0.0.1 \
    "$@" "$BIN_DIR/$name" >/dev/null 2>"$T/$name.log" &
  PID[$name]=$!; pids+=($!)
}
start qb-features QB_FEATURES_GROUP="bpf-$TAG"
start qb-risk QB_RISK_GROUP="bpr-$TAG" QB_RISK_SNAPSHOT_S=0
start qb-execution QB_EXEC_GROUP="bpe-$TAG"
for s in qb-features qb-risk qb-execution; do
  ok=""
  for _ in $(seq 1 600); do
    kill -0 "${PID[$s]}" 2>/dev/null || break
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$s]}/readyz" || true)" = 200 ] && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "bench_pipeline: $s not ready"; tail -5 "$T/$s.log"; exit 1; }
done
sleep 2 # consumer groups assigned (the warm-up waits for features anyway)

echo "bench_pipeline: $NSYM symbols in $NACC accounts; $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  settings: fetch.wait.max.ms=$QB_KAFKA_FETCH_WAIT_MAX_MS linger.ms=$QB_KAFKA_LINGER_MS" \
     "(\"seen\" = collector receive - qb-origin-ns; \"queued\" = the service's send - qb-origin-ns)"
QB_BENCH_PIPELINE=run "$BENCH_BIN"
rc=$?
echo "  load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rss() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "RSS %.0f MiB (peak %.0f MiB)", r/1024, h/1024}' "/proc/$1/status" 2>/dev/null || echo "(gone)"; }
echo "  memory at the end:"
for s in qb-features qb-risk qb-execution; do
  printf '    %-13s %s\n' "$s" "$(rss "${PID[$s]}")"
done
BUSPID=$(cat "${QB_STACK_DIR:-/nonexistent}/bus.pid" 2>/dev/null || true)
[ -n "$BUSPID" ] && printf '    %-13s %s\n' "qb-bus" "$(rss "$BUSPID")"
for s in qb-features qb-risk qb-execution; do
  n=$(grep -c '"level":"error"' "$T/$s.log" || true)
  [ "${n:-0}" = 0 ] || { echo "  $s logged $n errors, last:"; grep '"level":"error"' "$T/$s.log" | tail -2; }
done
orders=$(q "SELECT count(*) FROM trading.orders" 2>/dev/null || echo "?")
filled=$(q "SELECT count(*) FROM trading.orders WHERE status = 5" 2>/dev/null || echo "?")
echo "  stored: $(q "SELECT count(*) FROM features.signals" 2>/dev/null || echo "?") signals;" \
     "risk: $(q "SELECT count(*) FILTER (WHERE approved) || ' orders, ' || count(*) FILTER (WHERE NOT approved) || ' rejections' FROM risk.orders" 2>/dev/null || echo "?");" \
     "qb-execution: $orders orders, $filled filled"
exit $rc
