/*
 * launcher_int.h — internals of the launcher (layer: coordinator), shared by launcher*.c and
 * exposed to the unit tests for the pure parts (instance selection, scale plans, lag maths).
 *
 * Locking: every field of struct nu_launcher and of the jobs it holds is guarded by l->mu,
 * except `conf` strings (immutable after new). Children are forked only by the thread that
 * calls nu_launcher_tick (their parent-death signal follows that thread).
 */
#ifndef NU_COORDINATOR_LAUNCHER_INT_H
#define NU_COORDINATOR_LAUNCHER_INT_H

#include "coordinator/db.h"
#include "coordinator/launcher.h"
#include "stage/runner.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define NU_LAUNCHER_GRACE_MS      15000 /* SIGTERM → SIGKILL while a job ends */
#define NU_LAUNCHER_CHECK_MS      1000  /* how often supervised jobs' states are re-read */
#define NU_LAUNCHER_ADOPT_MS      3000  /* how often the store is scanned for running jobs */
#define NU_LAUNCHER_FOREIGN_MS    2000  /* how often adopted (foreign) instances are checked */
#define NU_LAUNCHER_MAX_JOBS      1000  /* running jobs one launcher supervises at most */
#define NU_LAUNCHER_KAFKA_WAIT_MS 10000 /* one admin request or offset query */
#define NU_LAUNCHER_SKEW_LIMIT    2.0   /* skew above this is flagged */
#define NU_LAUNCHER_PLANNER       (-1)  /* the slot index naming a stage's continuous planner */

/* One instance slot of a stage (index = position in the stage's slot array). */
struct nu_lslot {
    pid_t pid;        /* our child, 0: none */
    pid_t foreign;    /* a process another launcher started (adopted), 0: none */
    int fd;           /* read end of our child's output pipe, -1: closed */
    bool want;        /* index < target: should run */
    bool done;        /* exited 0 on its own: its stage completed */
    bool stopping;    /* SIGTERM sent (scale down, cancel, failure) */
    bool respawn;     /* stopping but wanted again: restart when it exits */
    unsigned crashes; /* in a row with no progress of the stage in between */
    int64_t splits_at_crash, dead_at_crash;
    int64_t start_at_ms; /* not running: when to (re)start */
    int64_t kill_at_ms;  /* stopping: when to SIGKILL */
    struct nu_run_lines lines;
};

struct nu_lstage {
    int target;     /* instances wanted */
    int cap;        /* slots allocated = min(parallelism max, input partitions) */
    int partitions; /* input partitions */
    struct nu_lslot *slots;
    bool frozen;
    int pinned;    /* < 0: none */
    bool finished; /* an instance exited 0 on its own, or the store says so */
    int64_t last_scale_ms;
    int64_t lag;             /* last total lag read (-1: unknown) */
    bool unbounded;          /* an unbounded source: a continuous planner runs next to it */
    struct nu_lslot planner; /* that planner (slot index NU_LAUNCHER_PLANNER) */
    int64_t planned;         /* splits its planner reported planned (-1: unknown) */
};

struct nu_ljob {
    struct nu_job *job; /* owned */
    char spec_path[512];
    struct nu_lstage *st; /* job->nstages */
    bool paused;          /* autoscaling paused */
    bool ending;          /* cancel / failure: stopping processes, nothing restarts */
    bool processes_done;  /* every instance exited 0 */
    bool adopted;         /* started by another launcher / before a restart */
    int64_t succeeded_ms; /* when the store was first seen to say succeeded (0: not yet) */
    int64_t next_check_ms, next_foreign_ms;
    struct nu_ljob *next;
};

struct nu_launcher {
    pthread_mutex_t mu;
    nu_launch_mode_t mode;
    char *brokers, *database_url, *exe, *spec_dir, *jobs_like;
    struct nu_kafka_prop *props; /* owned copies */
    size_t nprops;
    char **sets;
    size_t nsets;
    struct nu_autoscale_conf as;
    char host[256];
    nu_db_t *db;
    rd_kafka_t *admin;
    struct nu_ljob *jobs;
    int64_t next_adopt_ms, next_autoscale_ms;
    struct nu_launcher_stats stats;
};

int64_t nu_launcher_now_ms(void);

/* --- pure parts (launcher_plan.c) --- */

/* The instance index named by a member's group.instance.id `gid` of group `group`
 * ("<group>.<k>"); -1 when it is not one of ours. */
int nu_launcher_member_index(const char *group, const char *gid);

/* Indices in [0, target) not marked in live[0..nlive) into out (room for target); returns how
 * many. Never selects an index that is live. */
int nu_launcher_missing(const bool *live, int nlive, int target, int *out);

/* A change of instance count: start indices [start_lo, start_hi), stop [stop_lo, stop_hi) —
 * the highest indices leave first. */
struct nu_scale_plan {
    int start_lo, start_hi, stop_lo, stop_hi;
};
struct nu_scale_plan nu_launcher_scale_plan(int current, int target);

/* One input partition's offsets: committed < 0 means the group has none (lag from `low`). */
struct nu_lag_part {
    const char *topic;
    int partition;
    int64_t committed, low, end;
};
int64_t nu_launcher_part_lag(const struct nu_lag_part *p);
/* The lag document of nu_launcher_stage_lag from `n` partitions; *total gets the total lag. */
json_t *nu_launcher_lag_json(const struct nu_lag_part *parts, size_t n, int64_t *total);

/* --- Kafka (launcher_kafka.c) --- */

/* live[0..nlive) marks the indices of `group`'s members; *members gets the member count. */
nu_err_t nu_launcher_group_live(rd_kafka_t *admin, const char *group, bool *live, int nlive,
                                int *members, struct nu_errbuf *eb);
/* Offsets of the input partitions of `stage` (parts owned by the caller, free with free();
 * topic strings live in `names`, an array of NU_JOB_MAX_UPSTREAMS names). */
nu_err_t nu_launcher_lag_read(rd_kafka_t *admin, const struct nu_job *job, size_t stage,
                              struct nu_lag_part **parts, size_t *n, char (*names)[NU_JOB_NAME_MAX],
                              struct nu_errbuf *eb);

/* --- store (launcher_db.c) --- */

nu_err_t nu_launcher_db_spawned(nu_db_t *db, const char *job, const char *stage, int inst,
                                pid_t pid, const char *host, struct nu_errbuf *eb);
nu_err_t nu_launcher_db_exited(nu_db_t *db, const char *job, const char *stage, int inst, pid_t pid,
                               bool crashed, const char *reason, struct nu_errbuf *eb);
/* The job's state into buf ("" when the job is gone). */
nu_err_t nu_launcher_db_job_state(nu_db_t *db, const char *job, char *buf, size_t len,
                                  struct nu_errbuf *eb);
nu_err_t nu_launcher_db_progress(nu_db_t *db, const char *job, const char *stage, int64_t *splits,
                                 int64_t *dead, struct nu_errbuf *eb);
/* Per stage of `job`: frozen, pinned, finished (state succeeded) from the stages table. */
nu_err_t nu_launcher_db_controls(nu_db_t *db, const struct nu_job *job, struct nu_lstage *st,
                                 struct nu_errbuf *eb);
/* Pid and host recorded for a running instance (pid 0 when none). */
nu_err_t nu_launcher_db_instance_pid(nu_db_t *db, const char *job, const char *stage, int inst,
                                     pid_t *pid, char *host, size_t hostlen, struct nu_errbuf *eb);
/* Ids of running jobs whose id matches `like` (NULL: all) (array of strings, owned) with their
 * specs (owned text). */
nu_err_t nu_launcher_db_running(nu_db_t *db, const char *like, json_t **out, struct nu_errbuf *eb);

/* --- processes (launcher_proc.c) --- */

/* Slot `k` of stage `s` of `j`; k == NU_LAUNCHER_PLANNER names the stage's planner. */
struct nu_lslot *nu_launcher_slot(struct nu_ljob *j, size_t s, int k);
/* A process of this host that is the planner of stage `stage` of the job whose spec file is
 * `spec_path` (0: none). Reads /proc. */
pid_t nu_launcher_proc_find_planner(const char *spec_path, const char *stage);

/* Start slot `k` of stage `s` of `j` now. */
nu_err_t nu_launcher_proc_start(nu_launcher_t *l, struct nu_ljob *j, size_t s, int k,
                                struct nu_errbuf *eb);
/* Read output, reap exits, restart or fail, start due slots, SIGKILL overdue stops. */
void nu_launcher_proc_step(nu_launcher_t *l, struct nu_ljob *j);
/* SIGTERM every process of the job (ours and adopted ones on this host); nothing restarts. */
void nu_launcher_proc_stop_all(nu_launcher_t *l, struct nu_ljob *j);
/* Processes (ours running + adopted alive) of a job. */
int nu_launcher_proc_count(const struct nu_ljob *j);
/* Is an adopted pid still the stage process it was (same job, stage, instance)? An instance
 * NU_LAUNCHER_PLANNER matches the stage's planner (`--plan`). */
bool nu_launcher_proc_is_stage(pid_t pid, const char *job_id, const char *stage, int inst);

/* Fail job `j` with `reason`: stop its processes, mark it failed in the store. */
void nu_launcher_job_fail(nu_launcher_t *l, struct nu_ljob *j, const char *reason);
/* A supervised job over the stored canonical spec `spec_text` (its file written, controls read
 * from the store), not yet linked into l->jobs; NULL on error. */
struct nu_ljob *nu_launcher_adopt_new(nu_launcher_t *l, const char *spec_text,
                                      struct nu_errbuf *eb);
/* Free a job no longer linked (closes its pipes; processes must be gone). Accepts NULL. */
void nu_launcher_job_free(struct nu_ljob *j);
/* Move stage `s` of `j` to `target` instances: start the missing slots, SIGTERM the highest. */
void nu_launcher_apply_target(nu_launcher_t *l, struct nu_ljob *j, size_t s, int target);

#endif
