"""test_trading.py — /api/v1/orders, /positions, /account against the real qb-risk and
qb-execution (paper simulator), run by tests/e2e/test_api_trading.sh."""
import json
import os
import random
import subprocess
import time
import uuid

import qbapi as q

c = q.setup()
T = c["trader"]["key"]
TJ = c["trader"]["jwt"]
V = c["viewer"]["jwt"]
TAG = os.environ["WARM_TAG"]
BIN = os.environ["QB_BIN_DIR"]
ACC = "acct-" + TAG
S1 = "TRA%d" % random.randrange(10 ** 5)
S2 = "TRB%d" % random.randrange(10 ** 5)
RISK_NS = uuid.UUID("5b0a7c1e-3f2d-4e8a-9c61-2d7e4b8f0a93")  # libs/risk QB_RISK_ORDER_NS
DAY = [0]


def order_id_of(intent):
    return str(uuid.uuid5(RISK_NS, intent + "|1"))


def produce(topic, obj):
    subprocess.run([BIN + "/qbctl", "produce", topic], input=json.dumps(obj) + "\n", text=True,
                   check=True, capture_output=True)


def bar(sym, o, h, l, cl):
    DAY[0] += 1
    ts = (1700000000 + DAY[0] * 86400) * 10 ** 9
    f = lambda v: str(int(round(v * 1e8)))
    produce("md.bars", {"symbol": sym, "timeframe": "1d", "ts": str(ts), "open": f(o), "high": f(h),
                        "low": f(l), "close": f(cl), "volume": "100000000000"})


def get_order(oid, auth=None):
    return q.req("GET", "/api/v1/orders/" + oid, auth=auth or V)


def wait_status(oid, statuses, what, seconds=30):
    def ok():
        r = get_order(oid)
        return r if r.status == 200 and r.json["status"] in statuses else None
    r = q.wait_for(ok, seconds, what)
    if r is None:
        print("last:", get_order(oid))
    return r


def submit(body, auth=None):
    return q.req("POST", "/api/v1/orders", auth=auth or T, body=body)


# ---- both services read: the warm-up intent is accepted, then fills on a bar both saw ------------
WARM_ACC = "warm-" + TAG
WARM_OID = order_id_of("warm-" + TAG)
q.wait_for(lambda: q.sql("SELECT status FROM trading.orders WHERE order_id = '%s'" % WARM_OID),
           60, "the warm-up intent at execution")


def warm_done():
    bar("WARM", 1, 1, 0.5, 1)
    time.sleep(0.3)
    st = q.sql("SELECT status FROM trading.orders WHERE order_id = '%s'" % WARM_OID)
    mk = q.sql("SELECT mark_ts FROM risk.positions WHERE account = '%s' AND symbol = 'WARM'"
               % WARM_ACC)
    return st and st[0][0] == "5" and mk and mk[0][0] != "0"
q.wait_for(warm_done, 60, "both bar readers")

# ---- POST /orders: 4xx, every field named ---------------------------------------------------------
def bad(b, field, status=400, what=""):
    q.check_error(submit(b), status, field=field, what="order %s" % (what or field))


# 5 x 105 stays under the default max risk per trade (1% of 100000 without a stop)
LB = {"account": ACC, "symbol": S1, "side": "buy", "type": "limit", "qty": 5, "limit_price": 105}
bad({k: v for k, v in LB.items() if k != "side"}, "side", what="no side")
bad({**LB, "side": "hold"}, "side")
bad({k: v for k, v in LB.items() if k != "qty"}, "qty", what="no qty")
bad({**LB, "qty": 0}, "qty", what="qty 0")
bad({**LB, "qty": "abc"}, "qty", what="qty not a number")
bad({**LB, "qty": "0.000000001"}, "qty", what="9 decimals")
bad({**LB, "limit_price": None}, "limit_price", what="limit without price")
bad({**LB, "type": "market"}, "limit_price", what="market with a limit price")
bad({**LB, "type": "stop"}, "limit_price", what="stop with a limit price")
bad({**LB, "type": "stop_limit"}, "stop_price", what="stop_limit without stop price")
bad({**LB, "stop_price": 90}, "stop_price", what="limit with a stop price")
bad({**LB, "type": "iceberg"}, "type")
bad({**LB, "time_in_force": "opg"}, "time_in_force")
bad({**LB, "account": "bad account"}, "account")
bad({**LB, "symbol": "bad symbol"}, "symbol")
bad({**LB, "symbol": None}, "symbol", what="no symbol")
bad({**LB, "take_profit_price": 90, "stop_loss_price": 110}, "take_profit_price",
    what="take profit below stop loss on a buy")
bad({**LB, "client_tag": "x" * 65}, "client_tag")
bad({**LB, "intent_id": "not ok!"}, "intent_id")
bad({**LB, "strategy_id": "a b"}, "strategy_id")
bad({**LB, "price": 1}, "price", what="unknown field")
r = submit(LB, auth=V)
q.check(r.status == 403, "a viewer cannot order", r)
q.check(q.sql("SELECT count(*) FROM api.audit WHERE action = 'order_submit'")[0][0] == "0",
        "refused orders were not sent")

# ---- a limit buy: accepted by risk and execution, filled on the next bar ----------------------------
I1 = "it-%s-1" % TAG
r = submit({**LB, "intent_id": I1, "client_tag": "my-ref-1", "time_in_force": "gtc"}, auth=TJ)
O1 = order_id_of(I1)
q.check(r.status == 202 and r.json["order_id"] == O1 and r.json["intent_id"] == I1
        and r.json["status"] == "pending" and r.json["account"] == ACC,
        "submit: 202 with the order id qb-risk will use", r)
q.check(r.headers.get("location") == "/api/v1/orders/" + O1, "Location of the order", r)
r = get_order(O1)
q.check(r.status == 200 and r.json["status"] in ("pending", "approved", "new", "submitted",
                                                 "accepted"), "the order right after", r)
r = wait_status(O1, ("accepted",), "O1 accepted")
o = r.json if r else {}
q.check(o.get("side") == "buy" and o.get("type") == "limit" and o.get("qty") == 5
        and o.get("limit_price") == 105 and o.get("time_in_force") == "gtc"
        and o.get("client_tag") == "my-ref-1" and o.get("cause") == "intent"
        and o.get("cause_id") == I1 and o.get("source") == "execution" and o.get("open") is True
        and o.get("mode") == "paper", "O1 as stored by execution", r)
# the same intent again: the same order, not a second one
r = submit({**LB, "intent_id": I1, "client_tag": "my-ref-1", "time_in_force": "gtc"})
q.check(r.status == 202 and r.json["order_id"] == O1, "resubmitting an intent: same order id", r)
bar(S1, 100, 101, 99, 100)
r = wait_status(O1, ("filled",), "O1 filled")
o = r.json if r else {}
q.check(o.get("filled_qty") == 5 and o.get("leaves_qty") == 0 and 0 < o.get("avg_price", 0) <= 105
        and o.get("open") is False, "O1 filled", r)
fills = o.get("fills") or []
q.check(len(fills) == 1 and fills[0]["qty"] == 5 and fills[0]["price"] == o.get("avg_price"),
        "O1's fill", r)
reps = [x["status"] for x in o.get("reports") or []]
q.check(reps[-1:] == ["filled"] and "accepted" in reps
        and [x["sequence"] for x in o["reports"]] == sorted(x["sequence"] for x in o["reports"]),
        "O1's reports in order: %s" % reps, r)
time.sleep(0.5)
q.check(q.sql("SELECT count(*) FROM trading.orders WHERE cause_id = '%s'" % I1)[0][0] == "1",
        "one order for the intent sent twice")

# ---- positions and account -----------------------------------------------------------------------
def pos_of(sym):
    r = q.req("GET", "/api/v1/positions?account=" + ACC, auth=V)
    if r.status != 200:
        return None
    p = [x for x in r.json["items"] if x["symbol"] == sym]
    return p[0] if p else None


p = q.wait_for(lambda: (lambda x: x if x and x["qty"] == 5 and x["price"] else None)(pos_of(S1)),
               30, "the position of O1")
if p:
    q.check(p["side"] == "long" and p["account"] == ACC and p["avg_cost"] == o.get("avg_price")
            and abs(p["market_value"] - 5 * p["price"]) < 1e-9
            and abs(p["unrealized_pnl"] - 5 * (p["price"] - p["avg_cost"])) < 1e-9,
            "position: qty, cost, market value", p)
r = q.req("GET", "/api/v1/positions", auth=V)
q.check(r.status == 200 and any(x["account"] == ACC for x in r.json["items"])
        and any(x["account"] == WARM_ACC for x in r.json["items"]), "positions of every account", r)
r = q.req("GET", "/api/v1/positions?account=%s&symbol=%s" % (ACC, S2), auth=V)
q.check(r.status == 200 and r.json["items"] == [], "no position in S2", r)


def acct_ok():
    r = q.req("GET", "/api/v1/account?account=" + ACC, auth=V)
    return r if r.status == 200 and r.json.get("positions") == 1 else None


r = q.wait_for(acct_ok, 30, "the account summary")
a = r.json if r else {}
if a:
    cost = 5 * o.get("avg_price", 0)
    q.check(a["account"] == ACC and a["status"] == "active" and a["initial_cash"] == 100000
            and abs(a["cash"] - (100000 - cost)) < 1e-6
            and abs(a["equity"] - (a["cash"] + p["market_value"])) < 1e-6
            and abs(a["exposure"]["gross"] - p["market_value"]) < 1e-6
            and a["exposure"]["short"] == 0 and a["source"] == "postgres",
            "account: cash, equity, exposure", r)
    q.check(abs(a["total_pnl"] - (a["equity"] - 100000)) < 1e-6 and a["open_orders"] == 0,
            "account: P&L and open orders", r)
q.check_error(q.req("GET", "/api/v1/account?account=nobody-" + TAG, auth=V), 404, field="account")
q.check_error(q.req("GET", "/api/v1/account?account=bad%20acct", auth=V), 400, field="account")
q.check_error(q.req("GET", "/api/v1/positions?account=bad%20acct", auth=V), 400, field="account")
q.check_error(q.req("GET", "/api/v1/positions?include_flat=maybe", auth=V), 400,
              field="include_flat")

# ---- a market order rejected by qb-risk (no price of S2 yet) ---------------------------------------
r = submit({"account": ACC, "symbol": S2, "side": "buy", "qty": 1})
O2 = r.json["order_id"] if r.status == 202 else str(uuid.uuid4())
q.check(r.status == 202 and r.json["intent_id"] and order_id_of(r.json["intent_id"]) == O2,
        "market order submitted (generated intent id)", r)
r = wait_status(O2, ("rejected",), "O2 rejected by risk")
o2 = r.json if r else {}
q.check(o2.get("source") == "risk" and o2.get("reason") == "no_market_price"
        and o2.get("open") is False and o2.get("side") == "buy",
        "O2: qb-risk's rejection with its reason", r)
q.check([x["status"] for x in o2.get("reports") or []] == ["rejected"]
        and o2["reports"][0]["reason"] == "no_market_price", "O2's rejection report", r)

# ---- a market order filled on the next bar; a limit order canceled ------------------------------------
I3 = "it-%s-3" % TAG
r = submit({"account": ACC, "symbol": S1, "side": "sell", "type": "market", "qty": "2",
            "intent_id": I3})
O3 = order_id_of(I3)
q.check(r.status == 202 and r.json["order_id"] == O3, "market sell submitted", r)
wait_status(O3, ("accepted",), "O3 accepted")
I4 = "it-%s-4" % TAG
r = submit({**LB, "qty": 2, "limit_price": "95.5", "intent_id": I4})
O4 = order_id_of(I4)
wait_status(O4, ("accepted",), "O4 accepted")
bar(S1, 102, 103, 101, 102)  # fills O3 at the open, O4's limit is below the low
r = wait_status(O3, ("filled",), "O3 filled")
q.check(r is not None and r.json["avg_price"] == 102, "market order at the next open", r)
r = q.req("GET", "/api/v1/orders?account=%s&status=open" % ACC, auth=V)
q.check(r.status == 200 and [x["order_id"] for x in r.json["items"]] == [O4], "open orders: O4", r)
r = q.req("DELETE", "/api/v1/orders/" + O4 + "?reason=changed%20my%20mind", auth=T)
q.check(r.status == 202 and r.json["order_id"] == O4 and r.json["status"] == "cancel_requested"
        and len(r.json["command_id"]) == 36, "cancel accepted", r)
r = wait_status(O4, ("canceled",), "O4 canceled")
q.check(r is not None and r.json["reason"] == "user_canceled", "canceled on request", r)
q.check_error(q.req("DELETE", "/api/v1/orders/" + O4, auth=T), 409, field="order_id",
              what="cancel a canceled order")
q.check_error(q.req("DELETE", "/api/v1/orders/" + O2, auth=T), 409, field="order_id",
              what="cancel a rejected order")
q.check_error(q.req("DELETE", "/api/v1/orders/" + str(uuid.uuid4()), auth=T), 404,
              field="order_id", what="cancel an unknown order")
q.check_error(q.req("DELETE", "/api/v1/orders/not-a-uuid", auth=T), 400, field="order_id")
r = q.req("DELETE", "/api/v1/orders/" + O1, auth=V)
q.check(r.status == 403, "a viewer cannot cancel", r)
q.check(q.sql("SELECT count(*) FROM api.audit WHERE action = 'order_cancel' AND target = '%s'"
              % O4)[0][0] == "1", "the cancel is audited")
p = q.wait_for(lambda: (lambda x: x if x and x["qty"] == 3 else None)(pos_of(S1)), 30,
               "the position after the sell")

# ---- GET /orders: list, filters, pages, 4xx --------------------------------------------------------
r = q.req("GET", "/api/v1/orders?account=" + ACC, auth=V)
ids = [x["order_id"] for x in (r.json or {}).get("items", [])]
q.check(r.status == 200 and ids == [O4, O3, O2, O1], "orders newest first: %s" % ids, r)
r = q.req("GET", "/api/v1/orders?account=%s&status=closed" % ACC, auth=V)
q.check(r.status == 200 and [x["order_id"] for x in r.json["items"]] == [O4, O3, O2, O1],
        "closed orders (with the risk rejection)", r)
r = q.req("GET", "/api/v1/orders?account=%s&symbol=%s" % (ACC, S2), auth=V)
q.check(r.status == 200 and [x["order_id"] for x in r.json["items"]] == [O2], "symbol filter", r)
got, cur = [], None
for _ in range(10):
    r = q.req("GET", "/api/v1/orders?limit=1&account=" + ACC + ("&cursor=" + cur if cur else ""),
              auth=V)
    if not q.check(r.status == 200, "orders page", r):
        break
    got += [x["order_id"] for x in r.json["items"]]
    cur = r.json["next_cursor"]
    if not cur:
        break
q.check(got == ids, "pages of one = the list", got)
r = q.req("GET", "/api/v1/orders", auth=V)
q.check(r.status == 200 and {O1, O2, O3, O4, WARM_OID} <= {x["order_id"] for x in r.json["items"]},
        "all accounts' orders", r)
q.check_error(q.req("GET", "/api/v1/orders?status=done", auth=V), 400, field="status")
q.check_error(q.req("GET", "/api/v1/orders?account=bad%20acct", auth=V), 400, field="account")
q.check_error(q.req("GET", "/api/v1/orders?cursor=Zm9v", auth=V), 400, field="cursor")
q.check_error(q.req("GET", "/api/v1/orders?limit=0", auth=V), 400, field="limit")
q.check_error(q.req("GET", "/api/v1/orders?symbol=bad%20sym", auth=V), 400, field="symbol")
q.check_error(q.req("GET", "/api/v1/orders/" + str(uuid.uuid4()), auth=V), 404, field="order_id")
q.check_error(q.req("GET", "/api/v1/orders/12345", auth=V), 400, field="order_id")

# a submitted order qb-risk has not seen yet is "pending" (fixture: the gateway's audit row)
PO = str(uuid.uuid4())
q.sql("INSERT INTO api.audit (actor, action, target, detail) VALUES ('trader1', 'order_submit', "
      "'%s', '{\"intent_id\":\"x-%s\",\"account\":\"%s\",\"symbol\":\"%s\",\"side\":\"buy\","
      "\"type\":\"market\",\"qty\":3}')" % (PO, TAG, ACC, S1))
r = get_order(PO)
q.check(r.status == 200 and r.json["status"] == "pending" and r.json["qty"] == 3
        and r.json["source"] == "api", "a pending order", r)
q.check_error(q.req("DELETE", "/api/v1/orders/" + PO, auth=T), 409, field="order_id",
              what="cancel a pending order")
q.check(int(q.sql("SELECT count(*) FROM api.audit WHERE action = 'order_submit' AND actor = "
                  "'trader1'")[0][0]) >= 5, "orders audited")
q.done()
