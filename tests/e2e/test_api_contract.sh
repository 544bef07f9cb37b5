#!/usr/bin/env bash
# test_api_contract.sh — the route table vs the OpenAPI document (both ways,
# roles, parameters, an OpenAPI validator) and the authorisation matrix:
# every route x {none, bad key, expired JWT, viewer, trader, admin by JWT and
# by key} (tests/e2e/api/test_contract.py).
source "$(dirname "$0")/api/lib.sh"
api_db_new
api_start QB_API_RATE_PER_S=0
api_py "$ROOT/tests/e2e/api/test_contract.py" || api_fail "test_contract.py"
echo "PASS: qb-api contract"
