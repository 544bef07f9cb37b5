/* qb-backtest — backtests, walk-forward optimisation and grid / random
 * parameter search over the bars stored in md.bars, as a service that
 * scales out: every replica in the consumer group takes a share of a run.
 *
 * ---- Input --------------------------------------------------------------------------------
 * Consumer group QB_BACKTEST_GROUP (default qb-backtest) on
 * backtest.requests (key run id). A BacktestRequest of kind WHOLE_RUN is a
 * run (run_id, strategy, params, symbols, timeframe, [start_time,
 * end_time), cash, fill model, commission, slippage, engine `settings`):
 *   - no walk_forward and no grid: ONE BACKTEST, computed at once by the
 *     replica that takes it (libs/backtest qb_bt_run);
 *   - walk_forward: a WALK-FORWARD (libs/backtest qb_wf.h: windows by time
 *     steps or durations, rolling or anchored, objective + min_trades, the
 *     grid of `grid` searched in-sample per window, the best combination run
 *     out-of-sample, the OOS runs stitched);
 *   - grid (or random_samples) without walk_forward: a GRID SEARCH over the
 *     whole period (qb_search.h), the best combination then run in full.
 * Bars: md.bars (read only) of the symbols, timeframe and period, one
 * binary COPY per symbol (index order), QB_BACKTEST_LOAD_THREADS symbols at
 * a time on connections of the loader's own (bt_bars.c), appended in
 * symbol order (symbol ids, and so the order inside a time step, follow
 * the request); an unbounded end is resolved to the last bar + 1 ns when
 * the run starts, so every replica of the run reads the same bars.
 *
 * ---- Split runs: parts, aggregation, storage -------------------------------------------
 * The replica that takes a walk-forward or grid WHOLE_RUN plans it (a pure
 * function of request + bars: qb_wf_plan_new / the search space; the plan
 * fingerprint, an FNV-1a of config, spec, space and time steps, is stored
 * with the run), writes the run row and its first parts in ONE transaction
 * (backtest.runs, backtest.units: every in-sample part "is/W/C0-C1" of
 * QB_BACKTEST_BATCH combinations, or "grid/C0-C1"), then publishes the
 * parts on backtest.requests (kinds IS_UNIT / GRID_UNIT, the run's request
 * with the part's fields, the plan fingerprint and the group; Kafka key
 * RUN_ID/PART, so the parts spread over the partitions and the replicas)
 * and marks them published. The units table is an OUTBOX: a part whose row
 * is unpublished after QB_BACKTEST_RESEND_MS (the replica died between its
 * commit and the broker's ack) is re-sent by any replica's sweep (rows
 * locked FOR UPDATE SKIP LOCKED while being sent).
 * Any replica evaluates any part: it loads the run's bars and rebuilds the
 * plan once (cached per run in memory, QB_BACKTEST_CACHE_RUNS runs, least
 * recently used dropped), checks the fingerprint (a mismatch: the stored
 * bars changed during the run -> the run fails), evaluates (qb_wf_eval_is,
 * qb_wf_eval_oos, qb_search_eval: pure functions, same bytes anywhere),
 * then, in ONE transaction holding the run row's lock (SELECT ... FOR
 * UPDATE: the advances of one run are serialised, so exactly one sees each
 * transition):
 *   1. stores the result (units.result, exact text: score JSON lines or the
 *      OOS JSON; ON CONFLICT: the first result wins, a repeat changes
 *      nothing) with the next done_seq;
 *   2. walk-forward: feeds every result stored after the last one it saw
 *      (done_seq order) into its in-memory aggregator (qb_wf_agg_*:
 *      order-independent, repeats ignored; rebuilt from the table when the
 *      replica has none or a transaction failed);
 *   3. issues what became due: the OOS part "oos/W/C" of each window whose
 *      in-sample combinations are all in (qb_wf_agg_next; its selection by
 *      qb_search_cmp, a total order), as new outbox rows;
 *   4. when every unit is in, FINISHES: qb_wf_agg_finish (stitched OOS
 *      curve, windows, stability) or the grid's ranking plus the best
 *      combination's full run, written to backtest.metrics, windows,
 *      equity, trades, scores, and the run marked finished;
 * then, after the commit, publishes the new parts and the events. So the
 * result of a run depends only on the request and the bars, never on how
 * many replicas took part, in which order results came, or who finished:
 * test_qb_backtest.sh compares a 20-window walk-forward on 1 replica, on 3,
 * and on 3 with one killed (SIGKILL) mid-run, table by table.
 *
 * ---- Events (backtest.events, key run id) ----------------------------------------------
 *   PROGRESS (part WHOLE_RUN): progress 0..1, units_done / units_total for
 *     split runs, bars_processed for one-run backtests; published when the
 *     progress crosses a 5% step and at least every QB_BACKTEST_PROGRESS_MS
 *     (1 s) while a run is running: by the replica computing a one-run
 *     backtest (engine callback; while loading, between symbols), by the
 *     replica storing a part (5% steps), and by a heartbeat every replica
 *     runs (a running run whose last progress event is older than ~1 s is
 *     claimed by one replica with UPDATE ... SKIP LOCKED and reported);
 *   WINDOW_DONE (part WALK_FORWARD_WINDOW): a window's OOS run is stored:
 *     its own metrics (fresh capital) and the selected parameters;
 *   FINISHED (metrics of the run: the backtest, the stitched OOS curve, or
 *     the best combination; params_json: the parameters, for a walk-forward
 *     those of the last window's selection) or FAILED (error). The final
 *     event is sent after the commit and acknowledged before
 *     runs.final_sent is set; an unsent one is re-sent by the sweep. Final
 *     and window events have deterministic ids (UUID v5 of run|final,
 *     run|window|W): a re-send repeats the id.
 *
 * ---- Delivery, failures, restarts ---------------------------------------------------------
 * An offset is stored only after the handler returned, i.e. after the
 * effects are committed (and the parts sent): a replica killed mid-part
 * leaves its parts uncommitted and the group re-delivers them to another
 * replica, which evaluates them again (same bytes; storage is
 * first-writer-wins). A one-run backtest killed mid-run is re-run from the
 * start by the next owner (its results are written in the finishing
 * transaction only). Nothing is kept only in memory: a restarted replica
 * rebuilds data sets and aggregators from PostgreSQL on demand.
 * Bad requests (unknown strategy, bad parameter, unknown symbol, no bars,
 * every combination refused, fewer windows than asked) fail the run (row
 * + FAILED event) and are dead-lettered with the reason; parts of another
 * deployment sharing the topic (other `group`) or of a run this database
 * does not know are ignored. A retriable error (PostgreSQL, bus) retries
 * the same request with back-off.
 *
 * ---- Operations ------------------------------------------------------------------------------
 * Admin port 9105: /healthz, /readyz (bus, postgres, migrations),
 * /metrics (qb_backtest_* counters, part and load times, plus the bus and
 * store metrics). SIGTERM: the part or run in hand is finished, the
 * consumer commits and leaves the group, exit 0. Migrations of QB_SQL_DIR
 * are applied at start (QB_BACKTEST_MIGRATE). One thread: a long one-run
 * backtest holds the replica's partitions until it is done (other
 * replicas keep serving theirs). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bt.h"
#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "core/qb_config.h"
#include "core/qb_log.h"
#include "store/qb_store.h"
#include "svc/qb_svc.h"

typedef struct bs_cfg_s {
    const char *group;
    int64_t batch;
    int64_t cache_runs;
    int64_t progress_ms;
    int64_t resend_ms;
    int64_t max_bars;
    int64_t load_threads;
    int migrate;
} bs_cfg_t;

static const qb_cfg_entry_t bs_cfg_entries[] = {
    {"backtest.group", "QB_BACKTEST_GROUP", QB_CFG_STRING, "qb-backtest", 1, 200,
     offsetof(bs_cfg_t, group), 0,
     "consumer group: replicas in one group share the runs and their parts; parts carry it, so "
     "another deployment on the same topic ignores them"},
    {"backtest.batch", "QB_BACKTEST_BATCH", QB_CFG_INT, "16", 1, 100000,
     offsetof(bs_cfg_t, batch), 0,
     "parameter combinations per in-sample or grid part (smaller: more parts, finer sharing)"},
    {"backtest.cache_runs", "QB_BACKTEST_CACHE_RUNS", QB_CFG_INT, "4", 1, 1000,
     offsetof(bs_cfg_t, cache_runs), 0,
     "data sets (bars + plan of a split run) kept in memory, least recently used dropped"},
    {"backtest.progress_ms", "QB_BACKTEST_PROGRESS_MS", QB_CFG_INT, "1000", 100, 60000,
     offsetof(bs_cfg_t, progress_ms), 0,
     "a progress event at least this often while a run is running (and at every 5%)"},
    {"backtest.resend_ms", "QB_BACKTEST_RESEND_MS", QB_CFG_INT, "3000", 100, 3600000,
     offsetof(bs_cfg_t, resend_ms), 0,
     "parts (and final events) written but not acknowledged by the bus this long ago are "
     "re-sent by any replica"},
    {"backtest.max_bars", "QB_BACKTEST_MAX_BARS", QB_CFG_INT, "50000000", 1, 2000000000,
     offsetof(bs_cfg_t, max_bars), 0,
     "a run with more bars is refused (about 60 bytes of memory per bar)"},
    {"backtest.load_threads", "QB_BACKTEST_LOAD_THREADS", QB_CFG_INT, "2", 1, 16,
     offsetof(bs_cfg_t, load_threads), 0,
     "connections (and threads) reading a run's bars from PostgreSQL in parallel"},
    {"backtest.migrate", "QB_BACKTEST_MIGRATE", QB_CFG_BOOL, "true", 1, 0,
     offsetof(bs_cfg_t, migrate), 0, "apply the migrations of QB_SQL_DIR at start"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

int main(int argc, char **argv) {
    static bs_cfg_t cfg;
    static const char about[] =
        "The backtest service: consumes backtest.requests (group qb-backtest), loads the bars\n"
        "from md.bars, runs backtests, walk-forward optimisations and grid / random searches;\n"
        "walk-forward and grid runs are split into parts published back on backtest.requests so\n"
        "every replica takes a share, aggregated in PostgreSQL under the run's row lock; results\n"
        "in the backtest schema, progress and results on backtest.events. Admin port: /healthz,\n"
        "/readyz, /metrics.";
    char errstr[1024];
    int rc = 0;
    qb_store_t *st = NULL;
    qb_producer_t *prod = NULL;
    qb_consumer_t *cons = NULL;
    bt_work_t *work = NULL;
    qb_svc_t *svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-backtest", .about = about,
                                              .admin_port = 9105,
                                              .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG,
                                              .table = bs_cfg_entries, .cfg = &cfg},
                               argc, argv, &rc);
    if (!svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(svc);
    rc = 2;
    if (qb_topics_init(errstr, sizeof errstr)) {
        QB_ERROR("%s", errstr);
        goto out;
    }
    if (!(st = qb_store_new(com->pg_dsn, errstr, sizeof errstr))) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        goto out;
    }
    if (!(prod = qb_producer_new(errstr, sizeof errstr))) {
        QB_ERROR("producer: %s", errstr);
        goto out;
    }
    bt_work_cfg_t wc = {cfg.group, cfg.batch, cfg.cache_runs, cfg.progress_ms, cfg.resend_ms,
                        cfg.max_bars, cfg.load_threads};
    rc = 1;
    if (!(work = bt_work_new(&wc, st, prod, com->pg_dsn))) {
        QB_ERROR("out of memory");
        goto out;
    }
    if (qb_svc_migrate(svc, st, cfg.migrate)) goto out;
    const char *topics[] = {"backtest.requests"};
    cons = qb_consumer_new(cfg.group, topics, 1, bt_work_handle, work, errstr, sizeof errstr);
    if (!cons) {
        QB_ERROR("consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    QB_INFO("qb-backtest ready: group %s, %lld combinations per part, admin port %d", cfg.group,
            (long long)cfg.batch, qb_svc_admin_port(svc));
    rc = 0;
    while (qb_svc_running(svc)) {
        qb_err_t pe = qb_consumer_poll(cons, 50);
        if (pe == QB_ERR_KAFKA) {
            QB_ERROR("consumer failed fatally");
            rc = 1;
            break;
        }
        bt_work_tick(work);
        qb_producer_poll(prod, 0);
    }
    QB_INFO("qb-backtest stopping");
out:
    if (cons) {
        if (qb_consumer_close(cons) != QB_OK) QB_WARN("consumer: close timed out");
        qb_consumer_destroy(cons);
    }
    if (prod && qb_producer_flush(prod, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_svc_destroy(svc);
    bt_work_destroy(work);
    qb_producer_destroy(prod);
    qb_store_destroy(st);
    return rc;
}
