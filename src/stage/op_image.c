/*
 * op_image.c — the image operators, on the libvips wrapper of media_img.c:
 *
 *   image_metadata   {"uri": "uri", "verify": false}  appends width, height (EXIF orientation
 *                    applied), orientation, format and bands; with verify every pixel is
 *                    decoded so truncated files are caught
 *   image_thumbnail  {"uri": "uri", "prefix": "file:///thumbs", "width": 256, "height": 256,
 *                    "mode": "fit"|"fill", "format": "jpeg"|"png"|"webp", "quality": 85}
 *                    resizes (fit: inside the box; fill: cover it, centre-cropped; no size:
 *                    format conversion only), stores the result content-addressed under prefix
 *                    and appends thumb_uri, thumb_size, thumb_sha256, thumb_width, thumb_height,
 *                    thumb_content_type
 *   image_phash      {"uri": "uri"}  appends phash, a 64-bit difference hash as 16 hex digits
 *                    (near-duplicates differ in few bits)
 *
 * Images that cannot be read dead-letter their row with libvips's reason.
 */
#include "stage/media_int.h"

#include "common/mem.h"
#include "operators/builtin.h"
#include "stage/connectors_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum nu_iop_kind { NU_IOP_META, NU_IOP_THUMB, NU_IOP_PHASH };

static const char *const nu_iop_formats[] = {"jpeg", "png", "webp"};
static const char *const nu_iop_exts[] = {"jpg", "png", "webp"};
static const char *const nu_iop_ctypes[] = {"image/jpeg", "image/png", "image/webp"};
static const char *const nu_iop_modes[] = {"fit", "fill"};

static void nu_iop_validate(enum nu_iop_kind kind, const json_t *config, const char *path,
                            struct nu_problems *p)
{
    static const char *const meta_f[] = {"uri", "verify", "max_bytes"};
    static const char *const thumb_f[] = {"uri",  "prefix", "width",   "height",
                                          "mode", "format", "quality", "max_bytes"};
    struct nu_json_path jp;
    const char *s = NULL;
    long long ll;
    bool b;
    int e = 0;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    if (kind == NU_IOP_THUMB)
        nu_json_check_fields(config, thumb_f, 8, &jp, p);
    else
        nu_json_check_fields(config, meta_f, kind == NU_IOP_META ? 3 : 1, &jp, p);
    nu_conn_get_string(config, "uri", false, &jp, p, &s);
    nu_builtin_get_int(config, "max_bytes", 1, NU_MEDIA_MAX_BYTES, false, NU_MEDIA_MAX_BYTES, &jp,
                       p, &ll);
    if (kind == NU_IOP_META)
        nu_conn_get_bool(config, "verify", &jp, p, &b);
    if (kind != NU_IOP_THUMB)
        return;
    nu_builtin_get_int(config, "width", 1, NU_MEDIA_MAX_DIM, false, 0, &jp, p, &ll);
    nu_builtin_get_int(config, "height", 1, NU_MEDIA_MAX_DIM, false, 0, &jp, p, &ll);
    nu_builtin_get_int(config, "quality", 1, 100, false, 85, &jp, p, &ll);
    nu_conn_get_enum(config, "mode", nu_iop_modes, 2, &jp, p, &e);
    nu_conn_get_enum(config, "format", nu_iop_formats, 3, &jp, p, &e);
    if (json_object_get(config, "mode") && json_string_value(json_object_get(config, "mode")) &&
        strcmp(json_string_value(json_object_get(config, "mode")), "fill") == 0 &&
        !(json_object_get(config, "width") && json_object_get(config, "height")))
        nu_problems_add(p, jp.buf, "mode \"fill\" needs both width and height");
    nu_media_check_prefix(config, &jp, p);
}

static nu_err_t nu_iop_schema(enum nu_iop_kind kind, const char *opname, const json_t *config,
                              const struct nu_schema *in, const char *path, struct nu_problems *p,
                              struct nu_schema **out, struct nu_errbuf *eb)
{
    static const char *const meta_n[] = {"width", "height", "orientation", "format", "bands"};
    static const nu_type_t meta_t[] = {NU_T_INT64, NU_T_INT64, NU_T_INT64, NU_T_STRING, NU_T_INT64};
    static const char *const thumb_n[] = {"thumb_uri",   "thumb_size",   "thumb_sha256",
                                          "thumb_width", "thumb_height", "thumb_content_type"};
    static const nu_type_t thumb_t[] = {NU_T_STRING, NU_T_INT64, NU_T_STRING,
                                        NU_T_INT64,  NU_T_INT64, NU_T_STRING};
    static const char *const phash_n[] = {"phash"};
    static const nu_type_t phash_t[] = {NU_T_STRING};
    static const bool z[] = {false, false, false, false, false, false};
    const json_t *u = json_object_get(config, "uri");
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "%s needs an input schema", opname);
    rc = nu_media_expect_column(in, json_is_string(u) ? json_string_value(u) : "uri", NU_T_STRING,
                                opname, path, p, eb);
    if (rc != NU_OK)
        return rc;
    if (kind == NU_IOP_META)
        return nu_media_schema_extend(in, meta_n, meta_t, z, 5, opname, path, p, out, eb);
    if (kind == NU_IOP_THUMB)
        return nu_media_schema_extend(in, thumb_n, thumb_t, z, 6, opname, path, p, out, eb);
    return nu_media_schema_extend(in, phash_n, phash_t, z, 1, opname, path, p, out, eb);
}

static nu_err_t nu_iop_row(enum nu_iop_kind kind, struct nu_media_op *m,
                           const struct nu_op_batch_ctx *ctx, const struct nu_batch *in, size_t i,
                           long ucol, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_errbuf ie;
    const char *uri = nu_media_row_str(ctx->scratch, in, i, ucol);
    char *path = NULL, *tmp = NULL, *turi = NULL, hex[65];
    size_t base = in->schema->ncols;
    bool temp = false;
    struct nu_value *row;
    nu_err_t rc;

    nu_errbuf_clear(&ie);
    if (!uri) {
        rc = nu_err_set(&ie, NU_ERR_INVALID, "%s: column \"%s\" is null", m->opname, m->uri_col);
        goto out;
    }
    rc = nu_media_fetch(m, uri, &path, &temp, &ie);
    if (rc != NU_OK)
        goto out;
    if (kind == NU_IOP_META) {
        struct nu_img_info info;
        rc = nu_img_info(path, m->verify, &info, &ie);
        if (rc != NU_OK)
            goto out;
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_value_int(info.width);
        row[base + 1] = nu_value_int(info.height);
        row[base + 2] = nu_value_int(info.orientation);
        row[base + 3] = nu_batch_str(b, NU_T_STRING, info.format, strlen(info.format));
        row[base + 4] = nu_value_int(info.bands);
    } else if (kind == NU_IOP_PHASH) {
        uint64_t h;
        char s[17];
        rc = nu_img_dhash(path, &h, &ie);
        if (rc != NU_OK)
            goto out;
        snprintf(s, sizeof(s), "%016" PRIx64, h);
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_batch_str(b, NU_T_STRING, s, 16);
    } else {
        int f = !m->format                       ? 0
                : strcmp(m->format, "png") == 0  ? 1
                : strcmp(m->format, "webp") == 0 ? 2
                                                 : 0;
        struct nu_img_thumb t = {(int)m->width, (int)m->height, m->fill ? NU_IMG_FILL : NU_IMG_FIT,
                                 nu_iop_formats[f], (int)m->quality};
        int64_t w = 0, h = 0, size = 0;
        int fd;
        tmp = nu_xasprintf("%s/nu-thumb-XXXXXX.%s", m->tmpdir, nu_iop_exts[f]);
        fd = mkstemps(tmp, (int)strlen(nu_iop_exts[f]) + 1);
        if (fd < 0) {
            rc = nu_err_set(eb, NU_ERR_IO, "%s: could not create a temporary file in \"%s\"",
                            m->opname, m->tmpdir);
            free(tmp);
            tmp = NULL;
            goto out;
        }
        close(fd);
        rc = nu_img_thumbnail(path, &t, tmp, &w, &h, &ie);
        if (rc == NU_OK)
            rc = nu_media_store(m, tmp, nu_iop_exts[f], nu_iop_ctypes[f], &turi, hex, &size, &ie);
        if (rc != NU_OK)
            goto out;
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_batch_str(b, NU_T_STRING, turi, strlen(turi));
        row[base + 1] = nu_value_int(size);
        row[base + 2] = nu_batch_str(b, NU_T_STRING, hex, 64);
        row[base + 3] = nu_value_int(w);
        row[base + 4] = nu_value_int(h);
        row[base + 5] = nu_batch_str(b, NU_T_STRING, nu_iop_ctypes[f], strlen(nu_iop_ctypes[f]));
    }
out:
    if (rc != NU_OK && !eb->set)
        rc = nu_media_item_error(ctx, in, i, rc, &ie, eb);
    if (temp && path)
        unlink(path);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(turi);
    free(path);
    return rc;
}

static nu_err_t nu_iop_process(enum nu_iop_kind kind, void *state,
                               const struct nu_op_batch_ctx *ctx, const struct nu_batch *in,
                               const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_media_op *m = state;
    struct nu_schema *os = NULL;
    struct nu_batch *b = NULL;
    json_t *cfg;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"%s\" got no input batch", m->opname);
    cfg = json_pack("{ss}", "uri", m->uri_col);
    rc = nu_iop_schema(kind, m->opname, cfg, in->schema, "$", NULL, &os, eb);
    json_decref(cfg);
    if (rc != NU_OK)
        return rc;
    b = nu_batch_new(os, in->nrows);
    nu_schema_unref(os);
    for (size_t i = 0; rc == NU_OK && i < in->nrows; i++)
        rc = nu_iop_row(kind, m, ctx, in, i, nu_schema_find(in->schema, m->uri_col), b, eb);
    if (rc == NU_OK && b->nrows > 0)
        return nu_op_emit_batch(out, b, eb);
    nu_batch_destroy(b);
    return rc;
}

#define NU_IOP_DEFINE(fn, KIND, NAME, SUMMARY)                                                 \
    static void nu_##fn##_validate(const json_t *c, const char *path, struct nu_problems *p)   \
    {                                                                                          \
        nu_iop_validate(KIND, c, path, p);                                                     \
    }                                                                                          \
    static nu_err_t nu_##fn##_schema(const json_t *c, const struct nu_schema *in,              \
                                     const char *path, struct nu_problems *p,                  \
                                     struct nu_schema **out, struct nu_errbuf *eb)             \
    {                                                                                          \
        return nu_iop_schema(KIND, NAME, c, in, path, p, out, eb);                             \
    }                                                                                          \
    static nu_err_t nu_##fn##_open(const struct nu_op_open_args *a, void **state,              \
                                   struct nu_errbuf *eb);                                      \
    static nu_err_t nu_##fn##_process(void *state, const struct nu_op_batch_ctx *ctx,          \
                                      const struct nu_batch *in, const struct nu_op_emit *out, \
                                      struct nu_errbuf *eb)                                    \
    {                                                                                          \
        return nu_iop_process(KIND, state, ctx, in, out, eb);                                  \
    }                                                                                          \
    const struct nu_operator nu_op_##fn = {                                                    \
        .abi_version = NU_OPERATOR_ABI_VERSION,                                                \
        .name = NAME,                                                                          \
        .kind = NU_OPKIND_TRANSFORM,                                                           \
        .summary = SUMMARY,                                                                    \
        .validate = nu_##fn##_validate,                                                        \
        .schema = nu_##fn##_schema,                                                            \
        .open = nu_##fn##_open,                                                                \
        .process = nu_##fn##_process,                                                          \
        .close = nu_media_op_close,                                                            \
    };                                                                                         \
    static nu_err_t nu_##fn##_open(const struct nu_op_open_args *a, void **state,              \
                                   struct nu_errbuf *eb)                                       \
    {                                                                                          \
        return nu_media_op_open(&nu_op_##fn, a->config, (struct nu_media_op **)state, eb);     \
    }

NU_IOP_DEFINE(image_metadata, NU_IOP_META, "image_metadata",
              "width, height (EXIF orientation applied), orientation and format of images")
NU_IOP_DEFINE(image_thumbnail, NU_IOP_THUMB, "image_thumbnail",
              "resize (fit or fill) and convert images into the blob store")
NU_IOP_DEFINE(image_phash, NU_IOP_PHASH, "image_phash",
              "64-bit difference hash of images, for near-duplicate detection")
