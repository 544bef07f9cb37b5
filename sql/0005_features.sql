-- 0005_features.sql — qb-features: strategy instances, computed features,
-- signals and the strategies' decision state (schema features).
--
-- Writes are idempotent so a replayed bar changes nothing: features by
-- (symbol, timeframe, ts), signals by their deterministic signal_id
-- (libs/strategy qb_strategy_signal_id), states by (strategy_id, symbol).

-- Every change to the table bumps change_seq from this sequence, so the
-- replicas of qb-features notice a change with one cheap query.
CREATE SEQUENCE IF NOT EXISTS features.strategies_change_seq;

CREATE TABLE IF NOT EXISTS features.strategies (
    strategy_id text PRIMARY KEY CHECK (strategy_id ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    account     text NOT NULL DEFAULT 'default' CHECK (account ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    kind        text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    symbols     text[] NOT NULL CHECK (cardinality(symbols) > 0),
    timeframe   text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    change_seq  bigint NOT NULL DEFAULT nextval('features.strategies_change_seq'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE features.strategies IS
  'Strategy instances qb-features runs: kind (libs/strategy registry name) with JSON params on '
  'symbols at one timeframe, signals for account. Changed through the control topic '
  '(STRATEGY_ENABLE / _DISABLE / _SET_PARAMS).';
COMMENT ON COLUMN features.strategies.change_seq IS
  'From features.strategies_change_seq on every insert and update: max(change_seq) moving tells '
  'every replica to reload.';

CREATE TABLE IF NOT EXISTS features.features (
    symbol       text NOT NULL,
    timeframe    text NOT NULL,
    ts           timestamptz NOT NULL,
    vals         jsonb NOT NULL,
    history_bars integer NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
);
CREATE INDEX IF NOT EXISTS features_ts_brin ON features.features USING brin (ts);
COMMENT ON TABLE features.features IS
  'One row per bar and series: the indicator values (libs/ta column names -> double) that were '
  'valid at that bar, as published in the FeatureSet.';

CREATE TABLE IF NOT EXISTS features.signals (
    signal_id       uuid PRIMARY KEY,
    strategy_id     text NOT NULL,
    account         text NOT NULL,
    symbol          text NOT NULL,
    timeframe       text NOT NULL,
    bar_ts          timestamptz NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('LONG', 'SHORT', 'FLAT')),
    confidence      double precision NOT NULL,
    target_weight   double precision,
    stop_distance   bigint NOT NULL DEFAULT 0,
    reference_price bigint NOT NULL,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS signals_strategy_ts ON features.signals (strategy_id, bar_ts);
COMMENT ON TABLE features.signals IS
  'Every signal published on the signals topic; signal_id is deterministic per (strategy, '
  'account, symbol, timeframe, bar), so a replay inserts nothing. Prices fixed-point x 1e8.';

CREATE TABLE IF NOT EXISTS features.strategy_state (
    strategy_id text NOT NULL,
    symbol      text NOT NULL,
    change_seq  bigint NOT NULL,
    last_ts     timestamptz NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (strategy_id, symbol)
);
COMMENT ON TABLE features.strategy_state IS
  'Decision state of each strategy instance per symbol (qb_strategy_save) after last_ts, saved '
  'in the same transaction as the features and signals of the bars up to it; a replica that '
  'takes the symbol over warms the indicators up from md.bars and restores this. Ignored when '
  'change_seq differs from the strategy''s (its parameters changed).';
