#!/usr/bin/env bash
# test_api_ratelimit.sh — qb-api's token bucket in Redis refuses with 429 +
# Retry-After and recovers (tests/e2e/api/test_ratelimit.py).
source "$(dirname "$0")/api/lib.sh"
api_db_new
api_start QB_API_RATE_PER_S=2 QB_API_RATE_BURST=5
api_py "$ROOT/tests/e2e/api/test_ratelimit.py" || api_fail "test_ratelimit.py"
echo "PASS: qb-api rate limit"
