/*
 * Tests of the built-in transforms against golden data (golden/transforms.json): each case gives
 * an operator, its config, an input schema and rows, and either the expected output schema and
 * batches or the expected schema-time error (path and message fragment). Types are written
 * "int64", "string?" (nullable), "array<string>".
 */
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

struct collect {
    size_t n;
    struct nu_batch *b[64];
};

static nu_err_t collect_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct collect *c = ctx;
    if (c->n == 64) {
        nu_batch_destroy(b);
        return nu_err_set(eb, NU_ERR_INTERNAL, "too many batches");
    }
    c->b[c->n++] = b;
    return NU_OK;
}

static void collect_free(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        nu_batch_destroy(c->b[i]);
    c->n = 0;
}

/* Parse "array<string?>?" into a field. */
static void parse_type(const char *t, struct nu_field *f)
{
    size_t len = strlen(t);
    memset(f, 0, sizeof(*f));
    if (len && t[len - 1] == '?') {
        f->nullable = true;
        len--;
    }
    if (strncmp(t, "array<", 6) == 0) {
        char inner[64];
        cr_assert_lt(len - 7, sizeof(inner));
        memcpy(inner, t + 6, len - 7);
        inner[len - 7] = '\0';
        f->type = NU_T_ARRAY;
        f->item = calloc(1, sizeof(*f->item));
        parse_type(inner, f->item);
        return;
    }
    static const struct {
        const char *name;
        nu_type_t t;
    } names[] = {{"int64", NU_T_INT64},  {"string", NU_T_STRING}, {"double", NU_T_DOUBLE},
                 {"boolean", NU_T_BOOL}, {"bytes", NU_T_BYTES},   {"null", NU_T_NULL}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len && strncmp(t, names[i].name, len) == 0) {
            f->type = names[i].t;
            return;
        }
    }
    cr_assert_fail("unknown type in golden data: %s", t);
}

static struct nu_schema *schema_from_json(const json_t *arr)
{
    struct nu_schema *s = nu_schema_new(json_array_size(arr));
    size_t i;
    json_t *col;
    json_array_foreach(arr, i, col)
    {
        struct nu_field f;
        parse_type(json_string_value(json_array_get(col, 1)), &f);
        nu_schema_set(s, i, json_string_value(json_array_get(col, 0)), f.type, f.nullable, f.item);
        nu_field_free(&f);
    }
    return s;
}

static struct nu_value value_from_json(struct nu_batch *b, const json_t *j,
                                       const struct nu_field *f)
{
    if (json_is_null(j))
        return nu_value_null();
    switch (f->type) {
    case NU_T_BOOL:
        return nu_value_bool(json_is_true(j));
    case NU_T_INT64:
        return nu_value_int(json_integer_value(j));
    case NU_T_DOUBLE:
        return nu_value_double(json_number_value(j));
    case NU_T_STRING:
    case NU_T_BYTES:
        return nu_batch_str(b, f->type, json_string_value(j), json_string_length(j));
    case NU_T_ARRAY: {
        struct nu_value v = {.type = NU_T_ARRAY};
        v.u.arr.n = json_array_size(j);
        v.u.arr.items = nu_batch_alloc(b, (v.u.arr.n + 1) * sizeof(struct nu_value));
        for (size_t i = 0; i < v.u.arr.n; i++)
            v.u.arr.items[i] = value_from_json(b, json_array_get(j, i), f->item);
        return v;
    }
    default:
        cr_assert_fail("type not supported in golden data");
    }
    return nu_value_null();
}

static struct nu_batch *batch_from_json(struct nu_schema *s, const json_t *rows)
{
    struct nu_batch *b = nu_batch_new(s, json_array_size(rows));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        struct nu_value *dst = nu_batch_add_row(b);
        cr_assert_eq(json_array_size(row), s->ncols, "golden row %zu has a wrong width", i);
        for (size_t c = 0; c < s->ncols; c++)
            dst[c] = value_from_json(b, json_array_get(row, c), &s->cols[c]);
    }
    return b;
}

static void run_case(const json_t *tc)
{
    const char *name = json_string_value(json_object_get(tc, "name"));
    const json_t *config = json_object_get(tc, "config");
    const json_t *err = json_object_get(tc, "schema_error");
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    struct nu_problems p;
    struct nu_schema *in = schema_from_json(json_object_get(tc, "schema")), *out = NULL;

    nu_errbuf_clear(&eb);
    nu_problems_init(&p);
    cr_assert_eq(nu_registry_find(json_string_value(json_object_get(tc, "op")), NULL, &op, &eb),
                 NU_OK, "%s: %s", name, nu_err_msg(&eb));
    op->validate(config, "$", &p);
    cr_assert_eq(p.n, 0, "%s: config problem %s", name, p.n ? p.items[0].message : "");
    nu_err_t rc = op->schema(config, in, "$", &p, &out, &eb);
    if (err) {
        cr_assert_neq(rc, NU_OK, "%s: schema() should fail", name);
        cr_assert_null(out);
        cr_assert_geq(p.n, 1, "%s", name);
        cr_assert_str_eq(p.items[0].path, json_string_value(json_object_get(err, "path")), "%s",
                         name);
        cr_assert(strstr(p.items[0].message, json_string_value(json_object_get(err, "msg"))),
                  "%s: %s", name, p.items[0].message);
        /* open() with the same input schema refuses as well */
        struct nu_op_open_args args = {.config = config, .in = in, .job_id = "j", .stage_id = "s"};
        void *state = (void *)1;
        cr_assert_neq(op->open(&args, &state, &eb), NU_OK, "%s", name);
        cr_assert_null(state);
        goto done;
    }
    cr_assert_eq(rc, NU_OK, "%s: %s", name, nu_err_msg(&eb));
    struct nu_schema *want = schema_from_json(json_object_get(tc, "out_schema"));
    cr_assert(nu_schema_equal(out, want), "%s: derived schema differs", name);

    /* Run twice: opened with the input schema, and with it unknown until the first batch. */
    for (int pass = 0; pass < 2; pass++) {
        struct nu_op_open_args args = {
            .config = config, .in = pass ? NULL : in, .job_id = "j", .stage_id = "s"};
        void *state = NULL;
        cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s: %s", name, nu_err_msg(&eb));
        struct nu_batch *ib = batch_from_json(in, json_object_get(tc, "rows"));
        struct collect col = {0};
        struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
        nu_arena_t *scratch = nu_arena_new(0);
        struct nu_op_batch_ctx ctx = {.split_id = "s-1", .attempt = 1, .scratch = scratch};
        cr_assert_eq(op->process(state, &ctx, ib, &emit, &eb), NU_OK, "%s: %s", name,
                     nu_err_msg(&eb));
        /* outputs must not point into the input: destroy it before comparing */
        nu_batch_destroy(ib);
        nu_arena_destroy(scratch);
        const json_t *expect = json_object_get(tc, "out");
        cr_assert_eq(col.n, json_array_size(expect), "%s: %zu batches", name, col.n);
        for (size_t k = 0; k < col.n; k++) {
            cr_assert(nu_schema_equal(col.b[k]->schema, want), "%s: batch schema", name);
            struct nu_batch *eb_rows = batch_from_json(want, json_array_get(expect, k));
            cr_assert_eq(col.b[k]->nrows, eb_rows->nrows, "%s: batch %zu has %zu rows", name, k,
                         col.b[k]->nrows);
            for (size_t r = 0; r < eb_rows->nrows; r++)
                for (size_t c = 0; c < want->ncols; c++)
                    cr_assert(
                        nu_value_equal(&nu_batch_row(col.b[k], r)[c], &nu_batch_row(eb_rows, r)[c]),
                        "%s: batch %zu row %zu column %zu differs", name, k, r, c);
            nu_batch_destroy(eb_rows);
        }
        collect_free(&col);
        op->close(state);
    }
    nu_schema_unref(want);
done:
    nu_schema_unref(out);
    nu_schema_unref(in);
    nu_problems_free(&p);
}

Test(transforms, golden_cases)
{
    json_error_t jerr;
    json_t *cases =
        json_load_file(NU_SOURCE_DIR "/tests/unit/operators/golden/transforms.json", 0, &jerr);
    cr_assert_not_null(cases, "golden file: %s at line %d", jerr.text, jerr.line);
    cr_assert_geq(json_array_size(cases), 15);
    size_t i;
    json_t *tc;
    json_array_foreach(cases, i, tc) run_case(tc);
    json_decref(cases);
}

Test(transforms, map_eval_error_names_column_and_row)
{
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("map", NULL, &op, NULL), NU_OK);
    json_t *cfg = json_pack("{s:{s:s}}", "columns", "q", "10 / id");
    struct nu_schema *in = nu_schema_new(1);
    nu_schema_set(in, 0, "id", NU_T_INT64, false, NULL);
    struct nu_op_open_args args = {.config = cfg, .in = in};
    void *state = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_batch *b = nu_batch_new(in, 2);
    nu_batch_add_row(b)[0] = nu_value_int(5);
    nu_batch_add_row(b)[0] = nu_value_int(0);
    struct collect col = {0};
    struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
    nu_err_t rc = op->process(state, NULL, b, &emit, &eb);
    cr_assert_eq(rc, NU_ERR_EVAL, "%s", nu_err_msg(&eb));
    cr_assert_not(nu_err_retriable(rc));
    cr_assert(strstr(nu_err_msg(&eb), "map: column \"q\", row 1: "), "%s", nu_err_msg(&eb));
    cr_assert_eq(col.n, 0);
    op->close(state);
    nu_batch_destroy(b);
    nu_schema_unref(in);
    json_decref(cfg);
}

Test(transforms, map_recompiles_on_a_new_input_schema)
{
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("map", NULL, &op, NULL), NU_OK);
    json_t *cfg = json_pack("{s:{s:s}}", "columns", "y", "id + 1");
    struct nu_schema *a = nu_schema_new(1), *b2 = nu_schema_new(2);
    nu_schema_set(a, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(b2, 0, "s", NU_T_STRING, false, NULL);
    nu_schema_set(b2, 1, "id", NU_T_INT64, false, NULL);
    struct nu_op_open_args args = {.config = cfg, .in = a};
    void *state = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK);
    struct nu_batch *in = nu_batch_new(b2, 1);
    struct nu_value *row = nu_batch_add_row(in);
    row[0] = nu_batch_str(in, NU_T_STRING, "x", 1);
    row[1] = nu_value_int(41);
    struct collect col = {0};
    struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
    cr_assert_eq(op->process(state, NULL, in, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(col.n, 1);
    cr_assert_eq(nu_batch_row(col.b[0], 0)[2].u.i, 42);
    collect_free(&col);
    op->close(state);
    nu_batch_destroy(in);
    nu_schema_unref(a);
    nu_schema_unref(b2);
    json_decref(cfg);
}

/* map declares passes_rows exactly when process() would copy the batch: when it says so, the
 * one output batch must have an equal schema and the same rows. */
Test(transforms, map_passes_rows_only_for_an_in_place_copy)
{
    static const struct {
        const char *config;
        bool passes;
    } cases[] = {
        {"{}", true},
        {"{\"select\": [\"id\", \"s\"]}", true},
        {"{\"rename\": {\"id\": \"id\"}}", true},
        {"{\"drop\": []}", true},
        {"{\"select\": [\"s\", \"id\"]}", false},
        {"{\"drop\": [\"s\"]}", false},
        {"{\"rename\": {\"id\": \"key\"}}", false},
        {"{\"columns\": {\"id\": \"id\"}}", false},
        {"{\"columns\": {\"y\": \"id * 2\"}}", false},
    };
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("map", NULL, &op, NULL), NU_OK);
    cr_assert_geq(op->abi_version, 2u);
    struct nu_schema *in_s = nu_schema_new(2);
    nu_schema_set(in_s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(in_s, 1, "s", NU_T_STRING, true, NULL);
    struct nu_batch *in = nu_batch_new(in_s, 2);
    struct nu_value *row = nu_batch_add_row(in);
    row[0] = nu_value_int(7);
    row[1] = nu_batch_str(in, NU_T_STRING, "seven", 5);
    row = nu_batch_add_row(in);
    row[0] = nu_value_int(-1);
    row[1] = nu_value_null();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *cfg = json_loads(cases[i].config, 0, NULL);
        cr_assert_not_null(cfg);
        struct nu_op_open_args args = {.config = cfg, .in = NULL};
        void *state = NULL;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s: %s", cases[i].config,
                     nu_err_msg(&eb));
        bool passes = nu_op_passes_rows(op, state, in_s);
        cr_assert_eq(passes, cases[i].passes, "%s: passes_rows says %d", cases[i].config, passes);
        struct collect col = {0};
        struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
        cr_assert_eq(op->process(state, NULL, in, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(col.n, 1);
        bool same = nu_schema_equal(col.b[0]->schema, in_s) && col.b[0]->nrows == in->nrows;
        for (size_t r = 0; same && r < in->nrows; r++)
            for (size_t c = 0; c < in_s->ncols; c++)
                same =
                    same && nu_value_equal(&nu_batch_row(col.b[0], r)[c], &nu_batch_row(in, r)[c]);
        if (passes)
            cr_assert(same, "%s: declared to pass rows but changed them", cases[i].config);
        collect_free(&col);
        op->close(state);
        json_decref(cfg);
    }
    /* a version-1 descriptor is never asked, whatever lies after its last member */
    struct nu_operator v1 = *op;
    v1.abi_version = 1;
    cr_assert_not(nu_op_passes_rows(&v1, NULL, in_s));
    nu_batch_destroy(in);
    nu_schema_unref(in_s);
}

/* --- generate and file_sink --- */

static nu_err_t run_generate(json_t *cfg, struct collect *plans, struct collect *data)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    void *state = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("generate", NULL, &op, &eb), NU_OK);
    struct nu_op_open_args args = {.config = cfg};
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_op_emit pe = {.ctx = plans, .emit = collect_emit};
    struct nu_op_emit de = {.ctx = data, .emit = collect_emit};
    cr_assert_eq(op->plan(state, &pe, &eb), NU_OK, "%s", nu_err_msg(&eb));
    for (size_t i = 0; i < plans->n; i++)
        cr_assert_eq(op->process(state, NULL, plans->b[i], &de, &eb), NU_OK, "%s", nu_err_msg(&eb));
    op->close(state);
    return NU_OK;
}

Test(builtins, generate_plans_and_produces_deterministic_rows)
{
    json_t *cfg =
        json_pack("{s:i,s:i,s:i,s:i}", "rows", 7, "split_rows", 3, "payload_bytes", 10, "seed", 42);
    struct collect p1 = {0}, d1 = {0}, p2 = {0}, d2 = {0};
    run_generate(cfg, &p1, &d1);
    run_generate(cfg, &p2, &d2);
    /* plan: ceil(7/3) = 3 splits {index, first_id, count} */
    cr_assert_eq(p1.n, 3);
    static const int64_t want[3][3] = {{0, 0, 3}, {1, 3, 3}, {2, 6, 1}};
    for (size_t i = 0; i < 3; i++)
        for (size_t c = 0; c < 3; c++)
            cr_assert_eq(nu_batch_row(p1.b[i], 0)[c].u.i, want[i][c], "plan %zu col %zu", i, c);
    cr_assert_eq(d1.n, 3);
    int64_t next = 0;
    for (size_t i = 0; i < d1.n; i++) {
        cr_assert_str_eq(d1.b[i]->schema->cols[0].name, "id");
        for (size_t r = 0; r < d1.b[i]->nrows; r++, next++) {
            struct nu_value *row = nu_batch_row(d1.b[i], r);
            cr_assert_eq(row[0].u.i, next);
            cr_assert_eq(row[1].u.s.len, 10);
            for (size_t k = 0; k < 10; k++)
                cr_assert(strchr("abcdefghijklmnopqrstuvwxyz0123456789", row[1].u.s.ptr[k]));
            /* same config, same bytes */
            cr_assert(nu_value_equal(&row[1], &nu_batch_row(d2.b[i], r)[1]));
        }
    }
    cr_assert_eq(next, 7);
    /* payloads differ between ids */
    cr_assert_not(nu_value_equal(&nu_batch_row(d1.b[0], 0)[1], &nu_batch_row(d1.b[0], 1)[1]));
    collect_free(&p1);
    collect_free(&d1);
    collect_free(&p2);
    collect_free(&d2);
    json_decref(cfg);

    /* a different seed changes the payload */
    cfg = json_pack("{s:i,s:i,s:i}", "rows", 1, "payload_bytes", 10, "seed", 43);
    run_generate(cfg, &p2, &d2);
    cfg =
        (json_decref(cfg), json_pack("{s:i,s:i,s:i}", "rows", 1, "payload_bytes", 10, "seed", 42));
    run_generate(cfg, &p1, &d1);
    cr_assert_not(nu_value_equal(&nu_batch_row(d1.b[0], 0)[1], &nu_batch_row(d2.b[0], 0)[1]));
    collect_free(&p1);
    collect_free(&d1);
    collect_free(&p2);
    collect_free(&d2);
    json_decref(cfg);
}

Test(builtins, generate_refuses_out_of_range_plan_rows)
{
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("generate", NULL, &op, NULL), NU_OK);
    json_t *cfg = json_pack("{s:i,s:i}", "rows", 10, "split_rows", 5);
    struct nu_op_open_args args = {.config = cfg};
    void *state = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK);
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "index", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "first_id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 2, "count", NU_T_INT64, false, NULL);
    struct nu_batch *b = nu_batch_new(s, 1);
    struct nu_value *row = nu_batch_add_row(b);
    row[0] = nu_value_int(0);
    row[1] = nu_value_int(0);
    row[2] = nu_value_int(1000000); /* more than split_rows */
    struct collect col = {0};
    struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
    cr_assert_eq(op->process(state, NULL, b, &emit, &eb), NU_ERR_CORRUPT);
    cr_assert(strstr(nu_err_msg(&eb), "out of range"), "%s", nu_err_msg(&eb));
    cr_assert_eq(col.n, 0);
    op->close(state);
    nu_batch_destroy(b);
    nu_schema_unref(s);
    json_decref(cfg);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(builtins, file_sink_writes_one_file_per_split_idempotently)
{
    char dir[256], path[512], cmd[300];
    snprintf(dir, sizeof(dir), "/tmp/nurion-file-sink-%ld/a/b", (long)getpid());
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("file_sink", NULL, &op, NULL), NU_OK);
    json_t *cfg = json_pack("{s:s}", "path", dir);
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "s", NU_T_STRING, true, NULL);
    struct nu_op_open_args args = {.config = cfg, .in = s};
    void *state = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_batch *b = nu_batch_new(s, 2);
    struct nu_value *row = nu_batch_add_row(b);
    row[0] = nu_value_int(1);
    row[1] = nu_batch_str(b, NU_T_STRING, "x", 1);
    row = nu_batch_add_row(b);
    row[0] = nu_value_int(2);
    struct collect col = {0};
    struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
    struct nu_op_batch_ctx ctx = {.split_id = "src/7:a", .attempt = 1};
    for (int attempt = 0; attempt < 2; attempt++) /* re-processing overwrites */
        cr_assert_eq(op->process(state, &ctx, b, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(col.n, 0); /* sinks emit nothing */
    snprintf(path, sizeof(path), "%s/src%%2F7%%3Aa.jsonl", dir);
    char *text = slurp(path);
    cr_assert_not_null(text, "%s missing", path);
    cr_assert_str_eq(text, "{\"id\":1,\"s\":\"x\"}\n{\"id\":2,\"s\":null}\n");
    free(text);
    /* no temporary files left behind */
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0);
    /* a split id is required */
    ctx.split_id = NULL;
    cr_assert_eq(op->process(state, &ctx, b, &emit, &eb), NU_ERR_INVALID);
    op->close(state);
    nu_batch_destroy(b);
    nu_schema_unref(s);
    json_decref(cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf /tmp/nurion-file-sink-%ld", (long)getpid());
    cr_assert_eq(system(cmd), 0);
}
