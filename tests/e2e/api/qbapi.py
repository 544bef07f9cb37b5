"""qbapi.py — a small client for the qb-api end-to-end tests (stdlib only).

Environment (set by lib.sh api_py): API (base URL), API_ADMIN (admin port URL),
API_DSN (the test database), API_ADMIN_PW, API_JWT (the gateway's JWT keys).

    import qbapi as q
    c = q.setup()                    # users + keys for every role
    r = q.req("GET", "/api/v1/me", auth=c["trader"]["jwt"])
    q.check(r.status == 200, "me", r)
    q.check_error(r2, 400, field="limit")
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import string
import subprocess
import sys
import time
import urllib.parse

API = os.environ.get("API", "")
API_ADMIN = os.environ.get("API_ADMIN", "")
DSN = os.environ.get("API_DSN", "")
ADMIN_PW = os.environ.get("API_ADMIN_PW", "")
JWT_KEYS = [kv.split(":", 1) for kv in os.environ.get("API_JWT", "").split(",") if ":" in kv]

FAILS = 0


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.text[:600])


def _conn(base=None, timeout=30):
    u = urllib.parse.urlparse(base or API)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def req(method, path, auth=None, body=None, headers=None, raw_body=None, base=None,
        timeout=30, content_type="application/json"):
    """auth: an API key (qbk_...) goes in X-API-Key, anything else is a Bearer token."""
    h = dict(headers or {})
    if auth:
        if auth.startswith("qbk_"):
            h["X-API-Key"] = auth
        else:
            h["Authorization"] = "Bearer " + auth
    data = None
    if body is not None:
        data = json.dumps(body).encode()
    if raw_body is not None:
        data = raw_body if isinstance(raw_body, bytes) else raw_body.encode()
    if data is not None and content_type:
        h.setdefault("Content-Type", content_type)
    c = _conn(base, timeout)
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def check(cond, what, resp=None):
    global FAILS
    if cond:
        return True
    FAILS += 1
    print("FAIL: %s%s" % (what, (" -- %r" % (resp,)) if resp is not None else ""), file=sys.stderr)
    return False


def check_error(resp, status, field=None, what=""):
    """A 4xx/5xx with the standard error body; field checked when given."""
    ok = resp.status == status and isinstance(resp.json, dict) and "error" in resp.json
    if ok:
        e = resp.json["error"]
        ok = set(e.keys()) == {"code", "message", "field"} and isinstance(e["message"], str) \
            and e["message"] != ""
        if ok and field is not None:
            ok = e["field"] == field
    return check(ok, "%s: expected %d error%s" % (what or "request", status,
                                                  (" on field %s" % field) if field else ""), resp)


def done():
    if FAILS:
        print("%d check(s) failed" % FAILS, file=sys.stderr)
        sys.exit(1)
    print("ok")


def sql(query, *args):
    """Run SQL on the test database (psql); returns rows as lists of strings."""
    out = subprocess.run(["psql", DSN, "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line != ""]


def login(user, pw):
    r = req("POST", "/api/v1/auth/login", body={"username": user, "password": pw})
    if r.status != 200:
        raise RuntimeError("login %s: %r" % (user, r))
    return r.json


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(claims, kid=None, secret=None, alg="HS256"):
    """Sign claims like the gateway does (tests craft expired or foreign tokens)."""
    if kid is None:
        kid, secret = JWT_KEYS[0]
    head = {"alg": alg, "typ": "JWT", "kid": kid}
    h = _b64(json.dumps(head, separators=(",", ":")).encode())
    p = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + _b64(sig)


def expired_jwt(user_id, name="x", role="admin"):
    now = int(time.time())
    return make_jwt({"sub": user_id, "name": name, "role": role, "typ": "access",
                     "jti": "00000000-0000-4000-8000-000000000000",
                     "iat": now - 7200, "exp": now - 3600})


def bad_key():
    return "qbk_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(43))


_SETUP = None


def setup():
    """Users viewer1 / trader1 / admin (bootstrap) and one API key each.
    Returns {role: {"jwt", "key", "user_id", "name", "password"}} (idempotent per process)."""
    global _SETUP
    if _SETUP:
        return _SETUP
    adm = login("admin", ADMIN_PW)
    out = {"admin": {"jwt": adm["access_token"], "user_id": adm["user"]["user_id"],
                     "name": "admin", "password": ADMIN_PW}}
    for role in ("viewer", "trader"):
        name = role + "1"
        pw = "pw-" + role + "-0123456789"
        r = req("POST", "/api/v1/users", auth=out["admin"]["jwt"],
                body={"name": name, "password": pw, "role": role})
        if r.status not in (201, 409):
            raise RuntimeError("create user %s: %r" % (name, r))
        t = login(name, pw)
        out[role] = {"jwt": t["access_token"], "user_id": t["user"]["user_id"], "name": name,
                     "password": pw}
    for role, c in out.items():
        r = req("POST", "/api/v1/keys", auth=c["jwt"], body={"name": "test-" + role})
        if r.status != 201:
            raise RuntimeError("create key for %s: %r" % (role, r))
        c["key"] = r.json["key"]
    _SETUP = out
    return out


def wait_for(fn, seconds=30, what="condition"):
    """Poll fn() until it returns a true value; returns it (or fails the test)."""
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    check(False, "timed out waiting for " + what)
    return None
