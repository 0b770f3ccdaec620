/*
 * router.h — method + path-pattern routing of HTTP requests (layer: api).
 *
 * A route table is an array of struct nu_http_route. Patterns are absolute paths whose segments
 * are literals or captures: "/api/v1/jobs/{id}/stages/{sid}"; a final "{name*}" captures the rest
 * of the path (at least one segment, slashes kept). A request path is split on '/', each
 * segment percent-decoded (valid UTF-8, no NUL) and compared with the pattern's segments. When
 * several patterns match, the most specific wins: at the first segment where they differ a
 * literal beats a capture, a capture beats a rest capture; then the earlier route in the table.
 * Trailing slashes are significant ("/a/" does not match "/a").
 *
 * A GET route also answers HEAD unless the table has a HEAD route for the same pattern.
 *
 * Ownership: nu_http_router_new copies the table and its patterns; handlers and the returned
 * route pointers live until nu_http_router_destroy(). Thread-safety: a router is immutable after
 * creation; nu_http_router_match may be called from any number of threads at once.
 */
#ifndef NU_API_ROUTER_H
#define NU_API_ROUTER_H

#include "common/err.h"
#include "common/http.h"

#include <stddef.h>

#define NU_HTTP_MAX_SEGMENTS 32 /* path segments of a pattern or of a request path */

/* struct nu_http_route and the NU_HTTP_ROUTE_* flags are declared in common/http.h. */

typedef struct nu_http_router nu_http_router_t;

/*
 * A router over `n` routes. Errors (NU_ERR_CONFIG, naming the route): a pattern not starting
 * with '/', an unbalanced or empty "{}", a duplicate capture name, more than
 * NU_HTTP_MAX_PATH_PARAMS captures or NU_HTTP_MAX_SEGMENTS segments, "{x*}" not last, NU_HTTP_OTHER
 * as method, a NULL handler, or the same method and pattern twice. *out is returned owned.
 */
nu_err_t nu_http_router_new(const struct nu_http_route *routes, size_t n, nu_http_router_t **out,
                            struct nu_errbuf *eb);
void nu_http_router_destroy(nu_http_router_t *rt);

/* Number of routes, and route i (0 <= i < count), as copied. */
size_t nu_http_router_count(const nu_http_router_t *rt);
const struct nu_http_route *nu_http_router_route(const nu_http_router_t *rt, size_t i);

struct nu_http_match {
    const struct nu_http_route *route; /* NULL when no route has this method for the path */
    size_t index;                      /* index of `route` in the table */
    unsigned allow; /* methods with a route for the path: bit (1u << method); 0 = unknown path */
};

/*
 * Match req->method and req->path. On NU_OK, `out` says which route (or why none: allow == 0 is
 * a 404, allow != 0 a 405) and the captures of the matched route are stored in req->params
 * (decoded, allocated from req->arena). Errors (NU_ERR_INVALID, a 400): a path that does not
 * start with '/', is longer than NU_HTTP_MAX_PATH_BYTES, has more than NU_HTTP_MAX_SEGMENTS
 * segments, or bad percent-encoding or UTF-8 in a segment. Does not block.
 */
nu_err_t nu_http_router_match(const nu_http_router_t *rt, struct nu_http_req *req,
                              struct nu_http_match *out, struct nu_errbuf *eb);

/* "GET, HEAD, OPTIONS" for an allow mask, into buf (always NUL-terminated). OPTIONS is always
 * listed when the mask is not empty. */
void nu_http_allow_format(unsigned allow, char *buf, size_t size);

#endif
