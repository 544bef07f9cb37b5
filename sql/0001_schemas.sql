-- 0001_schemas.sql — one schema per service.
--
-- Each service writes only its own schema; qb-api reads the others through a
-- read-only role (added by a later migration). Tables come in later numbered
-- files. Idempotent on purpose (IF NOT EXISTS), although the migration runner
-- applies every file exactly once.

CREATE SCHEMA IF NOT EXISTS md;
COMMENT ON SCHEMA md IS
  'Owned by qb-data: assets, bars (partitioned by time), corporate actions, ingest jobs.';

CREATE SCHEMA IF NOT EXISTS features;
COMMENT ON SCHEMA features IS
  'Owned by qb-features: computed features, signals, strategy state.';

CREATE SCHEMA IF NOT EXISTS risk;
COMMENT ON SCHEMA risk IS
  'Owned by qb-risk: limits, positions, pnl, risk events, kill switch.';

CREATE SCHEMA IF NOT EXISTS trading;
COMMENT ON SCHEMA trading IS
  'Owned by qb-execution: orders, fills, audit log.';

CREATE SCHEMA IF NOT EXISTS backtest;
COMMENT ON SCHEMA backtest IS
  'Owned by qb-backtest: runs, trades, equity curves, walk-forward windows.';

CREATE SCHEMA IF NOT EXISTS notify;
COMMENT ON SCHEMA notify IS
  'Owned by qb-notify: alert rules, deliveries.';

CREATE SCHEMA IF NOT EXISTS api;
COMMENT ON SCHEMA api IS
  'Owned by qb-api: users, api keys.';
