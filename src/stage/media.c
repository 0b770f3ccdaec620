/*
 * media.c — registration of the media operators and the helpers they share: schema extension,
 * row copies, per-item error routing to dead letters, config numbers, the shared state with its
 * blob store, fetching inputs and storing outputs content-addressed.
 */
#include "stage/media_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "common/sha256.h"
#include "operators/builtin.h"
#include "operators/registry.h"
#include "stage/connectors_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t nu_media_once = PTHREAD_ONCE_INIT;

static void nu_media_add(void)
{
    const struct nu_operator *ops[] = {
        &nu_op_video_probe,     &nu_op_scene_detect, &nu_op_video_slice,
        &nu_op_keep_every_n,    &nu_op_hash,         &nu_op_image_metadata,
        &nu_op_image_thumbnail, &nu_op_image_phash,  &nu_op_http_fetch};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        if (nu_registry_add(ops[i], &eb) != NU_OK)
            nu_log(NU_LOG_ERROR, "media", "could not register operator \"%s\": %s", ops[i]->name,
                   nu_err_msg(&eb));
    }
}

void nu_media_register(void)
{
    pthread_once(&nu_media_once, nu_media_add);
}

nu_err_t nu_media_schema_extend(const struct nu_schema *in, const char *const *names,
                                const nu_type_t *types, const bool *nullable, size_t n,
                                const char *opname, const char *path, struct nu_problems *p,
                                struct nu_schema **out, struct nu_errbuf *eb)
{
    struct nu_schema *s;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "%s needs an input schema", opname);
    for (size_t k = 0; k < n; k++)
        if (nu_schema_find(in, names[k]) >= 0)
            return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                    "%s: the input already has a column \"%s\"", opname, names[k]);
    s = nu_schema_new(in->ncols + n);
    for (size_t i = 0; i < in->ncols; i++)
        nu_schema_set(s, i, in->cols[i].name, in->cols[i].type, in->cols[i].nullable,
                      in->cols[i].item);
    for (size_t k = 0; k < n; k++)
        nu_schema_set(s, in->ncols + k, names[k], types[k], nullable[k], NULL);
    *out = s;
    return NU_OK;
}

nu_err_t nu_media_expect_column(const struct nu_schema *in, const char *name, nu_type_t type,
                                const char *opname, const char *path, struct nu_problems *p,
                                struct nu_errbuf *eb)
{
    long c = in ? nu_schema_find(in, name) : -1;
    if (c < 0)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, path, "%s: no input column \"%s\"", opname,
                                name);
    if (in->cols[c].type != type)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, path, "%s: column \"%s\" is %s, expected %s",
                                opname, name, nu_type_name(in->cols[c].type), nu_type_name(type));
    return NU_OK;
}

struct nu_value *nu_media_copy_row(struct nu_batch *out, const struct nu_batch *in, size_t i)
{
    const struct nu_value *src = nu_batch_row(in, i);
    struct nu_value *row = nu_batch_add_row(out);
    for (size_t c = 0; c < in->schema->ncols; c++)
        row[c] = nu_batch_copy_value(out, &src[c]);
    return row;
}

const char *nu_media_row_str(nu_arena_t *scratch, const struct nu_batch *in, size_t i, long col)
{
    const struct nu_value *v = &nu_batch_row(in, i)[col];
    if (v->type != NU_T_STRING && v->type != NU_T_BYTES)
        return NULL;
    return nu_arena_strndup(scratch, v->u.s.ptr, v->u.s.len);
}

nu_err_t nu_media_item_error(const struct nu_op_batch_ctx *ctx, const struct nu_batch *in, size_t i,
                             nu_err_t rc, struct nu_errbuf *item_eb, struct nu_errbuf *eb)
{
    switch (rc) {
    case NU_ERR_CORRUPT:
    case NU_ERR_UNSUPPORTED:
    case NU_ERR_NOT_FOUND:
    case NU_ERR_TOO_LARGE:
    case NU_ERR_INVALID:
        return nu_op_reject_row(ctx, in, i, NULL, 0, rc, nu_err_msg(item_eb), eb);
    default:
        return nu_err_set(eb, rc, "%s", nu_err_msg(item_eb));
    }
}

nu_err_t nu_media_hash_file(const char *path, char hex[65], int64_t *size, struct nu_errbuf *eb)
{
    unsigned char chunk[64 << 10], d[NU_SHA256_LEN];
    struct nu_sha256 h;
    int64_t total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return nu_err_set(eb, errno == ENOENT ? NU_ERR_NOT_FOUND : NU_ERR_IO,
                          "could not open file \"%s\": %s", path, strerror(errno));
    nu_sha256_init(&h);
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return nu_err_set(eb, NU_ERR_IO, "could not read file \"%s\": %s", path, strerror(e));
        }
        if (r == 0)
            break;
        nu_sha256_update(&h, chunk, (size_t)r);
        total += r;
    }
    close(fd);
    nu_sha256_final(&h, d);
    nu_sha256_hex(d, NU_SHA256_LEN, hex);
    *size = total;
    return NU_OK;
}

bool nu_media_get_double(const json_t *obj, const char *key, double min, double max,
                         struct nu_json_path *jp, struct nu_problems *p, double *out)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark;
    if (!v)
        return true;
    if (json_is_number(v) && json_number_value(v) >= min && json_number_value(v) <= max) {
        *out = json_number_value(v);
        return true;
    }
    mark = nu_json_path_push_key(jp, key);
    nu_problems_add(p, jp->buf, "expected a number in [%g, %g]", min, max);
    nu_json_path_pop(jp, mark);
    return false;
}

void nu_media_check_prefix(const json_t *config, struct nu_json_path *jp, struct nu_problems *p)
{
    const char *s = NULL;
    if (!nu_conn_get_string(config, "prefix", true, jp, p, &s) || !s)
        return;
    char *probe = nu_blob_cas_uri(s, "x", NULL);
    struct nu_blob_uri u = {0};
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    if (nu_blob_uri_parse(probe, &u, &eb) != NU_OK) {
        size_t mark = nu_json_path_push_key(jp, "prefix");
        nu_problems_add(p, jp->buf, "%s", nu_err_msg(&eb));
        nu_json_path_pop(jp, mark);
    }
    nu_blob_uri_free(&u);
    free(probe);
}

static char *nu_media_dup(const json_t *config, const char *key, const char *dflt)
{
    const json_t *v = json_object_get(config, key);
    if (json_is_string(v))
        return nu_xstrdup(json_string_value(v));
    return dflt ? nu_xstrdup(dflt) : NULL;
}

nu_err_t nu_media_op_open(const struct nu_operator *op, const json_t *config,
                          struct nu_media_op **out, struct nu_errbuf *eb)
{
    struct nu_media_op *m;
    const json_t *v;
    const char *tmp = getenv("TMPDIR");
    nu_err_t rc;

    *out = NULL;
    rc = nu_builtin_check_config(op, config, eb);
    if (rc != NU_OK)
        return rc;
    m = nu_xcalloc(1, sizeof(*m));
    m->opname = op->name;
    m->uri_col = nu_media_dup(config, "uri", "uri");
    m->prefix = nu_media_dup(config, "prefix", NULL);
    m->format = nu_media_dup(config, "format", NULL);
    m->column = nu_media_dup(config, "column", NULL);
    m->into = nu_media_dup(config, "into", NULL);
    m->tmpdir = nu_xstrdup(tmp && *tmp ? tmp : "/tmp");
    m->threshold = (v = json_object_get(config, "threshold")) ? json_number_value(v) : 0.35;
    m->min_len = (v = json_object_get(config, "min_scene_seconds")) ? json_number_value(v) : 0.5;
    m->n = (v = json_object_get(config, "n")) ? json_integer_value(v) : 1;
    m->offset = (v = json_object_get(config, "offset")) ? json_integer_value(v) : 0;
    m->max_bytes =
        (v = json_object_get(config, "max_bytes")) ? json_integer_value(v) : NU_MEDIA_MAX_BYTES;
    m->width = (v = json_object_get(config, "width")) ? json_integer_value(v) : 0;
    m->height = (v = json_object_get(config, "height")) ? json_integer_value(v) : 0;
    m->quality = (v = json_object_get(config, "quality")) ? json_integer_value(v) : 85;
    m->fill = (v = json_object_get(config, "mode")) && strcmp(json_string_value(v), "fill") == 0;
    m->verify = json_is_true(json_object_get(config, "verify"));
    nu_blob_conf_env(&m->bconf);
    rc = nu_blob_new(&m->bconf, &m->blob, eb);
    if (rc != NU_OK) {
        nu_media_op_close(m);
        return rc;
    }
    *out = m;
    return NU_OK;
}

void nu_media_op_close(void *state)
{
    struct nu_media_op *m = state;
    if (!m)
        return;
    nu_blob_destroy(m->blob);
    free(m->uri_col);
    free(m->prefix);
    free(m->format);
    free(m->column);
    free(m->into);
    free(m->tmpdir);
    free(m);
}

nu_err_t nu_media_fetch(struct nu_media_op *m, const char *uri, char **path, bool *temp,
                        struct nu_errbuf *eb)
{
    return nu_blob_local(m->blob, uri, m->tmpdir, m->max_bytes, path, temp, eb);
}

nu_err_t nu_media_store(struct nu_media_op *m, const char *path, const char *ext,
                        const char *content_type, char **uri, char hex[65], int64_t *size,
                        struct nu_errbuf *eb)
{
    nu_err_t rc = nu_media_hash_file(path, hex, size, eb);
    *uri = NULL;
    if (rc != NU_OK)
        return rc;
    *uri = nu_blob_cas_uri(m->prefix, hex, ext);
    rc = nu_blob_put_file(m->blob, *uri, path, content_type, eb);
    if (rc != NU_OK) {
        free(*uri);
        *uri = NULL;
    }
    return rc;
}
