#!/usr/bin/env bash
# Install the Debian packages Quantbus needs to build, test and run, and the
# browser test's npm package (playwright-core, tests/e2e/api).
# Idempotent: does nothing when every package is already installed.
# Works as root, or through sudo for a normal user.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  librdkafka-dev libpq-dev libhiredis-dev libmicrohttpd-dev libcjson-dev
  libcurl4-openssl-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libssl-dev uuid-dev libcmocka-dev
  postgresql redis-server kcat prometheus curl procps tzdata
  python3 python3-confluent-kafka python3-protobuf
  valgrind
  docker-compose yamllint python3-yaml
  wrk
)
# Deployment checks (tests/e2e/test_deploy_*.sh): node + npm for the offline
# k8s schema validator, kubectl for `kubectl kustomize`. Only when the
# command is missing: a machine may have them from another package (e.g.
# NodeSource's nodejs bundles npm, and Debian's npm would conflict with it).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
# Dashboard browser test (tests/e2e/test_api_dashboard.sh): Debian's
# chromium, driven by playwright-core from npm (installed below).
PKGS+=(chromium fonts-dejavu-core)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps: done"
fi

# playwright-core and swagger-parser (exact versions in tests/e2e/api/package-lock.json) into
# the git-ignored tests/e2e/api/node_modules; never downloads a browser.
E2E_NODE="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/api"
E2E_LOCK=$(cat "$E2E_NODE/package.json" "$E2E_NODE/package-lock.json" | md5sum | cut -c1-32)
if [ "$(cat "$E2E_NODE/node_modules/.qb-lock" 2>/dev/null)" != "$E2E_LOCK" ]; then
  echo "deps: npm ci in tests/e2e/api (playwright-core)"
  (cd "$E2E_NODE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
    --ignore-scripts --loglevel=error >/dev/null) || { echo "deps: npm ci in $E2E_NODE failed" >&2; exit 1; }
  echo "$E2E_LOCK" >"$E2E_NODE/node_modules/.qb-lock"
fi
