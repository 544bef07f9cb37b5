#!/usr/bin/env bash
# test_qbctl_walkforward.sh — `qbctl walkforward` and `qbctl optimize` as an
# operator uses them, locally (no database, bus or network); JSON read back
# with python3 (an independent reader):
#  - windows laid out as worked by hand: 11 daily bars, IS 4, OOS 2, rolling
#    and anchored, the remainder window, --no-partial, a step longer than
#    the OOS, lengths in calendar months;
#  - the out-of-sample aggregate uses only OOS bars: an in-sample part that
#    rises 10 -> ~1000 while the OOS part is flat gives a flat aggregate
#    (total return 0, exactly the OOS steps, first at the OOS start);
#  - on a real Yahoo file: windows chain (each window starts with the equity
#    the previous ended with), the stitched curve has one point per OOS
#    step, the output is identical for 1 and 2 threads, a random search
#    prints its seed and that seed repeats the run byte for byte, Monte
#    Carlo is reproducible by --mc-seed;
#  - optimize ranks by the objective (ties by combination index), --top;
#  - errors: missing --is, bad grid, step < oos, unknown objective exit 2
#    naming the problem; a progress bar with --progress always.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${QB_BIN_DIR:-$ROOT/${B:-build}/bin}
QBCTL="$BIN/qbctl"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/out "$T"/err; do [ -f "$f" ] && head -5 "$f" | sed 's/^/  | /' >&2; done; exit 1; }
run() { set +e; "$QBCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?; set -e; }
# python expression over d = the JSON in $T/out
py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/out" "$1"; }

[ -x "$QBCTL" ] || fail "no qbctl at $QBCTL"

# 11 daily bars, 2024-01-01 .. 2024-01-11
python3 - "$T/flat.csv" <<'EOF'
import sys, datetime
with open(sys.argv[1], "w") as f:
    f.write("Date,Open,High,Low,Close,Adj Close,Volume\n")
    for i in range(11):
        d = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        f.write(f"{d},10,10,10,10,10,1000\n")
EOF
WF=(walkforward --csv AAA="$T/flat.csv" --strategy sma_cross --params '{"slow":2}' --grid 'fast=1'
    --progress never --json)

# ---- layouts by hand ---------------------------------------------------------------
run "${WF[@]}" --is 4 --oos 2
[ $rc -eq 0 ] || fail "rolling exited $rc"
[ "$(py '[(w["is_steps"], w["oos_steps"], w["partial"]) for w in d["windows"]]')" = \
  "[([0, 4], [4, 6], False), ([2, 6], [6, 8], False), ([4, 8], [8, 10], False), ([6, 10], [10, 11], True)]" ] \
    || fail "rolling layout: $(py '[(w["is_steps"], w["oos_steps"]) for w in d["windows"]]')"
[ "$(py '[w["oos_from"][:10] for w in d["windows"]]')" = "['2024-01-05', '2024-01-07', '2024-01-09', '2024-01-11']" ] \
    || fail "rolling OOS dates"
[ "$(py 'd["windows"][1]["is_from"][:10]')" = 2024-01-03 ] || fail "rolling IS start"
run "${WF[@]}" --is 4 --oos 2 --mode anchored
[ "$(py '[(w["is_steps"], w["oos_steps"]) for w in d["windows"]]')" = \
  "[([0, 4], [4, 6]), ([0, 6], [6, 8]), ([0, 8], [8, 10]), ([0, 10], [10, 11])]" ] || fail "anchored layout"
run "${WF[@]}" --is 4 --oos 2 --no-partial
[ "$(py 'len(d["windows"])')" = 3 ] && [ "$(py 'd["metrics"]["bars"]')" = 6 ] || fail "--no-partial"
run "${WF[@]}" --is 4 --oos 2 --step 3
[ "$(py '[w["oos_steps"] for w in d["windows"]]')" = "[[4, 6], [7, 9], [10, 11]]" ] || fail "step 3"
echo "ok: rolling, anchored, remainder, --no-partial and step > oos laid out as by hand"

python3 - "$T/months.csv" <<'EOF'
import sys, datetime
with open(sys.argv[1], "w") as f:
    f.write("Date,Open,High,Low,Close,Adj Close,Volume\n")
    for i in range(167):  # 2024-01-01 .. 2024-06-15, every day
        d = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        f.write(f"{d},10,10,10,10,10,1000\n")
EOF
run walkforward --csv AAA="$T/months.csv" --strategy sma_cross --params '{"slow":2}' --grid 'fast=1' \
    --is 2mo --oos 1mo --progress never --json
[ "$(py '[(w["is_from"][:10], w["oos_from"][:10], w["oos_steps"]) for w in d["windows"]]')" = \
  "[('2024-01-01', '2024-03-01', [60, 91]), ('2024-02-01', '2024-04-01', [91, 121]), ('2024-03-01', '2024-05-01', [121, 152]), ('2024-04-01', '2024-06-01', [152, 167])]" ] \
    || fail "calendar months: $(py '[(w["is_from"][:10], w["oos_from"][:10], w["oos_steps"]) for w in d["windows"]]')"
echo "ok: 2mo / 1mo windows on calendar months (Feb 2024 has 29 days)"

# ---- OOS aggregate = OOS bars only --------------------------------------------------
python3 - "$T/fortune.csv" <<'EOF'
import sys, datetime, math
x = 10.0; rows = []
for i in range(20):
    x = x * 0.9 if i % 2 else x * 1.7
    rows.append(math.floor(x * 100) / 100)
rows += [rows[-1]] * 20
with open(sys.argv[1], "w") as f:
    f.write("Date,Open,High,Low,Close,Adj Close,Volume\n")
    for i, c in enumerate(rows):
        d = datetime.date(2024, 1, 1) + datetime.timedelta(days=i)
        f.write(f"{d},{c},{c},{c},{c},{c},1000\n")
EOF
run walkforward --csv AAA="$T/fortune.csv" --strategy sma_cross --params '{"slow":2}' --grid 'fast=1' \
    --is 20 --oos 10 --mode anchored --objective total_return --progress never --json --trades
[ $rc -eq 0 ] || fail "fortune exited $rc"
python3 - "$T/out" <<'EOF' || fail "OOS aggregate shows in-sample bars"
import json, sys
d = json.load(open(sys.argv[1]))
w0 = d["windows"][0]
assert w0["is_objective"] > 5, w0            # the in-sample fortune is there...
m = d["metrics"]
assert m["total_return"] == 0, m["total_return"]   # ...and not in the aggregate
assert m["bars"] == 20 and m["first_ts"].startswith("2024-01-21"), (m["bars"], m["first_ts"])
assert d["trades"] == []
EOF
echo "ok: an in-sample +500% leaves the out-of-sample aggregate flat (20 OOS steps only)"

# ---- a real file -------------------------------------------------------------------------
DATA="$ROOT/../shared/data"
if [ -f "$DATA/orcl-1995-2014.txt" ]; then
    R=(walkforward --csv "$DATA/orcl-1995-2014.txt" --strategy sma_cross
       --grid 'fast=5:30:5;slow=40:200:40' --is 1000 --oos 250 --min-trades 2
       --commission-pct 0.1 --progress never)
    run "${R[@]}" --json --threads 1 --report-json "$T/full.json"
    [ $rc -eq 0 ] || fail "orcl exited $rc"
    cp "$T/out" "$T/t1.json"
    python3 - "$T/out" "$T/full.json" <<'EOF' || fail "orcl walk-forward invariants"
import json, sys
d = json.load(open(sys.argv[1])); full = json.load(open(sys.argv[2]))
ws = d["windows"]
assert len(ws) == 17, len(ws)
for a, b in zip(ws, ws[1:]):
    assert a["oos_steps"][1] == b["oos_steps"][0]          # OOS windows tile the data
    assert a["end_equity"] == b["start_equity"]            # returns chained
assert ws[0]["start_equity"] == 100000
n_oos = sum(w["oos_steps"][1] - w["oos_steps"][0] for w in ws)
assert d["metrics"]["bars"] == n_oos == len(full["equity"]), (d["metrics"]["bars"], n_oos)
assert abs(full["equity"][-1][1] - d["metrics"]["final_equity"]) < 1e-6
assert full["equity"][0][0] == ws[0]["oos_from"]
assert d["metrics"]["trades_open"] == 0
assert d["metrics"]["trades_closed"] == len(full["trades"])
st = d["stability"]["params"]
assert [p["name"] for p in st] == ["fast", "slow"] and all(len(p["values"]) == 17 for p in st)
EOF
    run "${R[@]}" --json --threads 2
    cmp -s "$T/out" "$T/t1.json" || fail "1 and 2 threads differ"
    echo "ok: ORCL 17 windows chain, one stitched point per OOS step, same output on 1 and 2 threads"

    run "${R[@]}" --random 7
    [ $rc -eq 0 ] || fail "random exited $rc"
    seed=$(sed -n 's/.*, seed \([0-9][0-9]*\).*/\1/p' "$T/out" | head -1)
    [ -n "$seed" ] || fail "random search prints no seed"
    grep -q -- '--seed repeats it' "$T/out" || fail "no hint to repeat the seed"
    run "${R[@]}" --random 7 --seed "$seed" --json --mc 500 --mc-seed 9
    cp "$T/out" "$T/r1.json"
    run "${R[@]}" --random 7 --seed "$seed" --json --mc 500 --mc-seed 9 --threads 1
    cmp -s "$T/out" "$T/r1.json" || fail "the same seeds do not repeat the run"
    [ "$(py 'd["space"]["combos"]')" = 7 ] && [ "$(py 'd["space"]["seed"]')" = "$seed" ] || fail "random space"
    [ "$(py 'd["monte_carlo"]["paths"]')" = 500 ] || fail "monte carlo in JSON"
    echo "ok: random search seed $seed printed and repeated byte for byte; Monte Carlo by --mc-seed"

    run optimize --csv "$DATA/orcl-1995-2014.txt" --strategy sma_cross --grid 'fast=5:30:5;slow=40:200:40' \
        --objective calmar --progress never --json
    [ $rc -eq 0 ] || fail "optimize exited $rc"
    python3 - "$T/out" <<'EOF' || fail "optimize ranking"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["ranking"]
assert len(r) == 30 and d["objective"] == "calmar"
el = [x for x in r if x["eligible"]]
for a, b in zip(el, el[1:]):
    assert a["objective"] > b["objective"] or (a["objective"] == b["objective"] and a["combo"] < b["combo"])
assert r[0]["metrics"]["calmar"] == r[0]["objective"]
EOF
    run optimize --csv "$DATA/orcl-1995-2014.txt" --strategy sma_cross --grid 'fast=5:30:5;slow=40:200:40' \
        --top 3 --progress never
    [ "$(grep -c '{"fast"' "$T/out")" = 3 ] && grep -q '27 more' "$T/out" || fail "optimize --top"
    echo "ok: optimize ranks 30 combinations by calmar; --top 3"
fi

# ---- errors and progress --------------------------------------------------------------
run walkforward --csv AAA="$T/flat.csv" --strategy sma_cross --grid 'fast=1' --oos 2
[ $rc -eq 2 ] && grep -q 'is:' "$T/err" || fail "missing --is: rc $rc"
run "${WF[@]}" --is 4 --oos 2 --grid 'fast=5:1:1'
[ $rc -eq 2 ] && grep -q 'fast' "$T/err" || fail "bad grid: rc $rc"
run "${WF[@]}" --is 4 --oos 2 --step 1
[ $rc -eq 2 ] && grep -q 'step' "$T/err" || fail "step < oos: rc $rc"
run "${WF[@]}" --is 4 --oos 2 --objective sharp
[ $rc -eq 2 ] && grep -q 'sharp' "$T/err" || fail "unknown objective: rc $rc"
run "${WF[@]}" --is 40 --oos 2
[ $rc -eq 2 ] && grep -q '11 time steps' "$T/err" || fail "nothing fits: rc $rc"
run walkforward --csv AAA="$T/flat.csv" --strategy sma_cross --grid 'fast=1' --is 4 --oos 2 --progress always
[ $rc -eq 0 ] && grep -q '\[##' "$T/err" || fail "progress bar"
echo "ok: errors exit 2 naming the problem; progress bar on request"
echo "PASS test_qbctl_walkforward"
