/*
 * op_generate.c — the `generate` source: deterministic synthetic rows.
 *
 * Config {"rows": R, "split_rows": S (default 1000), "payload_bytes": P (default 16),
 * "seed": N (default 0)}. plan() emits ceil(R/S) plan splits of one row {index, first_id,
 * count}; process() turns each plan row into a data batch with columns id (int64, first_id ..
 * first_id+count-1) and payload (string of P characters [a-z0-9] derived from seed and id).
 */
#include "operators/builtin.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

#define NU_GENERATE_MAX_ROWS       (1LL << 50)
#define NU_GENERATE_MAX_SPLIT_ROWS 1000000LL
#define NU_GENERATE_MAX_PAYLOAD    (1LL << 20)
/* Most payload bytes in one data split. */
#define NU_GENERATE_MAX_SPLIT_BYTES (256LL << 20)

struct nu_generate_conf {
    long long rows, split_rows, payload, seed;
};

struct nu_generate {
    struct nu_generate_conf c;
    struct nu_schema *plan_schema;
    struct nu_schema *out_schema;
};

static const char *const nu_generate_fields[] = {"rows", "split_rows", "payload_bytes", "seed"};

static void nu_generate_parse(const json_t *config, const char *path, struct nu_problems *p,
                              struct nu_generate_conf *c)
{
    struct nu_json_path jp;
    bool ok = true;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_generate_fields, 4, &jp, p);
    ok &= nu_builtin_get_int(config, "rows", 0, NU_GENERATE_MAX_ROWS, true, 0, &jp, p, &c->rows);
    ok &= nu_builtin_get_int(config, "split_rows", 1, NU_GENERATE_MAX_SPLIT_ROWS, false, 1000, &jp,
                             p, &c->split_rows);
    ok &= nu_builtin_get_int(config, "payload_bytes", 0, NU_GENERATE_MAX_PAYLOAD, false, 16, &jp, p,
                             &c->payload);
    ok &= nu_builtin_get_int(config, "seed", -(1LL << 62), 1LL << 62, false, 0, &jp, p, &c->seed);
    if (ok && c->split_rows * c->payload > NU_GENERATE_MAX_SPLIT_BYTES)
        nu_problems_add(p, jp.buf,
                        "split_rows * payload_bytes is %lld, more than %lld bytes per split",
                        c->split_rows * c->payload, NU_GENERATE_MAX_SPLIT_BYTES);
}

static void nu_generate_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_generate_conf c;
    nu_generate_parse(config, path, p, &c);
}

static struct nu_schema *nu_generate_out_schema(void)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "payload", NU_T_STRING, false, NULL);
    return s;
}

static nu_err_t nu_generate_schema(const json_t *config, const struct nu_schema *in,
                                   const char *path, struct nu_problems *p, struct nu_schema **out,
                                   struct nu_errbuf *eb)
{
    *out = nu_generate_out_schema();
    return NU_OK;
}

static void nu_generate_close(void *state)
{
    struct nu_generate *g = state;
    if (!g)
        return;
    nu_schema_unref(g->plan_schema);
    nu_schema_unref(g->out_schema);
    free(g);
}

static nu_err_t nu_generate_open(const struct nu_op_open_args *args, void **state,
                                 struct nu_errbuf *eb)
{
    struct nu_generate *g = NULL;
    struct nu_problems p;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_generate, args->config, eb);
    if (rc != NU_OK)
        return rc;
    g = nu_xcalloc(1, sizeof(*g));
    nu_problems_init(&p);
    nu_generate_parse(args->config, "$", &p, &g->c);
    nu_problems_free(&p);
    g->plan_schema = nu_schema_new(3);
    nu_schema_set(g->plan_schema, 0, "index", NU_T_INT64, false, NULL);
    nu_schema_set(g->plan_schema, 1, "first_id", NU_T_INT64, false, NULL);
    nu_schema_set(g->plan_schema, 2, "count", NU_T_INT64, false, NULL);
    g->out_schema = nu_generate_out_schema();
    *state = g;
    return NU_OK;
}

static nu_err_t nu_generate_plan(void *state, const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_generate *g = state;
    long long nsplits = (g->c.rows + g->c.split_rows - 1) / g->c.split_rows;
    nu_err_t rc = NU_OK;

    for (long long i = 0; i < nsplits && rc == NU_OK; i++) {
        struct nu_batch *b = nu_batch_new(g->plan_schema, 1);
        struct nu_value *row = nu_batch_add_row(b);
        long long first = i * g->c.split_rows;
        long long left = g->c.rows - first;
        row[0] = nu_value_int(i);
        row[1] = nu_value_int(first);
        row[2] = nu_value_int(left < g->c.split_rows ? left : g->c.split_rows);
        rc = nu_op_emit_batch(out, b, eb);
    }
    return rc;
}

static uint64_t nu_generate_mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void nu_generate_payload(char *dst, size_t n, int64_t seed, int64_t id)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t st = (uint64_t)seed * 0x2545f4914f6cdd1dULL ^ (uint64_t)id;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            bits = nu_generate_mix(&st);
        dst[i] = alphabet[(bits & 0xff) % 36];
        bits >>= 8;
    }
}

/* Read int64 column `name` of a plan row (NU_ERR_SCHEMA when absent or of another type). */
static nu_err_t nu_generate_plan_col(const struct nu_schema *s, const char *name, long *idx,
                                     struct nu_errbuf *eb)
{
    *idx = nu_schema_find(s, name);
    if (*idx < 0 || s->cols[*idx].type != NU_T_INT64)
        return nu_err_set(eb, NU_ERR_SCHEMA, "generate: plan split has no int64 column \"%s\"",
                          name);
    return NU_OK;
}

static nu_err_t nu_generate_process(void *state, const struct nu_op_batch_ctx *ctx,
                                    const struct nu_batch *in, const struct nu_op_emit *out,
                                    struct nu_errbuf *eb)
{
    struct nu_generate *g = state;
    long ci, cf;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "generate: no plan split");
    rc = nu_generate_plan_col(in->schema, "first_id", &cf, eb);
    if (rc == NU_OK)
        rc = nu_generate_plan_col(in->schema, "count", &ci, eb);
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        const struct nu_value *pr = nu_batch_row(in, r);
        struct nu_batch *b;
        int64_t first, count;
        if (pr[cf].type != NU_T_INT64 || pr[ci].type != NU_T_INT64) {
            rc = nu_err_set(eb, NU_ERR_CORRUPT, "generate: plan row %zu has a null field", r);
            break;
        }
        first = pr[cf].u.i;
        count = pr[ci].u.i;
        if (first < 0 || first > NU_GENERATE_MAX_ROWS || count < 0 || count > g->c.split_rows) {
            rc = nu_err_set(eb, NU_ERR_CORRUPT,
                            "generate: plan row %zu is out of range (first_id %lld, count %lld)", r,
                            (long long)first, (long long)count);
            break;
        }
        b = nu_batch_new(g->out_schema, (size_t)count);
        for (int64_t k = 0; k < count; k++) {
            struct nu_value *row = nu_batch_add_row(b);
            char *p = nu_batch_alloc(b, (size_t)g->c.payload + 1);
            nu_generate_payload(p, (size_t)g->c.payload, g->c.seed, first + k);
            p[g->c.payload] = '\0';
            row[0] = nu_value_int(first + k);
            row[1] = nu_value_view(NU_T_STRING, p, (size_t)g->c.payload);
        }
        rc = nu_op_emit_batch(out, b, eb);
    }
    return rc;
}

const struct nu_operator nu_op_generate = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "generate",
    .kind = NU_OPKIND_SOURCE,
    .summary = "source of deterministic rows (id, payload) for tests and benchmarks",
    .validate = nu_generate_validate,
    .schema = nu_generate_schema,
    .open = nu_generate_open,
    .plan = nu_generate_plan,
    .process = nu_generate_process,
    .close = nu_generate_close,
};
