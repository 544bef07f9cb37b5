#!/usr/bin/env bash
# test_deploy_manifests.sh — the deployment files are valid, offline (no
# Docker engine, no cluster):
#  - docker-compose.yml (alone and with docker-compose.timescale.yml) passes
#    Debian's docker-compose v1 `config -q`; structure: every Quantbus service
#    has a healthcheck on the admin port and waits for the migrate and topic
#    one-shots; scalable services publish no host port (--scale works);
#  - yamllint on deploy/ and the compose files (deploy/yamllint.yml);
#  - promtool accepts the Prometheus config and alert rules;
#  - `kubectl kustomize deploy/k8s` renders; every k8s document (each file
#    and the rendered set) passes schema validation (npm kubernetes-models,
#    deploy/tools/k8s-validate; installed with `npm ci` into a cache dir);
#    structure: every Deployment has liveness + readiness probes on the admin
#    port and resource requests and limits; HPAs for features, backtest,
#    notify and api point at existing Deployments; a Service exposes the
#    gateway; a Job runs `qbctl migrate`; Kafka and PostgreSQL are external;
#  - the Grafana dashboard and provisioning files parse.
# Needs (scripts/deps.sh): docker-compose, yamllint, python3-yaml, prometheus
# (promtool), nodejs/npm; kubectl (the machine's, or Debian's
# kubernetes-client).
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
for c in docker-compose yamllint promtool node npm kubectl; do
  command -v $c >/dev/null || fail "$c not installed (make deps)"
done

# ---- compose -------------------------------------------------------------
docker-compose -f docker-compose.yml config -q || fail "docker-compose.yml invalid"
docker-compose -f docker-compose.yml -f docker-compose.timescale.yml config -q ||
  fail "docker-compose.yml + docker-compose.timescale.yml invalid"
docker-compose -f docker-compose.yml -f docker-compose.timescale.yml config >"$T/ts.yml"
grep -q 'image: timescale/timescaledb' "$T/ts.yml" || fail "timescale override does not change the image"
docker-compose -f docker-compose.yml config >"$T/compose.yml"
$PY - "$T/compose.yml" <<'PY' || fail "compose structure"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
svcs = c["services"]
ours = {n: s for n, s in svcs.items() if n.startswith("qb-")}
bad = []
need = {"qb-data", "qb-features", "qb-risk", "qb-execution", "qb-backtest", "qb-notify", "qb-api"}
if set(ours) != need: bad.append("services %s, want %s" % (sorted(ours), sorted(need)))
for infra in ("kafka", "kafka-topics", "postgres", "redis", "migrate", "prometheus", "grafana"):
    if infra not in svcs: bad.append("no %s service" % infra)
if svcs.get("migrate", {}).get("command") != ["qbctl", "migrate"]: bad.append("migrate is not qbctl migrate")
if "KAFKA_PROCESS_ROLES" not in (svcs["kafka"].get("environment") or {}): bad.append("kafka not in KRaft mode")
if not str(svcs["kafka"].get("image", "")).startswith("apache/kafka"): bad.append("kafka is not the apache/kafka image")
for n, s in ours.items():
    hc = s.get("healthcheck", {}).get("test", [])
    if not any("9100" in str(x) for x in hc): bad.append("%s: no healthcheck on the admin port" % n)
    dep = s.get("depends_on", {})
    for one in ("migrate", "kafka-topics"):
        if (dep.get(one) or {}).get("condition") != "service_completed_successfully":
            bad.append("%s: does not wait for %s" % (n, one))
    if s.get("command", [None])[0] != n: bad.append("%s: command %s" % (n, s.get("command")))
    if n != "qb-api" and s.get("ports"): bad.append("%s publishes host ports: --scale would clash" % n)
    if s.get("container_name"): bad.append("%s has a container_name: --scale would clash" % n)
for b in bad: print("compose:", b)
sys.exit(1 if bad else 0)
PY

# ---- yamllint, promtool ----------------------------------------------------
yamllint -c deploy/yamllint.yml -s deploy docker-compose.yml docker-compose.timescale.yml || fail "yamllint"
promtool check rules deploy/prometheus/alerts.yml >/dev/null || fail "promtool rejects alerts.yml"
sed "s|/etc/prometheus/alerts.yml|$ROOT/deploy/prometheus/alerts.yml|" deploy/prometheus/prometheus.yml >"$T/prometheus.yml"
promtool check config "$T/prometheus.yml" >/dev/null || fail "promtool rejects prometheus.yml"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"] and d["uid"]' \
  deploy/grafana/dashboards/quantbus.json || fail "dashboard JSON"
for f in deploy/grafana/provisioning/*/*.yml; do
  $PY -c 'import yaml,sys; d=yaml.safe_load(open(sys.argv[1])); assert d["apiVersion"] == 1' "$f" || fail "$f"
done

# ---- kubernetes: render, schema, structure ----------------------------------
kubectl kustomize deploy/k8s >"$T/k8s.yaml" 2>"$T/kustomize.err" || { cat "$T/kustomize.err" >&2; fail "kubectl kustomize deploy/k8s"; }
V=deploy/tools/k8s-validate
CACHE=${QB_NPM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/quantbus}/k8s-validate-$(cat $V/package.json $V/package-lock.json | md5sum | cut -c1-12)
if [ ! -f "$CACHE/.ok" ]; then
  rm -rf "$CACHE"; mkdir -p "$CACHE"
  cp $V/package.json $V/package-lock.json "$CACHE/"
  (cd "$CACHE" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >npm.log 2>&1) ||
    { cat "$CACHE/npm.log" >&2; fail "npm ci in $CACHE"; }
  touch "$CACHE/.ok"
fi
cp $V/validate.mjs "$CACHE/"
files=$(ls deploy/k8s/*.yaml | grep -v kustomization.yaml)
node "$CACHE/validate.mjs" $files "$T/k8s.yaml" >"$T/validate.out" || { grep -v '^ok' "$T/validate.out" >&2; fail "k8s schema validation"; }
tail -1 "$T/validate.out"
# The validator catches a wrong type (a bad manifest must fail).
sed '0,/containerPort: 9100/s//containerPort: "9100x"/' "$T/k8s.yaml" >"$T/bad.yaml"
node "$CACHE/validate.mjs" "$T/bad.yaml" >/dev/null && fail "validator accepted a string containerPort"

$PY - "$T/k8s.yaml" <<'PY' || fail "k8s structure"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {}
for d in docs: by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
bad = []
ns = set(d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace")
if ns != {"quantbus"}: bad.append("namespaces %s" % ns)
need = {"qb-data", "qb-features", "qb-risk", "qb-execution", "qb-backtest", "qb-notify", "qb-api"}
deps = by.get("Deployment", {})
if not need <= set(deps): bad.append("missing Deployments: %s" % sorted(need - set(deps)))
for n in need & set(deps):
    c = deps[n]["spec"]["template"]["spec"]["containers"][0]
    if c.get("command", [None])[0] != n: bad.append("%s: command %s" % (n, c.get("command")))
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        if g.get("path") != path or ports.get(g.get("port"), g.get("port")) != 9100:
            bad.append("%s: %s is not %s on the admin port" % (n, probe, path))
    r = c.get("resources", {})
    for k in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(r.get(k, {})): bad.append("%s: no %s cpu/memory" % (n, k))
    sc = deps[n]["spec"]["template"]["spec"].get("securityContext", {})
    if not sc.get("runAsNonRoot"): bad.append("%s: not runAsNonRoot" % n)
hpas = by.get("HorizontalPodAutoscaler", {})
for n in ("qb-features", "qb-backtest", "qb-notify", "qb-api"):
    h = hpas.get(n)
    if not h: bad.append("no HPA for %s" % n); continue
    t = h["spec"]["scaleTargetRef"]
    if t["kind"] != "Deployment" or t["name"] not in deps: bad.append("HPA %s targets %s" % (n, t))
svcs = by.get("Service", {})
api = svcs.get("qb-api", {}).get("spec", {}).get("ports", [])
if not any(p.get("port") == 8080 for p in api): bad.append("no gateway Service port 8080")
for n in need:
    if not any(p.get("port") == 9100 for p in svcs.get(n, {}).get("spec", {}).get("ports", [])):
        bad.append("no admin Service for %s" % n)
for ext in ("kafka", "postgres"):
    if svcs.get(ext, {}).get("spec", {}).get("type") != "ExternalName": bad.append("%s is not an external service" % ext)
jobs = by.get("Job", {})
if not any(j["spec"]["template"]["spec"]["containers"][0].get("command") == ["qbctl", "migrate"] for j in jobs.values()):
    bad.append("no migration Job")
if "quantbus-config" not in by.get("ConfigMap", {}) or "quantbus-secrets" not in by.get("Secret", {}):
    bad.append("ConfigMap quantbus-config / Secret quantbus-secrets missing")
for b in bad: print("k8s:", b)
sys.exit(1 if bad else 0)
PY
echo "deploy manifests: compose (+timescale) valid, yamllint, promtool, kustomize renders $(grep -c '^kind:' "$T/k8s.yaml") objects, schema-valid, structure ok"
