#!/usr/bin/env bash
# test_api_sse.sh — qb-api live streams: a bar published on md.bars reaches a
# subscribed client, Last-Event-ID resumes, foreign ids reset, heartbeats,
# a stalled client is dropped without the gateway's memory growing
# (tests/e2e/api/test_sse.py).
source "$(dirname "$0")/api/lib.sh"
api_db_new
# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default)
# and would read as growth: no quarantine, so RSS means what it means.
api_start QB_API_RATE_PER_S=0 QB_API_SSE_BUFFER=512 QB_API_CONN_TIMEOUT_S=3 \
  QB_API_SSE_HEARTBEAT_MS=500 \
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
api_py "$ROOT/tests/e2e/api/test_sse.py" || api_fail "test_sse.py"
kill -TERM "$API_PID"; wait "$API_PID" || api_fail "qb-api did not exit 0 on SIGTERM"
echo "PASS: qb-api streams"
