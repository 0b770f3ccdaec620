/*
 * service.h — the coordinator service: everything `nurion coordinator` runs, as a library so
 * tests start the very same service in-process (layer: cli, the one layer that sees both the
 * coordinator and the HTTP server).
 *
 * nu_service_new applies the store's migrations, starts the launcher, the HTTP server (a thread
 * pool; each pool thread keeps its own store connection and reconnects with back-off) and an
 * ingestion thread (nu_ingest_step in a loop). nu_service_run then drives the launcher
 * (nu_launcher_tick every NU_SERVICE_TICK_MS) on the calling thread until asked to stop.
 *
 * Ownership: the conf is borrowed for nu_service_new only (everything is copied). Thread-safety:
 * nu_service_stop and nu_service_port may be called from any thread (nu_service_stop also from
 * a thread that waits for signals); new / run / destroy from one thread. Block SIGINT/SIGTERM
 * before nu_service_new so library threads do not take them.
 */
#ifndef NU_CLI_SERVICE_H
#define NU_CLI_SERVICE_H

#include "common/err.h"
#include "coordinator/autoscale.h"
#include "coordinator/launcher.h"
#include "stage/kafka.h"

#include <signal.h>
#include <stddef.h>

#define NU_SERVICE_TICK_MS    200  /* launcher supervision period */
#define NU_SERVICE_INGEST_MS  500  /* longest wait of one ingestion step */
#define NU_SERVICE_STOP_GRACE 5000 /* ms stage processes get to leave on shutdown */

struct nu_service_conf {
    const char *listen; /* "127.0.0.1:8080"; port 0 = ephemeral */
    unsigned threads;   /* HTTP pool size (0: default) */
    const char *database_url;
    const char *brokers;
    const char *auth_token; /* NULL or "": no authentication */
    nu_launch_mode_t launcher_mode;
    size_t max_body_bytes; /* 0: default */
    struct nu_autoscale_conf autoscale;
    const struct nu_kafka_prop *props; /* kafka.* pass-through */
    size_t nprops;
    const char *nurion_exe;       /* binary the launcher runs stages with (NULL: this one) */
    const char *ingest_jobs_like; /* follow only matching job ids (NULL: all) */
};

typedef struct nu_service nu_service_t;

/* Start everything but the launcher loop. Errors: NU_ERR_CONFIG, NU_ERR_DB (migrations),
 * NU_ERR_KAFKA, NU_ERR_SYSTEM (could not listen). *out is returned owned. */
nu_err_t nu_service_new(const struct nu_service_conf *conf, nu_service_t **out,
                        struct nu_errbuf *eb);

/* The HTTP port the service listens on. */
unsigned nu_service_port(const nu_service_t *svc);

/* Drive the launcher until nu_service_stop() is called or *stop (may be NULL) becomes non-zero.
 * Launcher errors are logged, never fatal. */
void nu_service_run(nu_service_t *svc, volatile sig_atomic_t *stop);

/* Ask nu_service_run to return. Async-signal-safe. */
void nu_service_stop(nu_service_t *svc);

/* Stop the server and the ingestion thread, stop the launcher (its stage processes leave
 * within NU_SERVICE_STOP_GRACE ms) and free. Accepts NULL. */
void nu_service_destroy(nu_service_t *svc);

#endif
