/*
 * Tests of src/api/server.c against a live server on 127.0.0.1 (ephemeral port), driven with
 * libcurl and with raw sockets for requests no well-behaved client sends.
 */
#include "api/openapi.h"
#include "api/server.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN "s3cret-token"

/* ---- the application under test --------------------------------------------------------- */

struct tctx {
    pthread_t owner;
    unsigned long requests;
};

static atomic_int ctx_created, ctx_freed, ctx_wrong_thread;

static void *tctx_new(void *app)
{
    struct tctx *c = calloc(1, sizeof(*c));
    c->owner = pthread_self();
    atomic_fetch_add(&ctx_created, 1);
    return c;
}

static void tctx_free(void *ctx, void *app)
{
    struct tctx *c = ctx;
    if (!pthread_equal(c->owner, pthread_self()))
        atomic_fetch_add(&ctx_wrong_thread, 1);
    atomic_fetch_add(&ctx_freed, 1);
    free(c);
}

static void get_item(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb;
    long long limit;
    nu_errbuf_clear(&eb);
    nu_err_t rc = nu_http_query_int(req, "limit", 1, 100, 10, &limit, &eb);
    if (rc != NU_OK) {
        nu_http_resp_from_err(resp, rc, &eb);
        return;
    }
    nu_http_resp_json(resp, 200,
                      json_pack("{s:s,s:I,s:s}", "id", nu_http_param(req, "id"), "limit",
                                (json_int_t)limit, "remote", req->remote_addr));
}

static void post_item(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb;
    json_t *doc = NULL;
    nu_errbuf_clear(&eb);
    nu_err_t rc = nu_http_body_json(req, 0, 0, &doc, &eb);
    if (rc != NU_OK) {
        nu_http_resp_from_err(resp, rc, &eb);
        return;
    }
    nu_http_resp_header(resp, "Location", "/api/v1/items/new");
    nu_http_resp_json(resp, 201, json_pack("{s:o}", "echo", doc));
}

static void get_ctx(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct tctx *c = req->thread_ctx;
    if (!c || !pthread_equal(c->owner, pthread_self())) {
        nu_http_resp_error(resp, 500, "internal", "wrong thread context", NULL);
        return;
    }
    c->requests++;
    nu_http_resp_json(resp, 200, json_pack("{s:i}", "ok", 1));
}

static void get_boom(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    /* a handler that forgets to answer */
}

static const struct nu_http_route app_routes[] = {
    {NU_HTTP_GET, "/api/v1/items/{id}", get_item, 0},
    {NU_HTTP_POST, "/api/v1/items", post_item, NU_HTTP_ROUTE_JSON_BODY},
    {NU_HTTP_GET, "/api/v1/ctx", get_ctx, 0},
    {NU_HTTP_GET, "/api/v1/boom", get_boom, 0},
};

static nu_http_server_t *srv;

static void start(const char *token, size_t max_body)
{
    struct nu_http_server_conf conf = {
        .listen = "127.0.0.1:0",
        .threads = 4,
        .max_body_bytes = max_body,
        .bearer_token = token,
        .timeout_s = 5,
        .thread_ctx_new = tctx_new,
        .thread_ctx_free = tctx_free,
    };
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_server_new(&conf, app_routes, sizeof(app_routes) / sizeof(app_routes[0]),
                                    NULL, &srv, &eb),
                 NU_OK, "%s", eb.msg);
    cr_assert_gt(nu_http_server_port(srv), 0);
}

static void stop(void)
{
    nu_http_server_destroy(srv);
    srv = NULL;
}

/* ---- a small libcurl client ------------------------------------------------------------- */

struct reply {
    long status;
    char body[65536];
    size_t len;
    char headers[8192];
    size_t hlen;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = sz * n, room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = sz * n, room = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, k < room ? k : room);
    r->hlen += k < room ? k : room;
    r->headers[r->hlen] = '\0';
    return k;
}

/* The value of response header `name` copied into out, or NULL. */
static const char *header_of(const struct reply *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = r->headers; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)k, v);
            return out;
        }
    }
    return NULL;
}

static void request_on(CURL *c, const char *method, const char *path, const char *ctype,
                       const char *body, long body_len, const char *token, struct reply *r)
{
    char url[2048], hdr[256], auth[256];
    struct curl_slist *hl = NULL;
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", nu_http_server_port(srv), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L); /* forget the previous request's body */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, body_len >= 0 ? body_len : (long)strlen(body));
    }
    hl = curl_slist_append(hl, "Expect:");
    if (ctype) {
        snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, hdr);
    }
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
}

static void request(const char *method, const char *path, const char *ctype, const char *body,
                    const char *token, struct reply *r)
{
    CURL *c = curl_easy_init();
    request_on(c, method, path, ctype, body, -1, token, r);
    curl_easy_cleanup(c);
}

static const char *error_code(const struct reply *r, char *out, size_t cap)
{
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    snprintf(out, cap, "%s", code ? code : "(none)");
    json_decref(doc);
    return out;
}

static void init_suite(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

TestSuite(server, .init = init_suite, .timeout = 60);

/* ---- behaviour -------------------------------------------------------------------------- */

Test(server, json_200_with_path_and_query)
{
    struct reply r;
    char v[128];
    start(NULL, 0);
    request("GET", "/api/v1/items/a%20b?limit=7", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(header_of(&r, "Content-Type", v, sizeof(v)), "application/json");
    cr_assert_str_eq(r.body, "{\"id\":\"a b\",\"limit\":7,\"remote\":\"127.0.0.1\"}");

    request("GET", "/api/v1/items/x?limit=0", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body, "query parameter \\\"limit\\\" must be an integer"), "%s", r.body);
    request("GET", "/api/v1/items/%zz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "bad_request");
    request("GET", "/api/v1/items/x?a=%ff", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 400);
    stop();
}

Test(server, not_found_and_method_not_allowed)
{
    struct reply r;
    char v[128];
    start(NULL, 0);
    request("GET", "/api/v1/nothing", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "not_found");
    request("DELETE", "/api/v1/items/1", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "method_not_allowed");
    cr_assert_str_eq(header_of(&r, "Allow", v, sizeof(v)), "GET, HEAD, OPTIONS");
    request("TRACE", "/api/v1/items/1", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, NULL, 404), 1);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, NULL, 405), 2);
    stop();
}

Test(server, head_and_options)
{
    struct reply r;
    char v[128];
    start(NULL, 0);
    request("HEAD", "/api/v1/items/abc", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0, "HEAD has no body");
    cr_assert_str_eq(header_of(&r, "Content-Length", v, sizeof(v)),
                     "44"); /* {"id":"abc","limit":10,"remote":"127.0.0.1"} */
    request("OPTIONS", "/api/v1/items", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 204);
    cr_assert_str_eq(header_of(&r, "Allow", v, sizeof(v)), "POST, OPTIONS");
    request("OPTIONS", "/nowhere", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    stop();
}

Test(server, body_limit_and_content_type)
{
    struct reply r;
    char v[128], big[4096];
    start(NULL, 1024);
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '[';
    big[sizeof(big) - 2] = ']';
    big[sizeof(big) - 1] = '\0';
    request("POST", "/api/v1/items", "application/json", big, NULL, &r);
    cr_assert_eq(r.status, 413, "%s", r.body);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "too_large");

    /* chunked: no Content-Length, the limit is found while reading */
    CURL *c = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    char url[256];
    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/items", nu_http_server_port(srv));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, big);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    cr_assert_eq(r.status, 413);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);

    request("POST", "/api/v1/items", "text/plain", "[1]", NULL, &r);
    cr_assert_eq(r.status, 415);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "unsupported");
    request("POST", "/api/v1/items", "application/JSON; charset=utf-8", "[1]", NULL, &r);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(r.body, "{\"echo\":[1]}");
    cr_assert_str_eq(header_of(&r, "Location", v, sizeof(v)), "/api/v1/items/new");
    request("POST", "/api/v1/items", "application/json", "{\"a\":\n}", NULL, &r);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body, "at line 2, column 1"), "%s", r.body);
    stop();
}

Test(server, bearer_token)
{
    struct reply r;
    char v[128];
    start(TOKEN, 0);
    request("GET", "/api/v1/items/1", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(error_code(&r, v, sizeof(v)), "unauthorized");
    cr_assert_str_eq(header_of(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"nurion\"");
    request("GET", "/api/v1/items/1", NULL, NULL, "s3cret-tokeN", &r);
    cr_assert_eq(r.status, 401);
    cr_assert(strstr(header_of(&r, "WWW-Authenticate", v, sizeof(v)), "invalid_token"));
    request("GET", "/api/v1/items/1", NULL, NULL, "s3cret-token-longer", &r);
    cr_assert_eq(r.status, 401);
    request("GET", "/api/v1/items/1", NULL, NULL, "s3cret", &r);
    cr_assert_eq(r.status, 401);
    request("GET", "/api/v1/items/1", NULL, NULL, TOKEN, &r);
    cr_assert_eq(r.status, 200);
    /* public routes need no token; /metrics does */
    request("GET", "/healthz", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    request("GET", "/metrics", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 401);
    request("GET", "/metrics", NULL, NULL, TOKEN, &r);
    cr_assert_eq(r.status, 200);
    stop();
}

Test(server, builtins_match_the_document)
{
    struct reply r;
    char v[128];
    json_t *doc = NULL;
    struct nu_problems probs;
    struct nu_errbuf eb;
    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_openapi_doc(&doc, &eb), NU_OK, "%s", eb.msg);
    start(NULL, 0);

    request("GET", "/healthz", NULL, NULL, NULL, &r);
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/healthz", (int)r.status,
                                           header_of(&r, "Content-Type", v, sizeof(v)), r.body,
                                           r.len, &probs, &eb),
                 NU_OK, "%s", eb.msg);

    request("GET", "/api/v1/openapi.json", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    size_t n;
    const char *embedded = nu_openapi_json(&n);
    cr_assert_eq(r.len, n);
    cr_assert_eq(memcmp(r.body, embedded, n), 0);

    request("GET", "/api/v1/items/7", NULL, NULL, NULL, &r);
    request("GET", "/api/v1/items/8", NULL, NULL, NULL, &r);
    request("GET", "/api/v1/boom", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 500, "a handler that sets no status is a 500");
    request("GET", "/metrics", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(header_of(&r, "Content-Type", v, sizeof(v)), "text/plain; version=0.0.4"));
    cr_assert(strstr(r.body, "nurion_http_requests_total{method=\"GET\",route=\"/api/v1/items/"
                             "{id}\",status=\"200\"} 2\n"),
              "%s", r.body);
    cr_assert(
        strstr(r.body, "nurion_http_errors_total{method=\"GET\",route=\"/api/v1/boom\"} 1\n"));
    cr_assert(strstr(r.body, "nurion_http_request_duration_seconds_count{method=\"GET\",route=\"/"
                             "api/v1/items/{id}\"} 2\n"));
    cr_assert(strstr(r.body, "le=\"+Inf\"} 2\n"));
    cr_assert_eq(nu_openapi_check_response(doc, "get", "/metrics", (int)r.status,
                                           header_of(&r, "Content-Type", v, sizeof(v)), r.body,
                                           r.len, &probs, &eb),
                 NU_OK, "%s", eb.msg);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, "/api/v1/items/{id}", 200), 2);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, "/api/v1/items/{id}", 0), 2);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, "/api/v1/boom", 500), 1);

    /* an error response of the server matches the Error schema of the document */
    request("GET", "/metrics/x", NULL, NULL, NULL, &r);
    json_t *body = json_loadb(r.body, r.len, 0, NULL);
    struct nu_json_path p;
    nu_json_path_init(&p);
    const json_t *err_schema =
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Error");
    cr_assert_eq(nu_openapi_validate(doc, err_schema, body, &p, &probs), 0);
    json_decref(body);
    stop();
    json_decref(doc);
    nu_problems_free(&probs);
}

/* ---- concurrency and thread contexts ---------------------------------------------------- */

#define NCLIENTS 8
#define NREQS    200

static atomic_int answered;

static void *client(void *arg)
{
    CURL *c = curl_easy_init();
    struct reply *r = malloc(sizeof(*r));
    for (int i = 0; i < NREQS; i++) {
        /* every fourth request on a fresh connection, the rest kept alive */
        if (i % 4 == 0)
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
        else
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
        request_on(c, "GET", "/api/v1/ctx", NULL, NULL, -1, NULL, r);
        if (r->status == 200)
            atomic_fetch_add(&answered, 1);
    }
    free(r);
    curl_easy_cleanup(c);
    return NULL;
}

Test(server, concurrency_and_thread_contexts)
{
    pthread_t th[NCLIENTS];
    start(NULL, 0);
    for (int i = 0; i < NCLIENTS; i++)
        pthread_create(&th[i], NULL, client, NULL);
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&answered), NCLIENTS * NREQS);
    cr_assert_eq(nu_http_server_count(srv, NU_HTTP_GET, "/api/v1/ctx", 200), NCLIENTS * NREQS);
    int created = atomic_load(&ctx_created);
    cr_assert(created >= 1 && created <= 4, "one context per pool thread at most, got %d", created);
    stop();
    cr_assert_eq(atomic_load(&ctx_freed), created, "every context freed at destroy");
    cr_assert_eq(atomic_load(&ctx_wrong_thread), 0, "freed on its own thread");
}

/* ---- malformed input over raw sockets --------------------------------------------------- */

/* Send `n` bytes, read what comes back (up to cap-1) until close or timeout. */
static size_t raw_exchange(const char *data, size_t n, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(nu_http_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, data + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early on an oversized request */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (got + 1 < cap && poll(&pfd, 1, 3000) > 0) {
        ssize_t k = recv(fd, out + got, cap - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

Test(server, malformed_requests_get_4xx_and_server_keeps_serving)
{
    /* expect: the status class digit, or 0 where libmicrohttpd closes without an answer (a
     * request line without a target cannot even be answered in HTTP/1.x form) */
    static const struct {
        const char *req;
        char expect;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 0},
        {"GET\r\n\r\n", 0},
        {"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", '4'},
        {"GARBAGE /api/v1/items/1 HTTP/1.1\r\nHost: x\r\n\r\n", '4'}, /* 405 */
        {"GET /api/v1/items/1 HTTP/9.9\r\nHost: x\r\n\r\n", '5'},     /* 505 */
        {"GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", '4'},
        {"GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", '4'},
        {"GET /api/v1/items/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", '4'},
        {"GET /api/v1/items/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", '4'},
        {"GET /api/v1/items/x?a=%C0%AF HTTP/1.1\r\nHost: x\r\n\r\n", '4'},
        {"POST /api/v1/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Content-Type: application/json\r\n\r\nzz\r\n",
         '4'},
    };
    char out[4096];
    start(NULL, 0);
    /* a slow client holding a half-sent request open must not stop the others */
    int slow = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(nu_http_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(slow, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_gt(send(slow, "GET /api/v1/it", 14, MSG_NOSIGNAL), 0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = raw_exchange(cases[i].req, strlen(cases[i].req), out, sizeof(out));
        if (cases[i].expect == 0)
            cr_assert(got == 0 || (strncmp(out, "HTTP/1.", 7) == 0 && out[9] == '4'),
                      "case %zu: got \"%.80s\"", i, out);
        else
            cr_assert(got >= 12 && strncmp(out, "HTTP/1.", 7) == 0 && out[9] == cases[i].expect,
                      "case %zu: got \"%.80s\"", i, out);
    }
    /* a 200 KiB header */
    size_t hn = 200 * 1024;
    char *huge = malloc(hn + 128);
    int k = snprintf(huge, 128, "GET /api/v1/items/1 HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + k, 'a', hn);
    memcpy(huge + k + hn, "\r\n\r\n", 5);
    size_t got = raw_exchange(huge, strlen(huge), out, sizeof(out));
    cr_assert(got == 0 || (strncmp(out, "HTTP/1.", 7) == 0 && out[9] == '4'),
              "a huge header is refused: \"%.80s\"", out);
    free(huge);
    /* a 100 KiB path */
    huge = malloc(hn + 128);
    k = snprintf(huge, 128, "GET /");
    memset(huge + k, 'p', 100 * 1024);
    snprintf(huge + k + 100 * 1024, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
    got = raw_exchange(huge, strlen(huge), out, sizeof(out));
    cr_assert(got == 0 || (strncmp(out, "HTTP/1.", 7) == 0 && out[9] == '4'),
              "a huge path is refused: \"%.80s\"", out);
    free(huge);

    struct reply r;
    request("GET", "/api/v1/items/still-alive", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    close(slow);
    stop();
}

Test(server, bad_configuration_is_refused)
{
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x",
                                      "no-such-host.invalid:80", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nu_http_server_conf conf = {.listen = bad[i]};
        nu_http_server_t *s = NULL;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_http_server_new(&conf, app_routes, 1, NULL, &s, &eb), NU_ERR_CONFIG,
                     "case %zu", i);
        cr_assert_null(s);
        cr_assert(strstr(eb.msg, bad[i]), "%s", eb.msg);
    }
    /* a taken port */
    start(NULL, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", nu_http_server_port(srv));
    struct nu_http_server_conf conf = {.listen = addr};
    nu_http_server_t *s = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_server_new(&conf, app_routes, 1, NULL, &s, &eb), NU_ERR_SYSTEM);
    cr_assert(strstr(eb.msg, "could not start the HTTP server"), "%s", eb.msg);
    stop();
}
