"""test_risk.py — the risk routes of qb-api against running qb-risk and
qb-execution (started by test_api_risk.sh). Every write goes through the API
and its effect is read back from what the services stored."""
import json
import os
import subprocess
import time
import uuid

import qbapi as q

c = q.setup()
V, T, A = c["viewer"]["jwt"], c["trader"]["jwt"], c["admin"]["jwt"]
TAG = uuid.uuid4().hex[:8]
ACC = "apirisk-" + TAG       # limits, kill switch
ACC2 = "apirisk2-" + TAG     # platform-wide switch, VaR
SYM = os.environ["RISK_SYMBOL"]
BIN = os.environ["QB_BIN_DIR"]


def produce(topic, obj):
    subprocess.run([BIN + "/qbctl", "produce", topic], input=json.dumps(obj) + "\n", text=True,
                   check=True, capture_output=True)


def limits(acc, auth=V):
    r = q.req("GET", "/api/v1/risk/limits?account=" + acc, auth=auth)
    q.check(r.status == 200, "GET limits", r)
    return {l["kind"]: l for l in r.json["limits"]} if r.status == 200 else {}


def kill(acc=None, auth=V):
    r = q.req("GET", "/api/v1/risk/kill-switch" + ("?account=" + acc if acc else ""), auth=auth)
    q.check(r.status == 200, "GET kill-switch", r)
    return r.json or {}


def until_applied(send, applied, what, tries=15):
    """Send (a new command each time) until its effect shows: the consumer
    groups start at the end of the topics once their partitions are known."""
    for _ in range(tries):
        r = send()
        if not q.check(r.status == 202, what + ": 202", r):
            return None
        end = time.time() + 3
        while time.time() < end:
            if applied():
                return r
            time.sleep(0.1)
    q.check(False, what + ": never applied")
    return None


# ---- limits ----------------------------------------------------------------------------------
L = limits(ACC)
q.check(len(L) == 24, "24 limit kinds", L.keys())
dd = L.get("max_drawdown", {})
q.check(dd.get("value") is None and dd.get("default") == 0.2 and dd.get("hard_max") == 0.5
        and dd.get("in_force") == 0.2 and dd.get("unit") == "fraction" and dd.get("keyed") is False,
        "max_drawdown before any change", dd)
oq = L.get("max_order_qty", {})
q.check(oq.get("default") is None and oq.get("in_force") == oq.get("hard_max") == 1000000000
        and oq.get("keyed") is True and oq.get("keys") == [], "max_order_qty: hard max in force", oq)

body = {"account": ACC, "reason": "e2e limits",
        "limits": [{"kind": "max_order_qty", "value": 100},
                   {"kind": "max_position_qty", "value": "250.5", "key": "aapl"},
                   {"kind": "max_daily_loss", "value": "5000.25"}]}
put = until_applied(lambda: q.req("PUT", "/api/v1/risk/limits", auth=A, body=body),
                    lambda: limits(ACC).get("max_order_qty", {}).get("value") == 100,
                    "PUT limits")
if put:
    q.check(put.json.get("account") == ACC and len(put.json.get("command_id", "")) == 36
            and put.json.get("replace_all") is False, "PUT answer", put)
    q.check(put.json["limits"][1] == {"kind": "max_position_qty", "value": 250.5, "key": "AAPL"},
            "PUT echoes the normalised limits (key upper-cased)", put)
    L = limits(ACC)
    q.check(L["max_order_qty"]["in_force"] == 100 and "admin" in L["max_order_qty"]["updated_by"]
            and L["max_order_qty"]["updated_at"], "max_order_qty applied by qb-risk", L["max_order_qty"])
    pq = L["max_position_qty"]
    q.check(pq["value"] is None and len(pq["keys"]) == 1 and pq["keys"][0]["key"] == "AAPL"
            and pq["keys"][0]["value"] == 250.5 and pq["keys"][0]["in_force"] == 250.5,
            "per-symbol max_position_qty", pq)
    q.check(L["max_daily_loss"]["value"] == 5000.25, "max_daily_loss", L["max_daily_loss"])
    # qb-risk's own trail: audited with who, and a LIMITS_CHANGED event for the command
    rows = q.sql("SELECT outcome, issued_by, reason FROM risk.limit_audit WHERE account = '%s' "
                 "AND kind = 1" % ACC)
    q.check(rows and rows[0][0] == "applied" and rows[0][1].startswith("admin")
            and rows[0][2] == "e2e limits", "risk.limit_audit", rows)
    ev = q.wait_for(lambda: [e for e in q.req("GET", "/api/v1/risk/events?account=%s&kind="
                                              "limits_changed" % ACC, auth=V).json["items"]
                             if e["command_id"] == put.json["command_id"]],
                    what="LIMITS_CHANGED event")
    q.check(ev and ev[0]["account"] == ACC and ev[0]["severity"] == "info", "event", ev)
    # the gateway's audit trail
    au = q.sql("SELECT actor, detail->>'command_id' FROM api.audit WHERE action = "
               "'risk_limits_set' AND target = '%s'" % ACC)
    q.check([x for x in au if x[1] == put.json["command_id"] and x[0] == "admin"], "api.audit", au)

# replace_all: the list becomes the account's limits
put2 = q.req("PUT", "/api/v1/risk/limits", auth=c["admin"]["key"],
             body={"account": ACC, "replace_all": True,
                   "limits": [{"kind": "max_drawdown", "value": 0.3}]})
q.check(put2.status == 202 and put2.json["replace_all"] is True, "PUT replace_all", put2)
q.wait_for(lambda: limits(ACC)["max_drawdown"]["value"] == 0.3, what="replace_all applied")
L = limits(ACC)
q.check(L["max_order_qty"]["value"] is None and L["max_position_qty"]["keys"] == []
        and L["max_daily_loss"]["value"] is None and L["max_drawdown"]["in_force"] == 0.3,
        "replace_all removed the others", L)

# the 4xx of PUT: nothing of a refused request reaches qb-risk
BAD = [
    ({"account": ACC}, 400, "limits"),
    ({"account": ACC, "limits": {"max_order_qty": 1}}, 400, "limits"),
    ({"account": ACC, "limits": []}, 400, "limits"),
    ({"account": ACC, "limits": [{"kind": "max_order_size", "value": 1}]}, 400, "limits[0].kind"),
    ({"account": ACC, "limits": [{"value": 1}]}, 400, "limits[0].kind"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty"}]}, 400, "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": -1}]}, 400, "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": "1.123456789"}]}, 400,
     "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": True}]}, 400, "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_risk_per_trade", "value": 0.5}]}, 422,
     "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_leverage", "value": 2, "key": "AAPL"}]}, 400,
     "limits[0].key"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": 2, "key": "A B"}]}, 400,
     "limits[0].key"),
    ({"account": ACC, "limits": [{"kind": "sizing_rule", "value": 4}]}, 400, "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "lot_size", "value": 0}]}, 400, "limits[0].value"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": 1, "symbol": "X"}]}, 400,
     "limits[0].symbol"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": 1},
                                 {"kind": "max_order_qty", "value": 2}]}, 400, "limits[1]"),
    ({"account": ACC, "limits": [3]}, 400, "limits[0]"),
    ({"account": "bad account", "limits": [{"kind": "max_order_qty", "value": 1}]}, 400, "account"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": 1}], "replace": True}, 400,
     "replace"),
    ({"account": ACC, "limits": [{"kind": "max_order_qty", "value": 1}], "replace_all": 1}, 400,
     "replace_all"),
]
for b, st, field in BAD:
    q.check_error(q.req("PUT", "/api/v1/risk/limits", auth=A, body=b), st, field,
                  "PUT limits %s" % json.dumps(b)[:80])
q.check_error(q.req("PUT", "/api/v1/risk/limits", auth=T,
                    body={"account": ACC, "limits": [{"kind": "max_order_qty", "value": 1}]}),
              403, what="PUT limits as trader")
q.check_error(q.req("GET", "/api/v1/risk/limits?account=a%20b", auth=V), 400, "account",
              "GET limits bad account")
q.check_error(q.req("GET", "/api/v1/risk/limits?acount=x", auth=V), 400, "acount",
              "GET limits unknown parameter")
time.sleep(0.5)
q.check(q.sql("SELECT count(*) FROM risk.limits WHERE account = '%s'" % ACC) == [["1"]],
        "refused requests changed nothing")
# the default account when none is named
r = q.req("GET", "/api/v1/risk/limits", auth=V)
q.check(r.status == 200 and r.json["account"] == "paper-1", "default account", r)

# ---- kill switch -------------------------------------------------------------------------------
# qb-execution reads risk.events from the end too: a probe account until it follows
PROBE = "apiprobe-" + TAG
until_applied(lambda: q.req("POST", "/api/v1/risk/kill-switch", auth=T,
                            body={"account": PROBE, "reason": "probe"}),
              lambda: q.sql("SELECT count(*) FROM trading.kill_switch WHERE account = '%s'"
                            % PROBE) == [["1"]], "probe kill switch")
q.check(q.req("DELETE", "/api/v1/risk/kill-switch?account=" + PROBE, auth=A).status == 202,
        "probe release")
q.wait_for(lambda: kill(PROBE).get("engaged") is False, what="probe released")
k = kill(ACC)
q.check(k.get("account") == ACC and k.get("engaged") is False and k.get("status") == "ACTIVE"
        and k.get("trading_allowed") is True and k.get("platform", {}).get("engaged") is False
        and len(k.get("accounts", [])) == 1, "kill switch off at first", k)
on = q.req("POST", "/api/v1/risk/kill-switch", auth=T,
           body={"account": ACC, "reason": "e2e halt", "keep_open_orders": False})
q.check(on.status == 202 and on.json.get("account") == ACC and on.json.get("engaged") is True,
        "engage", on)
k = q.wait_for(lambda: kill(ACC).get("engaged") and kill(ACC), what="kill switch engaged")
if k:
    a = k["accounts"][0]
    q.check(k["status"] == "HALTED" and k["trading_allowed"] is False and a["status"] == "HALTED"
            and "e2e halt" in a["text"] and "trader1" in a["text"] and a["changed_at"],
            "account halted by trader1", k)
ev = q.wait_for(lambda: [e for e in q.req("GET", "/api/v1/risk/events?account=%s&kind="
                                          "kill_switch_on" % ACC, auth=V).json["items"]
                         if e["command_id"] == on.json["command_id"]],
                what="KILL_SWITCH_ON event")
q.check(ev and ev[0]["severity"] == "critical" and ev[0]["account"] == ACC
        and "e2e halt" in ev[0]["message"] and ev[0]["time"].endswith("Z"), "kill event", ev)
# qb-execution took the event: its own switch is on
k = q.wait_for(lambda: kill(ACC)["accounts"][0].get("execution_engaged") is True and kill(ACC),
               what="qb-execution's kill switch")
q.check(k and k["accounts"][0]["execution_changed_at"], "execution state", k)
# while halted, GET without an account lists it
k = kill()
q.check("account" not in k and [x for x in k.get("accounts", []) if x["account"] == ACC],
        "GET kill-switch lists halted accounts", k)

# release: admins only
q.check_error(q.req("DELETE", "/api/v1/risk/kill-switch?account=" + ACC, auth=T), 403,
              what="release as trader")
q.check(kill(ACC)["engaged"] is True, "still engaged after the trader's try")
off = q.req("DELETE", "/api/v1/risk/kill-switch?account=%s&reason=e2e%%20done" % ACC, auth=A)
q.check(off.status == 202 and off.json.get("engaged") is False, "release", off)
q.wait_for(lambda: kill(ACC).get("engaged") is False, what="kill switch released")
k = kill(ACC)
q.check(k["status"] == "ACTIVE" and k["trading_allowed"] is True, "released state", k)
ev = q.wait_for(lambda: {e["kind"] for e in q.req("GET", "/api/v1/risk/events?account=" + ACC,
                                                 auth=V).json["items"]
                         if e["command_id"] == off.json["command_id"]} >=
                {"kill_switch_off", "resumed"}, what="KILL_SWITCH_OFF and RESUMED events")
q.wait_for(lambda: kill(ACC)["accounts"][0].get("execution_engaged") is False,
           what="qb-execution released")
au = q.sql("SELECT action, actor FROM api.audit WHERE target = '%s' AND action LIKE "
           "'kill_switch%%' ORDER BY audit_id" % ACC)
q.check(au == [["kill_switch_on", "trader1"], ["kill_switch_off", "admin"]], "audit", au)

# platform-wide: no account = every account
on = q.req("POST", "/api/v1/risk/kill-switch", auth=c["trader"]["key"], body={"reason": "all"})
q.check(on.status == 202 and on.json.get("account") == "*", "engage platform-wide", on)
k = q.wait_for(lambda: kill(ACC2).get("engaged") and kill(ACC2), what="platform-wide switch")
if k:
    q.check(k["platform"]["engaged"] is True and k["status"] == "HALTED"
            and k["accounts"][0]["status"] == "ACTIVE" and k["trading_allowed"] is False,
            "an account under the platform-wide switch", k)
ev = q.wait_for(lambda: [e for e in q.req("GET", "/api/v1/risk/events?account=*", auth=V)
                         .json["items"] if e["command_id"] == on.json["command_id"]],
                what="platform-wide event")
q.check(ev and ev[0]["account"] == "*" and ev[0]["kind"] == "kill_switch_on", "platform event", ev)
# an account's events include the platform-wide ones
q.check([e for e in q.req("GET", "/api/v1/risk/events?account=" + ACC2, auth=V).json["items"]
         if e["command_id"] == on.json["command_id"]], "platform event in an account's list")
off = q.req("DELETE", "/api/v1/risk/kill-switch", auth=A)
q.check(off.status == 202 and off.json.get("account") == "*", "release platform-wide", off)
q.wait_for(lambda: kill(ACC2).get("engaged") is False, what="platform-wide released")
q.check(kill()["platform"]["engaged"] is False, "platform off")

# the 4xx of the kill switch
for b, st, field in [({}, 400, "reason"), ({"reason": ""}, 400, "reason"),
                     ({"reason": 5}, 400, "reason"), ({"reason": "x" * 201}, 400, "reason"),
                     ({"reason": "x", "account": "a/b"}, 400, "account"),
                     ({"reason": "x", "keep_open_orders": "yes"}, 400, "keep_open_orders"),
                     ({"reason": "x", "keep_open_orders": True}, 422, "keep_open_orders"),
                     ({"reason": "x", "flatten": True}, 400, "flatten")]:
    q.check_error(q.req("POST", "/api/v1/risk/kill-switch", auth=T, body=b), st, field,
                  "POST kill-switch %s" % json.dumps(b)[:60])
q.check_error(q.req("DELETE", "/api/v1/risk/kill-switch?account=a%20b", auth=A), 400, "account",
              "DELETE bad account")
q.check_error(q.req("DELETE", "/api/v1/risk/kill-switch?force=1", auth=A), 400, "force",
              "DELETE unknown parameter")
q.check_error(q.req("GET", "/api/v1/risk/kill-switch?account=*", auth=V), 400, "account",
              "GET kill-switch account *")
q.check(not [x for x in kill()["accounts"] if x["account"] in (ACC, ACC2, PROBE)],
        "nothing left engaged")

# ---- VaR ---------------------------------------------------------------------------------------
q.check_error(q.req("GET", "/api/v1/risk/var?account=nobody-" + TAG, auth=V), 404, "account",
              "VaR of an unknown account")
# a real position: a fill of 10 SYM at 100 reported by execution
oid = str(uuid.uuid4())
fill = {"order_id": oid, "account": ACC2, "symbol": SYM, "status": "ORDER_STATUS_FILLED",
        "side": "SIDE_BUY", "fill_qty": "1000000000", "fill_price": "10000000000",
        "commission": "0", "cum_qty": "1000000000", "leaves_qty": "0",
        "order_qty": "1000000000", "fill_id": "f-" + TAG, "sequence": "1"}
for _ in range(30):  # the same fill again until applied (fill ids de-duplicate)
    produce("exec.reports", fill)
    end, got = time.time() + 2, False
    while time.time() < end and not got:
        got = q.sql("SELECT count(*) FROM risk.positions WHERE account = '%s' AND qty <> 0"
                    % ACC2) == [["1"]]
        time.sleep(0.1)
    if got:
        break
q.check(q.sql("SELECT qty FROM risk.positions WHERE account = '%s'" % ACC2) == [["1000000000"]],
        "position of 10")
snap = q.req("POST", "/api/v1/risk/var/snapshot", auth=T, body={"account": ACC2})
q.check(snap.status == 202 and snap.json.get("account") == ACC2, "snapshot request", snap)
v = q.wait_for(lambda: (lambda r: r.status == 200 and r.json.get("snapshot") and r.json)(
    q.req("GET", "/api/v1/risk/var?account=" + ACC2, auth=V)), what="snapshot stored")
if v:
    f = v["snapshot"]["figures"]
    q.check(v["account"] == ACC2 and f["symbols"] == [SYM] and f["periods"] >= 50
            and isinstance(f["var_hist_95"], float) and f["var_hist_95"] > 0
            and f["cvar_hist_95"] >= f["var_hist_95"] and float(f["gross_exposure"]) == 1000,
            "VaR figures of the position", v)
    e = v["exposure"]
    q.check(e["gross_exposure"] == 1000 and e["net_exposure"] == 1000 and e["positions"] == 1
            and e["cash"] == 99000 and v["snapshot"]["time"].endswith("Z"), "exposure", v)
for b, st, field in [({"account": "a b"}, 400, "account"), ({"acct": "x"}, 400, "acct")]:
    q.check_error(q.req("POST", "/api/v1/risk/var/snapshot", auth=T, body=b), st, field,
                  "POST snapshot %s" % b)
q.check_error(q.req("GET", "/api/v1/risk/var?account=" + "x" * 64, auth=V), 400, "account",
              "VaR account too long")

# ---- events: filters and pages ---------------------------------------------------------------------
r = q.req("GET", "/api/v1/risk/events?account=%s&limit=2" % ACC, auth=V)
q.check(r.status == 200 and len(r.json["items"]) == 2 and r.json["next_cursor"], "page 1", r)
if r.status == 200 and r.json["next_cursor"]:
    p1 = r.json["items"]
    r2 = q.req("GET", "/api/v1/risk/events?account=%s&limit=2&cursor=%s"
               % (ACC, r.json["next_cursor"]), auth=V)
    q.check(r2.status == 200 and r2.json["items"]
            and not {e["event_id"] for e in p1} & {e["event_id"] for e in r2.json["items"]}
            and r2.json["items"][0]["time"] <= p1[-1]["time"], "page 2 older, disjoint", r2)
    every = q.req("GET", "/api/v1/risk/events?account=%s&limit=1000" % ACC, auth=V).json["items"]
    times = [e["time"] for e in every]
    q.check(times == sorted(times, reverse=True) and len(every) >= 5, "newest first", times)
    t0 = every[0]["time"]
    r3 = q.req("GET", "/api/v1/risk/events?account=%s&from=%s" % (ACC, t0), auth=V)
    q.check(r3.status == 200 and r3.json["items"] and all(e["time"] >= t0 for e in r3.json["items"]),
            "from", r3)
    r4 = q.req("GET", "/api/v1/risk/events?account=%s&to=%s" % (ACC, t0), auth=V)
    q.check(r4.status == 200 and all(e["time"] < t0 for e in r4.json["items"]), "to", r4)
    r5 = q.req("GET", "/api/v1/risk/events?account=%s&kind=resumed" % ACC, auth=V)
    q.check(r5.status == 200 and r5.json["items"]
            and all(e["kind"] == "resumed" for e in r5.json["items"]), "kind filter", r5)
for qs, field in [("kind=kill", "kind"), ("limit=0", "limit"), ("limit=1001", "limit"),
                  ("cursor=zz!", "cursor"), ("cursor=" + "YWJj", "cursor"), ("from=yesterday", "from"),
                  ("from=2024-01-02&to=2024-01-01", "to"), ("account=a%20b", "account"),
                  ("severity=critical", "severity")]:
    q.check_error(q.req("GET", "/api/v1/risk/events?" + qs, auth=V), 400, field, "events " + qs)

# ---- the OpenAPI document has these routes, with valid body schemas ------------------------------
doc = q.req("GET", "/api/v1/openapi.json").json or {}
for path, m in [('/api/v1/risk/limits', 'get'), ('/api/v1/risk/limits', 'put'), ('/api/v1/risk/kill-switch', 'get'), ('/api/v1/risk/kill-switch', 'post'), ('/api/v1/risk/kill-switch', 'delete'), ('/api/v1/risk/var', 'get'), ('/api/v1/risk/var/snapshot', 'post'), ('/api/v1/risk/events', 'get')]:
    op = doc.get("paths", {}).get(path, {}).get(m)
    q.check(op is not None, "openapi: %s %s" % (m, path))
    if op and "requestBody" in op:
        sch = op["requestBody"]["content"]["application/json"]["schema"]
        q.check("x-invalid-schema" not in sch and sch.get("additionalProperties") is False,
                "openapi schema of %s %s" % (m, path), sch)

q.done()
