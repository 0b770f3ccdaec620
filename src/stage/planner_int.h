/*
 * planner_int.h — internals shared by planner.c (one-pass plans) and planner_tail.c (the
 * continuous planner of unbounded sources) (layer: stage).
 *
 * Thread-safety: a writer belongs to one thread.
 */
#ifndef NU_STAGE_PLANNER_INT_H
#define NU_STAGE_PLANNER_INT_H

#include "common/buf.h"
#include "common/codec.h"
#include "common/split.h"
#include "stage/planner.h"
#include "stage/transport.h"

#include <jansson.h>

/* Writes the plan splits of source `s` to its plan topic through the transactional producer p. */
struct nu_plan_writer {
    const struct nu_job *job;
    size_t s;
    rd_kafka_t *p;      /* borrowed */
    nu_tproducer_t *tp; /* instead of p: a producer of a transport (borrowed) */
    char topic[NU_JOB_NAME_MAX];
    int partitions;
    uint64_t position; /* index of the next split (its id and plan-topic partition) */
    struct nu_codec_opts copts;
    struct nu_buf val, schema;
    struct nu_headers hdrs;
    struct nu_plan_count *cnt;
    json_t *ends; /* optional: {"partition": end_offset} of the splits written (borrowed) */
};

/* The emit callback of plan(): one batch -> one plan split record (ctx: the writer). Owns b. */
nu_err_t nu_plan_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb);

/* The eos marker of lane "plan" on every partition of the plan topic. */
nu_err_t nu_plan_write_eos(struct nu_plan_writer *w, struct nu_errbuf *eb);

/*
 * Read the committed records of the plan topic of source `s` to the end of each partition:
 * count the splits into cnt, tell whether an eos marker is there, and (ends not NULL) record in
 * `ends` the largest "end_offset" of each "partition" the splits name.
 */
nu_err_t nu_plan_scan(const struct nu_job *job, size_t s, const char *brokers,
                      const struct nu_kafka_prop *props, size_t nprops, const char *group,
                      struct nu_plan_count *cnt, bool *eos, json_t *ends, struct nu_errbuf *eb);

/* Raise ends[partition] to end_offset for each row of plan batch `b` that has both columns. */
void nu_plan_ends_note(json_t *ends, const struct nu_batch *b);

#endif
