-- 0010_api.sql — qb-api: users, API keys, refresh tokens and the admin audit
-- trail (schema api), and the read-only role the gateway reads the other
-- services' schemas through.
--
-- Passwords are PBKDF2-HMAC-SHA256 strings ("pbkdf2-sha256$iter$salt$hash",
-- libs/auth); API keys are stored only as the hex SHA-256 of the key (the key
-- is shown once, at creation); refresh tokens by their JWT id, used once
-- (rotation: each refresh marks the old one used and issues a new one).

CREATE SCHEMA IF NOT EXISTS api;

CREATE TABLE IF NOT EXISTS api.users (
    user_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'trader', 'admin')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api.users IS
  'People who log in to the gateway; role viewer < trader < admin. The first admin is created '
  'by qb-api from QB_API_ADMIN_PASSWORD when the table is empty.';

CREATE TABLE IF NOT EXISTS api.api_keys (
    key_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES api.users (user_id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    prefix       text NOT NULL,
    hash         text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    role         text NOT NULL CHECK (role IN ('viewer', 'trader', 'admin')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api.api_keys (user_id);
COMMENT ON TABLE api.api_keys IS
  'Programmatic credentials. hash = hex SHA-256 of the whole key; prefix = its first 12 '
  'characters, for people to recognise it. role is at most the owner''s role at creation.';

CREATE TABLE IF NOT EXISTS api.refresh_tokens (
    jti         uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES api.users (user_id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON api.refresh_tokens (user_id);

CREATE TABLE IF NOT EXISTS api.audit (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    uuid,
    actor      text NOT NULL,
    key_id     uuid,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_action_target ON api.audit (action, target);
COMMENT ON TABLE api.audit IS
  'What was done through the gateway that changes something: logins, users and keys, orders, '
  'kill switch, limits, strategies, alert rules, backtests. Never holds a secret.';

-- Output helpers for the gateway's queries.
-- Fixed point x 1e8 -> exact numeric without trailing zeros.
CREATE OR REPLACE FUNCTION api.px(v bigint) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT trim_scale(v::numeric / 100000000) $$;
-- ns since the epoch -> RFC 3339 UTC text with the fraction when non-zero.
CREATE OR REPLACE FUNCTION api.ns_text(v bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE
        to_char(to_timestamp(div(v, 1000000000)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(v, 1000000000) = 0 THEN ''
                ELSE '.' || rtrim(lpad(mod(v, 1000000000)::text, 9, '0'), '0') END
        || 'Z' END $$;

-- The read-only role: qb-api's read connections run as it (SET ROLE through
-- the connection options) with default_transaction_read_only, so a bug in a
-- query can never change another service's data.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'qb_api_reader') THEN
        CREATE ROLE qb_api_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of the cluster created it at the same moment
END $$;
DO $$
DECLARE s text;
BEGIN
    -- the migrating user must be able to SET ROLE to it (superusers can anyway)
    IF NOT pg_has_role(current_user, 'qb_api_reader', 'MEMBER') THEN
        EXECUTE format('GRANT qb_api_reader TO %I', current_user);
    END IF;
    FOREACH s IN ARRAY ARRAY['md', 'features', 'risk', 'trading', 'backtest', 'notify', 'api'] LOOP
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO qb_api_reader', s);
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO qb_api_reader', s);
            EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO qb_api_reader', s);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO qb_api_reader', s);
        END IF;
    END LOOP;
END $$;
-- Secrets stay out of the reader's reach. A later migration that adds a schema
-- grants the reader on it the same way.
REVOKE SELECT ON api.users, api.api_keys, api.refresh_tokens FROM qb_api_reader;
