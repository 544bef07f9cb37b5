# setup.sh — the shared set-up of the live-pipeline tests (sourced after
# tests/e2e/api/lib.sh by tests/e2e/test_pipeline_e2e.sh and
# tests/e2e/test_pipeline_chaos.sh).
#
#   PIPE_SYNTH=N PIPE_SYNTH_BARS=M   (defaults 24 / 400)
#   source "$ROOT/tests/e2e/pipeline/setup.sh"
#
# Does, on a private database (api_db_new) and private topics
# (QB_TOPIC_PREFIX):
#  - bars: the real Yahoo daily bars of ORCL, NVDA and YHOO (read from
#    $QB_ROOT/../shared/data, never copied; ~13.7k bars over 20 years) plus
#    PIPE_SYNTH generated random-walk symbols (PIPE_SYNTH_BARS each), loaded
#    with `qbctl import --no-publish`; exported in replay order (global time,
#    ties by symbol, as qbctl replay) to $T/bars.tsv and one CSV per symbol;
#  - the comparison backtest: `qbctl backtest` of sma_cross 10/40 long-short,
#    fixed quantity, with the paper simulator's settings (0.1%, at least 1 per
#    order commission, 5 bps slippage, next-open fills) -> $T/bt.json;
#  - one message on every topic the services read, so each exists before a
#    consumer starts.
# Leaves: T, QBCTL, SYMS, SYMLIST, NBARS, PARAMS, QTY, CASH, COMMISSION, SLIP,
# FILL, ctl(), q(), produce(), pipe_services_env() (the services' settings).
export QB_TOPIC_PREFIX="pipe${API_TAG}."
QBCTL="$BIN_DIR/qbctl"
T="$API_T"
NSYN=${PIPE_SYNTH:-24}
NSB=${PIPE_SYNTH_BARS:-400}
api_db_new
ctl() { QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" "$QBCTL" "$@"; }
q() { psql "$API_DSN" -qAtc "$1"; }

# ---- bars: real daily bars + synthetic symbols, stored (not published) ----------
DATA="$ROOT/../shared/data"
SYMS=()
for s in orcl nvda yhoo; do
  f=$(ls "$DATA/$s"-*.txt 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then echo "note: no $DATA/$s-*.txt: $s left out" >&2; continue; fi
  ctl import --csv "$f" --symbol "${s^^}" --no-publish >"$T/import.out" 2>&1 ||
    api_fail "import $f: $(cat "$T/import.out")"
  SYMS+=("${s^^}")
done
for i in $(seq 1 "$NSYN"); do
  s=$(printf 'SYN%03d' "$i"); [ "$NSYN" -lt 100 ] && s=$(printf 'SYN%02d' "$i"); SYMS+=("$s")
  awk -v n="$NSB" -v i="$i" -v seed=$((i * 7919)) 'BEGIN { srand(seed); p = 20 + (seed % 97)
    print "Date,Open,High,Low,Close,Adj Close,Volume"
    t0 = 1370044800 + 86400 * (i % 7)  # 2013-06-01 + a few days: not all aligned
    for (k = 0; k < n; k++) {
      o = p * (1 + (rand() - 0.5) * 0.01); p = o * (1 + (rand() - 0.5) * 0.06)
      if (p < 5) p = 5; if (o < 5) o = 5
      hi = (o > p ? o : p) * (1 + rand() * 0.01); lo = (o < p ? o : p) * (1 - rand() * 0.01)
      printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,%d\n", strftime("%Y-%m-%d", t0 + 86400 * k, 1),
        o, hi, lo, p, p, 1000 + int(rand() * 90000)
    } }' >"$T/$s.src.csv"
  ctl import --csv "$T/$s.src.csv" --symbol "$s" --no-publish >"$T/import.out" 2>&1 ||
    api_fail "import $s: $(cat "$T/import.out")"
  rm -f "$T/$s.src.csv"
done
[ ${#SYMS[@]} -ge 20 ] || api_fail "only ${#SYMS[@]} symbols"
SYMLIST=$(IFS=,; echo "${SYMS[*]}")
IN=$(printf "'%s'," "${SYMS[@]}"); IN="(${IN%,})"
NBARS=$(q "SELECT count(*) FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol IN $IN AND b.timeframe = '1d'")
[ "$NBARS" -ge $((NSYN * NSB)) ] || api_fail "only $NBARS bars stored"

# The bars as stored: the replay's input (global time order, ties by symbol, as
# qbctl replay) and one CSV per symbol for the backtest (Adj Close = Close).
psql "$API_DSN" -qAtc "COPY (SELECT a.symbol, (extract(epoch FROM b.ts) * 1e9)::bigint, b.open, b.high,
    b.low, b.close, b.volume FROM md.bars b JOIN md.assets a USING (asset_id)
  WHERE a.symbol IN $IN AND b.timeframe = '1d' ORDER BY b.ts, a.symbol) TO STDOUT" >"$T/bars.tsv"
CSVS=()
for s in "${SYMS[@]}"; do
  { echo "Date,Open,High,Low,Close,Adj Close,Volume"
    psql "$API_DSN" -qAt -F, -c "SELECT to_char(b.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
        trim_scale(b.open / 1e8), trim_scale(b.high / 1e8), trim_scale(b.low / 1e8),
        trim_scale(b.close / 1e8), trim_scale(b.close / 1e8), trim_scale(b.volume / 1e8)
      FROM md.bars b JOIN md.assets a USING (asset_id)
      WHERE a.symbol = '$s' AND b.timeframe = '1d' ORDER BY b.ts"; } >"$T/$s.csv"
  CSVS+=(--csv "$s=$T/$s.csv")
done

# ---- the backtest: same strategy, same bars, the simulator's settings ----------
PARAMS='{"fast":10,"slow":40,"allow_short":true}'
QTY=100
# 1,000,000 per 50 symbols: enough that no order is refused for margin. At the margin edge
# the live paper account and the backtest can refuse differently (the equity an order is
# checked against depends on which symbols' bars of the same time step were marked first);
# the long chaos mode's 248 symbols on 1,000,000 had 7,243 such refusals in the backtest.
CASH=$((1000000 * ((${#SYMS[@]} + 49) / 50)))
COMMISSION=percent:0.1:1  # 0.1%, at least 1 per order
SLIP=5
FILL=next_open
"$QBCTL" backtest "${CSVS[@]}" --timeframe 1d --strategy sma_cross --params "$PARAMS" \
  --cash "$CASH" --sizing fixed_qty --sizing-value "$QTY" --commission "$COMMISSION" \
  --slippage-bps "$SLIP" --fill "$FILL" --json --report-json "$T/bt.json" >"$T/bt.out" 2>"$T/bt.err" ||
  api_fail "qbctl backtest: $(cat "$T/bt.err")"
for s in "${SYMS[@]}"; do rm -f "$T/$s.csv"; done

# ---- every topic exists before the consumers start ------------------------------
produce() { echo "$2" | "$QBCTL" produce "$1" >"$T/produce.out" 2>&1 || api_fail "produce $1: $(cat "$T/produce.out")"; }
produce control '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"nobody","kind":"COMMAND_KIND_RELOAD","issued_by":"test"}'
produce md.bars '{"symbol":"WARM","timeframe":"1d","ts":"1600000000000000000","open":"100000000","high":"100000000","low":"100000000","close":"100000000","volume":"1"}'
produce risk.events '{"account":"nobody","kind":"RISK_EVENT_KIND_LIMIT_WARNING","message":"warm-up"}'
produce signals '{"signal_id":"warm","account":"nobody","strategy_id":"warm","symbol":"WARM","timeframe":"1d","direction":"SIGNAL_DIRECTION_FLAT","bar_ts":"1600000000000000000"}'
produce exec.reports '{"account":"nobody"}'
produce orders '{"order_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","account":"nobody","symbol":"WARM","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","limit_price":"1000000","mode":"TRADING_MODE_PAPER"}'
produce features '{"symbol":"WARM","timeframe":"1d"}'
produce backtest.events '{"run_id":"warm"}'
produce orders.intents '{"intent_id":"warm-'"$API_TAG"'","account":"warm-'"$API_TAG"'","symbol":"WARM","side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","limit_price":"100000000"}'

# pipe_services_env NAME: the settings the pipeline tests run service NAME with
# (one VAR=val a line; the chaos test restarts services with the same ones)
pipe_services_env() {
  case $1 in
    qb-data) echo QB_DATA_TICK_MS=1000 ;;
    qb-features) printf '%s\n' QB_FEATURES_GROUP="pf-$API_TAG" QB_FEATURES_RELOAD_MS=100 \
      QB_FEATURES_FLUSH_MS=20 ;;
    qb-risk) printf '%s\n' QB_RISK_GROUP="pr-$API_TAG" QB_RISK_RELOAD_MS=100 QB_RISK_SNAPSHOT_S=0 \
      QB_RISK_INITIAL_CASH="$CASH" ;;
    qb-execution) printf '%s\n' QB_EXEC_GROUP="pe-$API_TAG" QB_EXEC_PAPER_CASH="$CASH" \
      QB_EXEC_PAPER_COMMISSION="$COMMISSION" QB_EXEC_PAPER_SLIPPAGE_BPS="$SLIP" \
      QB_EXEC_PAPER_FILL="$FILL" QB_EXEC_PUBLISH_MS=20 ;;
    qb-notify) printf '%s\n' QB_NOTIFY_GROUP="pn-$API_TAG" QB_NOTIFY_FLUSH_MS=20 \
      QB_NOTIFY_RELOAD_MS=100 QB_NOTIFY_POLL_MS=50 QB_NOTIFY_WARMUP=false ;;
  esac
}
PIPE_SERVICES=(qb-data qb-features qb-risk qb-execution qb-notify)
