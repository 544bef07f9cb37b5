"""test_market.py — market routes and ingest jobs (run by tests/e2e/test_api_market.sh).

Seeded by the shell script: ACT 1d (6 bars, 2:1 split ex 2024-01-04, 0.25
dividend ex 2024-01-08) and ACT 1h (2 bars), published (Redis has the latest
bars); PGO and BTC-USD 1d in PostgreSQL only. qb-data runs on the database.
API_NOREDIS is a second gateway whose Redis is unreachable.
"""
import os
import subprocess
import time
import uuid

import qbapi as q
from qbapi import check, check_error, req

c = q.setup()
V, T, A = c["viewer"]["key"], c["trader"]["key"], c["admin"]["jwt"]
NOREDIS = os.environ["API_NOREDIS"]
REDIS = os.environ["QB_REDIS_URL"]


def redis(*args):
    return subprocess.run(["redis-cli", "-u", REDIS] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


# ---- quote ------------------------------------------------------------------------------
r = req("GET", "/api/v1/market/quote/act", auth=V)
check(r.status == 200, "quote ACT", r)
j = r.json or {}
# finest held: 1h (no 1m/5m/15m), its last bar
check(j.get("source") == "redis" and j.get("timeframe") == "1h" and j.get("symbol") == "ACT"
      and j.get("time") == "2024-01-09T15:00:00Z" and j.get("close") == 53.5
      and j.get("volume") == 120 and j.get("open") == 53.25, "quote ACT content", r)
r = req("GET", "/api/v1/market/quote/ACT?timeframe=1d", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("timeframe") == "1d" and j.get("time") == "2024-01-09T00:00:00Z"
      and j.get("high") == 54 and j.get("low") == 52.5 and j.get("source") == "redis",
      "quote ACT 1d", r)
# PGO was never published: PostgreSQL answers
r = req("GET", "/api/v1/market/quote/PGO", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("source") == "postgres" and j.get("timeframe") == "1d"
      and j.get("close") == 11.25 and j.get("time") == "2024-02-02T00:00:00Z", "quote PGO pg", r)
# Redis is a cache: a coarser bar it holds answers (no PostgreSQL query on the fast path)
redis("DEL", "qb:md:last:ACT:1h")
r = req("GET", "/api/v1/market/quote/ACT", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("source") == "redis" and j.get("timeframe") == "1d",
      "quote: the finest bar Redis holds", r)
# Redis has nothing for ACT: PostgreSQL, finest first
redis("DEL", "qb:md:last:ACT:1d")
r = req("GET", "/api/v1/market/quote/ACT", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("source") == "postgres" and j.get("timeframe") == "1h"
      and j.get("close") == 53.5 and j.get("time") == "2024-01-09T15:00:00Z",
      "quote falls back when Redis lacks the keys", r)
# Redis down (second gateway): PostgreSQL
r = req("GET", "/api/v1/market/quote/ACT?timeframe=1d", auth=V, base=NOREDIS)
j = r.json or {}
check(r.status == 200 and j.get("source") == "postgres" and j.get("close") == 53.5,
      "quote with Redis down", r)
# a Redis value that is not a decimal is not echoed: PostgreSQL answers
redis("HSET", "qb:md:last:PGO:1d", "ts", "1", "ts_ms", "0", "open", "x", "high", "1", "low", "1",
      "close", "1", "volume", "1", "source", "evil\"")
r = req("GET", "/api/v1/market/quote/PGO", auth=V)
check(r.status == 200 and (r.json or {}).get("source") == "postgres", "garbage in Redis ignored", r)
redis("DEL", "qb:md:last:PGO:1d")
# 4xx
check_error(req("GET", "/api/v1/market/quote/NOPE", auth=V), 404, field="symbol", what="unknown")
check_error(req("GET", "/api/v1/market/quote/ACT?timeframe=1m", auth=V), 404, field="symbol",
            what="no bar at 1m")
check_error(req("GET", "/api/v1/market/quote/ACT?timeframe=2m", auth=V), 400, field="timeframe",
            what="bad timeframe")
check_error(req("GET", "/api/v1/market/quote/ACT?foo=1", auth=V), 400, field="foo",
            what="unknown param")
check_error(req("GET", "/api/v1/market/quote/A%20B", auth=V), 400, field="symbol",
            what="bad symbol")

# ---- batch ------------------------------------------------------------------------------
r = req("GET", "/api/v1/market/quotes?symbols=act,PGO,NOPE,ACT", auth=V)
j = r.json or {}
items = {i["symbol"]: i for i in j.get("items", [])}
check(r.status == 200 and set(items) == {"ACT", "PGO"} and j.get("missing") == ["NOPE"]
      and items["ACT"]["timeframe"] == "1h" and items["PGO"]["source"] == "postgres"
      and [i["symbol"] for i in j["items"]] == ["ACT", "PGO"], "batch quotes", r)
r = req("GET", "/api/v1/market/quotes?symbols=ACT,PGO", auth=V, base=NOREDIS)
check(r.status == 200 and all(i["source"] == "postgres" for i in (r.json or {}).get("items", []))
      and len(r.json["items"]) == 2, "batch with Redis down", r)
many = ",".join("S%d" % i for i in range(101))
check_error(req("GET", "/api/v1/market/quotes?symbols=" + many, auth=V), 400, field="symbols",
            what="101 symbols")
check_error(req("GET", "/api/v1/market/quotes?symbols=A,b%24d", auth=V), 400, field="symbols",
            what="bad symbol in list")
check_error(req("GET", "/api/v1/market/quotes", auth=V), 400, field="symbols", what="required")

# ---- bars -------------------------------------------------------------------------------
r = req("GET", "/api/v1/market/bars/ACT", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("adjust") == "raw" and len(j.get("items", [])) == 6
      and j["items"][0] == {"time": "2024-01-02T00:00:00Z", "open": 100, "high": 104, "low": 98,
                            "close": 102, "volume": 1000}
      and j.get("next_cursor") is None, "bars raw", r)
# split: bars before 2024-01-04 halved, volume doubled
r = req("GET", "/api/v1/market/bars/ACT?adjust=split", auth=V)
j = r.json or {}
check(r.status == 200 and j["items"][0]["close"] == 51 and j["items"][0]["volume"] == 2000
      and j["items"][1]["open"] == 51 and j["items"][2]["close"] == 52, "bars split", r)
# total: also x (1 - 0.25/53.5) before 2024-01-08; compare with qbctl bars --adjust total
out = subprocess.run([os.path.join(os.environ["QB_BIN_DIR"], "qbctl"), "bars", "ACT",
                      "--adjust", "total"], env=dict(os.environ, QB_PG_DSN=q.DSN),
                     capture_output=True, text=True, check=True).stdout.splitlines()[1:]
r = req("GET", "/api/v1/market/bars/ACT?adjust=total", auth=V)
api_rows = ["%s,%s,%s,%s,%s,%s" % (b["time"][:10], *(repr(b[k]) if isinstance(b[k], float)
                                                      else str(b[k]) for k in
                                                      ("open", "high", "low", "close", "volume")))
            for b in (r.json or {}).get("items", [])]
check(r.status == 200 and api_rows == out, "bars total == qbctl bars --adjust total: %r vs %r"
      % (api_rows, out), r)
# pages: limit 2 with the cursor, adjusted, equal the one read
seen, cur, pages = [], None, 0
while True:
    r = req("GET", "/api/v1/market/bars/ACT?adjust=total&limit=2"
            + ("&cursor=" + cur if cur else ""), auth=V)
    if not check(r.status == 200, "bars page", r):
        break
    seen += r.json["items"]
    pages += 1
    cur = r.json["next_cursor"]
    if not cur or pages > 5:
        break
full = req("GET", "/api/v1/market/bars/ACT?adjust=total", auth=V).json["items"]
check(seen == full and pages == 3, "adjusted pages glue to the full read (%d pages)" % pages)
seen, cur = [], None
for _ in range(5):
    r = req("GET", "/api/v1/market/bars/ACT?limit=4" + ("&cursor=" + cur if cur else ""), auth=V)
    seen += r.json["items"]
    cur = r.json["next_cursor"]
    if not cur:
        break
check([b["time"] for b in seen] == [b["time"] for b in full], "raw pages")
r = req("GET", "/api/v1/market/bars/ACT?from=2024-01-04&to=2024-01-09", auth=V)
check(r.status == 200 and [b["time"][:10] for b in r.json["items"]]
      == ["2024-01-04", "2024-01-05", "2024-01-08"], "bars from/to", r)
r = req("GET", "/api/v1/market/bars/ACT?timeframe=1h", auth=V)
check(r.status == 200 and len(r.json["items"]) == 2, "bars 1h", r)
r = req("GET", "/api/v1/market/bars/ACT?timeframe=1m", auth=V)
check(r.status == 200 and r.json["items"] == [] and r.json["next_cursor"] is None, "no 1m", r)
check_error(req("GET", "/api/v1/market/bars/NOPE", auth=V), 404, field="symbol", what="bars 404")
check_error(req("GET", "/api/v1/market/bars/ACT?adjust=half", auth=V), 400, field="adjust",
            what="bad adjust")
check_error(req("GET", "/api/v1/market/bars/ACT?from=yesterday", auth=V), 400, field="from",
            what="bad from")
check_error(req("GET", "/api/v1/market/bars/ACT?from=2024-01-05&to=2024-01-04", auth=V), 400,
            field="to", what="to before from")
check_error(req("GET", "/api/v1/market/bars/ACT?limit=0", auth=V), 400, field="limit",
            what="limit 0")
check_error(req("GET", "/api/v1/market/bars/ACT?cursor=***", auth=V), 400, field="cursor",
            what="bad cursor")
check_error(req("GET", "/api/v1/market/bars/ACT?cursor=YWJj", auth=V), 400, field="cursor",
            what="cursor not ours")

# ---- assets -----------------------------------------------------------------------------
r = req("GET", "/api/v1/market/assets", auth=V)
syms = [a["symbol"] for a in (r.json or {}).get("items", [])]
check(r.status == 200 and syms == sorted(syms) and {"ACT", "PGO", "BTC-USD"} <= set(syms),
      "assets", r)
r = req("GET", "/api/v1/market/assets?class=crypto", auth=V)
check(r.status == 200 and [a["symbol"] for a in r.json["items"]] == ["BTC-USD"]
      and r.json["items"][0]["class"] == "crypto", "assets by class", r)
r = req("GET", "/api/v1/market/assets?limit=1", auth=V)
r2 = req("GET", "/api/v1/market/assets?limit=1&cursor=" + r.json["next_cursor"], auth=V)
check(r2.status == 200 and r2.json["items"][0]["symbol"] == syms[1], "assets paging", r2)
check_error(req("GET", "/api/v1/market/assets?class=stock", auth=V), 400, field="class",
            what="bad class")

# ---- gaps -------------------------------------------------------------------------------
# ACT 1d on XNYS: 2024-01-02..09 stored except nothing missing (01-06/07 weekend)
r = req("GET", "/api/v1/market/gaps/ACT", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("calendar") == "XNYS" and j.get("stored") == 6
      and j.get("missing") == 0 and j.get("gaps") == [], "gaps none", r)
r = req("GET", "/api/v1/market/gaps/ACT?from=2024-01-02&to=2024-01-13", auth=V)
j = r.json or {}
check(r.status == 200 and j.get("missing") == 3 and len(j.get("gaps", [])) == 1
      and j["gaps"][0]["from"].startswith("2024-01-10") and j["gaps"][0]["bars"] == 3,
      "gaps 10-12 Jan", r)
r = req("GET", "/api/v1/market/gaps/BTC-USD?from=2024-02-01&to=2024-02-04", auth=V)
check(r.status == 200 and r.json["calendar"] == "24x7" and r.json["missing"] == 1,
      "gaps crypto 24x7", r)
check_error(req("GET", "/api/v1/market/gaps/NOPE", auth=V), 404, field="symbol", what="gaps 404")
check_error(req("GET", "/api/v1/market/gaps/ACT?timeframe=1w", auth=V), 400, field="timeframe",
            what="gaps 1w")
check_error(req("GET", "/api/v1/market/gaps/ACT?calendar=LSE", auth=V), 400, field="calendar",
            what="gaps bad calendar")

# ---- ingest jobs ------------------------------------------------------------------------
JOB = "api-job-" + uuid.uuid4().hex[:8]
SYN = "SYN" + uuid.uuid4().hex[:4].upper()


def job(name):
    r = req("GET", "/api/v1/ingest/jobs?limit=1000", auth=V)
    return next((x for x in (r.json or {}).get("items", []) if x["name"] == name), None)


body = {"name": JOB, "source": "synthetic", "symbols": [SYN.lower()], "timeframe": "1m",
        "interval_seconds": 86400, "lookback": "2h"}
check_error(req("POST", "/api/v1/ingest/jobs", auth=V, body=body), 403, what="viewer upsert")
r = req("POST", "/api/v1/ingest/jobs", auth=T, body=body)
check(r.status == 202 and r.json.get("name") == JOB and len(r.json.get("command_id", "")) == 36,
      "upsert 202", r)
j = q.wait_for(lambda: job(JOB), what="qb-data applied the job")
check(j and j["symbols"] == [SYN] and j["source"] == "synthetic" and j["interval_seconds"] == 86400
      and j["paused"] is False and j["last_run"] is None and j["depends_on"] == [],
      "job content %r" % (j,))
check(q.sql("SELECT count(*) FROM api.audit WHERE action = 'ingest_job_upsert' AND target = '%s'"
            % JOB) == [["1"]], "upsert audited")
r = req("POST", "/api/v1/ingest/jobs/%s/pause" % JOB, auth=T)
check(r.status == 202, "pause", r)
q.wait_for(lambda: (job(JOB) or {}).get("paused") is True, what="paused")
r = req("POST", "/api/v1/ingest/jobs/%s/resume" % JOB, auth=T)
check(r.status == 202, "resume", r)
q.wait_for(lambda: (job(JOB) or {}).get("paused") is False, what="resumed")
r = req("POST", "/api/v1/ingest/jobs/%s/run" % JOB, auth=T)
check(r.status == 202, "run now", r)
j = q.wait_for(lambda: (lambda x: x if x and x["last_run"] and x["last_run"]["status"] ==
                        "succeeded" else None)(job(JOB)), seconds=60, what="manual run done")
check(j and j["last_run"]["trigger"] == "manual" and j["last_run"]["rows"] > 0, "run %r" % (j,))
# the run published its bars: the quote of the new symbol is a 1m bar from Redis
r = req("GET", "/api/v1/market/quote/" + SYN, auth=V)
check(r.status == 200 and r.json["timeframe"] == "1m" and r.json["source"] == "redis",
      "quote of the ingested symbol", r)
r = req("GET", "/api/v1/market/quotes?symbols=%s,ACT,PGO&timeframe=1m" % SYN, auth=V)
j = r.json or {}
check(r.status == 200 and [(i["symbol"], i["source"], i["timeframe"]) for i in j["items"]]
      == [(SYN, "redis", "1m")] and j["missing"] == ["ACT", "PGO"], "batch from redis", r)
# a job depending on it, then deleting it: refused by qb-data (still there)
DEP = JOB + "-dep"
r = req("POST", "/api/v1/ingest/jobs", auth=T,
        body=dict(body, name=DEP, depends_on=[JOB], cron="0 18 * * 1-5",
                  time_zone="America/New_York", interval_seconds=None))
check(r.status == 202, "dependent job", r)
j = q.wait_for(lambda: job(DEP), what="dependent job applied")
check(j and j["depends_on"] == [JOB] and j["cron"] == "0 18 * * 1-5", "dep content %r" % (j,))
r = req("DELETE", "/api/v1/ingest/jobs/" + DEP, auth=T)
check(r.status == 202, "delete", r)
q.wait_for(lambda: job(DEP) is None, what="deleted")
r = req("DELETE", "/api/v1/ingest/jobs/" + JOB, auth=T)
q.wait_for(lambda: job(JOB) is None, what="deleted")
r = req("GET", "/api/v1/ingest/jobs?limit=1", auth=V)
check(r.status == 200 and "items" in r.json, "jobs list limit", r)
# 4xx
for b, field, status in [
        (dict(body, cron="61 * * * *", interval_seconds=None), "cron", 400),
        (dict(body, cron="0 1 * * *"), "cron", 400),               # both schedules
        (dict(body, timeframe="2m"), "timeframe", 400),
        (dict(body, symbols=[]), "symbols", 400),
        (dict(body, symbols=["BAD SYM"]), "symbols", 400),
        (dict(body, name="bad name"), "name", 400),
        (dict(body, lookback="forever"), "lookback", 400),
        (dict(body, range_from="2024-01-01"), "range_to", 400),
        (dict(body, time_zone="Mars/Olympus", cron="0 1 * * *", interval_seconds=None),
         "time_zone", 400),
        (dict(body, depends_on=["no-such-job"]), "depends_on", 422),
        (dict(body, source="csv", path="/etc/passwd"), "source", 403),
        (dict(body, colour="red"), "colour", 400),
        ({k: v for k, v in body.items() if k != "symbols"}, "symbols", 400)]:
    check_error(req("POST", "/api/v1/ingest/jobs", auth=T, body=b), status, field=field,
                what="upsert %s" % field)
check_error(req("POST", "/api/v1/ingest/jobs/no-such-job/pause", auth=T), 404, field="job",
            what="pause unknown")
check_error(req("DELETE", "/api/v1/ingest/jobs/no-such-job", auth=T), 404, field="job",
            what="delete unknown")
check_error(req("POST", "/api/v1/ingest/jobs/x/run", auth=V), 403, what="viewer run")
check_error(req("GET", "/api/v1/ingest/jobs?cursor=%%%%", auth=V), 400, field="cursor",
            what="jobs bad cursor")
q.done()
