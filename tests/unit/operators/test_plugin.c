/* Tests of src/operators/plugin.c: loading operators from shared objects and the load errors. */
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <string.h>

struct plugin_sink {
    struct nu_batch *last;
    int n;
};

static nu_err_t plugin_sink_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct plugin_sink *s = ctx;
    nu_batch_destroy(s->last);
    s->last = b;
    s->n++;
    return NU_OK;
}

Test(plugin, loads_and_runs_an_operator)
{
    const struct nu_operator *op = NULL, *again = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("tag", NU_TEST_PLUGIN_TAG, &op, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_str_eq(op->name, "tag");
    cr_assert_eq(op->kind, NU_OPKIND_TRANSFORM);
    /* cached: the same descriptor again */
    cr_assert_eq(nu_registry_find("tag", NU_TEST_PLUGIN_TAG, &again, &eb), NU_OK);
    cr_assert_eq(op, again);

    json_t *cfg = json_pack("{s:s}", "value", "blue");
    struct nu_schema *in = nu_schema_new(1);
    nu_schema_set(in, 0, "id", NU_T_INT64, false, NULL);
    struct nu_op_open_args args = {.config = cfg, .in = in, .job_id = "j", .stage_id = "s"};
    void *state = NULL;
    cr_assert_eq(op->open(&args, &state, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_batch *b = nu_batch_new(in, 2);
    nu_batch_add_row(b)[0] = nu_value_int(7);
    struct plugin_sink sink = {0};
    struct nu_op_emit emit = {.ctx = &sink, .emit = plugin_sink_emit};
    struct nu_op_batch_ctx ctx = {.split_id = "s-1", .attempt = 1};
    cr_assert_eq(op->process(state, &ctx, b, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(sink.n, 1);
    cr_assert_eq(sink.last->schema->ncols, 2);
    cr_assert_str_eq(sink.last->schema->cols[1].name, "tag");
    struct nu_value *row = nu_batch_row(sink.last, 0);
    cr_assert_eq(row[0].u.i, 7);
    cr_assert_eq(row[1].u.s.len, 4);
    cr_assert_eq(memcmp(row[1].u.s.ptr, "blue", 4), 0);
    op->close(state);
    nu_batch_destroy(sink.last);
    nu_batch_destroy(b);
    nu_schema_unref(in);
    json_decref(cfg);

    /* a loaded plugin's operators are listed after the built-ins */
    const struct nu_operator *all[64];
    size_t n = nu_registry_list(all, 64);
    bool listed = false;
    for (size_t i = nu_registry_builtin_count(); i < n && i < 64; i++)
        listed |= all[i] == op;
    cr_assert(listed);
}

Test(plugin, unknown_operator_in_a_plugin)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("map", NU_TEST_PLUGIN_TAG, &op, &eb), NU_ERR_NOT_FOUND);
    cr_assert_null(op);
    cr_assert(strstr(nu_err_msg(&eb), "has no operator \"map\""), "%s", nu_err_msg(&eb));
}

/* Table: plugins that must be refused, and a fragment of the message. */
static const struct {
    const char *path;
    nu_err_t code;
    const char *msg;
} bad_plugins[] = {
    {NU_TEST_PLUGIN_NOSYM, NU_ERR_PLUGIN, "\" has no symbol nurion_operators"},
    {NU_TEST_PLUGIN_BADABI, NU_ERR_PLUGIN, "operator ABI version 99 is not supported"},
    {"/nonexistent/libnothing.so", NU_ERR_PLUGIN, "could not load plugin \"/nonexistent/"},
    {"", NU_OK, NULL}, /* empty path = built-ins: "tag" is then unknown */
};

Test(plugin, refuses_bad_plugins_with_clear_errors)
{
    for (size_t i = 0; i < sizeof(bad_plugins) / sizeof(bad_plugins[0]); i++) {
        const struct nu_operator *op = NULL;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        nu_err_t rc = nu_registry_find("tag", bad_plugins[i].path, &op, &eb);
        cr_assert_null(op, "case %zu", i);
        if (!bad_plugins[i].msg) {
            cr_assert_eq(rc, NU_ERR_NOT_FOUND);
            continue;
        }
        cr_assert_eq(rc, bad_plugins[i].code, "case %zu: %s", i, nu_err_msg(&eb));
        cr_assert(strstr(nu_err_msg(&eb), bad_plugins[i].msg), "case %zu: %s", i, nu_err_msg(&eb));
        /* not cached: a second attempt fails the same way */
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_registry_find("tag", bad_plugins[i].path, &op, &eb), rc);
    }
}

Test(plugin, validator_kind_loads_plugins)
{
    const struct nu_job_validator *v = nu_registry_validator();
    char why[256] = "";
    cr_assert_eq(v->kind(v->ctx, "tag", NU_TEST_PLUGIN_TAG, why, sizeof(why)), NU_OPKIND_TRANSFORM);
    cr_assert_eq(v->kind(v->ctx, "tag", NU_TEST_PLUGIN_NOSYM, why, sizeof(why)), NU_OPKIND_UNKNOWN);
    cr_assert(strstr(why, "has no symbol nurion_operators"), "%s", why);
}
