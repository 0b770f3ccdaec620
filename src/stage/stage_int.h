/* stage_int.h — internals of the stage instance shared by stage*.c (layer: stage). */
#ifndef NU_STAGE_STAGE_INT_H
#define NU_STAGE_STAGE_INT_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/split.h"
#include "nurion/operator.h"
#include "stage/events.h"
#include "stage/lanes.h"
#include "stage/stage.h"
#include "stage/transport.h"

#include <jansson.h>

/* State of one input partition this instance has (or had) assigned. */
struct nu_part {
    size_t input; /* index into st->inputs */
    int32_t partition;
    bool assigned;
    bool need_init;           /* committed lane state not fetched yet */
    bool dirty;               /* consumed in the open transaction */
    int64_t next_offset;      /* offset to commit: after the last record consumed */
    int64_t committed;        /* the group's committed offset (0 when none yet) */
    struct nu_lane_set lanes; /* committed state plus what the open transaction adds */
    struct nu_lane_set base;  /* committed state (restored on abort) */
    /*
     * Crash accounting (see stage_txn.c): crash_n holders died processing the record at
     * committed offset crash_off alone. need_claim: look for a dead holder's claim on the next
     * init (set by an assignment, not by an abort). holding: our batch claim is in the committed
     * metadata. careful_left: records still to process one per transaction.
     */
    bool need_claim;
    bool holding;
    int64_t crash_off;
    int crash_n;
    int careful_left;
};

/* An operator instance, opened for one input schema. */
struct nu_op_inst {
    struct nu_schema *in; /* reference held; NULL for "any" */
    void *state;
};

/* Outputs collected during one attempt (produced only when the attempt succeeds). */
struct nu_outbox {
    struct nu_batch **b;
    size_t n, cap;
};

/* A row an operator rejected, waiting for its attempt to succeed. */
struct nu_reject {
    long row;
    char reason[NU_ERRBUF_SIZE];
    struct nu_buf value;
};

/* One encoded output split, kept between splits so the buffers are reused. data/len: the value
 * to produce — val's bytes, or the input record's own when the split passes unchanged. */
struct nu_encoded {
    char id[NU_SPLIT_ID_MAX];
    struct nu_buf val, schema;
    const void *data;
    size_t len;
};

struct nu_stage {
    const struct nu_job *job;
    size_t idx;
    const struct nu_job_stage *js;
    const struct nu_stage_opts *o;
    struct nu_stage_stats *stats;
    volatile sig_atomic_t *stop;
    bool eos_mode; /* exactly_once */
    struct nu_event_origin origin;
    const struct nu_operator *op;

    rd_kafka_t *c;   /* consumer */
    rd_kafka_t *p;   /* producer of outputs (transactional in exactly_once) */
    rd_kafka_t *aux; /* idempotent producer for events outside transactions (may be == p) */
    /* In-memory mode (stage_mem.c) instead of the three above: the same loop body over the
     * transport interface. tc is non-NULL exactly in that mode. */
    nu_tconsumer_t *tc;
    nu_tproducer_t *tp, *taux;

    struct nu_stage_input inputs[NU_JOB_MAX_UPSTREAMS];
    size_t ninputs;
    char out_topic[NU_JOB_NAME_MAX];
    int out_partitions; /* 0: a sink, no output topic */
    char dlq_topic[NU_JOB_NAME_MAX];
    char events_topic[NU_JOB_NAME_MAX];

    struct nu_part *parts;
    size_t nparts, capparts;

    struct nu_op_inst *ops;
    size_t nops;

    bool in_txn;
    bool commit_now; /* close the transaction after the current record */
    int txn_records;
    int64_t txn_started_ms;
    bool rebalance_failed; /* a commit inside the rebalance callback failed */
    bool closing;          /* rd_kafka_consumer_close has been called */
    nu_err_t fatal;        /* set by callbacks: stop with this error */
    struct nu_errbuf fatal_eb;

    nu_codec_cache_t *cache;
    struct nu_codec_opts copts;
    struct nu_buf enc, ev;
    struct nu_headers hdrs;
    nu_arena_t *scratch;
    struct nu_outbox outbox;
    struct nu_encoded *encs;
    size_t nencs;
    struct nu_reject *rejects;
    size_t nrejects, caprejects;

    int64_t last_metrics_ms, last_check_ms, started_ms;
    unsigned check_failures; /* completion checks failed in a row */
    int64_t metrics_rows_in, metrics_rows_out;
    bool paused;
};

/* stage_txn.c */
nu_err_t nu_stage_txn_begin(struct nu_stage *st, struct nu_errbuf *eb);
/* Commit the open transaction (offsets + lane state of dirty partitions). On an abortable
 * error: abort and rewind; returns NU_OK then (the work is redone). */
nu_err_t nu_stage_txn_commit(struct nu_stage *st, struct nu_errbuf *eb);
nu_err_t nu_stage_txn_abort_rewind(struct nu_stage *st, const char *why, struct nu_errbuf *eb);
void nu_stage_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque);
/* A complete instance that holds partitions leaves the group now, with a LeaveGroup (see
 * stage_txn.c); call before rd_kafka_consumer_close. */
void nu_stage_leave_group(struct nu_stage *st);
struct nu_part *nu_stage_part(struct nu_stage *st, const char *topic, int32_t partition,
                              bool create);
nu_err_t nu_stage_parts_init(struct nu_stage *st, struct nu_errbuf *eb);
/* Is every partition of every input complete, as committed in the group? */
nu_err_t nu_stage_check_complete(struct nu_stage *st, bool *complete, struct nu_errbuf *eb);
/* Without asking the group: is this the stage's only instance (parallelism max 1), and has it
 * seen every partition of every input complete in committed state (read from the group, or
 * committed by its own transactions)? Completion is never undone, so yes stays true; no means
 * "ask the group". */
bool nu_stage_known_complete(const struct nu_stage *st);
/* Careful mode: before processing the record at the committed offset of `pt`, record the claim
 * on that offset; *kill_count is how many holders died there before (dead-letter at the limit). */
nu_err_t nu_stage_claim(struct nu_stage *st, struct nu_part *pt, int *kill_count,
                        struct nu_errbuf *eb);
/* Before the first split taken from `pt` since it was assigned: record our batch claim. */
nu_err_t nu_stage_claim_batch(struct nu_stage *st, struct nu_part *pt, struct nu_errbuf *eb);

/* stage_process.c: one input record, whichever transport it came from (a view of it: the
 * Kafka loop fills it from the librdkafka message, with all of its headers). */
nu_err_t nu_stage_handle(struct nu_stage *st, const struct nu_trecord *m, struct nu_errbuf *eb);
/* Produce with the output producer (inside its transaction), or with the one for records
 * outside transactions when `aux`. `partition` < 0: by a hash of the key. */
nu_err_t nu_stage_produce(struct nu_stage *st, bool aux, const char *topic, int32_t partition,
                          const void *key, size_t keylen, const void *val, size_t len,
                          const struct nu_header *h, size_t nh, struct nu_errbuf *eb);
nu_err_t nu_stage_event(struct nu_stage *st, bool aux, json_t *ev, struct nu_errbuf *eb);
void nu_stage_ops_close(struct nu_stage *st);

/* stage.c: the setup and release shared by both loops (fields, operator, inputs, topic names). */
nu_err_t nu_stage_prepare(struct nu_stage *st, const struct nu_job *job, size_t stage,
                          const struct nu_stage_opts *o, volatile sig_atomic_t *stop,
                          struct nu_stage_stats *stats, struct nu_errbuf *eb);
void nu_stage_release(struct nu_stage *st); /* frees what prepare made, and st itself */

/* stage_mem.c: the in-memory counterparts of the stage_txn.c functions above; those dispatch
 * here when st->tc is set. */
nu_err_t nu_stage_mem_txn_begin(struct nu_stage *st, struct nu_errbuf *eb);
nu_err_t nu_stage_mem_txn_commit(struct nu_stage *st, struct nu_errbuf *eb);
nu_err_t nu_stage_mem_abort_rewind(struct nu_stage *st, const char *why, struct nu_errbuf *eb);
nu_err_t nu_stage_mem_parts_init(struct nu_stage *st, struct nu_errbuf *eb);

/* monitor.c: publish to o->monitor (if any) — throttled unless `force` — and the final state. */
void nu_stage_monitor_update(struct nu_stage *st, int64_t now, bool force);
void nu_stage_monitor_finish(struct nu_stage *st, nu_err_t err);

#endif
