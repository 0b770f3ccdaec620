/*
 * api_int.h — internals shared by the coordinator's handler files (layer: coordinator).
 */
#ifndef NU_COORDINATOR_API_INT_H
#define NU_COORDINATOR_API_INT_H

#include "coordinator/api.h"
#include "coordinator/db.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* A store connection that is re-opened with back-off after it broke. */
struct nu_coord_conn {
    nu_db_t *db;         /* owned; NULL while disconnected */
    int64_t next_try_ms; /* monotonic time of the next reconnection attempt */
    int backoff_ms;
};

struct nu_coord_api {
    char *database_url, *brokers;
    struct nu_kafka_prop *props; /* owned copies */
    size_t nprops;
    size_t max_body_bytes;
    nu_launcher_t *launcher;   /* borrowed */
    const nu_ingest_t *ingest; /* borrowed */
    rd_kafka_t *rk;            /* broker client for watermarks and the readiness probe */

    pthread_mutex_t lock;       /* guards what follows */
    struct nu_coord_conn mconn; /* metrics and readiness connection */
    int64_t ready_at_ms;        /* when the cached readiness was measured (0: never) */
    bool ready_db, ready_broker;
    char ready_db_msg[256], ready_broker_msg[256];
};

int64_t nu_coord_now_ms(void);

/* The usable connection of `c` (reconnecting when due), or NULL with NU_ERR_DB in `eb`. */
nu_db_t *nu_coord_conn_get(nu_coord_api_t *api, struct nu_coord_conn *c, struct nu_errbuf *eb);

/* The calling thread's store connection; NULL after a 503 was written into `resp`. */
nu_db_t *nu_coord_db(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);

/* The parsed spec of job `id` (structure only) from the store, returned owned; *doc (when
 * non-NULL) receives the job document. Errors as nu_store_job_get, NU_ERR_CORRUPT. */
nu_err_t nu_coord_job_load(nu_db_t *db, const char *id, struct nu_job **job, json_t **doc,
                           struct nu_errbuf *eb);

/* Error response for a failed call, logging 5xx answers at warn. */
void nu_coord_fail(struct nu_http_resp *resp, nu_err_t err, const struct nu_errbuf *eb);

/* {"items": items, "next": next-or-null}; takes the reference of `items`. */
json_t *nu_coord_page(json_t *items, const char *next);

/* printf onto a buffer. */
void nu_coord_bprintf(struct nu_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Handlers (api_jobs.c, api_stages.c, api_series.c, api_misc.c). */
void nu_coord_h_job_submit(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_jobs_list(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_job_get(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_job_cancel(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_job_delete(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_stages(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_stage_get(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_instances(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_splits(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_lineage(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_exceptions(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_stage_scale(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_stage_freeze(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_stage_unfreeze(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_autoscale_pause(const struct nu_http_req *req, struct nu_http_resp *resp,
                                void *app);
void nu_coord_h_autoscale_resume(const struct nu_http_req *req, struct nu_http_resp *resp,
                                 void *app);
void nu_coord_h_stage_series(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_topics(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);
void nu_coord_h_readyz(const struct nu_http_req *req, struct nu_http_resp *resp, void *app);

#endif
