/* Tests of src/cli/validate.c: `nurion validate` output and exit codes. */
#include "cli/cli.h"
#include "cli/commands.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void redirect(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

/* Everything written so far to a redirected stream (returned owned). */
static char *slurp(FILE *f)
{
    size_t cap = 1 << 16, n;
    char *buf = calloc(1, cap);
    cr_assert_not_null(buf);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    return buf;
}

static int run(int argc, char **argv, char **out, char **err)
{
    int code = nu_cli_cmd_validate(argc, argv);
    fflush(stdout);
    fflush(stderr);
    *out = slurp(cr_get_redirected_stdout());
    *err = slurp(cr_get_redirected_stderr());
    return code;
}

/* A spec file with an unknown upstream, in a temporary directory (path returned owned). */
static char *write_bad_spec(void)
{
    char *path = strdup("/tmp/nu-validate-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *spec =
        "{\"job_id\": \"j\", \"stages\": [\n"
        "  {\"id\": \"src\", \"operator\": \"generate\", \"config\": {\"rows\": 1}},\n"
        "  {\"id\": \"out\", \"operator\": \"file_sink\", \"config\": {\"path\": "
        "\"o/\"}, \"upstream\": [\"x\"]}]}\n";
    cr_assert_eq(write(fd, spec, strlen(spec)), (ssize_t)strlen(spec));
    close(fd);
    return path;
}

Test(validate, example_is_ok, .init = redirect)
{
    char *argv[] = {"validate", NU_SOURCE_DIR "/examples/etl.json", NULL};
    char *out, *err;
    cr_assert_eq(run(2, argv, &out, &err), NU_EXIT_OK, "stderr: %s", err);
    const char *head = "OK: job \"etl-demo\" (4 stages, exactly_once, avro)\n";
    cr_expect(strncmp(out, head, strlen(head)) == 0, "got: %s", out);
    cr_expect(strstr(out, "-> nurion.etl-demo.dbl") != NULL);
    cr_expect_str_eq(err, "");
    free(out);
    free(err);
}

Test(validate, problems_are_listed_with_file_and_path, .init = redirect)
{
    char *path = write_bad_spec();
    char *argv[] = {"validate", path, NULL};
    char *out, *err, want[256];
    cr_assert_eq(run(2, argv, &out, &err), NU_EXIT_USAGE);
    snprintf(want, sizeof(want), "%s: $.stages[1].upstream[0]: unknown upstream stage \"x\"\n",
             path);
    cr_expect(strstr(err, want) != NULL, "got: %s", err);
    cr_expect_str_eq(out, "");
    unlink(path);
    free(path);
    free(out);
    free(err);
}

Test(validate, json_output, .init = redirect)
{
    char *path = write_bad_spec();
    char *argv[] = {"validate", "--json", path, NULL};
    char *out, *err;
    cr_assert_eq(run(3, argv, &out, &err), NU_EXIT_USAGE);
    json_t *doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", out);
    cr_expect(json_is_false(json_object_get(doc, "ok")));
    json_t *p0 = json_array_get(json_object_get(doc, "problems"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(p0, "path")), "$.stages[1].upstream[0]");
    cr_expect_str_eq(json_string_value(json_object_get(p0, "message")),
                     "unknown upstream stage \"x\"");
    json_decref(doc);
    unlink(path);
    free(path);
    free(out);
    free(err);
}

Test(validate, usage_and_io_errors, .init = redirect)
{
    char *out, *err;
    char *none[] = {"validate", NULL};
    cr_expect_eq(run(1, none, &out, &err), NU_EXIT_USAGE);
    free(out);
    free(err);
    char *missing[] = {"validate", "/nonexistent/job.json", NULL};
    cr_expect_eq(run(2, missing, &out, &err), NU_EXIT_FAIL);
    cr_expect(strstr(err, "could not open file \"/nonexistent/job.json\"") != NULL);
    free(out);
    free(err);
    char *bogus[] = {"validate", "--bogus", "x.json", NULL};
    cr_expect_eq(run(3, bogus, &out, &err), NU_EXIT_USAGE);
    cr_expect(strstr(err, "unknown option \"--bogus\"") != NULL);
    free(out);
    free(err);
}
