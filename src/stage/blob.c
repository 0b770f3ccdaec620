/*
 * blob.c — the blob store: URI parsing, the file:// backend and dispatch to the s3:// backend
 * (blob_s3.c). See blob.h for the guarantees.
 */
#include "stage/blob_int.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t nu_blob_once = PTHREAD_ONCE_INIT;
static void nu_blob_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* "." or ".." segments, control characters. */
static bool nu_blob_path_ok(const char *p)
{
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n;
        if (*s == '/')
            s++;
    }
    return true;
}

nu_err_t nu_blob_uri_parse(const char *uri, struct nu_blob_uri *out, struct nu_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (strlen(uri) > NU_BLOB_MAX_URI)
        return nu_err_set(eb, NU_ERR_INVALID, "blob URI longer than %d bytes", NU_BLOB_MAX_URI);
    if (strncmp(uri, "file://", 7) == 0) {
        const char *p = uri + 7;
        if (*p != '/')
            return nu_err_set(eb, NU_ERR_INVALID,
                              "invalid blob URI \"%s\": expected file:///absolute/path", uri);
        if (p[1] == '\0' || p[strlen(p) - 1] == '/' || !nu_blob_path_ok(p))
            return nu_err_set(eb, NU_ERR_INVALID, "invalid blob URI \"%s\": bad path", uri);
        out->scheme = NU_BLOB_FILE;
        out->path = nu_xstrdup(p);
        return NU_OK;
    }
    if (strncmp(uri, "s3://", 5) == 0) {
        const char *p = uri + 5, *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        bool ok =
            n >= 3 && n <= 63 && p[0] != '.' && p[0] != '-' && p[n - 1] != '.' && p[n - 1] != '-';
        for (size_t i = 0; ok && i < n; i++)
            ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' ||
                 p[i] == '.';
        if (!ok)
            return nu_err_set(eb, NU_ERR_INVALID, "invalid blob URI \"%s\": bad bucket name", uri);
        if (slash && !nu_blob_path_ok(slash + 1))
            return nu_err_set(eb, NU_ERR_INVALID, "invalid blob URI \"%s\": bad key", uri);
        out->scheme = NU_BLOB_S3;
        out->bucket = nu_xstrndup(p, n);
        out->path = nu_xstrdup(slash ? slash + 1 : "");
        return NU_OK;
    }
    return nu_err_set(eb, NU_ERR_INVALID,
                      "unsupported blob URI \"%.64s\": expected file:// or s3://", uri);
}

void nu_blob_uri_free(struct nu_blob_uri *u)
{
    if (!u)
        return;
    free(u->bucket);
    free(u->path);
    u->bucket = u->path = NULL;
}

char *nu_blob_cas_uri(const char *prefix, const char *hex, const char *ext)
{
    size_t n = strlen(prefix);
    bool slash = n > 0 && prefix[n - 1] == '/';
    return nu_xasprintf("%s%s%s%s%s", prefix, slash ? "" : "/", hex, ext && *ext ? "." : "",
                        ext && *ext ? ext : "");
}

void nu_blob_conf_env(struct nu_blob_conf *c)
{
    const char *ps = getenv("NU_S3_PATH_STYLE");
    memset(c, 0, sizeof(*c));
    c->endpoint = getenv("NU_S3_ENDPOINT");
    c->region = getenv("NU_S3_REGION");
    if (!c->region || !*c->region)
        c->region = getenv("AWS_REGION");
    if (!c->region || !*c->region)
        c->region = "us-east-1";
    c->path_style = ps && *ps ? strcmp(ps, "0") != 0 : (c->endpoint && *c->endpoint);
    c->access_key = getenv("AWS_ACCESS_KEY_ID");
    c->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    c->session_token = getenv("AWS_SESSION_TOKEN");
}

nu_err_t nu_blob_new(const struct nu_blob_conf *conf, nu_blob_t **out, struct nu_errbuf *eb)
{
    nu_blob_t *b;

    *out = NULL;
    pthread_once(&nu_blob_once, nu_blob_global_init);
    b = nu_xcalloc(1, sizeof(*b));
    b->conf = conf;
    b->curl = curl_easy_init();
    if (!b->curl) {
        free(b);
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not create a libcurl handle");
    }
    *out = b;
    return NU_OK;
}

void nu_blob_destroy(nu_blob_t *b)
{
    if (!b)
        return;
    curl_easy_cleanup(b->curl);
    free(b);
}

static nu_err_t nu_blob_errno(int err, const char *what, const char *path, struct nu_errbuf *eb)
{
    nu_err_t code = err == ENOENT                     ? NU_ERR_NOT_FOUND
                    : (err == EACCES || err == EPERM) ? NU_ERR_OPERATOR
                    : err == ENOSPC                   ? NU_ERR_IO
                                                      : NU_ERR_IO;
    return nu_err_set(eb, code, "could not %s file \"%s\": %s", what, path, strerror(err));
}

/* mkdir -p of the parent folder of `path`. */
static nu_err_t nu_blob_mkdirs(const char *path, struct nu_errbuf *eb)
{
    char *d = nu_xstrdup(path);
    nu_err_t rc = NU_OK;
    char *slash = strrchr(d, '/');

    if (slash && slash != d) {
        *slash = '\0';
        for (char *p = d + 1; rc == NU_OK; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                if (mkdir(d, 0777) != 0 && errno != EEXIST)
                    rc = nu_blob_errno(errno, "create folder for", d, eb);
                *p = c;
                if (c == '\0')
                    break;
            }
        }
    }
    free(d);
    return rc;
}

static int64_t nu_blob_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* Write to a .part file next to `path` and rename it into place. Exactly one of data/src. */
static nu_err_t nu_blob_file_put(const char *path, const void *data, size_t len, int src,
                                 struct nu_errbuf *eb)
{
    char *tmp = NULL, *base, *dir = nu_xstrdup(path);
    unsigned char chunk[64 << 10];
    nu_err_t rc = NU_OK;
    int fd = -1;

    rc = nu_blob_mkdirs(path, eb);
    if (rc != NU_OK)
        goto out;
    base = strrchr(dir, '/');
    *base++ = '\0';
    tmp = nu_xasprintf("%s/.%s.%ld.part", dir, base, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = nu_blob_errno(errno, "create", tmp, eb);
        goto out;
    }
    for (size_t off = 0;;) {
        const unsigned char *p;
        size_t n;
        if (data) {
            if (off == len)
                break;
            p = (const unsigned char *)data + off;
            n = len - off;
        } else {
            ssize_t r = read(src, chunk, sizeof(chunk));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = nu_blob_errno(errno, "read", "(source)", eb);
                goto out;
            }
            if (r == 0)
                break;
            p = chunk;
            n = (size_t)r;
        }
        while (n > 0) {
            ssize_t w = write(fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = nu_blob_errno(errno, "write", tmp, eb);
                goto out;
            }
            p += w;
            n -= (size_t)w;
            off += (size_t)w;
        }
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = nu_blob_errno(errno, "write", tmp, eb);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = nu_blob_errno(errno, "rename into place", path, eb);
        goto out;
    }
    free(tmp);
    tmp = NULL;
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

nu_err_t nu_blob_put_mem(nu_blob_t *b, const char *uri, const void *data, size_t len,
                         const char *content_type, struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    unsigned char d[NU_SHA256_LEN];
    char hex[NU_SHA256_HEX_LEN + 1];
    int64_t have = -1;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_FILE) {
        if (nu_blob_file_size(u.path) != (int64_t)len)
            rc = nu_blob_file_put(u.path, data ? data : "", len, -1, eb);
    } else {
        rc = nu_s3_head(b, &u, &have, eb);
        if (rc == NU_OK && have != (int64_t)len) {
            nu_sha256(data, len, d);
            nu_sha256_hex(d, NU_SHA256_LEN, hex);
            rc = nu_s3_put(b, &u, data ? data : "", NULL, len, hex, content_type, eb);
        }
    }
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_put_file(nu_blob_t *b, const char *uri, const char *path, const char *content_type,
                          struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    struct nu_sha256 h;
    unsigned char d[NU_SHA256_LEN], chunk[64 << 10];
    char hex[NU_SHA256_HEX_LEN + 1];
    int64_t have = -1, size;
    FILE *fp = NULL;
    int fd = -1;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    if (rc != NU_OK)
        return rc;
    size = nu_blob_file_size(path);
    if (size < 0) {
        rc = nu_blob_errno(errno ? errno : ENOENT, "stat", path, eb);
        goto out;
    }
    if (u.scheme == NU_BLOB_FILE) {
        if (nu_blob_file_size(u.path) == size)
            goto out;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = nu_blob_errno(errno, "open", path, eb);
            goto out;
        }
        rc = nu_blob_file_put(u.path, NULL, 0, fd, eb);
        goto out;
    }
    rc = nu_s3_head(b, &u, &have, eb);
    if (rc != NU_OK || have == size)
        goto out;
    fp = fopen(path, "rb");
    if (!fp) {
        rc = nu_blob_errno(errno, "open", path, eb);
        goto out;
    }
    nu_sha256_init(&h);
    for (size_t n; (n = fread(chunk, 1, sizeof(chunk), fp)) > 0;)
        nu_sha256_update(&h, chunk, n);
    if (ferror(fp)) {
        rc = nu_blob_errno(errno, "read", path, eb);
        goto out;
    }
    nu_sha256_final(&h, d);
    nu_sha256_hex(d, NU_SHA256_LEN, hex);
    rewind(fp);
    rc = nu_s3_put(b, &u, NULL, fp, (size_t)size, hex, content_type, eb);
out:
    if (fd >= 0)
        close(fd);
    if (fp)
        fclose(fp);
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_get_mem(nu_blob_t *b, const char *uri, int64_t max, void **data, size_t *len,
                         struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    unsigned char *buf = NULL;
    int64_t size;
    int fd = -1;
    nu_err_t rc;

    *data = NULL;
    *len = 0;
    if (max < 0 || max > NU_BLOB_MAX_MEM)
        max = NU_BLOB_MAX_MEM;
    rc = nu_blob_uri_parse(uri, &u, eb);
    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_S3) {
        rc = nu_s3_get(b, &u, NULL, data, len, max, eb);
        goto out;
    }
    fd = open(u.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = nu_blob_errno(errno, "open", u.path, eb);
        goto out;
    }
    size = nu_blob_file_size(u.path);
    if (size > max) {
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE, "object \"%s\" is larger than %lld bytes", uri,
                        (long long)max);
        goto out;
    }
    buf = nu_xmalloc((size_t)size + 1);
    for (size_t off = 0; off < (size_t)size;) {
        ssize_t r = read(fd, buf + off, (size_t)size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? nu_blob_errno(errno, "read", u.path, eb)
                       : nu_err_set(eb, NU_ERR_IO, "file \"%s\" shrank while read", u.path);
            goto out;
        }
        off += (size_t)r;
    }
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_get_file(nu_blob_t *b, const char *uri, const char *path, int64_t max,
                          struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    FILE *fp = NULL;
    void *data = NULL;
    size_t len = 0;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_FILE) {
        rc = nu_blob_get_mem(b, uri, max, &data, &len, eb);
        if (rc == NU_OK)
            rc = nu_blob_file_put(path, data, len, -1, eb);
        goto out;
    }
    fp = fopen(path, "wb");
    if (!fp) {
        rc = nu_blob_errno(errno, "create", path, eb);
        goto out;
    }
    rc = nu_s3_get(b, &u, fp, NULL, NULL, max < 0 ? INT64_MAX : max, eb);
    if (fclose(fp) != 0 && rc == NU_OK)
        rc = nu_blob_errno(errno, "write", path, eb);
    fp = NULL;
    if (rc != NU_OK)
        unlink(path);
out:
    free(data);
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_stat(nu_blob_t *b, const char *uri, int64_t *size, struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    *size = -1;
    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_FILE)
        *size = nu_blob_file_size(u.path);
    else
        rc = nu_s3_head(b, &u, size, eb);
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_delete(nu_blob_t *b, const char *uri, struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_FILE) {
        if (unlink(u.path) != 0 && errno != ENOENT)
            rc = nu_blob_errno(errno, "remove", u.path, eb);
    } else {
        rc = nu_s3_delete(b, &u, eb);
    }
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_local(nu_blob_t *b, const char *uri, const char *tmpdir, int64_t max, char **path,
                       bool *temp, struct nu_errbuf *eb)
{
    struct nu_blob_uri u;
    char *tmp = NULL;
    int fd;
    nu_err_t rc = nu_blob_uri_parse(uri, &u, eb);

    *path = NULL;
    *temp = false;
    if (rc != NU_OK)
        return rc;
    if (u.scheme == NU_BLOB_FILE) {
        *path = u.path;
        u.path = NULL;
        goto out;
    }
    tmp = nu_xasprintf("%s/nu-blob-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = nu_blob_errno(errno, "create", tmp, eb);
        goto out;
    }
    close(fd);
    rc = nu_blob_get_file(b, uri, tmp, max, eb);
    if (rc != NU_OK) {
        unlink(tmp);
        goto out;
    }
    *path = tmp;
    *temp = true;
    tmp = NULL;
out:
    free(tmp);
    nu_blob_uri_free(&u);
    return rc;
}

nu_err_t nu_blob_s3_mkbucket(nu_blob_t *b, const char *name, struct nu_errbuf *eb)
{
    return nu_s3_mkbucket(b, name, eb);
}

nu_err_t nu_blob_sweep(const char *dir, long min_age_s, size_t *removed, struct nu_errbuf *eb)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);

    *removed = 0;
    if (!d)
        return nu_blob_errno(errno, "open folder", dir, eb);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        struct stat st;
        char *p;
        if (de->d_name[0] != '.' || n < 6 || strcmp(de->d_name + n - 5, ".part") != 0)
            continue;
        p = nu_xasprintf("%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime >= min_age_s &&
            unlink(p) == 0)
            (*removed)++;
        free(p);
    }
    closedir(d);
    return NU_OK;
}
