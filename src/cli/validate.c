/* validate.c — `nurion validate [--json] JOB.json`: check a job spec and list every problem. */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/job.h"
#include "operators/registry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nu_cli_validate_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion validate [--json] JOB.json\n\n"
            "Checks a job spec completely: its fields, ids, the stage graph (upstreams, cycles,\n"
            "reachability), parallelism and partitions, and each operator and its config.\n\n"
            "options:\n"
            "  --json      print the result as JSON: {\"ok\":true,\"job\":{...canonical...}} or\n"
            "              {\"ok\":false,\"problems\":[{\"path\":\"$...\",\"message\":\"...\"}]}\n"
            "  -h, --help  show this help\n\n"
            "Without --json, prints `OK: job \"x\" (...)` and the stages on success, or one line\n"
            "per problem on stderr, `JOB.json: $.stages[1].upstream[0]: message`.\n\n"
            "exit status: 0 valid, 1 the file could not be read, 2 invalid spec or bad usage\n");
}

static void nu_cli_validate_print_ok(const struct nu_job *job)
{
    char topic[NU_JOB_NAME_MAX];
    printf("OK: job \"%s\" (%zu stage%s, %s, %s)\n", job->id, job->nstages,
           job->nstages == 1 ? "" : "s", nu_guarantee_name(job->guarantee),
           nu_format_name(job->format));
    for (size_t t = 0; t < job->nstages; t++) {
        const struct nu_job_stage *st = &job->stages[job->topo[t]];
        printf("  %-16s %-12s", st->id, st->op);
        if (st->parallelism_min == st->parallelism_max)
            printf(" parallelism %d", st->parallelism_min);
        else
            printf(" parallelism %d..%d", st->parallelism_min, st->parallelism_max);
        if (st->nupstream) {
            printf(", from");
            for (size_t k = 0; k < st->nupstream; k++)
                printf("%s %s", k ? "," : "", st->upstream[k]);
        }
        if (st->kind == NU_OPKIND_SINK)
            printf(" (sink)\n");
        else
            printf(" -> %s (%d partitions)\n",
                   nu_job_topic_output(job, job->topo[t], topic, sizeof(topic)), st->partitions);
    }
}

static void nu_cli_validate_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2));
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(doc);
}

int nu_cli_cmd_validate(int argc, char **argv)
{
    /* The operator registry's checks: names, kinds, configs and schemas through the DAG. */
    const struct nu_job_validator *v = nu_registry_validator();
    struct nu_problems probs;
    struct nu_errbuf eb;
    struct nu_job *job = NULL;
    const char *file = NULL;
    bool as_json = false;
    int code = NU_EXIT_OK;

    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    if (nu_cli_wants_help(argc, argv)) {
        nu_cli_validate_usage(stdout);
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !file) {
            file = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "nurion validate: unknown option \"%s\"\n\n", argv[i]);
            nu_cli_validate_usage(stderr);
            code = NU_EXIT_USAGE;
            goto out;
        } else if (!file) {
            file = argv[i];
        } else {
            fprintf(stderr, "nurion validate: only one job spec may be given\n");
            code = NU_EXIT_USAGE;
            goto out;
        }
    }
    if (!file) {
        nu_cli_validate_usage(stderr);
        code = NU_EXIT_USAGE;
        goto out;
    }

    nu_err_t rc = nu_job_load_file(file, v, &job, &probs, &eb);
    if (rc == NU_ERR_IO) {
        code = NU_EXIT_FAIL;
        if (as_json) {
            json_t *doc = json_pack("{s:b, s:s}", "ok", 0, "error", nu_err_msg(&eb));
            nu_cli_validate_print_json(doc);
        } else {
            fprintf(stderr, "nurion validate: %s\n", nu_err_msg(&eb));
        }
        goto out;
    }
    if (rc != NU_OK)
        code = NU_EXIT_USAGE;
    if (as_json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_boolean(rc == NU_OK));
        if (rc == NU_OK) {
            json_object_set_new(doc, "job", nu_job_to_json(job));
        } else {
            json_t *arr = json_array();
            for (size_t i = 0; i < probs.n; i++)
                json_array_append_new(arr, json_pack("{s:s, s:s}", "path", probs.items[i].path,
                                                     "message", probs.items[i].message));
            json_object_set_new(doc, "problems", arr);
        }
        nu_cli_validate_print_json(doc);
    } else if (rc == NU_OK) {
        nu_cli_validate_print_ok(job);
    } else {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s: %s: %s\n", file, probs.items[i].path, probs.items[i].message);
        if (probs.n == 0)
            fprintf(stderr, "%s: %s\n", file, nu_err_msg(&eb));
    }

out:
    fflush(stdout);
    nu_job_destroy(job);
    nu_problems_free(&probs);
    return code;
}
