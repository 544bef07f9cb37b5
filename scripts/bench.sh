#!/usr/bin/env bash
# bench.sh — `make bench`: run every benchmark binary ($B/bench/bench_*)
# against a private real stack (qb-bus, PostgreSQL, Redis). Benchmarks print
# numbers; nothing here passes or fails on speed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export B=${B:-build}
STACK=$(mktemp -d /tmp/qb-bench.XXXXXX)
trap 'tests/harness/stack.sh stop "$STACK" >/dev/null 2>&1; rm -rf "$STACK"' EXIT INT TERM
eval "$(tests/harness/stack.sh start "$STACK")" >/dev/null || { echo "bench: stack did not start"; exit 1; }
export QB_BIN_DIR="$ROOT/$B/bin" QB_ROOT="$ROOT" QB_LOG_LEVEL=${QB_LOG_LEVEL:-warn}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
rc=0
for b in "$B"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || { echo "   ($(basename "$b") exited $?)"; rc=1; }
done
for b in bench/bench_*.sh; do  # benchmarks of running services (wrk, ...)
  [ -f "$b" ] || continue
  echo "== $(basename "$b" .sh)"
  bash "$b" || { echo "   ($(basename "$b") exited $?)"; rc=1; }
done
exit $rc
