#!/usr/bin/env bash
# test_qbctl_replay.sh — `qbctl replay` and `qbctl data gaps` as an operator
# uses them, against the harness PostgreSQL (own database) and bus:
#  - bars imported with --no-publish, then `qbctl replay` puts them on
#    md.bars: read back with `qbctl tail` (filtered by this run's unique
#    symbols), per symbol exactly the stored sequence (ts and prices as in
#    the CSV), in time order; --symbols / --from / --to select; a replay of
#    bars that were published at import repeats their event ids;
#    --speed N paces (runs, exit 0), bad usage exits 2, unknown symbol 1;
#  - `qbctl data gaps` on hand-listed daily bars with known missing NYSE
#    sessions: exactly the missing spans (a span across the July 4 holiday
#    is one gap; Juneteenth and July 4 are never counted), an explicit
#    range, the 24x7 calendar for a crypto asset (a missing Saturday counts).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
QBCTL="$ROOT/$B/bin/qbctl"
FIX="$ROOT/tests/fixtures/md"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
DB="qbrpl_$$_$RANDOM"
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && sed 's/^/  | /' "$f" >&2; done; exit 1; }
cleanup() { psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
run() { set +e; QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }

run migrate
[ $rc -eq 0 ] || fail "migrate exited $rc"

# ---- replay ------------------------------------------------------------------
P="RP$RANDOM$RANDOM"
SA="${P}A"; SB="${P}B"; SC="${P}C"
run import --csv "$FIX/yahoo_small.csv" --symbol "$SA" --no-publish
[ $rc -eq 0 ] || fail "import $SA exited $rc"
# SB: the same days shifted (other prices), every other day only.
awk -F, 'NR == 1 || NR % 2 == 0 { if (NR > 1) { $2 += 100; $3 += 100; $4 += 100; $5 += 100 } print }' OFS=, \
  "$FIX/yahoo_small.csv" >"$T/b.csv"
run import --csv "$T/b.csv" --symbol "$SB" --no-publish
[ $rc -eq 0 ] || fail "import $SB exited $rc"
NB=$(($(wc -l <"$T/b.csv") - 1))

run replay --symbols "$SA,$SB" --timeframe 1d --speed max
[ $rc -eq 0 ] || fail "replay exited $rc"
grep -q "replayed $((10 + NB)) bars of 2 symbols (1d)" "$T/out" || fail "replay count line"
grep -q "bars/s" "$T/out" || fail "no rate"
grep -q "replay:" "$T/err" && fail "progress line although stderr is not a terminal"

# A subset: [2024-01-02, 2024-01-05) of SA is 3 bars; paced (2 days at 1e6x).
run replay --symbols "$SA" --from 2024-01-02 --to 2024-01-05 --speed 1000000
[ $rc -eq 0 ] || fail "paced subset replay exited $rc"
grep -q "replayed 3 bars of 1 symbols" "$T/out" || fail "subset count"

# SC is published at import, then replayed: same event ids.
run import --csv "$FIX/yahoo_small.csv" --symbol "$SC"
[ $rc -eq 0 ] || fail "import $SC exited $rc"
run replay --symbols "$SC"
[ $rc -eq 0 ] || fail "replay $SC exited $rc"

timeout 60 "$QBCTL" tail md.bars --from-beginning --timeout-ms 3000 >"$T/tail" 2>/dev/null || true
field() { sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/"; }
# Expected sequence per symbol from the CSV: "ts close" with close x 1e8.
expect() { awk -F, 'NR > 1 { printf "%s %.0f\n", $1, $5 * 100000000 }' "$1"; }
got() { grep "\"symbol\":\"$1\"" "$T/tail" | while read -r l; do
          ts=$(echo "$l" | field ts); c=$(echo "$l" | field close)
          echo "$(date -u -d "@$((ts / 1000000000))" +%F) $c"; done; }
[ "$(got "$SA" | head -n 10)" = "$(expect "$FIX/yahoo_small.csv")" ] || fail "md.bars sequence of $SA differs from the stored one"
[ "$(got "$SB" | head -n "$NB")" = "$(expect "$T/b.csv")" ] || fail "md.bars sequence of $SB differs from the stored one"
# 10 + 3 (subset) for SA, NB for SB.
[ "$(grep -c "\"symbol\":\"$SA\"" "$T/tail")" = 13 ] || fail "want 13 md.bars messages for $SA"
[ "$(grep -c "\"symbol\":\"$SB\"" "$T/tail")" = "$NB" ] || fail "want $NB md.bars messages for $SB"
grep "\"symbol\":\"$SA\"" "$T/tail" | grep '"source":"csv"' >/dev/null || fail "stored source not kept"
n=$(grep -c "\"symbol\":\"$SC\"" "$T/tail" || true)
[ "$n" = 20 ] || fail "md.bars has $n messages for $SC, want 20 (import + replay)"
ids=$(grep "\"symbol\":\"$SC\"" "$T/tail" | field event_id | sort -u | wc -l)
[ "$ids" = 10 ] || fail "replay did not repeat the import's event ids ($ids distinct, want 10)"
# Bars of SA and SB share a partition or not; either way each symbol's own
# ts sequence is increasing (checked above via the CSV order).

# usage and errors
run replay --speed 0
[ $rc -eq 2 ] || fail "--speed 0 exited $rc, want 2"
run replay --from yesterday
[ $rc -eq 2 ] || fail "bad --from exited $rc, want 2"
run replay --timeframe 2d
[ $rc -eq 2 ] || fail "bad --timeframe exited $rc, want 2"
run replay --symbols "NOSUCH$RANDOM"
[ $rc -eq 1 ] || fail "unknown symbol exited $rc, want 1"
grep -q "unknown symbol" "$T/err" || fail "no 'unknown symbol' message"

# ---- data gaps -----------------------------------------------------------------
# NYSE sessions 2024-06-17 .. 2024-07-12 (Juneteenth 06-19 and July 4 are
# holidays; July 3 is an early close, still a session). Stored: all but
# 06-21, 06-26, 06-27, 07-03 and 07-05.
G="GAP$RANDOM$RANDOM"
{ echo "Date,Open,High,Low,Close,Adj Close,Volume"
  for d in 2024-06-17 2024-06-18 2024-06-20 2024-06-24 2024-06-25 2024-06-28 \
           2024-07-01 2024-07-02 2024-07-08 2024-07-09 2024-07-10 2024-07-11 2024-07-12; do
    echo "$d,10,11,9,10.5,10.5,1000"; done; } >"$T/gaps.csv"
run import --csv "$T/gaps.csv" --symbol "$G" --no-publish
[ $rc -eq 0 ] || fail "import $G exited $rc"
run data gaps "$G"
[ $rc -eq 0 ] || fail "data gaps exited $rc"
printf '2024-06-21 2024-06-22 1\n2024-06-26 2024-06-28 2\n2024-07-03 2024-07-06 2\n' >"$T/want"
diff -u "$T/want" "$T/out" >&2 || fail "gaps differ"
grep -q "XNYS \[2024-06-17, 2024-07-13): 13 stored, 5 missing bars in 3 gaps" "$T/err" || fail "gaps summary"

# An explicit range: 06-10..06-14 missing (one span), 06-17/18 stored, 06-19 holiday.
run data gaps "$G" --from 2024-06-10 --to 2024-06-20 --timeframe 1d --calendar XNYS
[ $rc -eq 0 ] || fail "ranged data gaps exited $rc"
[ "$(cat "$T/out")" = "2024-06-10 2024-06-15 5" ] || fail "ranged gaps"

# Crypto: 24x7 by asset class; a missing Saturday is a gap.
X="GX$RANDOM$RANDOM"
{ echo "Date,Open,High,Low,Close,Adj Close,Volume"
  for d in 2024-01-01 2024-01-02 2024-01-04 2024-01-05 2024-01-07; do echo "$d,10,11,9,10.5,10.5,1000"; done; } >"$T/x.csv"
run import --csv "$T/x.csv" --symbol "$X" --asset-class crypto --no-publish
[ $rc -eq 0 ] || fail "import $X exited $rc"
run data gaps "$X"
[ $rc -eq 0 ] || fail "crypto data gaps exited $rc"
printf '2024-01-03 2024-01-04 1\n2024-01-06 2024-01-07 1\n' >"$T/want"
diff -u "$T/want" "$T/out" >&2 || fail "crypto gaps differ"
grep -q " 24x7 " "$T/err" || fail "crypto did not default to 24x7"
# ... and forced onto XNYS the weekend is no gap (01-01 is New Year's Day).
run data gaps "$X" --calendar XNYS
[ "$(cat "$T/out")" = "2024-01-03 2024-01-04 1" ] || fail "crypto on XNYS"

# no gaps; errors
run data gaps "$SA"
[ $rc -eq 0 ] && [ ! -s "$T/out" ] || fail "a complete series must print no gaps, exit 0"
run data gaps "NOSUCH$RANDOM"
[ $rc -eq 1 ] || fail "gaps of an unknown symbol exited $rc, want 1"
run data gaps
[ $rc -eq 2 ] || fail "gaps without a symbol exited $rc, want 2"
run data gaps "$G" --timeframe 1w
[ $rc -eq 2 ] || fail "gaps --timeframe 1w exited $rc, want 2"
run data nope
[ $rc -eq 2 ] || fail "unknown data subcommand exited $rc, want 2"
echo "ok"
