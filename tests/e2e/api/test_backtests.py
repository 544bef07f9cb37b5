"""test_backtests.py — /api/v1/backtests* against the real qb-backtest (run by
tests/e2e/test_api_backtests.sh: bars of APIBT1 and APIBT2 in md.bars, qb-backtest
and qb-api on the test database)."""
import html
import random
import urllib.parse

import qbapi as q

c = q.setup()
T = c["trader"]["key"]
V = c["viewer"]["jwt"]
BT = "/api/v1/backtests"
TAG = "%06d" % random.randrange(10 ** 6)
BASE = {"strategy": "sma_cross", "params": {"fast": 5, "slow": 20},
        "symbols": ["APIBT1", "APIBT2"], "timeframe": "1d",
        "settings": {"sizing": "percent_equity", "sizing_value": 0.4}}


def body(**kw):
    b = dict(BASE)
    for k, v in kw.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def bad(b, field, status=400, what=""):
    r = q.req("POST", BT, auth=T, body=b)
    q.check_error(r, status, field=field, what="submit %s" % (what or field))
    return r


def finished(run, seconds=90):
    def done():
        r = q.req("GET", BT + "/" + run, auth=V)
        return r if r.status == 200 and r.json["status"] in ("finished", "failed") else None
    r = q.wait_for(done, seconds, "run %s to finish" % run)
    q.check(r is not None and r.json["status"] == "finished", "run %s finished" % run, r)
    return r


# ---- submit: 4xx, every field named -------------------------------------------------------
bad(body(strategy=None), "strategy", what="no strategy")
bad(body(strategy="no_such_strategy"), "strategy", what="unknown strategy")
bad(body(params={"fast": 30, "slow": 20}), "params", what="slow <= fast")
bad(body(params={"fast": "x"}), "params", what="params of the wrong type")
bad(body(params=[1, 2]), "params", what="params not an object")
bad(body(symbols=[]), "symbols", what="no symbols")
bad(body(symbols="APIBT1"), "symbols", what="symbols not an array")
bad(body(symbols=["APIBT1", "APIBT1"]), "symbols[1]", what="a symbol twice")
bad(body(symbols=["APIBT1", "bad symbol"]), "symbols[1]", what="not a symbol")
r = bad(body(symbols=["APIBT1", "NOSUCHSYM"]), "symbols", what="unknown symbol")
q.check("NOSUCHSYM" in r.text, "the unknown symbol is named", r)
bad(body(timeframe="7x"), "timeframe")
bad(body(timeframe="1h"), "timeframe", what="no bars of the timeframe")
bad(body(start="2030-01-01"), "start", what="no bars in the period")
bad(body(end="2001-01-01"), "end", what="no bars before the end")
bad(body(timeframe=None), "timeframe", what="no timeframe")
bad(body(start="2019-06-01", end="2019-01-01"), "end", what="end before start")
bad(body(start="yesterday"), "start")
bad(body(fill="later"), "fill")
bad(body(initial_cash=-5), "initial_cash")
bad(body(commission="percent:x"), "commission")
bad(body(slippage_bps=-1), "slippage_bps")
bad(body(settings={"sizing": "bogus"}), "settings.sizing")
bad(body(settings={"no_such_setting": 1}), "settings.no_such_setting")
bad(body(settings={"from": "2019-01-01"}), "settings.from")
bad(body(settings=["sizing=all_in"]), "settings", what="settings not an object")
bad(body(grid={"fast": []}), "grid.fast", what="empty axis")
bad(body(grid={"fast": [{"x": 1}]}), "grid.fast", what="axis value not a scalar")
bad(body(grid={"fast": [30, 40], "slow": [10, 20]}), "grid", what="every combination refused")
bad(body(grid={"fast": [5, 10]}, objective="no_such_metric"), "objective")
bad(body(random_samples=0), "random_samples")
bad(body(walk_forward={"train": 100}, grid={"fast": [5, 10]}), "walk_forward.test",
    what="walk-forward without test")
bad(body(walk_forward={"train": 100, "test": "10d"}, grid={"fast": [5, 10]}), "walk_forward",
    what="steps mixed with durations")
bad(body(walk_forward={"train": 100, "test": 50, "bogus": 1}, grid={"fast": [5, 10]}),
    "walk_forward.bogus")
bad(body(walk_forward={"train": "ten", "test": 50}, grid={"fast": [5, 10]}), "walk_forward.train")
bad(body(random_samples=3), "grid", what="random search without a grid")
bad(body(run_id="has space"), "run_id")
bad(body(extra=1), "extra", what="unknown field")
r = q.req("POST", BT, auth=V, body=body())
q.check(r.status == 403, "a viewer cannot submit", r)
q.check(q.sql("SELECT count(*) FROM api.audit WHERE action = 'backtest_submit'")[0][0] == "0",
        "nothing was submitted by the refused requests")

# ---- a one-run backtest ------------------------------------------------------------------------
RUN = "bt-%s-one" % TAG
r = q.req("POST", BT, auth=T, body=body(run_id=RUN, commission="percent:0.05", slippage_bps=2,
                                        initial_cash="50000"))
q.check(r.status == 202 and r.json["run_id"] == RUN and r.json["kind"] == "backtest"
        and r.json["status"] == "queued", "submit a backtest", r)
q.check(r.headers.get("location") == BT + "/" + RUN, "Location of the run", r)
r = q.req("GET", BT + "/" + RUN, auth=V)
q.check(r.status == 200 and r.json["status"] in ("queued", "running", "finished"),
        "status right after the submit", r)
r = q.req("POST", BT, auth=T, body=body(run_id=RUN))
q.check_error(r, 409, field="run_id", what="a run id used twice")

r = finished(RUN)
st = r.json
q.check(st["progress"] == 1 and st["percent"] == 100 and st["done"] is True, "progress 100%", r)
q.check(st["kind"] == "backtest" and st["strategy"] == "sma_cross"
        and st["params"] == {"fast": 5, "slow": 20}
        and st["symbols"] == ["APIBT1", "APIBT2"] and st["timeframe"] == "1d", "run fields", r)
rq = st.get("request") or {}
q.check(rq.get("strategy_name") == "sma_cross" and rq.get("initial_cash") == "5000000000000"
        and "commission=percent:0.05" in rq.get("settings", [])
        and "slippage_bps=2" in rq.get("settings", [])
        and rq.get("requested_by", "").startswith("trader1"), "the stored request", r)

r = q.req("GET", BT + "/" + RUN + "/result", auth=V)
res = r.json or {}
row = q.sql("SELECT final_equity, trades_closed, (SELECT count(*) FROM backtest.trades WHERE "
            "run_id = '%s') FROM backtest.metrics WHERE run_id = '%s'" % (RUN, RUN))[0]
m = res.get("metrics") or {}
q.check(r.status == 200 and res["kind"] == "backtest" and res["params"] == {"fast": 5, "slow": 20},
        "result", r)
q.check(abs(float(m.get("final_equity", 0)) - int(row[0]) / 1e8) < 1e-6
        and m.get("trades_closed") == int(row[1]) and int(row[1]) > 0,
        "result metrics = stored metrics (%s)" % row, r)
q.check(res["counts"]["trades"] == int(row[2]) and res["benchmark"] is not None,
        "result counts and benchmark", r)
q.check(abs(float(m.get("initial_equity", 0)) - 50000) < 1e-9, "initial cash applied", r)

# trades: pages
ntr = int(row[2])
seen, cur, pages = [], None, 0
while True:
    url = BT + "/" + RUN + "/trades?limit=3" + ("&cursor=" + cur if cur else "")
    r = q.req("GET", url, auth=V)
    if not q.check(r.status == 200, "trades page", r):
        break
    seen += [t["seq"] for t in r.json["items"]]
    pages += 1
    cur = r.json["next_cursor"]
    if not cur or pages > 1000:
        break
q.check(seen == sorted(seen) and len(seen) == ntr and len(set(seen)) == ntr,
        "trades pages cover every trade once (%d of %d)" % (len(seen), ntr))
r = q.req("GET", BT + "/" + RUN + "/trades?limit=1", auth=V)
t0 = r.json["items"][0]
q.check(t0["side"] in ("long", "short") and t0["symbol"] in ("APIBT1", "APIBT2")
        and float(t0["qty"]) > 0 and t0["entry_time"].endswith("Z"), "a trade's fields", r)
r = q.req("GET", BT + "/" + RUN + "/trades?symbol=APIBT2&limit=1000", auth=V)
q.check(r.status == 200 and all(t["symbol"] == "APIBT2" for t in r.json["items"]),
        "trades of one symbol", r)
q.check_error(q.req("GET", BT + "/" + RUN + "/trades?cursor=!!", auth=V), 400, field="cursor")
q.check_error(q.req("GET", BT + "/" + RUN + "/trades?cursor=YWJj", auth=V), 400, field="cursor",
              what="a cursor that is not ours")
q.check_error(q.req("GET", BT + "/" + RUN + "/trades?limit=0", auth=V), 400, field="limit")
q.check_error(q.req("GET", BT + "/" + RUN + "/trades?bogus=1", auth=V), 400, field="bogus")

# equity: whole and bucketed
npts = int(q.sql("SELECT count(*) FROM backtest.equity WHERE run_id = '%s'" % RUN)[0][0])
r = q.req("GET", BT + "/" + RUN + "/equity", auth=V)
eq = r.json or {}
q.check(r.status == 200 and eq["points_total"] == npts and len(eq["items"]) == npts and npts > 400,
        "the whole equity curve (%d points)" % npts, r)
full_min_dd = min(p["drawdown"] for p in eq["items"])
last = eq["items"][-1]
q.check(abs(float(last["equity"]) - int(row[0]) / 1e8) < 1e-6, "last equity = final equity", r)
r = q.req("GET", BT + "/" + RUN + "/equity?points=10", auth=V)
ds = r.json or {"items": []}
q.check(r.status == 200 and 2 <= len(ds["items"]) <= 10 and ds["points_total"] == npts,
        "equity bucketed to 10 points", r)
q.check(ds["items"] and ds["items"][-1]["time"] == last["time"]
        and abs(min(p["drawdown"] for p in ds["items"]) - full_min_dd) < 1e-12,
        "buckets keep the last point and the deepest drawdown", r)
q.check_error(q.req("GET", BT + "/" + RUN + "/equity?points=1", auth=V), 400, field="points")
q.check_error(q.req("GET", BT + "/" + RUN + "/windows", auth=V), 409, what="windows of a backtest")

# the HTML report
r = q.req("GET", BT + "/" + RUN + "/report", auth=V)
q.check(r.status == 200 and r.headers.get("content-type", "").startswith("text/html"),
        "report is HTML", r)
q.check("<svg" in r.text and RUN in r.text and "Trades (%d)" % ntr in r.text
        and "<script" not in r.text.lower() and "http" not in r.text.replace("http-equiv", ""),
        "report: charts, the run, its trades, nothing external", r)
fe = "%.2f" % (int(row[0]) / 1e8)
q.check(fe in html.unescape(r.text) and "APIBT1, APIBT2" in r.text,
        "report shows the symbols and the final equity %s" % fe)

# unknown and malformed runs, on every run route
for sub in ("", "/result", "/trades", "/equity", "/windows", "/report"):
    q.check_error(q.req("GET", BT + "/no-such-run" + sub, auth=V), 404, field="run",
                  what="unknown run " + sub)
    q.check_error(q.req("GET", BT + "/" + urllib.parse.quote("bad run!") + sub, auth=V), 400,
                  field="run", what="malformed run " + sub)

# ---- runs that are not finished (fixture rows: the service's states) ------------------------
q.sql("INSERT INTO backtest.runs (run_id, kind, status, request, strategy, progress) VALUES "
      "('fx-%s-running', 'backtest', 'running', '\\x', 'sma_cross', 0.42), "
      "('fx-%s-failed', 'backtest', 'failed', '\\x', 'sma_cross', 0.1)" % (TAG, TAG))
q.sql("UPDATE backtest.runs SET error = 'no bars of ZZZ' WHERE run_id = 'fx-%s-failed'" % TAG)
r = q.req("GET", BT + "/fx-%s-running" % TAG, auth=V)
q.check(r.status == 200 and r.json["status"] == "running" and r.json["percent"] == 42
        and r.json["done"] is False, "a running run's progress", r)
for sub in ("/result", "/trades", "/equity", "/report"):
    r = q.req("GET", BT + "/fx-%s-running" % TAG + sub, auth=V)
    q.check_error(r, 409, what="%s while running" % sub)
r = q.req("GET", BT + "/fx-%s-failed/result" % TAG, auth=V)
q.check_error(r, 409, what="result of a failed run")
q.check("no bars of ZZZ" in r.text, "the failure is said", r)
# a run the gateway sent that no replica has taken yet: queued
q.sql("INSERT INTO api.audit (actor, action, target, detail) VALUES ('trader1', "
      "'backtest_submit', 'fx-%s-queued', '{\"kind\":\"grid\",\"strategy\":\"sma_cross\","
      "\"params\":{},\"symbols\":[\"APIBT1\"],\"timeframe\":\"1d\"}')" % TAG)
r = q.req("GET", BT + "/fx-%s-queued" % TAG, auth=V)
q.check(r.status == 200 and r.json["status"] == "queued" and r.json["kind"] == "grid"
        and r.json["symbols"] == ["APIBT1"], "a queued run", r)
q.check_error(q.req("GET", BT + "/fx-%s-queued/result" % TAG, auth=V), 409,
              what="result of a queued run")

# ---- a walk-forward and a grid search ---------------------------------------------------------
GRID = {"fast": [5, 10], "slow": [20, 40]}
WF = "bt-%s-wf" % TAG
r = q.req("POST", BT, auth=T, body=body(run_id=WF, grid=GRID, objective="total_return",
                                        walk_forward={"train": 120, "test": 60, "windows": 3}))
q.check(r.status == 202 and r.json["kind"] == "walk_forward" and r.json["combinations"] == 4,
        "submit a walk-forward", r)
GR = "bt-%s-grid" % TAG
r = q.req("POST", BT, auth=T, body=body(run_id=GR, grid=GRID, objective="sharpe"))
q.check(r.status == 202 and r.json["kind"] == "grid", "submit a grid search", r)
RND = None
r = q.req("POST", BT, auth=T, body=body(grid={"fast": [3, 5, 8, 10], "slow": [20, 30, 40]},
                                        random_samples=3, random_seed=7))
q.check(r.status == 202 and r.json["kind"] == "grid" and r.json["combinations"] == 3
        and len(r.json["run_id"]) == 36, "a random search with a generated run id", r)
if r.status == 202:
    RND = r.json["run_id"]

finished(WF)
r = q.req("GET", BT + "/" + WF + "/windows", auth=V)
w = (r.json or {}).get("items", [])
q.check(r.status == 200 and len(w) == 3 and [x["window_index"] for x in w] == [0, 1, 2],
        "three walk-forward windows", r)
q.check(all(x["params"] is None or set(x["params"]) == {"fast", "slow"} for x in w)
        and all(x["is_from"] < x["oos_from"] <= x["oos_to"] for x in w),
        "windows: selections and periods", r)
n_w = q.sql("SELECT count(*) FROM backtest.windows WHERE run_id = '%s'" % WF)[0][0]
q.check(n_w == "3", "stored windows")
r = q.req("GET", BT + "/" + WF + "/result", auth=V)
q.check(r.status == 200 and r.json["kind"] == "walk_forward" and r.json["counts"]["windows"] == 3
        and r.json["summary"] is not None, "walk-forward result", r)
r = q.req("GET", BT + "/" + WF + "/report", auth=V)
q.check(r.status == 200 and "Walk-forward windows (3)" in r.text, "walk-forward report", r)

finished(GR)
r = q.req("GET", BT + "/" + GR + "/result", auth=V)
g = r.json or {}
top = g.get("top") or []
q.check(r.status == 200 and g["kind"] == "grid" and len(top) == 4
        and [x["rank"] for x in top] == sorted(x["rank"] for x in top), "grid ranking", r)
q.check(top and g["params"] == {**{"fast": 5, "slow": 20}, **top[0]["params"]},
        "the result's parameters are the best combination's", r)
r = q.req("GET", BT + "/" + GR + "/report", auth=V)
q.check(r.status == 200 and "Best combinations" in r.text, "grid report", r)
if RND:
    finished(RND)
    r = q.req("GET", BT + "/" + RND + "/result", auth=V)
    q.check(r.status == 200 and len(r.json.get("top") or []) == 3, "random search: 3 scored", r)

# ---- the list ---------------------------------------------------------------------------------
r = q.req("GET", BT, auth=V)
items = (r.json or {}).get("items", [])
ids = [x["run_id"] for x in items]
q.check(r.status == 200 and {RUN, WF, GR, "fx-%s-queued" % TAG} <= set(ids), "list has the runs", r)
q.check(ids.index(GR) < ids.index(RUN), "newest first", r)
one = [x for x in items if x["run_id"] == RUN][0]
q.check(one["status"] == "finished" and one["trades"] == int(row[1])
        and abs(float(one["final_equity"]) - int(row[0]) / 1e8) < 1e-6, "list row", one)
r = q.req("GET", BT + "?status=queued", auth=V)
q.check(r.status == 200 and [x["run_id"] for x in r.json["items"]] == ["fx-%s-queued" % TAG],
        "status filter: queued", r)
r = q.req("GET", BT + "?kind=walk_forward", auth=V)
q.check(r.status == 200 and [x["run_id"] for x in r.json["items"]] == [WF], "kind filter", r)
got, cur = [], None
for _ in range(50):
    r = q.req("GET", BT + "?limit=2" + ("&cursor=" + cur if cur else ""), auth=V)
    if not q.check(r.status == 200, "list page", r):
        break
    got += [x["run_id"] for x in r.json["items"]]
    cur = r.json["next_cursor"]
    if not cur:
        break
q.check(got == ids, "list pages = the whole list", got)
q.check_error(q.req("GET", BT + "?status=lost", auth=V), 400, field="status")
q.check_error(q.req("GET", BT + "?kind=x", auth=V), 400, field="kind")
q.check_error(q.req("GET", BT + "?cursor=Zm9v", auth=V), 400, field="cursor")
q.check_error(q.req("GET", BT + "?limit=5000", auth=V), 400, field="limit")

# every submit was audited
n = q.sql("SELECT count(*) FROM api.audit WHERE action = 'backtest_submit' AND actor = 'trader1'")
q.check(int(n[0][0]) >= 4, "submits audited")
q.done()
