/*
 * op_flat_map.c — the `flat_map` transform: one output row per element of an array column.
 *
 * Config {"explode": "col", "as": "item" (optional), "keep_empty": false}. The array column is
 * replaced, at the same position, by a column holding one element, named "as" (default: the
 * array column's own name) and typed as the array's items. A null or empty array gives no row,
 * or one row with a null element when "keep_empty" is true. The other columns are repeated.
 */
#include "operators/builtin.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

struct nu_flat_map {
    char *col, *as; /* owned; as == NULL: the column's name */
    bool keep_empty;
    struct nu_schema *in, *out;
    long idx;
};

static const char *const nu_flat_map_fields[] = {"explode", "as", "keep_empty"};

static void nu_flat_map_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    static const char *const names[] = {"explode", "as"};
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_flat_map_fields, 3, &jp, p);
    if (!json_object_get(config, "explode"))
        nu_problems_add(p, jp.buf, "missing field \"explode\"");
    for (size_t i = 0; i < 2; i++) {
        if (!(v = json_object_get(config, names[i])))
            continue;
        mark = nu_json_path_push_key(&jp, names[i]);
        if (!json_is_string(v))
            nu_problems_add(p, jp.buf, "expected a column name, got %s", nu_json_type_name(v));
        else if (json_string_length(v) == 0 || json_string_length(v) > NU_MAX_NAME_LEN)
            nu_problems_add(p, jp.buf, "column name must be 1 to %d bytes", NU_MAX_NAME_LEN);
        nu_json_path_pop(&jp, mark);
    }
    v = json_object_get(config, "keep_empty");
    if (v && !json_is_boolean(v)) {
        mark = nu_json_path_push_key(&jp, "keep_empty");
        nu_problems_add(p, jp.buf, "expected a boolean, got %s", nu_json_type_name(v));
        nu_json_path_pop(&jp, mark);
    }
}

/* The output schema and the index of the exploded column. */
static nu_err_t nu_flat_map_derive(const char *col, const char *as, bool keep_empty,
                                   const struct nu_schema *in, const char *path,
                                   struct nu_problems *p, struct nu_schema **out, long *idx,
                                   struct nu_errbuf *eb)
{
    struct nu_json_path jp;
    const struct nu_field *f, *item;
    long at;

    *out = NULL;
    nu_builtin_path_init(&jp, path);
    nu_json_path_push_key(&jp, "explode");
    at = nu_schema_find(in, col);
    if (at < 0)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "unknown column \"%s\"", col);
    f = &in->cols[at];
    if (f->type != NU_T_ARRAY)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "column \"%s\" is %s, not an array",
                                col, nu_type_name(f->type));
    if (!f->item)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "array column \"%s\" has no item type",
                                col);
    item = f->item;
    if (as && strcmp(as, col) != 0 && nu_schema_find(in, as) >= 0) {
        nu_builtin_path_init(&jp, path);
        nu_json_path_push_key(&jp, "as");
        return nu_builtin_fault(p, eb, NU_ERR_CONFIG, jp.buf,
                                "a column named \"%s\" already exists", as);
    }
    *out = nu_schema_new(in->ncols);
    for (size_t i = 0; i < in->ncols; i++) {
        const struct nu_field *c = &in->cols[i];
        if ((long)i == at)
            nu_schema_set(*out, i, as ? as : col, item->type,
                          item->nullable || keep_empty || item->type == NU_T_NULL, item->item);
        else
            nu_schema_set(*out, i, c->name, c->type, c->nullable, c->item);
    }
    *idx = at;
    return NU_OK;
}

static const char *nu_flat_map_str(const json_t *config, const char *key)
{
    return json_string_value(json_object_get(config, key));
}

static nu_err_t nu_flat_map_schema(const json_t *config, const struct nu_schema *in,
                                   const char *path, struct nu_problems *p, struct nu_schema **out,
                                   struct nu_errbuf *eb)
{
    long idx;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "flat_map needs an input schema");
    return nu_flat_map_derive(nu_flat_map_str(config, "explode"), nu_flat_map_str(config, "as"),
                              json_is_true(json_object_get(config, "keep_empty")), in, path, p, out,
                              &idx, eb);
}

static void nu_flat_map_close(void *state)
{
    struct nu_flat_map *fm = state;
    if (!fm)
        return;
    nu_schema_unref(fm->in);
    nu_schema_unref(fm->out);
    free(fm->col);
    free(fm->as);
    free(fm);
}

static nu_err_t nu_flat_map_prepare(struct nu_flat_map *fm, const struct nu_schema *in,
                                    struct nu_errbuf *eb)
{
    nu_err_t rc;

    if (fm->out && nu_schema_equal(fm->in, in))
        return NU_OK;
    nu_schema_unref(fm->in);
    nu_schema_unref(fm->out);
    fm->in = fm->out = NULL;
    rc = nu_flat_map_derive(fm->col, fm->as, fm->keep_empty, in, "$", NULL, &fm->out, &fm->idx, eb);
    if (rc == NU_OK)
        fm->in = nu_schema_ref((struct nu_schema *)in);
    else
        nu_err_prefix(eb, "flat_map: ");
    return rc;
}

static nu_err_t nu_flat_map_open(const struct nu_op_open_args *args, void **state,
                                 struct nu_errbuf *eb)
{
    struct nu_flat_map *fm = NULL;
    const char *as;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_flat_map, args->config, eb);
    if (rc != NU_OK)
        goto fail;
    fm = nu_xcalloc(1, sizeof(*fm));
    fm->col = nu_xstrdup(nu_flat_map_str(args->config, "explode"));
    as = nu_flat_map_str(args->config, "as");
    fm->as = as ? nu_xstrdup(as) : NULL;
    fm->keep_empty = json_is_true(json_object_get(args->config, "keep_empty"));
    if (args->in) {
        rc = nu_flat_map_prepare(fm, args->in, eb);
        if (rc != NU_OK)
            goto fail;
    }
    *state = fm;
    return NU_OK;
fail:
    nu_flat_map_close(fm);
    return rc;
}

static nu_err_t nu_flat_map_process(void *state, const struct nu_op_batch_ctx *ctx,
                                    const struct nu_batch *in, const struct nu_op_emit *out,
                                    struct nu_errbuf *eb)
{
    struct nu_flat_map *fm = state;
    struct nu_batch *ob = NULL;
    size_t ncols;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"flat_map\" got no input batch");
    rc = nu_flat_map_prepare(fm, in->schema, eb);
    if (rc != NU_OK)
        return rc;
    ncols = in->schema->ncols;
    ob = nu_batch_new(fm->out, in->nrows);
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        const struct nu_value *arr = &row[fm->idx];
        size_t n = arr->type == NU_T_ARRAY ? arr->u.arr.n : 0;
        size_t first;
        if (n == 0 && !fm->keep_empty)
            continue;
        /* The repeated columns are copied once; later rows share those bytes in `ob`. */
        first = ob->nrows;
        nu_builtin_copy_row(ob, in, r);
        for (size_t k = 1; k < n; k++) {
            struct nu_value *dst = nu_batch_add_row(ob);
            memcpy(dst, nu_batch_row(ob, first), ncols * sizeof(*dst));
        }
        for (size_t k = 0; k < (n ? n : 1); k++) {
            struct nu_value *dst = nu_batch_row(ob, first + k);
            dst[fm->idx] = n ? nu_batch_copy_value(ob, &arr->u.arr.items[k]) : nu_value_null();
        }
    }
    return nu_op_emit_batch(out, ob, eb);
}

const struct nu_operator nu_op_flat_map = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "flat_map",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "explode an array column into one row per element",
    .validate = nu_flat_map_validate,
    .schema = nu_flat_map_schema,
    .open = nu_flat_map_open,
    .process = nu_flat_map_process,
    .close = nu_flat_map_close,
};
