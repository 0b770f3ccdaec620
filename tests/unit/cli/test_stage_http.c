/* test_stage_http.c — the stage endpoint (cli/stage_http.c) over a monitor (stage/monitor.c). */
#include "cli/stage_http.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sh_reply {
    long status;
    char body[65536];
    size_t len;
};

static size_t sh_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sh_reply *r = ud;
    size_t k = size * n;
    if (r->len + k >= sizeof(r->body))
        k = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return size * n;
}

static void sh_get(unsigned port, const char *path, struct sh_reply *r)
{
    char url[256];
    CURL *c = curl_easy_init();
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "GET %s failed", path);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
}

Test(stage_http, endpoints_follow_the_stage_state)
{
    nu_stage_monitor_t *m = nu_stage_monitor_new();
    nu_stage_http_t *h = NULL;
    struct nu_errbuf eb;
    struct sh_reply r;
    struct nu_stage_snapshot *s = calloc(1, sizeof(*s));
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_cli_stage_http_start("127.0.0.1:0", m, "etl", "dbl", 3, &h, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    unsigned port = nu_cli_stage_http_port(h);
    cr_assert_gt(port, 0);

    sh_get(port, "/healthz", &r);
    cr_assert_eq(r.status, 200);
    sh_get(port, "/readyz", &r);
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert(strstr(r.body, "\"starting\""), "%s", r.body);

    s->state = NU_STAGE_READY;
    s->stats.rows_in = 1234;
    s->stats.rows_out = 617;
    s->stats.txns_committed = 9;
    s->stats.dead_letters = 2;
    s->assigned = 2;
    s->nlags = 2;
    snprintf(s->lags[0].topic, sizeof(s->lags[0].topic), "nurion.etl.src");
    s->lags[0].partition = 0;
    s->lags[0].lag = 42;
    snprintf(s->lags[1].topic, sizeof(s->lags[1].topic), "nurion.etl.src");
    s->lags[1].partition = 5;
    s->lags[1].lag = 0;
    nu_stage_monitor_publish(m, s);
    sh_get(port, "/readyz", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(strstr(r.body, "\"assigned\":2"), "%s", r.body);

    sh_get(port, "/metrics", &r);
    cr_assert_eq(r.status, 200);
    static const char *const want[] = {
        "nurion_stage_rows_in_total{job=\"etl\",stage=\"dbl\",instance=\"3\"} 1234\n",
        "nurion_stage_rows_out_total{job=\"etl\",stage=\"dbl\",instance=\"3\"} 617\n",
        "nurion_stage_transactions_committed_total{job=\"etl\",stage=\"dbl\",instance=\"3\"} 9\n",
        "nurion_stage_dead_letters_total{job=\"etl\",stage=\"dbl\",instance=\"3\"} 2\n",
        "nurion_stage_assigned_partitions{job=\"etl\",stage=\"dbl\",instance=\"3\"} 2\n",
        "nurion_stage_ready{job=\"etl\",stage=\"dbl\",instance=\"3\"} 1\n",
        "nurion_stage_partition_lag{job=\"etl\",stage=\"dbl\",instance=\"3\",topic=\"nurion.etl."
        "src\","
        "partition=\"0\"} 42\n",
        "nurion_stage_partition_lag{job=\"etl\",stage=\"dbl\",instance=\"3\",topic=\"nurion.etl."
        "src\","
        "partition=\"5\"} 0\n",
        "# TYPE nurion_stage_errors_total counter\n",
        "nurion_http_requests_total",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect(strstr(r.body, want[i]), "metrics lack \"%s\":\n%s", want[i], r.body);

    /* a fatal error is terminal: readiness stays off whatever is published later */
    nu_stage_monitor_set_state(m, NU_STAGE_FAILED);
    nu_stage_monitor_publish(m, s);
    sh_get(port, "/readyz", &r);
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert(strstr(r.body, "\"failed\""), "%s", r.body);
    sh_get(port, "/healthz", &r);
    cr_assert_eq(r.status, 200);

    nu_cli_stage_http_stop(h);
    nu_stage_monitor_destroy(m);
    free(s);
}

Test(stage_http, bad_listen_address_is_a_config_error)
{
    nu_stage_monitor_t *m = nu_stage_monitor_new();
    nu_stage_http_t *h = (nu_stage_http_t *)1;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_cli_stage_http_start("no-port-here", m, "j", "s", 0, &h, &eb), NU_ERR_CONFIG);
    cr_assert_null(h);
    cr_assert_neq(nu_err_msg(&eb)[0], '\0');
    nu_stage_monitor_destroy(m);
}

Test(stage_http, label_values_are_escaped)
{
    struct nu_stage_snapshot *s = calloc(1, sizeof(*s));
    struct nu_buf out = NU_BUF_INIT;
    nu_cli_stage_metrics_render(s, "a\"b", "c\\d", 0, &out);
    nu_buf_putc(&out, '\0');
    cr_assert(strstr((char *)out.data, "{job=\"a\\\"b\",stage=\"c\\\\d\",instance=\"0\"} 0\n"),
              "%s", (char *)out.data);
    cr_assert(strstr((char *)out.data, "nurion_stage_ready{job=\"a\\\"b\",stage=\"c\\\\d\","
                                       "instance=\"0\"} 0\n"));
    nu_buf_free(&out);
    free(s);
}

Test(stage_http, pod_ordinal)
{
    static const struct {
        const char *name;
        bool ok;
        long want;
    } cases[] = {
        {"nurion-etl-dbl-0", true, 0},
        {"nurion-etl-dbl-17", true, 17},
        {"web-65535", true, 65535},
        {"web-65536", false, 0},
        {"web-", false, 0},
        {"web", false, 0},
        {"-3", false, 0},
        {"web-3a", false, 0},
        {"web-0x1", false, 0},
        {"", false, 0},
        {NULL, false, 0},
        {"a-b-c-999999999999999999999", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long got = -1;
        bool ok = nu_cli_pod_ordinal(cases[i].name, &got);
        cr_expect_eq(ok, cases[i].ok, "\"%s\": ok %d", cases[i].name ? cases[i].name : "(null)",
                     ok);
        if (ok && cases[i].ok)
            cr_expect_eq(got, cases[i].want, "\"%s\": %ld", cases[i].name, got);
    }
}
