/* run.c — `nurion run [options] JOB.json`: run a job locally, one process per stage instance. */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/job.h"
#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/local.h"
#include "stage/runner.h"

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NU_CLI_RUN_MAX_ARGS 1024 /* --set and --instances options together */

static volatile sig_atomic_t nu_cli_run_stop;

static void nu_cli_run_on_signal(int sig)
{
    nu_cli_run_stop = sig;
}

static void nu_cli_run_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion run [--brokers B] [--instances S=N]... [--cleanup] [--quiet]\n"
            "                  [--set k=v]... JOB.json\n"
            "       nurion run --local [--instances S=N]... [--quiet] JOB.json\n\n"
            "Runs a job on this machine against a Kafka broker: creates the job's topics, plans\n"
            "its sources, starts every stage instance as a `nurion stage` process, restarts\n"
            "instances that crash (with back-off, up to the stage's max_crashes), shows the\n"
            "progress read from the job's events topic and, when every stage is complete,\n"
            "prints a summary. Running a job again resumes it: committed work is not redone.\n\n"
            "With --local the whole job runs in this process, every stage instance a thread,\n"
            "over an in-memory broker with the same topics, partitions, lanes and guarantees:\n"
            "for development and tests without Kafka. Nothing outlives the process.\n\n"
            "options:\n"
            "  --local           run in this process over the in-memory broker (no Kafka)\n"
            "  --brokers B       bootstrap servers (default: $NURION_BROKERS)\n"
            "  --instances S=N   run N instances of stage S (within its parallelism min..max;\n"
            "                    default: its max); may be repeated\n"
            "  --cleanup         delete the job's topics after it succeeded (kept by default)\n"
            "  --quiet           no progress, and only warnings and errors of the stages\n"
            "  --set k=v         a setting passed to every stage process; kafka.* settings also\n"
            "                    apply to the runner's own clients; may be repeated\n"
            "  -h, --help        show this help\n\n"
            "exit status: 0 the job completed, 1 it failed (the reason is printed), 2 bad usage\n"
            "or an invalid job, 130/143 stopped by SIGINT/SIGTERM (forwarded to the stages)\n");
}

int nu_cli_cmd_run(int argc, char **argv)
{
    const char **sets = nu_xcalloc(NU_CLI_RUN_MAX_ARGS, sizeof(*sets));
    struct nu_kafka_prop *props = nu_xcalloc(NU_CLI_RUN_MAX_ARGS, sizeof(*props));
    char **prop_keys = nu_xcalloc(NU_CLI_RUN_MAX_ARGS, sizeof(*prop_keys));
    struct nu_run_instances *ov = nu_xcalloc(NU_CLI_RUN_MAX_ARGS, sizeof(*ov));
    size_t nsets = 0, nprops = 0, nov = 0;
    const char *brokers = getenv("NURION_BROKERS"), *file = NULL;
    bool cleanup = false, quiet = false, local = false;
    struct nu_problems probs;
    struct nu_errbuf eb;
    struct nu_job *job = NULL;
    int *counts = NULL;
    char abs[PATH_MAX];
    int code = NU_EXIT_OK;

    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    if (nu_cli_wants_help(argc, argv)) {
        nu_cli_run_usage(stdout);
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (nsets + nov >= NU_CLI_RUN_MAX_ARGS) {
            fprintf(stderr, "nurion run: more than %d --set/--instances options\n",
                    NU_CLI_RUN_MAX_ARGS);
            code = NU_EXIT_USAGE;
            goto out;
        }
        if ((v = nu_cli_optval(argc, argv, &i, "--brokers", &missing))) {
            brokers = v;
        } else if ((v = nu_cli_optval(argc, argv, &i, "--instances", &missing))) {
            if (nu_run_instances_parse(v, &ov[nov++], &eb) != NU_OK) {
                fprintf(stderr, "nurion run: %s\n", nu_err_msg(&eb));
                code = NU_EXIT_USAGE;
                goto out;
            }
        } else if ((v = nu_cli_optval(argc, argv, &i, "--set", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "nurion run: invalid --set \"%s\": expected key=value\n", v);
                code = NU_EXIT_USAGE;
                goto out;
            }
            sets[nsets++] = v;
            if (strncmp(v, "kafka.", 6) == 0) {
                prop_keys[nprops] = nu_xstrndup(v + 6, (size_t)(eq - v - 6));
                props[nprops] = (struct nu_kafka_prop){prop_keys[nprops], eq + 1};
                nprops++;
            }
        } else if (missing) {
            fprintf(stderr, "nurion run: option \"%s\" needs a value\n", argv[i]);
            code = NU_EXIT_USAGE;
            goto out;
        } else if (strcmp(argv[i], "--local") == 0) {
            local = true;
        } else if (strcmp(argv[i], "--cleanup") == 0) {
            cleanup = true;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !file) {
            file = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "nurion run: unknown option \"%s\"\n\n", argv[i]);
            nu_cli_run_usage(stderr);
            code = NU_EXIT_USAGE;
            goto out;
        } else if (!file) {
            file = argv[i];
        } else {
            fprintf(stderr, "nurion run: only one job spec may be given\n");
            code = NU_EXIT_USAGE;
            goto out;
        }
    }
    if (!file) {
        nu_cli_run_usage(stderr);
        code = NU_EXIT_USAGE;
        goto out;
    }
    if (local && nsets > 0) {
        fprintf(stderr, "nurion run: --set is not supported with --local (the stages use their "
                        "defaults)\n");
        code = NU_EXIT_USAGE;
        goto out;
    }
    if (!local && (!brokers || !*brokers)) {
        fprintf(stderr, "nurion run: no Kafka brokers given (set NURION_BROKERS or pass "
                        "--brokers)\n");
        code = NU_EXIT_USAGE;
        goto out;
    }

    nu_err_t rc = nu_job_load_file(file, nu_registry_validator(), &job, &probs, &eb);
    if (rc == NU_ERR_IO) {
        fprintf(stderr, "nurion run: %s\n", nu_err_msg(&eb));
        code = NU_EXIT_FAIL;
        goto out;
    }
    if (rc != NU_OK) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "%s: %s: %s\n", file, probs.items[i].path, probs.items[i].message);
        if (probs.n == 0)
            fprintf(stderr, "%s: %s\n", file, nu_err_msg(&eb));
        code = NU_EXIT_USAGE;
        goto out;
    }
    if (!realpath(file, abs)) {
        fprintf(stderr, "nurion run: could not resolve the path of \"%s\"\n", file);
        code = NU_EXIT_FAIL;
        goto out;
    }
    counts = nu_xcalloc(job->nstages, sizeof(*counts));
    if (nu_run_instance_counts(job, ov, nov, counts, &eb) != NU_OK) {
        fprintf(stderr, "nurion run: %s\n", nu_err_msg(&eb));
        code = NU_EXIT_USAGE;
        goto out;
    }

    struct sigaction sa = {.sa_handler = nu_cli_run_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    nu_log_set_context(job->id, "run", NULL);

    if (local) {
        struct nu_local_opts lo = {
            .instances = counts, .quiet = quiet, .out = stdout, .err = stderr};
        if (quiet)
            nu_log_init(NU_LOG_WARN, NULL);
        rc = nu_local_run(job, &lo, &nu_cli_run_stop, NULL, &eb);
        goto done;
    }
    struct nu_run_opts o = {
        .job_path = abs,
        .brokers = brokers,
        .exe = "/proc/self/exe",
        .instances = counts,
        .sets = sets,
        .nsets = nsets,
        .props = props,
        .nprops = nprops,
        .cleanup = cleanup,
        .quiet = quiet,
        .tty = isatty(STDERR_FILENO) == 1,
        .out = stdout,
        .err = stderr,
    };
    rc = nu_run_job(job, &o, &nu_cli_run_stop, NULL, &eb);
done:
    if (rc == NU_ERR_CANCELLED) {
        fprintf(stderr, "nurion run: job \"%s\" stopped by %s; the stages were stopped\n", job->id,
                nu_cli_run_stop == SIGINT ? "SIGINT" : "SIGTERM");
        code = nu_cli_run_stop == SIGINT ? 130 : 143;
    } else if (rc != NU_OK) {
        fprintf(stderr, "nurion run: job \"%s\" failed: %s\n", job->id, nu_err_msg(&eb));
        code = NU_EXIT_FAIL;
    }

out:
    fflush(stdout);
    for (size_t i = 0; i < nprops; i++)
        free(prop_keys[i]);
    free(prop_keys);
    free(props);
    free(sets);
    free(ov);
    free(counts);
    nu_job_destroy(job);
    nu_problems_free(&probs);
    return code;
}
