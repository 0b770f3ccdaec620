/*
 * op_batch.c — the `batch` transform: re-split each input batch into batches of at most
 * {"rows": N} rows or about {"bytes": B} bytes.
 *
 * Splitting happens within one input batch only: one input split of n rows gives ceil(n/N)
 * output splits (none for an empty one), so outputs are a pure function of their input split
 * and exactly-once holds without state. With "bytes", a batch is closed before the row that
 * would take it past B (rough sizes, nu_value_size); a single row larger than B goes alone.
 * Combining small splits across inputs needs keyed state and is not done here.
 */
#include "operators/builtin.h"

#include "common/mem.h"

#include <stdlib.h>

#define NU_BATCH_MAX_ROWS  10000000LL
#define NU_BATCH_MAX_BYTES (1LL << 31)

struct nu_batcher {
    long long rows;  /* 0 when splitting by bytes */
    long long bytes; /* 0 when splitting by rows */
};

static const char *const nu_batch_fields[] = {"rows", "bytes"};

static void nu_batch_parse(const json_t *config, const char *path, struct nu_problems *p,
                           struct nu_batcher *c)
{
    struct nu_json_path jp;
    bool has_rows, has_bytes;

    c->rows = c->bytes = 0;
    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_batch_fields, 2, &jp, p);
    has_rows = json_object_get(config, "rows") != NULL;
    has_bytes = json_object_get(config, "bytes") != NULL;
    if (has_rows == has_bytes) {
        nu_problems_add(p, jp.buf, "exactly one of \"rows\" and \"bytes\" must be given");
        return;
    }
    if (has_rows)
        nu_builtin_get_int(config, "rows", 1, NU_BATCH_MAX_ROWS, true, 0, &jp, p, &c->rows);
    else
        nu_builtin_get_int(config, "bytes", 1, NU_BATCH_MAX_BYTES, true, 0, &jp, p, &c->bytes);
}

static void nu_batch_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_batcher c;
    nu_batch_parse(config, path, p, &c);
}

static nu_err_t nu_batch_schema(const json_t *config, const struct nu_schema *in, const char *path,
                                struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "batch needs an input schema");
    *out = nu_schema_ref((struct nu_schema *)in);
    return NU_OK;
}

static nu_err_t nu_batch_open(const struct nu_op_open_args *args, void **state,
                              struct nu_errbuf *eb)
{
    struct nu_batcher *c = NULL;
    struct nu_problems p;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_batch, args->config, eb);
    if (rc != NU_OK)
        return rc;
    c = nu_xcalloc(1, sizeof(*c));
    nu_problems_init(&p);
    nu_batch_parse(args->config, "$", &p, c);
    nu_problems_free(&p);
    *state = c;
    return NU_OK;
}

static size_t nu_batch_row_size(const struct nu_batch *in, size_t r)
{
    const struct nu_value *row = nu_batch_row(in, r);
    size_t n = 0;
    for (size_t c = 0; c < in->schema->ncols; c++)
        n += nu_value_size(&row[c]);
    return n;
}

static nu_err_t nu_batch_process(void *state, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_batch *in, const struct nu_op_emit *out,
                                 struct nu_errbuf *eb)
{
    const struct nu_batcher *c = state;
    struct nu_batch *cur = NULL;
    size_t cur_bytes = 0;
    nu_err_t rc = NU_OK;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"batch\" got no input batch");
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        size_t sz = c->bytes ? nu_batch_row_size(in, r) : 0;
        bool full =
            cur && (c->rows ? cur->nrows >= (size_t)c->rows : cur_bytes + sz > (size_t)c->bytes);
        if (full) {
            rc = nu_op_emit_batch(out, cur, eb);
            cur = NULL;
            if (rc != NU_OK)
                break;
        }
        if (!cur) {
            size_t left = in->nrows - r;
            size_t hint = c->rows && (size_t)c->rows < left ? (size_t)c->rows : left;
            cur = nu_batch_new(in->schema, c->rows ? hint : 16);
            cur_bytes = 0;
        }
        nu_builtin_copy_row(cur, in, r);
        cur_bytes += sz;
    }
    if (cur && rc == NU_OK)
        rc = nu_op_emit_batch(out, cur, eb);
    else
        nu_batch_destroy(cur);
    return rc;
}

static void nu_batch_close(void *state)
{
    free(state);
}

const struct nu_operator nu_op_batch = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "batch",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "re-split each input batch into batches of at most N rows or about B bytes",
    .validate = nu_batch_validate,
    .schema = nu_batch_schema,
    .open = nu_batch_open,
    .process = nu_batch_process,
    .close = nu_batch_close,
};
