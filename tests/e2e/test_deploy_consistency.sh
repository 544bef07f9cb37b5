#!/usr/bin/env bash
# test_deploy_consistency.sh — the deployment files agree with the code:
#  - every Quantbus container of docker-compose.yml and deploy/k8s runs a
#    binary that exists (built in $QB_BIN_DIR);
#  - every environment variable they set (compose `environment`, k8s `env`
#    and `envFrom` ConfigMap/Secret keys, the image's ENV) is one that binary
#    reads: listed by its `--help`, or a name compiled into it (config tables
#    of the libraries it links, e.g. the market-data vendors' keys), or a
#    QB_KAFKA_<PROPERTY> that librdkafka knows (checked through qbctl);
#  - the topic jobs (compose `kafka-topics`, k8s `qb-kafka-topics`) create
#    exactly the registry's topics (`qbctl topics`: libs/bus/qb_topics.c) and
#    their .dlq, with the registry's partition counts: each job's own shell
#    script is run with a stand-in kafka-topics.sh that records its calls;
#  - every topic the services use (labels of their /metrics, each service
#    started on the test stack) is one the jobs create.
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
DB=qbdeploy_$TAG
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -KILL "$p"; wait "$p"; } 2>/dev/null || true; done
  psql "$QB_PG_DSN" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

docker-compose -f docker-compose.yml config >"$T/compose.yml" || fail "docker-compose config"
kubectl kustomize deploy/k8s >"$T/k8s.yaml" 2>/dev/null || fail "kubectl kustomize deploy/k8s"

# ---- containers: binary + env ------------------------------------------------
# One line per (where, binary, variable).
$PY - "$T/compose.yml" "$T/k8s.yaml" deploy/Dockerfile >"$T/envs" <<'PY'
import re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
ours = lambda img: str(img or "").split("/")[-1].split(":")[0] == "quantbus"
binaries = set()
for n, s in compose["services"].items():
    if not ours(s.get("image")): continue
    b = (s.get("command") or ["?"])[0]; binaries.add(b)
    print("compose:%s %s -" % (n, b))
    env = s.get("environment") or {}
    for v in (env if isinstance(env, dict) else [e.split("=")[0] for e in env]):
        print("compose:%s %s %s" % (n, b, v))
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
cms = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("ConfigMap", "Secret")}
for d in docs:
    if d["kind"] not in ("Deployment", "Job", "StatefulSet", "CronJob"): continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        if not ours(c.get("image")): continue
        b = (c.get("command") or ["?"])[0]; binaries.add(b)
        w = "k8s:%s/%s" % (d["kind"], d["metadata"]["name"])
        print("%s %s -" % (w, b))
        for e in c.get("env", []): print("%s %s %s" % (w, b, e["name"]))
        for ef in c.get("envFrom", []):
            ref = ef.get("configMapRef") or ef.get("secretRef")
            src = cms.get(ref["name"]) if ref else None
            if src is None: print("%s %s !missing-envFrom-%s" % (w, b, ref)); continue
            for k in list((src.get("data") or {})) + list((src.get("stringData") or {})):
                print("%s %s %s" % (w, b, (ef.get("prefix") or "") + k))
# The image's ENV applies to every service binary.
text = open(sys.argv[3]).read().replace("\\\n", " ")
for m in re.finditer(r"^ENV\s+(.*)$", text, re.M):
    for v in re.findall(r"(QB_[A-Z0-9_]+)=", m.group(1)):
        for b in sorted(binaries):
            if b.startswith("qb-"): print("image:ENV %s %s" % (b, v))
PY
[ -s "$T/envs" ] || fail "no containers found"
missing=""; bad=""; nvars=0
declare -A helpvars
for b in $(awk '{print $2}' "$T/envs" | sort -u); do
  if [ ! -x "$BIN_DIR/$b" ]; then missing="$missing $b"; continue; fi
  { "$BIN_DIR/$b" --help 2>&1 || true; } | grep -oE '^  QB_[A-Z0-9_]+' | tr -d ' ' | sort -u >"$T/help.$b"
  strings -a "$BIN_DIR/$b" | grep -E '^QB_[A-Z0-9_]+$' | sort -u >"$T/strings.$b" || true
done
[ -z "$missing" ] || fail "containers run binaries that are not built:$missing (in $BIN_DIR; listed in $(grep -E " ($(echo $missing | tr ' ' '|')) " "$T/envs" | awk '{print $1}' | sort -u | tr '\n' ' '))"
notes=""
while read -r where b v; do
  [ "$v" = - ] && continue
  nvars=$((nvars + 1))
  if grep -qx "$v" "$T/help.$b"; then continue; fi
  if [[ "$v" =~ ^QB_KAFKA_[A-Z0-9_]+$ ]] && [ "$v" != QB_KAFKA_BROKERS ]; then
    out=$(env "$v=1" QB_KAFKA_BROKERS=127.0.0.1:1 "$BIN_DIR/qbctl" topics 2>&1 || true)
    if grep -q "has no property" <<<"$out"; then bad="$bad\n  $where: $v is not a librdkafka property"; fi
    continue
  fi
  if grep -qx "$v" "$T/strings.$b"; then notes="$notes $b:$v"; continue; fi
  bad="$bad\n  $where: $b does not read $v"
done <"$T/envs"
[ -z "$bad" ] || fail "variables set in the manifests that the binary does not read:$(echo -e "$bad")"
[ -z "$notes" ] || echo "note: read but not listed by --help:$(echo "$notes" | tr ' ' '\n' | sort -u | tr '\n' ' ')"

# ---- topics: the jobs' scripts against the registry --------------------------
"$BIN_DIR/qbctl" topics 2>/dev/null | $PY -c '
import re, sys
for l in sys.stdin:
    m = re.match(r"^(\S+)\s.*?\s(\d+)\s+(\S+\.dlq)\s", l)
    if m: print(m.group(1), m.group(2)); print(m.group(3), m.group(2))
' | sort >"$T/registry"
nreg=$("$BIN_DIR/qbctl" topics --names | wc -l)
[ "$(wc -l <"$T/registry")" = $((2 * nreg)) ] || fail "could not read the registry from qbctl topics: $(cat "$T/registry")"
mkdir -p "$T/stub/opt/kafka/bin"
cat >"$T/kafka-topics.sh" <<'STUB'
#!/bin/sh
# Records "topic partitions" of each --create call.
t=""; p=""
while [ $# -gt 0 ]; do
  case "$1" in --topic) t=$2; shift ;; --partitions) p=$2; shift ;; esac
  shift
done
echo "$t $p" >>"$REC"
STUB
chmod +x "$T/kafka-topics.sh"
$PY - "$T/compose.yml" "$T/k8s.yaml" "$T" <<'PY'
import sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
s = compose["services"]["kafka-topics"]
script = s["command"][0].replace("$$", "$")
open(sys.argv[3] + "/compose-topics.sh", "w").write(script)
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
job = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "qb-kafka-topics")
c = job["spec"]["template"]["spec"]["containers"][0]
env = {}
for e in c.get("env", []):
    env[e["name"]] = e["value"] if "value" in e else cm[e["valueFrom"]["configMapKeyRef"]["key"]]
with open(sys.argv[3] + "/k8s-topics.sh", "w") as f:
    for k, v in env.items(): f.write("%s='%s'\n" % (k, v))
    f.write(c["command"][2])
PY
for job in compose k8s; do
  sed "s|/opt/kafka/bin/kafka-topics.sh|$T/kafka-topics.sh|g" "$T/$job-topics.sh" >"$T/$job-run.sh"
  grep -q "$T/kafka-topics.sh" "$T/$job-run.sh" || fail "$job topic job does not call kafka-topics.sh"
  REC="$T/$job.rec" sh "$T/$job-run.sh" || fail "$job topic job script failed"
  sort "$T/$job.rec" >"$T/$job.created"
  diff "$T/registry" "$T/$job.created" >"$T/$job.diff" ||
    fail "$job topic job differs from the registry (< registry, > job):$(echo; cat "$T/$job.diff")"
done

# ---- topics the running services use ----------------------------------------
psql "$QB_PG_DSN" -qAtc "CREATE DATABASE $DB" >/dev/null
DSN="$QB_PG_DSN dbname=$DB"
QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" "$BIN_DIR/qbctl" migrate >/dev/null || fail "migrate"
svcs=$(awk '$2 ~ /^qb-/ {print $2}' "$T/envs" | sort -u)
for s in $svcs; do
  env QB_PG_DSN="$DSN" QB_SQL_DIR="$ROOT/sql" QB_ADMIN_PORT=0 QB_ADMIN_BIND=127.0.0.1 QB_LOG_LEVEL=info \
    QB_FEATURES_GROUP=f-$TAG QB_RISK_GROUP=r-$TAG QB_EXEC_GROUP=e-$TAG QB_BACKTEST_GROUP=b-$TAG \
    QB_NOTIFY_GROUP=n-$TAG QB_API_JWT_SECRETS="k1:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    QB_API_ADMIN_PASSWORD="pw-$TAG" QB_API_PORT=0 QB_API_BIND=127.0.0.1 \
    "$BIN_DIR/$s" >/dev/null 2>"$T/log.$s" &
  pids+=($!)
done
for s in $svcs; do
  port=""
  for _ in $(seq 1 300); do
    port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log.$s" | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  [ -n "$port" ] || fail "$s did not start: $(tail -3 "$T/log.$s")"
done
sleep 3 # consumers join their groups
for s in $svcs; do
  port=$(grep -o 'admin on 127.0.0.1:[0-9]*' "$T/log.$s" | head -1 | cut -d: -f2)
  curl -fsS "http://127.0.0.1:$port/metrics" >"$T/metrics.$s" || fail "$s /metrics"
  { grep -o 'topic="[^"]*"' "$T/metrics.$s" || true; } | cut -d'"' -f2 | sort -u | sed "s/^/$s /" >>"$T/used"
done
[ -s "$T/used" ] || fail "no service reported a topic"
awk '{print $1}' "$T/compose.created" | sort -u >"$T/created-names"
while read -r s t; do
  grep -qx "$t" "$T/created-names" || fail "$s uses topic $t, which the topic jobs do not create"
done <"$T/used"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
echo "deploy consistency: $(grep -c ' -$' "$T/envs") containers, $nvars variables all read; topic jobs == registry ($((2 * nreg)) topics); $(awk '{print $2}' "$T/used" | sort -u | wc -l) topics used by $(echo $svcs | wc -w) running services, all created"
