/*
 * tag_plugin.c — a minimal operator plugin: "tag" appends a constant string column.
 *
 * Config {"value": "text"}: every row gets a column "tag" holding "text". Built as a shared
 * object (MODULE library); the host resolves nurion_operators() with dlsym. Compiled with
 * NU_TEST_PLUGIN_BAD_ABI it declares an unsupported ABI version, with NU_TEST_PLUGIN_NO_SYMBOL
 * it exports no entry point (both for the loader's error tests).
 */
#include "nurion/operator.h"

#include <stdlib.h>
#include <string.h>

struct tag_state {
    char *value;
    size_t len;
};

static void tag_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    const json_t *v = json_object_get(config, "value");
    if (!json_is_object(config))
        nu_problems_add(p, path, "expected an object");
    else if (!json_is_string(v))
        nu_problems_add(p, path, "field \"value\" must be a string");
}

static nu_err_t tag_schema(const json_t *config, const struct nu_schema *in, const char *path,
                           struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    *out = NULL;
    if (!in || nu_schema_find(in, "tag") >= 0) {
        if (p)
            nu_problems_add(p, path, "input must exist and have no column \"tag\"");
        return nu_err_set(eb, NU_ERR_TYPE, "%s: input must exist and have no column \"tag\"", path);
    }
    *out = nu_schema_new(in->ncols + 1);
    for (size_t i = 0; i < in->ncols; i++)
        nu_schema_set(*out, i, in->cols[i].name, in->cols[i].type, in->cols[i].nullable,
                      in->cols[i].item);
    nu_schema_set(*out, in->ncols, "tag", NU_T_STRING, false, NULL);
    return NU_OK;
}

static nu_err_t tag_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    const json_t *v = json_object_get(args->config, "value");
    struct tag_state *st;

    *state = NULL;
    if (!json_is_string(v))
        return nu_err_set(eb, NU_ERR_CONFIG, "tag: field \"value\" must be a string");
    st = calloc(1, sizeof(*st));
    if (!st)
        return nu_err_set(eb, NU_ERR_SYSTEM, "tag: out of memory");
    st->len = json_string_length(v);
    st->value = malloc(st->len + 1);
    if (!st->value) {
        free(st);
        return nu_err_set(eb, NU_ERR_SYSTEM, "tag: out of memory");
    }
    memcpy(st->value, json_string_value(v), st->len + 1);
    *state = st;
    return NU_OK;
}

static nu_err_t tag_process(void *state, const struct nu_op_batch_ctx *ctx,
                            const struct nu_batch *in, const struct nu_op_emit *out,
                            struct nu_errbuf *eb)
{
    struct tag_state *st = state;
    struct nu_schema *schema = NULL;
    struct nu_batch *b;
    nu_err_t rc = tag_schema(NULL, in->schema, "$", NULL, &schema, eb);

    if (rc != NU_OK)
        return rc;
    b = nu_batch_new(schema, in->nrows);
    nu_schema_unref(schema); /* the batch holds its own reference */
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *src = nu_batch_row(in, r);
        struct nu_value *dst = nu_batch_add_row(b);
        for (size_t c = 0; c < in->schema->ncols; c++)
            dst[c] = nu_batch_copy_value(b, &src[c]);
        dst[in->schema->ncols] = nu_batch_str(b, NU_T_STRING, st->value, st->len);
    }
    return nu_op_emit_batch(out, b, eb); /* ownership of b passes to the runtime */
}

static void tag_close(void *state)
{
    struct tag_state *st = state;
    if (st)
        free(st->value);
    free(st);
}

static const struct nu_operator tag_operator = {
#ifdef NU_TEST_PLUGIN_BAD_ABI
    .abi_version = 99,
#else
    .abi_version = NU_OPERATOR_ABI_VERSION,
#endif
    .name = "tag",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "append a constant string column \"tag\"",
    .validate = tag_validate,
    .schema = tag_schema,
    .open = tag_open,
    .process = tag_process,
    .close = tag_close,
};

#ifdef NU_TEST_PLUGIN_NO_SYMBOL
/* A misspelt entry point: the loader must not find it. */
const struct nu_operator *const *nurion_operator(size_t *n);
#define nurion_operators nurion_operator
#endif
const struct nu_operator *const *nurion_operators(size_t *n)
{
    static const struct nu_operator *const ops[] = {&tag_operator};
    *n = sizeof(ops) / sizeof(ops[0]);
    return ops;
}
