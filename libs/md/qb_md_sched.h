/* qb_md_sched.h — qb-data's scheduler: persistent ingest jobs in
 * PostgreSQL (sql/0003_md_jobs.sql), the slots that are due, claiming a
 * slot so that exactly one replica runs it, and the run history.
 *
 * The ingest work itself is not here: qb-data passes a callback
 * (qb_md_sched_tick) or drives due/claim/finish itself. This module never
 * fetches data.
 *
 * JOBS. A job (md.ingest_jobs) is: a unique name; a source, symbols and a
 * timeframe (passed through to the callback, checked only for shape); ONE
 * schedule — a cron expression (libs/core/qb_cron.h) read in an IANA time
 * zone (qb_tz; default "UTC"), or a fixed interval in seconds whose slots
 * are the multiples of it since 1970-01-01T00:00:00Z (3600 = on the hour
 * UTC, 86400 = midnight UTC; 604800 = Thursdays, as the epoch was one); a
 * lookback policy (qb_md_sched_range); and the names of jobs it
 * depends on.
 *
 * SLOTS. The instants a schedule fires are its slots. next_run_at holds the
 * job's next slot; a run is for one slot (md.ingest_job_runs.scheduled_for).
 * A new job's first slot is the first one strictly after the time it is
 * added; a resumed job's the first one after it is resumed (slots that
 * passed while paused are not run); changing a job's schedule recomputes
 * it from now.
 *
 * CATCH-UP ONCE. When qb_md_sched_due finds next_run_at <= now it proposes
 * ONE run, for the LATEST slot <= now (trigger "catch_up" when slots were
 * missed, "schedule" when next_run_at itself is that slot); the slots in
 * between are not run and leave no row. After a downtime of 100 hourly
 * slots a job runs once, for the most recent hour, and its lookback
 * ("since_last_bar", or a window long enough) fetches what the missed runs
 * would have. This happens on start-up and whenever the scheduler fell
 * behind.
 *
 * CLAIMING (two qb-data replicas never run the same slot). A claim is one
 * transaction:
 *   1. UPDATE md.ingest_jobs SET next_run_at = <first slot after this
 *      one>, last_run_at = now WHERE id = $job AND enabled AND
 *      next_run_at <= $slot — the row lock serializes concurrent claimers,
 *      and a claimer that waited re-checks the condition after the winner
 *      committed and finds next_run_at already advanced;
 *   2. INSERT INTO md.ingest_job_runs ... ON CONFLICT DO NOTHING — the
 *      unique key (job_id, scheduled_for) is the second guard (a slot runs
 *      once, ever), and the partial unique index "one running run per job"
 *      keeps a slow run from being overlapped by the job's next slot.
 * Either step finding nothing rolls back and the claim returns
 * QB_ERR_CONFLICT: someone else has the slot, or the previous run is still
 * running (the job stays due and is proposed again later).
 * next_run_at advances at CLAIM time, not at finish, so a replica that dies
 * mid-run does not freeze the schedule; its run keeps status "running"
 * until its lease (claim time + lease, extended by qb_md_sched_heartbeat)
 * passes, then the next qb_md_sched_due marks it failed ("lease expired")
 * and the job runs again at its next slot.
 *
 * DEPENDENCIES. "B depends on A" means B's run for slot S waits until A has
 * dealt with S: A's next_run_at is past S and A's latest non-manual run at
 * or before S has finished. If that run succeeded B is ready; if it failed
 * or was skipped — or A has no run at or before S at all — B's slot S is
 * recorded as "skipped" (error names A) and B moves on to its next slot.
 * Jobs that depend on each other normally share a schedule (fetch 1m, then
 * resample), so "at or before S" is "for S"; with different schedules B
 * uses A's most recent slot. A paused A holds B (waiting). Manual runs
 * (RUN_NOW) ignore dependencies. Cycles (and self-dependencies, and
 * unknown names) are refused when a job is added or changed; the check
 * runs under a transaction-level advisory lock so two concurrent changes
 * cannot build a cycle together. A job others depend on cannot be deleted.
 *
 * RUN NOW. qb_md_job_run_now sets run_requested_at: the next due list
 * proposes one "manual" run for that instant (also for a paused job). A
 * scheduled slot claimed meanwhile serves the request and clears it.
 *
 * TIME. Every function takes `now` (UTC ns) from the caller instead of
 * reading the clock, so tests can simulate days; qb-data passes
 * qb_time_now(). Timestamps are stored with PostgreSQL's microsecond
 * precision.
 *
 * Threads and ownership: the store handle is the caller's (one per thread,
 * as qb_store.h says). Objects returned here (qb_md_job_t,
 * qb_md_due_list_t) are owned by the caller and freed with their _free
 * function (NULL is a no-op). Errors: QB_ERR_INVALID for a bad spec or
 * command (the message names the field), QB_ERR_NOT_FOUND for an unknown
 * job, QB_ERR_CONFLICT for a duplicate name, a cycle, a delete refused, or
 * a lost claim, and the store's errors (QB_ERR_UNAVAILABLE, QB_ERR_DB). */
#ifndef QB_MD_SCHED_H
#define QB_MD_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "core/qb_cron.h"
#include "core/qb_err.h"
#include "core/qb_time.h"
#include "qb/v1/control.pb-c.h"
#include "store/qb_store.h"

#define QB_MD_JOB_NAME_MAX 63 /* characters of a job name */
#define QB_MD_SCHED_LEASE_DEFAULT (3600 * QB_NS_PER_SEC)

/* Cron in a named zone: qb_cron over qb_tz (qb_tz_to_local and
 * qb_tz_from_local with QB_TZ_COMPATIBLE; see qb_cron.h for the DST
 * rules). tz_name NULL or "" = UTC. Errors: qb_cron_parse's, or the zone's
 * (QB_ERR_NOT_FOUND for an unknown zone). */
qb_err_t qb_md_sched_cron_next(const char *expr, const char *tz_name, qb_time_t after,
                               qb_time_t *next, char *errstr, size_t errstr_size);

typedef enum qb_md_lookback_e {
    QB_MD_LOOKBACK_SINCE_LAST_BAR = 0, /* from the newest stored bar */
    QB_MD_LOOKBACK_DURATION = 1        /* [slot - seconds, slot) */
} qb_md_lookback_t;

/* What to create or change. Strings are the caller's and only read during
 * the call. */
typedef struct qb_md_job_spec_s {
    const char *name;      /* [A-Za-z0-9_.-]{1,63} */
    const char *source;    /* [a-z0-9_]{1,31}, e.g. "alpaca" */
    const char *const *symbols; /* 1.. symbols of [A-Za-z0-9._^=/:-]{1,31} */
    size_t nsymbols;
    const char *timeframe; /* as qb_timeframe_parse: "1m" .. "1w" */
    const char *cron;      /* cron expression, or NULL/"" for an interval */
    const char *time_zone; /* with cron: zone name; NULL/"" = "UTC" */
    int64_t interval_seconds; /* > 0 for an interval job, else 0 */
    /* "<N>d|h|m|s", "since_last_bar", "since_last_bar:<N>d|h|m|s";
     * NULL/"" = "since_last_bar". */
    const char *lookback;
    const char *const *depends_on; /* job names */
    size_t ndepends;
    /* Both 0, or a fixed range [range_from, range_to) every run fetches
     * (the lookback is then ignored): backfills and one-off imports. */
    qb_time_t range_from, range_to;
    /* Source options as a JSON object text; NULL/"" = {}. Source "csv"
     * needs {"path": "..."} ("{symbol}" replaced per symbol) and takes
     * "format" (yahoo|generic), "columns", "time_format" as qbctl import. */
    const char *options;
} qb_md_job_spec_t;

/* A stored job. Owned by the caller: qb_md_job_free. */
typedef struct qb_md_job_s {
    int64_t id;
    char *name, *source, *timeframe;
    char **symbols;
    size_t nsymbols;
    char *cron;      /* NULL for an interval job */
    char *time_zone; /* NULL for an interval job */
    int64_t interval_seconds; /* 0 for a cron job */
    qb_md_lookback_t lookback_kind;
    int64_t lookback_seconds; /* 0 = none */
    char **depends_on;        /* names, sorted */
    size_t ndepends;
    int enabled;                /* 0 = paused */
    qb_time_t last_run_at;      /* 0 = never */
    qb_time_t next_run_at;
    qb_time_t run_requested_at; /* 0 = none */
    qb_time_t range_from, range_to; /* 0 = none (see the spec) */
    char *options;              /* JSON object text, never NULL */
} qb_md_job_t;

void qb_md_job_free(qb_md_job_t *job);

/* Check a spec without touching the database (the zone is loaded).
 * QB_ERR_INVALID naming the field: "cron: hour: 25 out of range 0-23". */
qb_err_t qb_md_job_validate(const qb_md_job_spec_t *spec, char *errstr, size_t errstr_size);

/* Create (QB_ERR_CONFLICT if the name exists), change (QB_ERR_NOT_FOUND if
 * it does not) or either. Dependencies are replaced by the spec's list.
 * *id (may be NULL) receives the job's id. */
qb_err_t qb_md_job_add(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now,
                       int64_t *id, char *errstr, size_t errstr_size);
qb_err_t qb_md_job_update(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now,
                          char *errstr, size_t errstr_size);
qb_err_t qb_md_job_upsert(qb_store_t *s, const qb_md_job_spec_t *spec, qb_time_t now,
                          int64_t *id, char *errstr, size_t errstr_size);

/* Pause (no-op when paused); resume (no-op when running; else next_run_at
 * = first slot after now). */
qb_err_t qb_md_job_pause(qb_store_t *s, const char *name, char *errstr, size_t errstr_size);
qb_err_t qb_md_job_resume(qb_store_t *s, const char *name, qb_time_t now, char *errstr,
                          size_t errstr_size);
/* Delete a job and its runs; QB_ERR_CONFLICT naming the dependents if
 * other jobs depend on it. */
qb_err_t qb_md_job_delete(qb_store_t *s, const char *name, char *errstr, size_t errstr_size);
/* One manual run as soon as possible (see RUN NOW). */
qb_err_t qb_md_job_run_now(qb_store_t *s, const char *name, qb_time_t now, char *errstr,
                           size_t errstr_size);
/* Read one job (QB_ERR_NOT_FOUND). */
qb_err_t qb_md_job_get(qb_store_t *s, const char *name, qb_md_job_t **out, char *errstr,
                       size_t errstr_size);

typedef enum qb_md_trigger_e {
    QB_MD_TRIGGER_SCHEDULE = 0, /* the slot in next_run_at */
    QB_MD_TRIGGER_CATCH_UP = 1, /* the latest of several missed slots */
    QB_MD_TRIGGER_MANUAL = 2    /* RUN_NOW */
} qb_md_trigger_t;
/* "schedule", "catch_up", "manual". */
const char *qb_md_trigger_name(qb_md_trigger_t t);

/* One job that is due. */
typedef struct qb_md_due_s {
    qb_md_job_t *job;         /* owned by the list */
    qb_time_t scheduled_for;  /* the slot */
    qb_md_trigger_t trigger;
    int waiting;              /* 1: a dependency has not dealt with the slot yet */
    char waiting_on[QB_MD_JOB_NAME_MAX + 1]; /* that dependency's name */
} qb_md_due_t;

typedef struct qb_md_due_list_s {
    qb_md_due_t *items;
    size_t n;
} qb_md_due_list_t;

void qb_md_due_list_free(qb_md_due_list_t *list);

/* The jobs due at `now`, dependencies before their dependents (then by
 * name); ready and waiting ones (waiting = 1) alike. First marks running
 * runs whose lease passed as failed, and records "skipped" for slots whose
 * dependency failed (see DEPENDENCIES); those are not listed. *out is
 * reset first; free it with qb_md_due_list_free. Nothing is claimed. */
qb_err_t qb_md_sched_due(qb_store_t *s, qb_time_t now, qb_md_due_list_t *out, char *errstr,
                         size_t errstr_size);

/* Claim the run of `due` (see CLAIMING) as `owner` (free text, e.g.
 * "host:pid") with a lease of lease_ns (<= 0: QB_MD_SCHED_LEASE_DEFAULT).
 * QB_OK and *run_id; QB_ERR_CONFLICT when not claimed; QB_ERR_STATE for a
 * waiting entry. */
qb_err_t qb_md_sched_claim(qb_store_t *s, const qb_md_due_t *due, const char *owner,
                           qb_time_t now, int64_t lease_ns, int64_t *run_id, char *errstr,
                           size_t errstr_size);

/* Extend a running run's lease to now + lease_ns. QB_ERR_STATE when the run
 * is no longer running (its lease already expired). */
qb_err_t qb_md_sched_heartbeat(qb_store_t *s, int64_t run_id, qb_time_t now, int64_t lease_ns,
                               char *errstr, size_t errstr_size);

typedef enum qb_md_run_status_e {
    QB_MD_RUN_RUNNING = 0,
    QB_MD_RUN_SUCCEEDED = 1,
    QB_MD_RUN_FAILED = 2,
    QB_MD_RUN_SKIPPED = 3
} qb_md_run_status_t;
/* "running", "succeeded", "failed", "skipped". */
const char *qb_md_run_status_name(qb_md_run_status_t st);

/* Finish a running run: status (not RUNNING), rows, error (NULL for none)
 * and the md.ingest_log ids it produced. QB_ERR_STATE when the run is not
 * running any more (its lease expired and it was marked failed). */
qb_err_t qb_md_sched_finish(qb_store_t *s, int64_t run_id, qb_md_run_status_t status,
                            int64_t rows, const char *error, const int64_t *ingest_log_ids,
                            size_t n_ingest_log_ids, qb_time_t now, char *errstr,
                            size_t errstr_size);

/* A run handed to the callback of qb_md_sched_tick. */
typedef struct qb_md_run_s {
    int64_t run_id;
    const qb_md_job_t *job;
    qb_time_t scheduled_for;
    qb_md_trigger_t trigger;
    int64_t rows;            /* the callback adds what it loaded */
    int64_t *ingest_log_ids; /* filled by qb_md_run_add_log */
    size_t n_ingest_log_ids;
    size_t cap_ingest_log_ids;
} qb_md_run_t;

/* Record one md.ingest_log row of the run and its rows. QB_ERR_NOMEM. */
qb_err_t qb_md_run_add_log(qb_md_run_t *run, int64_t ingest_log_id, int64_t rows);

/* The ingest work of one run. It may use `store` (same thread). QB_OK ->
 * succeeded; anything else -> failed with errstr as the error. */
typedef qb_err_t (*qb_md_sched_run_cb)(void *opaque, qb_store_t *store, qb_md_run_t *run,
                                       char *errstr, size_t errstr_size);

typedef struct qb_md_tick_stats_s {
    int claimed, succeeded, failed, lost, waiting;
} qb_md_tick_stats_t;

/* One scheduler pass: due -> claim -> callback -> finish for every ready
 * job, repeated while something ran (so a dependent whose dependency just
 * succeeded runs in the same tick), at most 64 rounds. finished_at is now
 * plus the time the callback took. Runs are claimed with a lease of
 * lease_ns (<= 0: QB_MD_SCHED_LEASE_DEFAULT); a callback that runs longer
 * must extend it with qb_md_sched_heartbeat. stats may be NULL. Errors of the store
 * stop the tick; callback errors only fail their run. */
qb_err_t qb_md_sched_tick(qb_store_t *s, qb_time_t now, const char *owner, int64_t lease_ns,
                          qb_md_sched_run_cb cb, void *opaque, qb_md_tick_stats_t *stats,
                          char *errstr, size_t errstr_size);

/* The range [*from, *to) a run of `job` for `slot` fetches: the job's
 * fixed range when it has one; else to = slot;
 * DURATION: from = slot - lookback; SINCE_LAST_BAR: from = last_bar_ts
 * (the newest stored bar's open time, re-fetched in case it was partial)
 * when > 0, else slot - lookback when one is set, else 0 (the source's
 * beginning). */
void qb_md_sched_range(const qb_md_job_t *job, qb_time_t slot, qb_time_t last_bar_ts,
                       qb_time_t *from, qb_time_t *to);

/* Apply an INGEST_JOB_* Command (control topic) to the store: UPSERT ->
 * qb_md_job_upsert, PAUSE, RESUME, DELETE, RUN_NOW by params.ingest_job's
 * name. QB_ERR_INVALID with a message for another kind, a target other
 * than "qb-data"/"*"/"", missing params.ingest_job or name, or a bad
 * spec ("ingest_job.cron: minute: 61 out of range 0-59"). */
qb_err_t qb_md_sched_apply_command(qb_store_t *s, const Qb__V1__Command *cmd, qb_time_t now,
                                   char *errstr, size_t errstr_size);

#endif
