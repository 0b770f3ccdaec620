/* router.c — pattern compilation, segment-wise matching and specificity ordering. */
#include "api/router.h"

#include "common/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum nu_seg_kind { NU_SEG_REST = 0, NU_SEG_CAPTURE = 1, NU_SEG_LITERAL = 2 };

struct nu_seg {
    enum nu_seg_kind kind;
    char *text; /* literal text, or capture name; owned */
};

struct nu_compiled_route {
    struct nu_http_route route; /* pattern points at an owned copy */
    struct nu_seg segs[NU_HTTP_MAX_SEGMENTS];
    size_t nsegs;
};

struct nu_http_router {
    struct nu_compiled_route *routes;
    size_t n;
};

static void nu_route_free(struct nu_compiled_route *cr)
{
    for (size_t i = 0; i < cr->nsegs; i++)
        free(cr->segs[i].text);
    free((char *)cr->route.pattern);
}

static nu_err_t nu_route_compile(const struct nu_http_route *r, size_t idx,
                                 struct nu_compiled_route *cr, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    const char *pat = r->pattern ? r->pattern : "";
    size_t ncap = 0;
    memset(cr, 0, sizeof(*cr));
    cr->route = *r;
    cr->route.pattern = nu_xstrdup(pat);
    if (pat[0] != '/') {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "route %zu: pattern \"%s\" must start with '/'", idx,
                        pat);
        goto out;
    }
    if (!r->handler || (int)r->method < 0 || r->method >= NU_HTTP_METHOD__COUNT) {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "route %zu (\"%s\"): needs a handler and a method", idx,
                        pat);
        goto out;
    }
    const char *p = pat + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (cr->nsegs >= NU_HTTP_MAX_SEGMENTS) {
            rc = nu_err_set(eb, NU_ERR_CONFIG, "route \"%s\": more than %d segments", pat,
                            NU_HTTP_MAX_SEGMENTS);
            goto out;
        }
        struct nu_seg *sg = &cr->segs[cr->nsegs];
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            bool rest = len >= 3 && p[len - 2] == '*';
            size_t nlen = len - 2 - (rest ? 1 : 0);
            sg->kind = rest ? NU_SEG_REST : NU_SEG_CAPTURE;
            sg->text = nu_xstrndup(p + 1, nlen);
            cr->nsegs++;
            if (nlen == 0 || strpbrk(sg->text, "{}*")) {
                rc = nu_err_set(eb, NU_ERR_CONFIG, "route \"%s\": bad capture \"%.*s\"", pat,
                                (int)len, p);
                goto out;
            }
            if (rest && slash) {
                rc = nu_err_set(eb, NU_ERR_CONFIG,
                                "route \"%s\": a rest capture must be the last segment", pat);
                goto out;
            }
            for (size_t i = 0; i + 1 < cr->nsegs; i++) {
                if (cr->segs[i].kind != NU_SEG_LITERAL && strcmp(cr->segs[i].text, sg->text) == 0) {
                    rc = nu_err_set(eb, NU_ERR_CONFIG, "route \"%s\": capture \"%s\" used twice",
                                    pat, sg->text);
                    goto out;
                }
            }
            if (++ncap > NU_HTTP_MAX_PATH_PARAMS) {
                rc = nu_err_set(eb, NU_ERR_CONFIG, "route \"%s\": more than %d captures", pat,
                                NU_HTTP_MAX_PATH_PARAMS);
                goto out;
            }
        } else {
            sg->kind = NU_SEG_LITERAL;
            sg->text = nu_xstrndup(p, len);
            cr->nsegs++;
            if (strpbrk(sg->text, "{}")) {
                rc = nu_err_set(eb, NU_ERR_CONFIG, "route \"%s\": unbalanced '{' or '}'", pat);
                goto out;
            }
        }
        if (!slash)
            break;
        p = slash + 1;
    }
out:
    return rc;
}

/* <0 when a is more specific than b, >0 when less, 0 when equally specific. */
static int nu_route_specificity_cmp(const struct nu_compiled_route *a,
                                    const struct nu_compiled_route *b)
{
    size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return (int)b->segs[i].kind - (int)a->segs[i].kind;
    return (int)b->nsegs - (int)a->nsegs;
}

static bool nu_route_same(const struct nu_compiled_route *a, const struct nu_compiled_route *b)
{
    if (a->route.method != b->route.method || a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == NU_SEG_LITERAL && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

nu_err_t nu_http_router_new(const struct nu_http_route *routes, size_t n, nu_http_router_t **out,
                            struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    nu_http_router_t *rt = nu_xcalloc(1, sizeof(*rt));
    *out = NULL;
    rt->routes = nu_xcalloc(n ? n : 1, sizeof(*rt->routes));
    for (size_t i = 0; i < n; i++) {
        rc = nu_route_compile(&routes[i], i, &rt->routes[i], eb);
        rt->n++;
        if (rc != NU_OK)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (nu_route_same(&rt->routes[i], &rt->routes[j])) {
                rc = nu_err_set(eb, NU_ERR_CONFIG, "route %s \"%s\" is defined twice",
                                nu_http_method_name(routes[i].method), routes[i].pattern);
                goto out;
            }
        }
    }
    *out = rt;
    rt = NULL;
out:
    nu_http_router_destroy(rt);
    return rc;
}

void nu_http_router_destroy(nu_http_router_t *rt)
{
    if (!rt)
        return;
    for (size_t i = 0; i < rt->n; i++)
        nu_route_free(&rt->routes[i]);
    free(rt->routes);
    free(rt);
}

size_t nu_http_router_count(const nu_http_router_t *rt)
{
    return rt->n;
}

const struct nu_http_route *nu_http_router_route(const nu_http_router_t *rt, size_t i)
{
    return i < rt->n ? &rt->routes[i].route : NULL;
}

/* A request path split into raw and decoded segments. */
struct nu_path {
    const char *raw[NU_HTTP_MAX_SEGMENTS]; /* start of each raw segment in req->path */
    const char *dec[NU_HTTP_MAX_SEGMENTS];
    size_t n;
};

static nu_err_t nu_path_split(struct nu_http_req *req, struct nu_path *ps, struct nu_errbuf *eb)
{
    const char *path = req->path ? req->path : "";
    size_t len = strlen(path);
    if (path[0] != '/')
        return nu_err_set(eb, NU_ERR_INVALID, "request path must start with '/'");
    if (len > NU_HTTP_MAX_PATH_BYTES)
        return nu_err_set(eb, NU_ERR_INVALID, "request path is %zu bytes, over the limit of %d",
                          len, NU_HTTP_MAX_PATH_BYTES);
    ps->n = 0;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (ps->n >= NU_HTTP_MAX_SEGMENTS)
            return nu_err_set(eb, NU_ERR_INVALID, "request path has more than %d segments",
                              NU_HTTP_MAX_SEGMENTS);
        ps->raw[ps->n] = p;
        ps->dec[ps->n] = nu_http_decode(req, p, n, false, NULL);
        if (!ps->dec[ps->n])
            return nu_err_set(eb, NU_ERR_INVALID,
                              "request path segment %zu is not valid percent-encoded UTF-8",
                              ps->n + 1);
        ps->n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    return NU_OK;
}

static bool nu_route_matches(const struct nu_compiled_route *cr, const struct nu_path *ps)
{
    for (size_t i = 0; i < cr->nsegs; i++) {
        if (cr->segs[i].kind == NU_SEG_REST)
            return i < ps->n && ps->dec[i][0] != '\0';
        if (i >= ps->n)
            return false;
        if (cr->segs[i].kind == NU_SEG_LITERAL && strcmp(cr->segs[i].text, ps->dec[i]) != 0)
            return false;
        if (cr->segs[i].kind == NU_SEG_CAPTURE && ps->dec[i][0] == '\0')
            return false;
    }
    return cr->nsegs == ps->n;
}

nu_err_t nu_http_router_match(const nu_http_router_t *rt, struct nu_http_req *req,
                              struct nu_http_match *out, struct nu_errbuf *eb)
{
    struct nu_path ps = {.n = 0};
    const struct nu_compiled_route *best = NULL, *best_get = NULL;
    size_t best_i = SIZE_MAX, best_get_i = SIZE_MAX;
    memset(out, 0, sizeof(*out));
    out->index = SIZE_MAX;
    nu_err_t rc = nu_path_split(req, &ps, eb);
    if (rc != NU_OK)
        return rc;
    for (size_t i = 0; i < rt->n; i++) {
        const struct nu_compiled_route *cr = &rt->routes[i];
        if (!nu_route_matches(cr, &ps))
            continue;
        out->allow |= 1u << cr->route.method;
        if (cr->route.method == req->method && (!best || nu_route_specificity_cmp(cr, best) < 0)) {
            best = cr;
            best_i = i;
        }
        if (cr->route.method == NU_HTTP_GET &&
            (!best_get || nu_route_specificity_cmp(cr, best_get) < 0)) {
            best_get = cr;
            best_get_i = i;
        }
    }
    if (out->allow & (1u << NU_HTTP_GET))
        out->allow |= 1u << NU_HTTP_HEAD;
    if (out->allow)
        out->allow |= 1u << NU_HTTP_OPTIONS;
    if (!best && req->method == NU_HTTP_HEAD && best_get) {
        best = best_get;
        best_i = best_get_i;
    }
    if (!best)
        return NU_OK;
    out->route = &best->route;
    out->index = best_i;
    req->nparams = 0;
    for (size_t i = 0; i < best->nsegs; i++) {
        const struct nu_seg *sg = &best->segs[i];
        const char *value = ps.dec[i];
        if (sg->kind == NU_SEG_LITERAL)
            continue;
        if (sg->kind == NU_SEG_REST) /* the rest, decoded as a whole: slashes are kept */
            value = nu_http_decode(req, ps.raw[i], strlen(ps.raw[i]), false, NULL);
        req->params[req->nparams].name = sg->text;
        req->params[req->nparams].value = value ? value : "";
        req->nparams++;
    }
    return NU_OK;
}

void nu_http_allow_format(unsigned allow, char *buf, size_t size)
{
    size_t off = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    if (allow)
        allow |= 1u << NU_HTTP_OPTIONS;
    for (int m = 0; m < NU_HTTP_METHOD__COUNT; m++) {
        if (!(allow & (1u << m)))
            continue;
        int w = snprintf(buf + off, size - off, "%s%s", off ? ", " : "", nu_http_method_name(m));
        if (w < 0 || (size_t)w >= size - off) {
            buf[off] = '\0'; /* drop the partial entry */
            break;
        }
        off += (size_t)w;
    }
}
