#!/usr/bin/env bash
# bench_api.sh — qb-api under wrk (run by scripts/bench.sh inside its stack):
# GET /api/v1/market/quote/{symbol} (Redis) and GET /api/v1/market/bars/{symbol}
# (PostgreSQL, 100 bars a page), 64 connections, 2 wrk threads, 10 s each,
# authenticated with an API key, with the Redis rate limiter on (limit set out
# of reach, so every request pays its token-bucket round trip) and off.
# Prints req/s and latency p50/p99. Goal for quote: >= 20k req/s, p99 <= 5 ms.
source "$(dirname "$0")/../tests/e2e/api/lib.sh"
command -v wrk >/dev/null || { echo "bench_api: wrk is not installed (scripts/deps.sh installs it)"; exit 1; }
DUR=${QB_BENCH_API_SECONDS:-10}
api_db_new
# 2,000 daily bars of BENCH through the real import path (PostgreSQL + md.bars + Redis)
python3 - "$API_T/bench.csv" <<'PY'
import sys, datetime
d = datetime.date(2015, 1, 2); p = 100.0
with open(sys.argv[1], "w") as f:
    f.write("Date,Open,High,Low,Close,Adj Close,Volume\n")
    n = 0
    while n < 2000:
        if d.weekday() < 5:
            p *= 1.0003 if n % 3 else 0.9995
            f.write("%s,%.2f,%.2f,%.2f,%.2f,%.2f,%d\n" % (d, p, p * 1.01, p * 0.99, p, p, 100000 + n))
            n += 1
        d += datetime.timedelta(days=1)
PY
QB_PG_DSN="$API_DSN" "$BIN_DIR/qbctl" import --csv "$API_T/bench.csv" --symbol BENCH >/dev/null \
  || { echo "bench_api: import failed"; exit 1; }
run() { # label url
  local out rps p50 p99
  out=$(wrk -t2 -c64 -d"${DUR}s" --latency -H "X-API-Key: $KEY" "$2" 2>&1)
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '  %-44s %9s req/s   p50 %-9s p99 %-9s%s\n' "$1" "$rps" "$p50" "$p99" \
    "${non2xx:+   (non-2xx: $non2xx)}"
}
for limiter in on off; do
  if [ "$limiter" = on ]; then rate=1000000000; else rate=0; fi
  api_start QB_API_RATE_PER_S=$rate QB_API_RATE_BURST=1000000000 \
    QB_API_PG_POOL=8 QB_API_REDIS_POOL=32
  KEY=$(api_py - <<'PY'
import qbapi as q
print(q.setup()["viewer"]["key"])
PY
)
  echo "rate limiter $limiter (64 connections, ${DUR} s):"
  run "GET /api/v1/market/quote/BENCH (Redis)" "$API/api/v1/market/quote/BENCH"
  run "GET /api/v1/market/bars/BENCH?limit=100 (PostgreSQL)" "$API/api/v1/market/bars/BENCH?timeframe=1d&limit=100"
  echo "  qb-api RSS after: $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$API_PID/status)"
  kill -TERM "$API_PID"; wait "$API_PID" 2>/dev/null || true
  psql "$API_DSN" -qAtc "TRUNCATE api.users CASCADE" >/dev/null
done
