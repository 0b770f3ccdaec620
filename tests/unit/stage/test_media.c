/* test_media.c — the video operators and keep_every_n/hash on media generated at test time with
 * Debian's ffmpeg: three 2-second scenes from different sources with hard cuts (key frames
 * forced at the cuts), a corrupt and a truncated file. */
#include "stage/media_int.h"

#include "common/mem.h"
#include "common/sha256.h"
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

static void media_setup(void)
{
    nu_media_register();
    snprintf(dir, sizeof(dir), "/tmp/nu-media-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sh("ffmpeg -v error -y -f lavfi -i testsrc=size=160x120:rate=25:duration=2 "
       "-f lavfi -i smptebars=size=160x120:rate=25:duration=2 "
       "-f lavfi -i rgbtestsrc=size=160x120:rate=25:duration=2 "
       "-filter_complex '[0][1][2]concat=n=3:v=1' -c:v libx264 -pix_fmt yuv420p "
       "-force_key_frames 0,2,4 -g 250 -fflags +bitexact %s/v.mp4",
       dir);
    sh("head -c 20000 /dev/urandom > %s/corrupt.mp4", dir);
    sh("head -c 3000 %s/v.mp4 > %s/truncated.mp4", dir, dir);
}

static void media_teardown(void)
{
    sh("rm -rf %s", dir);
}

TestSuite(media, .init = media_setup, .fini = media_teardown, .timeout = 60);

struct out {
    struct nu_batch *b[64];
    size_t n, rows;
    char *reason[16];
    size_t nrej;
};

static nu_err_t collect(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    cr_assert_lt(o->n, 64);
    o->rows += b->nrows;
    o->b[o->n++] = b;
    return NU_OK;
}

static nu_err_t reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                       size_t len, const char *reason, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    cr_assert_lt(row, in->nrows);
    cr_assert_lt(o->nrej, 16);
    o->reason[o->nrej++] = nu_xstrdup(reason);
    return NU_OK;
}

static void out_free(struct out *o)
{
    for (size_t i = 0; i < o->n; i++)
        nu_batch_destroy(o->b[i]);
    for (size_t i = 0; i < o->nrej; i++)
        free(o->reason[i]);
    memset(o, 0, sizeof(*o));
}

/* A batch with one string column "uri" holding file://<dir>/<name> for each name. */
static struct nu_batch *uris(const char *const *names, size_t n)
{
    struct nu_schema *s = nu_schema_new(1);
    nu_schema_set(s, 0, "uri", NU_T_STRING, true, NULL);
    struct nu_batch *b = nu_batch_new(s, n);
    nu_schema_unref(s);
    for (size_t i = 0; i < n; i++) {
        char *u = nu_xasprintf("file://%s/%s", dir, names[i]);
        nu_batch_add_row(b)[0] = nu_batch_str(b, NU_T_STRING, u, strlen(u));
        free(u);
    }
    return b;
}

/* Run operator `name` with config text `cfg` over `in`; returns the process result. */
static nu_err_t run(const char *name, const char *cfg, const struct nu_batch *in, struct out *o,
                    struct nu_errbuf *eb)
{
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find(name, NULL, &op, eb), NU_OK, "%s", nu_err_msg(eb));
    json_t *c = json_loads(cfg, 0, NULL);
    cr_assert_not_null(c, "bad config %s", cfg);
    struct nu_problems p;
    nu_problems_init(&p);
    op->validate(c, "$", &p);
    cr_assert_eq(p.n, 0, "%s: %s", cfg, p.n ? p.items[0].message : "");
    struct nu_schema *os = NULL;
    cr_assert_eq(op->schema(c, in->schema, "$", &p, &os, eb), NU_OK, "%s", nu_err_msg(eb));
    nu_problems_free(&p);
    struct nu_op_open_args args = {.config = c, .in = in->schema, .job_id = "j", .stage_id = "s"};
    void *st = NULL;
    cr_assert_eq(op->open(&args, &st, eb), NU_OK, "%s", nu_err_msg(eb));
    nu_arena_t *scratch = nu_arena_new(0);
    struct nu_op_batch_ctx ctx = {
        .split_id = "s-1", .attempt = 1, .scratch = scratch, .reject = reject, .reject_ctx = o};
    struct nu_op_emit e = {.ctx = o, .emit = collect};
    nu_err_t rc = op->process(st, &ctx, in, &e, eb);
    for (size_t i = 0; i < o->n; i++)
        cr_assert(nu_schema_equal(o->b[i]->schema, os), "emitted schema differs from schema()");
    op->close(st);
    nu_arena_destroy(scratch);
    nu_schema_unref(os);
    json_decref(c);
    return rc;
}

static const struct nu_value *col(const struct nu_batch *b, size_t row, const char *name)
{
    long c = nu_schema_find(b->schema, name);
    cr_assert_geq(c, 0, "no column %s", name);
    return &nu_batch_row(b, row)[c];
}

Test(media, video_probe_reports_format_and_rejects_bad_files)
{
    const char *names[] = {"v.mp4", "corrupt.mp4", "truncated.mp4", "missing.mp4"};
    struct nu_batch *in = uris(names, 4);
    struct out o = {0};
    struct nu_errbuf eb = {0};
    cr_assert_eq(run("video_probe", "{}", in, &o, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 1);
    const struct nu_batch *b = o.b[0];
    cr_assert_float_eq(col(b, 0, "duration")->u.d, 6.0, 0.05);
    cr_assert_eq(col(b, 0, "width")->u.i, 160);
    cr_assert_eq(col(b, 0, "height")->u.i, 120);
    cr_assert_float_eq(col(b, 0, "fps")->u.d, 25.0, 0.01);
    cr_assert_eq(strncmp(col(b, 0, "video_codec")->u.s.ptr, "h264", 4), 0);
    cr_assert_eq(col(b, 0, "audio_codec")->type, NU_T_NULL);
    cr_assert_eq(o.nrej, 3);
    cr_assert(strstr(o.reason[0], "corrupt.mp4") && strstr(o.reason[0], "Invalid data"), "%s",
              o.reason[0]);
    cr_assert(strstr(o.reason[1], "truncated.mp4"), "%s", o.reason[1]);
    cr_assert(strstr(o.reason[2], "missing.mp4"), "%s", o.reason[2]);
    out_free(&o);
    nu_batch_destroy(in);
}

struct scene_case {
    const char *cfg;
    size_t n;
    double starts[4];
};

static const struct scene_case scene_cases[] = {
    {"{}", 3, {0, 2, 4}},
    {"{\"threshold\": 0.35, \"min_scene_seconds\": 0.5}", 3, {0, 2, 4}},
    {"{\"min_scene_seconds\": 3}", 1, {0}}, /* the cut at 4 s leaves a 2 s tail: merged */
    {"{\"min_scene_seconds\": 1.5}", 3, {0, 2, 4}},
    {"{\"threshold\": 1.0}", 1, {0}},
};

Test(media, scene_detect_finds_the_hard_cuts)
{
    const char *names[] = {"v.mp4", "corrupt.mp4"};
    for (size_t k = 0; k < sizeof(scene_cases) / sizeof(scene_cases[0]); k++) {
        const struct scene_case *c = &scene_cases[k];
        struct nu_batch *in = uris(names, 2);
        struct out o = {0};
        struct nu_errbuf eb = {0};
        cr_assert_eq(run("scene_detect", c->cfg, in, &o, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(o.rows, c->n, "%s: %zu scenes", c->cfg, o.rows);
        for (size_t i = 0; i < c->n; i++) {
            cr_assert_eq(col(o.b[0], i, "scene")->u.i, (int64_t)i);
            cr_assert_float_eq(col(o.b[0], i, "start")->u.d, c->starts[i], 0.05, "%s", c->cfg);
            double end = i + 1 < c->n ? c->starts[i + 1] : 6.0;
            cr_assert_float_eq(col(o.b[0], i, "end")->u.d, end, 0.05, "%s", c->cfg);
        }
        cr_assert_eq(o.nrej, 1);
        out_free(&o);
        nu_batch_destroy(in);
    }
}

/* scene rows of v.mp4, sliced into clips under <dir>/clips; the clip hashes into hex[]. */
static size_t slice_all(char hex[][65], size_t cap)
{
    const char *names[] = {"v.mp4"};
    struct nu_batch *in = uris(names, 1);
    struct out o = {0}, o2 = {0};
    struct nu_errbuf eb = {0};
    char cfg[512];
    cr_assert_eq(run("scene_detect", "{}", in, &o, &eb), NU_OK, "%s", nu_err_msg(&eb));
    snprintf(cfg, sizeof(cfg), "{\"prefix\": \"file://%s/clips\"}", dir);
    cr_assert_eq(run("video_slice", cfg, o.b[0], &o2, &eb), NU_OK, "%s", nu_err_msg(&eb));
    size_t n = o2.rows;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        const struct nu_value *u = col(o2.b[0], i, "clip_uri");
        const struct nu_value *h = col(o2.b[0], i, "clip_sha256");
        char *path = nu_xstrndup(u->u.s.ptr + 7, u->u.s.len - 7);
        char fh[65];
        int64_t size;
        struct nu_av_probe pr;
        cr_assert_eq(nu_media_hash_file(path, fh, &size, &eb), NU_OK);
        cr_assert_eq(memcmp(fh, h->u.s.ptr, 64), 0, "stored clip differs from its hash");
        cr_assert_eq(size, col(o2.b[0], i, "clip_size")->u.i);
        cr_assert_eq(nu_av_probe(path, &pr, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_float_eq(pr.duration, 2.0, 0.1, "clip %zu lasts %f s", i, pr.duration);
        memcpy(hex[i], fh, 65);
        free(path);
    }
    out_free(&o);
    out_free(&o2);
    nu_batch_destroy(in);
    return n;
}

Test(media, video_slice_writes_one_exact_clip_per_scene_deterministically)
{
    char a[8][65], b[8][65];
    size_t n = slice_all(a, 8);
    cr_assert_eq(n, 3);
    cr_assert_str_neq(a[0], a[1]);
    cr_assert_str_neq(a[1], a[2]);
    size_t n2 = slice_all(b, 8);
    cr_assert_eq(n2, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(a[i], b[i], "clip %zu differs between runs", i);
    /* the second run wrote the same three objects: no duplicates, no part files */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s/clips | wc -l) -eq 3", dir);
    cr_assert_eq(system(cmd), 0, "expected exactly 3 files in the clip folder");
}

struct keep_case {
    const char *cfg;
    size_t nkept;
    int64_t first;
};

static const struct keep_case keep_cases[] = {
    {"{\"n\": 1}", 10, 0},
    {"{\"n\": 3}", 4, 0},                     /* 0 3 6 9 */
    {"{\"n\": 3, \"offset\": 2}", 3, 2},      /* 2 5 8 */
    {"{\"n\": 4, \"column\": \"v\"}", 2, 12}, /* v = 10..19: 12 and 16 */
    {"{\"n\": 20}", 1, 0},
};

Test(media, keep_every_n_table)
{
    for (size_t k = 0; k < sizeof(keep_cases) / sizeof(keep_cases[0]); k++) {
        struct nu_schema *s = nu_schema_new(1);
        nu_schema_set(s, 0, "v", NU_T_INT64, true, NULL);
        struct nu_batch *in = nu_batch_new(s, 10);
        nu_schema_unref(s);
        for (int64_t i = 0; i < 10; i++)
            nu_batch_add_row(in)[0] = nu_value_int(i + 10);
        struct out o = {0};
        struct nu_errbuf eb = {0};
        cr_assert_eq(run("keep_every_n", keep_cases[k].cfg, in, &o, &eb), NU_OK);
        cr_assert_eq(o.rows, keep_cases[k].nkept, "%s: kept %zu", keep_cases[k].cfg, o.rows);
        if (o.rows && strstr(keep_cases[k].cfg, "column"))
            cr_assert_eq(nu_batch_row(o.b[0], 0)[0].u.i, 12);
        else if (o.rows)
            cr_assert_eq(nu_batch_row(o.b[0], 0)[0].u.i, keep_cases[k].first + 10);
        out_free(&o);
        nu_batch_destroy(in);
    }
}

Test(media, hash_matches_sha256sum_and_rejects_missing_blobs)
{
    const char *names[] = {"v.mp4", "missing.bin"};
    struct nu_batch *in = uris(names, 2);
    struct out o = {0};
    struct nu_errbuf eb = {0};
    char cmd[512], want[65] = "";
    cr_assert_eq(run("hash", "{\"into\": \"digest\"}", in, &o, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 1);
    cr_assert_eq(o.nrej, 1);
    snprintf(cmd, sizeof(cmd), "sha256sum %s/v.mp4", dir);
    FILE *f = popen(cmd, "r");
    cr_assert_eq(fscanf(f, "%64s", want), 1);
    pclose(f);
    const struct nu_value *d = col(o.b[0], 0, "digest");
    cr_assert_eq(d->u.s.len, 64);
    cr_assert_eq(memcmp(d->u.s.ptr, want, 64), 0);
    out_free(&o);
    nu_batch_destroy(in);
}

struct cfg_case {
    const char *op, *cfg;
    bool ok;
};

static const struct cfg_case cfg_cases[] = {
    {"video_probe", "{}", true},
    {"video_probe", "{\"uri\": \"path\"}", true},
    {"video_probe", "{\"threshold\": 0.2}", false},
    {"scene_detect", "{\"threshold\": 0.2, \"min_scene_seconds\": 1}", true},
    {"scene_detect", "{\"threshold\": 1.5}", false},
    {"scene_detect", "{\"min_scene_seconds\": -1}", false},
    {"video_slice", "{\"prefix\": \"s3://bucket/clips\"}", true},
    {"video_slice", "{\"prefix\": \"file:///tmp/c\", \"format\": \"matroska\"}", true},
    {"video_slice", "{}", false},
    {"video_slice", "{\"prefix\": \"http://x/\"}", false},
    {"video_slice", "{\"prefix\": \"file:///tmp/c\", \"format\": \"avi\"}", false},
    {"keep_every_n", "{\"n\": 0}", false},
    {"keep_every_n", "{}", false},
    {"keep_every_n", "{\"n\": 2, \"offset\": 2}", false},
    {"hash", "{\"into\": 3}", false},
    {"hash", "[]", false},
};

Test(media, config_validation_table)
{
    for (size_t k = 0; k < sizeof(cfg_cases) / sizeof(cfg_cases[0]); k++) {
        const struct nu_operator *op = NULL;
        cr_assert_eq(nu_registry_find(cfg_cases[k].op, NULL, &op, NULL), NU_OK);
        json_t *c = json_loads(cfg_cases[k].cfg, 0, NULL);
        struct nu_problems p;
        nu_problems_init(&p);
        op->validate(c, "$", &p);
        cr_assert_eq(p.n == 0, cfg_cases[k].ok, "%s %s: %zu problems", cfg_cases[k].op,
                     cfg_cases[k].cfg, p.n);
        nu_problems_free(&p);
        json_decref(c);
    }
}

Test(media, schema_refuses_missing_uri_column_and_clashes)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "path", NU_T_STRING, false, NULL);
    nu_schema_set(s, 1, "scene", NU_T_INT64, false, NULL);
    const struct nu_operator *op = NULL;
    struct nu_schema *out = NULL;
    struct nu_errbuf eb = {0};
    json_t *c = json_object();
    cr_assert_eq(nu_registry_find("video_probe", NULL, &op, NULL), NU_OK);
    cr_assert_eq(op->schema(c, s, "$", NULL, &out, &eb), NU_ERR_TYPE);
    cr_assert(strstr(nu_err_msg(&eb), "\"uri\""), "%s", nu_err_msg(&eb));
    json_object_set_new(c, "uri", json_string("path"));
    cr_assert_eq(op->schema(c, s, "$", NULL, &out, NULL), NU_OK);
    nu_schema_unref(out);
    cr_assert_eq(nu_registry_find("scene_detect", NULL, &op, NULL), NU_OK);
    cr_assert_eq(op->schema(c, s, "$", NULL, &out, NULL), NU_ERR_TYPE); /* "scene" clashes */
    json_decref(c);
    nu_schema_unref(s);
}
