/*
 * test_ui.c — the embedded web UI: the asset table, the routes, content types, ETag and 304.
 */
#include "api/router.h"
#include "api/ui.h"

#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

/* A request header table for header_fn: one If-None-Match value or none. */
static const char *ui_header(void *ctx, const char *name)
{
    return strcasecmp(name, "If-None-Match") == 0 ? ctx : NULL;
}

/* Route GET `path` through the UI's table and run the handler. */
static void ui_get(const char *path, const char *inm, struct nu_http_resp *resp)
{
    struct nu_errbuf eb = {0};
    nu_http_router_t *rt = NULL;
    size_t n = 0;
    const struct nu_http_route *routes = nu_ui_routes(&n);
    cr_assert_eq(nu_http_router_new(routes, n, &rt, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_http_req req;
    nu_http_req_init(&req);
    req.path = path;
    req.header_fn = ui_header;
    req.header_ctx = (void *)inm;
    struct nu_http_match m;
    cr_assert_eq(nu_http_router_match(rt, &req, &m, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_http_resp_init(resp);
    if (m.route == NULL)
        resp->status = 404;
    else {
        cr_assert(m.route->flags & NU_HTTP_ROUTE_PUBLIC, "UI routes need no token");
        m.route->handler(&req, resp, NULL);
    }
    nu_http_req_free(&req);
    nu_http_router_destroy(rt);
}

Test(ui, every_asset_is_embedded_with_a_distinct_etag)
{
    cr_assert_eq(nu_ui_asset_count(), 3);
    for (size_t i = 0; i < nu_ui_asset_count(); i++) {
        const struct nu_ui_asset *a = nu_ui_asset_at(i);
        cr_assert_gt(a->len, 100, "%s is empty", a->name);
        cr_assert_eq(a->data[a->len], '\0');
        cr_assert_eq(strlen(a->etag), NU_UI_ETAG_LEN);
        cr_assert_eq(nu_ui_asset_find(a->name), a);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(a->etag, nu_ui_asset_at(j)->etag);
    }
    cr_assert_null(nu_ui_asset_at(3));
    cr_assert_null(nu_ui_asset_find("../app.js"));
    cr_assert_null(nu_ui_asset_find(NULL));
}

Test(ui, the_page_loads_only_same_origin_resources)
{
    const struct nu_ui_asset *a = nu_ui_asset_find("index.html");
    cr_assert_not_null(strstr(a->data, "src=\"/ui/app.js\""));
    cr_assert_not_null(strstr(a->data, "href=\"/ui/app.css\""));
    cr_assert_null(strstr(a->data, "http://"));
    cr_assert_null(strstr(a->data, "https://"));
    cr_assert_null(strstr(a->data, " onclick="), "no inline handlers");
}

static const struct {
    const char *path;
    int status;
    const char *type; /* NULL: not checked */
} ui_cases[] = {
    {"/", 200, "text/html; charset=utf-8"},
    {"/ui/index.html", 200, "text/html; charset=utf-8"},
    {"/ui/app.js", 200, "text/javascript; charset=utf-8"},
    {"/ui/app.css", 200, "text/css; charset=utf-8"},
    {"/ui/nope.js", 404, NULL},
    {"/ui/x/app.js", 404, NULL},
    {"/ui/..%2fapp.js", 404, NULL},
    {"/other", 404, NULL},
};

Test(ui, routes_serve_assets_with_types_and_cache_headers)
{
    for (size_t i = 0; i < sizeof(ui_cases) / sizeof(ui_cases[0]); i++) {
        struct nu_http_resp resp;
        ui_get(ui_cases[i].path, NULL, &resp);
        cr_assert_eq(resp.status, ui_cases[i].status, "%s", ui_cases[i].path);
        if (ui_cases[i].type != NULL) {
            cr_assert_str_eq(resp.content_type, ui_cases[i].type, "%s", ui_cases[i].path);
            cr_assert_str_eq(nu_http_resp_get_header(&resp, "Cache-Control"), "no-cache");
            cr_assert_not_null(nu_http_resp_get_header(&resp, "ETag"));
            cr_assert_gt(resp.body.len, 0);
        }
        nu_http_resp_free(&resp);
    }
    struct nu_http_resp resp;
    ui_get("/", NULL, &resp);
    const char *csp = nu_http_resp_get_header(&resp, "Content-Security-Policy");
    cr_assert_not_null(csp);
    cr_assert_not_null(strstr(csp, "script-src 'self'"));
    nu_http_resp_free(&resp);
}

Test(ui, a_matching_if_none_match_answers_304_without_a_body)
{
    const struct nu_ui_asset *a = nu_ui_asset_find("app.js");
    char list[128], weak[64];
    snprintf(list, sizeof(list), "\"0000000000000000\" , %s", a->etag);
    snprintf(weak, sizeof(weak), "W/%s", a->etag);
    const char *hit[] = {a->etag, list, weak, "*"};
    for (size_t i = 0; i < sizeof(hit) / sizeof(hit[0]); i++) {
        struct nu_http_resp resp;
        ui_get("/ui/app.js", hit[i], &resp);
        cr_assert_eq(resp.status, 304, "If-None-Match: %s", hit[i]);
        cr_assert_eq(resp.body.len, 0);
        cr_assert_str_eq(nu_http_resp_get_header(&resp, "ETag"), a->etag);
        nu_http_resp_free(&resp);
    }
    const char *miss[] = {"\"0000000000000000\"", "", "garbage", nu_ui_asset_find("app.css")->etag};
    for (size_t i = 0; i < sizeof(miss) / sizeof(miss[0]); i++) {
        struct nu_http_resp resp;
        ui_get("/ui/app.js", miss[i], &resp);
        cr_assert_eq(resp.status, 200, "If-None-Match: %s", miss[i]);
        cr_assert_eq(resp.body.len, a->len);
        nu_http_resp_free(&resp);
    }
}
