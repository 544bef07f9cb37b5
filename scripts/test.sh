#!/usr/bin/env bash
# test.sh — run every test against a real, private stack.
#
# Starts PostgreSQL, Redis and qb-bus in a temp dir (tests/harness/stack.sh),
# then runs, each in its own process with a time-out:
#   $B/tests/test_*   unit tests (cmocka)
#   $B/tests/it_*     integration tests (cmocka) against the stack
#   tests/e2e/*.sh    end-to-end shell tests against the stack and binaries
# and prints one closing line "N passed, N failed". Exit status is non-zero
# when anything failed. Usage: scripts/test.sh [NAME-FILTER]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export B=${B:-build}
FILTER=${1:-}
STACK=$(mktemp -d /tmp/qb-test.XXXXXX)
LOGDIR="$STACK/logs"
mkdir -p "$LOGDIR"

cleanup() { tests/harness/stack.sh stop "$STACK" >/dev/null 2>&1; [ "${QB_KEEP_STACK:-0}" = 1 ] || rm -rf "$STACK"; }
trap cleanup EXIT INT TERM

eval "$(tests/harness/stack.sh start "$STACK")" || { echo "test.sh: stack did not start"; exit 1; }
export QB_BIN_DIR="$ROOT/$B/bin"
export QB_ROOT="$ROOT"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export QB_LOG_LEVEL=${QB_LOG_LEVEL:-warn}
echo "stack: $STACK"
echo "  QB_PG_DSN=$QB_PG_DSN"
echo "  QB_REDIS_URL=$QB_REDIS_URL"
echo "  QB_KAFKA_BROKERS=${QB_KAFKA_BROKERS:-<none>}"

passed=0; failed=0; failures=()
run_one() { # run_one NAME TIMEOUT CMD...
  local name=$1 to=$2; shift 2
  [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]] && return 0
  local start=$(date +%s%N)
  timeout --kill-after=10 "$to" "$@" >"$LOGDIR/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  local dur="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1)); printf 'PASS  %-32s %6ss\n' "$name" "$dur"
  else
    failed=$((failed + 1)); failures+=("$name")
    printf 'FAIL  %-32s %6ss (exit %d%s)\n' "$name" "$dur" $rc "$([ $rc -eq 124 ] && echo ', timed out')"
    # cmocka's failure lines (and a Python exception's) first, then the end of the log.
    grep -E '^\[  (ERROR|FAILED) |^\[   LINE   \]|^FAIL:|^[A-Za-z_.]*(Error|Exception): ' "$LOGDIR/$name.log" |
      sed 's/^/    ! /' | head -20
    sed 's/^/    | /' "$LOGDIR/$name.log" | tail -60
  fi
}

for t in "$B"/tests/test_*; do [ -x "$t" ] && run_one "$(basename "$t")" 300 "$t"; done
for t in "$B"/tests/it_*; do [ -x "$t" ] && run_one "$(basename "$t")" 600 "$t"; done
# End-to-end scripts: 600 s each, or what a "# qb-test-timeout: N" line in
# the script says; QB_E2E_TIMEOUT_S overrides both (the chaos test's long
# mode, QB_CHAOS_LONG=1, replays >= 1 M bars: 4 hours unless set).
e2e_to() {
  [ -n "${QB_E2E_TIMEOUT_S:-}" ] && { echo "$QB_E2E_TIMEOUT_S"; return; }
  [ "${QB_CHAOS_LONG:-0}" != 0 ] && { echo 14400; return; }
  local n
  n=$(sed -n 's/^# qb-test-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -1)
  echo "${n:-600}"
}
for t in tests/e2e/test_*.sh; do [ -f "$t" ] && run_one "$(basename "$t" .sh)" "$(e2e_to "$t")" bash "$t"; done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
