"""test_sse.py — live streams (qb-api started with QB_API_SSE_BUFFER=512,
QB_API_CONN_TIMEOUT_S=3, QB_API_SSE_HEARTBEAT_MS=500).

- a client subscribed to bars for one symbol receives a bar published on
  md.bars (by `qbctl produce`), with the message decoded, and not another
  symbol's bar;
- after a disconnect, reconnecting with Last-Event-ID gives exactly the bars
  published meanwhile, in order; an id from elsewhere gives `event: reset`;
- heartbeats arrive on an idle stream;
- a stalled client (never reads) while 30,000 bars stream is dropped (the
  connection times out) and the gateway's memory does not grow with it."""
import os
import socket
import subprocess
import time
import urllib.parse

import qbapi as q
from qbapi import check

QBCTL = os.path.join(os.environ["QB_BIN_DIR"], "qbctl")
U = urllib.parse.urlparse(q.API)
c = q.setup()
TOKEN = c["viewer"]["jwt"]
TAG = str(os.getpid())


class SSE:
    def __init__(self, query, token=TOKEN, last_id=None, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect((U.hostname, U.port))
        h = "GET /api/v1/stream?%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % (
            query, token)
        if last_id:
            h += "Last-Event-ID: %s\r\n" % last_id
        self.s.sendall((h + "\r\n").encode())
        self.buf = b""
        self.head = None

    def _fill(self, deadline):
        self.s.settimeout(max(0.01, deadline - time.time()))
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        if not d:
            raise EOFError
        self.buf += d
        return True

    def events(self, seconds):
        """Yield (event, id, data) until `seconds` pass; comments as ('comment', None, text)."""
        deadline = time.time() + seconds
        while self.head is None:
            if b"\r\n\r\n" in self.buf:
                self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                break
            if not self._fill(deadline):
                return
        while time.time() < deadline:
            # de-chunk lazily: strip chunk-size lines (hex digits alone on a line)
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                ev, eid, data = "message", None, []
                for line in block.split(b"\n"):
                    line = line.rstrip(b"\r")
                    t = line.decode()
                    if all(ch in "0123456789abcdefABCDEF" for ch in t) and t:
                        continue  # chunk size
                    if t.startswith(":"):
                        yield ("comment", None, t)
                    elif t.startswith("event: "):
                        ev = t[7:]
                    elif t.startswith("id: "):
                        eid = t[4:]
                    elif t.startswith("data: "):
                        data.append(t[6:])
                    elif t.startswith("retry: ") or t == "":
                        pass
                if data:
                    yield (ev, eid, "\n".join(data))
            try:
                if not self._fill(deadline):
                    return
            except EOFError:
                return

    def close(self):
        self.s.close()


def produce_bars(sym, ts_list, price=100):
    lines = []
    for i, ts in enumerate(ts_list):
        p = (price + i) * 100000000
        lines.append('{"symbol":"%s","timeframe":"1m","ts":"%d","open":"%d","high":"%d","low":"%d",'
                     '"close":"%d","volume":"100000000","source":"e2e"}' % (sym, ts, p, p + 1, p - 1,
                                                                             p))
    subprocess.run([QBCTL, "produce", "md.bars"], input="\n".join(lines) + "\n", text=True,
                   check=True, capture_output=True)


def collect(sse, n, seconds, kind=None):
    got = []
    for ev, eid, data in sse.events(seconds):
        if ev == "comment":
            continue
        if kind and ev != kind:
            got.append((ev, eid, data))
            break
        got.append((ev, eid, data))
        if len(got) >= n:
            break
    return got


import json

A, Bsym = "SSEA" + TAG, "SSEB" + TAG
T0 = 1700000000000000000
s1 = SSE("topics=bars&symbols=" + A.lower())
next(s1.events(5), None)  # let the stream open (headers + retry line)
time.sleep(1.0)           # the hub's readers are at the end of the topic
produce_bars(Bsym, [T0])
produce_bars(A, [T0])
got = collect(s1, 1, 20)
check(len(got) == 1 and got[0][0] == "bars", "a bar arrives on the stream", got)
if got:
    d = json.loads(got[0][2])
    m = d["message"]
    check(d["topic"].endswith("md.bars") and d["type"] == "qb.v1.Bar" and m["symbol"] == A
          and m["ts"] == str(T0) and m["close"] == "10000000000",
          "the event carries the decoded Bar of the subscribed symbol", d)
    last_id = got[0][1]
    check(last_id and "-" in last_id, "events have ids", got)
s1.close()

# ---- resume ----------------------------------------------------------------------------------------
produce_bars(A, [T0 + 60 * 10**9 * k for k in (1, 2, 3)], price=200)
time.sleep(1.5)
s2 = SSE("topics=bars&symbols=" + A, last_id=last_id)
got = collect(s2, 3, 15)
tss = [json.loads(g[2])["message"]["ts"] for g in got]
check(tss == [str(T0 + 60 * 10**9 * k) for k in (1, 2, 3)],
      "Last-Event-ID resumes with exactly the missed bars, in order", tss)
more = collect(s2, 1, 1.5)
check(more == [], "nothing repeated after the resume", more)
s2.close()
s3 = SSE("topics=bars", last_id="ffff-12")
got = collect(s3, 1, 5)
check(got and got[0][0] == "reset", "a foreign Last-Event-ID gives a reset event", got)
s3.close()

# ---- heartbeat and bad requests ----------------------------------------------------------------------
s4 = SSE("topics=backtests&run=nothing")
hb = [e for e in s4.events(2.5) if e[0] == "comment"]
check(len(hb) >= 2 and "heartbeat" in hb[0][2], "heartbeats on an idle stream", hb)
s4.close()
r = q.req("GET", "/api/v1/stream?topics=bars,weather", auth=TOKEN)
q.check_error(r, 400, field="topics", what="unknown stream")


# ---- a stalled client -----------------------------------------------------------------------------------
def metric(name):
    txt = q.req("GET", "/metrics", base=q.API_ADMIN).text
    for line in txt.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0.0


# a client reading slower than the events come is dropped once it is a whole ring
# (512 events) behind: it stops reading for a second during a 20,000-bar burst
dropped0 = metric("qb_api_sse_dropped_total")
reader = SSE("topics=bars", rcvbuf=4096)
next(reader.events(2), None)
produce_bars("WARM" + TAG, [T0 + 60 * 10**9 * k for k in range(20000)])
time.sleep(1.0)
n = 0
for ev, _, _ in reader.events(30):
    n += ev == "bars"
check(n < 20000, "the slow client did not get the whole burst (%d of 20000)" % n)
check(metric("qb_api_sse_dropped_total") > dropped0, "the slow client was dropped (lapped)")
reader.close()
rss0 = metric("process_resident_memory_bytes")
timeouts0 = metric("qb_api_connections_timed_out_total")
dropped0 = metric("qb_api_sse_dropped_total")
stalled = SSE("topics=bars", rcvbuf=4096)
time.sleep(0.5)
produce_bars("FLOOD" + TAG, [T0 + 60 * 10**9 * k for k in range(30000)])
closed = q.wait_for(lambda: metric("qb_api_connections_timed_out_total") > timeouts0
                    or metric("qb_api_sse_dropped_total") > dropped0, 40,
                    "the stalled client to be dropped")
check(bool(closed), "stalled client dropped")
rss1 = metric("process_resident_memory_bytes")
growth = (rss1 - rss0) / 1048576
print("RSS before %.1f MiB, after 30000 bars with a stalled client %.1f MiB (%+.1f)" % (
    rss0 / 1048576, rss1 / 1048576, growth))
check(growth < 24, "the gateway's memory did not grow with the stalled client (%+.1f MiB)" % growth)
# the server side of the stalled connection is gone: reading now ends
stalled.s.settimeout(10)
eof = False
try:
    while stalled.s.recv(65536):
        pass
    eof = True
except (ConnectionResetError, socket.timeout):
    eof = True
check(eof, "the stalled connection was closed by the server")
stalled.close()
check(q.wait_for(lambda: metric("qb_api_sse_clients") == 0, 10, "clients gauge back to 0") is not None,
      "no stream clients left")
q.done()
