#!/usr/bin/env bash
# test_qbctl_ta.sh — `qbctl ta` as an operator uses it, on the TA-Lib
# fixture tests/fixtures/ta/trend.csv (generic CSV, auto-detected) and on a
# Yahoo-format copy of its first rows:
#  - csv output: header "time,close,<columns>" with the spec names of
#    libs/ta (defaults filled in: `rsi` prints as rsi:14), one line per bar,
#    empty cells before each first valid index;
#  - values equal tests/fixtures/ta/trend.ref.csv (TA-Lib) for rsi:14,
#    macd:12:26:9.signal and bbands:20:2:2.lower at a few rows;
#  - json output: one object per line, same values, null before valid;
#  - a bad spec (rsi:0, macd:26:12, foo) exits 2 with a message naming the
#    indicator and parameter; missing options exit 2; a missing file exits 1.
# Needs only the qbctl binary: no database, bus or network.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QB_BIN_DIR:-$ROOT/${B:-build}/bin}
QBCTL="$BIN/qbctl"
FIX="$ROOT/tests/fixtures/ta"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && head -5 "$f" | sed 's/^/  | /' >&2; done; exit 1; }
run() { set +e; "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }

[ -x "$QBCTL" ] || fail "no qbctl at $QBCTL"

# column index (1-based) of a header name in a CSV file
colidx() { head -1 "$1" | tr ',' '\n' | grep -nFx -- "$2" | cut -d: -f1; }
# cell of CSV file $1 whose first column is $2 (the ref's row / our time), column $3
cell_ref() { awk -F, -v r="$2" -v c="$3" 'NR > 1 && $1 == r { print $c; exit }' "$1"; }
# numbers equal within 1e-9 relative (both empty also counts as equal)
same() { awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "") exit !(a == "" && b == "");
    d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); n = (b < 0 ? -b : b); if (n > m) m = n;
    exit !(d <= 1e-9 * m) }'; }

# ---- csv ---------------------------------------------------------------
run ta --csv "$FIX/trend.csv" --indicators 'rsi,macd:12:26:9,bbands:20:2:2'
[ $rc -eq 0 ] || fail "csv run exited $rc"
want_hdr="time,close,rsi:14,macd:12:26:9.macd,macd:12:26:9.signal,macd:12:26:9.hist,bbands:20:2:2.upper,bbands:20:2:2.middle,bbands:20:2:2.lower"
[ "$(head -1 "$T/out")" = "$want_hdr" ] || fail "csv header: $(head -1 "$T/out")"
nbars=$(($(wc -l <"$FIX/trend.csv") - 1))
[ $(($(wc -l <"$T/out") - 1)) -eq "$nbars" ] || fail "expected $nbars rows"
cp "$T/out" "$T/ta.csv"
# the first row (bar 0) has no indicator values: 7 empty cells
[ "$(sed -n 2p "$T/ta.csv" | cut -d, -f3-)" = ",,,,,," ] || fail "bar 0 not empty: $(sed -n 2p "$T/ta.csv")"

for col in rsi:14 macd:12:26:9.signal bbands:20:2:2.lower; do
    ci=$(colidx "$T/ta.csv" "$col"); ri=$(colidx "$FIX/trend.ref.csv" "$col")
    [ -n "$ci" ] && [ -n "$ri" ] || fail "column $col missing"
    for row in 0 13 14 33 500 1999; do
        # our row `row` is line row+2; the ref is keyed by its row column
        ours=$(sed -n "$((row + 2))p" "$T/ta.csv" | cut -d, -f"$ci")
        ref=$(cell_ref "$FIX/trend.ref.csv" "$row" "$ri")
        same "$ours" "$ref" || fail "$col row $row: qbctl '$ours' vs TA-Lib '$ref'"
    done
done
echo "ok: csv header, row count and rsi/macd/bbands values match TA-Lib"

# ---- json --------------------------------------------------------------
run ta --csv "$FIX/trend.csv" --indicators 'rsi:14,aroon' --format json
[ $rc -eq 0 ] || fail "json run exited $rc"
[ "$(wc -l <"$T/out")" -eq "$nbars" ] || fail "json: expected $nbars lines"
first=$(head -1 "$T/out")
c0=$(awk -F, 'NR == 2 { print $5 + 0 }' "$FIX/trend.csv")
[ "$first" = "{\"time\":\"2000-01-03\",\"close\":$c0,\"rsi:14\":null,\"aroon:14.down\":null,\"aroon:14.up\":null}" ] \
    || fail "json first line: $first"
line=$(sed -n 501p "$T/out")
ours=$(printf '%s\n' "$line" | sed 's/.*"rsi:14":\([^,}]*\).*/\1/')
ref=$(cell_ref "$FIX/trend.ref.csv" 500 "$(colidx "$FIX/trend.ref.csv" rsi:14)")
same "$ours" "$ref" || fail "json rsi:14 row 500: '$ours' vs '$ref'"
if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$T/out" || fail "json does not parse"
fi
echo "ok: json lines, null before valid, rsi value matches TA-Lib"

# ---- yahoo format (auto-detected) --------------------------------------
{
    echo "Date,Open,High,Low,Close,Adj Close,Volume"
    awk -F, 'NR > 1 && NR <= 41 { print $1 "," $2 "," $3 "," $4 "," $5 "," $5 "," $6 }' "$FIX/trend.csv"
} >"$T/yahoo.csv"
run ta --csv "$T/yahoo.csv" --indicators 'sma:5'
[ $rc -eq 0 ] || fail "yahoo run exited $rc"
[ "$(sed -n 41p "$T/out" | cut -d, -f1-2)" = "$(sed -n 41p "$T/ta.csv" | cut -d, -f1-2)" ] \
    || fail "yahoo row 39 time/close: $(sed -n 41p "$T/out")"
ours=$(sed -n 41p "$T/out" | cut -d, -f3)
# sma:5 at bar 39 by hand from the closes
want=$(awk -F, 'NR >= 37 && NR <= 41 { s += $5 } END { printf "%.10f", s / 5 }' "$FIX/trend.csv")
awk -v a="$ours" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-8) }' \
    || fail "yahoo sma:5 bar 39: $ours vs $want"
echo "ok: yahoo CSV auto-detected"

# ---- errors ------------------------------------------------------------
run ta --csv "$FIX/trend.csv" --indicators 'rsi:0'
[ $rc -eq 2 ] || fail "rsi:0 exited $rc, want 2"
grep -q "rsi: period must be >= 2, got 0" "$T/err" || fail "rsi:0 message: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "rsi:0 printed output"
run ta --csv "$FIX/trend.csv" --indicators 'rsi,macd:26:12'
[ $rc -eq 2 ] || fail "macd:26:12 exited $rc, want 2"
grep -q "macd: slow (12) must be > fast (26)" "$T/err" || fail "macd message: $(cat "$T/err")"
run ta --csv "$FIX/trend.csv" --indicators 'foo:3'
[ $rc -eq 2 ] || fail "foo exited $rc, want 2"
grep -q "foo: unknown indicator" "$T/err" || fail "foo message: $(cat "$T/err")"
run ta --csv "$FIX/trend.csv"
[ $rc -eq 2 ] || fail "missing --indicators exited $rc, want 2"
run ta --csv "$FIX/trend.csv" --indicators rsi --format xml
[ $rc -eq 2 ] || fail "--format xml exited $rc, want 2"
run ta --csv "$T/nope.csv" --indicators rsi
[ $rc -eq 1 ] || fail "missing file exited $rc, want 1"
grep -q "nope.csv" "$T/err" || fail "missing file message: $(cat "$T/err")"
run ta --list
[ $rc -eq 0 ] && grep -q "^stochrsi" "$T/out" || fail "--list"
echo "ok: bad specs exit 2 with the parameter named; missing file exits 1"
echo "PASS test_qbctl_ta"
