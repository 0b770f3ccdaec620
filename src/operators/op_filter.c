/*
 * op_filter.c — the `filter` transform: keep the rows where {"where": "expr"} is true.
 *
 * The expression must be boolean (checked at schema time); a null result drops the row. The
 * output schema is the input schema. One output batch per input batch, possibly empty, so every
 * input split has exactly one child in the lineage.
 */
#include "operators/builtin.h"

#include "operators/expr.h"

#include "common/mem.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct nu_filter {
    char *where; /* owned */
    struct nu_schema *in;
    nu_expr_t *expr;
};

static const char *const nu_filter_fields[] = {"where"};

static void nu_filter_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_filter_fields, 1, &jp, p);
    v = json_object_get(config, "where");
    mark = nu_json_path_push_key(&jp, "where");
    if (!v)
        nu_problems_add(p, path ? path : "$", "missing field \"where\"");
    else if (!json_is_string(v))
        nu_problems_add(p, jp.buf, "expected an expression string, got %s", nu_json_type_name(v));
    else if (json_string_length(v) == 0)
        nu_problems_add(p, jp.buf, "expression is empty");
    else if (json_string_length(v) > NU_EXPR_MAX_LEN)
        nu_problems_add(p, jp.buf, "expression is longer than %d bytes", NU_EXPR_MAX_LEN);
    nu_json_path_pop(&jp, mark);
}

/* Compile `where` against `in` and check it is boolean. */
static nu_err_t nu_filter_compile(const char *where, const struct nu_schema *in, const char *path,
                                  struct nu_problems *p, nu_expr_t **out, struct nu_errbuf *eb)
{
    struct nu_json_path jp;
    struct nu_errbuf xeb;
    nu_expr_t *e = NULL;
    nu_err_t rc = NU_OK;

    *out = NULL;
    nu_builtin_path_init(&jp, path);
    nu_json_path_push_key(&jp, "where");
    nu_errbuf_clear(&xeb);
    if (nu_expr_compile(where, in, &e, &xeb) != NU_OK)
        rc = nu_builtin_fault(p, eb, xeb.code, jp.buf, "%s", nu_err_msg(&xeb));
    else if (nu_expr_type(e) != NU_T_BOOL)
        rc =
            nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "filter condition must be boolean, not %s",
                             nu_type_name(nu_expr_type(e)));
    if (rc == NU_OK)
        *out = e;
    else
        nu_expr_destroy(e);
    return rc;
}

static nu_err_t nu_filter_schema(const json_t *config, const struct nu_schema *in, const char *path,
                                 struct nu_problems *p, struct nu_schema **out,
                                 struct nu_errbuf *eb)
{
    nu_expr_t *e = NULL;
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "filter needs an input schema");
    rc =
        nu_filter_compile(json_string_value(json_object_get(config, "where")), in, path, p, &e, eb);
    nu_expr_destroy(e);
    if (rc == NU_OK)
        *out = nu_schema_ref((struct nu_schema *)in);
    return rc;
}

static void nu_filter_close(void *state)
{
    struct nu_filter *f = state;
    if (!f)
        return;
    nu_expr_destroy(f->expr);
    nu_schema_unref(f->in);
    free(f->where);
    free(f);
}

static nu_err_t nu_filter_prepare(struct nu_filter *f, const struct nu_schema *in,
                                  struct nu_errbuf *eb)
{
    nu_err_t rc;

    if (f->expr && nu_schema_equal(f->in, in))
        return NU_OK;
    nu_expr_destroy(f->expr);
    nu_schema_unref(f->in);
    f->expr = NULL;
    f->in = NULL;
    rc = nu_filter_compile(f->where, in, "$", NULL, &f->expr, eb);
    if (rc == NU_OK)
        f->in = nu_schema_ref((struct nu_schema *)in);
    else
        nu_err_prefix(eb, "filter: ");
    return rc;
}

static nu_err_t nu_filter_open(const struct nu_op_open_args *args, void **state,
                               struct nu_errbuf *eb)
{
    struct nu_filter *f = NULL;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_filter, args->config, eb);
    if (rc != NU_OK)
        goto fail;
    f = nu_xcalloc(1, sizeof(*f));
    f->where = nu_xstrdup(json_string_value(json_object_get(args->config, "where")));
    if (args->in) {
        rc = nu_filter_prepare(f, args->in, eb);
        if (rc != NU_OK)
            goto fail;
    }
    *state = f;
    return NU_OK;
fail:
    nu_filter_close(f);
    return rc;
}

static nu_err_t nu_filter_process(void *state, const struct nu_op_batch_ctx *ctx,
                                  const struct nu_batch *in, const struct nu_op_emit *out,
                                  struct nu_errbuf *eb)
{
    struct nu_filter *f = state;
    struct nu_batch *ob = NULL;
    nu_arena_t *scratch;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"filter\" got no input batch");
    rc = nu_filter_prepare(f, in->schema, eb);
    if (rc != NU_OK)
        return rc;
    ob = nu_batch_new(in->schema, in->nrows);
    scratch = ctx && ctx->scratch ? ctx->scratch : ob->arena;
    for (size_t r = 0; r < in->nrows; r++) {
        bool keep = false;
        rc = nu_expr_eval_bool(f->expr, nu_batch_row(in, r), scratch, &keep, eb);
        if (rc == NU_ERR_EVAL && nu_builtin_can_reject(ctx)) {
            /* a poison row: dead-letter it alone, the rest of the split goes on */
            rc = nu_builtin_reject_row(ctx, in, r, "filter", eb);
            if (rc != NU_OK) {
                nu_batch_destroy(ob);
                return rc;
            }
            continue;
        }
        if (rc != NU_OK) {
            nu_err_prefix(eb, "filter: row %zu: ", r);
            nu_batch_destroy(ob);
            return rc;
        }
        if (keep)
            nu_builtin_copy_row(ob, in, r);
    }
    return nu_op_emit_batch(out, ob, eb);
}

const struct nu_operator nu_op_filter = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "filter",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "keep the rows where a boolean expression is true",
    .validate = nu_filter_validate,
    .schema = nu_filter_schema,
    .open = nu_filter_open,
    .process = nu_filter_process,
    .close = nu_filter_close,
};
