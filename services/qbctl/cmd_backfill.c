/* cmd_backfill.c — `qbctl backfill`: fetch history for several symbols from
 * a source into md.bars, only what is missing.
 *
 *   qbctl backfill --source S --symbols A,B --from D --to D [--timeframe 1d]
 *         [--options JSON] [--asset-class equity] [--calendar XNYS|24x7]
 *         [--all] [--no-publish] [--progress auto|always|never]
 *
 * Per symbol, the spans of [from, to) that the exchange calendar expects
 * and md.bars lacks (libs/md/qb_md_gaps.h; the asset's calendar, or
 * --calendar) are fetched from the source (libs/md/qb_md_sources.h: csv
 * with --options '{"path": ".../{symbol}.csv", ...}', synthetic, alpaca,
 * polygon, yahoo, coinbase) and run through the ingest pipeline
 * (validation, idempotent load, md.ingest_log), each committed batch
 * published on md.bars (with the crash-safe outbox) unless --no-publish.
 * --all fetches the whole range (also what is stored: a re-check, loads are
 * idempotent and differing bars are recorded as conflicts); timeframes
 * above 1d always fetch the whole range.
 *
 * Progress: on a terminal (or --progress always) one line on stderr that
 * redraws: a bar, percent of the missing bars done, the symbol, bars
 * loaded, bars/s. Without it, one summary line per symbol. Exit: 0 every
 * symbol done, 1 a symbol failed (the others still run), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "cal/qb_cal.h"
#include "core/qb_time.h"
#include "md/qb_md_gaps.h"
#include "md/qb_md_ingest.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_sources.h"
#include "md/qb_md_store.h"
#include "qbctl.h"
#include "store/qb_store.h"

#define BF_MAX_SYMBOLS 1000
#define BF_BAR_WIDTH 30

typedef struct bf_s {
    qb_producer_t *producer; /* NULL with --no-publish */
    qb_cache_t *cache;
    const char *source;
    int progress;
    /* progress */
    const char *symbol;
    int isym, nsym;
    double expected;     /* bars expected over everything (estimate) */
    double done_before;  /* expected bars of finished spans */
    qb_time_t span_from, span_to;
    double span_expected;
    int64_t loaded, published, rejected;
    qb_time_t started;
    int drawn;
} bf_t;

static void bf_draw(bf_t *b, double frac_span) {
    if (!b->progress) return;
    double done = b->done_before + frac_span * b->span_expected;
    double pct = b->expected > 0 ? done / b->expected : 1;
    if (pct > 1) pct = 1;
    int fill = (int)(pct * BF_BAR_WIDTH + 0.5);
    char bar[BF_BAR_WIDTH + 1];
    for (int i = 0; i < BF_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BF_BAR_WIDTH] = '\0';
    double secs = (double)(qb_time_now() - b->started) / 1e9;
    fprintf(stderr, "\r[%s] %5.1f%%  %s (%d/%d)  %lld bars  %.0f bars/s   ", bar, pct * 100,
            b->symbol ? b->symbol : "", b->isym + 1, b->nsym, (long long)b->loaded,
            secs > 0 ? (double)b->loaded / secs : 0.0);
    fflush(stderr);
    b->drawn = 1;
}

static qb_err_t bf_committed(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                             size_t n, char *errstr, size_t errstr_size) {
    bf_t *b = opaque;
    (void)flags;
    if (b->producer) {
        qb_err_t e = qb_md_publish_committed(b->producer, b->cache, bars, n, b->source, "qbctl",
                                             30000, errstr, errstr_size);
        if (e) return e;
        b->published += (int64_t)n;
    }
    if (n && b->span_to > b->span_from)
        bf_draw(b, (double)(bars[n - 1].ts - b->span_from) / (double)(b->span_to - b->span_from));
    return QB_OK;
}

static void bf_reject(void *opaque, const char *where, const char *reason) {
    bf_t *b = opaque;
    if (b->rejected++ < 20) {
        if (b->drawn) fputc('\n', stderr);
        b->drawn = 0;
        fprintf(stderr, "%s: %s\n", where, reason);
    }
}

static int bf_usage(const char *msg) {
    fprintf(stderr,
            "qbctl backfill: %s\n"
            "usage: qbctl backfill --source S --symbols A,B --from D --to D [--timeframe 1d]\n"
            "         [--options JSON] [--asset-class equity] [--calendar XNYS|24x7] [--all]\n"
            "         [--no-publish] [--progress auto|always|never]\n",
            msg);
    return 2;
}

int qbctl_backfill(int argc, char **argv) {
    const char *source = NULL, *symbols_s = NULL, *from_s = NULL, *to_s = NULL;
    const char *timeframe = "1d", *options = NULL, *asset_class = NULL, *calname = NULL;
    const char *progress = "auto";
    int all = 0, publish = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return bf_usage("option " name " needs a value");                    \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--source", source)
        OPT("--symbols", symbols_s)
        OPT("--from", from_s)
        OPT("--to", to_s)
        OPT("--timeframe", timeframe)
        OPT("--options", options)
        OPT("--asset-class", asset_class)
        OPT("--calendar", calname)
        OPT("--progress", progress)
#undef OPT
        if (strcmp(a, "--all") == 0) {
            all = 1;
            continue;
        }
        if (strcmp(a, "--no-publish") == 0) {
            publish = 0;
            continue;
        }
        char m[300];
        snprintf(m, sizeof m, "unknown option '%s'", a);
        return bf_usage(m);
    }
    if (!source || !symbols_s || !from_s || !to_s)
        return bf_usage("--source, --symbols, --from and --to are required");
    qb_time_t from = 0, to = 0;
    if (qb_time_parse(from_s, strlen(from_s), &from) != QB_OK)
        return bf_usage("--from must be YYYY-MM-DD or an RFC 3339 time");
    if (qb_time_parse(to_s, strlen(to_s), &to) != QB_OK)
        return bf_usage("--to must be YYYY-MM-DD or an RFC 3339 time");
    if (to <= from) return bf_usage("--to must be after --from");
    int64_t tf_ns;
    if (qb_timeframe_parse(timeframe, &tf_ns) != QB_OK)
        return bf_usage("--timeframe must be one of 1m 5m 15m 30m 1h 4h 1d 1w");
    if (tf_ns > QB_NS_PER_DAY) all = 1;
    const qb_cal_t *cal = NULL;
    char err[1024];
    if (calname && qb_cal_get(calname, &cal, err, sizeof err) != QB_OK)
        return bf_usage("--calendar must be XNYS or 24x7");
    if (strcmp(progress, "auto") != 0 && strcmp(progress, "always") != 0 &&
        strcmp(progress, "never") != 0)
        return bf_usage("--progress must be auto, always or never");

    /* Symbols. */
    char *list = strdup(symbols_s);
    const char *syms[BF_MAX_SYMBOLS];
    int nsym = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!*t) continue;
        if (nsym == BF_MAX_SYMBOLS) {
            free(list);
            return bf_usage("at most 1000 symbols");
        }
        qb_symbol_t sy;
        if (qb_symbol_set(&sy, t, err, sizeof err) != QB_OK) {
            free(list);
            return bf_usage(err);
        }
        syms[nsym++] = t;
    }
    if (nsym == 0) {
        free(list);
        return bf_usage("--symbols is empty");
    }
    /* The source, once, to check the name and options (csv: per symbol). */
    int per_symbol = qb_md_source_per_symbol(source);
    qb_store_t *s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        free(list);
        fprintf(stderr, "qbctl backfill: QB_PG_DSN: %s\n", err);
        return 2;
    }
    qb_md_source_t *src = qb_md_source_open_store(source, options, syms[0], s, err, sizeof err);
    if (!src) {
        free(list);
        qb_store_destroy(s);
        fprintf(stderr, "qbctl backfill: %s\n", err);
        return 2;
    }
    bf_t b;
    memset(&b, 0, sizeof b);
    b.source = qb_md_source_name(src);
    b.progress = strcmp(progress, "always") == 0 ||
                 (strcmp(progress, "auto") == 0 && isatty(STDERR_FILENO));
    b.nsym = nsym;
    b.started = qb_time_now();
    int rc = 1, failed = 0;
    qb_md_gaps_t *gaps = calloc((size_t)nsym, sizeof *gaps);
    if (!gaps) {
        fprintf(stderr, "qbctl backfill: out of memory\n");
        goto out;
    }
    if (qb_md_store_check_schema(s, err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl backfill: %s\n", err);
        goto out;
    }
    if (publish) {
        if (!(b.producer = qb_producer_new(err, sizeof err))) {
            fprintf(stderr, "qbctl backfill: %s (or use --no-publish)\n", err);
            goto out;
        }
        if (qbctl_cfg.redis_url && *qbctl_cfg.redis_url &&
            !(b.cache = qb_cache_new(qbctl_cfg.redis_url, err, sizeof err))) {
            fprintf(stderr, "qbctl backfill: QB_REDIS_URL: %s\n", err);
            goto out;
        }
    }
    /* What is missing, per symbol (the whole range with --all). */
    for (int i = 0; i < nsym; i++) {
        if (all) {
            gaps[i].spans = calloc(1, sizeof *gaps[i].spans);
            if (!gaps[i].spans) goto out;
            gaps[i].spans[0].from = from;
            gaps[i].spans[0].to = to;
            gaps[i].spans[0].nbars = (size_t)((to - from) / tf_ns);
            gaps[i].nspans = 1;
            gaps[i].missing = gaps[i].spans[0].nbars;
        } else if (qb_md_gaps_find(s, syms[i], timeframe, cal, from, to, &gaps[i], err,
                                   sizeof err) != QB_OK) {
            fprintf(stderr, "qbctl backfill: %s: %s%s\n", syms[i], err,
                    cal ? "" : " (pass --calendar)");
            goto out;
        }
        b.expected += (double)gaps[i].missing;
    }
    for (int i = 0; i < nsym; i++) {
        b.isym = i;
        b.symbol = syms[i];
        if (per_symbol && i > 0) {
            qb_md_source_destroy(src);
            if (!(src = qb_md_source_open_store(source, options, syms[i], s, err, sizeof err))) {
                fprintf(stderr, "%sqbctl backfill: %s: %s\n", b.drawn ? "\n" : "", syms[i], err);
                b.drawn = 0;
                failed++;
                continue;
            }
        }
        int64_t loaded0 = b.loaded, rejected0 = b.rejected;
        qb_err_t e = QB_OK;
        for (size_t k = 0; k < gaps[i].nspans && e == QB_OK; k++) {
            const qb_cal_gap_t *g = &gaps[i].spans[k];
            b.span_from = g->from;
            b.span_to = g->to;
            b.span_expected = (double)g->nbars;
            bf_draw(&b, 0);
            qb_md_request_t req = {.symbol = syms[i], .timeframe = timeframe, .from = g->from,
                                   .to = g->to};
            qb_md_ingest_opts_t io = {.job = "qbctl backfill",
                                      .asset_class = asset_class,
                                      .reject_cb = bf_reject,
                                      .committed_cb = bf_committed,
                                      .outbox = publish,
                                      .opaque = &b};
            if (!asset_class && strcmp(source, "coinbase") == 0) io.asset_class = "crypto";
            qb_md_ingest_result_t r;
            memset(&r, 0, sizeof r);
            e = qb_md_ingest(s, src, &req, &io, &r, err, sizeof err);
            b.loaded += r.rows_loaded;
            b.done_before += b.span_expected;
            b.span_expected = 0;
        }
        bf_draw(&b, 0);
        if (!b.progress || e != QB_OK) {
            if (b.drawn) fputc('\n', stderr);
            b.drawn = 0;
            fprintf(e ? stderr : stdout, "%s %s: %zu missing bars in %zu spans, %lld loaded, "
                    "%lld rejected%s%s\n", syms[i], timeframe, gaps[i].missing, gaps[i].nspans,
                    (long long)(b.loaded - loaded0), (long long)(b.rejected - rejected0),
                    e ? ": " : "", e ? err : "");
        }
        if (e != QB_OK) failed++;
    }
    if (b.drawn) fputc('\n', stderr);
    double secs = (double)(qb_time_now() - b.started) / 1e9;
    printf("backfill %s %s: %d symbols, %lld bars loaded, %lld published, %lld rejected, "
           "%.1f s%s\n",
           source, timeframe, nsym, (long long)b.loaded, (long long)b.published,
           (long long)b.rejected, secs, failed ? " (some symbols failed)" : "");
    rc = failed ? 1 : 0;
out:
    if (gaps)
        for (int i = 0; i < nsym; i++) qb_md_gaps_free(&gaps[i]);
    free(gaps);
    qb_md_source_destroy(src);
    qb_cache_destroy(b.cache);
    qb_producer_destroy(b.producer);
    qb_store_destroy(s);
    free(list);
    return rc;
}
