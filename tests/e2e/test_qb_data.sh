#!/usr/bin/env bash
# test_qb_data.sh — the qb-data service against the harness PostgreSQL (own
# database), Redis and bus:
#  - starts, migrates its database, /readyz 200 (bus, postgres, redis,
#    migrations);
#  - a control command INGEST_JOB_UPSERT (synthetic source, unique symbol,
#    1m, every 60 s, lookback 1d) then INGEST_JOB_RUN_NOW: a succeeded run in
#    md.ingest_job_runs with its ingest_log ids, the symbol's bars in md.bars
#    (the table), and the same number of messages for the symbol on md.bars
#    (the topic); a command of another kind is ignored (no DLQ entry);
#  - /metrics passes promtool; SIGTERM -> exit 0 within 10 s.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-data"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
T=$(mktemp -d)
DB="qbdata_$$_$RANDOM"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -30 "$T/log" >&2; exit 1; }
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }

port=""
QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
  QB_PROBE_INTERVAL_MS=200 QB_DATA_TICK_MS=200 QB_LOG_LEVEL=info "$BIN" >"$T/out" 2>"$T/log" &
pid=$!
code=""
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || fail "qb-data exited early"
  [ -n "$port" ] || port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] || { sleep 0.1; continue; }
  code=$(curl -s -o "$T/ready" -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [ "$code" = 200 ] && break; sleep 0.1
done
[ "$code" = 200 ] || fail "/readyz $code: $(cat "$T/ready")"
grep -q '"migrations":"ok"' "$T/ready" || fail "/readyz body: $(cat "$T/ready")"

SYM="QD$RANDOM$RANDOM"
JOB="qbdata-test-$SYM"
produce() { echo "$1" | "$QBCTL" produce control >"$T/pout" 2>&1 || fail "qbctl produce: $(cat "$T/pout")"; }
# A command of another kind is not for qb-data: acknowledged, ignored.
produce '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"qb-risk","kind":"COMMAND_KIND_RESUME","issued_by":"test"}'
produce '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_UPSERT","issued_by":"test","ingest_job":{"name":"'"$JOB"'","source":"synthetic","symbols":["'"$SYM"'"],"timeframe":"1m","interval_seconds":60,"lookback":"1d"}}'
for _ in $(seq 1 200); do
  [ "$(q "SELECT count(*) FROM md.ingest_jobs WHERE name = '$JOB'")" = 1 ] && break; sleep 0.1
done
[ "$(q "SELECT count(*) FROM md.ingest_jobs WHERE name = '$JOB'")" = 1 ] || fail "job not created by the UPSERT command"
produce '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_RUN_NOW","issued_by":"test","ingest_job":{"name":"'"$JOB"'"}}'

RUNQ="SELECT count(*) FROM md.ingest_job_runs r JOIN md.ingest_jobs j ON j.id = r.job_id
      WHERE j.name = '$JOB' AND r.status = 'succeeded'"
for _ in $(seq 1 300); do
  [ "$(q "$RUNQ")" -ge 1 ] && break; sleep 0.1
done
[ "$(q "$RUNQ")" -ge 1 ] || fail "no succeeded run: $(q "SELECT status, error FROM md.ingest_job_runs")"
NB=$(q "SELECT count(*) FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol = '$SYM' AND b.timeframe = '1m'")
[ "$NB" -gt 0 ] || fail "no bars of $SYM in md.bars"
# A 1d lookback of 1m bars: about 1440 (the RUN_NOW slot is not on the minute grid).
[ "$NB" -ge 1439 ] && [ "$NB" -le 1441 ] || fail "$NB bars of $SYM, want ~1440"
grep -q "\"msg\":\"job $JOB run [0-9]* [a-z_]* $SYM: ok, [0-9]* loaded" "$T/log" || fail "no run log line"
# The run holds its ingest_log ids.
nlog=$(q "SELECT count(*) FROM md.ingest_log WHERE job = '$JOB' AND symbol = '$SYM'")
[ "$nlog" -ge 1 ] || fail "no md.ingest_log row for $JOB"

# Every stored bar (of the runs so far) went onto md.bars.
LOADED=$(q "SELECT coalesce(sum(rows_loaded + rows_duplicate), 0) FROM md.ingest_log WHERE job = '$JOB' AND error IS NULL")
n=0
for _ in 1 2 3; do
  timeout 60 "$QBCTL" tail md.bars --from-beginning --timeout-ms 3000 2>/dev/null >"$T/tail" || true
  n=$(grep -c "\"symbol\":\"$SYM\"" "$T/tail" || true)
  LOADED=$(q "SELECT coalesce(sum(rows_loaded + rows_duplicate), 0) FROM md.ingest_log WHERE job = '$JOB' AND error IS NULL")
  [ "$n" = "$LOADED" ] && break
done
[ "$n" = "$LOADED" ] || fail "md.bars topic has $n messages for $SYM, want $LOADED (stored $NB)"
[ "$(grep "\"symbol\":\"$SYM\"" "$T/tail" | grep -c '"source":"synthetic"')" = "$n" ] || fail "source not synthetic"

# The other command was not dead-lettered.
grep -q '"level":"error"' "$T/log" && fail "errors in the log"

curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics" || fail "/metrics"
promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics"
grep -q '^qb_data_runs_total{status="succeeded"} [1-9]' "$T/metrics" || fail "qb_data_runs_total"

kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIGTERM"
set +e; wait "$pid"; rc=$?; set -e; pid=""
[ $rc -eq 0 ] || fail "exit $rc after SIGTERM"
grep -q "qb-data stopping" "$T/log" || fail "no stopping line"
echo "qb-data: job via control, run succeeded ($NB bars stored, $n published), promtool ok, clean SIGTERM"
