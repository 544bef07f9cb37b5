#!/usr/bin/env bash
# test_deploy_dashboard.sh — the Grafana dashboard and the Prometheus alert
# rules only use what the services export:
#  - every service of docker-compose.yml is started on the test stack (own
#    database, own groups); the metric names come from their /metrics, plus
#    the names registered in the source (qb_metrics_counter/gauge/histogram
#    literals in libs/ and services/: metrics that appear only after some
#    activity); a histogram exports NAME_bucket/_sum/_count;
#  - every metric name in every PromQL expression of
#    deploy/grafana/dashboards/*.json (panels and template queries) and
#    deploy/prometheus/alerts.yml is one of those (or Prometheus's `up`);
#    at least half of the dashboard's names must be seen live;
#  - every SQL panel (P&L, positions, orders) runs on a migrated database as
#    the read-only Grafana role made by deploy/postgres/initdb (which is run
#    here too: it must grant reading and refuse writing).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
cd "$ROOT"
: "${QB_PG_DSN:?QB_PG_DSN must be set (run through scripts/test.sh)}"
: "${QB_KAFKA_BROKERS:?QB_KAFKA_BROKERS must be set}"
: "${QB_REDIS_URL:?QB_REDIS_URL must be set}"
PY=/usr/bin/python3
T=$(mktemp -d)
TAG="$$_$RANDOM"
DB=qbdash_$TAG
ROLE=qb_grafana_$TAG
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p"; wait "$p"; } 2>/dev/null || true; done
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  psql "$QB_PG_DSN" -qAtc "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
# The read-only role first (as on a new postgres container), then migrations.
PGHOST=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$QB_PG_DSN") PGPORT=$(sed -n 's/.*port=\([^ ]*\).*/\1/p' <<<"$QB_PG_DSN") \
  POSTGRES_USER=postgres POSTGRES_DB=$DB QB_GRAFANA_PG_USER=$ROLE QB_GRAFANA_PG_PASSWORD=x \
  bash deploy/postgres/initdb/10-grafana-readonly.sh || fail "initdb script"
QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$BIN_DIR/qbctl" migrate >/dev/null || fail "migrate"

svcs=$(docker-compose -f docker-compose.yml config | $PY -c '
import sys, yaml
for n, s in yaml.safe_load(sys.stdin)["services"].items():
    if str(s.get("image", "")).split(":")[0].endswith("quantbus") and n.startswith("qb-"): print(s["command"][0])')
for s in $svcs; do
  [ -x "$BIN_DIR/$s" ] || fail "$s not built"
  env QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 QB_LOG_LEVEL=info \
    QB_FEATURES_GROUP=f-$TAG QB_RISK_GROUP=r-$TAG QB_EXEC_GROUP=e-$TAG QB_BACKTEST_GROUP=b-$TAG \
    QB_NOTIFY_GROUP=n-$TAG QB_API_JWT_SECRETS="k1:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    QB_API_ADMIN_PASSWORD="pw-$TAG-long" QB_API_PORT=0 QB_API_BIND=127.0.0.1 \
    "$BIN_DIR/$s" >/dev/null 2>"$T/log.$s" &
  pids+=($!)
done
sleep 3 # consumers join their groups, the first statistics arrive
for s in $svcs; do
  port=""
  for _ in $(seq 1 300); do
    port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log.$s" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics.$s" 2>/dev/null && break
    sleep 0.1
  done
  [ -s "$T/metrics.$s" ] || fail "$s /metrics: $(tail -3 "$T/log.$s")"
done
cat "$T"/metrics.* | grep -oE '^[a-zA-Z_:][a-zA-Z0-9_:]*' | sort -u >"$T/live"
grep -rhoE 'qb_metrics_(counter|gauge|histogram)\(\s*"[a-z_0-9]+"' libs services |
  sed -E 's/qb_metrics_(counter|gauge|histogram)\(\s*"([a-z_0-9]+)"/\1 \2/' |
  awk '$1 == "histogram" { print $2 "_bucket"; print $2 "_sum"; print $2 "_count"; next } { print $2 }' |
  sort -u >"$T/source"

$PY - "$T/live" "$T/source" "$DSN" "$ROLE" deploy/grafana/dashboards/*.json <<'PY' || fail "dashboard / alerts"
import json, re, subprocess, sys, yaml
live = set(open(sys.argv[1]).read().split())
source = set(open(sys.argv[2]).read().split())
dsn, role, dashboards = sys.argv[3], sys.argv[4], sys.argv[5:]
FUNCS = {"rate", "irate", "increase", "sum", "min", "max", "avg", "count", "histogram_quantile",
         "label_values", "topk", "bottomk", "abs", "clamp_min", "clamp_max", "delta", "deriv",
         "time", "vector", "scalar", "sort", "sort_desc", "avg_over_time", "max_over_time",
         "min_over_time", "sum_over_time", "quantile", "stddev", "absent", "changes", "resets",
         "label_replace", "round", "ceil", "floor", "count_values", "group"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    e = re.sub(r"\{[^}]*\}", "", e)                           # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                          # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    e = re.sub(r"\$\w+", "", e)                               # $__rate_interval, $service
    e = re.sub(r"label_values\(([^,()]*),\s*\w+\s*\)", r"label_values(\1)", e)  # (metric, label)
    out = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        w = m.group(0); rest = e[m.end():].lstrip()
        if w in KEYWORDS or (w in FUNCS and re.match(r"(\(|by\b|without\b)", rest)): continue
        if re.fullmatch(r"\d+[smhdwy]?", w): continue
        out.add(w)
    return out
exprs, sqls = [], []
def walk(o, where):
    if isinstance(o, dict):
        if isinstance(o.get("expr"), str): exprs.append((where, o["expr"]))
        if isinstance(o.get("rawSql"), str): sqls.append((where, o["rawSql"]))
        q = o.get("query")
        if isinstance(q, dict) and isinstance(q.get("query"), str): exprs.append((where, q["query"]))
        if isinstance(o.get("definition"), str) and o.get("type") == "query": exprs.append((where, o["definition"]))
        for k, v in o.items(): walk(v, o.get("title", where) if k in ("targets", "panels") else where)
    elif isinstance(o, list):
        for v in o: walk(v, where)
for d in dashboards: walk(json.load(open(d)), d)
alerts = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
aexprs = [("alert " + r["alert"], r["expr"]) for g in alerts["groups"] for r in g["rules"]]
bad, used, seen_live = [], set(), set()
for where, e in exprs + aexprs:
    for n in names(e):
        if n == "up" and where.startswith("alert"): continue
        used.add(n)
        if n in live: seen_live.add(n)
        elif n not in source: bad.append("%s: %s is not exported by any service" % (where, n))
dash_names = set(n for _, e in exprs for n in names(e))
print("dashboard + alerts: %d expressions, %d metric names, %d seen live, %d from the source only: %s" % (
    len(exprs) + len(aexprs), len(used), len(seen_live), len(used - seen_live), " ".join(sorted(used - seen_live))))
if len(exprs) < 10: bad.append("only %d PromQL expressions found in the dashboard" % len(exprs))
if len(dash_names & live) * 2 < len(dash_names): bad.append("fewer than half of the dashboard's metrics are seen live")
# The negative case: a made-up name is caught.
if names('sum(rate(qb_no_such_metric_total{a="b"}[5m]))') != {"qb_no_such_metric_total"}: bad.append("expr parser broken")
if not sqls: bad.append("no SQL panels (P&L)")
def psql(sql, user=None):
    args = ["psql", dsn + (" user=%s password=x" % user if user else ""), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql]
    return subprocess.run(args, capture_output=True, text=True)
for where, sql in sqls:
    r = psql(sql, role)
    if r.returncode: bad.append("SQL panel %s fails as %s: %s" % (where, role, r.stderr.strip()))
r = psql("DELETE FROM risk.account_state", role)
if r.returncode == 0: bad.append("the Grafana role can write")
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
echo "dashboard: every PromQL metric exported, $(grep -c rawSql deploy/grafana/dashboards/quantbus.json) SQL panels run read-only"
