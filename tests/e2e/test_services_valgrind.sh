#!/usr/bin/env bash
# test_services_valgrind.sh — each long-running service under valgrind for a
# start -> work -> SIGTERM cycle on the harness stack: exit 0, no errors, no
# definite/indirect/possible leaks.
#   qb-data:     migrates its database, runs a synthetic ingest job (control
#                command), publishes, stops;
#   qb-features: migrates, takes a strategy command, warms up and computes
#                features and signals for 300 fresh bars, flushes, stops.
#   qb-risk:     migrates, takes SET_LIMITS, decides a signal (an order), a
#                limit-breaking intent (a rejection), books a fill, marks it
#                with a bar, takes a RISK_SNAPSHOT, a KILL_SWITCH and a
#                RESUME, flushes, stops.
#   qb-backtest: migrates, runs a one-run backtest and a walk-forward split
#                into parts (loader threads, parts through the topic,
#                aggregation), stops.
#   qb-execution: migrates, takes the leader lock, reconciles, places a
#                paper order filled by a bar, a limit order canceled by a
#                KILL_SWITCH_ON risk event, a STRATEGY_SET_MODE command, stops.
#   qb-api:      migrates, creates the admin, login, an API key, allowed and
#                refused requests, OpenAPI, a stream that gets a bar, stops.
# Uses the non-sanitizer build (ASan and valgrind do not mix).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
MAKEFLAGS= MAKELEVEL= make -C "$ROOT" -s all SAN=0 >/dev/null
BIN="$ROOT/build/bin"
T=$(mktemp -d)
DB="qbvg_$$_$RANDOM"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || fail "no free port"
}
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
VG="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
uuid() { cat /proc/sys/kernel/random/uuid; }

run_vg() { # name port -> starts $name under valgrind, waits for /readyz
  local name=$1 port=$2
  QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=$port QB_ADMIN_BIND=127.0.0.1 \
    QB_KAFKA_AUTO_OFFSET_RESET=latest QB_FEATURES_GROUP="vg-$$-$RANDOM" QB_DATA_TICK_MS=200 \
    QB_RISK_GROUP="vg-$$-$RANDOM" \
    QB_LOG_LEVEL=warn $VG "$BIN/$name" >/dev/null 2>"$T/vg-$name" &
  pid=$!
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || { tail -30 "$T/vg-$name" >&2; fail "$name under valgrind exited early"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ] && return
    sleep 0.1
  done
  fail "$name under valgrind never ready"
}
stop_vg() { # name
  kill -TERM "$pid"
  set +e; wait "$pid"; local rc=$?; set -e; pid=""
  [ $rc -eq 0 ] || { tail -40 "$T/vg-$1" >&2; fail "valgrind: $1 exit $rc (99 = errors or leaks)"; }
  grep -q "ERROR SUMMARY: 0 errors" "$T/vg-$1" || { tail -40 "$T/vg-$1" >&2; fail "valgrind errors in $1"; }
  echo "$1 under valgrind: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$T/vg-$1"), $(grep -o 'definitely lost: [0-9,]* bytes' "$T/vg-$1" || echo 'no leaks')"
}

# qb-data: an ingest job through the control topic.
run_vg qb-data "$(free_port)"
SYM="VG$RANDOM"
sleep 2 # the control consumer joins its group (latest: commands sent after it)
echo '{"command_id":"'"$(uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_UPSERT","issued_by":"test","ingest_job":{"name":"vg-'"$SYM"'","source":"synthetic","symbols":["'"$SYM"'"],"timeframe":"1d","interval_seconds":86400,"range_from":"2023-01-01","range_to":"2023-11-28"}}' | "$BIN/qbctl" produce control >/dev/null 2>&1
echo '{"command_id":"'"$(uuid)"'","target":"qb-data","kind":"COMMAND_KIND_INGEST_JOB_RUN_NOW","issued_by":"test","ingest_job":{"name":"vg-'"$SYM"'"}}' | "$BIN/qbctl" produce control >/dev/null 2>&1
for _ in $(seq 1 600); do [ "$(q "SELECT count(*) FROM md.ingest_job_runs WHERE status = 'succeeded'")" -ge 1 ] && break; sleep 0.2; done
[ "$(q "SELECT count(*) FROM md.ingest_job_runs WHERE status = 'succeeded'")" -ge 1 ] || fail "qb-data under valgrind: no succeeded run"
stop_vg qb-data

# qb-features: a strategy, then 300 fresh bars.
run_vg qb-features "$(free_port)"
sleep 2
echo '{"command_id":"'"$(uuid)"'","target":"qb-features","kind":"COMMAND_KIND_STRATEGY_SET_PARAMS","issued_by":"test","strategy":{"strategy_id":"vg-'"$SYM"'","strategy_name":"basic_signals","symbols":["'"$SYM"'"],"timeframe":"1d"}}' | "$BIN/qbctl" produce control >/dev/null 2>&1
for _ in $(seq 1 300); do [ "$(q "SELECT count(*) FROM features.strategies")" = 1 ] && break; sleep 0.1; done
sleep 2 # reloaded
QB_PG_DSN="$DSN" "$BIN/qbctl" replay --symbols "$SYM" --timeframe 1d >/dev/null
for _ in $(seq 1 600); do [ "$(q "SELECT count(*) FROM features.features WHERE symbol = '$SYM'")" -ge 300 ] && break; sleep 0.2; done
n=$(q "SELECT count(*) FROM features.features WHERE symbol = '$SYM'")
[ "$n" -ge 300 ] || fail "qb-features under valgrind: $n feature rows"
stop_vg qb-features

# qb-notify: a price rule with a signed webhook and an in-app target; two
# bars cross the level; both deliveries done (curl, HMAC, inbox), stops.
HOOKPORT=$(free_port)
/usr/bin/python3 - "$HOOKPORT" >"$T/hook.log" 2>&1 <<'PYEOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        print(self.headers.get("X-Quantbus-Signature", "-"), flush=True)
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PYEOF
hookpid=$!
trap 'kill $hookpid 2>/dev/null || true; cleanup' EXIT
QB_NOTIFY_GROUP="vg-$$-$RANDOM" QB_NOTIFY_WORKERS=1 run_vg qb-notify "$(free_port)"
sleep 2
NSYM="VN$RANDOM"
echo '{"command_id":"'"$(uuid)"'","target":"qb-notify","kind":"COMMAND_KIND_ALERT_RULE_UPSERT","issued_by":"vg","alert_rule":{"rule_id":"vg-'"$NSYM"'","condition":"ALERT_CONDITION_PRICE_ABOVE","symbol":"'"$NSYM"'","threshold":"10000000000","enabled":true,"targets":[{"channel":"NOTIFY_CHANNEL_WEBHOOK","address":"http://127.0.0.1:'"$HOOKPORT"'/h","secret":"vg-secret"},{"channel":"NOTIFY_CHANNEL_IN_APP"}]}}' | "$BIN/qbctl" produce control >/dev/null 2>&1
for _ in $(seq 1 300); do [ "$(q "SELECT count(*) FROM notify.rules")" = 1 ] && break; sleep 0.1; done
i=0
for c in 9900000000 10100000000; do
  i=$((i + 1)); ts=$((1700000000000000000 + i * 60000000000))
  echo '{"symbol":"'"$NSYM"'","timeframe":"1m","ts":"'"$ts"'","open":"'"$c"'","high":"'"$c"'","low":"'"$c"'","close":"'"$c"'","volume":"100000000"}' | "$BIN/qbctl" produce md.bars >/dev/null 2>&1
done
for _ in $(seq 1 600); do [ "$(q "SELECT count(*) FROM notify.deliveries WHERE status = 'delivered'")" -ge 2 ] && break; sleep 0.2; done
n=$(q "SELECT count(*) FROM notify.deliveries WHERE status = 'delivered'")
[ "$n" -ge 2 ] || fail "qb-notify under valgrind: $n deliveries delivered"
grep -q '^sha256=' "$T/hook.log" || fail "qb-notify under valgrind: webhook not signed"
stop_vg qb-notify
kill $hookpid 2>/dev/null || true

# qb-risk: limits, a signal -> order, a rejected intent, a fill, a bar, a
# snapshot, kill switch and resume. Each input is sent again until its
# effect is seen (same ids: applied once), as the group starts at the end.
run_vg qb-risk "$(free_port)"
RACC="vg-$SYM"
until_q() { # sql want json-topic json
  for _ in $(seq 1 300); do
    [ "$(q "$1")" = "$2" ] && return
    echo "$4" | "$BIN/qbctl" produce "$3" >/dev/null 2>&1
    sleep 0.5
  done
  fail "qb-risk under valgrind: $1 never $2"
}
RC1=$(uuid)
until_q "SELECT count(*) FROM risk.limits WHERE account = '$RACC'" 1 control '{"command_id":"'"$RC1"'","target":"qb-risk","kind":"COMMAND_KIND_SET_LIMITS","issued_by":"vg","account":"'"$RACC"'","limits":{"limits":[{"kind":"LIMIT_KIND_MAX_POSITION_QTY","value":"100000000000"}]}}'
until_q "SELECT count(*) FROM risk.orders WHERE cause_id = 'vgsig-$SYM' AND published" 1 signals '{"signal_id":"vgsig-'"$SYM"'","account":"'"$RACC"'","strategy_id":"vg","symbol":"'"$SYM"'","timeframe":"1d","direction":"SIGNAL_DIRECTION_LONG","confidence":1,"stop_distance":"200000000","reference_price":"10000000000","bar_ts":"1700000000000000000"}'
until_q "SELECT count(*) FROM risk.orders WHERE cause_id = 'vgint-$SYM' AND NOT approved" 1 orders.intents '{"intent_id":"vgint-'"$SYM"'","account":"'"$RACC"'","symbol":"'"$SYM"'","side":"SIDE_BUY","type":"ORDER_TYPE_MARKET","qty":"500000000000","requested_by":"vg"}'
until_q "SELECT count(*) FROM risk.fills WHERE account = '$RACC'" 1 exec.reports '{"order_id":"vgo-'"$SYM"'","account":"'"$RACC"'","symbol":"'"$SYM"'","status":"ORDER_STATUS_FILLED","side":"SIDE_BUY","fill_qty":"1000000000","fill_price":"10000000000","commission":"100000000","cum_qty":"1000000000","leaves_qty":"0","fill_id":"vgf-'"$SYM"'","sequence":"1"}'
until_q "SELECT mark FROM risk.positions WHERE account = '$RACC' AND symbol = '$SYM'" 10100000000 md.bars '{"symbol":"'"$SYM"'","timeframe":"1d","ts":"1900000000000000000","open":"10100000000","high":"10100000000","low":"10100000000","close":"10100000000","volume":"100000000000"}'
RC2=$(uuid)
until_q "SELECT count(*) FROM risk.snapshots WHERE account = '$RACC'" 1 control '{"command_id":"'"$RC2"'","target":"qb-risk","kind":"COMMAND_KIND_RISK_SNAPSHOT","issued_by":"vg","account":"'"$RACC"'"}'
RC3=$(uuid)
until_q "SELECT status FROM risk.accounts WHERE account = '$RACC'" HALTED control '{"command_id":"'"$RC3"'","target":"qb-risk","kind":"COMMAND_KIND_KILL_SWITCH","issued_by":"vg","account":"'"$RACC"'"}'
RC4=$(uuid)
until_q "SELECT status FROM risk.accounts WHERE account = '$RACC'" ACTIVE control '{"command_id":"'"$RC4"'","target":"qb-risk","kind":"COMMAND_KIND_RESUME","issued_by":"vg","account":"'"$RACC"'"}'
stop_vg qb-risk

# qb-backtest: a one-run backtest, then a walk-forward split into parts (3
# windows x 2 combinations: 6 in-sample + 3 out-of-sample parts through the
# topic, aggregated under the run's row lock) on qb-data's synthetic bars;
# both finish, stops.
BTG="vg-$$-$RANDOM"
QB_BACKTEST_GROUP="$BTG" run_vg qb-backtest "$(free_port)"
btreq() { # run_id [extra JSON fields]
  echo '{"run_id":"'"$1"'","kind":"BACKTEST_REQUEST_KIND_WHOLE_RUN","group":"'"$BTG"'","strategy_name":"sma_cross","strategy_params_json":"{\"fast\":5,\"slow\":20}","symbols":["'"$SYM"'"],"timeframe":"1d"'"${2:-}"'}' |
    "$BIN/qbctl" produce backtest.requests >/dev/null 2>&1
}
btst() { q "SELECT status FROM backtest.runs WHERE run_id = '$1'"; }
ok=""
for i in $(seq 1 20); do # the consumer reads from the latest offset: wait until it takes one
  btreq "vgbt-$BTG-$i"
  for _ in $(seq 1 30); do [ "$(btst "vgbt-$BTG-$i")" = finished ] && { ok=$i; break; }; sleep 0.2; done
  [ -n "$ok" ] && break
done
[ -n "$ok" ] || fail "qb-backtest under valgrind: no one-run backtest finished"
btreq "vgwf-$BTG" ',"walk_forward":{"windows":3,"train_steps":100,"test_steps":50},"grid":[{"name":"fast","values":[5,10]},{"name":"slow","values":[20]}]'
for _ in $(seq 1 900); do s=$(btst "vgwf-$BTG"); [ "$s" = finished ] || [ "$s" = failed ] && break; sleep 0.2; done
[ "$(btst "vgwf-$BTG")" = finished ] || fail "qb-backtest under valgrind: walk-forward '$(btst "vgwf-$BTG")' $(q "SELECT error FROM backtest.runs WHERE run_id = 'vgwf-$BTG'")"
[ "$(q "SELECT count(*) FROM backtest.windows WHERE run_id = 'vgwf-$BTG'")" = 3 ] || fail "qb-backtest under valgrind: not 3 windows"
stop_vg qb-backtest

# qb-execution: paper orders (the simulator on md.bars), a fill from a bar,
# the kill switch, a mode command; the audit chain verifies.
XACC="vgx-$$-$RANDOM"
QB_EXEC_GROUP="vg-$$-$RANDOM" run_vg qb-execution "$(free_port)"
xorder() { # n type extra
  echo '{"order_id":"'"$(uuid)"'","cause_id":"vgx-'"$1"'","cause_kind":"ORDER_CAUSE_SIGNAL","account":"'"$XACC"'","strategy_id":"vg","symbol":"'"$SYM"'","side":"SIDE_BUY","type":"'"$2"'"'"$3"',"time_in_force":"TIME_IN_FORCE_GTC","qty":"100000000","mode":"TRADING_MODE_PAPER"}' |
    "$BIN/qbctl" produce orders >/dev/null 2>&1
}
ok=""
for i in $(seq 1 40); do # the consumer reads from the latest offset: wait until it takes one
  xorder "$i" ORDER_TYPE_MARKET ""
  for _ in $(seq 1 20); do [ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND status = 3")" -ge 1 ] && { ok=1; break; }; sleep 0.2; done
  [ -n "$ok" ] && break
done
[ -n "$ok" ] || fail "qb-execution under valgrind: no order accepted"
xorder L ORDER_TYPE_LIMIT ',"limit_price":"100000000"'
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND type = 2 AND status = 3")" = 1 ] && break; sleep 0.2; done
echo '{"symbol":"'"$SYM"'","timeframe":"1d","ts":"1950000000000000000","open":"10100000000","high":"10200000000","low":"10000000000","close":"10100000000","volume":"100000000000"}' | "$BIN/qbctl" produce md.bars >/dev/null 2>&1
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND status = 5")" -ge 1 ] && break; sleep 0.2; done
[ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND status = 5")" -ge 1 ] || fail "qb-execution under valgrind: no fill from the bar"
echo '{"account":"'"$XACC"'","kind":"RISK_EVENT_KIND_KILL_SWITCH_ON","severity":"SEVERITY_CRITICAL","message":"vg"}' | "$BIN/qbctl" produce risk.events >/dev/null 2>&1
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND status = 6 AND reason_code = 3")" = 1 ] && break; sleep 0.2; done
[ "$(q "SELECT count(*) FROM trading.orders WHERE account = '$XACC' AND status = 6 AND reason_code = 3")" = 1 ] || fail "qb-execution under valgrind: kill switch did not cancel"
echo '{"command_id":"'"$(uuid)"'","target":"qb-execution","kind":"COMMAND_KIND_STRATEGY_SET_MODE","issued_by":"vg","account":"'"$XACC"'","strategy_mode":{"strategy_id":"vg","mode":"TRADING_MODE_LIVE","rollout_pct":10}}' | "$BIN/qbctl" produce control >/dev/null 2>&1
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM trading.strategy_modes WHERE account = '$XACC'")" = 1 ] && break; sleep 0.2; done
stop_vg qb-execution
QB_PG_DSN="$DSN" "$BIN/qbctl" audit verify >/dev/null || fail "audit verify after the valgrind run"

# qb-api: login (PBKDF2, JWT), an API key, authorised and refused requests,
# the OpenAPI document, a bad body, a live stream that gets a bar, stops.
APORT=$(free_port)
QB_API_PORT=$APORT QB_API_BIND=127.0.0.1 QB_API_ADMIN_PASSWORD=valgrind-admin-pw QB_API_PBKDF2_ITER=1000 \
  QB_API_JWT_SECRETS="k1:valgrind-secret-0123456789abcdef0123456" QB_API_STATIC_DIR="$ROOT/web" \
  QB_API_SSE_HEARTBEAT_MS=300 run_vg qb-api "$(free_port)"
A="http://127.0.0.1:$APORT/api/v1"
tok=$(curl -s -XPOST "$A/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"valgrind-admin-pw"}' | jq -r .access_token)
[ -n "$tok" ] && [ "$tok" != null ] || fail "qb-api under valgrind: no token"
key=$(curl -s -XPOST "$A/keys" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -d '{"name":"vg"}' | jq -r .key)
[ "$(curl -s "$A/me" -H "X-API-Key: $key" | jq -r .role)" = admin ] || fail "qb-api under valgrind: key"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/users")" = 401 ] || fail "qb-api under valgrind: 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$A/users" -H "X-API-Key: $key" -H 'Content-Type: application/json' -d '{"name":')" = 400 ] || fail "qb-api under valgrind: 400"
curl -s "$A/openapi.json" | jq -e '.paths | length > 10' >/dev/null || fail "qb-api under valgrind: openapi"
curl -s -N --max-time 6 "$A/stream?topics=bars&symbols=$SYM" -H "X-API-Key: $key" >"$T/sse" 2>/dev/null &
ssepid=$!
sleep 2
echo '{"symbol":"'"$SYM"'","timeframe":"1d","ts":"1960000000000000000","open":"10100000000","high":"10200000000","low":"10000000000","close":"10100000000","volume":"100000000000"}' | "$BIN/qbctl" produce md.bars >/dev/null 2>&1
wait $ssepid || true
grep -q '"symbol":"'"$SYM"'"' "$T/sse" || fail "qb-api under valgrind: the bar did not stream"
stop_vg qb-api
