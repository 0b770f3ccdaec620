/*
 * api.h — the coordinator's HTTP API handlers over the store and the launcher (layer:
 * coordinator).
 *
 * Handlers are plain functions from struct nu_http_req to struct nu_http_resp (common/http.h);
 * the api layer's server runs them. This module supplies everything the server needs from the
 * coordinator: the route table (nu_coord_routes), the shared application context handed to every
 * handler (nu_coord_api_t), the per-thread context factory that gives each pool thread its own
 * store connection (reconnecting with back-off once the database went away), and the extra
 * Prometheus text of /metrics (per job and stage counters from the store, ingestion and launcher
 * counters). docs/api.md describes the endpoints; src/api/openapi.json is their contract.
 *
 * Ownership: the context borrows the launcher and the ingester (they must outlive it); its
 * strings are copied. Thread-safety: handlers, nu_coord_metrics and the thread-context functions
 * run concurrently on pool threads; the context guards its shared state (readiness cache, the
 * metrics connection) with a mutex. nu_coord_api_set_ingest must be called before serving.
 */
#ifndef NU_COORDINATOR_API_H
#define NU_COORDINATOR_API_H

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "coordinator/ingest.h"
#include "coordinator/launcher.h"
#include "stage/kafka.h"

#include <stddef.h>

#define NU_COORD_READY_CACHE_MS  1000 /* how long a readiness answer is reused */
#define NU_COORD_READY_WAIT_MS   1000 /* bound of the broker probe of /readyz */
#define NU_COORD_RECONNECT_MS    250  /* first back-off after a lost database connection */
#define NU_COORD_RECONNECT_MAX   5000 /* back-off ceiling */
#define NU_COORD_METRICS_JOBS    100  /* newest jobs whose stages /metrics reports */
#define NU_COORD_TOPICS_WAIT_MS  5000 /* budget of the broker queries of GET …/topics */
#define NU_COORD_MAX_QUERY_LEN   128  /* longest `state` / `stage` query parameter */
#define NU_COORD_LINEAGE_DEPTH   10   /* default lineage depth */
#define NU_COORD_MAX_CONTROL_LEN 4096 /* body of scale / freeze requests */

struct nu_coord_api_conf {
    const char *database_url;          /* required; copied */
    const char *brokers;               /* required; copied (also shown in kcat commands) */
    const struct nu_kafka_prop *props; /* kafka.* settings of the broker client; copied */
    size_t nprops;
    size_t max_body_bytes;   /* largest job spec accepted (0: NU_HTTP_JSON_MAX_BYTES) */
    nu_launcher_t *launcher; /* borrowed; NULL answers 503 on launcher-backed endpoints */
};

typedef struct nu_coord_api nu_coord_api_t;

/* A context (it opens one broker client; the database is reached lazily). Errors: NU_ERR_CONFIG,
 * NU_ERR_KAFKA. *out is returned owned. */
nu_err_t nu_coord_api_new(const struct nu_coord_api_conf *conf, nu_coord_api_t **out,
                          struct nu_errbuf *eb);
void nu_coord_api_destroy(nu_coord_api_t *api); /* accepts NULL */

/* The ingester whose counters /metrics shows (borrowed; NULL: none). */
void nu_coord_api_set_ingest(nu_coord_api_t *api, const nu_ingest_t *ing);

/* The route table (static storage): every endpoint of docs/api.md except the server's built-in
 * /healthz, /metrics and /api/v1/openapi.json. */
const struct nu_http_route *nu_coord_routes(size_t *n);

/* Per-thread context factory for the server (app_ctx is the nu_coord_api_t). Never returns NULL:
 * a thread whose database is down gets a context that reconnects on later requests. */
void *nu_coord_thread_ctx_new(void *app_ctx);
void nu_coord_thread_ctx_free(void *thread_ctx, void *app_ctx);

/* Appends the coordinator's Prometheus text to `out` (the server's metrics_extra). Blocks on the
 * store for at most NU_COORD_METRICS_JOBS + 1 queries. */
void nu_coord_metrics(struct nu_buf *out, void *app_ctx);

#endif
