#!/usr/bin/env bash
# test_bt_live_path.sh — the same strategy on the same bars gives the same
# trades through the backtest engine and through the live path.
#
# Live path: bars are imported (qbctl import --no-publish, generated CSVs:
# 3 symbols x 700 daily random-walk bars, so the test never skips), the
# real qb-features service runs sma_cross {fast 5, slow 20, long-short} on
# them (STRATEGY_SET_PARAMS on control) while `qbctl replay` puts the bars
# on md.bars; the signals it stores in features.signals are exported and
# fed to the backtest engine's signal path (qbctl backtest --signals:
# qb_bt_run_signals: sizing, orders, fills, accounting).
# Engine path: qbctl backtest --strategy sma_cross with the same params on
# the same CSVs (qb_bt_run: libs/strategy inside the engine).
# Asserted, exactly:
#  - qb-features emitted as many signals as the engine's strategies did
#    (and enough of them, shorts included, for the test to mean something);
#  - the trades (symbol, direction, entry/exit times, quantities, entry/exit
#    prices, commissions, net P&L), every fill, the final cash and the final
#    equity are identical (percent_equity sizing, 0.1% commission, 5 bps
#    slippage, next-open fills);
#  - and so are those of a second configuration (all_in, close fills).
# qb-features and the engine only share libs/strategy (the engine runs it
# column-wise over its bar blocks, qb-features bar by bar), so equal trades
# show that the strategy code path is one.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
FEAT="$BIN_DIR/qb-features"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
T=$(mktemp -d)
[ -n "${QB_TEST_KEEP:-}" ] && echo "tmp: $T" >&2
TAG="$$_$RANDOM"
DB="qbblp_$TAG"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  [ -n "${QB_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$T"/log "$T"/err; do [ -f "$f" ] && { echo "== $f" >&2; { grep -v '"level":"info"' "$f" || true; } | tail -8 >&2; }; done
  exit 1
}
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
ctl() { QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@"; }
ctl migrate >/dev/null || fail "migrate"

# ---- bars: 3 symbols x 700 daily bars (Yahoo CSV, Adj Close = Close) ----------
NB=700
SYMS=()
CSVS=()
for i in 1 2 3; do
  s="LP${i}X$RANDOM"; SYMS+=("$s")
  awk -v n=$NB -v i=$i -v seed=$((i * 104729)) 'BEGIN { srand(seed); p = 40 + 7 * i + seed % 60
    print "Date,Open,High,Low,Close,Adj Close,Volume"
    for (k = 0; k < n; k++) {
      t = 1420070400 + 86400 * k  # 2015-01-01 onward, every day
      o = p; p = p * (1 + (rand() - 0.5) * 0.05); if (p < 1) p = 1; c = p
      hi = (o > c ? o : c) * (1 + rand() * 0.01); lo = (o < c ? o : c) * (1 - rand() * 0.01)
      printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,%d\n", strftime("%Y-%m-%d", t, 1), o, hi, lo, c, c, 1000 + int(rand() * 90000)
    } }' >"$T/$s.csv"
  CSVS+=(--csv "$s=$T/$s.csv")
  ctl import --csv "$T/$s.csv" --symbol "$s" --no-publish >/dev/null 2>"$T/err" || fail "import $s"
done
IN=$(printf "'%s'," "${SYMS[@]}"); IN="(${IN%,})"
[ "$(q "SELECT count(*) FROM md.bars")" = $((3 * NB)) ] || fail "bars not stored (own database)"

# ---- the live path: qb-features over a replay onto md.bars --------------------
PARAMS='{"fast":5,"slow":20,"allow_short":true}'
PJSON='{\"fast\":5,\"slow\":20,\"allow_short\":true}'
SID="lp-$TAG"
J=$(printf '"%s",' "${SYMS[@]}"); J="[${J%,}]"
QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
  QB_FEATURES_GROUP="flp-$TAG" QB_FEATURES_RELOAD_MS=100 QB_LOG_LEVEL=info "$FEAT" >/dev/null 2>"$T/log" &
pid=$!
echo '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","account":"paper-lp","strategy":{"strategy_id":"'"$SID"'","strategy_name":"sma_cross","symbols":'"$J"',"timeframe":"1d","params_json":"'"$PJSON"'"}}' |
  "$QBCTL" produce control >"$T/err" 2>&1 || fail "qbctl produce control"
for _ in $(seq 1 300); do
  [ "$(q "SELECT count(*) FROM features.strategies WHERE strategy_id = '$SID'")" = 1 ] && break
  sleep 0.1
done
[ "$(q "SELECT count(*) FROM features.strategies WHERE strategy_id = '$SID'")" = 1 ] || fail "strategy not created"
sleep 1 # loaded by the engine (reload every 100 ms) before the bars flow
SYMLIST=$(IFS=,; echo "${SYMS[*]}")
ctl replay --symbols "$SYMLIST" --timeframe 1d --speed max >"$T/err" 2>&1 || fail "replay"
grep -q "replayed $((3 * NB)) bars of 3 symbols" "$T/err" || fail "replay count: $(cat "$T/err")"
nfeat() { q "SELECT count(*) FROM features.features WHERE symbol IN $IN"; }
for _ in $(seq 1 1200); do [ "$(nfeat)" -ge $((3 * NB)) ] && break; sleep 0.1; done
[ "$(nfeat)" = $((3 * NB)) ] || fail "qb-features stored $(nfeat) feature rows, want $((3 * NB))"
sleep 1.5 # the last flush of signals
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""

# The signals qb-features stored, as the backtest's signal file.
psql "$DSN" -qAtc "COPY (SELECT symbol,
    to_char(bar_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), direction,
    target_weight, trim_scale(stop_distance::numeric / 100000000),
    trim_scale(reference_price::numeric / 100000000)
  FROM features.signals WHERE strategy_id = '$SID' ORDER BY bar_ts, symbol) TO STDOUT WITH (FORMAT csv)" >"$T/sig.body"
{ echo "symbol,bar_ts,direction,target_weight,stop_distance,reference_price"; cat "$T/sig.body"; } >"$T/signals.csv"
nlive=$(wc -l <"$T/sig.body")
nshort=$(grep -c ',SHORT,' "$T/sig.body" || true)
[ "$nlive" -ge 30 ] || fail "qb-features stored only $nlive signals"
[ "$nshort" -ge 5 ] || fail "only $nshort SHORT signals: the test would not cover shorts"
for s in "${SYMS[@]}"; do grep -q "^$s," "$T/sig.body" || fail "no signal for $s"; done

# ---- the same bars through both paths of the engine ---------------------------
# trades + fills + final cash + final equity of a report, canonical JSON
pick() { jq -S '{trades: .trades, fills: .fills, final_cash: .final_cash,
  final_equity: .metrics.final_equity, trades_closed: .metrics.trades_closed}' "$1"; }
compare() { # label, backtest options...
  local label=$1; shift
  "$QBCTL" backtest "${CSVS[@]}" --timeframe 1d --strategy sma_cross --params "$PARAMS" "$@" \
    --json --report-json "$T/eng.json" >"$T/eng.out" 2>"$T/err" || fail "$label: engine backtest"
  "$QBCTL" backtest "${CSVS[@]}" --timeframe 1d --signals "$T/signals.csv" "$@" \
    --json --report-json "$T/live.json" >"$T/live.out" 2>"$T/err" || fail "$label: signals backtest"
  local ne nl
  ne=$(jq '.counts.signals' "$T/eng.out"); nl=$(jq '.counts.signals' "$T/live.out")
  [ "$ne" = "$nlive" ] || fail "$label: the engine's strategies emitted $ne signals, qb-features $nlive"
  [ "$nl" = "$nlive" ] || fail "$label: the signal path took $nl of $nlive signals"
  pick "$T/eng.json" >"$T/eng.pick"; pick "$T/live.json" >"$T/live.pick"
  local nt
  nt=$(jq '.trades | length' "$T/eng.pick")
  [ "$nt" -ge 20 ] || fail "$label: only $nt trades"
  jq -e '[.trades[] | select(.dir == -1 or .dir == "short")] | length > 0' "$T/eng.pick" >/dev/null ||
    fail "$label: no short trade"
  if ! cmp -s "$T/eng.pick" "$T/live.pick"; then
    diff "$T/eng.pick" "$T/live.pick" | head -20 >&2
    fail "$label: trades, fills or cash differ between the engine and the live path"
  fi
  jq -e '.final_cash != null and (.fills | length) > 0' "$T/eng.pick" >/dev/null || fail "$label: empty report"
  echo "  $label: $nlive signals, $nt trades, $(jq '.fills | length' "$T/eng.pick") fills, final cash $(jq -r .final_cash "$T/eng.pick"): identical"
}
compare "percent_equity, next open" --cash 100000 --sizing percent_equity --sizing-value 0.3 \
  --commission-pct 0.1 --slippage-bps 5 --fill next_open
compare "all_in, close" --cash 50000 --sizing all_in --commission-pct 0.05 --fill close

# A bad signal file is refused with its line.
printf 'symbol,bar_ts,direction\n%s,2015-01-05T00:00:00Z,UP\n' "${SYMS[0]}" >"$T/bad.csv"
set +e; "$QBCTL" backtest "${CSVS[@]}" --signals "$T/bad.csv" >"$T/out" 2>"$T/err"; rc=$?; set -e
[ $rc -ne 0 ] && grep -q "bad.csv:2: bad direction" "$T/err" || fail "bad signal file: rc $rc, $(cat "$T/err")"
echo "PASS test_bt_live_path"
