/*
 * blob_s3.c — the s3:// backend of the blob store: object PUT/GET/HEAD/DELETE and bucket
 * creation over libcurl's easy interface, each request signed with nu_sigv4_sign. Path-style
 * (endpoint/bucket/key) or virtual-hosted (bucket.host/key) addressing. libcurl errors and HTTP
 * statuses are mapped onto the error table here and nowhere else.
 */
#include "stage/blob_int.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of an error response body kept for the message. */
#define NU_S3_ERRBODY 512
/* SHA-256 of the empty string. */
#define NU_S3_EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct nu_s3_io {
    CURL *curl;
    const unsigned char *body; /* upload from memory */
    size_t body_len, body_off;
    FILE *out;          /* download to a file … */
    unsigned char *mem; /* … or to memory */
    size_t mem_len, mem_cap;
    int64_t max, got;
    bool collect; /* keep the body (GET); other responses are discarded */
    bool too_large, write_failed;
    char errbody[NU_S3_ERRBODY + 1];
    size_t errlen;
};

static size_t nu_s3_read_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct nu_s3_io *io = ud;
    size_t room = size * n, left = io->body_len - io->body_off;
    size_t k = left < room ? left : room;
    memcpy(buf, io->body + io->body_off, k);
    io->body_off += k;
    return k;
}

static size_t nu_s3_write_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct nu_s3_io *io = ud;
    size_t len = size * n;
    long status = 0;

    curl_easy_getinfo(io->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) {
        size_t k = NU_S3_ERRBODY - io->errlen < len ? NU_S3_ERRBODY - io->errlen : len;
        memcpy(io->errbody + io->errlen, buf, k);
        io->errlen += k;
        io->errbody[io->errlen] = '\0';
        return len;
    }
    if (!io->collect)
        return len;
    if (io->got + (int64_t)len > io->max) {
        io->too_large = true;
        return 0;
    }
    io->got += (int64_t)len;
    if (io->out) {
        if (fwrite(buf, 1, len, io->out) != len) {
            io->write_failed = true;
            return 0;
        }
    } else {
        if (io->mem_len + len + 1 > io->mem_cap) {
            size_t cap = io->mem_cap ? io->mem_cap : 65536;
            while (cap < io->mem_len + len + 1)
                cap *= 2;
            io->mem = nu_xrealloc(io->mem, cap);
            io->mem_cap = cap;
        }
        memcpy(io->mem + io->mem_len, buf, len);
        io->mem_len += len;
        io->mem[io->mem_len] = '\0';
    }
    return len;
}

/* The S3 error code of an XML error body ("NoSuchBucket"), or "" */
static void nu_s3_errcode(const char *body, char *out, size_t cap)
{
    const char *s = strstr(body, "<Code>"), *e;
    out[0] = '\0';
    if (!s)
        return;
    s += 6;
    e = strstr(s, "</Code>");
    if (e && (size_t)(e - s) < cap) {
        memcpy(out, s, (size_t)(e - s));
        out[e - s] = '\0';
    }
}

/* scheme://host[:port] of the endpoint into parts; false when malformed. */
static bool nu_s3_endpoint(const struct nu_blob_conf *c, char *scheme, char *host, size_t cap)
{
    char dflt[256];
    const char *ep = c->endpoint, *p;
    size_t n;

    if (!ep || !*ep) {
        snprintf(dflt, sizeof(dflt), "https://s3.%s.amazonaws.com",
                 c->region ? c->region : "us-east-1");
        ep = dflt;
    }
    p = strstr(ep, "://");
    if (!p || (size_t)(p - ep) >= 8)
        return false;
    memcpy(scheme, ep, (size_t)(p - ep));
    scheme[p - ep] = '\0';
    p += 3;
    n = strcspn(p, "/");
    if (n == 0 || n >= cap)
        return false;
    memcpy(host, p, n);
    host[n] = '\0';
    return true;
}

static nu_err_t nu_s3_request(nu_blob_t *b, const char *method, const char *bucket, const char *key,
                              const char *hash, const char *content_type, struct nu_s3_io *io,
                              FILE *upload, size_t upload_len, long *status, struct nu_errbuf *eb)
{
    const struct nu_blob_conf *c = b->conf;
    struct curl_slist *hdrs = NULL;
    struct nu_sigv4_header sh[4];
    char scheme[8], ephost[512], host[768], amz_date[17], sig[65], code[128];
    char *auth = NULL, *path = NULL, *url = NULL, *line = NULL, *enc = NULL;
    size_t nsh = 0;
    struct tm tm;
    time_t now = time(NULL);
    CURLcode cc;
    nu_err_t rc = NU_OK;

    if (!nu_s3_endpoint(c, scheme, ephost, sizeof(ephost)))
        return nu_err_set(eb, NU_ERR_CONFIG, "invalid S3 endpoint \"%s\"", c->endpoint);
    enc = nu_sigv4_encode(key ? key : "", true);
    if (c->path_style) {
        snprintf(host, sizeof(host), "%s", ephost);
        path = nu_xasprintf("/%s%s%s", bucket, key ? "/" : "", enc);
    } else {
        snprintf(host, sizeof(host), "%s.%s", bucket, ephost);
        path = nu_xasprintf("/%s", enc);
    }
    url = nu_xasprintf("%s://%s%s", scheme, host, path);
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    sh[nsh++] = (struct nu_sigv4_header){"host", host};
    sh[nsh++] = (struct nu_sigv4_header){"x-amz-content-sha256", hash};
    sh[nsh++] = (struct nu_sigv4_header){"x-amz-date", amz_date};
    if (c->session_token && *c->session_token)
        sh[nsh++] = (struct nu_sigv4_header){"x-amz-security-token", c->session_token};
    for (size_t i = 0; i < nsh; i++) {
        line = nu_xasprintf("%s: %s", sh[i].name, sh[i].value);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }
    line = NULL;
    if (c->access_key && *c->access_key && c->secret_key) {
        struct nu_sigv4_req r = {
            .method = method,
            .path = path,
            .query = "",
            .headers = sh,
            .nheaders = nsh,
            .payload_hash = hash,
            .amz_date = amz_date,
            .region = c->region ? c->region : "us-east-1",
            .service = "s3",
            .access_key = c->access_key,
            .secret_key = c->secret_key,
        };
        auth = nu_xmalloc(NU_SIGV4_AUTH_MAX + 32);
        memcpy(auth, "Authorization: ", 16);
        rc = nu_sigv4_sign(&r, sig, auth + 15, eb);
        if (rc != NU_OK)
            goto out;
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (content_type) {
        line = nu_xasprintf("Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");

    curl_easy_reset(b->curl);
    io->curl = b->curl;
    curl_easy_setopt(b->curl, CURLOPT_URL, url);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 10000L);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 300000L);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, nu_s3_write_cb);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, io);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(b->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(b->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload_len);
        if (upload) {
            curl_easy_setopt(b->curl, CURLOPT_READDATA, upload);
        } else {
            curl_easy_setopt(b->curl, CURLOPT_READFUNCTION, nu_s3_read_cb);
            curl_easy_setopt(b->curl, CURLOPT_READDATA, io);
        }
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(b->curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(b->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(b->curl);
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, status);
    if (io->too_large) {
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE, "object \"s3://%s/%s\" is larger than %lld bytes",
                        bucket, key ? key : "", (long long)io->max);
    } else if (io->write_failed) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not write the download of \"s3://%s/%s\"", bucket,
                        key ? key : "");
    } else if (cc != CURLE_OK) {
        rc = nu_err_set(eb, cc == CURLE_OPERATION_TIMEDOUT ? NU_ERR_TIMEOUT : NU_ERR_IO,
                        "could not %s \"s3://%s/%s\": %s", method, bucket, key ? key : "",
                        curl_easy_strerror(cc));
    } else if (*status >= 300 && !(*status == 404 && strcmp(method, "HEAD") == 0)) {
        nu_err_t code_err = *status == 404                       ? NU_ERR_NOT_FOUND
                            : (*status == 401 || *status == 403) ? NU_ERR_CONFIG
                            : (*status >= 500 || *status == 429) ? NU_ERR_IO
                                                                 : NU_ERR_OPERATOR;
        nu_s3_errcode(io->errbody, code, sizeof(code));
        rc = nu_err_set(eb, code_err, "could not %s \"s3://%s/%s\": HTTP %ld%s%s", method, bucket,
                        key ? key : "", *status, *code ? " " : "", code);
    }
out:
    curl_slist_free_all(hdrs);
    free(auth);
    free(path);
    free(url);
    free(line);
    free(enc);
    return rc;
}

nu_err_t nu_s3_put(nu_blob_t *b, const struct nu_blob_uri *u, const void *body, FILE *fp,
                   size_t len, const char *hash, const char *content_type, struct nu_errbuf *eb)
{
    struct nu_s3_io io = {.body = body, .body_len = len, .max = 0};
    long status = 0;
    return nu_s3_request(b, "PUT", u->bucket, u->path, hash, content_type, &io, fp, len, &status,
                         eb);
}

nu_err_t nu_s3_get(nu_blob_t *b, const struct nu_blob_uri *u, FILE *out, void **mem, size_t *memlen,
                   int64_t max, struct nu_errbuf *eb)
{
    struct nu_s3_io io = {.out = out, .max = max, .collect = true};
    long status = 0;
    nu_err_t rc = nu_s3_request(b, "GET", u->bucket, u->path, NU_S3_EMPTY_HASH, NULL, &io, NULL, 0,
                                &status, eb);
    if (rc == NU_OK && mem) {
        if (!io.mem)
            io.mem = nu_xcalloc(1, 1);
        *mem = io.mem;
        *memlen = io.mem_len;
        io.mem = NULL;
    }
    free(io.mem);
    return rc;
}

nu_err_t nu_s3_head(nu_blob_t *b, const struct nu_blob_uri *u, int64_t *size, struct nu_errbuf *eb)
{
    struct nu_s3_io io = {.max = 0};
    long status = 0;
    curl_off_t cl = -1;
    nu_err_t rc = nu_s3_request(b, "HEAD", u->bucket, u->path, NU_S3_EMPTY_HASH, NULL, &io, NULL, 0,
                                &status, eb);
    *size = -1;
    if (rc == NU_OK && status == 200) {
        curl_easy_getinfo(b->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        *size = cl;
    }
    return rc;
}

nu_err_t nu_s3_delete(nu_blob_t *b, const struct nu_blob_uri *u, struct nu_errbuf *eb)
{
    struct nu_s3_io io = {.max = 0};
    long status = 0;
    struct nu_errbuf e2;
    nu_err_t rc;

    nu_errbuf_clear(&e2);
    rc = nu_s3_request(b, "DELETE", u->bucket, u->path, NU_S3_EMPTY_HASH, NULL, &io, NULL, 0,
                       &status, &e2);
    if (rc == NU_ERR_NOT_FOUND)
        return NU_OK;
    return rc == NU_OK ? NU_OK : nu_err_set(eb, rc, "%s", e2.msg);
}

nu_err_t nu_s3_mkbucket(nu_blob_t *b, const char *bucket, struct nu_errbuf *eb)
{
    struct nu_s3_io io = {.max = 0};
    long status = 0;
    struct nu_errbuf e2;
    nu_err_t rc;

    nu_errbuf_clear(&e2);
    rc = nu_s3_request(b, "PUT", bucket, NULL, NU_S3_EMPTY_HASH, NULL, &io, NULL, 0, &status, &e2);
    if (rc == NU_OK || (status == 409 && strstr(io.errbody, "BucketAlreadyOwnedByYou")))
        return NU_OK;
    return nu_err_set(eb, rc, "%s", e2.msg);
}
