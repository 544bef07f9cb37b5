/* qb-data — the market-data service: runs the persistent ingest jobs of
 * libs/md/qb_md_sched.h and applies the INGEST_JOB_* control commands.
 *
 * Loop (one thread, one PostgreSQL handle, until SIGTERM/SIGINT):
 *   - poll the control consumer (group "qb-data", topic control):
 *     INGEST_JOB_* commands go to qb_md_sched_apply_command (a bad command
 *     is dead-lettered, a database outage retried); other kinds are not
 *     for qb-data and are acknowledged untouched;
 *   - every QB_DATA_TICK_MS, one qb_md_sched_tick: each due job is claimed
 *     and, per symbol, fetched from its source over qb_md_sched_range
 *     (since_last_bar reads the newest stored bar of the symbol and
 *     timeframe from md.bars), validated and stored by qb_md_ingest, every
 *     committed batch published to md.bars (+ Redis latest bar) and the
 *     producer flushed before the next batch.
 * Sources by job.source: "csv" (the file of options.path, "{symbol}"
 * replaced per symbol), "synthetic" (seeded generator), "alpaca",
 * "polygon", "yahoo", "coinbase" (keys and limits from their QB_* env
 * variables). A job with a fixed range (range_from/range_to) fetches it
 * on every run: a backfill or a one-off import.
 *
 * Crash safety: every batch is loaded with an md.publish_outbox row in its
 * transaction (qb_md_outbox.h), deleted once the batch is on the bus;
 * every tick first drains rows a dead loader left (re-published with the
 * same event ids). A run's lease (QB_DATA_LEASE_S) is renewed between
 * batches, where the control consumer is also polled, so a long import
 * neither loses its run to the lease nor its consumer to the group; a
 * killed replica's run expires after the lease and the job runs again.
 *
 * SIGTERM: the current symbol finishes, the rest of the run fails with
 * "interrupted by shutdown" (the job runs again at its next slot), the
 * consumer is closed (offsets committed), the producer flushed; exit 0.
 *
 * Readiness: /readyz needs the bus, PostgreSQL, Redis and, with
 * QB_DATA_MIGRATE, the migrations applied ("migrations" check). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/qb_bus.h"
#include "bus/qb_topics.h"
#include "cache/qb_cache.h"
#include "core/qb_config.h"
#include "core/qb_err.h"
#include "core/qb_log.h"
#include "core/qb_metrics.h"
#include "core/qb_time.h"
#include "md/qb_md_ingest.h"
#include "md/qb_md_outbox.h"
#include "md/qb_md_publish.h"
#include "md/qb_md_sched.h"
#include "md/qb_md_sources.h"
#include "md/qb_md_store.h"
#include "qb/v1/control.pb-c.h"
#include "store/qb_store.h"
#include "svc/qb_svc.h"

typedef struct qb_data_cfg_s {
    int64_t tick_ms;
    const char *owner;
    int migrate;
    int64_t lease_s;
    int64_t batch_size;
} qb_data_cfg_t;

static const qb_cfg_entry_t qb_data_cfg_entries[] = {
    {"data.tick_ms", "QB_DATA_TICK_MS", QB_CFG_INT, "1000", 10, 3600000,
     offsetof(qb_data_cfg_t, tick_ms), 0, "scheduler tick: how often due jobs are looked for"},
    {"data.owner", "QB_DATA_OWNER", QB_CFG_STRING, "", 0, 200,
     offsetof(qb_data_cfg_t, owner), 0,
     "owner recorded on the runs this replica claims; empty = hostname-pid"},
    {"data.migrate", "QB_DATA_MIGRATE", QB_CFG_BOOL, "true", 1, 0,
     offsetof(qb_data_cfg_t, migrate), 0, "apply the migrations of QB_SQL_DIR at start"},
    {"data.lease_s", "QB_DATA_LEASE_S", QB_CFG_INT, "60", 2, 86400,
     offsetof(qb_data_cfg_t, lease_s), 0,
     "lease of a claimed run, renewed every third of it while the run makes progress; a "
     "replica that dies leaves its run to expire after this long"},
    {"data.batch_size", "QB_DATA_BATCH_SIZE", QB_CFG_INT, "65536", 1, 10000000,
     offsetof(qb_data_cfg_t, batch_size), 0,
     "bars per store transaction (and per publish) of an ingest"},
    {NULL, NULL, QB_CFG_STRING, NULL, 0, 0, 0, 0, NULL},
};

typedef struct qb_data_s {
    qb_svc_t *svc;
    qb_store_t *store;
    qb_cache_t *cache; /* NULL without QB_REDIS_URL */
    qb_producer_t *producer;
    qb_consumer_t *consumer; /* control; polled between batches of a long run */
    const qb_data_cfg_t *cfg;
    /* the run in progress */
    int64_t run_id;
    qb_time_t heartbeat_at;
    /* per symbol being ingested */
    const char *source_name;
    int64_t published;
} qb_data_t;

static qb_counter_t *qb_data_runs_counter(const char *status) {
    char labels[64];
    snprintf(labels, sizeof(labels), "status=\"%s\"", status);
    return qb_metrics_counter("qb_data_runs_total", "ingest job runs finished by this process",
                              labels);
}

/* ---- sources ------------------------------------------------------------- */

/* ---- the run callback ------------------------------------------------------ */

/* Between batches of a run: keep the control consumer in its group, and
 * the run's lease alive. QB_ERR_STATE when the lease was lost (the run was
 * marked failed: another replica may run the job). */
static qb_err_t qb_data_progress(qb_data_t *d, char *errstr, size_t errstr_size) {
    if (d->consumer) qb_consumer_poll(d->consumer, 0);
    qb_producer_poll(d->producer, 0);
    if (!d->run_id) return QB_OK;
    int64_t lease_ns = d->cfg->lease_s * QB_NS_PER_SEC;
    qb_time_t now = qb_time_now();
    if (now - d->heartbeat_at < lease_ns / 3) return QB_OK;
    char msg[512];
    qb_err_t e = qb_md_sched_heartbeat(d->store, d->run_id, now, lease_ns, msg, sizeof msg);
    if (e == QB_ERR_STATE)
        return qb_err_set(errstr, errstr_size, e, "run %lld lost its lease: %s",
                          (long long)d->run_id, msg);
    if (e) QB_WARN("run %lld: heartbeat: %s", (long long)d->run_id, msg); /* retried next batch */
    else d->heartbeat_at = now;
    return QB_OK;
}

static qb_err_t qb_data_publish(void *opaque, const qb_bar_t *bars, const uint16_t *flags,
                                size_t n, char *errstr, size_t errstr_size) {
    qb_data_t *d = opaque;
    (void)flags;
    qb_err_t e = qb_md_publish_committed(d->producer, d->cache, bars, n, d->source_name,
                                         "qb-data", 30000, errstr, errstr_size);
    if (e) return e;
    d->published += (int64_t)n;
    return qb_data_progress(d, errstr, errstr_size);
}

/* An outbox batch left by a crashed loader (qb_md_outbox.h). */
static qb_err_t qb_data_republish(void *opaque, const qb_bar_t *bars, size_t n,
                                  const char *source, char *errstr, size_t errstr_size) {
    qb_data_t *d = opaque;
    return qb_md_publish_committed(d->producer, d->cache, bars, n, source, "qb-data", 30000,
                                   errstr, errstr_size);
}

static void qb_data_drain(qb_data_t *d, qb_counter_t *c_batches) {
    qb_md_outbox_stats_t st;
    char errstr[1024];
    qb_err_t e = qb_md_outbox_drain(d->store, qb_data_republish, d, 0, &st, errstr,
                                    sizeof errstr);
    if (st.batches) {
        qb_counter_add(c_batches, (uint64_t)st.batches);
        QB_INFO("outbox: re-published %lld bars of %lld stored batches a crashed loader "
                "had not published", (long long)st.bars, (long long)st.batches);
    }
    if (e) QB_WARN("outbox: %s (retried next tick)", errstr);
}

static void qb_data_reject(void *opaque, const char *where, const char *reason) {
    (void)opaque;
    QB_DEBUG("rejected %s: %s", where, reason);
}

static qb_err_t qb_data_run(void *opaque, qb_store_t *store, qb_md_run_t *run, char *errstr,
                            size_t errstr_size) {
    qb_data_t *d = opaque;
    const qb_md_job_t *job = run->job;
    int per_symbol = qb_md_source_per_symbol(job->source); /* a csv file per symbol */
    qb_md_source_t *src =
        per_symbol ? NULL
                   : qb_md_source_open_store(job->source, job->options, NULL, store, errstr,
                                             errstr_size);
    if (!per_symbol && !src) {
        QB_WARN("job %s run %lld: %s", job->name, (long long)run->run_id, errstr);
        return QB_ERR_INVALID;
    }
    d->run_id = run->run_id;
    d->heartbeat_at = qb_time_now();
    qb_err_t err = QB_OK;
    int failed = 0;
    char first_err[640] = ""; /* symbol + ": " + e1 */
    for (size_t i = 0; i < job->nsymbols; i++) {
        const char *sym = job->symbols[i];
        char e1[512] = "";
        if (!qb_svc_running(d->svc)) {
            err = qb_err_set(errstr, errstr_size, QB_ERR_STATE,
                             "interrupted by shutdown before symbol %s", sym);
            break;
        }
        qb_time_t last = 0, from = 0, to = 0;
        qb_err_t e = qb_md_store_last_bar_ts(store, sym, job->timeframe, &last, e1, sizeof(e1));
        if (e) {
            /* The database is gone: the whole run fails. */
            err = qb_err_set(errstr, errstr_size, e, "%s: last stored bar: %s", sym, e1);
            break;
        }
        qb_md_sched_range(job, run->scheduled_for, last, &from, &to);
        if (per_symbol) {
            qb_md_source_destroy(src);
            if (!(src = qb_md_source_open(job->source, job->options, sym, e1, sizeof e1))) {
                failed++;
                if (!first_err[0]) snprintf(first_err, sizeof(first_err), "%s: %s", sym, e1);
                if (!err) err = QB_ERR_INVALID;
                QB_WARN("job %s run %lld %s: %s", job->name, (long long)run->run_id, sym, e1);
                continue;
            }
        }
        qb_md_request_t req = {.symbol = sym, .timeframe = job->timeframe, .from = from,
                               .to = to};
        qb_md_ingest_opts_t io = {.job = job->name,
                                  .asset_class = strcmp(job->source, "coinbase") == 0
                                                     ? "crypto" : "equity",
                                  .batch_size = (size_t)d->cfg->batch_size,
                                  .reject_cb = qb_data_reject,
                                  .committed_cb = qb_data_publish,
                                  .outbox = 1,
                                  .opaque = d};
        qb_md_ingest_result_t res;
        memset(&res, 0, sizeof(res));
        d->source_name = qb_md_source_name(src);
        d->published = 0;
        e = qb_md_ingest(store, src, &req, &io, &res, e1, sizeof(e1));
        if (res.ingest_id > 0) {
            qb_err_t ae = qb_md_run_add_log(run, res.ingest_id, res.rows_loaded);
            if (ae && !e) {
                e = ae;
                snprintf(e1, sizeof(e1), "out of memory");
            }
        }
        QB_INFO("job %s run %lld %s %s: %s, %lld loaded, %lld duplicate, %lld rejected, "
                "%lld published, %lld ms%s%s",
                job->name, (long long)run->run_id, qb_md_trigger_name(run->trigger), sym,
                e ? "failed" : "ok", (long long)res.rows_loaded, (long long)res.rows_duplicate,
                (long long)res.rows_rejected, (long long)d->published,
                (long long)res.duration_ms, e ? ": " : "", e ? e1 : "");
        if (e) {
            failed++;
            if (!first_err[0]) snprintf(first_err, sizeof(first_err), "%s: %s", sym, e1);
            if (!err) err = e;
        }
    }
    qb_md_source_destroy(src);
    d->run_id = 0;
    if (err && failed && !errstr[0])
        qb_err_set(errstr, errstr_size, err, "%d of %zu symbols failed; first: %s", failed,
                   job->nsymbols, first_err);
    return err;
}

/* ---- control -------------------------------------------------------------- */

static qb_err_t qb_data_control(const qb_bus_msg_t *m, void *opaque, char *errstr,
                                size_t errstr_size) {
    qb_data_t *d = opaque;
    const Qb__V1__Command *cmd = (const Qb__V1__Command *)m->msg;
    switch (cmd->kind) {
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_UPSERT:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_PAUSE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RESUME:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_DELETE:
    case QB__V1__COMMAND_KIND__COMMAND_KIND_INGEST_JOB_RUN_NOW:
        break;
    default:
        return QB_OK; /* not for qb-data */
    }
    qb_err_t e = qb_md_sched_apply_command(d->store, cmd, qb_time_now(), errstr, errstr_size);
    const char *name = cmd->params_case == QB__V1__COMMAND__PARAMS_INGEST_JOB &&
                               cmd->ingest_job && cmd->ingest_job->name
                           ? cmd->ingest_job->name : "";
    if (e)
        QB_WARN("command %s (%d) for job \"%s\": %s%s", cmd->command_id ? cmd->command_id : "",
                (int)cmd->kind, name, errstr,
                qb_err_is_retriable(e) ? " (will retry)" : " (dead-lettered)");
    else
        QB_INFO("command %s (%d) for job \"%s\" applied", cmd->command_id ? cmd->command_id : "",
                (int)cmd->kind, name);
    return e;
}

/* ---- readiness ------------------------------------------------------------ */

int main(int argc, char **argv) {
    static qb_data_cfg_t cfg;
    static qb_data_t d;
    static const char about[] =
        "The market-data service: runs the scheduled ingest jobs (md.ingest_jobs) every\n"
        "QB_DATA_TICK_MS — fetch from the job's source, validate, store in md.bars,\n"
        "publish on md.bars (+ latest bar in Redis) — and applies the INGEST_JOB_*\n"
        "commands of the control topic. Admin port: /healthz, /readyz, /metrics.";
    char errstr[1024];
    int rc = 0;
    d.svc = qb_svc_new(&(qb_svc_def_t){.name = "qb-data", .about = about, .admin_port = 9101,
                                       .needs = QB_SVC_NEEDS_BUS | QB_SVC_NEEDS_PG |
                                                QB_SVC_NEEDS_REDIS,
                                       .table = qb_data_cfg_entries, .cfg = &cfg},
                       argc, argv, &rc);
    if (!d.svc) return rc;
    const qb_svc_common_t *com = qb_svc_common(d.svc);

    char owner[300];
    if (cfg.owner && *cfg.owner) {
        snprintf(owner, sizeof(owner), "%s", cfg.owner);
    } else {
        char host[256] = "localhost";
        if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(owner, sizeof(owner), "%s-%d", host, (int)getpid());
    }

    qb_consumer_t *consumer = NULL;
    d.cfg = &cfg;
    rc = 1;
    if (qb_topics_init(errstr, sizeof(errstr))) {
        QB_ERROR("%s", errstr);
        rc = 2;
        goto out;
    }
    d.store = qb_store_new(com->pg_dsn, errstr, sizeof(errstr));
    if (!d.store) {
        QB_ERROR("QB_PG_DSN: %s", errstr);
        rc = 2;
        goto out;
    }
    if (com->redis_url && *com->redis_url) {
        d.cache = qb_cache_new(com->redis_url, errstr, sizeof(errstr));
        if (!d.cache) {
            QB_ERROR("QB_REDIS_URL: %s", errstr);
            rc = 2;
            goto out;
        }
    }
    d.producer = qb_producer_new(errstr, sizeof(errstr));
    if (!d.producer) {
        QB_ERROR("producer: %s", errstr);
        rc = 2;
        goto out;
    }
    if (qb_svc_migrate(d.svc, d.store, cfg.migrate)) goto out;
    const char *topics[] = {"control"};
    consumer = qb_consumer_new("qb-data", topics, 1, qb_data_control, &d, errstr,
                               sizeof(errstr));
    if (!consumer) {
        QB_ERROR("control consumer: %s", errstr);
        rc = 2;
        goto out;
    }
    d.consumer = consumer;
    qb_counter_t *c_ok = qb_data_runs_counter("succeeded");
    qb_counter_t *c_failed = qb_data_runs_counter("failed");
    qb_counter_t *c_lost = qb_metrics_counter(
        "qb_data_claims_lost_total", "due runs another replica (or a running run) had", NULL);
    qb_counter_t *c_tick_err = qb_metrics_counter(
        "qb_data_tick_errors_total", "scheduler ticks stopped by a store error", NULL);
    qb_counter_t *c_outbox = qb_metrics_counter(
        "qb_data_outbox_republished_total",
        "stored batches a crashed loader had not published, re-published from md.publish_outbox",
        NULL);
    QB_INFO("qb-data ready: owner %s, tick %lld ms, admin port %d", owner,
            (long long)cfg.tick_ms, qb_svc_admin_port(d.svc));

    rc = 0;
    qb_time_t next_tick = 0;
    int tick_err_logged = 0;
    while (qb_svc_running(d.svc)) {
        qb_time_t now = qb_time_now();
        if (now >= next_tick) {
            qb_data_drain(&d, c_outbox);
            qb_md_tick_stats_t st;
            memset(&st, 0, sizeof(st));
            qb_err_t e = qb_md_sched_tick(d.store, now, owner, cfg.lease_s * QB_NS_PER_SEC,
                                          qb_data_run, &d, &st, errstr, sizeof(errstr));
            if (e) {
                qb_counter_inc(c_tick_err);
                if (!tick_err_logged++) QB_WARN("scheduler tick: %s", errstr);
            } else {
                if (tick_err_logged) QB_INFO("scheduler tick works again");
                tick_err_logged = 0;
            }
            qb_counter_add(c_ok, (uint64_t)st.succeeded);
            qb_counter_add(c_failed, (uint64_t)st.failed);
            qb_counter_add(c_lost, (uint64_t)st.lost);
            if (st.claimed)
                QB_INFO("tick: %d claimed, %d succeeded, %d failed, %d lost, %d waiting",
                        st.claimed, st.succeeded, st.failed, st.lost, st.waiting);
            next_tick = qb_time_now() + cfg.tick_ms * 1000000LL;
            continue;
        }
        int wait_ms = (int)((next_tick - now) / 1000000LL);
        if (wait_ms > 100) wait_ms = 100;
        if (wait_ms < 1) wait_ms = 1;
        if (qb_consumer_poll(consumer, wait_ms) == QB_ERR_KAFKA) {
            QB_ERROR("control consumer failed fatally");
            rc = 1;
            break;
        }
        qb_producer_poll(d.producer, 0);
    }
    QB_INFO("qb-data stopping");

out:
    if (consumer) {
        if (qb_consumer_close(consumer) != QB_OK) QB_WARN("control consumer: close timed out");
        qb_consumer_destroy(consumer);
    }
    if (d.producer && qb_producer_flush(d.producer, 5000) != QB_OK)
        QB_WARN("producer: not everything was delivered before exit");
    qb_svc_destroy(d.svc); /* stops the probe thread before &d goes */
    qb_producer_destroy(d.producer);
    qb_cache_destroy(d.cache);
    qb_store_destroy(d.store);
    return rc;
}
