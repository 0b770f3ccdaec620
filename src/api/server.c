/* server.c — libmicrohttpd daemon, request life cycle, auth, limits, per-thread contexts. */
#include "api/server.h"

#include "api/openapi.h"
#include "api/server_int.h"
#include "common/log.h"
#include "common/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Per-request state, the MHD con_cls. */
struct nu_srv_req {
    struct timespec t0;
    struct nu_http_req req;
    struct nu_http_resp resp;
    struct nu_http_match match;
    struct nu_buf body;
    size_t discarded;
    bool too_large;
    bool sent;
    char remote[INET6_ADDRSTRLEN];
};

/* Value of the per-thread key. */
struct nu_srv_tls {
    nu_http_server_t *srv;
    void *ctx;
};

/* ---- small helpers --------------------------------------------------------------------------
 */

static double nu_srv_ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Equality whose time depends only on the expected length. */
static bool nu_srv_token_equal(const char *given, size_t glen, const char *want, size_t wlen)
{
    volatile unsigned char diff = (unsigned char)(glen != wlen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)((i < glen ? (unsigned char)given[i] : 0) ^ (unsigned char)want[i]);
    return diff == 0;
}

/* Copy for a log line: printable ASCII only, quotes and backslashes replaced, bounded. */
static void nu_srv_sanitize(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (; in && *in && j + 1 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        out[j++] = (c < 0x21 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[j] = '\0';
}

static const char *nu_srv_header_fn(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Is the media type of a Content-Type value application/json (parameters ignored)? */
static bool nu_srv_is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* ---- per-thread contexts ------------------------------------------------------------------ */

static void nu_srv_tls_destroy(void *p)
{
    struct nu_srv_tls *slot = p;
    if (slot->ctx && slot->srv->thread_ctx_free)
        slot->srv->thread_ctx_free(slot->ctx, slot->srv->app_ctx);
    free(slot);
}

static void *nu_srv_thread_ctx(nu_http_server_t *srv)
{
    if (!srv->thread_ctx_new)
        return NULL;
    struct nu_srv_tls *slot = pthread_getspecific(srv->tls_key);
    if (!slot) {
        slot = nu_xcalloc(1, sizeof(*slot));
        slot->srv = srv;
        pthread_setspecific(srv->tls_key, slot);
    }
    if (!slot->ctx)
        slot->ctx = srv->thread_ctx_new(srv->app_ctx);
    return slot->ctx;
}

/* ---- responses ---------------------------------------------------------------------------- */

static enum MHD_Result nu_srv_send(nu_http_server_t *srv, struct MHD_Connection *conn,
                                   struct nu_srv_req *st)
{
    struct nu_http_resp *resp = &st->resp;
    if (resp->status < 100 || resp->status > 599)
        nu_http_resp_error(resp, 500, "internal", "the handler produced no response", NULL);
    bool no_body = resp->status == 204 || resp->status == 304;
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        no_body ? 0 : resp->body.len, no_body || !resp->body.data ? (void *)"" : resp->body.data,
        MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_NO;
    if (!mr)
        goto out;
    if (resp->content_type && !no_body)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(mr, resp->headers[i].name, resp->headers[i].value);
    ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
out:
    st->sent = true;
    double ms = nu_srv_ms_since(&st->t0);
    nu_srv_metrics_record(srv, st->match.route ? st->match.index : srv->nroutes, resp->status, ms);
    char path[256];
    nu_srv_sanitize(st->req.path, path, sizeof(path));
    if (resp->status >= 500)
        nu_log(NU_LOG_WARN, "http",
               "request failed\tmethod=%s path=\"%s\" status=%d bytes=%zu ms=%.3f",
               nu_http_method_name(st->req.method), path, resp->status, resp->body.len, ms);
    else
        NU_LOG_DEBUG_AREA(
            "http", "http", "request\tmethod=%s path=\"%s\" status=%d bytes=%zu ms=%.3f",
            nu_http_method_name(st->req.method), path, resp->status, resp->body.len, ms);
    return ret;
}

static void nu_srv_set_allow(struct nu_http_resp *resp, unsigned allow)
{
    char buf[128];
    nu_http_allow_format(allow, buf, sizeof(buf));
    nu_http_resp_header(resp, "Allow", buf);
}

/* ---- request life cycle ------------------------------------------------------------------- */

static enum MHD_Result nu_srv_query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                         size_t key_size, const char *value, size_t value_size)
{
    struct nu_buf *q = cls;
    if (q->len > NU_HTTP_MAX_QUERY_BYTES)
        return MHD_NO;
    if (q->len)
        nu_buf_putc(q, '&');
    nu_buf_append(q, key, key_size);
    if (value) {
        nu_buf_putc(q, '=');
        nu_buf_append(q, value, value_size);
    }
    return MHD_YES;
}

static void nu_srv_remote(struct MHD_Connection *conn, struct nu_srv_req *st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    st->remote[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, st->remote,
                  sizeof(st->remote));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, st->remote,
                  sizeof(st->remote));
    st->req.remote_addr = st->remote;
}

/*
 * First call for a request, after its headers: fill the request, route it and decide every
 * refusal that does not need the body. A refusal is left in st->resp (status set).
 */
static void nu_srv_begin(nu_http_server_t *srv, struct MHD_Connection *conn, struct nu_srv_req *st,
                         const char *url, const char *method)
{
    struct nu_errbuf eb;
    struct nu_buf q = NU_BUF_INIT;
    nu_errbuf_clear(&eb);
    clock_gettime(CLOCK_MONOTONIC, &st->t0);
    nu_http_req_init(&st->req);
    nu_http_resp_init(&st->resp);
    st->req.method = nu_http_method_parse(method);
    st->req.method_name = nu_arena_strdup(st->req.arena, method ? method : "");
    st->req.path = nu_arena_strdup(st->req.arena, url ? url : "");
    st->req.header_fn = nu_srv_header_fn;
    st->req.header_ctx = conn;
    st->match.index = SIZE_MAX;
    nu_srv_remote(conn, st);

    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, nu_srv_query_iter, &q);
    nu_buf_putc(&q, '\0');
    if (nu_http_req_parse_query(&st->req, (const char *)q.data, &eb) != NU_OK ||
        nu_http_router_match(srv->router, &st->req, &st->match, &eb) != NU_OK) {
        nu_http_resp_error(&st->resp, 400, "bad_request", nu_err_msg(&eb), NULL);
        goto out;
    }
    const struct nu_http_route *route = st->match.route;
    if (!route && st->match.allow == 0) {
        nu_http_resp_error(&st->resp, 404, "not_found", "no such resource", NULL);
        goto out;
    }
    if (!route && st->req.method == NU_HTTP_OPTIONS) {
        st->resp.status = 204;
        nu_srv_set_allow(&st->resp, st->match.allow);
        goto out;
    }
    if (!route) {
        char msg[160];
        snprintf(msg, sizeof(msg), "method %.16s is not allowed on this resource",
                 st->req.method_name);
        nu_http_resp_error(&st->resp, 405, "method_not_allowed", msg, NULL);
        nu_srv_set_allow(&st->resp, st->match.allow);
        goto out;
    }
    if (srv->token && !(route->flags & NU_HTTP_ROUTE_PUBLIC)) {
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        bool ok = false;
        if (h && strncasecmp(h, "Bearer ", 7) == 0) {
            const char *t = h + 7;
            while (*t == ' ')
                t++;
            size_t n = strlen(t);
            while (n > 0 && t[n - 1] == ' ')
                n--;
            ok = nu_srv_token_equal(t, n, srv->token, srv->token_len);
        }
        if (!ok) {
            nu_http_resp_error(&st->resp, 401, "unauthorized",
                               h ? "the bearer token is not valid" : "a bearer token is required",
                               NULL);
            nu_http_resp_header(&st->resp, "WWW-Authenticate",
                                h ? "Bearer realm=\"nurion\", error=\"invalid_token\""
                                  : "Bearer realm=\"nurion\"");
            goto out;
        }
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > srv->max_body) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body is %llu bytes, over the limit of %zu", declared,
                 srv->max_body);
        nu_http_resp_error(&st->resp, 413, "too_large", msg, NULL);
        goto out;
    }
    bool has_body = declared > 0 || te != NULL;
    if ((route->flags & NU_HTTP_ROUTE_JSON_BODY) && has_body &&
        !nu_srv_is_json_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"))) {
        nu_http_resp_error(&st->resp, 415, "unsupported",
                           "the request body must have Content-Type application/json", NULL);
        goto out;
    }
out:
    nu_buf_free(&q);
}

static void nu_srv_dispatch(nu_http_server_t *srv, struct nu_srv_req *st)
{
    const struct nu_http_route *route = st->match.route;
    st->req.body = st->body.len ? st->body.data : NULL;
    st->req.body_len = st->body.len;
    st->req.thread_ctx = nu_srv_thread_ctx(srv);
    route->handler(&st->req, &st->resp, srv->builtin[st->match.index] ? srv : srv->app_ctx);
}

static enum MHD_Result nu_srv_access(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    nu_http_server_t *srv = cls;
    struct nu_srv_req *st = *con_cls;
    if (!st) {
        st = nu_xcalloc(1, sizeof(*st));
        *con_cls = st;
        nu_srv_begin(srv, conn, st, url, method);
        return st->resp.status ? nu_srv_send(srv, conn, st) : MHD_YES;
    }
    if (st->sent) { /* refused early: drop whatever body still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || n > srv->max_body - st->body.len) {
            st->too_large = true;
            st->discarded += n;
            /* a body far over the limit is not worth reading to the end: close */
            return st->discarded > srv->max_body + NU_HTTP_DEFAULT_MAX_BODY ? MHD_NO : MHD_YES;
        }
        nu_buf_append(&st->body, upload_data, n);
        return MHD_YES;
    }
    if (st->too_large) {
        char msg[160];
        snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes", srv->max_body);
        nu_http_resp_error(&st->resp, 413, "too_large", msg, NULL);
    } else {
        nu_srv_dispatch(srv, st);
    }
    return nu_srv_send(srv, conn, st);
}

static void nu_srv_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct nu_srv_req *st = *con_cls;
    if (!st)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        char path[256];
        nu_srv_sanitize(st->req.path, path, sizeof(path));
        NU_LOG_DEBUG_AREA("http", "http", "request ended early\tpath=\"%s\" reason=%d", path,
                          (int)toe);
    }
    nu_http_req_free(&st->req);
    nu_http_resp_free(&st->resp);
    nu_buf_free(&st->body);
    free(st);
    *con_cls = NULL;
}

static size_t nu_srv_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s); /* decoding is done per segment / parameter by the router and http.c */
}

static void nu_srv_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    NU_LOG_DEBUG_AREA("http", "http", "libmicrohttpd: %s", msg);
}

/* ---- built-in routes ------------------------------------------------------------------------
 */

static void nu_srv_healthz(const struct nu_http_req *req, struct nu_http_resp *resp, void *ctx)
{
    nu_http_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    nu_http_resp_header(resp, "Cache-Control", "no-store");
}

static void nu_srv_metrics(const struct nu_http_req *req, struct nu_http_resp *resp, void *ctx)
{
    nu_http_server_t *srv = ctx;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    nu_http_metrics_render(srv, &resp->body);
    if (srv->metrics_extra)
        srv->metrics_extra(&resp->body, srv->app_ctx);
    nu_http_resp_header(resp, "Cache-Control", "no-store");
}

static void nu_srv_openapi(const struct nu_http_req *req, struct nu_http_resp *resp, void *ctx)
{
    size_t n = 0;
    const char *doc = nu_openapi_json(&n);
    nu_http_resp_bytes(resp, 200, "application/json", doc, n);
    nu_http_resp_header(resp, "Cache-Control", "no-cache");
}

static const struct nu_http_route nu_srv_builtins[] = {
    {NU_HTTP_GET, "/healthz", nu_srv_healthz, NU_HTTP_ROUTE_PUBLIC},
    {NU_HTTP_GET, "/metrics", nu_srv_metrics, 0},
    {NU_HTTP_GET, "/api/v1/openapi.json", nu_srv_openapi, NU_HTTP_ROUTE_PUBLIC},
};

/* ---- life cycle --------------------------------------------------------------------------- */

static nu_err_t nu_srv_parse_listen(const char *listen, struct sockaddr_storage *ss,
                                    socklen_t *sslen, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    char host[256];
    const char *colon = strrchr(listen, ':'), *h = listen;
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    struct addrinfo hints, *res = NULL;
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) > 65535) {
        rc = nu_err_set(eb, NU_ERR_CONFIG,
                        "invalid listen address \"%s\": expected host:port with a port of 0 to "
                        "65535",
                        listen);
        goto out;
    }
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "invalid listen address \"%s\": host too long", listen);
        goto out;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0 || !res) {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "invalid listen address \"%s\": %s", listen,
                        gai_strerror(gai));
        goto out;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

static bool nu_srv_route_defined(const struct nu_http_route *routes, size_t n,
                                 const struct nu_http_route *r)
{
    for (size_t i = 0; i < n; i++)
        if (routes[i].method == r->method && routes[i].pattern &&
            strcmp(routes[i].pattern, r->pattern) == 0)
            return true;
    return false;
}

nu_err_t nu_http_server_new(const struct nu_http_server_conf *conf,
                            const struct nu_http_route *routes, size_t n, void *app_ctx,
                            nu_http_server_t **out, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    struct nu_http_server_conf defaults = {0};
    const size_t nb = sizeof(nu_srv_builtins) / sizeof(nu_srv_builtins[0]);
    struct nu_http_route *all = nu_xcalloc(n + nb, sizeof(*all));
    nu_http_server_t *srv = nu_xcalloc(1, sizeof(*srv));
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    *out = NULL;
    if (!conf)
        conf = &defaults;
    srv->app_ctx = app_ctx;
    srv->threads = conf->threads ? conf->threads : NU_HTTP_DEFAULT_THREADS;
    srv->max_body = conf->max_body_bytes ? conf->max_body_bytes : NU_HTTP_DEFAULT_MAX_BODY;
    srv->thread_ctx_new = conf->thread_ctx_new;
    srv->thread_ctx_free = conf->thread_ctx_free;
    srv->metrics_extra = conf->metrics_extra;
    srv->listen = nu_xstrdup(conf->listen ? conf->listen : NU_HTTP_DEFAULT_LISTEN);
    if (pthread_key_create(&srv->tls_key, nu_srv_tls_destroy) != 0) {
        rc = nu_err_set(eb, NU_ERR_SYSTEM, "could not create a thread-local key");
        goto out;
    }
    srv->tls_key_ok = true;
    if (srv->threads > NU_HTTP_MAX_THREADS) {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "HTTP thread pool of %u is over the limit of %d",
                        srv->threads, NU_HTTP_MAX_THREADS);
        goto out;
    }
    if (conf->bearer_token && *conf->bearer_token) {
        srv->token_len = strlen(conf->bearer_token);
        if (srv->token_len > NU_HTTP_MAX_TOKEN_BYTES) {
            rc = nu_err_set(eb, NU_ERR_CONFIG, "bearer token is over the limit of %d bytes",
                            NU_HTTP_MAX_TOKEN_BYTES);
            goto out;
        }
        srv->token = nu_xstrdup(conf->bearer_token);
    }
    rc = nu_srv_parse_listen(srv->listen, &ss, &sslen, eb);
    if (rc != NU_OK)
        goto out;

    size_t nall = 0;
    srv->builtin = nu_xcalloc(n + nb, sizeof(*srv->builtin));
    for (size_t i = 0; i < n; i++)
        all[nall++] = routes[i];
    for (size_t i = 0; i < nb; i++) {
        if (nu_srv_route_defined(routes, n, &nu_srv_builtins[i]))
            continue;
        srv->builtin[nall] = true;
        all[nall++] = nu_srv_builtins[i];
    }
    rc = nu_http_router_new(all, nall, &srv->router, eb);
    if (rc != NU_OK)
        goto out;
    srv->nroutes = nall;
    nu_srv_metrics_init(srv);

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, nu_srv_access, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, srv->threads, MHD_OPTION_CONNECTION_TIMEOUT,
        conf->timeout_s ? conf->timeout_s : NU_HTTP_DEFAULT_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        conf->max_connections ? conf->max_connections : NU_HTTP_DEFAULT_MAX_CONNS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        nu_srv_completed, srv, MHD_OPTION_UNESCAPE_CALLBACK, nu_srv_unescape_none, srv,
        MHD_OPTION_EXTERNAL_LOGGER, nu_srv_mhd_log, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        rc = nu_err_set(eb, NU_ERR_SYSTEM, "could not start the HTTP server on \"%s\": %s",
                        srv->listen, errno ? strerror(errno) : "unknown error");
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    nu_log(NU_LOG_INFO, "http", "listening\taddr=%s port=%u threads=%u auth=%s", srv->listen,
           srv->port, srv->threads, srv->token ? "bearer" : "none");
    *out = srv;
    srv = NULL;
out:
    (void)sslen;
    free(all);
    nu_http_server_destroy(srv);
    return rc;
}

void nu_http_server_destroy(nu_http_server_t *srv)
{
    if (!srv)
        return;
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd); /* joins the pool: thread contexts are freed by then */
    if (srv->tls_key_ok)
        pthread_key_delete(srv->tls_key);
    nu_http_router_destroy(srv->router);
    nu_srv_metrics_free(srv);
    free(srv->builtin);
    if (srv->token)
        explicit_bzero(srv->token, srv->token_len);
    free(srv->token);
    free(srv->listen);
    free(srv);
}

unsigned nu_http_server_port(const nu_http_server_t *srv)
{
    return srv->port;
}
