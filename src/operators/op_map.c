/*
 * op_map.c — the `map` transform: computed columns, projection and renaming.
 *
 * Config {"columns": {"y": "id * 2", …}, "select": ["a", …], "drop": ["b", …],
 * "rename": {"old": "new", …}}, every key optional ({} is the identity). Applied in this order:
 * columns (each expression sees the input columns only; a name that exists is replaced in place,
 * a new one is appended, in config order), then select (keep these, in this order), drop, rename.
 * Expressions are compiled once against the input schema (at open when it is known, else at the
 * first batch, and again only when a batch comes with a different schema); their types fix the
 * output schema, so type errors surface at schema()/validation, never per row.
 * A plan that only copies every column in place (as {} does) declares passes_rows, so the
 * runtime may hand such splits on as they are instead of copying and re-encoding every row.
 */
#include "operators/builtin.h"

#include "operators/expr.h"

#include "common/mem.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* A compiled map: for each output column, an input column (>= 0) or expression -1-k. */
struct nu_map_plan {
    struct nu_schema *in, *out;
    long *src;
    size_t nexprs;
    nu_expr_t **exprs;
};

struct nu_map {
    json_t *config; /* owned deep copy */
    struct nu_map_plan plan;
    bool ready;
};

struct nu_map_col {
    const char *name; /* borrowed from the config or the input schema */
    long src;
    struct nu_field f;
};

static const char *const nu_map_fields[] = {"columns", "select", "drop", "rename"};

static void nu_map_check_name(const char *name, const struct nu_json_path *jp,
                              struct nu_problems *p)
{
    size_t len = strlen(name);
    if (len == 0 || len > NU_MAX_NAME_LEN)
        nu_problems_add(p, jp->buf, "column name must be 1 to %d bytes", NU_MAX_NAME_LEN);
}

/* "select"/"drop": an array of column names. */
static void nu_map_validate_names(const json_t *v, struct nu_json_path *jp, struct nu_problems *p)
{
    size_t i;
    const json_t *item;

    if (!json_is_array(v)) {
        nu_problems_add(p, jp->buf, "expected an array of column names, got %s",
                        nu_json_type_name(v));
        return;
    }
    if (json_array_size(v) > NU_MAX_COLUMNS) {
        nu_problems_add(p, jp->buf, "more than %d column names", NU_MAX_COLUMNS);
        return;
    }
    json_array_foreach(v, i, item)
    {
        size_t mark = nu_json_path_push_index(jp, i);
        if (!json_is_string(item))
            nu_problems_add(p, jp->buf, "expected a column name, got %s", nu_json_type_name(item));
        else
            nu_map_check_name(json_string_value(item), jp, p);
        nu_json_path_pop(jp, mark);
    }
}

/* "columns" (values are expressions) or "rename" (values are names). */
static void nu_map_validate_object(const json_t *v, bool exprs, struct nu_json_path *jp,
                                   struct nu_problems *p)
{
    const char *k;
    json_t *item;

    if (!json_is_object(v)) {
        nu_problems_add(p, jp->buf, "expected an object, got %s", nu_json_type_name(v));
        return;
    }
    if (json_object_size(v) > NU_MAX_COLUMNS) {
        nu_problems_add(p, jp->buf, "more than %d entries", NU_MAX_COLUMNS);
        return;
    }
    json_object_foreach((json_t *)v, k, item)
    {
        size_t mark = nu_json_path_push_key(jp, k);
        nu_map_check_name(k, jp, p);
        if (!json_is_string(item))
            nu_problems_add(p, jp->buf, "expected %s, got %s",
                            exprs ? "an expression string" : "a column name",
                            nu_json_type_name(item));
        else if (exprs && json_string_length(item) == 0)
            nu_problems_add(p, jp->buf, "expression is empty");
        else if (exprs && json_string_length(item) > NU_EXPR_MAX_LEN)
            nu_problems_add(p, jp->buf, "expression is longer than %d bytes", NU_EXPR_MAX_LEN);
        else if (!exprs)
            nu_map_check_name(json_string_value(item), jp, p);
        nu_json_path_pop(jp, mark);
    }
}

static void nu_map_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_map_fields, 4, &jp, p);
    if ((v = json_object_get(config, "columns"))) {
        mark = nu_json_path_push_key(&jp, "columns");
        nu_map_validate_object(v, true, &jp, p);
        nu_json_path_pop(&jp, mark);
    }
    if ((v = json_object_get(config, "select"))) {
        mark = nu_json_path_push_key(&jp, "select");
        nu_map_validate_names(v, &jp, p);
        nu_json_path_pop(&jp, mark);
    }
    if ((v = json_object_get(config, "drop"))) {
        mark = nu_json_path_push_key(&jp, "drop");
        nu_map_validate_names(v, &jp, p);
        nu_json_path_pop(&jp, mark);
    }
    if ((v = json_object_get(config, "rename"))) {
        mark = nu_json_path_push_key(&jp, "rename");
        nu_map_validate_object(v, false, &jp, p);
        nu_json_path_pop(&jp, mark);
    }
}

static void nu_map_plan_free(struct nu_map_plan *pl)
{
    nu_schema_unref(pl->in);
    nu_schema_unref(pl->out);
    for (size_t i = 0; i < pl->nexprs; i++)
        nu_expr_destroy(pl->exprs[i]);
    free(pl->exprs);
    free(pl->src);
    memset(pl, 0, sizeof(*pl));
}

static long nu_map_find(const struct nu_map_col *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void nu_map_remove(struct nu_map_col *cols, size_t *n, size_t i)
{
    nu_field_free(&cols[i].f);
    memmove(&cols[i], &cols[i + 1], (*n - i - 1) * sizeof(*cols));
    (*n)--;
}

/* Apply "select": keep the listed columns in the listed order. */
static nu_err_t nu_map_select(const json_t *sel, struct nu_map_col *cols, size_t *n,
                              struct nu_json_path *jp, struct nu_problems *p, struct nu_errbuf *eb)
{
    size_t nsel = json_array_size(sel), k = 0, i;
    struct nu_map_col *kept = nu_xcalloc(nsel ? nsel : 1, sizeof(*kept));
    const json_t *item;
    nu_err_t rc = NU_OK;

    json_array_foreach(sel, i, item)
    {
        const char *name = json_string_value(item);
        long at = nu_map_find(cols, *n, name);
        size_t mark = nu_json_path_push_index(jp, i);
        if (at < 0)
            rc = nu_builtin_fault(p, eb, NU_ERR_TYPE, jp->buf, "unknown column \"%s\"", name);
        else if (nu_map_find(kept, k, name) >= 0)
            rc = nu_builtin_fault(p, eb, NU_ERR_CONFIG, jp->buf, "column \"%s\" selected twice",
                                  name);
        else {
            kept[k] = cols[at];
            nu_field_copy(&kept[k].f, &cols[at].f);
            k++;
        }
        nu_json_path_pop(jp, mark);
    }
    for (i = 0; i < *n; i++)
        nu_field_free(&cols[i].f);
    memcpy(cols, kept, k * sizeof(*cols));
    *n = k;
    free(kept);
    return rc;
}

/*
 * Build the plan of `cfg` over input schema `in`. Every fault is reported (p may be NULL); the
 * first one is returned.
 */
static nu_err_t nu_map_build(const json_t *cfg, const struct nu_schema *in, const char *path,
                             struct nu_problems *p, struct nu_map_plan *pl, struct nu_errbuf *eb)
{
    const json_t *columns = json_object_get(cfg, "columns");
    const json_t *drop = json_object_get(cfg, "drop"), *rename = json_object_get(cfg, "rename");
    size_t ncap = in->ncols + json_object_size(columns) + 1, n = 0, i, mark;
    struct nu_map_col *cols = nu_xcalloc(ncap, sizeof(*cols));
    struct nu_json_path jp;
    const char *k;
    json_t *v;
    nu_err_t rc = NU_OK, r;

    memset(pl, 0, sizeof(*pl));
    nu_builtin_path_init(&jp, path);
    for (; n < in->ncols; n++) {
        cols[n].name = in->cols[n].name ? in->cols[n].name : "";
        cols[n].src = (long)n;
        nu_field_copy(&cols[n].f, &in->cols[n]);
    }
    pl->exprs = nu_xcalloc(json_object_size(columns) + 1, sizeof(*pl->exprs));
    mark = nu_json_path_push_key(&jp, "columns");
    json_object_foreach((json_t *)columns, k, v)
    {
        struct nu_errbuf xeb;
        nu_expr_t *e = NULL;
        size_t m = nu_json_path_push_key(&jp, k);
        long at;
        nu_errbuf_clear(&xeb);
        if (nu_expr_compile(json_string_value(v), in, &e, &xeb) != NU_OK) {
            r = nu_builtin_fault(p, eb, xeb.code, jp.buf, "%s", nu_err_msg(&xeb));
            rc = rc ? rc : r;
        } else {
            pl->exprs[pl->nexprs] = e;
            at = nu_map_find(cols, n, k);
            if (at < 0)
                at = (long)n++;
            nu_field_free(&cols[at].f);
            cols[at].name = k;
            cols[at].src = -1 - (long)pl->nexprs++;
            cols[at].f.type = nu_expr_type(e);
            cols[at].f.nullable = nu_expr_nullable(e) || nu_expr_type(e) == NU_T_NULL;
        }
        nu_json_path_pop(&jp, m);
    }
    nu_json_path_pop(&jp, mark);
    if ((v = json_object_get(cfg, "select"))) {
        mark = nu_json_path_push_key(&jp, "select");
        r = nu_map_select(v, cols, &n, &jp, p, eb);
        rc = rc ? rc : r;
        nu_json_path_pop(&jp, mark);
    }
    mark = nu_json_path_push_key(&jp, "drop");
    json_array_foreach(drop, i, v)
    {
        size_t m = nu_json_path_push_index(&jp, i);
        long at = nu_map_find(cols, n, json_string_value(v));
        if (at < 0) {
            r = nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "unknown column \"%s\"",
                                 json_string_value(v));
            rc = rc ? rc : r;
        } else {
            nu_map_remove(cols, &n, (size_t)at);
        }
        nu_json_path_pop(&jp, m);
    }
    nu_json_path_pop(&jp, mark);
    mark = nu_json_path_push_key(&jp, "rename");
    json_object_foreach((json_t *)rename, k, v)
    {
        size_t m = nu_json_path_push_key(&jp, k);
        long at = nu_map_find(cols, n, k);
        if (at < 0) {
            r = nu_builtin_fault(p, eb, NU_ERR_TYPE, jp.buf, "unknown column \"%s\"", k);
            rc = rc ? rc : r;
        } else if (strcmp(k, json_string_value(v)) != 0 &&
                   nu_map_find(cols, n, json_string_value(v)) >= 0) {
            r = nu_builtin_fault(p, eb, NU_ERR_CONFIG, jp.buf,
                                 "cannot rename \"%s\" to \"%s\": a column of that name exists", k,
                                 json_string_value(v));
            rc = rc ? rc : r;
        } else {
            cols[at].name = json_string_value(v);
        }
        nu_json_path_pop(&jp, m);
    }
    nu_json_path_pop(&jp, mark);
    if (rc == NU_OK && n > NU_MAX_COLUMNS)
        rc = nu_builtin_fault(p, eb, NU_ERR_CONFIG, jp.buf, "output has more than %d columns",
                              NU_MAX_COLUMNS);
    if (rc == NU_OK) {
        pl->in = nu_schema_ref((struct nu_schema *)in);
        pl->out = nu_schema_new(n);
        pl->src = nu_xcalloc(n ? n : 1, sizeof(*pl->src));
        for (i = 0; i < n; i++) {
            nu_schema_set(pl->out, i, cols[i].name, cols[i].f.type, cols[i].f.nullable,
                          cols[i].f.item);
            pl->src[i] = cols[i].src;
        }
    }
    for (i = 0; i < n; i++)
        nu_field_free(&cols[i].f);
    free(cols);
    if (rc != NU_OK)
        nu_map_plan_free(pl);
    return rc;
}

static nu_err_t nu_map_schema(const json_t *config, const struct nu_schema *in, const char *path,
                              struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    struct nu_map_plan pl;
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "map needs an input schema");
    rc = nu_map_build(config, in, path, p, &pl, eb);
    if (rc == NU_OK) {
        *out = nu_schema_ref(pl.out);
        nu_map_plan_free(&pl);
    }
    return rc;
}

static void nu_map_close(void *state)
{
    struct nu_map *m = state;
    if (!m)
        return;
    nu_map_plan_free(&m->plan);
    json_decref(m->config);
    free(m);
}

/* Make the plan match `in` (compiling when it is new). */
static nu_err_t nu_map_prepare(struct nu_map *m, const struct nu_schema *in, struct nu_errbuf *eb)
{
    nu_err_t rc;

    if (m->ready && nu_schema_equal(m->plan.in, in))
        return NU_OK;
    nu_map_plan_free(&m->plan);
    m->ready = false;
    rc = nu_map_build(m->config, in, "$", NULL, &m->plan, eb);
    if (rc == NU_OK)
        m->ready = true;
    else
        nu_err_prefix(eb, "map: ");
    return rc;
}

static nu_err_t nu_map_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    struct nu_map *m = NULL;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_map, args->config, eb);
    if (rc != NU_OK)
        goto fail;
    m = nu_xcalloc(1, sizeof(*m));
    m->config = json_deep_copy(args->config);
    if (!m->config) {
        rc = nu_err_set(eb, NU_ERR_INTERNAL, "map: could not copy the configuration");
        goto fail;
    }
    if (args->in) {
        rc = nu_map_prepare(m, args->in, eb);
        if (rc != NU_OK)
            goto fail;
    }
    *state = m;
    return NU_OK;
fail:
    nu_map_close(m);
    return rc;
}

static nu_err_t nu_map_process(void *state, const struct nu_op_batch_ctx *ctx,
                               const struct nu_batch *in, const struct nu_op_emit *out,
                               struct nu_errbuf *eb)
{
    struct nu_map *m = state;
    struct nu_batch *ob = NULL;
    nu_arena_t *scratch;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"map\" got no input batch");
    rc = nu_map_prepare(m, in->schema, eb);
    if (rc != NU_OK)
        return rc;
    ob = nu_batch_new(m->plan.out, in->nrows);
    scratch = ctx && ctx->scratch ? ctx->scratch : ob->arena;
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        struct nu_value *dst = nu_batch_add_row(ob);
        for (size_t c = 0; c < m->plan.out->ncols; c++) {
            long s = m->plan.src[c];
            struct nu_value v;
            if (s >= 0) {
                dst[c] = nu_batch_copy_value(ob, &row[s]);
                continue;
            }
            rc = nu_expr_eval(m->plan.exprs[-1 - s], row, scratch, &v, eb);
            if (rc == NU_ERR_EVAL && nu_builtin_can_reject(ctx)) {
                /* a poison row: dead-letter it alone, the rest of the split goes on */
                char prefix[NU_MAX_NAME_LEN + 32];
                snprintf(prefix, sizeof(prefix), "map: column \"%s\"", m->plan.out->cols[c].name);
                ob->nrows--;
                rc = nu_builtin_reject_row(ctx, in, r, prefix, eb);
                if (rc != NU_OK) {
                    nu_batch_destroy(ob);
                    return rc;
                }
                break;
            }
            if (rc != NU_OK) {
                nu_err_prefix(eb, "map: column \"%s\", row %zu: ", m->plan.out->cols[c].name, r);
                nu_batch_destroy(ob);
                return rc;
            }
            dst[c] = nu_batch_copy_value(ob, &v);
        }
    }
    return nu_op_emit_batch(out, ob, eb);
}

/* The plan for `in` copies every input column to the same place under the same name: process()
 * would only copy the batch. A schema the plan cannot be built for is not passed. */
static bool nu_map_passes_rows(void *state, const struct nu_schema *in)
{
    struct nu_map *m = state;
    struct nu_errbuf eb;

    nu_errbuf_clear(&eb);
    if (!in || nu_map_prepare(m, in, &eb) != NU_OK || m->plan.nexprs > 0 ||
        !nu_schema_equal(m->plan.out, in))
        return false;
    for (size_t c = 0; c < m->plan.out->ncols; c++)
        if (m->plan.src[c] != (long)c)
            return false;
    return true;
}

const struct nu_operator nu_op_map = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "map",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "compute columns with expressions; select, drop and rename columns",
    .validate = nu_map_validate,
    .schema = nu_map_schema,
    .open = nu_map_open,
    .process = nu_map_process,
    .close = nu_map_close,
    .passes_rows = nu_map_passes_rows,
};
