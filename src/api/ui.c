/*
 * ui.c — serving the embedded web UI.
 */
#include "api/ui.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern const char nu_ui_index_html_data[];
extern const size_t nu_ui_index_html_data_len;
extern const char nu_ui_app_js_data[];
extern const size_t nu_ui_app_js_data_len;
extern const char nu_ui_app_css_data[];
extern const size_t nu_ui_app_css_data_len;

#define NU_UI_NASSETS 3

/* Same-origin only: no inline script or style, no external host, no framing. */
#define NU_UI_CSP                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static char nu_ui_etags[NU_UI_NASSETS][NU_UI_ETAG_LEN + 1];
static struct nu_ui_asset nu_ui_assets[NU_UI_NASSETS];
static pthread_once_t nu_ui_once = PTHREAD_ONCE_INIT;

/* 64-bit FNV-1a: a validator, not a security measure. */
static uint64_t nu_ui_hash(const char *data, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void nu_ui_init(void)
{
    const struct nu_ui_asset table[NU_UI_NASSETS] = {
        {"index.html", "text/html; charset=utf-8", nu_ui_index_html_data, nu_ui_index_html_data_len,
         NULL},
        {"app.js", "text/javascript; charset=utf-8", nu_ui_app_js_data, nu_ui_app_js_data_len,
         NULL},
        {"app.css", "text/css; charset=utf-8", nu_ui_app_css_data, nu_ui_app_css_data_len, NULL},
    };
    for (size_t i = 0; i < NU_UI_NASSETS; i++) {
        nu_ui_assets[i] = table[i];
        snprintf(nu_ui_etags[i], sizeof(nu_ui_etags[i]), "\"%016llx\"",
                 (unsigned long long)nu_ui_hash(table[i].data, table[i].len));
        nu_ui_assets[i].etag = nu_ui_etags[i];
    }
}

size_t nu_ui_asset_count(void)
{
    return NU_UI_NASSETS;
}

const struct nu_ui_asset *nu_ui_asset_at(size_t i)
{
    pthread_once(&nu_ui_once, nu_ui_init);
    return i < NU_UI_NASSETS ? &nu_ui_assets[i] : NULL;
}

const struct nu_ui_asset *nu_ui_asset_find(const char *name)
{
    const struct nu_ui_asset *found = NULL;
    pthread_once(&nu_ui_once, nu_ui_init);
    for (size_t i = 0; name != NULL && i < NU_UI_NASSETS; i++) {
        if (strcmp(nu_ui_assets[i].name, name) == 0) {
            found = &nu_ui_assets[i];
            break;
        }
    }
    return found;
}

/* Does an If-None-Match value (a list of entity tags, or "*") name `etag`? Weak tags compare
 * by their opaque part, as RFC 9110 asks for If-None-Match. */
static bool nu_ui_etag_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (p != NULL && *p != '\0') {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = strchr(p, ',');
    }
    return false;
}

static void nu_ui_serve(const struct nu_http_req *req, struct nu_http_resp *resp,
                        const struct nu_ui_asset *a)
{
    const char *inm = nu_http_header(req, "If-None-Match");
    if (inm != NULL && nu_ui_etag_matches(inm, a->etag)) {
        resp->status = 304;
        resp->content_type = NULL;
    } else {
        nu_http_resp_bytes(resp, 200, a->content_type, a->data, a->len);
    }
    nu_http_resp_header(resp, "ETag", a->etag);
    nu_http_resp_header(resp, "Cache-Control", "no-cache");
    nu_http_resp_header(resp, "Referrer-Policy", "no-referrer");
    if (strcmp(a->name, "index.html") == 0) {
        nu_http_resp_header(resp, "Content-Security-Policy", NU_UI_CSP);
        nu_http_resp_header(resp, "X-Frame-Options", "DENY");
    }
}

/* GET / */
static void nu_ui_h_index(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    (void)app;
    nu_ui_serve(req, resp, nu_ui_asset_find("index.html"));
}

/* GET /ui/{path*} */
static void nu_ui_h_asset(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    (void)app;
    const char *name = nu_http_param(req, "path");
    const struct nu_ui_asset *a = nu_ui_asset_find(name);
    if (a == NULL)
        nu_http_resp_error(resp, 404, "not_found", "no such UI file", NULL);
    else
        nu_ui_serve(req, resp, a);
}

static const struct nu_http_route nu_ui_route_table[] = {
    {NU_HTTP_GET, "/", nu_ui_h_index, NU_HTTP_ROUTE_PUBLIC},
    {NU_HTTP_GET, "/ui/{path*}", nu_ui_h_asset, NU_HTTP_ROUTE_PUBLIC},
};

const struct nu_http_route *nu_ui_routes(size_t *n)
{
    *n = sizeof(nu_ui_route_table) / sizeof(nu_ui_route_table[0]);
    return nu_ui_route_table;
}
