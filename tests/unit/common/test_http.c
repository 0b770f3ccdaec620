/* Tests of src/common/http.c: query parsing and getters, JSON bodies, responses, errors. */
#include "common/http.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static struct nu_http_req req;

static void setup(void)
{
    nu_http_req_init(&req);
}

static void teardown(void)
{
    nu_http_req_free(&req);
}

TestSuite(http, .init = setup, .fini = teardown);

struct query_case {
    const char *raw;
    bool ok;
    size_t n;
    const char *name0, *value0, *name1, *value1;
    const char *err; /* substring of the error message */
};

static const struct query_case query_cases[] = {
    {"a=1&b=x%20y+z", true, 2, "a", "1", "b", "x y z", NULL},
    {"flag", true, 1, "flag", "", NULL, NULL, NULL},
    {"&&a=1&", true, 1, "a", "1", NULL, NULL, NULL},
    {"", true, 0, NULL, NULL, NULL, NULL, NULL},
    {"k%3D=v%26w", true, 1, "k=", "v&w", NULL, NULL, NULL},
    {"name=%C3%A9t%C3%A9", true, 1, "name", "\xC3\xA9t\xC3\xA9", NULL, NULL, NULL},
    {"a=1&a=2", true, 2, "a", "1", "a", "2", NULL},
    {"a=%zz", false, 0, NULL, NULL, NULL, NULL, "query parameter \"a\" is not valid"},
    {"a=%4", false, 0, NULL, NULL, NULL, NULL, "query parameter \"a\""},
    {"a=x%00y", false, 0, NULL, NULL, NULL, NULL, "not valid percent-encoded UTF-8"},
    {"a=%ff%fe", false, 0, NULL, NULL, NULL, NULL, "not valid percent-encoded UTF-8"},
    {"%zz=1", false, 0, NULL, NULL, NULL, NULL, "query parameter name"},
    {"a=%ED%A0%80", false, 0, NULL, NULL, NULL, NULL, "UTF-8"}, /* a surrogate */
};

Test(http, query_parsing_table)
{
    for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        const struct query_case *c = &query_cases[i];
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        nu_http_req_free(&req);
        nu_http_req_init(&req);
        nu_err_t rc = nu_http_req_parse_query(&req, c->raw, &eb);
        cr_assert_eq(rc == NU_OK, c->ok, "case %zu \"%s\": %s", i, c->raw, nu_err_msg(&eb));
        if (!c->ok) {
            cr_assert_eq(rc, NU_ERR_INVALID);
            cr_assert(strstr(eb.msg, c->err), "case %zu: \"%s\"", i, eb.msg);
            continue;
        }
        cr_assert_eq(req.nquery, c->n, "case %zu", i);
        if (c->n > 0) {
            cr_assert_str_eq(req.query[0].name, c->name0);
            cr_assert_str_eq(req.query[0].value, c->value0);
        }
        if (c->n > 1) {
            cr_assert_str_eq(req.query[1].name, c->name1);
            cr_assert_str_eq(req.query[1].value, c->value1);
        }
    }
}

Test(http, query_limits)
{
    char raw[NU_HTTP_MAX_QUERY_BYTES + 64];
    struct nu_errbuf eb;
    size_t off = 0;
    for (int i = 0; i <= NU_HTTP_MAX_QUERY_PARAMS; i++)
        off += (size_t)snprintf(raw + off, sizeof(raw) - off, "p%d=1&", i);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_req_parse_query(&req, raw, &eb), NU_ERR_INVALID);
    cr_assert(strstr(eb.msg, "too many query parameters"), "%s", eb.msg);

    memset(raw, 'a', NU_HTTP_MAX_QUERY_BYTES + 1);
    raw[NU_HTTP_MAX_QUERY_BYTES + 1] = '\0';
    nu_errbuf_clear(&eb);
    nu_http_req_free(&req);
    nu_http_req_init(&req);
    cr_assert_eq(nu_http_req_parse_query(&req, raw, &eb), NU_ERR_INVALID);
    cr_assert(strstr(eb.msg, "over the limit of 8192"), "%s", eb.msg);
    /* exactly at the limit is fine */
    raw[NU_HTTP_MAX_QUERY_BYTES] = '\0';
    cr_assert_eq(nu_http_req_parse_query(&req, raw, NULL), NU_OK);
}

struct int_case {
    const char *raw;
    nu_err_t rc;
    long long want;
};

Test(http, query_int_table)
{
    static const struct int_case cases[] = {
        {"", NU_OK, 50},
        {"limit=10", NU_OK, 10},
        {"limit=1", NU_OK, 1},
        {"limit=1000", NU_OK, 1000},
        {"limit=0", NU_ERR_INVALID, 0},
        {"limit=1001", NU_ERR_INVALID, 0},
        {"limit=abc", NU_ERR_INVALID, 0},
        {"limit=10x", NU_ERR_INVALID, 0},
        {"limit=", NU_ERR_INVALID, 0},
        {"limit=%2B5", NU_OK, 5},
        {"limit=%205", NU_ERR_INVALID, 0},
        {"limit=99999999999999999999999", NU_ERR_INVALID, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_errbuf eb;
        long long v = -1;
        nu_errbuf_clear(&eb);
        nu_http_req_free(&req);
        nu_http_req_init(&req);
        cr_assert_eq(nu_http_req_parse_query(&req, cases[i].raw, NULL), NU_OK);
        nu_err_t rc = nu_http_query_int(&req, "limit", 1, 1000, 50, &v, &eb);
        cr_assert_eq(rc, cases[i].rc, "case %zu \"%s\": %s", i, cases[i].raw, nu_err_msg(&eb));
        if (rc == NU_OK) {
            cr_assert_eq(v, cases[i].want, "case %zu", i);
        } else {
            cr_assert_eq(v, -1, "output untouched on error");
            cr_assert(strstr(eb.msg, "query parameter \"limit\" must be an integer between 1 "
                                     "and 1000"),
                      "%s", eb.msg);
            struct nu_http_resp resp;
            nu_http_resp_init(&resp);
            nu_http_resp_from_err(&resp, rc, &eb);
            cr_assert_eq(resp.status, 400);
            nu_http_resp_free(&resp);
        }
    }
}

Test(http, query_bool_str_page)
{
    struct nu_errbuf eb;
    bool b = false;
    const char *s = NULL;
    struct nu_http_page pg;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_http_req_parse_query(&req, "all=true&off=0&bad=yes&name=abcdef&cursor=", NULL),
                 NU_OK);
    cr_assert_eq(nu_http_query_bool(&req, "all", false, &b, &eb), NU_OK);
    cr_assert(b);
    cr_assert_eq(nu_http_query_bool(&req, "off", true, &b, &eb), NU_OK);
    cr_assert_not(b);
    cr_assert_eq(nu_http_query_bool(&req, "missing", true, &b, &eb), NU_OK);
    cr_assert(b);
    cr_assert_eq(nu_http_query_bool(&req, "bad", true, &b, &eb), NU_ERR_INVALID);
    cr_assert(strstr(eb.msg, "\"bad\" must be true or false, got \"yes\""), "%s", eb.msg);
    cr_assert_eq(nu_http_query_str(&req, "name", 6, NULL, &s, NULL), NU_OK);
    cr_assert_str_eq(s, "abcdef");
    cr_assert_eq(nu_http_query_str(&req, "name", 5, NULL, &s, NULL), NU_ERR_INVALID);
    cr_assert_eq(nu_http_query_page(&req, &pg, NULL), NU_OK);
    cr_assert_eq(pg.limit, NU_HTTP_PAGE_DEFAULT);
    cr_assert_null(pg.cursor, "an empty cursor is the first page");
}

static void set_body(const char *s)
{
    req.body = (const unsigned char *)s;
    req.body_len = strlen(s);
}

struct body_case {
    const char *body;
    size_t max_bytes, max_depth;
    nu_err_t rc;
    const char *err;
};

Test(http, body_json_table)
{
    static const struct body_case cases[] = {
        {"{\"a\":[1,2]}", 0, 0, NU_OK, NULL},
        {"", 0, 0, NU_ERR_PARSE, "request body is empty"},
        {"{\"a\":}", 0, 0, NU_ERR_PARSE, "invalid JSON in request body at line 1, column 6"},
        {"{\n  \"a\": 1,\n  \"b\": tru\n}", 0, 0, NU_ERR_PARSE, "at line 3"},
        {"{\"a\":1,\"a\":2}", 0, 0, NU_ERR_PARSE, "duplicate"},
        {"\"\xff\xfe\"", 0, 0, NU_ERR_PARSE, "invalid JSON"},
        {"{\"a\":1} trailing", 0, 0, NU_ERR_PARSE, "invalid JSON"},
        {"[[[1]]]", 0, 3, NU_OK, NULL},
        {"[[[[1]]]]", 0, 3, NU_ERR_INVALID, "nested deeper than 3 levels"},
        {"[1,2,3,4,5,6,7,8,9]", 8, 0, NU_ERR_TOO_LARGE, "over the limit of 8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_errbuf eb;
        json_t *doc = NULL;
        nu_errbuf_clear(&eb);
        set_body(cases[i].body);
        nu_err_t rc = nu_http_body_json(&req, cases[i].max_bytes, cases[i].max_depth, &doc, &eb);
        cr_assert_eq(rc, cases[i].rc, "case %zu: %s", i, nu_err_msg(&eb));
        if (rc == NU_OK) {
            cr_assert_not_null(doc);
        } else {
            cr_assert_null(doc);
            cr_assert(strstr(eb.msg, cases[i].err), "case %zu: \"%s\"", i, eb.msg);
        }
        json_decref(doc);
    }
}

Test(http, error_body_shape)
{
    struct nu_http_resp resp;
    struct nu_problems probs;
    nu_http_resp_init(&resp);
    nu_problems_init(&probs);
    nu_problems_add(&probs, "$.stages[1].config.where", "unknown column \"%s\"", "x");
    nu_http_resp_error(&resp, 422, "spec", "invalid job spec", &probs);
    cr_assert_eq(resp.status, 422);
    cr_assert_str_eq(resp.content_type, "application/json");
    nu_buf_putc(&resp.body, '\0');
    cr_assert_str_eq((const char *)resp.body.data,
                     "{\"error\":{\"code\":\"spec\",\"message\":\"invalid job spec\",\"problems\":"
                     "[{\"path\":\"$.stages[1].config.where\",\"message\":\"unknown column "
                     "\\\"x\\\"\"}]}}");
    /* without problems the key is absent */
    nu_http_resp_error(&resp, 404, "not_found", "job \"j\" does not exist", NULL);
    nu_buf_putc(&resp.body, '\0');
    cr_assert_str_eq((const char *)resp.body.data,
                     "{\"error\":{\"code\":\"not_found\",\"message\":\"job \\\"j\\\" does not "
                     "exist\"}}");
    nu_problems_free(&probs);
    nu_http_resp_free(&resp);
}

Test(http, resp_from_err_maps_status_and_code)
{
    static const struct {
        nu_err_t code;
        int status;
        const char *name;
    } cases[] = {
        {NU_ERR_NOT_FOUND, 404, "not_found"},
        {NU_ERR_SPEC, 400, "spec"},
        {NU_ERR_EXISTS, 409, "exists"},
        {NU_ERR_TOO_LARGE, 413, "too_large"},
        {NU_ERR_DB, 503, "db"},
        {NU_ERR_INTERNAL, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_http_resp resp;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        nu_http_resp_init(&resp);
        nu_err_set(&eb, cases[i].code, "detail %zu", i);
        nu_http_resp_from_err(&resp, cases[i].code, &eb);
        cr_assert_eq(resp.status, cases[i].status);
        cr_assert_str_eq(nu_http_err_code(cases[i].code), cases[i].name);
        json_t *doc = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
        cr_assert_not_null(doc);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "error"), "code")),
                         cases[i].name);
        char want[32];
        snprintf(want, sizeof(want), "detail %zu", i);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(doc, "error"), "message")), want);
        json_decref(doc);
        nu_http_resp_free(&resp);
    }
}

Test(http, resp_json_text_and_headers)
{
    struct nu_http_resp resp;
    nu_http_resp_init(&resp);
    nu_http_resp_json(&resp, 201, json_pack("{s:i}", "n", 3));
    cr_assert_eq(resp.status, 201);
    cr_assert_eq(resp.body.len, strlen("{\"n\":3}"));
    cr_assert_eq(memcmp(resp.body.data, "{\"n\":3}", resp.body.len), 0);
    nu_http_resp_json(&resp, 200, NULL);
    cr_assert_eq(resp.status, 500, "a NULL body is a server error");
    nu_http_resp_text(&resp, 200, "hi");
    cr_assert_str_eq(resp.content_type, "text/plain; charset=utf-8");
    cr_assert_eq(resp.body.len, 2);

    cr_assert(nu_http_resp_header(&resp, "Location", "/api/v1/jobs/a"));
    cr_assert(nu_http_resp_header(&resp, "location", "/api/v1/jobs/b"), "replaces");
    cr_assert_eq(resp.nheaders, 1);
    cr_assert_str_eq(nu_http_resp_get_header(&resp, "LOCATION"), "/api/v1/jobs/b");
    cr_assert_not(nu_http_resp_header(&resp, "X-Evil", "a\r\nSet-Cookie: x=1"));
    cr_assert_not(nu_http_resp_header(&resp, "Bad Name", "v"));
    cr_assert_not(nu_http_resp_header(&resp, "", "v"));
    for (int i = 1; i < NU_HTTP_MAX_RESP_HEADERS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "X-H%d", i);
        cr_assert(nu_http_resp_header(&resp, name, "v"));
    }
    cr_assert_not(nu_http_resp_header(&resp, "X-One-Too-Many", "v"));
    nu_http_resp_free(&resp);
    cr_assert_eq(resp.nheaders, 0);
}

Test(http, utf8_and_methods)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"plain", true},         {"\xC3\xA9", true},
        {"\xE2\x82\xAC", true},  {"\xF0\x9F\x98\x80", true},
        {"\xC0\xAF", false},     {"\xE0\x80\xAF", false},
        {"\xED\xA0\x80", false}, {"\xF4\x90\x80\x80", false},
        {"\xC3", false},         {"\x80", false},
        {"\xFF", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(nu_http_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok, "case %zu",
                     i);
    cr_assert_eq(nu_http_method_parse("DELETE"), NU_HTTP_DELETE);
    cr_assert_eq(nu_http_method_parse("get"), NU_HTTP_OTHER, "methods are case-sensitive");
    cr_assert_eq(nu_http_method_parse("TRACE"), NU_HTTP_OTHER);
    cr_assert_str_eq(nu_http_method_name(NU_HTTP_PATCH), "PATCH");
    cr_assert_str_eq(nu_http_reason(413), "Content Too Large");
}

static const char *fake_header(void *ctx, const char *name)
{
    return strcasecmp(name, "x-request-id") == 0 ? (const char *)ctx : NULL;
}

Test(http, header_and_param_lookup)
{
    cr_assert_null(nu_http_header(&req, "X-Request-Id"), "no lookup function: no headers");
    req.header_fn = fake_header;
    req.header_ctx = "r-1";
    cr_assert_str_eq(nu_http_header(&req, "X-Request-Id"), "r-1");
    cr_assert_null(nu_http_header(&req, "Accept"));
    req.params[0].name = "id";
    req.params[0].value = "j1";
    req.nparams = 1;
    cr_assert_str_eq(nu_http_param(&req, "id"), "j1");
    cr_assert_null(nu_http_param(&req, "sid"));
}
