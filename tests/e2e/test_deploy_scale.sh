#!/usr/bin/env bash
# test_deploy_scale.sh — scaling on one machine: `make run SCALE_FEATURES=3`
# (scripts/run.sh) runs three qb-features replicas in one consumer group on
# the embedded stack (qb-bus, PostgreSQL, Redis under a run dir).
# Asserted:
#  - run.sh prints three qb-features replicas (own admin ports and logs), the
#    gateway URL and admin login when qb-api is built, and keeps qb-api's
#    secrets in run/secrets.env with mode 600;
#  - the replicas split md.bars' partitions, as their /metrics show
#    (qb_bus_assigned_partitions{group="qb-features",topic="md.bars"}): every
#    partition owned by exactly one replica, every replica owns some;
#  - 12 symbols x 500 bars published on md.bars: at least two replicas
#    computed bars (qb_features_bars_total), and the features and signals
#    tables equal those of ONE qb-features (own database, own group, same
#    bars and strategy) row for row (md5 of ordered dumps, as in
#    test_qb_features.sh).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
QBCTL="$BIN_DIR/qbctl"
RUN=$(mktemp -d /tmp/qb-scale-test.XXXXXX)
T=$RUN/t; mkdir -p "$T"
TAG="$$_$RANDOM"
OFF=$((12000 + RANDOM % 20000))
runpid=""; refpid=""
cleanup() {
  [ -n "$refpid" ] && kill -KILL "$refpid" 2>/dev/null || true
  if [ -n "$runpid" ]; then
    kill -TERM "$runpid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
  fi
  B=$B "$ROOT/tests/harness/stack.sh" stop "$RUN" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2; echo "--- run output:" >&2; cat "$RUN/out" >&2 2>/dev/null || true
  for f in "$RUN"/logs/qb-features*.log "$T/ref.log"; do
    [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -5 >&2; }
  done
  exit 1
}

(cd "$ROOT" && SCALE_FEATURES=3 QB_RUN_PORT_OFFSET=$OFF QB_RUN_DIR="$RUN" B=$B exec setsid scripts/run.sh >"$RUN/out" 2>&1) &
runpid=$!
for _ in $(seq 1 600); do
  grep -q "Press Ctrl-C" "$RUN/out" 2>/dev/null && break
  kill -0 "$runpid" 2>/dev/null || fail "run.sh exited early"
  sleep 0.1
done
grep -q "Press Ctrl-C" "$RUN/out" || fail "run.sh did not come up in 60 s"
ports=()
for k in 1 2 3; do
  p=$((9102 + OFF + 10 * (k - 1)))
  grep -q "qb-features#$k  admin http://127.0.0.1:$p/readyz" "$RUN/out" || fail "replica $k (admin $p) not listed"
  ports+=("$p")
done
[ "$(stat -c %a "$RUN/secrets.env")" = 600 ] || fail "secrets.env mode $(stat -c %a "$RUN/secrets.env")"
grep -q "^QB_API_JWT_SECRETS='run1:[0-9a-f]\{64\}'$" "$RUN/secrets.env" || fail "no JWT secret in secrets.env"
grep -q "^QB_API_ADMIN_PASSWORD='[0-9a-f]\{18\}'$" "$RUN/secrets.env" || fail "no admin password in secrets.env"
if [ -x "$BIN_DIR/qb-api" ]; then
  pw=$(sed -n "s/^QB_API_ADMIN_PASSWORD='\(.*\)'$/\1/p" "$RUN/secrets.env")
  grep -qF "gateway         http://127.0.0.1:$((8080 + OFF))/  (login: admin / $pw;" "$RUN/out" ||
    fail "gateway URL and admin login not printed"
fi
set -a; . "$RUN/platform.env"; set +a
NPART=$("$QBCTL" topics | awk '$1 == "md.bars" { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit } }')
[ -n "$NPART" ] && [ "$NPART" -ge 3 ] || fail "md.bars partitions: '$NPART'"

# The split, from the replicas' /metrics.
owned() { # port -> partitions of md.bars this replica owns, one per line
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    grep '^qb_bus_assigned_partitions{group="qb-features",topic="md.bars",' |
    awk '$2 == 1' | sed 's/.*partition="\([0-9]*\)".*/\1/' | sort -n || true
}
split_ok() {
  local all="" k
  for k in 0 1 2; do
    owned "${ports[$k]}" >"$T/own.$k"
    [ -s "$T/own.$k" ] || return 1
    all="$all $(cat "$T/own.$k")"
  done
  [ "$(echo $all | tr ' ' '\n' | sort -n | uniq | wc -l)" = "$NPART" ] &&
    [ "$(echo $all | wc -w)" = "$NPART" ]
}
for _ in $(seq 1 600); do split_ok && break; sleep 0.1; done
split_ok || fail "partitions not split over the 3 replicas: $(for k in 0 1 2; do echo -n "[$(cat "$T/own.$k" | tr '\n' ' ')] "; done)"
echo "split: $(for k in 0 1 2; do echo -n "replica$((k + 1))=[$(tr '\n' ' ' <"$T/own.$k" | sed 's/ $//')] "; done)"

# The reference: one qb-features, own database and group, same bars.
REFDB=qbscale_ref_$TAG
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $REFDB" >/dev/null
REF="$QB_PG_DSN"; REF="${REF/dbname=quantbus/dbname=$REFDB}"
QB_PG_DSN="$REF" QB_SQL_DIR="$ROOT/sql" "$QBCTL" migrate >/dev/null || fail "migrate ref"
QB_PG_DSN="$REF" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 QB_LOG_LEVEL=info \
  QB_FEATURES_GROUP="ref-$TAG" QB_FEATURES_RELOAD_MS=100 "$BIN_DIR/qb-features" >/dev/null 2>"$T/ref.log" &
refpid=$!

NB=500; SYMS=()
for i in $(seq 1 12); do
  s="SC${i}X$RANDOM"; SYMS+=("$s")
  awk -v n=$NB -v seed=$((i * 104729)) 'BEGIN { srand(seed); p = 20 + seed % 80
    print "Date,Open,High,Low,Close,Adj Close,Volume"
    for (k = 0; k < n; k++) {
      t = 1262563200 + 86400 * k
      o = p; p = p * (1 + (rand() - 0.5) * 0.04); if (p < 1) p = 1; c = p
      hi = (o > c ? o : c) * (1 + rand() * 0.01); lo = (o < c ? o : c) * (1 - rand() * 0.01)
      printf "%s,%.2f,%.2f,%.2f,%.2f,%.2f,%d\n", strftime("%Y-%m-%d", t, 1), o, hi, lo, c, c, 1000 + int(rand() * 9000)
    } }' >"$T/$s.csv"
done
IN=$(printf "'%s'," "${SYMS[@]}"); IN="(${IN%,})"
J=$(printf '"%s",' "${SYMS[@]}"); J="[${J%,}]"
SID="scale-$TAG"
echo '{"command_id":"'"$(cat /proc/sys/kernel/random/uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","account":"paper-1","strategy":{"strategy_id":"'"$SID"'","strategy_name":"sma_cross","symbols":'"$J"',"timeframe":"1d","params_json":"{\"fast\":5,\"slow\":20,\"allow_short\":true}"}}' |
  "$QBCTL" produce control >/dev/null 2>&1 || fail "produce the strategy command"
q() { psql "$1" -qAtc "$2"; }
for d in "$QB_PG_DSN" "$REF"; do
  for _ in $(seq 1 300); do [ "$(q "$d" "SELECT count(*) FROM features.strategies WHERE strategy_id = '$SID'")" = 1 ] && break; sleep 0.1; done
  [ "$(q "$d" "SELECT count(*) FROM features.strategies WHERE strategy_id = '$SID'")" = 1 ] || fail "strategy not created in ${d##* }"
done
sleep 1.5 # every replica reloads its strategies (QB_FEATURES_RELOAD_MS, 1 s by default)

for s in "${SYMS[@]}"; do
  QB_PG_DSN="$REF" "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" --no-publish >/dev/null || fail "import $s (ref)"
done
for s in "${SYMS[@]}"; do
  "$QBCTL" import --csv "$T/$s.csv" --symbol "$s" >/dev/null || fail "import + publish $s"
done
TOTAL=$((12 * NB))
nfeat() { q "$1" "SELECT count(*) FROM features.features WHERE symbol IN $IN"; }
for d in "$QB_PG_DSN" "$REF"; do
  for _ in $(seq 1 1800); do [ "$(nfeat "$d")" -ge $TOTAL ] && break; sleep 0.1; done
  [ "$(nfeat "$d")" = $TOTAL ] || fail "${d##* } has $(nfeat "$d") feature rows, want $TOTAL"
done
sleep 1 # the last flush of signals and states
FD="SELECT symbol, timeframe, ts, vals, history_bars FROM features.features WHERE symbol IN $IN ORDER BY 1, 2, 3"
SD="SELECT signal_id, strategy_id, account, symbol, bar_ts, direction, confidence, target_weight, stop_distance, reference_price, reason FROM features.signals WHERE symbol IN $IN ORDER BY bar_ts, signal_id"
dump() { psql "$1" -qAtc "COPY ($2) TO STDOUT" | md5sum; }
nsig=$(q "$REF" "SELECT count(*) FROM features.signals WHERE strategy_id = '$SID'")
[ "$nsig" -gt 20 ] || fail "too few signals in the reference: $nsig"
[ "$(dump "$QB_PG_DSN" "$FD")" = "$(dump "$REF" "$FD")" ] || fail "3 replicas' features differ from one replica's"
[ "$(dump "$QB_PG_DSN" "$SD")" = "$(dump "$REF" "$SD")" ] || fail "3 replicas' signals differ from one replica's"
busy=0; counts=""
for k in 0 1 2; do
  curl -fsS "http://127.0.0.1:${ports[$k]}/metrics" >"$T/m.$k" || fail "replica $((k + 1)) /metrics"
  n=$(awk '/^qb_features_bars_total/ { print $2; exit }' "$T/m.$k")
  counts="$counts ${n:-0}"
  [ "${n:-0}" != 0 ] && busy=$((busy + 1))
done
[ "$busy" -ge 2 ] || fail "only $busy replica(s) computed bars (bars per replica:$counts)"
split_ok || fail "the split changed while working"
kill -KILL "$refpid" 2>/dev/null || true; wait "$refpid" 2>/dev/null || true; refpid=""
psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $REFDB WITH (FORCE)" >/dev/null 2>&1 || true
echo "scale: 3 replicas split $NPART partitions, bars per replica:$counts; $TOTAL features + $nsig signals == one replica's"
