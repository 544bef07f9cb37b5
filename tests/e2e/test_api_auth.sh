#!/usr/bin/env bash
# test_api_auth.sh — qb-api: login, refresh rotation and reuse detection,
# logout, users, API keys (shown once, stored hashed, revocation), JWT checks
# (tampering, alg none, key rotation, unknown key id, expiry), body limits,
# strict JSON and query validation, 404/405, CORS allow-list, static path
# traversal, and the audit trail holding no secret (tests/e2e/api/test_auth.py);
# then HTTPS with a certificate (checked by curl), plain HTTP refused there.
source "$(dirname "$0")/api/lib.sh"
api_db_new
api_start QB_API_CORS_ORIGINS=http://desk.example QB_API_MAX_BODY=65536 QB_API_RATE_PER_S=0
api_py "$ROOT/tests/e2e/api/test_auth.py" || api_fail "test_auth.py"
kill -TERM "$API_PID"; wait "$API_PID" || api_fail "qb-api did not exit 0 on SIGTERM"

# ---- TLS: given a certificate, the gateway speaks HTTPS only -----------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$API_T/key.pem" -out "$API_T/cert.pem" \
  >/dev/null 2>&1 || api_fail "openssl could not make a test certificate"
env QB_PG_DSN="$API_DSN" QB_SQL_DIR="$ROOT/sql" QB_API_PORT=0 QB_ADMIN_PORT=0 \
  QB_API_BIND=127.0.0.1 QB_ADMIN_BIND=127.0.0.1 QB_API_PBKDF2_ITER=1000 \
  QB_API_JWT_SECRETS="$API_JWT" QB_API_TLS_CERT="$API_T/cert.pem" QB_API_TLS_KEY="$API_T/key.pem" \
  QB_LOG_LEVEL=info "$BIN_DIR/qb-api" >"$API_T/tls.log" 2>&1 &
TLS_PID=$!
API_PIDS+=("$TLS_PID")
url=$(api_wait_log "$API_T/tls.log" 'ready: https://[0-9.]+:[0-9]+' 30) || api_fail "qb-api with TLS did not start"
TLS_URL="https://${url#ready: https://}"
out=$(curl -sS --cacert "$API_T/cert.pem" "$TLS_URL/api/v1/health" 2>&1) || true
[[ "$out" == *'"status":"ok"'* ]] || api_fail "GET /api/v1/health over HTTPS (certificate checked): $out"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$API_T/cert.pem" \
  -X POST -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$API_ADMIN_PW\"}" "$TLS_URL/api/v1/auth/login") || true
[ "$code" = 200 ] || api_fail "login over HTTPS: HTTP $code"
plain=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://${url#ready: https://}/api/v1/health") || true
[ "$plain" != 200 ] || api_fail "plain HTTP answered on the TLS port"
kill -TERM "$TLS_PID"; wait "$TLS_PID" || api_fail "qb-api (TLS) did not exit 0 on SIGTERM"
echo "PASS: qb-api auth"
