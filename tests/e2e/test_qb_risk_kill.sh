#!/usr/bin/env bash
# test_qb_risk_kill.sh — qb-risk killed with SIGKILL in the middle of a burst
# of signals and fills (6 accounts, 5 symbols; 5000 signals, 5000 fills plus
# 300 re-sent duplicates), restarted on the same database and group; then a
# second replica joins the group and another 5000 signals and fills follow.
# Asserted after the restart and again after the two-replica burst:
#  - every signal got exactly one decision (risk.orders: one row per signal
#    id, none lost, none twice);
#  - no order id is twice on `orders` and every approved one is there; no
#    rejection twice on exec.reports;
#  - cash and every position of every account equal the books of an
#    uninterrupted run, worked out independently from the fills produced
#    (exact integers: whole quantities, prices in cents);
#  - the restart replayed records below the durable offsets without
#    applying them (qb_risk_replayed_total);
#  - with two replicas, the second holds some of the accounts (loaded from
#    PostgreSQL when it got their partitions) and the books still agree.
# Accounts start with 100M so that random fills never pause or halt them.
# QB_TEST_KEEP_DB=1 keeps the test database for inspection.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
BIN="$BIN_DIR/qb-risk"
QBCTL="$BIN_DIR/qbctl"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
T=$(mktemp -d)
# The accounts must fall on both halves of the 6 partitions of signals and
# exec.reports (key = account; librdkafka's default partitioner is CRC-32 of
# the key), so that each of the two replicas below (range assignor: 3
# partitions each) gets some: a random tag alone misses that 1 time in 32.
for _ in $(seq 1 100); do
  TAG="$$_$RANDOM"
  /usr/bin/python3 -c 'import sys, zlib
h = {zlib.crc32(("rkk%d-%s" % (i, sys.argv[1])).encode()) % 6 < 3 for i in range(6)}
sys.exit(0 if len(h) == 2 else 1)' "$TAG" && break
done
DB="qbrisk_$TAG"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "${QB_TEST_KEEP_DB:-}" ] || psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v '"level":"info"' "$f" | tail -8 >&2; }; done; exit 1; }
rk_sql_dir() {
  local d="$T/sql" max=0 n f
  mkdir -p "$d"
  cp "$ROOT"/sql/[0-9]*.sql "$d/"
  for f in "$d"/[0-9]*.sql; do n=$((10#$(basename "$f" | cut -c1-4))); [ $n -gt $max ] && max=$n; done
  for n in $(seq 1 $max); do
    ls "$d"/$(printf %04d $n)_*.sql >/dev/null 2>&1 ||
      printf -- '-- placeholder (test only)\nSELECT 1;\n' >"$d/$(printf %04d $n)_placeholder.sql"
  done
  echo "$d"
}
rk_uuid() { cat /proc/sys/kernel/random/uuid; }
# The order id qb-risk derives from a cause id (libs/risk qb_risk_order_id).
rk_order_id() { python3 -c "import uuid,sys; print(uuid.uuid5(uuid.UUID('5b0a7c1e-3f2d-4e8a-9c61-2d7e4b8f0a93'), sys.argv[1] + '|1'))" "$1"; }
rk_produce() { # topic json-line
  echo "$2" | "$QBCTL" produce "$1" >"$T/pout" 2>&1 || fail "qbctl produce $1: $(cat "$T/pout")"
}
rk_free_port() { # below the ephemeral range: see tests/harness/free_port.py
  python3 "$ROOT/tests/harness/free_port.py" || fail "no free port"
}
rk_wait_ready() { # port pid
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || fail "qb-risk exited early"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz" || true)" = 200 ] && return
    sleep 0.1
  done
  fail "qb-risk never ready"
}
# A signal as JSON: account symbol direction(LONG|SHORT|FLAT) stop ref signal_id
rk_signal() {
  echo '{"signal_id":"'"$6"'","account":"'"$1"'","strategy_id":"t-'"$TAG"'","symbol":"'"$2"'","timeframe":"1d","direction":"SIGNAL_DIRECTION_'"$3"'","confidence":1,"stop_distance":"'"$4"'","reference_price":"'"$5"'","bar_ts":"1700000000000000000","reason":"test"}'
}
# Wait until the group reads: a FLAT probe signal per account (nothing to
# trade: a rejection, no state), sent again until decided (same id: decided
# once). With auto.offset.reset=latest a new group starts where the topics
# end once its partitions' positions are known; this waits for that.
rk_sync() { # account...
  local a ok
  for _ in $(seq 1 100); do
    ok=1
    for a in "$@"; do
      [ "$(q "SELECT count(*) FROM risk.orders WHERE cause_id = 'probe-$a'")" = 1 ] && continue
      ok=0
      rk_produce signals "$(rk_signal "$a" PROBE FLAT 0 100000000 "probe-$a")"
    done
    [ $ok = 1 ] && return
    sleep 0.2
  done
  fail "qb-risk never decided the probe signals"
}
# A fill report: account order_id symbol side(BUY|SELL) qty price fill_id [status]
rk_fill() {
  echo '{"order_id":"'"$2"'","account":"'"$1"'","symbol":"'"$3"'","status":"'"${8:-ORDER_STATUS_FILLED}"'","side":"SIDE_'"$4"'","fill_qty":"'"$5"'","fill_price":"'"$6"'","commission":"0","cum_qty":"'"$5"'","leaves_qty":"0","order_qty":"'"$5"'","fill_id":"'"$7"'","sequence":"1"}'
}

SQL_DIR=$(rk_sql_dir)
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
q() { psql "$DSN" -qAtc "$1"; }
QB_PG_DSN="$DSN" QB_SQL_DIR="$SQL_DIR" "$QBCTL" migrate >/dev/null
export QB_SQL_DIR="$SQL_DIR"

NSIG=${RK_NSIG:-10000}; NFILL=${RK_NSIG:-10000}; NDUP=300
python3 - "$T" "$TAG" $NSIG $NFILL $NDUP <<'PY'
import json, random, sys
T, tag, nsig, nfill, ndup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(42)
accts = ["rkk%d-%s" % (i, tag) for i in range(6)]
syms = ["KX%d%s" % (i, tag.split("_")[1]) for i in range(5)]
with open(T + "/sig.jsonl", "w") as f:
    for k in range(nsig):
        a = rnd.choice(accts)
        f.write(json.dumps({"signal_id": "ks-%s-%d" % (tag, k), "account": a, "strategy_id": "k",
            "symbol": rnd.choice(syms), "timeframe": "1d",
            "direction": rnd.choice(["SIGNAL_DIRECTION_LONG", "SIGNAL_DIRECTION_SHORT", "SIGNAL_DIRECTION_FLAT"]),
            "confidence": 1, "stop_distance": str(rnd.randint(100, 500) * 1000000),
            "reference_price": str(rnd.randint(5000, 15000) * 1000000), "bar_ts": "1700000000000000000"}) + "\n")
books = {a: {"cash": 100000000 * 10**8, "pos": {}} for a in accts}
lines = []
for k in range(nfill):
    a, s = rnd.choice(accts), rnd.choice(syms)
    side = rnd.choice(["SIDE_BUY", "SIDE_SELL"])
    qty, cents, comm = rnd.randint(1, 40), rnd.randint(5000, 15000), rnd.randint(0, 100)
    sg = 1 if side == "SIDE_BUY" else -1
    b = books[a]
    b["cash"] -= sg * qty * cents * 10**6 + comm * 10**6
    b["pos"][s] = b["pos"].get(s, 0) + sg * qty * 10**8
    lines.append(json.dumps({"order_id": "ext-%d" % k, "account": a, "symbol": s, "status": "ORDER_STATUS_FILLED",
        "side": side, "fill_qty": str(qty * 10**8), "fill_price": str(cents * 10**6), "commission": str(comm * 10**6),
        "cum_qty": str(qty * 10**8), "leaves_qty": "0", "order_qty": str(qty * 10**8),
        "fill_id": "kf-%s-%d" % (tag, k), "sequence": "1"}))
    if k == nfill // 2 - 1:
        half = len(lines)
        snap = {a: {"cash": books[a]["cash"], "pos": dict(books[a]["pos"])} for a in accts}
def write_expect(path, bk):
    with open(path, "w") as f:
        for a in accts:
            f.write("%s|%d\n" % (a, bk[a]["cash"]))
            for s, p in sorted(bk[a]["pos"].items()):
                f.write("%s|%s|%d\n" % (a, s, p))
first, second = lines[:half], lines[half:]
dups = [first[rnd.randrange(len(first))] for _ in range(ndup)]
for d in dups: first.insert(rnd.randrange(len(first)), d)
with open(T + "/fills.jsonl", "w") as f:
    f.write("\n".join(first) + "\n")
with open(T + "/fills2.jsonl", "w") as f:
    f.write("\n".join(second) + "\n")
write_expect(T + "/expect", snap)
write_expect(T + "/expect2", books)
PY
# burst 1: the first half of the signals and fills; burst 2 (two replicas) the rest
head -n $((NSIG / 2)) "$T/sig.jsonl" >"$T/sig1.jsonl"; tail -n +$((NSIG / 2 + 1)) "$T/sig.jsonl" >"$T/sig2.jsonl"
NSIG1=$((NSIG / 2)); NFILL1=$((NFILL / 2))
ACCS="'rkk0-$TAG','rkk1-$TAG','rkk2-$TAG','rkk3-$TAG','rkk4-$TAG','rkk5-$TAG'"

start() { # logfile: a member of the group, once it has partitions
  PORT=$(rk_free_port)
  QB_PG_DSN="$DSN" QB_ADMIN_PORT=$PORT QB_ADMIN_BIND=127.0.0.1 QB_RISK_GROUP="rkk-$TAG" \
    QB_RISK_SNAPSHOT_S=0 QB_RISK_INITIAL_CASH=100000000 QB_KAFKA_AUTO_OFFSET_RESET=latest \
    QB_LOG_LEVEL=info "$BIN" >/dev/null 2>"$1" &
  PA=$!; pids+=("$PA")
  rk_wait_ready "$PORT" "$PA"
  for _ in $(seq 1 300); do grep -q '"msg":"assigned' "$1" && return; sleep 0.1; done
  fail "qb-risk got no partitions"
}
start "$T/log1"
rk_sync rkk0-$TAG rkk1-$TAG rkk2-$TAG rkk3-$TAG rkk4-$TAG rkk5-$TAG
for i in 0 1 2 3 4 5; do # room for the burst: the rate and open-order limits up
  rk_produce control '{"command_id":"'"$(rk_uuid)"'","target":"qb-risk","kind":"COMMAND_KIND_SET_LIMITS","issued_by":"test","account":"rkk'$i'-'"$TAG"'","limits":{"limits":[{"kind":"LIMIT_KIND_MAX_ORDERS_PER_MINUTE","value":"600000000000"},{"kind":"LIMIT_KIND_MAX_OPEN_ORDERS","value":"1000000000000"},{"kind":"LIMIT_KIND_MAX_CAPITAL_DEPLOYED","value":"400000000"},{"kind":"LIMIT_KIND_MAX_CORRELATED_EXPOSURE","value":"400000000"},{"kind":"LIMIT_KIND_MAX_DRAWDOWN","value":"50000000"},{"kind":"LIMIT_KIND_SIZING_FRACTION","value":"20000"}]}}'
done
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.limits WHERE account IN ($ACCS)")" = 36 ] && break; sleep 0.1; done
[ "$(q "SELECT count(*) FROM risk.limits WHERE account IN ($ACCS)")" = 36 ] || fail "limits not set"
# The burst in 10 slices 0.3 s apart, so that the kill lands inside it.
split -n l/10 "$T/sig1.jsonl" "$T/s1."; split -n l/10 "$T/fills.jsonl" "$T/f1."
( for f in "$T"/s1.*; do "$QBCTL" produce signals <"$f" || exit 1; sleep 0.3; done ) >"$T/p1" 2>&1 &
P1=$!
( for f in "$T"/f1.*; do "$QBCTL" produce exec.reports <"$f" || exit 1; sleep 0.3; done ) >"$T/p2" 2>&1 &
P2=$!
# signals decided (a reversal is two decisions: exit, leg 1, and entry, leg 2)
ndec() { q "SELECT count(DISTINCT cause_id) FROM risk.orders WHERE account IN ($ACCS) AND cause_id LIKE 'ks-%'"; }
for _ in $(seq 1 3000); do [ "$(ndec)" -ge $((NSIG1 / 3)) ] && break; sleep 0.01; done
killed_at=$(ndec)
kill -KILL "$PA"; wait "$PA" 2>/dev/null || true
[ "$killed_at" -lt "$NSIG1" ] || fail "the burst was over before the kill ($killed_at decisions)"
wait "$P1" || fail "produce signals: $(tail -3 "$T/p1")"
wait "$P2" || fail "produce fills: $(tail -3 "$T/p2")"
start "$T/log2"
wait_counts() { # decisions fills
  for _ in $(seq 1 1200); do
    [ "$(ndec)" -ge $1 ] && [ "$(q "SELECT count(*) FROM risk.fills WHERE account IN ($ACCS)")" -ge $2 ] && break
    sleep 0.1
  done
  [ "$(ndec)" = $1 ] || fail "$(ndec) decisions for $1 signals"
  [ "$(q "SELECT count(*) FROM (SELECT cause_id FROM risk.orders WHERE account IN ($ACCS) AND cause_id LIKE 'ks-%' GROUP BY 1 HAVING count(*) > 2) x")" = 0 ] || fail "a signal decided twice"
  [ "$(q "SELECT count(*) FROM risk.fills WHERE account IN ($ACCS)")" = $2 ] || fail "fills: $(q "SELECT count(*) FROM risk.fills WHERE account IN ($ACCS)") for $2"
  for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM risk.orders WHERE account IN ($ACCS) AND NOT published")" = 0 ] && break; sleep 0.1; done
  [ "$(q "SELECT count(*) FROM risk.orders WHERE account IN ($ACCS) AND NOT published")" = 0 ] || fail "decisions not marked published"
  sleep 1 # the last batch's account state
}
books_equal() { # expect-file what
  q "SELECT account || '|' || cash FROM risk.account_state WHERE account IN ($ACCS) UNION ALL
     SELECT account || '|' || symbol || '|' || qty FROM risk.positions WHERE account IN ($ACCS)" |
    grep -v '|0$' | sort >"$T/have"
  grep -v '|0$' "$1" | sort >"$T/want"
  diff "$T/want" "$T/have" >"$T/diff" || fail "$2: books differ from an uninterrupted run: $(head -5 "$T/diff")"
}
wait_counts $NSIG1 $NFILL1
books_equal "$T/expect" "after kill -9 + restart"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$T/metrics" || fail "/metrics"
replayed=$(awk '/^qb_risk_replayed_total/ {print $2}' "$T/metrics")
dupc=$(awk '/^qb_risk_duplicate_causes_total/ {print $2}' "$T/metrics")
dupf=$(awk '/^qb_risk_duplicate_fills_total/ {print $2}' "$T/metrics")
PA1=$PA; PORT1=$PORT

# Burst 2 on two replicas of the same group: the accounts are split and
# re-loaded from PostgreSQL by the replica that takes them.
start "$T/log3"
PA2=$PA
for _ in $(seq 1 300); do [ "$(grep -c '"msg":"assigned' "$T/log2")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c '"msg":"assigned' "$T/log2")" -ge 2 ] || fail "no rebalance after the second replica joined"
sleep 1
"$QBCTL" produce signals <"$T/sig2.jsonl" >"$T/p1" 2>&1 || fail "produce signals 2"
"$QBCTL" produce exec.reports <"$T/fills2.jsonl" >"$T/p2" 2>&1 || fail "produce fills 2"
wait_counts $NSIG $NFILL
books_equal "$T/expect2" "two replicas"
n2=$(grep -c '"msg":"account rkk[0-5]-'"$TAG"' loaded' "$T/log3" || true)
[ "$n2" -ge 1 ] && [ "$n2" -lt 6 ] || fail "the second replica loaded $n2 of the 6 accounts"
# Topics: each order id once on orders, each rejection once on exec.reports.
timeout 120 "$QBCTL" tail orders --from-beginning --timeout-ms 3000 2>/dev/null | grep -o "\"order_id\":\"[^\"]*\",\"cause_id\":\"ks-$TAG-[0-9]*\"" | sort >"$T/otopic" || true
timeout 120 "$QBCTL" tail exec.reports --from-beginning --timeout-ms 3000 2>/dev/null | grep '"status":"ORDER_STATUS_REJECTED"' | grep -o "\"cause_id\":\"ks-$TAG-[0-9]*\"" | sort >"$T/rtopic" || true
dupo=$(uniq -d "$T/otopic" | wc -l); dupr=$(uniq -d "$T/rtopic" | wc -l)
[ "$dupo" = 0 ] || fail "$dupo order ids twice on orders"
[ "$dupr" = 0 ] || fail "$dupr rejections twice on exec.reports"
napp=$(q "SELECT count(*) FROM risk.orders WHERE account IN ($ACCS) AND approved AND cause_id LIKE 'ks-%'")
nrej=$(q "SELECT count(*) FROM risk.orders WHERE account IN ($ACCS) AND NOT approved AND cause_id LIKE 'ks-%'")
[ "$(wc -l <"$T/otopic")" = "$napp" ] || fail "$(wc -l <"$T/otopic") orders on the topic, $napp approved"
# exec.reports carries the fills too: on a long-lived stack qb-bus's ~5 MiB
# per partition may have dropped the oldest, so only "never more" is checked.
[ "$(wc -l <"$T/rtopic")" -le "$nrej" ] || fail "$(wc -l <"$T/rtopic") rejections on the topic, $nrej decided"
for p in $PA1 $PA2; do kill -TERM "$p"; done
for p in $PA1 $PA2; do wait "$p" || fail "exit $? after SIGTERM"; done
pids=()
echo "qb-risk kill -9 at $killed_at of $NSIG1 decisions, then 2 replicas ($n2 of 6 accounts on the second): $NSIG decided once ($napp orders, $nrej rejections), $NFILL fills (+$NDUP duplicates), books equal an uninterrupted run after each phase, no id twice on the topics; restart skipped $replayed records already durable ($dupc signals, $dupf fills seen again)"
