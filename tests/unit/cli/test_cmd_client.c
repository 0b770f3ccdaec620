/*
 * test_cmd_client.c — the API client commands without a coordinator: argument errors, the
 * client's checks of its configuration, percent-encoding, text tables, and an unreachable
 * coordinator (a closed local port).
 */
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/cmd_client.h"
#include "cli/commands.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>

static void quiet(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

Test(cmd_client, argument_errors_and_exit_codes, .init = quiet)
{
    static const struct {
        const char *argv[8];
        int code;
    } cases[] = {
        {{"status"}, NU_EXIT_USAGE},
        {{"status", "a", "b"}, NU_EXIT_USAGE},
        {{"status", "--bogus", "a"}, NU_EXIT_USAGE},
        {{"status", "a", "--token"}, NU_EXIT_USAGE},
        {{"status", "a", "--coordinator", "localhost:8080"}, NU_EXIT_USAGE},
        {{"status", "a", "--coordinator", "ftp://h"}, NU_EXIT_USAGE},
        {{"cancel"}, NU_EXIT_USAGE},
        {{"cancel", "--help"}, NU_EXIT_OK},
        {{"jobs", "extra"}, NU_EXIT_USAGE},
        {{"jobs", "--state"}, NU_EXIT_USAGE},
        {{"jobs", "-h"}, NU_EXIT_OK},
        {{"lineage", "job"}, NU_EXIT_USAGE},
        {{"lineage", "job", "split", "--direction", "sideways"}, NU_EXIT_USAGE},
        {{"lineage", "job", "split", "--depth", "0"}, NU_EXIT_USAGE},
        {{"lineage", "job", "split", "--depth", "101"}, NU_EXIT_USAGE},
        {{"lineage", "job", "split", "--depth=3x"}, NU_EXIT_USAGE},
        {{"topics"}, NU_EXIT_USAGE},
        {{"submit"}, NU_EXIT_USAGE},
        {{"submit", "a.json", "b.json"}, NU_EXIT_USAGE},
        {{"submit", "--wait=yes", "a.json"}, NU_EXIT_USAGE},
        {{"submit", "/nonexistent/job.json"}, NU_EXIT_FAIL},
        {{"submit", "--help"}, NU_EXIT_OK},
        /* nothing listens on port 1 of this host */
        {{"jobs", "--coordinator", "http://127.0.0.1:1"}, NU_CLI_EXIT_UNREACHABLE},
        {{"status", "--coordinator=http://127.0.0.1:1", "--", "--odd-id"}, NU_CLI_EXIT_UNREACHABLE},
        {{"lineage", "--coordinator", "http://127.0.0.1:1", "j", "s", "--depth", "100"},
         NU_CLI_EXIT_UNREACHABLE},
    };
    static int (*const fns[])(int, char **) = {
        nu_cli_cmd_status,  nu_cli_cmd_cancel, nu_cli_cmd_jobs,
        nu_cli_cmd_lineage, nu_cli_cmd_topics, nu_cli_cmd_submit,
    };
    static const char *const names[] = {"status", "cancel", "jobs", "lineage", "topics", "submit"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int argc = 0;
        char *argv[8] = {NULL};
        while (argc < 8 && cases[i].argv[argc]) {
            argv[argc] = (char *)cases[i].argv[argc];
            argc++;
        }
        int (*fn)(int, char **) = NULL;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(names[k], argv[0]) == 0)
                fn = fns[k];
        cr_assert_not_null(fn);
        int code = fn(argc, argv);
        cr_expect_eq(code, cases[i].code, "case %zu (%s %s): exit %d, want %d", i, argv[0],
                     argc > 1 ? argv[1] : "", code, cases[i].code);
    }
}

Test(cmd_client, client_configuration)
{
    static const struct {
        const char *url, *token;
        nu_err_t err;
        const char *base;
    } cases[] = {
        {NULL, NULL, NU_OK, NU_CLIENT_DEFAULT_URL},
        {"", "", NU_OK, NU_CLIENT_DEFAULT_URL},
        {"http://h:1/", "t", NU_OK, "http://h:1"},
        {"HTTPS://h/api//", NULL, NU_OK, "HTTPS://h/api"},
        {"h:8080", NULL, NU_ERR_USAGE, NULL},
        {"http://h\n:1", NULL, NU_ERR_USAGE, NULL},
        {"http://h:1", "bad\r\ntoken", NU_ERR_USAGE, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_errbuf eb = {0};
        nu_client_t *c = NULL;
        struct nu_client_conf conf = {.url = cases[i].url, .token = cases[i].token};
        cr_expect_eq(nu_client_new(&conf, &c, &eb), cases[i].err, "case %zu: %s", i,
                     nu_err_msg(&eb));
        if (cases[i].err == NU_OK) {
            cr_assert_not_null(c);
            cr_expect_str_eq(nu_client_url(c), cases[i].base, "case %zu", i);
        } else {
            cr_expect_null(c, "case %zu", i);
        }
        nu_client_destroy(c);
    }
    char *big = malloc(NU_CLIENT_MAX_URL_BYTES + 16);
    memset(big, 'a', NU_CLIENT_MAX_URL_BYTES + 15);
    memcpy(big, "http://", 7);
    big[NU_CLIENT_MAX_URL_BYTES + 15] = '\0';
    struct nu_errbuf eb = {0};
    nu_client_t *c = NULL;
    struct nu_client_conf conf = {.url = big};
    cr_expect_eq(nu_client_new(&conf, &c, &eb), NU_ERR_USAGE);
    cr_expect_null(c);
    free(big);
}

Test(cmd_client, escape)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"etl-demo", "etl-demo"},     {"a b/c", "a%20b%2Fc"}, {"x_y.z~", "x_y.z~"},
        {"?&=#%", "%3F%26%3D%23%25"}, {"\xc3\xa9", "%C3%A9"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = nu_client_escape(cases[i].in);
        cr_expect_str_eq(s, cases[i].out, "case %zu", i);
        free(s);
    }
    char *q = strdup("");
    nu_cli_query_add(&q, "state", NULL);
    cr_expect_str_eq(q, "");
    nu_cli_query_add(&q, "state", "running");
    nu_cli_query_add(&q, "cursor", "a b");
    cr_expect_str_eq(q, "?state=running&cursor=a%20b");
    free(q);
    char *p = nu_cli_job_path("x/y", "/cancel");
    cr_expect_str_eq(p, "/api/v1/jobs/x%2Fy/cancel");
    free(p);
}

Test(cmd_client, aligned_table)
{
    static const char *const head[] = {"ID", "STATE", "N"};
    static const char *const r1[] = {"a-long-id", "ok", "1"};
    static const char *const r2[] = {"b", NULL, "12345"};
    struct nu_cli_table t;
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    cr_assert_not_null(f);
    nu_cli_table_init(&t, 3, head);
    nu_cli_table_row(&t, r1);
    nu_cli_table_row(&t, r2);
    nu_cli_table_print(&t, f, 2);
    fclose(f);
    nu_cli_table_free(&t);
    cr_expect_str_eq(buf, "  ID         STATE  N\n"
                          "  a-long-id  ok     1\n"
                          "  b          -      12345\n");
}

Test(cmd_client, human_counts_and_json_cells)
{
    char b[32];
    cr_expect_str_eq(nu_cli_human(950, b, sizeof(b)), "950");
    cr_expect_str_eq(nu_cli_human(12345, b, sizeof(b)), "12.3k");
    cr_expect_str_eq(nu_cli_human(4560000, b, sizeof(b)), "4.56M");
    json_t *o = json_pack("{s:s, s:i, s:n, s:b, s:f}", "s", "x", "i", 42, "n", "b", 1, "f", 2.5);
    cr_expect_str_eq(nu_cli_jstr(o, "s", b, sizeof(b)), "x");
    cr_expect_str_eq(nu_cli_jstr(o, "i", b, sizeof(b)), "42");
    cr_expect_str_eq(nu_cli_jstr(o, "n", b, sizeof(b)), "-");
    cr_expect_str_eq(nu_cli_jstr(o, "absent", b, sizeof(b)), "-");
    cr_expect_str_eq(nu_cli_jstr(o, "b", b, sizeof(b)), "yes");
    cr_expect_str_eq(nu_cli_jstr(o, "f", b, sizeof(b)), "2.5");
    json_decref(o);
}
