/*
 * op_media_misc.c — two small media operators:
 *
 *   keep_every_n  {"n": 10, "column": "scene", "offset": 0}  keeps the rows whose value of the
 *                 int64 column (or, without "column", whose position in the split) is offset
 *                 modulo n; rows with a null value are dropped. Deterministic per split.
 *   hash          {"uri": "uri", "into": "sha256"}  the SHA-256 (hex) of the blob each row
 *                 refers to, written into column `into` (replaced when it exists as a string
 *                 column, appended otherwise). Missing or unreadable blobs dead-letter the row.
 */
#include "stage/media_int.h"

#include "common/mem.h"
#include "operators/builtin.h"
#include "stage/connectors_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NU_KEEP_MAX_N 1000000000LL

static const char *const nu_keep_fields[] = {"n", "column", "offset"};

static void nu_keep_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    long long n = 1, off = 0;
    const char *s;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_keep_fields, 3, &jp, p);
    nu_builtin_get_int(config, "n", 1, NU_KEEP_MAX_N, true, 1, &jp, p, &n);
    nu_conn_get_string(config, "column", false, &jp, p, &s);
    if (nu_builtin_get_int(config, "offset", 0, NU_KEEP_MAX_N, false, 0, &jp, p, &off) &&
        off >= n) {
        size_t mark = nu_json_path_push_key(&jp, "offset");
        nu_problems_add(p, jp.buf, "must be less than n (%lld)", n);
        nu_json_path_pop(&jp, mark);
    }
}

static nu_err_t nu_keep_schema(const json_t *config, const struct nu_schema *in, const char *path,
                               struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    const json_t *c = json_object_get(config, "column");
    nu_err_t rc;
    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "keep_every_n needs an input schema");
    if (json_is_string(c)) {
        rc = nu_media_expect_column(in, json_string_value(c), NU_T_INT64, "keep_every_n", path, p,
                                    eb);
        if (rc != NU_OK)
            return rc;
    }
    *out = nu_schema_ref((struct nu_schema *)in);
    return NU_OK;
}

static nu_err_t nu_keep_open(const struct nu_op_open_args *a, void **state, struct nu_errbuf *eb)
{
    return nu_media_op_open(&nu_op_keep_every_n, a->config, (struct nu_media_op **)state, eb);
}

static nu_err_t nu_keep_process(void *state, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_media_op *m = state;
    struct nu_batch *b;
    long col = -1;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"keep_every_n\" got no input batch");
    if (m->column) {
        col = nu_schema_find(in->schema, m->column);
        if (col < 0 || in->schema->cols[col].type != NU_T_INT64)
            return nu_err_set(eb, NU_ERR_SCHEMA, "keep_every_n: no int64 input column \"%s\"",
                              m->column);
    }
    b = nu_batch_new(in->schema, in->nrows / (size_t)m->n + 1);
    for (size_t i = 0; i < in->nrows; i++) {
        int64_t k = (int64_t)i;
        if (col >= 0) {
            const struct nu_value *v = &nu_batch_row(in, i)[col];
            if (v->type != NU_T_INT64)
                continue;
            k = v->u.i;
        }
        if (((k % m->n) + m->n) % m->n == m->offset)
            nu_media_copy_row(b, in, i);
    }
    if (b->nrows == 0) {
        nu_batch_destroy(b);
        return NU_OK;
    }
    return nu_op_emit_batch(out, b, eb);
}

const struct nu_operator nu_op_keep_every_n = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "keep_every_n",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "keep every n-th row (by position in the split or by an int64 column)",
    .validate = nu_keep_validate,
    .schema = nu_keep_schema,
    .open = nu_keep_open,
    .process = nu_keep_process,
    .close = nu_media_op_close,
};

static const char *const nu_hash_fields[] = {"uri", "into", "max_bytes"};

static void nu_hash_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const char *s;
    long long ll;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_hash_fields, 3, &jp, p);
    nu_conn_get_string(config, "uri", false, &jp, p, &s);
    nu_conn_get_string(config, "into", false, &jp, p, &s);
    nu_builtin_get_int(config, "max_bytes", 1, NU_MEDIA_MAX_BYTES, false, NU_MEDIA_MAX_BYTES, &jp,
                       p, &ll);
}

static const char *nu_hash_into(const json_t *config)
{
    const json_t *v = json_object_get(config, "into");
    return json_is_string(v) ? json_string_value(v) : "sha256";
}

static nu_err_t nu_hash_schema(const json_t *config, const struct nu_schema *in, const char *path,
                               struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    const json_t *u = json_object_get(config, "uri");
    const char *into = nu_hash_into(config);
    static const nu_type_t t[] = {NU_T_STRING};
    static const bool z[] = {false};
    long c;
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "hash needs an input schema");
    rc = nu_media_expect_column(in, json_is_string(u) ? json_string_value(u) : "uri", NU_T_STRING,
                                "hash", path, p, eb);
    if (rc != NU_OK)
        return rc;
    c = nu_schema_find(in, into);
    if (c >= 0) {
        if (in->cols[c].type != NU_T_STRING)
            return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                    "hash: column \"%s\" exists and is not a string", into);
        *out = nu_schema_ref((struct nu_schema *)in);
        return NU_OK;
    }
    return nu_media_schema_extend(in, &into, t, z, 1, "hash", path, p, out, eb);
}

static nu_err_t nu_hash_open(const struct nu_op_open_args *a, void **state, struct nu_errbuf *eb)
{
    struct nu_media_op *m = NULL;
    nu_err_t rc = nu_media_op_open(&nu_op_hash, a->config, &m, eb);
    if (rc == NU_OK && !m->into)
        m->into = nu_xstrdup("sha256");
    *state = m;
    return rc;
}

static nu_err_t nu_hash_process(void *state, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_media_op *m = state;
    struct nu_schema *os = NULL;
    struct nu_batch *b = NULL;
    json_t *cfg;
    long ucol, hcol;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"hash\" got no input batch");
    cfg = json_pack("{ssss}", "uri", m->uri_col, "into", m->into);
    rc = nu_hash_schema(cfg, in->schema, "$", NULL, &os, eb);
    json_decref(cfg);
    if (rc != NU_OK)
        return rc;
    ucol = nu_schema_find(in->schema, m->uri_col);
    hcol = nu_schema_find(os, m->into);
    b = nu_batch_new(os, in->nrows);
    nu_schema_unref(os);
    for (size_t i = 0; rc == NU_OK && i < in->nrows; i++) {
        struct nu_errbuf ie;
        const char *uri = nu_media_row_str(ctx->scratch, in, i, ucol);
        char *path = NULL, hex[65];
        bool temp = false;
        int64_t size;
        nu_err_t r;

        nu_errbuf_clear(&ie);
        r = uri ? nu_media_fetch(m, uri, &path, &temp, &ie)
                : nu_err_set(&ie, NU_ERR_INVALID, "hash: column \"%s\" is null", m->uri_col);
        if (r == NU_OK)
            r = nu_media_hash_file(path, hex, &size, &ie);
        if (r == NU_OK) {
            struct nu_value *row = nu_media_copy_row(b, in, i);
            row[hcol] = nu_batch_str(b, NU_T_STRING, hex, 64);
        } else {
            rc = nu_media_item_error(ctx, in, i, r, &ie, eb);
        }
        if (temp)
            unlink(path);
        free(path);
    }
    if (rc == NU_OK && b->nrows > 0)
        return nu_op_emit_batch(out, b, eb);
    nu_batch_destroy(b);
    return rc;
}

const struct nu_operator nu_op_hash = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "hash",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "SHA-256 of the blob each row refers to (file:// or s3://)",
    .validate = nu_hash_validate,
    .schema = nu_hash_schema,
    .open = nu_hash_open,
    .process = nu_hash_process,
    .close = nu_media_op_close,
};
