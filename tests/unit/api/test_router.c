/* Tests of src/api/router.c: pattern compilation, matching, specificity, captures, 404/405. */
#include "api/router.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

static void h(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
}

/* Indices matter: the tests name routes by position. */
static const struct nu_http_route routes[] = {
    /* 0 */ {NU_HTTP_GET, "/api/v1/jobs", h, 0},
    /* 1 */ {NU_HTTP_POST, "/api/v1/jobs", h, NU_HTTP_ROUTE_JSON_BODY},
    /* 2 */ {NU_HTTP_GET, "/api/v1/jobs/{id}", h, 0},
    /* 3 */ {NU_HTTP_DELETE, "/api/v1/jobs/{id}", h, 0},
    /* 4 */ {NU_HTTP_GET, "/api/v1/jobs/{id}/stages/{sid}", h, 0},
    /* 5 */ {NU_HTTP_GET, "/api/v1/jobs/summary", h, 0},
    /* 6 */ {NU_HTTP_GET, "/api/v1/{kind}/summary", h, 0},
    /* 7 */ {NU_HTTP_GET, "/ui/{file*}", h, 0},
    /* 8 */ {NU_HTTP_GET, "/ui/index.html", h, 0},
    /* 9 */ {NU_HTTP_GET, "/", h, 0},
    /* 10 */ {NU_HTTP_HEAD, "/api/v1/jobs/{id}/stages/{sid}", h, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct match_case {
    nu_http_method_t method;
    const char *path;
    size_t want; /* route index, SIZE_MAX for none */
    unsigned allow;
    const char *kv[4]; /* capture name, value, name, value */
};

#define M(x) (1u << NU_HTTP_##x)
#define NONE SIZE_MAX

/* allow masks of the paths below */
#define A_JOBS (M(GET) | M(HEAD) | M(POST) | M(OPTIONS))
#define A_JOB  (M(GET) | M(HEAD) | M(DELETE) | M(OPTIONS))
#define A_GET  (M(GET) | M(HEAD) | M(OPTIONS))

static const struct match_case cases[] = {
    {NU_HTTP_GET, "/api/v1/jobs", 0, A_JOBS, {NULL}},
    {NU_HTTP_POST, "/api/v1/jobs", 1, A_JOBS, {NULL}},
    {NU_HTTP_GET, "/api/v1/jobs/etl-1", 2, A_JOB, {"id", "etl-1"}},
    {NU_HTTP_DELETE, "/api/v1/jobs/etl-1", 3, A_JOB, {"id", "etl-1"}},
    /* a literal beats a capture at the same position */
    {NU_HTTP_GET, "/api/v1/jobs/summary", 5, A_JOB, {NULL}},
    /* ... and the capture route still serves methods the literal lacks */
    {NU_HTTP_DELETE, "/api/v1/jobs/summary", 3, A_JOB, {"id", "summary"}},
    {NU_HTTP_GET, "/api/v1/stages/summary", 6, A_GET, {"kind", "stages"}},
    {NU_HTTP_GET, "/api/v1/jobs/j/stages/s%2F1", 4, A_GET, {"id", "j", "sid", "s/1"}},
    /* an explicit HEAD route wins over the GET fallback */
    {NU_HTTP_HEAD, "/api/v1/jobs/j/stages/s", 10, A_GET, {"id", "j", "sid", "s"}},
    /* HEAD falls back to GET */
    {NU_HTTP_HEAD, "/api/v1/jobs/x", 2, A_JOB, {"id", "x"}},
    {NU_HTTP_GET, "/api/v1/jobs/a%20b", 2, A_JOB, {"id", "a b"}},
    {NU_HTTP_GET, "/api/v1/jobs/%C3%A9", 2, A_JOB, {"id", "\xC3\xA9"}},
    /* literals are compared after decoding */
    {NU_HTTP_GET, "/api/v1/job%73", 0, A_JOBS, {NULL}},
    /* wrong method: no route, but the path is known (405) */
    {NU_HTTP_PUT, "/api/v1/jobs/x", NONE, A_JOB, {NULL}},
    {NU_HTTP_OTHER, "/api/v1/jobs", NONE, A_JOBS, {NULL}},
    /* unknown paths (404) */
    {NU_HTTP_GET, "/api/v1/jobs/", NONE, 0, {NULL}},
    {NU_HTTP_GET, "/api/v1/jobs//stages/s", NONE, 0, {NULL}},
    {NU_HTTP_GET, "/api/v1/jobs/x/stages", NONE, 0, {NULL}},
    {NU_HTTP_GET, "/api/v2/jobs", NONE, 0, {NULL}},
    {NU_HTTP_GET, "/API/v1/jobs", NONE, 0, {NULL}},
    /* rest captures keep slashes; literals beat them */
    {NU_HTTP_GET, "/ui/css/app.css", 7, A_GET, {"file", "css/app.css"}},
    {NU_HTTP_GET, "/ui/index.html", 8, A_GET, {NULL}},
    {NU_HTTP_GET, "/ui/", NONE, 0, {NULL}},
    {NU_HTTP_GET, "/", 9, A_GET, {NULL}},
};

Test(router, matching_table)
{
    nu_http_router_t *rt = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_router_new(routes, NROUTES, &rt, &eb), NU_OK, "%s", eb.msg);
    cr_assert_eq(nu_http_router_count(rt), NROUTES);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct match_case *c = &cases[i];
        struct nu_http_req req;
        struct nu_http_match m;
        nu_http_req_init(&req);
        req.method = c->method;
        req.path = c->path;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_http_router_match(rt, &req, &m, &eb), NU_OK, "case %zu: %s", i, eb.msg);
        cr_assert_eq(m.index, c->want, "case %zu %s: got route %zu", i, c->path, m.index);
        cr_assert_eq(m.route == NULL, c->want == NONE, "case %zu", i);
        if (m.route)
            cr_assert_eq(m.route, nu_http_router_route(rt, c->want));
        cr_assert_eq(m.allow, c->allow, "case %zu %s: allow %#x", i, c->path, m.allow);
        size_t nparams = c->kv[2] ? 2 : c->kv[0] ? 1 : 0;
        if (m.route) {
            cr_assert_eq(req.nparams, nparams, "case %zu", i);
            for (size_t k = 0; k < nparams; k++)
                cr_assert_str_eq(nu_http_param(&req, c->kv[2 * k]), c->kv[2 * k + 1], "case %zu",
                                 i);
        }
        nu_http_req_free(&req);
    }
    nu_http_router_destroy(rt);
}

Test(router, bad_request_paths)
{
    static const char *const bad[] = {
        "api/v1/jobs",                                                        /* not absolute */
        "/api/v1/jobs/%zz",                                                   /* bad escape */
        "/api/v1/jobs/%2",                                                    /* truncated escape */
        "/api/v1/jobs/a%00b",                                                 /* NUL */
        "/api/v1/jobs/%ff",                                                   /* not UTF-8 */
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/5/6", /* 33 segments */
    };
    nu_http_router_t *rt = NULL;
    cr_assert_eq(nu_http_router_new(routes, NROUTES, &rt, NULL), NU_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nu_http_req req;
        struct nu_http_match m;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        nu_http_req_init(&req);
        req.path = bad[i];
        cr_assert_eq(nu_http_router_match(rt, &req, &m, &eb), NU_ERR_INVALID, "case %zu", i);
        cr_assert_null(m.route);
        cr_assert(eb.set && eb.msg[0]);
        nu_http_req_free(&req);
    }
    /* an over-long path */
    char longp[NU_HTTP_MAX_PATH_BYTES + 8];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    struct nu_http_req req;
    struct nu_http_match m;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    nu_http_req_init(&req);
    req.path = longp;
    cr_assert_eq(nu_http_router_match(rt, &req, &m, &eb), NU_ERR_INVALID);
    cr_assert(strstr(eb.msg, "over the limit"), "%s", eb.msg);
    nu_http_req_free(&req);
    nu_http_router_destroy(rt);
}

Test(router, bad_patterns_are_refused)
{
    static const struct {
        struct nu_http_route r;
        const char *err;
    } bad[] = {
        {{NU_HTTP_GET, "jobs", h, 0}, "must start with '/'"},
        {{NU_HTTP_GET, "/jobs/{}", h, 0}, "bad capture"},
        {{NU_HTTP_GET, "/jobs/{id", h, 0}, "unbalanced"},
        {{NU_HTTP_GET, "/jobs/id}", h, 0}, "unbalanced"},
        {{NU_HTTP_GET, "/jobs/{id}/x/{id}", h, 0}, "used twice"},
        {{NU_HTTP_GET, "/files/{rest*}/x", h, 0}, "must be the last"},
        {{NU_HTTP_GET, "/jobs", NULL, 0}, "needs a handler"},
        {{NU_HTTP_OTHER, "/jobs", h, 0}, "needs a handler and a method"},
        {{NU_HTTP_GET, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h, 0}, "more than 8 captures"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nu_http_router_t *rt = (nu_http_router_t *)1;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_http_router_new(&bad[i].r, 1, &rt, &eb), NU_ERR_CONFIG, "case %zu", i);
        cr_assert_null(rt);
        cr_assert(strstr(eb.msg, bad[i].err), "case %zu: \"%s\"", i, eb.msg);
    }
    /* the same method and pattern twice (capture names do not matter) */
    const struct nu_http_route dup[] = {{NU_HTTP_GET, "/jobs/{id}", h, 0},
                                        {NU_HTTP_GET, "/jobs/{job}", h, 0}};
    nu_http_router_t *rt = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_router_new(dup, 2, &rt, &eb), NU_ERR_CONFIG);
    cr_assert(strstr(eb.msg, "defined twice"), "%s", eb.msg);
}

Test(router, allow_header_format)
{
    char buf[64];
    nu_http_allow_format(M(GET) | M(HEAD) | M(DELETE), buf, sizeof(buf));
    cr_assert_str_eq(buf, "GET, HEAD, DELETE, OPTIONS");
    nu_http_allow_format(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "");
    nu_http_allow_format(M(POST), buf, 8);
    cr_assert_str_eq(buf, "POST", "a short buffer keeps whole entries only");
}
