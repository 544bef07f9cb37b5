#!/usr/bin/env bash
# test_fuzz_smoke.sh — build the libFuzzer targets (tests/fuzz/fuzz_*.c,
# clang with ASan+UBSan) and run each for a few seconds from an empty
# corpus. A crash, leak, sanitizer report or time-out fails the test. Long
# runs are for people: `make fuzz && build-fuzz/fuzz_x -max_total_time=600`.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
SECS=${QB_FUZZ_SECONDS:-8}
cd "$ROOT"
make -s fuzz >/dev/null
n=0
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  corpus=$(mktemp -d)
  out=$("$f" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1) || {
    echo "$out" | tail -40
    rm -rf "$corpus"
    echo "FAIL: $(basename "$f") found a problem" >&2
    exit 1
  }
  runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
  echo "$(basename "$f"): ${runs:-?} executions in ${SECS}s, no findings"
  rm -rf "$corpus"
  n=$((n + 1))
done
[ $n -ge 3 ] || { echo "FAIL: expected at least 3 fuzz targets, built $n" >&2; exit 1; }
