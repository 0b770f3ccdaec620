/* cmd_client_jobs.c — `nurion jobs`, `nurion status JOB` and `nurion cancel JOB`. */
#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "cli/commands.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

static void nu_cli_jobs_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion jobs [--state S] [--limit N] [--cursor C] [--coordinator URL]\n"
            "                   [--token T] [--json]\n\n"
            "Lists the coordinator's jobs, newest first (GET /api/v1/jobs): id, state, stages\n"
            "succeeded of all, times and the error of a failed job.\n\n"
            "options:\n"
            "  --state S          only jobs in state S: submitted, running, succeeded,\n"
            "                     failed or cancelled\n"
            "  --limit N          at most N jobs (1 to 1000, default 50)\n"
            "  --cursor C         the page after the one that printed `--cursor "
            "C`\n" NU_CLI_CLIENT_OPTIONS_HELP);
}

static void nu_cli_status_usage(FILE *out)
{
    fprintf(out, "usage: nurion status [--coordinator URL] [--token T] [--json] JOB\n\n"
                 "Shows a job (GET /api/v1/jobs/{id}): its state, error and times, and per stage\n"
                 "the operator, state, running instances, splits, rows, dead letters, errors,\n"
                 "progress, rate and input lag.\n\n"
                 "options:\n" NU_CLI_CLIENT_OPTIONS_HELP);
}

static void nu_cli_cancel_usage(FILE *out)
{
    fprintf(out, "usage: nurion cancel [--coordinator URL] [--token T] [--json] JOB\n\n"
                 "Cancels a job (POST /api/v1/jobs/{id}/cancel): its stage processes are stopped\n"
                 "and it ends in state cancelled. A job that already ended is refused (exit 1).\n\n"
                 "options:\n" NU_CLI_CLIENT_OPTIONS_HELP);
}

int nu_cli_cmd_jobs(int argc, char **argv)
{
    struct nu_cli_client cc = {.cmd = "jobs"};
    struct nu_client_resp r = {0};
    struct nu_cli_table t = {0};
    const char *state = NULL, *limit = NULL, *cursor = NULL;
    char *query = nu_xstrdup(""), *path = NULL;
    const struct nu_cli_opt opts[] = {
        {"--state", &state, NULL}, {"--limit", &limit, NULL}, {"--cursor", &cursor, NULL}};
    static const char *const head[] = {"ID", "STATE", "STAGES", "CREATED", "FINISHED", "ERROR"};

    int code = nu_cli_client_init(&cc, argc, argv, opts, 3, 0, 0, nu_cli_jobs_usage);
    if (code >= 0)
        goto out;
    nu_cli_query_add(&query, "state", state);
    nu_cli_query_add(&query, "limit", limit);
    nu_cli_query_add(&query, "cursor", cursor);
    path = nu_xasprintf("/api/v1/jobs%s", query);
    code = nu_cli_client_call(&cc, "GET", path, NULL, 0, 200, NULL, &r);
    if (code != NU_EXIT_OK)
        goto out;
    if (cc.json) {
        nu_cli_print_json(r.json);
        goto out;
    }
    const json_t *items = json_object_get(r.json, "items"), *job;
    size_t i;
    if (json_array_size(items) == 0) {
        printf("no jobs%s%s\n", state ? " in state " : "", state ? state : "");
        goto out;
    }
    nu_cli_table_init(&t, sizeof(head) / sizeof(head[0]), head);
    json_array_foreach(items, i, job)
    {
        char b[6][64];
        snprintf(b[2], sizeof(b[2]), "%lld/%lld",
                 (long long)json_integer_value(json_object_get(job, "stages_succeeded")),
                 (long long)json_integer_value(json_object_get(job, "stages")));
        const char *row[] = {nu_cli_jstr(job, "id", b[0], sizeof(b[0])),
                             nu_cli_jstr(job, "state", b[1], sizeof(b[1])),
                             b[2],
                             nu_cli_jstr(job, "created_at", b[3], sizeof(b[3])),
                             nu_cli_jstr(job, "finished_at", b[4], sizeof(b[4])),
                             nu_cli_jstr(job, "error", b[5], sizeof(b[5]))};
        nu_cli_table_row(&t, row);
    }
    nu_cli_table_print(&t, stdout, 0);
    const char *next = json_string_value(json_object_get(r.json, "next"));
    if (next != NULL)
        fprintf(stderr, "more jobs: nurion jobs%s%s --cursor %s\n", state ? " --state " : "",
                state ? state : "", next);

out:
    fflush(stdout);
    nu_cli_table_free(&t);
    nu_client_resp_free(&r);
    free(query);
    free(path);
    nu_cli_client_done(&cc);
    return code;
}

static void nu_cli_status_print(const json_t *job)
{
    struct nu_cli_table t;
    char b[16][64];
    size_t i;
    const json_t *st;
    const char *kv[] = {"job", nu_cli_jstr(job, "id", b[0], sizeof(b[0]))};
    nu_cli_table_init(&t, 2, kv);
    static const char *const keys[] = {"state", "error", "created_at", "started_at", "finished_at"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const char *row[] = {keys[k], nu_cli_jstr(job, keys[k], b[1], sizeof(b[1]))};
        nu_cli_table_row(&t, row);
    }
    nu_cli_table_print(&t, stdout, 0);
    nu_cli_table_free(&t);

    static const char *const head[] = {"STAGE",  "OPERATOR", "STATE",    "INSTANCES",
                                       "SPLITS", "ROWS IN",  "ROWS OUT", "DEAD LETTERS",
                                       "ERRORS", "PROGRESS", "ROWS/S",   "LAG"};
    nu_cli_table_init(&t, sizeof(head) / sizeof(head[0]), head);
    json_array_foreach(json_object_get(job, "stages"), i, st)
    {
        const json_t *planned = json_object_get(st, "planned_splits");
        const json_t *prog = json_object_get(st, "progress");
        const json_t *rate = json_object_get(st, "rows_per_s");
        long long done = json_integer_value(json_object_get(st, "splits_done"));
        if (json_is_integer(planned))
            snprintf(b[4], sizeof(b[4]), "%lld/%lld", done, (long long)json_integer_value(planned));
        else
            snprintf(b[4], sizeof(b[4]), "%lld", done);
        if (json_is_number(prog))
            snprintf(b[9], sizeof(b[9]), "%.0f%%", json_number_value(prog) * 100.0);
        else
            snprintf(b[9], sizeof(b[9]), "-");
        if (json_is_number(rate))
            nu_cli_human(json_number_value(rate), b[10], sizeof(b[10]));
        else
            snprintf(b[10], sizeof(b[10]), "-");
        const char *row[] = {nu_cli_jstr(st, "id", b[0], sizeof(b[0])),
                             nu_cli_jstr(st, "operator", b[1], sizeof(b[1])),
                             nu_cli_jstr(st, "state", b[2], sizeof(b[2])),
                             nu_cli_jstr(st, "instances_running", b[3], sizeof(b[3])),
                             b[4],
                             nu_cli_jstr(st, "rows_in", b[5], sizeof(b[5])),
                             nu_cli_jstr(st, "rows_out", b[6], sizeof(b[6])),
                             nu_cli_jstr(st, "dead_letters", b[7], sizeof(b[7])),
                             nu_cli_jstr(st, "errors", b[8], sizeof(b[8])),
                             b[9],
                             b[10],
                             nu_cli_jstr(st, "lag", b[11], sizeof(b[11]))};
        nu_cli_table_row(&t, row);
    }
    printf("\n");
    nu_cli_table_print(&t, stdout, 0);
    nu_cli_table_free(&t);
}

int nu_cli_cmd_status(int argc, char **argv)
{
    struct nu_cli_client cc = {.cmd = "status"};
    struct nu_client_resp r = {0};
    char *path = NULL;

    int code = nu_cli_client_init(&cc, argc, argv, NULL, 0, 1, 1, nu_cli_status_usage);
    if (code >= 0)
        goto out;
    path = nu_cli_job_path(cc.args[0], "");
    code = nu_cli_client_call(&cc, "GET", path, NULL, 0, 200, NULL, &r);
    if (code != NU_EXIT_OK)
        goto out;
    if (cc.json)
        nu_cli_print_json(r.json);
    else
        nu_cli_status_print(r.json);

out:
    fflush(stdout);
    nu_client_resp_free(&r);
    free(path);
    nu_cli_client_done(&cc);
    return code;
}

int nu_cli_cmd_cancel(int argc, char **argv)
{
    struct nu_cli_client cc = {.cmd = "cancel"};
    struct nu_client_resp r = {0};
    char *path = NULL;

    int code = nu_cli_client_init(&cc, argc, argv, NULL, 0, 1, 1, nu_cli_cancel_usage);
    if (code >= 0)
        goto out;
    path = nu_cli_job_path(cc.args[0], "/cancel");
    code = nu_cli_client_call(&cc, "POST", path, NULL, 0, 200, NULL, &r);
    if (code != NU_EXIT_OK)
        goto out;
    if (cc.json) {
        nu_cli_print_json(r.json);
    } else {
        const char *state = json_string_value(json_object_get(r.json, "state"));
        printf("job \"%s\" %s\n", cc.args[0], state ? state : "cancelled");
    }

out:
    fflush(stdout);
    nu_client_resp_free(&r);
    free(path);
    nu_cli_client_done(&cc);
    return code;
}
