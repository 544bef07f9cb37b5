-- 0009_execution.sql — qb-execution: orders and their state, fills, the
-- ExecutionReport outbox, the hash-chained audit log, strategy trading
-- modes (live approvals, staged rollout), the kill switch, applied control
-- commands and reconciliation discrepancies (schema trading).
--
-- Money, prices and quantities are fixed-point bigint x 1e8; times of the
-- trading domain are bigint ns since the epoch UTC. Status, side, type,
-- tif, leg, mode, cause and reason are the proto enum numbers
-- (proto/qb/v1/trading.proto).
--
-- Durability model (services/qb-execution/main.c): every change of an
-- order is ONE transaction that updates trading.orders, inserts its fills,
-- its ExecutionReports (outbox, published = false) and its audit rows; an
-- order is stored as SUBMITTED before it is sent to the broker, so after a
-- crash reconciliation finds it and asks the broker by client order id
-- (= order_id) before anything is sent again.

CREATE TABLE IF NOT EXISTS trading.orders (
    order_id          uuid PRIMARY KEY,
    account           text NOT NULL,
    strategy_id       text NOT NULL DEFAULT '',
    symbol            text NOT NULL,
    side              smallint NOT NULL CHECK (side IN (1, 2)),
    type              smallint NOT NULL CHECK (type BETWEEN 1 AND 4),
    tif               smallint NOT NULL CHECK (tif BETWEEN 1 AND 4),
    qty               bigint NOT NULL CHECK (qty > 0),
    requested_qty     bigint NOT NULL,
    limit_price       bigint NOT NULL DEFAULT 0,
    stop_price        bigint NOT NULL DEFAULT 0,
    take_profit_price bigint NOT NULL DEFAULT 0,
    stop_loss_price   bigint NOT NULL DEFAULT 0,
    reference_price   bigint NOT NULL DEFAULT 0,
    leg               smallint NOT NULL DEFAULT 1,
    parent_order_id   text NOT NULL DEFAULT '',
    oco_group         text NOT NULL DEFAULT '',
    replaces_order_id text NOT NULL DEFAULT '',
    mode              smallint NOT NULL,
    cause_id          text NOT NULL DEFAULT '',
    cause_kind        smallint NOT NULL DEFAULT 0,
    client_tag        text NOT NULL DEFAULT '',
    broker            text NOT NULL,
    broker_order_id   text NOT NULL DEFAULT '',
    status            smallint NOT NULL CHECK (status BETWEEN 1 AND 8),
    cum_qty           bigint NOT NULL DEFAULT 0,
    avg_price         bigint NOT NULL DEFAULT 0,
    notional          bigint NOT NULL DEFAULT 0,
    commission        bigint NOT NULL DEFAULT 0,
    seq               bigint NOT NULL DEFAULT 0,
    legs_placed       boolean NOT NULL DEFAULT false,
    reason_code       integer NOT NULL DEFAULT 0,
    reason_text       text NOT NULL DEFAULT '',
    created_ns        bigint NOT NULL,
    updated_ns        bigint NOT NULL,
    CHECK (cum_qty >= 0 AND cum_qty <= qty)
);
CREATE INDEX IF NOT EXISTS orders_open ON trading.orders (account)
    WHERE status IN (1, 2, 3, 4);
CREATE INDEX IF NOT EXISTS orders_account_time ON trading.orders (account, created_ns);
COMMENT ON TABLE trading.orders IS
  'Every order qb-execution received (order_id = qb-risk''s deterministic id = the broker''s client '
  'order id) or made (bracket legs, replacements), with its current state. Open = status NEW (1), '
  'SUBMITTED (2), ACCEPTED (3), PARTIALLY_FILLED (4). broker = the adapter it went to (sim, '
  'alpaca-paper, alpaca-live).';

CREATE TABLE IF NOT EXISTS trading.fills (
    order_id   uuid NOT NULL REFERENCES trading.orders (order_id),
    fill_id    text NOT NULL,
    account    text NOT NULL,
    symbol     text NOT NULL,
    side       smallint NOT NULL,
    qty        bigint NOT NULL CHECK (qty > 0),
    price      bigint NOT NULL CHECK (price > 0),
    commission bigint NOT NULL DEFAULT 0,
    ts_ns      bigint NOT NULL,
    source     text NOT NULL CHECK (source IN ('broker', 'reconciliation')),
    PRIMARY KEY (order_id, fill_id)
);
CREATE INDEX IF NOT EXISTS fills_account_symbol ON trading.fills (account, symbol);
COMMENT ON TABLE trading.fills IS
  'Executions. fill_id is the paper broker''s or derived from the cumulative quantity '
  '("<order_id>/<cum x 1e8>") for brokers that report cumulative fills, so the same broker state '
  'gives the same id and a fill is never stored twice. source = reconciliation for fills adopted '
  'after a restart or a missed update.';

CREATE TABLE IF NOT EXISTS trading.reports (
    report_id  bigserial PRIMARY KEY,
    order_id   uuid NOT NULL,
    sequence   bigint NOT NULL,
    account    text NOT NULL,
    payload    bytea NOT NULL,
    published  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, sequence)
);
CREATE INDEX IF NOT EXISTS reports_unpublished ON trading.reports (report_id) WHERE NOT published;
COMMENT ON TABLE trading.reports IS
  'Outbox of ExecutionReports (payload = the protobuf bytes, event id UUID v5 of order_id|sequence): '
  'written with the state change, sent to exec.reports, then marked published; rows left '
  'unpublished by a crash are sent again (same event ids) at the next start.';

CREATE TABLE IF NOT EXISTS trading.audit_log (
    audit_id  bigserial PRIMARY KEY,
    account   text NOT NULL,
    seq       bigint NOT NULL CHECK (seq > 0),
    at_ns     bigint NOT NULL,
    order_id  text NOT NULL DEFAULT '',
    event     text NOT NULL,
    detail    text NOT NULL DEFAULT '',
    prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash      text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    UNIQUE (account, seq)
);
COMMENT ON TABLE trading.audit_log IS
  'Append-only audit trail of every order event, one hash chain per account: hash = SHA-256 over '
  'prev_hash and the row (libs/exec/qb_exec.h qb_exec_audit_hash); the first row of an account has '
  'prev_hash = 64 zeros. `qbctl audit verify` recomputes the chains and names the first bad row. '
  'UPDATE, DELETE and TRUNCATE are refused by triggers.';

CREATE OR REPLACE FUNCTION trading.audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trading.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS audit_log_no_update ON trading.audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON trading.audit_log
    FOR EACH ROW EXECUTE FUNCTION trading.audit_log_immutable();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON trading.audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON trading.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION trading.audit_log_immutable();

CREATE TABLE IF NOT EXISTS trading.strategy_modes (
    account     text NOT NULL,
    strategy_id text NOT NULL DEFAULT '',
    mode        text NOT NULL CHECK (mode IN ('backtest', 'paper', 'live')),
    rollout_pct integer NOT NULL DEFAULT 100 CHECK (rollout_pct BETWEEN 1 AND 100),
    approved_by text NOT NULL DEFAULT '',
    approved_at timestamptz,
    command_id  text NOT NULL DEFAULT '',
    updated_by  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, strategy_id),
    CHECK (mode <> 'live' OR (approved_by <> '' AND approved_at IS NOT NULL))
);
COMMENT ON TABLE trading.strategy_modes IS
  'Trading mode per strategy (strategy_id '''' = manual orders of the account), set by '
  'STRATEGY_SET_MODE on control. Live needs an approval: who (approved_by = Command.issued_by) and '
  'when. rollout_pct scales live quantities (staged rollout). No row = paper.';

CREATE TABLE IF NOT EXISTS trading.kill_switch (
    account    text PRIMARY KEY,
    active     boolean NOT NULL,
    event_id   text NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trading.kill_switch IS
  'Kill switch state from risk.events (account ''*'' = every account). While active, new orders '
  'of the account are rejected; turning it on cancels every open order of the account.';

CREATE TABLE IF NOT EXISTS trading.commands (
    command_id text PRIMARY KEY,
    kind       integer NOT NULL,
    outcome    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trading.commands IS
  'Control commands qb-execution acted on (a replayed command_id has no further effect).';

CREATE TABLE IF NOT EXISTS trading.discrepancies (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    account   text NOT NULL DEFAULT '',
    broker    text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('order', 'position', 'unknown_order')),
    order_id  text NOT NULL DEFAULT '',
    symbol    text NOT NULL DEFAULT '',
    message   text NOT NULL
);
COMMENT ON TABLE trading.discrepancies IS
  'What reconciliation found not matching the broker (each also published as a RiskEvent '
  'RECONCILIATION_DISCREPANCY on risk.events).';
