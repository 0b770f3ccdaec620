/*
 * stage.c — `nurion stage`: run one instance of one stage of a job (one consumer-group member).
 * Configuration per STYLE.md: defaults < --config FILE < NURION_* environment < --set k=v.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/stage_http.h"

#include "common/config.h"
#include "common/job.h"
#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/planner.h"
#include "stage/stage.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit code for errors a restart cannot fix (fenced by a newer instance, bad configuration). */
#define NU_EXIT_NO_RESTART 3

static const struct nu_conf_def nu_stage_conf[] = {
    {"brokers", "NURION_BROKERS", NU_CONF_STRING, NULL, 0, 0, NULL, false, true,
     "Kafka bootstrap servers"},
    {"commit.interval", "NURION_COMMIT_INTERVAL", NU_CONF_DURATION, "100ms", 1, 60000, NULL, false,
     false, "close a transaction (commit offsets and outputs) after this long"},
    {"max.splits.per.txn", "NURION_MAX_SPLITS_PER_TXN", NU_CONF_INT, "1000", 1, 1000000, NULL,
     false, false, "close a transaction after this many input records"},
    {"max.inflight.bytes", "NURION_MAX_INFLIGHT_BYTES", NU_CONF_SIZE, "128MiB", 1048576,
     17179869184.0, NULL, false, false,
     "bound on prefetched input plus queued output per instance"},
    {"max.record.bytes", "NURION_MAX_RECORD_BYTES", NU_CONF_SIZE, "1MiB", 1024, 1073741824.0, NULL,
     false, false,
     "largest input or output record (keep at or below the broker's "
     "message.max.bytes)"},
    {"metrics.interval", "NURION_METRICS_INTERVAL", NU_CONF_DURATION, "5s", 0, 3600000, NULL, false,
     false, "how often to write a metrics event (0: never)"},
    {"completion.check.interval", NULL, NU_CONF_DURATION, "250ms", 10, 60000, NULL, false, false,
     "how often to look for the completion of the stage"},
    {"deflate", "NURION_DEFLATE", NU_CONF_BOOL, "false", 0, 0, NULL, false, false,
     "deflate-compress Avro split values"},
    {"log.level", "NURION_LOG_LEVEL", NU_CONF_ENUM, "info", 0, 0, "debug|info|warn|error", false,
     false, "least severe log level printed"},
    {"debug", "NURION_DEBUG", NU_CONF_STRING, "", 0, 0, NULL, false, false,
     "debug areas: kafka, stage, operator, or all"},
    {"http.listen", "NURION_HTTP_LISTEN", NU_CONF_STRING, "", 0, 0, NULL, false, false,
     "serve /healthz, /readyz and /metrics on this host:port (empty: off)"},
};
#define NU_STAGE_NCONF (sizeof(nu_stage_conf) / sizeof(nu_stage_conf[0]))

static volatile sig_atomic_t nu_stage_stop;

/* Signals are blocked in every thread; this one waits for them (STYLE.md). */
static void *nu_stage_signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) == 0) {
        nu_stage_stop = 1;
        if (sig == SIGINT || sig == SIGTERM)
            return NULL;
    }
    return NULL;
}

static void nu_stage_usage(FILE *out)
{
    fprintf(
        out,
        "usage: nurion stage --job JOB.json --stage ID [--instance K | --instance-from-pod-name]\n"
        "                    [--brokers HOST:PORT] [--config FILE] [--set key=value]...\n\n"
        "Runs instance K of stage ID: joins the stage's consumer group, processes splits\n"
        "exactly once (or at least once, per the job) and exits 0 when the stage is\n"
        "complete. SIGTERM finishes the open transaction, leaves the group and exits 0.\n\n"
        "  --job FILE        the job spec (JSON)\n"
        "  --stage ID        the stage to run\n"
        "  --instance K      instance index, part of the transactional id (default 0)\n"
        "  --instance-from-pod-name\n"
        "                    take K from the ordinal at the end of $POD_NAME (else\n"
        "                    $HOSTNAME), as in a StatefulSet pod \"name-K\"\n"
        "  --brokers LIST    bootstrap servers (default: $NURION_BROKERS)\n"
        "  --config FILE     settings as `key = value` lines\n"
        "  --set KEY=VALUE   one setting; `kafka.*` keys go to librdkafka as they are\n"
        "  --print-config    print the effective settings and exit\n"
        "  --plan            be the continuous planner of unbounded source ID instead of an\n"
        "                    instance; SIGTERM ends the plan (the job drains and ends)\n"
        "  --end-plan        plan what is stable now, end the plan and exit\n\n"
        "exit status: 0 stage complete or stopped, 1 failed (may be restarted),\n"
        "             2 bad usage or invalid job, 3 failed in a way a restart cannot fix\n\n");
    nu_conf_doc_markdown(nu_stage_conf, NU_STAGE_NCONF, "settings", out);
}

void nu_cli_stage_conf_doc(FILE *out)
{
    nu_conf_doc_markdown(nu_stage_conf, NU_STAGE_NCONF, "nurion stage", out);
}

int nu_cli_cmd_stage(int argc, char **argv)
{
    static const struct option longopts[] = {{"job", required_argument, NULL, 'j'},
                                             {"stage", required_argument, NULL, 's'},
                                             {"instance", required_argument, NULL, 'i'},
                                             {"brokers", required_argument, NULL, 'b'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"set", required_argument, NULL, 'S'},
                                             {"print-config", no_argument, NULL, 'P'},
                                             {"instance-from-pod-name", no_argument, NULL, 'O'},
                                             {"plan", no_argument, NULL, 'L'},
                                             {"end-plan", no_argument, NULL, 'E'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *job_path = NULL, *stage_id = NULL, *config_path = NULL;
    char **sets = nu_xcalloc((size_t)argc + 1, sizeof(char *));
    size_t nsets = 0;
    long instance = 0;
    bool print_config = false, from_pod = false, plan = false;
    nu_stage_monitor_t *mon = NULL;
    nu_stage_http_t *http = NULL;
    int rc = NU_EXIT_FAIL, opt;
    struct nu_problems probs;
    struct nu_errbuf eb;
    struct nu_job *job = NULL;
    nu_conf_t *conf = NULL;
    struct nu_kafka_prop *props = NULL;
    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "j:s:i:b:c:S:Ph", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            job_path = optarg;
            break;
        case 's':
            stage_id = optarg;
            break;
        case 'i': {
            char *end;
            instance = strtol(optarg, &end, 10);
            if (*end || instance < 0 || instance > 65535) {
                fprintf(stderr, "nurion stage: --instance must be 0..65535, got \"%s\"\n", optarg);
                rc = NU_EXIT_USAGE;
                goto out;
            }
            break;
        }
        case 'b':
            sets[nsets++] = nu_xasprintf("brokers=%s", optarg);
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'S':
            sets[nsets++] = nu_xstrdup(optarg);
            break;
        case 'P':
            print_config = true;
            break;
        case 'O':
            from_pod = true;
            break;
        case 'L':
            plan = true;
            break;
        case 'E':
            plan = true;
            nu_stage_stop = 1; /* one pass, then the eos markers */
            break;
        case 'h':
            nu_stage_usage(stdout);
            rc = NU_EXIT_OK;
            goto out;
        default:
            nu_stage_usage(stderr);
            rc = NU_EXIT_USAGE;
            goto out;
        }
    }
    if (from_pod) {
        const char *pod = getenv("POD_NAME");
        if (!pod || !*pod)
            pod = getenv("HOSTNAME");
        if (!nu_cli_pod_ordinal(pod, &instance)) {
            fprintf(stderr,
                    "nurion stage: --instance-from-pod-name: no ordinal at the end of the pod "
                    "name \"%s\" (set POD_NAME to a StatefulSet pod name such as \"name-0\")\n",
                    pod ? pod : "");
            rc = NU_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nurion stage: unexpected argument \"%s\"\n", argv[optind]);
        rc = NU_EXIT_USAGE;
        goto out;
    }

    conf = nu_conf_new(nu_stage_conf, NU_STAGE_NCONF, "kafka.");
    if (config_path)
        nu_conf_load_file(conf, config_path, &probs);
    nu_conf_load_env(conf, &probs);
    for (size_t i = 0; i < nsets; i++) {
        /* --brokers is a --set of its own: it must override the environment */
        nu_conf_set_kv(conf, sets[i], strncmp(sets[i], "brokers=", 8) == 0 ? "--brokers" : "--set",
                       &probs);
    }
    nu_conf_validate(conf, &probs);
    if (!job_path)
        nu_problems_add(&probs, "--job", "missing --job JOB.json");
    if (!stage_id)
        nu_problems_add(&probs, "--stage", "missing --stage ID");
    if (print_config) {
        nu_conf_dump(conf, stdout);
        rc = probs.n ? NU_EXIT_USAGE : NU_EXIT_OK;
    }
    if (probs.n) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "nurion stage: %s: %s\n", probs.items[i].path, probs.items[i].message);
        rc = NU_EXIT_USAGE;
        goto out;
    }
    if (print_config)
        goto out;

    nu_log_level_t level = NU_LOG_INFO;
    nu_log_level_parse(nu_conf_str(conf, "log.level"), &level);
    nu_log_init(level, nu_conf_str(conf, "debug"));

    if (nu_job_load_file(job_path, nu_registry_validator(), &job, &probs, &eb)) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "nurion stage: %s: %s: %s\n", job_path, probs.items[i].path,
                    probs.items[i].message);
        if (!probs.n)
            fprintf(stderr, "nurion stage: %s\n", nu_err_msg(&eb));
        rc = NU_EXIT_USAGE;
        goto out;
    }
    size_t idx;
    if (!nu_job_stage_find(job, stage_id, &idx)) {
        fprintf(stderr, "nurion stage: job \"%s\" has no stage \"%s\"\n", job->id, stage_id);
        rc = NU_EXIT_USAGE;
        goto out;
    }

    struct nu_stage_opts o;
    nu_stage_opts_init(&o);
    o.brokers = nu_conf_str(conf, "brokers");
    o.instance = (unsigned)instance;
    o.commit_interval_ms = (int)nu_conf_int(conf, "commit.interval");
    o.max_splits_per_txn = (int)nu_conf_int(conf, "max.splits.per.txn");
    o.max_inflight_bytes = nu_conf_int(conf, "max.inflight.bytes");
    o.max_record_bytes = nu_conf_int(conf, "max.record.bytes");
    o.metrics_interval_ms = (int)nu_conf_int(conf, "metrics.interval");
    o.completion_check_ms = (int)nu_conf_int(conf, "completion.check.interval");
    o.deflate = nu_conf_bool(conf, "deflate");
    o.nprops = nu_conf_passthrough_count(conf);
    props = nu_xcalloc(o.nprops + 1, sizeof(*props));
    for (size_t i = 0; i < o.nprops; i++)
        nu_conf_passthrough_get(conf, i, &props[i].key, &props[i].value);
    o.props = props;

    sigset_t set;
    pthread_t sigthr;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before librdkafka starts its threads */
    pthread_create(&sigthr, NULL, nu_stage_signal_thread, &set);
    pthread_detach(sigthr);

    /* after blocking the signals: the server's threads must not take SIGTERM */
    const char *listen = nu_conf_str(conf, "http.listen");
    if (listen && *listen) {
        mon = nu_stage_monitor_new();
        o.monitor = mon;
        if (nu_cli_stage_http_start(listen, mon, job->id, stage_id, o.instance, &http, &eb)) {
            fprintf(stderr, "nurion stage: %s\n", nu_err_msg(&eb));
            rc = NU_EXIT_NO_RESTART;
            goto out;
        }
        nu_log(NU_LOG_INFO, "stage", "serving /healthz /readyz /metrics\tlisten=%s port=%u", listen,
               nu_cli_stage_http_port(http));
    }

    nu_err_t err;
    if (plan) {
        if (!nu_plan_stage_unbounded(job, idx)) {
            fprintf(stderr, "nurion stage: --plan: stage \"%s\" is not an unbounded source\n",
                    stage_id);
            rc = NU_EXIT_USAGE;
        } else if ((err = nu_plan_tail(job, idx, o.brokers, props, o.nprops, &nu_stage_stop, NULL,
                                       NULL, &eb)) != NU_OK) {
            nu_log(NU_LOG_ERROR, "plan", "planner failed: %s\tcode=%s", nu_err_msg(&eb),
                   nu_err_name(err));
            /* fenced: another planner of the source runs; a restart would fence it back */
            rc = err == NU_ERR_FENCED || err == NU_ERR_CONFIG ? NU_EXIT_NO_RESTART : NU_EXIT_FAIL;
        } else {
            rc = NU_EXIT_OK;
        }
        goto out;
    }
    struct nu_stage_stats stats;
    err = nu_stage_run(job, idx, &o, &nu_stage_stop, &stats, &eb);
    if (err) {
        nu_log(NU_LOG_ERROR, "stage", "stage instance failed: %s\tcode=%s", nu_err_msg(&eb),
               nu_err_name(err));
        rc = (err == NU_ERR_FENCED || err == NU_ERR_CONFIG || err == NU_ERR_PLUGIN ||
              err == NU_ERR_NOT_FOUND)
                 ? NU_EXIT_NO_RESTART
                 : NU_EXIT_FAIL;
    } else {
        nu_log(NU_LOG_INFO, "stage",
               "%s\tsplits=%" PRId64 " rows_in=%" PRId64 " rows_out=%" PRId64
               " dead_letters=%" PRId64 " txns=%" PRId64 " aborted=%" PRId64,
               stats.complete ? "stage complete" : "stopped", stats.splits_in, stats.rows_in,
               stats.rows_out, stats.dead_letters, stats.txns_committed, stats.txns_aborted);
        rc = NU_EXIT_OK;
    }
out:
    nu_cli_stage_http_stop(http);
    nu_stage_monitor_destroy(mon);
    for (size_t i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    free(props);
    nu_job_destroy(job);
    nu_conf_destroy(conf);
    nu_problems_free(&probs);
    return rc;
}
