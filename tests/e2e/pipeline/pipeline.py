"""pipeline.py — the driver and the checks of tests/e2e/test_pipeline_e2e.sh
(run through lib.sh's api_py: qbapi on the path, API / API_DSN / QB_* set).

Input (PIPE_* environment, files in PIPE_T): bars.tsv, the stored bars in
replay order (symbol, ts ns, open, high, low, close, volume; prices x 1e8);
bt.json, `qbctl backtest`'s report of the same strategy on the same bars.

1. Through qb-api: the account's limits (fixed-quantity sizing, as the
   backtest; the limits that count orders per wall-clock minute or positions
   raised so nothing the backtest does is refused), the strategy, and an
   ORDER_FILLED alert rule with an in-app and a webhook target (a local HTTP
   server here); each applied by its service before going on.
2. Warm-up: the md.bars readers of qb-risk and qb-execution start at the end
   of the topic, so a probe account's order is filled on a WARM bar both saw
   (and qb-features has computed WARM's features) before the replay starts.
3. Lockstep replay: the bars go onto md.bars in global time order (ties by
   symbol, as `qbctl replay`) through one `qbctl produce` process. The paper
   simulator fills a market order at the open of the NEXT bar of its symbol
   that qb-execution sees after the order, so a bar must not overtake the
   order its predecessor caused: in live trading a bar period is far longer
   than the path bar -> signal -> risk -> order -> execution; a replay at full
   speed is not. Before a time step holding a bar on which the backtest
   fills, the driver waits until qb-execution has decided (accepted, or risk
   rejected) as many orders of that symbol as the backtest has fill times up
   to there (counted on exec.reports through `qbctl tail`); other steps go
   out at full speed. The gates only pace the replay: what is traded is
   decided by the services alone, and a wrong or missing order shows as a
   difference below (or as a gate that never opens, with the symbol named).
4. Quiet: every bar's features stored, every signal decided, every order
   final. An order caused by a signal on a symbol's LAST bar has no next bar
   to fill on; it is canceled through DELETE /api/v1/orders/{id}.
5. Checks, against PostgreSQL, the topics (qbctl tail) and the API.
Timing is only ever waited for, never asserted.

Chaos mode (PIPE_CHAOS=1, tests/e2e/test_pipeline_chaos.sh): this script
starts the services itself under chaos.py's supervisor and runs chaos.py's
faults during the replay (see there); the checks are the same: every topic
(features, signals, orders, exec.reports) must hold each id once in both
modes — after a kill -9, qb-features and qb-execution read their own output
back before sending again, qb-risk scans `orders` (see their headers); only
webhook posts may repeat after qb-notify is killed (at-least-once delivery,
counted)."""
import collections
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import qbapi as q


def _uncaught(kind, value, tb):
    """An exception nobody caught still says FAIL, where, and what (the test
    runner shows lines starting with FAIL: first)."""
    import traceback
    where = " <- ".join("%s:%d %s" % (os.path.basename(f.filename), f.lineno, f.name)
                        for f in reversed(traceback.extract_tb(tb)[-4:]))
    print("FAIL: uncaught %s: %s (at %s)" % (kind.__name__, value, where), file=sys.stderr,
          flush=True)
    sys.__excepthook__(kind, value, tb)


sys.excepthook = _uncaught

E = os.environ
CHAOS = E.get("PIPE_CHAOS", "") not in ("", "0")
BIN = E["QB_BIN_DIR"]
T = E["PIPE_T"]
TAG = E["PIPE_TAG"]
SYMS = E["PIPE_SYMBOLS"].split(",")
PARAMS = json.loads(E["PIPE_PARAMS"])
QTY = int(E["PIPE_QTY"])
CASH = Decimal(E["PIPE_CASH"])
NBARS = int(E["PIPE_NBARS"])
ACC = "pipe-" + TAG
WARM_ACC = "pipewarm-" + TAG
SID = "pipe-sma-" + TAG
IN = "(" + ",".join("'%s'" % s for s in SYMS) + ")"
D8 = Decimal("0.00000001")
RISK_NS = uuid.UUID("5b0a7c1e-3f2d-4e8a-9c61-2d7e4b8f0a93")  # libs/risk QB_RISK_ORDER_NS
FINAL = {"ORDER_STATUS_FILLED", "ORDER_STATUS_CANCELED", "ORDER_STATUS_REJECTED",
         "ORDER_STATUS_EXPIRED"}
DECIDED = FINAL | {"ORDER_STATUS_ACCEPTED", "ORDER_STATUS_PARTIALLY_FILLED"}

SUP = None
if CHAOS:
    import chaos
    SUP = chaos.Supervisor()
    q.API = SUP.api_url
c = q.setup()
# API keys, not access tokens: the long chaos mode outlives a token (15 min)
TR, ADM, V = c["trader"]["key"], c["admin"]["key"], c["viewer"]["key"]
report = json.load(open(os.path.join(T, "bt.json")))


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def log(msg):
    print("  " + msg, flush=True)


def dec(x):
    return Decimal(str(x)).quantize(D8)


def ns_of(iso):  # "1995-04-07T00:00:00Z" -> ns (daily bars: whole seconds)
    import datetime
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 10 ** 9


def produce(topic, obj):
    subprocess.run([BIN + "/qbctl", "produce", topic], input=json.dumps(obj) + "\n", text=True,
                   check=True, capture_output=True)


def sql1(query):
    r = q.sql(query)
    return r[0][0] if r else None


# ---- the topics, as the bus carries them: `qbctl tail` from the start of our topics, read
# while the replay runs (qb-bus keeps about 5 MiB per partition: the features topic would not
# be there any more at the end) ------------------------------------------------------------------
class Tail:
    def __init__(self, topic, keep, proj=None):
        self.p = subprocess.Popen([BIN + "/qbctl", "tail", topic, "--from-beginning"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.keep = keep
        self.proj = proj or (lambda m: m)  # what is kept of a message (features: a tuple)
        self.lock = threading.Lock()
        self.msgs = []
        self.decided = collections.Counter()  # exec.reports: symbol -> orders of ACC decided
        self.filled = collections.Counter()  # exec.reports: symbol -> fills (by event id)
        self.seen = set()
        self.fill_ev = set()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if not self.keep(m):
                continue
            with self.lock:
                self.msgs.append(self.proj(m))
                if m.get("status") in DECIDED and m["order_id"] not in self.seen:
                    self.seen.add(m["order_id"])
                    self.decided[m["symbol"]] += 1
                if int(m.get("fill_qty", "0") or 0) > 0 and m["header"]["event_id"] not in self.fill_ev:
                    self.fill_ev.add(m["header"]["event_id"])
                    self.filled[m["symbol"]] += 1

    def count(self, sym):
        with self.lock:
            return self.decided[sym]

    def fills(self, sym):
        with self.lock:
            return self.filled[sym]

    def total(self):
        with self.lock:
            return len(self.seen)

    def all(self):
        with self.lock:
            return list(self.msgs)

    def stop(self):
        self.p.terminate()
        self.p.wait()


SYMSET = set(SYMS)
reports = Tail("exec.reports", lambda m: m.get("account") == ACC)
t_features = Tail("features", lambda m: m.get("symbol") in SYMSET, lambda m: (
    m["symbol"], m["ts"], m["header"]["event_id"],
    len(m.get("values") or {}) > 0 or int(m.get("history_bars", 50)) < 50))
t_signals = Tail("signals", lambda m: m.get("account") == ACC)
t_orders = Tail("orders", lambda m: m.get("account") == ACC)

# ---- the webhook the fill rule posts to ------------------------------------------------------------
HOOK = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        HOOK.append((self.headers.get("X-Quantbus-Delivery-Id", ""), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()


def until_applied(send, applied, what, tries=20):
    """Send (a new command each time) until its effect shows: a consumer
    that starts at the end of `control` may miss the first one."""
    for _ in range(tries):
        r = send()
        if r.status not in (202, 409):
            fail("%s: %r" % (what, r))
        end = time.time() + 3
        while time.time() < end:
            if applied():
                return
            time.sleep(0.1)
    fail(what + ": never applied")


# ---- 1. limits, strategy, alert rule through the API -------------------------------------------------
LIMITS = [("sizing_rule", 1), ("sizing_fixed_qty", QTY), ("max_orders_per_minute", 6000),
          ("max_open_orders", 10000), ("max_positions", 500), ("max_drawdown", "0.5"),
          ("max_daily_loss_fraction", "0.5"), ("max_risk_per_trade", "0.05"),
          ("max_capital_deployed", 4), ("max_correlated_exposure", 4)]


def limits_applied():
    r = q.req("GET", "/api/v1/risk/limits?account=" + ACC, auth=V)
    if r.status != 200:
        return False
    got = {x["kind"]: x["value"] for x in r.json["limits"]}
    return all(got.get(k) is not None and Decimal(str(got[k])) == Decimal(str(v)) for k, v in LIMITS)


until_applied(lambda: q.req("PUT", "/api/v1/risk/limits", auth=ADM, body={
    "account": ACC, "reason": "pipeline e2e", "limits": [{"kind": k, "value": v} for k, v in LIMITS]}),
    limits_applied, "PUT /risk/limits")

r = q.req("POST", "/api/v1/strategies", auth=TR, body={
    "strategy_id": SID, "kind": "sma_cross", "params": PARAMS, "symbols": SYMS, "timeframe": "1d",
    "account": ACC})
q.check(r.status == 202, "POST /strategies", r)
q.wait_for(lambda: sql1("SELECT count(*) FROM features.strategies WHERE strategy_id = '%s'" % SID)
           == "1", 30, "qb-features stored the strategy")
s = q.req("GET", "/api/v1/strategies/" + SID, auth=V)
q.check(s.status == 200 and s.json["enabled"] is True and s.json["mode"] == "paper"
        and sorted(s.json["symbols"]) == sorted(SYMS), "the strategy as the API shows it", s)

RULE = "pipe-fills-" + TAG
HOOK_URL = "http://127.0.0.1:%d/fills" % hook.server_port
until_applied(lambda: q.req("POST", "/api/v1/alerts/rules", auth=TR, body={
    "rule_id": RULE, "name": "fills " + TAG, "condition": "order_filled", "account": ACC,
    "cooldown_s": 0, "targets": [{"channel": "in_app"}, {"channel": "webhook", "address": HOOK_URL}]}),
    lambda: sql1("SELECT count(*) FROM notify.rules WHERE rule_id = '%s'" % RULE) == "1",
    "POST /alerts/rules")
if q.FAILS:
    fail("set-up")
log("limits, strategy %s (%d symbols) and fill rule applied" % (SID, len(SYMS)))

# ---- 2. warm-up: both md.bars readers follow the topic -----------------------------------------------
warm_day = [0]


def warm_bar():
    warm_day[0] += 1
    ts = (1600000000 + warm_day[0] * 86400) * 10 ** 9
    produce("md.bars", {"symbol": "WARM", "timeframe": "1d", "ts": str(ts), "open": "100000000",
                        "high": "100000000", "low": "100000000", "close": "100000000",
                        "volume": "100000000000"})


def warm_done():
    intent = "warm-%s-%d" % (TAG, warm_day[0])
    produce("orders.intents", {"intent_id": intent, "account": WARM_ACC, "symbol": "WARM",
                               "side": "SIDE_BUY", "type": "ORDER_TYPE_MARKET", "qty": "100000000"})
    oid = str(uuid.uuid5(RISK_NS, intent + "|1"))
    end = time.time() + 3
    while time.time() < end and sql1("SELECT status FROM trading.orders WHERE order_id = '%s'"
                                     % oid) is None:
        time.sleep(0.05)
    warm_bar()
    end = time.time() + 3
    while time.time() < end:
        st = sql1("SELECT status FROM trading.orders WHERE order_id = '%s'" % oid)
        mk = sql1("SELECT mark_ts FROM risk.positions WHERE account = '%s' AND symbol = 'WARM'"
                  % WARM_ACC)
        ft = sql1("SELECT count(*) FROM features.features WHERE symbol = 'WARM'")
        if st == "5" and mk not in (None, "0") and ft not in (None, "0"):
            return True
        time.sleep(0.05)
    return False


if not q.wait_for(warm_done, 90, "the warm-up order filled on a bar both readers saw"):
    fail("warm-up")
log("warm-up done: qb-risk and qb-execution read md.bars, qb-features computes")

# ---- 3. lockstep replay -----------------------------------------------------------------------------
bars = []
with open(os.path.join(T, "bars.tsv")) as f:
    for line in f:
        s, ts, o, h, l, cl, v = line.rstrip("\n").split("\t")
        bars.append((s, int(ts), o, h, l, cl, v))
q.check(len(bars) == NBARS, "bars to replay: %d, stored %d" % (len(bars), NBARS))
last_ts = {}
for b in bars:
    last_ts[b[0]] = b[1]

# gate (symbol, ts) -> orders of the symbol decided before that bar may go out: the backtest's
# fills of the symbol up to that bar (market orders fill whole: one fill per order)
per_sym_fills = collections.defaultdict(list)
for x in report["fills"]:
    per_sym_fills[x["symbol"]].append(ns_of(x["ts"]))
gate = {}
for sym, tss in per_sym_fills.items():
    tss.sort()
    for k, ts in enumerate(tss, 1):
        gate[(sym, ts)] = k

prod = subprocess.Popen([BIN + "/qbctl", "produce", "md.bars"], stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(T, "produce.err"), "w"),
                        text=True)
pub_ts = {}  # symbol -> ts of its last bar published


def quiesce():
    """(chaos) Everything published so far has had its effect at qb-execution and qb-risk: each
    fill the backtest has on a published bar is reported and applied by qb-risk, and
    qb-execution's bar reader is idle."""
    import bisect
    prod.stdin.flush()
    due = {sym: bisect.bisect_right(tss, pub_ts.get(sym, -1)) for sym, tss in per_sym_fills.items()}
    end = time.time() + 300
    while not all(reports.fills(s) >= n for s, n in due.items()):
        if time.time() > end:
            fail("quiesce: fills not reported: %s" % {s: (reports.fills(s), n) for s, n in
                                                      due.items() if reports.fills(s) < n})
        time.sleep(0.01)
    q.wait_for(lambda: sql1("SELECT (SELECT count(*) FROM trading.fills WHERE account = '%s') = "
                            "(SELECT count(*) FROM risk.fills WHERE account = '%s')" % (ACC, ACC))
               == "t", 300, "qb-risk applied every fill so far")
    ex = SUP.svcs["qb-execution"]
    last, same = None, 0
    while same < 3:
        time.sleep(0.1)
        v = ex.metric("qb_exec_bars_total")
        same = same + 1 if v == last else 0
        last = v


def probe(load_account):
    """(chaos) a WARM bar; first, if asked, an order request of the probe account."""
    if load_account:
        warm_day[0] += 1
        produce("orders.intents", {"intent_id": "probe-%s-%d" % (TAG, warm_day[0]),
                                   "account": WARM_ACC, "symbol": "WARM", "side": "SIDE_BUY",
                                   "type": "ORDER_TYPE_MARKET", "qty": "100000000"})
    warm_bar()


CH = chaos.Chaos(SUP, len(bars), quiesce, probe) if CHAOS else None
# qb-risk refuses an account's orders beyond max_orders_per_minute of WALL-CLOCK time (hard
# cap 6,000); a replay of years of bars in minutes can go faster (the long chaos mode did),
# so the replay keeps the orders decided in the last 60 s under PACE_ORDERS (a step adds at
# most two orders per symbol).
PACE_ORDERS = 6000 - 2 * len(SYMS) - 500
pace = collections.deque()  # (time, orders decided so far)
paced = 0


def keep_pace():
    global paced
    while True:
        now, n = time.time(), reports.total()
        pace.append((now, n))
        while pace and pace[0][0] < now - 60:
            pace.popleft()
        if n - pace[0][1] <= PACE_ORDERS:
            return
        paced += 1
        time.sleep(0.2)


t0 = time.time()
waits = 0
i = 0
while i < len(bars):
    j = i
    while j < len(bars) and bars[j][1] == bars[i][1]:
        j += 1
    step = bars[i:j]
    keep_pace()
    if CH:
        CH.before_step(i)
    need = [(b[0], gate[(b[0], b[1])]) for b in step if (b[0], b[1]) in gate]
    if need:
        prod.stdin.flush()
        waits += 1
        end = time.time() + (600 if CHAOS else 60)
        while not all(reports.count(s) >= k for s, k in need):
            if time.time() > end or prod.poll() is not None:
                s, k = next((s, k) for s, k in need if reports.count(s) < k)
                fail("replay stuck before %s %s: qb-execution decided %d orders of %s, the "
                     "backtest filled %d times by then" % (s, step[0][1], reports.count(s), s, k))
            time.sleep(0.001)
    for s, ts, o, h, l, cl, v in step:
        prod.stdin.write(json.dumps({"symbol": s, "timeframe": "1d", "ts": str(ts), "open": o,
                                     "high": h, "low": l, "close": cl, "volume": v,
                                     "source": "replay"}) + "\n")
        pub_ts[s] = ts
    i = j
prod.stdin.close()
if prod.wait() != 0:
    fail("qbctl produce: " + open(os.path.join(T, "produce.err")).read())
log("replayed %d bars of %d symbols (%d gated steps, %d pauses for the order rate) in %.1f s"
    % (len(bars), len(SYMS), waits, paced, time.time() - t0))
if CH:
    CH.finish()

# ---- 4. quiet ---------------------------------------------------------------------------------------
def nfeat():
    return int(sql1("SELECT count(*) FROM features.features WHERE symbol IN %s AND timeframe = '1d'"
                    % IN))


q.wait_for(lambda: nfeat() >= NBARS, 120, "every bar's features stored")


def undecided():
    return int(sql1("SELECT count(*) FROM features.signals s WHERE s.strategy_id = '%s' AND NOT "
                    "EXISTS (SELECT 1 FROM risk.orders o WHERE o.cause_id = s.signal_id::text)"
                    % SID))


time.sleep(0.3)  # the last signals' flush (QB_FEATURES_FLUSH_MS=20)
q.wait_for(lambda: undecided() == 0, 60, "every signal decided")
q.wait_for(lambda: sql1("SELECT count(*) FROM risk.orders o WHERE account = '%s' AND approved AND "
                        "NOT EXISTS (SELECT 1 FROM trading.orders t WHERE t.order_id = o.order_id)"
                        % ACC) == "0", 60, "every approved order at qb-execution")

# the orders of signals on a symbol's last bar: no next bar will fill them
open_ids = set()
for sym, ts in last_ts.items():
    for (oid,) in q.sql("SELECT o.order_id FROM risk.orders o JOIN features.signals s ON "
                        "s.signal_id::text = o.cause_id WHERE o.account = '%s' AND o.approved AND "
                        "s.symbol = '%s' AND s.bar_ts = to_timestamp(%d)" % (ACC, sym, ts // 10 ** 9)):
        open_ids.add(oid)


def still_open():
    return {x[0] for x in q.sql("SELECT order_id FROM trading.orders WHERE account = '%s' AND "
                                "status IN (1, 2, 3, 4)" % ACC)}


q.wait_for(lambda: still_open() == open_ids, 60, "every order final but the last bars' (%d)"
           % len(open_ids))
q.check(still_open() == open_ids, "open orders are exactly those of signals on a last bar: %s vs %s"
        % (sorted(still_open()), sorted(open_ids)))
r = q.req("GET", "/api/v1/orders?status=open&account=" + ACC, auth=V)
q.check(r.status == 200 and {x["order_id"] for x in r.json["items"]} == open_ids,
        "GET /orders?status=open lists them", r)
for oid in sorted(open_ids):
    r = q.req("DELETE", "/api/v1/orders/" + oid + "?reason=replay%20ended", auth=TR)
    q.check(r.status == 202, "cancel " + oid, r)
q.wait_for(lambda: not still_open(), 60, "the last bars' orders canceled")
for oid in sorted(open_ids):
    r = q.req("GET", "/api/v1/orders/" + oid, auth=V)
    q.check(r.status == 200 and r.json["status"] == "canceled" and r.json["filled_qty"] == 0,
            "order %s canceled" % oid, r)


def books_caught_up():
    a = sql1("SELECT count(*) FROM trading.fills WHERE account = '%s'" % ACC)
    b = sql1("SELECT count(*) FROM risk.fills WHERE account = '%s'" % ACC)
    o = sql1("SELECT count(*) FROM risk.orders WHERE account = '%s' AND open" % ACC)
    return a == b and o == "0"


q.wait_for(books_caught_up, 60, "qb-risk applied every fill and closed every order")
NFILLS = int(sql1("SELECT count(*) FROM trading.fills WHERE account = '%s'" % ACC))


def notified():
    n = int(sql1("SELECT count(*) FROM notify.inbox WHERE rule_id = '%s'" % RULE))
    return n >= NFILLS and len(HOOK) >= NFILLS


q.wait_for(notified, 90, "every fill notified (in-app and webhook)")
time.sleep(0.5)  # anything sent twice would show now
log("quiet: %d fills, %d notifications, %d webhook posts" % (
    NFILLS, int(sql1("SELECT count(*) FROM notify.inbox WHERE rule_id = '%s'" % RULE)), len(HOOK)))

# ---- 5a. every bar produced its features ------------------------------------------------------------
per_sym = dict((s, int(n)) for s, n in q.sql(
    "SELECT a.symbol, count(*) FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol IN %s "
    "AND b.timeframe = '1d' GROUP BY 1" % IN))
got = dict((s, int(n)) for s, n in q.sql(
    "SELECT symbol, count(*) FROM features.features WHERE symbol IN %s AND timeframe = '1d' GROUP BY 1"
    % IN))
q.check(got == per_sym, "features.features: one row per bar of every symbol")
q.check(sql1("SELECT count(*) FROM features.features f WHERE symbol IN %s AND NOT EXISTS (SELECT 1 "
             "FROM md.bars b JOIN md.assets a USING (asset_id) WHERE a.symbol = f.symbol AND "
             "b.timeframe = '1d' AND b.ts = f.ts)" % IN) == "0", "features only at bars")


DUPS = {}  # topic -> copies beyond the first (chaos mode only)


def once_per_id(topic, items, key, content=lambda m: m):
    """items hold each id once (in chaos mode too: the services read their own output back
    before re-sending after a crash)."""
    by = {}
    for m in items:
        by.setdefault(key(m), []).append(content(m))
    extra = len(items) - len(by)
    DUPS[topic] = extra
    q.check(extra == 0, "%s: no id twice (%d copies: %s)" % (
        topic, extra, [k for k, v in by.items() if len(v) > 1][:5]))
    return by


q.wait_for(lambda: len({m[2] for m in t_features.all()}) >= NBARS, 120,
           "the FeatureSets on the features topic")
fs = t_features.all()
fs_by = once_per_id("features", fs, lambda m: m[2], lambda m: m[:2])
q.check(len(fs_by) == NBARS and len({(m[0], m[1]) for m in fs}) == NBARS,
        "the features topic: one FeatureSet per bar (%d ids for %d bars)" % (len(fs_by), NBARS))
q.check(all(m[3] for m in fs), "FeatureSets carry values")

# ---- 5b. every signal decided -------------------------------------------------------------------------
sigs = q.sql("SELECT signal_id, symbol, direction FROM features.signals WHERE strategy_id = '%s'" % SID)
nsig = len(sigs)
q.check(nsig == report["counts"]["signals"], "qb-features emitted %d signals, the backtest's "
        "strategy %d" % (nsig, report["counts"]["signals"]))
q.wait_for(lambda: len({m["signal_id"] for m in t_signals.all()}) >= nsig, 60,
           "the signals on the signals topic")
topic_sigs = [m for m in t_signals.all() if m.get("strategy_id") == SID]
sig_by = once_per_id("signals", topic_sigs, lambda m: m["signal_id"],
                     lambda m: (m["symbol"], m["bar_ts"], m["direction"]))
q.check(sorted(sig_by) == sorted(x[0] for x in sigs),
        "the signals topic carries each stored signal")
q.check(int(sql1("SELECT count(*) - count(DISTINCT (symbol, bar_ts)) FROM features.signals WHERE "
                 "strategy_id = '%s'" % SID)) == 0, "features.signals: one signal per bar at most")
dec_rows = q.sql("SELECT o.cause_id, o.approved, o.reason_code, o.reason_text, o.order_id FROM "
                 "risk.orders o JOIN features.signals s ON s.signal_id::text = o.cause_id WHERE "
                 "s.strategy_id = '%s'" % SID)
nflip = len(dec_rows) - nsig
q.check(len({x[0] for x in dec_rows}) == nsig and 0 <= nflip <= nsig,
        "every signal decided: %d signals, %d decisions (a reversal is an exit and an entry)"
        % (nsig, len(dec_rows)))
rejected = [x for x in dec_rows if x[1] != "t"]
q.check(all(x[2] != "0" and x[3] != "" for x in rejected), "every rejection has a reason code and text")
approved = {x[4] for x in dec_rows if x[1] == "t"}
q.wait_for(lambda: len(t_orders.all()) >= len(approved), 30, "the orders on the orders topic")
topic_orders = t_orders.all()
q.check(sorted(m["order_id"] for m in topic_orders) == sorted(approved),
        "every approved signal is one Order on `orders` (%d / %d), none twice" % (
            len(topic_orders), len(approved)))
rep = reports.all()
once_per_id("exec.reports", rep, lambda m: m["header"]["event_id"],
                     lambda m: (m["order_id"], m.get("sequence"), m["status"], m.get("fill_qty"),
                                m.get("fill_price")))
rep = [v for v in {m["header"]["event_id"]: m for m in rep}.values()]
rej_topic = {m["order_id"] for m in rep if m["status"] == "ORDER_STATUS_REJECTED"
             and m["reason_code"] != "REASON_CODE_UNSPECIFIED" and m["reason_text"]}
q.check({x[4] for x in rejected} <= rej_topic, "every rejection is on exec.reports with its reason")
log("%d signals: %d orders, %d rejections %s" % (nsig, len(approved), len(rejected),
                                                 sorted({x[3] for x in rejected})[:3]))

# ---- 5c. every order ended in a terminal state -----------------------------------------------------------
st = dict(q.sql("SELECT status, count(*) FROM trading.orders WHERE account = '%s' GROUP BY 1" % ACC))
q.check(set(st) <= {"5", "6", "7", "8"}, "trading.orders: every order final: %s" % st)
q.check(int(st.get("5", "0")) + int(st.get("6", "0")) + int(st.get("7", "0")) + int(st.get("8", "0"))
        == len(approved), "trading.orders holds every approved order")
last = {}
for m in rep:
    if m["order_id"] in approved and int(m["sequence"]) >= int(last.get(m["order_id"], {}).get("sequence", 0)):
        last[m["order_id"]] = m
q.check(set(last) == approved and all(m["status"] in FINAL for m in last.values()),
        "exec.reports: each order's last report is final")
q.check(len({(m["order_id"], m.get("sequence")) for m in rep}) == len(rep),
        "exec.reports: one report per order and sequence")
q.check(sql1("SELECT count(*) FROM trading.fills f JOIN trading.orders o USING (order_id) WHERE "
             "o.account = '%s' GROUP BY order_id ORDER BY 1 DESC LIMIT 1" % ACC) in (None, "1"),
        "trading.fills: one fill per (market) order")

# ---- 5d. fills: live == backtest ---------------------------------------------------------------------------
def rows_of(rows):
    return collections.Counter(rows)


live = rows_of((s, int(ts), "BUY" if sd == "1" else "SELL", Decimal(qt) / 10 ** 8,
                Decimal(px) / 10 ** 8, Decimal(fee) / 10 ** 8) for s, ts, sd, qt, px, fee in
               q.sql("SELECT symbol, ts_ns, side, qty, price, commission FROM trading.fills WHERE "
                     "account = '%s'" % ACC))
bt = rows_of((x["symbol"], ns_of(x["ts"]), x["side"], dec(x["qty"]), dec(x["price"]),
              dec(x["commission"])) for x in report["fills"])
fill_reps = [m for m in rep if int(m.get("fill_qty", "0")) > 0]
q.check(len(fill_reps) == NFILLS, "exec.reports: one report per fill (%d / %d)" % (len(fill_reps), NFILLS))
rfills = int(sql1("SELECT count(*) FROM risk.fills WHERE account = '%s'" % ACC))
q.check(rfills == NFILLS, "risk.fills: every fill once")
only_live, only_bt = live - bt, bt - live
for k in sorted(only_live)[:10]:
    print("  live only:     %s %s %s qty %s price %s fee %s" % k, file=sys.stderr)
for k in sorted(only_bt)[:10]:
    print("  backtest only: %s %s %s qty %s price %s fee %s" % k, file=sys.stderr)
q.check(not only_live and not only_bt and NFILLS == len(report["fills"]),
        "fills (symbol, time, side, qty, price, commission): live %d, backtest %d, %d differ"
        % (NFILLS, len(report["fills"]), sum(only_live.values()) + sum(only_bt.values())))
log("fills: %d live == %d backtest (%d reversals as exit + entry)" % (NFILLS, len(report["fills"]),
                                                                    nflip))

# ---- 5e. positions and account through the API == backtest ----------------------------------------------
def all_positions():
    items, cur = [], None
    for _ in range(100):
        r = q.req("GET", "/api/v1/positions?account=%s%s" % (ACC, "&cursor=" + cur if cur else ""),
                  auth=V)
        if not q.check(r.status == 200, "GET /positions", r):
            return items
        items += r.json["items"]
        cur = r.json.get("next_cursor")
        if not cur:
            return items
    return items


# the backtest's open positions; each was opened by one ENTRY fill (fixed quantity), so its
# average cost is that fill's price; marks are the symbol's last close
want_pos = {s: dec(x) for s, x in report["positions"].items() if dec(x) != 0}
entry_px = {x["symbol"]: dec(x["price"]) for x in report["fills"] if x["role"] == "ENTRY"}
last_close = {}
for b in bars:
    last_close[b[0]] = Decimal(b[5]) / 10 ** 8
pos = {p["symbol"]: p for p in all_positions() if Decimal(str(p["qty"])) != 0}
q.check(set(pos) == set(want_pos), "positions held: API %s, backtest %s" % (sorted(pos), sorted(want_pos)))
for sym, p in sorted(pos.items()):
    if sym not in want_pos:
        continue
    qty = Decimal(str(p["qty"]))
    q.check(qty == want_pos[sym] and dec(p["avg_cost"]) == entry_px[sym]
            and dec(p["price"]) == last_close[sym] and p["price_source"] == "risk_mark",
            "position %s: API %s @ %s marked %s, backtest %s @ %s, last close %s" % (
                sym, qty, p["avg_cost"], p["price"], want_pos[sym], entry_px[sym], last_close[sym]))
r = q.req("GET", "/api/v1/account?account=" + ACC, auth=V)
if q.check(r.status == 200, "GET /account", r):
    a = r.json
    cash, eq = Decimal(str(a["cash"])), Decimal(str(a["equity"]))
    want_cash, want_eq = Decimal(str(report["final_cash"])), Decimal(str(report["metrics"]["final_equity"]))
    q.check(cash == want_cash and eq == want_eq,
            "account: API cash %s equity %s, backtest cash %s equity %s" % (cash, eq, want_cash, want_eq))
    q.check(a["status"] == "active" and a["open_orders"] == 0 and a["positions"] == len(want_pos),
            "account: active, no open order, %d positions" % len(want_pos), r)
    log("account: cash %s equity %s (backtest %s / %s)" % (cash, eq, want_cash, want_eq))

# ---- 5f. notifications ------------------------------------------------------------------------------------
inbox = q.sql("SELECT count(*), count(DISTINCT event_id) FROM notify.inbox WHERE rule_id = '%s'" % RULE)
q.check(inbox[0][0] == str(NFILLS) and inbox[0][1] == str(NFILLS),
        "in-app: one notification per fill (%s for %d fills)" % (inbox[0], NFILLS))
ids = [h[0] for h in HOOK]
if CHAOS:  # a qb-notify killed between a send and its outcome's write sends it again (same id)
    DUPS["webhook"] = len(ids) - len(set(ids))
q.check((CHAOS or len(ids) == NFILLS) and len(set(ids)) == NFILLS and all(ids),
        "webhook: one delivery per fill (%d posts, %d ids, %d fills)" % (len(ids), len(set(ids)), NFILLS))
n = q.req("GET", "/api/v1/alerts/notifications?limit=5", auth=TR)
q.check(n.status == 200 and n.json["items"] and n.json["items"][0]["rule_id"] == RULE
        and n.json["deliveries"].get("in_app", {}).get("delivered", 0) >= NFILLS
        and n.json["deliveries"].get("webhook", {}).get("delivered", 0) >= NFILLS,
        "GET /alerts/notifications", n)

for t in (reports, t_features, t_signals, t_orders):
    t.stop()
hook.shutdown()
if CHAOS:
    log("copies after crashes (topics must hold none; webhook posts are at least once): %s" % DUPS)
    SUP.stop()
    bad = SUP.sanitizer_reports()
    q.check(not bad, "no sanitizer report in the services' logs: %s" % bad)
    log("QB_CHAOS_SEED=%d" % CH.seed)
q.done()
