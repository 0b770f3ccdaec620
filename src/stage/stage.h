/*
 * stage.h — one stage instance: the exactly-once consume–transform–produce loop (layer: stage).
 *
 * nu_stage_run() is the body of `nurion stage`: it joins the stage's consumer group
 * (`nurion.<job>.<S>`, read_committed, manual commits), and for every input record runs the
 * operator, produces the outputs, the lineage event and, after the last failed attempt, the
 * dead letter — all inside one Kafka transaction together with the consumed offsets and the
 * end-of-stream lane state (exactly_once), or produced and flushed before the offsets are
 * committed (at_least_once). When the operator declares that it passes a batch's rows unchanged
 * (nu_op_passes_rows), the input is still decoded (checked, counted) but the operator is not
 * called and the input record's value is produced as the output's, under the output's own split
 * id and headers. It returns when the stage is complete (every partition of every input is done
 * — learned from the group's committed offsets, so it holds across instances; a stage of one
 * instance that committed or read every partition complete itself knows it without asking), or
 * when *stop becomes non-zero (SIGTERM: the open transaction is finished first and the group is
 * left cleanly), or on a fatal error.
 *
 * Blocking: runs until one of those; every broker call inside has a timeout.
 * Thread-safety: one call per process (it owns the Kafka clients and installs no handlers).
 */
#ifndef NU_STAGE_STAGE_H
#define NU_STAGE_STAGE_H

#include "common/err.h"
#include "common/job.h"
#include "stage/kafka.h"
#include "stage/transport.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct nu_stage_opts {
    const char *brokers;
    unsigned instance;
    int commit_interval_ms;            /* close a transaction after this long (default 100) */
    int max_splits_per_txn;            /* … or after this many input records (default 1000) */
    int64_t max_inflight_bytes;        /* consumer prefetch + producer queue bound (128 MiB) */
    int64_t max_record_bytes;          /* largest input or output record (default 1 MiB) */
    int completion_check_ms;           /* how often to look for stage completion (default 250) */
    int metrics_interval_ms;           /* periodic metrics events (default 5000; 0 = off) */
    bool deflate;                      /* deflate Avro outputs */
    const struct nu_kafka_prop *props; /* `kafka.*` pass-through settings */
    size_t nprops;
    /* Optional live view for other threads (monitor.h); borrowed, may be NULL. */
    struct nu_stage_monitor *monitor;
};

/* Fill `o` with the defaults above (brokers NULL). */
void nu_stage_opts_init(struct nu_stage_opts *o);

/* What the instance did; filled as it runs. */
struct nu_stage_stats {
    int64_t records_in, splits_in, rows_in, rows_out, splits_out, dead_letters, errors;
    int64_t txns_committed, txns_aborted, partitions_done;
    bool complete; /* returned because the stage is complete */
};

/*
 * Run instance o->instance of stage `stage` of `job` (borrowed; must outlive the call). Returns
 * NU_OK when the stage completed or *stop was raised and the instance shut down cleanly.
 * Errors: NU_ERR_FENCED (another process took over this instance's transactional id: do not
 * restart), NU_ERR_KAFKA_FATAL, NU_ERR_CONFIG (bad options or kafka.* settings), NU_ERR_PLUGIN /
 * NU_ERR_NOT_FOUND (operator), NU_ERR_TIMEOUT (broker unreachable at start).
 */
nu_err_t nu_stage_run(const struct nu_job *job, size_t stage, const struct nu_stage_opts *o,
                      volatile sig_atomic_t *stop, struct nu_stage_stats *stats,
                      struct nu_errbuf *eb);

/*
 * The same instance over transport `tr` (borrowed; in practice the in-memory broker of
 * `nurion run --local`) instead of Kafka at o->brokers: the same per-record processing, lanes,
 * transactions (exactly_once) or flush-then-commit (at_least_once) and completion rule, with
 * its own loop (stage_mem.c). No crash claims, metrics events or monitor (o->monitor ignored).
 * Blocks like nu_stage_run(); any number of calls may run in parallel threads on one transport.
 * Errors: NU_ERR_FENCED (a newer instance with the same transactional id), the transport's
 * errors, NU_ERR_PLUGIN / NU_ERR_NOT_FOUND (operator).
 */
nu_err_t nu_stage_run_transport(const struct nu_job *job, size_t stage,
                                const struct nu_stage_opts *o, nu_transport_t *tr,
                                volatile sig_atomic_t *stop, struct nu_stage_stats *stats,
                                struct nu_errbuf *eb);

#endif
