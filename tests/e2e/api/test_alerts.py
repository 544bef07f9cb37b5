"""test_alerts.py — the alerts routes of qb-api against a running qb-notify
(started by test_api_alerts.sh). Rules are made through the API only; their
effect is read back from what qb-notify stored and delivered."""
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time
import uuid

import qbapi as q

c = q.setup()
V, T, A = c["viewer"]["jwt"], c["trader"]["jwt"], c["admin"]["jwt"]
TAG = uuid.uuid4().hex[:8]
SYM = "ALR" + TAG[:5].upper()
BIN = os.environ["QB_BIN_DIR"]
SECRET = "hook-secret-" + TAG
TOKEN = "tok" + TAG

# a second trader, to show that rules are private
r = q.req("POST", "/api/v1/users", auth=A,
          body={"name": "trader2", "password": "pw-trader2-0123456789", "role": "trader"})
q.check(r.status in (201, 409), "trader2", r)
T2 = q.login("trader2", "pw-trader2-0123456789")["access_token"]

# ---- a webhook receiver -------------------------------------------------------------------------------
HOOK = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        HOOK.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()
HOOK_URL = "http://127.0.0.1:%d/hook/%s?token=%s" % (hook.server_port, TOKEN, TOKEN)


def produce(topic, obj):
    subprocess.run([BIN + "/qbctl", "produce", topic], input=json.dumps(obj) + "\n", text=True,
                   check=True, capture_output=True)


def get_rule(rid, auth=T):
    return q.req("GET", "/api/v1/alerts/rules/" + rid, auth=auth)


def stored(rid):
    return q.sql("SELECT owner, threshold, enabled, targets::text FROM notify.rules "
                 "WHERE rule_id = '%s'" % rid)


# ---- sync: qb-notify reads control from the end ---------------------------------------------------
PROBE = "probe-" + TAG
for _ in range(15):
    r = q.req("POST", "/api/v1/alerts/rules", auth=T,
              body={"rule_id": PROBE, "condition": "backtest_done",
                    "targets": [{"channel": "in_app"}]})
    if r.status == 409:
        break
    q.check(r.status == 202, "probe rule", r)
    end = time.time() + 3
    while time.time() < end and not stored(PROBE):
        time.sleep(0.1)
    if stored(PROBE):
        break
q.check(stored(PROBE), "qb-notify stores rules")

# ---- create --------------------------------------------------------------------------------------------
above = {"name": "above " + TAG, "condition": "price_above", "symbol": SYM.lower(),
         "threshold": "150.5", "timeframe": "1m", "cooldown_s": 0,
         "targets": [{"channel": "in_app"},
                     {"channel": "webhook", "address": HOOK_URL, "secret": SECRET}]}
r = q.req("POST", "/api/v1/alerts/rules", auth=T, body=above)
q.check(r.status == 202 and r.json.get("owner") == "trader1" and len(r.json.get("rule_id", "")) == 36
        and r.headers.get("location") == "/api/v1/alerts/rules/" + r.json.get("rule_id", ""),
        "POST price_above", r)
R1 = r.json["rule_id"]
q.check(SECRET not in r.text and TOKEN not in r.text, "no secret in the answer", r)
r = q.req("POST", "/api/v1/alerts/rules", auth=c["trader"]["key"],
          body={"rule_id": "below-" + TAG, "condition": "price_below", "symbol": SYM,
                "threshold": 150.5, "targets": [{"channel": "in_app", "address": "trader1"}]})
q.check(r.status == 202 and r.json.get("rule_id") == "below-" + TAG
        and r.json.get("owner") == "trader1", "POST price_below with a key: owner is the key's user", r)
R2 = "below-" + TAG

g = q.wait_for(lambda: (lambda x: x.status == 200 and x)(get_rule(R1)), what="rule stored")
if g:
    j = g.json
    q.check(j["rule_id"] == R1 and j["owner"] == "trader1" and j["name"] == "above " + TAG
            and j["condition"] == "price_above" and j["symbol"] == SYM and j["threshold"] == 150.5
            and j["timeframe"] == "1m" and j["enabled"] is True and j["cooldown_s"] == 0
            and j["time_zone"] == "UTC" and j["move_pct"] is None and j["last_fired"] is None
            and j["account"] is None, "GET rule", g)
    q.check(j["targets"] == [
        {"channel": "in_app", "address": "trader1", "has_secret": False},
        {"channel": "webhook", "address": "http://127.0.0.1:%d/..." % hook.server_port,
         "has_secret": True}], "targets shown without secrets", j["targets"])
    q.check(SECRET not in g.text and TOKEN not in g.text, "GET shows no secret", g)
row = stored(R1)
q.check(row and row[0][0] == "trader1" and row[0][1] == "15050000000" and SECRET in row[0][3],
        "qb-notify stored owner, threshold and the secret", row)
au = q.sql("SELECT actor, detail::text FROM api.audit WHERE action = 'alert_rule_create' AND "
           "target = '%s'" % R1)
q.check(au and au[0][0] == "trader1" and SECRET not in au[0][1] and TOKEN not in au[0][1]
        and '"webhook"' in au[0][1], "audit without secrets", au)

# lists: own rules; all for admins
def ids(auth, qs=""):
    x = q.req("GET", "/api/v1/alerts/rules" + qs, auth=auth)
    q.check(x.status == 200, "list rules " + qs, x)
    return [i["rule_id"] for i in x.json["items"]] if x.status == 200 else []


q.check(set(ids(T)) >= {R1, R2, PROBE} and SECRET not in q.req("GET", "/api/v1/alerts/rules",
                                                               auth=T).text, "trader's list")
q.check(ids(V) == [] and ids(T2) == [] and R1 not in ids(A), "others do not see them")
q.check(set(ids(A, "?all=true")) >= {R1, R2, PROBE}, "admin all=true")
q.check_error(q.req("GET", "/api/v1/alerts/rules?all=true", auth=T), 403, "all", "all as trader")
p1 = q.req("GET", "/api/v1/alerts/rules?limit=2", auth=T)
q.check(p1.status == 200 and len(p1.json["items"]) == 2 and p1.json["next_cursor"], "page 1", p1)
if p1.status == 200 and p1.json["next_cursor"]:
    p2 = q.req("GET", "/api/v1/alerts/rules?limit=2&cursor=" + p1.json["next_cursor"], auth=T)
    q.check(p2.status == 200 and len(p2.json["items"]) == 1 and p2.json["next_cursor"] is None
            and sorted([i["rule_id"] for i in p1.json["items"] + p2.json["items"]])
            == sorted([R1, R2, PROBE]), "page 2", p2)
for qs, field in [("?limit=0", "limit"), ("?cursor=!!", "cursor"), ("?cursor=YSBi", "cursor"),
                  ("?all=maybe", "all"), ("?owner=x", "owner")]:
    q.check_error(q.req("GET", "/api/v1/alerts/rules" + qs, auth=T), 400, field, "list " + qs)
q.check_error(get_rule(R1, V), 404, "rule", "someone else's rule")
q.check_error(get_rule("nope-" + TAG), 404, "rule", "missing rule")
q.check(get_rule(R1, A).status == 200, "admin sees any rule")
q.check(q.wait_for(lambda: get_rule(R2).status == 200, what="rule 2 stored"), "rule 2")

# ---- fire: bars cross 150.5 up (R1) and down (R2) ----------------------------------------------------
ts = 1700000000000000000
def inbox_rules():
    return {x[0] for x in q.sql("SELECT rule_id FROM notify.inbox WHERE owner = 'trader1'")}


for i in range(40):
    for close in (15000000000, 15100000000):
        ts += 60 * 10**9
        produce("md.bars", {"symbol": SYM, "timeframe": "1m", "ts": str(ts), "open": str(close),
                            "high": str(close), "low": str(close), "close": str(close),
                            "volume": "100000000"})
    end = time.time() + 1.5
    while time.time() < end and not inbox_rules() >= {R1, R2}:
        time.sleep(0.1)
    if inbox_rules() >= {R1, R2}:
        break
q.check(inbox_rules() >= {R1, R2}, "both rules fired into the inbox")

n = q.req("GET", "/api/v1/alerts/notifications", auth=T)
q.check(n.status == 200 and len(n.json["items"]) >= 2, "notifications", n)
if n.status == 200 and n.json["items"]:
    it = [x for x in n.json["items"] if x["rule_id"] == R1]
    q.check(it and it[0]["kind"] == "price_above" and it[0]["title"] == "above " + TAG
            and SYM in it[0]["body"] and it[0]["read"] is False and it[0]["read_at"] is None
            and it[0]["event_time"].endswith("Z") and len(it[0]["notification_id"]) == 36,
            "the price_above notification", it)
    times = [x["created_at"] for x in n.json["items"]]
    q.check(times == sorted(times, reverse=True), "newest first", times)
    q.check(n.json["unread"] == len(n.json["items"]) and n.json["next_cursor"] is None,
            "unread count", n.json)
    q.check(n.json["deliveries"].get("in_app", {}).get("delivered", 0) >= 2, "in-app delivered",
            n.json["deliveries"])
# the webhook got it, signed with the rule's secret
q.wait_for(lambda: HOOK, what="webhook delivery")
if HOOK:
    path, hd, body = HOOK[0]
    hd = {k.lower(): v for k, v in hd.items()}
    want = hmac.new(SECRET.encode(), (hd.get("x-quantbus-timestamp", "") + ".").encode() + body,
                    hashlib.sha256).hexdigest()
    q.check(path == "/hook/%s?token=%s" % (TOKEN, TOKEN)
            and hd.get("x-quantbus-signature") == "sha256=" + want, "webhook signed with the "
            "secret given through the API", (path, hd))
q.wait_for(lambda: q.req("GET", "/api/v1/alerts/notifications", auth=T).json["deliveries"]
           .get("webhook", {}).get("delivered", 0) >= 1, what="webhook delivered in the summary")
q.check(q.req("GET", "/api/v1/alerts/notifications", auth=V).json["items"] == [],
        "the viewer's inbox is empty")
# pages, and the unread filter (read_at is set by hand: no route marks read yet)
all_ids = [x["notification_id"] for x in n.json["items"]] if n.status == 200 else []
pg = q.req("GET", "/api/v1/alerts/notifications?limit=1", auth=T)
q.check(pg.status == 200 and len(pg.json["items"]) == 1 and pg.json["next_cursor"], "page 1", pg)
if pg.status == 200 and pg.json["next_cursor"]:
    pg2 = q.req("GET", "/api/v1/alerts/notifications?limit=1&cursor=" + pg.json["next_cursor"],
                auth=T)
    q.check(pg2.status == 200 and [x["notification_id"] for x in pg.json["items"] +
                                   pg2.json["items"]] == all_ids[:2], "page 2", pg2)
if all_ids:
    q.sql("UPDATE notify.inbox SET read_at = now() WHERE delivery_id = '%s'" % all_ids[0])
    u = q.req("GET", "/api/v1/alerts/notifications?unread=true", auth=T)
    q.check(u.status == 200 and all_ids[0] not in [x["notification_id"] for x in u.json["items"]]
            and len(u.json["items"]) == len(all_ids) - 1 and u.json["unread"] == len(all_ids) - 1,
            "unread filter", u)
    r = q.req("GET", "/api/v1/alerts/notifications", auth=T)
    q.check(r.json["items"][0]["read"] is True and r.json["items"][0]["read_at"], "read flag", r)
for qs, field in [("limit=0", "limit"), ("cursor=YWJj", "cursor"), ("unread=2", "unread"),
                  ("all=true", "all")]:
    q.check_error(q.req("GET", "/api/v1/alerts/notifications?" + qs, auth=T), 400, field,
                  "notifications " + qs)

# ---- change ---------------------------------------------------------------------------------------------
r = q.req("PUT", "/api/v1/alerts/rules/" + R1, auth=T, body={"threshold": 200, "enabled": False})
q.check(r.status == 202 and r.json.get("rule_id") == R1, "PUT", r)
g = q.wait_for(lambda: (lambda x: x.json.get("enabled") is False and x)(get_rule(R1)),
               what="PUT applied")
if g:
    q.check(g.json["threshold"] == 200 and g.json["symbol"] == SYM and g.json["timeframe"] == "1m"
            and g.json["targets"][1]["has_secret"] is True, "PUT kept the rest", g)
q.check(SECRET in stored(R1)[0][3] and HOOK_URL in stored(R1)[0][3], "stored target kept")
q.check_error(q.req("PUT", "/api/v1/alerts/rules/" + R1, auth=T2, body={"enabled": True}), 404,
              "rule", "PUT someone else's rule")
q.check_error(q.req("PUT", "/api/v1/alerts/rules/" + R1, auth=V, body={"enabled": True}), 403,
              what="PUT as viewer")
# admin edits keep the owner; a new condition drops the members it does not use
r = q.req("PUT", "/api/v1/alerts/rules/" + R1, auth=A,
          body={"condition": "signal", "min_confidence": 0.5, "strategy_id": "s1",
                "account": "paper-9", "targets": [{"channel": "in_app"}]})
q.check(r.status == 202 and r.json.get("owner") == "trader1", "admin PUT", r)
g = q.wait_for(lambda: (lambda x: x.json.get("condition") == "signal" and x)(get_rule(R1)),
               what="condition changed")
if g:
    j = g.json
    q.check(j["owner"] == "trader1" and j["threshold"] is None and j["timeframe"] is None
            and j["symbol"] == SYM and j["min_confidence"] == 0.5 and j["strategy_id"] == "s1"
            and j["account"] == "paper-9"
            and j["targets"] == [{"channel": "in_app", "address": "trader1", "has_secret": False}],
            "condition change", j)
q.check(SECRET not in stored(R1)[0][3], "replaced targets dropped the secret")
for b, st, field in [({}, 400, None), ({"threshold": 5}, 400, "threshold"),
                     ({"rule_id": "x"}, 400, "rule_id"), ({"condition": "price_move"}, 400, "move_pct"),
                     ({"condition": "price_move", "move_pct": 5}, 400, "window_s"),
                     ({"targets": [{"channel": "in_app", "address": "admin"}]}, 403,
                      "targets[0].address"),
                     ({"enabled": "no"}, 400, "enabled")]:
    q.check_error(q.req("PUT", "/api/v1/alerts/rules/" + R1, auth=T, body=b), st, field,
                  "PUT %s" % b)
q.check_error(q.req("PUT", "/api/v1/alerts/rules/nope-" + TAG, auth=T, body={"enabled": True}), 404,
              "rule", "PUT a missing rule")

# ---- the 4xx of POST: nothing reaches qb-notify ---------------------------------------------------------
base = {"condition": "price_above", "symbol": "XYZ", "threshold": 10,
        "targets": [{"channel": "in_app"}]}
def w(**kw):
    b = dict(base)
    for k, v in kw.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


BAD = [
    (w(condition=None), 400, "condition"), (w(condition="price_over"), 400, "condition"),
    (w(targets=None), 400, "targets"), (w(targets=[]), 400, "targets"),
    (w(targets=[{"channel": "in_app"}] * 17), 400, "targets"),
    (w(symbol=None), 400, "symbol"), (w(threshold=None), 400, "threshold"),
    (w(threshold=-1), 400, "threshold"), (w(threshold="1.123456789"), 400, "threshold"),
    (w(condition="signal", threshold=None, min_confidence=2), 400, "min_confidence"),
    (w(condition="signal"), 400, "threshold"),
    (w(condition="price_move", threshold=None, move_pct=5), 400, "window_s"),
    (w(condition="price_move", threshold=None, window_s=60), 400, "move_pct"),
    (w(condition="price_move", threshold=None, move_pct=-5, window_s=60), 400, "move_pct"),
    (w(window_s=60), 400, "window_s"), (w(min_confidence=0.5), 400, "min_confidence"),
    (w(account="paper-1"), 400, "account"), (w(strategy_id="s"), 400, "strategy_id"),
    (w(condition="backtest_done", threshold=None), 400, "symbol"),
    (w(condition="signal", threshold=None, account="a b"), 400, "account"),
    (w(symbol="a b"), 400, "symbol"), (w(timeframe="7x"), 400, "timeframe"),
    (w(targets=[{"channel": "sms", "address": "1"}]), 400, "targets[0].channel"),
    (w(targets=[{"address": "x"}]), 400, "targets[0].channel"),
    (w(targets=[{"channel": "webhook", "address": "ftp://x/y"}]), 400, "targets[0].address"),
    (w(targets=[{"channel": "webhook"}]), 400, "targets[0].address"),
    (w(targets=[{"channel": "email", "address": "nope"}]), 400, "targets[0].address"),
    (w(targets=[{"channel": "telegram", "address": "abc"}]), 400, "targets[0].address"),
    (w(targets=[{"channel": "in_app"}, {"channel": "email", "address": "a@b.c",
                                        "secret": "s"}]), 400, "targets[1].secret"),
    (w(targets=[{"channel": "in_app", "address": "admin"}]), 403, "targets[0].address"),
    (w(targets=[{"channel": "in_app", "to": "x"}]), 400, "targets[0].to"),
    (w(targets=["in_app"]), 400, "targets[0]"),
    (w(quiet_start="22:00"), 400, "quiet_end"), (w(quiet_start="25:00", quiet_end="07:00"), 400,
                                                 "quiet_start"),
    (w(time_zone="Mars/Base"), 400, "time_zone"), (w(rule_id="bad id"), 400, "rule_id"),
    (w(rule_id=PROBE), 409, "rule_id"), (w(colour="red"), 400, "colour"),
    (w(cooldown_s=-1), 400, "cooldown_s"), (w(name="n" * 121), 400, "name"),
    (w(enabled=1), 400, "enabled"),
]
before = q.sql("SELECT count(*) FROM notify.rules")
for b, st, field in BAD:
    q.check_error(q.req("POST", "/api/v1/alerts/rules", auth=T, body=b), st, field,
                  "POST %s" % json.dumps(b)[:90])
q.check_error(q.req("POST", "/api/v1/alerts/rules", auth=V, body=base), 403, what="POST as viewer")
# a refused secret is not echoed
r = q.req("POST", "/api/v1/alerts/rules", auth=T,
          body=w(targets=[{"channel": "slack", "address": "https://hooks.example/" + TOKEN,
                           "secret": SECRET}]))
q.check_error(r, 400, "targets[0].secret", "secret on slack")
q.check(SECRET not in r.text and TOKEN not in r.text, "no secret in the error", r)
time.sleep(0.5)
q.check(q.sql("SELECT count(*) FROM notify.rules") == before, "refused requests changed nothing")
# quiet hours and time zone round trip
r = q.req("POST", "/api/v1/alerts/rules", auth=T,
          body=w(rule_id="quiet-" + TAG, quiet_start="22:00", quiet_end="07:30",
                 time_zone="Europe/Berlin", cooldown_s=3600))
q.check(r.status == 202, "POST with quiet hours", r)
g = q.wait_for(lambda: (lambda x: x.status == 200 and x)(get_rule("quiet-" + TAG)),
               what="quiet rule stored")
if g:
    q.check(g.json["quiet_start"] == "22:00" and g.json["quiet_end"] == "07:30"
            and g.json["time_zone"] == "Europe/Berlin" and g.json["cooldown_s"] == 3600,
            "quiet hours", g)

# ---- delete ---------------------------------------------------------------------------------------------
q.check_error(q.req("DELETE", "/api/v1/alerts/rules/" + R2, auth=T2), 404, "rule",
              "DELETE someone else's rule")
q.check_error(q.req("DELETE", "/api/v1/alerts/rules/" + R2, auth=V), 403, what="DELETE as viewer")
q.check_error(q.req("DELETE", "/api/v1/alerts/rules/nope-" + TAG, auth=T), 404, "rule",
              "DELETE a missing rule")
r = q.req("DELETE", "/api/v1/alerts/rules/" + R2, auth=T)
q.check(r.status == 202 and r.json.get("rule_id") == R2, "DELETE", r)
q.wait_for(lambda: get_rule(R2).status == 404, what="rule deleted")
q.check(stored(R2) == [], "qb-notify deleted it")
r = q.req("DELETE", "/api/v1/alerts/rules/quiet-" + TAG, auth=A)
q.check(r.status == 202 and r.json.get("owner") == "trader1", "admin DELETE", r)
q.wait_for(lambda: stored("quiet-" + TAG) == [], what="admin delete applied")
au = q.sql("SELECT actor FROM api.audit WHERE action = 'alert_rule_delete' ORDER BY audit_id")
q.check(au == [["trader1"], ["admin"]], "delete audit", au)
# ---- the OpenAPI document has these routes, with valid body schemas ------------------------------
doc = q.req("GET", "/api/v1/openapi.json").json or {}
for path, m in [('/api/v1/alerts/rules', 'get'), ('/api/v1/alerts/rules', 'post'), ('/api/v1/alerts/rules/{rule}', 'get'), ('/api/v1/alerts/rules/{rule}', 'put'), ('/api/v1/alerts/rules/{rule}', 'delete'), ('/api/v1/alerts/notifications', 'get')]:
    op = doc.get("paths", {}).get(path, {}).get(m)
    q.check(op is not None, "openapi: %s %s" % (m, path))
    if op and "requestBody" in op:
        sch = op["requestBody"]["content"]["application/json"]["schema"]
        q.check("x-invalid-schema" not in sch and sch.get("additionalProperties") is False,
                "openapi schema of %s %s" % (m, path), sch)

q.done()
