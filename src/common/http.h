/*
 * http.h — HTTP request and response values, free of any server library (layer: common).
 *
 * The coordinator's handlers are plain functions from a struct nu_http_req to a struct
 * nu_http_resp, so they are written and tested without sockets; src/api/server.c fills the
 * request from libmicrohttpd and sends the response. This module holds the two structs and the
 * helpers handlers need: JSON and error bodies in the one error format of the API
 * ({"error":{"code","message","problems"}}), validated query getters, bounded JSON body parsing
 * and the mapping of nu_err_t onto responses. docs/http.md describes the conventions.
 *
 * Ownership: a request owns its arena; every string reachable from it (path, method, query and
 * path parameters, remote address) lives until nu_http_req_free(). The body is borrowed from
 * whoever filled the request. A response owns its body buffer and extra headers until
 * nu_http_resp_free(); content_type points at a string with static lifetime.
 * Thread-safety: a request or response belongs to one thread; the functions are reentrant.
 */
#ifndef NU_COMMON_HTTP_H
#define NU_COMMON_HTTP_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/problems.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits on what a request may carry; beyond them the request is refused with a 4xx. */
#define NU_HTTP_MAX_QUERY_PARAMS 64         /* query parameters per request */
#define NU_HTTP_MAX_QUERY_BYTES  8192       /* raw query string */
#define NU_HTTP_MAX_PATH_PARAMS  8          /* {name} captures per route */
#define NU_HTTP_MAX_PATH_BYTES   2048       /* raw path */
#define NU_HTTP_MAX_RESP_HEADERS 16         /* extra response headers */
#define NU_HTTP_JSON_MAX_DEPTH   64         /* default nesting limit of request bodies */
#define NU_HTTP_JSON_MAX_BYTES   (1u << 20) /* default size limit of request bodies */
#define NU_HTTP_PAGE_DEFAULT     50         /* default `limit` of list endpoints */
#define NU_HTTP_PAGE_MAX         1000       /* largest `limit` of list endpoints */

typedef enum nu_http_method {
    NU_HTTP_GET = 0,
    NU_HTTP_HEAD,
    NU_HTTP_POST,
    NU_HTTP_PUT,
    NU_HTTP_PATCH,
    NU_HTTP_DELETE,
    NU_HTTP_OPTIONS,
    NU_HTTP_METHOD__COUNT,
    NU_HTTP_OTHER = NU_HTTP_METHOD__COUNT, /* any other token (TRACE, CONNECT, …) */
} nu_http_method_t;

/* "GET", … for a known method, else "OTHER". */
const char *nu_http_method_name(nu_http_method_t m);
/* The method of a request-line token (case-sensitive, as HTTP requires). */
nu_http_method_t nu_http_method_parse(const char *s);

/* A decoded name/value pair. `value` is "" for a query parameter given without '='. */
struct nu_http_param {
    const char *name;
    const char *value;
};

struct nu_http_req {
    nu_http_method_t method;
    const char *method_name; /* as received */
    const char *path;        /* as received (still percent-encoded), without the query */
    struct nu_http_param query[NU_HTTP_MAX_QUERY_PARAMS]; /* decoded, in request order */
    size_t nquery;
    struct nu_http_param params[NU_HTTP_MAX_PATH_PARAMS]; /* {name} captures, decoded */
    size_t nparams;
    /* Header lookup, case-insensitive; NULL when absent. Set by whoever fills the request. */
    const char *(*header_fn)(void *header_ctx, const char *name);
    void *header_ctx;
    const unsigned char *body; /* borrowed; NULL when empty */
    size_t body_len;
    const char *remote_addr; /* "127.0.0.1", "::1"; "" when unknown */
    void *thread_ctx;        /* the serving thread's context (server.h), may be NULL */
    nu_arena_t *arena;       /* owned; per-request scratch, handlers may allocate from it */
};

/* Initialise an empty GET "/" request with a fresh arena. */
void nu_http_req_init(struct nu_http_req *req);
/* Release the arena and everything in it. Accepts NULL; the request may be re-initialised. */
void nu_http_req_free(struct nu_http_req *req);

/*
 * Parse a raw query string ("a=1&b=x%20y", without '?') into req->query: '+' is a space, %XX a
 * byte; names and values must be valid UTF-8 without NUL. Errors (NU_ERR_INVALID): over
 * NU_HTTP_MAX_QUERY_BYTES or NU_HTTP_MAX_QUERY_PARAMS, bad percent-encoding, bad UTF-8.
 */
nu_err_t nu_http_req_parse_query(struct nu_http_req *req, const char *query, struct nu_errbuf *eb);

/*
 * Percent-decode `n` bytes of `s` into the request arena (NUL-terminated, length in *out_len when
 * not NULL). `plus_space` turns '+' into ' '. Returns NULL on a bad escape, a NUL byte or invalid
 * UTF-8.
 */
char *nu_http_decode(struct nu_http_req *req, const char *s, size_t n, bool plus_space,
                     size_t *out_len);

/* Is s[0..n) valid UTF-8 (no overlong forms, no surrogates)? */
bool nu_http_utf8_valid(const char *s, size_t n);

/* A header value (borrowed, lives as long as the request), or NULL. */
const char *nu_http_header(const struct nu_http_req *req, const char *name);
/* The first query parameter `name` / the path parameter `name`, or NULL. Borrowed. */
const char *nu_http_query(const struct nu_http_req *req, const char *name);
const char *nu_http_param(const struct nu_http_req *req, const char *name);

/*
 * Validated query getters. Absent → *out = def. Present but not an integer in [min, max] /
 * not a boolean (true/false/1/0) / longer than max_len → NU_ERR_INVALID naming the parameter
 * (`query parameter "limit" must be an integer between 1 and 1000, got "x"`), which
 * nu_http_resp_from_err() turns into a 400.
 */
nu_err_t nu_http_query_int(const struct nu_http_req *req, const char *name, long long min,
                           long long max, long long def, long long *out, struct nu_errbuf *eb);
nu_err_t nu_http_query_bool(const struct nu_http_req *req, const char *name, bool def, bool *out,
                            struct nu_errbuf *eb);
nu_err_t nu_http_query_str(const struct nu_http_req *req, const char *name, size_t max_len,
                           const char *def, const char **out, struct nu_errbuf *eb);

/* Pagination of list endpoints: `limit` (1..NU_HTTP_PAGE_MAX, default NU_HTTP_PAGE_DEFAULT)
 * and `cursor` (opaque, from the previous page's "next"; NULL on the first page). */
struct nu_http_page {
    long long limit;
    const char *cursor;
};
nu_err_t nu_http_query_page(const struct nu_http_req *req, struct nu_http_page *out,
                            struct nu_errbuf *eb);

/*
 * Parse the body as one JSON document. max_bytes / max_depth of 0 mean NU_HTTP_JSON_MAX_BYTES /
 * NU_HTTP_JSON_MAX_DEPTH. Errors: NU_ERR_PARSE (empty body; `invalid JSON in request body at
 * line L, column C: …`, including invalid UTF-8 and duplicate keys), NU_ERR_TOO_LARGE (over
 * max_bytes), NU_ERR_INVALID (nested deeper than max_depth). On success *out is a new reference.
 */
nu_err_t nu_http_body_json(const struct nu_http_req *req, size_t max_bytes, size_t max_depth,
                           json_t **out, struct nu_errbuf *eb);

struct nu_http_header {
    char *name;  /* owned */
    char *value; /* owned */
};

struct nu_http_resp {
    int status;               /* 0 until a helper sets it; the server sends 500 for 0 */
    const char *content_type; /* static lifetime; NULL = no body type */
    struct nu_buf body;       /* owned */
    struct nu_http_header headers[NU_HTTP_MAX_RESP_HEADERS];
    size_t nheaders;
};

void nu_http_resp_init(struct nu_http_resp *resp);
/* Free the body and headers; the response is empty and reusable afterwards. Accepts NULL. */
void nu_http_resp_free(struct nu_http_resp *resp);

/*
 * Add an extra header (copied). Refuses (returns false) names that are not HTTP tokens, values
 * with CR, LF or NUL, and headers over NU_HTTP_MAX_RESP_HEADERS. Setting a name already present
 * (case-insensitive) replaces its value.
 */
bool nu_http_resp_header(struct nu_http_resp *resp, const char *name, const char *value);
/* The value of an extra header, or NULL. Borrowed. */
const char *nu_http_resp_get_header(const struct nu_http_resp *resp, const char *name);

/* Body = compact JSON of `body`, whose reference is taken (even on failure); type
 * application/json. A NULL `body` gives a 500 error response. Replaces any previous body. */
void nu_http_resp_json(struct nu_http_resp *resp, int status, json_t *body);
/* Body = `text`, type text/plain; charset=utf-8. */
void nu_http_resp_text(struct nu_http_resp *resp, int status, const char *text);
/* Body = n bytes of `data` with the given static content type. */
void nu_http_resp_bytes(struct nu_http_resp *resp, int status, const char *content_type,
                        const void *data, size_t n);

/*
 * The API's error body: {"error":{"code":code,"message":message,"problems":[{"path","message"}]}}
 * ("problems" only when `probs` is non-NULL and non-empty). Strings are borrowed.
 */
void nu_http_resp_error(struct nu_http_resp *resp, int status, const char *code,
                        const char *message, const struct nu_problems *probs);
/*
 * An error response for a nu_err_t: status from nu_err_http_status(), code the lower-case name
 * without its prefix (NU_ERR_NOT_FOUND → "not_found"), message from `eb` (or the code's text).
 */
void nu_http_resp_from_err(struct nu_http_resp *resp, nu_err_t code, const struct nu_errbuf *eb);
/* "not_found" for NU_ERR_NOT_FOUND, etc. Static storage. */
const char *nu_http_err_code(nu_err_t code);

/* A handler: fills `resp` from `req`. Never fails otherwise: errors become error responses. */
typedef void (*nu_http_handler)(const struct nu_http_req *req, struct nu_http_resp *resp,
                                void *app_ctx);

/* Route flags. */
#define NU_HTTP_ROUTE_PUBLIC    (1u << 0) /* served without the bearer token */
#define NU_HTTP_ROUTE_JSON_BODY (1u << 1) /* a non-empty body must be application/json (415) */

/* One row of a route table (api/router.h matches requests against it; declared here so that
 * layers below api can build their tables). */
struct nu_http_route {
    nu_http_method_t method;
    const char *pattern;
    nu_http_handler handler;
    unsigned flags;
};

/* Standard reason phrase ("Not Found"), "Unknown" for others. */
const char *nu_http_reason(int status);

#endif
