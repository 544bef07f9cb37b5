-- 0006_notify.sql — qb-notify: alert rules, the events that fired them,
-- the delivery log and the in-app inbox (schema notify).
--
-- Idempotent effects: an event fires a rule at most once (notify.fired,
-- primary key (rule_id, event_id)); each firing makes one delivery per
-- target of the rule, with a deterministic delivery_id (UUID v5 of
-- rule_id|event_id|target index), so a replayed event inserts nothing.

-- Every change to notify.rules bumps change_seq from this sequence, so every
-- replica of qb-notify notices a change with one cheap query.
CREATE SEQUENCE IF NOT EXISTS notify.rules_change_seq;

CREATE TABLE IF NOT EXISTS notify.rules (
    rule_id        text PRIMARY KEY CHECK (rule_id ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    owner          text NOT NULL CHECK (length(owner) BETWEEN 1 AND 100),
    account        text,
    name           text NOT NULL DEFAULT '',
    condition      text NOT NULL CHECK (condition IN ('price_above', 'price_below',
                       'price_move', 'signal', 'order_filled', 'order_rejected',
                       'risk_event', 'backtest_done')),
    symbol         text,
    timeframe      text,
    threshold      bigint NOT NULL DEFAULT 0,
    move_pct       double precision NOT NULL DEFAULT 0,
    window_ns      bigint NOT NULL DEFAULT 0,
    strategy_id    text,
    min_confidence double precision NOT NULL DEFAULT 0,
    targets        jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
    enabled        boolean NOT NULL DEFAULT true,
    cooldown_ns    bigint NOT NULL DEFAULT 0 CHECK (cooldown_ns >= 0),
    quiet_start    smallint CHECK (quiet_start BETWEEN 0 AND 1439),
    quiet_end      smallint CHECK (quiet_end BETWEEN 0 AND 1439),
    time_zone      text NOT NULL DEFAULT 'UTC',
    last_fired_ns  bigint NOT NULL DEFAULT 0,
    change_seq     bigint NOT NULL DEFAULT nextval('notify.rules_change_seq'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rules_owner ON notify.rules (owner);
COMMENT ON TABLE notify.rules IS
  'Alert rules, per user (owner), changed through the control topic (ALERT_RULE_UPSERT / '
  '_DELETE). targets: [{"channel":"webhook|slack|telegram|email|in_app","address":...,'
  '"secret":...}] — secret (webhook HMAC key) must never be shown back by the API. '
  'threshold fixed-point x 1e8; cooldown and window in ns; quiet hours in minutes after '
  'local midnight in time_zone. last_fired_ns: event time of the last firing (throttle).';

CREATE TABLE IF NOT EXISTS notify.fired (
    rule_id     text NOT NULL,
    event_id    text NOT NULL,
    event_kind  text NOT NULL,
    event_time  bigint NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, event_id)
);
CREATE INDEX IF NOT EXISTS fired_at_brin ON notify.fired USING brin (fired_at);
COMMENT ON TABLE notify.fired IS
  'Each (rule, event) that fired, once: the dedupe of events. event_time ns UTC.';

CREATE TABLE IF NOT EXISTS notify.deliveries (
    delivery_id     uuid PRIMARY KEY,
    rule_id         text NOT NULL,
    event_id        text NOT NULL,
    target_idx      integer NOT NULL,
    owner           text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'slack', 'telegram', 'email',
                        'in_app')),
    address         text NOT NULL,
    event_kind      text NOT NULL,
    event_time      bigint NOT NULL,
    title           text NOT NULL,
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered',
                        'dead', 'canceled')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    last_status     integer,
    claimed_by      integer,
    claimed_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    dead_at         timestamptz,
    UNIQUE (rule_id, event_id, target_idx)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON notify.deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_owner ON notify.deliveries (owner, created_at);
COMMENT ON TABLE notify.deliveries IS
  'The delivery log: one row per (rule, event, target). pending -> delivered | dead (sent to '
  'notifications.dlq after the last attempt or a permanent refusal) | canceled (rule deleted '
  'or target removed). address is shown without secrets (a URL keeps scheme and host). '
  'claimed_by: backend pid of the qb-notify session sending it now; a claim of a session '
  'that no longer exists is void, so a restart resumes at once.';

CREATE TABLE IF NOT EXISTS notify.inbox (
    delivery_id uuid PRIMARY KEY,
    owner       text NOT NULL,
    rule_id     text NOT NULL,
    event_id    text NOT NULL,
    event_kind  text NOT NULL,
    event_time  bigint NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX IF NOT EXISTS inbox_owner ON notify.inbox (owner, created_at DESC);
COMMENT ON TABLE notify.inbox IS
  'In-app notifications for the API to list (and stream from topic notifications, or LISTEN '
  'qb_notify_inbox: the payload is the owner); read_at is set by the API.';
