"""test_market_strat.py — strategies, features and signals routes (run by
tests/e2e/test_api_market_strat.sh, with qb-features and qb-execution on the
test database)."""
import datetime
import time
import os
import subprocess
import uuid

import qbapi as q
from qbapi import check, check_error, req

c = q.setup()
V, T = c["viewer"]["key"], c["trader"]["key"]
ADM = c["admin"]["jwt"]
TAG = uuid.uuid4().hex[:6]
SID = "api-sma-" + TAG
SYM = "STR" + TAG.upper()
REDIS = os.environ["QB_REDIS_URL"]


def strat(sid):
    r = req("GET", "/api/v1/strategies/" + sid, auth=V)
    return r.json if r.status == 200 else None


# ---- create --------------------------------------------------------------------------------
body = {"strategy_id": SID, "kind": "sma_cross", "params": {"fast": 2, "slow": 3},
        "symbols": [SYM.lower()], "timeframe": "1d", "account": "paper-" + TAG}
check_error(req("POST", "/api/v1/strategies", auth=V, body=body), 403, what="viewer create")
r = req("POST", "/api/v1/strategies", auth=T, body=body)
check(r.status == 202 and r.json["strategy_id"] == SID and r.json["params"]["fast"] == 2
      and r.json["params"]["slow"] == 3 and "allow_short" in r.json["params"]
      and r.headers.get("location") == "/api/v1/strategies/" + SID, "create 202", r)
s = q.wait_for(lambda: strat(SID), what="qb-features applied the strategy")
check(s and s["kind"] == "sma_cross" and s["symbols"] == [SYM] and s["timeframe"] == "1d"
      and s["account"] == "paper-" + TAG and s["enabled"] is True and s["mode"] == "paper"
      and s["live_approval"] is None and s["params"]["fast"] == 2, "strategy %r" % (s,))
r = req("GET", "/api/v1/strategies?limit=1000", auth=V)
check(r.status == 200 and SID in [x["strategy_id"] for x in r.json["items"]], "in the list", r)
r = req("GET", "/api/v1/strategies?account=paper-" + TAG, auth=V)
check(r.status == 200 and [x["strategy_id"] for x in r.json["items"]] == [SID], "by account", r)
check(q.sql("SELECT count(*) FROM api.audit WHERE action = 'strategy_create' AND target = '%s'"
            % SID) == [["1"]], "create audited")
check_error(req("POST", "/api/v1/strategies", auth=T, body=body), 409, field="strategy_id",
            what="duplicate")
for b, field in [(dict(body, strategy_id="x" + TAG, kind="nope"), "kind"),
                 (dict(body, strategy_id="x" + TAG, params={"fast": 0}), "params.fast"),
                 (dict(body, strategy_id="x" + TAG, params={"fsat": 1}), "params.fsat"),
                 (dict(body, strategy_id="x" + TAG, params={"fast": 5, "slow": 3}), "params"),
                 (dict(body, strategy_id="x" + TAG, params=[1]), "params"),
                 (dict(body, strategy_id="x" + TAG, symbols=[]), "symbols"),
                 (dict(body, strategy_id="x" + TAG, symbols=["a b"]), "symbols"),
                 (dict(body, strategy_id="x" + TAG, timeframe="2d"), "timeframe"),
                 (dict(body, strategy_id="bad id"), "strategy_id"),
                 (dict(body, strategy_id="x" + TAG, account="a/b"), "account"),
                 (dict(body, strategy_id="x" + TAG, extra=1), "extra"),
                 ({k: v for k, v in body.items() if k != "kind"}, "kind")]:
    check_error(req("POST", "/api/v1/strategies", auth=T, body=b), 400, field=field,
                what="create bad %s" % field)
check(strat("x" + TAG) is None, "nothing created by the bad requests")
time.sleep(0.5)  # qb-features reloads its strategies every 100 ms: let it see this one

# ---- bars -> features and signals (qb-features at work) ------------------------------------
# down (no cross), up (LONG), down (FLAT), up (LONG)
closes = [20 - i for i in range(10)] + [12 + i for i in range(9)] + [19 - i for i in range(8)] \
    + [13 + i for i in range(6)]
start = datetime.date(2024, 3, 1)
csv = os.path.join(os.environ["API_T"], "strat.csv")
with open(csv, "w") as f:
    f.write("Date,Open,High,Low,Close,Adj Close,Volume\n")
    for i, px in enumerate(closes):
        f.write("%s,%d,%d,%d,%d,%d,1000\n" % (start + datetime.timedelta(days=i), px, px + 1,
                                             px - 1, px, px))
subprocess.run([os.path.join(os.environ["QB_BIN_DIR"], "qbctl"), "import", "--csv", csv,
                "--symbol", SYM, "--asset-class", "crypto"],
               env=dict(os.environ, QB_PG_DSN=q.DSN), check=True, capture_output=True)
last = (start + datetime.timedelta(days=len(closes) - 1)).isoformat() + "T00:00:00Z"


def latest_feature():
    r = req("GET", "/api/v1/features/%s?timeframe=1d" % SYM, auth=V)
    return r.json if r.status == 200 and r.json["items"][0]["time"] == last else None


j = q.wait_for(latest_feature, seconds=60, what="features of the last bar")
check(j and j["source"] == "redis" and j["items"][0]["history_bars"] == len(closes)
      and isinstance(j["items"][0]["values"], dict) and len(j["items"][0]["values"]) > 0,
      "latest features from Redis %r" % (j,))
redis_vals = j["items"][0]["values"] if j else {}
subprocess.run(["redis-cli", "-u", REDIS, "DEL", "qb:features:%s:1d" % SYM], check=True,
               capture_output=True)
r = req("GET", "/api/v1/features/%s" % SYM, auth=V)
check(r.status == 200 and r.json["source"] == "postgres" and r.json["items"][0]["time"] == last
      and set(r.json["items"][0]["values"]) == set(redis_vals), "latest from PostgreSQL", r)
r = req("GET", "/api/v1/features/%s?from=2024-03-01&to=2024-03-06" % SYM, auth=V)
check(r.status == 200 and [x["time"][:10] for x in r.json["items"]]
      == ["2024-03-0%d" % d for d in range(1, 6)] and r.json["next_cursor"] is None,
      "features range", r)
seen, cur = [], None
for _ in range(40):
    r = req("GET", "/api/v1/features/%s?from=2024-01-01&limit=7%s" % (SYM, "&cursor=" + cur
                                                                        if cur else ""), auth=V)
    if not check(r.status == 200, "features page", r):
        break
    seen += [x["time"] for x in r.json["items"]]
    cur = r.json["next_cursor"]
    if not cur:
        break
check(len(seen) == len(closes) and seen == sorted(set(seen)), "features pages: %d" % len(seen))
check_error(req("GET", "/api/v1/features/NOPE", auth=V), 404, field="symbol", what="features 404")
check_error(req("GET", "/api/v1/features/%s?timeframe=7m" % SYM, auth=V), 400, field="timeframe",
            what="features bad tf")
check_error(req("GET", "/api/v1/features/%s?cursor=eHl6" % SYM, auth=V), 400, field="cursor",
            what="features bad cursor")
check_error(req("GET", "/api/v1/features/%s?from=2024-03-05&to=2024-03-01" % SYM, auth=V), 400,
            field="to", what="features to<from")

# sma 2/3 cross: LONG on the way up, FLAT after the top, LONG again
sig = q.wait_for(lambda: (lambda r: r.json["items"] if r.status == 200 and
                          len(r.json["items"]) >= 3 else None)(
    req("GET", "/api/v1/signals?strategy=" + SID, auth=V)), seconds=30, what="3 signals")
if sig:
    check([x["direction"] for x in sig[:3]] == ["long", "flat", "long"],
          "directions %r" % [x["direction"] for x in sig])
    times = [x["time"] for x in sig]
    check(times == sorted(times, reverse=True), "signals newest first %r" % times)
    check(sig[0]["direction"] == "long" and sig[1]["direction"] == "flat"
          and sig[0]["symbol"] == SYM and sig[0]["account"] == "paper-" + TAG
          and sig[0]["strategy"] == SID and isinstance(sig[0]["reference_price"], (int, float))
          and sig[0]["timeframe"] == "1d", "signal content %r" % sig[:2])
    pages, cur = [], None
    for _ in range(10):
        r = req("GET", "/api/v1/signals?strategy=%s&limit=1%s" % (SID, "&cursor=" + cur
                                                                  if cur else ""), auth=V)
        pages += r.json["items"]
        cur = r.json["next_cursor"]
        if not cur:
            break
    check([x["signal_id"] for x in pages] == [x["signal_id"] for x in sig], "signals pages")
    r = req("GET", "/api/v1/signals?symbol=%s&account=paper-%s&to=%s" % (SYM.lower(), TAG,
                                                                        sig[0]["time"]), auth=V)
    check(r.status == 200 and [x["signal_id"] for x in r.json["items"]]
          == [x["signal_id"] for x in sig[1:]], "signals filters + to", r)
r = req("GET", "/api/v1/signals?strategy=nope-" + TAG, auth=V)
check(r.status == 200 and r.json["items"] == [], "no signals", r)
check_error(req("GET", "/api/v1/signals?cursor=YWJj", auth=V), 400, field="cursor",
            what="signals bad cursor")
check_error(req("GET", "/api/v1/signals?symbol=a%20b", auth=V), 400, field="symbol",
            what="signals bad symbol")
check_error(req("GET", "/api/v1/signals?limit=5000", auth=V), 400, field="limit",
            what="signals limit")

# ---- params -----------------------------------------------------------------------------------
r = req("PUT", "/api/v1/strategies/%s/params" % SID, auth=T, body={"params": {"fast": 3,
                                                                         "slow": 5}})
check(r.status == 202 and r.json["params"]["slow"] == 5, "params 202", r)
q.wait_for(lambda: (strat(SID) or {}).get("params", {}).get("slow") == 5, what="params applied")
s = strat(SID)
check(s and s["params"]["fast"] == 3 and s["symbols"] == [SYM] and s["kind"] == "sma_cross",
      "params kept the rest %r" % (s,))
r = req("PUT", "/api/v1/strategies/%s/params" % SID, auth=T,
        body={"kind": "rsi_reversion", "params": {"period": 5}, "symbols": [SYM, "OTHER"]})
check(r.status == 202, "params kind change", r)
q.wait_for(lambda: (strat(SID) or {}).get("kind") == "rsi_reversion", what="kind applied")
check(strat(SID)["symbols"] == [SYM, "OTHER"], "symbols changed")
check_error(req("PUT", "/api/v1/strategies/%s/params" % SID, auth=T, body={"params": {"period": 1}}),
            400, field="params.period", what="params bad")
check_error(req("PUT", "/api/v1/strategies/%s/params" % SID, auth=T, body={"fast": 1}), 400,
            field="fast", what="params unknown field")
check_error(req("PUT", "/api/v1/strategies/%s/params" % SID, auth=T, body={"kind": "x"}), 400,
            field="params", what="params missing")
check_error(req("PUT", "/api/v1/strategies/nope-%s/params" % TAG, auth=T, body={"params": {}}),
            404, field="strategy", what="params 404")
check_error(req("PUT", "/api/v1/strategies/%s/params" % SID, auth=V, body={"params": {}}),
            403, what="viewer params")

# ---- enable / disable -----------------------------------------------------------------------------
r = req("POST", "/api/v1/strategies/%s/disable" % SID, auth=T)
check(r.status == 202 and r.json["enabled"] is False, "disable 202", r)
q.wait_for(lambda: (strat(SID) or {}).get("enabled") is False, what="disabled")
r = req("GET", "/api/v1/strategies?enabled=false&account=paper-" + TAG, auth=V)
check(r.status == 200 and [x["strategy_id"] for x in r.json["items"]] == [SID], "filter", r)
r = req("POST", "/api/v1/strategies/%s/enable" % SID, auth=T)
check(r.status == 202, "enable 202", r)
q.wait_for(lambda: (strat(SID) or {}).get("enabled") is True, what="enabled")
check_error(req("POST", "/api/v1/strategies/nope-%s/enable" % TAG, auth=T), 404,
            field="strategy", what="enable 404")
check_error(req("POST", "/api/v1/strategies/%s/enable" % SID, auth=T, body={"x": 1}), 400,
            what="enable with a body")

# ---- mode and live approval (qb-execution) ----------------------------------------------------------
r = req("PUT", "/api/v1/strategies/%s/mode" % SID, auth=T, body={"mode": "off"})
check(r.status == 202 and r.json["account"] == "paper-" + TAG, "mode off 202", r)
q.wait_for(lambda: (strat(SID) or {}).get("mode") == "off", what="mode off applied")
check(q.sql("SELECT mode FROM trading.strategy_modes WHERE strategy_id = '%s'" % SID)
      == [["backtest"]], "execution stores off as backtest")
check_error(req("PUT", "/api/v1/strategies/%s/mode" % SID, auth=T, body={"mode": "live"}), 403,
            field="mode", what="trader cannot go live")
check_error(req("POST", "/api/v1/strategies/%s/approve-live" % SID, auth=T, body={}), 403,
            what="trader cannot approve")
r = req("POST", "/api/v1/strategies/%s/approve-live" % SID, auth=ADM,
        body={"rollout_pct": 10, "reason": "reviewed"})
check(r.status == 202 and r.json["mode"] == "live" and r.json["rollout_pct"] == 10,
      "approve 202", r)
s = q.wait_for(lambda: (lambda x: x if x and x["mode"] == "live" else None)(strat(SID)),
               what="live applied")
check(s and s["rollout_pct"] == 10 and s["live_approval"]
      and s["live_approval"]["approved_by"] == "admin" and s["live_approval"]["approved_at"],
      "live approval %r" % (s,))
r = req("PUT", "/api/v1/strategies/%s/mode" % SID, auth=T, body={"mode": "paper"})
check(r.status == 202, "mode paper", r)
s = q.wait_for(lambda: (lambda x: x if x and x["mode"] == "paper" else None)(strat(SID)),
               what="paper applied")
check(s and s["live_approval"] is None and s["rollout_pct"] is None, "approval cleared %r" % (s,))
r = req("PUT", "/api/v1/strategies/%s/mode" % SID, auth=ADM, body={"mode": "live"})
check(r.status == 202 and r.json["rollout_pct"] == 100, "admin live via mode", r)
q.wait_for(lambda: (strat(SID) or {}).get("mode") == "live", what="live again")
for b, field in [({"mode": "on"}, "mode"), ({}, "mode"), ({"mode": "paper", "rollout_pct": 5},
                                                            "rollout_pct"),
                 ({"mode": "live", "rollout_pct": 0}, "rollout_pct"), ({"mode": "off", "x": 1},
                                                                       "x")]:
    check_error(req("PUT", "/api/v1/strategies/%s/mode" % SID, auth=ADM, body=b), 400,
                field=field, what="mode bad %s" % field)
check_error(req("POST", "/api/v1/strategies/%s/approve-live" % SID, auth=ADM,
                body={"rollout_pct": 101}), 400, field="rollout_pct", what="approve bad pct")
check_error(req("PUT", "/api/v1/strategies/nope-%s/mode" % TAG, auth=T, body={"mode": "off"}),
            404, field="strategy", what="mode 404")
check_error(req("POST", "/api/v1/strategies/nope-%s/approve-live" % TAG, auth=ADM, body={}), 404,
            field="strategy", what="approve 404")
n = q.sql("SELECT count(*) FROM api.audit WHERE target = '%s' AND action IN ('strategy_mode', "
          "'strategy_approve_live')" % SID)
check(n == [["4"]], "mode changes audited: %r" % n)

# ---- reads: 4xx --------------------------------------------------------------------------------------
check_error(req("GET", "/api/v1/strategies/nope-" + TAG, auth=V), 404, what="get 404")
check_error(req("GET", "/api/v1/strategies/bad%20id", auth=V), 400, field="strategy",
            what="get bad id")
check_error(req("GET", "/api/v1/strategies?enabled=maybe", auth=V), 400, field="enabled",
            what="list bad enabled")
r = req("GET", "/api/v1/strategies?limit=1", auth=V)
if r.status == 200 and r.json["next_cursor"]:
    r2 = req("GET", "/api/v1/strategies?limit=1&cursor=" + r.json["next_cursor"], auth=V)
    check(r2.status == 200 and all(x["strategy_id"] > r.json["items"][0]["strategy_id"]
                                   for x in r2.json["items"]), "strategies paging", r2)
q.done()
