#!/usr/bin/env bash
# test_qb_features.sh — qb-features on the harness PostgreSQL, Redis and bus.
#
# Three independent deployments (own database, own consumer group) see the
# same md.bars: A runs uninterrupted; B is killed with SIGKILL mid-stream
# and restarted; C is two replicas in one group. The same strategies are
# created in each through STRATEGY_SET_PARAMS on `control` (sma_cross
# long-short on 6 symbols for paper-1, rsi_reversion on 3 for paper-2, and
# a bad one that is dead-lettered). 6 symbols x 1200 daily bars are stored
# in all three databases, then published.
# Asserted:
#  - A: a FeatureSet row per bar of every symbol; signals exist for both
#    strategies; the latest feature set is in Redis with a TTL; the bad
#    command is on control.dlq with the strategy's own message;
#  - B (killed once past 1.5 symbols' bars, restarted): features and
#    signals tables equal A's row for row (md5 of ordered dumps: values,
#    history_bars, directions, confidences, reasons, ids); no signal id
#    twice (primary key) and none missing;
#  - C (2 replicas): both got partitions (both logged a warm-up), tables
#    equal A's;
#  - every signal id of A is on the signals topic;
#  - STRATEGY_DISABLE stops the instance at its series' next bar; ENABLE of
#    an unknown strategy is dead-lettered;
#  - /metrics passes promtool; SIGTERM exits 0.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-features"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
T=$(mktemp -d)
TAG="$$_$RANDOM"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for d in A B C; do psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS qbfeat_${d,,}_$TAG WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
for d in A B C; do psql "$QB_PG_DSN" -qAtc "CREATE DATABASE qbfeat_${d,,}_$TAG" >/dev/null; done
dsn() { echo "$QB_PG_DSN dbname=qbfeat_${1,,}_$TAG"; }
q() { psql "$(dsn "$1")" -qAtc "$2"; }
for d in A B C; do QB_PG_DSN="$(dsn $d)" QB_SQL_DIR="$ROOT/sql" "$QBCTL" migrate >/dev/null; done

# Bars: 6 symbols, 1200 daily random-walk bars each (Yahoo CSV).
NB=1200
SYMS=()
for i in 1 2 3 4 5 6; do
  s="FE${i}X$RANDOM"; SYMS+=("$s")
  awk -v n=$NB -v seed=$((i * 7919)) 'BEGIN { srand(seed); p = 50 + 10 * seed % 50
    print "Date,Open,High,Low,Close,Adj Close,Volume"
    for (k = 0; k < n; k++) {
      t = 1262563200 + 86400 * k  # 2010-01-04 onward, every day
      o = p; p = p * (1 + (rand() - 0.5) * 0.04); if (p < 1) p = 1; c = p
      hi = (o > c ? o : c) * (1 + rand() * 0.01); lo = (o < c ? o : c) * (1 - rand() * 0.01)
      printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,%d\n", strftime("%Y-%m-%d", t, 1), o, hi, lo, c, c, 1000 + int(rand() * 9000)
    } }' >"$T/$s.csv"
done
IN=$(printf "'%s'," "${SYMS[@]}"); IN="(${IN%,})"

uuid() { cat /proc/sys/kernel/random/uuid; }
produce() { echo "$1" | "$QBCTL" produce control >"$T/pout" 2>&1 || fail "qbctl produce: $(cat "$T/pout")"; }
J=$(printf '"%s",' "${SYMS[@]}"); J="[${J%,}]"
J3=$(printf '"%s",' "${SYMS[@]:0:3}"); J3="[${J3%,}]"
SID1="sma-$TAG"; SID2="rsi-$TAG"
produce '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","account":"paper-1","strategy":{"strategy_id":"'"$SID1"'","strategy_name":"sma_cross","symbols":'"$J"',"timeframe":"1d","params_json":"{\"fast\":10,\"slow\":30,\"allow_short\":true}"}}'
produce '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","account":"paper-2","strategy":{"strategy_id":"'"$SID2"'","strategy_name":"rsi_reversion","symbols":'"$J3"',"timeframe":"1d","params_json":"{\"period\":14}"}}'
BAD="bad-$TAG"
produce '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","strategy":{"strategy_id":"'"$BAD"'","strategy_name":"sma_cross","symbols":'"$J"',"timeframe":"1d","params_json":"{\"fast\":0}"}}'

start() { # deployment logfile group -> pid in $started (admin on any free port)
  QB_PG_DSN="$(dsn "$1")" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 \
    QB_FEATURES_GROUP="$3" QB_FEATURES_RELOAD_MS=100 QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$2" &
  started=$!; pids+=("$started")
}
admin_port() { grep -o 'admin on 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2; }
wait_strategies() { # deployment
  for _ in $(seq 1 300); do [ "$(q "$1" "SELECT count(*) FROM features.strategies WHERE strategy_id IN ('$SID1', '$SID2')")" = 2 ] && return; sleep 0.1; done
  fail "strategies not created in $1: $(q "$1" "SELECT strategy_id FROM features.strategies")"
}
start A "$T/logA" "fa-$TAG"; PA=$started
start B "$T/logB" "fb-$TAG"; PB=$started
start C "$T/logC1" "fc-$TAG"; PC1=$started
start C "$T/logC2" "fc-$TAG"; PC2=$started
for d in A B C; do wait_strategies $d; done
# Wait for the strategies to be loaded (reload every 100 ms) before bars flow.
sleep 1

# Store in B and C (no publish), then store + publish through A's database,
# symbol after symbol in the background while B is killed.
for s in "${SYMS[@]}"; do
  for d in B C; do QB_PG_DSN="$(dsn $d)" "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" --no-publish >/dev/null || fail "import $s into $d"; done
done
# A pause after each symbol keeps the stream going long enough to kill B in
# its middle (an import of 1,200 bars takes milliseconds).
( for s in "${SYMS[@]}"; do
    QB_PG_DSN="$(dsn A)" "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" >/dev/null || exit 1
    sleep 0.7
  done ) &
imp=$!
TOTAL=$((6 * NB))
nfeat() { q "$1" "SELECT count(*) FROM features.features WHERE symbol IN $IN"; }

# Kill B in the middle of the stream: past one and a half symbols.
for _ in $(seq 1 2400); do [ "$(nfeat B)" -ge $((NB + NB / 2)) ] && break; sleep 0.02; done
nb=$(nfeat B); [ "$nb" -ge $((NB + NB / 2)) ] || fail "B never got going ($nb)"
kill -KILL "$PB"; wait "$PB" 2>/dev/null || true
killed_at=$(nfeat B)
[ "$killed_at" -lt "$TOTAL" ] || fail "B had finished before the kill"
start B "$T/logB2" "fb-$TAG"; PB=$started
wait "$imp" || fail "publishing import failed"

for d in A B C; do
  for _ in $(seq 1 1800); do [ "$(nfeat $d)" -ge $TOTAL ] && break; sleep 0.1; done
  [ "$(nfeat $d)" = $TOTAL ] || fail "$d has $(nfeat $d) feature rows, want $TOTAL"
done
sleep 1 # the last flush of signals and states
FD="SELECT symbol, timeframe, ts, vals, history_bars FROM features.features WHERE symbol IN $IN ORDER BY 1, 2, 3"
SD="SELECT signal_id, strategy_id, account, symbol, bar_ts, direction, confidence, target_weight, stop_distance, reference_price, reason FROM features.signals WHERE symbol IN $IN ORDER BY bar_ts, signal_id"
dump() { psql "$(dsn "$1")" -qAtc "COPY ($2) TO STDOUT" | md5sum; }
n1=$(q A "SELECT count(*) FROM features.signals WHERE strategy_id = '$SID1'")
n2=$(q A "SELECT count(*) FROM features.signals WHERE strategy_id = '$SID2'")
[ "$n1" -gt 10 ] && [ "$n2" -gt 0 ] || fail "too few signals in A: sma $n1, rsi $n2"
[ "$(dump A "$FD")" = "$(dump B "$FD")" ] || fail "B's features differ from A's after kill -9 + restart"
[ "$(dump A "$SD")" = "$(dump B "$SD")" ] || fail "B's signals differ from A's: $(q A "SELECT count(*) FROM features.signals") vs $(q B "SELECT count(*) FROM features.signals")"
[ "$(dump A "$FD")" = "$(dump C "$FD")" ] || fail "two replicas' features differ from one's"
[ "$(dump A "$SD")" = "$(dump C "$SD")" ] || fail "two replicas' signals differ from one's"
grep -q '"msg":"series .* warmed up' "$T/logC1" && grep -q '"msg":"series .* warmed up' "$T/logC2" ||
  fail "both replicas of C should have owned some series"
grep -q "saved state\|starts flat" "$T/logB2" && fail "B's restart could not restore a saved state"

# Redis: latest feature set with a TTL.
key="qb:features:${SYMS[0]}:1d"
ttl=$(redis-cli -u "$QB_REDIS_URL" TTL "$key")
[ "$ttl" -gt 0 ] && [ "$ttl" -le 600 ] || fail "redis $key TTL $ttl"
redis-cli -u "$QB_REDIS_URL" GET "$key" | grep -q '"rsi:14":' || fail "redis $key has no rsi:14"

# The bad command was dead-lettered with the strategy's message.
timeout 60 "$QBCTL" tail control.dlq --from-beginning --timeout-ms 3000 --meta 2>/dev/null >"$T/dlq" || true
grep -q "$BAD" "$T/dlq" || fail "bad strategy command not on control.dlq"
grep -q 'fast: must be an integer >= 1' "$T/dlq" || fail "DLQ reason lacks the parameter message"

# Every signal id of A is on the topic.
timeout 120 "$QBCTL" tail signals --from-beginning --timeout-ms 3000 2>/dev/null >"$T/sig" || true
q A "SELECT signal_id FROM features.signals WHERE symbol IN $IN" | sort -u >"$T/want"
grep -o '"signal_id":"[^"]*"' "$T/sig" | cut -d'"' -f4 | sort -u >"$T/have"
missing=$(comm -23 "$T/want" "$T/have" | wc -l)
[ "$missing" = 0 ] || fail "$missing signal ids of A are not on the signals topic"

# DISABLE stops an instance at its series' next bar; ENABLE of an unknown id
# is dead-lettered.
produce '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_DISABLE","issued_by":"test","strategy":{"strategy_id":"'"$SID2"'"}}'
produce '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_ENABLE","issued_by":"test","strategy":{"strategy_id":"nosuch-'"$TAG"'"}}'
for _ in $(seq 1 300); do [ "$(q A "SELECT enabled FROM features.strategies WHERE strategy_id = '$SID2'")" = f ] && break; sleep 0.1; done
[ "$(q A "SELECT enabled FROM features.strategies WHERE strategy_id = '$SID2'")" = f ] || fail "DISABLE not applied"
sleep 0.5 # reloaded (every 100 ms)
echo '{"symbol":"'"${SYMS[0]}"'","timeframe":"1d","ts":"1900000000000000000","open":"5000000000","high":"5100000000","low":"4900000000","close":"5000000000","volume":"100000000000"}' |
  "$QBCTL" produce md.bars >/dev/null 2>&1 || fail "produce one more bar"
for _ in $(seq 1 100); do grep -q "strategy $SID2 on ${SYMS[0]} 1d: stopped" "$T/logA" && break; sleep 0.1; done
grep -q "strategy $SID2 on ${SYMS[0]} 1d: stopped" "$T/logA" || fail "disabled strategy not stopped at the next bar"
for _ in $(seq 1 100); do grep -q "no strategy 'nosuch-$TAG'" "$T/logA" && break; sleep 0.1; done
grep -q "no strategy 'nosuch-$TAG'.*dead-lettered" "$T/logA" || fail "ENABLE of an unknown strategy not dead-lettered"

port=$(admin_port "$T/logA")
[ -n "$port" ] || fail "no admin port in A's log"
curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics" || fail "/metrics"
promtool check metrics <"$T/metrics" || fail "promtool rejects /metrics"
for p in $PA $PB $PC1 $PC2; do kill -TERM "$p"; done
for p in $PA $PB $PC1 $PC2; do wait "$p" || fail "exit $? after SIGTERM"; done
pids=()
echo "qb-features: $TOTAL bars -> features + $n1 + $n2 signals; kill -9 at $killed_at rows + restart == uninterrupted; 2 replicas == 1; DLQ, Redis TTL, promtool ok"
