#!/usr/bin/env bash
# test_api_auth.sh — qb-api: login, refresh rotation and reuse detection,
# logout, users, API keys (shown once, stored hashed, revocation), JWT checks
# (tampering, alg none, key rotation, unknown key id, expiry), body limits,
# strict JSON and query validation, 404/405, CORS allow-list, static path
# traversal, and the audit trail holding no secret (tests/e2e/api/test_auth.py).
source "$(dirname "$0")/api/lib.sh"
api_db_new
api_start QB_API_CORS_ORIGINS=http://desk.example QB_API_MAX_BODY=65536 QB_API_RATE_PER_S=0
api_py "$ROOT/tests/e2e/api/test_auth.py" || api_fail "test_auth.py"
kill -TERM "$API_PID"; wait "$API_PID" || api_fail "qb-api did not exit 0 on SIGTERM"
echo "PASS: qb-api auth"
