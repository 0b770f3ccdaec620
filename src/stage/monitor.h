/*
 * monitor.h — a read-only live view of a running stage instance (layer: stage).
 *
 * A monitor is created by the caller of nu_stage_run() and passed in nu_stage_opts.monitor. The
 * stage's main thread publishes into it (its state, a copy of struct nu_stage_stats, the input
 * partitions it holds and their lag) at most every NU_STAGE_MONITOR_INTERVAL_MS and at every
 * change of state; any other thread (the stage's HTTP endpoint) reads a consistent snapshot.
 *
 * States: STARTING until the consumer has joined its group and the producer is ready (its
 * transactions initialised in exactly_once), then READY; STOPPING once a stop was asked for;
 * DONE when the stage completed; FAILED after a fatal error (terminal).
 *
 * Thread-safety: one publishing thread; nu_stage_monitor_read from any number of threads. The
 * monitor must outlive nu_stage_run() and every reader. Nothing here blocks except on the
 * monitor's own mutex, held only for a copy.
 */
#ifndef NU_STAGE_MONITOR_H
#define NU_STAGE_MONITOR_H

#include "common/job.h"
#include "stage/stage.h"

#include <stddef.h>
#include <stdint.h>

#define NU_STAGE_MONITOR_MAX_LAGS    256 /* partitions with a lag in one snapshot */
#define NU_STAGE_MONITOR_INTERVAL_MS 250

typedef enum nu_stage_state {
    NU_STAGE_STARTING,
    NU_STAGE_READY,
    NU_STAGE_STOPPING,
    NU_STAGE_DONE,
    NU_STAGE_FAILED,
} nu_stage_state_t;

/* Lag of one assigned input partition: high watermark minus the next offset to consume. */
struct nu_stage_lag {
    char topic[NU_JOB_NAME_MAX];
    int32_t partition;
    int64_t lag;
};

struct nu_stage_snapshot {
    nu_stage_state_t state;
    struct nu_stage_stats stats;
    unsigned assigned; /* input partitions assigned now */
    size_t nlags;      /* entries of lags[]: assigned partitions whose watermark is known */
    struct nu_stage_lag lags[NU_STAGE_MONITOR_MAX_LAGS];
};

typedef struct nu_stage_monitor nu_stage_monitor_t;

/* A monitor in state STARTING with zeroed stats; returned owned. Aborts on exhaustion only. */
nu_stage_monitor_t *nu_stage_monitor_new(void);
/* Accepts NULL. No publisher or reader may be running. */
void nu_stage_monitor_destroy(nu_stage_monitor_t *m);

/* Replace the published view with `s` (copied). Publisher thread only. */
void nu_stage_monitor_publish(nu_stage_monitor_t *m, const struct nu_stage_snapshot *s);
/* Set only the state (FAILED is terminal: later states are ignored). */
void nu_stage_monitor_set_state(nu_stage_monitor_t *m, nu_stage_state_t state);
/* Copy the published view into `out`. Any thread. */
void nu_stage_monitor_read(nu_stage_monitor_t *m, struct nu_stage_snapshot *out);

/* "starting", "ready", "stopping", "done", "failed". */
const char *nu_stage_state_name(nu_stage_state_t state);

#endif
