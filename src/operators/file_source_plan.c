/*
 * file_source_plan.c — file listing, plan splits and the byte-range record reader of
 * `file_source`.
 *
 * A byte range [offset, offset + length) owns the records that START inside it: a reader of a
 * range that does not begin at 0 looks at the byte before `offset` and, unless it is a newline,
 * skips the partial record up to and including the next newline (the previous range reads that
 * record to its end, past its own limit). So every record belongs to exactly one range whatever
 * the split size.
 */
#include "operators/file_source_int.h"

#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NU_FSRC_READ_CHUNK (256u << 10)

nu_err_t nu_fsrc_errno(int err, const char *what, const char *path, struct nu_errbuf *eb)
{
    nu_err_t code = NU_ERR_IO;
    if (err == ENOENT || err == ENOTDIR)
        code = NU_ERR_NOT_FOUND;
    else if (err == EACCES || err == EPERM || err == EISDIR || err == ELOOP)
        code = NU_ERR_OPERATOR;
    return nu_err_set(eb, code, "could not %s file \"%s\": %s", what, path, strerror(err));
}

static int nu_fsrc_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void nu_fsrc_list_free(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

nu_err_t nu_fsrc_list(const struct nu_fsrc_conf *c, char ***files, size_t *n, struct nu_errbuf *eb)
{
    char **list = NULL;
    size_t len = 0, cap = 0;
    nu_err_t rc = NU_OK;

    *files = NULL;
    *n = 0;
    for (size_t i = 0; i < c->npaths && rc == NU_OK; i++) {
        glob_t g;
        int gr;
        memset(&g, 0, sizeof(g));
        gr = glob(c->paths[i], 0, NULL, &g);
        if (gr == GLOB_NOSPACE || gr == GLOB_ABORTED)
            rc = nu_err_set(eb, NU_ERR_CONFIG, "could not expand path pattern \"%s\"%s",
                            c->paths[i], gr == GLOB_ABORTED ? ": a directory cannot be read" : "");
        for (size_t k = 0; gr == 0 && rc == NU_OK && k < g.gl_pathc; k++) {
            struct stat st;
            /* directories are not inputs; anything else (even unreadable) is planned */
            if (stat(g.gl_pathv[k], &st) == 0 && S_ISDIR(st.st_mode))
                continue;
            if ((long long)len >= c->max_files) {
                rc = nu_err_set(eb, NU_ERR_TOO_LARGE,
                                "the paths match more than max_files (%lld) files", c->max_files);
                break;
            }
            if (len == cap) {
                cap = cap ? cap * 2 : 16;
                list = nu_xrealloc(list, cap * sizeof(*list));
            }
            list[len++] = nu_xstrdup(g.gl_pathv[k]);
        }
        globfree(&g);
    }
    if (rc == NU_OK && len == 0)
        rc = nu_err_set(eb, NU_ERR_CONFIG, "no file matches the paths (first: \"%s\")",
                        c->npaths ? c->paths[0] : "");
    if (rc != NU_OK) {
        nu_fsrc_list_free(list, len);
        return rc;
    }
    qsort(list, len, sizeof(*list), nu_fsrc_cmp);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (w > 0 && strcmp(list[w - 1], list[i]) == 0)
            free(list[i]);
        else
            list[w++] = list[i];
    }
    *files = list;
    *n = w;
    return NU_OK;
}

struct nu_schema *nu_fsrc_plan_schema(void)
{
    struct nu_schema *s = nu_schema_new(5);
    nu_schema_set(s, 0, "path", NU_T_STRING, false, NULL);
    nu_schema_set(s, 1, "offset", NU_T_INT64, false, NULL);
    nu_schema_set(s, 2, "length", NU_T_INT64, false, NULL);
    nu_schema_set(s, 3, "size", NU_T_INT64, false, NULL);
    nu_schema_set(s, 4, "mtime_ns", NU_T_INT64, false, NULL);
    return s;
}

static nu_err_t nu_fsrc_emit_range(struct nu_schema *ps, const char *path, int64_t off, int64_t len,
                                   int64_t size, int64_t mtime, const struct nu_op_emit *out,
                                   struct nu_errbuf *eb)
{
    struct nu_batch *b = nu_batch_new(ps, 1);
    struct nu_value *row = nu_batch_add_row(b);
    row[0] = nu_batch_str(b, NU_T_STRING, path, strlen(path));
    row[1] = nu_value_int(off);
    row[2] = nu_value_int(len);
    row[3] = nu_value_int(size);
    row[4] = nu_value_int(mtime);
    return nu_op_emit_batch(out, b, eb);
}

nu_err_t nu_fsrc_plan(const struct nu_fsrc_conf *c, struct nu_schema *ps,
                      const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    char **files = NULL;
    size_t n = 0;
    bool ranges =
        c->format == NU_FSRC_JSONL || (c->format == NU_FSRC_CSV && !c->newlines_in_quotes);
    nu_err_t rc = nu_fsrc_list(c, &files, &n, eb);

    for (size_t i = 0; i < n && rc == NU_OK; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0) {
            /* planned anyway: reading it fails with the reason and dead-letters the split */
            rc = nu_fsrc_emit_range(ps, files[i], 0, -1, -1, 0, out, eb);
            continue;
        }
        int64_t size = (int64_t)st.st_size;
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (!ranges || size <= c->split_bytes) {
            rc = nu_fsrc_emit_range(ps, files[i], 0, size, size, mtime, out, eb);
            continue;
        }
        for (int64_t off = 0; off < size && rc == NU_OK; off += c->split_bytes) {
            int64_t len = size - off < c->split_bytes ? size - off : c->split_bytes;
            rc = nu_fsrc_emit_range(ps, files[i], off, len, size, mtime, out, eb);
        }
    }
    nu_fsrc_list_free(files, n);
    return rc;
}

/* --- the reader --- */

/* Read more bytes after buf[end]; compacts first. Sets eof at the end of the file. */
static nu_err_t nu_fsrc_fill(struct nu_fsrc_reader *r, struct nu_errbuf *eb)
{
    if (r->beg > 0) {
        memmove(r->buf, r->buf + r->beg, r->end - r->beg);
        r->end -= r->beg;
        r->beg = 0;
    }
    if (r->cap - r->end < NU_FSRC_READ_CHUNK) {
        size_t want = r->end + NU_FSRC_READ_CHUNK;
        if (want > (size_t)NU_FSRC_MAX_RECORD + NU_FSRC_READ_CHUNK * 2)
            return nu_err_set(eb, NU_ERR_TOO_LARGE,
                              "file \"%s\" has a record longer than %u bytes at byte offset %lld",
                              r->path, NU_FSRC_MAX_RECORD, (long long)r->pos);
        r->buf = nu_xrealloc(r->buf, want);
        r->cap = want;
    }
    for (;;) {
        ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return nu_fsrc_errno(errno, "read", r->path, eb);
        if (got == 0)
            r->eof = true;
        r->end += (size_t)got;
        return NU_OK;
    }
}

nu_err_t nu_fsrc_reader_open(struct nu_fsrc_reader *r, const char *path, int64_t offset,
                             int64_t length, int quote, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    int64_t start = offset > 0 ? offset - 1 : 0;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    r->path = path;
    r->quote = quote;
    r->stop = length < 0 ? INT64_MAX : offset + length;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return nu_fsrc_errno(errno, "open", path, eb);
    if (start > 0 && lseek(r->fd, (off_t)start, SEEK_SET) < 0)
        return nu_fsrc_errno(errno, "seek in", path, eb);
    r->pos = start;
    if (offset > 0) {
        /* skip the tail of the record that began before the range */
        for (;;) {
            if (r->beg == r->end) {
                if (r->eof)
                    break;
                r->pos += (int64_t)(r->end - r->beg);
                r->beg = r->end = 0;
                rc = nu_fsrc_fill(r, eb);
                if (rc != NU_OK)
                    return rc;
                continue;
            }
            unsigned char *nl = memchr(r->buf + r->beg, '\n', r->end - r->beg);
            if (nl) {
                size_t skip = (size_t)(nl - (r->buf + r->beg)) + 1;
                r->beg += skip;
                r->pos += (int64_t)skip;
                break;
            }
            r->pos += (int64_t)(r->end - r->beg);
            r->beg = r->end;
        }
    }
    r->first = r->pos;
    return NU_OK;
}

nu_err_t nu_fsrc_reader_next(struct nu_fsrc_reader *r, const char **rec, size_t *len,
                             uint64_t *line, bool *unterminated, bool *done, struct nu_errbuf *eb)
{
    size_t scan = 0; /* bytes of the current record already scanned */
    bool inq = false;
    nu_err_t rc;

    *done = false;
    *unterminated = false;
    if (r->pos >= r->stop) {
        *done = true;
        return NU_OK;
    }
    *line = r->lines;
    for (;;) {
        unsigned char *p = r->buf + r->beg, *e = r->buf + r->end;
        size_t i = scan, avail = (size_t)(e - p);
        size_t nl = (size_t)-1;
        if (r->quote < 0) {
            unsigned char *hit = i < avail ? memchr(p + i, '\n', avail - i) : NULL;
            if (hit)
                nl = (size_t)(hit - p);
            i = avail;
        } else {
            for (; i < avail; i++) {
                if (p[i] == (unsigned char)r->quote)
                    inq = !inq;
                else if (p[i] == '\n' && !inq) {
                    nl = i;
                    break;
                }
            }
        }
        if (nl != (size_t)-1 || r->eof) {
            size_t reclen = nl != (size_t)-1 ? nl : avail;
            size_t consumed = nl != (size_t)-1 ? nl + 1 : avail;
            if (nl == (size_t)-1 && avail == 0) {
                *done = true;
                return NU_OK;
            }
            for (size_t k = 0; k < reclen; k++)
                r->lines += p[k] == '\n';
            r->lines += nl != (size_t)-1;
            *unterminated = inq && nl == (size_t)-1;
            if (nl == (size_t)-1 && reclen > 0 && p[reclen - 1] == '\n')
                reclen--; /* an unterminated quote ran to the end of the file */
            if (reclen > 0 && p[reclen - 1] == '\r')
                reclen--;
            if (reclen > NU_FSRC_MAX_RECORD)
                return nu_err_set(eb, NU_ERR_TOO_LARGE,
                                  "file \"%s\" has a record longer than %u bytes at byte offset "
                                  "%lld",
                                  r->path, NU_FSRC_MAX_RECORD, (long long)r->pos);
            *rec = (const char *)p;
            *len = reclen;
            r->beg += consumed;
            r->pos += (int64_t)consumed;
            return NU_OK;
        }
        scan = i;
        rc = nu_fsrc_fill(r, eb);
        if (rc != NU_OK)
            return rc;
    }
}

void nu_fsrc_reader_close(struct nu_fsrc_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
}

uint64_t nu_fsrc_reader_lineno(struct nu_fsrc_reader *r, uint64_t rel)
{
    uint64_t base = 0;
    if (r->base_known)
        return r->base + rel + 1;
    if (r->first > 0) {
        unsigned char chunk[64 << 10];
        int fd = open(r->path, O_RDONLY | O_CLOEXEC);
        int64_t left = r->first, off = 0;
        while (fd >= 0 && left > 0) {
            size_t want = left < (int64_t)sizeof(chunk) ? (size_t)left : sizeof(chunk);
            ssize_t got = pread(fd, chunk, want, (off_t)off);
            if (got <= 0)
                break;
            for (ssize_t k = 0; k < got; k++)
                base += chunk[k] == '\n';
            left -= got;
            off += got;
        }
        if (fd >= 0)
            close(fd);
    }
    r->base = base;
    r->base_known = true;
    return base + rel + 1;
}
