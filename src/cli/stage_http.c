/* stage_http.c — /healthz, /readyz and /metrics of a stage instance. */
#include "cli/stage_http.h"

#include "common/mem.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nu_stage_http {
    nu_http_server_t *srv;
    nu_stage_monitor_t *m;
    const char *job, *stage;
    unsigned instance;
};

static void nu_sh_printf(struct nu_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nu_sh_printf(struct nu_buf *out, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        char *p = (char *)nu_buf_reserve(out, (size_t)n + 1);
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
        out->len += (size_t)n;
    }
    va_end(ap2);
}

/* A label value with \, " and newline escaped, as the text format asks. */
static void nu_sh_label(struct nu_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            nu_buf_putc(out, '\\');
        if (*v == '\n') {
            nu_buf_append(out, "\\n", 2);
            continue;
        }
        nu_buf_putc(out, (unsigned char)*v);
    }
}

static void nu_sh_labels(struct nu_buf *out, const char *job, const char *stage, unsigned instance)
{
    nu_buf_append(out, "{job=\"", 6);
    nu_sh_label(out, job);
    nu_buf_append(out, "\",stage=\"", 9);
    nu_sh_label(out, stage);
    nu_sh_printf(out, "\",instance=\"%u\"", instance);
}

void nu_cli_stage_metrics_render(const struct nu_stage_snapshot *s, const char *job,
                                 const char *stage, unsigned instance, struct nu_buf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } rows[] = {
#define NU_SH_ROW_(field, name, type, help) \
    {name, type, help, offsetof(struct nu_stage_stats, field)},
        NU_SH_ROW_(records_in, "nurion_stage_records_in_total", "counter",
                   "input records consumed") NU_SH_ROW_(splits_in, "nurion_stage_splits_in_total",
                                                        "counter", "input splits processed")
            NU_SH_ROW_(splits_out, "nurion_stage_splits_out_total", "counter",
                       "output splits produced") NU_SH_ROW_(rows_in, "nurion_stage_rows_in_total",
                                                            "counter",
                                                            "rows read from input splits")
                NU_SH_ROW_(rows_out, "nurion_stage_rows_out_total", "counter",
                           "rows written to outputs")
                    NU_SH_ROW_(dead_letters, "nurion_stage_dead_letters_total", "counter",
                               "records sent to the dead-letter topic")
                        NU_SH_ROW_(errors, "nurion_stage_errors_total", "counter",
                                   "operator errors (attempts)")
                            NU_SH_ROW_(txns_committed, "nurion_stage_transactions_committed_total",
                                       "counter", "transactions committed")
                                NU_SH_ROW_(txns_aborted, "nurion_stage_transactions_aborted_total",
                                           "counter", "transactions aborted")
                                    NU_SH_ROW_(partitions_done,
                                               "nurion_stage_partitions_done_total", "counter",
                                               "input partitions consumed to completion")
#undef NU_SH_ROW_
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t v;
        memcpy(&v, (const char *)&s->stats + rows[i].off, sizeof(v));
        nu_sh_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s", rows[i].name, rows[i].help,
                     rows[i].name, rows[i].type, rows[i].name);
        nu_sh_labels(out, job, stage, instance);
        nu_sh_printf(out, "} %" PRId64 "\n", v);
    }
    nu_sh_printf(out, "# HELP nurion_stage_ready 1 when the instance is ready to process\n"
                      "# TYPE nurion_stage_ready gauge\nnurion_stage_ready");
    nu_sh_labels(out, job, stage, instance);
    nu_sh_printf(out, "} %d\n", s->state == NU_STAGE_READY);
    nu_sh_printf(out, "# HELP nurion_stage_assigned_partitions input partitions assigned now\n"
                      "# TYPE nurion_stage_assigned_partitions gauge\n"
                      "nurion_stage_assigned_partitions");
    nu_sh_labels(out, job, stage, instance);
    nu_sh_printf(out, "} %u\n", s->assigned);
    nu_sh_printf(out, "# HELP nurion_stage_partition_lag records behind the high watermark\n"
                      "# TYPE nurion_stage_partition_lag gauge\n");
    for (size_t i = 0; i < s->nlags; i++) {
        nu_buf_append(out, "nurion_stage_partition_lag", 26);
        nu_sh_labels(out, job, stage, instance);
        nu_buf_append(out, ",topic=\"", 8);
        nu_sh_label(out, s->lags[i].topic);
        nu_sh_printf(out, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n", s->lags[i].partition,
                     s->lags[i].lag);
    }
}

static void nu_sh_metrics_extra(struct nu_buf *out, void *app)
{
    nu_stage_http_t *h = app;
    struct nu_stage_snapshot *s = nu_xcalloc(1, sizeof(*s));
    nu_stage_monitor_read(h->m, s);
    nu_cli_stage_metrics_render(s, h->job, h->stage, h->instance, out);
    free(s);
}

static void nu_sh_readyz(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_stage_http_t *h = app;
    struct nu_stage_snapshot *s = nu_xcalloc(1, sizeof(*s));
    (void)req;
    nu_stage_monitor_read(h->m, s);
    nu_http_resp_json(resp, s->state == NU_STAGE_READY ? 200 : 503,
                      json_pack("{s:s, s:I}", "status", nu_stage_state_name(s->state), "assigned",
                                (json_int_t)s->assigned));
    nu_http_resp_header(resp, "Cache-Control", "no-store");
    free(s);
}

nu_err_t nu_cli_stage_http_start(const char *listen, nu_stage_monitor_t *m, const char *job,
                                 const char *stage, unsigned instance, nu_stage_http_t **out,
                                 struct nu_errbuf *eb)
{
    static const struct nu_http_route routes[] = {
        {NU_HTTP_GET, "/readyz", nu_sh_readyz, NU_HTTP_ROUTE_PUBLIC},
    };
    struct nu_http_server_conf conf = {0};
    nu_stage_http_t *h = nu_xcalloc(1, sizeof(*h));
    nu_err_t err;
    h->m = m;
    h->job = job;
    h->stage = stage;
    h->instance = instance;
    conf.listen = listen;
    conf.threads = NU_STAGE_HTTP_THREADS;
    conf.max_body_bytes = 4096;
    conf.metrics_extra = nu_sh_metrics_extra;
    err = nu_http_server_new(&conf, routes, sizeof(routes) / sizeof(routes[0]), h, &h->srv, eb);
    if (err) {
        free(h);
        h = NULL;
    }
    *out = h;
    return err;
}

void nu_cli_stage_http_stop(nu_stage_http_t *h)
{
    if (!h)
        return;
    nu_http_server_destroy(h->srv);
    free(h);
}

unsigned nu_cli_stage_http_port(const nu_stage_http_t *h)
{
    return nu_http_server_port(h->srv);
}

bool nu_cli_pod_ordinal(const char *pod_name, long *out)
{
    const char *dash = pod_name ? strrchr(pod_name, '-') : NULL;
    long v = 0;
    if (!dash || dash == pod_name || dash[1] == '\0')
        return false;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return false;
    }
    *out = v;
    return true;
}
