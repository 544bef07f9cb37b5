-- 0008_backtest.sql — qb-backtest: runs, the units of split runs, and the
-- results (metrics, walk-forward windows, equity, trades, ranked grid
-- scores) in schema backtest.
--
-- Times are bigint ns since the epoch UTC and money / prices / quantities
-- bigint fixed point x 1e8, exactly as in the protobuf messages and in
-- libs/backtest, so a stored result compares bit for bit with a local run.
--
-- Idempotent effects: a run is keyed by its run_id (the request's); a unit
-- of a split run by (run_id, unit) and its result is stored once (the first
-- writer wins, a repeat changes nothing); results are written in the one
-- transaction that marks the run finished, under the run row's lock.

CREATE SEQUENCE IF NOT EXISTS backtest.unit_done_seq;

CREATE TABLE IF NOT EXISTS backtest.runs (
    run_id         text PRIMARY KEY CHECK (length(run_id) BETWEEN 1 AND 100),
    kind           text NOT NULL CHECK (kind IN ('backtest', 'walk_forward', 'grid')),
    status         text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    request        bytea NOT NULL,
    strategy       text NOT NULL DEFAULT '',
    params         text NOT NULL DEFAULT '',
    symbols        text[] NOT NULL DEFAULT '{}',
    timeframe      text NOT NULL DEFAULT '',
    start_ts       bigint NOT NULL DEFAULT 0,
    end_ts         bigint NOT NULL DEFAULT 0,
    requested_by   text NOT NULL DEFAULT '',
    fingerprint    text NOT NULL DEFAULT '',
    bars           bigint NOT NULL DEFAULT 0,
    units_total    bigint NOT NULL DEFAULT 0,
    units_done     bigint NOT NULL DEFAULT 0,
    progress       double precision NOT NULL DEFAULT 0,
    progress_sent  double precision NOT NULL DEFAULT 0,
    progress_at    timestamptz NOT NULL DEFAULT now(),
    final_sent     boolean NOT NULL DEFAULT false,
    error          text,
    load_ms        bigint NOT NULL DEFAULT 0,
    run_ms         bigint NOT NULL DEFAULT 0,
    planned_by     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX IF NOT EXISTS runs_running ON backtest.runs (progress_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS runs_final_unsent ON backtest.runs (finished_at) WHERE NOT final_sent;
COMMENT ON TABLE backtest.runs IS
  'One row per backtest run (BacktestRequest WHOLE_RUN), keyed by run_id. kind: backtest (one '
  'run), walk_forward or grid (split into units). request: the request as received (protobuf '
  'qb.v1.BacktestRequest). start_ts/end_ts ns UTC as requested (0 = unbounded). fingerprint: the '
  'plan fingerprint (hex) every unit is checked against. progress 0..1; progress_sent / '
  'progress_at: the last progress event (every second and every 5%). final_sent: the FINISHED or '
  'FAILED event was acknowledged by the bus. load_ms / run_ms: bars loaded / computed and stored '
  '(one-run backtests). planned_by: the replica (host:pid) that split or ran it.';

CREATE TABLE IF NOT EXISTS backtest.units (
    run_id       text NOT NULL REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    unit         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('is', 'oos', 'grid')),
    window_index integer NOT NULL DEFAULT 0,
    combo_begin  bigint NOT NULL,
    combo_end    bigint NOT NULL,
    status       text NOT NULL CHECK (status IN ('issued', 'done')),
    published    boolean NOT NULL DEFAULT false,
    result       text,
    worker       text,
    eval_ms      bigint,
    done_seq     bigint,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    PRIMARY KEY (run_id, unit)
);
CREATE INDEX IF NOT EXISTS units_unpublished ON backtest.units (issued_at) WHERE NOT published;
CREATE INDEX IF NOT EXISTS units_done_seq ON backtest.units (run_id, done_seq) WHERE status = 'done';
COMMENT ON TABLE backtest.units IS
  'The units of a split run, each a sub-job on backtest.requests: is (window_index, combinations '
  '[combo_begin, combo_end) in-sample), oos (window_index, combination combo_begin out-of-sample), '
  'grid (combinations [combo_begin, combo_end) over the whole period). A row is written before '
  'its message is sent (published = false: an outbox; any replica re-sends rows left unpublished). '
  'result: the exact JSON of the unit (an array of qb_search_score_json for is/grid, '
  'qb_wf_oos_to_json for oos), written once; done_seq orders results as they came in.';

CREATE TABLE IF NOT EXISTS backtest.metrics (
    run_id          text PRIMARY KEY REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    total_return    double precision NOT NULL,
    cagr            double precision NOT NULL,
    sharpe          double precision NOT NULL,
    sortino         double precision NOT NULL,
    calmar          double precision NOT NULL,
    volatility      double precision NOT NULL,
    max_dd_pct      double precision NOT NULL,
    max_dd_money    bigint NOT NULL,
    exposure        double precision NOT NULL,
    win_rate        double precision NOT NULL,
    profit_factor   double precision NOT NULL,
    trades_closed   bigint NOT NULL,
    trades_open     bigint NOT NULL,
    steps           bigint NOT NULL,
    initial_equity  bigint NOT NULL,
    final_equity    bigint NOT NULL,
    net_profit      bigint NOT NULL,
    commission      bigint NOT NULL,
    params          text NOT NULL DEFAULT '',
    metrics         text NOT NULL,
    benchmark       text,
    summary         text
);
COMMENT ON TABLE backtest.metrics IS
  'The result of a finished run: the metrics of the backtest (kind backtest), of the stitched '
  'out-of-sample curve (walk_forward) or of the best combination run over the whole period '
  '(grid). metrics / benchmark: every field of qb_bt_metrics_t as exact JSON '
  '(qb_search_metrics_json); summary: walk-forward stability and objectives as JSON. params: '
  'the strategy parameters (grid: the best combination; walk_forward: the last window''s '
  'selection). Money x 1e8. profit_factor may be Infinity (profit and no loss).';

CREATE TABLE IF NOT EXISTS backtest.windows (
    run_id        text NOT NULL REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    window_index  integer NOT NULL,
    is_from       bigint NOT NULL,
    is_to         bigint NOT NULL,
    oos_from      bigint NOT NULL,
    oos_to        bigint NOT NULL,
    partial       boolean NOT NULL,
    combo         bigint,
    params        text,
    valid         bigint NOT NULL,
    eligible      bigint NOT NULL,
    is_objective  double precision,
    is_trades     bigint,
    oos_objective double precision,
    oos_trades    bigint,
    oos_return    double precision,
    start_equity  bigint NOT NULL,
    end_equity    bigint NOT NULL,
    PRIMARY KEY (run_id, window_index)
);
COMMENT ON TABLE backtest.windows IS
  'Walk-forward windows of a finished run: in-sample [is_from, is_to) and out-of-sample '
  '[oos_from, oos_to) ns, the selected combination (NULL: not traded, no eligible combination) '
  'and its parameters, how many combinations were valid / eligible, the in-sample objective of '
  'the selection, its out-of-sample objective, trades and return (fresh capital), and the '
  'stitched equity at the window''s start and end (x 1e8).';

CREATE TABLE IF NOT EXISTS backtest.equity (
    run_id    text NOT NULL REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    ts        bigint NOT NULL,
    equity    bigint NOT NULL,
    cash      bigint NOT NULL,
    benchmark bigint NOT NULL,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE backtest.equity IS
  'Equity curve of a finished run, one point per time step (ts ns, after the step): the '
  'backtest''s, the stitched out-of-sample curve of a walk-forward (cash: the window''s own cash, '
  'scaled), or the best combination''s for a grid. benchmark: equal-weight buy-and-hold (0 when '
  'none). Money x 1e8.';

CREATE TABLE IF NOT EXISTS backtest.trades (
    run_id       text NOT NULL REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    window_index integer,
    symbol       text NOT NULL,
    dir          smallint NOT NULL CHECK (dir IN (-1, 1)),
    open         boolean NOT NULL,
    cut          boolean NOT NULL,
    entry_ts     bigint NOT NULL,
    exit_ts      bigint NOT NULL,
    qty          bigint NOT NULL,
    entry_price  bigint NOT NULL,
    exit_price   bigint NOT NULL,
    commission   bigint NOT NULL,
    net_pnl      bigint NOT NULL,
    scaled_pnl   bigint NOT NULL,
    return_pct   double precision NOT NULL,
    bars         bigint NOT NULL,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE backtest.trades IS
  'Round trips of a finished run in the engine''s order. window_index: the walk-forward window '
  '(NULL otherwise); cut: open at its window''s end (marked there); open: still open at the end '
  'of a backtest. net_pnl as the run reported it; scaled_pnl: walk-forward P&L on the stitched '
  'curve (= net_pnl otherwise). Prices, quantities, money x 1e8.';

CREATE TABLE IF NOT EXISTS backtest.scores (
    run_id    text NOT NULL REFERENCES backtest.runs (run_id) ON DELETE CASCADE,
    rank      integer NOT NULL,
    combo     bigint NOT NULL,
    params    text NOT NULL,
    valid     boolean NOT NULL,
    eligible  boolean NOT NULL,
    objective double precision,
    trades    bigint NOT NULL,
    error     text NOT NULL DEFAULT '',
    score     text NOT NULL,
    PRIMARY KEY (run_id, rank)
);
COMMENT ON TABLE backtest.scores IS
  'Every combination of a finished grid run, ranked best first (objective, min trades, ties to '
  'the lower combination index). score: the exact JSON (qb_search_score_json).';
