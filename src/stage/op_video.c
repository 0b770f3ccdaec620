/*
 * op_video.c — the video operators, on the FFmpeg wrapper of media_av.c:
 *
 *   video_probe   {"uri": "uri"}  appends duration, format, video_codec, audio_codec, width,
 *                 height and fps to each row
 *   scene_detect  {"uri": "uri", "threshold": 0.35, "min_scene_seconds": 0.5}  one row per
 *                 scene: the input row plus scene (index from 0), start, end (seconds) and
 *                 scene_score (the cut's score, 0 for the first scene)
 *   video_slice   {"uri": "uri", "prefix": "s3://bucket/clips", "format": "mp4"|"matroska"}
 *                 copies the streams between the row's start and end into a clip (no
 *                 re-encoding: cuts fall on key frames) stored content-addressed under prefix
 *                 (<prefix>/<sha256>.<ext>, so a re-run writes the same object), and appends
 *                 clip_uri, clip_size, clip_sha256 and clip_content_type
 *
 * Media that cannot be read dead-letters its row with the demuxer's or decoder's reason.
 */
#include "stage/media_int.h"

#include "common/mem.h"
#include "operators/builtin.h"
#include "stage/connectors_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum nu_vop_kind { NU_VOP_PROBE, NU_VOP_SCENES, NU_VOP_SLICE };

static const char *const nu_vop_fields[] = {"uri",    "threshold", "min_scene_seconds",
                                            "prefix", "format",    "max_bytes"};
static const char *const nu_vop_formats[] = {"mp4", "matroska"};
static const char *const nu_vop_exts[] = {"mp4", "mkv"};
static const char *const nu_vop_ctypes[] = {"video/mp4", "video/x-matroska"};

static void nu_vop_validate(enum nu_vop_kind kind, const json_t *config, const char *path,
                            struct nu_problems *p)
{
    struct nu_json_path jp;
    const char *s = NULL;
    double d;
    long long ll;
    int fmt = 0;
    size_t nfields = kind == NU_VOP_PROBE ? 1 : kind == NU_VOP_SCENES ? 3 : 0;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    if (kind == NU_VOP_SLICE) {
        static const char *const f[] = {"uri", "prefix", "format", "max_bytes"};
        nu_json_check_fields(config, f, 4, &jp, p);
    } else {
        nu_json_check_fields(config, nu_vop_fields, nfields, &jp, p);
    }
    nu_conn_get_string(config, "uri", false, &jp, p, &s);
    if (kind == NU_VOP_SCENES) {
        nu_media_get_double(config, "threshold", 0, 1, &jp, p, &d);
        nu_media_get_double(config, "min_scene_seconds", 0, 86400, &jp, p, &d);
    }
    if (kind == NU_VOP_SLICE) {
        nu_builtin_get_int(config, "max_bytes", 1, NU_MEDIA_MAX_BYTES, false, NU_MEDIA_MAX_BYTES,
                           &jp, p, &ll);
        nu_conn_get_enum(config, "format", nu_vop_formats, 2, &jp, p, &fmt);
        nu_media_check_prefix(config, &jp, p);
    }
}

static const char *nu_vop_uri_col(const json_t *config)
{
    const json_t *v = json_object_get(config, "uri");
    return json_is_string(v) ? json_string_value(v) : "uri";
}

static nu_err_t nu_vop_schema(enum nu_vop_kind kind, const char *opname, const json_t *config,
                              const struct nu_schema *in, const char *path, struct nu_problems *p,
                              struct nu_schema **out, struct nu_errbuf *eb)
{
    static const char *const probe_n[] = {"duration", "format", "video_codec", "audio_codec",
                                          "width",    "height", "fps"};
    static const nu_type_t probe_t[] = {NU_T_DOUBLE, NU_T_STRING, NU_T_STRING, NU_T_STRING,
                                        NU_T_INT64,  NU_T_INT64,  NU_T_DOUBLE};
    static const bool probe_z[] = {false, false, true, true, true, true, true};
    static const char *const scene_n[] = {"scene", "start", "end", "scene_score"};
    static const nu_type_t scene_t[] = {NU_T_INT64, NU_T_DOUBLE, NU_T_DOUBLE, NU_T_DOUBLE};
    static const bool scene_z[] = {false, false, false, false};
    static const char *const slice_n[] = {"clip_uri", "clip_size", "clip_sha256",
                                          "clip_content_type"};
    static const nu_type_t slice_t[] = {NU_T_STRING, NU_T_INT64, NU_T_STRING, NU_T_STRING};
    static const bool slice_z[] = {false, false, false, false};
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "%s needs an input schema", opname);
    rc = nu_media_expect_column(in, nu_vop_uri_col(config), NU_T_STRING, opname, path, p, eb);
    if (rc == NU_OK && kind == NU_VOP_SLICE) {
        rc = nu_media_expect_column(in, "start", NU_T_DOUBLE, opname, path, p, eb);
        if (rc == NU_OK)
            rc = nu_media_expect_column(in, "end", NU_T_DOUBLE, opname, path, p, eb);
    }
    if (rc != NU_OK)
        return rc;
    switch (kind) {
    case NU_VOP_PROBE:
        return nu_media_schema_extend(in, probe_n, probe_t, probe_z, 7, opname, path, p, out, eb);
    case NU_VOP_SCENES:
        return nu_media_schema_extend(in, scene_n, scene_t, scene_z, 4, opname, path, p, out, eb);
    default:
        return nu_media_schema_extend(in, slice_n, slice_t, slice_z, 4, opname, path, p, out, eb);
    }
}

/* One input row of a video operator. */
static nu_err_t nu_vop_row(enum nu_vop_kind kind, struct nu_media_op *m,
                           const struct nu_op_batch_ctx *ctx, const struct nu_batch *in, size_t i,
                           long ucol, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_errbuf ie;
    const char *uri = nu_media_row_str(ctx->scratch, in, i, ucol);
    char *path = NULL, *clip = NULL, *clip_uri = NULL, hex[65];
    struct nu_av_scene *sc = NULL;
    size_t nsc = 0, base = in->schema->ncols;
    bool temp = false;
    nu_err_t rc;

    nu_errbuf_clear(&ie);
    if (!uri) {
        rc = nu_err_set(&ie, NU_ERR_INVALID, "%s: column \"%s\" is null", m->opname, m->uri_col);
        goto out;
    }
    rc = nu_media_fetch(m, uri, &path, &temp, &ie);
    if (rc != NU_OK)
        goto out;
    if (kind == NU_VOP_PROBE) {
        struct nu_av_probe pr;
        struct nu_value *row;
        rc = nu_av_probe(path, &pr, &ie);
        if (rc != NU_OK)
            goto out;
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_value_double(pr.duration);
        row[base + 1] = nu_batch_str(b, NU_T_STRING, pr.format, strlen(pr.format));
        if (pr.vcodec[0]) {
            row[base + 2] = nu_batch_str(b, NU_T_STRING, pr.vcodec, strlen(pr.vcodec));
            row[base + 4] = nu_value_int(pr.width);
            row[base + 5] = nu_value_int(pr.height);
            row[base + 6] = nu_value_double(pr.fps);
        }
        if (pr.acodec[0])
            row[base + 3] = nu_batch_str(b, NU_T_STRING, pr.acodec, strlen(pr.acodec));
    } else if (kind == NU_VOP_SCENES) {
        rc = nu_av_scenes(path, m->threshold, m->min_len, &sc, &nsc, &ie);
        if (rc != NU_OK)
            goto out;
        for (size_t k = 0; k < nsc; k++) {
            struct nu_value *row = nu_media_copy_row(b, in, i);
            row[base] = nu_value_int((int64_t)k);
            row[base + 1] = nu_value_double(sc[k].start);
            row[base + 2] = nu_value_double(sc[k].end);
            row[base + 3] = nu_value_double(sc[k].score);
        }
    } else {
        const struct nu_value *src = nu_batch_row(in, i);
        long sc_ = nu_schema_find(in->schema, "start"), ec = nu_schema_find(in->schema, "end");
        double start = src[sc_].type == NU_T_DOUBLE ? src[sc_].u.d : 0;
        double end = src[ec].type == NU_T_DOUBLE ? src[ec].u.d : -1;
        int f = m->format && strcmp(m->format, "matroska") == 0;
        struct nu_value *row;
        int64_t size = 0;
        int fd;
        clip = nu_xasprintf("%s/nu-clip-XXXXXX", m->tmpdir);
        fd = mkstemp(clip);
        if (fd < 0) {
            rc = nu_err_set(eb, NU_ERR_IO, "%s: could not create a temporary file in \"%s\"",
                            m->opname, m->tmpdir);
            free(clip);
            clip = NULL;
            goto out;
        }
        close(fd);
        rc = nu_av_slice(path, start, end, nu_vop_formats[f], clip, &ie);
        if (rc == NU_OK)
            rc = nu_media_store(m, clip, nu_vop_exts[f], nu_vop_ctypes[f], &clip_uri, hex, &size,
                                &ie);
        if (rc != NU_OK)
            goto out;
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_batch_str(b, NU_T_STRING, clip_uri, strlen(clip_uri));
        row[base + 1] = nu_value_int(size);
        row[base + 2] = nu_batch_str(b, NU_T_STRING, hex, 64);
        row[base + 3] = nu_batch_str(b, NU_T_STRING, nu_vop_ctypes[f], strlen(nu_vop_ctypes[f]));
    }
out:
    if (rc != NU_OK && !eb->set)
        rc = nu_media_item_error(ctx, in, i, rc, &ie, eb);
    if (temp && path)
        unlink(path);
    if (clip)
        unlink(clip);
    free(clip);
    free(clip_uri);
    free(path);
    free(sc);
    return rc;
}

static nu_err_t nu_vop_process(enum nu_vop_kind kind, void *state,
                               const struct nu_op_batch_ctx *ctx, const struct nu_batch *in,
                               const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_media_op *m = state;
    struct nu_schema *os = NULL;
    struct nu_batch *b = NULL;
    long ucol;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"%s\" got no input batch", m->opname);
    {
        json_t *cfg = json_pack("{ss}", "uri", m->uri_col);
        rc = nu_vop_schema(kind, m->opname, cfg, in->schema, "$", NULL, &os, eb);
        json_decref(cfg);
    }
    if (rc != NU_OK)
        return rc;
    ucol = nu_schema_find(in->schema, m->uri_col);
    b = nu_batch_new(os, in->nrows);
    nu_schema_unref(os);
    for (size_t i = 0; rc == NU_OK && i < in->nrows; i++)
        rc = nu_vop_row(kind, m, ctx, in, i, ucol, b, eb);
    if (rc == NU_OK && b->nrows > 0)
        return nu_op_emit_batch(out, b, eb);
    nu_batch_destroy(b);
    return rc;
}

#define NU_VOP_DEFINE(fn, KIND, NAME, SUMMARY)                                                 \
    static void nu_##fn##_validate(const json_t *c, const char *path, struct nu_problems *p)   \
    {                                                                                          \
        nu_vop_validate(KIND, c, path, p);                                                     \
    }                                                                                          \
    static nu_err_t nu_##fn##_schema(const json_t *c, const struct nu_schema *in,              \
                                     const char *path, struct nu_problems *p,                  \
                                     struct nu_schema **out, struct nu_errbuf *eb)             \
    {                                                                                          \
        return nu_vop_schema(KIND, NAME, c, in, path, p, out, eb);                             \
    }                                                                                          \
    static nu_err_t nu_##fn##_open(const struct nu_op_open_args *a, void **state,              \
                                   struct nu_errbuf *eb);                                      \
    static nu_err_t nu_##fn##_process(void *state, const struct nu_op_batch_ctx *ctx,          \
                                      const struct nu_batch *in, const struct nu_op_emit *out, \
                                      struct nu_errbuf *eb)                                    \
    {                                                                                          \
        return nu_vop_process(KIND, state, ctx, in, out, eb);                                  \
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

NU_VOP_DEFINE(video_probe, NU_VOP_PROBE, "video_probe",
              "duration, container, codecs, resolution and frame rate of videos by URI")
NU_VOP_DEFINE(scene_detect, NU_VOP_SCENES, "scene_detect",
              "one row per scene of each video (scene-change score threshold, minimum length)")
NU_VOP_DEFINE(video_slice, NU_VOP_SLICE, "video_slice",
              "stream-copy each row's time range of a video into a clip in the blob store")
