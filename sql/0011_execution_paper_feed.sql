-- 0011_execution_paper_feed.sql — qb-execution's paper simulator across
-- restarts (schema trading): an order's not_before is kept, and how far the
-- simulator has read md.bars is recorded, so a restarted (or newly leading)
-- qb-execution reads the bars again from there instead of from the end of
-- the topic and fills its paper orders on the same bars as without the
-- restart (services/qb-execution/main.c).

ALTER TABLE trading.orders ADD COLUMN IF NOT EXISTS not_before_ns bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN trading.orders.not_before_ns IS
  'The paper simulator matches the order only against bars after this time (ns): the later of '
  'Order.not_before (the bar that caused it) and the newest bar of its symbol the simulator had '
  'been given when the order arrived. 0 = any bar (orders of other brokers).';

CREATE TABLE IF NOT EXISTS trading.paper_feed (
    feed           text PRIMARY KEY,
    read_through_ms bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trading.paper_feed IS
  'How far the paper simulator has applied md.bars (feed ''md.bars''): the newest Kafka record '
  'time (ms) of a bar it applied, written about once a second by the leading qb-execution. At '
  'start, md.bars is read from this time minus QB_EXEC_BARS_REPLAY_MARGIN_MS.';
