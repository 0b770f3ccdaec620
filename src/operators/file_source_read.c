/*
 * file_source_read.c — JSON Lines, Avro container and binary splits of `file_source`.
 *
 * jsonl: the records of a byte range are decoded by the split codec in groups of split_rows
 * lines (with the configured columns as schema, else the codec infers each group's schema). When
 * a group does not decode, each of its lines is tried alone: the lines that fail are rejected on
 * their own (raw text, "file …, line N: why") and the others decoded together.
 * avro: the whole file through the codec (at most NU_FSRC_MAX_AVRO_FILE bytes), cut into batches
 * of split_rows rows. binary: one row per file (path, size, sha256, content or null, uri).
 */
#include "operators/file_source_int.h"

#include "common/buf.h"
#include "common/codec.h"
#include "common/mem.h"
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One group of JSON lines. */
struct nu_jl_group {
    struct nu_buf text; /* lines, each followed by '\n' */
    size_t *start;      /* offset of each line in text */
    uint64_t *line;     /* relative line number of each */
    size_t n, cap;
    struct nu_buf retry; /* the good lines after a failed group */
};

static void nu_jl_group_free(struct nu_jl_group *g)
{
    nu_buf_free(&g->text);
    nu_buf_free(&g->retry);
    free(g->start);
    free(g->line);
}

static bool nu_jl_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

static void nu_jl_add(struct nu_jl_group *g, const char *p, size_t n, uint64_t line)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->start = nu_xrealloc(g->start, g->cap * sizeof(*g->start));
        g->line = nu_xrealloc(g->line, g->cap * sizeof(*g->line));
    }
    g->start[g->n] = g->text.len;
    g->line[g->n++] = line;
    nu_buf_append(&g->text, p, n);
    nu_buf_putc(&g->text, '\n');
}

/* Decode the group and emit it; lines that fail alone are rejected. */
static nu_err_t nu_jl_flush(struct nu_jl_group *g, const char *hint, struct nu_fsrc_reader *r,
                            const struct nu_fsrc_task *t, const struct nu_op_batch_ctx *ctx,
                            const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_batch *b = NULL;
    struct nu_errbuf local;
    nu_err_t rc = NU_OK;

    if (g->n == 0)
        return NU_OK;
    nu_errbuf_clear(&local);
    if (nu_codec_decode(NU_FORMAT_JSON, g->text.data, g->text.len, hint, &b, &local) != NU_OK) {
        nu_buf_reset(&g->retry);
        for (size_t i = 0; i < g->n && rc == NU_OK; i++) {
            const char *p = (const char *)g->text.data + g->start[i];
            size_t len = (i + 1 < g->n ? g->start[i + 1] : g->text.len) - g->start[i];
            struct nu_batch *one = NULL;
            nu_errbuf_clear(&local);
            if (nu_codec_decode(NU_FORMAT_JSON, p, len, hint, &one, &local) == NU_OK) {
                nu_buf_append(&g->retry, p, len);
            } else {
                char reason[NU_ERRBUF_SIZE];
                snprintf(reason, sizeof(reason), "file_source: file \"%s\", line %llu: %s", t->path,
                         (unsigned long long)nu_fsrc_reader_lineno(r, g->line[i]),
                         nu_err_msg(&local));
                rc = nu_op_reject_row(ctx, t->plan, t->plan_row, p, len - 1, NU_ERR_CORRUPT, reason,
                                      eb);
            }
            nu_batch_destroy(one);
        }
        if (rc == NU_OK && g->retry.len > 0) {
            nu_errbuf_clear(&local);
            if (nu_codec_decode(NU_FORMAT_JSON, g->retry.data, g->retry.len, hint, &b, &local) !=
                NU_OK)
                rc = nu_err_set(eb, local.code,
                                "file_source: file \"%s\": lines that decode alone do not "
                                "decode together (inconsistent types?): %s",
                                t->path, nu_err_msg(&local));
        }
    }
    g->n = 0;
    nu_buf_reset(&g->text);
    if (rc == NU_OK && b) {
        rc = nu_op_emit_batch(out, b, eb);
        b = NULL;
    }
    nu_batch_destroy(b);
    return rc;
}

/* The compact schema JSON of the configured columns, or NULL (owned). */
static char *nu_jl_hint(const struct nu_fsrc_conf *c)
{
    struct nu_buf sb = NU_BUF_INIT;
    char *hint = NULL;
    if (c->columns && nu_schema_to_json(c->columns, &sb, NULL) == NU_OK)
        hint = nu_xstrndup((const char *)sb.data, sb.len);
    nu_buf_free(&sb);
    return hint;
}

nu_err_t nu_fsrc_jsonl_process(const struct nu_fsrc_conf *c, const struct nu_fsrc_task *t,
                               const struct nu_op_batch_ctx *ctx, const struct nu_op_emit *out,
                               struct nu_errbuf *eb)
{
    struct nu_fsrc_reader r;
    struct nu_jl_group g = {0};
    char *hint = nu_jl_hint(c);
    nu_err_t rc = nu_fsrc_reader_open(&r, t->path, t->offset, t->length, -1, eb);

    while (rc == NU_OK) {
        const char *p;
        size_t len;
        uint64_t line;
        bool unterm, done;
        rc = nu_fsrc_reader_next(&r, &p, &len, &line, &unterm, &done, eb);
        if (rc != NU_OK || done)
            break;
        if (nu_jl_blank(p, len))
            continue;
        if (g.n > 0 && g.text.len + len + 1 > NU_CODEC_MAX_VALUE_BYTES)
            rc = nu_jl_flush(&g, hint, &r, t, ctx, out, eb);
        if (rc == NU_OK)
            nu_jl_add(&g, p, len, line);
        if (rc == NU_OK && (long long)g.n >= c->split_rows)
            rc = nu_jl_flush(&g, hint, &r, t, ctx, out, eb);
    }
    if (rc == NU_OK)
        rc = nu_jl_flush(&g, hint, &r, t, ctx, out, eb);
    nu_jl_group_free(&g);
    nu_fsrc_reader_close(&r);
    free(hint);
    return rc;
}

nu_err_t nu_fsrc_jsonl_infer(const struct nu_fsrc_conf *c, const char *file, struct nu_schema **out,
                             struct nu_errbuf *eb)
{
    struct nu_fsrc_reader r;
    struct nu_buf text = NU_BUF_INIT;
    struct nu_batch *b = NULL;
    long long n = 0;
    nu_err_t rc = nu_fsrc_reader_open(&r, file, 0, -1, -1, eb);

    *out = NULL;
    while (rc == NU_OK && n < c->infer_rows) {
        const char *p;
        size_t len;
        uint64_t line;
        bool unterm, done;
        struct nu_batch *one = NULL;
        rc = nu_fsrc_reader_next(&r, &p, &len, &line, &unterm, &done, eb);
        if (rc != NU_OK || done)
            break;
        if (nu_jl_blank(p, len) || text.len + len + 1 > NU_CODEC_MAX_VALUE_BYTES)
            continue;
        /* lines that are bad alone are left to process() to reject */
        if (nu_codec_decode(NU_FORMAT_JSON, p, len, NULL, &one, NULL) == NU_OK) {
            nu_buf_append(&text, p, len);
            nu_buf_putc(&text, '\n');
            n++;
        }
        nu_batch_destroy(one);
    }
    if (rc == NU_OK && n == 0)
        rc = nu_err_set(eb, NU_ERR_SCHEMA,
                        "cannot infer the columns of JSON Lines file \"%s\": it has no valid line",
                        file);
    if (rc == NU_OK)
        rc = nu_codec_decode(NU_FORMAT_JSON, text.data, text.len, NULL, &b, eb);
    if (rc == NU_OK)
        *out = nu_schema_ref(b->schema);
    nu_batch_destroy(b);
    nu_buf_free(&text);
    nu_fsrc_reader_close(&r);
    return rc;
}

/* Read all of `path` into *data (owned) when it has at most `limit` bytes. */
static nu_err_t nu_fsrc_slurp(const char *path, int64_t limit, unsigned char **data, size_t *len,
                              struct nu_errbuf *eb)
{
    struct stat st;
    size_t got = 0;
    nu_err_t rc = NU_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return nu_fsrc_errno(errno, "open", path, eb);
    if (fstat(fd, &st) != 0) {
        rc = nu_fsrc_errno(errno, "stat", path, eb);
        goto out;
    }
    if ((int64_t)st.st_size > limit) {
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE,
                        "file \"%s\" has %lld bytes, more than the limit of %lld bytes", path,
                        (long long)st.st_size, (long long)limit);
        goto out;
    }
    *data = nu_xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = nu_fsrc_errno(errno, "read", path, eb);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *len = got;
out:
    close(fd);
    if (rc != NU_OK) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

nu_err_t nu_fsrc_avro_read(const char *path, struct nu_batch **out, struct nu_errbuf *eb)
{
    unsigned char *data = NULL;
    size_t len = 0;
    nu_err_t rc = nu_fsrc_slurp(path, NU_FSRC_MAX_AVRO_FILE, &data, &len, eb);

    *out = NULL;
    if (rc == NU_OK) {
        rc = nu_codec_decode(NU_FORMAT_AVRO, data, len, NULL, out, eb);
        if (rc != NU_OK)
            nu_err_prefix(eb, "file_source: avro file \"%s\": ", path);
    }
    free(data);
    return rc;
}

nu_err_t nu_fsrc_avro_process(const struct nu_fsrc_conf *c, const struct nu_fsrc_task *t,
                              const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_batch *all = NULL;
    nu_err_t rc = nu_fsrc_avro_read(t->path, &all, eb);

    if (rc != NU_OK || all->nrows == 0)
        goto out;
    if ((long long)all->nrows <= c->split_rows) {
        rc = nu_op_emit_batch(out, all, eb);
        all = NULL;
        goto out;
    }
    for (size_t first = 0; first < all->nrows && rc == NU_OK; first += (size_t)c->split_rows) {
        size_t n =
            all->nrows - first < (size_t)c->split_rows ? all->nrows - first : (size_t)c->split_rows;
        struct nu_batch *b = nu_batch_new(all->schema, n);
        for (size_t i = 0; i < n; i++)
            nu_builtin_copy_row(b, all, first + i);
        rc = nu_op_emit_batch(out, b, eb);
    }
out:
    nu_batch_destroy(all);
    return rc;
}

struct nu_schema *nu_fsrc_binary_schema(void)
{
    struct nu_schema *s = nu_schema_new(5);
    nu_schema_set(s, 0, "path", NU_T_STRING, false, NULL);
    nu_schema_set(s, 1, "size", NU_T_INT64, false, NULL);
    nu_schema_set(s, 2, "sha256", NU_T_STRING, false, NULL);
    nu_schema_set(s, 3, "content", NU_T_BYTES, true, NULL);
    nu_schema_set(s, 4, "uri", NU_T_STRING, false, NULL);
    return s;
}

nu_err_t nu_fsrc_binary_process(const struct nu_fsrc_conf *c, struct nu_schema *schema,
                                const struct nu_fsrc_task *t, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_batch *b = NULL;
    struct nu_value *row;
    struct nu_sha256 h;
    struct stat st;
    unsigned char digest[NU_SHA256_LEN], *content = NULL, chunk[64 << 10];
    char hex[NU_SHA256_HEX_LEN + 1], *abs = NULL, *uri = NULL;
    int64_t total = 0;
    nu_err_t rc = NU_OK;
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return nu_fsrc_errno(errno, "open", t->path, eb);
    if (fstat(fd, &st) != 0) {
        rc = nu_fsrc_errno(errno, "stat", t->path, eb);
        goto out;
    }
    b = nu_batch_new(schema, 1);
    if ((long long)st.st_size <= c->inline_max)
        content = nu_batch_alloc(b, (size_t)st.st_size + 1);
    nu_sha256_init(&h);
    for (;;) {
        unsigned char *dst = content ? content + total : chunk;
        size_t room = content ? (size_t)(st.st_size - total) : sizeof(chunk);
        ssize_t n;
        if (room == 0)
            break;
        n = read(fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = nu_fsrc_errno(errno, "read", t->path, eb);
            goto out;
        }
        if (n == 0)
            break;
        nu_sha256_update(&h, dst, (size_t)n);
        total += n;
    }
    if (total != (int64_t)st.st_size) {
        rc = nu_err_set(eb, NU_ERR_STATE, "file_source: file \"%s\" changed while it was read",
                        t->path);
        goto out;
    }
    nu_sha256_final(&h, digest);
    nu_sha256_hex(digest, NU_SHA256_LEN, hex);
    abs = realpath(t->path, NULL);
    if (!abs) {
        rc = nu_fsrc_errno(errno, "resolve", t->path, eb);
        goto out;
    }
    uri = nu_xasprintf("file://%s", abs);
    row = nu_batch_add_row(b);
    row[0] = nu_batch_str(b, NU_T_STRING, t->path, strlen(t->path));
    row[1] = nu_value_int(total);
    row[2] = nu_batch_str(b, NU_T_STRING, hex, NU_SHA256_HEX_LEN);
    row[3] =
        content ? nu_value_view(NU_T_BYTES, (const char *)content, (size_t)total) : nu_value_null();
    row[4] = nu_batch_str(b, NU_T_STRING, uri, strlen(uri));
    rc = nu_op_emit_batch(out, b, eb);
    b = NULL;
out:
    close(fd);
    nu_batch_destroy(b);
    free(abs);
    free(uri);
    return rc;
}
