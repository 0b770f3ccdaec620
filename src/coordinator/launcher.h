/*
 * launcher.h — runs the stages of submitted jobs for the coordinator (layer: coordinator).
 *
 * Two modes. `local`: the launcher spawns and supervises `nurion stage` processes on this host
 * (fork + execv of the nurion binary, never a shell), restarts crashed ones with back-off, fails
 * a job whose stage crash-loops (with the reason), scales stages between their parallelism min
 * and max — on request (scale, pin) and by the autoscaler (autoscale.h) from the input lag read
 * from Kafka — and re-adopts running jobs after a coordinator restart without duplicating
 * instances (it counts the live members of each stage's consumer group before spawning).
 * A source with "mode": "unbounded" gets one more process, its continuous planner (`nurion stage
 * --plan`), supervised under the same rules; re-adoption follows a planner still running on this
 * host instead of starting a second one. Such a job stays "running" until it is cancelled.
 * `external`: stages are run by someone else (Kubernetes, compose); the launcher only observes.
 *
 * Job states live in the store; the launcher moves a job to "running" when it starts it and to
 * "failed" (with the reason) or "cancelled"; "succeeded" comes from ingestion (every stage done).
 *
 * Thread-safety: every function may be called from any thread (HTTP handler threads call
 * start/cancel/scale; the service's main loop calls nu_launcher_tick). Calls do not block on
 * child processes; start blocks while topics are created and sources are planned (bounded by
 * broker timeouts).
 */
#ifndef NU_COORDINATOR_LAUNCHER_H
#define NU_COORDINATOR_LAUNCHER_H

#include "common/err.h"
#include "common/job.h"
#include "coordinator/autoscale.h"
#include "stage/kafka.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum nu_launch_mode { NU_LAUNCH_LOCAL = 0, NU_LAUNCH_EXTERNAL } nu_launch_mode_t;

struct nu_launcher_conf {
    nu_launch_mode_t mode;
    const char *brokers;               /* required */
    const char *database_url;          /* required: the launcher keeps its own connection */
    const char *nurion_exe;            /* the binary to run stages with (default: /proc/self/exe) */
    const struct nu_kafka_prop *props; /* kafka.* settings for the launcher's clients and stages */
    size_t nprops;
    const char *const *stage_sets; /* extra "--set k=v" for every stage process; may be NULL */
    size_t nstage_sets;
    struct nu_autoscale_conf autoscale;
    const char *spec_dir;  /* where job specs are written for stage processes (default /tmp) */
    const char *jobs_like; /* re-adopt only running jobs whose id matches this SQL LIKE pattern
                              (NULL: every running job of the store) */
};

typedef struct nu_launcher nu_launcher_t;

/* Returned owned: nu_launcher_destroy. Errors: NU_ERR_CONFIG, NU_ERR_DB, NU_ERR_KAFKA. */
nu_err_t nu_launcher_new(const struct nu_launcher_conf *conf, nu_launcher_t **out,
                         struct nu_errbuf *eb);
/* Stops supervising; local stage processes get SIGTERM (they finish their transaction and leave
 * the group) and are waited for up to `grace_ms`. Accepts NULL. */
void nu_launcher_destroy(nu_launcher_t *l, int grace_ms);

/*
 * Provision and start job `job` (borrowed; the launcher keeps its own copy): create its topics,
 * plan its sources (recording planned splits/rows in the store), and in local mode spawn its
 * stage instances; the job becomes "running". A job whose topics and plan exist already is
 * resumed, not re-planned. Errors: NU_ERR_KAFKA / NU_ERR_TIMEOUT (broker), NU_ERR_DB, and the
 * planner's errors (the job is then marked "failed" with the reason).
 */
nu_err_t nu_launcher_start(nu_launcher_t *l, const struct nu_job *job, struct nu_errbuf *eb);

/* Stop a job's stage processes and mark it "cancelled". NU_ERR_NOT_FOUND for an unknown job,
 * NU_ERR_STATE when it already ended. */
nu_err_t nu_launcher_cancel(nu_launcher_t *l, const char *job_id, struct nu_errbuf *eb);

/* Pin stage `stage` of `job_id` at `instances` (within parallelism min..max and at most the
 * input partitions: NU_ERR_INVALID otherwise); the autoscaler leaves a pinned stage alone. */
nu_err_t nu_launcher_scale(nu_launcher_t *l, const char *job_id, const char *stage, int instances,
                           struct nu_errbuf *eb);
nu_err_t nu_launcher_freeze(nu_launcher_t *l, const char *job_id, const char *stage, bool frozen,
                            struct nu_errbuf *eb);
nu_err_t nu_launcher_autoscaling_pause(nu_launcher_t *l, const char *job_id, bool paused,
                                       struct nu_errbuf *eb);

/*
 * Per-partition lag of a stage: {"partitions":[{"topic","partition","committed","end","lag"}],
 * "total_lag","max_lag","avg_lag","skew" (max/avg, null when avg is 0),"skewed" (skew > 2)}.
 * Reads the group's committed offsets and the end offsets from Kafka (bounded waits).
 */
nu_err_t nu_launcher_stage_lag(nu_launcher_t *l, const struct nu_job *job, size_t stage,
                               json_t **out, struct nu_errbuf *eb);

/* Delete a job's topics (used by DELETE /jobs/{id}?topics=true). */
nu_err_t nu_launcher_delete_topics(nu_launcher_t *l, const struct nu_job *job,
                                   struct nu_errbuf *eb);

/* Supervise: reap and restart children, fail crash-looping jobs, run the autoscaler when due,
 * re-adopt jobs the store says are running. Call every ~200 ms from one thread. */
nu_err_t nu_launcher_tick(nu_launcher_t *l, struct nu_errbuf *eb);

/*
 * What the launcher knows of a supervised job: {"job","mode","adopted","ending","finished"
 * (every stage process exited 0),"processes","paused","stages":[{"id","target","min","max",
 * "partitions","running","done","frozen","pinned"(null|n),"lag"(null|n),"finished",
 * "planner" (null, or for an unbounded source {"running","ended","planned_splits"(null|n)})}]}.
 * Returned owned. NU_ERR_NOT_FOUND when the job is not supervised here. Does not block.
 */
nu_err_t nu_launcher_job_status(nu_launcher_t *l, const char *job_id, json_t **out,
                                struct nu_errbuf *eb);

/* Counters for /metrics: live stage processes, restarts, scale-ups, scale-downs. */
struct nu_launcher_stats {
    long processes, restarts, scale_ups, scale_downs, jobs_running;
};
void nu_launcher_stats(nu_launcher_t *l, struct nu_launcher_stats *out);

#endif
