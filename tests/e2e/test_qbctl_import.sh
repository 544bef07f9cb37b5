#!/usr/bin/env bash
# test_qbctl_import.sh — `qbctl import` as an operator uses it, against the
# harness PostgreSQL (QB_PG_DSN) in a database of its own:
#  - before `qbctl migrate`: a clear error naming `qbctl migrate`, exit 1;
#  - a clean Yahoo file: exit 0, counts on stdout; again: 0 loaded,
#    10 duplicates, still 10 rows (idempotent);
#  - a file with bad rows: exit 1, "FILE:LINE: reason" lines on stderr for
#    each bad row, the good rows stored, ingest_log counts;
#  - the reject list is capped at 20 with a count of the rest;
#  - every loaded batch is published to md.bars: a re-import publishes the
#    same bars again with the same (deterministic) event ids; --no-publish
#    publishes nothing;
#  - bad usage exits 2.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
QBCTL="$ROOT/$B/bin/qbctl"
FIX="$ROOT/tests/fixtures/md"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
T=$(mktemp -d)
DB="qbimp_$$_$RANDOM"
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && sed 's/^/  | /' "$f" >&2; done; exit 1; }
cleanup() { psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
run() { set +e; QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }

# md schema missing
run import --csv "$FIX/yahoo_small.csv" --symbol ORCL
[ $rc -eq 1 ] || fail "import before migrate exited $rc, want 1"
grep -q "qbctl migrate" "$T/err" || fail "no hint to run qbctl migrate"

run migrate
[ $rc -eq 0 ] || fail "migrate exited $rc"

# clean file, twice
run import --csv "$FIX/yahoo_small.csv" --symbol ORCL
[ $rc -eq 0 ] || fail "clean import exited $rc"
grep -q "loaded 10, duplicates 0, rejected 0" "$T/out" || fail "clean import counts"
run import --csv "$FIX/yahoo_small.csv" --symbol ORCL --format yahoo --timeframe 1d
[ $rc -eq 0 ] || fail "second import exited $rc"
grep -q "loaded 0, duplicates 10, rejected 0" "$T/out" || fail "second import counts"
[ "$(q "SELECT count(*) FROM md.bars_v WHERE symbol = 'ORCL'")" = 10 ] || fail "not 10 rows after two imports"

# a file with bad rows
run import --csv "$FIX/yahoo_bad.csv" --symbol YHOO
[ $rc -eq 1 ] || fail "import with bad rows exited $rc, want 1"
grep -q "loaded 3, duplicates 0, rejected 5" "$T/out" || fail "bad-file counts"
for want in "yahoo_bad.csv:3: null_value" "yahoo_bad.csv:5: bad_number: column High (3): '11.1x'" \
            "yahoo_bad.csv:6: bad_time" "yahoo_bad.csv:7: column_count" \
            "yahoo_bad.csv:8: high_below_low: high 11.2 < low 11.6"; do
  grep -qF "$want" "$T/err" || fail "stderr lacks '$want'"
done
[ "$(grep -c 'yahoo_bad.csv:[0-9]*: ' "$T/err")" = 5 ] || fail "want exactly 5 reject lines"
[ "$(q "SELECT count(*) FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol = 'YHOO'")" = 3 ] \
  || fail "good rows of the bad file not stored"
[ "$(q "SELECT rows_in || ' ' || rows_loaded || ' ' || rows_rejected || ' ' || (rejects_by_reason->>'null_value')
        FROM md.ingest_log WHERE symbol = 'YHOO'")" = "8 3 5 1" ] || fail "ingest_log row for YHOO"

# cap at 20 reject lines
{ echo "Date,Open,High,Low,Close,Adj Close,Volume"
  for i in $(seq 1 30); do echo "2024-01-$(printf %02d $(( (i % 28) + 1 ))),x,1,1,1,1,1"; done; } >"$T/many.csv"
run import --csv "$T/many.csv" --symbol MANY
[ $rc -eq 1 ] || fail "many-rejects import exited $rc"
[ "$(grep -c 'many.csv:[0-9]*: bad_number' "$T/err")" = 20 ] || fail "reject list not capped at 20"
grep -q "and 10 more rejected rows" "$T/err" || fail "no count of the rest"

# generic format with a column mapping
printf 'when;o;h;l;c;v\n2024-01-02T14:30:00Z;1;2;0.5;1.5;7\n' >"$T/gen.csv"
run import --csv "$T/gen.csv" --symbol GEN --format generic --timeframe 1m --delimiter ';' \
    --time-format iso --columns time=when,open=o,high=h,low=l,close=c,volume=v
[ $rc -eq 0 ] || fail "generic import exited $rc"
[ "$(q "SELECT ts AT TIME ZONE 'UTC' || ' ' || close FROM md.bars_v WHERE symbol = 'GEN'")" = "2024-01-02 14:30:00 1.50000000" ] \
  || fail "generic bar"

# publishing to md.bars (unique symbol: the topic is shared by the suite)
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
PSYM="IMP$RANDOM$RANDOM"
run import --csv "$FIX/yahoo_small.csv" --symbol "$PSYM"
[ $rc -eq 0 ] || fail "publishing import exited $rc"
grep -q "published 10 bars to md.bars" "$T/out" || fail "no 'published 10 bars' line"
run import --csv "$FIX/yahoo_small.csv" --symbol "$PSYM"
grep -q "loaded 0, duplicates 10" "$T/out" || fail "re-import counts"
grep -q "published 10 bars to md.bars" "$T/out" || fail "re-import did not re-publish"
run import --csv "$FIX/yahoo_small.csv" --symbol "$PSYM" --no-publish
grep -q "published" "$T/out" && fail "--no-publish still published"
timeout 60 "$QBCTL" tail md.bars --from-beginning --timeout-ms 3000 >"$T/tail" 2>/dev/null || true
n=$(grep -c "\"symbol\":\"$PSYM\"" "$T/tail" || true)
[ "$n" = 20 ] || fail "md.bars has $n messages for $PSYM, want 20 (two publishes of 10)"
ids=$(grep "\"symbol\":\"$PSYM\"" "$T/tail" | sed -E 's/.*"event_id":"([^"]*)".*/\1/' | sort -u | wc -l)
[ "$ids" = 10 ] || fail "want 10 distinct event ids across the two publishes, got $ids"

# usage
run import --symbol X
[ $rc -eq 2 ] || fail "missing --csv exited $rc, want 2"
run import --csv x --symbol X --format nope
[ $rc -eq 2 ] || fail "bad --format exited $rc, want 2"
echo "ok"
