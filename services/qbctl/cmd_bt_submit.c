/* cmd_bt_submit.c — `qbctl backtest submit`: send a run to the qb-backtest
 * service (a WHOLE_RUN BacktestRequest on backtest.requests, bars from
 * md.bars) and, with --wait, follow its events until it finishes.
 *
 *   qbctl backtest submit --strategy NAME --symbols A,B --timeframe 1d
 *       [--run-id ID] [--params JSON] [--from D] [--to D] [--cash N]
 *       [--fill next_open|close] [--commission-pct P] [--slippage-bps B]
 *       [--set KEY=VALUE ...]
 *       [--grid 'fast=5,10,20;slow=30:90:30'] [--random N --seed S]
 *       [--objective METRIC] [--min-trades N]
 *       [--wf-train L --wf-test L [--wf-step L] [--wf-windows N] [--anchored]
 *        [--drop-partial]]
 *       [--group G] [--wait [--timeout S]]
 *
 * L: time steps ("250") or a duration ("90d", "4w", "12h", "30m"; the
 * message carries ns, so no months). Grid values are sent as written
 * (text_values): a list, or one range lo:hi:step. Without --run-id a UUID
 * is made and printed. --wait prints progress on stderr and the final
 * event as JSON on stdout; exit 0 FINISHED, 1 FAILED or time-out, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/qb_bus.h"
#include "bus/qb_reader.h"
#include "bus/qb_topics.h"
#include "core/qb_decimal.h"
#include "core/qb_time.h"
#include "core/qb_uuid.h"
#include "proto/qb_pbjson.h"
#include "proto/qb_proto.h"
#include "qb/v1/backtest.pb-c.h"
#include "qbctl.h"

#define SUB_MAX 256

static int sub_usage(const char *msg) {
    fprintf(stderr,
            "qbctl backtest submit: %s\n"
            "usage: qbctl backtest submit --strategy NAME --symbols A,B --timeframe 1d [--run-id ID]\n"
            "   [--params JSON] [--from D] [--to D] [--cash N] [--fill next_open|close]\n"
            "   [--commission-pct P] [--slippage-bps B] [--set KEY=VALUE ...]\n"
            "   [--grid 'fast=5,10;slow=30:90:30'] [--random N --seed S] [--objective M]\n"
            "   [--min-trades N] [--wf-train L --wf-test L [--wf-step L] [--wf-windows N]\n"
            "   [--anchored] [--drop-partial]] [--group G] [--wait [--timeout S]]\n"
            "L: time steps (250) or a duration (90d, 4w, 12h, 30m).\n",
            msg);
    return 2;
}

/* "250" -> steps; "90d" -> ns. 0 on success. */
static int sub_len(const char *s, uint32_t *steps, int64_t *ns) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0) return -1;
    if (!*end) {
        if (v > UINT32_MAX) return -1;
        *steps = (uint32_t)v;
        return 0;
    }
    int64_t unit = !strcmp(end, "d") ? QB_NS_PER_DAY : !strcmp(end, "w") ? 7 * QB_NS_PER_DAY
                   : !strcmp(end, "h") ? QB_NS_PER_HOUR : !strcmp(end, "m") ? QB_NS_PER_MIN : 0;
    if (!unit) return -1;
    *ns = v * unit;
    return 0;
}

static char **sub_split(char *s, char sep, size_t *n) {
    size_t cap = 1;
    for (char *p = s; *p; p++) cap += *p == sep;
    char **v = calloc(cap, sizeof *v);
    *n = 0;
    if (!v) return NULL;
    char *p = s;
    for (;;) {
        char *q = strchr(p, sep);
        if (q) *q = 0;
        while (*p == ' ') p++;
        if (*p) v[(*n)++] = p;
        if (!q) break;
        p = q + 1;
    }
    return v;
}

static int sub_wait(qb_reader_t *rd, const char *run_id, int timeout_s) {
    int64_t deadline = qb_time_mono_ns() + (int64_t)timeout_s * QB_NS_PER_SEC;
    while (qb_time_mono_ns() < deadline) {
        qb_bus_msg_t m;
        qb_err_t e = qb_reader_next(rd, 500, &m, NULL);
        if (e == QB_ERR_TIMEOUT) continue;
        if (e) return 1;
        const Qb__V1__BacktestEvent *ev = (const Qb__V1__BacktestEvent *)m.msg;
        if (!ev || !ev->run_id || strcmp(ev->run_id, run_id)) continue;
        if (ev->kind == QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_PROGRESS) {
            fprintf(stderr, "\r%s: %5.1f%%", run_id, ev->progress * 100);
            if (ev->units_total)
                fprintf(stderr, "  (%llu/%llu units)", (unsigned long long)ev->units_done,
                        (unsigned long long)ev->units_total);
            fflush(stderr);
            continue;
        }
        if (ev->kind != QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FINISHED &&
            ev->kind != QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FAILED)
            continue;
        fputc('\n', stderr);
        char *js = qb_pbjson_encode(&ev->base);
        if (js) {
            printf("%s\n", js);
            free(js);
        }
        return ev->kind == QB__V1__BACKTEST_EVENT_KIND__BACKTEST_EVENT_KIND_FINISHED ? 0 : 1;
    }
    fprintf(stderr, "\nqbctl backtest submit: no final event for %s within %d s\n", run_id,
            timeout_s);
    return 1;
}

int qbctl_bt_submit(int argc, char **argv) {
    const char *run_id = NULL, *strategy = NULL, *params = "", *tf = NULL, *group = "";
    const char *objective = "", *from = NULL, *to = NULL, *fill = NULL;
    char *symbols = NULL, *grid = NULL;
    const char *sets[SUB_MAX];
    size_t nsets = 0;
    int wait = 0, anchored = 0, drop_partial = 0, timeout_s = 3600;
    int64_t cash = 0;
    double comm_pct = 0, slip_bps = 0;
    uint64_t random_n = 0, seed = 0, min_trades = 0, windows = 0;
    Qb__V1__BacktestRequest__WalkForward wf = QB__V1__BACKTEST_REQUEST__WALK_FORWARD__INIT;
    int have_wf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            sub_usage("help");
            return 0;
        }
        if (!strcmp(a, "--wait")) { wait = 1; continue; }
        if (!strcmp(a, "--anchored")) { anchored = 1; continue; }
        if (!strcmp(a, "--drop-partial")) { drop_partial = 1; continue; }
        if (!v) return sub_usage("missing value");
        i++;
        if (!strcmp(a, "--run-id")) run_id = v;
        else if (!strcmp(a, "--strategy")) strategy = v;
        else if (!strcmp(a, "--params")) params = v;
        else if (!strcmp(a, "--symbols")) symbols = strdup(v);
        else if (!strcmp(a, "--timeframe")) tf = v;
        else if (!strcmp(a, "--from")) from = v;
        else if (!strcmp(a, "--to")) to = v;
        else if (!strcmp(a, "--fill")) fill = v;
        else if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--objective")) objective = v;
        else if (!strcmp(a, "--grid")) grid = strdup(v);
        else if (!strcmp(a, "--set")) {
            if (nsets == SUB_MAX) return sub_usage("too many --set");
            sets[nsets++] = v;
        } else if (!strcmp(a, "--cash")) {
            qb_dec_t d;
            if (qb_dec_parse(v, strlen(v), &d) != QB_OK || d <= 0) return sub_usage("--cash: a positive amount");
            cash = d;
        } else if (!strcmp(a, "--commission-pct")) comm_pct = strtod(v, NULL);
        else if (!strcmp(a, "--slippage-bps")) slip_bps = strtod(v, NULL);
        else if (!strcmp(a, "--random")) random_n = (uint64_t)qbctl_int_arg(a, v);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)qbctl_int_arg(a, v);
        else if (!strcmp(a, "--min-trades")) min_trades = (uint64_t)qbctl_int_arg(a, v);
        else if (!strcmp(a, "--timeout")) timeout_s = (int)qbctl_int_arg(a, v);
        else if (!strcmp(a, "--wf-windows")) windows = (uint64_t)qbctl_int_arg(a, v);
        else if (!strcmp(a, "--wf-train") || !strcmp(a, "--wf-test") || !strcmp(a, "--wf-step")) {
            uint32_t st = 0;
            int64_t ns = 0;
            if (sub_len(v, &st, &ns)) return sub_usage("--wf-*: N steps or a duration (90d, 4w, 12h, 30m)");
            have_wf = 1;
            if (!strcmp(a, "--wf-train")) wf.train_steps = st, wf.train_duration = ns;
            else if (!strcmp(a, "--wf-test")) wf.test_steps = st, wf.test_duration = ns;
            else wf.step_steps = st, wf.step_duration = ns;
        } else {
            free(symbols);
            free(grid);
            return sub_usage("unknown option");
        }
    }
    int rc = 2;
    char uuid[QB_UUID_STRLEN], err[512];
    char **syms = NULL, **axes = NULL;
    size_t nsyms = 0, naxes = 0;
    Qb__V1__BacktestRequest__ParamAxis *ax = NULL, **axp = NULL;
    char ***vals = NULL;
    qb_producer_t *p = NULL;
    qb_reader_t *rd = NULL;
    if (!strategy || !symbols || !tf) {
        rc = sub_usage("--strategy, --symbols and --timeframe are required");
        goto out;
    }
    if (!run_id) {
        qb_uuid_v4(uuid);
        run_id = uuid;
    }
    syms = sub_split(symbols, ',', &nsyms);
    Qb__V1__BacktestRequest rq = QB__V1__BACKTEST_REQUEST__INIT;
    qb_proto_header_t h;
    qb_proto_header_init(&h, "qbctl", 0, NULL);
    rq.header = &h.pb;
    rq.run_id = (char *)run_id;
    rq.kind = QB__V1__BACKTEST_REQUEST_KIND__BACKTEST_REQUEST_KIND_WHOLE_RUN;
    rq.strategy_name = (char *)strategy;
    rq.strategy_params_json = (char *)params;
    rq.n_symbols = nsyms;
    rq.symbols = syms;
    rq.timeframe = (char *)tf;
    rq.initial_cash = cash;
    rq.group = (char *)group;
    rq.objective = (char *)objective;
    rq.min_trades = (uint32_t)min_trades;
    rq.random_samples = random_n;
    rq.random_seed = seed;
    rq.requested_by = getenv("USER") ? getenv("USER") : "";
    if (from || to) {
        qb_time_t t;
        if (from && qb_time_parse(from, strlen(from), &t) == QB_OK) rq.start_time = t;
        else if (from) { rc = sub_usage("--from: not a date/time"); goto out; }
        if (to && qb_time_parse(to, strlen(to), &t) == QB_OK) rq.end_time = t;
        else if (to) { rc = sub_usage("--to: not a date/time"); goto out; }
    }
    if (fill) {
        if (!strcmp(fill, "close")) rq.fill_model = QB__V1__FILL_MODEL__FILL_MODEL_BAR_CLOSE;
        else if (!strcmp(fill, "next_open")) rq.fill_model = QB__V1__FILL_MODEL__FILL_MODEL_NEXT_BAR_OPEN;
        else { rc = sub_usage("--fill: next_open or close"); goto out; }
    }
    Qb__V1__BacktestRequest__Commission cm = QB__V1__BACKTEST_REQUEST__COMMISSION__INIT;
    if (comm_pct > 0) {
        cm.rate = comm_pct / 100;
        rq.commission = &cm;
    }
    rq.slippage_rate = slip_bps / 10000;
    rq.n_settings = nsets;
    rq.settings = (char **)sets;
    if (have_wf) {
        wf.windows = (uint32_t)windows;
        wf.anchored = anchored;
        wf.drop_partial = drop_partial;
        rq.walk_forward = &wf;
    }
    if (grid) {
        axes = sub_split(grid, ';', &naxes);
        ax = calloc(naxes ? naxes : 1, sizeof *ax);
        axp = calloc(naxes ? naxes : 1, sizeof *axp);
        vals = calloc(naxes ? naxes : 1, sizeof *vals);
        if (!axes || !ax || !axp || !vals) { rc = 1; goto out; }
        for (size_t k = 0; k < naxes; k++) {
            char *eq = strchr(axes[k], '=');
            if (!eq || eq == axes[k]) { rc = sub_usage("--grid: NAME=VALUES;..."); goto out; }
            *eq = 0;
            qb__v1__backtest_request__param_axis__init(&ax[k]);
            ax[k].name = axes[k];
            vals[k] = sub_split(eq + 1, ',', &ax[k].n_text_values);
            ax[k].text_values = vals[k];
            axp[k] = &ax[k];
        }
        rq.n_grid = naxes;
        rq.grid = axp;
    }
    rc = 1;
    if (qb_topics_init(err, sizeof err) != QB_OK) {
        fprintf(stderr, "qbctl backtest submit: %s\n", err);
        goto out;
    }
    if (wait && !(rd = qb_reader_new("backtest.events", 0, 10000, err, sizeof err))) {
        fprintf(stderr, "qbctl backtest submit: backtest.events: %s\n", err);
        goto out;
    }
    if (!(p = qb_producer_new(err, sizeof err))) {
        fprintf(stderr, "qbctl backtest submit: %s\n", err);
        goto out;
    }
    if (qb_producer_send_msg(p, "backtest.requests", run_id, strlen(run_id), &rq.base, NULL) !=
            QB_OK ||
        qb_producer_flush(p, 10000) != QB_OK) {
        fprintf(stderr, "qbctl backtest submit: the request was not acknowledged\n");
        goto out;
    }
    fprintf(stderr, "submitted run %s\n", run_id);
    if (!wait) printf("%s\n", run_id);
    rc = wait ? sub_wait(rd, run_id, timeout_s) : 0;
out:
    qb_reader_destroy(rd);
    qb_producer_destroy(p);
    for (size_t k = 0; vals && k < naxes; k++) free(vals[k]);
    free(vals);
    free(axp);
    free(ax);
    free(axes);
    free(syms);
    free(symbols);
    free(grid);
    return rc;
}
