-- 0007_risk.sql — qb-risk: limits and their audit trail, account trading
-- state, positions, fills, order decisions (an outbox), the consumed
-- offsets, risk events and risk snapshots (schema risk).
--
-- Money, prices and quantities are fixed-point bigint x 1e8; times of the
-- trading domain are bigint ns since the epoch UTC.
--
-- Durability model (services/qb-risk/main.c): the effects of a batch of
-- records of signals / orders.intents / exec.reports (fills, decisions,
-- open-order changes, account state) are written in ONE transaction
-- together with risk.offsets, the next offset of every input partition. A
-- restarted or re-balanced consumer skips records below it, so each record
-- is applied exactly once to the stored state, whatever Kafka's committed
-- offsets say. Decisions are an outbox: `published` turns true once the
-- Order / ExecutionReport is acknowledged by the bus.

CREATE TABLE IF NOT EXISTS risk.limits (
    account    text NOT NULL CHECK (account ~ '^[A-Za-z0-9_.:-]{1,63}$'),
    kind       integer NOT NULL CHECK (kind BETWEEN 1 AND 1000),
    key        text NOT NULL DEFAULT '',
    value      bigint NOT NULL CHECK (value >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT '',
    PRIMARY KEY (account, kind, key)
);
COMMENT ON TABLE risk.limits IS
  'Risk limits set through SET_LIMITS (kind = proto LimitKind; key = symbol, sector or asset '
  'class, or '''' for the account). Unset kinds use the default compiled into qb-risk; no value '
  'may exceed the kind''s hard maximum compiled into qb-risk (checked before it is written).';

CREATE SEQUENCE IF NOT EXISTS risk.change_seq;

CREATE TABLE IF NOT EXISTS risk.limit_audit (
    audit_id   bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    account    text NOT NULL,
    kind       integer NOT NULL,
    key        text NOT NULL DEFAULT '',
    old_value  bigint,
    new_value  bigint,
    outcome    text NOT NULL CHECK (outcome IN ('applied', 'refused', 'removed')),
    message    text NOT NULL DEFAULT '',
    issued_by  text NOT NULL DEFAULT '',
    command_id text NOT NULL DEFAULT '',
    reason     text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS limit_audit_account ON risk.limit_audit (account, at);
COMMENT ON TABLE risk.limit_audit IS
  'Every limit change and every refused attempt: who (issued_by, command_id), when, old and new '
  'value (NULL = unset).';

CREATE TABLE IF NOT EXISTS risk.commands (
    command_id text PRIMARY KEY,
    kind       integer NOT NULL,
    account    text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE risk.commands IS 'Control commands qb-risk applied (a command id is applied once).';

CREATE TABLE IF NOT EXISTS risk.accounts (
    account      text PRIMARY KEY,
    status       text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'PAUSED', 'HALTED')),
    paused_until bigint NOT NULL DEFAULT 0,
    status_text  text NOT NULL DEFAULT '',
    resumes      bigint NOT NULL DEFAULT 0,
    change_seq   bigint NOT NULL DEFAULT nextval('risk.change_seq'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE risk.accounts IS
  'Trading state of each account (''*'' = the platform-wide kill switch): written by a breach '
  '(by the replica holding the account) and by KILL_SWITCH / RESUME (by the replica that got the '
  'command); every write takes a new change_seq, which every replica polls. resumes counts RESUME '
  'commands (a resume rebases the daily P&L and the high-water mark).';

CREATE TABLE IF NOT EXISTS risk.account_state (
    account     text PRIMARY KEY,
    day         bigint NOT NULL DEFAULT 0,
    day_start   bigint NOT NULL DEFAULT 0,
    hwm         bigint NOT NULL DEFAULT 0,
    resumes     bigint NOT NULL DEFAULT 0,
    cash        bigint NOT NULL DEFAULT 0,
    equity      bigint NOT NULL DEFAULT 0,
    realized    bigint NOT NULL DEFAULT 0,
    unrealized  bigint NOT NULL DEFAULT 0,
    initial_cash bigint NOT NULL,
    fills       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE risk.account_state IS
  'P&L state of each account, written with every batch: the day''s baseline, the high-water mark, '
  'the resumes applied; cash/equity/realized/unrealized are a copy for readers (the books are '
  'rebuilt from risk.fills).';

CREATE TABLE IF NOT EXISTS risk.positions (
    account    text NOT NULL,
    symbol     text NOT NULL,
    qty        bigint NOT NULL,
    avg_cost   bigint NOT NULL,
    realized   bigint NOT NULL,
    mark       bigint NOT NULL DEFAULT 0,
    mark_ts    bigint NOT NULL DEFAULT 0,
    unrealized bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, symbol)
);
COMMENT ON TABLE risk.positions IS
  'Positions per account and symbol as of the last batch (qty signed), with the last mark (close '
  'and its bar close time) used for unrealized P&L; marks are restored from here at start.';

CREATE TABLE IF NOT EXISTS risk.fills (
    account    text NOT NULL,
    fill_id    text NOT NULL,
    seq        bigserial,
    order_id   text NOT NULL,
    symbol     text NOT NULL,
    side       smallint NOT NULL CHECK (side IN (1, 2)),
    qty        bigint NOT NULL CHECK (qty > 0),
    price      bigint NOT NULL CHECK (price > 0),
    commission bigint NOT NULL DEFAULT 0,
    ts         bigint NOT NULL,
    PRIMARY KEY (account, fill_id)
);
CREATE INDEX IF NOT EXISTS fills_account_seq ON risk.fills (account, seq);
COMMENT ON TABLE risk.fills IS
  'Every fill of exec.reports applied to an account, once (fill_id; order_id|sequence when the '
  'report has none). The books are rebuilt at start by replaying these in seq order.';

CREATE TABLE IF NOT EXISTS risk.orders (
    order_id     uuid PRIMARY KEY,
    account      text NOT NULL,
    cause_id     text NOT NULL,
    cause_kind   smallint NOT NULL,
    strategy_id  text NOT NULL DEFAULT '',
    symbol       text NOT NULL,
    side         smallint NOT NULL DEFAULT 0,
    qty          bigint NOT NULL DEFAULT 0,
    price        bigint NOT NULL DEFAULT 0,
    approved     boolean NOT NULL,
    reason_code  integer NOT NULL DEFAULT 0,
    reason_text  text NOT NULL DEFAULT '',
    leaves       bigint NOT NULL DEFAULT 0,
    reserved     bigint NOT NULL DEFAULT 0,
    open         boolean NOT NULL DEFAULT false,
    decided_at   bigint NOT NULL,
    topic        text NOT NULL,
    msg          bytea NOT NULL,
    published    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS orders_open ON risk.orders (account) WHERE open;
CREATE INDEX IF NOT EXISTS orders_unpublished ON risk.orders (account) WHERE NOT published;
COMMENT ON TABLE risk.orders IS
  'Every decision: an approved Order (topic orders) or a rejection ExecutionReport (topic '
  'exec.reports), order_id = UUID v5 of the cause. msg is the protobuf that goes out; published '
  'turns true once the bus acknowledged it (an outbox: unpublished rows left by a crash are '
  'checked against the topic and sent at most once more). open/leaves/reserved: the approved '
  'order''s unfilled quantity and the buying power it holds, until a final report.';

CREATE TABLE IF NOT EXISTS risk.offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE risk.offsets IS
  'The next offset of each input partition whose records are applied to the tables above, '
  'written in the same transaction: a replayed record below it is skipped.';

CREATE TABLE IF NOT EXISTS risk.events (
    event_id   uuid PRIMARY KEY,
    account    text NOT NULL,
    kind       integer NOT NULL,
    severity   integer NOT NULL,
    limit_kind integer NOT NULL DEFAULT 0,
    observed   bigint NOT NULL DEFAULT 0,
    limit_value bigint NOT NULL DEFAULT 0,
    message    text NOT NULL DEFAULT '',
    command_id text NOT NULL DEFAULT '',
    at         bigint NOT NULL,
    msg        bytea NOT NULL,
    published  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_account ON risk.events (account, at);
CREATE INDEX IF NOT EXISTS events_unpublished ON risk.events (at) WHERE NOT published;
COMMENT ON TABLE risk.events IS
  'Every RiskEvent qb-risk decided (snapshots too, kind 10): msg is the protobuf, published turns '
  'true once the bus acknowledged it; unpublished ones are sent again at start.';

CREATE TABLE IF NOT EXISTS risk.snapshots (
    snapshot_id bigserial PRIMARY KEY,
    account     text NOT NULL,
    at          bigint NOT NULL,
    figures     jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_account ON risk.snapshots (account, at);
COMMENT ON TABLE risk.snapshots IS
  'Portfolio risk snapshots: VaR/CVaR (historical, parametric, Monte Carlo) at 95/99%, '
  'volatility, beta, correlation matrix of the holdings.';
