/*
 * op_http_fetch.h — concurrent HTTP downloads for the http_fetch operator (layer: stage), on
 * libcurl's multi interface: one thread drives up to `concurrency` transfers at once, retries
 * timeouts, connection errors and HTTP 5xx with exponential back-off, follows redirects up to a
 * limit, aborts a body as soon as it exceeds max_bytes (or Content-Length announces more) and
 * checks the Content-Type against an allow-list. Each body is streamed into a temporary file
 * while its SHA-256 is computed.
 *
 * Ownership: the conf and the URLs are borrowed for the call; what nu_fetch_run writes into an
 * item (path, final_url, content_type, error) is owned by the item until nu_fetch_item_clear.
 * Thread-safety: nu_fetch_run is reentrant (each call has its own multi handle).
 */
#ifndef NU_STAGE_OP_HTTP_FETCH_H
#define NU_STAGE_OP_HTTP_FETCH_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of the options (the operator's validation uses the same). */
#define NU_FETCH_MAX_CONCURRENCY   256
#define NU_FETCH_MAX_RETRIES       20
#define NU_FETCH_MAX_REDIRECTS     50
#define NU_FETCH_MAX_TIMEOUT_MS    3600000L
#define NU_FETCH_MAX_BACKOFF_MS    60000L
#define NU_FETCH_MAX_CONTENT_TYPES 64
#define NU_FETCH_MAX_URL           8192

struct nu_fetch_conf {
    long concurrency;          /* transfers at once, >= 1 */
    long connect_timeout_ms;   /* per attempt */
    long timeout_ms;           /* whole attempt, redirects included */
    long retries;              /* attempts after the first on retriable failures */
    long backoff_ms;           /* first back-off; doubled per retry (at most 30 s) */
    long max_redirects;        /* 0: redirects are failures */
    int64_t max_bytes;         /* largest body */
    const char *const *ctypes; /* allowed Content-Type prefixes (case-insensitive) */
    size_t nctypes;            /* 0: any type */
    const char *tmpdir;        /* where bodies are written */
};

/* One URL to fetch and, after nu_fetch_run, its result. */
struct nu_fetch_item {
    const char *url;    /* in: borrowed */
    bool ok;            /* out: body fetched and accepted */
    nu_err_t rc;        /* the error's class when !ok (NU_ERR_NOT_FOUND, NU_ERR_TIMEOUT, …) */
    char *error;        /* the reason when !ok, e.g. "GET http://h/x: HTTP 404" */
    char *path;         /* the temporary file with the body (ok only; caller unlinks) */
    char sha256[65];    /* lower-case hex of the body */
    int64_t size;       /* body bytes */
    long status;        /* last HTTP status (0: no response) */
    char *final_url;    /* the URL after redirects */
    char *content_type; /* the response's Content-Type, or NULL */
    int attempts;       /* transfers made */
};

/*
 * Fetch every item's URL (borrowed array of n items, results written into it). Per-URL
 * failures are results, not errors. Blocks until all transfers end (each bounded by the
 * timeouts and the retries). Errors: NU_ERR_IO (a temporary file could not be written),
 * NU_ERR_SYSTEM (libcurl could not be set up); on an error the items are cleared.
 */
nu_err_t nu_fetch_run(const struct nu_fetch_conf *c, struct nu_fetch_item *items, size_t n,
                      struct nu_errbuf *eb);

/* Free what nu_fetch_run wrote into `it` and unlink its temporary file; keeps url. */
void nu_fetch_item_clear(struct nu_fetch_item *it);

/* Does `ctype` (NULL: none) start with one of the n prefixes, case-insensitively? n == 0: yes. */
bool nu_fetch_ctype_allowed(const char *ctype, const char *const *prefixes, size_t n);

/* Delay before retry `attempt` (1 = first retry): base * 2^(attempt-1), at most 30 s. */
long nu_fetch_backoff_ms(long base, int attempt);

#endif
