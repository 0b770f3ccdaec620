/*
 * upper.c — an example operator plugin: "upper" upper-cases one string column.
 *
 * Config {"column": "name"}: the column must exist and be a string (nullable or not); ASCII
 * letters a-z become A-Z, every other byte (UTF-8 sequences included) is kept, nulls stay null.
 * The output schema is the input schema.
 *
 * Built by CMake as a MODULE library (examples/plugins/upper/CMakeLists.txt) into
 * <build>/lib/plugins/upper.so; a job loads it with
 *     {"id": "up", "operator": "upper", "plugin": "build/lib/plugins/upper.so",
 *      "config": {"column": "payload"}, "upstream": ["src"]}
 * It exports one symbol, nurion_operators(), and calls nu_* functions of the nurion executable
 * that loads it (which exports them); it links nothing of nurion itself.
 */
#include "nurion/operator.h"

#include <stdlib.h>
#include <string.h>

struct upper_state {
    char *column; /* the configured column name (owned) */
};

/* Structural checks: an object with one string field "column". */
static void upper_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    const json_t *v;
    const char *key;
    json_t *item;

    if (!json_is_object(config)) {
        nu_problems_add(p, path, "expected an object such as {\"column\": \"name\"}");
        return;
    }
    json_object_foreach((json_t *)config, key, item)
    {
        if (strcmp(key, "column") != 0)
            nu_problems_add(p, path, "unknown field \"%s\"", key);
    }
    v = json_object_get(config, "column");
    if (!v)
        nu_problems_add(p, path, "missing field \"column\"");
    else if (!json_is_string(v) || json_string_length(v) == 0)
        nu_problems_add(p, path, "field \"column\" must be a non-empty string");
}

/* Position of the configured column in `in`, or a type error (reported at `path`). */
static nu_err_t upper_find(const char *column, const struct nu_schema *in, const char *path,
                           struct nu_problems *p, size_t *at, struct nu_errbuf *eb)
{
    long i = in ? nu_schema_find(in, column) : -1;
    const char *why = NULL;

    if (i < 0)
        why = "is not a column of the input";
    else if (in->cols[i].type != NU_T_STRING)
        why = "is not a string column";
    if (why) {
        if (p)
            nu_problems_add(p, path, "column \"%s\" %s", column, why);
        return nu_err_set(eb, NU_ERR_TYPE, "%s: column \"%s\" %s", path, column, why);
    }
    *at = (size_t)i;
    return NU_OK;
}

static nu_err_t upper_schema(const json_t *config, const struct nu_schema *in, const char *path,
                             struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    size_t at;
    nu_err_t rc;

    *out = NULL;
    rc = upper_find(json_string_value(json_object_get(config, "column")), in, path, p, &at, eb);
    if (rc == NU_OK)
        *out = nu_schema_ref((struct nu_schema *)in); /* same columns, same types */
    return rc;
}

static void upper_close(void *state)
{
    struct upper_state *st = state;
    if (st)
        free(st->column);
    free(st);
}

static nu_err_t upper_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    struct nu_problems p;
    struct upper_state *st;
    nu_err_t rc = NU_OK;

    *state = NULL;
    nu_problems_init(&p);
    upper_validate(args->config, "$", &p);
    if (p.n > 0)
        rc = nu_err_set(eb, NU_ERR_CONFIG, "invalid configuration of operator \"upper\": %s",
                        p.items[0].message);
    nu_problems_free(&p);
    if (rc != NU_OK)
        return rc;
    st = calloc(1, sizeof(*st));
    if (st)
        st->column = strdup(json_string_value(json_object_get(args->config, "column")));
    if (!st || !st->column) {
        upper_close(st);
        return nu_err_set(eb, NU_ERR_SYSTEM, "upper: out of memory");
    }
    *state = st;
    return NU_OK;
}

static nu_err_t upper_process(void *state, const struct nu_op_batch_ctx *ctx,
                              const struct nu_batch *in, const struct nu_op_emit *out,
                              struct nu_errbuf *eb)
{
    struct upper_state *st = state;
    struct nu_batch *b;
    size_t at = 0, ncols;
    nu_err_t rc;

    /* the input schema was checked at validation; a batch of another schema is refused */
    rc = upper_find(st->column, in ? in->schema : NULL, "upper", NULL, &at, eb);
    if (rc != NU_OK)
        return rc;
    ncols = in->schema->ncols;
    b = nu_batch_new(in->schema, in->nrows);
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *src = nu_batch_row(in, r);
        struct nu_value *dst = nu_batch_add_row(b);
        for (size_t c = 0; c < ncols; c++)
            dst[c] = nu_batch_copy_value(b, &src[c]); /* the output owns its memory */
        if (dst[at].type == NU_T_STRING) {
            char *s = (char *)dst[at].u.s.ptr; /* our own copy, in b's arena */
            for (size_t k = 0; k < dst[at].u.s.len; k++)
                if (s[k] >= 'a' && s[k] <= 'z')
                    s[k] = (char)(s[k] - 'a' + 'A');
        }
    }
    return nu_op_emit_batch(out, b, eb); /* b now belongs to the runtime */
}

static const struct nu_operator upper_operator = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "upper",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "upper-case the ASCII letters of one string column",
    .validate = upper_validate,
    .schema = upper_schema,
    .open = upper_open,
    .process = upper_process,
    .close = upper_close,
};

/* The entry point: the operators of this plugin. The array lives as long as the process. */
const struct nu_operator *const *nurion_operators(size_t *n)
{
    static const struct nu_operator *const ops[] = {&upper_operator};
    *n = sizeof(ops) / sizeof(ops[0]);
    return ops;
}
