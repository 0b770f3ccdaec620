/* test_http_fetch.c — http_fetch end to end through the broker with `nurion run`, against a
 * real HTTP server on 127.0.0.1 that the test runs in its own process with libmicrohttpd (the
 * library the coordinator's API already links, so nothing new is needed, and the test can count
 * requests per URL to prove retries and stream bodies without a Content-Length).
 *
 * Endpoints: /files/<name> (generated images; chunked.png without Content-Length), /flaky/<k>
 * (HTTP 500 for the first <k> requests, then an image), /slow (answers after 5 s), /missing
 * (404), /r/<n> (a chain of n redirects ending at /files/a.jpg), /big and /bigchunked (2 MiB,
 * with and without Content-Length), /html (text/html). The job reads the URLs from a JSON Lines
 * file, fetches them (3 at a time, so in two rounds of 12 and 3) into a file:// blob folder,
 * re-hashes the stored objects and writes rows to files; every failing URL must be in the
 * dead-letter topic with its reason. */
#include "pipeline.h"

#include "common/sha256.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>

#define BIG_BYTES (2 << 20)

static char files[256];
static pthread_mutex_t hits_mu = PTHREAD_MUTEX_INITIALIZER;
static int flaky_hits[10];
static char big[BIG_BYTES];

static const char *const served[] = {"a.jpg", "b.png", "c.jpg", "d.png", "chunked.png"};

static void sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void files_gen(void)
{
    char cmd[2048];
    snprintf(files, sizeof(files), "/tmp/nu-it-fetch-XXXXXX");
    cr_assert_not_null(mkdtemp(files));
    snprintf(cmd, sizeof(cmd),
             "cd %s && /usr/bin/convert rose: a.jpg && /usr/bin/convert rose: -resize 200%% b.png"
             " && /usr/bin/convert -size 640x480 plasma:fractal -seed 7 c.jpg"
             " && /usr/bin/convert -size 300x200 gradient:red-blue d.png"
             " && /usr/bin/convert -size 320x240 pattern:checkerboard chunked.png",
             files);
    sh(cmd);
    memset(big, 'x', sizeof(big));
}

TestSuite(http_fetch, .init = files_gen, .timeout = 300);

/* Whole file `name` of the served folder; returned owned, *len its size. */
static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", files, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void sha_hex(const void *p, size_t n, char hex[65])
{
    unsigned char d[NU_SHA256_LEN];
    nu_sha256(p, n, d);
    nu_sha256_hex(d, NU_SHA256_LEN, hex);
}

/* A body streamed in 8 KiB pieces with no Content-Length (chunked encoding). */
struct stream {
    char *data;
    size_t len;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    size_t n;
    if (pos >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = s->len - pos < max ? s->len - pos : max;
    if (n > 8192)
        n = 8192;
    memcpy(buf, s->data + pos, n);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    if (s->data != big)
        free(s->data);
    free(s);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                             const char *ctype)
{
    enum MHD_Result ok;
    if (ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text,
                                  const char *ctype)
{
    return reply(c, status,
                 MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY),
                 ctype);
}

static enum MHD_Result reply_file(struct MHD_Connection *c, const char *name)
{
    size_t len;
    char *data;
    const char *ct = strstr(name, ".png") ? "image/png" : "image/jpeg";
    data = slurp(name, &len);
    if (strcmp(name, "chunked.png") == 0) {
        struct stream *s = malloc(sizeof(*s));
        s->data = data;
        s->len = len;
        return reply(
            c, 200,
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free),
            ct);
    }
    return reply(c, 200, MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE), ct);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_len, (void)con_cls;
    if (strncmp(url, "/files/", 7) == 0) {
        for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
            if (strcmp(url + 7, served[i]) == 0)
                return reply_file(c, served[i]);
        return reply_text(c, 404, "no such file", "text/plain");
    }
    if (strncmp(url, "/flaky/", 7) == 0) {
        int k = atoi(url + 7), n;
        cr_assert(k >= 0 && k < 10);
        pthread_mutex_lock(&hits_mu);
        n = ++flaky_hits[k];
        pthread_mutex_unlock(&hits_mu);
        if (n <= k)
            return reply_text(c, 500, "try again", "text/plain");
        return reply_file(c, "b.png");
    }
    if (strcmp(url, "/slow") == 0) {
        sleep(5);
        return reply_file(c, "a.jpg");
    }
    if (strncmp(url, "/r/", 3) == 0) {
        int n = atoi(url + 3);
        char next[64];
        struct MHD_Response *r;
        if (n <= 0)
            return reply_file(c, "a.jpg");
        snprintf(next, sizeof(next), "/r/%d", n - 1);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, next);
        return reply(c, 302, r, "text/plain");
    }
    if (strcmp(url, "/big") == 0)
        return reply(c, 200,
                     MHD_create_response_from_buffer(sizeof(big), big, MHD_RESPMEM_PERSISTENT),
                     "image/jpeg");
    if (strcmp(url, "/bigchunked") == 0) {
        struct stream *s = malloc(sizeof(*s));
        s->data = big;
        s->len = sizeof(big);
        return reply(
            c, 200,
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free),
            "image/jpeg");
    }
    if (strcmp(url, "/html") == 0)
        return reply_text(c, 200, "<html><body>hello</body></html>", "text/html; charset=utf-8");
    return reply_text(c, 404, "not found", "text/plain");
}

static const char job_tmpl[] =
    "{\"job_id\": \"@ID@\", \"guarantee\": \"exactly_once\", \"format\": \"json\","
    " \"defaults\": {\"partitions\": 2},"
    " \"stages\": ["
    "  {\"id\": \"src\", \"operator\": \"file_source\", \"config\": {\"paths\": "
    "\"@OUT@/urls.jsonl\","
    " \"format\": \"jsonl\", \"columns\": [[\"url\", \"string\"]]}},"
    "  {\"id\": \"fetch\", \"operator\": \"http_fetch\", \"config\": {\"prefix\": "
    "\"file://@OUT@/blobs\", \"concurrency\": 3, \"connect_timeout_ms\": 2000, \"timeout_ms\": "
    "2000, \"retries\": 2, \"backoff_ms\": 50, \"max_bytes\": 1048576, \"max_redirects\": 3, "
    "\"content_types\": [\"image/\"]}, \"upstream\": [\"src\"]},"
    "  {\"id\": \"verify\", \"operator\": \"hash\", \"config\": {\"into\": \"check\"}, "
    "\"upstream\": [\"fetch\"]},"
    "  {\"id\": \"out\", \"operator\": \"file_sink\", \"config\": {\"path\": \"@OUT@/rows\", "
    "\"format\": \"jsonl\"}, \"upstream\": [\"verify\"]}]}";

struct want_fail {
    const char *path;
    const char *reason; /* substring of the dead letter's reason */
};

static const struct want_fail fails[] = {
    {"/missing", "/missing: HTTP 404"},
    {"/files/nope.jpg", "/files/nope.jpg: HTTP 404"},
    {"/flaky/5", "/flaky/5: HTTP 500 (3 attempts)"},
    {"/slow", "/slow: timed out after 2000 ms (3 attempts)"},
    {"/r/4", "/r/4: more than 3 redirects"},
    {"/big", "/big: body exceeds max_bytes 1048576"},
    {"/bigchunked", "/bigchunked: body exceeds max_bytes 1048576"},
    {"/html", "/html: content type text/html; charset=utf-8 not allowed"},
};

struct want_ok {
    const char *path;
    const char *file;  /* what the server sent */
    const char *final; /* path after redirects */
};

static const struct want_ok oks[] = {
    {"/files/a.jpg", "a.jpg", "/files/a.jpg"},
    {"/files/b.png", "b.png", "/files/b.png"},
    {"/files/c.jpg", "c.jpg", "/files/c.jpg"},
    {"/files/d.png", "d.png", "/files/d.png"},
    {"/files/chunked.png", "chunked.png", "/files/chunked.png"},
    {"/flaky/2", "b.png", "/flaky/2"},
    {"/r/3", "a.jpg", "/r/0"},
};

struct dlq {
    size_t n;
    char url[16][256];
    char reason[16][1024];
};

static void dlq_record(const rd_kafka_message_t *m, void *ctx)
{
    struct dlq *d = ctx;
    json_t *row = json_loadb(m->payload, m->len, 0, NULL);
    cr_assert_not_null(row, "dead letter is not a JSON row");
    cr_assert_lt(d->n, 16);
    snprintf(d->url[d->n], sizeof(d->url[0]), "%s", json_string_value(json_object_get(row, "url")));
    nu_it_header(m, "nurion-error", d->reason[d->n], sizeof(d->reason[0]));
    d->n++;
    json_decref(row);
}

Test(http_fetch, fetches_into_blobs_and_dead_letters_failures)
{
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, handle, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    cr_assert_not_null(d, "could not start the HTTP server");
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    char base[64], path[700], topic[300];
    struct nu_it_job j;
    struct dlq dl = {0};
    size_t nok = sizeof(oks) / sizeof(oks[0]), nfail = sizeof(fails) / sizeof(fails[0]);

    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    nu_it_job_make(&j, "fetch", job_tmpl);
    snprintf(path, sizeof(path), "%s/urls.jsonl", j.out);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < nok; i++)
        fprintf(f, "{\"url\": \"%s%s\"}\n", base, oks[i].path);
    for (size_t i = 0; i < nfail; i++)
        fprintf(f, "{\"url\": \"%s%s\"}\n", base, fails[i].path);
    fclose(f);

    int64_t t0 = nu_it_now_ms();
    pid_t pid = nu_it_run_start(&j, NULL);
    int rc = nu_it_run_wait(&j, pid, 180000);
    cr_assert_eq(rc, 0, "nurion run failed (log %s)", j.log);
    cr_log_info("http_fetch job: %lld ms", (long long)(nu_it_now_ms() - t0));

    /* the retry is proven by the server: 2 failures, then the success (more requests only if
     * the runtime retried the whole split); /flaky/5's reason counts its attempts */
    cr_expect_geq(flaky_hits[2], 3, "/flaky/2 was requested %d times", flaky_hits[2]);
    cr_expect_geq(flaky_hits[5], 3, "/flaky/5 was requested %d times", flaky_hits[5]);

    snprintf(path, sizeof(path), "%s/rows", j.out);
    json_t *rows = nu_it_sink_rows(path);
    cr_assert_eq(json_array_size(rows), nok, "%zu rows, expected %zu (log %s)",
                 json_array_size(rows), nok, j.log);
    for (size_t i = 0; i < nok; i++) {
        char url[512], final[512], hex[65];
        json_t *r = NULL, *x;
        size_t k, len;
        snprintf(url, sizeof(url), "%s%s", base, oks[i].path);
        snprintf(final, sizeof(final), "%s%s", base, oks[i].final);
        json_array_foreach(
            rows, k, x) if (strcmp(json_string_value(json_object_get(x, "url")), url) == 0) r = x;
        cr_assert_not_null(r, "no row for %s", url);
        char *body = slurp(oks[i].file, &len);
        sha_hex(body, len, hex);
        free(body);
        cr_expect_str_eq(json_string_value(json_object_get(r, "sha256")), hex, "%s", url);
        cr_expect_str_eq(json_string_value(json_object_get(r, "check")), hex,
                         "%s: the stored object differs from the body", url);
        cr_expect_eq(json_integer_value(json_object_get(r, "size")), (json_int_t)len, "%s", url);
        cr_expect_eq(json_integer_value(json_object_get(r, "status")), 200, "%s", url);
        cr_expect_str_eq(json_string_value(json_object_get(r, "final_url")), final);
        cr_expect_str_eq(json_string_value(json_object_get(r, "content_type")),
                         strstr(oks[i].file, ".png") ? "image/png" : "image/jpeg");
        const char *uri = json_string_value(json_object_get(r, "uri"));
        cr_expect(uri && strncmp(uri, "file://", 7) == 0 && strstr(uri, hex), "uri %s", uri);
    }
    json_decref(rows);

    snprintf(topic, sizeof(topic), "nurion.%s.fetch.dlq", j.id);
    cr_assert_eq(nu_it_read_topic(topic, dlq_record, &dl), (long)nfail,
                 "dead letters: %zu, expected %zu", dl.n, nfail);
    for (size_t i = 0; i < nfail; i++) {
        char url[512];
        size_t k;
        snprintf(url, sizeof(url), "%s%s", base, fails[i].path);
        for (k = 0; k < dl.n && strcmp(dl.url[k], url) != 0; k++)
            ;
        cr_assert_lt(k, dl.n, "%s is not in the dead-letter topic", url);
        cr_expect(strstr(dl.reason[k], fails[i].reason), "%s: reason \"%s\", expected \"%s\"", url,
                  dl.reason[k], fails[i].reason);
    }
    /* the blob folder holds the distinct bodies only: a.jpg (2 rows), b.png (2), c, d, chunked */
    snprintf(path, sizeof(path), "test $(ls -A %s/blobs | wc -l) -eq 5", j.out);
    cr_expect_eq(system(path), 0, "blob folder %s/blobs does not hold exactly 5 objects", j.out);
    MHD_stop_daemon(d);
}
