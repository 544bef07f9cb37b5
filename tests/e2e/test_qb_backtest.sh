#!/usr/bin/env bash
# test_qb_backtest.sh — qb-backtest on the harness PostgreSQL and bus.
#
# Three independent deployments (own database with the same synthetic bars,
# own consumer group): A = 1 replica, B = 3 replicas, C = 3 replicas of which
# one is killed with SIGKILL mid-run. Each gets the same walk-forward
# (sma_cross, 4 symbols x 3652 daily bars, 20 rolling windows of 300
# in-sample / 150 out-of-sample steps, a 4 x 4 grid, one combination per
# part: 320 in-sample parts + 20 out-of-sample parts), addressed to its
# group. Asserted:
#  - the three runs finish with identical stored results: metrics (every
#    field, exact), windows (selections, objectives, equities), the stitched
#    equity curve, the trades;
#  - B's parts were evaluated by all 3 replicas; C's replica was killed
#    while the run was running, and the run still finished;
#  - the service's walk-forward equals `qbctl walkforward` over the same
#    bars (exported with `qbctl bars`): final equity and every window's
#    selection;
#  - backtest.events of C's run: PROGRESS events never more than ~1.5 s
#    apart until FINISHED, a WINDOW_DONE per window, FINISHED with metrics;
#  - a one-run backtest equals `qbctl backtest` (final equity, trades); a
#    grid run on B finds `qbctl optimize`'s best combination;
#  - a bad request (unknown strategy) fails the run (FAILED event) and is
#    dead-lettered with the reason;
#  - /metrics passes promtool; SIGTERM exits 0.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-backtest"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for d in a b c; do psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS qbbt_${d}_$TAG WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
dsn() { echo "$QB_PG_DSN dbname=qbbt_${1,,}_$TAG"; }
q() { psql "$(dsn "$1")" -qAtc "$2"; }
SYMS="BTW1,BTW2,BTW3,BTW4"
for d in A B C; do
  psql "$QB_PG_DSN" -qAtc "CREATE DATABASE qbbt_${d,,}_$TAG" >/dev/null
  QB_PG_DSN="$(dsn $d)" QB_SQL_DIR="$ROOT/sql" "$QBCTL" migrate >/dev/null || fail "migrate $d"
  QB_PG_DSN="$(dsn $d)" "$QBCTL" backfill --source synthetic --symbols "$SYMS" --from 2010-01-01 \
    --to 2020-01-01 --timeframe 1d --all --no-publish --progress never >/dev/null 2>&1 || fail "bars into $d"
done
[ "$(q A "SELECT count(*) FROM md.bars")" = 14608 ] || fail "bars: $(q A "SELECT count(*) FROM md.bars")"

start() { # deployment logfile group -> pid in $started (admin on any free port)
  QB_PG_DSN="$(dsn "$1")" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_BACKTEST_GROUP="$3" QB_BACKTEST_BATCH=1 QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$2" &
  started=$!; pids+=("$started")
}
GA="bta-$TAG"; GB="btb-$TAG"; GC="btc-$TAG"
start A "$T/logA" "$GA"; PA=$started
start B "$T/logB1" "$GB"; PB1=$started
start B "$T/logB2" "$GB"; PB2=$started
start B "$T/logB3" "$GB"; PB3=$started
start C "$T/logC1" "$GC"; PC1=$started
start C "$T/logC2" "$GC"; PC2=$started
start C "$T/logC3" "$GC"; PC3=$started
for f in A B1 B2 B3 C1 C2 C3; do
  for _ in $(seq 1 300); do grep -q 'qb-backtest ready' "$T/log$f" && break; sleep 0.1; done
  grep -q 'qb-backtest ready' "$T/log$f" || fail "replica $f not ready"
done
sleep 4 # the groups settle (every replica has its partitions)

produce() { echo "$1" | "$QBCTL" produce backtest.requests >"$T/pout" 2>&1 || fail "qbctl produce: $(cat "$T/pout")"; }
GRID='[{"name":"fast","values":[5,10,15,20]},{"name":"slow","values":[30,50,80,120]}]'
wf() { # run_id group
  echo '{"run_id":"'"$1"'","kind":"BACKTEST_REQUEST_KIND_WHOLE_RUN","group":"'"$2"'","strategy_name":"sma_cross","strategy_params_json":"{\"fast\":10,\"slow\":30}","symbols":["BTW1","BTW2","BTW3","BTW4"],"timeframe":"1d","initial_cash":"10000000000000","walk_forward":{"windows":20,"train_steps":300,"test_steps":150},"grid":'"$GRID"',"objective":"sharpe","min_trades":1,"settings":["sizing=percent_equity","sizing_value=0.2","commission=percent:0.05"],"slippage_rate":0.0002}'
}
RA="wf-$TAG-a"; RB="wf-$TAG-b"; RC="wf-$TAG-c"
produce "$(wf "$RA" "$GA")"
produce "$(wf "$RB" "$GB")"
produce "$(wf "$RC" "$GC")"

status() { q "$1" "SELECT status FROM backtest.runs WHERE run_id = '$2'"; }
# Kill one of C's replicas mid-run: once it has stored some of the run's
# parts, while the run is still far from done.
victim=""
for _ in $(seq 1 1200); do
  w=$(q C "SELECT worker FROM backtest.units WHERE run_id = '$RC' AND status = 'done' GROUP BY worker HAVING count(*) >= 10 ORDER BY count(*) DESC LIMIT 1")
  [ -n "$w" ] && { victim=${w##*:}; break; }
  sleep 0.05
done
[ -n "$victim" ] || fail "C's run never got going: $(q C "SELECT status, units_done, error FROM backtest.runs")"
done_at=$(q C "SELECT units_done || '/' || units_total || ' ' || status FROM backtest.runs WHERE run_id = '$RC'")
kill -KILL "$victim"
case " $PC1 $PC2 $PC3 " in *" $victim "*) ;; *) fail "worker $victim is not one of C's replicas";; esac
[[ "$done_at" == *running ]] || fail "C's run was not running when killed ($done_at)"
echo "killed C replica $victim at $done_at"

for d in A B C; do
  r="wf-$TAG-${d,,}"
  for _ in $(seq 1 1800); do s=$(status $d "$r"); [ "$s" = finished ] || [ "$s" = failed ] && break; sleep 0.1; done
  [ "$(status $d "$r")" = finished ] || fail "$d: run $r is '$(status $d "$r")': $(q $d "SELECT error FROM backtest.runs WHERE run_id = '$r'")"
done

dump() { # deployment run query-with-RUN
  psql "$(dsn "$1")" -qAtc "COPY (${3//RUN/$2}) TO STDOUT" | md5sum
}
MQ="SELECT total_return, cagr, sharpe, sortino, calmar, volatility, max_dd_pct, max_dd_money, exposure, win_rate, profit_factor, trades_closed, trades_open, steps, initial_equity, final_equity, net_profit, commission, params, metrics, summary FROM backtest.metrics WHERE run_id = 'RUN'"
WQ="SELECT window_index, is_from, is_to, oos_from, oos_to, partial, combo, params, valid, eligible, is_objective, is_trades, oos_objective, oos_trades, oos_return, start_equity, end_equity FROM backtest.windows WHERE run_id = 'RUN' ORDER BY window_index"
EQ="SELECT seq, ts, equity, cash, benchmark FROM backtest.equity WHERE run_id = 'RUN' ORDER BY seq"
TQ="SELECT seq, window_index, symbol, dir, open, cut, entry_ts, exit_ts, qty, entry_price, exit_price, commission, net_pnl, scaled_pnl, return_pct, bars FROM backtest.trades WHERE run_id = 'RUN' ORDER BY seq"
[ "$(q A "SELECT count(*) FROM backtest.windows WHERE run_id = '$RA'")" = 20 ] || fail "A: not 20 windows"
[ "$(q A "SELECT count(*) FROM backtest.windows WHERE run_id = '$RA' AND combo IS NOT NULL")" -ge 10 ] || fail "A: too few traded windows"
[ "$(q A "SELECT count(*) FROM backtest.trades WHERE run_id = '$RA'")" -ge 20 ] || fail "A: too few trades"
[ "$(q A "SELECT count(*) FROM backtest.equity WHERE run_id = '$RA'")" -ge 2900 ] || fail "A: equity curve too short"
[ "$(q A "SELECT count(*) FROM backtest.metrics WHERE run_id = '$RA'")" = 1 ] || fail "A: no metrics"
for n in MQ WQ EQ TQ; do
  qq=${!n}
  a=$(dump A "$RA" "$qq")
  [ "$a" = "$(dump B "$RB" "$qq")" ] || fail "3 replicas: $n differ from 1 replica's"
  [ "$a" = "$(dump C "$RC" "$qq")" ] || fail "3 replicas with one killed: $n differ from 1 replica's"
done
nw=$(q B "SELECT count(DISTINCT worker) FROM backtest.units WHERE run_id = '$RB'")
[ "$nw" = 3 ] || fail "B: parts evaluated by $nw replicas, want 3"
[ "$(q C "SELECT count(DISTINCT worker) FROM backtest.units WHERE run_id = '$RC'")" -ge 2 ] || fail "C: one worker only"
[ "$(q A "SELECT units_done = units_total AND units_total = 340 FROM backtest.runs WHERE run_id = '$RA'")" = t ] ||
  fail "A: units $(q A "SELECT units_done || '/' || units_total FROM backtest.runs WHERE run_id = '$RA'")"

# The same walk-forward locally with qbctl over the same bars.
for s in ${SYMS//,/ }; do QB_PG_DSN="$(dsn A)" "$QBCTL" bars "$s" --timeframe 1d >"$T/$s.csv" || fail "qbctl bars $s"; done
TO=$(date -u -d "2010-01-01 + 3300 days" +%F)
"$QBCTL" walkforward --csv BTW1="$T/BTW1.csv" --csv BTW2="$T/BTW2.csv" --csv BTW3="$T/BTW3.csv" --csv BTW4="$T/BTW4.csv" \
  --input-format generic --strategy sma_cross --params '{"fast":10,"slow":30}' --grid 'fast=5,10,15,20;slow=30,50,80,120' \
  --is 300 --oos 150 --to "$TO" --objective sharpe --min-trades 1 --set sizing=percent_equity --set sizing_value=0.2 \
  --set commission=percent:0.05 --slippage-bps 2 --threads 1 --progress never --json >"$T/local.json" 2>"$T/local.err" ||
  fail "qbctl walkforward: $(tail -3 "$T/local.err")"
q A "SELECT final_equity FROM backtest.metrics WHERE run_id = '$RA'" >"$T/svc_fe"
q A "SELECT coalesce(combo::text, 'null') FROM backtest.windows WHERE run_id = '$RA' ORDER BY window_index" >"$T/svc_combos"
python3 - "$T/local.json" "$T/svc_fe" "$T/svc_combos" <<'PY' || fail "service walk-forward differs from qbctl walkforward"
import json, sys
from decimal import Decimal
loc = json.load(open(sys.argv[1]), parse_float=Decimal)
fe = Decimal(open(sys.argv[2]).read().strip()) / Decimal(10**8)
combos = open(sys.argv[3]).read().split()
lc = ["null" if w["combo"] is None else str(w["combo"]) for w in loc["windows"]]
ok = Decimal(str(loc["metrics"]["final_equity"])) == fe and lc == combos
if not ok:
    print("local", loc["metrics"]["final_equity"], lc, "\nservice", fe, combos, file=sys.stderr)
sys.exit(0 if ok else 1)
PY

# Events of C's run: progress at least every ~second until the end, a
# window event per window, the final event with metrics.
timeout 120 "$QBCTL" tail backtest.events --from-beginning --timeout-ms 3000 2>/dev/null | grep "\"run_id\":\"$RC\"" >"$T/ev" || true
python3 - "$T/ev" <<'PY' || fail "events of the killed run"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ev.sort(key=lambda e: int(e["header"]["produced_time"]))
kinds = [e["kind"] for e in ev]
fin = [e for e in ev if e["kind"] == "BACKTEST_EVENT_KIND_FINISHED"]
assert fin and fin[0].get("metrics"), "no FINISHED event with metrics"
wins = {e["window_index"] for e in ev if e["kind"] == "BACKTEST_EVENT_KIND_WINDOW_DONE"}
assert wins == set(range(20)), "window events: %s" % sorted(wins)
t = [int(e["header"]["produced_time"]) for e in ev if e["kind"] in ("BACKTEST_EVENT_KIND_PROGRESS", "BACKTEST_EVENT_KIND_FINISHED")]
end = int(fin[0]["header"]["produced_time"])
t = [x for x in t if x <= end]
gap = max(b - a for a, b in zip(t, t[1:])) / 1e9
assert gap <= 1.6, "progress events %.2f s apart" % gap
prog = [e for e in ev if e["kind"] == "BACKTEST_EVENT_KIND_PROGRESS"]
print("events of the killed run: %d progress (largest gap %.2f s), %d window, %d finished" % (len(prog), gap, len(wins), len(fin)))
PY

# A one-run backtest on A equals qbctl backtest; a grid run on B finds
# qbctl optimize's best combination.
produce '{"run_id":"bt-'"$TAG"'","kind":"BACKTEST_REQUEST_KIND_WHOLE_RUN","group":"'"$GA"'","strategy_name":"sma_cross","strategy_params_json":"{\"fast\":10,\"slow\":50}","symbols":["BTW1","BTW2","BTW3","BTW4"],"timeframe":"1d","initial_cash":"10000000000000","commission":{"rate":0.0005},"settings":["sizing=percent_equity","sizing_value=0.2"]}'
produce '{"run_id":"gr-'"$TAG"'","kind":"BACKTEST_REQUEST_KIND_WHOLE_RUN","group":"'"$GB"'","strategy_name":"sma_cross","strategy_params_json":"{}","symbols":["BTW1","BTW2","BTW3","BTW4"],"timeframe":"1d","initial_cash":"10000000000000","grid":'"$GRID"',"objective":"sharpe","settings":["sizing=percent_equity","sizing_value=0.2"]}'
for r in "A bt-$TAG" "B gr-$TAG"; do
  set -- $r
  for _ in $(seq 1 600); do [ "$(status $1 "$2")" = finished ] && break; sleep 0.1; done
  [ "$(status $1 "$2")" = finished ] || fail "run $2: '$(status $1 "$2")' $(q $1 "SELECT error FROM backtest.runs WHERE run_id = '$2'")"
done
CSVS=(--csv BTW1="$T/BTW1.csv" --csv BTW2="$T/BTW2.csv" --csv BTW3="$T/BTW3.csv" --csv BTW4="$T/BTW4.csv" --input-format generic)
"$QBCTL" backtest "${CSVS[@]}" --strategy sma_cross --params '{"fast":10,"slow":50}' --commission-pct 0.05 \
  --sizing percent_equity --sizing-value 0.2 --progress never --json >"$T/bt.json" 2>/dev/null || fail "qbctl backtest"
"$QBCTL" optimize "${CSVS[@]}" --strategy sma_cross --grid 'fast=5,10,15,20;slow=30,50,80,120' --sizing percent_equity \
  --sizing-value 0.2 --threads 1 --progress never --json >"$T/opt.json" 2>/dev/null || fail "qbctl optimize"
q A "SELECT final_equity, trades_closed + trades_open FROM backtest.metrics WHERE run_id = 'bt-$TAG'" >"$T/svc_bt"
q B "SELECT final_equity, params FROM backtest.metrics WHERE run_id = 'gr-$TAG'" >"$T/svc_gr"
[ "$(q B "SELECT count(*) FROM backtest.scores WHERE run_id = 'gr-$TAG'")" = 16 ] || fail "grid: not 16 scores"
python3 - "$T/bt.json" "$T/svc_bt" "$T/opt.json" "$T/svc_gr" <<'PY' || fail "one-run / grid differ from qbctl"
import json, sys
from decimal import Decimal
bt = json.load(open(sys.argv[1]), parse_float=Decimal)
fe, ntr = open(sys.argv[2]).read().strip().split("|")
assert Decimal(str(bt["final_equity"])) == Decimal(fe) / 10**8, (bt["final_equity"], fe)
assert int(bt["trades_closed"]) + int(bt["trades_open"]) == int(ntr), (bt["trades_closed"], ntr)
opt = json.load(open(sys.argv[3]), parse_float=Decimal)
gfe, gp = open(sys.argv[4]).read().strip().split("|", 1)
best = opt["ranking"][0]
assert json.loads(gp) == best["params"], (gp, best["params"])
assert Decimal(str(best["metrics"]["final_equity"])) == Decimal(gfe) / 10**8, (best["metrics"]["final_equity"], gfe)
PY

# A bad request: FAILED, dead-lettered with the strategy's message.
produce '{"run_id":"bad-'"$TAG"'","kind":"BACKTEST_REQUEST_KIND_WHOLE_RUN","group":"'"$GA"'","strategy_name":"nosuch","symbols":["BTW1"],"timeframe":"1d"}'
for _ in $(seq 1 300); do [ "$(status A "bad-$TAG")" = failed ] && break; sleep 0.1; done
[ "$(status A "bad-$TAG")" = failed ] || fail "bad request: run '$(status A "bad-$TAG")'"
for _ in $(seq 1 100); do [ "$(q A "SELECT final_sent FROM backtest.runs WHERE run_id = 'bad-$TAG'")" = t ] && break; sleep 0.1; done
timeout 60 "$QBCTL" tail backtest.requests.dlq --from-beginning --timeout-ms 3000 --meta 2>/dev/null >"$T/dlq" || true
grep -q "bad-$TAG" "$T/dlq" || fail "bad request not on backtest.requests.dlq"
grep -q "nosuch" "$T/dlq" || fail "DLQ reason lacks the strategy's message"
timeout 60 "$QBCTL" tail backtest.events --from-beginning --timeout-ms 3000 2>/dev/null | grep "\"run_id\":\"bad-$TAG\"" | grep -q FAILED ||
  fail "no FAILED event for the bad request"

port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/logB1" | head -1 | cut -d: -f2)
curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics" || fail "/metrics"
grep -q '^qb_backtest_units_total' "$T/metrics" || fail "/metrics lacks qb_backtest_units_total"
if command -v promtool >/dev/null; then promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics"; fi
live=()
for p in $PA $PB1 $PB2 $PB3 $PC1 $PC2 $PC3; do [ "$p" != "$victim" ] && live+=("$p"); done
for p in "${live[@]}"; do kill -TERM "$p"; done
for p in "${live[@]}"; do wait "$p" || fail "exit $? after SIGTERM"; done
pids=()
echo "qb-backtest: 20-window walk-forward (340 units) on 1 replica == 3 replicas == 3 with one SIGKILLed at $done_at; == qbctl walkforward; one-run == qbctl backtest; grid == qbctl optimize; bad request failed + DLQ; promtool ok"
