/* cmd_replay.c — `qbctl replay`: re-publish stored bars onto md.bars in
 * global time order (ties by symbol), as fast as possible or at N x bar
 * time, so the live pipeline can run on history (libs/md/qb_md_replay.h).
 *
 *   --from D / --to D   bar open times in [from, to): YYYY-MM-DD (00:00 UTC)
 *                       or an RFC 3339 time; each side optional (unbounded)
 *   --symbols A,B       the symbols (default: every one with bars in range)
 *   --timeframe TF      default 1d
 *   --speed N|max       N x bar time (1 = real time, 60 = a minute per
 *                       second), max (default) = as fast as possible
 * Event ids are the deterministic ones of the original publish, so
 * consumers that de-duplicate by event id see each bar once; with
 * QB_REDIS_URL set the newest bar per symbol is offered to Redis, which
 * keeps a newer live bar. Prints the count and the rate on stdout; on a
 * terminal (stderr) a progress line. Ctrl-C stops after delivering what was
 * handed out. Exit: 0 done, 1 error or interrupted, 2 usage. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "cache/qb_cache.h"
#include "core/qb_time.h"
#include "md/qb_md_replay.h"
#include "qbctl.h"
#include "store/qb_store.h"

#define REPLAY_MAX_SYMBOLS 100000

static volatile sig_atomic_t replay_cancel;
static void replay_on_signal(int sig) {
    (void)sig;
    replay_cancel = 1;
}

typedef struct replay_progress_s {
    int64_t start_ns, shown_ns;
    int shown;
} replay_progress_t;

static void replay_progress(void *opaque, int64_t done, qb_time_t ts) {
    replay_progress_t *p = opaque;
    int64_t now = qb_time_mono_ns();
    if (p->shown && now - p->shown_ns < 200 * QB_NS_PER_MS) return;
    char t[QB_TIME_STRLEN];
    qb_time_format(ts, t, sizeof t);
    double s = (double)(now - p->start_ns) / 1e9;
    fprintf(stderr, "\rreplay: %lld bars, at %s, %.0f bars/s   ", (long long)done, t,
            s > 0 ? (double)done / s : 0.0);
    fflush(stderr);
    p->shown = 1;
    p->shown_ns = now;
}

static int replay_usage(const char *msg) {
    fprintf(stderr,
            "qbctl replay: %s\n"
            "usage: qbctl replay [--from D] [--to D] [--symbols A,B] [--timeframe 1d]\n"
            "         [--speed N|max]\n"
            "  D is YYYY-MM-DD (00:00 UTC) or an RFC 3339 time; bars with open time in\n"
            "  [from, to) of the given symbols (default: all) are published to md.bars in\n"
            "  time order at N x bar time, or as fast as possible (max, the default)\n",
            msg);
    return 2;
}

/* Parse a --from/--to value into *out; 0 on success. */
static int replay_time_arg(const char *v, qb_time_t *out) {
    return qb_time_parse(v, strlen(v), out) == QB_OK && *out != 0 ? 0 : -1;
}

int qbctl_replay(int argc, char **argv) {
    const char *from_s = NULL, *to_s = NULL, *symbols = NULL, *timeframe = "1d", *speed_s = "max";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, var)                                                                 \
    if (strcmp(a, name) == 0) {                                                        \
        if (!val) return replay_usage("option " name " needs a value");                \
        var = val;                                                                     \
        i++;                                                                           \
        continue;                                                                      \
    }
        OPT("--from", from_s)
        OPT("--to", to_s)
        OPT("--symbols", symbols)
        OPT("--timeframe", timeframe)
        OPT("--speed", speed_s)
#undef OPT
        char m[300];
        snprintf(m, sizeof m, "unknown option '%s'", a);
        return replay_usage(m);
    }
    qb_md_replay_opts_t o;
    memset(&o, 0, sizeof o);
    if (from_s && replay_time_arg(from_s, &o.from) != 0)
        return replay_usage("--from must be YYYY-MM-DD or an RFC 3339 time");
    if (to_s && replay_time_arg(to_s, &o.to) != 0)
        return replay_usage("--to must be YYYY-MM-DD or an RFC 3339 time");
    if (strcmp(speed_s, "max") == 0) {
        o.speed = QB_MD_REPLAY_MAX_SPEED;
    } else {
        char *end = NULL;
        o.speed = strtod(speed_s, &end);
        if (end == speed_s || *end || !isfinite(o.speed) || o.speed <= 0)
            return replay_usage("--speed must be a positive number or max");
    }
    o.timeframe = timeframe;
    o.cancel = &replay_cancel;

    /* --symbols A,B,C: split a copy in place. */
    char *symbuf = NULL;
    const char **syms = NULL;
    size_t nsyms = 0;
    if (symbols) {
        symbuf = strdup(symbols);
        size_t cap = 1;
        for (const char *p = symbols; *p; p++) cap += *p == ',';
        syms = calloc(cap, sizeof(*syms));
        if (!symbuf || !syms || cap > REPLAY_MAX_SYMBOLS) {
            free(symbuf);
            free(syms);
            return replay_usage("--symbols: too many symbols or out of memory");
        }
        for (char *save = NULL, *t = strtok_r(symbuf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t) syms[nsyms++] = t;
        if (nsyms == 0) {
            free(symbuf);
            free(syms);
            return replay_usage("--symbols needs at least one symbol");
        }
    }
    o.symbols = syms;
    o.nsymbols = nsyms;

    char err[1024];
    replay_progress_t prog;
    memset(&prog, 0, sizeof prog);
    int tty = isatty(STDERR_FILENO);
    if (tty) {
        o.progress = replay_progress;
        o.progress_opaque = &prog;
    }
    int rc = 1;
    qb_store_t *s = NULL;
    qb_md_replay_t *r = NULL;
    qb_producer_t *p = NULL;
    qb_cache_t *cache = NULL;
    qb_err_t e;
    /* qb_store_new only parses the DSN: bad options still exit 2 before any
     * connection is made. */
    s = qb_store_new(qbctl_cfg.pg_dsn, err, sizeof err);
    if (!s) {
        fprintf(stderr, "qbctl replay: QB_PG_DSN: %s\n", err);
        rc = 2;
        goto out;
    }
    if ((e = qb_md_replay_new(s, &o, &r, err, sizeof err)) != QB_OK) {
        rc = replay_usage(err);
        goto out;
    }
    p = qb_producer_new(err, sizeof err);
    if (!p) {
        fprintf(stderr, "qbctl replay: %s\n", err);
        goto out;
    }
    if (qbctl_cfg.redis_url && *qbctl_cfg.redis_url &&
        !(cache = qb_cache_new(qbctl_cfg.redis_url, err, sizeof err))) {
        fprintf(stderr, "qbctl replay: QB_REDIS_URL: %s\n", err);
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = replay_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prog.start_ns = qb_time_mono_ns();
    e = qb_md_replay_publish(r, p, cache, "qbctl", err, sizeof err);
    if (prog.shown) fprintf(stderr, "\n");
    qb_md_replay_stats_t st;
    qb_md_replay_stats(r, &st);
    double secs = (double)st.elapsed_ns / 1e9;
    printf("replayed %lld bars of %lld symbols (%s) to md.bars in %.3f s: %.0f bars/s%s\n",
           (long long)st.bars, (long long)st.symbols, timeframe, secs,
           secs > 0 ? (double)st.bars / secs : 0.0, st.canceled ? " (interrupted)" : "");
    if (e) {
        fprintf(stderr, "qbctl replay: %s\n", err);
        goto out;
    }
    rc = st.canceled ? 1 : 0;
out:
    qb_cache_destroy(cache);
    qb_producer_destroy(p);
    qb_md_replay_destroy(r);
    qb_store_destroy(s);
    free(symbuf);
    free(syms);
    return rc;
}
