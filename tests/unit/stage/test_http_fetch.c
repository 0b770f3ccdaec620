/* test_http_fetch.c — http_fetch without a server: option validation (table-driven), the
 * output schema, the Content-Type allow-list, the back-off schedule, and the fetch loop on
 * URLs that fail locally (a refused connection is retried; a non-HTTP scheme is refused). */
#include "stage/media_int.h"
#include "stage/op_http_fetch.h"

#include "operators/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

static const struct nu_operator *fetch_op(void)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb = {0};
    nu_media_register();
    cr_assert_eq(nu_registry_find("http_fetch", NULL, &op, &eb), NU_OK, "%s", nu_err_msg(&eb));
    return op;
}

struct vcase {
    const char *config;
    const char *path;    /* NULL: valid */
    const char *message; /* a substring of the first problem */
};

static const struct vcase vcases[] = {
    {"{\"prefix\": \"file:///tmp/x\"}", NULL, NULL},
    {"{\"prefix\": \"s3://bucket/fetched\", \"url_column\": \"link\", \"concurrency\": 64, "
     "\"connect_timeout_ms\": 500, \"timeout_ms\": 2000, \"retries\": 0, \"backoff_ms\": 0, "
     "\"max_bytes\": 1024, \"max_redirects\": 0, \"content_types\": [\"image/\", \"video/mp4\"]}",
     NULL, NULL},
    {"{}", "$", "missing field \"prefix\""},
    {"[]", "$", "expected an object"},
    {"{\"prefix\": \"http://x/y\"}", "$.prefix", "file://"},
    {"{\"prefix\": \"file:///x\", \"concurrency\": 0}", "$.concurrency", "at least 1, got 0"},
    {"{\"prefix\": \"file:///x\", \"concurrency\": 257}", "$.concurrency", "at most 256, got 257"},
    {"{\"prefix\": \"file:///x\", \"timeout_ms\": 0}", "$.timeout_ms", "at least 1, got 0"},
    {"{\"prefix\": \"file:///x\", \"connect_timeout_ms\": \"5s\"}", "$.connect_timeout_ms",
     "integer"},
    {"{\"prefix\": \"file:///x\", \"retries\": -1}", "$.retries", "at least 0, got -1"},
    {"{\"prefix\": \"file:///x\", \"backoff_ms\": 60001}", "$.backoff_ms",
     "at most 60000, got 60001"},
    {"{\"prefix\": \"file:///x\", \"max_bytes\": 0}", "$.max_bytes", "at least 1, got 0"},
    {"{\"prefix\": \"file:///x\", \"max_redirects\": 51}", "$.max_redirects", "at most 50, got 51"},
    {"{\"prefix\": \"file:///x\", \"content_types\": \"image/\"}", "$.content_types",
     "expected an array"},
    {"{\"prefix\": \"file:///x\", \"content_types\": []}", "$.content_types", "expected an array"},
    {"{\"prefix\": \"file:///x\", \"content_types\": [\"image/\", 3]}", "$.content_types[1]",
     "content type prefix"},
    {"{\"prefix\": \"file:///x\", \"content_types\": [\"text/html; charset=utf-8\"]}",
     "$.content_types[0]", "content type prefix"},
    {"{\"prefix\": \"file:///x\", \"url_column\": 7}", "$.url_column", "string"},
    {"{\"prefix\": \"file:///x\", \"timeout\": 5}", "$.timeout", "unknown field"},
};

Test(http_fetch, validate_table)
{
    const struct nu_operator *op = fetch_op();
    for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
        const struct vcase *t = &vcases[i];
        json_t *c = json_loads(t->config, JSON_DECODE_ANY, NULL);
        struct nu_problems p;
        cr_assert_not_null(c, "%s", t->config);
        nu_problems_init(&p);
        op->validate(c, "$", &p);
        if (!t->path) {
            cr_expect_eq(p.n, 0, "%s: unexpected problem at %s: %s", t->config,
                         p.n ? p.items[0].path : "", p.n ? p.items[0].message : "");
        } else {
            cr_expect_geq(p.n, 1, "%s: no problem reported", t->config);
            if (p.n >= 1) {
                cr_expect_str_eq(p.items[0].path, t->path, "%s: %s", t->config, p.items[0].message);
                cr_expect(strstr(p.items[0].message, t->message), "%s: message \"%s\"", t->config,
                          p.items[0].message);
            }
        }
        nu_problems_free(&p);
        json_decref(c);
    }
}

static struct nu_schema *schema_of(const char *a, nu_type_t ta, const char *b, nu_type_t tb)
{
    struct nu_schema *s = nu_schema_new(b ? 2 : 1);
    nu_schema_set(s, 0, a, ta, false, NULL);
    if (b)
        nu_schema_set(s, 1, b, tb, false, NULL);
    return s;
}

Test(http_fetch, schema_appends_claim_check_columns)
{
    static const char *const want[] = {"url",          "uri",    "size",     "sha256",
                                       "content_type", "status", "final_url"};
    static const nu_type_t wt[] = {NU_T_STRING, NU_T_STRING, NU_T_INT64, NU_T_STRING,
                                   NU_T_STRING, NU_T_INT64,  NU_T_STRING};
    const struct nu_operator *op = fetch_op();
    json_t *c = json_loads("{\"prefix\": \"file:///tmp/x\"}", 0, NULL);
    struct nu_schema *in = schema_of("url", NU_T_STRING, NULL, 0), *out = NULL;
    struct nu_errbuf eb = {0};

    cr_assert_eq(op->schema(c, in, "$.stages[1].config", NULL, &out, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(out->ncols, 7);
    for (size_t i = 0; i < 7; i++) {
        cr_expect_str_eq(out->cols[i].name, want[i]);
        cr_expect_eq(out->cols[i].type, wt[i], "column %s", want[i]);
    }
    nu_schema_unref(out);
    nu_schema_unref(in);
    json_decref(c);
}

struct scase {
    const char *config;
    const char *col_a;
    nu_type_t ta;
    const char *col_b;
    const char *message;
};

Test(http_fetch, schema_faults)
{
    static const struct scase cases[] = {
        {"{\"prefix\": \"file:///x\"}", "link", NU_T_STRING, NULL, "no input column \"url\""},
        {"{\"prefix\": \"file:///x\", \"url_column\": \"link\"}", "link", NU_T_INT64, NULL,
         "column \"link\" is int64, expected string"},
        {"{\"prefix\": \"file:///x\"}", "url", NU_T_STRING, "sha256",
         "already has a column \"sha256\""},
    };
    const struct nu_operator *op = fetch_op();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *c = json_loads(cases[i].config, 0, NULL);
        struct nu_schema *in = schema_of(cases[i].col_a, cases[i].ta, cases[i].col_b, NU_T_STRING),
                         *out = NULL;
        struct nu_errbuf eb = {0};
        struct nu_problems p;
        nu_problems_init(&p);
        cr_expect_eq(op->schema(c, in, "$.stages[1].config", &p, &out, &eb), NU_ERR_TYPE);
        cr_expect_null(out);
        cr_expect_eq(p.n, 1);
        cr_expect(strstr(nu_err_msg(&eb), cases[i].message), "case %zu: %s", i, nu_err_msg(&eb));
        nu_problems_free(&p);
        nu_schema_unref(in);
        json_decref(c);
    }
}

Test(http_fetch, content_type_allow_list)
{
    static const char *const allow[] = {"image/", "video/mp4"};
    static const struct {
        const char *ct;
        bool ok;
    } cases[] = {
        {"image/jpeg", true},  {"IMAGE/PNG", true},
        {"video/mp4", true},   {"video/mp4; codecs=avc1", true},
        {"video/webm", false}, {"text/html", false},
        {NULL, false},         {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(nu_fetch_ctype_allowed(cases[i].ct, allow, 2), cases[i].ok, "%s",
                     cases[i].ct ? cases[i].ct : "(null)");
    cr_expect(nu_fetch_ctype_allowed(NULL, NULL, 0), "an empty list allows anything");
}

Test(http_fetch, backoff_doubles_up_to_a_cap)
{
    cr_expect_eq(nu_fetch_backoff_ms(200, 1), 200);
    cr_expect_eq(nu_fetch_backoff_ms(200, 2), 400);
    cr_expect_eq(nu_fetch_backoff_ms(200, 4), 1600);
    cr_expect_eq(nu_fetch_backoff_ms(200, 30), 30000);
    cr_expect_eq(nu_fetch_backoff_ms(0, 5), 0);
}

/* A loopback port with nothing listening: bind, read the port, close. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(http_fetch, refused_connection_is_retried_then_fails)
{
    char url[128];
    struct nu_fetch_conf c = {.concurrency = 2,
                              .connect_timeout_ms = 2000,
                              .timeout_ms = 2000,
                              .retries = 2,
                              .backoff_ms = 50,
                              .max_redirects = 3,
                              .max_bytes = 1024,
                              .tmpdir = "/tmp"};
    struct nu_fetch_item it[2] = {{.url = url}, {.url = "file:///etc/hostname"}};
    struct nu_errbuf eb = {0};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port());
    cr_assert_eq(nu_fetch_run(&c, it, 2, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_not(it[0].ok);
    cr_expect_eq(it[0].attempts, 3, "a refused connection is retried (%d attempts)",
                 it[0].attempts);
    cr_expect(strstr(it[0].error, "GET http://127.0.0.1:") && strstr(it[0].error, "(3 attempts)"),
              "%s", it[0].error);
    cr_expect_null(it[0].path);
    cr_expect_not(it[1].ok);
    cr_expect_eq(it[1].attempts, 1, "a refused scheme is not retried");
    cr_expect_eq(it[1].rc, NU_ERR_INVALID);
    cr_expect(strstr(it[1].error, "GET file:///etc/hostname: "), "%s", it[1].error);
    nu_fetch_item_clear(&it[0]);
    nu_fetch_item_clear(&it[1]);
}

struct sink {
    size_t batches, rows, rejects;
    char reason[256];
};

static nu_err_t sink_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct sink *s = ctx;
    (void)eb;
    s->batches++;
    s->rows += b->nrows;
    nu_batch_destroy(b);
    return NU_OK;
}

static nu_err_t sink_reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                            size_t raw_len, const char *reason, struct nu_errbuf *eb)
{
    struct sink *s = ctx;
    (void)in, (void)row, (void)raw, (void)raw_len, (void)eb;
    s->rejects++;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    return NU_OK;
}

Test(http_fetch, empty_batch_null_url_and_bad_config)
{
    const struct nu_operator *op = fetch_op();
    json_t *good = json_loads("{\"prefix\": \"file:///tmp/nu-fetch-unit\"}", 0, NULL);
    json_t *bad = json_loads("{\"prefix\": \"file:///tmp/x\", \"concurrency\": 300}", 0, NULL);
    struct nu_schema *s = nu_schema_new(1);
    struct nu_errbuf eb = {0};
    struct sink out = {0};
    void *st = NULL;

    nu_schema_set(s, 0, "url", NU_T_STRING, true, NULL);
    struct nu_op_open_args a = {.config = bad, .in = s, .job_id = "j", .stage_id = "f"};
    cr_expect_eq(op->open(&a, &st, &eb), NU_ERR_CONFIG);
    cr_expect(strstr(nu_err_msg(&eb), "concurrency") && strstr(nu_err_msg(&eb), "at most 256"),
              "%s", nu_err_msg(&eb));
    cr_expect_null(st);

    nu_errbuf_clear(&eb);
    a.config = good;
    cr_assert_eq(op->open(&a, &st, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_arena_t *scratch = nu_arena_new(0);
    struct nu_op_batch_ctx ctx = {.split_id = "s",
                                  .attempt = 1,
                                  .scratch = scratch,
                                  .reject = sink_reject,
                                  .reject_ctx = &out};
    struct nu_op_emit emit = {.ctx = &out, .emit = sink_emit};

    struct nu_batch *empty = nu_batch_new(s, 0);
    cr_expect_eq(op->process(st, &ctx, empty, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_eq(out.batches, 0, "an empty batch emits nothing");

    struct nu_batch *nulls = nu_batch_new(s, 2);
    nu_batch_add_row(nulls)[0] = nu_value_null();
    nu_batch_add_row(nulls)[0] = nu_value_null();
    cr_expect_eq(op->process(st, &ctx, nulls, &emit, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_eq(out.rows, 0);
    cr_expect_eq(out.rejects, 2);
    cr_expect_str_eq(out.reason, "http_fetch: column \"url\" is null");

    /* without a reject callback the split fails with the row's reason */
    ctx.reject = NULL;
    cr_expect_eq(op->process(st, &ctx, nulls, &emit, &eb), NU_ERR_INVALID);
    cr_expect(strstr(nu_err_msg(&eb), "is null"), "%s", nu_err_msg(&eb));

    nu_batch_destroy(empty);
    nu_batch_destroy(nulls);
    op->close(st);
    nu_arena_destroy(scratch);
    nu_schema_unref(s);
    json_decref(good);
    json_decref(bad);
}
