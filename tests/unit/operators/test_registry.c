/* Tests of src/operators/registry.c: built-in lookups, descriptor checks and the job validator. */
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *const builtin_names[] = {
    "generate", "map", "filter", "flat_map", "batch", "file_sink", "file_source", "print", "exec"};

Test(registry, finds_every_builtin_by_name)
{
    for (size_t i = 0; i < sizeof(builtin_names) / sizeof(builtin_names[0]); i++) {
        const struct nu_operator *op = NULL;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_registry_find(builtin_names[i], NULL, &op, &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
        cr_assert_str_eq(op->name, builtin_names[i]);
        cr_assert_eq(nu_registry_check_descriptor(op, "built-in", &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
    }
    cr_assert_eq(nu_registry_builtin_count(), 9);
}

Test(registry, builtin_kinds)
{
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("generate", "", &op, NULL), NU_OK);
    cr_assert_eq(op->kind, NU_OPKIND_SOURCE);
    cr_assert_eq(nu_registry_find("file_sink", NULL, &op, NULL), NU_OK);
    cr_assert_eq(op->kind, NU_OPKIND_SINK);
    cr_assert_eq(nu_registry_find("map", NULL, &op, NULL), NU_OK);
    cr_assert_eq(op->kind, NU_OPKIND_TRANSFORM);
}

Test(registry, unknown_operator)
{
    const struct nu_operator *op = (const struct nu_operator *)1;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("mapp", NULL, &op, &eb), NU_ERR_NOT_FOUND);
    cr_assert_null(op);
    cr_assert_str_eq(nu_err_msg(&eb), "unknown operator \"mapp\"");
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("", NULL, &op, &eb), NU_ERR_INVALID);
}

Test(registry, list_counts_and_copies_up_to_cap)
{
    const struct nu_operator *ops[2];
    size_t n = nu_registry_list(ops, 2);
    cr_assert_geq(n, 6);
    cr_assert_str_eq(ops[0]->name, "generate");
    cr_assert_eq(nu_registry_list(NULL, 0), n);
}

static void noop_validate(const json_t *c, const char *path, struct nu_problems *p)
{
}
static nu_err_t noop_schema(const json_t *c, const struct nu_schema *in, const char *path,
                            struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    *out = NULL;
    return NU_OK;
}
static nu_err_t noop_open(const struct nu_op_open_args *a, void **s, struct nu_errbuf *eb)
{
    return NU_OK;
}
static nu_err_t noop_plan(void *s, const struct nu_op_emit *o, struct nu_errbuf *eb)
{
    return NU_OK;
}
static nu_err_t noop_process(void *s, const struct nu_op_batch_ctx *c, const struct nu_batch *in,
                             const struct nu_op_emit *o, struct nu_errbuf *eb)
{
    return NU_OK;
}
static void noop_close(void *s)
{
}

static const struct nu_operator good_op = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "x",
    .kind = NU_OPKIND_TRANSFORM,
    .validate = noop_validate,
    .schema = noop_schema,
    .open = noop_open,
    .process = noop_process,
    .close = noop_close,
};

enum fault {
    F_ABI3,
    F_ABI0,
    F_NAME,
    F_EMPTY_NAME,
    F_KIND,
    F_NO_PROCESS,
    F_NO_SCHEMA,
    F_SOURCE_NO_PLAN,
    F_TRANSFORM_PLAN,
    F_HALF_STATE
};

/* Table: a descriptor with one fault, and a fragment of the message. */
static const struct {
    enum fault f;
    const char *msg;
} bad_descriptors[] = {
    {F_ABI3, "ABI version 3 is not supported"},
    {F_ABI0, "ABI version 0 is not supported"},
    {F_NAME, "name must match"},
    {F_EMPTY_NAME, "name must match"},
    {F_KIND, "invalid kind"},
    {F_NO_PROCESS, "lacks one of"},
    {F_NO_SCHEMA, "lacks one of"},
    {F_SOURCE_NO_PLAN, "plan must be given"},
    {F_TRANSFORM_PLAN, "plan must be given"},
    {F_HALF_STATE, "both snapshot and restore"},
};

static nu_err_t noop_snapshot(void *s, void **b, size_t *n, struct nu_errbuf *eb)
{
    return NU_OK;
}

static void apply_fault(struct nu_operator *op, enum fault f)
{
    switch (f) {
    case F_ABI3:
        op->abi_version = 3;
        break;
    case F_ABI0:
        op->abi_version = 0;
        break;
    case F_NAME:
        op->name = "Bad-Name";
        break;
    case F_EMPTY_NAME:
        op->name = "";
        break;
    case F_KIND:
        op->kind = NU_OPKIND_UNKNOWN;
        break;
    case F_NO_PROCESS:
        op->process = NULL;
        break;
    case F_NO_SCHEMA:
        op->schema = NULL;
        break;
    case F_SOURCE_NO_PLAN:
        op->kind = NU_OPKIND_SOURCE;
        break;
    case F_TRANSFORM_PLAN:
        op->plan = noop_plan;
        break;
    case F_HALF_STATE:
        op->snapshot = noop_snapshot;
        break;
    }
}

Test(registry, descriptor_checks)
{
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_check_descriptor(&good_op, "t", &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* a descriptor of the oldest supported version still loads */
    struct nu_operator old = good_op;
    old.abi_version = NU_OPERATOR_ABI_MIN_VERSION;
    cr_assert_eq(nu_registry_check_descriptor(&old, "t", &eb), NU_OK, "%s", nu_err_msg(&eb));
    for (size_t i = 0; i < sizeof(bad_descriptors) / sizeof(bad_descriptors[0]); i++) {
        struct nu_operator op = good_op;
        apply_fault(&op, bad_descriptors[i].f);
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_registry_check_descriptor(&op, "plugin \"p.so\"", &eb), NU_ERR_PLUGIN,
                     "case %zu", i);
        cr_assert(strstr(nu_err_msg(&eb), bad_descriptors[i].msg), "case %zu: %s", i,
                  nu_err_msg(&eb));
        cr_assert(strncmp(nu_err_msg(&eb), "plugin \"p.so\"", 13) == 0);
    }
}

/* --- the validator, through nu_job_parse --- */

static const char *stage_src =
    "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":10,\"split_rows\":5}}";

/* Table: a job's stages after "src", and the problem expected (path, message fragment). */
static const struct {
    const char *stages;
    const char *path; /* NULL: the job must validate */
    const char *msg;
} validator_cases[] = {
    {"{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
     "\"upstream\":[\"src\"]},"
     "{\"id\":\"even\",\"operator\":\"filter\",\"config\":{\"where\":\"y % 2 == 0\"},"
     "\"upstream\":[\"dbl\"]}",
     NULL, NULL},
    {"{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"x * 2\"}},"
     "\"upstream\":[\"src\"]}",
     "$.stages[1].config.columns.y", "unknown column \"x\""},
    /* schema propagation: "y" exists only after the map */
    {"{\"id\":\"f\",\"operator\":\"filter\",\"config\":{\"where\":\"y > 1\"},"
     "\"upstream\":[\"src\"]}",
     "$.stages[1].config.where", "unknown column \"y\""},
    {"{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
     "\"upstream\":[\"src\"]},"
     "{\"id\":\"f\",\"operator\":\"filter\",\"config\":{\"where\":\"y\"},\"upstream\":[\"dbl\"]}",
     "$.stages[2].config.where", "must be boolean"},
    {"{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"drop\":[\"nope\"]},\"upstream\":[\"src\"]}",
     "$.stages[1].config.drop[0]", "unknown column \"nope\""},
    {"{\"id\":\"b\",\"operator\":\"batch\",\"config\":{\"rows\":0},\"upstream\":[\"src\"]}",
     "$.stages[1].config.rows", "must be at least 1"},
    {"{\"id\":\"fm\",\"operator\":\"flat_map\",\"config\":{\"explode\":\"id\"},"
     "\"upstream\":[\"src\"]}",
     "$.stages[1].config.explode", "not an array"},
    /* two upstreams with different schemas */
    {"{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id\"}},"
     "\"upstream\":[\"src\"]},"
     "{\"id\":\"u\",\"operator\":\"batch\",\"config\":{\"rows\":5},\"upstream\":[\"src\",\"m\"]}",
     "$.stages[2].upstream[1]", "have different schemas"},
    /* a failing upstream is reported once, at its own stage */
    {"{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"nope\"}},"
     "\"upstream\":[\"src\"]},"
     "{\"id\":\"f\",\"operator\":\"filter\",\"config\":{\"where\":\"y > 1\"},"
     "\"upstream\":[\"m\"]}",
     "$.stages[1].config.columns.y", "unknown column \"nope\""},
};

Test(registry, validator_propagates_schemas_and_reports_paths)
{
    for (size_t i = 0; i < sizeof(validator_cases) / sizeof(validator_cases[0]); i++) {
        char spec[2048];
        snprintf(spec, sizeof(spec), "{\"job_id\":\"j\",\"stages\":[%s,%s]}", stage_src,
                 validator_cases[i].stages);
        struct nu_problems p;
        struct nu_errbuf eb;
        struct nu_job *job = NULL;
        nu_problems_init(&p);
        nu_errbuf_clear(&eb);
        nu_err_t rc = nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, &p, &eb);
        if (!validator_cases[i].path) {
            cr_assert_eq(rc, NU_OK, "case %zu: %s", i, nu_err_msg(&eb));
            cr_assert_eq(p.n, 0);
        } else {
            cr_assert_neq(rc, NU_OK, "case %zu", i);
            cr_assert_eq(p.n, 1, "case %zu: %zu problems, first %s: %s", i, p.n,
                         p.n ? p.items[0].path : "", p.n ? p.items[0].message : "");
            cr_assert_str_eq(p.items[0].path, validator_cases[i].path, "case %zu", i);
            cr_assert(strstr(p.items[0].message, validator_cases[i].msg), "case %zu: %s", i,
                      p.items[0].message);
        }
        nu_job_destroy(job);
        nu_problems_free(&p);
    }
}

Test(registry, stage_schema_derivation)
{
    const char *spec = "{\"job_id\":\"j\",\"stages\":["
                       "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":1}},"
                       "{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id "
                       "> 3\"},\"drop\":[\"payload\"]},\"upstream\":[\"src\"]},"
                       "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"/tmp/"
                       "x\"},\"upstream\":[\"m\"]}]}";
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, NULL, &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    struct nu_schema *s = NULL;
    cr_assert_eq(nu_registry_stage_schema(job, 1, &s, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(s->ncols, 2);
    cr_assert_str_eq(s->cols[0].name, "id");
    cr_assert_str_eq(s->cols[1].name, "y");
    cr_assert_eq(s->cols[1].type, NU_T_BOOL);
    nu_schema_unref(s);
    s = (struct nu_schema *)1;
    cr_assert_eq(nu_registry_stage_schema(job, 2, &s, &eb), NU_OK);
    cr_assert_null(s); /* a sink has no output */
    cr_assert_eq(nu_registry_stage_schema(job, 3, &s, &eb), NU_ERR_INVALID);
    nu_job_destroy(job);
}
