/*
 * server.h — the coordinator's HTTP server over libmicrohttpd (layer: api).
 *
 * A server listens on one address and serves a route table (router.h) with a pool of threads.
 * Per request it: matches the route (404 / 405 with Allow / automatic OPTIONS), checks the bearer
 * token on non-public routes (401 with WWW-Authenticate), refuses bodies over the limit (413,
 * before reading them when Content-Length says so) and non-JSON bodies on json_body routes
 * (415), reads the body, calls the handler with the serving thread's context, sends the
 * response, counts it per route and status, and writes an access-log line (debug area "http";
 * 5xx at warn). docs/http.md lists the conventions.
 *
 * Built-in routes, added unless the table has the same method and pattern:
 *   GET /healthz               (public) {"status":"ok"} while the server runs
 *   GET /metrics               Prometheus text: nu_http_metrics_render() + conf.metrics_extra
 *   GET /api/v1/openapi.json   (public) the embedded OpenAPI document (openapi.h)
 *
 * Per-thread contexts: conf.thread_ctx_new(app_ctx) is called once per pool thread, lazily, on
 * the first request that thread serves (so each thread can own a database connection); its
 * result is passed to handlers as req->thread_ctx. When it returns NULL, the handler gets NULL
 * and the next request on that thread tries again. conf.thread_ctx_free(ctx, app_ctx) runs on the
 * same thread when the pool stops (in nu_http_server_destroy).
 *
 * Thread-safety: handlers run concurrently on pool threads; app_ctx is shared by all of them.
 * nu_http_server_port / _count / nu_http_metrics_render may be called from any thread.
 */
#ifndef NU_API_SERVER_H
#define NU_API_SERVER_H

#include "api/router.h"
#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>

#define NU_HTTP_DEFAULT_LISTEN    "127.0.0.1:8080"
#define NU_HTTP_DEFAULT_THREADS   4
#define NU_HTTP_MAX_THREADS       256
#define NU_HTTP_DEFAULT_MAX_BODY  (1u << 20)
#define NU_HTTP_DEFAULT_TIMEOUT_S 30
#define NU_HTTP_DEFAULT_MAX_CONNS 1024
#define NU_HTTP_MAX_TOKEN_BYTES   4096

struct nu_http_server_conf {
    const char *listen;       /* "host:port", "[v6]:port"; port 0 = ephemeral; NULL = default */
    unsigned threads;         /* pool size; 0 = NU_HTTP_DEFAULT_THREADS */
    size_t max_body_bytes;    /* 0 = NU_HTTP_DEFAULT_MAX_BODY */
    const char *bearer_token; /* NULL or "" = no authentication; copied */
    unsigned timeout_s;       /* idle connection timeout; 0 = NU_HTTP_DEFAULT_TIMEOUT_S */
    unsigned max_connections; /* 0 = NU_HTTP_DEFAULT_MAX_CONNS */
    void *(*thread_ctx_new)(void *app_ctx);                   /* optional */
    void (*thread_ctx_free)(void *thread_ctx, void *app_ctx); /* optional */
    /* Optional: appends more Prometheus text to /metrics (runs on a pool thread). */
    void (*metrics_extra)(struct nu_buf *out, void *app_ctx);
};

typedef struct nu_http_server nu_http_server_t;

/*
 * Start a server: it listens and serves when this returns. `conf` and `routes` are copied;
 * app_ctx is borrowed until destroy. Errors: NU_ERR_CONFIG (bad listen address, bad conf value,
 * bad route table), NU_ERR_SYSTEM (could not bind or start: the message names the address).
 * *out is returned owned.
 */
nu_err_t nu_http_server_new(const struct nu_http_server_conf *conf,
                            const struct nu_http_route *routes, size_t n, void *app_ctx,
                            nu_http_server_t **out, struct nu_errbuf *eb);
/* Stop accepting, finish the pool (blocks until running handlers return), free. Accepts NULL. */
void nu_http_server_destroy(nu_http_server_t *srv);

/* The bound port (useful after asking for port 0). */
unsigned nu_http_server_port(const nu_http_server_t *srv);

/*
 * Requests answered so far for a route (method + pattern as in the table; pattern NULL = requests
 * that matched no route) with the given status (0 = any status).
 */
unsigned long long nu_http_server_count(const nu_http_server_t *srv, nu_http_method_t method,
                                        const char *pattern, int status);

/*
 * Append the server's counters in Prometheus text format (0.0.4): nurion_http_requests_total
 * {method,route,status}, nurion_http_errors_total {method,route} (5xx), and the histogram
 * nurion_http_request_duration_seconds {method,route}.
 */
void nu_http_metrics_render(const nu_http_server_t *srv, struct nu_buf *out);

#endif
