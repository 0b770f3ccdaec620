/*
 * nurion/operator.h — the operator ABI, version 1 (public; layer: operators).
 *
 * An operator is a constant struct nu_operator of function pointers. Built-ins are compiled in;
 * plugins are shared objects that export one function (see NU_OPERATOR_PLUGIN_SYMBOL):
 *
 *     const struct nu_operator *const *nurion_operators(size_t *n);
 *
 * returning an array of *n operators that lives as long as the process (plugins are never
 * unloaded). Every operator carries abi_version == NU_OPERATOR_ABI_VERSION; the loader also
 * accepts versions down to NU_OPERATOR_ABI_MIN_VERSION (their descriptors lack the members added
 * since, which the runtime then never reads) and refuses any other. Plugins are built with
 * -I<nurion>/include -I<nurion>/src and call the nu_* functions of common/ (batches, schemas,
 * arenas, errors, problems) from the host process, which exports them; they link nothing of nurion
 * themselves. docs/operators.md has an example.
 *
 * Lifecycle per stage instance: validate/schema (at submission, no state) → open → plan (sources,
 * once per job, by the planner) or process (per input batch, possibly several times for one split
 * when retried) → end_of_partition (when an input partition is complete) → close.
 *
 * Ownership: config, schemas, input batches and contexts are borrowed for the duration of a call;
 * a batch handed to nu_op_emit is transferred. State is the operator's own until close().
 * Threads: one instance's calls come from one thread; different instances (different states) may
 * run on different threads at once, so functions must not share mutable globals.
 * Errors: every fallible function returns nu_err_t and writes a message into eb (first message
 * wins). From process: NU_ERR_OPERATOR_RETRY (or NU_ERR_IO, NU_ERR_TIMEOUT) is retried with
 * back-off; NU_ERR_OPERATOR, NU_ERR_EVAL and any other code sends the split to the dead-letter
 * topic after the attempts run out or immediately when not retriable (nu_err_retriable()).
 */
#ifndef NU_NURION_OPERATOR_H
#define NU_NURION_OPERATOR_H

#include "common/arena.h"
#include "common/err.h"
#include "common/job.h"
#include "common/problems.h"
#include "common/value.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define NU_OPERATOR_ABI_VERSION 2u
/* The oldest version the loader still accepts: a version-1 descriptor ends at `close`. */
#define NU_OPERATOR_ABI_MIN_VERSION 1u
/* The one symbol a plugin exports (type nu_operators_fn). */
#define NU_OPERATOR_PLUGIN_SYMBOL "nurion_operators"

/* What open() receives. Everything is borrowed and valid only during open(): copy what you keep. */
struct nu_op_open_args {
    const json_t *config;       /* the stage's "config" object (never NULL: {} if absent) */
    const struct nu_schema *in; /* input schema, NULL for sources or when not yet known */
    const char *job_id;         /* "etl-demo" */
    const char *stage_id;       /* "dbl" */
    uint32_t instance;          /* instance index k of the stage */
};

/* Log levels of nu_op_batch_ctx.log (same values as common/log.h). */
enum nu_op_log_level { NU_OP_LOG_DEBUG = 0, NU_OP_LOG_INFO, NU_OP_LOG_WARN, NU_OP_LOG_ERROR };

/* A record header for nu_op_batch_ctx.produce. */
struct nu_op_header {
    const char *name;  /* NUL-terminated */
    const void *value; /* `len` bytes */
    size_t len;
};

/* Per-call context of process() and end_of_partition(). Borrowed; valid during the call. */
struct nu_op_batch_ctx {
    const char *split_id; /* id of the input split (NULL in end_of_partition) */
    uint32_t attempt;     /* 1 on the first attempt, 2 on the first retry, … */
    nu_arena_t *scratch;  /* per-batch arena, reset after the call's outputs are produced */
    /* Log one line tagged with job/stage/instance/split; may be NULL (then drop the line). */
    void (*log)(void *log_ctx, enum nu_op_log_level level, const char *msg);
    void *log_ctx;
    /*
     * Dead-letter one row of the input and go on with the rest of the split (may be NULL: then
     * fail the whole split instead). The runtime writes, inside the stage's transaction, a record
     * to the stage's dead-letter topic whose value is `raw` (raw_len bytes) when given — e.g. the
     * unparsable text of a CSV line — or else row `row` of `in` as one JSON object; its headers
     * carry `reason`, the split id and the row index. Counts as a dead letter, not an output.
     * Errors from it (broker failures) must be returned from process() as they are.
     */
    nu_err_t (*reject)(void *reject_ctx, const struct nu_batch *in, size_t row, const void *raw,
                       size_t raw_len, const char *reason, struct nu_errbuf *eb);
    void *reject_ctx;
    /*
     * Write one record to a topic of the job's own cluster inside the stage's transaction (may
     * be NULL outside a stage process): sinks that write to Kafka use it so that their records
     * commit or abort with the stage's offsets. Records of a failed attempt are not discarded
     * (they abort with the transaction when the split is dead-lettered or the process dies),
     * so call it only once the split's rows are known to be good. `headers` are `nheaders`
     * name/value pairs (values not NUL-terminated). Errors: broker errors, to be returned from
     * process() as they are.
     */
    nu_err_t (*produce)(void *produce_ctx, const char *topic, int32_t partition, const void *key,
                        size_t keylen, const void *value, size_t len,
                        const struct nu_op_header *headers, size_t nheaders, struct nu_errbuf *eb);
    void *produce_ctx;
};

/* Dead-letter a row when the runtime allows it; otherwise return `err` with `reason` in eb so
 * the whole split fails. */
static inline nu_err_t nu_op_reject_row(const struct nu_op_batch_ctx *ctx,
                                        const struct nu_batch *in, size_t row, const void *raw,
                                        size_t raw_len, nu_err_t err, const char *reason,
                                        struct nu_errbuf *eb)
{
    if (ctx && ctx->reject)
        return ctx->reject(ctx->reject_ctx, in, row, raw, raw_len, reason, eb);
    return nu_err_set(eb, err, "%s", reason);
}

/*
 * Output of process()/plan()/end_of_partition(): the runtime's callback. emit() takes ownership
 * of `out` even when it fails; an error from it must be returned as is. Each emitted batch
 * becomes one output split; an operator may emit zero or more per call.
 */
struct nu_op_emit {
    void *ctx;
    nu_err_t (*emit)(void *ctx, struct nu_batch *out, struct nu_errbuf *eb);
};

/* Emit one batch (ownership transferred); a NULL `out` is an error. */
static inline nu_err_t nu_op_emit_batch(const struct nu_op_emit *e, struct nu_batch *out,
                                        struct nu_errbuf *eb)
{
    if (!out)
        return nu_err_set(eb, NU_ERR_INTERNAL, "operator emitted no batch");
    return e->emit(e->ctx, out, eb);
}

struct nu_operator {
    uint32_t abi_version; /* NU_OPERATOR_ABI_VERSION; must stay the first member */
    const char *name;     /* [a-z0-9_]{1,64}, unique within the registry or plugin */
    nu_op_kind_t kind;    /* source, transform or sink */
    const char *summary;  /* one line for `nurion operators` */

    /* Required. Check the structure of `config` (borrowed; may be any JSON value) and append one
     * problem per fault, at `path` (the config's JSON path, e.g. "$.stages[1].config") plus the
     * key. Must not fail otherwise; never allocates state. */
    void (*validate)(const json_t *config, const char *path, struct nu_problems *p);

    /* Required. Derive the output schema from a config that passed validate() and the input
     * schema `in` (NULL for a source). Type errors (unknown columns, bad expression types) are
     * found here, never per row: each is appended to `p` (when not NULL) at its path under
     * `path`, and the first is also written to eb; returns NU_ERR_TYPE or NU_ERR_CONFIG then.
     * On success *out is a new schema (returned owned; unref it), or NULL for a sink. */
    nu_err_t (*schema)(const json_t *config, const struct nu_schema *in, const char *path,
                       struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb);

    /* Required. Build the instance state from args; refuses a bad config with NU_ERR_CONFIG (or
     * a type error with NU_ERR_TYPE). *state is returned owned and released by close(). */
    nu_err_t (*open)(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb);

    /* Sources only (required there, NULL otherwise): emit the job's plan splits, batches whose
     * rows describe work; each batch becomes one plan split. Deterministic for a config. */
    nu_err_t (*plan)(void *state, const struct nu_op_emit *out, struct nu_errbuf *eb);

    /* Required. Handle one input batch (a plan split for sources); emit zero or more batches.
     * May be called again for the same split (retry): must produce the same output. */
    nu_err_t (*process)(void *state, const struct nu_op_batch_ctx *ctx, const struct nu_batch *in,
                        const struct nu_op_emit *out, struct nu_errbuf *eb);

    /* Optional: an input partition is complete; sinks flush, aggregations emit. */
    nu_err_t (*end_of_partition)(void *state, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_op_emit *out, struct nu_errbuf *eb);

    /* Optional keyed state: serialize into *bytes (malloc'ed, returned owned, freed by the
     * runtime with free()) / reload from bytes (borrowed). Both or neither. */
    nu_err_t (*snapshot)(void *state, void **bytes, size_t *len, struct nu_errbuf *eb);
    nu_err_t (*restore)(void *state, const void *bytes, size_t len, struct nu_errbuf *eb);

    /* Required. Release the state; accepts NULL. */
    void (*close)(void *state);

    /* --- version 2: read only when abi_version >= 2 (use nu_op_passes_rows) --- */

    /* Optional. Does process() hand every batch of schema `in` on unchanged: one output batch
     * with an equal schema and the same rows, no rejects, no produce, no other effect? When it
     * says so, the runtime may skip process() for such batches and pass the input split's
     * encoded value on as the output's (the output still gets its own split id and headers).
     * Called after open(), possibly per batch: keep it cheap. May prepare state for `in`. */
    bool (*passes_rows)(void *state, const struct nu_schema *in);
};

/* Does `op` (with instance `state`) declare that batches of schema `in` pass unchanged? */
static inline bool nu_op_passes_rows(const struct nu_operator *op, void *state,
                                     const struct nu_schema *in)
{
    return op->abi_version >= 2 && op->passes_rows && op->passes_rows(state, in);
}

/* Type of the plugin entry point NU_OPERATOR_PLUGIN_SYMBOL. */
typedef const struct nu_operator *const *(*nu_operators_fn)(size_t *n);
/* The entry point a plugin defines (declared here so plugins get the prototype checked). */
const struct nu_operator *const *nurion_operators(size_t *n);

#endif
