/*
 * file_sink_enc.c — what `file_sink` writes: the split codec's JSON Lines or Avro, CSV text
 * (a header line of column names, RFC 4180 quoting: a field holding the delimiter, a quote, CR or
 * LF, or an empty string, is quoted with inner quotes doubled; null is an empty field; bytes are
 * base64; doubles have 17 significant digits), and gzip members through zlib's deflate.
 */
#include "operators/file_sink_int.h"

#include "common/codec.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

char *nu_fsink_name(const char *split)
{
    size_t len = split ? strlen(split) : 0;
    char *name, *w;

    if (len == 0 || len > NU_FILE_SINK_MAX_SPLIT_ID)
        return NULL;
    name = w = nu_xmalloc(len * 3 + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)split[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || (c == '.' && i > 0);
        if (plain)
            *w++ = (char)c;
        else
            w += sprintf(w, "%%%02X", c);
    }
    *w = '\0';
    return name;
}

nu_err_t nu_fsink_write_all(int fd, const unsigned char *p, size_t n, const char *path,
                            struct nu_errbuf *eb)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return nu_err_set(eb, NU_ERR_IO, "could not write file \"%s\": %s", path,
                              strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return NU_OK;
}

nu_err_t nu_fsink_sync_dir(const char *dir, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc =
            nu_err_set(eb, NU_ERR_IO, "could not fsync directory \"%s\": %s", dir, strerror(errno));
    if (dfd >= 0)
        close(dfd);
    return rc;
}

nu_err_t nu_fsink_check_schema(nu_fsink_format_t f, const struct nu_schema *s, struct nu_errbuf *eb)
{
    nu_err_t rc = nu_codec_check_schema(s, eb);
    for (size_t i = 0; rc == NU_OK && f == NU_FSINK_CSV && i < s->ncols; i++)
        if (s->cols[i].type == NU_T_ARRAY || s->cols[i].type == NU_T_MAP)
            rc = nu_err_set(eb, NU_ERR_SCHEMA,
                            "column \"%s\" of type %s cannot be written as CSV (use jsonl or avro)",
                            s->cols[i].name, nu_type_name(s->cols[i].type));
    return rc;
}

static void nu_csv_put_field(struct nu_buf *out, const char *s, size_t n)
{
    bool quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        nu_buf_append(out, s, n);
        return;
    }
    nu_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            nu_buf_putc(out, '"');
        nu_buf_putc(out, (unsigned char)s[i]);
    }
    nu_buf_putc(out, '"');
}

static void nu_csv_put_base64(struct nu_buf *out, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        nu_buf_putc(out, (unsigned char)tab[(v >> 18) & 63]);
        nu_buf_putc(out, (unsigned char)tab[(v >> 12) & 63]);
        nu_buf_putc(out, i + 1 < n ? (unsigned char)tab[(v >> 6) & 63] : '=');
        nu_buf_putc(out, i + 2 < n ? (unsigned char)tab[v & 63] : '=');
    }
}

static nu_err_t nu_csv_encode(const struct nu_batch *in, bool header, struct nu_buf *out,
                              struct nu_errbuf *eb)
{
    const struct nu_schema *s = in->schema;
    char num[40];
    nu_buf_reset(out);
    for (size_t c = 0; header && c < s->ncols; c++) {
        if (c)
            nu_buf_putc(out, ',');
        nu_csv_put_field(out, s->cols[c].name, strlen(s->cols[c].name));
    }
    if (header)
        nu_buf_putc(out, '\n');
    for (size_t r = 0; r < in->nrows; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        for (size_t c = 0; c < s->ncols; c++) {
            const struct nu_value *v = &row[c];
            int n = 0;
            if (c)
                nu_buf_putc(out, ',');
            if (v->type != NU_T_NULL && v->type != s->cols[c].type)
                return nu_err_set(
                    eb, NU_ERR_SCHEMA, "row %zu, column \"%s\": a %s value in a %s column", r,
                    s->cols[c].name, nu_type_name(v->type), nu_type_name(s->cols[c].type));
            if (v->type == NU_T_NULL && !s->cols[c].nullable)
                return nu_err_set(eb, NU_ERR_SCHEMA,
                                  "row %zu, column \"%s\": null in a non-nullable column", r,
                                  s->cols[c].name);
            switch (v->type) {
            case NU_T_BOOL:
                n = snprintf(num, sizeof(num), "%s", v->u.b ? "true" : "false");
                break;
            case NU_T_INT64:
                n = snprintf(num, sizeof(num), "%" PRId64, v->u.i);
                break;
            case NU_T_DOUBLE:
                if (isnan(v->u.d))
                    n = snprintf(num, sizeof(num), "NaN");
                else if (isinf(v->u.d))
                    n = snprintf(num, sizeof(num), "%sInfinity", v->u.d < 0 ? "-" : "");
                else
                    n = snprintf(num, sizeof(num), "%.17g", v->u.d);
                break;
            case NU_T_STRING:
                nu_csv_put_field(out, v->u.s.ptr, v->u.s.len);
                break;
            case NU_T_BYTES:
                nu_csv_put_base64(out, (const unsigned char *)v->u.s.ptr, v->u.s.len);
                break;
            case NU_T_NULL:
                break;
            default:
                return nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\": CSV cannot hold type %s",
                                  s->cols[c].name, nu_type_name(v->type));
            }
            if (n > 0)
                nu_buf_append(out, num, (size_t)n);
        }
        nu_buf_putc(out, '\n');
    }
    return NU_OK;
}

/* Compress src into dst as one gzip member. */
static nu_err_t nu_gzip(const struct nu_buf *src, struct nu_buf *dst, struct nu_errbuf *eb)
{
    z_stream z;
    int zr;
    memset(&z, 0, sizeof(z));
    nu_buf_reset(dst);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return nu_err_set(eb, NU_ERR_INTERNAL, "could not start a gzip stream");
    size_t bound = deflateBound(&z, (uLong)src->len) + 32;
    nu_buf_reserve(dst, bound);
    z.next_in = src->data;
    z.avail_in = (uInt)src->len;
    z.next_out = dst->data;
    z.avail_out = (uInt)bound;
    zr = deflate(&z, Z_FINISH);
    dst->len = bound - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END)
        return nu_err_set(eb, NU_ERR_INTERNAL, "gzip compression failed (zlib %d)", zr);
    return NU_OK;
}

nu_err_t nu_fsink_encode(struct nu_file_sink *fs, const struct nu_batch *in, bool header,
                         const struct nu_buf **out, struct nu_errbuf *eb)
{
    struct nu_codec_opts co = {.format = NU_FORMAT_JSON};
    nu_err_t rc;

    *out = &fs->buf;
    if (in->schema->ncols > 0 && (size_t)UINT32_MAX / 2 < in->nrows)
        return nu_err_set(eb, NU_ERR_TOO_LARGE, "batch of %zu rows is too large", in->nrows);
    if (fs->format == NU_FSINK_CSV) {
        rc = nu_csv_encode(in, header, &fs->buf, eb);
    } else {
        co.format = fs->format == NU_FSINK_AVRO ? NU_FORMAT_AVRO : NU_FORMAT_JSON;
        co.deflate = fs->format == NU_FSINK_AVRO && fs->gzip;
        rc = nu_codec_encode(&co, in, &fs->buf, eb);
    }
    if (rc == NU_OK && fs->gzip && fs->format != NU_FSINK_AVRO) {
        if (fs->buf.len > UINT32_MAX / 2)
            return nu_err_set(eb, NU_ERR_TOO_LARGE, "encoded split of %zu bytes is too large",
                              fs->buf.len);
        rc = nu_gzip(&fs->buf, &fs->zbuf, eb);
        *out = &fs->zbuf;
    }
    return rc;
}

size_t nu_fsink_gzip_complete(const unsigned char *data, size_t len)
{
    unsigned char sink[16384];
    size_t good = 0;
    z_stream z;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return 0;
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    for (;;) {
        z.next_out = sink;
        z.avail_out = sizeof(sink);
        int zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            good = len - z.avail_in;
            if (z.avail_in == 0 || inflateReset(&z) != Z_OK)
                break;
            continue;
        }
        if (zr != Z_OK)
            break;
        if (z.avail_in == 0 && z.avail_out != 0)
            break; /* truncated member */
    }
    inflateEnd(&z);
    return good;
}
