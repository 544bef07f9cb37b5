#!/usr/bin/env bash
# test_qbctl_backfill.sh — `qbctl backfill` against the harness PostgreSQL
# (own database) and bus:
#  - synthetic source, two equity symbols, 1d over 2024: every NYSE session
#    (252) stored per symbol, published on md.bars; --progress always draws
#    a bar that reaches 100%;
#  - run again: nothing missing, nothing fetched (0 loaded);
#  - bars deleted from the middle: a third run fetches only the holes (the
#    loaded count equals the deleted count) and the table is whole again,
#    equal to what it was (same synthetic seed -> same bars);
#  - `qbctl data resample` 1m -> 1h and 1d over two NYSE sessions: bars
#    checked by hand (the 15:30 bar is half an hour), a second run loads 0;
#  - csv source with a {symbol} path; errors: unknown source, bad options,
#    missing --to, exit 2.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
QBCTL="${QB_BIN_DIR:-$ROOT/$B/bin}/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
DB="qbbf_$$_$RANDOM"
cleanup() {
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/err" ] && tail -5 "$T/err" >&2; exit 1; }
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
export QB_PG_DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$QB_PG_DSN" -qAtc "$1"; }
"$QBCTL" migrate >/dev/null
run() { set +e; "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }

A="BFA$RANDOM"; Bs="BFB$RANDOM"
run backfill --source synthetic --symbols "$A,$Bs" --from 2024-01-01 --to 2025-01-01 --timeframe 1d --progress always
[ $rc -eq 0 ] || fail "backfill exited $rc"
for s in "$A" "$Bs"; do
  n=$(q "SELECT count(*) FROM md.bars_v WHERE symbol = '$s' AND timeframe = '1d' AND extract(isodow FROM ts) < 6")
  [ "$n" -ge 252 ] || fail "$s: $n weekday bars stored, want >= 252 (NYSE sessions of 2024)"
done
grep -q $'\r\\[###' "$T/err" || fail "no progress bar drawn"
grep -q '100.0%' "$T/err" || fail "progress never reached 100%"
grep -q "published" "$T/out" || fail "no summary"
pub=$(sed -n 's/.* \([0-9]*\) published.*/\1/p' "$T/out")
[ "$pub" -gt 0 ] || fail "nothing published"
q "COPY (SELECT symbol, ts, open, high, low, close, volume FROM md.bars_v ORDER BY 1, 2) TO STDOUT" >"$T/before"

# Again: nothing missing.
run backfill --source synthetic --symbols "$A,$Bs" --from 2024-01-01 --to 2025-01-01 --timeframe 1d --progress never
[ $rc -eq 0 ] || fail "second backfill exited $rc"
grep -q "^backfill synthetic 1d: 2 symbols, 0 bars loaded" "$T/out" || fail "second run loaded something: $(cat "$T/out")"
grep -q "^$A 1d: 0 missing bars in 0 spans" "$T/out" || fail "second run found gaps: $(cat "$T/out")"

# Holes: delete 10 sessions of A in March and 3 of B in July.
q "DELETE FROM md.bars b USING md.assets a WHERE a.asset_id = b.asset_id AND a.symbol = '$A' AND b.ts >= '2024-03-04' AND b.ts < '2024-03-16'" >/dev/null
q "DELETE FROM md.bars b USING md.assets a WHERE a.asset_id = b.asset_id AND a.symbol = '$Bs' AND b.ts >= '2024-07-08' AND b.ts < '2024-07-11'" >/dev/null
run backfill --source synthetic --symbols "$A,$Bs" --from 2024-01-01 --to 2025-01-01 --timeframe 1d --progress never
[ $rc -eq 0 ] || fail "third backfill exited $rc"
grep -q "^$A 1d: 10 missing bars in 1 spans, [0-9]* loaded" "$T/out" || fail "A holes: $(cat "$T/out")"
grep -q "^$Bs 1d: 3 missing bars in 1 spans, [0-9]* loaded" "$T/out" || fail "B holes: $(cat "$T/out")"
q "COPY (SELECT symbol, ts, open, high, low, close, volume FROM md.bars_v ORDER BY 1, 2) TO STDOUT" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "table after filling the holes differs from before"

# csv with a {symbol} path.
C="BFC$RANDOM"
{ echo "Date,Open,High,Low,Close,Adj Close,Volume"
  echo "2024-06-17,10,11,9,10.5,10.5,1000"; echo "2024-06-18,10,11,9,10.5,10.5,1000"; } >"$T/$C.csv"
run backfill --source csv --options '{"path":"'"$T"'/{symbol}.csv"}' --symbols "$C" --from 2024-06-17 --to 2024-06-19 --no-publish
[ $rc -eq 0 ] || fail "csv backfill exited $rc"
[ "$(q "SELECT count(*) FROM md.bars_v WHERE symbol = '$C'")" = 2 ] || fail "csv backfill stored $(q "SELECT count(*) FROM md.bars_v WHERE symbol = '$C'")"

# Resampling stored 1m bars (two NYSE sessions, 09:30-16:00 EDT = 13:30-20:00Z):
# minute i: open 100 + i/100, close open + 0.01, high close + 0.05, low open - 0.05, volume 100.
R="BFR$RANDOM"
{ echo "time,open,high,low,close,volume"
  for d in 1718631000 1718717400; do # 2024-06-17/18T13:30:00Z
    awk -v t0=$d 'BEGIN { for (i = 0; i < 390; i++) { o = 100 + i / 100; c = o + 0.01;
      printf "%d,%.2f,%.2f,%.2f,%.2f,100\n", t0 + 60 * i, o, c + 0.05, o - 0.05, c } }'
  done; } >"$T/r1m.csv"
run import --csv "$T/r1m.csv" --symbol "$R" --format generic --time-format unix_s --timeframe 1m --no-publish
[ $rc -eq 0 ] || fail "import 1m: $(cat "$T/out")"
run data resample "$R" --to-tf 1h --no-publish --progress never
[ $rc -eq 0 ] || fail "resample 1h exited $rc"
[ "$(q "SELECT count(*) FROM md.bars_v WHERE symbol = '$R' AND timeframe = '1h'")" = 14 ] ||
  fail "resample 1h stored $(q "SELECT count(*) FROM md.bars_v WHERE symbol = '$R' AND timeframe = '1h'") bars, want 2 x 7"
got=$(q "SELECT ts, open, high, low, close, volume, source FROM md.bars_v WHERE symbol = '$R' AND timeframe = '1h' ORDER BY ts LIMIT 1")
[ "$got" = "2024-06-17 13:30:00+00|100.00000000|100.65000000|99.95000000|100.60000000|6000.00000000|resample" ] || fail "first 1h bar: $got"
got=$(q "SELECT ts, open, high, low, close, volume FROM md.bars_v WHERE symbol = '$R' AND timeframe = '1h' AND ts = '2024-06-17 19:30Z'")
[ "$got" = "2024-06-17 19:30:00+00|103.60000000|103.95000000|103.55000000|103.90000000|3000.00000000" ] || fail "last 1h bar (half hour): $got"
run data resample "$R" --to-tf 1d --no-publish --progress never
[ $rc -eq 0 ] || fail "resample 1d exited $rc"
got=$(q "SELECT string_agg(ts::date || '/' || open || '/' || high || '/' || low || '/' || close || '/' || volume, ' ' ORDER BY ts) FROM md.bars_v WHERE symbol = '$R' AND timeframe = '1d'")
[ "$got" = "2024-06-17/100.00000000/103.95000000/99.95000000/103.90000000/39000.00000000 2024-06-18/100.00000000/103.95000000/99.95000000/103.90000000/39000.00000000" ] || fail "1d bars: $got"
run data resample "$R" --to-tf 1h --no-publish --progress never
grep -q "^backfill resample 1h: 1 symbols, 0 bars loaded" "$T/out" || fail "second resample loaded something: $(cat "$T/out")"

run backfill --source nosuch --symbols X --from 2024-01-01 --to 2024-02-01
[ $rc -eq 2 ] && grep -q 'unknown source "nosuch"' "$T/err" || fail "unknown source: rc $rc"
run backfill --source csv --options '[1]' --symbols X --from 2024-01-01 --to 2024-02-01
[ $rc -eq 2 ] && grep -q 'not a JSON object' "$T/err" || fail "bad options: rc $rc"
run backfill --source synthetic --symbols X --from 2024-01-01
[ $rc -eq 2 ] || fail "missing --to: rc $rc"
echo "qbctl backfill: fills exactly the missing sessions, progress bar, csv per symbol, session-aware resample (hand-checked), errors"
