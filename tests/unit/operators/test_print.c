/* Tests of the print sink: one JSON line per row on standard output, with the prefix. */
#include "operators/builtin.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

static void redirect(void)
{
    cr_redirect_stdout();
}

static struct nu_batch *sample(void)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "name", NU_T_STRING, true, NULL);
    nu_schema_set(s, 2, "ok", NU_T_BOOL, false, NULL);
    struct nu_batch *b = nu_batch_new(s, 2);
    nu_schema_unref(s);
    struct nu_value *r = nu_batch_add_row(b);
    r[0] = nu_value_int(1);
    r[1] = nu_batch_str(b, NU_T_STRING, "a\"b", 3);
    r[2] = nu_value_bool(true);
    r = nu_batch_add_row(b);
    r[0] = nu_value_int(2);
    r[1] = nu_value_null();
    r[2] = nu_value_bool(false);
    return b;
}

static void print_with(const char *config)
{
    json_t *cfg = json_loads(config, 0, NULL);
    struct nu_errbuf eb = {0};
    struct nu_op_open_args args = {.config = cfg, .job_id = "j", .stage_id = "p"};
    struct nu_op_batch_ctx ctx = {.split_id = "x-1", .attempt = 1};
    void *st = NULL;
    struct nu_batch *b = sample();
    cr_assert_eq(nu_op_print.open(&args, &st, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_op_print.process(st, &ctx, b, NULL, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_op_print.close(st);
    nu_batch_destroy(b);
    json_decref(cfg);
    fflush(stdout);
}

Test(print, rows_as_json_lines, .init = redirect)
{
    print_with("{}");
    cr_assert_stdout_eq_str("{\"id\":1,\"name\":\"a\\\"b\",\"ok\":true}\n"
                            "{\"id\":2,\"name\":null,\"ok\":false}\n");
}

Test(print, prefix_on_every_line, .init = redirect)
{
    print_with("{\"prefix\":\"out> \"}");
    cr_assert_stdout_eq_str("out> {\"id\":1,\"name\":\"a\\\"b\",\"ok\":true}\n"
                            "out> {\"id\":2,\"name\":null,\"ok\":false}\n");
}

Test(print, bad_config)
{
    const char *bad[] = {"{\"prefix\":1}", "{\"prefx\":\"a\"}", "{\"prefix\":\"a\\nb\"}", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(bad[i], 0, NULL);
        nu_problems_init(&p);
        nu_op_print.validate(cfg, "$.c", &p);
        cr_assert_geq(p.n, 1, "%s", bad[i]);
        nu_problems_free(&p);
        json_decref(cfg);
    }
}
