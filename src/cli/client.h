/*
 * client.h — an HTTP client of the coordinator's API for the `nurion` commands (layer: cli).
 *
 * The commands `submit`, `jobs`, `status`, `cancel`, `lineage` and `topics` speak to a running
 * coordinator through this module: one libcurl easy handle per client, reused across requests
 * (keep-alive), a bearer token when one is given, connect and request timeouts, and a bound on
 * the size of an answer. An HTTP error status is not an error of this module: the caller gets
 * the status with the body (parsed when JSON) and decides; nu_client_print_error() prints the
 * API's error body ({"error":{"code","message","problems"}}) for people.
 *
 * Ownership: the client copies its configuration. A response owns its body and parsed JSON until
 * nu_client_resp_free(). Strings returned by nu_client_escape() are malloc'ed and owned by the
 * caller.
 * Thread-safety: a client belongs to one thread at a time; different clients may be used from
 * different threads.
 */
#ifndef NU_CLI_CLIENT_H
#define NU_CLI_CLIENT_H

#include "common/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define NU_CLIENT_DEFAULT_URL        "http://127.0.0.1:8080"
#define NU_CLIENT_MAX_URL_BYTES      2048        /* base URL given by the user */
#define NU_CLIENT_MAX_PATH_BYTES     4096        /* path and query of one request */
#define NU_CLIENT_MAX_TOKEN_BYTES    4096        /* bearer token */
#define NU_CLIENT_MAX_RESPONSE_BYTES (64u << 20) /* default bound on an answer's body */
#define NU_CLIENT_TIMEOUT_MS         60000       /* default bound on one request */
#define NU_CLIENT_CONNECT_TIMEOUT_MS 5000        /* default bound on connecting */

typedef struct nu_client nu_client_t;

struct nu_client_conf {
    const char *url;           /* "http://host:port[/prefix]"; a trailing '/' is dropped */
    const char *token;         /* bearer token; NULL or "" sends none */
    long timeout_ms;           /* whole request; 0 = NU_CLIENT_TIMEOUT_MS */
    long connect_timeout_ms;   /* 0 = NU_CLIENT_CONNECT_TIMEOUT_MS */
    size_t max_response_bytes; /* 0 = NU_CLIENT_MAX_RESPONSE_BYTES */
};

struct nu_client_resp {
    long status;  /* HTTP status */
    char *body;   /* owned, NUL-terminated; "" when empty */
    size_t len;   /* bytes of body, without the NUL */
    json_t *json; /* owned: the body parsed when it is JSON, else NULL */
};

/*
 * A client of the coordinator at conf->url. Errors: NU_ERR_USAGE for a URL that is not http(s)
 * or is over NU_CLIENT_MAX_URL_BYTES, a token over NU_CLIENT_MAX_TOKEN_BYTES or with control
 * characters; NU_ERR_SYSTEM when libcurl cannot be initialised. Does not connect yet.
 */
nu_err_t nu_client_new(const struct nu_client_conf *conf, nu_client_t **out, struct nu_errbuf *eb);
/* Release the client and its connection. Accepts NULL. */
void nu_client_destroy(nu_client_t *c);
/* The base URL (without a trailing '/'); lives as long as the client. */
const char *nu_client_url(const nu_client_t *c);

/*
 * One request: `method` ("GET", "POST", …) on base URL + `path` (which starts with '/' and is
 * already percent-encoded, see nu_client_escape). A non-NULL `body` is sent as
 * application/json. Blocks up to the request timeout. On NU_OK *out holds the answer, whatever
 * its status. Errors (*out is then empty): NU_ERR_IO `cannot reach the coordinator at URL: …`
 * (refused, unresolvable, reset, TLS, …), NU_ERR_TIMEOUT, NU_ERR_TOO_LARGE (an answer over the
 * limit), NU_ERR_USAGE (a path over NU_CLIENT_MAX_PATH_BYTES).
 */
nu_err_t nu_client_request(nu_client_t *c, const char *method, const char *path, const char *body,
                           size_t body_len, struct nu_client_resp *out, struct nu_errbuf *eb);
/* Free the body and JSON; the response is empty afterwards. Accepts NULL. */
void nu_client_resp_free(struct nu_client_resp *r);

/* `s` percent-encoded for one path segment or query value (RFC 3986 unreserved bytes kept). */
char *nu_client_escape(const char *s);

/*
 * Print the error of an answer with an error status: `<prefix>: <message>` (the API's message,
 * else the status and reason), then one line per problem, `<where>: <path>: <message>`
 * (`where` defaults to "  " indentation when NULL). A 401 adds how to give a token.
 */
void nu_client_print_error(FILE *out, const char *prefix, const char *where,
                           const struct nu_client_resp *r);

#endif
