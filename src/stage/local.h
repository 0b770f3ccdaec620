/*
 * local.h — `nurion run --local`: a whole job in one process over the in-memory broker
 * (layer: stage).
 *
 * nu_local_run() does what nu_run_job() (runner.h) does, with threads instead of processes
 * and transport_mem.c instead of Kafka: it creates the job's topics (same names and
 * partitions), writes the sources' plans (planner.h, one transaction per source, plus the
 * `eos` markers of lane "plan"), starts every instance of every stage as a thread running
 * nu_stage_run_transport() (stage.h: the same per-record processing, lanes, transactions and
 * completion rule as a `nurion stage` process), follows progress on the job's events topic,
 * and, when every instance has returned complete, prints the same summary as `nurion run`
 * (without kcat commands: the in-memory topics end with the process).
 *
 * What it does not cover: crashes of single instances (threads cannot be killed alone, so
 * there are no restarts and no crash claims), brokers' own behaviour (fetch sizes, rebalance
 * timing, transaction timeouts), and persistence: the topics live as long as the transport.
 * It is for development and tests without a broker; the Kafka path is the product.
 *
 * Thread-safety: call from one thread; it starts and joins its own threads. The caller's
 * signal handlers only set *stop.
 */
#ifndef NU_STAGE_LOCAL_H
#define NU_STAGE_LOCAL_H

#include "common/err.h"
#include "common/job.h"
#include "stage/runner.h"
#include "stage/stage.h"
#include "stage/transport.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#define NU_LOCAL_PROGRESS_MS 2000 /* a progress line this often (not quiet) */

struct nu_local_opts {
    nu_transport_t *transport;         /* borrowed; NULL: a fresh in-memory broker for the run */
    const int *instances;              /* job->nstages counts; NULL: each stage's parallelism max */
    const struct nu_stage_opts *stage; /* borrowed; NULL: nu_stage_opts_init() defaults */
    bool quiet;                        /* no progress lines */
    FILE *out;                         /* the summary (NULL: none) */
    FILE *err;                         /* progress (NULL: none) */
};

/*
 * Run `job` (borrowed) to completion. Blocks until every instance of every stage has returned
 * (complete, failed or stopped). Running it again on the same transport resumes the job: a
 * finished job completes at once without redoing anything. `stats` (may be NULL; initialised
 * here, free with nu_run_stats_free) receives the counts read from the events topic.
 * Errors: NU_ERR_CANCELLED (*stop raised), NU_ERR_OPERATOR (an instance failed: the message
 * names it and carries its error; the other instances are stopped), NU_ERR_USAGE /
 * NU_ERR_TOO_LARGE (instance counts), and the planner's errors.
 */
nu_err_t nu_local_run(const struct nu_job *job, const struct nu_local_opts *o,
                      volatile sig_atomic_t *stop, struct nu_run_stats *stats,
                      struct nu_errbuf *eb);

#endif
