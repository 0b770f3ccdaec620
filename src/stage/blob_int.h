/*
 * blob_int.h — internals of the blob store (layer: stage): AWS Signature V4 (blob_sigv4.c) and
 * the S3 backend (blob_s3.c) that blob.c dispatches to. Reentrant; no allocation in the signer
 * beyond the caller's buffers.
 */
#ifndef NU_STAGE_BLOB_INT_H
#define NU_STAGE_BLOB_INT_H

#include "stage/blob.h"

#include <curl/curl.h>
#include <stdio.h>

/* HMAC-SHA256 of msg under key. */
void nu_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                    unsigned char out[32]);

/* One header of a request to sign: lower-case name, value with no leading/trailing blanks. */
struct nu_sigv4_header {
    const char *name, *value;
};

struct nu_sigv4_req {
    const char *method; /* "GET" */
    const char *path;   /* canonical (already percent-encoded) absolute path */
    const char *query;  /* canonical query string (sorted, encoded), "" for none */
    const struct nu_sigv4_header *headers; /* must include host; any order */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;     /* "YYYYMMDDTHHMMSSZ" */
    const char *region, *service;
    const char *access_key, *secret_key;
};

/* Longest Authorization header value nu_sigv4_sign writes. */
#define NU_SIGV4_AUTH_MAX 2048
/* Most headers one request may sign. */
#define NU_SIGV4_MAX_HEADERS 16

/* The signing key for a date (YYYYMMDD), region and service. */
void nu_sigv4_key(const char *secret, const char *date, const char *region, const char *service,
                  unsigned char out[32]);
/*
 * Sign `r`: the hex signature into sig (65 bytes) and, when auth is not NULL, the whole
 * Authorization header value into auth (NU_SIGV4_AUTH_MAX bytes). Errors: NU_ERR_INVALID
 * (too many headers, a header or the canonical request too long).
 */
nu_err_t nu_sigv4_sign(const struct nu_sigv4_req *r, char sig[65], char *auth,
                       struct nu_errbuf *eb);
/* Percent-encode `s` as S3 canonical paths want (unreserved and, when keep_slash, '/' kept).
 * Returned owned. */
char *nu_sigv4_encode(const char *s, bool keep_slash);

struct nu_blob {
    const struct nu_blob_conf *conf;
    CURL *curl;
};

/* S3 requests of blob.c. `body`/`len` or `fp` (with len bytes) is the PUT body; `hash` its hex
 * SHA-256. GET writes to `out` (FILE) or to *mem (with *memlen), at most max bytes. */
nu_err_t nu_s3_put(nu_blob_t *b, const struct nu_blob_uri *u, const void *body, FILE *fp,
                   size_t len, const char *hash, const char *content_type, struct nu_errbuf *eb);
nu_err_t nu_s3_get(nu_blob_t *b, const struct nu_blob_uri *u, FILE *out, void **mem, size_t *memlen,
                   int64_t max, struct nu_errbuf *eb);
nu_err_t nu_s3_head(nu_blob_t *b, const struct nu_blob_uri *u, int64_t *size, struct nu_errbuf *eb);
nu_err_t nu_s3_delete(nu_blob_t *b, const struct nu_blob_uri *u, struct nu_errbuf *eb);
nu_err_t nu_s3_mkbucket(nu_blob_t *b, const char *bucket, struct nu_errbuf *eb);

#endif
