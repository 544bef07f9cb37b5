"""test_contract.py — the route table, the OpenAPI document and authorisation.

1. OpenAPI: every route of the table (`qb-api --routes`) is in
   /api/v1/openapi.json with the same least role, and every operation of the
   document is in the table; every body schema parsed; the document passes an
   OpenAPI 3 validator (swagger-parser, when tests/e2e/api/node_modules has it).
2. Authorisation matrix: every route x {no credentials, bad key, expired JWT,
   viewer, trader, admin} (JWT and API key for each role) gives exactly the
   expected class: public routes never 401/403 for valid or absent
   credentials; otherwise none -> 401, bad key / expired -> 401, a role below
   the route's -> 403, at or above -> neither 401 nor 403 (and no 5xx other
   than 503/504). A 401/403 body is exactly the error object: nothing leaks.
Requests of allowed roles carry no body and placeholder path values, so a
write is refused as a bad request (or acts on nothing) — the matrix never
changes state that matters."""
import json
import os
import subprocess

import qbapi as q
from qbapi import req, check

ROLES = {"public": 0, "viewer": 1, "trader": 2, "admin": 3}
BIN = os.path.join(os.environ["QB_BIN_DIR"], "qb-api")

table = []
for line in subprocess.run([BIN, "--routes"], check=True, capture_output=True,
                           text=True).stdout.splitlines():
    m, p, role = line.split()
    table.append((m, p, role))
check(len(table) >= 40, "the route table has the gateway's routes (%d)" % len(table))

doc = req("GET", "/api/v1/openapi.json")
check(doc.status == 200 and doc.json["openapi"].startswith("3."), "openapi document", doc)
ops = {}
for path, item in doc.json["paths"].items():
    for method, op in item.items():
        ops[(method.upper(), path)] = op
tset = {(m, p) for m, p, _ in table}
for k in sorted(tset - set(ops)):
    check(False, "route %s %s missing from the OpenAPI document" % k)
for k in sorted(set(ops) - tset):
    check(False, "OpenAPI operation %s %s is not a route" % k)
for m, p, role in table:
    op = ops.get((m, p))
    if not op:
        continue
    check(op.get("x-min-role") == role, "%s %s: x-min-role %s == %s" % (m, p, op.get("x-min-role"),
                                                                        role))
    check("x-invalid-schema" not in json.dumps(op), "%s %s: its schemas parse" % (m, p))
    params = {pp["name"] for pp in op.get("parameters", []) if pp["in"] == "path"}
    want = {seg[1:-1] for seg in p.split("/") if seg.startswith("{")}
    check(params == want, "%s %s: path parameters documented" % (m, p))
    if role != "public":
        check(op.get("security"), "%s %s: security documented" % (m, p))
ids = [op["operationId"] for op in ops.values()]
check(len(ids) == len(set(ids)), "operationIds unique")

# optional: a real OpenAPI validator from npm (installed by scripts/deps.sh)
val = os.path.join(os.environ["QB_ROOT"], "tests/e2e/api/validate_openapi.mjs")
nm = os.path.join(os.environ["QB_ROOT"], "tests/e2e/api/node_modules/@apidevtools/swagger-parser")
if os.path.exists(val) and os.path.isdir(nm):
    tmp = "/tmp/qb-openapi-%d.json" % os.getpid()
    with open(tmp, "w") as f:
        f.write(doc.text)
    v = subprocess.run(["node", val, tmp], capture_output=True, text=True)
    os.unlink(tmp)
    check(v.returncode == 0, "OpenAPI document valid: " + (v.stdout + v.stderr)[-800:])
else:
    print("note: swagger-parser not installed; structural checks only")

# ---- the matrix -----------------------------------------------------------------------------------
c = q.setup()
creds = {"none": None, "bad key": q.bad_key(), "expired JWT": q.expired_jwt(c["admin"]["user_id"])}
for role in ("viewer", "trader", "admin"):
    creds[role + " jwt"] = c[role]["jwt"]
    creds[role + " key"] = c[role]["key"]


def fill(path):
    out = []
    for seg in path.split("/"):
        if seg.startswith("{"):
            name = seg[1:-1]
            if name == "symbol":
                seg = "AAPL"
            elif name == "id" or name.endswith("_id"):
                seg = "00000000-0000-4000-8000-00000000abcd"
            else:
                seg = "no-such-" + name
        out.append(seg)
    return "/".join(out)


n = 0
for m, p, role in table:
    need = ROLES[role]
    url = fill(p)
    if p == "/api/v1/stream":
        url += "?topics=bars"
    for who, cred in creds.items():
        r = req(m, url, auth=cred, timeout=10) if p != "/api/v1/stream" or who in (
            "none", "bad key", "expired JWT") or need > ROLES[who.split()[0]] else None
        if r is None:  # an allowed stream request stays open: check the status line only
            import http.client
            import urllib.parse
            u = urllib.parse.urlparse(q.API)
            hc = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            h = {"X-API-Key": cred} if cred.startswith("qbk_") else {
                "Authorization": "Bearer " + cred}
            hc.request("GET", url, headers=h)
            resp = hc.getresponse()
            check(resp.status == 200 and resp.getheader("Content-Type", "").startswith(
                "text/event-stream"), "%s %s as %s: stream opens" % (m, p, who))
            hc.close()
            n += 1
            continue
        n += 1
        what = "%s %s as %s" % (m, p, who)
        if who in ("bad key", "expired JWT"):
            check(r.status == 401, what + " -> 401", r)
        elif who == "none":
            check((r.status == 401) == (need > 0), what + (" -> 401" if need else " -> not 401"),
                  r)
        else:
            have = ROLES[who.split()[0]]
            if have < need:
                check(r.status == 403, what + " -> 403", r)
            else:
                check(r.status not in (401, 403) and (r.status < 500 or r.status in (503, 504)),
                      what + " -> allowed", r)
        if r.status in (401, 403):
            check(isinstance(r.json, dict) and list(r.json.keys()) == ["error"]
                  and set(r.json["error"].keys()) == {"code", "message", "field"},
                  what + ": the refusal carries only the error", r)
print("matrix: %d requests over %d routes" % (n, len(table)))
q.done()
