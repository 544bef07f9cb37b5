"""test_auth.py — qb-api authentication, tokens, users, keys, request hygiene.

Run by tests/e2e/test_api_auth.sh against a running qb-api (QB_API_CORS_ORIGINS
=http://desk.example, QB_API_MAX_BODY=65536)."""
import json
import socket
import urllib.parse

import qbapi as q
from qbapi import req, check, check_error

c = q.setup()
adm, viewer, trader = c["admin"], c["viewer"], c["trader"]

# ---- login -----------------------------------------------------------------------------
r = req("POST", "/api/v1/auth/login", body={"username": "admin", "password": "wrong-password"})
check_error(r, 401, what="wrong password")
r2 = req("POST", "/api/v1/auth/login", body={"username": "nobody", "password": "wrong-password"})
check_error(r2, 401, what="unknown user")
check(r.json["error"]["message"] == r2.json["error"]["message"],
      "wrong password and unknown user give the same message", r2)
check_error(req("POST", "/api/v1/auth/login", body={"password": "x"}), 400, field="username",
            what="missing username")
check_error(req("POST", "/api/v1/auth/login", body={"username": "a", "password": "b", "x": 1}),
            400, field="x", what="unknown body field")
check_error(req("POST", "/api/v1/auth/login", body={"username": 5, "password": "b"}), 400,
            field="username", what="username not a string")
check_error(req("POST", "/api/v1/auth/login", raw_body='{"username": "a",'), 400,
            what="broken JSON")
check_error(req("POST", "/api/v1/auth/login", raw_body='[1,2]'), 400, what="JSON not an object")
check_error(req("POST", "/api/v1/auth/login", raw_body="username=a",
                content_type="application/x-www-form-urlencoded"), 415, what="form body")
big = json.dumps({"username": "a", "password": "x" * 70000})
check_error(req("POST", "/api/v1/auth/login", raw_body=big), 413, what="body over the limit")

# ---- who am I, by JWT and by key -------------------------------------------------------------
r = req("GET", "/api/v1/me", auth=trader["jwt"])
check(r.status == 200 and r.json["role"] == "trader" and r.json["via"] == "jwt"
      and r.json["name"] == "trader1", "me by JWT", r)
r = req("GET", "/api/v1/me", auth=viewer["key"])
check(r.status == 200 and r.json["role"] == "viewer" and r.json["via"] == "key"
      and r.json.get("key_id"), "me by key", r)
r = req("GET", "/api/v1/me", headers={"Authorization": "ApiKey " + viewer["key"]})
check(r.status == 200 and r.json["role"] == "viewer", "me by ApiKey scheme", r)
check_error(req("GET", "/api/v1/me"), 401, what="no credentials")
r = req("GET", "/api/v1/me")
check(r.headers.get("www-authenticate", "").startswith("Bearer"), "401 names the scheme", r)
check_error(req("GET", "/api/v1/me", auth=q.bad_key()), 401, what="unknown key")
check_error(req("GET", "/api/v1/me", auth="qbk_short"), 401, what="malformed key")
check_error(req("GET", "/api/v1/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), 401,
            what="basic auth")
check_error(req("GET", "/api/v1/me", auth=q.expired_jwt(adm["user_id"])), 401,
            what="expired JWT")
# a bad credential is refused even on a public route (never silently anonymous)
check_error(req("GET", "/api/v1/health", auth=q.bad_key()), 401, what="bad key on public route")

# ---- JWT checks -------------------------------------------------------------------------------
tok = trader["jwt"]
h, p, s = tok.split(".")
flip = ("A" if s[0] != "A" else "B") + s[1:]
check_error(req("GET", "/api/v1/me", auth=h + "." + p + "." + flip), 401, what="tampered signature")
claims = json.loads(q.base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["role"] = "admin"
forged = h + "." + q._b64(json.dumps(claims).encode()) + "." + s
check_error(req("GET", "/api/v1/users", auth=forged), 401, what="payload changed to admin")
none_tok = q._b64(b'{"alg":"none","typ":"JWT","kid":"k1"}') + "." + q._b64(
    json.dumps(claims).encode()) + "."
check_error(req("GET", "/api/v1/me", auth=none_tok), 401, what="alg none")
old_kid, old_secret = q.JWT_KEYS[1]
now = int(q.time.time())
rot = q.make_jwt({"sub": trader["user_id"], "name": "trader1", "role": "trader", "typ": "access",
                  "jti": "11111111-1111-4111-8111-111111111111", "iat": now, "exp": now + 60},
                 kid=old_kid, secret=old_secret)
r = req("GET", "/api/v1/me", auth=rot)
check(r.status == 200 and r.json["role"] == "trader", "token of the second (older) key verifies", r)
foreign = q.make_jwt({"sub": trader["user_id"], "name": "t", "role": "trader", "typ": "access",
                      "jti": "", "iat": now, "exp": now + 60}, kid="k9",
                     secret="another-secret-0123456789abcdef0123456789")
check_error(req("GET", "/api/v1/me", auth=foreign), 401, what="unknown key id")

# ---- refresh: once only, reuse revokes everything --------------------------------------------
t1 = q.login("trader1", trader["password"])
check_error(req("GET", "/api/v1/me", auth=t1["refresh_token"]), 401,
            what="refresh token used as access token")
r = req("POST", "/api/v1/auth/refresh", body={"refresh_token": t1["refresh_token"]})
check(r.status == 200 and r.json["access_token"] and r.json["refresh_token"]
      and r.json["user"]["role"] == "trader", "refresh gives a new pair", r)
t2 = r.json
check(req("GET", "/api/v1/me", auth=t2["access_token"]).status == 200, "new access token works")
check_error(req("POST", "/api/v1/auth/refresh", body={"refresh_token": t1["refresh_token"]}), 401,
            field="refresh_token", what="refresh token reused")
check_error(req("POST", "/api/v1/auth/refresh", body={"refresh_token": t2["refresh_token"]}), 401,
            field="refresh_token", what="after reuse every refresh token of the user is revoked")
check_error(req("POST", "/api/v1/auth/refresh", body={"refresh_token": t2["access_token"]}), 401,
            field="refresh_token", what="access token used to refresh")
t3 = q.login("trader1", trader["password"])
r = req("POST", "/api/v1/auth/logout", auth=t3["access_token"],
        body={"refresh_token": t3["refresh_token"]})
check(r.status == 204, "logout", r)
check_error(req("POST", "/api/v1/auth/refresh", body={"refresh_token": t3["refresh_token"]}), 401,
            field="refresh_token", what="refresh after logout")
check_error(req("POST", "/api/v1/auth/logout", auth=viewer["jwt"],
                body={"refresh_token": t3["refresh_token"]}), 400, field="refresh_token",
            what="logout of somebody else's token")

# ---- users (admin) ------------------------------------------------------------------------------
check_error(req("GET", "/api/v1/users", auth=trader["jwt"]), 403, what="trader lists users")
r = req("GET", "/api/v1/users", auth=adm["jwt"])
names = sorted(u["name"] for u in r.json["items"]) if r.status == 200 else []
check(names == ["admin", "trader1", "viewer1"], "users listed", r)
check("password_hash" not in r.text and "pbkdf2" not in r.text, "no hash in the user list", r)
check_error(req("POST", "/api/v1/users", auth=adm["jwt"],
                body={"name": "trader1", "password": "0123456789ab", "role": "viewer"}), 409,
            field="name", what="duplicate user")
check_error(req("POST", "/api/v1/users", auth=adm["jwt"],
                body={"name": "bad name!", "password": "0123456789ab", "role": "viewer"}), 400,
            field="name", what="bad user name")
check_error(req("POST", "/api/v1/users", auth=adm["jwt"],
                body={"name": "shorty", "password": "short", "role": "viewer"}), 400,
            field="password", what="short password")
check_error(req("POST", "/api/v1/users", auth=adm["jwt"],
                body={"name": "x1", "password": "0123456789ab", "role": "root"}), 400,
            field="role", what="unknown role")
r = req("POST", "/api/v1/users", auth=adm["jwt"],
        body={"name": "temp1", "password": "temp-password-1", "role": "trader"})
check(r.status == 201 and r.json["role"] == "trader" and r.headers.get("location", "").endswith(
    r.json["user_id"]), "user created", r)
temp_id = r.json["user_id"]
tt = q.login("temp1", "temp-password-1")
tk = req("POST", "/api/v1/keys", auth=tt["access_token"], body={"name": "temp"}).json["key"]
check(req("GET", "/api/v1/me", auth=tk).status == 200, "temp user's key works")
check_error(req("PATCH", "/api/v1/users/not-a-uuid", auth=adm["jwt"], body={"role": "viewer"}),
            400, field="user_id", what="user id not a UUID")
check_error(req("PATCH", "/api/v1/users/" + temp_id, auth=adm["jwt"], body={}), 400,
            what="empty patch")
check_error(req("PATCH", "/api/v1/users/00000000-0000-4000-8000-000000000000", auth=adm["jwt"],
                body={"role": "viewer"}), 404, field="user_id", what="patch unknown user")
check_error(req("PATCH", "/api/v1/users/" + adm["user_id"], auth=adm["jwt"],
                body={"role": "viewer"}), 409, field="role", what="admin demotes themselves")
r = req("PATCH", "/api/v1/users/" + temp_id, auth=adm["jwt"], body={"role": "viewer"})
check(r.status == 200 and r.json["role"] == "viewer", "role changed", r)
r = req("GET", "/api/v1/me", auth=tk)
check(r.status == 200 and r.json["role"] == "viewer", "a key never outranks its owner", r)
r = req("PATCH", "/api/v1/users/" + temp_id, auth=adm["jwt"], body={"disabled": True})
check(r.status == 200 and r.json["disabled"] is True, "user disabled", r)
check_error(req("POST", "/api/v1/auth/login",
                body={"username": "temp1", "password": "temp-password-1"}), 401,
            what="disabled user logs in")
check_error(req("GET", "/api/v1/me", auth=tk), 401, what="disabled user's key")
check_error(req("POST", "/api/v1/auth/refresh", body={"refresh_token": tt["refresh_token"]}), 401,
            field="refresh_token", what="disabled user refreshes")

# ---- keys -------------------------------------------------------------------------------------------
check_error(req("POST", "/api/v1/keys", auth=viewer["jwt"], body={"role": "admin"}), 403,
            field="role", what="viewer makes an admin key")
check_error(req("POST", "/api/v1/keys", auth=viewer["jwt"],
                body={"expires_at": "2001-01-01T00:00:00Z"}), 400, field="expires_at",
            what="key expiring in the past")
check_error(req("POST", "/api/v1/keys", auth=viewer["jwt"], body={"expires_at": "tomorrow"}), 400,
            field="expires_at", what="bad expiry")
r = req("POST", "/api/v1/keys", auth=trader["jwt"], body={"name": "short-lived", "role": "viewer"})
check(r.status == 201 and r.json["key"].startswith("qbk_") and r.json["role"] == "viewer"
      and r.json["prefix"] == r.json["key"][:12], "key created", r)
k2, k2id = r.json["key"], r.json["key_id"]
r = req("GET", "/api/v1/keys", auth=trader["jwt"])
ids = [k["key_id"] for k in r.json["items"]] if r.status == 200 else []
check(k2id in ids and "key" not in r.json["items"][0] and k2 not in r.text, "own keys listed, "
      "without the key", r)
check_error(req("GET", "/api/v1/keys?all=true", auth=trader["jwt"]), 403, field="all",
            what="trader lists all keys")
r = req("GET", "/api/v1/keys?all=true", auth=adm["jwt"])
check(r.status == 200 and len(r.json["items"]) >= 5, "admin lists all keys", r)
check_error(req("GET", "/api/v1/keys?all=maybe", auth=adm["jwt"]), 400, field="all",
            what="bad boolean")
check_error(req("GET", "/api/v1/keys?colour=red", auth=adm["jwt"]), 400, field="colour",
            what="unknown query parameter")
check_error(req("DELETE", "/api/v1/keys/" + k2id, auth=viewer["jwt"]), 404, field="key_id",
            what="revoke somebody else's key")
check(req("DELETE", "/api/v1/keys/" + k2id, auth=trader["jwt"]).status == 204, "key revoked")
check_error(req("GET", "/api/v1/me", auth=k2), 401, what="revoked key")
check(q.sql("SELECT count(*) FROM api.api_keys WHERE key_id = '%s' AND revoked_at IS NOT NULL"
            % k2id)[0][0] == "1", "revocation stored")
check(q.sql("SELECT count(*) FROM api.api_keys WHERE hash = encode(sha256('%s'::bytea), 'hex')"
            % k2)[0][0] == "1", "key stored as its SHA-256")

# ---- routing, CORS, static ------------------------------------------------------------------------
check_error(req("GET", "/api/v1/nope", auth=adm["jwt"]), 404, what="unknown route")
r = req("PUT", "/api/v1/me", auth=adm["jwt"])
check_error(r, 405, what="wrong method")
check("GET" in r.headers.get("allow", ""), "405 lists the allowed methods", r)
r = req("OPTIONS", "/api/v1/me", headers={"Origin": "http://desk.example",
                                          "Access-Control-Request-Method": "GET"})
check(r.status == 204 and r.headers.get("access-control-allow-origin") == "http://desk.example"
      and "X-API-Key" in r.headers.get("access-control-allow-headers", ""),
      "preflight from an allowed origin", r)
r = req("OPTIONS", "/api/v1/me", headers={"Origin": "http://evil.example",
                                          "Access-Control-Request-Method": "GET"})
check(r.status == 403 and "access-control-allow-origin" not in r.headers,
      "preflight from another origin refused", r)
r = req("GET", "/api/v1/me", auth=viewer["jwt"], headers={"Origin": "http://desk.example"})
check(r.headers.get("access-control-allow-origin") == "http://desk.example", "CORS on GET", r)
r = req("GET", "/api/v1/me", auth=viewer["jwt"], headers={"Origin": "http://evil.example"})
check("access-control-allow-origin" not in r.headers, "no CORS for other origins", r)
# path traversal never leaves the static directory
u = urllib.parse.urlparse(q.API)
sk = socket.create_connection((u.hostname, u.port))
sk.sendall(b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
raw = b""
while True:
    b = sk.recv(65536)
    if not b:
        break
    raw += b
sk.close()
check(b"root:" not in raw and (b" 404 " in raw.split(b"\r\n")[0] or b" 400 " in raw.split(b"\r\n")[0]),
      "path traversal refused", raw[:200])

# ---- audit: actions recorded, secrets never --------------------------------------------------------
r = req("GET", "/api/v1/audit?limit=1000", auth=adm["jwt"])
acts = [a["action"] for a in r.json["items"]] if r.status == 200 else []
for a in ("login", "login_failed", "user_create", "user_update", "key_create", "key_revoke"):
    check(a in acts, "audit has " + a, r)
check(k2 not in r.text and "temp-password-1" not in r.text and "wrong-password" not in r.text,
      "no secret in the audit trail", r)
r = req("GET", "/api/v1/audit?limit=2", auth=adm["jwt"])
check(r.status == 200 and len(r.json["items"]) == 2 and r.json["next_cursor"], "audit page 1", r)
r2 = req("GET", "/api/v1/audit?limit=2&cursor=" + r.json["next_cursor"], auth=adm["jwt"])
check(r2.status == 200 and r2.json["items"][0]["audit_id"] < r.json["items"][1]["audit_id"] + 1
      and r2.json["items"][0]["audit_id"] != r.json["items"][1]["audit_id"], "audit page 2", r2)
check_error(req("GET", "/api/v1/audit?cursor=%%%", auth=adm["jwt"]), 400, field="cursor",
            what="garbage cursor")
check_error(req("GET", "/api/v1/audit?limit=0", auth=adm["jwt"]), 400, field="limit",
            what="limit 0")
r = req("GET", "/api/v1/audit?source=trading", auth=adm["jwt"])
check(r.status == 200 and r.json["items"] == [], "trading audit (empty here)", r)
q.done()
