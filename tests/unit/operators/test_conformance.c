/*
 * The conformance suite every built-in operator must pass (the registry is iterated, so a new
 * built-in without an entry in `cases` fails): an empty batch, all-null columns, a 1 MB row and a
 * bad config (validate reports it, open refuses it).
 */
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG_LEN (1024 * 1024)

static char sink_dir[256];

/* Per operator: a good and a bad config. Transforms and sinks read the standard input below. */
static const struct {
    const char *op;
    const char *good;
    const char *bad;
} cases[] = {
    {"map", "{\"columns\":{\"y\":\"id * 2\",\"t\":\"concat(s, '!')\"}}", "{\"columns\":5}"},
    {"filter", "{\"where\":\"id > 1 or id is null\"}", "{\"where\":\"\"}"},
    {"flat_map", "{\"explode\":\"tags\",\"keep_empty\":true}", "{\"explode\":1}"},
    {"batch", "{\"rows\":2}", "{\"rows\":2,\"bytes\":10}"},
    {"generate", "{\"rows\":3,\"split_rows\":2}", "{\"rows\":-1}"},
    {"file_sink", NULL /* uses sink_dir */, "{\"path\":\"\",\"format\":\"xml\"}"},
    {"file_source", NULL /* reads source_file */, "{\"paths\":[],\"format\":\"jsonl\"}"},
    {"print", "{\"prefix\":\"> \"}", "{\"prefix\":7}"},
    {"exec",
     "{\"argv\":[\"python3\",\"-c\",\"import sys;sys.path.insert(0,'" NU_SOURCE_DIR
     "/python');import nurion_udf as u;u.map(lambda r:r);u.run()\"]}",
     "{\"argv\":[]}"},
};

/* file_source reads this JSON Lines file (written by write_source_file). */
static char source_file[300];

static void write_source_file(const char *payload, size_t len)
{
    FILE *f = fopen(source_file, "w");
    cr_assert_not_null(f, "cannot write %s", source_file);
    fprintf(f, "{\"id\":0,\"payload\":\"%.*s\"}\n", (int)len, payload);
    fclose(f);
}

static json_t *source_config(void)
{
    return json_pack("{s:s,s:s}", "paths", source_file, "format", "jsonl");
}

/* The plan schema of a source: that of its first plan split. */
static nu_err_t first_plan(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_batch **first = ctx;
    if (!*first)
        *first = b;
    else
        nu_batch_destroy(b);
    return NU_OK;
}

struct collect {
    size_t n, rows;
    struct nu_batch *b[16];
};

static nu_err_t collect_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct collect *c = ctx;
    c->rows += b->nrows;
    if (c->n == 16) {
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
    memset(c, 0, sizeof(*c));
}

/* Input of transforms and sinks: id int64?, s string?, tags array<string?>?. */
static struct nu_schema *std_schema(void)
{
    struct nu_schema *s = nu_schema_new(3);
    struct nu_field item = {.type = NU_T_STRING, .nullable = true};
    nu_schema_set(s, 0, "id", NU_T_INT64, true, NULL);
    nu_schema_set(s, 1, "s", NU_T_STRING, true, NULL);
    nu_schema_set(s, 2, "tags", NU_T_ARRAY, true, &item);
    return s;
}

/* Input of the source: its plan split schema. */
static struct nu_schema *plan_schema(void)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "index", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "first_id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 2, "count", NU_T_INT64, false, NULL);
    return s;
}

static json_t *good_config(size_t i)
{
    if (strcmp(cases[i].op, "file_source") == 0)
        return source_config();
    if (!cases[i].good)
        return json_pack("{s:s,s:s}", "path", sink_dir, "format", "jsonl");
    return json_loads(cases[i].good, 0, NULL);
}

static size_t find_case(const char *name)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(cases[i].op, name) == 0)
            return i;
    cr_assert_fail("built-in operator \"%s\" has no conformance case", name);
    return 0;
}

/* Every output batch has the derived schema; the big string survives where rows survive. */
static void check_outputs(const struct nu_operator *op, const struct collect *c,
                          const struct nu_schema *derived, const char *big)
{
    for (size_t k = 0; k < c->n; k++) {
        cr_assert_not_null(derived, "%s: a sink emitted a batch", op->name);
        cr_assert(nu_schema_equal(c->b[k]->schema, derived), "%s: output schema differs", op->name);
        long si = nu_schema_find(derived, "s");
        for (size_t r = 0; big && si >= 0 && r < c->b[k]->nrows; r++) {
            const struct nu_value *v = &nu_batch_row(c->b[k], r)[si];
            cr_assert_eq(v->type, NU_T_STRING, "%s", op->name);
            cr_assert_eq(v->u.s.len, BIG_LEN, "%s", op->name);
            cr_assert_eq(memcmp(v->u.s.ptr, big, BIG_LEN), 0, "%s", op->name);
        }
    }
}

static void run_conformance(const struct nu_operator *op)
{
    size_t i = find_case(op->name);
    bool source = op->kind == NU_OPKIND_SOURCE;
    json_t *cfg = good_config(i), *bad = json_loads(cases[i].bad, 0, NULL);
    struct nu_schema *in = source ? plan_schema() : std_schema(), *derived = NULL;
    struct nu_problems p;
    struct nu_errbuf eb;
    void *state = NULL;
    nu_arena_t *scratch = nu_arena_new(0);
    struct collect col = {0};
    struct nu_op_emit emit = {.ctx = &col, .emit = collect_emit};
    struct nu_op_batch_ctx ctx = {.split_id = "conf-1", .attempt = 1, .scratch = scratch};

    cr_assert_not_null(cfg);
    cr_assert_not_null(bad);
    nu_problems_init(&p);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_check_descriptor(op, "built-in", &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert(op->summary && *op->summary);

    /* good config: no problems, a schema, open */
    op->validate(cfg, "$.config", &p);
    cr_assert_eq(p.n, 0, "%s: %s", op->name, p.n ? p.items[0].message : "");
    cr_assert_eq(op->schema(cfg, source ? NULL : in, "$.config", &p, &derived, &eb), NU_OK,
                 "%s: %s", op->name, nu_err_msg(&eb));
    cr_assert_eq(derived == NULL, op->kind == NU_OPKIND_SINK, "%s", op->name);
    struct nu_op_open_args args = {
        .config = cfg, .in = source ? NULL : in, .job_id = "j", .stage_id = "s"};
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s: %s", op->name, nu_err_msg(&eb));
    if (source) {
        struct nu_batch *plan = NULL;
        struct nu_op_emit pe = {.ctx = &plan, .emit = first_plan};
        cr_assert_eq(op->plan(state, &pe, &eb), NU_OK, "%s: %s", op->name, nu_err_msg(&eb));
        cr_assert_not_null(plan, "%s: no plan split", op->name);
        nu_schema_unref(in);
        in = nu_schema_ref(plan->schema);
        nu_batch_destroy(plan);
    }
    /* what a sink prints is not the test's output */
    int saved_stdout = dup(1), devnull = open("/dev/null", O_WRONLY);
    cr_assert(saved_stdout >= 0 && devnull >= 0);
    fflush(stdout);
    dup2(devnull, 1);

    /* 1. an empty batch: no rows out, no error */
    struct nu_batch *b = nu_batch_new(in, 1);
    cr_assert_eq(op->process(state, &ctx, b, &emit, &eb), NU_OK, "%s: %s", op->name,
                 nu_err_msg(&eb));
    cr_assert_eq(col.rows, 0, "%s", op->name);
    check_outputs(op, &col, derived, NULL);
    collect_free(&col);
    nu_batch_destroy(b);

    /* 2. all-null columns: fine for nullable inputs; the source refuses a corrupt plan row
     * with a clear, non-retriable error instead of crashing */
    b = nu_batch_new(in, 3);
    for (int r = 0; r < 3; r++)
        nu_batch_add_row(b);
    nu_errbuf_clear(&eb);
    nu_err_t rc = op->process(state, &ctx, b, &emit, &eb);
    if (source) {
        cr_assert_eq(rc, NU_ERR_CORRUPT, "%s: %s", op->name, nu_err_msg(&eb));
        cr_assert(strstr(nu_err_msg(&eb), "null"), "%s", nu_err_msg(&eb));
    } else {
        cr_assert_eq(rc, NU_OK, "%s: %s", op->name, nu_err_msg(&eb));
        check_outputs(op, &col, derived, NULL);
    }
    collect_free(&col);
    nu_batch_destroy(b);

    /* 3. a very large row: a 1 MB string (for the source: a 1 MB payload) */
    char *big = malloc(BIG_LEN);
    for (size_t k = 0; k < BIG_LEN; k++)
        big[k] = (char)('a' + k % 26);
    b = nu_batch_new(in, 1);
    struct nu_value *row = nu_batch_add_row(b);
    if (source && strcmp(op->name, "file_source") == 0) {
        struct nu_batch *plan = NULL;
        struct nu_op_emit pe = {.ctx = &plan, .emit = first_plan};
        nu_batch_destroy(b);
        op->close(state);
        state = NULL;
        write_source_file(big, BIG_LEN);
        cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(op->plan(state, &pe, &eb), NU_OK, "%s", nu_err_msg(&eb));
        b = plan;
    } else if (source) {
        op->close(state);
        state = NULL;
        json_t *bigcfg =
            json_pack("{s:i,s:i,s:i}", "rows", 1, "split_rows", 1, "payload_bytes", BIG_LEN);
        args.config = bigcfg;
        cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
        json_decref(bigcfg);
        row[0] = nu_value_int(0);
        row[1] = nu_value_int(0);
        row[2] = nu_value_int(1);
    } else {
        row[0] = nu_value_int(5);
        row[1] = nu_batch_str(b, NU_T_STRING, big, BIG_LEN);
        row[2] = nu_value_null();
    }
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->process(state, &ctx, b, &emit, &eb), NU_OK, "%s: %s", op->name,
                 nu_err_msg(&eb));
    if (source) {
        cr_assert_eq(col.rows, 1);
        cr_assert_eq(nu_batch_row(col.b[0], 0)[1].u.s.len, BIG_LEN);
    } else if (op->kind == NU_OPKIND_TRANSFORM) {
        cr_assert_eq(col.rows, 1, "%s: the big row must pass", op->name);
        check_outputs(op, &col, derived, big);
    } else if (strcmp(op->name, "file_sink") == 0) {
        char path[512];
        struct stat stt;
        snprintf(path, sizeof(path), "%s/conf-1.jsonl", sink_dir);
        cr_assert_eq(stat(path, &stt), 0, "%s not written", path);
        cr_assert_gt(stt.st_size, BIG_LEN);
    }
    fflush(stdout);
    dup2(saved_stdout, 1);
    close(saved_stdout);
    close(devnull);
    collect_free(&col);
    nu_batch_destroy(b);
    free(big);
    op->close(state);
    op->close(NULL);

    /* 4. bad config: validate reports it, open refuses it */
    nu_problems_free(&p);
    op->validate(bad, "$.stages[1].config", &p);
    cr_assert_geq(p.n, 1, "%s: bad config not reported", op->name);
    cr_assert(strncmp(p.items[0].path, "$.stages[1].config", 18) == 0, "%s", p.items[0].path);
    state = (void *)1;
    args.config = bad;
    nu_errbuf_clear(&eb);
    cr_assert_eq(op->open(&args, &state, &eb), NU_ERR_CONFIG, "%s", op->name);
    cr_assert_null(state);
    cr_assert(strstr(nu_err_msg(&eb), "invalid configuration"), "%s", nu_err_msg(&eb));
    /* a config that is not even an object */
    json_t *num = json_integer(3);
    nu_problems_free(&p);
    op->validate(num, "$", &p);
    cr_assert_geq(p.n, 1, "%s", op->name);
    json_decref(num);

    nu_problems_free(&p);
    nu_schema_unref(derived);
    nu_schema_unref(in);
    nu_arena_destroy(scratch);
    json_decref(cfg);
    json_decref(bad);
}

Test(conformance, every_builtin)
{
    snprintf(sink_dir, sizeof(sink_dir), "/tmp/nurion-conformance-%ld/out", (long)getpid());
    snprintf(source_file, sizeof(source_file), "/tmp/nurion-conformance-%ld/in.jsonl",
             (long)getpid());
    char parent[256];
    snprintf(parent, sizeof(parent), "/tmp/nurion-conformance-%ld", (long)getpid());
    cr_assert_eq(mkdir(parent, 0755), 0);
    write_source_file("x", 1);
    const struct nu_operator *ops[64];
    size_t nb = nu_registry_builtin_count();
    cr_assert_eq(nu_registry_list(ops, 64) >= nb, true);
    for (size_t i = 0; i < nb; i++)
        run_conformance(ops[i]);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf /tmp/nurion-conformance-%ld", (long)getpid());
    cr_assert_eq(system(cmd), 0);
}
