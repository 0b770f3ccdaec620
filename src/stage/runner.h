/*
 * runner.h — the local runner behind `nurion run JOB.json` (layer: stage).
 *
 * nu_run_job() provisions the job's topics, plans its sources (stage/planner.h), then launches
 * every stage instance as a child process (`<exe> stage --job … --stage S --instance K
 * --brokers B [--set k=v]…`, fork + execv, never a shell) and supervises them: each child's
 * stdout and stderr come back through a pipe and are printed line by line prefixed "[S/K] "; a
 * child that exits non-zero or is killed is restarted with exponential back-off, until one
 * instance has crashed more than max_crashes + 1 times in a row with no split of its stage done
 * or dead-lettered in between (the run then fails with the child's last output lines; the stage
 * itself dead-letters a split at whose offset max_crashes holders died, see stage_txn.c); exit
 * status 2 (bad usage or job), 3 (fatal configuration or fencing) and 127 (could not execute) are
 * never retried. Progress comes from the job's events topic, read with read_committed: split_done,
 * dlq, error and partition_done events are counted per stage and shown live (redrawn in place on a
 * terminal, a plain line every few seconds otherwise). The job is complete when every instance of
 * every stage has exited 0; the runner then reads the events topic to its end and prints a summary
 * table.
 *
 * An unbounded source (nu_plan_stage_unbounded) is not planned up front: it gets one more child,
 * its continuous planner (`<exe> stage … --stage S --instance 0 --brokers B --plan`, prefixed
 * "[S/plan] ", restarted like an instance), whose "planned_splits=N" log lines feed the progress
 * (splits done and lag instead of a count down). The first *stop of such a job is not a stop:
 * *stop is reset, the planners get SIGTERM (a planner started later gets --end-plan), end their
 * plans with eos, and the job drains and completes normally; a second *stop stops it at once.
 *
 * The pure parts (instance counts, back-off schedule, event accounting, output line splitting,
 * summary formatting) are exposed for tests; they are implemented in runner_progress.c.
 *
 * Thread-safety: nu_run_job() is meant to be called once per process, from the main thread: it
 * forks and reaps children (waitpid(-1)) and blocks SIGINT/SIGTERM in the Kafka client threads.
 * The caller installs the signal handlers; they only set *stop. Everything else is reentrant.
 */
#ifndef NU_STAGE_RUNNER_H
#define NU_STAGE_RUNNER_H

#include "common/err.h"
#include "common/job.h"
#include "stage/kafka.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NU_RUN_BACKOFF_FIRST_MS 500   /* first restart delay, doubled per crash */
#define NU_RUN_BACKOFF_MAX_MS   10000 /* longest restart delay */
#define NU_RUN_GRACE_MS         15000 /* SIGTERM → SIGKILL */
#define NU_RUN_MAX_CHILDREN     4096  /* instances of all stages together */
#define NU_RUN_LINE_MAX         4096  /* longer output lines of a child are cut */
#define NU_RUN_TAIL_LINES       8     /* last output lines kept per child for failure reports */
#define NU_RUN_EXIT_FATAL       3     /* a stage's "do not restart me" exit status */

/* --- instance counts --- */

/* One `--instances S=N` override. */
struct nu_run_instances {
    char stage[NU_JOB_MAX_ID_LEN + 1];
    int n;
};

/* Parse "S=N" (N a positive decimal). Errors: NU_ERR_USAGE naming the argument. */
nu_err_t nu_run_instances_parse(const char *arg, struct nu_run_instances *out,
                                struct nu_errbuf *eb);

/*
 * Instances per stage into counts[job->nstages]: the stage's parallelism max, or an override,
 * which must name a stage and lie within min..max. The total must not exceed
 * NU_RUN_MAX_CHILDREN. Errors: NU_ERR_USAGE (unknown stage, out of range), NU_ERR_TOO_LARGE.
 */
nu_err_t nu_run_instance_counts(const struct nu_job *job, const struct nu_run_instances *ov,
                                size_t nov, int *counts, struct nu_errbuf *eb);

/* Delay before restart number `restart` (1 = the first): 0.5 s doubling up to 10 s. */
int nu_run_backoff_ms(unsigned restart);

/* --- progress accounting --- */

struct nu_run_stage_stats {
    int64_t splits, rows_in, rows_out, dead_letters, errors, partitions_done;
    uint64_t planned_splits, planned_rows; /* sources: from the planner */
    bool planned, planned_rows_known;
    bool unbounded; /* planned continuously: planned_splits grows while the job runs */
    int instances;  /* launched */
    int done;       /* instances that exited 0 */
    unsigned restarts;
    double rows_per_s;          /* rows out, over the last progress interval */
    int64_t rate_rows, rate_ms; /* rows_out and time of the last rate sample */
};

struct nu_run_stats {
    size_t nstages;
    struct nu_run_stage_stats *st; /* owned; nstages entries */
    int64_t events, unknown_events;
};

void nu_run_stats_init(struct nu_run_stats *s, const struct nu_job *job);
void nu_run_stats_free(struct nu_run_stats *s); /* accepts NULL */

/*
 * Account one event (JSON text of `len` bytes, borrowed). Returns false, counting it in
 * unknown_events, when it is not a JSON object naming a type and a stage of `job`.
 */
bool nu_run_stats_apply(struct nu_run_stats *s, const struct nu_job *job, const char *json,
                        size_t len);

/* Update each stage's rows_per_s at time now_ms (a sample at least 1 s after the last one). */
void nu_run_stats_rate(struct nu_run_stats *s, int64_t now_ms);

/*
 * Write the progress: one line per stage (`lines` true; returns the number of lines written)
 * or one plain line for all stages (returns 1).
 */
int nu_run_progress_print(FILE *out, const struct nu_job *job, const struct nu_run_stats *s,
                          int64_t elapsed_ms, bool lines);

/*
 * The summary after success: a table per stage (operator, instances, rows in, rows out,
 * splits, dead letters, errors, restarts), the wall time, and a kcat command for each topic the
 * job's results end in (outputs of stages read by nothing or only by sinks); none when
 * `brokers` is NULL.
 */
void nu_run_summary_print(FILE *out, const struct nu_job *job, const struct nu_run_stats *s,
                          int64_t wall_ms, const char *brokers);

/* --- child output --- */

/* Splits a child's output stream into lines and keeps the last NU_RUN_TAIL_LINES of them. */
struct nu_run_lines {
    char buf[NU_RUN_LINE_MAX];
    size_t len;
    bool cut; /* the current line was longer than NU_RUN_LINE_MAX; the rest is dropped */
    char tail[NU_RUN_TAIL_LINES][256];
    unsigned ntail;       /* lines seen (the last min(ntail, NU_RUN_TAIL_LINES) are kept) */
    char last_error[512]; /* the last line logged at level error (or fatal), "" if none */
};

typedef void (*nu_run_line_fn)(void *ctx, const char *line, size_t len);

/* Feed `n` bytes; `fn` gets each complete line (without its newline, NUL-terminated). */
void nu_run_lines_feed(struct nu_run_lines *l, const char *data, size_t n, nu_run_line_fn fn,
                       void *ctx);
/* Hand an unterminated last line to `fn`, if any. */
void nu_run_lines_flush(struct nu_run_lines *l, nu_run_line_fn fn, void *ctx);
/* The last `max` kept lines, oldest first, joined by " | " into out (NUL-terminated,
 * truncated). */
void nu_run_lines_tail(const struct nu_run_lines *l, unsigned max, char *out, size_t len);
/* Why a child failed, from its output: its last error line, else its last three lines. */
void nu_run_lines_reason(const struct nu_run_lines *l, char *out, size_t len);

/* --- the run --- */

struct nu_run_opts {
    const char *job_path; /* absolute path of the spec, passed to the stage processes */
    const char *brokers;
    const char *exe;                   /* program of the stage processes ("/proc/self/exe") */
    const int *instances;              /* job->nstages counts (nu_run_instance_counts) */
    const char *const *sets;           /* "k=v" values passed to each stage as --set */
    size_t nsets;                      /* … and how many */
    const struct nu_kafka_prop *props; /* kafka.* settings for the runner's own clients */
    size_t nprops;
    bool cleanup; /* delete the job's topics after success */
    bool quiet;   /* no progress, and only warnings and errors of the stages */
    bool tty;     /* `err` is a terminal: redraw the progress in place */
    int grace_ms; /* SIGTERM → SIGKILL delay (0: NU_RUN_GRACE_MS) */
    FILE *out;    /* the summary */
    FILE *err;    /* progress and the stages' output */
};

/*
 * Run `job` (borrowed) to completion. Blocks until the job completes, fails or *stop becomes
 * non-zero (then SIGTERM is forwarded to the stages, which get o->grace_ms to stop before
 * SIGKILL). `stats` (may be NULL; initialised here, free with nu_run_stats_free) receives the
 * final counts. Errors: NU_ERR_CANCELLED (stopped), NU_ERR_OPERATOR (a stage instance failed:
 * the message names it and quotes its last output), NU_ERR_SYSTEM (fork, pipe), and the
 * planner's errors (topics, plans).
 */
nu_err_t nu_run_job(const struct nu_job *job, const struct nu_run_opts *o,
                    volatile sig_atomic_t *stop, struct nu_run_stats *stats, struct nu_errbuf *eb);

#endif
