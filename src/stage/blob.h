/*
 * blob.h — the blob store, addressed by URI (layer: stage).
 *
 * Large binary data (images, video clips) travels beside the splits, not inside them: a row
 * carries a reference (uri, size, sha256, content type) — the claim-check pattern. Two schemes:
 *
 *   file:///abs/path          a folder shared by every instance (local disk, NFS, …)
 *   s3://bucket/key           the S3 API over libcurl, signed with AWS Signature V4
 *
 * S3 settings come from the environment (nu_blob_conf_env): NU_S3_ENDPOINT (e.g.
 * http://127.0.0.1:9000; default https://s3.<region>.amazonaws.com), NU_S3_REGION or
 * AWS_REGION (default us-east-1), NU_S3_PATH_STYLE (1/0; default 1 when an endpoint is set),
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. Secrets are never logged.
 *
 * Idempotence: writers name objects by content (nu_blob_cas_uri: <prefix>/<sha256>.<ext>) or by
 * split id, so a re-run writes the same names with the same bytes. A put is atomic: file://
 * writes "<dir>/.<name>.<pid>.part" and renames it into place (a crash between the two leaves
 * such a file; nu_blob_sweep removes them); S3 makes an object visible only when its PUT
 * completes. A put whose object already exists with the same size is skipped.
 *
 * Thread-safety: a store (nu_blob_t) belongs to one thread; different stores may be used from
 * different threads. nu_blob_uri_parse and the signing functions are reentrant.
 */
#ifndef NU_STAGE_BLOB_H
#define NU_STAGE_BLOB_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest URI accepted, and the most bytes nu_blob_get_mem reads at once. */
#define NU_BLOB_MAX_URI 4096
#define NU_BLOB_MAX_MEM (1LL << 30)

typedef enum nu_blob_scheme { NU_BLOB_FILE = 0, NU_BLOB_S3 } nu_blob_scheme_t;

/* A parsed URI; strings owned (nu_blob_uri_free). file: path is the absolute path, bucket NULL;
 * s3: bucket and key (key without a leading '/'; may be empty for a bucket-only URI). */
struct nu_blob_uri {
    nu_blob_scheme_t scheme;
    char *bucket;
    char *path;
};

/*
 * Parse `uri`. Errors (NU_ERR_INVALID): not file:// or s3://, a file:// path that is not
 * absolute or names a host, an s3:// URI without a bucket or with an invalid bucket name, a
 * "." or ".." path segment, a NUL or control character, longer than NU_BLOB_MAX_URI.
 */
nu_err_t nu_blob_uri_parse(const char *uri, struct nu_blob_uri *out, struct nu_errbuf *eb);
void nu_blob_uri_free(struct nu_blob_uri *u); /* accepts NULL and a zeroed struct */

/* "<prefix>/<hex>.<ext>" (ext may be NULL or ""; a trailing '/' of prefix is not doubled).
 * Returned owned (free). */
char *nu_blob_cas_uri(const char *prefix, const char *hex, const char *ext);

/* S3 settings; strings borrowed for the life of any store made from them. */
struct nu_blob_conf {
    const char *endpoint; /* NULL: https://s3.<region>.amazonaws.com */
    const char *region;   /* NULL: us-east-1 */
    bool path_style;      /* endpoint/bucket/key instead of bucket.endpoint/key */
    const char *access_key, *secret_key, *session_token; /* NULL: unsigned requests */
    long connect_timeout_ms, timeout_ms;                 /* 0: 10 s and 300 s */
};

/* Fill *c from the environment (pointers into the environment; valid until it changes). */
void nu_blob_conf_env(struct nu_blob_conf *c);

typedef struct nu_blob nu_blob_t;

/* New store over conf (borrowed: must outlive the store). Errors: NU_ERR_SYSTEM (libcurl). */
nu_err_t nu_blob_new(const struct nu_blob_conf *conf, nu_blob_t **out, struct nu_errbuf *eb);
void nu_blob_destroy(nu_blob_t *b); /* accepts NULL */

/*
 * Store the `len` bytes at `data` (borrowed) as `uri`, atomically; `content_type` may be NULL.
 * Skipped when the object exists with the same size. Blocks (network for s3, at most the
 * configured timeouts). Errors: NU_ERR_INVALID (URI), NU_ERR_IO (file system, network, HTTP 5xx:
 * retriable), NU_ERR_TIMEOUT, NU_ERR_CONFIG (HTTP 401/403: credentials), NU_ERR_NOT_FOUND (no
 * such bucket), NU_ERR_OPERATOR (other HTTP statuses).
 */
nu_err_t nu_blob_put_mem(nu_blob_t *b, const char *uri, const void *data, size_t len,
                         const char *content_type, struct nu_errbuf *eb);
/* The same from local file `path` (read once to hash it for S3, then streamed). */
nu_err_t nu_blob_put_file(nu_blob_t *b, const char *uri, const char *path, const char *content_type,
                          struct nu_errbuf *eb);

/* Read `uri` into *data (malloc'ed, returned owned, NUL-terminated for convenience; *len
 * without the NUL). Errors: as for put, NU_ERR_NOT_FOUND (no object), NU_ERR_TOO_LARGE (more
 * than `max` bytes, at most NU_BLOB_MAX_MEM). */
nu_err_t nu_blob_get_mem(nu_blob_t *b, const char *uri, int64_t max, void **data, size_t *len,
                         struct nu_errbuf *eb);
/* Copy `uri` into local file `path` (created or truncated), at most `max` bytes. */
nu_err_t nu_blob_get_file(nu_blob_t *b, const char *uri, const char *path, int64_t max,
                          struct nu_errbuf *eb);

/* Size of `uri` into *size, or -1 when there is no such object (not an error). */
nu_err_t nu_blob_stat(nu_blob_t *b, const char *uri, int64_t *size, struct nu_errbuf *eb);
/* Remove `uri`; a missing object is not an error. */
nu_err_t nu_blob_delete(nu_blob_t *b, const char *uri, struct nu_errbuf *eb);

/*
 * A local file holding `uri` for readers that need a path (FFmpeg, libvips): file:// gives its
 * own path (*temp false); s3:// downloads into a new file under `tmpdir` (*temp true: the caller
 * unlinks it). *path returned owned (free). Errors: as for nu_blob_get_file.
 */
nu_err_t nu_blob_local(nu_blob_t *b, const char *uri, const char *tmpdir, int64_t max, char **path,
                       bool *temp, struct nu_errbuf *eb);

/* Create bucket `name` on the S3 endpoint (for tests and set-up; an existing bucket owned by
 * the caller is not an error). */
nu_err_t nu_blob_s3_mkbucket(nu_blob_t *b, const char *name, struct nu_errbuf *eb);

/* Remove the ".*.part" files that crashed file:// writers left in folder `dir` (not recursive)
 * and are older than `min_age_s` seconds; *removed counts them. */
nu_err_t nu_blob_sweep(const char *dir, long min_age_s, size_t *removed, struct nu_errbuf *eb);

#endif
