#!/usr/bin/env bash
# stack.sh — start and stop a private, real Quantbus stack for tests and for
# `make run`: PostgreSQL, Redis and qb-bus (the embedded Kafka-protocol
# broker), each under DIR, on free loopback ports.
#
#   stack.sh start DIR [--pg-port N --redis-port N --keep]
#       starts what is not already running under DIR, then prints shell
#       `export` lines (also written to DIR/env):
#       QB_PG_DSN, QB_REDIS_URL, QB_KAFKA_BROKERS, QB_STACK_DIR
#   stack.sh stop DIR      stops everything started under DIR
#   stack.sh status DIR    prints what runs
#
# Re-running start on the same DIR reuses its data (PostgreSQL cluster),
# which is what `make run` relies on. Tests use a fresh mktemp DIR.
# As root, PostgreSQL runs as the postgres user (it refuses root): initdb
# and pg_ctl go through runuser. Nothing here needs systemd.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${B:-build}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

die() { echo "stack.sh: $*" >&2; exit 1; }

free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || die "no free port found"
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() { # wait_for SECONDS CMD...
  local t=$1; shift
  for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

start_pg() {
  local dir=$1 port=$2
  [ -n "$PGBIN" ] || die "PostgreSQL server not installed (run make deps)"
  mkdir -p "$dir/pg"
  if [ "$(id -u)" -eq 0 ]; then
    chmod 755 "$dir"
    chown postgres:postgres "$dir/pg"
  fi
  if [ ! -f "$dir/pg/data/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
  fi
  if as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1; then
    port=$(sed -n 4p "$dir/pg/data/postmaster.pid" | tr -d ' ')
  else
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
      -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { tail -20 "$dir/pg/server.log" >&2; die "PostgreSQL did not start"; }
  fi
  echo "$port" >"$dir/pg.port"
}

start_redis() {
  local dir=$1 port=$2
  mkdir -p "$dir/redis"
  if [ -f "$dir/redis/redis.pid" ] && kill -0 "$(cat "$dir/redis/redis.pid")" 2>/dev/null; then
    return 0
  fi
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" \
    --dir "$dir/redis" || die "redis-server did not start"
  wait_for 10 redis-cli -p "$port" ping || die "Redis not answering on $port"
  echo "$port" >"$dir/redis.port"
}

start_bus() {
  local dir=$1
  local bin="$ROOT/$B/bin/qb-bus"
  [ -x "$bin" ] || { echo "stack.sh: $bin not built; no bus" >&2; return 0; }
  if [ -f "$dir/bus.pid" ] && kill -0 "$(cat "$dir/bus.pid")" 2>/dev/null; then return 0; fi
  rm -f "$dir/bus.bootstrap"
  QB_BUS_BOOTSTRAP_FILE="$dir/bus.bootstrap" QB_LOG_LEVEL=${QB_BUS_LOG_LEVEL:-warn} \
    setsid "$bin" >"$dir/bus.out" 2>"$dir/bus.log" </dev/null &
  echo $! >"$dir/bus.pid"
  wait_for 20 test -s "$dir/bus.bootstrap" || { cat "$dir/bus.log" >&2; die "qb-bus did not start"; }
}

cmd_start() {
  local dir=$1; shift
  local pgport="" rport=""
  while [ $# -gt 0 ]; do
    case $1 in
      --pg-port) pgport=$2; shift 2 ;;
      --redis-port) rport=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -n "$pgport" ] || pgport=$(cat "$dir/pg.port" 2>/dev/null || free_port)
  [ -n "$rport" ] || rport=$(cat "$dir/redis.port" 2>/dev/null || free_port)
  start_pg "$dir" "$pgport"
  start_redis "$dir" "$rport"
  start_bus "$dir"
  pgport=$(cat "$dir/pg.port")
  {
    echo "export QB_STACK_DIR='$dir'"
    echo "export QB_PG_DSN='host=127.0.0.1 port=$pgport user=postgres dbname=postgres'"
    echo "export QB_REDIS_URL='redis://127.0.0.1:$rport/0'"
    if [ -s "$dir/bus.bootstrap" ]; then echo "export QB_KAFKA_BROKERS='$(cat "$dir/bus.bootstrap")'"; fi
  } >"$dir/env"
  cat "$dir/env"
}

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/bus.pid" ]; then
    local pid; pid=$(cat "$dir/bus.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/bus.pid"
  fi
  if [ -f "$dir/redis/redis.pid" ]; then
    kill -TERM "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    rm -f "$dir/redis/redis.pid"
  fi
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

cmd_status() {
  local dir=$1
  [ -f "$dir/env" ] && cat "$dir/env"
  as_pg "$PGBIN/pg_ctl" -D "$dir/pg/data" status 2>/dev/null | head -1 || echo "postgres: stopped"
  [ -f "$dir/redis/redis.pid" ] && kill -0 "$(cat "$dir/redis/redis.pid")" 2>/dev/null && echo "redis: running" || echo "redis: stopped"
  [ -f "$dir/bus.pid" ] && kill -0 "$(cat "$dir/bus.pid")" 2>/dev/null && echo "qb-bus: running" || echo "qb-bus: stopped"
}

case ${1:-} in
  start) [ $# -ge 2 ] || die "usage: stack.sh start DIR"; shift; cmd_start "$@" ;;
  stop) [ $# -ge 2 ] || die "usage: stack.sh stop DIR"; cmd_stop "$2" ;;
  status) [ $# -ge 2 ] || die "usage: stack.sh status DIR"; cmd_status "$2" ;;
  *) die "usage: stack.sh start|stop|status DIR" ;;
esac
