/* cmd_import.c — `qbctl import --csv FILE --symbol SYM ...`: load a CSV file
 * of bars into md.bars through the ingest pipeline (libs/md/qb_md_ingest.h):
 * validation, idempotent COPY load, md.ingest_log. Prints the counts on
 * stdout and each rejected row as "FILE:LINE: reason" on stderr (the first
 * 20, then how many more). Exit: 0 all rows accepted, 1 some row rejected
 * or an error, 2 usage. The md schema must exist (`qbctl migrate`).
 *
 * Publishing: after each committed batch its bars go to md.bars (keyed by
 * symbol, deterministic event ids; libs/md/qb_md_publish.h) and the producer
 * is flushed before the next batch; with QB_REDIS_URL set, the newest bar
 * per symbol goes to Redis too. `--no-publish` loads PostgreSQL only. If a
 * publish fails, the run stops with the batch stored but not published:
 * running the same import again re-publishes every bar (duplicates
 * included), and consumers de-duplicate by event id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "md/qb_md_csv.h"
#include "md/qb_md_ingest.h"
#include "md/qb_md_publish.h"
#include "qbctl.h"
#include "store/qb_store.h"

#define IMPORT_SHOW_REJECTS 20

typedef struct import_ctx_s {
    int64_t shown, total;
    qb_producer_t *producer; /* NULL with --no-publish */
    qb_cache_t *cache;       /* NULL without QB_REDIS_URL */
    const char *source;
    int64_t published;
} import_ctx_t;

/* The ingest pipeline's publish hook: runs after each committed batch. */
static qb_err_t import_publish(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                               size_t n, char *errstr, size_t errstr_size) {
    import_ctx_t *c = opaque;
    (void)flags;
    qb_err_t e = qb_md_publish_committed(c->producer, c->cache, bars, n, c->source, "qbctl",
                                         30000, errstr, errstr_size);
    if (!e) c->published += (int64_t)n;
    return e;
}

static void import_reject(void *opaque, const char *where, const char *reason) {
    import_ctx_t *c = opaque;
    c->total++;
    if (c->shown < IMPORT_SHOW_REJECTS) {
        fprintf(stderr, "%s: %s\n", where, reason);
        c->shown++;
    }
}

static int import_usage(const char *msg) {
    fprintf(stderr,
            "qbctl import: %s\n"
            "usage: qbctl import --csv FILE --symbol SYM [--format yahoo|generic] [--timeframe 1d]\n"
            "         [--asset-class equity] [--columns time,open,high,low,close[,volume]]\n"
            "         [--time-format date|iso|unix_s|unix_ms] [--delimiter C] [--source NAME]\n"
            "         [--no-publish]\n",
            msg);
    return 2;
}

int qbctl_import(int argc, char **argv) {
    const char *csv = NULL, *symbol = NULL, *format = "yahoo", *timeframe = "1d";
    const char *asset_class = "equity", *tfmt = NULL, *source = NULL;
    char *columns = NULL;
    char delim = 0;
    int publish = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return import_usage("option " name " needs a value");                \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--csv", csv)
        OPT("--symbol", symbol)
        OPT("--format", format)
        OPT("--timeframe", timeframe)
        OPT("--asset-class", asset_class)
        OPT("--time-format", tfmt)
        OPT("--source", source)
#undef OPT
        if (strcmp(a, "--no-publish") == 0) {
            publish = 0;
            continue;
        }
        if (strcmp(a, "--columns") == 0 && val) {
            columns = argv[++i];
            continue;
        }
        if (strcmp(a, "--delimiter") == 0 && val) {
            if (strcmp(val, "\\t") == 0 || strcmp(val, "tab") == 0) delim = '\t';
            else if (strlen(val) == 1) delim = val[0];
            else return import_usage("--delimiter takes one character (or tab)");
            i++;
            continue;
        }
        char m[300];
        snprintf(m, sizeof m, "unknown option '%s'", a);
        return import_usage(m);
    }
    if (!csv || !symbol) return import_usage("--csv and --symbol are required");

    qb_md_csv_opts_t o;
    char err[1024];
    if (qb_md_csv_opts_parse(format, columns, tfmt, &o, err, sizeof err) != QB_OK)
        return import_usage(err);
    o.delimiter = delim;
    int64_t tfns;
    if (qb_timeframe_parse(timeframe, &tfns) != QB_OK)
        return import_usage("--timeframe must be one of 1m 5m 15m 30m 1h 4h 1d 1w");

    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qbctl import: QB_PG_DSN: %s\n", err);
        return 2;
    }
    int rc = 1;
    qb_md_source_t *src = NULL;
    import_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    if (qb_md_store_check_schema(s, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl import: %s\n", err);
        goto out;
    }
    src = qb_md_csv_source_new(csv, &o, err, sizeof err);
    if (!src) {
        fprintf(stderr, "qbctl import: %s\n", err);
        goto out;
    }
    ctx.source = source ? source : "csv";
    if (publish) {
        ctx.producer = qb_producer_new(err, sizeof err);
        if (!ctx.producer) {
            fprintf(stderr, "qbctl import: %s (or use --no-publish)\n", err);
            goto out;
        }
        if (qbctl_cfg.redis_url && *qbctl_cfg.redis_url &&
            !(ctx.cache = qb_cache_new(qbctl_cfg.redis_url, err, sizeof err))) {
            fprintf(stderr, "qbctl import: QB_REDIS_URL: %s\n", err);
            goto out;
        }
    }
    qb_md_ingest_opts_t io;
    memset(&io, 0, sizeof io);
    io.job = "qbctl import";
    io.source_name = source;
    io.asset_class = asset_class;
    io.reject_cb = import_reject;
    io.committed_cb = publish ? import_publish : NULL;
    io.outbox = publish; /* a crash between commit and publish: qb-data re-publishes */
    io.opaque = &ctx;
    qb_md_request_t req = {symbol, timeframe, 0, 0, 0};
    qb_md_ingest_result_t r;
    qb_err_t e = qb_md_ingest(s, src, &req, &io, &r, err, sizeof err);
    if (ctx.total > ctx.shown)
        fprintf(stderr, "... and %lld more rejected rows\n", (long long)(ctx.total - ctx.shown));
    printf("%s %s: rows %lld, loaded %lld, duplicates %lld, rejected %lld, outliers %lld, "
           "conflicts %lld (%lld ms, ingest_log id %lld)\n",
           csv, symbol, (long long)r.rows_in, (long long)r.rows_loaded,
           (long long)r.rows_duplicate, (long long)r.rows_rejected, (long long)r.rows_outlier,
           (long long)r.conflicts, (long long)r.duration_ms, (long long)r.ingest_id);
    if (publish) printf("published %lld bars to md.bars\n", (long long)ctx.published);
    if (e != QB_OK) {
        fprintf(stderr, "qbctl import: %s\n", err);
        goto out;
    }
    rc = r.rows_rejected > 0 ? 1 : 0;
out:
    qb_cache_destroy(ctx.cache);
    qb_producer_destroy(ctx.producer);
    qb_md_source_destroy(src);
    qb_store_destroy(s);
    return rc;
}
