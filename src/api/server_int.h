/*
 * server_int.h — internals shared by server.c and server_metrics.c (layer: api).
 * Not a public interface: nothing outside src/api/server*.c includes it.
 */
#ifndef NU_API_SERVER_INT_H
#define NU_API_SERVER_INT_H

#include "api/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct MHD_Daemon;

#define NU_SRV_NSTATUS  29 /* known statuses + "other" */
#define NU_SRV_NBUCKETS 12 /* latency buckets before +Inf */

/* Counters of one route (or of unmatched requests); updated with relaxed atomics. */
struct nu_srv_stats {
    atomic_ullong by_status[NU_SRV_NSTATUS];
    atomic_ullong errors;
    atomic_ullong lat_us_sum;
    atomic_ullong lat_buckets[NU_SRV_NBUCKETS + 1];
};

struct nu_http_server {
    struct MHD_Daemon *mhd;
    nu_http_router_t *router;
    size_t nroutes;
    bool *builtin; /* per route: a built-in, called with the server as context */
    void *app_ctx;
    char *listen;
    unsigned port;
    unsigned threads;
    size_t max_body;
    char *token; /* NULL: no auth */
    size_t token_len;
    void *(*thread_ctx_new)(void *app_ctx);
    void (*thread_ctx_free)(void *thread_ctx, void *app_ctx);
    void (*metrics_extra)(struct nu_buf *out, void *app_ctx);
    pthread_key_t tls_key;
    bool tls_key_ok;
    struct nu_srv_stats *stats; /* nroutes + 1; the last counts unmatched requests */
};

void nu_srv_metrics_init(nu_http_server_t *srv);
void nu_srv_metrics_free(nu_http_server_t *srv);
/* Count one answered request of route `idx` (nroutes = unmatched). */
void nu_srv_metrics_record(nu_http_server_t *srv, size_t idx, int status, double ms);

#endif
