/*
 * coordinator.c — `nurion coordinator`: the HTTP API, the store, events ingestion and the
 * launcher in one service (cli/service.h). Configuration per STYLE.md: defaults < --config FILE
 * < NURION_* environment < --set k=v (and --listen).
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/service.h"

#include "common/config.h"
#include "common/log.h"
#include "common/mem.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct nu_conf_def nu_coord_conf[] = {
    {"listen", "NURION_LISTEN", NU_CONF_STRING, "127.0.0.1:8080", 0, 0, NULL, false, false,
     "HTTP listen address, host:port or [v6]:port (port 0: any free port)"},
    {"threads", "NURION_THREADS", NU_CONF_INT, "4", 1, 256, NULL, false, false,
     "HTTP worker threads, each with its own database connection"},
    {"database.url", "NURION_DATABASE_URL", NU_CONF_STRING, NULL, 0, 0, NULL, false, true,
     "PostgreSQL connection URL of the store"},
    {"brokers", "NURION_BROKERS", NU_CONF_STRING, NULL, 0, 0, NULL, false, true,
     "Kafka bootstrap servers"},
    {"auth.token", "NURION_AUTH_TOKEN", NU_CONF_STRING, "", 0, 0, NULL, true, false,
     "bearer token required on every endpoint but /healthz, /readyz and the OpenAPI document "
     "(empty: no authentication)"},
    {"launcher.mode", "NURION_LAUNCHER_MODE", NU_CONF_ENUM, "local", 0, 0, "local|external", false,
     false,
     "local: run stage processes on this host; external: only observe (Kubernetes, compose)"},
    {"launcher.exe", "NURION_LAUNCHER_EXE", NU_CONF_STRING, "", 0, 0, NULL, false, false,
     "nurion binary the local launcher runs stages with (empty: this one)"},
    {"max.body.bytes", "NURION_MAX_BODY_BYTES", NU_CONF_SIZE, "1MiB", 1024, 16777216.0, NULL, false,
     false, "largest request body (job spec) accepted"},
    {"autoscale.enabled", "NURION_AUTOSCALE", NU_CONF_BOOL, "true", 0, 0, NULL, false, false,
     "scale stages between their parallelism min and max on input lag"},
    {"autoscale.interval", NULL, NU_CONF_DURATION, "15s", 1000, 3600000, NULL, false, false,
     "how often the autoscaler decides"},
    {"autoscale.up.lag", NULL, NU_CONF_INT, "1000", 1, 1e12, NULL, false, false,
     "scale a stage up above this total input lag (records)"},
    {"autoscale.down.lag", NULL, NU_CONF_INT, "100", 0, 1e12, NULL, false, false,
     "scale a stage down below this total input lag (records)"},
    {"autoscale.max.step", NULL, NU_CONF_INT, "2", 1, 1024, NULL, false, false,
     "instances added at most per decision"},
    {"autoscale.cooldown", NULL, NU_CONF_DURATION, "60s", 0, 86400000, NULL, false, false,
     "quiet time after a stage was scaled"},
    {"ingest.jobs.like", NULL, NU_CONF_STRING, "", 0, 0, NULL, false, false,
     "ingest only the events of jobs whose id matches this SQL LIKE pattern (empty: all)"},
    {"log.level", "NURION_LOG_LEVEL", NU_CONF_ENUM, "info", 0, 0, "debug|info|warn|error", false,
     false, "least severe log level printed"},
    {"debug", "NURION_DEBUG", NU_CONF_STRING, "", 0, 0, NULL, false, false,
     "debug areas: http, sql, kafka, ingest, launcher, or all"},
};
#define NU_COORD_NCONF (sizeof(nu_coord_conf) / sizeof(nu_coord_conf[0]))

void nu_cli_coordinator_conf_doc(FILE *out)
{
    nu_conf_doc_markdown(nu_coord_conf, NU_COORD_NCONF, "nurion coordinator", out);
}

static volatile sig_atomic_t nu_coord_stop;

static void *nu_coord_signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) == 0) {
        if (sig == SIGINT || sig == SIGTERM) {
            nu_coord_stop = 1;
            return NULL;
        }
    }
    return NULL;
}

static void nu_coord_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion coordinator [--listen HOST:PORT] [--config FILE] [--set key=value]...\n"
            "                          [--print-config]\n\n"
            "Serves the HTTP API (docs/api.md), keeps the job store in PostgreSQL, ingests the\n"
            "jobs' events topics and launches (or, in external mode, observes) their stages.\n"
            "SIGTERM or SIGINT shuts it down cleanly.\n\n"
            "  --listen ADDR     HTTP listen address (the setting `listen`)\n"
            "  --config FILE     settings as `key = value` lines\n"
            "  --set KEY=VALUE   one setting; `kafka.*` keys go to librdkafka as they are\n"
            "  --print-config    print the effective settings (secrets masked) and exit\n\n");
    nu_conf_doc_markdown(nu_coord_conf, NU_COORD_NCONF, "settings", out);
}

/* Load the layers of the configuration; every problem is printed. Returns NULL on any. */
static nu_conf_t *nu_coord_load(const char *config_path, char **sets, size_t nsets)
{
    struct nu_problems probs;
    nu_problems_init(&probs);
    nu_conf_t *conf = nu_conf_new(nu_coord_conf, NU_COORD_NCONF, "kafka.");
    if (config_path)
        nu_conf_load_file(conf, config_path, &probs);
    nu_conf_load_env(conf, &probs);
    for (size_t i = 0; i < nsets; i++)
        nu_conf_set_kv(conf, sets[i], strncmp(sets[i], "listen=", 7) == 0 ? "--listen" : "--set",
                       &probs);
    nu_conf_validate(conf, &probs);
    for (size_t i = 0; i < probs.n; i++)
        fprintf(stderr, "nurion coordinator: %s: %s\n", probs.items[i].path,
                probs.items[i].message);
    if (probs.n) {
        nu_conf_destroy(conf);
        conf = NULL;
    }
    nu_problems_free(&probs);
    return conf;
}

int nu_cli_cmd_coordinator(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'}, {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'S'},    {"print-config", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    char **sets = nu_xcalloc((size_t)argc + 1, sizeof(char *));
    size_t nsets = 0;
    bool print_config = false;
    int rc = NU_EXIT_FAIL, opt;
    struct nu_errbuf eb = {0};
    nu_conf_t *conf = NULL;
    struct nu_kafka_prop *props = NULL;
    nu_service_t *svc = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:c:S:Ph", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            sets[nsets++] = nu_xasprintf("listen=%s", optarg);
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
        case 'h':
            nu_coord_usage(stdout);
            rc = NU_EXIT_OK;
            goto out;
        default:
            nu_coord_usage(stderr);
            rc = NU_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nurion coordinator: unexpected argument \"%s\"\n", argv[optind]);
        rc = NU_EXIT_USAGE;
        goto out;
    }
    conf = nu_coord_load(config_path, sets, nsets);
    if (conf == NULL) {
        rc = NU_EXIT_USAGE;
        goto out;
    }
    if (print_config) {
        nu_conf_dump(conf, stdout);
        rc = NU_EXIT_OK;
        goto out;
    }
    nu_log_level_t level = NU_LOG_INFO;
    nu_log_level_parse(nu_conf_str(conf, "log.level"), &level);
    nu_log_init(level, nu_conf_str(conf, "debug"));

    struct nu_service_conf sc = {0};
    sc.listen = nu_conf_str(conf, "listen");
    sc.threads = (unsigned)nu_conf_int(conf, "threads");
    sc.database_url = nu_conf_str(conf, "database.url");
    sc.brokers = nu_conf_str(conf, "brokers");
    sc.auth_token = nu_conf_str(conf, "auth.token");
    sc.launcher_mode = strcmp(nu_conf_str(conf, "launcher.mode"), "external") == 0
                           ? NU_LAUNCH_EXTERNAL
                           : NU_LAUNCH_LOCAL;
    sc.max_body_bytes = (size_t)nu_conf_int(conf, "max.body.bytes");
    nu_autoscale_conf_default(&sc.autoscale);
    sc.autoscale.enabled = nu_conf_bool(conf, "autoscale.enabled");
    sc.autoscale.interval_ms = nu_conf_int(conf, "autoscale.interval");
    sc.autoscale.up_lag = nu_conf_int(conf, "autoscale.up.lag");
    sc.autoscale.down_lag = nu_conf_int(conf, "autoscale.down.lag");
    sc.autoscale.max_step = (int)nu_conf_int(conf, "autoscale.max.step");
    sc.autoscale.cooldown_ms = nu_conf_int(conf, "autoscale.cooldown");
    const char *exe = nu_conf_str(conf, "launcher.exe");
    sc.nurion_exe = exe && *exe ? exe : NULL;
    const char *like = nu_conf_str(conf, "ingest.jobs.like");
    sc.ingest_jobs_like = like && *like ? like : NULL;
    sc.nprops = nu_conf_passthrough_count(conf);
    props = nu_xcalloc(sc.nprops + 1, sizeof(*props));
    for (size_t i = 0; i < sc.nprops; i++)
        nu_conf_passthrough_get(conf, i, &props[i].key, &props[i].value);
    sc.props = props;

    sigset_t set;
    pthread_t sigthr;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any library starts its threads */
    signal(SIGPIPE, SIG_IGN);
    pthread_create(&sigthr, NULL, nu_coord_signal_thread, &set);
    pthread_detach(sigthr);

    nu_err_t err = nu_service_new(&sc, &svc, &eb);
    if (err) {
        nu_log(NU_LOG_ERROR, "coordinator", "could not start: %s\tcode=%s", nu_err_msg(&eb),
               nu_err_name(err));
        rc = err == NU_ERR_CONFIG ? NU_EXIT_USAGE : NU_EXIT_FAIL;
        goto out;
    }
    nu_log(NU_LOG_INFO, "coordinator", "listening\tport=%u launcher=%s", nu_service_port(svc),
           nu_conf_str(conf, "launcher.mode"));
    nu_service_run(svc, &nu_coord_stop);
    nu_log(NU_LOG_INFO, "coordinator", "shutting down");
    rc = NU_EXIT_OK;
out:
    nu_service_destroy(svc);
    free(props);
    nu_conf_destroy(conf);
    for (size_t i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    return rc;
}
