#!/usr/bin/env bash
# gen-env.sh — print an .env for docker-compose.yml with fresh random secrets:
#   deploy/gen-env.sh > .env && chmod 600 .env
# Re-running makes NEW secrets: keep the first .env (a new JWT secret logs
# every user out; a new QB_PG_PASSWORD does not change an existing database).
set -euo pipefail
rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
cat <<ENV
# Quantbus docker-compose secrets, made $(date -u +%Y-%m-%dT%H:%M:%SZ) by deploy/gen-env.sh
QB_PG_PASSWORD=$(rnd 16)
QB_GRAFANA_PG_PASSWORD=$(rnd 16)
GF_ADMIN_PASSWORD=$(rnd 12)
QB_API_JWT_SECRETS=k$(date -u +%Y%m%d):$(rnd 32)
QB_API_ADMIN_PASSWORD=$(rnd 12)
ENV
