/* test_media_image.c — the image operators on images generated at test time with Debian's
 * ImageMagick (/usr/bin/convert): metadata with EXIF orientation, thumbnails (fit, fill, format
 * conversion), difference-hash distances of near-duplicates and different images, bad images. */
#include "stage/media_int.h"

#include "common/mem.h"
#include "operators/registry.h"

#include <criterion/criterion.h>
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

/* Copy JPEG `src` to `dst` with an EXIF APP1 segment holding orientation `o` after the SOI. */
static void jpeg_with_orientation(const char *src, const char *dst, int o)
{
    static unsigned char app1[] = {
        0xff, 0xe1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0, 0, /* marker, length 34, "Exif\0\0" */
        'I',  'I',  0x2a, 0x00, 0x08, 0x00, 0x00, 0x00,       /* TIFF header, IFD at 8 */
        0x01, 0x00,                                           /* one entry */
        0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00,       /* 0x0112 SHORT x1 */
        0x00, 0x00, 0x00, 0x00,                               /* value */
        0x00, 0x00, 0x00, 0x00};                              /* no next IFD */
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    unsigned char buf[65536];
    size_t n;
    cr_assert(in && out);
    app1[28] = (unsigned char)o;
    n = fread(buf, 1, sizeof(buf), in);
    cr_assert(n > 2 && buf[0] == 0xff && buf[1] == 0xd8);
    fwrite(buf, 1, 2, out);
    fwrite(app1, 1, sizeof(app1), out);
    fwrite(buf + 2, 1, n - 2, out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static void img_setup(void)
{
    nu_media_register();
    snprintf(dir, sizeof(dir), "/tmp/nu-img-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sh("/usr/bin/convert rose: -resize '400x260!' %s/rose.png", dir);
    sh("/usr/bin/convert %s/rose.png -resize 50%% -quality 30 %s/rose_small.jpg", dir, dir);
    sh("/usr/bin/convert -size 400x260 pattern:checkerboard %s/check.png", dir);
    sh("/usr/bin/convert -size 400x260 gradient:white-black %s/grad.png", dir);
    sh("/usr/bin/convert -size 200x100 xc:red %s/plain.jpg", dir);
    sh("head -c 5000 /dev/urandom > %s/corrupt.jpg", dir);
    sh("printf 'not an image' > %s/text.png", dir);
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s/plain.jpg", dir);
    snprintf(b, sizeof(b), "%s/o6.jpg", dir);
    jpeg_with_orientation(a, b, 6);
}

static void img_teardown(void)
{
    sh("rm -rf %s", dir);
}

TestSuite(media_image, .init = img_setup, .fini = img_teardown, .timeout = 60);

struct out {
    struct nu_batch *b[8];
    size_t n, rows;
    char *reason[8];
    size_t nrej;
};

static nu_err_t collect(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    cr_assert_lt(o->n, 8);
    o->rows += b->nrows;
    o->b[o->n++] = b;
    return NU_OK;
}

static nu_err_t reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                       size_t len, const char *reason, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    cr_assert_lt(o->nrej, 8);
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

static void run(const char *name, const char *cfg, const struct nu_batch *in, struct out *o)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_registry_find(name, NULL, &op, &eb), NU_OK);
    json_t *c = json_loads(cfg, 0, NULL);
    cr_assert_not_null(c, "%s", cfg);
    struct nu_problems p;
    nu_problems_init(&p);
    op->validate(c, "$", &p);
    cr_assert_eq(p.n, 0, "%s: %s", cfg, p.n ? p.items[0].message : "");
    nu_problems_free(&p);
    struct nu_op_open_args args = {.config = c, .in = in->schema, .job_id = "j", .stage_id = "s"};
    void *st = NULL;
    cr_assert_eq(op->open(&args, &st, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_arena_t *scratch = nu_arena_new(0);
    struct nu_op_batch_ctx ctx = {
        .split_id = "s", .attempt = 1, .scratch = scratch, .reject = reject, .reject_ctx = o};
    struct nu_op_emit e = {.ctx = o, .emit = collect};
    cr_assert_eq(op->process(st, &ctx, in, &e, &eb), NU_OK, "%s", nu_err_msg(&eb));
    op->close(st);
    nu_arena_destroy(scratch);
    json_decref(c);
}

static const struct nu_value *col(const struct nu_batch *b, size_t row, const char *name)
{
    long c = nu_schema_find(b->schema, name);
    cr_assert_geq(c, 0, "no column %s", name);
    return &nu_batch_row(b, row)[c];
}

Test(media_image, metadata_applies_exif_orientation_and_rejects_bad_images)
{
    const char *names[] = {"rose.png", "o6.jpg", "corrupt.jpg", "text.png"};
    struct nu_batch *in = uris(names, 4);
    struct out o = {0};
    run("image_metadata", "{\"verify\": true}", in, &o);
    cr_assert_eq(o.rows, 2);
    cr_assert_eq(col(o.b[0], 0, "width")->u.i, 400);
    cr_assert_eq(col(o.b[0], 0, "height")->u.i, 260);
    cr_assert_eq(col(o.b[0], 0, "orientation")->u.i, 1);
    cr_assert_eq(strncmp(col(o.b[0], 0, "format")->u.s.ptr, "png", 3), 0);
    /* 200x100 stored, orientation 6 (rotate 90°): shown as 100x200 */
    cr_assert_eq(col(o.b[0], 1, "width")->u.i, 100);
    cr_assert_eq(col(o.b[0], 1, "height")->u.i, 200);
    cr_assert_eq(col(o.b[0], 1, "orientation")->u.i, 6);
    cr_assert_eq(strncmp(col(o.b[0], 1, "format")->u.s.ptr, "jpeg", 4), 0);
    cr_assert_eq(o.nrej, 2);
    cr_assert(strstr(o.reason[0], "corrupt.jpg"), "%s", o.reason[0]);
    cr_assert(strstr(o.reason[1], "text.png"), "%s", o.reason[1]);
    out_free(&o);
    nu_batch_destroy(in);
}

struct thumb_case {
    const char *name, *cfg_tail, *ctype;
    int64_t w, h;
};

static const struct thumb_case thumb_cases[] = {
    {"rose.png", "\"width\": 100, \"height\": 100", "image/jpeg", 100, 65},
    {"rose.png", "\"width\": 100, \"height\": 100, \"mode\": \"fill\"", "image/jpeg", 100, 100},
    {"rose.png", "\"width\": 200, \"format\": \"png\"", "image/png", 200, 130},
    {"rose.png", "\"format\": \"webp\", \"quality\": 50", "image/webp", 400, 260},
    {"o6.jpg", "\"width\": 50, \"height\": 50", "image/jpeg", 25, 50},
};

Test(media_image, thumbnails_fit_fill_convert_deterministically)
{
    for (size_t k = 0; k < sizeof(thumb_cases) / sizeof(thumb_cases[0]); k++) {
        const struct thumb_case *c = &thumb_cases[k];
        const char *names[] = {c->name, "corrupt.jpg"};
        char cfg[512];
        snprintf(cfg, sizeof(cfg), "{\"prefix\": \"file://%s/thumbs\", %s}", dir, c->cfg_tail);
        struct out o = {0}, o2 = {0};
        struct nu_batch *in = uris(names, 2);
        run("image_thumbnail", cfg, in, &o);
        run("image_thumbnail", cfg, in, &o2);
        cr_assert_eq(o.rows, 1, "%s", cfg);
        cr_assert_eq(o.nrej, 1, "%s", cfg);
        cr_assert_eq(col(o.b[0], 0, "thumb_width")->u.i, c->w, "%s: width %ld", cfg,
                     (long)col(o.b[0], 0, "thumb_width")->u.i);
        cr_assert_eq(col(o.b[0], 0, "thumb_height")->u.i, c->h, "%s: height %ld", cfg,
                     (long)col(o.b[0], 0, "thumb_height")->u.i);
        cr_assert_eq(strcmp(col(o.b[0], 0, "thumb_content_type")->u.s.ptr, c->ctype), 0, "%s", cfg);
        cr_assert(nu_value_equal(col(o.b[0], 0, "thumb_sha256"), col(o2.b[0], 0, "thumb_sha256")),
                  "%s: not deterministic", cfg);
        /* the stored file is a readable image of the reported size */
        const struct nu_value *u = col(o.b[0], 0, "thumb_uri");
        char *path = nu_xstrndup(u->u.s.ptr + 7, u->u.s.len - 7);
        struct nu_img_info info;
        struct nu_errbuf eb = {0};
        cr_assert_eq(nu_img_info(path, true, &info, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(info.width, c->w);
        cr_assert_eq(info.height, c->h);
        free(path);
        out_free(&o);
        out_free(&o2);
        nu_batch_destroy(in);
    }
}

Test(media_image, phash_near_duplicates_are_close_different_images_far)
{
    const char *names[] = {"rose.png", "rose_small.jpg", "check.png", "grad.png", "corrupt.jpg"};
    struct nu_batch *in = uris(names, 5);
    struct out o = {0};
    uint64_t h[4];
    run("image_phash", "{}", in, &o);
    cr_assert_eq(o.rows, 4);
    cr_assert_eq(o.nrej, 1);
    for (size_t i = 0; i < 4; i++) {
        const struct nu_value *v = col(o.b[0], i, "phash");
        char s[17];
        cr_assert_eq(v->u.s.len, 16);
        memcpy(s, v->u.s.ptr, 16);
        s[16] = '\0';
        h[i] = strtoull(s, NULL, 16);
    }
    int near = nu_img_hamming(h[0], h[1]);
    cr_assert_leq(near, 6, "rose vs its small JPEG: %d bits", near);
    cr_assert_geq(nu_img_hamming(h[0], h[2]), 16, "rose vs checkerboard");
    cr_assert_geq(nu_img_hamming(h[0], h[3]), 16, "rose vs gradient");
    cr_assert_geq(nu_img_hamming(h[2], h[3]), 16, "checkerboard vs gradient");
    out_free(&o);
    nu_batch_destroy(in);
}

Test(media_image, hamming_counts_differing_bits)
{
    cr_assert_eq(nu_img_hamming(0, 0), 0);
    cr_assert_eq(nu_img_hamming(0, ~0ULL), 64);
    cr_assert_eq(nu_img_hamming(0xf0, 0x0f), 8);
    cr_assert_eq(nu_img_hamming(1ULL << 63, 0), 1);
}

Test(media_image, config_validation)
{
    static const struct {
        const char *op, *cfg;
        bool ok;
    } cases[] = {
        {"image_thumbnail", "{\"prefix\": \"file:///t\", \"width\": 10}", true},
        {"image_thumbnail", "{\"prefix\": \"file:///t\", \"width\": 0}", false},
        {"image_thumbnail", "{\"prefix\": \"file:///t\", \"quality\": 101}", false},
        {"image_thumbnail", "{\"prefix\": \"file:///t\", \"format\": \"gif\"}", false},
        {"image_thumbnail", "{\"prefix\": \"file:///t\", \"mode\": \"fill\", \"width\": 9}", false},
        {"image_thumbnail", "{\"width\": 10}", false},
        {"image_metadata", "{\"verify\": 1}", false},
        {"image_metadata", "{\"verify\": true}", true},
        {"image_phash", "{\"bogus\": 1}", false},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct nu_operator *op = NULL;
        cr_assert_eq(nu_registry_find(cases[k].op, NULL, &op, NULL), NU_OK);
        json_t *c = json_loads(cases[k].cfg, 0, NULL);
        struct nu_problems p;
        nu_problems_init(&p);
        op->validate(c, "$", &p);
        cr_assert_eq(p.n == 0, cases[k].ok, "%s %s", cases[k].op, cases[k].cfg);
        nu_problems_free(&p);
        json_decref(c);
    }
}
