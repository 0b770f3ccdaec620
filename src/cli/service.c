/*
 * service.c — wiring of the coordinator service: store, launcher, HTTP server, ingestion.
 */
#include "cli/service.h"

#include "api/server.h"
#include "api/ui.h"
#include "common/log.h"
#include "common/mem.h"
#include "coordinator/api.h"
#include "coordinator/ingest.h"
#include "coordinator/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

struct nu_service {
    nu_launcher_t *launcher;
    nu_coord_api_t *api;
    nu_http_server_t *srv;
    nu_ingest_t *ing;
    pthread_t ing_thread;
    bool ing_started;
    atomic_int ing_stop;
    volatile sig_atomic_t stop;
};

static void nu_service_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The ingestion thread: step until stopped; a failure is logged once until it changes. */
static void *nu_service_ingest_main(void *arg)
{
    nu_service_t *svc = arg;
    nu_err_t last = NU_OK;
    while (!atomic_load(&svc->ing_stop)) {
        struct nu_errbuf eb = {0};
        nu_err_t err = nu_ingest_step(svc->ing, NU_SERVICE_INGEST_MS, &eb);
        if (err && err != last)
            nu_log(NU_LOG_WARN, "ingest", "ingestion step failed: %s\tcode=%s", nu_err_msg(&eb),
                   nu_err_name(err));
        else if (!err && last)
            nu_log(NU_LOG_INFO, "ingest", "ingestion resumed");
        last = err;
        if (err == NU_ERR_KAFKA_FATAL || err == NU_ERR_KAFKA)
            nu_service_sleep_ms(NU_SERVICE_INGEST_MS);
    }
    return NULL;
}

nu_err_t nu_service_new(const struct nu_service_conf *conf, nu_service_t **out,
                        struct nu_errbuf *eb)
{
    nu_service_t *svc = nu_xcalloc(1, sizeof(*svc));
    nu_db_t *db = NULL;
    size_t nroutes = 0;
    const struct nu_http_route *routes = nu_coord_routes(&nroutes);
    *out = NULL;
    atomic_init(&svc->ing_stop, 0);

    nu_err_t err = nu_store_connect(conf->database_url, &db, eb);
    if (!err)
        err = nu_store_migrate(db, eb);
    nu_store_close(db);
    if (err) {
        nu_err_prefix(eb, "could not prepare the store: ");
        goto fail;
    }

    struct nu_launcher_conf lc = {
        .mode = conf->launcher_mode,
        .brokers = conf->brokers,
        .database_url = conf->database_url,
        .nurion_exe = conf->nurion_exe,
        .props = conf->props,
        .nprops = conf->nprops,
        .autoscale = conf->autoscale,
    };
    err = nu_launcher_new(&lc, &svc->launcher, eb);
    if (err)
        goto fail;

    struct nu_coord_api_conf ac = {
        .database_url = conf->database_url,
        .brokers = conf->brokers,
        .props = conf->props,
        .nprops = conf->nprops,
        .max_body_bytes = conf->max_body_bytes,
        .launcher = svc->launcher,
    };
    err = nu_coord_api_new(&ac, &svc->api, eb);
    if (err)
        goto fail;

    struct nu_ingest_conf ic = {
        .brokers = conf->brokers,
        .db_url = conf->database_url,
        .props = conf->props,
        .nprops = conf->nprops,
        .jobs_like = conf->ingest_jobs_like,
    };
    err = nu_ingest_new(&ic, &svc->ing, eb);
    if (err)
        goto fail;
    nu_coord_api_set_ingest(svc->api, svc->ing);

    struct nu_http_server_conf hc = {
        .listen = conf->listen,
        .threads = conf->threads,
        .max_body_bytes = conf->max_body_bytes,
        .bearer_token = conf->auth_token,
        .thread_ctx_new = nu_coord_thread_ctx_new,
        .thread_ctx_free = nu_coord_thread_ctx_free,
        .metrics_extra = nu_coord_metrics,
    };
    /* The API's routes and the web UI's, in one table (the server copies it). */
    size_t nui = 0;
    const struct nu_http_route *ui = nu_ui_routes(&nui);
    struct nu_http_route *all = nu_xcalloc(nroutes + nui, sizeof(*all));
    memcpy(all, routes, nroutes * sizeof(*all));
    memcpy(all + nroutes, ui, nui * sizeof(*all));
    err = nu_http_server_new(&hc, all, nroutes + nui, svc->api, &svc->srv, eb);
    free(all);
    if (err)
        goto fail;

    if (pthread_create(&svc->ing_thread, NULL, nu_service_ingest_main, svc) != 0) {
        err = nu_err_set(eb, NU_ERR_SYSTEM, "could not start the ingestion thread");
        goto fail;
    }
    svc->ing_started = true;
    *out = svc;
    return NU_OK;
fail:
    nu_service_destroy(svc);
    return err;
}

unsigned nu_service_port(const nu_service_t *svc)
{
    return nu_http_server_port(svc->srv);
}

void nu_service_stop(nu_service_t *svc)
{
    svc->stop = 1;
}

void nu_service_run(nu_service_t *svc, volatile sig_atomic_t *stop)
{
    nu_err_t last = NU_OK;
    while (!svc->stop && (stop == NULL || !*stop)) {
        struct nu_errbuf eb = {0};
        nu_err_t err = nu_launcher_tick(svc->launcher, &eb);
        if (err && err != last)
            nu_log(NU_LOG_WARN, "launcher", "supervision failed: %s\tcode=%s", nu_err_msg(&eb),
                   nu_err_name(err));
        last = err;
        nu_service_sleep_ms(NU_SERVICE_TICK_MS);
    }
}

void nu_service_destroy(nu_service_t *svc)
{
    if (svc == NULL)
        return;
    /* The server first: no handler may call into the launcher once it is gone. */
    nu_http_server_destroy(svc->srv);
    if (svc->ing_started) {
        atomic_store(&svc->ing_stop, 1);
        pthread_join(svc->ing_thread, NULL);
    }
    nu_ingest_destroy(svc->ing);
    nu_coord_api_destroy(svc->api);
    nu_launcher_destroy(svc->launcher, NU_SERVICE_STOP_GRACE);
    free(svc);
}
