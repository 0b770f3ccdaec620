/*
 * job.h — the job spec: an immutable DAG of stages parsed from JSON (layer: common).
 *
 * A job is given as JSON (schemas/job.schema.json, docs/job-spec.md). nu_job_parse() checks it
 * completely and reports EVERY problem, each with its JSON path, before anything runs; a job that
 * parses is structurally sound (ids valid and unique, upstreams resolved, acyclic, every stage
 * reachable from a source, sizes within the limits below) and, when a validator is given, its
 * operators exist and their configs were checked.
 *
 * Operators live in a higher layer, so operator names, kinds and configs are checked through
 * struct nu_job_validator (the operator registry provides one).
 *
 * This module is also the single source of naming: topics, consumer groups and transactional ids
 * are derived only by the nu_job_topic_* / nu_job_group / nu_job_txn_id functions.
 *
 * Lifetime and thread-safety: a job is immutable after parse and may be read from any number of
 * threads; nu_job_destroy() frees it and drops the config references it holds.
 */
#ifndef NU_COMMON_JOB_H
#define NU_COMMON_JOB_H

#include "common/codec.h" /* nu_format_t, nu_format_name() */
#include "common/err.h"
#include "common/problems.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits on a spec (input), checked before anything is allocated for it. */
#define NU_JOB_MAX_SPEC_BYTES   (1024 * 1024)
#define NU_JOB_MAX_STAGES       256
#define NU_JOB_MAX_UPSTREAMS    64
#define NU_JOB_MAX_ID_LEN       64
#define NU_JOB_MAX_PARALLELISM  1024
#define NU_JOB_MAX_PARTITIONS   10000
#define NU_JOB_MAX_CONFIG_DEPTH 32
#define NU_JOB_MAX_ATTEMPTS     100
#define NU_JOB_MAX_BACKOFF_MS   3600000
#define NU_JOB_MAX_CRASHES      1000
#define NU_JOB_MAX_TEXT_LEN     4096 /* description, operator name, plugin path */

/* Defaults, used when neither the stage nor the job's "defaults" object gives a value. */
#define NU_JOB_DEFAULT_PARTITIONS       8
#define NU_JOB_DEFAULT_PARALLELISM      1
#define NU_JOB_DEFAULT_MAX_ATTEMPTS     3
#define NU_JOB_DEFAULT_RETRY_BACKOFF_MS 100
#define NU_JOB_DEFAULT_MAX_CRASHES      3

/* A buffer of this size always holds any derived name (topic, group, transactional id). */
#define NU_JOB_NAME_MAX 192

typedef enum nu_guarantee {
    NU_GUARANTEE_EXACTLY_ONCE = 0,
    NU_GUARANTEE_AT_LEAST_ONCE,
} nu_guarantee_t;

typedef enum nu_op_kind {
    NU_OPKIND_UNKNOWN = 0,
    NU_OPKIND_SOURCE,
    NU_OPKIND_TRANSFORM,
    NU_OPKIND_SINK
} nu_op_kind_t;

/* Per-stage settings that may be given job-wide in "defaults". */
struct nu_job_defaults {
    int partitions;
    int parallelism; /* min = max = this, for stages that give none */
    int max_attempts;
    int retry_backoff_ms;
    int max_crashes;
};

struct nu_job_stage {
    char *id;             /* owned; [A-Za-z0-9_-]{1,64} */
    char *op;             /* owned; the "operator" name */
    char *plugin;         /* owned; shared object path, NULL for a built-in operator */
    json_t *config;       /* one reference held; always an object ({} when absent) */
    size_t nupstream;     /* 0 for a source */
    char **upstream;      /* owned; upstream ids in spec order */
    size_t *upstream_idx; /* owned; the same, resolved to indices into job->stages */
    size_t ndownstream;
    size_t *downstream_idx; /* owned; stages listing this one as upstream, in index order */
    int parallelism_min, parallelism_max;
    /*
     * Partitions of this stage's output topic (and, for a source, of its plan topic). Always at
     * least the largest parallelism max among the stages that read the topic; when not given,
     * the default is raised to that.
     */
    int partitions;
    nu_op_kind_t kind; /* from the validator; NU_OPKIND_UNKNOWN without one */
    int max_attempts;  /* operator attempts per split before it goes to the DLQ */
    int retry_backoff_ms;
    int max_crashes; /* instance restarts the launcher allows before failing the stage */
};

struct nu_job {
    char *id;          /* owned */
    char *description; /* owned; NULL when absent */
    nu_guarantee_t guarantee;
    nu_format_t format;
    struct nu_job_defaults defaults; /* as given, with built-in defaults filled in */
    size_t nstages;
    struct nu_job_stage *stages; /* owned; in spec order */
    size_t *topo;                /* owned; nstages indices, every stage after its upstreams */
};

/*
 * Operator checks, supplied by the operator registry (a higher layer). `kind` names the kind of
 * an operator, or returns NU_OPKIND_UNKNOWN and may write the problem's message into `why`
 * (naming the operator, e.g. `unknown operator "mapp"` or a plugin load error; when left empty
 * the message is `unknown operator "x"`). `check_stage` is called only when the structural checks
 * pass, once per stage in topological order (so schemas can be propagated through the DAG); it
 * appends problems with paths under `path` ("$.stages[2]"). Either callback may be NULL.
 * The job and its strings are borrowed for the call.
 */
struct nu_job_validator {
    void *ctx;
    nu_op_kind_t (*kind)(void *ctx, const char *op_name, const char *plugin, char *why,
                         size_t whylen);
    void (*check_stage)(void *ctx, const struct nu_job *job, size_t stage_index, const char *path,
                        struct nu_problems *p);
};

/*
 * Parse and validate a spec of `len` bytes (need not be NUL-terminated). `v` may be NULL: then
 * operator names are not checked, only structure. On success returns NU_OK and *out is the job
 * (returned owned; free with nu_job_destroy). Otherwise *out is NULL, every problem found is
 * appended to `problems` (may be NULL) and the first one is also in `eb`. Errors: NU_ERR_SPEC
 * (any problem), NU_ERR_TOO_LARGE (over NU_JOB_MAX_SPEC_BYTES). Does not block.
 */
nu_err_t nu_job_parse(const char *json_text, size_t len, const struct nu_job_validator *v,
                      struct nu_job **out, struct nu_problems *problems, struct nu_errbuf *eb);

/* As nu_job_parse, reading the file at `path`. Adds NU_ERR_IO when it cannot be read. */
nu_err_t nu_job_load_file(const char *path, const struct nu_job_validator *v, struct nu_job **out,
                          struct nu_problems *problems, struct nu_errbuf *eb);

void nu_job_destroy(struct nu_job *job); /* accepts NULL */

/*
 * The canonical form: every field present with its defaults filled in, parallelism always as
 * {"min","max"}, fields in a fixed order. Parsing it gives an equal job. Returned owned (a new
 * reference; configs are deep copies, so changing it never changes the job).
 */
json_t *nu_job_to_json(const struct nu_job *job);

/* Index of the stage with id `id` into *out; false when there is none. */
bool nu_job_stage_find(const struct nu_job *job, const char *id, size_t *out);

const char *nu_guarantee_name(nu_guarantee_t g); /* "exactly_once", "at_least_once" */
const char *nu_op_kind_name(nu_op_kind_t k);     /* "unknown", "source", "transform", "sink" */

/*
 * Derived names, written into `buf` (`len` bytes; NU_JOB_NAME_MAX always suffices, a shorter
 * buffer gets a truncated, NUL-terminated name). Each returns `buf`. `stage` is an index.
 *   output topic        nurion.<job>.<S>
 *   plan topic          nurion.<job>.<S>.plan   (sources)
 *   dead-letter topic   nurion.<job>.<S>.dlq
 *   state changelog     nurion.<job>.<S>.state
 *   events topic        nurion.<job>._events
 *   consumer group      nurion.<job>.<S>
 *   transactional.id    nurion.<job>.<S>.<instance>
 */
const char *nu_job_topic_output(const struct nu_job *job, size_t stage, char *buf, size_t len);
const char *nu_job_topic_plan(const struct nu_job *job, size_t stage, char *buf, size_t len);
const char *nu_job_topic_dlq(const struct nu_job *job, size_t stage, char *buf, size_t len);
const char *nu_job_topic_state(const struct nu_job *job, size_t stage, char *buf, size_t len);
const char *nu_job_topic_events(const struct nu_job *job, char *buf, size_t len);
const char *nu_job_group(const struct nu_job *job, size_t stage, char *buf, size_t len);
const char *nu_job_txn_id(const struct nu_job *job, size_t stage, unsigned instance, char *buf,
                          size_t len);
/* The events topic from a job id alone (for readers that hold only the id). */
const char *nu_job_topic_events_for(const char *job_id, char *buf, size_t len);

#endif
