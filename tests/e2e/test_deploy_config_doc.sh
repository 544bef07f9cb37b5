#!/usr/bin/env bash
# test_deploy_config_doc.sh — the configuration reference in
# docs/OPERATIONS.md equals what tools/gen-config-doc.sh makes from the
# binaries' --help (their config tables), and it covers every service: a
# variable added to a service without `tools/gen-config-doc.sh --write`
# fails here.
set -euo pipefail
ROOT=${QB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${B:-build}
export QB_BIN_DIR=${QB_BIN_DIR:-$ROOT/$B/bin}
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }
tools/gen-config-doc.sh --check || fail "docs/OPERATIONS.md is not the generated reference"
for d in services/*/main.c; do
  n=$(basename "$(dirname "$d")")
  grep -q "^### $n\$" docs/OPERATIONS.md || fail "no section for $n in the reference"
done
# Every variable of every --help is in the doc.
for d in services/*/main.c; do
  n=$(basename "$(dirname "$d")")
  for v in $("$QB_BIN_DIR/$n" --help 2>&1 | grep -oE '^  QB_[A-Z0-9_]+' || true); do
    grep -q "| \`$v\` |" docs/OPERATIONS.md || fail "$n's $v missing from docs/OPERATIONS.md"
  done
done
echo "config doc: docs/OPERATIONS.md matches $(ls services/*/main.c | wc -l) binaries' --help"
