/*
 * lanes.h — end-of-stream lanes: the exact completion of finite jobs (layer: stage).
 *
 * A lane of topic T is one input partition of the stage that writes T (for a plan topic, the
 * planner is the one lane "plan"). When an instance of stage U has consumed an input partition
 * to completion it writes one `eos` record naming that lane to every partition of U's output
 * topic, in the transaction that commits the offsets. A partition of T is complete once `eos`
 * records of all of U's lanes have been read from it.
 *
 * Which lanes of an input partition have been seen travels with the consumer group's committed
 * offset of that partition, in the offset's metadata string: lane state is therefore committed
 * and aborted atomically with the offsets and the outputs, survives crashes and moves with the
 * partition on a rebalance. The metadata format is `nu1:<seen>/<total>:<hex bitmap>` (bit i of
 * the bitmap = lane i seen; the bitmap is omitted once every lane has been seen).
 *
 * This module is pure bookkeeping: no I/O. Not thread-safe; one owner.
 */
#ifndef NU_STAGE_LANES_H
#define NU_STAGE_LANES_H

#include "common/err.h"
#include "common/job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most lanes one partition can have (keeps the offset metadata under Kafka's 4096 bytes). */
#define NU_LANES_MAX 8192
/* The lane name the planner uses for plan topics. */
#define NU_LANE_PLAN "plan"

/* One input topic of a stage. */
struct nu_stage_input {
    char topic[NU_JOB_NAME_MAX];
    size_t from_stage; /* stage writing the topic (the stage itself for its plan topic) */
    bool plan;         /* a source's plan topic */
    int partitions;
    uint32_t lanes; /* lanes each partition of this topic carries */
};

/*
 * The input topics of stage `stage` of `job`, in upstream order, into `out` (room for
 * NU_JOB_MAX_UPSTREAMS, or 1 for a source). Returns how many. Errors: NU_ERR_TOO_LARGE when a
 * topic would carry more than NU_LANES_MAX lanes.
 */
nu_err_t nu_lanes_inputs(const struct nu_job *job, size_t stage, struct nu_stage_input *out,
                         size_t *n, struct nu_errbuf *eb);

/* Lanes stage `stage` writes into each partition of its output topic: the sum of the
 * partitions of its inputs (a source: of its plan topic). */
uint32_t nu_lanes_of_stage(const struct nu_job *job, size_t stage);

/* The lane name of input partition (topic, partition): "<topic>:<partition>". */
void nu_lane_name(const char *topic, int partition, char *buf, size_t len);

/*
 * Index of lane `name` among the lanes of the stage `writer` writes (its inputs in upstream
 * order, partition by partition). For a plan topic the only lane is NU_LANE_PLAN, index 0.
 * Errors: NU_ERR_CORRUPT when the name is not one of its lanes.
 */
nu_err_t nu_lane_index(const struct nu_job *job, size_t writer, bool plan, const char *name,
                       size_t name_len, uint32_t *out, struct nu_errbuf *eb);

/* Lanes seen in one input partition. */
struct nu_lane_set {
    uint32_t total;
    uint32_t seen;
    uint8_t bits[NU_LANES_MAX / 8];
};

void nu_lane_set_init(struct nu_lane_set *s, uint32_t total);
/* Mark lane `i` seen; returns true when it was new. Out-of-range indices are ignored. */
bool nu_lane_set_mark(struct nu_lane_set *s, uint32_t i);
static inline bool nu_lane_set_complete(const struct nu_lane_set *s)
{
    return s->seen >= s->total;
}
/* Encode as offset metadata into `buf` (NUL-terminated; needs at most 2 * total / 8 + 32). */
size_t nu_lane_set_encode(const struct nu_lane_set *s, char *buf, size_t len);
/*
 * Decode offset metadata (`len` bytes, not NUL-terminated) for a partition with `total` lanes.
 * Empty metadata means no lane seen yet. Errors: NU_ERR_CORRUPT when the text is not ours or
 * its total differs from `total` (the job changed under a running group).
 */
nu_err_t nu_lane_set_decode(struct nu_lane_set *s, uint32_t total, const char *meta, size_t len,
                            struct nu_errbuf *eb);

#endif
