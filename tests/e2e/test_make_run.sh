#!/usr/bin/env bash
# test_make_run.sh — the embedded platform (`make run` = scripts/run.sh):
# starts qb-bus, PostgreSQL and Redis under a run dir, migrates, prints where
# things are; qbctl works with the printed environment; SIGTERM stops every
# process it started; a second start reuses the data (nothing to migrate,
# earlier rows still there).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
RUN=$(mktemp -d /tmp/qb-run-test.XXXXXX)
runpid=""
cleanup() {
  [ -n "$runpid" ] && kill -TERM "$runpid" 2>/dev/null && sleep 3
  B=$B "$ROOT/tests/harness/stack.sh" stop "$RUN" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- run output:" >&2; cat "$RUN/out" >&2 || true; exit 1; }

start_run() {
  (cd "$ROOT" && QB_RUN_DIR="$RUN" B=$B exec setsid scripts/run.sh >"$RUN/out" 2>&1) &
  runpid=$!
  for _ in $(seq 1 300); do
    grep -q "Press Ctrl-C" "$RUN/out" 2>/dev/null && return 0
    kill -0 "$runpid" 2>/dev/null || fail "run.sh exited early"
    sleep 0.1
  done
  fail "run.sh did not come up in 30 s"
}

stop_run() {
  kill -TERM "$runpid"
  for _ in $(seq 1 200); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$runpid" 2>/dev/null && fail "run.sh still running 20 s after SIGTERM"
  runpid=""
  grep -q "stopped." "$RUN/out" || fail "no 'stopped.' line"
  for f in bus.pid redis/redis.pid; do
    [ -f "$RUN/$f" ] && kill -0 "$(cat "$RUN/$f")" 2>/dev/null && fail "$f still alive"
  done
  [ -f "$RUN/pg/data/postmaster.pid" ] && fail "PostgreSQL still running"
  return 0
}

start_run
grep -q "Kafka (qb-bus)  127.0.0.1:" "$RUN/out" || fail "bootstrap list not printed"
nmig=$(ls "$ROOT"/sql/[0-9]*.sql | wc -l)
grep -q "migrations: $nmig applied" "$RUN/out" || fail "first start did not apply the $nmig migrations"
set -a; . "$RUN/platform.env"; set +a
"$ROOT/$B/bin/qbctl" topics | grep "md.bars .* 6 partitions" >/dev/null || fail "qbctl topics against the running bus"
psql "$QB_PG_DSN" -qc "CREATE TABLE public.keepme(x int); INSERT INTO public.keepme VALUES (42)"
stop_run

start_run
grep -q "migrations: 0 applied" "$RUN/out" || fail "second start re-applied migrations"
set -a; . "$RUN/platform.env"; set +a
[ "$(psql "$QB_PG_DSN" -tAc 'SELECT x FROM public.keepme')" = 42 ] || fail "data not kept across runs"
stop_run
echo "make run: started, served, stopped, restarted with data kept"
