/* server_metrics.c — per-route request counters and their Prometheus text rendering. */
#include "api/server_int.h"

#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int nu_srv_statuses[NU_SRV_NSTATUS - 1] = {
    200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 406, 408,
    409, 410, 412, 413, 414, 415, 422, 429, 431, 500, 501, 502, 503, 504};

/* Upper bounds of the latency buckets, in milliseconds. */
static const double nu_srv_bounds_ms[NU_SRV_NBUCKETS] = {1,   2.5, 5,   10,   25,   50,
                                                         100, 250, 500, 1000, 2500, 10000};

static size_t nu_srv_status_index(int status)
{
    for (size_t i = 0; i < NU_SRV_NSTATUS - 1; i++)
        if (nu_srv_statuses[i] == status)
            return i;
    return NU_SRV_NSTATUS - 1;
}

void nu_srv_metrics_init(nu_http_server_t *srv)
{
    srv->stats = nu_xcalloc(srv->nroutes + 1, sizeof(*srv->stats));
}

void nu_srv_metrics_free(nu_http_server_t *srv)
{
    free(srv->stats);
    srv->stats = NULL;
}

void nu_srv_metrics_record(nu_http_server_t *srv, size_t idx, int status, double ms)
{
    struct nu_srv_stats *s = &srv->stats[idx <= srv->nroutes ? idx : srv->nroutes];
    size_t b = 0;
    while (b < NU_SRV_NBUCKETS && ms > nu_srv_bounds_ms[b])
        b++;
    atomic_fetch_add_explicit(&s->by_status[nu_srv_status_index(status)], 1, memory_order_relaxed);
    if (status >= 500)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat_us_sum, (unsigned long long)(ms * 1000.0),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat_buckets[b], 1, memory_order_relaxed);
}

unsigned long long nu_http_server_count(const nu_http_server_t *srv, nu_http_method_t method,
                                        const char *pattern, int status)
{
    size_t idx = srv->nroutes;
    if (pattern) {
        for (idx = 0; idx < srv->nroutes; idx++) {
            const struct nu_http_route *r = nu_http_router_route(srv->router, idx);
            if (r->method == method && strcmp(r->pattern, pattern) == 0)
                break;
        }
        if (idx == srv->nroutes)
            return 0;
    }
    const struct nu_srv_stats *s = &srv->stats[idx];
    unsigned long long n = 0;
    for (size_t i = 0; i < NU_SRV_NSTATUS; i++) {
        bool want = status == 0 || (i < NU_SRV_NSTATUS - 1 ? nu_srv_statuses[i] == status
                                                           : nu_srv_status_index(status) == i);
        if (want)
            n += atomic_load_explicit(&s->by_status[i], memory_order_relaxed);
    }
    return n;
}

static void nu_srv_bprintf(struct nu_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nu_srv_bprintf(struct nu_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    char *p = (char *)nu_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Label value escaped for the text format (backslash, quote, newline). */
static void nu_srv_label(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (; *in && j + 3 < cap; in++) {
        if (*in == '\\' || *in == '"') {
            out[j++] = '\\';
            out[j++] = *in;
        } else if (*in == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

static void nu_srv_route_labels(const nu_http_server_t *srv, size_t idx, char *out, size_t cap)
{
    char pat[512];
    if (idx == srv->nroutes) {
        snprintf(out, cap, "method=\"\",route=\"unmatched\"");
        return;
    }
    const struct nu_http_route *r = nu_http_router_route(srv->router, idx);
    nu_srv_label(r->pattern, pat, sizeof(pat));
    snprintf(out, cap, "method=\"%s\",route=\"%s\"", nu_http_method_name(r->method), pat);
}

void nu_http_metrics_render(const nu_http_server_t *srv, struct nu_buf *out)
{
    char labels[640];
    nu_srv_bprintf(out, "# HELP nurion_http_requests_total HTTP requests answered, by route "
                        "and status.\n# TYPE nurion_http_requests_total counter\n");
    for (size_t r = 0; r <= srv->nroutes; r++) {
        nu_srv_route_labels(srv, r, labels, sizeof(labels));
        for (size_t i = 0; i < NU_SRV_NSTATUS; i++) {
            unsigned long long v =
                atomic_load_explicit(&srv->stats[r].by_status[i], memory_order_relaxed);
            if (v == 0)
                continue;
            if (i < NU_SRV_NSTATUS - 1)
                nu_srv_bprintf(out, "nurion_http_requests_total{%s,status=\"%d\"} %llu\n", labels,
                               nu_srv_statuses[i], v);
            else
                nu_srv_bprintf(out, "nurion_http_requests_total{%s,status=\"other\"} %llu\n",
                               labels, v);
        }
    }
    nu_srv_bprintf(out, "# HELP nurion_http_errors_total HTTP requests answered with a 5xx "
                        "status.\n# TYPE nurion_http_errors_total counter\n");
    for (size_t r = 0; r <= srv->nroutes; r++) {
        nu_srv_route_labels(srv, r, labels, sizeof(labels));
        nu_srv_bprintf(out, "nurion_http_errors_total{%s} %llu\n", labels,
                       atomic_load_explicit(&srv->stats[r].errors, memory_order_relaxed));
    }
    nu_srv_bprintf(out, "# HELP nurion_http_request_duration_seconds Time from request headers "
                        "to response.\n# TYPE nurion_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= srv->nroutes; r++) {
        const struct nu_srv_stats *s = &srv->stats[r];
        unsigned long long cum = 0;
        nu_srv_route_labels(srv, r, labels, sizeof(labels));
        for (size_t b = 0; b <= NU_SRV_NBUCKETS; b++) {
            cum += atomic_load_explicit(&s->lat_buckets[b], memory_order_relaxed);
            if (b < NU_SRV_NBUCKETS)
                nu_srv_bprintf(out,
                               "nurion_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                               labels, nu_srv_bounds_ms[b] / 1000.0, cum);
            else
                nu_srv_bprintf(out,
                               "nurion_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
                               labels, cum);
        }
        nu_srv_bprintf(out, "nurion_http_request_duration_seconds_sum{%s} %.6f\n", labels,
                       (double)atomic_load_explicit(&s->lat_us_sum, memory_order_relaxed) / 1e6);
        nu_srv_bprintf(out, "nurion_http_request_duration_seconds_count{%s} %llu\n", labels, cum);
    }
}
