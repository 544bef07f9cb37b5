/* it_md_sched.c — the scheduler (libs/md/qb_md_sched) against a real
 * PostgreSQL (QB_PG_DSN), each test on its own migrated database. Time is
 * simulated: every call gets `now` from the test.
 *
 * What is asserted:
 *   jobs persist with every field; bad specs are refused naming the field;
 *   duplicate names, unknown dependencies, self-dependencies and cycles are
 *   refused; changing the schedule recomputes next_run_at;
 *   the due list is in dependency order with waiting dependents; a tick
 *   runs a chain fetch -> resample -> features in one pass; a failed
 *   dependency skips its dependents' slot (recorded, named);
 *   two store handles claiming the same slot: exactly one wins; two forked
 *   processes racing over 30 slots: every slot claimed once;
 *   after a simulated downtime of many slots each job runs ONCE, for the
 *   latest slot (interval, minute cron in New York, weekday cron over a
 *   weekend);
 *   pause / resume (no catch-up of the paused time), RUN_NOW (also paused);
 *   an abandoned run's lease expires, the job moves on, a late finish is
 *   refused; heartbeat extends the lease;
 *   Commands decoded from JSON (qb_pbjson_decode) upsert, pause, resume,
 *   run now and delete jobs, and bad ones fail with clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "md/qb_md_sched.h"
#include "proto/qb_pbjson.h"
#include "qb_test.h"
#include "qb_test_md.h"
#include "qb_test_assert.h"
#include "store/qb_migrate.h"
#include "store/qb_store.h"

static char E[2048];

typedef qb_test_md_db_t fx_t; /* a fresh migrated database */

static qb_time_t T(const char *iso) {
    qb_time_t t = 0;
    if (qb_time_parse(iso, strlen(iso), &t) != QB_OK) fail_msg("bad time %s", iso);
    return t;
}

static const char *fmt(qb_time_t t) {
    static char b[4][QB_TIME_STRLEN];
    static int k;
    k = (k + 1) % 4;
    qb_time_format(t, b[k], sizeof b[k]);
    return b[k];
}

#define ASSERT_TIME(got, want)                                                               \
    do {                                                                                     \
        qb_time_t g_ = (got), w_ = T(want);                                                  \
        if (g_ != w_) fail_msg("%s = %s, want %s", #got, fmt(g_), want);                    \
    } while (0)

static const char *scalar(qb_store_t *s, const char *sql) {
    static char v[4096];
    PGresult *r = NULL;
    OK(qb_store_query(s, sql, 0, NULL, &r, E, sizeof E));
    assert_int_equal(PQntuples(r), 1);
    snprintf(v, sizeof v, "%s", PQgetisnull(r, 0, 0) ? "<NULL>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}
#define ASSERT_SCALAR(s, sql, want) assert_string_equal(scalar((s), (sql)), (want))

static const char *SYMS[] = {"AAPL", "MSFT"};

/* A spec with the usual fields; schedule given by the caller. */
static qb_md_job_spec_t spec(const char *name, const char *cron, const char *tz, int64_t iv,
                             const char *const *deps, size_t ndeps) {
    qb_md_job_spec_t sp;
    memset(&sp, 0, sizeof sp);
    sp.name = name;
    sp.source = "synthetic";
    sp.symbols = SYMS;
    sp.nsymbols = 2;
    sp.timeframe = "1m";
    sp.cron = cron;
    sp.time_zone = tz;
    sp.interval_seconds = iv;
    sp.lookback = "since_last_bar:7d";
    sp.depends_on = deps;
    sp.ndepends = ndeps;
    return sp;
}

static void add(qb_store_t *s, qb_md_job_spec_t sp, const char *now) {
    OK(qb_md_job_add(s, &sp, T(now), NULL, E, sizeof E));
}

/* Test callback: succeeds unless the job's name is in fail_names. */
typedef struct calls_s {
    char log[64][96];
    int n;
    const char *fail_name;
} calls_t;

static qb_err_t run_cb(void *opaque, qb_store_t *store, qb_md_run_t *run, char *errstr,
                       size_t errstr_size) {
    calls_t *c = opaque;
    if (c->n < 64)
        snprintf(c->log[c->n], sizeof c->log[0], "%s@%s/%s", run->job->name,
                 fmt(run->scheduled_for), qb_md_trigger_name(run->trigger));
    c->n++;
    if (c->fail_name && strcmp(c->fail_name, run->job->name) == 0)
        return qb_err_set(errstr, errstr_size, QB_ERR_UNAVAILABLE, "vendor down (test)");
    qb_md_run_add_log(run, 1000 + c->n, 10);
    qb_md_run_add_log(run, 2000 + c->n, 5);
    return QB_OK;
}

/* ---- jobs ---------------------------------------------------------------- */

static void test_jobs_persisted(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    int64_t id = 0;
    qb_md_job_spec_t a = spec("us-daily", "0 18 * * 1-5", "America/New_York", 0, NULL, 0);
    a.timeframe = "1d";
    a.lookback = "30d";
    OK(qb_md_job_add(s, &a, T("2024-03-08T12:00:00Z"), &id, E, sizeof E));
    assert_true(id > 0);
    static const char *const dep[] = {"us-daily"};
    add(s, spec("hourly", NULL, NULL, 3600, dep, 1), "2024-03-08T12:00:00Z");

    qb_md_job_t *j = NULL;
    OK(qb_md_job_get(s, "us-daily", &j, E, sizeof E));
    assert_int_equal(j->id, id);
    assert_string_equal(j->source, "synthetic");
    assert_int_equal(j->nsymbols, 2);
    assert_string_equal(j->symbols[0], "AAPL");
    assert_string_equal(j->symbols[1], "MSFT");
    assert_string_equal(j->timeframe, "1d");
    assert_string_equal(j->cron, "0 18 * * 1-5");
    assert_string_equal(j->time_zone, "America/New_York");
    assert_int_equal(j->interval_seconds, 0);
    assert_int_equal(j->lookback_kind, QB_MD_LOOKBACK_DURATION);
    assert_int_equal(j->lookback_seconds, 30 * 86400);
    assert_int_equal(j->enabled, 1);
    assert_int_equal(j->last_run_at, 0);
    ASSERT_TIME(j->next_run_at, "2024-03-08T23:00:00Z"); /* Fri 18:00 EST */
    assert_int_equal(j->ndepends, 0);
    qb_md_job_free(j);

    OK(qb_md_job_get(s, "hourly", &j, E, sizeof E));
    assert_null(j->cron);
    assert_null(j->time_zone);
    assert_int_equal(j->interval_seconds, 3600);
    assert_int_equal(j->lookback_kind, QB_MD_LOOKBACK_SINCE_LAST_BAR);
    assert_int_equal(j->lookback_seconds, 7 * 86400);
    ASSERT_TIME(j->next_run_at, "2024-03-08T13:00:00Z");
    assert_int_equal(j->ndepends, 1);
    assert_string_equal(j->depends_on[0], "us-daily");
    /* Range helper: since_last_bar with a 7 day fallback. */
    qb_time_t from, to;
    qb_md_sched_range(j, T("2024-03-08T13:00:00Z"), 0, &from, &to);
    ASSERT_TIME(from, "2024-03-01T13:00:00Z");
    ASSERT_TIME(to, "2024-03-08T13:00:00Z");
    qb_md_sched_range(j, T("2024-03-08T13:00:00Z"), T("2024-03-08T12:59:00Z"), &from, &to);
    ASSERT_TIME(from, "2024-03-08T12:59:00Z");
    qb_md_job_free(j);

    /* Refusals. */
    ERR(QB_ERR_CONFLICT, qb_md_job_add(s, &a, T("2024-03-08T12:00:00Z"), NULL, E, sizeof E));
    assert_non_null(strstr(E, "already exists"));
    qb_md_job_spec_t b = spec("bad", "0 25 * * *", "UTC", 0, NULL, 0);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "cron: hour: 25 out of range 0-23"));
    b = spec("bad", "0 1 * * *", "UTC", 60, NULL, 0);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "not both"));
    b = spec("bad", NULL, NULL, 0, NULL, 0);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "schedule: cron or interval_seconds required"));
    b = spec("bad", "0 1 * * *", "Mars/Olympus", 0, NULL, 0);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "time_zone:"));
    b = spec("bad", "@daily", NULL, 0, NULL, 0);
    b.lookback = "7 days";
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "lookback: bad value '7 days'"));
    b = spec("bad", "@daily", NULL, 0, NULL, 0);
    b.timeframe = "2d";
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "timeframe"));
    b = spec("bad name", "@daily", NULL, 0, NULL, 0);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "name:"));
    static const char *const nodep[] = {"nope"};
    b = spec("bad", "@daily", NULL, 0, nodep, 1);
    ERR(QB_ERR_NOT_FOUND, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "depends_on: no ingest job named 'nope'"));
    static const char *const selfdep[] = {"bad"};
    b = spec("bad", "@daily", NULL, 0, selfdep, 1);
    ERR(QB_ERR_INVALID, qb_md_job_add(s, &b, 0, NULL, E, sizeof E));
    assert_non_null(strstr(E, "cannot depend on itself"));
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_jobs", "2");

    /* Cycle: us-daily -> hourly -> us-daily. */
    static const char *const dep_h[] = {"hourly"};
    a.depends_on = dep_h;
    a.ndepends = 1;
    ERR(QB_ERR_CONFLICT, qb_md_job_update(s, &a, T("2024-03-08T12:00:00Z"), E, sizeof E));
    assert_non_null(strstr(E, "cycle"));
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_job_deps", "1");
    /* Delete refused while hourly depends on us-daily. */
    ERR(QB_ERR_CONFLICT, qb_md_job_delete(s, "us-daily", E, sizeof E));
    assert_non_null(strstr(E, "dependency of hourly"));

    /* Update: same schedule keeps next_run_at, a new one recomputes it. */
    a.depends_on = NULL;
    a.ndepends = 0;
    static const char *const one[] = {"SPY"};
    a.symbols = one;
    a.nsymbols = 1;
    OK(qb_md_job_update(s, &a, T("2024-03-08T20:00:00Z"), E, sizeof E));
    OK(qb_md_job_get(s, "us-daily", &j, E, sizeof E));
    assert_int_equal(j->nsymbols, 1);
    assert_string_equal(j->symbols[0], "SPY");
    ASSERT_TIME(j->next_run_at, "2024-03-08T23:00:00Z");
    qb_md_job_free(j);
    a.cron = "30 9 * * 1-5";
    OK(qb_md_job_update(s, &a, T("2024-03-08T20:00:00Z"), E, sizeof E));
    OK(qb_md_job_get(s, "us-daily", &j, E, sizeof E));
    ASSERT_TIME(j->next_run_at, "2024-03-11T13:30:00Z"); /* Mon 09:30 EDT */
    qb_md_job_free(j);
    qb_md_job_spec_t ghost = spec("ghost", "@daily", NULL, 0, NULL, 0);
    ERR(QB_ERR_NOT_FOUND, qb_md_job_update(s, &ghost, 0, E, sizeof E));

    OK(qb_md_job_delete(s, "hourly", E, sizeof E));
    OK(qb_md_job_delete(s, "us-daily", E, sizeof E));
    ERR(QB_ERR_NOT_FOUND, qb_md_job_delete(s, "us-daily", E, sizeof E));
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_jobs", "0");
}

/* ---- due, dependencies, tick -------------------------------------------- */

static void test_due_dependency_order(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    const char *t0 = "2024-01-01T00:30:00Z";
    static const char *const on_fetch[] = {"fetch"};
    static const char *const on_resample[] = {"resample"};
    /* By name the order would be features, fetch, other, resample. */
    add(s, spec("other", NULL, NULL, 3600, NULL, 0), t0);
    add(s, spec("fetch", NULL, NULL, 3600, NULL, 0), t0);
    add(s, spec("resample", NULL, NULL, 3600, on_fetch, 1), t0);
    add(s, spec("features", NULL, NULL, 3600, on_resample, 1), t0);

    qb_md_due_list_t d;
    OK(qb_md_sched_due(s, T("2024-01-01T00:59:00Z"), &d, E, sizeof E));
    assert_int_equal(d.n, 0);
    qb_md_due_list_free(&d);

    qb_time_t now = T("2024-01-01T01:00:30Z");
    OK(qb_md_sched_due(s, now, &d, E, sizeof E));
    assert_int_equal(d.n, 4);
    assert_string_equal(d.items[0].job->name, "fetch");
    assert_string_equal(d.items[1].job->name, "other");
    assert_string_equal(d.items[2].job->name, "resample");
    assert_string_equal(d.items[3].job->name, "features");
    assert_false(d.items[0].waiting);
    assert_false(d.items[1].waiting);
    assert_true(d.items[2].waiting);
    assert_string_equal(d.items[2].waiting_on, "fetch");
    assert_true(d.items[3].waiting);
    assert_string_equal(d.items[3].waiting_on, "resample");
    for (size_t i = 0; i < 4; i++) {
        ASSERT_TIME(d.items[i].scheduled_for, "2024-01-01T01:00:00Z");
        assert_int_equal(d.items[i].trigger, QB_MD_TRIGGER_SCHEDULE);
    }
    int64_t run = 0;
    ERR(QB_ERR_STATE, qb_md_sched_claim(s, &d.items[2], "t", now, 0, &run, E, sizeof E));
    /* Claim fetch: running -> resample still waits. */
    OK(qb_md_sched_claim(s, &d.items[0], "t", now, 0, &run, E, sizeof E));
    qb_md_due_list_free(&d);
    OK(qb_md_sched_due(s, now, &d, E, sizeof E));
    assert_int_equal(d.n, 3); /* fetch is no longer due */
    assert_string_equal(d.items[1].job->name, "resample");
    assert_true(d.items[1].waiting);
    qb_md_due_list_free(&d);
    static const int64_t logs[] = {7, 8};
    OK(qb_md_sched_finish(s, run, QB_MD_RUN_SUCCEEDED, 42, NULL, logs, 2, now, E, sizeof E));
    ERR(QB_ERR_STATE, qb_md_sched_finish(s, run, QB_MD_RUN_FAILED, 0, "x", NULL, 0, now, E,
                                         sizeof E));
    ASSERT_SCALAR(s,
                  "SELECT status || ' ' || rows || ' ' || ingest_log_ids::text || ' ' || trigger "
                  "FROM md.ingest_job_runs",
                  "succeeded 42 {7,8} schedule");
    OK(qb_md_sched_due(s, now, &d, E, sizeof E));
    assert_int_equal(d.n, 3);
    assert_string_equal(d.items[1].job->name, "resample");
    assert_false(d.items[1].waiting);
    assert_string_equal(d.items[2].job->name, "features");
    assert_true(d.items[2].waiting);
    qb_md_due_list_free(&d);

    /* A tick finishes the slot: other, resample, then features. */
    calls_t c;
    memset(&c, 0, sizeof c);
    qb_md_tick_stats_t st;
    OK(qb_md_sched_tick(s, now, "replica-a", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 3);
    assert_string_equal(c.log[0], "other@2024-01-01T01:00:00Z/schedule");
    assert_string_equal(c.log[1], "resample@2024-01-01T01:00:00Z/schedule");
    assert_string_equal(c.log[2], "features@2024-01-01T01:00:00Z/schedule");
    assert_int_equal(st.succeeded, 3);
    assert_int_equal(st.waiting, 0);
    ASSERT_SCALAR(s, "SELECT rows || ' ' || array_length(ingest_log_ids, 1) FROM md.ingest_job_runs r "
                     "JOIN md.ingest_jobs j ON j.id = r.job_id WHERE j.name = 'features'",
                  "15 2");

    /* Next slot: the whole chain in ONE tick. */
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-01-01T02:00:05Z"), "replica-a", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 4);
    assert_string_equal(c.log[0], "fetch@2024-01-01T02:00:00Z/schedule");
    assert_string_equal(c.log[1], "other@2024-01-01T02:00:00Z/schedule");
    assert_string_equal(c.log[2], "resample@2024-01-01T02:00:00Z/schedule");
    assert_string_equal(c.log[3], "features@2024-01-01T02:00:00Z/schedule");

    /* fetch fails at 03:00: resample and features are skipped for the slot,
     * other runs; at 04:00 everything runs again. */
    memset(&c, 0, sizeof c);
    c.fail_name = "fetch";
    OK(qb_md_sched_tick(s, T("2024-01-01T03:00:05Z"), "replica-a", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 2);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.succeeded, 1);
    ASSERT_SCALAR(s,
                  "SELECT string_agg(j.name || ':' || r.status || ':' || coalesce(r.error, ''), "
                  "' | ' ORDER BY j.name) FROM md.ingest_job_runs r JOIN md.ingest_jobs j ON "
                  "j.id = r.job_id WHERE r.scheduled_for = '2024-01-01T03:00:00Z'",
                  "features:skipped:dependency 'resample' skipped for slot 2024-01-01T03:00:00Z | "
                  "fetch:failed:vendor down (test) | other:succeeded: | "
                  "resample:skipped:dependency 'fetch' failed for slot 2024-01-01T03:00:00Z");
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-01-01T04:00:05Z"), "replica-a", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 4);
    assert_int_equal(st.succeeded, 4);

    /* A paused dependency holds its dependents (waiting, not skipped). */
    OK(qb_md_job_pause(s, "fetch", E, sizeof E));
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-01-01T05:00:05Z"), "replica-a", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 1); /* other */
    assert_int_equal(st.waiting, 2);
}

/* ---- claiming across replicas -------------------------------------------- */

static void test_two_handles_one_winner(void **state) {
    fx_t *f = *state;
    qb_store_t *s1 = f->s;
    qb_store_t *s2 = qb_store_new(f->dsn, E, sizeof E);
    assert_non_null(s2);
    add(s1, spec("job", "*/5 * * * *", "America/New_York", 0, NULL, 0), "2024-06-03T13:58:00Z");
    qb_time_t now = T("2024-06-03T14:00:10Z");
    for (int round = 0; round < 5; round++) {
        qb_md_due_list_t d1, d2;
        OK(qb_md_sched_due(s1, now, &d1, E, sizeof E));
        OK(qb_md_sched_due(s2, now, &d2, E, sizeof E));
        assert_int_equal(d1.n, 1);
        assert_int_equal(d2.n, 1);
        assert_int_equal(d1.items[0].scheduled_for, d2.items[0].scheduled_for);
        int64_t r1 = 0, r2 = 0;
        /* Alternate who asks first. */
        qb_err_t e1, e2;
        if (round % 2 == 0) {
            e1 = qb_md_sched_claim(s1, &d1.items[0], "a", now, 0, &r1, E, sizeof E);
            e2 = qb_md_sched_claim(s2, &d2.items[0], "b", now, 0, &r2, E, sizeof E);
        } else {
            e2 = qb_md_sched_claim(s2, &d2.items[0], "b", now, 0, &r2, E, sizeof E);
            e1 = qb_md_sched_claim(s1, &d1.items[0], "a", now, 0, &r1, E, sizeof E);
        }
        assert_true((e1 == QB_OK) != (e2 == QB_OK));
        assert_int_equal(e1 == QB_OK ? e2 : e1, QB_ERR_CONFLICT);
        OK(qb_md_sched_finish(s1, e1 == QB_OK ? r1 : r2, QB_MD_RUN_SUCCEEDED, 1, NULL, NULL, 0,
                              now, E, sizeof E));
        qb_md_due_list_free(&d1);
        qb_md_due_list_free(&d2);
        now += 5 * QB_NS_PER_MIN;
    }
    ASSERT_SCALAR(s1,
                  "SELECT count(*) || ' ' || count(DISTINCT scheduled_for) || ' ' || "
                  "string_agg(DISTINCT claimed_by, ',' ORDER BY claimed_by) FROM md.ingest_job_runs",
                  "5 5 a,b");
    qb_store_destroy(s2);
}

/* Child of test_forked_replicas: 30 simulated minutes as fast as it can,
 * claiming whatever is due; writes the slots it won to fd, one per line. */
static int replica_main(const char *dsn, int go_fd, int out_fd, const char *name) {
    char e[512];
    qb_store_t *s = qb_store_new(dsn, e, sizeof e);
    if (!s) return 2;
    char go;
    if (read(go_fd, &go, 1) != 1) return 3;
    qb_time_t base = T("2024-01-02T00:00:00Z");
    for (int k = 0; k < 30; k++) {
        for (int rep = 0; rep < 3; rep++) {
            qb_time_t now = base + k * QB_NS_PER_MIN + rep * QB_NS_PER_SEC;
            qb_md_due_list_t d;
            if (qb_md_sched_due(s, now, &d, e, sizeof e) != QB_OK) return 4;
            for (size_t i = 0; i < d.n; i++) {
                int64_t run = 0;
                qb_err_t ce = qb_md_sched_claim(s, &d.items[i], name, now, 0, &run, e, sizeof e);
                if (ce == QB_ERR_CONFLICT) continue;
                if (ce != QB_OK) return 5;
                char line[64];
                int n = snprintf(line, sizeof line, "%s\n", fmt(d.items[i].scheduled_for));
                if (write(out_fd, line, (size_t)n) != n) return 6;
                if (qb_md_sched_finish(s, run, QB_MD_RUN_SUCCEEDED, 0, NULL, NULL, 0, now, e,
                                       sizeof e) != QB_OK)
                    return 7;
            }
            qb_md_due_list_free(&d);
        }
    }
    qb_store_destroy(s);
    return 0;
}

static void test_forked_replicas(void **state) {
    fx_t *f = *state;
    add(f->s, spec("race", "* * * * *", "UTC", 0, NULL, 0), "2024-01-01T23:59:30Z");
    int go[2], out[2][2];
    assert_int_equal(pipe(go), 0);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(out[i]), 0);
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            close(go[1]);
            close(out[i][0]);
            _exit(replica_main(f->dsn, go[0], out[i][1], i ? "b" : "a"));
        }
        close(out[i][1]);
    }
    close(go[0]);
    assert_int_equal(write(go[1], "gg", 2), 2);
    close(go[1]);
    char buf[2][8192];
    size_t len[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        ssize_t n;
        while ((n = read(out[i][0], buf[i] + len[i], sizeof buf[i] - 1 - len[i])) > 0)
            len[i] += (size_t)n;
        buf[i][len[i]] = '\0';
        close(out[i][0]);
        int st = 0;
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("replica %d exited with status %d", i, st);
    }
    /* No minute claimed by both, none twice; the database agrees. A slot
     * may legitimately be claimed by neither (a replica that found the
     * previous run still running moves on, and the next claim catches up
     * to the latest slot), but most are claimed. */
    int claimed = 0;
    for (int k = 0; k < 30; k++) {
        char slot[40];
        snprintf(slot, sizeof slot, "2024-01-02T00:%02d:00Z\n", k);
        const char *a = strstr(buf[0], slot), *b = strstr(buf[1], slot);
        int seen = (a != NULL) + (b != NULL);
        if (seen > 1 || (a && strstr(a + 1, slot)) || (b && strstr(b + 1, slot)))
            fail_msg("slot %s claimed more than once (a: %s b: %s)", slot, buf[0], buf[1]);
        claimed += seen;
    }
    assert_true(claimed >= 20);
    char want[32];
    snprintf(want, sizeof want, "%d %d", claimed, claimed);
    ASSERT_SCALAR(f->s, "SELECT count(*) || ' ' || count(DISTINCT scheduled_for) FROM "
                        "md.ingest_job_runs WHERE status = 'succeeded'",
                  want);
    fprintf(stderr, "forked replicas: %d slots claimed, a won %d, b won %d\n", claimed,
            (int)(strlen(buf[0]) / 21), (int)(strlen(buf[1]) / 21));
}

static void test_catch_up_once(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    add(s, spec("hourly", NULL, NULL, 3600, NULL, 0), "2024-01-01T00:30:00Z");
    add(s, spec("every5", "*/5 * * * *", "America/New_York", 0, NULL, 0), "2024-01-01T00:30:00Z");
    add(s, spec("weekday", "0 18 * * 1-5", "America/New_York", 0, NULL, 0),
        "2024-01-01T00:30:00Z");
    /* Down from 2024-01-01 to Monday 2024-02-05 10:17 EST (15:17Z): ~830
     * hourly slots, ~10000 five-minute slots, 25 weekday slots missed. */
    calls_t c;
    memset(&c, 0, sizeof c);
    qb_md_tick_stats_t st;
    OK(qb_md_sched_tick(s, T("2024-02-05T15:17:00Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 3);
    assert_string_equal(c.log[0], "every5@2024-02-05T15:15:00Z/catch_up");
    assert_string_equal(c.log[1], "hourly@2024-02-05T15:00:00Z/catch_up");
    /* The latest weekday slot before Monday morning: Friday 18:00 EST. */
    assert_string_equal(c.log[2], "weekday@2024-02-02T23:00:00Z/catch_up");
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_job_runs", "3");
    qb_md_job_t *j = NULL;
    OK(qb_md_job_get(s, "hourly", &j, E, sizeof E));
    ASSERT_TIME(j->next_run_at, "2024-02-05T16:00:00Z");
    /* The tick's clock advances by the time each callback took. */
    assert_true(j->last_run_at >= T("2024-02-05T15:17:00Z") &&
                j->last_run_at < T("2024-02-05T15:17:01Z"));
    qb_md_job_free(j);
    OK(qb_md_job_get(s, "weekday", &j, E, sizeof E));
    ASSERT_TIME(j->next_run_at, "2024-02-05T23:00:00Z");
    qb_md_job_free(j);
    /* A second tick at the same instant does nothing. */
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-02-05T15:17:30Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 0);
    /* Back on schedule. */
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-02-05T15:20:01Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.log[0], "every5@2024-02-05T15:20:00Z/schedule");
}

/* ---- pause, resume, run now, leases --------------------------------------- */

static void test_pause_resume_run_now(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    add(s, spec("j", NULL, NULL, 3600, NULL, 0), "2024-01-01T00:30:00Z");
    OK(qb_md_job_pause(s, "j", E, sizeof E));
    OK(qb_md_job_pause(s, "j", E, sizeof E)); /* idempotent */
    ERR(QB_ERR_NOT_FOUND, qb_md_job_pause(s, "nope", E, sizeof E));
    qb_md_due_list_t d;
    OK(qb_md_sched_due(s, T("2024-01-01T05:00:00Z"), &d, E, sizeof E));
    assert_int_equal(d.n, 0);
    qb_md_due_list_free(&d);

    /* RUN_NOW runs a paused job once, as a manual run. */
    OK(qb_md_job_run_now(s, "j", T("2024-01-01T05:10:00.123456Z"), E, sizeof E));
    calls_t c;
    memset(&c, 0, sizeof c);
    qb_md_tick_stats_t st;
    OK(qb_md_sched_tick(s, T("2024-01-01T05:10:01Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.log[0], "j@2024-01-01T05:10:00.123456Z/manual");
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-01-01T05:10:02Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 0);

    /* Resume at 07:30: the next slot is 08:00; 01:00..07:00 are not run. */
    OK(qb_md_job_resume(s, "j", T("2024-01-01T07:30:00Z"), E, sizeof E));
    qb_md_job_t *j = NULL;
    OK(qb_md_job_get(s, "j", &j, E, sizeof E));
    assert_int_equal(j->enabled, 1);
    ASSERT_TIME(j->next_run_at, "2024-01-01T08:00:00Z");
    qb_md_job_free(j);
    OK(qb_md_job_resume(s, "j", T("2024-01-01T09:30:00Z"), E, sizeof E)); /* no-op */
    OK(qb_md_job_get(s, "j", &j, E, sizeof E));
    ASSERT_TIME(j->next_run_at, "2024-01-01T08:00:00Z");
    qb_md_job_free(j);
    OK(qb_md_sched_due(s, T("2024-01-01T07:59:59Z"), &d, E, sizeof E));
    assert_int_equal(d.n, 0);
    qb_md_due_list_free(&d);
    memset(&c, 0, sizeof c);
    OK(qb_md_sched_tick(s, T("2024-01-01T08:00:00Z"), "r", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.log[0], "j@2024-01-01T08:00:00Z/schedule");
    ASSERT_SCALAR(s, "SELECT string_agg(trigger, ',' ORDER BY scheduled_for) FROM md.ingest_job_runs",
                  "manual,schedule");
}

static void test_lease_expiry(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    add(s, spec("j", NULL, NULL, 600, NULL, 0), "2024-01-01T00:05:00Z");
    qb_time_t now = T("2024-01-01T00:10:00Z");
    qb_md_due_list_t d;
    OK(qb_md_sched_due(s, now, &d, E, sizeof E));
    assert_int_equal(d.n, 1);
    int64_t run = 0;
    OK(qb_md_sched_claim(s, &d.items[0], "dead-replica", now, 15 * QB_NS_PER_MIN, &run, E,
                         sizeof E));
    qb_md_due_list_free(&d);
    /* 00:20: the next slot is due but the first run still holds the job. */
    OK(qb_md_sched_due(s, T("2024-01-01T00:20:00Z"), &d, E, sizeof E));
    assert_int_equal(d.n, 1);
    int64_t run2 = 0;
    ERR(QB_ERR_CONFLICT, qb_md_sched_claim(s, &d.items[0], "other", T("2024-01-01T00:20:00Z"), 0,
                                           &run2, E, sizeof E));
    qb_md_due_list_free(&d);
    OK(qb_md_sched_heartbeat(s, run, T("2024-01-01T00:20:00Z"), 10 * QB_NS_PER_MIN, E, sizeof E));
    ASSERT_SCALAR(s, "SELECT status FROM md.ingest_job_runs", "running");
    /* Lease (00:30) passes: marked failed, the job runs its latest slot. */
    calls_t c;
    memset(&c, 0, sizeof c);
    qb_md_tick_stats_t st;
    OK(qb_md_sched_tick(s, T("2024-01-01T00:31:00Z"), "other", 0, run_cb, &c, &st, E, sizeof E));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.log[0], "j@2024-01-01T00:30:00Z/catch_up");
    ERR(QB_ERR_STATE, qb_md_sched_finish(s, run, QB_MD_RUN_SUCCEEDED, 1, NULL, NULL, 0,
                                         T("2024-01-01T00:32:00Z"), E, sizeof E));
    assert_non_null(strstr(E, "lease expired"));
    ERR(QB_ERR_STATE, qb_md_sched_heartbeat(s, run, T("2024-01-01T00:32:00Z"), 0, E, sizeof E));
    ASSERT_SCALAR(s,
                  "SELECT string_agg(status || '/' || claimed_by, ',' ORDER BY scheduled_for) "
                  "FROM md.ingest_job_runs",
                  "failed/dead-replica,succeeded/other");
}

/* ---- commands from the control topic --------------------------------------- */

static qb_err_t apply_json(qb_store_t *s, const char *json, qb_time_t now) {
    ProtobufCMessage *m = NULL;
    char e[512];
    if (qb_pbjson_decode(&qb__v1__command__descriptor, json, strlen(json), &m, e, sizeof e) !=
        QB_OK)
        fail_msg("decode %s: %s", json, e);
    qb_err_t err = qb_md_sched_apply_command(s, (const Qb__V1__Command *)m, now, E, sizeof E);
    protobuf_c_message_free_unpacked(m, NULL);
    return err;
}

static void test_commands_from_json(void **state) {
    fx_t *f = *state;
    qb_store_t *s = f->s;
    qb_time_t now = T("2024-03-08T12:00:00Z");
    OK(apply_json(s,
                  "{\"command_id\":\"c1\",\"target\":\"qb-data\","
                  "\"kind\":\"COMMAND_KIND_INGEST_JOB_UPSERT\",\"ingest_job\":{"
                  "\"name\":\"eod\",\"source\":\"alpaca\",\"symbols\":[\"AAPL\",\"SPY\"],"
                  "\"timeframe\":\"1d\",\"cron\":\"0 18 * * MON-FRI\","
                  "\"time_zone\":\"America/New_York\",\"lookback\":\"5d\"}}",
                  now));
    OK(apply_json(s,
                  "{\"command_id\":\"c2\",\"target\":\"*\","
                  "\"kind\":\"COMMAND_KIND_INGEST_JOB_UPSERT\",\"ingestJob\":{"
                  "\"name\":\"resample\",\"source\":\"synthetic\",\"symbols\":[\"SPY\"],"
                  "\"timeframe\":\"1d\",\"cron\":\"0 18 * * 1-5\","
                  "\"time_zone\":\"America/New_York\",\"dependsOn\":[\"eod\"]}}",
                  now));
    qb_md_job_t *j = NULL;
    OK(qb_md_job_get(s, "eod", &j, E, sizeof E));
    assert_string_equal(j->source, "alpaca");
    assert_int_equal(j->nsymbols, 2);
    assert_int_equal(j->lookback_seconds, 5 * 86400);
    ASSERT_TIME(j->next_run_at, "2024-03-08T23:00:00Z");
    qb_md_job_free(j);
    OK(qb_md_job_get(s, "resample", &j, E, sizeof E));
    assert_int_equal(j->ndepends, 1);
    assert_string_equal(j->depends_on[0], "eod");
    qb_md_job_free(j);
    /* Upsert again changes the job in place. */
    OK(apply_json(s,
                  "{\"command_id\":\"c3\",\"kind\":\"COMMAND_KIND_INGEST_JOB_UPSERT\","
                  "\"ingest_job\":{\"name\":\"eod\",\"source\":\"polygon\",\"symbols\":[\"QQQ\"],"
                  "\"timeframe\":\"1d\",\"interval_seconds\":\"86400\"}}",
                  now));
    OK(qb_md_job_get(s, "eod", &j, E, sizeof E));
    assert_string_equal(j->source, "polygon");
    assert_null(j->cron);
    assert_int_equal(j->interval_seconds, 86400);
    ASSERT_TIME(j->next_run_at, "2024-03-09T00:00:00Z");
    qb_md_job_free(j);
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_jobs", "2");

    OK(apply_json(s,
                  "{\"command_id\":\"c4\",\"kind\":\"COMMAND_KIND_INGEST_JOB_PAUSE\","
                  "\"ingest_job\":{\"name\":\"eod\"}}",
                  now));
    ASSERT_SCALAR(s, "SELECT enabled FROM md.ingest_jobs WHERE name = 'eod'", "f");
    OK(apply_json(s,
                  "{\"command_id\":\"c5\",\"kind\":\"COMMAND_KIND_INGEST_JOB_RESUME\","
                  "\"ingest_job\":{\"name\":\"eod\"}}",
                  T("2024-03-10T12:00:00Z")));
    ASSERT_SCALAR(s, "SELECT enabled::text || ' ' || next_run_at AT TIME ZONE 'UTC' FROM "
                     "md.ingest_jobs WHERE name = 'eod'",
                  "true 2024-03-11 00:00:00");
    OK(apply_json(s,
                  "{\"command_id\":\"c6\",\"kind\":\"COMMAND_KIND_INGEST_JOB_RUN_NOW\","
                  "\"ingest_job\":{\"name\":\"resample\"}}",
                  now));
    ASSERT_SCALAR(s, "SELECT run_requested_at AT TIME ZONE 'UTC' FROM md.ingest_jobs "
                     "WHERE name = 'resample'",
                  "2024-03-08 12:00:00");

    /* Refusals, with messages. */
    ERR(QB_ERR_INVALID,
        apply_json(s,
                   "{\"command_id\":\"c7\",\"kind\":\"COMMAND_KIND_INGEST_JOB_UPSERT\","
                   "\"ingest_job\":{\"name\":\"x\",\"source\":\"alpaca\",\"symbols\":[\"A\"],"
                   "\"timeframe\":\"1d\",\"cron\":\"61 * * * *\"}}",
                   now));
    assert_non_null(strstr(E, "ingest_job.cron: minute: 61 out of range 0-59"));
    ERR(QB_ERR_INVALID,
        apply_json(s,
                   "{\"command_id\":\"c8\",\"kind\":\"COMMAND_KIND_INGEST_JOB_UPSERT\","
                   "\"ingest_job\":{\"name\":\"x\",\"source\":\"alpaca\",\"timeframe\":\"1d\","
                   "\"interval_seconds\":60}}",
                   now));
    assert_non_null(strstr(E, "ingest_job.symbols: at least one required"));
    ERR(QB_ERR_INVALID, apply_json(s,
                                   "{\"command_id\":\"c9\",\"kind\":\"COMMAND_KIND_INGEST_JOB_PAUSE\"}",
                                   now));
    assert_non_null(strstr(E, "params.ingest_job is required"));
    ERR(QB_ERR_INVALID, apply_json(s,
                                   "{\"command_id\":\"c10\",\"kind\":\"COMMAND_KIND_INGEST_JOB_PAUSE\","
                                   "\"ingest_job\":{}}",
                                   now));
    assert_non_null(strstr(E, "ingest_job.name: required"));
    ERR(QB_ERR_INVALID, apply_json(s,
                                   "{\"command_id\":\"c11\",\"kind\":\"COMMAND_KIND_RELOAD\"}",
                                   now));
    assert_non_null(strstr(E, "COMMAND_KIND_RELOAD is not an ingest job command"));
    ERR(QB_ERR_INVALID,
        apply_json(s,
                   "{\"command_id\":\"c12\",\"target\":\"qb-risk\","
                   "\"kind\":\"COMMAND_KIND_INGEST_JOB_PAUSE\",\"ingest_job\":{\"name\":\"eod\"}}",
                   now));
    assert_non_null(strstr(E, "target 'qb-risk' is not qb-data"));
    ERR(QB_ERR_NOT_FOUND,
        apply_json(s,
                   "{\"command_id\":\"c13\",\"kind\":\"COMMAND_KIND_INGEST_JOB_RUN_NOW\","
                   "\"ingest_job\":{\"name\":\"ghost\"}}",
                   now));
    assert_non_null(strstr(E, "no ingest job named 'ghost'"));
    ERR(QB_ERR_CONFLICT,
        apply_json(s,
                   "{\"command_id\":\"c14\",\"kind\":\"COMMAND_KIND_INGEST_JOB_DELETE\","
                   "\"ingest_job\":{\"name\":\"eod\"}}",
                   now));
    assert_non_null(strstr(E, "dependency of resample"));
    OK(apply_json(s,
                  "{\"command_id\":\"c15\",\"kind\":\"COMMAND_KIND_INGEST_JOB_DELETE\","
                  "\"ingest_job\":{\"name\":\"resample\"}}",
                  now));
    OK(apply_json(s,
                  "{\"command_id\":\"c16\",\"kind\":\"COMMAND_KIND_INGEST_JOB_DELETE\","
                  "\"ingest_job\":{\"name\":\"eod\"}}",
                  now));
    ASSERT_SCALAR(s, "SELECT count(*) FROM md.ingest_jobs", "0");
}

int main(void) {
    qb_test_env("QB_PG_DSN");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_persisted, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_due_dependency_order, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_one_winner, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_forked_replicas, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_once, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_run_now, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, qb_test_md_db_setup, qb_test_md_db_teardown),
        cmocka_unit_test_setup_teardown(test_commands_from_json, qb_test_md_db_setup, qb_test_md_db_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
