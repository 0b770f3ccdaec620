/*
 * crash_plugin.c — an operator that kills its process, for the crash-loop tests.
 *
 * "crash_on" (transform) passes batches through unchanged, except that a batch holding a row
 * whose int64 column "id" equals config "id" aborts the whole process (as a segfaulting UDF
 * would), every time it is processed.
 */
#include "nurion/operator.h"

#include <stdlib.h>

struct crash_state {
    int64_t id;
};

static void crash_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    if (!json_is_object(config) || !json_is_integer(json_object_get(config, "id")))
        nu_problems_add(p, path, "expected {\"id\": <integer>}");
}

static nu_err_t crash_schema(const json_t *config, const struct nu_schema *in, const char *path,
                             struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    (void)config;
    *out = NULL;
    if (!in || nu_schema_find(in, "id") < 0) {
        if (p)
            nu_problems_add(p, path, "input needs an int64 column \"id\"");
        return nu_err_set(eb, NU_ERR_TYPE, "%s: input needs an int64 column \"id\"", path);
    }
    *out = nu_schema_new(in->ncols);
    for (size_t i = 0; i < in->ncols; i++)
        nu_schema_set(*out, i, in->cols[i].name, in->cols[i].type, in->cols[i].nullable,
                      in->cols[i].item);
    return NU_OK;
}

static nu_err_t crash_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    struct crash_state *st = calloc(1, sizeof(*st));
    if (!st)
        return nu_err_set(eb, NU_ERR_SYSTEM, "crash_on: out of memory");
    st->id = json_integer_value(json_object_get(args->config, "id"));
    *state = st;
    return NU_OK;
}

static nu_err_t crash_process(void *state, const struct nu_op_batch_ctx *ctx,
                              const struct nu_batch *in, const struct nu_op_emit *out,
                              struct nu_errbuf *eb)
{
    struct crash_state *st = state;
    long col = nu_schema_find(in->schema, "id");
    struct nu_batch *b = nu_batch_new(in->schema, in->nrows);
    (void)ctx;
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *src = nu_batch_row(in, r);
        if (col >= 0 && src[col].type == NU_T_INT64 && src[col].u.i == st->id)
            abort();
        struct nu_value *dst = nu_batch_add_row(b);
        for (size_t c = 0; c < in->schema->ncols; c++)
            dst[c] = nu_batch_copy_value(b, &src[c]);
    }
    return nu_op_emit_batch(out, b, eb);
}

static void crash_close(void *state)
{
    free(state);
}

static const struct nu_operator crash_operator = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "crash_on",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "abort the process on a chosen id (tests)",
    .validate = crash_validate,
    .schema = crash_schema,
    .open = crash_open,
    .process = crash_process,
    .close = crash_close,
};

const struct nu_operator *const *nurion_operators(size_t *n);
const struct nu_operator *const *nurion_operators(size_t *n)
{
    static const struct nu_operator *const ops[] = {&crash_operator};
    *n = 1;
    return ops;
}
