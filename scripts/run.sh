#!/usr/bin/env bash
# run.sh — `make run`: the whole platform on one machine, embedded.
#
# Starts qb-bus (embedded Kafka-protocol broker), a private PostgreSQL and
# Redis under $QB_RUN_DIR (default ./run), creates the `quantbus` database,
# applies the migrations (qbctl migrate), starts every service binary that
# has been built, prints where everything is, and on Ctrl-C (or SIGTERM)
# stops it all. Re-running reuses the PostgreSQL data under $QB_RUN_DIR;
# qb-bus is in-memory, so topics start empty each time.
#
# Replicas on one machine: SCALE_<SERVICE>=N (SCALE_FEATURES=3, SCALE_NOTIFY=2,
# SCALE_BACKTEST=..., named after qb-<service>; `make run SCALE_FEATURES=3`)
# starts N processes of that service in one consumer group, so the partition
# split is visible: replica k (from 2) has admin port base + 10*(k-1) (qb-features:
# 9102, 9112, 9122) and its own log; each one's /metrics shows the partitions it
# owns (qb_bus_assigned_partitions). Extra qb-api replicas listen on 8081, ...
# QB_RUN_PORT_OFFSET=N shifts every admin and gateway port by N (two platforms
# on one machine, tests).
#
# qb-api's secrets are made once and kept in $QB_RUN_DIR/secrets.env (mode
# 600): QB_API_JWT_SECRETS and QB_API_ADMIN_PASSWORD (user 'admin').
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
B=${B:-build}
RUN=${QB_RUN_DIR:-$ROOT/run}
mkdir -p "$RUN/logs"
RUN=$(cd "$RUN" && pwd)

# Services in start order with their admin ports. qb-bus and qbctl are not
# services; anything not built yet is skipped.
SERVICES="qb-data:9101 qb-features:9102 qb-risk:9103 qb-execution:9104 qb-backtest:9105 qb-notify:9106 qb-api:9107"

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping services ..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  B=$B tests/harness/stack.sh stop "$RUN"
  echo "stopped. Data kept in $RUN (delete it to start fresh)."
  exit 0
}
trap stop_all INT TERM EXIT

eval "$(B=$B tests/harness/stack.sh start "$RUN")" || { echo "run: stack did not start" >&2; exit 1; }
[ -n "${QB_KAFKA_BROKERS:-}" ] || { echo "run: qb-bus did not start (see $RUN/bus.log)" >&2; exit 1; }

# The platform's own database inside the private cluster.
psql "$QB_PG_DSN" -tAc "SELECT 1 FROM pg_database WHERE datname='quantbus'" | grep -q 1 ||
  psql "$QB_PG_DSN" -qc "CREATE DATABASE quantbus" || exit 1
export QB_PG_DSN="${QB_PG_DSN/dbname=postgres/dbname=quantbus}"
export QB_SQL_DIR="$ROOT/sql"
echo "QB_PG_DSN='$QB_PG_DSN'" >"$RUN/platform.env"
echo "QB_REDIS_URL='$QB_REDIS_URL'" >>"$RUN/platform.env"
echo "QB_KAFKA_BROKERS='$QB_KAFKA_BROKERS'" >>"$RUN/platform.env"

"$B/bin/qbctl" migrate || { echo "run: migrations failed" >&2; exit 1; }

# qb-api's secrets: made once, kept (a new JWT key would log everyone out).
SECRETS=$RUN/secrets.env
if [ ! -s "$SECRETS" ]; then
  rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  (umask 077
   { echo "QB_API_JWT_SECRETS='run1:$(rnd 32)'"
     echo "QB_API_ADMIN_PASSWORD='$(rnd 9)'"; } >"$SECRETS.tmp") && mv "$SECRETS.tmp" "$SECRETS"
fi
chmod 600 "$SECRETS"
set -a; . "$SECRETS"; set +a

OFF=${QB_RUN_PORT_OFFSET:-0}
case "$OFF" in ''|*[!0-9]*) echo "run: QB_RUN_PORT_OFFSET=$OFF: not a number" >&2; exit 1 ;; esac
API_PORT=$((8080 + OFF))
started=()
gateway=""
for entry in $SERVICES; do
  svc=${entry%%:*}; port=$((${entry##*:} + OFF))
  [ -x "$B/bin/$svc" ] || continue
  # SCALE_FEATURES for qb-features, ...
  var=SCALE_$(echo "${svc#qb-}" | tr 'a-z-' 'A-Z_')
  n=${!var:-1}
  case "$n" in ''|*[!0-9]*|0) echo "run: $var=$n: want a number >= 1" >&2; exit 1 ;; esac
  for k in $(seq 1 "$n"); do
    p=$((port + 10 * (k - 1)))
    log=$RUN/logs/$svc.log; [ "$k" -gt 1 ] && log=$RUN/logs/$svc-$k.log
    extra=()
    if [ "$svc" = qb-api ]; then
      extra=(QB_API_PORT=$((API_PORT + k - 1)))  # dashboard: ./web (its default)
      [ -n "$gateway" ] || gateway="http://127.0.0.1:$API_PORT/"
    fi
    env QB_ADMIN_PORT=$p "${extra[@]}" "$B/bin/$svc" >>"$log" 2>&1 </dev/null &
    pids+=($!)
    name=$svc; [ "$n" -gt 1 ] && name="$svc#$k"
    started+=("$name  admin http://127.0.0.1:$p/readyz  log $log")
  done
done

cat <<TXT

Quantbus is running (run dir: $RUN)
  Kafka (qb-bus)  $QB_KAFKA_BROKERS
  PostgreSQL      $QB_PG_DSN
  Redis           $QB_REDIS_URL
  environment     $RUN/platform.env  (source it to use qbctl: set -a; . $RUN/platform.env)
  services:
TXT
if [ ${#started[@]} -eq 0 ]; then echo "    (no service binaries built yet)"; fi
for s in "${started[@]}"; do echo "    $s"; done
if [ -n "$gateway" ]; then
  cat <<TXT
  gateway         $gateway  (login: admin / $QB_API_ADMIN_PASSWORD; secrets in $SECRETS)
TXT
fi
cat <<TXT
  try:  $B/bin/qbctl topics
        $B/bin/qbctl tail md.bars
Press Ctrl-C to stop everything.
TXT

# Wait for Ctrl-C; report a service that dies.
while true; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "run: ${started[$i]%% *} exited; see its log" >&2
      unset 'pids[i]'
    fi
  done
  sleep 1
done
