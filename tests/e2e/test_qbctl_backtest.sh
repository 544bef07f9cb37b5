#!/usr/bin/env bash
# test_qbctl_backtest.sh — `qbctl backtest` as an operator uses it, locally
# (no database, bus or network):
#  - a crafted 6-bar CSV where sma_cross {fast:1, slow:2} goes LONG on bar 2
#    and FLAT on bar 4: with all-in next-open fills the JSON metrics are the
#    hand-computed ones (buy 80 at 12.5, sell at 10: final equity 800, one
#    lost round trip, max drawdown 20%); with close fills, 0.1% commission,
#    10 bps slippage and fixed 10 shares: final equity 999.56;
#  - --report-json is valid JSON with the equity curve and the trade;
#    --html is one self-contained page (inline SVG, no script, no link)
#    with the plain-English drawdown line;
#  - several symbols from ../shared-style Yahoo files (SYM=FILE and names
#    from file names) run and trade;
#  - errors: unknown strategy, bad params, bad --fill, missing --csv exit 2
#    with a message naming the problem; a missing file exits 1; a rejected
#    CSV row is reported as FILE:LINE and exits 1 after the run.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QB_BIN_DIR:-$ROOT/${B:-build}/bin}
QBCTL="$BIN/qbctl"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && head -5 "$f" | sed 's/^/  | /' >&2; done; exit 1; }
run() { set +e; "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }
# value of a key of the JSON object in $T/out (python3: an independent reader)
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$T/out" "$1"; }
near() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b) <= 1e-9*max(1,abs(b)) else 1)' "$1" "$2"; }

[ -x "$QBCTL" ] || fail "no qbctl at $QBCTL"

cat >"$T/aaa.csv" <<'EOF'
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10,10,10,10,10,1000000
2024-01-03,9,9,9,9,9,1000000
2024-01-04,11,11,11,11,11,1000000
2024-01-05,12.5,13,12,12,12,1000000
2024-01-06,11.5,11.5,11,11,11,1000000
2024-01-07,10,10.5,10,10.5,10.5,1000000
EOF

# ---- hand-computed: all in, next open ------------------------------------
run backtest --csv "$T/aaa.csv" --strategy sma_cross --params '{"fast":1,"slow":2}' \
    --cash 1000 --long-only --json
[ $rc -eq 0 ] || fail "json run exited $rc"
near "$(jget final_equity)" 800 || fail "final_equity $(jget final_equity), want 800"
near "$(jget total_return)" -0.2 || fail "total_return"
near "$(jget max_dd_pct)" 0.2 || fail "max_dd_pct"
[ "$(jget trades_closed)" = 1 ] && [ "$(jget trades_open)" = 0 ] || fail "trades"
[ "$(jget won)" = 0 ] && [ "$(jget lost)" = 1 ] || fail "won/lost"
near "$(jget benchmark.final_equity)" 1050 || fail "benchmark final equity"
[ "$(jget counts.fills)" = 2 ] || fail "fills"
echo "ok: all in, next open: final equity 800, one lost trade, max dd 20%, benchmark 1050"

# ---- hand-computed: close fills, commission, slippage, fixed qty -----------
run backtest --csv AAA="$T/aaa.csv" --strategy sma_cross --params '{"fast":1,"slow":2}' \
    --cash 1000 --fill close --commission-pct 0.1 --slippage-bps 10 --sizing fixed_qty \
    --sizing-value 10 --json
[ $rc -eq 0 ] || fail "close run exited $rc"
near "$(jget final_equity)" 999.56 || fail "final_equity $(jget final_equity), want 999.56"
near "$(jget counts.commissions)" 0.22 || fail "commissions"
near "$(jget expectancy)" -0.44 || fail "expectancy"
echo "ok: close fills with 0.1% commission and 10 bps slippage: 999.56"

# ---- reports -----------------------------------------------------------------
run backtest --csv "$T/aaa.csv" --strategy sma_cross --params '{"fast":1,"slow":2}' \
    --cash 1000 --report-json "$T/r.json" --html "$T/r.html" --title 'Crafted <AAA>'
[ $rc -eq 0 ] || fail "report run exited $rc"
grep -q "max drawdown" "$T/out" || fail "text output lacks the metrics table"
python3 - "$T/r.json" <<'EOF' || fail "report json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["symbols"] == ["AAA"], d["symbols"]
assert len(d["equity"]) == 6
assert [float(p[1]) for p in d["equity"]] == [1000, 1000, 1000, 960, 880, 800]
assert len(d["trades"]) == 1 and float(d["trades"][0]["net_pnl"]) == -200
assert d["trades"][0]["entry_ts"].startswith("2024-01-05")
assert len(d["fills"]) == 2 and d["fills"][0]["role"] == "ENTRY"
assert d["config"]["fill"] == "NEXT_OPEN"
EOF
head -c 15 "$T/r.html" | grep -q '<!DOCTYPE html>' || fail "html doctype"
grep -q '<svg' "$T/r.html" || fail "html has no svg"
grep -q 'Max drawdown 20.0%: at the worst point you would have been down' "$T/r.html" || fail "html summary"
grep -q 'Crafted &lt;AAA&gt;' "$T/r.html" || fail "html title not escaped"
! grep -qiE '<script|src=|href=' "$T/r.html" || fail "html is not self-contained"
grep -q 'Monthly returns' "$T/r.html" || fail "html monthly table"
echo "ok: JSON report (equity, trades, fills) and self-contained HTML report"

# ---- several symbols (Yahoo files) ------------------------------------------
DATA="$ROOT/../shared/data"
if [ -f "$DATA/orcl-1995-2014.txt" ]; then
    run backtest --csv "$DATA/orcl-1995-2014.txt" --csv NV="$DATA/nvda-1999-2014.txt" \
        --strategy sma_cross --params '{"fast":10,"slow":30,"allow_short":true}' \
        --sizing percent_equity --sizing-value 0.4 --commission-pct 0.05 --json
    [ $rc -eq 0 ] || fail "two-symbol run exited $rc"
    [ "$(jget trades_closed)" -gt 50 ] || fail "few trades: $(jget trades_closed)"
    run backtest --csv "$DATA/orcl-1995-2014.txt" --csv NV="$DATA/nvda-1999-2014.txt" \
        --strategy sma_cross --trades
    grep -q '^NV ' "$T/out" && grep -q '^ORCL ' "$T/out" || fail "trade list symbols"
    echo "ok: two Yahoo files, shorts allowed, percent of equity"
fi

# ---- errors --------------------------------------------------------------------
run backtest --csv "$T/aaa.csv" --strategy nope
[ $rc -eq 2 ] && grep -q 'nope' "$T/err" || fail "unknown strategy: rc $rc"
run backtest --csv "$T/aaa.csv" --strategy sma_cross --params '{"fast":0}'
[ $rc -eq 2 ] && grep -q 'fast' "$T/err" || fail "bad params: rc $rc"
run backtest --csv "$T/aaa.csv" --strategy sma_cross --fill later
[ $rc -eq 2 ] && grep -q -- '--fill' "$T/err" || fail "bad --fill: rc $rc"
run backtest --strategy sma_cross
[ $rc -eq 2 ] && grep -q -- '--csv' "$T/err" || fail "missing --csv: rc $rc"
run backtest --csv "$T/missing.csv" --strategy sma_cross
[ $rc -eq 1 ] || fail "missing file: rc $rc"
cp "$T/aaa.csv" "$T/bad.csv"
echo "2024-01-08,10,9,11,10,10,100" >>"$T/bad.csv"
run backtest --csv "$T/bad.csv" --strategy sma_cross --params '{"fast":1,"slow":2}' --json
[ $rc -eq 1 ] || fail "rejected row: rc $rc"
grep -q 'bad.csv:8' "$T/err" || fail "rejected row not reported as FILE:LINE"
echo "ok: errors exit 2 naming the problem; missing file and rejected rows exit 1"
echo "PASS test_qbctl_backtest"
