"""test_ratelimit.py — the per-principal token bucket (QB_API_RATE_PER_S=2,
QB_API_RATE_BURST=5): a burst of 5 passes, the 6th is 429 with Retry-After and
the standard error, another key is not affected, and after Retry-After seconds
the bucket has refilled and requests pass again; refusals are counted on
/metrics. The quote routes, whose bucket rides in the same Redis round trip as
the quote itself, share the principal's bucket: refused with 429 too, even
when the request was bad (the 429 replaces the 400)."""
import time

import qbapi as q
from qbapi import req, check, check_error

c = q.setup()  # its requests use tokens too: start from a full bucket
time.sleep(3)
k1, k2 = c["viewer"]["key"], c["trader"]["key"]
codes = []
for i in range(5):
    r = req("GET", "/api/v1/me", auth=k1)
    codes.append(r.status)
check(codes == [200] * 5, "burst of 5 allowed: %r" % codes)
r = req("GET", "/api/v1/me", auth=k1)
check_error(r, 429, what="6th request in the burst")
ra = int(r.headers.get("retry-after", "0"))
check(1 <= ra <= 2, "Retry-After in seconds (%r)" % r.headers.get("retry-after"), r)
check(r.headers.get("x-ratelimit-remaining") == "0", "X-RateLimit-Remaining: 0", r)
r2 = req("GET", "/api/v1/me", auth=k2)
check(r2.status == 200, "another key has its own bucket", r2)
time.sleep(ra + 0.2)
r = req("GET", "/api/v1/me", auth=k1)
check(r.status == 200, "allowed again after Retry-After", r)
# sustained: 2/s passes with only occasional refusals, 10/s is mostly refused
time.sleep(3)
ok = 0
for i in range(20):
    ok += req("GET", "/api/v1/me", auth=k1).status == 200
    time.sleep(0.1)
check(5 <= ok <= 12, "at 10 req/s for 2 s about burst + 2/s pass (%d of 20)" % ok)
# anonymous callers are limited per address (login guessing)
time.sleep(3)
codes = [req("POST", "/api/v1/auth/login", body={"username": "x", "password": "y"}).status
         for _ in range(8)]
check(codes[:5] == [401] * 5 and 429 in codes[5:], "anonymous logins limited: %r" % codes)
# quotes: the bucket taken in the quote's own Redis round trip, the same bucket as other routes
time.sleep(3)
codes = [req("GET", "/api/v1/market/quote/NOSUCH", auth=k2).status for _ in range(3)]
codes += [req("GET", "/api/v1/me", auth=k2).status for _ in range(2)]
check(codes == [404, 404, 404, 200, 200], "3 quotes + 2 other requests use the burst: %r" % codes)
r = req("GET", "/api/v1/market/quote/NOSUCH", auth=k2)
check_error(r, 429, what="quote over the limit")
check(1 <= int(r.headers.get("retry-after", "0")) <= 2, "quote 429 has Retry-After", r)
check_error(req("GET", "/api/v1/market/quotes?symbols=A,B", auth=k2), 429, what="quotes over the limit")
check_error(req("GET", "/api/v1/market/quote/NOSUCH?timeframe=7m", auth=k2), 429,
            what="a bad quote request over the limit")
time.sleep(1.2)
r = req("GET", "/api/v1/market/quote/NOSUCH", auth=k2)
check(r.status == 404, "quotes allowed again after Retry-After", r)
m = req("GET", "/metrics", base=q.API_ADMIN)
val = [l for l in m.text.splitlines() if l.startswith("qb_api_ratelimit_refused_total")]
check(val and float(val[0].split()[-1]) >= 3, "refusals counted on /metrics", val)
q.done()
