# lib.sh — shared set-up of the qb-api end-to-end tests (sourced, not run).
#
#   source "$ROOT/tests/e2e/api/lib.sh"
#   api_db_new            # a private database (migrated) -> $API_DSN
#   api_start [VAR=val ...]   # qb-api on free ports against $API_DSN
#                         # -> $API (base URL), $API_ADMIN (admin URL), $API_PID
#   api_service NAME [VAR=val ...]  # another service binary on $API_DSN -> pid in $SVC_PID
#   api_py SCRIPT [args]  # /usr/bin/python3 with tests/e2e/api on PYTHONPATH and
#                         # API, API_ADMIN, API_DSN, QB_* exported
# Everything started is killed, and the database dropped, at exit (api_cleanup
# runs from the EXIT trap this file installs).
# The admin user is 'admin' / $API_ADMIN_PW; PBKDF2 is cheap (1000 iterations)
# so tests can log in often; JWT keys are fixed test keys (k1 signs, k0 verifies).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
API_T=$(mktemp -d)
API_TAG="$$_$RANDOM"
API_ADMIN_PW="admin-pw-$RANDOM$RANDOM"
API_JWT="k1:test-secret-one-0123456789abcdef0123,k0:test-secret-zero-0123456789abcdef012"
API_PIDS=()
API_DB=""

api_cleanup() {
  for p in "${API_PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -n "$API_DB" ]; then
    psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $API_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$API_T"
}
trap api_cleanup EXIT

api_fail() { # the failure, the logs' own warnings and errors (the 12 newest logs; librdkafka's
  # connection noise left out), the failure again
  echo "FAIL: $*" >&2
  local f
  for f in $(ls -t "$API_T"/*.log 2>/dev/null | head -12); do
    echo "== $f" >&2
    grep -v '"level":"info"' "$f" | grep -v '"msg":"rdkafka \|"msg":"kafka error on ' | tail -15 >&2 || true
  done
  echo "FAIL: $*" >&2
  exit 1
}

api_db_new() {
  API_DB="qbapi_$API_TAG"
  psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $API_DB" >/dev/null
  API_DSN="$QB_PG_DSN dbname=$API_DB"
  QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" "$BIN_DIR/qbctl" migrate >/dev/null
  export API_DSN
}

# wait_log FILE REGEX SECONDS -> prints the first match
api_wait_log() {
  local f=$1 re=$2 s=$3 i m
  for i in $(seq 1 $((s * 10))); do
    m=$(grep -o -m1 -E "$re" "$f" 2>/dev/null || true)
    [ -n "$m" ] && { echo "$m"; return 0; }
    sleep 0.1
  done
  return 1
}

api_start() {
  local log="$API_T/qb-api.log"
  env QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" QB_API_PORT=0 QB_ADMIN_PORT=0 \
    QB_API_BIND=127.0.0.1 QB_ADMIN_BIND=127.0.0.1 \
    QB_API_ADMIN_PASSWORD="$API_ADMIN_PW" QB_API_PBKDF2_ITER=1000 \
    QB_API_JWT_SECRETS="$API_JWT" QB_API_STATIC_DIR="$ROOT/web" QB_LOG_LEVEL=info \
    "$@" "$BIN_DIR/qb-api" >"$log" 2>&1 &
  API_PID=$!
  API_PIDS+=("$API_PID")
  local url adm
  url=$(api_wait_log "$log" 'ready: http://[0-9.]+:[0-9]+' 30) || api_fail "qb-api did not start"
  API="http://${url#ready: http://}"
  adm=$(api_wait_log "$log" 'admin port [0-9]+' 5) || api_fail "qb-api: no admin port"
  API_ADMIN="http://127.0.0.1:${adm#admin port }"
  export API API_ADMIN API_PID
}

# api_service NAME [VAR=val ...]: start services/NAME on the test database
api_service() {
  local name=$1; shift
  local log="$API_T/$name.$RANDOM.log"
  env QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_LOG_LEVEL=info \
    "$@" "$BIN_DIR/$name" >"$log" 2>&1 &
  SVC_PID=$!
  API_PIDS+=("$SVC_PID")
  api_wait_log "$log" 'admin on 127.0.0.1:[0-9]+|ready' 30 >/dev/null || api_fail "$name did not start"
}

api_py() {
  PYTHONPATH="$ROOT/tests/e2e/api" API="$API" API_ADMIN="$API_ADMIN" API_DSN="$API_DSN" \
    API_ADMIN_PW="$API_ADMIN_PW" API_JWT="$API_JWT" QB_BIN_DIR="$BIN_DIR" QB_ROOT="$ROOT" \
    /usr/bin/python3 "$@"
}
