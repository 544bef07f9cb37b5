/* api_users.c — logging in, tokens, users, API keys and the audit trail.
 *
 * Login: POST /auth/login {username, password} checks the PBKDF2 hash (a
 * missing user costs the same as a wrong password) and returns an access
 * token (JWT, typ "access", QB_API_ACCESS_TTL_S) and a refresh token (JWT,
 * typ "refresh", QB_API_REFRESH_TTL_S, its jti stored in
 * api.refresh_tokens). Refresh: POST /auth/refresh {refresh_token} uses the
 * token ONCE (UPDATE ... WHERE used_at IS NULL) and returns a new pair with
 * the user's CURRENT role; presenting an already-used refresh token is
 * treated as theft: every refresh token of that user is revoked. Logout
 * revokes a refresh token. Access tokens are not revocable (short-lived):
 * a disabled user keeps access until the token expires, at most
 * QB_API_ACCESS_TTL_S (15 min by default), but cannot refresh.
 *
 * API keys: shown once at creation, stored as SHA-256; a key's role is at
 * most its owner's. Users see and revoke their own keys; admins all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/qb_log.h"
#include "core/qb_uuid.h"

static const char *const ROLES = "viewer|trader|admin";

/* ---- tokens ---------------------------------------------------------------------------------- */
static int issue_pair(api_req_t *r, const char *user_id, const char *name, const char *role) {
    const api_cfg_t *cfg = api_cfg(r->api);
    int64_t now = api_now_ns() / 1000000000;
    qb_jwt_claims_t c = {0};
    snprintf(c.sub, sizeof c.sub, "%s", user_id);
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.role, sizeof c.role, "%s", role);
    snprintf(c.typ, sizeof c.typ, "access");
    char jti[QB_UUID_STRLEN];
    qb_uuid_v4(jti);
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    c.iat = now;
    c.exp = now + cfg->access_ttl_s;
    char access[QB_JWT_MAX_LEN + 1], refresh[QB_JWT_MAX_LEN + 1], err[256];
    if (qb_jwt_sign(api_jwt_keys(r->api), &c, access, sizeof access, err, sizeof err) != QB_OK) {
        api_error(r, 500, NULL, "cannot sign a token: %s", err);
        return 0;
    }
    qb_uuid_v4(jti);
    snprintf(c.jti, sizeof c.jti, "%s", jti);
    snprintf(c.typ, sizeof c.typ, "refresh");
    c.exp = now + cfg->refresh_ttl_s;
    if (qb_jwt_sign(api_jwt_keys(r->api), &c, refresh, sizeof refresh, err, sizeof err) !=
        QB_OK) {
        api_error(r, 500, NULL, "cannot sign a token: %s", err);
        return 0;
    }
    char exp[32];
    snprintf(exp, sizeof exp, "%lld", (long long)c.exp);
    const char *p[] = {jti, user_id, exp};
    PGresult *res = api_query_rw(r,
                                 "INSERT INTO api.refresh_tokens (jti, user_id, expires_at) "
                                 "VALUES ($1, $2, to_timestamp($3::bigint))",
                                 3, p);
    if (!res) return 0;
    PQclear(res);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", access);
    cJSON_AddStringToObject(o, "token_type", "Bearer");
    cJSON_AddNumberToObject(o, "expires_in", (double)cfg->access_ttl_s);
    cJSON_AddStringToObject(o, "refresh_token", refresh);
    cJSON_AddNumberToObject(o, "refresh_expires_in", (double)cfg->refresh_ttl_s);
    cJSON *u = cJSON_AddObjectToObject(o, "user");
    cJSON_AddStringToObject(u, "user_id", user_id);
    cJSON_AddStringToObject(u, "name", name);
    cJSON_AddStringToObject(u, "role", role);
    api_json(r, 200, o);
    return 1;
}

void h_login(api_req_t *r) {
    static const char *const allowed[] = {"username", "password", NULL};
    const char *user = NULL, *pw = NULL;
    if (!api_body_only(r, allowed) || !api_body_str(r, "username", 1, 64, &user) ||
        !api_body_str(r, "password", 1, 1024, &pw))
        return;
    const char *p[] = {user};
    PGresult *res = api_query_rw(
        r, "SELECT user_id::text, name, role, password_hash, disabled FROM api.users WHERE name = $1",
        1, p);
    if (!res) return;
    /* the same work whether or not the user exists (the iterations new hashes get) */
    char dummy[160];
    snprintf(dummy, sizeof dummy,
             "pbkdf2-sha256$%d$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             api_pbkdf2_iter(r->api));
    int found = PQntuples(res) == 1;
    int ok = qb_auth_password_verify(pw, found ? PQgetvalue(res, 0, 3) : dummy) && found;
    if (!ok || PQgetvalue(res, 0, 4)[0] == 't') {
        PQclear(res);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", ok ? "user disabled" : "bad credentials");
        snprintf(r->who.name, sizeof r->who.name, "%s", user);
        api_audit(r, "login_failed", user, d);
        r->who.name[0] = 0;
        api_error(r, 401, NULL, "wrong user name or password");
        return;
    }
    char uid[40], name[64], role[16];
    snprintf(uid, sizeof uid, "%s", PQgetvalue(res, 0, 0));
    snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, 1));
    snprintf(role, sizeof role, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    snprintf(r->who.user_id, sizeof r->who.user_id, "%s", uid);
    snprintf(r->who.name, sizeof r->who.name, "%s", name);
    api_audit(r, "login", name, NULL);
    issue_pair(r, uid, name, role);
}

void h_refresh(api_req_t *r) {
    static const char *const allowed[] = {"refresh_token", NULL};
    const char *tok = NULL;
    if (!api_body_only(r, allowed) ||
        !api_body_str(r, "refresh_token", 1, QB_JWT_MAX_LEN, &tok))
        return;
    qb_jwt_claims_t c;
    char err[256];
    if (qb_jwt_verify(api_jwt_keys(r->api), tok, api_now_ns() / 1000000000, &c, err,
                      sizeof err) != QB_OK) {
        api_error(r, 401, "refresh_token", "invalid refresh token: %s", err);
        return;
    }
    if (strcmp(c.typ, "refresh") || !qb_uuid_valid(c.jti)) {
        api_error(r, 401, "refresh_token", "invalid refresh token: not a refresh token");
        return;
    }
    const char *p[] = {c.jti, c.sub};
    PGresult *res = api_query_rw(
        r,
        "UPDATE api.refresh_tokens t SET used_at = now() FROM api.users u "
        "WHERE t.jti = $1 AND t.user_id = $2 AND u.user_id = t.user_id AND t.used_at IS NULL "
        "AND t.revoked_at IS NULL AND t.expires_at > now() AND NOT u.disabled "
        "RETURNING u.user_id::text, u.name, u.role",
        2, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        /* a used token presented again: somebody else has it too */
        PGresult *reuse = api_query_rw(
            r,
            "UPDATE api.refresh_tokens SET revoked_at = now() WHERE user_id = $2 AND "
            "revoked_at IS NULL AND EXISTS (SELECT 1 FROM api.refresh_tokens WHERE jti = $1 "
            "AND used_at IS NOT NULL)",
            2, p);
        if (!reuse) return;
        int revoked = atoi(PQcmdTuples(reuse));
        PQclear(reuse);
        if (revoked) QB_WARN("refresh token reuse for user %s: all its refresh tokens revoked", c.sub);
        api_error(r, 401, "refresh_token", "refresh token already used, revoked or expired");
        return;
    }
    char uid[40], name[64], role[16];
    snprintf(uid, sizeof uid, "%s", PQgetvalue(res, 0, 0));
    snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, 1));
    snprintf(role, sizeof role, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    issue_pair(r, uid, name, role);
}

void h_logout(api_req_t *r) {
    static const char *const allowed[] = {"refresh_token", NULL};
    const char *tok = NULL;
    if (!api_body_only(r, allowed) ||
        !api_body_str(r, "refresh_token", 1, QB_JWT_MAX_LEN, &tok))
        return;
    qb_jwt_claims_t c;
    char err[256];
    if (qb_jwt_verify(api_jwt_keys(r->api), tok, api_now_ns() / 1000000000, &c, err,
                      sizeof err) != QB_OK ||
        strcmp(c.typ, "refresh") || strcmp(c.sub, r->who.user_id) || !qb_uuid_valid(c.jti)) {
        api_error(r, 400, "refresh_token", "not a valid refresh token of yours");
        return;
    }
    const char *p[] = {c.jti};
    PGresult *res = api_query_rw(
        r, "UPDATE api.refresh_tokens SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL",
        1, p);
    if (!res) return;
    PQclear(res);
    api_json(r, 204, NULL);
}

void h_me(api_req_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user_id", r->who.user_id);
    cJSON_AddStringToObject(o, "name", r->who.name);
    cJSON_AddStringToObject(o, "role", qb_role_name(r->who.role));
    cJSON_AddStringToObject(o, "via", r->who.via);
    if (r->who.key_id[0]) cJSON_AddStringToObject(o, "key_id", r->who.key_id);
    api_json(r, 200, o);
}

/* ---- users (admin) ------------------------------------------------------------------------------ */
static const char USER_COLS[] =
    "user_id::text AS user_id, name, role, disabled, created_at, updated_at";

void h_users_list(api_req_t *r) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM api.users ORDER BY name", USER_COLS);
    PGresult *res = api_query_rw(r, sql, 0, NULL);
    if (!res) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", api_pg_rows_json(res));
    PQclear(res);
    api_json(r, 200, o);
}

static int password_ok(api_req_t *r, const char *pw) {
    if (strlen(pw) < 10) {
        api_error(r, 400, "password", "password: at least 10 characters");
        return 0;
    }
    return 1;
}

void h_users_create(api_req_t *r) {
    static const char *const allowed[] = {"name", "password", "role", NULL};
    const char *name = NULL, *pw = NULL, *role = NULL;
    if (!api_body_only(r, allowed) || !api_body_str(r, "name", 1, 64, &name) ||
        !api_body_str(r, "password", 1, 1024, &pw) || !api_body_enum(r, "role", 1, ROLES, &role))
        return;
    for (const char *c = name; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", *c)) {
            api_error(r, 400, "name", "name: letters, digits and _ . @ - only");
            return;
        }
    if (!password_ok(r, pw)) return;
    char hash[QB_AUTH_PASSWORD_HASH_SIZE];
    if (qb_auth_password_hash(pw, api_pbkdf2_iter(r->api), hash, sizeof hash) != QB_OK) {
        api_error(r, 500, NULL, "cannot hash the password");
        return;
    }
    const char *p[] = {name, hash, role};
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO api.users (name, password_hash, role) VALUES ($1, $2, $3) "
             "ON CONFLICT (name) DO NOTHING RETURNING %s",
             USER_COLS);
    PGresult *res = api_query_rw(r, sql, 3, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 409, "name", "a user named '%s' exists", name);
        return;
    }
    cJSON *u = api_pg_row_json(res, 0);
    snprintf(r->location, sizeof r->location, "/api/v1/users/%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", role);
    api_audit(r, "user_create", name, d);
    api_json(r, 201, u);
}

void h_users_update(api_req_t *r) {
    static const char *const allowed[] = {"role", "disabled", "password", NULL};
    const char *role = NULL, *pw = NULL;
    int disabled = -1;
    if (!api_body_only(r, allowed) || !api_body_enum(r, "role", 0, ROLES, &role) ||
        !api_body_bool(r, "disabled", 0, &disabled) || !api_body_str(r, "password", 0, 1024, &pw))
        return;
    if (!role && disabled < 0 && !pw) {
        api_error(r, 400, NULL, "nothing to change: give role, disabled or password");
        return;
    }
    if (pw && !password_ok(r, pw)) return;
    const char *uid = api_param(r, "user_id");
    if (!strcmp(uid, r->who.user_id) && ((role && strcmp(role, "admin")) || disabled == 1)) {
        api_error(r, 409, role ? "role" : "disabled",
                  "an admin cannot demote or disable themselves");
        return;
    }
    char hash[QB_AUTH_PASSWORD_HASH_SIZE] = "";
    if (pw && qb_auth_password_hash(pw, api_pbkdf2_iter(r->api), hash, sizeof hash) != QB_OK) {
        api_error(r, 500, NULL, "cannot hash the password");
        return;
    }
    const char *p[] = {uid, role, disabled < 0 ? NULL : disabled ? "true" : "false",
                       pw ? hash : NULL};
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE api.users SET role = coalesce($2, role), disabled = coalesce($3::boolean, "
             "disabled), password_hash = coalesce($4, password_hash), updated_at = now() "
             "WHERE user_id = $1 RETURNING %s",
             USER_COLS);
    PGresult *res = api_query_rw(r, sql, 4, p);
    if (!res) return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_error(r, 404, "user_id", "no such user");
        return;
    }
    cJSON *u = api_pg_row_json(res, 0);
    PQclear(res);
    if (disabled == 1 || pw || role) { /* sessions end; keys follow the owner's state */
        const char *q[] = {uid};
        PGresult *rv = api_query_rw(r,
                                    "UPDATE api.refresh_tokens SET revoked_at = now() WHERE "
                                    "user_id = $1 AND revoked_at IS NULL",
                                    1, q);
        if (rv) PQclear(rv);
        if (role) {
            /* a key never outranks its owner */
            PGresult *kr = api_query_rw(
                r,
                "UPDATE api.api_keys k SET role = u.role FROM api.users u WHERE k.user_id = $1 "
                "AND u.user_id = k.user_id AND array_position(ARRAY['viewer','trader','admin'], "
                "k.role) > array_position(ARRAY['viewer','trader','admin'], u.role)",
                1, q);
            if (kr) PQclear(kr);
        }
        api_keycache_drop_all(r->api);
    }
    cJSON *d = cJSON_CreateObject();
    if (role) cJSON_AddStringToObject(d, "role", role);
    if (disabled >= 0) cJSON_AddBoolToObject(d, "disabled", disabled);
    if (pw) cJSON_AddBoolToObject(d, "password_changed", 1);
    api_audit(r, "user_update", uid, d);
    api_json(r, 200, u);
}

/* ---- API keys ------------------------------------------------------------------------------------ */
static const char KEY_COLS[] =
    "k.key_id::text AS key_id, k.name, k.prefix, k.role, u.name AS owner, k.created_at, "
    "k.expires_at, k.last_used_at, k.revoked_at";

void h_keys_list(api_req_t *r) {
    int all = api_q_bool(r, "all", 0);
    if (all && r->who.role < QB_ROLE_ADMIN) {
        api_error(r, 403, "all", "only an admin may list every user's keys");
        return;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM api.api_keys k JOIN api.users u USING (user_id) "
             "WHERE ($1::boolean OR k.user_id = $2::uuid) ORDER BY k.created_at, k.key_id",
             KEY_COLS);
    const char *p[] = {all ? "true" : "false", r->who.user_id};
    PGresult *res = api_query_rw(r, sql, 2, p);
    if (!res) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "items", api_pg_rows_json(res));
    PQclear(res);
    api_json(r, 200, o);
}

void h_keys_create(api_req_t *r) {
    static const char *const allowed[] = {"name", "role", "expires_at", NULL};
    const char *name = "", *role = NULL;
    int64_t exp_ns = 0;
    if (!api_body_only(r, allowed) || !api_body_str(r, "name", 0, 100, &name) ||
        !api_body_enum(r, "role", 0, ROLES, &role) ||
        !api_body_time(r, "expires_at", 0, &exp_ns))
        return;
    qb_role_t want = role ? qb_role_parse(role) : r->who.role;
    if (want > r->who.role) {
        api_error(r, 403, "role", "a key cannot have more rights than its owner (%s)",
                  qb_role_name(r->who.role));
        return;
    }
    if (exp_ns && exp_ns <= api_now_ns()) {
        api_error(r, 400, "expires_at", "expires_at: must be in the future");
        return;
    }
    char key[QB_AUTH_APIKEY_LEN + 1], prefix[QB_AUTH_PREFIX_LEN + 1], hash[65];
    if (qb_auth_apikey_new(key, prefix, hash) != QB_OK) {
        api_error(r, 500, NULL, "cannot make a key");
        return;
    }
    char exp[32];
    snprintf(exp, sizeof exp, "%lld", (long long)(exp_ns / 1000));
    const char *p[] = {r->who.user_id, name ? name : "", prefix, hash, qb_role_name(want),
                       exp_ns ? exp : NULL};
    PGresult *res = api_query_rw(
        r,
        "WITH k AS (INSERT INTO api.api_keys (user_id, name, prefix, hash, role, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1e6)) RETURNING *) "
        "SELECT k.key_id::text AS key_id, k.name, k.prefix, k.role, k.created_at, k.expires_at "
        "FROM k",
        6, p);
    if (!res) return;
    cJSON *o = api_pg_row_json(res, 0);
    snprintf(r->location, sizeof r->location, "/api/v1/keys/%s", PQgetvalue(res, 0, 0));
    char kid[40];
    snprintf(kid, sizeof kid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "note", "the key is shown only now: store it");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", qb_role_name(want));
    cJSON_AddStringToObject(d, "prefix", prefix);
    api_audit(r, "key_create", kid, d);
    api_json(r, 201, o);
}

void h_keys_revoke(api_req_t *r) {
    const char *kid = api_param(r, "key_id");
    const char *p[] = {kid, r->who.user_id, r->who.role >= QB_ROLE_ADMIN ? "true" : "false"};
    PGresult *res = api_query_rw(
        r,
        "UPDATE api.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1 AND "
        "($3::boolean OR user_id = $2::uuid) RETURNING key_id",
        3, p);
    if (!res) return;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        api_error(r, 404, "key_id", "no such key of yours");
        return;
    }
    api_keycache_drop_all(r->api);
    api_audit(r, "key_revoke", kid, NULL);
    api_json(r, 204, NULL);
}

/* ---- audit ---------------------------------------------------------------------------------------- */
void h_audit_list(api_req_t *r) {
    const char *src = api_q_str(r, "source");
    int64_t limit = api_q_int(r, "limit", 100);
    char lim[24], cur[128] = "";
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *c = api_q_str(r, "cursor");
    if (c && !api_cursor_decode(r, c, cur, sizeof cur)) return;
    for (const char *x = cur; *x; x++)
        if (*x < '0' || *x > '9') {
            api_error(r, 400, "cursor", "cursor: not a cursor this API gave");
            return;
        }
    const char *p[] = {cur[0] ? cur : NULL, lim};
    if (src && !strcmp(src, "trading")) {
        api_rows(r,
                 "SELECT audit_id, account, seq, api.ns_text(at_ns) AS at, order_id, event, "
                 "detail, hash FROM trading.audit_log WHERE ($1::bigint IS NULL OR audit_id < "
                 "$1::bigint) ORDER BY audit_id DESC LIMIT $2::int",
                 2, p, limit, "audit_id");
        return;
    }
    api_rows(r,
             "SELECT audit_id, at, user_id::text AS user_id, actor, key_id::text AS key_id, "
             "action, target, detail FROM api.audit WHERE ($1::bigint IS NULL OR audit_id < "
             "$1::bigint) ORDER BY audit_id DESC LIMIT $2::int",
             2, p, limit, "audit_id");
}

/* ---- bootstrap ------------------------------------------------------------------------------------ */
qb_err_t api_bootstrap(api_t *a, char *errstr, size_t errstr_size) {
    const api_cfg_t *cfg = api_cfg(a);
    api_req_t r;
    memset(&r, 0, sizeof r);
    r.api = a;
    PGresult *res = api_query_rw(&r, "SELECT count(*) FROM api.users", 0, NULL);
    qb_err_t rc = QB_OK;
    if (!res) {
        rc = qb_err_set(errstr, errstr_size, QB_ERR_DB, "cannot read api.users");
        goto out;
    }
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (n > 0) goto out;
    if (!cfg->admin_password || !*cfg->admin_password) {
        QB_WARN("no user exists and QB_API_ADMIN_PASSWORD is not set: nobody can log in until "
                "it is set (the first start with it creates user 'admin')");
        goto out;
    }
    if (strlen(cfg->admin_password) < 10) {
        rc = qb_err_set(errstr, errstr_size, QB_ERR_CONFIG,
                        "QB_API_ADMIN_PASSWORD: at least 10 characters");
        goto out;
    }
    char hash[QB_AUTH_PASSWORD_HASH_SIZE];
    if (qb_auth_password_hash(cfg->admin_password, (int)cfg->pbkdf2_iter, hash, sizeof hash) !=
        QB_OK) {
        rc = qb_err_set(errstr, errstr_size, QB_ERR_INTERNAL, "cannot hash the password");
        goto out;
    }
    const char *p[] = {hash};
    res = api_query_rw(&r,
                       "INSERT INTO api.users (name, password_hash, role) VALUES ('admin', $1, "
                       "'admin') ON CONFLICT (name) DO NOTHING",
                       1, p);
    if (!res) {
        rc = qb_err_set(errstr, errstr_size, QB_ERR_DB, "cannot create user admin");
        goto out;
    }
    PQclear(res);
    QB_INFO("created user 'admin' (password from QB_API_ADMIN_PASSWORD)");
out:
    api_req_release(&r);
    return rc;
}

/* ---- the table -------------------------------------------------------------------------------------- */
#define S_LOGIN                                                                                  \
    "{\"type\":\"object\",\"required\":[\"username\",\"password\"],\"additionalProperties\":"   \
    "false,\"properties\":{\"username\":{\"type\":\"string\",\"maxLength\":64},\"password\":"   \
    "{\"type\":\"string\",\"maxLength\":1024}}}"
#define S_REFRESH                                                                                \
    "{\"type\":\"object\",\"required\":[\"refresh_token\"],\"additionalProperties\":false,"      \
    "\"properties\":{\"refresh_token\":{\"type\":\"string\"}}}"
#define S_USER_NEW                                                                               \
    "{\"type\":\"object\",\"required\":[\"name\",\"password\",\"role\"],"                        \
    "\"additionalProperties\":false,\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":"  \
    "\"^[A-Za-z0-9_.@-]{1,64}$\"},\"password\":{\"type\":\"string\",\"minLength\":10},\"role\":" \
    "{\"type\":\"string\",\"enum\":[\"viewer\",\"trader\",\"admin\"]}}}"
#define S_USER_UPD                                                                               \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"role\":{\"type\":"    \
    "\"string\",\"enum\":[\"viewer\",\"trader\",\"admin\"]},\"disabled\":{\"type\":\"boolean\"}," \
    "\"password\":{\"type\":\"string\",\"minLength\":10}}}"
#define S_KEY_NEW                                                                                \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"name\":{\"type\":"    \
    "\"string\",\"maxLength\":100},\"role\":{\"type\":\"string\",\"enum\":[\"viewer\","          \
    "\"trader\",\"admin\"]},\"expires_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}"

const api_route_t api_routes_users[] = {
    {"POST", "/api/v1/auth/login", QB_ROLE_NONE, h_login, "auth",
     "Log in with user name and password: access and refresh tokens", 200, S_LOGIN, NULL,
     {{0}}, 0},
    {"POST", "/api/v1/auth/refresh", QB_ROLE_NONE, h_refresh, "auth",
     "A new token pair for a refresh token (each refresh token works once)", 200, S_REFRESH,
     NULL, {{0}}, 0},
    {"POST", "/api/v1/auth/logout", QB_ROLE_VIEWER, h_logout, "auth",
     "Revoke a refresh token", 204, S_REFRESH, NULL, {{0}}, 0},
    {"GET", "/api/v1/me", QB_ROLE_VIEWER, h_me, "auth", "Who the credentials belong to", 200,
     NULL, NULL, {{0}}, 0},
    {"GET", "/api/v1/users", QB_ROLE_ADMIN, h_users_list, "admin", "List users", 200, NULL,
     NULL, {{0}}, 0},
    {"POST", "/api/v1/users", QB_ROLE_ADMIN, h_users_create, "admin", "Create a user", 201,
     S_USER_NEW, NULL, {{0}}, 0},
    {"PATCH", "/api/v1/users/{user_id}", QB_ROLE_ADMIN, h_users_update, "admin",
     "Change a user's role, password, or disable them", 200, S_USER_UPD, NULL, {{0}}, 0},
    {"GET", "/api/v1/keys", QB_ROLE_VIEWER, h_keys_list, "auth",
     "Your API keys (admins: all=true for everyone's)", 200, NULL, NULL,
     {{"all", API_P_BOOL, 0, 0, 0, NULL, "every user's keys (admin)"}}, 0},
    {"POST", "/api/v1/keys", QB_ROLE_VIEWER, h_keys_create, "auth",
     "Create an API key (shown once)", 201, S_KEY_NEW, NULL, {{0}}, 0},
    {"DELETE", "/api/v1/keys/{key_id}", QB_ROLE_VIEWER, h_keys_revoke, "auth",
     "Revoke an API key (yours; admins: any)", 204, NULL, NULL, {{0}}, 0},
    {"GET", "/api/v1/audit", QB_ROLE_ADMIN, h_audit_list, "admin",
     "Audit trail: gateway actions (source=api) or the order audit chain (source=trading)", 200,
     NULL, NULL,
     {{"source", API_P_ENUM, 0, 0, 0, "api|trading", "which trail (default api)"},
      {"limit", API_P_INT, 0, 1, 1000, NULL, "rows (default 100)"},
      {"cursor", API_P_STRING, 0, 0, 200, NULL, "next_cursor of the previous page"}},
     0},
    {0}};
