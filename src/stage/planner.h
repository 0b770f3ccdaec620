/*
 * planner.h — provisions a job's topics and writes its sources' plans (layer: stage).
 *
 * nu_plan_topics() creates every topic a job uses through the Admin API: each non-sink stage's
 * output topic, each source's plan topic, each stage's dead-letter topic and the job's events
 * topic. It is idempotent: topics that already exist are accepted (when large enough).
 *
 * nu_plan_sources() runs plan() of every source stage and writes the result to the source's plan
 * topic, one Kafka record per plan split (key = the deterministic split id, headers from struct
 * nu_split_meta, value = the batch in the job's format, partition = position % partitions),
 * followed by one `eos` record of lane NU_LANE_PLAN on every partition, all in ONE transaction
 * per source (transactional.id `nurion.<job>.<S>.planner`). Initialising the transactions aborts
 * whatever a crashed planner left half-written; a plan topic that already holds a committed plan
 * (an `eos` record) is not planned again, so planning twice never duplicates a split. A source
 * whose config says "mode": "unbounded" is left out (counted as `unbounded`).
 *
 * nu_plan_tail() is the continuous planner of an unbounded source: it runs until *stop is
 * raised, every "plan_interval_ms" (default 500) planning the records that became stable since
 * the last pass — the operator's plan() with "start" set to where the committed plan ends — in
 * one transaction per pass, under the same transactional.id as the one-pass planner, so a second
 * planner of the source fences the first. On (re)start it reads the committed plan back to
 * learn, per partition, where it ends, and how many splits it holds (the next split's index):
 * no split is planned twice and none is skipped, whatever crashed where. On stop it writes the
 * eos markers, so the stages drain what was planned and the job ends.
 *
 * Thread-safety: reentrant; each call creates and destroys its own Kafka clients.
 */
#ifndef NU_STAGE_PLANNER_H
#define NU_STAGE_PLANNER_H

#include "common/err.h"
#include "common/job.h"
#include "common/value.h"
#include "stage/kafka.h"
#include "stage/transport.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest wait on the broker for one step of planning (admin call, transaction, scan). */
#define NU_PLAN_TIMEOUT_MS 30000
/* Most plan splits one source may emit. */
#define NU_PLAN_MAX_SPLITS 10000000ULL
/* Topics of a job: output + plan + dead letters per stage, and the events topic. */
#define NU_PLAN_MAX_TOPICS (3 * NU_JOB_MAX_STAGES + 1)

/* One topic a job needs (name owned by the struct). */
struct nu_plan_topic {
    char name[NU_JOB_NAME_MAX];
    int partitions;
};

/*
 * The topics of `job`, in stage order (output, plan, dlq of each stage), the events topic last,
 * into `out` (room for NU_PLAN_MAX_TOPICS). Returns how many. Pure; does not block.
 */
size_t nu_plan_topic_list(const struct nu_job *job, struct nu_plan_topic *out);

/*
 * Create every topic of `job` on the cluster of `admin` (any client handle, borrowed), waiting
 * up to `timeout_ms`. Existing topics are accepted. Errors as nu_kafka_topics_create:
 * NU_ERR_KAFKA, NU_ERR_TIMEOUT, NU_ERR_INVALID, NU_ERR_EXISTS (an existing topic is too small).
 */
nu_err_t nu_plan_topics(const struct nu_job *job, rd_kafka_t *admin, int timeout_ms,
                        struct nu_errbuf *eb);

/* What planning found or wrote for one source stage. */
struct nu_plan_count {
    uint64_t splits; /* plan splits in the plan topic */
    uint64_t rows;   /* rows the plan describes (sum of an int64 "count" column), if known */
    bool rows_known; /* the plan rows carried a "count" column */
    bool existed;    /* a committed plan was found and left as it was */
    bool unbounded;  /* "mode": "unbounded": left to nu_plan_tail() */
};

/*
 * Plan every source stage of `job` against `brokers` (`props`: kafka.* pass-through settings,
 * may be NULL). `counts` (may be NULL) has room for job->nstages entries; the entry of each
 * source is filled in, the others are zeroed. Blocks while the operator plans and for each
 * transaction (each broker wait is bounded by NU_PLAN_TIMEOUT_MS).
 * Errors: NU_ERR_NOT_FOUND / NU_ERR_PLUGIN (operator), the operator's own error from open() or
 * plan(), NU_ERR_TOO_LARGE (over NU_PLAN_MAX_SPLITS, or a split over the producer's limit),
 * NU_ERR_FENCED (another planner of the same job is running), NU_ERR_KAFKA*, NU_ERR_TIMEOUT.
 */
nu_err_t nu_plan_sources(const struct nu_job *job, const char *brokers,
                         const struct nu_kafka_prop *props, size_t nprops,
                         struct nu_plan_count *counts, struct nu_errbuf *eb);

/* Is stage `s` of `job` a source with "mode": "unbounded" in its config? */
bool nu_plan_stage_unbounded(const struct nu_job *job, size_t s);

/* Told after each committed pass of nu_plan_tail(): splits planned in total so far. */
typedef void (*nu_plan_tail_fn)(void *ctx, uint64_t splits);

/*
 * Plan unbounded source `s` of `job` continuously until *stop is non-zero (read between passes
 * and while waiting), then write its eos markers and return NU_OK. A plan that already ends
 * with eos returns NU_OK at once. `progress` (may be NULL) is told after each pass that wrote
 * splits. Errors as nu_plan_sources; on error nothing of the pass in progress is visible.
 */
nu_err_t nu_plan_tail(const struct nu_job *job, size_t s, const char *brokers,
                      const struct nu_kafka_prop *props, size_t nprops, volatile sig_atomic_t *stop,
                      nu_plan_tail_fn progress, void *ctx, struct nu_errbuf *eb);

/*
 * The same two steps over transport `tr` (borrowed; the in-memory broker of `nurion run
 * --local`): topics created with the same names and partitions, plans written with the same
 * records, eos markers and one transaction per source, and a committed plan found again is
 * left as it is. Errors as above, from the transport.
 */
nu_err_t nu_plan_topics_transport(const struct nu_job *job, nu_transport_t *tr,
                                  struct nu_errbuf *eb);
nu_err_t nu_plan_sources_transport(const struct nu_job *job, nu_transport_t *tr,
                                   struct nu_plan_count *counts, struct nu_errbuf *eb);

/* Sum of the int64 column "count" over the rows of plan batch `b`; false when it has none. */
bool nu_plan_batch_rows(const struct nu_batch *b, uint64_t *rows);

#endif
