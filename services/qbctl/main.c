/* qbctl — the Quantbus operator CLI.
 *
 *   qbctl migrate [--status] [--dir DIR]   apply (or list) the SQL migrations
 *   qbctl topics [--names]                 the topic registry (+ broker view)
 *   qbctl tail TOPIC [options]             print messages as JSON lines
 *   qbctl produce TOPIC [options]          JSON lines on stdin -> protobuf
 *   qbctl import --csv FILE --symbol SYM   load a CSV of bars into md.bars
 *   qbctl ta --csv FILE --indicators SPECS technical indicators per bar (libs/ta)
 *   qbctl backtest --csv FILE --strategy S a local backtest over CSVs (libs/backtest)
 *   qbctl walkforward --csv F --strategy S --grid G --is L --oos L   walk-forward
 *   qbctl optimize --csv F --strategy S --grid G   grid/random search, ranked
 *   qbctl replay [--from D --to D ...]     re-publish stored bars onto md.bars
 *   qbctl data gaps SYMBOL                 missing bars vs the exchange calendar
 *   qbctl backfill --source S --symbols A,B --from D --to D
 *                                          fetch what is missing into md.bars
 *
 * It grows with the platform. Each command lives in its own file
 * (cmd_*.c); this file parses the command line and the configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qb_config.h"
#include "core/qb_log.h"
#include "qbctl.h"

qbctl_cfg_t qbctl_cfg;

#define OFF(f) offsetof(qbctl_cfg_t, f)
static const qb_cfg_entry_t qbctl_table[] = {
    {"kafka.brokers", "QB_KAFKA_BROKERS", QB_CFG_STRING, "127.0.0.1:9092", 1, 4096,
     OFF(kafka_brokers), 0, "Kafka bootstrap servers (tail, produce, topics)"},
    {"pg.dsn", "QB_PG_DSN", QB_CFG_STRING,
     "host=127.0.0.1 port=5432 user=postgres dbname=quantbus", 0, 4096, OFF(pg_dsn),
     QB_CFG_SECRET, "PostgreSQL connection string (migrate, import)"},
    {"sql.dir", "QB_SQL_DIR", QB_CFG_STRING, "sql", 1, 4096, OFF(sql_dir), 0,
     "directory holding the numbered migrations (migrate)"},
    {"redis.url", "QB_REDIS_URL", QB_CFG_STRING, "", 1, 0, OFF(redis_url), QB_CFG_SECRET,
     "Redis URL for the latest bar per symbol (import); empty = skip Redis"},
    {"log.level", "QB_LOG_LEVEL", QB_CFG_STRING, "warn", 1, 16, OFF(log_level), 0,
     "log level on stderr: debug, info, warn, error, off"},
    {0},
};

static const char *qbctl_about =
    "The Quantbus operator CLI.\n\n"
    "Commands:\n"
    "  migrate [--status] [--dir DIR]   apply pending SQL migrations (or list them)\n"
    "  topics [--names]                 list the topic registry and what the broker reports\n"
    "  tail TOPIC [--from-beginning] [--max N] [--timeout-ms MS] [--meta]\n"
    "                                   print each message as one JSON object per line\n"
    "  produce TOPIC [--type NAME] [--key KEY]\n"
    "                                   read JSON objects, one per line, from stdin and\n"
    "                                   publish them as protobuf (header filled in when\n"
    "                                   absent; key taken from the topic's key field)\n"
    "  import --csv FILE --symbol SYM [--format yahoo|generic] [--timeframe 1d]\n"
    "         [--asset-class equity] [--columns time,open,high,low,close[,volume]]\n"
    "         [--time-format date|iso|unix_s|unix_ms] [--delimiter C] [--source NAME]\n"
    "                                   validate and load bars into md.bars (idempotent);\n"
    "                                   rejected rows as FILE:LINE: reason on stderr, exit 1\n"
    "                                   if any; columns are header names or 0-based indexes,\n"
    "                                   positional or key=value (time=Date,open=Open,...)\n"
    "  ta --csv FILE --indicators rsi:14,macd:12:26:9,bbands:20:2:2 [--format csv|json]\n"
    "                                   technical indicators (TA-Lib definitions) per bar:\n"
    "                                   time, close, one column per output; `ta --list` shows\n"
    "                                   every indicator with its parameters and defaults\n"
    "  backtest --csv FILE [--csv SYM=FILE ...] --strategy NAME [--params JSON] [--cash N]\n"
    "         [--commission-pct P] [--slippage-bps B] [--fill next_open|close]\n"
    "         [--sizing all_in|fixed_qty|percent_equity|fixed_fractional] [--sizing-value V]\n"
    "         [--long-only] [--json] [--html report.html] (`backtest --help`: every option)\n"
    "                                   a backtest over CSV files, locally (no bus, no\n"
    "                                   database): metrics beside equal-weight buy-and-hold,\n"
    "                                   JSON with --json, a self-contained HTML report\n"
    "  audit verify [--account A]       check the hash chain of the order audit log\n"
    "                                   (trading.audit_log); names the first bad row, exit 1\n"
    "  backtest submit --strategy NAME --symbols A,B --timeframe 1d [--grid G --wf-train N\n"
    "         --wf-test N --wf-windows N] [--wait] (`backtest submit --help`)\n"
    "                                   submit a run to qb-backtest (bars from PostgreSQL;\n"
    "                                   walk-forward and grid runs are split over replicas)\n"
    "  walkforward --csv FILE --strategy NAME --grid 'fast=5:20:5;slow=20,50' --is L --oos L\n"
    "         [--step L] [--mode rolling|anchored] [--objective sharpe] [--min-trades N]\n"
    "         [--random N --seed S] [--mc N] [--json] (`walkforward --help`: every option)\n"
    "                                   walk-forward optimisation, locally: per window the\n"
    "                                   best parameters in-sample and their out-of-sample\n"
    "                                   result, the stitched out-of-sample metrics, parameter\n"
    "                                   stability; L = time steps (250) or a duration (6mo)\n"
    "  optimize --csv FILE --strategy NAME --grid G [--random N --seed S] [--top K] [--json]\n"
    "                                   grid or random parameter search on one period, ranked\n"
    "  actions import --csv FILE --symbol SYM [--asset-class equity] [--source NAME]\n"
    "                                   load splits and dividends (CSV date,kind,value; kind\n"
    "                                   split with 2:1, 3-for-2 or 1.5, or dividend with the\n"
    "                                   cash amount); any rejected line (FILE:LINE: reason on\n"
    "                                   stderr) stores nothing, exit 1\n"
    "  actions list SYM                 the stored actions, as the same CSV\n"
    "  bars SYM [--from D] [--to D] [--timeframe 1d] [--adjust raw|split|total]\n"
    "                                   stored bars as CSV, adjusted on read for splits\n"
    "                                   (split) or splits and dividends (total); from/to\n"
    "                                   inclusive\n"
    "  replay [--from D] [--to D] [--symbols A,B] [--timeframe 1d] [--speed N|max]\n"
    "                                   re-publish stored bars with open time in [from, to)\n"
    "                                   onto md.bars in time order (ties by symbol), at N x\n"
    "                                   bar time or as fast as possible (max, the default);\n"
    "                                   same event ids as the original publish\n"
    "  data gaps SYMBOL [--timeframe 1d] [--from D] [--to D] [--calendar XNYS|24x7]\n"
    "                                   missing bars vs the exchange calendar, one span per\n"
    "                                   line: FROM TO BARS ([FROM, TO) is what to fetch)\n"
    "  data resample SYMBOL --to-tf 5m|15m|1h|1d [--from-tf 1m] [--from D] [--to D]\n"
    "         [--calendar XNYS|24x7] [--no-publish]\n"
    "                                   build the missing longer bars from stored shorter\n"
    "                                   ones, session-aware (an NYSE 1h bar opens at 09:30),\n"
    "                                   stored and published like any ingest\n"
    "  backfill --source S --symbols A,B --from D --to D [--timeframe 1d] [--options JSON]\n"
    "         [--asset-class C] [--calendar XNYS|24x7] [--all] [--no-publish]\n"
    "         [--progress auto|always|never]\n"
    "                                   fetch the bars of [from, to) the calendar expects and\n"
    "                                   md.bars lacks (--all: everything) from a source (csv\n"
    "                                   with --options '{\"path\":\"d/{symbol}.csv\"}', synthetic,\n"
    "                                   alpaca, polygon, yahoo, coinbase) through validation\n"
    "                                   into md.bars and onto the md.bars topic; a progress\n"
    "                                   bar on a terminal";

static void qbctl_usage(FILE *f) {
    qb_cfg_section_t s = {"qbctl", qbctl_table, &qbctl_cfg};
    qb_config_help(f, "qbctl COMMAND", qbctl_about, &s, 1);
}

int main(int argc, char **argv) {
    char err[512];
    qb_cfg_section_t s = {"qbctl", qbctl_table, &qbctl_cfg};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        qbctl_usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (qb_config_load(&s, 1, err, sizeof(err)) != QB_OK) {
        fprintf(stderr, "qbctl: configuration error: %s\n", err);
        return 2;
    }
    int lvl = qb_log_level_parse(qbctl_cfg.log_level);
    qb_log_init("qbctl", lvl < 0 ? QB_LOG_WARN : (qb_log_level_t)lvl);
    /* The bus reads QB_KAFKA_BROKERS itself; make sure the default applies. */
    setenv("QB_KAFKA_BROKERS", qbctl_cfg.kafka_brokers, 0);

    const char *cmd = argv[1];
    if (strcmp(cmd, "migrate") == 0) return qbctl_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0) return qbctl_topics(argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0) return qbctl_tail(argc - 1, argv + 1);
    if (strcmp(cmd, "produce") == 0) return qbctl_produce(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0) return qbctl_import(argc - 1, argv + 1);
    if (strcmp(cmd, "ta") == 0) return qbctl_ta(argc - 1, argv + 1);
    if (strcmp(cmd, "actions") == 0 || strcmp(cmd, "bars") == 0) return qbctl_actions(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0) return qbctl_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "data") == 0) return qbctl_data(argc - 1, argv + 1);
    if (strcmp(cmd, "backfill") == 0) return qbctl_backfill(argc - 1, argv + 1);
    if (strcmp(cmd, "backtest") == 0 && argc > 2 && strcmp(argv[2], "submit") == 0)
        return qbctl_bt_submit(argc - 2, argv + 2);
    if (strcmp(cmd, "backtest") == 0) return qbctl_backtest(argc - 1, argv + 1);
    if (strcmp(cmd, "walkforward") == 0) return qbctl_walkforward(argc - 1, argv + 1);
    if (strcmp(cmd, "optimize") == 0) return qbctl_optimize(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0) return qbctl_audit(argc - 1, argv + 1);
    fprintf(stderr, "qbctl: unknown command '%s' (see qbctl --help)\n", cmd);
    return 2;
}
