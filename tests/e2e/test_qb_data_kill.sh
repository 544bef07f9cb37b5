#!/usr/bin/env bash
# test_qb_data_kill.sh — kill -9 of qb-data in the middle of a large import,
# restart, re-run: md.bars ends exactly equal to a clean import, and nothing
# stored is left unpublished.
#
#  - two generated CSV files (generic format, 1m bars, 300k rows each, one
#    per symbol) and a "csv" ingest job over them (path with {symbol}, a
#    fixed range covering both files, lease 3 s) created and started with
#    INGEST_JOB_UPSERT + RUN_NOW on the control topic;
#  - once >= 100k bars are stored, SIGKILL; the run is left "running";
#  - restart: the stale run's lease expires (marked failed), the outbox is
#    drained (a batch committed but not published before the kill is
#    re-published), RUN_NOW again -> a succeeded run;
#  - a clean `qbctl import --no-publish` of the same files into a second
#    database; the two md.bars (symbol, ts, OHLCV, flags, source) are equal
#    row for row (md5 of the ordered dump and the counts);
#  - md.publish_outbox is empty at the end; no error lines in either log.
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
DB="qbkill_$$_$RANDOM"
DB2="qbclean_$$_$RANDOM"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB2 WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB2" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
DSN2="$QB_PG_DSN dbname=$DB2"
q() { psql "$DSN" -qAtc "$1"; }

N=300000
S1="QK$RANDOM$RANDOM"
S2="QL$RANDOM$RANDOM"
gen() { # file seed: a 1m random walk from 2024-01-01T00:00Z, unix seconds
  awk -v n=$N -v seed="$2" 'BEGIN {
    srand(seed); p = 100; t = 1704067200
    print "time,open,high,low,close,volume"
    for (i = 0; i < n; i++) {
      o = p; p = p * (1 + (rand() - 0.5) * 0.002); c = p
      hi = (o > c ? o : c) * (1 + rand() * 0.001); lo = (o < c ? o : c) * (1 - rand() * 0.001)
      printf "%d,%.4f,%.4f,%.4f,%.4f,%d\n", t + 60 * i, o, hi, lo, c, 1000 + int(rand() * 9000)
    }
  }' >"$1"
}
gen "$T/$S1.csv" 11
gen "$T/$S2.csv" 12

start() { # log file
  QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_PROBE_INTERVAL_MS=200 QB_DATA_TICK_MS=200 QB_DATA_LEASE_S=3 QB_LOG_LEVEL=info \
    "$BIN" >/dev/null 2>"$1" &
  pid=$!
  local code=""
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || fail "qb-data exited early"
    port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] || { sleep 0.1; continue; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
    [ "$code" = 200 ] && return; sleep 0.1
  done
  fail "/readyz $code"
}
produce() { echo "$1" | "$QBCTL" produce control >"$T/pout" 2>&1 || fail "qbctl produce: $(cat "$T/pout")"; }
uuid() { cat /proc/sys/kernel/random/uuid; }
JOB="kill-test-$S1"
run_now() {
  produce '{"command_id":"'"$(uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_RUN_NOW","issued_by":"test","ingest_job":{"name":"'"$JOB"'"}}'
}
nbars() { q "SELECT count(*) FROM md.bars"; }

start "$T/log1"
produce '{"command_id":"'"$(uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_UPSERT","issued_by":"test","ingest_job":{"name":"'"$JOB"'","source":"csv","symbols":["'"$S1"'","'"$S2"'"],"timeframe":"1m","interval_seconds":86400,"range_from":"2024-01-01","range_to":"2025-01-01","path":"'"$T"'/{symbol}.csv","csv_format":"generic","csv_columns":"time,open,high,low,close,volume","csv_time_format":"unix_s"}}'
for _ in $(seq 1 200); do
  [ "$(q "SELECT count(*) FROM md.ingest_jobs WHERE name = '$JOB'")" = 1 ] && break; sleep 0.1
done
[ "$(q "SELECT options->>'path' FROM md.ingest_jobs WHERE name = '$JOB'")" = "$T/{symbol}.csv" ] ||
  fail "job not created with its path"
run_now
killed_at=0
for _ in $(seq 1 600); do
  n=$(nbars)
  if [ "$n" -ge 100000 ]; then kill -KILL "$pid"; killed_at=$n; break; fi
  sleep 0.05
done
[ "$killed_at" -gt 0 ] || fail "the import never reached 100k bars"
wait "$pid" 2>/dev/null || true; pid=""
after_kill=$(nbars)
[ "$after_kill" -lt $((2 * N)) ] || fail "the import had finished before the kill ($after_kill bars)"
[ "$(q "SELECT count(*) FROM md.ingest_job_runs WHERE status = 'running'")" = 1 ] || fail "no run left running by the kill"
outbox_at_kill=$(q "SELECT count(*) FROM md.publish_outbox")
echo "killed at $after_kill of $((2 * N)) bars stored; outbox rows left: $outbox_at_kill"

start "$T/log2"
# The dead run's lease (3 s) expires: it is marked failed.
for _ in $(seq 1 100); do
  [ "$(q "SELECT count(*) FROM md.ingest_job_runs WHERE status = 'failed' AND error LIKE 'lease expired%'")" = 1 ] && break; sleep 0.1
done
[ "$(q "SELECT count(*) FROM md.ingest_job_runs WHERE status = 'failed' AND error LIKE 'lease expired%'")" = 1 ] ||
  fail "stale run not expired: $(q "SELECT status, error FROM md.ingest_job_runs")"
for _ in $(seq 1 50); do [ "$(q "SELECT count(*) FROM md.publish_outbox")" = 0 ] && break; sleep 0.1; done
[ "$(q "SELECT count(*) FROM md.publish_outbox")" = 0 ] || fail "outbox not drained after restart"
if [ "$outbox_at_kill" -gt 0 ]; then
  grep -q '"msg":"outbox: re-published' "$T/log2" || fail "outbox rows left by the kill but no re-publish logged"
fi
run_now
OKQ="SELECT count(*) FROM md.ingest_job_runs WHERE status = 'succeeded'"
for _ in $(seq 1 1200); do [ "$(q "$OKQ")" -ge 1 ] && break; sleep 0.1; done
[ "$(q "$OKQ")" -ge 1 ] || fail "re-run did not succeed: $(q "SELECT status, error FROM md.ingest_job_runs")"
[ "$(q "SELECT count(*) FROM md.publish_outbox")" = 0 ] || fail "outbox not empty after the re-run"
kill -TERM "$pid"; wait "$pid" || fail "qb-data exit $? after SIGTERM"; pid=""

# The clean import.
for s in "$S1" "$S2"; do
  QB_PG_DSN="$DSN2" "$QBCTL" migrate >/dev/null 2>&1 || true
  QB_PG_DSN="$DSN2" "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" --format generic \
    --columns time,open,high,low,close,volume --time-format unix_s --timeframe 1m --no-publish \
    >"$T/imp" 2>&1 || fail "clean import: $(cat "$T/imp")"
done
DUMP="SELECT a.symbol, b.timeframe, b.ts, b.open, b.high, b.low, b.close, b.volume, b.flags, b.source
      FROM md.bars b JOIN md.assets a USING (asset_id) ORDER BY a.symbol, b.ts"
c1=$(psql "$DSN" -qAtc "SELECT count(*) FROM ($DUMP) x")
c2=$(psql "$DSN2" -qAtc "SELECT count(*) FROM ($DUMP) x")
[ "$c1" = $((2 * N)) ] || fail "killed+re-run table has $c1 bars, want $((2 * N))"
[ "$c2" = $((2 * N)) ] || fail "clean import has $c2 bars, want $((2 * N))"
h1=$(psql "$DSN" -qAtc "COPY ($DUMP) TO STDOUT" | md5sum)
h2=$(psql "$DSN2" -qAtc "COPY ($DUMP) TO STDOUT" | md5sum)
[ "$h1" = "$h2" ] || fail "tables differ after kill + re-run (md5 $h1 vs $h2)"
grep -q '"level":"error"' "$T/log2" && fail "errors in the restarted qb-data's log"
echo "qb-data kill -9 at $after_kill/$((2 * N)) bars (outbox rows left $outbox_at_kill): restart + re-run == clean import ($c1 bars, md5 equal), outbox empty"
